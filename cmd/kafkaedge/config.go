package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// errConfig marks a bad configuration: the process exits with code 2.
var errConfig = errors.New("bad configuration")

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

// defaultSettings returns the built-in defaults (those of reactor.Config and
// kafkawire.Config, spelled out so -h shows them).
func defaultSettings() Settings {
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

// loadFile decodes the YAML file at path over s; unknown keys are refused.
func loadFile(path string, s *Settings) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("%w: config file: %w", errConfig, err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxConfigFile+1))
	if err != nil {
		return fmt.Errorf("%w: config file %s: %w", errConfig, path, err)
	}
	if len(data) > maxConfigFile {
		return fmt.Errorf("%w: config file %s: larger than %d bytes", errConfig, path, maxConfigFile)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(s); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("%w: config file %s: %s", errConfig, path, yamlError(err, data))
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

// fileRoutes validates the routes: list of the config file.
func fileRoutes(path string, list []any) ([]*RouteSpec, error) {
	out := make([]*RouteSpec, 0, len(list))
	for i, v := range list {
		// Through JSON, so that a route reads exactly as the admin API reads it.
		b, err := json.Marshal(v)
		if err != nil {
			return nil, fmt.Errorf("%w: config file %s: routes[%d]: keys must be strings", errConfig, path, i)
		}
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.UseNumber()
		var jv any
		if err := dec.Decode(&jv); err != nil {
			return nil, fmt.Errorf("%w: config file %s: routes[%d]: %w", errConfig, path, i, err)
		}
		r, err := routeFromValue(jv)
		if err != nil {
			return nil, fmt.Errorf("%w: config file %s: routes[%d]: %s", errConfig, path, i, routeProblem(err))
		}
		out = append(out, r)
	}
	return out, nil
}

// routeProblem is the text of a route validation error without its sentinel prefix.
func routeProblem(err error) string {
	return strings.TrimPrefix(err.Error(), errInvalidRoute.Error()+": ")
}

// validate checks every setting; the error names the flag/key.
func (s *Settings) validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", errConfig, fmt.Sprintf(format, args...))
	}
	if err := checkListen(s.Listen); err != nil {
		return bad("-listen %q: %v", s.Listen, err)
	}
	if s.AdminListen != "" {
		if err := checkListen(s.AdminListen); err != nil {
			return bad("-admin-listen %q: %v", s.AdminListen, err)
		}
	}
	if s.MetricsListen != "" {
		if err := checkListen(s.MetricsListen); err != nil {
			return bad("-metrics-listen %q: %v", s.MetricsListen, err)
		}
	}
	if _, err := parseLevel(s.LogLevel); err != nil {
		return bad("-log-level: %v", err)
	}
	if _, err := parseLogFormat(s.LogFormat); err != nil {
		return bad("-log-format: %v", err)
	}
	if _, err := parseIsolation(s.IsolationLevel); err != nil {
		return bad("-isolation-level: %v", err)
	}
	if s.Loops < 0 {
		return bad("-loops must be 0 (one per CPU) or more, not %d", s.Loops)
	}
	for _, c := range []struct {
		name string
		v    int
		max  int
	}{
		{"max-conns", s.MaxConns, math.MaxInt32},
		{"max-inflight", s.MaxInflight, math.MaxInt32},
		{"max-inflight-total", s.MaxInflightTotal, math.MaxInt32},
		{"max-message", s.MaxMessage, 1 << 30},
		{"max-header", s.MaxHeader, 1 << 20},
		{"max-outbound", s.MaxOutbound, 1 << 40},
		{"broker-conns", s.BrokerConns, 1024},
		{"fetch-max-bytes", s.FetchMaxBytes, math.MaxInt32},
		{"fetch-partition-max-bytes", s.FetchPartitionMaxBytes, math.MaxInt32},
		{"max-batch-bytes", s.MaxBatchBytes, 1 << 40},
	} {
		if c.v < 1 || c.v > c.max {
			return bad("-%s must be from 1 to %d, not %d", c.name, c.max, c.v)
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
			return bad("-%s must be a positive duration, not %s", c.name, c.v)
		}
	}
	if s.FetchMinBytes < 0 || s.FetchMinBytes > math.MaxInt32 {
		return bad("-fetch-min-bytes must be from 0 to %d, not %d", math.MaxInt32, s.FetchMinBytes)
	}
	if s.FetchMaxWait > s.RequestTimeout {
		return bad("-fetch-max-wait (%s) must not exceed -request-timeout (%s)", s.FetchMaxWait, s.RequestTimeout)
	}
	return nil
}

// checkListen validates a listen address; port 0 (any free port) is allowed.
func checkListen(addr string) error {
	host, ps, err := net.SplitHostPort(addr)
	if err != nil {
		return errors.New("want host:port")
	}
	port, err := strconv.Atoi(ps)
	if err != nil || port < 0 || port > 65535 {
		return errors.New("port must be 0 to 65535")
	}
	if host == "" {
		return nil // all interfaces
	}
	return checkHost(host)
}

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
