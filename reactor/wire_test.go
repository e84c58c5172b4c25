package reactor

import (
	"bytes"
	"io"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"google.golang.org/protobuf/proto"

	"github.com/kafkaedge/kafkaedge/internal/wstest"
	"github.com/kafkaedge/kafkaedge/proto/pubsub"
)

// binaryFrame is the server frame an APISIX client receives for m: m
// encoded by proto.Marshal (deterministic) in one unmasked binary frame
// framed by gobwas/ws, an independent implementation of RFC 6455.
func binaryFrame(t testing.TB, m proto.Message) []byte {
	t.Helper()
	return compileFrame(t, ws.NewBinaryFrame(marshal(t, m)))
}

func compileFrame(t testing.TB, f ws.Frame) []byte {
	t.Helper()
	b, err := ws.CompileFrame(f)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func errorResp(seq int64, code int32, msg string) *pubsub.PubSubResp {
	return &pubsub.PubSubResp{Sequence: seq, Resp: &pubsub.PubSubResp_ErrorResp{
		ErrorResp: &pubsub.ErrorResp{Code: code, Message: msg}}}
}

func listResp(seq, offset int64) *pubsub.PubSubResp {
	return &pubsub.PubSubResp{Sequence: seq, Resp: &pubsub.PubSubResp_KafkaListOffsetResp{
		KafkaListOffsetResp: &pubsub.KafkaListOffsetResp{Offset: offset}}}
}

func pongResp(seq int64, state string) *pubsub.PubSubResp {
	r := &pubsub.PongResp{}
	if state != "" {
		r.State = []byte(state)
	}
	return &pubsub.PubSubResp{Sequence: seq, Resp: &pubsub.PubSubResp_PongResp{PongResp: r}}
}

// fetchResp is the answer to a fetch of the records first..first+n-1 of
// topic as testRecord makes them (a nil key on every third).
func fetchResp(seq int64, topic string, first, n, size int) *pubsub.PubSubResp {
	fr := &pubsub.KafkaFetchResp{}
	for i := first; i < first+n; i++ {
		r := testRecord(topic, i, size)
		fr.Messages = append(fr.Messages, &pubsub.KafkaMessage{
			Offset: int64(i), Timestamp: r.Timestamp.UnixMilli(), Key: r.Key, Value: r.Value})
	}
	return &pubsub.PubSubResp{Sequence: seq, Resp: &pubsub.PubSubResp_KafkaFetchResp{KafkaFetchResp: fr}}
}

// TestWireBytes pins the exact bytes an APISIX client receives for every
// kind of answer, through the running server: each is compared byte for
// byte with the generated structs marshalled deterministically and framed
// by gobwas/ws. It holds the hand-written encoders to the protocol
// whatever they are moved or changed to.
func TestWireBytes(t *testing.T) {
	k := newKafka(t, 1, "golden", "big")
	produce(t, k, "golden", 0, 5, 0)
	produce(t, k, "big", 0, 10, 8<<10) // a frame over 64 KiB: the 64-bit length
	s := startServer(t, Config{}, kafkaRoute("/kafka", k))
	r := dialRaw(t, s)
	r.upgrade("/kafka?client=apisix")

	req := func(m *pubsub.PubSubReq) []byte {
		return wstest.ClientFrame(ws.OpBinary, true, marshal(t, m))
	}
	const nf = "failed to fetch message, topic: "
	cases := []struct {
		name string
		send []byte
		want []byte
	}{
		{"pong with state", req(pingReq(1, "s\x00t")), binaryFrame(t, pongResp(1, "s\x00t"))},
		{"pong without state", req(pingReq(-2, "")), binaryFrame(t, pongResp(-2, ""))},
		{"list offset end", req(listReq(3, "golden", 0, -1)), binaryFrame(t, listResp(3, 5))},
		{"list offset 0", req(listReq(4, "golden", 0, -2)), binaryFrame(t, listResp(4, 0))},
		{"list offset none", req(listReq(5, "golden", 0, tsBase+1e9)), binaryFrame(t, listResp(5, -1))},
		{"fetch with null keys", req(fetchReq(6, "golden", 0, 0)), binaryFrame(t, fetchResp(6, "golden", 0, 5, 0))},
		{"fetch from the middle of a batch", req(fetchReq(-7, "golden", 0, 2)), binaryFrame(t, fetchResp(-7, "golden", 2, 3, 0))},
		{"fetch of 80 KiB", req(fetchReq(1<<40, "big", 0, 1)), binaryFrame(t, fetchResp(1<<40, "big", 1, 9, 8<<10))},
		{"fetch at the end", req(fetchReq(0, "golden", 0, 5)), binaryFrame(t, fetchResp(0, "golden", 5, 0, 0))},
		{"fetch out of range", req(fetchReq(8, "golden", 0, 1000)),
			binaryFrame(t, errorResp(8, 1, nf+"golden, partition: 0, err: OFFSET_OUT_OF_RANGE"))},
		{"fetch unknown topic", req(fetchReq(9, "nope", 0, 0)),
			binaryFrame(t, errorResp(9, 3, nf+"nope, partition: 0, err: not found topic"))},
		{"fetch unknown partition", req(fetchReq(10, "golden", 7, 0)),
			binaryFrame(t, errorResp(10, 3, nf+"golden, partition: 7, err: not found partition"))},
		{"list offset unknown topic", req(listReq(11, "nope", 0, -1)),
			binaryFrame(t, errorResp(11, 3, "failed to list offset, topic: nope, partition: 0, err: not found topic"))},
		{"unknown command", req(&pubsub.PubSubReq{Sequence: 12, Req: &pubsub.PubSubReq_CmdEmpty{CmdEmpty: &pubsub.CmdEmpty{}}}),
			binaryFrame(t, errorResp(12, 0, "unknown command"))},
		{"wrong command", wstest.ClientFrame(ws.OpBinary, true, []byte{0x08, 0x0d, 0xff}),
			binaryFrame(t, errorResp(0, 0, "wrong command"))},
		{"ping frame", wstest.ClientFrame(ws.OpPing, true, []byte("hb")),
			compileFrame(t, ws.NewPongFrame([]byte("hb")))},
	}
	for _, tc := range cases {
		r.write(tc.send)
		got := r.readExactly(t, len(tc.want))
		if !bytes.Equal(got, tc.want) {
			t.Fatalf("%s:\n got %x\nwant %x", tc.name, got, tc.want)
		}
	}
	// The client's close is echoed with its code and no reason: the last
	// bytes on the connection.
	r.write(wstest.ClientFrame(ws.OpClose, true, ws.NewCloseFrameBody(4000, "bye")))
	want := compileFrame(t, ws.NewCloseFrame(ws.NewCloseFrameBody(4000, "")))
	if got := r.readExactly(t, len(want)); !bytes.Equal(got, want) {
		t.Fatalf("close reply:\n got %x\nwant %x", got, want)
	}
	if err := r.expectEOF(5 * time.Second); err != nil {
		t.Fatal(err)
	}
}

// TestCloseReplyWithoutCode: a close frame without a status code is
// answered with 1000.
func TestCloseReplyWithoutCode(t *testing.T) {
	s := startServer(t, Config{}, deadRoute("/kafka"))
	r := dialRaw(t, s)
	r.upgrade("/kafka")
	r.write(wstest.ClientFrame(ws.OpClose, true, nil))
	want := compileFrame(t, ws.NewCloseFrame(ws.NewCloseFrameBody(ws.StatusNormalClosure, "")))
	if got := r.readExactly(t, len(want)); !bytes.Equal(got, want) {
		t.Fatalf("close reply:\n got %x\nwant %x", got, want)
	}
}

// readExactly reads n bytes of the connection, failing the test after 10 s.
func (r *rawConn) readExactly(t testing.TB, n int) []byte {
	t.Helper()
	_ = r.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	b := make([]byte, n)
	if m, err := io.ReadFull(r.br, b); err != nil {
		t.Fatalf("read %d bytes: %v after %d: %x", n, err, m, b[:m])
	}
	return b
}
