package protocheck_test

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/kafkaedge/kafkaedge/bench/protocheck"
	"github.com/kafkaedge/kafkaedge/kafkawire"
	"github.com/kafkaedge/kafkaedge/reactor"
)

// TestKafkaedge runs the checks against kafkaedge's reactor, so that the
// conventional baseline (bench/conventional) is held to exactly what
// kafkaedge does.
func TestKafkaedge(t *testing.T) {
	c := protocheck.NewCluster(t)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	srv, err := reactor.New(reactor.Config{Addr: "127.0.0.1:0", Loops: 2, Logger: log})
	if err != nil {
		t.Fatalf("reactor.New: %v", err)
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
	if err := srv.PutRoute(reactor.Route{URI: "/kafka", Cluster: kafkawire.Config{Brokers: c.Brokers, Logger: log}}); err != nil {
		t.Fatalf("PutRoute: %v", err)
	}
	protocheck.Run(t, c, srv.Addr(), "/kafka")
}
