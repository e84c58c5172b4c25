package main

import (
	"context"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/kafkaedge/kafkaedge/internal/wsclient"
	"github.com/kafkaedge/kafkaedge/proto/pubsub"
)

// This file holds the groups scenario: kafkaedge's group subscriptions
// (CmdKafkaSubscribe with a group, EXTENSIONS.md), each one member of a
// Kafka consumer group, on two kafkaedge nodes that share the cluster. Its
// results are groups (a member leaves: the time until each of its
// partitions is pushed by another member), groups/commit (CmdKafkaCommit
// as the members, back to back) and groups/idle (the nodes' CPU for
// members that only heartbeat). franz-go consumers talking to the brokers
// directly, in the same group protocol, are the ceiling of groups and
// groups/commit, measured in the same run; the conventional server has no
// groups.

// The results of the groups scenario.
const (
	scGroups       = "groups"        // kafkaedge (two nodes) and ceiling (kgo members): a leave until its partitions are pushed by others
	scGroupsCommit = "groups/commit" // kafkaedge and ceiling: commits as the members
	scGroupsIdle   = "groups/idle"   // kafkaedge: members that only heartbeat
)

const (
	groupsCommitWindow   = 4                // commits in flight per member in groups/commit
	groupsPerIdleGroup   = 100              // idle members per group
	groupsIdlePartitions = 4                // partitions of the idle members' topic
	groupsSettle         = 2 * time.Minute  // bounds the wait for a balanced or stable group
	groupsTakeover       = time.Minute      // bounds the wait for a leaver's partitions to be pushed by others
	groupsAnswer         = 30 * time.Second // bounds the wait for the answer to a member's request
)

// groups runs the groups scenario: the leaves and then the commits of one
// group on kafkaedge (two nodes) and on the ceiling (franz-go members),
// then the idle members on kafkaedge.
func (b *bench) groups(ctx context.Context) error {
	if b.hasSystem(sysConventional) {
		b.prog.note("%s: the conventional server has no consumer groups: kafkaedge and the ceiling (franz-go members) only", scGroups)
	}
	gi, err := b.cl.groupInfo(ctx)
	if err != nil {
		return err
	}
	protocol := "the classic group protocol"
	if gi.kip848 {
		protocol = "KIP-848's consumer protocol"
	}
	b.prog.note("%s: %s, members heartbeat every %s", scGroups, protocol, gi.interval())
	topic, _, err := b.seeded(ctx, scGroups, int32(b.cfg.groupPartitions), 1, "none", 0)
	if err != nil {
		return err
	}
	for _, sys := range []string{sysKafkaedge, sysCeiling} {
		if !b.hasSystem(sys) || ctx.Err() != nil {
			continue
		}
		var commits *Result
		b.add(b.runOne(ctx, scGroups, sys, b.cfg.groupMembers, topic, nil,
			func(ctx context.Context, t *target, m *meter, l *load) (map[string]float64, error) {
				extra, res, err := b.groupsLoad(ctx, t, m, l, topic, gi)
				commits = res
				return extra, err
			}))
		if commits != nil {
			b.add(commits)
		}
	}
	if !b.hasSystem(sysKafkaedge) || ctx.Err() != nil {
		return nil
	}
	idle, _, err := b.seeded(ctx, "groups-idle", groupsIdlePartitions, 1, "none", 0)
	if err != nil {
		return err
	}
	b.add(b.runOne(ctx, scGroupsIdle, sysKafkaedge, b.cfg.groupIdle, idle, nil,
		func(ctx context.Context, t *target, m *meter, l *load) (map[string]float64, error) {
			return b.groupsIdleLoad(ctx, t, m, l, idle, gi)
		}))
	return nil
}

// secondNode starts the second kafkaedge node beside t's (none for the
// ceiling: nil), warmed up on topic, and has m count it with the first.
// The caller stops it.
func (b *bench) secondNode(ctx context.Context, t *target, m *meter, topic string) (*target, error) {
	if t.srv == nil {
		return nil, nil
	}
	t2, err := b.startTarget(ctx, t.system, topic, nil)
	if err != nil {
		return nil, fmt.Errorf("second node: %w", err)
	}
	m.peers = []*server{t2.srv}
	return t2, nil
}

// groupsLoad: -groups-members members of one group on topic (kafkaedge:
// group subscriptions, one per connection, in turn on its two nodes; the
// ceiling: franz-go consumers) while -groups-rate records/s are written
// over its partitions. Once the group is balanced, -groups-leaves times:
// a member commits what it was pushed and leaves (kafkaedge: it
// unsubscribes or closes its connection, two leaves each in turn), each of
// its partitions must then be pushed by another member (latency: from the
// leave to that first push), and then a new member takes its place and
// the group balances again. Then the members commit for the duration: that
// is groups/commit, returned apart.
func (b *bench) groupsLoad(ctx context.Context, t *target, m *meter, l *load, topic string, gi groupInfo) (map[string]float64, *Result, error) {
	t2, err := b.secondNode(ctx, t, m, topic)
	if err != nil {
		return nil, nil, err
	}
	if t2 != nil {
		defer t2.stop()
	}
	g := newGroupRun(topic, b.topic(scGroups)+"-"+t.system, b.cfg.groupPartitions, l)
	if t2 == nil {
		d, err := b.cl.newDirect(ctx, topic, int32(g.partitions))
		if err != nil {
			return nil, nil, err
		}
		g.topicID = d.topicID
		d.close()
	}
	join := func(i int) (member, error) {
		if t2 == nil {
			return g.joinKgo(b.cl.brokers, gi.kip848, i)
		}
		return g.joinWS(ctx, []string{t.url, t2.url}[i%2], g.group, i, nil)
	}
	n := b.cfg.groupMembers
	members := make([]member, n)
	defer func() { closeMembers(members) }()
	pctx, pcancel := context.WithCancel(ctx)
	defer pcancel()
	produced := make(chan error, 1)
	go func() { produced <- b.produceFor(pctx, topic, int32(g.partitions), b.cfg.groupRate) }()

	t0 := time.Now()
	err = forEach(ctx, n, 16, func(i int) error {
		mb, err := join(i)
		if err == nil {
			members[i] = mb
		}
		return err
	})
	if err == nil {
		err = g.waitBalanced(ctx, members)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("forming the group of %d members: %w", n, err)
	}
	extra := map[string]float64{"members": float64(n), "partitions": float64(g.partitions), "producer_rate": float64(b.cfg.groupRate),
		"formed_s": time.Since(t0).Seconds(), "kip848": 0, "heartbeat_interval_ms": float64(gi.interval().Milliseconds())}
	if gi.kip848 {
		extra["kip848"] = 1
	}
	if t2 != nil {
		extra["nodes"] = 2
	}
	m.begin()
	extra["load_1m_start"] = load1()
	st, err := g.leaves(ctx, members, join, b.cfg.groupLeaves, gi.interval())
	extra["load_1m_end"] = load1()
	m.stop()
	g.flush()
	extra["leaves_unsubscribe"], extra["leaves_close"] = float64(st.unsubscribed), float64(st.closed)
	if p50, p99, maxv := g.assignL.percentiles(); p50 >= 0 {
		extra["assign_p50_ms"], extra["assign_p99_ms"], extra["assign_max_ms"] = p50, p99, maxv
	}
	if len(st.rebalance) > 0 {
		slices.Sort(st.rebalance)
		extra["rejoin_balanced_p50_s"] = st.rebalance[len(st.rebalance)/2].Seconds()
		extra["rejoin_balanced_max_s"] = st.rebalance[len(st.rebalance)-1].Seconds()
	}
	if err != nil {
		return extra, nil, err
	}
	commits := b.groupsCommits(ctx, t, m.peers, members)
	pcancel()
	if err := <-produced; err != nil {
		return extra, commits, fmt.Errorf("producer: %w", err)
	}
	if t2 != nil {
		if err := t2.srv.alive(); err != nil {
			return extra, commits, fmt.Errorf("second node: %w", err)
		}
	}
	return extra, commits, nil
}

// groupsCommits runs groups/commit on the members of a groups load: each
// member that owns partitions commits, as the member, the next offsets it
// was pushed, groupsCommitWindow commits in flight, for the duration.
func (b *bench) groupsCommits(ctx context.Context, t *target, peers []*server, members []member) *Result {
	l := newLoad()
	m := &meter{srv: t.srv, peers: peers, cl: b.cl}
	res := &Result{Scenario: scGroupsCommit, System: t.system, Clients: len(members)}
	// A franz-go member knows where a partition is once it polled from it.
	unknown := func(mb member) bool { a := mb.assignment(); return len(known(a)) < len(a) }
	for t0 := time.Now(); slices.ContainsFunc(members, unknown); time.Sleep(10 * time.Millisecond) {
		if time.Since(t0) > groupsAnswer {
			res.Error = fmt.Sprintf("members did not poll from each of their partitions within %s", groupsAnswer)
			return res
		}
	}
	b.prog.set(scGroupsCommit+" "+t.system, l, b.cfg.duration)
	m.begin()
	load := load1()
	until := time.Now().Add(b.cfg.duration)
	committing := 0
	var wg sync.WaitGroup
	for _, mb := range members {
		if len(known(mb.assignment())) == 0 {
			continue
		}
		committing++
		for range groupsCommitWindow {
			wg.Go(func() {
				rec := l.recorder()
				defer rec.flush()
				for k := 0; k < maxRequests && ctx.Err() == nil && time.Now().Before(until); k++ {
					offs := known(mb.assignment())
					if len(offs) == 0 {
						return // revoked meanwhile: nothing to commit
					}
					t0 := time.Now()
					if err := mb.commit(ctx, offs); err != nil {
						l.fail(err)
						return
					}
					rec.add(time.Since(t0), 0, 0)
				}
			})
		}
	}
	wg.Wait()
	m.stop()
	b.prog.set("", nil, 0)
	res.Error = resultError(nil, l)
	fill(res, l, m)
	res.Extra = map[string]float64{"members": float64(len(members)), "committing_members": float64(committing),
		"in_flight_per_member": groupsCommitWindow, "load_1m_start": load, "load_1m_end": load1()}
	return res
}

// groupsIdleLoad: -groups-idle members that only heartbeat: kafkaedge
// group subscriptions, one per connection, in turn on its two nodes,
// groupsPerIdleGroup in each group, of a topic of groupsIdlePartitions
// partitions that nobody writes to (most members own none). The nodes'
// CPU is measured over a window of three heartbeat intervals (at least
// the duration) before the members join, and over another once every
// group is stable on its coordinator; then every group must still be
// stable with all its members. The figure per 1,000 members is the
// difference.
func (b *bench) groupsIdleLoad(ctx context.Context, t *target, m *meter, l *load, topic string, gi groupInfo) (map[string]float64, error) {
	t2, err := b.secondNode(ctx, t, m, topic)
	if err != nil {
		return nil, err
	}
	defer t2.stop()
	nodes := []*target{t, t2}
	rss := func() (sum int64, ok bool) {
		for _, nd := range nodes {
			s := nd.srv.sample()
			if !s.valid {
				return 0, false
			}
			sum += s.RSS
		}
		return sum, true
	}
	time.Sleep(300 * time.Millisecond) // let the warm-up's garbage settle
	before, okBefore := rss()
	window := max(b.cfg.duration, 3*gi.interval())
	base := &meter{srv: t.srv, peers: m.peers, cl: b.cl, skipCounts: true}
	load := load1()
	base.begin()
	if !sleepCtx(ctx, window) {
		return nil, ctx.Err()
	}
	base.stop()
	n := b.cfg.groupIdle
	g := newGroupRun(topic, "", groupsIdlePartitions, l)
	group := func(i int) string { return fmt.Sprintf("%s-%d", b.topic("groups-idle"), i/groupsPerIdleGroup) }
	want := map[string]int{}
	for i := range n {
		want[group(i)]++
	}
	members := make([]member, n)
	defer func() { closeMembers(members) }()
	t0 := time.Now()
	err = forEach(ctx, n, 32, func(i int) error {
		rec := l.recorder()
		defer rec.flush()
		mb, err := g.joinWS(ctx, nodes[i%2].url, group(i), i, rec)
		if err == nil {
			members[i] = mb
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	joined := time.Since(t0)
	settled, err := b.groupsStable(ctx, gi, want)
	if err != nil {
		return nil, err
	}
	after, okAfter := rss()
	m.begin()
	if !sleepCtx(ctx, window) {
		return nil, ctx.Err()
	}
	m.stop()
	for i, mb := range members {
		if err := mb.failed(); err != nil {
			return nil, fmt.Errorf("member %d: %w", i+1, err)
		}
	}
	if _, err := b.groupsStable(ctx, gi, want); err != nil {
		return nil, fmt.Errorf("after the window: %w", err)
	}
	extra := map[string]float64{"members": float64(n), "groups": float64(len(want)), "conns": float64(n), "nodes": 2,
		"join_s": joined.Seconds(), "stable_s": settled.Seconds(), "window_s": window.Seconds(),
		"heartbeat_interval_ms": float64(gi.interval().Milliseconds()), "kip848": 0, "load_1m_start": load, "load_1m_end": load1()}
	if gi.kip848 {
		extra["kip848"] = 1
	}
	if m.end.valid && base.end.valid {
		with, without := m.cpu.Seconds()/max(m.elapsed.Seconds(), 1e-9), base.cpu.Seconds()/max(base.elapsed.Seconds(), 1e-9)
		extra["cpu_s_per_s"], extra["cpu_s_per_s_no_members"] = with, without
		extra["cpu_s_per_s_per_1000_members"] = (with - without) / (float64(n) / 1000)
	}
	if okBefore && okAfter {
		extra["rss_before_mib"] = float64(before) / (1 << 20)
		extra["kib_per_member"] = float64(after-before) / 1024 / float64(n)
	}
	return extra, nil
}

// sleepCtx sleeps d, or until ctx ends (false).
func sleepCtx(ctx context.Context, d time.Duration) bool {
	select {
	case <-ctx.Done():
		return false
	case <-time.After(d):
		return true
	}
}

// groupsStable waits until each group of want is stable on its
// coordinator with want[group] members (KIP-848: ConsumerGroupDescribe;
// classic: DescribeGroups), at most groupsSettle, and returns how long
// that took.
func (b *bench) groupsStable(ctx context.Context, gi groupInfo, want map[string]int) (time.Duration, error) {
	adm := kadm.NewClient(b.cl.admin)
	names := slices.Sorted(maps.Keys(want))
	t0 := time.Now()
	for {
		// Why each group is not stable; "" when it is.
		why := make(map[string]string, len(names))
		if gi.kip848 {
			ds, err := adm.DescribeConsumerGroups(ctx, names...)
			for _, d := range ds {
				why[d.Group] = unstable(d.State, len(d.Members), want[d.Group], d.Err)
			}
			if err != nil && len(ds) == 0 {
				why[names[0]] = err.Error()
			}
		} else {
			ds, err := adm.DescribeGroups(ctx, names...)
			for _, d := range ds {
				why[d.Group] = unstable(d.State, len(d.Members), want[d.Group], d.Err)
			}
			if err != nil && len(ds) == 0 {
				why[names[0]] = err.Error()
			}
		}
		var pending []string
		for _, name := range names {
			if w, ok := why[name]; !ok || w != "" {
				pending = append(pending, name+": "+w)
			}
		}
		switch {
		case len(pending) == 0:
			return time.Since(t0), nil
		case time.Since(t0) > groupsSettle:
			return 0, fmt.Errorf("%d of %d groups not stable after %s, first %s", len(pending), len(names), groupsSettle, pending[0])
		}
		if !sleepCtx(ctx, 250*time.Millisecond) {
			return 0, ctx.Err()
		}
	}
}

// unstable says why a described group is not stable with want members, ""
// if it is.
func unstable(state string, members, want int, err error) string {
	switch {
	case err != nil:
		return err.Error()
	case !strings.EqualFold(state, "stable") || members != want:
		return fmt.Sprintf("state %s, %d members of %d", state, members, want)
	}
	return ""
}

// member is one member of a groups run: a kafkaedge group subscription
// (wsMember) or a franz-go consumer (kgoMember).
type member interface {
	// assignment returns the partitions the member owns, each with the
	// offset it reads next (-1: not known yet).
	assignment() map[int32]int64
	// commit commits offs (partition: next offset) as the member.
	commit(ctx context.Context, offs map[int32]int64) error
	// leave leaves the group, by unsubscribing if unsubscribe and the
	// member can, else by closing; it returns how.
	leave(unsubscribe bool) (string, error)
	// failed returns why the member's reader stopped, if it failed.
	failed() error
	// close closes what the member holds (idempotent).
	close()
}

// closeMembers closes every non-nil member.
func closeMembers(members []member) {
	for _, mb := range members {
		if mb != nil {
			mb.close()
		}
	}
}

// known returns the offsets of offs that are known (>= 0).
func known(offs map[int32]int64) map[int32]int64 {
	out := make(map[int32]int64, len(offs))
	for p, o := range offs {
		if o >= 0 {
			out[p] = o
		}
	}
	return out
}

// groupRun is the state of one group's members in a groups load: the
// partitions of the last leaver that no other member has pushed yet, and
// the latencies of their takeover.
type groupRun struct {
	topic, group string
	topicID      [16]byte // the ceiling's commits name it (OffsetCommit v10)
	partitions   int
	l            *load // takeovers (the leave to the first push on the new owner), messages pushed, failures
	assignL      *load // the leave to the new owner's assignment

	mu         sync.Mutex
	rec, arec  *recorder
	leaver     int                 // the member that left last
	watch      map[int32]time.Time // its partitions not yet pushed by another member: the time of the leave
	reassigned map[int32]bool      // of watch, those assigned to another member
}

func newGroupRun(topic, group string, partitions int, l *load) *groupRun {
	g := &groupRun{topic: topic, group: group, partitions: partitions, l: l, assignL: newLoad(), leaver: -1,
		watch: map[int32]time.Time{}, reassigned: map[int32]bool{}}
	g.rec, g.arec = l.recorder(), g.assignL.recorder()
	return g
}

// assigned notes that partitions were added to member i's assignment at
// at.
func (g *groupRun) assigned(i int, added []int32, at time.Time) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, p := range added {
		if t0, ok := g.watch[p]; ok && i != g.leaver && !g.reassigned[p] {
			g.reassigned[p] = true
			g.arec.add(at.Sub(t0), 0, 0)
		}
	}
}

// pushed notes that member i received msgs messages (bytes of values) of
// partition p at at.
func (g *groupRun) pushed(i int, p int32, msgs, bytes int, at time.Time) {
	g.l.msgs.Add(int64(msgs))
	g.l.bytes.Add(int64(bytes))
	g.mu.Lock()
	defer g.mu.Unlock()
	if t0, ok := g.watch[p]; ok && i != g.leaver {
		g.rec.add(at.Sub(t0), 0, 0)
		delete(g.watch, p)
	}
}

// flush moves the latencies recorded into the run's loads.
func (g *groupRun) flush() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.rec.flush()
	g.arec.flush()
}

// leaveStats is what the leaves of a groups load counted.
type leaveStats struct {
	unsubscribed, closed int
	rebalance            []time.Duration // from each rejoin to a balanced group
}

// leaves makes n members leave, one at a time: the leaver commits what it
// was pushed, leaves, each of its partitions must be pushed by another
// member within groupsTakeover, then join(i) replaces it and the group
// must balance again within groupsSettle. The k-th leaver is member 7k
// modulo the members (so, with an even number of them, on each node in
// turn), or the next that owns partitions; leaves unsubscribe and close
// two at a time in turn. Each leave waits a random time under the
// members' heartbeat interval first: the group balances on a heartbeat,
// and members that joined together heartbeat together, so a leave at once
// would always fall at the start of their interval, where a real member's
// leave falls anywhere in it.
func (g *groupRun) leaves(ctx context.Context, members []member, join func(int) (member, error), n int, interval time.Duration) (leaveStats, error) {
	var st leaveStats
	rng := rand.New(rand.NewPCG(7, 11))
	for k := range n {
		if !sleepCtx(ctx, time.Duration(rng.Int64N(int64(interval)))) {
			return st, ctx.Err()
		}
		i := k * 7 % len(members)
		for j := range len(members) {
			if idx := (i + j) % len(members); len(members[idx].assignment()) > 0 {
				i = idx
				break
			}
		}
		mb := members[i]
		if err := mb.commit(ctx, known(mb.assignment())); err != nil {
			return st, fmt.Errorf("leave %d: member %d: %w", k+1, i+1, err)
		}
		g.mu.Lock()
		g.leaver = i
		clear(g.reassigned)
		now := time.Now()
		for p := range mb.assignment() {
			g.watch[p] = now
		}
		g.mu.Unlock()
		how, err := mb.leave(k/2%2 == 0)
		if err != nil {
			return st, fmt.Errorf("leave %d: member %d: %s: %w", k+1, i+1, how, err)
		}
		if how == "unsubscribe" {
			st.unsubscribed++
		} else {
			st.closed++
		}
		if err := g.waitTakeover(ctx, members, i); err != nil {
			return st, fmt.Errorf("leave %d (member %d, %s): %w", k+1, i+1, how, err)
		}
		mb.close()
		t0 := time.Now()
		mb, err = join(i)
		if err != nil {
			members[i] = nil
			return st, fmt.Errorf("rejoin after leave %d: %w", k+1, err)
		}
		members[i] = mb
		if err := g.waitBalanced(ctx, members); err != nil {
			return st, fmt.Errorf("after leave %d and its rejoin: %w", k+1, err)
		}
		st.rebalance = append(st.rebalance, time.Since(t0))
	}
	return st, nil
}

// waitTakeover waits until every partition of the leaver has been pushed
// by another member, at most groupsTakeover.
func (g *groupRun) waitTakeover(ctx context.Context, members []member, leaver int) error {
	t0 := time.Now()
	for ctx.Err() == nil {
		g.mu.Lock()
		var left []int32
		for p := range g.watch {
			left = append(left, p)
		}
		g.mu.Unlock()
		if len(left) == 0 {
			return nil
		}
		if err := failedMember(members, leaver); err != nil {
			return err
		}
		if time.Since(t0) > groupsTakeover {
			slices.Sort(left)
			return fmt.Errorf("partitions %v not pushed by another member within %s", left, groupsTakeover)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return ctx.Err()
}

// failedMember returns the failure of a member other than skip, if any.
func failedMember(members []member, skip int) error {
	for i, mb := range members {
		if i == skip {
			continue
		}
		if err := mb.failed(); err != nil {
			return fmt.Errorf("member %d: %w", i+1, err)
		}
	}
	return nil
}

// waitBalanced waits until the members own every partition once and
// their numbers of partitions differ by at most one, at most groupsSettle.
func (g *groupRun) waitBalanced(ctx context.Context, members []member) error {
	t0 := time.Now()
	for ctx.Err() == nil {
		if err := failedMember(members, -1); err != nil {
			return err
		}
		owners := make([]int, g.partitions)
		lo, hi := g.partitions, 0
		for _, mb := range members {
			a := mb.assignment()
			lo, hi = min(lo, len(a)), max(hi, len(a))
			for p := range a {
				if p < 0 || int(p) >= g.partitions {
					return fmt.Errorf("assigned partition %d of %d", p, g.partitions)
				}
				owners[p]++
			}
		}
		once := 0
		for _, o := range owners {
			if o == 1 {
				once++
			}
		}
		if once == g.partitions && hi-lo <= 1 {
			return nil
		}
		if time.Since(t0) > groupsSettle {
			return fmt.Errorf("not balanced after %s: %d of %d partitions owned by one member, members own %d to %d",
				groupsSettle, once, g.partitions, lo, hi)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return ctx.Err()
}

// wsMember is a kafkaedge group subscription, alone on its connection.
// Its goroutine (read) reads every frame: it keeps the assignment of
// KafkaAssignmentResp, checks the pushes against it (only partitions
// assigned, in offset order from their start: no gap, no repeat),
// reports both to the run, and hands the answers to the member's requests
// (its commits, its unsubscribe) to those waiting for them.
type wsMember struct {
	run   *groupRun
	index int
	group string
	c     *wsclient.Conn
	seq   int64 // the subscription

	wmu sync.Mutex // one write at a time

	mu      sync.Mutex
	next    map[int32]int64 // the assignment: partition -> offset expected next
	waiting map[int64]pendingReq

	memberLife // done: when read returns; leaving: a read error is the member leaving, not a failure
}

// memberLife is what both kinds of member have: a goroutine that reads
// for the member until it closes, and why it failed if it did.
type memberLife struct {
	leaving atomic.Bool   // the member is closing: its goroutine's errors are not failures
	done    chan struct{} // closed when the goroutine returns
	err     error         // why it failed; set before done closes
	once    sync.Once
}

// failed returns why the member's goroutine stopped, if it failed.
func (ml *memberLife) failed() error {
	select {
	case <-ml.done:
		return ml.err
	default:
		return nil
	}
}

// end closes the member once: it calls stop, which makes its goroutine
// return, and waits for that.
func (ml *memberLife) end(stop func()) {
	ml.once.Do(func() {
		ml.leaving.Store(true)
		stop()
		<-ml.done
	})
}

// pendingReq is a request of a wsMember waiting for its answer.
type pendingReq struct {
	want protowire.Number // the answer field that is success
	ch   chan error
}

// joinWS opens a connection to url and makes member i of group on it, a
// group subscription of the run's topic, whose first answer rec (if not
// nil) times.
func (g *groupRun) joinWS(ctx context.Context, url, group string, i int, rec *recorder) (*wsMember, error) {
	dctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	c, err := wsclient.Dial(dctx, url, wsclient.Options{})
	cancel()
	if err != nil {
		return nil, fmt.Errorf("member %d: %w", i+1, err)
	}
	_ = c.SetDeadline(time.Now().Add(groupsAnswer))
	req := &pubsub.PubSubReq{Req: &pubsub.PubSubReq_CmdKafkaSubscribe{CmdKafkaSubscribe: &pubsub.CmdKafkaSubscribe{Topic: g.topic, Group: group}}}
	seqs, _, err := subscribe(c, rec, req)
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("member %d: %w", i+1, err)
	}
	// No read deadline: the member's reads end when it is closed.
	_ = c.SetReadDeadline(time.Time{})
	m := &wsMember{run: g, index: i, group: group, c: c, seq: seqs[0], next: map[int32]int64{},
		waiting: map[int64]pendingReq{}, memberLife: memberLife{done: make(chan struct{})}}
	go m.read()
	return m, nil
}

// read reads the member's frames until its connection closes, it has
// unsubscribed, or a frame is wrong (a failure).
func (m *wsMember) read() {
	defer close(m.done)
	for range maxRequests {
		raw, err := m.c.RecvRaw()
		if err != nil {
			if !m.leaving.Load() {
				m.fail(err)
			}
			return
		}
		now := time.Now()
		f, err := parseFrame(raw, -1, m.visit)
		stop := false
		if err == nil {
			stop, err = m.handle(f, now)
		}
		if err != nil {
			m.fail(err)
			return
		}
		if stop {
			return
		}
	}
	m.fail(fmt.Errorf("%d frames and not closed", maxRequests))
}

// fail records why the reader stopped.
func (m *wsMember) fail(err error) {
	m.err = fmt.Errorf("member %d (subscription %d): %w", m.index+1, m.seq, err)
	m.run.l.fail(m.err)
}

// visit checks one pushed message of partition p.
func (m *wsMember) visit(p int32, offset int64, _ []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	want, ok := m.next[p]
	switch {
	case !ok:
		return fmt.Errorf("a message of partition %d, which is not assigned to the member", p)
	case offset != want:
		return fmt.Errorf("partition %d: offset %d, want %d (a gap or a repeat)", p, offset, want)
	}
	m.next[p] = offset + 1
	return nil
}

// handle takes one frame, parsed (its messages visited); stop reports the
// answer to the member's unsubscribe, after which nothing of the
// subscription comes.
func (m *wsMember) handle(f frame, now time.Time) (stop bool, err error) {
	switch {
	case f.seq == m.seq && f.kind == pubsub.FieldKafkaAssignmentResp:
		var a pubsub.KafkaAssignmentResp
		if err := proto.Unmarshal(f.body, &a); err != nil {
			return false, fmt.Errorf("%w: assignment: %w", wsclient.ErrMalformed, err)
		}
		return false, m.assign(&a, now)
	case f.seq == m.seq && f.kind == pubsub.FieldKafkaRecords:
		m.mu.Lock()
		want, ok := m.next[f.partition]
		m.mu.Unlock()
		if !ok || f.next != want {
			return false, fmt.Errorf("a push of partition %d with next_offset %d after offset %d (no control records were written)",
				f.partition, f.next, want-1)
		}
		if f.msgs > 0 {
			m.run.pushed(m.index, f.partition, f.msgs, f.bytes, now)
		}
		return false, nil
	case f.seq == m.seq:
		return false, f.err()
	}
	m.mu.Lock()
	w, ok := m.waiting[f.seq]
	delete(m.waiting, f.seq)
	m.mu.Unlock()
	if !ok {
		return false, fmt.Errorf("%w: answer %d to no request", wsclient.ErrSequence, f.seq)
	}
	if f.kind != w.want {
		w.ch <- f.err()
		return false, nil
	}
	w.ch <- nil
	return w.want == pubsub.FieldKafkaSubscriptionEndResp, nil
}

// assign takes a KafkaAssignmentResp: the member's whole assignment, with
// the start offsets of the partitions it adds.
func (m *wsMember) assign(a *pubsub.KafkaAssignmentResp, now time.Time) error {
	next := make(map[int32]int64, len(a.GetAssigned()))
	var added []int32
	m.mu.Lock()
	for _, pos := range a.GetAssigned() {
		p := pos.GetPartition()
		if p < 0 || int(p) >= m.run.partitions {
			m.mu.Unlock()
			return fmt.Errorf("assigned partition %d of %d", p, m.run.partitions)
		}
		if o, ok := m.next[p]; ok {
			next[p] = o
		} else {
			next[p] = pos.GetOffset()
			added = append(added, p)
		}
	}
	m.next = next
	m.mu.Unlock()
	m.run.assigned(m.index, added, now)
	return nil
}

// request sends req and waits for its answer, which must be of the field
// want.
func (m *wsMember) request(req *pubsub.PubSubReq, want protowire.Number) error {
	ch := make(chan error, 1)
	m.wmu.Lock()
	seq := m.c.Number(req).GetSequence()
	m.mu.Lock()
	m.waiting[seq] = pendingReq{want: want, ch: ch}
	m.mu.Unlock()
	_ = m.c.SetWriteDeadline(time.Now().Add(groupsAnswer))
	err := m.c.Send(req)
	m.wmu.Unlock()
	if err != nil {
		return err
	}
	timer := time.NewTimer(groupsAnswer)
	defer timer.Stop()
	select {
	case err := <-ch:
		return err
	case <-m.done:
		select {
		case err := <-ch:
			return err
		default:
		}
		return fmt.Errorf("request %d: no answer before the connection ended", seq)
	case <-timer.C:
		return fmt.Errorf("request %d: no answer within %s", seq, groupsAnswer)
	}
}

func (m *wsMember) assignment() map[int32]int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return maps.Clone(m.next)
}

func (m *wsMember) commit(_ context.Context, offs map[int32]int64) error {
	c := &pubsub.CmdKafkaCommit{Group: m.group, Topic: m.run.topic, Subscription: m.seq}
	for _, p := range slices.Sorted(maps.Keys(offs)) {
		c.Offsets = append(c.Offsets, &pubsub.KafkaPartitionOffset{Partition: p, Offset: offs[p]})
	}
	err := m.request(&pubsub.PubSubReq{Req: &pubsub.PubSubReq_CmdKafkaCommit{CmdKafkaCommit: c}}, pubsub.FieldKafkaCommitResp)
	if err != nil {
		return fmt.Errorf("member %d: commit: %w", m.index+1, err)
	}
	return nil
}

func (m *wsMember) leave(unsubscribe bool) (string, error) {
	m.leaving.Store(true)
	if unsubscribe {
		return "unsubscribe", m.request(unsubscribeReq(m.seq), pubsub.FieldKafkaSubscriptionEndResp)
	}
	return "close", m.c.Close()
}

func (m *wsMember) close() { m.end(func() { m.c.Close() }) }

// kgoMember is a franz-go consumer of the group, reading the brokers
// directly: the ceiling. Its callbacks and its poll loop report to the run
// as a wsMember's reader does.
type kgoMember struct {
	run   *groupRun
	index int
	cl    *kgo.Client

	mu   sync.Mutex
	next map[int32]int64 // the assignment: partition -> offset after the last record polled, -1 before one

	memberLife // done: when poll returns
}

// joinKgo starts member i of the run's group as a franz-go consumer of its
// topic: with KIP-848's protocol and the brokers' uniform assignor (kgo's
// StickyBalancer) as kafkaedge's members use them when kip848, else the
// classic protocol with cooperative-sticky; without a committed offset
// from the end, as a subscription starts.
func (g *groupRun) joinKgo(brokers []string, kip848 bool, i int) (*kgoMember, error) {
	km := &kgoMember{run: g, index: i, next: map[int32]int64{}, memberLife: memberLife{done: make(chan struct{})}}
	revoke := func(_ context.Context, _ *kgo.Client, m map[string][]int32) { km.revoked(m[g.topic]) }
	opts := []kgo.Opt{kgo.SeedBrokers(brokers...), kgo.ClientID("kafkaedge-bench-ceiling"),
		kgo.ConsumerGroup(g.group), kgo.ConsumeTopics(g.topic), kgo.DisableAutoCommit(),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtEnd()),
		kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, m map[string][]int32) { km.assigned(m[g.topic], time.Now()) }),
		kgo.OnPartitionsRevoked(revoke), kgo.OnPartitionsLost(revoke),
		kgo.WithLogger(kgo.BasicLogger(io.Discard, kgo.LogLevelNone, nil))}
	if kip848 {
		opts = append(opts, kgo.ServerSideBalancer(), kgo.Balancers(kgo.StickyBalancer()))
	} else {
		opts = append(opts, kgo.Balancers(kgo.CooperativeStickyBalancer()))
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("member %d: %w", i+1, err)
	}
	km.cl = cl
	go km.poll()
	return km, nil
}

func (km *kgoMember) assigned(ps []int32, at time.Time) {
	km.mu.Lock()
	var added []int32
	for _, p := range ps {
		if _, ok := km.next[p]; !ok {
			km.next[p] = -1
			added = append(added, p)
		}
	}
	km.mu.Unlock()
	km.run.assigned(km.index, added, at)
}

func (km *kgoMember) revoked(ps []int32) {
	km.mu.Lock()
	for _, p := range ps {
		delete(km.next, p)
	}
	km.mu.Unlock()
}

// poll polls the member's records until its client closes.
func (km *kgoMember) poll() {
	defer close(km.done)
	for range maxRequests {
		fs := km.cl.PollFetches(context.Background())
		if fs.IsClientClosed() || km.leaving.Load() {
			return
		}
		if errs := fs.Errors(); len(errs) > 0 {
			e := errs[0]
			km.err = fmt.Errorf("member %d: fetch %s/%d: %w", km.index+1, e.Topic, e.Partition, e.Err)
			km.run.l.fail(km.err)
			return
		}
		now := time.Now()
		fs.EachPartition(func(p kgo.FetchTopicPartition) {
			if len(p.Records) == 0 {
				return
			}
			bytes := 0
			for _, r := range p.Records {
				bytes += len(r.Value)
			}
			km.mu.Lock()
			if _, ok := km.next[p.Partition]; ok {
				km.next[p.Partition] = p.Records[len(p.Records)-1].Offset + 1
			}
			km.mu.Unlock()
			km.run.pushed(km.index, p.Partition, len(p.Records), bytes, now)
		})
	}
}

func (km *kgoMember) assignment() map[int32]int64 {
	km.mu.Lock()
	defer km.mu.Unlock()
	return maps.Clone(km.next)
}

// commit sends the OffsetCommit kafkaedge sends for a member's
// CmdKafkaCommit, with the member's id and epoch (or generation), through
// the consumer's client (to the group's coordinator).
func (km *kgoMember) commit(ctx context.Context, offs map[int32]int64) error {
	req := kmsg.NewPtrOffsetCommitRequest()
	req.Group = km.run.group
	req.MemberID, req.Generation = km.cl.GroupMetadata()
	rt := kmsg.NewOffsetCommitRequestTopic()
	rt.Topic, rt.TopicID = km.run.topic, km.run.topicID // by name up to v9, by ID from v10 (Kafka 4.2)
	for _, p := range slices.Sorted(maps.Keys(offs)) {
		rp := kmsg.NewOffsetCommitRequestTopicPartition()
		rp.Partition, rp.Offset, rp.LeaderEpoch = p, offs[p], -1
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, km.cl)
	if err == nil {
		for _, t := range resp.Topics {
			for _, p := range t.Partitions {
				if err == nil {
					err = kerr.ErrorForCode(p.ErrorCode)
				}
			}
		}
	}
	if err != nil {
		return fmt.Errorf("member %d: commit: %w", km.index+1, err)
	}
	return nil
}

func (km *kgoMember) leave(bool) (string, error) {
	km.close()
	return "close", nil
}

func (km *kgoMember) close() { km.end(km.cl.Close) } // Close leaves the group
