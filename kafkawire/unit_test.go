package kafkawire

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/kafkaedge/kafkaedge/kafkawire/wire"
)

// TestScramVector runs the SCRAM-SHA-256 exchange of RFC 7677 section 3.
func TestScramVector(t *testing.T) {
	const (
		nonce       = "rOprNGfwEbeRWgbNEkqO"
		serverFirst = "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
		clientFinal = "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
		serverFinal = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
	)
	script := func(final string) func([]byte) ([]byte, error) {
		n := 0
		return func(msg []byte) ([]byte, error) {
			n++
			switch n {
			case 1:
				if string(msg) != "n,,n=user,r="+nonce {
					return nil, fmt.Errorf("client-first %q", msg)
				}
				return []byte(serverFirst), nil
			case 2:
				if string(msg) != clientFinal {
					return nil, fmt.Errorf("client-final %q", msg)
				}
				return []byte(final), nil
			}
			return nil, errors.New("extra message")
		}
	}
	if err := scramNonce(script(serverFinal), sha256.New, "user", "pencil", nonce); err != nil {
		t.Fatalf("RFC 7677 exchange: %v", err)
	}
	// A server that does not know the password cannot sign.
	err := scramNonce(script("v=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="), sha256.New, "user", "pencil", nonce)
	if err == nil || !strings.Contains(err.Error(), "server signature") {
		t.Fatalf("forged server signature: %v", err)
	}
	err = scramNonce(script("e=invalid-proof"), sha256.New, "user", "pencil", nonce)
	if err == nil || !strings.Contains(err.Error(), "invalid-proof") {
		t.Fatalf("server error: %v", err)
	}
}

// TestScramHostileServer: bad server-first messages are errors, including an
// iteration count that would burn CPU.
func TestScramHostileServer(t *testing.T) {
	for _, first := range []string{
		"r=other,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",     // nonce not ours
		"r=abc,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",       // nonce not extended
		"r=abcdef,s=!!,i=4096",                          // salt not base64
		"r=abcdef,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=0",       // no iterations
		"r=abcdef,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=2000000", // too many
		"r=abcdef,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=x",
		"garbage",
		"",
	} {
		step := func([]byte) ([]byte, error) { return []byte(first), nil }
		if err := scramNonce(step, sha256.New, "u", "p", "abc"); err == nil {
			t.Errorf("server-first %q accepted", first)
		}
	}
}

// TestErrorText covers Error's text, Reason and unwrapping.
func TestErrorText(t *testing.T) {
	for _, tt := range []struct {
		err  *Error
		text string
	}{
		{newError("fetch", "topic", 3, 120, kafkaError{wire.ErrOffsetOutOfRange}),
			"fetch topic/3@120: OFFSET_OUT_OF_RANGE"},
		{newError("fetch", "t", 0, 0, fmt.Errorf("broker 2: %w", kafkaError{wire.ErrNotLeaderOrFollower})),
			"fetch t/0@0: NOT_LEADER_OR_FOLLOWER"},
		{newError("list offsets", "t", 1, -1, ErrUnknownTopic),
			"list offsets t/1@-1: unknown topic or partition"},
		{newError("fetch", "t", 1, 5, kafkaError{wire.ErrUnknownTopicOrPartition}),
			"fetch t/1@5: unknown topic or partition"},
		{newError("list offsets", "topic", 3, -1, &connError{addr: "10.0.0.1:9092", err: errors.New("dial tcp: connection refused")}),
			"list offsets topic/3@-1: broker 10.0.0.1:9092: dial tcp: connection refused"},
		{newError("fetch", "t", 0, 0, fmt.Errorf("%w: x", ErrTimeout)), "fetch t/0@0: request timed out: x"},
		{newError("fetch", "t", 0, 0, ErrClosed), "fetch t/0@0: kafkawire: client closed"},
	} {
		if got := tt.err.Error(); got != tt.text {
			t.Errorf("Error() = %q, want %q", got, tt.text)
		}
	}
	if e := newError("fetch", "t", 0, 0, ErrUnknownTopic); e.Code != wire.ErrUnknownTopicOrPartition || !errors.Is(e, ErrUnknownTopic) || errors.Is(e, ErrUnknownPartition) {
		t.Errorf("unknown topic: code %d, is %v", e.Code, errors.Is(e, ErrUnknownTopic))
	}
	// An unknown partition of a known topic is both, with the same texts.
	e := newError("fetch", "t", 7, 0, fmt.Errorf("lookup: %w", ErrUnknownPartition))
	if e.Code != wire.ErrUnknownTopicOrPartition || !errors.Is(e, ErrUnknownTopic) || !errors.Is(e, ErrUnknownPartition) ||
		e.Error() != "fetch t/7@0: unknown topic or partition" {
		t.Errorf("unknown partition: %v, code %d", e, e.Code)
	}
	// Transport failures are ErrBrokerUnreachable, but not the Client's
	// own Close; timeouts and Kafka codes are not.
	for _, tt := range []struct {
		err         error
		unreachable bool
	}{
		{&connError{addr: "a:1", err: errors.New("dial tcp: connection refused")}, true},
		{fmt.Errorf("metadata: %w", &brokerErrors{named: []error{&connError{addr: "a:1", err: errors.New("x")}}}), true},
		{&connError{addr: "a:1", err: ErrClosed}, false},
		{fmt.Errorf("%w: x", ErrTimeout), false},
		{kafkaError{wire.ErrNotLeaderOrFollower}, false},
	} {
		if got := errors.Is(newError("fetch", "t", 0, 0, tt.err), ErrBrokerUnreachable); got != tt.unreachable {
			t.Errorf("%v: ErrBrokerUnreachable %t, want %t", tt.err, got, tt.unreachable)
		}
	}
}

// TestRetriable lists what gets the one retry.
func TestRetriable(t *testing.T) {
	for _, code := range []int16{wire.ErrNotLeaderOrFollower, wire.ErrFencedLeaderEpoch,
		wire.ErrUnknownTopicID, wire.ErrInconsistentTopicID, wire.ErrLeaderNotAvailable, wire.ErrUnknownTopicOrPartition,
		wire.ErrReplicaNotAvailable, wire.ErrKafkaStorageError} {
		if !retriable(fmt.Errorf("x: %w", kafkaError{code})) {
			t.Errorf("%s not retriable", wire.ErrorName(code))
		}
	}
	// OFFSET_NOT_AVAILABLE and UNKNOWN_LEADER_EPOCH are transient: asked
	// again, paced, without a refresh (the leader is right); see
	// TestTransientErrors.
	for _, err := range []error{kafkaError{wire.ErrOffsetOutOfRange}, kafkaError{wire.ErrOffsetNotAvailable},
		kafkaError{wire.ErrUnknownLeaderEpoch}, ErrTimeout, ErrUnknownTopic, nil} {
		if retriable(err) {
			t.Errorf("%v retriable", err)
		}
		if c := codeOf(err); transient(err) != (c == wire.ErrOffsetNotAvailable || c == wire.ErrUnknownLeaderEpoch) {
			t.Errorf("transient(%v) = %t", err, transient(err))
		}
	}
	if !retriable(errors.Join(errors.New("a"), &connError{addr: "b", err: errors.New("c")})) {
		t.Error("connection error not retriable")
	}
}

// TestConfig covers defaults, validation and Key.
func TestConfig(t *testing.T) {
	c := Config{Brokers: []string{"a:1"}}.withDefaults()
	if c.ClientID != "kafkaedge" || c.ConnsPerBroker != 2 || c.DialTimeout != 10*time.Second ||
		c.RequestTimeout != 30*time.Second || c.MetadataRefresh != time.Minute || c.FetchMaxWait != 100*time.Millisecond ||
		c.FetchMinBytes != 0 || c.FetchMaxBytes != 10<<20 || c.FetchPartitionMaxBytes != 10<<20 || c.MaxBatchBytes != 64<<20 ||
		c.Logger == nil || c.IsolationLevel != 0 {
		t.Errorf("defaults: %+v", c)
	}
	// DefaultConfig is what the zero fields mean.
	d := DefaultConfig()
	d.Brokers, d.Logger = c.Brokers, c.Logger
	if !reflect.DeepEqual(d, c) {
		t.Errorf("DefaultConfig %+v, zero fields mean %+v", d, c)
	}
	if err := d.Validate(); err != nil {
		t.Errorf("DefaultConfig with a broker: %v", err)
	}
	if c.maxResponse() != 26<<20 {
		t.Errorf("maxResponse %d", c.maxResponse())
	}

	dir := t.TempDir()
	junk := filepath.Join(dir, "junk.pem")
	if err := os.WriteFile(junk, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	h := []string{"h:1"}
	for _, tt := range []struct {
		cfg  Config
		want string // the message after "kafkawire config: "
	}{
		{Config{}, "Brokers: no bootstrap broker"},
		{Config{Brokers: []string{"nohost"}}, `Brokers: bad address "nohost": want host:port`},
		{Config{Brokers: []string{":9092"}}, `Brokers: bad address ":9092": empty host`},
		{Config{Brokers: []string{"h:0"}}, `Brokers: bad address "h:0": port must be 1 to 65535`},
		{Config{Brokers: []string{"h:70000"}}, `Brokers: bad address "h:70000": port must be 1 to 65535`},
		{Config{Brokers: []string{"a:1", "bad host:1"}}, `Brokers: bad address "bad host:1": invalid host name "bad host"`},
		{Config{Brokers: []string{"a..b:1"}}, `Brokers: bad address "a..b:1": invalid host name "a..b"`},
		{Config{Brokers: []string{strings.Repeat("a", 254) + ":1"}}, `host name longer than 253 bytes`},
		{Config{Brokers: h, ConnsPerBroker: -1}, "ConnsPerBroker -1 out of range 1..64"},
		{Config{Brokers: h, ConnsPerBroker: 100}, "ConnsPerBroker 100 out of range 1..64"},
		{Config{Brokers: h, DialTimeout: -time.Second}, "DialTimeout -1s is negative"},
		{Config{Brokers: h, RequestTimeout: -time.Second}, "RequestTimeout -1s is negative"},
		{Config{Brokers: h, MetadataRefresh: -time.Second}, "MetadataRefresh -1s is negative"},
		{Config{Brokers: h, FetchMaxWait: -time.Second}, "FetchMaxWait -1s is negative"},
		{Config{Brokers: h, FetchMaxWait: time.Minute}, "FetchMaxWait 1m0s longer than RequestTimeout 30s"},
		{Config{Brokers: h, FetchMaxWait: 30 * 24 * time.Hour, RequestTimeout: 40 * 24 * time.Hour}, "FetchMaxWait 720h0m0s longer than 596h31m23.647s"},
		{Config{Brokers: h, FetchMinBytes: -1}, "FetchMinBytes -1 is negative"},
		{Config{Brokers: h, FetchMaxBytes: -1}, "FetchMaxBytes -1 out of range 1..1073741824"},
		{Config{Brokers: h, FetchMaxBytes: 1<<30 + 1}, "FetchMaxBytes 1073741825 out of range 1..1073741824"},
		{Config{Brokers: h, FetchPartitionMaxBytes: 1<<30 + 1}, "FetchPartitionMaxBytes 1073741825 out of range 1..1073741824"},
		{Config{Brokers: h, MaxBatchBytes: -1}, "MaxBatchBytes -1 out of range 1..1073741824"},
		{Config{Brokers: h, MaxBatchBytes: 1<<30 + 1}, "MaxBatchBytes 1073741825 out of range 1..1073741824"},
		{Config{Brokers: h, ClientID: strings.Repeat("c", 1<<15)}, "ClientID longer than 32767 bytes"},
		{Config{Brokers: h, IsolationLevel: 2}, "IsolationLevel 2: want 0 (read_uncommitted) or 1 (read_committed)"},
		{Config{Brokers: h, SASL: &SASLConfig{Username: ""}}, "SASL Username is empty"},
		{Config{Brokers: h, SASL: &SASLConfig{Mechanism: "OAUTHBEARER", Username: "u"}}, `SASL Mechanism "OAUTHBEARER": want PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512`},
		{Config{Brokers: h, TLS: &TLSConfig{KeyFile: "k"}}, "TLS CertFile and KeyFile must be set together"},
		{Config{Brokers: h, TLS: &TLSConfig{CAFile: filepath.Join(dir, "none.pem")}}, "TLS CAFile: open " + filepath.Join(dir, "none.pem") + ": no such file or directory"},
		{Config{Brokers: h, TLS: &TLSConfig{CAFile: junk}}, "TLS CAFile " + junk + ": no PEM certificate found"},
		{Config{Brokers: h, TLS: &TLSConfig{CertFile: junk, KeyFile: junk}}, "TLS CertFile/KeyFile: tls: failed to find any PEM data in certificate input"},
	} {
		err := tt.cfg.Validate()
		if !errors.Is(err, ErrConfig) || !strings.HasPrefix(err.Error(), "kafkawire config: ") || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Validate(%+v) = %v, want %q", tt.cfg, err, tt.want)
		}
		if _, nerr := New(tt.cfg); nerr == nil || nerr.Error() != err.Error() {
			t.Errorf("New(%+v) = %v, want Validate's %v", tt.cfg, nerr, err)
		}
	}
	for _, ok := range []Config{
		{Brokers: []string{"10.0.0.1:9092", "[::1]:9092", "kafka-1.example.com.:9093", "broker_2:1"}},
		{Brokers: h, FetchMaxWait: 30 * time.Second, FetchMinBytes: 1, IsolationLevel: 1, ConnsPerBroker: 64},
		{Brokers: h, SASL: &SASLConfig{Mechanism: "SCRAM-SHA-512", Username: "u"}, TLS: &TLSConfig{}},
	} {
		if err := ok.Validate(); err != nil {
			t.Errorf("Validate(%+v): %v", ok, err)
		}
	}

	base := Config{Brokers: []string{"b:2", "a:1"}, SASL: &SASLConfig{Username: "u", Password: "secret"}}
	same := Config{Brokers: []string{"a:1", "B:2", "a:1"}, ConnsPerBroker: 2, ClientID: "kafkaedge",
		SASL: &SASLConfig{Mechanism: "PLAIN", Username: "u", Password: "secret"}, Logger: quietLogger, Observer: newRecorder()}
	if base.Key() != same.Key() {
		t.Errorf("equal configs, different keys:\n%s\n%s", base.Key(), same.Key())
	}
	if strings.Contains(base.Key(), "secret") {
		t.Error("Key shows the password")
	}
	for _, other := range []Config{
		{Brokers: []string{"a:1"}, SASL: base.SASL},
		{Brokers: base.Brokers, SASL: &SASLConfig{Username: "u", Password: "other"}},
		{Brokers: base.Brokers, SASL: &SASLConfig{Username: "v", Password: "secret"}},
		{Brokers: base.Brokers},
		{Brokers: base.Brokers, SASL: base.SASL, TLS: &TLSConfig{}},
		{Brokers: base.Brokers, SASL: base.SASL, TLS: &TLSConfig{Verify: true}},
		{Brokers: base.Brokers, SASL: base.SASL, IsolationLevel: 1},
	} {
		if other.Key() == base.Key() {
			t.Errorf("different configs, same key %s", other.Key())
		}
	}
}

// TestKeyCoversConfig changes every field of Config, and of its TLS and
// SASL settings, in turn: each but Logger and Observer changes the key,
// so that a field added later cannot be left out of Key by mistake.
func TestKeyCoversConfig(t *testing.T) {
	base := Config{Brokers: []string{"a:1"}, TLS: &TLSConfig{}, SASL: &SASLConfig{Username: "u"}}
	notInKey := map[string]bool{"Logger": true, "Observer": true}
	changed := func(v reflect.Value) bool {
		switch v.Kind() {
		case reflect.Bool:
			v.SetBool(!v.Bool())
		case reflect.String:
			v.SetString(v.String() + "x")
		case reflect.Int, reflect.Int8, reflect.Int32, reflect.Int64:
			v.SetInt(v.Int() + 1)
		case reflect.Slice:
			v.Set(reflect.ValueOf([]string{"b:2"}))
		default:
			return false
		}
		return true
	}
	walk := func(name string, typ reflect.Type, edit func(c *Config) reflect.Value) {
		for i := range typ.NumField() {
			f := typ.Field(i)
			if notInKey[f.Name] || f.Type.Kind() == reflect.Pointer {
				continue
			}
			c := base
			tls, sasl := *base.TLS, *base.SASL
			c.TLS, c.SASL = &tls, &sasl
			if !changed(edit(&c).Field(i)) {
				t.Errorf("%s%s: a field of kind %s the test cannot change", name, f.Name, f.Type.Kind())
				continue
			}
			if c.Key() == base.Key() {
				t.Errorf("%s%s is not part of Key", name, f.Name)
			}
		}
	}
	walk("", reflect.TypeFor[Config](), func(c *Config) reflect.Value { return reflect.ValueOf(c).Elem() })
	walk("TLS.", reflect.TypeFor[TLSConfig](), func(c *Config) reflect.Value { return reflect.ValueOf(c.TLS).Elem() })
	walk("SASL.", reflect.TypeFor[SASLConfig](), func(c *Config) reflect.Value { return reflect.ValueOf(c.SASL).Elem() })
	// Zero and default values are one key.
	d := DefaultConfig()
	d.Brokers = base.Brokers
	if d.Key() != (Config{Brokers: base.Brokers}).Key() {
		t.Error("DefaultConfig and the zero Config have different keys")
	}
}

// TestBufferClasses: buffers come in power-of-two classes and go back to
// the pool only when the last reference is released.
func TestBufferClasses(t *testing.T) {
	for _, tt := range []struct{ n, class int }{
		{0, 0}, {1, 0}, {4096, 0}, {4097, 1}, {8192, 1}, {1 << 20, 8}, {128 << 20, 15}, {128<<20 + 1, -1},
	} {
		if got := classOf(tt.n); got != tt.class {
			t.Errorf("classOf(%d) = %d, want %d", tt.n, got, tt.class)
		}
	}
	rb := getRespBuf(5000)
	if len(rb.b) != 5000 || cap(rb.b) != 8192 {
		t.Fatalf("len %d cap %d", len(rb.b), cap(rb.b))
	}
	rb.retain()
	rb.release()
	if rb.refs.Load() != 1 {
		t.Fatalf("refs %d after retain+release", rb.refs.Load())
	}
	rb.release()
}

// TestBackoff: 100ms doubling up to 5s, less up to 20% jitter.
func TestBackoff(t *testing.T) {
	for n, want := range map[int]time.Duration{1: 100 * time.Millisecond, 2: 200 * time.Millisecond,
		3: 400 * time.Millisecond, 6: 3200 * time.Millisecond, 7: 5 * time.Second, 100: 5 * time.Second} {
		for range 20 {
			if got := backoff(n); got > want || got < want*4/5 {
				t.Fatalf("backoff(%d) = %v, want %v less at most 20%%", n, got, want)
			}
		}
	}
}
