package reactor

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/kafkaedge/kafkaedge/kafkawire"
	"github.com/kafkaedge/kafkaedge/proto/pubsub"
)

// This file is the group subscriptions (CmdKafkaSubscribe with a group):
// each is one member of a Kafka consumer group (kafkawire.Member), whose
// assignment decides the subscription's partitions. The member's goroutine
// runs the group protocol and calls onAssign with each change, which
// stops the revoked partitions (nothing of them is pushed after it
// returns), tells the client with KafkaAssignmentResp, and starts the
// added ones at the group's committed offsets; only then does the member
// acknowledge the change to the coordinator.

// autoCommitEvery is how often a group subscription with auto_commit
// commits what it has pushed.
const autoCommitEvery = 5 * time.Second

// groupState is what a group subscription has beyond a subscription.
type groupState struct {
	name       string
	member     *kafkawire.Member // set once the member started
	autoCommit bool
	start      *pubsub.CmdKafkaSubscribe // where partitions without a committed offset start
	gone       chan struct{}             // closed by detach

	commitMu  sync.Mutex      // held by a commit of pushed offsets, so that commits do not cross
	committed map[int32]int64 // auto_commit: what was committed last, by partition
}

// runGroupSubscribe starts a group subscription: answers KafkaSubscribeResp
// (no positions: the partitions come with the assignments) and starts the
// member. Runs on its own goroutine, holding a Kafka slot.
func (s *Server) runGroupSubscribe(sub *subscription, m *pubsub.CmdKafkaSubscribe, start int64, fail func(int32, string)) {
	g := sub.group
	member, err := sub.client.JoinGroup(kafkawire.MemberConfig{Group: g.name, Topic: sub.topic, Protocol: s.cfg.GroupProtocol,
		SessionTimeout: s.cfg.GroupSessionTimeout, OnChange: func(ch kafkawire.Change) { s.onAssign(sub, ch) }})
	if err != nil {
		code, reason := s.kafkaFailure(callKey{topic: sub.topic, partition: -1}, err)
		fail(code, reason)
		return
	}
	sub.mu.Lock()
	g.member = member
	if !sub.live() {
		sub.mu.Unlock()
		s.leaveGroup(sub, nil)
		return
	}
	s.register(sub)
	sub.mu.Unlock()
	s.obs.Subscriptions(1)
	s.obs.GroupMembers(1)

	j := newJob(sub.st)
	j.cmd, j.ok, j.start = CmdSubscribe, true, start
	j.scratch, _ = proto.MarshalOptions{}.MarshalAppend(j.scratch[:0], &pubsub.KafkaSubscribeResp{Topic: sub.topic})
	j.own = appendResp(j.own[:0], sub.seq, pubsub.FieldKafkaSubscribeResp, j.scratch)
	s.send(j)

	s.groups.Add(1)
	go func() {
		defer s.groups.Done()
		select {
		case <-member.Done():
			if err := member.Err(); err != nil {
				code, reason := s.kafkaFailure(callKey{topic: sub.topic, partition: -1}, err)
				sub.end(code, reason)
			}
		case <-g.gone:
		}
	}()
	if g.autoCommit {
		s.groups.Add(1)
		go func() {
			defer s.groups.Done()
			s.autoCommit(sub)
		}()
	}
}

// onAssign applies a change of a group subscription's assignment: it stops
// the revoked partitions (committing them first with auto_commit, unless
// they were lost), starts the added ones where the group's committed
// offsets say, and sends KafkaAssignmentResp between the two, so that the
// client sees no push of a revoked partition after it and every push of
// an added one after it. Called on the member's goroutine.
func (s *Server) onAssign(sub *subscription, ch kafkawire.Change) {
	if !sub.live() {
		return
	}
	g := sub.group
	s.obs.GroupRebalance()
	gen := kafkawire.Generation{MemberID: ch.MemberID, ID: ch.Generation}
	revoked := make(map[int32]int64, len(ch.Revoked))
	for _, p := range ch.Revoked {
		sub.mu.Lock()
		sp := sub.parts[p]
		delete(sub.parts, p)
		sub.mu.Unlock()
		if sp == nil {
			continue
		}
		t := sp.t
		t.mu.Lock()
		revoked[p] = sp.offset
		t.remove(sp)
		t.mu.Unlock()
		s.closeTail(t)
	}
	if g.autoCommit && !ch.Lost && len(revoked) > 0 {
		s.commitPushed(sub, gen, revoked)
	}

	// Where the added partitions start: the committed offset, else the
	// subscription's start.
	var added []position
	if len(ch.Added) > 0 {
		offs, err := s.committedOffsets(sub, ch.Added)
		if err != nil {
			code, reason := s.kafkaFailure(callKey{topic: sub.topic, partition: -1}, err)
			sub.end(code, pubsub.CommittedErrorMessage(g.name, sub.topic, reason))
			return
		}
		ctx, cancel := context.WithTimeout(s.baseCtx, s.cfg.MaxFetchWait)
		defer cancel()
		for _, o := range offs {
			from, set := g.start.GetOffsets()[o.Partition]
			if o.Offset >= 0 {
				from, set = o.Offset, true
			}
			ps := s.resolve(ctx, sub, o.Partition, g.start, from, set)
			if ps.sp == nil {
				code, reason := s.kafkaFailure(callKey{topic: sub.topic, partition: o.Partition}, ps.err)
				s.sendSubFrame(sub, pubsub.FieldErrorResp, pubsub.AppendErrorResp(nil, code, pubsub.FetchErrorMessage(sub.topic, o.Partition, reason)))
				continue
			}
			added = append(added, ps)
		}
	}

	resp := &pubsub.KafkaAssignmentResp{Generation: ch.Generation, Revoked: ch.Revoked, MemberId: ch.MemberID}
	sub.mu.Lock()
	if !sub.live() {
		sub.mu.Unlock()
		for _, ps := range added {
			s.closeTail(ps.sp.t)
		}
		return
	}
	for _, ps := range added {
		sub.parts[ps.sp.partition] = ps.sp
		sub.known[ps.sp.partition] = true
	}
	for _, p := range ch.Assigned {
		sp := sub.parts[p]
		if sp == nil {
			continue
		}
		t := sp.t
		t.mu.Lock()
		resp.Assigned = append(resp.Assigned, &pubsub.KafkaPosition{Partition: p, Offset: sp.offset, HighWatermark: max(t.hwm, sp.offset)})
		t.mu.Unlock()
	}
	// Sent under sub.mu, so that a detach (and its end message) comes
	// after it.
	body, _ := proto.MarshalOptions{}.MarshalAppend(nil, resp)
	s.sendSubFrame(sub, pubsub.FieldKafkaAssignmentResp, body)
	sub.mu.Unlock()
	for _, ps := range added {
		t := ps.sp.t
		t.mu.Lock()
		t.advance(ps.sp)
		t.mu.Unlock()
	}
}

// committedAttempts is how many times a group subscription asks for the
// committed offsets of its new partitions, each within MaxFetchWait,
// while the cluster times out or cannot be reached.
const committedAttempts = 3

// committedOffsets returns the group's committed offsets of partitions,
// asking again (up to committedAttempts) when the call timed out or no
// broker could be reached: a loaded coordinator should not end the
// subscription.
func (s *Server) committedOffsets(sub *subscription, partitions []int32) ([]kafkawire.CommittedOffset, error) {
	for attempt := 1; ; attempt++ {
		ctx, cancel := context.WithTimeout(s.baseCtx, s.cfg.MaxFetchWait)
		offs, err := sub.client.CommittedOffsets(ctx, sub.group.name, sub.topic, partitions)
		cancel()
		if err == nil || attempt == committedAttempts || !sub.live() || s.baseCtx.Err() != nil ||
			!errors.Is(err, kafkawire.ErrTimeout) && !errors.Is(err, kafkawire.ErrBrokerUnreachable) {
			return offs, err
		}
		s.log.Warn("group subscription: reading committed offsets failed, asking again", "group", sub.group.name,
			"topic", sub.topic, "attempt", attempt, "err", err)
	}
}

// autoCommit commits, every autoCommitEvery, the offsets a group
// subscription with auto_commit has pushed since its last commit, until it
// ends.
func (s *Server) autoCommit(sub *subscription) {
	g := sub.group
	tick := time.NewTicker(autoCommitEvery)
	defer tick.Stop()
	for {
		select {
		case <-g.gone:
			return
		case <-tick.C:
		}
		sub.mu.Lock()
		offs := make(map[int32]int64, len(sub.parts))
		for p, sp := range sub.parts {
			sp.t.mu.Lock()
			offs[p] = sp.offset
			sp.t.mu.Unlock()
		}
		sub.mu.Unlock()
		s.commitPushed(sub, g.member.Generation(), offs)
	}
}

// commitPushed commits offs (next offsets pushed, by partition) of a group
// subscription as its member gen, those that moved since its last commit.
// A failure is logged: the next commit carries the offsets again.
func (s *Server) commitPushed(sub *subscription, gen kafkawire.Generation, offs map[int32]int64) {
	g := sub.group
	g.commitMu.Lock()
	defer g.commitMu.Unlock()
	var list []kafkawire.CommittedOffset
	for p, o := range offs {
		if last, ok := g.committed[p]; !ok || last != o {
			list = append(list, kafkawire.CommittedOffset{Partition: p, Offset: o, LeaderEpoch: -1})
		}
	}
	if len(list) == 0 {
		return
	}
	slices.SortFunc(list, func(a, b kafkawire.CommittedOffset) int { return int(a.Partition - b.Partition) })
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.MaxFetchWait)
	defer cancel()
	if err := sub.client.CommitOffsets(ctx, g.name, sub.topic, list, gen); err != nil {
		s.log.Warn("group subscription: auto commit failed", "group", g.name, "topic", sub.topic, "err", err)
		return
	}
	for _, o := range list {
		g.committed[o.Partition] = o.Offset
	}
}

// leaveGroup ends a group subscription's membership once it has ended:
// with auto_commit it first commits final (the next offsets it pushed,
// by partition), then the member leaves the group at once. It runs on a
// goroutine of its own; Shutdown waits for it.
func (s *Server) leaveGroup(sub *subscription, final map[int32]int64) {
	g := sub.group
	s.groups.Add(1)
	go func() {
		defer s.groups.Done()
		if g.member == nil {
			return
		}
		if g.autoCommit && len(final) > 0 {
			s.commitPushed(sub, g.member.Generation(), final)
		}
		ctx, cancel := context.WithTimeout(context.Background(), s.cfg.MaxFetchWait)
		defer cancel()
		if err := g.member.Leave(ctx); err != nil {
			s.log.Warn("group subscription: leaving the group failed", "group", g.name, "topic", sub.topic, "err", err)
		}
	}()
}

// groupSubscription returns the connection's group subscription seq for a
// commit of group and topic, or why there is none. Called on the loop.
func (st *connState) groupSubscription(seq int64, group, topic string) (*subscription, string) {
	st.subMu.Lock()
	sub := st.subs[seq]
	st.subMu.Unlock()
	n := strconv.FormatInt(seq, 10)
	switch {
	case sub == nil || sub.group == nil:
		return nil, "subscription " + n + " is not a group subscription of this connection"
	case sub.group.name != group || sub.topic != topic:
		return nil, "subscription " + n + " is of group " + sub.group.name + " and topic " + sub.topic
	}
	sub.mu.Lock()
	defer sub.mu.Unlock()
	if sub.group.member == nil {
		return nil, "subscription " + n + " has not joined its group yet"
	}
	return sub, ""
}

// GroupLag is how far the members of one group on this node are behind
// on one topic: the sum, over the partitions they own, of the partition's
// high watermark (as of the last fetch of its tail) less the next offset
// pushed.
type GroupLag struct {
	Group, Topic string
	Members      int   // group subscriptions of the group and topic on this node
	Lag          int64 // messages
}

// GroupLags returns the lag of every group with members on this node, by
// group and topic, in no particular order. It locks each group
// subscription and its tails in turn, never a loop: it is meant for a
// metrics scrape.
func (s *Server) GroupLags() []GroupLag {
	s.subsMu.Lock()
	subs := make([]*subscription, 0, len(s.subs))
	for sub := range s.subs {
		if sub.group != nil {
			subs = append(subs, sub)
		}
	}
	s.subsMu.Unlock()
	type key struct{ group, topic string }
	by := make(map[key]*GroupLag)
	for _, sub := range subs {
		if !sub.live() {
			continue
		}
		k := key{sub.group.name, sub.topic}
		gl := by[k]
		if gl == nil {
			gl = &GroupLag{Group: k.group, Topic: k.topic}
			by[k] = gl
		}
		gl.Members++
		sub.mu.Lock()
		for _, sp := range sub.parts {
			sp.t.mu.Lock()
			gl.Lag += max(0, sp.t.hwm-sp.offset)
			sp.t.mu.Unlock()
		}
		sub.mu.Unlock()
	}
	out := make([]GroupLag, 0, len(by))
	for _, gl := range by {
		out = append(out, *gl)
	}
	return out
}
