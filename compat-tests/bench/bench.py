"""Sluice against Apache Kafka on the same machine, same load, one run: see README.md here.

Kafka is started, every selected workload runs against it, it is stopped; then Sluice is
started and the same workloads run against it. Each figure is the median of --runs runs
(min and max kept); ratios are Sluice's median over Kafka's, from this one invocation.
"""

import argparse
import datetime
import json
import os
import platform
import statistics
import sys
import time
from dataclasses import dataclass, field

import brokers
import tools
from brokers import REPO, KafkaBroker, SluiceBroker, drop_page_cache
from tools import benchgen, perf_consume, perf_produce, topic_args

MIB = 1 << 20
GIB = 1 << 30
PERF = "kafka-perf-tools"
FRANZ = "franz-go"
RAW = "raw-fetch"
BROKER = "broker"

# metric -> (unit, goal as (comparison, ratio)); "higher" metrics want ratio >= goal.
METRICS = {
    "produce_mb_per_s": ("MB/s", (">=", 1.5)),
    "consume_mb_per_s": ("MB/s", (">=", 1.5)),
    "produce_records_per_s": ("records/s", (">=", 1.5)),
    "produce_p50_ms": ("ms", None),
    "produce_p99_ms": ("ms", ("<=", 0.5)),
    "produce_p999_ms": ("ms", None),
    "e2e_p50_ms": ("ms", None),
    "e2e_p99_ms": ("ms", ("<=", 0.5)),
    "cpu_s_per_gb": ("CPU s/GiB", ("<=", 0.5)),
    "rss_peak_mb": ("MiB", ("<=", 0.2)),
    # Filtered consumption (issue 4): records the reader wanted, and what crossed the wire.
    "useful_records_per_s": ("records/s", None),
    "wire_mb": ("MB", None),
    # Delayed delivery (issue 4), Sluice only: RSS added by pending delayed records, and how
    # late released records arrive (receive time minus due time). Goals are absolute.
    "delay_pending_records": ("records", None),
    "delay_rss_added_mb": ("MiB", None),
    "delay_lateness_p50_ms": ("ms", None),
    "delay_lateness_p99_ms": ("ms", None),
}
DELAY = "delayed delivery"
DELAY_RSS_GOAL_MB = 256
DELAY_LATENESS_P99_GOAL_MS = 100
# Filtered consumption: on Sluice a view does the filtering; on Kafka, which has no views,
# the consumer reads the whole topic and filters it, as Kafka users do today.
VIEW_OR_CLIENT = "view (kafka: client filter)"
CLIENT_FILTER = "client filter"


@dataclass
class Workload:
    name: str
    about: str
    size: int                 # record value bytes
    records: int              # records per produce (full run)
    quick_records: int
    partitions: int = 6       # per topic
    topics: int = 1
    quick_topics: int = 0     # 0: same as topics
    quick_partitions: int = 0
    acks: str = "1"
    clients: tuple = (PERF, FRANZ)
    kind: str = "produce-consume"   # or "fan-out", "catch-up", "filter", "delay"
    tag_run: int = 1          # "filter": records per run of one tag (1: every batch mixed)
    e2e_rate: int = 0         # records/s for the end-to-end probe; 0: none
    topic_configs: tuple = ()
    producer_props: tuple = ()
    # max.partition.fetch.bytes of every reader (the Java consumer's default: 1 MiB).
    partition_max_bytes: int = MIB
    notes: list = field(default_factory=list)


# Kafka maps a sparse 10 MiB offset index and time index per partition (segment.index.bytes);
# on this machine's ext4 every first touch of such a mapping faults in readahead-filled zero
# pages, and thousands of partitions fill the page cache with them (10,000 partitions ran
# at under 1,000 records/s). Both brokers get 1 MiB indexes on the many-partition workloads:
# a concession to Kafka, applied to Sluice the same way.
SMALL_INDEXES = ("segment.index.bytes=1048576",)

WORKLOADS = [
    Workload("1kib-acks1", "1 KiB records, 6 partitions, acks=1",
             size=1024, records=1_000_000, quick_records=5_000, e2e_rate=5_000),
    Workload("1kib-acksall", "1 KiB records, 6 partitions, acks=all",
             size=1024, records=1_000_000, quick_records=5_000, acks="all", e2e_rate=5_000),
    Workload("100b", "100-byte records, 6 partitions, acks=1",
             size=100, records=3_000_000, quick_records=20_000, e2e_rate=20_000),
    Workload("1mib", "1 MiB records, 6 partitions, acks=1, readers at 2 MiB per partition",
             size=MIB, records=500, quick_records=10, e2e_rate=20,
             topic_configs=("max.message.bytes=2097152",),
             producer_props=("max.request.size=2097152", "batch.size=2097152"),
             # The readers' limit is raised with the producers' and the topic's: at the
             # 1 MiB default no batch of a 1 MiB record fits it, so KIP-74 lets only
             # the first partition of each response carry one, 1 MiB per round trip.
             partition_max_bytes=2 * MIB),
    Workload("fan-out", "4 consumer groups reading one 6-partition topic at once",
             size=1024, records=500_000, quick_records=5_000, clients=(FRANZ,), kind="fan-out"),
    Workload("catch-up", "2 GiB of 1 KiB records on 6 partitions read from the start",
             size=1024, records=2 * GIB // 1024, quick_records=20_000, kind="catch-up"),
    Workload("1000-partitions", "1 KiB records over one topic of 1,000 partitions",
             size=1024, records=500_000, quick_records=5_000, partitions=1000,
             quick_partitions=50, e2e_rate=5_000, topic_configs=SMALL_INDEXES),
    Workload("10000-partitions", "1 KiB records over 100 topics of 100 partitions",
             size=1024, records=500_000, quick_records=5_000, partitions=100, topics=100,
             quick_partitions=10, quick_topics=10, clients=(FRANZ,), e2e_rate=5_000,
             topic_configs=SMALL_INDEXES),
    Workload("filter-uniform", "10% of 1 KiB records tagged hot, in runs that fill whole batches",
             size=1024, records=1_000_000, quick_records=20_000, clients=(FRANZ,), kind="filter",
             tag_run=4096),
    Workload("filter-mixed", "10% of 1 KiB records tagged hot, every tenth record",
             size=1024, records=1_000_000, quick_records=20_000, clients=(FRANZ,), kind="filter"),
    Workload("delay", "Sluice only: 10 M pending delayed 100-byte records, then 10,000 "
             "delayed records/s released on time", size=100, records=10_000_000,
             quick_records=20_000, clients=(FRANZ,), kind="delay", e2e_rate=10_000),
]

HOT_ONE_IN = 10   # the filter workloads' selectivity: 10%

# The sender's SO_SNDBUF settings the ceiling is measured with (0: the kernel's
# autotuning): Kafka's and Sluice's defaults, and the kernel's.
CEILING_SEND_BUFFERS = (0, 102400, 262144)

# The ceiling's reader is a goroutine of the sending process (`one`: the goal's
# ceiling, the machine's best) or a process of its own (`two`: as a consumer is to a
# broker; performance.md section 24 shows why the two differ by up to 2.5x).
CEILING_READERS = {"one": "goroutine", "two": "process"}
# Row fields: a raw read over the run's best ceiling, and over the ceiling measured just
# before it (the goal, >= 0.8, is checked on the one-process paired figure).
CEILING_FIELDS = {"one": ("of_sendfile_ceiling", "of_paired_ceiling"),
                  "two": ("of_two_process_ceiling", "of_paired_two_process_ceiling")}


def hot_records(records, run):
    """How many of benchgen's records are tagged hot (benchgen produce --tag-*)."""
    return sum(1 for i in range(records) if (i // max(run, 1)) % HOT_ONE_IN == 0)


class Recorder:
    """Figures per (workload, client, metric, broker), one value per run."""

    def __init__(self):
        self.values = {}
        # Raw fetch over the sendfile ceilings (one and two processes) measured just
        # before it, per run.
        self.paired = {}
        # Cores the load generator kept busy in each run of a throughput figure.
        self.client_cores = {}

    def add(self, workload, client, metric, broker, value):
        key = (workload, client, metric)
        self.values.setdefault(key, {}).setdefault(broker, []).append(value)

    def add_paired_fraction(self, workload, broker, reader, fraction):
        self.paired.setdefault((workload, broker, reader), []).append(fraction)

    def add_client_cores(self, workload, client, metric, broker):
        """The cores the tool just run kept busy (its CPU over its wall time, start to
        exit): beside the throughput it measured, it tells a client that was busy
        throughout from one that waited for the broker."""
        key = (workload, client, metric)
        self.client_cores.setdefault(key, {}).setdefault(broker, []).append(tools.client_cores())

    def rows(self, ceilings):
        """`ceilings`: the run's best sendfile ceiling per reader (CEILING_READERS)."""
        rows = []
        for (workload, client, metric), per_broker in self.values.items():
            unit, goal = METRICS[metric]
            row = {"workload": workload, "client": client, "metric": metric, "unit": unit}
            for broker in ("sluice", "kafka"):
                vals = per_broker.get(broker, [])
                row[broker] = round(statistics.median(vals), 3) if vals else None
                row[f"{broker}_min"] = round(min(vals), 3) if vals else None
                row[f"{broker}_max"] = round(max(vals), 3) if vals else None
            row["runs"] = max(len(v) for v in per_broker.values())
            s, k = row["sluice"], row["kafka"]
            row["ratio"] = round(s / k, 3) if s is not None and k else None
            if goal:
                row["goal"] = f"{goal[0]} {goal[1]}"
                if row["ratio"] is not None:
                    r = row["ratio"]
                    row["met"] = r >= goal[1] if goal[0] == ">=" else r <= goal[1]
            for reader, ceiling in ceilings.items():
                if metric != "consume_mb_per_s" or not ceiling:
                    continue
                for broker in ("sluice", "kafka"):
                    if row[broker] is not None:
                        row[f"{broker}_{CEILING_FIELDS[reader][0]}"] = round(row[broker] / ceiling, 3)
            for broker, cores in self.client_cores.get((workload, client, metric), {}).items():
                row[f"{broker}_client_cores"] = round(statistics.median(cores), 2)
            for broker in ("sluice", "kafka"):
                for reader in CEILING_READERS:
                    paired = self.paired.get((workload, broker, reader)) if client == RAW else None
                    if metric == "consume_mb_per_s" and paired:
                        row[f"{broker}_{CEILING_FIELDS[reader][1]}"] = \
                            round(statistics.median(paired), 3)
            rows.append(row)
        return rows


def topics_of(w, quick):
    count = (w.quick_topics or w.topics) if quick else w.topics
    if count == 1:
        return [f"bench-{w.name}"]
    return [f"bench-{w.name}-{i}" for i in range(count)]


def run_workload(w, broker, rec, runs, quick, log, ceiling_now):
    topics = topics_of(w, quick)
    partitions = (w.quick_partitions or w.partitions) if quick else w.partitions
    records = w.quick_records if quick else w.records
    boot = broker.bootstrap
    configs = [a for c in w.topic_configs for a in ("--config", c)]
    created = benchgen("create", "--brokers", boot, *topic_args(topics),
                       "--partitions", partitions, *configs, timeout=1800)
    log(f"  created {created['partitions']} partitions in {created['seconds']:.1f} s")
    props = list(w.producer_props)
    group_seq = iter(range(1_000_000))

    def produce(client):
        if client == PERF:
            r = perf_produce(boot, topics[0], records, w.size, w.acks, props)
        else:
            r = benchgen("produce", "--brokers", boot, *topic_args(topics), "--records", records,
                         "--size", w.size, "--acks", w.acks, *batch_args(w))
        rec.add(w.name, client, "produce_mb_per_s", broker.name, r["mb_per_s"])
        rec.add_client_cores(w.name, client, "produce_mb_per_s", broker.name)
        rec.add(w.name, client, "produce_records_per_s", broker.name, r["records_per_s"])
        for p in ("p50", "p99", "p999"):
            rec.add(w.name, client, f"produce_{p}_ms", broker.name, r[f"{p}_ms"])
        log(f"  {client} produce: {r['mb_per_s']:.1f} MB/s, p99 {r['p99_ms']} ms, "
            f"client {tools.client_cores():.2f} cores")
        return records * w.size

    def consume(client, groups=0):
        if client == PERF:
            r = perf_consume(boot, topics[0], records, f"perf-{next(group_seq)}",
                             partition_max_bytes=w.partition_max_bytes)
        else:
            r = benchgen("consume", "--brokers", boot, *topic_args(topics), "--records", records,
                         "--groups", groups, "--group-prefix", f"bench-{next(group_seq)}-",
                         "--partition-max-bytes", w.partition_max_bytes)
        rec.add(w.name, client, "consume_mb_per_s", broker.name, r["mb_per_s"])
        rec.add_client_cores(w.name, client, "consume_mb_per_s", broker.name)
        log(f"  {client} consume{f' x{groups} groups' if groups else ''}: {r['mb_per_s']:.1f} MB/s, "
            f"client {tools.client_cores():.2f} cores")
        return records * w.size * max(groups, 1)

    def raw_fetch():
        # The machine's ceiling moves by 2x within an hour, and the raw read follows
        # gigabytes of writes the kernel may still be writing back: a read from page cache
        # is also set against a ceiling measured just before it, at the same moment. (The
        # catch-up read comes from disk, which that ceiling does not measure.)
        ceilings = ceiling_now() if w.kind != "catch-up" else {}
        r = benchgen("fetch", "--brokers", boot, *topic_args(topics),
                     "--partition-max-bytes", w.partition_max_bytes)
        rec.add(w.name, RAW, "consume_mb_per_s", broker.name, r["mb_per_s"])
        rec.add_client_cores(w.name, RAW, "consume_mb_per_s", broker.name)
        paired = ""
        for reader, ceiling in ceilings.items():
            rec.add_paired_fraction(w.name, broker.name, reader, r["mb_per_s"] / ceiling)
            paired += (f", {r['mb_per_s'] / ceiling:.2f} of the {reader}-process ceiling just "
                       f"before it ({ceiling:.0f} MB/s)")
        log(f"  {RAW}: {r['mb_per_s']:.1f} MB/s ({r['bytes'] / MIB:.0f} MB){paired}")
        return r["bytes"]

    if w.kind == "filter":
        run_filter_workload(w, broker, rec, runs, topics, records, log)
        return
    if w.kind == "delay":
        run_delay_workload(w, broker, rec, runs, topics, records, quick, log)
        return
    if w.kind in ("fan-out", "catch-up"):
        # The data is written once; each run reads all of it.
        produce(FRANZ)
    for run in range(runs):
        broker.reset_peak_rss()
        cpu0 = broker.cpu_seconds()
        moved = 0
        for client in w.clients:
            if w.kind == "produce-consume":
                moved += produce(client)
                moved += consume(client)
            elif w.kind == "fan-out":
                moved += consume(client, groups=4)
            elif w.kind == "catch-up":
                from_disk = drop_page_cache()
                note = ("read from disk (page cache dropped before each read)" if from_disk
                        else "read from page cache (dropping it was not permitted)")
                if note not in w.notes:
                    w.notes.append(note)
                moved += consume(client)
        if w.kind == "catch-up":
            drop_page_cache()
        if w.kind != "fan-out":
            moved += raw_fetch()
        cpu = broker.cpu_seconds() - cpu0
        rec.add(w.name, BROKER, "cpu_s_per_gb", broker.name, cpu / (moved / GIB))
        rec.add(w.name, BROKER, "rss_peak_mb", broker.name, broker.peak_rss_mb())
        if w.e2e_rate:
            seconds = 2 if quick else 10
            rate = max(w.e2e_rate // 10, 1) if quick else w.e2e_rate
            r = benchgen("e2e", "--brokers", boot, "--topic", topics[0], "--rate", rate,
                         "--seconds", seconds, "--size", w.size, "--acks", w.acks, *batch_args(w))
            rec.add(w.name, FRANZ, "e2e_p50_ms", broker.name, r["p50_ms"])
            rec.add(w.name, FRANZ, "e2e_p99_ms", broker.name, r["p99_ms"])
            log(f"  e2e at {rate}/s: p50 {r['p50_ms']:.1f} ms, p99 {r['p99_ms']:.1f} ms")


def run_filter_workload(w, broker, rec, runs, topics, records, log):
    """Tagged records, 10% hot; the hot ones are read through a view (Sluice) and by
    reading everything and filtering in the client (both brokers)."""
    boot = broker.bootstrap
    r = benchgen("produce", "--brokers", boot, *topic_args(topics), "--records", records,
                 "--size", w.size, "--tag-ratio", HOT_ONE_IN, "--tag-run", w.tag_run)
    log(f"  franz-go produce (tagged): {r['mb_per_s']:.1f} MB/s")
    hot = hot_records(records, w.tag_run)
    view = None
    if broker.name == "sluice":
        view = f"{topics[0]}.hot"
        benchgen("create", "--brokers", boot, "--topics", view, "--partitions", -1,
                 "--config", f"mq.view.source={topics[0]}", "--config", "mq.view.filter=hot")
    def read(topic, want):
        r = benchgen("consume", "--brokers", boot, "--topics", topic, "--records", want,
                     "--filter-tag", "hot")
        if r["useful_records"] < hot:
            raise RuntimeError(f"{topic}: {r['useful_records']} hot records of {hot}")
        return r

    for _ in range(runs):
        whole = read(topics[0], records)
        for client in (CLIENT_FILTER,) + (() if view else (VIEW_OR_CLIENT,)):
            rec.add(w.name, client, "useful_records_per_s", broker.name, whole["useful_records_per_s"])
            rec.add(w.name, client, "wire_mb", broker.name, whole["wire_bytes"] / 1e6)
        log(f"  client filter: {whole['useful_records_per_s']:.0f} hot records/s, "
            f"{whole['wire_bytes'] / 1e6:.1f} MB on the wire")
        if view:
            v = read(view, hot)
            rec.add(w.name, VIEW_OR_CLIENT, "useful_records_per_s", broker.name, v["useful_records_per_s"])
            rec.add(w.name, VIEW_OR_CLIENT, "wire_mb", broker.name, v["wire_bytes"] / 1e6)
            log(f"  view: {v['useful_records_per_s']:.0f} hot records/s, "
                f"{v['wire_bytes'] / 1e6:.1f} MB on the wire")


def run_delay_workload(w, broker, rec, runs, topics, records, quick, log):
    """Delayed delivery has no Kafka counterpart: Sluice's figures only, against the
    issue's absolute goals. Pending records are due in an hour, so they stay pending
    while the lateness probe runs beside them."""
    if broker.name != "sluice":
        note = "Kafka has no delayed delivery: Sluice only"
        if note not in w.notes:
            w.notes.append(note)
        return
    boot = broker.bootstrap
    for _ in range(runs):
        topic = f"{topics[0]}-{time.monotonic_ns()}"
        benchgen("create", "--brokers", boot, "--topics", topic, "--partitions", w.partitions)
        before = broker.rss_mb()
        broker.reset_peak_rss()
        r = benchgen("produce", "--brokers", boot, "--topics", topic, "--records", records,
                     "--size", w.size, "--delay-ms", 3_600_000, timeout=3600)
        time.sleep(2)   # let request buffers go back before reading the steady state
        added = broker.rss_mb() - before
        rec.add(w.name, DELAY, "delay_pending_records", broker.name, records)
        rec.add(w.name, DELAY, "delay_rss_added_mb", broker.name, added)
        log(f"  {records} pending delayed records ({r['mb_per_s']:.1f} MB/s produced): "
            f"RSS +{added:.1f} MiB (peak while producing {broker.peak_rss_mb() - before:.1f} MiB)")
        seconds = 2 if quick else 20
        rate = max(w.e2e_rate // 10, 1) if quick else w.e2e_rate
        r = benchgen("e2e", "--brokers", boot, "--topic", topic, "--rate", rate,
                     "--seconds", seconds, "--size", w.size, "--deliver-after", "2s")
        if r["lost"]:
            raise RuntimeError(f"delay e2e: {r['lost']} delayed records never arrived")
        rec.add(w.name, DELAY, "delay_lateness_p50_ms", broker.name, r["p50_ms"])
        rec.add(w.name, DELAY, "delay_lateness_p99_ms", broker.name, r["p99_ms"])
        log(f"  {rate} delayed records/s: lateness p50 {r['p50_ms']:.1f} ms, p99 {r['p99_ms']:.1f} ms")


def batch_args(w):
    if w.size >= MIB:
        return ["--batch-max-bytes", 2 * MIB]
    return []


def print_table(rows, out=sys.stdout):
    head = (f"{'workload':<18} {'client':<17} {'metric':<22} {'sluice':>10} {'kafka':>10} "
            f"{'ratio':>7}  {'goal':<12} client cores S/K")
    print(head, file=out)
    print("-" * len(head), file=out)
    for r in rows:
        s = "-" if r["sluice"] is None else f"{r['sluice']:.2f}"
        k = "-" if r["kafka"] is None else f"{r['kafka']:.2f}"
        ratio = "-" if r["ratio"] is None else f"{r['ratio']:.2f}"
        goal = r.get("goal", "")
        if "met" in r:
            goal += " ok" if r["met"] else " MISSED"
        cores = "/".join(f"{r[f'{b}_client_cores']:.2f}" if f"{b}_client_cores" in r else "-"
                         for b in ("sluice", "kafka"))
        print(f"{r['workload']:<18} {r['client']:<17} {r['metric']:<22} {s:>10} {k:>10} {ratio:>7}  "
              f"{goal:<12} {'' if cores == '-/-' else cores}".rstrip(), file=out)


def run_brokers(args, selected, runs, work, rec, versions, ceiling_now, log):
    """Each broker in turn runs the selected workloads."""
    sluice_bin = os.environ.get("SLUICE_BIN") or os.path.join(REPO, "target", "release", "sluice")
    for broker_name in args.brokers.split(","):
        broker = (KafkaBroker(os.path.join(work, "kafka")) if broker_name == "kafka"
                  else SluiceBroker(os.path.join(work, "sluice"), sluice_bin))
        versions[broker_name] = broker.version()
        # A full run gives each workload a fresh broker, so no workload pays for the
        # data or partitions of the one before. The smoke starts each broker once:
        # its figures mean nothing, and a JVM start per workload costs a minute.
        fresh_per_workload = not args.quick
        if not fresh_per_workload:
            broker.start()
        try:
            for w in selected:
                log(f"{broker_name}: {w.name} ({w.about})")
                if fresh_per_workload:
                    broker.start()
                try:
                    run_workload(w, broker, rec, runs, args.quick, log, ceiling_now)
                    if not broker.alive():
                        raise RuntimeError(f"{broker_name} died during {w.name}")
                finally:
                    if fresh_per_workload:
                        broker.stop()
        finally:
            if not fresh_per_workload:
                broker.stop()


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="smoke run: tiny loads, one run")
    ap.add_argument("--workload", action="append", help="run only this workload (repeatable)")
    ap.add_argument("--runs", type=int, help="runs per workload (default 3, quick 1)")
    ap.add_argument("--brokers", default="kafka,sluice", help="which brokers, in order")
    ap.add_argument("--out", default=os.path.join(REPO, "target", "bench"))
    ap.add_argument("--pin", metavar="BROKER_CPU,CLIENT_CPU",
                    help="pin the broker and the load generators to separate CPUs (e.g. 1,0)")
    ap.add_argument("--render", action="store_true",
                    help="only rewrite the Markdown tables from --out's JSON files")
    args = ap.parse_args()
    if args.render:
        render(args.out)
        return

    if args.pin:
        broker_cpu, client_cpu = args.pin.split(",")
        brokers.BROKER_CPUS[:] = [broker_cpu]
        tools.CLIENT_CPUS[:] = [client_cpu]
    names = [w.name for w in WORKLOADS]
    selected = [w for w in WORKLOADS if not args.workload or w.name in args.workload]
    unknown = set(args.workload or []) - set(names)
    if unknown:
        ap.error(f"unknown workload(s) {sorted(unknown)}; known: {', '.join(names)}")
    runs = args.runs or (1 if args.quick else 3)
    os.makedirs(args.out, exist_ok=True)
    work = os.path.join(args.out, "work")

    def log(msg):
        print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)

    os.makedirs(work, exist_ok=True)

    def best_ceiling(path, size, reader):
        """The ceiling is the machine's best: the sender's socket buffer changes it (on
        one machine a fixed 100 KiB SO_SNDBUF sent 2.7x as fast as the kernel's
        autotuned one), so each buffer a broker here may use is tried."""
        readings = {b: benchgen("ceiling", "--file", path, "--bytes", size, "--send-buffer", b,
                                "--receiver", CEILING_READERS[reader])
                    for b in CEILING_SEND_BUFFERS}
        best = max(readings, key=lambda b: readings[b]["mb_per_s"])
        return readings[best]["mb_per_s"], best

    def measure_ceilings():
        path = os.path.join(work, "ceiling.bin")
        out = {}
        for reader in CEILING_READERS:
            mb_per_s, buffer = best_ceiling(path, 64 * MIB if args.quick else 2 * GIB, reader)
            log(f"sendfile ceiling (loopback, page cache, {reader}-process): {mb_per_s:.0f} MB/s "
                f"(SO_SNDBUF {buffer or 'autotuned'})")
            out[reader] = mb_per_s
        os.remove(path)
        return out

    # Measured before and after the brokers; the higher figure is the ceiling, so a
    # noisy low reading cannot flatter the brokers' fractions of it.
    readings = [measure_ceilings()]

    paired_file = os.path.join(work, "ceiling-paired.bin")

    def ceiling_now():
        """The ceilings again, on a smaller file kept for the run, just before a raw read:
        the goal's (one process) last, right before it."""
        return {reader: best_ceiling(paired_file, 16 * MIB if args.quick else GIB, reader)[0]
                for reader in reversed(CEILING_READERS)}

    rec = Recorder()
    versions = {}
    try:
        run_brokers(args, selected, runs, work, rec, versions, ceiling_now, log)
    finally:
        if os.path.exists(paired_file):
            os.remove(paired_file)

    readings.append(measure_ceilings())
    ceilings = {reader: max(r[reader] for r in readings) for reader in CEILING_READERS}
    ceiling = ceilings["one"]
    rows = rec.rows(ceilings)
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump(rows, f, indent=1)
    meta = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join(["compat-tests/bench/run", *sys.argv[1:]]),
        "machine": f"{os.cpu_count()} cores, {mem_gib():.0f} GiB, {platform.machine()}, Linux {platform.release()}",
        "brokers": versions,
        "runs": runs,
        "pinned": args.pin or "no",
        "sendfile_ceiling_mb_per_s": ceiling,
        "sendfile_ceiling_readings": [r["one"] for r in readings],
        "two_process_ceiling_mb_per_s": ceilings["two"],
        "two_process_ceiling_readings": [r["two"] for r in readings],
        "checks": checks(rows),
        "workloads": {w.name: {"about": w.about, "notes": w.notes} for w in selected},
    }
    with open(os.path.join(args.out, "meta.json"), "w") as f:
        json.dump(meta, f, indent=1)
    render(args.out)
    print()
    print(f"{meta['date']} · {meta['machine']} · {runs} run(s) per figure (median) · "
          f"sendfile ceiling {ceiling:.0f} MB/s (two processes: {ceilings['two']:.0f} MB/s)")
    print_table(rows)
    for name, value in meta["checks"].items():
        print(f"{name}: {value}")
    for w in selected:
        for note in w.notes:
            print(f"{w.name}: {note}")
    print(f"\nresults: {os.path.join(args.out, 'results.json')}")


def markdown(rows, meta):
    """The table for README.md: one line per figure, medians with the min-max range."""
    def fig(r, broker):
        v = r[broker]
        if v is None:
            return "-"
        if r["runs"] > 1 and r[f"{broker}_min"] != r[f"{broker}_max"]:
            return f"{v:g} ({r[f'{broker}_min']:g}-{r[f'{broker}_max']:g})"
        return f"{v:g}"

    lines = [
        f"{meta['date'][:10]} · {meta['machine']} · `{meta['command']}` · "
        f"median of {meta['runs']} run(s), (min-max) · sendfile ceiling "
        f"{meta['sendfile_ceiling_mb_per_s']:.0f} MB/s{two_process_ceiling(meta)}",
        "",
        "| workload | client | metric | Sluice | Kafka | ratio (Sluice/Kafka) | goal | client cores (Sluice / Kafka) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        ratio = "-" if r["ratio"] is None else fmt_ratio(r["ratio"])
        goal = r.get("goal", "")
        if "met" in r:
            goal += " ✓" if r["met"] else " ✗"
        cores = " / ".join(f"{r[f'{b}_client_cores']:g}" if f"{b}_client_cores" in r else "-"
                           for b in ("sluice", "kafka"))
        lines.append(f"| {r['workload']} | {r['client']} | {r['metric']} ({r['unit']}) | "
                     f"{fig(r, 'sluice')} | {fig(r, 'kafka')} | {ratio} | {goal} | "
                     f"{'' if cores == '- / -' else cores} |")
    lines.append("")
    for name, value in meta["checks"].items():
        lines.append(f"- {name}: {value}")
    return "\n".join(lines) + "\n"


SUMMARY_COLUMNS = [
    ("produce MB/s", PERF, "produce_mb_per_s"),
    ("produce MB/s", FRANZ, "produce_mb_per_s"),
    ("consume MB/s", PERF, "consume_mb_per_s"),
    ("consume MB/s", FRANZ, "consume_mb_per_s"),
    ("consume MB/s", RAW, "consume_mb_per_s"),
    ("produce p99", FRANZ, "produce_p99_ms"),
    ("e2e p99", FRANZ, "e2e_p99_ms"),
    ("CPU s/GiB", BROKER, "cpu_s_per_gb"),
    ("peak RSS", BROKER, "rss_peak_mb"),
]


def fmt_ratio(r):
    return f"{r:.3f}" if r < 0.1 else f"{r:.2f}"


def summary_markdown(rows, meta):
    """One line per workload, Sluice/Kafka ratios only: the table for README.md."""
    by_key = {(r["workload"], r["client"], r["metric"]): r for r in rows}
    workloads = list(dict.fromkeys(r["workload"] for r in rows))
    head = [f"{label} ({client})" if client != BROKER else label
            for label, client, _ in SUMMARY_COLUMNS]
    lines = [
        f"{meta['date'][:10]} · {meta['machine']} · `{meta['command']}` · "
        f"Sluice's figure over Kafka's, medians of {meta['runs']} runs",
        "",
        "| workload | " + " | ".join(head) + " |",
        "|---|" + "---|" * len(head),
    ]
    filtered = []
    for w in workloads:
        if (w, DELAY, "delay_rss_added_mb") in by_key:
            continue   # Sluice only: in the checks
        if (w, VIEW_OR_CLIENT, "useful_records_per_s") in by_key:
            filtered.append(w)
            continue
        cells = []
        for _, client, metric in SUMMARY_COLUMNS:
            r = by_key.get((w, client, metric))
            cells.append("-" if r is None or r["ratio"] is None else fmt_ratio(r["ratio"]))
        lines.append(f"| {w} | " + " | ".join(cells) + " |")
    if filtered:
        lines += ["", "Filtered consumption (10% of records wanted): Sluice reads a view, Kafka "
                  "reads the whole topic and filters in the client.", "",
                  "| workload | wanted records/s | bytes on the wire |", "|---|---|---|"]
        for w in filtered:
            cells = [by_key.get((w, VIEW_OR_CLIENT, m)) for m in ("useful_records_per_s", "wire_mb")]
            lines.append(f"| {w} | " + " | ".join(
                "-" if r is None or r["ratio"] is None else fmt_ratio(r["ratio"]) for r in cells) + " |")
    return "\n".join(lines) + "\n"


def render(out_dir):
    """Rewrites results.md and results-summary.md from a finished run's JSON files."""
    with open(os.path.join(out_dir, "results.json")) as f:
        rows = json.load(f)
    with open(os.path.join(out_dir, "meta.json")) as f:
        meta = json.load(f)
    with open(os.path.join(out_dir, "results.md"), "w") as f:
        f.write(markdown(rows, meta))
    with open(os.path.join(out_dir, "results-summary.md"), "w") as f:
        f.write(summary_markdown(rows, meta))


def checks(rows):
    """The goals that are not a Sluice/Kafka ratio of one row."""
    def fig(workload, client, metric, broker="sluice"):
        for r in rows:
            if (r["workload"], r["client"], r["metric"]) == (workload, client, metric):
                return r[broker]
        return None

    out = {}
    wide = fig("10000-partitions", FRANZ, "produce_mb_per_s")
    six = fig("1kib-acks1", FRANZ, "produce_mb_per_s")
    if wide and six:
        out["sluice 10000-partition produce over its 6-partition produce (goal >= 0.8)"] = round(wide / six, 3)
    # The goal names throughput, not only produce: the reads are set the same way.
    for client in (FRANZ, RAW):
        wide = fig("10000-partitions", client, "consume_mb_per_s")
        six = fig("1kib-acks1", client, "consume_mb_per_s")
        if wide and six:
            out[f"sluice 10000-partition consume ({client}) over its 6-partition consume "
                "(goal >= 0.8)"] = round(wide / six, 3)
    rss = fig("delay", DELAY, "delay_rss_added_mb")
    pending = fig("delay", DELAY, "delay_pending_records")
    if rss is not None and pending:
        out[f"sluice RSS added by {pending:,.0f} pending delayed records, MiB "
            f"(goal <= {DELAY_RSS_GOAL_MB} for 10 M)"] = round(rss, 1)
    late = fig("delay", DELAY, "delay_lateness_p99_ms")
    if late is not None:
        out[f"sluice delayed-delivery lateness p99, ms (goal <= {DELAY_LATENESS_P99_GOAL_MS} "
            "at 10,000 releases/s)"] = late
    for r in rows:
        if r["client"] == RAW and "sluice_of_paired_ceiling" in r:
            out[f"sluice {r['workload']} raw fetch over the sendfile ceiling measured just "
                "before it (goal >= 0.8)"] = r["sluice_of_paired_ceiling"]
        if r["client"] == RAW and "sluice_of_sendfile_ceiling" in r:
            out[f"sluice {r['workload']} raw fetch over the run's best sendfile ceiling"] = \
                r["sluice_of_sendfile_ceiling"]
        if r["client"] == RAW and "sluice_of_paired_two_process_ceiling" in r:
            out[f"sluice {r['workload']} raw fetch over the two-process sendfile ceiling "
                "measured just before it (no goal)"] = r["sluice_of_paired_two_process_ceiling"]
    return out


def two_process_ceiling(meta):
    """The header's note of the two-process ceiling (runs before it have none)."""
    two = meta.get("two_process_ceiling_mb_per_s")
    return f" (reader in a second process: {two:.0f} MB/s)" if two else ""


def mem_gib():
    with open("/proc/meminfo") as f:
        return int(f.readline().split()[1]) / (1 << 20)


if __name__ == "__main__":
    main()
