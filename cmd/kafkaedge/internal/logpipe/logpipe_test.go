package logpipe

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestRateLimiter(t *testing.T) {
	now := time.Unix(1000, 0)
	l := newRateLimiter(3, 10*time.Second, func() time.Time { return now })
	allowed := 0
	for range 5 {
		if ok, _ := l.allow("bad client"); ok {
			allowed++
		}
	}
	if ok, _ := l.allow("other"); !ok || allowed != 3 || l.total.Load() != 2 {
		t.Fatalf("allowed %d of 5 (suppressed %d), other message allowed %v", allowed, l.total.Load(), ok)
	}
	if got := l.expired(false); len(got) != 0 {
		t.Fatalf("expired before the window ended: %v", got)
	}
	now = now.Add(10 * time.Second)
	// The next line of the message carries the count of the last window.
	if ok, prev := l.allow("bad client"); !ok || prev != 2 {
		t.Fatalf("after the window: allowed %v, suppressed %d, want true 2", ok, prev)
	}
	for range 4 {
		l.allow("bad client")
	}
	now = now.Add(11 * time.Second)
	got := l.expired(false)
	if len(got) != 1 || got[0].msg != "bad client" || got[0].n != 2 {
		t.Fatalf("expired: %+v, want bad client 2", got)
	}
	if got := l.expired(true); len(got) != 0 {
		t.Fatalf("reported twice: %+v", got)
	}
}

// blockingWriter blocks every Write until released.
type blockingWriter struct {
	release chan struct{}
	mu      sync.Mutex
	buf     bytes.Buffer
}

func (w *blockingWriter) Write(p []byte) (int, error) {
	<-w.release
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.Write(p)
}

func (w *blockingWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// TestLogNeverBlocks: with the output stalled, logging returns at once and
// the overflow is dropped and counted.
func TestLogNeverBlocks(t *testing.T) {
	w := &blockingWriter{release: make(chan struct{})}
	p := New(w, false, slog.LevelInfo)
	p.Release()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 3 * QueueSize {
			p.Logger().Info("connection closed", "n", i)
		}
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("logging blocked on a stalled writer")
	}
	if p.Dropped() == 0 {
		t.Fatal("nothing dropped with the writer stalled")
	}
	close(w.release)
	p.Close()
	if !strings.Contains(w.String(), "log lines dropped because the writer fell behind") {
		t.Fatal("no summary of the dropped lines at close")
	}
	p.Logger().Info("after close") // written synchronously
	if !strings.Contains(w.String(), "after close") {
		t.Fatal("a line logged after close was lost")
	}
}

// TestLogRateLimitSummary: a flood of one warning is cut to the burst, and
// the rest is summarised.
func TestLogRateLimitSummary(t *testing.T) {
	var buf bytes.Buffer
	var mu sync.Mutex
	p := New(writerFunc(func(b []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return buf.Write(b)
	}), true, slog.LevelInfo)
	p.Release()
	for range 50 {
		p.Logger().Warn("closing a client that does not read its responses", "remote", "10.0.0.1:1")
	}
	p.Logger().Info("info lines are not limited")
	p.Close()
	mu.Lock()
	out := buf.String()
	mu.Unlock()
	if n := strings.Count(out, `"msg":"closing a client that does not read its responses"`); n != Burst {
		t.Fatalf("%d warnings written, want %d:\n%s", n, Burst, out)
	}
	if !strings.Contains(out, `"msg":"log lines suppressed","message":"closing a client that does not read its responses","suppressed":40`) {
		t.Fatalf("no suppressed summary:\n%s", out)
	}
	if !strings.Contains(out, "info lines are not limited") || p.Suppressed() != 40 {
		t.Fatalf("suppressed %d:\n%s", p.Suppressed(), out)
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(b []byte) (int, error) { return f(b) }

// TestHold: what is logged before Release is written after it, and dropped
// if the pipeline is closed without it.
func TestHold(t *testing.T) {
	var mu sync.Mutex
	var buf bytes.Buffer
	w := writerFunc(func(b []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return buf.Write(b)
	})
	out := func() string {
		mu.Lock()
		defer mu.Unlock()
		return buf.String()
	}
	p := New(w, false, slog.LevelInfo)
	p.Logger().Info("route added")
	p.Release()
	p.Logger().Info("kafkaedge started")
	p.Close()
	if o := out(); !strings.Contains(o, "route added") || strings.Index(o, "route added") > strings.Index(o, "kafkaedge started") {
		t.Fatalf("held line not written first:\n%s", o)
	}

	buf.Reset()
	p = New(w, false, slog.LevelInfo)
	for range 2 * QueueSize {
		p.Logger().Info("route added")
	}
	p.Close()
	if o := out(); o != "" {
		t.Fatalf("a pipeline closed unreleased wrote:\n%s", o)
	}
}
