package pubsub

import (
	"bytes"
	"math"
	"math/rand/v2"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
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
			resp.Messages = append(resp.Messages, &KafkaMessage{Offset: offset, Timestamp: ts, Key: key, Value: value})
			body = AppendKafkaMessage(body, offset, ts, key, value)
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

func TestRespHeaderOtherFields(t *testing.T) {
	cases := []struct {
		name  string
		field protowire.Number
		msg   *PubSubResp
		body  proto.Message
	}{
		{
			name:  "error",
			field: FieldErrorResp,
			msg:   &PubSubResp{Sequence: -7, Resp: &PubSubResp_ErrorResp{ErrorResp: &ErrorResp{Code: 3, Message: "failed to fetch message, topic: t, partition: 0, err: not found topic"}}},
			body:  &ErrorResp{Code: 3, Message: "failed to fetch message, topic: t, partition: 0, err: not found topic"},
		},
		{
			name:  "empty pong",
			field: FieldPongResp,
			msg:   &PubSubResp{Sequence: 0, Resp: &PubSubResp_PongResp{PongResp: &PongResp{}}},
			body:  &PongResp{},
		},
		{
			name:  "pong with state",
			field: FieldPongResp,
			msg:   &PubSubResp{Sequence: 9, Resp: &PubSubResp_PongResp{PongResp: &PongResp{State: []byte("abc")}}},
			body:  &PongResp{State: []byte("abc")},
		},
		{
			name:  "empty fetch",
			field: FieldKafkaFetchResp,
			msg:   &PubSubResp{Sequence: 1, Resp: &PubSubResp_KafkaFetchResp{KafkaFetchResp: &KafkaFetchResp{}}},
			body:  &KafkaFetchResp{},
		},
		{
			name:  "list offset",
			field: FieldKafkaListOffsetResp,
			msg:   &PubSubResp{Sequence: math.MinInt64, Resp: &PubSubResp_KafkaListOffsetResp{KafkaListOffsetResp: &KafkaListOffsetResp{Offset: -1}}},
			body:  &KafkaListOffsetResp{Offset: -1},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			want, err := det.Marshal(c.msg)
			if err != nil {
				t.Fatalf(
					"marshal: %v",
					err)
			}
			body, err := det.Marshal(c.body)
			if err != nil {
				t.Fatalf(
					"marshal body: %v",
					err)
			}
			got := append(AppendRespHeader(nil, c.msg.Sequence, c.field, len(body)), body...)
			if !bytes.Equal(got, want) {
				t.Fatalf(
					"got %x, want %x",
					got, want)
			}
		})
	}
}
