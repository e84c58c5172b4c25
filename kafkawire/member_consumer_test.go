package kafkawire

import (
	"context"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkaedge/kafkaedge/internal/kafkatest"
	"github.com/kafkaedge/kafkaedge/kafkawire/wire"
)

// TestConsumerProtocolMembers: two members of KIP-848's consumer protocol
// and a franz-go member of it share a group's partitions, each owned by
// one member at a time; a member that leaves hands its partitions on at
// once; a commit as a member carries its epoch.
func TestConsumerProtocolMembers(t *testing.T) {
	kafkatest.Each(t, func(t *testing.T, k *kafkatest.Kafka) {
		topic := k.Topic(t, "members", 6)
		group := t.Name() + "-group"
		c := newClient(t, Config{Brokers: k.Brokers})
		proto, err := (&Member{c: c, cfg: MemberConfig{Group: group}, ctx: t.Context()}).choose()
		if err != nil {
			t.Fatalf("choose: %v", err)
		}
		if proto != GroupProtocolConsumer {
			if k.Name == "kafka-3.9.2" {
				t.Skipf("%s does not offer the consumer protocol (auto chose %v)", k.Name, proto)
			}
			t.Fatalf("auto chose %v on %s", proto, k.Name)
		}

		o := newOwnership()
		cfg := func(name string) MemberConfig {
			return MemberConfig{Group: group, Topic: topic, Protocol: GroupProtocolConsumer, OnChange: o.onChange(name)}
		}
		a := joinMember(t, c, cfg("a"))
		b := joinMember(t, c, cfg("b"))
		kgoMember(t, k, o, "kgo", group, topic, kgo.ServerSideBalancer(), kgo.Balancers(kgo.RangeBalancer()))
		o.await(t, "a 2-2-2 split", spread(6, map[string]int{"a": 2, "b": 2, "kgo": 2}))
		o.check(t)

		gen := a.Generation()
		if gen.MemberID == "" || gen.ID <= 0 {
			t.Fatalf("member a's generation %+v", gen)
		}
		ctx := testCtx(t)
		p := o.ownedBy("a")[0]
		if err := c.CommitOffsets(ctx, group, topic, []CommittedOffset{{Partition: p, Offset: 3, LeaderEpoch: -1}}, gen); err != nil {
			t.Fatalf("commit as member a: %v", err)
		}
		if cs, err := c.CommittedOffsets(ctx, group, topic, []int32{p}); err != nil || cs[0].Offset != 3 {
			t.Fatalf("committed %+v, %v", cs, err)
		}

		o.release("a") // Leave reports nothing: the owner stops on its own
		leave(t, a)
		o.await(t, "b and kgo owning everything", spread(6, map[string]int{"b": 3, "kgo": 3}))
		o.check(t)
		for _, p := range o.ownedBy("b") {
			if !b.Owns(p) {
				t.Fatalf("b reported partition %d but does not own it", p)
			}
		}
	})
}

// TestConsumerProtocolFenced: a member the coordinator fences
// (FENCED_MEMBER_EPOCH) reports its partitions lost, joins again and gets
// partitions back, and commits with its new epoch.
func TestConsumerProtocolFenced(t *testing.T) {
	tc := newCluster(t)
	topic := tc.k.Topic(t, "fenced", 2)
	c := newClient(t, Config{Brokers: tc.addrs})
	changes := make(chan Change, 16)
	m, err := c.JoinGroup(MemberConfig{Group: "g", Topic: topic, Protocol: GroupProtocolConsumer,
		OnChange: func(ch Change) { changes <- ch }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Leave(context.Background()) })
	next := func(what string) Change {
		t.Helper()
		select {
		case ch := <-changes:
			return ch
		case <-time.After(30 * time.Second):
			t.Fatalf("no change: %s", what)
		}
		return Change{}
	}
	first := next("the first assignment")
	if len(first.Assigned) != 2 || first.Lost {
		t.Fatalf("first change %+v, want both partitions", first)
	}
	var fenced atomic.Bool
	tc.ControlKey(wire.KeyConsumerGroupHeartbeat, func(req kmsg.Request) (kmsg.Response, error, bool) {
		tc.KeepControl()
		if fenced.Swap(true) {
			return nil, nil, false
		}
		resp := req.(*kmsg.ConsumerGroupHeartbeatRequest).ResponseKind().(*kmsg.ConsumerGroupHeartbeatResponse)
		resp.ErrorCode = kerr.FencedMemberEpoch.Code
		return resp, nil, true
	})
	lost := next("the loss")
	if !lost.Lost || !slices.Equal(lost.Revoked, []int32{0, 1}) || len(lost.Assigned) != 0 {
		t.Fatalf("after FENCED_MEMBER_EPOCH: %+v, want both partitions lost", lost)
	}
	again := next("the assignment after rejoining")
	if len(again.Assigned) != 2 {
		t.Fatalf("after rejoining: %+v", again)
	}
	if err := c.CommitOffsets(testCtx(t), "g", topic, []CommittedOffset{{Partition: 0, Offset: 1, LeaderEpoch: -1}}, m.Generation()); err != nil {
		t.Fatalf("commit with the current epoch: %v", err)
	}
}
