package reactor

import (
	"bytes"
	"context"
	"errors"
	"math"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"google.golang.org/protobuf/proto"

	"github.com/kafkaedge/kafkaedge/internal/wsclient"
	"github.com/kafkaedge/kafkaedge/internal/wstest"
	"github.com/kafkaedge/kafkaedge/proto/pubsub"
)

func TestHTTPStatuses(t *testing.T) {
	s := startServer(t, Config{}, deadRoute("/kafka"))
	cases := []struct {
		name, req string
		want      int
	}{
		{"plain HTTP on a kafka route", "GET /kafka HTTP/1.1\r\nHost: x\r\n\r\n", 400},
		{"upgrade on an unknown path", "GET /nope HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
			"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n", 404},
		{"bad upgrade: version 8", "GET /kafka HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
			"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n\r\n", 400},
		{"garbage request line", "\x16\x03\x01 hello\r\n\r\n", 400},
		{"header too big", "GET /kafka HTTP/1.1\r\nX: " + string(bytes.Repeat([]byte("a"), 9000)) + "\r\n\r\n", 431},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := dialRaw(t, s)
			r.write([]byte(tc.req))
			if got := r.httpStatus(); got != tc.want {
				t.Fatalf("status %d, want %d", got, tc.want)
			}
			if err := r.expectEOF(5 * time.Second); err != nil {
				t.Fatalf("connection not closed after the error response: %v", err)
			}
		})
	}
}

func TestUpgradeInPieces(t *testing.T) {
	s := startServer(t, Config{}, deadRoute("/kafka"))
	r := dialRaw(t, s)
	head := "GET /kafka?x=1 HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
	for i := 0; i < len(head); i += 7 {
		r.write([]byte(head[i:min(i+7, len(head))]))
		time.Sleep(time.Millisecond)
	}
	if st := r.httpStatus(); st != 101 {
		t.Fatalf("status %d, want 101", st)
	}
	// A frame right after the upgrade works.
	r.write(wstest.ClientFrame(ws.OpPing, true, []byte("hi")))
	f, err := r.readFrame()
	if err != nil || f.Header.OpCode != ws.OpPong || string(f.Payload) != "hi" {
		t.Fatalf("pong: %v %+v %q", err, f.Header, f.Payload)
	}
}

func TestPingAndSequences(t *testing.T) {
	s := startServer(t, Config{}, deadRoute("/kafka"))
	c := dialWS(t, s, "/kafka")
	for _, seq := range []int64{0, 1, -1, 42, math.MaxInt64, math.MinInt64, -9876543210} {
		for _, state := range []string{"", "state-\x00\xff"} {
			resp := c.roundTrip(pingReq(seq, state))
			if resp.GetSequence() != seq {
				t.Fatalf("sequence %d, want %d", resp.GetSequence(), seq)
			}
			pong := resp.GetPongResp()
			if pong == nil {
				t.Fatalf("seq %d: want pong, got %v", seq, resp)
			}
			if string(pong.GetState()) != state {
				t.Fatalf("state %q, want %q", pong.GetState(), state)
			}
		}
	}
}

func TestCommandErrors(t *testing.T) {
	s := startServer(t, Config{}, deadRoute("/kafka"))
	c := dialWS(t, s, "/kafka")

	// CmdEmpty has no handler.
	resp := c.roundTrip(&pubsub.PubSubReq{Sequence: -7, Req: &pubsub.PubSubReq_CmdEmpty{CmdEmpty: &pubsub.CmdEmpty{}}})
	if resp.GetSequence() != -7 || resp.GetErrorResp().GetMessage() != "unknown command" || resp.GetErrorResp().GetCode() != 0 {
		t.Fatalf("CmdEmpty: %v", resp)
	}

	// Skipped: a request without a command, a text frame. Undecodable
	// binary gets "wrong command" with sequence 0. The connection survives.
	c.send(&pubsub.PubSubReq{Sequence: 5})
	c.sendRaw(wsclient.TextMessage, []byte("hello"))
	c.sendRaw(wsclient.BinaryMessage, []byte{0xff, 0xff, 0xff, 0xff, 0xff})
	resp = c.recv()
	if resp.GetSequence() != 0 || resp.GetErrorResp().GetMessage() != "wrong command" {
		t.Fatalf("garbage: %v", resp)
	}
	resp = c.roundTrip(pingReq(9, "alive"))
	if resp.GetSequence() != 9 || string(resp.GetPongResp().GetState()) != "alive" {
		t.Fatalf("after skipped frames: %v", resp)
	}
}

func TestPipelinedPings(t *testing.T) {
	s := startServer(t, Config{MaxInflight: 4}, deadRoute("/kafka"))
	c := dialWS(t, s, "/kafka")
	const n = 500
	for i := range n {
		c.send(pingReq(int64(i)-250, "p"))
	}
	seen := make(map[int64]bool)
	for range n {
		resp := c.recv()
		if resp.GetPongResp() == nil || seen[resp.GetSequence()] {
			t.Fatalf("bad or duplicate response %v", resp)
		}
		seen[resp.GetSequence()] = true
	}
}

func TestFragmentedRequestAndClose(t *testing.T) {
	s := startServer(t, Config{}, deadRoute("/kafka"))
	r := dialRaw(t, s)
	r.upgrade("/kafka")
	b, _ := proto.Marshal(pingReq(77, "fragmented"))
	r.write(wstest.ClientFrame(ws.OpBinary, false, b[:3]))
	r.write(wstest.ClientFrame(ws.OpPing, true, []byte("between")))
	r.write(wstest.ClientFrame(ws.OpContinuation, true, b[3:]))
	f, err := r.readFrame()
	if err != nil || f.Header.OpCode != ws.OpPong || string(f.Payload) != "between" {
		t.Fatalf("pong between fragments: %v %+v", err, f.Header)
	}
	f, err = r.readFrame()
	if err != nil || f.Header.OpCode != ws.OpBinary {
		t.Fatalf("response: %v %+v", err, f.Header)
	}
	resp := new(pubsub.PubSubResp)
	if err := proto.Unmarshal(f.Payload, resp); err != nil || resp.GetSequence() != 77 {
		t.Fatalf("response %v: %v", resp, err)
	}
	r.write(wstest.ClientFrame(ws.OpClose, true, ws.NewCloseFrameBody(ws.StatusGoingAway, "bye")))
	if code := r.expectClose(); code != ws.StatusGoingAway {
		t.Fatalf("close reply code %d, want 1001", code)
	}
	if err := r.expectEOF(5 * time.Second); err != nil {
		t.Fatal(err)
	}
}

func TestMaxConns(t *testing.T) {
	rec := newRecorder()
	s := startServer(t, Config{MaxConns: 2, Observer: rec}, deadRoute("/kafka"))
	a := dialWS(t, s, "/kafka")
	b := dialWS(t, s, "/kafka")
	r := dialRaw(t, s)
	if err := r.expectEOF(5 * time.Second); err != nil {
		t.Fatalf("third connection: %v", err)
	}
	for _, c := range []*wsClient{a, b} {
		if resp := c.roundTrip(pingReq(1, "")); resp.GetPongResp() == nil {
			t.Fatalf("ping: %v", resp)
		}
	}
	if rec.count(func(r *recorder) int { return r.rejected[RejectMaxConns] }) == 0 {
		t.Fatal("rejected connection not reported")
	}
}

func TestRoutesRuntime(t *testing.T) {
	s := startServer(t, Config{}, deadRoute("/a"), deadRoute("/b"))
	a := dialWS(t, s, "/a")
	b := dialWS(t, s, "/b")

	// Identical PutRoute: no-op, the connection stays.
	if err := s.PutRoute(deadRoute("/a")); err != nil {
		t.Fatal(err)
	}
	if resp := a.roundTrip(pingReq(1, "")); resp.GetPongResp() == nil {
		t.Fatalf("after identical PutRoute: %v", resp)
	}

	// A changed route closes /a's connections with 1001, not /b's.
	changed := deadRoute("/a")
	changed.Cluster.Brokers = []string{"127.0.0.1:2"}
	if err := s.PutRoute(changed); err != nil {
		t.Fatal(err)
	}
	_, err := a.tryRecv(5 * time.Second)
	if !isGoingAwayWith(err, "route changed") {
		t.Fatalf("/a after route change: %v, want close 1001 \"route changed\"", err)
	}
	if resp := b.roundTrip(pingReq(2, "")); resp.GetPongResp() == nil {
		t.Fatalf("/b after /a changed: %v", resp)
	}
	a2 := dialWS(t, s, "/a")

	if !s.DeleteRoute("/b") || s.DeleteRoute("/b") {
		t.Fatal("DeleteRoute results")
	}
	_, err = b.tryRecv(5 * time.Second)
	if !isGoingAwayWith(err, "route removed") {
		t.Fatalf("/b after delete: %v, want close 1001 \"route removed\"", err)
	}
	if resp := a2.roundTrip(pingReq(3, "")); resp.GetPongResp() == nil {
		t.Fatalf("/a after /b deleted: %v", resp)
	}
	r := dialRaw(t, s)
	r.write([]byte("GET /b HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"))
	if st := r.httpStatus(); st != 404 {
		t.Fatalf("deleted route: status %d", st)
	}
	routes := s.Routes()
	if len(routes) != 1 || routes[0].URI != "/a" || routes[0].Cluster.Brokers[0] != "127.0.0.1:2" {
		t.Fatalf("Routes() = %+v", routes)
	}
	if err := s.PutRoute(Route{URI: "no-slash"}); err == nil {
		t.Fatal("PutRoute accepted a URI without a leading slash")
	}
}

func TestShutdownClosesWithGoingAway(t *testing.T) {
	cfg := Config{Addr: "127.0.0.1:0", Loops: 1, Logger: testLogger()}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.PutRoute(deadRoute("/kafka")); err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err == nil {
		t.Fatal("second Start succeeded")
	}
	c := dialWS(t, s, "/kafka")
	c.roundTrip(pingReq(1, ""))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- s.Shutdown(ctx) }()
	_, err = c.tryRecv(5 * time.Second)
	if !isGoingAway(err) {
		t.Fatalf("read during shutdown: %v, want close 1001", err)
	}
	if err := <-done; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if err := s.Shutdown(ctx); err != nil {
		t.Fatalf("second Shutdown: %v", err)
	}
	if err := s.PutRoute(deadRoute("/x")); err == nil {
		t.Fatal("PutRoute after Shutdown succeeded")
	}
}

func TestConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{Addr: "nonsense"}, `reactor: invalid config: Addr "nonsense": want host:port`},
		{Config{Addr: "a b:80"}, `reactor: invalid config: Addr "a b:80": invalid host name "a b"`},
		{Config{Addr: "127.0.0.1:99999"}, `reactor: invalid config: Addr "127.0.0.1:99999": port must be 0 to 65535`},
		{Config{MaxInflight: -1}, "reactor: invalid config: MaxInflight is negative (-1)"},
		{Config{MaxInflightTotal: 10, MaxInflightCluster: 11}, "reactor: invalid config: MaxInflightCluster 11 is more than MaxInflightTotal 10"},
		{Config{MemoryBudget: -1}, "reactor: invalid config: MemoryBudget -1 is less than 1048576 bytes"},
		{Config{Loops: -2}, "reactor: invalid config: Loops is negative (-2)"},
		{Config{IdleTimeout: -time.Second}, "reactor: invalid config: IdleTimeout is negative (-1s)"},
		{Config{MaxHeader: 10}, "reactor: invalid config: wsframe: MaxHeader 10 is below 256 bytes"},
		{Config{MaxMessage: -1}, "reactor: invalid config: wsframe: MaxMessage -1 is negative"},
	} {
		err := tc.cfg.Validate()
		if !errors.Is(err, ErrConfig) || err.Error() != tc.want {
			t.Errorf("Validate(%+v) = %v, want %q wrapping ErrConfig", tc.cfg, err, tc.want)
		}
		if _, err := New(tc.cfg); err == nil || err.Error() != tc.want {
			t.Errorf("New(%+v) = %v, want %q", tc.cfg, err, tc.want)
		}
	}
	d := DefaultConfig()
	if err := d.Validate(); err != nil {
		t.Fatalf("DefaultConfig().Validate() = %v", err)
	}
	if (Config{}).Validate() != nil {
		t.Fatal("the zero Config does not validate")
	}
	s, err := New(Config{Addr: ":0", Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	want := d
	want.Addr, want.Loops, want.Logger, want.Observer = "0.0.0.0:0", baseProcs(), s.cfg.Logger, NopObserver{}
	want.MemoryBudget = defaultMemoryBudget()
	if s.cfg != want {
		t.Fatalf("defaults not applied:\n got %+v\nwant %+v", s.cfg, want)
	}
}
