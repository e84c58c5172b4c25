package reactor

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// stallingHandler is a log destination that stalls: once stalled, every
// Handle blocks until the stall ends.
type stallingHandler struct {
	slog.Handler
	s *stall
}

type stall struct {
	on      atomic.Bool
	release chan struct{}
}

func newStall() *stall { return &stall{release: make(chan struct{})} }

// end lets the blocked Handles go on.
func (s *stall) end() { close(s.release) }

func (h stallingHandler) Handle(ctx context.Context, r slog.Record) error {
	if h.s.on.Load() {
		<-h.s.release
	}
	return h.Handler.Handle(ctx, r)
}

func (h stallingHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return stallingHandler{h.Handler.WithAttrs(attrs), h.s}
}

func (h stallingHandler) WithGroup(name string) slog.Handler {
	return stallingHandler{h.Handler.WithGroup(name), h.s}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// TestLoopLogNeverBlocks: with a Logger that stalls, logging on the loops
// returns at once, drops what the queue cannot hold, counts it, and the
// drop is reported once the Logger catches up.
func TestLoopLogNeverBlocks(t *testing.T) {
	var out syncBuffer
	st := newStall()
	st.on.Store(true)
	base := slog.NewTextHandler(&out, nil)
	q := newLogQueue(slog.New(base))
	l := slog.New(loopHandler{stallingHandler{base, st}, q}).With("component", "reactor")
	q.start()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range logQueueLen + 100 {
			l.Info("connection closed", "n", i)
		}
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("logging blocked behind a stalled handler")
	}
	// One record is in the stalled Handle, logQueueLen wait: the rest were
	// dropped.
	if d := q.dropped.Load(); d < 99 || d > 100 {
		t.Fatalf("%d records dropped, want 99 or 100", d)
	}
	st.end()
	q.stopAndFlush()
	got := out.String()
	if n := strings.Count(got, `msg="connection closed" component=reactor n=`); n != logQueueLen+100-int(q.dropped.Load()) {
		t.Fatalf("%d records written, want every one not dropped", n)
	}
	if !strings.Contains(got, `msg="log lines of the event loops dropped: the log handler fell behind" dropped=`) {
		t.Fatalf("the drops were not reported:\n%s", got[max(0, len(got)-500):])
	}
}

// TestServerLogsThroughQueue: a server whose Logger stalls keeps serving,
// and its connection logs arrive once the Logger moves again.
func TestServerLogsThroughQueue(t *testing.T) {
	var out syncBuffer
	st := newStall()
	cfg := Config{Addr: "127.0.0.1:0", Loops: 1, Logger: slog.New(stallingHandler{slog.NewTextHandler(&out, nil), st})}
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
	st.on.Store(true)
	for i := range 5 {
		c, err := dialClient(s, "/kafka")
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Send(pingReq(int64(i), "")); err != nil {
			t.Fatal(err)
		}
		if _, err := recvWithin(c, 10*time.Second); err != nil {
			t.Fatalf("ping %d with the Logger stalled: %v", i, err)
		}
		c.Close()
	}
	waitFor(t, "the connections to close", func() bool { return s.Stats().Conns == 0 })
	st.end()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(out.String(), `msg="connection closed" component=reactor`); n != 5 {
		t.Fatalf("%d connection close lines after Shutdown, want 5:\n%s", n, out.String())
	}
}
