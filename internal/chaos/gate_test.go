package chaos

import (
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// gate is a TCP proxy in front of a broker's EXTERNAL listener: the
// address the broker advertises to the node. Closing it is "the broker's
// port closed" as the node sees it: new connections are refused (nothing
// listens on the port) and those open are reset, while the broker itself
// runs on, a healthy member and leader of the cluster.
//
// Its port is chosen below the kernel's ephemeral range
// (net.ipv4.ip_local_port_range), not taken from the kernel with port 0:
// the gate must listen on the same port again when it reopens, and a port
// of the ephemeral range, free while the gate is closed, can be given to
// any outgoing connection meanwhile. The kernel never hands out a port
// below that range, and the tests of this repository only ever take ports
// from the kernel, so the port stays free between close and open.
type gate struct {
	port int

	mu     sync.Mutex
	target string // the broker's EXTERNAL listener
	ln     net.Listener
	conns  map[net.Conn]struct{} // both ends of every proxied connection
	wg     sync.WaitGroup        // the accept loop and the copiers
}

// newGate opens a gate on a free port below the ephemeral range.
func newGate() (*gate, error) {
	low := 32768
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if v, err := strconv.Atoi(f[0]); err == nil {
				low = v
			}
		}
	}
	from := max(1024, low-16384)
	if low-from < 1024 {
		return nil, fmt.Errorf("gate: the ephemeral range starts at %d: no room below it", low)
	}
	var last error
	for range 100 {
		g := &gate{port: from + rand.IntN(low-from), conns: map[net.Conn]struct{}{}}
		if last = g.open(); last == nil {
			return g, nil
		}
	}
	return nil, fmt.Errorf("gate: no free port in %d-%d: %w", from, low-1, last)
}

// addr is the gate's address, which the broker advertises.
func (g *gate) addr() string { return "127.0.0.1:" + strconv.Itoa(g.port) }

// setTarget points the gate at the broker's listener.
func (g *gate) setTarget(addr string) {
	g.mu.Lock()
	g.target = addr
	g.mu.Unlock()
}

// open listens on the gate's port (again).
func (g *gate) open() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.ln != nil {
		return errors.New("gate: open already")
	}
	ln, err := net.Listen("tcp", g.addr())
	if err != nil {
		return err
	}
	g.ln = ln
	g.wg.Go(func() { g.accept(ln) })
	return nil
}

// close stops listening and resets every proxied connection (SO_LINGER 0:
// the node reads ECONNRESET, as from a port that closed).
func (g *gate) close() {
	g.mu.Lock()
	ln := g.ln
	g.ln = nil
	conns := g.conns
	g.conns = map[net.Conn]struct{}{}
	g.mu.Unlock()
	if ln != nil {
		ln.Close()
	}
	// Every socket is set to reset before any is closed: closing one ends
	// the copier of its peer, which closes the other end.
	for c := range conns {
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetLinger(0)
		}
	}
	for c := range conns {
		c.Close()
	}
	g.wg.Wait()
}

func (g *gate) accept(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		g.wg.Go(func() { g.serve(ln, c) })
	}
}

// serve connects c to the target and copies both ways until either ends.
func (g *gate) serve(ln net.Listener, c net.Conn) {
	g.mu.Lock()
	target := g.target
	g.mu.Unlock()
	b, err := net.DialTimeout("tcp", target, 5*time.Second)
	if err != nil {
		c.Close()
		return
	}
	g.mu.Lock()
	if g.ln != ln { // closed meanwhile
		g.mu.Unlock()
		c.Close()
		b.Close()
		return
	}
	g.conns[c], g.conns[b] = struct{}{}, struct{}{}
	g.mu.Unlock()
	var once sync.Once
	end := func() {
		once.Do(func() {
			c.Close()
			b.Close()
			g.mu.Lock()
			delete(g.conns, c)
			delete(g.conns, b)
			g.mu.Unlock()
		})
	}
	g.wg.Go(func() { _, _ = io.Copy(b, c); end() })
	_, _ = io.Copy(c, b)
	end()
}
