package kafkawire

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/kafkaedge/kafkaedge/kafkawire/assign"
	"github.com/kafkaedge/kafkaedge/kafkawire/wire"
)

// This file is the classic consumer group protocol (JoinGroup, SyncGroup,
// Heartbeat, LeaveGroup with protocol type "consumer"), as Java's
// ConsumerCoordinator speaks it: the group leader, one of the members,
// runs the assignor the coordinator chose among those every member offers.
//
// JoinGroup and SyncGroup are held by the coordinator until the rebalance
// completes (up to the rebalance timeout), and a broker answers the
// requests of one connection in order, so they go on a connection of the
// member's own, never on the shared pools; Heartbeat and LeaveGroup, which
// the coordinator answers at once, go through groupCall like commits.

const (
	// consumerProtocolType is the protocol type of consumer groups.
	consumerProtocolType = "consumer"
	// leaveReason is the reason of the member's LeaveGroup (v5+).
	leaveReason = "the subscription ended"
	// Pacing of the member's retries after failures: 100 ms doubling to
	// 1 s, Java's retry.backoff.ms and retry.backoff.max.ms.
	classicBackoffBase = 100 * time.Millisecond
	classicBackoffMax  = time.Second
	// quickRetries is how many rejoins in a row the member makes without
	// a pause, for the answers that ask it to join again at once
	// (MEMBER_ID_REQUIRED, REBALANCE_IN_PROGRESS from SyncGroup, ...).
	quickRetries = 2
)

// errMemberConnClosed ends the member's own connection to the coordinator.
var errMemberConnClosed = errors.New("the group member closed its connection")

// classic is a member's state in the classic protocol, used by the member's
// goroutine only.
type classic struct {
	m         *Member
	assignors []assign.Assignor // offered, by preference

	memberID   string
	generation int32  // of the last successful JoinGroup; -1 none
	protocol   string // the assignor the group's last join chose
	ownedGen   int32  // the generation the owned partitions are from; -1 none
	lastGen    int32  // the last generation assigned (cooperative-sticky's user data); -1 none
	reason     string // why the member (re)joins, for JoinGroup v8+
	// lastContact is the last answer of the coordinator that showed the
	// member was still in the group.
	lastContact time.Time

	// As the leader: the partition counts of the group's topics that the
	// last assignment used (topics without partitions absent), and when
	// they were last compared with the metadata.
	leader bool
	topics []string
	counts map[string]int32

	co coordinator // the coordinator cn is connected to
	cn *conn       // the member's own connection, for JoinGroup and SyncGroup
}

// step is how a rebalance attempt ended.
type step uint8

const (
	stepDone    step = iota // assigned; heartbeat from now on
	stepRejoin              // assigned, and revoked partitions: rejoin at once (cooperative)
	stepRetry               // join again at once
	stepBackoff             // join again after a pause
)

// runClassic runs the classic protocol until Leave (then it leaves the
// group, unless the member is static) or a failure for good.
func (m *Member) runClassic() error {
	s, err := newClassic(m)
	if err != nil {
		return fmt.Errorf("group %s: %w", m.cfg.Group, err)
	}
	err = s.run()
	s.closeConn()
	switch {
	case m.c.closed.Load():
		return ErrClosed
	case err != nil:
		// The member stops: its partitions are no longer its own, and it
		// leaves so that the others get them at once.
		if len(m.ownedNow()) > 0 {
			m.change(s.gen(s.ownedGen), nil, true)
		}
		s.leave()
		return fmt.Errorf("group %s: %w", m.cfg.Group, err)
	}
	s.leave()
	return nil
}

// newClassic checks the assignors the member offers.
func newClassic(m *Member) (*classic, error) {
	s := &classic{m: m, generation: -1, ownedGen: -1, lastGen: -1, lastContact: time.Now()}
	seen := map[string]bool{}
	for _, name := range m.cfg.Assignors {
		a, ok := assign.ByName(name)
		if !ok {
			return nil, fmt.Errorf("unknown assignor %q (want range or cooperative-sticky)", name)
		}
		if !seen[name] {
			seen[name] = true
			s.assignors = append(s.assignors, a)
		}
	}
	return s, nil
}

// run joins, and heartbeats once assigned, until the member is left or
// fails for good.
func (s *classic) run() error {
	for s.m.ctx.Err() == nil {
		again, err := s.rebalance()
		if err != nil {
			return err
		}
		if again || s.m.ctx.Err() != nil {
			continue
		}
		if err := s.stable(); err != nil {
			return err
		}
	}
	return nil
}

// rebalance joins the group and syncs until the member is assigned, and
// reports whether it must join again at once (it revoked partitions of a
// cooperative assignment).
func (s *classic) rebalance() (again bool, err error) {
	m := s.m
	quick, fails := 0, 0
	for {
		st, err := s.attempt()
		switch {
		case err != nil:
			return false, err
		case m.ctx.Err() != nil:
			return false, nil
		case st == stepDone:
			return false, nil
		case st == stepRejoin:
			return true, nil
		case st == stepRetry:
			if quick++; quick > quickRetries && !pause(m.ctx, quick-quickRetries-1) {
				return false, nil
			}
			continue
		}
		fails++
		if !m.sleep(classicBackoff(fails)) {
			return false, nil
		}
		s.checkSession()
	}
}

// attempt is one JoinGroup and, when it succeeds, one SyncGroup.
func (s *classic) attempt() (step, error) {
	m := s.m
	cfg := &m.cfg
	cn, err := s.joinConn()
	if err != nil {
		return s.failure("finding or connecting to the coordinator", err, false)
	}
	v, err := cn.version(wire.KeyJoinGroup, -1)
	if err != nil {
		return 0, err
	}
	if cfg.InstanceID != "" && v < 5 {
		return 0, fmt.Errorf("static membership needs JoinGroup v5+, coordinator %s supports v%d: %w", cn.addr, v, kafkaError{wire.ErrUnsupportedVersion})
	}
	req := &wire.JoinGroupRequest{
		GroupID:                cfg.Group,
		SessionTimeoutMillis:   int32(cfg.SessionTimeout / time.Millisecond),
		RebalanceTimeoutMillis: int32(cfg.RebalanceTimeout / time.Millisecond),
		MemberID:               s.memberID,
		GroupInstanceID:        cfg.InstanceID,
		ProtocolType:           consumerProtocolType,
		Protocols:              s.protocols(),
		Reason:                 s.reason,
	}
	var resp wire.JoinGroupResponse
	ctx, cancel := context.WithTimeout(m.ctx, cfg.RebalanceTimeout+m.c.cfg.RequestTimeout)
	buf, err := cn.doAt(ctx, req, v, &resp)
	cancel()
	if err != nil {
		return s.failure("JoinGroup", err, true)
	}
	defer buf.release() // the members' metadata alias it
	switch code := resp.ErrorCode; code {
	case 0:
	case wire.ErrMemberIDRequired: // KIP-394: join again with the id given
		s.memberID = resp.MemberID
		return stepRetry, nil
	case wire.ErrUnknownMemberID:
		s.reset(true, kafkaError{code})
		return stepRetry, nil
	case wire.ErrFencedInstanceID: // another instance took the static id
		return 0, fmt.Errorf("JoinGroup as %s: %w", cfg.InstanceID, kafkaError{code})
	default:
		return s.failure("JoinGroup", kafkaError{code}, true)
	}
	if resp.ProtocolType != "" && resp.ProtocolType != consumerProtocolType {
		return 0, fmt.Errorf("JoinGroup answered protocol type %q: %w", resp.ProtocolType, kafkaError{wire.ErrInconsistentGroupProtocol})
	}
	a := s.assignor(resp.ProtocolName)
	if a == nil {
		return 0, fmt.Errorf("the coordinator chose assignor %q, which the member did not offer: %w", resp.ProtocolName, kafkaError{wire.ErrInconsistentGroupProtocol})
	}
	s.memberID, s.generation, s.protocol, s.reason = resp.MemberID, resp.GenerationID, resp.ProtocolName, ""
	s.lastContact = time.Now()
	coop := cooperative(s.protocol)
	if !coop && len(m.ownedNow()) > 0 {
		// The group went from cooperative to eager (a member that
		// offers no cooperative assignor joined): the leader assigns
		// without regard to what is owned, so give everything up
		// before syncing.
		m.c.cfg.Logger.Info("kafkawire: group protocol is eager now, revoking every partition", "group", cfg.Group, "member", s.memberID, "assignor", s.protocol)
		m.change(s.gen(s.ownedGen), nil, false)
	}
	var assignments []wire.SyncGroupAssignment
	s.leader = resp.Leader == resp.MemberID
	if s.leader {
		assignments = s.lead(a, &resp)
	} else {
		s.topics, s.counts = nil, nil
	}

	sv, err := cn.version(wire.KeySyncGroup, -1)
	if err != nil {
		return 0, err
	}
	sreq := &wire.SyncGroupRequest{GroupID: cfg.Group, GenerationID: s.generation, MemberID: s.memberID,
		GroupInstanceID: cfg.InstanceID, ProtocolType: consumerProtocolType, ProtocolName: s.protocol, Assignments: assignments}
	var sresp wire.SyncGroupResponse
	ctx, cancel = context.WithTimeout(m.ctx, cfg.RebalanceTimeout+m.c.cfg.RequestTimeout)
	sbuf, err := cn.doAt(ctx, sreq, sv, &sresp)
	cancel()
	if err != nil {
		return s.failure("SyncGroup", err, true)
	}
	defer sbuf.release() // the assignment aliases it
	switch code := sresp.ErrorCode; code {
	case 0:
	case wire.ErrRebalanceInProgress: // another rebalance began
		s.lastContact = time.Now()
		s.reason = "the group began another rebalance"
		return stepRetry, nil
	case wire.ErrUnknownMemberID:
		s.reset(true, kafkaError{code})
		return stepRetry, nil
	case wire.ErrIllegalGeneration: // the member id is still good
		s.reset(false, kafkaError{code})
		return stepRetry, nil
	case wire.ErrFencedInstanceID:
		return 0, fmt.Errorf("SyncGroup as %s: %w", cfg.InstanceID, kafkaError{code})
	default:
		return s.failure("SyncGroup", kafkaError{code}, true)
	}
	if sresp.ProtocolName != "" && sresp.ProtocolName != s.protocol {
		return 0, fmt.Errorf("SyncGroup answered assignor %q after JoinGroup chose %q: %w", sresp.ProtocolName, s.protocol, kafkaError{wire.ErrInconsistentGroupProtocol})
	}
	s.lastContact = time.Now()
	assigned := s.decodeAssignment(sresp.Assignment)

	s.ownedGen, s.lastGen = s.generation, s.generation
	revoked := false
	for _, p := range m.ownedNow() {
		if !slices.Contains(assigned, p) {
			revoked = true
		}
	}
	m.change(s.gen(s.generation), assigned, false)
	if revoked && coop {
		// The second rebalance of the cooperative protocol: the
		// partitions given up go to their new owners in it.
		s.reason = "revoked partitions, which the group can assign now"
		return stepRejoin, nil
	}
	return stepDone, nil
}

// failure sorts out a failed JoinGroup or SyncGroup (onConn: on the
// member's connection) or coordinator lookup: an error for good, or how
// to try again.
func (s *classic) failure(what string, err error, onConn bool) (step, error) {
	m := s.m
	code := codeOf(err)
	switch {
	case m.ctx.Err() != nil:
		return stepBackoff, nil // left or closed; rebalance returns
	case groupFatal(code):
		return 0, fmt.Errorf("%s: %w", what, err)
	case code == wire.ErrNotCoordinator || code == wire.ErrCoordinatorNotAvailable:
		s.forgetCoordinator()
	case code == wire.ErrCoordinatorLoadInProgress || code == wire.ErrRebalanceInProgress:
	case code != 0:
		m.c.cfg.Logger.Warn("kafkawire: group rebalance failed, retrying", "group", m.cfg.Group, "member", s.memberID, "request", what, "err", err)
		return stepBackoff, nil
	case isConnError(err):
		s.forgetCoordinator()
	case onConn:
		// Timed out: the coordinator may still hold the request, and
		// would answer the next one on the connection after it.
		s.closeConn()
	}
	m.c.cfg.Logger.Debug("kafkawire: group rebalance failed, retrying", "group", m.cfg.Group, "member", s.memberID, "request", what, "err", err)
	return stepBackoff, nil
}

// groupFatal reports whether a group request's error code is for good.
func groupFatal(code int16) bool {
	switch code {
	case wire.ErrGroupAuthorizationFailed, wire.ErrInvalidGroupID, wire.ErrInconsistentGroupProtocol, wire.ErrGroupMaxSizeReached,
		wire.ErrUnsupportedVersion, wire.ErrInvalidSessionTimeout:
		return true
	}
	return false
}

// protocols returns the JoinGroup protocols: every assignor offered, with
// the member's subscription, as Java's ConsumerCoordinator writes it (v3,
// the partitions owned and their generation, no rack; for
// cooperative-sticky the user data of Java's CooperativeStickyAssignor, the
// last generation assigned, which leaders older than the subscription's v2
// read).
func (s *classic) protocols() []wire.JoinGroupProtocol {
	sub := wire.ConsumerSubscription{Version: wire.ConsumerProtocolMaxVersion, Topics: []string{s.m.cfg.Topic},
		OwnedPartitions: []wire.ConsumerTopicPartitions{}, GenerationID: s.ownedGen}
	if owned := s.m.ownedNow(); len(owned) > 0 {
		sub.OwnedPartitions = []wire.ConsumerTopicPartitions{{Topic: s.m.cfg.Topic, Partitions: owned}}
	}
	out := make([]wire.JoinGroupProtocol, len(s.assignors))
	for i, a := range s.assignors {
		sub.UserData = nil
		if cooperative(a.Name()) {
			sub.UserData = binary.BigEndian.AppendUint32(nil, uint32(s.lastGen))
		}
		out[i] = wire.JoinGroupProtocol{Name: a.Name(), Metadata: sub.AppendTo(nil)}
	}
	return out
}

// assignor returns the offered assignor named name, nil if none is.
func (s *classic) assignor(name string) assign.Assignor {
	for _, a := range s.assignors {
		if a.Name() == name {
			return a
		}
	}
	return nil
}

// cooperative reports whether assignor name rebalances cooperatively
// (KIP-429): members keep their partitions while they rejoin, and give up
// only those the assignment takes away.
func cooperative(name string) bool { return name == assign.CooperativeSticky().Name() }

// lead runs assignor a as the group's leader over the members of resp and
// returns the assignments to sync. A member whose subscription does not
// decode is assigned nothing.
func (s *classic) lead(a assign.Assignor, resp *wire.JoinGroupResponse) []wire.SyncGroupAssignment {
	m := s.m
	lg := m.c.cfg.Logger
	members := make([]assign.Member, 0, len(resp.Members))
	ids := make([]string, 0, len(resp.Members))
	subscribed := map[string]bool{}
	for _, jm := range resp.Members {
		if slices.Contains(ids, jm.MemberID) {
			continue // listed twice: once is enough
		}
		ids = append(ids, jm.MemberID)
		var sub wire.ConsumerSubscription
		if err := sub.Decode(jm.Metadata); err != nil {
			lg.Warn("kafkawire: group member's subscription does not decode; it is assigned nothing", "group", m.cfg.Group,
				"member", jm.MemberID, "err", err)
			continue
		}
		am := assign.Member{ID: jm.MemberID, InstanceID: jm.GroupInstanceID, Topics: sub.Topics, Generation: sub.GenerationID}
		if am.Generation < 0 && cooperative(a.Name()) && len(sub.UserData) >= 4 {
			// A subscription below v2: the generation is in the user
			// data, as Java's CooperativeStickyAssignor reads it.
			am.Generation = int32(binary.BigEndian.Uint32(sub.UserData))
		}
		for _, tp := range sub.OwnedPartitions {
			if am.Owned == nil {
				am.Owned = map[string][]int32{}
			}
			am.Owned[tp.Topic] = append(am.Owned[tp.Topic], tp.Partitions...)
		}
		members = append(members, am)
		for _, t := range sub.Topics {
			subscribed[t] = true
		}
	}
	s.topics = slices.Sorted(maps.Keys(subscribed))
	s.counts, _ = s.partitionCounts()
	if resp.SkipAssignment {
		// KIP-814: a static leader that rejoined keeps the assignment
		// the group has.
		return nil
	}
	plan := a.Assign(members, s.counts)
	out := make([]wire.SyncGroupAssignment, len(ids))
	for i, id := range ids {
		ca := wire.ConsumerAssignment{Version: wire.ConsumerProtocolMaxVersion, AssignedPartitions: []wire.ConsumerTopicPartitions{}}
		for _, t := range slices.Sorted(maps.Keys(plan[id])) {
			if ps := plan[id][t]; len(ps) > 0 {
				ca.AssignedPartitions = append(ca.AssignedPartitions, wire.ConsumerTopicPartitions{Topic: t, Partitions: ps})
			}
		}
		out[i] = wire.SyncGroupAssignment{MemberID: id, Assignment: ca.AppendTo(nil)}
	}
	lg.Debug("kafkawire: group assignment computed", "group", m.cfg.Group, "member", s.memberID,
		"generation", s.generation, "assignor", a.Name(), "assignment", fmt.Sprint(plan))
	return out
}

// partitionCounts returns the partition count of each of the leader's
// topics that the metadata knows, and whether the metadata answered; a
// topic it does not know (or names with an error) is absent.
func (s *classic) partitionCounts() (map[string]int32, bool) {
	m := s.m
	counts := map[string]int32{}
	if len(s.topics) == 0 {
		return counts, true
	}
	ctx, cancel := m.c.opContext(m.ctx)
	defer cancel()
	tps, err := m.c.Partitions(ctx, s.topics)
	if err != nil {
		if m.ctx.Err() == nil {
			m.c.cfg.Logger.Warn("kafkawire: group leader found no metadata; the topics are not assigned until it does",
				"group", m.cfg.Group, "topics", s.topics, "err", err)
		}
		return counts, false
	}
	for _, tp := range tps {
		if tp.Err == nil && len(tp.Partitions) > 0 {
			counts[tp.Topic] = int32(len(tp.Partitions))
		}
	}
	return counts, true
}

// metadataChanged reports why the leader must rebalance the group: a
// subscribed topic's partition count is not the one the assignment used
// (partitions added, the topic created or deleted), as Java's leader
// watches the metadata.
func (s *classic) metadataChanged() string {
	if !s.leader {
		return ""
	}
	counts, ok := s.partitionCounts()
	if !ok || maps.Equal(counts, s.counts) {
		return ""
	}
	return fmt.Sprintf("the partition counts of the subscribed topics changed from %v to %v", s.counts, counts)
}

// decodeAssignment returns the member's partitions of its topic from a
// SyncGroup assignment; one that is empty or does not decode assigns
// nothing.
func (s *classic) decodeAssignment(b []byte) []int32 {
	m := s.m
	if len(b) == 0 {
		m.c.cfg.Logger.Warn("kafkawire: the group leader sent the member no assignment", "group", m.cfg.Group, "member", s.memberID,
			"generation", s.generation)
		return nil
	}
	var ca wire.ConsumerAssignment
	if err := ca.Decode(b); err != nil {
		m.c.cfg.Logger.Warn("kafkawire: the member's assignment does not decode; it is assigned nothing", "group", m.cfg.Group,
			"member", s.memberID, "generation", s.generation, "err", err)
		return nil
	}
	var out []int32
	for _, tp := range ca.AssignedPartitions {
		if tp.Topic == m.cfg.Topic {
			out = append(out, tp.Partitions...)
		}
	}
	return out
}

// stable heartbeats until the member must rejoin or is left.
func (s *classic) stable() error {
	m := s.m
	interval := m.cfg.HeartbeatInterval
	wait := interval
	for fails := 0; ; {
		if !m.sleep(wait) {
			return nil
		}
		if why := s.metadataChanged(); why != "" {
			m.c.cfg.Logger.Info("kafkawire: group leader rebalances the group", "group", m.cfg.Group, "member", s.memberID, "reason", why)
			s.prepareRejoin(why)
			return nil
		}
		err := s.heartbeat()
		switch code := codeOf(err); {
		case err == nil:
			s.lastContact = time.Now()
			fails, wait = 0, interval
			continue
		case m.ctx.Err() != nil:
			return nil
		case code == wire.ErrRebalanceInProgress:
			s.lastContact = time.Now()
			s.prepareRejoin("the group is rebalancing")
			return nil
		case code == wire.ErrIllegalGeneration: // the member id is still good
			s.reset(false, err)
			return nil
		case code == wire.ErrUnknownMemberID || code == wire.ErrFencedInstanceID:
			s.reset(true, err)
			return nil
		case code == wire.ErrGroupAuthorizationFailed:
			return fmt.Errorf("heartbeat: %w", err)
		}
		fails++
		m.c.cfg.Logger.Debug("kafkawire: group heartbeat failed", "group", m.cfg.Group, "member", s.memberID, "err", err)
		if s.checkSession() {
			return nil
		}
		wait = min(interval, classicBackoff(fails))
	}
}

// heartbeat sends one Heartbeat; an error code of the answer is the error
// (the coordinator's moves are retried by groupCall).
func (s *classic) heartbeat() error {
	m := s.m
	ctx, cancel := context.WithTimeout(m.ctx, min(m.c.cfg.RequestTimeout, m.cfg.SessionTimeout))
	defer cancel()
	req := &wire.HeartbeatRequest{GroupID: m.cfg.Group, GenerationID: s.generation, MemberID: s.memberID, GroupInstanceID: m.cfg.InstanceID}
	return m.c.groupCall(ctx, m.cfg.Group, laneControl, func(cn *conn) error {
		var resp wire.HeartbeatResponse
		if _, err := cn.do(ctx, req, &resp); err != nil {
			return err
		}
		if resp.ErrorCode != 0 {
			return kafkaError{resp.ErrorCode}
		}
		return nil
	})
}

// prepareRejoin readies the member to rejoin for a rebalance: with an eager
// assignor (range) it gives up every partition first, as Java's
// ConsumerCoordinator does; with a cooperative one it keeps them.
func (s *classic) prepareRejoin(why string) {
	s.reason = why
	if !cooperative(s.protocol) && len(s.m.ownedNow()) > 0 {
		s.m.change(s.gen(s.ownedGen), nil, false)
	}
}

// reset ends the member's generation after the coordinator refused it
// (fenced, unknown, or no longer in the group): its partitions are lost,
// and it joins again, with a new member id if resetMember.
func (s *classic) reset(resetMember bool, why error) {
	m := s.m
	if s.generation >= 0 || len(m.ownedNow()) > 0 {
		m.c.cfg.Logger.Info("kafkawire: group member lost its membership, rejoining", "group", m.cfg.Group, "member", s.memberID,
			"generation", s.generation, "err", why)
		m.change(s.gen(s.ownedGen), nil, true)
	}
	s.generation, s.ownedGen = -1, -1
	s.leader, s.topics, s.counts = false, nil, nil
	s.reason = "the member lost its membership: " + why.Error()
	if resetMember {
		s.memberID = ""
	}
}

// checkSession treats the member as out of the group once the coordinator
// has not answered it for a session timeout while it owns partitions: the
// coordinator may have given them to others already. It reports whether
// it did.
func (s *classic) checkSession() bool {
	m := s.m
	if len(m.ownedNow()) == 0 || time.Since(s.lastContact) < m.cfg.SessionTimeout {
		return false
	}
	s.reset(false, fmt.Errorf("the coordinator did not answer for the session timeout (%s)", m.cfg.SessionTimeout))
	return true
}

// gen is the member's Generation with generation id.
func (s *classic) gen(id int32) Generation {
	return Generation{MemberID: s.memberID, InstanceID: s.m.cfg.InstanceID, ID: id}
}

// leave sends LeaveGroup so that the member's partitions go to the others
// at once. A static member does not (KIP-345, as Java does not): it keeps
// its partitions until its session times out, for a restart to resume
// them.
func (s *classic) leave() {
	m := s.m
	if m.cfg.InstanceID != "" || s.memberID == "" || m.c.closed.Load() {
		return
	}
	ctx, cancel := context.WithTimeout(m.c.ctx, m.c.cfg.RequestTimeout)
	defer cancel()
	req := &wire.LeaveGroupRequest{GroupID: m.cfg.Group, Members: []wire.LeaveGroupMember{{MemberID: s.memberID, Reason: leaveReason}}}
	err := m.c.groupCall(ctx, m.cfg.Group, laneControl, func(cn *conn) error {
		var resp wire.LeaveGroupResponse
		if _, err := cn.do(ctx, req, &resp); err != nil {
			return err
		}
		if resp.ErrorCode != 0 {
			return kafkaError{resp.ErrorCode}
		}
		for _, r := range resp.Members {
			if r.ErrorCode != 0 {
				return kafkaError{r.ErrorCode}
			}
		}
		return nil
	})
	if err != nil && !m.c.closed.Load() && codeOf(err) != wire.ErrUnknownMemberID {
		m.c.cfg.Logger.Warn("kafkawire: leaving group failed", "group", m.cfg.Group, "member", s.memberID, "err", err)
	}
}

// joinConn returns the member's own connection to the group's coordinator,
// dialing it when there is none, it died, or the coordinator moved.
func (s *classic) joinConn() (*conn, error) {
	m := s.m
	co, err := m.c.coordinator(m.ctx, m.cfg.Group)
	if err != nil {
		return nil, err
	}
	if s.cn != nil && s.co == co && s.cn.alive() {
		return s.cn, nil
	}
	s.closeConn()
	cn, err := m.c.dialOwn(m.ctx, co.addr)
	if err != nil {
		m.c.forgetCoordinator(m.cfg.Group, co) // it may have moved off a broker that is down
		return nil, err
	}
	s.co, s.cn = co, cn
	return cn, nil
}

// forgetCoordinator drops the coordinator the member's connection goes to,
// from the Client's cache too, so that the next join looks it up again.
func (s *classic) forgetCoordinator() {
	if s.cn != nil {
		s.m.c.forgetCoordinator(s.m.cfg.Group, s.co)
	}
	s.closeConn()
}

// closeConn closes the member's own connection.
func (s *classic) closeConn() {
	if s.cn != nil {
		s.cn.fail(&connError{addr: s.cn.addr, err: errMemberConnClosed})
		s.cn, s.co = nil, coordinator{}
	}
}

// dialOwn dials a connection to addr outside the pools, for requests the
// broker may hold (no silence limit), reported to the Observer as the
// pools' dials are. The caller closes it with fail.
func (c *Client) dialOwn(ctx context.Context, addr string) (*conn, error) {
	u := c.pool(addr, laneControl).use // nil once closed, or without an Observer
	reported := u.enter()
	if reported {
		defer u.exit()
		u.obs.BrokerConn(addr, ConnDialing)
	}
	cn, err := dialConn(ctx, c, addr, laneFetch, u)
	if reported {
		if err != nil {
			u.obs.BrokerConn(addr, ConnDialFailed)
		} else {
			// Exactly one ConnClosed follows, from fail or from here if
			// the connection died before it was marked up.
			u.obs.BrokerConn(addr, ConnUp)
			cn.up.Store(true)
			if !cn.alive() && cn.up.CompareAndSwap(true, false) {
				u.obs.BrokerConn(addr, ConnClosed)
			}
		}
	}
	return cn, err
}

// classicBackoff is the pause before the n-th (from 1) retry in a row:
// 100 ms doubling to 1 s, with up to 20% jitter.
func classicBackoff(n int) time.Duration {
	d := classicBackoffMax
	if n < 5 {
		d = min(classicBackoffBase<<(n-1), classicBackoffMax)
	}
	return d - time.Duration(rand.Int64N(int64(d/5)+1))
}
