package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
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
	next, end, err := offsetRanges(ctx, seed, topics)
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
		body  []byte
		start = time.Now()
	)
	for corr := int32(1); ; corr++ {
		req := kmsg.NewPtrFetchRequest()
		req.Version = fetchVersion
		req.MaxWaitMillis = 500
		req.MinBytes = 1
		req.MaxBytes = int32(*maxBytes)
		req.SessionEpoch = -1 // no fetch session: every request names its partitions
		for t, parts := range next {
			rt := kmsg.NewFetchRequestTopic()
			rt.Topic = t
			for p, off := range parts {
				if off >= end[t][p] {
					continue
				}
				rp := kmsg.NewFetchRequestTopicPartition()
				rp.Partition = p
				rp.FetchOffset = off
				rp.PartitionMaxBytes = int32(*partitionMax)
				rp.CurrentLeaderEpoch = -1
				rp.LogStartOffset = -1
				rt.Partitions = append(rt.Partitions, rp)
			}
			if len(rt.Partitions) > 0 {
				req.Topics = append(req.Topics, rt)
			}
		}
		if len(req.Topics) == 0 {
			break
		}
		out = formatter.AppendRequest(out[:0], req, corr)
		if _, err := conn.Write(out); err != nil {
			return nil, err
		}
		// Response: size, correlation id, an empty tag buffer (flexible header), body.
		var size [4]byte
		if _, err := io.ReadFull(rd, size[:]); err != nil {
			return nil, fmt.Errorf("reading response size: %w", err)
		}
		n := int(binary.BigEndian.Uint32(size[:]))
		if cap(body) < n {
			body = make([]byte, n)
		}
		body = body[:n]
		if _, err := io.ReadFull(rd, body); err != nil {
			return nil, fmt.Errorf("reading response: %w", err)
		}
		if n < 5 || int32(binary.BigEndian.Uint32(body)) != corr {
			return nil, fmt.Errorf("response %d does not answer request %d", binary.BigEndian.Uint32(body), corr)
		}
		resp := kmsg.NewPtrFetchResponse()
		resp.Version = fetchVersion
		if err := resp.ReadFrom(body[5:]); err != nil {
			return nil, fmt.Errorf("decoding response: %w", err)
		}
		res.Requests++
		for _, rt := range resp.Topics {
			for _, rp := range rt.Partitions {
				if rp.ErrorCode != 0 {
					return nil, fmt.Errorf("%s-%d: %v", rt.Topic, rp.Partition, kerr.ErrorForCode(rp.ErrorCode))
				}
				after, records, bytes := walkBatches(rp.RecordBatches)
				if after > next[rt.Topic][rp.Partition] {
					next[rt.Topic][rp.Partition] = after
				}
				res.Records += records
				res.Bytes += bytes
			}
		}
	}
	res.Seconds = round3(time.Since(start).Seconds())
	res.MBPerS = rate(float64(res.Bytes)/mib, res.Seconds)
	res.RecordsPerS = rate(float64(res.Records), res.Seconds)
	return res, nil
}

// walkBatches reads the v2 batch headers in a partition's record set: the offset after
// the last complete batch, its record count and the bytes of complete batches. A
// trailing partial batch (allowed by the protocol) is not counted.
func walkBatches(b []byte) (after int64, records int64, bytes int64) {
	after = -1
	for len(b) >= 61 {
		baseOffset := int64(binary.BigEndian.Uint64(b[0:]))
		batchLen := int(binary.BigEndian.Uint32(b[8:])) + 12
		if batchLen > len(b) {
			break
		}
		lastDelta := int64(int32(binary.BigEndian.Uint32(b[23:])))
		after = baseOffset + lastDelta + 1
		records += int64(int32(binary.BigEndian.Uint32(b[57:])))
		bytes += int64(batchLen)
		b = b[batchLen:]
	}
	return after, records, bytes
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
	next := map[string]map[int32]int64{}
	end := map[string]map[int32]int64{}
	var missing error
	starts.Each(func(o kadm.ListedOffset) {
		if o.Err != nil {
			missing = fmt.Errorf("%s-%d: %w", o.Topic, o.Partition, o.Err)
		}
		if next[o.Topic] == nil {
			next[o.Topic] = map[int32]int64{}
		}
		next[o.Topic][o.Partition] = o.Offset
	})
	ends.Each(func(o kadm.ListedOffset) {
		if o.Err != nil {
			missing = fmt.Errorf("%s-%d: %w", o.Topic, o.Partition, o.Err)
		}
		if end[o.Topic] == nil {
			end[o.Topic] = map[int32]int64{}
		}
		end[o.Topic][o.Partition] = o.Offset
	})
	return next, end, missing
}
