// Command benchgen is the Go (franz-go) load generator of the Sluice
// benchmark suite. Each subcommand runs one measurement and prints exactly one
// JSON object on stdout; everything else goes to stderr. A failed run prints
// {"error": "..."} and exits 1, so a harness can always parse stdout and
// still trust the exit code.
//
//	benchgen create   --brokers H:P (--topics a,b | --topic-prefix P --topic-count K) --partitions N [--config k=v ...]
//	benchgen produce  --brokers H:P (topics) --records N --size B --acks 1|all [...]
//	benchgen consume  --brokers H:P (topics) --records N [--groups G] [...]
//	benchgen e2e      --brokers H:P --topic T --rate R --seconds S --size B --acks 1|all
//	benchgen fetch    --brokers H:P (topics)   (raw Fetch requests, batch headers only)
//	benchgen ceiling  --file PATH --bytes N [--send-buffer B] [--receiver goroutine|process]
//	benchgen sink     --addr H:P   (the reader of ceiling --receiver process)
//
// MB in every figure is 2^20 bytes, as in Kafka's perf tools.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"os"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kgo"
)

const mib = 1 << 20

var subcommands = map[string]func(args []string) (any, error){
	"create":  runCreate,
	"produce": runProduce,
	"consume": runConsume,
	"e2e":     runE2E,
	"fetch":   runFetch,
	"ceiling": runCeiling,
	"sink":    runSink,
}

func main() {
	if len(os.Args) < 2 || subcommands[os.Args[1]] == nil {
		fmt.Fprintln(os.Stderr, "usage: benchgen create|produce|consume|e2e|fetch|ceiling|sink [flags]  (benchgen CMD -h for flags)")
		os.Exit(2)
	}
	name := os.Args[1]
	result, err := subcommands[name](os.Args[2:])
	if err != nil {
		fmt.Fprintf(os.Stderr, "benchgen %s: %v\n", name, err)
		emit(map[string]string{"error": err.Error()})
		os.Exit(1)
	}
	emit(result)
}

func emit(v any) {
	enc := json.NewEncoder(os.Stdout)
	if err := enc.Encode(v); err != nil {
		fmt.Fprintf(os.Stderr, "benchgen: writing result: %v\n", err)
		os.Exit(1)
	}
}

// newFlags makes a flag set that exits on bad flags (status 2), which is the
// right behaviour for a command line tool driven by a script.
func newFlags(name string) *flag.FlagSet {
	return flag.NewFlagSet("benchgen "+name, flag.ExitOnError)
}

// topicFlags is the shared way to name topics: an explicit list, or a
// numbered family (P0..P{K-1}) so that 100-topic runs need no long arguments.
type topicFlags struct {
	list   string
	prefix string
	count  int
}

func (t *topicFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&t.list, "topics", "", "comma-separated topic names")
	fs.StringVar(&t.prefix, "topic-prefix", "", "topic name prefix (alternative to --topics): topics PREFIX0..PREFIX{count-1}")
	fs.IntVar(&t.count, "topic-count", 0, "number of topics with --topic-prefix")
}

func (t *topicFlags) names() ([]string, error) {
	switch {
	case t.list != "" && t.prefix != "":
		return nil, fmt.Errorf("use either --topics or --topic-prefix/--topic-count, not both")
	case t.list != "":
		var out []string
		for _, s := range strings.Split(t.list, ",") {
			if s = strings.TrimSpace(s); s != "" {
				out = append(out, s)
			}
		}
		if len(out) == 0 {
			return nil, fmt.Errorf("--topics names no topic")
		}
		return out, nil
	case t.prefix != "":
		if t.count < 1 {
			return nil, fmt.Errorf("--topic-prefix needs --topic-count >= 1")
		}
		out := make([]string, t.count)
		for i := range out {
			out[i] = fmt.Sprintf("%s%d", t.prefix, i)
		}
		return out, nil
	}
	return nil, fmt.Errorf("no topics: give --topics or --topic-prefix/--topic-count")
}

func seedOpt(brokers string) (kgo.Opt, error) {
	if brokers == "" {
		return nil, fmt.Errorf("--brokers is required")
	}
	return kgo.SeedBrokers(strings.Split(brokers, ",")...), nil
}

// logOpt routes franz-go's own warnings (connection trouble, retries) to
// stderr: they are the first thing to look at when a run is slow or fails.
func logOpt() kgo.Opt {
	return kgo.WithLogger(kgo.BasicLogger(os.Stderr, kgo.LogLevelWarn, func() string { return "kgo: " }))
}

// ackOpts maps the --acks flag onto franz-go options. acks=1 (and 0) must turn
// idempotence off, because franz-go refuses idempotent writes without acks=all;
// acks=all keeps franz-go's default of idempotent writes, like the Java client.
func ackOpts(acks string) ([]kgo.Opt, error) {
	switch acks {
	case "all", "-1":
		return []kgo.Opt{kgo.RequiredAcks(kgo.AllISRAcks())}, nil
	case "1":
		return []kgo.Opt{kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite()}, nil
	case "0":
		return []kgo.Opt{kgo.RequiredAcks(kgo.NoAck()), kgo.DisableIdempotentWrite()}, nil
	}
	return nil, fmt.Errorf("--acks must be 0, 1 or all, not %q", acks)
}

// latencySummary holds percentiles in milliseconds.
type latencySummary struct {
	P50  float64 `json:"p50_ms"`
	P99  float64 `json:"p99_ms"`
	P999 float64 `json:"p999_ms"`
	Max  float64 `json:"max_ms"`
}

// summarize sorts the microsecond samples in place and reads nearest-rank
// percentiles off them. Keeping every sample (4 bytes each) is exact and costs
// only a few MB for the few million records a run produces.
func summarize(us []uint32) latencySummary {
	if len(us) == 0 {
		return latencySummary{}
	}
	slices.Sort(us)
	at := func(p float64) float64 {
		i := int(math.Ceil(p*float64(len(us)))) - 1
		i = max(0, min(i, len(us)-1))
		return round3(float64(us[i]) / 1000)
	}
	return latencySummary{P50: at(0.50), P99: at(0.99), P999: at(0.999), Max: round3(float64(us[len(us)-1]) / 1000)}
}

// micros converts a duration to saturating microseconds for the sample slices.
func micros(ns int64) uint32 {
	if ns <= 0 {
		return 0
	}
	return uint32(min(ns/1000, math.MaxUint32))
}

func round3(f float64) float64 { return math.Round(f*1000) / 1000 }

// rate is a per-second figure guarded against a zero interval.
func rate(amount float64, seconds float64) float64 {
	if seconds <= 0 {
		return 0
	}
	return round3(amount / seconds)
}
