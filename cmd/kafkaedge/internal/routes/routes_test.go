package routes

import (
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kafkaedge/kafkaedge/cmd/kafkaedge/internal/apisix"
)

// fakeSink is a server's route table: the routes by URI.
type fakeSink struct {
	routes map[string]*apisix.RouteSpec
	refuse string // a URI PutRoute refuses
	puts   int
}

func newSink() *fakeSink { return &fakeSink{routes: make(map[string]*apisix.RouteSpec)} }

func (s *fakeSink) PutRoute(r *apisix.RouteSpec) error {
	if r.URI == s.refuse {
		return errors.New("refused")
	}
	s.puts++
	s.routes[r.URI] = r
	return nil
}

func (s *fakeSink) DeleteRoute(uri string) bool {
	_, ok := s.routes[uri]
	delete(s.routes, uri)
	return ok
}

// uris are the URIs the sink holds, sorted.
func (s *fakeSink) uris() string { return strings.Join(slices.Sorted(maps.Keys(s.routes)), " ") }

// spec is a route id on uri to broker.
func spec(t *testing.T, id, uri, broker string) *apisix.RouteSpec {
	t.Helper()
	r, err := apisix.ParseFlag(uri + "=" + broker)
	if err != nil {
		t.Fatal(err)
	}
	r.ID = id
	return r
}

func route(t *testing.T, kind Kind, id, uri string) Route {
	return Route{spec(t, id, uri, "127.0.0.1:1"), kind}
}

func newRegistry(sink Sink, st *Store) *Registry {
	return newLimited(sink, st, 0)
}

// newLimited is newRegistry with at most maxNodes upstream nodes a route.
func newLimited(sink Sink, st *Store, maxNodes int) *Registry {
	g := New(sink, st, maxNodes, slog.New(slog.DiscardHandler))
	clock := time.Unix(1000, 0)
	g.now = func() time.Time { clock = clock.Add(time.Second); return clock }
	return g
}

// TestCheck: the one rule of the table, with the message of each case.
func TestCheck(t *testing.T) {
	for _, c := range []struct {
		name  string
		kept  []Route
		added []Route
		err   string // "" = accepted
		yield []string
	}{
		{"distinct", []Route{route(t, Static, "a", "/a")}, []Route{route(t, Dynamic, "b", "/b"), route(t, File, "c", "/c")}, "", nil},
		{"flags on one uri", nil, []Route{route(t, Static, "route-1", "/a"), route(t, Static, "route-2", "/a")}, `duplicate route uri "/a" (routes "route-1" and "route-2")`, nil},
		{"file and flag on one uri", nil, []Route{route(t, File, "config-1", "/a"), route(t, Static, "route-1", "/a")}, `duplicate route uri "/a" (routes "config-1" and "route-1")`, nil},
		{"one id twice", nil, []Route{route(t, File, "x", "/a"), route(t, Static, "x", "/b")}, `duplicate route id "x" (config file and -route routes)`, nil},
		{"admin on an admin uri", []Route{route(t, Dynamic, "first", "/taken")}, []Route{route(t, Dynamic, "r", "/taken")}, `uri "/taken" is already used by route "first"`, nil},
		{"admin on a static uri", []Route{route(t, Static, "route-1", "/static")}, []Route{route(t, Dynamic, "r", "/static")}, `uri "/static" is already used by static route "route-1"`, nil},
		{"admin on a file uri", []Route{route(t, File, "config-1", "/f")}, []Route{route(t, Dynamic, "r", "/f")}, `uri "/f" is already used by static route "config-1"`, nil},
		{"flag on the demo uri", nil, []Route{route(t, Static, "route-1", "/kafka"), route(t, Demo, "embedded", "/kafka")}, `-embedded routes /kafka to the demo cluster, but route "route-1" uses it`, nil},
		{"file route on the demo uri", []Route{route(t, Demo, "embedded", "/kafka")}, []Route{route(t, File, "config-1", "/kafka")}, `-embedded routes /kafka to the demo cluster, but route "config-1" uses it`, nil},
		{"the demo id", []Route{route(t, Static, "embedded", "/e")}, []Route{route(t, Demo, "embedded", "/kafka")}, `duplicate route id "embedded" (-route and -embedded routes)`, nil},
		{"admin takes the demo uri", []Route{route(t, Demo, "embedded", "/kafka")}, []Route{route(t, Dynamic, "kafka", "/kafka")}, "", []string{"embedded"}},
		{"the demo yields its uri, not its id", []Route{route(t, Demo, "embedded", "/kafka")}, []Route{route(t, Dynamic, "embedded", "/kafka")}, `duplicate route id "embedded"`, nil},
	} {
		kept := make(map[string]Route)
		for _, r := range c.kept {
			kept[r.Spec.ID] = r
		}
		yielded, col := check(kept, c.added, 0)
		switch {
		case c.err == "" && col != nil:
			t.Errorf("%s: refused: %v", c.name, col)
		case c.err != "" && (col == nil || !strings.Contains(col.Error(), c.err)):
			t.Errorf("%s: %v, want %q", c.name, col, c.err)
		case !slices.Equal(yielded, c.yield):
			t.Errorf("%s: yielded %v, want %v", c.name, yielded, c.yield)
		}
	}
}

// nodes is a route id on uri with n upstream nodes.
func nodes(t *testing.T, kind Kind, id, uri string, n int) Route {
	t.Helper()
	brokers := make([]string, n)
	for i := range brokers {
		brokers[i] = fmt.Sprintf("127.0.0.1:%d", i+1)
	}
	return Route{spec(t, id, uri, strings.Join(brokers, ",")), kind}
}

// TestMaxNodes: a route with more upstream nodes than the limit is refused
// wherever it comes from (the config file, -route, the store, the admin
// API, a reload), with a message that names the count and the limit, and
// nothing of it reaches the sink.
func TestMaxNodes(t *testing.T) {
	st, err := OpenStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	const tail = ": 3 upstream nodes, more than the limit of 2 (-max-route-nodes)"
	for _, c := range []struct {
		r    Route
		want string
	}{
		{nodes(t, File, "config-1", "/f", 3), `route "config-1" (config file)` + tail},
		{nodes(t, Static, "route-1", "/s", 3), `route "route-1" (-route)` + tail},
		{nodes(t, Dynamic, "a", "/a", 3), st.Path() + `: route "a" (admin API)` + tail},
	} {
		sink := newSink()
		err := newLimited(sink, st, 2).Load([]Route{nodes(t, Static, "ok", "/ok", 2), c.r})
		if err == nil || err.Error() != c.want || sink.puts != 0 {
			t.Errorf("Load of %s: %v (%d routes put), want %q", c.r.Spec.ID, err, sink.puts, c.want)
		}
	}

	sink := newSink()
	g := newLimited(sink, st, 2)
	if err := g.Load([]Route{nodes(t, File, "config-1", "/f", 2)}); err != nil {
		t.Fatal(err)
	}
	if _, err := g.Put(nodes(t, Dynamic, "big", "/big", 3).Spec); err == nil || err.Error() != `route "big" (admin API)`+tail {
		t.Errorf("Put of 3 nodes: %v", err)
	}
	if _, err := g.Put(nodes(t, Dynamic, "two", "/two", 2).Spec); err != nil {
		t.Errorf("Put of 2 nodes: %v", err)
	}
	if _, err := g.ReloadFile([]*apisix.RouteSpec{nodes(t, File, "config-1", "/f", 3).Spec}); err == nil || err.Error() != `route "config-1" (config file)`+tail {
		t.Errorf("reload with 3 nodes: %v", err)
	}
	if _, ok := g.Get("big"); ok || sink.uris() != "/f /two" || len(sink.routes["/f"].Upstream.Nodes.List) != 2 {
		t.Fatalf("after the refused routes: table %v, sink %s", g.List(), sink.uris())
	}
}

// TestLoadChecksFirst: a collision anywhere puts nothing into the sink.
func TestLoadChecksFirst(t *testing.T) {
	sink := newSink()
	g := newRegistry(sink, nil)
	err := g.Load([]Route{route(t, File, "config-1", "/a"), route(t, Static, "route-1", "/b"), route(t, Static, "route-2", "/a")})
	if err == nil || sink.puts != 0 || len(g.List()) != 0 {
		t.Fatalf("Load with a collision: %v, %d routes put, table %v", err, sink.puts, g.List())
	}
}

// TestLoadStored: a stored route takes the demo route's URI over, and an
// error about a stored route names the store's file.
func TestLoadStored(t *testing.T) {
	st, err := OpenStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	sink := newSink()
	g := newRegistry(sink, st)
	stored := route(t, Dynamic, "kafka", "/kafka")
	if err := g.Load([]Route{route(t, Static, "route-1", "/s"), route(t, Demo, "embedded", "/kafka"), stored}); err != nil {
		t.Fatal(err)
	}
	if _, ok := g.Get("embedded"); ok || sink.routes["/kafka"] != stored.Spec || sink.uris() != "/kafka /s" {
		t.Fatalf("after the take-over: table %v, sink %v", g.List(), sink.routes)
	}
	if r, _ := g.Get("kafka"); r.CreateTime == 0 || r.UpdateTime != r.CreateTime {
		t.Fatalf("times of a loaded route: %d %d", r.CreateTime, r.UpdateTime)
	}

	g = newRegistry(newSink(), st)
	err = g.Load([]Route{route(t, Static, "route-1", "/s"), route(t, Dynamic, "a", "/s")})
	if want := st.Path() + `: uri "/s" is already used by static route "route-1"`; err == nil || err.Error() != want {
		t.Fatalf("stored route on a static uri: %v, want %q", err, want)
	}
	sink = newSink()
	sink.refuse = "/bad"
	err = newRegistry(sink, st).Load([]Route{route(t, Dynamic, "a", "/bad")})
	if want := st.Path() + `: route "a": refused`; err == nil || err.Error() != want {
		t.Fatalf("stored route the sink refuses: %v, want %q", err, want)
	}
}

func TestReloadFile(t *testing.T) {
	sink := newSink()
	g := newRegistry(sink, nil)
	if err := g.Load([]Route{
		route(t, File, "keep", "/keep"), route(t, File, "gone", "/gone"), route(t, File, "change", "/change"),
		route(t, Static, "route-1", "/flag"),
	}); err != nil {
		t.Fatal(err)
	}
	kept, _ := g.Get("keep")
	putsBefore := sink.puts

	// keep is the same route again: unchanged, its times kept; change gets
	// another broker; gone is gone; new is new.
	res, err := g.ReloadFile([]*apisix.RouteSpec{
		spec(t, "keep", "/keep", "127.0.0.1:1"), spec(t, "change", "/change", "127.0.0.1:2"), spec(t, "new", "/new", "127.0.0.1:1"),
	})
	if err != nil {
		t.Fatal(err)
	}
	if res != (ReloadResult{Added: 1, Removed: 1, Changed: 1, Unchanged: 1}) {
		t.Fatalf("reload result %+v", res)
	}
	if r, _ := g.Get("keep"); r.CreateTime != kept.CreateTime || r.UpdateTime != kept.UpdateTime {
		t.Fatalf("unchanged route's times: %d %d, were %d %d", r.CreateTime, r.UpdateTime, kept.CreateTime, kept.UpdateTime)
	}
	if r, _ := g.Get("change"); r.UpdateTime <= r.CreateTime {
		t.Fatalf("changed route's times: %d %d", r.CreateTime, r.UpdateTime)
	}
	if sink.uris() != "/change /flag /keep /new" || sink.puts != putsBefore+3 {
		t.Fatalf("sink after reload: %s (%d puts)", sink.uris(), sink.puts-putsBefore)
	}

	// A file that collides with itself or with another route changes nothing.
	for _, rs := range [][]*apisix.RouteSpec{
		{spec(t, "keep", "/keep", "127.0.0.1:1"), spec(t, "dup", "/flag", "127.0.0.1:1")},
		{spec(t, "keep", "/keep", "127.0.0.1:1"), spec(t, "route-1", "/other", "127.0.0.1:1")},
		{spec(t, "a", "/a", "127.0.0.1:1"), spec(t, "b", "/a", "127.0.0.1:1")},
	} {
		before := fmt.Sprint(g.List())
		if _, err := g.ReloadFile(rs); err == nil || fmt.Sprint(g.List()) != before || sink.uris() != "/change /flag /keep /new" {
			t.Fatalf("colliding reload: %v; table %v", err, g.List())
		}
	}

	// A route the sink refuses is counted; the others are applied.
	sink.refuse = "/refused"
	res, err = g.ReloadFile([]*apisix.RouteSpec{spec(t, "keep", "/keep", "127.0.0.1:1"), spec(t, "x", "/refused", "127.0.0.1:1")})
	if err != nil || res != (ReloadResult{Removed: 2, Unchanged: 1, Failed: 1}) {
		t.Fatalf("reload with a refused route: %+v %v", res, err)
	}
	if _, ok := g.Get("x"); ok || sink.uris() != "/flag /keep" {
		t.Fatalf("after the refused route: table %v, sink %s", g.List(), sink.uris())
	}
}

func TestStore(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	st, err := OpenStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	if rs, err := st.Load(); err != nil || len(rs) != 0 {
		t.Fatalf("Load without a file: %v %v", rs, err)
	}
	a, b := spec(t, "a", "/a", "k1:9092"), spec(t, "b", "/b", "k2:9092")
	if err := st.Save([]*apisix.RouteSpec{a, b}); err != nil {
		t.Fatal(err)
	}
	rs, err := st.Load()
	if err != nil || len(rs) != 2 || !apisix.Same(rs[0], a) || !apisix.Same(rs[1], b) {
		t.Fatalf("Load after Save: %v %v", rs, err)
	}
	if fi, err := os.Stat(st.Path()); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("%s: %v %v", st.Path(), fi, err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Fatalf("the store's directory holds more than routes.json: %v", entries)
	}
}
