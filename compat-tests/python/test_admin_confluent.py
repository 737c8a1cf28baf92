"""6a. Admin API through confluent-kafka's AdminClient (librdkafka)."""

import time

import pytest
from confluent_kafka import (
    ConsumerGroupState, ConsumerGroupTopicPartitions, KafkaError, KafkaException, TopicCollection,
    TopicPartition,
)
from confluent_kafka.admin import (
    AlterConfigOpType, ConfigEntry, ConfigResource, ConfigSource, NewPartitions, NewTopic,
    ResourceType,
)

from compat_util import (
    admin, cf_consumer, cf_produce, create_topic, topic_names, topic_partition_count, uniq,
    wait_topic_ready, wait_until, watermarks,
)

T = 30
RT = T + 30   # result waits outlive request_timeout: never abandon a pending future


def err_code(fut):
    with pytest.raises(KafkaException) as ei:
        fut.result(RT)
    return ei.value.args[0].code()


def describe_topic_configs(a, topic):
    res = ConfigResource(ResourceType.TOPIC, topic)
    return a.describe_configs([res], request_timeout=T)[res].result(RT)


# -- topics --------------------------------------------------------------------------------

def test_create_topic_with_configs(bootstrap):
    a = admin(bootstrap)
    topic = uniq("adm-create")
    fs = a.create_topics([NewTopic(topic, 4, 1, config={"retention.ms": "3600000",
                                                        "cleanup.policy": "delete",
                                                        "max.message.bytes": "200000"})],
                         operation_timeout=T, request_timeout=T)
    assert fs[topic].result(RT) is None
    wait_topic_ready(bootstrap, topic, 4)
    cfg = describe_topic_configs(a, topic)
    assert cfg["retention.ms"].value == "3600000"
    assert cfg["retention.ms"].source == ConfigSource.DYNAMIC_TOPIC_CONFIG.value
    assert not cfg["retention.ms"].is_default
    assert cfg["max.message.bytes"].value == "200000"
    assert cfg["cleanup.policy"].value == "delete"
    # an untouched key is reported with its default
    assert cfg["segment.bytes"].is_default
    assert cfg["segment.bytes"].source in (ConfigSource.DEFAULT_CONFIG.value,
                                           ConfigSource.STATIC_BROKER_CONFIG.value)


def test_create_topic_validate_only(bootstrap):
    a = admin(bootstrap)
    topic = uniq("adm-validate")
    fs = a.create_topics([NewTopic(topic, 3, 1)], validate_only=True,
                         operation_timeout=T, request_timeout=T)
    assert fs[topic].result(RT) is None
    time.sleep(0.5)
    assert topic not in topic_names(bootstrap)
    # validate_only still validates
    fs = a.create_topics([NewTopic(topic, 3, 1, config={"cleanup.policy": "bogus"})],
                         validate_only=True, request_timeout=T)
    assert err_code(fs[topic]) == KafkaError.INVALID_CONFIG


def test_create_topic_errors(bootstrap):
    a = admin(bootstrap)
    existing = create_topic(bootstrap, uniq("adm-exists"), partitions=1)
    fs = a.create_topics([NewTopic(existing, 1, 1)], request_timeout=T)
    assert err_code(fs[existing]) == KafkaError.TOPIC_ALREADY_EXISTS

    bad_value = uniq("adm-badcfg")
    fs = a.create_topics([NewTopic(bad_value, 1, 1, config={"cleanup.policy": "bogus"})],
                         request_timeout=T)
    assert err_code(fs[bad_value]) == KafkaError.INVALID_CONFIG

    bad_rf = uniq("adm-badrf")
    fs = a.create_topics([NewTopic(bad_rf, 1, 3)], request_timeout=T)
    assert err_code(fs[bad_rf]) == KafkaError.INVALID_REPLICATION_FACTOR

    # Configs are checked before the counts, in Kafka's order.
    both = uniq("adm-badboth")
    fs = a.create_topics([NewTopic(both, 1, 3, config={"no.such.config": "1"})],
                         request_timeout=T)
    assert err_code(fs[both]) == KafkaError.INVALID_CONFIG

    time.sleep(0.5)
    names = topic_names(bootstrap)
    assert bad_value not in names and bad_rf not in names

    # An existing topic is TOPIC_ALREADY_EXISTS whatever else the request asks for, as
    # Kafka answers it before partitions, replication or configs.
    for new in (NewTopic(existing, 1, 3), NewTopic(existing, 1, 1, config={"no.such": "x"})):
        fs = a.create_topics([new], request_timeout=T)
        assert err_code(fs[existing]) == KafkaError.TOPIC_ALREADY_EXISTS
    # A name that differs from an existing one only by '.' against '_' is refused, and
    # a validate-only request says so too.
    clash = existing.replace("-", ".") + ".x"
    create_topic(bootstrap, clash, partitions=1)
    twin = clash.replace(".", "_")
    for validate_only in (True, False):
        fs = a.create_topics([NewTopic(twin, 1, 1)], validate_only=validate_only,
                             request_timeout=T)
        assert err_code(fs[twin]) == KafkaError.TOPIC_EXCEPTION


def test_create_many_topics_mixed_results(bootstrap):
    a = admin(bootstrap)
    existing = create_topic(bootstrap, uniq("adm-mixed-old"), partitions=1)
    fresh = uniq("adm-mixed-new")
    fs = a.create_topics([NewTopic(existing, 1, 1), NewTopic(fresh, 2, 1)], request_timeout=T)
    assert fs[fresh].result(RT) is None
    assert err_code(fs[existing]) == KafkaError.TOPIC_ALREADY_EXISTS
    wait_topic_ready(bootstrap, fresh, 2)


def test_delete_topics(bootstrap):
    a = admin(bootstrap)
    topic = create_topic(bootstrap, uniq("adm-del"), partitions=2)
    cf_produce(bootstrap, topic, [{"value": b"x"}])
    assert a.delete_topics([topic], operation_timeout=T, request_timeout=T)[topic].result(RT) is None
    wait_until(lambda: topic not in topic_names(bootstrap), 15, what="deleted topic to vanish")
    missing = uniq("adm-del-missing")
    assert err_code(a.delete_topics([missing], request_timeout=T)[missing]) == \
        KafkaError.UNKNOWN_TOPIC_OR_PART


def test_delete_topics_while_deletion_is_disabled(broker_factory):
    """delete.topic.enable=false: the whole request is refused before any topic is looked
    up (Kafka's ControllerApis.deleteTopics), so a missing topic gets
    TOPIC_DELETION_DISABLED too, and the existing one stays."""
    b = broker_factory(config={"delete.topic.enable": False})
    a = admin(b.bootstrap)
    topic = create_topic(b.bootstrap, uniq("adm-nodel"), partitions=1)
    missing = uniq("adm-nodel-missing")
    fs = a.delete_topics([topic, missing], request_timeout=T)
    assert err_code(fs[topic]) == KafkaError.TOPIC_DELETION_DISABLED
    assert err_code(fs[missing]) == KafkaError.TOPIC_DELETION_DISABLED
    assert topic in topic_names(b.bootstrap)


def test_delete_then_recreate_topic_is_empty(bootstrap):
    a = admin(bootstrap)
    topic = create_topic(bootstrap, uniq("adm-recreate"), partitions=1)
    cf_produce(bootstrap, topic, [{"value": b"old"}] * 5)
    a.delete_topics([topic], operation_timeout=T, request_timeout=T)[topic].result(RT)
    wait_until(lambda: topic not in topic_names(bootstrap), 15, what="topic deletion")

    def recreate():
        try:
            a.create_topics([NewTopic(topic, 1, 1)], request_timeout=T)[topic].result(RT)
            return True
        except KafkaException as e:
            # Kafka may report the old topic as still being deleted for a moment
            if e.args[0].code() == KafkaError.TOPIC_ALREADY_EXISTS:
                return False
            raise
    wait_until(recreate, 30, 0.5, "re-creation of a deleted topic")
    wait_topic_ready(bootstrap, topic, 1)
    assert watermarks(bootstrap, topic, [0]) == {0: (0, 0)}


def test_deleting_a_topic_deletes_its_committed_offsets(bootstrap):
    # As Kafka does: consumers of a topic re-created under the same name must not resume
    # at offsets committed against the old log.
    a = admin(bootstrap)
    topic = create_topic(bootstrap, uniq("adm-del-offsets"), partitions=1)
    kept = create_topic(bootstrap, uniq("adm-kept-offsets"), partitions=1)
    for t in (topic, kept):
        cf_produce(bootstrap, t, [{"value": f"v{i}".encode()} for i in range(20)])
    group = uniq("adm-del-offsets")
    c = cf_consumer(bootstrap, group=group)
    try:
        c.commit(offsets=[TopicPartition(topic, 0, 15), TopicPartition(kept, 0, 7)],
                 asynchronous=False)
    finally:
        c.close()
    req = [ConsumerGroupTopicPartitions(group, [TopicPartition(topic, 0), TopicPartition(kept, 0)])]

    def committed():
        res = a.list_consumer_group_offsets(req, request_timeout=T)[group].result(RT)
        return {tp.topic: tp.offset for tp in res.topic_partitions}
    assert committed() == {topic: 15, kept: 7}
    a.delete_topics([topic], operation_timeout=T, request_timeout=T)[topic].result(RT)
    wait_until(lambda: topic not in topic_names(bootstrap), 15, what="topic deletion")
    after = committed()
    assert after[topic] < 0, "a deleted topic's offsets survived it"
    assert after[kept] == 7, "another topic's offsets went with it"


def test_create_partitions(bootstrap):
    a = admin(bootstrap)
    topic = create_topic(bootstrap, uniq("adm-parts"), partitions=2)
    fs = a.create_partitions([NewPartitions(topic, 5)], operation_timeout=T, request_timeout=T)
    assert fs[topic].result(RT) is None
    wait_until(lambda: topic_partition_count(bootstrap, topic) == 5, 15, what="5 partitions")
    wait_topic_ready(bootstrap, topic, 5)
    log = cf_produce(bootstrap, topic, [{"value": b"new", "partition": 4}])
    assert not log.errors and log.ok[0][:2] == (4, 0)

    fs = a.create_partitions([NewPartitions(topic, 3)], request_timeout=T)
    assert err_code(fs[topic]) == KafkaError.INVALID_PARTITIONS
    fs = a.create_partitions([NewPartitions(topic, 5)], request_timeout=T)
    assert err_code(fs[topic]) == KafkaError.INVALID_PARTITIONS
    missing = uniq("adm-parts-missing")
    fs = a.create_partitions([NewPartitions(missing, 3)], request_timeout=T)
    assert err_code(fs[missing]) == KafkaError.UNKNOWN_TOPIC_OR_PART
    # validate_only changes nothing
    fs = a.create_partitions([NewPartitions(topic, 8)], validate_only=True, request_timeout=T)
    assert fs[topic].result(RT) is None
    time.sleep(0.5)
    assert topic_partition_count(bootstrap, topic) == 5


def test_describe_topics(bootstrap):
    a = admin(bootstrap)
    topic = create_topic(bootstrap, uniq("adm-desc"), partitions=3)
    desc = a.describe_topics(TopicCollection([topic]), request_timeout=T)[topic].result(RT)
    assert desc.name == topic
    assert not desc.is_internal
    assert sorted(p.id for p in desc.partitions) == [0, 1, 2]
    for p in desc.partitions:
        assert p.leader is not None and p.leader.id >= 0
        assert [r.id for r in p.replicas] == [p.leader.id]
        assert [r.id for r in p.isr] == [p.leader.id]
    missing = uniq("adm-desc-missing")
    fut = a.describe_topics(TopicCollection([missing]), request_timeout=T)[missing]
    assert err_code(fut) == KafkaError.UNKNOWN_TOPIC_OR_PART


def test_authorized_operations_are_all_without_acls(bootstrap):
    """Asked for, authorized operations are every one the resource supports, as Kafka
    reports them without an authorizer; not asked for, none are given."""
    from confluent_kafka.admin import AclOperation as Op
    a = admin(bootstrap)
    topic = create_topic(bootstrap, uniq("adm-ops"), partitions=1)
    desc = a.describe_topics(TopicCollection([topic]), request_timeout=T,
                             include_authorized_operations=True)[topic].result(RT)
    assert set(desc.authorized_operations) == {
        Op.READ, Op.WRITE, Op.CREATE, Op.DESCRIBE, Op.DELETE, Op.ALTER,
        Op.DESCRIBE_CONFIGS, Op.ALTER_CONFIGS}
    plain = a.describe_topics(TopicCollection([topic]), request_timeout=T)[topic].result(RT)
    assert not plain.authorized_operations
    cluster = a.describe_cluster(request_timeout=T, include_authorized_operations=True).result(RT)
    assert set(cluster.authorized_operations) == {
        Op.CREATE, Op.CLUSTER_ACTION, Op.DESCRIBE_CONFIGS, Op.ALTER_CONFIGS,
        Op.IDEMPOTENT_WRITE, Op.ALTER, Op.DESCRIBE}
    group = uniq("adm-ops")
    g = a.describe_consumer_groups([group], request_timeout=T,
                                   include_authorized_operations=True)[group].result(RT)
    assert set(g.authorized_operations) == {
        Op.READ, Op.DESCRIBE, Op.DELETE, Op.DESCRIBE_CONFIGS, Op.ALTER_CONFIGS}


# -- configs -----------------------------------------------------------------------------

def test_describe_configs(bootstrap):
    a = admin(bootstrap)
    topic = create_topic(bootstrap, uniq("adm-dcfg"), partitions=1)
    cfg = describe_topic_configs(a, topic)
    for key in ("cleanup.policy", "retention.ms", "max.message.bytes", "segment.bytes",
                "message.timestamp.type"):
        assert key in cfg, f"{key} missing from DescribeConfigs"
    assert cfg["cleanup.policy"].value == "delete"
    assert cfg["message.timestamp.type"].value == "CreateTime"

    md = a.list_topics(timeout=10)
    broker_id = str(next(iter(md.brokers)))
    res = ConfigResource(ResourceType.BROKER, broker_id)
    bcfg = a.describe_configs([res], request_timeout=T)[res].result(RT)
    assert bcfg, "broker DescribeConfigs returned no entries"

    missing = ConfigResource(ResourceType.TOPIC, uniq("adm-dcfg-missing"))
    fut = a.describe_configs([missing], request_timeout=T)[missing]
    assert err_code(fut) == KafkaError.UNKNOWN_TOPIC_OR_PART


def test_incremental_alter_configs(bootstrap):
    a = admin(bootstrap)
    topic = create_topic(bootstrap, uniq("adm-iac"), partitions=1)

    def alter(*entries, validate_only=False):
        res = ConfigResource(ResourceType.TOPIC, topic, incremental_configs=list(entries))
        return a.incremental_alter_configs([res], validate_only=validate_only,
                                           request_timeout=T)[res]

    assert alter(ConfigEntry("retention.ms", "7200000",
                             incremental_operation=AlterConfigOpType.SET),
                 ConfigEntry("max.message.bytes", "300000",
                             incremental_operation=AlterConfigOpType.SET)).result(RT) is None
    cfg = describe_topic_configs(a, topic)
    assert cfg["retention.ms"].value == "7200000"
    assert cfg["retention.ms"].source == ConfigSource.DYNAMIC_TOPIC_CONFIG.value
    assert cfg["max.message.bytes"].value == "300000"

    # DELETE returns a key to its default, leaving the others alone
    assert alter(ConfigEntry("retention.ms", None,
                             incremental_operation=AlterConfigOpType.DELETE)).result(RT) is None
    cfg = describe_topic_configs(a, topic)
    assert cfg["retention.ms"].is_default
    assert cfg["max.message.bytes"].value == "300000"

    # validate_only changes nothing
    assert alter(ConfigEntry("retention.ms", "1000", incremental_operation=AlterConfigOpType.SET),
                 validate_only=True).result(RT) is None
    assert describe_topic_configs(a, topic)["retention.ms"].is_default

    # Deleting a key the topic does not set is a no-op, whatever its name (Kafka writes
    # no record for it), and does not spoil the SET beside it; values are trimmed, as
    # Kafka's ConfigDef trims them.
    assert alter(ConfigEntry("no.such.config", None, incremental_operation=AlterConfigOpType.DELETE),
                 ConfigEntry("compression.type", " gzip ",
                             incremental_operation=AlterConfigOpType.SET)).result(RT) is None
    assert describe_topic_configs(a, topic)["compression.type"].value.strip() == "gzip"

    # errors
    assert err_code(alter(ConfigEntry("cleanup.policy", "bogus",
                                      incremental_operation=AlterConfigOpType.SET))) == \
        KafkaError.INVALID_CONFIG
    assert err_code(alter(ConfigEntry("no.such.config", "1",
                                      incremental_operation=AlterConfigOpType.SET))) == \
        KafkaError.INVALID_CONFIG
    missing = ConfigResource(ResourceType.TOPIC, uniq("adm-iac-missing"), incremental_configs=[
        ConfigEntry("retention.ms", "1000", incremental_operation=AlterConfigOpType.SET)])
    fut = a.incremental_alter_configs([missing], request_timeout=T)[missing]
    assert err_code(fut) == KafkaError.UNKNOWN_TOPIC_OR_PART


def test_append_and_subtract_on_a_list_config(bootstrap):
    """cleanup.policy is a LIST, as in Kafka: APPEND adds items not already there,
    SUBTRACT takes them out (to the empty list: keep everything); other configs refuse
    both with Kafka's message. Sluice does not compact, so "compact" is refused."""
    a = admin(bootstrap)
    topic = create_topic(bootstrap, uniq("adm-list"), partitions=1)

    def op(kind, name, value):
        res = ConfigResource(ResourceType.TOPIC, topic, incremental_configs=[
            ConfigEntry(name, value, incremental_operation=kind)])
        return a.incremental_alter_configs([res], request_timeout=T)[res]

    def policy():
        return describe_topic_configs(a, topic)["cleanup.policy"].value

    A, S = AlterConfigOpType.APPEND, AlterConfigOpType.SUBTRACT
    for kind, value, want in [(A, "delete", "delete"), (S, "nope", "delete"),
                              (A, "delete,delete", "delete"), (S, "delete", ""),
                              (A, "delete", "delete")]:
        assert op(kind, "cleanup.policy", value).result(RT) is None, (kind, value)
        assert policy() == want, (kind, value)
    assert err_code(op(A, "cleanup.policy", "compact")) == KafkaError.INVALID_CONFIG
    assert policy() == "delete", "a refused APPEND changes nothing"
    for kind, verb in [(A, "APPEND"), (S, "SUBTRACT")]:
        with pytest.raises(KafkaException) as ei:
            op(kind, "retention.ms", "5").result(RT)
        e = ei.value.args[0]
        assert e.code() == KafkaError.INVALID_CONFIG
        assert e.str() == f"Can't {verb} to key retention.ms because its type is not LIST."


def test_an_empty_cleanup_policy_keeps_every_segment(broker_factory):
    """With cleanup.policy empty, retention.ms deletes nothing (Kafka: "An empty list
    means infinite retention"); with delete back in the list it does."""
    b = broker_factory(config={"log.retention.check.interval.ms": 200})
    a = admin(b.bootstrap)
    topic = create_topic(b.bootstrap, uniq("adm-keep"), partitions=1,
                         config={"cleanup.policy": "", "retention.ms": "100"})
    assert not cf_produce(b.bootstrap, topic, [{"value": b"x", "partition": 0}] * 10).errors
    time.sleep(2.0)
    assert watermarks(b.bootstrap, topic, [0])[0] == (0, 10), "nothing deleted"
    res = ConfigResource(ResourceType.TOPIC, topic, incremental_configs=[
        ConfigEntry("cleanup.policy", "delete", incremental_operation=AlterConfigOpType.APPEND)])
    assert a.incremental_alter_configs([res], request_timeout=T)[res].result(RT) is None
    wait_until(lambda: watermarks(b.bootstrap, topic, [0])[0] == (10, 10), 15,
               what="retention to delete the records once cleanup.policy holds delete")


def test_alter_configs_legacy(bootstrap):
    """AlterConfigs (API 33) replaces the whole set of dynamic topic configs."""
    a = admin(bootstrap)
    topic = create_topic(bootstrap, uniq("adm-ac"), partitions=1,
                         config={"retention.ms": "3600000"})
    res = ConfigResource(ResourceType.TOPIC, topic, set_config={"max.message.bytes": "400000"})
    assert a.alter_configs([res], request_timeout=T)[res].result(RT) is None
    cfg = describe_topic_configs(a, topic)
    assert cfg["max.message.bytes"].value == "400000"
    assert cfg["retention.ms"].is_default, "AlterConfigs must reset keys it does not mention"


def test_topic_config_takes_effect(bootstrap):
    """Raising max.message.bytes at run time lets a bigger record in."""
    import os
    a = admin(bootstrap)
    topic = create_topic(bootstrap, uniq("adm-effect"), partitions=1,
                         config={"max.message.bytes": "1000"})
    log = cf_produce(bootstrap, topic, [{"value": os.urandom(3000)}],
                     conf={"message.timeout.ms": 20000})
    assert [e.code() for e, _ in log.errors] == [KafkaError.MSG_SIZE_TOO_LARGE]
    res = ConfigResource(ResourceType.TOPIC, topic, incremental_configs=[
        ConfigEntry("max.message.bytes", "100000", incremental_operation=AlterConfigOpType.SET)])
    a.incremental_alter_configs([res], request_timeout=T)[res].result(RT)

    def fits():
        log = cf_produce(bootstrap, topic, [{"value": os.urandom(3000)}],
                         conf={"message.timeout.ms": 20000})
        return not log.errors
    wait_until(fits, 15, 0.5, "a 3000-byte record to be accepted after raising the limit")


# -- cluster / records ----------------------------------------------------------------------

def test_describe_cluster(bootstrap):
    a = admin(bootstrap)
    desc = a.describe_cluster(request_timeout=T).result(RT)
    assert desc.cluster_id
    assert len(desc.nodes) >= 1
    ids = {n.id for n in desc.nodes}
    assert desc.controller is not None and desc.controller.id in ids
    host, port = bootstrap.rsplit(":", 1)
    assert any(n.port == int(port) for n in desc.nodes)


def test_delete_records(bootstrap):
    a = admin(bootstrap)
    topic = create_topic(bootstrap, uniq("adm-delrec"), partitions=2)
    cf_produce(bootstrap, topic, [{"value": f"v{i}".encode(), "partition": 0} for i in range(50)])
    tp = TopicPartition(topic, 0, 30)
    res = a.delete_records([tp], request_timeout=T)
    fut = next(iter(res.values()))
    assert fut.result(RT).low_watermark == 30
    assert watermarks(bootstrap, topic, [0]) == {0: (30, 50)}
    c = cf_consumer(bootstrap)
    try:
        c.assign([TopicPartition(topic, 0, 0)])   # below the log start: reset to earliest
        first = None
        deadline = time.monotonic() + 15
        while first is None and time.monotonic() < deadline:
            m = c.poll(0.2)
            if m is not None and not m.error():
                first = m
        assert first is not None and first.offset() == 30 and first.value() == b"v30"
    finally:
        c.close()
    # OFFSET_END (-1) deletes everything
    res = a.delete_records([TopicPartition(topic, 0, -1)], request_timeout=T)
    assert next(iter(res.values())).result(RT).low_watermark == 50
    # beyond the high watermark is an error
    res = a.delete_records([TopicPartition(topic, 1, 10)], request_timeout=T)
    assert err_code(next(iter(res.values()))) == KafkaError.OFFSET_OUT_OF_RANGE


# -- consumer groups --------------------------------------------------------------------------

def make_group_with_offsets(bootstrap, topic, group, consume=10):
    c = cf_consumer(bootstrap, group=group)
    try:
        c.subscribe([topic])
        got = 0
        deadline = time.monotonic() + 30
        while got < consume and time.monotonic() < deadline:
            m = c.poll(0.2)
            if m is not None and not m.error():
                got += 1
        assert got >= consume
        c.commit(offsets=[TopicPartition(topic, 0, consume)], asynchronous=False)
    finally:
        c.close()


def test_consumer_group_admin_lifecycle(bootstrap):
    a = admin(bootstrap)
    topic = create_topic(bootstrap, uniq("adm-grp"), partitions=1)
    cf_produce(bootstrap, topic, [{"value": f"v{i}".encode()} for i in range(20)])
    group = uniq("adm-grp")
    make_group_with_offsets(bootstrap, topic, group, 10)

    listed = a.list_consumer_groups(request_timeout=T).result(RT)
    mine = [g for g in listed.valid if g.group_id == group]
    assert mine, f"{group} not listed"
    assert mine[0].state == ConsumerGroupState.EMPTY
    assert not mine[0].is_simple_consumer_group

    desc = a.describe_consumer_groups([group], request_timeout=T)[group].result(RT)
    assert desc.group_id == group and desc.state == ConsumerGroupState.EMPTY
    assert desc.members == []

    req = [ConsumerGroupTopicPartitions(group, [TopicPartition(topic, 0)])]
    res = a.list_consumer_group_offsets(req, request_timeout=T)[group].result(RT)
    assert [(tp.topic, tp.partition, tp.offset) for tp in res.topic_partitions] == [(topic, 0, 10)]
    # all partitions of the group
    res = a.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group)],
                                        request_timeout=T)[group].result(RT)
    assert [(tp.topic, tp.partition, tp.offset) for tp in res.topic_partitions] == [(topic, 0, 10)]

    alt = [ConsumerGroupTopicPartitions(group, [TopicPartition(topic, 0, 5)])]
    res = a.alter_consumer_group_offsets(alt, request_timeout=T)[group].result(RT)
    assert [(tp.partition, tp.offset) for tp in res.topic_partitions] == [(0, 5)]
    assert all(tp.error is None for tp in res.topic_partitions)
    res = a.list_consumer_group_offsets(req, request_timeout=T)[group].result(RT)
    assert res.topic_partitions[0].offset == 5

    assert a.delete_consumer_groups([group], request_timeout=T)[group].result(RT) is None
    listed = a.list_consumer_groups(request_timeout=T).result(RT)
    assert group not in {g.group_id for g in listed.valid}
    res = a.list_consumer_group_offsets(req, request_timeout=T)[group].result(RT)
    assert res.topic_partitions[0].offset < 0, "offsets survived group deletion"

    fut = a.delete_consumer_groups([uniq("adm-nogroup")], request_timeout=T)
    assert err_code(next(iter(fut.values()))) == KafkaError.GROUP_ID_NOT_FOUND


def test_describe_and_delete_active_group(bootstrap):
    a = admin(bootstrap)
    topic = create_topic(bootstrap, uniq("adm-active"), partitions=3)
    group = uniq("adm-active")
    c = cf_consumer(bootstrap, group=group, **{"client.id": "active-member"})
    try:
        c.subscribe([topic])
        wait_until(lambda: (c.poll(0.1), len(c.assignment()) == 3)[1], 30,
                   what="consumer assignment")
        desc = a.describe_consumer_groups([group], request_timeout=T)[group].result(RT)
        assert desc.state == ConsumerGroupState.STABLE
        assert desc.partition_assignor == "range"
        assert len(desc.members) == 1
        member = desc.members[0]
        assert member.client_id == "active-member"
        assert sorted(tp.partition for tp in member.assignment.topic_partitions
                      if tp.topic == topic) == [0, 1, 2]
        fut = a.delete_consumer_groups([group], request_timeout=T)[group]
        assert err_code(fut) == KafkaError.NON_EMPTY_GROUP
    finally:
        c.close()
