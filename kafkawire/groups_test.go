package kafkawire

import (
	"errors"
	"slices"
	"sync/atomic"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkaedge/kafkaedge/internal/kafkatest"
	"github.com/kafkaedge/kafkaedge/kafkawire/wire"
)

// TestCommitOffsets: offsets committed without membership are stored by the
// group's coordinator: read back by CommittedOffsets (every partition of
// the topic, -1 where none is) and by franz-go's admin client, and
// franz-go's commits are read by ours.
func TestCommitOffsets(t *testing.T) {
	kafkatest.Each(t, func(t *testing.T, k *kafkatest.Kafka) {
		topic := k.Topic(t, "commit", 3)
		group := t.Name() + "-group"
		c := newClient(t, Config{Brokers: k.Brokers})
		ctx := testCtx(t)
		err := c.CommitOffsets(ctx, group, topic, []CommittedOffset{
			{Partition: 0, Offset: 10, LeaderEpoch: -1},
			{Partition: 1, Offset: 20, LeaderEpoch: -1, Metadata: "from the edge"},
		}, Generation{})
		if err != nil {
			t.Fatalf("CommitOffsets: %v", err)
		}
		got, err := c.CommittedOffsets(ctx, group, topic, nil)
		if err != nil {
			t.Fatalf("CommittedOffsets: %v", err)
		}
		offsets := func(cs []CommittedOffset) (out []int64) {
			for _, o := range cs {
				out = append(out, o.Offset)
			}
			return out
		}
		if o := offsets(got); !slices.Equal(o, []int64{10, 20, -1}) || got[1].Metadata != "from the edge" || got[2].Partition != 2 {
			t.Fatalf("CommittedOffsets = %+v, want offsets 10, 20, -1 and partition 1's metadata", got)
		}

		adm := k.Admin(t)
		fetched, err := adm.FetchOffsets(ctx, group)
		if err != nil {
			t.Fatalf("kadm FetchOffsets: %v", err)
		}
		if o, ok := fetched.Lookup(topic, 1); !ok || o.At != 20 || o.Metadata != "from the edge" {
			t.Fatalf("kadm sees partition 1 at %+v (found %v), want 20 with our metadata", o, ok)
		}
		var theirs kadm.Offsets
		theirs.Add(kadm.Offset{Topic: topic, Partition: 2, At: 7, LeaderEpoch: -1})
		if resp, err := adm.CommitOffsets(ctx, group, theirs); err != nil || resp.Error() != nil {
			t.Fatalf("kadm CommitOffsets: %v %v", err, resp.Error())
		}
		got, err = c.CommittedOffsets(ctx, group, topic, []int32{2, 0})
		if err != nil {
			t.Fatalf("CommittedOffsets after kadm's commit: %v", err)
		}
		if o := offsets(got); !slices.Equal(o, []int64{7, 10}) || got[0].Partition != 2 {
			t.Fatalf("CommittedOffsets(2, 0) = %+v, want 7 and 10", got)
		}

		_, err = c.CommittedOffsets(ctx, group, "no-such-topic-"+topic, nil)
		if !errors.Is(err, ErrUnknownTopic) {
			t.Fatalf("CommittedOffsets of an unknown topic: %v, want ErrUnknownTopic", err)
		}
	})
}

// TestCommitFenced: a commit without membership into a group that has live
// members is refused by the coordinator with its Kafka error, naming the
// partition.
func TestCommitFenced(t *testing.T) {
	kafkatest.Each(t, func(t *testing.T, k *kafkatest.Kafka) {
		topic := k.Topic(t, "fenced", 1)
		group := t.Name() + "-group"
		k.Produce(t, nil, &kgo.Record{Topic: topic, Value: []byte("x")})
		member := k.Client(t, kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic), kgo.DisableAutoCommit())
		ctx := testCtx(t)
		// The member has joined once it has fetched the record.
		if fs := member.PollRecords(ctx, 1); fs.Err() != nil || fs.NumRecords() != 1 {
			t.Fatalf("member poll: %v (%d records)", fs.Err(), fs.NumRecords())
		}
		c := newClient(t, Config{Brokers: k.Brokers})
		err := c.CommitOffsets(ctx, group, topic, []CommittedOffset{{Partition: 0, Offset: 1, LeaderEpoch: -1}}, Generation{})
		var ke *Error
		if !errors.As(err, &ke) || ke.Partition != 0 ||
			ke.Code != wire.ErrUnknownMemberID && ke.Code != wire.ErrIllegalGeneration {
			t.Fatalf("plain commit into a live group: %v, want UNKNOWN_MEMBER_ID or ILLEGAL_GENERATION for partition 0", err)
		}
	})
}

// TestCoordinatorMoved: a coordinator that answers NOT_COORDINATOR is looked
// up again and the commit goes through; the lookup is cached otherwise.
func TestCoordinatorMoved(t *testing.T) {
	tc := newCluster(t)
	topic := tc.k.Topic(t, "moved", 1)
	finds := tc.countKey(wire.KeyFindCoordinator)
	var refused atomic.Bool
	tc.ControlKey(wire.KeyOffsetCommit, func(req kmsg.Request) (kmsg.Response, error, bool) {
		tc.KeepControl()
		if refused.Swap(true) {
			return nil, nil, false
		}
		return refuseCommit(req, kerr.NotCoordinator.Code), nil, true
	})
	c := newClient(t, Config{Brokers: tc.addrs})
	ctx := testCtx(t)
	offs := []CommittedOffset{{Partition: 0, Offset: 5, LeaderEpoch: -1}}
	if err := c.CommitOffsets(ctx, "g", topic, offs, Generation{}); err != nil {
		t.Fatalf("CommitOffsets after NOT_COORDINATOR: %v", err)
	}
	if n := finds.Load(); n != 2 {
		t.Fatalf("%d FindCoordinator requests, want 2 (the first lookup and the one after NOT_COORDINATOR)", n)
	}
	if err := c.CommitOffsets(ctx, "g", topic, offs, Generation{}); err != nil {
		t.Fatalf("second CommitOffsets: %v", err)
	}
	if got, err := c.CommittedOffsets(ctx, "g", topic, []int32{0}); err != nil || got[0].Offset != 5 {
		t.Fatalf("CommittedOffsets = %+v, %v; want 5", got, err)
	}
	if n := finds.Load(); n != 2 {
		t.Fatalf("%d FindCoordinator requests after two more calls, want the cached 2", n)
	}
}

// refuseCommit answers an OffsetCommit request with code for every
// partition.
func refuseCommit(req kmsg.Request, code int16) *kmsg.OffsetCommitResponse {
	r := req.(*kmsg.OffsetCommitRequest)
	resp := r.ResponseKind().(*kmsg.OffsetCommitResponse)
	for _, t := range r.Topics {
		rt := kmsg.NewOffsetCommitResponseTopic()
		rt.Topic = t.Topic
		for _, p := range t.Partitions {
			rp := kmsg.NewOffsetCommitResponseTopicPartition()
			rp.Partition, rp.ErrorCode = p.Partition, code
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp
}
