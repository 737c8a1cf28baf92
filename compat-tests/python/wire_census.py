"""Wire census: which API keys and versions do the clients of this suite send?

A TCP proxy that forwards everything and tallies each request's
(client software, API key, version). Start a broker that advertises the
proxy's address, point the suite at the proxy, print the table:

    # real Kafka advertising the proxy port
    compat-tests/kafka-dist/start-kafka 19092 /tmp/k \
        advertised.listeners=PLAINTEXT://127.0.0.1:19093
    python wire_census.py 19093 127.0.0.1:19092 --out /tmp/census.txt &
    KAFKA_BOOTSTRAP=127.0.0.1:19093 ./run
    kill %1      # the table is written on SIGTERM / SIGINT

Not a test; pytest does not collect it.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import signal
import struct
import sys

API_NAMES = {
    0: "Produce", 1: "Fetch", 2: "ListOffsets", 3: "Metadata", 8: "OffsetCommit",
    9: "OffsetFetch", 10: "FindCoordinator", 11: "JoinGroup", 12: "Heartbeat",
    13: "LeaveGroup", 14: "SyncGroup", 15: "DescribeGroups", 16: "ListGroups",
    17: "SaslHandshake", 18: "ApiVersions", 19: "CreateTopics", 20: "DeleteTopics",
    21: "DeleteRecords", 22: "InitProducerId", 23: "OffsetForLeaderEpoch",
    24: "AddPartitionsToTxn", 25: "AddOffsetsToTxn", 26: "EndTxn", 28: "TxnOffsetCommit",
    29: "DescribeAcls", 30: "CreateAcls", 31: "DeleteAcls", 32: "DescribeConfigs",
    33: "AlterConfigs", 35: "DescribeLogDirs", 36: "SaslAuthenticate", 37: "CreatePartitions",
    42: "DeleteGroups", 43: "ElectLeaders", 44: "IncrementalAlterConfigs",
    47: "OffsetDelete", 48: "DescribeClientQuotas", 50: "DescribeUserScramCredentials",
    60: "DescribeCluster", 61: "DescribeProducers", 65: "DescribeTransactions",
    66: "ListTransactions", 68: "ConsumerGroupHeartbeat", 69: "ConsumerGroupDescribe",
    71: "GetTelemetrySubscriptions", 72: "PushTelemetry", 75: "DescribeTopicPartitions",
}

# (software, api_key, version) -> count
TALLY: collections.Counter = collections.Counter()


def read_uvarint(buf, pos):
    shift = out = 0
    while True:
        b = buf[pos]
        pos += 1
        out |= (b & 0x7F) << shift
        if not b & 0x80:
            return out, pos
        shift += 7


def software_of(frame):
    """client_software_name/version from an ApiVersions v3+ request, else None."""
    try:
        api_key, version = struct.unpack(">hh", frame[:4])
        if api_key != 18 or version < 3:
            return None
        pos = 8
        (n,) = struct.unpack(">h", frame[pos:pos + 2])
        pos += 2 + max(n, 0)
        tags, pos = read_uvarint(frame, pos)
        for _ in range(tags):
            _, pos = read_uvarint(frame, pos)
            size, pos = read_uvarint(frame, pos)
            pos += size
        n, pos = read_uvarint(frame, pos)
        name = frame[pos:pos + n - 1].decode()
        pos += n - 1
        n, pos = read_uvarint(frame, pos)
        ver = frame[pos:pos + n - 1].decode()
        return f"{name} {ver}"
    except Exception:
        return None


def client_id_of(frame):
    try:
        (n,) = struct.unpack(">h", frame[8:10])
        return frame[10:10 + n].decode() if n >= 0 else "-"
    except Exception:
        return "?"


async def pump_requests(reader, writer, label):
    software = None
    try:
        while True:
            head = await reader.readexactly(4)
            (n,) = struct.unpack(">i", head)
            frame = await reader.readexactly(n)
            if software is None:
                software = software_of(frame) or f"client.id={client_id_of(frame)}"
            api_key, version = struct.unpack(">hh", frame[:4])
            TALLY[(software, api_key, version)] += 1
            writer.write(head + frame)
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError, ValueError, struct.error):
        pass
    finally:
        writer.close()


async def pump_raw(reader, writer):
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            writer.write(data)
            await writer.drain()
    except ConnectionError:
        pass
    finally:
        writer.close()


async def handle(client_r, client_w, upstream):
    host, port = upstream.rsplit(":", 1)
    try:
        broker_r, broker_w = await asyncio.open_connection(host, int(port))
    except OSError:
        client_w.close()
        return
    await asyncio.gather(pump_requests(client_r, broker_w, "c->b"), pump_raw(broker_r, client_w))


def report():
    lines = []
    softwares = sorted({s for s, _, _ in TALLY})
    for sw in softwares:
        lines.append(f"== {sw}")
        per_key = collections.defaultdict(dict)
        for (s, k, v), n in TALLY.items():
            if s == sw:
                per_key[k][v] = n
        for k in sorted(per_key):
            vs = ", ".join(f"v{v}x{n}" for v, n in sorted(per_key[k].items()))
            lines.append(f"  {k:3d} {API_NAMES.get(k, '?'):<24} {vs}")
    return "\n".join(lines) + "\n"


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("listen_port", type=int)
    ap.add_argument("upstream")
    ap.add_argument("--out")
    args = ap.parse_args()
    server = await asyncio.start_server(lambda r, w: handle(r, w, args.upstream),
                                        "127.0.0.1", args.listen_port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        await stop.wait()
    text = report()
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)
    sys.stdout.write(text)


if __name__ == "__main__":
    asyncio.run(main())
