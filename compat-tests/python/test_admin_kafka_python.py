"""6b. Admin API through kafka-python's KafkaAdminClient."""

import time

import pytest

import kafka.errors as KE
from kafka import KafkaAdminClient, TopicPartition as KTP
from kafka.admin import AlterConfigOp, ConfigResource
from kafka.structs import OffsetAndMetadata

from compat_util import (
    cf_produce, create_topic, kp_consumer, kp_group_consumer, topic_names, topic_partition_count, uniq,
    wait_topic_ready, wait_until, watermarks,
)


@pytest.fixture
def kadmin(bootstrap):
    a = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=30000)
    yield a
    a.close()


def topic_cfg(kadmin, topic):
    return kadmin.describe_configs([ConfigResource("TOPIC", topic)],
                                   config_filter="all")["topic"][topic]


def test_create_and_delete_topics(bootstrap, kadmin):
    topic = uniq("kpa-create")
    res = kadmin.create_topics({topic: {"num_partitions": 3, "replication_factor": 1,
                                        "configs": {"retention.ms": "3600000"}}})
    assert res["topics"][0]["name"] == topic and res["topics"][0]["error_code"] == 0
    wait_topic_ready(bootstrap, topic, 3)
    assert topic in kadmin.list_topics()
    cfg = topic_cfg(kadmin, topic)
    assert cfg["retention.ms"]["value"] == "3600000"
    assert cfg["retention.ms"]["config_source"] == "DYNAMIC_TOPIC_CONFIG"

    with pytest.raises(KE.TopicAlreadyExistsError):
        kadmin.create_topics({topic: {"num_partitions": 3, "replication_factor": 1}})

    res = kadmin.delete_topics([topic])
    assert res["topics"][0]["error_code"] == 0
    wait_until(lambda: topic not in topic_names(bootstrap), 15, what="topic deletion")
    with pytest.raises(KE.UnknownTopicOrPartitionError):
        kadmin.delete_topics([topic])


def test_create_topics_validate_only_and_errors(bootstrap, kadmin):
    topic = uniq("kpa-validate")
    res = kadmin.create_topics({topic: {"num_partitions": 2, "replication_factor": 1}},
                               validate_only=True)
    assert res["topics"][0]["error_code"] == 0
    time.sleep(0.5)
    assert topic not in topic_names(bootstrap)

    with pytest.raises(KE.InvalidConfigurationError):
        kadmin.create_topics({uniq("kpa-badcfg"): {"num_partitions": 1, "replication_factor": 1,
                                                   "configs": {"cleanup.policy": "bogus"}}})
    with pytest.raises(KE.InvalidReplicationFactorError):
        kadmin.create_topics({uniq("kpa-badrf"): {"num_partitions": 1, "replication_factor": 3}})
    res = kadmin.create_topics({uniq("kpa-badparts"): {"num_partitions": 0,
                                                       "replication_factor": 1}},
                               raise_errors=False)
    assert res["topics"][0]["error_code"] == KE.InvalidPartitionsError.errno


def test_broker_default_partitions(bootstrap, kadmin):
    """num_partitions / replication_factor -1 take the broker defaults."""
    topic = uniq("kpa-defaults")
    res = kadmin.create_topics([topic])
    assert res["topics"][0]["error_code"] == 0
    wait_until(lambda: (topic_partition_count(bootstrap, topic) or 0) >= 1, 15,
               what="topic with default partitions")


def test_create_partitions(bootstrap, kadmin):
    topic = create_topic(bootstrap, uniq("kpa-parts"), partitions=2)
    res = kadmin.create_partitions({topic: 4})
    assert [r.error_code for r in res.results] == [0]
    wait_until(lambda: topic_partition_count(bootstrap, topic) == 4, 15, what="4 partitions")
    with pytest.raises(KE.InvalidPartitionsError):
        kadmin.create_partitions({topic: 3})
    with pytest.raises(KE.UnknownTopicOrPartitionError):
        kadmin.create_partitions({uniq("kpa-parts-missing"): 3})


def test_describe_and_alter_configs(bootstrap, kadmin):
    topic = create_topic(bootstrap, uniq("kpa-cfg"), partitions=1)
    cfg = topic_cfg(kadmin, topic)
    assert cfg["cleanup.policy"]["value"] == "delete"
    assert cfg["cleanup.policy"]["config_source"] == "DEFAULT_CONFIG"
    # only the modified ones with the default filter
    assert kadmin.describe_configs([ConfigResource("TOPIC", topic)])["topic"][topic] == {}

    res = kadmin.alter_configs([ConfigResource("TOPIC", topic, {"retention.ms": "1000",
                                                                 "max.message.bytes": "5000"})])
    assert res == {"topic": {topic: "OK"}}
    modified = kadmin.describe_configs([ConfigResource("TOPIC", topic)])["topic"][topic]
    assert {k: v["value"] for k, v in modified.items()} == {"retention.ms": "1000",
                                                             "max.message.bytes": "5000"}

    res = kadmin.alter_configs([ConfigResource("TOPIC", topic,
                                               {"retention.ms": (AlterConfigOp.DELETE, None)})])
    assert res == {"topic": {topic: "OK"}}
    modified = kadmin.describe_configs([ConfigResource("TOPIC", topic)])["topic"][topic]
    assert {k: v["value"] for k, v in modified.items()} == {"max.message.bytes": "5000"}

    res = kadmin.alter_configs([ConfigResource("TOPIC", topic, {"cleanup.policy": "bogus"})])
    assert "InvalidConfigurationError" in res["topic"][topic]

    # validate_only changes nothing
    res = kadmin.alter_configs([ConfigResource("TOPIC", topic, {"retention.ms": "2000"})],
                               validate_only=True)
    assert res == {"topic": {topic: "OK"}}
    assert topic_cfg(kadmin, topic)["retention.ms"]["config_source"] == "DEFAULT_CONFIG"


def test_alter_configs_non_incremental(bootstrap, kadmin):
    """Legacy AlterConfigs (API 33): kafka-python re-sends the other modified keys."""
    topic = create_topic(bootstrap, uniq("kpa-cfg-legacy"), partitions=1,
                         config={"retention.ms": "3600000"})
    res = kadmin.alter_configs([ConfigResource("TOPIC", topic, {"max.message.bytes": "6000"})],
                               incremental=False)
    assert res == {"topic": {topic: "OK"}}
    modified = kadmin.describe_configs([ConfigResource("TOPIC", topic)])["topic"][topic]
    assert {k: v["value"] for k, v in modified.items()} == {"retention.ms": "3600000",
                                                             "max.message.bytes": "6000"}


def test_describe_cluster_and_topics(bootstrap, kadmin):
    topic = create_topic(bootstrap, uniq("kpa-desc"), partitions=2)
    cl = kadmin.describe_cluster()
    assert cl["cluster_id"]
    ids = [b["broker_id"] for b in cl["brokers"]]
    assert ids and cl["controller_id"] in ids
    [desc] = kadmin.describe_topics([topic])
    assert desc["error_code"] == 0 and desc["name"] == topic and not desc["is_internal"]
    parts = sorted(desc["partitions"], key=lambda p: p["partition_index"])
    assert [p["partition_index"] for p in parts] == [0, 1]
    for p in parts:
        assert p["leader_id"] in ids and p["replica_nodes"] == [p["leader_id"]]
        assert p["isr_nodes"] == [p["leader_id"]]


def test_delete_records(bootstrap, kadmin):
    topic = create_topic(bootstrap, uniq("kpa-delrec"), partitions=1)
    cf_produce(bootstrap, topic, [{"value": b"x", "partition": 0}] * 20)
    res = kadmin.delete_records({KTP(topic, 0): 7})
    assert res[KTP(topic, 0)]["low_watermark"] == 7
    assert watermarks(bootstrap, topic, [0]) == {0: (7, 20)}
    c = kp_consumer(bootstrap)
    try:
        assert c.beginning_offsets([KTP(topic, 0)]) == {KTP(topic, 0): 7}
    finally:
        c.close()
    with pytest.raises(KE.OffsetOutOfRangeError):
        kadmin.delete_records({KTP(topic, 0): 25})


def test_consumer_groups(bootstrap, kadmin):
    topic = create_topic(bootstrap, uniq("kpa-grp"), partitions=2)
    cf_produce(bootstrap, topic, [{"value": f"v{i}".encode(), "partition": i % 2}
                                  for i in range(20)])
    group = uniq("kpa-grp")
    c = kp_group_consumer(bootstrap, topic, group_id=group, session_timeout_ms=10000,
                          heartbeat_interval_ms=1000)
    try:
        got = 0
        deadline = time.monotonic() + 30
        while got < 20 and time.monotonic() < deadline:
            got += sum(len(v) for v in c.poll(timeout_ms=200).values())
        assert got == 20
        c.commit()
        desc = kadmin.describe_groups([group])[group]
        assert desc["error"] is None
        assert desc["group_state"] == "Stable" and desc["protocol_type"] == "consumer"
        assert len(desc["members"]) == 1
        assignment = desc["members"][0]["member_assignment"]
        assert assignment["assigned_partitions"] == [{"topic": topic, "partitions": [0, 1]}]
        assert desc["protocol_data"] == "range"
        deleted = kadmin.delete_groups([group])
        assert deleted[group] == "NonEmptyGroupError"
    finally:
        c.close()

    groups = {g["group_id"]: g for g in kadmin.list_groups()}
    assert group in groups and groups[group]["protocol_type"] == "consumer"

    offsets = kadmin.list_group_offsets({group: None})[group]
    assert {tp: om.offset for tp, om in offsets.items()} == {KTP(topic, 0): 10, KTP(topic, 1): 10}

    res = kadmin.alter_group_offsets(group, {KTP(topic, 0): OffsetAndMetadata(3, "meta", None)})
    assert res == {KTP(topic, 0): KE.NoError}
    offsets = kadmin.list_group_offsets({group: [KTP(topic, 0)]})[group]
    assert offsets[KTP(topic, 0)].offset == 3
    assert offsets[KTP(topic, 0)].metadata == "meta"

    assert kadmin.delete_groups([group]) == {group: "OK"}
    assert group not in {g["group_id"] for g in kadmin.list_groups()}
    missing = uniq("kpa-nogroup")
    assert kadmin.delete_groups([missing]) == {missing: "GroupIdNotFoundError"}
