package main

import (
	"bytes"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kafkaedge/kafkaedge/internal/kafkatest"
	"github.com/kafkaedge/kafkaedge/internal/servertest"
	"github.com/kafkaedge/kafkaedge/kafkawire"
	"github.com/kafkaedge/kafkaedge/proto/pubsub"
	"github.com/kafkaedge/kafkaedge/reactor"
)

// edge starts kafkaedge's reactor on a free loopback port with the route
// /kafka to a kfake cluster holding topic "example" (partition 0: messages
// k0=v0 to k4=v4; partition 1 empty), and returns the route's URL.
func edge(t *testing.T) string {
	t.Helper()
	k := kafkatest.Fake(t, 1)
	topic := k.Topic(t, "example", 2)
	var recs []*kgo.Record
	for i := range 5 {
		recs = append(recs, &kgo.Record{Topic: topic, Key: fmt.Appendf(nil, "k%d", i), Value: fmt.Appendf(nil, "v%d", i)})
	}
	k.Produce(t, nil, recs...)

	srv := servertest.Start(t, reactor.Config{Loops: 1}, reactor.Route{URI: "/kafka", Cluster: kafkawire.Config{Brokers: k.Brokers}})
	return "ws://" + srv.Addr() + "/kafka"
}

// runExample runs the program with args and returns its exit code, stdout
// and stderr.
func runExample(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(t.Context(), args, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

func TestExample(t *testing.T) {
	url := edge(t)
	for _, tc := range []struct {
		name   string
		args   []string
		code   int
		stdout string
		stderr string // a part of stderr ("" when it must be empty)
	}{
		{
			name: "all messages",
			args: []string{"-url", url, "-topic", "example"},
			stdout: "topic example partition 0: first offset 0, next offset 5\n" +
				"offset 0 key k0 value v0\noffset 1 key k1 value v1\noffset 2 key k2 value v2\n" +
				"offset 3 key k3 value v3\noffset 4 key k4 value v4\n",
		},
		{
			name:   "from an offset",
			args:   []string{"-url", url, "-topic", "example", "-offset", "3"},
			stdout: "topic example partition 0: first offset 0, next offset 5\noffset 3 key k3 value v3\noffset 4 key k4 value v4\n",
		},
		{
			name:   "empty partition",
			args:   []string{"-url", url, "-topic", "example", "-partition", "1"},
			stdout: "topic example partition 1: first offset 0, next offset 0\n",
		},
		{
			name:   "error_resp: unknown topic",
			args:   []string{"-url", url, "-topic", "nosuch"},
			code:   1,
			stderr: "kafkaedge-example: server error (code 3): " + pubsub.ListOffsetErrorMessage("nosuch", 0, pubsub.ReasonNotFoundTopic) + "\n",
		},
		{
			name:   "error_resp: unknown partition",
			args:   []string{"-url", url, "-topic", "example", "-partition", "7"},
			code:   1,
			stderr: pubsub.ListOffsetErrorMessage("example", 7, pubsub.ReasonNotFoundPartition) + "\n",
		},
		{
			name:   "404: no route",
			args:   []string{"-url", strings.TrimSuffix(url, "/kafka") + "/nosuch"},
			code:   1,
			stderr: "/nosuch: upgrade refused: 404 Not Found: no route for /nosuch\n",
		},
		{
			name:   "bad partition",
			args:   []string{"-partition", "-1"},
			code:   2,
			stderr: "-partition -1 out of range",
		},
		{
			name:   "an argument",
			args:   []string{"demo"},
			code:   2,
			stderr: `unexpected argument "demo"`,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			code, stdout, stderr := runExample(t, tc.args...)
			if code != tc.code || stdout != tc.stdout || (tc.stderr == "") != (stderr == "") || !strings.Contains(stderr, tc.stderr) {
				t.Errorf("kafkaedge-example %s: exit %d, stdout:\n%s\nstderr:\n%s\nwant exit %d, stdout:\n%s\nstderr with:\n%s",
					strings.Join(tc.args, " "), code, stdout, stderr, tc.code, tc.stdout, tc.stderr)
			}
		})
	}
}

// TestRefused: nothing listens on 127.0.0.1:1 (the reactor's tests use it
// as a dead broker address too).
func TestRefused(t *testing.T) {
	code, stdout, stderr := runExample(t, "-url", "ws://127.0.0.1:1/kafka")
	if code != 1 || stdout != "" || !strings.Contains(stderr, "connection refused (is kafkaedge running?") {
		t.Errorf("exit %d, stdout %q, stderr %q; want 1 and a refused connection", code, stdout, stderr)
	}
}

// TestREADME: the Go code of the README's Go client example is this
// program's, verbatim.
func TestREADME(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile("main.go")
	if err != nil {
		t.Fatal(err)
	}
	_, section, _ := strings.Cut(string(readme), "\n## Client example: Go")
	section, _, _ = strings.Cut(section, "\n## ")
	blocks := strings.Split(section, "```go\n")[1:]
	if len(blocks) == 0 {
		t.Fatal(`README.md: no Go code in "## Client example: Go"`)
	}
	for _, b := range blocks {
		code, _, _ := strings.Cut(b, "```")
		if !strings.Contains(string(src), code) {
			t.Errorf("README.md's Go client example is not in cmd/kafkaedge-example/main.go:\n%s", code)
		}
	}
}
