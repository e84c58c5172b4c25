package reactor

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kafkaedge/kafkaedge/kafkawire"
	"github.com/kafkaedge/kafkaedge/kafkawire/record"
	"github.com/kafkaedge/kafkaedge/proto/pubsub"
)

// fakeKafka is a kafkaClient that answers from memory: the substitute the
// reactor's Kafka seam allows, for the failures a broker cannot easily be
// made to produce.
type fakeKafka struct {
	cfg     kafkawire.Config
	listErr error
	records []record.Record
	fetchFn func(topic string) error
}

func (f *fakeKafka) ListOffset(_ context.Context, topic string, partition int32, timestamp int64) (int64, error) {
	if f.listErr != nil {
		return 0, f.listErr
	}
	return 42, nil
}

func (f *fakeKafka) FetchWith(_ context.Context, topic string, partition int32, offset int64, _ kafkawire.FetchOptions) (*kafkawire.FetchResult, error) {
	if err := f.fetchFn(topic); err != nil {
		return nil, err
	}
	return &kafkawire.FetchResult{Topic: topic, Partition: partition, Offset: offset, Records: f.records}, nil
}

func (f *fakeKafka) Ready(context.Context) error { return nil }

func (f *fakeKafka) FetchManyWith(ctx context.Context, parts []kafkawire.FetchPartition, o kafkawire.FetchOptions) ([]*kafkawire.FetchResult, error) {
	out := make([]*kafkawire.FetchResult, len(parts))
	for i, p := range parts {
		r, err := f.FetchWith(ctx, p.Topic, p.Partition, p.Offset, o)
		if err != nil {
			r = &kafkawire.FetchResult{Topic: p.Topic, Partition: p.Partition, Offset: p.Offset, Err: err}
		}
		out[i] = r
	}
	return out, nil
}

func (f *fakeKafka) Partitions(_ context.Context, topics []string) ([]kafkawire.TopicPartitions, error) {
	if f.listErr != nil {
		return nil, f.listErr
	}
	out := make([]kafkawire.TopicPartitions, len(topics))
	for i, t := range topics {
		out[i] = kafkawire.TopicPartitions{Topic: t, Partitions: []int32{0}}
	}
	return out, nil
}

func (f *fakeKafka) PartitionsAfter(ctx context.Context, topics []string, _ time.Time) ([]kafkawire.TopicPartitions, error) {
	return f.Partitions(ctx, topics)
}

// CommitOffsets and CommittedOffsets are not served: the tests of
// offsets run on kfake and on real Kafka.
func (f *fakeKafka) CommitOffsets(context.Context, string, string, []kafkawire.CommittedOffset, kafkawire.Generation) error {
	panic("fakeKafka: no offsets")
}

func (f *fakeKafka) CommittedOffsets(context.Context, string, string, []int32) ([]kafkawire.CommittedOffset, error) {
	panic("fakeKafka: no offsets")
}

// JoinGroup is not served: the tests of groups run on kfake and on real
// Kafka.
func (f *fakeKafka) JoinGroup(kafkawire.MemberConfig) (*kafkawire.Member, error) {
	panic("fakeKafka: no groups")
}

// NewStream is not served: the tests of subscriptions run on kfake and on
// real Kafka.
func (f *fakeKafka) NewStream(func(*kafkawire.FetchResult)) *kafkawire.Stream {
	panic("fakeKafka: no subscriptions")
}

// Produce is not served: the tests of produce run on kfake and on real
// Kafka.
func (f *fakeKafka) Produce(context.Context, string, int32, kafkawire.Acks, []record.Record, func([]kafkawire.Produced)) {
	panic("fakeKafka: no produce")
}

// fakeClusters stands in for the kafkawire.ClientSet of a server: it makes
// a fake client per acquire and counts the holds not released.
type fakeClusters struct {
	mu     sync.Mutex
	opened []*fakeKafka
	holds  int
	make   func() *fakeKafka
}

func (fc *fakeClusters) acquire(cfg kafkawire.Config) (kafkaClient, func(), error) {
	f := fc.make()
	f.cfg = cfg
	fc.mu.Lock()
	defer fc.mu.Unlock()
	fc.opened = append(fc.opened, f)
	fc.holds++
	var once sync.Once
	return f, func() {
		once.Do(func() {
			fc.mu.Lock()
			defer fc.mu.Unlock()
			fc.holds--
		})
	}, nil
}

func (fc *fakeClusters) held() int {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	return fc.holds
}

// startFake starts a server whose routes' clients come from fc.
func startFake(t *testing.T, cfg Config, fc *fakeClusters, routes ...Route) *Server {
	t.Helper()
	cfg.Addr, cfg.Loops, cfg.Logger = "127.0.0.1:0", 1, testLogger()
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	s.acquire = fc.acquire
	for _, r := range routes {
		if err := s.PutRoute(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		if n := fc.held(); n != 0 {
			t.Errorf("%d client holds not released after Shutdown", n)
		}
	})
	return s
}

// TestKafkaFailureTexts: the failures of a Kafka client that a broker
// cannot easily be made to produce reach the client as the texts of
// docs/protocol.md.
func TestKafkaFailureTexts(t *testing.T) {
	fc := &fakeClusters{make: func() *fakeKafka {
		return &fakeKafka{
			listErr: &kafkawire.Error{Op: "list offsets", Topic: "t", Err: kafkawire.ErrTimeout},
			records: []record.Record{{Offset: 7, Timestamp: 1, Value: []byte("v")}, {Offset: 8, Key: []byte("k")}},
			fetchFn: func(topic string) error {
				switch topic {
				case "closed":
					return &kafkawire.Error{Op: "fetch", Topic: topic, Err: kafkawire.ErrClosed}
				case "refused":
					return &kafkawire.Error{Op: "fetch", Topic: topic, Err: fmt.Errorf("broker 10.0.0.1:9092: connection refused: %w", kafkawire.ErrBrokerUnreachable)}
				case "leader":
					return &kafkawire.Error{Op: "fetch", Topic: topic, Code: 6}
				}
				return nil
			},
		}
	}}
	s := startFake(t, Config{}, fc, deadRoute("/kafka"))
	c := dialWS(t, s, "/kafka")
	for _, tc := range []struct {
		req  *pubsub.PubSubReq
		code int32
		msg  string
	}{
		{listReq(1, "t", 3, -1), 0, "failed to list offset, topic: t, partition: 3, err: timeout"},
		{fetchReq(2, "closed", 0, 0), 0, "failed to fetch message, topic: closed, partition: 0, err: client closed"},
		{fetchReq(3, "refused", 1, 0), 0, "failed to fetch message, topic: refused, partition: 1, err: broker unreachable"},
		{fetchReq(4, "leader", 0, 0), 6, "failed to fetch message, topic: leader, partition: 0, err: NOT_LEADER_OR_FOLLOWER"},
	} {
		resp := c.roundTrip(tc.req)
		if e := resp.GetErrorResp(); resp.GetSequence() != tc.req.GetSequence() || e.GetCode() != tc.code || e.GetMessage() != tc.msg {
			t.Errorf("request %d: %v, want code %d %q", tc.req.GetSequence(), resp, tc.code, tc.msg)
		}
	}
	resp := c.roundTrip(fetchReq(5, "data", 0, 8))
	if msgs := resp.GetKafkaFetchResp().GetMessages(); len(msgs) != 1 || msgs[0].GetOffset() != 8 || string(msgs[0].GetKey()) != "k" {
		t.Fatalf("fetch from the fake from offset 8: %v", resp)
	}
}

// TestRouteClients: each route holds a client of its cluster, made with
// the fetch size cut to what one answer carries, until the route is
// replaced or deleted; a change that leaves the client's configuration as
// it is changes nothing.
func TestRouteClients(t *testing.T) {
	fc := &fakeClusters{make: func() *fakeKafka { return &fakeKafka{} }}
	a := deadRoute("/a")
	b := deadRoute("/b")
	b.Cluster.FetchPartitionMaxBytes = 1 << 10
	s := startFake(t, Config{MaxOutbound: 8 << 20}, fc, a, b)
	if got := fc.opened[0].cfg.FetchPartitionMaxBytes; got != 1<<20 {
		t.Errorf("FetchPartitionMaxBytes %d, want %d (an eighth of MaxOutbound)", got, 1<<20)
	}
	if got := fc.opened[1].cfg.FetchPartitionMaxBytes; got != 1<<10 {
		t.Errorf("FetchPartitionMaxBytes %d, want the route's own 1 KiB", got)
	}
	if fc.opened[0].cfg.Logger == nil {
		t.Error("the client has no logger")
	}
	if !s.DeleteRoute("/a") || fc.held() != 1 {
		t.Fatalf("%d holds after one of two routes was deleted", fc.held())
	}

	// A new client for 2 MiB cut to 1 MiB; then 3 MiB and the default are
	// cut to 1 MiB too: the same client, the connection stays.
	b.Cluster.FetchPartitionMaxBytes = 2 << 20
	if err := s.PutRoute(b); err != nil {
		t.Fatal(err)
	}
	conn := dialWS(t, s, "/b")
	for _, size := range []int32{3 << 20, 0} {
		b.Cluster.FetchPartitionMaxBytes = size
		if err := s.PutRoute(b); err != nil {
			t.Fatal(err)
		}
	}
	if len(fc.opened) != 3 || fc.held() != 1 {
		t.Fatalf("%d clients opened, %d held, want 3 and 1", len(fc.opened), fc.held())
	}
	if resp := conn.roundTrip(pingReq(1, "")); resp.GetPongResp() == nil {
		t.Fatalf("after PutRoutes to the same client: %v", resp)
	}
}

// TestHeldRequestIsNotIdle: a connection whose fetch waits for a node-wide
// slot is waiting, not idle. The idle timeout closes a connection that
// opened after it and sent nothing, and not the waiting one, which gets its
// answer once the slot is free.
func TestHeldRequestIsNotIdle(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{}, 1)
	fc := &fakeClusters{make: func() *fakeKafka {
		return &fakeKafka{records: []record.Record{{Offset: 0, Value: []byte("v")}}, fetchFn: func(topic string) error {
			if topic == "block" {
				entered <- struct{}{}
				<-release
			}
			return nil
		}}
	}}
	rec := newRecorder()
	s := startFake(t, Config{MaxInflightTotal: 1, IdleTimeout: 300 * time.Millisecond, Observer: rec}, fc, deadRoute("/kafka"))
	released := false
	defer func() {
		if !released {
			close(release)
		}
	}()
	a := dialWS(t, s, "/kafka")
	a.send(fetchReq(1, "block", 0, 0)) // takes the one slot
	<-entered
	b := dialWS(t, s, "/kafka")
	b.send(fetchReq(2, "data", 0, 0)) // held: no slot
	waitFor(t, "the second fetch to wait for a slot", func() bool {
		return rec.count(func(r *recorder) int {
			return r.pressure[BackpressureSlotWait] + r.pressure[BackpressureClusterSlotWait]
		}) == 1
	})
	idle := dialWS(t, s, "/kafka")
	if _, err := idle.tryRecv(10 * time.Second); !isGoingAwayWith(err, "idle timeout") {
		t.Fatalf("the idle connection: %v, want close 1001 \"idle timeout\"", err)
	}
	close(release)
	released = true
	for _, c := range []*wsClient{a, b} {
		resp := c.recv()
		if msgs := resp.GetKafkaFetchResp().GetMessages(); len(msgs) != 1 {
			t.Fatalf("after the slot was freed: %v, want the fetch answered", resp)
		}
	}
}

// sickAndHealthy starts a server with routes /sick and /healthy to two
// clusters; fetches of topic "sick" hang, counted by hanging, until release
// (called at the end of the test if not before), the others answer one
// message.
func sickAndHealthy(t *testing.T, cfg Config) (s *Server, hanging *atomic.Int32, release func()) {
	t.Helper()
	gate := make(chan struct{})
	hanging = new(atomic.Int32)
	fc := &fakeClusters{make: func() *fakeKafka {
		return &fakeKafka{records: []record.Record{{Offset: 0, Value: []byte("v")}}, fetchFn: func(topic string) error {
			if topic == "sick" {
				hanging.Add(1)
				<-gate
			}
			return nil
		}}
	}}
	var once sync.Once
	release = func() { once.Do(func() { close(gate) }) }
	sick := Route{URI: "/sick", Cluster: kafkawire.Config{Brokers: []string{"127.0.0.1:1"}}}
	healthy := Route{URI: "/healthy", Cluster: kafkawire.Config{Brokers: []string{"127.0.0.1:2"}}}
	s = startFake(t, cfg, fc, sick, healthy)
	t.Cleanup(release) // before the server's shutdown, which waits for the calls
	return s, hanging, release
}

// TestClusterBulkhead: a cluster that does not answer holds only its share
// of the node's Kafka calls (MaxInflightCluster), and its waiting requests
// queue apart: a fetch on another cluster's route is answered while every
// call of the sick one still hangs. With one node-wide cap only, the sick
// cluster's calls took every slot and the healthy fetch waited for them.
func TestClusterBulkhead(t *testing.T) {
	rec := newRecorder()
	s, hanging, release := sickAndHealthy(t, Config{MaxInflightTotal: 8, MaxInflightCluster: 4, Observer: rec})
	// Three clients of the sick route with 4 distinct fetches each: 4 run
	// (the cluster's share), 8 wait for it.
	var sickClients []*wsClient
	for c := range 3 {
		w := dialWS(t, s, "/sick")
		sickClients = append(sickClients, w)
		for p := range 4 {
			w.send(fetchReq(int64(p+1), "sick", int32(c*4+p), 0))
		}
	}
	waitFor(t, "the sick cluster's share to fill", func() bool {
		return hanging.Load() == 4 && rec.count(func(r *recorder) int { return r.pressure[BackpressureClusterSlotWait] }) >= 2
	})
	h := dialWS(t, s, "/healthy")
	h.send(fetchReq(1, "data", 0, 0))
	resp, err := h.tryRecv(10 * time.Second)
	if err != nil || len(resp.GetKafkaFetchResp().GetMessages()) != 1 {
		t.Fatalf("the healthy route's fetch while the sick cluster hangs: %v, %v; want its message", resp, err)
	}
	if n := hanging.Load(); n != 4 {
		t.Fatalf("%d calls reached the sick cluster, want its share of 4", n)
	}
	if got := rec.count(func(r *recorder) int { return r.pressure[BackpressureSlotWait] }); got != 0 {
		t.Fatalf("%d node-wide slot waits, want 0: the node had free slots", got)
	}
	release()
	for _, w := range sickClients {
		for range 4 {
			if resp := w.recv(); len(resp.GetKafkaFetchResp().GetMessages()) != 1 {
				t.Fatalf("a sick-route fetch once the cluster answered: %v", resp)
			}
		}
	}
}

// TestClusterMemoryBulkhead: a cluster whose fetches hang holds only its
// share of the memory budget (with two clusters, half), so a fetch of the
// other cluster finds memory; with one share for all, the hung fetches
// took the whole budget and the other cluster's fetch waited for them.
func TestClusterMemoryBulkhead(t *testing.T) {
	rec := newRecorder()
	// Room for 4 fetch calls in all, 2 per cluster.
	per := pow2((32<<20)/fetchesPerOutbound) + 256 + 2*pow2((32<<20)/fetchesPerOutbound)
	s, hanging, release := sickAndHealthy(t, Config{MemoryBudget: 4 * per, Observer: rec})
	w := dialWS(t, s, "/sick")
	for p := range 4 {
		w.send(fetchReq(int64(p+1), "sick", int32(p), 0))
	}
	waitFor(t, "the sick cluster's memory share to fill", func() bool {
		return hanging.Load() == 2 && rec.count(func(r *recorder) int { return r.pressure[BackpressureMemoryWait] }) >= 1
	})
	h := dialWS(t, s, "/healthy")
	h.send(fetchReq(1, "data", 0, 0))
	if resp, err := h.tryRecv(10 * time.Second); err != nil || len(resp.GetKafkaFetchResp().GetMessages()) != 1 {
		t.Fatalf("the healthy route's fetch while the sick cluster holds its memory: %v, %v", resp, err)
	}
	release()
	for range 4 {
		if resp := w.recv(); len(resp.GetKafkaFetchResp().GetMessages()) != 1 {
			t.Fatalf("a sick-route fetch once the cluster answered: %v", resp)
		}
	}
}

// TestClusterShares: with MaxInflightCluster 0 the node's calls are
// divided among the routes' clusters, at most four ways; routes of one
// client share one share.
func TestClusterShares(t *testing.T) {
	s := startServer(t, Config{MaxInflightTotal: 4000})
	shares := func() map[int64]int {
		n := map[int64]int{}
		seen := map[*clusterLimits]bool{}
		for _, rt := range s.routes.Load().byURI {
			if !seen[rt.cl] {
				seen[rt.cl] = true
				n[rt.cl.slots.max]++
			}
		}
		return n
	}
	put := func(uri, broker string) {
		if err := s.PutRoute(Route{URI: uri, Cluster: kafkawire.Config{Brokers: []string{broker}}}); err != nil {
			t.Fatal(err)
		}
	}
	put("/a", "127.0.0.1:1")
	put("/a2", "127.0.0.1:1")
	if got := shares(); got[4000] != 1 || len(got) != 1 {
		t.Fatalf("one cluster: %v, want all 4000 calls", got)
	}
	put("/b", "127.0.0.1:2")
	if got := shares(); got[2000] != 2 {
		t.Fatalf("two clusters: %v, want 2000 each", got)
	}
	for i := range 4 {
		put(fmt.Sprintf("/c%d", i), fmt.Sprintf("127.0.0.1:%d", 10+i))
	}
	if got := shares(); got[1000] != 6 {
		t.Fatalf("six clusters: %v, want 1000 each", got)
	}
	for i := range 4 {
		s.DeleteRoute(fmt.Sprintf("/c%d", i))
	}
	s.DeleteRoute("/b")
	if got := shares(); got[4000] != 1 {
		t.Fatalf("back to one cluster: %v, want all 4000 calls", got)
	}
}
