package dev.sluice.compat;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.reflect.Method;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Collections;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.stream.Collectors;
import org.apache.kafka.clients.admin.ConsumerGroupDescription;
import org.apache.kafka.clients.admin.ConsumerGroupListing;
import org.apache.kafka.clients.admin.MemberDescription;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRebalanceListener;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.ConsumerGroupState;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.GroupIdNotFoundException;
import org.apache.kafka.common.errors.GroupNotEmptyException;
import org.apache.kafka.common.errors.GroupSubscribedToTopicException;
import org.junit.jupiter.api.Test;

class ConsumerGroupTest extends BrokerTestBase {
    private static final int PARTITIONS = 6;

    /** Records rebalance callbacks of one consumer. */
    static final class Tracker implements ConsumerRebalanceListener {
        final List<String> events = Collections.synchronizedList(new ArrayList<>());

        @Override
        public void onPartitionsRevoked(Collection<TopicPartition> partitions) {
            events.add("revoked " + partitions);
        }

        @Override
        public void onPartitionsAssigned(Collection<TopicPartition> partitions) {
            events.add("assigned " + partitions);
        }

        @Override
        public void onPartitionsLost(Collection<TopicPartition> partitions) {
            events.add("lost " + partitions);
        }
    }

    private static Properties groupProps(String group, String clientId) {
        Properties p = stringConsumerProps(group);
        p.put(ConsumerConfig.CLIENT_ID_CONFIG, clientId);
        p.put(ConsumerConfig.SESSION_TIMEOUT_MS_CONFIG, "6000");
        p.put(ConsumerConfig.HEARTBEAT_INTERVAL_MS_CONFIG, "500");
        return p;
    }

    private static void produceStrings(String topic, int n) {
        try (KafkaProducer<String, String> p = new KafkaProducer<>(stringProducerProps())) {
            for (int i = 0; i < n; i++) {
                p.send(new ProducerRecord<>(topic, i % PARTITIONS, "k" + i, "v" + i));
            }
            p.flush();
        }
    }

    private static Set<TopicPartition> allPartitions(String topic) {
        Set<TopicPartition> s = new HashSet<>();
        for (int p = 0; p < PARTITIONS; p++) {
            s.add(new TopicPartition(topic, p));
        }
        return s;
    }

    private static boolean splitEvenly(KafkaConsumer<?, ?> a, KafkaConsumer<?, ?> b, String topic) {
        Set<TopicPartition> x = a.assignment();
        Set<TopicPartition> y = b.assignment();
        if (x.size() != 3 || y.size() != 3) {
            return false;
        }
        Set<TopicPartition> union = new HashSet<>(x);
        union.addAll(y);
        return union.equals(allPartitions(topic));
    }

    @Test
    void twoMembersSplitPartitionsAndSurvivorTakesAllOnLeave() {
        String topic = createTopic("cg-split", PARTITIONS);
        produceStrings(topic, 600);
        String group = uniqueName("cg-split");
        List<ConsumerRecord<String, String>> got = new ArrayList<>();
        try (KafkaConsumer<String, String> c1 = new KafkaConsumer<>(groupProps(group, "c1"));
             KafkaConsumer<String, String> c2 = new KafkaConsumer<>(groupProps(group, "c2"))) {
            c1.subscribe(List.of(topic));
            c2.subscribe(List.of(topic));
            pollUntil("two members get 3 partitions each", WAIT, List.of(c1, c2), got,
                    () -> splitEvenly(c1, c2, topic));
            c2.close(); // LeaveGroup
            pollUntil("the remaining member gets all 6 partitions", WAIT, List.of(c1), got,
                    () -> c1.assignment().equals(allPartitions(topic)));
            pollUntil("all 600 records consumed", WAIT, List.of(c1), got,
                    () -> got.stream().map(ConsumerRecord::value).distinct().count() == 600);
        }
        Set<String> values = got.stream().map(ConsumerRecord::value).collect(Collectors.toSet());
        assertEquals(600, values.size());
    }

    @Test
    void memberThatStopsPollingIsRemovedAndCanRejoin() {
        String topic = createTopic("cg-stall", PARTITIONS);
        String group = uniqueName("cg-stall");
        Properties p1 = groupProps(group, "c1");
        Properties p2 = groupProps(group, "c2");
        p1.put(ConsumerConfig.MAX_POLL_INTERVAL_MS_CONFIG, "4000");
        p2.put(ConsumerConfig.MAX_POLL_INTERVAL_MS_CONFIG, "4000");
        try (KafkaConsumer<String, String> c1 = new KafkaConsumer<>(p1);
             KafkaConsumer<String, String> c2 = new KafkaConsumer<>(p2)) {
            c1.subscribe(List.of(topic));
            c2.subscribe(List.of(topic));
            pollUntil("two members get 3 partitions each", WAIT, List.of(c1, c2), null,
                    () -> splitEvenly(c1, c2, topic));
            // c2 stops polling: after max.poll.interval.ms it is out of the group.
            pollUntil("c1 gets all partitions after c2 stopped polling", WAIT, List.of(c1), null,
                    () -> c1.assignment().equals(allPartitions(topic)));
            // c2 polls again and rejoins.
            pollUntil("c2 rejoins and the partitions are split again", WAIT, List.of(c1, c2), null,
                    () -> splitEvenly(c1, c2, topic));
        }
    }

    /** Closes a consumer without sending LeaveGroup, as if the process had died. */
    private static void closeWithoutLeaving(KafkaConsumer<?, ?> c) throws Exception {
        Class<?> closeOptions;
        try {
            closeOptions = Class.forName("org.apache.kafka.clients.consumer.CloseOptions");
        } catch (ClassNotFoundException e) {
            c.close(); // 3.x: internal.leave.group.on.close=false was set at creation
            return;
        }
        Class<?> op = Class.forName("org.apache.kafka.clients.consumer.CloseOptions$GroupMembershipOperation");
        Object remain = op.getField("REMAIN_IN_GROUP").get(null);
        Object opts = closeOptions.getMethod("groupMembershipOperation", op).invoke(null, remain);
        Method close = KafkaConsumer.class.getMethod("close", closeOptions);
        close.invoke(c, opts);
    }

    @Test
    void silentMemberIsExpiredAfterSessionTimeout() throws Exception {
        String topic = createTopic("cg-expire", PARTITIONS);
        String group = uniqueName("cg-expire");
        Properties p2 = groupProps(group, "c2");
        boolean hasCloseOptions;
        try {
            Class.forName("org.apache.kafka.clients.consumer.CloseOptions");
            hasCloseOptions = true;
        } catch (ClassNotFoundException e) {
            hasCloseOptions = false;
        }
        if (!hasCloseOptions) {
            p2.put("internal.leave.group.on.close", "false");
        }
        try (KafkaConsumer<String, String> c1 = new KafkaConsumer<>(groupProps(group, "c1"))) {
            KafkaConsumer<String, String> c2 = new KafkaConsumer<>(p2);
            c1.subscribe(List.of(topic));
            c2.subscribe(List.of(topic));
            pollUntil("two members get 3 partitions each", WAIT, List.of(c1, c2), null,
                    () -> splitEvenly(c1, c2, topic));
            long t0 = System.nanoTime();
            closeWithoutLeaving(c2);
            pollUntil("the broker expires c2 (session.timeout.ms=6000) and c1 gets all partitions",
                    WAIT, List.of(c1), null, () -> c1.assignment().equals(allPartitions(topic)));
            long ms = (System.nanoTime() - t0) / 1_000_000;
            System.out.println("silent member expired after " + ms + " ms");
        }
    }

    @Test
    void staticMemberRejoinsWithoutRebalance() {
        String topic = createTopic("cg-static", PARTITIONS);
        String group = uniqueName("cg-static");
        Properties p1 = groupProps(group, "s1");
        p1.put(ConsumerConfig.GROUP_INSTANCE_ID_CONFIG, "instance-1");
        p1.put(ConsumerConfig.SESSION_TIMEOUT_MS_CONFIG, "30000");
        Properties p2 = groupProps(group, "s2");
        p2.put(ConsumerConfig.GROUP_INSTANCE_ID_CONFIG, "instance-2");
        p2.put(ConsumerConfig.SESSION_TIMEOUT_MS_CONFIG, "30000");
        staticRejoinScenario(topic, p1, p2);
    }

    private void staticRejoinScenario(String topic, Properties p1, Properties p2) {
        Tracker t1 = new Tracker();
        try (KafkaConsumer<String, String> c1 = new KafkaConsumer<>(p1)) {
            KafkaConsumer<String, String> c2 = new KafkaConsumer<>(p2);
            c1.subscribe(List.of(topic), t1);
            c2.subscribe(List.of(topic));
            pollUntil("two static members get 3 partitions each", WAIT, List.of(c1, c2), null,
                    () -> splitEvenly(c1, c2, topic)
                            && c1.groupMetadata().generationId() == c2.groupMetadata().generationId());
            pollFor(Duration.ofSeconds(1), List.of(c1, c2));
            int generation = c1.groupMetadata().generationId();
            Set<TopicPartition> c2Assignment = new HashSet<>(c2.assignment());
            String c2MemberId = c2.groupMetadata().memberId();
            int eventsBefore = t1.events.size();

            c2.close(); // a static member does not send LeaveGroup on close

            try (KafkaConsumer<String, String> c2b = new KafkaConsumer<>(p2)) {
                c2b.subscribe(List.of(topic));
                pollUntil("the restarted static member gets its old partitions back", WAIT, List.of(c1, c2b),
                        null, () -> c2b.assignment().equals(c2Assignment));
                pollFor(Duration.ofSeconds(2), List.of(c1, c2b));
                assertEquals(c2Assignment, c2b.assignment());
                assertEquals(generation, c2b.groupMetadata().generationId(),
                        "a static member rejoining a stable group must not bump the generation");
                assertFalse(c2MemberId.equals(c2b.groupMetadata().memberId()), "new member id for the new instance");
                assertEquals(generation, c1.groupMetadata().generationId(), "c1 saw no rebalance");
                assertEquals(eventsBefore, t1.events.size(),
                        "c1 must not be rebalanced when a static member rejoins: " + t1.events);
            }
        }
    }

    /**
     * KIP-345: a static member that misses a rebalance (restarting, its session long) keeps
     * its place: the join phase ends at the rebalance timeout without it, the leader assigns
     * it its share, and the restarted instance takes that share back without another
     * rebalance, and is not put out when the sync deadline passes (Kafka 4.4 rebalances
     * then). A broker that dropped it would hand its partitions to the others and rebalance
     * again when it returned.
     */
    @Test
    void staticMemberKeepsItsShareThroughARebalanceItMisses() {
        String topic = createTopic("cg-static-away", PARTITIONS);
        String group = uniqueName("cg-static-away");
        Properties p1 = groupProps(group, "d1");
        p1.put(ConsumerConfig.MAX_POLL_INTERVAL_MS_CONFIG, "8000");
        Properties p2 = groupProps(group, "s2");
        p2.put(ConsumerConfig.GROUP_INSTANCE_ID_CONFIG, "instance-away");
        p2.put(ConsumerConfig.SESSION_TIMEOUT_MS_CONFIG, "60000");
        p2.put(ConsumerConfig.MAX_POLL_INTERVAL_MS_CONFIG, "8000");
        Properties p3 = groupProps(group, "d3");
        p3.put(ConsumerConfig.MAX_POLL_INTERVAL_MS_CONFIG, "8000");
        try (KafkaConsumer<String, String> c1 = new KafkaConsumer<>(p1)) {
            KafkaConsumer<String, String> c2 = new KafkaConsumer<>(p2);
            c1.subscribe(List.of(topic));
            c2.subscribe(List.of(topic));
            pollUntil("a dynamic and a static member get 3 partitions each", WAIT, List.of(c1, c2), null,
                    () -> splitEvenly(c1, c2, topic)
                            && c1.groupMetadata().generationId() == c2.groupMetadata().generationId());
            c2.close(); // restarting: a static member does not send LeaveGroup

            try (KafkaConsumer<String, String> c3 = new KafkaConsumer<>(p3)) {
                c3.subscribe(List.of(topic));
                pollUntil("the rebalance ends at its timeout without the static member", WAIT,
                        List.of(c1, c3), null,
                        () -> !c1.assignment().isEmpty() && !c3.assignment().isEmpty()
                                && c1.groupMetadata().generationId() == c3.groupMetadata().generationId());
                Set<TopicPartition> others = new HashSet<>(c1.assignment());
                others.addAll(c3.assignment());
                assertEquals(4, others.size(), "the absent static member keeps a third: " + others);
                ConsumerGroupDescription d = get(admin.describeConsumerGroups(List.of(group))
                        .describedGroups().get(group));
                assertEquals(3, d.members().size(), "members: " + d.members());
                assertTrue(d.members().stream()
                        .anyMatch(m -> m.groupInstanceId().equals(java.util.Optional.of("instance-away"))));
                int generation = c1.groupMetadata().generationId();

                Set<TopicPartition> itsShare = allPartitions(topic);
                itsShare.removeAll(others);
                try (KafkaConsumer<String, String> c2b = new KafkaConsumer<>(p2)) {
                    c2b.subscribe(List.of(topic));
                    pollUntil("the restarted static member gets its share", WAIT, List.of(c1, c3, c2b), null,
                            () -> c2b.assignment().equals(itsShare));
                    assertEquals(generation, c2b.groupMetadata().generationId(), "no rebalance for its return");
                    // Past the sync deadline (the 8 s rebalance timeout): nothing moves. Kafka
                    // 4.4 rebalances here: its pending-sync set keeps the old instance's
                    // member id, which never syncs (README, "Compared with Kafka").
                    assumeSluice("Kafka rebalances once the returned instance's old id misses the sync");
                    pollFor(Duration.ofSeconds(10), List.of(c1, c3, c2b));
                    assertEquals(generation, c1.groupMetadata().generationId(), "no rebalance after it synced");
                    assertEquals(itsShare, c2b.assignment());
                }
            }
        }
    }

    private static void pollFor(Duration d, List<KafkaConsumer<String, String>> consumers) {
        long end = System.nanoTime() + d.toNanos();
        while (System.nanoTime() < end) {
            for (KafkaConsumer<String, String> c : consumers) {
                c.poll(Duration.ofMillis(50));
            }
        }
    }

    @Test
    void commitSyncAndCommitted() {
        String topic = createTopic("cg-commit", 3);
        try (KafkaProducer<String, String> p = new KafkaProducer<>(stringProducerProps())) {
            for (int i = 0; i < 90; i++) {
                p.send(new ProducerRecord<>(topic, i % 3, "k" + i, "v" + i));
            }
            p.flush();
        }
        String group = uniqueName("cg-commit");
        Properties props = groupProps(group, "committer");
        props.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        TopicPartition tp0 = new TopicPartition(topic, 0);
        TopicPartition tp1 = new TopicPartition(topic, 1);
        TopicPartition tp2 = new TopicPartition(topic, 2);
        List<ConsumerRecord<String, String>> got = new ArrayList<>();
        try (KafkaConsumer<String, String> c = new KafkaConsumer<>(props)) {
            c.subscribe(List.of(topic));
            pollUntil("90 records consumed", WAIT, List.of(c), got, () -> got.size() >= 90);
            assertNull(c.committed(Set.of(tp0)).get(tp0), "nothing committed yet");
            c.commitSync(Map.of(
                    tp0, new OffsetAndMetadata(10, "meta-0"),
                    tp1, new OffsetAndMetadata(20, "meta-1"),
                    tp2, new OffsetAndMetadata(30, "")));
            Map<TopicPartition, OffsetAndMetadata> committed = c.committed(Set.of(tp0, tp1, tp2));
            assertEquals(10L, committed.get(tp0).offset());
            assertEquals("meta-0", committed.get(tp0).metadata());
            assertEquals(20L, committed.get(tp1).offset());
            assertEquals("meta-1", committed.get(tp1).metadata());
            assertEquals(30L, committed.get(tp2).offset());
        }
        // A new member of the group resumes from the committed offsets.
        Map<Integer, Long> firstOffset = new HashMap<>();
        List<ConsumerRecord<String, String>> again = new ArrayList<>();
        try (KafkaConsumer<String, String> c = new KafkaConsumer<>(props)) {
            c.subscribe(List.of(topic));
            pollUntil("resume from committed offsets", WAIT, List.of(c), again,
                    () -> again.size() >= 20 + 10 + 0);
            for (ConsumerRecord<String, String> r : again) {
                firstOffset.putIfAbsent(r.partition(), r.offset());
            }
            assertEquals(Map.of(0, 10L, 1, 20L), firstOffset, "first offsets consumed after resume");
            assertEquals(30, again.size(), "records after the committed offsets");
            c.commitSync(); // commit current positions
            Map<TopicPartition, OffsetAndMetadata> committed = c.committed(Set.of(tp0, tp1, tp2));
            assertEquals(30L, committed.get(tp0).offset());
            assertEquals(30L, committed.get(tp1).offset());
            assertEquals(30L, committed.get(tp2).offset());
        }
    }

    @Test
    void adminGroupApis() throws Exception {
        String topic = createTopic("cg-admin", PARTITIONS);
        produceStrings(topic, 120);
        String group = uniqueName("cg-admin");
        Properties props = groupProps(group, "admin-test-client");
        props.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        List<ConsumerRecord<String, String>> got = new ArrayList<>();
        try (KafkaConsumer<String, String> c = new KafkaConsumer<>(props)) {
            c.subscribe(List.of(topic));
            pollUntil("120 records consumed", WAIT, List.of(c), got, () -> got.size() >= 120);
            c.commitSync();

            Collection<ConsumerGroupListing> listings = get(admin.listConsumerGroups().all());
            assertTrue(listings.stream().anyMatch(l -> l.groupId().equals(group)),
                    "listConsumerGroups must include " + group + ": " + listings);

            ConsumerGroupDescription d = get(admin.describeConsumerGroups(List.of(group)).describedGroups().get(group));
            assertEquals(group, d.groupId());
            assertEquals(ConsumerGroupState.STABLE, d.state());
            assertFalse(d.isSimpleConsumerGroup());
            assertNotNull(d.coordinator());
            assertEquals(1, d.members().size(), "members: " + d.members());
            MemberDescription m = d.members().iterator().next();
            assertEquals("admin-test-client", m.clientId());
            assertEquals(allPartitions(topic), m.assignment().topicPartitions());
            assertFalse(d.partitionAssignor().isEmpty(), "partition assignor name");

            Map<TopicPartition, OffsetAndMetadata> offsets =
                    get(admin.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata());
            assertEquals(allPartitions(topic), offsets.keySet());
            for (int p = 0; p < PARTITIONS; p++) {
                assertEquals(20L, offsets.get(new TopicPartition(topic, p)).offset(), "committed offset p" + p);
            }

            // Active group: cannot delete it, nor offsets of a subscribed topic.
            Throwable notEmpty = failure(admin.deleteConsumerGroups(List.of(group)).all());
            assertInstanceOf(GroupNotEmptyException.class, notEmpty);
            Throwable subscribed = failure(admin.deleteConsumerGroupOffsets(group,
                    Set.of(new TopicPartition(topic, 0))).all());
            assertInstanceOf(GroupSubscribedToTopicException.class, subscribed);
        }

        waitUntil("group becomes EMPTY after its member leaves", WAIT, () -> get(admin.describeConsumerGroups(
                List.of(group)).describedGroups().get(group)).state() == ConsumerGroupState.EMPTY);
        ConsumerGroupDescription empty = get(admin.describeConsumerGroups(List.of(group)).describedGroups().get(group));
        assertTrue(empty.members().isEmpty());

        TopicPartition tp0 = new TopicPartition(topic, 0);
        get(admin.deleteConsumerGroupOffsets(group, Set.of(tp0)).all());
        Map<TopicPartition, OffsetAndMetadata> after =
                get(admin.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata());
        assertFalse(after.containsKey(tp0) && after.get(tp0) != null, "offset of " + tp0 + " deleted: " + after);
        assertEquals(PARTITIONS - 1, after.values().stream().filter(v -> v != null).count(), "others remain");

        get(admin.deleteConsumerGroups(List.of(group)).all());
        waitUntil("deleted group disappears from listConsumerGroups", WAIT,
                () -> get(admin.listConsumerGroups().all()).stream().noneMatch(l -> l.groupId().equals(group)));
        try {
            ConsumerGroupDescription dead =
                    admin.describeConsumerGroups(List.of(group)).describedGroups().get(group).get();
            assertEquals(ConsumerGroupState.DEAD, dead.state(), "a deleted group is described as Dead");
        } catch (java.util.concurrent.ExecutionException e) {
            assertInstanceOf(GroupIdNotFoundException.class, e.getCause());
        }
        Throwable gone = failure(admin.deleteConsumerGroups(List.of(group)).all());
        assertInstanceOf(GroupIdNotFoundException.class, gone);
    }
}
