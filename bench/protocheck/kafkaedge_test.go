package protocheck_test

import (
	"context"
	"io"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/kafkaedge/kafkaedge/bench/protocheck"
	"github.com/kafkaedge/kafkaedge/internal/kafkatest"
	"github.com/kafkaedge/kafkaedge/kafkawire"
	"github.com/kafkaedge/kafkaedge/reactor"
)

func TestMain(m *testing.M) { os.Exit(kafkatest.Main(m)) }

// TestKafkaedge runs the checks against kafkaedge's reactor, so that the
// conventional baseline (bench/conventional) is held to exactly what
// kafkaedge does, on kfake and on real Kafka of each verified version.
func TestKafkaedge(t *testing.T) {
	kafkatest.Each(t, func(t *testing.T, k *kafkatest.Kafka) {
		c := protocheck.Seed(t, k)
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
	})
}
