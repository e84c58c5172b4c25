package kafkawire

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
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

// TestNextOffset reads the end of the complete batches of a fetch.
func TestScanBatches(t *testing.T) {
	batch := func(base int64, lastDelta int32, magic byte, size int) []byte {
		b := binary.BigEndian.AppendUint64(nil, uint64(base))
		b = binary.BigEndian.AppendUint32(b, uint32(size-12))
		b = append(b, make([]byte, size-12)...)
		b[16] = magic
		if magic == 2 && len(b) >= 27 {
			binary.BigEndian.PutUint32(b[23:], uint32(lastDelta))
		}
		return b
	}
	two := append(batch(10, 4, 2, 70), batch(15, 0, 2, 61)...)
	for _, tt := range []struct {
		name string
		in   []byte
		want int64
	}{
		{"empty", nil, -1},
		{"one v2", batch(10, 4, 2, 70), 15},
		{"two v2", two, 16},
		{"truncated second", two[:100], 15},
		{"legacy", append(batch(7, 0, 1, 40), batch(9, 0, 0, 40)...), 10},
		{"unknown magic", batch(3, 0, 9, 40), -1},
		{"lying length", binary.BigEndian.AppendUint32(make([]byte, 8), 1<<30), -1},
		{"negative length", append(binary.BigEndian.AppendUint32(make([]byte, 8), 0xffffffff), make([]byte, 20)...), -1},
		{"v2 too short", batch(1, 0, 2, 20), -1},
	} {
		if got, _ := scanBatches(tt.in, math.MaxInt64); got != tt.want {
			t.Errorf("%s: %d, want %d", tt.name, got, tt.want)
		}
	}
	// Up to an offset: the walk stops after the batch that reaches it.
	first := len(batch(10, 4, 2, 70))
	for _, tt := range []struct {
		upTo     int64
		next     int64
		consumed int
	}{{10, 15, first}, {14, 15, first}, {15, 16, len(two)}, {99, 16, len(two)}} {
		if next, n := scanBatches(two, tt.upTo); next != tt.next || n != tt.consumed {
			t.Errorf("up to %d: next %d after %d bytes, want %d after %d", tt.upTo, next, n, tt.next, tt.consumed)
		}
	}
}

// TestErrorText covers Error's text, Reason and unwrapping.
func TestErrorText(t *testing.T) {
	for _, tt := range []struct {
		err          *Error
		text, reason string
	}{
		{newError("fetch", "topic", 3, 120, kafkaError{wire.ErrOffsetOutOfRange}),
			"fetch topic/3@120: OFFSET_OUT_OF_RANGE", "OFFSET_OUT_OF_RANGE"},
		{newError("fetch", "t", 0, 0, fmt.Errorf("broker 2: %w", kafkaError{wire.ErrNotLeaderOrFollower})),
			"fetch t/0@0: NOT_LEADER_OR_FOLLOWER", "NOT_LEADER_OR_FOLLOWER"},
		{newError("list offsets", "t", 1, -1, ErrUnknownTopic),
			"list offsets t/1@-1: unknown topic or partition", "not found topic"},
		{newError("fetch", "t", 1, 5, kafkaError{wire.ErrUnknownTopicOrPartition}),
			"fetch t/1@5: unknown topic or partition", "not found topic"},
		{newError("list offsets", "topic", 3, -1, &connError{addr: "10.0.0.1:9092", err: errors.New("dial tcp: connection refused")}),
			"list offsets topic/3@-1: broker 10.0.0.1:9092: dial tcp: connection refused", "broker 10.0.0.1:9092: dial tcp: connection refused"},
		{newError("fetch", "t", 0, 0, fmt.Errorf("%w: x", ErrTimeout)), "fetch t/0@0: request timed out: x", "timeout"},
		{newError("fetch", "t", 0, 0, ErrClosed), "fetch t/0@0: kafkawire: client closed", "client closed"},
	} {
		if got := tt.err.Error(); got != tt.text {
			t.Errorf("Error() = %q, want %q", got, tt.text)
		}
		if got := tt.err.Reason(); got != tt.reason {
			t.Errorf("Reason() = %q, want %q", got, tt.reason)
		}
	}
	if e := newError("fetch", "t", 0, 0, ErrUnknownTopic); e.Code != wire.ErrUnknownTopicOrPartition || !errors.Is(e, ErrUnknownTopic) {
		t.Errorf("unknown topic: code %d, is %v", e.Code, errors.Is(e, ErrUnknownTopic))
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
	if c.maxResponse() != 26<<20 {
		t.Errorf("maxResponse %d", c.maxResponse())
	}
	for _, bad := range []Config{
		{},
		{Brokers: []string{"nohost"}},
		{Brokers: []string{":9092"}},
		{Brokers: []string{"h:0"}},
		{Brokers: []string{"h:70000"}},
		{Brokers: []string{"h:1"}, ConnsPerBroker: -1},
		{Brokers: []string{"h:1"}, ConnsPerBroker: 1000},
		{Brokers: []string{"h:1"}, RequestTimeout: -time.Second},
		{Brokers: []string{"h:1"}, FetchMaxBytes: -1},
		{Brokers: []string{"h:1"}, FetchMaxBytes: 1<<30 + 1},
		{Brokers: []string{"h:1"}, IsolationLevel: 2},
		{Brokers: []string{"h:1"}, SASL: &SASLConfig{Username: ""}},
		{Brokers: []string{"h:1"}, SASL: &SASLConfig{Mechanism: "OAUTHBEARER", Username: "u"}},
		{Brokers: []string{"h:1"}, TLS: &TLSConfig{KeyFile: "k"}},
	} {
		if _, err := New(bad); err == nil {
			t.Errorf("New(%+v) succeeded", bad)
		}
	}

	base := Config{Brokers: []string{"b:2", "a:1"}, SASL: &SASLConfig{Username: "u", Password: "secret"}}
	same := Config{Brokers: []string{"a:1", "b:2", "a:1"}, ConnsPerBroker: 2, ClientID: "kafkaedge",
		SASL: &SASLConfig{Mechanism: "PLAIN", Username: "u", Password: "secret"}}
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
