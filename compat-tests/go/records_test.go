package compat

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Record helpers shared by the produce, consume and broker tests.

var baseTimestamp = time.UnixMilli(1_700_000_000_000)

// makeRecord builds record number seq: key from a fixed key space, a value
// embedding seq, three headers (one empty) and a distinct timestamp.
func makeRecord(topic string, seq int, valueSize int) *kgo.Record {
	key := []byte("key-" + strconv.Itoa(seq%503))
	val := make([]byte, 8, 8+valueSize)
	binary.BigEndian.PutUint64(val, uint64(seq))
	for i := 0; i < valueSize; i++ {
		val = append(val, byte('a'+(seq+i)%26))
	}
	return &kgo.Record{
		Topic:     topic,
		Key:       key,
		Value:     val,
		Timestamp: baseTimestamp.Add(time.Duration(seq) * time.Millisecond),
		Headers: []kgo.RecordHeader{
			{Key: "seq", Value: []byte(strconv.Itoa(seq))},
			{Key: "content-type", Value: []byte("application/x-sluice-test")},
			{Key: "empty", Value: []byte{}},
		},
	}
}

// checkRecord verifies a consumed record against makeRecord(seq) and returns
// seq, or an error describing the mismatch.
func checkRecord(r *kgo.Record, valueSize int) (int, error) {
	if len(r.Value) < 8 {
		return -1, fmt.Errorf("%s/%d@%d: value too short (%d bytes)", r.Topic, r.Partition, r.Offset, len(r.Value))
	}
	seq := int(binary.BigEndian.Uint64(r.Value))
	want := makeRecord(r.Topic, seq, valueSize)
	where := fmt.Sprintf("%s/%d@%d (seq %d)", r.Topic, r.Partition, r.Offset, seq)
	if !bytes.Equal(r.Key, want.Key) {
		return seq, fmt.Errorf("%s: key %q, want %q", where, r.Key, want.Key)
	}
	if !bytes.Equal(r.Value, want.Value) {
		return seq, fmt.Errorf("%s: value differs (len %d, want %d)", where, len(r.Value), len(want.Value))
	}
	if !r.Timestamp.Equal(want.Timestamp) {
		return seq, fmt.Errorf("%s: timestamp %d, want %d", where, r.Timestamp.UnixMilli(), want.Timestamp.UnixMilli())
	}
	if tt := r.Attrs.TimestampType(); tt != 0 {
		return seq, fmt.Errorf("%s: timestamp type %d, want 0 (CreateTime)", where, tt)
	}
	if len(r.Headers) != len(want.Headers) {
		return seq, fmt.Errorf("%s: %d headers, want %d: %v", where, len(r.Headers), len(want.Headers), r.Headers)
	}
	for i, h := range r.Headers {
		if h.Key != want.Headers[i].Key || !bytes.Equal(h.Value, want.Headers[i].Value) {
			return seq, fmt.Errorf("%s: header %d = %q:%q, want %q:%q", where, i, h.Key, h.Value, want.Headers[i].Key, want.Headers[i].Value)
		}
	}
	return seq, nil
}

// produced remembers where each acknowledged record landed.
type produced struct {
	mu     sync.Mutex
	where  map[int]kgo.Record // seq -> record as acknowledged (partition/offset set)
	errs   []error
	failed int
}

func newProduced() *produced { return &produced{where: make(map[int]kgo.Record)} }

func (p *produced) promise(seq int) func(*kgo.Record, error) {
	return func(r *kgo.Record, err error) {
		p.mu.Lock()
		defer p.mu.Unlock()
		if err != nil {
			p.failed++
			if len(p.errs) < 5 {
				p.errs = append(p.errs, fmt.Errorf("seq %d: %w", seq, err))
			}
			return
		}
		p.where[seq] = *r
	}
}

// produceRecords produces records seq [from, to) asynchronously, flushes and
// fails the test if any record was not acknowledged.
func produceRecords(t testing.TB, cl *kgo.Client, topic string, from, to, valueSize int) *produced {
	t.Helper()
	p := newProduced()
	ctx := testCtx(t, 90*time.Second)
	for seq := from; seq < to; seq++ {
		cl.Produce(ctx, makeRecord(topic, seq, valueSize), p.promise(seq))
	}
	if err := cl.Flush(ctx); err != nil {
		t.Fatalf("flush: %v", err)
	}
	if p.failed > 0 {
		t.Fatalf("%d of %d records failed to produce; first errors: %v", p.failed, to-from, p.errs)
	}
	return p
}

// consumeAll reads a topic from the start with a direct (non-group) consumer
// until n records arrived or the timeout passed, and returns them.
func consumeAll(t testing.TB, topic string, n int, timeout time.Duration, opts ...kgo.Opt) []*kgo.Record {
	t.Helper()
	all := append([]kgo.Opt{
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(500 * time.Millisecond),
	}, opts...)
	cl := newClient(t, all...)
	defer cl.Close()
	return pollN(t, cl, n, timeout)
}

// pollN polls cl until n records were received or timeout passes.
func pollN(t testing.TB, cl *kgo.Client, n int, timeout time.Duration) []*kgo.Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var recs []*kgo.Record
	for len(recs) < n {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			break
		}
		fs.EachError(func(tp string, p int32, err error) {
			t.Errorf("fetch error on %s/%d: %v", tp, p, err)
		})
		if t.Failed() {
			t.FailNow()
		}
		recs = append(recs, fs.Records()...)
	}
	if len(recs) < n {
		t.Fatalf("consumed %d records within %v, want %d", len(recs), timeout, n)
	}
	return recs
}

// verifyRoundTrip checks that recs holds exactly the records acknowledged in
// p, each exactly once, at the acknowledged partition (and offset, when
// checkAckOffsets), intact and in per-partition production order. wantCodec
// >= 0 also checks the compression codec of the batches as fetched.
func verifyRoundTrip(t testing.TB, p *produced, recs []*kgo.Record, valueSize int, wantCodec int8, checkAckOffsets bool) {
	t.Helper()
	seen := make(map[int]bool, len(recs))
	byPart := make(map[int32][]*kgo.Record)
	bad := 0
	for _, r := range recs {
		seq, err := checkRecord(r, valueSize)
		if err != nil {
			bad++
			if bad <= 10 {
				t.Error(err)
			}
			continue
		}
		if seen[seq] {
			bad++
			if bad <= 10 {
				t.Errorf("seq %d consumed twice (second at %s/%d@%d)", seq, r.Topic, r.Partition, r.Offset)
			}
			continue
		}
		seen[seq] = true
		if ack, ok := p.where[seq]; ok {
			if ack.Partition != r.Partition || (checkAckOffsets && ack.Offset != r.Offset) {
				bad++
				if bad <= 10 {
					t.Errorf("seq %d acknowledged at partition %d offset %d but consumed at %d@%d", seq, ack.Partition, ack.Offset, r.Partition, r.Offset)
				}
			}
		} else {
			bad++
			if bad <= 10 {
				t.Errorf("consumed seq %d that was never acknowledged", seq)
			}
		}
		if wantCodec >= 0 && int8(r.Attrs.CompressionType()) != wantCodec {
			bad++
			if bad <= 10 {
				t.Errorf("seq %d: batch compression codec %d, want %d", seq, r.Attrs.CompressionType(), wantCodec)
			}
		}
		byPart[r.Partition] = append(byPart[r.Partition], r)
	}
	for seq := range p.where {
		if !seen[seq] {
			bad++
			if bad <= 10 {
				t.Errorf("acknowledged seq %d was not consumed", seq)
			}
		}
	}
	// Per partition: offsets strictly increasing in delivery order, and the
	// sequence numbers appear in the order they were produced.
	for part, rs := range byPart {
		for i := 1; i < len(rs); i++ {
			if rs[i].Offset <= rs[i-1].Offset {
				t.Errorf("partition %d: offset %d delivered after %d", part, rs[i].Offset, rs[i-1].Offset)
				break
			}
			a := int(binary.BigEndian.Uint64(rs[i-1].Value))
			b := int(binary.BigEndian.Uint64(rs[i].Value))
			if b <= a {
				t.Errorf("partition %d: seq %d stored after seq %d (produce order broken)", part, b, a)
				break
			}
		}
	}
	if bad > 10 {
		t.Errorf("... %d problems in total", bad)
	}
}

// endOffsets returns partition -> end offset for topic.
func endOffsets(t testing.TB, adm *kadm.Client, topic string) map[int32]int64 {
	t.Helper()
	ctx := testCtx(t, 20*time.Second)
	lo, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatalf("ListEndOffsets: %v", err)
	}
	out := make(map[int32]int64)
	lo.Each(func(o kadm.ListedOffset) {
		if o.Err != nil {
			t.Fatalf("ListEndOffsets %s/%d: %v", o.Topic, o.Partition, o.Err)
		}
		out[o.Partition] = o.Offset
	})
	return out
}

func sumOffsets(m map[int32]int64) int64 {
	var s int64
	for _, v := range m {
		s += v
	}
	return s
}

func sortedParts(m map[int32]bool) []int32 {
	var out []int32
	for p := range m {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}
