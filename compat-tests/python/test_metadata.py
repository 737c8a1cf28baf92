"""1. Metadata and topic auto-creation."""

import json
import time

import pytest
from confluent_kafka import KafkaError

import rawkafka
from compat_util import (
    admin, cf_consume_assigned, cf_produce, create_topic, kcat, kp_consumer, kp_producer,
    topic_names, uniq, wait_until,
)


# -- auto-creation on -----------------------------------------------------------

def test_confluent_produce_autocreates_topic(bootstrap):
    topic = uniq("auto-cf")
    assert topic not in topic_names(bootstrap)
    log = cf_produce(bootstrap, topic, [{"key": b"k", "value": b"hello"}],
                     conf={"message.timeout.ms": 30000})
    assert not log.errors, log.errors
    assert len(log.ok) == 1
    wait_until(lambda: topic in topic_names(bootstrap), 10, what="auto-created topic in metadata")
    part = log.ok[0][0]
    msgs = cf_consume_assigned(bootstrap, topic, [part], 1)
    assert [(m[2], m[3]) for m in msgs] == [(b"k", b"hello")]


def test_kafka_python_produce_autocreates_topic(bootstrap):
    topic = uniq("auto-kp")
    p = kp_producer(bootstrap)
    try:
        md = p.send(topic, key=b"k", value=b"hello").get(timeout=30)
    finally:
        p.close()
    assert md.topic == topic and md.offset == 0
    wait_until(lambda: topic in topic_names(bootstrap), 10, what="auto-created topic in metadata")


@pytest.mark.kcat
def test_kcat_produce_autocreates_topic(bootstrap):
    topic = uniq("auto-kcat")
    kcat(bootstrap, "-P", "-t", topic, "-K", ":", input=b"k1:v1\nk2:v2\n")
    wait_until(lambda: topic in topic_names(bootstrap), 10, what="auto-created topic in metadata")
    msgs = kcat(bootstrap, "-C", "-t", topic, "-o", "beginning", "-e", "-q", "-c", "2",
                "-f", "%k=%s\n").stdout.decode().split()
    assert sorted(msgs) == ["k1=v1", "k2=v2"]


def test_raw_metadata_no_autocreate_flag_gives_unknown_topic(broker):
    """Metadata v4+ with allow_auto_topic_creation=false must not create the
    topic even when the broker auto-creates."""
    topic = uniq("raw-noauto")
    version, err, name = rawkafka.metadata_topic_error(broker.host, broker.port, topic, False)
    assert name == topic
    assert err == rawkafka.ERR_UNKNOWN_TOPIC_OR_PARTITION, f"Metadata v{version}: error {err}"
    time.sleep(0.5)
    assert topic not in topic_names(broker.bootstrap)


def test_raw_metadata_no_autocreate_flag_illegal_name_is_invalid(broker):
    """As Kafka's getTopicMetadata: a name no topic could have is INVALID_TOPIC_EXCEPTION,
    so clients fail at once rather than wait for it to appear."""
    for topic in ("bad name!", "x" * 250, ".."):
        version, err, name = rawkafka.metadata_topic_error(broker.host, broker.port, topic, False)
        assert err == 17, f"Metadata v{version} for {topic!r}: error {err}"


def test_raw_metadata_autocreate_flag_creates_topic(broker):
    topic = uniq("raw-auto")
    version, err, name = rawkafka.metadata_topic_error(broker.host, broker.port, topic, True)
    assert name == topic
    # Kafka answers LEADER_NOT_AVAILABLE (or already NONE) while creating.
    assert err in (0, rawkafka.ERR_LEADER_NOT_AVAILABLE,
                   rawkafka.ERR_UNKNOWN_TOPIC_OR_PARTITION), f"Metadata v{version}: error {err}"
    wait_until(lambda: topic in topic_names(broker.bootstrap), 10, what="auto-created topic")


# -- auto-creation off (separate managed broker) ---------------------------------

@pytest.fixture
def noauto_broker(broker_factory):
    return broker_factory(config={"auto.create.topics.enable": False}, name="noauto")


@pytest.mark.needs_broker_control
def test_autocreate_disabled_confluent(noauto_broker):
    bs = noauto_broker.bootstrap
    topic = uniq("noauto-cf")
    log = cf_produce(bs, topic, [{"value": b"x"}],
                     conf={"message.timeout.ms": 5000, "topic.metadata.propagation.max.ms": 1000},
                     flush_timeout=30)
    assert not log.ok, "produce to a missing topic succeeded with auto-create off"
    codes = {e.code() for e, _ in log.errors}
    assert codes <= {KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaError._UNKNOWN_TOPIC,
                     KafkaError._MSG_TIMED_OUT}, codes
    assert topic not in topic_names(bs)


@pytest.mark.needs_broker_control
def test_autocreate_disabled_kafka_python(noauto_broker):
    from kafka.errors import KafkaTimeoutError, UnknownTopicOrPartitionError
    bs = noauto_broker.bootstrap
    topic = uniq("noauto-kp")
    p = kp_producer(bs, max_block_ms=4000)
    try:
        with pytest.raises((KafkaTimeoutError, UnknownTopicOrPartitionError)):
            p.send(topic, value=b"x").get(timeout=10)
    finally:
        p.close(timeout=5)
    assert topic not in topic_names(bs)


@pytest.mark.needs_broker_control
def test_autocreate_disabled_raw_metadata(noauto_broker):
    topic = uniq("noauto-raw")
    version, err, name = rawkafka.metadata_topic_error(
        noauto_broker.host, noauto_broker.port, topic, True)
    assert name == topic
    assert err == rawkafka.ERR_UNKNOWN_TOPIC_OR_PARTITION, f"Metadata v{version}: error {err}"
    assert topic not in topic_names(noauto_broker.bootstrap)


@pytest.mark.needs_broker_control
def test_autocreate_disabled_explicit_create_still_works(noauto_broker):
    bs = noauto_broker.bootstrap
    topic = create_topic(bs, uniq("noauto-explicit"), partitions=2)
    log = cf_produce(bs, topic, [{"value": b"x", "partition": 1}])
    assert not log.errors and log.ok[0][:2] == (1, 0)


# -- metadata contents ----------------------------------------------------------------

def test_confluent_list_topics(bootstrap):
    topic = create_topic(bootstrap, uniq("md-cf"), partitions=6)
    md = admin(bootstrap).list_topics(timeout=10)
    assert len(md.brokers) >= 1
    broker_ids = set(md.brokers)
    for b in md.brokers.values():
        assert b.host and b.port > 0
    assert md.controller_id in broker_ids
    assert md.cluster_id, "cluster id missing from Metadata"
    t = md.topics[topic]
    assert t.error is None
    assert sorted(t.partitions) == list(range(6))
    for p in t.partitions.values():
        assert p.error is None
        assert p.leader in broker_ids
        assert p.leader in p.replicas and p.leader in p.isrs


def test_kafka_python_metadata(bootstrap):
    topic = create_topic(bootstrap, uniq("md-kp"), partitions=6)
    c = kp_consumer(bootstrap)
    try:
        assert topic in c.topics()
        assert c.partitions_for_topic(topic) == set(range(6))
    finally:
        c.close()


@pytest.mark.kcat
def test_kcat_list_metadata(bootstrap):
    topic = create_topic(bootstrap, uniq("md-kcat"), partitions=6)
    res = kcat(bootstrap, "-L", "-J")
    md = json.loads(res.stdout.decode())
    assert md["brokers"], md
    ids = {b["id"] for b in md["brokers"]}
    for b in md["brokers"]:
        host, port = b["name"].rsplit(":", 1)
        assert host and int(port) > 0
    topics = {t["topic"]: t for t in md["topics"]}
    assert topic in topics
    parts = topics[topic]["partitions"]
    assert sorted(p["partition"] for p in parts) == list(range(6))
    for p in parts:
        assert p["leader"] in ids
    # plain-text listing of one topic
    text = kcat(bootstrap, "-L", "-t", topic).stdout.decode()
    assert f'topic "{topic}" with 6 partitions' in text, text
