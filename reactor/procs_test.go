package reactor

import (
	"context"
	"runtime"
	"strings"
	"testing"
	"time"
)

// countPollers returns how many goroutines of the process are inside gnet's
// Poller.Polling: the event loops and acceptors of the running engines,
// each of which holds a P while it waits in epoll_wait.
func countPollers() int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	return strings.Count(string(buf), "/gnet/v2/pkg/netpoll.(*Poller).Polling(")
}

// startPolling starts a server with loops event loops and sends a ping
// through one connection per loop (gnet hands connections to the loops
// round-robin), so that every loop and the acceptor have run their poller.
func startPolling(t *testing.T, loops int) *Server {
	t.Helper()
	s := startServer(t, Config{Loops: loops}, deadRoute("/kafka"))
	for i := range loops {
		c := dialWS(t, s, "/kafka")
		if resp := c.roundTrip(pingReq(int64(i), "")); resp.GetSequence() != int64(i) {
			t.Fatalf("ping %d: %v", i, resp)
		}
	}
	return s
}

// TestLoopsLeaveProcs is the regression test of issue 19 (answers waiting
// milliseconds at light load with more than one loop). The cause was that
// every goroutine gnet parks in epoll_wait holds one of GOMAXPROCS' Ps, and
// with as many loops as Ps (the default, one per CPU) no P was left idle:
// no thread waited in Go's netpoller, so a Kafka answer was noticed only by
// sysmon's poll every 10 ms. The test counts those goroutines in the stacks
// of the live process, without timing anything, and checks that while
// servers run GOMAXPROCS leaves the Go code the Ps it had before they
// started. Before the fix, with 2 Ps and 2 loops: 3 pollers, 2 Ps, none
// left.
func TestLoopsLeaveProcs(t *testing.T) {
	waitFor(t, "the engines of earlier tests to stop", func() bool { return countPollers() == 0 })
	base := runtime.GOMAXPROCS(0)
	loops := max(base, 2) // as many loops as Ps, or more: the setting that starved the Go code
	check := func(servers int) {
		t.Helper()
		n, procs := countPollers(), runtime.GOMAXPROCS(0)
		if want := servers * pollers(loops); n != want {
			t.Fatalf("%d goroutines in gnet's pollers with %d servers of %d loops, want %d (pollers() no longer matches gnet)",
				n, servers, loops, want)
		}
		if procs-n < base {
			t.Fatalf("GOMAXPROCS %d with %d goroutines holding a P in epoll_wait leaves %d Ps for the Go code, want %d",
				procs, n, procs-n, base)
		}
	}
	s1 := startPolling(t, loops)
	check(1)
	s2 := startPolling(t, loops) // servers add up
	check(2)
	shutdown := func(s *Server) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Fatalf("Shutdown: %v", err)
		}
	}
	shutdown(s2)
	if got, want := runtime.GOMAXPROCS(0), base+pollers(loops); got != want {
		t.Fatalf("GOMAXPROCS %d after one of two servers stopped, want %d", got, want)
	}
	check(1)
	shutdown(s1)
	if got := runtime.GOMAXPROCS(0); got != base {
		t.Fatalf("GOMAXPROCS %d after the servers stopped, want %d as before", got, base)
	}
}

// TestReserveProcs checks the reservation's arithmetic, including a change
// of GOMAXPROCS by someone else while it is held.
func TestReserveProcs(t *testing.T) {
	waitFor(t, "the engines of earlier tests to stop", func() bool { return countPollers() == 0 })
	base := runtime.GOMAXPROCS(0)
	defer runtime.GOMAXPROCS(base)
	r1 := reserveProcs(3)
	r2 := reserveProcs(2)
	if got := runtime.GOMAXPROCS(0); got != base+5 {
		t.Fatalf("GOMAXPROCS %d with 3+2 reserved, want %d", got, base+5)
	}
	r1()
	r1() // idempotent
	if got := runtime.GOMAXPROCS(0); got != base+2 {
		t.Fatalf("GOMAXPROCS %d with 2 reserved, want %d", got, base+2)
	}
	runtime.GOMAXPROCS(base + 2 + 4) // an operator raises it: the Go code gets 4 more
	r2()
	if got := runtime.GOMAXPROCS(0); got != base+4 {
		t.Fatalf("GOMAXPROCS %d after the last release, want %d (the new base)", got, base+4)
	}
}
