"""9. Tests that stop, kill or restart the broker, or read its metrics.
Skipped when KAFKA_BOOTSTRAP is set (the suite cannot control that broker)."""

import os
import threading
import time

import pytest
from confluent_kafka import ConsumerGroupTopicPartitions, Producer, TopicPartition
from confluent_kafka.admin import ConfigResource, ResourceType

from compat_util import (
    RDKAFKA_LOGGER, DeliveryLog, admin, cf_consume_assigned, cf_consumer, cf_produce, create_topic, topic_names,
    uniq, wait_topic_ready, wait_until, watermarks,
)

pytestmark = pytest.mark.needs_broker_control

T = 30
RT = T + 30   # result waits outlive request_timeout: never abandon a pending future
PARTS = 3


@pytest.fixture
def ctl_broker(broker_factory):
    """A private broker (own data dir) that the test may stop and kill."""
    return broker_factory(name="ctl")


class BackgroundProducer:
    """Produces numbered records as fast as librdkafka accepts them until
    stopped; keeps the delivery reports."""

    def __init__(self, bootstrap, topic, idempotent, name=""):
        self.topic = topic
        self.name = name    # prefixes the values, so that several producers' differ
        self.log = DeliveryLog()
        self.lock = threading.Lock()
        self.p = Producer({
            "bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5,
            "enable.idempotence": idempotent, "message.timeout.ms": 120000,
            "retry.backoff.ms": 100, "retry.backoff.max.ms": 500,
            "reconnect.backoff.ms": 50, "reconnect.backoff.max.ms": 500,
            "logger": RDKAFKA_LOGGER,
        })
        self.sent = 0
        self.stop_evt = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self):
        i = 0
        while not self.stop_evt.is_set():
            try:
                self.p.produce(self.topic, key=str(i % 50).encode(), value=f"{self.name}{i:09d}".encode(),
                               on_delivery=self.log)
                i += 1
                self.sent = i
            except BufferError:
                pass
            self.p.poll(0.001 if i % 20 == 0 else 0)

    def delivered(self):
        return len(self.log.ok)

    def start(self):
        self.thread.start()

    def finish(self):
        self.stop_evt.set()
        self.thread.join(30)
        remaining = self.p.flush(150)
        assert remaining == 0, f"{remaining} records neither delivered nor failed"


@pytest.mark.slow
@pytest.mark.parametrize("idempotent", [False, True], ids=["plain", "idempotent"])
@pytest.mark.parametrize("hard", [False, True], ids=["sigterm", "kill9"])
def test_acked_records_survive_restart(ctl_broker, hard, idempotent):
    b = ctl_broker
    topic = create_topic(b.bootstrap, uniq("ctl-produce"), partitions=PARTS,
                         config={"retention.ms": "86400000"})
    bp = BackgroundProducer(b.bootstrap, topic, idempotent)
    bp.start()
    try:
        wait_until(lambda: bp.delivered() >= 3000, 60, what="3000 acked records before restart")
        acked_before = bp.delivered()
        b.restart(hard=hard)
        print(f"restarted ({'kill -9' if hard else 'SIGTERM'}, exit code {b.last_exit_code}) "
              f"after {acked_before} acks")
        wait_until(lambda: bp.delivered() >= acked_before + 3000, 90,
                   what="3000 more acked records after the restart")
    finally:
        bp.finish()

    delivered = {v for _, _, _, v, _, _ in bp.log.ok}
    wm = watermarks(b.bootstrap, topic, range(PARTS))
    stored_count = sum(hi - lo for lo, hi in wm.values())
    got = cf_consume_assigned(b.bootstrap, topic, range(PARTS), stored_count, timeout=90)
    stored = [m[3] for m in got]
    missing = delivered - set(stored)
    print(f"sent={bp.sent} acked={len(delivered)} failed={len(bp.log.errors)} "
          f"stored={len(stored)}")
    assert not missing, f"{len(missing)} acknowledged records lost, e.g. {sorted(missing)[:5]}"
    if idempotent:
        assert len(stored) == len(set(stored)), \
            f"{len(stored) - len(set(stored))} duplicates with an idempotent producer"
        for p in range(PARTS):
            seq = [int(m[3]) for m in got if m[0] == p]
            assert seq == sorted(seq), f"partition {p} out of order after restart"
    # topic metadata and config survived too
    assert topic in topic_names(b.bootstrap)
    a = admin(b.bootstrap)
    res = ConfigResource(ResourceType.TOPIC, topic)
    cfg = a.describe_configs([res], request_timeout=T)[res].result(RT)
    assert cfg["retention.ms"].value == "86400000"


@pytest.mark.parametrize("hard", [False, True], ids=["sigterm", "kill9"])
def test_committed_offsets_survive_restart(ctl_broker, hard):
    b = ctl_broker
    topic = create_topic(b.bootstrap, uniq("ctl-offsets"), partitions=2)
    assert not cf_produce(b.bootstrap, topic, [{"value": f"v{i}".encode(), "partition": i % 2}
                                               for i in range(60)]).errors
    group = uniq("ctl-group")
    c = cf_consumer(b.bootstrap, group=group)
    try:
        c.subscribe([topic])
        n = 0
        deadline = time.monotonic() + T
        while n < 60 and time.monotonic() < deadline:
            m = c.poll(0.2)
            if m is not None and not m.error():
                n += 1
        assert n == 60
        c.commit(offsets=[TopicPartition(topic, 0, 12, metadata="keep-me"),
                          TopicPartition(topic, 1, 21)], asynchronous=False)
    finally:
        c.close()

    b.restart(hard=hard)
    wait_topic_ready(b.bootstrap, topic, 2)

    a = admin(b.bootstrap)
    req = [ConsumerGroupTopicPartitions(group, [TopicPartition(topic, 0), TopicPartition(topic, 1)])]

    def offsets():
        try:
            # request_timeout < result timeout: never abandon a pending future
            # (librdkafka may call back into it after it is gone)
            res = a.list_consumer_group_offsets(req, request_timeout=5)[group].result(20)
        except Exception:
            return None   # coordinator still loading
        return sorted((tp.partition, tp.offset, tp.metadata) for tp in res.topic_partitions)
    wait_until(lambda: offsets() is not None, T, 0.5, "group coordinator after restart")
    got = offsets()
    assert [(p, o) for p, o, _ in got] == [(0, 12), (1, 21)], got
    assert got[0][2] == "keep-me"

    c = cf_consumer(b.bootstrap, group=group)
    try:
        c.subscribe([topic])
        first = {}
        deadline = time.monotonic() + T
        while len(first) < 2 and time.monotonic() < deadline:
            m = c.poll(0.2)
            if m is not None and not m.error():
                first.setdefault(m.partition(), m.offset())
        assert first == {0: 12, 1: 21}, f"consumption resumed at {first}"
    finally:
        c.close()


def test_restart_keeps_port_and_serves(ctl_broker):
    b = ctl_broker
    topic = create_topic(b.bootstrap, uniq("ctl-port"), partitions=1)
    for hard in (False, True, False):
        b.restart(hard=hard)
        log = cf_produce(b.bootstrap, topic, [{"value": b"after restart"}],
                         conf={"message.timeout.ms": 30000})
        assert not log.errors, log.errors
    assert watermarks(b.bootstrap, topic, [0])[0][1] == 3


def test_deleted_topic_files_are_removed(ctl_broker):
    """DeleteTopics renames the partition directories at once and removes them in the
    background; a leftover of a removal cut short by a crash is removed at start."""
    if os.environ.get("COMPAT_REAL_KAFKA"):
        pytest.skip("Sluice's data-directory layout (Kafka waits file.delete.delay.ms)")
    b = ctl_broker
    topic = create_topic(b.bootstrap, uniq("ctl-del"), partitions=2, config={"segment.bytes": "65536"})
    recs = [{"value": os.urandom(1000), "partition": i % 2} for i in range(1000)]
    assert not cf_produce(b.bootstrap, topic, recs, conf={"batch.size": 16384}).errors

    def dirs():
        return [d for d in os.listdir(b.data_dir) if d.startswith(topic + "-")]
    assert sorted(dirs()) == [f"{topic}-0", f"{topic}-1"]
    segments = os.listdir(os.path.join(b.data_dir, f"{topic}-0"))
    assert len([f for f in segments if f.endswith(".log")]) > 1, segments

    a = admin(b.bootstrap)
    a.delete_topics([topic], operation_timeout=T, request_timeout=T)[topic].result(RT)
    # Re-created at once under the same name, while the old files may still be removed:
    # the new topic starts empty and keeps its own directory.
    wait_until(lambda: not topic_names(b.bootstrap) & {topic}, T, what="the topic gone")
    create_topic(b.bootstrap, topic, partitions=1)
    assert not cf_produce(b.bootstrap, topic, [{"value": b"new", "partition": 0}]).errors
    assert watermarks(b.bootstrap, topic, [0])[0] == (0, 1)
    wait_until(lambda: dirs() == [f"{topic}-0"], T, what="the deleted topic's directories removed")
    assert os.listdir(os.path.join(b.data_dir, f"{topic}-0"))

    leftover = os.path.join(b.data_dir, f"{topic}-0.0123456789abcdef-delete")
    os.makedirs(leftover)
    with open(os.path.join(leftover, "00000000000000000000.log"), "wb") as f:
        f.write(b"x" * 4096)
    b.restart(hard=True)
    # Start-up queues the removal on a background thread: not done by the time it serves.
    wait_until(lambda: not os.path.exists(leftover), T, what="the leftover removed at start")


def test_a_partition_directory_of_no_topic_is_set_aside_at_start(ctl_broker):
    """A topic deletion committed to the metadata log but cut short by a kill before its
    rename leaves the partition's directory under its live name. At start the broker
    renames such directories `<name>.<id>-stray` and keeps them, as Kafka marks stray
    logs; the topics it does host are left alone."""
    if os.environ.get("COMPAT_REAL_KAFKA"):
        pytest.skip("Sluice's data-directory layout")
    b = ctl_broker
    topic = create_topic(b.bootstrap, uniq("ctl-live"), partitions=1)
    assert not cf_produce(b.bootstrap, topic, [{"value": b"kept", "partition": 0}]).errors
    live = os.path.join(b.data_dir, f"{topic}-0")
    wait_until(lambda: os.path.exists(os.path.join(live, "partition.metadata")), T,
               what="the live partition's partition.metadata")
    b.stop()
    # What a cut-short deletion leaves: a whole partition directory, partition.metadata
    # and all, of a topic the metadata no longer has, and of a partition past a topic's
    # count. A directory without partition.metadata is no partition's and stays.
    strays = {}
    for name in (f"{uniq('ctl-gone')}-0", f"{topic}-7"):
        d = os.path.join(b.data_dir, name)
        os.makedirs(d)
        for f in os.listdir(live):
            with open(os.path.join(live, f), "rb") as src, open(os.path.join(d, f), "wb") as dst:
                dst.write(src.read())
        strays[name] = sorted(os.listdir(d))
    other = os.path.join(b.data_dir, "not-a-partition-0")
    os.makedirs(other)
    b.start()

    names = os.listdir(b.data_dir)
    for name, files in strays.items():
        assert name not in names, f"{name} still under its live name: {sorted(names)}"
        aside = [n for n in names if n.startswith(name + ".") and n.endswith("-stray")]
        assert len(aside) == 1, f"{name} not set aside: {sorted(names)}"
        assert sorted(os.listdir(os.path.join(b.data_dir, aside[0]))) == files
    assert os.path.isdir(other) and os.path.isdir(live)
    assert watermarks(b.bootstrap, topic, [0])[0] == (0, 1)
    with open(b.log_path, "rb") as log:
        text = log.read().decode(errors="replace")
    assert text.count("set aside as stray") == 2, b.log_tail()

    # Kept, and named again at the next start.
    b.restart()
    assert len([n for n in os.listdir(b.data_dir) if n.endswith("-stray")]) == 2
    with open(b.log_path, "rb") as log:
        text = log.read().decode(errors="replace")
    assert text.count("stray partition directory; delete it") == 2, b.log_tail()


# -- zero-copy ----------------------------------------------------------------------------

SENDFILE = "sluice_fetch_sendfile_bytes_total"
COPIED = "sluice_fetch_copied_bytes_total"


def test_fetch_uses_sendfile(broker):
    if not broker.metrics_port:
        pytest.skip("broker has no Prometheus metrics endpoint")
    text = broker.metrics_text()
    assert SENDFILE in text and COPIED in text, "zero-copy counters missing from /metrics"
    topic = create_topic(broker.bootstrap, uniq("ctl-zerocopy"), partitions=2)
    value_size = 8192
    count = 1280                     # 10 MiB of values
    payload = count * value_size
    recs = [{"value": os.urandom(value_size), "partition": i % 2} for i in range(count)]
    assert not cf_produce(broker.bootstrap, topic, recs,
                          conf={"compression.type": "none", "linger.ms": 20}).errors
    s0, c0 = broker.metric(SENDFILE), broker.metric(COPIED)
    got = cf_consume_assigned(broker.bootstrap, topic, [0, 1], count, timeout=60,
                              conf={"fetch.max.bytes": 4 * 1024 * 1024})
    assert len(got) == count
    s1, c1 = broker.metric(SENDFILE), broker.metric(COPIED)
    print(f"sendfile bytes +{s1 - s0:.0f}, copied bytes +{c1 - c0:.0f}, values {payload}")
    assert s1 - s0 >= payload, \
        f"{SENDFILE} rose by {s1 - s0:.0f} bytes while consuming {payload} bytes of values " \
        f"({COPIED} rose by {c1 - c0:.0f})"


@pytest.mark.parametrize("hard", [False, True], ids=["sigterm", "kill9"])
def test_a_group_carries_on_through_a_restart(ctl_broker, hard):
    """The coordinator reloads its groups: a librdkafka consumer keeps its assignment
    through a broker restart, without a rebalance (Kafka's coordinator does the same)."""
    b = ctl_broker
    topic = create_topic(b.bootstrap, uniq("ctl-members"), partitions=PARTS)
    events = []
    c = cf_consumer(b.bootstrap, group=uniq("ctl-members"), **{
        "reconnect.backoff.ms": 50, "reconnect.backoff.max.ms": 500})
    try:
        c.subscribe([topic], on_assign=lambda _, ps: events.append(("assign", len(ps))),
                     on_revoke=lambda _, ps: events.append(("revoke", len(ps))),
                     on_lost=lambda _, ps: events.append(("lost", len(ps))))

        def consume(n, prefix):
            assert not cf_produce(b.bootstrap, topic, [
                {"value": f"{prefix}{i}".encode(), "partition": i % PARTS} for i in range(n)]).errors
            got = 0
            deadline = time.monotonic() + T
            while got < n and time.monotonic() < deadline:
                m = c.poll(0.2)
                if m is not None and not m.error() and m.value().startswith(prefix.encode()):
                    got += 1
            assert got == n, f"{got} of {n} {prefix!r} records"

        consume(30, "before-")
        assert events == [("assign", PARTS)], events
        member = c.memberid()
        b.restart(hard=hard)
        wait_topic_ready(b.bootstrap, topic, PARTS)
        consume(30, "after-")
        deadline = time.monotonic() + 4   # a few heartbeats at the old generation
        while time.monotonic() < deadline:
            c.poll(0.2)
        assert events == [("assign", PARTS)], f"rebalanced through the restart: {events}"
        assert c.memberid() == member
    finally:
        c.close()


def test_a_group_over_a_lowered_max_size_shrinks_after_a_restart(ctl_broker):
    """Two consumers in a group; the broker restarts with group.max.size = 1. The loaded
    group rebalances at once, as Kafka's coordinator does: the member past the limit is
    put out (GROUP_MAX_SIZE_REACHED, and again as often as it tries to come back), and
    the other ends up owning every partition."""
    from conftest import write_toml
    b = ctl_broker
    topic = create_topic(b.bootstrap, uniq("ctl-max"), partitions=2)
    group = uniq("ctl-max")
    consumers = [cf_consumer(b.bootstrap, group=group, **{
        "reconnect.backoff.ms": 50, "reconnect.backoff.max.ms": 500}) for _ in range(2)]
    owned = {0: 0, 1: 0}

    def track(i):
        def on_assign(_, ps):
            owned[i] = len(ps)

        def on_revoke(_, ps):
            owned[i] = 0
        return {"on_assign": on_assign, "on_revoke": on_revoke, "on_lost": on_revoke}

    def poll_until(cond):
        deadline = time.monotonic() + T
        while not cond() and time.monotonic() < deadline:
            for c in consumers:
                c.poll(0.1)
        return cond()

    try:
        for i, c in enumerate(consumers):
            c.subscribe([topic], **track(i))
        assert poll_until(lambda: owned == {0: 1, 1: 1}), owned
        b.config["group.max.size"] = 1
        write_toml(b.config_path, b.config)
        b.restart()
        assert poll_until(lambda: sorted(owned.values()) == [0, 2]), \
            f"one member owns both partitions: {owned}"
        for _ in range(20):   # two seconds more: the put-out member keeps trying
            for c in consumers:
                c.poll(0.05)
        assert sorted(owned.values()) == [0, 2], f"and keeps them: {owned}"
    finally:
        for c in consumers:
            c.close()


def index_tail_faults(data_dir, topic, partitions):
    """What is wrong with the end of each partition's active-segment indexes after a
    clean stop: Kafka cuts them to their entries, and its tools read a file's length as
    its entries, so a tail of zeros is a corrupt index to them."""
    faults = []
    for p in partitions:
        d = os.path.join(data_dir, f"{topic}-{p}")
        # (suffix, entry size, offset and length of a field never zero in an entry
        # after the first: the time index's timestamp, the offset index's position)
        for suffix, size, at, n in ((".timeindex", 12, 0, 8), (".index", 8, 4, 4)):
            name = max(f for f in os.listdir(d) if f.endswith(suffix))
            with open(os.path.join(d, name), "rb") as f:
                data = f.read()
            if len(data) % size:
                faults.append(f"{name} of partition {p}: {len(data)} bytes, not whole entries")
            elif len(data) >= 2 * size and data[-size + at:][:n] == bytes(n):
                zeros = len(data) - len(data.rstrip(b"\0"))
                faults.append(f"{name} of partition {p}: {len(data)} bytes ending in {zeros} zeros")
    return faults


def test_a_stop_under_load_leaves_every_index_cut_to_its_entries(ctl_broker):
    """SIGTERM while three producers keep writing. The broker stops taking requests
    before it closes the logs, so no append lands after a log's close: each active
    segment's indexes end at their last entry, as Kafka leaves them (an append after the
    close grows the preallocated zero tail back). Every acknowledged record is kept."""
    b = ctl_broker
    topic = create_topic(b.bootstrap, uniq("ctl-stop"), partitions=PARTS,
                         config={"index.interval.bytes": "1"})
    producers = [BackgroundProducer(b.bootstrap, topic, False, name=f"p{n}-") for n in range(3)]
    for p in producers:
        p.start()
    try:
        wait_until(lambda: sum(p.delivered() for p in producers) >= 20000, 60,
                   what="20000 acked records before the stop")
        code = b.stop()
        faults = index_tail_faults(b.data_dir, topic, range(PARTS))
    finally:
        # Started again whatever happened, so that the producers can deliver the rest.
        if not b.running():
            b.start()
        for p in producers:
            p.finish()
    assert code == 0, f"exit code {code}"
    assert not faults, faults
    delivered = {v for p in producers for _, _, _, v, _, _ in p.log.ok}
    wm = watermarks(b.bootstrap, topic, range(PARTS))
    got = cf_consume_assigned(b.bootstrap, topic, range(PARTS), sum(hi - lo for lo, hi in wm.values()),
                              timeout=90)
    missing = delivered - {m[3] for m in got}
    assert not missing, f"{len(missing)} acknowledged records lost, e.g. {sorted(missing)[:5]}"


def test_a_stop_answers_a_join_waiting_for_its_rebalance(ctl_broker):
    """A JoinGroup waits for a rebalance that cannot end (the first member never rejoins)
    when the broker is stopped. It is answered COORDINATOR_NOT_AVAILABLE at once, as
    Kafka's coordinator answers once it is no longer active, instead of holding the
    shutdown until the broker cuts its connection off."""
    from rawkafka import Conn, Reader, i32, string
    b = ctl_broker
    group = uniq("ctl-join")

    def join(conn, member_id):
        # JoinGroup v0: group, session timeout (also the rebalance timeout), member id,
        # protocol type, one protocol with empty metadata.
        body = (string(group) + i32(30000) + string(member_id) + string("consumer")
                + i32(1) + string("range") + i32(0))
        conn.send_request(11, 0, body)

    def answer(conn, timeout):
        r = Reader(conn.recv_frame(timeout))
        r.i32()                     # correlation id
        error = r.i16()
        r.i32()                     # generation
        r.string()                  # protocol
        r.string()                  # leader
        return error, r.string()    # member id

    with Conn(b.host, b.port) as first, Conn(b.host, b.port) as second:
        join(first, "")
        error, member = answer(first, 30)
        assert error == 0 and member, (error, member)
        join(second, "")
        time.sleep(1)               # the second join is waiting for the first member
        began = time.monotonic()
        stopping = threading.Thread(target=b.stop)
        stopping.start()
        error, _ = answer(second, 10)
        stopping.join(30)
        took = time.monotonic() - began
    assert error == 15, f"error {error}, not COORDINATOR_NOT_AVAILABLE"
    with open(b.log_path, errors="replace") as f:
        cut_off = [line for line in f if "cut off" in line]
    assert not cut_off, cut_off
    print(f"stopped in {took:.2f} s")
