"""7. Consumer groups: assignment split and rebalance, session timeout,
static membership, commits; confluent-kafka, kafka-python, kcat and mixed."""

import os
import select
import signal
import subprocess
import sys
import time

import pytest
from confluent_kafka import ConsumerGroupState, KafkaError, KafkaException, TopicPartition


import rawkafka as rk
from compat_util import (
    admin, cf_consumer, cf_produce, create_topic, kcat, kp_group_consumer, uniq, wait_until,
)

HERE = os.path.dirname(os.path.abspath(__file__))
PARTS = 6
T = 30
RT = T + 30   # result waits outlive request_timeout: never abandon a pending future


def fill(bootstrap, topic, per_partition=20):
    recs = [{"key": f"k{i}".encode(), "value": f"p{i % PARTS}-{i // PARTS}".encode(),
             "partition": i % PARTS} for i in range(per_partition * PARTS)]
    assert not cf_produce(bootstrap, topic, recs).errors


def parts_of(consumer, topic):
    return {tp.partition for tp in consumer.assignment() if tp.topic == topic}


def poll_all(consumers, rounds=1, timeout=0.05):
    got = []
    for _ in range(rounds):
        for c in consumers:
            m = c.poll(timeout)
            if m is not None:
                if m.error():
                    raise KafkaException(m.error())
                got.append((c, m))
    return got


def group_conf(**extra):
    conf = {"session.timeout.ms": 10000, "heartbeat.interval.ms": 1000}
    conf.update(extra)
    return conf


# -- confluent-kafka ----------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("assignor", ["range", "roundrobin", "cooperative-sticky"])
def test_two_consumers_split_then_rebalance(bootstrap, assignor):
    topic = create_topic(bootstrap, uniq(f"grp-split-{assignor}"), partitions=PARTS)
    fill(bootstrap, topic)
    group = uniq("grp-split")
    conf = group_conf(**{"partition.assignment.strategy": assignor})
    a = cf_consumer(bootstrap, group=group, **conf)
    b = cf_consumer(bootstrap, group=group, **conf)
    try:
        a.subscribe([topic])
        wait_until(lambda: (poll_all([a]), parts_of(a, topic) == set(range(PARTS)))[1], T,
                   what="first consumer to own all 6 partitions")
        b.subscribe([topic])

        def split():
            poll_all([a, b])
            pa, pb = parts_of(a, topic), parts_of(b, topic)
            return len(pa) == 3 and len(pb) == 3 and pa | pb == set(range(PARTS))
        wait_until(split, T, 0.0, "the two consumers to split 6 partitions 3/3")
        pa, pb = parts_of(a, topic), parts_of(b, topic)
        assert not pa & pb

        # each consumer only receives records of its own partitions
        received = {id(a): set(), id(b): set()}
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline:
            for c, m in poll_all([a, b]):
                received[id(c)].add(m.partition())
        assert received[id(a)] <= pa and received[id(b)] <= pb

        b.close()
        b = None
        wait_until(lambda: (poll_all([a]), parts_of(a, topic) == set(range(PARTS)))[1], T,
                   what="remaining consumer to take over all partitions after the other closed")
    finally:
        for c in (a, b):
            if c is not None:
                c.close()


def read_line(proc, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r, _, _ = select.select([proc.stdout], [], [], 0.2)
        if r:
            line = proc.stdout.readline()
            if not line:
                return None
            return line.decode().strip()
        if proc.poll() is not None:
            return None
    return None


@pytest.mark.slow
def test_dead_member_removed_after_session_timeout(bootstrap):
    topic = create_topic(bootstrap, uniq("grp-dead"), partitions=PARTS)
    group = uniq("grp-dead")
    proc = subprocess.Popen([sys.executable, os.path.join(HERE, "group_member.py"),
                             bootstrap, group, topic, "session.timeout.ms=6000"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    a = None
    try:
        deadline = time.monotonic() + T
        while True:
            line = read_line(proc, max(0.1, deadline - time.monotonic()))
            assert line is not None, "group member subprocess got no assignment"
            if line == f"ASSIGNED {PARTS}":
                break
        a = cf_consumer(bootstrap, group=group, **group_conf(**{"session.timeout.ms": 30000}))
        a.subscribe([topic])
        wait_until(lambda: (poll_all([a]), len(parts_of(a, topic)) == 3)[1], T,
                   what="consumer to get half of the partitions next to the subprocess")
        # let the subprocess finish its rejoin and heartbeat normally
        t_end = time.monotonic() + 2
        while time.monotonic() < t_end:
            poll_all([a])
        assert len(parts_of(a, topic)) == 3
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        killed = time.monotonic()
        wait_until(lambda: (poll_all([a]), parts_of(a, topic) == set(range(PARTS)))[1], 45,
                   0.0, "the survivor to get all partitions after the dead member's session timed out")
        elapsed = time.monotonic() - killed
        print(f"dead member evicted and partitions reassigned after {elapsed:.1f}s "
              "(session.timeout.ms=6000)")
        assert elapsed >= 3.0, (
            f"partitions moved {elapsed:.1f}s after kill -9, long before session.timeout.ms=6000; "
            "Kafka only evicts classic-group members on session timeout, not on disconnect")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if a is not None:
            a.close()


@pytest.mark.slow
def test_members_starting_apart_form_one_generation(broker_factory):
    """Kafka's initial rebalance delay (group.initial.rebalance.delay.ms, 3 s by default)
    is held open another delay by each member that joins during it, up to the rebalance
    timeout: three consumers started two seconds apart form one generation, and each is
    assigned once. A fixed 3 s window would complete without the third, then rebalance."""
    b = broker_factory(config={"group.initial.rebalance.delay.ms": 3000})
    bs = b.bootstrap
    topic = create_topic(bs, uniq("grp-initial"), partitions=PARTS)
    group = uniq("grp-initial")
    assigned = [[], [], []]
    consumers = []

    def poll_for(seconds):
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            poll_all(consumers)

    try:
        for i in range(3):
            c = cf_consumer(bs, group=group, **group_conf())
            c.subscribe([topic], on_assign=lambda _c, parts, i=i: assigned[i].append(
                sorted(p.partition for p in parts)))
            consumers.append(c)
            poll_for(2.0)
        wait_until(lambda: (poll_all(consumers), all(assigned))[1], T, what="all three assigned")
        poll_for(4.0)  # long enough for a second generation to show
        assert [len(a) for a in assigned] == [1, 1, 1], assigned
        assert sorted(p for a in assigned for p in a[0]) == list(range(PARTS)), assigned
    finally:
        for c in consumers:
            c.close()


@pytest.mark.slow
def test_static_membership(bootstrap):
    topic = create_topic(bootstrap, uniq("grp-static"), partitions=PARTS)
    fill(bootstrap, topic)
    group = uniq("grp-static")
    conf = group_conf(**{"group.instance.id": "instance-a", "session.timeout.ms": 15000})
    adm = admin(bootstrap)
    s1 = cf_consumer(bootstrap, group=group, **conf)
    try:
        s1.subscribe([topic])
        wait_until(lambda: (poll_all([s1]), parts_of(s1, topic) == set(range(PARTS)))[1], T,
                   what="static member assignment")
        s1.commit(offsets=[TopicPartition(topic, 0, 7)], asynchronous=False)
        desc = adm.describe_consumer_groups([group], request_timeout=T)[group].result(RT)
        assert [m.group_instance_id for m in desc.members] == ["instance-a"]
        member_id = desc.members[0].member_id
    finally:
        s1.close()

    # a static member does not leave the group on close
    desc = adm.describe_consumer_groups([group], request_timeout=T)[group].result(RT)
    assert [m.group_instance_id for m in desc.members] == ["instance-a"], \
        "static member left the group on close (it must stay until session.timeout.ms)"

    s2 = cf_consumer(bootstrap, group=group, **conf)
    try:
        s2.subscribe([topic])
        start = time.monotonic()
        first_p0 = None
        deadline = start + T
        while time.monotonic() < deadline and first_p0 is None:
            for _, m in poll_all([s2]):
                if m.partition() == 0:
                    first_p0 = m.offset()
        took = time.monotonic() - start
        assert parts_of(s2, topic) == set(range(PARTS))
        assert first_p0 == 7, f"rejoined static member resumed p0 at {first_p0}, committed 7"
        print(f"static member rejoined and consumed after {took:.2f}s")
        assert took < 12, "static rejoin waited for the old member's session timeout"
        desc = adm.describe_consumer_groups([group], request_timeout=T)[group].result(RT)
        assert [m.group_instance_id for m in desc.members] == ["instance-a"]
        assert desc.members[0].member_id != member_id

        # a second live consumer with the same group.instance.id fences the first
        s3 = cf_consumer(bootstrap, group=group, **conf)
        try:
            s3.subscribe([topic])
            fenced = None
            deadline = time.monotonic() + T
            while fenced is None and time.monotonic() < deadline:
                for c in (s2, s3):
                    try:
                        m = c.poll(0.05)
                    except KafkaException as e:
                        m = None
                        err = e.args[0]
                        if c is s2:
                            fenced = err
                    if m is not None and m.error() and c is s2:
                        err = m.error()
                        if err.code() in (KafkaError.FENCED_INSTANCE_ID, KafkaError._FATAL):
                            fenced = err
            assert fenced is not None, "old static member was not fenced"
            # librdkafka raises it as a fatal error wrapping FENCED_INSTANCE_ID (82)
            assert (fenced.code() == KafkaError.FENCED_INSTANCE_ID
                    or "fenced by other consumer with same group.instance.id" in fenced.str()), \
                fenced
        finally:
            s3.close()
    finally:
        try:
            s2.close()
        except KafkaException:
            pass


def test_commit_and_committed(bootstrap):
    topic = create_topic(bootstrap, uniq("grp-commit"), partitions=PARTS)
    fill(bootstrap, topic)
    group = uniq("grp-commit")
    c = cf_consumer(bootstrap, group=group, **group_conf())
    try:
        c.subscribe([topic])
        wait_until(lambda: (poll_all([c]), len(parts_of(c, topic)) == PARTS)[1], T,
                   what="assignment")
        res = c.commit(offsets=[TopicPartition(topic, 0, 15, metadata="meta-0"),
                                TopicPartition(topic, 3, 4)], asynchronous=False)
        assert all(tp.error is None for tp in res)
        got = {tp.partition: tp for tp in c.committed([TopicPartition(topic, p)
                                                       for p in range(PARTS)], timeout=10)}
        assert got[0].offset == 15 and got[0].metadata == "meta-0"
        assert got[3].offset == 4
        assert got[1].offset < 0, "uncommitted partition reported an offset"
    finally:
        c.close()

    # a new member of the group resumes from the committed offsets
    c = cf_consumer(bootstrap, group=group, **group_conf())
    try:
        c.subscribe([topic])
        first = {}
        deadline = time.monotonic() + T
        while len(first) < PARTS and time.monotonic() < deadline:
            for _, m in poll_all([c]):
                first.setdefault(m.partition(), m.offset())
        assert first == {0: 15, 1: 0, 2: 0, 3: 4, 4: 0, 5: 0}
    finally:
        c.close()


def test_auto_commit_on_close(bootstrap):
    topic = create_topic(bootstrap, uniq("grp-autocommit"), partitions=PARTS)
    fill(bootstrap, topic, per_partition=10)
    group = uniq("grp-autocommit")
    c = cf_consumer(bootstrap, group=group, **group_conf(**{
        "enable.auto.commit": True, "auto.commit.interval.ms": 200}))
    try:
        c.subscribe([topic])
        n = 0
        deadline = time.monotonic() + T
        while n < 10 * PARTS and time.monotonic() < deadline:
            n += len(poll_all([c]))
        assert n == 10 * PARTS
    finally:
        c.close()
    c = cf_consumer(bootstrap, group=group)
    try:
        got = c.committed([TopicPartition(topic, p) for p in range(PARTS)], timeout=10)
        assert [tp.offset for tp in got] == [10] * PARTS
    finally:
        c.close()


# -- kafka-python ---------------------------------------------------------------------------

def kp_parts(c, topic):
    return {tp.partition for tp in c.assignment() if tp.topic == topic}


@pytest.mark.slow
def test_kafka_python_group_split_commit_rebalance(bootstrap):
    from kafka import TopicPartition as KTP
    from kafka.structs import OffsetAndMetadata
    topic = create_topic(bootstrap, uniq("grp-kp"), partitions=PARTS)
    fill(bootstrap, topic)
    group = uniq("grp-kp")
    conf = dict(group_id=group, session_timeout_ms=10000, heartbeat_interval_ms=1000,
                max_poll_interval_ms=30000)
    a = kp_group_consumer(bootstrap, topic, **conf)
    b = None
    try:
        consumed = []
        wait_until(lambda: (consumed.extend(r for rs in a.poll(timeout_ms=300).values() for r in rs),
                            kp_parts(a, topic) == set(range(PARTS)))[1], T,
                   what="kafka-python consumer assignment")
        b = kp_group_consumer(bootstrap, topic, **conf)

        def split():
            for c in (a, b):
                c.poll(timeout_ms=200)
            pa, pb = kp_parts(a, topic), kp_parts(b, topic)
            return len(pa) == 3 and len(pb) == 3 and pa | pb == set(range(PARTS))
        wait_until(split, T, 0.0, "two kafka-python consumers to split 3/3")

        pa = sorted(kp_parts(a, topic))
        offsets = {KTP(topic, p): OffsetAndMetadata(5, "kp-meta", -1) for p in pa}
        a.commit(offsets)
        for p in pa:
            om = a.committed(KTP(topic, p), metadata=True)
            assert om.offset == 5 and om.metadata == "kp-meta"

        b.close()
        b = None
        wait_until(lambda: (a.poll(timeout_ms=300), kp_parts(a, topic) == set(range(PARTS)))[1],
                   T, 0.0, "survivor to own all partitions")
    finally:
        a.close(autocommit=False)
        if b is not None:
            b.close(autocommit=False)


@pytest.mark.slow
def test_mixed_clients_in_one_group(bootstrap):
    """A librdkafka consumer and a kafka-python consumer share one group."""
    topic = create_topic(bootstrap, uniq("grp-mixed"), partitions=PARTS)
    group = uniq("grp-mixed")
    cf = cf_consumer(bootstrap, group=group, **group_conf(**{
        "partition.assignment.strategy": "range"}))
    kp = kp_group_consumer(bootstrap, topic, group_id=group, session_timeout_ms=10000,
                           heartbeat_interval_ms=1000)
    try:
        cf.subscribe([topic])

        def split():
            poll_all([cf])
            kp.poll(timeout_ms=200)
            a, b = parts_of(cf, topic), kp_parts(kp, topic)
            return len(a) == 3 and len(b) == 3 and a | b == set(range(PARTS))
        wait_until(split, T, 0.0, "confluent + kafka-python consumers to split 3/3")
    finally:
        cf.close()
        kp.close(autocommit=False)


# -- kcat -------------------------------------------------------------------------------------

@pytest.mark.kcat
def test_kcat_balanced_consumer_commits(bootstrap):
    topic = create_topic(bootstrap, uniq("grp-kcat"), partitions=PARTS)
    fill(bootstrap, topic, per_partition=5)
    group = uniq("grp-kcat")
    res = kcat(bootstrap, "-G", group, "-o", "beginning", "-e", "-q", "-f", "%p %o\n",
               "-X", "enable.auto.commit=true", "-X", "auto.commit.interval.ms=100", topic,
               timeout=60)
    rows = [tuple(map(int, l.split())) for l in res.stdout.decode().splitlines() if l.strip()]
    assert sorted(rows) == [(p, o) for p in range(PARTS) for o in range(5)]
    c = cf_consumer(bootstrap, group=group)
    try:
        got = c.committed([TopicPartition(topic, p) for p in range(PARTS)], timeout=10)
        assert [tp.offset for tp in got] == [5] * PARTS
    finally:
        c.close()
    adm = admin(bootstrap)  # keep a reference: a collected AdminClient never completes futures
    desc = adm.describe_consumer_groups([group], request_timeout=T)[group].result(RT)
    assert desc.state == ConsumerGroupState.EMPTY


def test_offset_metadata_is_bounded_as_kafka_bounds_it(bootstrap):
    """offset.metadata.max.bytes (4096) counts what Java's String.length() counts, UTF-16
    code units, so 3,000 two-byte characters fit. A group's own error (a standalone
    commit to a group with members) comes before the metadata's size, as in Kafka's
    OffsetMetadataManager."""
    from kafka import TopicPartition as KTP
    from kafka.errors import CommitFailedError, OffsetMetadataTooLargeError
    from kafka.structs import OffsetAndMetadata
    from compat_util import kp_consumer
    topic = create_topic(bootstrap, uniq("grp-meta"), partitions=1)
    tp = KTP(topic, 0)
    alone = kp_consumer(bootstrap, group_id=uniq("grp-meta-alone"), enable_auto_commit=False)
    try:
        alone.assign([tp])
        alone.commit({tp: OffsetAndMetadata(1, "m" * 4096, -1)})
        with pytest.raises(OffsetMetadataTooLargeError):
            alone.commit({tp: OffsetAndMetadata(2, "m" * 4097, -1)})
        wide = "é" * 3000   # 6,000 bytes of UTF-8
        alone.commit({tp: OffsetAndMetadata(3, wide, -1)})
        got = alone.committed(tp, metadata=True)
        assert (got.offset, got.metadata) == (3, wide)
    finally:
        alone.close()

    group = uniq("grp-meta-busy")
    member = cf_consumer(bootstrap, group=group, **group_conf())
    outsider = kp_consumer(bootstrap, group_id=group, enable_auto_commit=False)
    try:
        member.subscribe([topic])
        wait_until(lambda: (poll_all([member]), parts_of(member, topic) == {0})[1], T,
                   what="the member's assignment")
        outsider.assign([tp])
        with pytest.raises(CommitFailedError) as refused:
            outsider.commit({tp: OffsetAndMetadata(9, "m" * 5000, -1)})
        assert "UnknownMemberId" in repr(refused.value), repr(refused.value)
    finally:
        outsider.close()
        member.close()


def test_an_offset_commit_v2_retention_expires_that_commit(broker_factory):
    """OffsetCommit v2-v4 carry a retention for the commit: the offset expires at that
    moment rather than after offsets.retention.minutes (Kafka's expireTimestampMs),
    while one committed with -1 stays."""
    b = broker_factory(config={"offsets.retention.check.interval.ms": "200"})
    topic = create_topic(b.bootstrap, uniq("commit-ret"), partitions=2)
    group = uniq("commit-ret-g")
    host, port = b.bootstrap.rsplit(":", 1)
    consumer = cf_consumer(b.bootstrap, group)
    try:
        def committed():
            tps = [TopicPartition(topic, p) for p in (0, 1)]
            return [tp.offset for tp in consumer.committed(tps, timeout=T)]
        def coordinator_ready():
            try:
                return committed() == [-1001, -1001]
            except KafkaException:
                return False   # Kafka: NOT_COORDINATOR while it creates its offsets topic
        # The group's coordinator is this one broker once it answers.
        wait_until(coordinator_ready, T, 0.5, "the group coordinator")

        def commit(c, retention_ms, offsets):
            corr = c.send_request(rk.API_OFFSET_COMMIT, 2,
                                  rk.offset_commit_v2_body(group, retention_ms, topic, offsets))
            got, errors = rk.parse_offset_commit_v2(c.recv_frame())
            assert got == corr
            return set(errors.values())
        with rk.Conn(host, int(port)) as c:
            for retention_ms, offsets in ((3000, {0: 5}), (-1, {1: 7})):
                assert commit(c, retention_ms, offsets) == {0}
        first = committed()
        assert first == [5, 7], first
        wait_until(lambda: committed()[0] < 0, T, 0.2, "the offset committed for 3 s to expire")
        assert committed()[1] == 7
    finally:
        consumer.close()

