package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

type produceResult struct {
	Records     int     `json:"records"`
	Bytes       int64   `json:"bytes"`
	Seconds     float64 `json:"seconds"`
	RecordsPerS float64 `json:"records_per_s"`
	MBPerS      float64 `json:"mb_per_s"`
	latencySummary
}

func runProduce(args []string) (any, error) {
	fs := newFlags("produce")
	brokers := fs.String("brokers", "", "bootstrap brokers, host:port[,host:port]")
	var tf topicFlags
	tf.register(fs)
	records := fs.Int("records", 0, "records to produce")
	size := fs.Int("size", 100, "value size in bytes (no key)")
	acks := fs.String("acks", "1", "0, 1 or all")
	lingerMs := fs.Int("linger-ms", 5, "producer linger in ms")
	inflight := fs.Int("max-inflight", 5, "produce requests in flight per broker with acks 0/1 (idempotent acks=all always uses 5)")
	batchMax := fs.Int("batch-max-bytes", mib, "max record batch bytes")
	compression := fs.String("compression", "none", "none, gzip, snappy, lz4 or zstd")
	maxRecords := fs.Int("max-buffered-records", 100_000, "records buffered in the client before Produce blocks")
	maxBytes := fs.Int("max-buffered-bytes", 64*mib, "bytes buffered in the client before Produce blocks")
	partitioner := fs.String("partitioner", "sticky", "sticky (the client default) or round-robin")
	timeout := fs.Duration("timeout", 10*time.Minute, "fail if not all records are acknowledged by then")
	tagRatio := fs.Int("tag-ratio", 0, "tag records mq.tag=hot one time in N, the rest mq.tag=cold (0: no tags)")
	tagRun := fs.Int("tag-run", 1, "records in a run of one tag: 1 mixes tags in every batch, a batch's worth or more keeps batches uniform")
	delayMs := fs.Int64("delay-ms", 0, "Sluice: give every record the header mq.delay.ms=N (0: none)")
	fs.Parse(args)

	delayHeader := kgo.RecordHeader{Key: "mq.delay.ms", Value: []byte(strconv.FormatInt(*delayMs, 10))}
	topics, err := tf.names()
	if err != nil {
		return nil, err
	}
	if *records < 1 || *size < 0 {
		return nil, fmt.Errorf("need --records >= 1 and --size >= 0")
	}
	codec, err := parseCodec(*compression)
	if err != nil {
		return nil, err
	}
	seed, err := seedOpt(*brokers)
	if err != nil {
		return nil, err
	}
	opts, err := ackOpts(*acks)
	if err != nil {
		return nil, err
	}
	opts = append(opts, seed, logOpt(),
		kgo.ProducerLinger(time.Duration(*lingerMs)*time.Millisecond),
		kgo.ProducerBatchMaxBytes(int32(*batchMax)),
		kgo.ProducerBatchCompression(codec),
		// Both bounds: the record count limits small-record runs, the byte
		// count keeps large-record runs from buffering gigabytes.
		kgo.MaxBufferedRecords(*maxRecords),
		kgo.MaxBufferedBytes(*maxBytes),
	)
	// The client's default (sticky: fill one partition's batch, then move on)
	// is what applications get, and what Kafka's producer perf test uses.
	// Round-robin spreads every few records over all partitions, so with
	// thousands of partitions each batch holds a record or two: a measure of
	// per-batch cost in broker and client alike.
	switch *partitioner {
	case "sticky":
	case "round-robin":
		opts = append(opts, kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
	default:
		return nil, fmt.Errorf("--partitioner must be sticky or round-robin, not %q", *partitioner)
	}
	// franz-go rejects this option when idempotent (it always keeps 5 in
	// flight then), so it only applies to acks 0 and 1.
	if *acks == "0" || *acks == "1" {
		opts = append(opts, kgo.MaxProduceRequestsInflightPerBroker(*inflight))
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, err
	}
	defer cl.Close()

	payload := filler(*size)
	n := *records
	lat := make([]uint32, n)
	var (
		mu       sync.Mutex // promises run one at a time; this is for the final read
		acked    int
		failures int
		firstErr error
	)

	// franz-go retries records forever by default; this bounds the run.
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	start := time.Now()
	for i := range n {
		// The partitioner only round-robins within a topic, so records are
		// dealt out over the topics here to spread them over every partition.
		r := &kgo.Record{Topic: topics[i%len(topics)], Value: payload}
		if *tagRatio > 0 {
			r.Headers = []kgo.RecordHeader{tagHeader(i, *tagRatio, *tagRun)}
		}
		if *delayMs > 0 {
			r.Headers = append(r.Headers, delayHeader)
		}
		// Taken before Produce, which blocks while the buffer is full, so the
		// latency includes that wait, as ProducerPerformance's send() ->
		// callback figure does.
		sent := time.Since(start)
		cl.Produce(ctx, r, func(_ *kgo.Record, err error) {
			if err != nil {
				mu.Lock()
				failures++
				if firstErr == nil {
					firstErr = err
				}
				mu.Unlock()
				return
			}
			lat[i] = micros(int64(time.Since(start) - sent))
			mu.Lock()
			acked++
			mu.Unlock()
		})
	}
	if err := cl.Flush(ctx); err != nil {
		mu.Lock()
		defer mu.Unlock()
		return nil, fmt.Errorf("not done after %v (%d of %d records acknowledged): %w", *timeout, acked, n, err)
	}
	elapsed := time.Since(start).Seconds()
	mu.Lock()
	defer mu.Unlock()
	if failures > 0 {
		return nil, fmt.Errorf("%d of %d records failed, first error: %w", failures, n, firstErr)
	}

	bytes := int64(n) * int64(*size)
	return produceResult{
		Records:        n,
		Bytes:          bytes,
		Seconds:        round3(elapsed),
		RecordsPerS:    rate(float64(n), elapsed),
		MBPerS:         rate(float64(bytes)/mib, elapsed),
		latencySummary: summarize(lat),
	}, nil
}

var (
	hotTag  = []byte("hot")
	coldTag = []byte("cold")
)

// tagHeader tags record i: runs of `run` records share a tag, and one run in
// `ratio` is hot, so `ratio` 10 selects 10% of the records.
func tagHeader(i, ratio, run int) kgo.RecordHeader {
	if (i/max(run, 1))%ratio == 0 {
		return kgo.RecordHeader{Key: "mq.tag", Value: hotTag}
	}
	return kgo.RecordHeader{Key: "mq.tag", Value: coldTag}
}

// filler returns a value of size bytes of random upper-case letters, the
// same kind of payload as Kafka's ProducerPerformance, so compressed runs
// compress comparably.
func filler(size int) []byte {
	b := make([]byte, size)
	for i := range b {
		b[i] = 'A' + byte(rand.IntN(26))
	}
	return b
}

func parseCodec(name string) (kgo.CompressionCodec, error) {
	switch name {
	case "none":
		return kgo.NoCompression(), nil
	case "gzip":
		return kgo.GzipCompression(), nil
	case "snappy":
		return kgo.SnappyCompression(), nil
	case "lz4":
		return kgo.Lz4Compression(), nil
	case "zstd":
		return kgo.ZstdCompression(), nil
	}
	return kgo.CompressionCodec{}, fmt.Errorf("unknown --compression %q", name)
}
