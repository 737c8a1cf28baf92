package dev.sluice.compat;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The Apache Kafka command line tools (compat-tests/kafka-dist/bin, assembled from
 * Maven Central) against the broker under test.
 */
class CliToolsTest extends BrokerTestBase {
    private static Path bin;

    @BeforeAll
    static void locateTools() throws Exception {
        org.junit.jupiter.api.Assumptions.assumeTrue(System.getenv("COMPAT_SKIP_CLI") == null
                || System.getenv("COMPAT_SKIP_CLI").isEmpty(), "COMPAT_SKIP_CLI is set (CLI tools run once per suite)");
        Path dist = Paths.get(System.getProperty("sluice.repo", "../.."), "compat-tests", "kafka-dist")
                .toAbsolutePath().normalize();
        bin = dist.resolve("bin");
        assertTrue(Files.isExecutable(bin.resolve("kafka-topics")), "missing " + bin + "/kafka-topics");
        // Make sure the jars are there before the first timed tool run.
        Process p = new ProcessBuilder(dist.resolve("assemble").toString()).inheritIO().start();
        assertTrue(p.waitFor(600, TimeUnit.SECONDS) && p.exitValue() == 0, "kafka-dist/assemble failed");
    }

    record Result(int exit, String out, String err) {
        String both() {
            return "exit=" + exit + "\n--- stdout ---\n" + out + "\n--- stderr ---\n" + err;
        }
    }

    private static Result run(String stdin, String tool, String... args) {
        List<String> cmd = new ArrayList<>();
        cmd.add(bin.resolve(tool).toString());
        cmd.addAll(Arrays.asList(args));
        try {
            Process p = new ProcessBuilder(cmd).start();
            CompletableFuture<String> out = CompletableFuture.supplyAsync(() -> slurp(p.getInputStream()));
            CompletableFuture<String> err = CompletableFuture.supplyAsync(() -> slurp(p.getErrorStream()));
            try (OutputStream in = p.getOutputStream()) {
                if (stdin != null) {
                    in.write(stdin.getBytes(StandardCharsets.UTF_8));
                }
            }
            if (!p.waitFor(90, TimeUnit.SECONDS)) {
                p.destroyForcibly();
                fail("timed out: " + String.join(" ", cmd) + "\n" + out.getNow("") + err.getNow(""));
            }
            return new Result(p.exitValue(), out.get(), err.get());
        } catch (IOException e) {
            throw new AssertionError("cannot run " + cmd, e);
        } catch (InterruptedException | java.util.concurrent.ExecutionException e) {
            throw new AssertionError(e);
        }
    }

    private static String slurp(java.io.InputStream in) {
        try {
            return new String(in.readAllBytes(), StandardCharsets.UTF_8);
        } catch (IOException e) {
            return "(read error " + e + ")";
        }
    }

    /** Runs a tool that must succeed; returns its stdout. */
    private static String ok(String tool, String... args) {
        return okWithInput(null, tool, args);
    }

    private static String okWithInput(String stdin, String tool, String... args) {
        Result r = run(stdin, tool, args);
        assertEquals(0, r.exit, tool + " " + String.join(" ", args) + " failed\n" + r.both());
        return r.out;
    }

    private static void produceEvenly(String topic, int partitions, int n) {
        try (org.apache.kafka.clients.producer.KafkaProducer<String, String> p =
                     new org.apache.kafka.clients.producer.KafkaProducer<>(stringProducerProps())) {
            for (int i = 0; i < n; i++) {
                p.send(new org.apache.kafka.clients.producer.ProducerRecord<>(topic, i % partitions, null, "m" + i));
            }
            p.flush();
        }
    }

    private static String bs() {
        return broker.bootstrap();
    }

    private static void assertContains(String haystack, String needle, String what) {
        assertTrue(haystack.contains(needle), what + ": expected to find '" + needle + "' in:\n" + haystack);
    }

    @Test
    void kafkaTopicsDescribesAView() {
        assumeSluice("views are a Sluice extension");
        String source = uniqueName("cli-view-src");
        ok("kafka-topics", "--bootstrap-server", bs(), "--create", "--topic", source, "--partitions", "2");
        // kafka-topics checks --config names against Kafka's own topic configs before it
        // sends anything, so views are created with an admin client (README).
        Result refused = run(null, "kafka-topics", "--bootstrap-server", bs(), "--create", "--topic",
                uniqueName("cli-view"), "--config", "mq.view.source=" + source);
        assertTrue(refused.exit != 0, refused.both());
        assertContains(refused.out + refused.err, "Unknown topic config name", "kafka-topics' own check");
        String view = uniqueName("cli-view");
        get(admin.createTopics(List.of(new org.apache.kafka.clients.admin.NewTopic(view,
                java.util.Optional.empty(), java.util.Optional.empty()).configs(java.util.Map.of(
                "mq.view.source", source, "mq.view.filter", "vip5 || vip6")))).all());
        String desc = ok("kafka-topics", "--bootstrap-server", bs(), "--describe", "--topic", view);
        assertContains(desc, "PartitionCount: 2", "a view has its source's partitions");
        assertContains(desc, "mq.view.source=" + source, "--describe shows the view's source");
        assertContains(desc, "mq.view.filter=vip5 || vip6", "--describe shows the view's filter");
    }

    @Test
    void kafkaTopics() {
        String topic = uniqueName("cli-topics");
        String created = ok("kafka-topics", "--bootstrap-server", bs(), "--create", "--topic", topic,
                "--partitions", "3", "--replication-factor", "1", "--config", "retention.ms=3600000");
        assertContains(created, "Created topic " + topic + ".", "kafka-topics --create");

        String list = ok("kafka-topics", "--bootstrap-server", bs(), "--list");
        assertTrue(Arrays.asList(list.split("\n")).contains(topic), "--list contains " + topic + ":\n" + list);

        String desc = ok("kafka-topics", "--bootstrap-server", bs(), "--describe", "--topic", topic);
        assertContains(desc, "PartitionCount: 3", "--describe");
        assertContains(desc, "retention.ms=3600000", "--describe shows topic configs");
        assertTrue(Pattern.compile("TopicId: (\\S+)").matcher(desc).find(), "--describe shows a TopicId:\n" + desc);
        for (int p = 0; p < 3; p++) {
            assertContains(desc, "Partition: " + p + "\t", "--describe lists partition " + p);
        }

        ok("kafka-topics", "--bootstrap-server", bs(), "--alter", "--topic", topic, "--partitions", "5");
        waitUntil("5 partitions", WAIT, () -> ok("kafka-topics", "--bootstrap-server", bs(), "--describe",
                "--topic", topic).contains("PartitionCount: 5"));

        Result exists = run(null, "kafka-topics", "--bootstrap-server", bs(), "--create", "--topic", topic,
                "--partitions", "1");
        assertTrue(exists.exit != 0 || (exists.out + exists.err).contains("already exists"), exists.both());
        assertContains(exists.out + exists.err, "already exists", "creating an existing topic");

        ok("kafka-topics", "--bootstrap-server", bs(), "--delete", "--topic", topic);
        waitUntil("topic gone from --list", WAIT, () -> !Arrays.asList(
                ok("kafka-topics", "--bootstrap-server", bs(), "--list").split("\n")).contains(topic));
    }

    @Test
    void kafkaConfigs() {
        String topic = createTopic("cli-configs", 1);
        String alter = ok("kafka-configs", "--bootstrap-server", bs(), "--entity-type", "topics",
                "--entity-name", topic, "--alter", "--add-config", "retention.ms=86400000,max.message.bytes=2000000");
        assertContains(alter, "Completed updating config", "kafka-configs --alter");
        waitUntil("configs visible", WAIT, () -> ok("kafka-configs", "--bootstrap-server", bs(), "--entity-type",
                "topics", "--entity-name", topic, "--describe").contains("retention.ms=86400000"));
        String desc = ok("kafka-configs", "--bootstrap-server", bs(), "--entity-type", "topics",
                "--entity-name", topic, "--describe");
        assertContains(desc, "max.message.bytes=2000000", "kafka-configs --describe");

        ok("kafka-configs", "--bootstrap-server", bs(), "--entity-type", "topics", "--entity-name", topic,
                "--alter", "--delete-config", "retention.ms");
        waitUntil("retention.ms removed", WAIT, () -> !ok("kafka-configs", "--bootstrap-server", bs(),
                "--entity-type", "topics", "--entity-name", topic, "--describe").contains("retention.ms=86400000"));

        String all = ok("kafka-configs", "--bootstrap-server", bs(), "--entity-type", "topics",
                "--entity-name", topic, "--describe", "--all");
        assertContains(all, "segment.bytes=", "kafka-configs --describe --all lists defaults");

        Result bad = run(null, "kafka-configs", "--bootstrap-server", bs(), "--entity-type", "topics",
                "--entity-name", topic, "--alter", "--add-config", "retention.ms=forever");
        assertTrue(bad.exit != 0, "invalid config value must fail:\n" + bad.both());
    }

    @Test
    void consoleProducerAndConsumer() {
        String topic = createTopic("cli-console", 2);
        StringBuilder in = new StringBuilder();
        for (int i = 0; i < 50; i++) {
            in.append("key").append(i).append(':').append("line ").append(i).append('\n');
        }
        okWithInput(in.toString(), "kafka-console-producer", "--bootstrap-server", bs(), "--topic", topic,
                "--reader-property", "parse.key=true", "--reader-property", "key.separator=:");
        String out = ok("kafka-console-consumer", "--bootstrap-server", bs(), "--topic", topic,
                "--from-beginning", "--max-messages", "50", "--timeout-ms", "30000",
                "--formatter-property", "print.key=true", "--formatter-property", "key.separator=|",
                "--formatter-property", "print.partition=true", "--formatter-property", "print.offset=true");
        List<String> lines = new ArrayList<>();
        for (String l : out.split("\n")) {
            if (!l.isBlank()) {
                lines.add(l);
            }
        }
        assertEquals(50, lines.size(), "console consumer output:\n" + out);
        for (int i = 0; i < 50; i++) {
            String suffix = "key" + i + "|line " + i;
            assertTrue(lines.stream().anyMatch(l -> l.endsWith(suffix)), "missing '" + suffix + "' in:\n" + out);
        }
        assertTrue(lines.stream().allMatch(l -> l.matches("Partition:[01]\\|Offset:\\d+\\|key\\d+\\|line \\d+")),
                "output format:\n" + out);
    }

    @Test
    void consumerGroupsTool() {
        String topic = createTopic("cli-groups", 3);
        produceEvenly(topic, 3, 30);
        String group = uniqueName("cli-group");
        ok("kafka-console-consumer", "--bootstrap-server", bs(), "--topic", topic, "--group", group,
                "--from-beginning", "--max-messages", "30", "--timeout-ms", "30000");

        String list = ok("kafka-consumer-groups", "--bootstrap-server", bs(), "--list");
        assertTrue(Arrays.asList(list.split("\n")).contains(group), "--list contains " + group + ":\n" + list);

        String desc = ok("kafka-consumer-groups", "--bootstrap-server", bs(), "--describe", "--group", group);
        assertContains(desc, "CURRENT-OFFSET", "--describe header");
        long committed = 0;
        long end = 0;
        Matcher m = Pattern.compile(Pattern.quote(group) + "\\s+" + Pattern.quote(topic)
                + "\\s+(\\d+)\\s+(\\d+)\\s+(\\d+)\\s+(\\d+)").matcher(desc);
        int rows = 0;
        while (m.find()) {
            rows++;
            committed += Long.parseLong(m.group(2));
            end += Long.parseLong(m.group(3));
            assertEquals("0", m.group(4), "lag of partition " + m.group(1) + ":\n" + desc);
        }
        assertEquals(3, rows, "one row per partition:\n" + desc);
        assertEquals(30, committed, "committed offsets sum:\n" + desc);
        assertEquals(30, end, "log end offsets sum:\n" + desc);

        String dry = ok("kafka-consumer-groups", "--bootstrap-server", bs(), "--reset-offsets", "--group", group,
                "--topic", topic, "--to-earliest", "--dry-run");
        assertContains(dry, "NEW-OFFSET", "--reset-offsets --dry-run");
        String reset = ok("kafka-consumer-groups", "--bootstrap-server", bs(), "--reset-offsets", "--group", group,
                "--topic", topic, "--to-earliest", "--execute");
        assertContains(reset, "NEW-OFFSET", "--reset-offsets --execute");
        String after = ok("kafka-consumer-groups", "--bootstrap-server", bs(), "--describe", "--group", group,
                "--offsets");
        Matcher m2 = Pattern.compile(Pattern.quote(group) + "\\s+" + Pattern.quote(topic)
                + "\\s+(\\d+)\\s+(\\d+)\\s+(\\d+)\\s+(\\d+)").matcher(after);
        int rows2 = 0;
        while (m2.find()) {
            rows2++;
            assertEquals("0", m2.group(2), "offset after --to-earliest:\n" + after);
        }
        assertEquals(3, rows2, after);

        String shifted = ok("kafka-consumer-groups", "--bootstrap-server", bs(), "--reset-offsets", "--group",
                group, "--topic", topic + ":0", "--to-offset", "2", "--execute");
        assertTrue(Pattern.compile(Pattern.quote(topic) + "\\s+0\\s+2").matcher(shifted).find(),
                "--to-offset 2 on partition 0:\n" + shifted);

        String deleted = ok("kafka-consumer-groups", "--bootstrap-server", bs(), "--delete", "--group", group);
        assertContains(deleted, "successful", "--delete");
        waitUntil("group gone from --list", WAIT, () -> !Arrays.asList(
                ok("kafka-consumer-groups", "--bootstrap-server", bs(), "--list").split("\n")).contains(group));
    }

    @Test
    void dumpLogReadsTheSegmentsAsKafkasOwn() throws Exception {
        assumeSluice("reads the broker's files");
        // Small segments, several index entries each, and batches after the last entry.
        String topic = createTopic("cli-dump", 1, Map.of("segment.bytes", "16384", "index.interval.bytes", "4096"));
        int n = 600;
        Properties props = stringProducerProps();
        for (String codec : List.of("none", "lz4", "zstd")) {
            props.put(org.apache.kafka.clients.producer.ProducerConfig.COMPRESSION_TYPE_CONFIG, codec);
            props.put(org.apache.kafka.clients.producer.ProducerConfig.BATCH_SIZE_CONFIG, "8192");
            try (org.apache.kafka.clients.producer.KafkaProducer<String, String> p =
                         new org.apache.kafka.clients.producer.KafkaProducer<>(props)) {
                for (int i = 0; i < n / 3; i++) {
                    var r = new org.apache.kafka.clients.producer.ProducerRecord<>(topic, 0, "k" + i,
                            codec + "-" + i + "-" + "x".repeat(200));
                    r.headers().add(header("codec", codec));
                    p.send(r);
                }
                p.flush();
            }
        }
        // Read as Kafka's tools are meant to read a log: stopped cleanly, here after a
        // restart too (opening the segments must not change their files).
        broker.restart();
        broker.stopGracefully();
        try {
            checkWithDumpLog(broker.dataDir().resolve(topic + "-0"), n);
        } finally {
            broker.relaunch();
            reopenAdmin();
        }
    }

    private static void checkWithDumpLog(Path dir, int n) throws IOException {
        List<Path> logs = new ArrayList<>();
        List<Path> indexes = new ArrayList<>();
        try (var files = Files.list(dir)) {
            for (Path f : (Iterable<Path>) files.sorted()::iterator) {
                String name = f.getFileName().toString();
                if (name.endsWith(".log")) {
                    logs.add(f);
                } else if (name.endsWith(".index") || name.endsWith(".timeindex")) {
                    indexes.add(f);
                }
            }
        }
        assertTrue(logs.size() > 2, "several segments: " + logs);

        // Kafka's reader walks every batch and record: each offset once, in order, with
        // the value and header that were sent, and every batch's CRC valid.
        List<String> args = new ArrayList<>(List.of("--deep-iteration", "--print-data-log", "--files"));
        args.add(String.join(",", logs.stream().map(Path::toString).toList()));
        String dump = ok("kafka-dump-log", args.toArray(String[]::new));
        Pattern record = Pattern.compile("\\| offset: (\\d+) .*headerKeys: \\[codec\\] key: k(\\d+) payload: (\\w+)-(\\d+)-");
        int expected = 0;
        int batches = 0;
        for (String line : dump.split("\n")) {
            if (line.startsWith("baseOffset:")) {
                batches++;
                assertContains(line, "isvalid: true", "batch CRC");
                continue;
            }
            Matcher m = record.matcher(line);
            if (!m.find()) {
                continue;
            }
            String codec = List.of("none", "lz4", "zstd").get(expected / (n / 3));
            assertEquals(expected, Long.parseLong(m.group(1)), line);
            assertEquals(codec, m.group(3), line);
            assertEquals(expected % (n / 3), Integer.parseInt(m.group(2)), line);
            assertEquals(m.group(2), m.group(4), line);
            expected++;
        }
        assertEquals(n, expected, "records in kafka-dump-log's output:\n" + dump);
        assertContains(dump, "compresscodec: zstd", "zstd batches kept as produced");
        assertTrue(batches > 3, "batches: " + batches);

        // Each segment's last time index entry is its largest timestamp, at the last
        // offset of the batch holding it: where Kafka reads a segment's largest
        // timestamp from (time retention, MAX_TIMESTAMP).
        Pattern batch = Pattern.compile("^baseOffset: \\d+ lastOffset: (\\d+) .* CreateTime: (\\d+) ");
        for (Path log : logs) {
            long maxTs = -1;
            long maxTsOffset = -1;
            for (String line : ok("kafka-dump-log", "--files", log.toString()).split("\n")) {
                Matcher m = batch.matcher(line);
                if (m.find() && Long.parseLong(m.group(2)) > maxTs) {
                    maxTs = Long.parseLong(m.group(2));
                    maxTsOffset = Long.parseLong(m.group(1));
                }
            }
            Path timeIndex = Paths.get(log.toString().replaceAll("\\.log$", ".timeindex"));
            String[] entries = ok("kafka-dump-log", "--files", timeIndex.toString()).split("\n");
            assertEquals("timestamp: " + maxTs + " offset: " + maxTsOffset, entries[entries.length - 1].trim(),
                    "last entry of " + timeIndex);
        }

        // Its index checks: the files hold whole entries in order (as a clean stop leaves
        // them, with no preallocated tail), and every offset and time index entry points
        // at the batch it names.
        // (It reports mismatches on stderr and still exits 0.)
        for (String flag : List.of("--index-sanity-check", "--verify-index-only")) {
            args = new ArrayList<>(List.of(flag, "--files"));
            args.add(String.join(",", indexes.stream().map(Path::toString).toList()));
            Result check = run(null, "kafka-dump-log", args.toArray(String[]::new));
            assertEquals(0, check.exit(), check.both());
            assertTrue(check.err().isBlank(), "kafka-dump-log " + flag + " found a problem:\n" + check.both());
            for (String line : check.out().split("\n")) {
                assertTrue(line.isBlank() || line.startsWith("Dumping ") || line.endsWith("passed sanity check.")
                                || line.endsWith(" is empty."),
                        "kafka-dump-log " + flag + " found a problem: " + line + "\n" + check.both());
            }
        }
    }

    @Test
    void leaderElectionTool() {
        String topic = createTopic("cli-elect", 3);
        // Every partition is led by its preferred replica already: nothing to elect, and
        // for all partitions nothing to report.
        String all = ok("kafka-leader-election", "--bootstrap-server", bs(), "--election-type", "preferred",
                "--all-topic-partitions");
        assertFalse(all.contains(topic), "no partition needed an election:\n" + all);
        String one = ok("kafka-leader-election", "--bootstrap-server", bs(), "--election-type", "preferred",
                "--topic", topic, "--partition", "1");
        assertContains(one, "Valid replica already elected for partitions " + topic + "-1", "preferred");
        String unclean = ok("kafka-leader-election", "--bootstrap-server", bs(), "--election-type", "unclean",
                "--topic", topic, "--partition", "2");
        assertContains(unclean, "Valid replica already elected for partitions " + topic + "-2", "unclean");

        Result noPartition = run(null, "kafka-leader-election", "--bootstrap-server", bs(), "--election-type",
                "preferred", "--topic", topic, "--partition", "7");
        assertEquals(1, noPartition.exit(), noPartition.both());
        assertContains(noPartition.out() + noPartition.err(),
                "UnknownTopicOrPartitionException: No such partition as " + topic + "-7", "unknown partition");
        String missing = uniqueName("cli-elect-missing");
        Result noTopic = run(null, "kafka-leader-election", "--bootstrap-server", bs(), "--election-type",
                "unclean", "--topic", missing, "--partition", "0");
        assertEquals(1, noTopic.exit(), noTopic.both());
        assertContains(noTopic.out() + noTopic.err(),
                "UnknownTopicOrPartitionException: No such topic as " + missing, "unknown topic");
    }

    /** A field of `kafka-metadata-quorum describe --status`, such as "HighWatermark". */
    private static long quorumStatusField(String status, String field) {
        for (String l : status.split("\n")) {
            if (l.startsWith(field + ":")) {
                return Long.parseLong(l.substring(field.length() + 1).trim());
            }
        }
        throw new AssertionError("no " + field + " in:\n" + status);
    }

    @Test
    void metadataQuorumTool() {
        String status = ok("kafka-metadata-quorum", "--bootstrap-server", bs(), "describe", "--status");
        long leader = quorumStatusField(status, "LeaderId");
        assertTrue(quorumStatusField(status, "LeaderEpoch") >= 1, status);
        long before = quorumStatusField(status, "HighWatermark");
        assertTrue(before > 0, "the cluster's first records are committed:\n" + status);
        assertEquals(0, quorumStatusField(status, "MaxFollowerLag"), status);
        assertContains(status, "CurrentVoters:          [{\"id\": " + leader + ",", "the leader is a voter");
        assertContains(status, "CurrentObservers:       []", "no observers");

        // Creating a topic is a metadata record: the high watermark moves past it.
        createTopic("cli-quorum", 1);
        long after = quorumStatusField(
                ok("kafka-metadata-quorum", "--bootstrap-server", bs(), "describe", "--status"), "HighWatermark");
        assertTrue(after > before, "high watermark " + before + " -> " + after);

        String replication = ok("kafka-metadata-quorum", "--bootstrap-server", bs(), "describe", "--replication");
        String row = Arrays.stream(replication.split("\n"))
                .filter(l -> l.trim().endsWith("Leader")).findFirst()
                .orElseThrow(() -> new AssertionError("no Leader row in:\n" + replication));
        String[] cells = row.trim().split("\\s+");
        assertEquals(String.valueOf(leader), cells[0], row);
        assertTrue(Long.parseLong(cells[2]) >= after, "log end offset at or past the high watermark: " + row);
        assertEquals("0", cells[3], "the leader's lag: " + row);
        // With nothing being written, the high watermark is the leader's log end: every
        // entry is committed, and both count entries the same way.
        waitUntil("high watermark at the log end", WAIT, () -> {
            long hw = quorumStatusField(
                    ok("kafka-metadata-quorum", "--bootstrap-server", bs(), "describe", "--status"), "HighWatermark");
            String rep = ok("kafka-metadata-quorum", "--bootstrap-server", bs(), "describe", "--replication");
            return Arrays.stream(rep.split("\n")).filter(l -> l.trim().endsWith("Leader"))
                    .anyMatch(l -> l.trim().split("\\s+")[2].equals(String.valueOf(hw)));
        });
    }

    @Test
    void offsetsDeleteRecordsAndLogDirsTools() throws IOException {
        String topic = createTopic("cli-offsets", 2);
        produceEvenly(topic, 2, 20);
        String offsets = ok("kafka-get-offsets", "--bootstrap-server", bs(), "--topic", topic);
        long sum = 0;
        for (String l : offsets.split("\n")) {
            if (l.startsWith(topic + ":")) {
                sum += Long.parseLong(l.substring(l.lastIndexOf(':') + 1).trim());
            }
        }
        assertEquals(20, sum, "kafka-get-offsets latest offsets:\n" + offsets);

        Path json = Files.createTempFile("delete-records", ".json");
        Files.writeString(json, "{\"partitions\":[{\"topic\":\"" + topic + "\",\"partition\":0,\"offset\":3}],"
                + "\"version\":1}");
        String del = ok("kafka-delete-records", "--bootstrap-server", bs(), "--offset-json-file", json.toString());
        Files.deleteIfExists(json);
        assertContains(del, "low_watermark: 3", "kafka-delete-records");
        String earliest = ok("kafka-get-offsets", "--bootstrap-server", bs(), "--topic", topic,
                "--partitions", "0", "--time", "-2");
        assertContains(earliest, topic + ":0:3", "earliest offset after delete-records");

        String dirs = ok("kafka-log-dirs", "--bootstrap-server", bs(), "--describe", "--topic-list", topic);
        assertContains(dirs, "\"partition\":\"" + topic + "-0\"", "kafka-log-dirs");
        assertContains(dirs, "\"partition\":\"" + topic + "-1\"", "kafka-log-dirs");
    }

    @Test
    void perfTools() {
        String topic = createTopic("cli-perf", 2);
        String prod = ok("kafka-producer-perf-test", "--topic", topic, "--num-records", "20000",
                "--record-size", "200", "--throughput", "-1", "--command-property", "bootstrap.servers=" + bs(),
                "acks=all");
        assertContains(prod, "20000 records sent", "kafka-producer-perf-test");
        String cons = ok("kafka-consumer-perf-test", "--bootstrap-server", bs(), "--topic", topic,
                "--num-records", "20000", "--timeout", "30000");
        assertFalse(cons.isBlank(), "kafka-consumer-perf-test output");
        String[] lines = cons.trim().split("\n");
        String last = lines[lines.length - 1];
        assertContains(last, ", 20000,", "kafka-consumer-perf-test consumed 20000 messages");
    }
}
