package kafkawire

import (
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// recorder is an Observer that keeps what it is told.
type recorder struct {
	mu        sync.Mutex
	requests  map[string]int // "api outcome"
	brokers   map[string]bool
	conns     map[ConnEvent]int
	refreshes int
	refreshOK int
	codecs    map[string]int
	in, out   int
	inUse     map[string]int // BrokerUsed less BrokerUnused, by address
	unused    map[string]int // BrokerUnused, by address
	outside   []string       // events naming an address not in use
	batches   map[string]int // records of settled produce batches, by outcome
}

func newRecorder() *recorder {
	return &recorder{requests: map[string]int{}, brokers: map[string]bool{}, conns: map[ConnEvent]int{}, codecs: map[string]int{},
		inUse: map[string]int{}, unused: map[string]int{}, batches: map[string]int{}}
}

// named checks that an event names an address in use; r.mu is held.
func (r *recorder) named(broker, event string) {
	if r.inUse[broker] <= 0 {
		r.outside = append(r.outside, event+" "+broker)
	}
}

func (r *recorder) KafkaRequest(api, broker, outcome string, d time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.requests[api+" "+outcome]++
	r.brokers[broker] = true
	r.named(broker, api)
}

func (r *recorder) BrokerConn(broker string, ev ConnEvent) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.conns[ev]++
	r.named(broker, ev.String())
}

func (r *recorder) BrokerUsed(broker string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.inUse[broker]++
}

func (r *recorder) BrokerUnused(broker string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.named(broker, "BrokerUnused")
	r.inUse[broker]--
	r.unused[broker]++
}

func (r *recorder) MetadataRefresh(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.refreshes++
	if err == nil {
		r.refreshOK++
	}
}

func (r *recorder) ProduceBatch(records, bytes int, _ time.Duration, retries int, outcome string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.batches[outcome] += records
}

func (r *recorder) Decompressed(codec string, in, out int, failed bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !failed {
		r.codecs[codec]++
		r.in += in
		r.out += out
	}
}

// count is the number of requests of api, whatever their outcome.
func (r *recorder) count(api string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for k, v := range r.requests {
		if strings.HasPrefix(k, api+" ") {
			n += v
		}
	}
	return n
}

// connsUp is the number of connections that came up.
func (r *recorder) connsUp() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.conns[ConnUp]
}

// decompressed is the number of batches of codec decompressed.
func (r *recorder) decompressed(codec string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.codecs[codec]
}

func TestObserver(t *testing.T) {
	tc := newCluster(t, kfake.SeedTopics(1, "obs"))
	recs := makeRecords("obs", 0, 20, time.Now(), strings.Repeat("compressible ", 20))
	tc.k.Produce(t, []kgo.Opt{kgo.ProducerBatchCompression(kgo.ZstdCompression())}, recs...)
	rec := newRecorder()
	c := newClient(t, Config{Brokers: tc.addrs, Observer: rec})

	res, err := c.Fetch(testCtx(t), "obs", 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	res.Release()
	if _, err := c.Fetch(testCtx(t), "obs", 0, 1000); err == nil {
		t.Fatal("fetch past the end succeeded")
	}
	if err := c.Ready(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	c.Close()

	rec.mu.Lock()
	defer rec.mu.Unlock()
	for _, want := range []string{"ApiVersions NONE", "Metadata NONE", "Fetch NONE", "Fetch OFFSET_OUT_OF_RANGE"} {
		if rec.requests[want] == 0 {
			t.Errorf("no %q request reported: %v", want, rec.requests)
		}
	}
	for b := range rec.brokers {
		found := false
		for _, a := range tc.addrs {
			found = found || a == b
		}
		if !found {
			t.Errorf("broker label %q is not a cluster address %v", b, tc.addrs)
		}
	}
	if rec.conns[ConnDialing] == 0 || rec.conns[ConnDialing] != rec.conns[ConnUp]+rec.conns[ConnDialFailed] {
		t.Errorf("dial events do not balance: %v", rec.conns)
	}
	if rec.conns[ConnUp] != rec.conns[ConnClosed] {
		t.Errorf("after Close, %d connections up but %d closed", rec.conns[ConnUp], rec.conns[ConnClosed])
	}
	if rec.refreshes == 0 || rec.refreshOK != rec.refreshes {
		t.Errorf("metadata refreshes %d, ok %d", rec.refreshes, rec.refreshOK)
	}
	if rec.codecs["zstd"] == 0 || rec.in <= 0 || rec.out <= rec.in {
		t.Errorf("decompression: %v in %d out %d", rec.codecs, rec.in, rec.out)
	}
}

// TestObserverBrokerUse: every event naming a broker address comes between
// BrokerUsed and BrokerUnused of it, and the Client reports a broker
// unused when the metadata drops it and, for all others, on Close, before
// Close returns.
func TestObserverBrokerUse(t *testing.T) {
	tc := newCluster(t, kfake.SeedTopics(3, "use"))
	for p := range int32(3) {
		if err := tc.MoveTopicPartition("use", p, p); err != nil { // one on each broker
			t.Fatal(err)
		}
	}
	rec := newRecorder()
	c := newClient(t, Config{Brokers: tc.addrs[:1], Observer: rec})
	ctx := testCtx(t)
	for p := range int32(3) {
		if _, err := c.ListOffset(ctx, "use", p, -1); err != nil {
			t.Fatal(err)
		}
	}
	gone := c.meta.Load().brokers[2]
	if err := tc.RemoveNode(2); err != nil {
		t.Fatal(err)
	}
	if err := c.Ready(ctx); err != nil {
		t.Fatal(err)
	}
	// BrokerUnused comes once no report naming the broker is in progress
	// (a dial or a round trip on its connections may still be ending when
	// Ready returns): wait for it.
	deadline := time.Now().Add(10 * time.Second)
	for {
		rec.mu.Lock()
		unused, inUse := rec.unused[gone], rec.inUse[gone]
		rec.mu.Unlock()
		if unused == 1 && inUse == 0 {
			break
		}
		if unused > 1 || time.Now().After(deadline) {
			t.Fatalf("broker %s left the metadata: used %d, unused %d times", gone, inUse+unused, unused)
		}
		time.Sleep(5 * time.Millisecond)
	}

	c.Close()
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.unused) < 2 {
		t.Errorf("brokers reported unused: %v, want every broker used", rec.unused)
	}
	for addr, n := range rec.inUse {
		if n != 0 {
			t.Errorf("after Close, %s used %d more times than unused", addr, n)
		}
	}
	if len(rec.outside) > 0 {
		t.Errorf("events naming brokers not in use: %v", rec.outside)
	}
	if rec.conns[ConnUp] != rec.conns[ConnClosed] || rec.conns[ConnDialing] != rec.conns[ConnUp]+rec.conns[ConnDialFailed] {
		t.Errorf("connection events do not balance: %v", rec.conns)
	}
}

func TestRequestOutcome(t *testing.T) {
	for _, c := range []struct {
		err  error
		want string
	}{
		{&connError{addr: "b:1", err: errors.New("reset")}, OutcomeNetwork},
		{&connError{addr: "b:1", err: ErrClosed}, OutcomeClosed},
		{errors.Join(ErrTimeout), OutcomeTimeout},
	} {
		if got := requestOutcome(nil, c.err); got != c.want {
			t.Errorf("requestOutcome(%v) = %q, want %q", c.err, got, c.want)
		}
	}
}

func TestObserverNotInKey(t *testing.T) {
	cfg := Config{Brokers: []string{"b:9092"}}
	with := cfg
	with.Observer = newRecorder()
	if cfg.Key() != with.Key() {
		t.Fatalf("the Observer changes the key:\n%s\n%s", cfg.Key(), with.Key())
	}
}
