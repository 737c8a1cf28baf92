package compat

// Test harness shared by every test in this package.
//
// Broker contract:
//   - KAFKA_BOOTSTRAP=host:port set: use that broker; tests that restart or
//     kill the broker, or read its metrics, are skipped.
//   - otherwise: start the Sluice broker ($SLUICE_BIN, default
//     <repo root>/target/release/sluice) on free loopback ports with a fresh
//     data dir and a TOML config file, and stop it with SIGTERM at the end.

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// brokerConfig is written to the --config file of a broker we start.
const brokerConfig = `# written by compat-tests/go
"group.initial.rebalance.delay.ms" = 0
"auto.create.topics.enable" = true
`

type broker struct {
	bootstrap string
	external  bool // KAFKA_BOOTSTRAP: we do not control the process

	bin         string
	port        int
	metricsPort int
	root        string // temp root holding data/, config and log
	dataDir     string
	configPath  string
	logPath     string

	mu             sync.Mutex
	cmd            *exec.Cmd
	exited         chan struct{} // closed when the current process exits
	stopped        bool          // we stopped it on purpose
	unexpectedExit atomic.Bool
}

var env *broker

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	if b := strings.TrimSpace(os.Getenv("KAFKA_BOOTSTRAP")); b != "" {
		env = &broker{bootstrap: b, external: true}
		fmt.Fprintf(os.Stderr, "compat: using external broker KAFKA_BOOTSTRAP=%s (broker-controlled tests will be skipped)\n", b)
		if err := waitTCP(b, 30*time.Second); err != nil {
			fmt.Fprintf(os.Stderr, "compat: external broker %s not reachable: %v\n", b, err)
			return 1
		}
		return m.Run()
	}

	b, err := newManagedBroker()
	if err != nil {
		fmt.Fprintf(os.Stderr, "compat: cannot prepare broker: %v\n", err)
		return 1
	}
	env = b
	if err := b.start(); err != nil {
		fmt.Fprintf(os.Stderr, "compat: cannot start broker: %v\n", err)
		b.printLogTail(os.Stderr, 200)
		b.stop()
		return 1
	}
	code := m.Run()
	if b.unexpectedExit.Load() {
		fmt.Fprintf(os.Stderr, "compat: the broker process exited unexpectedly during the tests\n")
		code = 1
	}
	if code != 0 {
		fmt.Fprintf(os.Stderr, "compat: tests failed; last lines of the broker log (%s):\n", b.logPath)
		b.printLogTail(os.Stderr, 80)
	}
	b.stop()
	if code == 0 && os.Getenv("COMPAT_KEEP_DATA") == "" {
		os.RemoveAll(b.root)
	} else {
		fmt.Fprintf(os.Stderr, "compat: broker data, config and log kept in %s\n", b.root)
	}
	return code
}

func repoRoot() string {
	wd, err := os.Getwd()
	if err != nil {
		return "."
	}
	// this package lives in <repo>/compat-tests/go
	return filepath.Clean(filepath.Join(wd, "..", ".."))
}

func newManagedBroker() (*broker, error) {
	bin := os.Getenv("SLUICE_BIN")
	if bin == "" {
		bin = filepath.Join(repoRoot(), "target", "release", "sluice")
	}
	if _, err := os.Stat(bin); err != nil {
		return nil, fmt.Errorf("sluice binary %q not found (build it with cargo build --release, set SLUICE_BIN, or set KAFKA_BOOTSTRAP): %w", bin, err)
	}
	root, err := os.MkdirTemp("", "sluice-go-compat-")
	if err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	mport, err := freePort()
	if err != nil {
		return nil, err
	}
	b := &broker{
		bin:         bin,
		port:        port,
		metricsPort: mport,
		root:        root,
		dataDir:     filepath.Join(root, "data"),
		configPath:  filepath.Join(root, "sluice.toml"),
		logPath:     filepath.Join(root, "broker.log"),
		bootstrap:   fmt.Sprintf("127.0.0.1:%d", port),
	}
	if err := os.MkdirAll(b.dataDir, 0o755); err != nil {
		return nil, err
	}
	if err := os.WriteFile(b.configPath, []byte(brokerConfig), 0o644); err != nil {
		return nil, err
	}
	return b, nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func waitTCP(addr string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// start launches the broker process and waits until its port accepts TCP.
func (b *broker) start() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	logf, err := os.OpenFile(b.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	fmt.Fprintf(logf, "\n===== compat: starting broker at %s =====\n", time.Now().Format(time.RFC3339Nano))
	cmd := exec.Command(b.bin,
		"--listen", b.bootstrap,
		"--data-dir", b.dataDir,
		"--metrics-listen", fmt.Sprintf("127.0.0.1:%d", b.metricsPort),
		"--config", b.configPath,
	)
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return err
	}
	exited := make(chan struct{})
	b.cmd, b.exited, b.stopped = cmd, exited, false
	go func() {
		err := cmd.Wait()
		logf.Close()
		b.mu.Lock()
		if !b.stopped && b.cmd == cmd {
			b.unexpectedExit.Store(true)
			fmt.Fprintf(os.Stderr, "compat: broker process exited unexpectedly: %v\n", err)
		}
		b.mu.Unlock()
		close(exited)
	}()

	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case <-exited:
			return fmt.Errorf("broker exited during startup (log: %s)", b.logPath)
		default:
		}
		c, err := net.DialTimeout("tcp", b.bootstrap, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("broker did not accept TCP on %s within 30s (log: %s)", b.bootstrap, b.logPath)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// signalStop sends sig and waits for the process to exit (SIGKILL after timeout).
func (b *broker) signalStop(sig syscall.Signal, timeout time.Duration) error {
	b.mu.Lock()
	cmd, exited := b.cmd, b.exited
	b.stopped = true
	b.mu.Unlock()
	if cmd == nil || cmd.Process == nil {
		return nil
	}
	select {
	case <-exited:
		return nil
	default:
	}
	_ = cmd.Process.Signal(sig)
	select {
	case <-exited:
		return nil
	case <-time.After(timeout):
		_ = cmd.Process.Kill()
		<-exited
		return fmt.Errorf("broker did not exit within %v after %v; killed", timeout, sig)
	}
}

func (b *broker) stop() {
	if b.external {
		return
	}
	if err := b.signalStop(syscall.SIGTERM, 20*time.Second); err != nil {
		fmt.Fprintf(os.Stderr, "compat: %v\n", err)
	}
}

// restart stops the broker (SIGTERM, or kill -9 when crash is true) and starts
// it again on the same port and data dir.
func (b *broker) restart(t testing.TB, crash bool) {
	t.Helper()
	start := time.Now()
	if crash {
		if err := b.signalStop(syscall.SIGKILL, 10*time.Second); err != nil {
			t.Fatalf("kill -9 broker: %v", err)
		}
	} else {
		if err := b.signalStop(syscall.SIGTERM, 20*time.Second); err != nil {
			t.Errorf("graceful stop: %v", err)
		}
	}
	stopped := time.Since(start)
	if err := b.start(); err != nil {
		var sb strings.Builder
		b.printLogTail(&sb, 100)
		t.Fatalf("restart broker: %v\nbroker log tail:\n%s", err, sb.String())
	}
	t.Logf("broker restarted (crash=%v): stopped in %v, up again after %v", crash, stopped.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
}

func (b *broker) printLogTail(w io.Writer, n int) {
	if b.logPath == "" {
		return
	}
	f, err := os.Open(b.logPath)
	if err != nil {
		fmt.Fprintf(w, "(no broker log: %v)\n", err)
		return
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1024*1024), 1024*1024)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if len(lines) > n {
			lines = lines[1:]
		}
	}
	for _, l := range lines {
		fmt.Fprintln(w, l)
	}
}

// needsManagedBroker skips tests that must control the broker process.
func needsManagedBroker(t testing.TB) {
	t.Helper()
	if env.external {
		t.Skip("skipped: KAFKA_BOOTSTRAP is set, the broker is not controlled by this suite")
	}
}

var metricLine = regexp.MustCompile(`^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)`)

// metrics fetches GET /metrics and sums each metric over its label sets.
func (b *broker) metrics(t testing.TB) map[string]float64 {
	t.Helper()
	url := fmt.Sprintf("http://127.0.0.1:%d/metrics", b.metricsPort)
	hc := http.Client{Timeout: 10 * time.Second}
	resp, err := hc.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: status %s", url, resp.Status)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read %s: %v", url, err)
	}
	out := make(map[string]float64)
	for _, line := range strings.Split(string(body), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		m := metricLine.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		v, err := strconv.ParseFloat(m[3], 64)
		if err != nil {
			continue
		}
		out[m[1]] += v
	}
	return out
}

// ---------------------------------------------------------------------------
// client helpers

// clientLogger keeps the last lines a client logged (at info level, or the
// COMPAT_LOG level if more verbose) so a failing test can show them, and
// streams them to stderr when COMPAT_LOG is set.
type clientLogger struct {
	name   string
	level  kgo.LogLevel
	stream bool

	mu    sync.Mutex
	lines []string
}

const clientLogKeep = 150

func (l *clientLogger) Level() kgo.LogLevel { return l.level }
func (l *clientLogger) Log(level kgo.LogLevel, msg string, kv ...any) {
	var sb strings.Builder
	fmt.Fprintf(&sb, "%s [%s %s] %s", time.Now().Format("15:04:05.000"), l.name, level, msg)
	for i := 0; i+1 < len(kv); i += 2 {
		fmt.Fprintf(&sb, " %v=%v", kv[i], kv[i+1])
	}
	line := sb.String()
	if l.stream {
		fmt.Fprintln(os.Stderr, line)
	}
	l.mu.Lock()
	l.lines = append(l.lines, line)
	if len(l.lines) > clientLogKeep {
		l.lines = l.lines[len(l.lines)-clientLogKeep:]
	}
	l.mu.Unlock()
}

func (l *clientLogger) dump() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

// clientLogLevel is COMPAT_LOG=debug|info|warn|error (default: none).
func clientLogLevel() kgo.LogLevel {
	switch strings.ToLower(os.Getenv("COMPAT_LOG")) {
	case "debug":
		return kgo.LogLevelDebug
	case "info":
		return kgo.LogLevelInfo
	case "warn":
		return kgo.LogLevelWarn
	case "error":
		return kgo.LogLevelError
	}
	return kgo.LogLevelNone
}

var clientSeq atomic.Int64

func baseOpts() []kgo.Opt {
	return []kgo.Opt{
		kgo.SeedBrokers(env.bootstrap),
		kgo.ClientID("sluice-compat-go"),
	}
}

// withLogger adds a clientLogger to opts; on test failure its tail is logged.
func withLogger(t testing.TB, opts []kgo.Opt) []kgo.Opt {
	stream := clientLogLevel()
	lvl := kgo.LogLevelInfo
	if stream > lvl {
		lvl = stream
	}
	l := &clientLogger{name: fmt.Sprintf("client-%d", clientSeq.Add(1)), level: lvl, stream: stream != kgo.LogLevelNone}
	t.Cleanup(func() {
		if t.Failed() {
			if d := l.dump(); d != "" {
				t.Logf("last log lines of %s:\n%s", l.name, d)
			}
		}
	})
	return append(opts, kgo.WithLogger(l))
}

// ensureRunning restarts a managed broker that died on its own, so that one
// crash does not fail every later test; the run still fails at the end.
func (b *broker) ensureRunning(t testing.TB) {
	if b.external {
		return
	}
	b.mu.Lock()
	exited, stopped := b.exited, b.stopped
	b.mu.Unlock()
	if exited == nil || stopped {
		return
	}
	select {
	case <-exited:
	default:
		return
	}
	var sb strings.Builder
	b.printLogTail(&sb, 60)
	t.Logf("NOTE: the broker had exited unexpectedly before this test (the run will fail); restarting it. Broker log tail:\n%s", sb.String())
	if err := b.start(); err != nil {
		t.Fatalf("restarting the crashed broker: %v", err)
	}
}

// newClient returns a franz-go client closed at the end of the test.
func newClient(t testing.TB, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	env.ensureRunning(t)
	cl, err := kgo.NewClient(withLogger(t, append(baseOpts(), opts...))...)
	if err != nil {
		t.Fatalf("kgo.NewClient: %v", err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// newAdmin returns a kadm client (with its own kgo client) closed at test end.
func newAdmin(t testing.TB) (*kadm.Client, *kgo.Client) {
	t.Helper()
	cl := newClient(t)
	adm := kadm.NewClient(cl)
	adm.SetTimeoutMillis(15000)
	return adm, cl
}

func testCtx(t testing.TB, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

var nameSeq atomic.Int64

var badNameChars = regexp.MustCompile(`[^a-zA-Z0-9-]+`)

// uniqueName returns a topic/group name unique to this run and test.
func uniqueName(t testing.TB, kind string) string {
	n := badNameChars.ReplaceAllString(t.Name(), "-")
	n = strings.Trim(strings.ToLower(n), "-")
	if len(n) > 80 {
		n = n[len(n)-80:]
	}
	return fmt.Sprintf("go-%s-%s-%d-%d", kind, n, time.Now().UnixNano()%1_000_000, nameSeq.Add(1))
}

// createTopic creates a topic and waits until all partitions have a leader.
func createTopic(t testing.TB, adm *kadm.Client, partitions int32, configs map[string]*string) string {
	t.Helper()
	topic := uniqueName(t, "t")
	ctx := testCtx(t, 30*time.Second)
	resp, err := adm.CreateTopic(ctx, partitions, 1, configs, topic)
	if err != nil {
		t.Fatalf("CreateTopic %s: %v", topic, err)
	}
	if resp.Err != nil {
		t.Fatalf("CreateTopic %s: %v (%s)", topic, resp.Err, resp.ErrMessage)
	}
	waitTopicReady(t, adm, topic, partitions)
	return topic
}

// freshMetadata issues an uncached Metadata request for the given topics.
func freshMetadata(ctx context.Context, cl *kgo.Client, topics ...string) (*kmsg.MetadataResponse, error) {
	req := kmsg.NewPtrMetadataRequest()
	req.AllowAutoTopicCreation = false
	for _, tp := range topics {
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = kmsg.StringPtr(tp)
		req.Topics = append(req.Topics, rt)
	}
	return req.RequestWith(ctx, cl)
}

// waitTopicReady polls metadata until the topic has `partitions` partitions,
// each with a leader.
func waitTopicReady(t testing.TB, adm *kadm.Client, topic string, partitions int32) {
	t.Helper()
	cl := newClient(t)
	deadline := time.Now().Add(20 * time.Second)
	var last string
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		resp, err := freshMetadata(ctx, cl, topic)
		cancel()
		if err != nil {
			last = err.Error()
		} else if len(resp.Topics) != 1 {
			last = fmt.Sprintf("%d topics in metadata response", len(resp.Topics))
		} else if rt := resp.Topics[0]; rt.ErrorCode != 0 {
			last = kerr.ErrorForCode(rt.ErrorCode).Error()
		} else if int32(len(rt.Partitions)) != partitions {
			last = fmt.Sprintf("%d partitions, want %d", len(rt.Partitions), partitions)
		} else {
			ok := true
			for _, p := range rt.Partitions {
				if p.ErrorCode != 0 || p.Leader < 0 {
					ok = false
					last = fmt.Sprintf("partition %d: leader %d err %v", p.Partition, p.Leader, kerr.ErrorForCode(p.ErrorCode))
				}
			}
			if ok {
				// Metadata can announce a leader before the partition is
				// loaded on it: also wait until ListOffsets answers for
				// every partition.
				if err := listOffsetsReady(cl, topic, partitions); err == nil {
					return
				} else {
					last = err.Error()
				}
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("topic %s not ready after 20s: %s", topic, last)
}

func listOffsetsReady(cl *kgo.Client, topic string, partitions int32) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req := kmsg.NewPtrListOffsetsRequest()
	req.ReplicaID = -1
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = topic
	for p := int32(0); p < partitions; p++ {
		rp := kmsg.NewListOffsetsRequestTopicPartition()
		rp.Partition = p
		rp.CurrentLeaderEpoch = -1
		rp.Timestamp = -1
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return err
	}
	n := 0
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
				return fmt.Errorf("ListOffsets %s/%d: %w", topic, p.Partition, err)
			}
			n++
		}
	}
	if n != int(partitions) {
		return fmt.Errorf("ListOffsets answered %d of %d partitions", n, partitions)
	}
	return nil
}

func strp(s string) *string { return &s }

// isErr reports whether err is (or wraps) the given Kafka error.
func isErr(err error, want *kerr.Error) bool {
	return err != nil && errors.Is(err, want)
}
