package reactor

import (
	"context"
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
	"github.com/kafkaedge/kafkaedge/proto/pubsub"
)

// groupPeer is a franz-go member of a group: the partitions it owns, as its
// callbacks report them, and the first offset it fetched of each.
type groupPeer struct {
	mu      sync.Mutex
	owned   map[int32]bool
	first   map[int32]int64
	changed chan struct{}
	cl      *kgo.Client
}

// joinPeer starts a franz-go member of group on topic: KIP-848's protocol
// where the cluster has it (as the edge's members use it then), else the
// classic one with cooperative-sticky.
func joinPeer(t *testing.T, k *kafkatest.Kafka, group, topic string) *groupPeer {
	g := &groupPeer{owned: map[int32]bool{}, first: map[int32]int64{}, changed: make(chan struct{}, 1)}
	note := func(m map[string][]int32, own bool) {
		g.mu.Lock()
		for _, p := range m[topic] {
			if own {
				g.owned[p] = true
			} else {
				delete(g.owned, p)
			}
		}
		g.mu.Unlock()
		g.signal()
	}
	opts := []kgo.Opt{kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic), kgo.DisableAutoCommit(),
		kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, m map[string][]int32) { note(m, true) }),
		kgo.OnPartitionsRevoked(func(_ context.Context, _ *kgo.Client, m map[string][]int32) { note(m, false) }),
		kgo.OnPartitionsLost(func(_ context.Context, _ *kgo.Client, m map[string][]int32) { note(m, false) })}
	if k.Name != "kafka-3.9.2" {
		opts = append(opts, kgo.ServerSideBalancer(), kgo.Balancers(kgo.RangeBalancer()))
	}
	g.cl = k.Client(t, opts...)
	go func() {
		for {
			fs := g.cl.PollFetches(context.Background())
			if fs.IsClientClosed() {
				return
			}
			fs.EachRecord(func(r *kgo.Record) {
				g.mu.Lock()
				_, seen := g.first[r.Partition]
				if !seen {
					g.first[r.Partition] = r.Offset
				}
				g.mu.Unlock()
				if !seen {
					g.signal()
				}
			})
		}
	}()
	return g
}

// signal tells a waiter that the peer's state changed.
func (g *groupPeer) signal() {
	select {
	case g.changed <- struct{}{}:
	default:
	}
}

func (g *groupPeer) ownedList() []int32 {
	g.mu.Lock()
	defer g.mu.Unlock()
	var ps []int32
	for p := range g.owned {
		ps = append(ps, p)
	}
	slices.Sort(ps)
	return ps
}

// TestGroupSubscribe: a group subscription is a member of a Kafka consumer
// group beside a franz-go member: the group's partitions are split between
// them, each owned by one; the subscription's partitions start at the
// beginning (nothing committed) and are pushed in order; it commits as the
// member (a partition it does not own is refused); when it unsubscribes it
// leaves the group at once and the franz-go member takes its partitions
// from the committed offset.
func TestGroupSubscribe(t *testing.T) { kafkatest.Each(t, testGroupSubscribe) }

func testGroupSubscribe(t *testing.T, k *kafkatest.Kafka) {
	topic := k.Topic(t, "group-sub", 2)
	group := strings.ReplaceAll(t.Name(), "/", "-")
	for p := range int32(2) {
		produceTo(t, k, topic, p, 0, 10)
	}
	rec := newSubRecorder()
	s := startServer(t, Config{Observer: rec}, kafkaRoute("/kafka", k))
	c := dialSubs(t, s, "/kafka")
	st := c.subscribe(1, &pubsub.CmdKafkaSubscribe{Topic: topic, Group: group, Start: &pubsub.CmdKafkaSubscribe_Offset{Offset: -2}})
	if len(st.pos.GetPositions()) != 0 {
		t.Fatalf("a group subscription's answer has positions: %v", st.pos)
	}
	st.owned = map[int32]bool{}
	c.pump("the first assignment", func() bool { return len(st.assigns) > 0 })
	peer := joinPeer(t, k, group, topic)
	// Each member ends up with one partition.
	deadline := time.Now().Add(60 * time.Second)
	for {
		c.pump("an assignment", func() bool { return len(st.owned) == 1 })
		if got := peer.ownedList(); len(got) == 1 && !st.owned[got[0]] {
			break
		}
		select {
		case <-peer.changed:
		case <-time.After(time.Until(deadline)):
			t.Fatalf("the edge's member owns %v, franz-go's %v", st.owned, peer.ownedList())
		}
	}
	var mine int32
	for p := range st.owned {
		mine = p
	}
	c.pump("partition's ten records", func() bool { return st.next[mine] >= 10 })
	if got := st.offsets(mine); !sameOffsets(got, span(0, 10)) {
		t.Fatalf("partition %d: offsets %v", mine, got)
	}
	last := st.assigns[len(st.assigns)-1]
	if last.GetMemberId() == "" || last.GetGeneration() <= 0 {
		t.Fatalf("assignment without member or generation: %v", last)
	}

	if r := c.request(commitReq(2, group, topic, 1, partOff(mine, 7))); r.GetKafkaCommitResp() == nil {
		t.Fatalf("commit as the member: %v", r)
	}
	other := 1 - mine
	e := c.request(commitReq(3, group, topic, 1, partOff(other, 1))).GetErrorResp()
	if !strings.HasSuffix(e.GetMessage(), "is not assigned to this member") {
		t.Fatalf("commit of a partition the member does not own: %v", e)
	}
	e = c.request(commitReq(4, group, topic, 9, partOff(mine, 1))).GetErrorResp()
	if !strings.HasSuffix(e.GetMessage(), "subscription 9 is not a group subscription of this connection") {
		t.Fatalf("commit as an unknown subscription: %v", e)
	}
	if n := rec.get(func(r *subRecorder) int { return r.subs }); n != 1 {
		t.Fatalf("%d subscriptions observed, want 1", n)
	}

	end := c.request(unsubscribeReq(5, 1)).GetKafkaSubscriptionEndResp()
	if end.GetReason() != endUnsubscribed {
		t.Fatalf("unsubscribe: %v", end)
	}
	// The franz-go member gets the edge's partition and reads it from the
	// offset the edge committed: the subscription left the group at once
	// (the session timeout, 45 s, would otherwise hold it).
	deadline = time.Now().Add(30 * time.Second)
	for {
		peer.mu.Lock()
		first, ok := peer.first[mine]
		peer.mu.Unlock()
		if ok {
			if first != 7 {
				t.Fatalf("franz-go's member read partition %d from %d, want the committed 7", mine, first)
			}
			break
		}
		select {
		case <-peer.changed:
		case <-time.After(time.Until(deadline)):
			t.Fatalf("franz-go's member never read partition %d (owns %v)", mine, peer.ownedList())
		}
	}
}

// TestGroupAutoCommit: with auto_commit, the node commits what it pushed
// when the subscription ends (here: its connection closes), and a new
// group subscription starts where that left off.
func TestGroupAutoCommit(t *testing.T) { kafkatest.Each(t, testGroupAutoCommit) }

func testGroupAutoCommit(t *testing.T, k *kafkatest.Kafka) {
	topic := k.Topic(t, "group-auto", 2)
	group := strings.ReplaceAll(t.Name(), "/", "-")
	for p := range int32(2) {
		produceTo(t, k, topic, p, 0, 10)
	}
	s := startServer(t, Config{}, kafkaRoute("/kafka", k))
	c := dialSubs(t, s, "/kafka")
	st := c.subscribe(1, &pubsub.CmdKafkaSubscribe{Topic: topic, Group: group, AutoCommit: true,
		Start: &pubsub.CmdKafkaSubscribe_Offset{Offset: -2}})
	st.owned = map[int32]bool{}
	c.pump("both partitions' records", func() bool { return len(st.owned) == 2 && st.reached(all(2, 10)) })
	c.Close()
	adm := k.Admin(t)
	waitFor(t, "the final auto commit", func() bool {
		got, err := adm.FetchOffsets(t.Context(), group)
		if err != nil {
			return false
		}
		a, okA := got.Lookup(topic, 0)
		b, okB := got.Lookup(topic, 1)
		return okA && okB && a.At == 10 && b.At == 10
	})
	for p := range int32(2) {
		produceTo(t, k, topic, p, 10, 2)
	}
	c2 := dialSubs(t, s, "/kafka")
	st2 := c2.subscribe(1, &pubsub.CmdKafkaSubscribe{Topic: topic, Group: group, AutoCommit: true})
	st2.owned = map[int32]bool{}
	c2.pump("the records after the commit", func() bool { return len(st2.owned) == 2 && st2.reached(all(2, 12)) })
	for p := range int32(2) {
		if got := st2.offsets(p); !sameOffsets(got, span(10, 12)) {
			t.Fatalf("partition %d after the commit: %v", p, got)
		}
	}
}

// TestGroupRefused: group subscriptions past -max-group-members are
// refused, and a group the cluster refuses ends the subscription with the
// Kafka error.
func TestGroupRefused(t *testing.T) {
	k := kafkatest.Fake(t, 1)
	topic := k.Topic(t, "group-refused", 1)
	s := startServer(t, Config{MaxGroupMembers: 1}, kafkaRoute("/kafka", k))
	c := dialSubs(t, s, "/kafka")
	st := c.subscribe(1, &pubsub.CmdKafkaSubscribe{Topic: topic, Group: "g"})
	st.owned = map[int32]bool{}
	e := c.request(subscribeReq(2, &pubsub.CmdKafkaSubscribe{Topic: topic, Group: "h"})).GetErrorResp()
	if e.GetMessage() != "failed to subscribe, topic: "+topic+", err: the limit of 1 group subscriptions per connection is reached" {
		t.Fatalf("a second group subscription: %v", e)
	}
	// A plain subscription is not a member: it is not counted.
	c.subscribe(3, &pubsub.CmdKafkaSubscribe{Topic: topic})
	c.pump("the first assignment", func() bool { return len(st.assigns) > 0 })
	if len(st.assigns[0].GetAssigned()) != 1 {
		t.Fatalf("assignment %v", st.assigns[0])
	}

	k.Fake.ControlKey(int16(kmsg.ConsumerGroupHeartbeat), func(req kmsg.Request) (kmsg.Response, error, bool) {
		k.Fake.KeepControl()
		hb := req.(*kmsg.ConsumerGroupHeartbeatRequest)
		if hb.Group != "denied" {
			return nil, nil, false
		}
		resp := hb.ResponseKind().(*kmsg.ConsumerGroupHeartbeatResponse)
		resp.ErrorCode = kerr.GroupAuthorizationFailed.Code
		return resp, nil, true
	})
	c2 := dialSubs(t, s, "/kafka")
	denied := c2.subscribe(1, &pubsub.CmdKafkaSubscribe{Topic: topic, Group: "denied"})
	c2.pump("the end of a denied group subscription", func() bool { return denied.end != nil })
	if denied.end.GetCode() != 30 || denied.end.GetReason() != "GROUP_AUTHORIZATION_FAILED" || len(denied.assigns) != 0 {
		t.Fatalf("denied group: end %v, assignments %v", denied.end, denied.assigns)
	}
}

// TestGroupLag: GroupLags sums, by group and topic, the owned partitions'
// high watermarks less the next offsets pushed: the messages a member that
// stopped reading was not pushed (it is paused for a full connection), and
// 0 once it read everything.
func TestGroupLag(t *testing.T) {
	// 6 MiB: more than the stalled client's socket and the server's hold
	// (see TestSubscribeStalled).
	const n, size = 3000, 2 << 10
	k := kafkatest.Fake(t, 1)
	topic := k.Topic(t, "group-lag", 1)
	s := startServer(t, Config{MaxOutbound: 256 << 10, SlowTimeout: 5 * time.Minute}, kafkaRoute("/kafka", k))
	c := dialStalled(t, s, "/kafka")
	st := c.subscribe(1, &pubsub.CmdKafkaSubscribe{Topic: topic, Group: "lag", Start: &pubsub.CmdKafkaSubscribe_Offset{Offset: -2}})
	st.owned, st.records = map[int32]bool{}, false
	c.pump("the assignment", func() bool { return len(st.owned) == 1 })
	lag := func() (GroupLag, bool) {
		l := s.GroupLags()
		if len(l) != 1 {
			return GroupLag{}, false
		}
		return l[0], true
	}
	waitFor(t, "no lag before the messages", func() bool { l, ok := lag(); return ok && l.Lag == 0 })
	for i := 0; i < n; i += 500 {
		recs := make([]*kgo.Record, 500)
		for j := range recs {
			recs[j] = &kgo.Record{Topic: topic, Value: make([]byte, size)}
		}
		k.Produce(t, nil, recs...)
	}
	waitFor(t, "the lag of the member that does not read", func() bool { l, ok := lag(); return ok && l.Lag > 0 })
	if l, _ := lag(); l.Group != "lag" || l.Topic != topic || l.Members != 1 || l.Lag > n {
		t.Fatalf("lag %+v", l)
	}
	c.pump("every message", func() bool { return st.next[0] >= n })
	waitFor(t, "no lag once it read everything", func() bool { l, ok := lag(); return ok && l.Lag == 0 })
	c.request(unsubscribeReq(2, 1))
	waitFor(t, "no group", func() bool { return len(s.GroupLags()) == 0 })
}

// TestGroupCommittedSlow: a group subscription whose first read of the
// committed offsets of its new partitions times out asks again, and its
// partitions start (the subscription does not end).
func TestGroupCommittedSlow(t *testing.T) {
	k := kafkatest.Fake(t, 1)
	topic := k.Topic(t, "group-committed-slow", 1)
	produceTo(t, k, topic, 0, 0, 3)
	var slowed atomic.Bool
	k.Fake.ControlKey(int16(kmsg.OffsetFetch), func(kmsg.Request) (kmsg.Response, error, bool) {
		k.Fake.KeepControl()
		if !slowed.Swap(true) {
			time.Sleep(1500 * time.Millisecond) // past the subscription's MaxFetchWait once
		}
		return nil, nil, false
	})
	s := startServer(t, Config{MaxFetchWait: time.Second}, kafkaRoute("/kafka", k))
	c := dialSubs(t, s, "/kafka")
	st := c.subscribe(1, &pubsub.CmdKafkaSubscribe{Topic: topic, Group: "slow", Start: &pubsub.CmdKafkaSubscribe_Offset{Offset: -2}})
	st.owned = map[int32]bool{}
	c.pump("the records after a slow committed-offsets read", func() bool { return st.reached(all(1, 3)) })
	if st.end != nil || !slowed.Load() {
		t.Fatalf("end %v, slowed %v", st.end, slowed.Load())
	}
}
