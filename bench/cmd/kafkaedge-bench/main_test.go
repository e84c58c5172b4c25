package main

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/kafkaedge/kafkaedge/internal/kraft"
)

func TestReadProcSelf(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("/proc is Linux only")
	}
	s, err := readProc(os.Getpid())
	if err != nil {
		t.Fatalf("readProc(self): %v", err)
	}
	if !s.valid || s.RSS <= 0 || s.HWM < s.RSS || s.CPU < 0 {
		t.Errorf("readProc(self) = %+v", s)
	}
	if _, err := readProc(-1); !errors.Is(err, errNoProc) {
		t.Errorf("readProc(-1) = %v, want errNoProc", err)
	}
}

func TestParseFlags(t *testing.T) {
	c, err := parseFlags(nil, io.Discard)
	if err != nil {
		t.Fatalf("defaults: %v", err)
	}
	if c.clients != 4 || c.duration != 5*time.Second || c.valueSize != 256 ||
		strings.Join(c.codecs, ",") != "none,lz4,zstd" || len(c.scenarios) != len(defaultScenarios) ||
		len(c.systems) != 3 || len(c.brokers) != 0 || c.out != "bench/results" ||
		strings.Join(c.fixedCommands, ",") != "listoffset,fetch" || !slices.Equal(c.fixedRates, []int{500, 2000}) ||
		!slices.Equal(c.fixedClients, []int{2, 5, 20}) || c.fixedDuration != 3*time.Second || c.fixedRounds != 3 ||
		c.kafka != kafkaKfake || c.kafkaVersion != kraft.Latest || c.kafkaJVM != nil || c.replication != -1 || len(c.jmx) != 0 {
		t.Errorf("defaults = %+v", c)
	}
	c, err = parseFlags([]string{"-brokers", "a:1, b:2", "-scenarios", "fetch,idle", "-systems", "conventional",
		"-kafkaedge-flags", "-loops 1", "-fixed-commands", "fetch", "-fixed-rates", "100, 300", "-fixed-clients", "1"}, io.Discard)
	if err != nil {
		t.Fatalf("flags: %v", err)
	}
	if strings.Join(c.brokers, " ") != "a:1 b:2" || strings.Join(c.scenarios, " ") != "fetch idle" ||
		strings.Join(c.kafkaedgeFlags, " ") != "-loops 1" || strings.Join(c.fixedCommands, ",") != "fetch" ||
		!slices.Equal(c.fixedRates, []int{100, 300}) || !slices.Equal(c.fixedClients, []int{1}) {
		t.Errorf("parsed = %+v", c)
	}
	c, err = parseFlags([]string{"-kafka", "real", "-kafka-version", "3.9.2", "-kafka-jvm", "-Xmx2g  -XX:+UseZGC", "-replication", "1"}, io.Discard)
	if err != nil {
		t.Fatalf("-kafka real: %v", err)
	}
	if c.kafka != kafkaReal || c.kafkaVersion != "3.9.2" || strings.Join(c.kafkaJVM, ",") != "-Xmx2g,-XX:+UseZGC" || c.replication != 1 {
		t.Errorf("-kafka real parsed = %+v", c)
	}
	if c, err = parseFlags([]string{"-brokers", "a:1,b:2", "-jmx", "a:9999,b:9999"}, io.Discard); err != nil || strings.Join(c.jmx, " ") != "a:9999 b:9999" {
		t.Errorf("-jmx: %v, %q", err, c.jmx)
	}
	for _, bad := range [][]string{
		{"-codec", "brotli"}, {"-scenarios", "nope"}, {"-systems", "apisix"}, {"-clients", "0"},
		{"-duration", "1ms"}, {"-value-size", "0"}, {"extra"}, {"-fixed-commands", "ping"}, {"-fixed-rates", "0"},
		{"-fixed-rates", "x"}, {"-fixed-clients", ""}, {"-fixed-duration", "1ms"}, {"-fixed-rounds", "0"},
		{"-fixed-duration", "1s", "-fixed-rounds", "20"}, {"-scenarios", "latency"},
		{"-kafka", "redpanda"}, {"-kafka", "real", "-brokers", "a:1"}, {"-jmx", "a:1"}, {"-replication", "0"},
		{"-broker-warmup", "-1s"},
	} {
		if _, err := parseFlags(bad, io.Discard); err == nil {
			t.Errorf("parseFlags(%q) succeeded", bad)
		}
	}
}

func TestCheckTargets(t *testing.T) {
	rs := []*Result{
		{Scenario: "fetch-none", System: sysKafkaedge, MsgsPerSec: 300, CPUSecPerGB: 1},
		{Scenario: "fetch-none", System: sysConventional, MsgsPerSec: 100, CPUSecPerGB: 4},
		{Scenario: "fetch-none", System: sysCeiling, MsgsPerSec: 400, CPUSecPerGB: -1},
		{Scenario: "fanout", System: sysKafkaedge, MsgsPerSec: 200, Requests: 1000, BrokerFetches: 100},
		{Scenario: "fanout", System: sysConventional, MsgsPerSec: 100},
		{Scenario: "idle", System: sysKafkaedge, Extra: map[string]float64{"kib_per_conn": 2}},
		{Scenario: "listoffset", System: sysKafkaedge, ReqPerSec: 10, P99Ms: 1, Error: "boom"},
		{Scenario: "listoffset", System: sysConventional, ReqPerSec: 10, P99Ms: 2},
		{Scenario: "fixed-rate/fetch/500rps/2c", System: sysKafkaedge, P50Ms: 0.3, P99Ms: 0.6},
		{Scenario: "fixed-rate/fetch/500rps/2c", System: sysConventional, P50Ms: 0.4, P99Ms: 0.5},
	}
	want := map[string]targetWant{
		"fetch-none/msgs/s kafkaedge / conventional":              {3, true},
		"fetch-none/CPU-s per GB kafkaedge / conventional":        {0.25, true},
		"fetch-none/msgs/s kafkaedge / ceiling":                   {0.75, false},
		"fanout/broker fetches / client fetches (kafkaedge)":      {0.1, false},
		"fanout/msgs/s kafkaedge / conventional":                  {2, false},
		"idle/KiB RSS per idle connection (kafkaedge)":            {2, true},
		"listoffset/req/s kafkaedge / conventional":               {-1, false},
		"listoffset/p99 kafkaedge / conventional":                 {-1, false},
		"fixed-rate/fetch/500rps/2c/p50 kafkaedge / conventional": {0.75, true},
		"fixed-rate/fetch/500rps/2c/p99 kafkaedge / conventional": {1.2, false},
	}
	wantTargets(t, rs, want)
}

// targetWant is the value and verdict a target should have.
type targetWant struct {
	value float64
	met   bool
}

// wantTargets checks checkTargets(rs) against want, by "scenario/target".
func wantTargets(t *testing.T, rs []*Result, want map[string]targetWant) {
	t.Helper()
	got := checkTargets(rs)
	if len(got) != len(want) {
		t.Fatalf("checkTargets returned %d targets, want %d: %+v", len(got), len(want), got)
	}
	for _, tc := range got {
		w, ok := want[tc.Scenario+"/"+tc.Target]
		if !ok {
			t.Errorf("unexpected target %s/%s", tc.Scenario, tc.Target)
			continue
		}
		if d := tc.Value - w.value; d > 1e-9 || d < -1e-9 || tc.Met != w.met {
			t.Errorf("%s/%s = %v met=%v, want %v met=%v", tc.Scenario, tc.Target, tc.Value, tc.Met, w.value, w.met)
		}
	}
}

func TestRenderSVG(t *testing.T) {
	rep := &report{Date: "2026-01-01T00:00:00Z", Cluster: "kfake <3>", Machine: machine{CPUs: 2, Go: "go1.26"},
		Results: []*Result{
			{Scenario: "fetch-lz4", System: sysKafkaedge, MsgsPerSec: 2e6, CPUSecPerGB: 1.5},
			{Scenario: "fetch-lz4", System: sysConventional, MsgsPerSec: 1e6, CPUSecPerGB: 3},
			{Scenario: "idle", System: sysKafkaedge, Extra: map[string]float64{"kib_per_conn": 0.9}},
		}}
	svg := renderSVG(rep)
	rects := countElements(t, svg, "rect")
	// background + legend (3) + 3 panels x (frame + measured bars).
	if want := 1 + 3 + 3 + 2 + 2 + 1; rects != want {
		t.Errorf("SVG has %d rects, want %d", rects, want)
	}
	for _, s := range []string{"fetch-lz4", "2.00M", "n/a", "kfake &lt;3&gt;"} {
		if !bytes.Contains(svg, []byte(s)) {
			t.Errorf("SVG lacks %q", s)
		}
	}
}

// readJSON decodes the JSON file at path into v.
func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// countElements checks that svg is well-formed XML and counts its
// elements called name.
func countElements(t *testing.T, svg []byte, name string) int {
	t.Helper()
	d := xml.NewDecoder(bytes.NewReader(svg))
	n := 0
	for {
		tok, err := d.Token()
		if err == io.EOF {
			return n
		}
		if err != nil {
			t.Fatalf("SVG is not well-formed XML: %v\n%s", err, svg)
		}
		if se, ok := tok.(xml.StartElement); ok && se.Name.Local == name {
			n++
		}
	}
}

// TestRunSmall runs a small suite end to end against the conventional
// server (built here) and the ceiling, on kfake, and checks its outputs.
func TestRunSmall(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the conventional server")
	}
	dir := t.TempDir()
	conv := buildConventional(t, dir)
	out := filepath.Join(dir, "results")
	rep, got, stdout := runSuite(t, out, []string{"-systems", "conventional,ceiling", "-conventional-bin", conv, "-out", out,
		"-scenarios", "fetch,fanout,listoffset,fixed-rate,idle", "-codec", "lz4", "-duration", "500ms",
		"-records", "2000", "-clients", "2", "-fanout-clients", "5", "-fanout-backlog", "500", "-fanout-rate", "100",
		"-listoffset-clients", "3", "-fixed-rates", "100", "-fixed-clients", "1,2", "-fixed-duration", "500ms", "-idle-conns", "50"})
	for _, key := range []string{"fetch-lz4/conventional", "fetch-lz4/ceiling", "fanout/conventional", "fanout/ceiling",
		"listoffset/conventional", "listoffset/ceiling", "idle/conventional",
		"fixed-rate/listoffset/100rps/1c/conventional", "fixed-rate/listoffset/100rps/2c/ceiling",
		"fixed-rate/fetch/100rps/1c/conventional", "fixed-rate/fetch/100rps/2c/ceiling"} {
		r := got[key]
		if r == nil {
			t.Errorf("no result for %s", key)
			continue
		}
		if r.Requests == 0 {
			t.Errorf("%s: no requests", key)
		}
	}
	if r := got["fetch-lz4/conventional"]; r != nil {
		if r.Messages == 0 || r.ValueBytes != r.Messages*256 || r.BrokerFetches < r.Requests {
			t.Errorf("fetch-lz4/conventional: %d msgs, %d value bytes, %d broker fetches for %d requests",
				r.Messages, r.ValueBytes, r.BrokerFetches, r.Requests)
		}
		if r.CPUSeconds < 0 || r.RSSMiB <= 0 {
			t.Errorf("fetch-lz4/conventional: server not measured: cpu %v rss %v", r.CPUSeconds, r.RSSMiB)
		}
	}
	if n := len(rep.Results); n != 2+2+2+1+2*2*2 {
		t.Errorf("%d results, want 15 (fetch, fanout, listoffset x 2 systems, idle, 4 fixed-rate points x 2)", n)
	}
	for _, key := range []string{"fixed-rate/fetch/100rps/2c/conventional", "fixed-rate/listoffset/100rps/1c/ceiling"} {
		// 100 requests/s for 0.5s: about 50, all answered.
		if r := got[key]; r != nil && (r.Requests < 40 || r.Requests > 60 || r.Errors != 0 || r.P50Ms <= 0) {
			t.Errorf("%s: %d requests, %d errors, p50 %v ms; want about 50 requests", key, r.Requests, r.Errors, r.P50Ms)
		}
	}
	if r := got["fixed-rate/fetch/100rps/2c/conventional"]; r != nil && (r.Messages == 0 || r.CPUSeconds < 0) {
		t.Errorf("fixed-rate fetch: %d messages, server CPU %v", r.Messages, r.CPUSeconds)
	}
	if r := got["idle/conventional"]; r != nil && r.Extra["conns"] != 50 {
		t.Errorf("idle held %v connections, want 50", r.Extra["conns"])
	}
	if _, ok := got["idle/ceiling"]; ok {
		t.Error("idle ran for the ceiling, which has no WebSocket")
	}
	svg, err := os.ReadFile(filepath.Join(out, "results.svg"))
	if err != nil || !bytes.HasPrefix(svg, []byte("<svg")) {
		t.Errorf("results.svg: %v", err)
	}
	md, err := os.ReadFile(filepath.Join(out, "results.md"))
	if err != nil || !bytes.Contains(md, []byte("| fetch-lz4 | conventional |")) {
		t.Errorf("results.md: %v\n%s", err, md)
	}
	if !strings.Contains(stdout, "fetch-lz4") || !strings.Contains(stdout, "targets") {
		t.Errorf("table lacks rows:\n%s", stdout)
	}
}

// buildConventional builds the conventional server into dir (skipping the
// test without the go tool).
func buildConventional(t *testing.T, dir string) string {
	return buildCmd(t, dir, "conventional", "github.com/kafkaedge/kafkaedge/bench/cmd/conventional")
}

// buildKafkaedge skips the test with -short; else it builds kafkaedge into
// a temporary directory and returns the binary and a results directory
// beside it.
func buildKafkaedge(t *testing.T) (bin, out string) {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs kafkaedge")
	}
	dir := t.TempDir()
	return buildCmd(t, dir, "kafkaedge", "github.com/kafkaedge/kafkaedge/cmd/kafkaedge"), filepath.Join(dir, "results")
}

// buildCmd builds the command pkg into dir/name (skipping the test without
// the go tool).
func buildCmd(t *testing.T, dir, name, pkg string) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go tool not found")
	}
	bin := filepath.Join(dir, name)
	build := exec.Command(goBin, "build", "-o", bin, pkg)
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build %s: %v\n%s", name, err, out)
	}
	return bin
}

// TestRunRealKafka runs a small suite with -kafka real: a 3-broker Apache
// Kafka started by the run (with kraft's small test JVMs, not the
// benchmark's), the conventional server and the ceiling, and checks the
// broker fetch counts read over JMX and the brokers' CPU.
func TestRunRealKafka(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-broker Apache Kafka")
	}
	if m := kraft.Missing(); m != "" {
		t.Skip("real Kafka: " + m)
	}
	dir := t.TempDir()
	conv := buildConventional(t, dir)
	out := filepath.Join(dir, "results")
	var stdout, stderr bytes.Buffer
	err := run([]string{"-kafka", "real", "-kafka-jvm", strings.Join(kraft.DefaultJVM, " "), "-broker-warmup", "0s",
		"-systems", "conventional,ceiling", "-conventional-bin", conv, "-out", out,
		"-scenarios", "fetch,fanout,fixed-rate", "-codec", "none", "-duration", "1s", "-records", "2000", "-clients", "2",
		"-fanout-clients", "5", "-fanout-backlog", "500", "-fanout-rate", "100",
		"-fixed-commands", "fetch", "-fixed-rates", "100", "-fixed-clients", "2", "-fixed-duration", "500ms", "-fixed-rounds", "1"},
		&stdout, &stderr)
	if err != nil {
		t.Fatalf("run: %v\n%s\n%s", err, stdout.String(), stderr.String())
	}
	b, err := os.ReadFile(filepath.Join(out, "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	var rep report
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(rep.Cluster, "Apache Kafka "+kraft.Latest+", 3 brokers") || rep.Config["kafka"] != kafkaReal ||
		rep.Config["replication"] != float64(3) || !strings.Contains(rep.Config["broker_fetches"].(string), "JMX") {
		t.Errorf("cluster %q, config %v", rep.Cluster, rep.Config)
	}
	got := map[string]*Result{}
	for _, r := range rep.Results {
		if r.Error != "" {
			t.Errorf("%s/%s: %s", r.Scenario, r.System, r.Error)
		}
		if r.BrokerCPU <= 0 {
			t.Errorf("%s/%s: broker CPU %v", r.Scenario, r.System, r.BrokerCPU)
		}
		got[r.Scenario+"/"+r.System] = r
	}
	if len(rep.Results) != 6 {
		t.Errorf("%d results, want 6 (fetch-none, fanout, fixed-rate x conventional, ceiling)", len(rep.Results))
	}
	// The conventional server sends one Fetch per client request; the
	// counts are the consumer fetches only (RF 3: the followers fetch too).
	for _, key := range []string{"fetch-none/conventional", "fanout/conventional", "fixed-rate/fetch/100rps/2c/conventional"} {
		if r := got[key]; r == nil || r.Requests == 0 || r.BrokerFetches < r.Requests || r.BrokerFetches > r.Requests+5 {
			t.Errorf("%s: %+v: want about one broker fetch per request", key, r)
		}
	}
	if r := got["fetch-none/ceiling"]; r == nil || r.BrokerFetches <= 0 {
		t.Errorf("fetch-none/ceiling: %+v", r)
	}
}

// TestRunBrokersFlag runs the ceiling against a cluster given with
// -brokers, the path a real Kafka takes: topics created with CreateTopics
// and no broker request counter.
func TestRunBrokersFlag(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(2))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	out := t.TempDir()
	var stdout bytes.Buffer
	err = run([]string{"-brokers", strings.Join(c.ListenAddrs(), ","), "-systems", "ceiling", "-out", out,
		"-scenarios", "fetch,listoffset", "-codec", "none", "-duration", "500ms", "-records", "1000",
		"-listoffset-clients", "2", "-topic-prefix", "t-"}, &stdout, io.Discard)
	if err != nil {
		t.Fatalf("run: %v\n%s", err, stdout.String())
	}
	b, err := os.ReadFile(filepath.Join(out, "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	var rep report
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	if len(rep.Results) != 2 {
		t.Fatalf("%d results, want 2: %s", len(rep.Results), b)
	}
	for _, r := range rep.Results {
		if r.Error != "" || r.Requests == 0 || r.BrokerFetches != -1 {
			t.Errorf("%s/%s: error %q, %d requests, broker fetches %d (want -1: not countable)",
				r.Scenario, r.System, r.Error, r.Requests, r.BrokerFetches)
		}
	}
	if rep.Cluster != strings.Join(c.ListenAddrs(), ",") {
		t.Errorf("cluster = %q", rep.Cluster)
	}
}

func TestParseJmxTool(t *testing.T) {
	const head = "Trying to connect to JMX url: service:jmx:rmi:///jndi/rmi://127.0.0.1:40551/jmxrmi\n"
	for _, tc := range []struct {
		out  string
		err  error
		want int64
	}{
		{head + "No matched attributes for the queried objects [kafka.network:type=RequestMetrics,name=RequestsPerSec,request=FetchConsumer,*].\n",
			errors.New("exit status 1"), 0},
		{head + "time,\"1796161933249\"\nkafka.network:type=RequestMetrics,name=RequestsPerSec,request=FetchConsumer,version=18:Count,\"5\"\n", nil, 5},
		{head + "time,\"1796161933249\"\n" +
			"kafka.network:type=RequestMetrics,name=RequestsPerSec,request=FetchConsumer,version=17:Count,\"12\"\n" +
			"kafka.network:type=RequestMetrics,name=RequestsPerSec,request=FetchConsumer,version=18:Count,\"30\"\n", nil, 42},
		{head + "time,\"1796161933249\"\n", nil, -1},
		{head + "Exception in thread main java.io.IOException: Failed to retrieve RMIServer stub\n", errors.New("exit status 1"), -1},
	} {
		got, err := parseJmxTool(tc.out, tc.err)
		if got != tc.want || (err != nil) != (tc.want < 0) {
			t.Errorf("parseJmxTool(%q) = %d, %v; want %d", tc.out, got, err, tc.want)
		}
	}
}

func TestListenRe(t *testing.T) {
	for line, want := range map[string]string{
		`time=x level=INFO msg="kafkaedge started" version=dev listen=127.0.0.1:40123 admin=""`: "127.0.0.1:40123",
		`{"time":"x","level":"INFO","msg":"kafkaedge started","listen":"127.0.0.1:9080"}`:       "127.0.0.1:9080",
		`level=INFO msg="conventional started" listen=127.0.0.1:1 routes=/kafka`:                "127.0.0.1:1",
		`level=INFO msg=other admin-listen=127.0.0.1:5`:                                         "",
	} {
		got := ""
		if m := listenRe.FindStringSubmatch(line); m != nil {
			got = m[1]
		}
		if got != want {
			t.Errorf("listen in %q = %q, want %q", line, got, want)
		}
	}
}

// TestJMXReaders counts a real broker's consumer fetches and ListOffsets
// through the JmxCount reader (the -brokers -jmx path) and through the
// JmxTool fallback, which must agree.
func TestJMXReaders(t *testing.T) {
	if testing.Short() {
		t.Skip("starts an Apache Kafka broker")
	}
	if m := kraft.Missing(); m != "" {
		t.Skip("real Kafka: " + m)
	}
	ctx := t.Context()
	rc, err := kraft.Start(ctx, kraft.Options{Brokers: 1, JMX: true})
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	c, err := newCluster(ctx, config{brokers: rc.Bootstrap(), jmx: []string{rc.Nodes[0].JMXAddr()}, replication: -1}, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	defer c.close()
	if c.jmx == nil || !c.countsCheap() {
		t.Fatal("the JmxCount reader did not start")
	}
	if err := c.seedTopic(ctx, "jmx", 1, 100, "none", 256, 0); err != nil {
		t.Fatal(err)
	}
	before := c.brokerCounts()
	d, err := c.newDirect(ctx, "jmx", 1)
	if err != nil {
		t.Fatal(err)
	}
	defer d.close()
	for range 5 {
		if _, _, _, err := d.fetch(ctx, 0, 0); err != nil {
			t.Fatal(err)
		}
	}
	for range 3 {
		if _, err := d.listOffset(ctx, 0, -1); err != nil {
			t.Fatal(err)
		}
	}
	got := c.brokerCounts().sub(before)
	// 100 records of 256 bytes, about 27 KB a fetch.
	if got.fetches != 5 || got.listOffsets != 3 || got.bytesOut < 5*100*256 || got.bytesOut > 5*40_000 {
		t.Errorf("counts over 5 fetches and 3 ListOffsets: %+v", got)
	}
	lib, err := kraft.Resolve(ctx, rc.Version)
	if err != nil {
		t.Fatal(err)
	}
	tool := &jmxCounter{addrs: c.jmx.addrs, lib: lib}
	n, err := tool.read(ctx, fetchConsumerMBeans, "Count")
	if err != nil {
		t.Fatalf("JmxTool: %v", err)
	}
	if r := c.brokerCounts(); n != r.fetches {
		t.Errorf("JmxTool read %d fetches, the reader %d", n, r.fetches)
	}
}

// runSuite runs the suite with args, writing to out, and returns its report,
// its results by "scenario/system" and its table (stdout); a result with
// an error fails the test.
func runSuite(t *testing.T, out string, args []string) (*report, map[string]*Result, string) {
	t.Helper()
	var stdout bytes.Buffer
	if err := run(args, &stdout, io.Discard); err != nil {
		t.Fatalf("run: %v\n%s", err, stdout.String())
	}
	var rep report
	readJSON(t, filepath.Join(out, "results.json"), &rep)
	got := map[string]*Result{}
	for _, r := range rep.Results {
		if r.Error != "" {
			t.Errorf("%s/%s: %s", r.Scenario, r.System, r.Error)
		}
		got[r.Scenario+"/"+r.System] = r
	}
	return &rep, got, stdout.String()
}
