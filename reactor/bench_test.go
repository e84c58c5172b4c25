package reactor

import (
	"testing"

	"github.com/gorilla/websocket"
	"google.golang.org/protobuf/proto"

	"github.com/kafkaedge/kafkaedge/proto/pubsub"
)

// BenchmarkFetchEncode compares the hot path (append encoders into a reused
// buffer) with building generated structs and calling proto.Marshal, for a
// fetch of 100 messages of 200 bytes.
func BenchmarkFetchEncode(b *testing.B) {
	recs := testRecords(100, 200)
	b.Run("append", func(b *testing.B) {
		b.ReportAllocs()
		var body, hdr []byte
		for b.Loop() {
			body = appendFetchBody(body[:0], recs, 0, 32<<20)
			hdr = appendRespHeaderFrame(hdr[:0], 42, pubsub.FieldKafkaFetchResp, len(body))
		}
		b.SetBytes(int64(len(body) + len(hdr)))
	})
	b.Run("generated", func(b *testing.B) {
		b.ReportAllocs()
		var n int
		for b.Loop() {
			out, err := proto.Marshal(generatedFetch(42, recs))
			if err != nil {
				b.Fatal(err)
			}
			n = len(out)
		}
		b.SetBytes(int64(n))
	})
}

// BenchmarkRequestPath measures a ping round trip through the real server
// with a gorilla/websocket client; allocs/op counts the whole process
// (client and server) per request.
func BenchmarkRequestPath(b *testing.B) {
	s := startServer(b, Config{Loops: 1}, deadRoute("/kafka"))
	d := websocket.Dialer{}
	c, _, err := d.Dial("ws://"+s.Addr()+"/kafka", nil)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	req, err := proto.Marshal(pingReq(7, "state"))
	if err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 0, 64)
	b.ReportAllocs()
	for b.Loop() {
		if err := c.WriteMessage(websocket.BinaryMessage, req); err != nil {
			b.Fatal(err)
		}
		_, r, err := c.NextReader()
		if err != nil {
			b.Fatal(err)
		}
		buf = buf[:0]
		for {
			n, err := r.Read(buf[len(buf):cap(buf)])
			buf = buf[:len(buf)+n]
			if err != nil {
				break
			}
		}
		if len(buf) == 0 {
			b.Fatal("empty response")
		}
	}
}
