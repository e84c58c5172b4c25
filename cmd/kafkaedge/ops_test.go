package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kafkaedge/kafkaedge/cmd/kafkaedge/internal/ops"
	"github.com/kafkaedge/kafkaedge/internal/kafkatest"
	"github.com/kafkaedge/kafkaedge/internal/wsclient"
	"github.com/kafkaedge/kafkaedge/proto/pubsub"
)

// scrape fetches and parses /metrics of p.
func scrape(t *testing.T, p *proc) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get("http://" + p.metrics + "/metrics")
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET /metrics: status %d", resp.StatusCode)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return fams
}

// metricSum sums the series of family name whose labels include want (a
// histogram counts its observations). A family that is absent sums to -1.
func metricSum(fams map[string]*dto.MetricFamily, name string, want map[string]string) float64 {
	f, ok := fams[name]
	if !ok {
		return -1
	}
	sum := 0.0
	for _, m := range f.GetMetric() {
		labels := make(map[string]string)
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		match := true
		for k, v := range want {
			if labels[k] != v {
				match = false
			}
		}
		if !match {
			continue
		}
		switch {
		case m.Counter != nil:
			sum += m.GetCounter().GetValue()
		case m.Gauge != nil:
			sum += m.GetGauge().GetValue()
		case m.Histogram != nil:
			sum += float64(m.GetHistogram().GetSampleCount())
		}
	}
	return sum
}

// waitFor polls cond until it holds or 30 s pass.
func waitFor(t *testing.T, p *proc, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s; stderr:\n%s", what, p.stderr)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// getMetricsPath returns the status and body of a GET on the metrics listener.
func (p *proc) getMetricsPath(path string) (int, []byte) {
	resp, err := http.Get("http://" + p.metrics + path)
	if err != nil {
		return 0, nil
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// leaderOf is the host:port of the leader of topic/partition.
func leaderOf(t *testing.T, k *kafkatest.Kafka, topic string, partition int32) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	md, err := k.Admin(t).Metadata(ctx, topic)
	if err != nil {
		t.Fatalf("metadata of %s: %v", topic, err)
	}
	p, ok := md.Topics[topic].Partitions[partition]
	if !ok {
		t.Fatalf("metadata of %s has no partition %d", topic, partition)
	}
	for _, b := range md.Brokers {
		if b.NodeID == p.Leader {
			return net.JoinHostPort(b.Host, strconv.Itoa(int(b.Port)))
		}
	}
	t.Fatalf("leader %d of %s/%d is not among the brokers %v", p.Leader, topic, partition, md.Brokers)
	return ""
}

func TestMetricsAfterTraffic(t *testing.T) {
	t.Parallel()
	kafkatest.Each(t, testMetricsAfterTraffic)
}

func testMetricsAfterTraffic(t *testing.T, k *kafkatest.Kafka) {
	topic := k.Topic(t, "metered", 1)
	recs := make([]*kgo.Record, 5)
	for i := range recs {
		// Compressible values: franz-go sends a batch uncompressed when
		// compression does not make it smaller.
		recs[i] = &kgo.Record{Topic: topic, Partition: 0, Value: []byte(strconv.Itoa(i) + strings.Repeat(" compressible", 100))}
	}
	k.Produce(t, produceOpts(kgo.ProducerBatchCompression(kgo.GzipCompression())), recs...)
	leader := leaderOf(t, k, topic, 0)
	// -fetch-min-bytes 1: a fetch at the end of the partition waits at the
	// broker for -fetch-max-wait, so that the tailing fetches below are in
	// flight together (with the default 0 it is answered at once, and
	// whether another fetch joins it is a race).
	p := start(t, "-route", "/m="+k.Brokers[0], "-max-inflight", "2", "-fetch-max-wait", "1s", "-fetch-min-bytes", "1")
	before := scrape(t, p)
	if v := metricSum(before, "kafkaedge_ws_connections", map[string]string{"route": "/m"}); v > 0 {
		t.Fatalf("connections before any client: %v", v)
	}
	// kafkaedge_route_ready is set by the first readiness probe.
	waitClusterReady(t, p, 1)

	c := dial(t, p, "/m")
	c.call(t, wsclient.PingReq(0, []byte("s")))
	if hw := c.listOffset(t, topic, 0, -1); hw != 5 {
		t.Fatalf("high watermark %d, want 5", hw)
	}
	if msgs := c.fetch(t, topic, 0, 0); len(msgs) != 5 {
		t.Fatalf("fetched %d messages, want 5", len(msgs))
	}
	c.call(t, &pubsub.PubSubReq{Req: &pubsub.PubSubReq_CmdEmpty{CmdEmpty: &pubsub.CmdEmpty{}}})
	if err := c.SendRaw(wsclient.TextMessage, []byte("skipped")); err != nil {
		t.Fatal(err)
	}
	// Ten pipelined requests against -max-inflight 2 pause the reading.
	// They go out in one write, so that they are in kafkaedge's input
	// together: sent one by one, each could be answered before the next
	// arrives, and the cap never reached.
	pipelined := make([]*pubsub.PubSubReq, 10)
	for i := range pipelined {
		pipelined[i] = wsclient.ListOffsetReq(0, topic, 0, -2)
	}
	c.sendTogether(t, pipelined...)
	for range 10 {
		c.recv(t)
	}
	// A request for a path without a route.
	expectRefused(t, p, "/nowhere", http.StatusNotFound)
	// Ten clients waiting at the end of the partition share one fetch.
	var wg sync.WaitGroup
	tails := make([]*wsClient, 10)
	for i := range tails {
		tails[i] = dial(t, p, "/m")
	}
	for _, w := range tails {
		w.send(t, wsclient.FetchReq(0, topic, 0, 5))
	}
	for _, w := range tails {
		wg.Go(func() {
			w.SetReadDeadline(time.Now().Add(15 * time.Second))
			if _, err := w.RecvRaw(); err != nil {
				t.Errorf("tailing fetch: %v", err)
			}
		})
	}
	wg.Wait()

	// An answer is counted (requests, latency, bytes, messages) by the
	// write callback that runs on its loop just after the bytes went to
	// the socket: a client may read the answer before it is counted. Wait
	// until every answer read above is.
	waitFor(t, p, "the answers to be counted", func() bool {
		m := scrape(t, p)
		return metricSum(m, "kafkaedge_requests_total", map[string]string{"command": "fetch"}) >= 11 &&
			metricSum(m, "kafkaedge_requests_total", map[string]string{"command": "list_offset"}) >= 11
	})
	m := scrape(t, p)
	checks := []struct {
		name   string
		labels map[string]string
		min    float64
	}{
		{"kafkaedge_ws_connections", map[string]string{"route": "/m"}, 11},
		{"kafkaedge_ws_upgrades_total", map[string]string{"route": "/m", "result": "ok"}, 11},
		{"kafkaedge_ws_upgrades_total", map[string]string{"route": "unmatched", "result": "not_found"}, 1},
		{"kafkaedge_requests_total", map[string]string{"command": "ping", "result": "ok"}, 1},
		{"kafkaedge_requests_total", map[string]string{"command": "list_offset", "result": "ok"}, 11},
		{"kafkaedge_requests_total", map[string]string{"command": "fetch", "result": "ok"}, 11},
		{"kafkaedge_requests_total", map[string]string{"command": "unknown", "result": "error"}, 1},
		{"kafkaedge_request_duration_seconds", map[string]string{"command": "fetch"}, 11},
		{"kafkaedge_delivered_bytes_total", map[string]string{"route": "/m"}, 100},
		{"kafkaedge_delivered_messages_total", map[string]string{"route": "/m"}, 5},
		{"kafkaedge_kafka_requests_total", map[string]string{"api": "Fetch", "broker": leader, "outcome": "NONE"}, 1},
		{"kafkaedge_kafka_requests_total", map[string]string{"api": "ListOffsets", "outcome": "NONE"}, 1},
		{"kafkaedge_kafka_request_duration_seconds", map[string]string{"api": "Fetch"}, 1},
		{"kafkaedge_kafka_broker_connections", map[string]string{"state": "up"}, 1},
		{"kafkaedge_kafka_broker_connection_events_total", map[string]string{"event": "up"}, 1},
		{"kafkaedge_kafka_metadata_refreshes_total", map[string]string{"result": "ok"}, 1},
		{"kafkaedge_kafka_decompressed_batches_total", map[string]string{"codec": "gzip"}, 1},
		{"kafkaedge_kafka_decompressed_in_bytes_total", map[string]string{"codec": "gzip"}, 1},
		{"kafkaedge_kafka_decompressed_out_bytes_total", map[string]string{"codec": "gzip"}, 1},
		{"kafkaedge_fetch_coalesced_total", nil, 1},
		{"kafkaedge_backpressure_events_total", map[string]string{"event": "inflight_cap"}, 1},
		{"kafkaedge_rejected_frames_total", map[string]string{"reason": "text"}, 1},
		{"kafkaedge_connections", nil, 11},
		{"kafkaedge_routes", nil, 1},
		{"kafkaedge_route_ready", map[string]string{"route": "/m"}, 1},
		{"kafkaedge_build_info", nil, 1},
	}
	for _, c := range checks {
		if v := metricSum(m, c.name, c.labels); v < c.min {
			t.Errorf("%s%v = %v, want at least %v", c.name, c.labels, v, c.min)
		}
	}
	if v := metricSum(m, "kafkaedge_delivered_messages_total", map[string]string{"route": "/m"}); v != 5 {
		t.Errorf("delivered messages %v, want 5 (the tailing fetches returned none)", v)
	}
	if dec, raw := metricSum(m, "kafkaedge_kafka_decompressed_out_bytes_total", nil), metricSum(m, "kafkaedge_kafka_decompressed_in_bytes_total", nil); dec <= 0 || raw <= 0 {
		t.Errorf("decompressed bytes in %v out %v", raw, dec)
	}

	// The counters move with more traffic, and a close is counted and logged.
	c.fetch(t, topic, 0, 2)
	if err := c.SendClose(wsclient.CloseNormalClosure, ""); err != nil {
		t.Fatal(err)
	}
	c.expectClose(t, wsclient.CloseNormalClosure, "after close, the close echoed")
	waitFor(t, p, "the close to be counted", func() bool {
		return metricSum(scrape(t, p), "kafkaedge_ws_closes_total", map[string]string{"code": "1000"}) >= 1
	})
	after := scrape(t, p)
	if a, b := metricSum(after, "kafkaedge_requests_total", map[string]string{"command": "fetch"}), metricSum(m, "kafkaedge_requests_total", map[string]string{"command": "fetch"}); a != b+1 {
		t.Errorf("fetch requests %v after one more fetch, want %v", a, b+1)
	}
	if a, b := metricSum(after, "kafkaedge_delivered_messages_total", nil), metricSum(m, "kafkaedge_delivered_messages_total", nil); a != b+3 {
		t.Errorf("delivered messages %v after fetching 3 more, want %v", a, b+3)
	}
	if v := metricSum(after, "kafkaedge_ws_connections", map[string]string{"route": "/m"}); v != 10 {
		t.Errorf("open connections %v after one closed, want 10", v)
	}
	closeLine := regexp.MustCompile(`msg="connection closed" .*route=/m duration=\S+ requests=15 bytes_out=\d+ messages=8 code=1000 reason="client closed"`)
	waitFor(t, p, "the connection close log line", func() bool { return closeLine.MatchString(p.stderr.String()) })
}

func TestMetricsTopicLabels(t *testing.T) {
	t.Parallel()
	kc := fake(t, "labelled")
	produce(t, kc, "labelled", "a", "b")
	p := start(t, "-route", "/l="+kc.Brokers[0], "-metrics-topic-labels", "-log-format", "json")
	c := dial(t, p, "/l")
	c.fetch(t, "labelled", 0, 0)
	waitFor(t, p, "messages by topic", func() bool {
		return metricSum(scrape(t, p), "kafkaedge_delivered_messages_total", map[string]string{"route": "/l", "topic": "labelled"}) == 2
	})
	// -log-format json: every line of the log is a JSON object.
	for line := range strings.SplitSeq(strings.TrimSpace(p.stderr.String()), "\n") {
		var v map[string]any
		if err := json.Unmarshal([]byte(line), &v); err != nil {
			t.Fatalf("log line is not JSON: %q", line)
		}
	}
}

// readyz returns the status and decoded body of /readyz.
func readyz(t *testing.T, p *proc) (int, ops.Report) {
	t.Helper()
	status, b := p.getMetricsPath("/readyz")
	var rep ops.Report
	if status != 0 {
		if err := json.Unmarshal(b, &rep); err != nil {
			t.Fatalf("/readyz body %q: %v", b, err)
		}
	}
	return status, rep
}

func TestReadyz(t *testing.T) {
	t.Parallel()
	c1, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "r"))
	if err != nil {
		t.Fatal(err)
	}
	addr := c1.ListenAddrs()[0]
	_, portStr, _ := net.SplitHostPort(addr)
	port, _ := strconv.Atoi(portStr)
	p := start(t, "-route", "/r="+addr)

	if status, b := p.getMetricsPath("/healthz"); status != 200 || string(b) != "ok\n" {
		t.Fatalf("/healthz: %d %q", status, b)
	}
	waitFor(t, p, "ready with the cluster up", func() bool {
		status, rep := readyz(t, p)
		return status == 200 && rep.Ready && rep.Routes == 1 && rep.Listeners["websocket"] && rep.Listeners["admin"]
	})

	c1.Close()
	var down ops.Report
	waitFor(t, p, "unready with the brokers gone", func() bool {
		status, rep := readyz(t, p)
		down = rep
		return status == 503 && !rep.Ready
	})
	if len(down.Degraded) != 1 || down.Degraded[0].URI != "/r" || down.Degraded[0].Error == "" {
		t.Fatalf("degraded routes: %+v", down.Degraded)
	}
	if v := metricSum(scrape(t, p), "kafkaedge_route_ready", map[string]string{"route": "/r"}); v != 0 {
		t.Fatalf("kafkaedge_route_ready with the brokers gone: %v", v)
	}
	if status, _ := p.getMetricsPath("/healthz"); status != 200 {
		t.Fatalf("/healthz while degraded: %d, want 200 (the process is alive)", status)
	}

	// The brokers come back on the same port.
	var c2 *kfake.Cluster
	waitFor(t, p, "a new cluster on port "+portStr, func() bool {
		c2, err = kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(port), kfake.SeedTopics(1, "r"))
		return err == nil
	})
	defer c2.Close()
	waitFor(t, p, "ready again", func() bool {
		status, rep := readyz(t, p)
		return status == 200 && rep.Ready && len(rep.Degraded) == 0
	})
}

func TestDrainOnSIGTERM(t *testing.T) {
	t.Parallel()
	const (
		clients = 100
	)
	kc := fake(t, "drain")
	p := start(t, "-route", "/d="+kc.Brokers[0], "-fetch-min-bytes", "1", "-fetch-max-wait", "5s", "-drain-timeout", "15s")

	// Every client asks for offset 0 of the empty partition: with
	// -fetch-min-bytes 1 the fetch (one Kafka fetch, the other requests
	// joining it) waits at the broker for up to 5 s, so the requests are in
	// flight when the signal lands.
	conns := make([]*wsClient, clients)
	seqs := make([]int64, clients)
	for i := range conns {
		conns[i] = dial(t, p, "/d")
	}
	for i, c := range conns {
		seqs[i] = c.send(t, wsclient.FetchReq(0, "drain", 0, 0))
	}
	// And a subscriber, whose subscription the drain ends before the close.
	sub := dial(t, p, "/d")
	subSeq := sub.send(t, &pubsub.PubSubReq{Req: &pubsub.PubSubReq_CmdKafkaSubscribe{CmdKafkaSubscribe: &pubsub.CmdKafkaSubscribe{Topic: "drain"}}})
	if resp, err := sub.Recv(); err != nil || resp.GetSequence() != subSeq || resp.GetKafkaSubscribeResp() == nil {
		t.Fatalf("subscribe: %v %v", resp, err)
	}
	var last string
	waitFor(t, p, "all fetches in flight", func() bool {
		m := scrape(t, p)
		fetches, joined := metricSum(m, "kafkaedge_kafka_fetches_total", nil), metricSum(m, "kafkaedge_fetch_coalesced_total", nil)
		answered := metricSum(m, "kafkaedge_requests_total", map[string]string{"command": "fetch"})
		last = fmt.Sprintf("fetches %v coalesced %v answered %v", fetches, joined, answered)
		if answered > 0 {
			t.Fatalf("fetches answered before the signal (%s): the test needs them in flight", last)
		}
		return fetches+joined >= clients
	})
	t.Logf("at the signal: %s", last)
	p.cmd.Process.Signal(syscall.SIGTERM)

	var wg sync.WaitGroup
	for i, c := range conns {
		wg.Go(func() {
			c.SetReadDeadline(time.Now().Add(20 * time.Second))
			resp, err := c.Recv()
			if err != nil {
				t.Errorf("client %d: no answer to its fetch in flight: %v", i, err)
				return
			}
			if resp.GetSequence() != seqs[i] || resp.GetKafkaFetchResp() == nil {
				t.Errorf("client %d: answer %v, want the fetch response of sequence %d", i, resp, seqs[i])
				return
			}
			if code, err := c.RecvClose(); err != nil || code != wsclient.CloseGoingAway {
				t.Errorf("client %d: after the answer got close %d (err %v), want close 1001", i, code, err)
			}
		})
	}
	wg.Go(func() {
		sub.SetReadDeadline(time.Now().Add(20 * time.Second))
		resp, err := sub.Recv()
		if end := resp.GetKafkaSubscriptionEndResp(); err != nil || resp.GetSequence() != subSeq || end.GetReason() != "server shutting down" {
			t.Errorf("subscriber: %v (err %v), want the end of subscription %d", resp, err, subSeq)
			return
		}
		if code, err := sub.RecvClose(); err != nil || code != wsclient.CloseGoingAway {
			t.Errorf("subscriber: after the end got close %d (err %v), want close 1001", code, err)
		}
	})
	wg.Wait()
	select {
	case <-p.done:
	case <-time.After(20 * time.Second):
		t.Fatalf("kafkaedge still running 20s after SIGTERM")
	}
	if p.code != 0 {
		t.Fatalf("exit %d after drain, want 0; stderr:\n%s", p.code, p.stderr)
	}
	for _, want := range []string{`msg=draining timeout=15s`, `msg="kafkaedge stopped"`, `code=1001 reason="server shutting down"`} {
		if !strings.Contains(p.stderr.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, p.stderr)
		}
	}
}

// routeYAML is one route of a test config file.
func routeYAML(id, uri, broker string) string {
	return fmt.Sprintf("  - id: %s\n    uri: %s\n    upstream:\n      scheme: kafka\n      nodes:\n        %q: 1\n", id, uri, broker)
}

func TestReloadOnSIGHUP(t *testing.T) {
	t.Parallel()
	kc := fake(t, "live")
	produce(t, kc, "live", "m0")
	path := filepath.Join(t.TempDir(), "kafkaedge.yaml")
	write := func(body string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("routes:\n" + routeYAML("keep", "/keep", kc.Brokers[0]) + routeYAML("gone", "/gone", kc.Brokers[0]))
	p := start(t, "-config", path, "-route", "/flag="+kc.Brokers[0])
	hup := func(wantLog string, n int) {
		t.Helper()
		p.cmd.Process.Signal(syscall.SIGHUP)
		waitFor(t, p, fmt.Sprintf("%d× %q in the log", n, wantLog), func() bool {
			return strings.Count(p.stderr.String(), wantLog) >= n
		})
	}

	keep := dial(t, p, "/keep")
	if msgs := keep.fetch(t, "live", 0, 0); len(msgs) != 1 {
		t.Fatalf("keep: %d messages, want 1", len(msgs))
	}
	gone := dial(t, p, "/gone")
	gone.fetch(t, "live", 0, 0)

	const sasl = "    plugins:\n      kafka-proxy:\n        sasl: {username: edge, password: hup-s3cret}\n"
	write("routes:\n" + routeYAML("keep", "/keep", kc.Brokers[0]) + routeYAML("new", "/new", kc.Brokers[0]) +
		routeYAML("secret", "/secret", kc.Brokers[0]) + sasl)
	hup(`msg="config reloaded (routes only)"`, 1)
	if !strings.Contains(p.stderr.String(), "added=2 removed=1 changed=0 unchanged=1 failed=0") {
		t.Fatalf("reload summary missing:\n%s", p.stderr)
	}

	// The removed route's client is closed with 1001 and the URI is gone.
	gone.expectClose(t, wsclient.CloseGoingAway, "client of the removed route")
	expectRefused(t, p, "/gone", http.StatusNotFound)
	// The added route serves; the unchanged route's client keeps streaming
	// on the same connection; the -route route is untouched.
	expectData(t, p, "/new", "live", "m0")
	expectData(t, p, "/flag", "live", "m0")
	produce(t, kc, "live", "m1")
	if msgs := keep.fetch(t, "live", 0, 1); len(msgs) != 1 || string(msgs[0].Value) != "m1" {
		t.Fatalf("keep after reload: %v", msgs)
	}

	// A bad file is logged and ignored: the routes stay.
	write("routes:\n" + routeYAML("keep", "/keep", kc.Brokers[0]) + "max-conn: 3\n")
	hup(`msg="config reload failed; routes unchanged"`, 1)
	// A file route colliding with the -route route is refused as a whole.
	write("routes:\n" + routeYAML("keep", "/keep", kc.Brokers[0]) + routeYAML("dup", "/flag", kc.Brokers[0]))
	hup(`msg="config reload failed; routes unchanged"`, 2)
	expectData(t, p, "/new", "live", "m0", "m1")
	list := decode(t, p.mustDo(t, "GET", "/apisix/admin/routes", "", 200))
	if list["total"] != float64(4) {
		t.Fatalf("routes after refused reloads: %v", list)
	}
	produce(t, kc, "live", "m2")
	if msgs := keep.fetch(t, "live", 0, 2); len(msgs) != 1 || string(msgs[0].Value) != "m2" {
		t.Fatalf("keep after refused reloads: %v", msgs)
	}

	for _, secret := range []string{"hup-s3cret", testKey} {
		if strings.Contains(p.stderr.String(), secret) {
			t.Fatalf("credential %q in the log:\n%s", secret, p.stderr)
		}
	}
}

// TestFlagsDocumented checks that docs/operations.md names every flag that
// -h prints and every kafkaedge_* metric the node exports, and that the
// Grafana dashboard uses only metrics that exist.
func TestFlagsDocumented(t *testing.T) {
	t.Parallel()
	doc, err := os.ReadFile("../../docs/operations.md")
	if err != nil {
		t.Fatal(err)
	}
	code, help := runExit(t, "-h")
	if code != 0 {
		t.Fatalf("-h exit %d", code)
	}
	flagLine := regexp.MustCompile(`^  -([a-z0-9-]+)`)
	n := 0
	sc := bufio.NewScanner(strings.NewReader(help))
	for sc.Scan() {
		m := flagLine.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		n++
		if !bytes.Contains(doc, []byte("`-"+m[1]+"`")) {
			t.Errorf("flag -%s is not documented in docs/operations.md", m[1])
		}
	}
	if n < 30 {
		t.Fatalf("found only %d flags in -h:\n%s", n, help)
	}

	kc := fake(t, "doc")
	produce(t, kc, "doc", "x")
	p := start(t, "-route", "/doc="+kc.Brokers[0], "-metrics-topic-labels")
	dial(t, p, "/doc").fetch(t, "doc", 0, 0)
	// Delivery is counted when the answer's write completes, which may be
	// just after the client has read it.
	fams := scrape(t, p)
	for deadline := time.Now().Add(5 * time.Second); fams["kafkaedge_delivered_messages_total"] == nil && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
		fams = scrape(t, p)
	}
	for name := range fams {
		if strings.HasPrefix(name, "kafkaedge_") && !bytes.Contains(doc, []byte("`"+name+"`")) {
			t.Errorf("metric %s is not documented in docs/operations.md", name)
		}
	}

	raw, err := os.ReadFile("../../deploy/grafana-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatalf("grafana-dashboard.json: %v", err)
	}
	used := 0
	metricName := regexp.MustCompile(`kafkaedge_[a-z_]+`)
	for _, panel := range dash.Panels {
		for _, target := range panel.Targets {
			for _, name := range metricName.FindAllString(target.Expr, -1) {
				used++
				if _, ok := fams[strings.TrimSuffix(name, "_bucket")]; !ok {
					t.Errorf("dashboard panel %q uses %s, which kafkaedge does not export", panel.Title, name)
				}
			}
		}
	}
	if used < 20 {
		t.Fatalf("dashboard uses only %d metric references", used)
	}
}

// TestMetricsListenDisabled runs without the metrics listener.
func TestMetricsListenDisabled(t *testing.T) {
	t.Parallel()
	p := start(t, "-metrics-listen", "")
	if p.metrics != "" {
		t.Fatalf("metrics address %q with -metrics-listen ''", p.metrics)
	}
	code, stderr := runExit(t, "-metrics-listen", "nohost", "-admin-key", "k")
	if code != exitConfig || !strings.Contains(stderr, `-metrics-listen "nohost": want host:port`) {
		t.Fatalf("bad -metrics-listen: exit %d %q", code, stderr)
	}
	code, stderr = runExit(t, "-log-format", "xml")
	if code != exitConfig || !strings.Contains(stderr, `-log-format: "xml" is not text or json`) {
		t.Fatalf("bad -log-format: exit %d %q", code, stderr)
	}
}
