"""8. Idempotent producers: every record stored exactly once, in order."""

import pytest

from compat_util import cf_consume_assigned, cf_produce, create_topic, kp_producer, uniq, watermarks

N = 10_000
PARTS = 3


def check_exactly_once_in_order(bootstrap, topic, n):
    got = cf_consume_assigned(bootstrap, topic, range(PARTS), n, timeout=90)
    assert len(got) == n, f"stored {len(got)} records for {n} produced"
    seqs = [int(m[3]) for m in got]
    assert sorted(seqs) == list(range(n)), "records lost or duplicated"
    for p in range(PARTS):
        per = [int(m[3]) for m in got if m[0] == p]
        assert per == sorted(per), f"partition {p} out of order"
        assert [m[1] for m in got if m[0] == p] == list(range(len(per)))
    wm = watermarks(bootstrap, topic, range(PARTS))
    assert sum(hi - lo for lo, hi in wm.values()) == n


@pytest.mark.parametrize("codec", ["none", "zstd"])
def test_confluent_idempotent_producer(bootstrap, codec):
    topic = create_topic(bootstrap, uniq(f"idem-cf-{codec}"), partitions=PARTS)
    recs = [{"key": f"k{i % 97}".encode(), "value": str(i).encode()} for i in range(N)]
    log = cf_produce(bootstrap, topic, recs, conf={
        "enable.idempotence": True, "compression.type": codec, "linger.ms": 5,
        "batch.num.messages": 500, "max.in.flight.requests.per.connection": 5})
    assert not log.errors, log.errors[:5]
    assert len(log.ok) == N
    check_exactly_once_in_order(bootstrap, topic, N)


def test_kafka_python_idempotent_producer(bootstrap):
    topic = create_topic(bootstrap, uniq("idem-kp"), partitions=PARTS)
    p = kp_producer(bootstrap, enable_idempotence=True, acks="all", linger_ms=5,
                    batch_size=16384)
    try:
        futs = [p.send(topic, key=f"k{i % 97}".encode(), value=str(i).encode()) for i in range(N)]
        p.flush(timeout=120)
        for f in futs:
            f.get(timeout=30)
    finally:
        p.close(timeout=10)
    check_exactly_once_in_order(bootstrap, topic, N)


def test_two_idempotent_producers_same_partition(bootstrap):
    """Two producers (two producer ids) interleaving on one partition."""
    topic = create_topic(bootstrap, uniq("idem-two"), partitions=PARTS)
    from confluent_kafka import Producer
    from compat_util import RDKAFKA_LOGGER, DeliveryLog
    logs = [DeliveryLog(), DeliveryLog()]
    producers = [Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True,
                           "linger.ms": 2, "logger": RDKAFKA_LOGGER}) for _ in range(2)]
    for i in range(4000):
        which = i % 2
        producers[which].produce(topic, value=f"{which}:{i}".encode(), partition=0,
                                 on_delivery=logs[which])
        if i % 100 == 0:
            for pr in producers:
                pr.poll(0)
    for pr in producers:
        assert pr.flush(60) == 0
    assert not logs[0].errors and not logs[1].errors
    got = cf_consume_assigned(bootstrap, topic, [0], 4000)
    assert len(got) == 4000
    for which in (0, 1):
        seq = [int(m[3].split(b":")[1]) for m in got if m[3].startswith(f"{which}:".encode())]
        assert seq == sorted(seq) and len(seq) == 2000
