package telemetry

import (
	"context"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/kafkaedge/kafkaedge/kafkawire"
	"github.com/kafkaedge/kafkaedge/reactor"
)

// TestLoopEventsDoNotAllocate: the events the event loops report cost no
// allocation once a route's counters exist.
func TestLoopEventsDoNotAllocate(t *testing.T) {
	m := New(false)
	m.Upgrade("/r", 101) // creates the route's counters
	allocs := testing.AllocsPerRun(1000, func() {
		m.Upgrade("/r", 101)
		m.Request(reactor.CmdFetch, true, time.Millisecond)
		m.Delivered("/r", "topic", 1024, 10)
		m.FetchCoalesced()
		m.ListOffsetCoalesced()
		m.Backpressure(reactor.BackpressurePaused)
		m.FrameRejected(reactor.FrameText)
		m.ConnRejected(reactor.RejectMaxConns)
		m.ConnClosed("/r", reactor.CloseInfo{Code: 1001})
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per round of loop events, want 0", allocs)
	}
}

func BenchmarkLoopEvents(b *testing.B) {
	m := New(false)
	m.Upgrade("/r", 101)
	b.ReportAllocs()
	for b.Loop() {
		m.Request(reactor.CmdFetch, true, time.Millisecond)
		m.Delivered("/r", "topic", 1024, 10)
	}
}

// deadBrokers returns n loopback addresses of brokers that never answer:
// listeners, held until the test ends, that close every connection at
// once. (Ports closed at once are free for any other process of a
// parallel go test to take, such as a broker of another package's test,
// which then answers the Metadata request so that the Client stops
// dialing the rest: the likely cause of run 5 of make stress-test at
// 46990b1, and of one run by hand, that saw 208 and 329 of the 1000.)
func deadBrokers(t *testing.T, n int) []string {
	t.Helper()
	addrs := make([]string, n)
	for i := range addrs {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close() })
		addrs[i] = l.Addr().String()
		go func() {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				c.Close()
			}
		}()
	}
	return addrs
}

// brokerSeries counts the series of each broker label value.
func brokerSeries(t *testing.T, m *Metrics) map[string]int {
	t.Helper()
	return labelSeries(t, m, "broker")
}

// labelSeries counts the series of each value of label.
func labelSeries(t *testing.T, m *Metrics, label string) map[string]int {
	t.Helper()
	mfs, err := m.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	n := map[string]int{}
	for _, mf := range mfs {
		for _, metric := range mf.GetMetric() {
			for _, l := range metric.GetLabel() {
				if l.GetName() == label {
					n[l.GetValue()]++
				}
			}
		}
	}
	return n
}

// TestBrokerSeriesDeleted: the series of a broker address are deleted once
// no Client uses it any more, so that routes put and deleted do not leave
// series behind; a broker shared by two Clients keeps them until the
// second lets it go.
func TestBrokerSeriesDeleted(t *testing.T) {
	m := New(false)
	newClient := func(brokers []string, id string) *kafkawire.Client {
		t.Helper()
		c, err := kafkawire.New(kafkawire.Config{Brokers: brokers, ClientID: id, Observer: m, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		// A context of its own: one shared with the 1,000-broker rounds
		// could end before this call on a loaded machine, which would then
		// fail without dialing and leave no series to count.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := c.ListOffset(ctx, "t", 0, -1); err == nil {
			t.Fatal("ListOffset with no broker up succeeded")
		} else if ctx.Err() != nil {
			t.Fatalf("ListOffset with no broker up did not fail within 30 s: %v", err)
		}
		return c
	}

	// A route of 1,000 nodes, put, used and deleted, three times.
	brokers := deadBrokers(t, 1000)
	for range 3 {
		c := newClient(brokers, "route")
		if n := len(brokerSeries(t, m)); n != len(brokers) {
			t.Fatalf("series of %d brokers, want %d", n, len(brokers))
		}
		c.Close()
		if n := brokerSeries(t, m); len(n) != 0 {
			t.Fatalf("after Close, series of %d brokers are left", len(n))
		}
	}

	// Two Clients share a broker: its series stay until both let it go.
	shared := deadBrokers(t, 1)
	a, b := newClient(shared, "a"), newClient(shared, "b")
	before := brokerSeries(t, m)[shared[0]]
	a.Close()
	if n := brokerSeries(t, m)[shared[0]]; n == 0 || n != before {
		t.Fatalf("after one of two Clients closed, %d series of the shared broker, want %d", n, before)
	}
	b.Close()
	if n := brokerSeries(t, m); len(n) != 0 {
		t.Fatalf("after both Clients closed: %v", n)
	}

	// Every metric with a broker label, as the events of two Clients set
	// them: a broker's series go with its last user, another's stay.
	for _, addr := range []string{"b:1", "b:1", "c:1"} {
		m.BrokerUsed(addr)
		m.BrokerConn(addr, kafkawire.ConnDialing)
		m.BrokerConn(addr, kafkawire.ConnUp)
		m.KafkaRequest("ApiVersions", addr, "NONE", time.Millisecond)
		m.KafkaRequest("Fetch", addr, "OFFSET_OUT_OF_RANGE", time.Millisecond)
		m.BrokerConn(addr, kafkawire.ConnClosed)
	}
	m.BrokerConn("b:1", kafkawire.ConnDialing)
	m.BrokerConn("b:1", kafkawire.ConnDialFailed)
	if n := brokerSeries(t, m); n["b:1"] != 8 || n["c:1"] != 7 {
		t.Fatalf("series by broker %v, want b:1 8 (2 requests, 2 states, 4 events), c:1 7", n)
	}
	m.BrokerUnused("b:1")
	if n := brokerSeries(t, m); n["b:1"] != 8 {
		t.Fatalf("after one of two users let b:1 go: %v", n)
	}
	m.BrokerUnused("b:1")
	if n := brokerSeries(t, m); n["b:1"] != 0 || n["c:1"] != 7 {
		t.Fatalf("after both users let b:1 go: %v, want c:1's 7 only", n)
	}
}

// TestRouteSeriesDeleted: RouteRemoved deletes every series of the route's
// label value, and only those; a route added again starts from zero.
func TestRouteSeriesDeleted(t *testing.T) {
	for _, topicLabels := range []bool{false, true} {
		m := New(topicLabels)
		for _, uri := range []string{"/a", "/b"} {
			m.Upgrade(uri, 101)
			m.Upgrade(uri, 400)
			m.Delivered(uri, "t", 100, 2)
			m.ConnClosed(uri, reactor.CloseInfo{Code: 1000})
		}
		m.Upgrade("", 404)
		n := labelSeries(t, m, "route")
		if n["/a"] != n["/b"] || n["/a"] < 5 {
			t.Fatalf("topic labels %t: series by route %v, want /a and /b alike (connections, 2 upgrades, bytes, messages)", topicLabels, n)
		}
		want := n["/b"]
		m.RouteRemoved("/a")
		n = labelSeries(t, m, "route")
		if n["/a"] != 0 || n["/b"] != want || n["unmatched"] == 0 {
			t.Fatalf("topic labels %t: after RouteRemoved(/a): %v, want /a gone and /b's %d kept", topicLabels, n, want)
		}
		m.Upgrade("/a", 101)
		if got := gaugeValue(t, m, "kafkaedge_ws_connections", "route", "/a"); got != 1 {
			t.Fatalf("topic labels %t: /a added again has %v connections, want 1", topicLabels, got)
		}
	}
}

// gaugeValue returns the value of the gauge name's series with label=value.
func gaugeValue(t *testing.T, m *Metrics, name, label, value string) float64 {
	t.Helper()
	mfs, err := m.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, metric := range mf.GetMetric() {
			for _, l := range metric.GetLabel() {
				if l.GetName() == label && l.GetValue() == value {
					return metric.GetGauge().GetValue()
				}
			}
		}
	}
	t.Fatalf("no series %s{%s=%q}", name, label, value)
	return 0
}

// TestProduceBatch: the producer's batches count their records by
// outcome, the bytes written, retries, and fill the two histograms.
func TestProduceBatch(t *testing.T) {
	m := New(false)
	m.ProduceBatch(10, 500, 3*time.Millisecond, 1, "NONE")
	m.ProduceBatch(2, 90, time.Millisecond, 0, "NOT_ENOUGH_REPLICAS")
	mfs, err := m.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, metric := range mf.GetMetric() {
			key := mf.GetName()
			for _, l := range metric.GetLabel() {
				key += "{" + l.GetValue() + "}"
			}
			switch {
			case metric.GetCounter() != nil:
				got[key] = metric.GetCounter().GetValue()
			case metric.GetHistogram() != nil:
				got[key] = float64(metric.GetHistogram().GetSampleCount())
			}
		}
	}
	for key, want := range map[string]float64{
		"kafkaedge_kafka_produced_records_total{NONE}":                10,
		"kafkaedge_kafka_produced_records_total{NOT_ENOUGH_REPLICAS}": 2,
		"kafkaedge_kafka_produced_bytes_total":                        500,
		"kafkaedge_kafka_produce_retries_total":                       1,
		"kafkaedge_kafka_produce_batch_records":                       2,
		"kafkaedge_kafka_produce_batch_wait_seconds":                  2,
	} {
		if got[key] != want {
			t.Errorf("%s = %v, want %v", key, got[key], want)
		}
	}
}
