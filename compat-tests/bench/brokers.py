"""The two brokers under test, started the same way and measured the same way.

Both run single-node with their data on the same filesystem (under target/bench), no
fsync per write (Kafka's default: log.flush.interval.* unset; Sluice's defaults match),
1 GiB segments, and no initial rebalance delay. CPU time and peak RSS are read from
/proc for the broker's own process, so the load generators on the same machine are not
counted against either broker.
"""

import os
import shutil
import signal
import socket
import subprocess
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
KAFKA_DIST = os.path.join(REPO, "compat-tests", "kafka-dist")
CLK_TCK = os.sysconf("SC_CLK_TCK")


# CPU affinity prefixes (`taskset -c N`), set by bench.py --pin: the broker on one core,
# the load generators on the other, so each broker's own cost shows as throughput
# instead of being shared with its clients. Empty: no pinning (the default).
BROKER_CPUS = []


def pinned(cmd):
    return (["taskset", "-c", BROKER_CPUS[0]] if BROKER_CPUS else []) + cmd


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(port):
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


class Broker:
    """One broker process: start, stop, and what it cost (CPU seconds, peak RSS)."""

    name = "?"

    def __init__(self, workdir):
        self.workdir = workdir
        self.data_dir = os.path.join(workdir, "data")
        self.port = None
        self.pid = None

    @property
    def bootstrap(self):
        return f"127.0.0.1:{self.port}"

    def cpu_seconds(self):
        """User + system CPU time of the broker process (all its threads)."""
        with open(f"/proc/{self.pid}/stat") as f:
            # The command name may hold spaces; fields after it are fixed.
            fields = f.read().rsplit(")", 1)[1].split()
        utime, stime = int(fields[11]), int(fields[12])
        return (utime + stime) / CLK_TCK

    def reset_peak_rss(self):
        """Start a new peak-RSS window (Linux: writing 5 to clear_refs resets VmHWM)."""
        with open(f"/proc/{self.pid}/clear_refs", "w") as f:
            f.write("5")

    def _status_mb(self, field):
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024
        raise RuntimeError(f"no {field} in /proc status")

    def rss_mb(self):
        """Resident memory now."""
        return self._status_mb("VmRSS")

    def peak_rss_mb(self):
        return self._status_mb("VmHWM")

    def alive(self):
        try:
            os.kill(self.pid, 0)
            return True
        except (OSError, TypeError):
            return False


class KafkaBroker(Broker):
    """Apache Kafka 4.4, KRaft combined mode, with the stock 1 GiB heap of kafka-server-start.sh."""

    name = "kafka"

    def start(self):
        shutil.rmtree(self.workdir, ignore_errors=True)
        os.makedirs(self.workdir)
        self.port = free_port()
        out = subprocess.run(
            pinned([os.path.join(KAFKA_DIST, "start-kafka"), str(self.port), self.data_dir,
             "group.initial.rebalance.delay.ms=0", "log.segment.bytes=1073741824",
             "auto.create.topics.enable=false"]),
            check=True, capture_output=True, text=True)
        self.pid = int(out.stdout.strip().splitlines()[-1])

    def stop(self):
        subprocess.run([os.path.join(KAFKA_DIST, "stop-kafka"), self.data_dir], check=False)
        shutil.rmtree(self.workdir, ignore_errors=True)

    def version(self):
        return "Apache Kafka 4.4.0 (KRaft combined mode, -Xmx1G -Xms1G)"


class SluiceBroker(Broker):
    name = "sluice"

    def __init__(self, workdir, binary):
        super().__init__(workdir)
        self.binary = binary
        self.proc = None

    def start(self):
        shutil.rmtree(self.workdir, ignore_errors=True)
        os.makedirs(self.data_dir)
        self.port = free_port()
        config = os.path.join(self.workdir, "sluice.toml")
        with open(config, "w") as f:
            f.write('"group.initial.rebalance.delay.ms" = 0\n'
                    '"log.segment.bytes" = 1073741824\n'
                    '"auto.create.topics.enable" = false\n')
        log = open(os.path.join(self.workdir, "sluice.log"), "wb")
        self.proc = subprocess.Popen(
            pinned([self.binary, "--listen", self.bootstrap, "--data-dir", self.data_dir,
                    "--config", config]),
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True, env=dict(os.environ, SLUICE_LOG="warn"))
        self.pid = self.proc.pid
        deadline = time.monotonic() + 60
        while not port_open(self.port):
            if self.proc.poll() is not None:
                raise RuntimeError(f"sluice exited during startup; see {self.workdir}/sluice.log")
            if time.monotonic() > deadline:
                self.proc.kill()
                raise RuntimeError("sluice did not open its port within 60 s")
            time.sleep(0.05)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def version(self):
        out = subprocess.run([self.binary, "--version"], capture_output=True, text=True)
        return out.stdout.strip() or "sluice"


def drop_page_cache():
    """Drop clean page-cache pages so a read comes from disk; False if not permitted."""
    try:
        os.sync()
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("1")
        return True
    except OSError:
        return False
