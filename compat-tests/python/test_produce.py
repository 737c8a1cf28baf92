"""2. Produce: acks 0/1/all, every compression codec, per-record errors."""

import os

import pytest
from confluent_kafka import KafkaError

from compat_util import (
    CODECS, cf_consume_assigned, cf_produce, create_topic, kcat, kp_producer, uniq, watermarks,
)

N = 300
PARTS = 3


def records(tag, n=N):
    return [{"key": f"k{i}".encode(), "value": (f"{tag}-{i}-" * 8).encode()} for i in range(n)]


def check_stored(bootstrap, topic, expected):
    """All ``expected`` (key, value) pairs are stored exactly once, and within
    each partition in produce order."""
    got = cf_consume_assigned(bootstrap, topic, range(PARTS), len(expected))
    assert len(got) == len(expected), f"stored {len(got)} records, produced {len(expected)}"
    assert sorted((m[2], m[3]) for m in got) == sorted(expected)
    order = {kv: i for i, kv in enumerate(expected)}
    for p in range(PARTS):
        seq = [order[(m[2], m[3])] for m in got if m[0] == p]
        assert seq == sorted(seq), f"partition {p} out of produce order"
    wm = watermarks(bootstrap, topic, range(PARTS))
    assert sum(hi - lo for lo, hi in wm.values()) == len(expected), wm


@pytest.mark.parametrize("codec", CODECS)
@pytest.mark.parametrize("acks", [0, 1, -1], ids=["acks0", "acks1", "acksall"])
def test_confluent_produce(bootstrap, acks, codec):
    topic = create_topic(bootstrap, uniq(f"p-cf-{codec}"), partitions=PARTS)
    recs = records(f"cf-{codec}-{acks}")
    log = cf_produce(bootstrap, topic, recs,
                     conf={"acks": acks, "compression.type": codec, "linger.ms": 10})
    assert not log.errors, log.errors[:5]
    assert len(log.ok) == N
    if acks != 0:
        for p in range(PARTS):
            offs = sorted(o for part, o, *_ in log.ok if part == p)
            assert offs == list(range(len(offs))), f"partition {p} offsets {offs[:10]}..."
    check_stored(bootstrap, topic, [(r["key"], r["value"]) for r in recs])


@pytest.mark.parametrize("codec", CODECS)
@pytest.mark.parametrize("acks", [0, 1, "all"], ids=["acks0", "acks1", "acksall"])
def test_kafka_python_produce(bootstrap, acks, codec):
    topic = create_topic(bootstrap, uniq(f"p-kp-{codec}"), partitions=PARTS)
    recs = records(f"kp-{codec}-{acks}")
    p = kp_producer(bootstrap, acks=acks, enable_idempotence=False, linger_ms=10,
                    compression_type=None if codec == "none" else codec)
    try:
        futs = [p.send(topic, key=r["key"], value=r["value"]) for r in recs]
        p.flush(timeout=60)
        mds = [f.get(timeout=30) for f in futs]
    finally:
        p.close(timeout=10)
    if acks != 0:
        for part in range(PARTS):
            offs = sorted(m.offset for m in mds if m.partition == part)
            assert offs == list(range(len(offs)))
    check_stored(bootstrap, topic, [(r["key"], r["value"]) for r in recs])


@pytest.mark.kcat
@pytest.mark.parametrize("codec,acks", [(c, "all") for c in CODECS] + [("none", "0"), ("none", "1")])
def test_kcat_produce(bootstrap, codec, acks):
    topic = create_topic(bootstrap, uniq(f"p-kcat-{codec}"), partitions=PARTS)
    recs = records(f"kcat-{codec}-{acks}")
    data = b"".join(r["key"] + b":" + r["value"] + b"\n" for r in recs)
    kcat(bootstrap, "-P", "-t", topic, "-K", ":", "-z", codec, "-X", f"acks={acks}",
         "-X", "linger.ms=10", input=data)
    check_stored(bootstrap, topic, [(r["key"], r["value"]) for r in recs])


# -- per-record / per-partition errors ----------------------------------------------

def test_acks_all_to_a_topic_asking_more_replicas_than_it_has(bootstrap):
    """min.insync.replicas counts no more replicas than the partition has (Kafka's
    effectiveMinIsr, KIP-966): a topic set to 2 on one broker, as a production config
    copied to a single node would be, takes acks=all produces."""
    topic = create_topic(bootstrap, uniq("p-minisr"), partitions=1,
                         config={"min.insync.replicas": "2"})
    log = cf_produce(bootstrap, topic, [{"value": b"v%d" % i} for i in range(10)],
                     conf={"acks": "all", "message.timeout.ms": 10000})
    assert not log.errors, [str(e) for e, _ in log.errors[:3]]
    assert sorted(o[1] for o in log.ok) == list(range(10))


def test_confluent_record_too_large(bootstrap):
    topic = create_topic(bootstrap, uniq("p-toolarge-cf"), partitions=1,
                         config={"max.message.bytes": "1000"})
    log = cf_produce(bootstrap, topic, [{"value": os.urandom(5000)}],
                     conf={"compression.type": "none", "message.timeout.ms": 20000})
    assert not log.ok
    assert [e.code() for e, _ in log.errors] == [KafkaError.MSG_SIZE_TOO_LARGE], \
        [str(e) for e, _ in log.errors]
    # the partition keeps working for records that fit
    log = cf_produce(bootstrap, topic, [{"value": b"small"}])
    assert not log.errors and [o[:2] for o in log.ok] == [(0, 0)]


def test_kafka_python_record_too_large(bootstrap):
    from kafka.errors import MessageSizeTooLargeError
    topic = create_topic(bootstrap, uniq("p-toolarge-kp"), partitions=1,
                         config={"max.message.bytes": "1000"})
    p = kp_producer(bootstrap, enable_idempotence=False, acks=1)
    try:
        with pytest.raises(MessageSizeTooLargeError):
            p.send(topic, value=os.urandom(5000)).get(timeout=30)
        md = p.send(topic, value=b"small").get(timeout=30)
        assert (md.partition, md.offset) == (0, 0)
    finally:
        p.close(timeout=10)


@pytest.mark.xfail(not os.environ.get("KAFKA_BOOTSTRAP") and not os.environ.get("COMPAT_REAL_KAFKA"),
                   strict=True,
                   reason="Sluice does not implement compaction yet: it refuses "
                          "cleanup.policy=compact with INVALID_CONFIG")
def test_confluent_keyless_record_on_compacted_topic_is_invalid(bootstrap):
    """Kafka rejects key-less records on cleanup.policy=compact with
    INVALID_RECORD (87) and keeps the partition usable."""
    topic = create_topic(bootstrap, uniq("p-compact"), partitions=1,
                         config={"cleanup.policy": "compact"})
    log = cf_produce(bootstrap, topic, [{"value": b"no key"}],
                     conf={"message.timeout.ms": 20000})
    assert not log.ok
    assert [e.code() for e, _ in log.errors] == [KafkaError.INVALID_RECORD], \
        [str(e) for e, _ in log.errors]
    log = cf_produce(bootstrap, topic, [{"key": b"k", "value": b"keyed"}])
    assert not log.errors and [o[:2] for o in log.ok] == [(0, 0)]


TOPIC_CODECS = {"uncompressed": 0, "gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}


@pytest.mark.parametrize("topic_codec", list(TOPIC_CODECS))
def test_a_topic_compression_type_stores_every_batch_in_its_codec(bootstrap, topic_codec):
    """A topic's compression.type names a codec: batches produced in any codec (none
    included) are stored rebuilt in that one, as Kafka's LogValidator rebuilds them, and
    librdkafka, kafka-python and kcat read every record as it was produced: key, value,
    headers, offset and timestamp. Batches of a few hundred KB span several LZ4 and
    snappy blocks."""
    from rawkafka import stored_batches
    topic = create_topic(bootstrap, uniq(f"codec-{topic_codec}"), partitions=1,
                         config={"compression.type": topic_codec, "compression.gzip.level": "9",
                                 "compression.zstd.level": "-3"})
    sent = []
    for producer_codec in ("none", "gzip", "snappy", "lz4", "zstd"):
        recs = [{"key": f"{producer_codec}-{i}".encode(), "value": (f"v{i}-" * (i % 400)).encode(),
                 "headers": [("codec", producer_codec.encode())], "partition": 0,
                 "timestamp": 1_700_000_000_000 + len(sent) + i} for i in range(N)]
        log = cf_produce(bootstrap, topic, recs, conf={"compression.type": producer_codec,
                                                       "linger.ms": 50})
        assert not log.errors, log.errors[:3]
        sent += [(r["key"], r["value"], r["timestamp"]) for r in recs]

    host, port = bootstrap.rsplit(":", 1)
    batches = stored_batches(host, int(port), topic, 0)
    assert sum(count for _, count, _ in batches) == len(sent)
    codecs = {codec for _, _, codec in batches}
    assert codecs == {TOPIC_CODECS[topic_codec]}, f"stored in codecs {codecs}"

    got = cf_consume_assigned(bootstrap, topic, [0], len(sent))
    assert [(m[2], m[3] or b"", m[6]) for m in got] == sent
    assert [m[1] for m in got] == list(range(len(sent)))
    assert all(m[4] == [("codec", m[2].split(b"-")[0])] for m in got)
    from compat_util import kp_consume_assigned
    got = kp_consume_assigned(bootstrap, topic, [0], len(sent))
    assert [(m[2], m[3] or b"", m[6]) for m in got] == sent
    got = kcat(bootstrap, "-C", "-t", topic, "-o", "beginning", "-e", "-q", "-f", "%k\n").stdout
    assert got.decode().split() == [k.decode() for k, _, _ in sent]


@pytest.mark.parametrize("config", [
    {"compression.type": "brotli"}, {"compression.type": "none"},
    {"compression.zstd.level": "23"}, {"compression.lz4.level": "0"},
    {"compression.gzip.level": "0"},
], ids=lambda c: "=".join(next(iter(c.items()))))
def test_a_bad_compression_config_is_refused(bootstrap, config):
    """Kafka's values and level bounds: anything else is INVALID_CONFIG."""
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import NewTopic
    from compat_util import admin
    name = uniq("bad-codec")
    a = admin(bootstrap)        # kept: a dropped client fails its futures
    futures = a.create_topics([NewTopic(name, 1, 1, config=config)], request_timeout=30)
    with pytest.raises(KafkaException) as refused:
        futures[name].result(60)
    assert refused.value.args[0].code() == KafkaError.INVALID_CONFIG, refused.value
