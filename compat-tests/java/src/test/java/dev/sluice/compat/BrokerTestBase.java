package dev.sluice.compat;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.fail;

import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.UUID;
import java.util.concurrent.ExecutionException;
import java.util.function.BooleanSupplier;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.UnknownTopicOrPartitionException;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.TestInfo;

/** One broker per test class (see {@link Broker} for the connection contract). */
abstract class BrokerTestBase {
    static final Duration WAIT = Duration.ofSeconds(30);

    protected static Broker broker;
    protected static Admin admin;

    @BeforeAll
    static void startBroker(TestInfo info) {
        broker = Broker.start(info.getTestClass().map(Class::getSimpleName).orElse("compat"));
        admin = Admin.create(adminProps());
    }

    @AfterAll
    static void stopBroker() {
        if (admin != null) {
            admin.close(Duration.ofSeconds(5));
            admin = null;
        }
        if (broker != null) {
            broker.close();
            broker = null;
        }
    }

    static void assumeSluice(String why) {
        Assumptions.assumeFalse(broker.isExternal(), "Sluice-only (" + why + "); KAFKA_BOOTSTRAP is set");
    }

    /** Re-creates the shared admin client, e.g. after a broker restart. */
    static void reopenAdmin() {
        if (admin != null) {
            admin.close(Duration.ofSeconds(5));
        }
        admin = Admin.create(adminProps());
    }

    static Properties adminProps() {
        Properties p = new Properties();
        p.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, broker.bootstrap());
        p.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, "15000");
        p.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, "30000");
        return p;
    }

    static Properties producerProps() {
        Properties p = new Properties();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, broker.bootstrap());
        p.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        p.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        return p;
    }

    static Properties stringProducerProps() {
        Properties p = producerProps();
        p.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        p.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        return p;
    }

    static Properties consumerProps(String group) {
        Properties p = new Properties();
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, broker.bootstrap());
        p.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        p.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        p.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        if (group != null) {
            p.put(ConsumerConfig.GROUP_ID_CONFIG, group);
        } else {
            p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        }
        return p;
    }

    static Properties stringConsumerProps(String group) {
        Properties p = consumerProps(group);
        p.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        p.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        return p;
    }

    /** A topic name unique to this run, so suites can share one external broker. */
    /** A record header with a UTF-8 value (the mq.* conventions). */
    static org.apache.kafka.common.header.internals.RecordHeader header(String key, String value) {
        return new org.apache.kafka.common.header.internals.RecordHeader(
                key, value.getBytes(java.nio.charset.StandardCharsets.UTF_8));
    }

    /** The last value of a header as a string, or null when absent. */
    static String headerValue(org.apache.kafka.common.header.Headers headers, String key) {
        org.apache.kafka.common.header.Header h = headers.lastHeader(key);
        return h == null || h.value() == null
                ? null
                : new String(h.value(), java.nio.charset.StandardCharsets.UTF_8);
    }

    static String uniqueName(String prefix) {
        return prefix + "-" + UUID.randomUUID().toString().substring(0, 8);
    }

    static String createTopic(String prefix, int partitions) {
        return createTopic(prefix, partitions, Map.of());
    }

    static String createTopic(String prefix, int partitions, Map<String, String> configs) {
        String name = uniqueName(prefix);
        NewTopic nt = new NewTopic(name, partitions, (short) 1).configs(configs);
        get(admin.createTopics(List.of(nt)).all());
        waitForTopic(name, partitions);
        return name;
    }

    /** Waits until the topic is described with all partitions having a leader. */
    static TopicDescription waitForTopic(String name, int partitions) {
        long deadline = System.nanoTime() + WAIT.toNanos();
        Throwable last = null;
        while (System.nanoTime() < deadline) {
            try {
                TopicDescription d = admin.describeTopics(List.of(name)).allTopicNames().get().get(name);
                if (d.partitions().size() == partitions
                        && d.partitions().stream().allMatch(p -> p.leader() != null && !p.leader().isEmpty())) {
                    // Metadata can announce a leader slightly before the leader can serve the
                    // partition (real Kafka does this). ListOffsets is answered by the partition
                    // leader itself and the admin client retries it until it succeeds, so once it
                    // returns every partition is really there. Producing earlier can make an
                    // idempotent producer's first batch fail and be overtaken by later batches.
                    endOffsets(name, partitions);
                    return d;
                }
                last = new AssertionError("topic " + name + " not ready: " + d);
            } catch (ExecutionException e) {
                if (!(e.getCause() instanceof UnknownTopicOrPartitionException)) {
                    throw new AssertionError("describeTopics(" + name + ") failed", e.getCause());
                }
                last = e.getCause();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IllegalStateException(e);
            }
            Broker.sleep(100);
        }
        throw new AssertionError("topic " + name + " with " + partitions + " partitions never became ready", last);
    }

    /** Future.get() with the cause rethrown as-is when it is unchecked. */
    static <T> T get(org.apache.kafka.common.KafkaFuture<T> f) {
        try {
            return f.get();
        } catch (ExecutionException e) {
            Throwable c = e.getCause();
            if (c instanceof RuntimeException) {
                throw (RuntimeException) c;
            }
            throw new AssertionError(c);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException(e);
        }
    }

    /** The exception a KafkaFuture failed with (fails the test if it succeeded). */
    static Throwable failure(org.apache.kafka.common.KafkaFuture<?> f) {
        try {
            Object v = f.get();
            fail("expected the request to fail, but it succeeded with " + v);
            return null;
        } catch (ExecutionException e) {
            return e.getCause();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException(e);
        }
    }

    static void waitUntil(String what, Duration timeout, BooleanSupplier cond) {
        long deadline = System.nanoTime() + timeout.toNanos();
        while (!cond.getAsBoolean()) {
            if (System.nanoTime() > deadline) {
                fail("timed out after " + timeout + " waiting for: " + what);
            }
            Broker.sleep(100);
        }
    }

    /**
     * Polls each consumer in turn (short polls) until cond holds; records go to sink.
     * Fails after timeout.
     */
    static <K, V> void pollUntil(String what, Duration timeout, List<? extends KafkaConsumer<K, V>> consumers,
                                 List<ConsumerRecord<K, V>> sink, BooleanSupplier cond) {
        long deadline = System.nanoTime() + timeout.toNanos();
        while (true) {
            for (KafkaConsumer<K, V> c : consumers) {
                ConsumerRecords<K, V> recs = c.poll(Duration.ofMillis(50));
                if (sink != null) {
                    recs.forEach(sink::add);
                }
            }
            if (cond.getAsBoolean()) {
                return;
            }
            if (System.nanoTime() > deadline) {
                fail("timed out after " + timeout + " waiting for: " + what);
            }
        }
    }

    /** Consumes (assign + seek to beginning, no group) until `count` records or timeout. */
    static <K, V> List<ConsumerRecord<K, V>> readAll(KafkaConsumer<K, V> consumer, String topic, int partitions,
                                                     long count, Duration timeout) {
        List<TopicPartition> tps = new ArrayList<>();
        for (int p = 0; p < partitions; p++) {
            tps.add(new TopicPartition(topic, p));
        }
        consumer.assign(tps);
        consumer.seekToBeginning(tps);
        List<ConsumerRecord<K, V>> out = new ArrayList<>();
        long deadline = System.nanoTime() + timeout.toNanos();
        while (out.size() < count && System.nanoTime() < deadline) {
            consumer.poll(Duration.ofMillis(200)).forEach(out::add);
        }
        return out;
    }

    static Map<TopicPartition, Long> endOffsets(String topic, int partitions) {
        Map<TopicPartition, org.apache.kafka.clients.admin.OffsetSpec> req = new HashMap<>();
        for (int p = 0; p < partitions; p++) {
            req.put(new TopicPartition(topic, p), org.apache.kafka.clients.admin.OffsetSpec.latest());
        }
        Map<TopicPartition, Long> out = new HashMap<>();
        get(admin.listOffsets(req).all()).forEach((tp, info) -> out.put(tp, info.offset()));
        return out;
    }

    static void assertSameElements(Collection<?> expected, Collection<?> actual, String msg) {
        assertEquals(new java.util.HashSet<>(expected), new java.util.HashSet<>(actual), msg);
    }
}
