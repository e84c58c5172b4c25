package reactor

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gobwas/ws"
	"github.com/panjf2000/gnet/v2"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/kafkaedge/kafkaedge/kafkawire"
	"github.com/kafkaedge/kafkaedge/kafkawire/wire"
	"github.com/kafkaedge/kafkaedge/proto/pubsub"
)

// This file is the connections' side of the subscriptions
// (CmdKafkaSubscribe, CmdKafkaUnsubscribe; EXTENSIONS.md): a subscription
// is named by its sequence, holds one subPart per partition on that
// partition's tail (tail.go), and ends by unsubscribe, by the server (the
// topic deleted, the route changed, the node draining) or with its
// connection.

// maxCatchUps is how many subscriber fetches (of subscribers behind the
// tail cache) run at once on the node; more wait. Each asks Kafka for at
// most one fetch answer's size (an eighth of MaxOutbound) and holds twice
// that of the memory budget while it runs.
const maxCatchUps = 16

// resolveParallel is how many partitions of one new subscription have
// their start offsets looked up at once.
const resolveParallel = 16

// Reasons of KafkaSubscriptionEndResp.
const (
	endUnsubscribed = "unsubscribed"
	endDraining     = "server shutting down"
	endNoPartition  = "no partition left"
)

// subscription is one CmdKafkaSubscribe of a connection.
type subscription struct {
	s       *Server
	st      *connState
	seq     int64
	topic   string
	client  kafkaClient
	route   string
	kind    string // the kind of its pushes' encoding: headers, filter
	headers bool
	filter  *pubsub.KafkaFilter
	maxPush int
	reset   pubsub.Reset
	watch   bool        // every partition of the topic, those added later too
	group   *groupState // nil: not a group subscription
	ended   atomic.Bool

	mu    sync.Mutex
	parts map[int32]*subPart
	known map[int32]bool // every partition it ever had, so a failed one is not added again
}

// subPart is one partition of a subscription, on the partition's tail. Its
// offset and state are guarded by the tail's mutex.
type subPart struct {
	sub       *subscription
	t         *tail
	partition int32
	offset    int64 // the next offset to push
	state     uint8
	attached  bool // counted in its tail's kinds
}

// live reports whether the subscription has not ended.
func (sub *subscription) live() bool { return !sub.ended.Load() }

// over reports whether the connection may not be pushed more: it holds
// more than the push window, an eighth of MaxOutbound (its gnet outbound
// buffer as of its last write callback, plus the writes not yet
// executed), or the node's memory budget is used up. Safe on any
// goroutine.
func (st *connState) over() bool {
	return st.outBuffered.Load()+st.pending.Load() > st.s.pushWindow || st.s.mem.full.Load()
}

// subscribe checks a CmdKafkaSubscribe on the loop and starts it: the
// connection's own limits are checked here, the topic's partitions and
// start offsets by runSubscribe.
func (st *connState) subscribe(seq int64, m *pubsub.CmdKafkaSubscribe) {
	s := st.s
	ls := st.loop
	fail := func(reason string) {
		s.obs.Request(CmdSubscribe, false, 0)
		ls.out = appendErrorResp(ls.out, &ls.body, seq, 0, pubsub.SubscribeErrorMessage(m.GetTopic(), reason))
	}
	switch {
	case m.GetTopic() == "":
		fail("no topic")
		return
	case m.GetGroup() != "" && len(m.GetPartitions()) > 0:
		fail("a group subscription names no partitions: the group assigns them")
		return
	case m.GetGroup() == "" && m.GetAutoCommit():
		fail("auto_commit needs a group")
		return
	case len(m.GetPartitions()) > s.cfg.MaxSubscriptionPartitions:
		fail(fmt.Sprintf("%d partitions, more than the limit of %d partitions per subscription",
			len(m.GetPartitions()), s.cfg.MaxSubscriptionPartitions))
		return
	}
	for p := range m.GetOffsets() {
		if len(m.GetPartitions()) > 0 && !slices.Contains(m.GetPartitions(), p) {
			fail("offsets names partition " + strconv.Itoa(int(p)) + ", which partitions does not")
			return
		}
	}
	st.subMu.Lock()
	_, dup := st.subs[seq]
	n, members := len(st.subs), 0
	for _, sub := range st.subs {
		if sub.group != nil {
			members++
		}
	}
	st.subMu.Unlock()
	switch {
	case dup:
		fail("sequence " + strconv.FormatInt(seq, 10) + " is already in use")
		return
	case n >= s.cfg.MaxSubscriptions:
		fail(fmt.Sprintf("the limit of %d subscriptions per connection is reached", s.cfg.MaxSubscriptions))
		return
	case m.GetGroup() != "" && members >= s.cfg.MaxGroupMembers:
		fail(fmt.Sprintf("the limit of %d group subscriptions per connection is reached", s.cfg.MaxGroupMembers))
		return
	}
	sub := &subscription{s: s, st: st, seq: seq, topic: m.GetTopic(), client: st.route.client, route: st.route.r.URI,
		headers: m.GetHeaders(), filter: m.GetFilter(), maxPush: s.cfg.MaxPushBytes, reset: m.GetReset_(),
		watch: len(m.GetPartitions()) == 0, parts: make(map[int32]*subPart), known: make(map[int32]bool)}
	if m.GetGroup() != "" {
		sub.watch = false
		sub.group = &groupState{name: m.GetGroup(), autoCommit: m.GetAutoCommit(), start: m,
			gone: make(chan struct{}), committed: make(map[int32]int64)}
	}
	if mb := int(m.GetMaxBytes()); mb > 0 && mb < sub.maxPush {
		sub.maxPush = mb
	}
	if sub.headers {
		sub.kind = "h"
	}
	if f := sub.filter; f != nil && (f.Key != nil || len(f.KeyPrefix) > 0 || len(f.Headers) > 0) {
		b, _ := proto.MarshalOptions{Deterministic: true}.Marshal(f)
		sub.kind += "f" + string(b)
	} else {
		sub.filter = nil
	}
	st.subMu.Lock()
	if st.subs == nil {
		st.subs = make(map[int64]*subscription)
	}
	st.subs[seq] = sub
	st.subMu.Unlock()
	st.nsubs.Add(1)
	st.startKafka(kafkaReq{cmd: pubsub.FieldCmdKafkaSubscribe, seq: seq, ext: m, start: s.now(), sub: sub})
}

// unsubscribe answers a CmdKafkaUnsubscribe on the loop: the subscription
// leaves its tails, so nothing of it is pushed after the answer, which goes
// behind the pushes already queued.
func (st *connState) unsubscribe(seq int64, m *pubsub.CmdKafkaUnsubscribe) {
	s := st.s
	st.subMu.Lock()
	sub := st.subs[m.GetSubscription()]
	st.subMu.Unlock()
	if sub == nil {
		s.obs.Request(CmdUnsubscribe, false, 0)
		ls := st.loop
		ls.out = appendErrorResp(ls.out, &ls.body, seq, 0,
			"failed to unsubscribe, subscription: "+strconv.FormatInt(m.GetSubscription(), 10)+", err: no such subscription")
		return
	}
	if sub.ended.CompareAndSwap(false, true) {
		sub.detach()
	}
	j := newJob(st)
	j.cmd, j.ok, j.start = CmdUnsubscribe, true, s.now()
	j.scratch = appendSubscriptionEnd(j.scratch[:0], 0, endUnsubscribed)
	j.own = appendResp(j.own[:0], seq, pubsub.FieldKafkaSubscriptionEndResp, j.scratch)
	st.inflight++
	s.send(j)
}

// appendSubscriptionEnd appends a KafkaSubscriptionEndResp body.
func appendSubscriptionEnd(dst []byte, code int32, reason string) []byte {
	b, _ := proto.MarshalOptions{}.MarshalAppend(dst, &pubsub.KafkaSubscriptionEndResp{Code: code, Reason: reason})
	return b
}

// detach takes the subscription off its tails and its connection; it has
// ended already. Called without tail locks.
func (sub *subscription) detach() {
	s := sub.s
	sub.mu.Lock()
	parts := sub.parts
	sub.parts = nil
	g := sub.group
	joined := g != nil && g.member != nil
	sub.mu.Unlock()
	var final map[int32]int64 // a group subscription's next offsets, for its last auto commit
	if joined && g.autoCommit {
		final = make(map[int32]int64, len(parts))
	}
	for _, sp := range parts {
		t := sp.t
		t.mu.Lock()
		if final != nil {
			final[sp.partition] = sp.offset
		}
		t.remove(sp)
		t.mu.Unlock()
		s.closeTail(t)
	}
	st := sub.st
	st.subMu.Lock()
	if st.subs[sub.seq] == sub {
		delete(st.subs, sub.seq)
		st.nsubs.Add(-1)
	}
	st.subMu.Unlock()
	s.subsMu.Lock()
	if _, ok := s.subs[sub]; ok {
		delete(s.subs, sub)
		s.obs.Subscriptions(-1)
		if g != nil {
			s.obs.GroupMembers(-1)
		}
	}
	s.subsMu.Unlock()
	if g != nil {
		close(g.gone)
		if joined {
			s.leaveGroup(sub, final)
		}
	}
}

// end ends the subscription from the server's side with a
// KafkaSubscriptionEndResp. Called on any goroutine but a loop, without
// tail locks.
func (sub *subscription) end(code int32, reason string) {
	if !sub.ended.CompareAndSwap(false, true) {
		return
	}
	sub.detach()
	sub.s.sendSubFrame(sub, pubsub.FieldKafkaSubscriptionEndResp, appendSubscriptionEnd(nil, code, reason))
}

// dropPart stops one partition of the subscription after its failure, with
// an ErrorResp; a subscription left without partitions (that does not
// follow the topic's new ones) ends. Called without tail locks.
func (sub *subscription) dropPart(sp *subPart, code int32, msg string) {
	sub.mu.Lock()
	if sub.parts[sp.partition] != sp {
		sub.mu.Unlock()
		return
	}
	delete(sub.parts, sp.partition)
	left := len(sub.parts)
	sub.mu.Unlock()
	t := sp.t
	t.mu.Lock()
	t.remove(sp)
	t.mu.Unlock()
	sub.s.closeTail(t)
	if !sub.live() {
		return
	}
	sub.s.sendSubFrame(sub, pubsub.FieldErrorResp, pubsub.AppendErrorResp(nil, code, msg))
	if left == 0 && !sub.watch {
		sub.end(0, endNoPartition)
	}
}

// sendSubFrame writes one message of a subscription (not a request's
// answer) behind its pushes.
func (s *Server) sendSubFrame(sub *subscription, field protowire.Number, body []byte) {
	j := newJob(sub.st)
	j.push = true
	j.own = appendResp(j.own[:0], sub.seq, field, body)
	s.send(j)
}

// sendPush writes a kafka_records push of sub: parts (size bytes, n
// messages of partition, shared with other pushes) with the partition's
// high watermark and where reading goes on.
func (s *Server) sendPush(sub *subscription, partition int32, parts [][]byte, size, n int, hwm, next int64) {
	j := newJob(sub.st)
	j.push = true
	j.topic, j.msgs = sub.topic, n
	j.scratch = pubsub.AppendKafkaPartitionRecords(j.scratch[:0], sub.topic, partition, nil, hwm, next, 0, "")
	j.own = appendRespHeaderFrame(j.own[:0], sub.seq, pubsub.FieldKafkaRecords, len(j.scratch)+size)
	j.own = append(j.own, j.scratch...)
	j.more = append(j.more[:0], parts...)
	s.send(j)
}

// register adds a subscription that started to the node's. sub.mu is
// held, so that a detach after this finds it and one before it made sub
// not live.
func (s *Server) register(sub *subscription) {
	s.subsMu.Lock()
	if s.subs == nil {
		s.subs = make(map[*subscription]struct{})
	}
	s.subs[sub] = struct{}{}
	s.subsMu.Unlock()
}

// position is a partition's start as a new subscription resolved it.
type position struct {
	sp  *subPart
	hwm int64
	err error // RESET_NONE and a start out of range: the partition does not start
}

// runSubscribe looks up the subscription's partitions and where each
// starts, answers KafkaSubscribeResp (or an ErrorResp, and the subscription
// does not exist), then puts its partitions on their tails. Runs on its own
// goroutine, holding a Kafka slot.
func (s *Server) runSubscribe(sub *subscription, m *pubsub.CmdKafkaSubscribe, start int64) {
	st := sub.st
	fail := func(code int32, reason string) {
		if sub.ended.CompareAndSwap(false, true) {
			sub.detach()
		}
		j := newJob(st)
		j.cmd, j.start = CmdSubscribe, start
		j.own = appendErrorResp(j.own[:0], &j.scratch, sub.seq, code, pubsub.SubscribeErrorMessage(sub.topic, reason))
		s.send(j)
	}
	ctx, cancel := context.WithTimeout(s.baseCtx, s.cfg.MaxFetchWait)
	defer cancel()
	tps, err := sub.client.Partitions(ctx, []string{sub.topic})
	if err == nil && tps[0].Err != nil {
		err = tps[0].Err
	}
	if err != nil {
		code, reason := s.kafkaFailure(callKey{topic: sub.topic, partition: -1}, err)
		fail(code, reason)
		return
	}
	if sub.group != nil {
		s.runGroupSubscribe(sub, m, start, fail)
		return
	}
	parts := slices.Clone(m.GetPartitions())
	slices.Sort(parts)
	parts = slices.Compact(parts)
	if len(parts) == 0 {
		parts = tps[0].Partitions
		if len(parts) > s.cfg.MaxSubscriptionPartitions {
			fail(0, fmt.Sprintf("the topic has %d partitions, more than the limit of %d partitions per subscription",
				len(parts), s.cfg.MaxSubscriptionPartitions))
			return
		}
	}
	for _, p := range parts {
		if _, ok := slices.BinarySearch(tps[0].Partitions, p); !ok {
			fail(int32(wire.ErrUnknownTopicOrPartition), pubsub.ReasonNotFoundPartition)
			return
		}
	}
	pos := make([]position, len(parts))
	var wg sync.WaitGroup
	sem := make(chan struct{}, resolveParallel)
	for i, p := range parts {
		from, ok := m.GetOffsets()[p]
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			pos[i] = s.resolve(ctx, sub, p, m, from, ok)
		})
	}
	wg.Wait()
	var resp pubsub.KafkaSubscribeResp
	resp.Topic = sub.topic
	var firstErr error
	for _, ps := range pos {
		if ps.sp != nil {
			resp.Positions = append(resp.Positions, &pubsub.KafkaPosition{Partition: ps.sp.partition, Offset: ps.sp.offset, HighWatermark: ps.hwm})
		} else if firstErr == nil && !outOfRange(ps.err) {
			firstErr = ps.err
		}
	}
	if firstErr != nil {
		for _, ps := range pos {
			if ps.sp != nil {
				s.closeTail(ps.sp.t)
			}
		}
		code, reason := s.kafkaFailure(callKey{topic: sub.topic, partition: -1}, firstErr)
		fail(code, reason)
		return
	}
	sub.mu.Lock()
	if !sub.live() {
		sub.mu.Unlock()
		// The connection closed, or its route changed or the node drains:
		// the connection is closing, nobody to answer.
		for _, ps := range pos {
			if ps.sp != nil {
				s.closeTail(ps.sp.t)
			}
		}
		return
	}
	for _, ps := range pos {
		if ps.sp != nil {
			sub.parts[ps.sp.partition] = ps.sp
		}
	}
	for _, p := range parts {
		sub.known[p] = true
	}
	s.register(sub)
	sub.mu.Unlock()
	s.obs.Subscriptions(1)

	j := newJob(st)
	j.cmd, j.ok, j.start = CmdSubscribe, true, start
	j.scratch, _ = proto.MarshalOptions{}.MarshalAppend(j.scratch[:0], &resp)
	j.own = appendResp(j.own[:0], sub.seq, pubsub.FieldKafkaSubscribeResp, j.scratch)
	s.send(j)
	started := 0
	for _, ps := range pos {
		if ps.sp != nil {
			started++
			t := ps.sp.t
			t.mu.Lock()
			t.advance(ps.sp)
			t.mu.Unlock()
		}
	}
	for i, ps := range pos {
		if ps.sp == nil {
			// RESET_NONE and a start out of range: that partition stops.
			s.sendSubFrame(sub, pubsub.FieldErrorResp, pubsub.AppendErrorResp(nil, int32(wire.ErrOffsetOutOfRange),
				pubsub.FetchErrorMessage(sub.topic, parts[i], wire.ErrorName(wire.ErrOffsetOutOfRange))))
		}
	}
	if started == 0 && !sub.watch {
		sub.end(0, endNoPartition)
	}
}

// resolve finds where partition p of a new subscription starts and holds
// its tail: from the tail, when one is open, without asking Kafka where it
// can (the end, a start the tail cache holds, the last messages); else with
// ListOffsets, which opens the tail at the partition's end. from is the
// start offsets[p] names (fromSet), else m's start applies.
func (s *Server) resolve(ctx context.Context, sub *subscription, p int32, m *pubsub.CmdKafkaSubscribe, from int64, fromSet bool) position {
	k := tailKey{sub.client, sub.topic, p}
	end, logStart := int64(-1), int64(-1)
	var cacheStart int64 = -1
	var last int64
	lastOK := false
	want := int64(-1) // the start asked: an offset, -1 the end, -2 the beginning
	var ts int64 = -1 // or a timestamp
	n := int64(-1)    // or the last n messages
	switch {
	case fromSet:
		want = from
	case m.GetStart() == nil:
	default:
		switch x := m.GetStart().(type) {
		case *pubsub.CmdKafkaSubscribe_Offset:
			want = x.Offset
		case *pubsub.CmdKafkaSubscribe_Timestamp:
			ts = x.Timestamp
		case *pubsub.CmdKafkaSubscribe_Last:
			n = max(x.Last, 0)
		}
	}
	t := s.openTail(k, -1)
	if t != nil {
		t.mu.Lock()
		end = t.next
		logStart = t.logStart
		if len(t.cache) > 0 {
			cacheStart = t.cache[0].start
		}
		if n >= 0 {
			last, lastOK = t.lastN(n)
		}
		t.mu.Unlock()
	}
	var err error
	list := func(at int64) int64 {
		if err != nil {
			return 0
		}
		var off int64
		off, err = sub.client.ListOffset(ctx, sub.topic, p, at)
		return off
	}
	if end < 0 {
		end = list(-1)
	}
	needStart := func() int64 {
		if logStart < 0 {
			logStart = list(-2)
		}
		return logStart
	}
	off := end
	switch {
	case ts >= 0:
		if off = list(ts); off < 0 {
			off = end
		}
	case n >= 0 && lastOK:
		s.obs.TailRead(TailCacheHit)
		off = last
	case n >= 0:
		off = max(end-n, needStart())
	case want == -2:
		off = needStart()
	case want >= 0 && cacheStart >= 0 && want >= cacheStart && want <= end:
		off = want
	case want >= 0:
		off = want
		if off > end || off < needStart() {
			switch sub.reset {
			case pubsub.Reset_RESET_EARLIEST:
				off = needStart()
			case pubsub.Reset_RESET_NONE:
				if err == nil {
					err = &kafkawire.Error{Op: "fetch", Topic: sub.topic, Partition: p, Offset: want, Code: wire.ErrOffsetOutOfRange}
				}
			default:
				off = end
			}
		}
	}
	if err != nil {
		if t != nil {
			s.closeTail(t)
		}
		return position{err: err}
	}
	if t == nil {
		t = s.openTail(k, end)
		if t == nil {
			return position{err: &kafkawire.Error{Op: "fetch", Topic: sub.topic, Partition: p, Err: kafkawire.ErrClosed}}
		}
	}
	return position{sp: &subPart{sub: sub, t: t, partition: p, offset: off}, hwm: end}
}

// pausePart records a subscriber paused for its connection's outbound
// queue, and makes sure the loop looks at the queue. The tail's mutex is
// held.
func (st *connState) pausePart(sp *subPart) {
	st.subMu.Lock()
	st.paused = append(st.paused, sp)
	check := !st.pauseCheck
	st.pauseCheck = true
	st.npaused.Store(1)
	st.subMu.Unlock()
	if check {
		_ = st.loop.el.Execute(st.s.baseCtx, gnet.RunnableFunc(func(context.Context) error {
			st.checkPaused()
			return nil
		}))
	}
}

// checkPaused runs on the loop after a subscriber was paused: if the queue
// is over MaxOutbound (or the node's memory budget used up), the sweep
// resumes the subscribers once it drains; else they go on now.
func (st *connState) checkPaused() {
	if st.phase != phaseOpen {
		return
	}
	st.outBuffered.Store(int64(st.c.OutboundBuffered()))
	if st.over() {
		// The sweep resumes its subscribers once it drained below the
		// push window, and retries while the node's memory is used up.
		st.markOver()
		return
	}
	st.resumeSubs()
}

// resumeSubs lets the paused subscribers of the connection go on from
// their offsets, on a goroutine of their own. Called on the loop.
func (st *connState) resumeSubs() {
	if st.npaused.Load() == 0 {
		return
	}
	st.subMu.Lock()
	list := st.paused
	st.paused = nil
	st.pauseCheck = false
	st.npaused.Store(0)
	st.subMu.Unlock()
	if len(list) == 0 {
		return
	}
	s := st.s
	s.obs.Backpressure(BackpressurePushResumed)
	go func() {
		for _, sp := range list {
			t := sp.t
			t.mu.Lock()
			if (sp.state == spPaused || sp.state == spDeferred) && sp.sub.live() {
				t.setState(sp, spIdle)
				t.advance(sp)
			}
			t.mu.Unlock()
		}
	}()
}

// closeSubs ends the connection's subscriptions without a word: it is
// closed. Called on the loop.
func (st *connState) closeSubs() {
	for _, sub := range st.takeSubs() {
		if sub.ended.CompareAndSwap(false, true) {
			sub.detach()
		}
	}
}

// takeSubs returns the connection's subscriptions.
func (st *connState) takeSubs() []*subscription {
	st.subMu.Lock()
	defer st.subMu.Unlock()
	out := make([]*subscription, 0, len(st.subs))
	for _, sub := range st.subs {
		out = append(out, sub)
	}
	return out
}

// endSubs ends the connection's subscriptions with a
// KafkaSubscriptionEndResp each, written now: the connection is closed
// next (goAway). Called on the loop.
func (st *connState) endSubs(reason string) {
	if st.nsubs.Load() == 0 || st.phase != phaseOpen {
		return
	}
	for _, sub := range st.takeSubs() {
		if !sub.ended.CompareAndSwap(false, true) {
			continue
		}
		sub.detach()
		ls := st.loop
		ls.body = appendSubscriptionEnd(ls.body[:0], 0, reason)
		frame := appendResp(nil, sub.seq, pubsub.FieldKafkaSubscriptionEndResp, ls.body)
		_, _ = st.c.Write(frame)
		st.bytesOut += int64(len(frame))
	}
}

// refreshSubs follows the topics of the subscriptions, every
// SubscriptionRefresh: a topic deleted ends its subscriptions; a partition
// added joins the subscriptions that follow every partition of their
// topic, from its beginning. It stops with the server.
func (s *Server) refreshSubs() {
	t := time.NewTicker(s.cfg.SubscriptionRefresh)
	defer t.Stop()
	for {
		select {
		case <-s.baseCtx.Done():
			return
		case at := <-t.C:
			s.refreshOnce(at.Add(-time.Millisecond))
		}
	}
}

// refreshOnce is one round of refreshSubs, with metadata fetched after
// after.
func (s *Server) refreshOnce(after time.Time) {
	s.subsMu.Lock()
	byClient := make(map[kafkaClient][]*subscription)
	for sub := range s.subs {
		byClient[sub.client] = append(byClient[sub.client], sub)
	}
	s.subsMu.Unlock()
	for client, subs := range byClient {
		topics := make([]string, 0, len(subs))
		for _, sub := range subs {
			topics = append(topics, sub.topic)
		}
		slices.Sort(topics)
		topics = slices.Compact(topics)
		ctx, cancel := context.WithTimeout(s.baseCtx, s.cfg.MaxFetchWait)
		tps, err := client.PartitionsAfter(ctx, topics, after)
		cancel()
		if err != nil {
			s.log.Warn("subscriptions: metadata refresh failed", "err", err)
			continue
		}
		byTopic := make(map[string]kafkawire.TopicPartitions, len(tps))
		for _, tp := range tps {
			byTopic[tp.Topic] = tp
		}
		for _, sub := range subs {
			tp := byTopic[sub.topic]
			switch {
			case tp.Err != nil && topicGone(tp.Err):
				sub.end(int32(wire.ErrUnknownTopicOrPartition), pubsub.ReasonNotFoundTopic)
			case tp.Err == nil && sub.watch:
				s.addPartitions(sub, tp.Partitions)
			}
		}
	}
}

// topicGone reports a failure that says the topic does not exist (not
// only one of its partitions).
func topicGone(err error) bool {
	return errors.Is(err, kafkawire.ErrUnknownTopic) && !errors.Is(err, kafkawire.ErrUnknownPartition)
}

// addPartitions adds to sub, from their beginning, the partitions of its
// topic it never had.
func (s *Server) addPartitions(sub *subscription, all []int32) {
	sub.mu.Lock()
	var add []int32
	for _, p := range all {
		if !sub.known[p] {
			add = append(add, p)
		}
	}
	room := s.cfg.MaxSubscriptionPartitions - len(sub.parts)
	sub.mu.Unlock()
	if len(add) == 0 || !sub.live() {
		return
	}
	if len(add) > room {
		s.log.Warn("subscription: new partitions past the limit of partitions per subscription are left out",
			"topic", sub.topic, "limit", s.cfg.MaxSubscriptionPartitions, "left_out", len(add)-max(room, 0))
		add = add[:max(room, 0)]
	}
	ctx, cancel := context.WithTimeout(s.baseCtx, s.cfg.MaxFetchWait)
	defer cancel()
	begin := &pubsub.CmdKafkaSubscribe{}
	for _, p := range add {
		ps := s.resolve(ctx, sub, p, begin, -2, true)
		if ps.sp == nil {
			s.log.Warn("subscription: a new partition could not start", "topic", sub.topic, "partition", p, "err", ps.err)
			continue
		}
		sub.mu.Lock()
		if !sub.live() || sub.known[p] {
			sub.mu.Unlock()
			s.closeTail(ps.sp.t)
			continue
		}
		sub.known[p] = true
		sub.parts[p] = ps.sp
		sub.mu.Unlock()
		t := ps.sp.t
		t.mu.Lock()
		t.advance(ps.sp)
		t.mu.Unlock()
	}
}

// goAwaySubs ends the connection's subscriptions with reason, then closes
// it with code and reason (a route change, the drain). Called on the loop.
func (st *connState) goAwaySubs(code ws.StatusCode, reason string) {
	st.endSubs(reason)
	st.goAway(code, reason)
}
