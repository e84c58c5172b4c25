package kafkawire

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkaedge/kafkaedge/internal/kafkatest"
	"github.com/kafkaedge/kafkaedge/kafkawire/record"
	"github.com/kafkaedge/kafkaedge/kafkawire/wire"
)

// produceWait calls Produce and waits for its outcome.
func produceWait(t *testing.T, c *Client, topic string, partition int32, acks Acks, recs []record.Record) []Produced {
	t.Helper()
	ch := make(chan []Produced, 1)
	c.Produce(testCtx(t), topic, partition, acks, recs, func(out []Produced) { ch <- out })
	select {
	case out := <-ch:
		return out
	case <-time.After(time.Minute):
		t.Fatal("Produce did not call done within a minute")
	}
	return nil
}

// readAll reads topic's partitions from the beginning with franz-go until
// it has want records, and returns them by partition.
func readAll(t *testing.T, k *kafkatest.Kafka, topic string, want int) map[int32][]*kgo.Record {
	t.Helper()
	cl := k.Client(t, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out := map[int32][]*kgo.Record{}
	n := 0
	for n < want {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("read %d of %d records of %s: %v", n, want, topic, err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			out[r.Partition] = append(out[r.Partition], r)
			n++
		})
	}
	return out
}

// TestProduce: 40 callers, each producing 25 calls of 2 keyed records one
// call after the other, to a 4-partition topic: every record lands once,
// on the partition of franz-go's Kafka-compatible partitioner for its key,
// at the offset its Produced says, each caller's records in order; the
// records of the callers share batches (far fewer Produce requests than
// calls on kfake).
func TestProduce(t *testing.T) {
	kafkatest.Each(t, func(t *testing.T, k *kafkatest.Kafka) {
		topic := k.Topic(t, "produce", 4)
		var produces func() int64
		var twice atomic.Int64 // requests that carry a partition twice
		if k.Fake != nil {
			var n atomic.Int64
			k.Fake.ControlKey(wire.KeyProduce, func(req kmsg.Request) (kmsg.Response, error, bool) {
				k.Fake.KeepControl()
				n.Add(1)
				for _, rt := range req.(*kmsg.ProduceRequest).Topics {
					seen := map[int32]bool{}
					for _, rp := range rt.Partitions {
						if seen[rp.Partition] {
							twice.Add(1)
						}
						seen[rp.Partition] = true
					}
				}
				return nil, nil, false
			})
			produces = n.Load
		}
		obs := newRecorder()
		c := newClient(t, Config{Brokers: k.Brokers, ProduceLinger: 20 * time.Millisecond, Observer: obs})
		const callers, calls = 40, 25
		type sent struct {
			caller, seq int
			p           Produced
		}
		var mu sync.Mutex
		var all []sent
		var wg sync.WaitGroup
		for caller := range callers {
			wg.Go(func() {
				for seq := range calls {
					recs := make([]record.Record, 2)
					for i := range recs {
						recs[i] = record.Record{Key: fmt.Appendf(nil, "caller-%d", caller),
							Value: fmt.Appendf(nil, "%d/%d", caller, seq*2+i), Headers: []record.Header{{Key: "h", Value: []byte("v")}}}
					}
					out := produceWait(t, c, topic, -1, AcksAll, recs)
					mu.Lock()
					for i, p := range out {
						all = append(all, sent{caller, seq*2 + i, p})
					}
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		for _, s := range all {
			if s.p.Err != nil {
				t.Fatalf("caller %d record %d: %v", s.caller, s.seq, s.p.Err)
			}
		}
		got := readAll(t, k, topic, callers*calls*2)
		byOffset := map[int32]map[int64]string{}
		for p, rs := range got {
			byOffset[p] = map[int64]string{}
			for _, r := range rs {
				byOffset[p][r.Offset] = string(r.Value)
				if len(r.Headers) != 1 || r.Headers[0].Key != "h" {
					t.Fatalf("record %s: headers %v", r.Value, r.Headers)
				}
			}
		}
		total := 0
		for _, rs := range got {
			total += len(rs)
		}
		if total != callers*calls*2 {
			t.Fatalf("%d records in the topic, want %d (duplicates?)", total, callers*calls*2)
		}
		last := map[int]int64{}
		for _, s := range all {
			key := fmt.Appendf(nil, "caller-%d", s.caller)
			if want := KeyPartition(key, 4); s.p.Partition != want {
				t.Fatalf("caller %d on partition %d, want %d", s.caller, s.p.Partition, want)
			}
			if v := byOffset[s.p.Partition][s.p.Offset]; v != fmt.Sprintf("%d/%d", s.caller, s.seq) {
				t.Fatalf("caller %d record %d: at partition %d offset %d the topic has %q", s.caller, s.seq, s.p.Partition, s.p.Offset, v)
			}
			if o, ok := last[s.caller]; ok && s.p.Offset <= o {
				t.Fatalf("caller %d: record %d at offset %d, after one at %d", s.caller, s.seq, s.p.Offset, o)
			}
			last[s.caller] = s.p.Offset
		}
		obs.mu.Lock()
		written := obs.batches["NONE"]
		obs.mu.Unlock()
		if written != callers*calls*2 {
			t.Fatalf("the Observer saw batches of %d records written, want %d", written, callers*calls*2)
		}
		if n := twice.Load(); n > 0 {
			t.Fatalf("%d Produce requests carried a partition twice", n)
		}
		if produces != nil {
			if n := produces(); n > callers*calls/4 {
				t.Fatalf("%d Produce requests for %d calls: the callers' records were not batched", n, callers*calls)
			}
			t.Logf("%d Produce requests for %d calls", produces(), callers*calls)
		}
	})
}

// TestProduceCodecs: records produced with every codec, with null and
// empty keys and values, read back by franz-go and by kcat (librdkafka)
// value by value.
func TestProduceCodecs(t *testing.T) { kafkatest.Each(t, testProduceCodecs) }

func testProduceCodecs(t *testing.T, k *kafkatest.Kafka) {
	for _, codec := range []string{"none", "gzip", "snappy", "lz4", "zstd"} {
		t.Run(codec, func(t *testing.T) {
			topic := k.Topic(t, "codec-"+codec, 1)
			c := newClient(t, Config{Brokers: k.Brokers, ProduceCodec: codec})
			var recs []record.Record
			for i := range 200 {
				r := record.Record{Value: []byte(strings.Repeat("v"+strconv.Itoa(i), 10))}
				switch i % 4 {
				case 1:
					r.Key = []byte{}
				case 2:
					r.Key, r.Value = []byte("k"+strconv.Itoa(i)), nil
				case 3:
					r.Value = []byte{}
				}
				recs = append(recs, r)
			}
			out := produceWait(t, c, topic, 0, AcksAll, recs)
			for i, p := range out {
				if p.Err != nil || p.Offset != int64(i) {
					t.Fatalf("record %d: %+v", i, p)
				}
			}
			got := readAll(t, k, topic, len(recs))[0]
			for i, r := range got {
				w := recs[i]
				if string(r.Value) != string(w.Value) || (r.Value == nil) != (w.Value == nil) ||
					string(r.Key) != string(w.Key) || (r.Key == nil) != (w.Key == nil) {
					t.Fatalf("record %d: key %q value %q, want %q %q", i, r.Key, r.Value, w.Key, w.Value)
				}
			}
			// librdkafka reads them too: key and value lengths (-1 for
			// null) and the value, record by record.
			if _, err := exec.LookPath("kcat"); err != nil {
				t.Skip("kcat not on PATH")
			}
			kc, err := exec.Command("kcat", "-C", "-b", k.Brokers[0], "-t", topic, "-p", "0", "-o", "beginning", "-e", "-q",
				"-f", "%K %S %s\n").CombinedOutput()
			if err != nil {
				t.Fatalf("kcat: %v\n%s", err, kc)
			}
			lines := strings.Split(strings.TrimSuffix(string(kc), "\n"), "\n")
			if len(lines) != len(recs) {
				t.Fatalf("kcat read %d records, want %d:\n%s", len(lines), len(recs), kc)
			}
			size := func(b []byte) int {
				if b == nil {
					return -1
				}
				return len(b)
			}
			for i, w := range recs {
				if want := fmt.Sprintf("%d %d %s", size(w.Key), size(w.Value), w.Value); lines[i] != want {
					t.Fatalf("kcat record %d: %q, want %q", i, lines[i], want)
				}
			}
		})
	}
}

// TestProduceAcks: AcksLeader answers offsets, AcksNone answers -1 once
// sent, and the records of both are in the topic.
func TestProduceAcks(t *testing.T) {
	kafkatest.Each(t, func(t *testing.T, k *kafkatest.Kafka) {
		topic := k.Topic(t, "produce-acks", 1)
		c := newClient(t, Config{Brokers: k.Brokers})
		out := produceWait(t, c, topic, 0, AcksLeader, []record.Record{{Value: []byte("leader")}})
		if out[0].Err != nil || out[0].Offset != 0 {
			t.Fatalf("acks leader: %+v", out[0])
		}
		out = produceWait(t, c, topic, 0, AcksNone, []record.Record{{Value: []byte("none")}})
		if out[0].Err != nil || out[0].Offset != -1 {
			t.Fatalf("acks none: %+v", out[0])
		}
		got := readAll(t, k, topic, 2)[0]
		if string(got[0].Value) != "leader" || string(got[1].Value) != "none" {
			t.Fatalf("topic holds %q %q", got[0].Value, got[1].Value)
		}
	})
}

// TestProduceRefused: a record over the batch cap, an unknown topic or
// partition and brokers that are down end in errors, within the deadline.
func TestProduceRefused(t *testing.T) {
	k := kafkatest.Fake(t, 1)
	topic := k.Topic(t, "produce-refused", 2)
	c := newClient(t, Config{Brokers: k.Brokers, ProduceBatchBytes: 4 << 10})
	var ke *Error
	out := produceWait(t, c, topic, 0, AcksAll, []record.Record{{Value: make([]byte, 5<<10)}})
	if !errors.As(out[0].Err, &ke) || ke.Code != wire.ErrMessageTooLarge {
		t.Fatalf("a record over the batch cap: %v", out[0].Err)
	}
	out = produceWait(t, c, "no-such-topic", -1, AcksAll, []record.Record{{Value: []byte("x")}})
	if !errors.Is(out[0].Err, ErrUnknownTopic) {
		t.Fatalf("an unknown topic: %v", out[0].Err)
	}
	out = produceWait(t, c, topic, 7, AcksAll, []record.Record{{Value: []byte("x")}})
	if !errors.Is(out[0].Err, ErrUnknownPartition) {
		t.Fatalf("an unknown partition: %v", out[0].Err)
	}

	down := newClient(t, Config{Brokers: []string{deadAddr(t)}, RequestTimeout: 2 * time.Second})
	start := time.Now()
	out = produceWait(t, down, topic, 0, AcksAll, []record.Record{{Value: []byte("x")}})
	if out[0].Err == nil {
		t.Fatal("a produce to brokers that are down succeeded")
	}
	if waited := time.Since(start); waited > 10*time.Second {
		t.Fatalf("a produce to brokers that are down failed after %s (request timeout 2s)", waited)
	}
	t.Logf("brokers down: %v", out[0].Err)
}

// TestProduceNewProducerID: an idempotent batch that fails for good
// leaves a gap in its partition's sequence numbers; the producer gives
// its ID up and asks for a new one, so that the next records are written
// (not refused as out of order).
func TestProduceNewProducerID(t *testing.T) {
	k := kafkatest.Fake(t, 1)
	topic := k.Topic(t, "produce-new-id", 1)
	inits := countRequests(k.Fake, wire.KeyInitProducerID)
	c := newClient(t, Config{Brokers: k.Brokers})
	if out := produceWait(t, c, topic, 0, AcksAll, []record.Record{{Value: []byte("a")}}); out[0].Err != nil {
		t.Fatal(out[0].Err)
	}
	k.Fake.ControlKey(wire.KeyProduce, func(req kmsg.Request) (kmsg.Response, error, bool) {
		return produceErrorResponse(req, kerr.InvalidRecord.Code), nil, true // once
	})
	var ke *Error
	if out := produceWait(t, c, topic, 0, AcksAll, []record.Record{{Value: []byte("b")}}); !errors.As(out[0].Err, &ke) || ke.Code != wire.ErrInvalidRecord {
		t.Fatalf("a batch refused for good: %v", out[0].Err)
	}
	for _, v := range []string{"c", "d"} {
		if out := produceWait(t, c, topic, 0, AcksAll, []record.Record{{Value: []byte(v)}}); out[0].Err != nil {
			t.Fatalf("record %s after the refused batch: %v", v, out[0].Err)
		}
	}
	if n := inits.Load(); n != 2 {
		t.Fatalf("%d InitProducerId requests, want 2 (one after the refused batch)", n)
	}
	got := readAll(t, k, topic, 3)[0]
	if string(got[0].Value) != "a" || string(got[1].Value) != "c" || string(got[2].Value) != "d" {
		t.Fatalf("the partition holds %q %q %q", got[0].Value, got[1].Value, got[2].Value)
	}
}

// produceErrorResponse answers a Produce request with code for every
// partition.
func produceErrorResponse(req kmsg.Request, code int16) kmsg.Response {
	pr := req.(*kmsg.ProduceRequest)
	resp := pr.ResponseKind().(*kmsg.ProduceResponse)
	for _, t := range pr.Topics {
		rt := kmsg.NewProduceResponseTopic()
		rt.Topic, rt.TopicID = t.Topic, t.TopicID
		for _, p := range t.Partitions {
			rp := kmsg.NewProduceResponseTopicPartition()
			rp.Partition, rp.ErrorCode = p.Partition, code
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp
}
