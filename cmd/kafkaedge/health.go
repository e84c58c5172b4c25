package main

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/kafkaedge/kafkaedge/reactor"
)

// Readiness probing. The probes run in the background, so that /readyz
// answers from the last result and a flood of probes cannot become a flood
// of Metadata requests.
const (
	readyInterval = 2 * time.Second // between two rounds of probes
	readyTimeout  = 2 * time.Second // bound of one round
)

// health tracks the readiness of the node: its listeners, and per route
// whether a broker of its cluster answers.
type health struct {
	srv     *reactor.Server
	metrics *metrics
	adminUp func() bool // nil without an admin API

	mu      sync.Mutex
	last    readyReport
	checked bool
	lastOK  map[string]bool // route -> ready, as last reported to metrics

	ctx     context.Context // bounds the probes; cancelled by close
	cancel  context.CancelFunc
	done    chan struct{}
	stopped atomic.Bool
}

// readyReport is the body of /readyz.
type readyReport struct {
	Ready     bool            `json:"ready"`
	Listeners map[string]bool `json:"listeners"`
	Routes    int             `json:"routes"`
	Degraded  []degradedRoute `json:"degraded"`
	CheckedAt string          `json:"checked_at,omitempty"`
}

// degradedRoute is a route none of whose brokers answered.
type degradedRoute struct {
	URI   string `json:"uri"`
	Error string `json:"error"`
}

// newHealth returns a checker; start begins the probes.
func newHealth(srv *reactor.Server, m *metrics, adminUp func() bool) *health {
	ctx, cancel := context.WithCancel(context.Background())
	return &health{srv: srv, metrics: m, adminUp: adminUp, ctx: ctx, cancel: cancel, done: make(chan struct{})}
}

// start runs a round of probes at once and then every readyInterval.
func (h *health) start() {
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

// close stops the probes, cutting short one in progress.
func (h *health) close() {
	if h.stopped.Swap(true) {
		return
	}
	h.cancel()
	<-h.done
}

// check runs one round of probes and records the result.
func (h *health) check() {
	ctx, cancel := context.WithTimeout(h.ctx, readyTimeout)
	defer cancel()
	routes := h.srv.CheckRoutes(ctx)
	if h.ctx.Err() != nil {
		return // closing: keep the last result
	}
	rep := readyReport{Routes: len(routes), Degraded: []degradedRoute{}, CheckedAt: time.Now().UTC().Format(time.RFC3339Nano)}
	ok := make(map[string]bool, len(routes))
	for _, r := range routes {
		ok[r.URI] = r.Err == nil
		if r.Err != nil {
			rep.Degraded = append(rep.Degraded, degradedRoute{URI: r.URI, Error: r.Err.Error()})
		}
	}
	h.mu.Lock()
	before := h.lastOK
	h.lastOK = ok
	h.last = rep
	h.checked = true
	h.mu.Unlock()
	if h.metrics != nil {
		h.metrics.setRouteReady(ok, before)
	}
}

// report returns the readiness now: the listeners as they are, the routes
// as the last probe found them.
func (h *health) report() readyReport {
	h.mu.Lock()
	rep := h.last
	checked := h.checked
	h.mu.Unlock()
	rep.Listeners = map[string]bool{"websocket": h.srv.Serving()}
	if h.adminUp != nil {
		rep.Listeners["admin"] = h.adminUp()
	}
	if rep.Degraded == nil {
		rep.Degraded = []degradedRoute{}
	}
	rep.Ready = checked && len(rep.Degraded) == 0
	for _, up := range rep.Listeners {
		rep.Ready = rep.Ready && up
	}
	return rep
}

// newMetricsServer serves /metrics, /healthz and /readyz.
func newMetricsServer(m *metrics, h *health, log *slog.Logger) *http.Server {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		ErrorLog:      slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		ErrorHandling: promhttp.ContinueOnError,
	}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		rep := h.report()
		w.Header().Set("Content-Type", "application/json")
		if !rep.Ready {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		_ = json.NewEncoder(w).Encode(rep)
	})
	return &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
}
