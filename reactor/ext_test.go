package reactor

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kafkaedge/kafkaedge/internal/kafkatest"
	"github.com/kafkaedge/kafkaedge/proto/pubsub"
)

func metadataReq(seq int64, topics ...string) *pubsub.PubSubReq {
	return &pubsub.PubSubReq{Sequence: seq, Req: &pubsub.PubSubReq_CmdKafkaMetadata{
		CmdKafkaMetadata: &pubsub.CmdKafkaMetadata{Topics: topics}}}
}

// TestKafkaMetadata: CmdKafkaMetadata lists the partitions of the topics
// named, an unknown one with "not found topic" in its own entry, and every
// topic of the cluster when none is named; too many names are refused.
func TestKafkaMetadata(t *testing.T) { kafkatest.Each(t, testKafkaMetadata) }

func testKafkaMetadata(t *testing.T, k *kafkatest.Kafka) {
	a, b := k.Topic(t, "meta-a", 3), k.Topic(t, "meta-b", 1)
	rec := newRecorder()
	s := startServer(t, Config{Observer: rec}, kafkaRoute("/kafka", k))
	c := dialWS(t, s, "/kafka")

	resp := c.roundTrip(metadataReq(7, a, "meta-nope", b))
	topics := resp.GetKafkaMetadataResp().GetTopics()
	if resp.GetSequence() != 7 || len(topics) != 3 {
		t.Fatalf("metadata: %v", resp)
	}
	if topics[0].GetName() != a || !slices.Equal(topics[0].GetPartitions(), []int32{0, 1, 2}) || topics[0].GetError() != nil ||
		topics[2].GetName() != b || !slices.Equal(topics[2].GetPartitions(), []int32{0}) {
		t.Fatalf("metadata of %s and %s: %v", a, b, resp)
	}
	if e := topics[1].GetError(); topics[1].GetName() != "meta-nope" || e.GetMessage() != pubsub.ReasonNotFoundTopic || e.GetCode() != 3 {
		t.Fatalf("metadata of an unknown topic: %v", topics[1])
	}

	all := c.roundTrip(metadataReq(8)).GetKafkaMetadataResp().GetTopics()
	var names []string
	for _, ti := range all {
		names = append(names, ti.GetName())
	}
	if !slices.Contains(names, a) || !slices.Contains(names, b) || !slices.IsSorted(names) {
		t.Fatalf("metadata of every topic: %v", names)
	}

	many := make([]string, maxMetadataTopics+1)
	for i := range many {
		many[i] = fmt.Sprintf("t%d", i)
	}
	e := c.roundTrip(metadataReq(9, many...)).GetErrorResp()
	if !strings.HasPrefix(e.GetMessage(), "failed to get metadata, err: 1001 topics in one request") {
		t.Fatalf("too many topics: %v", e)
	}
	if n := rec.count(func(r *recorder) int { return r.requests[CmdMetadata] }); n != 3 {
		t.Fatalf("%d metadata requests observed, want 3", n)
	}
}

// TestKafkaMetadataBrokerDown: a cluster that does not answer fails the
// request with the reason only.
func TestKafkaMetadataBrokerDown(t *testing.T) {
	s := startServer(t, Config{}, deadRoute("/kafka"))
	c := dialWS(t, s, "/kafka")
	if e := c.roundTrip(metadataReq(1, "t")).GetErrorResp(); e.GetMessage() != "failed to get metadata, err: broker unreachable" {
		t.Fatalf("metadata of a dead cluster: %v", e)
	}
}

// extFetchReq is a CmdKafkaFetch with kafkaedge's fields.
func extFetchReq(seq int64, topic string, offset int64, maxWaitMs, minBytes, maxBytes int32, headers bool) *pubsub.PubSubReq {
	return &pubsub.PubSubReq{Sequence: seq, Req: &pubsub.PubSubReq_CmdKafkaFetch{CmdKafkaFetch: &pubsub.CmdKafkaFetch{
		Topic: topic, Offset: offset, MaxWaitMs: maxWaitMs, MinBytes: minBytes, MaxBytes: maxBytes, Headers: headers}}}
}

// TestKafkaFetchExtended: CmdKafkaFetch's kafkaedge fields. headers brings
// each message's headers, and an answer to a request with any such field
// carries high_watermark and next_offset; max_bytes cuts the answer (to one
// message at least) and next_offset says where to go on; a long poll
// (max_wait_ms with min_bytes) is answered when data arrives, well before
// its wait. A plain fetch of the same records carries none of it.
func TestKafkaFetchExtended(t *testing.T) { kafkatest.Each(t, testKafkaFetchExtended) }

func testKafkaFetchExtended(t *testing.T, k *kafkatest.Kafka) {
	topic := k.Topic(t, "ext", 1)
	var recs []*kgo.Record
	for i := range 3 {
		recs = append(recs, &kgo.Record{Topic: topic, Key: []byte(fmt.Sprintf("k%d", i)), Value: []byte(strings.Repeat("v", 100)),
			Headers: []kgo.RecordHeader{{Key: "trace", Value: []byte(fmt.Sprint(i))}, {Key: "empty"}}})
	}
	k.Produce(t, nil, recs...)
	s := startServer(t, Config{}, kafkaRoute("/kafka", k))
	c := dialWS(t, s, "/kafka")

	plain := c.roundTrip(fetchReq(1, topic, 0, 0)).GetKafkaFetchResp()
	if len(plain.GetMessages()) != 3 || plain.GetHighWatermark() != 0 || plain.GetNextOffset() != 0 || len(plain.GetMessages()[0].GetHeaders()) != 0 {
		t.Fatalf("a plain fetch: %v", plain)
	}

	withHeaders := c.roundTrip(extFetchReq(2, topic, 1, 0, 0, 0, true)).GetKafkaFetchResp()
	msgs := withHeaders.GetMessages()
	if len(msgs) != 2 || withHeaders.GetHighWatermark() != 3 || withHeaders.GetNextOffset() != 3 {
		t.Fatalf("fetch with headers from 1: %v", withHeaders)
	}
	if h := msgs[0].GetHeaders(); len(h) != 2 || h[0].GetKey() != "trace" || string(h[0].GetValue()) != "1" || h[1].GetKey() != "empty" || len(h[1].GetValue()) != 0 {
		t.Fatalf("headers of offset 1: %v", h)
	}

	small := c.roundTrip(extFetchReq(3, topic, 0, 0, 0, 150, false)).GetKafkaFetchResp()
	if len(small.GetMessages()) != 1 || small.GetNextOffset() != 1 || len(small.GetMessages()[0].GetHeaders()) != 0 {
		t.Fatalf("fetch with max_bytes 150: %v", small)
	}

	// A long poll at the end, answered by the message produced while it waits.
	c.send(extFetchReq(4, topic, 3, 60_000, 1, 0, false))
	waitFor(t, "the long poll to be in flight", func() bool { return s.calls.Load() == 1 })
	k.Produce(t, nil, &kgo.Record{Topic: topic, Value: []byte("late")})
	resp, err := c.tryRecv(20 * time.Second)
	if err != nil {
		t.Fatalf("the long poll was not answered when data arrived: %v", err)
	}
	if m := resp.GetKafkaFetchResp().GetMessages(); resp.GetSequence() != 4 || len(m) != 1 || string(m[0].GetValue()) != "late" || resp.GetKafkaFetchResp().GetNextOffset() != 4 {
		t.Fatalf("the long poll: %v", resp)
	}
}

func fetchManyReq(seq int64, headers bool, maxBytes int32, targets ...*pubsub.KafkaFetchTarget) *pubsub.PubSubReq {
	return &pubsub.PubSubReq{Sequence: seq, Req: &pubsub.PubSubReq_CmdKafkaFetchMany{CmdKafkaFetchMany: &pubsub.CmdKafkaFetchMany{
		Targets: targets, Headers: headers, MaxBytes: maxBytes}}}
}

// TestKafkaFetchMany: one request across three topics, one of them unknown
// (its error in its own entry), one partition twice at two offsets; each
// entry with its messages, high watermark and next offset, in the order
// asked; too many targets, or none, are refused.
func TestKafkaFetchMany(t *testing.T) { kafkatest.Each(t, testKafkaFetchMany) }

func testKafkaFetchMany(t *testing.T, k *kafkatest.Kafka) {
	a, b := k.Topic(t, "many-a", 2), k.Topic(t, "many-b", 1)
	produce(t, k, a, 0, 5, 0)
	var recs []*kgo.Record
	for i := range 3 {
		recs = append(recs, &kgo.Record{Topic: a, Partition: 1, Value: []byte(fmt.Sprint("p1-", i)),
			Headers: []kgo.RecordHeader{{Key: "h", Value: []byte("x")}}})
	}
	k.Produce(t, []kgo.Opt{kgo.RecordPartitioner(kgo.ManualPartitioner())}, recs...)
	produce(t, k, b, 0, 2, 0)
	s := startServer(t, Config{}, kafkaRoute("/kafka", k))
	c := dialWS(t, s, "/kafka")

	resp := c.roundTrip(fetchManyReq(5, true, 0,
		&pubsub.KafkaFetchTarget{Topic: a, Partition: 0, Offset: 2},
		&pubsub.KafkaFetchTarget{Topic: "many-nope", Partition: 0},
		&pubsub.KafkaFetchTarget{Topic: a, Partition: 1, Offset: 1},
		&pubsub.KafkaFetchTarget{Topic: b, Partition: 0, Offset: 0},
		&pubsub.KafkaFetchTarget{Topic: a, Partition: 0, Offset: 4},
	))
	parts := resp.GetKafkaFetchManyResp().GetPartitions()
	if resp.GetSequence() != 5 || len(parts) != 5 {
		t.Fatalf("fetch many: %v", resp)
	}
	if err := checkMessages(parts[0].GetMessages(), a, 2, 0); err != nil || len(parts[0].GetMessages()) != 3 ||
		parts[0].GetTopic() != a || parts[0].GetHighWatermark() != 5 || parts[0].GetNextOffset() != 5 || parts[0].GetError() != nil {
		t.Fatalf("%s/0 from 2: %v (%v)", a, parts[0], err)
	}
	if e := parts[1].GetError(); parts[1].GetTopic() != "many-nope" || e.GetCode() != 3 ||
		e.GetMessage() != "failed to fetch message, topic: many-nope, partition: 0, err: not found topic" || len(parts[1].GetMessages()) != 0 {
		t.Fatalf("the unknown topic: %v", parts[1])
	}
	if m := parts[2].GetMessages(); parts[2].GetPartition() != 1 || len(m) != 2 || m[0].GetOffset() != 1 || string(m[0].GetValue()) != "p1-1" ||
		len(m[0].GetHeaders()) != 1 || parts[2].GetNextOffset() != 3 {
		t.Fatalf("%s/1 from 1: %v", a, parts[2])
	}
	if err := checkMessages(parts[3].GetMessages(), b, 0, 0); err != nil || len(parts[3].GetMessages()) != 2 {
		t.Fatalf("%s/0: %v (%v)", b, parts[3], err)
	}
	if err := checkMessages(parts[4].GetMessages(), a, 4, 0); err != nil || len(parts[4].GetMessages()) != 1 {
		t.Fatalf("%s/0 from 4: %v (%v)", a, parts[4], err)
	}

	// max_bytes shared among the targets: at least one message each.
	small := c.roundTrip(fetchManyReq(6, false, 20,
		&pubsub.KafkaFetchTarget{Topic: a, Partition: 0}, &pubsub.KafkaFetchTarget{Topic: b})).GetKafkaFetchManyResp().GetPartitions()
	if len(small) != 2 || len(small[0].GetMessages()) != 1 || small[0].GetNextOffset() != 1 || len(small[1].GetMessages()) != 1 {
		t.Fatalf("fetch many with max_bytes 20: %v", small)
	}

	var many []*pubsub.KafkaFetchTarget
	for range maxFetchManyTargets + 1 {
		many = append(many, &pubsub.KafkaFetchTarget{Topic: a})
	}
	for _, targets := range [][]*pubsub.KafkaFetchTarget{many, nil} {
		e := c.roundTrip(fetchManyReq(7, false, 0, targets...)).GetErrorResp()
		if want := fmt.Sprintf("failed to fetch messages, err: %d targets in one request, want 1 to 100", len(targets)); e.GetMessage() != want {
			t.Fatalf("%d targets: %v, want %q", len(targets), e, want)
		}
	}
}
