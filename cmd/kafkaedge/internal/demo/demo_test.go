package demo

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

func TestCluster(t *testing.T) {
	d, err := Start(slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	r, err := d.Route()
	if err != nil {
		t.Fatal(err)
	}
	if r.ID != RouteID || r.URI != URI || len(r.Upstream.Nodes.List) != 3 {
		t.Fatalf("demo route %+v", r)
	}

	cl, err := kgo.NewClient(kgo.SeedBrokers(r.Upstream.Nodes.Brokers()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	total := func() int64 {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, Topic)
		if err != nil {
			t.Fatalf("end offsets of %s: %v", Topic, err)
		}
		var n int64
		ends.Each(func(o kadm.ListedOffset) { n += o.Offset })
		return n
	}
	first := total()
	if first < Prime {
		t.Fatalf("%d messages at start, want at least %d", first, Prime)
	}
	for deadline := time.Now().Add(15 * time.Second); total() <= first; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no new demo message within 15s")
		}
	}

	var b bytes.Buffer
	d.Banner(&b, "0.0.0.0:9080")
	if !strings.Contains(b.String(), "WebSocket: ws://127.0.0.1:9080/kafka") {
		t.Fatalf("banner:\n%s", b.String())
	}
}
