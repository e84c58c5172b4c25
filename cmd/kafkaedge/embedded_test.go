package main

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/kafkaedge/kafkaedge/cmd/kafkaedge/internal/demo"
	"github.com/kafkaedge/kafkaedge/internal/wsclient"
)

func TestEmbedded(t *testing.T) {
	t.Parallel()
	p := startBin(t, demoBin, nil, true, "-embedded")
	// The banner follows the "started" line that start waits for.
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(p.stderr.String(), "ws://"+p.listen+"/kafka") && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
	}
	if !strings.Contains(p.stderr.String(), "ws://"+p.listen+"/kafka") {
		t.Fatalf("banner does not show the WebSocket URL ws://%s/kafka:\n%s", p.listen, p.stderr)
	}
	c := dial(t, p, "/kafka")

	total := func() int64 {
		var n int64
		for part := int32(0); part < demo.Partitions; part++ {
			n += c.listOffset(t, demo.Topic, part, -1)
		}
		return n
	}
	first := total()
	if first < demo.Prime {
		t.Fatalf("demo topic holds %d messages at start, want at least %d", first, demo.Prime)
	}

	seen := 0
	for part := int32(0); part < demo.Partitions; part++ {
		for _, m := range c.fetch(t, demo.Topic, part, 0) {
			var v struct {
				N  *int    `json:"n"`
				At *string `json:"at"`
			}
			if err := json.Unmarshal(m.Value, &v); err != nil || v.N == nil || v.At == nil {
				t.Fatalf("demo message value %q: %v", m.Value, err)
			}
			if _, err := time.Parse(time.RFC3339Nano, *v.At); err != nil {
				t.Fatalf("demo message time %q: %v", *v.At, err)
			}
			if !strings.HasPrefix(string(m.Key), "demo-") || m.Timestamp <= 0 {
				t.Fatalf("demo message key %q timestamp %d", m.Key, m.Timestamp)
			}
			seen++
		}
	}
	if seen == 0 {
		t.Fatal("fetch returned no demo messages")
	}

	// New messages keep arriving.
	deadline := time.Now().Add(15 * time.Second)
	for total() <= first {
		if time.Now().After(deadline) {
			t.Fatalf("no new demo message within 15s (still %d)", first)
		}
		time.Sleep(200 * time.Millisecond)
	}

	// APISIX's example works as written on a demo node: the route created
	// through the admin API takes /kafka over from the demo route.
	p.mustDo(t, "DELETE", "/apisix/admin/routes/"+demo.RouteID, "", http.StatusBadRequest)
	p.mustDo(t, "PUT", "/apisix/admin/routes/kafka", seedBody, http.StatusCreated)
	c.expectClose(t, wsclient.CloseGoingAway, "demo connection after the take-over")
	p.mustDo(t, "GET", "/apisix/admin/routes/"+demo.RouteID, "", http.StatusNotFound)
	list := decode(t, p.mustDo(t, "GET", "/apisix/admin/routes", "", http.StatusOK))
	if list["total"] != float64(1) {
		t.Fatalf("routes after the take-over: %v", list)
	}
}
