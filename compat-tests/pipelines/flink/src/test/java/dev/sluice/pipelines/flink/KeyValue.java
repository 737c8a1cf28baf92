package dev.sluice.pipelines.flink;

import java.nio.charset.StandardCharsets;

import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.api.java.tuple.Tuple2;
import org.apache.flink.connector.kafka.sink.KafkaRecordSerializationSchema;
import org.apache.flink.connector.kafka.source.reader.deserializer.KafkaRecordDeserializationSchema;
import org.apache.flink.util.Collector;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.producer.ProducerRecord;

/** The pipelines carry (key, value) string pairs; these map them to and from Kafka records. */
final class KeyValue {
    static final TypeInformation<Tuple2<String, String>> TYPE = Types.TUPLE(Types.STRING, Types.STRING);

    private KeyValue() {
    }

    private static String text(byte[] b) {
        return b == null ? null : new String(b, StandardCharsets.UTF_8);
    }

    private static byte[] bytes(String s) {
        return s == null ? null : s.getBytes(StandardCharsets.UTF_8);
    }

    /** Kafka record -> (key, value). */
    static final class Deserializer implements KafkaRecordDeserializationSchema<Tuple2<String, String>> {
        private static final long serialVersionUID = 1L;

        @Override
        public void deserialize(ConsumerRecord<byte[], byte[]> record, Collector<Tuple2<String, String>> out) {
            out.collect(Tuple2.of(text(record.key()), text(record.value())));
        }

        @Override
        public TypeInformation<Tuple2<String, String>> getProducedType() {
            return TYPE;
        }
    }

    /**
     * (key, value) -> Kafka record on a fixed topic. No partition is set, so the
     * producer's default partitioner places it by key, as a plain producer would.
     */
    static final class Serializer implements KafkaRecordSerializationSchema<Tuple2<String, String>> {
        private static final long serialVersionUID = 1L;
        private final String topic;

        Serializer(String topic) {
            this.topic = topic;
        }

        @Override
        public ProducerRecord<byte[], byte[]> serialize(Tuple2<String, String> kv, KafkaSinkContext context,
                                                        Long timestamp) {
            return new ProducerRecord<>(topic, null, timestamp, bytes(kv.f0), bytes(kv.f1));
        }
    }
}
