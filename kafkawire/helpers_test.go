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

	"github.com/kafkaedge/kafkaedge/kafkawire/record"
)

// testCluster is a kfake cluster whose listeners count accepted connections.
type testCluster struct {
	*kfake.Cluster
	addrs   []string
	accepts atomic.Int64
}

type countingListener struct {
	net.Listener
	n *atomic.Int64
}

func (l countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.n.Add(1)
	}
	return c, err
}

// newCluster starts a 3-broker kfake cluster on loopback.
func newCluster(t *testing.T, opts ...kfake.Opt) *testCluster {
	t.Helper()
	tc := &testCluster{}
	opts = append([]kfake.Opt{
		kfake.NumBrokers(3),
		kfake.ListenFn(func(network, addr string) (net.Listener, error) {
			l, err := net.Listen(network, addr)
			if err != nil {
				return nil, err
			}
			return countingListener{l, &tc.accepts}, nil
		}),
	}, opts...)
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		t.Fatalf("start kfake: %v", err)
	}
	t.Cleanup(c.Close)
	tc.Cluster = c
	tc.addrs = c.ListenAddrs()
	return tc
}

// moveOff moves every partition of topic off node (round robin over the
// other brokers), so that the leaders are not the bootstrap broker.
func (tc *testCluster) moveOff(t *testing.T, topic string, partitions int32, node int32) {
	t.Helper()
	others := []int32{}
	for i := range int32(len(tc.addrs)) {
		if i != node {
			others = append(others, i)
		}
	}
	for p := range partitions {
		if err := tc.MoveTopicPartition(topic, p, others[int(p)%len(others)]); err != nil {
			t.Fatalf("move %s/%d: %v", topic, p, err)
		}
	}
}

// countKey counts the requests of one API key the cluster receives.
func (tc *testCluster) countKey(key int16) *atomic.Int64 {
	var n atomic.Int64
	tc.ControlKey(key, func(kmsg.Request) (kmsg.Response, error, bool) {
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

// produce writes recs with kgo (a real, independent client) and waits.
func produce(t *testing.T, addrs []string, extra []kgo.Opt, recs ...*kgo.Record) {
	t.Helper()
	opts := append([]kgo.Opt{
		kgo.SeedBrokers(addrs...),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerLinger(0),
	}, extra...)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatalf("kgo client: %v", err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatalf("kgo produce: %v", err)
	}
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
