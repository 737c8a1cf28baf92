"""10. Writes the filesystem refuses.

The broker runs under a file-size limit (RLIMIT_FSIZE): a file written past it
fails with EFBIG, partway through the write, as a write fails when the disk is
full. What a producer was told was stored must all be there after a restart, in
order and once; what it was refused must never appear.

Sluice only: Kafka takes its only log directory offline and stops the broker.
"""

import os
import re

import pytest
from confluent_kafka import KafkaError, TopicPartition
from kafka.errors import KafkaStorageError

from compat_util import (
    cf_consume_assigned, cf_consumer, cf_produce, create_topic, kp_producer, uniq,
)
from rawkafka import Conn, Reader, i32, i64, string

pytestmark = pytest.mark.needs_broker_control

LIMIT = 4 << 20
VALUE_PAD = b"x" * 1000
RECORDS = 6000  # 6 MB: past the limit, whichever file takes them
# The delay wheel holds a slot per second of the longest delay; an hour's is 29 KB,
# where the default (40 days) would not fit under the limit.
CONFIG = {"mq.delay.max.ms": 3_600_000}
# Long enough for the broker to take 4 MiB on a loaded machine; the records it
# refuses after that wait it out once.
PRODUCER = {"enable.idempotence": True, "message.timeout.ms": 15000}
NO_RETRIES = {"enable.idempotence": False, "message.send.max.retries": 0}


@pytest.fixture
def limited_broker(broker_factory):
    if os.environ.get("COMPAT_REAL_KAFKA"):
        pytest.skip("Kafka stops when its only log directory fails")
    b = broker_factory(config=CONFIG, start=False, name="fsize")
    b.file_size_limit = LIMIT
    b.start()
    return b


def numbered(n, headers=None):
    return [{"value": b"%08d" % i + VALUE_PAD, "headers": headers} for i in range(n)]


def number(value):
    return int(value[:8])


def log_lines(broker, pattern):
    with open(broker.log_path, encoding="utf-8", errors="replace") as f:
        return [line for line in f if re.search(pattern, line)]


def restart_without_limit(broker):
    broker.file_size_limit = None
    broker.restart()


def assert_refused_with_storage_error(bootstrap, topic):
    """kafka-python, without retries, reports the error code the broker sent."""
    p = kp_producer(bootstrap, retries=0)
    try:
        future = p.send(topic, value=b"refused" + VALUE_PAD)
        with pytest.raises(KafkaStorageError):
            future.get(timeout=30)
    finally:
        p.close(10)


def test_a_log_write_past_the_limit_loses_nothing_acknowledged(limited_broker):
    b = limited_broker.bootstrap
    full = create_topic(b, uniq("full"), partitions=1)
    # 1 MiB segments roll before any file reaches the limit.
    other = create_topic(b, uniq("other"), partitions=1, config={"segment.bytes": "1048576"})

    log = cf_produce(b, full, numbered(RECORDS), conf=PRODUCER)
    acked = sorted((offset, number(value)) for _, offset, _, value, _, _ in log.ok)
    assert 0 < len(acked) < RECORDS, f"{len(acked)} of {RECORDS} acknowledged"
    # Acknowledged in order, from the start: offset i holds record i.
    assert acked == [(i, i) for i in range(len(acked))]
    # librdkafka retries a storage error until the records time out, so the code the
    # broker answers is read with a client that does not retry.
    assert_refused_with_storage_error(b, full)
    assert len(log_lines(limited_broker, r"append failed.*File too large")) == 1

    # The failure is that partition's: the other still takes records.
    assert len(cf_produce(b, other, numbered(100)).ok) == 100

    restart_without_limit(limited_broker)
    assert log_lines(limited_broker, r"cut an invalid tail"), "the torn write was not cut"
    more = cf_produce(b, full, [{"value": b"%08d" % (RECORDS + i)} for i in range(10)],
                      conf=PRODUCER)
    assert sorted(offset for _, offset, _, _, _, _ in more.ok) == \
        list(range(len(acked), len(acked) + 10))
    read = cf_consume_assigned(b, full, [0], len(acked) + 10)
    assert [(offset, number(value)) for _, offset, _, value, _, _, _ in read] == \
        acked + [(len(acked) + i, RECORDS + i) for i in range(10)]


def test_a_delay_store_write_past_the_limit_refuses_the_produce(limited_broker):
    b = limited_broker.bootstrap
    topic = create_topic(b, uniq("delayed"), partitions=1, config={"segment.bytes": "1048576"})
    delay = [("mq.delay.ms", b"2000")]

    # Without retries each refusal reaches the delivery report with its code.
    log = cf_produce(b, topic, numbered(RECORDS, headers=delay), conf=NO_RETRIES)
    acked = sorted(number(value) for _, _, _, value, _, _ in log.ok)
    assert 0 < len(acked) < RECORDS, f"{len(acked)} of {RECORDS} acknowledged"
    assert {e.code() for e, _ in log.errors} == {KafkaError.KAFKA_STORAGE_ERROR}
    # One line per run of failures, however many produces met it. (A batch small
    # enough for the space left may succeed in between.)
    failed = len(log_lines(limited_broker, r"ERROR.*delay store: a write failed"))
    recovered = len(log_lines(limited_broker, r"delay store: writes succeed again"))
    assert 1 <= failed <= recovered + 1
    # Records without a delay do not touch the store.
    plain = cf_produce(b, topic, [{"value": b"%08d" % (RECORDS + i)} for i in range(10)])
    assert len(plain.ok) == 10

    restart_without_limit(limited_broker)
    expected = acked + list(range(RECORDS, RECORDS + 10))
    # Released within their 2 s, then 3 s more for anything that should not be.
    read = cf_consume_assigned(b, topic, [0], len(expected), timeout=60, settle=3)
    assert sorted(number(value) for _, _, _, value, _, _, _ in read) == expected


NOT_COORDINATOR = 16


def offset_commit(conn, group, topic, partitions, offset, metadata):
    """OffsetCommit v2, standalone (generation -1); each partition's error code."""
    body = string(group) + i32(-1) + string("") + i64(-1) + i32(1) + string(topic)
    body += i32(len(partitions))
    for p in partitions:
        body += i32(p) + i64(offset) + string(metadata)
    conn.send_request(8, 2, body)
    r = Reader(conn.recv_frame())
    r.i32()  # correlation id
    codes = []
    for _ in range(r.i32()):
        r.string()
        for _ in range(r.i32()):
            r.i32()
            codes.append(r.i16())
    return codes


def test_an_offset_commit_the_disk_refuses_sends_the_consumer_to_its_coordinator(
        limited_broker):
    b = limited_broker
    topic = create_topic(b.bootstrap, uniq("committed"), partitions=50)
    group = uniq("g")
    partitions = list(range(50))
    stored = 0
    with Conn(b.host, b.port) as conn:
        # 200 KB a commit: past the limit within about twenty.
        for offset in range(1, 100):
            codes = offset_commit(conn, group, topic, partitions, offset, "m" * 4000)
            if codes != [0] * 50:
                break
            stored = offset
    assert stored > 0
    # Kafka's coordinator answers a failed write of its log so (not
    # KAFKA_STORAGE_ERROR, which a Java consumer's commit takes as fatal): the
    # consumer looks its coordinator up again and retries.
    assert set(codes) == {NOT_COORDINATOR}

    restart_without_limit(b)
    c = cf_consumer(b.bootstrap, group=group)
    try:
        committed = c.committed([TopicPartition(topic, p) for p in partitions], timeout=30)
    finally:
        c.close()
    assert [tp.offset for tp in committed] == [stored] * 50
