package ops

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

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

// TestReadyzBounded: however many routes are degraded and however long
// their errors and URIs, /readyz stays short: at most maxDegraded routes
// are listed (degraded_total counts them all), each URI and error is cut
// to maxText bytes on a UTF-8 boundary and ends in an ellipsis, and the
// body stays under maxReadyzBody.
func TestReadyzBounded(t *testing.T) {
	const maxReadyzBody = 17 << 10 // docs/operations.md, "Health"
	node := &fakeNode{serving: true}
	h := NewHealth(node, nil, nil)
	srv := Handler(telemetry.New(false), h, slog.New(slog.DiscardHandler))

	// The error of a route of 10,000 nodes that all refuse was 836,445
	// characters in issue 11: /readyz answered 836 KB.
	huge := "metadata: no broker answered: " + strings.Repeat("broker 10.0.0.1:9092: dial tcp 10.0.0.1:9092: connect: connection refused; ", 10000)
	node.set(true, reactor.RouteHealth{URI: "/huge", Err: errors.New(huge)})
	h.check()
	if _, body := get(t, srv, "/readyz"); len(body) > 1024 {
		t.Fatalf("/readyz of one route with an error of %d bytes: a body of %d bytes", len(huge), len(body))
	}

	// 10,000 degraded routes, their errors in 2-byte runes so that a cut
	// at any odd offset would split one.
	long := "metadata: no broker answered: " + strings.Repeat("broker é:9092: connection refusé; ", 30)
	var rs []reactor.RouteHealth
	for i := range 10000 {
		rs = append(rs, reactor.RouteHealth{URI: fmt.Sprintf("/r%05d", i), Err: errors.New(long)})
	}
	node.set(true, rs...)
	h.check()
	status, body := get(t, srv, "/readyz")
	var rep Report
	if err := json.Unmarshal([]byte(body), &rep); err != nil {
		t.Fatalf("/readyz body: %v", err)
	}
	if status != 503 || rep.Ready || rep.Routes != 10000 || rep.DegradedTotal != 10000 || len(rep.Degraded) != maxDegraded {
		t.Fatalf("/readyz: %d, ready %v, routes %d, degraded_total %d, %d listed", status, rep.Ready, rep.Routes, rep.DegradedTotal, len(rep.Degraded))
	}
	for i, d := range rep.Degraded {
		if d.URI != fmt.Sprintf("/r%05d", i) {
			t.Fatalf("degraded[%d] is %s: want the first routes by URI", i, d.URI)
		}
		if len(d.Error) > maxText || !utf8.ValidString(d.Error) || !strings.HasSuffix(d.Error, "…") ||
			!strings.HasPrefix(long, strings.TrimSuffix(d.Error, "…")) || len(d.Error) < maxText-utf8.UTFMax-len("…") {
			t.Fatalf("degraded[%d].error (%d bytes) is not the start of the error, cut on a rune to at most %d bytes with an ellipsis: %q", i, len(d.Error), maxText, d.Error)
		}
	}
	if len(body) > maxReadyzBody {
		t.Fatalf("/readyz body of %d bytes, want at most %d", len(body), maxReadyzBody)
	}

	// The worst text there is: every byte of the URIs and errors doubles
	// in JSON (quotes, backslashes), or would grow six-fold (control
	// characters, invalid UTF-8) if they were not replaced.
	worst := strings.Repeat("\"\\\x00\xff\u2028", 500)
	uri := strings.Repeat(`"`, 4090)
	rs = rs[:0]
	for i := range 1000 {
		rs = append(rs, reactor.RouteHealth{URI: fmt.Sprintf("/%04d", i) + uri, Err: errors.New(worst)})
	}
	node.set(false, rs...)
	h.check()
	_, body = get(t, srv, "/readyz")
	if len(body) > maxReadyzBody || !utf8.ValidString(body) {
		t.Fatalf("/readyz body of %d bytes with the worst text (valid UTF-8: %v), want at most %d", len(body), utf8.ValidString(body), maxReadyzBody)
	}
	var worstRep Report
	if err := json.Unmarshal([]byte(body), &worstRep); err != nil || len(worstRep.Degraded) != maxDegraded {
		t.Fatalf("/readyz body with the worst text: %v, %d listed", err, len(worstRep.Degraded))
	}
	for _, d := range worstRep.Degraded {
		if len(d.URI) > maxText || len(d.Error) > maxText || strings.ContainsRune(d.Error, 0) {
			t.Fatalf("degraded route %q: uri of %d bytes, error %q", d.URI, len(d.URI), d.Error)
		}
	}
	// A short error is shown as it is.
	node.set(true, reactor.RouteHealth{URI: "/a", Err: errors.New("metadata: no broker answered")})
	h.check()
	if _, rep := readyz(t, srv); rep.DegradedTotal != 1 || len(rep.Degraded) != 1 || rep.Degraded[0].Error != "metadata: no broker answered" {
		t.Fatalf("/readyz with one short error: %+v", rep)
	}
}
