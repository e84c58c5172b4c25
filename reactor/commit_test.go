package reactor

import (
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kafkaedge/kafkaedge/internal/kafkatest"
	"github.com/kafkaedge/kafkaedge/proto/pubsub"
)

func commitReq(seq int64, group, topic string, sub int64, offs ...*pubsub.KafkaPartitionOffset) *pubsub.PubSubReq {
	return &pubsub.PubSubReq{Sequence: seq, Req: &pubsub.PubSubReq_CmdKafkaCommit{CmdKafkaCommit: &pubsub.CmdKafkaCommit{
		Group: group, Topic: topic, Offsets: offs, Subscription: sub}}}
}

func committedReq(seq int64, group, topic string, partitions ...int32) *pubsub.PubSubReq {
	return &pubsub.PubSubReq{Sequence: seq, Req: &pubsub.PubSubReq_CmdKafkaCommitted{CmdKafkaCommitted: &pubsub.CmdKafkaCommitted{
		Group: group, Topic: topic, Partitions: partitions}}}
}

func partOff(p int32, off int64) *pubsub.KafkaPartitionOffset {
	return &pubsub.KafkaPartitionOffset{Partition: p, Offset: off}
}

// TestKafkaCommit: offsets committed through the edge without membership
// are stored in Kafka (franz-go's admin client reads them) and read back
// with CmdKafkaCommitted, as are franz-go's commits; every partition of
// the topic when none is named, -1 where none is committed.
func TestKafkaCommit(t *testing.T) { kafkatest.Each(t, testKafkaCommit) }

func testKafkaCommit(t *testing.T, k *kafkatest.Kafka) {
	topic := k.Topic(t, "edge-commit", 3)
	group := strings.ReplaceAll(t.Name(), "/", "-")
	rec := newRecorder()
	s := startServer(t, Config{Observer: rec}, kafkaRoute("/kafka", k))
	c := dialWS(t, s, "/kafka")

	resp := c.roundTrip(commitReq(1, group, topic, 0, partOff(0, 4), &pubsub.KafkaPartitionOffset{Partition: 2, Offset: 9, Metadata: "m"}))
	if resp.GetSequence() != 1 || resp.GetKafkaCommitResp() == nil {
		t.Fatalf("commit: %v", resp)
	}
	adm := k.Admin(t)
	ctx := t.Context()
	fetched, err := adm.FetchOffsets(ctx, group)
	if err != nil {
		t.Fatalf("kadm FetchOffsets: %v", err)
	}
	if o, ok := fetched.Lookup(topic, 2); !ok || o.At != 9 || o.Metadata != "m" {
		t.Fatalf("kadm sees partition 2 at %+v (%v), want 9 with metadata m", o, ok)
	}
	var theirs kadm.Offsets
	theirs.Add(kadm.Offset{Topic: topic, Partition: 1, At: 6, LeaderEpoch: -1})
	if r, err := adm.CommitOffsets(ctx, group, theirs); err != nil || r.Error() != nil {
		t.Fatalf("kadm CommitOffsets: %v %v", err, r.Error())
	}

	got := c.roundTrip(committedReq(2, group, topic)).GetKafkaCommittedResp().GetOffsets()
	want := []int64{4, 6, 9}
	if len(got) != 3 {
		t.Fatalf("committed: %v", got)
	}
	for i, o := range got {
		if o.GetPartition() != int32(i) || o.GetOffset() != want[i] {
			t.Fatalf("committed: %v, want offsets %v", got, want)
		}
	}
	if got[2].GetMetadata() != "m" {
		t.Fatalf("committed lost partition 2's metadata: %v", got[2])
	}
	other := c.roundTrip(committedReq(3, group+"-other", topic, 1)).GetKafkaCommittedResp().GetOffsets()
	if len(other) != 1 || other[0].GetPartition() != 1 || other[0].GetOffset() != -1 {
		t.Fatalf("committed of a group without commits: %v, want partition 1 at -1", other)
	}
	e := c.roundTrip(committedReq(4, group, "edge-commit-nope")).GetErrorResp()
	if e.GetMessage() != "failed to fetch committed offset, group: "+group+", topic: edge-commit-nope, err: not found topic" || e.GetCode() != 3 {
		t.Fatalf("committed of an unknown topic: %v", e)
	}
	if n := rec.count(func(r *recorder) int { return r.requests[CmdCommit] }); n != 1 {
		t.Fatalf("%d commit requests observed, want 1", n)
	}
}

// TestKafkaCommitFenced: a commit without membership into a group whose
// members are live is refused with the coordinator's error and the
// partition it concerns.
func TestKafkaCommitFenced(t *testing.T) { kafkatest.Each(t, testKafkaCommitFenced) }

func testKafkaCommitFenced(t *testing.T, k *kafkatest.Kafka) {
	topic := k.Topic(t, "edge-fenced", 1)
	group := strings.ReplaceAll(t.Name(), "/", "-")
	k.Produce(t, nil, &kgo.Record{Topic: topic, Value: []byte("x")})
	member := k.Client(t, kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic), kgo.DisableAutoCommit())
	if fs := member.PollRecords(t.Context(), 1); fs.Err() != nil || fs.NumRecords() != 1 {
		t.Fatalf("member poll: %v (%d records)", fs.Err(), fs.NumRecords())
	}
	s := startServer(t, Config{}, kafkaRoute("/kafka", k))
	c := dialWS(t, s, "/kafka")
	e := c.roundTrip(commitReq(1, group, topic, 0, partOff(0, 1))).GetErrorResp()
	prefix := "failed to commit offset, group: " + group + ", topic: " + topic + ", partition: 0, err: "
	if reason, ok := strings.CutPrefix(e.GetMessage(), prefix); !ok ||
		!(reason == "UNKNOWN_MEMBER_ID" && e.GetCode() == 25 || reason == "ILLEGAL_GENERATION" && e.GetCode() == 22) {
		t.Fatalf("plain commit into a live group: %v", e)
	}
}

// TestKafkaCommitRefused: requests the node refuses before asking Kafka,
// each with the reason.
func TestKafkaCommitRefused(t *testing.T) {
	s := startServer(t, Config{}, deadRoute("/kafka"))
	c := dialWS(t, s, "/kafka")
	many := make([]*pubsub.KafkaPartitionOffset, maxCommitPartitions+1)
	for i := range many {
		many[i] = partOff(int32(i), 1)
	}
	for _, tc := range []struct {
		req  *pubsub.PubSubReq
		want string
	}{
		{commitReq(1, "", "t", 0, partOff(0, 1)), "failed to commit offset, group: , topic: t, partition: -1, err: no group"},
		{commitReq(2, "g", "", 0, partOff(0, 1)), "failed to commit offset, group: g, topic: , partition: -1, err: no topic"},
		{commitReq(3, "g", "t", 0), "failed to commit offset, group: g, topic: t, partition: -1, err: no offsets"},
		{commitReq(4, "g", "t", 0, many...), "failed to commit offset, group: g, topic: t, partition: -1, err: 4097 offsets in one request, more than the limit of 4096"},
		{commitReq(5, "g", "t", 0, partOff(1, 1), partOff(1, 2)), "failed to commit offset, group: g, topic: t, partition: 1, err: partition 1 appears twice"},
		{commitReq(6, "g", "t", 0, partOff(-1, 1)), "failed to commit offset, group: g, topic: t, partition: -1, err: negative partition"},
		{commitReq(7, "g", "t", 0, partOff(3, -1)), "failed to commit offset, group: g, topic: t, partition: 3, err: negative offset -1"},
		{commitReq(8, "g", "t", 12, partOff(0, 1)), "failed to commit offset, group: g, topic: t, partition: -1, err: subscription 12 is not a group subscription of this connection"},
		{committedReq(9, "", "t"), "failed to fetch committed offset, group: , topic: t, err: no group"},
		{committedReq(10, "g", ""), "failed to fetch committed offset, group: g, topic: , err: no topic"},
		{committedReq(11, "g", "t", make([]int32, maxCommitPartitions+1)...), "failed to fetch committed offset, group: g, topic: t, err: 4097 partitions in one request, more than the limit of 4096"},
		// Asked of Kafka: the cluster does not answer.
		{commitReq(12, "g", "t", 0, partOff(0, 1)), "failed to commit offset, group: g, topic: t, partition: -1, err: broker unreachable"},
		{committedReq(13, "g", "t", 0), "failed to fetch committed offset, group: g, topic: t, err: broker unreachable"},
	} {
		resp := c.roundTrip(tc.req)
		if resp.GetSequence() != tc.req.GetSequence() || resp.GetErrorResp().GetMessage() != tc.want {
			t.Errorf("request %d: %v\nwant %q", tc.req.GetSequence(), resp, tc.want)
		}
	}
}
