package main

import (
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// maxSamples bounds the latency samples one recorder keeps (reservoir
// sampling beyond it), so a long run cannot grow memory without bound.
const maxSamples = 200_000

// load is what the clients of one run did, updated concurrently.
type load struct {
	reqs, msgs, bytes, errs atomic.Int64

	mu       sync.Mutex
	samples  []time.Duration
	seen     int64
	rng      *rand.Rand
	firstErr error
}

func newLoad() *load { return &load{rng: rand.New(rand.NewPCG(1, 2))} }

// recorder collects one goroutine's latencies and merges them into l.
type recorder struct {
	l       *load
	samples []time.Duration
}

func (l *load) recorder() *recorder { return &recorder{l: l} }

// add records one completed request.
func (r *recorder) add(d time.Duration, msgs, bytes int) {
	r.l.reqs.Add(1)
	if msgs > 0 {
		r.l.msgs.Add(int64(msgs))
		r.l.bytes.Add(int64(bytes))
	}
	r.samples = append(r.samples, d)
	if len(r.samples) >= 4096 {
		r.flush()
	}
}

// sample records a latency that is not a request's: a message's time from
// its production to its receipt (the subscription scenarios).
func (r *recorder) sample(d time.Duration) {
	r.samples = append(r.samples, d)
	if len(r.samples) >= 4096 {
		r.flush()
	}
}

// flush moves the samples into the load.
func (r *recorder) flush() {
	l := r.l
	l.mu.Lock()
	for _, d := range r.samples {
		l.seen++
		if len(l.samples) < maxSamples {
			l.samples = append(l.samples, d)
		} else if i := l.rng.Int64N(l.seen); i < maxSamples {
			l.samples[i] = d
		}
	}
	l.mu.Unlock()
	r.samples = r.samples[:0]
}

// fail counts an error and keeps the first.
func (l *load) fail(err error) {
	l.errs.Add(1)
	l.mu.Lock()
	if l.firstErr == nil {
		l.firstErr = err
	}
	l.mu.Unlock()
}

// percentiles returns the p50, p99 and max latency in milliseconds.
func (l *load) percentiles() (p50, p99, maxv float64) {
	l.mu.Lock()
	s := slices.Clone(l.samples)
	l.mu.Unlock()
	if len(s) == 0 {
		return -1, -1, -1
	}
	slices.Sort(s)
	at := func(q float64) float64 {
		i := int(q * float64(len(s)-1))
		return float64(s[i]) / float64(time.Millisecond)
	}
	return at(0.50), at(0.99), float64(s[len(s)-1]) / float64(time.Millisecond)
}

// progress prints a live status line on stderr while a run goes on.
type progress struct {
	w     io.Writer
	live  bool // stderr is a terminal: redraw one line with \r
	mu    sync.Mutex
	label string
	l     *load
	start time.Time
	total time.Duration
	stop  chan struct{}
	done  chan struct{}
	once  sync.Once
}

// newProgress writes to w, redrawing one line if w is a terminal.
func newProgress(w io.Writer) *progress {
	p := &progress{w: w, stop: make(chan struct{}), done: make(chan struct{})}
	if f, ok := w.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			p.live = true
		}
	}
	go p.loop()
	return p
}

// set shows the run label and its load.
func (p *progress) set(label string, l *load, total time.Duration) {
	p.mu.Lock()
	p.label, p.l, p.start, p.total = label, l, time.Now(), total
	p.mu.Unlock()
}

// note prints a line above the progress line.
func (p *progress) note(format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.live {
		fmt.Fprint(p.w, "\r\033[K")
	}
	fmt.Fprintf(p.w, format+"\n", args...)
}

func (p *progress) loop() {
	defer close(p.done)
	every := 250 * time.Millisecond
	if !p.live {
		every = 5 * time.Second
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			if p.live {
				fmt.Fprint(p.w, "\r\033[K")
			}
			return
		case <-t.C:
		}
		p.mu.Lock()
		if p.l != nil {
			el := time.Since(p.start).Seconds()
			msgs, bytes, reqs := p.l.msgs.Load(), p.l.bytes.Load(), p.l.reqs.Load()
			line := fmt.Sprintf("%-28s %5.1fs/%.0fs %9d req %8.0f req/s %10d msgs %8.1f MB/s  errs %d",
				p.label, el, p.total.Seconds(), reqs, float64(reqs)/max(el, 0.001), msgs,
				float64(bytes)/1e6/max(el, 0.001), p.l.errs.Load())
			if p.live {
				fmt.Fprint(p.w, "\r\033[K"+line)
			} else {
				fmt.Fprintln(p.w, line)
			}
		}
		p.mu.Unlock()
	}
}

// close stops the progress line.
func (p *progress) close() {
	p.once.Do(func() { close(p.stop) })
	<-p.done
}
