// Package config is the settings of the kafkaedge command: their built-in
// defaults, the YAML file of -config (every key named like the flag that
// sets the same thing, and a routes: list in the admin API's JSON shape),
// their validation, and the reactor and kafkawire configurations they make.
// The command's flags are bound to a Settings; the flags themselves are the
// command's.
package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/kafkaedge/kafkaedge/cmd/kafkaedge/internal/apisix"
	"github.com/kafkaedge/kafkaedge/internal/hostport"
	"github.com/kafkaedge/kafkaedge/kafkawire"
	"github.com/kafkaedge/kafkaedge/reactor"
)

// maxConfigFile bounds the YAML file read at start.
const maxConfigFile = 16 << 20

// DemoListen is the WebSocket listen address of -embedded (the demo build,
// make run) when neither -listen nor the config file's listen: gives one:
// a demo serves this machine, not the network.
const DemoListen = "127.0.0.1:9080"

// Settings is every setting of kafkaedge. Each YAML key of the config file
// is the name of the flag that sets the same thing; routes: is a list of
// routes in the admin API's JSON shape.
type Settings struct {
	Listen       string        `yaml:"listen"`
	AdminListen  string        `yaml:"admin-listen"`
	AdminKey     string        `yaml:"admin-key"`
	DataDir      string        `yaml:"data-dir"`
	Embedded     bool          `yaml:"embedded"`
	LogLevel     string        `yaml:"log-level"`
	LogFormat    string        `yaml:"log-format"`
	DrainTimeout time.Duration `yaml:"drain-timeout"`

	// MaxRouteNodes bounds a route's upstream.nodes (routes.Registry).
	MaxRouteNodes int `yaml:"max-route-nodes"`

	// Metrics and health
	MetricsListen      string `yaml:"metrics-listen"`
	MetricsTopicLabels bool   `yaml:"metrics-topic-labels"`

	// reactor.Config
	Loops              int           `yaml:"loops"`
	MaxConns           int           `yaml:"max-conns"`
	MaxInflight        int           `yaml:"max-inflight"`
	MaxInflightTotal   int           `yaml:"max-inflight-total"`
	MaxInflightCluster int           `yaml:"max-inflight-cluster"`
	MaxMessage         int           `yaml:"max-message"`
	MaxHeader          int           `yaml:"max-header"`
	MaxOutbound        int           `yaml:"max-outbound"`
	MemoryBudget       int           `yaml:"memory-budget"`
	SlowTimeout        time.Duration `yaml:"slow-timeout"`
	IdleTimeout        time.Duration `yaml:"idle-timeout"`
	HandshakeTimeout   time.Duration `yaml:"handshake-timeout"`
	MaxFetchWait       time.Duration `yaml:"max-fetch-wait"`

	MaxSubscriptions          int           `yaml:"max-subscriptions"`
	MaxSubscriptionPartitions int           `yaml:"max-subscription-partitions"`
	MaxPushBytes              int           `yaml:"max-push-bytes"`
	TailCache                 int           `yaml:"tail-cache"`
	SubscriptionRefresh       time.Duration `yaml:"subscription-refresh"`
	MaxGroupMembers           int           `yaml:"max-group-members"`
	GroupProtocol             string        `yaml:"group-protocol"`
	GroupSessionTimeout       time.Duration `yaml:"group-session-timeout"`

	// kafkawire.Config
	BrokerConns            int           `yaml:"broker-conns"`
	DialTimeout            time.Duration `yaml:"dial-timeout"`
	RequestTimeout         time.Duration `yaml:"request-timeout"`
	FetchMaxWait           time.Duration `yaml:"fetch-max-wait"`
	FetchMinBytes          int           `yaml:"fetch-min-bytes"`
	FetchMaxBytes          int           `yaml:"fetch-max-bytes"`
	FetchPartitionMaxBytes int           `yaml:"fetch-partition-max-bytes"`
	MetadataRefresh        time.Duration `yaml:"metadata-refresh"`
	MaxBatchBytes          int           `yaml:"max-batch-bytes"`
	ProduceLinger          time.Duration `yaml:"produce-linger"`
	ProduceBatchBytes      int           `yaml:"produce-batch-bytes"`
	ProduceCodec           string        `yaml:"produce-codec"`
	IsolationLevel         string        `yaml:"isolation-level"`

	// Routes from the config file, each in the admin JSON shape.
	Routes []any `yaml:"routes"`

	// fileKeys are the keys the config file set (LoadFile).
	fileKeys map[string]bool
}

// Default returns the built-in defaults: the command's own, and those of
// reactor.DefaultConfig and kafkawire.DefaultConfig for the settings of the
// WebSocket server and of the Kafka client.
func Default() Settings {
	r, k := reactor.DefaultConfig(), kafkawire.DefaultConfig()
	return Settings{
		Listen:           r.Addr,
		AdminListen:      "127.0.0.1:9180",
		LogLevel:         "info",
		LogFormat:        "text",
		DrainTimeout:     15 * time.Second,
		MaxRouteNodes:    64,
		MetricsListen:    "127.0.0.1:9091",
		Loops:            r.Loops,
		MaxConns:         r.MaxConns,
		MaxInflight:      r.MaxInflight,
		MaxInflightTotal: r.MaxInflightTotal,
		MaxMessage:       r.MaxMessage,
		MaxHeader:        r.MaxHeader,
		MaxOutbound:      r.MaxOutbound,
		SlowTimeout:      r.SlowTimeout,
		IdleTimeout:      r.IdleTimeout,
		HandshakeTimeout: r.HandshakeTimeout,
		MaxFetchWait:     r.MaxFetchWait,

		MaxSubscriptions:          r.MaxSubscriptions,
		MaxSubscriptionPartitions: r.MaxSubscriptionPartitions,
		MaxPushBytes:              r.MaxPushBytes,
		TailCache:                 int(r.TailCache),
		SubscriptionRefresh:       r.SubscriptionRefresh,
		MaxGroupMembers:           r.MaxGroupMembers,
		GroupProtocol:             r.GroupProtocol.String(),
		GroupSessionTimeout:       r.GroupSessionTimeout,

		BrokerConns:            k.ConnsPerBroker,
		DialTimeout:            k.DialTimeout,
		RequestTimeout:         k.RequestTimeout,
		FetchMaxWait:           k.FetchMaxWait,
		FetchMinBytes:          int(k.FetchMinBytes),
		FetchMaxBytes:          int(k.FetchMaxBytes),
		FetchPartitionMaxBytes: int(k.FetchPartitionMaxBytes),
		MetadataRefresh:        k.MetadataRefresh,
		MaxBatchBytes:          k.MaxBatchBytes,
		ProduceLinger:          k.ProduceLinger,
		ProduceBatchBytes:      k.ProduceBatchBytes,
		ProduceCodec:           k.ProduceCodec,
		IsolationLevel:         isolationLevels[k.IsolationLevel],
	}
}

var (
	// yamlUnknown matches yaml.v3's "line N: field X not found in type T".
	yamlUnknown = regexp.MustCompile(`^line (\d+): field (\S+) not found in type \S+$`)
	// yamlLine matches the line number yaml.v3 puts in front of its errors.
	yamlLine = regexp.MustCompile(`^line (\d+): `)
)

// LoadFile decodes the YAML file at path over s; unknown keys are refused.
func LoadFile(path string, s *Settings) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("config file: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxConfigFile+1))
	if err != nil {
		return fmt.Errorf("config file %s: %w", path, err)
	}
	if len(data) > maxConfigFile {
		return fmt.Errorf("config file %s: larger than %d bytes", path, maxConfigFile)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(s); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("config file %s: %s", path, yamlError(err, data))
	}
	var keys map[string]yaml.Node
	if err := yaml.Unmarshal(data, &keys); err != nil {
		return fmt.Errorf("config file %s: %s", path, yamlError(err, data))
	}
	s.fileKeys = make(map[string]bool, len(keys))
	for k := range keys {
		s.fileKeys[k] = true
	}
	return nil
}

// FromFile reports whether the config file LoadFile read set key.
func (s *Settings) FromFile(key string) bool { return s.fileKeys[key] }

// yamlError turns yaml.v3's multi-line errors into one line that names the
// key of the offending line of data.
func yamlError(err error, data []byte) string {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		return strings.TrimPrefix(err.Error(), "yaml: ")
	}
	parts := make([]string, len(te.Errors))
	for i, e := range te.Errors {
		if m := yamlUnknown.FindStringSubmatch(e); m != nil {
			e = fmt.Sprintf("line %s: unknown key %q", m[1], m[2])
		} else if m := yamlLine.FindStringSubmatch(e); m != nil {
			if key := keyAtLine(data, m[1]); key != "" {
				e = fmt.Sprintf("line %s: %s: %s", m[1], key, e[len(m[0]):])
			}
		}
		parts[i] = strings.ReplaceAll(e, "time.Duration", "duration (like 30s)")
	}
	return strings.Join(parts, "; ")
}

// keyAtLine returns the mapping key written on line n (1-based) of data, if any.
func keyAtLine(data []byte, n string) string {
	i, err := strconv.Atoi(n)
	if err != nil || i < 1 {
		return ""
	}
	lines := strings.Split(string(data), "\n")
	if i > len(lines) {
		return ""
	}
	line := strings.TrimPrefix(strings.TrimSpace(lines[i-1]), "- ")
	key, _, ok := strings.Cut(line, ":")
	if !ok || strings.ContainsAny(key, " \t{[\"'") {
		return ""
	}
	return key
}

// FileRoutes validates the routes: list of the config file at path (in
// s.Routes) and gives those without an id theirs by position: config-1,
// config-2, ...
func (s *Settings) FileRoutes(path string) ([]*apisix.RouteSpec, error) {
	out := make([]*apisix.RouteSpec, len(s.Routes))
	for i, v := range s.Routes {
		// Through JSON, so that a route reads exactly as the admin API reads it.
		b, err := json.Marshal(v)
		if err != nil {
			return nil, fmt.Errorf("config file %s: routes[%d]: keys must be strings", path, i)
		}
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.UseNumber()
		var jv any
		if err := dec.Decode(&jv); err != nil {
			return nil, fmt.Errorf("config file %s: routes[%d]: %w", path, i, err)
		}
		r, err := apisix.FromValue(jv)
		if err != nil {
			return nil, fmt.Errorf("config file %s: routes[%d]: %w", path, i, err)
		}
		if r.ID == "" {
			r.ID = "config-" + strconv.Itoa(i+1)
		}
		out[i] = r
	}
	return out, nil
}

// ReadRoutes reads the routes of the config file at path, for SIGHUP. The
// whole file must load (unknown keys are refused as at start), but only its
// routes are used.
func ReadRoutes(path string) ([]*apisix.RouteSpec, error) {
	s := Default()
	if err := LoadFile(path, &s); err != nil {
		return nil, err
	}
	return s.FileRoutes(path)
}

// Validate checks every setting; the error is one line that names the flag
// (and YAML key). The settings of the WebSocket server and of the Kafka
// client are checked by reactor.Config.Validate and kafkawire.Config.Validate,
// whose settings they are, so that a value they refuse fails the start and
// not, later, the server or every route. The command adds one rule of its
// own: a number or a duration of 0 (which those packages take for "the
// default") is refused, since the flag's default is already the default.
func (s *Settings) Validate() error {
	for _, l := range []struct{ name, addr string }{
		{"admin-listen", s.AdminListen}, {"metrics-listen", s.MetricsListen},
	} {
		if l.addr == "" {
			continue // turned off
		}
		if err := hostport.Listen(l.addr); err != nil {
			return fmt.Errorf("-%s %q: %v", l.name, l.addr, err)
		}
	}
	if _, err := parseLevel(s.LogLevel); err != nil {
		return fmt.Errorf("-log-level: %v", err)
	}
	if err := checkLogFormat(s.LogFormat); err != nil {
		return fmt.Errorf("-log-format: %v", err)
	}
	if _, err := kafkawire.ParseGroupProtocol(s.GroupProtocol); err != nil {
		return fmt.Errorf("-group-protocol: %v", err)
	}
	if _, err := parseIsolation(s.IsolationLevel); err != nil {
		return fmt.Errorf("-isolation-level: %v", err)
	}
	for _, f := range s.fields() {
		switch v := f.value.(type) {
		case int:
			if v < 0 || v == 0 && !f.zeroOK {
				return fmt.Errorf("-%s must be 1 or more, not %d", f.flag, v)
			}
			if f.int32 && v > math.MaxInt32 {
				return fmt.Errorf("-%s must be at most %d, not %d", f.flag, math.MaxInt32, v)
			}
		case time.Duration:
			if v <= 0 {
				return fmt.Errorf("-%s must be a positive duration, not %s", f.flag, v)
			}
		}
	}
	if err := s.Reactor(nil, nil).Validate(); err != nil {
		return s.flagError(err)
	}
	k := s.Kafka(nil, nil)
	k.Brokers = []string{"localhost:9092"} // the routes bring their own
	if err := k.Validate(); err != nil {
		return s.flagError(err)
	}
	return nil
}

// field is one numeric setting: its flag, its value (an int or a
// time.Duration), and the field of reactor.Config or kafkawire.Config it
// sets ("" for the command's own).
type field struct {
	flag   string
	value  any
	config string
	zeroOK bool // 0 has a meaning of its own (-loops 0: one per CPU)
	int32  bool // the field is an int32
}

// fields lists the numeric settings.
func (s *Settings) fields() []field {
	return []field{
		{flag: "drain-timeout", value: s.DrainTimeout},
		{flag: "max-route-nodes", value: s.MaxRouteNodes},
		{flag: "loops", value: s.Loops, config: "Loops", zeroOK: true},
		{flag: "max-conns", value: s.MaxConns, config: "MaxConns"},
		{flag: "max-inflight", value: s.MaxInflight, config: "MaxInflight"},
		{flag: "max-inflight-total", value: s.MaxInflightTotal, config: "MaxInflightTotal"},
		{flag: "max-inflight-cluster", value: s.MaxInflightCluster, config: "MaxInflightCluster", zeroOK: true},
		{flag: "max-message", value: s.MaxMessage, config: "MaxMessage"},
		{flag: "max-header", value: s.MaxHeader, config: "MaxHeader"},
		{flag: "max-outbound", value: s.MaxOutbound, config: "MaxOutbound"},
		{flag: "memory-budget", value: s.MemoryBudget, config: "MemoryBudget", zeroOK: true},
		{flag: "slow-timeout", value: s.SlowTimeout, config: "SlowTimeout"},
		{flag: "idle-timeout", value: s.IdleTimeout, config: "IdleTimeout"},
		{flag: "handshake-timeout", value: s.HandshakeTimeout, config: "HandshakeTimeout"},
		{flag: "max-fetch-wait", value: s.MaxFetchWait, config: "MaxFetchWait"},
		{flag: "max-subscriptions", value: s.MaxSubscriptions, config: "MaxSubscriptions"},
		{flag: "max-subscription-partitions", value: s.MaxSubscriptionPartitions, config: "MaxSubscriptionPartitions"},
		{flag: "max-push-bytes", value: s.MaxPushBytes, config: "MaxPushBytes"},
		{flag: "tail-cache", value: s.TailCache, config: "TailCache"},
		{flag: "subscription-refresh", value: s.SubscriptionRefresh, config: "SubscriptionRefresh"},
		{flag: "max-group-members", value: s.MaxGroupMembers, config: "MaxGroupMembers"},
		{flag: "group-session-timeout", value: s.GroupSessionTimeout, config: "GroupSessionTimeout"},
		{flag: "broker-conns", value: s.BrokerConns, config: "ConnsPerBroker"},
		{flag: "dial-timeout", value: s.DialTimeout, config: "DialTimeout"},
		{flag: "request-timeout", value: s.RequestTimeout, config: "RequestTimeout"},
		{flag: "fetch-max-wait", value: s.FetchMaxWait, config: "FetchMaxWait"},
		{flag: "fetch-min-bytes", value: s.FetchMinBytes, config: "FetchMinBytes", zeroOK: true, int32: true},
		{flag: "fetch-max-bytes", value: s.FetchMaxBytes, config: "FetchMaxBytes", int32: true},
		{flag: "fetch-partition-max-bytes", value: s.FetchPartitionMaxBytes, config: "FetchPartitionMaxBytes", int32: true},
		{flag: "metadata-refresh", value: s.MetadataRefresh, config: "MetadataRefresh"},
		{flag: "max-batch-bytes", value: s.MaxBatchBytes, config: "MaxBatchBytes"},
		{flag: "produce-linger", value: s.ProduceLinger, config: "ProduceLinger"},
		{flag: "produce-batch-bytes", value: s.ProduceBatchBytes, config: "ProduceBatchBytes"},
		{flag: "produce-codec", value: s.ProduceCodec, config: "ProduceCodec"},
	}
}

// flagError puts the flag in front of an error of reactor.Config.Validate
// or kafkawire.Config.Validate, which names the field of its Config:
// "-broker-conns 100: kafkawire config: ConnsPerBroker 100 out of range
// 1..64".
func (s *Settings) flagError(err error) error {
	msg := err.Error()
	if strings.Contains(msg, ": Addr ") {
		return fmt.Errorf("-listen %q: %w", s.Listen, err)
	}
	for _, f := range s.fields() {
		if f.config != "" && strings.Contains(msg, ": "+f.config+" ") {
			return fmt.Errorf("-%s %v: %w", f.flag, f.value, err)
		}
	}
	return err
}

// Kafka is the kafkawire configuration that every route's cluster starts
// from; apisix.RouteSpec.Cluster adds the route's brokers, TLS and SASL.
func (s *Settings) Kafka(log *slog.Logger, obs kafkawire.Observer) kafkawire.Config {
	iso, _ := parseIsolation(s.IsolationLevel)
	return kafkawire.Config{
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
		ProduceLinger:          s.ProduceLinger,
		ProduceBatchBytes:      s.ProduceBatchBytes,
		ProduceCodec:           s.ProduceCodec,
		Logger:                 log,
		Observer:               obs,
	}
}

// Reactor is the configuration of the WebSocket server.
func (s *Settings) Reactor(log *slog.Logger, obs reactor.Observer) reactor.Config {
	groupProtocol, _ := kafkawire.ParseGroupProtocol(s.GroupProtocol)
	return reactor.Config{
		Addr:               s.Listen,
		Loops:              s.Loops,
		MaxConns:           s.MaxConns,
		MaxInflight:        s.MaxInflight,
		MaxInflightTotal:   s.MaxInflightTotal,
		MaxInflightCluster: s.MaxInflightCluster,
		MaxMessage:         s.MaxMessage,
		MaxHeader:          s.MaxHeader,
		MaxOutbound:        s.MaxOutbound,
		MemoryBudget:       int64(s.MemoryBudget),
		SlowTimeout:        s.SlowTimeout,
		IdleTimeout:        s.IdleTimeout,
		HandshakeTimeout:   s.HandshakeTimeout,
		MaxFetchWait:       s.MaxFetchWait,

		MaxSubscriptions:          s.MaxSubscriptions,
		MaxSubscriptionPartitions: s.MaxSubscriptionPartitions,
		MaxPushBytes:              s.MaxPushBytes,
		TailCache:                 int64(s.TailCache),
		SubscriptionRefresh:       s.SubscriptionRefresh,
		MaxGroupMembers:           s.MaxGroupMembers,
		GroupProtocol:             groupProtocol,
		GroupSessionTimeout:       s.GroupSessionTimeout,

		Logger:   log,
		Observer: obs,
	}
}

// Level is -log-level as a slog level (after Validate).
func (s *Settings) Level() slog.Level {
	l, _ := parseLevel(s.LogLevel)
	return l
}

// JSONLogs reports whether -log-format is json (after Validate).
func (s *Settings) JSONLogs() bool { return strings.EqualFold(s.LogFormat, "json") }

// parseLevel maps -log-level to a slog level.
func parseLevel(s string) (slog.Level, error) {
	switch strings.ToLower(s) {
	case "debug":
		return slog.LevelDebug, nil
	case "info":
		return slog.LevelInfo, nil
	case "warn", "warning":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return 0, fmt.Errorf("%q is not one of debug, info, warn, error", s)
}

// isolationLevels names the Kafka isolation levels, by number.
var isolationLevels = [...]string{0: "read_uncommitted", 1: "read_committed"}

// parseIsolation maps -isolation-level to the Kafka isolation level.
func parseIsolation(s string) (int8, error) {
	for i, name := range isolationLevels {
		if s == name {
			return int8(i), nil
		}
	}
	return 0, fmt.Errorf("%q is not read_uncommitted or read_committed", s)
}

// checkLogFormat checks -log-format.
func checkLogFormat(s string) error {
	switch strings.ToLower(s) {
	case "text", "json":
		return nil
	}
	return fmt.Errorf("%q is not text or json", s)
}
