package wsclient

import (
	"bufio"
	"bytes"
	"errors"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/kafkaedge/kafkaedge/proto/pubsub"
)

// summarizeBytes runs the streaming summary over one frame's bytes.
func summarizeBytes(b []byte) (Summary, error) {
	c := &Conn{br: bufio.NewReaderSize(bytes.NewReader(b), 16)}
	return c.summarize()
}

func fetchResp(seq int64, msgs ...*pubsub.KafkaMessage) []byte {
	b, err := proto.Marshal(&pubsub.PubSubResp{Sequence: seq, Resp: &pubsub.PubSubResp_KafkaFetchResp{
		KafkaFetchResp: &pubsub.KafkaFetchResp{Messages: msgs}}})
	if err != nil {
		panic(err)
	}
	return b
}

func TestSummarize(t *testing.T) {
	b := fetchResp(-7,
		&pubsub.KafkaMessage{Offset: 5, Timestamp: 1000, Key: []byte("k"), Value: []byte("hello")},
		&pubsub.KafkaMessage{Offset: 6, Value: bytes.Repeat([]byte("x"), 300)},
		&pubsub.KafkaMessage{Offset: 9})
	s, err := summarizeBytes(b)
	if err != nil {
		t.Fatalf("summarize: %v", err)
	}
	want := Summary{Sequence: -7, Messages: 3, ValueBytes: 305, FirstOffset: 5, LastOffset: 9}
	if s != want {
		t.Errorf("summary = %+v, want %+v", s, want)
	}

	s, err = summarizeBytes(fetchResp(3))
	if err != nil || s.Messages != 0 || s.Sequence != 3 || s.FirstOffset != -1 {
		t.Errorf("empty fetch: %+v, %v", s, err)
	}
}

func TestSummarizeErrors(t *testing.T) {
	errResp, _ := proto.Marshal(&pubsub.PubSubResp{Sequence: 2, Resp: &pubsub.PubSubResp_ErrorResp{
		ErrorResp: &pubsub.ErrorResp{Code: 3, Message: "failed to fetch message, topic: t, partition: 0, err: not found topic"}}})
	_, err := summarizeBytes(errResp)
	var se *ServerError
	if !errors.As(err, &se) || se.Code != 3 || se.Message == "" {
		t.Errorf("error response: %v", err)
	}
	pong, _ := proto.Marshal(&pubsub.PubSubResp{Sequence: 2, Resp: &pubsub.PubSubResp_PongResp{PongResp: &pubsub.PongResp{}}})
	if _, err := summarizeBytes(pong); !errors.Is(err, ErrUnexpected) {
		t.Errorf("pong: %v, want ErrUnexpected", err)
	}
	good := fetchResp(1, &pubsub.KafkaMessage{Offset: 1, Value: []byte("v")})
	for n := 1; n < len(good); n++ {
		if _, err := summarizeBytes(good[:n]); err == nil {
			t.Errorf("truncated to %d of %d bytes: no error", n, len(good))
		}
	}
	// A length far beyond the frame must fail without allocating it.
	huge := []byte{0x8a, 0x02, 0xff, 0xff, 0xff, 0xff, 0x0f}
	if _, err := summarizeBytes(huge); err == nil {
		t.Error("huge length: no error")
	}
}

func FuzzSummarize(f *testing.F) {
	f.Add(fetchResp(1, &pubsub.KafkaMessage{Offset: 1, Value: []byte("v")}))
	f.Add([]byte{0x8a, 0x02, 0x03, 0x0a, 0x01, 0x08})
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := summarizeBytes(b)
		if err != nil {
			return
		}
		// What the streaming walk accepts, protobuf must decode the same way.
		var resp pubsub.PubSubResp
		if proto.Unmarshal(b, &resp) != nil {
			return
		}
		if f := resp.GetKafkaFetchResp(); f != nil && len(f.GetMessages()) != s.Messages {
			t.Fatalf("summary counts %d messages, protobuf %d", s.Messages, len(f.GetMessages()))
		}
	})
}
