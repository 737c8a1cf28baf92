package dev.sluice.pipelines.spark;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

import dev.sluice.pipelines.Kafka;
import dev.sluice.pipelines.KafkaTest;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.streaming.DataStreamReader;
import org.apache.spark.sql.streaming.StreamingQuery;
import org.apache.spark.sql.streaming.StreamingQueryProgress;
import org.apache.spark.sql.streaming.Trigger;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Structured Streaming from Kafka to Kafka with a checkpoint, run twice with
 * Trigger.AvailableNow: the second run must take exactly the records produced
 * after the first one.
 */
class StreamingPipelineTest extends KafkaTest {
    static final int N = 2000;
    static final int M = 500;

    private SparkSession spark;

    @TempDir
    Path tmp;

    @BeforeEach
    void openSpark() {
        spark = Spark.session();
    }

    /**
     * Runs the query until it has consumed what was in the topic at its start
     * (taking at most maxPerBatch records per micro-batch if that is not 0);
     * returns the rows each micro-batch read.
     */
    private List<Long> runOnce(String in, String out, String checkpoint, int maxPerBatch) throws Exception {
        DataStreamReader reader = spark.readStream().format("kafka")
                .option("kafka.bootstrap.servers", Kafka.BOOTSTRAP)
                .option("subscribe", in)
                .option("startingOffsets", "earliest");
        if (maxPerBatch > 0) {
            reader = reader.option("maxOffsetsPerTrigger", String.valueOf(maxPerBatch));
        }
        StreamingQuery q = reader.load()
                .selectExpr("CAST(key AS STRING) AS key",
                        "concat('S:', upper(CAST(value AS STRING))) AS value")
                .writeStream().format("kafka")
                .option("kafka.bootstrap.servers", Kafka.BOOTSTRAP)
                .option("topic", out)
                .option("checkpointLocation", checkpoint)
                .trigger(Trigger.AvailableNow())
                .start();
        boolean ended = q.awaitTermination(120_000);
        if (!ended) {
            q.stop();
        }
        assertTrue(ended, "AvailableNow query did not end within 120 s");
        assertTrue(q.exception().isEmpty(), () -> "query failed: " + q.exception().get());
        List<Long> rows = new ArrayList<>();
        for (StreamingQueryProgress p : q.recentProgress()) {
            if (p.numInputRows() > 0) {
                rows.add(p.numInputRows());
            }
        }
        return rows;
    }

    private static long sum(List<Long> rows) {
        return rows.stream().mapToLong(Long::longValue).sum();
    }

    private Map<String, Integer> outputCounts(String out, int wantTotal) throws Exception {
        List<ConsumerRecord<String, String>> records = kafka.readAll(out);
        assertEquals(wantTotal, records.size(), "records in " + out);
        Map<String, Integer> counts = new HashMap<>();
        for (ConsumerRecord<String, String> r : records) {
            assertEquals("S:VALUE-" + r.key().substring("key-".length()), r.value(), "value of " + r.key());
            counts.merge(r.key(), 1, Integer::sum);
        }
        return counts;
    }

    private static Map<String, Integer> once(int from, int to) {
        Map<String, Integer> m = new HashMap<>();
        for (int i = from; i < to; i++) {
            m.put("key-" + i, 1);
        }
        return m;
    }

    @Test
    void availableNowResumesFromItsCheckpoint() throws Exception {
        String in = Kafka.uniqueName("spark-stream-in");
        String out = Kafka.uniqueName("spark-stream-out");
        kafka.createTopics(3, in, out);
        String checkpoint = tmp.resolve("checkpoint").toString();

        Kafka.produce(in, 0, N, i -> "key-" + i, i -> "value-" + i);
        List<Long> first = runOnce(in, out, checkpoint, 0);
        assertEquals(N, sum(first), "rows the first run read, per batch " + first);
        assertEquals(once(0, N), outputCounts(out, N), "output after the first run: every key once");

        // Same query, same checkpoint: it resumes where the first run ended. This time at
        // most 200 records per micro-batch, so the M new records take several batches.
        Kafka.produce(in, N, N + M, i -> "key-" + i, i -> "value-" + i);
        List<Long> second = runOnce(in, out, checkpoint, 200);
        assertEquals(M, sum(second), "rows the second run read, per batch " + second);
        assertTrue(second.size() >= 3 && second.stream().allMatch(n -> n <= 200),
                "the second run's batches (maxOffsetsPerTrigger 200): " + second);
        assertEquals(once(0, N + M), outputCounts(out, N + M), "output after the second run: every key once");

        // Nothing new: a third run reads nothing and writes nothing.
        List<Long> third = runOnce(in, out, checkpoint, 0);
        assertEquals(List.of(), third, "batches with rows in the third run");
        assertEquals(once(0, N + M), outputCounts(out, N + M), "output after the third run");
    }
}
