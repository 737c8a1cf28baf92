package main

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

type e2eResult struct {
	Records  int `json:"records"`
	Produced int `json:"produced"`
	latencySummary
	Lost int `json:"lost"`
}

// Every probe value starts with a 16-byte header: the send time (unix nanos)
// and a sequence number, both big-endian. The sequence lets the consumer
// drop duplicates and tell exactly which records never arrived. Warm-up
// records carry send time 0.
const e2eHeader = 16

func runE2E(args []string) (any, error) {
	fs := newFlags("e2e")
	brokers := fs.String("brokers", "", "bootstrap brokers, host:port[,host:port]")
	topic := fs.String("topic", "", "topic to probe (must exist)")
	perSec := fs.Int("rate", 1000, "records per second")
	seconds := fs.Float64("seconds", 10, "how long to produce")
	size := fs.Int("size", 100, fmt.Sprintf("value size in bytes (>= %d)", e2eHeader))
	acks := fs.String("acks", "1", "0, 1 or all")
	lingerMs := fs.Int("linger-ms", 0, "producer linger in ms")
	batchMax := fs.Int("batch-max-bytes", mib, "max record batch bytes (above 1 MiB for 1 MiB records)")
	maxWait := fs.Duration("fetch-max-wait", 500*time.Millisecond, "consumer fetch max wait (Java's default is 500ms; franz-go's 5s)")
	grace := fs.Duration("grace", 10*time.Second, "after the last send, how long records may take to arrive before they count as lost")
	deliverAfter := fs.Duration("deliver-after", 0, "Sluice: send each record with mq.deliver.at this far ahead and measure lateness (receive time minus that time) instead of latency")
	fs.Parse(args)

	if *topic == "" {
		return nil, fmt.Errorf("--topic is required")
	}
	if *size < e2eHeader || *perSec < 1 || *seconds <= 0 {
		return nil, fmt.Errorf("need --size >= %d, --rate >= 1, --seconds > 0", e2eHeader)
	}
	total := int(float64(*perSec) * *seconds)
	seed, err := seedOpt(*brokers)
	if err != nil {
		return nil, err
	}
	ackOpt, err := ackOpts(*acks)
	if err != nil {
		return nil, err
	}

	setup, cancelSetup := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancelSetup()
	ends, partitions, err := endOffsets(setup, seed, *topic)
	if err != nil {
		return nil, err
	}

	// Consumer: direct assignment at the exact current end offsets, so no
	// record of this run can be skipped by a late "latest" reset.
	consumer, err := kgo.NewClient(seed, logOpt(),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{*topic: ends}),
		kgo.FetchMaxWait(*maxWait))
	if err != nil {
		return nil, err
	}
	defer consumer.Close()
	pr := &probe{lat: make([]uint32, total), seen: make([]bool, total)}
	cctx, stopConsumer := context.WithCancel(context.Background())
	consumed := make(chan struct{})
	go func() { defer close(consumed); pr.run(cctx, consumer) }()
	defer func() { stopConsumer(); <-consumed }()

	// Producer: partitions are chosen here (round-robin by sequence) so the
	// warm-up can reach every partition and the probe spreads evenly.
	producer, err := kgo.NewClient(append(ackOpt, seed, logOpt(),
		kgo.ProducerLinger(time.Duration(*lingerMs)*time.Millisecond),
		kgo.ProducerBatchMaxBytes(int32(*batchMax)),
		kgo.RecordPartitioner(kgo.ManualPartitioner()))...)
	if err != nil {
		return nil, err
	}
	defer producer.Close()
	template := filler(*size)

	// Warm-up: one record per partition, and wait until all of them come
	// back, so connections, metadata and fetch sessions exist before the
	// clock starts. Otherwise the first samples measure client start-up.
	var warm []*kgo.Record
	for p := range partitions {
		warm = append(warm, &kgo.Record{Topic: *topic, Partition: p, Value: make([]byte, *size)})
	}
	if err := producer.ProduceSync(setup, warm...).FirstErr(); err != nil {
		return nil, fmt.Errorf("warm-up produce: %w", err)
	}
	for pr.warm.Load() < int64(partitions) {
		if setup.Err() != nil {
			return nil, fmt.Errorf("warm-up records not consumed within 30s (%d of %d seen)", pr.warm.Load(), partitions)
		}
		time.Sleep(5 * time.Millisecond)
	}

	var (
		acked    atomic.Int64
		mu       sync.Mutex
		failures int
		firstErr error
	)
	promise := func(_ *kgo.Record, err error) {
		if err == nil {
			acked.Add(1)
			return
		}
		mu.Lock()
		failures++
		if firstErr == nil {
			firstErr = err
		}
		mu.Unlock()
	}

	// Pacing: every millisecond, send however many records are due by now
	// (one at t=0, then rate per second). A late tick sends a small burst,
	// which keeps the average rate exact without a busy loop.
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	begin := time.Now()
	for sent := 0; sent < total; {
		due := min(total, int(time.Since(begin).Seconds()*float64(*perSec))+1)
		for ; sent < due; sent++ {
			v := make([]byte, *size)
			copy(v, template)
			binary.BigEndian.PutUint64(v[8:], uint64(sent))
			r := &kgo.Record{Topic: *topic, Partition: int32(sent % int(partitions)), Value: v}
			// The probe's clock starts at the send, or for a delayed record at the
			// millisecond it is due (the broker's precision).
			start := time.Now().UnixNano()
			if *deliverAfter > 0 {
				dueMs := (start + deliverAfter.Nanoseconds()) / int64(time.Millisecond)
				start = dueMs * int64(time.Millisecond)
				r.Headers = []kgo.RecordHeader{{Key: "mq.deliver.at", Value: []byte(strconv.FormatInt(dueMs, 10))}}
			}
			binary.BigEndian.PutUint64(v, uint64(start))
			producer.Produce(context.Background(), r, promise)
		}
		if sent < total {
			<-tick.C
		}
	}
	end := time.Now()

	gctx, cancelGrace := context.WithDeadline(context.Background(), end.Add(*grace+*deliverAfter))
	defer cancelGrace()
	if err := producer.Flush(gctx); err != nil {
		return nil, fmt.Errorf("records still unacknowledged %v after the last send", *grace)
	}
	mu.Lock()
	if failures > 0 {
		mu.Unlock()
		return nil, fmt.Errorf("%d of %d records failed to produce, first error: %w", failures, total, firstErr)
	}
	mu.Unlock()
	produced := int(acked.Load())
	for int(pr.nseen.Load()) < produced && gctx.Err() == nil {
		time.Sleep(5 * time.Millisecond)
	}
	stopConsumer()
	<-consumed

	var samples []uint32
	for i, ok := range pr.seen {
		if ok {
			samples = append(samples, pr.lat[i])
		}
	}
	if len(samples) < produced {
		fmt.Fprintf(os.Stderr, "e2e: %d of %d acknowledged records not seen within %v\n", produced-len(samples), produced, *grace)
	}
	return e2eResult{
		Records:        len(samples),
		Produced:       produced,
		latencySummary: summarize(samples),
		Lost:           max(0, produced-len(samples)),
	}, nil
}

// endOffsets returns the current end offset of every partition of topic.
func endOffsets(ctx context.Context, seed kgo.Opt, topic string) (map[int32]kgo.Offset, int32, error) {
	cl, err := kgo.NewClient(seed, logOpt())
	if err != nil {
		return nil, 0, err
	}
	defer cl.Close()
	listed, err := kadm.NewClient(cl).ListEndOffsets(ctx, topic)
	if err == nil {
		err = listed.Error()
	}
	if err != nil {
		return nil, 0, fmt.Errorf("listing end offsets of %s: %w", topic, err)
	}
	ends := map[int32]kgo.Offset{}
	listed.Each(func(o kadm.ListedOffset) { ends[o.Partition] = kgo.NewOffset().At(o.Offset) })
	// Partitions are numbered 0..n-1; a gap would mean an incomplete answer.
	for p := range int32(len(ends)) {
		if _, ok := ends[p]; !ok {
			return nil, 0, fmt.Errorf("%s: no end offset for partition %d", topic, p)
		}
	}
	if len(ends) == 0 {
		return nil, 0, fmt.Errorf("%s: no partitions", topic)
	}
	return ends, int32(len(ends)), nil
}

// probe is the consumer side of e2e. lat and seen are written only by run's
// goroutine and read only after it has returned.
type probe struct {
	lat   []uint32 // microseconds, by sequence number
	seen  []bool
	nseen atomic.Int64
	warm  atomic.Int64
}

func (pr *probe) run(ctx context.Context, cl *kgo.Client) {
	for {
		fetches := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return
		}
		// One clock reading per poll: every record in it arrived together.
		now := time.Now().UnixNano()
		fetches.EachError(func(t string, p int32, err error) {
			fmt.Fprintf(os.Stderr, "e2e: fetch error on %s/%d: %v\n", t, p, err)
		})
		fetches.EachRecord(func(r *kgo.Record) {
			if len(r.Value) < e2eHeader {
				return
			}
			sentAt := int64(binary.BigEndian.Uint64(r.Value))
			seq := binary.BigEndian.Uint64(r.Value[8:])
			switch {
			case sentAt == 0:
				pr.warm.Add(1)
			case seq < uint64(len(pr.seen)) && !pr.seen[seq]:
				pr.seen[seq] = true
				pr.lat[seq] = micros(now - sentAt)
				pr.nseen.Add(1)
			}
		})
	}
}
