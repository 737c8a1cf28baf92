package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// configFlag collects repeated --config key=value flags.
type configFlag map[string]*string

func (c configFlag) String() string { return fmt.Sprint(map[string]*string(c)) }

func (c configFlag) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok || k == "" {
		return fmt.Errorf("want key=value, got %q", s)
	}
	c[k] = kadm.StringPtr(v)
	return nil
}

type createResult struct {
	Topics     int     `json:"topics"`
	Partitions int     `json:"partitions"`
	Seconds    float64 `json:"seconds"`
}

func runCreate(args []string) (any, error) {
	fs := newFlags("create")
	brokers := fs.String("brokers", "", "bootstrap brokers, host:port[,host:port]")
	var tf topicFlags
	tf.register(fs)
	partitions := fs.Int("partitions", 1, "partitions per topic")
	rf := fs.Int("replication-factor", 1, "replication factor")
	chunk := fs.Int("chunk", 10, "topics per CreateTopics request")
	timeout := fs.Duration("timeout", 120*time.Second, "give up if the topics are not all led by then")
	configs := configFlag{}
	fs.Var(configs, "config", "topic config key=value (repeatable)")
	fs.Parse(args)

	topics, err := tf.names()
	if err != nil {
		return nil, err
	}
	seed, err := seedOpt(*brokers)
	if err != nil {
		return nil, err
	}
	cl, err := kgo.NewClient(seed, logOpt())
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	// Creating thousands of partitions can take the controller a while per
	// request; the default 15 s request timeout is too tight for that.
	adm.SetTimeoutMillis(int32(min(*timeout, time.Minute).Milliseconds()))

	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	start := time.Now()

	// Small chunks keep each request (and the controller's single metadata
	// record batch behind it) modest: 100 topics x 100 partitions in one
	// request is a single 10,000-partition operation.
	created := map[string]bool{}
	for lo := 0; lo < len(topics); lo += *chunk {
		part := topics[lo:min(lo+*chunk, len(topics))]
		resps, err := adm.CreateTopics(ctx, int32(*partitions), int16(*rf), configs, part...)
		if err != nil {
			return nil, fmt.Errorf("CreateTopics: %w", err)
		}
		for _, r := range resps {
			switch {
			case r.Err == nil:
				created[r.Topic] = true
			case errors.Is(r.Err, kerr.TopicAlreadyExists):
				fmt.Fprintf(os.Stderr, "create: %s already exists, keeping it\n", r.Topic)
			default:
				return nil, fmt.Errorf("creating %s: %v %s", r.Topic, r.Err, r.ErrMessage)
			}
		}
	}

	total, err := waitLeaders(ctx, adm, topics, created, int32(*partitions))
	if err != nil {
		return nil, err
	}
	return createResult{Topics: len(topics), Partitions: total, Seconds: round3(time.Since(start).Seconds())}, nil
}

// waitLeaders polls metadata until every topic is visible with every
// partition led, because a created topic is not immediately usable: a
// produce right after CreateTopics can otherwise hit NOT_LEADER or
// UNKNOWN_TOPIC on some partitions and distort the first measurement.
// Topics created here must show exactly want partitions (any number for -1,
// the broker's choice); pre-existing ones are taken as they are. Returns the total partition count.
func waitLeaders(ctx context.Context, adm *kadm.Client, topics []string, created map[string]bool, want int32) (int, error) {
	var why string
	for {
		md, err := adm.Metadata(ctx, topics...)
		if err == nil {
			why = ""
			total := 0
			for _, t := range topics {
				td, ok := md.Topics[t]
				switch {
				case !ok || td.Err != nil:
					why = fmt.Sprintf("topic %s not ready (%v)", t, td.Err)
				case len(td.Partitions) == 0 || (created[t] && want > 0 && len(td.Partitions) != int(want)):
					why = fmt.Sprintf("topic %s shows %d partitions", t, len(td.Partitions))
				}
				for _, p := range td.Partitions {
					if p.Err != nil || p.Leader < 0 {
						why = fmt.Sprintf("%s/%d has no leader (%v)", t, p.Partition, p.Err)
					}
				}
				if why != "" {
					break
				}
				total += len(td.Partitions)
			}
			if why == "" {
				return total, nil
			}
		} else {
			why = err.Error()
		}
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("timed out waiting for partition leaders: %s", why)
		case <-time.After(200 * time.Millisecond):
		}
	}
}
