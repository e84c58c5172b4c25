package conventional_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/kafkaedge/kafkaedge/bench/conventional"
	"github.com/kafkaedge/kafkaedge/bench/protocheck"
	"github.com/kafkaedge/kafkaedge/internal/wsclient"
)

// TestProtocol runs the suite's shared end-to-end protocol checks against
// the conventional server, the same checks kafkaedge passes.
func TestProtocol(t *testing.T) {
	c := protocheck.NewCluster(t)
	srv, err := conventional.New(conventional.Config{
		Routes: []conventional.Route{{URI: "/kafka", Brokers: c.Brokers}},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	hs := httptest.NewServer(srv)
	t.Cleanup(func() {
		hs.Close()
		srv.Close()
	})
	protocheck.Run(t, c, strings.TrimPrefix(hs.URL, "http://"), "/kafka")
}

func TestParseRoute(t *testing.T) {
	r, err := conventional.ParseRoute("/kafka=127.0.0.1:9092, 127.0.0.1:9093")
	if err != nil {
		t.Fatalf("ParseRoute: %v", err)
	}
	if r.URI != "/kafka" || len(r.Brokers) != 2 || r.Brokers[1] != "127.0.0.1:9093" {
		t.Errorf("ParseRoute = %+v", r)
	}
	for _, bad := range []string{"", "/kafka", "kafka=1:2", "/kafka=", "/kafka=a:1,,b:2"} {
		if _, err := conventional.ParseRoute(bad); err == nil {
			t.Errorf("ParseRoute(%q) succeeded", bad)
		}
	}
}

func TestNewWithoutRoutes(t *testing.T) {
	if _, err := conventional.New(conventional.Config{}); err != conventional.ErrNoRoutes {
		t.Errorf("New without routes: %v, want ErrNoRoutes", err)
	}
}

func TestDuplicateRoute(t *testing.T) {
	r := conventional.Route{URI: "/kafka", Brokers: []string{"127.0.0.1:1"}}
	if _, err := conventional.New(conventional.Config{Routes: []conventional.Route{r, r}}); err == nil {
		t.Error("New with a duplicate URI succeeded")
	}
}

// TestCloseGoingAway checks that Close sends open connections close 1001.
func TestCloseGoingAway(t *testing.T) {
	c := protocheck.NewCluster(t)
	srv, err := conventional.New(conventional.Config{
		Routes: []conventional.Route{{URI: "/kafka", Brokers: c.Brokers}},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	defer hs.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := wsclient.Dial(ctx, "ws://"+strings.TrimPrefix(hs.URL, "http://")+"/kafka", wsclient.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Ping(nil); err != nil {
		t.Fatal(err)
	}
	srv.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	_, err = conn.Recv()
	var ce *websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != websocket.CloseGoingAway {
		t.Errorf("read after Close: %v, want close 1001", err)
	}
}
