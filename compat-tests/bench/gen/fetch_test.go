package main

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// batch is a v2 record batch of `records` records at `base`, `size` bytes long: only
// the header fields the reader looks at are set.
func batch(base int64, records int32, size int) []byte {
	b := make([]byte, size)
	binary.BigEndian.PutUint64(b[0:], uint64(base))
	binary.BigEndian.PutUint32(b[8:], uint32(size-12))
	b[16] = 2 // magic
	binary.BigEndian.PutUint32(b[23:], uint32(records-1))
	binary.BigEndian.PutUint32(b[57:], uint32(records))
	return b
}

// response frames a Fetch response (v12) answering request `corr`.
func response(t *testing.T, corr int32, topics ...kmsg.FetchResponseTopic) *framedResponse {
	t.Helper()
	return &framedResponse{corr: corr, topics: topics}
}

// framedResponse is a Fetch response to be read; sessionID and errorCode are its
// top-level fields.
type framedResponse struct {
	corr      int32
	topics    []kmsg.FetchResponseTopic
	sessionID int32
	errorCode int16
}

func (f *framedResponse) reader() *countingReader {
	resp := kmsg.NewPtrFetchResponse()
	resp.Version = fetchVersion
	resp.Topics = f.topics
	resp.SessionID = f.sessionID
	resp.ErrorCode = f.errorCode
	body := resp.AppendTo(nil)
	var frame []byte
	frame = binary.BigEndian.AppendUint32(frame, uint32(4+1+len(body)))
	frame = binary.BigEndian.AppendUint32(frame, uint32(f.corr))
	frame = append(frame, 0) // the flexible response header's tagged fields
	frame = append(frame, body...)
	return &countingReader{r: bufio.NewReader(bytes.NewReader(frame))}
}

// read reads the response as the reader does.
func (f *framedResponse) read(plan *readPlan, res *fetchResult, session *fetchSession) error {
	return readFetchResponse(f.reader(), f.corr, plan, res, session)
}

func topic(name string, parts ...kmsg.FetchResponseTopicPartition) kmsg.FetchResponseTopic {
	rt := kmsg.NewFetchResponseTopic()
	rt.Topic = name
	rt.Partitions = parts
	return rt
}

func partition(p int32, records ...[]byte) kmsg.FetchResponseTopicPartition {
	rp := kmsg.NewFetchResponseTopicPartition()
	rp.Partition = p
	rp.RecordBatches = bytes.Join(records, nil)
	return rp
}

func testPlan() *readPlan {
	plan, err := newReadPlan(
		map[string]map[int32]int64{"b": {0: 5}, "a": {0: 0, 1: 0}},
		map[string]map[int32]int64{"b": {0: 10}, "a": {0: 15, 1: 100}},
	)
	if err != nil {
		panic(err)
	}
	return plan
}

// named lists the partitions a request names, as "topic-partition@offset".
func named(req *kmsg.FetchRequest) []string {
	var out []string
	for _, t := range req.Topics {
		for _, p := range t.Partitions {
			out = append(out, fmt.Sprintf("%s-%d@%d", t.Topic, p.Partition, p.FetchOffset))
		}
	}
	return out
}

func TestResponsesMoveOffsetsPastWholeBatchesOnly(t *testing.T) {
	plan := testPlan()
	session := fetchSession{epoch: -1}
	req, remaining := plan.request(&session, 1<<20)
	if got, want := strings.Join(named(req), " "), "a-0@0 a-1@0 b-0@5"; got != want || remaining != 3 {
		t.Fatalf("first request names %q (%d remaining), want %q (3)", got, remaining, want)
	}

	var res fetchResult
	c := response(t, 1,
		topic("a",
			partition(0, batch(0, 10, 100), batch(10, 5, 80)),
			// A whole batch, then one cut short: only the first counts.
			partition(1, batch(0, 3, 70), batch(3, 4, 200)[:90])),
		topic("b", partition(0)))
	if err := c.read(plan, &res, &session); err != nil {
		t.Fatal(err)
	}
	if res.Records != 18 || res.Bytes != 250 {
		t.Fatalf("counted %d records and %d bytes, want 18 and 250", res.Records, res.Bytes)
	}
	req, remaining = plan.request(&session, 1<<20)
	if got, want := strings.Join(named(req), " "), "a-1@3 b-0@5"; got != want || remaining != 2 {
		t.Fatalf("second request names %q (%d remaining), want %q (2)", got, remaining, want)
	}
}

func TestSessionRequestsNameOnlyWhatMovedAndForgetWhatEnded(t *testing.T) {
	plan := testPlan()
	session := fetchSession{epoch: 0}
	req, _ := plan.request(&session, 1<<20)
	if got, want := strings.Join(named(req), " "), "a-0@0 a-1@0 b-0@5"; got != want {
		t.Fatalf("the request opening the session names %q, want %q", got, want)
	}
	var res fetchResult
	// The answer opening session 7: a-0 read to its end, a-1 read in part.
	c := response(t, 1, topic("a", partition(0, batch(0, 15, 100)), partition(1, batch(0, 3, 70))))
	c.sessionID = 7
	if err := c.read(plan, &res, &session); err != nil {
		t.Fatal(err)
	}
	if session.id != 7 || session.epoch != 1 {
		t.Fatalf("session after its first answer: %+v, want id 7 epoch 1", session)
	}
	req, remaining := plan.request(&session, 1<<20)
	if got, want := strings.Join(named(req), " "), "a-1@3"; got != want || remaining != 2 {
		t.Fatalf("incremental request names %q (%d remaining), want %q (2)", got, remaining, want)
	}
	if len(req.ForgottenTopics) != 1 || req.ForgottenTopics[0].Topic != "a" ||
		len(req.ForgottenTopics[0].Partitions) != 1 || req.ForgottenTopics[0].Partitions[0] != 0 {
		t.Fatalf("forgot %+v, want a-0", req.ForgottenTopics)
	}
	// The broker lost the session: the next request is full again, and forgets nothing.
	c = response(t, 2)
	c.errorCode = 70 // FETCH_SESSION_ID_NOT_FOUND
	if err := c.read(plan, &res, &session); err != nil {
		t.Fatal(err)
	}
	req, _ = plan.request(&session, 1<<20)
	if got, want := strings.Join(named(req), " "), "a-1@3 b-0@5"; got != want ||
		req.SessionID != 0 || req.SessionEpoch != 0 || len(req.ForgottenTopics) != 0 {
		t.Fatalf("after a lost session: names %q (session %d, epoch %d, forgets %v), want %q in a new session",
			got, req.SessionID, req.SessionEpoch, req.ForgottenTopics, want)
	}
}

func TestAResponseNamingAnUnaskedPartitionIsAnError(t *testing.T) {
	plan := testPlan()
	var res fetchResult
	session := fetchSession{epoch: -1}
	plan.request(&session, 1<<20)
	// a-0 read to its end: the next request does not name it.
	if err := response(t, 1, topic("a", partition(0, batch(0, 15, 100)))).read(plan, &res, &session); err != nil {
		t.Fatal(err)
	}
	plan.request(&session, 1<<20)
	for _, c := range []*framedResponse{
		response(t, 2, topic("c", partition(0))),
		response(t, 2, topic("a", partition(2))),
		response(t, 2, topic("a", partition(0))),
	} {
		err := c.read(plan, &res, &session)
		if err == nil || !strings.Contains(err.Error(), "not asked for") {
			t.Fatalf("got %v, want an error naming a partition not asked for", err)
		}
	}
}
