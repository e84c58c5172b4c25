package kafkawire

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/kafkaedge/kafkaedge/kafkawire/wire"
)

// This file is a consumer group member: one subscription of one topic that
// Kafka's group coordinator assigns partitions to, in either protocol (the
// classic JoinGroup/SyncGroup/Heartbeat one, member_classic.go, or KIP-848's
// ConsumerGroupHeartbeat, member_consumer.go). The member's goroutine runs
// the protocol; its owner learns each change of the assignment through
// MemberConfig.OnChange, which returns before the member acknowledges the
// change to the coordinator.

// GroupProtocol is how a member takes part in its group.
type GroupProtocol uint8

// Group protocols.
const (
	// GroupProtocolAuto uses KIP-848's consumer protocol when the
	// coordinator offers ConsumerGroupHeartbeat, the classic one otherwise.
	GroupProtocolAuto GroupProtocol = iota
	// GroupProtocolClassic is JoinGroup/SyncGroup/Heartbeat/LeaveGroup with
	// protocol type "consumer" and client-side assignors.
	GroupProtocolClassic
	// GroupProtocolConsumer is KIP-848's ConsumerGroupHeartbeat, with the
	// assignment computed by the coordinator.
	GroupProtocolConsumer
)

// String returns "auto", "classic" or "consumer" (Kafka's
// group.protocol values).
func (p GroupProtocol) String() string {
	switch p {
	case GroupProtocolClassic:
		return "classic"
	case GroupProtocolConsumer:
		return "consumer"
	}
	return "auto"
}

// ParseGroupProtocol parses what String returns.
func ParseGroupProtocol(s string) (GroupProtocol, error) {
	for _, p := range []GroupProtocol{GroupProtocolAuto, GroupProtocolClassic, GroupProtocolConsumer} {
		if s == p.String() {
			return p, nil
		}
	}
	return 0, fmt.Errorf("group protocol %q: want auto, classic or consumer", s)
}

// Defaults of MemberConfig, those of the Java consumer.
const (
	DefaultSessionTimeout    = 45 * time.Second
	DefaultRebalanceTimeout  = 60 * time.Second
	DefaultHeartbeatInterval = 3 * time.Second
)

// MemberConfig configures a Member.
type MemberConfig struct {
	Group string
	Topic string // the one topic the member subscribes to
	// InstanceID makes the member static (KIP-345); "" none.
	InstanceID string
	Protocol   GroupProtocol
	// SessionTimeout (classic) is how long the coordinator keeps a member
	// that sends no heartbeat; the consumer protocol's is the broker's.
	SessionTimeout time.Duration
	// RebalanceTimeout is how long the coordinator waits for the member to
	// rejoin (classic) or to release revoked partitions (consumer).
	RebalanceTimeout time.Duration
	// HeartbeatInterval (classic), default 3 s or a third of SessionTimeout
	// if that is less; the consumer protocol's is the broker's.
	HeartbeatInterval time.Duration
	// Assignors (classic) are the assignors offered, by preference;
	// default "cooperative-sticky", "range" (kafkawire/assign).
	Assignors []string
	// OnChange is called on the member's goroutine with each change of the
	// member's assignment, before the change is acknowledged to the
	// coordinator: when it returns, the owner no longer uses the revoked
	// partitions. A member that stops for good may first report its
	// partitions lost. It must not block for long, nor call the Member's
	// methods other than Generation and Owns.
	OnChange func(Change)
}

// Change is a change of a member's assignment of MemberConfig.Topic.
type Change struct {
	MemberID   string
	Generation int32   // the classic generation or the consumer protocol's member epoch
	Assigned   []int32 // the whole assignment after the change, sorted
	Added      []int32 // in Assigned, not before
	Revoked    []int32 // before, not in Assigned
	// Lost reports that the member lost its membership (fenced, its
	// session expired): the revoked partitions may be another member's
	// already, and their offsets can no longer be committed.
	Lost bool
}

// Member is one member of a consumer group, created by Client.JoinGroup and
// ended by Leave.
type Member struct {
	c   *Client
	cfg MemberConfig

	ctx    context.Context // canceled by Leave
	cancel context.CancelFunc
	done   chan struct{}
	err    error // why the member stopped; set before done closes

	mu     sync.Mutex
	gen    Generation    // as of the last change
	newGen chan struct{} // closed when gen changes (and replaced)
	owned  []int32       // sorted
	proto  GroupProtocol
}

// JoinGroup starts a member of cfg.Group subscribed to cfg.Topic. It
// returns at once; the member joins in the background and reports its
// assignments to cfg.OnChange until Leave, or until it fails for good
// (Done, Err): an authorization error, an invalid group, the Client
// closed.
func (c *Client) JoinGroup(cfg MemberConfig) (*Member, error) {
	switch {
	case cfg.Group == "":
		return nil, errors.New("kafkawire: JoinGroup without a group")
	case cfg.Topic == "":
		return nil, errors.New("kafkawire: JoinGroup without a topic")
	case cfg.OnChange == nil:
		return nil, errors.New("kafkawire: JoinGroup without OnChange")
	case c.closed.Load():
		return nil, ErrClosed
	}
	if cfg.SessionTimeout <= 0 {
		cfg.SessionTimeout = DefaultSessionTimeout
	}
	if cfg.RebalanceTimeout <= 0 {
		cfg.RebalanceTimeout = DefaultRebalanceTimeout
	}
	if cfg.HeartbeatInterval <= 0 {
		cfg.HeartbeatInterval = min(DefaultHeartbeatInterval, cfg.SessionTimeout/3)
	}
	if len(cfg.Assignors) == 0 {
		cfg.Assignors = []string{"cooperative-sticky", "range"}
	}
	cfg.Assignors = slices.Clone(cfg.Assignors)
	ctx, cancel := context.WithCancel(c.ctx)
	m := &Member{c: c, cfg: cfg, ctx: ctx, cancel: cancel, done: make(chan struct{}), newGen: make(chan struct{})}
	c.bg.Add(1)
	go m.run()
	return m, nil
}

// Generation returns what a commit as the member carries: its member id
// and generation (or member epoch) as of its last change.
func (m *Member) Generation() Generation {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.gen
}

// Owns reports whether partition is in the member's assignment.
func (m *Member) Owns(partition int32) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, ok := slices.BinarySearch(m.owned, partition)
	return ok
}

// Protocol returns the protocol the member uses (GroupProtocolAuto until
// it chose).
func (m *Member) Protocol() GroupProtocol {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.proto
}

// Done is closed when the member has stopped: after Leave, or when it
// failed for good (Err says why).
func (m *Member) Done() <-chan struct{} { return m.done }

// Err returns why the member stopped on its own (nil after Leave), an
// *Error with the Kafka error code when there is one; valid once Done is
// closed.
func (m *Member) Err() error { return m.err }

// Leave ends the member: it leaves the group at once (its partitions go to
// the others without waiting for its session to expire), without a last
// OnChange. It returns when the member has stopped or ctx ends.
func (m *Member) Leave(ctx context.Context) error {
	m.cancel()
	select {
	case <-m.done:
		return nil
	case <-ctx.Done():
		return ctxError(ctx, "leaving group "+m.cfg.Group)
	}
}

// run runs the protocol until Leave or a failure for good.
func (m *Member) run() {
	defer m.c.bg.Done()
	defer close(m.done)
	p := m.cfg.Protocol
	if p == GroupProtocolAuto {
		var err error
		if p, err = m.choose(); err != nil {
			m.err = err
			return
		}
	}
	m.mu.Lock()
	m.proto = p
	m.mu.Unlock()
	if p == GroupProtocolConsumer {
		m.err = m.runConsumer()
	} else {
		m.err = m.runClassic()
	}
	switch {
	case m.ctx.Err() != nil && !m.c.closed.Load():
		m.err = nil // left
	case m.err != nil && !errors.As(m.err, new(*Error)):
		m.err = newError("join group "+m.cfg.Group, m.cfg.Topic, -1, -1, m.err)
	}
}

// choose returns the consumer protocol if the group's coordinator offers
// ConsumerGroupHeartbeat and the cluster has enabled it (feature
// group.version 1 or later: the default from Kafka 4.0; Kafka 3.9 lists the
// API with the feature off), the classic one otherwise.
func (m *Member) choose() (GroupProtocol, error) {
	var p GroupProtocol
	err := m.c.groupCall(m.ctx, m.cfg.Group, laneControl, func(cn *conn) error {
		p = GroupProtocolClassic
		if _, err := cn.version(wire.KeyConsumerGroupHeartbeat, -1); err == nil && cn.feature("group.version") >= 1 {
			p = GroupProtocolConsumer
		}
		return nil
	})
	return p, err
}

// change records a new assignment and reports it to OnChange (if anything
// changed, or lost is set). Called on the member's goroutine.
func (m *Member) change(gen Generation, assigned []int32, lost bool) {
	assigned = slices.Clone(assigned)
	slices.Sort(assigned)
	assigned = slices.Compact(assigned)
	m.mu.Lock()
	before := m.owned
	m.setGen(gen)
	m.owned = assigned
	m.mu.Unlock()
	ch := Change{MemberID: gen.MemberID, Generation: gen.ID, Assigned: assigned, Lost: lost}
	for _, p := range assigned {
		if _, ok := slices.BinarySearch(before, p); !ok {
			ch.Added = append(ch.Added, p)
		}
	}
	for _, p := range before {
		if _, ok := slices.BinarySearch(assigned, p); !ok {
			ch.Revoked = append(ch.Revoked, p)
		}
	}
	if len(ch.Added) > 0 || len(ch.Revoked) > 0 || lost {
		m.cfg.OnChange(ch)
	}
}

// setGen records the member's generation, waking the commits that wait
// for a new one. Called with mu held.
func (m *Member) setGen(gen Generation) {
	if gen != m.gen {
		m.gen = gen
		close(m.newGen)
		m.newGen = make(chan struct{})
	}
}

// Commit commits offs of the member's topic as the member, fenced by its
// generation. A commit refused because the group is between generations
// (REBALANCE_IN_PROGRESS; ILLEGAL_GENERATION or KIP-848's
// STALE_MEMBER_EPOCH while the member is being given a newer one) is sent
// again as the member's next generation once it has one, if it still owns
// every partition of offs: as a Java application commits again after its
// next poll, and KIP-848's consumer retries a stale epoch. It waits for
// that at most the RebalanceTimeout. Any other refusal, a partition no
// longer owned, the member's end or ctx's return the error.
func (m *Member) Commit(ctx context.Context, offs []CommittedOffset) error {
	wait := time.NewTimer(m.cfg.RebalanceTimeout)
	defer wait.Stop()
	for {
		m.mu.Lock()
		gen, newGen := m.gen, m.newGen
		m.mu.Unlock()
		err := m.c.CommitOffsets(ctx, m.cfg.Group, m.cfg.Topic, offs, gen)
		var ke *Error
		if !errors.As(err, &ke) || ke.Code != wire.ErrRebalanceInProgress && ke.Code != wire.ErrIllegalGeneration && ke.Code != wire.ErrStaleMemberEpoch {
			return err
		}
		select {
		case <-newGen:
		case <-wait.C:
			return err
		case <-m.done:
			return err
		case <-ctx.Done():
			return err
		}
		for _, o := range offs {
			if !m.Owns(o.Partition) {
				return err
			}
		}
		m.c.cfg.Logger.Debug("kafkawire: commit sent again as the member's new generation", "group", m.cfg.Group,
			"member", gen.MemberID, "generation", gen.ID, "err", err)
	}
}

// ownedNow returns the member's assignment.
func (m *Member) ownedNow() []int32 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.owned
}

// sleep waits d or until the member is left, reporting false then.
func (m *Member) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-m.ctx.Done():
		return false
	}
}
