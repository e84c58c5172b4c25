package protocheck_test

import (
	"os"
	"testing"

	"github.com/kafkaedge/kafkaedge/bench/protocheck"
	"github.com/kafkaedge/kafkaedge/internal/kafkatest"
	"github.com/kafkaedge/kafkaedge/internal/servertest"
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
		srv := servertest.Start(t, reactor.Config{Loops: 2}, reactor.Route{URI: "/kafka", Cluster: kafkawire.Config{Brokers: c.Brokers}})
		protocheck.Run(t, c, srv.Addr(), "/kafka")
	})
}
