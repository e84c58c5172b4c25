package reactor

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"google.golang.org/protobuf/proto"

	"github.com/kafkaedge/kafkaedge/internal/kafkatest"
	"github.com/kafkaedge/kafkaedge/internal/wstest"
	"github.com/kafkaedge/kafkaedge/kafkawire"
	"github.com/kafkaedge/kafkaedge/proto/pubsub"
)

// tsBase is the timestamp (ms) of the first test record.
const tsBase = int64(1_700_000_000_000)

// newKafka starts an in-process kfake cluster with the topics (one
// partition each), for the cases that need kfake's Control hooks.
func newKafka(t testing.TB, brokers int, topics ...string) *kafkatest.Kafka {
	t.Helper()
	return kafkatest.Fake(t, brokers, kfake.SeedTopics(1, topics...))
}

func kafkaRoute(uri string, k *kafkatest.Kafka) Route {
	return Route{URI: uri, Cluster: kafkawire.Config{Brokers: k.Brokers}}
}

// testRecord is the i-th record the tests produce: key nil for every third
// record, value "value-<i>" (padded to size when size > 0).
func testRecord(topic string, i, size int) *kgo.Record {
	r := &kgo.Record{Topic: topic, Timestamp: time.UnixMilli(tsBase + int64(i)*1000)}
	if i%3 != 0 {
		r.Key = fmt.Appendf(nil, "key-%d", i)
	}
	r.Value = fmt.Appendf(nil, "value-%d", i)
	if size > len(r.Value) {
		r.Value = append(r.Value, bytes.Repeat([]byte{'x'}, size-len(r.Value))...)
	}
	return r
}

// produce writes records first..first+n-1 to partition 0 of topic in one
// batch with kgo, an independent producer.
func produce(t testing.TB, k *kafkatest.Kafka, topic string, first, n, size int, opts ...kgo.Opt) {
	t.Helper()
	recs := make([]*kgo.Record, n)
	for i := range recs {
		recs[i] = testRecord(topic, first+i, size)
	}
	k.Produce(t, opts, recs...)
}

// checkMessages verifies that msgs are records first, first+1, ... as
// produced by testRecord.
func checkMessages(msgs []*pubsub.KafkaMessage, topic string, first, size int) error {
	for j, m := range msgs {
		want := testRecord(topic, first+j, size)
		if m.GetOffset() != int64(first+j) || m.GetTimestamp() != want.Timestamp.UnixMilli() ||
			!bytes.Equal(m.GetKey(), want.Key) || !bytes.Equal(m.GetValue(), want.Value) {
			return fmt.Errorf("message %d: offset %d ts %d key %q value %.20q, want offset %d ts %d key %q value %.20q",
				j, m.GetOffset(), m.GetTimestamp(), m.GetKey(), m.GetValue(),
				first+j, want.Timestamp.UnixMilli(), want.Key, want.Value)
		}
	}
	return nil
}

func TestKafkaListOffset(t *testing.T) { kafkatest.Each(t, testKafkaListOffset) }

func testKafkaListOffset(t *testing.T, k *kafkatest.Kafka) {
	topic := k.Topic(t, "t", 1)
	produce(t, k, topic, 0, 10, 0)
	s := startServer(t, Config{}, kafkaRoute("/kafka", k))
	c := dialWS(t, s, "/kafka")
	cases := []struct {
		ts   int64
		want int64
	}{
		{-1, 10},                 // the next offset to be written
		{-2, 0},                  // the first offset
		{tsBase, 0},              // exact timestamp of the first record
		{tsBase + 2500, 3},       // first record at or after
		{tsBase + 9000, 9},       // the last record
		{tsBase + 1_000_000, -1}, // none found
	}
	for i, tc := range cases {
		resp := c.roundTrip(listReq(int64(100+i), topic, 0, tc.ts))
		if resp.GetSequence() != int64(100+i) {
			t.Fatalf("sequence %d", resp.GetSequence())
		}
		lo := resp.GetKafkaListOffsetResp()
		if lo == nil || lo.GetOffset() != tc.want {
			t.Fatalf("list offset %d: %v, want offset %d", tc.ts, resp, tc.want)
		}
	}
	for _, tc := range []struct {
		topic string
		part  int32
		what  string
	}{{"nope", 0, "topic"}, {topic, 7, "partition"}} {
		resp := c.roundTrip(listReq(-3, tc.topic, tc.part, -1))
		want := fmt.Sprintf("failed to list offset, topic: %s, partition: %d, err: not found %s", tc.topic, tc.part, tc.what)
		if resp.GetSequence() != -3 || resp.GetErrorResp().GetMessage() != want {
			t.Fatalf("unknown %s/%d: %v, want %q", tc.topic, tc.part, resp, want)
		}
	}
}

func TestKafkaFetch(t *testing.T) { kafkatest.Each(t, testKafkaFetch) }

func testKafkaFetch(t *testing.T, k *kafkatest.Kafka) {
	topic := k.Topic(t, "t", 1)
	produce(t, k, topic, 0, 10, 0)
	s := startServer(t, Config{}, kafkaRoute("/kafka", k))
	c := dialWS(t, s, "/kafka")

	// From the middle of the batch: nothing before offset 5.
	resp := c.roundTrip(fetchReq(1, topic, 0, 5))
	msgs := resp.GetKafkaFetchResp().GetMessages()
	if resp.GetSequence() != 1 || len(msgs) != 5 {
		t.Fatalf("fetch @5: %v", resp)
	}
	if err := checkMessages(msgs, topic, 5, 0); err != nil {
		t.Fatal(err)
	}
	resp = c.roundTrip(fetchReq(2, topic, 0, 0))
	if err := checkMessages(resp.GetKafkaFetchResp().GetMessages(), topic, 0, 0); err != nil || len(resp.GetKafkaFetchResp().GetMessages()) != 10 {
		t.Fatalf("fetch @0: %v (%v)", err, resp)
	}

	// At the end: an empty list.
	resp = c.roundTrip(fetchReq(3, topic, 0, 10))
	if resp.GetKafkaFetchResp() == nil || len(resp.GetKafkaFetchResp().GetMessages()) != 0 {
		t.Fatalf("fetch @end: %v", resp)
	}

	// Past the end: OFFSET_OUT_OF_RANGE with the Kafka error code.
	resp = c.roundTrip(fetchReq(4, topic, 0, 1000))
	e := resp.GetErrorResp()
	if resp.GetSequence() != 4 || e.GetMessage() != "failed to fetch message, topic: "+topic+", partition: 0, err: OFFSET_OUT_OF_RANGE" || e.GetCode() != 1 {
		t.Fatalf("fetch @1000: %v", resp)
	}

	resp = c.roundTrip(fetchReq(5, "nope", 0, 0))
	if resp.GetErrorResp().GetMessage() != "failed to fetch message, topic: nope, partition: 0, err: not found topic" {
		t.Fatalf("unknown topic: %v", resp)
	}
}

func TestKafkaCompressed(t *testing.T) {
	codecs := map[string]kgo.CompressionCodec{
		"lz4": kgo.Lz4Compression(), "zstd": kgo.ZstdCompression(),
		"gzip": kgo.GzipCompression(), "snappy": kgo.SnappyCompression(),
	}
	kafkatest.Each(t, func(t *testing.T, k *kafkatest.Kafka) {
		topics := map[string]string{} // codec -> topic
		for name, codec := range codecs {
			topics[name] = k.Topic(t, name, 1)
			produce(t, k, topics[name], 0, 20, 200, kgo.ProducerBatchCompression(codec))
		}
		s := startServer(t, Config{}, kafkaRoute("/kafka", k))
		c := dialWS(t, s, "/kafka")
		for name, topic := range topics {
			for _, from := range []int{0, 7} {
				resp := c.roundTrip(fetchReq(int64(from), topic, 0, int64(from)))
				msgs := resp.GetKafkaFetchResp().GetMessages()
				if len(msgs) != 20-from {
					t.Fatalf("%s @%d: %d messages (%v)", name, from, len(msgs), resp.GetErrorResp())
				}
				if err := checkMessages(msgs, topic, from, 200); err != nil {
					t.Fatalf("%s @%d: %v", name, from, err)
				}
			}
		}
	})
}

func TestKafkaPipelined(t *testing.T) {
	kafkatest.Each(t, func(t *testing.T, k *kafkatest.Kafka) {
		topic := k.Topic(t, "t", 1)
		produce(t, k, topic, 0, 10, 0)
		for name, cfg := range map[string]Config{
			"per-connection cap":  {MaxInflight: 8},
			"outbound budget":     {MaxOutbound: 64 << 10}, // 4 fetches in flight
			"one request at once": {MaxInflight: 1},
		} {
			t.Run(name, func(t *testing.T) { pipelined(t, k, topic, cfg) })
		}
	})
}

// pipelined sends 200 requests on one connection before reading any answer
// and checks that each is answered exactly once, correctly.
func pipelined(t *testing.T, k *kafkatest.Kafka, topic string, cfg Config) {
	s := startServer(t, cfg, kafkaRoute("/kafka", k))
	c := dialWS(t, s, "/kafka")
	const n = 200
	for i := range n {
		seq := int64(i*7919) - 500000
		switch i % 4 {
		case 0:
			c.send(pingReq(seq, fmt.Sprint(i)))
		case 1:
			c.send(fetchReq(seq, topic, 0, int64(i%10)))
		case 2:
			c.send(listReq(seq, topic, 0, -1))
		case 3:
			c.send(listReq(seq, topic, 0, -2))
		}
	}
	seen := make(map[int64]bool, n)
	for range n {
		resp := c.recv()
		seq := resp.GetSequence()
		i := int((seq + 500000) / 7919)
		if seen[seq] || int64(i*7919)-500000 != seq {
			t.Fatalf("unexpected or duplicate sequence %d", seq)
		}
		seen[seq] = true
		var err error
		switch i % 4 {
		case 0:
			if string(resp.GetPongResp().GetState()) != fmt.Sprint(i) {
				err = fmt.Errorf("pong %v", resp)
			}
		case 1:
			msgs := resp.GetKafkaFetchResp().GetMessages()
			if len(msgs) != 10-i%10 {
				err = fmt.Errorf("fetch: %v", resp)
			} else {
				err = checkMessages(msgs, topic, i%10, 0)
			}
		case 2:
			if resp.GetKafkaListOffsetResp() == nil || resp.GetKafkaListOffsetResp().GetOffset() != 10 {
				err = fmt.Errorf("list -1: %v", resp)
			}
		case 3:
			if resp.GetKafkaListOffsetResp() == nil || resp.GetKafkaListOffsetResp().GetOffset() != 0 {
				err = fmt.Errorf("list -2: %v", resp)
			}
		}
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
	}
	// Nothing more: every request was answered exactly once.
	c.send(pingReq(1, "last"))
	if resp := c.recv(); resp.GetSequence() != 1 || resp.GetPongResp() == nil {
		t.Fatalf("extra response %v", resp)
	}
}

func TestKafkaConcurrentClients(t *testing.T) {
	kafkatest.Each(t, func(t *testing.T, k *kafkatest.Kafka) {
		topic := k.Topic(t, "t", 1)
		produce(t, k, topic, 0, 10, 0)
		s := startServer(t, Config{}, kafkaRoute("/kafka", k))
		const n = 200
		errs := make(chan error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs <- oneClient(s, topic, i)
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
	})
}

// oneClient dials, fetches from offset i%10 and lists the end offset,
// checking the answers. It runs on its own goroutine, so it returns errors.
func oneClient(s *Server, topic string, i int) error {
	c, err := dialClient(s, "/kafka")
	if err != nil {
		return fmt.Errorf("client %d: dial: %w", i, err)
	}
	defer c.Close()
	if err := c.Send(fetchReq(int64(i), topic, 0, int64(i%10))); err != nil {
		return err
	}
	if err := c.Send(listReq(-int64(i)-1, topic, 0, -1)); err != nil {
		return err
	}
	for range 2 {
		resp, err := recvWithin(c, 20*time.Second)
		if err != nil {
			return fmt.Errorf("client %d: %w", i, err)
		}
		switch resp.GetSequence() {
		case int64(i):
			if err := checkMessages(resp.GetKafkaFetchResp().GetMessages(), topic, i%10, 0); err != nil ||
				len(resp.GetKafkaFetchResp().GetMessages()) != 10-i%10 {
				return fmt.Errorf("client %d fetch: %v %v", i, err, resp)
			}
		case -int64(i) - 1:
			if resp.GetKafkaListOffsetResp().GetOffset() != 10 {
				return fmt.Errorf("client %d list: %v", i, resp)
			}
		default:
			return fmt.Errorf("client %d: unexpected sequence %d", i, resp.GetSequence())
		}
	}
	return nil
}

// TestKafkaLeaderMoved moves the leader of a partition under a connected
// client: on kfake with its MoveTopicPartition, on real Kafka by a
// partition reassignment through the Admin API (and a preferred leader
// election), then by stopping the leader's broker.
func TestKafkaLeaderMoved(t *testing.T) {
	t.Run("kfake", func(t *testing.T) {
		k := kafkatest.Fake(t, 3)
		leaderMoved(t, k, func(topic string) {
			if err := k.Fake.MoveTopicPartition(topic, 0, (k.Fake.LeaderFor(topic, 0)+1)%3); err != nil {
				t.Fatalf("move: %v", err)
			}
		})
	})
	for _, v := range kafkatest.Versions() {
		t.Run("kafka-"+v, func(t *testing.T) {
			k := kafkatest.Own(t, v, 3)
			// Fresh metadata on every ask: kgo keeps an answer for 5 s.
			adm := kadm.NewClient(k.Client(t, kgo.MetadataMinAge(10*time.Millisecond)))
			var topic string
			c := leaderMoved(t, k, func(tp string) {
				topic = tp
				leader := leaderOf(t, adm, tp)
				next := leader%3 + 1 // node ids are 1..3
				replicas := []int32{next, next%3 + 1, (next+1)%3 + 1}
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				req := kadm.AlterPartitionAssignmentsReq{}
				req.Assign(tp, 0, replicas)
				res, err := adm.AlterPartitionAssignments(ctx, req)
				if err == nil {
					err = res.Error()
				}
				if err != nil {
					t.Fatalf("reassign %s/0 to %v: %v", tp, replicas, err)
				}
				for leaderOf(t, adm, tp) != next {
					if ctx.Err() != nil {
						t.Fatalf("leader of %s/0 still not %d", tp, next)
					}
					// The reassignment keeps the leader; ask for the preferred one.
					_, _ = adm.ElectLeaders(ctx, kadm.ElectPreferredReplica, kadm.TopicsSet{tp: {0: {}}})
					time.Sleep(50 * time.Millisecond)
				}
			})
			// The leader's broker stops (a controlled shutdown moves the
			// leadership first); the edge follows, data produced after it
			// comes through.
			leader := leaderOf(t, adm, topic)
			if err := k.Real.Stop(leader); err != nil {
				t.Fatal(err)
			}
			produce(t, k, topic, 15, 5, 0)
			got := fetchUntil(t, c, topic, 15, 5)
			if err := checkMessages(got, topic, 15, 0); err != nil {
				t.Fatal(err)
			}
			if off := c.roundTrip(listReq(10, topic, 0, -1)).GetKafkaListOffsetResp().GetOffset(); off != 20 {
				t.Fatalf("list after the leader's broker stopped: %d", off)
			}
		})
	}
}

// leaderMoved produces 10 records to a new topic, reads them through the
// edge, calls move, produces 5 more and reads them through the same
// connection.
func leaderMoved(t *testing.T, k *kafkatest.Kafka, move func(topic string)) *wsClient {
	topic := k.ReplicatedTopic(t, "t", 1)
	produce(t, k, topic, 0, 10, 0)
	s := startServer(t, Config{}, kafkaRoute("/kafka", k))
	c := dialWS(t, s, "/kafka")
	if err := checkMessages(c.roundTrip(fetchReq(1, topic, 0, 0)).GetKafkaFetchResp().GetMessages(), topic, 0, 0); err != nil {
		t.Fatal(err)
	}
	move(topic)
	produce(t, k, topic, 10, 5, 0)
	if err := checkMessages(fetchUntil(t, c, topic, 10, 5), topic, 10, 0); err != nil {
		t.Fatal(err)
	}
	resp := c.roundTrip(listReq(9, topic, 0, -1))
	if resp.GetKafkaListOffsetResp().GetOffset() != 15 {
		t.Fatalf("list after move: %v", resp)
	}
	return c
}

// fetchUntil fetches from offset as APISIX clients do, again and again,
// until n messages come (at most 20 s). An error on the way must have the
// protocol's form.
func fetchUntil(t *testing.T, c *wsClient, topic string, offset int64, n int) []*pubsub.KafkaMessage {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	prefix := fmt.Sprintf("failed to fetch message, topic: %s, partition: 0, err: ", topic)
	for attempt := int64(0); ; attempt++ {
		if time.Now().After(deadline) {
			t.Fatalf("no %d messages at %s/0@%d after the leader moved", n, topic, offset)
		}
		resp := c.roundTrip(fetchReq(attempt, topic, 0, offset))
		if e := resp.GetErrorResp(); e != nil {
			if !strings.HasPrefix(e.GetMessage(), prefix) {
				t.Fatalf("error %q", e.GetMessage())
			}
			time.Sleep(20 * time.Millisecond)
			continue
		}
		if got := resp.GetKafkaFetchResp().GetMessages(); len(got) >= n {
			return got
		}
	}
}

// leaderOf returns the leader of partition 0 of topic, as the cluster's
// metadata says.
func leaderOf(t *testing.T, adm *kadm.Client, topic string) int32 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	md, err := adm.Metadata(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	p, ok := md.Topics[topic].Partitions[0]
	if !ok {
		t.Fatalf("no partition 0 of %s in metadata", topic)
	}
	return p.Leader
}

// coalesceSetup starts a server on a 10-record topic "t" with n connected
// clients and metadata warmed, and holds the broker's first request of key
// until joined(rec) reports that the other n-1 identical requests joined it,
// so that all n are in flight at the same moment. It returns the server,
// its observer, the clients and the count of key requests the broker saw.
func coalesceSetup(t *testing.T, n int, key kmsg.Key, joined func(*recorder) int) (*Server, *recorder, []*wsClient, *atomic.Int64) {
	t.Helper()
	k := newKafka(t, 1, "t")
	produce(t, k, "t", 0, 10, 0)
	rec := newRecorder()
	s := startServer(t, Config{Observer: rec}, kafkaRoute("/kafka", k))
	clients := make([]*wsClient, n)
	for i := range clients {
		clients[i] = dialWS(t, s, "/kafka")
	}
	// Warm the client's metadata so that only the requests under test follow.
	if resp := clients[0].roundTrip(listReq(0, "t", 0, -2)); resp.GetKafkaListOffsetResp() == nil {
		t.Fatalf("warm-up: %v", resp)
	}
	var calls atomic.Int64
	k.Fake.ControlKey(int16(key), func(kmsg.Request) (kmsg.Response, error, bool) {
		if calls.Add(1) == 1 {
			deadline := time.Now().Add(10 * time.Second)
			for rec.count(joined) < n-1 && time.Now().Before(deadline) {
				time.Sleep(time.Millisecond)
			}
		}
		return nil, nil, false
	})
	return s, rec, clients, &calls
}

func TestKafkaFanOut(t *testing.T) {
	const n = 50
	coalesced := func(r *recorder) int { return r.coalesced }
	s, rec, clients, fetches := coalesceSetup(t, n, kmsg.Fetch, coalesced)
	before := s.Stats().Fetches
	for i, c := range clients {
		c.send(fetchReq(int64(i), "t", 0, 3))
	}
	for i, c := range clients {
		resp := c.recv()
		if resp.GetSequence() != int64(i) {
			t.Fatalf("client %d: sequence %d", i, resp.GetSequence())
		}
		msgs := resp.GetKafkaFetchResp().GetMessages()
		if len(msgs) != 7 {
			t.Fatalf("client %d: %v", i, resp)
		}
		if err := checkMessages(msgs, "t", 3, 0); err != nil {
			t.Fatalf("client %d: %v", i, err)
		}
	}
	if got := s.Stats().Fetches - before; got != 1 {
		t.Fatalf("%d kafka fetches for %d identical requests, want 1", got, n)
	}
	if got := fetches.Load(); got != 1 {
		t.Fatalf("broker saw %d fetches, want 1", got)
	}
	if got := rec.count(coalesced); got != n-1 {
		t.Fatalf("coalesced %d, want %d", got, n-1)
	}
}

// TestKafkaListOffsetCoalesced: identical ListOffset requests in flight at
// the same moment share one Kafka call, and each gets its own answer.
func TestKafkaListOffsetCoalesced(t *testing.T) {
	const n = 50
	coalesced := func(r *recorder) int { return r.listCoal }
	s, rec, clients, calls := coalesceSetup(t, n, kmsg.ListOffsets, coalesced)
	before := s.Stats().ListOffsets
	for i, c := range clients {
		c.send(listReq(int64(-i), "t", 0, -1))
	}
	for i, c := range clients {
		resp := c.recv()
		if resp.GetSequence() != int64(-i) || resp.GetKafkaListOffsetResp().GetOffset() != 10 {
			t.Fatalf("client %d: %v, want sequence %d and offset 10", i, resp, -i)
		}
	}
	if got := s.Stats().ListOffsets - before; got != 1 {
		t.Fatalf("%d kafka list offsets for %d identical requests, want 1", got, n)
	}
	if got := calls.Load(); got != 1 {
		t.Fatalf("broker saw %d ListOffsets, want 1", got)
	}
	if got := rec.count(coalesced); got != n-1 {
		t.Fatalf("coalesced %d, want %d", got, n-1)
	}
	// A different timestamp is a different request.
	if resp := clients[1].roundTrip(listReq(7, "t", 0, -2)); resp.GetKafkaListOffsetResp().GetOffset() != 0 {
		t.Fatalf("list -2 after: %v", resp)
	}
}

func TestKafkaSlowReaderClosed(t *testing.T) {
	k := newKafka(t, 1, "big")
	produce(t, k, "big", 0, 64, 8<<10)
	rec := newRecorder()
	s := startServer(t, Config{MaxOutbound: 64 << 10, SlowTimeout: 300 * time.Millisecond, Observer: rec}, kafkaRoute("/kafka", k))
	slowClosed := func(r *recorder) int { return r.pressure[BackpressureSlowClosed] }

	// A well-behaved client works throughout.
	good := dialWS(t, s, "/kafka")

	slow := dialRaw(t, s)
	if err := slow.c.(interface{ SetReadBuffer(int) error }).SetReadBuffer(4096); err != nil {
		t.Fatal(err)
	}
	slow.upgrade("/kafka")
	req, err := proto.Marshal(fetchReq(1, "big", 0, 0))
	if err != nil {
		t.Fatal(err)
	}
	frame := wstest.ClientFrame(ws.OpBinary, true, req)
	batch := bytes.Repeat(frame, 16)
	deadline := time.Now().Add(30 * time.Second)
	for i := 0; rec.count(slowClosed) == 0; i++ {
		if time.Now().After(deadline) {
			t.Fatalf("slow reader not closed; stats %+v", s.Stats())
		}
		_ = slow.c.SetWriteDeadline(time.Now().Add(50 * time.Millisecond))
		_, _ = slow.c.Write(batch)
		if i%20 == 0 {
			resp := good.roundTrip(fetchReq(int64(i), "big", 0, 60))
			if err := checkMessages(resp.GetKafkaFetchResp().GetMessages(), "big", 60, 8<<10); err != nil ||
				len(resp.GetKafkaFetchResp().GetMessages()) == 0 {
				t.Fatalf("good client while another is slow: %v %v", err, resp.GetErrorResp())
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	waitFor(t, "the slow client to be gone", func() bool { return s.Stats().Conns == 1 })
	if resp := good.roundTrip(pingReq(5, "still here")); resp.GetPongResp() == nil {
		t.Fatalf("good client after the slow one was closed: %v", resp)
	}
}

func TestKafkaNodeWideCap(t *testing.T) {
	// Two Kafka calls at a time for the whole node, each of two clusters
	// (routes with different client settings) allowed both: connections
	// wait for a node-wide slot with their input paused, and every
	// request is still answered.
	k := newKafka(t, 1, "t")
	produce(t, k, "t", 0, 10, 0)
	rec := newRecorder()
	other := kafkaRoute("/other", k)
	other.Cluster.ClientID = "other"
	s := startServer(t, Config{MaxInflightTotal: 2, MaxInflightCluster: 2, MaxInflight: 2, Observer: rec}, kafkaRoute("/kafka", k), other)
	const clients, each = 10, 6
	errs := make(chan error, clients)
	for i := range clients {
		go func() {
			errs <- func() error {
				c, err := dialClient(s, []string{"/kafka", "/other"}[i%2])
				if err != nil {
					return err
				}
				defer c.Close()
				for j := range each {
					if err := c.Send(fetchReq(int64(j), "t", 0, int64((i+j)%10))); err != nil {
						return err
					}
				}
				for range each {
					resp, err := recvWithin(c, 20*time.Second)
					if err != nil {
						return fmt.Errorf("client %d: %w", i, err)
					}
					from := (i + int(resp.GetSequence())) % 10
					if err := checkMessages(resp.GetKafkaFetchResp().GetMessages(), "t", from, 0); err != nil ||
						len(resp.GetKafkaFetchResp().GetMessages()) != 10-from {
						return fmt.Errorf("client %d seq %d: %v %v", i, resp.GetSequence(), err, resp.GetErrorResp())
					}
				}
				return nil
			}()
		}()
	}
	for range clients {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if rec.count(func(r *recorder) int { return r.pressure[BackpressureSlotWait] }) == 0 {
		t.Fatal("no connection ever waited for a slot; the cap was not exercised")
	}
}
