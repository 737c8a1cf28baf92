package dev.sluice.pipelines.flink;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;

import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.TimeUnit;

import dev.sluice.pipelines.Kafka;
import dev.sluice.pipelines.KafkaTest;

import org.apache.flink.api.common.eventtime.WatermarkStrategy;
import org.apache.flink.api.java.tuple.Tuple2;
import org.apache.flink.connector.kafka.sink.KafkaSink;
import org.apache.flink.connector.kafka.source.KafkaSource;
import org.apache.flink.connector.kafka.source.enumerator.initializer.OffsetsInitializer;
import org.apache.flink.core.execution.JobClient;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.record.TimestampType;
import org.junit.jupiter.api.Test;

/**
 * A bounded Flink job: KafkaSource (earliest to latest) -> map -> KafkaSink
 * (at-least-once), in an in-process MiniCluster with parallelism 2.
 */
class BoundedPipelineTest extends KafkaTest {
    static final int N = 3000;


    @Test
    void boundedSourceMapSinkCarriesEveryRecord() throws Exception {
        String in = Kafka.uniqueName("flink-bounded-in");
        String out = Kafka.uniqueName("flink-bounded-out");
        String group = Kafka.uniqueName("flink-bounded");
        kafka.createTopics(3, in, out);
        // Each record has a CreateTime timestamp of its own; Flink's source takes it as the
        // element's timestamp and the sink writes it back.
        long t0 = System.currentTimeMillis() - 3_600_000L;
        Kafka.produceRecords(0, N, i -> new ProducerRecord<>(in, null, t0 + i, "key-" + i, "value-" + i));
        Map<TopicPartition, Long> inEnd = kafka.endOffsets(in);
        assertEquals(N, inEnd.values().stream().mapToLong(Long::longValue).sum(), "input log ends " + inEnd);

        StreamExecutionEnvironment env = Jobs.environment();
        // Offsets are committed asynchronously on checkpoints; a bounded job may end before
        // one lands, so the group's commits are checked by StreamingPipelineTest instead.
        KafkaSource<Tuple2<String, String>> source = Jobs.source(in, group, OffsetsInitializer.earliest())
                .setBounded(OffsetsInitializer.latest())
                .build();
        KafkaSink<Tuple2<String, String>> sink = Jobs.sink(out);
        env.fromSource(source, WatermarkStrategy.noWatermarks(), "kafka-in")
                .map(kv -> Tuple2.of(kv.f0, kv.f1.toUpperCase(Locale.ROOT)))
                .returns(KeyValue.TYPE)
                .sinkTo(sink)
                .name("kafka-out");

        JobClient job = env.executeAsync("sluice-flink-bounded");
        try {
            // The job ends by itself once every split reached the offsets that were latest at start.
            assertNotNull(job.getJobExecutionResult().get(120, TimeUnit.SECONDS));
        } catch (java.util.concurrent.TimeoutException e) {
            job.cancel().get(30, TimeUnit.SECONDS);
            throw new AssertionError("bounded Flink job did not finish within 120 s", e);
        }

        // Where each key went in the input; the sink uses the same default partitioner.
        Map<String, Integer> inPartition = new HashMap<>();
        for (ConsumerRecord<String, String> r : kafka.readAll(in)) {
            inPartition.put(r.key(), r.partition());
        }
        assertEquals(N, inPartition.size(), "distinct keys read back from the input topic");

        List<ConsumerRecord<String, String>> records = kafka.readAll(out);
        Map<String, String> got = new HashMap<>();
        for (ConsumerRecord<String, String> r : records) {
            got.put(r.key(), r.value());
            assertEquals(inPartition.get(r.key()), r.partition(),
                    "output partition of key " + r.key() + " (same key hashing as the input)");
            long i = Long.parseLong(r.key().substring("key-".length()));
            assertEquals(TimestampType.CREATE_TIME, r.timestampType(), "timestamp type of " + r.key());
            assertEquals(t0 + i, r.timestamp(), "timestamp of " + r.key() + " (carried from the input)");
        }
        Map<String, String> want = new HashMap<>();
        for (int i = 0; i < N; i++) {
            want.put("key-" + i, "VALUE-" + i);
        }
        assertEquals(want, got, "every input record, transformed, in the output topic");
        // At-least-once may duplicate only across a failover, and this job has none.
        assertEquals(N, records.size(), "records in the output topic");
    }
}
