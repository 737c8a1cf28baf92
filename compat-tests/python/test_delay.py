"""Delayed delivery (mq.deliver.at / mq.delay.ms / mq.delay.level) through unmodified
clients: confluent-kafka (librdkafka), kafka-python and kcat. A delayed record is
acknowledged at once, hidden until due, then appended to its partition with a new offset
and `mq.delay.origin.offset`; exactly once, across kill -9."""

import os
import time

import pytest
from confluent_kafka import KafkaError, KafkaException, Producer, TopicPartition

from compat_util import (
    admin, cf_consume_assigned, cf_consumer, cf_produce, kcat, kcat_consume_json,
    kp_producer, new_topic, uniq, wait_until, watermarks,
)

DELAY_HEADERS = {"mq.deliver.at", "mq.delay.ms", "mq.delay.level"}


def now_ms():
    return int(time.time() * 1000)


def hdict(headers):
    return {k: (v.decode() if v is not None else None) for k, v in headers or []}


def read_all(bootstrap, topic, partitions, expected, timeout=30, settle=0.5):
    """Every record of the partitions from the start, as dicts, with receive times."""
    c = cf_consumer(bootstrap)
    try:
        c.assign([TopicPartition(topic, p, 0) for p in partitions])
        out = []
        deadline = time.monotonic() + timeout
        settle_until = None
        while time.monotonic() < deadline:
            for m in c.consume(num_messages=5000, timeout=0.1):
                if m.error():
                    raise KafkaException(m.error())
                out.append({"p": m.partition(), "o": m.offset(), "k": m.key(),
                            "v": m.value(), "h": hdict(m.headers()),
                            "ts": m.timestamp()[1], "at": now_ms()})
            if len(out) >= expected:
                settle_until = settle_until or time.monotonic() + settle
                if time.monotonic() >= settle_until:
                    break
        return out
    finally:
        c.close()


def test_delayed_records_are_hidden_until_due_then_appended(bootstrap):
    topic = new_topic(bootstrap, "delay", partitions=2)
    due = now_ms() + 2500
    recs = []
    for i in range(40):
        h = [("trace", f"t{i}".encode())]
        if i % 2:
            h.append(("mq.deliver.at", str(due).encode()))
        recs.append({"value": f"v{i}".encode(), "key": f"k{i}".encode(),
                     "partition": i % 2, "headers": h, "timestamp": 1_700_000_000_000 + i})
    log = cf_produce(bootstrap, topic, recs, conf={"linger.ms": 50})
    assert not log.errors and len(log.ok) == 40
    told = {v.decode(): (p, o) for (p, o, _k, v, _h, _ts) in log.ok}

    # Before they are due only the immediate records can be read.
    early = read_all(bootstrap, topic, [0, 1], expected=40, timeout=1.0)
    assert now_ms() < due, "the machine was too slow for this check"
    assert sorted(r["v"] for r in early) == sorted(f"v{i}".encode() for i in range(0, 40, 2))

    got = read_all(bootstrap, topic, [0, 1], expected=40, timeout=30)
    delayed = [r for r in got if r["v"] not in {f"v{i}".encode() for i in range(0, 40, 2)}]
    assert len(got) == 40 and len(delayed) == 20, "every record exactly once"
    for r in delayed:
        i = int(r["v"][1:])
        p, origin = told[r["v"].decode()]
        assert r["at"] >= due, "not visible before it is due"
        assert r["p"] == p, "released to the partition the producer chose"
        assert r["o"] > origin and r["o"] >= 20, "appended with a new offset"
        assert r["k"] == f"k{i}".encode() and r["ts"] == 1_700_000_000_000 + i
        assert r["h"]["trace"] == f"t{i}"
        assert r["h"]["mq.delay.origin.offset"] == str(origin)
        assert not DELAY_HEADERS & set(r["h"])
    # The immediate records kept their offsets; the delayed ones' offsets are gaps.
    for r in got:
        if r not in delayed:
            assert (r["p"], r["o"]) == told[r["v"].decode()]
    assert not {told[r["v"].decode()] for r in delayed} & {(r["p"], r["o"]) for r in got}


def test_delay_levels_and_precedence(bootstrap):
    topic = new_topic(bootstrap, "delay-lvl", partitions=1)
    start = now_ms()
    recs = [
        {"value": b"level1", "partition": 0, "headers": [("mq.delay.level", b"1")]},
        {"value": b"at-wins", "partition": 0, "headers": [
            ("mq.delay.ms", b"600000"), ("mq.deliver.at", str(start + 1500).encode())]},
        {"value": b"ms-wins", "partition": 0, "headers": [
            ("mq.delay.level", b"18"), ("mq.delay.ms", b"1200")]},
    ]
    log = cf_produce(bootstrap, topic, recs)
    assert not log.errors
    got = {r["v"]: r for r in read_all(bootstrap, topic, [0], expected=3, timeout=20)}
    assert set(got) == {b"level1", b"at-wins", b"ms-wins"}
    assert got[b"level1"]["at"] >= start + 1000
    assert got[b"at-wins"]["at"] >= start + 1500
    assert got[b"ms-wins"]["at"] >= start + 1200
    assert max(r["at"] for r in got.values()) < start + 15000


@pytest.mark.parametrize("header,value", [
    ("mq.delay.ms", "abc"), ("mq.delay.ms", "-5"), ("mq.delay.ms", ""),
    ("mq.delay.ms", "3456000001"), ("mq.deliver.at", "99999999999999"),
    ("mq.delay.level", "0"), ("mq.delay.level", "19"),
])
def test_bad_delay_headers_refuse_the_whole_batch(bootstrap, header, value):
    topic = new_topic(bootstrap, "delay-bad", partitions=1)
    recs = [{"value": b"ok1", "partition": 0},
            {"value": b"ok2", "partition": 0, "headers": [("mq.delay.ms", b"100")]},
            {"value": b"bad", "partition": 0, "headers": [(header, value.encode())]}]
    # One batch: a linger far longer than the three produce() calls take, even on a
    # loaded machine (100 ms once let the first record go alone); flush() sends at once.
    log = cf_produce(bootstrap, topic, recs, conf={"linger.ms": 5000})
    assert not log.ok, "the batch is refused as a whole"
    assert {e.code() for e, _ in log.errors} == {KafkaError.INVALID_RECORD}
    time.sleep(0.3)
    assert watermarks(bootstrap, topic, [0]) == {0: (0, 0)}, "nothing stored"


def test_kcat_and_kafka_python_delay(bootstrap):
    """The README's kcat example, and kafka-python's headers."""
    topic = new_topic(bootstrap, "delay-kcat", partitions=1)
    start = now_ms()
    kcat(bootstrap, "-P", "-t", topic, "-p", "0", "-H", "mq.delay.ms=1500",
         input=b"from-kcat\n")
    p = kp_producer(bootstrap)
    p.send(topic, value=b"from-kafka-python", partition=0,
           headers=[("mq.delay.ms", b"1500")]).get(timeout=30)
    p.close()
    # Not there yet...
    assert watermarks(bootstrap, topic, [0])[0][1] == 2, "two gaps, no records"
    wait_until(lambda: watermarks(bootstrap, topic, [0])[0][1] == 4, 20, what="released")
    assert now_ms() >= start + 1500
    msgs = kcat_consume_json(bootstrap, topic, 2, timeout=30)
    assert sorted(m["payload"] for m in msgs) == ["from-kafka-python", "from-kcat"]
    for m in msgs:
        hs = dict(zip(m["headers"][::2], m["headers"][1::2]))
        assert "mq.delay.ms" not in hs and hs["mq.delay.origin.offset"] in ("0", "1")
        assert m["offset"] >= 2


@pytest.mark.parametrize("compression", ["none", "lz4", "zstd"])
def test_idempotent_producer_with_mixed_batches(bootstrap, compression):
    """Compressed batches are split too (rebuilt uncompressed, as compaction would)."""
    topic = new_topic(bootstrap, "delay-idem", partitions=3)
    n = 3000
    recs = [{"value": f"v{i}".encode(), "partition": i % 3,
             "headers": [("mq.delay.ms", b"1000")] if i % 3 == 0 or i % 7 == 0 else None}
            for i in range(n)]
    log = cf_produce(bootstrap, topic, recs,
                     conf={"enable.idempotence": True, "linger.ms": 20, "batch.num.messages": 100,
                           "compression.type": compression})
    assert not log.errors and len(log.ok) == n
    got = read_all(bootstrap, topic, [0, 1, 2], expected=n, timeout=40, settle=1.0)
    values = [r["v"] for r in got]
    assert len(values) == n and len(set(values)) == n


def test_a_topic_codec_applies_to_kept_and_released_records(bootstrap):
    """On a topic whose compression.type is zstd, what a split batch keeps and the
    batches of released records are stored in zstd too; only batches left without
    records (every record delayed) stay uncompressed, as they hold nothing to compress."""
    from rawkafka import stored_batches
    topic = new_topic(bootstrap, "delay-codec", partitions=1, config={"compression.type": "zstd"})
    n = 600
    recs = [{"value": f"v{i}".encode(), "partition": 0,
             "headers": [("mq.delay.ms", b"500")] if i % 3 == 0 else None} for i in range(n)]
    log = cf_produce(bootstrap, topic, recs, conf={"enable.idempotence": True, "linger.ms": 20,
                                                    "batch.num.messages": 50,
                                                    "compression.type": "lz4"})
    assert not log.errors and len(log.ok) == n
    got = read_all(bootstrap, topic, [0], expected=n, timeout=40, settle=1.0)
    assert sorted(r["v"] for r in got) == sorted(f"v{i}".encode() for i in range(n))
    host, port = bootstrap.rsplit(":", 1)
    batches = stored_batches(host, int(port), topic, 0)
    assert sum(count for _, count, _ in batches) == n
    codecs = {codec for _, count, codec in batches if count > 0}
    assert codecs == {4}, f"batches with records stored in codecs {codecs}"


def test_transactional_producer_is_refused(bootstrap):
    topic = new_topic(bootstrap, "delay-txn", partitions=1)
    p = Producer({"bootstrap.servers": bootstrap, "transactional.id": uniq("tx")})
    with pytest.raises(KafkaException):
        p.init_transactions(10)
    assert watermarks(bootstrap, topic, [0]) == {0: (0, 0)}


def test_metrics_count_scheduled_and_released(broker, bootstrap):
    if not broker.controllable:
        pytest.skip("needs the broker's metrics endpoint")
    before = (broker.metric("sluice_delay_scheduled_records_total"),
              broker.metric("sluice_delay_released_records_total"))
    topic = new_topic(bootstrap, "delay-metrics", partitions=1)
    log = cf_produce(bootstrap, topic, [{"value": b"x", "partition": 0,
                                         "headers": [("mq.delay.ms", b"300")]}] * 5)
    assert not log.errors
    wait_until(lambda: broker.metric("sluice_delay_released_records_total") >= before[1] + 5,
               20, what="releases counted")
    assert broker.metric("sluice_delay_scheduled_records_total") >= before[0] + 5


def test_deleting_a_topic_drops_its_pending_delays(broker, bootstrap):
    if not broker.controllable:
        pytest.skip("needs the broker's metrics endpoint")
    dropped = broker.metric("sluice_delay_dropped_records_total")
    topic = new_topic(bootstrap, "delay-del", partitions=1)
    assert not cf_produce(bootstrap, topic, [{"value": b"x", "partition": 0,
                                             "headers": [("mq.delay.ms", b"1000")]}] * 3).errors
    a = admin(bootstrap)
    a.delete_topics([topic], operation_timeout=30)[topic].result(60)
    wait_until(lambda: broker.metric("sluice_delay_dropped_records_total") >= dropped + 3,
               20, what="pending records of a deleted topic dropped")


def test_pending_delays_survive_kill_and_are_released_exactly_once(broker_factory):
    """kill -9 before anything is due, then again and again while releases are in flight:
    every delayed record appears exactly once."""
    b = broker_factory()
    topic = new_topic(b.bootstrap, "delay-kill", partitions=3)
    n = 30000
    start = now_ms()
    window = (start + 4000, start + 9000)
    recs = []
    for i in range(n):
        due = window[0] + (i * (window[1] - window[0])) // n
        recs.append({"value": f"v{i}".encode(), "partition": i % 3,
                     "headers": [("mq.deliver.at", str(due).encode())] if i % 10 else None})
    log = cf_produce(b.bootstrap, topic, recs,
                     conf={"linger.ms": 20, "enable.idempotence": True}, flush_timeout=120)
    assert not log.errors and len(log.ok) == n
    assert now_ms() < window[0], "the machine was too slow to kill before anything was due"
    b.restart(hard=True)  # nothing due yet: pending records survive
    kills, mid_release = 0, 0
    delayed_n = n - n // 10
    while now_ms() < window[1] + 500:
        time.sleep(0.9)
        ends = sum(hw for _lo, hw in watermarks(b.bootstrap, topic, [0, 1, 2]).values())
        mid_release += n < ends < n + delayed_n
        b.restart(hard=True)
        kills += 1
    assert mid_release >= 2, f"only {mid_release} of {kills} kills came while releasing"
    got = read_all(b.bootstrap, topic, [0, 1, 2], expected=n, timeout=60, settle=2.0)
    values = [r["v"] for r in got]
    missing = n - len(set(values))
    dups = len(values) - len(set(values))
    assert (missing, dups) == (0, 0), f"{missing} lost, {dups} duplicated after {kills} kills"
    released = [r for r in got if "mq.delay.origin.offset" in r["h"]]
    assert len(released) == delayed_n
    assert len({(r["p"], r["h"]["mq.delay.origin.offset"]) for r in released}) == len(released)


def delay_segments(data_dir):
    """(apparent, allocated) bytes of the delay store's sealed segments."""
    d = os.path.join(data_dir, "__delay")
    apparent = allocated = 0
    for name in os.listdir(d):
        if name.endswith(".delay") and "-" in name:
            st = os.stat(os.path.join(d, name))
            apparent += st.st_size
            allocated += st.st_blocks * 512
    return apparent, allocated


def test_done_delays_give_their_disk_back_while_long_ones_wait(broker_factory):
    """Short delays with a few long ones among them: once the short ones are out, their
    bytes are punched out of the store's segments, which the long ones keep alive; the
    long ones are still released exactly once, after a kill -9 and a restart that
    rebuilds the timing wheel by reading those segments."""
    from conftest import write_toml
    b = broker_factory(config={"mq.delay.segment.bytes": 1 << 20})
    topic = new_topic(b.bootstrap, "delay-holes", partitions=1)
    n, every = 5000, 250
    long_due = now_ms() + 30_000
    value = b"x" * 1000
    recs = []
    for i in range(n):
        header = (("mq.deliver.at", str(long_due).encode()) if i % every == 0
                  else ("mq.delay.ms", b"1000"))
        recs.append({"value": b"%05d" % i + value, "partition": 0, "headers": [header]})
    log = cf_produce(b.bootstrap, topic, recs, conf={"linger.ms": 20}, flush_timeout=60)
    assert not log.errors and len(log.ok) == n
    n_long = len(range(0, n, every))
    wait_until(lambda: watermarks(b.bootstrap, topic, [0])[0][1] >= 2 * n - n_long, 30,
               what="the short delays released")
    apparent, _ = delay_segments(b.data_dir)
    assert apparent >= 4 << 20, f"only {apparent} bytes in sealed segments"
    wait_until(lambda: delay_segments(b.data_dir)[1] < apparent // 4, 20,
               what="the released records' bytes punched out of the delay segments")
    assert now_ms() < long_due - 3000, "the machine was too slow to restart before the long delays"

    # A longer maximum delay makes the restart build a new wheel from the segments.
    b.config["mq.delay.max.ms"] = 2 * 3456000000
    write_toml(b.config_path, b.config)
    b.restart(hard=True)
    got = read_all(b.bootstrap, topic, [0], expected=n, timeout=60, settle=1.0)
    values = [r["v"][:5] for r in got]
    assert len(values) == n and len(set(values)) == n, "every record exactly once"
    late = [r for r in got if int(r["v"][:5]) % every == 0]
    assert len(late) == n_long and all(r["at"] >= long_due for r in late)
