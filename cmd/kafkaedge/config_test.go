package main

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/kafkaedge/kafkaedge/cmd/kafkaedge/internal/config"
)

// writeConfig writes a YAML config file and returns its path.
func writeConfig(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "kafkaedge.yaml")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestBadConfig(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name string
		args []string
		msg  string
	}{
		{"unknown key", []string{"-config", writeConfig(t, "listen: 127.0.0.1:0\nmax-conn: 5\n")}, `line 2: unknown key "max-conn"`},
		{"unknown route field", []string{"-config", writeConfig(t, "routes:\n  - uri: /a\n    upstream: {scheme: kafka, nodes: {\"a:1\": 1}, retries: 2}\n")}, `routes[0]: unknown field "upstream.retries"`},
		{"bad duration", []string{"-config", writeConfig(t, "idle-timeout: 5\n")}, "idle-timeout"},
		{"missing config file", []string{"-config", "/nonexistent/kafkaedge.yaml"}, "/nonexistent/kafkaedge.yaml"},
		{"malformed listen", []string{"-listen", "localhost"}, `-listen "localhost": reactor: invalid config: Addr "localhost": want host:port`},
		{"bad listen port", []string{"-listen", "127.0.0.1:70000"}, "-listen"},
		{"malformed admin listen", []string{"-admin-listen", "127.0.0.1:x"}, "-admin-listen"},
		{"malformed admin listen in file", []string{"-config", writeConfig(t, "admin-listen: nope\n")}, `-admin-listen "nope"`},
		{"duplicate route uri", []string{"-route", "/a=127.0.0.1:1", "-route", "/a=127.0.0.1:2"}, `duplicate route uri "/a"`},
		{"duplicate uri file and flag", []string{"-config", writeConfig(t, "routes:\n  - uri: /a\n    upstream: {scheme: kafka, nodes: {\"a:1\": 1}}\n"), "-route", "/a=127.0.0.1:2"}, `duplicate route uri "/a"`},
		{"route flag malformed", []string{"-route", "/a"}, `-route "/a": want /uri=host:port`},
		{"route flag bad address", []string{"-route", "/a=kafka"}, `-route "/a=kafka": upstream.nodes: bad address "kafka"`},
		{"route flag bad uri", []string{"-route", "a=127.0.0.1:1"}, `must start with /`},
		{"route flag control character", []string{"-route", "/a\x01=127.0.0.1:1"}, `-route "/a\x01=127.0.0.1:1": uri "/a\x01" must not contain control characters (byte 0x01 at offset 2)`},
		{"NUL in a file route's uri", []string{"-config", writeConfig(t, "routes:\n  - uri: \"/a\\0b\"\n    upstream: {scheme: kafka, nodes: {\"a:1\": 1}}\n")}, `: routes[0]: uri "/a\x00b" must not contain control characters (byte 0x00 at offset 2)`},
		// A route has at most -max-route-nodes bootstrap nodes (64).
		{"too many nodes in -route", []string{"-route", "/a=" + strings.Join(brokerList(65), ",")}, `kafkaedge: route "route-1" (-route): 65 upstream nodes, more than the limit of 64 (-max-route-nodes)`},
		{"too many nodes in the file", []string{"-config", writeConfig(t, "max-route-nodes: 2\nroutes:\n  - uri: /a\n    upstream: {scheme: kafka, nodes: {\"a:1\": 1, \"a:2\": 1, \"a:3\": 1}}\n")},
			`kafkaedge: route "config-1" (config file): 3 upstream nodes, more than the limit of 2 (-max-route-nodes)`},
		{"too many nodes for the flag", []string{"-max-route-nodes", "1", "-route", "/a=127.0.0.1:1,127.0.0.1:2"}, `kafkaedge: route "route-1" (-route): 2 upstream nodes, more than the limit of 1 (-max-route-nodes)`},
		{"zero max route nodes", []string{"-max-route-nodes", "0"}, "kafkaedge: -max-route-nodes must be 1 or more, not 0"},
		{"tls file missing", []string{"-config", writeConfig(t, "routes:\n  - uri: /a\n    upstream:\n      scheme: kafka\n      nodes: {\"a:1\": 1}\n      tls: {verify: true, ca_file: /nonexistent/ca.pem}\n")}, "/nonexistent/ca.pem"},
		{"tls file missing on the second route", []string{"-config", writeConfig(t, "routes:\n  - uri: /ok\n    upstream: {scheme: kafka, nodes: {\"a:1\": 1}}\n  - uri: /a\n    upstream:\n      scheme: kafka\n      nodes: {\"a:1\": 1}\n      tls: {verify: true, ca_file: /nonexistent/ca.pem}\n")}, `route "config-2": `},
		{"tls cert without key", []string{"-config", writeConfig(t, "routes:\n  - uri: /a\n    upstream:\n      scheme: kafka\n      nodes: {\"a:1\": 1}\n      tls: {cert_file: /x.pem}\n")}, "cert_file and key_file must be given together"},
		{"embedded in the production build", []string{"-embedded"}, "-embedded: this kafkaedge is the production build"},
		{"embedded id taken", []string{"-embedded", "-config", writeConfig(t, "routes:\n  - id: embedded\n    uri: /e\n    upstream: {scheme: kafka, nodes: {\"a:1\": 1}}\n")}, `duplicate route id "embedded"`},
		// The Kafka client's settings are checked by kafkawire before
		// anything listens, with a route and without one.
		{"broker conns out of kafkawire's range", []string{"-broker-conns", "100", "-route", "/k=127.0.0.1:9"}, "kafkaedge: -broker-conns 100: kafkawire config: ConnsPerBroker 100 out of range 1..64"},
		{"broker conns out of range without a route", []string{"-broker-conns", "100"}, "kafkaedge: -broker-conns 100: kafkawire config: ConnsPerBroker 100 out of range 1..64"},
		{"fetch bytes over kafkawire's limit", []string{"-fetch-max-bytes", "2000000000"}, "kafkaedge: -fetch-max-bytes 2000000000: kafkawire config: FetchMaxBytes"},
		{"header limit under reactor's", []string{"-max-header", "100"}, "kafkaedge: -max-header 100: reactor: invalid config: wsframe: MaxHeader 100 is below 256 bytes"},
		{"bad log level", []string{"-log-level", "loud"}, `-log-level: "loud"`},
		{"bad isolation level", []string{"-isolation-level", "serializable"}, "-isolation-level"},
		{"zero max conns", []string{"-max-conns", "0"}, "kafkaedge: -max-conns must be 1 or more, not 0"},
		{"negative duration", []string{"-dial-timeout", "-1s"}, "-dial-timeout must be a positive duration"},
		{"unknown flag", []string{"-listen-addr", "x"}, "flag provided but not defined: -listen-addr"},
		{"stray argument", []string{"serve"}, `unexpected argument "serve"`},
	} {
		bin := kafkaedgeBin
		if slices.Contains(c.args, "-embedded") && !strings.Contains(c.name, "production") {
			bin = demoBin
		}
		code, stderr := runExitBin(t, bin, c.args...)
		if code != 2 {
			t.Errorf("%s: exit %d, want 2; stderr:\n%s", c.name, code, stderr)
			continue
		}
		line := strings.TrimSuffix(stderr, "\n")
		if strings.Contains(line, "\n") || !strings.HasPrefix(line, "kafkaedge: ") || !strings.Contains(line, c.msg) {
			t.Errorf("%s: stderr %q, want one line \"kafkaedge: ...%s...\"", c.name, stderr, c.msg)
		}
	}
	// The demo build refuses a static route on the demo's URI.
	code, stderr := runExitBin(t, demoBin, "-embedded", "-route", "/kafka=127.0.0.1:1")
	if line := strings.TrimSuffix(stderr, "\n"); code != 2 || strings.Contains(line, "\n") ||
		line != `kafkaedge: -embedded routes /kafka to the demo cluster, but route "route-1" uses it` {
		t.Errorf("-embedded with a -route on /kafka: exit %d, stderr %q", code, stderr)
	}
}

// brokerList is n broker addresses.
func brokerList(n int) []string {
	b := make([]string, n)
	for i := range b {
		b[i] = "127.0.0.1:" + strconv.Itoa(i+1)
	}
	return b
}

// TestDemoListen: with -embedded (the demo build, make run) the WebSocket
// listener is on loopback, 127.0.0.1:9080, unless -listen or the config
// file's listen: names another address; the production default stays
// 0.0.0.0:9080. loadSettings is the same in both builds.
func TestDemoListen(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"-embedded"}, "127.0.0.1:9080"},
		{[]string{"-config", writeConfig(t, "embedded: true\n")}, "127.0.0.1:9080"},
		{[]string{"-embedded", "-listen", "0.0.0.0:9080"}, "0.0.0.0:9080"},
		{[]string{"-embedded", "-listen", "127.0.0.1:0"}, "127.0.0.1:0"},
		{[]string{"-embedded", "-config", writeConfig(t, "listen: 0.0.0.0:9080\n")}, "0.0.0.0:9080"},
		{[]string{"-config", writeConfig(t, "embedded: true\nlisten: 10.0.0.1:9080\n")}, "10.0.0.1:9080"},
		{nil, "0.0.0.0:9080"},
		{[]string{"-config", writeConfig(t, "log-level: debug\n")}, "0.0.0.0:9080"},
	} {
		s := config.Default()
		var cl cmdline
		fs := newFlagSet(&s, &cl)
		if err := fs.Parse(c.args); err != nil {
			t.Fatal(err)
		}
		if _, err := loadSettings(fs, &s, &cl); err != nil {
			t.Errorf("%q: %v", c.args, err)
			continue
		}
		if s.Listen != c.want {
			t.Errorf("%q: listen %s, want %s", c.args, s.Listen, c.want)
		}
	}
	// -h says so, in both builds.
	for _, bin := range []string{kafkaedgeBin, demoBin} {
		if _, help := runExitBin(t, bin, "-h"); !strings.Contains(help, "WebSocket on 127.0.0.1:9080 unless -listen is given") {
			t.Errorf("%s -h does not give the demo's listen address:\n%s", bin, help)
		}
	}
}

// TestProductionBuildHasNoDemo: the production binary does not link
// franz-go (kfake, kgo): only the demo build does.
func TestProductionBuildHasNoDemo(t *testing.T) {
	t.Parallel()
	deps := func(tags string) []string {
		out, err := exec.Command("go", "list", "-deps", "-tags", tags, ".").Output()
		if err != nil {
			t.Fatalf("go list -deps -tags %q: %v", tags, err)
		}
		return strings.Fields(string(out))
	}
	franz := func(pkgs []string) []string {
		var out []string
		for _, p := range pkgs {
			if strings.HasPrefix(p, "github.com/twmb/franz-go") {
				out = append(out, p)
			}
		}
		return out
	}
	if got := franz(deps("")); len(got) > 0 {
		t.Errorf("the production build links %v", got)
	}
	if got := franz(deps("demo")); !slices.Contains(got, "github.com/twmb/franz-go/pkg/kfake") {
		t.Errorf("the demo build does not link kfake (the check above checks nothing): %v", got)
	}
}

func TestHelpAndVersion(t *testing.T) {
	t.Parallel()
	code, help := runExit(t, "-h")
	if code != 0 {
		t.Fatalf("-h: exit %d", code)
	}
	for _, f := range []string{"listen", "admin-listen", "admin-key", "config", "route", "data-dir", "embedded",
		"loops", "max-conns", "max-inflight", "max-message", "max-header", "max-outbound", "slow-timeout",
		"idle-timeout", "handshake-timeout", "broker-conns", "dial-timeout", "request-timeout", "fetch-max-wait",
		"fetch-max-bytes", "fetch-partition-max-bytes", "metadata-refresh", "max-batch-bytes", "isolation-level",
		"log-level", "version", "max-route-nodes"} {
		if !strings.Contains(help, "  -"+f+" ") && !strings.Contains(help, "  -"+f+"\n") {
			t.Errorf("-h does not document -%s", f)
		}
	}
	for _, d := range []string{`(default "0.0.0.0:9080")`, `(default "127.0.0.1:9180")`, "(default 100ms)", "(default 10485760)"} {
		if !strings.Contains(help, d) {
			t.Errorf("-h does not show %s", d)
		}
	}
	cmd := runVersion(t)
	if !strings.HasPrefix(cmd, "kafkaedge ") {
		t.Fatalf("-version printed %q", cmd)
	}
}

// runVersion returns the stdout of kafkaedge -version.
func runVersion(t *testing.T) string {
	t.Helper()
	out, err := exec.Command(kafkaedgeBin, "-version").Output()
	if err != nil {
		t.Fatalf("-version: %v", err)
	}
	return string(out)
}

func TestAddressInUse(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	busy := ln.Addr().String()
	// Every listener but the busy one is on port 0: a default address
	// (-metrics-listen 127.0.0.1:9091) may be held by anything else on the
	// machine, and would fail the start first.
	free := "127.0.0.1:0"
	for _, c := range []struct {
		args []string
		msg  string
	}{
		{[]string{"-listen", busy, "-admin-listen", free, "-metrics-listen", free, "-admin-key", "k"}, "kafkaedge: -listen: listen tcp " + busy},
		// The routes are put into the server before anything listens.
		{[]string{"-listen", busy, "-admin-listen", free, "-metrics-listen", free, "-admin-key", "k", "-route", "/r=127.0.0.1:1"}, "kafkaedge: -listen: listen tcp " + busy},
		{[]string{"-listen", free, "-admin-listen", busy, "-metrics-listen", free, "-admin-key", "k"}, "kafkaedge: -admin-listen: listen tcp " + busy},
		{[]string{"-listen", free, "-admin-listen", free, "-metrics-listen", busy, "-admin-key", "k"}, "kafkaedge: -metrics-listen: listen tcp " + busy},
	} {
		code, stderr := runExit(t, c.args...)
		if code != 1 || !strings.HasPrefix(stderr, c.msg) || strings.Count(stderr, "\n") != 1 {
			t.Errorf("%v: exit %d, stderr %q; want 1 and one line %q...", c.args, code, stderr, c.msg)
		}
	}
}
