package kafkawire

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkaedge/kafkaedge/internal/kafkatest"
	"github.com/kafkaedge/kafkaedge/kafkawire/record"
)

// testCluster is a kfake cluster for the tests that need kfake's control
// hooks; k is the same cluster as a kafkatest.Kafka (to produce to it).
type testCluster struct {
	*kfake.Cluster
	addrs []string
	k     *kafkatest.Kafka
}

// newCluster starts a 3-broker kfake cluster on loopback.
func newCluster(t *testing.T, opts ...kfake.Opt) *testCluster {
	t.Helper()
	c, err := kfake.NewCluster(append([]kfake.Opt{kfake.NumBrokers(3)}, opts...)...)
	if err != nil {
		t.Fatalf("start kfake: %v", err)
	}
	t.Cleanup(c.Close)
	addrs := c.ListenAddrs()
	return &testCluster{Cluster: c, addrs: addrs, k: &kafkatest.Kafka{Name: "kfake", Brokers: addrs, Fake: c}}
}

// countKey counts the requests of one API key the cluster receives.
func (tc *testCluster) countKey(key int16) *atomic.Int64 { return countRequests(tc.Cluster, key) }

// countRequests counts the requests of one API key a kfake cluster receives.
func countRequests(c *kfake.Cluster, key int16) *atomic.Int64 {
	var n atomic.Int64
	c.ControlKey(key, func(kmsg.Request) (kmsg.Response, error, bool) {
		n.Add(1)
		return nil, nil, false
	})
	return &n
}

// versionsOf records the versions of the requests of one API key the
// cluster receives, in order.
func (tc *testCluster) versionsOf(key int16) func() []int16 {
	var (
		mu sync.Mutex
		vs []int16
	)
	tc.ControlKey(key, func(req kmsg.Request) (kmsg.Response, error, bool) {
		mu.Lock()
		vs = append(vs, req.GetVersion())
		mu.Unlock()
		return nil, nil, false
	})
	return func() []int16 {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(vs)
	}
}

// topics creates a topic per base name, as kafkatest's Topic does.
func topics(t *testing.T, k *kafkatest.Kafka, partitions int32, bases []string, configs ...string) []string {
	t.Helper()
	names := make([]string, len(bases))
	for i, b := range bases {
		names[i] = k.Topic(t, b, partitions, configs...)
	}
	return names
}

// topicLeaders returns the leader of each partition of topic and the
// address of each broker, as the cluster reports them.
func topicLeaders(t *testing.T, k *kafkatest.Kafka, topic string) (leaders map[int32]int32, addrs map[int32]string) {
	t.Helper()
	md, err := k.Admin(t).Metadata(testCtx(t), topic)
	if err != nil {
		t.Fatalf("metadata of %s: %v", topic, err)
	}
	leaders, addrs = map[int32]int32{}, map[int32]string{}
	for _, p := range md.Topics[topic].Partitions {
		leaders[p.Partition] = p.Leader
	}
	for _, b := range md.Brokers {
		addrs[b.NodeID] = net.JoinHostPort(b.Host, fmt.Sprint(b.Port))
	}
	return leaders, addrs
}

// bootstrapOff returns a one-broker bootstrap list for a client whose calls
// must be routed to other brokers: on kfake the partitions of topic are
// moved off broker 0 first (round robin over the others) and broker 0 is
// the bootstrap; a real cluster placed the leaders itself, and the
// bootstrap is a broker leading the fewest of them.
func bootstrapOff(t *testing.T, k *kafkatest.Kafka, topic string, partitions int32) []string {
	t.Helper()
	if k.Fake != nil {
		for p := range partitions {
			if err := k.Fake.MoveTopicPartition(topic, p, 1+p%int32(len(k.Brokers)-1)); err != nil {
				t.Fatalf("move %s/%d: %v", topic, p, err)
			}
		}
		return k.Brokers[:1]
	}
	leaders, addrs := topicLeaders(t, k, topic)
	led := map[int32]int{}
	for _, l := range leaders {
		led[l]++
	}
	best := int32(-1)
	for id := range addrs {
		if best < 0 || led[id] < led[best] || led[id] == led[best] && id < best {
			best = id
		}
	}
	return []string{addrs[best]}
}

// quietLogger discards the client's logs.
var quietLogger = slog.New(slog.DiscardHandler)

// newClient returns a Client closed at the end of the test.
func newClient(t *testing.T, cfg Config) *Client {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = quietLogger
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// testCtx is a context for one call of a test.
func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// makeRecords builds n records for partition p with distinct keys, values,
// headers and timestamps (base + i seconds).
func makeRecords(topic string, p int32, n int, base time.Time, tag string) []*kgo.Record {
	recs := make([]*kgo.Record, n)
	for i := range recs {
		r := &kgo.Record{
			Topic:     topic,
			Partition: p,
			Value:     []byte(fmt.Sprintf("%s-value-%d-%s", tag, i, bytes.Repeat([]byte{'x'}, i%17))),
			Timestamp: base.Add(time.Duration(i) * time.Second),
		}
		if i%3 != 0 {
			r.Key = []byte(fmt.Sprintf("key-%d", i))
		}
		if i%4 == 1 {
			r.Headers = []kgo.RecordHeader{{Key: "h", Value: []byte(tag)}, {Key: "n", Value: nil}}
		}
		recs[i] = r
	}
	return recs
}

// sameRecords compares fetched records with what was produced from offset
// first on.
func sameRecords(t *testing.T, got []record.Record, want []*kgo.Record, first int64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d records, want %d", len(got), len(want))
	}
	for i, g := range got {
		w := want[i]
		if g.Offset != first+int64(i) {
			t.Fatalf("record %d: offset %d, want %d", i, g.Offset, first+int64(i))
		}
		if !bytes.Equal(g.Value, w.Value) || (g.Key == nil) != (w.Key == nil) || !bytes.Equal(g.Key, w.Key) {
			t.Fatalf("record %d: key %q value %q, want key %q value %q", i, g.Key, g.Value, w.Key, w.Value)
		}
		if g.Timestamp != w.Timestamp.UnixMilli() {
			t.Fatalf("record %d: timestamp %d, want %d", i, g.Timestamp, w.Timestamp.UnixMilli())
		}
		if len(g.Headers) != len(w.Headers) {
			t.Fatalf("record %d: %d headers, want %d", i, len(g.Headers), len(w.Headers))
		}
		for j, h := range g.Headers {
			if h.Key != w.Headers[j].Key || !bytes.Equal(h.Value, w.Headers[j].Value) || (h.Value == nil) != (w.Headers[j].Value == nil) {
				t.Fatalf("record %d header %d: %q=%q, want %q=%q", i, j, h.Key, h.Value, w.Headers[j].Key, w.Headers[j].Value)
			}
		}
	}
}
