"""A tiny hand-written Kafka wire client for malformed-input tests.

Only what the tests need: framing, request headers v1/v2, ApiVersions v0 and
Metadata v4-v12 (parsed up to the first topic's error code and name).
"""

from __future__ import annotations

import socket
import struct
import time

API_PRODUCE = 0
API_METADATA = 3
API_API_VERSIONS = 18

ERR_UNKNOWN_TOPIC_OR_PARTITION = 3
ERR_LEADER_NOT_AVAILABLE = 5
ERR_UNSUPPORTED_VERSION = 35


# -- encoding ----------------------------------------------------------------

def i8(v):
    return struct.pack(">b", v)


def i16(v):
    return struct.pack(">h", v)


def i32(v):
    return struct.pack(">i", v)


def uvarint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def string(s):
    if s is None:
        return i16(-1)
    b = s.encode()
    return i16(len(b)) + b


def compact_string(s):
    if s is None:
        return uvarint(0)
    b = s.encode()
    return uvarint(len(b) + 1) + b


def request_header(api_key, api_version, correlation_id, client_id="compat-raw",
                   flexible=False):
    h = i16(api_key) + i16(api_version) + i32(correlation_id) + string(client_id)
    if flexible:
        h += uvarint(0)  # no tagged fields
    return h


def frame(payload):
    return i32(len(payload)) + payload


# -- decoding ------------------------------------------------------------------

class Reader:
    def __init__(self, data):
        self.data = data
        self.pos = 0

    def take(self, n):
        if self.pos + n > len(self.data):
            raise ValueError(f"short response: need {n} bytes at {self.pos}, have {len(self.data)}")
        b = self.data[self.pos:self.pos + n]
        self.pos += n
        return b

    def i8(self):
        return struct.unpack(">b", self.take(1))[0]

    def i16(self):
        return struct.unpack(">h", self.take(2))[0]

    def i32(self):
        return struct.unpack(">i", self.take(4))[0]

    def uvarint(self):
        shift = 0
        out = 0
        while True:
            b = self.take(1)[0]
            out |= (b & 0x7F) << shift
            if not b & 0x80:
                return out
            shift += 7

    def string(self):
        n = self.i16()
        return None if n < 0 else self.take(n).decode()

    def compact_string(self):
        n = self.uvarint()
        return None if n == 0 else self.take(n - 1).decode()

    def tagged_fields(self):
        for _ in range(self.uvarint()):
            self.uvarint()
            self.take(self.uvarint())

    def remaining(self):
        return len(self.data) - self.pos


# -- connection ----------------------------------------------------------------

class Conn:
    def __init__(self, host, port, timeout=10.0):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.corr = 0

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def send_raw(self, data):
        self.sock.sendall(data)

    def send_request(self, api_key, api_version, body=b"", flexible=False):
        self.corr += 1
        self.send_raw(frame(request_header(api_key, api_version, self.corr,
                                           flexible=flexible) + body))
        return self.corr

    def _recv_exact(self, n):
        buf = bytearray()
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise ConnectionError("connection closed by broker")
            buf += chunk
        return bytes(buf)

    def recv_frame(self, timeout=10.0):
        self.sock.settimeout(timeout)
        (n,) = struct.unpack(">i", self._recv_exact(4))
        return self._recv_exact(n)

    def closed_within(self, timeout):
        """True when the broker closes the connection (EOF or reset) within
        ``timeout`` seconds; any bytes it sends first are ignored."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                return False
            except (ConnectionResetError, ConnectionAbortedError, BrokenPipeError):
                return True
            if not chunk:
                return True


# -- requests --------------------------------------------------------------------

def parse_api_versions_v0(payload):
    """Returns (correlation_id, error_code, {api_key: (min, max)})."""
    r = Reader(payload)
    corr = r.i32()
    err = r.i16()
    n = r.i32()
    versions = {}
    for _ in range(max(n, 0)):
        key, lo, hi = r.i16(), r.i16(), r.i16()
        versions[key] = (lo, hi)
    return corr, err, versions


def api_versions(host, port, timeout=10.0):
    """ApiVersions v0 -> {api_key: (min, max)}."""
    with Conn(host, port, timeout) as c:
        corr = c.send_request(API_API_VERSIONS, 0)
        got_corr, err, versions = parse_api_versions_v0(c.recv_frame(timeout))
        assert got_corr == corr, f"correlation id {got_corr} != {corr}"
        assert err == 0, f"ApiVersions v0 error {err}"
        return versions


def metadata_request_body(version, topics, allow_auto_create, topic_ids=None):
    """``topics``: names (None: a null name, v10+); ``topic_ids``: 16-byte ids, one per
    topic (v10+; default: the zero uuid)."""
    flexible = version >= 9
    if not flexible:
        body = i32(len(topics)) + b"".join(string(t) for t in topics)
        if version >= 4:
            body += i8(1 if allow_auto_create else 0)
        if version >= 8:
            body += i8(0) + i8(0)  # include cluster / topic authorized operations
        return body
    body = uvarint(len(topics) + 1)
    for i, t in enumerate(topics):
        if version >= 10:
            body += topic_ids[i] if topic_ids else b"\x00" * 16
        body += compact_string(t) + uvarint(0)
    body += i8(1 if allow_auto_create else 0)
    if version <= 10:
        body += i8(0)  # include_cluster_authorized_operations
    body += i8(0)  # include_topic_authorized_operations
    body += uvarint(0)
    return body


def parse_metadata_topics(payload, version):
    """Parse a Metadata response far enough to return
    (correlation_id, [(error_code, name)]) for its topics."""
    flexible = version >= 9
    r = Reader(payload)
    corr = r.i32()
    if flexible:
        r.tagged_fields()
    r.i32()  # throttle_time_ms (v3+)
    nbrokers = r.uvarint() - 1 if flexible else r.i32()
    for _ in range(max(nbrokers, 0)):
        r.i32()  # node id
        r.compact_string() if flexible else r.string()  # host
        r.i32()  # port
        r.compact_string() if flexible else r.string()  # rack
        if flexible:
            r.tagged_fields()
    r.compact_string() if flexible else r.string()  # cluster id
    r.i32()  # controller id
    ntopics = r.uvarint() - 1 if flexible else r.i32()
    topics = []
    # Only the first topic is parsed in full detail; that is all tests need.
    for _ in range(min(max(ntopics, 0), 1)):
        err = r.i16()
        name = r.compact_string() if flexible else r.string()
        topics.append((err, name))
    return corr, topics


def metadata_response_summary(payload, version):
    """(correlation_id, brokers, [(error_code, name, topic_id)]) of a flexible (v10+)
    Metadata response, every topic parsed."""
    r = Reader(payload)
    corr = r.i32()
    r.tagged_fields()
    r.i32()  # throttle_time_ms
    brokers = r.uvarint() - 1
    for _ in range(max(brokers, 0)):
        r.i32(); r.compact_string(); r.i32(); r.compact_string(); r.tagged_fields()
    r.compact_string()  # cluster id
    r.i32()  # controller id
    topics = []
    for _ in range(max(r.uvarint() - 1, 0)):
        err = r.i16()
        name = r.compact_string()
        topic_id = r.take(16)
        r.i8()  # is_internal
        for _ in range(max(r.uvarint() - 1, 0)):
            r.i16(); r.i32(); r.i32(); r.i32()  # error, index, leader, leader epoch
            for _ in range(3):  # replicas, isr, offline replicas
                for _ in range(max(r.uvarint() - 1, 0)):
                    r.i32()
            r.tagged_fields()
        r.i32()  # topic authorized operations
        r.tagged_fields()
        topics.append((err, name, topic_id))
    return corr, brokers, topics


def pick_metadata_version(versions):
    lo, hi = versions.get(API_METADATA, (0, -1))
    for v in (8, 7, 6, 5, 4, 12, 11, 10, 9):
        if lo <= v <= hi:
            return v
    raise AssertionError(f"broker advertises no Metadata version in 4..12 (has {lo}..{hi})")


def metadata_topic_error(host, port, topic, allow_auto_create, timeout=10.0):
    """Send one Metadata request for ``topic``; returns (version, error_code, name)."""
    version = pick_metadata_version(api_versions(host, port, timeout))
    with Conn(host, port, timeout) as c:
        corr = c.send_request(API_METADATA, version,
                              metadata_request_body(version, [topic], allow_auto_create),
                              flexible=version >= 9)
        got_corr, topics = parse_metadata_topics(c.recv_frame(timeout), version)
        assert got_corr == corr
        assert topics, "Metadata response lists no topics"
        return version, topics[0][0], topics[0][1]


# -- record batches (magic 2) -----------------------------------------------------------

API_INIT_PRODUCER_ID = 22
API_OFFSET_COMMIT = 8


def offset_commit_v2_body(group, retention_ms, topic, offsets):
    """OffsetCommit v2 from a standalone committer (generation -1, no member id) of
    ``offsets`` ({partition: offset}) of ``topic``, kept ``retention_ms`` (-1: as long
    as the broker's offsets.retention.minutes)."""
    body = string(group) + i32(-1) + string("") + i64(retention_ms)
    body += i32(1) + string(topic) + i32(len(offsets))
    for partition, offset in sorted(offsets.items()):
        body += i32(partition) + i64(offset) + string("")
    return body


def parse_offset_commit_v2(payload):
    """(correlation_id, {(topic, partition): error_code}) of an OffsetCommit v2 response."""
    r = Reader(payload)
    corr = r.i32()
    errors = {}
    for _ in range(r.i32()):
        name = r.string()
        for _ in range(r.i32()):
            partition = r.i32()
            errors[(name, partition)] = r.i16()
    return corr, errors

ERR_NONE = 0
ERR_INVALID_REQUEST = 42
ERR_OUT_OF_ORDER_SEQUENCE_NUMBER = 45
ERR_DUPLICATE_SEQUENCE_NUMBER = 46


def _crc32c_table():
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_CRC32C = _crc32c_table()


def crc32c(data):
    c = 0xFFFFFFFF
    for b in data:
        c = _CRC32C[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def varint(n):
    return uvarint((n << 1) ^ (n >> 63))


def i64(v):
    return struct.pack(">q", v)


def record_batch(values, base_ts, producer_id=-1, producer_epoch=-1, base_sequence=-1,
                 base_offset=0):
    """An uncompressed magic-2 record batch of key-less records (a client's base offset
    is 0)."""
    recs = b""
    for i, value in enumerate(values):
        body = (i8(0) + varint(0) + varint(i) + varint(-1)
                + varint(len(value)) + value + varint(0))
        recs += varint(len(body)) + body
    after_crc = (i16(0) + i32(len(values) - 1) + i64(base_ts) + i64(base_ts)
                 + i64(producer_id) + i16(producer_epoch) + i32(base_sequence)
                 + i32(len(values)) + recs)
    crc = struct.pack(">I", crc32c(after_crc))
    after_length = i32(0) + i8(2) + crc + after_crc   # partition leader epoch, magic
    return i64(base_offset) + i32(len(after_length)) + after_length


def pick_version(versions, api_key, preferred):
    lo, hi = versions.get(api_key, (0, -1))
    for v in preferred:
        if lo <= v <= hi:
            return v
    raise AssertionError(f"broker advertises no usable version of API {api_key} ({lo}..{hi})")


PRODUCE_VERSIONS = (8, 7, 6, 5, 4, 3, 12, 11, 10, 9)


def produce_request_body(version, topic, partition, batch, acks=-1, timeout_ms=10000):
    if version < 9:
        return (string(None) + i16(acks) + i32(timeout_ms) + i32(1) + string(topic)
                + i32(1) + i32(partition) + i32(len(batch)) + batch)
    return (compact_string(None) + i16(acks) + i32(timeout_ms) + uvarint(2) + compact_string(topic)
            + uvarint(2) + i32(partition) + uvarint(len(batch) + 1) + batch + uvarint(0)
            + uvarint(0) + uvarint(0))


def parse_produce_response(payload, version, record_errors=False):
    """-> (correlation_id, error_code, base_offset) of the first partition; with
    ``record_errors``, also the batch indexes its record errors name (v8+)."""
    flexible = version >= 9
    r = Reader(payload)
    corr = r.i32()
    if flexible:
        r.tagged_fields()
    ntopics = r.uvarint() - 1 if flexible else r.i32()
    assert ntopics >= 1
    r.compact_string() if flexible else r.string()
    nparts = r.uvarint() - 1 if flexible else r.i32()
    assert nparts >= 1
    r.i32()
    err = r.i16()
    base_offset = struct.unpack(">q", r.take(8))[0]
    if not record_errors:
        return corr, err, base_offset
    assert version >= 8, version
    r.take(16)                                   # log append time, log start offset
    indexes = []
    for _ in range(r.uvarint() - 1 if flexible else r.i32()):
        indexes.append(r.i32())
        r.compact_string() if flexible else r.string()
        if flexible:
            r.tagged_fields()
    return corr, err, base_offset, indexes


def init_producer_id(conn, versions, producer=(-1, -1)):
    """-> (producer id, epoch); ``producer`` is the (id, epoch) the client names (v3+)."""
    err, pid, epoch = init_producer_id_answer(conn, versions, producer)
    assert err == 0, f"InitProducerId error {err}"
    return pid, epoch


def init_producer_id_answer(conn, versions, producer=(-1, -1)):
    """-> (error, producer id, epoch) of an InitProducerId without a transactional id."""
    preferred = (1, 0, 2, 3, 4) if producer == (-1, -1) else (4, 3)
    version = pick_version(versions, API_INIT_PRODUCER_ID, preferred)
    if version < 2:
        body = string(None) + i32(60000)
    else:
        body = compact_string(None) + i32(60000)
        if version >= 3:
            body += i64(producer[0]) + i16(producer[1])
        body += uvarint(0)
    corr = conn.send_request(API_INIT_PRODUCER_ID, version, body, flexible=version >= 2)
    r = Reader(conn.recv_frame())
    assert r.i32() == corr
    if version >= 2:
        r.tagged_fields()
    r.i32()  # throttle
    err = r.i16()
    pid = struct.unpack(">q", r.take(8))[0]
    epoch = r.i16()
    return err, pid, epoch


API_FETCH = 1


def fetch_one(conn, version, topic, partition, offset, max_wait_ms=100,
              partition_max_bytes=4 << 20, timeout=10.0):
    """One partition read with a raw, sessionless Fetch of a version from 4 to 11 (the
    versions before flexible encoding): returns (error code, high watermark, records)."""
    assert 4 <= version <= 11, version
    body = i32(-1) + i32(max_wait_ms) + i32(1) + i32(8 << 20) + i8(0)
    if version >= 7:
        body += i32(0) + i32(-1)                     # no session
    body += i32(1) + string(topic) + i32(1) + i32(partition)
    if version >= 9:
        body += i32(-1)                              # current leader epoch: no check
    body += i64(offset)
    if version >= 5:
        body += i64(-1)                              # log start offset (a follower's)
    body += i32(partition_max_bytes)
    if version >= 7:
        body += i32(0)                               # no forgotten topics
    if version >= 11:
        body += string("")                           # rack id
    corr = conn.send_request(API_FETCH, version, body)
    r = Reader(conn.recv_frame(timeout + max_wait_ms / 1000))
    assert r.i32() == corr
    r.i32()                                          # throttle
    if version >= 7:
        assert r.i16() == 0                          # top-level error
        r.i32()                                      # session id
    assert r.i32() == 1 and r.string() == topic
    assert r.i32() == 1 and r.i32() == partition
    error = r.i16()
    high_watermark = struct.unpack(">q", r.take(8))[0]
    r.take(8)                                        # last stable offset
    if version >= 5:
        r.take(8)                                    # log start offset
    aborted = r.i32()
    r.take(16 * max(aborted, 0))
    if version >= 11:
        r.i32()                                      # preferred read replica
    size = r.i32()
    return error, high_watermark, (r.take(size) if size > 0 else b"")


def stored_batches(host, port, topic, partition, timeout=10.0):
    """The record batches of one partition, from its start to its high watermark, read
    with raw Fetch v4 requests: a list of (base offset, records count, codec), the codec
    being the low three bits of the batch's attributes, as the broker stores it."""
    out = []
    offset = 0
    with Conn(host, port, timeout) as conn:
        while True:
            error, high_watermark, records = fetch_one(conn, 4, topic, partition, offset,
                                                       timeout=timeout)
            assert error == 0, f"fetch error {error}"
            before = offset
            pos = 0
            while pos + 61 <= len(records):
                base, length = struct.unpack(">qi", records[pos:pos + 12])
                if pos + 12 + length > len(records):
                    break                            # a cut batch ends a response
                attributes, last_delta = struct.unpack(">hi", records[pos + 21:pos + 27])
                count = struct.unpack(">i", records[pos + 57:pos + 61])[0]
                out.append((base, count, attributes & 0x07))
                offset = base + last_delta + 1
                pos += 12 + length
            if offset >= high_watermark:
                return out
            assert offset > before, f"no whole batch at offset {offset} (high watermark {high_watermark})"
