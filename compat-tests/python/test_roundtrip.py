"""3. 20,000 keyed records with headers over 6 partitions round-trip exactly
once, in per-partition order, with keys, values, headers and timestamps."""

import time

import pytest

from compat_util import (
    CODECS, cf_consume_assigned, cf_produce, create_topic, kcat, kcat_consume_json,
    kp_consume_assigned, kp_producer, uniq, watermarks,
)

N = 20_000
PARTS = 6


def make_records(n=N, binary=True):
    base_ts = int(time.time() * 1000) - 3_600_000
    recs = []
    for i in range(n):
        if i % 997 == 0:
            value = None              # null value (tombstone)
        elif i % 991 == 0:
            value = b""               # empty value
        else:
            value = (f"value-{i}-" + "x" * (i % 200)).encode()
        headers = [("idx", str(i).encode()), ("src", b"compat"), ("empty", b"")]
        if binary:
            headers.append(("bin", bytes([i % 256, 0, 255])))
        if i % 5 == 0:
            headers.append(("idx", b"dup-key"))  # repeated header keys keep their order
        recs.append({"key": f"key-{i:05d}".encode(), "value": value,
                     "headers": headers, "timestamp": base_ts + i})
    return recs


def norm_headers(h):
    return [(k, bytes(v) if v is not None else None) for k, v in (h or [])]


def verify(bootstrap, topic, recs, delivered, consumed):
    """delivered: {idx: (partition, offset)}; consumed: msg tuples
    (partition, offset, key, value, headers, ts_type, ts)."""
    assert len(consumed) == len(recs), \
        f"consumed {len(consumed)} records, produced {len(recs)} (duplicates or loss)"
    seen = set()
    last_offset = {}
    last_idx = {}
    for part, off, key, value, headers, ts_type, ts in consumed:
        headers = norm_headers(headers)
        idx = int(headers[0][1])
        assert idx not in seen, f"record {idx} consumed twice"
        seen.add(idx)
        r = recs[idx]
        assert key == r["key"], (idx, key)
        assert value == r["value"], (idx, value[:50] if value else value)
        assert headers == norm_headers(r["headers"]), (idx, headers)
        assert ts == r["timestamp"], (idx, ts, r["timestamp"])
        assert ts_type == 1, f"timestamp type {ts_type} (want CreateTime)"
        if delivered is not None:
            assert (part, off) == delivered[idx], (idx, (part, off), delivered[idx])
        assert off > last_offset.get(part, -1), f"partition {part}: offset {off} not increasing"
        assert idx > last_idx.get(part, -1), f"partition {part}: record {idx} out of produce order"
        last_offset[part], last_idx[part] = off, idx
    assert len(seen) == len(recs)
    assert set(last_offset) == set(range(PARTS)), f"partitions used: {sorted(last_offset)}"
    wm = watermarks(bootstrap, topic, range(PARTS))
    assert sum(hi - lo for lo, hi in wm.values()) == len(recs), wm


def produce_confluent(bootstrap, topic, recs, codec):
    log = cf_produce(bootstrap, topic, recs,
                     conf={"compression.type": codec, "linger.ms": 20, "acks": "all"})
    assert not log.errors, log.errors[:5]
    return {int(k[4:]): (p, o) for p, o, k, v, h, ts in log.ok}  # key-NNNNN


def produce_kafka_python(bootstrap, topic, recs, codec):
    p = kp_producer(bootstrap, compression_type=None if codec == "none" else codec,
                    linger_ms=20, batch_size=256 * 1024)
    try:
        futs = [p.send(topic, key=r["key"], value=r["value"], headers=r["headers"],
                       timestamp_ms=r["timestamp"]) for r in recs]
        p.flush(timeout=120)
        return {i: (md.partition, md.offset)
                for i, md in enumerate(f.get(timeout=30) for f in futs)}
    finally:
        p.close(timeout=10)


def kp_tuples(msgs):
    # kafka-python reports the wire attribute bit: 0 = CreateTime, 1 = LogAppendTime
    return [(p, o, k, v, h, {0: 1, 1: 2}.get(t, 0), ts) for p, o, k, v, h, t, ts in msgs]


CASES = (
    [("confluent", "confluent", c) for c in CODECS]
    + [("kafka-python", "kafka-python", c) for c in ("none", "gzip", "lz4", "zstd", "snappy")]
    + [("confluent", "kafka-python", "zstd"), ("kafka-python", "confluent", "snappy")]
)


@pytest.mark.slow
@pytest.mark.parametrize("producer,consumer,codec", CASES,
                         ids=[f"{p}-to-{c}-{z}" for p, c, z in CASES])
def test_roundtrip(bootstrap, producer, consumer, codec):
    topic = create_topic(bootstrap, uniq(f"rt-{codec}"), partitions=PARTS)
    recs = make_records()
    if producer == "confluent":
        delivered = produce_confluent(bootstrap, topic, recs, codec)
    else:
        delivered = produce_kafka_python(bootstrap, topic, recs, codec)
    assert len(delivered) == N
    if consumer == "confluent":
        consumed = cf_consume_assigned(bootstrap, topic, range(PARTS), N, timeout=120)
    else:
        consumed = kp_tuples(kp_consume_assigned(bootstrap, topic, range(PARTS), N, timeout=120))
    verify(bootstrap, topic, recs, delivered, consumed)


@pytest.mark.kcat
@pytest.mark.slow
def test_roundtrip_confluent_to_kcat(bootstrap):
    topic = create_topic(bootstrap, uniq("rt-kcat-in"), partitions=PARTS)
    recs = make_records(binary=False)
    delivered = produce_confluent(bootstrap, topic, recs, "gzip")
    got = kcat_consume_json(bootstrap, topic, N, timeout=120)
    consumed = []
    for m in got:
        hdrs = m.get("headers") or []
        headers = [(hdrs[i], hdrs[i + 1].encode()) for i in range(0, len(hdrs), 2)]
        key = m["key"].encode() if m.get("key") is not None else None
        value = m["payload"].encode() if m.get("payload") is not None else None
        ts_type = {"create": 1, "logappend": 2}.get(m.get("tstype"), 0)
        consumed.append((m["partition"], m["offset"], key, value, headers, ts_type, m["ts"]))
    verify(bootstrap, topic, recs, delivered, consumed)


@pytest.mark.kcat
@pytest.mark.slow
def test_roundtrip_kcat_to_confluent(bootstrap):
    topic = create_topic(bootstrap, uniq("rt-kcat-out"), partitions=PARTS)
    lines = [(f"key-{i:05d}".encode(), f"value-{i}-{'y' * (i % 100)}".encode()) for i in range(N)]
    before = int(time.time() * 1000) - 1000
    kcat(bootstrap, "-P", "-t", topic, "-K", "\t", "-z", "lz4", "-H", "src=kcat", "-H", "n=1",
         input=b"".join(k + b"\t" + v + b"\n" for k, v in lines), timeout=120)
    after = int(time.time() * 1000) + 1000
    consumed = cf_consume_assigned(bootstrap, topic, range(PARTS), N, timeout=120)
    assert len(consumed) == N
    index = {k: i for i, (k, v) in enumerate(lines)}
    last = {}
    for part, off, key, value, headers, ts_type, ts in consumed:
        i = index[key]
        assert value == lines[i][1]
        assert norm_headers(headers) == [("src", b"kcat"), ("n", b"1")]
        assert ts_type == 1 and before <= ts <= after
        assert i > last.get(part, -1), f"partition {part} out of order"
        last[part] = i
    assert len(last) == PARTS
    wm = watermarks(bootstrap, topic, range(PARTS))
    assert sum(hi - lo for lo, hi in wm.values()) == N
