"""Tag-filtered views (mq.view.source / mq.view.filter) through unmodified clients:
confluent-kafka (librdkafka), kafka-python and kcat."""

import time

import pytest
from confluent_kafka import KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ConfigResource, NewTopic, ResourceType

from compat_util import (
    admin, cf_consume_assigned, cf_consumer, cf_produce, create_topic, kcat_consume_json,
    kp_consume_assigned, uniq, wait_until, watermarks,
)

PARTS = 3
TAGS = ["vip5", "vip6", "plain", None]          # None: no mq.tag header
WHOLE = "sluice_view_fetch_whole_bytes_total"
REBUILT = "sluice_view_fetch_rebuilt_bytes_total"
SKIPPED = "sluice_view_fetch_skipped_bytes_total"
T = 30


def headers_for(i, tag):
    h = [("idx", str(i).encode()), ("region", b"eu" if i % 3 == 0 else b"us"),
         ("amount", str(i % 50).encode())]
    if tag is not None:
        h.append(("mq.tag", tag.encode()))
    return h


def produce(bootstrap, topic, recs):
    """Produces and returns (partition, offset, headers) per record. Delivery reports
    carry no headers, so each record's are found again by its value."""
    log = cf_produce(bootstrap, topic, recs, conf={"linger.ms": 50})
    assert not log.errors and len(log.ok) == len(recs)
    sent = {r["value"]: r["headers"] for r in recs}
    return [(p, o, sent[v]) for (p, o, _k, v, _h, _ts) in log.ok]


def produce_mixed(bootstrap, topic, n=3000):
    """Records whose tags change record by record, so batches mix tags."""
    return produce(bootstrap, topic, [
        {"value": f"v{i}".encode(), "key": f"k{i}".encode(), "partition": i % PARTS,
         "headers": headers_for(i, TAGS[i % len(TAGS)])} for i in range(n)])


def produce_uniform(bootstrap, topic, tag, n, start):
    """Records that all carry one tag, flushed as their own batches."""
    return produce(bootstrap, topic, [
        {"value": f"v{start + i}".encode(), "partition": i % PARTS,
         "headers": headers_for(start + i, tag)} for i in range(n)])


def tag_of(headers):
    for k, v in headers or []:
        if k == "mq.tag":
            return v.decode()
    return None


def header(headers, name):
    for k, v in headers or []:
        if k == name:
            return v.decode()
    return None


def create_view(bootstrap, name, source, filt, partitions=-1):
    a = admin(bootstrap)
    fs = a.create_topics([NewTopic(name, num_partitions=partitions,
                                   config={"mq.view.source": source, "mq.view.filter": filt})],
                         operation_timeout=T, request_timeout=T)
    fs[name].result(T + 30)
    return name


def create_view_error(bootstrap, name, config, partitions=-1):
    a = admin(bootstrap)
    fs = a.create_topics([NewTopic(name, num_partitions=partitions, config=config)],
                         operation_timeout=T, request_timeout=T)
    with pytest.raises(KafkaException) as ei:
        fs[name].result(T + 30)
    return ei.value.args[0]


def expected(delivered, keep):
    """(partition, offset) of delivered records whose headers pass `keep` (never none:
    a test expecting nothing would pass whatever the view returned)."""
    want = sorted((p, o) for (p, o, h) in delivered if keep(h))
    assert want and len(want) < len(delivered)
    return want


@pytest.fixture
def source_with_records(bootstrap):
    src = create_topic(bootstrap, uniq("view-src"), partitions=PARTS)
    delivered = produce_mixed(bootstrap, src)
    delivered += produce_uniform(bootstrap, src, "vip5", 300, 10_000)
    delivered += produce_uniform(bootstrap, src, "plain", 300, 20_000)
    return src, delivered


def test_tag_view_with_librdkafka(bootstrap, source_with_records):
    src, delivered = source_with_records
    view = create_view(bootstrap, uniq("view-vip"), src, "vip5 || vip6")
    want = expected(delivered, lambda h: tag_of(h) in ("vip5", "vip6"))
    got = cf_consume_assigned(bootstrap, view, range(PARTS), len(want), timeout=60)
    assert sorted((m[0], m[1]) for m in got) == want
    for m in got:
        assert tag_of(m[4]) in ("vip5", "vip6")
        assert m[3] == f"v{header(m[4], 'idx')}".encode()
    # The view's offsets and watermarks are the source's.
    assert watermarks(bootstrap, view, range(PARTS)) == watermarks(bootstrap, src, range(PARTS))


def test_view_reader_reaches_the_end(bootstrap, source_with_records):
    """Records filtered out at the end of the log must not hold a reader back: the
    closing empty batch moves its fetch position to the high watermark. (kafka-python
    reports the fetch position; librdkafka's position() is the last delivered record's.)"""
    from kafka import TopicPartition as KTP
    from compat_util import kp_consumer
    src, delivered = source_with_records
    view = create_view(bootstrap, uniq("view-end"), src, "vip6")
    marks = watermarks(bootstrap, view, range(PARTS))
    want = {p: marks[p][1] for p in range(PARTS)}
    c = kp_consumer(bootstrap)
    try:
        tps = [KTP(view, p) for p in range(PARTS)]
        c.assign(tps)
        c.seek_to_beginning(*tps)
        pos = {}
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            c.poll(timeout_ms=200, max_records=5000)
            pos = {tp.partition: c.position(tp) for tp in tps}
            if pos == want:
                break
        assert pos == want
    finally:
        c.close(autocommit=False)


def test_tag_view_with_kafka_python(bootstrap, source_with_records):
    src, delivered = source_with_records
    view = create_view(bootstrap, uniq("view-kp"), src, "plain")
    want = expected(delivered, lambda h: tag_of(h) == "plain")
    got = kp_consume_assigned(bootstrap, view, range(PARTS), len(want), timeout=60)
    assert sorted((m[0], m[1]) for m in got) == want


@pytest.mark.kcat
def test_tag_view_with_kcat(bootstrap, source_with_records):
    src, delivered = source_with_records
    view = create_view(bootstrap, uniq("view-kcat"), src, "vip5")
    want = expected(delivered, lambda h: tag_of(h) == "vip5")
    got = kcat_consume_json(bootstrap, view, len(want), timeout=60)
    assert sorted((m["partition"], m["offset"]) for m in got) == want


def test_sql_view(bootstrap, source_with_records):
    src, delivered = source_with_records
    view = create_view(bootstrap, uniq("view-sql"), src,
                       "sql:region = 'eu' AND amount BETWEEN 10 AND 19 AND tag IS NOT NULL")
    want = expected(delivered, lambda h: header(h, "region") == "eu"
                    and 10 <= int(header(h, "amount")) <= 19 and tag_of(h) is not None)
    got = cf_consume_assigned(bootstrap, view, range(PARTS), len(want), timeout=60)
    assert sorted((m[0], m[1]) for m in got) == want


def test_group_commits_and_lag_on_a_view(bootstrap, source_with_records):
    src, delivered = source_with_records
    view = create_view(bootstrap, uniq("view-grp"), src, "vip5 || vip6")
    want = expected(delivered, lambda h: tag_of(h) in ("vip5", "vip6"))
    group = uniq("view-group")
    c = cf_consumer(bootstrap, group=group)
    got = []
    try:
        c.subscribe([view])
        deadline = time.monotonic() + 60
        while len(got) < len(want) and time.monotonic() < deadline:
            for m in c.consume(num_messages=1000, timeout=0.2):
                if m.error() is None:
                    got.append((m.partition(), m.offset()))
        assert sorted(got) == want
        c.commit(asynchronous=False)
    finally:
        c.close()
    # The group's offsets are the view's: the last delivered record + 1 per partition,
    # and the lag against the view's high watermark is what is left after it.
    last = {}
    for p, o in got:
        last[p] = max(last.get(p, -1), o)
    c = cf_consumer(bootstrap, group=group)
    try:
        committed = c.committed([TopicPartition(view, p) for p in range(PARTS)], timeout=10)
        assert {tp.partition: tp.offset for tp in committed} == {p: o + 1 for p, o in last.items()}
        marks = watermarks(bootstrap, view, range(PARTS))
        assert all(marks[p][1] >= last[p] + 1 for p in range(PARTS))
    finally:
        c.close()


def test_view_paths_are_counted(broker):
    """Uniform batches are sent whole or skipped; mixed ones are rebuilt."""
    if not broker.metrics_port:
        pytest.skip("broker has no Prometheus metrics endpoint")
    bs = broker.bootstrap
    src = create_topic(bs, uniq("view-paths"), partitions=PARTS)
    produce_uniform(bs, src, "vip5", 600, 0)
    produce_uniform(bs, src, "plain", 600, 1000)
    view = create_view(bs, uniq("view-paths-v"), src, "vip5")
    w0, r0, s0 = broker.metric(WHOLE), broker.metric(REBUILT), broker.metric(SKIPPED)
    assert len(cf_consume_assigned(bs, view, range(PARTS), 600, timeout=60)) == 600
    w1, r1, s1 = broker.metric(WHOLE), broker.metric(REBUILT), broker.metric(SKIPPED)
    assert w1 > w0 and s1 > s0
    mixed = uniq("view-paths-m")
    create_topic(bs, mixed, partitions=PARTS)
    produce_mixed(bs, mixed, 600)
    view2 = create_view(bs, uniq("view-paths-mv"), mixed, "vip5")
    assert len(cf_consume_assigned(bs, view2, range(PARTS), 150, timeout=60)) == 150
    assert broker.metric(REBUILT) > r1


def test_view_bad_input(bootstrap):
    src = create_topic(bootstrap, uniq("view-bad"), partitions=PARTS)
    err = create_view_error(bootstrap, uniq("v"), {"mq.view.source": uniq("missing")})
    assert err.code() == KafkaError.INVALID_CONFIG
    err = create_view_error(bootstrap, uniq("v"), {"mq.view.source": src, "mq.view.filter": "a ||"})
    assert err.code() == KafkaError.INVALID_CONFIG
    err = create_view_error(bootstrap, uniq("v"),
                            {"mq.view.source": src, "mq.view.filter": "sql:a = 'x"})
    assert err.code() == KafkaError.INVALID_CONFIG
    err = create_view_error(bootstrap, uniq("v"),
                            {"mq.view.source": src, "retention.ms": "1000"})
    assert err.code() == KafkaError.INVALID_CONFIG
    err = create_view_error(bootstrap, uniq("v"), {"mq.view.source": src}, partitions=PARTS + 1)
    assert err.code() == KafkaError.INVALID_PARTITIONS
    view = create_view(bootstrap, uniq("view-bad-v"), src, "a")
    err = create_view_error(bootstrap, uniq("v"), {"mq.view.source": view})
    assert err.code() == KafkaError.INVALID_CONFIG

    # Producing to a view is refused, and nothing is stored.
    before = watermarks(bootstrap, src, range(PARTS))
    log = cf_produce(bootstrap, view, [{"value": b"x", "partition": 0}],
                     conf={"message.timeout.ms": 10000})
    assert log.errors and log.errors[0][0].code() == KafkaError.TOPIC_EXCEPTION
    assert watermarks(bootstrap, src, range(PARTS)) == before

    # Deleting a view's records is refused for good (not NOT_LEADER, which the admin
    # client would retry until it timed out), and the source keeps them.
    a = admin(bootstrap)
    res = a.delete_records([TopicPartition(view, 0, -1)], request_timeout=T)
    with pytest.raises(KafkaException) as ei:
        next(iter(res.values())).result(T + 30)
    assert ei.value.args[0].code() == KafkaError.TOPIC_EXCEPTION
    assert watermarks(bootstrap, src, range(PARTS)) == before

    # A view's definition cannot be altered.
    res = ConfigResource(ResourceType.TOPIC, view, incremental_configs=[
        ConfigEntry("mq.view.filter", "b", incremental_operation=AlterConfigOpType.SET)])
    with pytest.raises(KafkaException) as ei:
        a.incremental_alter_configs([res])[res].result(T)
    assert ei.value.args[0].code() == KafkaError.INVALID_CONFIG

    # Its configs are its definition.
    desc = a.describe_configs([ConfigResource(ResourceType.TOPIC, view)])
    configs = list(desc.values())[0].result(T)
    assert configs["mq.view.source"].value == src
    assert configs["mq.view.filter"].value == "a"


def test_deleting_the_source_deletes_its_views(bootstrap):
    src = create_topic(bootstrap, uniq("view-del"), partitions=PARTS)
    view = create_view(bootstrap, uniq("view-del-v"), src, "*")
    a = admin(bootstrap)
    a.delete_topics([src], operation_timeout=T)[src].result(T)

    def gone():
        names = a.list_topics(timeout=10).topics
        return src not in names and view not in names
    wait_until(gone, timeout=30, what="source and view deleted")


SETTLED = "sluice_view_fetch_settled_batches_total"
DECODED = "sluice_view_fetch_decoded_batches_total"


def test_batches_appended_under_a_view_are_settled_without_decoding(broker):
    """A source's batches are tag-summarised on append once it has a view, so reading
    the view settles uniformly tagged batches without decoding them."""
    if not broker.metrics_port:
        pytest.skip("broker has no Prometheus metrics endpoint")
    bs = broker.bootstrap
    src = create_topic(bs, uniq("view-sum"), partitions=PARTS)
    view = create_view(bs, uniq("view-sum-v"), src, "vip5 || vip6")
    produce_uniform(bs, src, "vip5", 600, 0)
    produce_uniform(bs, src, "plain", 600, 1000)
    produce_uniform(bs, src, "vip6", 300, 2000)
    d0, s0 = broker.metric(DECODED), broker.metric(SETTLED)
    got = cf_consume_assigned(bs, view, range(PARTS), 900, timeout=60)
    assert len(got) == 900
    assert {tag_of(m[4]) for m in got} == {"vip5", "vip6"}
    assert broker.metric(DECODED) == d0, "uniform batches were decoded"
    assert broker.metric(SETTLED) > s0


@pytest.mark.needs_broker_control
def test_view_survives_a_restart(broker_factory):
    """Views are metadata: after a kill -9 the view still reads its source, and batches
    whose in-memory summaries were lost are decoded again."""
    b = broker_factory(name="views-restart")
    src = create_topic(b.bootstrap, uniq("view-rs"), partitions=PARTS)
    view = create_view(b.bootstrap, uniq("view-rs-v"), src, "vip6")
    delivered = produce_mixed(b.bootstrap, src, 1200)
    want = expected(delivered, lambda h: tag_of(h) == "vip6")
    b.restart(hard=True)
    got = cf_consume_assigned(b.bootstrap, view, range(PARTS), len(want), timeout=60)
    assert sorted((m[0], m[1]) for m in got) == want
    if b.metrics_port:
        assert b.metric(DECODED) > 0
