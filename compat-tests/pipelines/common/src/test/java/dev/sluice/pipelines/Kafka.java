package dev.sluice.pipelines;

import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.function.IntFunction;
import java.util.stream.Collectors;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.NewPartitions;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;

/**
 * Plain Kafka client helpers the Flink and Spark tests share (both poms add this
 * directory as a test source root). Around the pipelines, the tests use them to
 * create topics, produce the input, read back the output and look at committed
 * offsets. The broker is the one named by KAFKA_BOOTSTRAP (the run script sets it).
 */
public final class Kafka implements AutoCloseable {
    public static final String BOOTSTRAP = bootstrap();

    private final Admin admin;

    public Kafka() {
        Properties p = new Properties();
        p.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, BOOTSTRAP);
        admin = Admin.create(p);
    }

    private static String bootstrap() {
        String b = System.getenv("KAFKA_BOOTSTRAP");
        if (b == null || b.isBlank()) {
            throw new IllegalStateException("KAFKA_BOOTSTRAP is not set (run compat-tests/pipelines/run)");
        }
        return b;
    }

    /** A topic name no earlier run against the same broker has used. */
    public static String uniqueName(String prefix) {
        return prefix + "-" + UUID.randomUUID().toString().substring(0, 8);
    }

    public void createTopics(int partitions, String... names) throws Exception {
        List<NewTopic> topics = new ArrayList<>();
        for (String n : names) {
            topics.add(new NewTopic(n, partitions, (short) 1));
        }
        admin.createTopics(topics).all().get(30, TimeUnit.SECONDS);
    }

    /** Produces records [from, to) as (key, value) pairs, acks=all, and waits for every ack. */
    public static void produce(String topic, int from, int to, IntFunction<String> key, IntFunction<String> value)
            throws Exception {
        produceRecords(from, to, i -> new ProducerRecord<>(topic, key.apply(i), value.apply(i)));
    }

    /** Produces the records make(from) .. make(to - 1), acks=all, and waits for every ack. */
    public static void produceRecords(int from, int to, IntFunction<ProducerRecord<String, String>> make)
            throws Exception {
        Properties p = new Properties();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, BOOTSTRAP);
        p.put(ProducerConfig.ACKS_CONFIG, "all");
        p.put(ProducerConfig.LINGER_MS_CONFIG, "5");
        try (KafkaProducer<String, String> producer =
                     new KafkaProducer<>(p, new StringSerializer(), new StringSerializer())) {
            List<Future<RecordMetadata>> acks = new ArrayList<>();
            for (int i = from; i < to; i++) {
                acks.add(producer.send(make.apply(i)));
            }
            producer.flush();
            for (Future<RecordMetadata> f : acks) {
                f.get(30, TimeUnit.SECONDS);
            }
        }
    }

    /** Log-end offset of every partition of the topic. */
    public Map<TopicPartition, Long> endOffsets(String topic) throws Exception {
        int partitions = admin.describeTopics(List.of(topic)).allTopicNames().get(30, TimeUnit.SECONDS)
                .get(topic).partitions().size();
        Map<TopicPartition, OffsetSpec> req = new HashMap<>();
        for (int i = 0; i < partitions; i++) {
            req.put(new TopicPartition(topic, i), OffsetSpec.latest());
        }
        return admin.listOffsets(req).all().get(30, TimeUnit.SECONDS).entrySet().stream()
                .collect(Collectors.toMap(Map.Entry::getKey, e -> e.getValue().offset()));
    }

    /** Offsets the group has committed (partitions without a commit are absent). */
    public Map<TopicPartition, Long> committed(String group) throws Exception {
        Map<TopicPartition, OffsetAndMetadata> m = admin.listConsumerGroupOffsets(group)
                .partitionsToOffsetAndMetadata().get(30, TimeUnit.SECONDS);
        Map<TopicPartition, Long> out = new HashMap<>();
        m.forEach((tp, om) -> {
            if (om != null) {
                out.put(tp, om.offset());
            }
        });
        return out;
    }

    /** Every record currently in the topic, read without a group from offset 0 to the log end. */
    public List<ConsumerRecord<String, String>> readAll(String topic) throws Exception {
        Map<TopicPartition, Long> end = endOffsets(topic);
        Properties p = new Properties();
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, BOOTSTRAP);
        p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        p.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        List<ConsumerRecord<String, String>> out = new ArrayList<>();
        try (KafkaConsumer<String, String> c =
                     new KafkaConsumer<>(p, new StringDeserializer(), new StringDeserializer())) {
            c.assign(end.keySet());
            c.seekToBeginning(end.keySet());
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
            while (!reached(c, end)) {
                if (System.nanoTime() > deadline) {
                    throw new AssertionError("reading " + topic + " did not reach the log end " + end
                            + " within 60 s; got " + out.size() + " records");
                }
                for (ConsumerRecord<String, String> r : c.poll(Duration.ofMillis(200))) {
                    out.add(r);
                }
            }
        }
        return out;
    }

    /**
     * Reads the topic again and again until it holds at least {@code want} records,
     * failing after {@code timeout}; returns what it holds then.
     */
    public List<ConsumerRecord<String, String>> readAtLeast(String topic, int want, Duration timeout)
            throws Exception {
        long deadline = System.nanoTime() + timeout.toNanos();
        List<ConsumerRecord<String, String>> got = readAll(topic);
        while (got.size() < want) {
            if (System.nanoTime() > deadline) {
                throw new AssertionError("topic " + topic + " holds " + got.size() + " records after " + timeout
                        + ", want " + want);
            }
            Thread.sleep(250);
            got = readAll(topic);
        }
        return got;
    }

    public void addPartitions(String topic, int total) throws Exception {
        admin.createPartitions(Map.of(topic, NewPartitions.increaseTo(total))).all().get(30, TimeUnit.SECONDS);
    }

    private static boolean reached(KafkaConsumer<?, ?> c, Map<TopicPartition, Long> end) {
        Set<TopicPartition> parts = end.keySet();
        for (TopicPartition tp : parts) {
            if (c.position(tp) < end.get(tp)) {
                return false;
            }
        }
        return true;
    }

    @Override
    public void close() {
        admin.close(Duration.ofSeconds(5));
    }
}
