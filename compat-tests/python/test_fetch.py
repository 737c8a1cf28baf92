"""4. Fetch: small fetch size limits, oversized batches, long polling."""

import json
import os
import threading
import time

import pytest
from confluent_kafka import OFFSET_END, TopicPartition

from compat_util import (
    cf_consume_assigned, cf_consumer, cf_produce, create_topic, kcat, kp_consume_assigned,
    kp_consumer, kp_producer, uniq,
)

PARTS = 3


def fill(bootstrap, topic, n, size, codec="none", batch_size=1_000_000):
    recs = [{"key": f"k{i}".encode(), "value": f"{i:08d}".encode() + os.urandom(size - 8),
             "partition": i % PARTS} for i in range(n)]
    log = cf_produce(bootstrap, topic, recs, conf={"compression.type": codec, "linger.ms": 50,
                                                   "batch.size": batch_size})
    assert not log.errors
    return recs


def check_all(recs, got):
    assert len(got) == len(recs), f"got {len(got)} of {len(recs)} records"
    assert sorted(m[3] for m in got) == sorted(r["value"] for r in recs)
    for p in range(PARTS):
        offs = [m[1] for m in got if m[0] == p]
        assert offs == list(range(len(offs)))


def test_confluent_small_fetch_limits(bootstrap):
    topic = create_topic(bootstrap, uniq("f-small-cf"), partitions=PARTS)
    recs = fill(bootstrap, topic, 3000, 1000, batch_size=4096)
    got = cf_consume_assigned(bootstrap, topic, range(PARTS), len(recs), timeout=90, conf={
        "max.partition.fetch.bytes": 2048, "fetch.max.bytes": 4096,
        "message.max.bytes": 4096, "receive.message.max.bytes": 100_000,
        "queued.max.messages.kbytes": 1024})
    check_all(recs, got)


def test_confluent_batches_larger_than_fetch_limits(bootstrap):
    """KIP-74: the first record batch is returned even when it exceeds
    max.partition.fetch.bytes / fetch.max.bytes, so consumers make progress."""
    topic = create_topic(bootstrap, uniq("f-big-cf"), partitions=PARTS)
    recs = fill(bootstrap, topic, 60, 60_000)
    got = cf_consume_assigned(bootstrap, topic, range(PARTS), len(recs), timeout=90, conf={
        "max.partition.fetch.bytes": 1024, "fetch.max.bytes": 10_000,
        "message.max.bytes": 10_000, "receive.message.max.bytes": 2_000_000})
    check_all(recs, got)


def test_kafka_python_small_fetch_limits(bootstrap):
    topic = create_topic(bootstrap, uniq("f-small-kp"), partitions=PARTS)
    recs = fill(bootstrap, topic, 1500, 1000, batch_size=4096)
    got = kp_consume_assigned(bootstrap, topic, range(PARTS), len(recs), timeout=90,
                              max_partition_fetch_bytes=2048, fetch_max_bytes=4096)
    check_all(recs, got)


def test_kafka_python_batches_larger_than_fetch_limits(bootstrap):
    topic = create_topic(bootstrap, uniq("f-big-kp"), partitions=PARTS)
    recs = fill(bootstrap, topic, 60, 60_000, codec="gzip")
    got = kp_consume_assigned(bootstrap, topic, range(PARTS), len(recs), timeout=90,
                              max_partition_fetch_bytes=1024, fetch_max_bytes=4096)
    check_all(recs, got)


@pytest.mark.kcat
def test_kcat_small_fetch_limits(bootstrap):
    topic = create_topic(bootstrap, uniq("f-small-kcat"), partitions=PARTS)
    recs = fill(bootstrap, topic, 600, 1000, batch_size=4096)
    res = kcat(bootstrap, "-C", "-t", topic, "-o", "beginning", "-e", "-q", "-c", str(len(recs)),
               "-X", "fetch.max.bytes=4096", "-X", "message.max.bytes=4096",
               "-X", "max.partition.fetch.bytes=2048", "-f", "%p %o %S\n")
    lines = res.stdout.decode().split("\n")
    rows = [tuple(map(int, l.split())) for l in lines if l.strip()]
    assert len(rows) == len(recs)
    assert all(size == 1000 for _, _, size in rows)
    for p in range(PARTS):
        offs = [o for part, o, _ in rows if part == p]
        assert offs == list(range(len(offs)))


# -- long polling ---------------------------------------------------------------------

def test_confluent_long_poll_wakes_on_produce(bootstrap):
    """With fetch.wait.max.ms=5000 the broker parks the Fetch; a record
    produced 1 s later must complete it promptly. Also checks (via librdkafka
    statistics) that the broker really parks fetches instead of answering
    empty ones at once."""
    topic = create_topic(bootstrap, uniq("f-longpoll-cf"), partitions=1)
    stats = []
    c = cf_consumer(bootstrap, **{"fetch.wait.max.ms": 5000, "fetch.min.bytes": 1,
                                  "statistics.interval.ms": 200,
                                  "stats_cb": lambda s: stats.append(json.loads(s))})
    try:
        c.assign([TopicPartition(topic, 0, OFFSET_END)])

        def fetch_requests():
            for _ in range(5):
                c.poll(0.05)
            if not stats:
                return None
            return sum(b.get("req", {}).get("Fetch", 0) for b in stats[-1]["brokers"].values()
                       if b.get("nodeid", -1) >= 0)

        # get the fetcher going against the empty partition
        deadline = time.monotonic() + 15
        while (fetch_requests() or 0) < 1:
            assert time.monotonic() < deadline, "consumer never sent a Fetch"
        time.sleep(0.3)
        before = fetch_requests()
        idle_start = time.monotonic()
        while time.monotonic() - idle_start < 2.0:
            c.poll(0.1)
        after = fetch_requests()
        assert after - before <= 4, \
            f"{after - before} Fetch requests in 2 s idle with fetch.wait.max.ms=5000: " \
            "the broker does not hold fetches for new data"

        received = []

        def produce_later():
            time.sleep(1.0)
            received.append(("sent", time.monotonic()))
            cf_produce(bootstrap, topic, [{"value": b"wake up", "partition": 0}],
                       conf={"linger.ms": 0})

        t = threading.Thread(target=produce_later)
        t.start()
        got_at = None
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            m = c.poll(0.05)
            if m is not None and not m.error():
                assert m.value() == b"wake up"
                got_at = time.monotonic()
                break
        t.join()
        assert got_at is not None, "record produced during long poll never arrived"
        latency = got_at - received[0][1]
        print(f"long-poll latency (produce start -> receipt): {latency * 1000:.0f} ms")
        assert latency < 4.0, f"record arrived {latency:.2f}s after produce (fetch.wait.max.ms=5000)"
    finally:
        c.close()


def test_kafka_python_long_poll_wakes_on_produce(bootstrap):
    from kafka import TopicPartition as KTP
    topic = create_topic(bootstrap, uniq("f-longpoll-kp"), partitions=1)
    c = kp_consumer(bootstrap, fetch_max_wait_ms=5000, fetch_min_bytes=1,
                    request_timeout_ms=30000)
    try:
        tp = KTP(topic, 0)
        c.assign([tp])
        c.seek_to_end(tp)
        c.position(tp)
        # a few idle polls so a Fetch is in flight
        for _ in range(5):
            assert not c.poll(timeout_ms=200)
        sent = []

        def produce_later():
            time.sleep(1.0)
            p = kp_producer(bootstrap, linger_ms=0)
            try:
                sent.append(time.monotonic())
                p.send(topic, value=b"wake up", partition=0).get(timeout=10)
            finally:
                p.close()

        t = threading.Thread(target=produce_later)
        t.start()
        got_at = None
        deadline = time.monotonic() + 12
        while time.monotonic() < deadline and got_at is None:
            for recs in c.poll(timeout_ms=100).values():
                assert recs[0].value == b"wake up"
                got_at = time.monotonic()
        t.join()
        assert got_at is not None, "record produced during long poll never arrived"
        latency = got_at - sent[0]
        print(f"kafka-python long-poll latency: {latency * 1000:.0f} ms")
        assert latency < 4.0, f"record arrived {latency:.2f}s after produce (fetch_max_wait_ms=5000)"
    finally:
        c.close(autocommit=False)


def test_confluent_min_bytes_counts_what_is_readable(bootstrap):
    """fetch.min.bytes at the partition limit: Kafka counts the bytes readable up to that
    limit (DelayedFetch), not the whole batches a response holds, so a backlog is read
    without waiting fetch.wait.max.ms on every fetch."""
    topic = create_topic(bootstrap, uniq("f-minbytes"), partitions=1)
    recs = [{"value": f"{i:08d}".encode() + os.urandom(992), "partition": 0}
            for i in range(4000)]
    log = cf_produce(bootstrap, topic, recs, conf={"linger.ms": 50, "batch.size": 20_000})
    assert not log.errors
    start = time.monotonic()
    got = cf_consume_assigned(bootstrap, topic, [0], 3000, timeout=120, settle=0, conf={
        "fetch.min.bytes": 1_048_576, "max.partition.fetch.bytes": 1_048_576,
        "fetch.wait.max.ms": 20_000})
    elapsed = time.monotonic() - start
    assert [m[1] for m in got][:3000] == list(range(3000))
    # The first 3 MB take three fetches of about 1 MiB, each of which would wait 20 s if
    # the broker counted only the whole batches it returned (just under 1 MiB). (The
    # last 1 MB is less than fetch.min.bytes: that fetch waits, on Kafka too.)
    assert elapsed < 15, f"{elapsed:.1f} s: fetches waited for fetch.wait.max.ms"


# -- deleted topics --------------------------------------------------------------------

UNKNOWN_TOPIC_OR_PARTITION = 3


def test_a_long_poll_ends_when_its_topic_is_deleted(bootstrap):
    """A Fetch waiting for records of a topic that is then deleted is answered at once,
    UNKNOWN_TOPIC_OR_PARTITION, as Kafka completes a delayed fetch whose partition went
    away, not at the end of its max_wait_ms with the deleted log's offsets."""
    from rawkafka import Conn, fetch_one
    topic = create_topic(bootstrap, uniq("f-deleted"), partitions=1)
    host, port = bootstrap.rsplit(":", 1)
    answer = {}

    def poll():
        with Conn(host, int(port)) as conn:
            started = time.monotonic()
            answer["fetch"] = fetch_one(conn, 11, topic, 0, 0, max_wait_ms=30_000)
            answer["seconds"] = time.monotonic() - started

    t = threading.Thread(target=poll)
    t.start()
    time.sleep(1.0)
    from compat_util import admin
    a = admin(bootstrap)
    a.delete_topics([topic], operation_timeout=30)[topic].result(30)
    t.join(40)
    assert answer["fetch"][0] == UNKNOWN_TOPIC_OR_PARTITION, answer
    assert answer["seconds"] < 10, answer
