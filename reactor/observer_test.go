package reactor

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/kafkaedge/kafkaedge/internal/wsclient"
	"github.com/kafkaedge/kafkaedge/kafkawire"
)

// recorder is an Observer that counts what it is told.
type recorder struct {
	NopObserver // the subscription events, which subscribe_test.go counts on its own
	mu          sync.Mutex
	upgrades    map[string]int // "route status"
	closes      []CloseInfo
	rejected    map[ConnReject]int
	requests    map[Command]int
	failed      map[Command]int
	bytes       int
	messages    int
	topics      map[string]int
	coalesced   int
	listCoal    int
	pressure    map[BackpressureEvent]int
	frames      map[FrameReason]int
	maxLatency  time.Duration
	// routeLog lists the events that name a route, in order: "up /x",
	// "closed /x", "removed /x".
	routeLog []string
}

func newRecorder() *recorder {
	return &recorder{
		upgrades: map[string]int{}, rejected: map[ConnReject]int{}, requests: map[Command]int{},
		failed: map[Command]int{}, topics: map[string]int{}, pressure: map[BackpressureEvent]int{},
		frames: map[FrameReason]int{},
	}
}

func (r *recorder) Upgrade(route string, status int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.upgrades[route+" "+http.StatusText(status)]++
	if route != "" {
		r.routeLog = append(r.routeLog, "up "+route)
	}
}

func (r *recorder) ConnClosed(route string, info CloseInfo) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closes = append(r.closes, info)
	r.routeLog = append(r.routeLog, "closed "+route)
}

func (r *recorder) RouteRemoved(route string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.routeLog = append(r.routeLog, "removed "+route)
}

// routeEvents returns a copy of routeLog.
func (r *recorder) routeEvents() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.routeLog)
}

func (r *recorder) ConnRejected(reason ConnReject) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.rejected[reason]++
}

func (r *recorder) Request(cmd Command, ok bool, d time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.requests[cmd]++
	if !ok {
		r.failed[cmd]++
	}
	r.maxLatency = max(r.maxLatency, d)
}

func (r *recorder) Delivered(_, topic string, bytes, messages int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.bytes += bytes
	r.messages += messages
	if topic != "" {
		r.topics[topic] += messages
	}
}

func (r *recorder) FetchCoalesced() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.coalesced++
}

func (r *recorder) ListOffsetCoalesced() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.listCoal++
}

// count returns what f reads of r, under r's lock.
func (r *recorder) count(f func(*recorder) int) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return f(r)
}

func (r *recorder) Backpressure(ev BackpressureEvent) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.pressure[ev]++
}

func (r *recorder) FrameRejected(reason FrameReason) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.frames[reason]++
}

// waitClosed waits until n connections were reported closed.
func (r *recorder) waitClosed(t *testing.T, n int) []CloseInfo {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		r.mu.Lock()
		got := append([]CloseInfo(nil), r.closes...)
		r.mu.Unlock()
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d connections reported closed, want %d", len(got), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestObserverEvents(t *testing.T) {
	k := newKafka(t, 1, "obs")
	produce(t, k, "obs", 0, 4, 0)
	rec := newRecorder()
	s := startServer(t, Config{Observer: rec, MaxInflight: 1}, kafkaRoute("/o", k))

	var he *wsclient.HandshakeError
	if _, err := dialClient(s, "/none"); !errors.As(err, &he) || he.Status != 404 {
		t.Fatalf("dial /none: %v, want HTTP 404", err)
	}
	c := dialWS(t, s, "/o")
	c.roundTrip(pingReq(1, "x"))
	resp := c.roundTrip(fetchReq(2, "obs", 0, 1))
	if n := len(resp.GetKafkaFetchResp().GetMessages()); n != 3 {
		t.Fatalf("fetched %d messages, want 3", n)
	}
	c.roundTrip(fetchReq(3, "missing", 0, 0))
	c.sendRaw(websocket.TextMessage, []byte("text"))
	c.sendRaw(websocket.BinaryMessage, []byte{0xff, 0xff})
	if resp := c.recv(); resp.GetErrorResp().GetMessage() != "wrong command" {
		t.Fatalf("garbage: %v", resp)
	}
	// Two pipelined requests against MaxInflight 1 stop the reading once.
	// They go in one write, so that the server reads the second while the
	// first is in flight however fast Kafka answers.
	if err := c.SendBatch(listReq(4, "obs", 0, -1), listReq(5, "obs", 0, -2)); err != nil {
		t.Fatal(err)
	}
	c.recv()
	c.recv()
	if err := c.SendClose(4000, "bye"); err != nil {
		t.Fatal(err)
	}
	closes := rec.waitClosed(t, 1)

	rec.mu.Lock()
	defer rec.mu.Unlock()
	if rec.upgrades["/o Switching Protocols"] != 1 || rec.upgrades[" Not Found"] != 1 {
		t.Errorf("upgrades: %v", rec.upgrades)
	}
	if rec.requests[CmdPing] != 1 || rec.requests[CmdFetch] != 2 || rec.failed[CmdFetch] != 1 ||
		rec.requests[CmdListOffset] != 2 || rec.requests[CmdInvalid] != 1 {
		t.Errorf("requests %v, failed %v", rec.requests, rec.failed)
	}
	if rec.frames[FrameText] != 1 || rec.frames[FrameUndecodable] != 1 {
		t.Errorf("rejected frames: %v", rec.frames)
	}
	if rec.pressure[BackpressureInflightCap] < 1 {
		t.Errorf("backpressure: %v", rec.pressure)
	}
	if rec.messages != 3 || rec.topics["obs"] != 3 || rec.bytes <= 0 {
		t.Errorf("delivered %d messages %v, %d bytes", rec.messages, rec.topics, rec.bytes)
	}
	ci := closes[0]
	if ci.Code != 4000 || ci.Reason != "client closed" || ci.Requests != 6 || ci.Messages != 3 || ci.BytesOut != int64(rec.bytes) || ci.Duration <= 0 {
		t.Errorf("close info: %+v (bytes delivered %d)", ci, rec.bytes)
	}
}

func TestCheckRoutesAndServing(t *testing.T) {
	k := newKafka(t, 1, "h")
	s, err := New(Config{Addr: "127.0.0.1:0", Loops: 1, Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	if s.Serving() {
		t.Fatal("Serving before Start")
	}
	for _, r := range []Route{kafkaRoute("/up", k), kafkaRoute("/up2", k), deadRoute("/down")} {
		if err := s.PutRoute(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	if !s.Serving() {
		t.Fatal("not Serving after Start")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	got := s.CheckRoutes(ctx)
	if len(got) != 3 || got[0].URI != "/down" || got[0].Err == nil || got[1].URI != "/up" || got[1].Err != nil || got[2].Err != nil {
		t.Fatalf("CheckRoutes: %+v", got)
	}
	if err := s.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if s.Serving() {
		t.Fatal("Serving after Shutdown")
	}
}

// TestShutdownCancelsLateCalls: a fetch still waiting at the broker when
// the shutdown's time is nearly up is cancelled and answered with an error,
// and the client still gets its close 1001.
func TestShutdownCancelsLateCalls(t *testing.T) {
	k := newKafka(t, 1, "late")
	s, err := New(Config{Addr: "127.0.0.1:0", Loops: 1, Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	r := kafkaRoute("/late", k)
	r.Cluster.FetchMinBytes = 1
	r.Cluster.FetchMaxWait = 20 * time.Second
	if err := s.PutRoute(r); err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	c := dialWS(t, s, "/late")
	c.roundTrip(listReq(1, "late", 0, -1)) // metadata and connection are warm
	c.send(fetchReq(2, "late", 0, 0))
	// Wait for the fetch's own call: the ListOffset's goroutine may still
	// be counted in KafkaCalls for a moment after its answer arrived.
	waitFor(t, "the fetch to be dispatched", func() bool { return s.Stats().Fetches == 1 })
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- s.Shutdown(ctx) }()
	resp := c.recv()
	if resp.GetSequence() != 2 || resp.GetErrorResp() == nil {
		t.Fatalf("answer to the cancelled fetch: %v", resp)
	}
	if _, err := c.tryRecv(5 * time.Second); !isGoingAway(err) {
		t.Fatalf("after the answer: %v, want close 1001", err)
	}
	if err := <-done; !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown: %v, want the deadline error", err)
	}
}

// TestRouteRemoved: RouteRemoved names a deleted URI once, after the
// ConnClosed of its last connection, and no event names the URI after it;
// a replaced route is not removed.
func TestRouteRemoved(t *testing.T) {
	rec := newRecorder()
	s := startServer(t, Config{Observer: rec}, deadRoute("/gone"), deadRoute("/empty"), deadRoute("/back"))
	removed := func(uri string) int {
		n := 0
		for _, e := range rec.routeEvents() {
			if e == "removed "+uri {
				n++
			}
		}
		return n
	}

	// A route without connections: removed at once.
	s.DeleteRoute("/empty")
	if n := removed("/empty"); n != 1 {
		t.Fatalf("/empty deleted without connections: %d RouteRemoved, want 1", n)
	}

	// Two connections: removed after both closed.
	a, b := dialWS(t, s, "/gone"), dialWS(t, s, "/gone")
	a.roundTrip(pingReq(1, "a"))
	b.roundTrip(pingReq(1, "b"))
	s.DeleteRoute("/gone")
	for _, c := range []*wsClient{a, b} {
		if _, err := c.tryRecv(10 * time.Second); !isGoingAwayWith(err, "route removed") {
			t.Fatalf("a connection of the deleted route: %v", err)
		}
	}
	waitFor(t, "RouteRemoved of /gone", func() bool { return removed("/gone") == 1 })
	ev := rec.routeEvents()
	var gone []string
	for _, e := range ev {
		if e == "up /gone" || e == "closed /gone" || e == "removed /gone" {
			gone = append(gone, e)
		}
	}
	if want := []string{"up /gone", "up /gone", "closed /gone", "closed /gone", "removed /gone"}; !slices.Equal(gone, want) {
		t.Fatalf("events of /gone: %v, want %v", gone, want)
	}

	// Replaced (another cluster): not removed.
	c := dialWS(t, s, "/back")
	c.roundTrip(pingReq(1, "c"))
	if err := s.PutRoute(Route{URI: "/back", Cluster: kafkawire.Config{Brokers: []string{"127.0.0.1:2"}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.tryRecv(10 * time.Second); !isGoingAwayWith(err, "route changed") {
		t.Fatalf("a connection of the replaced route: %v", err)
	}
	waitFor(t, "the replaced route's connection to be reported closed", func() bool {
		return slices.Contains(rec.routeEvents(), "closed /back")
	})
	if n := removed("/back"); n != 0 {
		t.Fatalf("/back replaced: %d RouteRemoved, want 0: %v", n, rec.routeEvents())
	}
}
