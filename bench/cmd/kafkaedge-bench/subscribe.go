package main

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/kafkaedge/kafkaedge/internal/wsclient"
	"github.com/kafkaedge/kafkaedge/proto/pubsub"
)

// This file holds the scenarios of kafkaedge's push subscriptions
// (CmdKafkaSubscribe, EXTENSIONS.md): subscribe-fanout,
// subscribe-idle and subscribe-catchup. Subscribers are compared with
// clients that read the same data by polling with CmdKafkaFetch, on
// kafkaedge and on the conventional server (which has no subscriptions),
// every figure of a comparison measured in the same run, each run on a
// fresh server. A scenario's results are named <scenario> (kafkaedge's
// subscribers) and <scenario>/<variant> (poll: the polling clients;
// 1-subscriber: subscribe-fanout with one subscriber).

// The results of the subscription scenarios.
const (
	scSubFanout      = "subscribe-fanout"              // kafkaedge: -subscribe-clients subscribers
	scSubFanoutOne   = "subscribe-fanout/1-subscriber" // kafkaedge: one subscriber, the brokers' fetch rate it causes
	scSubFanoutPoll  = "subscribe-fanout/poll"         // kafkaedge and conventional: the same clients polling
	scSubIdle        = "subscribe-idle"                // kafkaedge: idle subscriptions
	scSubCatchup     = "subscribe-catchup"             // kafkaedge: subscribers reading a topic from its beginning
	scSubCatchupPoll = "subscribe-catchup/poll"        // kafkaedge and conventional: the same clients polling
)

// subPartitions is the partition count of subscribe-idle's and
// subscribe-catchup's topics.
const subPartitions = 4

// subDrain bounds how long subscribe-fanout waits, once the producer has
// stopped, for every client to have received every record.
const subDrain = 10 * time.Second

// pollPause is how long a polling client that got nothing waits before it
// asks again, as the fanout scenario's clients do.
const pollPause = 20 * time.Millisecond

// family returns the scenario a result belongs to: subscribe-fanout for
// subscribe-fanout/poll, groups for groups/commit. Other results are their
// own.
func family(scenario string) string {
	if strings.HasPrefix(scenario, "subscribe-") || strings.HasPrefix(scenario, scGroups+"/") {
		name, _, _ := strings.Cut(scenario, "/")
		return name
	}
	return scenario
}

// hasSystem reports whether the run compares sys.
func (b *bench) hasSystem(sys string) bool { return slices.Contains(b.cfg.systems, sys) }

// servers returns the selected systems that have a WebSocket server, in
// the order of -systems.
func (b *bench) servers() []string {
	var out []string
	for _, sys := range b.cfg.systems {
		if sys != sysCeiling {
			out = append(out, sys)
		}
	}
	return out
}

// subscribeFanout runs subscribe-fanout: kafkaedge with one subscriber,
// then with -subscribe-clients subscribers, then the same number of
// clients polling with CmdKafkaFetch on kafkaedge and on the conventional
// server, while a producer writes -subscribe-rate records/s.
func (b *bench) subscribeFanout(ctx context.Context) error {
	topic, _, err := b.seeded(ctx, "subscribe-fanout", 1, 100, "none", 0)
	if err != nil {
		return err
	}
	n := b.cfg.subClients
	if b.hasSystem(sysKafkaedge) {
		for _, run := range []struct {
			name    string
			clients int
		}{{scSubFanoutOne, 1}, {scSubFanout, n}} {
			if ctx.Err() != nil {
				return nil
			}
			b.add(b.runOne(ctx, run.name, sysKafkaedge, run.clients, topic, nil,
				func(ctx context.Context, t *target, m *meter, l *load) (map[string]float64, error) {
					return b.fanoutSubLoad(ctx, t, m, l, run.name, topic, run.clients, true)
				}))
		}
	}
	for _, sys := range b.servers() {
		if ctx.Err() != nil {
			return nil
		}
		b.add(b.runOne(ctx, scSubFanoutPoll, sys, n, topic, nil,
			func(ctx context.Context, t *target, m *meter, l *load) (map[string]float64, error) {
				return b.fanoutSubLoad(ctx, t, m, l, scSubFanoutPoll, topic, n, false)
			}))
	}
	return nil
}

// subscribeIdle runs subscribe-idle on kafkaedge.
func (b *bench) subscribeIdle(ctx context.Context) error {
	if !b.hasSystem(sysKafkaedge) {
		b.prog.note("%s: kafkaedge only, not selected", scSubIdle)
		return nil
	}
	topic, _, err := b.seeded(ctx, "subscribe-idle", subPartitions, 100, "none", 0)
	if err != nil {
		return err
	}
	var args []string
	if per := b.cfg.subIdlePerConn; per > 64 {
		args = []string{"-max-subscriptions", strconv.Itoa(per)}
	}
	b.add(b.runOne(ctx, scSubIdle, sysKafkaedge, b.cfg.subIdle, topic, args,
		func(ctx context.Context, t *target, m *meter, l *load) (map[string]float64, error) {
			return b.subIdleLoad(ctx, t, m, l, topic)
		}))
	return nil
}

// subscribeCatchup runs subscribe-catchup: -catchup-clients subscribers
// read a topic of subPartitions partitions from its beginning on
// kafkaedge, then the same number of clients poll it from its beginning
// on kafkaedge and on the conventional server.
func (b *bench) subscribeCatchup(ctx context.Context) error {
	topic, ends, err := b.seeded(ctx, "subscribe-catchup", subPartitions, b.cfg.catchupRecords, "none", 0)
	if err != nil {
		return err
	}
	n := b.cfg.catchupClients
	if b.hasSystem(sysKafkaedge) {
		b.add(b.runOne(ctx, scSubCatchup, sysKafkaedge, n, topic, nil,
			func(ctx context.Context, t *target, m *meter, l *load) (map[string]float64, error) {
				return b.catchupLoad(ctx, t, m, l, topic, ends, true)
			}))
	}
	for _, sys := range b.servers() {
		if ctx.Err() != nil {
			return nil
		}
		b.add(b.runOne(ctx, scSubCatchupPoll, sys, n, topic, nil,
			func(ctx context.Context, t *target, m *meter, l *load) (map[string]float64, error) {
				return b.catchupLoad(ctx, t, m, l, topic, ends, false)
			}))
	}
	return nil
}

// forEach calls fn(0..n-1) from workers goroutines and returns the first
// error; after one, no new call starts.
func forEach(ctx context.Context, n, workers int, fn func(i int) error) error {
	var next atomic.Int64
	var ferr firstError
	var wg sync.WaitGroup
	for range min(workers, n) {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n || ferr.get() != nil || ctx.Err() != nil {
					return
				}
				ferr.set(fn(i))
			}
		})
	}
	wg.Wait()
	if err := ferr.get(); err != nil {
		return err
	}
	return ctx.Err()
}

// fanoutSubLoad: n clients on one partition from its end, subscribed
// (push) or polling with CmdKafkaFetch at their next offset, while a
// producer writes -subscribe-rate records/s in batches of -subscribe-batch
// for the duration, each value starting with its produce time. Latency is
// per message, from its production to its receipt. The window ends when
// every client has received every record produced, or subDrain after the
// producer stopped; what a client has not received by then counts as
// received at the end of the window. A gap, a repeat or an error answer
// is an error.
func (b *bench) fanoutSubLoad(ctx context.Context, t *target, m *meter, l *load, name, topic string, n int, push bool) (map[string]float64, error) {
	conns, err := dialMany(ctx, t.url, n, 32, wsclient.Options{}, nil)
	if err != nil {
		return nil, err
	}
	defer closeAll(conns)
	prod, err := b.newStampProducer(ctx, topic)
	if err != nil {
		return nil, err
	}
	defer prod.close()
	ends, err := b.cl.endOffsets(ctx, topic, 1)
	if err != nil {
		return nil, err
	}
	start := ends[0]
	seqs := make([]int64, n)
	if push {
		err := forEach(ctx, n, 32, func(i int) error {
			c := conns[i]
			_ = c.SetDeadline(time.Now().Add(30 * time.Second))
			s, pos, err := subscribe(c, nil, subscribeReq(topic, []int32{0}, false))
			if err != nil {
				return fmt.Errorf("subscriber %d: %w", i+1, err)
			}
			if len(pos[0]) != 1 || pos[0][0].GetPartition() != 0 || pos[0][0].GetOffset() != start {
				return fmt.Errorf("subscriber %d: starts at %v, want %s/0 at its end %d", i+1, pos[0], topic, start)
			}
			seqs[i] = s[0]
			return nil
		})
		if err != nil {
			return nil, err
		}
	}

	var target atomic.Int64 // the end once the producer has stopped; -1 before
	target.Store(-1)
	var stopping atomic.Bool
	progress := make([]atomic.Int64, n)
	m.begin()
	until := time.Now().Add(b.cfg.duration)
	var wg sync.WaitGroup
	for i := range n {
		progress[i].Store(start)
		wg.Go(func() {
			rec := l.recorder()
			defer rec.flush()
			c := conns[i]
			_ = c.SetDeadline(until.Add(subDrain + 30*time.Second))
			r := &reader{next: []int64{start}, rec: rec, stamped: true, progress: &progress[i], target: &target, l: l}
			var err error
			if push {
				err = r.push(c, seqs[i], time.Time{})
			} else {
				err = r.poll(c, topic, time.Time{}, &stopping)
			}
			if err != nil && !stopping.Load() {
				l.fail(fmt.Errorf("client %d: %w", i+1, err))
			}
		})
	}
	produced, perr := prod.run(ctx, until, b.cfg.subRate, b.cfg.subBatch)
	prodSec := time.Since(m.t0).Seconds()
	mid := noCounts
	if m.c0.fetches >= 0 && b.cl.countsCheap() {
		mid = b.cl.brokerCounts().sub(m.c0)
	}
	var short int
	var drained time.Duration
	if perr == nil {
		if ends, err = b.cl.endOffsets(ctx, topic, 1); err != nil {
			perr = err
		}
	}
	if perr == nil {
		end := ends[0]
		target.Store(end)
		t0 := time.Now()
		for {
			short = 0
			for i := range progress {
				if progress[i].Load() < end {
					short++
				}
			}
			if short == 0 || time.Since(t0) > subDrain || ctx.Err() != nil || l.errs.Load() >= int64(n) {
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
		drained = time.Since(t0)
	}
	windowEnd := stampNow()
	m.stop()
	stopping.Store(true)
	closeAll(conns)
	wg.Wait()

	extra := map[string]float64{"clients": float64(n), "producer_rate": float64(b.cfg.subRate),
		"producer_batch": float64(b.cfg.subBatch), "produced": float64(produced), "drain_s": drained.Seconds()}
	if perr != nil {
		return extra, fmt.Errorf("producer: %w", perr)
	}
	end := ends[0]
	extra["records"] = float64(end - start)
	extra["short_clients"] = float64(short)
	if end-start != produced {
		return extra, fmt.Errorf("%s/0 grew by %d records while the producer wrote %d", topic, end-start, produced)
	}
	switch {
	case mid.fetches >= 0:
		extra["broker_fetches_per_sec"] = float64(mid.fetches) / prodSec
	case m.fetches >= 0:
		extra["broker_fetches_per_sec"] = float64(m.fetches) / max(m.elapsed.Seconds(), 1e-9)
	}
	if msgs := l.msgs.Load(); t.srv != nil && m.end.valid && msgs > 0 {
		extra["cpu_s_per_million_deliveries"] = m.cpu.Seconds() / (float64(msgs) / 1e6)
	}
	// A message a client did not receive by the end of the window counts
	// in the latencies as received then (a lower bound), so that a server
	// that falls behind is not credited with the latencies of what it did
	// deliver only.
	rec := l.recorder()
	var undelivered int64
	first := -1
	for i := range progress {
		for o := progress[i].Load(); o < end; o++ {
			rec.sample(time.Duration(windowEnd - prod.stamps[o-start]))
			undelivered++
			if first < 0 {
				first = i
			}
		}
	}
	rec.flush()
	extra["undelivered"] = float64(undelivered)
	if first >= 0 {
		b.prog.note("%s %s: %d of %d clients short of the end %d %.1fs after the producer stopped (%d messages undelivered, counted as received then); first, client %d, at offset %d",
			name, t.system, short, n, end, drained.Seconds(), undelivered, first+1, progress[first].Load())
	}
	if push {
		b.nodeFigures(t, extra)
	}
	return extra, nil
}

// nodeFigures adds to extra what kafkaedge's /metrics says of its
// subscriptions since it started: pushes, their messages, the subscribers'
// reads behind the end of their tail (from its cache, or by fetches of
// their own, or joined to one), and pushes paused for a full outbound
// queue.
func (b *bench) nodeFigures(t *target, extra map[string]float64) {
	if t.system != sysKafkaedge || t.srv == nil || t.srv.metrics == "" {
		return
	}
	fams, err := scrapeMetrics(&http.Client{Timeout: 5 * time.Second}, t.srv.metrics)
	if err != nil {
		b.prog.note("kafkaedge /metrics: %v", err)
		return
	}
	for key, q := range map[string][3]string{
		"node_pushes":         {"kafkaedge_pushes_total"},
		"node_pushed_msgs":    {"kafkaedge_pushed_messages_total"},
		"node_tail_hits":      {"kafkaedge_tail_reads_total", "kind", "cache_hit"},
		"node_tail_misses":    {"kafkaedge_tail_reads_total", "kind", "cache_miss"},
		"node_tail_coalesced": {"kafkaedge_tail_reads_total", "kind", "coalesced"},
		"node_push_paused":    {"kafkaedge_backpressure_events_total", "event", "push_paused"},
	} {
		if v := familySum(fams, q[0], q[1], q[2]); v >= 0 {
			extra[key] = v
		}
	}
}

// subIdleLoad: -subscribe-idle subscriptions, -subscribe-idle-per-conn on
// each connection, one partition each (in turn over the topic's), from the
// end of a topic nobody writes to. The node's RSS is read once the
// connections are open and again once the subscriptions are made.
func (b *bench) subIdleLoad(ctx context.Context, t *target, m *meter, l *load, topic string) (map[string]float64, error) {
	total, per := b.cfg.subIdle, b.cfg.subIdlePerConn
	nconn := (total + per - 1) / per
	o := wsclient.Options{ReadBufferSize: 256, WriteBufferSize: 256}
	conns, err := dialMany(ctx, t.url, nconn, 32, o, nil)
	if err != nil {
		return nil, err
	}
	defer closeAll(conns)
	time.Sleep(300 * time.Millisecond) // let the warm-up's and the upgrades' garbage settle
	before := t.srv.sample()
	m.begin()
	t0 := time.Now()
	seqs := make([][]int64, nconn)
	err = forEach(ctx, nconn, 32, func(i int) error {
		rec := l.recorder()
		defer rec.flush()
		c := conns[i]
		_ = c.SetDeadline(time.Now().Add(30 * time.Second))
		k := min(per, total-i*per)
		reqs := make([]*pubsub.PubSubReq, k)
		for j := range reqs {
			reqs[j] = subscribeReq(topic, []int32{int32((i*per + j) % subPartitions)}, false)
		}
		s, _, err := subscribe(c, rec, reqs...)
		if err != nil {
			return fmt.Errorf("connection %d: %w", i+1, err)
		}
		seqs[i] = s
		return nil
	})
	if err != nil {
		return nil, err
	}
	subSec := time.Since(t0).Seconds()
	time.Sleep(time.Second)
	after := t.srv.sample()
	// The connections must still be served, and answer nothing but what
	// they are asked; an unsubscribe is answered with the end of its
	// subscription.
	for i := 0; i < len(conns); i += max(1, len(conns)/50) {
		c := conns[i]
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := c.Ping([]byte("idle")); err != nil {
			return nil, fmt.Errorf("ping connection %d of %d subscriptions: %w", i+1, len(seqs[i]), err)
		}
		if err := unsubscribe(c, seqs[i][0]); err != nil {
			return nil, fmt.Errorf("connection %d: %w", i+1, err)
		}
	}
	m.stop()
	extra := map[string]float64{"subscriptions": float64(total), "conns": float64(nconn), "subscribe_s": subSec}
	if before.valid && after.valid {
		extra["rss_before_mib"] = float64(before.RSS) / (1 << 20)
		extra["rss_after_mib"] = float64(after.RSS) / (1 << 20)
		extra["kib_per_subscription"] = float64(after.RSS-before.RSS) / 1024 / float64(total)
	}
	b.nodeFigures(t, extra)
	return extra, nil
}

// catchupLoad: n clients read every partition of topic from its beginning
// to ends, subscribed (push: one subscription of the topic's partitions)
// or polling with CmdKafkaFetch (one request in flight, the partitions in
// turn). The window ends when every client has read everything, or at the
// end of the duration.
func (b *bench) catchupLoad(ctx context.Context, t *target, m *meter, l *load, topic string, ends []int64, push bool) (map[string]float64, error) {
	n := b.cfg.catchupClients
	conns, err := dialMany(ctx, t.url, n, 8, wsclient.Options{}, nil)
	if err != nil {
		return nil, err
	}
	defer closeAll(conns)
	parts := make([]int32, len(ends))
	var total int64
	for p := range ends {
		parts[p] = int32(p)
		total += ends[p]
	}
	var target atomic.Int64
	target.Store(total)
	var caught atomic.Int64
	var unread atomic.Int64 // records the clients had not read at the end
	m.begin()
	until := time.Now().Add(b.cfg.duration)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			c := conns[i]
			_ = c.SetDeadline(until.Add(30 * time.Second))
			var progress atomic.Int64
			r := &reader{next: make([]int64, len(ends)), ends: ends, progress: &progress, target: &target, l: l}
			var err error
			if push {
				var s []int64
				var pos [][]*pubsub.KafkaPosition
				s, pos, err = subscribe(c, nil, subscribeReq(topic, parts, true))
				if err == nil {
					err = r.start(pos[0])
				}
				if err == nil {
					_ = c.SetReadDeadline(until)
					err = r.push(c, s[0], until)
				}
			} else {
				err = r.poll(c, topic, until, nil)
			}
			if err != nil {
				l.fail(fmt.Errorf("client %d: %w", i+1, err))
			}
			left := total - progress.Load()
			if left <= 0 {
				caught.Add(1)
			}
			unread.Add(max(left, 0))
		})
	}
	wg.Wait()
	m.stop()
	extra := map[string]float64{"clients": float64(n), "partitions": float64(len(ends)), "records": float64(total),
		"caught_up_clients": float64(caught.Load()), "unread_records": float64(unread.Load())}
	if push {
		b.nodeFigures(t, extra)
	}
	return extra, nil
}

// subscribeReq builds a CmdKafkaSubscribe of topic's partitions, from
// their beginning or (beginning false) their end.
func subscribeReq(topic string, partitions []int32, beginning bool) *pubsub.PubSubReq {
	m := &pubsub.CmdKafkaSubscribe{Topic: topic, Partitions: partitions}
	if beginning {
		m.Start = &pubsub.CmdKafkaSubscribe_Offset{Offset: -2}
	}
	return &pubsub.PubSubReq{Req: &pubsub.PubSubReq_CmdKafkaSubscribe{CmdKafkaSubscribe: m}}
}

// subscribe numbers reqs (CmdKafkaSubscribe), sends them in one write and
// reads the first answer of each, which must be a KafkaSubscribeResp; it
// returns their sequences and start positions in the order of reqs. rec,
// if not nil, records each answer's time from the write. Only for
// subscriptions that push nothing before the last is answered: a single
// one, or several on a topic nobody writes to.
func subscribe(c *wsclient.Conn, rec *recorder, reqs ...*pubsub.PubSubReq) ([]int64, [][]*pubsub.KafkaPosition, error) {
	seqs := make([]int64, len(reqs))
	index := make(map[int64]int, len(reqs))
	for i, req := range reqs {
		seqs[i] = c.Number(req).GetSequence()
		index[seqs[i]] = i
	}
	t0 := time.Now()
	if err := c.SendBatch(reqs...); err != nil {
		return nil, nil, err
	}
	pos := make([][]*pubsub.KafkaPosition, len(reqs))
	for range reqs {
		raw, err := c.RecvRaw()
		if err != nil {
			return nil, nil, fmt.Errorf("subscribe: %w", err)
		}
		f, err := parseFrame(raw, -1, nil)
		if err != nil {
			return nil, nil, fmt.Errorf("subscribe: %w", err)
		}
		i, ok := index[f.seq]
		switch {
		case !ok:
			return nil, nil, fmt.Errorf("subscribe: %w: answer %d to none of %v", wsclient.ErrSequence, f.seq, seqs)
		case f.kind != pubsub.FieldKafkaSubscribeResp:
			return nil, nil, fmt.Errorf("subscribe %d: %w", f.seq, f.err())
		}
		var resp pubsub.KafkaSubscribeResp
		if err := proto.Unmarshal(f.body, &resp); err != nil {
			return nil, nil, fmt.Errorf("subscribe %d: %w: %w", f.seq, wsclient.ErrMalformed, err)
		}
		delete(index, f.seq)
		pos[i] = resp.GetPositions()
		if rec != nil {
			rec.add(time.Since(t0), 0, 0)
		}
	}
	return seqs, pos, nil
}

// unsubscribe ends subscription sub of c, whose answer must be a
// KafkaSubscriptionEndResp under the unsubscribe's sequence.
func unsubscribe(c *wsclient.Conn, sub int64) error {
	req := c.Number(unsubscribeReq(sub))
	if err := c.Send(req); err != nil {
		return err
	}
	raw, err := c.RecvRaw()
	if err != nil {
		return fmt.Errorf("unsubscribe %d: %w", sub, err)
	}
	f, err := parseFrame(raw, -1, nil)
	switch {
	case err != nil:
		return fmt.Errorf("unsubscribe %d: %w", sub, err)
	case f.seq != req.GetSequence():
		return fmt.Errorf("unsubscribe %d: %w: sent %d, got %d", sub, wsclient.ErrSequence, req.GetSequence(), f.seq)
	case f.kind != pubsub.FieldKafkaSubscriptionEndResp:
		return fmt.Errorf("unsubscribe %d: %w", sub, f.err())
	}
	return nil
}

// unsubscribeReq builds a CmdKafkaUnsubscribe of subscription sub.
func unsubscribeReq(sub int64) *pubsub.PubSubReq {
	return &pubsub.PubSubReq{Req: &pubsub.PubSubReq_CmdKafkaUnsubscribe{
		CmdKafkaUnsubscribe: &pubsub.CmdKafkaUnsubscribe{Subscription: sub}}}
}

// reader is one client of the subscription scenarios: it checks that, per
// partition, the offsets it receives follow one another from where it
// started (no gap, no repeat), counts what it receives into l, and, for
// stamped values, records each message's time from its production.
type reader struct {
	next     []int64 // per partition, the offset expected next
	ends     []int64 // per partition, where reading stops (catch-up); nil: at target
	progress *atomic.Int64
	target   *atomic.Int64 // the sum of next to reach; -1: not known yet
	l        *load
	rec      *recorder
	stamped  bool  // values start with their produce time (stampNow)
	now      int64 // stampNow when the frame being read arrived
}

// start sets where each partition starts from a KafkaSubscribeResp.
func (r *reader) start(pos []*pubsub.KafkaPosition) error {
	if len(pos) != len(r.next) {
		return fmt.Errorf("subscribed %d partitions, want %d", len(pos), len(r.next))
	}
	for _, p := range pos {
		if p.GetPartition() < 0 || int(p.GetPartition()) >= len(r.next) {
			return fmt.Errorf("subscribed partition %d, want 0..%d", p.GetPartition(), len(r.next)-1)
		}
		r.next[p.GetPartition()] = p.GetOffset()
	}
	r.update()
	return nil
}

// update publishes the reader's progress, and reports whether it is done.
func (r *reader) update() bool {
	var sum int64
	for _, o := range r.next {
		sum += o
	}
	r.progress.Store(sum)
	t := r.target.Load()
	return t >= 0 && sum >= t
}

// visit checks one message of partition p.
func (r *reader) visit(p int32, offset int64, value []byte) error {
	if p < 0 || int(p) >= len(r.next) {
		return fmt.Errorf("message of partition %d, want 0..%d", p, len(r.next)-1)
	}
	if want := r.next[p]; offset != want {
		return fmt.Errorf("partition %d: offset %d, want %d (a gap or a repeat)", p, offset, want)
	}
	r.next[p]++
	if r.stamped && len(value) >= 8 {
		r.rec.sample(time.Duration(r.now - int64(binary.BigEndian.Uint64(value))))
	}
	return nil
}

// push reads the pushes of subscription seq until the reader is done, or
// until stop (zero: no stop; the connection's read deadline must then be
// set at it).
func (r *reader) push(c *wsclient.Conn, seq int64, stop time.Time) error {
	visit := r.visit
	for range maxRequests {
		raw, err := c.RecvRaw()
		if err != nil {
			if !stop.IsZero() && !time.Now().Before(stop) {
				return nil
			}
			return err
		}
		r.now = stampNow()
		f, err := parseFrame(raw, -1, visit)
		switch {
		case err != nil:
			return err
		case f.seq != seq:
			return fmt.Errorf("%w: a message of subscription %d, want %d", wsclient.ErrSequence, f.seq, seq)
		case f.kind != pubsub.FieldKafkaRecords:
			return fmt.Errorf("subscription %d: %w", seq, f.err())
		case f.partition < 0 || int(f.partition) >= len(r.next):
			return fmt.Errorf("subscription %d: a push of partition %d, want 0..%d", seq, f.partition, len(r.next)-1)
		case f.next != r.next[f.partition]:
			return fmt.Errorf("subscription %d: partition %d: next_offset %d after offset %d (no control records were written)",
				seq, f.partition, f.next, r.next[f.partition]-1)
		}
		r.l.reqs.Add(1)
		if f.msgs > 0 {
			r.l.msgs.Add(int64(f.msgs))
			r.l.bytes.Add(int64(f.bytes))
		}
		if r.update() {
			return nil
		}
	}
	return fmt.Errorf("subscription %d: %d pushes and not done", seq, maxRequests)
}

// poll fetches with CmdKafkaFetch, one request in flight, from the next
// offset of each partition in turn (catch-up: those short of their end)
// until the reader is done, stopping is set, or (not zero) stop passes. A
// fetch that answers nothing is asked again after pollPause, except in
// catch-up, where it is an error.
func (r *reader) poll(c *wsclient.Conn, topic string, stop time.Time, stopping *atomic.Bool) error {
	visit := r.visit
	p := int32(0)
	for range maxRequests {
		if (stopping != nil && stopping.Load()) || (!stop.IsZero() && !time.Now().Before(stop)) {
			return nil
		}
		if r.ends != nil {
			left := false
			for k := range r.ends {
				if q := (int(p) + k) % len(r.ends); r.next[q] < r.ends[q] {
					p, left = int32(q), true
					break
				}
			}
			if !left {
				return nil
			}
		}
		off := r.next[p]
		req := c.Number(wsclient.FetchReq(0, topic, p, off))
		if err := c.Send(req); err != nil {
			return err
		}
		raw, err := c.RecvRaw()
		if err != nil {
			return err
		}
		r.now = stampNow()
		f, err := parseFrame(raw, p, visit)
		switch {
		case err != nil:
			return fmt.Errorf("fetch %s/%d@%d: %w", topic, p, off, err)
		case f.seq != req.GetSequence():
			return fmt.Errorf("fetch %s/%d@%d: %w: sent %d, got %d", topic, p, off, wsclient.ErrSequence, req.GetSequence(), f.seq)
		case f.kind != pubsub.FieldKafkaFetchResp:
			return fmt.Errorf("fetch %s/%d@%d: %w", topic, p, off, f.err())
		}
		r.l.reqs.Add(1)
		if f.msgs > 0 {
			r.l.msgs.Add(int64(f.msgs))
			r.l.bytes.Add(int64(f.bytes))
		}
		if r.update() {
			return nil
		}
		switch {
		case f.msgs == 0 && r.ends != nil:
			return fmt.Errorf("fetch %s/%d@%d: empty before the end %d", topic, p, off, r.ends[p])
		case f.msgs == 0:
			time.Sleep(pollPause) // caught up: poll again shortly
		}
		if r.ends != nil {
			p = (p + 1) % int32(len(r.ends))
		}
	}
	return fmt.Errorf("fetch %s: %d requests and not done", topic, maxRequests)
}

// frame is one response frame of the subscription scenarios, as walked by
// parseFrame.
type frame struct {
	seq       int64
	kind      protowire.Number // the PubSubResp answer field: pubsub.FieldKafkaRecords, ...
	body      []byte           // the answer's bytes, except for pushes and fetch answers
	partition int32            // kafka_records; a fetch answer: the partition given
	next      int64            // kafka_records: next_offset
	msgs      int
	bytes     int // value bytes
}

// errMalformed is a frame the walk cannot read.
func errMalformed(what string, n int) error {
	return fmt.Errorf("%w: %s: %w", wsclient.ErrMalformed, what, protowire.ParseError(n))
}

// parseFrame walks one PubSubResp. The messages of a kafka_records push or
// of a fetch answer (of partition, which the answer does not name) go to
// visit in order; a non-nil error from it stops the walk.
func parseFrame(b []byte, partition int32, visit func(p int32, offset int64, value []byte) error) (frame, error) {
	f := frame{partition: partition}
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return f, errMalformed("response field", n)
		}
		b = b[n:]
		switch {
		case num == 1 && typ == protowire.VarintType:
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return f, errMalformed("sequence", n)
			}
			f.seq = int64(v)
			b = b[n:]
		case num >= pubsub.FieldErrorResp && typ == protowire.BytesType:
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return f, errMalformed("answer", n)
			}
			b = b[n:]
			if f.kind != 0 {
				return f, fmt.Errorf("%w: answers %d and %d in one response", wsclient.ErrMalformed, f.kind, num)
			}
			f.kind = num
			var err error
			switch num {
			case pubsub.FieldKafkaRecords:
				err = f.records(v, visit)
			case pubsub.FieldKafkaFetchResp:
				err = f.messages(v, pubsub.FieldFetchRespMessages, visit)
			default:
				f.body = v
			}
			if err != nil {
				return f, err
			}
		default:
			n := protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return f, errMalformed("response field", n)
			}
			b = b[n:]
		}
	}
	if f.kind == 0 {
		return f, fmt.Errorf("%w: no answer", wsclient.ErrUnexpected)
	}
	return f, nil
}

// Fields of KafkaPartitionRecords (EXTENSIONS.md) the walk reads.
const (
	recordsPartition protowire.Number = 2
	recordsNext      protowire.Number = 5
	recordsError     protowire.Number = 6
)

// records walks a KafkaPartitionRecords: its partition and next_offset
// first (the node writes its messages last, but any order is valid; proto3
// leaves out the zeros), then its messages.
func (f *frame) records(b []byte, visit func(int32, int64, []byte) error) error {
	f.partition, f.next = 0, 0
	for rest := b; len(rest) > 0; {
		num, typ, n := protowire.ConsumeTag(rest)
		if n < 0 {
			return errMalformed("kafka_records field", n)
		}
		rest = rest[n:]
		switch {
		case (num == recordsPartition || num == recordsNext) && typ == protowire.VarintType:
			v, n := protowire.ConsumeVarint(rest)
			if n < 0 {
				return errMalformed("kafka_records field", n)
			}
			if num == recordsPartition {
				f.partition = int32(v)
			} else {
				f.next = int64(v)
			}
			rest = rest[n:]
		case num == recordsError && typ == protowire.BytesType:
			v, n := protowire.ConsumeBytes(rest)
			if n < 0 {
				return errMalformed("kafka_records error", n)
			}
			var e pubsub.ErrorResp
			_ = proto.Unmarshal(v, &e)
			return &wsclient.ServerError{Code: e.GetCode(), Message: e.GetMessage()}
		default:
			n := protowire.ConsumeFieldValue(num, typ, rest)
			if n < 0 {
				return errMalformed("kafka_records field", n)
			}
			rest = rest[n:]
		}
	}
	return f.messages(b, pubsub.FieldRecordsMessages, visit)
}

// messages walks the KafkaMessage entries (field field) of b.
func (f *frame) messages(b []byte, field protowire.Number, visit func(int32, int64, []byte) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return errMalformed("messages field", n)
		}
		b = b[n:]
		if num != field || typ != protowire.BytesType {
			n := protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return errMalformed("messages field", n)
			}
			b = b[n:]
			continue
		}
		m, n := protowire.ConsumeBytes(b)
		if n < 0 {
			return errMalformed("message", n)
		}
		b = b[n:]
		var off int64
		var value []byte
		for len(m) > 0 {
			num, typ, n := protowire.ConsumeTag(m)
			if n < 0 {
				return errMalformed("message field", n)
			}
			m = m[n:]
			switch {
			case num == 1 && typ == protowire.VarintType:
				v, n := protowire.ConsumeVarint(m)
				if n < 0 {
					return errMalformed("message offset", n)
				}
				off, m = int64(v), m[n:]
			case num == 4 && typ == protowire.BytesType:
				v, n := protowire.ConsumeBytes(m)
				if n < 0 {
					return errMalformed("message value", n)
				}
				value, m = v, m[n:]
			default:
				n := protowire.ConsumeFieldValue(num, typ, m)
				if n < 0 {
					return errMalformed("message field", n)
				}
				m = m[n:]
			}
		}
		f.msgs++
		f.bytes += len(value)
		if visit != nil {
			if err := visit(f.partition, off, value); err != nil {
				return err
			}
		}
	}
	return nil
}

// err returns what an answer that is not the one expected says: the
// server's ErrorResp, the end of a subscription, or the kind of answer.
func (f frame) err() error {
	switch f.kind {
	case pubsub.FieldErrorResp:
		var e pubsub.ErrorResp
		if err := proto.Unmarshal(f.body, &e); err != nil {
			return fmt.Errorf("%w: error response: %w", wsclient.ErrMalformed, err)
		}
		return &wsclient.ServerError{Code: e.GetCode(), Message: e.GetMessage()}
	case pubsub.FieldKafkaSubscriptionEndResp:
		var e pubsub.KafkaSubscriptionEndResp
		_ = proto.Unmarshal(f.body, &e)
		return fmt.Errorf("%w: the subscription ended: code %d, %q", errEnded, e.GetCode(), e.GetReason())
	}
	return fmt.Errorf("%w: answer field %d", wsclient.ErrUnexpected, f.kind)
}

// errEnded is a KafkaSubscriptionEndResp the client did not ask for.
var errEnded = errors.New("subscription ended")

// stampEpoch is the origin of the produce times subscribe-fanout's
// producer writes into the first 8 bytes of its values: nanoseconds on
// this process's monotonic clock, which its clients read too.
var stampEpoch = time.Now()

// stampNow returns the time since stampEpoch in nanoseconds.
func stampNow() int64 { return int64(time.Since(stampEpoch)) }

// stampProducer writes records whose values start with their produce time
// (stampNow, big-endian) to partition 0 of a topic. Batches are produced
// when due, without waiting for the acks of the batches before (a flusher
// goroutine keeps kgo's manual flushing going), so a slow broker or a busy
// machine delays their delivery, not their production.
type stampProducer struct {
	cl     *kgo.Client
	filler []byte  // the rest of a value
	stamps []int64 // of the records written by run, in order
	errp   firstError
}

// newStampProducer creates a stampProducer for topic and writes one record
// through it, so that its connection and producer ID are ready before
// anything is timed.
func (b *bench) newStampProducer(ctx context.Context, topic string) (*stampProducer, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.cl.brokers...),
		kgo.ClientID("kafkaedge-bench-producer"),
		kgo.DefaultProduceTopic(topic),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ManualFlushing(),
		kgo.MaxBufferedRecords(200_000),
		kgo.WithLogger(kgo.BasicLogger(io.Discard, kgo.LogLevelNone, nil)))
	if err != nil {
		return nil, fmt.Errorf("producer for %s: %w", topic, err)
	}
	p := &stampProducer{cl: cl, filler: (&producer{value: make([]byte, max(b.cfg.valueSize, 8))}).fill()}
	p.produce(ctx, 1)
	p.stamps = p.stamps[:0]
	if err := cl.Flush(ctx); err != nil {
		cl.Close()
		return nil, fmt.Errorf("producer for %s: %w", topic, err)
	}
	if err := p.errp.get(); err != nil {
		cl.Close()
		return nil, fmt.Errorf("producer for %s: %w", topic, err)
	}
	return p, nil
}

// produce buffers n records stamped now.
func (p *stampProducer) produce(ctx context.Context, n int) {
	for range n {
		v := make([]byte, len(p.filler))
		copy(v, p.filler)
		now := stampNow()
		binary.BigEndian.PutUint64(v, uint64(now))
		p.stamps = append(p.stamps, now)
		p.cl.Produce(ctx, &kgo.Record{Partition: 0, Value: v}, func(_ *kgo.Record, err error) { p.errp.set(err) })
	}
}

// run writes rate records per second in batches of batch until the time
// until, waits for their acks, and returns how many it wrote: every batch
// whose time has come is stamped and handed to kgo at once (batches that
// fell behind go together), which sends it as soon as the produce request
// before it is answered. p.stamps[i] is the produce time of the i-th.
func (p *stampProducer) run(ctx context.Context, until time.Time, rate, batch int) (int64, error) {
	kick := make(chan struct{}, 1)
	flushed := make(chan error, 1)
	go func() {
		var err error
		for range kick {
			// Records produced while a Flush waits are sent too.
			if ferr := p.cl.Flush(ctx); err == nil {
				err = ferr
			}
		}
		flushed <- err
	}()
	interval := time.Duration(float64(time.Second) * float64(batch) / float64(rate))
	tick := time.NewTicker(interval)
	defer tick.Stop()
	start := time.Now()
	var sent int64
	for ctx.Err() == nil && time.Now().Before(until) && p.errp.get() == nil {
		due := int64(time.Since(start).Seconds()*float64(rate))/int64(batch)*int64(batch) - sent
		if due > 0 {
			p.produce(ctx, int(due))
			sent += due
			select {
			case kick <- struct{}{}:
			default: // a Flush is due already
			}
		}
		select {
		case <-ctx.Done():
		case <-tick.C:
		}
	}
	close(kick)
	err := <-flushed
	if err == nil {
		err = p.cl.Flush(ctx)
	}
	if err == nil {
		err = p.errp.get()
	}
	return sent, err
}

// close closes the producer's client.
func (p *stampProducer) close() { p.cl.Close() }

// lowerForFiles lowers the client counts of the subscription and group
// scenarios to what the open-file limit nofile allows (a connection is a
// descriptor in this process), saying so on w.
func lowerForFiles(cfg *config, nofile uint64, w io.Writer) {
	limit := max(int(nofile)-512, 1)
	if slices.Contains(cfg.scenarios, scSubFanout) && cfg.subClients > limit {
		fmt.Fprintf(w, "kafkaedge-bench: open-file limit %d: subscribe-fanout will have %d clients instead of %d\n",
			nofile, limit, cfg.subClients)
		cfg.subClients = limit
	}
	if conns := (cfg.subIdle + cfg.subIdlePerConn - 1) / cfg.subIdlePerConn; slices.Contains(cfg.scenarios, scSubIdle) && conns > limit {
		fmt.Fprintf(w, "kafkaedge-bench: open-file limit %d: subscribe-idle will hold %d subscriptions on %d connections instead of %d\n",
			nofile, limit*cfg.subIdlePerConn, limit, cfg.subIdle)
		cfg.subIdle = limit * cfg.subIdlePerConn
	}
	if slices.Contains(cfg.scenarios, scGroups) && cfg.groupMembers+cfg.groupIdle > limit {
		idle := max(limit-cfg.groupMembers, 1)
		fmt.Fprintf(w, "kafkaedge-bench: open-file limit %d: groups will have %d idle members instead of %d\n",
			nofile, idle, cfg.groupIdle)
		cfg.groupIdle = idle
	}
}
