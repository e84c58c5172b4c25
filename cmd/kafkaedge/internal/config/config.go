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
	"github.com/kafkaedge/kafkaedge/cmd/kafkaedge/internal/hostport"
	"github.com/kafkaedge/kafkaedge/kafkawire"
	"github.com/kafkaedge/kafkaedge/reactor"
)

// maxConfigFile bounds the YAML file read at start.
const maxConfigFile = 16 << 20

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

	// Metrics and health
	MetricsListen      string `yaml:"metrics-listen"`
	MetricsTopicLabels bool   `yaml:"metrics-topic-labels"`

	// reactor.Config
	Loops            int           `yaml:"loops"`
	MaxConns         int           `yaml:"max-conns"`
	MaxInflight      int           `yaml:"max-inflight"`
	MaxInflightTotal int           `yaml:"max-inflight-total"`
	MaxMessage       int           `yaml:"max-message"`
	MaxHeader        int           `yaml:"max-header"`
	MaxOutbound      int           `yaml:"max-outbound"`
	SlowTimeout      time.Duration `yaml:"slow-timeout"`
	IdleTimeout      time.Duration `yaml:"idle-timeout"`
	HandshakeTimeout time.Duration `yaml:"handshake-timeout"`

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
	IsolationLevel         string        `yaml:"isolation-level"`

	// Routes from the config file, each in the admin JSON shape.
	Routes []any `yaml:"routes"`
}

// Default returns the built-in defaults (those of reactor.Config and
// kafkawire.Config, spelled out so -h shows them).
func Default() Settings {
	return Settings{
		Listen:                 "0.0.0.0:9080",
		AdminListen:            "127.0.0.1:9180",
		LogLevel:               "info",
		LogFormat:              "text",
		DrainTimeout:           15 * time.Second,
		MetricsListen:          "127.0.0.1:9091",
		MaxConns:               100000,
		MaxInflight:            64,
		MaxInflightTotal:       4096,
		MaxMessage:             1 << 20,
		MaxHeader:              8 << 10,
		MaxOutbound:            32 << 20,
		SlowTimeout:            30 * time.Second,
		IdleTimeout:            5 * time.Minute,
		HandshakeTimeout:       10 * time.Second,
		BrokerConns:            2,
		DialTimeout:            10 * time.Second,
		RequestTimeout:         30 * time.Second,
		FetchMaxWait:           100 * time.Millisecond,
		FetchMaxBytes:          10 << 20,
		FetchPartitionMaxBytes: 10 << 20,
		MetadataRefresh:        time.Minute,
		MaxBatchBytes:          64 << 20,
		IsolationLevel:         "read_uncommitted",
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
	return nil
}

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

// Validate checks every setting; the error names the flag (and YAML key).
// The settings of the WebSocket server and of the Kafka client are checked
// by reactor and kafkawire, whose settings they are, so that a value they
// refuse fails the start and not, later, the server or every route.
func (s *Settings) Validate() error {
	for _, l := range []struct{ name, addr string }{
		{"listen", s.Listen}, {"admin-listen", s.AdminListen}, {"metrics-listen", s.MetricsListen},
	} {
		if l.addr == "" && l.name != "listen" {
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
	if _, err := parseIsolation(s.IsolationLevel); err != nil {
		return fmt.Errorf("-isolation-level: %v", err)
	}
	if s.Loops < 0 {
		return fmt.Errorf("-loops must be 0 (one per CPU) or more, not %d", s.Loops)
	}
	for _, c := range []struct {
		name string
		v    int
		max  int // 0: kafkawire has the bound
	}{
		{"max-conns", s.MaxConns, math.MaxInt32},
		{"max-inflight", s.MaxInflight, math.MaxInt32},
		{"max-inflight-total", s.MaxInflightTotal, math.MaxInt32},
		{"max-message", s.MaxMessage, 1 << 30},
		{"max-header", s.MaxHeader, 1 << 20},
		{"max-outbound", s.MaxOutbound, 1 << 40},
		{"broker-conns", s.BrokerConns, 0},
		{"fetch-max-bytes", s.FetchMaxBytes, math.MaxInt32},
		{"fetch-partition-max-bytes", s.FetchPartitionMaxBytes, math.MaxInt32},
		{"max-batch-bytes", s.MaxBatchBytes, 1 << 40},
	} {
		switch {
		case c.max == 0 && c.v < 1:
			return fmt.Errorf("-%s must be 1 or more, not %d", c.name, c.v)
		case c.max > 0 && (c.v < 1 || c.v > c.max):
			return fmt.Errorf("-%s must be from 1 to %d, not %d", c.name, c.max, c.v)
		}
	}
	for _, c := range []struct {
		name string
		v    time.Duration
	}{
		{"drain-timeout", s.DrainTimeout},
		{"slow-timeout", s.SlowTimeout},
		{"idle-timeout", s.IdleTimeout},
		{"handshake-timeout", s.HandshakeTimeout},
		{"dial-timeout", s.DialTimeout},
		{"request-timeout", s.RequestTimeout},
		{"fetch-max-wait", s.FetchMaxWait},
		{"metadata-refresh", s.MetadataRefresh},
	} {
		if c.v <= 0 {
			return fmt.Errorf("-%s must be a positive duration, not %s", c.name, c.v)
		}
	}
	if s.FetchMinBytes < 0 || s.FetchMinBytes > math.MaxInt32 {
		return fmt.Errorf("-fetch-min-bytes must be from 0 to %d, not %d", math.MaxInt32, s.FetchMinBytes)
	}
	if s.FetchMaxWait > s.RequestTimeout {
		return fmt.Errorf("-fetch-max-wait (%s) must not exceed -request-timeout (%s)", s.FetchMaxWait, s.RequestTimeout)
	}
	if err := s.Reactor(nil, nil).Validate(); err != nil {
		return fmt.Errorf("server settings: %w", err)
	}
	k := s.Kafka(nil, nil)
	k.Brokers = []string{"localhost:9092"} // the routes bring their own
	if err := k.Validate(); err != nil {
		return fmt.Errorf("Kafka client settings: %w", err)
	}
	return nil
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
		Logger:                 log,
		Observer:               obs,
	}
}

// Reactor is the configuration of the WebSocket server.
func (s *Settings) Reactor(log *slog.Logger, obs reactor.Observer) reactor.Config {
	return reactor.Config{
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
		Observer:         obs,
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

// parseIsolation maps -isolation-level to the Kafka isolation level.
func parseIsolation(s string) (int8, error) {
	switch s {
	case "read_uncommitted":
		return 0, nil
	case "read_committed":
		return 1, nil
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
