package dev.sluice.compat;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import java.util.Comparator;
import java.util.List;
import java.util.Properties;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.ProducerState;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInfo;

/**
 * Idempotent producers' state as {@code Admin.describeProducers} (KIP-664) shows it, and
 * its expiry ({@code producer.id.expiration.ms}), as Kafka's ProducerIdExpirationTest
 * checks it.
 */
class ProducerStateTest extends BrokerTestBase {
    private static final long EXPIRATION_MS = 5_000;

    /**
     * Hides BrokerTestBase's: a producer's state here lasts five seconds after its last
     * batch, and is checked for every half second (Kafka's own test uses 10 s and 500 ms).
     */
    @BeforeAll
    static void startBroker(TestInfo info) {
        broker = Broker.start("ProducerStateTest", List.of(
                "\"producer.id.expiration.ms\" = " + EXPIRATION_MS,
                "\"producer.id.expiration.check.interval.ms\" = 500"));
        admin = Admin.create(adminProps());
    }

    private static List<ProducerState> producers(TopicPartition tp) {
        List<ProducerState> all = new java.util.ArrayList<>(
                get(admin.describeProducers(List.of(tp)).partitionResult(tp)).activeProducers());
        all.sort(Comparator.comparingLong(ProducerState::producerId));
        return all;
    }

    private static KafkaProducer<byte[], byte[]> producer(boolean idempotent) {
        Properties p = producerProps();
        p.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, idempotent);
        p.put(ProducerConfig.ACKS_CONFIG, idempotent ? "all" : "1");
        return new KafkaProducer<>(p);
    }

    private static void send(KafkaProducer<byte[], byte[]> p, TopicPartition tp, long timestamp) throws Exception {
        sendDelayed(p, tp, timestamp, 0);
    }

    /** A record Sluice delivers {@code delayMs} after accepting it (0: at once). */
    private static void sendDelayed(KafkaProducer<byte[], byte[]> p, TopicPartition tp, long timestamp, long delayMs)
            throws Exception {
        ProducerRecord<byte[], byte[]> r = new ProducerRecord<>(tp.topic(), tp.partition(), timestamp, null,
                "v".getBytes());
        if (delayMs > 0) {
            r.headers().add("mq.delay.ms", Long.toString(delayMs).getBytes());
        }
        p.send(r).get();
    }

    /** Each idempotent producer once, with its epoch, last sequence and last batch's time. */
    @Test
    void describesEachIdempotentProducer() throws Exception {
        TopicPartition tp = new TopicPartition(createTopic("producers", 2), 0);
        assertEquals(List.of(), producers(tp), "no producer yet");
        long now = System.currentTimeMillis();
        try (KafkaProducer<byte[], byte[]> a = producer(true);
             KafkaProducer<byte[], byte[]> b = producer(true);
             KafkaProducer<byte[], byte[]> plain = producer(false)) {
            for (int i = 0; i < 3; i++) {
                send(a, tp, now - 10 + i); // three batches: sequences 0, 1, 2
            }
            send(b, tp, now);
            send(plain, tp, now);
            List<ProducerState> got = producers(tp);
            assertEquals(2, got.size(), "the idempotent producers, not the plain one: " + got);
            ProducerState pa = got.stream().filter(s -> s.lastSequence() == 2).findFirst().orElseThrow();
            ProducerState pb = got.stream().filter(s -> s.lastSequence() == 0).findFirst().orElseThrow();
            assertNotEquals(pa.producerId(), pb.producerId());
            assertEquals(now - 8, pa.lastTimestamp(), "the last batch's max timestamp");
            assertEquals(now, pb.lastTimestamp());
            for (ProducerState s : got) {
                assertEquals(0, s.producerEpoch());
                assertTrue(s.coordinatorEpoch().isEmpty() || s.coordinatorEpoch().getAsInt() == -1,
                        "no transaction coordinator: " + s);
                assertTrue(s.currentTransactionStartOffset().isEmpty(), "no open transaction: " + s);
            }
            TopicPartition other = new TopicPartition(tp.topic(), 1);
            assertEquals(List.of(), producers(other), "partition 1 got no records");
        }
    }

    /**
     * A producer idle for the expiration is forgotten; its next batch brings it back,
     * continuing its sequence. A restart rebuilds the state from the log, and what is
     * idle there is forgotten again.
     */
    @Test
    void idleProducersAreForgotten() throws Exception {
        assumeSluice("sets producer.id.expiration.ms and restarts the broker");
        TopicPartition tp = new TopicPartition(createTopic("expiring", 1), 0);
        try (KafkaProducer<byte[], byte[]> p = producer(true)) {
            long sent = System.currentTimeMillis();
            send(p, tp, sent);
            List<ProducerState> first = producers(tp);
            assertEquals(1, first.size(), "the producer is known: " + first);
            long id = first.get(0).producerId();
            waitUntil("the idle producer to be forgotten", Duration.ofSeconds(30), () -> producers(tp).isEmpty());
            assertTrue(System.currentTimeMillis() - sent >= EXPIRATION_MS,
                    "forgotten before its expiration had passed");

            long sentAgain = System.currentTimeMillis();
            send(p, tp, sentAgain);
            List<ProducerState> again = producers(tp);
            assertEquals(1, again.size(), "the producer is back: " + again);
            assertEquals(id, again.get(0).producerId());
            assertEquals(1, again.get(0).lastSequence(), "its sequence went on from where it was");

            broker.restart();
            reopenAdmin();
            List<ProducerState> rebuilt = producers(tp);
            if (System.currentTimeMillis() - sentAgain < EXPIRATION_MS) {
                // Not idle for the expiration yet: the restart rebuilt it from the log.
                assertEquals(1, rebuilt.size(), "rebuilt from the log: " + rebuilt);
                assertEquals(id, rebuilt.get(0).producerId());
                assertEquals(1, rebuilt.get(0).lastSequence());
            }
            waitUntil("the rebuilt producer to be forgotten", Duration.ofSeconds(30), () -> producers(tp).isEmpty());
        }
        assertEquals(2L, endOffsets(tp.topic(), 1).get(tp), "both records stored once");
    }

    /**
     * Sluice's delayed delivery appends released records under the timer's own producer
     * id, with their original timestamps, so its state looks idle at once. It is kept:
     * it is what settles a release a crash interrupted.
     */
    @Test
    void theDelayTimersProducerIsKept() throws Exception {
        assumeSluice("delayed delivery is Sluice's");
        TopicPartition tp = new TopicPartition(createTopic("delayed", 1), 0);
        long old = System.currentTimeMillis() - 4 * EXPIRATION_MS;
        try (KafkaProducer<byte[], byte[]> plain = producer(false)) {
            sendDelayed(plain, tp, old, 300);
        }
        waitUntil("the delayed record to be released", Duration.ofSeconds(30), () -> !producers(tp).isEmpty());
        List<ProducerState> timer = producers(tp);
        assertEquals(1, timer.size(), "the timer's producer: " + timer);
        assertEquals(old, timer.get(0).lastTimestamp(), "released with the record's own timestamp");
        Broker.sleep(2_000); // four expiry checks
        assertEquals(timer, producers(tp), "kept, though idle past the expiration");
    }

    /**
     * A batch whose records are all delayed is stored without them (and without a
     * timestamp); its producer's state is still dated by the records' own time, so the
     * retry protection lasts the expiration, as for any other batch.
     */
    @Test
    void aProducerOfDelayedRecordsOnlyIsKeptForTheExpiration() throws Exception {
        assumeSluice("delayed delivery is Sluice's");
        TopicPartition tp = new TopicPartition(createTopic("delay-only", 1), 0);
        try (KafkaProducer<byte[], byte[]> p = producer(true)) {
            long sent = System.currentTimeMillis();
            sendDelayed(p, tp, sent, 600_000);
            List<ProducerState> got = producers(tp);
            assertEquals(1, got.size(), "the producer: " + got);
            assertEquals(sent, got.get(0).lastTimestamp(), "dated by its record");
            Broker.sleep(2_000); // four expiry checks, within the expiration
            assertEquals(got, producers(tp), "kept while within the expiration");
        }
    }
}
