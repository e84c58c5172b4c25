// Package ops is kafkaedge's operations endpoints: /metrics, /healthz and
// /readyz, with the readiness of the node probed in the background (its
// listeners, and per route whether a broker of its cluster answers).
package ops

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/kafkaedge/kafkaedge/cmd/kafkaedge/internal/telemetry"
	"github.com/kafkaedge/kafkaedge/reactor"
)

// Readiness probing. The probes run in the background, so that /readyz
// answers from the last result and a flood of probes cannot become a flood
// of Metadata requests.
const (
	readyInterval = 2 * time.Second // between two rounds of probes
	readyTimeout  = 2 * time.Second // bound of one round
)

// The body of /readyz stays short whatever the routes: at most maxDegraded
// routes are listed under degraded (degraded_total counts them all), and
// each one's URI and error are cut to maxText bytes.
const (
	maxDegraded = 16
	maxText     = 256
)

// Node is what the readiness probes ask: a *reactor.Server.
type Node interface {
	// Serving reports whether the WebSocket listener accepts connections.
	Serving() bool
	// CheckRoutes probes the cluster of every route.
	CheckRoutes(ctx context.Context) []reactor.RouteHealth
}

// Health tracks the readiness of the node: its listeners, and per route
// whether a broker of its cluster answers.
type Health struct {
	node    Node
	metrics *telemetry.Metrics // nil: no kafkaedge_route_ready
	adminUp func() bool        // nil without an admin API

	mu      sync.Mutex
	last    Report
	checked bool
	lastOK  map[string]bool // route -> ready, as last reported to metrics

	ctx     context.Context // bounds the probes; cancelled by close
	cancel  context.CancelFunc
	done    chan struct{}
	stopped atomic.Bool
}

// Report is the body of /readyz.
type Report struct {
	Ready     bool            `json:"ready"`
	Listeners map[string]bool `json:"listeners"`
	Routes    int             `json:"routes"`
	// DegradedTotal counts the degraded routes; Degraded lists the first
	// maxDegraded of them by URI.
	DegradedTotal int        `json:"degraded_total"`
	Degraded      []Degraded `json:"degraded"`
	CheckedAt     string     `json:"checked_at,omitempty"`
}

// Degraded is a route none of whose brokers answered.
type Degraded struct {
	URI   string `json:"uri"`
	Error string `json:"error"`
}

// NewHealth returns the readiness of node, whose admin API is up while
// adminUp (nil: there is none) says so; Start begins the probes, and each
// round's result goes to m too (nil: nowhere).
func NewHealth(node Node, m *telemetry.Metrics, adminUp func() bool) *Health {
	ctx, cancel := context.WithCancel(context.Background())
	return &Health{node: node, metrics: m, adminUp: adminUp, ctx: ctx, cancel: cancel, done: make(chan struct{})}
}

// Start runs a round of probes at once and then every readyInterval.
func (h *Health) Start() {
	go func() {
		defer close(h.done)
		t := time.NewTicker(readyInterval)
		defer t.Stop()
		for {
			h.check()
			select {
			case <-h.ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
}

// Close stops the probes, cutting short one in progress.
func (h *Health) Close() {
	if h.stopped.Swap(true) {
		return
	}
	h.cancel()
	<-h.done
}

// check runs one round of probes and records the result.
func (h *Health) check() {
	ctx, cancel := context.WithTimeout(h.ctx, readyTimeout)
	defer cancel()
	routes := h.node.CheckRoutes(ctx)
	if h.ctx.Err() != nil {
		return // closing: keep the last result
	}
	rep := Report{Routes: len(routes), Degraded: []Degraded{}, CheckedAt: time.Now().UTC().Format(time.RFC3339Nano)}
	ok := make(map[string]bool, len(routes))
	for _, r := range routes {
		ok[r.URI] = r.Err == nil
		if r.Err == nil {
			continue
		}
		if rep.DegradedTotal++; len(rep.Degraded) < maxDegraded {
			rep.Degraded = append(rep.Degraded, Degraded{URI: clip(r.URI, maxText), Error: clip(r.Err.Error(), maxText)})
		}
	}
	h.mu.Lock()
	before := h.lastOK
	h.lastOK = ok
	h.last = rep
	h.checked = true
	h.mu.Unlock()
	if h.metrics != nil {
		h.metrics.SetRouteReady(ok, before)
	}
}

// Report returns the readiness now: the listeners as they are, the routes
// as the last probe found them.
func (h *Health) Report() Report {
	h.mu.Lock()
	rep := h.last
	checked := h.checked
	h.mu.Unlock()
	rep.Listeners = map[string]bool{"websocket": h.node.Serving()}
	if h.adminUp != nil {
		rep.Listeners["admin"] = h.adminUp()
	}
	if rep.Degraded == nil {
		rep.Degraded = []Degraded{}
	}
	rep.Ready = checked && rep.DegradedTotal == 0
	for _, up := range rep.Listeners {
		rep.Ready = rep.Ready && up
	}
	return rep
}

// Handler serves m on /metrics and h on /healthz and /readyz; the errors of
// /metrics go to log.
func Handler(m *telemetry.Metrics, h *Health, log *slog.Logger) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", m.Handler(log))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		rep := h.Report()
		w.Header().Set("Content-Type", "application/json")
		if !rep.Ready {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		enc := json.NewEncoder(w)
		enc.SetEscapeHTML(false) // "<" stays one byte: see clip
		_ = enc.Encode(rep)
	})
	return mux
}

// ellipsis ends a text that clip cut.
const ellipsis = "…"

// clip returns s cut to at most n bytes on a UTF-8 boundary, ending in an
// ellipsis if it was cut, with each control character (which JSON would
// write as \u00XX) replaced by a space and each byte that is not UTF-8 by
// U+FFFD: the JSON of the result is at most 2n bytes ('"' and '\' are
// escaped with one byte more, U+2028 and U+2029 with three).
func clip(s string, n int) string {
	if len(s) > 4*n {
		s = s[:4*n] // what is cut off need not be looked at
	}
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	if len(s) <= n {
		return s
	}
	cut := n - len(ellipsis)
	for !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + ellipsis
}
