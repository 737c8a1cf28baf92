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
func response(t *testing.T, corr int32, topics ...kmsg.FetchResponseTopic) *countingReader {
	t.Helper()
	resp := kmsg.NewPtrFetchResponse()
	resp.Version = fetchVersion
	resp.Topics = topics
	body := resp.AppendTo(nil)
	var frame []byte
	frame = binary.BigEndian.AppendUint32(frame, uint32(4+1+len(body)))
	frame = binary.BigEndian.AppendUint32(frame, uint32(corr))
	frame = append(frame, 0) // the flexible response header's tagged fields
	frame = append(frame, body...)
	return &countingReader{r: bufio.NewReader(bytes.NewReader(frame))}
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
	if err := readFetchResponse(c, 1, plan, &res, &session); err != nil {
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
	plan.request(&session, 1<<20)
	if err := session.answered(0, 7); err != nil || session.id != 7 || session.epoch != 1 {
		t.Fatalf("session after the first answer: %+v, %v", session, err)
	}
	var res fetchResult
	c := response(t, 1, topic("a", partition(0, batch(0, 15, 100))))
	if err := readFetchResponse(c, 1, plan, &res, &fetchSession{epoch: -1}); err != nil {
		t.Fatal(err)
	}
	req, remaining := plan.request(&session, 1<<20)
	if len(req.Topics) != 0 || remaining != 2 {
		t.Fatalf("named %v (%d remaining), want nothing new (2)", named(req), remaining)
	}
	if len(req.ForgottenTopics) != 1 || req.ForgottenTopics[0].Topic != "a" ||
		len(req.ForgottenTopics[0].Partitions) != 1 || req.ForgottenTopics[0].Partitions[0] != 0 {
		t.Fatalf("forgot %+v, want a-0", req.ForgottenTopics)
	}
}

func TestAResponseNamingAnUnaskedPartitionIsAnError(t *testing.T) {
	plan := testPlan()
	var res fetchResult
	session := fetchSession{epoch: -1}
	for _, c := range []*countingReader{
		response(t, 1, topic("c", partition(0))),
		response(t, 1, topic("a", partition(2))),
	} {
		err := readFetchResponse(c, 1, plan, &res, &session)
		if err == nil || !strings.Contains(err.Error(), "not asked for") {
			t.Fatalf("got %v, want an error naming a partition not asked for", err)
		}
	}
}
