// Command kafkaedge is a WebSocket edge for Apache Kafka that speaks the
// pub/sub protocol of Apache APISIX's kafka-proxy, with an APISIX-compatible
// admin API for its routes.
//
// It reads its settings from flags and an optional YAML file (-config), keeps
// routes created through the admin API under -data-dir, and, in the demo
// build (go build -tags demo; make run), runs an in-process demo cluster with
// -embedded so that data flows without any Kafka installed. See
// docs/operations.md.
//
// This file is the command's flags, its wiring and its signals; what it
// wires lives in the packages under internal/.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/kafkaedge/kafkaedge/cmd/kafkaedge/internal/admin"
	"github.com/kafkaedge/kafkaedge/cmd/kafkaedge/internal/apisix"
	"github.com/kafkaedge/kafkaedge/cmd/kafkaedge/internal/config"
	"github.com/kafkaedge/kafkaedge/cmd/kafkaedge/internal/logpipe"
	"github.com/kafkaedge/kafkaedge/cmd/kafkaedge/internal/ops"
	"github.com/kafkaedge/kafkaedge/cmd/kafkaedge/internal/routes"
	"github.com/kafkaedge/kafkaedge/cmd/kafkaedge/internal/telemetry"
	"github.com/kafkaedge/kafkaedge/kafkawire"
	"github.com/kafkaedge/kafkaedge/reactor"
)

// version is set at build time with -ldflags "-X main.version=v1.2.3".
var version = ""

// Exit codes.
const (
	exitOK     = 0
	exitFailed = 1 // a runtime failure: a port in use, a failed shutdown
	exitConfig = 2 // bad configuration: nothing was started
)

// adminKeyEnv names the environment variable read when neither -admin-key
// nor the config file sets the key (so that it stays out of ps output).
const adminKeyEnv = "KAFKAEDGE_ADMIN_KEY"

// embedded is the demo cluster of -embedded (internal/demo), linked only
// into the demo build; see demo.go.
type embedded interface {
	Route() (*apisix.RouteSpec, error)
	Banner(w io.Writer, listen string)
	Close()
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// routeFlags collects repeated -route values.
type routeFlags []string

func (r *routeFlags) String() string { return strings.Join(*r, " ") }

func (r *routeFlags) Set(v string) error {
	*r = append(*r, v)
	return nil
}

// cmdline is what the command line holds besides the settings.
type cmdline struct {
	config  string
	routes  routeFlags
	version bool
}

// newFlagSet binds every flag to s and c; the defaults are s's current values.
func newFlagSet(s *config.Settings, c *cmdline) *flag.FlagSet {
	fs := flag.NewFlagSet("kafkaedge", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}

	fs.StringVar(&c.config, "config", "", "YAML `file` with settings (keys named like these flags) and a routes: list; flags override it")
	fs.Var(&c.routes, "route", "add a static `route` /uri=host:port[,host:port...] (repeatable)")
	fs.BoolVar(&c.version, "version", false, "print the version and exit")

	fs.StringVar(&s.Listen, "listen", s.Listen, "WebSocket listen `address` (host:port, port 0 = any free port)")
	fs.StringVar(&s.AdminListen, "admin-listen", s.AdminListen, "admin API listen `address`; empty disables the admin API")
	fs.StringVar(&s.AdminKey, "admin-key", s.AdminKey, "admin API `key` expected in X-API-KEY (default: $"+adminKeyEnv+", else a random key printed once at start)")
	fs.StringVar(&s.DataDir, "data-dir", s.DataDir, "`directory` where routes created through the admin API are kept (routes.json); empty = in memory only")
	fs.BoolVar(&s.Embedded, "embedded", s.Embedded, "start an in-process demo Kafka (topic \"demo\", new messages every 500ms) routed at /kafka, WebSocket on 127.0.0.1:9080 unless -listen is given; only in the demo build (make run)")
	fs.IntVar(&s.MaxRouteNodes, "max-route-nodes", s.MaxRouteNodes, "most bootstrap brokers (upstream.nodes) a route may have: a request may dial each of them")
	fs.StringVar(&s.LogLevel, "log-level", s.LogLevel, "log `level`: debug, info, warn or error")
	fs.StringVar(&s.LogFormat, "log-format", s.LogFormat, "log `format`: text or json")
	fs.DurationVar(&s.DrainTimeout, "drain-timeout", s.DrainTimeout, "on SIGINT/SIGTERM, how long to answer requests in flight and close connections (1001) before exiting")
	fs.StringVar(&s.MetricsListen, "metrics-listen", s.MetricsListen, "`address` serving /metrics (Prometheus), /healthz and /readyz; empty disables them")
	fs.BoolVar(&s.MetricsTopicLabels, "metrics-topic-labels", s.MetricsTopicLabels, "add a topic label to kafkaedge_delivered_messages_total, and group and topic labels to kafkaedge_group_lag_messages (unbounded: one series per topic or group clients ask for)")

	fs.IntVar(&s.Loops, "loops", s.Loops, "event loops (0 = one per CPU)")
	fs.IntVar(&s.MaxConns, "max-conns", s.MaxConns, "maximum WebSocket connections")
	fs.IntVar(&s.MaxInflight, "max-inflight", s.MaxInflight, "maximum requests in flight per connection")
	fs.IntVar(&s.MaxInflightTotal, "max-inflight-total", s.MaxInflightTotal, "maximum Kafka requests in flight on the whole node")
	fs.IntVar(&s.MaxInflightCluster, "max-inflight-cluster", s.MaxInflightCluster, "maximum Kafka requests in flight to one cluster, at most -max-inflight-total (0: -max-inflight-total divided among the routes' clusters, at most 4 ways)")
	fs.IntVar(&s.MaxMessage, "max-message", s.MaxMessage, "maximum client message size in `bytes`")
	fs.IntVar(&s.MaxHeader, "max-header", s.MaxHeader, "maximum HTTP upgrade request header size in `bytes`")
	fs.IntVar(&s.MaxOutbound, "max-outbound", s.MaxOutbound, "maximum `bytes` queued to one client before it counts as slow")
	fs.IntVar(&s.MemoryBudget, "memory-budget", s.MemoryBudget, "node-wide `bytes` of fetch answers in flight and queued to clients (0: a quarter of the machine's memory)")
	fs.DurationVar(&s.SlowTimeout, "slow-timeout", s.SlowTimeout, "close a client that stays over -max-outbound this long")
	fs.DurationVar(&s.IdleTimeout, "idle-timeout", s.IdleTimeout, "close a connection idle this long")
	fs.DurationVar(&s.HandshakeTimeout, "handshake-timeout", s.HandshakeTimeout, "close a connection that has not upgraded within this time")
	fs.DurationVar(&s.MaxFetchWait, "max-fetch-wait", s.MaxFetchWait, "longest wait a client's CmdKafkaFetch may ask for with max_wait_ms (a long poll)")
	fs.IntVar(&s.MaxSubscriptions, "max-subscriptions", s.MaxSubscriptions, "most live subscriptions (CmdKafkaSubscribe) per connection")
	fs.IntVar(&s.MaxSubscriptionPartitions, "max-subscription-partitions", s.MaxSubscriptionPartitions, "most partitions one subscription may read")
	fs.IntVar(&s.MaxPushBytes, "max-push-bytes", s.MaxPushBytes, "largest push of a subscription, in `bytes` of messages (at most an eighth of -max-outbound; a single larger message is pushed whole)")
	fs.IntVar(&s.TailCache, "tail-cache", s.TailCache, "node-wide `bytes` of the tail cache: the last messages of the partitions subscriptions read, on top of -memory-budget")
	fs.DurationVar(&s.SubscriptionRefresh, "subscription-refresh", s.SubscriptionRefresh, "how often the topics of subscriptions are looked up (new partitions, deleted topics)")
	fs.IntVar(&s.MaxGroupMembers, "max-group-members", s.MaxGroupMembers, "most group subscriptions (consumer group members) per connection")
	fs.DurationVar(&s.GroupSessionTimeout, "group-session-timeout", s.GroupSessionTimeout, "classic protocol: how long a group's coordinator keeps a member of this node that stopped heartbeating (KIP-848: the broker's group.consumer.session.timeout.ms)")
	fs.StringVar(&s.GroupProtocol, "group-protocol", s.GroupProtocol, "how group subscriptions join their groups: auto (KIP-848's consumer protocol where the cluster enabled it, else classic), classic or consumer")

	fs.IntVar(&s.BrokerConns, "broker-conns", s.BrokerConns, "TCP connections per Kafka broker")
	fs.DurationVar(&s.DialTimeout, "dial-timeout", s.DialTimeout, "Kafka broker dial timeout")
	fs.DurationVar(&s.RequestTimeout, "request-timeout", s.RequestTimeout, "Kafka request timeout")
	fs.DurationVar(&s.FetchMaxWait, "fetch-max-wait", s.FetchMaxWait, "Fetch max wait sent to Kafka (APISIX: 100ms)")
	fs.IntVar(&s.FetchMinBytes, "fetch-min-bytes", s.FetchMinBytes, "Fetch min `bytes`: 0 answers a fetch at the end of a partition at once; 1 or more makes the broker hold it up to -fetch-max-wait for data (long poll)")
	fs.IntVar(&s.FetchMaxBytes, "fetch-max-bytes", s.FetchMaxBytes, "Fetch max `bytes` per response (APISIX: 10 MiB)")
	fs.IntVar(&s.FetchPartitionMaxBytes, "fetch-partition-max-bytes", s.FetchPartitionMaxBytes, "Fetch max `bytes` per partition")
	fs.DurationVar(&s.MetadataRefresh, "metadata-refresh", s.MetadataRefresh, "Kafka metadata refresh interval")
	fs.IntVar(&s.MaxBatchBytes, "max-batch-bytes", s.MaxBatchBytes, "maximum decompressed size of one record batch in `bytes`")
	fs.DurationVar(&s.ProduceLinger, "produce-linger", s.ProduceLinger, "how long a partition's record batch waits for more records from the connections that produce")
	fs.IntVar(&s.ProduceBatchBytes, "produce-batch-bytes", s.ProduceBatchBytes, "largest record batch produced, before compression, in `bytes` (a record that does not fit alone is refused)")
	fs.StringVar(&s.ProduceCodec, "produce-codec", s.ProduceCodec, "compression of produced batches: none, gzip, snappy, lz4 or zstd")
	fs.StringVar(&s.IsolationLevel, "isolation-level", s.IsolationLevel, "Kafka isolation `level` of fetches: read_uncommitted or read_committed")
	return fs
}

// usage prints the help text of fs.
func usage(w io.Writer, fs *flag.FlagSet) {
	fmt.Fprintf(w, "Usage: kafkaedge [flags]\n\n"+
		"kafkaedge serves the APISIX kafka pub/sub protocol over WebSocket.\n"+
		"Quick start: kafkaedge -route '/kafka=broker1:9092,broker2:9092'\n"+
		"             make run   (the demo build: kafkaedge -embedded, a demo Kafka in-process, WebSocket at /kafka)\n\nFlags:\n")
	fs.SetOutput(w)
	fs.PrintDefaults()
	fs.SetOutput(io.Discard)
}

// run is main without os.Exit; it returns the exit code.
//
// Everything that can be wrong with the configuration is found before a
// listener opens: the settings (by the packages that own them), the stored
// routes and every static route, put into the not yet started server.
func run(args []string, stdout, stderr io.Writer) int {
	fail := func(code int, err error) int {
		fmt.Fprintf(stderr, "kafkaedge: %s\n", err)
		return code
	}

	s := config.Default()
	var c cmdline
	fs := newFlagSet(&s, &c)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			usage(stderr, fs)
			return exitOK
		}
		return fail(exitConfig, fmt.Errorf("%w (see kafkaedge -h)", err))
	}
	if fs.NArg() > 0 {
		return fail(exitConfig, fmt.Errorf("unexpected argument %q (see kafkaedge -h)", fs.Arg(0)))
	}
	if c.version {
		fmt.Fprintf(stdout, "kafkaedge %s (%s)\n", versionString(), runtime.Version())
		return exitOK
	}

	// Catch the signals from here on, so that one arriving during the start
	// still ends in a clean shutdown.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	initial, err := loadSettings(fs, &s, &c)
	if err != nil {
		return fail(exitConfig, err)
	}
	if s.Embedded && startDemo == nil {
		return fail(exitConfig, errors.New("-embedded: this kafkaedge is the production build, without the demo cluster; the demo build is make run (go build -tags demo ./cmd/kafkaedge)"))
	}
	logs := logpipe.New(stderr, s.JSONLogs(), s.Level())
	defer logs.Close()
	log := logs.Logger()

	var m *telemetry.Metrics
	var robs reactor.Observer
	var kobs kafkawire.Observer
	if s.MetricsListen != "" {
		m = telemetry.New(s.MetricsTopicLabels)
		robs, kobs = m, m
	}
	srv, err := reactor.New(s.Reactor(log, robs))
	if err != nil {
		return fail(exitConfig, fmt.Errorf("server settings: %w", err))
	}
	goLimit := setMemoryLimit(srv.MemoryBudget() + int64(s.TailCache))
	// The routes' Kafka clients are closed by the server's shutdown, also
	// when the start fails before the server listens.
	stopServer := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), s.DrainTimeout)
		defer cancel()
		return srv.Shutdown(ctx)
	}

	var st *routes.Store
	var stored []*apisix.RouteSpec
	if s.DataDir != "" {
		if st, err = routes.OpenStore(s.DataDir); err != nil {
			return fail(exitConfig, fmt.Errorf("-data-dir: %w", err))
		}
		if stored, err = st.Load(); err != nil {
			return fail(exitConfig, err)
		}
	}

	var dm embedded
	var demoRoute *apisix.RouteSpec
	if s.Embedded {
		if dm, err = startDemo(log); err != nil {
			return fail(exitFailed, err)
		}
		defer dm.Close()
		if demoRoute, err = dm.Route(); err != nil {
			return fail(exitFailed, err)
		}
		initial = append(initial, routes.Route{Spec: demoRoute, Kind: routes.Demo})
	}
	for _, r := range stored {
		initial = append(initial, routes.Route{Spec: r, Kind: routes.Dynamic})
	}
	reg := routes.New(routes.Reactor{Server: srv, Base: s.Kafka(log, kobs)}, st, s.MaxRouteNodes, log)
	if err := reg.Load(initial); err != nil {
		stopServer()
		return fail(exitConfig, err)
	}

	generatedKey := false
	if s.AdminListen != "" && s.AdminKey == "" {
		if s.AdminKey = os.Getenv(adminKeyEnv); s.AdminKey == "" {
			s.AdminKey = randomKey()
			generatedKey = true
		}
	}

	// Bind the admin API first and probe the WebSocket address, so that an
	// address in use is reported plainly before anything is serving.
	var adminLn net.Listener
	if s.AdminListen != "" {
		if adminLn, err = net.Listen("tcp", s.AdminListen); err != nil {
			stopServer()
			return fail(exitFailed, fmt.Errorf("-admin-listen: %w", err))
		}
		defer adminLn.Close()
	}
	var metricsLn net.Listener
	if s.MetricsListen != "" {
		if metricsLn, err = net.Listen("tcp", s.MetricsListen); err != nil {
			stopServer()
			return fail(exitFailed, fmt.Errorf("-metrics-listen: %w", err))
		}
		defer metricsLn.Close()
	}
	if err := probeListen(s.Listen); err != nil {
		stopServer()
		return fail(exitFailed, err)
	}
	if err := srv.Start(); err != nil {
		stopServer()
		return fail(exitFailed, fmt.Errorf("listen %s: %w", s.Listen, err))
	}

	var adminSrv *http.Server
	adminErr := make(chan error, 1)
	var adminUp func() bool
	if adminLn != nil {
		adminSrv = newServer(admin.New(reg, s.AdminKey), 64<<10, log)
		var serving atomic.Bool
		serving.Store(true)
		adminUp = serving.Load
		go func() {
			err := adminSrv.Serve(adminLn)
			serving.Store(false)
			adminErr <- err
		}()
		s.AdminListen = adminLn.Addr().String()
	}

	var metricsSrv *http.Server
	metricsErr := make(chan error, 1)
	var hc *ops.Health
	if metricsLn != nil {
		m.RegisterServer(srv, logs, versionString())
		hc = ops.NewHealth(srv, m, adminUp)
		hc.Start()
		defer hc.Close()
		mlog := log.With("component", "metrics")
		metricsSrv = newServer(ops.Handler(m, hc, mlog), 16<<10, mlog)
		go func() { metricsErr <- metricsSrv.Serve(metricsLn) }()
		s.MetricsListen = metricsLn.Addr().String()
	}

	// Started: from here on the log is written (see logpipe.Pipeline).
	logs.Release()
	log.Info("kafkaedge started", "version", versionString(), "listen", srv.Addr(),
		"admin", s.AdminListen, "metrics", s.MetricsListen, "routes", len(reg.List()), "data_dir", s.DataDir,
		"memory_budget", srv.MemoryBudget(), "go_memory_limit", goLimit)
	if generatedKey {
		fmt.Fprintf(stderr, "kafkaedge: admin API key (generated, shown only once; set -admin-key or $%s to choose one): %s\n", adminKeyEnv, s.AdminKey)
	}
	if dm != nil {
		if _, ok := reg.Get(demoRoute.ID); ok {
			dm.Banner(stderr, srv.Addr())
		} else {
			log.Warn("embedded demo cluster is running, but a stored route holds "+demoRoute.URI,
				"brokers", strings.Join(demoRoute.Upstream.Nodes.Brokers(), ","))
		}
	}

	code := exitOK
wait:
	for {
		select {
		case <-ctx.Done():
			log.Info("draining", "timeout", s.DrainTimeout)
			break wait
		case err := <-adminErr:
			log.Error("admin API stopped", "err", err)
			code = exitFailed
			break wait
		case err := <-metricsErr:
			log.Error("metrics listener stopped", "err", err)
			code = exitFailed
			break wait
		case <-hup:
			reloadRoutes(c.config, reg, log)
		}
	}
	stop()

	// One deadline for the whole drain: the admin API stops at once, the
	// WebSocket server answers what is in flight and closes every
	// connection with 1001, and /metrics and /readyz (503 from now on)
	// stay up until the end.
	drain, cancel := context.WithTimeout(context.Background(), s.DrainTimeout)
	defer cancel()
	if adminSrv != nil {
		go func() {
			if err := adminSrv.Shutdown(drain); err != nil {
				log.Warn("admin API shutdown", "err", err)
			}
		}()
	}
	if err := srv.Shutdown(drain); err != nil {
		log.Error("drain did not finish", "err", err)
		code = exitFailed
	}
	if hc != nil {
		hc.Close()
	}
	if metricsSrv != nil {
		if err := metricsSrv.Shutdown(drain); err != nil {
			metricsSrv.Close()
		}
	}
	log.Info("kafkaedge stopped")
	return code
}

// loadSettings applies the config file under the flags that were set,
// validates everything and returns the static routes: the file's, then
// -route's. With -embedded, -listen defaults to config.DemoListen.
func loadSettings(fs *flag.FlagSet, s *config.Settings, c *cmdline) ([]routes.Route, error) {
	var static []routes.Route
	listenGiven := false
	fs.Visit(func(f *flag.Flag) { listenGiven = listenGiven || f.Name == "listen" })
	if c.config != "" {
		set := make(map[string]string)
		fs.Visit(func(f *flag.Flag) {
			switch f.Name {
			case "config", "route", "version":
			default:
				set[f.Name] = f.Value.String()
			}
		})
		if err := config.LoadFile(c.config, s); err != nil {
			return nil, err
		}
		// Flags win over the file: set them again on top of it.
		for name, v := range set {
			if err := fs.Set(name, v); err != nil {
				return nil, fmt.Errorf("-%s: %w", name, err)
			}
		}
		rs, err := s.FileRoutes(c.config)
		if err != nil {
			return nil, err
		}
		for _, r := range rs {
			static = append(static, routes.Route{Spec: r, Kind: routes.File})
		}
		listenGiven = listenGiven || s.FromFile("listen")
	}
	// A demo serves this machine, not the network (make run).
	if s.Embedded && !listenGiven {
		s.Listen = config.DemoListen
	}
	if err := s.Validate(); err != nil {
		return nil, err
	}
	for i, v := range c.routes {
		r, err := apisix.ParseFlag(v)
		if err != nil {
			return nil, err
		}
		r.ID = "route-" + strconv.Itoa(i+1)
		static = append(static, routes.Route{Spec: r, Kind: routes.Static})
	}
	return static, nil
}

// reloadRoutes applies the routes of the -config file again (SIGHUP). A file
// that does not load, or whose routes collide with others, is logged and
// ignored: the routes stay as they were.
// setMemoryLimit sets the Go runtime's soft memory limit to the memory
// budget (with the tail cache's) plus an eighth plus 64 MiB, for the runtime and the node's other
// state, so that the garbage collector returns the budget's freed buffers
// before the heap doubles (docs/operations.md, "Memory"). A GOMEMLIMIT in
// the environment is left as it is. It returns the limit in force.
func setMemoryLimit(budget int64) int64 {
	if os.Getenv("GOMEMLIMIT") != "" {
		return debug.SetMemoryLimit(-1)
	}
	limit := budget + budget/8 + 64<<20
	debug.SetMemoryLimit(limit)
	return limit
}

func reloadRoutes(path string, reg *routes.Registry, log *slog.Logger) {
	if path == "" {
		log.Warn("SIGHUP ignored: no -config file to reload")
		return
	}
	rs, err := config.ReadRoutes(path)
	var res routes.ReloadResult
	if err == nil {
		res, err = reg.ReloadFile(rs)
	}
	if err != nil {
		log.Error("config reload failed; routes unchanged", "file", path, "err", err)
		return
	}
	log.Info("config reloaded (routes only)", "file", path, "added", res.Added, "removed", res.Removed,
		"changed", res.Changed, "unchanged", res.Unchanged, "failed", res.Failed)
}

// newServer returns an HTTP server of h with timeouts and limits fit for a
// management endpoint: request heads up to maxHeader bytes, its errors
// logged to log.
func newServer(h http.Handler, maxHeader int, log *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    maxHeader,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
}

// probeListen reports an address that cannot be bound (in use, not local)
// with the operating system's words. Port 0 needs no probe.
func probeListen(addr string) error {
	if _, port, _ := net.SplitHostPort(addr); port == "0" {
		return nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("-listen: %w", err)
	}
	return ln.Close()
}

// randomKey returns a fresh admin key.
func randomKey() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// versionString is the -ldflags version, else the module or VCS version.
func versionString() string {
	if version != "" {
		return version
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "devel"
	}
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	for _, st := range bi.Settings {
		if st.Key == "vcs.revision" && len(st.Value) >= 12 {
			return "devel-" + st.Value[:12]
		}
	}
	return "devel"
}
