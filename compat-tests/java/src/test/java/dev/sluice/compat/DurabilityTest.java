package dev.sluice.compat;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.TopicPartition;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** Sluice-only: the broker is stopped (SIGTERM) or killed (SIGKILL) and restarted. */
class DurabilityTest extends BrokerTestBase {
    private static final int PARTITIONS = 3;

    @BeforeEach
    void onlySluice() {
        assumeSluice("restarts the broker");
    }

    private static void bounce(boolean kill9) {
        if (kill9) {
            broker.killAndRestart();
        } else {
            broker.restart();
        }
        reopenAdmin();
    }

    /** Record identity: partition/offset as acknowledged, value "i". */
    private static void verifyAcked(String topic, Map<Integer, RecordMetadata> acked, int producedUpTo) {
        long total = endOffsets(topic, PARTITIONS).values().stream().mapToLong(Long::longValue).sum();
        assertTrue(total >= acked.size(), "log end offsets sum " + total + " < acknowledged " + acked.size());
        List<ConsumerRecord<String, String>> recs;
        try (KafkaConsumer<String, String> c = new KafkaConsumer<>(stringConsumerProps(null))) {
            recs = readAll(c, topic, PARTITIONS, total, Duration.ofSeconds(60));
        }
        Map<String, ConsumerRecord<String, String>> byPos = new HashMap<>();
        Map<String, Integer> valueCount = new HashMap<>();
        for (ConsumerRecord<String, String> r : recs) {
            byPos.put(r.partition() + "@" + r.offset(), r);
            valueCount.merge(r.value(), 1, Integer::sum);
        }
        int lost = 0;
        StringBuilder firstLost = new StringBuilder();
        for (Map.Entry<Integer, RecordMetadata> e : acked.entrySet()) {
            RecordMetadata md = e.getValue();
            ConsumerRecord<String, String> r = byPos.get(md.partition() + "@" + md.offset());
            if (r == null || !r.value().equals(Integer.toString(e.getKey()))) {
                if (lost++ < 5) {
                    firstLost.append(" ").append(e.getKey()).append("->").append(md.partition()).append('@')
                            .append(md.offset()).append(" found=").append(r == null ? "none" : r.value());
                }
            }
        }
        assertEquals(0, lost, lost + " of " + acked.size() + " acknowledged records missing/different after restart:"
                + firstLost);
        valueCount.forEach((v, n) -> {
            if (n > 1) {
                fail("record " + v + " present " + n + " times after restart (idempotent producer)");
            }
        });
        assertTrue(recs.size() <= producedUpTo, "more records than produced");
    }

    @ParameterizedTest(name = "kill9={0}")
    @ValueSource(booleans = {false, true})
    void ackedRecordsSurviveRestart(boolean kill9) {
        String topic = createTopic("dur-quiet", PARTITIONS);
        Map<Integer, RecordMetadata> acked = new ConcurrentHashMap<>();
        int n = 10_000;
        try (KafkaProducer<String, String> p = new KafkaProducer<>(stringProducerProps())) {
            for (int i = 0; i < n; i++) {
                final int idx = i;
                p.send(new ProducerRecord<>(topic, "k" + i, Integer.toString(i)), (md, e) -> {
                    if (e == null) {
                        acked.put(idx, md);
                    }
                });
            }
            p.flush();
        }
        assertEquals(n, acked.size(), "all records acknowledged before the restart");
        bounce(kill9);
        waitForTopic(topic, PARTITIONS);
        verifyAcked(topic, acked, n);
    }

    @ParameterizedTest(name = "kill9={0}")
    @ValueSource(booleans = {false, true})
    void ackedRecordsSurviveRestartMidProduce(boolean kill9) throws Exception {
        String topic = createTopic("dur-busy", PARTITIONS);
        Map<Integer, RecordMetadata> acked = new ConcurrentHashMap<>();
        AtomicBoolean stop = new AtomicBoolean();
        AtomicInteger produced = new AtomicInteger();
        Properties pp = stringProducerProps();
        pp.put(ProducerConfig.ACKS_CONFIG, "all");
        pp.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, "5000");
        pp.put(ProducerConfig.REQUEST_TIMEOUT_MS_CONFIG, "2000");
        pp.put(ProducerConfig.LINGER_MS_CONFIG, "2");
        pp.put(ProducerConfig.MAX_BLOCK_MS_CONFIG, "2000");
        KafkaProducer<String, String> producer = new KafkaProducer<>(pp);
        Thread t = new Thread(() -> {
            int i = 0;
            while (!stop.get()) {
                final int idx = i++;
                try {
                    producer.send(new ProducerRecord<>(topic, "k" + idx, Integer.toString(idx)), (md, e) -> {
                        if (e == null) {
                            acked.put(idx, md);
                        }
                    });
                    produced.set(i);
                } catch (RuntimeException e) {
                    // the producer may reject sends while the broker is down
                }
                if (idx % 100 == 99) {
                    Broker.sleep(1);
                }
            }
        }, "busy-producer");
        t.start();
        waitUntil("some records acknowledged", WAIT, () -> acked.size() > 5_000);
        if (kill9) {
            broker.kill();
        } else {
            broker.stopGracefully();
        }
        int ackedAtStop = acked.size();
        stop.set(true);
        t.join(10_000);
        producer.close(Duration.ofSeconds(1));
        assertTrue(ackedAtStop > 0);
        broker.killAndRestart(); // the process is already gone; this just starts it again
        reopenAdmin();
        waitForTopic(topic, PARTITIONS);
        System.out.println("mid-produce " + (kill9 ? "SIGKILL" : "SIGTERM") + ": produced " + produced.get()
                + ", acknowledged " + acked.size());
        verifyAcked(topic, new HashMap<>(acked), produced.get());
    }

    /**
     * The coordinator keeps a group's members, generation and assignments in its log, as
     * Kafka's does: a consumer carries on through a broker restart with its assignment,
     * heartbeating at its generation, without a rebalance.
     */
    @ParameterizedTest(name = "kill9={0}")
    @ValueSource(booleans = {false, true})
    void aGroupCarriesOnThroughARestartWithoutARebalance(boolean kill9) {
        String topic = createTopic("dur-members", PARTITIONS);
        String group = uniqueName("dur-members");
        Properties cp = stringConsumerProps(group);
        cp.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        // With every broker down, a 4.x client re-bootstraps (KIP-899's default since 4.0)
        // and, for that moment, knows no topic: it rejoins because its topic "changed",
        // against any single broker. That is the client's doing, so it is turned off.
        cp.put("metadata.recovery.strategy", "none");
        List<String> rebalances = new java.util.concurrent.CopyOnWriteArrayList<>();
        org.apache.kafka.clients.consumer.ConsumerRebalanceListener listener =
                new org.apache.kafka.clients.consumer.ConsumerRebalanceListener() {
                    @Override
                    public void onPartitionsRevoked(java.util.Collection<TopicPartition> parts) {
                        if (!parts.isEmpty()) {
                            rebalances.add("revoked " + parts);
                        }
                    }

                    @Override
                    public void onPartitionsAssigned(java.util.Collection<TopicPartition> parts) {
                        rebalances.add("assigned " + parts);
                    }

                    @Override
                    public void onPartitionsLost(java.util.Collection<TopicPartition> parts) {
                        rebalances.add("lost " + parts);
                    }
                };
        try (KafkaProducer<String, String> p = new KafkaProducer<>(stringProducerProps());
             KafkaConsumer<String, String> c = new KafkaConsumer<>(cp)) {
            c.subscribe(List.of(topic), listener);
            List<ConsumerRecord<String, String>> got = new ArrayList<>();
            for (int i = 0; i < 30; i++) {
                p.send(new ProducerRecord<>(topic, i % PARTITIONS, "k", "before-" + i));
            }
            p.flush();
            pollUntil("30 records before the restart", WAIT, List.of(c), got, () -> got.size() >= 30);
            int generation = c.groupMetadata().generationId();
            String member = c.groupMetadata().memberId();
            assertEquals(1, rebalances.size(), "one assignment: " + rebalances);

            bounce(kill9);
            waitForTopic(topic, PARTITIONS);
            for (int i = 0; i < 30; i++) {
                p.send(new ProducerRecord<>(topic, i % PARTITIONS, "k", "after-" + i));
            }
            p.flush();
            pollUntil("30 records after the restart", WAIT, List.of(c), got, () -> got.size() >= 60);
            // Heartbeats at the old generation must have been answered for a while.
            long until = System.currentTimeMillis() + 4_000;
            while (System.currentTimeMillis() < until) {
                c.poll(Duration.ofMillis(200));
            }
            assertEquals(List.of(rebalances.get(0)), rebalances, "no rebalance through the restart");
            assertEquals(generation, c.groupMetadata().generationId());
            assertEquals(member, c.groupMetadata().memberId());
            var described = get(admin.describeConsumerGroups(List.of(group)).all()).get(group);
            assertEquals(1, described.members().size());
            assertEquals(PARTITIONS, described.members().iterator().next().assignment().topicPartitions().size());
        }
    }

    @ParameterizedTest(name = "kill9={0}")
    @ValueSource(booleans = {false, true})
    void committedOffsetsSurviveRestart(boolean kill9) {
        String topic = createTopic("dur-offsets", PARTITIONS);
        try (KafkaProducer<String, String> p = new KafkaProducer<>(stringProducerProps())) {
            for (int i = 0; i < 300; i++) {
                p.send(new ProducerRecord<>(topic, i % PARTITIONS, "k" + i, Integer.toString(i)));
            }
            p.flush();
        }
        String group = uniqueName("dur-group");
        Properties cp = stringConsumerProps(group);
        cp.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        TopicPartition tp0 = new TopicPartition(topic, 0);
        TopicPartition tp1 = new TopicPartition(topic, 1);
        TopicPartition tp2 = new TopicPartition(topic, 2);
        try (KafkaConsumer<String, String> c = new KafkaConsumer<>(cp)) {
            c.subscribe(List.of(topic));
            List<ConsumerRecord<String, String>> got = new ArrayList<>();
            pollUntil("300 records consumed", WAIT, List.of(c), got, () -> got.size() >= 300);
            c.commitSync(Map.of(tp0, new OffsetAndMetadata(17, "m0"), tp1, new OffsetAndMetadata(42),
                    tp2, new OffsetAndMetadata(100)));
        }
        bounce(kill9);
        waitForTopic(topic, PARTITIONS);
        try (KafkaConsumer<String, String> c = new KafkaConsumer<>(cp)) {
            Map<TopicPartition, OffsetAndMetadata> committed = c.committed(Set.of(tp0, tp1, tp2));
            assertNotNull(committed.get(tp0), "committed offset of " + tp0 + " after restart");
            assertEquals(17L, committed.get(tp0).offset());
            assertEquals("m0", committed.get(tp0).metadata());
            assertEquals(42L, committed.get(tp1).offset());
            assertEquals(100L, committed.get(tp2).offset());
            c.subscribe(List.of(topic));
            List<ConsumerRecord<String, String>> got = new ArrayList<>();
            int expected = (100 - 17) + (100 - 42);
            pollUntil("resume from committed offsets after restart", WAIT, List.of(c), got,
                    () -> got.size() >= expected);
            Map<Integer, Long> first = new HashMap<>();
            for (ConsumerRecord<String, String> r : got) {
                first.putIfAbsent(r.partition(), r.offset());
            }
            assertEquals(Map.of(0, 17L, 1, 42L), first);
            assertEquals(expected, got.size());
        }
    }
}
