package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

type consumeResult struct {
	Records     int64   `json:"records"`
	Bytes       int64   `json:"bytes"`
	Seconds     float64 `json:"seconds"`
	RecordsPerS float64 `json:"records_per_s"`
	MBPerS      float64 `json:"mb_per_s"`
	WallSeconds float64 `json:"wall_seconds"`
	Groups      int     `json:"groups"`
	// With --filter-tag: records whose mq.tag is that tag (the client-side
	// filter's output) and their rate. Fetch response bytes read off the wire.
	UsefulRecords     int64   `json:"useful_records,omitempty"`
	UsefulRecordsPerS float64 `json:"useful_records_per_s,omitempty"`
	WireBytes         int64   `json:"wire_bytes"`
}

// tally is what one consuming client saw. first is when the client could start
// fetching (its first poll, or for a group member its assignment), last is when
// the last needed records came out of PollFetches; first..last leaves out
// connecting and (for groups) the join, as Kafka's ConsumerPerformance "fetch"
// figures do, but keeps the first fetch (a small run may arrive in one poll).
type tally struct {
	records, bytes int64
	useful         int64
	wire           *atomic.Int64
	first, last    time.Time
}

// wireCounter sums the bytes of Fetch responses read off the wire.
type wireCounter struct{ n *atomic.Int64 }

func (w wireCounter) OnBrokerRead(_ kgo.BrokerMetadata, key int16, bytesRead int, _, _ time.Duration, _ error) {
	if key == 1 { // Fetch
		w.n.Add(int64(bytesRead))
	}
}

func runConsume(args []string) (any, error) {
	fs := newFlags("consume")
	brokers := fs.String("brokers", "", "bootstrap brokers, host:port[,host:port]")
	var tf topicFlags
	tf.register(fs)
	records := fs.Int64("records", 0, "records each client must read")
	groups := fs.Int("groups", 0, "0: one client assigned all partitions; G>=1: G clients, each in its own consumer group")
	groupPrefix := fs.String("group-prefix", "bench-", "consumer group name prefix (group i is PREFIXi)")
	timeout := fs.Duration("timeout", 120*time.Second, "fail if a client has not read --records by then")
	fetchMax := fs.Int("fetch-max-bytes", 50*mib, "fetch.max.bytes per fetch request")
	partitionMax := fs.Int("partition-max-bytes", mib, "max.partition.fetch.bytes (Java consumer default 1 MiB)")
	filterTag := fs.String("filter-tag", "", "count the records whose mq.tag is this as useful (a client-side filter), and the bytes on the wire")
	fs.Parse(args)

	topics, err := tf.names()
	if err != nil {
		return nil, err
	}
	if *records < 1 || *groups < 0 {
		return nil, fmt.Errorf("need --records >= 1 and --groups >= 0")
	}
	seed, err := seedOpt(*brokers)
	if err != nil {
		return nil, err
	}
	common := []kgo.Opt{seed, logOpt(), kgo.FetchMaxBytes(int32(*fetchMax)),
		kgo.FetchMaxPartitionBytes(int32(*partitionMax))}
	// A response may be as large as fetch.max.bytes plus framing; franz-go
	// rejects responses above BrokerMaxReadBytes (default 100 MiB).
	if *fetchMax+mib > 100*mib {
		common = append(common, kgo.BrokerMaxReadBytes(int32(*fetchMax+mib)))
	}

	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	start := time.Now()

	var clients [][]kgo.Opt
	if *groups == 0 {
		assign, err := startOffsets(ctx, seed, topics)
		if err != nil {
			return nil, err
		}
		clients = append(clients, slices.Concat(common, []kgo.Opt{kgo.ConsumePartitions(assign)}))
	} else {
		for g := range *groups {
			clients = append(clients, slices.Concat(common, []kgo.Opt{
				kgo.ConsumerGroup(fmt.Sprintf("%s%d", *groupPrefix, g)),
				kgo.ConsumeTopics(topics...),
				kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
				// Nothing is committed, so rerunning with the same group
				// names reads from the start again instead of from wherever
				// the last run stopped.
				kgo.DisableAutoCommit(),
			}))
		}
	}

	tallies := make([]tally, len(clients))
	errs := make([]error, len(clients))
	var wg sync.WaitGroup
	for i, opts := range clients {
		wg.Go(func() { tallies[i], errs[i] = consumeN(ctx, opts, *records, *groups > 0, *filterTag) })
	}
	wg.Wait()
	wall := time.Since(start).Seconds()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}

	res := consumeResult{Groups: *groups}
	var first, last time.Time
	for _, t := range tallies {
		res.Records += t.records
		res.Bytes += t.bytes
		res.UsefulRecords += t.useful
		res.WireBytes += t.wire.Load()
		if first.IsZero() || t.first.Before(first) {
			first = t.first
		}
		if t.last.After(last) {
			last = t.last
		}
	}
	secs := last.Sub(first).Seconds()
	res.Seconds = round3(secs)
	res.RecordsPerS = rate(float64(res.Records), secs)
	res.MBPerS = rate(float64(res.Bytes)/mib, secs)
	if *filterTag != "" {
		res.UsefulRecordsPerS = rate(float64(res.UsefulRecords), secs)
	}
	res.WallSeconds = round3(wall)
	return res, nil
}

// startOffsets discovers every partition of the topics, for direct
// assignment from the log start.
func startOffsets(ctx context.Context, seed kgo.Opt, topics []string) (map[string]map[int32]kgo.Offset, error) {
	cl, err := kgo.NewClient(seed, logOpt())
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	md, err := kadm.NewClient(cl).Metadata(ctx, topics...)
	if err != nil {
		return nil, fmt.Errorf("metadata: %w", err)
	}
	assign := make(map[string]map[int32]kgo.Offset, len(topics))
	for _, t := range topics {
		td, ok := md.Topics[t]
		if !ok || td.Err != nil || len(td.Partitions) == 0 {
			return nil, fmt.Errorf("topic %s: not found (%v)", t, td.Err)
		}
		assign[t] = make(map[int32]kgo.Offset, len(td.Partitions))
		for p := range td.Partitions {
			assign[t][p] = kgo.NewOffset().AtStart()
		}
	}
	return assign, nil
}

// consumeN runs one client until it has read want records. It counts every
// record handed back, so the last poll may take it slightly past want.
func consumeN(ctx context.Context, opts []kgo.Opt, want int64, inGroup bool, filterTag string) (tally, error) {
	t := tally{wire: new(atomic.Int64)}
	var assignedAt atomic.Int64 // unix nanoseconds; 0 until a group assigns partitions
	opts = append(slices.Clone(opts), kgo.WithHooks(wireCounter{t.wire}))
	if inGroup {
		opts = append(slices.Clone(opts), kgo.OnPartitionsAssigned(
			func(context.Context, *kgo.Client, map[string][]int32) {
				assignedAt.CompareAndSwap(0, time.Now().UnixNano())
			}))
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return t, err
	}
	defer cl.Close()
	reported := map[string]bool{}
	t.first = time.Now()
	for t.records < want {
		fetches := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return t, fmt.Errorf("timed out after %d of %d records", t.records, want)
		}
		now := time.Now()
		// Fetch errors are mostly transient (franz-go retries them); say
		// each kind once so a stuck run explains itself without flooding.
		fetches.EachError(func(topic string, p int32, err error) {
			if msg := err.Error(); !reported[msg] {
				reported[msg] = true
				fmt.Fprintf(os.Stderr, "consume: fetch error on %s/%d: %v\n", topic, p, err)
			}
		})
		n := int64(0)
		fetches.EachRecord(func(r *kgo.Record) {
			n++
			t.bytes += int64(len(r.Key) + len(r.Value))
			if filterTag != "" && hasTag(r, filterTag) {
				t.useful++
			}
		})
		if n > 0 {
			if at := assignedAt.Load(); at != 0 && t.records == 0 {
				t.first = time.Unix(0, at)
			}
			t.last = now
			t.records += n
		}
	}
	return t, nil
}

func hasTag(r *kgo.Record, tag string) bool {
	for _, h := range r.Headers {
		if h.Key == "mq.tag" {
			return string(h.Value) == tag
		}
	}
	return false
}
