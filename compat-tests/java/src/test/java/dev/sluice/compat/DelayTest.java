package dev.sluice.compat;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Future;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.InvalidRecordException;
import org.apache.kafka.common.KafkaException;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.header.Headers;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * Sluice-only: delayed delivery (mq.deliver.at / mq.delay.ms / mq.delay.level) with the
 * Java client. A delayed record is acknowledged at an offset that stays a gap; when due
 * the broker appends a copy to the same partition at a new offset, without the delay
 * headers and with mq.delay.origin.offset = the acknowledged offset.
 */
class DelayTest extends BrokerTestBase {
    static final String DELIVER_AT = "mq.deliver.at";
    static final String DELAY_MS = "mq.delay.ms";
    static final String DELAY_LEVEL = "mq.delay.level";
    static final String ORIGIN = "mq.delay.origin.offset";

    @BeforeEach
    void onlySluice() {
        assumeSluice("delayed delivery is a Sluice extension");
    }

    private static long endOffset(String topic) {
        return endOffsets(topic, 1).get(new TopicPartition(topic, 0));
    }

    /** A consumer without a group, assigned to partition 0 of topic from its beginning. */
    private static KafkaConsumer<String, String> consumerAtStart(String topic) {
        KafkaConsumer<String, String> c = new KafkaConsumer<>(stringConsumerProps(null));
        TopicPartition tp = new TopicPartition(topic, 0);
        c.assign(List.of(tp));
        c.seekToBeginning(List.of(tp));
        return c;
    }

    /** A record as received, with the wall clock time at which poll() returned it. */
    record Received(ConsumerRecord<String, String> record, long atMs) {
    }

    /** Polls for `d`, whatever arrives. */
    private static void pollFor(KafkaConsumer<String, String> c, Duration d, List<Received> sink) {
        long deadline = System.nanoTime() + d.toNanos();
        while (System.nanoTime() < deadline) {
            for (ConsumerRecord<String, String> r : c.poll(Duration.ofMillis(50))) {
                sink.add(new Received(r, System.currentTimeMillis()));
            }
        }
    }

    /** Polls until `count` records are in sink; fails after timeout. */
    private static void pollUntilCount(KafkaConsumer<String, String> c, int count, Duration timeout,
                                       List<Received> sink) {
        long deadline = System.nanoTime() + timeout.toNanos();
        while (sink.size() < count) {
            if (System.nanoTime() > deadline) {
                fail("timed out after " + timeout + " with " + sink.size() + " of " + count + " records: "
                        + sink.stream().map(x -> x.record().offset() + ":" + x.record().key()).toList());
            }
            for (ConsumerRecord<String, String> r : c.poll(Duration.ofMillis(50))) {
                sink.add(new Received(r, System.currentTimeMillis()));
            }
        }
    }

    @Test
    void delayedRecordsAppearWhenDueWithNewOffsets() throws Exception {
        String topic = createTopic("delay", 1);
        final int n = 20;
        Properties pp = stringProducerProps();
        pp.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, "true");
        pp.put(ProducerConfig.LINGER_MS_CONFIG, "20");
        List<RecordMetadata> acked = new ArrayList<>();
        Map<String, Long> deliverAt = new HashMap<>(); // key -> mq.deliver.at of the delayed ones
        try (KafkaProducer<String, String> p = new KafkaProducer<>(pp)) {
            List<Future<RecordMetadata>> sent = new ArrayList<>();
            for (int i = 0; i < n; i++) {
                ProducerRecord<String, String> r = new ProducerRecord<>(topic, 0, "k" + i, "v" + i);
                r.headers().add(header("trace", Integer.toString(i)));
                if (i % 2 == 1) {
                    long at = System.currentTimeMillis() + 2500;
                    r.headers().add(header(DELIVER_AT, Long.toString(at)));
                    deliverAt.put("k" + i, at);
                }
                sent.add(p.send(r));
            }
            p.flush();
            for (Future<RecordMetadata> f : sent) {
                acked.add(f.get());
            }
        }
        for (int i = 0; i < n; i++) {
            assertEquals(i, acked.get(i).offset(), "acknowledged offset of record " + i);
        }

        try (KafkaConsumer<String, String> c = consumerAtStart(topic)) {
            // Before they are due: only the immediate records, at their acknowledged offsets.
            List<Received> early = new ArrayList<>();
            pollFor(c, Duration.ofSeconds(1), early);
            long firstDue = deliverAt.values().stream().mapToLong(Long::longValue).min().orElseThrow();
            for (Received x : early) {
                assertTrue(x.record().key() != null && Integer.parseInt(x.record().key().substring(1)) % 2 == 0
                        || x.atMs() >= firstDue, "delayed record " + x.record().key() + " visible early at offset "
                        + x.record().offset());
            }
            List<String> earlyKeys = early.stream().map(x -> x.record().key()).toList();
            List<String> evenKeys = new ArrayList<>();
            List<Long> evenOffsets = new ArrayList<>();
            for (int i = 0; i < n; i += 2) {
                evenKeys.add("k" + i);
                evenOffsets.add(acked.get(i).offset());
            }
            assertEquals(evenKeys, earlyKeys, "only the immediate records are visible before they are due");
            assertEquals(evenOffsets, early.stream().map(x -> x.record().offset()).toList(),
                    "immediate records at their acknowledged offsets");
            for (Received x : early) {
                ConsumerRecord<String, String> r = x.record();
                assertEquals("v" + r.key().substring(1), r.value(), "value of " + r.key());
                assertEquals(r.key().substring(1), headerValue(r.headers(), "trace"), "trace of " + r.key());
                assertNull(r.headers().lastHeader(ORIGIN), "an immediate record has no origin offset");
            }
            assertEquals(n, endOffset(topic), "log end offset counts the gaps left by delayed records");

            // When due: each delayed record once, appended at a new offset.
            List<Received> late = new ArrayList<>();
            pollUntilCount(c, n / 2, Duration.ofSeconds(15), late);
            pollFor(c, Duration.ofMillis(500), late); // nothing more (no duplicates)
            assertEquals(n / 2, late.size(), "each delayed record delivered exactly once: "
                    + late.stream().map(x -> x.record().offset() + ":" + x.record().key()).toList());
            Map<String, Received> byKey = new HashMap<>();
            long prevOffset = -1;
            for (Received x : late) {
                ConsumerRecord<String, String> r = x.record();
                assertNull(byKey.put(r.key(), x), "record " + r.key() + " delivered twice");
                Long at = deliverAt.get(r.key());
                assertNotNull(at, "unexpected record " + r.key() + " at offset " + r.offset());
                int i = Integer.parseInt(r.key().substring(1));
                assertTrue(x.atMs() >= at, "record " + r.key() + " received at " + x.atMs() + ", before "
                        + DELIVER_AT + "=" + at);
                assertEquals("v" + i, r.value(), "value of " + r.key());
                assertEquals(acked.get(i).timestamp(), r.timestamp(), "timestamp of " + r.key());
                assertEquals(Integer.toString(i), headerValue(r.headers(), "trace"), "trace header kept");
                assertNull(r.headers().lastHeader(DELIVER_AT), DELIVER_AT + " removed on delivery");
                assertEquals(Long.toString(acked.get(i).offset()), headerValue(r.headers(), ORIGIN),
                        ORIGIN + " of " + r.key());
                assertTrue(r.offset() >= n, "new offset " + r.offset() + " of " + r.key() + " is past the gaps");
                assertTrue(r.offset() > prevOffset, "offsets increase");
                prevOffset = r.offset();
            }
            long maxLateness = late.stream().mapToLong(x -> x.atMs() - deliverAt.get(x.record().key()))
                    .max().orElse(0);
            System.out.println("DelayTest: delayed records received at most " + maxLateness
                    + " ms after mq.deliver.at; offsets "
                    + late.stream().map(x -> x.record().offset()).toList());
            assertEquals(n + n / 2, endOffset(topic), "log end offset after delivery");
        }
    }

    @Test
    void delayLevelAndPrecedence() throws Exception {
        String topic = createTopic("delay-level", 1);
        long t0 = System.currentTimeMillis();
        long at = t0 + 1500;
        RecordMetadata mLevel;
        RecordMetadata mAt;
        try (KafkaProducer<String, String> p = new KafkaProducer<>(stringProducerProps())) {
            ProducerRecord<String, String> level = new ProducerRecord<>(topic, 0, "level", "one second");
            level.headers().add(header(DELAY_LEVEL, "1"));
            ProducerRecord<String, String> both = new ProducerRecord<>(topic, 0, "both", "deliver.at wins");
            both.headers().add(header(DELIVER_AT, Long.toString(at)));
            both.headers().add(header(DELAY_MS, "600000"));
            Future<RecordMetadata> f1 = p.send(level);
            Future<RecordMetadata> f2 = p.send(both);
            p.flush();
            mLevel = f1.get();
            mAt = f2.get();
        }
        assertEquals(2, endOffset(topic), "both acknowledged, as gaps");
        try (KafkaConsumer<String, String> c = consumerAtStart(topic)) {
            List<Received> got = new ArrayList<>();
            pollUntilCount(c, 2, Duration.ofSeconds(8), got);
            pollFor(c, Duration.ofMillis(300), got);
            assertEquals(2, got.size(), "each delayed record delivered once");
            Map<String, Received> byKey = new HashMap<>();
            got.forEach(x -> byKey.put(x.record().key(), x));

            Received l = byKey.get("level");
            assertNotNull(l, "mq.delay.level=1 record delivered");
            assertTrue(l.atMs() >= t0 + 1000, "mq.delay.level=1 delivered after " + (l.atMs() - t0) + " ms");
            assertEquals("one second", l.record().value());
            assertNull(l.record().headers().lastHeader(DELAY_LEVEL), DELAY_LEVEL + " removed");
            assertEquals(Long.toString(mLevel.offset()), headerValue(l.record().headers(), ORIGIN));

            Received b = byKey.get("both");
            assertNotNull(b, "mq.deliver.at + mq.delay.ms record delivered");
            assertTrue(b.atMs() >= at, "delivered " + (at - b.atMs()) + " ms before mq.deliver.at");
            assertEquals("deliver.at wins", b.record().value());
            assertNull(b.record().headers().lastHeader(DELIVER_AT), DELIVER_AT + " removed");
            assertNull(b.record().headers().lastHeader(DELAY_MS), DELAY_MS + " removed");
            assertEquals(Long.toString(mAt.offset()), headerValue(b.record().headers(), ORIGIN));
            for (Received x : got) {
                assertTrue(x.record().offset() >= 2, "new offset " + x.record().offset());
            }
            System.out.println("DelayTest: level=1 after " + (l.atMs() - t0) + " ms, deliver.at record "
                    + (b.atMs() - at) + " ms after its due time");
        }
        assertEquals(4, endOffset(topic), "log end offset after delivery");
    }

    @Test
    void badDelayHeadersAreRefusedAndNothingIsStored() throws Exception {
        String topic = createTopic("delay-bad", 1);
        String[][] cases = {
            {DELAY_MS, "abc"},
            {DELAY_MS, "-5"},
            {DELAY_MS, "3456000001"},
            {DELAY_LEVEL, "19"},
        };
        for (String[] bad : cases) {
            String what = bad[0] + "=" + bad[1];
            Properties pp = stringProducerProps();
            // One batch: the three records wait for flush().
            pp.put(ProducerConfig.LINGER_MS_CONFIG, "5000");
            pp.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, "20000");
            pp.put(ProducerConfig.REQUEST_TIMEOUT_MS_CONFIG, "10000");
            try (KafkaProducer<String, String> p = new KafkaProducer<>(pp)) {
                List<Future<RecordMetadata>> sent = new ArrayList<>();
                for (int i = 0; i < 3; i++) {
                    ProducerRecord<String, String> r = new ProducerRecord<>(topic, 0, "k" + i, "v" + i);
                    if (i == 1) {
                        r.headers().add(header(DELAY_MS, "1500")); // a good delayed record
                    }
                    if (i == 2) {
                        r.headers().add(header(bad[0], bad[1]));
                    }
                    sent.add(p.send(r));
                }
                p.flush();
                ExecutionException e = assertThrows(ExecutionException.class, () -> sent.get(2).get(), what);
                System.out.println("DelayTest: " + what + " -> " + e.getCause());
                InvalidRecordException ire = assertInstanceOf(InvalidRecordException.class, e.getCause(), what);
                String msg = String.valueOf(ire.getMessage());
                assertTrue(msg.contains("record 2"), what + ": message names the record index: " + msg);
                assertTrue(msg.contains(bad[0]), what + ": message names the header: " + msg);
                for (int i = 0; i < 2; i++) {
                    int idx = i;
                    ExecutionException other = assertThrows(ExecutionException.class, () -> sent.get(idx).get(),
                            what + ": record " + i + " shares the refused batch");
                    assertInstanceOf(KafkaException.class, other.getCause());
                }
            }
            assertEquals(0L, endOffset(topic), what + ": nothing of the batch stored");
        }
        // Nothing was scheduled either: no delayed record (record 1 had a good 1.5 s delay) shows up.
        try (KafkaConsumer<String, String> c = consumerAtStart(topic)) {
            List<Received> got = new ArrayList<>();
            pollFor(c, Duration.ofMillis(2000), got);
            assertEquals(List.of(), got.stream().map(x -> x.record().key()).toList(), "no record of a refused batch");
        }
        assertEquals(0L, endOffset(topic), "nothing stored");
    }

    @Test
    void transactionalProducerIsRefused() {
        String topic = createTopic("delay-txn", 1);
        Properties pp = stringProducerProps();
        pp.put(ProducerConfig.TRANSACTIONAL_ID_CONFIG, uniqueName("txn"));
        pp.put(ProducerConfig.MAX_BLOCK_MS_CONFIG, "15000");
        KafkaProducer<String, String> p = new KafkaProducer<>(pp);
        try {
            KafkaException e = assertThrows(KafkaException.class, p::initTransactions, "initTransactions");
            System.out.println("DelayTest: initTransactions -> " + e);
            assertThrows(KafkaException.class, () -> {
                p.beginTransaction();
                p.send(new ProducerRecord<>(topic, 0, "k", "v")).get();
            }, "no transactional send after a refused initTransactions");
        } finally {
            p.close(Duration.ofSeconds(5));
        }
        assertEquals(0L, endOffset(topic), "nothing stored");
    }
}
