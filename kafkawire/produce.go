package kafkawire

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/kafkaedge/kafkaedge/kafkawire/record"
	"github.com/kafkaedge/kafkaedge/kafkawire/wire"
)

// This file is the producer: Client.Produce gathers the records of every
// caller for one partition into one record batch (within ProduceLinger and
// ProduceBatchBytes), and the batches of the partitions one broker leads
// into one Produce request. With AcksAll (the default) it is idempotent:
// one producer ID per Client (InitProducerId), a sequence number per
// partition, up to maxInFlight batches of a partition in flight, and a
// batch that failed with a retriable error sent again, in order, with its
// sequence, so that the leader writes it once.
//
// The batches of one partition go to its leader on the Client's single
// produce connection to that broker, written in sequence order; a failure
// puts the partition's unacknowledged batches back, in order, and they are
// sent again one at a time until the first is written.

// Acks is how many replicas must have a produced record before it counts as
// written.
type Acks int16

const (
	// AcksAll waits for every in-sync replica; only AcksAll is idempotent.
	AcksAll Acks = Acks(wire.AcksAll)
	// AcksLeader waits for the leader.
	AcksLeader Acks = Acks(wire.AcksLeader)
	// AcksNone waits for nothing: the records count as written once sent
	// (the broker does not answer); their offsets are -1.
	AcksNone Acks = Acks(wire.AcksNone)
)

// maxInFlight is the most batches of one partition sent and not yet
// answered: Kafka keeps the sequence state of an idempotent producer's
// last five batches per partition.
const maxInFlight = 5

// Produced is the outcome of one record of a Produce call.
type Produced struct {
	Partition int32
	Offset    int64 // -1 with AcksNone or on error
	Err       error // a *Error; nil when written
}

// Produce writes recs (their Offset is ignored; a zero Timestamp is now)
// to topic: all to partition, or, with partition -1, each record with a key
// to the partition the Java client's partitioner puts it on (KeyPartition)
// and those without one to the topic's current sticky partition, which
// moves on with each batch. It never blocks: the records are copied into
// their batches before it returns, and done is called once, on a goroutine
// of the Client (or at once, before Produce returns, when the call is
// refused), with one Produced per record, in order. Records of one call to
// one partition are written in order, and so are the calls of one caller.
// ctx bounds the delivery, retries included (no deadline: RequestTimeout).
func (c *Client) Produce(ctx context.Context, topic string, partition int32, acks Acks, recs []record.Record, done func([]Produced)) {
	const op = "produce"
	fail := func(p int32, err error) {
		out := make([]Produced, len(recs))
		for i := range out {
			out[i] = Produced{Partition: p, Offset: -1, Err: c.opError(op, topic, p, -1, err)}
		}
		done(out)
	}
	switch {
	case c.closed.Load():
		fail(partition, ErrClosed)
		return
	case topic == "":
		fail(partition, errors.New("no topic"))
		return
	case partition < -1:
		fail(partition, ErrUnknownPartition)
		return
	case acks != AcksAll && acks != AcksLeader && acks != AcksNone:
		fail(partition, fmt.Errorf("acks %d: %w", acks, kafkaError{wire.ErrInvalidRequiredAcks}))
		return
	case len(recs) == 0:
		done(nil)
		return
	}
	for i := range recs {
		if n := record.RecordSize(recs[i]); n+record.BatchHeaderSize > c.cfg.ProduceBatchBytes {
			fail(partition, fmt.Errorf("record %d is %d bytes, more than a batch of %d bytes holds: %w", i, n, c.cfg.ProduceBatchBytes, kafkaError{wire.ErrMessageTooLarge}))
			return
		}
	}
	deadline := time.Now().Add(c.cfg.RequestTimeout)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	req := &prodCall{topic: topic, out: make([]Produced, len(recs)), left: len(recs), done: done}
	p := c.producer()
	snap := c.meta.Load()
	if t, ok := snap.topics[topic]; ok && t.err == 0 && len(t.parts) > 0 && (partition < 0 || partition < int32(len(t.parts))) {
		p.add(req, partition, int32(len(t.parts)), acks, recs, deadline)
		return
	}
	// The topic's partitions are not known yet: copy the records, since
	// the caller may reuse their bytes once Produce returns.
	copied := make([]record.Record, len(recs))
	for i, r := range recs {
		copied[i] = record.Record{Timestamp: r.Timestamp, Key: slices.Clone(r.Key), Value: slices.Clone(r.Value), Headers: slices.Clone(r.Headers)}
		for j := range copied[i].Headers {
			h := &copied[i].Headers[j]
			h.Key, h.Value = strings.Clone(h.Key), slices.Clone(h.Value)
		}
	}
	go func() {
		lctx, cancel := context.WithDeadline(context.Background(), deadline)
		defer cancel()
		tps, err := c.Partitions(lctx, []string{topic})
		if err == nil && len(tps) == 1 && tps[0].Err != nil {
			err = tps[0].Err
		}
		n := int32(0)
		if err == nil && len(tps) == 1 {
			n = int32(len(tps[0].Partitions))
		}
		switch {
		case err != nil:
			fail(partition, err)
		case n == 0:
			fail(partition, ErrUnknownTopic)
		case partition >= n:
			fail(partition, ErrUnknownPartition)
		default:
			p.add(req, partition, n, acks, copied, deadline)
		}
	}()
}

// prodCall is one Produce call waiting for its records.
type prodCall struct {
	topic string
	out   []Produced
	left  int // records not yet settled; guarded by producer.mu
	done  func([]Produced)
}

// prodSpan is a run of one call's records in one batch: out[from:from+n].
type prodSpan struct {
	call      *prodCall
	from, n   int
	partition int32
}

// prodKey names a partition's queue of batches of one acks setting.
type prodKey struct {
	tp   topicPartition
	acks Acks
}

// prodBatch is one record batch of one partition.
type prodBatch struct {
	b        record.Builder
	spans    []prodSpan
	deadline time.Time       // the earliest of its calls'
	created  time.Time       // its first record's
	sentAt   time.Time       // its first send
	pid      record.Producer // its producer and first sequence, once encoded
	bytes    []byte          // the encoded batch, once sealed
	attempts int
}

// partQueue is the batches of one partition and acks setting.
type partQueue struct {
	key      prodKey
	open     *prodBatch   // being filled
	ready    []*prodBatch // sealed or to send again, in order
	inflight []*prodBatch // sent, in order
	retrying bool         // a batch failed: one at a time until one is written
	nextSeq  int32
	lingerAt time.Time // when open must go, zero: no open batch
	timer    *time.Timer
}

// producer is a Client's producing state.
type producer struct {
	c *Client

	mu      sync.Mutex
	queues  map[prodKey]*partQueue
	sticky  map[string]sticky // where each topic's keyless records go
	pid     record.Producer   // ID -1 until InitProducerId answered
	senders map[string]*brokerSender
}

// sticky is the partition (of n) that a topic's records without a key go
// to, until a batch of it is sealed: then another one, at random, as the
// Java client's partitioner spreads them (KIP-794).
type sticky struct{ partition, n int32 }

// producer returns the Client's producer, creating it on first use.
func (c *Client) producer() *producer {
	c.prodOnce.Do(func() {
		c.prod = &producer{c: c, queues: map[prodKey]*partQueue{}, sticky: map[string]sticky{},
			pid: record.NoProducer, senders: map[string]*brokerSender{}}
	})
	return c.prod
}

// add puts the records of req into the open batches of their partitions
// (of n), sealing the batches that fill up.
func (p *producer) add(req *prodCall, partition, n int32, acks Acks, recs []record.Record, deadline time.Time) {
	now := time.Now()
	p.mu.Lock()
	var kick []*partQueue
	for i := 0; i < len(recs); {
		r := recs[i]
		if r.Timestamp == 0 {
			r.Timestamp = now.UnixMilli()
		}
		part := partition
		switch {
		case part >= 0:
		case r.Key != nil:
			part = KeyPartition(r.Key, n)
		default:
			part = p.stickyPartition(req.topic, n)
		}
		q := p.queue(prodKey{topicPartition{req.topic, part}, acks})
		if q.open == nil {
			q.open = &prodBatch{deadline: deadline, created: now}
			q.open.b.MaxBytes = p.c.cfg.ProduceBatchBytes
			q.lingerAt = now.Add(p.c.cfg.ProduceLinger)
			p.arm(q)
		}
		err := q.open.b.Add(r)
		if errors.Is(err, record.ErrBatchFull) {
			// Seal it and add the record again: to a new batch of the
			// partition, or, without a key, of the next sticky partition.
			p.seal(q)
			kick = append(kick, q)
			continue
		}
		if err != nil { // too large even alone: checked by Produce
			p.settleLocked(prodSpan{call: req, from: i, n: 1, partition: part}, -1, p.c.opError("produce", req.topic, part, -1, err))
			i++
			continue
		}
		b := q.open
		if k := len(b.spans) - 1; k >= 0 && b.spans[k].call == req && b.spans[k].from+b.spans[k].n == i {
			b.spans[k].n++
		} else {
			b.spans = append(b.spans, prodSpan{call: req, from: i, n: 1, partition: part})
		}
		b.deadline = minTime(b.deadline, deadline)
		if b.b.Size() >= p.c.cfg.ProduceBatchBytes {
			p.seal(q)
			kick = append(kick, q)
		}
		i++
	}
	p.mu.Unlock()
	for _, q := range kick {
		p.dispatch(q.key)
	}
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// stickyPartition returns the partition of topic's records without a key
// (of n). Called with p.mu held.
func (p *producer) stickyPartition(topic string, n int32) int32 {
	st, ok := p.sticky[topic]
	if !ok || st.n != n {
		st = sticky{partition: rand.Int32N(n), n: n}
		p.sticky[topic] = st
	}
	return st.partition
}

// moveSticky moves topic's records without a key off partition, once a
// batch of it is sealed. Called with p.mu held.
func (p *producer) moveSticky(topic string, partition int32) {
	st, ok := p.sticky[topic]
	if !ok || st.partition != partition {
		return
	}
	if st.n > 1 {
		st.partition = (partition + 1 + rand.Int32N(st.n-1)) % st.n
	}
	p.sticky[topic] = st
}

// queue returns the queue of k, creating it. Called with p.mu held.
func (p *producer) queue(k prodKey) *partQueue {
	q := p.queues[k]
	if q == nil {
		q = &partQueue{key: k}
		p.queues[k] = q
	}
	return q
}

// arm starts the linger timer of q's open batch. Called with p.mu held.
func (p *producer) arm(q *partQueue) {
	d := time.Until(q.lingerAt)
	if q.timer == nil {
		k := q.key
		q.timer = time.AfterFunc(d, func() { p.lingered(k) })
		return
	}
	q.timer.Reset(d)
}

// lingered seals a queue's open batch whose linger is over and sends it.
func (p *producer) lingered(k prodKey) {
	p.mu.Lock()
	q := p.queues[k]
	if q == nil || q.open == nil {
		p.mu.Unlock()
		return
	}
	if d := time.Until(q.lingerAt); d > 0 { // a newer batch: its own linger
		q.timer.Reset(d)
		p.mu.Unlock()
		return
	}
	p.seal(q)
	p.mu.Unlock()
	p.dispatch(k)
}

// seal moves q's open batch to its ready list. Called with p.mu held.
func (p *producer) seal(q *partQueue) {
	if q.open == nil {
		return
	}
	q.ready = append(q.ready, q.open)
	q.open, q.lingerAt = nil, time.Time{}
	if q.timer != nil {
		q.timer.Stop()
	}
	p.moveSticky(q.key.tp.topic, q.key.tp.partition)
}

// dispatch has the sender of k's leader send what k has ready. It never
// blocks: when the cached metadata cannot name the leader, a goroutine
// asks for it (redispatch).
func (p *producer) dispatch(k prodKey) {
	snap := p.c.meta.Load()
	if !snap.needsRefresh(k.tp.topic, k.tp.partition, time.Now()) {
		if li, err := snap.lookup(k.tp.topic, k.tp.partition); err == nil {
			p.sender(li.addr).kick(k, li)
			return
		}
	}
	go p.redispatch(k, time.Time{})
}

// redispatch is dispatch with metadata at least as new as after (zero:
// any), waiting for it.
func (p *producer) redispatch(k prodKey, after time.Time) {
	ctx, cancel := context.WithTimeout(context.Background(), p.c.cfg.RequestTimeout)
	defer cancel()
	li, err := p.c.leader(ctx, k.tp, after)
	if err != nil {
		p.requeue(k, nil, err)
		return
	}
	p.sender(li.addr).kick(k, li)
}

// settleBatch settles every record of b: written from base (-1: no offset)
// or failed with err. Called with p.mu held.
func (p *producer) settleBatch(b *prodBatch, base int64, err error) {
	if obs := p.c.cfg.Observer; obs != nil {
		waited := time.Duration(0)
		if !b.sentAt.IsZero() {
			waited = b.sentAt.Sub(b.created)
		}
		obs.ProduceBatch(b.b.Len(), len(b.bytes), waited, max(0, b.attempts-1), requestOutcome(nil, err))
	}
	if err != nil && b.bytes != nil && b.pid.ID >= 0 && b.pid == p.current(b.pid.Sequence) {
		// Its sequence numbers are given up: the partition's next batches
		// would be refused as out of order.
		p.resetProducer(b, err)
	}
	off := base
	for _, s := range b.spans {
		var e error
		if err != nil {
			e = p.c.opError("produce", s.call.topic, s.partition, -1, err)
		}
		p.settleLocked(s, off, e)
		if off >= 0 {
			off += int64(s.n)
		}
	}
}

// settleLocked settles the records of one span; the call's done runs once
// all its records are settled, on a goroutine of its own (p.mu is held).
func (p *producer) settleLocked(s prodSpan, base int64, err error) {
	for i := range s.n {
		o := int64(-1)
		if base >= 0 && err == nil {
			o = base + int64(i)
		}
		s.call.out[s.from+i] = Produced{Partition: s.partition, Offset: o, Err: err}
	}
	s.call.left -= s.n
	if s.call.left == 0 {
		go s.call.done(s.call.out)
	}
}

// brokerSender sends the batches of the partitions one broker leads, on the
// Client's produce connection to it, one request at a time in order.
type brokerSender struct {
	p    *producer
	addr string

	mu      sync.Mutex
	pending map[prodKey]leaderInfo
	running bool
}

// sender returns the sender of addr.
func (p *producer) sender(addr string) *brokerSender {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.senders[addr]
	if s == nil {
		s = &brokerSender{p: p, addr: addr, pending: map[prodKey]leaderInfo{}}
		p.senders[addr] = s
	}
	return s
}

// kick asks s to send what k has ready, starting its goroutine if idle.
func (s *brokerSender) kick(k prodKey, li leaderInfo) {
	s.mu.Lock()
	s.pending[k] = li
	if s.running {
		s.mu.Unlock()
		return
	}
	s.running = true
	s.mu.Unlock()
	go s.run()
}

// run sends requests while partitions have batches to send.
func (s *brokerSender) run() {
	for {
		s.mu.Lock()
		if len(s.pending) == 0 {
			s.running = false
			s.mu.Unlock()
			return
		}
		work := s.pending
		s.pending = map[prodKey]leaderInfo{}
		s.mu.Unlock()
		s.send(work)
	}
}

// send writes one Produce request per acks setting with the batches that
// work's partitions may send now, and hands each answer to a goroutine.
func (s *brokerSender) send(work map[prodKey]leaderInfo) {
	p := s.p
	ctx, cancel := context.WithTimeout(context.Background(), p.c.cfg.RequestTimeout)
	defer cancel()
	cn, err := p.c.pool(s.addr, laneProduce).get(ctx)
	if err != nil {
		for k := range work {
			p.requeue(k, nil, err)
		}
		return
	}
	v, err := cn.version(wire.KeyProduce, -1)
	if err != nil {
		for k := range work {
			p.requeue(k, nil, err)
		}
		return
	}
	needID := false
	for k := range work {
		needID = needID || k.acks == AcksAll && !p.c.cfg.DisableIdempotence
	}
	if needID {
		if err := p.producerID(ctx, cn); err != nil {
			for k := range work {
				if k.acks == AcksAll {
					p.requeue(k, nil, err)
					delete(work, k)
				}
			}
		}
	}
	byAcks := map[Acks][]sentBatch{}
	again := map[prodKey]leaderInfo{} // partitions with more to send in the next request
	p.mu.Lock()
	now := time.Now()
	for k, li := range work {
		q := p.queues[k]
		if q == nil {
			continue
		}
		limit := maxInFlight
		if q.retrying {
			limit = 1
		}
		// One batch of a partition per request, as Kafka wants it: the
		// others go in the requests that follow, in order.
		for sent := false; !sent && len(q.ready) > 0 && len(q.inflight) < limit; {
			b := q.ready[0]
			q.ready = q.ready[1:]
			if !now.Before(b.deadline) {
				p.settleBatch(b, -1, fmt.Errorf("%w: not written within the produce's deadline", ErrTimeout))
				continue
			}
			if b.bytes == nil && k.acks == AcksAll && !p.c.cfg.DisableIdempotence && p.pid.ID < 0 {
				// The ID was given up since producerID: ask again first.
				q.ready = append([]*prodBatch{b}, q.ready...)
				again[k] = li
				break
			}
			if b.bytes == nil {
				pid := record.NoProducer
				if k.acks == AcksAll && !p.c.cfg.DisableIdempotence {
					pid = record.Producer{ID: p.pid.ID, Epoch: p.pid.Epoch, Sequence: q.nextSeq}
					q.nextSeq += int32(b.b.Len())
				}
				out, err := b.b.AppendTo(nil, pid, p.c.codec)
				if err != nil {
					p.settleBatch(b, -1, err)
					continue
				}
				b.bytes, b.pid = out, pid
			}
			if b.attempts == 0 {
				b.sentAt = now
			}
			b.attempts++
			q.inflight = append(q.inflight, b)
			byAcks[k.acks] = append(byAcks[k.acks], sentBatch{key: k, li: li, b: b})
			sent = true
		}
		if len(q.ready) > 0 && len(q.inflight) < limit {
			again[k] = li
		}
	}
	p.mu.Unlock()
	if len(again) > 0 {
		s.mu.Lock()
		for k, li := range again {
			if _, ok := s.pending[k]; !ok {
				s.pending[k] = li
			}
		}
		s.mu.Unlock()
	}
	for acks, batches := range byAcks {
		req := &wire.ProduceRequest{Acks: int16(acks), TimeoutMillis: int32(p.c.cfg.RequestTimeout / time.Millisecond)}
		topicAt := map[string]int{}
		for _, sb := range batches {
			i, ok := topicAt[sb.key.tp.topic]
			if !ok {
				i = len(req.Topics)
				topicAt[sb.key.tp.topic] = i
				req.Topics = append(req.Topics, wire.ProduceTopic{Name: sb.key.tp.topic, TopicID: sb.li.topicID})
			}
			req.Topics[i].Partitions = append(req.Topics[i].Partitions, wire.ProducePartition{Partition: sb.key.tp.partition, Records: sb.b.bytes})
		}
		version := v
		for _, t := range req.Topics {
			version = min(version, versionLimitProduce(t.TopicID))
		}
		sent := cn.send(ctx, req, version)
		go s.answer(cn, sent, batches)
	}
}

// sentBatch is one batch of a request on its way.
type sentBatch struct {
	key prodKey
	li  leaderInfo
	b   *prodBatch
}

// versionLimitProduce caps Produce at v12 for a topic whose ID the
// metadata did not give (v13 names topics by ID).
func versionLimitProduce(id [16]byte) int16 {
	if id == ([16]byte{}) {
		return 12
	}
	return 13
}

// answer reads the answer of a request and settles or requeues its
// batches.
func (s *brokerSender) answer(cn *conn, sent sent, batches []sentBatch) {
	p := s.p
	ctx, cancel := context.WithTimeout(context.Background(), p.c.cfg.RequestTimeout)
	defer cancel()
	var resp wire.ProduceResponse
	buf, err := cn.finish(ctx, sent, &resp)
	if buf != nil {
		buf.release()
	}
	if err != nil {
		for _, sb := range batches {
			p.requeue(sb.key, sb.b, err)
		}
		return
	}
	if sent.cl == nil { // acks 0: no answer comes
		p.mu.Lock()
		for _, sb := range batches {
			p.removeInflight(sb.key, sb.b)
			p.settleBatch(sb.b, -1, nil)
		}
		p.mu.Unlock()
		for _, sb := range batches {
			p.dispatch(sb.key)
		}
		return
	}
	for _, sb := range batches {
		pr, ok := producePartition(&resp, sb.key.tp, sb.li.topicID)
		switch {
		case !ok:
			p.requeue(sb.key, sb.b, fmt.Errorf("%w: the Produce answer lacks partition %d", ErrUnknownPartition, sb.key.tp.partition))
		case pr.ErrorCode == 0 || pr.ErrorCode == wire.ErrDuplicateSequenceNumber:
			p.mu.Lock()
			p.removeInflight(sb.key, sb.b)
			if q := p.queues[sb.key]; q != nil && len(q.inflight) == 0 {
				q.retrying = false
			}
			p.settleBatch(sb.b, pr.BaseOffset, nil)
			p.mu.Unlock()
			p.dispatch(sb.key)
		default:
			err := error(kafkaError{pr.ErrorCode})
			if pr.ErrorMessage != "" {
				err = fmt.Errorf("%s: %w", pr.ErrorMessage, err)
			}
			p.requeue(sb.key, sb.b, err)
		}
	}
}

// producePartition finds tp's answer in resp.
func producePartition(resp *wire.ProduceResponse, tp topicPartition, id [16]byte) (wire.ProducePartitionResponse, bool) {
	for _, t := range resp.Topics {
		if t.Name != tp.topic && (t.Name != "" || t.TopicID != id) {
			continue
		}
		for _, pr := range t.Partitions {
			if pr.Partition == tp.partition {
				return pr, true
			}
		}
	}
	return wire.ProducePartitionResponse{}, false
}

// removeInflight takes b off k's in-flight list. Called with p.mu held.
func (p *producer) removeInflight(k prodKey, b *prodBatch) {
	if q := p.queues[k]; q != nil {
		if i := slices.Index(q.inflight, b); i >= 0 {
			q.inflight = slices.Delete(q.inflight, i, i+1)
		}
	}
}

// requeue handles a failed send of b (nil: nothing was sent) on k: a
// retriable failure puts b back at the front of k's ready list in sequence
// order and the partition retries one batch at a time, after a metadata
// refresh when the leader may have moved; any other fails b's records.
// The ready batches whose deadline passed fail with err.
func (p *producer) requeue(k prodKey, b *prodBatch, err error) {
	p.mu.Lock()
	q := p.queues[k]
	if q == nil {
		p.mu.Unlock()
		return
	}
	retry := retriableProduce(err)
	if b != nil {
		p.removeInflight(k, b)
		if retry && time.Now().Before(b.deadline) && (b.pid.ID < 0 || b.pid.ID == p.pid.ID && b.pid.Epoch == p.pid.Epoch) {
			q.retrying = true
			q.ready = append(q.ready, b)
			// Encoded batches first, by sequence, then the others in order.
			slices.SortStableFunc(q.ready, func(x, y *prodBatch) int {
				switch {
				case x.bytes != nil && y.bytes != nil:
					return int(x.pid.Sequence - y.pid.Sequence)
				case x.bytes != nil:
					return -1
				case y.bytes != nil:
					return 1
				}
				return 0
			})
		} else {
			p.settleBatch(b, -1, err)
		}
	}
	now := time.Now()
	keep := q.ready[:0]
	for _, r := range q.ready {
		if retry && now.Before(r.deadline) {
			keep = append(keep, r)
			continue
		}
		p.settleBatch(r, -1, err)
	}
	clear(q.ready[len(keep):])
	q.ready = keep
	more := len(q.ready) > 0
	p.mu.Unlock()
	if !more {
		return
	}
	after := time.Time{}
	if leaderMoved(err) {
		after = time.Now()
	}
	time.AfterFunc(retryPause(err), func() { p.redispatch(k, after) })
}

// retriableProduce reports whether a batch that failed with err may be sent
// again: the transient errors, and while an earlier batch is being sent
// again, the sequence errors that follow from it.
func retriableProduce(err error) bool {
	switch codeOf(err) {
	case wire.ErrOutOfOrderSequenceNumber, wire.ErrNotEnoughReplicas, wire.ErrNotEnoughReplicasAfterAppend,
		wire.ErrKafkaStorageError, wire.ErrRequestTimedOut, wire.ErrCorruptMessage,
		// InitProducerId's, while the broker's transaction coordinator
		// loads or moves.
		wire.ErrCoordinatorLoadInProgress, wire.ErrCoordinatorNotAvailable, wire.ErrNotCoordinator:
		return true
	}
	return retriable(err) || errors.Is(err, ErrTimeout)
}

// leaderMoved reports whether err means the partition's leader may have
// changed.
func leaderMoved(err error) bool {
	switch codeOf(err) {
	case wire.ErrNotLeaderOrFollower, wire.ErrLeaderNotAvailable, wire.ErrUnknownTopicOrPartition, wire.ErrFencedLeaderEpoch:
		return true
	}
	var ce *connError
	return errors.As(err, &ce) || errors.Is(err, ErrTimeout)
}

// retryPause is how long a partition waits before sending a failed batch
// again.
func retryPause(err error) time.Duration {
	if leaderMoved(err) {
		return 50 * time.Millisecond
	}
	return 20 * time.Millisecond
}

// current returns the producer identity with sequence seq: what a batch
// numbered under the producer's current ID carries. Called with p.mu held.
func (p *producer) current(seq int32) record.Producer {
	return record.Producer{ID: p.pid.ID, Epoch: p.pid.Epoch, Sequence: seq}
}

// resetProducer drops the producer ID after batch b, numbered under it,
// was given up with err: a gap in a partition's sequence numbers that no
// later batch can fill. The next idempotent batch asks for a new ID, under
// which every partition numbers from 0 again. The batches sent under the
// old one and not yet acknowledged fail rather than go again (written or
// not, a new sequence could write them twice); those never sent are
// numbered under the new ID. Called with p.mu held.
func (p *producer) resetProducer(b *prodBatch, err error) {
	p.c.cfg.Logger.Warn("kafkawire: producer ID given up after a batch failed; asking for a new one",
		"producer_id", p.pid.ID, "epoch", p.pid.Epoch, "records", b.b.Len(), "err", err)
	p.pid = record.NoProducer
	for _, q := range p.queues {
		q.nextSeq = 0
		keep := q.ready[:0]
		var failed []*prodBatch
		for _, r := range q.ready {
			if r != b && r.bytes != nil && r.pid.ID >= 0 {
				failed = append(failed, r)
				continue
			}
			keep = append(keep, r)
		}
		clear(q.ready[len(keep):])
		q.ready = keep
		for _, r := range failed {
			p.settleBatch(r, -1, fmt.Errorf("its producer ID was given up after another batch failed: %w", err))
		}
	}
}

// producerID makes sure the producer has an ID, asking cn's broker with
// InitProducerId if it has none.
func (p *producer) producerID(ctx context.Context, cn *conn) error {
	p.mu.Lock()
	have := p.pid.ID >= 0
	p.mu.Unlock()
	if have {
		return nil
	}
	var resp wire.InitProducerIDResponse
	req := &wire.InitProducerIDRequest{TransactionTimeoutMillis: -1, ProducerID: -1, ProducerEpoch: -1}
	if _, err := cn.do(ctx, req, &resp); err != nil {
		return err
	}
	if resp.ErrorCode != 0 {
		return fmt.Errorf("InitProducerId: %w", kafkaError{resp.ErrorCode})
	}
	p.mu.Lock()
	if p.pid.ID < 0 {
		p.pid = record.Producer{ID: resp.ProducerID, Epoch: resp.ProducerEpoch}
	}
	p.mu.Unlock()
	return nil
}
