package reactor

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkaedge/kafkaedge/internal/kafkatest"
	"github.com/kafkaedge/kafkaedge/internal/wsclient"
	"github.com/kafkaedge/kafkaedge/proto/pubsub"
)

func subscribeReq(seq int64, sub *pubsub.CmdKafkaSubscribe) *pubsub.PubSubReq {
	return &pubsub.PubSubReq{Sequence: seq, Req: &pubsub.PubSubReq_CmdKafkaSubscribe{CmdKafkaSubscribe: sub}}
}

func unsubscribeReq(seq, sub int64) *pubsub.PubSubReq {
	return &pubsub.PubSubReq{Sequence: seq, Req: &pubsub.PubSubReq_CmdKafkaUnsubscribe{
		CmdKafkaUnsubscribe: &pubsub.CmdKafkaUnsubscribe{Subscription: sub}}}
}

// produceTo writes records first..first+n-1 (testRecord) to partition p.
func produceTo(t testing.TB, k *kafkatest.Kafka, topic string, p int32, first, n int, opts ...kgo.Opt) {
	t.Helper()
	recs := make([]*kgo.Record, n)
	for i := range recs {
		recs[i] = testRecord(topic, first+i, 0)
		recs[i].Partition = p
	}
	k.Produce(t, opts, recs...)
}

// subConn is a client connection with subscriptions: it reads the
// connection's messages and hands each subscription's to its stream.
type subConn struct {
	*wsClient
	streams map[int64]*stream
}

func dialSubs(t testing.TB, s *Server, path string) *subConn {
	return &subConn{wsClient: dialWS(t, s, path), streams: map[int64]*stream{}}
}

// stream is what one subscription received, checked as it arrives: per
// partition, messages in offset order without gaps or repeats (next_offset
// of each push is where the next one starts), each the testRecord of its
// offset unless records is false.
type stream struct {
	t       testing.TB
	seq     int64
	pos     *pubsub.KafkaSubscribeResp
	next    map[int32]int64 // where each partition goes on
	msgs    map[int32][]*pubsub.KafkaMessage
	errs    []*pubsub.ErrorResp
	end     *pubsub.KafkaSubscriptionEndResp
	pushes  int
	records bool
	// A group subscription's assignments, and the partitions it owns after
	// the last (a push of any other fails the test).
	assigns []*pubsub.KafkaAssignmentResp
	owned   map[int32]bool
}

// request sends req and returns its answer (the first message of its
// sequence that is no subscription's), handing the subscriptions' messages
// to their streams meanwhile.
func (c *subConn) request(req *pubsub.PubSubReq) *pubsub.PubSubResp {
	c.t.Helper()
	c.send(req)
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := c.tryRecv(time.Until(deadline))
		if err != nil {
			c.t.Fatalf("waiting for the answer of %v: %v", req, err)
		}
		if st := c.streams[resp.GetSequence()]; st != nil && resp.GetSequence() != req.GetSequence() {
			st.take(resp)
			continue
		}
		if resp.GetSequence() != req.GetSequence() {
			c.t.Fatalf("waiting for the answer of %v: %v", req, resp)
		}
		return resp
	}
}

// subscribe sends sub as seq and returns its stream; it fails the test
// unless the answer is a KafkaSubscribeResp.
func (c *subConn) subscribe(seq int64, sub *pubsub.CmdKafkaSubscribe) *stream {
	c.t.Helper()
	resp := c.request(subscribeReq(seq, sub))
	r := resp.GetKafkaSubscribeResp()
	if r == nil {
		c.t.Fatalf("subscribe %v: %v", sub, resp)
	}
	st := &stream{t: c.t, seq: seq, pos: r, next: map[int32]int64{}, msgs: map[int32][]*pubsub.KafkaMessage{}, records: true}
	for _, p := range r.GetPositions() {
		st.next[p.GetPartition()] = p.GetOffset()
	}
	c.streams[seq] = st
	return st
}

// pump reads the connection's messages into their streams until done
// holds; it fails the test after 30 s.
func (c *subConn) pump(what string, done func() bool) {
	c.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !done() {
		resp, err := c.tryRecv(time.Until(deadline))
		if err != nil {
			c.t.Fatalf("%s: %v", what, err)
		}
		st := c.streams[resp.GetSequence()]
		if st == nil {
			c.t.Fatalf("%s: a message of no subscription: %v", what, resp)
		}
		st.take(resp)
	}
}

// take handles one message of the subscription; it fails the test on
// anything else.
func (s *stream) take(resp *pubsub.PubSubResp) {
	s.t.Helper()
	switch {
	case resp.GetKafkaAssignmentResp() != nil:
		a := resp.GetKafkaAssignmentResp()
		s.assigns = append(s.assigns, a)
		owned := map[int32]bool{}
		for _, pos := range a.GetAssigned() {
			owned[pos.GetPartition()] = true
			if !s.owned[pos.GetPartition()] {
				s.next[pos.GetPartition()] = pos.GetOffset()
			}
		}
		for _, p := range a.GetRevoked() {
			if owned[p] {
				s.t.Fatalf("subscription %d: partition %d both assigned and revoked: %v", s.seq, p, a)
			}
		}
		s.owned = owned
	case resp.GetKafkaRecords() != nil:
		r := resp.GetKafkaRecords()
		p := r.GetPartition()
		if s.owned != nil && !s.owned[p] {
			s.t.Fatalf("subscription %d: a push of partition %d, which it does not own: %v", s.seq, p, s.assigns)
		}
		want, ok := s.next[p]
		if !ok {
			want = 0 // a partition added while subscribed starts at its beginning
		}
		for i, m := range r.GetMessages() {
			if i == 0 && m.GetOffset() < want || i > 0 && m.GetOffset() <= r.GetMessages()[i-1].GetOffset() {
				s.t.Fatalf("subscription %d partition %d: offset %d after %d (a repeat or out of order)", s.seq, p, m.GetOffset(), want)
			}
			if s.records {
				if err := checkMessages([]*pubsub.KafkaMessage{m}, r.GetTopic(), int(m.GetOffset()), 0); err != nil {
					s.t.Fatalf("subscription %d partition %d: %v", s.seq, p, err)
				}
				if i == 0 && m.GetOffset() != want {
					s.t.Fatalf("subscription %d partition %d: push starts at %d, want %d (a gap)", s.seq, p, m.GetOffset(), want)
				}
			}
		}
		if r.GetNextOffset() <= want {
			s.t.Fatalf("subscription %d partition %d: next_offset %d does not move past %d", s.seq, p, r.GetNextOffset(), want)
		}
		if n := len(r.GetMessages()); n > 0 && r.GetNextOffset() <= r.GetMessages()[n-1].GetOffset() {
			s.t.Fatalf("subscription %d partition %d: next_offset %d not past the last message %d", s.seq, p, r.GetNextOffset(), r.GetMessages()[n-1].GetOffset())
		}
		s.next[p] = r.GetNextOffset()
		s.msgs[p] = append(s.msgs[p], r.GetMessages()...)
		s.pushes++
	case resp.GetErrorResp() != nil:
		s.errs = append(s.errs, resp.GetErrorResp())
	case resp.GetKafkaSubscriptionEndResp() != nil:
		if s.end != nil {
			s.t.Fatalf("a second end: %v", resp)
		}
		s.end = resp.GetKafkaSubscriptionEndResp()
	default:
		s.t.Fatalf("subscription %d: unexpected %v", s.seq, resp)
	}
	if s.end != nil && resp.GetKafkaSubscriptionEndResp() == nil {
		s.t.Fatalf("subscription %d: a message after its end: %v", s.seq, resp)
	}
}

// reached reports whether every partition of want is at its offset.
func (s *stream) reached(want map[int32]int64) bool {
	for p, o := range want {
		if s.next[p] < o {
			return false
		}
	}
	return true
}

// offsets returns the offsets received on partition p.
func (s *stream) offsets(p int32) []int64 {
	out := make([]int64, len(s.msgs[p]))
	for i, m := range s.msgs[p] {
		out[i] = m.GetOffset()
	}
	return out
}

// span returns from..to-1.
func span(from, to int64) []int64 {
	out := make([]int64, 0, max(to-from, 0))
	for o := from; o < to; o++ {
		out = append(out, o)
	}
	return out
}

func sameOffsets(got, want []int64) bool {
	return fmt.Sprint(got) == fmt.Sprint(want)
}

func all(parts int32, off int64) map[int32]int64 {
	m := map[int32]int64{}
	for p := range parts {
		m[p] = off
	}
	return m
}

// TestSubscribeStarts: a subscription starts at the end (new messages
// only), the beginning, an offset, per-partition offsets, a timestamp or
// the last N messages, on every partition of the topic; messages produced
// while subscribed are pushed without any client request.
func TestSubscribeStarts(t *testing.T) { kafkatest.Each(t, testSubscribeStarts) }

func testSubscribeStarts(t *testing.T, k *kafkatest.Kafka) {
	const parts = 4
	topic := k.Topic(t, "sub", parts)
	for p := range int32(parts) {
		produceTo(t, k, topic, p, 0, 10)
	}
	s := startServer(t, Config{}, kafkaRoute("/kafka", k))
	c := dialSubs(t, s, "/kafka")

	cases := []struct {
		name  string
		sub   *pubsub.CmdKafkaSubscribe
		start map[int32]int64
	}{
		{"end", &pubsub.CmdKafkaSubscribe{Topic: topic}, all(parts, 10)},
		{"offset -1", &pubsub.CmdKafkaSubscribe{Topic: topic, Start: &pubsub.CmdKafkaSubscribe_Offset{Offset: -1}}, all(parts, 10)},
		{"beginning", &pubsub.CmdKafkaSubscribe{Topic: topic, Start: &pubsub.CmdKafkaSubscribe_Offset{Offset: -2}}, all(parts, 0)},
		{"offset 3", &pubsub.CmdKafkaSubscribe{Topic: topic, Start: &pubsub.CmdKafkaSubscribe_Offset{Offset: 3}}, all(parts, 3)},
		{"timestamp", &pubsub.CmdKafkaSubscribe{Topic: topic, Start: &pubsub.CmdKafkaSubscribe_Timestamp{Timestamp: tsBase + 6000}}, all(parts, 6)},
		{"last 2", &pubsub.CmdKafkaSubscribe{Topic: topic, Start: &pubsub.CmdKafkaSubscribe_Last{Last: 2}}, all(parts, 8)},
		{"offsets", &pubsub.CmdKafkaSubscribe{Topic: topic, Partitions: []int32{1, 3}, Start: &pubsub.CmdKafkaSubscribe_Offset{Offset: 4},
			Offsets: map[int32]int64{3: 9}}, map[int32]int64{1: 4, 3: 9}},
	}
	streams := make([]*stream, len(cases))
	for i, tc := range cases {
		st := c.subscribe(int64(i+1), tc.sub)
		if r := st.pos; r.GetTopic() != topic || len(r.GetPositions()) != len(tc.start) {
			t.Fatalf("%s: %v", tc.name, r)
		}
		for _, p := range st.pos.GetPositions() {
			if p.GetOffset() != tc.start[p.GetPartition()] || p.GetHighWatermark() != 10 {
				t.Fatalf("%s: partition %d starts at %d (high watermark %d), want %d (10)", tc.name,
					p.GetPartition(), p.GetOffset(), p.GetHighWatermark(), tc.start[p.GetPartition()])
			}
		}
		streams[i] = st
	}
	for p := range int32(parts) {
		produceTo(t, k, topic, p, 10, 5)
	}
	c.pump("every subscription at offset 15", func() bool {
		for i, st := range streams {
			for p := range cases[i].start {
				if st.next[p] < 15 {
					return false
				}
			}
		}
		return true
	})
	for i, tc := range cases {
		for p, from := range tc.start {
			if got := streams[i].offsets(p); !sameOffsets(got, span(from, 15)) {
				t.Errorf("%s: partition %d received %v, want %d..14", tc.name, p, got, from)
			}
		}
		if len(streams[i].errs) > 0 || streams[i].end != nil {
			t.Errorf("%s: errors %v, end %v", tc.name, streams[i].errs, streams[i].end)
		}
	}
}

// TestSubscribeRefused: a subscription the node cannot start is answered
// with an ErrorResp naming why, and does not exist.
func TestSubscribeRefused(t *testing.T) {
	k := newKafka(t, 1, "one")
	s := startServer(t, Config{MaxSubscriptions: 2, MaxSubscriptionPartitions: 3}, kafkaRoute("/kafka", k))
	c := dialSubs(t, s, "/kafka")
	refused := func(seq int64, sub *pubsub.CmdKafkaSubscribe, want string) {
		t.Helper()
		resp := c.request(subscribeReq(seq, sub))
		if e := resp.GetErrorResp(); resp.GetSequence() != seq || e.GetMessage() != want {
			t.Fatalf("subscribe %v: %v, want %q", sub, resp, want)
		}
	}
	refused(1, &pubsub.CmdKafkaSubscribe{Topic: "nope"}, "failed to subscribe, topic: nope, err: not found topic")
	refused(2, &pubsub.CmdKafkaSubscribe{Topic: "one", Partitions: []int32{1}}, "failed to subscribe, topic: one, err: not found partition")
	refused(3, &pubsub.CmdKafkaSubscribe{Topic: "one", Partitions: []int32{0, 1, 2, 3}},
		"failed to subscribe, topic: one, err: 4 partitions, more than the limit of 3 partitions per subscription")
	refused(4, &pubsub.CmdKafkaSubscribe{Topic: "one", Group: "g", Partitions: []int32{0}},
		"failed to subscribe, topic: one, err: a group subscription names no partitions: the group assigns them")
	refused(4, &pubsub.CmdKafkaSubscribe{Topic: "one", AutoCommit: true}, "failed to subscribe, topic: one, err: auto_commit needs a group")
	c.subscribe(5, &pubsub.CmdKafkaSubscribe{Topic: "one"})
	refused(5, &pubsub.CmdKafkaSubscribe{Topic: "one"}, "failed to subscribe, topic: one, err: sequence 5 is already in use")
	c.subscribe(6, &pubsub.CmdKafkaSubscribe{Topic: "one"})
	refused(7, &pubsub.CmdKafkaSubscribe{Topic: "one"}, "failed to subscribe, topic: one, err: the limit of 2 subscriptions per connection is reached")
	// Unsubscribing makes room; the sequence is free again.
	if e := c.request(unsubscribeReq(8, 5)).GetKafkaSubscriptionEndResp(); e == nil || e.GetReason() != endUnsubscribed {
		t.Fatalf("unsubscribe: %v", e)
	}
	c.subscribe(5, &pubsub.CmdKafkaSubscribe{Topic: "one"})
	if e := c.request(unsubscribeReq(9, 42)).GetErrorResp(); !strings.Contains(e.GetMessage(), "no such subscription") {
		t.Fatalf("unsubscribe of nothing: %v", e)
	}
}

// subscribers counts the subscription events of a server.
type subRecorder struct {
	*recorder
	mu                   sync.Mutex
	subs, lagging, tails int
	reads                [NumTailReads]int
	pushes, pushedMsgs   int
}

func newSubRecorder() *subRecorder { return &subRecorder{recorder: newRecorder()} }

func (r *subRecorder) Subscriptions(d int) { r.mu.Lock(); r.subs += d; r.mu.Unlock() }
func (r *subRecorder) Lagging(d int)       { r.mu.Lock(); r.lagging += d; r.mu.Unlock() }
func (r *subRecorder) Tails(d int)         { r.mu.Lock(); r.tails += d; r.mu.Unlock() }
func (r *subRecorder) TailRead(k TailReadKind) {
	r.mu.Lock()
	r.reads[k]++
	r.mu.Unlock()
}
func (r *subRecorder) Pushed(_ string, _, msgs int) {
	r.mu.Lock()
	r.pushes++
	r.pushedMsgs += msgs
	r.mu.Unlock()
}

func (r *subRecorder) get(f func(*subRecorder) int) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return f(r)
}

// TestSubscribeFollowsTopic: a subscription to every partition picks up a
// partition added while it runs, from its beginning; deleting the topic
// ends it with KafkaSubscriptionEndResp.
func TestSubscribeFollowsTopic(t *testing.T) { kafkatest.Each(t, testSubscribeFollowsTopic) }

func testSubscribeFollowsTopic(t *testing.T, k *kafkatest.Kafka) {
	topic := k.Topic(t, "follow", 1)
	rec := newSubRecorder()
	s := startServer(t, Config{SubscriptionRefresh: 100 * time.Millisecond, Observer: rec}, kafkaRoute("/kafka", k))
	c := dialSubs(t, s, "/kafka")
	st := c.subscribe(1, &pubsub.CmdKafkaSubscribe{Topic: topic})
	adm := k.Admin(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := adm.CreatePartitions(ctx, 2, topic); err != nil {
		t.Fatalf("create partitions: %v", err)
	}
	k.WaitLeaders(t, topic, 3)
	produceTo(t, k, topic, 2, 0, 3)
	produceTo(t, k, topic, 0, 0, 2)
	c.pump("the new partition's messages", func() bool { return st.next[2] >= 3 && st.next[0] >= 2 })
	if got := st.offsets(2); !sameOffsets(got, span(0, 3)) {
		t.Fatalf("new partition 2: %v", got)
	}
	if rec.get(func(r *subRecorder) int { return r.tails }) != 3 || rec.get(func(r *subRecorder) int { return r.subs }) != 1 {
		t.Fatalf("tails %d, subscriptions %d: want 3 and 1", rec.tails, rec.subs)
	}
	if _, err := adm.DeleteTopics(ctx, topic); err != nil {
		t.Fatalf("delete topic: %v", err)
	}
	c.pump("the end after the topic's deletion", func() bool { return st.end != nil })
	if st.end.GetReason() != pubsub.ReasonNotFoundTopic || st.end.GetCode() != 3 {
		t.Fatalf("end: %v", st.end)
	}
	waitFor(t, "the tails closed", func() bool {
		return rec.get(func(r *subRecorder) int { return r.tails }) == 0 && rec.get(func(r *subRecorder) int { return r.subs }) == 0
	})
}

// TestSubscribeOrder: 100,000 messages on each of 4 partitions, produced
// in batches while subscribed, arrive in order without gaps or repeats.
func TestSubscribeOrder(t *testing.T) {
	const parts, n, batch = 4, 100_000, 2_000
	k := kafkatest.Fake(t, 1, kfake.SeedTopics(parts, "order"))
	s := startServer(t, Config{}, kafkaRoute("/kafka", k))
	c := dialSubs(t, s, "/kafka")
	st := c.subscribe(1, &pubsub.CmdKafkaSubscribe{Topic: "order"})
	st.records = false
	cl := k.Client(t, kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.MaxBufferedRecords(parts*batch+1))
	errs := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		for i := 0; i < n; i += batch {
			recs := make([]*kgo.Record, 0, parts*batch)
			for p := range int32(parts) {
				for j := range batch {
					recs = append(recs, &kgo.Record{Topic: "order", Partition: p, Value: strconv.AppendInt(nil, int64(i+j), 10)})
				}
			}
			if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
				errs <- err
				return
			}
		}
		errs <- nil
	}()
	c.pump("400,000 messages", func() bool { return st.reached(all(parts, n)) })
	if err := <-errs; err != nil {
		t.Fatal(err)
	}
	for p := range int32(parts) {
		msgs := st.msgs[p]
		if len(msgs) != n {
			t.Fatalf("partition %d: %d messages, want %d", p, len(msgs), n)
		}
		for i, m := range msgs {
			if m.GetOffset() != int64(i) || string(m.GetValue()) != strconv.Itoa(i) {
				t.Fatalf("partition %d message %d: offset %d value %q", p, i, m.GetOffset(), m.GetValue())
			}
		}
	}
	t.Logf("%d pushes for %d messages", st.pushes, parts*n)
}

// TestSubscribeFanOut: 1,000 subscribers of one partition each receive
// every message, while the brokers see the fetches of one tail: their
// count does not grow with the subscribers.
func TestSubscribeFanOut(t *testing.T) {
	const subs, conns, msgs = 1000, 100, 200
	var fetches atomic.Int64
	k := kafkatest.Fake(t, 1, kfake.SeedTopics(1, "fan"))
	k.Fake.ControlKey(int16(kmsg.Fetch), func(kmsg.Request) (kmsg.Response, error, bool) {
		k.Fake.KeepControl()
		fetches.Add(1)
		return nil, nil, false
	})
	rec := newSubRecorder()
	s := startServer(t, Config{Observer: rec, MaxSubscriptions: subs / conns}, kafkaRoute("/kafka", k))
	cs := make([]*subConn, conns)
	var streams []*stream
	for i := range cs {
		cs[i] = dialSubs(t, s, "/kafka")
		for j := range subs / conns {
			st := cs[i].subscribe(int64(j+1), &pubsub.CmdKafkaSubscribe{Topic: "fan"})
			streams = append(streams, st)
		}
	}
	before := fetches.Load()
	for i := 0; i < msgs; i += 10 {
		produceTo(t, k, "fan", 0, i, 10)
	}
	var wg sync.WaitGroup
	for _, c := range cs {
		wg.Go(func() {
			c.pump("every message", func() bool {
				for _, st := range c.streams {
					if st.next[0] < msgs {
						return false
					}
				}
				return true
			})
		})
	}
	wg.Wait()
	for _, st := range streams {
		if got := st.offsets(0); !sameOffsets(got, span(0, msgs)) {
			t.Fatalf("subscription %d received %d messages: %v", st.seq, len(got), got)
		}
	}
	during := fetches.Load() - before
	if during >= subs/2 {
		t.Fatalf("%d broker fetches while %d messages went to %d subscribers: the tail is not shared", during, msgs, subs)
	}
	if n := rec.get(func(r *subRecorder) int { return r.tails }); n != 1 {
		t.Fatalf("%d tails, want 1", n)
	}
	t.Logf("%d broker fetches for %d messages to %d subscribers", during, msgs, subs)
}

// TestSubscribeStalled: a subscriber that stops reading is paused once
// its connection holds more than MaxOutbound, the 50 others of its
// partition receive everything meanwhile, and once it reads again it
// goes on from its own offset: nothing lost, nothing repeated.
func TestSubscribeStalled(t *testing.T) {
	// 6 MiB: more than the stalled client's socket (see dialStalled) and
	// the server's (up to 4 MiB) hold.
	const others, n, size = 50, 3000, 2 << 10
	k := kafkatest.Fake(t, 1, kfake.SeedTopics(1, "stall"))
	rec := newSubRecorder()
	// SlowTimeout: the stalled client is not closed while the others read.
	s := startServer(t, Config{Observer: rec, MaxOutbound: 256 << 10, SlowTimeout: 5 * time.Minute}, kafkaRoute("/kafka", k))
	stalled := dialStalled(t, s, "/kafka")
	slow := stalled.subscribe(1, &pubsub.CmdKafkaSubscribe{Topic: "stall"})
	slow.records = false
	cs := make([]*subConn, others)
	for i := range cs {
		cs[i] = dialSubs(t, s, "/kafka")
		cs[i].subscribe(1, &pubsub.CmdKafkaSubscribe{Topic: "stall"}).records = false
	}
	for i := 0; i < n; i += 500 {
		recs := make([]*kgo.Record, 500)
		for j := range recs {
			recs[j] = &kgo.Record{Topic: "stall", Value: append(strconv.AppendInt(nil, int64(i+j), 10), make([]byte, size)...)}
		}
		k.Produce(t, nil, recs...)
	}
	var wg sync.WaitGroup
	for _, c := range cs {
		wg.Go(func() { c.pump("every message", func() bool { return c.streams[1].next[0] >= n }) })
	}
	wg.Wait()
	if rec.count(func(r *recorder) int { return r.pressure[BackpressurePushPaused] }) == 0 {
		t.Fatal("the stalled subscriber was never paused")
	}
	if rec.get(func(r *subRecorder) int { return r.lagging }) < 1 {
		t.Fatalf("no lagging subscriber while one does not read (%d pauses)", rec.count(func(r *recorder) int { return r.pressure[BackpressurePushPaused] }))
	}
	stalled.pump("the stalled subscriber's messages", func() bool { return slow.next[0] >= n })
	for _, st := range append([]*stream{slow}, streamsOf(cs)...) {
		if got := st.offsets(0); !sameOffsets(got, span(0, n)) {
			t.Fatalf("a subscriber received %d messages, want 0..%d", len(got), n-1)
		}
	}
	waitFor(t, "no subscriber lagging", func() bool { return rec.get(func(r *subRecorder) int { return r.lagging }) == 0 })
}

// dialStalled opens a subscription connection to uri with a small socket
// receive buffer (128 KiB: one much smaller than two loopback segments of
// 64 KiB stalls TCP itself), so that a client that stops reading makes
// the server hold its pushes soon.
func dialStalled(t *testing.T, s *Server, uri string) *subConn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	small, err := wsclient.Dial(ctx, "ws://"+s.Addr()+uri, wsclient.Options{WrapConn: func(c net.Conn) net.Conn {
		_ = c.(*net.TCPConn).SetReadBuffer(128 << 10)
		return c
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { small.Close() })
	return &subConn{wsClient: &wsClient{t: t, Conn: small}, streams: map[int64]*stream{}}
}

func streamsOf(cs []*subConn) []*stream {
	var out []*stream
	for _, c := range cs {
		for _, st := range c.streams {
			out = append(out, st)
		}
	}
	return out
}

// TestUnsubscribe: nothing of a subscription follows the answer to its
// CmdKafkaUnsubscribe, while another subscription of the connection goes
// on.
func TestUnsubscribe(t *testing.T) {
	k := kafkatest.Fake(t, 1, kfake.SeedTopics(1, "un"))
	s := startServer(t, Config{}, kafkaRoute("/kafka", k))
	c := dialSubs(t, s, "/kafka")
	gone := c.subscribe(1, &pubsub.CmdKafkaSubscribe{Topic: "un"})
	stays := c.subscribe(2, &pubsub.CmdKafkaSubscribe{Topic: "un"})
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() { // a producer that keeps writing while the subscription ends
		defer close(done)
		for i := 0; ; i += 10 {
			select {
			case <-stop:
				return
			default:
			}
			produceTo(t, k, "un", 0, i, 10)
		}
	}()
	c.pump("some pushes", func() bool { return gone.next[0] >= 50 })
	resp := c.request(unsubscribeReq(3, 1))
	if e := resp.GetKafkaSubscriptionEndResp(); e == nil || e.GetReason() != endUnsubscribed {
		t.Fatalf("unsubscribe: %v", resp)
	}
	gone.end = resp.GetKafkaSubscriptionEndResp() // take fails on a message of it after this
	at := stays.next[0]
	c.pump("the other subscription goes on", func() bool { return stays.next[0] >= at+100 })
	close(stop)
	<-done
}

// TestSubscribeFilters: a filter on the key, a key prefix or headers
// keeps only the matching messages; everything else moves next_offset
// only (a push without messages when a batch has none). Headers come only
// when asked.
func TestSubscribeFilters(t *testing.T) { kafkatest.Each(t, testSubscribeFilters) }

func testSubscribeFilters(t *testing.T, k *kafkatest.Kafka) {
	topic := k.Topic(t, "filter", 1)
	s := startServer(t, Config{}, kafkaRoute("/kafka", k))
	c := dialSubs(t, s, "/kafka")
	h := func(k, v string) *pubsub.KafkaHeader { return &pubsub.KafkaHeader{Key: k, Value: []byte(v)} }
	subs := map[string]*pubsub.CmdKafkaSubscribe{
		"key":     {Topic: topic, Filter: &pubsub.KafkaFilter{Key: []byte("user-1")}},
		"prefix":  {Topic: topic, Filter: &pubsub.KafkaFilter{KeyPrefix: []byte("user-")}},
		"headers": {Topic: topic, Headers: true, Filter: &pubsub.KafkaFilter{Headers: []*pubsub.KafkaHeader{h("kind", "alert"), h("zone", "eu")}}},
		"none":    {Topic: topic},
		"all":     {Topic: topic, Headers: true},
	}
	streams := map[string]*stream{}
	seq := int64(0)
	for _, name := range []string{"key", "prefix", "headers", "none", "all"} {
		seq++
		streams[name] = c.subscribe(seq, subs[name])
		streams[name].records = false
	}
	rec := func(key string, hs ...string) *kgo.Record {
		r := &kgo.Record{Topic: topic, Value: []byte("v")}
		if key != "" {
			r.Key = []byte(key)
		}
		for i := 0; i+1 < len(hs); i += 2 {
			r.Headers = append(r.Headers, kgo.RecordHeader{Key: hs[i], Value: []byte(hs[i+1])})
		}
		return r
	}
	k.Produce(t, nil,
		rec("user-1", "kind", "alert", "zone", "eu"),   // 0: key, prefix, headers
		rec("user-2", "kind", "alert"),                 // 1: prefix
		rec("device-1", "zone", "eu", "kind", "alert"), // 2: headers
		rec("", "kind", "info"),                        // 3: none of the filters
		rec("user-1"),                                  // 4: key, prefix
	)
	k.Produce(t, nil, rec("device-2"), rec("device-3")) // 5, 6: no filter: an empty push for the filtered
	want := map[string][]int64{"key": {0, 4}, "prefix": {0, 1, 4}, "headers": {0, 2}, "none": span(0, 7), "all": span(0, 7)}
	c.pump("every subscription at offset 7", func() bool {
		for _, st := range streams {
			if st.next[0] < 7 {
				return false
			}
		}
		return true
	})
	for name, st := range streams {
		if got := st.offsets(0); !sameOffsets(got, want[name]) {
			t.Errorf("%s: offsets %v, want %v", name, got, want[name])
		}
		for _, m := range st.msgs[0] {
			if asked := subs[name].GetHeaders(); asked != (len(m.GetHeaders()) > 0) && m.GetOffset() != 4 && m.GetOffset() < 5 {
				t.Errorf("%s: message %d has headers %v (asked: %v)", name, m.GetOffset(), m.GetHeaders(), asked)
			}
		}
	}
	if hs := streams["all"].msgs[0][0].GetHeaders(); len(hs) != 2 || hs[0].GetKey() != "kind" || string(hs[1].GetValue()) != "eu" {
		t.Errorf("headers of message 0: %v", hs)
	}
}

// TestSubscribeTransactions: the control records of transactions are not
// pushed, and next_offset moves past them, also when a fetch found
// nothing else.
func TestSubscribeTransactions(t *testing.T) { kafkatest.Each(t, testSubscribeTransactions) }

func testSubscribeTransactions(t *testing.T, k *kafkatest.Kafka) {
	topic := k.Topic(t, "txn", 1)
	s := startServer(t, Config{}, kafkaRoute("/kafka", k))
	c := dialSubs(t, s, "/kafka")
	st := c.subscribe(1, &pubsub.CmdKafkaSubscribe{Topic: topic})
	st.records = false // a push may start at a marker's offset: the offsets are checked below
	cl := k.Client(t, kgo.TransactionalID("txn-"+topic), kgo.MetadataMinAge(50*time.Millisecond),
		kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerLinger(0))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for round := range 2 {
		if err := cl.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		for i := range 3 {
			if err := cl.ProduceSync(ctx, testRecord(topic, round*4+i, 0)).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
		if err := cl.EndTransaction(ctx, kgo.TryCommit); err != nil {
			t.Fatal(err)
		}
	}
	// Records 0-2, a commit marker at 3, records 4-6, a marker at 7.
	c.pump("past the second marker", func() bool { return st.next[0] >= 8 })
	if got := st.offsets(0); !sameOffsets(got, []int64{0, 1, 2, 4, 5, 6}) {
		t.Fatalf("offsets %v, want 0-2 and 4-6", got)
	}
}

// TestSubscribeOutOfRange: a start offset out of range goes to the end
// (RESET_LATEST, the default), the beginning (RESET_EARLIEST), or stops
// its partition with OFFSET_OUT_OF_RANGE (RESET_NONE).
func TestSubscribeOutOfRange(t *testing.T) { kafkatest.Each(t, testSubscribeOutOfRange) }

func testSubscribeOutOfRange(t *testing.T, k *kafkatest.Kafka) {
	topic := k.Topic(t, "oor", 2)
	produceTo(t, k, topic, 0, 0, 5)
	produceTo(t, k, topic, 1, 0, 5)
	s := startServer(t, Config{}, kafkaRoute("/kafka", k))
	c := dialSubs(t, s, "/kafka")
	far := &pubsub.CmdKafkaSubscribe_Offset{Offset: 1000}
	latest := c.subscribe(1, &pubsub.CmdKafkaSubscribe{Topic: topic, Start: far})
	earliest := c.subscribe(2, &pubsub.CmdKafkaSubscribe{Topic: topic, Start: far, Reset_: pubsub.Reset_RESET_EARLIEST})
	for _, p := range latest.pos.GetPositions() {
		if p.GetOffset() != 5 {
			t.Fatalf("RESET_LATEST: %v", latest.pos)
		}
	}
	for _, p := range earliest.pos.GetPositions() {
		if p.GetOffset() != 0 {
			t.Fatalf("RESET_EARLIEST: %v", earliest.pos)
		}
	}
	none := c.subscribe(3, &pubsub.CmdKafkaSubscribe{Topic: topic, Start: &pubsub.CmdKafkaSubscribe_Offset{Offset: 2},
		Offsets: map[int32]int64{1: 1000}, Reset_: pubsub.Reset_RESET_NONE})
	if ps := none.pos.GetPositions(); len(ps) != 1 || ps[0].GetPartition() != 0 || ps[0].GetOffset() != 2 {
		t.Fatalf("RESET_NONE: positions %v, want partition 0 only", ps)
	}
	c.pump("partition 1's error", func() bool { return len(none.errs) > 0 })
	if e := none.errs[0]; e.GetCode() != 1 || e.GetMessage() != "failed to fetch message, topic: "+topic+", partition: 1, err: OFFSET_OUT_OF_RANGE" {
		t.Fatalf("RESET_NONE error: %v", e)
	}
	produceTo(t, k, topic, 0, 5, 1)
	c.pump("the next message", func() bool {
		return latest.next[0] >= 6 && earliest.next[0] >= 6 && earliest.next[1] >= 5 && none.next[0] >= 6
	})
	if !sameOffsets(latest.offsets(0), []int64{5}) || !sameOffsets(earliest.offsets(0), span(0, 6)) || !sameOffsets(none.offsets(0), span(2, 6)) {
		t.Fatalf("latest %v, earliest %v, none %v", latest.offsets(0), earliest.offsets(0), none.offsets(0))
	}
}

// TestSubscribeEnds: a route deleted or the node draining ends every
// subscription with KafkaSubscriptionEndResp before the 1001 close.
func TestSubscribeEnds(t *testing.T) {
	k := kafkatest.Fake(t, 1, kfake.SeedTopics(1, "end"))
	s := startServer(t, Config{}, kafkaRoute("/a", k), kafkaRoute("/b", k))
	a, b := dialSubs(t, s, "/a"), dialSubs(t, s, "/b")
	sa := a.subscribe(1, &pubsub.CmdKafkaSubscribe{Topic: "end"})
	sb1 := b.subscribe(1, &pubsub.CmdKafkaSubscribe{Topic: "end"})
	sb2 := b.subscribe(2, &pubsub.CmdKafkaSubscribe{Topic: "end", Start: &pubsub.CmdKafkaSubscribe_Offset{Offset: -2}})
	closedWith := func(c *subConn, reason string) {
		t.Helper()
		for {
			resp, err := c.tryRecv(10 * time.Second)
			if err != nil {
				if !isGoingAwayWith(err, reason) {
					t.Fatalf("close: %v, want 1001 %q", err, reason)
				}
				return
			}
			c.streams[resp.GetSequence()].take(resp)
		}
	}
	if !s.DeleteRoute("/a") {
		t.Fatal("DeleteRoute")
	}
	closedWith(a, "route removed")
	if sa.end.GetReason() != "route removed" {
		t.Fatalf("end on /a: %v", sa.end)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	go func() { _ = s.Shutdown(ctx) }()
	closedWith(b, endDraining)
	if sb1.end.GetReason() != endDraining || sb2.end.GetReason() != endDraining {
		t.Fatalf("ends on /b: %v, %v", sb1.end, sb2.end)
	}
}

// TestSubscribeFromCache: a subscriber starting with last: N, or a little
// behind the end, is served from the tail cache without a Kafka fetch; one
// behind the cache reads on its own, then joins the tail.
func TestSubscribeFromCache(t *testing.T) {
	var fetches atomic.Int64
	k := kafkatest.Fake(t, 1, kfake.SeedTopics(1, "cache"))
	rec := newSubRecorder()
	s := startServer(t, Config{Observer: rec}, kafkaRoute("/kafka", k))
	c := dialSubs(t, s, "/kafka")
	first := c.subscribe(1, &pubsub.CmdKafkaSubscribe{Topic: "cache"})
	produceTo(t, k, "cache", 0, 0, 10)
	c.pump("the first subscriber's messages", func() bool { return first.next[0] >= 10 })
	k.Fake.ControlKey(int16(kmsg.Fetch), func(kmsg.Request) (kmsg.Response, error, bool) {
		k.Fake.KeepControl()
		fetches.Add(1)
		return nil, nil, false
	})
	k.Fake.ControlKey(int16(kmsg.ListOffsets), func(kmsg.Request) (kmsg.Response, error, bool) {
		k.Fake.KeepControl()
		fetches.Add(1000)
		return nil, nil, false
	})
	hits := rec.get(func(r *subRecorder) int { return r.reads[TailCacheHit] })
	last := c.subscribe(2, &pubsub.CmdKafkaSubscribe{Topic: "cache", Start: &pubsub.CmdKafkaSubscribe_Last{Last: 4}})
	behind := c.subscribe(3, &pubsub.CmdKafkaSubscribe{Topic: "cache", Start: &pubsub.CmdKafkaSubscribe_Offset{Offset: 7}})
	c.pump("both from the cache", func() bool { return last.next[0] >= 10 && behind.next[0] >= 10 })
	if !sameOffsets(last.offsets(0), span(6, 10)) || !sameOffsets(behind.offsets(0), span(7, 10)) {
		t.Fatalf("last 4: %v, from 7: %v", last.offsets(0), behind.offsets(0))
	}
	if n := rec.get(func(r *subRecorder) int { return r.reads[TailCacheHit] }) - hits; n < 2 {
		t.Fatalf("%d cache hits, want 2 or more", n)
	}
	if n := rec.get(func(r *subRecorder) int { return r.reads[TailCacheMiss] }); n != 0 {
		t.Fatalf("%d subscriber fetches, want none", n)
	}
	if n := fetches.Load(); n >= 1000 {
		t.Fatalf("a ListOffsets went to Kafka (%d)", n)
	}
}

// TestSubscribeCatchUp: with a tail cache too small to reach back, a
// subscriber far behind reads on its own until it reaches the tail, then
// receives the new messages with the others.
func TestSubscribeCatchUp(t *testing.T) {
	k := kafkatest.Fake(t, 1, kfake.SeedTopics(1, "behind"))
	rec := newSubRecorder()
	s := startServer(t, Config{Observer: rec, TailCache: 1}, kafkaRoute("/kafka", k))
	c := dialSubs(t, s, "/kafka")
	tailer := c.subscribe(1, &pubsub.CmdKafkaSubscribe{Topic: "behind"})
	for i := 0; i < 300; i += 30 {
		produceTo(t, k, "behind", 0, i, 30)
	}
	c.pump("the tail", func() bool { return tailer.next[0] >= 300 })
	old := c.subscribe(2, &pubsub.CmdKafkaSubscribe{Topic: "behind", Start: &pubsub.CmdKafkaSubscribe_Offset{Offset: -2}})
	c.pump("the old messages", func() bool { return old.next[0] >= 300 })
	produceTo(t, k, "behind", 0, 300, 5)
	c.pump("the new ones", func() bool { return old.next[0] >= 305 && tailer.next[0] >= 305 })
	if !sameOffsets(old.offsets(0), span(0, 305)) {
		t.Fatalf("from the beginning: %v", old.offsets(0))
	}
	if n := rec.get(func(r *subRecorder) int { return r.reads[TailCacheMiss] }); n == 0 {
		t.Fatal("no subscriber fetch although the cache holds one batch")
	}
	waitFor(t, "no subscriber lagging", func() bool { return rec.get(func(r *subRecorder) int { return r.lagging }) == 0 })
}

// TestSubscribeHistory: what a subscriber behind the tail cache fetched
// is kept for the subscribers behind it: a second subscriber from the
// beginning is served from memory, without a Kafka fetch of its own.
func TestSubscribeHistory(t *testing.T) {
	k := kafkatest.Fake(t, 1, kfake.SeedTopics(1, "history"))
	for i := 0; i < 300; i += 30 {
		produceTo(t, k, "history", 0, i, 30)
	}
	rec := newSubRecorder()
	s := startServer(t, Config{Observer: rec}, kafkaRoute("/kafka", k))
	c := dialSubs(t, s, "/kafka")
	begin := &pubsub.CmdKafkaSubscribe_Offset{Offset: -2}
	first := c.subscribe(1, &pubsub.CmdKafkaSubscribe{Topic: "history", Start: begin})
	c.pump("the first reader", func() bool { return first.next[0] >= 300 })
	misses := rec.get(func(r *subRecorder) int { return r.reads[TailCacheMiss] })
	if misses == 0 {
		t.Fatal("the first reader made no fetch of its own: the tail opened at the end")
	}
	second := c.subscribe(2, &pubsub.CmdKafkaSubscribe{Topic: "history", Start: begin})
	c.pump("the second reader", func() bool { return second.next[0] >= 300 })
	if !sameOffsets(second.offsets(0), span(0, 300)) {
		t.Fatalf("the second reader: %v", second.offsets(0))
	}
	if n := rec.get(func(r *subRecorder) int { return r.reads[TailCacheMiss] }); n != misses {
		t.Fatalf("the second reader made %d fetches, want none", n-misses)
	}
}

// TestSubscribeNewKind: a subscriber whose kind (headers, a filter) no
// subscriber of the tail had when a batch was encoded reads that batch on
// its own, and gets its messages as it asked for them.
func TestSubscribeNewKind(t *testing.T) {
	k := kafkatest.Fake(t, 1, kfake.SeedTopics(1, "kind"))
	rec := newSubRecorder()
	s := startServer(t, Config{Observer: rec}, kafkaRoute("/kafka", k))
	c := dialSubs(t, s, "/kafka")
	plain := c.subscribe(1, &pubsub.CmdKafkaSubscribe{Topic: "kind"})
	recs := make([]*kgo.Record, 10)
	for i := range recs {
		recs[i] = testRecord("kind", i, 0)
		recs[i].Headers = []kgo.RecordHeader{{Key: "i", Value: []byte(strconv.Itoa(i))}}
	}
	k.Produce(t, nil, recs...)
	c.pump("the plain subscriber", func() bool { return plain.next[0] >= 10 })
	misses := rec.get(func(r *subRecorder) int { return r.reads[TailCacheMiss] })
	withHeaders := c.subscribe(2, &pubsub.CmdKafkaSubscribe{Topic: "kind", Headers: true, Start: &pubsub.CmdKafkaSubscribe_Offset{Offset: 4}})
	c.pump("the subscriber with headers", func() bool { return withHeaders.next[0] >= 10 })
	if !sameOffsets(withHeaders.offsets(0), span(4, 10)) {
		t.Fatalf("with headers: %v", withHeaders.offsets(0))
	}
	for _, m := range withHeaders.msgs[0] {
		if hs := m.GetHeaders(); len(hs) != 1 || string(hs[0].GetValue()) != strconv.FormatInt(m.GetOffset(), 10) {
			t.Fatalf("message %d: headers %v", m.GetOffset(), hs)
		}
	}
	for _, m := range plain.msgs[0] {
		if len(m.GetHeaders()) > 0 {
			t.Fatalf("the plain subscriber got headers: %v", m)
		}
	}
	if n := rec.get(func(r *subRecorder) int { return r.reads[TailCacheMiss] }); n <= misses {
		t.Fatal("the batch encoded before a subscriber of its kind came was not read again")
	}
}
