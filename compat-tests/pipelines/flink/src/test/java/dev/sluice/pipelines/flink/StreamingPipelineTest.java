package dev.sluice.pipelines.flink;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

import dev.sluice.pipelines.Kafka;
import dev.sluice.pipelines.KafkaTest;

import org.apache.flink.api.common.JobStatus;
import org.apache.flink.api.common.eventtime.WatermarkStrategy;
import org.apache.flink.api.common.functions.OpenContext;
import org.apache.flink.api.common.functions.RichMapFunction;
import org.apache.flink.api.common.state.ValueState;
import org.apache.flink.api.common.state.ValueStateDescriptor;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.api.java.tuple.Tuple2;
import org.apache.flink.connector.kafka.sink.KafkaSink;
import org.apache.flink.connector.kafka.source.KafkaSource;
import org.apache.flink.connector.kafka.source.enumerator.initializer.OffsetsInitializer;
import org.apache.flink.core.execution.JobClient;
import org.apache.flink.runtime.client.JobCancellationException;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.util.ExceptionUtils;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.common.TopicPartition;
import org.junit.jupiter.api.Test;

/**
 * An unbounded Flink job: KafkaSource -> keyBy -> stateful running count ->
 * KafkaSink (at-least-once), fed while it runs, then cancelled. Checks the
 * output after each of two waves of input and the offsets the source commits
 * on checkpoints; then a new job of the same group resumes from those offsets.
 */
class StreamingPipelineTest extends KafkaTest {
    static final int KEYS = 10;
    static final int PER_KEY = 100; // records per key in each wave
    static final int WAVE = KEYS * PER_KEY;


    /** Counts the records seen per key (keyed state) and emits (key, "count:value"). */
    static final class RunningCount extends RichMapFunction<Tuple2<String, String>, Tuple2<String, String>> {
        private static final long serialVersionUID = 1L;
        private transient ValueState<Long> count;

        @Override
        public void open(OpenContext ctx) {
            count = getRuntimeContext().getState(new ValueStateDescriptor<>("count", Types.LONG));
        }

        @Override
        public Tuple2<String, String> map(Tuple2<String, String> kv) throws Exception {
            Long c = count.value();
            long next = (c == null ? 0 : c) + 1;
            count.update(next);
            return Tuple2.of(kv.f0, next + ":" + kv.f1);
        }
    }

    @Test
    void unboundedKeyedCountCommitsOffsetsThatANewJobResumesFrom() throws Exception {
        String in = Kafka.uniqueName("flink-stream-in");
        String out = Kafka.uniqueName("flink-stream-out");
        String group = Kafka.uniqueName("flink-stream");
        kafka.createTopics(3, in, out);

        StreamExecutionEnvironment env = Jobs.environment();
        KafkaSource<Tuple2<String, String>> source = Jobs.source(in, group, OffsetsInitializer.earliest()).build();
        KafkaSink<Tuple2<String, String>> sink = Jobs.sink(out);
        env.fromSource(source, WatermarkStrategy.noWatermarks(), "kafka-in")
                .keyBy(kv -> kv.f0)
                .map(new RunningCount())
                .returns(KeyValue.TYPE)
                .sinkTo(sink)
                .name("kafka-out");

        long t0 = System.nanoTime();
        JobClient job = env.executeAsync("sluice-flink-streaming");
        try {
            // Wave 1, produced while the job starts up and runs.
            Kafka.produce(in, 0, WAVE, i -> "k" + (i % KEYS), i -> "v" + i);
            Map<TopicPartition, Long> end1 = kafka.endOffsets(in);
            assertEquals(WAVE, sum(end1), "input log ends after wave 1: " + end1);
            // (Offsets are only checked after wave 2: once the source is idle, its consumer sits
            // in a 10 s poll and the commit of a completed checkpoint waits for that poll to end.)
            checkCounts(awaitRecords(out, WAVE, job), 0, WAVE);
            progress(t0, "wave 1 in the output");

            // Wave 2: the running job picks it up and the keyed counts carry on from wave 1.
            Kafka.produce(in, WAVE, 2 * WAVE, i -> "k" + (i % KEYS), i -> "v" + i);
            Map<TopicPartition, Long> end2 = kafka.endOffsets(in);
            assertEquals(2 * WAVE, sum(end2), "input log ends after wave 2: " + end2);
            checkCounts(awaitRecords(out, 2 * WAVE, job), 0, 2 * WAVE);
            progress(t0, "wave 2 in the output");
            awaitCommitted(group, end2);
            progress(t0, "offsets committed");

            assertEquals(JobStatus.RUNNING, job.getJobStatus().get(30, TimeUnit.SECONDS), "job status");
        } finally {
            job.cancel().get(60, TimeUnit.SECONDS);
            progress(t0, "job cancelled");
        }
        ExecutionException ended = assertThrows(ExecutionException.class,
                () -> job.getJobExecutionResult().get(60, TimeUnit.SECONDS), "result of the cancelled job");
        assertTrue(ExceptionUtils.findThrowable(ended, JobCancellationException.class).isPresent(),
                () -> "the job ended otherwise than by cancellation: " + ended);

        // Wave 3 arrives while no job runs. A new job of the same group that starts from the
        // group's committed offsets reads exactly wave 3.
        Kafka.produce(in, 2 * WAVE, 3 * WAVE, i -> "k" + (i % KEYS), i -> "v" + i);
        String resumed = Kafka.uniqueName("flink-resumed-out");
        kafka.createTopics(3, resumed);
        StreamExecutionEnvironment env2 = Jobs.environment();
        KafkaSource<Tuple2<String, String>> source2 = Jobs.source(in, group, OffsetsInitializer.committedOffsets())
                .setBounded(OffsetsInitializer.latest())
                .build();
        env2.fromSource(source2, WatermarkStrategy.noWatermarks(), "kafka-in")
                .sinkTo(Jobs.sink(resumed))
                .name("kafka-out");
        JobClient job2 = env2.executeAsync("sluice-flink-resume");
        try {
            job2.getJobExecutionResult().get(120, TimeUnit.SECONDS);
        } catch (TimeoutException e) {
            job2.cancel().get(30, TimeUnit.SECONDS);
            throw new AssertionError("bounded job resuming group " + group + " did not finish within 120 s", e);
        }
        progress(t0, "resumed job finished");
        Set<String> want = new TreeSet<>();
        for (int i = 2 * WAVE; i < 3 * WAVE; i++) {
            want.add("k" + (i % KEYS) + "=v" + i);
        }
        List<ConsumerRecord<String, String>> got = kafka.readAll(resumed);
        Set<String> gotSet = new TreeSet<>();
        for (ConsumerRecord<String, String> r : got) {
            gotSet.add(r.key() + "=" + r.value());
        }
        assertEquals(want, gotSet, "what the job resuming from committed offsets read (wave 3 only)");
        assertEquals(WAVE, got.size(), "records the resumed job wrote");
    }

    private static void progress(long t0, String what) {
        System.err.printf("[streaming] %s after %d ms%n", what, (System.nanoTime() - t0) / 1_000_000);
    }

    private static long sum(Map<TopicPartition, Long> m) {
        return m.values().stream().mapToLong(Long::longValue).sum();
    }

    /**
     * Reads the output until it holds {@code want} records (or fails after 90 s),
     * then checks that no more than that arrive.
     */
    private List<ConsumerRecord<String, String>> awaitRecords(String topic, int want, JobClient job)
            throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(90);
        List<ConsumerRecord<String, String>> got = kafka.readAll(topic);
        while (got.size() < want) {
            if (System.nanoTime() > deadline) {
                throw new AssertionError("output topic " + topic + " holds " + got.size() + " records after 90 s, want "
                        + want + " (job status " + job.getJobStatus().get(10, TimeUnit.SECONDS) + ")");
            }
            JobStatus s = job.getJobStatus().get(10, TimeUnit.SECONDS);
            assertTrue(s == JobStatus.RUNNING || s == JobStatus.CREATED || s == JobStatus.INITIALIZING,
                    "Flink job left RUNNING: " + s);
            Thread.sleep(500);
            got = kafka.readAll(topic);
        }
        // At-least-once may duplicate only across a failover, and this job has none.
        assertEquals(want, got.size(), "records in the output topic " + topic);
        return got;
    }

    /**
     * Input record i has key "k(i % KEYS)" and value "v(i)". For each key, the
     * output must hold the counts 1..n exactly once, carry each of that key's
     * input values in [from, to) exactly once, and have counted them in order.
     */
    private static void checkCounts(List<ConsumerRecord<String, String>> records, int from, int to) {
        Map<String, Set<Long>> counts = new HashMap<>();
        Map<String, Set<String>> values = new HashMap<>();
        for (ConsumerRecord<String, String> r : records) {
            String[] parts = r.value().split(":", 2);
            assertEquals(2, parts.length, "output value " + r.value());
            // Per key, the input is read in offset order, so the c-th record of key kK is v(K + (c-1)*KEYS).
            int k = Integer.parseInt(r.key().substring(1));
            long c = Long.parseLong(parts[0]);
            assertEquals("v" + (k + (c - 1) * KEYS), parts[1], "value counted as #" + c + " of key " + r.key());
            assertTrue(counts.computeIfAbsent(r.key(), x -> new TreeSet<>()).add(Long.parseLong(parts[0])),
                    "count " + parts[0] + " twice for key " + r.key());
            assertTrue(values.computeIfAbsent(r.key(), x -> new TreeSet<>()).add(parts[1]),
                    "value " + parts[1] + " twice for key " + r.key());
        }
        assertEquals(KEYS, counts.size(), "keys in the output: " + counts.keySet());
        for (int k = 0; k < KEYS; k++) {
            String key = "k" + k;
            Set<Long> wantCounts = new TreeSet<>();
            Set<String> wantValues = new TreeSet<>();
            for (int i = from; i < to; i++) {
                if (i % KEYS == k) {
                    wantCounts.add((long) wantCounts.size() + 1);
                    wantValues.add("v" + i);
                }
            }
            assertEquals(wantCounts, counts.get(key), "running counts for key " + key);
            assertEquals(wantValues, values.get(key), "input values for key " + key);
        }
    }

    /** Waits (up to 30 s) until the group's committed offsets equal the input's log ends. */
    private void awaitCommitted(String group, Map<TopicPartition, Long> want) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        Map<TopicPartition, Long> got = kafka.committed(group);
        while (!got.equals(want) && System.nanoTime() < deadline) {
            Thread.sleep(250);
            got = kafka.committed(group);
        }
        assertEquals(want, got, "offsets committed on checkpoints by the Flink source for group " + group);
    }
}
