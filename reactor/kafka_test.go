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
	"github.com/gorilla/websocket"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"google.golang.org/protobuf/proto"

	"github.com/kafkaedge/kafkaedge/kafkawire"
	"github.com/kafkaedge/kafkaedge/proto/pubsub"
)

// tsBase is the timestamp (ms) of the first test record.
const tsBase = int64(1_700_000_000_000)

// newKafka starts an in-process Kafka with the topics (one partition each).
func newKafka(t testing.TB, brokers int, topics ...string) *kfake.Cluster {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(brokers), kfake.SeedTopics(1, topics...))
	if err != nil {
		t.Fatalf("kfake: %v", err)
	}
	t.Cleanup(c.Close)
	return c
}

func kafkaRoute(uri string, c *kfake.Cluster) Route {
	return Route{URI: uri, Cluster: kafkawire.Config{Brokers: c.ListenAddrs()}}
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

// produce writes records first..first+n-1 to topic in one batch with kgo,
// an independent producer.
func produce(t testing.TB, c *kfake.Cluster, topic string, first, n, size int, opts ...kgo.Opt) {
	t.Helper()
	opts = append([]kgo.Opt{kgo.SeedBrokers(c.ListenAddrs()...), kgo.ManualFlushing(), kgo.MaxBufferedRecords(n + 1)}, opts...)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatalf("kgo: %v", err)
	}
	defer cl.Close()
	var wg sync.WaitGroup
	var failed atomic.Value
	for i := first; i < first+n; i++ {
		wg.Add(1)
		cl.Produce(context.Background(), testRecord(topic, i, size), func(_ *kgo.Record, err error) {
			if err != nil {
				failed.Store(err)
			}
			wg.Done()
		})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := cl.Flush(ctx); err != nil {
		t.Fatalf("flush: %v", err)
	}
	wg.Wait()
	if err, _ := failed.Load().(error); err != nil {
		t.Fatalf("produce: %v", err)
	}
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

func TestKafkaListOffset(t *testing.T) {
	k := newKafka(t, 1, "t")
	produce(t, k, "t", 0, 10, 0)
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
		resp := c.roundTrip(listReq(int64(100+i), "t", 0, tc.ts))
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
	}{{"nope", 0}, {"t", 7}} {
		resp := c.roundTrip(listReq(-3, tc.topic, tc.part, -1))
		want := fmt.Sprintf("failed to list offset, topic: %s, partition: %d, err: not found topic", tc.topic, tc.part)
		if resp.GetSequence() != -3 || resp.GetErrorResp().GetMessage() != want {
			t.Fatalf("unknown %s/%d: %v, want %q", tc.topic, tc.part, resp, want)
		}
	}
}

func TestKafkaFetch(t *testing.T) {
	k := newKafka(t, 1, "t")
	produce(t, k, "t", 0, 10, 0)
	s := startServer(t, Config{}, kafkaRoute("/kafka", k))
	c := dialWS(t, s, "/kafka")

	// From the middle of the batch: nothing before offset 5.
	resp := c.roundTrip(fetchReq(1, "t", 0, 5))
	msgs := resp.GetKafkaFetchResp().GetMessages()
	if resp.GetSequence() != 1 || len(msgs) != 5 {
		t.Fatalf("fetch @5: %v", resp)
	}
	if err := checkMessages(msgs, "t", 5, 0); err != nil {
		t.Fatal(err)
	}
	resp = c.roundTrip(fetchReq(2, "t", 0, 0))
	if err := checkMessages(resp.GetKafkaFetchResp().GetMessages(), "t", 0, 0); err != nil || len(resp.GetKafkaFetchResp().GetMessages()) != 10 {
		t.Fatalf("fetch @0: %v (%v)", err, resp)
	}

	// At the end: an empty list.
	resp = c.roundTrip(fetchReq(3, "t", 0, 10))
	if resp.GetKafkaFetchResp() == nil || len(resp.GetKafkaFetchResp().GetMessages()) != 0 {
		t.Fatalf("fetch @end: %v", resp)
	}

	// Past the end: OFFSET_OUT_OF_RANGE with the Kafka error code.
	resp = c.roundTrip(fetchReq(4, "t", 0, 1000))
	e := resp.GetErrorResp()
	if resp.GetSequence() != 4 || e.GetMessage() != "failed to fetch message, topic: t, partition: 0, err: OFFSET_OUT_OF_RANGE" || e.GetCode() != 1 {
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
	topics := make([]string, 0, len(codecs))
	for name := range codecs {
		topics = append(topics, name)
	}
	k := newKafka(t, 1, topics...)
	for name, codec := range codecs {
		produce(t, k, name, 0, 20, 200, kgo.ProducerBatchCompression(codec))
	}
	s := startServer(t, Config{}, kafkaRoute("/kafka", k))
	c := dialWS(t, s, "/kafka")
	for _, name := range topics {
		for _, from := range []int{0, 7} {
			resp := c.roundTrip(fetchReq(int64(from), name, 0, int64(from)))
			msgs := resp.GetKafkaFetchResp().GetMessages()
			if len(msgs) != 20-from {
				t.Fatalf("%s @%d: %d messages (%v)", name, from, len(msgs), resp.GetErrorResp())
			}
			if err := checkMessages(msgs, name, from, 200); err != nil {
				t.Fatalf("%s @%d: %v", name, from, err)
			}
		}
	}
}

func TestKafkaPipelined(t *testing.T) {
	k := newKafka(t, 1, "t")
	produce(t, k, "t", 0, 10, 0)
	for name, cfg := range map[string]Config{
		"per-connection cap":  {MaxInflight: 8},
		"outbound budget":     {MaxOutbound: 64 << 10}, // 4 fetches in flight
		"one request at once": {MaxInflight: 1},
	} {
		t.Run(name, func(t *testing.T) { pipelined(t, k, cfg) })
	}
}

// pipelined sends 200 requests on one connection before reading any answer
// and checks that each is answered exactly once, correctly.
func pipelined(t *testing.T, k *kfake.Cluster, cfg Config) {
	s := startServer(t, cfg, kafkaRoute("/kafka", k))
	c := dialWS(t, s, "/kafka")
	const n = 200
	for i := range n {
		seq := int64(i*7919) - 500000
		switch i % 4 {
		case 0:
			c.send(pingReq(seq, fmt.Sprint(i)))
		case 1:
			c.send(fetchReq(seq, "t", 0, int64(i%10)))
		case 2:
			c.send(listReq(seq, "t", 0, -1))
		case 3:
			c.send(listReq(seq, "t", 0, -2))
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
				err = checkMessages(msgs, "t", i%10, 0)
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
	k := newKafka(t, 1, "t")
	produce(t, k, "t", 0, 10, 0)
	s := startServer(t, Config{}, kafkaRoute("/kafka", k))
	const n = 200
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- oneClient(s, i)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}

// oneClient dials, fetches from offset i%10 and lists the end offset,
// checking the answers. It runs on its own goroutine, so it returns errors.
func oneClient(s *Server, i int) error {
	d := websocket.Dialer{HandshakeTimeout: 10 * time.Second}
	c, _, err := d.Dial("ws://"+s.Addr()+"/kafka", nil)
	if err != nil {
		return fmt.Errorf("client %d: dial: %w", i, err)
	}
	defer c.Close()
	w := &wsClient{c: c}
	send := func(req *pubsub.PubSubReq) error {
		b, err := proto.Marshal(req)
		if err != nil {
			return err
		}
		return c.WriteMessage(websocket.BinaryMessage, b)
	}
	if err := send(fetchReq(int64(i), "t", 0, int64(i%10))); err != nil {
		return err
	}
	if err := send(listReq(-int64(i)-1, "t", 0, -1)); err != nil {
		return err
	}
	for range 2 {
		resp, err := w.tryRecv(20 * time.Second)
		if err != nil {
			return fmt.Errorf("client %d: %w", i, err)
		}
		switch resp.GetSequence() {
		case int64(i):
			if err := checkMessages(resp.GetKafkaFetchResp().GetMessages(), "t", i%10, 0); err != nil ||
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

func TestKafkaLeaderMoved(t *testing.T) {
	k := newKafka(t, 3, "t")
	produce(t, k, "t", 0, 10, 0)
	s := startServer(t, Config{}, kafkaRoute("/kafka", k))
	c := dialWS(t, s, "/kafka")
	if err := checkMessages(c.roundTrip(fetchReq(1, "t", 0, 0)).GetKafkaFetchResp().GetMessages(), "t", 0, 0); err != nil {
		t.Fatal(err)
	}
	leader := k.LeaderFor("t", 0)
	if err := k.MoveTopicPartition("t", 0, (leader+1)%3); err != nil {
		t.Fatalf("move: %v", err)
	}
	produce(t, k, "t", 10, 5, 0)
	// The client keeps fetching as APISIX clients do; an error on the way
	// must have the protocol's form, and the data must come.
	var got []*pubsub.KafkaMessage
	for attempt := 0; len(got) < 5; attempt++ {
		if attempt == 50 {
			t.Fatal("no data after the leader moved")
		}
		resp := c.roundTrip(fetchReq(int64(attempt), "t", 0, 10))
		if e := resp.GetErrorResp(); e != nil {
			if !strings.HasPrefix(e.GetMessage(), "failed to fetch message, topic: t, partition: 0, err: ") {
				t.Fatalf("error %q", e.GetMessage())
			}
			time.Sleep(20 * time.Millisecond)
			continue
		}
		got = resp.GetKafkaFetchResp().GetMessages()
	}
	if err := checkMessages(got, "t", 10, 0); err != nil {
		t.Fatal(err)
	}
	resp := c.roundTrip(listReq(9, "t", 0, -1))
	if resp.GetKafkaListOffsetResp().GetOffset() != 15 {
		t.Fatalf("list after move: %v", resp)
	}
}

// coalesceSetup starts a server on a 10-record topic "t" with n connected
// clients and metadata warmed, and holds the broker's first request of key
// until joined() reports that the other n-1 identical requests joined it,
// so that all n are in flight at the same moment. It returns the server,
// the clients and the count of key requests the broker saw.
func coalesceSetup(t *testing.T, n int, key kmsg.Key, joined func(*Server) uint64) (*Server, []*wsClient, *atomic.Int64) {
	t.Helper()
	k := newKafka(t, 1, "t")
	produce(t, k, "t", 0, 10, 0)
	s := startServer(t, Config{}, kafkaRoute("/kafka", k))
	clients := make([]*wsClient, n)
	for i := range clients {
		clients[i] = dialWS(t, s, "/kafka")
	}
	// Warm the client's metadata so that only the requests under test follow.
	if resp := clients[0].roundTrip(listReq(0, "t", 0, -2)); resp.GetKafkaListOffsetResp() == nil {
		t.Fatalf("warm-up: %v", resp)
	}
	var calls atomic.Int64
	k.ControlKey(int16(key), func(kmsg.Request) (kmsg.Response, error, bool) {
		if calls.Add(1) == 1 {
			deadline := time.Now().Add(10 * time.Second)
			for joined(s) < uint64(n-1) && time.Now().Before(deadline) {
				time.Sleep(time.Millisecond)
			}
		}
		return nil, nil, false
	})
	return s, clients, &calls
}

func TestKafkaFanOut(t *testing.T) {
	const n = 50
	s, clients, fetches := coalesceSetup(t, n, kmsg.Fetch, func(s *Server) uint64 { return s.Stats().FetchCoalesced })
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
	if got := s.Stats().FetchCoalesced; got != n-1 {
		t.Fatalf("coalesced %d, want %d", got, n-1)
	}
}

// TestKafkaListOffsetCoalesced: identical ListOffset requests in flight at
// the same moment share one Kafka call, and each gets its own answer.
func TestKafkaListOffsetCoalesced(t *testing.T) {
	const n = 50
	s, clients, calls := coalesceSetup(t, n, kmsg.ListOffsets, func(s *Server) uint64 { return s.Stats().ListCoalesced })
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
	// A different timestamp is a different request.
	if resp := clients[1].roundTrip(listReq(7, "t", 0, -2)); resp.GetKafkaListOffsetResp().GetOffset() != 0 {
		t.Fatalf("list -2 after: %v", resp)
	}
}

func TestKafkaSlowReaderClosed(t *testing.T) {
	k := newKafka(t, 1, "big")
	produce(t, k, "big", 0, 64, 8<<10)
	s := startServer(t, Config{MaxOutbound: 64 << 10, SlowTimeout: 300 * time.Millisecond}, kafkaRoute("/kafka", k))

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
	frame := clientFrame(ws.OpBinary, true, req)
	batch := bytes.Repeat(frame, 16)
	deadline := time.Now().Add(30 * time.Second)
	for i := 0; s.Stats().SlowClosed == 0; i++ {
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
	// One Kafka call at a time for the whole node: connections wait for a
	// slot with their input paused, and every request is still answered.
	k := newKafka(t, 1, "t")
	produce(t, k, "t", 0, 10, 0)
	s := startServer(t, Config{MaxInflightTotal: 1, MaxInflight: 2}, kafkaRoute("/kafka", k))
	const clients, each = 10, 6
	errs := make(chan error, clients)
	for i := range clients {
		go func() {
			errs <- func() error {
				d := websocket.Dialer{HandshakeTimeout: 10 * time.Second}
				c, _, err := d.Dial("ws://"+s.Addr()+"/kafka", nil)
				if err != nil {
					return err
				}
				defer c.Close()
				for j := range each {
					b, _ := proto.Marshal(fetchReq(int64(j), "t", 0, int64((i+j)%10)))
					if err := c.WriteMessage(websocket.BinaryMessage, b); err != nil {
						return err
					}
				}
				w := &wsClient{c: c}
				for range each {
					resp, err := w.tryRecv(20 * time.Second)
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
	if s.Stats().SlotWaits == 0 {
		t.Fatal("no connection ever waited for a slot; the cap was not exercised")
	}
}
