package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/kafkaedge/kafkaedge/internal/wsclient"
	"github.com/kafkaedge/kafkaedge/proto/pubsub"
)

// soakConfig is the soak's part of the command line (-soak and -soak-*).
type soakConfig struct {
	duration         time.Duration // -soak; 0: run the scenarios instead
	conns            int           // connections open at any time
	lifeMin, lifeMax time.Duration // a connection lives a random time in [lifeMin, lifeMax]
	rate             int           // requests per second over all connections
	partitions       int
	produceRate      int // records per second
	warmup           time.Duration
	window           time.Duration // of the first and the last window compared
	sample           time.Duration // sampling interval
	timeout          time.Duration // a request, dial or close handshake unanswered this long is an error
	rssTol           float64       // RSS growth allowed, a fraction of the first window's
	countTol         float64       // goroutine and open-file growth allowed, a fraction of conns
	idleGC           time.Duration // after the load, how long to wait for the node's next GC (0: not)
}

// soakCountMin is the least goroutine and open-file growth the verdict
// allows, whatever -soak-count-tolerance says of a small -soak-conns.
const soakCountMin = 10

func (c *soakConfig) flags(fs *flag.FlagSet) {
	fs.DurationVar(&c.duration, "soak", 0, "run the soak for this `duration` instead of the scenarios (make soak: 10m): kafkaedge under -soak-conns churning connections, its RSS, goroutines and open files sampled; soak.json and soak.svg in -out; exits non-zero unless they stayed flat and every request was answered")
	fs.IntVar(&c.conns, "soak-conns", 5000, "soak: WebSocket connections open at any time")
	fs.DurationVar(&c.lifeMin, "soak-life-min", 5*time.Second, "soak: shortest life of a connection; each lives a random time up to -soak-life-max, then closes (half of them with a close handshake) and is replaced")
	fs.DurationVar(&c.lifeMax, "soak-life-max", 30*time.Second, "soak: longest life of a connection")
	fs.IntVar(&c.rate, "soak-rate", 1000, "soak: requests per second over all connections: half fetches from the connection's next offset, a quarter ListOffset(-1), a quarter a WebSocket ping frame and a CmdPing (both must be answered); besides, a ListOffset(-1) on each new connection")
	fs.IntVar(&c.partitions, "soak-partitions", 8, "soak: partitions of the topic; each connection reads one")
	fs.IntVar(&c.produceRate, "soak-produce-rate", 200, "soak: records per second the producer writes, over the partitions in turn")
	fs.DurationVar(&c.warmup, "soak-warmup", 0, "soak: time before the first window compared (default -soak/5, at most 1m)")
	fs.DurationVar(&c.window, "soak-window", 0, "soak: length of the first and the last window compared (default -soak/5, at most 1m)")
	fs.DurationVar(&c.sample, "soak-sample", 0, "soak: sampling interval (default -soak/120 within 100ms..5s)")
	fs.DurationVar(&c.timeout, "soak-timeout", 10*time.Second, "soak: a request, dial or close handshake not answered within this is an error")
	fs.Float64Var(&c.rssTol, "soak-rss-tolerance", 0.10, "soak: RSS growth allowed from the first window's median to the last's, a fraction of the first")
	fs.DurationVar(&c.idleGC, "soak-idle-gc", 270*time.Second, "soak: after the clients left, wait up to this long for the node's next two garbage collections (Go forces one 2 minutes after the last; sync.Pool keeps its objects through one) and judge the heap the second finds live; 0: skip")
	fs.Float64Var(&c.countTol, "soak-count-tolerance", 0.01, fmt.Sprintf("soak: growth allowed of the goroutines and of the open files beyond connections, a fraction of -soak-conns (at least %d)", soakCountMin))
}

// check validates the soak flags and fills in the defaults that depend on
// the duration.
func (c *soakConfig) check() error {
	if c.duration == 0 {
		return nil
	}
	auto := min(time.Minute, c.duration/5)
	if c.warmup == 0 {
		c.warmup = auto
	}
	if c.window == 0 {
		c.window = auto
	}
	if c.sample == 0 {
		c.sample = min(max(c.duration/120, 100*time.Millisecond), 5*time.Second, c.window/3)
	}
	switch {
	case c.duration < time.Second || c.duration > 2*time.Hour:
		return errors.New("-soak must be 1s..2h")
	case c.conns < 1 || c.conns > 100_000:
		return errors.New("-soak-conns must be 1..100000")
	case c.lifeMin < 100*time.Millisecond || c.lifeMax < c.lifeMin || c.lifeMax > time.Hour:
		return errors.New("-soak-life-min must be >= 100ms, -soak-life-max within -soak-life-min..1h")
	case c.rate < 1 || c.rate > 100_000:
		return errors.New("-soak-rate must be 1..100000")
	case c.partitions < 1 || c.partitions > 1000:
		return errors.New("-soak-partitions must be 1..1000")
	case c.produceRate < 0 || c.produceRate > 100_000:
		return errors.New("-soak-produce-rate must be 0..100000")
	case c.timeout < 100*time.Millisecond || c.timeout > 5*time.Minute:
		return errors.New("-soak-timeout must be 100ms..5m")
	case c.warmup < 0 || c.window <= 0 || c.warmup+2*c.window > c.duration:
		return errors.New("-soak-warmup plus two -soak-window must fit in -soak")
	case c.sample < 10*time.Millisecond || 3*c.sample > c.window:
		return errors.New("-soak-sample must be >= 10ms and fit three times in -soak-window")
	case c.rssTol < 0 || c.rssTol > 10 || c.countTol < 0 || c.countTol > 1:
		return errors.New("-soak-rss-tolerance must be 0..10, -soak-count-tolerance 0..1")
	case c.idleGC < 0 || c.idleGC > 10*time.Minute:
		return errors.New("-soak-idle-gc must be 0..10m")
	}
	return nil
}

// countLimit is the goroutine and open-file growth the verdict allows.
func (c *soakConfig) countLimit() float64 {
	return max(soakCountMin, c.countTol*float64(c.conns))
}

// The classes of the soak's errors.
const (
	errDial      = "dial"            // dial or upgrade failed
	errTimeout   = "timeout"         // a request, or the answer to a close, did not come in time
	errClosed    = "closed"          // the connection failed: reset, closed by the server, EOF
	errServer    = "server-error"    // the server answered with an ErrorResp
	errWrong     = "wrong-answer"    // answered, but not as the protocol says (offsets, ping state, close code)
	errProtocol  = "protocol"        // a response out of sequence, of the wrong type or malformed
	errCloseHS   = "close-handshake" // the server did not answer a close frame with its own
	errProducer  = "producer"        // the producer's writes failed
	errSampler   = "sampler"         // /metrics or /proc could not be read
	errNodeCrash = "node-exited"     // kafkaedge exited during the soak
)

// errAnswer marks an answer that came but was wrong; the connection stays
// usable.
var errAnswer = errors.New("wrong answer")

// soakErrors counts one class of errors and keeps the first.
type soakErrors struct {
	Count int64  `json:"count"`
	First string `json:"first"`
}

// The request kinds of the soak.
const (
	kindFetch = iota
	kindList
	kindPing
	numKinds
)

// soakRun is one soak: its clients and their counters.
type soakRun struct {
	cfg   soakConfig
	url   string
	topic string
	start time.Time
	done  chan struct{} // closed at the end: workers close their connections and return
	dials chan struct{} // bounds the dials in progress
	l     *load         // requests answered and their latency

	open, opened, graceful, abrupt atomic.Int64
	answered                       [numKinds]atomic.Int64
	nerrs                          atomic.Int64

	mu   sync.Mutex
	errs map[string]*soakErrors
}

// soakDialParallel bounds the dials in progress: the first 5,000 come at
// once, the churn's a few hundred a second after that.
const soakDialParallel = 64

func newSoakRun(cfg soakConfig, url, topic string) *soakRun {
	return &soakRun{cfg: cfg, url: url, topic: topic, done: make(chan struct{}),
		dials: make(chan struct{}, soakDialParallel), l: newLoad(), errs: map[string]*soakErrors{}}
}

// fail counts an error of class.
func (s *soakRun) fail(class string, err error) {
	s.nerrs.Add(1)
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.errs[class]
	if e == nil {
		e = &soakErrors{First: err.Error()}
		s.errs[class] = e
	}
	e.Count++
}

// errorCounts returns a copy of the error counts.
func (s *soakRun) errorCounts() map[string]soakErrors {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]soakErrors, len(s.errs))
	for k, v := range s.errs {
		out[k] = *v
	}
	return out
}

// classify names the class of a failed request and tells whether the
// connection is still usable after it.
func classify(err error) (class string, usable bool) {
	var se *wsclient.ServerError
	var ne net.Error
	switch {
	case errors.As(err, &se):
		return errServer, true
	case errors.Is(err, errAnswer):
		return errWrong, true
	case errors.Is(err, wsclient.ErrSequence), errors.Is(err, wsclient.ErrUnexpected),
		errors.Is(err, wsclient.ErrMalformed), errors.Is(err, wsclient.ErrText):
		return errProtocol, false
	case errors.As(err, &ne) && ne.Timeout():
		return errTimeout, false
	}
	return errClosed, false
}

// waiter sleeps a worker until a time or the end of the soak.
type waiter struct {
	t    *time.Timer
	done <-chan struct{}
}

// wait sleeps d and reports false if the soak ended first.
func (w *waiter) wait(d time.Duration) bool {
	w.t.Reset(d)
	select {
	case <-w.t.C:
		return true
	case <-w.done:
		w.t.Stop()
		return false
	}
}

// worker keeps one connection open until the end of the soak: it dials,
// lives, closes and dials again.
func (s *soakRun) worker(id int) {
	rng := rand.New(rand.NewPCG(uint64(id), 0x50a4))
	rec := s.l.recorder()
	defer rec.flush()
	w := &waiter{t: time.NewTimer(time.Hour), done: s.done}
	w.t.Stop()
	// Each connection lives at least lifeMin, and the soak at most 2h: the
	// bound only backs that up.
	for range maxRequests {
		select {
		case <-s.done:
			return
		case s.dials <- struct{}{}:
		}
		ctx, cancel := context.WithTimeout(context.Background(), s.cfg.timeout)
		var pc *pongCounter
		c, err := wsclient.Dial(ctx, s.url, wsclient.Options{HandshakeTimeout: s.cfg.timeout, ReadBufferSize: 1024, WriteBufferSize: 512,
			WrapConn: func(c net.Conn) net.Conn { pc = &pongCounter{Conn: c}; return pc }})
		cancel()
		<-s.dials
		if err != nil {
			s.fail(errDial, err)
			if !w.wait(time.Second) {
				return
			}
			continue
		}
		s.opened.Add(1)
		s.open.Add(1)
		more := s.live(id, c, pc, rng, rec, w)
		s.open.Add(-1)
		if !more {
			return
		}
	}
}

// live runs one connection: a ListOffset(-1) to start near the end of its
// partition, then requests at random intervals (about conns/rate seconds
// apart) until its life ends, then a close. It reports false at the end of
// the soak.
func (s *soakRun) live(id int, c *wsclient.Conn, pc *pongCounter, rng *rand.Rand, rec *recorder, w *waiter) bool {
	until := time.Now().Add(s.cfg.lifeMin + time.Duration(rng.Int64N(int64(s.cfg.lifeMax-s.cfg.lifeMin)+1)))
	interval := time.Duration(float64(time.Second) * float64(s.cfg.conns) / float64(s.cfg.rate))
	p := int32(rng.IntN(s.cfg.partitions))
	var off int64
	var pings uint64
	for k := 0; k < maxRequests; k++ {
		kind := kindList // the first request: where to start
		if k > 0 {
			next := interval/2 + time.Duration(rng.Int64N(int64(interval)+1))
			if time.Until(until) < next {
				if !w.wait(time.Until(until)) {
					c.Close()
					return false
				}
				s.close(c, rng)
				return true
			}
			if !w.wait(next) {
				c.Close()
				return false
			}
			kind = []int{kindFetch, kindFetch, kindList, kindPing}[rng.IntN(4)]
		}
		_ = c.SetDeadline(time.Now().Add(s.cfg.timeout))
		t0 := time.Now()
		var msgs, vbytes int
		var err error
		switch kind {
		case kindFetch:
			var ms []*pubsub.KafkaMessage
			if ms, err = c.Fetch(s.topic, p, off); err == nil {
				off, vbytes, err = checkFetch(ms, off)
				msgs = len(ms)
			}
		case kindList:
			var end int64
			if end, err = c.ListOffset(s.topic, p, -1); err == nil {
				if end < off {
					err = fmt.Errorf("%w: ListOffset(-1) of %s/%d is %d, below offset %d already fetched", errAnswer, s.topic, p, end, off)
				} else if k == 0 {
					off = max(end-rng.Int64N(50), 0)
				}
			}
		case kindPing:
			pings++
			state := binary.BigEndian.AppendUint64(nil, uint64(id)<<32|pings&0xffffffff)
			// A WebSocket ping frame first: its pong comes before the
			// answer to CmdPing (the client's reader drops it; pc counts it).
			if err = c.SendRaw(websocket.PingMessage, state); err == nil {
				var got []byte
				got, err = c.Ping(state)
				switch {
				case err != nil:
				case !bytes.Equal(got, state):
					err = fmt.Errorf("%w: ping state %x answered with %x", errAnswer, state, got)
				case pc.pongs < int(pings):
					err = fmt.Errorf("%w: %d pongs for %d WebSocket pings", errAnswer, pc.pongs, pings)
				}
			}
		}
		if err != nil {
			class, usable := classify(err)
			s.fail(class, err)
			if !usable {
				c.Close()
				return true
			}
			continue
		}
		rec.add(time.Since(t0), msgs, vbytes)
		s.answered[kind].Add(1)
	}
	s.close(c, rng)
	return true
}

// pongCounter wraps a client's TCP connection and counts the pong frames
// the server sends, reading the frame headers of what the client reads
// (after the HTTP upgrade response) and skipping their payloads. It is
// read by one goroutine, the connection's.
type pongCounter struct {
	net.Conn
	pongs    int
	upgraded bool     // the upgrade response's blank line has been read
	tail     uint32   // the last 4 bytes before it
	hdr      [14]byte // the frame header being read
	nh       int
	skip     int64 // payload bytes of the current frame left
}

func (p *pongCounter) Read(b []byte) (int, error) {
	n, err := p.Conn.Read(b)
	p.scan(b[:n])
	return n, err
}

// scan follows the server's frames (RFC 6455, section 5.2) through b.
func (p *pongCounter) scan(b []byte) {
	for len(b) > 0 {
		switch {
		case !p.upgraded:
			p.tail = p.tail<<8 | uint32(b[0])
			p.upgraded = p.tail == 0x0d0a0d0a // "\r\n\r\n"
			b = b[1:]
		case p.skip > 0:
			k := min(int64(len(b)), p.skip)
			b, p.skip = b[k:], p.skip-k
		default:
			p.hdr[p.nh] = b[0]
			p.nh++
			b = b[1:]
			if p.nh < 2 {
				continue
			}
			need, size := 2, int64(p.hdr[1]&0x7f)
			switch size {
			case 126:
				need = 4
			case 127:
				need = 10
			}
			if p.hdr[1]&0x80 != 0 { // masked: a server must not, but skip the key
				need += 4
			}
			if p.nh < need {
				continue
			}
			switch size {
			case 126:
				size = int64(binary.BigEndian.Uint16(p.hdr[2:4]))
			case 127:
				size = int64(binary.BigEndian.Uint64(p.hdr[2:10]) & (1<<63 - 1))
			}
			if p.hdr[0]&0x0f == 0xa {
				p.pongs++
			}
			p.skip, p.nh = size, 0
		}
	}
}

// checkFetch checks that a fetch from off returned offsets from off on, in
// increasing order, and returns the next offset and the value bytes.
func checkFetch(ms []*pubsub.KafkaMessage, off int64) (next int64, vbytes int, err error) {
	next = off
	for _, m := range ms {
		if o := m.GetOffset(); o < next {
			return off, 0, fmt.Errorf("%w: fetch from %d returned offset %d after %d", errAnswer, off, o, next-1)
		}
		next = m.GetOffset() + 1
		vbytes += len(m.GetValue())
	}
	return next, vbytes, nil
}

// close ends a connection's life: half the time with a close handshake
// (the server must answer 1000 with its own close frame), half the time by
// dropping the TCP connection.
func (s *soakRun) close(c *wsclient.Conn, rng *rand.Rand) {
	defer c.Close()
	if rng.IntN(2) == 0 {
		s.abrupt.Add(1)
		return
	}
	s.graceful.Add(1)
	_ = c.SetDeadline(time.Now().Add(s.cfg.timeout))
	err := c.SendClose(wsclient.CloseNormalClosure, "soak")
	if err == nil {
		var code int
		if code, err = c.RecvClose(); err == nil && code != wsclient.CloseNormalClosure {
			err = fmt.Errorf("%w: close 1000 answered with %d", errAnswer, code)
		}
	}
	if err != nil {
		class, _ := classify(err)
		if class != errWrong {
			class = errCloseHS
		}
		s.fail(class, err)
	}
}

// soakSample is one reading of the node and of the clients; figures not
// read are -1.
type soakSample struct {
	T           float64 `json:"t_s"`            // seconds since the load started
	RSSMiB      float64 `json:"rss_mib"`        // VmRSS (/proc/PID/status)
	HeapMiB     float64 `json:"heap_inuse_mib"` // go_memstats_heap_inuse_bytes
	HeapGoalMiB float64 `json:"heap_goal_mib"`  // go_memstats_next_gc_bytes: GOGC=100 sets it near twice the heap the last GC found live
	LiveMiB     float64 `json:"live_heap_mib"`  // the heap the node's last GC marked live (GODEBUG=gctrace=1; 1 MiB steps)
	GCs         int     `json:"gcs"`            // the node's collections so far
	Goroutines  float64 `json:"goroutines"`     // go_goroutines
	FDs         float64 `json:"fds"`            // entries of /proc/PID/fd
	NodeConns   float64 `json:"node_conns"`     // kafkaedge_connections (TCP, upgraded or not)
	WSConns     float64 `json:"ws_conns"`       // kafkaedge_ws_connections, all routes
	ClientConns int64   `json:"client_conns"`   // open on the clients' side
	Opened      int64   `json:"opened"`         // connections opened so far
	Requests    int64   `json:"requests"`       // requests answered so far
	ReqPerSec   float64 `json:"req_per_sec"`    // answered since the previous sample
	Errors      int64   `json:"errors"`         // errors so far (every class)
	NodeErrors  float64 `json:"node_errors"`    // kafkaedge_requests_total{result="error"}
	NodeCPU     float64 `json:"node_cpu_s"`     // utime+stime of the node
	Load1       float64 `json:"loadavg_1m"`     // the machine's 1-minute load average
}

// extraFDs is the open files beyond the connections: what must stay flat
// while connections come and go.
func (s soakSample) extraFDs() float64 {
	if s.FDs < 0 || s.NodeConns < 0 {
		return -1
	}
	return s.FDs - s.NodeConns
}

// sampler reads the node.
type sampler struct {
	srv  *server
	hc   *http.Client
	gc   *gcTrace
	last soakSample
}

// gcTraceRe matches a line of GODEBUG=gctrace=1, "gc 12 @3.456s 1%: ...,
// 4->5->2 MB, 8 MB goal, ...": the third size is the heap marked live.
var gcTraceRe = regexp.MustCompile(`^gc (\d+) @[0-9.]+s .* (\d+)->(\d+)->(\d+) MB, (\d+) MB goal`)

// gcTrace keeps what the node's garbage collector reported last.
type gcTrace struct {
	mu   sync.Mutex
	n    int     // collections seen
	live float64 // MiB the last one marked live; -1 before the first
}

// line reads one line of the node's stderr.
func (g *gcTrace) line(l string) {
	m := gcTraceRe.FindStringSubmatch(l)
	if m == nil {
		return
	}
	live, err := strconv.ParseFloat(m[4], 64)
	if err != nil {
		return
	}
	g.mu.Lock()
	g.n++
	g.live = live
	g.mu.Unlock()
}

// last returns the collections seen and the live heap of the last.
func (g *gcTrace) last() (n int, live float64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.n, g.live
}

// read samples the node at t (seconds since the start) and the clients'
// counters of s (nil: none).
func (sm *sampler) read(t float64, s *soakRun) (soakSample, error) {
	x := soakSample{T: t, RSSMiB: -1, HeapMiB: -1, HeapGoalMiB: -1, Goroutines: -1, FDs: -1, NodeConns: -1, WSConns: -1,
		NodeErrors: -1, NodeCPU: -1, ReqPerSec: -1, Load1: -1, LiveMiB: -1}
	if sm.gc != nil {
		x.GCs, x.LiveMiB = sm.gc.last()
	}
	x.Load1 = load1()
	var errs []error
	pid := sm.srv.cmd.Process.Pid
	if p, err := readProc(pid); err == nil {
		x.RSSMiB, x.NodeCPU = float64(p.RSS)/(1<<20), p.CPU.Seconds()
	} else {
		errs = append(errs, err)
	}
	if n, err := countFDs(pid); err == nil {
		x.FDs = float64(n)
	} else {
		errs = append(errs, err)
	}
	if fams, err := scrapeMetrics(sm.hc, sm.srv.metrics); err == nil {
		x.HeapMiB = mib(familySum(fams, "go_memstats_heap_inuse_bytes", "", ""))
		x.HeapGoalMiB = mib(familySum(fams, "go_memstats_next_gc_bytes", "", ""))
		x.Goroutines = familySum(fams, "go_goroutines", "", "")
		x.NodeConns = familySum(fams, "kafkaedge_connections", "", "")
		x.WSConns = familySum(fams, "kafkaedge_ws_connections", "", "")
		x.NodeErrors = familySum(fams, "kafkaedge_requests_total", "result", "error")
	} else {
		errs = append(errs, err)
	}
	if s != nil {
		x.ClientConns, x.Opened, x.Requests, x.Errors = s.open.Load(), s.opened.Load(), s.l.reqs.Load(), s.nerrs.Load()
		if dt := t - sm.last.T; dt > 0 {
			x.ReqPerSec = float64(x.Requests-sm.last.Requests) / dt
		}
	}
	sm.last = x
	return x, errors.Join(errs...)
}

// mib converts bytes to MiB, keeping -1 (not read).
func mib(b float64) float64 {
	if b < 0 {
		return -1
	}
	return b / (1 << 20)
}

// countFDs counts the open files of a process.
func countFDs(pid int) (int, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return 0, fmt.Errorf("%w: %w", errNoProc, err)
	}
	defer f.Close()
	names, err := f.Readdirnames(-1)
	return len(names), err
}

// scrapeMetrics reads kafkaedge's /metrics at addr.
func scrapeMetrics(hc *http.Client, addr string) (map[string]*dto.MetricFamily, error) {
	resp, err := hc.Get("http://" + addr + "/metrics")
	if err != nil {
		return nil, fmt.Errorf("scrape /metrics: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil, fmt.Errorf("scrape /metrics: status %d", resp.StatusCode)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("parse /metrics: %w", err)
	}
	return fams, nil
}

// familySum adds up the gauges and counters of family name, only the
// series whose label is value if label is not empty; -1 if the family is
// absent.
func familySum(fams map[string]*dto.MetricFamily, name, label, value string) float64 {
	f, ok := fams[name]
	if !ok {
		return -1
	}
	sum := 0.0
	for _, m := range f.GetMetric() {
		if label != "" && !hasLabel(m, label, value) {
			continue
		}
		sum += m.GetGauge().GetValue() + m.GetCounter().GetValue() + m.GetUntyped().GetValue()
	}
	return sum
}

// hasLabel reports whether m has the label name=value.
func hasLabel(m *dto.Metric, name, value string) bool {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue() == value
		}
	}
	return false
}

// loadAvg returns the first three fields of /proc/loadavg, "" if unknown.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}

// load1 returns the machine's 1-minute load average, -1 if unknown.
func load1() float64 {
	if f := strings.Fields(loadAvg()); len(f) > 0 {
		if v, err := strconv.ParseFloat(f[0], 64); err == nil {
			return v
		}
	}
	return -1
}

// runSoak is -soak: kafkaedge (the binary) on the cluster, cfg.soak.conns
// churning connections for the duration, the node sampled every
// cfg.soak.sample; soak.json and soak.svg are written into cfg.out. It
// returns an error unless the node stayed flat and every request was
// answered.
func runSoak(ctx context.Context, cfg config, args []string, stdout, stderr io.Writer) error {
	sc := cfg.soak
	if _, err := os.Stat(cfg.kafkaedgeBin); err != nil {
		return fmt.Errorf("kafkaedge binary: %w (run make build)", err)
	}
	// The clients and kfake share this process; the node inherits the limit.
	if nofile, need := raiseFileLimit(), uint64(sc.conns+512); nofile < need {
		return fmt.Errorf("open-file limit %d: -soak-conns %d needs %d (raise ulimit -n or lower -soak-conns)", nofile, sc.conns, need)
	}
	b, stopBench, err := newBench(ctx, cfg, stderr)
	if err != nil {
		return err
	}
	defer stopBench()
	cl, prog, started := b.cl, b.prog, b.started
	gc := &gcTrace{live: -1}
	b.nodeEnv, b.nodeLine = []string{"GODEBUG=gctrace=1"}, gc.line
	parts := int32(sc.partitions)
	topic, _, err := b.seeded(ctx, "soak", parts, 1000, "none", 0)
	if err != nil {
		return err
	}
	t, err := b.startTarget(ctx, sysKafkaedge, topic, nil)
	if err != nil {
		return err
	}
	defer t.stop()
	if t.srv.metrics == "" {
		return fmt.Errorf("kafkaedge logged no metrics address: %s", t.srv.logTail())
	}
	sm := &sampler{srv: t.srv, hc: &http.Client{Timeout: 5 * time.Second}, gc: gc}
	rep := &soakReport{
		Date: started.UTC().Format(time.RFC3339), Command: strings.TrimSpace("kafkaedge-bench " + strings.Join(args, " ")),
		Machine: describeMachine(), Cluster: cl.desc, LoadAvgStart: loadAvg(), Config: sc.describe(cfg.valueSize),
	}
	time.Sleep(300 * time.Millisecond) // let the warm-up's garbage settle
	before, err := sm.read(0, nil)
	if err != nil {
		return fmt.Errorf("sample kafkaedge: %w", err)
	}
	rep.Before = before
	prog.note("soak: %s, %d connections living %s-%s, %d req/s, %d partitions, producer %d records/s; kafkaedge pid %d, metrics %s",
		sc.duration, sc.conns, sc.lifeMin, sc.lifeMax, sc.rate, sc.partitions, sc.produceRate, t.srv.cmd.Process.Pid, t.srv.metrics)

	s := newSoakRun(sc, t.url, topic)
	pctx, pcancel := context.WithCancel(ctx)
	defer pcancel()
	prodDone := make(chan error, 1)
	go func() { prodDone <- b.produceFor(pctx, topic, parts, sc.produceRate) }()
	self0, _ := readProc(os.Getpid())
	s.start = time.Now()
	sm.last = soakSample{T: 0}
	var wg sync.WaitGroup
	for i := range sc.conns {
		wg.Go(func() { s.worker(i) })
	}
	n := int(sc.duration / sc.sample)
	every := max(1, int(10*time.Second/sc.sample)) // progress lines about every 10s
	tick := time.NewTimer(sc.sample)
	for k := 1; k <= n; k++ {
		tick.Reset(time.Until(s.start.Add(time.Duration(k) * sc.sample)))
		select {
		case <-ctx.Done():
		case <-tick.C:
		}
		if ctx.Err() != nil {
			break
		}
		x, err := sm.read(time.Since(s.start).Seconds(), s)
		if err != nil {
			s.fail(errSampler, err)
		}
		if err := t.srv.alive(); err != nil {
			s.fail(errNodeCrash, err)
			break
		}
		rep.Samples = append(rep.Samples, x)
		if k%every == 0 || k == n {
			prog.note("soak %6.0fs/%.0fs  conns %d (node %s)  opened %d  %s req/s  errors %d  RSS %s MiB  goroutines %s  fds %s  load %s",
				x.T, sc.duration.Seconds(), x.ClientConns, num(x.WSConns, 0), x.Opened, num(x.ReqPerSec, 0), x.Errors,
				num(x.RSSMiB, 1), num(x.Goroutines, 0), num(x.FDs, 0), num(x.Load1, 1))
		}
	}
	tick.Stop()
	close(s.done)
	wg.Wait()
	elapsed := time.Since(s.start)
	self1, _ := readProc(os.Getpid())
	pcancel()
	if err := <-prodDone; err != nil {
		s.fail(errProducer, err)
	}
	// The clients are gone: the node's connections must drain to none.
	var after soakSample
	for deadline := time.Now().Add(10 * time.Second); ; {
		after, _ = sm.read(time.Since(s.start).Seconds(), nil)
		if (after.NodeConns == 0 && after.WSConns == 0) || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	after.LiveMiB, rep.IdleGCAfter = -1, -1 // the live heap of a GC with no client left, if any
	if sc.idleGC > 0 && after.NodeConns == 0 {
		// The second collection with no client left (what sync.Pool held
		// survives the first) tells whether the connections left anything
		// live behind.
		prog.note("soak: the clients left; waiting up to %s for kafkaedge's next two garbage collections", sc.idleGC)
		n0, _ := gc.last()
		for deadline := time.Now().Add(sc.idleGC); ctx.Err() == nil && time.Now().Before(deadline); {
			if n, _ := gc.last(); n > n0+1 {
				break
			}
			time.Sleep(500 * time.Millisecond)
		}
		if n, live := gc.last(); n > n0+1 {
			after.GCs, after.LiveMiB = n, live
			rep.IdleGCAfter = time.Since(s.start).Seconds() - after.T
		}
	}
	if err := t.srv.alive(); err != nil {
		s.fail(errNodeCrash, err)
	}
	rep.After = after
	rep.LoadAvgEnd = loadAvg()
	rep.Totals = s.totals(elapsed)
	if self0.valid && self1.valid {
		rep.Totals.BenchCPU = (self1.CPU - self0.CPU).Seconds()
	}
	if len(rep.Samples) > 0 && before.NodeCPU >= 0 {
		rep.Totals.NodeCPU = rep.Samples[len(rep.Samples)-1].NodeCPU - before.NodeCPU
	}
	rep.Verdict = soakVerdictOf(rep.Samples, rep.Before, rep.After, sc, rep.Totals.Errors)
	prog.close()

	printSoak(stdout, rep)
	if err := os.MkdirAll(cfg.out, 0o755); err != nil {
		return fmt.Errorf("results directory: %w", err)
	}
	jsonPath, svgPath := filepath.Join(cfg.out, "soak.json"), filepath.Join(cfg.out, "soak.svg")
	if err := writeJSON(jsonPath, rep); err != nil {
		return err
	}
	if err := os.WriteFile(svgPath, renderSoakSVG(rep), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", svgPath, err)
	}
	fmt.Fprintf(stdout, "\nwrote %s and %s (%.0fs in all, %s, %d CPUs)\n", jsonPath, svgPath,
		time.Since(started).Seconds(), runtime.Version(), runtime.NumCPU())
	if err := ctx.Err(); err != nil {
		return err
	}
	if !rep.Verdict.OK {
		return errors.New("soak: " + rep.Verdict.Summary)
	}
	return nil
}

// totals sums up the clients' counters after the soak.
func (s *soakRun) totals(elapsed time.Duration) soakTotals {
	t := soakTotals{Seconds: elapsed.Seconds(), Opened: s.opened.Load(), ClosedHandshake: s.graceful.Load(),
		ClosedAbrupt: s.abrupt.Load(), Fetches: s.answered[kindFetch].Load(), ListOffsets: s.answered[kindList].Load(),
		Pings: s.answered[kindPing].Load(), Messages: s.l.msgs.Load(), Errors: s.nerrs.Load(), ErrorsByClass: s.errorCounts(),
		NodeCPU: -1, BenchCPU: -1}
	t.Requests = t.Fetches + t.ListOffsets + t.Pings
	t.ReqPerSec = float64(t.Requests) / max(t.Seconds, 1e-9)
	t.P50Ms, t.P99Ms, t.MaxMs = s.l.percentiles()
	return t
}
