package reactor

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"

	"github.com/kafkaedge/kafkaedge/internal/wsclient"
	"github.com/kafkaedge/kafkaedge/internal/wstest"
	"github.com/kafkaedge/kafkaedge/kafkawire"
	"github.com/kafkaedge/kafkaedge/proto/pubsub"
)

// testLogger discards logs unless REACTOR_TEST_LOG is set.
func testLogger() *slog.Logger {
	if os.Getenv("REACTOR_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// startServer starts a server on a free loopback port with the given
// routes and shuts it down at the end of the test.
func startServer(t testing.TB, cfg Config, routes ...Route) *Server {
	t.Helper()
	cfg.Addr = "127.0.0.1:0"
	if cfg.Loops == 0 {
		cfg.Loops = 2
	}
	cfg.Logger = testLogger()
	s, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	for _, r := range routes {
		if err := s.PutRoute(r); err != nil {
			t.Fatalf("PutRoute(%s): %v", r.URI, err)
		}
	}
	if err := s.Start(); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
	return s
}

// deadRoute is a route whose cluster is never reached by the tests that use
// it (they send no Kafka commands).
func deadRoute(uri string) Route {
	return Route{URI: uri, Cluster: kafkawire.Config{Brokers: []string{"127.0.0.1:1"}}}
}

// wsClient is the tests' WebSocket client, internal/wsclient (over
// gorilla/websocket, independent of the server), failing the test on
// errors.
type wsClient struct {
	t testing.TB
	*wsclient.Conn
}

func dialWS(t testing.TB, s *Server, path string) *wsClient {
	t.Helper()
	c, err := dialClient(s, path)
	if err != nil {
		t.Fatalf("dial %s: %v", path, err)
	}
	t.Cleanup(func() { c.Close() })
	return &wsClient{t: t, Conn: c}
}

// dialClient dials path on s, for the goroutines that return errors.
func dialClient(s *Server, path string) (*wsclient.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return wsclient.Dial(ctx, "ws://"+s.Addr()+path, wsclient.Options{HandshakeTimeout: 5 * time.Second})
}

func (w *wsClient) send(req *pubsub.PubSubReq) {
	w.t.Helper()
	if err := w.Send(req); err != nil {
		w.t.Fatal(err)
	}
}

func (w *wsClient) sendRaw(typ int, b []byte) {
	w.t.Helper()
	if err := w.SendRaw(typ, b); err != nil {
		w.t.Fatal(err)
	}
}

// recv reads one response; it fails the test after 10 s.
func (w *wsClient) recv() *pubsub.PubSubResp {
	w.t.Helper()
	resp, err := w.tryRecv(10 * time.Second)
	if err != nil {
		w.t.Fatal(err)
	}
	return resp
}

func (w *wsClient) tryRecv(timeout time.Duration) (*pubsub.PubSubResp, error) {
	return recvWithin(w.Conn, timeout)
}

// recvWithin reads one response from c, or fails after timeout.
func recvWithin(c *wsclient.Conn, timeout time.Duration) (*pubsub.PubSubResp, error) {
	if err := c.SetReadDeadline(time.Now().Add(timeout)); err != nil {
		return nil, err
	}
	return c.Recv()
}

func (w *wsClient) roundTrip(req *pubsub.PubSubReq) *pubsub.PubSubResp {
	w.t.Helper()
	w.send(req)
	return w.recv()
}

// isGoingAway reports whether a read ended with the server's close 1001.
func isGoingAway(err error) bool {
	code, ok := wsclient.CloseCode(err)
	return ok && code == int(ws.StatusGoingAway)
}

// isGoingAwayWith reports whether err is the server's close 1001 with reason.
func isGoingAwayWith(err error, reason string) bool {
	r, _ := wsclient.CloseReason(err)
	return isGoingAway(err) && r == reason
}

// The request builders of internal/wsclient, under the tests' short names.
var (
	fetchReq = wsclient.FetchReq
	listReq  = wsclient.ListOffsetReq
)

func pingReq(seq int64, state string) *pubsub.PubSubReq { return wsclient.PingReq(seq, []byte(state)) }

// rawConn is a hand-driven TCP client for hostile and HTTP-level tests.
type rawConn struct {
	t  testing.TB
	c  net.Conn
	br *bufio.Reader
}

func dialRaw(t testing.TB, s *Server) *rawConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", s.Addr(), 5*time.Second)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return &rawConn{t: t, c: c, br: bufio.NewReader(c)}
}

func (r *rawConn) write(b []byte) {
	r.t.Helper()
	if _, err := r.c.Write(b); err != nil {
		r.t.Fatalf("raw write: %v", err)
	}
}

// httpStatus reads an HTTP response head and returns its status code.
func (r *rawConn) httpStatus() int {
	r.t.Helper()
	_ = r.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	line, err := r.br.ReadString('\n')
	if err != nil {
		r.t.Fatalf("read status line: %v", err)
	}
	var status int
	if _, err := fmt.Sscanf(line, "HTTP/1.1 %d", &status); err != nil {
		r.t.Fatalf("status line %q: %v", line, err)
	}
	for {
		l, err := r.br.ReadString('\n')
		if err != nil {
			r.t.Fatalf("read header: %v", err)
		}
		if l == "\r\n" {
			return status
		}
	}
}

// upgrade performs the opening handshake on path.
func (r *rawConn) upgrade(path string) {
	r.t.Helper()
	r.write([]byte("GET " + path + " HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"))
	if st := r.httpStatus(); st != 101 {
		r.t.Fatalf("upgrade status %d, want 101", st)
	}
}

// readFrame reads one server frame.
func (r *rawConn) readFrame() (ws.Frame, error) {
	_ = r.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	return wstest.ReadFrame(r.br)
}

// expectClose reads frames until a close frame and returns its code; it
// fails the test if the connection ends without one.
func (r *rawConn) expectClose() ws.StatusCode {
	r.t.Helper()
	for {
		f, err := r.readFrame()
		if err != nil {
			r.t.Fatalf("waiting for a close frame: %v", err)
		}
		if f.Header.OpCode == ws.OpClose {
			if len(f.Payload) < 2 {
				return ws.StatusNoStatusRcvd
			}
			return ws.StatusCode(binary.BigEndian.Uint16(f.Payload))
		}
	}
}

// expectEOF waits until the server closes the connection.
func (r *rawConn) expectEOF(timeout time.Duration) error {
	_ = r.c.SetReadDeadline(time.Now().Add(timeout))
	_, err := io.Copy(io.Discard, r.br)
	if err != nil && !strings.Contains(err.Error(), "connection reset") {
		return err
	}
	return nil
}

// waitFor polls cond until it holds or 10 s pass.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
