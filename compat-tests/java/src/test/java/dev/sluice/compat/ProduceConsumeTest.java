package dev.sluice.compat;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.atomic.AtomicReference;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.header.internals.RecordHeader;
import org.apache.kafka.common.record.TimestampType;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.ValueSource;

class ProduceConsumeTest extends BrokerTestBase {
    private static final int PARTITIONS = 6;

    /** Deterministic record content for index i of a run. */
    static final class Expected {
        final byte[] key;
        final byte[] value;
        final long timestamp;
        final List<Header> headers;

        Expected(String run, int i, long baseTs) {
            this.key = ("key-" + (i % 997)).getBytes(StandardCharsets.UTF_8);
            if (i % 500 == 0) {
                this.value = null; // null value
            } else if (i % 500 == 1) {
                this.value = new byte[0]; // empty value
            } else {
                StringBuilder sb = new StringBuilder("value-").append(i).append('-');
                int len = (i * 31) % 200;
                for (int j = 0; j < len; j++) {
                    sb.append((char) ('a' + ((i + j) % 26)));
                }
                this.value = sb.toString().getBytes(StandardCharsets.UTF_8);
            }
            this.timestamp = baseTs + i;
            this.headers = new ArrayList<>();
            headers.add(new RecordHeader("idx", ByteBuffer.allocate(4).putInt(i).array()));
            headers.add(new RecordHeader("run", run.getBytes(StandardCharsets.UTF_8)));
            if (i % 3 == 0) {
                headers.add(new RecordHeader("null-header", (byte[]) null));
            }
            if (i % 7 == 0) {
                headers.add(new RecordHeader("idx", new byte[] {7})); // repeated header key
            }
        }

        ProducerRecord<byte[], byte[]> record(String topic) {
            return new ProducerRecord<>(topic, null, timestamp, key, value, headers);
        }
    }

    static int indexOf(ConsumerRecord<byte[], byte[]> r) {
        var it = r.headers().headers("idx").iterator();
        assertTrue(it.hasNext(), "idx header missing at " + r.topic() + "-" + r.partition() + "@" + r.offset());
        return ByteBuffer.wrap(it.next().value()).getInt();
    }

    /**
     * Produces n records, consumes them with a group and checks exactly-once delivery,
     * per-partition order and that keys, values, headers and timestamps are intact.
     */
    private void roundTrip(String run, Properties producerOverrides, int n, boolean expectOffsets) {
        roundTrip(run, producerOverrides, n, expectOffsets, Map.of());
    }

    private void roundTrip(String run, Properties producerOverrides, int n, boolean expectOffsets,
            Map<String, String> topicConfigs) {
        String topic = createTopic("pc-" + run, PARTITIONS, topicConfigs);
        long baseTs = System.currentTimeMillis() - 86_400_000L;
        Expected[] expected = new Expected[n];
        RecordMetadata[] acked = new RecordMetadata[n];
        AtomicReference<Exception> sendError = new AtomicReference<>();

        Properties pp = producerProps();
        pp.putAll(producerOverrides);
        try (KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(pp)) {
            for (int i = 0; i < n; i++) {
                expected[i] = new Expected(run, i, baseTs);
                final int idx = i;
                producer.send(expected[i].record(topic), (md, e) -> {
                    if (e != null) {
                        sendError.compareAndSet(null, e);
                    } else {
                        acked[idx] = md;
                    }
                });
            }
            producer.flush();
        }
        if (sendError.get() != null) {
            throw new AssertionError("send failed", sendError.get());
        }
        for (int i = 0; i < n; i++) {
            assertNotNull(acked[i], "record " + i + " not acknowledged");
            if (expectOffsets) {
                assertTrue(acked[i].offset() >= 0, "record " + i + " offset " + acked[i].offset());
            }
            assertEquals(expected[i].timestamp, acked[i].timestamp(), "acked timestamp of " + i);
        }

        // Consume with a group.
        Properties cp = consumerProps(uniqueName("g-" + run));
        cp.put("max.poll.records", "2000");
        List<ConsumerRecord<byte[], byte[]>> got = new ArrayList<>();
        try (KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(cp)) {
            consumer.subscribe(List.of(topic));
            long deadline = System.nanoTime() + Duration.ofSeconds(60).toNanos();
            while (got.size() < n && System.nanoTime() < deadline) {
                consumer.poll(Duration.ofMillis(200)).forEach(got::add);
            }
            // a little longer to catch duplicates
            long extra = System.nanoTime() + Duration.ofMillis(500).toNanos();
            while (System.nanoTime() < extra) {
                consumer.poll(Duration.ofMillis(100)).forEach(got::add);
            }
            consumer.commitSync();
        }

        int[] seen = new int[n];
        Map<Integer, Long> nextOffset = new HashMap<>();
        Map<Integer, Integer> perPartition = new HashMap<>();
        for (ConsumerRecord<byte[], byte[]> r : got) {
            int i = indexOf(r);
            assertTrue(i >= 0 && i < n, "index out of range " + i);
            seen[i]++;
            if (seen[i] > 1) {
                fail("record " + i + " delivered twice (partition " + r.partition() + " offset " + r.offset() + ")");
            }
            Expected e = expected[i];
            // per-partition order: offsets consecutive from 0
            long want = nextOffset.getOrDefault(r.partition(), 0L);
            assertEquals(want, r.offset(), "partition " + r.partition() + " offsets must be consecutive");
            nextOffset.put(r.partition(), want + 1);
            perPartition.merge(r.partition(), 1, Integer::sum);
            if (expectOffsets) {
                assertEquals(acked[i].partition(), r.partition(), "partition of record " + i);
                assertEquals(acked[i].offset(), r.offset(), "offset of record " + i);
            }
            assertArrayEquals(e.key, r.key(), "key of record " + i);
            if (e.value == null) {
                assertNull(r.value(), "record " + i + " must have a null value");
            } else {
                assertArrayEquals(e.value, r.value(), "value of record " + i);
            }
            assertEquals(e.timestamp, r.timestamp(), "timestamp of record " + i);
            assertEquals(TimestampType.CREATE_TIME, r.timestampType(), "timestamp type of record " + i);
            Header[] hs = r.headers().toArray();
            assertEquals(e.headers.size(), hs.length, "header count of record " + i);
            for (int h = 0; h < hs.length; h++) {
                assertEquals(e.headers.get(h).key(), hs[h].key(), "header " + h + " key of record " + i);
                assertArrayEquals(e.headers.get(h).value(), hs[h].value(), "header " + h + " value of record " + i);
            }
        }
        int missing = 0;
        int firstMissing = -1;
        for (int i = 0; i < n; i++) {
            if (seen[i] == 0) {
                missing++;
                if (firstMissing < 0) {
                    firstMissing = i;
                }
            }
        }
        assertEquals(0, missing, missing + " of " + n + " records never consumed (first: " + firstMissing + ")");
        assertEquals(PARTITIONS, perPartition.size(), "records spread over all partitions: " + perPartition);
        // log end offsets agree with what was consumed
        Map<TopicPartition, Long> ends = endOffsets(topic, PARTITIONS);
        for (int p = 0; p < PARTITIONS; p++) {
            assertEquals((long) perPartition.getOrDefault(p, 0), ends.get(new TopicPartition(topic, p)),
                    "log end offset of partition " + p);
        }
    }

    @ParameterizedTest(name = "compression.type={0}")
    @ValueSource(strings = {"none", "gzip", "snappy", "lz4", "zstd"})
    void idempotentRoundTrip(String compression) {
        Properties o = new Properties();
        o.put(ProducerConfig.COMPRESSION_TYPE_CONFIG, compression);
        roundTrip("c-" + compression, o, 20_000, true);
    }

    /**
     * A topic's compression.type: the broker stores each batch rebuilt in the topic's
     * codec (Kafka's LogValidator), and the Java consumer, whose LZ4 reader is the
     * strictest (independent blocks only), reads every record as produced.
     */
    @ParameterizedTest(name = "topic {0}, producer {1}")
    @CsvSource({"lz4,none", "lz4,zstd", "zstd,gzip", "gzip,lz4", "snappy,none", "uncompressed,snappy"})
    void topicCompressionRoundTrip(String topicCodec, String producerCodec) {
        Properties o = new Properties();
        o.put(ProducerConfig.COMPRESSION_TYPE_CONFIG, producerCodec);
        // Batches of 100 KB and more: LZ4 frames of several 64 KiB blocks.
        o.put(ProducerConfig.BATCH_SIZE_CONFIG, "262144");
        o.put(ProducerConfig.LINGER_MS_CONFIG, "50");
        roundTrip("tc-" + topicCodec + "-" + producerCodec, o, 5_000, true,
                Map.of("compression.type", topicCodec));
    }

    @ParameterizedTest(name = "acks={0}")
    @ValueSource(strings = {"0", "1"})
    void nonIdempotentAcks(String acks) {
        Properties o = new Properties();
        o.put(ProducerConfig.ACKS_CONFIG, acks);
        o.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, "false");
        roundTrip("acks" + acks, o, 5_000, !"0".equals(acks));
    }

    @Test
    void produceToMissingTopicAutoCreatesIt() throws Exception {
        String topic = uniqueName("pc-autocreate");
        try (KafkaProducer<String, String> p = new KafkaProducer<>(stringProducerProps())) {
            RecordMetadata md = p.send(new ProducerRecord<>(topic, "k", "v")).get();
            assertEquals(0L, md.offset());
        }
        try (KafkaConsumer<String, String> c = new KafkaConsumer<>(stringConsumerProps(null))) {
            List<ConsumerRecord<String, String>> recs = readAll(c, topic, 1, 1, WAIT);
            assertEquals(1, recs.size());
            assertEquals("k", recs.get(0).key());
            assertEquals("v", recs.get(0).value());
        }
    }

    @Test
    void largeRecordsRoundTrip() throws Exception {
        String topic = createTopic("pc-large", 1);
        byte[] big = new byte[900_000];
        new java.util.Random(42).nextBytes(big);
        try (KafkaProducer<byte[], byte[]> p = new KafkaProducer<>(producerProps())) {
            for (int i = 0; i < 3; i++) {
                p.send(new ProducerRecord<>(topic, 0, null, ("big" + i).getBytes(StandardCharsets.UTF_8), big)).get();
            }
        }
        try (KafkaConsumer<byte[], byte[]> c = new KafkaConsumer<>(consumerProps(null))) {
            List<ConsumerRecord<byte[], byte[]>> recs = readAll(c, topic, 1, 3, WAIT);
            assertEquals(3, recs.size());
            for (ConsumerRecord<byte[], byte[]> r : recs) {
                assertArrayEquals(big, r.value());
            }
        }
    }
}
