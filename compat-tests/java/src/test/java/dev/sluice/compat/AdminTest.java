package dev.sluice.compat;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.reflect.Method;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ExecutionException;
import java.util.stream.Collectors;
import org.apache.kafka.clients.admin.AlterConfigOp;
import org.apache.kafka.clients.admin.Config;
import org.apache.kafka.clients.admin.ConfigEntry;
import org.apache.kafka.clients.admin.CreateTopicsOptions;
import org.apache.kafka.clients.admin.CreateTopicsResult;
import org.apache.kafka.clients.admin.DescribeClusterResult;
import org.apache.kafka.clients.admin.ListOffsetsResult;
import org.apache.kafka.clients.admin.LogDirDescription;
import org.apache.kafka.clients.admin.NewPartitions;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.clients.admin.RecordsToDelete;
import org.apache.kafka.clients.admin.ReplicaInfo;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.KafkaFuture;
import org.apache.kafka.common.Node;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.TopicPartitionInfo;
import org.apache.kafka.common.Uuid;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.errors.InvalidConfigurationException;
import org.apache.kafka.common.errors.TopicExistsException;
import org.apache.kafka.common.errors.UnknownTopicOrPartitionException;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

class AdminTest extends BrokerTestBase {

    private static ConfigResource topicResource(String topic) {
        return new ConfigResource(ConfigResource.Type.TOPIC, topic);
    }

    private static Config describeTopicConfig(String topic) {
        return get(admin.describeConfigs(List.of(topicResource(topic))).all()).get(topicResource(topic));
    }

    private static List<RecordMetadata> produce(String topic, int partition, int n, long baseTs) {
        List<RecordMetadata> out = new ArrayList<>();
        try (KafkaProducer<String, String> p = new KafkaProducer<>(stringProducerProps())) {
            List<java.util.concurrent.Future<RecordMetadata>> fs = new ArrayList<>();
            for (int i = 0; i < n; i++) {
                fs.add(p.send(new ProducerRecord<>(topic, partition, baseTs + i, "k" + i, "v" + i)));
            }
            for (var f : fs) {
                out.add(f.get());
            }
        } catch (InterruptedException | ExecutionException e) {
            throw new AssertionError("produce to " + topic + " failed", e);
        }
        return out;
    }

    @Test
    void createTopicWithConfigsThenDescribe() {
        String name = uniqueName("admin-create");
        Map<String, String> configs = Map.of(
                "retention.ms", "3600000",
                "cleanup.policy", "delete",
                "max.message.bytes", "2000000");
        CreateTopicsResult res = admin.createTopics(List.of(new NewTopic(name, 4, (short) 1).configs(configs)));
        get(res.all());
        assertEquals(4, get(res.numPartitions(name)));
        assertEquals(1, get(res.replicationFactor(name)));
        Uuid createdId = get(res.topicId(name));
        assertNotNull(createdId);
        assertNotEquals(Uuid.ZERO_UUID, createdId, "CreateTopics response must carry the topic id");
        Config created = get(res.config(name));
        assertEquals("3600000", created.get("retention.ms").value(), "CreateTopics response config retention.ms");

        TopicDescription d = waitForTopic(name, 4);
        assertEquals(name, d.name());
        assertFalse(d.isInternal());
        assertNotEquals(Uuid.ZERO_UUID, d.topicId(), "DescribeTopics must return a topic id");
        assertEquals(createdId, d.topicId(), "topic id from CreateTopics and Metadata must match");
        List<Integer> ids = d.partitions().stream().map(TopicPartitionInfo::partition).collect(Collectors.toList());
        assertEquals(List.of(0, 1, 2, 3), ids);
        for (TopicPartitionInfo p : d.partitions()) {
            assertNotNull(p.leader(), "partition " + p.partition() + " leader");
            assertEquals(1, p.replicas().size(), "replicas of " + p.partition());
            assertEquals(1, p.isr().size(), "isr of " + p.partition());
            assertEquals(p.leader().id(), p.replicas().get(0).id());
        }

        Config cfg = describeTopicConfig(name);
        ConfigEntry retention = cfg.get("retention.ms");
        assertNotNull(retention, "describeConfigs must include retention.ms");
        assertEquals("3600000", retention.value());
        assertEquals(ConfigEntry.ConfigSource.DYNAMIC_TOPIC_CONFIG, retention.source());
        assertEquals("delete", cfg.get("cleanup.policy").value());
        assertEquals(ConfigEntry.ConfigType.LIST, cfg.get("cleanup.policy").type(), "cleanup.policy is a list, as in Kafka");
        String brokerId = String.valueOf(get(admin.describeCluster().nodes()).iterator().next().id());
        ConfigResource broker = new ConfigResource(ConfigResource.Type.BROKER, brokerId);
        Config brokerCfg = get(admin.describeConfigs(List.of(broker)).all()).get(broker);
        assertEquals(ConfigEntry.ConfigType.LIST, brokerCfg.get("log.cleanup.policy").type());
        assertEquals(ConfigEntry.ConfigType.LONG, brokerCfg.get("log.retention.ms").type());
        // The broker's own settings are typed as Kafka types them.
        assertEquals(ConfigEntry.ConfigType.BOOLEAN, brokerCfg.get("auto.create.topics.enable").type());
        assertEquals(ConfigEntry.ConfigType.INT, brokerCfg.get("num.partitions").type());
        assertEquals(ConfigEntry.ConfigType.LONG, brokerCfg.get("offsets.retention.check.interval.ms").type());
        assertEquals("2000000", cfg.get("max.message.bytes").value());
        ConfigEntry segmentBytes = cfg.get("segment.bytes");
        assertNotNull(segmentBytes, "describeConfigs must include defaults such as segment.bytes");
        assertTrue(Long.parseLong(segmentBytes.value()) > 0, "segment.bytes value");
        assertNull(segmentBytes.documentation(), "no documentation unless asked for, as Kafka answers");
        assertNotEquals(ConfigEntry.ConfigSource.DYNAMIC_TOPIC_CONFIG, segmentBytes.source());

        // describeTopics by id as well
        TopicDescription byId = get(admin.describeTopics(
                org.apache.kafka.common.TopicCollection.ofTopicIds(List.of(createdId))).allTopicIds()).get(createdId);
        assertEquals(name, byId.name());
    }

    @Test
    void createTopicValidateOnlyCreatesNothing() {
        String name = uniqueName("admin-validate");
        get(admin.createTopics(List.of(new NewTopic(name, 3, (short) 1)),
                new CreateTopicsOptions().validateOnly(true)).all());
        Broker.sleep(500);
        Set<String> names = get(admin.listTopics().names());
        assertFalse(names.contains(name), "validateOnly must not create the topic");
        Throwable t = failure(admin.describeTopics(List.of(name)).allTopicNames());
        assertInstanceOf(UnknownTopicOrPartitionException.class, t);
        // and validateOnly still validates
        Throwable bad = failure(admin.createTopics(
                List.of(new NewTopic(uniqueName("admin-validate-bad"), 1, (short) 1)
                        .configs(Map.of("retention.ms", "not-a-number"))),
                new CreateTopicsOptions().validateOnly(true)).all());
        assertInstanceOf(InvalidConfigurationException.class, bad);
    }

    @Test
    void createExistingTopicFails() {
        String name = createTopic("admin-exists", 1);
        Throwable t = failure(admin.createTopics(List.of(new NewTopic(name, 1, (short) 1))).all());
        assertInstanceOf(TopicExistsException.class, t);
    }

    @Test
    void createTopicWithInvalidConfigFails() {
        String name = uniqueName("admin-badcfg");
        Throwable t = failure(admin.createTopics(List.of(new NewTopic(name, 1, (short) 1)
                .configs(Map.of("retention.ms", "not-a-number")))).all());
        assertInstanceOf(InvalidConfigurationException.class, t);
        assertFalse(get(admin.listTopics().names()).contains(name));
    }

    @Test
    void describeUnknownTopicFails() {
        Throwable t = failure(admin.describeTopics(List.of(uniqueName("admin-nosuch"))).allTopicNames());
        assertInstanceOf(UnknownTopicOrPartitionException.class, t);
    }

    @Test
    void listTopicsAndDeleteTopics() {
        String name = createTopic("admin-delete", 2);
        produce(name, 0, 10, System.currentTimeMillis());
        assertTrue(get(admin.listTopics().names()).contains(name));
        get(admin.deleteTopics(List.of(name)).all());
        waitUntil("deleted topic disappears from listTopics", WAIT,
                () -> !get(admin.listTopics().names()).contains(name));
        Throwable t = failure(admin.describeTopics(List.of(name)).allTopicNames());
        assertInstanceOf(UnknownTopicOrPartitionException.class, t);
        Throwable again = failure(admin.deleteTopics(List.of(name)).all());
        assertInstanceOf(UnknownTopicOrPartitionException.class, again);

        // The name can be reused, and the new topic starts empty.
        long deadline = System.nanoTime() + WAIT.toNanos();
        while (true) {
            try {
                get(admin.createTopics(List.of(new NewTopic(name, 1, (short) 1))).all());
                break;
            } catch (TopicExistsException e) {
                if (System.nanoTime() > deadline) {
                    throw e;
                }
                Broker.sleep(200);
            }
        }
        waitForTopic(name, 1);
        assertEquals(0L, endOffsets(name, 1).get(new TopicPartition(name, 0)), "recreated topic must be empty");
    }

    @Test
    void createPartitions() {
        String name = createTopic("admin-partitions", 2);
        get(admin.createPartitions(Map.of(name, NewPartitions.increaseTo(5))).all());
        TopicDescription d = waitForTopic(name, 5);
        assertEquals(5, d.partitions().size());
        RecordMetadata md = produce(name, 4, 1, System.currentTimeMillis()).get(0);
        assertEquals(4, md.partition());
        assertEquals(0L, md.offset());
        // shrinking is invalid
        Throwable t = failure(admin.createPartitions(Map.of(name, NewPartitions.increaseTo(3))).all());
        assertInstanceOf(org.apache.kafka.common.errors.InvalidPartitionsException.class, t);
    }

    @Test
    void incrementalAlterConfigs() {
        String name = createTopic("admin-incalter", 1);
        ConfigResource r = topicResource(name);
        get(admin.incrementalAlterConfigs(Map.of(r, List.of(
                new AlterConfigOp(new ConfigEntry("retention.ms", "7200000"), AlterConfigOp.OpType.SET),
                new AlterConfigOp(new ConfigEntry("max.message.bytes", "3000000"), AlterConfigOp.OpType.SET))))
                .all());
        waitUntil("retention.ms=7200000 visible", WAIT,
                () -> "7200000".equals(describeTopicConfig(name).get("retention.ms").value()));
        Config cfg = describeTopicConfig(name);
        assertEquals(ConfigEntry.ConfigSource.DYNAMIC_TOPIC_CONFIG, cfg.get("retention.ms").source());
        assertEquals("3000000", cfg.get("max.message.bytes").value());

        // DELETE reverts to the default
        get(admin.incrementalAlterConfigs(Map.of(r, List.of(
                new AlterConfigOp(new ConfigEntry("retention.ms", ""), AlterConfigOp.OpType.DELETE)))).all());
        waitUntil("retention.ms back to its default", WAIT,
                () -> describeTopicConfig(name).get("retention.ms").source()
                        != ConfigEntry.ConfigSource.DYNAMIC_TOPIC_CONFIG);
        assertEquals("3000000", describeTopicConfig(name).get("max.message.bytes").value(),
                "other dynamic configs are untouched by DELETE");

        // invalid value is rejected
        Throwable t = failure(admin.incrementalAlterConfigs(Map.of(r, List.of(
                new AlterConfigOp(new ConfigEntry("retention.ms", "soon"), AlterConfigOp.OpType.SET)))).all());
        assertInstanceOf(InvalidConfigurationException.class, t);

        // validateOnly does not apply
        get(admin.incrementalAlterConfigs(Map.of(r, List.of(
                new AlterConfigOp(new ConfigEntry("max.message.bytes", "4000000"), AlterConfigOp.OpType.SET))),
                new org.apache.kafka.clients.admin.AlterConfigsOptions().validateOnly(true)).all());
        Broker.sleep(300);
        assertEquals("3000000", describeTopicConfig(name).get("max.message.bytes").value(),
                "validateOnly must not change the config");
    }

    /**
     * Legacy AlterConfigs (API key 33) replaces the whole set of dynamic topic configs.
     * Admin#alterConfigs was removed from the 4.x client, so this runs with 3.x clients only.
     */
    @Test
    void legacyAlterConfigs() throws Exception {
        Method alter;
        try {
            alter = org.apache.kafka.clients.admin.Admin.class.getMethod("alterConfigs", Map.class);
        } catch (NoSuchMethodException e) {
            Assumptions.abort("Admin#alterConfigs (legacy AlterConfigs API) is not in kafka-clients "
                    + System.getProperty("kafka.clients.version"));
            return;
        }
        String name = createTopic("admin-alter", 1, Map.of("max.message.bytes", "2500000"));
        ConfigResource r = topicResource(name);
        Config replacement = new Config(List.of(new ConfigEntry("retention.ms", "1234567")));
        Object result = alter.invoke(admin, Map.of(r, replacement));
        @SuppressWarnings("unchecked")
        KafkaFuture<Void> all = (KafkaFuture<Void>) result.getClass().getMethod("all").invoke(result);
        get(all);
        waitUntil("retention.ms=1234567 visible", WAIT,
                () -> "1234567".equals(describeTopicConfig(name).get("retention.ms").value()));
        ConfigEntry mmb = describeTopicConfig(name).get("max.message.bytes");
        assertNotEquals(ConfigEntry.ConfigSource.DYNAMIC_TOPIC_CONFIG, mmb.source(),
                "legacy AlterConfigs replaces all dynamic configs, so max.message.bytes must be back to default");
    }

    @Test
    void describeCluster() {
        DescribeClusterResult r = admin.describeCluster();
        String clusterId = get(r.clusterId());
        assertNotNull(clusterId);
        assertFalse(clusterId.isBlank(), "cluster id");
        Node controller = get(r.controller());
        assertNotNull(controller, "controller");
        assertTrue(controller.id() >= 0, "controller id " + controller.id());
        Collection<Node> nodes = get(r.nodes());
        assertFalse(nodes.isEmpty(), "nodes");
        int port = Integer.parseInt(broker.bootstrap().substring(broker.bootstrap().lastIndexOf(':') + 1));
        assertTrue(nodes.stream().anyMatch(n -> n.port() == port),
                "a node must advertise the bootstrap port " + port + ": " + nodes);
        assertTrue(nodes.stream().anyMatch(n -> n.id() == controller.id()),
                "controller " + controller + " must be one of the nodes " + nodes);
    }

    @Test
    void deleteRecordsMovesEarliestOffset() {
        String name = createTopic("admin-delrec", 1);
        TopicPartition tp = new TopicPartition(name, 0);
        produce(name, 0, 100, System.currentTimeMillis());
        var lw = get(admin.deleteRecords(Map.of(tp, RecordsToDelete.beforeOffset(40))).lowWatermarks().get(tp));
        assertEquals(40L, lw.lowWatermark());
        ListOffsetsResult lo = admin.listOffsets(Map.of(tp, OffsetSpec.earliest()));
        assertEquals(40L, get(lo.partitionResult(tp)).offset());
        assertEquals(100L, endOffsets(name, 1).get(tp));
        try (KafkaConsumer<byte[], byte[]> c = new KafkaConsumer<>(consumerProps(null))) {
            List<ConsumerRecord<byte[], byte[]>> recs = readAll(c, name, 1, 60, WAIT);
            assertEquals(60, recs.size());
            assertEquals(40L, recs.get(0).offset(), "first readable offset after deleteRecords");
        }
        // Deleting past the high watermark is an error
        Throwable t = failure(admin.deleteRecords(Map.of(tp, RecordsToDelete.beforeOffset(1000))).all());
        assertInstanceOf(org.apache.kafka.common.errors.OffsetOutOfRangeException.class, t);
    }

    @Test
    void describeLogDirs() {
        String name = createTopic("admin-logdirs", 2);
        produce(name, 1, 50, System.currentTimeMillis());
        List<Integer> brokerIds = get(admin.describeCluster().nodes()).stream().map(Node::id)
                .collect(Collectors.toList());
        Map<Integer, Map<String, LogDirDescription>> all = get(admin.describeLogDirs(brokerIds).allDescriptions());
        assertFalse(all.isEmpty());
        Map<TopicPartition, ReplicaInfo> found = new HashMap<>();
        for (Map<String, LogDirDescription> dirs : all.values()) {
            assertFalse(dirs.isEmpty(), "each broker reports at least one log dir");
            for (Map.Entry<String, LogDirDescription> e : dirs.entrySet()) {
                assertTrue(e.getValue().error() == null, "log dir " + e.getKey() + " error " + e.getValue().error());
                e.getValue().replicaInfos().forEach((tp, info) -> {
                    if (tp.topic().equals(name)) {
                        found.put(tp, info);
                    }
                });
            }
        }
        assertEquals(Set.of(new TopicPartition(name, 0), new TopicPartition(name, 1)), found.keySet());
        assertTrue(found.get(new TopicPartition(name, 1)).size() > 0, "partition 1 has data: " + found);
        assertFalse(found.get(new TopicPartition(name, 1)).isFuture());
    }

    @Test
    void listOffsetsEarliestLatestTimestamp() {
        String name = createTopic("admin-listoffsets", 1);
        TopicPartition tp = new TopicPartition(name, 0);
        long base = System.currentTimeMillis() - 3_600_000L;
        // Timestamps base + i*1000, except record 5 which carries the maximum.
        try (KafkaProducer<String, String> p = new KafkaProducer<>(stringProducerProps())) {
            for (int i = 0; i < 10; i++) {
                long ts = i == 5 ? base + 100_000 : base + i * 1000L;
                p.send(new ProducerRecord<>(name, 0, ts, "k" + i, "v" + i));
            }
            p.flush();
        }
        assertEquals(0L, get(admin.listOffsets(Map.of(tp, OffsetSpec.earliest())).partitionResult(tp)).offset());
        assertEquals(10L, get(admin.listOffsets(Map.of(tp, OffsetSpec.latest())).partitionResult(tp)).offset());

        ListOffsetsResult.ListOffsetsResultInfo at = get(admin.listOffsets(
                Map.of(tp, OffsetSpec.forTimestamp(base + 2500))).partitionResult(tp));
        assertEquals(3L, at.offset(), "first offset with timestamp >= base+2500");
        assertEquals(base + 3000, at.timestamp());

        ListOffsetsResult.ListOffsetsResultInfo exact = get(admin.listOffsets(
                Map.of(tp, OffsetSpec.forTimestamp(base + 7000))).partitionResult(tp));
        assertEquals(5L, exact.offset(), "record 5 (ts base+100000) is the first with ts >= base+7000");
        assertEquals(base + 100_000, exact.timestamp());

        ListOffsetsResult.ListOffsetsResultInfo none = get(admin.listOffsets(
                Map.of(tp, OffsetSpec.forTimestamp(base + 10_000_000))).partitionResult(tp));
        assertEquals(-1L, none.offset(), "no record at or after the timestamp -> offset -1");

        ListOffsetsResult.ListOffsetsResultInfo max = get(admin.listOffsets(
                Map.of(tp, OffsetSpec.maxTimestamp())).partitionResult(tp));
        assertEquals(5L, max.offset(), "offset of the record with the largest timestamp");
        assertEquals(base + 100_000, max.timestamp());

        try (KafkaConsumer<byte[], byte[]> c = new KafkaConsumer<>(consumerProps(null))) {
            c.assign(List.of(tp));
            var byTs = c.offsetsForTimes(Map.of(tp, base + 2500));
            assertEquals(3L, byTs.get(tp).offset());
            assertEquals(Map.of(tp, 0L), c.beginningOffsets(List.of(tp)));
            assertEquals(Map.of(tp, 10L), c.endOffsets(List.of(tp)));
        }

        // Unknown partition
        TopicPartition bad = new TopicPartition(name, 7);
        Throwable t = failure(admin.listOffsets(Map.of(bad, OffsetSpec.latest()),
                new org.apache.kafka.clients.admin.ListOffsetsOptions().timeoutMs(5000)).partitionResult(bad));
        assertTrue(t instanceof UnknownTopicOrPartitionException
                        || t instanceof org.apache.kafka.common.errors.TimeoutException,
                "listOffsets for a partition that does not exist: " + t);
    }

    @Test
    void listTopicsHidesInternalByDefault() {
        String name = createTopic("admin-list", 1);
        Set<String> names = get(admin.listTopics().names());
        assertTrue(names.contains(name));
        assertFalse(names.contains("__consumer_offsets"), "internal topics are hidden by default: " + names);
    }
}
