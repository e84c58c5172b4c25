package reactor

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkaedge/kafkaedge/internal/kafkatest"
	"github.com/kafkaedge/kafkaedge/kafkawire"
	"github.com/kafkaedge/kafkaedge/proto/pubsub"
)

func produceReq(seq int64, m *pubsub.CmdKafkaProduce) *pubsub.PubSubReq {
	return &pubsub.PubSubReq{Sequence: seq, Req: &pubsub.PubSubReq_CmdKafkaProduce{CmdKafkaProduce: m}}
}

// TestKafkaProduce: records produced through the edge land where franz-go
// reads them: keyed ones on the partition of the Java client's
// partitioner, with their headers and timestamps, at the offsets the
// answer gives; ACKS_NONE answers -1; a named partition is kept.
func TestKafkaProduce(t *testing.T) { kafkatest.Each(t, testKafkaProduce) }

func testKafkaProduce(t *testing.T, k *kafkatest.Kafka) {
	topic := k.Topic(t, "edge-produce", 4)
	rec := newRecorder()
	s := startServer(t, Config{Observer: rec}, kafkaRoute("/kafka", k))
	c := dialWS(t, s, "/kafka")
	ts := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC).UnixMilli()
	keys := []string{"device-1", "device-2", "device-3"}
	m := &pubsub.CmdKafkaProduce{Topic: topic}
	for i, key := range keys {
		m.Records = append(m.Records, &pubsub.KafkaRecord{Key: []byte(key), Value: []byte("v" + key), Timestamp: ts + int64(i),
			Headers: []*pubsub.KafkaHeader{{Key: "h", Value: []byte(key)}}})
	}
	resp := c.roundTrip(produceReq(1, m))
	results := resp.GetKafkaProduceResp().GetResults()
	if len(results) != len(keys) {
		t.Fatalf("produce: %v", resp)
	}
	for i, r := range results {
		if want := kafkawire.KeyPartition([]byte(keys[i]), 4); r.GetPartition() != want || r.GetOffset() < 0 || r.GetError() != "" || r.GetTimestamp() != ts+int64(i) {
			t.Fatalf("record %d: %v, want partition %d", i, r, want)
		}
	}
	one := int32(2)
	none := c.roundTrip(produceReq(2, &pubsub.CmdKafkaProduce{Topic: topic, Partition: &one, Acks: pubsub.Acks_ACKS_NONE,
		Records: []*pubsub.KafkaRecord{{Value: []byte("fire and forget")}}})).GetKafkaProduceResp().GetResults()
	if len(none) != 1 || none[0].GetPartition() != 2 || none[0].GetOffset() != -1 || none[0].GetError() != "" {
		t.Fatalf("acks none: %v", none)
	}

	cl := k.Client(t, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	seen := map[string]*kgo.Record{}
	for len(seen) < 4 && ctx.Err() == nil {
		cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) { seen[string(r.Value)] = r })
	}
	for i, key := range keys {
		r := seen["v"+key]
		if r == nil || string(r.Key) != key || r.Partition != results[i].GetPartition() || r.Offset != results[i].GetOffset() ||
			r.Timestamp.UnixMilli() != ts+int64(i) || len(r.Headers) != 1 || string(r.Headers[0].Value) != key {
			t.Fatalf("record %s in Kafka: %+v, answered %v", key, r, results[i])
		}
	}
	if r := seen["fire and forget"]; r == nil || r.Partition != 2 {
		t.Fatalf("the ACKS_NONE record in Kafka: %+v", r)
	}
	if n := rec.count(func(r *recorder) int { return r.requests[CmdProduce] }); n != 2 {
		t.Fatalf("%d produce requests observed, want 2", n)
	}
}

// TestKafkaProduceRefused: requests the node or Kafka refuses as a whole
// get the produce error text with the reason; the connection goes on. (A
// value of 2 MiB fits in a WebSocket message of the node's here, 4 MiB,
// but not in a record batch, 1 MiB; with the default -max-message, 1 MiB,
// the message itself is refused with a 1009 close.)
func TestKafkaProduceRefused(t *testing.T) {
	k := kafkatest.Fake(t, 1)
	topic := k.Topic(t, "edge-produce-refused", 2)
	s := startServer(t, Config{MaxMessage: 4 << 20}, kafkaRoute("/kafka", k))
	c := dialWS(t, s, "/kafka")
	neg, nine := int32(-3), int32(9)
	v := []*pubsub.KafkaRecord{{Value: []byte("x")}}
	many := make([]*pubsub.KafkaRecord, maxProduceRecords+1)
	for i := range many {
		many[i] = &pubsub.KafkaRecord{Value: []byte("x")}
	}
	for i, tc := range []struct {
		m    *pubsub.CmdKafkaProduce
		code int32
		want string
	}{
		{&pubsub.CmdKafkaProduce{Records: v}, 0, "failed to produce message, topic: , partition: -1, err: no topic"},
		{&pubsub.CmdKafkaProduce{Topic: topic}, 0, "failed to produce message, topic: " + topic + ", partition: -1, err: no records"},
		{&pubsub.CmdKafkaProduce{Topic: topic, Partition: &neg, Records: v}, 0, "failed to produce message, topic: " + topic + ", partition: -3, err: negative partition"},
		{&pubsub.CmdKafkaProduce{Topic: topic, Records: many}, 0, "failed to produce message, topic: " + topic + ", partition: -1, err: 1001 records in one request, more than the limit of 1000"},
		{&pubsub.CmdKafkaProduce{Topic: topic, Acks: 7, Records: v}, 0, "failed to produce message, topic: " + topic + ", partition: -1, err: unknown acks 7"},
		{&pubsub.CmdKafkaProduce{Topic: "no-such-topic", Records: v}, 3, "failed to produce message, topic: no-such-topic, partition: -1, err: not found topic"},
		{&pubsub.CmdKafkaProduce{Topic: topic, Partition: &nine, Records: v}, 3, "failed to produce message, topic: " + topic + ", partition: 9, err: not found partition"},
		{&pubsub.CmdKafkaProduce{Topic: topic, Records: []*pubsub.KafkaRecord{{Value: []byte(strings.Repeat("x", 2<<20))}}}, 10,
			"failed to produce message, topic: " + topic + ", partition: -1, err: MESSAGE_TOO_LARGE"},
	} {
		e := c.roundTrip(produceReq(int64(i+1), tc.m)).GetErrorResp()
		if e.GetMessage() != tc.want || e.GetCode() != tc.code {
			t.Fatalf("case %d: %v, want %q (code %d)", i, e, tc.want, tc.code)
		}
	}
	if r := c.roundTrip(produceReq(99, &pubsub.CmdKafkaProduce{Topic: topic, Records: v})).GetKafkaProduceResp(); len(r.GetResults()) != 1 {
		t.Fatalf("a produce after the refusals: %v", r)
	}
}

// TestKafkaProduceClients: 100 connections each send 10 requests of 2
// keyless records to one partition of 4, one after the other: every
// record is in Kafka once, at the offset answered, and each connection's
// records are in the order sent.
func TestKafkaProduceClients(t *testing.T) { kafkatest.Each(t, testKafkaProduceClients) }

func testKafkaProduceClients(t *testing.T, k *kafkatest.Kafka) {
	topic := k.Topic(t, "edge-produce-clients", 4)
	s := startServer(t, Config{}, kafkaRoute("/kafka", k))
	const clients, requests = 100, 10
	type ack struct {
		client, n int
		r         *pubsub.KafkaProduced
	}
	acks := make(chan ack, clients*requests*2)
	var wg sync.WaitGroup
	for cl := range clients {
		c := dialWS(t, s, "/kafka")
		part := int32(cl % 4)
		wg.Go(func() {
			for i := range requests {
				m := &pubsub.CmdKafkaProduce{Topic: topic, Partition: &part}
				for j := range 2 {
					m.Records = append(m.Records, &pubsub.KafkaRecord{Value: fmt.Appendf(nil, "%d/%d", cl, i*2+j)})
				}
				resp := c.roundTrip(produceReq(int64(i+1), m))
				for j, r := range resp.GetKafkaProduceResp().GetResults() {
					acks <- ack{cl, i*2 + j, r}
				}
			}
		})
	}
	wg.Wait()
	close(acks)
	byOffset := map[int32]map[int64]string{}
	n := 0
	last := map[int]int64{}
	for a := range acks {
		if a.r.GetError() != "" {
			t.Fatalf("client %d record %d: %v", a.client, a.n, a.r)
		}
		if o, ok := last[a.client]; ok && a.r.GetOffset() <= o {
			t.Fatalf("client %d: record %d at %d after one at %d", a.client, a.n, a.r.GetOffset(), o)
		}
		last[a.client] = a.r.GetOffset()
		if byOffset[a.r.GetPartition()] == nil {
			byOffset[a.r.GetPartition()] = map[int64]string{}
		}
		byOffset[a.r.GetPartition()][a.r.GetOffset()] = fmt.Sprintf("%d/%d", a.client, a.n)
		n++
	}
	if n != clients*requests*2 {
		t.Fatalf("%d records answered, want %d", n, clients*requests*2)
	}
	cl := k.Client(t, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	read := 0
	for read < n && ctx.Err() == nil {
		cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
			read++
			if want := byOffset[r.Partition][r.Offset]; string(r.Value) != want {
				t.Errorf("partition %d offset %d holds %q, answered %q", r.Partition, r.Offset, r.Value, want)
			}
		})
	}
	if read != n {
		t.Fatalf("read %d records of %d", read, n)
	}
}

// TestKafkaProduceMemory: requests whose records do not fit in the node's
// memory budget wait (the connections are not read meanwhile) while the
// broker holds the first batch, and go on once it is written: every
// request is answered, every record is in Kafka.
func TestKafkaProduceMemory(t *testing.T) {
	k := kafkatest.Fake(t, 1)
	topic := k.Topic(t, "edge-produce-memory", 1)
	rec := newRecorder()
	s := startServer(t, Config{Observer: rec, MemoryBudget: minMemoryBudget}, kafkaRoute("/kafka", k))
	warm := dialWS(t, s, "/kafka") // the topic's metadata, before the broker is held
	if r := warm.roundTrip(produceReq(1, &pubsub.CmdKafkaProduce{Topic: topic, Records: []*pubsub.KafkaRecord{{Value: []byte("warm")}}})); r.GetKafkaProduceResp() == nil {
		t.Fatalf("first produce: %v", r)
	}
	release := make(chan struct{})
	k.Fake.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		<-release // once: the first Produce waits for the test
		return nil, nil, false
	})
	const clients = 8
	value := make([]byte, 300<<10) // 8 x 300 KiB: more than the 1 MiB budget
	cs := make([]*wsClient, clients)
	for i := range cs {
		cs[i] = dialWS(t, s, "/kafka")
		cs[i].send(produceReq(1, &pubsub.CmdKafkaProduce{Topic: topic, Records: []*pubsub.KafkaRecord{{Key: []byte{byte(i)}, Value: value}}}))
	}
	waitFor(t, "a produce waiting for memory", func() bool {
		return rec.count(func(r *recorder) int { return r.pressure[BackpressureMemoryWait] }) > 0
	})
	close(release)
	for i, c := range cs {
		if r := c.recv(); len(r.GetKafkaProduceResp().GetResults()) != 1 || r.GetKafkaProduceResp().GetResults()[0].GetError() != "" {
			t.Fatalf("client %d: %v", i, r)
		}
	}
	hw, err := k.Admin(t).ListEndOffsets(context.Background(), topic)
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := hw.Lookup(topic, 0); o.Offset != clients+1 {
		t.Fatalf("end offset %d, want %d", o.Offset, clients+1)
	}
}
