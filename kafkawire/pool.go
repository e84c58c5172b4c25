package kafkawire

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"
)

// Redial backoff after failed dials to one address.
const (
	backoffBase = 100 * time.Millisecond
	backoffMax  = 5 * time.Second
)

// lane is a kind of traffic to a broker, with connections of its own:
// Kafka answers the requests of one connection in order, so a fetch that
// the broker holds for data (a long poll) would delay the requests behind
// it.
type lane uint8

const (
	// laneControl carries Metadata, ListOffsets and the fetches the
	// broker answers at once (FetchMinBytes 0).
	laneControl lane = iota
	// laneFetch carries the fetches the broker may hold for FetchMaxWait:
	// one-shot fetches with FetchMinBytes > 0, and every fetch of a Stream.
	laneFetch
	// laneProduce carries Produce requests, on one connection per broker,
	// so that a partition's batches reach its leader in the order sent.
	laneProduce
	// laneOffsets carries OffsetCommit and OffsetFetch to groups'
	// coordinators, on offsetConns connections per broker: the coordinator
	// holds a commit until __consumer_offsets has it on its in-sync
	// replicas and answers a connection's requests one at a time, so the
	// commits of many members need more than two connections, and the
	// heartbeats (on laneControl) must not wait behind them.
	laneOffsets
)

// offsetConns is the size of a laneOffsets pool: at least ConnsPerBroker.
const offsetConns = 8

// String names the lane in logs.
func (l lane) String() string {
	switch l {
	case laneFetch:
		return "fetch"
	case laneProduce:
		return "produce"
	case laneOffsets:
		return "offsets"
	}
	return "control"
}

// poolKey names the pool of one lane to one broker address.
type poolKey struct {
	addr string
	lane lane
}

// brokerPool holds the connections of one lane to one broker address: up to
// ConnsPerBroker multiplexed connections shared by every caller. A call takes
// the live connection with the fewest pending requests; when that one is
// busy and a slot is free, another connection is dialed in the background.
// Connections are dialed on first use and redialed on next use after they
// die; consecutive failed dials back off exponentially.
type brokerPool struct {
	cl   *Client
	addr string
	lane lane
	use  *brokerUse // reports to the Observer; nil: none

	mu       sync.Mutex
	slots    []poolSlot
	failures int       // consecutive failed dials
	retryAt  time.Time // no dial before this after a failure
	lastErr  error
	closed   bool
}

// poolSlot is one connection of a pool, or the dial that will fill it.
type poolSlot struct {
	c       *conn
	dialing chan struct{} // closed when the dial in progress ends
}

func newBrokerPool(cl *Client, k poolKey, use *brokerUse) *brokerPool {
	n := cl.cfg.ConnsPerBroker
	switch k.lane {
	case laneProduce:
		n = 1
	case laneOffsets:
		n = max(n, offsetConns)
	}
	return &brokerPool{cl: cl, addr: k.addr, lane: k.lane, use: use, slots: make([]poolSlot, n)}
}

// get returns a live connection, dialing one if none is and waiting for
// that dial. After failed dials it fails at once (a downError) until a dial
// succeeds: while the pool backs off, then while the next dial, the probe,
// runs in the background (the call that finds the backoff over starts it
// and fails too).
func (p *brokerPool) get(ctx context.Context) (*conn, error) {
	for {
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			return nil, &connError{addr: p.addr, err: ErrClosed}
		}
		var (
			best     *conn
			bestLoad int
			free     = -1
			wait     chan struct{}
		)
		for i := range p.slots {
			s := &p.slots[i]
			switch {
			case s.c != nil && s.c.alive():
				if l := s.c.load(); best == nil || l < bestLoad {
					best, bestLoad = s.c, l
				}
			case s.dialing != nil:
				wait = s.dialing
			case free < 0:
				free = i
			}
		}
		backingOff := time.Now().Before(p.retryAt)
		if best != nil {
			if bestLoad > 0 && free >= 0 && wait == nil && !backingOff {
				p.dial(free)
			}
			p.mu.Unlock()
			return best, nil
		}
		switch {
		case p.failures > 0:
			// The broker is down: fail at once, so that callers do not
			// queue behind a broker that does not answer. Once the backoff
			// is over, a dial in the background probes whether it is back.
			if wait == nil && !backingOff {
				p.dial(free)
			}
			err := &connError{addr: p.addr, err: &downError{failures: p.failures, retryAt: p.retryAt, probing: !backingOff, last: p.lastErr}}
			p.mu.Unlock()
			return nil, err
		case wait == nil:
			wait = p.dial(free)
		}
		p.mu.Unlock()

		select {
		case <-wait:
		case <-ctx.Done():
			return nil, ctxError(ctx, "connecting to broker "+p.addr)
		}
	}
}

// dial starts filling slot i; p.mu is held.
func (p *brokerPool) dial(i int) chan struct{} {
	done := make(chan struct{})
	p.slots[i] = poolSlot{dialing: done}
	// The dial is one report, from ConnDialing to the connection's fate,
	// so that its events balance.
	u := p.use
	reported := u.enter()
	if reported {
		u.obs.BrokerConn(p.addr, ConnDialing)
	}
	go func() {
		if reported {
			defer u.exit() // after the connection's fate below
		}
		c, err := dialConn(p.cl.ctx, p.cl, p.addr, p.lane, u)
		if reported {
			if err != nil {
				u.obs.BrokerConn(p.addr, ConnDialFailed)
			} else {
				// Exactly one ConnClosed follows, from fail or from here
				// if the connection died before it was marked up.
				u.obs.BrokerConn(p.addr, ConnUp)
				c.up.Store(true)
				if !c.alive() && c.up.CompareAndSwap(true, false) {
					u.obs.BrokerConn(p.addr, ConnClosed)
				}
			}
		}
		p.mu.Lock()
		defer close(done)
		defer p.mu.Unlock()
		if p.closed {
			if c != nil {
				c.fail(&connError{addr: p.addr, err: ErrClosed})
			}
			p.slots[i] = poolSlot{}
			return
		}
		if err != nil {
			p.slots[i] = poolSlot{}
			p.failures++
			p.retryAt = time.Now().Add(backoff(p.failures))
			p.lastErr = err
			p.cl.cfg.Logger.Debug("kafkawire: dial failed", "broker", p.addr, "lane", p.lane, "failures", p.failures, "err", err)
			return
		}
		p.slots[i] = poolSlot{c: c}
		p.failures = 0
		p.retryAt = time.Time{}
		p.lastErr = nil
		if lg := p.cl.cfg.Logger; lg.Enabled(context.Background(), slog.LevelDebug) {
			lg.Debug("kafkawire: connected", "broker", p.addr, "lane", p.lane, "slot", i, "versions", c.negotiated())
		}
	}()
	return done
}

// downError is the failure of a call to a broker whose last dials failed,
// made without a dial: ErrBrokerUnreachable (through the connError that
// carries it), never the last dial's ErrTimeout, with that dial's error for
// the log.
type downError struct {
	failures int
	retryAt  time.Time
	probing  bool
	last     error
}

func (e *downError) Error() string {
	next := "a dial is probing it"
	if !e.probing {
		next = "next dial in " + time.Until(e.retryAt).Round(time.Millisecond).String()
	}
	last := e.last
	var ce *connError
	if errors.As(last, &ce) {
		last = ce.err
	}
	return fmt.Sprintf("down after %d failed dials, %s; last: %v", e.failures, next, last)
}

// backoff is the wait after n consecutive failed dials: 100ms doubling up to
// 5s, with up to 20% jitter.
func backoff(n int) time.Duration {
	d := backoffMax
	if n < 7 {
		d = min(backoffBase<<(n-1), backoffMax)
	}
	return d - time.Duration(rand.Int64N(int64(d/5)+1))
}

// hasLive reports whether the pool has a live connection.
func (p *brokerPool) hasLive() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, s := range p.slots {
		if s.c != nil && s.c.alive() {
			return true
		}
	}
	return false
}

// down reports whether the last dials to the address failed: calls fail
// at once until a dial succeeds.
func (p *brokerPool) down() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.failures > 0
}

// close fails every connection with cause; the pool accepts no calls.
func (p *brokerPool) close(cause error) {
	p.mu.Lock()
	p.closed = true
	var conns []*conn
	for _, s := range p.slots {
		if s.c != nil {
			conns = append(conns, s.c)
		}
	}
	p.mu.Unlock()
	for _, c := range conns {
		c.fail(&connError{addr: p.addr, err: cause})
	}
}
