package kafkawire

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kafkaedge/kafkaedge/kafkawire/record"
	"github.com/kafkaedge/kafkaedge/kafkawire/wire"
)

// maxSkips bounds how many times one fetch moves past batches that held
// nothing to return (transaction markers, aborted records) to look further.
const maxSkips = 4

// FetchPartition is one partition and offset to fetch.
type FetchPartition struct {
	Topic     string
	Partition int32
	Offset    int64
}

// FetchResult is the answer for one partition. Records alias the pooled
// response buffer where their batch was not compressed; see Release.
type FetchResult struct {
	Topic          string
	Partition      int32
	Offset         int64 // requested
	HighWatermark  int64
	LogStartOffset int64
	// NextOffset is where reading goes on: past the last record, or, when
	// there is none, past the batches the fetch found holding nothing to
	// return (transaction markers, aborted records); Offset if none.
	NextOffset int64
	Records    []record.Record
	Err        error // *Error for a failed partition of FetchMany or of a Stream

	buf      *respBuf
	cur      *cursor // the Stream partition that waits for this Release
	released atomic.Bool
}

// Release returns the response buffer to the pool, and lets the Stream
// that delivered the result fetch its partition again. Records (their
// Key/Value) must not be used after Release. Calling it twice is safe. Not
// calling it costs garbage, and stops a Stream's partition.
func (r *FetchResult) Release() {
	if r == nil || !r.released.CompareAndSwap(false, true) {
		return
	}
	putRecords(r.Records)
	r.Records = nil
	if r.buf != nil {
		r.buf.release()
		r.buf = nil
	}
	if r.cur != nil {
		r.cur.release()
		r.cur = nil
	}
}

// Fetch returns the records of topic/partition from offset on (a batch that
// starts earlier is trimmed), at most FetchPartitionMaxBytes of batches,
// waiting up to FetchMaxWait for data. An empty result means nothing is
// there yet. It returns a result or an error, never both nor neither;
// failures are *Error.
func (c *Client) Fetch(ctx context.Context, topic string, partition int32, offset int64) (*FetchResult, error) {
	return c.FetchWith(ctx, topic, partition, offset, FetchOptions{})
}

// FetchOptions are one fetch's own limits; a zero field takes the Client's
// setting.
type FetchOptions struct {
	// MaxWait is how long the broker may wait for MinBytes (default
	// FetchMaxWait). A call whose context has no earlier deadline may
	// last MaxWait plus RequestTimeout.
	MaxWait time.Duration
	// MinBytes is the data the broker waits for (default FetchMinBytes);
	// above 0 the fetch goes on the lane of long polls.
	MinBytes int32
	// MaxBytes caps the partition's bytes asked for and decoded, at most
	// FetchPartitionMaxBytes (the default).
	MaxBytes int32
}

// fetchOptions returns o with the Client's settings for its zero fields.
func (c *Client) fetchOptions(o FetchOptions) FetchOptions {
	if o.MaxWait <= 0 {
		o.MaxWait = c.cfg.FetchMaxWait
	}
	if o.MinBytes <= 0 {
		o.MinBytes = c.cfg.FetchMinBytes
	}
	if o.MaxBytes <= 0 || o.MaxBytes > c.cfg.FetchPartitionMaxBytes {
		o.MaxBytes = c.cfg.FetchPartitionMaxBytes
	}
	return o
}

// laneOf is the lane of a fetch with o: long polls have their own.
func laneOf(o FetchOptions) lane {
	if o.MinBytes > 0 {
		return laneFetch
	}
	return laneControl
}

// FetchWith is Fetch with its own limits.
func (c *Client) FetchWith(ctx context.Context, topic string, partition int32, offset int64, o FetchOptions) (*FetchResult, error) {
	const op = "fetch"
	if c.closed.Load() {
		return nil, newError(op, topic, partition, offset, ErrClosed)
	}
	o = c.fetchOptions(o)
	ctx, cancel := c.opContextFor(ctx, o.MaxWait)
	defer cancel()
	tp := topicPartition{topic, partition}
	var out fetchOutcome
	err := c.call(ctx, func(after time.Time) error {
		out = c.fetchOne(ctx, tp, offset, o, after)
		return out.err
	})
	if err == nil && c.closed.Load() {
		out.release()
		err = ErrClosed
	}
	if err != nil {
		if errors.Is(err, ErrTimeout) {
			c.markStale(topic)
		}
		return nil, c.opError(op, topic, partition, offset, err)
	}
	return &FetchResult{Topic: topic, Partition: partition, Offset: offset, HighWatermark: out.hwm,
		LogStartOffset: out.logStart, NextOffset: out.next, Records: out.records, buf: out.buf}, nil
}

// fetchOne sends a Fetch for tp at offset to its leader, and again from
// past the batches that held nothing to return, up to maxSkips times.
func (c *Client) fetchOne(ctx context.Context, tp topicPartition, offset int64, o FetchOptions, after time.Time) fetchOutcome {
	li, err := c.leader(ctx, tp, after)
	if err != nil {
		return fetchOutcome{err: err}
	}
	cn, err := c.pool(li.addr, laneOf(o)).get(ctx)
	if err != nil {
		return fetchOutcome{err: err}
	}
	v, err := cn.version(wire.KeyFetch, versionLimit(li.topicID))
	if err != nil {
		return fetchOutcome{err: err}
	}
	for skips := 0; ; skips++ {
		req := c.fetchRequest(oneShotWait(ctx, o.MaxWait), o.MinBytes)
		req.Topics = []wire.FetchTopic{{Name: tp.topic, TopicID: li.topicID, Partitions: []wire.FetchPartition{
			{Partition: tp.partition, CurrentLeaderEpoch: li.epoch, FetchOffset: offset, LogStartOffset: -1, PartitionMaxBytes: c.fetchBytes(tp, o.MaxBytes)},
		}}}
		var resp wire.FetchResponse
		buf, err := cn.doAt(ctx, req, v, &resp)
		if err != nil {
			return fetchOutcome{err: err}
		}
		p, err := answerOf(&resp, tp, li, v)
		if err != nil {
			buf.release()
			return fetchOutcome{err: err}
		}
		out := c.decodePartition(tp, offset, skips < maxSkips, p, buf)
		buf.release()
		if out.skipTo <= 0 {
			return out
		}
		offset = out.skipTo
	}
}

// answerOf finds the answer for tp in the response of its leader li.
func answerOf(resp *wire.FetchResponse, tp topicPartition, li leaderInfo, version int16) (*wire.FetchPartitionResponse, error) {
	if resp.ErrorCode != 0 {
		return nil, fmt.Errorf("fetch from %s: %w", li.addr, kafkaError{resp.ErrorCode})
	}
	for ti := range resp.Topics {
		t := &resp.Topics[ti]
		if version >= 13 && t.TopicID != li.topicID || version < 13 && t.Name != tp.topic {
			continue
		}
		for pi := range t.Partitions {
			p := &t.Partitions[pi]
			if p.Partition != tp.partition {
				continue
			}
			if p.ErrorCode != 0 {
				return nil, fmt.Errorf("broker %d: %w", li.node, kafkaError{p.ErrorCode})
			}
			return p, nil
		}
	}
	return nil, fmt.Errorf("broker %s left the partition out of its Fetch response", li.addr)
}

// versionLimit is the highest Fetch version a topic can be fetched at: 12
// without a topic ID (IDs are required from v13), else no limit (-1).
func versionLimit(topicID [16]byte) int16 {
	if topicID == ([16]byte{}) {
		return 12
	}
	return -1
}

// fetchRequest is a consumer's Fetch request with the Client's limits and
// no partitions, sessionless.
func (c *Client) fetchRequest(maxWait time.Duration, minBytes int32) *wire.FetchRequest {
	return &wire.FetchRequest{
		ReplicaID:      -1,
		MaxWaitMillis:  int32(maxWait / time.Millisecond),
		MinBytes:       minBytes,
		MaxBytes:       c.cfg.FetchMaxBytes,
		IsolationLevel: c.cfg.IsolationLevel,
		SessionEpoch:   -1,
	}
}

// oneShotWait is the wait of a fetch bounded by ctx: at most half the time
// left, so that an empty fetch returns empty instead of timing out.
func oneShotWait(ctx context.Context, maxWait time.Duration) time.Duration {
	if dl, ok := ctx.Deadline(); ok {
		maxWait = max(0, min(maxWait, time.Until(dl)/2))
	}
	return maxWait
}

// FetchMany sends one Fetch per leader; per-partition failures are in
// FetchResult.Err. It returns one result per element of parts, in order, and
// an error only when the Client is closed.
func (c *Client) FetchMany(ctx context.Context, parts []FetchPartition) ([]*FetchResult, error) {
	return c.FetchManyWith(ctx, parts, FetchOptions{})
}

// FetchManyWith is FetchMany with its own limits; MaxBytes applies to each
// partition.
func (c *Client) FetchManyWith(ctx context.Context, parts []FetchPartition, o FetchOptions) ([]*FetchResult, error) {
	if c.closed.Load() {
		return nil, ErrClosed
	}
	o = c.fetchOptions(o)
	ctx, cancel := c.opContextFor(ctx, o.MaxWait)
	defer cancel()

	results := make([]*FetchResult, len(parts))
	todo := make([]*fetchItem, len(parts))
	for i, p := range parts {
		results[i] = &FetchResult{Topic: p.Topic, Partition: p.Partition, Offset: p.Offset, NextOffset: p.Offset}
		todo[i] = &fetchItem{idx: i, tp: topicPartition{p.Topic, p.Partition}, offset: p.Offset}
	}
	fail := func(it *fetchItem, err error) {
		if errors.Is(err, ErrTimeout) {
			c.markStale(it.tp.topic)
		}
		results[it.idx].Err = c.opError("fetch", it.tp.topic, it.tp.partition, parts[it.idx].Offset, err)
	}

	for len(todo) > 0 {
		// Partitions whose leader could not answer yet are asked again
		// after a pause; those the deadline leaves no time for fail.
		if waits := pacing(todo); waits >= 0 {
			ok := pause(ctx, waits)
			kept := todo[:0]
			for _, it := range todo {
				switch {
				case it.wait == nil:
					kept = append(kept, it)
				case ok:
					it.wait, it.waits = nil, it.waits+1
					kept = append(kept, it)
				default:
					fail(it, it.wait)
				}
			}
			if todo = kept; len(todo) == 0 {
				break
			}
		}
		// Resolve leaders, once for the whole round.
		need := make([]topicPartition, len(todo))
		after := time.Time{}
		for i, it := range todo {
			need[i] = it.tp
			if it.after.After(after) {
				after = it.after
			}
			it.after = time.Time{}
		}
		infos, errs := c.leaders(ctx, need, after)

		var next []*fetchItem
		retryOrFail := func(it *fetchItem, err error) {
			if transient(err) && !c.closed.Load() && ctx.Err() == nil {
				it.wait = err
				next = append(next, it)
				return
			}
			if !it.retried && c.mayRetry(ctx, err) {
				it.retried, it.after = true, time.Now()
				next = append(next, it)
				return
			}
			fail(it, err)
		}
		byLeader := make(map[string][]*fetchItem)
		for i, it := range todo {
			if errs[i] != nil {
				retryOrFail(it, errs[i])
				continue
			}
			it.leader = infos[i]
			byLeader[it.leader.addr] = append(byLeader[it.leader.addr], it)
		}

		// One request per leader, all at once. A partition asked twice
		// goes into a second request to the same leader.
		var (
			mu sync.Mutex
			wg sync.WaitGroup
		)
		for addr, items := range byLeader {
			for _, batch := range splitDuplicates(items) {
				wg.Go(func() {
					outs := c.fetchBatch(ctx, addr, batch, o)
					mu.Lock()
					defer mu.Unlock()
					for i, it := range batch {
						out := outs[i]
						switch {
						case out.err != nil:
							retryOrFail(it, out.err)
						case out.skipTo > 0:
							it.offset, it.skips = out.skipTo, it.skips+1
							next = append(next, it)
						default:
							r := results[it.idx]
							r.HighWatermark, r.LogStartOffset, r.NextOffset, r.Records, r.buf = out.hwm, out.logStart, out.next, out.records, out.buf
						}
					}
				})
			}
		}
		wg.Wait()
		todo = next
	}
	if c.closed.Load() {
		for _, r := range results {
			r.Release()
		}
		return nil, ErrClosed
	}
	return results, nil
}

// fetchItem is the state of one partition across the rounds of FetchMany.
type fetchItem struct {
	idx     int
	tp      topicPartition
	offset  int64     // next offset to fetch from
	retried bool      // the one retry is spent
	after   time.Time // metadata must be this fresh for the next attempt
	skips   int
	leader  leaderInfo
	wait    error // a transient failure: ask again after a pause
	waits   int   // pauses so far
}

// pacing returns the most pauses made so far by an item of todo that must
// pause before the next round, or -1 if none must.
func pacing(todo []*fetchItem) int {
	n := -1
	for _, it := range todo {
		if it.wait != nil {
			n = max(n, it.waits)
		}
	}
	return n
}

// splitDuplicates splits items into batches in which each partition occurs
// once, keeping the order.
func splitDuplicates(items []*fetchItem) [][]*fetchItem {
	var batches [][]*fetchItem
	var seen []map[topicPartition]bool
	for _, it := range items {
		placed := false
		for i := range batches {
			if !seen[i][it.tp] {
				seen[i][it.tp] = true
				batches[i] = append(batches[i], it)
				placed = true
				break
			}
		}
		if !placed {
			batches = append(batches, []*fetchItem{it})
			seen = append(seen, map[topicPartition]bool{it.tp: true})
		}
	}
	return batches
}

// fetchBatch sends one sessionless Fetch request for items, each partition
// once, to their leader at addr and decodes the records of every partition.
func (c *Client) fetchBatch(ctx context.Context, addr string, items []*fetchItem, o FetchOptions) []fetchOutcome {
	outs := make([]fetchOutcome, len(items))
	want := make([]fetchWant, len(items))
	index := make(map[topicPartition]int, len(items))
	for i, it := range items {
		want[i] = fetchWant{tp: it.tp, topicID: it.leader.topicID, epoch: it.leader.epoch, offset: it.offset, maxBytes: c.fetchBytes(it.tp, o.MaxBytes)}
		index[it.tp] = i
	}
	s := fetchSession{epoch: -1}
	resp, buf, err := c.fetchRound(ctx, addr, laneOf(o), &s, want, oneShotWait(ctx, o.MaxWait), o.MinBytes)
	if err != nil {
		for i := range outs {
			outs[i].err = err
		}
		return outs
	}
	defer buf.release()
	for i := range outs {
		outs[i].err = errLeftOut
	}
	s.each(resp, func(tp topicPartition, p *wire.FetchPartitionResponse) {
		i, ok := index[tp]
		if !ok || outs[i].err != errLeftOut {
			return // not asked, or answered twice
		}
		it := items[i]
		if p.ErrorCode != 0 {
			outs[i].err = fmt.Errorf("broker %d: %w", it.leader.node, kafkaError{p.ErrorCode})
			return
		}
		outs[i] = c.decodePartition(it.tp, it.offset, it.skips < maxSkips, p, buf)
	})
	for i := range outs {
		if outs[i].err == errLeftOut {
			outs[i].err = fmt.Errorf("broker %s left the partition out of its Fetch response", addr)
		}
	}
	return outs
}

// errLeftOut stands for a partition not answered yet in fetchBatch.
var errLeftOut = errors.New("left out")

// fetchOutcome is what one fetch of one partition produced.
type fetchOutcome struct {
	err           error
	skipTo        int64 // > 0: nothing to return below this offset, fetch again from it
	next          int64 // FetchResult.NextOffset
	hwm, logStart int64
	records       []record.Record
	buf           *respBuf // referenced by records; nil if none alias it
}

// release returns what o holds.
func (o *fetchOutcome) release() {
	putRecords(o.records)
	if o.buf != nil {
		o.buf.release()
	}
}

// decodePartition decodes the records of one fetched partition, asked from
// offset. If they held nothing to return below the end the fetch can see
// and skip is set, the outcome says where to fetch again from. The outcome
// holds a reference to buf when records alias it.
func (c *Client) decodePartition(tp topicPartition, offset int64, skip bool, p *wire.FetchPartitionResponse, buf *respBuf) fetchOutcome {
	var aborted []record.AbortedTransaction // nil: read_uncommitted
	if c.cfg.IsolationLevel == 1 {
		aborted = p.AbortedTransactions
	}
	recs, err := c.dec.Append(getRecords(), p.Records, offset, aborted)
	if err != nil {
		putRecords(recs)
		return fetchOutcome{err: fmt.Errorf("decode records: %w", err)}
	}
	out := fetchOutcome{hwm: p.HighWatermark, logStart: p.LogStartOffset, records: recs, next: offset}
	c.learnShare(tp, p.Records, recs)
	if len(recs) == 0 {
		putRecords(recs)
		out.records = nil
		// The batches held only markers or aborted records: look past them
		// while there is more below the end the fetch can see.
		end := p.HighWatermark
		if c.cfg.IsolationLevel == 1 && p.LastStableOffset >= 0 {
			end = p.LastStableOffset
		}
		next, _ := record.Scan(p.Records, math.MaxInt64)
		if next > offset {
			out.next = next
		}
		if skip && next > offset && next < end {
			out.skipTo = next
		}
		return out
	}
	out.next = recs[len(recs)-1].Offset + 1
	buf.retain()
	out.buf = buf
	return out
}

// shareScale is the fixed-point unit of the wire shares in Client.shares.
const shareScale = 1024

// minFetchBytes is the smallest partition_max_bytes a wire share can bring
// a fetch down to.
const minFetchBytes = 64 << 10

// fetchBytes is the partition_max_bytes to ask for tp: FetchPartitionMaxBytes
// scaled by the wire bytes per decoded key and value byte last seen on tp.
// The decoder stops at FetchPartitionMaxBytes of keys and values, so for a
// compressed partition this asks Kafka for about what will be decoded
// rather than several times that. Kafka returns a first batch whole even
// when it is larger, so a low estimate costs a smaller answer, never none.
func (c *Client) fetchBytes(tp topicPartition, limit int32) int32 {
	v, ok := c.shares.Load(tp)
	if !ok {
		return limit
	}
	share := int64(v.(*atomic.Int32).Load())
	return int32(max(int64(limit)*share/shareScale, min(minFetchBytes, int64(limit))))
}

// learnShare records, for tp, the wire bytes that one byte of decoded keys
// and values took in this fetch: the bytes of the batches walked up to the
// last record returned, over the keys and values returned. Uncompressed
// batches come out at the full share (records carry overhead); compressed
// ones below it.
func (c *Client) learnShare(tp topicPartition, records []byte, recs []record.Record) {
	kv := 0
	for _, r := range recs {
		kv += len(r.Key) + len(r.Value)
	}
	if kv == 0 {
		return
	}
	_, walked := record.Scan(records, recs[len(recs)-1].Offset)
	share := int32(min(shareScale, max(1, int64(walked)*shareScale/int64(kv))))
	if v, ok := c.shares.Load(tp); ok {
		v.(*atomic.Int32).Store(share)
		return
	}
	a := new(atomic.Int32)
	a.Store(share)
	c.shares.Store(tp, a)
}

// recordSlices pools the Records slices of fetch results; Release returns
// them. A slice that grew past maxPooledRecords is left to the GC.
var recordSlices sync.Pool

const maxPooledRecords = 1 << 16

// getRecords returns an empty slice from the pool, or nil.
func getRecords() []record.Record {
	if p, ok := recordSlices.Get().(*[]record.Record); ok {
		return (*p)[:0]
	}
	return nil
}

// putRecords returns recs to the pool, cleared so that it keeps no key or
// value (and so no response buffer) alive.
func putRecords(recs []record.Record) {
	if cap(recs) == 0 || cap(recs) > maxPooledRecords {
		return
	}
	clear(recs[:cap(recs)])
	recs = recs[:0]
	recordSlices.Put(&recs)
}
