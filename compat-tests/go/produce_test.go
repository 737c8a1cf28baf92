package compat

import (
	"bytes"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestProduceAcks produces with acks=0, acks=1 and acks=all and reads
// everything back.
func TestProduceAcks(t *testing.T) {
	cases := []struct {
		name       string
		acks       kgo.Acks
		idempotent bool
	}{
		{"acks=0", kgo.NoAck(), false},
		{"acks=1", kgo.LeaderAck(), false},
		{"acks=all", kgo.AllISRAcks(), true},
	}
	const n, valueSize = 1000, 100
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			adm, _ := newAdmin(t)
			topic := createTopic(t, adm, 3, nil)
			opts := []kgo.Opt{kgo.DefaultProduceTopic(topic), kgo.RequiredAcks(tc.acks)}
			if !tc.idempotent {
				opts = append(opts, kgo.DisableIdempotentWrite())
			}
			prod := newClient(t, opts...)
			p := produceRecords(t, prod, topic, 0, n, valueSize)
			recs := consumeAll(t, topic, n, 30*time.Second)
			verifyRoundTrip(t, p, recs, valueSize, -1, tc.name != "acks=0")
			if got := sumOffsets(endOffsets(t, adm, topic)); got != n {
				t.Errorf("sum of end offsets = %d, want %d", got, n)
			}
			for _, r := range recs {
				if tc.idempotent && r.ProducerID < 0 {
					t.Fatalf("idempotent producer: record %d@%d has producer id %d", r.Partition, r.Offset, r.ProducerID)
				}
				if !tc.idempotent && r.ProducerID != -1 {
					t.Fatalf("non-idempotent producer: record %d@%d has producer id %d, want -1", r.Partition, r.Offset, r.ProducerID)
				}
			}
		})
	}
}

// TestProduceCompressionRoundTrip sends 20,000 keyed records with headers
// over 6 partitions with each codec (idempotent producer, acks=all) and checks
// they come back exactly once, in per-partition order, intact, in batches of
// the codec they were produced with.
func TestProduceCompressionRoundTrip(t *testing.T) {
	codecs := []struct {
		name  string
		codec kgo.CompressionCodec
		id    int8
	}{
		{"none", kgo.NoCompression(), 0},
		{"gzip", kgo.GzipCompression(), 1},
		{"snappy", kgo.SnappyCompression(), 2},
		{"lz4", kgo.Lz4Compression(), 3},
		{"zstd", kgo.ZstdCompression(), 4},
	}
	const n, valueSize, partitions = 20000, 64, 6
	for _, c := range codecs {
		t.Run(c.name, func(t *testing.T) {
			adm, _ := newAdmin(t)
			topic := createTopic(t, adm, partitions, nil)
			prod := newClient(t,
				kgo.DefaultProduceTopic(topic),
				kgo.ProducerBatchCompression(c.codec),
				kgo.ProducerLinger(5*time.Millisecond),
			)
			start := time.Now()
			p := produceRecords(t, prod, topic, 0, n, valueSize)
			produceTook := time.Since(start)
			if len(p.where) != n {
				t.Fatalf("%d records acknowledged, want %d", len(p.where), n)
			}
			start = time.Now()
			recs := consumeAll(t, topic, n, 60*time.Second)
			t.Logf("produced %d records in %v, consumed in %v", n, produceTook.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
			if len(recs) != n {
				t.Errorf("consumed %d records, want exactly %d", len(recs), n)
			}
			verifyRoundTrip(t, p, recs, valueSize, c.id, true)

			ends := endOffsets(t, adm, topic)
			if got := sumOffsets(ends); got != n {
				t.Errorf("sum of end offsets = %d, want %d (duplicates or loss in the log)", got, n)
			}
			for part := int32(0); part < partitions; part++ {
				if ends[part] == 0 {
					t.Errorf("partition %d received no records (key hashing should spread 503 keys over all partitions)", part)
				}
			}
			pid, _, err := prod.ProducerID(testCtx(t, 10*time.Second))
			if err != nil {
				t.Fatalf("ProducerID: %v", err)
			}
			for _, r := range recs {
				if r.ProducerID != pid {
					t.Fatalf("record %d@%d has producer id %d, want %d (idempotent producer)", r.Partition, r.Offset, r.ProducerID, pid)
				}
			}
		})
	}
}

// TestIdempotentProducer checks InitProducerId and that batches carry the
// producer id/epoch, and that two producers get distinct ids.
func TestIdempotentProducer(t *testing.T) {
	adm, _ := newAdmin(t)
	topic := createTopic(t, adm, 2, nil)
	p1 := newClient(t, kgo.DefaultProduceTopic(topic))
	p2 := newClient(t, kgo.DefaultProduceTopic(topic))
	ctx := testCtx(t, 30*time.Second)
	id1, ep1, err := p1.ProducerID(ctx)
	if err != nil {
		t.Fatalf("producer 1 InitProducerId: %v", err)
	}
	id2, _, err := p2.ProducerID(ctx)
	if err != nil {
		t.Fatalf("producer 2 InitProducerId: %v", err)
	}
	if id1 < 0 || id2 < 0 || id1 == id2 {
		t.Fatalf("producer ids %d and %d: want two distinct non-negative ids", id1, id2)
	}
	// Two flushes from the same producer: sequence numbers continue.
	a := produceRecords(t, p1, topic, 0, 500, 32)
	b := produceRecords(t, p1, topic, 500, 1000, 32)
	for k, v := range b.where {
		a.where[k] = v
	}
	recs := consumeAll(t, topic, 1000, 30*time.Second)
	verifyRoundTrip(t, a, recs, 32, -1, true)
	for _, r := range recs {
		if r.ProducerID != id1 || r.ProducerEpoch != ep1 {
			t.Fatalf("record %d@%d: producer %d epoch %d, want %d epoch %d", r.Partition, r.Offset, r.ProducerID, r.ProducerEpoch, id1, ep1)
		}
	}
}

// TestProduceNullEmptyAndLarge checks null vs empty keys/values, a record
// close to the default 1 MiB limit, and that the broker rejects a record over
// max.message.bytes with MESSAGE_TOO_LARGE.
func TestProduceNullEmptyAndLarge(t *testing.T) {
	adm, _ := newAdmin(t)
	topic := createTopic(t, adm, 1, nil)
	prod := newClient(t, kgo.DefaultProduceTopic(topic), kgo.ProducerBatchMaxBytes(8<<20),
		kgo.ProducerBatchCompression(kgo.NoCompression()))
	ctx := testCtx(t, 60*time.Second)

	large := bytes.Repeat([]byte("0123456789abcdef"), 900*1024/16)
	in := []*kgo.Record{
		{Key: nil, Value: nil},             // tombstone with null key
		{Key: []byte{}, Value: []byte{}},   // empty, not null
		{Key: []byte("k"), Value: nil},     // keyed tombstone
		{Key: []byte("big"), Value: large}, // 900 KiB
		{Key: []byte("after"), Value: []byte("v")},
	}
	for i, r := range in {
		if err := prod.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
	}
	recs := consumeAll(t, topic, len(in), 30*time.Second)
	for i, r := range recs {
		if r.Offset != int64(i) {
			t.Errorf("record %d has offset %d", i, r.Offset)
		}
		w := in[i]
		if (w.Key == nil) != (r.Key == nil) || !bytes.Equal(w.Key, r.Key) {
			t.Errorf("record %d: key %q (nil=%v), want %q (nil=%v)", i, r.Key, r.Key == nil, w.Key, w.Key == nil)
		}
		if (w.Value == nil) != (r.Value == nil) || !bytes.Equal(w.Value, r.Value) {
			t.Errorf("record %d: value len %d (nil=%v), want len %d (nil=%v)", i, len(r.Value), r.Value == nil, len(w.Value), w.Value == nil)
		}
	}

	// 2 MiB > default max.message.bytes (1048588): the broker must refuse it.
	huge := &kgo.Record{Key: []byte("huge"), Value: bytes.Repeat([]byte{'x'}, 2<<20)}
	err := prod.ProduceSync(ctx, huge).FirstErr()
	if !isErr(err, kerr.MessageTooLarge) && !isErr(err, kerr.RecordListTooLarge) {
		t.Errorf("producing a 2 MiB record: got %v, want MESSAGE_TOO_LARGE", err)
	}
	if got := endOffsets(t, adm, topic)[0]; got != int64(len(in)) {
		t.Errorf("end offset %d after rejected record, want %d", got, len(in))
	}
}
