package apisix

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/kafkaedge/kafkaedge/kafkawire"
)

// seedBody is the route of APISIX's "Connect to Apache Kafka" example, as written.
const seedBody = `{"uri": "/kafka","upstream": {"nodes": {"kafka-server1:9092": 1,"kafka-server2:9092": 1},"type": "none","scheme": "kafka"}}`

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
		if !Same(r, r2) {
			t.Fatalf("a route and its round trip are not the Same:\n%s", out)
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
		r2, err := ParseRoute(out)
		if err != nil {
			t.Fatalf("accepted route %s does not re-parse: %v", out, err)
		}
		if !Same(r, r2) {
			t.Fatalf("accepted route %s is not the Same after a round trip", out)
		}
	})
}

// TestSame: every field a route echoes, and its cluster, count; the times do not.
func TestSame(t *testing.T) {
	const base = `{"id":"a","uri":"/a","name":"n","labels":{"x":"y"},"plugins":{"kafka-proxy":{"sasl":{"username":"u","password":"p"}}},
		"upstream":{"nodes":[{"host":"k1","port":9092,"weight":1}],"scheme":"kafka","tls":{"verify":true}},"create_time":1,"update_time":2}`
	parse := func(body string) *RouteSpec {
		t.Helper()
		r, err := ParseRoute([]byte(body))
		if err != nil {
			t.Fatalf("%s: %v", body, err)
		}
		return r
	}
	a := parse(base)
	if b := parse(strings.NewReplacer(`"create_time":1`, `"create_time":7`, `"update_time":2`, `"update_time":8`).Replace(base)); !Same(a, b) {
		t.Error("routes that differ only in their times are not the Same")
	}
	for _, c := range []struct{ name, old, new string }{
		{"id", `"id":"a"`, `"id":"b"`},
		{"uri", `"uri":"/a"`, `"uri":"/b"`},
		{"name", `"name":"n"`, `"name":"m"`},
		{"labels", `{"x":"y"}`, `{"x":"z"}`},
		{"password", `"password":"p"`, `"password":"q"`},
		{"mechanism", `"password":"p"`, `"password":"p","mechanism":"SCRAM-SHA-256"`},
		{"broker", `"host":"k1"`, `"host":"k2"`},
		{"weight", `"weight":1`, `"weight":2`},
		{"nodes form", `[{"host":"k1","port":9092,"weight":1}]`, `{"k1:9092":1}`},
		{"tls", `"verify":true`, `"verify":false`},
		{"no tls", `,"tls":{"verify":true}`, ``},
	} {
		if Same(a, parse(strings.Replace(base, c.old, c.new, 1))) {
			t.Errorf("a change of the %s leaves the route the Same", c.name)
		}
	}
	// A mechanism left out is APISIX's PLAIN.
	if !Same(a, parse(strings.Replace(base, `"password":"p"`, `"password":"p","mechanism":"PLAIN"`, 1))) {
		t.Error("an explicit PLAIN differs from the default")
	}
}

func TestCluster(t *testing.T) {
	r, err := ParseRoute([]byte(`{"uri":"/a","plugins":{"kafka-proxy":{"sasl":{"username":"u","password":"p"}}},
		"upstream":{"nodes":{"k2:9092":1,"k1:9093":1},"scheme":"kafka","tls":{"verify":true,"ca_file":"/ca.pem","server_name":"k"}}}`))
	if err != nil {
		t.Fatal(err)
	}
	c := r.Cluster(kafkawire.Config{ConnsPerBroker: 3})
	if c.ConnsPerBroker != 3 || strings.Join(c.Brokers, ",") != "k1:9093,k2:9092" {
		t.Fatalf("cluster %+v", c)
	}
	if c.TLS == nil || !c.TLS.Verify || c.TLS.CAFile != "/ca.pem" || c.TLS.ServerName != "k" {
		t.Fatalf("TLS %+v", c.TLS)
	}
	if c.SASL == nil || c.SASL.Mechanism != "PLAIN" || c.SASL.Username != "u" || c.SASL.Password != "p" {
		t.Fatalf("SASL %+v", c.SASL)
	}
}

func TestParseFlag(t *testing.T) {
	r, err := ParseFlag("/a=k1:9092, k2:9092")
	if err != nil {
		t.Fatal(err)
	}
	if r.URI != "/a" || strings.Join(r.Upstream.Nodes.Brokers(), ",") != "k1:9092,k2:9092" || r.Upstream.Scheme != "kafka" {
		t.Fatalf("route %+v", r)
	}
	for flag, want := range map[string]string{
		"/a":       `-route "/a": want /uri=host:port`,
		"/a=k,":    `-route "/a=k,": empty broker address`,
		"/a=kafka": `-route "/a=kafka": upstream.nodes: bad address "kafka": want host:port`,
		"/a=k:0":   `bad address "k:0": port must be 1 to 65535`,
		"/a=a b:1": `bad address "a b:1": invalid host name "a b"`,
		"a=k:1":    `uri "a" must start with /`,
		"/a?b=k:1": "must be a plain path",
	} {
		if _, err := ParseFlag(flag); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("-route %s: %v, want %q", flag, err, want)
		}
	}
}

// TestURIControlCharacters: a URI with a control character (a byte below
// 0x20, or 0x7f) could never be requested (an HTTP request line cannot
// carry it), so it is refused, from JSON and from -route alike.
func TestURIControlCharacters(t *testing.T) {
	for _, c := range []struct{ uri, want string }{
		{"/a\x00b", `uri "/a\x00b" must not contain control characters (byte 0x00 at offset 2)`},
		{"/\x01", `uri "/\x01" must not contain control characters (byte 0x01 at offset 1)`},
		{"/a\x1f", `(byte 0x1f at offset 2)`},
		{"/a\x7f", `(byte 0x7f at offset 2)`},
		{"/a\tb", `uri "/a\tb" must not contain control characters (byte 0x09 at offset 2)`},
		{"/a\nb", `(byte 0x0a at offset 2)`},
	} {
		body, _ := json.Marshal(map[string]any{"uri": c.uri, "upstream": map[string]any{"scheme": "kafka", "nodes": map[string]int{"k:1": 1}}})
		if _, err := ParseRoute(body); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("uri %q: %v, want %q", c.uri, err, c.want)
		}
		if _, err := ParseFlag(c.uri + "=k:1"); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("-route %q: %v, want %q", c.uri, err, c.want)
		}
	}
	// Bytes from 0x80 up are not control characters.
	if _, err := ParseFlag("/caf\u00e9=k:1"); err != nil {
		t.Errorf("a URI with a non-ASCII letter: %v", err)
	}
}
