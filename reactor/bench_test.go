package reactor

import (
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/kafkaedge/kafkaedge/internal/wsclient"
	"github.com/kafkaedge/kafkaedge/proto/pubsub"
)

// BenchmarkFetchEncode compares the hot path (append encoders into a reused
// buffer) with building generated structs and calling proto.Marshal, for a
// fetch of 100 messages of 200 bytes.
func BenchmarkFetchEncode(b *testing.B) {
	recs := testRecords(100, 200)
	b.Run("append", func(b *testing.B) {
		b.ReportAllocs()
		var body, hdr []byte
		for b.Loop() {
			body, _, _ = appendFetchBody(body[:0], recs, 0, 32<<20, false)
			hdr = appendRespHeaderFrame(hdr[:0], 42, pubsub.FieldKafkaFetchResp, len(body))
		}
		b.SetBytes(int64(len(body) + len(hdr)))
	})
	b.Run("generated", func(b *testing.B) {
		b.ReportAllocs()
		var n int
		for b.Loop() {
			out, err := proto.Marshal(generatedFetch(42, recs))
			if err != nil {
				b.Fatal(err)
			}
			n = len(out)
		}
		b.SetBytes(int64(n))
	})
}

// BenchmarkRequestPath measures a ping round trip through the real server
// with the tests' client (internal/wsclient) sending and receiving raw
// frames; allocs/op counts the whole process (client and server) per
// request.
func BenchmarkRequestPath(b *testing.B) {
	s := startServer(b, Config{Loops: 1}, deadRoute("/kafka"))
	c := dialWS(b, s, "/kafka")
	req, err := proto.Marshal(pingReq(7, "state"))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := c.SendRaw(wsclient.BinaryMessage, req); err != nil {
			b.Fatal(err)
		}
		resp, err := c.RecvRaw()
		if err != nil {
			b.Fatal(err)
		}
		if len(resp) == 0 {
			b.Fatal("empty response")
		}
	}
}

// BenchmarkLightLoad measures the latency of ListOffset(-1) at light load
// with as many event loops as GOMAXPROCS: 4 clients (two per loop with the
// default 2 loops of the tests' machine), one request in flight each, at a
// fixed total of 500 requests per second, so that the loops sleep in
// epoll_wait between requests. Latency counts from the time each request
// was due, or from the client's wake-up if it slept; p50-us and p99-us are
// reported. This is the load under which answers waited milliseconds while
// the loops held every P (docs/architecture.md, "The event loops and the Go
// scheduler").
func BenchmarkLightLoad(b *testing.B) {
	const clients, rate = 4, 500
	k := newKafka(b, 1, "t")
	produce(b, k, "t", 0, 10, 0)
	s := startServer(b, Config{Loops: runtime.GOMAXPROCS(0)}, kafkaRoute("/kafka", k))
	cs := make([]*wsClient, clients)
	for i := range cs {
		cs[i] = dialWS(b, s, "/kafka")
		cs[i].roundTrip(listReq(0, "t", 0, -1)) // connect to the broker, learn the topic
	}
	interval := time.Second * clients / rate
	lat := make([][]time.Duration, clients)
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now().Add(interval)
	for i, c := range cs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			due := start.Add(interval * time.Duration(i) / clients)
			for n := i; n < b.N; n += clients {
				sent := due // behind: charged from when the request was due
				if w := time.Until(due); w > 0 {
					time.Sleep(w)
					sent = time.Now() // the timer's own slack (up to 1 ms) is not the server's
				}
				resp := c.roundTrip(listReq(int64(n), "t", 0, -1))
				lat[i] = append(lat[i], time.Since(sent))
				if resp.GetKafkaListOffsetResp().GetOffset() != 10 {
					b.Errorf("request %d: %v", n, resp)
					return
				}
				due = due.Add(interval)
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	all := slices.Concat(lat...)
	if len(all) == 0 {
		return
	}
	slices.Sort(all)
	at := func(q float64) float64 { return float64(all[int(q*float64(len(all)-1))].Microseconds()) }
	b.ReportMetric(at(0.50), "p50-us")
	b.ReportMetric(at(0.99), "p99-us")
}
