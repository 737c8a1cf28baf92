package compat

// Sluice-only: delayed delivery (mq.delay.ms / mq.deliver.at) and retry topics
// (G.retry / G.dlq) with franz-go.
//
// A delayed record is acknowledged at once at an offset that stays a gap (a
// batch whose records are all delayed becomes an empty batch, as after
// compaction); when due the broker appends a copy to the same partition at a
// new offset, without the delay headers and with mq.delay.origin.offset = the
// acknowledged offset. A record produced to G.retry gets mq.retry.count + 1 and
// is held for the topic's backoff, or goes at once to G.dlq (with
// mq.dlq.reason) once the count passes mq.retry.max.

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

const (
	hdrDelayMS     = "mq.delay.ms"
	hdrDeliverAt   = "mq.deliver.at"
	hdrDelayOrigin = "mq.delay.origin.offset"
	hdrRetryCount  = "mq.retry.count"
	hdrDLQReason   = "mq.dlq.reason"
)

// onlySluice skips a test of a Sluice extension when the broker is not ours.
func onlySluice(t *testing.T, why string) {
	t.Helper()
	if env.external {
		t.Skipf("Sluice-only (%s); KAFKA_BOOTSTRAP is set", why)
	}
}

func hdr(k, v string) kgo.RecordHeader { return kgo.RecordHeader{Key: k, Value: []byte(v)} }

// headerValues returns every value of header k, in order.
func headerValues(r *kgo.Record, k string) []string {
	var out []string
	for _, h := range r.Headers {
		if h.Key == k {
			out = append(out, string(h.Value))
		}
	}
	return out
}

// headerValue returns the last value of header k and whether it is present.
func headerValue(r *kgo.Record, k string) (string, bool) {
	vs := headerValues(r, k)
	if len(vs) == 0 {
		return "", false
	}
	return vs[len(vs)-1], true
}

// batchCounter counts the batches a client wrote (produce) or read (fetch),
// and its fetch responses.
type batchCounter struct {
	mu      sync.Mutex
	written []int // records per produced batch
	read    []int // records per fetched batch (0: an empty batch)
	fetches int   // fetch responses read
}

func (c *batchCounter) OnBrokerRead(_ kgo.BrokerMetadata, key int16, _ int, _, _ time.Duration, err error) {
	if key == 1 && err == nil { // Fetch
		c.mu.Lock()
		c.fetches++
		c.mu.Unlock()
	}
}

func (c *batchCounter) fetchCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.fetches
}

func (c *batchCounter) OnProduceBatchWritten(_ kgo.BrokerMetadata, _ string, _ int32, m kgo.ProduceBatchMetrics) {
	c.mu.Lock()
	c.written = append(c.written, m.NumRecords)
	c.mu.Unlock()
}

func (c *batchCounter) OnFetchBatchRead(_ kgo.BrokerMetadata, _ string, _ int32, m kgo.FetchBatchMetrics) {
	c.mu.Lock()
	c.read = append(c.read, m.NumRecords)
	c.mu.Unlock()
}

func (c *batchCounter) snapshot() (written, read []int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]int(nil), c.written...), append([]int(nil), c.read...)
}

// arrival is a consumed record with the time PollFetches returned it.
type arrival struct {
	r  *kgo.Record
	at time.Time
}

// partitionReader reads one partition from offset 0 without a group.
type partitionReader struct {
	t       *testing.T
	cl      *kgo.Client
	batches *batchCounter
	got     []arrival
}

func newPartitionReader(t *testing.T, topic string, partition int32) *partitionReader {
	t.Helper()
	bc := &batchCounter{}
	cl := newClient(t,
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {partition: kgo.NewOffset().At(0)}}),
		kgo.FetchMaxWait(100*time.Millisecond),
		kgo.WithHooks(bc))
	return &partitionReader{t: t, cl: cl, batches: bc}
}

// poll reads until stop() holds or d has passed; returns the new arrivals.
func (p *partitionReader) poll(d time.Duration, stop func(all []arrival) bool) []arrival {
	p.t.Helper()
	start := len(p.got)
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if stop != nil && stop(p.got) {
			break
		}
		ctx, cancel := context.WithDeadline(context.Background(), deadline)
		fs := p.cl.PollFetches(ctx)
		now := time.Now()
		cancel()
		fs.EachError(func(tp string, part int32, err error) {
			if err != context.DeadlineExceeded {
				p.t.Fatalf("fetch error on %s/%d: %v", tp, part, err)
			}
		})
		for _, r := range fs.Records() {
			p.got = append(p.got, arrival{r, now})
		}
	}
	return p.got[start:]
}

// pollCount reads until n records in all arrived, failing after timeout.
func (p *partitionReader) pollCount(n int, timeout time.Duration) {
	p.t.Helper()
	p.poll(timeout, func(all []arrival) bool { return len(all) >= n })
	if len(p.got) < n {
		p.t.Fatalf("read %d records within %v, want %d: %s", len(p.got), timeout, n, describe(p.got))
	}
}

// fmtHeaders renders headers as k=v pairs.
func fmtHeaders(hs []kgo.RecordHeader) string {
	var parts []string
	for _, h := range hs {
		parts = append(parts, fmt.Sprintf("%s=%q", h.Key, h.Value))
	}
	return "[" + strings.Join(parts, " ") + "]"
}

func describe(as []arrival) string {
	var parts []string
	for _, a := range as {
		parts = append(parts, fmt.Sprintf("%d:%s", a.r.Offset, a.r.Key))
	}
	return "[" + strings.Join(parts, " ") + "]"
}

func endOffset(t *testing.T, topic string, partition int32) int64 {
	t.Helper()
	adm, _ := newAdmin(t)
	return endOffsets(t, adm, topic)[partition]
}

// TestDelayMixedBatch: one produce batch of 20 records, the odd ones delayed by
// 1.5 s. Before they are due a reader from offset 0 sees the 10 immediate
// records at their acknowledged offsets (the delayed ones are gaps inside the
// batch); when due each delayed record shows up once at a new offset >= 20,
// with its key, value, timestamp and other headers, without mq.delay.ms and
// with mq.delay.origin.offset = its acknowledged offset.
func TestDelayMixedBatch(t *testing.T) {
	onlySluice(t, "delayed delivery is a Sluice extension")
	const n = 20
	const delay = 1500 * time.Millisecond
	adm, _ := newAdmin(t)
	topic := createTopic(t, adm, 1, nil)

	bc := &batchCounter{}
	prod := newClient(t, kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerLinger(100*time.Millisecond), kgo.WithHooks(bc))
	var recs []*kgo.Record
	for i := range n {
		r := &kgo.Record{Partition: 0, Key: []byte(fmt.Sprintf("k%d", i)), Value: []byte(fmt.Sprintf("v%d", i)),
			Timestamp: time.UnixMilli(1_700_000_000_000 + int64(i)),
			Headers:   []kgo.RecordHeader{hdr("trace", strconv.Itoa(i))}}
		if i%2 == 1 {
			r.Headers = append(r.Headers, hdr(hdrDelayMS, strconv.Itoa(int(delay.Milliseconds()))))
			r.Headers = append(r.Headers, hdr("after", "delay"))
		}
		recs = append(recs, r)
	}
	sentAt := time.Now()
	results := prod.ProduceSync(testCtx(t, 15*time.Second), recs...)
	if err := results.FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
	if written, _ := bc.snapshot(); fmt.Sprint(written) != "[20]" {
		t.Fatalf("records per produced batch %v, want one batch of 20", written)
	}
	acked := make(map[string]*kgo.Record, n) // key -> acknowledged record
	for _, r := range results {
		acked[string(r.Record.Key)] = r.Record
	}
	for i := range n {
		if got := acked[fmt.Sprintf("k%d", i)].Offset; got != int64(i) {
			t.Errorf("k%d acknowledged at offset %d, want %d", i, got, i)
		}
	}
	if end := endOffset(t, topic, 0); end != n {
		t.Errorf("end offset after the produce %d, want %d (delayed records leave gaps)", end, n)
	}

	// Before they are due: the immediate records only, at their offsets.
	rd := newPartitionReader(t, topic, 0)
	rd.pollCount(n/2, 10*time.Second)
	rd.poll(300*time.Millisecond, nil)
	early := append([]arrival(nil), rd.got...)
	earlyDone := time.Since(sentAt)
	var earlyWant, earlyGot []string
	for i := 0; i < n; i += 2 {
		earlyWant = append(earlyWant, fmt.Sprintf("%d:k%d", i, i))
	}
	for _, a := range early {
		earlyGot = append(earlyGot, fmt.Sprintf("%d:%s", a.r.Offset, a.r.Key))
	}
	if earlyDone >= delay {
		t.Logf("NOTE: the early read took %v, longer than the delay", earlyDone)
	}
	if fmt.Sprint(earlyGot[:min(len(earlyGot), n/2)]) != fmt.Sprint(earlyWant) {
		t.Fatalf("before the delay: read %v, want %v", earlyGot, earlyWant)
	}
	for _, a := range early[n/2:] {
		if a.at.Sub(sentAt) < delay {
			t.Fatalf("delayed record %s at offset %d read %v after the send, before its %v delay",
				a.r.Key, a.r.Offset, a.at.Sub(sentAt), delay)
		}
	}
	for _, a := range early[:n/2] {
		r := a.r
		i, _ := strconv.Atoi(strings.TrimPrefix(string(r.Key), "k"))
		if string(r.Value) != fmt.Sprintf("v%d", i) || r.Timestamp.UnixMilli() != 1_700_000_000_000+int64(i) {
			t.Errorf("immediate record %s: value %q timestamp %d", r.Key, r.Value, r.Timestamp.UnixMilli())
		}
		if tr, _ := headerValue(r, "trace"); tr != strconv.Itoa(i) {
			t.Errorf("immediate record %s: trace header %q", r.Key, tr)
		}
		if _, ok := headerValue(r, hdrDelayOrigin); ok {
			t.Errorf("immediate record %s carries %s", r.Key, hdrDelayOrigin)
		}
	}
	_, read := rd.batches.snapshot()
	t.Logf("before the delay (%v after the send): %d records; records per fetched batch %v",
		earlyDone.Round(time.Millisecond), len(early), read)

	// When due: each delayed record once, at a new offset.
	rd.pollCount(n, 10*time.Second)
	rd.poll(500*time.Millisecond, nil) // no duplicates
	if len(rd.got) != n {
		t.Fatalf("read %d records, want %d: %s", len(rd.got), n, describe(rd.got))
	}
	late := rd.got[n/2:]
	seen := map[string]bool{}
	prev := int64(-1)
	var lateness time.Duration
	for _, a := range late {
		r := a.r
		key := string(r.Key)
		i, _ := strconv.Atoi(strings.TrimPrefix(key, "k"))
		if i%2 != 1 || seen[key] {
			t.Errorf("after the delay: unexpected or repeated record %s at offset %d", key, r.Offset)
			continue
		}
		seen[key] = true
		ack := acked[key]
		if r.Offset < n || r.Offset <= prev {
			t.Errorf("%s delivered at offset %d (previous %d), want a new increasing offset >= %d", key, r.Offset, prev, n)
		}
		prev = r.Offset
		if waited := a.at.Sub(sentAt); waited < delay {
			t.Errorf("%s read %v after the send, before its %v delay", key, waited, delay)
		} else {
			lateness = max(lateness, waited-delay)
		}
		if string(r.Value) != fmt.Sprintf("v%d", i) {
			t.Errorf("%s: value %q", key, r.Value)
		}
		if !r.Timestamp.Equal(ack.Timestamp) {
			t.Errorf("%s: timestamp %d, want the produced %d", key, r.Timestamp.UnixMilli(), ack.Timestamp.UnixMilli())
		}
		if o := headerValues(r, hdrDelayOrigin); fmt.Sprint(o) != fmt.Sprintf("[%d]", ack.Offset) {
			t.Errorf("%s: %s %v, want [%d]", key, hdrDelayOrigin, o, ack.Offset)
		}
		if _, ok := headerValue(r, hdrDelayMS); ok {
			t.Errorf("%s: %s not removed", key, hdrDelayMS)
		}
		if tr, _ := headerValue(r, "trace"); tr != strconv.Itoa(i) {
			t.Errorf("%s: trace header %q", key, tr)
		}
		if af, _ := headerValue(r, "after"); af != "delay" {
			t.Errorf("%s: header after=%q, want delay (a header after the delay header kept)", key, af)
		}
	}
	if len(seen) != n/2 {
		t.Errorf("after the delay: %d distinct delayed records, want %d: %s", len(seen), n/2, describe(late))
	}
	if end := endOffset(t, topic, 0); end != n+n/2 {
		t.Errorf("end offset after delivery %d, want %d", end, n+n/2)
	}

	// A fresh reader from the start reads all 20 once: gaps and all.
	rd2 := newPartitionReader(t, topic, 0)
	rd2.pollCount(n, 10*time.Second)
	rd2.poll(300*time.Millisecond, nil)
	keys := map[string]int64{}
	for _, a := range rd2.got {
		if _, dup := keys[string(a.r.Key)]; dup {
			t.Errorf("fresh reader: %s read twice", a.r.Key)
		}
		keys[string(a.r.Key)] = a.r.Offset
	}
	if len(rd2.got) != n || len(keys) != n {
		t.Errorf("fresh reader: %d records (%d keys), want %d: %s", len(rd2.got), len(keys), n, describe(rd2.got))
	}
	_, read2 := rd2.batches.snapshot()
	t.Logf("delayed records at offsets %s, at most %v after their due time; fresh reader: records per fetched batch %v",
		describe(late), lateness.Round(time.Millisecond), read2)
}

// TestDelayAllDelayedBatchThenImmediate: a batch of 5 records all delayed by
// 1 s becomes an empty batch; a reader waiting at offset 0 steps past it once;
// a reader started after the immediate record produced next reads that record
// before the delayed ones, which follow when due. One of the five has
// mq.deliver.at = send + 1 s and mq.delay.ms = 10 minutes: mq.deliver.at wins.
func TestDelayAllDelayedBatchThenImmediate(t *testing.T) {
	onlySluice(t, "delayed delivery is a Sluice extension")
	const delay = time.Second
	adm, _ := newAdmin(t)
	topic := createTopic(t, adm, 1, nil)
	bc := &batchCounter{}
	prod := newClient(t, kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerLinger(100*time.Millisecond), kgo.WithHooks(bc))

	var delayed []*kgo.Record
	for i := range 5 {
		delayed = append(delayed, &kgo.Record{Partition: 0, Key: []byte(fmt.Sprintf("d%d", i)),
			Value:   []byte(fmt.Sprintf("delayed %d", i)),
			Headers: []kgo.RecordHeader{hdr(hdrDelayMS, strconv.Itoa(int(delay.Milliseconds())))}})
	}
	// A reader already at offset 0 while the log holds nothing but the empty
	// batch: it must step past it once, not fetch it again and again.
	sitter := newPartitionReader(t, topic, 0)
	sitter.poll(200*time.Millisecond, nil)

	// The last one says when by mq.deliver.at, which wins over its 10-minute mq.delay.ms.
	sentAt := time.Now()
	delayed[4].Headers = []kgo.RecordHeader{hdr(hdrDelayMS, "600000"),
		hdr(hdrDeliverAt, strconv.FormatInt(sentAt.Add(delay).UnixMilli(), 10))}
	res := prod.ProduceSync(testCtx(t, 15*time.Second), delayed...)
	if err := res.FirstErr(); err != nil {
		t.Fatalf("produce delayed batch: %v", err)
	}
	ackedAt := map[string]int64{}
	for _, r := range res {
		ackedAt[string(r.Record.Key)] = r.Record.Offset
	}
	f0 := sitter.batches.fetchCount()
	sitter.poll(300*time.Millisecond, nil)
	_, sat := sitter.batches.snapshot()
	t.Logf("a reader at offset 0 with only the empty batch in the log: %d fetch responses in 300 ms, records per fetched batch %v",
		sitter.batches.fetchCount()-f0, sat)
	if len(sitter.got) != 0 {
		t.Fatalf("read %s with only delayed records in the log", describe(sitter.got))
	}
	if fmt.Sprint(sat) != "[0]" {
		t.Errorf("records per fetched batch %v with only the empty batch in the log, want [0] (read once)", sat)
	}
	imm, err := prod.ProduceSync(testCtx(t, 15*time.Second),
		&kgo.Record{Partition: 0, Key: []byte("now"), Value: []byte("immediate")}).First()
	if err != nil {
		t.Fatalf("produce immediate record: %v", err)
	}
	if written, _ := bc.snapshot(); fmt.Sprint(written) != "[5 1]" {
		t.Fatalf("records per produced batch %v, want [5 1]", written)
	}
	if imm.Offset != 5 {
		t.Errorf("immediate record acknowledged at %d, want 5 (after the 5 gaps); delayed at %v", imm.Offset, ackedAt)
	}

	rd := newPartitionReader(t, topic, 0)
	rd.pollCount(1, 10*time.Second)
	first := rd.got[0]
	_, read := rd.batches.snapshot()
	t.Logf("first record %s at offset %d, read %v after the delayed send; records per fetched batch %v",
		first.r.Key, first.r.Offset, first.at.Sub(sentAt).Round(time.Millisecond), read)
	if string(first.r.Key) != "now" || first.r.Offset != imm.Offset {
		t.Fatalf("first record read: %s at offset %d, want the immediate one at %d", first.r.Key, first.r.Offset, imm.Offset)
	}
	if first.at.Sub(sentAt) >= delay {
		t.Errorf("the immediate record was read only %v after the send, when the delayed ones were due already", first.at.Sub(sentAt))
	}

	sitter.pollCount(1, 10*time.Second)
	if a := sitter.got[0]; string(a.r.Key) != "now" || a.r.Offset != imm.Offset {
		t.Errorf("reader at offset 0 since before the produce: first record %s at %d, want now at %d",
			a.r.Key, a.r.Offset, imm.Offset)
	}

	rd.pollCount(6, 10*time.Second)
	rd.poll(300*time.Millisecond, nil)
	if len(rd.got) != 6 {
		t.Fatalf("read %d records, want 6: %s", len(rd.got), describe(rd.got))
	}
	seen := map[string]bool{}
	for _, a := range rd.got[1:] {
		key := string(a.r.Key)
		orig, ok := ackedAt[key]
		if !ok || seen[key] {
			t.Errorf("unexpected or repeated record %s at offset %d", key, a.r.Offset)
			continue
		}
		seen[key] = true
		if a.r.Offset <= imm.Offset {
			t.Errorf("%s at offset %d, want a new offset after %d", key, a.r.Offset, imm.Offset)
		}
		if waited := a.at.Sub(sentAt); waited < delay {
			t.Errorf("%s read %v after the send, before its %v delay", key, waited, delay)
		}
		if o, _ := headerValue(a.r, hdrDelayOrigin); o != strconv.FormatInt(orig, 10) {
			t.Errorf("%s: %s=%q, want %d", key, hdrDelayOrigin, o, orig)
		}
		for _, h := range []string{hdrDelayMS, hdrDeliverAt} {
			if _, ok := headerValue(a.r, h); ok {
				t.Errorf("%s: %s not removed", key, h)
			}
		}
	}
	if end := endOffset(t, topic, 0); end != 11 {
		t.Errorf("end offset %d, want 11", end)
	}
	t.Logf("delayed records read at %s", describe(rd.got[1:]))
}

// TestDelayBadValueRefused: a batch holding a record with a bad delay value is
// refused whole with INVALID_RECORD and stores nothing (not even its good
// delayed record); the producer goes on afterwards.
func TestDelayBadValueRefused(t *testing.T) {
	onlySluice(t, "delayed delivery is a Sluice extension")
	adm, _ := newAdmin(t)
	topic := createTopic(t, adm, 1, nil)
	prod := newClient(t, kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerLinger(100*time.Millisecond), kgo.RecordRetries(0), kgo.RecordDeliveryTimeout(10*time.Second))
	ctx := testCtx(t, 30*time.Second)
	if err := prod.ProduceSync(ctx, &kgo.Record{Partition: 0, Value: []byte("before")}).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
	for _, bad := range [][2]string{{hdrDelayMS, "abc"}, {hdrDelayMS, "-1"}, {hdrDeliverAt, "soon"}} {
		what := bad[0] + "=" + bad[1]
		res := prod.ProduceSync(ctx,
			&kgo.Record{Partition: 0, Key: []byte("good"), Value: []byte("immediate")},
			&kgo.Record{Partition: 0, Key: []byte("good-delayed"), Value: []byte("x"),
				Headers: []kgo.RecordHeader{hdr(hdrDelayMS, "300")}},
			&kgo.Record{Partition: 0, Key: []byte("bad"), Value: []byte("x"),
				Headers: []kgo.RecordHeader{hdr(bad[0], bad[1])}})
		for _, r := range res {
			if !isErr(r.Err, kerr.InvalidRecord) {
				t.Errorf("%s: record %s: got %v, want INVALID_RECORD", what, r.Record.Key, r.Err)
			}
		}
		t.Logf("%s -> %v", what, res.FirstErr())
		if end := endOffset(t, topic, 0); end != 1 {
			t.Errorf("%s: end offset %d after the refused batch, want 1", what, end)
		}
	}
	// Nothing of the refused batches shows up later, and the producer still works.
	time.Sleep(700 * time.Millisecond)
	after, err := prod.ProduceSync(ctx, &kgo.Record{Partition: 0, Value: []byte("after")}).First()
	if err != nil {
		t.Fatalf("produce after the refused batches: %v", err)
	}
	if after.Offset != 1 {
		t.Errorf("record after the refused batches at offset %d, want 1", after.Offset)
	}
	rd := newPartitionReader(t, topic, 0)
	rd.pollCount(2, 10*time.Second)
	rd.poll(300*time.Millisecond, nil)
	if got := describe(rd.got); got != "[0: 1:]" {
		t.Errorf("partition holds %s, want only the two good records [0: 1:]", got)
	}
}

// TestDelayRetryTopic: G.retry with mq.retry.max=2 and a 300 ms backoff. A record
// produced with mq.retry.count=1 shows in G.retry after the backoff with
// mq.retry.count=2 at a new offset; one produced with mq.retry.count=2 goes to
// G.dlq at once with mq.retry.count=3 and mq.dlq.reason.
func TestDelayRetryTopic(t *testing.T) {
	onlySluice(t, "retry and dead-letter topics are a Sluice extension")
	const backoff = 300 * time.Millisecond
	adm, _ := newAdmin(t)
	group := uniqueName(t, "g")
	retry, dlq := group+".retry", group+".dlq"
	resp, err := adm.CreateTopic(testCtx(t, 30*time.Second), 1, 1, map[string]*string{
		"mq.retry.max":        strp("2"),
		"mq.retry.backoff.ms": strp("300"),
	}, retry)
	if err != nil || resp.Err != nil {
		t.Fatalf("creating %s: %v %v %s", retry, err, resp.Err, resp.ErrMessage)
	}
	waitTopicReady(t, adm, retry, 1)
	waitTopicReady(t, adm, dlq, 1)

	prod := newClient(t, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	ctx := testCtx(t, 30*time.Second)

	// Count 1 -> 2, held for the backoff.
	sentAt := time.Now()
	ack1, err := prod.ProduceSync(ctx, &kgo.Record{Topic: retry, Partition: 0, Key: []byte("k1"), Value: []byte("v1"),
		Headers: []kgo.RecordHeader{hdr("trace", "one"), hdr(hdrRetryCount, "1")}}).First()
	if err != nil {
		t.Fatalf("produce to %s: %v", retry, err)
	}
	rd := newPartitionReader(t, retry, 0)
	rd.pollCount(1, 10*time.Second)
	a := rd.got[0]
	r := a.r
	waited := a.at.Sub(sentAt)
	t.Logf("retried record at %s/%d@%d (acknowledged at %d) read %v after the send; headers %v",
		retry, r.Partition, r.Offset, ack1.Offset, waited.Round(time.Millisecond), fmtHeaders(r.Headers))
	if waited < backoff {
		t.Errorf("retried record read %v after the send, before its %v backoff", waited, backoff)
	}
	if string(r.Key) != "k1" || string(r.Value) != "v1" {
		t.Errorf("retried record: key %q value %q", r.Key, r.Value)
	}
	if c := headerValues(r, hdrRetryCount); fmt.Sprint(c) != "[2]" {
		t.Errorf("retried record: %s %v, want [2]", hdrRetryCount, c)
	}
	if tr, _ := headerValue(r, "trace"); tr != "one" {
		t.Errorf("retried record: trace header %q", tr)
	}
	if r.Offset <= ack1.Offset {
		t.Errorf("retried record at offset %d, want a new offset after the acknowledged %d", r.Offset, ack1.Offset)
	}
	if o, _ := headerValue(r, hdrDelayOrigin); o != strconv.FormatInt(ack1.Offset, 10) {
		t.Errorf("retried record: %s=%q, want %d", hdrDelayOrigin, o, ack1.Offset)
	}

	// Count 2 -> 3 > mq.retry.max: straight to the dead-letter topic.
	sentAt = time.Now()
	ack2, err := prod.ProduceSync(ctx, &kgo.Record{Topic: retry, Partition: 0, Key: []byte("k2"), Value: []byte("v2"),
		Headers: []kgo.RecordHeader{hdr("trace", "two"), hdr(hdrRetryCount, "2")}}).First()
	if err != nil {
		t.Fatalf("produce to %s: %v", retry, err)
	}
	drd := newPartitionReader(t, dlq, 0)
	drd.pollCount(1, 10*time.Second)
	d := drd.got[0]
	t.Logf("dead letter at %s/%d@%d (acknowledged at %s@%d) read %v after the send; headers %v",
		dlq, d.r.Partition, d.r.Offset, retry, ack2.Offset, d.at.Sub(sentAt).Round(time.Millisecond), fmtHeaders(d.r.Headers))
	if string(d.r.Key) != "k2" || string(d.r.Value) != "v2" {
		t.Errorf("dead letter: key %q value %q", d.r.Key, d.r.Value)
	}
	if c := headerValues(d.r, hdrRetryCount); fmt.Sprint(c) != "[3]" {
		t.Errorf("dead letter: %s %v, want [3]", hdrRetryCount, c)
	}
	if reason, ok := headerValue(d.r, hdrDLQReason); !ok || reason == "" {
		t.Errorf("dead letter: no %s header", hdrDLQReason)
	}
	if tr, _ := headerValue(d.r, "trace"); tr != "two" {
		t.Errorf("dead letter: trace header %q", tr)
	}

	// Nothing more: no second dead letter, no copy of k2 in the retry topic.
	rd.poll(backoff+400*time.Millisecond, nil)
	drd.poll(100*time.Millisecond, nil)
	if len(rd.got) != 1 {
		t.Errorf("%s holds %s, want only the retried k1", retry, describe(rd.got))
	}
	if len(drd.got) != 1 {
		t.Errorf("%s holds %s, want only k2", dlq, describe(drd.got))
	}
}
