package reactor

import (
	"encoding/binary"
	"math/rand/v2"
	"net/http"
	"testing"
	"time"

	"github.com/gobwas/ws"

	"github.com/kafkaedge/kafkaedge/internal/wstest"
)

func TestHostileFrames(t *testing.T) {
	s := startServer(t, Config{}, deadRoute("/kafka"))
	huge := []byte{0x82, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4} // binary, masked, 64-bit length
	binary.BigEndian.PutUint64(huge[2:10], 1<<40)
	// Only the header and a few payload bytes are sent: the server must
	// decide from the header, and a peer that closes with unread input
	// would reset the connection before the close frame is read.
	overLimit := []byte{0x82, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4, 9, 9, 9}
	binary.BigEndian.PutUint64(overLimit[2:10], uint64(DefaultConfig().MaxMessage)+1)
	unmasked, err := ws.CompileFrame(ws.NewBinaryFrame([]byte{1, 2, 3}))
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name  string
		frame []byte
		want  ws.StatusCode
	}{
		{"unmasked frame", unmasked, ws.StatusProtocolError},
		{"1 TiB length claim", huge, ws.StatusMessageTooBig},
		{"fragmented ping", wstest.ClientFrame(ws.OpPing, false, []byte("x")), ws.StatusProtocolError},
		{"message over MaxMessage", overLimit, ws.StatusMessageTooBig},
		{"text message not UTF-8", wstest.ClientFrame(ws.OpText, true, []byte("\xff\xfe")), ws.StatusInvalidFramePayloadData},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := dialRaw(t, s)
			r.upgrade("/kafka")
			r.write(tc.frame)
			if code := r.expectClose(); code != tc.want {
				t.Fatalf("close code %d, want %d", code, tc.want)
			}
			if err := r.expectEOF(5 * time.Second); err != nil {
				t.Fatalf("not closed: %v", err)
			}
		})
	}
	// The node still serves others.
	c := dialWS(t, s, "/kafka")
	if resp := c.roundTrip(pingReq(1, "ok")); resp.GetPongResp() == nil {
		t.Fatalf("ping after hostile peers: %v", resp)
	}
}

func TestSlowlorisHandshake(t *testing.T) {
	rec := newRecorder()
	s := startServer(t, Config{HandshakeTimeout: 200 * time.Millisecond, Observer: rec}, deadRoute("/kafka"))
	var slow []*rawConn
	for range 5 {
		r := dialRaw(t, s)
		r.write([]byte("GET /kafka HTTP/1.1\r\nHost: x\r\n"))
		slow = append(slow, r)
	}
	c := dialWS(t, s, "/kafka")
	for i := range 20 {
		if resp := c.roundTrip(pingReq(int64(i), "")); resp.GetPongResp() == nil {
			t.Fatalf("ping: %v", resp)
		}
	}
	for _, r := range slow {
		if err := r.expectEOF(10 * time.Second); err != nil {
			t.Fatalf("slow handshake not closed: %v", err)
		}
	}
	waitFor(t, "connection count to drop", func() bool { return s.Stats().Conns == 1 })
	// Each is counted as an upgrade request that timed out.
	if n := rec.count(func(r *recorder) int { return r.upgrades[" "+http.StatusText(http.StatusRequestTimeout)] }); n != len(slow) {
		t.Fatalf("%d handshake timeouts reported, want %d", n, len(slow))
	}
}

func TestIdleTimeout(t *testing.T) {
	s := startServer(t, Config{IdleTimeout: 200 * time.Millisecond}, deadRoute("/kafka"))
	r := dialRaw(t, s)
	r.upgrade("/kafka")
	if code := r.expectClose(); code != ws.StatusGoingAway {
		t.Fatalf("idle close code %d, want 1001", code)
	}
}

func TestPausedClientFlooding(t *testing.T) {
	// A client that keeps sending while the server has stopped reading it
	// (here: its pings are answered but it never reads, so its queue
	// passes MaxOutbound) is closed rather than buffered without bound.
	rec := newRecorder()
	s := startServer(t, Config{MaxOutbound: 1 << 10, SlowTimeout: 200 * time.Millisecond, MaxMessage: 4 << 10, Observer: rec},
		deadRoute("/kafka"))
	r := dialRaw(t, s)
	if err := r.c.(interface{ SetReadBuffer(int) error }).SetReadBuffer(4096); err != nil {
		t.Fatal(err)
	}
	r.upgrade("/kafka")
	frame := wstest.ClientFrame(ws.OpPing, true, make([]byte, 125))
	batch := make([]byte, 0, 64*len(frame))
	for range 64 {
		batch = append(batch, frame...)
	}
	deadline := time.Now().Add(20 * time.Second)
	for rec.count(func(r *recorder) int { return r.pressure[BackpressureSlowClosed] }) == 0 && s.Stats().Conns > 0 {
		if time.Now().After(deadline) {
			t.Fatal("flooding client never closed")
		}
		_ = r.c.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
		if _, err := r.c.Write(batch); err != nil && !isTimeout(err) {
			break // closed by the server
		}
	}
	waitFor(t, "flooding client to be gone", func() bool { return s.Stats().Conns == 0 })
}

func isTimeout(err error) bool {
	te, ok := err.(interface{ Timeout() bool })
	return ok && te.Timeout()
}

func TestRandomBytesAfterUpgrade(t *testing.T) {
	// Whatever a peer sends after the upgrade, the server answers or closes
	// that connection and keeps serving the others.
	s := startServer(t, Config{MaxMessage: 64 << 10}, deadRoute("/kafka"))
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 40 {
		r := dialRaw(t, s)
		r.upgrade("/kafka")
		junk := make([]byte, 1+rng.IntN(4096))
		for j := range junk {
			junk[j] = byte(rng.Uint32())
		}
		if i%2 == 0 {
			junk[0] |= 0x80 // FIN set, so some of it parses as frames
			if len(junk) > 1 {
				junk[1] |= 0x80 // masked
			}
		}
		_, _ = r.c.Write(junk)
		_ = r.c.Close()
	}
	c := dialWS(t, s, "/kafka")
	if resp := c.roundTrip(pingReq(3, "alive")); string(resp.GetPongResp().GetState()) != "alive" {
		t.Fatalf("ping after random input: %v", resp)
	}
	waitFor(t, "the junk connections to close", func() bool { return s.Stats().Conns == 1 })
}
