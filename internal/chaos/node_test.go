package chaos

import (
	"context"
	"fmt"
	"net/http"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/kafkaedge/kafkaedge/internal/syncbuf"
)

// buildNode builds cmd/kafkaedge, the production binary, into dir: with
// -race when the tests run with it, so that a race in the node under the
// faults fails the suite (its stderr is searched for DATA RACE).
func buildNode(dir string) (string, error) {
	bin := dir + "/kafkaedge"
	args := []string{"build", "-o", bin}
	if raceEnabled {
		args = append(args, "-race")
	}
	cmd := exec.Command("go", append(args, "github.com/kafkaedge/kafkaedge/cmd/kafkaedge")...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build kafkaedge: %w\n%s", err, out)
	}
	return bin, nil
}

// node is a running kafkaedge child process.
type node struct {
	cmd     *exec.Cmd
	stderr  *syncbuf.Buffer
	listen  string // WebSocket listener
	metrics string // /metrics, /healthz, /readyz
	done    chan struct{}
	killed  bool // by kill: its exit is not checked
}

// startedLine is the start-up log line with the bound addresses.
var startedLine = regexp.MustCompile(`msg="kafkaedge started" .*listen=(\S+) admin=\S* metrics=(\S+)`)

// startNode runs bin with args plus listeners on ports from the kernel (the
// addresses are read back from its start-up log) and no admin API, waits
// until /healthz answers, and stops it when the test ends, failing the test
// if it does not exit 0 or reported a data race.
func startNode(t *testing.T, bin string, args ...string) *node {
	t.Helper()
	n := &node{stderr: &syncbuf.Buffer{}, done: make(chan struct{})}
	args = append(args, "-listen", "127.0.0.1:0", "-admin-listen", "", "-metrics-listen", "127.0.0.1:0")
	n.cmd = exec.Command(bin, args...)
	n.cmd.Stdout, n.cmd.Stderr = n.stderr, n.stderr
	// The node dies with the test binary, however it ends.
	n.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := n.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		_ = n.cmd.Wait()
		close(n.done)
	}()
	t.Cleanup(func() {
		if code := n.stop(); code != 0 && !n.killed {
			t.Errorf("kafkaedge exited %d after SIGTERM; the end of its log:\n%s", code, n.tail(40))
		}
		if strings.Contains(n.stderr.String(), "DATA RACE") {
			t.Errorf("data race in kafkaedge:\n%s", n.stderr)
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case <-n.done:
			t.Fatalf("kafkaedge exited %d before it was ready:\n%s", n.cmd.ProcessState.ExitCode(), n.stderr)
		default:
		}
		if n.listen == "" {
			if m := startedLine.FindStringSubmatch(n.stderr.String()); m != nil {
				n.listen, n.metrics = m[1], m[2]
			}
		}
		if n.listen != "" {
			if resp, err := http.Get("http://" + n.metrics + "/healthz"); err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					return n
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("kafkaedge not ready after 30 s:\n%s", n.stderr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop sends SIGTERM and returns the exit code (-1 if it had to be killed).
func (n *node) stop() int {
	select {
	case <-n.done:
		return n.cmd.ProcessState.ExitCode()
	default:
	}
	_ = n.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-n.done:
		return n.cmd.ProcessState.ExitCode()
	case <-time.After(30 * time.Second):
		_ = n.cmd.Process.Kill()
		<-n.done
		return -1
	}
}

// kill kills the node with SIGKILL and waits until it is gone.
func (n *node) kill() {
	n.killed = true
	_ = n.cmd.Process.Kill()
	<-n.done
}

// tail is the last lines of the node's log.
func (n *node) tail(lines int) string {
	if n == nil {
		return "(not started)"
	}
	ls := strings.Split(strings.TrimRight(n.stderr.String(), "\n"), "\n")
	return strings.Join(ls[max(0, len(ls)-lines):], "\n")
}

// sample is what the node's /metrics says of its resources.
type sample struct {
	goroutines, fds int
	rss             float64 // bytes
	wsConns         int     // kafkaedge_connections: TCP connections of the WebSocket listener
	calls           int     // kafkaedge_kafka_calls_in_flight
	brokerConns     int     // kafkaedge_kafka_broker_connections, any state
}

func (s sample) String() string {
	return fmt.Sprintf("%d goroutines, %d fds, RSS %.1f MiB, %d broker connections", s.goroutines, s.fds, s.rss/(1<<20), s.brokerConns)
}

// sample scrapes the node's /metrics.
func (n *node) sample(ctx context.Context) (sample, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", "http://"+n.metrics+"/metrics", nil)
	if err != nil {
		return sample{}, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return sample{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return sample{}, fmt.Errorf("GET /metrics: status %d", resp.StatusCode)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		return sample{}, fmt.Errorf("parse /metrics: %w", err)
	}
	var missing []string
	get := func(name string) float64 {
		f, ok := fams[name]
		if !ok {
			missing = append(missing, name)
			return 0
		}
		return gaugeSum(f)
	}
	s := sample{
		goroutines:  int(get("go_goroutines")),
		fds:         int(get("process_open_fds")),
		rss:         get("process_resident_memory_bytes"),
		wsConns:     int(get("kafkaedge_connections")),
		calls:       int(get("kafkaedge_kafka_calls_in_flight")),
		brokerConns: int(gaugeSum(fams["kafkaedge_kafka_broker_connections"])), // absent before the first dial
	}
	if len(missing) > 0 {
		return s, fmt.Errorf("/metrics lacks %v", missing)
	}
	return s, nil
}

// gaugeSum sums the gauges of a family (0 for nil).
func gaugeSum(f *dto.MetricFamily) float64 {
	sum := 0.0
	for _, m := range f.GetMetric() {
		sum += m.GetGauge().GetValue()
	}
	return sum
}
