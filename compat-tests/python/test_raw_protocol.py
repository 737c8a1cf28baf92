"""10. Bad and edge-case input over a raw socket; the broker must survive it
and keep serving other connections."""

import random
import time

import pytest

import rawkafka as rk
from compat_util import cf_consume_assigned, create_topic, uniq, watermarks

CLOSE_TIMEOUT = 10.0


def assert_serving(broker):
    """A fresh connection still gets a valid ApiVersions answer."""
    versions = rk.api_versions(broker.host, broker.port)
    assert rk.API_API_VERSIONS in versions and rk.API_METADATA in versions


def test_api_versions_v0(broker):
    versions = rk.api_versions(broker.host, broker.port)
    lo, hi = versions[rk.API_API_VERSIONS]
    assert lo == 0 and hi >= 3
    for key in (0, 1, 2, 3, 8, 9, 10, 11, 12, 13, 14, 18, 19, 20, 22):
        assert key in versions, f"API key {key} not advertised"
        assert versions[key][0] <= versions[key][1]


def test_oversized_length_prefix_closes_connection(broker):
    with rk.Conn(broker.host, broker.port) as c:
        c.send_raw(rk.i32(0x7FFFFFFF) + b"\x00\x12\x00\x00\x00\x00\x00\x01")
        assert c.closed_within(CLOSE_TIMEOUT), \
            "broker kept the connection open after a 2 GiB frame length"
    assert_serving(broker)


def test_negative_length_prefix_closes_connection(broker):
    with rk.Conn(broker.host, broker.port) as c:
        c.send_raw(rk.i32(-5) + b"\x00" * 16)
        assert c.closed_within(CLOSE_TIMEOUT)
    assert_serving(broker)


def test_truncated_frame_then_close(broker):
    for _ in range(3):
        with rk.Conn(broker.host, broker.port) as c:
            c.send_raw(rk.i32(100) + rk.request_header(rk.API_API_VERSIONS, 0, 1)[:6])
    # half-sent frame on a connection that stays open must not block others
    with rk.Conn(broker.host, broker.port) as stuck:
        stuck.send_raw(rk.i32(64) + b"\x00\x03")
        assert_serving(broker)
    assert_serving(broker)


def test_random_garbage(broker):
    rnd = random.Random(1234)
    for i in range(20):
        with rk.Conn(broker.host, broker.port) as c:
            try:
                c.send_raw(bytes(rnd.getrandbits(8) for _ in range(rnd.randint(1, 600))))
            except OSError:
                pass
    assert_serving(broker)


def test_framed_garbage_body_closes_connection(broker):
    """A well-framed Metadata v1 request whose body claims a huge topic array."""
    with rk.Conn(broker.host, broker.port) as c:
        payload = rk.request_header(rk.API_METADATA, 1, 7) + rk.i32(0x7FFFFFF0) + b"\x00\x05abc"
        c.send_raw(rk.frame(payload))
        assert c.closed_within(CLOSE_TIMEOUT), "broker answered or hung on an unparsable request"
    assert_serving(broker)


def test_unknown_api_key_closes_connection(broker):
    with rk.Conn(broker.host, broker.port) as c:
        c.send_request(999, 0)
        assert c.closed_within(CLOSE_TIMEOUT), "broker did not close after API key 999"
    assert_serving(broker)


def test_unsupported_version_of_other_api_closes_connection(broker):
    """Kafka cannot parse a request of a version it does not know (Metadata
    v99) and closes the connection."""
    with rk.Conn(broker.host, broker.port) as c:
        c.send_request(rk.API_METADATA, 99, b"\x00", flexible=True)
        assert c.closed_within(CLOSE_TIMEOUT)
    assert_serving(broker)


def test_api_versions_unsupported_version(broker):
    """KIP-511: ApiVersions v99 is answered in v0 format with
    UNSUPPORTED_VERSION (35) and (at least) ApiVersions' own version range."""
    with rk.Conn(broker.host, broker.port) as c:
        body = rk.compact_string("compat-raw") + rk.compact_string("1.0") + rk.uvarint(0)
        corr = c.send_request(rk.API_API_VERSIONS, 99, body, flexible=True)
        got_corr, err, versions = rk.parse_api_versions_v0(c.recv_frame())
        assert got_corr == corr
        assert err == rk.ERR_UNSUPPORTED_VERSION
        assert rk.API_API_VERSIONS in versions, versions
        lo, hi = versions[rk.API_API_VERSIONS]
        assert lo == 0 and hi >= 3
        # the connection stays usable
        corr = c.send_request(rk.API_API_VERSIONS, 0)
        got_corr, err, _ = rk.parse_api_versions_v0(c.recv_frame())
        assert (got_corr, err) == (corr, 0)


def test_pipelined_requests_answered_in_order(broker):
    with rk.Conn(broker.host, broker.port) as c:
        corrs = [c.send_request(rk.API_API_VERSIONS, 0) for _ in range(20)]
        got = [rk.parse_api_versions_v0(c.recv_frame())[0] for _ in corrs]
        assert got == corrs


def test_metadata_unknown_topic_no_autocreate(broker):
    topic = uniq("raw-unknown")
    version, err, name = rk.metadata_topic_error(broker.host, broker.port, topic, False)
    assert (err, name) == (rk.ERR_UNKNOWN_TOPIC_OR_PARTITION, topic), f"Metadata v{version}"


def test_metadata_takes_topic_ids_only_from_v12(broker):
    """Metadata v10 and v11 carry topic ids, but Kafka refuses a request that uses one,
    or names a topic null, answering each topic asked for INVALID_REQUEST (a null name
    as ""); v12 finds a topic by its id."""
    lo, hi = rk.api_versions(broker.host, broker.port)[rk.API_METADATA]
    if not lo <= 10 <= 12 <= hi:
        pytest.skip(f"Metadata v{lo}..v{hi}")
    topic = create_topic(broker.bootstrap, uniq("raw-ids"), partitions=1)

    def ask(version, names, ids=None):
        with rk.Conn(broker.host, broker.port) as c:
            corr = c.send_request(rk.API_METADATA, version,
                                  rk.metadata_request_body(version, names, False, ids),
                                  flexible=True)
            got, brokers, topics = rk.metadata_response_summary(c.recv_frame(), version)
            assert got == corr
            return brokers, topics

    _, [(err, name, topic_id)] = ask(12, [topic])
    assert (err, name) == (0, topic) and topic_id != bytes(16)
    for v in (10, 11):
        assert ask(v, [topic], [topic_id]) == (0, [(rk.ERR_INVALID_REQUEST, topic, topic_id)]), f"v{v}"
        assert ask(v, [None]) == (0, [(rk.ERR_INVALID_REQUEST, "", bytes(16))]), f"v{v}"
        brokers, topics = ask(v, [topic])
        assert brokers >= 1 and topics == [(0, topic, topic_id)], f"v{v}"
    assert ask(12, [None], [topic_id])[1] == [(0, topic, topic_id)]


# -- produce edge cases ----------------------------------------------------------------------

def test_produce_acks0_gets_no_response(broker):
    topic = create_topic(broker.bootstrap, uniq("raw-acks0"), partitions=1)
    versions = rk.api_versions(broker.host, broker.port)
    pv = rk.pick_version(versions, rk.API_PRODUCE, rk.PRODUCE_VERSIONS)
    with rk.Conn(broker.host, broker.port) as c:
        batch = rk.record_batch([b"a0", b"a1"], int(time.time() * 1000))
        c.send_request(rk.API_PRODUCE, pv, rk.produce_request_body(pv, topic, 0, batch, acks=0),
                       flexible=pv >= 9)
        corr = c.send_request(rk.API_API_VERSIONS, 0)
        got_corr, err, _ = rk.parse_api_versions_v0(c.recv_frame())
        assert got_corr == corr, \
            f"first response has correlation id {got_corr}: the acks=0 Produce was answered"
    got = cf_consume_assigned(broker.bootstrap, topic, [0], 2)
    assert [m[3] for m in got] == [b"a0", b"a1"]


def test_produce_bad_crc_rejected(broker):
    topic = create_topic(broker.bootstrap, uniq("raw-crc"), partitions=1)
    versions = rk.api_versions(broker.host, broker.port)
    pv = rk.pick_version(versions, rk.API_PRODUCE, rk.PRODUCE_VERSIONS)
    batch = bytearray(rk.record_batch([b"payload"], int(time.time() * 1000)))
    batch[-3] ^= 0xFF   # corrupt a byte covered by the CRC
    with rk.Conn(broker.host, broker.port) as c:
        corr = c.send_request(rk.API_PRODUCE, pv,
                              rk.produce_request_body(pv, topic, 0, bytes(batch)),
                              flexible=pv >= 9)
        got_corr, err, _, record_errors = rk.parse_produce_response(c.recv_frame(), pv,
                                                                    record_errors=True)
        assert got_corr == corr
        assert err in (2, 87), f"corrupt batch got error {err}, want CORRUPT_MESSAGE (2)"
        # The whole batch is bad, not one record of it: no record errors, which the
        # Java producer would pin on record 0 and answer the others with a generic error.
        assert record_errors == []
    assert watermarks(broker.bootstrap, topic, [0]) == {0: (0, 0)}


def test_produce_a_batch_not_at_offset_0_is_refused(broker):
    """A client's batch starts at base offset 0 (the broker assigns offsets): any other
    is INVALID_RECORD, as Kafka's analyzeAndValidateRecords refuses it."""
    topic = create_topic(broker.bootstrap, uniq("raw-base"), partitions=1)
    versions = rk.api_versions(broker.host, broker.port)
    pv = rk.pick_version(versions, rk.API_PRODUCE, rk.PRODUCE_VERSIONS)
    batch = rk.record_batch([b"payload"], int(time.time() * 1000), base_offset=5)
    with rk.Conn(broker.host, broker.port) as c:
        corr = c.send_request(rk.API_PRODUCE, pv, rk.produce_request_body(pv, topic, 0, batch),
                              flexible=pv >= 9)
        got_corr, err, _ = rk.parse_produce_response(c.recv_frame(), pv)
        assert (got_corr, err) == (corr, 87)
    assert watermarks(broker.bootstrap, topic, [0]) == {0: (0, 0)}


def test_idempotent_duplicate_and_out_of_order_batches(broker):
    topic = create_topic(broker.bootstrap, uniq("raw-idem"), partitions=1)
    versions = rk.api_versions(broker.host, broker.port)
    pv = rk.pick_version(versions, rk.API_PRODUCE, rk.PRODUCE_VERSIONS)
    with rk.Conn(broker.host, broker.port) as c:
        pid, epoch = rk.init_producer_id(c, versions)
        assert pid >= 0 and epoch >= 0
        now = int(time.time() * 1000)

        def send(values, seq):
            batch = rk.record_batch(values, now, pid, epoch, seq)
            corr = c.send_request(rk.API_PRODUCE, pv,
                                  rk.produce_request_body(pv, topic, 0, batch), flexible=pv >= 9)
            got_corr, err, base = rk.parse_produce_response(c.recv_frame(), pv)
            assert got_corr == corr
            return err, base

        assert send([b"s0", b"s1"], 0) == (0, 0)
        assert send([b"s2"], 2) == (0, 2)
        # exact retry of the last batch: acknowledged again, stored once
        err, base = send([b"s2"], 2)
        assert err in (0, rk.ERR_DUPLICATE_SEQUENCE_NUMBER) and (err or base == 2), (err, base)
        # a gap in the sequence is refused
        err, _ = send([b"s9"], 9)
        assert err == rk.ERR_OUT_OF_ORDER_SEQUENCE_NUMBER, err
        assert send([b"s3"], 3) == (0, 3)
    got = cf_consume_assigned(broker.bootstrap, topic, [0], 4)
    assert [m[3] for m in got] == [b"s0", b"s1", b"s2", b"s3"]


def test_init_producer_id_without_transactions_always_gives_a_new_id(broker):
    """Kafka's TransactionCoordinator hands out a new id at epoch 0 to every
    InitProducerId without a transactional id, whatever id the client names: it
    cannot know the client owns it. An id without an epoch is INVALID_REQUEST."""
    versions = rk.api_versions(broker.host, broker.port)
    with rk.Conn(broker.host, broker.port) as c:
        pid, epoch = rk.init_producer_id(c, versions)
        assert epoch == 0
        again, epoch = rk.init_producer_id(c, versions, producer=(pid, 0))
        assert again != pid and epoch == 0
        assert rk.init_producer_id_answer(c, versions, producer=(pid, -1))[0] == 42
        assert rk.init_producer_id_answer(c, versions, producer=(-1, 0))[0] == 42


def describe_quorum(conn, topics):
    """DescribeQuorum v0 (flexible) for {topic: [partitions]}; the first
    partition's (topic, index, error code, leader id)."""
    body = rk.uvarint(len(topics) + 1)
    for name, partitions in topics.items():
        body += rk.compact_string(name) + rk.uvarint(len(partitions) + 1)
        body += b"".join(rk.i32(p) + rk.uvarint(0) for p in partitions)
        body += rk.uvarint(0)
    body += rk.uvarint(0)
    conn.send_request(55, 0, body, flexible=True)
    r = rk.Reader(conn.recv_frame())
    r.i32()  # correlation id
    r.tagged_fields()
    assert r.i16() == 0, "no top-level error"
    assert r.uvarint() - 1 == len(topics)
    name = r.compact_string()
    assert r.uvarint() >= 2, "a partition"
    return name, r.i32(), r.i16(), r.i32()


def test_describe_quorum_knows_only_the_metadata_log(broker):
    """KRaft's answer: the quorum's one partition, __cluster_metadata-0, led
    here; anything else asked for is UNKNOWN_TOPIC_OR_PARTITION."""
    with rk.Conn(broker.host, broker.port) as c:
        name, index, error, leader = describe_quorum(c, {"__cluster_metadata": [0]})
        assert (name, index, error) == ("__cluster_metadata", 0, 0)
        assert leader >= 0
        assert describe_quorum(c, {"__cluster_metadata": [1]})[:3] == ("__cluster_metadata", 1, 3)
        assert describe_quorum(c, {"other": [0]})[:3] == ("other", 0, 3)
        assert describe_quorum(c, {"__cluster_metadata": [0, 1]})[:3] == ("__cluster_metadata", 0, 3)
