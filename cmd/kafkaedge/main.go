// Command kafkaedge is a WebSocket edge for Apache Kafka that speaks the
// pub/sub protocol of Apache APISIX's kafka-proxy, with an APISIX-compatible
// admin API for its routes.
//
// It reads its settings from flags and an optional YAML file (-config), keeps
// routes created through the admin API under -data-dir, and with -embedded
// runs an in-process demo cluster so that data flows without any Kafka
// installed. See docs/operations.md.
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
func newFlagSet(s *Settings, c *cmdline) *flag.FlagSet {
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
	fs.BoolVar(&s.Embedded, "embedded", s.Embedded, "start an in-process demo Kafka (topic \"demo\", new messages every 500ms) routed at /kafka")
	fs.StringVar(&s.LogLevel, "log-level", s.LogLevel, "log `level`: debug, info, warn or error")
	fs.StringVar(&s.LogFormat, "log-format", s.LogFormat, "log `format`: text or json")
	fs.DurationVar(&s.DrainTimeout, "drain-timeout", s.DrainTimeout, "on SIGINT/SIGTERM, how long to answer requests in flight and close connections (1001) before exiting")
	fs.StringVar(&s.MetricsListen, "metrics-listen", s.MetricsListen, "`address` serving /metrics (Prometheus), /healthz and /readyz; empty disables them")
	fs.BoolVar(&s.MetricsTopicLabels, "metrics-topic-labels", s.MetricsTopicLabels, "add a topic label to kafkaedge_delivered_messages_total (unbounded: one series per topic clients ask for)")

	fs.IntVar(&s.Loops, "loops", s.Loops, "event loops (0 = one per CPU)")
	fs.IntVar(&s.MaxConns, "max-conns", s.MaxConns, "maximum WebSocket connections")
	fs.IntVar(&s.MaxInflight, "max-inflight", s.MaxInflight, "maximum requests in flight per connection")
	fs.IntVar(&s.MaxInflightTotal, "max-inflight-total", s.MaxInflightTotal, "maximum Kafka requests in flight on the whole node")
	fs.IntVar(&s.MaxMessage, "max-message", s.MaxMessage, "maximum client message size in `bytes`")
	fs.IntVar(&s.MaxHeader, "max-header", s.MaxHeader, "maximum HTTP upgrade request header size in `bytes`")
	fs.IntVar(&s.MaxOutbound, "max-outbound", s.MaxOutbound, "maximum `bytes` queued to one client before it counts as slow")
	fs.DurationVar(&s.SlowTimeout, "slow-timeout", s.SlowTimeout, "close a client that stays over -max-outbound this long")
	fs.DurationVar(&s.IdleTimeout, "idle-timeout", s.IdleTimeout, "close a connection idle this long")
	fs.DurationVar(&s.HandshakeTimeout, "handshake-timeout", s.HandshakeTimeout, "close a connection that has not upgraded within this time")

	fs.IntVar(&s.BrokerConns, "broker-conns", s.BrokerConns, "TCP connections per Kafka broker")
	fs.DurationVar(&s.DialTimeout, "dial-timeout", s.DialTimeout, "Kafka broker dial timeout")
	fs.DurationVar(&s.RequestTimeout, "request-timeout", s.RequestTimeout, "Kafka request timeout")
	fs.DurationVar(&s.FetchMaxWait, "fetch-max-wait", s.FetchMaxWait, "Fetch max wait sent to Kafka (APISIX: 100ms)")
	fs.IntVar(&s.FetchMinBytes, "fetch-min-bytes", s.FetchMinBytes, "Fetch min `bytes`: 0 answers a fetch at the end of a partition at once; 1 or more makes the broker hold it up to -fetch-max-wait for data (long poll)")
	fs.IntVar(&s.FetchMaxBytes, "fetch-max-bytes", s.FetchMaxBytes, "Fetch max `bytes` per response (APISIX: 10 MiB)")
	fs.IntVar(&s.FetchPartitionMaxBytes, "fetch-partition-max-bytes", s.FetchPartitionMaxBytes, "Fetch max `bytes` per partition")
	fs.DurationVar(&s.MetadataRefresh, "metadata-refresh", s.MetadataRefresh, "Kafka metadata refresh interval")
	fs.IntVar(&s.MaxBatchBytes, "max-batch-bytes", s.MaxBatchBytes, "maximum decompressed size of one record batch in `bytes`")
	fs.StringVar(&s.IsolationLevel, "isolation-level", s.IsolationLevel, "Kafka isolation `level` of fetches: read_uncommitted or read_committed")
	return fs
}

// usage prints the help text of fs.
func usage(w io.Writer, fs *flag.FlagSet) {
	fmt.Fprintf(w, "Usage: kafkaedge [flags]\n\n"+
		"kafkaedge serves the APISIX kafka pub/sub protocol over WebSocket.\n"+
		"Quick start: kafkaedge -embedded   (demo Kafka in-process, WebSocket at /kafka)\n"+
		"             kafkaedge -route '/kafka=broker1:9092,broker2:9092'\n\nFlags:\n")
	fs.SetOutput(w)
	fs.PrintDefaults()
	fs.SetOutput(io.Discard)
}

// run is main without os.Exit; it returns the exit code.
func run(args []string, stdout, stderr io.Writer) int {
	fail := func(code int, err error) int {
		msg := strings.TrimPrefix(err.Error(), errConfig.Error()+": ")
		fmt.Fprintf(stderr, "kafkaedge: %s\n", msg)
		return code
	}

	s := defaultSettings()
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

	static, nFile, err := loadSettings(fs, &s, &c)
	if err != nil {
		return fail(exitConfig, err)
	}
	level, _ := parseLevel(s.LogLevel)
	format, _ := parseLogFormat(s.LogFormat)
	logs := newLogPipeline(stderr, format, level)
	defer logs.close()
	log := logs.logger

	var m *metrics
	var robs reactor.Observer
	var kobs kafkawire.Observer
	if s.MetricsListen != "" {
		m = newMetrics(s.MetricsTopicLabels)
		robs, kobs = m, m
	}

	var st *store
	var stored []*RouteSpec
	if s.DataDir != "" {
		if st, err = openStore(s.DataDir); err != nil {
			return fail(exitConfig, err)
		}
		if stored, err = st.load(); err != nil {
			return fail(exitConfig, err)
		}
		if err := checkStored(st.path, static, stored, s.Embedded); err != nil {
			return fail(exitConfig, err)
		}
	}

	generatedKey := false
	if s.AdminListen != "" && s.AdminKey == "" {
		if s.AdminKey = os.Getenv(adminKeyEnv); s.AdminKey == "" {
			s.AdminKey = randomKey()
			generatedKey = true
		}
	}

	var dm *demo
	if s.Embedded {
		if dm, err = startDemo(log); err != nil {
			return fail(exitFailed, err)
		}
		defer dm.Close()
		r, err := dm.route()
		if err != nil {
			return fail(exitFailed, err)
		}
		static = append(static, r)
	}

	iso, _ := parseIsolation(s.IsolationLevel)
	srv, err := reactor.New(reactor.Config{
		Addr:             s.Listen,
		Loops:            s.Loops,
		MaxConns:         s.MaxConns,
		MaxInflight:      s.MaxInflight,
		MaxInflightTotal: s.MaxInflightTotal,
		MaxMessage:       s.MaxMessage,
		MaxHeader:        s.MaxHeader,
		MaxOutbound:      s.MaxOutbound,
		SlowTimeout:      s.SlowTimeout,
		IdleTimeout:      s.IdleTimeout,
		HandshakeTimeout: s.HandshakeTimeout,
		Logger:           log,
		Observer:         robs,
	})
	if err != nil {
		return fail(exitConfig, fmt.Errorf("server settings: %w", err))
	}
	// Bind the admin API first and probe the WebSocket address, so that an
	// address in use is reported plainly before anything is serving.
	var adminLn net.Listener
	if s.AdminListen != "" {
		if adminLn, err = net.Listen("tcp", s.AdminListen); err != nil {
			return fail(exitFailed, fmt.Errorf("-admin-listen: %w", err))
		}
		defer adminLn.Close()
	}
	var metricsLn net.Listener
	if s.MetricsListen != "" {
		if metricsLn, err = net.Listen("tcp", s.MetricsListen); err != nil {
			return fail(exitFailed, fmt.Errorf("-metrics-listen: %w", err))
		}
		defer metricsLn.Close()
	}
	if err := probeListen(s.Listen); err != nil {
		return fail(exitFailed, err)
	}
	if err := srv.Start(); err != nil {
		return fail(exitFailed, fmt.Errorf("listen %s: %w", s.Listen, err))
	}
	stopServer := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), s.DrainTimeout)
		defer cancel()
		return srv.Shutdown(ctx)
	}

	sink := &reactorSink{srv: srv, s: &s, iso: iso, log: log, obs: kobs}
	reg := newRegistry(sink, st, log)
	for i, r := range static {
		kind := kindStatic
		switch {
		case i < nFile:
			kind = kindFile
		case r.ID == demoRouteID && dm != nil:
			kind = kindDemo
		}
		if err := reg.add(r, kind); err != nil {
			stopServer()
			return fail(exitConfig, err)
		}
	}
	for _, r := range stored {
		if err := reg.add(r, kindDynamic); err != nil {
			stopServer()
			return fail(exitConfig, fmt.Errorf("%s: %w", st.path, err))
		}
	}

	var admin *http.Server
	adminErr := make(chan error, 1)
	var adminUp func() bool
	if adminLn != nil {
		admin = newAdminServer(&adminAPI{reg: reg, key: []byte(s.AdminKey), log: log})
		var serving atomic.Bool
		serving.Store(true)
		adminUp = serving.Load
		go func() {
			err := admin.Serve(adminLn)
			serving.Store(false)
			adminErr <- err
		}()
		s.AdminListen = adminLn.Addr().String()
	}

	var metricsSrv *http.Server
	metricsErr := make(chan error, 1)
	var hc *health
	if metricsLn != nil {
		m.registerServer(srv, logs)
		hc = newHealth(srv, m, adminUp)
		hc.start()
		defer hc.close()
		metricsSrv = newMetricsServer(m, hc, log.With("component", "metrics"))
		go func() { metricsErr <- metricsSrv.Serve(metricsLn) }()
		s.MetricsListen = metricsLn.Addr().String()
	}

	log.Info("kafkaedge started", "version", versionString(), "listen", srv.Addr(),
		"admin", s.AdminListen, "metrics", s.MetricsListen, "routes", len(static)+len(stored), "data_dir", s.DataDir)
	if generatedKey {
		fmt.Fprintf(stderr, "kafkaedge: admin API key (generated, shown only once; set -admin-key or $%s to choose one): %s\n", adminKeyEnv, s.AdminKey)
	}
	if dm != nil {
		if _, ok := reg.get(demoRouteID); ok {
			printBanner(stderr, dm, srv.Addr())
		} else {
			log.Warn("embedded demo cluster is running, but a stored route holds "+demoURI, "brokers", strings.Join(dm.cluster.ListenAddrs(), ","))
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
	if admin != nil {
		go func() {
			if err := admin.Shutdown(drain); err != nil {
				log.Warn("admin API shutdown", "err", err)
			}
		}()
	}
	if err := srv.Shutdown(drain); err != nil {
		log.Error("drain did not finish", "err", err)
		code = exitFailed
	}
	if hc != nil {
		hc.close()
	}
	if metricsSrv != nil {
		if err := metricsSrv.Shutdown(drain); err != nil {
			metricsSrv.Close()
		}
	}
	log.Info("kafkaedge stopped")
	return code
}

// reloadRoutes applies the routes of the -config file again (SIGHUP). A file
// that does not load, or whose routes collide with others, is logged and
// ignored: the routes stay as they were.
func reloadRoutes(path string, reg *registry, log *slog.Logger) {
	if path == "" {
		log.Warn("SIGHUP ignored: no -config file to reload")
		return
	}
	rs, err := readFileRoutes(path)
	var res reloadResult
	if err == nil {
		res, err = reg.reloadFile(rs)
	}
	if err != nil {
		log.Error("config reload failed; routes unchanged", "file", path,
			"err", strings.TrimPrefix(err.Error(), errConfig.Error()+": "))
		return
	}
	log.Info("config reloaded (routes only)", "file", path, "added", res.added, "removed", res.removed,
		"changed", res.changed, "unchanged", res.unchanged, "failed", res.failed)
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

// loadSettings applies the config file under the flags that were set,
// validates everything and returns the static routes (file, then -route)
// and how many of them came from the file.
func loadSettings(fs *flag.FlagSet, s *Settings, c *cmdline) ([]*RouteSpec, int, error) {
	set := make(map[string]string)
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "config", "route", "version":
		default:
			set[f.Name] = f.Value.String()
		}
	})
	var static []*RouteSpec
	nFile := 0
	if c.config != "" {
		if err := loadFile(c.config, s); err != nil {
			return nil, 0, err
		}
		// Flags win over the file: set them again on top of it.
		for name, v := range set {
			if err := fs.Set(name, v); err != nil {
				return nil, 0, fmt.Errorf("%w: -%s: %w", errConfig, name, err)
			}
		}
		rs, err := fileRoutes(c.config, s.Routes)
		if err != nil {
			return nil, 0, err
		}
		fileRouteIDs(rs)
		static = rs
		nFile = len(rs)
	}
	if err := s.validate(); err != nil {
		return nil, 0, err
	}
	for i, v := range c.routes {
		r, err := parseRouteFlag(v)
		if err != nil {
			return nil, 0, fmt.Errorf("%w: %w", errConfig, err)
		}
		r.ID = "route-" + strconv.Itoa(i+1)
		static = append(static, r)
	}
	ids := make(map[string]bool)
	uris := make(map[string]string)
	for _, r := range static {
		if ids[r.ID] {
			return nil, 0, fmt.Errorf("%w: duplicate route id %q", errConfig, r.ID)
		}
		ids[r.ID] = true
		if other, ok := uris[r.URI]; ok {
			return nil, 0, fmt.Errorf("%w: duplicate route uri %q (routes %q and %q)", errConfig, r.URI, other, r.ID)
		}
		uris[r.URI] = r.ID
	}
	if s.Embedded {
		if other, ok := uris[demoURI]; ok {
			return nil, 0, fmt.Errorf("%w: -embedded routes %s to the demo cluster, but route %q uses it", errConfig, demoURI, other)
		}
		if ids[demoRouteID] {
			return nil, 0, fmt.Errorf("%w: -embedded needs the route id %q, but a configured route uses it", errConfig, demoRouteID)
		}
	}
	return static, nFile, nil
}

// checkStored refuses stored routes that collide with the static ones.
func checkStored(path string, static, stored []*RouteSpec, embedded bool) error {
	ids := make(map[string]bool)
	uris := make(map[string]string)
	for _, r := range static {
		ids[r.ID] = true
		uris[r.URI] = r.ID
	}
	if embedded { // the demo route yields its URI, not its id
		ids[demoRouteID] = true
	}
	for _, r := range stored {
		if ids[r.ID] {
			return fmt.Errorf("%w: %s: route id %q is also a static route", errConfig, path, r.ID)
		}
		if other, ok := uris[r.URI]; ok {
			return fmt.Errorf("%w: %s: route %q: uri %q is also used by route %q", errConfig, path, r.ID, r.URI, other)
		}
		uris[r.URI] = r.ID
	}
	return nil
}

// reactorSink applies routes to the reactor with the global Kafka settings.
type reactorSink struct {
	srv *reactor.Server
	s   *Settings
	iso int8
	log *slog.Logger
	obs kafkawire.Observer // nil without metrics
}

// PutRoute adds or replaces r in the reactor.
func (rs *reactorSink) PutRoute(r *RouteSpec) error {
	c := clusterConfig(r, rs.s, rs.iso, rs.log)
	c.Observer = rs.obs
	return rs.srv.PutRoute(reactor.Route{URI: r.URI, Cluster: c})
}

// DeleteRoute removes the route for uri from the reactor.
func (rs *reactorSink) DeleteRoute(uri string) bool { return rs.srv.DeleteRoute(uri) }

// clusterConfig is the kafkawire configuration of a route.
func clusterConfig(r *RouteSpec, s *Settings, iso int8, log *slog.Logger) kafkawire.Config {
	c := kafkawire.Config{
		Brokers:                r.Upstream.Nodes.Brokers(),
		ClientID:               "kafkaedge",
		ConnsPerBroker:         s.BrokerConns,
		DialTimeout:            s.DialTimeout,
		RequestTimeout:         s.RequestTimeout,
		MetadataRefresh:        s.MetadataRefresh,
		FetchMaxWait:           s.FetchMaxWait,
		FetchMinBytes:          int32(s.FetchMinBytes),
		FetchMaxBytes:          int32(s.FetchMaxBytes),
		FetchPartitionMaxBytes: int32(s.FetchPartitionMaxBytes),
		IsolationLevel:         iso,
		MaxBatchBytes:          s.MaxBatchBytes,
		Logger:                 log.With("route", r.ID),
	}
	if t := r.Upstream.TLS; t != nil {
		c.TLS = &kafkawire.TLSConfig{Verify: t.Verify, CAFile: t.CAFile, CertFile: t.CertFile, KeyFile: t.KeyFile, ServerName: t.ServerName}
	}
	if r.Plugins != nil && r.Plugins.KafkaProxy != nil && r.Plugins.KafkaProxy.SASL != nil {
		sa := r.Plugins.KafkaProxy.SASL
		mech := sa.Mechanism
		if mech == "" {
			mech = "PLAIN"
		}
		c.SASL = &kafkawire.SASLConfig{Mechanism: mech, Username: sa.Username, Password: sa.Password}
	}
	return c
}

// printBanner tells a newcomer where the demo is and how to try it.
func printBanner(w io.Writer, dm *demo, listen string) {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		host, port = "127.0.0.1", "9080"
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	ws := "ws://" + net.JoinHostPort(host, port) + demoURI
	fmt.Fprintf(w, "\n"+
		"  kafkaedge embedded demo\n"+
		"  Kafka:     3 in-process brokers (%s), topic %q with %d partitions, a new message every %s\n"+
		"  WebSocket: %s\n"+
		"  Try it:    send a binary PubSubReq{sequence:1, cmd_kafka_fetch:{topic:\"demo\", partition:0, offset:0}} to %s (README: client examples)\n\n",
		strings.Join(dm.cluster.ListenAddrs(), ", "), demoTopic, demoPartitions, demoInterval, ws, ws)
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
