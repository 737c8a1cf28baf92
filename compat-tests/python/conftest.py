"""Broker fixtures for the Python/kcat compat suite.

Contract (shared by all compat suites):

* ``KAFKA_BOOTSTRAP=host:port`` set: tests run against that broker; tests
  marked ``needs_broker_control`` (restart, kill -9, metrics, brokers with a
  special config) are skipped.
* otherwise the Sluice binary (``$SLUICE_BIN``, default
  ``<repo>/target/release/sluice``) is started as::

      sluice --listen 127.0.0.1:<port> --data-dir <tmp> \
             --metrics-listen 127.0.0.1:<port> --config <file.toml>

  where the TOML file holds flat, Kafka-named keys.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
DEFAULT_SLUICE_BIN = os.path.join(REPO_ROOT, "target", "release", "sluice")

# Broker configuration every managed broker gets unless a test overrides it.
BASE_CONFIG = {
    "group.initial.rebalance.delay.ms": 0,
    "auto.create.topics.enable": True,
}

_PROM_LINE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})?\s+(\S+)")

# Broker logs are copied here when a managed broker's temp dir is removed.
LOG_KEEP_DIR = os.path.join(tempfile.gettempdir(), "sluice-compat-python-logs")

START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 30.0


def external_bootstrap():
    return os.environ.get("KAFKA_BOOTSTRAP") or None


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def toml_value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    s = str(v).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{s}"'


def write_toml(path, config):
    with open(path, "w") as f:
        f.write("# written by compat-tests/python/conftest.py\n")
        for k, v in config.items():
            f.write(f'"{k}" = {toml_value(v)}\n')


def port_open(host, port, timeout=0.5):
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


class BrokerError(Exception):
    pass


class Broker:
    """A broker under test.

    ``bootstrap`` is ``host:port``. ``controllable`` is False for an external
    (``KAFKA_BOOTSTRAP``) broker, which the suite never starts or stops.
    """

    def __init__(self, name, bootstrap=None, bin_path=None, config=None):
        self.name = name
        self.config = dict(BASE_CONFIG)
        self.config.update(config or {})
        self.proc = None
        self.last_exit_code = None
        # Bytes: started under this RLIMIT_FSIZE, a file written past it fails
        # with EFBIG, partway through a write as on a full disk.
        self.file_size_limit = None
        if bootstrap:
            self.controllable = False
            self.bootstrap = bootstrap
            self.host, port = bootstrap.rsplit(":", 1)
            self.port = int(port)
            self.metrics_port = None
            self.workdir = None
            self.data_dir = None
            self.log_path = None
            self.bin_path = None
        else:
            self.controllable = True
            self.bin_path = bin_path
            self.host = "127.0.0.1"
            self.port = free_port()
            self.metrics_port = free_port()
            while self.metrics_port == self.port:
                self.metrics_port = free_port()
            self.bootstrap = f"{self.host}:{self.port}"
            self.workdir = tempfile.mkdtemp(prefix=f"sluice-{name}-")
            self.data_dir = os.path.join(self.workdir, "data")
            os.makedirs(self.data_dir)
            self.config_path = os.path.join(self.workdir, "sluice.toml")
            self.log_path = os.path.join(self.workdir, "broker.log")
            write_toml(self.config_path, self.config)

    # -- lifecycle -----------------------------------------------------------

    def _require_control(self):
        if not self.controllable:
            raise BrokerError("external broker (KAFKA_BOOTSTRAP) cannot be controlled")

    def command(self):
        return [
            self.bin_path,
            "--listen", f"{self.host}:{self.port}",
            "--data-dir", self.data_dir,
            "--metrics-listen", f"{self.host}:{self.metrics_port}",
            "--config", self.config_path,
        ]

    def start(self, timeout=START_TIMEOUT_S):
        self._require_control()
        if self.proc is not None and self.proc.poll() is None:
            raise BrokerError("broker already running")
        if not self.bin_path or not os.path.exists(self.bin_path):
            raise BrokerError(
                f"Sluice binary not found at {self.bin_path!r}: build it "
                "(cargo build --release) or set SLUICE_BIN, or set "
                "KAFKA_BOOTSTRAP to test a running broker")
        cmd = self.command()
        with open(self.log_path, "ab") as log:
            log.write(f"\n===== start {time.strftime('%H:%M:%S')}: {' '.join(cmd)}\n".encode())
            log.flush()
            env = dict(os.environ, RUST_BACKTRACE="1")
            if self.file_size_limit:
                # prlimit(1) sets the limit and execs the broker (no preexec_fn: this
                # process runs client threads). The limit holds for its log too, which
                # the default level keeps small.
                cmd = ["prlimit", f"--fsize={self.file_size_limit}", "--"] + cmd
                env["SLUICE_LOG"] = "info,openraft=warn"
            self.proc = subprocess.Popen(
                cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True, env=env)
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                code = self.proc.returncode
                self.proc = None
                raise BrokerError(
                    f"broker exited with code {code} during startup\n--- broker log ---\n"
                    + self.log_tail())
            if port_open(self.host, self.port):
                return
            if time.monotonic() > deadline:
                tail = self.log_tail()
                self.kill()
                raise BrokerError(
                    f"broker did not accept TCP on {self.bootstrap} within {timeout}s\n"
                    "--- broker log ---\n" + tail)
            time.sleep(0.05)

    def stop(self, timeout=STOP_TIMEOUT_S):
        """SIGTERM and wait; returns the exit code. Raises if it does not exit."""
        self._require_control()
        if self.proc is None:
            return self.last_exit_code
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
                self.last_exit_code = self.proc.returncode
                self.proc = None
                raise BrokerError(f"broker did not exit within {timeout}s of SIGTERM (killed)")
        self.last_exit_code = self.proc.returncode
        self.proc = None
        self._mark("stopped (SIGTERM)", self.last_exit_code)
        return self.last_exit_code

    def kill(self):
        """kill -9 and wait."""
        self._require_control()
        if self.proc is None:
            return self.last_exit_code
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(30)
        self.last_exit_code = self.proc.returncode
        self.proc = None
        self._mark("killed (SIGKILL)", self.last_exit_code)
        return self.last_exit_code

    def restart(self, hard=False):
        """Stop (SIGTERM, or SIGKILL when hard) and start again on the same
        port and data dir."""
        if hard:
            self.kill()
        else:
            self.stop()
        self.start()

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def _mark(self, what, code):
        if self.log_path:
            with open(self.log_path, "ab") as log:
                log.write(f"===== {what} at {time.strftime('%H:%M:%S')}, exit code {code}\n".encode())

    def cleanup(self):
        if self.controllable and self.workdir:
            try:
                self.kill()
            except Exception:
                pass
            if os.environ.get("SLUICE_KEEP_DATA"):
                return
            if self.log_path and os.path.exists(self.log_path):
                os.makedirs(LOG_KEEP_DIR, exist_ok=True)
                keep = os.path.join(LOG_KEEP_DIR, os.path.basename(self.workdir) + ".log")
                shutil.copyfile(self.log_path, keep)
                self.log_path = keep
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None

    # -- diagnostics -------------------------------------------------------------

    def log_tail(self, lines=60):
        if not self.log_path or not os.path.exists(self.log_path):
            return "(no log)"
        with open(self.log_path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - 64 * 1024))
            data = f.read().decode("utf-8", "replace")
        return "\n".join(data.splitlines()[-lines:])

    def metrics_text(self, timeout=10):
        if not self.controllable or not self.metrics_port:
            raise BrokerError("metrics are only available for a managed broker")
        url = f"http://{self.host}:{self.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.read().decode("utf-8", "replace")

    def metric(self, name):
        """Sum of all samples of a Prometheus metric (over all label sets);
        None when the metric is absent."""
        total = None
        for line in self.metrics_text().splitlines():
            m = _PROM_LINE.match(line.strip())
            if not m or m.group(1) != name:
                continue
            total = (total or 0.0) + float(m.group(3))
        return total

    def __repr__(self):
        return f"Broker({self.name}, {self.bootstrap}, controllable={self.controllable})"


class KafkaDistBroker(Broker):
    """Validation mode (COMPAT_REAL_KAFKA=1): a managed real Apache Kafka
    started with compat-tests/kafka-dist/start-kafka, so that broker-control
    tests can be checked against the reference implementation. It has no
    Prometheus endpoint, so metrics tests skip."""

    def __init__(self, name, dist_dir, config=None):
        super().__init__(name, bin_path=None, config=config)
        self.dist_dir = dist_dir
        self.metrics_port = None
        self.log_path = os.path.join(self.data_dir, "kafka.out")

    def start(self, timeout=120.0):
        if self.running():
            raise BrokerError("broker already running")
        props = [f"{k}={str(v).lower() if isinstance(v, bool) else v}"
                 for k, v in self.config.items()]
        for _attempt in range(3):
            res = subprocess.run(
                [os.path.join(self.dist_dir, "start-kafka"), str(self.port), self.data_dir, *props],
                capture_output=True, timeout=timeout + 300, stdin=subprocess.DEVNULL)
            # start-kafka's random cluster id sometimes starts with "-", which
            # the storage tool takes for an option: format again.
            if res.returncode != 0 and b"expected one argument" in res.stderr \
                    and not os.path.exists(os.path.join(self.data_dir, "meta.properties")):
                continue
            break
        if res.returncode != 0:
            raise BrokerError("start-kafka failed:\n" + res.stderr.decode("utf-8", "replace")
                              + "\n--- broker log ---\n" + self.log_tail())
        self.pid = int(res.stdout.decode().strip().splitlines()[-1])
        self.proc = True

    def running(self):
        if not self.proc:
            return False
        try:
            os.kill(self.pid, 0)
            return True
        except OSError:
            return False

    def _stop(self, *flags):
        if not self.proc:
            return self.last_exit_code
        subprocess.run([os.path.join(self.dist_dir, "stop-kafka"), self.data_dir, *flags],
                       capture_output=True, timeout=120, stdin=subprocess.DEVNULL)
        self.proc = None
        self.last_exit_code = 0
        return 0

    def stop(self, timeout=STOP_TIMEOUT_S):
        return self._stop()

    def kill(self):
        return self._stop("--kill")

    def metrics_text(self, timeout=10):
        raise BrokerError("real Kafka has no Prometheus endpoint")


# Brokers whose log tail is attached to a failing test's report.
_SESSION_BROKERS: list[Broker] = []
_TEST_BROKERS: list[Broker] = []
_ALL_BROKERS: list[Broker] = []


def _new_managed_broker(name, config=None):
    if os.environ.get("COMPAT_REAL_KAFKA"):
        b = KafkaDistBroker(name, os.path.join(REPO_ROOT, "compat-tests", "kafka-dist"), config)
    else:
        bin_path = os.environ.get("SLUICE_BIN") or DEFAULT_SLUICE_BIN
        b = Broker(name, bin_path=bin_path, config=config)
    _ALL_BROKERS.append(b)
    return b


@pytest.fixture(scope="session")
def broker():
    """The shared broker for the session (external or a managed Sluice)."""
    ext = external_bootstrap()
    if ext:
        b = Broker("external", bootstrap=ext)
        _SESSION_BROKERS.append(b)
        yield b
        return
    b = _new_managed_broker("shared")
    _SESSION_BROKERS.append(b)
    try:
        b.start()
    except BrokerError as e:
        pytest.fail(str(e), pytrace=False)
    yield b
    b.cleanup()


@pytest.fixture(scope="session")
def bootstrap(broker):
    return broker.bootstrap


@pytest.fixture
def broker_factory(request):
    """Start extra managed brokers with their own config and data dir.

    ``broker_factory(config={...}, start=True)`` returns a Broker; it is
    killed and its data dir removed after the test.
    """
    if external_bootstrap():
        pytest.skip("needs a managed broker (KAFKA_BOOTSTRAP is set)")
    made = []

    def make(config=None, start=True, name=None):
        b = _new_managed_broker(name or request.node.name[:40], config=config)
        made.append(b)
        _TEST_BROKERS.append(b)
        if start:
            try:
                b.start()
            except BrokerError as e:
                pytest.fail(str(e), pytrace=False)
        return b

    yield make
    for b in made:
        b.cleanup()


def pytest_collection_modifyitems(config, items):
    if not external_bootstrap():
        return
    skip = pytest.mark.skip(reason="needs broker control; KAFKA_BOOTSTRAP is set")
    for item in items:
        if "needs_broker_control" in item.keywords:
            item.add_marker(skip)


def pytest_configure(config):
    # A SIGTERM'd run (CI timeout, kill) still tears fixtures down, so no
    # broker is left behind.
    def on_term(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")
    signal.signal(signal.SIGTERM, on_term)


def pytest_unconfigure(config):
    for b in _ALL_BROKERS:
        try:
            b.cleanup()
        except Exception:
            pass


def pytest_runtest_setup(item):
    _TEST_BROKERS.clear()
    # If the shared broker died in an earlier test (that test was already
    # failed for it), bring it back so the rest of the suite still runs.
    for b in _SESSION_BROKERS:
        if b.controllable and b.proc is not None and not b.running():
            code = b.proc.returncode if hasattr(b.proc, "returncode") else None
            b.proc = None
            b.last_exit_code = code
            b._mark("found dead; restarting for the next test", code)
            try:
                b.start()
            except BrokerError as e:
                pytest.exit(f"shared broker died and could not be restarted: {e}", returncode=1)


def _died_during(b):
    return b.controllable and b.proc is not None and not b.running()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if call.when == "call":
        dead = [b for b in _SESSION_BROKERS if _died_during(b)]
        if dead:
            codes = ", ".join(f"{b.name}: exit code {b.proc.returncode}" for b in dead
                              if hasattr(b.proc, "returncode"))
            msg = f"BROKER PROCESS DIED DURING THIS TEST ({codes or 'no exit code'})"
            if rep.passed:
                rep.outcome = "failed"
                rep.longrepr = msg
            else:
                rep.sections.append(("broker died", msg))
    if not rep.failed:
        return
    for b in _SESSION_BROKERS + _TEST_BROKERS:
        if b.log_path:
            rep.sections.append((f"broker log tail: {b.name} ({b.log_path})", b.log_tail(80)))


def pytest_report_header(config):
    ext = external_bootstrap()
    if ext:
        return f"broker: external KAFKA_BOOTSTRAP={ext} (broker-control tests skipped)"
    if os.environ.get("COMPAT_REAL_KAFKA"):
        return "broker: managed real Apache Kafka (compat-tests/kafka-dist; validation mode)"
    return (f"broker: managed Sluice {os.environ.get('SLUICE_BIN') or DEFAULT_SLUICE_BIN} "
            f"(logs kept in {LOG_KEEP_DIR})")
