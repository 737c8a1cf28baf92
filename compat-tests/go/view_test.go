package compat

import (
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestViewWithFranzGo reads a tag-filtered view (mq.view.source/mq.view.filter,
// a Sluice extension) with franz-go: the view's records are the source's
// tagged ones at the source's offsets, compressed and uncompressed batches
// alike; producing to the view fails with INVALID_TOPIC_EXCEPTION.
func TestViewWithFranzGo(t *testing.T) {
	adm, _ := newAdmin(t)
	source := createTopic(t, adm, 2, nil)
	view := uniqueName(t, "view")
	ctx := testCtx(t, 30*time.Second)
	resp, err := adm.CreateTopic(ctx, -1, -1, map[string]*string{
		"mq.view.source": strp(source),
		"mq.view.filter": strp("sql:tag IN ('red', 'blue') AND n >= 10"),
	}, view)
	if err != nil || resp.Err != nil {
		t.Fatalf("creating view: %v %v %s", err, resp.Err, resp.ErrMessage)
	}
	waitTopicReady(t, adm, view, 2)

	tags := []string{"red", "green", "blue", ""}
	var want []string
	for i, codec := range []kgo.CompressionCodec{kgo.NoCompression(), kgo.Lz4Compression()} {
		var recs []*kgo.Record
		for n := range 200 {
			r := &kgo.Record{Partition: int32(n / 2 % 2), Value: []byte(fmt.Sprintf("%d-%d", i, n)),
				Headers: []kgo.RecordHeader{{Key: "n", Value: []byte(fmt.Sprint(n))}}}
			if tag := tags[n%len(tags)]; tag != "" {
				r.Headers = append(r.Headers, kgo.RecordHeader{Key: "mq.tag", Value: []byte(tag)})
			}
			recs = append(recs, r)
		}
		// Manual partitioning keeps the records where the test put them; one
		// ProduceSync puts tags of all kinds into each batch.
		prod := newClient(t, kgo.DefaultProduceTopic(source), kgo.ProducerBatchCompression(codec),
			kgo.RecordPartitioner(kgo.ManualPartitioner()))
		results := prod.ProduceSync(testCtx(t, 30*time.Second), recs...)
		if err := results.FirstErr(); err != nil {
			t.Fatalf("produce: %v", err)
		}
		// Results come in completion order: judge each by its own headers.
		for _, r := range results {
			var tag string
			var n int
			for _, h := range r.Record.Headers {
				switch h.Key {
				case "mq.tag":
					tag = string(h.Value)
				case "n":
					fmt.Sscan(string(h.Value), &n)
				}
			}
			if (tag == "red" || tag == "blue") && n >= 10 {
				want = append(want, fmt.Sprintf("%d@%d", r.Record.Partition, r.Record.Offset))
			}
		}
	}

	cl := newClient(t, kgo.ConsumeTopics(view), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(500*time.Millisecond))
	got := pollN(t, cl, len(want), 30*time.Second)
	var seen []string
	for _, r := range got {
		seen = append(seen, fmt.Sprintf("%d@%d", r.Partition, r.Offset))
	}
	sort.Strings(want)
	sort.Strings(seen)
	if fmt.Sprint(seen) != fmt.Sprint(want) {
		t.Fatalf("view delivered %d records %v\nwant %d %v", len(seen), seen, len(want), want)
	}

	// Producing to a view is refused and stores nothing.
	prod := newClient(t, kgo.DefaultProduceTopic(view), kgo.RecordRetries(0),
		kgo.RecordDeliveryTimeout(10*time.Second))
	err = prod.ProduceSync(testCtx(t, 15*time.Second), &kgo.Record{Value: []byte("x")}).FirstErr()
	if !isErr(err, kerr.InvalidTopicException) {
		t.Fatalf("produce to a view: got %v, want INVALID_TOPIC_EXCEPTION", err)
	}
}
