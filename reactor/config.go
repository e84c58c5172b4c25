package reactor

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/kafkaedge/kafkaedge/internal/hostport"
	"github.com/kafkaedge/kafkaedge/kafkawire"
	"github.com/kafkaedge/kafkaedge/wsframe"
)

// ErrConfig is wrapped by every error Config.Validate, New and PutRoute
// return for an invalid configuration.
var ErrConfig = errors.New("reactor: invalid config")

// Config configures a Server. The zero value of every field means its
// default, the value DefaultConfig holds.
type Config struct {
	Addr             string // "host:port", default "0.0.0.0:9080"; port 0 picks a free port (see Server.Addr)
	Loops            int    // event loops, default GOMAXPROCS (the CPUs the process may use, cgroup limits included); a running server adds Loops+1 to GOMAXPROCS (see Server.Start)
	MaxConns         int    // open connections, default 100000
	MaxInflight      int    // Kafka requests in flight per connection, default 64
	MaxInflightTotal int    // Kafka calls in flight on the node, default 4096
	// MaxInflightCluster caps the Kafka calls in flight to one cluster
	// (the routes that share a Kafka client), at most MaxInflightTotal; 0
	// (the default) divides MaxInflightTotal among the clusters of the
	// routes, at most 4 ways (all of it with one cluster, a quarter each
	// with four or more). A cluster that does not answer holds at most its
	// share of the node's calls, and of MemoryBudget in the same
	// proportion, and its waiting requests queue apart from other
	// clusters'.
	MaxInflightCluster int
	MaxMessage         int // client message limit, default 1 MiB (wsframe.Limits)
	MaxHeader          int // HTTP request head limit, default 8 KiB, at least 256 bytes (wsframe.Limits)
	MaxOutbound        int // bytes queued to one client, default 32 MiB
	// MemoryBudget caps, node-wide, the bytes of fetch answers being made
	// and queued to clients (see limit.go): past it fetches wait, and the
	// clients that hold the most without reading are closed first.
	// Default a quarter of the machine's memory (its cgroup limit, if
	// lower); at least 1 MiB.
	MemoryBudget     int64
	SlowTimeout      time.Duration // close a client stuck past MaxOutbound after this, default 30s
	IdleTimeout      time.Duration // close a connection without traffic after this, default 5m
	HandshakeTimeout time.Duration // close a connection that has not upgraded after this, default 10s
	MaxFetchWait     time.Duration // cap of a CmdKafkaFetch's max_wait_ms (a long poll), default 30s

	// Subscriptions (CmdKafkaSubscribe; docs/architecture.md,
	// "Subscriptions and tails").
	MaxSubscriptions          int // live subscriptions per connection, default 64
	MaxSubscriptionPartitions int // partitions per subscription, default 1024
	// MaxPushBytes caps the messages of one push (kafka_records), default
	// 1 MiB, at most an eighth of MaxOutbound; a subscription's max_bytes
	// may ask for less. A single larger message is still pushed whole.
	MaxPushBytes int
	// TailCache is the node-wide budget of the tail cache: the last
	// messages of every partition subscriptions read, kept encoded so that
	// a subscriber starting a little behind is served without a Kafka
	// request. Default 64 MiB; it comes on top of MemoryBudget.
	TailCache int64
	// SubscriptionRefresh is how often the topics of the subscriptions are
	// looked up: a deleted topic ends its subscriptions, a new partition
	// joins those that follow every partition. Default 10s.
	SubscriptionRefresh time.Duration
	// MaxGroupMembers caps the group subscriptions (CmdKafkaSubscribe with
	// a group: one consumer group member each) per connection, default 8;
	// they count among MaxSubscriptions too.
	MaxGroupMembers int
	// GroupProtocol is how the members of group subscriptions take part in
	// their groups: GroupProtocolAuto (the default) uses KIP-848's consumer
	// protocol where the cluster has enabled it (Kafka 4.0 and later), the
	// classic one elsewhere.
	GroupProtocol kafkawire.GroupProtocol
	// GroupSessionTimeout is how long a classic group's coordinator keeps
	// a member of this node that stopped heartbeating (the node died or
	// lost the cluster) before it gives its partitions to others, default
	// 45s as the Java client's session.timeout.ms; the broker refuses values
	// outside its group.min/max.session.timeout.ms. In KIP-848's protocol
	// the broker's group.consumer.session.timeout.ms decides.
	GroupSessionTimeout time.Duration
	// Logger receives the server's log lines, default slog.Default(). The
	// lines logged on the event loops reach it through a bounded queue and
	// a goroutine of the server's own, so a Logger that blocks never stalls
	// a loop (lines that find the queue full are dropped and counted in
	// Stats.LogDropped).
	Logger *slog.Logger
	// Observer receives the server's events for metrics; nil means none
	// (NopObserver).
	// It is handed to no route's kafkawire.Config (set that one there).
	Observer Observer
}

// Route maps a WebSocket URI to the Kafka cluster its requests go to.
type Route struct {
	URI     string
	Cluster kafkawire.Config
}

// DefaultConfig returns the default of every setting: what New uses for a
// zero field of Config. Five defaults are decided by New rather than held
// here: Loops 0 means one loop per CPU the process may use (GOMAXPROCS
// without the reservations of running servers), MaxInflightCluster 0
// shares that depend on the routes, MemoryBudget 0 a quarter of the
// machine's memory, Logger nil slog.Default() and Observer nil no events.
func DefaultConfig() Config {
	l := wsframe.DefaultLimits()
	return Config{
		Addr:             "0.0.0.0:9080",
		MaxConns:         100000,
		MaxInflight:      64,
		MaxInflightTotal: 4096,
		MaxMessage:       l.MaxMessage,
		MaxHeader:        l.MaxHeader,
		MaxOutbound:      32 << 20,
		SlowTimeout:      30 * time.Second,
		IdleTimeout:      5 * time.Minute,
		HandshakeTimeout: 10 * time.Second,
		MaxFetchWait:     30 * time.Second,

		MaxSubscriptions:          64,
		MaxSubscriptionPartitions: 1024,
		MaxPushBytes:              1 << 20,
		TailCache:                 64 << 20,
		SubscriptionRefresh:       10 * time.Second,
		MaxGroupMembers:           8,
		GroupSessionTimeout:       kafkawire.DefaultSessionTimeout,
	}
}

// Validate reports the first setting of cfg that New refuses, in one line
// that names it and wraps ErrConfig. Zero fields are valid: they take their
// defaults.
func (cfg Config) Validate() error {
	cfg = cfg.withDefaults()
	if err := hostport.Listen(cfg.Addr); err != nil {
		return fmt.Errorf("%w: Addr %q: %w", ErrConfig, cfg.Addr, err)
	}
	for _, v := range []struct {
		name string
		v    int
	}{
		{"Loops", cfg.Loops}, {"MaxConns", cfg.MaxConns}, {"MaxInflight", cfg.MaxInflight},
		{"MaxInflightTotal", cfg.MaxInflightTotal}, {"MaxInflightCluster", cfg.MaxInflightCluster},
		{"MaxOutbound", cfg.MaxOutbound}, {"MaxSubscriptions", cfg.MaxSubscriptions},
		{"MaxSubscriptionPartitions", cfg.MaxSubscriptionPartitions}, {"MaxPushBytes", cfg.MaxPushBytes},
		{"MaxGroupMembers", cfg.MaxGroupMembers},
	} {
		if v.v < 0 {
			return fmt.Errorf("%w: %s is negative (%d)", ErrConfig, v.name, v.v)
		}
	}
	if cfg.GroupProtocol > kafkawire.GroupProtocolConsumer {
		return fmt.Errorf("%w: GroupProtocol %d is not a group protocol", ErrConfig, cfg.GroupProtocol)
	}
	if cfg.TailCache < 0 {
		return fmt.Errorf("%w: TailCache is negative (%d)", ErrConfig, cfg.TailCache)
	}
	if cfg.MemoryBudget < minMemoryBudget {
		return fmt.Errorf("%w: MemoryBudget %d is less than %d bytes", ErrConfig, cfg.MemoryBudget, minMemoryBudget)
	}
	if cfg.MaxInflightCluster > cfg.MaxInflightTotal {
		return fmt.Errorf("%w: MaxInflightCluster %d is more than MaxInflightTotal %d", ErrConfig, cfg.MaxInflightCluster, cfg.MaxInflightTotal)
	}
	for _, v := range []struct {
		name string
		v    time.Duration
	}{
		{"SlowTimeout", cfg.SlowTimeout}, {"IdleTimeout", cfg.IdleTimeout}, {"HandshakeTimeout", cfg.HandshakeTimeout},
		{"MaxFetchWait", cfg.MaxFetchWait}, {"SubscriptionRefresh", cfg.SubscriptionRefresh},
		{"GroupSessionTimeout", cfg.GroupSessionTimeout},
	} {
		if v.v < 0 {
			return fmt.Errorf("%w: %s is negative (%s)", ErrConfig, v.name, v.v)
		}
	}
	if err := cfg.limits().Validate(); err != nil {
		return fmt.Errorf("%w: %w", ErrConfig, err)
	}
	return nil
}

// withDefaults returns cfg with its zero fields set to their defaults.
func (cfg Config) withDefaults() Config {
	d := DefaultConfig()
	set := func(v *int, def int) {
		if *v == 0 {
			*v = def
		}
	}
	setD := func(v *time.Duration, def time.Duration) {
		if *v == 0 {
			*v = def
		}
	}
	if cfg.Addr == "" {
		cfg.Addr = d.Addr
	}
	set(&cfg.Loops, baseProcs())
	set(&cfg.MaxConns, d.MaxConns)
	set(&cfg.MaxInflight, d.MaxInflight)
	set(&cfg.MaxInflightTotal, d.MaxInflightTotal)
	set(&cfg.MaxMessage, d.MaxMessage)
	set(&cfg.MaxHeader, d.MaxHeader)
	set(&cfg.MaxOutbound, d.MaxOutbound)
	if cfg.MemoryBudget == 0 {
		cfg.MemoryBudget = defaultMemoryBudget()
	}
	setD(&cfg.SlowTimeout, d.SlowTimeout)
	setD(&cfg.IdleTimeout, d.IdleTimeout)
	setD(&cfg.HandshakeTimeout, d.HandshakeTimeout)
	setD(&cfg.MaxFetchWait, d.MaxFetchWait)
	set(&cfg.MaxSubscriptions, d.MaxSubscriptions)
	set(&cfg.MaxSubscriptionPartitions, d.MaxSubscriptionPartitions)
	set(&cfg.MaxPushBytes, d.MaxPushBytes)
	if cfg.TailCache == 0 {
		cfg.TailCache = d.TailCache
	}
	setD(&cfg.SubscriptionRefresh, d.SubscriptionRefresh)
	set(&cfg.MaxGroupMembers, d.MaxGroupMembers)
	setD(&cfg.GroupSessionTimeout, d.GroupSessionTimeout)
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Observer == nil {
		cfg.Observer = NopObserver{}
	}
	return cfg
}

// limits returns the settings that wsframe owns.
func (cfg Config) limits() wsframe.Limits {
	return wsframe.Limits{MaxHeader: cfg.MaxHeader, MaxMessage: cfg.MaxMessage}
}

// listenAddr returns a valid Addr with an empty host made explicit.
func (cfg Config) listenAddr() string {
	host, port, _ := net.SplitHostPort(cfg.Addr)
	if host == "" {
		return net.JoinHostPort("0.0.0.0", port)
	}
	return cfg.Addr
}
