package compat

import (
	"context"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestApiVersions checks that the broker advertises the API keys these
// clients need, and logs the advertised ranges.
func TestApiVersions(t *testing.T) {
	adm, _ := newAdmin(t)
	ctx := testCtx(t, 15*time.Second)
	bvs, err := adm.ApiVersions(ctx)
	if err != nil {
		t.Fatalf("ApiVersions: %v", err)
	}
	if len(bvs) == 0 {
		t.Fatal("ApiVersions: no brokers answered")
	}
	required := map[int16]int16{ // key -> minimum max version we expect
		0:  3, // Produce (record batches v2)
		1:  4, // Fetch
		2:  1, // ListOffsets
		3:  1, // Metadata
		8:  2, // OffsetCommit
		9:  1, // OffsetFetch
		10: 0, // FindCoordinator
		11: 0, // JoinGroup
		12: 0, // Heartbeat
		13: 0, // LeaveGroup
		14: 0, // SyncGroup
		15: 0, // DescribeGroups
		16: 0, // ListGroups
		18: 0, // ApiVersions
		19: 0, // CreateTopics
		20: 0, // DeleteTopics
		21: 0, // DeleteRecords
		22: 0, // InitProducerId
		32: 0, // DescribeConfigs
		33: 0, // AlterConfigs
		35: 0, // DescribeLogDirs
		37: 0, // CreatePartitions
		42: 0, // DeleteGroups
		44: 0, // IncrementalAlterConfigs
		47: 0, // OffsetDelete
		60: 0, // DescribeCluster
	}
	bvs.Each(func(bv kadm.BrokerApiVersions) {
		if bv.Err != nil {
			t.Errorf("broker %d: %v", bv.NodeID, bv.Err)
			return
		}
		for key, minMax := range required {
			_, max, ok := bv.KeyVersions(key)
			if !ok {
				t.Errorf("broker %d does not advertise %s (key %d)", bv.NodeID, kmsg.NameForKey(key), key)
				continue
			}
			if max < minMax {
				t.Errorf("broker %d advertises %s up to v%d, want at least v%d", bv.NodeID, kmsg.NameForKey(key), max, minMax)
			}
		}
		var line string
		bv.EachKeySorted(func(key, min, max int16) {
			line += " " + kmsg.NameForKey(key) + "(" + strconv.Itoa(int(key)) + ")=v" + strconv.Itoa(int(min)) + "-" + strconv.Itoa(int(max))
		})
		t.Logf("broker %d advertises:%s", bv.NodeID, line)
	})
}

func TestAdminCreateTopics(t *testing.T) {
	adm, cl := newAdmin(t)
	ctx := testCtx(t, 60*time.Second)

	t.Run("partitions and configs", func(t *testing.T) {
		topic := uniqueName(t, "t")
		resp, err := adm.CreateTopic(ctx, 3, 1, map[string]*string{
			"retention.ms":   strp("3600000"),
			"cleanup.policy": strp("delete"),
		}, topic)
		if err != nil || resp.Err != nil {
			t.Fatalf("CreateTopic: %v / %v (%s)", err, resp.Err, resp.ErrMessage)
		}
		if resp.ID == (kadm.TopicID{}) {
			t.Errorf("CreateTopics response has a zero topic id")
		}
		if resp.NumPartitions != 3 {
			t.Errorf("CreateTopics response: %d partitions, want 3", resp.NumPartitions)
		}
		if resp.ReplicationFactor != 1 {
			t.Errorf("CreateTopics response: replication factor %d, want 1", resp.ReplicationFactor)
		}
		if c, ok := resp.Configs["retention.ms"]; !ok || c.Value == nil || *c.Value != "3600000" {
			t.Errorf("CreateTopics response configs: retention.ms = %+v, want 3600000", c)
		}
		waitTopicReady(t, adm, topic, 3)
		tds, err := adm.ListTopics(ctx, topic)
		if err != nil {
			t.Fatalf("ListTopics: %v", err)
		}
		td := tds[topic]
		if td.Err != nil || len(td.Partitions) != 3 {
			t.Fatalf("ListTopics: %+v", td)
		}
		if td.ID != resp.ID {
			t.Errorf("metadata topic id %s differs from CreateTopics id %s", td.ID, resp.ID)
		}
	})

	t.Run("default partitions", func(t *testing.T) {
		topic := uniqueName(t, "t")
		resp, err := adm.CreateTopic(ctx, -1, -1, nil, topic)
		if err != nil || resp.Err != nil {
			t.Fatalf("CreateTopic with broker defaults: %v / %v (%s)", err, resp.Err, resp.ErrMessage)
		}
		if resp.NumPartitions < 1 {
			t.Errorf("CreateTopics response: %d partitions with broker default", resp.NumPartitions)
		}
	})

	t.Run("validate only", func(t *testing.T) {
		topic := uniqueName(t, "t")
		resps, err := adm.ValidateCreateTopics(ctx, 2, 1, map[string]*string{"retention.ms": strp("1000")}, topic)
		if err != nil {
			t.Fatalf("ValidateCreateTopics: %v", err)
		}
		if r := resps[topic]; r.Err != nil {
			t.Fatalf("ValidateCreateTopics: %v (%s)", r.Err, r.ErrMessage)
		}
		time.Sleep(500 * time.Millisecond)
		md, err := freshMetadata(ctx, cl, topic)
		if err != nil {
			t.Fatalf("metadata: %v", err)
		}
		if len(md.Topics) != 1 || md.Topics[0].ErrorCode != kerr.UnknownTopicOrPartition.Code {
			t.Errorf("validate-only CreateTopics created the topic: %+v", md.Topics)
		}
		bad, err := adm.ValidateCreateTopics(ctx, 1, 1, map[string]*string{"cleanup.policy": strp("no-such-policy")}, uniqueName(t, "t"))
		if err != nil {
			t.Fatalf("ValidateCreateTopics: %v", err)
		}
		for _, r := range bad {
			if !isErr(r.Err, kerr.InvalidConfig) {
				t.Errorf("validate-only with bad config: got %v, want INVALID_CONFIG", r.Err)
			}
		}
	})

	t.Run("already exists", func(t *testing.T) {
		topic := createTopic(t, adm, 1, nil)
		// kadm returns the topic's error code as err.
		_, err := adm.CreateTopic(ctx, 1, 1, nil, topic)
		if !isErr(err, kerr.TopicAlreadyExists) {
			t.Errorf("creating an existing topic: got %v, want TOPIC_ALREADY_EXISTS", err)
		}
	})

	t.Run("invalid config", func(t *testing.T) {
		for name, cfg := range map[string]map[string]*string{
			"bad value":   {"cleanup.policy": strp("no-such-policy")},
			"bad number":  {"retention.ms": strp("not-a-number")},
			"unknown key": {"no.such.config.key": strp("1")},
		} {
			topic := uniqueName(t, "t")
			_, err := adm.CreateTopic(ctx, 1, 1, cfg, topic)
			if !isErr(err, kerr.InvalidConfig) {
				t.Errorf("%s: got %v, want INVALID_CONFIG", name, err)
			}
		}
	})

	t.Run("invalid partitions and name", func(t *testing.T) {
		_, err := adm.CreateTopic(ctx, 0, 1, nil, uniqueName(t, "t"))
		if !isErr(err, kerr.InvalidPartitions) {
			t.Errorf("0 partitions: got %v, want INVALID_PARTITIONS", err)
		}
		_, err = adm.CreateTopic(ctx, 1, 1, nil, "bad/topic name")
		if !isErr(err, kerr.InvalidTopicException) {
			t.Errorf("invalid topic name: got %v, want INVALID_TOPIC_EXCEPTION", err)
		}
	})
}

func TestAdminListAndDescribeTopics(t *testing.T) {
	adm, cl := newAdmin(t)
	ctx := testCtx(t, 30*time.Second)
	t1 := createTopic(t, adm, 2, nil)
	t2 := createTopic(t, adm, 5, nil)

	tds, err := adm.ListTopics(ctx, t1, t2)
	if err != nil {
		t.Fatalf("ListTopics: %v", err)
	}
	for topic, parts := range map[string]int{t1: 2, t2: 5} {
		td, ok := tds[topic]
		if !ok {
			t.Fatalf("ListTopics: %s missing", topic)
		}
		if td.Err != nil {
			t.Fatalf("ListTopics %s: %v", topic, td.Err)
		}
		if td.ID == (kadm.TopicID{}) {
			t.Errorf("%s: zero topic id in metadata", topic)
		}
		if td.IsInternal {
			t.Errorf("%s: reported as internal", topic)
		}
		if len(td.Partitions) != parts {
			t.Errorf("%s: %d partitions, want %d", topic, len(td.Partitions), parts)
		}
		for p, pd := range td.Partitions {
			if pd.Err != nil || pd.Leader < 0 || len(pd.Replicas) != 1 || len(pd.ISR) != 1 {
				t.Errorf("%s/%d: leader %d replicas %v isr %v err %v", topic, p, pd.Leader, pd.Replicas, pd.ISR, pd.Err)
			}
		}
	}
	if tds[t1].ID == tds[t2].ID {
		t.Errorf("two topics share topic id %s", tds[t1].ID)
	}

	// Listing all topics includes both.
	all, err := adm.ListTopics(ctx)
	if err != nil {
		t.Fatalf("ListTopics(all): %v", err)
	}
	if !all.Has(t1) || !all.Has(t2) {
		t.Errorf("ListTopics(all) misses %s or %s (has %d topics)", t1, t2, len(all))
	}

	// Unknown topic: UNKNOWN_TOPIC_OR_PARTITION, and not auto-created when
	// the request does not allow it.
	unknown := uniqueName(t, "missing")
	md, err := freshMetadata(ctx, cl, unknown)
	if err != nil {
		t.Fatalf("metadata: %v", err)
	}
	if len(md.Topics) != 1 || md.Topics[0].ErrorCode != kerr.UnknownTopicOrPartition.Code {
		t.Errorf("metadata for unknown topic: %+v, want UNKNOWN_TOPIC_OR_PARTITION", md.Topics)
	}
	time.Sleep(300 * time.Millisecond)
	md, _ = freshMetadata(ctx, cl, unknown)
	if md != nil && len(md.Topics) == 1 && md.Topics[0].ErrorCode == 0 {
		t.Errorf("topic %s was auto-created by a metadata request with AllowAutoTopicCreation=false", unknown)
	}
}

func TestAdminDeleteTopics(t *testing.T) {
	adm, cl := newAdmin(t)
	ctx := testCtx(t, 60*time.Second)
	topic := createTopic(t, adm, 2, nil)
	prod := newClient(t, kgo.DefaultProduceTopic(topic))
	produceRecords(t, prod, topic, 0, 50, 10)
	prod.Close()

	resp, err := adm.DeleteTopic(ctx, topic)
	if err != nil || resp.Err != nil {
		t.Fatalf("DeleteTopic: %v / %v (%s)", err, resp.Err, resp.ErrMessage)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		md, err := freshMetadata(ctx, cl, topic)
		if err == nil && len(md.Topics) == 1 && md.Topics[0].ErrorCode == kerr.UnknownTopicOrPartition.Code {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("topic still present 20s after DeleteTopics: %+v %v", md, err)
		}
		time.Sleep(200 * time.Millisecond)
	}

	// Deleting again / deleting an unknown topic.
	_, err = adm.DeleteTopic(ctx, topic)
	if !isErr(err, kerr.UnknownTopicOrPartition) {
		t.Errorf("deleting a deleted topic: got %v, want UNKNOWN_TOPIC_OR_PARTITION", err)
	}

	// The name can be reused; the new topic starts empty.
	cr, err := adm.CreateTopic(ctx, 1, 1, nil, topic)
	if err != nil || cr.Err != nil {
		t.Fatalf("re-create %s: %v / %v (%s)", topic, err, cr.Err, cr.ErrMessage)
	}
	waitTopicReady(t, adm, topic, 1)
	adm2, _ := newAdmin(t) // fresh client: no cached metadata of the deleted topic
	if got := endOffsets(t, adm2, topic)[0]; got != 0 {
		t.Errorf("re-created topic has end offset %d, want 0", got)
	}
}

func TestAdminCreatePartitions(t *testing.T) {
	adm, _ := newAdmin(t)
	ctx := testCtx(t, 60*time.Second)
	topic := createTopic(t, adm, 2, nil)

	rs, err := adm.CreatePartitions(ctx, 3, topic)
	if err != nil {
		t.Fatalf("CreatePartitions: %v", err)
	}
	if r := rs[topic]; r.Err != nil {
		t.Fatalf("CreatePartitions: %v (%s)", r.Err, r.ErrMessage)
	}
	waitTopicReady(t, adm, topic, 5)

	// The new partitions accept records.
	prod := newClient(t, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	for p := int32(0); p < 5; p++ {
		if err := prod.ProduceSync(ctx, &kgo.Record{Topic: topic, Partition: p, Value: []byte("v")}).FirstErr(); err != nil {
			t.Fatalf("produce to partition %d: %v", p, err)
		}
	}
	ends := endOffsets(t, adm, topic)
	for p := int32(0); p < 5; p++ {
		if ends[p] != 1 {
			t.Errorf("partition %d end offset %d, want 1", p, ends[p])
		}
	}

	// Validate-only does not change the count.
	vs, err := adm.ValidateCreatePartitions(ctx, 1, topic)
	if err != nil || vs[topic].Err != nil {
		t.Fatalf("ValidateCreatePartitions: %v / %v", err, vs[topic].Err)
	}
	// Shrinking is refused.
	us, err := adm.UpdatePartitions(ctx, 3, topic)
	if err != nil {
		t.Fatalf("UpdatePartitions: %v", err)
	}
	if !isErr(us[topic].Err, kerr.InvalidPartitions) {
		t.Errorf("decreasing partitions: got %v, want INVALID_PARTITIONS", us[topic].Err)
	}
	waitTopicReady(t, adm, topic, 5)

	// Unknown topic.
	missing := uniqueName(t, "missing")
	ms, err := adm.CreatePartitions(ctx, 1, missing)
	if err != nil {
		t.Fatalf("CreatePartitions(missing): %v", err)
	}
	if !isErr(ms[missing].Err, kerr.UnknownTopicOrPartition) {
		t.Errorf("CreatePartitions on unknown topic: got %v, want UNKNOWN_TOPIC_OR_PARTITION", ms[missing].Err)
	}
}

// configOf returns the described config key of a topic.
func configOf(t testing.TB, adm *kadm.Client, topic, key string) kadm.Config {
	t.Helper()
	ctx := testCtx(t, 15*time.Second)
	rcs, err := adm.DescribeTopicConfigs(ctx, topic)
	if err != nil {
		t.Fatalf("DescribeTopicConfigs: %v", err)
	}
	rc, err := rcs.On(topic, nil)
	if err != nil {
		t.Fatalf("DescribeTopicConfigs %s: %v", topic, err)
	}
	if rc.Err != nil {
		t.Fatalf("DescribeTopicConfigs %s: %v (%s)", topic, rc.Err, rc.ErrMessage)
	}
	for _, c := range rc.Configs {
		if c.Key == key {
			return c
		}
	}
	t.Fatalf("DescribeTopicConfigs %s: key %s missing", topic, key)
	return kadm.Config{}
}

// waitConfig polls DescribeConfigs until cond holds for the topic's key
// (config changes reach a Kafka broker's metadata asynchronously).
func waitConfig(t *testing.T, adm *kadm.Client, topic, key, what string, cond func(kadm.Config) bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c := configOf(t, adm, topic, key)
		if cond(c) {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("%s: %s = %q (source %v) after 10s", what, key, c.MaybeValue(), c.Source)
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func isValue(v string) func(kadm.Config) bool {
	return func(c kadm.Config) bool { return c.MaybeValue() == v }
}

func isDynamic(v string) func(kadm.Config) bool {
	return func(c kadm.Config) bool {
		return c.MaybeValue() == v && c.Source == kmsg.ConfigSourceDynamicTopicConfig
	}
}

func notDynamic(c kadm.Config) bool { return c.Source != kmsg.ConfigSourceDynamicTopicConfig }

func TestAdminTopicConfigs(t *testing.T) {
	adm, _ := newAdmin(t)
	ctx := testCtx(t, 60*time.Second)
	topic := createTopic(t, adm, 1, map[string]*string{"retention.ms": strp("3600000")})

	t.Run("describe", func(t *testing.T) {
		rcs, err := adm.DescribeTopicConfigs(ctx, topic)
		if err != nil {
			t.Fatalf("DescribeTopicConfigs: %v", err)
		}
		rc, err := rcs.On(topic, nil)
		if err != nil || rc.Err != nil {
			t.Fatalf("DescribeTopicConfigs: %v / %v", err, rc.Err)
		}
		have := map[string]kadm.Config{}
		for _, c := range rc.Configs {
			have[c.Key] = c
		}
		for _, k := range []string{"cleanup.policy", "retention.ms", "retention.bytes", "segment.bytes", "max.message.bytes", "compression.type", "message.timestamp.type", "min.insync.replicas"} {
			if _, ok := have[k]; !ok {
				t.Errorf("topic config %s not described", k)
			}
		}
		if c := have["retention.ms"]; c.Value == nil || *c.Value != "3600000" || c.Source != kmsg.ConfigSourceDynamicTopicConfig {
			t.Errorf("retention.ms = %v source %v, want 3600000 DYNAMIC_TOPIC_CONFIG", c.MaybeValue(), c.Source)
		}
		if c := have["cleanup.policy"]; c.Value == nil || *c.Value != "delete" || c.Source == kmsg.ConfigSourceDynamicTopicConfig {
			t.Errorf("cleanup.policy = %v source %v, want default delete", c.MaybeValue(), c.Source)
		}
	})

	t.Run("incremental alter", func(t *testing.T) {
		rs, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{
			{Op: kadm.SetConfig, Name: "retention.ms", Value: strp("7200000")},
			{Op: kadm.SetConfig, Name: "max.message.bytes", Value: strp("2000000")},
		}, topic)
		if err != nil {
			t.Fatalf("AlterTopicConfigs: %v", err)
		}
		for _, r := range rs {
			if r.Err != nil {
				t.Fatalf("AlterTopicConfigs: %v (%s)", r.Err, r.ErrMessage)
			}
		}
		waitConfig(t, adm, topic, "retention.ms", "incremental set", isDynamic("7200000"))
		waitConfig(t, adm, topic, "max.message.bytes", "incremental set", isDynamic("2000000"))
		// Delete reverts to the default; the other dynamic config stays.
		rs, err = adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.DeleteConfig, Name: "retention.ms"}}, topic)
		if err != nil || rs[0].Err != nil {
			t.Fatalf("AlterTopicConfigs delete: %v / %+v", err, rs)
		}
		waitConfig(t, adm, topic, "retention.ms", "incremental delete (want the default back)", func(c kadm.Config) bool {
			return notDynamic(c) && c.MaybeValue() != "7200000"
		})
		waitConfig(t, adm, topic, "max.message.bytes", "after deleting retention.ms (want 2000000 kept)", isDynamic("2000000"))
		// Validate-only does not apply.
		rs, err = adm.ValidateAlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "max.message.bytes", Value: strp("3000000")}}, topic)
		if err != nil || rs[0].Err != nil {
			t.Fatalf("ValidateAlterTopicConfigs: %v / %+v", err, rs)
		}
		time.Sleep(500 * time.Millisecond)
		if c := configOf(t, adm, topic, "max.message.bytes"); c.MaybeValue() != "2000000" {
			t.Errorf("validate-only alter changed max.message.bytes to %q", c.MaybeValue())
		}
		// Invalid value.
		rs, err = adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "retention.ms", Value: strp("soon")}}, topic)
		if err != nil {
			t.Fatalf("AlterTopicConfigs: %v", err)
		}
		if !isErr(rs[0].Err, kerr.InvalidConfig) {
			t.Errorf("invalid retention.ms: got %v, want INVALID_CONFIG", rs[0].Err)
		}
	})

	t.Run("legacy alter", func(t *testing.T) {
		rs, err := adm.AlterTopicConfigsState(ctx, []kadm.AlterConfig{
			{Name: "retention.ms", Value: strp("1000000")},
			{Name: "segment.ms", Value: strp("3600000")},
		}, topic)
		if err != nil || rs[0].Err != nil {
			t.Fatalf("AlterTopicConfigsState: %v / %+v", err, rs)
		}
		waitConfig(t, adm, topic, "retention.ms", "legacy set", isDynamic("1000000"))
		waitConfig(t, adm, topic, "segment.ms", "legacy set", isDynamic("3600000"))
		// Legacy AlterConfigs replaces the whole dynamic set: max.message.bytes
		// (set in the incremental subtest) is gone now.
		waitConfig(t, adm, topic, "max.message.bytes", "legacy AlterConfigs replaces the full set", notDynamic)
		// Replace again with only segment.ms: retention.ms goes back to default.
		rs, err = adm.AlterTopicConfigsState(ctx, []kadm.AlterConfig{{Name: "segment.ms", Value: strp("7200000")}}, topic)
		if err != nil || rs[0].Err != nil {
			t.Fatalf("AlterTopicConfigsState: %v / %+v", err, rs)
		}
		waitConfig(t, adm, topic, "retention.ms", "legacy alter without it", notDynamic)
		waitConfig(t, adm, topic, "segment.ms", "legacy set", isDynamic("7200000"))
		rs, err = adm.AlterTopicConfigsState(ctx, []kadm.AlterConfig{{Name: "cleanup.policy", Value: strp("bogus")}}, topic)
		if err != nil {
			t.Fatalf("AlterTopicConfigsState: %v", err)
		}
		if !isErr(rs[0].Err, kerr.InvalidConfig) {
			t.Errorf("legacy alter with bad cleanup.policy: got %v, want INVALID_CONFIG", rs[0].Err)
		}
	})

	t.Run("unknown topic", func(t *testing.T) {
		missing := uniqueName(t, "missing")
		rcs, err := adm.DescribeTopicConfigs(ctx, missing)
		var rerr error
		if err != nil {
			rerr = err
		} else if rc, err := rcs.On(missing, nil); err != nil {
			rerr = err
		} else {
			rerr = rc.Err
		}
		if !isErr(rerr, kerr.UnknownTopicOrPartition) {
			t.Errorf("DescribeTopicConfigs on unknown topic: got %v, want UNKNOWN_TOPIC_OR_PARTITION", rerr)
		}
		rs, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "retention.ms", Value: strp("1000")}}, missing)
		if err == nil {
			err = rs[0].Err
		}
		if !isErr(err, kerr.UnknownTopicOrPartition) {
			t.Errorf("AlterTopicConfigs on unknown topic: got %v, want UNKNOWN_TOPIC_OR_PARTITION", err)
		}
	})
}

func TestAdminDescribeCluster(t *testing.T) {
	adm, cl := newAdmin(t)
	ctx := testCtx(t, 15*time.Second)
	m, err := adm.BrokerMetadata(ctx)
	if err != nil {
		t.Fatalf("Metadata: %v", err)
	}
	if m.Cluster == "" {
		t.Errorf("metadata has no cluster id")
	}
	if len(m.Brokers) != 1 {
		t.Fatalf("metadata lists %d brokers, want 1: %+v", len(m.Brokers), m.Brokers)
	}
	b := m.Brokers[0]
	host, port, _ := net.SplitHostPort(env.bootstrap)
	if strconv.Itoa(int(b.Port)) != port {
		t.Errorf("advertised broker %s:%d, bootstrap is %s", b.Host, b.Port, env.bootstrap)
	}
	if b.Host != host && !(host == "localhost" || b.Host == "localhost") {
		t.Errorf("advertised host %q, bootstrap host %q", b.Host, host)
	}
	if m.Controller != b.NodeID {
		t.Errorf("metadata controller id %d, want the only broker %d", m.Controller, b.NodeID)
	}

	req := kmsg.NewPtrDescribeClusterRequest()
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		t.Fatalf("DescribeCluster: %v", err)
	}
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		t.Fatalf("DescribeCluster: %v", err)
	}
	if resp.ClusterID != m.Cluster {
		t.Errorf("DescribeCluster cluster id %q, metadata %q", resp.ClusterID, m.Cluster)
	}
	if len(resp.Brokers) != 1 || resp.Brokers[0].NodeID != b.NodeID || resp.Brokers[0].Port != b.Port {
		t.Errorf("DescribeCluster brokers %+v, metadata %+v", resp.Brokers, m.Brokers)
	}
	if resp.ControllerID != b.NodeID {
		t.Errorf("DescribeCluster controller %d, want %d", resp.ControllerID, b.NodeID)
	}
}

func TestAdminDeleteRecords(t *testing.T) {
	adm, _ := newAdmin(t)
	ctx := testCtx(t, 60*time.Second)
	topic := createTopic(t, adm, 2, nil)
	prod := newClient(t, kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerLinger(0))
	for i := 0; i < 100; i++ {
		r := makeRecord(topic, i, 16)
		r.Partition = int32(i % 2)
		if err := prod.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatalf("produce: %v", err)
		}
	}
	os := make(kadm.Offsets)
	os.Add(kadm.Offset{Topic: topic, Partition: 0, At: 20, LeaderEpoch: -1})
	os.Add(kadm.Offset{Topic: topic, Partition: 1, At: -1, LeaderEpoch: -1}) // -1: up to the high watermark
	rs, err := adm.DeleteRecords(ctx, os)
	if err != nil {
		t.Fatalf("DeleteRecords: %v", err)
	}
	if r, _ := rs.Lookup(topic, 0); r.Err != nil || r.LowWatermark != 20 {
		t.Errorf("DeleteRecords p0: low watermark %d err %v, want 20", r.LowWatermark, r.Err)
	}
	if r, _ := rs.Lookup(topic, 1); r.Err != nil || r.LowWatermark != 50 {
		t.Errorf("DeleteRecords p1 (-1 = high watermark): low watermark %d err %v, want 50", r.LowWatermark, r.Err)
	}
	starts, err := adm.ListStartOffsets(ctx, topic)
	if err != nil {
		t.Fatalf("ListStartOffsets: %v", err)
	}
	if o, _ := starts.Lookup(topic, 0); o.Offset != 20 {
		t.Errorf("start offset p0 = %d, want 20", o.Offset)
	}
	if o, _ := starts.Lookup(topic, 1); o.Offset != 50 {
		t.Errorf("start offset p1 = %d, want 50", o.Offset)
	}
	// Consuming from the start begins at the new log start offset.
	recs := consumeAll(t, topic, 30, 20*time.Second)
	for _, r := range recs {
		if r.Partition != 0 || r.Offset < 20 {
			t.Errorf("consumed deleted record %d@%d", r.Partition, r.Offset)
		}
	}
	// Beyond the high watermark: OFFSET_OUT_OF_RANGE.
	bad := make(kadm.Offsets)
	bad.Add(kadm.Offset{Topic: topic, Partition: 0, At: 1000, LeaderEpoch: -1})
	rs, err = adm.DeleteRecords(ctx, bad)
	if err != nil {
		t.Fatalf("DeleteRecords: %v", err)
	}
	if r, _ := rs.Lookup(topic, 0); !isErr(r.Err, kerr.OffsetOutOfRange) {
		t.Errorf("DeleteRecords beyond high watermark: got %v, want OFFSET_OUT_OF_RANGE", r.Err)
	}
}

func TestAdminDescribeLogDirs(t *testing.T) {
	adm, _ := newAdmin(t)
	ctx := testCtx(t, 30*time.Second)
	topic := createTopic(t, adm, 2, nil)
	prod := newClient(t, kgo.DefaultProduceTopic(topic), kgo.ProducerBatchCompression(kgo.NoCompression()))
	produceRecords(t, prod, topic, 0, 200, 200)

	all, err := adm.DescribeAllLogDirs(ctx, kadm.TopicsSet{topic: {0: {}, 1: {}}})
	if err != nil {
		t.Fatalf("DescribeAllLogDirs: %v", err)
	}
	var total int64
	parts := map[int32]bool{}
	for broker, dirs := range all {
		for dir, d := range dirs {
			if d.Err != nil {
				t.Errorf("broker %d dir %s: %v", broker, dir, d.Err)
				continue
			}
			if d.Dir == "" {
				t.Errorf("broker %d: empty log dir path", broker)
			}
			for p, dp := range d.Topics[topic] {
				parts[p] = true
				total += dp.Size
				if dp.Size <= 0 {
					t.Errorf("%s/%d in %s: size %d, want > 0", topic, p, dir, dp.Size)
				}
			}
		}
	}
	if len(parts) != 2 {
		t.Errorf("log dirs describe partitions %v of %s, want 0 and 1", sortedParts(parts), topic)
	}
	if total < 200*200 {
		t.Errorf("total size %d bytes, want at least the %d payload bytes", total, 200*200)
	}
	// Describing all topics (nil set) includes the topic too.
	all, err = adm.DescribeAllLogDirs(ctx, nil)
	if err != nil {
		t.Fatalf("DescribeAllLogDirs(all): %v", err)
	}
	found := false
	for _, dirs := range all {
		for _, d := range dirs {
			if _, ok := d.Topics[topic]; ok {
				found = true
			}
		}
	}
	if !found {
		t.Errorf("DescribeAllLogDirs(all topics) does not include %s", topic)
	}
}

func TestAdminListOffsets(t *testing.T) {
	adm, _ := newAdmin(t)
	ctx := testCtx(t, 30*time.Second)
	topic := createTopic(t, adm, 1, nil)
	prod := newClient(t, kgo.DefaultProduceTopic(topic))
	base := time.Now().Add(-time.Hour).Truncate(time.Second)
	for i := 0; i < 10; i++ {
		r := &kgo.Record{Value: []byte(strconv.Itoa(i)), Timestamp: base.Add(time.Duration(i) * time.Second)}
		if err := prod.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatalf("produce: %v", err)
		}
	}
	starts, err := adm.ListStartOffsets(ctx, topic)
	if err != nil {
		t.Fatalf("ListStartOffsets: %v", err)
	}
	if o, _ := starts.Lookup(topic, 0); o.Err != nil || o.Offset != 0 {
		t.Errorf("start offset %d err %v, want 0", o.Offset, o.Err)
	}
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatalf("ListEndOffsets: %v", err)
	}
	if o, _ := ends.Lookup(topic, 0); o.Err != nil || o.Offset != 10 {
		t.Errorf("end offset %d err %v, want 10", o.Offset, o.Err)
	}
	// First offset with timestamp >= base+5.5s is record 6.
	at, err := adm.ListOffsetsAfterMilli(ctx, base.Add(5500*time.Millisecond).UnixMilli(), topic)
	if err != nil {
		t.Fatalf("ListOffsetsAfterMilli: %v", err)
	}
	if o, _ := at.Lookup(topic, 0); o.Err != nil || o.Offset != 6 || o.Timestamp != base.Add(6*time.Second).UnixMilli() {
		t.Errorf("offset after base+5.5s: offset %d ts %d err %v, want 6 at %d", o.Offset, o.Timestamp, o.Err, base.Add(6*time.Second).UnixMilli())
	}
	// Exact timestamp match.
	at, err = adm.ListOffsetsAfterMilli(ctx, base.Add(3*time.Second).UnixMilli(), topic)
	if err != nil {
		t.Fatalf("ListOffsetsAfterMilli: %v", err)
	}
	if o, _ := at.Lookup(topic, 0); o.Offset != 3 {
		t.Errorf("offset at base+3s: %d, want 3", o.Offset)
	}
	// Before everything: offset 0.
	at, err = adm.ListOffsetsAfterMilli(ctx, base.Add(-time.Hour).UnixMilli(), topic)
	if err != nil {
		t.Fatalf("ListOffsetsAfterMilli: %v", err)
	}
	if o, _ := at.Lookup(topic, 0); o.Offset != 0 {
		t.Errorf("offset after base-1h: %d, want 0", o.Offset)
	}
	// After everything: the broker answers -1 and kadm maps it to the end offset.
	req := kmsg.NewPtrListOffsetsRequest()
	req.ReplicaID = -1
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewListOffsetsRequestTopicPartition()
	rp.Partition = 0
	rp.CurrentLeaderEpoch = -1
	rp.Timestamp = time.Now().Add(time.Hour).UnixMilli()
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	_, cl := newAdmin(t)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		t.Fatalf("ListOffsets: %v", err)
	}
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		t.Fatalf("ListOffsets response shape: %+v", resp)
	}
	if p := resp.Topics[0].Partitions[0]; p.ErrorCode != 0 || p.Offset != -1 {
		t.Errorf("ListOffsets for a future timestamp: offset %d err %v, want -1 and no error", p.Offset, kerr.ErrorForCode(p.ErrorCode))
	}
	// Unknown topic.
	missing := uniqueName(t, "missing")
	lo, err := adm.ListEndOffsets(ctx, missing)
	if err != nil {
		t.Fatalf("ListEndOffsets(missing): %v", err)
	}
	if o, ok := lo.Lookup(missing, -1); !ok || !isErr(o.Err, kerr.UnknownTopicOrPartition) {
		t.Errorf("ListEndOffsets on unknown topic: %+v, want UNKNOWN_TOPIC_OR_PARTITION", lo[missing])
	}
}

// waitGroupState polls DescribeGroups until the group reaches state.
func waitGroupState(t testing.TB, adm *kadm.Client, group, state string, timeout time.Duration) kadm.DescribedGroup {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last kadm.DescribedGroup
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		dgs, err := adm.DescribeGroups(ctx, group)
		cancel()
		if err == nil {
			last = dgs[group]
			if last.Err == nil && last.State == state {
				return last
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("group %s not %s after %v: state %q err %v (request err %v)", group, state, timeout, last.State, last.Err, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
