package kafkawire

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Defaults that New applies to zero fields of Config.
const (
	defaultClientID        = "kafkaedge"
	defaultConnsPerBroker  = 2
	defaultDialTimeout     = 10 * time.Second
	defaultRequestTimeout  = 30 * time.Second
	defaultMetadataRefresh = 60 * time.Second
	defaultFetchMaxWait    = 100 * time.Millisecond
	defaultFetchMaxBytes   = 10 << 20
	defaultMaxBatchBytes   = 64 << 20
)

// DefaultFetchPartitionMaxBytes is what a zero Config.FetchPartitionMaxBytes
// means: 10 MiB, as APISIX asks.
const DefaultFetchPartitionMaxBytes = 10 << 20

// Limits that bound what a broker can make the client do.
const (
	// maxConnsPerBroker caps Config.ConnsPerBroker.
	maxConnsPerBroker = 64
	// responseSlack is added to the larger of FetchMaxBytes and
	// FetchPartitionMaxBytes to get the largest response frame accepted:
	// Kafka returns a first record batch bigger than the fetch limits, and
	// metadata of big clusters is large too.
	responseSlack = 16 << 20
	// maxScramIterations bounds the PBKDF2 work a SCRAM server can ask for.
	maxScramIterations = 1 << 20
)

// Config configures a Client. Zero fields take the defaults noted beside them.
type Config struct {
	Brokers         []string      // bootstrap "host:port"
	ClientID        string        // default "kafkaedge"
	TLS             *TLSConfig    // nil = plaintext
	SASL            *SASLConfig   // nil = none
	ConnsPerBroker  int           // default 2
	DialTimeout     time.Duration // default 10s
	RequestTimeout  time.Duration // default 30s, used when ctx has no earlier deadline
	MetadataRefresh time.Duration // periodic background refresh, default 60s

	FetchMaxWait           time.Duration // default 100ms
	FetchMinBytes          int32         // default 0
	FetchMaxBytes          int32         // default 10 MiB
	FetchPartitionMaxBytes int32         // default 10 MiB
	IsolationLevel         int8          // 0 read_uncommitted (default), 1 read_committed
	MaxBatchBytes          int           // decompressed cap per batch, default 64 MiB

	Logger *slog.Logger // default slog.Default()

	// Observer, when not nil, receives the Client's events for metrics
	// (requests per broker, connection states, metadata refreshes,
	// decompression). It is not part of Key.
	Observer Observer
}

// TLSConfig enables TLS to the brokers.
type TLSConfig struct {
	Verify     bool   // verify the broker certificate chain and name
	CAFile     string // PEM roots to verify against; system roots when empty
	CertFile   string // PEM client certificate, with KeyFile
	KeyFile    string // PEM client key, with CertFile
	ServerName string // name to verify; the broker's host when empty
}

// SASLConfig enables SASL authentication on every broker connection.
type SASLConfig struct {
	Mechanism string // "PLAIN" (default), "SCRAM-SHA-256" or "SCRAM-SHA-512"
	Username  string
	Password  string
}

// SASL mechanism names.
const (
	mechanismPlain       = "PLAIN"
	mechanismScramSHA256 = "SCRAM-SHA-256"
	mechanismScramSHA512 = "SCRAM-SHA-512"
)

// keySecret salts the password digest in Config.Key, so that a key seen in a
// log cannot be brute-forced offline. Keys are stable within one process,
// which is all that sharing Clients needs.
var keySecret = func() []byte {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return b
}()

// withDefaults returns c with zero fields set to their defaults.
func (c Config) withDefaults() Config {
	if c.ClientID == "" {
		c.ClientID = defaultClientID
	}
	if c.ConnsPerBroker == 0 {
		c.ConnsPerBroker = defaultConnsPerBroker
	}
	if c.DialTimeout == 0 {
		c.DialTimeout = defaultDialTimeout
	}
	if c.RequestTimeout == 0 {
		c.RequestTimeout = defaultRequestTimeout
	}
	if c.MetadataRefresh == 0 {
		c.MetadataRefresh = defaultMetadataRefresh
	}
	if c.FetchMaxWait == 0 {
		c.FetchMaxWait = defaultFetchMaxWait
	}
	if c.FetchMaxBytes == 0 {
		c.FetchMaxBytes = defaultFetchMaxBytes
	}
	if c.FetchPartitionMaxBytes == 0 {
		c.FetchPartitionMaxBytes = DefaultFetchPartitionMaxBytes
	}
	if c.MaxBatchBytes == 0 {
		c.MaxBatchBytes = defaultMaxBatchBytes
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.SASL != nil && c.SASL.Mechanism == "" {
		s := *c.SASL
		s.Mechanism = mechanismPlain
		c.SASL = &s
	}
	return c
}

// validate checks a Config that already has its defaults.
func (c Config) validate() error {
	if len(c.Brokers) == 0 {
		return errors.New("no bootstrap brokers")
	}
	for _, b := range c.Brokers {
		host, port, err := net.SplitHostPort(b)
		if err != nil {
			return fmt.Errorf("broker %q: %w", b, err)
		}
		if host == "" {
			return fmt.Errorf("broker %q: empty host", b)
		}
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("broker %q: invalid port", b)
		}
	}
	switch {
	case c.ConnsPerBroker < 1 || c.ConnsPerBroker > maxConnsPerBroker:
		return fmt.Errorf("ConnsPerBroker %d out of range 1..%d", c.ConnsPerBroker, maxConnsPerBroker)
	case c.DialTimeout < 0, c.RequestTimeout < 0, c.MetadataRefresh < 0, c.FetchMaxWait < 0:
		return errors.New("negative duration")
	case c.FetchMaxWait > time.Duration(1<<31-1)*time.Millisecond:
		return errors.New("FetchMaxWait too large")
	case c.FetchMinBytes < 0, c.FetchMaxBytes < 0, c.FetchPartitionMaxBytes < 0, c.MaxBatchBytes < 0:
		return errors.New("negative byte limit")
	case c.FetchMaxBytes > 1<<30 || c.FetchPartitionMaxBytes > 1<<30:
		return errors.New("fetch byte limit above 1 GiB")
	case c.IsolationLevel != 0 && c.IsolationLevel != 1:
		return fmt.Errorf("IsolationLevel %d: want 0 (read_uncommitted) or 1 (read_committed)", c.IsolationLevel)
	}
	if s := c.SASL; s != nil {
		switch s.Mechanism {
		case mechanismPlain, mechanismScramSHA256, mechanismScramSHA512:
		default:
			return fmt.Errorf("SASL mechanism %q: want PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512", s.Mechanism)
		}
		if s.Username == "" {
			return errors.New("SASL username is empty")
		}
	}
	if t := c.TLS; t != nil && (t.CertFile == "") != (t.KeyFile == "") {
		return errors.New("TLS CertFile and KeyFile must be set together")
	}
	return nil
}

// maxResponse is the largest response frame the client accepts.
func (c Config) maxResponse() int {
	return int(max(c.FetchMaxBytes, c.FetchPartitionMaxBytes)) + responseSlack
}

// tlsConfig loads the files named by c.TLS into a *tls.Config (nil when TLS
// is off). ServerName is filled per connection when empty.
func (c Config) tlsConfig() (*tls.Config, error) {
	t := c.TLS
	if t == nil {
		return nil, nil
	}
	tc := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		InsecureSkipVerify: !t.Verify, //nolint:gosec // the operator turned verification off
		ServerName:         t.ServerName,
	}
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("read TLS CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("TLS CA file %s: no PEM certificate found", t.CAFile)
		}
		tc.RootCAs = pool
	}
	if t.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("load TLS client certificate: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

// Key is a canonical identity of the cluster config (sorted brokers, TLS,
// SASL incl. a keyed hash of the password, and every setting that changes
// behavior) so callers can share one Client per distinct cluster. Configs
// that differ only in zero versus explicit default values have equal keys.
// The Logger is not part of the key. Keys are comparable within one process.
func (c Config) Key() string {
	c = c.withDefaults()
	brokers := slices.Clone(c.Brokers)
	for i, b := range brokers {
		brokers[i] = strings.ToLower(strings.TrimSpace(b))
	}
	slices.Sort(brokers)
	brokers = slices.Compact(brokers)

	var sb strings.Builder
	fmt.Fprintf(&sb, "brokers=%s;client=%q", strings.Join(brokers, ","), c.ClientID)
	if t := c.TLS; t != nil {
		fmt.Fprintf(&sb, ";tls=verify:%t,ca:%q,cert:%q,key:%q,name:%q", t.Verify, t.CAFile, t.CertFile, t.KeyFile, t.ServerName)
	}
	if s := c.SASL; s != nil {
		mac := hmac.New(sha256.New, keySecret)
		mac.Write([]byte(s.Password))
		fmt.Fprintf(&sb, ";sasl=%s,user:%q,pass:%s", s.Mechanism, s.Username, hex.EncodeToString(mac.Sum(nil)[:16]))
	}
	fmt.Fprintf(&sb, ";conns=%d;dial=%s;req=%s;meta=%s;wait=%s;min=%d;max=%d;pmax=%d;iso=%d;batch=%d",
		c.ConnsPerBroker, c.DialTimeout, c.RequestTimeout, c.MetadataRefresh, c.FetchMaxWait,
		c.FetchMinBytes, c.FetchMaxBytes, c.FetchPartitionMaxBytes, c.IsolationLevel, c.MaxBatchBytes)
	return sb.String()
}
