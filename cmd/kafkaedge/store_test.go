package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kafkaedge/kafkaedge/internal/kafkatest"
)

func TestDataDirRestart(t *testing.T) {
	t.Parallel()
	kafkatest.Each(t, testDataDirRestart)
}

func testDataDirRestart(t *testing.T, k *kafkatest.Kafka) {
	topic := k.Topic(t, "kept", 1)
	produce(t, k, topic, "v0", "v1", "v2")
	dir := filepath.Join(t.TempDir(), "data")
	route := fmt.Sprintf(`{"uri":"/kept","plugins":{"kafka-proxy":{}},"upstream":{"scheme":"kafka","nodes":{%q:1}}}`, k.Brokers[0])

	p := start(t, "-data-dir", dir, "-route", "/static=127.0.0.1:1")
	p.mustDo(t, "PUT", "/apisix/admin/routes/kept", route, http.StatusCreated)
	p.mustDo(t, "PUT", "/apisix/admin/routes/gone", `{"uri":"/gone","upstream":{"scheme":"kafka","nodes":{"127.0.0.1:1":1}}}`, http.StatusCreated)
	p.mustDo(t, "DELETE", "/apisix/admin/routes/gone", "", http.StatusOK)
	before := p.mustDo(t, "GET", "/apisix/admin/routes/kept", "", http.StatusOK)
	if code := p.stop(t); code != 0 {
		t.Fatalf("exit %d; stderr:\n%s", code, p.stderr)
	}

	// Only the admin-created route is on disk; the static one is not.
	data, err := os.ReadFile(filepath.Join(dir, "routes.json"))
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Version int               `json:"version"`
		Routes  []json.RawMessage `json:"routes"`
	}
	if err := json.Unmarshal(data, &f); err != nil || f.Version != 1 || len(f.Routes) != 1 {
		t.Fatalf("routes.json: %v %s", err, data)
	}
	if fi, err := os.Stat(filepath.Join(dir, "routes.json")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("routes.json mode: %v %v", fi.Mode(), err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Fatalf("data dir holds more than routes.json: %v", entries)
	}

	q := start(t, "-data-dir", dir, "-route", "/static=127.0.0.1:1")
	after := q.mustDo(t, "GET", "/apisix/admin/routes/kept", "", http.StatusOK)
	if string(after) != string(before) {
		t.Fatalf("route changed across restart:\nbefore %s\nafter  %s", before, after)
	}
	q.mustDo(t, "GET", "/apisix/admin/routes/gone", "", http.StatusNotFound)
	expectData(t, q, "/kept", topic, "v0", "v1", "v2")
}

func TestDataDirCorrupt(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name, content, msg string
	}{
		{"not JSON", `{"version":1,"routes":[`, "is corrupt"},
		{"unknown field", `{"version":1,"routes":[],"extra":true}`, `unknown field "extra"`},
		{"bad route", `{"version":1,"routes":[{"id":"a","uri":"/a","upstream":{"scheme":"http","nodes":{"a:1":1}}}]}`, `routes[0]: upstream.scheme must be "kafka"`},
		{"future version", `{"version":7,"routes":[]}`, "unsupported version 7"},
		{"route without id", `{"version":1,"routes":[{"uri":"/a","upstream":{"scheme":"kafka","nodes":{"a:1":1}}}]}`, "routes[0]: missing id"},
		{"duplicate id", `{"version":1,"routes":[{"id":"a","uri":"/a","upstream":{"scheme":"kafka","nodes":{"a:1":1}}},{"id":"a","uri":"/b","upstream":{"scheme":"kafka","nodes":{"a:1":1}}}]}`, `duplicate route id "a"`},
		{"static uri", `{"version":1,"routes":[{"id":"a","uri":"/static","upstream":{"scheme":"kafka","nodes":{"a:1":1}}}]}`, `uri "/static" is already used by static route "route-1"`},
		{"static id", `{"version":1,"routes":[{"id":"route-1","uri":"/a","upstream":{"scheme":"kafka","nodes":{"a:1":1}}}]}`, `duplicate route id "route-1"`},
		{"control character in a uri", `{"version":1,"routes":[{"id":"a","uri":"/a\u0000","upstream":{"scheme":"kafka","nodes":{"a:1":1}}}]}`, `routes[0]: uri "/a\x00" must not contain control characters`},
		{"too many nodes", `{"version":1,"routes":[{"id":"a","uri":"/a","upstream":{"scheme":"kafka","nodes":` + nodesJSON(brokerList(65)) + `}}]}`,
			`: route "a" (admin API): 65 upstream nodes, more than the limit of 64 (-max-route-nodes)`},
	} {
		dir := t.TempDir()
		path := filepath.Join(dir, "routes.json")
		if err := os.WriteFile(path, []byte(c.content), 0o600); err != nil {
			t.Fatal(err)
		}
		code, stderr := runExit(t, "-data-dir", dir, "-route", "/static=127.0.0.1:1",
			"-listen", "127.0.0.1:0", "-admin-listen", "127.0.0.1:0", "-metrics-listen", "127.0.0.1:0", "-admin-key", "k")
		if code != 2 {
			t.Errorf("%s: exit %d, want 2; stderr:\n%s", c.name, code, stderr)
			continue
		}
		line := strings.TrimSuffix(stderr, "\n")
		if strings.Contains(line, "\n") || !strings.HasPrefix(line, "kafkaedge: ") ||
			!strings.Contains(line, path) || !strings.Contains(line, c.msg) {
			t.Errorf("%s: stderr %q, want one line naming %s and %q", c.name, stderr, path, c.msg)
		}
		if data, _ := os.ReadFile(path); string(data) != c.content {
			t.Errorf("%s: the corrupt file was changed", c.name)
		}
	}
}
