// Package reactor is kafkaedge's WebSocket pub/sub server: gnet event loops
// accept connections, parse the upgrade and frames in place, and dispatch the
// APISIX pub/sub requests to Kafka. The loops only parse and dispatch; every
// Kafka call runs on its own goroutine and its answer is written back with
// gnet's asynchronous writes, with per-connection backpressure and fan-out of
// identical fetches.
package reactor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gobwas/ws"
	"github.com/panjf2000/gnet/v2"

	"github.com/kafkaedge/kafkaedge/kafkawire"
	"github.com/kafkaedge/kafkaedge/proto/pubsub"
)

// Sentinel errors of Server methods.
var (
	// ErrStarted is returned by Start on a server that was already started.
	ErrStarted = errors.New("reactor: server already started")
	// ErrShutdown is returned by Start and PutRoute after Shutdown.
	ErrShutdown = errors.New("reactor: server shut down")
)

// A connection may have fetchesPerOutbound fetches in flight while its
// queue is empty: each reserves an eighth of MaxOutbound for its answer,
// which is encoded up to that size (at least minBody; a single message
// larger than that is still sent whole).
const (
	fetchesPerOutbound = 8
	minBody            = 16 << 10
)

// shutdownReserve is the most of Shutdown's time kept for cancelling the
// Kafka calls still running and closing the connections.
const shutdownReserve = time.Second

// tickMax is the longest pause between two OnTick calls; connections paused
// on a full outbound queue are re-checked this often.
const tickMax = 25 * time.Millisecond

// Server is a WebSocket pub/sub server. Create it with New, add routes with
// PutRoute, start it with Start and stop it with Shutdown.
type Server struct {
	cfg     Config
	log     *slog.Logger // for the callers' goroutines
	loopLog *slog.Logger // for the event loops: never blocks (logs)
	logs    *logQueue
	obs     Observer
	epoch   time.Time // base of the monotonic now()

	started  atomic.Bool
	booted   chan struct{} // closed by OnBoot
	runDone  chan struct{} // closed when gnet.Run returned
	runErr   error         // gnet.Run's result, read after runDone
	addr     string        // bound address, set before booted is closed
	draining atomic.Bool   // Shutdown began: refuse connections and new requests
	stopping atomic.Bool   // onTick asks gnet to stop the engine

	baseCtx    context.Context // parent of every Kafka call
	cancelBase context.CancelFunc

	conns atomic.Int64 // open connections
	calls atomic.Int64 // Kafka calls running (goroutines)
	slots *limiter     // node-wide cap of Kafka calls
	mem   *limiter     // the memory budget, in bytes

	fetchMem int64 // what a fetch request takes of the memory budget
	callMem  int64 // what a Kafka fetch call takes of it

	loopsMu sync.Mutex
	loops   map[gnet.EventLoop]*loopState

	routesMu sync.Mutex                 // serializes route changes; never taken on a loop
	routes   atomic.Pointer[routeTable] // read on the loops without locks
	acquire  acquireFunc                // holds of the routes' Kafka clients
	uris     uriConns                   // upgraded connections per route URI, for Observer.RouteRemoved

	fanMu sync.Mutex // guards fan; held only for map operations
	fan   map[callKey]*kafkaCall

	tails    tailSet                    // the partitions subscriptions read (tail.go)
	subsMu   sync.Mutex                 // guards subs
	subs     map[*subscription]struct{} // the node's subscriptions that started
	catchSem chan struct{}              // bounds the subscribers' own fetches (maxCatchUps)
	catchUps atomic.Int64               // those running or waiting
	groups   sync.WaitGroup             // the group subscriptions' goroutines: their members' watchers, commits and leaves (group.go)
	bgDone   chan struct{}              // closed when refreshSubs returned

	maxBody    int   // cap of one encoded fetch body, an eighth of MaxOutbound
	pushWindow int64 // a connection holding more is pushed nothing more (subscribe.go): maxBody
	sweepEvery time.Duration
	lastSweep  atomic.Int64

	stats counters
}

// New validates cfg (Config.Validate), applies its defaults and returns a
// server that is not yet listening.
func New(cfg Config) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	cfg.Addr = cfg.listenAddr()
	log := cfg.Logger.With("component", "reactor")
	logs := newLogQueue(log)
	s := &Server{
		cfg:      cfg,
		log:      log,
		loopLog:  slog.New(loopHandler{log.Handler(), logs}),
		logs:     logs,
		obs:      cfg.Observer,
		epoch:    time.Now(),
		booted:   make(chan struct{}),
		runDone:  make(chan struct{}),
		loops:    make(map[gnet.EventLoop]*loopState),
		acquire:  acquireFrom(new(kafkawire.ClientSet)),
		fan:      make(map[callKey]*kafkaCall),
		catchSem: make(chan struct{}, maxCatchUps),
		bgDone:   make(chan struct{}),
	}
	s.baseCtx, s.cancelBase = context.WithCancel(context.Background())
	s.slots = newLimiter(int64(cfg.MaxInflightTotal), 1)
	s.routes.Store(&routeTable{})
	s.maxBody = max(cfg.MaxOutbound/fetchesPerOutbound, minBody)
	s.cfg.MaxPushBytes = min(s.cfg.MaxPushBytes, s.maxBody)
	s.pushWindow = int64(s.maxBody)
	// An answer's body is at most maxBody (a single larger message aside)
	// and gnet copies it into a buffer of the next power of two; its
	// header is a small copy of its own. A call holds a Kafka response of
	// up to maxBody per partition and its decoded records.
	s.fetchMem = pow2(s.maxBody) + 256
	s.callMem = 2 * pow2(s.maxBody)
	s.mem = newLimiter(cfg.MemoryBudget, s.fetchMem)
	s.sweepEvery = min(cfg.HandshakeTimeout, cfg.IdleTimeout, cfg.SlowTimeout) / 4
	s.sweepEvery = max(s.sweepEvery, 5*time.Millisecond)
	s.sweepEvery = min(s.sweepEvery, time.Second)
	return s, nil
}

// Start binds the listening socket and starts the event loops in the
// background. It returns once the server accepts connections, or the error
// that prevented it.
//
// Until the event loops have stopped, GOMAXPROCS is raised by Loops+1: each
// loop and gnet's acceptor hold a P while they wait in epoll_wait, and
// without more Ps the Kafka goroutines and Go's netpoller would wait for
// them (docs/architecture.md, "The event loops and the Go scheduler").
func (s *Server) Start() error {
	if s.draining.Load() {
		return ErrShutdown
	}
	if !s.started.CompareAndSwap(false, true) {
		return ErrStarted
	}
	opts := []gnet.Option{
		gnet.WithMulticore(true),
		gnet.WithNumEventLoop(s.cfg.Loops),
		gnet.WithTicker(true),
		gnet.WithTCPKeepAlive(time.Minute),
		gnet.WithReuseAddr(true),
		gnet.WithLogger(gnetLogger{s.loopLog}),
	}
	// The loops and the acceptor each hold a P while they wait in
	// epoll_wait; the reservation keeps GOMAXPROCS' other Ps for the Go
	// code for as long as the engine runs (procs.go).
	release := reserveProcs(pollers(s.cfg.Loops))
	s.logs.start()
	go func() {
		defer close(s.bgDone)
		s.refreshSubs()
	}()
	go func() {
		s.runErr = gnet.Run(&events{s: s}, "tcp://"+s.cfg.Addr, opts...)
		release()
		s.logs.stopAndFlush()
		close(s.runDone)
	}()
	select {
	case <-s.booted:
		s.log.Info("listening", "addr", s.addr, "loops", s.cfg.Loops)
		return nil
	case <-s.runDone:
		if s.runErr == nil {
			return fmt.Errorf("reactor: listen on %s: engine stopped before it booted", s.cfg.Addr)
		}
		return fmt.Errorf("reactor: listen on %s: %w", s.cfg.Addr, s.runErr)
	}
}

// MemoryBudget returns the node's memory budget in bytes: Config.MemoryBudget,
// or its default.
func (s *Server) MemoryBudget() int64 { return s.cfg.MemoryBudget }

// Addr returns the address the server listens on ("127.0.0.1:40123" when the
// configured port was 0), or the configured address before Start.
func (s *Server) Addr() string {
	select {
	case <-s.booted:
		return s.addr
	default:
		return s.cfg.Addr
	}
}

// Serving reports whether the server is listening and accepting
// connections: it was started and Shutdown has not begun.
func (s *Server) Serving() bool {
	if !s.started.Load() || s.draining.Load() {
		return false
	}
	select {
	case <-s.runDone:
		return false
	default:
	}
	select {
	case <-s.booted:
		return true
	default:
		return false
	}
}

// Shutdown stops the server: it refuses new connections and new requests,
// waits for the Kafka requests in flight to be answered, closes every
// connection with 1001 (going away), stops the event loops and closes the
// Kafka clients. If the calls are still running when only a tenth of ctx's
// time (at most a second) is left, they are cancelled (their requests are
// answered with an error), the rest of the shutdown still happens and ctx's
// error is returned.
func (s *Server) Shutdown(ctx context.Context) error {
	if !s.draining.CompareAndSwap(false, true) {
		select {
		case <-s.runDoneOrNil():
			return nil
		case <-ctx.Done():
			return fmt.Errorf("reactor: shutdown: %w", ctx.Err())
		}
	}
	var ctxErr error
	if s.started.Load() {
		// Keep a little of ctx's time for the end: if the calls in flight
		// are not done by then, they are cancelled, answer with an error,
		// and every client still gets its close frame.
		callsCtx, cancel := ctx, context.CancelFunc(func() {})
		if dl, ok := ctx.Deadline(); ok {
			reserve := min(time.Until(dl)/10, shutdownReserve)
			callsCtx, cancel = context.WithDeadline(ctx, dl.Add(-reserve))
		}
		ctxErr = s.waitCalls(callsCtx)
		cancel()
		if ctxErr != nil {
			s.cancelBase()
			_ = s.waitCalls(ctx)
		}
		s.closeAllConns(ctx)
		s.stopping.Store(true)
		select {
		case <-s.runDone:
		case <-ctx.Done():
			ctxErr = ctx.Err()
		}
	}
	s.cancelBase()
	if s.started.Load() {
		<-s.bgDone
	}
	// The group subscriptions ended with their connections: their members
	// leave their groups before the clusters' clients close.
	left := make(chan struct{})
	go func() {
		s.groups.Wait()
		close(left)
	}()
	select {
	case <-left:
	case <-ctx.Done():
		ctxErr = ctx.Err()
	}
	s.closeStreams()
	s.routesMu.Lock()
	routes := s.routes.Swap(&routeTable{})
	s.routesMu.Unlock()
	for _, rt := range routes.byURI {
		rt.release() // the last release of a client closes it
	}
	if ctxErr != nil {
		return fmt.Errorf("reactor: shutdown: %w", ctxErr)
	}
	return nil
}

// runDoneOrNil returns runDone for a started server and a closed channel
// otherwise.
func (s *Server) runDoneOrNil() <-chan struct{} {
	if s.started.Load() {
		return s.runDone
	}
	c := make(chan struct{})
	close(c)
	return c
}

// waitCalls waits until no Kafka call is running or ctx ends.
func (s *Server) waitCalls(ctx context.Context) error {
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for s.calls.Load() > 0 {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
	return nil
}

// closeAllConns closes every connection with 1001 on its loop and waits
// until each loop has done so or ctx ends.
func (s *Server) closeAllConns(ctx context.Context) {
	s.onLoops(ctx, func(ls *loopState) {
		for st := range ls.conns {
			st.goAwaySubs(ws.StatusGoingAway, endDraining)
		}
	})
}

// onLoops runs fn on every event loop that has had a connection and waits
// for all of them, or until ctx ends.
func (s *Server) onLoops(ctx context.Context, fn func(*loopState)) {
	s.loopsMu.Lock()
	loops := make([]*loopState, 0, len(s.loops))
	for _, ls := range s.loops {
		loops = append(loops, ls)
	}
	s.loopsMu.Unlock()
	var wg sync.WaitGroup
	for _, ls := range loops {
		wg.Add(1)
		err := ls.el.Execute(ctx, gnet.RunnableFunc(func(context.Context) error {
			defer wg.Done()
			fn(ls)
			return nil
		}))
		if err != nil {
			wg.Done() // the engine is stopping; its loops close every connection
		}
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
	}
}

// Stats is a snapshot of the server's state and of what it does that no
// Observer event reports. The events (coalesced requests, slot waits,
// closed slow clients, refused connections, ...) are the Observer's.
type Stats struct {
	Conns       int64  // open connections
	KafkaCalls  int64  // Kafka calls running now
	ListOffsets uint64 // ListOffset calls made to Kafka
	Fetches     uint64 // Fetch calls made to Kafka
	LogDropped  uint64 // log lines of the event loops dropped because the Logger fell behind
}

type counters struct {
	listOffsets, fetches atomic.Uint64
}

// Stats returns a snapshot of the server's counters.
func (s *Server) Stats() Stats {
	return Stats{
		Conns:       s.conns.Load(),
		KafkaCalls:  s.calls.Load(),
		ListOffsets: s.stats.listOffsets.Load(),
		Fetches:     s.stats.fetches.Load(),
		LogDropped:  s.logs.dropped.Load(),
	}
}

// now is the monotonic time since the server was created, in nanoseconds.
func (s *Server) now() int64 { return int64(time.Since(s.epoch)) }

// loopState is what one event loop owns. Every field but el is touched only
// on that loop.
type loopState struct {
	el    gnet.EventLoop
	conns map[*connState]struct{}
	over  map[*connState]struct{} // connections whose queued bytes passed MaxOutbound
	overN atomic.Int32            // len(over), read by OnTick to skip idle loops
	// holding are the connections that hold memory of the budget in
	// gnet's outbound buffer (connState.memHeld), rechecked every tick.
	holding map[*connState]struct{}
	holdN   atomic.Int32 // len(holding), read by OnTick
	req     pubsub.Req   // the request being read, aliasing the frame
	out     []byte       // responses produced on the loop, written once per event
	body    []byte       // scratch for one response body
}

// dropOver removes st from the over set.
func (ls *loopState) dropOver(st *connState) {
	if _, ok := ls.over[st]; ok {
		delete(ls.over, st)
		ls.overN.Add(-1)
	}
}

// loopOf returns the state of c's event loop, creating it on first use.
// Called on the loop (OnOpen); the mutex is never held by Kafka goroutines.
func (s *Server) loopOf(c gnet.Conn) *loopState {
	el := c.EventLoop()
	s.loopsMu.Lock()
	defer s.loopsMu.Unlock()
	ls := s.loops[el]
	if ls == nil {
		ls = &loopState{
			el:      el,
			conns:   make(map[*connState]struct{}),
			over:    make(map[*connState]struct{}),
			holding: make(map[*connState]struct{}),
		}
		s.loops[el] = ls
	}
	return ls
}

// onBoot records the engine and the bound address and releases Start.
func (s *Server) onBoot(eng gnet.Engine) gnet.Action {
	s.addr = s.cfg.Addr
	if a, err := boundAddr(eng); err != nil {
		s.loopLog.Warn("reading the bound address", "err", err)
	} else {
		s.addr = a
	}
	close(s.booted)
	return gnet.None
}

// boundAddr returns the listener's address, which tells the port the kernel
// chose for port 0.
func boundAddr(eng gnet.Engine) (string, error) {
	fd, err := eng.Dup()
	if err != nil {
		return "", fmt.Errorf("dup listener: %w", err)
	}
	f := os.NewFile(uintptr(fd), "listener")
	defer f.Close()
	ln, err := net.FileListener(f)
	if err != nil {
		return "", fmt.Errorf("listener from fd: %w", err)
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// onOpen sets up a new connection's state, or refuses it during shutdown or
// at MaxConns.
func (s *Server) onOpen(c gnet.Conn) ([]byte, gnet.Action) {
	if s.draining.Load() {
		s.obs.ConnRejected(RejectDraining)
		return nil, gnet.Close
	}
	if s.conns.Load() >= int64(s.cfg.MaxConns) {
		s.obs.ConnRejected(RejectMaxConns)
		return nil, gnet.Close
	}
	s.conns.Add(1)
	ls := s.loopOf(c)
	now := s.now()
	st := &connState{s: s, c: c, loop: ls, openedAt: now, lastActive: now}
	st.dec.MaxMessage = s.cfg.MaxMessage
	ls.conns[st] = struct{}{}
	c.SetContext(st)
	return nil, gnet.None
}

// onClose forgets a closed connection. Responses still in flight for it are
// dropped by gnet (their write callbacks see the closed connection).
func (s *Server) onClose(c gnet.Conn, err error) gnet.Action {
	st, ok := c.Context().(*connState)
	if !ok {
		return gnet.None
	}
	st.phase = phaseClosed
	delete(st.loop.conns, st)
	st.loop.dropOver(st)
	forget(st)
	st.releaseHeld()
	st.closeSubs()
	s.conns.Add(-1)
	if st.route == nil {
		if s.loopLog.Enabled(context.Background(), slog.LevelDebug) {
			s.loopLog.Debug("connection closed before the upgrade", "remote", c.RemoteAddr(), "err", err)
		}
		return gnet.None
	}
	info := CloseInfo{
		Duration: time.Duration(s.now() - st.openedAt),
		Requests: st.requests,
		BytesOut: st.bytesOut,
		Messages: st.msgsOut,
		Code:     st.closeCode,
		Reason:   st.closeReason,
	}
	if info.Code == 0 {
		info.Code = ws.StatusAbnormalClosure
		info.Reason = "connection lost"
		if err != nil {
			info.Reason = err.Error()
		}
	}
	s.obs.ConnClosed(st.route.r.URI, info)
	s.uris.closed(s, st.route.r.URI)
	if s.loopLog.Enabled(context.Background(), slog.LevelInfo) {
		remote := ""
		if a := c.RemoteAddr(); a != nil {
			remote = a.String()
		}
		s.loopLog.Info("connection closed", "remote", remote, "route", st.route.r.URI,
			"duration", info.Duration, "requests", info.Requests, "bytes_out", info.BytesOut,
			"messages", info.Messages, "code", int(info.Code), "reason", info.Reason)
	}
	return gnet.None
}

// onTraffic handles what arrived on c: the upgrade, then frames.
func (s *Server) onTraffic(c gnet.Conn) gnet.Action {
	st, ok := c.Context().(*connState)
	if !ok {
		return gnet.Close
	}
	return st.onTraffic()
}

// onTick runs on gnet's ticker goroutine. It schedules the sweeps on the
// loops (timeouts, slow clients, drained queues) and stops the engine once
// Shutdown asks for it.
func (s *Server) onTick() (time.Duration, gnet.Action) {
	if s.stopping.Load() {
		return tickMax, gnet.Shutdown
	}
	now := s.now()
	full := now-s.lastSweep.Load() >= int64(s.sweepEvery)
	if full {
		s.lastSweep.Store(now)
		s.slots.wakeIfFree()
		s.mem.wakeIfFree()
		for _, rt := range s.routes.Load().byURI {
			rt.cl.slots.wakeIfFree()
			rt.cl.mem.wakeIfFree()
		}
	}
	s.loopsMu.Lock()
	for _, ls := range s.loops {
		if !full && ls.overN.Load() == 0 && ls.holdN.Load() == 0 {
			continue
		}
		_ = ls.el.Execute(s.baseCtx, gnet.RunnableFunc(func(context.Context) error {
			s.sweep(ls, full)
			return nil
		}))
	}
	s.loopsMu.Unlock()
	return min(tickMax, s.sweepEvery), gnet.None
}

// sweep runs on ls's loop. It resumes connections whose outbound queue has
// drained, closes the ones stuck past SlowTimeout and, on a full sweep, the
// ones past the handshake or idle timeout.
func (s *Server) sweep(ls *loopState, full bool) {
	now := s.now()
	for st := range ls.holding {
		st.recheckHeld()
	}
	if full {
		// Connections that waited for the memory budget since before the
		// previous full sweep: make room.
		s.closeHoarders(ls, now)
	}
	for st := range ls.over {
		if st.phase != phaseOpen {
			ls.dropOver(st)
			continue
		}
		st.outBuffered.Store(int64(st.c.OutboundBuffered()))
		if st.queued() <= s.cfg.MaxOutbound {
			st.resume()
			if !st.over() {
				st.resumeSubs()
			}
			if st.npaused.Load() == 0 {
				ls.dropOver(st)
				st.overSince = 0
				s.obs.Backpressure(BackpressureResumed)
			}
			// Else its subscribers wait for the push window (or the
			// memory budget): it stays in the set, not slow.
			continue
		}
		if now-st.overSince >= int64(s.cfg.SlowTimeout) {
			ls.dropOver(st)
			s.obs.Backpressure(BackpressureSlowClosed)
			s.loopLog.Warn("closing a client that does not read its responses",
				"remote", st.c.RemoteAddr(), "queued", st.queued(), "for", time.Duration(now-st.overSince))
			st.goAway(ws.StatusPolicyViolation, "client too slow")
		}
	}
	if !full {
		return
	}
	for st := range ls.conns {
		switch st.phase {
		case phaseHandshake:
			if now-st.openedAt >= int64(s.cfg.HandshakeTimeout) {
				st.phase = phaseClosing
				s.obs.Upgrade("", 408) // counted as an answered request would be
				_ = st.c.Close()
			}
		case phaseOpen:
			// A connection with a request in flight, or one held for
			// want of a slot or of outbound budget, is waiting, not
			// idle; one with subscriptions is listening.
			if st.inflight == 0 && st.held.cmd == 0 && st.nsubs.Load() == 0 && now-st.lastActive >= int64(s.cfg.IdleTimeout) {
				st.goAway(ws.StatusGoingAway, "idle timeout")
			}
		}
	}
}

// events is the gnet.EventHandler of a Server, kept apart so that gnet's
// callbacks are not part of the Server's API.
type events struct {
	gnet.BuiltinEventEngine
	s *Server
}

func (e *events) OnBoot(eng gnet.Engine) gnet.Action             { return e.s.onBoot(eng) }
func (e *events) OnOpen(c gnet.Conn) ([]byte, gnet.Action)       { return e.s.onOpen(c) }
func (e *events) OnClose(c gnet.Conn, err error) gnet.Action     { return e.s.onClose(c, err) }
func (e *events) OnTraffic(c gnet.Conn) gnet.Action              { return e.s.onTraffic(c) }
func (e *events) OnTick() (delay time.Duration, act gnet.Action) { return e.s.onTick() }
