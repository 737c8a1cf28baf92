package compat

import (
	"context"
	"encoding/binary"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// member is one group consumer polling in the background.
type member struct {
	name string
	cl   *kgo.Client

	mu         sync.Mutex
	assigned   map[int32]bool
	seqs       map[int]int // seq -> times received
	events     []string
	revokeErrs []string // OffsetCommit failures inside OnPartitionsRevoked

	cancel context.CancelFunc
	done   chan struct{}
}

func (m *member) snapshot() (parts []int32, seqs map[int]int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	seqs = make(map[int]int, len(m.seqs))
	for k, v := range m.seqs {
		seqs[k] = v
	}
	return sortedParts(m.assigned), seqs
}

// startMember starts a group member on topic that polls until closed.
func startMember(t *testing.T, name, group, topic string, extra ...kgo.Opt) *member {
	t.Helper()
	m := &member{name: name, assigned: map[int32]bool{}, seqs: map[int]int{}, done: make(chan struct{})}
	update := func(kind string, ps map[string][]int32, add bool) {
		m.mu.Lock()
		defer m.mu.Unlock()
		for _, p := range ps[topic] {
			if add {
				m.assigned[p] = true
			} else {
				delete(m.assigned, p)
			}
		}
		m.events = append(m.events, kind)
	}
	opts := append([]kgo.Opt{
		kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.HeartbeatInterval(500 * time.Millisecond),
		kgo.SessionTimeout(30 * time.Second),
		kgo.FetchMaxWait(500 * time.Millisecond),
		kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, ps map[string][]int32) { update("assigned", ps, true) }),
		kgo.OnPartitionsRevoked(func(ctx context.Context, cl *kgo.Client, ps map[string][]int32) {
			// keep the default autocommit behaviour: commit before giving up partitions
			if err := cl.CommitUncommittedOffsets(ctx); err != nil {
				t.Logf("%s: commit on revoke: %v", name, err)
				m.mu.Lock()
				m.revokeErrs = append(m.revokeErrs, err.Error())
				m.mu.Unlock()
			}
			update("revoked", ps, false)
		}),
		kgo.OnPartitionsLost(func(_ context.Context, _ *kgo.Client, ps map[string][]int32) { update("lost", ps, false) }),
	}, extra...)
	cl, err := kgo.NewClient(withLogger(t, append(baseOpts(), opts...))...)
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	m.cl = cl
	ctx, cancel := context.WithCancel(context.Background())
	m.cancel = cancel
	go func() {
		defer close(m.done)
		for {
			fs := cl.PollFetches(ctx)
			if fs.IsClientClosed() || ctx.Err() != nil {
				return
			}
			fs.EachError(func(tp string, p int32, err error) {
				t.Logf("%s: fetch error %s/%d: %v", name, tp, p, err)
			})
			fs.EachRecord(func(r *kgo.Record) {
				seq := int(binary.BigEndian.Uint64(r.Value))
				m.mu.Lock()
				m.seqs[seq]++
				m.mu.Unlock()
			})
		}
	}()
	t.Cleanup(func() { m.close() })
	return m
}

// close leaves the group (committing on revoke) and stops polling.
func (m *member) close() {
	select {
	case <-m.done:
		return
	default:
	}
	m.cl.Close()
	m.cancel()
	<-m.done
}

func waitFor(t *testing.T, what string, timeout time.Duration, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, state := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s; last state: %s", timeout, what, state)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func fmtParts(ps []int32) string { return fmt.Sprint(ps) }

func TestGroupTwoMembersRebalance(t *testing.T) {
	adm, _ := newAdmin(t)
	topic := createTopic(t, adm, 6, nil)
	group := uniqueName(t, "g")
	prod := newClient(t, kgo.DefaultProduceTopic(topic))
	produceRecords(t, prod, topic, 0, 600, 16)

	a := startMember(t, "A", group, topic)
	waitFor(t, "member A to own all 6 partitions", 30*time.Second, func() (bool, string) {
		ps, _ := a.snapshot()
		return len(ps) == 6, "A=" + fmtParts(ps)
	})

	b := startMember(t, "B", group, topic)
	waitFor(t, "A and B to split the 6 partitions 3/3", 30*time.Second, func() (bool, string) {
		pa, _ := a.snapshot()
		pb, _ := b.snapshot()
		union := map[int32]bool{}
		for _, p := range pa {
			union[p] = true
		}
		for _, p := range pb {
			union[p] = true
		}
		state := "A=" + fmtParts(pa) + " B=" + fmtParts(pb)
		return len(pa) == 3 && len(pb) == 3 && len(union) == 6, state
	})

	// The broker's view agrees: Stable, two members, 6 partitions assigned.
	dg := waitGroupState(t, adm, group, "Stable", 15*time.Second)
	if dg.ProtocolType != "consumer" || dg.Protocol != "cooperative-sticky" {
		t.Errorf("group protocol type %q protocol %q, want consumer / cooperative-sticky", dg.ProtocolType, dg.Protocol)
	}
	if len(dg.Members) != 2 {
		t.Errorf("DescribeGroups: %d members, want 2", len(dg.Members))
	}
	waitFor(t, "DescribeGroups to show all 6 partitions assigned", 10*time.Second, func() (bool, string) {
		dgs, err := adm.DescribeGroups(testCtx(t, 5*time.Second), group)
		if err != nil {
			return false, err.Error()
		}
		d := dgs[group]
		n := 0
		for _, ps := range d.AssignedPartitions() {
			n += len(ps)
		}
		return n == 6, d.State
	})

	// Records produced while both are members are split between them, and
	// together they have everything.
	produceRecords(t, prod, topic, 600, 1200, 16)
	countIn := func(from, to int, sets ...map[int]int) int {
		n := 0
		for seq := from; seq < to; seq++ {
			for _, s := range sets {
				if s[seq] > 0 {
					n++
					break
				}
			}
		}
		return n
	}
	waitFor(t, "A and B to consume all 1200 records", 30*time.Second, func() (bool, string) {
		_, sa := a.snapshot()
		_, sb := b.snapshot()
		n := countIn(0, 1200, sa, sb)
		return n == 1200, "have " + itoa(n)
	})
	_, sa := a.snapshot()
	_, sb := b.snapshot()
	if na, nb := countIn(600, 1200, sa), countIn(600, 1200, sb); na == 0 || nb == 0 {
		t.Errorf("records produced after the split should reach both members: A got %d, B got %d", na, nb)
	}

	// B leaves; A takes over every partition.
	left := time.Now()
	b.close()
	waitFor(t, "A to own all 6 partitions after B left", 20*time.Second, func() (bool, string) {
		ps, _ := a.snapshot()
		return len(ps) == 6, "A=" + fmtParts(ps)
	})
	t.Logf("rebalance after LeaveGroup took %v", time.Since(left).Round(time.Millisecond))

	produceRecords(t, prod, topic, 1200, 1800, 16)
	waitFor(t, "A alone to consume the 600 records produced after B left", 30*time.Second, func() (bool, string) {
		_, sa := a.snapshot()
		n := countIn(1200, 1800, sa)
		return n == 600, "have " + itoa(n)
	})

	// A leaves: group is empty and the committed offsets cover everything.
	a.close()

	// Every commit issued from OnPartitionsRevoked must have succeeded. The
	// classic protocol lets a member of the current generation commit while
	// the group is PreparingRebalance (that is how eager and cooperative
	// consumers save their progress before rejoining); Kafka only refuses
	// commits with REBALANCE_IN_PROGRESS in CompletingRebalance.
	for _, m := range []*member{a, b} {
		m.mu.Lock()
		errs := append([]string(nil), m.revokeErrs...)
		m.mu.Unlock()
		if len(errs) > 0 {
			t.Errorf("member %s: %d OffsetCommit(s) from OnPartitionsRevoked failed, first: %s "+
				"(Kafka accepts commits from current-generation members while the group is PreparingRebalance)", m.name, len(errs), errs[0])
		}
	}
	waitGroupState(t, adm, group, "Empty", 15*time.Second)
	offs, err := adm.FetchOffsets(testCtx(t, 10*time.Second), group)
	if err != nil {
		t.Fatalf("FetchOffsets: %v", err)
	}
	ends := endOffsets(t, adm, topic)
	for p, end := range ends {
		o, ok := offs.Lookup(topic, p)
		if !ok || o.Err != nil || o.At != end {
			t.Errorf("partition %d: committed %+v, want %d", p, o, end)
		}
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

func TestGroupStaticMembership(t *testing.T) {
	adm, _ := newAdmin(t)
	topic := createTopic(t, adm, 3, nil)
	group := uniqueName(t, "g")
	instance := "static-" + group
	prod := newClient(t, kgo.DefaultProduceTopic(topic))
	produceRecords(t, prod, topic, 0, 300, 16)

	a := startMember(t, "static-1", group, topic, kgo.InstanceID(instance))
	waitFor(t, "static member to own 3 partitions", 30*time.Second, func() (bool, string) {
		ps, _ := a.snapshot()
		return len(ps) == 3, fmtParts(ps)
	})
	waitFor(t, "static member to consume 300 records", 30*time.Second, func() (bool, string) {
		_, s := a.snapshot()
		return len(s) == 300, itoa(len(s))
	})
	dg := waitGroupState(t, adm, group, "Stable", 10*time.Second)
	if len(dg.Members) != 1 || dg.Members[0].InstanceID == nil || *dg.Members[0].InstanceID != instance {
		t.Fatalf("DescribeGroups members %+v, want one member with instance id %s", dg.Members, instance)
	}
	firstMemberID := dg.Members[0].MemberID
	// Commit explicitly: a static member does not leave the group on close.
	if err := a.cl.CommitUncommittedOffsets(testCtx(t, 10*time.Second)); err != nil {
		t.Fatalf("commit: %v", err)
	}
	a.close()

	// Still a member: closing a static member sends no LeaveGroup.
	dgs, err := adm.DescribeGroups(testCtx(t, 10*time.Second), group)
	if err != nil {
		t.Fatalf("DescribeGroups: %v", err)
	}
	if d := dgs[group]; len(d.Members) != 1 {
		t.Errorf("after closing the static member: state %s with %d members, want it kept until the session times out", d.State, len(d.Members))
	}

	// A new process with the same instance id takes over at once (well
	// within the 30s session timeout) and resumes from the committed offsets.
	produceRecords(t, prod, topic, 300, 400, 16)
	rejoin := time.Now()
	b := startMember(t, "static-2", group, topic, kgo.InstanceID(instance))
	waitFor(t, "the restarted static member to own 3 partitions", 10*time.Second, func() (bool, string) {
		ps, _ := b.snapshot()
		return len(ps) == 3, fmtParts(ps)
	})
	t.Logf("static member rejoined in %v", time.Since(rejoin).Round(time.Millisecond))
	waitFor(t, "the restarted static member to consume the 100 new records", 20*time.Second, func() (bool, string) {
		_, s := b.snapshot()
		n := 0
		for seq := 300; seq < 400; seq++ {
			if s[seq] > 0 {
				n++
			}
		}
		return n == 100, itoa(n)
	})
	_, s := b.snapshot()
	for seq := range s {
		if seq < 300 {
			t.Errorf("restarted static member re-consumed committed record seq %d", seq)
			break
		}
	}
	dgs, err = adm.DescribeGroups(testCtx(t, 10*time.Second), group)
	if err != nil {
		t.Fatalf("DescribeGroups: %v", err)
	}
	d := dgs[group]
	if len(d.Members) != 1 || d.Members[0].InstanceID == nil || *d.Members[0].InstanceID != instance {
		t.Errorf("after rejoin: members %+v, want exactly one with instance id %s", d.Members, instance)
	} else if d.Members[0].MemberID == firstMemberID {
		t.Logf("note: member id unchanged after static rejoin (%s)", firstMemberID)
	}
	if err := b.cl.CommitUncommittedOffsets(testCtx(t, 10*time.Second)); err != nil {
		t.Fatalf("commit: %v", err)
	}
	b.close()

	// Remove the static member explicitly (LeaveGroup by instance id).
	lrs, err := adm.LeaveGroup(testCtx(t, 10*time.Second), kadm.LeaveGroup(group).InstanceIDs(instance))
	if err != nil {
		t.Fatalf("LeaveGroup: %v", err)
	}
	if err := lrs.Error(); err != nil {
		t.Errorf("LeaveGroup by instance id: %v", err)
	}
	waitGroupState(t, adm, group, "Empty", 10*time.Second)
}

func TestGroupCommitAndFetchOffsets(t *testing.T) {
	adm, _ := newAdmin(t)
	ctx := testCtx(t, 90*time.Second)
	topic := createTopic(t, adm, 2, nil)
	group := uniqueName(t, "g")
	prod := newClient(t, kgo.DefaultProduceTopic(topic))
	produceRecords(t, prod, topic, 0, 200, 16)

	// Consume everything with manual commits.
	c1 := newClient(t,
		kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.DisableAutoCommit(), kgo.FetchMaxWait(500*time.Millisecond),
		kgo.HeartbeatInterval(500*time.Millisecond),
	)
	recs := pollN(t, c1, 200, 30*time.Second)
	if err := c1.CommitRecords(ctx, recs...); err != nil {
		t.Fatalf("CommitRecords: %v", err)
	}
	ends := endOffsets(t, adm, topic)
	committed := c1.CommittedOffsets()
	for p, end := range ends {
		if got := committed[topic][p].Offset; got != end {
			t.Errorf("client's committed offset for %d = %d, want %d", p, got, end)
		}
	}
	offs, err := adm.FetchOffsets(ctx, group)
	if err != nil {
		t.Fatalf("FetchOffsets: %v", err)
	}
	for p, end := range ends {
		if o, ok := offs.Lookup(topic, p); !ok || o.Err != nil || o.At != end {
			t.Errorf("FetchOffsets partition %d = %+v, want %d", p, o, end)
		}
	}
	// Active group: OffsetDelete for a subscribed topic is refused.
	drs, err := adm.DeleteOffsets(ctx, group, kadm.TopicsSet{topic: {0: {}}})
	if err != nil {
		t.Fatalf("DeleteOffsets: %v", err)
	}
	if err := drs.Error(); !isErr(err, kerr.GroupSubscribedToTopic) {
		t.Errorf("OffsetDelete on an active subscription: got %v, want GROUP_SUBSCRIBED_TO_TOPIC", err)
	}
	c1.Close()
	waitGroupState(t, adm, group, "Empty", 15*time.Second)

	// Admin commit (generation -1) on the empty group, with metadata.
	set := make(kadm.Offsets)
	set.Add(kadm.Offset{Topic: topic, Partition: 0, At: 10, LeaderEpoch: -1, Metadata: "rewind-p0"})
	cr, err := adm.CommitOffsets(ctx, group, set)
	if err != nil {
		t.Fatalf("CommitOffsets: %v", err)
	}
	if err := cr.Error(); err != nil {
		t.Fatalf("CommitOffsets: %v", err)
	}
	offs, err = adm.FetchOffsetsForTopics(ctx, group, topic)
	if err != nil {
		t.Fatalf("FetchOffsetsForTopics: %v", err)
	}
	if o, _ := offs.Lookup(topic, 0); o.At != 10 || o.Metadata != "rewind-p0" {
		t.Errorf("partition 0 after admin commit: %+v, want offset 10 metadata rewind-p0", o)
	}
	if o, _ := offs.Lookup(topic, 1); o.At != ends[1] {
		t.Errorf("partition 1 after admin commit of p0: %+v, want %d kept", o, ends[1])
	}

	// A new consumer resumes from the committed offsets.
	produceRecords(t, prod, topic, 200, 220, 16)
	newEnds := endOffsets(t, adm, topic)
	want := int(newEnds[0]-10) + int(newEnds[1]-ends[1])
	c2 := newClient(t,
		kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(500*time.Millisecond),
	)
	recs = pollN(t, c2, want, 30*time.Second)
	if err := c2.CommitUncommittedOffsets(ctx); err != nil {
		t.Fatalf("CommitUncommittedOffsets: %v", err)
	}
	first := map[int32]int64{}
	for _, r := range recs {
		if _, ok := first[r.Partition]; !ok {
			first[r.Partition] = r.Offset
		}
	}
	if first[0] != 10 {
		t.Errorf("resumed consumer started partition 0 at %d, want 10", first[0])
	}
	if f, ok := first[1]; ok && f != ends[1] {
		t.Errorf("resumed consumer started partition 1 at %d, want %d", f, ends[1])
	}
	c2.Close()
	waitGroupState(t, adm, group, "Empty", 15*time.Second)

	// OffsetDelete on the empty group removes the partition's commit.
	drs, err = adm.DeleteOffsets(ctx, group, kadm.TopicsSet{topic: {0: {}}})
	if err != nil {
		t.Fatalf("DeleteOffsets: %v", err)
	}
	if err := drs.Error(); err != nil {
		t.Errorf("DeleteOffsets: %v", err)
	}
	offs, err = adm.FetchOffsetsForTopics(ctx, group, topic)
	if err != nil {
		t.Fatalf("FetchOffsetsForTopics: %v", err)
	}
	if o, ok := offs.Lookup(topic, 0); ok && o.At >= 0 {
		t.Errorf("partition 0 still committed at %d after OffsetDelete", o.At)
	}
	if o, _ := offs.Lookup(topic, 1); o.At != newEnds[1] {
		t.Errorf("partition 1 committed %d after deleting p0's offset, want %d", o.At, newEnds[1])
	}

	// Committing for an unknown topic is refused.
	bad := make(kadm.Offsets)
	bad.Add(kadm.Offset{Topic: uniqueName(t, "missing"), Partition: 0, At: 1, LeaderEpoch: -1})
	br, err := adm.CommitOffsets(ctx, group, bad)
	if err == nil {
		err = br.Error()
	}
	if !isErr(err, kerr.UnknownTopicOrPartition) {
		t.Errorf("commit for an unknown topic: got %v, want UNKNOWN_TOPIC_OR_PARTITION", err)
	}
}

func TestAdminGroups(t *testing.T) {
	adm, _ := newAdmin(t)
	ctx := testCtx(t, 60*time.Second)
	topic := createTopic(t, adm, 2, nil)
	group := uniqueName(t, "g")
	prod := newClient(t, kgo.DefaultProduceTopic(topic))
	produceRecords(t, prod, topic, 0, 20, 16)

	m := startMember(t, "solo", group, topic)
	waitFor(t, "member to own both partitions", 30*time.Second, func() (bool, string) {
		ps, _ := m.snapshot()
		return len(ps) == 2, fmtParts(ps)
	})
	waitFor(t, "member to consume 20 records", 20*time.Second, func() (bool, string) {
		_, s := m.snapshot()
		return len(s) == 20, itoa(len(s))
	})

	lg, err := adm.ListGroups(ctx)
	if err != nil {
		t.Fatalf("ListGroups: %v", err)
	}
	if g, ok := lg[group]; !ok || g.ProtocolType != "consumer" || g.State != "Stable" {
		t.Errorf("ListGroups entry for %s: %+v (present=%v), want consumer/Stable", group, g, ok)
	}
	lg, err = adm.ListGroups(ctx, "Stable")
	if err != nil {
		t.Fatalf("ListGroups(Stable): %v", err)
	}
	if _, ok := lg[group]; !ok {
		t.Errorf("ListGroups filtered on Stable misses %s", group)
	}
	lg, err = adm.ListGroups(ctx, "Empty")
	if err != nil {
		t.Fatalf("ListGroups(Empty): %v", err)
	}
	if _, ok := lg[group]; ok {
		t.Errorf("ListGroups filtered on Empty lists the stable group %s", group)
	}

	dg := waitGroupState(t, adm, group, "Stable", 10*time.Second)
	if len(dg.Members) != 1 {
		t.Fatalf("DescribeGroups: %d members", len(dg.Members))
	}
	mem := dg.Members[0]
	if mem.MemberID == "" || mem.ClientID != "sluice-compat-go" || mem.ClientHost == "" {
		t.Errorf("member id %q client id %q host %q", mem.MemberID, mem.ClientID, mem.ClientHost)
	}
	if meta, ok := mem.Join.AsConsumer(); !ok || len(meta.Topics) != 1 || meta.Topics[0] != topic {
		t.Errorf("member subscription metadata: %+v (decoded=%v)", meta, ok)
	}
	if asg, ok := mem.Assigned.AsConsumer(); !ok || len(asg.Topics) != 1 || len(asg.Topics[0].Partitions) != 2 {
		t.Errorf("member assignment: %+v (decoded=%v)", asg, ok)
	}

	// Non-empty groups cannot be deleted.
	dr, err := adm.DeleteGroup(ctx, group)
	if err != nil && dr.Err == nil {
		dr.Err = err
	}
	if !isErr(dr.Err, kerr.NonEmptyGroup) {
		t.Errorf("deleting an active group: got %v, want NON_EMPTY_GROUP", dr.Err)
	}

	m.close()
	waitGroupState(t, adm, group, "Empty", 15*time.Second)
	lg, err = adm.ListGroups(ctx, "Empty")
	if err != nil {
		t.Fatalf("ListGroups(Empty): %v", err)
	}
	if _, ok := lg[group]; !ok {
		t.Errorf("ListGroups filtered on Empty misses %s", group)
	}

	dr, err = adm.DeleteGroup(ctx, group)
	if err != nil || dr.Err != nil {
		t.Fatalf("DeleteGroup: %v / %v", err, dr.Err)
	}
	dgs, err := adm.DescribeGroups(ctx, group)
	if err != nil {
		t.Fatalf("DescribeGroups: %v", err)
	}
	if d := dgs[group]; !(d.State == "Dead" || isErr(d.Err, kerr.GroupIDNotFound)) {
		t.Errorf("deleted group described as state %q err %v, want Dead or GROUP_ID_NOT_FOUND", d.State, d.Err)
	}
	lg, err = adm.ListGroups(ctx)
	if err != nil {
		t.Fatalf("ListGroups: %v", err)
	}
	if _, ok := lg[group]; ok {
		t.Errorf("deleted group %s still listed", group)
	}
	offs, err := adm.FetchOffsets(ctx, group)
	if err != nil {
		t.Fatalf("FetchOffsets after delete: %v", err)
	}
	n := 0
	offs.Each(func(o kadm.OffsetResponse) {
		if o.At >= 0 {
			n++
		}
	})
	if n != 0 {
		t.Errorf("deleted group still has %d committed offsets", n)
	}
	dr, err = adm.DeleteGroup(ctx, group)
	if err != nil && dr.Err == nil {
		dr.Err = err
	}
	if !isErr(dr.Err, kerr.GroupIDNotFound) {
		t.Errorf("deleting a deleted group: got %v, want GROUP_ID_NOT_FOUND", dr.Err)
	}
}

// TestConsumeSmallFetchMaxBytes consumes batches bigger than the fetch
// limits: the broker must still return at least one batch per fetch.
func TestConsumeSmallFetchMaxBytes(t *testing.T) {
	adm, _ := newAdmin(t)
	topic := createTopic(t, adm, 3, nil)
	prod := newClient(t, kgo.DefaultProduceTopic(topic), kgo.ProducerLinger(20*time.Millisecond))
	const n, valueSize = 600, 1000
	p := produceRecords(t, prod, topic, 0, n, valueSize)
	recs := consumeAll(t, topic, n, 60*time.Second,
		kgo.FetchMaxBytes(1024), kgo.FetchMaxPartitionBytes(512))
	verifyRoundTrip(t, p, recs, valueSize, -1, true)
	if len(recs) != n {
		t.Errorf("consumed %d records, want %d", len(recs), n)
	}
}

// TestConsumeFromOffsets starts a direct consumer at explicit offsets.
func TestConsumeFromOffsets(t *testing.T) {
	adm, _ := newAdmin(t)
	topic := createTopic(t, adm, 1, nil)
	prod := newClient(t, kgo.DefaultProduceTopic(topic))
	produceRecords(t, prod, topic, 0, 100, 8)
	cl := newClient(t,
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().At(57)}}),
		kgo.FetchMaxWait(500*time.Millisecond))
	recs := pollN(t, cl, 43, 20*time.Second)
	for i, r := range recs {
		if r.Offset != int64(57+i) {
			t.Fatalf("record %d has offset %d, want %d", i, r.Offset, 57+i)
		}
	}
	// Relative to the end.
	cl2 := newClient(t,
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().AtEnd().Relative(-5)}}),
		kgo.FetchMaxWait(500*time.Millisecond))
	recs = pollN(t, cl2, 5, 20*time.Second)
	if recs[0].Offset != 95 {
		t.Errorf("AtEnd().Relative(-5) started at %d, want 95", recs[0].Offset)
	}
	// Out of range offset resets to the configured reset offset (start).
	cl3 := newClient(t,
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().At(5000)}}),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(500*time.Millisecond))
	recs = pollN(t, cl3, 1, 20*time.Second)
	if recs[0].Offset != 0 {
		t.Errorf("after OFFSET_OUT_OF_RANGE reset to start: first offset %d, want 0", recs[0].Offset)
	}
}

// TestConsumeLongPollWakesPromptly parks a fetch (MaxWait 5s) on an empty
// partition and checks a new record is delivered well before MaxWait ends.
func TestConsumeLongPollWakesPromptly(t *testing.T) {
	adm, _ := newAdmin(t)
	topic := createTopic(t, adm, 1, nil)
	prod := newClient(t, kgo.DefaultProduceTopic(topic))
	// Warm the producer (metadata, producer id, connection).
	if err := prod.ProduceSync(testCtx(t, 10*time.Second), &kgo.Record{Value: []byte("warm-up")}).FirstErr(); err != nil {
		t.Fatalf("warm-up produce: %v", err)
	}
	cons := newClient(t,
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().AtEnd()}}),
		kgo.FetchMaxWait(5*time.Second))
	got := make(chan time.Time, 1)
	ctx := testCtx(t, 30*time.Second)
	go func() {
		for {
			fs := cons.PollFetches(ctx)
			if ctx.Err() != nil || fs.IsClientClosed() {
				return
			}
			if fs.NumRecords() > 0 {
				got <- time.Now()
				return
			}
		}
	}()
	// Let the consumer list offsets and park its first fetch.
	time.Sleep(2 * time.Second)
	sent := time.Now()
	if err := prod.ProduceSync(ctx, &kgo.Record{Value: []byte("wake up")}).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
	select {
	case at := <-got:
		lat := at.Sub(sent)
		t.Logf("record delivered %v after produce", lat.Round(time.Millisecond))
		if lat > 4*time.Second {
			t.Errorf("long-polling fetch delivered the record after %v, want well under MaxWait (5s)", lat)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("record not delivered within 15s")
	}
}

// TestFetchHonoursMaxWait issues a raw Fetch on an empty partition: the
// broker should hold it for about MaxWaitMillis rather than answer at once
// or hang.
func TestFetchHonoursMaxWait(t *testing.T) {
	adm, cl := newAdmin(t)
	topic := createTopic(t, adm, 1, nil)
	tds, err := adm.ListTopics(testCtx(t, 10*time.Second), topic)
	if err != nil {
		t.Fatalf("ListTopics: %v", err)
	}
	req := kmsg.NewPtrFetchRequest()
	req.ReplicaID = -1
	req.MaxWaitMillis = 1500
	req.MinBytes = 1
	req.MaxBytes = 1 << 20
	req.SessionEpoch = -1 // no fetch session
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic = topic
	rt.TopicID = tds[topic].ID
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.Partition = 0
	rp.FetchOffset = 0
	rp.CurrentLeaderEpoch = -1
	rp.LogStartOffset = -1
	rp.PartitionMaxBytes = 1 << 20
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)

	// Send it to the partition leader (the only broker).
	ctx := testCtx(t, 20*time.Second)
	start := time.Now()
	resp, err := req.RequestWith(ctx, cl)
	took := time.Since(start)
	if err != nil {
		t.Fatalf("Fetch: %v", err)
	}
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		t.Fatalf("Fetch: %v", err)
	}
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		t.Fatalf("Fetch response shape: %d topics", len(resp.Topics))
	}
	p := resp.Topics[0].Partitions[0]
	if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
		t.Fatalf("Fetch partition: %v", err)
	}
	if p.HighWatermark != 0 || len(p.RecordBatches) != 0 {
		t.Errorf("empty partition: high watermark %d, %d record bytes", p.HighWatermark, len(p.RecordBatches))
	}
	t.Logf("empty fetch with MaxWait 1500ms returned after %v", took.Round(time.Millisecond))
	if took < 1000*time.Millisecond || took > 6*time.Second {
		t.Errorf("empty fetch with MaxWait 1500ms returned after %v, want about 1.5s", took)
	}
}
