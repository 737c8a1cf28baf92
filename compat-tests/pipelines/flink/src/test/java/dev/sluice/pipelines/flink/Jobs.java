package dev.sluice.pipelines.flink;

import org.apache.flink.api.java.tuple.Tuple2;
import org.apache.flink.connector.base.DeliveryGuarantee;
import org.apache.flink.connector.kafka.sink.KafkaSink;
import org.apache.flink.connector.kafka.source.KafkaSourceBuilder;
import org.apache.flink.connector.kafka.source.KafkaSource;
import org.apache.flink.connector.kafka.source.enumerator.initializer.OffsetsInitializer;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;

import dev.sluice.pipelines.Kafka;

/** What every job of the suite is made of: an in-process environment, a source, a sink. */
final class Jobs {
    private Jobs() {
    }

    /** An in-process environment of parallelism 2 that checkpoints every 500 ms (the source commits its offsets then). */
    static StreamExecutionEnvironment environment() {
        StreamExecutionEnvironment env = StreamExecutionEnvironment.createLocalEnvironment(2);
        env.enableCheckpointing(500);
        return env;
    }

    /** A source of (key, value) pairs from `topic` for consumer group `group`; callers add bounds or properties. */
    static KafkaSourceBuilder<Tuple2<String, String>> source(String topic, String group, OffsetsInitializer start) {
        return KafkaSource.<Tuple2<String, String>>builder()
                .setBootstrapServers(Kafka.BOOTSTRAP)
                .setTopics(topic)
                .setGroupId(group)
                .setStartingOffsets(start)
                .setDeserializer(new KeyValue.Deserializer());
    }

    /** An at-least-once sink of (key, value) pairs to `topic` (exactly-once needs transactions, which Sluice has not). */
    static KafkaSink<Tuple2<String, String>> sink(String topic) {
        return KafkaSink.<Tuple2<String, String>>builder()
                .setBootstrapServers(Kafka.BOOTSTRAP)
                .setRecordSerializer(new KeyValue.Serializer(topic))
                .setDeliveryGuarantee(DeliveryGuarantee.AT_LEAST_ONCE)
                .build();
    }
}
