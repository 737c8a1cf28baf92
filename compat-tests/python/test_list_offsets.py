"""5. ListOffsets: watermarks, timestamps, earliest/latest/max-timestamp."""

import re
import time

import pytest
from confluent_kafka import IsolationLevel, TopicPartition
from confluent_kafka.admin import OffsetSpec

from compat_util import admin, cf_consumer, cf_produce, create_topic, kcat, kp_consumer, uniq

N = 100
MAX_IDX = 70
STEP = 1000


@pytest.fixture(scope="module")
def ts_topic(bootstrap):
    """Partition 0: 100 records with timestamps base + i*1000, except record
    70 which carries the largest timestamp; partition 1 stays empty."""
    topic = create_topic(bootstrap, uniq("lo"), partitions=2)
    base = (int(time.time() * 1000) - 600_000) // 1000 * 1000
    ts = [base + i * STEP for i in range(N)]
    ts[MAX_IDX] = base + 500 * STEP
    log = cf_produce(bootstrap, topic, [{"value": f"v{i}".encode(), "partition": 0,
                                         "timestamp": ts[i]} for i in range(N)])
    assert not log.errors
    return topic, base, ts


def test_confluent_watermarks(bootstrap, ts_topic):
    topic, _, _ = ts_topic
    c = cf_consumer(bootstrap)
    try:
        assert c.get_watermark_offsets(TopicPartition(topic, 0), timeout=10, cached=False) == (0, N)
        assert c.get_watermark_offsets(TopicPartition(topic, 1), timeout=10, cached=False) == (0, 0)
    finally:
        c.close()


def test_confluent_offsets_for_times(bootstrap, ts_topic):
    topic, base, ts = ts_topic
    c = cf_consumer(bootstrap)
    try:
        def lookup(t, partition=0):
            res = c.offsets_for_times([TopicPartition(topic, partition, t)], timeout=10)
            assert res[0].error is None, res[0].error
            return res[0].offset
        assert lookup(base - 5000) == 0
        assert lookup(base) == 0
        assert lookup(base + 50 * STEP) == 50
        assert lookup(base + 50 * STEP + 1) == 51
        # record 70 has the largest timestamp; everything after 99's is only 70
        assert lookup(base + 200 * STEP) == MAX_IDX
        assert lookup(base + 501 * STEP) == -1   # no such record: offset -1 (OFFSET_END)
        assert lookup(base, partition=1) == -1
    finally:
        c.close()


def test_confluent_admin_list_offsets(bootstrap, ts_topic):
    topic, base, ts = ts_topic
    a = admin(bootstrap)
    tp = TopicPartition(topic, 0)

    def one(spec, **kw):
        fut = a.list_offsets({tp: spec}, request_timeout=10, **kw)[tp]
        return fut.result(40)

    assert one(OffsetSpec.earliest()).offset == 0
    assert one(OffsetSpec.latest()).offset == N
    assert one(OffsetSpec.latest(), isolation_level=IsolationLevel.READ_COMMITTED).offset == N
    r = one(OffsetSpec.for_timestamp(base + 50 * STEP))
    assert (r.offset, r.timestamp) == (50, base + 50 * STEP)
    r = one(OffsetSpec.max_timestamp())
    assert (r.offset, r.timestamp) == (MAX_IDX, ts[MAX_IDX])
    empty = TopicPartition(topic, 1)
    res = a.list_offsets({empty: OffsetSpec.latest()}, request_timeout=10)[empty].result(40)
    assert res.offset == 0


def test_kafka_python_offsets(bootstrap, ts_topic):
    from kafka import TopicPartition as KTP
    topic, base, ts = ts_topic
    c = kp_consumer(bootstrap)
    try:
        p0, p1 = KTP(topic, 0), KTP(topic, 1)
        assert c.beginning_offsets([p0, p1]) == {p0: 0, p1: 0}
        assert c.end_offsets([p0, p1]) == {p0: N, p1: 0}
        res = c.offsets_for_times({p0: base + 50 * STEP, p1: base})
        assert (res[p0].offset, res[p0].timestamp) == (50, base + 50 * STEP)
        assert res[p1] is None
        res = c.offsets_for_times({p0: base + 501 * STEP})
        assert res[p0] is None
        res = c.offsets_for_times({p0: base + 200 * STEP})
        assert (res[p0].offset, res[p0].timestamp) == (MAX_IDX, ts[MAX_IDX])
    finally:
        c.close()


def test_kafka_python_admin_list_partition_offsets(bootstrap, ts_topic):
    from kafka import KafkaAdminClient, TopicPartition as KTP
    from kafka.admin import OffsetSpec as KSpec
    topic, base, ts = ts_topic
    a = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        p0 = KTP(topic, 0)
        assert a.list_partition_offsets({p0: KSpec.EARLIEST})[p0].offset == 0
        assert a.list_partition_offsets({p0: KSpec.LATEST})[p0].offset == N
        r = a.list_partition_offsets({p0: KSpec.MAX_TIMESTAMP})[p0]
        assert (r.offset, r.timestamp) == (MAX_IDX, ts[MAX_IDX])
    finally:
        a.close()


@pytest.mark.kcat
def test_kcat_query_offset_for_time(bootstrap, ts_topic):
    topic, base, ts = ts_topic
    out = kcat(bootstrap, "-Q", "-t", f"{topic}:0:{base + 50 * STEP}").stdout.decode()
    m = re.search(r"\[0\]\s+offset\s+(-?\d+)", out)
    assert m, out
    assert int(m.group(1)) == 50
    # consume starting from a timestamp (kcat -o s@ts)
    res = kcat(bootstrap, "-C", "-t", topic, "-p", "0", "-o", f"s@{base + 95 * STEP}", "-e", "-q",
               "-f", "%o\n")
    # record 70 carries the largest timestamp, so it is the first one >= the target
    assert [int(x) for x in res.stdout.decode().split()] == list(range(MAX_IDX, N))


def test_a_batch_claiming_a_later_max_timestamp_is_stored_with_its_records(bootstrap, broker):
    """Kafka stores a CreateTime batch's max timestamp as its records' largest, whatever
    the producer wrote there; timestamp lookups then go by the records."""
    import struct

    import rawkafka as rk
    topic = create_topic(bootstrap, uniq("lo-claim"), partitions=1)
    now = int(time.time() * 1000)
    batch = bytearray(rk.record_batch([b"a", b"b"], now))
    batch[35:43] = struct.pack(">q", now + 3_600_000)   # max timestamp, an hour ahead
    batch[17:21] = struct.pack(">I", rk.crc32c(bytes(batch[21:])))
    versions = rk.api_versions(broker.host, broker.port)
    pv = rk.pick_version(versions, rk.API_PRODUCE, rk.PRODUCE_VERSIONS)
    with rk.Conn(broker.host, broker.port) as conn:
        conn.send_request(rk.API_PRODUCE, pv, rk.produce_request_body(pv, topic, 0, bytes(batch)),
                          flexible=pv >= 9)
        _, err, base_offset = rk.parse_produce_response(conn.recv_frame(), pv)
        assert (err, base_offset) == (0, 0)
    c = cf_consumer(bootstrap)
    try:
        res = c.offsets_for_times([TopicPartition(topic, 0, now + 60_000)], timeout=10)
        assert res[0].error is None and res[0].offset == -1, res[0]
        res = c.offsets_for_times([TopicPartition(topic, 0, now)], timeout=10)
        assert res[0].offset == 0
    finally:
        c.close()
    tp = TopicPartition(topic, 0)
    a = admin(bootstrap)
    r = a.list_offsets({tp: OffsetSpec.max_timestamp()}, request_timeout=10)[tp].result(40)
    assert (r.offset, r.timestamp) == (0, now)
