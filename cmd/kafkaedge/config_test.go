package main

import (
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
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
		{"malformed listen", []string{"-listen", "localhost"}, `-listen "localhost": want host:port`},
		{"bad listen port", []string{"-listen", "127.0.0.1:70000"}, "-listen"},
		{"malformed admin listen", []string{"-admin-listen", "127.0.0.1:x"}, "-admin-listen"},
		{"malformed admin listen in file", []string{"-config", writeConfig(t, "admin-listen: nope\n")}, `-admin-listen "nope"`},
		{"duplicate route uri", []string{"-route", "/a=127.0.0.1:1", "-route", "/a=127.0.0.1:2"}, `duplicate route uri "/a"`},
		{"duplicate uri file and flag", []string{"-config", writeConfig(t, "routes:\n  - uri: /a\n    upstream: {scheme: kafka, nodes: {\"a:1\": 1}}\n"), "-route", "/a=127.0.0.1:2"}, `duplicate route uri "/a"`},
		{"route flag malformed", []string{"-route", "/a"}, `-route "/a": want /uri=host:port`},
		{"route flag bad address", []string{"-route", "/a=kafka"}, `-route "/a=kafka": upstream.nodes: bad address "kafka"`},
		{"route flag bad uri", []string{"-route", "a=127.0.0.1:1"}, `must start with /`},
		{"tls file missing", []string{"-config", writeConfig(t, "routes:\n  - uri: /a\n    upstream:\n      scheme: kafka\n      nodes: {\"a:1\": 1}\n      tls: {verify: true, ca_file: /nonexistent/ca.pem}\n")}, "/nonexistent/ca.pem"},
		{"tls cert without key", []string{"-config", writeConfig(t, "routes:\n  - uri: /a\n    upstream:\n      scheme: kafka\n      nodes: {\"a:1\": 1}\n      tls: {cert_file: /x.pem}\n")}, "cert_file and key_file must be given together"},
		{"embedded uri taken", []string{"-embedded", "-route", "/kafka=127.0.0.1:1"}, "-embedded routes /kafka"},
		{"bad log level", []string{"-log-level", "loud"}, `-log-level: "loud"`},
		{"bad isolation level", []string{"-isolation-level", "serializable"}, "-isolation-level"},
		{"zero max conns", []string{"-max-conns", "0"}, "-max-conns must be from 1"},
		{"negative duration", []string{"-dial-timeout", "-1s"}, "-dial-timeout must be a positive duration"},
		{"unknown flag", []string{"-listen-addr", "x"}, "flag provided but not defined: -listen-addr"},
		{"stray argument", []string{"serve"}, `unexpected argument "serve"`},
	} {
		code, stderr := runExit(t, c.args...)
		if code != 2 {
			t.Errorf("%s: exit %d, want 2; stderr:\n%s", c.name, code, stderr)
			continue
		}
		line := strings.TrimSuffix(stderr, "\n")
		if strings.Contains(line, "\n") || !strings.HasPrefix(line, "kafkaedge: ") || !strings.Contains(line, c.msg) {
			t.Errorf("%s: stderr %q, want one line \"kafkaedge: ...%s...\"", c.name, stderr, c.msg)
		}
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
		"log-level", "version"} {
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

func TestParseRouteRoundTrip(t *testing.T) {
	for _, body := range []string{
		`{"id":"a","uri":"/a","upstream":{"nodes":{"k1:9092":1,"k2:9092":2},"type":"none","scheme":"kafka"}}`,
		`{"id":"b","uri":"/b","name":"n","desc":"d","labels":{"x":"y"},"plugins":{"kafka-proxy":{"sasl":{"username":"u","password":"p","mechanism":"SCRAM-SHA-512"}}},"upstream":{"nodes":[{"host":"10.0.0.1","port":9093,"weight":1}],"scheme":"kafka","tls":{"verify":true}}}`,
	} {
		r, err := ParseRoute([]byte(body))
		if err != nil {
			t.Fatalf("%s: %v", body, err)
		}
		out, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		r2, err := ParseRoute(out)
		if err != nil {
			t.Fatalf("re-parse %s: %v", out, err)
		}
		out2, _ := json.Marshal(r2)
		if string(out) != string(out2) {
			t.Fatalf("round trip differs:\n%s\n%s", out, out2)
		}
		var want, got any
		json.Unmarshal([]byte(body), &want)
		json.Unmarshal(out, &got)
		wb, _ := json.Marshal(want)
		gb, _ := json.Marshal(got)
		if string(wb) != string(gb) {
			t.Fatalf("route not echoed as given:\n%s\n%s", wb, gb)
		}
	}
}

func FuzzParseRoute(f *testing.F) {
	f.Add([]byte(seedBody))
	f.Add([]byte(`{"uri":"/a","upstream":{"nodes":[{"host":"h","port":1}],"scheme":"kafka"}}`))
	f.Add([]byte(`{"uri":"/a","plugins":{"kafka-proxy":{"sasl":{"username":"u","password":"p"}}},"upstream":{"nodes":{"[::1]:9092":1},"scheme":"kafka","tls":{"verify":false}}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := ParseRoute(data)
		if err != nil {
			return
		}
		out, err := json.Marshal(r)
		if err != nil {
			t.Fatalf("marshal accepted route: %v", err)
		}
		if _, err := ParseRoute(out); err != nil {
			t.Fatalf("accepted route %s does not re-parse: %v", out, err)
		}
	})
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
		{[]string{"-listen", free, "-admin-listen", busy, "-metrics-listen", free, "-admin-key", "k"}, "kafkaedge: -admin-listen: listen tcp " + busy},
		{[]string{"-listen", free, "-admin-listen", free, "-metrics-listen", busy, "-admin-key", "k"}, "kafkaedge: -metrics-listen: listen tcp " + busy},
	} {
		code, stderr := runExit(t, c.args...)
		if code != 1 || !strings.HasPrefix(stderr, c.msg) || strings.Count(stderr, "\n") != 1 {
			t.Errorf("%v: exit %d, stderr %q; want 1 and one line %q...", c.args, code, stderr, c.msg)
		}
	}
}
