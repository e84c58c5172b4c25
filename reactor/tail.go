package reactor

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kafkaedge/kafkaedge/kafkawire"
	"github.com/kafkaedge/kafkaedge/kafkawire/record"
	"github.com/kafkaedge/kafkaedge/kafkawire/wire"
	"github.com/kafkaedge/kafkaedge/proto/pubsub"
)

// This file is the node's side of the subscriptions' partitions: the tails
// (docs/architecture.md, "Subscriptions and tails"). A tail is one
// partition of one cluster that subscriptions read. Its end is fetched once
// for all of them by the cluster's kafkawire.Stream (one long-poll fetch
// session per broker); every batch is copied once into a chunk, encoded
// once per kind of subscriber, kept in the tail cache, and written to every
// subscriber at the end. A subscriber behind the end is served from the
// cache while the cache holds its offset, else by its own fetches
// (identical ones coalesce) until it reaches the cache; a subscriber whose
// connection holds more than MaxOutbound is paused and later goes on from
// its own offset.

// tailKey names one partition of one cluster.
type tailKey struct {
	client    kafkaClient
	topic     string
	partition int32
}

// tailSet holds the node's tails and the Stream of each cluster they read.
type tailSet struct {
	mu      sync.Mutex
	tails   map[tailKey]*tail
	streams map[kafkaClient]*clusterStream
	n       atomic.Int64   // len(tails), for the cache's fair shares
	bytes   atomic.Int64   // the tail cache's size, node-wide
	closing sync.WaitGroup // Streams being closed
}

// clusterStream is the Stream of one cluster and how many tails use it.
type clusterStream struct {
	stream *kafkawire.Stream
	tails  int
}

// subPart states, guarded by tail.mu.
const (
	spIdle     uint8 = iota // not placed yet, or removed
	spLive                  // at the tail's end: new batches are pushed to it
	spReading               // behind the cache: waits for its own fetch
	spPaused                // its connection holds more than the push window
	spDeferred              // its connection has a write queued: the next push takes all that came meanwhile
)

// tail is one partition that subscriptions read. Its fields are guarded by
// mu, refs by tailSet.mu.
type tail struct {
	s   *Server
	key tailKey

	refs int // subParts that hold the tail

	mu       sync.Mutex
	gone     bool     // removed from the tailSet: nothing more happens
	next     int64    // the offset the Stream fetches next; the cache ends there
	hwm      int64    // as of the last fetch (or the resolution that opened the tail)
	logStart int64    // -1 until a fetch told it
	cache    []*chunk // contiguous, oldest first, ending at next
	history  []*chunk // chunks that subscribers behind the cache fetched, by start: for the ones behind them
	size     int64    // of cache and history
	live     map[*subPart]struct{}
	reads    map[int64][]*subPart // subscribers waiting for their own fetch, by offset
	kindOf   map[string]*kind     // the kinds of its subscribers, by subscription.kind
}

// chunk is one fetched batch of a partition: the offsets [start, next)
// and its messages encoded, straight from the fetch response, once per
// kind of subscriber (headers or not, filter) that the tail had when the
// batch came. A subscriber of a kind that came later reads the batch on
// its own.
type chunk struct {
	start, next int64
	hwm         int64
	size        int64 // of its encodings
	cached      bool  // in a tail's cache or history: size counts in the cache's budget
	enc         map[string]*encoding
}

// encoding is a chunk's messages as KafkaPartitionRecords.messages entries
// for one kind of subscriber: offs[i] is the offset of the i-th message
// kept, buf[pos[i]:pos[i+1]] its bytes.
type encoding struct {
	buf  []byte
	offs []int64
	pos  []int
}

// kind is one kind of subscriber of a tail: how its messages are encoded,
// and how many of the tail's subscribers are of it.
type kind struct {
	key     string // subscription.kind; "" plain (no headers, no filter)
	headers bool
	filter  *pubsub.KafkaFilter
	n       int
}

// newChunk encodes r's records for each of kinds. The chunk owns its
// bytes: r can be released.
func newChunk(r *kafkawire.FetchResult, kinds []kind) *chunk {
	c := &chunk{start: r.Offset, next: r.NextOffset, hwm: r.HighWatermark, enc: make(map[string]*encoding, len(kinds))}
	if n := len(r.Records); n > 0 {
		c.next = max(c.next, r.Records[n-1].Offset+1)
	}
	for _, k := range kinds {
		e := encode(r.Records, k.headers, k.filter)
		c.enc[k.key] = e
		c.size += int64(cap(e.buf) + 16*len(e.offs))
	}
	return c
}

// encode encodes the records that pass filter.
func encode(recs []record.Record, headers bool, filter *pubsub.KafkaFilter) *encoding {
	size := 0
	for i := range recs {
		size += messageSize(&recs[i], headers)
	}
	e := &encoding{buf: make([]byte, 0, size), pos: make([]int, 0, len(recs)+1)}
	for i := range recs {
		r := &recs[i]
		if !matches(filter, r) {
			continue
		}
		e.offs = append(e.offs, r.Offset)
		e.pos = append(e.pos, len(e.buf))
		e.buf, _, _ = appendMessages(e.buf, pubsub.FieldRecordsMessages, recs[i:i+1], r.Offset, size, headers)
	}
	e.pos = append(e.pos, len(e.buf))
	return e
}

// kinds returns the tail's kinds of subscribers, the plain one always.
// t.mu is held.
func (t *tail) kinds() []kind {
	out := make([]kind, 0, len(t.kindOf)+1)
	out = append(out, kind{})
	for _, k := range t.kindOf {
		if k.key != "" {
			out = append(out, *k)
		}
	}
	return out
}

// attach counts sp's kind in the tail's kinds. t.mu is held.
func (t *tail) attach(sp *subPart) {
	if sp.attached {
		return
	}
	sp.attached = true
	sub := sp.sub
	k := t.kindOf[sub.kind]
	if k == nil {
		k = &kind{key: sub.kind, headers: sub.headers, filter: sub.filter}
		t.kindOf[sub.kind] = k
	}
	k.n++
}

// matches reports whether r passes filter (nil: every record).
func matches(f *pubsub.KafkaFilter, r *record.Record) bool {
	if f == nil {
		return true
	}
	if f.Key != nil && !bytes.Equal(r.Key, f.Key) {
		return false
	}
	if len(f.KeyPrefix) > 0 && !bytes.HasPrefix(r.Key, f.KeyPrefix) {
		return false
	}
	for _, want := range f.Headers {
		found := false
		for _, h := range r.Headers {
			if h.Key == want.Key && bytes.Equal(h.Value, want.Value) {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// openTail returns the tail of k, held (closeTail lets go), opening it at
// end if there is none: its Stream fetches from end on. end is -1 to only
// find an open tail (nil if none).
func (s *Server) openTail(k tailKey, end int64) *tail {
	ts := &s.tails
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if t := ts.tails[k]; t != nil {
		t.refs++
		return t
	}
	if end < 0 || s.draining.Load() {
		return nil
	}
	t := &tail{s: s, key: k, refs: 1, next: end, hwm: end, logStart: -1,
		live: make(map[*subPart]struct{}), reads: make(map[int64][]*subPart), kindOf: make(map[string]*kind)}
	if ts.tails == nil {
		ts.tails = make(map[tailKey]*tail)
		ts.streams = make(map[kafkaClient]*clusterStream)
	}
	ts.tails[k] = t
	ts.n.Add(1)
	cs := ts.streams[k.client]
	if cs == nil {
		client := k.client
		cs = &clusterStream{stream: client.NewStream(func(r *kafkawire.FetchResult) { s.onTailResult(client, r) })}
		ts.streams[client] = cs
	}
	cs.tails++
	cs.stream.Add(k.topic, k.partition, end)
	s.obs.Tails(1)
	return t
}

// closeTail lets go of a hold of t; the last one removes it and its cache.
func (s *Server) closeTail(t *tail) {
	s.tails.mu.Lock()
	t.refs--
	last := t.refs == 0
	if last {
		s.detachTail(t)
	}
	s.tails.mu.Unlock()
	if last {
		t.mu.Lock()
		t.gone = true
		t.dropCache()
		t.mu.Unlock()
	}
}

// detachTail takes t out of the tail set, if it is still there, and its
// partition out of its cluster's Stream; the cluster's last tail closes the
// Stream. A tail whose fetching failed for good is detached at once, so
// that a new subscriber opens a fresh one. tailSet.mu is held.
func (s *Server) detachTail(t *tail) {
	ts := &s.tails
	k := t.key
	if ts.tails[k] != t {
		return
	}
	delete(ts.tails, k)
	ts.n.Add(-1)
	s.obs.Tails(-1)
	cs := ts.streams[k.client]
	cs.stream.Remove(k.topic, k.partition)
	if cs.tails--; cs.tails == 0 {
		delete(ts.streams, k.client)
		ts.closing.Go(cs.stream.Close) // it waits for the brokers to close their sessions
	}
}

// closeStreams closes every Stream, at shutdown, once no subscription is
// left.
func (s *Server) closeStreams() {
	ts := &s.tails
	ts.mu.Lock()
	streams := ts.streams
	ts.streams = nil
	ts.mu.Unlock()
	for _, cs := range streams {
		cs.stream.Close()
	}
	ts.closing.Wait()
}

// onTailResult is the Stream's deliver callback: the tail's next batch, or
// its failure.
func (s *Server) onTailResult(client kafkaClient, r *kafkawire.FetchResult) {
	s.tails.mu.Lock()
	t := s.tails.tails[tailKey{client, r.Topic, r.Partition}]
	s.tails.mu.Unlock()
	if t == nil {
		r.Release()
		return
	}
	if r.Err != nil {
		r.Release()
		t.failed(r.Err)
		return
	}
	t.mu.Lock()
	kinds := t.kinds()
	t.mu.Unlock()
	c := newChunk(r, kinds)
	r.Release()
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.gone || c.start != t.next {
		return
	}
	t.hwm, t.logStart = max(c.hwm, c.next), r.LogStartOffset
	t.next = c.next
	t.add(c)
	for sp := range t.live {
		for sp.state == spLive && sp.offset < c.next {
			st := sp.sub.st
			if c.enc[sp.sub.kind] == nil {
				// Of a kind that came while the batch was encoded.
				delete(t.live, sp)
				t.read(sp)
				break
			}
			if st.over() {
				t.pause(sp)
				break
			}
			if st.pending.Load() > 0 {
				// Its loop has not written the last push yet: this one
				// waits for it and goes out with what comes meanwhile,
				// so that pushes follow the pace of the writes.
				t.deferPush(sp)
				break
			}
			t.push(sp, c)
		}
	}
}

// add puts c at the end of the cache and evicts the oldest chunks while the
// node's cache is over its budget or this tail over its fair share (the
// budget divided among the tails); the newest chunk stays. t.mu is held.
func (t *tail) add(c *chunk) {
	c.cached = true
	t.cache = append(t.cache, c)
	t.size += c.size
	t.s.tails.bytes.Add(c.size)
	t.evict()
}

// keep puts c, which a subscriber behind the cache fetched, into the
// tail's history, for the subscribers behind it, unless it reaches into
// the cache. t.mu is held.
func (t *tail) keep(c *chunk) {
	if c.cached || len(t.cache) > 0 && c.next > t.cache[0].start || c.next > t.next {
		return
	}
	i := sort.Search(len(t.history), func(i int) bool { return t.history[i].start >= c.start })
	if i < len(t.history) && t.history[i].start == c.start {
		return // an identical fetch is kept already
	}
	c.cached = true
	t.history = slices.Insert(t.history, i, c)
	t.size += c.size
	t.s.tails.bytes.Add(c.size)
	t.evict()
}

// evict drops chunks while the node's cache is over its budget or this
// tail over its fair share (the budget divided among the tails): the
// history's oldest offsets first (its readers have moved past them or are
// the furthest behind), then the cache's oldest; the cache's newest chunk
// stays. t.mu is held.
func (t *tail) evict() {
	ts := &t.s.tails
	budget := t.s.cfg.TailCache
	share := budget / max(ts.n.Load(), 1)
	over := func() bool { return ts.bytes.Load() > budget || t.size > share }
	t.history = t.dropOldest(t.history, 0, over)
	t.cache = t.dropOldest(t.cache, 1, over)
}

// dropOldest drops the first chunks of list, keeping at least keep, while
// over holds, and returns what is left. t.mu is held.
func (t *tail) dropOldest(list []*chunk, keep int, over func() bool) []*chunk {
	n := 0
	for n < len(list)-keep && over() {
		t.s.tails.bytes.Add(-list[n].size)
		t.size -= list[n].size
		n++
	}
	clear(list[:n])
	return list[n:]
}

// dropCache evicts the cache and the history. t.mu is held.
func (t *tail) dropCache() {
	always := func() bool { return true }
	t.cache = t.dropOldest(t.cache, 0, always)
	t.history = t.dropOldest(t.history, 0, always)
}

// chunkAt returns the cached chunk that holds offset, or nil. t.mu is held.
func (t *tail) chunkAt(offset int64) *chunk {
	if offset >= t.next {
		return nil
	}
	if len(t.cache) > 0 && offset >= t.cache[0].start {
		i := sort.Search(len(t.cache), func(i int) bool { return t.cache[i].next > offset })
		return t.cache[i]
	}
	// The last history chunk that starts at or before offset.
	i := sort.Search(len(t.history), func(i int) bool { return t.history[i].start > offset }) - 1
	if i >= 0 && offset < t.history[i].next {
		return t.history[i]
	}
	return nil
}

// lastN returns the offset n messages before the end of the cache, and
// whether the cache holds that many. t.mu is held.
func (t *tail) lastN(n int64) (int64, bool) {
	for i := len(t.cache) - 1; i >= 0 && n > 0; i-- {
		offs := t.cache[i].enc[""].offs // the plain encoding: every message
		if int64(len(offs)) >= n {
			return offs[int64(len(offs))-n], true
		}
		n -= int64(len(offs))
	}
	return 0, n <= 0
}

// advance moves sp toward the end: from the cache while it holds sp's
// offset and sp's connection has room, then onto the live set at the end,
// or into a fetch of its own when the cache does not reach back to it.
// t.mu is held.
func (t *tail) advance(sp *subPart) {
	t.attach(sp)
	for sp.sub.live() && !t.gone {
		if sp.offset >= t.next {
			t.setState(sp, spLive)
			t.live[sp] = struct{}{}
			return
		}
		c := t.chunkAt(sp.offset)
		if c == nil || c.enc[sp.sub.kind] == nil {
			t.read(sp)
			return
		}
		if sp.sub.st.over() {
			t.pause(sp)
			return
		}
		t.s.obs.TailRead(TailCacheHit)
		t.push(sp, c)
	}
}

// remove takes sp off the tail; nothing more is pushed to it. t.mu is held.
func (t *tail) remove(sp *subPart) {
	delete(t.live, sp)
	if w := t.reads[sp.offset]; len(w) > 0 {
		for i, x := range w {
			if x == sp {
				t.reads[sp.offset] = append(w[:i], w[i+1:]...)
				break
			}
		}
	}
	t.setState(sp, spIdle)
	if sp.attached {
		sp.attached = false
		if k := t.kindOf[sp.sub.kind]; k != nil {
			if k.n--; k.n == 0 {
				delete(t.kindOf, k.key)
			}
		}
	}
}

// setState moves sp to state, reporting a subscriber that starts or stops
// lagging (paused, or reading on its own behind the cache). t.mu is held.
func (t *tail) setState(sp *subPart, state uint8) {
	was := sp.state == spPaused || sp.state == spReading
	is := state == spPaused || state == spReading
	sp.state = state
	switch {
	case is && !was:
		t.s.obs.Lagging(1)
	case was && !is:
		t.s.obs.Lagging(-1)
	}
}

// pause stops pushing to sp until its connection drains. t.mu is held.
func (t *tail) pause(sp *subPart) {
	delete(t.live, sp)
	t.setState(sp, spPaused)
	t.s.obs.Backpressure(BackpressurePushPaused)
	sp.sub.st.pausePart(sp)
}

// deferPush makes sp wait for its connection's queued write, then go on
// from its offset. t.mu is held.
func (t *tail) deferPush(sp *subPart) {
	delete(t.live, sp)
	t.setState(sp, spDeferred)
	sp.sub.st.pausePart(sp)
}

// push writes to sp, in one push, the messages of c (which has sp's kind)
// from sp's offset on and of the cache's chunks that follow c, at most the subscription's
// largest push (at least one message), and moves sp on. Chunks whose
// messages sp's filter drops move sp past them; a push may have no
// message. t.mu is held.
func (t *tail) push(sp *subPart, c *chunk) {
	sub := sp.sub
	var parts [][]byte
	msgs, size := 0, 0
	next, hwm := sp.offset, t.hwm
	for c != nil {
		e := c.enc[sub.kind]
		if e == nil {
			break // a later chunk without sub's kind: the next push reads it
		}
		i := sort.Search(len(e.offs), func(i int) bool { return e.offs[i] >= next })
		j := i
		for j < len(e.offs) && (size == 0 && j == i || size+e.pos[j+1]-e.pos[i] <= sub.maxPush) {
			j++
		}
		if j > i {
			parts = append(parts, e.buf[e.pos[i]:e.pos[j]])
			size += e.pos[j] - e.pos[i]
			msgs += j - i
		}
		hwm = max(hwm, c.hwm)
		if j < len(e.offs) {
			next = e.offs[j] // the push is full
			break
		}
		next = c.next
		c = t.after(c)
	}
	t.s.sendPush(sub, t.key.partition, parts, size, msgs, max(hwm, next), next)
	sp.offset = next
}

// after returns the cache's chunk that follows c, or nil. t.mu is held.
func (t *tail) after(c *chunk) *chunk {
	i := sort.Search(len(t.cache), func(i int) bool { return t.cache[i].start >= c.next })
	if i < len(t.cache) && t.cache[i].start == c.next {
		return t.cache[i]
	}
	return nil
}

// read puts sp into a fetch of its own from its offset, joining an identical
// one in flight. t.mu is held.
func (t *tail) read(sp *subPart) {
	t.setState(sp, spReading)
	w, ok := t.reads[sp.offset]
	t.reads[sp.offset] = append(w, sp)
	if ok {
		t.s.obs.TailRead(TailReadCoalesced)
		return
	}
	t.s.obs.TailRead(TailCacheMiss)
	t.s.catchUps.Add(1)
	go t.s.catchUp(t, sp.offset)
}

// catchUpRetry paces a subscriber's fetch that failed in a way that may
// mend (a timeout, a broker away, a leader moving).
const catchUpRetry = 250 * time.Millisecond

// catchUp fetches t's partition from offset for the subscribers waiting in
// t.reads[offset], pushes the answer to each and moves them on.
func (s *Server) catchUp(t *tail, offset int64) {
	defer s.catchUps.Add(-1)
	select {
	case s.catchSem <- struct{}{}:
	case <-s.baseCtx.Done():
		return
	}
	defer func() { <-s.catchSem }()
	k := t.key
	// The call's response and decoded records count in the memory budget
	// while it runs (they are in memory already: taken unchecked); the
	// pushes of its answer wait while the budget is used up.
	mem := s.callMem
	s.mem.add(mem)
	defer s.mem.release(mem)
	for {
		res, err := k.client.FetchWith(s.baseCtx, k.topic, k.partition, offset, kafkawire.FetchOptions{})
		if err == nil {
			t.mu.Lock()
			kinds := t.kinds()
			t.mu.Unlock()
			c := newChunk(res, kinds)
			res.Release()
			if c.next > offset {
				t.caughtUp(offset, c)
				return
			}
			err = errNoProgress
		}
		if !mends(err) {
			t.readFailed(offset, err)
			return
		}
		t.mu.Lock()
		waiting := !t.gone && len(t.reads[offset]) > 0
		t.mu.Unlock()
		if !waiting {
			t.mu.Lock()
			delete(t.reads, offset)
			t.mu.Unlock()
			return
		}
		select {
		case <-time.After(catchUpRetry):
		case <-s.baseCtx.Done():
			return
		}
	}
}

// errNoProgress is a fetch that did not move past its offset although the
// partition goes further: asked again after a pause.
var errNoProgress = errors.New("no progress")

// mends reports whether a failed fetch of a subscription is worth asking
// again: a timeout, an unreachable broker, a leader moving.
func mends(err error) bool {
	if errors.Is(err, errNoProgress) {
		return true
	}
	var ke *kafkawire.Error
	if !errors.As(err, &ke) {
		return false
	}
	switch ke.Code {
	case wire.ErrLeaderNotAvailable, wire.ErrNotLeaderOrFollower, wire.ErrRequestTimedOut, wire.ErrBrokerNotAvailable,
		wire.ErrReplicaNotAvailable, wire.ErrNetworkException, wire.ErrKafkaStorageError, wire.ErrFencedLeaderEpoch,
		wire.ErrUnknownLeaderEpoch, wire.ErrOffsetNotAvailable:
		return true
	case 0:
		return errors.Is(ke.Err, kafkawire.ErrTimeout) || errors.Is(ke.Err, kafkawire.ErrBrokerUnreachable)
	}
	return false
}

// caughtUp pushes c, read from offset, to the subscribers waiting for it
// and moves them on.
func (t *tail) caughtUp(offset int64, c *chunk) {
	t.mu.Lock()
	defer t.mu.Unlock()
	waiters := t.reads[offset]
	delete(t.reads, offset)
	t.keep(c)
	for _, sp := range waiters {
		if sp.state != spReading || sp.offset != offset {
			continue
		}
		t.setState(sp, spIdle)
		if c.enc[sp.sub.kind] == nil {
			t.read(sp) // of a kind that came while the batch was encoded
			continue
		}
		for sp.sub.live() && sp.offset < c.next {
			if sp.sub.st.over() {
				t.pause(sp)
				break
			}
			t.push(sp, c)
		}
		if sp.state == spIdle {
			t.advance(sp)
		}
	}
}

// failed handles the failure of t's Stream partition, which the Stream no
// longer fetches: an offset out of range (the partition was truncated or
// recreated) starts the tail again at the partition's new end; every
// subscriber at the end learns the failure by partFailed's rules.
func (t *tail) failed(err error) {
	s, k := t.s, t.key
	s.log.Warn("subscription tail failed", "topic", k.topic, "partition", k.partition, "err", err)
	restarted := false
	if outOfRange(err) {
		ctx, cancel := context.WithTimeout(s.baseCtx, s.cfg.MaxFetchWait)
		end, lerr := k.client.ListOffset(ctx, k.topic, k.partition, -1)
		cancel()
		if lerr != nil {
			err = lerr
		} else {
			restarted = t.restart(end)
		}
	}
	if !restarted {
		s.tails.mu.Lock()
		s.detachTail(t)
		s.tails.mu.Unlock()
	}
	s.partFailed(t, s.subPartsOf(t), err)
}

// subPartsOf returns the subscribers of t, in whatever state.
func (s *Server) subPartsOf(t *tail) []*subPart {
	s.subsMu.Lock()
	subs := make([]*subscription, 0, len(s.subs))
	for sub := range s.subs {
		if sub.client == t.key.client && sub.topic == t.key.topic {
			subs = append(subs, sub)
		}
	}
	s.subsMu.Unlock()
	var out []*subPart
	for _, sub := range subs {
		sub.mu.Lock()
		if sp := sub.parts[t.key.partition]; sp != nil && sp.t == t {
			out = append(out, sp)
		}
		sub.mu.Unlock()
	}
	return out
}

// restart starts t's Stream partition again at end, with an empty cache,
// and reports whether it did (t is still in the tail set).
func (t *tail) restart(end int64) bool {
	s := t.s
	s.tails.mu.Lock()
	defer s.tails.mu.Unlock()
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.gone || s.tails.tails[t.key] != t {
		return false
	}
	t.dropCache()
	t.next, t.hwm = end, end
	s.tails.streams[t.key.client].stream.Add(t.key.topic, t.key.partition, end)
	return true
}

// readFailed handles a subscriber fetch from offset that failed for good.
func (t *tail) readFailed(offset int64, err error) {
	t.mu.Lock()
	waiters := t.reads[offset]
	delete(t.reads, offset)
	for _, sp := range waiters {
		if sp.state == spReading {
			t.setState(sp, spIdle)
		}
	}
	t.mu.Unlock()
	t.s.partFailed(t, waiters, err)
}

// outOfRange reports an OFFSET_OUT_OF_RANGE answer.
func outOfRange(err error) bool {
	var ke *kafkawire.Error
	return errors.As(err, &ke) && ke.Code == wire.ErrOffsetOutOfRange
}

// partFailed applies a failure of t's partition to the subscribers subs:
// an offset out of range sends each to the end or the beginning, or stops
// its partition, as its subscription's reset says; an unknown topic ends
// the subscriptions (the topic was deleted); any other failure stops the
// partition with an ErrorResp. Called without locks.
func (s *Server) partFailed(t *tail, subs []*subPart, err error) {
	k := t.key
	if len(subs) == 0 {
		return
	}
	oor := outOfRange(err)
	start := int64(-1)
	if oor {
		for _, sp := range subs {
			if sp.sub.reset == pubsub.Reset_RESET_EARLIEST {
				ctx, cancel := context.WithTimeout(s.baseCtx, s.cfg.MaxFetchWait)
				start, err = k.client.ListOffset(ctx, k.topic, k.partition, -2)
				cancel()
				oor = err == nil
				break
			}
		}
	}
	var code int32
	reason := wire.ErrorName(wire.ErrOffsetOutOfRange)
	if !oor {
		code, reason = s.kafkaFailure(callKey{topic: k.topic, partition: k.partition}, err)
	} else {
		code = int32(wire.ErrOffsetOutOfRange)
	}
	deleted := topicGone(err)
	for _, sp := range subs {
		sub := sp.sub
		switch {
		case deleted:
			sub.end(code, pubsub.ReasonNotFoundTopic)
		case oor && sub.reset != pubsub.Reset_RESET_NONE:
			t.mu.Lock()
			if sub.live() && sp.state != spReading {
				t.remove(sp)
				sp.offset = t.next
				if sub.reset == pubsub.Reset_RESET_EARLIEST {
					sp.offset = start
				}
				t.advance(sp)
			}
			t.mu.Unlock()
		default:
			sub.dropPart(sp, code, pubsub.FetchErrorMessage(k.topic, k.partition, reason))
		}
	}
}
