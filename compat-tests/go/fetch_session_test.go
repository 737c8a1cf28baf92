package compat

// Incremental fetch sessions (KIP-227), driven with raw Fetch requests built by
// franz-go's kmsg, so each step of the protocol is checked: the full request that
// opens a session, incremental requests that name only what moved, responses that
// hold only what changed, forgetting partitions, and the session errors. franz-go's
// own consumer uses sessions too; every consume test here exercises them that way.

import (
	"encoding/binary"
	"maps"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// sessionFetcher sends Fetch requests of one version for one topic.
type sessionFetcher struct {
	t       *testing.T
	cl      *kgo.Client
	topic   string
	topicID [16]byte
	version int16
}

// fetchPart is a partition named in a request: its number and fetch offset.
type fetchPart struct {
	partition int32
	offset    int64
}

// fetch sends one request. forget lists partitions to drop from the session.
func (f *sessionFetcher) fetch(id, epoch int32, parts []fetchPart, forget []int32, maxWait int32) *kmsg.FetchResponse {
	f.t.Helper()
	req := kmsg.NewPtrFetchRequest()
	req.Version = f.version
	req.ReplicaID = -1
	req.MaxWaitMillis = maxWait
	req.MinBytes = 1
	req.MaxBytes = 1 << 20
	req.SessionID = id
	req.SessionEpoch = epoch
	if len(parts) > 0 {
		rt := kmsg.NewFetchRequestTopic()
		rt.Topic = f.topic
		rt.TopicID = f.topicID
		for _, p := range parts {
			rp := kmsg.NewFetchRequestTopicPartition()
			rp.Partition = p.partition
			rp.FetchOffset = p.offset
			rp.CurrentLeaderEpoch = -1
			rp.LogStartOffset = -1
			rp.PartitionMaxBytes = 1 << 20
			rt.Partitions = append(rt.Partitions, rp)
		}
		req.Topics = append(req.Topics, rt)
	}
	if len(forget) > 0 {
		ft := kmsg.NewFetchRequestForgottenTopic()
		ft.Topic = f.topic
		ft.TopicID = f.topicID
		ft.Partitions = forget
		req.ForgottenTopics = append(req.ForgottenTopics, ft)
	}
	// kmsg would pick the newest version both sides support; pin ours.
	resp, err := f.cl.Request(testCtx(f.t, 20*time.Second), pinnedVersion{req})
	if err != nil {
		f.t.Fatalf("Fetch: %v", err)
	}
	return resp.(*kmsg.FetchResponse)
}

// pinnedVersion keeps the request's version as set instead of the negotiated one.
type pinnedVersion struct{ *kmsg.FetchRequest }

func (p pinnedVersion) MaxVersion() int16 { return p.FetchRequest.Version }

// answered returns, per partition in the response, its high watermark and how many
// records it carried; it fails the test on any error.
func answered(t *testing.T, resp *kmsg.FetchResponse) map[int32][2]int64 {
	t.Helper()
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		t.Fatalf("Fetch: %v", err)
	}
	out := map[int32][2]int64{}
	for _, rt := range resp.Topics {
		for _, rp := range rt.Partitions {
			if err := kerr.ErrorForCode(rp.ErrorCode); err != nil {
				t.Fatalf("partition %d: %v", rp.Partition, err)
			}
			out[rp.Partition] = [2]int64{rp.HighWatermark, int64(countRecords(rp.RecordBatches))}
		}
	}
	return out
}

// countRecords counts the records of the v2 batches in a record set (header field at
// byte 57 of each batch).
func countRecords(set []byte) int {
	n := 0
	for len(set) >= 61 {
		total := int(int32(binary.BigEndian.Uint32(set[8:]))) + 12
		if total > len(set) {
			break
		}
		n += int(int32(binary.BigEndian.Uint32(set[57:])))
		set = set[total:]
	}
	return n
}

func produceTo(t *testing.T, cl *kgo.Client, topic string, partition int32, n int) {
	t.Helper()
	ctx := testCtx(t, 20*time.Second)
	for i := 0; i < n; i++ {
		r := &kgo.Record{Topic: topic, Partition: partition, Value: []byte("v")}
		if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatalf("produce to %d: %v", partition, err)
		}
	}
}

func TestFetchSessionIncremental(t *testing.T) {
	for _, version := range []int16{12, 13} {
		t.Run(map[int16]string{12: "v12-names", 13: "v13-ids"}[version], func(t *testing.T) {
			adm, cl := newAdmin(t)
			topic := createTopic(t, adm, 3, nil)
			tds, err := adm.ListTopics(testCtx(t, 10*time.Second), topic)
			if err != nil {
				t.Fatalf("ListTopics: %v", err)
			}
			prod := newClient(t, kgo.RecordPartitioner(kgo.ManualPartitioner()))
			produceTo(t, prod, topic, 0, 4)
			produceTo(t, prod, topic, 1, 2)
			f := &sessionFetcher{t: t, cl: cl, topic: topic, topicID: tds[topic].ID, version: version}

			// Epoch 0 opens a session; the answer is full.
			resp := f.fetch(0, 0, []fetchPart{{0, 0}, {1, 0}, {2, 0}}, nil, 500)
			got := answered(t, resp)
			if resp.SessionID == 0 {
				t.Fatalf("no session given for epoch 0")
			}
			if want := map[int32][2]int64{0: {4, 4}, 1: {2, 2}, 2: {0, 0}}; !maps.Equal(got, want) {
				t.Fatalf("full answer %v, want %v", got, want)
			}
			id := resp.SessionID

			// Name the two partitions read, at their new offsets: nothing changed, so
			// after max wait the answer holds no partition.
			resp = f.fetch(id, 1, []fetchPart{{0, 4}, {1, 2}}, nil, 300)
			if got := answered(t, resp); len(got) != 0 || resp.SessionID != id {
				t.Fatalf("incremental answer with nothing new: %v (session %d, want %d)", got, resp.SessionID, id)
			}

			// A record on partition 2 only: the answer holds partition 2 alone, though
			// the request names nothing.
			produceTo(t, prod, topic, 2, 1)
			resp = f.fetch(id, 2, nil, nil, 2000)
			if got, want := answered(t, resp), map[int32][2]int64{2: {1, 1}}; !maps.Equal(got, want) {
				t.Fatalf("incremental answer %v, want %v", got, want)
			}

			// Wrong epoch and unknown id are top-level errors; the session lives on.
			if resp := f.fetch(id, 9, nil, nil, 0); resp.ErrorCode != kerr.InvalidFetchSessionEpoch.Code {
				t.Fatalf("wrong epoch: error %v", kerr.ErrorForCode(resp.ErrorCode))
			}
			if resp := f.fetch(id+1, 1, nil, nil, 0); resp.ErrorCode != kerr.FetchSessionIDNotFound.Code {
				t.Fatalf("unknown session: error %v", kerr.ErrorForCode(resp.ErrorCode))
			}

			// Forget partition 2 (still at offset 0 in the session, so it would be
			// answered again): it is gone; then new records on 0 come back alone.
			resp = f.fetch(id, 3, nil, []int32{2}, 300)
			if got := answered(t, resp); len(got) != 0 {
				t.Fatalf("after forgetting 2: answer %v, want none", got)
			}
			produceTo(t, prod, topic, 0, 1)
			produceTo(t, prod, topic, 2, 1)
			resp = f.fetch(id, 4, nil, nil, 2000)
			if got, want := answered(t, resp), map[int32][2]int64{0: {5, 1}}; !maps.Equal(got, want) {
				t.Fatalf("answer after forgetting: %v, want %v", got, want)
			}

			// Epoch -1 closes the session and is answered in full without one.
			resp = f.fetch(id, -1, []fetchPart{{2, 0}}, nil, 500)
			if got := answered(t, resp); resp.SessionID != 0 || len(got) != 1 || got[2][1] != 2 {
				t.Fatalf("closing fetch: session %d, answer %v", resp.SessionID, got)
			}
			if resp := f.fetch(id, 5, nil, nil, 0); resp.ErrorCode != kerr.FetchSessionIDNotFound.Code {
				t.Fatalf("closed session: error %v", kerr.ErrorForCode(resp.ErrorCode))
			}
		})
	}
}

// TestFetchSessionTopicIDsMustMatch: a session opened with topic ids (v13+) cannot be
// continued by a request that names topics (v12), as Kafka refuses it.
func TestFetchSessionTopicIDsMustMatch(t *testing.T) {
	adm, cl := newAdmin(t)
	topic := createTopic(t, adm, 1, nil)
	tds, err := adm.ListTopics(testCtx(t, 10*time.Second), topic)
	if err != nil {
		t.Fatalf("ListTopics: %v", err)
	}
	f := &sessionFetcher{t: t, cl: cl, topic: topic, topicID: tds[topic].ID, version: 13}
	resp := f.fetch(0, 0, []fetchPart{{0, 0}}, nil, 0)
	answered(t, resp)
	if resp.SessionID == 0 {
		t.Fatalf("no session given")
	}
	f.version = 12
	resp = f.fetch(resp.SessionID, 1, nil, nil, 0)
	if resp.ErrorCode != kerr.FetchSessionTopicIDError.Code {
		t.Fatalf("v12 request in a v13 session: error %v, want FETCH_SESSION_TOPIC_ID_ERROR", kerr.ErrorForCode(resp.ErrorCode))
	}
}

// TestFetchSessionConsumerManyPartitions: franz-go's consumer keeps one session over
// 200 partitions (most fetches are incremental) and gets every record exactly once;
// also with 4 KiB responses, where each response fills after a few partitions and the
// broker stops reading the rest, so the partitions behind must still get their turn.
func TestFetchSessionConsumerManyPartitions(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts []kgo.Opt
	}{
		{"default-limits", nil},
		{"4KiB-responses", []kgo.Opt{kgo.FetchMaxBytes(4096)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			adm, _ := newAdmin(t)
			topic := createTopic(t, adm, 200, nil)
			prod := newClient(t)
			p := produceRecords(t, prod, topic, 0, 2000, 100)
			recs := consumeAll(t, topic, 2000, 60*time.Second, tc.opts...)
			verifyRoundTrip(t, p, recs, 100, -1, true)
		})
	}
}
