package dev.sluice.compat;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Properties;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Future;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.InvalidTopicException;
import org.apache.kafka.common.header.internals.RecordHeader;
import org.junit.jupiter.api.Test;

/** Sluice-only: tag-filtered views (mq.view.source / mq.view.filter) with the Java client. */
class ViewTest extends BrokerTestBase {
    static final int PARTITIONS = 3;
    static final String[] TAGS = {"vip5", "vip6", "plain", null};

    @Test
    void groupReadsCommitsAndReachesTheEndOfAView() throws Exception {
        assumeSluice("views are a Sluice extension");
        String source = createTopic("view-src", PARTITIONS);
        // Tags change record by record (mixed batches), then a run of one tag the view
        // leaves out, so the log ends in records the view does not show.
        List<String> wanted = new ArrayList<>(); // "partition:offset"
        Properties pp = producerProps();
        pp.put(ProducerConfig.LINGER_MS_CONFIG, "20");
        try (KafkaProducer<byte[], byte[]> p = new KafkaProducer<>(pp)) {
            List<Future<RecordMetadata>> sent = new ArrayList<>();
            List<String> tags = new ArrayList<>();
            for (int i = 0; i < 1500; i++) {
                String tag = i < 1200 ? TAGS[i % TAGS.length] : "plain";
                ProducerRecord<byte[], byte[]> r = new ProducerRecord<>(source, i % PARTITIONS, null,
                        ("v" + i).getBytes(StandardCharsets.UTF_8));
                if (tag != null) {
                    r.headers().add(new RecordHeader("mq.tag", tag.getBytes(StandardCharsets.UTF_8)));
                }
                sent.add(p.send(r));
                tags.add(tag);
            }
            p.flush();
            for (int i = 0; i < sent.size(); i++) {
                RecordMetadata m = sent.get(i).get();
                if ("vip5".equals(tags.get(i)) || "vip6".equals(tags.get(i))) {
                    wanted.add(m.partition() + ":" + m.offset());
                }
            }
        }

        String view = uniqueName("view-vip");
        NewTopic nt = new NewTopic(view, Optional.empty(), Optional.empty())
                .configs(Map.of("mq.view.source", source, "mq.view.filter", "vip5 || vip6"));
        get(admin.createTopics(List.of(nt)).all());
        waitForTopic(view, PARTITIONS);
        Map<TopicPartition, Long> ends = endOffsets(view, PARTITIONS);
        assertEquals(endOffsets(source, PARTITIONS).values().stream().mapToLong(Long::longValue).sum(),
                ends.values().stream().mapToLong(Long::longValue).sum(), "a view's end offsets are its source's");

        String group = uniqueName("view-group");
        List<String> got = new ArrayList<>();
        try (KafkaConsumer<byte[], byte[]> c = new KafkaConsumer<>(consumerProps(group))) {
            c.subscribe(List.of(view));
            long deadline = System.nanoTime() + Duration.ofSeconds(60).toNanos();
            while (System.nanoTime() < deadline) {
                for (ConsumerRecord<byte[], byte[]> r : c.poll(Duration.ofMillis(200))) {
                    String tag = new String(r.headers().lastHeader("mq.tag").value(), StandardCharsets.UTF_8);
                    assertTrue(tag.equals("vip5") || tag.equals("vip6"), "record tagged " + tag + " in the view");
                    got.add(r.partition() + ":" + r.offset());
                }
                boolean atEnd = got.size() >= wanted.size() && c.assignment().size() == PARTITIONS
                        && c.assignment().stream().allMatch(tp -> c.position(tp) == ends.get(tp));
                if (atEnd) {
                    break;
                }
            }
            assertSameElements(wanted, got, "the view's records are the source's vip5/vip6 records");
            assertEquals(wanted.size(), got.size(), "no record twice");
            for (TopicPartition tp : ends.keySet()) {
                assertEquals(ends.get(tp), c.position(tp), "position past the filtered-out tail of " + tp);
            }
            c.commitSync();
        }
        Map<TopicPartition, OffsetAndMetadata> committed =
                get(admin.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata());
        Map<TopicPartition, Long> committedOffsets = new HashMap<>();
        committed.forEach((tp, om) -> committedOffsets.put(tp, om.offset()));
        assertEquals(ends, committedOffsets, "lag on the view is zero once it is read to the end");
    }

    @Test
    void producingToAViewIsRefused() throws Exception {
        assumeSluice("views are a Sluice extension");
        String source = createTopic("view-src", 1);
        String view = uniqueName("view-ro");
        get(admin.createTopics(List.of(new NewTopic(view, Optional.empty(), Optional.empty())
                .configs(Map.of("mq.view.source", source)))).all());
        waitForTopic(view, 1);
        Properties pp = producerProps();
        pp.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, "15000");
        pp.put(ProducerConfig.REQUEST_TIMEOUT_MS_CONFIG, "10000");
        try (KafkaProducer<byte[], byte[]> p = new KafkaProducer<>(pp)) {
            ExecutionException e = org.junit.jupiter.api.Assertions.assertThrows(ExecutionException.class,
                    () -> p.send(new ProducerRecord<>(view, 0, null, new byte[] {1})).get());
            assertInstanceOf(InvalidTopicException.class, e.getCause(), "produce to a view");
        }
        assertEquals(0L, get(admin.listOffsets(Map.of(new TopicPartition(source, 0), OffsetSpec.latest())).all())
                .get(new TopicPartition(source, 0)).offset(), "nothing stored in the source");
    }
}
