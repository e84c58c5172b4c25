package kafkawire

import (
	"context"
	"encoding/binary"
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
	Records        []record.Record
	Err            error // *Error for a failed partition of FetchMany

	buf      *respBuf
	released atomic.Bool
}

// Release returns the response buffer to the pool. Records (their Key/Value)
// must not be used after Release. Calling it twice is safe. Not calling it
// only costs garbage.
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
}

// Fetch returns the records of topic/partition from offset on (a batch that
// starts earlier is trimmed), at most FetchPartitionMaxBytes of batches,
// waiting up to FetchMaxWait for data. An empty result means nothing is
// there yet. Failures are *Error.
func (c *Client) Fetch(ctx context.Context, topic string, partition int32, offset int64) (*FetchResult, error) {
	rs, err := c.FetchMany(ctx, []FetchPartition{{Topic: topic, Partition: partition, Offset: offset}})
	if err != nil {
		return nil, newError("fetch", topic, partition, offset, err)
	}
	if rs[0].Err != nil {
		return nil, rs[0].Err
	}
	return rs[0], nil
}

// FetchMany sends one Fetch per leader; per-partition failures are in
// FetchResult.Err. It returns one result per element of parts, in order, and
// an error only when the Client is closed.
func (c *Client) FetchMany(ctx context.Context, parts []FetchPartition) ([]*FetchResult, error) {
	if c.closed.Load() {
		return nil, ErrClosed
	}
	ctx, cancel := c.opContext(ctx)
	defer cancel()

	results := make([]*FetchResult, len(parts))
	todo := make([]*fetchItem, len(parts))
	for i, p := range parts {
		results[i] = &FetchResult{Topic: p.Topic, Partition: p.Partition, Offset: p.Offset}
		todo[i] = &fetchItem{idx: i, tp: topicPartition{p.Topic, p.Partition}, offset: p.Offset}
	}
	fail := func(it *fetchItem, err error) {
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
					outs := c.fetchOnce(ctx, addr, batch)
					mu.Lock()
					defer mu.Unlock()
					for i, it := range batch {
						o := outs[i]
						switch {
						case o.err != nil:
							retryOrFail(it, o.err)
						case o.skipTo > 0:
							it.offset, it.skips = o.skipTo, it.skips+1
							next = append(next, it)
						default:
							r := results[it.idx]
							r.HighWatermark, r.LogStartOffset, r.Records, r.buf = o.hwm, o.logStart, o.records, o.buf
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

// fetchOutcome is what one fetch round produced for one item.
type fetchOutcome struct {
	err           error
	skipTo        int64 // > 0: nothing to return below this offset, fetch again from it
	hwm, logStart int64
	records       []record.Record
	buf           *respBuf // referenced by records; nil if none alias it
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

// fetchOnce sends one Fetch request for items to the broker at addr and
// decodes the records of every partition.
func (c *Client) fetchOnce(ctx context.Context, addr string, items []*fetchItem) []fetchOutcome {
	outs := make([]fetchOutcome, len(items))
	failAll := func(err error) []fetchOutcome {
		for i := range outs {
			outs[i].err = err
		}
		return outs
	}
	cn, err := c.pool(addr).get(ctx)
	if err != nil {
		return failAll(err)
	}

	// Build the request, one topic entry per topic in first-seen order.
	limit := int16(-1)
	// Leave the broker time to answer within the caller's deadline: an
	// empty fetch must not turn into a timeout.
	maxWait := c.cfg.FetchMaxWait
	if dl, ok := ctx.Deadline(); ok {
		maxWait = max(0, min(maxWait, time.Until(dl)/2))
	}
	req := &wire.FetchRequest{
		ReplicaID:      -1,
		MaxWaitMillis:  int32(maxWait / time.Millisecond),
		MinBytes:       c.cfg.FetchMinBytes,
		MaxBytes:       c.cfg.FetchMaxBytes,
		IsolationLevel: c.cfg.IsolationLevel,
		SessionID:      0,
		SessionEpoch:   -1,
	}
	topicIdx := make(map[string]int)
	for _, it := range items {
		ti, ok := topicIdx[it.tp.topic]
		if !ok {
			ti = len(req.Topics)
			topicIdx[it.tp.topic] = ti
			req.Topics = append(req.Topics, wire.FetchTopic{Name: it.tp.topic, TopicID: it.leader.topicID})
			if it.leader.topicID == ([16]byte{}) {
				limit = 12 // topic IDs are required from v13
			}
		}
		req.Topics[ti].Partitions = append(req.Topics[ti].Partitions, wire.FetchPartition{
			Partition:          it.tp.partition,
			CurrentLeaderEpoch: it.leader.epoch,
			FetchOffset:        it.offset,
			LogStartOffset:     -1,
			PartitionMaxBytes:  c.fetchBytes(it.tp),
		})
	}
	v, err := cn.version(wire.KeyFetch, limit)
	if err != nil {
		return failAll(err)
	}
	var resp wire.FetchResponse
	buf, err := cn.doAt(ctx, req, v, &resp)
	if err != nil {
		return failAll(err)
	}
	defer buf.release()
	if resp.ErrorCode != 0 {
		return failAll(fmt.Errorf("fetch from %s: %w", addr, kafkaError{resp.ErrorCode}))
	}

	// Index the answers by partition; from v13 topics come back by ID.
	idName := make(map[[16]byte]string, len(req.Topics))
	for _, t := range req.Topics {
		idName[t.TopicID] = t.Name
	}
	answers := make(map[topicPartition]*wire.FetchPartitionResponse)
	for ti := range resp.Topics {
		t := &resp.Topics[ti]
		name := t.Name
		if v >= 13 {
			name = idName[t.TopicID]
		}
		for pi := range t.Partitions {
			answers[topicPartition{name, t.Partitions[pi].Partition}] = &t.Partitions[pi]
		}
	}

	for i, it := range items {
		p, ok := answers[it.tp]
		switch {
		case !ok:
			outs[i].err = fmt.Errorf("broker %s left the partition out of its Fetch response", addr)
		case p.ErrorCode != 0:
			outs[i].err = fmt.Errorf("broker %d: %w", it.leader.node, kafkaError{p.ErrorCode})
		default:
			outs[i] = c.decodePartition(it, p, buf)
		}
	}
	return outs
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
func (c *Client) fetchBytes(tp topicPartition) int32 {
	limit := c.cfg.FetchPartitionMaxBytes
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
	_, walked := scanBatches(records, recs[len(recs)-1].Offset)
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

// decodePartition decodes the records of one fetched partition.
func (c *Client) decodePartition(it *fetchItem, p *wire.FetchPartitionResponse, buf *respBuf) fetchOutcome {
	var aborted []record.AbortedTransaction
	if c.cfg.IsolationLevel == 1 {
		aborted = make([]record.AbortedTransaction, len(p.AbortedTransactions))
		for i, a := range p.AbortedTransactions {
			aborted[i] = record.AbortedTransaction{ProducerID: a.ProducerID, FirstOffset: a.FirstOffset}
		}
	}
	recs, err := c.dec.Append(getRecords(), p.Records, it.offset, aborted)
	if err != nil {
		putRecords(recs)
		return fetchOutcome{err: fmt.Errorf("decode records: %w", err)}
	}
	out := fetchOutcome{hwm: p.HighWatermark, logStart: p.LogStartOffset, records: recs}
	c.learnShare(it.tp, p.Records, recs)
	if len(recs) == 0 {
		putRecords(recs)
		out.records = nil
		// The batches held only markers or aborted records: look past them
		// while there is more below the end the fetch can see.
		end := p.HighWatermark
		if c.cfg.IsolationLevel == 1 && p.LastStableOffset >= 0 {
			end = p.LastStableOffset
		}
		if next, _ := scanBatches(p.Records, math.MaxInt64); next > it.offset && next < end && it.skips < maxSkips {
			out.skipTo = next
		}
		return out
	}
	buf.retain()
	out.buf = buf
	return out
}

// scanBatches walks the complete batches (or legacy message set entries) of
// records up to and including the first that ends at or past upTo, reading
// only their fixed headers: magic 2 keeps the last offset delta at bytes
// 23..27, and a legacy entry's offset is its last offset. It returns the
// offset after the last batch walked (-1 if none) and the bytes walked.
func scanBatches(records []byte, upTo int64) (next int64, n int) {
	next = -1
	for len(records)-n >= 17 {
		b := records[n:]
		base := int64(binary.BigEndian.Uint64(b))
		size := int64(int32(binary.BigEndian.Uint32(b[8:])))
		if size < 5 || 12+size > int64(len(b)) {
			break
		}
		switch b[16] {
		case 2:
			if size < 15 {
				return next, n
			}
			next = base + int64(int32(binary.BigEndian.Uint32(b[23:]))) + 1
		case 0, 1:
			next = base + 1
		default:
			return next, n
		}
		n += int(12 + size)
		if next > upTo {
			break
		}
	}
	return next, n
}
