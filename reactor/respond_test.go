package reactor

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"testing"

	"github.com/gobwas/ws"
	"google.golang.org/protobuf/proto"

	"github.com/kafkaedge/kafkaedge/internal/wstest"
	"github.com/kafkaedge/kafkaedge/kafkawire"
	"github.com/kafkaedge/kafkaedge/kafkawire/record"
	"github.com/kafkaedge/kafkaedge/proto/pubsub"
)

// framePayload strips the server frame header from one binary frame.
func framePayload(t testing.TB, frame []byte) []byte {
	t.Helper()
	f, err := wstest.ReadFrame(bytes.NewReader(frame))
	if err != nil || f.Header.OpCode != ws.OpBinary || int(f.Header.Length) != len(f.Payload) {
		t.Fatalf("frame: %v %+v", err, f.Header)
	}
	return f.Payload
}

func marshal(t testing.TB, m proto.Message) []byte {
	t.Helper()
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestEncodersMatchProtoMarshal(t *testing.T) {
	for _, seq := range []int64{0, 1, -1, math.MaxInt64, math.MinInt64} {
		var scratch []byte
		got := framePayload(t, appendErrorResp(nil, &scratch, seq, -1, "failed to fetch message, topic: t, partition: 0, err: X"))
		want := marshal(t, &pubsub.PubSubResp{Sequence: seq, Resp: &pubsub.PubSubResp_ErrorResp{
			ErrorResp: &pubsub.ErrorResp{Code: -1, Message: "failed to fetch message, topic: t, partition: 0, err: X"}}})
		if !bytes.Equal(got, want) {
			t.Fatalf("error resp seq %d:\n got %x\nwant %x", seq, got, want)
		}
		for _, off := range []int64{0, -1, 12345} {
			got = framePayload(t, appendResp(nil, seq, pubsub.FieldKafkaListOffsetResp, pubsub.AppendKafkaListOffsetResp(nil, off)))
			want = marshal(t, &pubsub.PubSubResp{Sequence: seq, Resp: &pubsub.PubSubResp_KafkaListOffsetResp{
				KafkaListOffsetResp: &pubsub.KafkaListOffsetResp{Offset: off}}})
			if !bytes.Equal(got, want) {
				t.Fatalf("list offset %d:\n got %x\nwant %x", off, got, want)
			}
		}
		for _, state := range [][]byte{nil, []byte("s")} {
			got = framePayload(t, appendResp(nil, seq, pubsub.FieldPongResp, pubsub.AppendPongResp(nil, state)))
			want = marshal(t, &pubsub.PubSubResp{Sequence: seq, Resp: &pubsub.PubSubResp_PongResp{
				PongResp: &pubsub.PongResp{State: state}}})
			if !bytes.Equal(got, want) {
				t.Fatalf("pong:\n got %x\nwant %x", got, want)
			}
		}
	}
}

func testRecords(n, size int) []record.Record {
	recs := make([]record.Record, n)
	for i := range recs {
		recs[i] = record.Record{Offset: int64(100 + i), Timestamp: tsBase + int64(i)}
		if i%3 != 0 {
			recs[i].Key = fmt.Appendf(nil, "key-%d", i)
		}
		recs[i].Value = bytes.Repeat([]byte{byte('a' + i%26)}, size)
	}
	return recs
}

// generatedFetch encodes a fetch response the generic way, for comparison.
func generatedFetch(seq int64, recs []record.Record) *pubsub.PubSubResp {
	fr := &pubsub.KafkaFetchResp{Messages: make([]*pubsub.KafkaMessage, len(recs))}
	for i, r := range recs {
		fr.Messages[i] = &pubsub.KafkaMessage{Offset: r.Offset, Timestamp: r.Timestamp, Key: r.Key, Value: r.Value}
	}
	return &pubsub.PubSubResp{Sequence: seq, Resp: &pubsub.PubSubResp_KafkaFetchResp{KafkaFetchResp: fr}}
}

func TestFetchBody(t *testing.T) {
	recs := testRecords(20, 100)
	body, n, _ := appendFetchBody(nil, recs, 0, 1<<20, false)
	if n != len(recs) {
		t.Fatalf("%d messages of %d", n, len(recs))
	}
	frame := append(appendRespHeaderFrame(nil, -5, pubsub.FieldKafkaFetchResp, len(body)), body...)
	if got, want := framePayload(t, frame), marshal(t, generatedFetch(-5, recs)); !bytes.Equal(got, want) {
		t.Fatalf("fetch body differs from proto.Marshal:\n got %x\nwant %x", got, want)
	}

	// Records before from are trimmed.
	var fr pubsub.KafkaFetchResp
	body, n, _ = appendFetchBody(nil, recs, 105, 1<<20, false)
	if err := proto.Unmarshal(body, &fr); err != nil {
		t.Fatal(err)
	}
	if len(fr.Messages) != 15 || n != 15 || fr.Messages[0].Offset != 105 {
		t.Fatalf("trim: %d messages from %d", len(fr.Messages), fr.Messages[0].Offset)
	}

	// The limit stops before the message that would pass it, but the
	// first message always goes.
	body, n, _ = appendFetchBody(nil, recs, 0, 1000, false)
	if len(body) > 1000 {
		t.Fatalf("body of %d bytes over the 1000-byte limit", len(body))
	}
	if err := proto.Unmarshal(body, &fr); err != nil || len(fr.Messages) == 0 || len(fr.Messages) >= 20 || n != len(fr.Messages) {
		t.Fatalf("limited: %d messages (%d counted), %v", len(fr.Messages), n, err)
	}
	body, n, _ = appendFetchBody(nil, recs, 0, 10, false)
	if err := proto.Unmarshal(body, &fr); err != nil || len(fr.Messages) != 1 || n != 1 {
		t.Fatalf("tiny limit: %d messages, %v", len(fr.Messages), err)
	}
}

// TestKafkaError pins the code and <reason> of docs/protocol.md for each
// kind of kafkawire failure.
func TestKafkaError(t *testing.T) {
	cases := []struct {
		err    error
		code   int32
		reason string
	}{
		{&kafkawire.Error{Op: "fetch", Code: 3, Err: kafkawire.ErrUnknownTopic}, 3, "not found topic"},
		{&kafkawire.Error{Op: "fetch", Code: 3, Err: kafkawire.ErrUnknownPartition}, 3, "not found partition"},
		{&kafkawire.Error{Op: "list offsets", Code: 3, Err: fmt.Errorf("lookup: %w", kafkawire.ErrUnknownPartition)}, 3, "not found partition"},
		{&kafkawire.Error{Op: "fetch", Code: 3}, 3, "not found topic"},
		{&kafkawire.Error{Op: "list offsets", Err: kafkawire.ErrUnknownTopic}, 0, "not found topic"},
		{&kafkawire.Error{Op: "fetch", Code: 1}, 1, "OFFSET_OUT_OF_RANGE"},
		{&kafkawire.Error{Op: "fetch", Code: 6}, 6, "NOT_LEADER_OR_FOLLOWER"},
		{&kafkawire.Error{Op: "fetch", Code: 29}, 29, "TOPIC_AUTHORIZATION_FAILED"},
		{&kafkawire.Error{Op: "fetch", Code: -1}, -1, "UNKNOWN_SERVER_ERROR"},
		{&kafkawire.Error{Op: "fetch", Code: 30000}, 30000, "UNKNOWN_ERROR_CODE_30000"},
		{&kafkawire.Error{Op: "fetch", Err: fmt.Errorf("wait: %w", kafkawire.ErrTimeout)}, 0, "timeout"},
		{&kafkawire.Error{Op: "fetch", Err: kafkawire.ErrClosed}, 0, "client closed"},
		{&kafkawire.Error{Op: "fetch", Err: fmt.Errorf("broker 10.0.0.1:9092: dial tcp: connection refused: %w", kafkawire.ErrBrokerUnreachable)}, 0, "broker unreachable"},
		{&kafkawire.Error{Op: "fetch", Err: errors.New("lookup kafka-server1 on 10.255.255.53:53: no such host")}, 0, "unknown error"},
		{&kafkawire.Error{Op: "fetch"}, 0, "unknown error"},
		{fmt.Errorf("call: %w", &kafkawire.Error{Op: "fetch", Code: 1}), 1, "OFFSET_OUT_OF_RANGE"},
		{errors.New("not a kafkawire error"), 0, "unknown error"},
	}
	for _, c := range cases {
		if code, reason, _ := kafkaError(c.err); code != c.code || reason != c.reason {
			t.Errorf("kafkaError(%v) = %d %q, want %d %q", c.err, code, reason, c.code, c.reason)
		}
	}
}
