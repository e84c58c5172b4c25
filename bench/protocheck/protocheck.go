// Package protocheck holds the end-to-end protocol checks that every server
// in the benchmark suite must pass: kafkaedge and the conventional baseline
// are held to the same texts and semantics of docs/protocol.md, so that the
// benchmark compares like with like.
//
// NewCluster starts an in-process kfake cluster seeded with known data (Seed
// seeds any cluster, kfake or real), and Run runs every check against a
// server routed to it.
package protocheck

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kafkaedge/kafkaedge/internal/kafkatest"
	"github.com/kafkaedge/kafkaedge/internal/wsclient"
	"github.com/kafkaedge/kafkaedge/kafkawire"
	"github.com/kafkaedge/kafkaedge/proto/pubsub"
)

// The seeded topics: Topic has one partition holding BatchLen records in
// one batch (offsets 0..BatchLen-1, timestamps BaseTime + i seconds) and
// then one record with a null key in a batch of its own; TopicLZ4 and
// TopicZstd hold the same, compressed. On kfake the topics have these
// names; on a shared real cluster kafkatest makes them unique (Cluster
// holds the names).
const (
	Topic     = "checks"
	TopicLZ4  = "checks-lz4"
	TopicZstd = "checks-zstd"
	// TopicProduce is an empty topic of ProducePartitions partitions
	// that the Produce check writes to.
	TopicProduce      = "checks-produce"
	ProducePartitions = 4
	// BatchLen is the number of records in the first batch.
	BatchLen = 10
)

// BaseTime is the timestamp of the first record, in ms since the epoch.
var BaseTime = time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC).UnixMilli()

// Cluster is a cluster seeded with the check topics.
type Cluster struct {
	Brokers                                  []string
	Topic, TopicLZ4, TopicZstd, TopicProduce string
}

// NewCluster starts a 3-broker kfake cluster with the check topics seeded,
// closed at the end of the test.
func NewCluster(t testing.TB) *Cluster { return Seed(t, kafkatest.Fake(t, 3)) }

// Seed creates and seeds the check topics on k.
func Seed(t testing.TB, k *kafkatest.Kafka) *Cluster {
	t.Helper()
	c := &Cluster{Brokers: k.Brokers,
		Topic: k.Topic(t, Topic, 1), TopicLZ4: k.Topic(t, TopicLZ4, 1), TopicZstd: k.Topic(t, TopicZstd, 1),
		TopicProduce: k.Topic(t, TopicProduce, ProducePartitions)}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, tc := range []struct {
		topic string
		codec kgo.CompressionCodec
	}{{c.Topic, kgo.NoCompression()}, {c.TopicLZ4, kgo.Lz4Compression()}, {c.TopicZstd, kgo.ZstdCompression()}} {
		if err := seed(ctx, c.Brokers, tc.topic, tc.codec); err != nil {
			t.Fatalf("seed %s: %v", tc.topic, err)
		}
	}
	return c
}

// seed writes the first batch (one flush) and then the null-key record.
func seed(ctx context.Context, brokers []string, topic string, codec kgo.CompressionCodec) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ManualFlushing(),
		kgo.ProducerBatchCompression(codec), kgo.DefaultProduceTopic(topic))
	if err != nil {
		return err
	}
	defer cl.Close()
	var firstErr error
	done := func(_ *kgo.Record, err error) {
		if err != nil && firstErr == nil {
			firstErr = err
		}
	}
	for i := range BatchLen {
		cl.Produce(ctx, &kgo.Record{
			Key:       []byte(fmt.Sprintf("k%d", i)),
			Value:     []byte(fmt.Sprintf("value-%d", i)),
			Timestamp: time.UnixMilli(BaseTime + int64(i)*1000),
		}, done)
	}
	if err := cl.Flush(ctx); err != nil {
		return err
	}
	cl.Produce(ctx, &kgo.Record{Value: []byte("no-key"), Timestamp: time.UnixMilli(BaseTime + BatchLen*1000)}, done)
	if err := cl.Flush(ctx); err != nil {
		return err
	}
	return firstErr
}

// Run runs every check against the server at addr ("host:port") whose
// route uri leads to c.
func Run(t *testing.T, c *Cluster, addr, uri string) {
	t.Helper()
	url := "ws://" + addr + uri
	dial := func(t *testing.T) *wsclient.Conn {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		conn, err := wsclient.Dial(ctx, url, wsclient.Options{})
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		t.Cleanup(func() { conn.Close() })
		if err := conn.SetDeadline(time.Now().Add(20 * time.Second)); err != nil {
			t.Fatalf("deadline: %v", err)
		}
		return conn
	}

	t.Run("ListOffset", func(t *testing.T) {
		conn := dial(t)
		for _, tc := range []struct {
			name      string
			timestamp int64
			want      int64
		}{
			{"end", -1, BatchLen + 1},
			{"start", -2, 0},
			{"timestamp between records", BaseTime + 2500, 3},
			{"timestamp of a record", BaseTime + 4000, 4},
			{"timestamp before all", BaseTime - 1, 0},
			{"timestamp after all", BaseTime + 1e6, -1},
		} {
			got, err := conn.ListOffset(c.Topic, 0, tc.timestamp)
			if err != nil {
				t.Fatalf("%s: ListOffset(%d): %v", tc.name, tc.timestamp, err)
			}
			if got != tc.want {
				t.Errorf("%s: ListOffset(%d) = %d, want %d", tc.name, tc.timestamp, got, tc.want)
			}
		}
	})

	t.Run("FetchMiddleOfBatch", func(t *testing.T) {
		conn := dial(t)
		for _, topic := range []string{c.Topic, c.TopicLZ4, c.TopicZstd} {
			msgs, err := conn.Fetch(topic, 0, 5)
			if err != nil {
				t.Fatalf("%s: Fetch(5): %v", topic, err)
			}
			if len(msgs) != BatchLen+1-5 {
				t.Fatalf("%s: Fetch(5) returned %d messages, want %d", topic, len(msgs), BatchLen+1-5)
			}
			for i, m := range msgs {
				off := int64(5 + i)
				if m.GetOffset() != off {
					t.Errorf("%s: message %d offset %d, want %d", topic, i, m.GetOffset(), off)
				}
				if m.GetTimestamp() != BaseTime+off*1000 {
					t.Errorf("%s: offset %d timestamp %d, want %d", topic, off, m.GetTimestamp(), BaseTime+off*1000)
				}
				wantKey, wantValue := fmt.Sprintf("k%d", off), fmt.Sprintf("value-%d", off)
				if off == BatchLen {
					wantKey, wantValue = "", "no-key"
				}
				if string(m.GetKey()) != wantKey || string(m.GetValue()) != wantValue {
					t.Errorf("%s: offset %d key %q value %q, want %q %q", topic, off, m.GetKey(), m.GetValue(), wantKey, wantValue)
				}
			}
		}
	})

	t.Run("FetchAtEnd", func(t *testing.T) {
		conn := dial(t)
		msgs, err := conn.Fetch(c.Topic, 0, BatchLen+1)
		if err != nil {
			t.Fatalf("Fetch(end): %v", err)
		}
		if len(msgs) != 0 {
			t.Errorf("Fetch(end) returned %d messages, want none", len(msgs))
		}
	})

	t.Run("FetchOutOfRange", func(t *testing.T) {
		conn := dial(t)
		_, err := conn.Fetch(c.Topic, 0, 1000)
		wantServerError(t, err, "failed to fetch message, topic: "+c.Topic+", partition: 0, err: OFFSET_OUT_OF_RANGE")
	})

	t.Run("UnknownTopic", func(t *testing.T) {
		conn := dial(t)
		_, err := conn.Fetch("no-such-topic", 0, 0)
		wantServerError(t, err, "failed to fetch message, topic: no-such-topic, partition: 0, err: not found topic")
		_, err = conn.ListOffset("no-such-topic", 2, -1)
		wantServerError(t, err, "failed to list offset, topic: no-such-topic, partition: 2, err: not found topic")
		_, err = conn.Fetch(c.Topic, 7, 0)
		// An unknown partition of a known topic: APISIX's (lua-resty-kafka's) text.
		wantServerError(t, err, "failed to fetch message, topic: "+c.Topic+", partition: 7, err: not found partition")
		// The connection keeps working after errors.
		if _, err := conn.Ping([]byte("after")); err != nil {
			t.Fatalf("ping after errors: %v", err)
		}
	})

	t.Run("Produce", func(t *testing.T) {
		conn := dial(t)
		// Keyed records land where the Java client's partitioner puts
		// them, a named partition is kept, and each reads back by fetch.
		m := &pubsub.CmdKafkaProduce{Topic: c.TopicProduce}
		for i := range 8 {
			m.Records = append(m.Records, &pubsub.KafkaRecord{Key: fmt.Appendf(nil, "key-%d", i), Value: fmt.Appendf(nil, "value-%d", i),
				Timestamp: BaseTime + int64(i), Headers: []*pubsub.KafkaHeader{{Key: "h", Value: []byte("x")}}})
		}
		two := int32(2)
		named := &pubsub.CmdKafkaProduce{Topic: c.TopicProduce, Partition: &two, Records: []*pubsub.KafkaRecord{{Value: []byte("named")}}}
		res, err := conn.Produce(m)
		if err != nil {
			t.Fatalf("produce: %v", err)
		}
		for i, r := range res {
			if want := kafkawire.KeyPartition(m.Records[i].Key, ProducePartitions); r.GetPartition() != want || r.GetOffset() < 0 || r.GetError() != "" {
				t.Fatalf("record %d: %v, want partition %d", i, r, want)
			}
		}
		nres, err := conn.Produce(named)
		if err != nil || nres[0].GetPartition() != 2 || nres[0].GetOffset() < 0 {
			t.Fatalf("produce to partition 2: %v %v", nres, err)
		}
		for i, r := range append(res, nres[0]) {
			msgs, err := conn.Fetch(c.TopicProduce, r.GetPartition(), r.GetOffset())
			if err != nil || len(msgs) == 0 {
				t.Fatalf("fetch record %d: %v %v", i, msgs, err)
			}
			key, value, ts := "", "named", msgs[0].GetTimestamp()
			if i < len(m.Records) {
				key, value, ts = string(m.Records[i].Key), string(m.Records[i].Value), m.Records[i].Timestamp
			}
			if got := msgs[0]; got.GetOffset() != r.GetOffset() || string(got.GetKey()) != key || string(got.GetValue()) != value || got.GetTimestamp() != ts {
				t.Fatalf("record %d read back as %v, want key %q value %q timestamp %d", i, got, key, value, ts)
			}
		}
		neg, nine := int32(-1), int32(9)
		one := []*pubsub.KafkaRecord{{Value: []byte("x")}}
		for _, tc := range []struct {
			m    *pubsub.CmdKafkaProduce
			want string
		}{
			{&pubsub.CmdKafkaProduce{Topic: c.TopicProduce}, "failed to produce message, topic: " + c.TopicProduce + ", partition: -1, err: no records"},
			{&pubsub.CmdKafkaProduce{Topic: c.TopicProduce, Partition: &neg, Records: one}, "failed to produce message, topic: " + c.TopicProduce + ", partition: -1, err: negative partition"},
			{&pubsub.CmdKafkaProduce{Topic: "no-such-topic", Records: one}, "failed to produce message, topic: no-such-topic, partition: -1, err: not found topic"},
			{&pubsub.CmdKafkaProduce{Topic: c.TopicProduce, Partition: &nine, Records: one}, "failed to produce message, topic: " + c.TopicProduce + ", partition: 9, err: not found partition"},
		} {
			_, err := conn.Produce(tc.m)
			wantServerError(t, err, tc.want)
		}
	})

	t.Run("Ping", func(t *testing.T) {
		conn := dial(t)
		for _, state := range [][]byte{[]byte("hello"), nil, {0, 1, 2, 255}} {
			got, err := conn.Ping(state)
			if err != nil {
				t.Fatalf("Ping(%q): %v", state, err)
			}
			if string(got) != string(state) {
				t.Errorf("Ping(%q) = %q", state, got)
			}
		}
	})

	t.Run("SequenceEchoed", func(t *testing.T) {
		conn := dial(t)
		for _, seq := range []int64{-1, -9223372036854775808, 9223372036854775807, 0} {
			resp, err := conn.Do(&pubsub.PubSubReq{Sequence: seq, Req: &pubsub.PubSubReq_CmdPing{CmdPing: &pubsub.CmdPing{}}})
			if err != nil {
				t.Fatalf("ping with sequence %d: %v", seq, err)
			}
			if resp.GetPongResp() == nil {
				t.Errorf("sequence %d: got %v, want a pong", seq, resp)
			}
		}
	})

	t.Run("UnknownCommand", func(t *testing.T) {
		conn := dial(t)
		resp, err := conn.Do(&pubsub.PubSubReq{Sequence: 42, Req: &pubsub.PubSubReq_CmdEmpty{CmdEmpty: &pubsub.CmdEmpty{}}})
		if err != nil {
			t.Fatalf("CmdEmpty: %v", err)
		}
		if e := resp.GetErrorResp(); e == nil || e.GetMessage() != "unknown command" {
			t.Errorf("CmdEmpty answered %v, want ErrorResp \"unknown command\"", resp)
		}
	})

	t.Run("WrongCommand", func(t *testing.T) {
		conn := dial(t)
		// A text frame and a request without a command are skipped; an
		// undecodable binary frame gets "wrong command" with sequence 0.
		if err := conn.SendRaw(websocket.TextMessage, []byte("hello")); err != nil {
			t.Fatal(err)
		}
		if err := conn.Send(&pubsub.PubSubReq{Sequence: 5}); err != nil {
			t.Fatal(err)
		}
		if err := conn.SendRaw(websocket.BinaryMessage, []byte{0xff, 0xff, 0xff}); err != nil {
			t.Fatal(err)
		}
		resp, err := conn.Recv()
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		if e := resp.GetErrorResp(); e == nil || e.GetMessage() != "wrong command" || resp.GetSequence() != 0 {
			t.Fatalf("garbage answered %v, want ErrorResp \"wrong command\" with sequence 0", resp)
		}
		got, err := conn.Ping([]byte("still open"))
		if err != nil || string(got) != "still open" {
			t.Fatalf("ping after wrong command: %q, %v", got, err)
		}
	})

	t.Run("Pipelined", func(t *testing.T) {
		conn := dial(t)
		const n = 20
		for i := range int64(n) {
			var req *pubsub.PubSubReq
			if i%2 == 0 {
				req = wsclient.FetchReq(100+i, c.Topic, 0, i%BatchLen)
			} else {
				req = wsclient.ListOffsetReq(100+i, c.Topic, 0, -1)
			}
			if err := conn.Send(req); err != nil {
				t.Fatal(err)
			}
		}
		seen := make(map[int64]bool)
		for range n {
			resp, err := conn.Recv()
			if err != nil {
				t.Fatalf("read: %v", err)
			}
			seq := resp.GetSequence()
			if seen[seq] || seq < 100 || seq >= 100+n {
				t.Fatalf("unexpected or repeated sequence %d", seq)
			}
			seen[seq] = true
			if (seq-100)%2 == 0 {
				msgs := resp.GetKafkaFetchResp().GetMessages()
				if len(msgs) == 0 || msgs[0].GetOffset() != (seq-100)%BatchLen {
					t.Errorf("sequence %d: fetch answered %v", seq, resp)
				}
			} else if resp.GetKafkaListOffsetResp().GetOffset() != BatchLen+1 {
				t.Errorf("sequence %d: list offset answered %v", seq, resp)
			}
		}
	})

	t.Run("HTTP", func(t *testing.T) {
		client := &http.Client{Timeout: 10 * time.Second}
		for _, tc := range []struct {
			path string
			want int
		}{{uri, http.StatusBadRequest}} {
			resp, err := client.Get("http://" + addr + tc.path)
			if err != nil {
				t.Fatalf("GET %s: %v", tc.path, err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Errorf("GET %s (no upgrade) = %d, want %d", tc.path, resp.StatusCode, tc.want)
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, err := wsclient.Dial(ctx, "ws://"+addr+"/no-such-route", wsclient.Options{})
		var he *wsclient.HandshakeError
		if !errors.As(err, &he) || he.Status != http.StatusNotFound {
			t.Errorf("upgrade on an unknown URI: %v, want HTTP 404", err)
		}
	})
}

// wantServerError checks that err is an ErrorResp with exactly msg.
func wantServerError(t *testing.T, err error, msg string) {
	t.Helper()
	var se *wsclient.ServerError
	if !errors.As(err, &se) {
		t.Errorf("got %v, want ErrorResp %q", err, msg)
		return
	}
	if se.Message != msg {
		t.Errorf("ErrorResp %q, want %q", se.Message, msg)
	}
}
