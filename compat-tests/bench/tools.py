"""The load generators: Kafka's own perf tools (JVM) and benchgen (Go, franz-go).

Each call returns a dict of figures. MB is 2**20 bytes, as Kafka's perf tools count it.
"""

import json
import os
import re
import resource
import subprocess
import time

from brokers import HERE, KAFKA_DIST

BENCHGEN = os.path.join(HERE, "gen", "benchgen")
TOOL_HEAP = "-Xmx1G"


class ToolError(RuntimeError):
    pass


# `taskset -c N` for the load generators under bench.py --pin; empty by default.
CLIENT_CPUS = []

# The last tool's CPU seconds (user + system, its whole process tree) and wall seconds,
# from start to exit: how much of the machine the load generator itself took.
last_usage = {"cpu_s": 0.0, "wall_s": 0.0}


def client_cores():
    """Cores the last tool kept busy on average over its run (its CPU over its wall time)."""
    wall = last_usage["wall_s"]
    return last_usage["cpu_s"] / wall if wall > 0 else 0.0


def _children_cpu():
    # Counts only children that have exited and been waited for: the tool just run, not
    # the broker, which runs on until the workload ends.
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _run(cmd, timeout, env=None, pin=True):
    if CLIENT_CPUS and pin:
        cmd = ["taskset", "-c", CLIENT_CPUS[0], *cmd]
    cpu0, wall0 = _children_cpu(), time.monotonic()
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired as e:
        raise ToolError(f"{' '.join(cmd[:3])} timed out after {timeout}s") from e
    last_usage["cpu_s"] = _children_cpu() - cpu0
    last_usage["wall_s"] = time.monotonic() - wall0
    if out.returncode != 0:
        raise ToolError(f"{' '.join(cmd[:4])} exited {out.returncode}:\n{out.stderr[-2000:]}"
                        f"\n{out.stdout[-2000:]}")
    return out.stdout


def _tool_env():
    return dict(os.environ, KAFKA_HEAP_OPTS=TOOL_HEAP)


# ProducerPerformance's summary line:
# "N records sent, R records/sec (M MB/sec), A ms avg latency, X ms max latency,
#  P50 ms 50th, P95 ms 95th, P99 ms 99th, P999 ms 99.9th."
_PRODUCER_SUMMARY = re.compile(
    r"(\d+) records sent, ([\d.]+) records/sec \(([\d.]+) MB/sec\), [\d.]+ ms avg latency, "
    r"([\d.]+) ms max latency, (\d+) ms 50th, \d+ ms 95th, (\d+) ms 99th, (\d+) ms 99.9th")


def perf_produce(bootstrap, topic, records, size, acks, extra_props=(), timeout=900):
    """kafka-producer-perf-test at full speed (--throughput -1), client defaults otherwise."""
    props = [f"bootstrap.servers={bootstrap}", f"acks={acks}", *extra_props]
    out = _run([os.path.join(KAFKA_DIST, "bin", "kafka-producer-perf-test"),
                "--topic", topic, "--num-records", str(records), "--record-size", str(size),
                "--throughput", "-1", "--producer-props", *props], timeout, _tool_env())
    m = None
    for line in out.splitlines():
        m = _PRODUCER_SUMMARY.search(line) or m
    if not m:
        raise ToolError(f"no summary line in producer perf test output:\n{out[-2000:]}")
    return {
        "records": int(m.group(1)),
        "records_per_s": float(m.group(2)),
        "mb_per_s": float(m.group(3)),
        "p50_ms": float(m.group(5)),
        "p99_ms": float(m.group(6)),
        "p999_ms": float(m.group(7)),
    }


def perf_consume(bootstrap, topic, records, group, partition_max_bytes=1 << 20, timeout=900):
    """kafka-consumer-perf-test; fetch.MB.sec leaves out the group join, as it should.
    Its --fetch-size is max.partition.fetch.bytes."""
    out = _run([os.path.join(KAFKA_DIST, "bin", "kafka-consumer-perf-test"),
                "--bootstrap-server", bootstrap, "--topic", topic,
                "--messages", str(records), "--group", group, "--timeout", "60000",
                "--fetch-size", str(partition_max_bytes)],
               timeout, _tool_env())
    lines = [line for line in out.splitlines() if line.strip()]
    header = [h.strip() for h in lines[-2].split(",")]
    values = [v.strip() for v in lines[-1].split(",")]
    row = dict(zip(header, values))
    try:
        consumed = int(row["data.consumed.in.nMsg"])
        result = {"records": consumed, "mb_per_s": float(row["fetch.MB.sec"]),
                  "records_per_s": float(row["fetch.nMsg.sec"])}
    except (KeyError, ValueError) as e:
        raise ToolError(f"unexpected consumer perf test output:\n{out[-2000:]}") from e
    if consumed < records:
        raise ToolError(f"consumer perf test read {consumed} of {records} records")
    return result


def benchgen(*args, timeout=900):
    # The ceiling is the machine's, both cores: its sender and receiver are never pinned.
    out = _run([BENCHGEN, *map(str, args)], timeout, pin=args[0] != "ceiling")
    lines = [line for line in out.splitlines() if line.strip().startswith("{")]
    if not lines:
        raise ToolError(f"benchgen {args[0]} printed no result:\n{out[-2000:]}")
    return json.loads(lines[-1])


def topic_args(topics):
    return ["--topics", ",".join(topics)]
