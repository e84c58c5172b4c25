package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kafkaedge/kafkaedge/internal/kafkatest"
	"github.com/kafkaedge/kafkaedge/internal/wsclient"
	"github.com/kafkaedge/kafkaedge/proto/pubsub"
)

// Figures of TestMemoryBudget.
const (
	hoardClients = 100
	hoardBudget  = 256 << 20
	// memoryOverhead is what the node may hold beyond -memory-budget, as
	// docs/operations.md states: an eighth of the budget plus 64 MiB up to
	// the Go memory limit the node sets (the runtime and the node's own
	// state, about 30 MiB here, and garbage not collected yet), and 96 MiB
	// more: the heap grows while a collection runs (by up to 50 MiB in
	// this test), and stacks and the runtime's metadata.
	memoryOverhead = hoardBudget/8 + 160<<20
)

// noRaceBin returns a kafkaedge binary built without the race detector,
// whose memory is what a user's would be: the test binary's own when the
// tests run without -race, else one built once for the test.
var noRaceBin = sync.OnceValues(func() (string, error) {
	if !raceEnabled {
		return kafkaedgeBin, nil
	}
	out := filepath.Join(filepath.Dir(kafkaedgeBin), "kafkaedge-norace")
	build := exec.Command("go", "build", "-o", out, ".")
	if b, err := build.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, b)
	}
	return out, nil
})

// peakRSS returns the peak resident memory of process pid (VmHWM).
func peakRSS(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmHWM in /proc/PID/status")
	return 0
}

// TestMemoryBudget: 100 clients with a 4 KiB receive buffer that pipeline
// whole-partition fetches and never read would each hold up to
// -max-outbound (32 MiB) of answers, 3.2 GiB together. With -memory-budget
// 256 MiB the node's peak RSS stays under the budget plus memoryOverhead:
// fetches wait for the budget, the clients holding the most are closed
// first (1008), and a client that reads is served meanwhile.
func TestMemoryBudget(t *testing.T) {
	t.Parallel()
	bin, err := noRaceBin()
	if err != nil {
		t.Fatal(err)
	}
	k := kafkatest.Fake(t, 1)
	const partitions, perPartition, valueSize = 8, 96, 64 << 10 // 6 MiB per partition
	big := k.Topic(t, "big", partitions)
	value := bytes.Repeat([]byte("x"), valueSize)
	var recs []*kgo.Record
	for p := range partitions {
		for range perPartition {
			recs = append(recs, &kgo.Record{Topic: big, Partition: int32(p), Value: value})
		}
	}
	k.Produce(t, produceOpts(kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerBatchMaxBytes(1<<20)), recs...)
	small := k.Topic(t, "small", 1)
	produce(t, k, small, "a", "b")

	p := startBin(t, bin, nil, true, "-route", "/m="+k.Brokers[0], "-memory-budget", strconv.Itoa(hoardBudget),
		"-slow-timeout", "10m")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var clients []*wsclient.Conn
	t.Cleanup(func() {
		for _, c := range clients {
			c.Close()
		}
	})
	for i := range hoardClients {
		c, err := wsclient.Dial(ctx, "ws://"+p.listen+"/m", wsclient.Options{WrapConn: func(nc net.Conn) net.Conn {
			_ = nc.(*net.TCPConn).SetReadBuffer(4 << 10)
			return nc
		}})
		if err != nil {
			t.Fatal(err)
		}
		clients = append(clients, c)
		reqs := make([]*pubsub.PubSubReq, 64)
		for j := range reqs {
			reqs[j] = &pubsub.PubSubReq{Req: &pubsub.PubSubReq_CmdKafkaFetch{CmdKafkaFetch: &pubsub.CmdKafkaFetch{
				Topic: big, Partition: int32((i + j) % partitions), Offset: int64(j % 8 * 12)}}}
		}
		if err := c.SendBatch(reqs...); err != nil {
			t.Fatal(err)
		}
	}
	counter := func(event string) float64 {
		return metricSum(scrape(t, p), "kafkaedge_backpressure_events_total", map[string]string{"event": event})
	}
	waitFor(t, p, "fetches to wait for the memory budget", func() bool { return counter("memory_wait") > 0 })

	// A client that reads is served while the budget is taken.
	reader := dial(t, p, "/m")
	if msgs := reader.fetch(t, small, 0, 0); len(msgs) != 2 {
		t.Fatalf("the reading client got %d messages, want 2", len(msgs))
	}
	waitFor(t, p, "clients holding memory to be closed", func() bool { return counter("memory_closed") >= 10 })
	if msgs := reader.fetch(t, small, 0, 1); len(msgs) != 1 {
		t.Fatalf("the reading client got %d messages, want 1", len(msgs))
	}
	peak := peakRSS(t, p.cmd.Process.Pid)
	t.Logf("peak RSS %.1f MiB with -memory-budget %d MiB; %v clients closed", float64(peak)/(1<<20), hoardBudget>>20, counter("memory_closed"))
	if peak > hoardBudget+memoryOverhead {
		t.Errorf("peak RSS %.1f MiB, want at most the budget %d MiB + %d MiB", float64(peak)/(1<<20), hoardBudget>>20, memoryOverhead>>20)
	}
}
