package telemetry

import (
	"testing"
	"time"

	"github.com/kafkaedge/kafkaedge/reactor"
)

// TestLoopEventsDoNotAllocate: the events the event loops report cost no
// allocation once a route's counters exist.
func TestLoopEventsDoNotAllocate(t *testing.T) {
	m := New(false)
	m.Upgrade("/r", 101) // creates the route's counters
	allocs := testing.AllocsPerRun(1000, func() {
		m.Upgrade("/r", 101)
		m.Request(reactor.CmdFetch, true, time.Millisecond)
		m.Delivered("/r", "topic", 1024, 10)
		m.FetchCoalesced()
		m.ListOffsetCoalesced()
		m.Backpressure(reactor.BackpressurePaused)
		m.FrameRejected(reactor.FrameText)
		m.ConnRejected(reactor.RejectMaxConns)
		m.ConnClosed("/r", reactor.CloseInfo{Code: 1001})
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per round of loop events, want 0", allocs)
	}
}

func BenchmarkLoopEvents(b *testing.B) {
	m := New(false)
	m.Upgrade("/r", 101)
	b.ReportAllocs()
	for b.Loop() {
		m.Request(reactor.CmdFetch, true, time.Millisecond)
		m.Delivered("/r", "topic", 1024, 10)
	}
}
