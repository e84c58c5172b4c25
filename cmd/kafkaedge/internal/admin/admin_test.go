package admin

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/kafkaedge/kafkaedge/cmd/kafkaedge/internal/apisix"
	"github.com/kafkaedge/kafkaedge/cmd/kafkaedge/internal/routes"
	"github.com/kafkaedge/kafkaedge/reactor"
)

// testKey is the admin key of the tests.
const testKey = "test-admin-key"

// maxNodes is the most upstream nodes a route of the tests may have.
const maxNodes = 64

// manyNodes is upstream.nodes with n brokers, in the object form.
func manyNodes(n int) string {
	b := make([]string, n)
	for i := range b {
		b[i] = fmt.Sprintf(`"10.0.0.1:%d":1`, i+1)
	}
	return "{" + strings.Join(b, ",") + "}"
}

// seedBody is the route of APISIX's "Connect to Apache Kafka" example, as written.
const seedBody = `{"uri": "/kafka","upstream": {"nodes": {"kafka-server1:9092": 1,"kafka-server2:9092": 1},"type": "none","scheme": "kafka"}}`

// node is the admin API over a registry whose routes go to a reactor.Server
// that is not started (PutRoute makes the kafkawire clients; nothing dials).
type node struct {
	api http.Handler
	srv *reactor.Server
}

// newNode loads the registry with static and keeps its dynamic routes in
// st (nil: in memory).
func newNode(t *testing.T, st *routes.Store, static ...routes.Route) *node {
	t.Helper()
	log := slog.New(slog.DiscardHandler)
	srv, err := reactor.New(reactor.Config{Addr: "127.0.0.1:0", Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Shutdown(context.Background()) })
	reg := routes.New(routes.Reactor{Server: srv}, st, maxNodes, log)
	if err := reg.Load(static); err != nil {
		t.Fatal(err)
	}
	return &node{api: New(reg, testKey), srv: srv}
}

// do serves one request with key and returns the status and the decoded body.
func (n *node) do(t *testing.T, method, path, body, key string) (int, map[string]any) {
	t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	if key != "" {
		req.Header.Set("X-API-KEY", key)
	}
	rec := httptest.NewRecorder()
	n.api.ServeHTTP(rec, req)
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Fatalf("%s %s: Content-Type %q", method, path, ct)
	}
	var m map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &m); err != nil {
		t.Fatalf("%s %s: body %q: %v", method, path, rec.Body, err)
	}
	return rec.Code, m
}

// mustDo is do with the right key that expects status want.
func (n *node) mustDo(t *testing.T, method, path, body string, want int) map[string]any {
	t.Helper()
	status, m := n.do(t, method, path, body, testKey)
	if status != want {
		t.Fatalf("%s %s: status %d, want %d; body %v", method, path, status, want, m)
	}
	return m
}

// uris are the URIs of the server's routes.
func (n *node) uris() []string {
	var out []string
	for _, r := range n.srv.Routes() {
		out = append(out, r.URI)
	}
	return out
}

// flagRoute is a static route as -route makes it.
func flagRoute(t *testing.T, id, flag string) routes.Route {
	t.Helper()
	r, err := apisix.ParseFlag(flag)
	if err != nil {
		t.Fatal(err)
	}
	r.ID = id
	return routes.Route{Spec: r, Kind: routes.Static}
}

func TestAuth(t *testing.T) {
	n := newNode(t, nil)
	for _, key := range []string{"", "wrong-key", testKey + "x", testKey[:len(testKey)-1]} {
		status, m := n.do(t, "PUT", "/apisix/admin/routes/kafka", seedBody, key)
		if status != http.StatusUnauthorized {
			t.Fatalf("key %q: status %d, want 401", key, status)
		}
		if msg, _ := m["error_msg"].(string); !strings.HasPrefix(msg, "failed to check token") {
			t.Fatalf("key %q: error_msg %v", key, m)
		}
	}
	if status, _ := n.do(t, "GET", "/apisix/admin/routes", "", "nope"); status != http.StatusUnauthorized {
		t.Fatalf("GET with a wrong key: %d", status)
	}
	if len(n.uris()) != 0 {
		t.Fatalf("a refused request changed the routes: %v", n.uris())
	}
	n.mustDo(t, "GET", "/apisix/admin/routes", "", http.StatusOK)
}

func TestBadRequests(t *testing.T) {
	n := newNode(t, nil, flagRoute(t, "route-1", "/static=127.0.0.1:1"))
	n.mustDo(t, "PUT", "/apisix/admin/routes/first", `{"uri":"/taken","upstream":{"scheme":"kafka","nodes":{"127.0.0.1:9092":1}}}`, http.StatusCreated)

	up := `"upstream":{"scheme":"kafka","nodes":{"127.0.0.1:9092":1}}`
	for _, c := range []struct {
		name, id, body string
		status         int
		msg            string
	}{
		{"bad JSON", "r", `{"uri":`, 400, "invalid JSON"},
		{"not an object", "r", `[1,2]`, 400, "route must be an object"},
		{"unknown field", "r", `{"uri":"/u","hosts":["a"],` + up + `}`, 400, `unknown field "hosts"`},
		{"unknown nested field", "r", `{"uri":"/u","upstream":{"scheme":"kafka","nodes":{"a:1":1},"retries":3}}`, 400, `unknown field "upstream.retries"`},
		{"unknown tls field", "r", `{"uri":"/u","upstream":{"scheme":"kafka","nodes":{"a:1":1},"tls":{"verify":true,"client_cert":"x"}}}`, 400, `unknown field "upstream.tls.client_cert"`},
		{"scheme not kafka", "r", `{"uri":"/u","upstream":{"scheme":"http","nodes":{"a:1":1}}}`, 400, `upstream.scheme must be "kafka"`},
		{"scheme missing", "r", `{"uri":"/u","upstream":{"nodes":{"a:1":1}}}`, 400, `upstream.scheme must be "kafka"`},
		{"no nodes", "r", `{"uri":"/u","upstream":{"scheme":"kafka"}}`, 400, "upstream.nodes is required"},
		{"empty nodes", "r", `{"uri":"/u","upstream":{"scheme":"kafka","nodes":{}}}`, 400, "upstream.nodes is empty"},
		{"node without port", "r", `{"uri":"/u","upstream":{"scheme":"kafka","nodes":{"kafka1":1}}}`, 400, `bad address "kafka1"`},
		{"bad port", "r", `{"uri":"/u","upstream":{"scheme":"kafka","nodes":{"kafka1:99999":1}}}`, 400, `bad address "kafka1:99999"`},
		{"bad host", "r", `{"uri":"/u","upstream":{"scheme":"kafka","nodes":[{"host":"a b","port":9092}]}}`, 400, `upstream.nodes[0].host`},
		{"no upstream", "r", `{"uri":"/u"}`, 400, "upstream is required"},
		{"no uri", "r", `{` + up + `}`, 400, "uri is required"},
		{"relative uri", "r", `{"uri":"u",` + up + `}`, 400, `must start with /`},
		{"NUL in the uri", "r", `{"uri":"/a\u0000b",` + up + `}`, 400, `uri "/a\x00b" must not contain control characters (byte 0x00 at offset 2)`},
		{"DEL in the uri", "r", `{"uri":"/a\u007f",` + up + `}`, 400, `must not contain control characters (byte 0x7f at offset 2)`},
		{"too many nodes", "r", `{"uri":"/u","upstream":{"scheme":"kafka","nodes":` + manyNodes(maxNodes+1) + `}}`, 400,
			`route "r" (admin API): 65 upstream nodes, more than the limit of 64 (-max-route-nodes)`},
		{"unknown plugin", "r", `{"uri":"/u","plugins":{"limit-count":{}},` + up + `}`, 400, `plugin "limit-count" is not supported`},
		{"sasl without password", "r", `{"uri":"/u","plugins":{"kafka-proxy":{"sasl":{"username":"u"}}},` + up + `}`, 400, "sasl.password is required"},
		{"duplicate uri", "r", `{"uri":"/taken",` + up + `}`, 400, `uri "/taken" is already used by route "first"`},
		{"static uri", "r", `{"uri":"/static",` + up + `}`, 400, `already used by static route "route-1"`},
		{"static id", "route-1", `{"uri":"/other",` + up + `}`, 400, "is static"},
		{"id mismatch", "r", `{"id":"other","uri":"/u",` + up + `}`, 400, "wrong route id"},
		{"bad id", "a%20b", `{"uri":"/u",` + up + `}`, 400, `invalid route id "a b"`},
		{"no id in the body", "", `{"uri":"/u",` + up + `}`, 400, "missing route id"},
		// The TLS files are read by kafkawire, when the route's client is made.
		{"tls file missing", "r", `{"uri":"/u","upstream":{"scheme":"kafka","nodes":{"a:1":1},"tls":{"verify":true,"ca_file":"/nonexistent/ca.pem"}}}`, 400, "open /nonexistent/ca.pem: no such file or directory"},
		{"tls cert without key", "r", `{"uri":"/u","upstream":{"scheme":"kafka","nodes":{"a:1":1},"tls":{"cert_file":"/c.pem"}}}`, 400, "cert_file and key_file must be given together"},
		{"weight not a number", "r", `{"uri":"/u","upstream":{"scheme":"kafka","nodes":{"a:1":"x"}}}`, 400, "must be an integer"},
		{"body too large", "r", `{"uri":"/u","desc":"` + strings.Repeat("x", MaxBody) + `",` + up + `}`, 413, "larger than"},
	} {
		path := "/apisix/admin/routes/" + c.id
		if c.id == "" {
			path = "/apisix/admin/routes" // PUT on the collection: the id must be in the body
		}
		status, m := n.do(t, "PUT", path, c.body, testKey)
		if status != c.status {
			t.Errorf("%s: status %d, want %d; body %v", c.name, status, c.status, m)
			continue
		}
		if msg, _ := m["error_msg"].(string); !strings.Contains(msg, c.msg) {
			t.Errorf("%s: error_msg %q, want it to contain %q", c.name, msg, c.msg)
		}
	}
	// POST is held to the same limit.
	status, m := n.do(t, "POST", "/apisix/admin/routes", `{"uri":"/u","upstream":{"scheme":"kafka","nodes":`+manyNodes(10000)+`}}`, testKey)
	if msg, _ := m["error_msg"].(string); status != 400 || !strings.HasSuffix(msg, ": 10000 upstream nodes, more than the limit of 64 (-max-route-nodes)") {
		t.Errorf("POST of 10000 nodes: %d %v", status, m)
	}
	n.mustDo(t, "PUT", "/apisix/admin/routes/max", `{"uri":"/max","upstream":{"scheme":"kafka","nodes":`+manyNodes(maxNodes)+`}}`, http.StatusCreated)
	n.mustDo(t, "DELETE", "/apisix/admin/routes/max", "", http.StatusOK)

	// Nothing of the above was stored, nor reached the server.
	if list := n.mustDo(t, "GET", "/apisix/admin/routes", "", 200); list["total"] != float64(2) {
		t.Fatalf("after bad requests: %v", list)
	}
	if got := n.uris(); !slices.Equal(got, []string{"/static", "/taken"}) {
		t.Fatalf("server routes after bad requests: %v", got)
	}
}

func TestRoutes(t *testing.T) {
	n := newNode(t, nil, flagRoute(t, "route-1", "/static=127.0.0.1:1"))

	// The APISIX documentation's example works as written; its hosts need not resolve.
	got := n.mustDo(t, "PUT", "/apisix/admin/routes/kafka", seedBody, http.StatusCreated)
	if got["key"] != "/apisix/routes/kafka" {
		t.Fatalf("PUT response key: %v", got)
	}
	value := n.mustDo(t, "GET", "/apisix/admin/routes/kafka", "", 200)["value"].(map[string]any)
	if value["id"] != "kafka" || value["uri"] != "/kafka" || value["create_time"] == nil || value["update_time"] == nil {
		t.Fatalf("GET value: %v", value)
	}
	up := value["upstream"].(map[string]any)
	if nodes := up["nodes"].(map[string]any); nodes["kafka-server1:9092"] != float64(1) || nodes["kafka-server2:9092"] != float64(1) || up["scheme"] != "kafka" {
		t.Fatalf("GET upstream: %v", up)
	}
	// The same PUT again is an update (200), keeping create_time.
	if v := n.mustDo(t, "PUT", "/apisix/admin/routes/kafka", seedBody, http.StatusOK)["value"].(map[string]any); v["create_time"] != value["create_time"] {
		t.Fatalf("update changed create_time: %v", v)
	}
	// A new URI for the route moves it in the server.
	n.mustDo(t, "PUT", "/apisix/admin/routes/kafka", strings.Replace(seedBody, `"/kafka"`, `"/moved"`, 1), http.StatusOK)
	if got := n.uris(); !slices.Equal(got, []string{"/moved", "/static"}) {
		t.Fatalf("server routes after the move: %v", got)
	}

	// POST creates with a generated id.
	post := n.mustDo(t, "POST", "/apisix/admin/routes", `{"uri":"/posted","upstream":{"scheme":"kafka","nodes":{"127.0.0.1:1":1}}}`, http.StatusCreated)
	postedKey, _ := post["key"].(string)
	postedID := strings.TrimPrefix(postedKey, "/apisix/routes/")
	if len(postedID) != 20 || postedID == postedKey {
		t.Fatalf("POST key: %v", post)
	}
	// PUT on the collection takes the id from the body (APISIX v2 style).
	n.mustDo(t, "PUT", "/apisix/admin/routes", `{"id":"v2","uri":"/v2","upstream":{"scheme":"kafka","nodes":{"127.0.0.1:1":1}}}`, http.StatusCreated)

	list := n.mustDo(t, "GET", "/apisix/admin/routes", "", 200)
	var keys []string
	for _, item := range list["list"].([]any) {
		keys = append(keys, item.(map[string]any)["key"].(string))
	}
	if list["total"] != float64(4) || !slices.Equal(keys, []string{"/apisix/routes/" + postedID, "/apisix/routes/kafka", "/apisix/routes/route-1", "/apisix/routes/v2"}) {
		t.Fatalf("list (sorted by id, static routes included): %v", list)
	}

	del := n.mustDo(t, "DELETE", "/apisix/admin/routes/v2", "", 200)
	if del["deleted"] != "1" || del["key"] != "/apisix/routes/v2" {
		t.Fatalf("DELETE response: %v", del)
	}
	if m := n.mustDo(t, "GET", "/apisix/admin/routes/v2", "", http.StatusNotFound); m["message"] != "Key not found" {
		t.Fatalf("GET of a deleted route: %v", m)
	}
	n.mustDo(t, "DELETE", "/apisix/admin/routes/v2", "", http.StatusNotFound)
	if m := n.mustDo(t, "DELETE", "/apisix/admin/routes/route-1", "", http.StatusBadRequest); !strings.Contains(m["error_msg"].(string), "is static") {
		t.Fatalf("DELETE of a static route: %v", m)
	}
	if got := n.uris(); !slices.Equal(got, []string{"/moved", "/posted", "/static"}) {
		t.Fatalf("server routes after the deletes: %v", got)
	}

	n.mustDo(t, "PATCH", "/apisix/admin/routes/kafka", "{}", http.StatusMethodNotAllowed)
	n.mustDo(t, "DELETE", "/apisix/admin/routes", "", http.StatusMethodNotAllowed)
	n.mustDo(t, "GET", "/apisix/admin/upstreams", "", http.StatusNotFound)
}

// TestDemoTakeOver: an admin route on the demo route's URI replaces it.
func TestDemoTakeOver(t *testing.T) {
	demo := flagRoute(t, "embedded", "/kafka=127.0.0.1:1")
	demo.Kind = routes.Demo
	n := newNode(t, nil, demo)
	n.mustDo(t, "DELETE", "/apisix/admin/routes/embedded", "", http.StatusBadRequest)
	n.mustDo(t, "PUT", "/apisix/admin/routes/kafka", seedBody, http.StatusCreated)
	n.mustDo(t, "GET", "/apisix/admin/routes/embedded", "", http.StatusNotFound)
	if list := n.mustDo(t, "GET", "/apisix/admin/routes", "", 200); list["total"] != float64(1) {
		t.Fatalf("routes after the take-over: %v", list)
	}
	rs := n.srv.Routes()
	if len(rs) != 1 || rs[0].URI != "/kafka" || !slices.Equal(rs[0].Cluster.Brokers, []string{"kafka-server1:9092", "kafka-server2:9092"}) {
		t.Fatalf("server routes after the take-over: %+v", rs)
	}
}

// TestSaveFailureRollsBack: a change that cannot be saved is answered with
// 500, and memory, server and disk stay as they were.
func TestSaveFailureRollsBack(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	st, err := routes.OpenStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	n := newNode(t, st)
	n.mustDo(t, "PUT", "/apisix/admin/routes/a", `{"uri":"/a","upstream":{"scheme":"kafka","nodes":{"127.0.0.1:1":1}}}`, http.StatusCreated)

	// Make the directory unusable: a file where it was.
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dir, []byte("not a directory"), 0o600); err != nil {
		t.Fatal(err)
	}
	if m := n.mustDo(t, "PUT", "/apisix/admin/routes/b", `{"uri":"/b","upstream":{"scheme":"kafka","nodes":{"127.0.0.1:1":1}}}`, http.StatusInternalServerError); !strings.Contains(m["error_msg"].(string), "routes not saved") {
		t.Fatalf("PUT with an unusable data dir: %v", m)
	}
	n.mustDo(t, "GET", "/apisix/admin/routes/b", "", http.StatusNotFound)
	n.mustDo(t, "PUT", "/apisix/admin/routes/a", `{"uri":"/a2","upstream":{"scheme":"kafka","nodes":{"127.0.0.1:1":1}}}`, http.StatusInternalServerError)
	n.mustDo(t, "DELETE", "/apisix/admin/routes/a", "", http.StatusInternalServerError)
	if v := n.mustDo(t, "GET", "/apisix/admin/routes/a", "", http.StatusOK)["value"].(map[string]any); v["uri"] != "/a" {
		t.Fatalf("route a after failed changes: %v", v)
	}
	// The server kept /a and did not gain /b or /a2.
	if got := n.uris(); !slices.Equal(got, []string{"/a"}) {
		t.Fatalf("server routes after failed changes: %v", got)
	}
}
