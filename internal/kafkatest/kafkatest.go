// Package kafkatest gives tests the Kafka clusters they run against: an
// in-process kfake cluster (fast; its Control hooks inject faults) or a real
// Apache Kafka cluster of each verified version (internal/kraft). A test
// written once against *Kafka runs on all of them with Each.
//
// Real clusters are shared by the tests of one test binary (one per
// version, three nodes, started on first use); a test that stops, kills or
// reconfigures brokers takes its own with Own. A package that uses real
// clusters calls Main from its TestMain so that they are stopped when its
// tests end (the JVMs also die with the test process if it is killed).
//
// The environment variable KAFKAEDGE_KAFKA_VERSIONS chooses the real
// versions ("4.4.0,3.9.2" by default; "none" runs kfake only). Without java
// or mvn on PATH the real cases are skipped with the reason.
package kafkatest

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkaedge/kafkaedge/internal/kraft"
)

// Kafka is one cluster under test.
type Kafka struct {
	Name    string   // "kfake" or "kafka-<version>"
	Brokers []string // PLAINTEXT bootstrap addresses
	Fake    *kfake.Cluster
	Real    *kraft.Cluster
}

// IsReal reports whether this is a real Apache Kafka cluster.
func (k *Kafka) IsReal() bool { return k.Real != nil }

// Fake starts a kfake cluster of n brokers, closed at the end of the test.
func Fake(t testing.TB, n int, opts ...kfake.Opt) *Kafka {
	t.Helper()
	c, err := kfake.NewCluster(append([]kfake.Opt{kfake.NumBrokers(n)}, opts...)...)
	if err != nil {
		t.Fatalf("kfake: %v", err)
	}
	t.Cleanup(c.Close)
	return &Kafka{Name: "kfake", Brokers: c.ListenAddrs(), Fake: c}
}

// Versions are the real Kafka versions the tests run against.
func Versions() []string {
	env := strings.TrimSpace(os.Getenv("KAFKAEDGE_KAFKA_VERSIONS"))
	switch env {
	case "":
		return kraft.Versions
	case "none":
		return nil
	}
	return strings.Split(env, ",")
}

// SkipReason is why real Kafka cannot run here ("" if it can).
func SkipReason() string {
	if m := kraft.Missing(); m != "" {
		return "real Kafka skipped: " + m + " (install a JDK 17+ and Maven)"
	}
	return ""
}

var shared struct {
	mu       sync.Mutex
	clusters map[string]*sharedCluster
	starting sync.WaitGroup
}

type sharedCluster struct {
	once sync.Once
	c    *kraft.Cluster
	err  error
}

// start starts the shared cluster of version once and returns it.
func start(version string) (*kraft.Cluster, error) {
	shared.mu.Lock()
	if shared.clusters == nil {
		shared.clusters = map[string]*sharedCluster{}
	}
	sc := shared.clusters[version]
	if sc == nil {
		sc = &sharedCluster{}
		shared.clusters[version] = sc
	}
	shared.mu.Unlock()
	sc.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		sc.c, sc.err = kraft.Start(ctx, kraft.Options{Version: version, Brokers: 3})
	})
	return sc.c, sc.err
}

// Prestart starts the shared cluster of every version in the background,
// so that the JVMs come up while a test binary does other work (building a
// binary, kfake cases) rather than when the first test needs them. Call it
// from TestMain before Main; it does nothing when real Kafka cannot run.
func Prestart() {
	if SkipReason() != "" {
		return
	}
	for _, v := range Versions() {
		shared.starting.Add(1)
		go func() {
			defer shared.starting.Done()
			_, _ = start(v) // a failure is reported by the tests that need it
		}()
	}
}

// Real returns the shared 3-node cluster of version, starting it on first
// use. It skips the test when real Kafka cannot run on this machine.
func Real(t testing.TB, version string) *Kafka {
	t.Helper()
	if r := SkipReason(); r != "" {
		t.Skip(r)
	}
	c, err := start(version)
	if err != nil {
		t.Fatalf("start Kafka %s: %v", version, err)
	}
	return &Kafka{Name: "kafka-" + version, Brokers: c.Bootstrap(), Real: c}
}

// Own starts a real cluster of its own for a test that stops, kills or
// moves brokers; it is closed at the end of the test.
func Own(t testing.TB, version string, brokers int, props ...string) *Kafka {
	t.Helper()
	if r := SkipReason(); r != "" {
		t.Skip(r)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	c, err := kraft.Start(ctx, kraft.Options{Version: version, Brokers: brokers, Props: props})
	if err != nil {
		t.Fatalf("start Kafka %s: %v", version, err)
	}
	t.Cleanup(c.Close)
	return &Kafka{Name: "kafka-" + version, Brokers: c.Bootstrap(), Real: c}
}

// Main runs the tests and then stops the shared clusters. Use it as
// `func TestMain(m *testing.M) { os.Exit(kafkatest.Main(m)) }`.
func Main(m *testing.M) int {
	code := m.Run()
	shared.starting.Wait()
	shared.mu.Lock()
	defer shared.mu.Unlock()
	for _, sc := range shared.clusters {
		if sc.c != nil {
			sc.c.Close()
		}
	}
	return code
}

// Each runs fn as a subtest on a new 3-broker kfake cluster and on the
// shared real cluster of each version. The subtests run one after another.
func Each(t *testing.T, fn func(t *testing.T, k *Kafka)) {
	t.Helper()
	t.Run("kfake", func(t *testing.T) { fn(t, Fake(t, 3)) })
	EachReal(t, fn)
}

// EachReal runs fn as a subtest on the shared real cluster of each version.
func EachReal(t *testing.T, fn func(t *testing.T, k *Kafka)) {
	t.Helper()
	for _, v := range Versions() {
		t.Run("kafka-"+v, func(t *testing.T) { fn(t, Real(t, v)) })
	}
}

var topicSeq atomic.Int64

// Topic creates a topic with the given partitions and configs
// ("key=value"), waits until every broker knows a leader for each
// partition, and returns its name. On kfake the name is base; on a shared
// real cluster it is made unique to the test. Its replication factor is 1
// (the leaders are spread over the brokers all the same); ReplicatedTopic
// is for tests that move leaders.
func (k *Kafka) Topic(t testing.TB, base string, partitions int32, configs ...string) string {
	t.Helper()
	return k.createTopic(t, 1, base, partitions, configs)
}

// ReplicatedTopic is Topic with 3 replicas on a real cluster (with fewer
// brokers, one per broker), so that its leaders can move.
func (k *Kafka) ReplicatedTopic(t testing.TB, base string, partitions int32, configs ...string) string {
	t.Helper()
	return k.createTopic(t, int16(min(3, len(k.Brokers))), base, partitions, configs)
}

func (k *Kafka) createTopic(t testing.TB, rf int16, base string, partitions int32, configs []string) string {
	t.Helper()
	name := base
	if k.IsReal() {
		h := fnv.New32a()
		h.Write([]byte(t.Name()))
		name = fmt.Sprintf("%s-%08x-%d", base, h.Sum32(), topicSeq.Add(1))
	} else {
		rf = -1 // kfake's default
	}
	cfg := map[string]*string{}
	for _, kv := range configs {
		key, v, _ := strings.Cut(kv, "=")
		cfg[key] = &v
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := k.Admin(t).CreateTopic(ctx, partitions, rf, cfg, name)
	if err == nil {
		err = resp.Err
	}
	if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		t.Fatalf("create topic %s on %s: %v", name, k.Name, err)
	}
	k.WaitLeaders(t, name, partitions)
	return name
}

// WaitLeaders waits until every broker reports a leader for every
// partition of topic.
func (k *Kafka) WaitLeaders(t testing.TB, topic string, partitions int32) {
	t.Helper()
	k.WaitBrokers(t, topic, func(tm *kmsg.MetadataResponseTopic) bool {
		if tm == nil || len(tm.Partitions) != int(partitions) {
			return false
		}
		for _, p := range tm.Partitions {
			if p.Leader < 0 || p.ErrorCode != 0 {
				return false
			}
		}
		return true
	})
}

// WaitBrokers polls every broker but those in down, each asked for its own
// metadata of topic, until ok holds on all of them (at most 30 s). The
// brokers of a real cluster learn of a change at their own pace: a
// producer or client that asks one that has not learnt of a new topic yet
// is told it does not exist. ok gets the topic's entry, nil when the
// broker does not know the topic.
func (k *Kafka) WaitBrokers(t testing.TB, topic string, ok func(*kmsg.MetadataResponseTopic) bool, down ...int32) {
	t.Helper()
	cl := k.Client(t)
	// A request of its own for every call: kgo sets a request's version
	// as it sends it, and a call whose context ended may still be sending
	// its request while the next one starts.
	newReq := func() *kmsg.MetadataRequest {
		req := kmsg.NewPtrMetadataRequest()
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = kmsg.StringPtr(topic)
		req.Topics = append(req.Topics, rt)
		return req
	}
	check := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		// The brokers, from the first seed that answers (asked directly:
		// kgo.Client.Request would answer Metadata from its cache).
		var all *kmsg.MetadataResponse
		var err error
		for _, seed := range cl.SeedBrokers() {
			if all, err = newReq().RequestWith(ctx, seed); err == nil {
				break
			}
		}
		if err != nil {
			return err
		}
		for _, b := range all.Brokers {
			if slices.Contains(down, b.NodeID) {
				continue
			}
			resp, err := newReq().RequestWith(ctx, cl.Broker(int(b.NodeID)))
			if err != nil {
				return fmt.Errorf("broker %d: %w", b.NodeID, err)
			}
			var tm *kmsg.MetadataResponseTopic
			for i := range resp.Topics {
				if tr := &resp.Topics[i]; tr.Topic != nil && *tr.Topic == topic && tr.ErrorCode == 0 {
					tm = tr
				}
			}
			if !ok(tm) {
				return fmt.Errorf("broker %d: not yet", b.NodeID)
			}
		}
		return nil
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("metadata of %s on %s: %v", topic, k.Name, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Client returns a kgo client of the cluster (with extra options), closed
// at the end of the test.
func (k *Kafka) Client(t testing.TB, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(k.Brokers...)}, opts...)...)
	if err != nil {
		t.Fatalf("kgo: %v", err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// Admin returns an admin client of the cluster, closed at the end of the
// test.
func (k *Kafka) Admin(t testing.TB) *kadm.Client {
	t.Helper()
	return kadm.NewClient(k.Client(t))
}

// Produce writes recs with kgo (an independent producer) and waits for
// every acknowledgement. Records without a partition go to partition 0;
// records produced together to one partition form one batch.
func (k *Kafka) Produce(t testing.TB, opts []kgo.Opt, recs ...*kgo.Record) {
	t.Helper()
	opts = append([]kgo.Opt{kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ManualFlushing(),
		kgo.MaxBufferedRecords(len(recs) + 1)}, opts...)
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(k.Brokers...)}, opts...)...)
	if err != nil {
		t.Fatalf("kgo: %v", err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	for _, r := range recs {
		wg.Add(1)
		cl.Produce(ctx, r, func(_ *kgo.Record, err error) {
			if err != nil {
				mu.Lock()
				if first == nil {
					first = err
				}
				mu.Unlock()
			}
			wg.Done()
		})
	}
	if err := cl.Flush(ctx); err != nil {
		t.Fatalf("flush to %s: %v", k.Name, err)
	}
	wg.Wait()
	if first != nil {
		t.Fatalf("produce to %s: %v", k.Name, first)
	}
}
