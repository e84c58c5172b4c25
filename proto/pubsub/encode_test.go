package pubsub

import (
	"bytes"
	"math"
	"math/rand/v2"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

var det = proto.MarshalOptions{Deterministic: true}

type msgCase struct {
	name              string
	offset, timestamp int64
	key, value        []byte
}

func messageCases() []msgCase {
	big := bytes.Repeat([]byte{0xab}, 70000)
	return []msgCase{
		{name: "zero"},
		{name: "nil key empty value", offset: 1, timestamp: 1},
		{name: "empty key", offset: 5, key: []byte{}, value: []byte("v")},
		{name: "nil key", offset: 5, key: nil, value: []byte("v")},
		{name: "key only", key: []byte("k")},
		{name: "negative offset", offset: -1, timestamp: -2, value: []byte("x")},
		{name: "max", offset: math.MaxInt64, timestamp: math.MaxInt64, key: []byte("key"), value: []byte("value")},
		{name: "min", offset: math.MinInt64, timestamp: math.MinInt64},
		{name: "large value", offset: 1 << 40, timestamp: 1700000000000, key: big[:300], value: big},
		{name: "127/128 boundary", offset: 127, timestamp: 128, key: big[:127], value: big[:128]},
	}
}

func generatedMessage(c msgCase) *KafkaMessage {
	return &KafkaMessage{Offset: c.offset, Timestamp: c.timestamp, Key: c.key, Value: c.value}
}

func TestAppendKafkaMessageMatchesMarshal(t *testing.T) {
	for _, c := range messageCases() {
		t.Run(c.name, func(t *testing.T) {
			want, err := det.Marshal(&KafkaFetchResp{Messages: []*KafkaMessage{generatedMessage(c)}})
			if err != nil {
				t.Fatalf(
					"marshal: %v",
					err)
			}
			got := AppendKafkaMessage(nil, c.offset, c.timestamp, c.key, c.value)
			if !bytes.Equal(got, want) {
				t.Fatalf(
					"fast bytes differ from proto.Marshal:\n got %x\nwant %x",
					got, want)
			}
			var back KafkaFetchResp
			if err := proto.Unmarshal(got, &back); err != nil {
				t.Fatalf(
					"unmarshal fast bytes: %v",
					err)
			}
			if len(back.Messages) != 1 {
				t.Fatalf(
					"got %d messages, want 1",
					len(back.Messages))
			}
			m := back.Messages[0]
			if m.Offset != c.offset || m.Timestamp != c.timestamp || !bytes.Equal(m.Key, c.key) || !bytes.Equal(m.Value, c.value) {
				t.Fatalf(
					"round trip: got %d/%d/%q/%d bytes, want %d/%d/%q/%d bytes",
					m.Offset, m.Timestamp, m.Key, len(m.Value), c.offset, c.timestamp, c.key, len(c.value))
			}
		})
	}
}

func TestFetchRespMatchesMarshal(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	sequences := []int64{0, 1, -1, 42, math.MaxInt64, math.MinInt64, 1 << 35}
	for round := 0; round < 200; round++ {
		n := rng.IntN(20)
		resp := &KafkaFetchResp{}
		var body []byte
		for i := 0; i < n; i++ {
			var key, value []byte
			switch rng.IntN(3) {
			case 0:
				key = nil
			case 1:
				key = []byte{}
			default:
				key = make([]byte, rng.IntN(40)+1)
			}
			if rng.IntN(4) > 0 {
				value = make([]byte, rng.IntN(2000)+1)
				for j := range value {
					value[j] = byte(rng.Uint32())
				}
			}
			offset := rng.Int64N(1<<50) - 1<<20
			ts := rng.Int64()
			if rng.IntN(5) == 0 {
				offset, ts = 0, 0
			}
			m := &KafkaMessage{Offset: offset, Timestamp: ts, Key: key, Value: value}
			resp.Messages = append(resp.Messages, m)
			if round%2 == 0 {
				body = AppendKafkaMessage(body, offset, ts, key, value)
				continue
			}
			// With headers (kafkaedge's field 16).
			for h := range rng.IntN(3) {
				m.Headers = append(m.Headers, &KafkaHeader{Key: []string{"", "h", "trace-id"}[h], Value: value[:min(len(value), h*3)]})
			}
			size := 0
			for _, h := range m.Headers {
				size += KafkaHeaderSize(h.Key, h.Value)
			}
			body = AppendKafkaMessageHead(body, FieldFetchRespMessages, offset, ts, key, value, size)
			for _, h := range m.Headers {
				body = AppendKafkaHeader(body, h.Key, h.Value)
			}
		}
		if round%3 == 0 {
			resp.HighWatermark, resp.NextOffset = rng.Int64N(1<<40)*int64(round%2), rng.Int64N(1<<40)
			body = AppendKafkaFetchRespPositions(body, resp.HighWatermark, resp.NextOffset)
		}
		seq := sequences[round%len(sequences)]
		want, err := det.Marshal(&PubSubResp{Sequence: seq, Resp: &PubSubResp_KafkaFetchResp{KafkaFetchResp: resp}})
		if err != nil {
			t.Fatalf(
				"marshal: %v",
				err)
		}
		got := append(AppendRespHeader(nil, seq, FieldKafkaFetchResp, len(body)), body...)
		if !bytes.Equal(got, want) {
			t.Fatalf(
				"round %d: fast bytes differ from proto.Marshal:\n got %x\nwant %x",
				round, got, want)
		}
		var back PubSubResp
		if err := proto.Unmarshal(got, &back); err != nil {
			t.Fatalf(
				"round %d: unmarshal: %v",
				round, err)
		}
		wantMsg := &PubSubResp{Sequence: seq, Resp: &PubSubResp_KafkaFetchResp{KafkaFetchResp: resp}}
		if !proto.Equal(&back, wantMsg) {
			t.Fatalf(
				"round %d: round trip differs",
				round)
		}
	}
}

// TestRespMatchesMarshal: AppendRespHeader followed by each body encoder
// yields the bytes of proto.Marshal of the same PubSubResp.
func TestRespMatchesMarshal(t *testing.T) {
	const msg = "failed to fetch message, topic: t, partition: 0, err: not found topic"
	cases := []struct {
		name  string
		field protowire.Number
		body  []byte
		resp  isPubSubResp_Resp
	}{
		{"error", FieldErrorResp, AppendErrorResp(nil, 3, msg),
			&PubSubResp_ErrorResp{ErrorResp: &ErrorResp{Code: 3, Message: msg}}},
		{"error with a negative code", FieldErrorResp, AppendErrorResp(nil, -1, "x"),
			&PubSubResp_ErrorResp{ErrorResp: &ErrorResp{Code: -1, Message: "x"}}},
		{"error without code", FieldErrorResp, AppendErrorResp(nil, 0, MessageWrongCommand),
			&PubSubResp_ErrorResp{ErrorResp: &ErrorResp{Message: MessageWrongCommand}}},
		{"empty error", FieldErrorResp, AppendErrorResp(nil, 0, ""),
			&PubSubResp_ErrorResp{ErrorResp: &ErrorResp{}}},
		{"empty pong", FieldPongResp, AppendPongResp(nil, nil),
			&PubSubResp_PongResp{PongResp: &PongResp{}}},
		{"pong with state", FieldPongResp, AppendPongResp(nil, []byte("a\x00c")),
			&PubSubResp_PongResp{PongResp: &PongResp{State: []byte("a\x00c")}}},
		{"pong with a large state", FieldPongResp, AppendPongResp(nil, bytes.Repeat([]byte("s"), 300)),
			&PubSubResp_PongResp{PongResp: &PongResp{State: bytes.Repeat([]byte("s"), 300)}}},
		{"empty fetch", FieldKafkaFetchResp, nil,
			&PubSubResp_KafkaFetchResp{KafkaFetchResp: &KafkaFetchResp{}}},
		{"list offset 0", FieldKafkaListOffsetResp, AppendKafkaListOffsetResp(nil, 0),
			&PubSubResp_KafkaListOffsetResp{KafkaListOffsetResp: &KafkaListOffsetResp{}}},
		{"list offset -1", FieldKafkaListOffsetResp, AppendKafkaListOffsetResp(nil, -1),
			&PubSubResp_KafkaListOffsetResp{KafkaListOffsetResp: &KafkaListOffsetResp{Offset: -1}}},
		{"list offset", FieldKafkaListOffsetResp, AppendKafkaListOffsetResp(nil, 1<<40),
			&PubSubResp_KafkaListOffsetResp{KafkaListOffsetResp: &KafkaListOffsetResp{Offset: 1 << 40}}},
	}
	for _, c := range cases {
		for _, seq := range []int64{0, 1, -1, math.MaxInt64, math.MinInt64} {
			want, err := det.Marshal(&PubSubResp{Sequence: seq, Resp: c.resp})
			if err != nil {
				t.Fatalf("%s: marshal: %v", c.name, err)
			}
			got := append(AppendRespHeader(nil, seq, c.field, len(c.body)), c.body...)
			if !bytes.Equal(got, want) {
				t.Fatalf("%s, sequence %d:\n got %x\nwant %x", c.name, seq, got, want)
			}
		}
	}
}

// TestFieldNumbers holds the field numbers of the encoders and of ParseReq
// to the generated descriptors, that is to proto/pubsub.proto.
func TestFieldNumbers(t *testing.T) {
	cases := []struct {
		msg  proto.Message
		name protoreflect.Name
		num  protowire.Number
	}{
		{&PubSubReq{}, "cmd_empty", FieldCmdEmpty},
		{&PubSubReq{}, "cmd_ping", FieldCmdPing},
		{&PubSubReq{}, "cmd_kafka_fetch", FieldCmdKafkaFetch},
		{&PubSubReq{}, "cmd_kafka_list_offset", FieldCmdKafkaListOffset},
		{&PubSubResp{}, "sequence", fieldSequence},
		{&PubSubResp{}, "error_resp", FieldErrorResp},
		{&PubSubResp{}, "pong_resp", FieldPongResp},
		{&PubSubResp{}, "kafka_fetch_resp", FieldKafkaFetchResp},
		{&PubSubResp{}, "kafka_list_offset_resp", FieldKafkaListOffsetResp},
		{&ErrorResp{}, "code", fieldErrorCode},
		{&ErrorResp{}, "message", fieldErrorMessage},
		{&PongResp{}, "state", fieldPongState},
		{&KafkaListOffsetResp{}, "offset", fieldListOffset},
		{&KafkaFetchResp{}, "messages", FieldFetchRespMessages},
		{&KafkaPartitionRecords{}, "messages", FieldRecordsMessages},
		{&KafkaPartitionRecords{}, "topic", fieldRecordsTopic},
		{&KafkaPartitionRecords{}, "partition", fieldRecordsPartition},
		{&KafkaPartitionRecords{}, "high_watermark", fieldRecordsHWM},
		{&KafkaPartitionRecords{}, "next_offset", fieldRecordsNext},
		{&KafkaPartitionRecords{}, "error", fieldRecordsError},
		{&KafkaFetchManyResp{}, "partitions", fieldFetchManyEntries},
		{&PubSubResp{}, "kafka_fetch_many_resp", FieldKafkaFetchManyResp},
		{&PubSubResp{}, "kafka_records", FieldKafkaRecords},
		{&PubSubResp{}, "kafka_subscribe_resp", FieldKafkaSubscribeResp},
		{&PubSubResp{}, "kafka_subscription_end_resp", FieldKafkaSubscriptionEndResp},
		{&PubSubResp{}, "kafka_assignment_resp", FieldKafkaAssignmentResp},
		{&PubSubResp{}, "kafka_commit_resp", FieldKafkaCommitResp},
		{&PubSubResp{}, "kafka_committed_resp", FieldKafkaCommittedResp},
		{&KafkaMessage{}, "offset", fieldMessageOffset},
		{&KafkaMessage{}, "timestamp", fieldMessageTimestamp},
		{&KafkaMessage{}, "key", fieldMessageKey},
		{&KafkaMessage{}, "value", fieldMessageValue},
		{&KafkaMessage{}, "headers", fieldMessageHeaders},
		{&KafkaHeader{}, "key", fieldHeaderKey},
		{&KafkaHeader{}, "value", fieldHeaderValue},
		{&KafkaFetchResp{}, "high_watermark", fieldFetchHighWatermark},
		{&KafkaFetchResp{}, "next_offset", fieldFetchNextOffset},
		{&CmdKafkaFetch{}, "max_wait_ms", 16},
		{&CmdKafkaFetch{}, "min_bytes", 17},
		{&CmdKafkaFetch{}, "max_bytes", 18},
		{&CmdKafkaFetch{}, "headers", 19},
		{&PubSubReq{}, "cmd_kafka_subscribe", FieldCmdKafkaSubscribe},
		{&PubSubReq{}, "cmd_kafka_unsubscribe", FieldCmdKafkaUnsubscribe},
		{&PubSubReq{}, "cmd_kafka_commit", FieldCmdKafkaCommit},
		{&PubSubReq{}, "cmd_kafka_committed", FieldCmdKafkaCommitted},
		{&PubSubReq{}, "cmd_kafka_produce", FieldCmdKafkaProduce},
		{&PubSubReq{}, "cmd_kafka_fetch_many", FieldCmdKafkaFetchMany},
		{&PubSubReq{}, "cmd_kafka_metadata", FieldCmdKafkaMetadata},
		{&PubSubResp{}, "kafka_metadata_resp", FieldKafkaMetadataResp},
	}
	for _, c := range cases {
		d := c.msg.ProtoReflect().Descriptor()
		f := d.Fields().ByName(c.name)
		if f == nil || f.Number() != c.num {
			t.Errorf("%s.%s: descriptor %v, encoder uses %d", d.Name(), c.name, f, c.num)
		}
	}
}

// TestErrorMessages pins the texts clients match on (docs/protocol.md).
func TestErrorMessages(t *testing.T) {
	for _, c := range []struct{ got, want string }{
		{ListOffsetErrorMessage("t", 0, ReasonNotFoundTopic), "failed to list offset, topic: t, partition: 0, err: not found topic"},
		{ListOffsetErrorMessage("a b", -3, "X"), "failed to list offset, topic: a b, partition: -3, err: X"},
		{FetchErrorMessage("t", math.MaxInt32, "OFFSET_OUT_OF_RANGE"), "failed to fetch message, topic: t, partition: 2147483647, err: OFFSET_OUT_OF_RANGE"},
		{FetchErrorMessage("", 0, ReasonTimeout), "failed to fetch message, topic: , partition: 0, err: timeout"},
		{CommitErrorMessage("g", "t", 2, "ILLEGAL_GENERATION"), "failed to commit offset, group: g, topic: t, partition: 2, err: ILLEGAL_GENERATION"},
		{CommitErrorMessage("g", "t", -1, "no offsets"), "failed to commit offset, group: g, topic: t, partition: -1, err: no offsets"},
		{CommittedErrorMessage("g", "t", ReasonNotFoundTopic), "failed to fetch committed offset, group: g, topic: t, err: not found topic"},
		{MessageWrongCommand, "wrong command"},
		{MessageUnknownCommand, "unknown command"},
		{ReasonClientClosed, "client closed"},
		{ReasonUnknown, "unknown error"},
	} {
		if c.got != c.want {
			t.Errorf("got %q, want %q", c.got, c.want)
		}
	}
}

// TestFetchManyRespMatchesMarshal: AppendKafkaPartitionRecords and
// AppendKafkaFetchManyEntry yield proto.Marshal's bytes.
func TestFetchManyRespMatchesMarshal(t *testing.T) {
	want := &KafkaFetchManyResp{Partitions: []*KafkaPartitionRecords{
		{Topic: "a", Partition: 3, HighWatermark: 10, NextOffset: 9, Messages: []*KafkaMessage{
			{Offset: 7, Timestamp: 1, Key: []byte("k"), Value: []byte("v"), Headers: []*KafkaHeader{{Key: "h", Value: []byte("x")}}},
			{Offset: 8, Value: []byte("w")}}},
		{Topic: "b", Error: &ErrorResp{Code: 3, Message: "failed to fetch message, topic: b, partition: 0, err: not found topic"}},
		{Topic: "c", Partition: 1, NextOffset: 5},
	}}
	var body []byte
	for _, p := range want.Partitions {
		var msgs []byte
		for _, m := range p.Messages {
			hl := 0
			for _, h := range m.Headers {
				hl += KafkaHeaderSize(h.Key, h.Value)
			}
			msgs = AppendKafkaMessageHead(msgs, FieldRecordsMessages, m.Offset, m.Timestamp, m.Key, m.Value, hl)
			for _, h := range m.Headers {
				msgs = AppendKafkaHeader(msgs, h.Key, h.Value)
			}
		}
		rec := AppendKafkaPartitionRecords(nil, p.Topic, p.Partition, msgs, p.HighWatermark, p.NextOffset, p.GetError().GetCode(), p.GetError().GetMessage())
		body = AppendKafkaFetchManyEntry(body, rec)
	}
	wantBytes, err := det.Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(body, wantBytes) {
		t.Fatalf("fast bytes differ from proto.Marshal:\n got %x\nwant %x", body, wantBytes)
	}
}
