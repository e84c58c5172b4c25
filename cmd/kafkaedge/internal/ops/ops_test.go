package ops

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kafkaedge/kafkaedge/cmd/kafkaedge/internal/telemetry"
	"github.com/kafkaedge/kafkaedge/reactor"
)

// fakeNode reports the listener and route health it is given.
type fakeNode struct {
	mu      sync.Mutex
	serving bool
	routes  []reactor.RouteHealth
}

func (n *fakeNode) Serving() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.serving
}

func (n *fakeNode) CheckRoutes(context.Context) []reactor.RouteHealth {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.routes
}

func (n *fakeNode) set(serving bool, routes ...reactor.RouteHealth) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.serving, n.routes = serving, routes
}

// get serves GET path on h and returns the status and body.
func get(t *testing.T, h http.Handler, path string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
	b, _ := io.ReadAll(rec.Body)
	return rec.Code, string(b)
}

func readyz(t *testing.T, srv http.Handler) (int, Report) {
	t.Helper()
	status, body := get(t, srv, "/readyz")
	var rep Report
	if err := json.Unmarshal([]byte(body), &rep); err != nil {
		t.Fatalf("/readyz body %q: %v", body, err)
	}
	return status, rep
}

func TestServer(t *testing.T) {
	node := &fakeNode{serving: true}
	m := telemetry.New(false)
	adminUp := true
	h := NewHealth(node, m, func() bool { return adminUp })
	srv := Handler(m, h, slog.New(slog.DiscardHandler))

	if status, body := get(t, srv, "/healthz"); status != 200 || body != "ok\n" {
		t.Fatalf("/healthz: %d %q", status, body)
	}
	// Not ready before the first probe.
	if status, rep := readyz(t, srv); status != 503 || rep.Ready || rep.CheckedAt != "" {
		t.Fatalf("/readyz before a probe: %d %+v", status, rep)
	}

	node.set(true, reactor.RouteHealth{URI: "/a"}, reactor.RouteHealth{URI: "/b"})
	h.check()
	status, rep := readyz(t, srv)
	if status != 200 || !rep.Ready || rep.Routes != 2 || len(rep.Degraded) != 0 || rep.CheckedAt == "" ||
		!rep.Listeners["websocket"] || !rep.Listeners["admin"] {
		t.Fatalf("/readyz with every route up: %d %+v", status, rep)
	}

	node.set(true, reactor.RouteHealth{URI: "/a", Err: errors.New("metadata: no broker answered")})
	h.check()
	status, rep = readyz(t, srv)
	if status != 503 || rep.Ready || len(rep.Degraded) != 1 || rep.Degraded[0] != (Degraded{URI: "/a", Error: "metadata: no broker answered"}) {
		t.Fatalf("/readyz with /a down: %d %+v", status, rep)
	}
	_, metrics := get(t, srv, "/metrics")
	if !strings.Contains(metrics, `kafkaedge_route_ready{route="/a"} 0`) || strings.Contains(metrics, `route="/b"`) {
		t.Fatalf("/metrics: route_ready of /a not 0, or /b (gone) still there:\n%s", metrics)
	}

	// The listeners count as they are now: draining, or the admin API down.
	node.set(false)
	h.check()
	if status, rep := readyz(t, srv); status != 503 || rep.Listeners["websocket"] {
		t.Fatalf("/readyz while draining: %d %+v", status, rep)
	}
	node.set(true)
	adminUp = false
	if status, rep := readyz(t, srv); status != 503 || rep.Listeners["admin"] {
		t.Fatalf("/readyz with the admin API down: %d %+v", status, rep)
	}
}

// TestHealthStartClose: Start probes at once; Close stops the probes and
// may be called twice.
func TestHealthStartClose(t *testing.T) {
	node := &fakeNode{serving: true}
	h := NewHealth(node, nil, nil)
	h.Start()
	for deadline := time.Now().Add(10 * time.Second); !h.Report().Ready; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("not ready 10s after Start: %+v", h.Report())
		}
	}
	h.Close()
	h.Close()
	if rep := h.Report(); !rep.Ready || len(rep.Listeners) != 1 {
		t.Fatalf("report after Close: %+v", rep)
	}
}
