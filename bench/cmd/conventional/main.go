// Command conventional runs the benchmark suite's baseline: the
// WebSocket-to-Kafka service a team would write with net/http,
// gorilla/websocket and franz-go (package bench/conventional).
//
// It runs as its own process so that the suite can measure its CPU and
// memory apart from the brokers and the load generator:
//
//	conventional -listen 127.0.0.1:0 -route '/kafka=127.0.0.1:9092'
//
// Once listening it logs a line with listen=ADDR on stderr.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/kafkaedge/kafkaedge/bench/conventional"
)

// routeFlags collects repeated -route values.
type routeFlags []conventional.Route

func (r *routeFlags) String() string { return fmt.Sprint(len(*r), " routes") }

func (r *routeFlags) Set(v string) error {
	rt, err := conventional.ParseRoute(v)
	if err != nil {
		return err
	}
	*r = append(*r, rt)
	return nil
}

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "conventional:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("conventional", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:9081", "WebSocket listen `address`")
	maxMessage := fs.Int64("max-message", 1<<20, "maximum client message size in `bytes`")
	var routes routeFlags
	fs.Var(&routes, "route", "route `/uri=host:port[,host:port...]` (repeatable)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if len(routes) == 0 {
		return errors.New("no -route given")
	}
	raiseFileLimit()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))

	srv, err := conventional.New(conventional.Config{Routes: routes, MaxMessage: *maxMessage, Logger: log})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		srv.Close()
		return fmt.Errorf("listen %s: %w", *listen, err)
	}
	hs := &http.Server{Handler: srv, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan error, 1)
	go func() { done <- hs.Serve(ln) }()
	uris := make([]string, len(routes))
	for i, r := range routes {
		uris[i] = r.URI
	}
	log.Info("conventional started", "listen", ln.Addr().String(), "routes", strings.Join(uris, ","))

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	select {
	case <-ctx.Done():
	case err := <-done:
		srv.Close()
		return fmt.Errorf("serve: %w", err)
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = hs.Shutdown(sctx) // hijacked WebSocket connections are closed by srv.Close
	return srv.Close()
}

// raiseFileLimit lifts the soft open-file limit to the hard one so that the
// idle-connections scenario can hold thousands of sockets.
func raiseFileLimit() {
	var lim syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim) == nil && lim.Cur < lim.Max {
		lim.Cur = lim.Max
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
	}
}
