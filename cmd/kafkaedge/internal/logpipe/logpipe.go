// Package logpipe is kafkaedge's slog set-up: a handler that never blocks
// its caller (the event loops log through it), with a rate limit on
// repeated warnings and errors, and one goroutine that formats and writes.
package logpipe

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// Limits of a Pipeline.
const (
	// QueueSize is how many records may wait for the writer; past it
	// records are dropped and counted, so that a slow stderr never blocks
	// an event loop.
	QueueSize = 4096
	// Burst warnings or errors with the same message are written per
	// Interval; the rest are counted and reported as "suppressed".
	Burst    = 10
	Interval = 10 * time.Second
	// maxKeys bounds the messages the rate limit tracks at once.
	maxKeys = 1024
)

// Pipeline is a rate limit on warnings and errors per message, then a
// bounded queue to one writer goroutine that formats and writes the records
// (text or JSON) to the output.
//
// Its handler never blocks: the event loops log connection closes and
// misbehaving clients, and a stalled stderr (a full pipe) must not stall
// them. When the queue is full the record is dropped and counted
// (Dropped).
//
// A new pipeline holds what is logged until Release: a start that fails
// closes it unreleased, and what the start had logged is dropped, so that
// the start's failure is the one line written.
type Pipeline struct {
	base   slog.Handler // formats and writes; used only by the writer goroutine after start
	logger *slog.Logger

	queue   chan logEntry
	release chan struct{} // closed by Release
	once    sync.Once     // closes release
	stop    chan struct{}
	done    chan struct{}
	closed  atomic.Bool
	drops   atomic.Uint64
	limiter *rateLimiter
}

// logEntry is a record and the handler (with its attributes) it goes to.
type logEntry struct {
	h slog.Handler
	r slog.Record
}

// New starts a pipeline writing records of level and above to w, as JSON
// objects or as slog's text.
func New(w io.Writer, json bool, level slog.Level) *Pipeline {
	opts := &slog.HandlerOptions{Level: level}
	var base slog.Handler
	if json {
		base = slog.NewJSONHandler(w, opts)
	} else {
		base = slog.NewTextHandler(w, opts)
	}
	p := &Pipeline{
		base:    base,
		queue:   make(chan logEntry, QueueSize),
		release: make(chan struct{}),
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
		limiter: newRateLimiter(Burst, Interval, time.Now),
	}
	p.logger = slog.New(&limitHandler{p: p, next: base})
	go p.run()
	return p
}

// Logger is the logger that logs through the pipeline.
func (p *Pipeline) Logger() *slog.Logger { return p.logger }

// run writes queued records and reports suppressed warnings every interval.
func (p *Pipeline) run() {
	defer close(p.done)
	select {
	case <-p.release:
	case <-p.stop:
		if !p.released() {
			return // closed unreleased: what is queued is dropped
		}
	}
	tick := time.NewTicker(p.limiter.every)
	defer tick.Stop()
	for {
		select {
		case e := <-p.queue:
			_ = e.h.Handle(context.Background(), e.r)
		case <-tick.C:
			p.flushSuppressed(false)
		case <-p.stop:
			for {
				select {
				case e := <-p.queue:
					_ = e.h.Handle(context.Background(), e.r)
				default:
					p.flushSuppressed(true)
					return
				}
			}
		}
	}
}

// flushSuppressed writes one summary per message whose suppressed lines
// have not been reported yet and whose window has ended (all of them when
// the pipeline closes).
func (p *Pipeline) flushSuppressed(all bool) {
	for _, s := range p.limiter.expired(all) {
		r := slog.NewRecord(time.Now(), slog.LevelWarn, "log lines suppressed", 0)
		r.AddAttrs(slog.String("message", s.msg), slog.Int("suppressed", s.n), slog.Duration("interval", p.limiter.every))
		_ = p.base.Handle(context.Background(), r)
	}
}

// enqueue hands a record to the writer without blocking.
func (p *Pipeline) enqueue(h slog.Handler, r slog.Record) error {
	if p.closed.Load() {
		// After close the writer is gone: write in the caller.
		return h.Handle(context.Background(), r)
	}
	select {
	case p.queue <- logEntry{h: h, r: r.Clone()}:
	default:
		p.drops.Add(1)
	}
	return nil
}

// Release starts writing, what was held first.
func (p *Pipeline) Release() { p.once.Do(func() { close(p.release) }) }

// released reports whether Release was called.
func (p *Pipeline) released() bool {
	select {
	case <-p.release:
		return true
	default:
		return false
	}
}

// Close writes what is queued, if the pipeline was released (else it drops
// it), and stops the writer; later records are written synchronously.
func (p *Pipeline) Close() {
	if p.closed.Swap(true) {
		return
	}
	close(p.stop)
	<-p.done
	if !p.released() {
		return
	}
	if n := p.drops.Load(); n > 0 {
		r := slog.NewRecord(time.Now(), slog.LevelWarn, "log lines dropped because the writer fell behind", 0)
		r.AddAttrs(slog.Uint64("dropped", n))
		_ = p.base.Handle(context.Background(), r)
	}
}

// Dropped is the number of records dropped because the writer fell behind.
func (p *Pipeline) Dropped() uint64 { return p.drops.Load() }

// Suppressed is the number of warnings and errors the rate limit dropped.
func (p *Pipeline) Suppressed() uint64 { return p.limiter.total.Load() }

// limitHandler is the slog.Handler of the pipeline: it applies the rate
// limit to warnings and errors and queues what passes.
type limitHandler struct {
	p    *Pipeline
	next slog.Handler // the base handler with this logger's attributes
}

func (h *limitHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.next.Enabled(ctx, l)
}

func (h *limitHandler) Handle(_ context.Context, r slog.Record) error {
	if r.Level >= slog.LevelWarn {
		ok, suppressed := h.p.limiter.allow(r.Message)
		if !ok {
			return nil
		}
		if suppressed > 0 {
			r = r.Clone()
			r.AddAttrs(slog.Int("suppressed", suppressed))
		}
	}
	return h.p.enqueue(h.next, r)
}

func (h *limitHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &limitHandler{p: h.p, next: h.next.WithAttrs(attrs)}
}

func (h *limitHandler) WithGroup(name string) slog.Handler {
	return &limitHandler{p: h.p, next: h.next.WithGroup(name)}
}

// rateLimiter lets burst records per message through per interval.
type rateLimiter struct {
	burst int
	every time.Duration
	now   func() time.Time
	total atomic.Uint64 // records suppressed since start

	mu   sync.Mutex
	keys map[string]*logWindow
}

// logWindow is the count of one message in its current interval.
type logWindow struct {
	start      time.Time
	count      int
	suppressed int // in this window, not yet reported
}

// suppressedLines is a summary to write: n lines of msg were dropped.
type suppressedLines struct {
	msg string
	n   int
}

func newRateLimiter(burst int, every time.Duration, now func() time.Time) *rateLimiter {
	return &rateLimiter{burst: burst, every: every, now: now, keys: make(map[string]*logWindow)}
}

// allow reports whether a record with msg may be written, and how many
// records with msg were suppressed in the window that just ended (to be
// reported on this one).
func (l *rateLimiter) allow(msg string) (bool, int) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	w := l.keys[msg]
	if w == nil {
		if len(l.keys) >= maxKeys {
			l.pruneLocked(now)
		}
		w = &logWindow{start: now}
		l.keys[msg] = w
	}
	prev := 0
	if now.Sub(w.start) >= l.every {
		prev = w.suppressed
		*w = logWindow{start: now}
	}
	if w.count >= l.burst {
		w.suppressed++
		l.total.Add(1)
		return false, 0
	}
	w.count++
	return true, prev
}

// expired returns and clears the unreported suppressed counts of windows
// that have ended (all windows if all), and forgets those messages.
func (l *rateLimiter) expired(all bool) []suppressedLines {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []suppressedLines
	for msg, w := range l.keys {
		if !all && now.Sub(w.start) < l.every {
			continue
		}
		if w.suppressed > 0 {
			out = append(out, suppressedLines{msg: msg, n: w.suppressed})
		}
		delete(l.keys, msg)
	}
	return out
}

// pruneLocked drops the windows that have ended; if none has, it drops
// them all (a flood of distinct messages), losing only their counts.
func (l *rateLimiter) pruneLocked(now time.Time) {
	for msg, w := range l.keys {
		if now.Sub(w.start) >= l.every && w.suppressed == 0 {
			delete(l.keys, msg)
		}
	}
	if len(l.keys) >= maxKeys {
		clear(l.keys)
	}
}
