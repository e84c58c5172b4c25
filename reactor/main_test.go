package reactor

import (
	"os"
	"testing"

	"github.com/kafkaedge/kafkaedge/internal/kafkatest"
)

func TestMain(m *testing.M) {
	kafkatest.Prestart()
	os.Exit(kafkatest.Main(m))
}
