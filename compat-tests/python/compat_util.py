"""Client helpers shared by the tests (confluent-kafka, kafka-python, kcat)."""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import time
import uuid

from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient, NewTopic

CODECS = ["none", "gzip", "snappy", "lz4", "zstd"]

# librdkafka logs go through Python logging (pytest shows them for failing
# tests) instead of being written straight to fd 2 from its threads.
RDKAFKA_LOGGER = logging.getLogger("librdkafka")


def uniq(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def wait_until(pred, timeout, interval=0.1, what="condition"):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = pred()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last={last!r})")


# --------------------------------------------------------------------------
# confluent-kafka (librdkafka)
# --------------------------------------------------------------------------

def admin(bootstrap, **conf):
    return AdminClient({"bootstrap.servers": bootstrap, "logger": RDKAFKA_LOGGER, **conf})


def topic_names(bootstrap, timeout=10):
    """All topic names, via an all-topics Metadata request (never auto-creates)."""
    md = admin(bootstrap).list_topics(timeout=timeout)
    return set(md.topics)


def topic_partition_count(bootstrap, topic, timeout=10):
    md = admin(bootstrap).list_topics(timeout=timeout)
    t = md.topics.get(topic)
    if t is None or t.error is not None:
        return None
    return len(t.partitions)


def wait_topic_ready(bootstrap, topic, partitions=None, timeout=30):
    a = admin(bootstrap)

    def ready():
        md = a.list_topics(timeout=5)
        t = md.topics.get(topic)
        if t is None or t.error is not None or not t.partitions:
            return False
        if partitions is not None and len(t.partitions) != partitions:
            return False
        return all(p.leader >= 0 and p.error is None for p in t.partitions.values())

    wait_until(ready, timeout, 0.1, f"topic {topic} to be ready")
    # Metadata can name a leader before that leader serves the partition
    # (Kafka answers NOT_LEADER_OR_FOLLOWER for a moment, and with acks=0
    # it drops the data). Wait until every partition answers ListOffsets.
    c = cf_consumer(bootstrap)
    try:
        def leaders_serve():
            md = a.list_topics(timeout=5).topics[topic]
            for p in md.partitions:
                try:
                    c.get_watermark_offsets(TopicPartition(topic, p), timeout=2, cached=False)
                except KafkaException:
                    return False
            return True
        wait_until(leaders_serve, timeout, 0.1, f"leaders of {topic} to serve")
    finally:
        c.close()


def create_topic(bootstrap, name, partitions=6, config=None, timeout=30):
    a = admin(bootstrap)
    fs = a.create_topics(
        [NewTopic(name, num_partitions=partitions, replication_factor=1, config=config or {})],
        operation_timeout=timeout, request_timeout=timeout)
    fs[name].result(timeout + 30)
    wait_topic_ready(bootstrap, name, partitions, timeout)
    return name


def new_topic(bootstrap, prefix, partitions=6, config=None):
    return create_topic(bootstrap, uniq(prefix), partitions, config)


class DeliveryLog:
    """Collects confluent-kafka delivery reports."""

    def __init__(self):
        self.ok = []        # (partition, offset, key, value, headers, timestamp)
        self.errors = []    # (KafkaError, key)

    def __call__(self, err, msg):
        if err is not None:
            self.errors.append((err, msg.key()))
        else:
            ts_type, ts = msg.timestamp()
            self.ok.append((msg.partition(), msg.offset(), msg.key(), msg.value(),
                            msg.headers(), ts))


def cf_producer(bootstrap, **conf):
    base = {"bootstrap.servers": bootstrap, "linger.ms": 5, "logger": RDKAFKA_LOGGER}
    base.update(conf)
    return Producer(base)


def cf_produce(bootstrap, topic, records, conf=None, flush_timeout=60):
    """Produce records (dicts with value/key/headers/timestamp/partition) and
    return the DeliveryLog once all are delivered or failed."""
    p = cf_producer(bootstrap, **(conf or {}))
    log = DeliveryLog()
    for r in records:
        kwargs = {"value": r.get("value"), "on_delivery": log}
        for field in ("key", "headers", "timestamp", "partition"):
            if r.get(field) is not None:
                kwargs[field] = r[field]
        while True:
            try:
                p.produce(topic, **kwargs)
                break
            except BufferError:
                p.poll(0.05)
        p.poll(0)
    remaining = p.flush(flush_timeout)
    assert remaining == 0, f"{remaining} messages still undelivered after {flush_timeout}s"
    return log


def cf_consumer(bootstrap, group=None, **conf):
    base = {
        "bootstrap.servers": bootstrap,
        "group.id": group or uniq("g"),
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "enable.partition.eof": False,
        "logger": RDKAFKA_LOGGER,
    }
    base.update(conf)
    return Consumer(base)


def msg_tuple(m):
    ts_type, ts = m.timestamp()
    return (m.partition(), m.offset(), m.key(), m.value(), m.headers(), ts_type, ts)


def cf_consume_assigned(bootstrap, topic, partitions, expected, timeout=60, conf=None,
                        start=OFFSET_BEGINNING, settle=0.3):
    """Assign the given partitions from ``start`` and read until ``expected``
    messages arrived (then ``settle`` more seconds to catch extras)."""
    c = cf_consumer(bootstrap, **(conf or {}))
    try:
        c.assign([TopicPartition(topic, p, start) for p in partitions])
        out = []
        deadline = time.monotonic() + timeout
        while len(out) < expected and time.monotonic() < deadline:
            for m in c.consume(num_messages=5000, timeout=0.1):
                if m.error():
                    if m.error().code() == KafkaError._PARTITION_EOF:
                        continue
                    raise KafkaException(m.error())
                out.append(msg_tuple(m))
        if settle and len(out) >= expected:
            end = time.monotonic() + settle
            while time.monotonic() < end:
                for m in c.consume(num_messages=5000, timeout=0.1):
                    if not m.error():
                        out.append(msg_tuple(m))
        return out
    finally:
        c.close()


def watermarks(bootstrap, topic, partitions):
    c = cf_consumer(bootstrap)
    try:
        return {p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=10, cached=False)
                for p in partitions}
    finally:
        c.close()


# --------------------------------------------------------------------------
# kafka-python
# --------------------------------------------------------------------------

def kp_producer(bootstrap, **conf):
    from kafka import KafkaProducer
    base = {"bootstrap_servers": bootstrap, "linger_ms": 5, "max_block_ms": 30000}
    base.update(conf)
    return KafkaProducer(**base)


def kp_consumer(bootstrap, *topics, **conf):
    from kafka import KafkaConsumer
    base = {"bootstrap_servers": bootstrap, "auto_offset_reset": "earliest",
            "enable_auto_commit": False, "consumer_timeout_ms": 1000}
    base.update(conf)
    return KafkaConsumer(*topics, **base)


def kp_group_consumer(bootstrap, topic, **conf):
    """A subscribed kafka-python group consumer. The topic's metadata is
    loaded before subscribing: kafka-python 3.0.12 otherwise joins with no
    partition metadata, gets an empty assignment, rejoins at once, and can
    lose that second assignment when the rejoin finishes after poll()
    returned (a client bug, not a broker one)."""
    c = kp_consumer(bootstrap, **conf)
    deadline = time.monotonic() + 30
    while not c.partitions_for_topic(topic):
        assert time.monotonic() < deadline, f"kafka-python sees no partitions of {topic}"
        time.sleep(0.1)
    c.subscribe([topic])
    return c


def kp_consume_assigned(bootstrap, topic, partitions, expected, timeout=90, **conf):
    from kafka import TopicPartition as KTP
    c = kp_consumer(bootstrap, **conf)
    try:
        tps = [KTP(topic, p) for p in partitions]
        c.assign(tps)
        c.seek_to_beginning(*tps)
        out = []
        deadline = time.monotonic() + timeout
        while len(out) < expected and time.monotonic() < deadline:
            batch = c.poll(timeout_ms=500, max_records=5000)
            for tp, recs in batch.items():
                for r in recs:
                    out.append((r.partition, r.offset, r.key, r.value,
                                list(r.headers) if r.headers else [], r.timestamp_type,
                                r.timestamp))
        return out
    finally:
        c.close(autocommit=False)


# --------------------------------------------------------------------------
# kcat
# --------------------------------------------------------------------------

def kcat_path():
    return shutil.which("kcat") or shutil.which("kafkacat")


def kcat(bootstrap, *args, input=None, timeout=60, check=True):
    exe = kcat_path()
    assert exe, "kcat is not installed (compat-tests/python/run installs it)"
    cmd = [exe, "-b", bootstrap, *args]
    res = subprocess.run(cmd, input=input, capture_output=True, timeout=timeout)
    if check and res.returncode != 0:
        raise AssertionError(
            f"{' '.join(cmd)} exited {res.returncode}\nstderr:\n"
            f"{res.stderr.decode('utf-8', 'replace')[-4000:]}")
    return res


def kcat_consume_json(bootstrap, topic, count, timeout=60, extra=()):
    """Consume ``count`` messages with kcat -J from the beginning."""
    res = kcat(bootstrap, "-C", "-t", topic, "-o", "beginning", "-c", str(count), "-e",
               "-J", "-q", *extra, timeout=timeout)
    out = []
    for line in res.stdout.decode("utf-8", "replace").splitlines():
        line = line.strip()
        if line.startswith("{"):
            out.append(json.loads(line))
    return out
