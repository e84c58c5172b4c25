// Package servertest starts kafkaedge's WebSocket server (a reactor.Server)
// for the tests of the packages built on it: on a port from the kernel,
// logging nowhere, shut down when the test ends. (reactor's own tests have
// their helpers inside the package; internal/kafkatest cannot hold this, as
// reactor's tests import it.)
package servertest

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/kafkaedge/kafkaedge/reactor"
)

// Start starts a server with cfg (its Addr and Logger replaced: 127.0.0.1:0
// and a discarding logger) serving routes (a route's Cluster without a
// Logger gets the discarding one), and shuts it down when t ends.
func Start(t testing.TB, cfg reactor.Config, routes ...reactor.Route) *reactor.Server {
	t.Helper()
	log := slog.New(slog.DiscardHandler)
	cfg.Addr, cfg.Logger = "127.0.0.1:0", log
	srv, err := reactor.New(cfg)
	if err != nil {
		t.Fatalf("reactor.New: %v", err)
	}
	for _, r := range routes {
		if r.Cluster.Logger == nil {
			r.Cluster.Logger = log
		}
		if err := srv.PutRoute(r); err != nil {
			t.Fatalf("PutRoute %s: %v", r.URI, err)
		}
	}
	if err := srv.Start(); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
	return srv
}
