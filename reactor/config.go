package reactor

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"time"

	"github.com/kafkaedge/kafkaedge/kafkawire"
)

// Defaults applied by New to the zero fields of Config.
const (
	defaultAddr             = "0.0.0.0:9080"
	defaultMaxConns         = 100000
	defaultMaxInflight      = 64
	defaultMaxInflightTotal = 4096
	defaultMaxMessage       = 1 << 20
	defaultMaxHeader        = 8 << 10
	defaultMaxOutbound      = 32 << 20
	defaultSlowTimeout      = 30 * time.Second
	defaultIdleTimeout      = 5 * time.Minute
	defaultHandshakeTimeout = 10 * time.Second
)

// ErrConfig is wrapped by every error New and PutRoute return for an invalid
// configuration.
var ErrConfig = errors.New("reactor: invalid config")

// Config configures a Server. The zero value of every field means its default.
type Config struct {
	Addr             string        // "host:port", default "0.0.0.0:9080"; port 0 picks a free port (see Server.Addr)
	Loops            int           // event loops, default GOMAXPROCS (the CPUs the process may use, cgroup limits included); a running server adds Loops+1 to GOMAXPROCS (see Server.Start)
	MaxConns         int           // open connections, default 100000
	MaxInflight      int           // Kafka requests in flight per connection, default 64
	MaxInflightTotal int           // Kafka calls in flight on the node, default 4096
	MaxMessage       int           // client message limit, default 1 MiB
	MaxHeader        int           // HTTP request head limit, default 8 KiB
	MaxOutbound      int           // bytes queued to one client, default 32 MiB
	SlowTimeout      time.Duration // close a client stuck past MaxOutbound after this, default 30s
	IdleTimeout      time.Duration // close a connection without traffic after this, default 5m
	HandshakeTimeout time.Duration // close a connection that has not upgraded after this, default 10s
	Logger           *slog.Logger  // default slog.Default()
	// Observer receives the server's events for metrics; nil means none.
	// It is handed to no route's kafkawire.Config (set that one there).
	Observer Observer
}

// Route maps a WebSocket URI to the Kafka cluster its requests go to.
type Route struct {
	URI     string
	Cluster kafkawire.Config
}

// withDefaults returns cfg with zero fields replaced by their defaults, or an
// error wrapping ErrConfig.
func (cfg Config) withDefaults() (Config, error) {
	if cfg.Addr == "" {
		cfg.Addr = defaultAddr
	}
	host, port, err := net.SplitHostPort(cfg.Addr)
	if err != nil {
		return cfg, fmt.Errorf("%w: addr %q: %w", ErrConfig, cfg.Addr, err)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
		return cfg, fmt.Errorf("%w: addr %q: bad port", ErrConfig, cfg.Addr)
	}
	if host == "" {
		cfg.Addr = net.JoinHostPort("0.0.0.0", port)
	}
	set := func(v *int, def int) {
		if *v == 0 {
			*v = def
		}
	}
	set(&cfg.Loops, baseProcs())
	set(&cfg.MaxConns, defaultMaxConns)
	set(&cfg.MaxInflight, defaultMaxInflight)
	set(&cfg.MaxInflightTotal, defaultMaxInflightTotal)
	set(&cfg.MaxMessage, defaultMaxMessage)
	set(&cfg.MaxHeader, defaultMaxHeader)
	set(&cfg.MaxOutbound, defaultMaxOutbound)
	setD := func(v *time.Duration, def time.Duration) {
		if *v == 0 {
			*v = def
		}
	}
	setD(&cfg.SlowTimeout, defaultSlowTimeout)
	setD(&cfg.IdleTimeout, defaultIdleTimeout)
	setD(&cfg.HandshakeTimeout, defaultHandshakeTimeout)
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Observer == nil {
		cfg.Observer = nopObserver{}
	}
	for name, v := range map[string]int{
		"Loops": cfg.Loops, "MaxConns": cfg.MaxConns, "MaxInflight": cfg.MaxInflight,
		"MaxInflightTotal": cfg.MaxInflightTotal, "MaxMessage": cfg.MaxMessage,
		"MaxHeader": cfg.MaxHeader, "MaxOutbound": cfg.MaxOutbound,
	} {
		if v < 0 {
			return cfg, fmt.Errorf("%w: %s is negative (%d)", ErrConfig, name, v)
		}
	}
	for name, v := range map[string]time.Duration{
		"SlowTimeout": cfg.SlowTimeout, "IdleTimeout": cfg.IdleTimeout,
		"HandshakeTimeout": cfg.HandshakeTimeout,
	} {
		if v < 0 {
			return cfg, fmt.Errorf("%w: %s is negative (%s)", ErrConfig, name, v)
		}
	}
	if cfg.MaxHeader < 256 {
		return cfg, fmt.Errorf("%w: MaxHeader %d is below 256 bytes", ErrConfig, cfg.MaxHeader)
	}
	return cfg, nil
}
