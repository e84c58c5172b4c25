package kafkawire

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/kafkaedge/kafkaedge/kafkawire/wire"
)

// closeSessionTimeout bounds the request that closes a fetch session when
// a Stream stops fetching from a broker.
const closeSessionTimeout = time.Second

// A Stream tails partitions: it fetches every partition added to it from
// its offset on, again and again, and hands each piece of records to a
// callback, as a consumer does.
//
// The partitions led by one broker share one Fetch request per round, in
// one fetch session with that broker (KIP-227): after the first request
// of a session, a request names only the partitions added, moved or
// dropped since the last, and the broker answers only for those with
// something new. A broker without sessions (before Fetch v7) gets full
// requests. The requests go on the broker's fetch connections, apart from
// Metadata and ListOffsets, since the broker holds each for up to
// FetchMaxWait until there is data (FetchMinBytes, at least 1). A
// partition whose leader moved, or whose broker failed, is found again in
// the metadata and goes on from where it was, paced while it fails.
//
// Stream's methods are safe for concurrent use.
type Stream struct {
	c       *Client
	deliver func(*FetchResult)
	ctx     context.Context // canceled by Close and by Client.Close
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	wake    chan struct{} // partitions to place: tells resolve

	mu       sync.Mutex
	cursors  map[topicPartition]*cursor
	unplaced map[*cursor]struct{} // cursors whose leader resolve looks up
	sources  map[string]*source   // by leader address
	closed   bool
}

// cursor is one partition of a Stream; its fields are guarded by
// Stream.mu.
type cursor struct {
	s        *Stream
	tp       topicPartition
	offset   int64   // the next offset to fetch
	asked    int64   // the offset the request in flight asks; an answer counts if it is still offset
	src      *source // fetching the partition; nil while unplaced
	leader   leaderInfo
	held     bool // a delivered result is not released yet
	gone     bool // removed from the Stream
	failures int  // failed attempts in a row
	// While unplaced: the metadata must be newer than after (a leader
	// error), and the next attempt is not before notBefore.
	after, notBefore time.Time
}

// source fetches the partitions of a Stream led by one broker, one round
// at a time, in one fetch session.
type source struct {
	s       *Stream
	addr    string
	wake    chan struct{}              // a partition became fetchable or left
	cursors map[topicPartition]*cursor // guarded by Stream.mu
	sess    fetchSession               // used by run only
	resets  int                        // session errors in a row, used by run only
}

// NewStream returns a Stream of c that hands every result to deliver:
// records of one partition, from the offset the result names on, or a
// failure (Err set, no records) after which the partition is no longer in
// the Stream: OFFSET_OUT_OF_RANGE, a topic or partition that does not
// exist, or any other error that asking again cannot mend. Failures that
// can mend (a leader moved or not ready, a broker or the metadata out of
// reach, a timeout) are retried, paced, as long as the partition is in the
// Stream.
//
// A result without records and without Err says that the partition's
// batches from Offset to NextOffset held nothing to return (transaction
// markers, aborted records); every result's NextOffset is where the
// partition goes on.
//
// deliver is called from the Stream's goroutines, possibly several at once
// for partitions of different brokers, never twice at once for one
// partition. It should return soon: the other partitions of its broker
// wait for it. A partition is not fetched again until its last result is
// released (FetchResult.Release), so a slow reader holds back its
// partition only, and memory stays bounded by one result per partition.
func (c *Client) NewStream(deliver func(*FetchResult)) *Stream {
	ctx, cancel := context.WithCancel(c.ctx)
	s := &Stream{
		c:        c,
		deliver:  deliver,
		ctx:      ctx,
		cancel:   cancel,
		wake:     make(chan struct{}, 1),
		cursors:  make(map[topicPartition]*cursor),
		unplaced: make(map[*cursor]struct{}),
		sources:  make(map[string]*source),
	}
	s.wg.Add(1)
	go s.resolve()
	return s
}

// Add starts fetching topic/partition from offset, or moves the partition
// to offset if it is in the Stream already.
func (s *Stream) Add(topic string, partition int32, offset int64) {
	tp := topicPartition{topic, partition}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	if cur := s.cursors[tp]; cur != nil {
		cur.offset = offset
		if cur.src != nil {
			signal(cur.src.wake)
		}
		return
	}
	cur := &cursor{s: s, tp: tp, offset: offset, asked: -1}
	s.cursors[tp] = cur
	s.unplaced[cur] = struct{}{}
	signal(s.wake)
}

// Remove stops fetching topic/partition. Results delivered before stay
// valid until released.
func (s *Stream) Remove(topic string, partition int32) {
	tp := topicPartition{topic, partition}
	s.mu.Lock()
	defer s.mu.Unlock()
	if cur := s.cursors[tp]; cur != nil {
		s.drop(cur)
	}
}

// Close stops the Stream: no deliver call runs once it returns. It closes
// the Stream's fetch sessions, waiting at most a second for each broker.
// Results delivered before stay valid until released.
func (s *Stream) Close() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.cancel()
	s.wg.Wait()
}

// drop removes cur from the Stream; s.mu is held.
func (s *Stream) drop(cur *cursor) {
	cur.gone = true
	delete(s.cursors, cur.tp)
	delete(s.unplaced, cur)
	if cur.src != nil {
		delete(cur.src.cursors, cur.tp)
		signal(cur.src.wake)
		cur.src = nil
	}
}

// unplace takes cur off its source after a failure (err), for resolve to
// look up its leader again, after a fresh metadata refresh when the
// failure says the leader may have changed; s.mu is held.
func (s *Stream) unplace(cur *cursor, err error) {
	if cur.src != nil {
		delete(cur.src.cursors, cur.tp)
		cur.src = nil
	}
	now := time.Now()
	cur.failures++
	cur.after, cur.notBefore = time.Time{}, now.Add(retryDelay(cur.failures))
	if retriable(err) {
		cur.after = now
	}
	s.unplaced[cur] = struct{}{}
	signal(s.wake)
}

// retryDelay is the wait before the n-th attempt in a row of a Stream's
// partition: none after the first failure, then backoff.
func retryDelay(n int) time.Duration {
	if n <= 1 {
		return 0
	}
	return backoff(n - 1)
}

// fatal reports whether err ends a Stream's partition: asking again
// cannot mend it.
func fatal(err error) bool {
	return !retriable(err) && !transient(err) && !errors.Is(err, ErrTimeout) && !errors.Is(err, ErrClosed)
}

// fail removes cur after a fatal err and returns the result that tells
// the deliver callback; s.mu is held.
func (s *Stream) fail(cur *cursor, err error) *FetchResult {
	s.drop(cur)
	return &FetchResult{Topic: cur.tp.topic, Partition: cur.tp.partition, Offset: cur.offset,
		Err: s.c.opError("fetch", cur.tp.topic, cur.tp.partition, cur.offset, err)}
}

// resolve places the unplaced partitions on the source of their leader,
// as their pacing allows, until the Stream stops.
func (s *Stream) resolve() {
	defer s.wg.Done()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-s.wake:
		case <-timer.C:
		}
		now := time.Now()
		var (
			due   []*cursor
			need  []topicPartition
			after time.Time
			next  time.Time
		)
		s.mu.Lock()
		for cur := range s.unplaced {
			if cur.notBefore.After(now) {
				if next.IsZero() || cur.notBefore.Before(next) {
					next = cur.notBefore
				}
				continue
			}
			due = append(due, cur)
			need = append(need, cur.tp)
			if cur.after.After(after) {
				after = cur.after
			}
		}
		s.mu.Unlock()
		if len(due) > 0 {
			ctx, cancel := context.WithTimeout(s.ctx, s.c.cfg.RequestTimeout)
			infos, errs := s.c.leaders(ctx, need, after)
			cancel()
			var failed []*FetchResult
			s.mu.Lock()
			for i, cur := range due {
				if _, ok := s.unplaced[cur]; !ok || s.closed {
					continue // removed meanwhile
				}
				switch err := errs[i]; {
				case err == nil:
					s.place(cur, infos[i])
				case fatal(err):
					failed = append(failed, s.fail(cur, err))
				default:
					cur.failures++
					cur.notBefore = time.Now().Add(retryDelay(cur.failures))
					if next.IsZero() || cur.notBefore.Before(next) {
						next = cur.notBefore
					}
				}
			}
			s.mu.Unlock()
			for _, r := range failed {
				s.deliver(r)
			}
		}
		if !next.IsZero() {
			timer.Reset(time.Until(next))
		}
	}
}

// place hands cur to the source of leader li, starting it if needed;
// s.mu is held.
func (s *Stream) place(cur *cursor, li leaderInfo) {
	delete(s.unplaced, cur)
	src := s.sources[li.addr]
	if src == nil {
		src = &source{s: s, addr: li.addr, wake: make(chan struct{}, 1), cursors: make(map[topicPartition]*cursor)}
		s.sources[li.addr] = src
		s.wg.Add(1)
		go src.run()
	}
	cur.src, cur.leader = src, li
	src.cursors[cur.tp] = cur
	signal(src.wake)
}

// release makes cur fetchable again after its result was released.
func (cur *cursor) release() {
	s := cur.s
	s.mu.Lock()
	defer s.mu.Unlock()
	cur.held = false
	if cur.src != nil {
		signal(cur.src.wake)
	}
}

// signal wakes the goroutine waiting on ch, now or at its next wait.
func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// streamAnswer is the answer of one round for one partition.
type streamAnswer struct {
	cur   *cursor
	asked int64
	p     *wire.FetchPartitionResponse
}

// run fetches the source's partitions, a round at a time, until it has no
// partitions or the Stream stops; then it closes its fetch session.
func (src *source) run() {
	s, c := src.s, src.s.c
	defer s.wg.Done()
	defer src.closeSession()
	var (
		want    []fetchWant
		answers []streamAnswer
	)
	for {
		s.mu.Lock()
		if len(src.cursors) == 0 || s.ctx.Err() != nil {
			if s.sources[src.addr] == src {
				delete(s.sources, src.addr)
			}
			s.mu.Unlock()
			return
		}
		want = want[:0]
		for _, cur := range src.cursors {
			if cur.held {
				continue
			}
			cur.asked = cur.offset
			want = append(want, fetchWant{tp: cur.tp, topicID: cur.leader.topicID, epoch: cur.leader.epoch, offset: cur.offset, maxBytes: c.fetchBytes(cur.tp, c.cfg.FetchPartitionMaxBytes)})
		}
		s.mu.Unlock()
		if len(want) == 0 {
			select {
			case <-src.wake:
			case <-s.ctx.Done():
			}
			continue
		}

		ctx, cancel := context.WithTimeout(s.ctx, c.cfg.RequestTimeout+c.cfg.FetchMaxWait)
		resp, buf, err := c.fetchRound(ctx, src.addr, laneFetch, &src.sess, want, c.cfg.FetchMaxWait, max(c.cfg.FetchMinBytes, 1))
		cancel()
		if s.ctx.Err() != nil {
			if buf != nil {
				buf.release()
			}
			continue
		}
		if err != nil {
			if sessionError(err) && src.resets == 0 {
				// The session starts over with a full fetch, which a
				// broker does not answer so.
				src.resets++
				continue
			}
			src.resets = 0
			src.failRound(want, err)
			continue
		}
		src.resets = 0

		answers = answers[:0]
		s.mu.Lock()
		src.sess.each(resp, func(tp topicPartition, p *wire.FetchPartitionResponse) {
			if cur := src.cursors[tp]; cur != nil && !cur.held && cur.asked == cur.offset {
				answers = append(answers, streamAnswer{cur, cur.asked, p})
			}
		})
		s.mu.Unlock()
		for _, a := range answers {
			if r := src.apply(a, buf); r != nil {
				s.deliver(r)
			}
		}
		buf.release()
		clear(answers) // keep no partition answers, and so no buffer, alive
		if d := time.Duration(resp.ThrottleMillis) * time.Millisecond; d > 0 {
			// The broker asks for a pause (KIP-219) before the next request.
			t := time.NewTimer(d)
			select {
			case <-t.C:
			case <-s.ctx.Done():
			}
			t.Stop()
		}
	}
}

// apply decodes the answer for one partition and moves its cursor on. It
// returns the result to deliver, if any.
func (src *source) apply(a streamAnswer, buf *respBuf) *FetchResult {
	s, c, cur := src.s, src.s.c, a.cur
	var (
		out fetchOutcome
		err error
	)
	if code := a.p.ErrorCode; code != 0 {
		err = kafkaError{code}
	} else if out = c.decodePartition(cur.tp, a.asked, true, a.p, buf); out.err != nil {
		err = out.err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if cur.src != src || cur.offset != a.asked {
		out.release() // removed or moved meanwhile
		return nil
	}
	if err == nil {
		cur.failures = 0
	}
	switch {
	case err != nil && fatal(err):
		return s.fail(cur, err)
	case err != nil:
		s.unplace(cur, err)
	case out.next > a.asked:
		// Records, or only batches with nothing to return (transaction
		// markers, aborted records): either way the partition moved on,
		// and the callback learns where to.
		cur.offset = out.next
		cur.held = true
		return &FetchResult{Topic: cur.tp.topic, Partition: cur.tp.partition, Offset: a.asked,
			HighWatermark: out.hwm, LogStartOffset: out.logStart, NextOffset: out.next,
			Records: out.records, buf: out.buf, cur: cur}
	}
	return nil
}

// failRound hands the partitions of a failed round back to resolve, or
// fails them for good if the error is fatal.
func (src *source) failRound(want []fetchWant, err error) {
	s := src.s
	var failed []*FetchResult
	s.mu.Lock()
	for _, w := range want {
		cur := src.cursors[w.tp]
		switch {
		case cur == nil:
		case fatal(err):
			failed = append(failed, s.fail(cur, err))
		default:
			s.unplace(cur, err)
		}
	}
	s.mu.Unlock()
	for _, r := range failed {
		s.deliver(r)
	}
}

// sessionError reports whether err is a top-level error of a fetch
// session: the broker lost it or saw another epoch or other topic IDs.
func sessionError(err error) bool {
	switch codeOf(err) {
	case wire.ErrFetchSessionIDNotFound, wire.ErrInvalidFetchSessionEpoch, wire.ErrFetchSessionTopicIDError:
		return true
	}
	return false
}

// closeSession asks the broker to close the source's fetch session, if it
// has one and the Client is open.
func (src *source) closeSession() {
	c := src.s.c
	if src.sess.id == 0 || c.closed.Load() {
		return
	}
	ctx, cancel := context.WithTimeout(c.ctx, closeSessionTimeout)
	defer cancel()
	src.sess.epoch = -1 // a sessionless request naming the session closes it
	if _, buf, err := c.fetchRound(ctx, src.addr, laneFetch, &src.sess, nil, 0, 0); err == nil {
		buf.release()
	}
}
