"""Retry and dead-letter topics (G.retry, G.dlq) through librdkafka (confluent-kafka) and
kcat: a consumer of group G re-produces a record it fails on to G.retry; the broker
raises mq.retry.count, holds it for the topic's backoff, shows it again in G.retry, and
once it is out of retries (mq.retry.max) sends it to G.dlq with mq.dlq.reason."""

import time

import pytest
from confluent_kafka import KafkaException, Producer
from confluent_kafka.admin import NewTopic

from compat_util import admin, cf_consumer, cf_produce, create_topic, kcat, uniq, watermarks

T = 30


def hdict(headers):
    return {k: (v.decode() if v is not None else None) for k, v in headers or []}


def make_retry_topic(bootstrap, group, partitions=2, max_retries=3, backoff="300,300,300"):
    create_topic(bootstrap, f"{group}.retry", partitions,
                 config={"mq.retry.max": str(max_retries), "mq.retry.backoff.ms": backoff})
    return f"{group}.retry", f"{group}.dlq"


def run_group(bootstrap, group, topics, fails, until, timeout=40, tail=1.5):
    """Consumes `topics` as group G. A record whose key is in `fails` fails while
    fails[key](delivery number) says so: it is re-produced to G.retry with its headers
    and origin headers. Runs until `until(deliveries, succeeded)`, then `tail` seconds
    more to catch extra deliveries. Returns the headers of each delivery per key, and
    the successes per key."""
    retry = f"{group}.retry"
    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 0, "enable.idempotence": True})
    c = cf_consumer(bootstrap, group=group, **{"topic.metadata.refresh.interval.ms": 1000})
    c.subscribe(topics)
    deliveries, succeeded = {}, {}
    deadline = time.monotonic() + timeout
    stop_at = None
    try:
        while time.monotonic() < (stop_at or deadline):
            msgs = c.consume(num_messages=100, timeout=0.1)
            for m in msgs:
                if m.error():
                    raise KafkaException(m.error())
                key = m.key().decode()
                deliveries.setdefault(key, []).append(hdict(m.headers()))
                n = len(deliveries[key])
                if key in fails and fails[key](n):
                    origin = [("mq.origin.topic", m.topic().encode()),
                              ("mq.origin.partition", str(m.partition()).encode()),
                              ("mq.origin.offset", str(m.offset()).encode()),
                              ("mq.error", f"failure {n}".encode())]
                    kept = [(k, v) for k, v in (m.headers() or [])
                            if not k.startswith("mq.origin") and k != "mq.error"]
                    errors = []
                    p.produce(retry, value=m.value(), key=m.key(), headers=kept + origin,
                              on_delivery=lambda err, _m: err and errors.append(err))
                    assert p.flush(T) == 0 and not errors, errors
                else:
                    succeeded[key] = succeeded.get(key, 0) + 1
            if msgs:
                c.commit(asynchronous=False)
            if stop_at is None and until(deliveries, succeeded):
                stop_at = time.monotonic() + tail
        assert stop_at is not None, f"not done in {timeout}s: {deliveries}"
        return deliveries, succeeded
    finally:
        c.close()


def read_topic(bootstrap, topic, partitions, expected, timeout=10):
    from compat_util import cf_consume_assigned
    return cf_consume_assigned(bootstrap, topic, range(partitions), expected, timeout=timeout)


def group_with_records(bootstrap, n):
    """A group's source topic holding records k0..k{n-1}, and its retry topic."""
    group = uniq("g")
    source = create_topic(bootstrap, uniq("orders"), 2)
    retry, dlq = make_retry_topic(bootstrap, group)
    keys = {f"k{i}" for i in range(n)}
    assert not cf_produce(bootstrap, source, [
        {"key": k.encode(), "value": f"v-{k}".encode(), "headers": [("trace", k.encode())]}
        for k in sorted(keys)]).errors
    return group, source, retry, dlq, keys


def test_a_record_failing_three_times_then_succeeding(bootstrap):
    group, source, retry, dlq, keys = group_with_records(bootstrap, 10)
    deliveries, succeeded = run_group(bootstrap, group, [source, retry],
                                      {"k3": lambda n: n <= 3},
                                      until=lambda d, s: set(s) == keys)
    assert succeeded == {k: 1 for k in keys}, "every record handled once"
    k3 = deliveries["k3"]
    assert len(k3) == 4
    assert [h.get("mq.retry.count") for h in k3] == [None, "1", "2", "3"]
    assert all(h["trace"] == "k3" for h in k3), "headers are kept"
    assert k3[3]["mq.error"] == "failure 3" and k3[3]["mq.origin.topic"] == retry
    assert all(len(deliveries[k]) == 1 for k in keys - {"k3"})
    assert watermarks(bootstrap, dlq, [0, 1]) == {0: (0, 0), 1: (0, 0)}


def test_an_always_failing_record_ends_in_the_dlq(bootstrap):
    group, source, retry, dlq, keys = group_with_records(bootstrap, 6)
    deliveries, succeeded = run_group(
        bootstrap, group, [source, retry], {"k5": lambda n: True},
        until=lambda d, s: set(s) == keys - {"k5"} and len(d.get("k5", [])) >= 4, tail=2.0)
    assert len(deliveries["k5"]) == 4, "the original and mq.retry.max=3 retries"
    assert succeeded == {k: 1 for k in keys - {"k5"}}
    dead = read_topic(bootstrap, dlq, 2, 1)
    assert len(dead) == 1
    _p, _o, key, value, headers, _tt, _ts = dead[0]
    h = hdict(headers)
    assert (key, value) == (b"k5", b"v-k5")
    assert h["mq.retry.count"] == "4" and "mq.retry.max=3" in h["mq.dlq.reason"]
    assert h["mq.error"] == "failure 4"


def test_kcat_retry_count_and_dlq(bootstrap):
    """What a kcat user sees: the broker counts retries on the retry topic."""
    group = uniq("g")
    retry, dlq = make_retry_topic(bootstrap, group, partitions=1, max_retries=1, backoff="200")
    kcat(bootstrap, "-P", "-t", retry, "-p", "0", input=b"first\n")
    kcat(bootstrap, "-P", "-t", retry, "-p", "0", "-H", "mq.retry.count=1", input=b"second\n")
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if watermarks(bootstrap, retry, [0])[0][1] == 3 and watermarks(bootstrap, dlq, [0])[0][1] == 1:
            break
        time.sleep(0.1)
    again = read_topic(bootstrap, retry, 1, 1)
    assert [(m[3], hdict(m[4])["mq.retry.count"]) for m in again] == [(b"first", "1")]
    dead = read_topic(bootstrap, dlq, 1, 1)
    assert [(m[3], hdict(m[4])["mq.retry.count"]) for m in dead] == [(b"second", "2")]


def test_retry_configs_belong_to_retry_topics(bootstrap):
    a = admin(bootstrap)
    name = uniq("plain")
    fs = a.create_topics([NewTopic(name, 1, config={"mq.retry.max": "3"})],
                         operation_timeout=T, request_timeout=T)
    with pytest.raises(KafkaException) as e:
        fs[name].result(T)
    assert e.value.args[0].name() == "INVALID_CONFIG"
    group = uniq("g")
    fs = a.create_topics([NewTopic(f"{group}.retry", 1, config={"mq.retry.max": "-1"})],
                         operation_timeout=T, request_timeout=T)
    with pytest.raises(KafkaException):
        fs[f"{group}.retry"].result(T)
    bad = make_retry_topic(bootstrap, uniq("g"), partitions=1)[0]
    log = cf_produce(bootstrap, bad, [{"value": b"x", "partition": 0,
                                       "headers": [("mq.retry.count", b"many")]}])
    assert [e.name() for e, _ in log.errors] == ["INVALID_RECORD"]


def test_an_auto_created_retry_topic_brings_its_dlq(bootstrap):
    """Producing to a retry topic that does not exist creates it with the broker's
    defaults, and its dead-letter topic beside it."""
    from compat_util import topic_names, wait_until
    group = uniq("g")
    log = cf_produce(bootstrap, f"{group}.retry", [{"value": b"x"}])
    assert not log.errors and log.ok[0][1] == 0, "acknowledged at a gap offset"
    wait_until(lambda: {f"{group}.retry", f"{group}.dlq"} <= set(topic_names(bootstrap)), 20,
               what="retry and dead-letter topics")
    # Held for the default first backoff (10 s): not visible yet.
    assert watermarks(bootstrap, f"{group}.retry", [0])[0][1] == 1


def _delete(bootstrap, topic):
    from compat_util import topic_names, wait_until
    a = admin(bootstrap)   # kept until the result: a destroyed handle fails its futures
    fs = a.delete_topics([topic], operation_timeout=T, request_timeout=T)
    fs[topic].result(T)
    wait_until(lambda: topic not in topic_names(bootstrap), 20, what=f"{topic} deleted")


def _dead_letter(bootstrap, retry):
    """A record out of retries at once (mq.retry.max=1, count 1 given), to partition 1."""
    kcat(bootstrap, "-P", "-t", retry, "-p", "1", "-H", "mq.retry.count=1", input=b"dead\n")


def test_a_deleted_dlq_comes_back_for_its_dead_letters(bootstrap):
    """With auto-creation on, a dead letter whose G.dlq was deleted brings it back (with
    G.retry's partition count), as a producer's Metadata request would, and lands there."""
    from compat_util import topic_names, wait_until
    retry, dlq = make_retry_topic(bootstrap, uniq("g"), partitions=2, max_retries=1, backoff="200")
    _delete(bootstrap, dlq)
    _dead_letter(bootstrap, retry)
    wait_until(lambda: dlq in topic_names(bootstrap), 20, what=f"{dlq} created again")
    dead = read_topic(bootstrap, dlq, 2, 1, timeout=20)
    assert [(m[0], m[3], hdict(m[4])["mq.retry.count"]) for m in dead] == [(1, b"dead", "2")]


@pytest.mark.needs_broker_control
def test_without_auto_creation_dead_letters_wait_for_their_dlq(broker_factory):
    """With auto-creation off, the broker does not create the topic: the dead letter waits
    on disk until someone does, then lands there."""
    b = broker_factory(name="no-auto", config={"auto.create.topics.enable": False})
    retry, dlq = make_retry_topic(b.bootstrap, uniq("g"), partitions=2, max_retries=1, backoff="200")
    _delete(b.bootstrap, dlq)
    _dead_letter(b.bootstrap, retry)
    time.sleep(3)
    from compat_util import topic_names
    assert dlq not in topic_names(b.bootstrap), "created though auto-creation is off"
    create_topic(b.bootstrap, dlq, 2)
    dead = read_topic(b.bootstrap, dlq, 2, 1, timeout=20)
    assert [(m[0], m[3]) for m in dead] == [(1, b"dead")]
