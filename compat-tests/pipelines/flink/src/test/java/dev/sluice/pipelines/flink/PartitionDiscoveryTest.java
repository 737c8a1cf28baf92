package dev.sluice.pipelines.flink;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.time.Duration;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.TimeUnit;

import dev.sluice.pipelines.Kafka;
import dev.sluice.pipelines.KafkaTest;
import org.apache.flink.api.common.JobStatus;
import org.apache.flink.api.common.eventtime.WatermarkStrategy;
import org.apache.flink.api.java.tuple.Tuple2;
import org.apache.flink.connector.kafka.source.KafkaSource;
import org.apache.flink.connector.kafka.source.enumerator.initializer.OffsetsInitializer;
import org.apache.flink.core.execution.JobClient;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.junit.jupiter.api.Test;

/**
 * A running KafkaSource discovers a partition added to its topic
 * (CreatePartitions) and reads it from its start.
 */
class PartitionDiscoveryTest extends KafkaTest {
    static final int PER_PARTITION = 100;


    private static void produceTo(String topic, int partition) throws Exception {
        int from = partition * PER_PARTITION;
        Kafka.produceRecords(from, from + PER_PARTITION,
                i -> new ProducerRecord<>(topic, partition, "p" + partition, "v" + i));
    }

    private static Set<String> values(List<ConsumerRecord<String, String>> records) {
        Set<String> s = new TreeSet<>();
        for (ConsumerRecord<String, String> r : records) {
            s.add(r.key() + "=" + r.value());
        }
        return s;
    }

    private static Set<String> expected(int partitions) {
        Set<String> s = new TreeSet<>();
        for (int p = 0; p < partitions; p++) {
            for (int i = p * PER_PARTITION; i < (p + 1) * PER_PARTITION; i++) {
                s.add("p" + p + "=v" + i);
            }
        }
        return s;
    }

    @Test
    void runningSourceReadsAnAddedPartition() throws Exception {
        String in = Kafka.uniqueName("flink-discovery-in");
        String out = Kafka.uniqueName("flink-discovery-out");
        kafka.createTopics(2, in);
        kafka.createTopics(3, out);
        produceTo(in, 0);
        produceTo(in, 1);

        StreamExecutionEnvironment env = Jobs.environment();
        KafkaSource<Tuple2<String, String>> source =
                Jobs.source(in, Kafka.uniqueName("flink-discovery"), OffsetsInitializer.earliest())
                        .setProperty("partition.discovery.interval.ms", "500")
                        .build();
        env.fromSource(source, WatermarkStrategy.noWatermarks(), "kafka-in")
                .sinkTo(Jobs.sink(out))
                .name("kafka-out");

        JobClient job = env.executeAsync("sluice-flink-discovery");
        try {
            List<ConsumerRecord<String, String>> got = kafka.readAtLeast(out, 2 * PER_PARTITION, Duration.ofSeconds(90));
            assertEquals(expected(2), values(got), "output before the topic grew");
            assertEquals(2 * PER_PARTITION, got.size(), "records in the output before the topic grew");

            kafka.addPartitions(in, 3);
            produceTo(in, 2);
            got = kafka.readAtLeast(out, 3 * PER_PARTITION, Duration.ofSeconds(90));
            assertEquals(expected(3), values(got), "output after partition 2 was added and filled");
            assertEquals(3 * PER_PARTITION, got.size(), "records in the output after the topic grew");
            assertEquals(JobStatus.RUNNING, job.getJobStatus().get(30, TimeUnit.SECONDS), "job status");
        } finally {
            job.cancel().get(60, TimeUnit.SECONDS);
        }
    }
}
