package reactor

import (
	"cmp"
	"math/bits"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/gobwas/ws"
)

// limiter caps what the connections' requests take of a shared resource:
// Kafka calls, one limiter for the whole node (MaxInflightTotal) and one
// per cluster (MaxInflightCluster), so that a cluster whose brokers do not
// answer can hold only its own share; and bytes, the node's memory budget
// (MemoryBudget). A connection that finds too little free holds its
// request, pauses, and is woken, in the order the connections came, when
// enough is released.
type limiter struct {
	mu      sync.Mutex
	used    int64
	max     int64
	unit    int64 // what one waiter typically needs: how many a release wakes
	waiters []waiting
	full    atomic.Bool // used >= max, for the readers that take nothing (subscriptions' pushes)
}

// waiting is a connection in a limiter's line, and since when its request
// has waited (Server.now() when it was read).
type waiting struct {
	st    *connState
	since int64
}

// newLimiter returns a limiter of max, whose requests take about unit.
func newLimiter(limit, unit int64) *limiter {
	return &limiter{max: limit, unit: max(unit, 1)}
}

// acquire takes n for a request of st read at since, or queues st to be
// woken when enough is released. It takes n when it fits, and when nothing
// is taken at all, so that a request larger than max still runs, alone. st
// waits on one limiter at a time.
func (l *limiter) acquire(st *connState, n, since int64) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.used+n <= l.max || l.used == 0 {
		l.used += n
		l.full.Store(l.used >= l.max)
		return true
	}
	if st.slotQueue.Load() != l {
		st.slotQueue.Store(l)
		l.waiters = append(l.waiters, waiting{st, since})
	}
	return false
}

// setMax changes what the limiter holds and wakes whom a larger max serves.
func (l *limiter) setMax(n int64) {
	l.mu.Lock()
	l.max = n
	l.full.Store(l.used >= l.max)
	l.mu.Unlock()
	l.wakeIfFree()
}

// add takes n without a check: bytes that are in memory already.
func (l *limiter) add(n int64) {
	l.mu.Lock()
	l.used += n
	l.full.Store(l.used >= l.max)
	l.mu.Unlock()
}

// release gives n back and wakes waiting connections.
func (l *limiter) release(n int64) {
	if n == 0 {
		return
	}
	l.mu.Lock()
	l.used -= n
	l.full.Store(l.used >= l.max)
	l.mu.Unlock()
	l.wakeIfFree()
}

// wakeIfFree wakes as many waiting connections, first in line first, as
// what is free can serve (one when nothing is in use). A woken connection
// that no longer needs it leaves it free, so the periodic sweep calls this
// too.
func (l *limiter) wakeIfFree() {
	l.mu.Lock()
	n := int(min((l.max-l.used)/l.unit, int64(len(l.waiters))))
	if n <= 0 && l.used == 0 && len(l.waiters) > 0 {
		n = 1
	}
	if n <= 0 {
		l.mu.Unlock()
		return
	}
	woken := make([]*connState, n)
	for i, w := range l.waiters[:n] {
		woken[i] = w.st
		w.st.slotQueue.Store(nil)
	}
	rest := copy(l.waiters, l.waiters[n:])
	clear(l.waiters[rest:])
	l.waiters = l.waiters[:rest]
	l.mu.Unlock()
	for _, st := range woken {
		_ = st.c.Wake(nil)
	}
}

// pressure reports how much more than max the waiting connections need
// (about unit each) beyond what is in use, when one of them has waited
// since before; 0 when none waits that long.
func (l *limiter) pressure(before int64) int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, w := range l.waiters {
		if w.since <= before {
			return max(l.used+int64(len(l.waiters))*l.unit-l.max, 1)
		}
	}
	return 0
}

// forget drops a closed connection from the waiters of the limiter it
// waits on, if any. Called on the connection's loop, the only goroutine
// that queues it, so the limiter cannot change under it.
func forget(st *connState) {
	l := st.slotQueue.Load()
	if l == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if st.slotQueue.Load() != l {
		return
	}
	st.slotQueue.Store(nil)
	for i, w := range l.waiters {
		if w.st == st {
			l.waiters = slices.Delete(l.waiters, i, i+1)
			break
		}
	}
}

// acquireSlots takes a slot of the route's cluster, then one of the node.
// Without both it takes neither and st waits on the one that was full.
func (st *connState) acquireSlots(since int64) bool {
	cl := st.route.cl.slots
	if !cl.acquire(st, 1, since) {
		st.s.obs.Backpressure(BackpressureClusterSlotWait)
		return false
	}
	if !st.s.slots.acquire(st, 1, since) {
		cl.release(1)
		st.s.obs.Backpressure(BackpressureSlotWait)
		return false
	}
	return true
}

// clusterLimits are a cluster's shares of the node's limits: its Kafka calls
// (MaxInflightCluster) and its part of the memory budget (as large a part of
// MemoryBudget as MaxInflightCluster is of MaxInflightTotal), shared by the
// routes of one Kafka client, so that a cluster whose calls hang holds only
// its own share of either.
type clusterLimits struct {
	slots, mem *limiter
}

// newClusterLimits returns the limiters of a new cluster; reshare sizes them.
func (s *Server) newClusterLimits() *clusterLimits {
	return &clusterLimits{slots: newLimiter(1, 1), mem: newLimiter(1, s.fetchMem)}
}

// maxShares is how many ways the node's limits are divided among its
// clusters at most, when MaxInflightCluster is 0.
const maxShares = 4

// reshare sizes the shares of the clusters of t: MaxInflightCluster calls
// each, or, when it is 0, the node's calls divided among the clusters, at
// most maxShares ways (all of them with one cluster, a quarter each with
// four or more); the memory budget in the same proportion. Called with
// routesMu held, after t is stored.
func (s *Server) reshare(t *routeTable) {
	distinct := map[*clusterLimits]struct{}{}
	for _, rt := range t.byURI {
		distinct[rt.cl] = struct{}{}
	}
	calls := s.cfg.MaxInflightCluster
	if calls == 0 {
		calls = max(s.cfg.MaxInflightTotal/min(max(len(distinct), 1), maxShares), 1)
	}
	b, total := s.cfg.MemoryBudget, int64(s.cfg.MaxInflightTotal)
	mem := max(b/total*int64(calls)+b%total*int64(calls)/total, s.fetchMem+s.callMem)
	for cl := range distinct {
		cl.slots.setMax(int64(calls))
		cl.mem.setMax(mem)
	}
}

// takeMem takes n of the memory budget for a request of st read at since:
// of its cluster's share, then of the node's. Without both it takes neither
// and st waits on the one that was full.
func (st *connState) takeMem(n, since int64) bool {
	cl := st.route.cl.mem
	if !cl.acquire(st, n, since) {
		st.s.obs.Backpressure(BackpressureMemoryWait)
		return false
	}
	if !st.s.mem.acquire(st, n, since) {
		cl.release(n)
		st.s.obs.Backpressure(BackpressureMemoryWait)
		return false
	}
	return true
}

// giveMem gives n back to the node's memory budget and to cl's share.
func (s *Server) giveMem(cl *clusterLimits, n int64) {
	if n == 0 {
		return
	}
	s.mem.release(n)
	cl.mem.release(n)
}

// pow2 is the smallest power of two >= n (n >= 1): the capacity gnet's
// pooled buffers give a copy of n bytes.
func pow2(n int) int64 {
	if n <= 1 {
		return 1
	}
	return 1 << bits.Len64(uint64(n-1))
}

// The memory budget (Config.MemoryBudget) counts, node-wide:
//   - fetchMem for each fetch request from its dispatch until its answer
//     was handed to the socket or to gnet's outbound buffer: the share of
//     the encoded answer that the request holds;
//   - callMem for each Kafka fetch call while it runs: its response and
//     decoded records;
//   - for each connection whose outbound buffer is not empty, the
//     capacity of the copies gnet made of its answers (memHeld), counted
//     when an answer went to the buffer and given back as the buffer
//     drains.
// A fetch is dispatched only when its share fits; otherwise the request is
// held until memory is released, in the order the connections came. When
// connections have waited for a full sweep, the sweep closes the
// connections that hold the most and did not drain since the sweep before
// (the worst offenders first), until what they held covers the need.

// holdAnswer counts the copy gnet made of j's bytes, if any, once j was
// written: called from the write callback on st's loop.
func (st *connState) holdAnswer(j *writeJob) {
	if st.c.OutboundBuffered() == 0 {
		st.releaseHeld()
		return
	}
	n := pow2(len(j.own))
	if rest := j.n - len(j.own); rest > 0 {
		n += pow2(rest)
	}
	st.memHeld += n
	st.s.mem.add(n)
	st.route.cl.mem.add(n)
	st.loop.hold(st)
}

// releaseHeld gives back what st holds of the budget. Called on the loop.
func (st *connState) releaseHeld() {
	if st.memHeld == 0 {
		return
	}
	st.s.giveMem(st.route.cl, st.memHeld)
	st.memHeld = 0
	st.loop.unhold(st)
}

// recheckHeld shrinks what st holds to what its outbound buffer can still
// occupy: twice its bytes (a copy's capacity is at most twice its length)
// plus one whole answer (the first copy may be mostly sent). Called on the
// loop by the sweeps.
func (st *connState) recheckHeld() {
	b := st.c.OutboundBuffered()
	if b == 0 {
		st.releaseHeld()
		return
	}
	if bound := 2*int64(b) + st.s.fetchMem; st.memHeld > bound {
		st.s.giveMem(st.route.cl, st.memHeld-bound)
		st.memHeld = bound
	}
}

// hold adds st to the connections whose held memory the sweeps recheck.
func (ls *loopState) hold(st *connState) {
	if _, ok := ls.holding[st]; !ok {
		ls.holding[st] = struct{}{}
		ls.holdN.Add(1)
	}
}

// unhold removes st from them.
func (ls *loopState) unhold(st *connState) {
	if _, ok := ls.holding[st]; ok {
		delete(ls.holding, st)
		ls.holdN.Add(-1)
	}
}

// closeHoarders runs on a full sweep of ls: when connections have waited
// since before the previous full sweep for the node's memory budget or for
// a cluster's share of it, it closes the connections of ls that hold memory
// of that budget or share and did not drain since the previous full sweep,
// those holding the most first, until they held the loop's part of what
// the waiters need. Every connection's buffered bytes are noted for the
// next sweep.
func (s *Server) closeHoarders(ls *loopState, now int64) {
	before := now - int64(s.sweepEvery)
	loops := int64(max(s.cfg.Loops, 1))
	part := func(need int64) int64 { return (need + loops - 1) / loops }
	node := part(s.mem.pressure(before))
	clusters := map[*clusterLimits]int64{}
	pressed := node > 0
	for _, rt := range s.routes.Load().byURI {
		if _, seen := clusters[rt.cl]; !seen {
			clusters[rt.cl] = part(rt.cl.mem.pressure(before))
			pressed = pressed || clusters[rt.cl] > 0
		}
	}
	type hoarder struct {
		st   *connState
		held int64
	}
	var stuck []hoarder
	for st := range ls.holding {
		b := int64(st.c.OutboundBuffered())
		if pressed && st.phase == phaseOpen && st.sweptBuffered > 0 && b >= st.sweptBuffered {
			stuck = append(stuck, hoarder{st, st.memHeld})
		}
		st.sweptBuffered = b
	}
	slices.SortFunc(stuck, func(a, b hoarder) int { return cmp.Compare(b.held, a.held) })
	for _, h := range stuck {
		cl := h.st.route.cl
		if node <= 0 && clusters[cl] <= 0 {
			continue
		}
		node -= h.held
		clusters[cl] -= h.held
		s.obs.Backpressure(BackpressureMemoryClosed)
		s.loopLog.Warn("closing a client that holds memory without reading, for clients waiting for the memory budget",
			"remote", h.st.c.RemoteAddr(), "held", h.held, "queued", h.st.queued(), "budget", s.cfg.MemoryBudget)
		h.st.goAway(ws.StatusPolicyViolation, "client too slow")
	}
}
