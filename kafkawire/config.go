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
	"os"
	"slices"
	"strings"
	"time"

	"github.com/kafkaedge/kafkaedge/internal/hostport"
	"github.com/kafkaedge/kafkaedge/kafkawire/record"
)

// Bounds of the settings, checked by Validate.
const (
	maxConnsPerBroker = 64
	maxFetchBytes     = 1 << 30 // FetchMaxBytes, FetchPartitionMaxBytes, MaxBatchBytes
	maxClientID       = 1<<15 - 1
	// maxFetchWait is the longest wait a Fetch request can carry (int32
	// milliseconds).
	maxFetchWait = time.Duration(1<<31-1) * time.Millisecond
)

// Limits that bound what a broker can make the client do.
const (
	// responseSlack is added to the larger of FetchMaxBytes and
	// FetchPartitionMaxBytes to get the largest response frame accepted:
	// Kafka returns a first record batch bigger than the fetch limits, and
	// metadata of big clusters is large too.
	responseSlack = 16 << 20
	// maxScramIterations bounds the PBKDF2 work a SCRAM server can ask for.
	maxScramIterations = 1 << 20
)

// ErrConfig is wrapped by the errors of Validate (and so of New and
// ClientSet.Acquire): "kafkawire config: ConnsPerBroker 100 out of range
// 1..64".
var ErrConfig = errors.New("kafkawire config")

// Config configures a Client. A zero field takes its value in DefaultConfig.
type Config struct {
	Brokers         []string      // bootstrap "host:port", at least one
	ClientID        string        // default "kafkaedge"
	TLS             *TLSConfig    // nil = plaintext
	SASL            *SASLConfig   // nil = none
	ConnsPerBroker  int           // connections per broker and kind of traffic, 1..64, default 2
	DialTimeout     time.Duration // dial and TLS handshake, default 10s
	RequestTimeout  time.Duration // each call when ctx has no earlier deadline, and the Kafka handshake; default 30s
	MetadataRefresh time.Duration // periodic background refresh, default 60s

	FetchMaxWait           time.Duration // how long the broker may hold a fetch for data, at most RequestTimeout; default 100ms
	FetchMinBytes          int32         // default 0: a fetch at the end of a partition is answered at once
	FetchMaxBytes          int32         // per response, 1 byte to 1 GiB, default 10 MiB
	FetchPartitionMaxBytes int32         // per partition, 1 byte to 1 GiB, default 10 MiB
	IsolationLevel         int8          // 0 read_uncommitted (default), 1 read_committed
	MaxBatchBytes          int           // decompressed cap per batch, 1 byte to 1 GiB, default record.DefaultMaxBatchBytes (64 MiB)

	// Produce (see Client.Produce).
	ProduceLinger      time.Duration // how long a partition's open batch waits for more records, 0..1s, default 5ms
	ProduceBatchBytes  int           // a record batch's cap before compression, 1 KiB..16 MiB, default record.DefaultMaxMessageBytes (the broker's default max.message.bytes)
	ProduceCodec       string        // none, gzip, snappy, lz4 or zstd, default lz4
	DisableIdempotence bool          // AcksAll batches without a producer ID and sequences

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
	Username  string // not empty
	Password  string
}

// SASL mechanism names.
const (
	mechanismPlain       = "PLAIN"
	mechanismScramSHA256 = "SCRAM-SHA-256"
	mechanismScramSHA512 = "SCRAM-SHA-512"
)

// DefaultConfig returns every default of Config: what its zero fields
// mean. Brokers, TLS, SASL, Logger and Observer are nil.
func DefaultConfig() Config {
	return Config{
		ClientID:               "kafkaedge",
		ConnsPerBroker:         2,
		DialTimeout:            10 * time.Second,
		RequestTimeout:         30 * time.Second,
		MetadataRefresh:        60 * time.Second,
		FetchMaxWait:           100 * time.Millisecond,
		FetchMinBytes:          0,
		FetchMaxBytes:          10 << 20,
		FetchPartitionMaxBytes: 10 << 20, // as APISIX asks
		IsolationLevel:         0,
		MaxBatchBytes:          record.DefaultMaxBatchBytes,
		ProduceLinger:          5 * time.Millisecond,
		ProduceBatchBytes:      record.DefaultMaxMessageBytes,
		ProduceCodec:           "lz4",
	}
}

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
	d := DefaultConfig()
	if c.ClientID == "" {
		c.ClientID = d.ClientID
	}
	if c.ConnsPerBroker == 0 {
		c.ConnsPerBroker = d.ConnsPerBroker
	}
	if c.DialTimeout == 0 {
		c.DialTimeout = d.DialTimeout
	}
	if c.RequestTimeout == 0 {
		c.RequestTimeout = d.RequestTimeout
	}
	if c.MetadataRefresh == 0 {
		c.MetadataRefresh = d.MetadataRefresh
	}
	if c.FetchMaxWait == 0 {
		c.FetchMaxWait = d.FetchMaxWait
	}
	if c.FetchMaxBytes == 0 {
		c.FetchMaxBytes = d.FetchMaxBytes
	}
	if c.FetchPartitionMaxBytes == 0 {
		c.FetchPartitionMaxBytes = d.FetchPartitionMaxBytes
	}
	if c.MaxBatchBytes == 0 {
		c.MaxBatchBytes = d.MaxBatchBytes
	}
	if c.ProduceLinger == 0 {
		c.ProduceLinger = d.ProduceLinger
	}
	if c.ProduceBatchBytes == 0 {
		c.ProduceBatchBytes = d.ProduceBatchBytes
	}
	if c.ProduceCodec == "" {
		c.ProduceCodec = d.ProduceCodec
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

// Validate reports the first setting of c out of its bounds (a zero field
// stands for its default), in one line that names the setting and wraps
// ErrConfig. It is the one check of a cluster configuration: it validates
// the broker addresses and loads the TLS files, as New does through it.
func (c Config) Validate() error {
	_, err := c.withDefaults().check()
	return err
}

// check validates a Config that has its defaults and loads its TLS
// material: the tls.Config of the connections (nil without TLS;
// ServerName is filled per connection when empty).
func (c Config) check() (*tls.Config, error) {
	bad := func(format string, args ...any) (*tls.Config, error) {
		return nil, fmt.Errorf("%w: %s", ErrConfig, fmt.Sprintf(format, args...))
	}
	if len(c.Brokers) == 0 {
		return bad("Brokers: no bootstrap broker")
	}
	for _, b := range c.Brokers {
		if _, _, err := hostport.Split(b); err != nil {
			return bad("Brokers: bad address %q: %v", b, err)
		}
	}
	durations := []struct {
		name string
		d    time.Duration
	}{
		{"DialTimeout", c.DialTimeout},
		{"RequestTimeout", c.RequestTimeout},
		{"MetadataRefresh", c.MetadataRefresh},
		{"FetchMaxWait", c.FetchMaxWait},
	}
	for _, d := range durations {
		if d.d < 0 {
			return bad("%s %s is negative", d.name, d.d)
		}
	}
	sizes := []struct {
		name string
		n    int64
	}{
		{"FetchMaxBytes", int64(c.FetchMaxBytes)},
		{"FetchPartitionMaxBytes", int64(c.FetchPartitionMaxBytes)},
		{"MaxBatchBytes", int64(c.MaxBatchBytes)},
	}
	for _, s := range sizes {
		if s.n < 1 || s.n > maxFetchBytes {
			return bad("%s %d out of range 1..%d", s.name, s.n, maxFetchBytes)
		}
	}
	switch {
	case len(c.ClientID) > maxClientID:
		return bad("ClientID longer than %d bytes", maxClientID)
	case c.ConnsPerBroker < 1 || c.ConnsPerBroker > maxConnsPerBroker:
		return bad("ConnsPerBroker %d out of range 1..%d", c.ConnsPerBroker, maxConnsPerBroker)
	case c.FetchMaxWait > c.RequestTimeout:
		return bad("FetchMaxWait %s longer than RequestTimeout %s", c.FetchMaxWait, c.RequestTimeout)
	case c.FetchMaxWait > maxFetchWait:
		return bad("FetchMaxWait %s longer than %s", c.FetchMaxWait, maxFetchWait)
	case c.FetchMinBytes < 0:
		return bad("FetchMinBytes %d is negative", c.FetchMinBytes)
	case c.IsolationLevel != 0 && c.IsolationLevel != 1:
		return bad("IsolationLevel %d: want 0 (read_uncommitted) or 1 (read_committed)", c.IsolationLevel)
	case c.ProduceLinger < 0 || c.ProduceLinger > time.Second:
		return bad("ProduceLinger %s out of range 0..1s", c.ProduceLinger)
	case c.ProduceBatchBytes < 1<<10 || c.ProduceBatchBytes > 16<<20:
		return bad("ProduceBatchBytes %d out of range %d..%d", c.ProduceBatchBytes, 1<<10, 16<<20)
	}
	if _, err := record.ParseCodec(c.ProduceCodec); err != nil || c.ProduceCodec == "unknown" {
		return bad("ProduceCodec %q: want none, gzip, snappy, lz4 or zstd", c.ProduceCodec)
	}
	if s := c.SASL; s != nil {
		switch s.Mechanism {
		case mechanismPlain, mechanismScramSHA256, mechanismScramSHA512:
		default:
			return bad("SASL Mechanism %q: want PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512", s.Mechanism)
		}
		if s.Username == "" {
			return bad("SASL Username is empty")
		}
	}
	tc, err := c.TLS.load()
	if err != nil {
		return bad("%v", err)
	}
	return tc, nil
}

// load reads the files named by t into a tls.Config; nil t is no TLS.
func (t *TLSConfig) load() (*tls.Config, error) {
	if t == nil {
		return nil, nil
	}
	if (t.CertFile == "") != (t.KeyFile == "") {
		return nil, errors.New("TLS CertFile and KeyFile must be set together")
	}
	tc := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		InsecureSkipVerify: !t.Verify, //nolint:gosec // the operator turned verification off
		ServerName:         t.ServerName,
	}
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("TLS CAFile: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("TLS CAFile %s: no PEM certificate found", t.CAFile)
		}
		tc.RootCAs = pool
	}
	if t.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("TLS CertFile/KeyFile: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

// maxResponse is the largest response frame the client accepts.
func (c Config) maxResponse() int {
	return int(max(c.FetchMaxBytes, c.FetchPartitionMaxBytes)) + responseSlack
}

// Key is the identity of the cluster configuration: two Configs with equal
// keys get one Client from a ClientSet. It covers every field but Logger
// and Observer: the brokers (sorted, without duplicates, host names in
// lower case), the client ID, TLS (the file names, not their contents),
// SASL (the password as a keyed hash) and every other setting, with zero
// fields taken as their defaults, so that configs that differ only in
// zero versus explicit default values have equal keys. Keys are comparable
// within one process only.
func (c Config) Key() string {
	c = c.withDefaults()
	brokers := slices.Clone(c.Brokers)
	for i, b := range brokers {
		brokers[i] = strings.ToLower(b)
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
	fmt.Fprintf(&sb, ";linger=%s;pbatch=%d;codec=%s;noidem=%t", c.ProduceLinger, c.ProduceBatchBytes, c.ProduceCodec, c.DisableIdempotence)
	return sb.String()
}
