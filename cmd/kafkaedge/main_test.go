package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kafkaedge/kafkaedge/cmd/kafkaedge/internal/ops"
	"github.com/kafkaedge/kafkaedge/internal/kafkatest"
	"github.com/kafkaedge/kafkaedge/internal/syncbuf"
	"github.com/kafkaedge/kafkaedge/internal/wsclient"
	"github.com/kafkaedge/kafkaedge/proto/pubsub"
)

// kafkaedgeBin and demoBin are the production build of kafkaedge and its
// demo build (-tags demo, with -embedded), built once by TestMain.
var kafkaedgeBin, demoBin string

// minParallel is the least -parallel the tests run with (see TestMain).
const minParallel = 4

// testKey is the admin key the tests pass unless a test says otherwise.
const testKey = "test-admin-key"

func TestMain(m *testing.M) {
	flag.Parse()
	// The tests mostly wait for child processes (kafkaedge, the Kafka
	// JVMs), not for the CPU: run more of them at once than -parallel's
	// default, GOMAXPROCS, unless -parallel is given.
	parallelSet := false
	flag.Visit(func(f *flag.Flag) { parallelSet = parallelSet || f.Name == "test.parallel" })
	if !parallelSet && runtime.GOMAXPROCS(0) < minParallel {
		flag.Set("test.parallel", strconv.Itoa(minParallel))
	}
	// The real clusters start while the binary builds and the kfake tests
	// run; kafkatest.Main stops them at the end.
	kafkatest.Prestart()
	dir, err := os.MkdirTemp("", "kafkaedge-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	kafkaedgeBin, demoBin = filepath.Join(dir, "kafkaedge"), filepath.Join(dir, "kafkaedge-demo")
	for _, b := range []struct{ out, tags string }{{kafkaedgeBin, ""}, {demoBin, "demo"}} {
		args := []string{"build", "-o", b.out, "-tags", b.tags}
		if raceEnabled { // the packages are already compiled with -race for the test
			args = append(args, "-race")
		}
		build := exec.Command("go", append(args, ".")...)
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "build", b.out+":", err)
			os.RemoveAll(dir)
			os.Exit(1)
		}
	}
	code := kafkatest.Main(m)
	os.RemoveAll(dir)
	os.Exit(code)
}

// proc is a running kafkaedge.
type proc struct {
	cmd     *exec.Cmd
	stderr  *syncbuf.Buffer
	listen  string
	admin   string
	metrics string // "" when -metrics-listen is off
	key     string
	done    chan struct{}
	code    int
}

// start runs kafkaedge with args plus -listen/-admin-listen on free ports and
// -admin-key testKey (unless args set them), waits until the admin API
// answers, and stops it (expecting exit 0) when the test ends.
func start(t *testing.T, args ...string) *proc {
	t.Helper()
	return startEnv(t, nil, true, args...)
}

// startEnv is start with extra environment variables; without addKey no
// -admin-key is added and the caller sets p.key before p.waitReady.
func startEnv(t *testing.T, env []string, addKey bool, args ...string) *proc {
	t.Helper()
	return startBin(t, kafkaedgeBin, env, addKey, args...)
}

// startBin is startEnv with the binary bin.
func startBin(t *testing.T, bin string, env []string, addKey bool, args ...string) *proc {
	t.Helper()
	p := &proc{stderr: &syncbuf.Buffer{}, done: make(chan struct{}), key: testKey}
	has := func(name string) (string, bool) {
		for i, a := range args {
			if a == "-"+name && i+1 < len(args) {
				return args[i+1], true
			}
			if v, ok := strings.CutPrefix(a, "-"+name+"="); ok {
				return v, true
			}
		}
		return "", false
	}
	// Port 0 and the addresses read back from the start-up log: no port races.
	if _, ok := has("listen"); !ok {
		args = append(args, "-listen", "127.0.0.1:0")
	}
	if _, ok := has("admin-listen"); !ok {
		args = append(args, "-admin-listen", "127.0.0.1:0")
	}
	if _, ok := has("metrics-listen"); !ok {
		args = append(args, "-metrics-listen", "127.0.0.1:0")
	}
	if v, ok := has("admin-key"); ok {
		p.key = v
	} else if addKey {
		args = append(args, "-admin-key", testKey)
	}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stderr = p.stderr
	p.cmd.Stdout = p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.cmd.Wait()
		p.code = p.cmd.ProcessState.ExitCode()
		close(p.done)
	}()
	t.Cleanup(func() {
		if code := p.stop(t); code != 0 {
			t.Errorf("kafkaedge exited %d after SIGTERM; stderr:\n%s", code, p.stderr)
		}
		if strings.Contains(p.stderr.String(), "DATA RACE") {
			t.Errorf("data race in kafkaedge:\n%s", p.stderr)
		}
	})
	if addKey {
		p.waitReady(t)
	}
	return p
}

// startedLine is the start-up log line with the bound addresses, in the
// text or the JSON log format.
var startedLine = regexp.MustCompile(`msg="kafkaedge started" .*listen=(\S+) admin=(\S+) metrics=(\S*)|` +
	`"msg":"kafkaedge started",.*"listen":"([^"]+)","admin":"([^"]*)","metrics":"([^"]*)"`)

// waitReady reads the bound addresses from the log, then polls the admin API
// until it answers.
func (p *proc) waitReady(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-p.done:
			t.Fatalf("kafkaedge exited %d before it was ready; stderr:\n%s", p.code, p.stderr)
		default:
		}
		if p.listen == "" {
			m := startedLine.FindStringSubmatch(p.stderr.String())
			if m == nil {
				time.Sleep(20 * time.Millisecond)
				continue
			}
			p.listen, p.admin, p.metrics = m[1]+m[4], m[2]+m[5], strings.Trim(m[3], `"`)+m[6]
		}
		if status, _ := p.do(t, "GET", "/apisix/admin/routes", "", p.key); status == http.StatusOK {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("kafkaedge not ready after 30s; stderr:\n%s", p.stderr)
}

// stop sends SIGTERM (once) and returns the exit code.
func (p *proc) stop(t *testing.T) int {
	select {
	case <-p.done:
		return p.code
	default:
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return p.code
	case <-time.After(20 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
		t.Errorf("kafkaedge did not exit within 20s of SIGTERM; stderr:\n%s", p.stderr)
		return -1
	}
}

// do calls the admin API and returns the status and body (errors: status 0).
func (p *proc) do(t *testing.T, method, path, body, key string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+p.admin+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("X-API-KEY", key)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// mustDo is do that expects status want.
func (p *proc) mustDo(t *testing.T, method, path, body string, want int) []byte {
	t.Helper()
	status, b := p.do(t, method, path, body, p.key)
	if status != want {
		t.Fatalf("%s %s: status %d, want %d; body %s", method, path, status, want, b)
	}
	return b
}

// runExit runs kafkaedge expecting it to exit by itself; it returns the exit
// code and stderr.
func runExit(t *testing.T, args ...string) (int, string) {
	t.Helper()
	return runExitBin(t, kafkaedgeBin, args...)
}

// runExitBin is runExit with the binary bin.
func runExitBin(t *testing.T, bin string, args ...string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("run kafkaedge %v: %v", args, err)
	}
	return cmd.ProcessState.ExitCode(), stderr.String()
}

// fake starts a one-broker kfake cluster with topic (one partition), for
// the tests that run on kfake only.
func fake(t *testing.T, topic string) *kafkatest.Kafka {
	t.Helper()
	k := kafkatest.Fake(t, 1)
	k.Topic(t, topic, 1)
	return k
}

// records are values for partition 0 of topic, keyed "k-<value>".
func records(topic string, values ...string) []*kgo.Record {
	recs := make([]*kgo.Record, len(values))
	for i, v := range values {
		recs[i] = &kgo.Record{Topic: topic, Partition: 0, Key: []byte("k-" + v), Value: []byte(v)}
	}
	return recs
}

// produceOpts are the producer options of every test, plus extra. A topic
// just created on a real cluster may not be known yet to every broker,
// its leader included (kafkatest.Topic has seen it in the metadata of
// one): kgo then waits MetadataMinAge (5 s by default) before it asks
// again, and fails the records after 4 UNKNOWN_TOPIC_OR_PARTITION answers.
// Ask again soon, and until the produce deadline.
func produceOpts(extra ...kgo.Opt) []kgo.Opt {
	return append([]kgo.Opt{kgo.MetadataMinAge(50 * time.Millisecond), kgo.UnknownTopicRetries(-1)}, extra...)
}

// produce writes values to partition 0 of topic, keyed "k-<value>", in one
// batch.
func produce(t *testing.T, k *kafkatest.Kafka, topic string, values ...string) {
	t.Helper()
	k.Produce(t, produceOpts(), records(topic, values...)...)
}

// wsClient is a connection of internal/wsclient whose helpers fail the
// test on errors.
type wsClient struct {
	*wsclient.Conn
}

// dial opens a WebSocket to uri on p.
func dial(t *testing.T, p *proc, uri string) *wsClient {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := wsclient.Dial(ctx, "ws://"+p.listen+uri, wsclient.Options{})
	if err != nil {
		t.Fatalf("%v; stderr:\n%s", err, p.stderr)
	}
	t.Cleanup(func() { c.Close() })
	return &wsClient{c}
}

// expectRefused checks that p refuses the upgrade on uri with HTTP status.
func expectRefused(t *testing.T, p *proc, uri string, status int) {
	t.Helper()
	c, err := wsclient.Dial(context.Background(), "ws://"+p.listen+uri, wsclient.Options{})
	if err == nil {
		c.Close()
	}
	var he *wsclient.HandshakeError
	if !errors.As(err, &he) || he.Status != status {
		t.Fatalf("upgrade on %s: %v, want HTTP %d", uri, err, status)
	}
}

// send writes one request, with the connection's next sequence, without
// waiting for its answer, and returns its sequence.
func (c *wsClient) send(t *testing.T, req *pubsub.PubSubReq) int64 {
	t.Helper()
	c.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if err := c.Send(c.Number(req)); err != nil {
		t.Fatal(err)
	}
	return req.Sequence
}

// sendTogether writes reqs (without waiting for answers) in one write to
// the socket, so that kafkaedge finds them in its input at once.
func (c *wsClient) sendTogether(t *testing.T, reqs ...*pubsub.PubSubReq) {
	t.Helper()
	for _, r := range reqs {
		c.Number(r)
	}
	c.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if err := c.SendBatch(reqs...); err != nil {
		t.Fatal(err)
	}
}

// recv reads the next response.
func (c *wsClient) recv(t *testing.T) *pubsub.PubSubResp {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(15 * time.Second))
	resp, err := c.Recv()
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// call sends req and returns the response to it.
func (c *wsClient) call(t *testing.T, req *pubsub.PubSubReq) *pubsub.PubSubResp {
	t.Helper()
	c.SetDeadline(time.Now().Add(15 * time.Second))
	resp, err := c.Do(c.Number(req))
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// listOffset returns the offset for timestamp (-1 = high watermark).
func (c *wsClient) listOffset(t *testing.T, topic string, partition int32, ts int64) int64 {
	t.Helper()
	c.SetDeadline(time.Now().Add(15 * time.Second))
	off, err := c.ListOffset(topic, partition, ts)
	if err != nil {
		t.Fatalf("list offset %s/%d: %v", topic, partition, err)
	}
	return off
}

// fetch returns the messages from offset.
func (c *wsClient) fetch(t *testing.T, topic string, partition int32, offset int64) []*pubsub.KafkaMessage {
	t.Helper()
	c.SetDeadline(time.Now().Add(15 * time.Second))
	msgs, err := c.Fetch(topic, partition, offset)
	if err != nil {
		t.Fatalf("fetch %s/%d@%d: %v", topic, partition, offset, err)
	}
	return msgs
}

// expectClose checks that the next frame from kafkaedge is its close frame
// with code; what names the connection in the failure.
func (c *wsClient) expectClose(t *testing.T, code int, what string) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if got, err := c.RecvClose(); err != nil || got != code {
		t.Fatalf("%s: close %d (err %v), want close %d", what, got, err, code)
	}
}

// expectData checks that uri serves the values written to topic/0.
func expectData(t *testing.T, p *proc, uri, topic string, values ...string) {
	t.Helper()
	c := dial(t, p, uri)
	if hw := c.listOffset(t, topic, 0, -1); hw != int64(len(values)) {
		t.Fatalf("list offset -1 on %s: %d, want %d", uri, hw, len(values))
	}
	msgs := c.fetch(t, topic, 0, 0)
	if len(msgs) != len(values) {
		t.Fatalf("fetch on %s: %d messages, want %d", uri, len(msgs), len(values))
	}
	for i, m := range msgs {
		if m.Offset != int64(i) || string(m.Value) != values[i] || string(m.Key) != "k-"+values[i] {
			t.Fatalf("message %d: offset %d key %q value %q, want offset %d value %q", i, m.Offset, m.Key, m.Value, i, values[i])
		}
	}
}

// decode unmarshals an admin API body.
func decode(t *testing.T, b []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("admin body %q: %v", b, err)
	}
	return m
}

// waitClusterReady waits until /readyz reports p ready with routes routes,
// every one of them with a broker that answered.
func waitClusterReady(t *testing.T, p *proc, routes int) {
	t.Helper()
	var last ops.Report
	waitFor(t, p, "/readyz to report the cluster ready", func() bool {
		status, rep := readyz(t, p)
		last = rep
		return status == 200 && rep.Ready && rep.Routes == routes && len(rep.Degraded) == 0 &&
			rep.Listeners["websocket"] && rep.Listeners["admin"]
	})
	if last.CheckedAt == "" {
		t.Fatalf("/readyz ready without a probe: %+v", last)
	}
}

func TestRouteFlag(t *testing.T) {
	t.Parallel()
	kafkatest.Each(t, func(t *testing.T, k *kafkatest.Kafka) {
		topic := k.Topic(t, "orders", 1)
		produce(t, k, topic, "a", "b", "c")
		p := start(t, "-route", "/orders="+strings.Join(k.Brokers, ","))
		expectData(t, p, "/orders", topic, "a", "b", "c")
		waitClusterReady(t, p, 1)

		// The static route is listed by the admin API.
		list := decode(t, p.mustDo(t, "GET", "/apisix/admin/routes", "", 200))
		if list["total"] != float64(1) {
			t.Fatalf("list: %v", list)
		}
		if code := p.stop(t); code != 0 {
			t.Fatalf("SIGTERM: exit %d, want 0; stderr:\n%s", code, p.stderr)
		}
		if !strings.Contains(p.stderr.String(), "kafkaedge stopped") {
			t.Fatalf("no clean stop logged:\n%s", p.stderr)
		}
	})
}

func TestConfigFile(t *testing.T) {
	t.Parallel()
	kafkatest.Each(t, testConfigFile)
}

func testConfigFile(t *testing.T, k *kafkatest.Kafka) {
	topic := k.Topic(t, "events", 1)
	produce(t, k, topic, "x", "y")
	host, port, _ := net.SplitHostPort(k.Brokers[0])
	cfg := fmt.Sprintf(`# kafkaedge test config
admin-key: file-key
log-level: debug
max-inflight: 16
max-message: 4096
fetch-max-wait: 50ms
metadata-refresh: 30s
isolation-level: read_committed
routes:
  - id: events
    uri: /events
    name: events route
    upstream:
      type: none
      scheme: kafka
      nodes:
        %q: 1
  - uri: /events-array
    upstream:
      scheme: kafka
      nodes:
        - host: %s
          port: %s
          weight: 1
`, k.Brokers[0], host, port)
	path := filepath.Join(t.TempDir(), "kafkaedge.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	// The -admin-key flag overrides the file's admin-key.
	p := start(t, "-config", path, "-admin-key", "flag-key")
	expectData(t, p, "/events", topic, "x", "y")
	expectData(t, p, "/events-array", topic, "x", "y")
	if status, _ := p.do(t, "GET", "/apisix/admin/routes", "", "file-key"); status != http.StatusUnauthorized {
		t.Fatalf("file key after flag override: status %d, want 401", status)
	}
	got := decode(t, p.mustDo(t, "GET", "/apisix/admin/routes/config-2", "", 200))
	nodes := got["value"].(map[string]any)["upstream"].(map[string]any)["nodes"].([]any)
	if len(nodes) != 1 {
		t.Fatalf("array nodes not echoed as an array: %v", got)
	}
	// The file's max-message applies: a larger client message closes the connection with 1009.
	c := dial(t, p, "/events")
	// The write may fail once kafkaedge has closed: the close frame is what counts.
	_ = c.Send(wsclient.PingReq(1, make([]byte, 8192)))
	c.expectClose(t, wsclient.CloseMessageTooBig, "message over max-message")

	// A static route cannot be changed or deleted through the admin API.
	status, b := p.do(t, "DELETE", "/apisix/admin/routes/events", "", p.key)
	if status != 400 || !strings.Contains(string(b), "static") {
		t.Fatalf("DELETE static route: %d %s", status, b)
	}
}
