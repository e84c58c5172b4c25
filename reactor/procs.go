package reactor

import (
	"runtime"
	"sync"
)

// gnet's event loops, and its acceptor, wait for I/O in epoll_wait through
// an ordinary Go syscall. To the Go scheduler a goroutine in a syscall still
// holds its P (one of GOMAXPROCS) until sysmon retakes it, and sysmon only
// retakes a P whose syscall it has seen last a whole sysmon tick (20 us,
// backing off to 10 ms when the process is quiet): a loop woken every few
// milliseconds keeps its P. With as many pollers as Ps, no P is ever idle,
// so no thread waits in Go's own netpoller, and the Kafka connections
// (plain net.Conns) are found readable only by sysmon's forced poll, every
// 10 ms; the goroutine made runnable then waits again for a loop to yield
// its P. Answers at light load waited milliseconds for that, not for their
// loop (docs/architecture.md, "The event loops and the Go scheduler").
//
// A running Server therefore adds one P per goroutine gnet parks in
// epoll_wait to GOMAXPROCS, so that the Go code (Kafka goroutines, the
// netpoller, timers) keeps the Ps it had whatever the loops do.

// pollers is how many goroutines a gnet engine with loops event loops parks
// in epoll_wait: one per loop and the acceptor (the engine runs without
// SO_REUSEPORT, so one loop accepts and hands sockets to the others).
func pollers(loops int) int { return loops + 1 }

// procs is the process-wide GOMAXPROCS reservation of the running servers.
var procs struct {
	mu    sync.Mutex
	base  int // GOMAXPROCS for the Go code, as found before the first reservation
	extra int // Ps reserved by the running servers
}

// reserveProcs raises GOMAXPROCS by n until release is called. Servers
// starting and stopping concurrently add up; when the last one releases,
// GOMAXPROCS is back to what it was. A change of GOMAXPROCS by someone else
// in the meantime is taken as the new base.
func reserveProcs(n int) (release func()) {
	procs.mu.Lock()
	defer procs.mu.Unlock()
	adjustProcs(n)
	var once sync.Once
	return func() {
		once.Do(func() {
			procs.mu.Lock()
			defer procs.mu.Unlock()
			adjustProcs(-n)
		})
	}
}

// adjustProcs adds delta to the reservation and applies it. Called with
// procs.mu held.
func adjustProcs(delta int) {
	cur := runtime.GOMAXPROCS(0)
	if procs.extra == 0 || cur != procs.base+procs.extra {
		procs.base = max(cur-procs.extra, 1)
	}
	procs.extra += delta
	if want := procs.base + procs.extra; want != cur {
		runtime.GOMAXPROCS(want)
	}
}

// baseProcs is GOMAXPROCS without the running servers' reservations: the
// Ps the Go code has, which is one per CPU the process may use unless the
// program or $GOMAXPROCS says otherwise.
func baseProcs() int {
	procs.mu.Lock()
	defer procs.mu.Unlock()
	if procs.extra == 0 {
		return runtime.GOMAXPROCS(0)
	}
	return procs.base
}
