package dev.sluice.pipelines.spark;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

import dev.sluice.pipelines.Kafka;
import dev.sluice.pipelines.KafkaTest;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.header.internals.RecordHeaders;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** Spark batch jobs over Kafka: spark.read.format("kafka") and df.write.format("kafka"). */
class BatchPipelineTest extends KafkaTest {
    static final int N = 3000;

    private SparkSession spark;

    @BeforeEach
    void openSpark() {
        spark = Spark.session();
    }

    private Dataset<Row> read(String topic, String starting, String ending) {
        return spark.read().format("kafka")
                .option("kafka.bootstrap.servers", Kafka.BOOTSTRAP)
                .option("subscribe", topic)
                .option("startingOffsets", starting)
                .option("endingOffsets", ending)
                .load()
                .selectExpr("CAST(key AS STRING) AS key", "CAST(value AS STRING) AS value",
                        "topic", "partition", "offset");
    }

    @Test
    void batchReadAllThenWriteTransformed() throws Exception {
        String in = Kafka.uniqueName("spark-batch-in");
        String out = Kafka.uniqueName("spark-batch-out");
        kafka.createTopics(3, in, out);
        Kafka.produce(in, 0, N, i -> "key-" + i, i -> "value-" + i);
        Map<TopicPartition, Long> inEnd = kafka.endOffsets(in);

        // Where each key is in the input, as a plain consumer sees it.
        Map<String, TopicPartition> inPartition = new HashMap<>();
        Map<String, Long> inOffset = new HashMap<>();
        for (ConsumerRecord<String, String> r : kafka.readAll(in)) {
            inPartition.put(r.key(), new TopicPartition(r.topic(), r.partition()));
            inOffset.put(r.key(), r.offset());
        }
        assertEquals(N, inPartition.size(), "distinct keys read back from the input topic");

        Dataset<Row> df = read(in, "earliest", "latest");
        List<Row> rows = df.collectAsList();
        assertEquals(N, rows.size(), "rows Spark read from " + in);
        Map<String, String> got = new HashMap<>();
        for (Row r : rows) {
            String key = r.getAs("key");
            assertEquals(in, r.getAs("topic"), "topic column");
            assertEquals(inPartition.get(key), new TopicPartition(in, r.<Integer>getAs("partition")),
                    "partition of " + key);
            assertEquals(inOffset.get(key), r.<Long>getAs("offset"), "offset of " + key);
            assertNull(got.put(key, r.getAs("value")), "key read twice: " + key);
        }
        Map<String, String> want = new HashMap<>();
        for (int i = 0; i < N; i++) {
            want.put("key-" + i, "value-" + i);
        }
        assertEquals(want, got, "keys and values Spark read");

        // An aggregation over the Kafka rows (through a shuffle): rows per partition = log ends.
        Map<TopicPartition, Long> perPartition = new HashMap<>();
        for (Row r : df.groupBy("partition").count().collectAsList()) {
            perPartition.put(new TopicPartition(in, r.<Integer>getAs("partition")), r.<Long>getAs("count"));
        }
        assertEquals(inEnd, perPartition, "rows per partition");

        // Write back, transformed, with a header naming the source offset; no partition
        // column, so the producer places rows by key.
        df.selectExpr("key", "upper(value) AS value",
                        "array(named_struct('key', 'src-offset', 'value', CAST(CAST(offset AS STRING) AS BINARY)))"
                                + " AS headers")
                .write().format("kafka")
                .option("kafka.bootstrap.servers", Kafka.BOOTSTRAP)
                .option("topic", out)
                .save();
        List<ConsumerRecord<String, String>> written = kafka.readAll(out);
        assertEquals(N, written.size(), "records Spark wrote to " + out);
        Map<String, String> gotOut = new HashMap<>();
        for (ConsumerRecord<String, String> r : written) {
            gotOut.put(r.key(), r.value());
            assertEquals(inPartition.get(r.key()).partition(), r.partition(),
                    "output partition of key " + r.key() + " (same key hashing as the input)");
            Header[] h = r.headers().toArray();
            assertEquals(1, h.length, "headers of " + r.key());
            assertEquals("src-offset", h[0].key(), "header of " + r.key());
            assertEquals(String.valueOf(inOffset.get(r.key())), new String(h[0].value(), StandardCharsets.UTF_8),
                    "header src-offset of " + r.key());
        }
        Map<String, String> wantOut = new HashMap<>();
        want.forEach((k, v) -> wantOut.put(k, v.toUpperCase(Locale.ROOT)));
        assertEquals(wantOut, gotOut, "every record, transformed, in the output topic");
    }

    @Test
    void batchReadOfAnOffsetRange() throws Exception {
        String in = Kafka.uniqueName("spark-range-in");
        kafka.createTopics(3, in);
        Kafka.produce(in, 0, 300, i -> "key-" + i, i -> "value-" + i);
        Map<TopicPartition, Long> end = kafka.endOffsets(in);
        for (Map.Entry<TopicPartition, Long> e : end.entrySet()) {
            assertTrue(e.getValue() >= 20, "partition " + e.getKey() + " holds only " + e.getValue() + " records");
        }

        // Offsets [10, 20) of each partition, given as JSON as a job resuming from known offsets would.
        String starting = "{\"" + in + "\":{\"0\":10,\"1\":10,\"2\":10}}";
        String ending = "{\"" + in + "\":{\"0\":20,\"1\":20,\"2\":20}}";
        List<Row> rows = read(in, starting, ending).collectAsList();
        assertEquals(30, rows.size(), "rows in offsets [10, 20) of 3 partitions");

        Map<String, String> want = new HashMap<>();
        for (ConsumerRecord<String, String> r : kafka.readAll(in)) {
            if (r.offset() >= 10 && r.offset() < 20) {
                want.put(r.partition() + "/" + r.offset(), r.key() + "=" + r.value());
            }
        }
        Map<String, String> got = new HashMap<>();
        for (Row r : rows) {
            got.put(r.<Integer>getAs("partition") + "/" + r.<Long>getAs("offset"),
                    r.<String>getAs("key") + "=" + r.<String>getAs("value"));
        }
        assertEquals(want, got, "records by partition/offset");
    }

    @Test
    void batchReadFromATimestampWithHeaders() throws Exception {
        String in = Kafka.uniqueName("spark-time-in");
        kafka.createTopics(3, in);
        // Record i: CreateTime t0 + i seconds, header idx = i.
        long t0 = System.currentTimeMillis() - 86_400_000L;
        Kafka.produceRecords(0, 300, i -> new ProducerRecord<>(in, null, t0 + 1000L * i, "key-" + i, "value-" + i,
                new RecordHeaders().add("idx", String.valueOf(i).getBytes(StandardCharsets.UTF_8))));

        // From the first record at or after t0 + 100 s in each partition (ListOffsets by timestamp).
        List<Row> rows = spark.read().format("kafka")
                .option("kafka.bootstrap.servers", Kafka.BOOTSTRAP)
                .option("subscribe", in)
                .option("startingTimestamp", String.valueOf(t0 + 100_000L))
                .option("endingOffsets", "latest")
                .option("includeHeaders", "true")
                .load()
                .selectExpr("CAST(key AS STRING) AS key", "CAST(value AS STRING) AS value",
                        "unix_millis(timestamp) AS ts", "timestampType",
                        "CAST(headers[0].key AS STRING) AS hkey", "CAST(headers[0].value AS STRING) AS hvalue",
                        "size(headers) AS nheaders")
                .collectAsList();
        Map<String, String> got = new HashMap<>();
        for (Row r : rows) {
            String key = r.getAs("key");
            int i = Integer.parseInt(key.substring("key-".length()));
            assertEquals(t0 + 1000L * i, r.<Long>getAs("ts"), "timestamp of " + key);
            assertEquals(0, r.<Integer>getAs("timestampType"), "timestampType (0 = CreateTime) of " + key);
            assertEquals(1, r.<Integer>getAs("nheaders"), "headers of " + key);
            assertEquals("idx", r.getAs("hkey"), "header key of " + key);
            assertEquals(String.valueOf(i), r.getAs("hvalue"), "header idx of " + key);
            assertNull(got.put(key, r.getAs("value")), "key read twice: " + key);
        }
        Map<String, String> want = new HashMap<>();
        for (int i = 100; i < 300; i++) {
            want.put("key-" + i, "value-" + i);
        }
        assertEquals(want, got, "records at or after the starting timestamp");
    }
}
