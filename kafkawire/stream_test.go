package kafkawire

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkaedge/kafkaedge/internal/kafkatest"
	"github.com/kafkaedge/kafkaedge/kafkawire/wire"
)

// sink collects what a Stream delivers: copies of the records by
// partition, and the failures. Unless hold says so, it releases each
// result in the callback, as a fast reader does.
type sink struct {
	mu      sync.Mutex
	values  map[topicPartition][]string // "offset:value"
	errs    map[topicPartition]error
	results int
	held    []*FetchResult
	hold    func(r *FetchResult) bool
	changed chan struct{}
}

func newSink() *sink {
	return &sink{values: map[topicPartition][]string{}, errs: map[topicPartition]error{}, changed: make(chan struct{}, 1)}
}

func (k *sink) deliver(r *FetchResult) {
	k.mu.Lock()
	tp := topicPartition{r.Topic, r.Partition}
	k.results++
	switch {
	case r.Err != nil:
		k.errs[tp] = r.Err
	default:
		for _, rec := range r.Records {
			k.values[tp] = append(k.values[tp], fmt.Sprintf("%d:%s", rec.Offset, rec.Value))
		}
	}
	hold := k.hold != nil && k.hold(r)
	if hold {
		k.held = append(k.held, r)
	}
	k.mu.Unlock()
	if !hold {
		r.Release()
	}
	signal(k.changed)
}

// wait waits until cond, called with the sink locked, holds.
func (k *sink) wait(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(20 * time.Second)
	defer deadline.Stop()
	for {
		k.mu.Lock()
		ok := cond()
		k.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-k.changed:
		case <-deadline.C:
			k.mu.Lock()
			defer k.mu.Unlock()
			t.Fatalf("waiting for %s: values %v, errors %v", what, k.values, k.errs)
		}
	}
}

// produced returns the "offset:value" of recs produced from offset first.
func produced(recs []*kgo.Record, first int64) []string {
	out := make([]string, len(recs))
	for i, r := range recs {
		out[i] = fmt.Sprintf("%d:%s", first+int64(i), r.Value)
	}
	return out
}

// round is one answered Fetch request of a fetch session, as the broker
// at addr saw it.
type round struct {
	addr         string
	id, epoch    int32
	sent         map[topicPartition]int64
	forgot       []topicPartition
	code         int16 // top-level error of the answer
	answerID     int32
	answered     []topicPartition
	minBytes     int32
	maxWaitMilli int32
}

// rounds records the Fetch rounds of a Client (its roundHook).
type rounds struct {
	mu      sync.Mutex
	list    []round
	changed chan struct{}
}

func recordRounds(c *Client) *rounds {
	rs := &rounds{changed: make(chan struct{}, 1)}
	c.roundHook = func(addr string, req *wire.FetchRequest, resp *wire.FetchResponse) {
		r := round{addr: addr, id: req.SessionID, epoch: req.SessionEpoch, sent: map[topicPartition]int64{},
			code: resp.ErrorCode, answerID: resp.SessionID, minBytes: req.MinBytes, maxWaitMilli: req.MaxWaitMillis}
		for _, t := range req.Topics {
			for _, p := range t.Partitions {
				r.sent[topicPartition{t.Name, p.Partition}] = p.FetchOffset
			}
		}
		names := map[[16]byte]string{}
		for _, t := range req.Topics {
			names[t.TopicID] = t.Name
		}
		for _, f := range req.ForgottenTopics {
			for _, p := range f.Partitions {
				r.forgot = append(r.forgot, topicPartition{f.Name, p})
			}
		}
		for _, t := range resp.Topics {
			for _, p := range t.Partitions {
				r.answered = append(r.answered, topicPartition{t.Name + names[t.TopicID], p.Partition})
			}
		}
		rs.mu.Lock()
		rs.list = append(rs.list, r)
		rs.mu.Unlock()
		signal(rs.changed)
	}
	return rs
}

// of returns the rounds so far with the broker at addr ("": all).
func (rs *rounds) of(addr string) []round {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	var out []round
	for _, r := range rs.list {
		if addr == "" || r.addr == addr {
			out = append(out, r)
		}
	}
	return out
}

// waitFor waits until the rounds with addr are more than n.
func (rs *rounds) waitFor(t *testing.T, addr string, n int) []round {
	t.Helper()
	deadline := time.NewTimer(20 * time.Second)
	defer deadline.Stop()
	for {
		if got := rs.of(addr); len(got) > n {
			return got
		}
		select {
		case <-rs.changed:
		case <-deadline.C:
			t.Fatalf("waiting for more than %d fetch rounds with %s", n, addr)
		}
	}
}

// checkSessions checks the fetch sessions of the rounds with each broker
// against KIP-227: the first request is full and opens a session, every
// later request names that session and the next epoch, the broker accepts
// each (no top-level error, same session id), and an incremental request
// sends only the partitions new to the session or whose offset moved.
func checkSessions(t *testing.T, all []round) {
	t.Helper()
	byAddr := map[string][]round{}
	for _, r := range all {
		byAddr[r.addr] = append(byAddr[r.addr], r)
	}
	for addr, rs := range byAddr {
		parts := map[topicPartition]int64{}
		var id, epoch int32
		for i, r := range rs {
			if r.epoch == -1 && len(r.sent) == 0 {
				if r.id != id || i != len(rs)-1 {
					t.Fatalf("%s round %d: closes session %d, the session is %d", addr, i, r.id, id)
				}
				continue // the Stream closes the session
			}
			if r.code != 0 {
				t.Fatalf("%s round %d: top-level %s", addr, i, wire.ErrorName(r.code))
			}
			if i == 0 && (r.id != 0 || r.epoch != 0) || i > 0 && (r.id != id || r.epoch != epoch) {
				t.Fatalf("%s round %d: session %d epoch %d, want %d and %d", addr, i, r.id, r.epoch, id, epoch)
			}
			if r.answerID == 0 || i > 0 && r.answerID != id {
				t.Fatalf("%s round %d: answered as session %d (session %d)", addr, i, r.answerID, id)
			}
			if r.minBytes < 1 || r.maxWaitMilli < 1 {
				t.Fatalf("%s round %d: min bytes %d, max wait %d ms: not a long poll", addr, i, r.minBytes, r.maxWaitMilli)
			}
			for tp, off := range r.sent {
				if old, ok := parts[tp]; i > 0 && ok && old == off {
					t.Fatalf("%s round %d: %v@%d sent again unchanged", addr, i, tp, off)
				}
				parts[tp] = off
			}
			for _, tp := range r.forgot {
				delete(parts, tp)
			}
			id, epoch = r.answerID, epoch+1
		}
	}
}

// TestStream tails partitions led by every broker of the cluster: the
// records come partition by partition, each broker serves its partitions
// in one fetch session whose incremental requests the broker accepts, and
// once the records are read, a request names only the partition that
// moved.
func TestStream(t *testing.T) {
	kafkatest.Each(t, func(t *testing.T, k *kafkatest.Kafka) {
		const n = 6
		tp := k.Topic(t, "stream", n)
		base := time.UnixMilli(1_700_000_000_000)
		recs := map[int32][]*kgo.Record{}
		var all []*kgo.Record
		for p := range int32(n) {
			recs[p] = makeRecords(tp, p, 5+int(p), base, fmt.Sprint("s", p))
			all = append(all, recs[p]...)
		}
		k.Produce(t, nil, all...)
		leaders, addrs := topicLeaders(t, k, tp)

		c := newClient(t, Config{Brokers: k.Brokers, FetchMaxWait: 50 * time.Millisecond})
		rs := recordRounds(c)
		sk := newSink()
		s := c.NewStream(sk.deliver)
		defer s.Close()
		for p := range int32(n) {
			s.Add(tp, p, 0)
		}
		sk.wait(t, "every record", func() bool {
			for p := range int32(n) {
				if len(sk.values[topicPartition{tp, p}]) < len(recs[p]) {
					return false
				}
			}
			return true
		})
		for p := range int32(n) {
			if got, want := sk.values[topicPartition{tp, p}], produced(recs[p], 0); !slices.Equal(got, want) {
				t.Fatalf("partition %d: %v, want %v", p, got, want)
			}
		}

		// New records on partition 1 only: once they are delivered, the
		// next request of its broker's session names partition 1 alone,
		// at the offset after them.
		leader := addrs[leaders[1]]
		more := makeRecords(tp, 1, 3, base, "more")
		k.Produce(t, nil, more...)
		sk.wait(t, "the new records", func() bool { return len(sk.values[topicPartition{tp, 1}]) == len(recs[1])+3 })
		got := sk.values[topicPartition{tp, 1}][len(recs[1]):]
		if want := produced(more, int64(len(recs[1]))); !slices.Equal(got, want) {
			t.Fatalf("new records %v, want %v", got, want)
		}
		// The request that asks partition 1 from after them names it alone.
		next := int64(len(recs[1]) + 3)
		var after *round
		for n := 0; after == nil; {
			got := rs.waitFor(t, leader, n)
			n = len(got)
			for i := range got {
				if got[i].sent[topicPartition{tp, 1}] == next {
					after = &got[i]
				}
			}
		}
		if len(after.sent) != 1 || len(after.forgot) != 0 || after.epoch < 1 {
			t.Fatalf("the request after the new records: epoch %d, sent %v, forgot %v; want only %s/1@%d", after.epoch, after.sent, after.forgot, tp, next)
		}
		s.Close()
		checkSessions(t, rs.of(""))
		brokers, want := map[string]bool{}, map[string]bool{}
		for _, r := range rs.of("") {
			brokers[r.addr] = true
		}
		for _, l := range leaders {
			want[addrs[l]] = true
		}
		if !maps.Equal(brokers, want) {
			t.Errorf("sessions with %v, leaders %v", brokers, want)
		}
	})
}

// TestStreamErrors: a partition that cannot be fetched is delivered once
// with its error and leaves the Stream; the others go on.
func TestStreamErrors(t *testing.T) {
	kafkatest.Each(t, func(t *testing.T, k *kafkatest.Kafka) {
		tp := k.Topic(t, "serr", 1)
		recs := makeRecords(tp, 0, 4, time.Now(), "e")
		k.Produce(t, nil, recs...)
		c := newClient(t, Config{Brokers: k.Brokers, FetchMaxWait: 50 * time.Millisecond})
		sk := newSink()
		s := c.NewStream(sk.deliver)
		defer s.Close()
		s.Add("nope", 0, 0)
		s.Add(tp, 7, 0)
		s.Add(tp, 0, 0)
		sk.wait(t, "the records and two errors", func() bool {
			return len(sk.errs) == 2 && len(sk.values[topicPartition{tp, 0}]) == 4
		})
		for _, tt := range []struct {
			tp      topicPartition
			unknown error
			text    string
		}{
			{topicPartition{"nope", 0}, ErrUnknownTopic, "fetch nope/0@0: unknown topic or partition"},
			{topicPartition{tp, 7}, ErrUnknownPartition, "fetch " + tp + "/7@0: unknown topic or partition"},
		} {
			err := sk.errs[tt.tp]
			var e *Error
			if !errors.As(err, &e) || !errors.Is(err, tt.unknown) || err.Error() != tt.text {
				t.Errorf("%v: %v", tt.tp, err)
			}
		}
		// Past the end: OFFSET_OUT_OF_RANGE, after the partition was moved
		// there while in the Stream.
		s.Add(tp, 0, 99)
		sk.wait(t, "OFFSET_OUT_OF_RANGE", func() bool { return sk.errs[topicPartition{tp, 0}] != nil })
		var e *Error
		if err := sk.errs[topicPartition{tp, 0}]; !errors.As(err, &e) || e.Code != wire.ErrOffsetOutOfRange || err.Error() != "fetch "+tp+"/0@99: OFFSET_OUT_OF_RANGE" {
			t.Errorf("past the end: %v", err)
		}
		// The partition left the Stream; added again, it goes on.
		s.Add(tp, 0, 2)
		sk.wait(t, "records from 2", func() bool { return len(sk.values[topicPartition{tp, 0}]) == 6 })
		if got := sk.values[topicPartition{tp, 0}][4:]; !slices.Equal(got, produced(recs[2:], 2)) {
			t.Errorf("from 2: %v", got)
		}
	})
}

// TestStreamHeld: a partition whose result is not released is not fetched
// (its broker's session forgets it while the others go on), and is fetched
// again from the next offset once released.
func TestStreamHeld(t *testing.T) {
	tc := newCluster(t, kfake.SeedTopics(2, "h"))
	for p := range int32(2) {
		if err := tc.MoveTopicPartition("h", p, 1); err != nil {
			t.Fatal(err)
		}
	}
	first := makeRecords("h", 0, 3, time.Now(), "first")
	tc.k.Produce(t, nil, first...)
	c := newClient(t, Config{Brokers: tc.addrs, FetchMaxWait: 20 * time.Millisecond})
	rs := recordRounds(c)
	sk := newSink()
	sk.hold = func(r *FetchResult) bool { return r.Partition == 0 && r.Offset == 0 }
	s := c.NewStream(sk.deliver)
	defer s.Close()
	s.Add("h", 0, 0)
	s.Add("h", 1, 0)
	sk.wait(t, "the first records", func() bool { return len(sk.held) == 1 })
	held := len(rs.of(""))

	second := makeRecords("h", 0, 2, time.Now(), "second")
	tc.k.Produce(t, nil, second...)
	// Partition 1 keeps the session going: three more rounds, and not
	// one delivers partition 0 or asks for it.
	later := rs.waitFor(t, "", held+3)[held:]
	forgotten := false
	for _, r := range later {
		if _, ok := r.sent[topicPartition{"h", 0}]; ok {
			t.Fatalf("held partition sent in %+v", r)
		}
		forgotten = forgotten || slices.Contains(r.forgot, topicPartition{"h", 0})
	}
	sk.mu.Lock()
	n := len(sk.values[topicPartition{"h", 0}])
	sk.mu.Unlock()
	if n != 3 {
		t.Fatalf("%d records of the held partition, want the first 3", n)
	}
	if !forgotten {
		t.Errorf("the session did not forget the held partition: %+v", later)
	}

	sk.mu.Lock()
	r := sk.held[0]
	sk.mu.Unlock()
	r.Release()
	sk.wait(t, "the second records", func() bool { return len(sk.values[topicPartition{"h", 0}]) == 5 })
	if got := sk.values[topicPartition{"h", 0}][3:]; !slices.Equal(got, produced(second, 3)) {
		t.Errorf("after the release: %v", got)
	}
	s.Close()
	checkSessions(t, rs.of(""))
}

// TestStreamLeaderMove: a partition whose leader moves goes on from the
// new leader where it was, in a session with that broker.
func TestStreamLeaderMove(t *testing.T) {
	tc := newCluster(t, kfake.SeedTopics(1, "mv"))
	if err := tc.MoveTopicPartition("mv", 0, 1); err != nil {
		t.Fatal(err)
	}
	first := makeRecords("mv", 0, 4, time.Now(), "a")
	tc.k.Produce(t, nil, first...)
	c := newClient(t, Config{Brokers: tc.addrs[:1], FetchMaxWait: 20 * time.Millisecond})
	rs := recordRounds(c)
	sk := newSink()
	s := c.NewStream(sk.deliver)
	defer s.Close()
	s.Add("mv", 0, 0)
	sk.wait(t, "the first records", func() bool { return len(sk.values[topicPartition{"mv", 0}]) == 4 })

	if err := tc.MoveTopicPartition("mv", 0, 2); err != nil {
		t.Fatal(err)
	}
	second := makeRecords("mv", 0, 3, time.Now(), "b")
	tc.k.Produce(t, nil, second...)
	sk.wait(t, "the records from the new leader", func() bool { return len(sk.values[topicPartition{"mv", 0}]) == 7 })
	if got := sk.values[topicPartition{"mv", 0}]; !slices.Equal(got, append(produced(first, 0), produced(second, 4)...)) {
		t.Fatalf("records %v", got)
	}
	if len(sk.errs) != 0 {
		t.Fatalf("errors %v", sk.errs)
	}
	newLeader := tc.addrs[2]
	if r := rs.of(newLeader); len(r) == 0 || r[0].epoch != 0 || r[0].sent[topicPartition{"mv", 0}] != 4 {
		t.Fatalf("rounds with the new leader: %+v", r)
	}
}

// TestStreamSessionErrors: a broker that lost the session or saw another
// epoch, or a connection broken under a round, makes the session start
// over with a full request (naming the old session when it may live on,
// so that the broker closes it), and the Stream goes on.
func TestStreamSessionErrors(t *testing.T) {
	for _, tt := range []struct {
		name string
		code int16 // 0: close the connection
		// The full request that starts over names the old session (the
		// broker may still have it), or the Stream closes it first and
		// starts a new one.
		sameID, closed bool
	}{
		{"FETCH_SESSION_ID_NOT_FOUND", wire.ErrFetchSessionIDNotFound, false, false},
		{"INVALID_FETCH_SESSION_EPOCH", wire.ErrInvalidFetchSessionEpoch, true, false},
		{"connection closed", 0, false, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tc := newCluster(t, kfake.SeedTopics(1, "se"))
			c := newClient(t, Config{Brokers: tc.addrs, FetchMaxWait: 20 * time.Millisecond})
			rs := recordRounds(c)
			sk := newSink()
			s := c.NewStream(sk.deliver)
			defer s.Close()
			first := makeRecords("se", 0, 2, time.Now(), "a")
			tc.k.Produce(t, nil, first...)
			s.Add("se", 0, 0)
			sk.wait(t, "the first records", func() bool { return len(sk.values[topicPartition{"se", 0}]) == 2 })
			var id atomic.Int32
			var fired atomic.Bool
			tc.ControlKey(int16(wire.KeyFetch), func(req kmsg.Request) (kmsg.Response, error, bool) {
				fr := req.(*kmsg.FetchRequest)
				if fr.SessionEpoch < 1 || !fired.CompareAndSwap(false, true) {
					tc.KeepControl()
					return nil, nil, false
				}
				id.Store(fr.SessionID)
				if tt.code == 0 {
					return nil, errors.New("close the connection"), true
				}
				resp := fr.ResponseKind().(*kmsg.FetchResponse)
				resp.ErrorCode = tt.code
				return resp, nil, true
			})
			seen := len(rs.of(""))
			second := makeRecords("se", 0, 3, time.Now(), "b")
			tc.k.Produce(t, nil, second...)
			sk.wait(t, "the records after the error", func() bool { return len(sk.values[topicPartition{"se", 0}]) == 5 })
			if got := sk.values[topicPartition{"se", 0}]; !slices.Equal(got, append(produced(first, 0), produced(second, 2)...)) {
				t.Fatalf("records %v", got)
			}
			// The first full request after the error.
			var restart *round
			for _, r := range rs.of("")[seen:] {
				if r.epoch == 0 {
					restart = &r
					break
				}
			}
			want := int32(0)
			if tt.sameID {
				want = id.Load()
			}
			if !fired.Load() || restart == nil || restart.id != want || restart.sent[topicPartition{"se", 0}] == 0 {
				t.Fatalf("restart after %s: %+v; want a full request naming session %d", tt.name, restart, want)
			}
			// A source that lost its connection hands its partitions back
			// and closes its session; the others keep theirs.
			closes := func() (n int) {
				for _, r := range rs.of("") {
					if r.epoch == -1 && r.id == id.Load() {
						n++
					}
				}
				return n
			}
			for tt.closed && closes() == 0 {
				rs.waitFor(t, "", len(rs.of("")))
			}
			s.Close()
			if got := closes(); got != 1 && tt.closed || got != 0 && !tt.closed {
				t.Fatalf("old session %d closed %d times", id.Load(), got)
			}
		})
	}
}

// TestStreamClose: Close closes the sessions (a sessionless request that
// names the session), delivers nothing after it returns, and a Stream of a
// closed Client stops.
func TestStreamClose(t *testing.T) {
	tc := newCluster(t, kfake.SeedTopics(1, "cl"))
	tc.k.Produce(t, nil, makeRecords("cl", 0, 2, time.Now(), "c")...)
	var closes atomic.Int32
	tc.ControlKey(int16(wire.KeyFetch), func(req kmsg.Request) (kmsg.Response, error, bool) {
		tc.KeepControl()
		if fr := req.(*kmsg.FetchRequest); fr.SessionEpoch == -1 && fr.SessionID != 0 && len(fr.Topics) == 0 {
			closes.Add(1)
		}
		return nil, nil, false
	})
	c := newClient(t, Config{Brokers: tc.addrs, FetchMaxWait: 20 * time.Millisecond})
	sk := newSink()
	s := c.NewStream(sk.deliver)
	s.Add("cl", 0, 0)
	sk.wait(t, "the records", func() bool { return len(sk.values[topicPartition{"cl", 0}]) == 2 })
	s.Close()
	if n := closes.Load(); n != 1 {
		t.Errorf("%d session closes, want 1", n)
	}
	sk.mu.Lock()
	n := sk.results
	sk.mu.Unlock()
	s.Add("cl", 0, 0) // a no-op after Close
	tc.k.Produce(t, nil, makeRecords("cl", 0, 1, time.Now(), "late")...)
	s.Close()
	sk.mu.Lock()
	if sk.results != n {
		t.Errorf("%d results after Close", sk.results-n)
	}
	sk.mu.Unlock()

	s2 := c.NewStream(sk.deliver)
	s2.Add("cl", 0, 0)
	c.Close()
	s2.Close() // returns: the Client's Close stopped it
}

// TestLongPollLane: a fetch the broker holds for data (a long poll, from
// Fetch with FetchMinBytes > 0 or from a Stream) goes on its own
// connection, so a ListOffsets to the same broker is answered while the
// broker holds it. The fake broker serves each connection in order, as
// Kafka does, and holds every long poll until the test ends: a ListOffsets
// behind one would never be answered.
func TestLongPollLane(t *testing.T) {
	for _, tt := range []struct {
		name  string
		start func(c *Client, done chan<- struct{})
	}{
		{"Fetch", func(c *Client, done chan<- struct{}) {
			go func() {
				defer close(done)
				if res, err := c.Fetch(testCtx(t), oneTopic, 0, 3); err == nil {
					res.Release()
				}
			}()
		}},
		{"Stream", func(c *Client, done chan<- struct{}) {
			s := c.NewStream(func(r *FetchResult) { r.Release() })
			s.Add(oneTopic, 0, 3)
			t.Cleanup(func() { s.Close(); close(done) })
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			held := make(chan struct{}, 16)
			release := make(chan struct{})
			var ob *oneBroker
			ob = newOneBroker(t, 1, values(3, 10), func(corr int32, req *kmsg.FetchRequest) []byte {
				if req.MinBytes > 0 && req.MaxWaitMillis > 0 {
					held <- struct{}{}
					<-release
				}
				return respFrame(corr, ob.fetchResponse(req))
			})
			t.Cleanup(func() { close(release) }) // before the broker's cleanup
			c := newClient(t, Config{Brokers: []string{ob.addr()}, ConnsPerBroker: 1, FetchMinBytes: 1, FetchMaxWait: 10 * time.Second})
			if off, err := c.ListOffset(testCtx(t), oneTopic, 0, -1); err != nil || off != 3 {
				t.Fatalf("ListOffset before: %d, %v", off, err)
			}
			done := make(chan struct{})
			tt.start(c, done)
			select {
			case <-held: // the broker holds the long poll
			case <-testCtx(t).Done():
				t.Fatal("no long poll reached the broker")
			}
			if off, err := c.ListOffset(testCtx(t), oneTopic, 0, -2); err != nil || off != 0 {
				t.Fatalf("ListOffset during the long poll: %d, %v", off, err)
			}
			if err := c.Ready(testCtx(t)); err != nil {
				t.Fatalf("Metadata during the long poll: %v", err)
			}
			select {
			case <-done:
				t.Fatal("the long poll ended before the broker answered it")
			default:
			}
			if n := ob.accepts.Load(); n != 2 {
				t.Errorf("%d connections, want one for the long poll and one for the rest", n)
			}
		})
	}
}

// TestStreamLongPoll: on a real broker, which answers the requests of one
// connection in order, ListOffsets calls are answered while a Stream's
// long poll waits at the broker for data that does not come (20 s, longer
// than each ListOffsets may take).
func TestStreamLongPoll(t *testing.T) {
	kafkatest.Each(t, func(t *testing.T, k *kafkatest.Kafka) {
		tp := k.Topic(t, "lp", 1)
		c := newClient(t, Config{Brokers: k.Brokers, ConnsPerBroker: 1, FetchMaxWait: 20 * time.Second})
		rs := recordRounds(c)
		if _, err := c.ListOffset(testCtx(t), tp, 0, -1); err != nil {
			t.Fatal(err)
		}
		var delivered atomic.Int32
		s := c.NewStream(func(r *FetchResult) { delivered.Add(1); r.Release() })
		defer s.Close()
		s.Add(tp, 0, 0)
		waitCursor(t, s, topicPartition{tp, 0}, "the first request", func(cur *cursor) bool { return cur.src != nil && cur.asked == 0 })
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		for i := range 20 {
			if off, err := c.ListOffset(ctx, tp, 0, -1); err != nil || off != 0 {
				t.Fatalf("ListOffset %d during the long poll: %d, %v", i, off, err)
			}
		}
		if got := rs.of(""); len(got) != 0 || delivered.Load() != 0 {
			t.Fatalf("%d rounds and %d results during the ListOffsets: the long poll did not wait", len(got), delivered.Load())
		}
	})
}

// TestStreamRecordsAlias: results of one round share the response buffer
// and keep their records intact until released.
func TestStreamRecordsAlias(t *testing.T) {
	tc := newCluster(t, kfake.SeedTopics(2, "al"))
	for p := range int32(2) {
		if err := tc.MoveTopicPartition("al", p, 1); err != nil {
			t.Fatal(err)
		}
	}
	var recs []*kgo.Record
	for p := range int32(2) {
		recs = append(recs, makeRecords("al", p, 5, time.Now(), strings.Repeat("v", 50))...)
	}
	tc.k.Produce(t, []kgo.Opt{kgo.ProducerBatchCompression(kgo.NoCompression())}, recs...)
	c := newClient(t, Config{Brokers: tc.addrs, FetchMaxWait: 20 * time.Millisecond})
	sk := newSink()
	sk.hold = func(*FetchResult) bool { return true }
	s := c.NewStream(sk.deliver)
	defer s.Close()
	s.Add("al", 0, 0)
	s.Add("al", 1, 0)
	sk.wait(t, "both partitions", func() bool { return len(sk.held) == 2 })
	for range 20 { // recycle response buffers
		r, err := c.Fetch(testCtx(t), "al", 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		r.Release()
	}
	for _, r := range sk.held {
		if len(r.Records) != 5 || !bytes.HasPrefix(r.Records[4].Value, []byte(strings.Repeat("v", 50))) {
			t.Fatalf("held records of %d changed: %q", r.Partition, r.Records[4].Value)
		}
		r.Release()
	}
}

// waitCursor waits until cond holds for the cursor of tp in s (nil when
// the partition is not in s), called with s locked.
func waitCursor(t *testing.T, s *Stream, tp topicPartition, what string, cond func(cur *cursor) bool) {
	t.Helper()
	ctx := testCtx(t)
	for {
		s.mu.Lock()
		ok := cond(s.cursors[tp])
		s.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("waiting for %s", what)
		case <-time.After(time.Millisecond):
		}
	}
}

// TestStreamPacing: a partition whose leader keeps failing is asked again
// at once after the first failure, then after pauses that grow, each
// after a fresh metadata refresh: a few requests, not a loop.
func TestStreamPacing(t *testing.T) {
	tc := newCluster(t, kfake.SeedTopics(1, "pc"))
	c := newClient(t, Config{Brokers: tc.addrs, FetchMaxWait: 20 * time.Millisecond})
	var fetches atomic.Int32
	tc.ControlKey(int16(wire.KeyFetch), func(req kmsg.Request) (kmsg.Response, error, bool) {
		tc.KeepControl()
		fetches.Add(1)
		return fetchErrorResponse(req, wire.ErrNotLeaderOrFollower), nil, true
	})
	metadata := tc.countKey(int16(wire.KeyMetadata))
	s := c.NewStream(func(r *FetchResult) { t.Errorf("delivered %+v", r); r.Release() })
	defer s.Close()
	tp := topicPartition{"pc", 0}
	s.Add(tp.topic, tp.partition, 0)
	waitCursor(t, s, tp, "four failures", func(cur *cursor) bool { return cur.failures >= 4 })
	s.Close()
	// Failures 1 to 4 waited 0, 100, 200 and 400 ms (less jitter).
	if n := fetches.Load(); n < 4 || n > 6 {
		t.Errorf("%d fetches for 4 failures", n)
	}
	if n := metadata.Load(); n < 4 || n > 7 {
		t.Errorf("%d metadata requests for 4 failures", n)
	}
}

// TestStreamMarkers: batches with nothing to return (a commit marker,
// aborted records under read_committed) are delivered as results without
// records whose NextOffset moves past them, so that a reader learns how
// far the partition has been read.
func TestStreamMarkers(t *testing.T) {
	kafkatest.Each(t, func(t *testing.T, k *kafkatest.Kafka) {
		tp := k.Topic(t, "markers", 1)
		cl := k.Client(t, kgo.TransactionalID("stream-"+tp), kgo.MetadataMinAge(50*time.Millisecond),
			kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerLinger(0))
		ctx := testCtx(t)
		base := time.UnixMilli(1_700_000_000_000)
		for _, end := range []kgo.TransactionEndTry{kgo.TryCommit, kgo.TryAbort} { // 0-1, marker 2; 3-4 aborted, marker 5
			if err := cl.BeginTransaction(); err != nil {
				t.Fatal(err)
			}
			if err := cl.ProduceSync(ctx, makeRecords(tp, 0, 2, base, "m")...).FirstErr(); err != nil {
				t.Fatal(err)
			}
			if err := cl.EndTransaction(ctx, end); err != nil {
				t.Fatal(err)
			}
		}
		c := newClient(t, Config{Brokers: k.Brokers, IsolationLevel: 1, FetchMaxWait: 50 * time.Millisecond})
		waitOffset(t, c, tp, 0, 6)
		var mu sync.Mutex
		var nexts []int64
		var offsets []int64
		done := make(chan struct{})
		s := c.NewStream(func(r *FetchResult) {
			mu.Lock()
			defer mu.Unlock()
			if r.Err != nil {
				t.Errorf("stream: %v", r.Err)
			}
			for _, rec := range r.Records {
				offsets = append(offsets, rec.Offset)
			}
			if len(nexts) > 0 && r.NextOffset <= nexts[len(nexts)-1] || r.NextOffset <= r.Offset {
				t.Errorf("result at %d: NextOffset %d after %v", r.Offset, r.NextOffset, nexts)
			}
			nexts = append(nexts, r.NextOffset)
			if r.NextOffset == 6 {
				close(done)
			}
			r.Release()
		})
		defer s.Close()
		s.Add(tp, 0, 0)
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			t.Fatalf("NextOffset never reached 6: %v", nexts)
		}
		mu.Lock()
		defer mu.Unlock()
		if !slices.Equal(offsets, []int64{0, 1}) {
			t.Fatalf("records %v, want 0 and 1 (3 and 4 were aborted)", offsets)
		}
	})
}
