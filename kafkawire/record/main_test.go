package record

import (
	"os"
	"testing"

	"github.com/kafkaedge/kafkaedge/internal/kafkatest"
)

// TestMain stops the shared real Kafka clusters (internal/kafkatest) that
// the tests running on real brokers start.
func TestMain(m *testing.M) { os.Exit(kafkatest.Main(m)) }
