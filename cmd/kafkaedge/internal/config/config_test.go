package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/kafkaedge/kafkaedge/kafkawire"
	"github.com/kafkaedge/kafkaedge/reactor"
)

// writeFile writes a YAML config file and returns its path.
func writeFile(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "kafkaedge.yaml")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestLoadFile(t *testing.T) {
	path := writeFile(t, "max-inflight: 16\nfetch-max-wait: 50ms\nrouotes: []\n")
	s := Default()
	err := LoadFile(path, &s)
	if err == nil || err.Error() != "config file "+path+`: line 3: unknown key "rouotes"` {
		t.Fatalf("unknown key: %v", err)
	}
	// Every setting is a key, max-route-nodes too; the file's keys are known.
	path = writeFile(t, "max-route-nodes: 3\nlisten: 127.0.0.1:0\n")
	s = Default()
	if err := LoadFile(path, &s); err != nil || s.MaxRouteNodes != 3 || Default().MaxRouteNodes != 64 {
		t.Fatalf("max-route-nodes: %v %d (default %d)", err, s.MaxRouteNodes, Default().MaxRouteNodes)
	}
	if d := Default(); !s.FromFile("listen") || s.FromFile("admin-listen") || d.FromFile("listen") {
		t.Fatalf("FromFile: listen %v, admin-listen %v", s.FromFile("listen"), s.FromFile("admin-listen"))
	}
	path = writeFile(t, "idle-timeout: 5\n")
	if err := LoadFile(path, &s); err == nil || !strings.Contains(err.Error(), "line 1: idle-timeout: ") || !strings.Contains(err.Error(), "duration (like 30s)") {
		t.Fatalf("bad duration: %v", err)
	}
	s = Default()
	path = writeFile(t, "max-inflight: 16\nfetch-max-wait: 50ms\nroutes:\n"+
		"  - uri: /a\n    upstream: {scheme: kafka, nodes: {\"a:1\": 1}}\n"+
		"  - id: named\n    uri: /b\n    upstream: {scheme: kafka, nodes: [{host: b, port: 2}]}\n"+
		"  - uri: /c\n    upstream: {scheme: kafka, nodes: {\"c:3\": 1}}\n")
	if err := LoadFile(path, &s); err != nil {
		t.Fatal(err)
	}
	if s.MaxInflight != 16 || s.FetchMaxWait != 50*time.Millisecond || s.MaxConns != Default().MaxConns {
		t.Fatalf("settings %+v", s)
	}
	rs, err := s.FileRoutes(path)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, r := range rs {
		ids = append(ids, r.ID+"="+r.URI)
	}
	if strings.Join(ids, " ") != "config-1=/a named=/b config-3=/c" {
		t.Fatalf("file routes %v", ids)
	}
	if rs, err := ReadRoutes(path); err != nil || len(rs) != 3 {
		t.Fatalf("ReadRoutes: %v %v", rs, err)
	}
	path = writeFile(t, "routes:\n  - uri: /a\n    upstream: {scheme: kafka, nodes: {\"a:1\": 1}, retries: 2}\n")
	if _, err := ReadRoutes(path); err == nil || err.Error() != "config file "+path+`: routes[0]: unknown field "upstream.retries"` {
		t.Fatalf("bad route: %v", err)
	}
}

func TestValidate(t *testing.T) {
	if s := Default(); s.Validate() != nil {
		t.Fatalf("the defaults are invalid: %v", s.Validate())
	}
	for _, c := range []struct {
		set func(*Settings)
		msg string
	}{
		{func(s *Settings) { s.AdminListen = "127.0.0.1:70000" }, `-admin-listen "127.0.0.1:70000": port must be 0 to 65535`},
		{func(s *Settings) { s.MetricsListen = "a b:1" }, `-metrics-listen "a b:1": invalid host name "a b"`},
		{func(s *Settings) { s.LogLevel = "loud" }, `-log-level: "loud" is not one of debug, info, warn, error`},
		{func(s *Settings) { s.LogFormat = "xml" }, `-log-format: "xml" is not text or json`},
		{func(s *Settings) { s.IsolationLevel = "serializable" }, `-isolation-level: "serializable" is not read_uncommitted or read_committed`},
		{func(s *Settings) { s.MaxConns = 0 }, "-max-conns must be 1 or more, not 0"},
		{func(s *Settings) { s.MaxRouteNodes = 0 }, "-max-route-nodes must be 1 or more, not 0"},
		{func(s *Settings) { s.BrokerConns = -1 }, "-broker-conns must be 1 or more, not -1"},
		{func(s *Settings) { s.DialTimeout = -time.Second }, "-dial-timeout must be a positive duration, not -1s"},
		{func(s *Settings) { s.DrainTimeout = 0 }, "-drain-timeout must be a positive duration, not 0s"},
		{func(s *Settings) { s.FetchMaxBytes = 5_000_000_000 }, "-fetch-max-bytes must be at most 2147483647, not 5000000000"},
		// reactor's (and wsframe's) own bounds, named by the flag.
		{func(s *Settings) { s.Listen = "localhost" }, `-listen "localhost": reactor: invalid config: Addr "localhost": want host:port`},
		{func(s *Settings) { s.MaxHeader = 100 }, "-max-header 100: reactor: invalid config: wsframe: MaxHeader 100 is below 256 bytes"},
		{func(s *Settings) { s.MaxMessage = 2 << 30 }, "-max-message 2147483648: reactor: invalid config: wsframe: MaxMessage 2147483648 is above 1073741824 bytes"},
		// kafkawire's own bounds, named by the flag.
		{func(s *Settings) { s.BrokerConns = 100 }, "-broker-conns 100: kafkawire config: ConnsPerBroker 100 out of range 1..64"},
		{func(s *Settings) { s.MaxInflightCluster = 5000 }, "-max-inflight-cluster 5000: reactor: invalid config: MaxInflightCluster 5000 is more than MaxInflightTotal 4096"},
		{func(s *Settings) { s.FetchMaxBytes = 2_000_000_000 }, "-fetch-max-bytes 2000000000: kafkawire config: FetchMaxBytes 2000000000 out of range 1..1073741824"},
		{func(s *Settings) { s.FetchMaxWait = time.Minute }, "-fetch-max-wait 1m0s: kafkawire config: FetchMaxWait 1m0s longer than RequestTimeout 30s"},
	} {
		s := Default()
		c.set(&s)
		if err := s.Validate(); err == nil || err.Error() != c.msg {
			t.Errorf("%v, want %q", err, c.msg)
		}
	}
	s := Default()
	s.AdminListen, s.MetricsListen = "", ""
	if err := s.Validate(); err != nil {
		t.Fatalf("listeners turned off: %v", err)
	}
}

// TestDefaults: the defaults of the flags are those of the packages whose
// settings they are.
func TestDefaults(t *testing.T) {
	s := Default()
	r, k := s.Reactor(nil, nil), s.Kafka(nil, nil)
	r.Logger, k.Logger = nil, nil
	if want := reactor.DefaultConfig(); r != want {
		t.Errorf("reactor config of the defaults:\n%+v\nwant reactor.DefaultConfig():\n%+v", r, want)
	}
	if want := kafkawire.DefaultConfig(); !reflect.DeepEqual(k, want) {
		t.Errorf("kafkawire config of the defaults:\n%+v\nwant kafkawire.DefaultConfig():\n%+v", k, want)
	}
}

func TestConfigs(t *testing.T) {
	s := Default()
	s.IsolationLevel, s.LogLevel, s.LogFormat = "read_committed", "WARN", "JSON"
	k := s.Kafka(nil, nil)
	if k.IsolationLevel != 1 || k.ConnsPerBroker != s.BrokerConns || k.FetchMaxBytes != int32(s.FetchMaxBytes) || k.ClientID != "kafkaedge" {
		t.Fatalf("kafkawire config %+v", k)
	}
	if r := s.Reactor(nil, nil); r.Addr != s.Listen || r.MaxOutbound != s.MaxOutbound || r.HandshakeTimeout != s.HandshakeTimeout {
		t.Fatalf("reactor config %+v", r)
	}
	if s.Level().String() != "WARN" || !s.JSONLogs() {
		t.Fatalf("level %v, json %v", s.Level(), s.JSONLogs())
	}
}
