package dev.sluice.compat;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.Future;
import java.util.function.Predicate;
import java.util.stream.StreamSupport;
import org.apache.kafka.clients.admin.Config;
import org.apache.kafka.clients.admin.ConfigEntry;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.errors.InvalidConfigurationException;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.header.Headers;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * Sluice-only: RocketMQ-style retry and dead-letter topics with the Java client. A consumer
 * of group G that fails on a record re-produces it to {@code G.retry}; the broker raises
 * mq.retry.count, holds the record for the backoff of that count and appends it to the same
 * partition of G.retry at a new offset; once the count passes mq.retry.max the record goes to
 * {@code G.dlq} instead, with mq.dlq.reason.
 */
class RetryTest extends BrokerTestBase {
    static final String COUNT = "mq.retry.count";
    static final String REASON = "mq.dlq.reason";
    static final String MAX = "mq.retry.max";
    static final String BACKOFF = "mq.retry.backoff.ms";
    static final String DELAY_ORIGIN = "mq.delay.origin.offset";
    static final String ORIGIN_TOPIC = "mq.origin.topic";
    static final String ORIGIN_PARTITION = "mq.origin.partition";
    static final String ORIGIN_OFFSET = "mq.origin.offset";
    static final String ERROR = "mq.error";
    static final int RETRY_PARTITIONS = 2;
    static final long BACKOFF_MS = 300;
    static final int KEYS = 10;

    @BeforeEach
    void onlySluice() {
        assumeSluice("retry and dead-letter topics are a Sluice extension");
    }

    private static int headerCount(Headers headers, String key) {
        return (int) StreamSupport.stream(headers.headers(key).spliterator(), false).count();
    }

    private static long totalEnd(String topic, int partitions) {
        return endOffsets(topic, partitions).values().stream().mapToLong(Long::longValue).sum();
    }

    /** Creates G.retry (max 3 retries, 300 ms backoffs) and waits for it and G.dlq. */
    private static String createRetryTopic(String group) {
        String retry = group + ".retry";
        NewTopic nt = new NewTopic(retry, RETRY_PARTITIONS, (short) 1)
                .configs(Map.of(MAX, "3", BACKOFF, "300,300,300"));
        get(admin.createTopics(List.of(nt)).all());
        waitForTopic(retry, RETRY_PARTITIONS);
        waitForTopic(group + ".dlq", RETRY_PARTITIONS);
        return retry;
    }

    /** Produces k0..k9 (values v0..v9, custom headers trace=i and app=retry-test) to partition 0. */
    private static List<RecordMetadata> produceSource(String topic) throws Exception {
        List<RecordMetadata> acked = new ArrayList<>();
        try (KafkaProducer<String, String> p = new KafkaProducer<>(stringProducerProps())) {
            List<Future<RecordMetadata>> sent = new ArrayList<>();
            for (int i = 0; i < KEYS; i++) {
                ProducerRecord<String, String> r = new ProducerRecord<>(topic, 0, "k" + i, "v" + i);
                r.headers().add(header("trace", Integer.toString(i)));
                r.headers().add(header("app", "retry-test"));
                sent.add(p.send(r));
            }
            p.flush();
            for (Future<RecordMetadata> f : sent) {
                acked.add(f.get());
            }
        }
        return acked;
    }

    /** A record as the group received it, with the wall clock time poll() returned it. */
    record Delivery(ConsumerRecord<String, String> record, long atMs) {
    }

    /** A failed record re-produced to G.retry: when the send started, what was acknowledged. */
    record Retried(String key, long sentAtMs, RecordMetadata acked, String error) {
    }

    /** What one consumer of the group saw and did. */
    static final class Run {
        final List<Delivery> deliveries = new ArrayList<>();
        final Map<String, Integer> succeeded = new TreeMap<>();
        final List<Retried> retried = new ArrayList<>();

        List<Delivery> of(String key) {
            return deliveries.stream().filter(d -> key.equals(d.record().key())).toList();
        }

        List<Retried> retriedOf(String key) {
            return retried.stream().filter(x -> key.equals(x.key())).toList();
        }

        String summary() {
            return deliveries.stream().map(d -> d.record().topic() + "/" + d.record().partition() + "@"
                    + d.record().offset() + ":" + d.record().key() + "(" + headerValue(d.record().headers(), COUNT)
                    + ")").toList().toString();
        }
    }

    /** Whether delivery number `attempt` (0 = the first) of `key` fails. */
    interface Rule {
        boolean fails(String key, int attempt);
    }

    /**
     * The record a failing consumer re-produces to the retry topic: same key and value, its
     * headers kept (mq.retry.count included, so the broker counts on), the broker's
     * mq.delay.origin.offset and the previous mq.error dropped, mq.origin.* added on the first
     * failure and mq.error on every one.
     */
    private static ProducerRecord<String, String> retryRecord(String retryTopic, ConsumerRecord<String, String> r,
                                                              String error) {
        ProducerRecord<String, String> out = new ProducerRecord<>(retryTopic, r.key(), r.value());
        for (Header h : r.headers()) {
            if (!h.key().equals(DELAY_ORIGIN) && !h.key().equals(ERROR)) {
                out.headers().add(h);
            }
        }
        if (r.headers().lastHeader(ORIGIN_TOPIC) == null) {
            out.headers().add(header(ORIGIN_TOPIC, r.topic()));
            out.headers().add(header(ORIGIN_PARTITION, Integer.toString(r.partition())));
            out.headers().add(header(ORIGIN_OFFSET, Long.toString(r.offset())));
        }
        out.headers().add(header(ERROR, error));
        return out;
    }

    /**
     * One consumer of `group` subscribed to [source, group.retry], manual commits: each poll's
     * records are processed (a failing one is re-produced to the retry topic and its send
     * awaited), then committed. Runs until `done`, then polls `linger` more the same way.
     */
    private static Run consume(String source, String group, Rule rule, Predicate<Run> done, Duration linger) {
        String retryTopic = group + ".retry";
        Run run = new Run();
        Properties cp = stringConsumerProps(group);
        cp.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        try (KafkaConsumer<String, String> c = new KafkaConsumer<>(cp);
             KafkaProducer<String, String> p = new KafkaProducer<>(stringProducerProps())) {
            c.subscribe(List.of(source, retryTopic));
            long deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
            long lingerEnd = Long.MAX_VALUE;
            while (System.nanoTime() < lingerEnd) {
                if (lingerEnd == Long.MAX_VALUE) {
                    if (done.test(run)) {
                        lingerEnd = System.nanoTime() + linger.toNanos();
                    } else if (System.nanoTime() > deadline) {
                        fail("timed out: succeeded " + run.succeeded + ", deliveries " + run.summary());
                    }
                }
                ConsumerRecords<String, String> recs = c.poll(Duration.ofMillis(50));
                if (recs.isEmpty()) {
                    continue;
                }
                long now = System.currentTimeMillis();
                List<Future<RecordMetadata>> sends = new ArrayList<>();
                List<Retried> pending = new ArrayList<>();
                for (ConsumerRecord<String, String> r : recs) {
                    int attempt = run.of(r.key()).size();
                    run.deliveries.add(new Delivery(r, now));
                    if (rule.fails(r.key(), attempt)) {
                        String error = "attempt " + (attempt + 1) + " of " + r.key() + " failed";
                        long sentAt = System.currentTimeMillis();
                        sends.add(p.send(retryRecord(retryTopic, r, error)));
                        pending.add(new Retried(r.key(), sentAt, null, error));
                    } else {
                        run.succeeded.merge(r.key(), 1, Integer::sum);
                    }
                }
                for (int i = 0; i < sends.size(); i++) {
                    Retried x = pending.get(i);
                    run.retried.add(new Retried(x.key(), x.sentAtMs(), sends.get(i).get(), x.error()));
                }
                c.commitSync();
            }
            c.commitSync(); // positions past trailing gaps
        } catch (Exception e) {
            throw new AssertionError("consumer of " + group + " failed; deliveries " + run.summary(), e);
        }
        return run;
    }

    /**
     * Checks the deliveries of a key that failed: the first from the source at its offset,
     * then retry number n from the retry topic with mq.retry.count=n, on the partition the
     * retry send went to, at a new offset (the acknowledged one is a gap named by
     * mq.delay.origin.offset), no earlier than the backoff, with key, value and headers kept.
     * Returns the largest lateness past the backoff.
     */
    private static long checkRetried(String key, String source, RecordMetadata original, List<Delivery> ds,
                                     List<Retried> sends) {
        int i = Integer.parseInt(key.substring(1));
        ConsumerRecord<String, String> first = ds.get(0).record();
        assertEquals(source, first.topic(), "first delivery of " + key + " is from the source");
        assertEquals(original.offset(), first.offset(), "first delivery of " + key + " at its offset");
        assertNull(first.headers().lastHeader(COUNT), "first delivery of " + key + " has no " + COUNT);
        long lateness = 0;
        for (int n = 1; n < ds.size(); n++) {
            ConsumerRecord<String, String> r = ds.get(n).record();
            Retried sent = sends.get(n - 1);
            String what = "retry " + n + " of " + key;
            assertEquals(sent.acked().topic(), r.topic(), what + " read from the retry topic");
            assertEquals(Integer.toString(n), headerValue(r.headers(), COUNT), COUNT + " of " + what);
            assertEquals(1, headerCount(r.headers(), COUNT), "one " + COUNT + " header on " + what);
            assertEquals(key, r.key(), "key of " + what);
            assertEquals("v" + i, r.value(), "value of " + what);
            assertEquals(Integer.toString(i), headerValue(r.headers(), "trace"), "trace header kept on " + what);
            assertEquals("retry-test", headerValue(r.headers(), "app"), "app header kept on " + what);
            assertEquals(source, headerValue(r.headers(), ORIGIN_TOPIC), ORIGIN_TOPIC + " of " + what);
            assertEquals("0", headerValue(r.headers(), ORIGIN_PARTITION), ORIGIN_PARTITION + " of " + what);
            assertEquals(Long.toString(original.offset()), headerValue(r.headers(), ORIGIN_OFFSET),
                    ORIGIN_OFFSET + " of " + what);
            assertEquals(sent.error(), headerValue(r.headers(), ERROR), ERROR + " of " + what);
            assertEquals(sent.acked().partition(), r.partition(), what + " on the partition it was produced to");
            assertNotEquals(sent.acked().offset(), r.offset(), what + " not at the acknowledged offset (a gap)");
            assertTrue(r.offset() > sent.acked().offset(), what + " appended after the acknowledged offset");
            assertEquals(Long.toString(sent.acked().offset()), headerValue(r.headers(), DELAY_ORIGIN),
                    DELAY_ORIGIN + " of " + what);
            long early = sent.sentAtMs() + BACKOFF_MS - ds.get(n).atMs();
            assertTrue(early <= 0, what + " delivered " + early + " ms before its " + BACKOFF_MS + " ms backoff");
            lateness = Math.max(lateness, -early);
        }
        return lateness;
    }

    private static void assertOthersSucceededOnce(Run run, String failing) {
        for (int i = 0; i < KEYS; i++) {
            String k = "k" + i;
            if (!k.equals(failing)) {
                assertEquals(1, run.of(k).size(), "deliveries of " + k + ": " + run.summary());
                assertEquals(1, run.succeeded.getOrDefault(k, 0), "successes of " + k);
            }
        }
    }

    /** Committed offsets of the group equal the end offsets of its source and retry topic. */
    private static void assertNoLag(String group, String source) {
        Map<TopicPartition, Long> ends = new HashMap<>(endOffsets(source, 1));
        ends.putAll(endOffsets(group + ".retry", RETRY_PARTITIONS));
        Map<TopicPartition, OffsetAndMetadata> committed =
                get(admin.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata());
        Map<TopicPartition, Long> committedOffsets = new HashMap<>();
        committed.forEach((tp, om) -> committedOffsets.put(tp, om.offset()));
        assertEquals(ends, committedOffsets, "group " + group + " has no lag once done");
    }

    @Test
    void failsThreeTimesThenSucceeds() throws Exception {
        String source = createTopic("retry-src", 1);
        String group = uniqueName("retry-g");
        String retryTopic = createRetryTopic(group);
        List<RecordMetadata> acked = produceSource(source);

        long t0 = System.currentTimeMillis();
        Run run = consume(source, group, (key, attempt) -> key.equals("k3") && attempt < 3,
                r -> r.succeeded.size() == KEYS, Duration.ofMillis(1500));
        long took = System.currentTimeMillis() - t0;

        assertEquals(KEYS, run.succeeded.size(), "every key succeeded: " + run.succeeded);
        run.succeeded.forEach((k, n) -> assertEquals(1, n, "successes of " + k + ": " + run.summary()));
        assertOthersSucceededOnce(run, "k3");
        List<Delivery> k3 = run.of("k3");
        assertEquals(4, k3.size(), "k3 delivered 4 times: " + run.summary());
        assertEquals(java.util.Arrays.asList(null, "1", "2", "3"),
                k3.stream().map(d -> headerValue(d.record().headers(), COUNT)).toList(), COUNT + " of k3's deliveries");
        assertEquals(3, run.retried.size(), "k3 re-produced 3 times");
        long lateness = checkRetried("k3", source, acked.get(3), k3, run.retriedOf("k3"));

        assertEquals(0L, totalEnd(group + ".dlq", RETRY_PARTITIONS), "nothing in the dead-letter topic");
        assertEquals(6L, totalEnd(retryTopic, RETRY_PARTITIONS),
                "the retry topic holds 3 acknowledged gaps and 3 released copies");
        assertNoLag(group, source);
        System.out.println("RetryTest: k3 succeeded on delivery 4 (" + took + " ms for the run); retries at most "
                + lateness + " ms after their backoff; deliveries " + run.summary());
    }

    @Test
    void alwaysFailingRecordEndsInTheDlq() throws Exception {
        String source = createTopic("retry-src", 1);
        String group = uniqueName("retry-g");
        String retryTopic = createRetryTopic(group);
        String dlq = group + ".dlq";
        List<RecordMetadata> acked = produceSource(source);

        Run run = consume(source, group, (key, attempt) -> key.equals("k5"),
                r -> r.succeeded.size() == KEYS - 1 && r.retriedOf("k5").size() == 4, Duration.ofMillis(1500));

        assertOthersSucceededOnce(run, "k5");
        assertNull(run.succeeded.get("k5"), "k5 never succeeded");
        List<Delivery> k5 = run.of("k5");
        assertEquals(4, k5.size(), "k5 delivered 4 times (original + 3 retries), no more: " + run.summary());
        assertEquals(java.util.Arrays.asList(null, "1", "2", "3"),
                k5.stream().map(d -> headerValue(d.record().headers(), COUNT)).toList(), COUNT + " of k5's deliveries");
        List<Retried> sends = run.retriedOf("k5");
        assertEquals(4, sends.size(), "k5 re-produced 4 times");
        long lateness = checkRetried("k5", source, acked.get(5), k5, sends);
        Retried last = sends.get(3);

        List<ConsumerRecord<String, String>> dead;
        try (KafkaConsumer<String, String> c = new KafkaConsumer<>(stringConsumerProps(null))) {
            dead = new ArrayList<>(readAll(c, dlq, RETRY_PARTITIONS, 1, Duration.ofSeconds(10)));
            long end = System.nanoTime() + Duration.ofMillis(500).toNanos();
            while (System.nanoTime() < end) {
                c.poll(Duration.ofMillis(50)).forEach(dead::add);
            }
        }
        assertEquals(1, dead.size(), "one record in the dead-letter topic: " + dead);
        ConsumerRecord<String, String> d = dead.get(0);
        assertEquals("k5", d.key(), "key of the dead letter");
        assertEquals("v5", d.value(), "value of the dead letter");
        assertEquals(last.acked().partition() % RETRY_PARTITIONS, d.partition(),
                "dead letter on the retry partition's number");
        assertEquals("4", headerValue(d.headers(), COUNT), COUNT + " of the dead letter");
        assertEquals(1, headerCount(d.headers(), COUNT), "one " + COUNT + " header on the dead letter");
        String reason = headerValue(d.headers(), REASON);
        assertNotNull(reason, REASON + " on the dead letter");
        assertTrue(reason.contains(MAX), REASON + " names " + MAX + ": " + reason);
        assertEquals(last.error(), headerValue(d.headers(), ERROR), "the consumer's " + ERROR + " kept");
        assertEquals("5", headerValue(d.headers(), "trace"), "trace header kept on the dead letter");
        assertEquals("retry-test", headerValue(d.headers(), "app"), "app header kept on the dead letter");
        assertEquals(source, headerValue(d.headers(), ORIGIN_TOPIC), ORIGIN_TOPIC + " of the dead letter");
        assertEquals(Long.toString(acked.get(5).offset()), headerValue(d.headers(), ORIGIN_OFFSET),
                ORIGIN_OFFSET + " of the dead letter");

        assertEquals(1L, totalEnd(dlq, RETRY_PARTITIONS), "dead-letter topic end offsets");
        assertEquals(7L, totalEnd(retryTopic, RETRY_PARTITIONS),
                "the retry topic holds 4 acknowledged gaps and 3 released copies");
        assertNoLag(group, source);
        System.out.println("RetryTest: dead letter " + dlq + "/" + d.partition() + "@" + d.offset() + " "
                + REASON + "=\"" + reason + "\" " + DELAY_ORIGIN + "=" + headerValue(d.headers(), DELAY_ORIGIN)
                + " (last retry send acknowledged at " + retryTopic + "/" + last.acked().partition() + "@"
                + last.acked().offset() + "); retries at most " + lateness + " ms after their backoff");
    }

    @Test
    void retryConfigsOnlyOnRetryTopics() throws Exception {
        // Refused on a plain topic, which is then not created.
        String plain = uniqueName("retry-plain");
        Throwable e = failure(admin.createTopics(List.of(new NewTopic(plain, 1, (short) 1)
                .configs(Map.of(MAX, "3")))).all());
        assertInstanceOf(InvalidConfigurationException.class, e, "createTopics " + plain + " with " + MAX);
        System.out.println("RetryTest: " + MAX + " on a plain topic -> " + e);
        e = failure(admin.createTopics(List.of(new NewTopic(plain, 1, (short) 1)
                .configs(Map.of(BACKOFF, "300")))).all());
        assertInstanceOf(InvalidConfigurationException.class, e, "createTopics " + plain + " with " + BACKOFF);
        // A bad value on a retry topic is refused too.
        String badRetry = uniqueName("retry-bad") + ".retry";
        e = failure(admin.createTopics(List.of(new NewTopic(badRetry, 1, (short) 1)
                .configs(Map.of(MAX, "three")))).all());
        assertInstanceOf(InvalidConfigurationException.class, e, "createTopics " + badRetry + " with " + MAX + "=three");

        // Creating X.retry creates X.dlq with the same partition count.
        String x = uniqueName("retry-x");
        get(admin.createTopics(List.of(new NewTopic(x + ".retry", 3, (short) 1)
                .configs(Map.of(MAX, "3", BACKOFF, "300,300,300")))).all());
        waitForTopic(x + ".retry", 3);
        TopicDescription dlq = waitForTopic(x + ".dlq", 3);
        assertEquals(3, dlq.partitions().size(), "the dead-letter topic has the retry topic's partitions");
        Set<String> names = get(admin.listTopics().names());
        assertTrue(names.contains(x + ".retry"), "listTopics shows " + x + ".retry");
        assertTrue(names.contains(x + ".dlq"), "listTopics shows " + x + ".dlq");
        assertTrue(!names.contains(plain), "refused topic " + plain + " not created");
        assertTrue(!names.contains(badRetry), "refused topic " + badRetry + " not created");
        assertTrue(!names.contains(badRetry.replace(".retry", ".dlq")), "no dead-letter topic for a refused one");

        // The retry topic describes its policy.
        ConfigResource res = new ConfigResource(ConfigResource.Type.TOPIC, x + ".retry");
        Config cfg = get(admin.describeConfigs(List.of(res)).all()).get(res);
        ConfigEntry max = cfg.get(MAX);
        assertNotNull(max, MAX + " described");
        assertEquals("3", max.value(), MAX + " of " + x + ".retry");
        ConfigEntry backoff = cfg.get(BACKOFF);
        assertNotNull(backoff, BACKOFF + " described");
        assertEquals("300,300,300", backoff.value(), BACKOFF + " of " + x + ".retry");
        System.out.println("RetryTest: " + x + ".retry " + max + " " + backoff);
    }
}
