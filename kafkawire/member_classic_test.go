package kafkawire

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkaedge/kafkaedge/internal/kafkatest"
	"github.com/kafkaedge/kafkaedge/kafkawire/wire"
)

// ownership records which group member owns each partition, as the
// members report it (our OnChange, kgo's callbacks), and every moment a
// partition was owned by two members at once.
type ownership struct {
	mu         sync.Mutex
	owner      map[int32]string
	violations []string
	changes    []Change        // of our members, in order, by name
	names      []string        // of changes
	changed    chan struct{}   // closed and replaced on every report
	gone       map[string]bool // members released by the test
}

func newOwnership() *ownership {
	return &ownership{owner: map[int32]string{}, changed: make(chan struct{}), gone: map[string]bool{}}
}

// report applies one member's change: revoked first, then added.
func (o *ownership) report(name string, revoked, added []int32) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, p := range revoked {
		if o.owner[p] == name {
			delete(o.owner, p)
		} else if !o.gone[name] {
			o.violations = append(o.violations, fmt.Sprintf("%s revoked partition %d, owned by %q", name, p, o.owner[p]))
		}
	}
	for _, p := range added {
		if cur, ok := o.owner[p]; ok && cur != name {
			o.violations = append(o.violations, fmt.Sprintf("%s was assigned partition %d while %s owned it", name, p, cur))
		}
		o.owner[p] = name
	}
	close(o.changed)
	o.changed = make(chan struct{})
}

// onChange is an OnChange of our member name.
func (o *ownership) onChange(name string) func(Change) {
	return func(ch Change) {
		o.mu.Lock()
		o.changes = append(o.changes, ch)
		o.names = append(o.names, name)
		o.mu.Unlock()
		o.report(name, ch.Revoked, ch.Added)
	}
}

// kgoOpts are the callbacks of a kgo member name of topic.
func (o *ownership) kgoOpts(name, topic string) []kgo.Opt {
	return []kgo.Opt{
		kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, m map[string][]int32) { o.report(name, nil, m[topic]) }),
		kgo.OnPartitionsRevoked(func(_ context.Context, _ *kgo.Client, m map[string][]int32) { o.report(name, m[topic], nil) }),
		kgo.OnPartitionsLost(func(_ context.Context, _ *kgo.Client, m map[string][]int32) { o.report(name, m[topic], nil) }),
	}
}

// release drops what member name owns, before the test makes it leave:
// its owner stops using its partitions first.
func (o *ownership) release(name string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for p, n := range o.owner {
		if n == name {
			delete(o.owner, p)
		}
	}
	o.gone[name] = true
}

// owned returns partition -> owner.
func (o *ownership) owned() map[int32]string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return maps.Clone(o.owner)
}

// ownedBy returns the sorted partitions of name.
func (o *ownership) ownedBy(name string) []int32 {
	var out []int32
	for p, n := range o.owned() {
		if n == name {
			out = append(out, p)
		}
	}
	slices.Sort(out)
	return out
}

// await waits (at most 60 s: KIP-848 moves a partition in a few of the
// broker's 5 s heartbeat intervals) until ok holds of the owners.
func (o *ownership) await(t *testing.T, what string, ok func(owner map[int32]string) bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for {
		o.mu.Lock()
		done, ch := ok(maps.Clone(o.owner)), o.changed
		o.mu.Unlock()
		if done {
			return
		}
		select {
		case <-ch:
		case <-ctx.Done():
			t.Fatalf("waiting for %s: owners %v", what, o.owned())
		}
	}
}

// check fails the test if a partition was ever owned by two members.
func (o *ownership) check(t *testing.T) {
	t.Helper()
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.violations) > 0 {
		t.Fatalf("partitions owned twice: %s", strings.Join(o.violations, "; "))
	}
}

// spread returns a predicate: all n partitions owned, each member owning
// the count given.
func spread(n int, counts map[string]int) func(map[int32]string) bool {
	return func(owner map[int32]string) bool {
		if len(owner) != n {
			return false
		}
		got := map[string]int{}
		for p, name := range owner {
			if p < 0 || int(p) >= n {
				return false
			}
			got[name]++
		}
		return maps.Equal(got, counts)
	}
}

// classicConfig is a MemberConfig of a classic member quick to rebalance.
func classicConfig(group, topic string, onChange func(Change)) MemberConfig {
	return MemberConfig{Group: group, Topic: topic, Protocol: GroupProtocolClassic, SessionTimeout: 10 * time.Second,
		RebalanceTimeout: 10 * time.Second, HeartbeatInterval: 100 * time.Millisecond, OnChange: onChange}
}

// joinMember starts a member, left at the end of the test.
func joinMember(t *testing.T, c *Client, cfg MemberConfig) *Member {
	t.Helper()
	m, err := c.JoinGroup(cfg)
	if err != nil {
		t.Fatalf("JoinGroup: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		m.Leave(ctx)
	})
	return m
}

// leave makes m leave and checks it stopped without an error.
func leave(t *testing.T, m *Member) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := m.Leave(ctx); err != nil {
		t.Fatalf("Leave: %v", err)
	}
	if err := m.Err(); err != nil {
		t.Fatalf("member stopped with %v after Leave", err)
	}
}

// kgoMember starts a franz-go member of group, with the callbacks of o.
func kgoMember(t *testing.T, k *kafkatest.Kafka, o *ownership, name, group, topic string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	base := []kgo.Opt{kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic), kgo.DisableAutoCommit(),
		kgo.HeartbeatInterval(100 * time.Millisecond), kgo.SessionTimeout(10 * time.Second), kgo.RebalanceTimeout(10 * time.Second)}
	return k.Client(t, append(append(base, o.kgoOpts(name, topic)...), opts...)...)
}

// memberClient is a Client for group members: one connection per broker
// and lane, so that a JoinGroup held on a shared connection would hold up
// the other members' heartbeats.
func memberClient(t *testing.T, k *kafkatest.Kafka, logger *slog.Logger) *Client {
	t.Helper()
	return newClient(t, Config{Brokers: k.Brokers, ConnsPerBroker: 1, Logger: logger})
}

// TestClassicCooperative: two of our members and a franz-go member with the
// cooperative-sticky balancer, all on one Client, share a topic's partitions
// 2-2-2; when one of ours leaves, the others take its partitions, and no
// partition is ever owned by two members: it is revoked from one before it
// is added to another.
func TestClassicCooperative(t *testing.T) {
	kafkatest.Each(t, func(t *testing.T, k *kafkatest.Kafka) {
		topic := k.Topic(t, "classic-coop", 6)
		group := t.Name() + "-group"
		o := newOwnership()
		c := memberClient(t, k, nil)
		// One by one, so that each join takes partitions from those
		// before it: revoked in one rebalance, assigned in the next.
		a := joinMember(t, c, classicConfig(group, topic, o.onChange("a")))
		o.await(t, "a owning every partition", spread(6, map[string]int{"a": 6}))
		b := joinMember(t, c, classicConfig(group, topic, o.onChange("b")))
		o.await(t, "a 3-3 split", spread(6, map[string]int{"a": 3, "b": 3}))
		kgoMember(t, k, o, "kgo", group, topic, kgo.Balancers(kgo.CooperativeStickyBalancer()))
		o.await(t, "a 2-2-2 split", spread(6, map[string]int{"a": 2, "b": 2, "kgo": 2}))
		o.mu.Lock()
		changes := slices.Clone(o.changes)
		o.mu.Unlock()
		for _, ch := range changes {
			if len(ch.Revoked) > 0 && len(ch.Assigned) == 0 {
				t.Fatalf("a cooperative rebalance revoked everything: %+v", ch)
			}
		}
		o.check(t)
		if p := a.Protocol(); p != GroupProtocolClassic {
			t.Fatalf("member protocol %v, want classic", p)
		}
		for _, p := range o.ownedBy("a") {
			if !a.Owns(p) {
				t.Fatalf("a reported partition %d but does not own it", p)
			}
		}

		o.release("a")
		leave(t, a)
		o.await(t, "a 3-3 split after a left", spread(6, map[string]int{"b": 3, "kgo": 3}))
		o.check(t)
		if g := b.Generation(); g.MemberID == "" || g.ID <= 0 {
			t.Fatalf("b's generation %+v", g)
		}
	})
}

// capture is a slog handler that keeps the records of one message.
type capture struct {
	msg  string
	mu   *sync.Mutex
	recs *[]map[string]string
}

func newCapture(msg string) (*capture, func() []map[string]string) {
	c := &capture{msg: msg, mu: new(sync.Mutex), recs: new([]map[string]string)}
	return c, func() []map[string]string {
		c.mu.Lock()
		defer c.mu.Unlock()
		return slices.Clone(*c.recs)
	}
}

func (c *capture) Enabled(context.Context, slog.Level) bool { return true }
func (c *capture) WithAttrs([]slog.Attr) slog.Handler       { return c }
func (c *capture) WithGroup(string) slog.Handler            { return c }
func (c *capture) Handle(_ context.Context, r slog.Record) error {
	if r.Message != c.msg {
		return nil
	}
	attrs := map[string]string{}
	r.Attrs(func(a slog.Attr) bool {
		attrs[a.Key] = a.Value.String()
		return true
	})
	c.mu.Lock()
	*c.recs = append(*c.recs, attrs)
	c.mu.Unlock()
	return nil
}

// TestClassicRangeLeader: our member leads a group with the range assignor
// and a franz-go member with its range balancer: the partitions are split
// as range does (the member first by member ID gets 0-2), and the eager
// protocol's revocations never let two members own a partition.
func TestClassicRangeLeader(t *testing.T) {
	kafkatest.Each(t, func(t *testing.T, k *kafkatest.Kafka) {
		topic := k.Topic(t, "classic-range", 6)
		group := t.Name() + "-group"
		o := newOwnership()
		h, led := newCapture("kafkawire: group assignment computed")
		c := memberClient(t, k, slog.New(h))
		cfg := classicConfig(group, topic, o.onChange("ours"))
		cfg.Assignors = []string{"range"}
		ours := joinMember(t, c, cfg)
		o.await(t, "ours owning every partition", spread(6, map[string]int{"ours": 6}))
		cl := kgoMember(t, k, o, "kgo", group, topic, kgo.Balancers(kgo.RangeBalancer()))
		o.await(t, "a 3-3 split", spread(6, map[string]int{"ours": 3, "kgo": 3}))
		o.check(t)

		gen := ours.Generation()
		theirs, _ := cl.GroupMetadata()
		first, second := "ours", "kgo"
		if theirs < gen.MemberID {
			first, second = second, first
		}
		if got := o.ownedBy(first); !slices.Equal(got, []int32{0, 1, 2}) {
			t.Fatalf("%s (first by member ID) owns %v, want [0 1 2] (members %s, %s)", first, got, gen.MemberID, theirs)
		}
		if got := o.ownedBy(second); !slices.Equal(got, []int32{3, 4, 5}) {
			t.Fatalf("%s owns %v, want [3 4 5]", second, got)
		}
		var ledIt bool
		for _, r := range led() {
			if r["group"] == group && r["generation"] == fmt.Sprint(gen.ID) && r["assignor"] == "range" {
				ledIt = true
			}
		}
		if !ledIt {
			t.Fatalf("our member did not compute the assignment of generation %d: %v", gen.ID, led())
		}
	})
}

// TestClassicFenced: commits as the member's generation are accepted;
// removed from the group behind its back, the member reports its
// partitions lost, joins again as a new member and is assigned them again;
// a commit as its old generation is refused.
func TestClassicFenced(t *testing.T) {
	kafkatest.Each(t, func(t *testing.T, k *kafkatest.Kafka) {
		topic := k.Topic(t, "classic-fenced", 3)
		group := t.Name() + "-group"
		o := newOwnership()
		c := memberClient(t, k, nil)
		m := joinMember(t, c, classicConfig(group, topic, o.onChange("m")))
		o.await(t, "m owning every partition", spread(3, map[string]int{"m": 3}))
		ctx := testCtx(t)
		old := m.Generation()
		offs := []CommittedOffset{{Partition: 1, Offset: 5, LeaderEpoch: -1}}
		if err := c.CommitOffsets(ctx, group, topic, offs, old); err != nil {
			t.Fatalf("commit as generation %+v: %v", old, err)
		}

		// Remove the member as an admin would (LeaveGroup v3+ naming it).
		req := kmsg.NewPtrLeaveGroupRequest()
		req.Group = group
		lm := kmsg.NewLeaveGroupRequestMember()
		lm.MemberID = old.MemberID
		req.Members = append(req.Members, lm)
		resp, err := req.RequestWith(ctx, k.Client(t))
		if err == nil {
			err = kerr.ErrorForCode(resp.ErrorCode)
		}
		if err != nil {
			t.Fatalf("LeaveGroup for the member: %v", err)
		}

		o.await(t, "m owning every partition again", func(owner map[int32]string) bool {
			return len(owner) == 3 && m.Generation().MemberID != old.MemberID
		})
		o.check(t)
		o.mu.Lock()
		changes := slices.Clone(o.changes)
		o.mu.Unlock()
		var lost bool
		for _, ch := range changes {
			lost = lost || ch.Lost && ch.MemberID == old.MemberID && len(ch.Revoked) == 3 && len(ch.Assigned) == 0
		}
		if !lost {
			t.Fatalf("no Lost change of member %s's partitions: %+v", old.MemberID, changes)
		}
		err = c.CommitOffsets(ctx, group, topic, offs, old)
		var ke *Error
		if !errors.As(err, &ke) || ke.Code != wire.ErrIllegalGeneration && ke.Code != wire.ErrUnknownMemberID {
			t.Fatalf("commit as the old generation: %v, want ILLEGAL_GENERATION or UNKNOWN_MEMBER_ID", err)
		}
		if err := c.CommitOffsets(ctx, group, topic, offs, m.Generation()); err != nil {
			t.Fatalf("commit as the new generation %+v: %v", m.Generation(), err)
		}
	})
}

// TestClassicIllegalGeneration: a heartbeat answered ILLEGAL_GENERATION
// loses the member its partitions; it rejoins with its member ID and is
// assigned them again.
func TestClassicIllegalGeneration(t *testing.T) {
	tc := newCluster(t)
	topic := tc.k.Topic(t, "classic-illegal", 2)
	var fenced atomic.Bool
	var arm atomic.Bool
	tc.ControlKey(wire.KeyHeartbeat, func(req kmsg.Request) (kmsg.Response, error, bool) {
		tc.KeepControl()
		if !arm.Load() || fenced.Swap(true) {
			return nil, nil, false
		}
		resp := req.ResponseKind().(*kmsg.HeartbeatResponse)
		resp.ErrorCode = kerr.IllegalGeneration.Code
		return resp, nil, true
	})
	o := newOwnership()
	c := memberClient(t, tc.k, nil)
	m := joinMember(t, c, classicConfig("g", topic, o.onChange("m")))
	o.await(t, "m owning every partition", spread(2, map[string]int{"m": 2}))
	id := m.Generation().MemberID
	arm.Store(true)
	o.await(t, "m losing and regaining its partitions", func(owner map[int32]string) bool {
		for i, ch := range o.changes { // await holds o.mu
			if ch.Lost {
				return i < len(o.changes)-1 && len(owner) == 2
			}
		}
		return false
	})
	o.check(t)
	if g := m.Generation(); g.MemberID != id {
		t.Fatalf("member ID %q after ILLEGAL_GENERATION, want %q kept", g.MemberID, id)
	}
}

// TestClassicLeave: a member that leaves sends LeaveGroup, so the other
// gets its partitions long before the 2 min session timeout would pass
// (await gives up after 60 s).
func TestClassicLeave(t *testing.T) {
	kafkatest.Each(t, func(t *testing.T, k *kafkatest.Kafka) {
		topic := k.Topic(t, "classic-leave", 6)
		group := t.Name() + "-group"
		o := newOwnership()
		c := memberClient(t, k, nil)
		var leaves *atomic.Int64
		if k.Fake != nil {
			leaves = countRequests(k.Fake, wire.KeyLeaveGroup)
		}
		cfg := func(name string) MemberConfig {
			cfg := classicConfig(group, topic, o.onChange(name))
			cfg.SessionTimeout = 2 * time.Minute
			return cfg
		}
		a := joinMember(t, c, cfg("a"))
		joinMember(t, c, cfg("b"))
		o.await(t, "a 3-3 split", spread(6, map[string]int{"a": 3, "b": 3}))
		o.release("a")
		leave(t, a)
		o.await(t, "b owning every partition", spread(6, map[string]int{"b": 6}))
		o.check(t)
		if leaves != nil && leaves.Load() != 1 {
			t.Fatalf("%d LeaveGroup requests, want 1", leaves.Load())
		}
	})
}

// TestClassicStaticLeave: a static member does not send LeaveGroup when it
// leaves (KIP-345, as Java does not).
func TestClassicStaticLeave(t *testing.T) {
	tc := newCluster(t)
	topic := tc.k.Topic(t, "classic-static", 2)
	leaves := tc.countKey(wire.KeyLeaveGroup)
	o := newOwnership()
	c := memberClient(t, tc.k, nil)
	cfg := classicConfig("g", topic, o.onChange("m"))
	cfg.InstanceID = "edge-1"
	m := joinMember(t, c, cfg)
	o.await(t, "m owning every partition", spread(2, map[string]int{"m": 2}))
	if g := m.Generation(); g.InstanceID != "edge-1" {
		t.Fatalf("generation %+v without the instance ID", g)
	}
	leave(t, m)
	if n := leaves.Load(); n != 0 {
		t.Fatalf("%d LeaveGroup requests from a static member, want none", n)
	}
}

// TestClassicDowngrade: a group on cooperative-sticky that a range-only
// member joins goes eager: the cooperative member gives up its partitions
// before the range assignment hands them out.
func TestClassicDowngrade(t *testing.T) {
	tc := newCluster(t)
	topic := tc.k.Topic(t, "classic-downgrade", 4)
	o := newOwnership()
	c := memberClient(t, tc.k, nil)
	joinMember(t, c, classicConfig("g", topic, o.onChange("coop")))
	o.await(t, "coop owning every partition", spread(4, map[string]int{"coop": 4}))
	cfg := classicConfig("g", topic, o.onChange("range"))
	cfg.Assignors = []string{"range"}
	joinMember(t, c, cfg)
	o.await(t, "a 2-2 split", spread(4, map[string]int{"coop": 2, "range": 2}))
	o.check(t)
}

// TestClassicBadAssignor: an assignor the package does not have fails the
// member at once.
func TestClassicBadAssignor(t *testing.T) {
	tc := newCluster(t)
	c := memberClient(t, tc.k, nil)
	cfg := classicConfig("g", "t", func(Change) {})
	cfg.Assignors = []string{"roundrobin"}
	m, err := c.JoinGroup(cfg)
	if err != nil {
		t.Fatalf("JoinGroup: %v", err)
	}
	select {
	case <-m.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("member with an unknown assignor still running")
	}
	if err := m.Err(); err == nil || !strings.Contains(err.Error(), "roundrobin") {
		t.Fatalf("Err = %v, want the unknown assignor named", err)
	}
}

// TestMemberCommitNextGeneration: Member.Commit sends a commit refused
// with ILLEGAL_GENERATION again as the member's next generation (here the
// coordinator refuses the first commit, and a franz-go member of another
// topic joining the group makes a new generation in which ours keeps its
// partition); a refusal while no new generation comes is returned once the
// RebalanceTimeout has passed.
func TestMemberCommitNextGeneration(t *testing.T) {
	k := kafkatest.Fake(t, 1)
	topic := k.Topic(t, "commit-next", 1)
	other := k.Topic(t, "commit-other", 1)
	group := "commit-next"
	o := newOwnership()
	c := memberClient(t, k, nil)
	cfg := classicConfig(group, topic, o.onChange("m"))
	cfg.RebalanceTimeout = 3 * time.Second
	m := joinMember(t, c, cfg)
	o.await(t, "m owning its partition", spread(1, map[string]int{"m": 1}))
	first := m.Generation()

	var refuse atomic.Int32 // commits still to refuse; -1: all
	refuse.Store(1)
	refused := make(chan struct{}, 8)
	k.Fake.ControlKey(int16(kmsg.OffsetCommit), func(req kmsg.Request) (kmsg.Response, error, bool) {
		k.Fake.KeepControl()
		if n := refuse.Load(); n == 0 {
			return nil, nil, false
		} else if n > 0 {
			refuse.Add(-1)
		}
		refused <- struct{}{}
		return refuseCommit(req, kerr.IllegalGeneration.Code), nil, true
	})
	offs := []CommittedOffset{{Partition: 0, Offset: 3, LeaderEpoch: -1}}
	done := make(chan error, 1)
	go func() { done <- m.Commit(testCtx(t), offs) }()
	<-refused
	kgoMember(t, k, newOwnership(), "kgo", group, other)
	if err := <-done; err != nil {
		t.Fatalf("commit across the new generation: %v", err)
	}
	if gen := m.Generation(); gen.ID <= first.ID {
		t.Fatalf("committed as generation %d, the first was %d", gen.ID, first.ID)
	}
	got, err := c.CommittedOffsets(testCtx(t), group, topic, []int32{0})
	if err != nil || len(got) != 1 || got[0].Offset != 3 {
		t.Fatalf("committed %v, %v; want offset 3", got, err)
	}

	refuse.Store(-1)
	start := time.Now()
	err = m.Commit(testCtx(t), offs)
	var ke *Error
	if !errors.As(err, &ke) || ke.Code != wire.ErrIllegalGeneration {
		t.Fatalf("a commit refused with no new generation coming: %v", err)
	}
	if waited := time.Since(start); waited < cfg.RebalanceTimeout {
		t.Fatalf("returned after %s, before the RebalanceTimeout %s", waited, cfg.RebalanceTimeout)
	}
}
