package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// fetchVersion is the newest Fetch version that still names topics (v13+ use ids);
// both brokers under test serve it.
const fetchVersion = 12

type fetchResult struct {
	Bytes       int64   `json:"bytes"`
	Records     int64   `json:"records"`
	Requests    int64   `json:"requests"`
	Seconds     float64 `json:"seconds"`
	MBPerS      float64 `json:"mb_per_s"`
	RecordsPerS float64 `json:"records_per_s"`
}

// runFetch reads every partition of the topics from its start to its high watermark
// with raw Fetch requests on one connection, looking only at batch headers to find the
// next offset. It is the broker's read path with as little client work as possible: a
// real consumer also decodes every record, which on this 2-core machine costs more CPU
// than serving it. Its figure is the one to set against the sendfile ceiling.
func runFetch(args []string) (any, error) {
	fs := newFlags("fetch")
	brokers := fs.String("brokers", "", "bootstrap broker host:port (single-node broker)")
	var tf topicFlags
	tf.register(fs)
	partitionMax := fs.Int("partition-max-bytes", mib, "max.partition.fetch.bytes (Java consumer default 1 MiB)")
	maxBytes := fs.Int("max-bytes", 50*mib, "fetch.max.bytes (Java consumer default 50 MiB)")
	timeout := fs.Duration("timeout", 5*time.Minute, "give up after this long")
	useSession := fs.Bool("session", false, "keep a KIP-227 fetch session (off: full requests, which "+
		"both brokers serve alike; Kafka 4.4 takes minutes to open one session of 10,000 partitions)")
	fs.Parse(args)

	topics, err := tf.names()
	if err != nil {
		return nil, err
	}
	seed, err := seedOpt(*brokers)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	starts, ends, err := offsetRanges(ctx, seed, topics)
	if err != nil {
		return nil, err
	}
	plan, err := newReadPlan(starts, ends)
	if err != nil {
		return nil, err
	}

	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", *brokers)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	if deadline, ok := ctx.Deadline(); ok {
		conn.SetDeadline(deadline)
	}
	rd := bufio.NewReaderSize(conn, 1<<20)
	formatter := kmsg.NewRequestFormatter(kmsg.FormatterClientID("benchgen-fetch"))

	var (
		res   fetchResult
		out   []byte
		start = time.Now()
		// With --session, a fetch session (KIP-227), as the Java consumer and franz-go
		// keep one: the first request names every partition; later ones name only the
		// partitions whose offset moved, and forget those read to their end.
		session = fetchSession{epoch: -1}
	)
	if *useSession {
		session.epoch = 0
	}
	for corr := int32(1); ; corr++ {
		req, remaining := plan.request(&session, int32(*partitionMax))
		req.MaxBytes = int32(*maxBytes)
		if remaining == 0 {
			break
		}
		out = formatter.AppendRequest(out[:0], req, corr)
		if _, err := conn.Write(out); err != nil {
			return nil, err
		}
		// The response is read as a stream through the 1 MiB bufio buffer, as the
		// ceiling's receiver reads: holding a whole multi-megabyte response would add
		// a copy through memory that the broker is not responsible for.
		if err := readFetchResponse(&countingReader{r: rd}, corr, plan, &res, &session); err != nil {
			return nil, err
		}
		res.Requests++
	}
	res.Seconds = round3(time.Since(start).Seconds())
	res.MBPerS = rate(float64(res.Bytes)/mib, res.Seconds)
	res.RecordsPerS = rate(float64(res.Records), res.Seconds)
	return res, nil
}

// readPlan is every partition's progress, in a fixed order (topics by name, partitions
// by number), as a consumer lists its assignment: slices, not maps, so that building a
// request and reading a response over 10,000 partitions costs the reader little, and
// the figure stays the broker's.
type readPlan struct {
	topics []topicRead
	byName map[string]*topicRead
}

type topicRead struct {
	name  string
	parts []partitionRead // parts[i].partition == i
}

// partitionRead is one partition's progress: the next offset to ask for, the high
// watermark where reading ends, and the offset the last request named it at or the
// fetch session holds for it.
type partitionRead struct {
	partition int32
	next, end int64
	held      int64
}

// notHeld marks a partition neither the last request named nor the session holds.
const notHeld = -1

func newReadPlan(starts, ends map[string]map[int32]int64) (*readPlan, error) {
	plan := &readPlan{byName: map[string]*topicRead{}}
	for _, name := range slices.Sorted(maps.Keys(starts)) {
		t := topicRead{name: name, parts: make([]partitionRead, len(starts[name]))}
		for p, next := range starts[name] {
			if p < 0 || int(p) >= len(t.parts) {
				return nil, fmt.Errorf("%s: partitions are not numbered 0..%d (found %d)", name, len(t.parts)-1, p)
			}
			if next < 0 {
				// Also keeps offsets clear of notHeld.
				return nil, fmt.Errorf("%s-%d: no start offset (%d)", name, p, next)
			}
			t.parts[p] = partitionRead{partition: p, next: next, end: ends[name][p], held: notHeld}
		}
		plan.topics = append(plan.topics, t)
	}
	for i := range plan.topics {
		plan.byName[plan.topics[i].name] = &plan.topics[i]
	}
	return plan, nil
}

// request builds the next Fetch request and counts the partitions not yet read to
// their end (0: done). A full request (no session, or a new one) names every one of
// them; a session's request names those whose offset moved since the session last
// held it, and forgets those read to their end.
func (p *readPlan) request(session *fetchSession, partitionMax int32) (*kmsg.FetchRequest, int) {
	req := kmsg.NewPtrFetchRequest()
	req.Version = fetchVersion
	req.MaxWaitMillis = 500
	req.MinBytes = 1
	req.SessionID = session.id
	req.SessionEpoch = session.epoch
	full := session.epoch <= 0
	remaining := 0
	for ti := range p.topics {
		t := &p.topics[ti]
		rt := kmsg.NewFetchRequestTopic()
		rt.Topic = t.name
		var forget []int32
		for pi := range t.parts {
			part := &t.parts[pi]
			if full {
				part.held = notHeld
			}
			if part.next >= part.end {
				if part.held != notHeld {
					forget = append(forget, part.partition)
					part.held = notHeld
				}
				continue
			}
			remaining++
			if part.held == part.next {
				continue
			}
			part.held = part.next
			rp := kmsg.NewFetchRequestTopicPartition()
			rp.Partition = part.partition
			rp.FetchOffset = part.next
			rp.PartitionMaxBytes = partitionMax
			rp.CurrentLeaderEpoch = -1
			rp.LogStartOffset = -1
			rt.Partitions = append(rt.Partitions, rp)
		}
		if len(rt.Partitions) > 0 {
			req.Topics = append(req.Topics, rt)
		}
		if len(forget) > 0 && session.epoch > 0 {
			ft := kmsg.NewFetchRequestForgottenTopic()
			ft.Topic = t.name
			ft.Partitions = forget
			req.ForgottenTopics = append(req.ForgottenTopics, ft)
		}
	}
	return req, remaining
}

// partition finds a partition the response names; nil unless the last request named
// it or the session holds it (a session's response may name any partition it holds).
func (p *readPlan) partition(topic []byte, partition int32) *partitionRead {
	t := p.byName[string(topic)]
	if t == nil || partition < 0 || int(partition) >= len(t.parts) || t.parts[partition].held == notHeld {
		return nil
	}
	return &t.parts[partition]
}

// fetchSession is the client's side of a KIP-227 fetch session: id 0 and epoch 0 ask
// for one; a broker that gives none (id 0) is sent full requests. Epoch -1 is a
// reader without sessions: every request is full.
type fetchSession struct {
	id    int32
	epoch int32
}

// answered moves the session on after a response with this top-level error and id.
func (s *fetchSession) answered(code int16, id int32) error {
	switch {
	case code != 0 && s.epoch >= 0 &&
		(code == kerr.FetchSessionIDNotFound.Code || code == kerr.InvalidFetchSessionEpoch.Code):
		*s = fetchSession{} // start over with a full request, as clients do
	case code != 0:
		return fmt.Errorf("fetch: %v", kerr.ErrorForCode(code))
	case s.epoch < 0: // no session: every request is full
	case s.epoch == 0:
		s.id = id
		if id != 0 {
			s.epoch = 1
		}
	default:
		s.epoch++
	}
	return nil
}

// countingReader reads a Fetch response (v12, flexible) field by field and keeps
// track of how much of it is left. Fields are read into one scratch buffer, not
// allocated: a response naming 10,000 partitions has some 100,000 of them.
type countingReader struct {
	r       *bufio.Reader
	left    int
	err     error
	scratch [batchHeaderBytes]byte
}

const batchHeaderBytes = 61

// bytes reads a fixed-size field of at most batchHeaderBytes; the slice is valid until
// the next read.
func (c *countingReader) bytes(n int) []byte {
	b := c.scratch[:n]
	clear(b)
	if c.err != nil {
		return b
	}
	if n > c.left {
		c.err = fmt.Errorf("response field of %d bytes overruns the %d left", n, c.left)
		return b
	}
	_, c.err = io.ReadFull(c.r, b)
	c.left -= n
	return b
}

// str reads a string field of n bytes into buf (grown as needed); the slice is valid
// until the next call with the same buffer.
func (c *countingReader) str(n int, buf *[]byte) []byte {
	if c.err != nil {
		return nil
	}
	if n < 0 || n > c.left {
		c.err = fmt.Errorf("response string of %d bytes overruns the %d left", n, c.left)
		return nil
	}
	*buf = slices.Grow((*buf)[:0], n)[:n]
	_, c.err = io.ReadFull(c.r, *buf)
	c.left -= n
	return *buf
}

func (c *countingReader) byte1() byte {
	if c.err != nil {
		return 0
	}
	if c.left < 1 {
		c.err = fmt.Errorf("response field overruns its end")
		return 0
	}
	b, err := c.r.ReadByte()
	c.err = err
	c.left--
	return b
}

func (c *countingReader) skip(n int) {
	if c.err != nil {
		return
	}
	if n > c.left {
		c.err = fmt.Errorf("response field of %d bytes overruns the %d left", n, c.left)
		return
	}
	_, c.err = c.r.Discard(n)
	c.left -= n
}

func (c *countingReader) i16() int16 { return int16(binary.BigEndian.Uint16(c.bytes(2))) }
func (c *countingReader) i32() int32 { return int32(binary.BigEndian.Uint32(c.bytes(4))) }
func (c *countingReader) i64() int64 { return int64(binary.BigEndian.Uint64(c.bytes(8))) }

func (c *countingReader) uvarint() int {
	var v uint64
	for shift := 0; shift < 35 && c.err == nil; shift += 7 {
		b := c.byte1()
		v |= uint64(b&0x7f) << shift
		if b < 0x80 {
			return int(v)
		}
	}
	if c.err == nil {
		c.err = fmt.Errorf("malformed varint")
	}
	return 0
}

func (c *countingReader) tags() {
	for n := c.uvarint(); n > 0 && c.err == nil; n-- {
		c.uvarint() // tag
		c.skip(c.uvarint())
	}
}

// readFetchResponse reads one response: per partition the error code and the record
// set, of which only the 61-byte v2 batch headers are kept (to find the next offset);
// the rest is discarded as it arrives. A trailing partial batch is not counted.
func readFetchResponse(c *countingReader, corr int32, plan *readPlan, res *fetchResult, session *fetchSession) error {
	var size [4]byte
	if _, err := io.ReadFull(c.r, size[:]); err != nil {
		return fmt.Errorf("reading response size: %w", err)
	}
	c.left = int(binary.BigEndian.Uint32(size[:]))
	if got := c.i32(); c.err == nil && got != corr {
		return fmt.Errorf("response %d does not answer request %d", got, corr)
	}
	c.tags() // response header
	c.i32()  // throttle time
	code := c.i16()
	id := c.i32()
	if err := session.answered(code, id); err != nil && c.err == nil {
		return err
	}
	var name []byte
	for topics := c.uvarint() - 1; topics > 0 && c.err == nil; topics-- {
		topic := c.str(c.uvarint()-1, &name)
		for parts := c.uvarint() - 1; parts > 0 && c.err == nil; parts-- {
			partition := c.i32()
			read := plan.partition(topic, partition)
			if read == nil && c.err == nil {
				return fmt.Errorf("response names %s-%d, which was not asked for", topic, partition)
			}
			if code := c.i16(); code != 0 && c.err == nil {
				return fmt.Errorf("%s-%d: %v", topic, partition, kerr.ErrorForCode(code))
			}
			c.skip(8 + 8 + 8) // high watermark, last stable offset, log start offset
			for aborted := c.uvarint() - 1; aborted > 0 && c.err == nil; aborted-- {
				c.skip(16)
				c.tags()
			}
			c.i32() // preferred read replica
			records := c.uvarint() - 1
			for records >= batchHeaderBytes && c.err == nil {
				h := c.bytes(batchHeaderBytes)
				total := int(int32(binary.BigEndian.Uint32(h[8:]))) + 12
				if total > records {
					c.skip(records - batchHeaderBytes)
					records = 0
					break
				}
				after := int64(binary.BigEndian.Uint64(h[0:])) + int64(int32(binary.BigEndian.Uint32(h[23:]))) + 1
				res.Records += int64(int32(binary.BigEndian.Uint32(h[57:])))
				c.skip(total - batchHeaderBytes)
				records -= total
				if read != nil {
					read.next = max(read.next, after)
				}
				res.Bytes += int64(total)
			}
			if records > 0 {
				c.skip(records)
			}
			c.tags()
		}
		c.tags()
	}
	c.tags()
	if c.err != nil {
		return fmt.Errorf("reading response: %w", c.err)
	}
	if c.left != 0 {
		return fmt.Errorf("response has %d bytes after its last field", c.left)
	}
	return nil
}

// offsetRanges gives each partition's log start (where reading begins) and high
// watermark (where it ends).
func offsetRanges(ctx context.Context, seed kgo.Opt, topics []string) (map[string]map[int32]int64, map[string]map[int32]int64, error) {
	cl, err := kgo.NewClient(seed, logOpt())
	if err != nil {
		return nil, nil, err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	starts, err := adm.ListStartOffsets(ctx, topics...)
	if err != nil {
		return nil, nil, fmt.Errorf("start offsets: %w", err)
	}
	ends, err := adm.ListEndOffsets(ctx, topics...)
	if err != nil {
		return nil, nil, fmt.Errorf("end offsets: %w", err)
	}
	next, errStart := byPartition(starts)
	end, errEnd := byPartition(ends)
	return next, end, errors.Join(errStart, errEnd)
}

// byPartition turns listed offsets into topic -> partition -> offset, with the last
// partition error seen.
func byPartition(listed kadm.ListedOffsets) (map[string]map[int32]int64, error) {
	out := map[string]map[int32]int64{}
	var missing error
	listed.Each(func(o kadm.ListedOffset) {
		if o.Err != nil {
			missing = fmt.Errorf("%s-%d: %w", o.Topic, o.Partition, o.Err)
		}
		if out[o.Topic] == nil {
			out[o.Topic] = map[int32]int64{}
		}
		out[o.Topic][o.Partition] = o.Offset
	})
	return out, missing
}
