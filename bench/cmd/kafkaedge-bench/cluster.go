package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkaedge/kafkaedge/internal/kraft"
)

// cluster is the Kafka the benchmark runs against: an in-process kfake
// cluster (default), a real Apache Kafka cluster the suite starts on
// loopback (-kafka real, internal/kraft), or one given with -brokers.
type cluster struct {
	brokers     []string
	desc        string         // what it is, for the report
	fake        *kfake.Cluster // kfake only
	fetches     atomic.Int64   // Fetch requests the fake brokers received
	listOffsets atomic.Int64   // ListOffsets requests the fake brokers received
	produces    atomic.Int64   // Produce requests the fake brokers received
	real        *kraft.Cluster // -kafka real only
	brokerPIDs  []int          // -kafka real: the brokers' JVMs, for their CPU
	jmx         *jmxCounter    // the brokers' JMX counters; nil: no broker fetch counts
	replication int16          // of the topics the suite creates; -1: the broker default
	admin       *kgo.Client
}

// benchJVM are the JVM options of the brokers of -kafka real unless
// -kafka-jvm says otherwise: what Kafka's own start scripts give a broker
// (kafka-server-start.sh's heap, kafka-run-class.sh's performance options),
// with the JIT's full tiers, instead of kraft.DefaultJVM's small test heap.
var benchJVM = []string{"-Xms1g", "-Xmx1g", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20",
	"-XX:InitiatingHeapOccupancyPercent=35", "-XX:+ExplicitGCInvokesConcurrent", "-XX:MaxInlineLevel=15"}

// realProps are the broker settings of -kafka real beyond kraft's: Kafka's
// default network and I/O thread counts (kraft's test clusters use 2 and 2).
var realProps = []string{"num.network.threads=3", "num.io.threads=8"}

// brokerProps returns the broker settings of -kafka real: realProps, and
// -group-heartbeat's if it is set (the minimum too, 5s by default, which
// Kafka holds the interval to).
func (cfg config) brokerProps() []string {
	props := slices.Clone(realProps)
	if ms := cfg.groupHeartbeat.Milliseconds(); ms > 0 {
		props = append(props, fmt.Sprintf("group.consumer.heartbeat.interval.ms=%d", ms),
			fmt.Sprintf("group.consumer.min.heartbeat.interval.ms=%d", ms))
	}
	return props
}

// newCluster starts kfake with three brokers, or a real cluster of three
// brokers (cfg.kafka "real"), or connects to cfg.brokers; logf reports
// progress.
func newCluster(ctx context.Context, cfg config, logf func(string, ...any)) (c *cluster, err error) {
	c = &cluster{brokers: cfg.brokers, replication: int16(cfg.replication)}
	defer func() {
		if err != nil {
			c.close()
		}
	}()
	switch {
	case cfg.kafka == kafkaReal:
		if m := kraft.Missing(); m != "" {
			return nil, fmt.Errorf("-kafka real needs Java (17+) and Maven: %s", m)
		}
		jvm := cfg.kafkaJVM
		if jvm == nil {
			jvm = benchJVM
		}
		logf("starting Apache Kafka %s: 3 brokers (KRaft, combined broker+controller) on loopback; JVM %s",
			cfg.kafkaVersion, strings.Join(jvm, " "))
		start := time.Now()
		rc, err := kraft.Start(ctx, kraft.Options{Version: cfg.kafkaVersion, Brokers: 3, JVM: jvm, JMX: true, Props: cfg.brokerProps()})
		if err != nil {
			return nil, fmt.Errorf("start Kafka %s: %w", cfg.kafkaVersion, err)
		}
		c.real = rc
		c.brokers = rc.Bootstrap()
		if c.replication < 0 {
			c.replication = 3
		}
		var addrs []string
		for _, n := range rc.Nodes {
			addrs = append(addrs, n.JMXAddr())
			if b, err := os.ReadFile(filepath.Join(n.Dir, "pid")); err == nil {
				if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
					c.brokerPIDs = append(c.brokerPIDs, pid)
				}
			}
		}
		if len(c.brokerPIDs) != len(rc.Nodes) {
			c.brokerPIDs = nil
		}
		c.desc = fmt.Sprintf("Apache Kafka %s, 3 brokers (KRaft) on loopback, replication factor %d, min.insync.replicas 1",
			cfg.kafkaVersion, c.replication)
		logf("Kafka %s started in %.1fs: %s", cfg.kafkaVersion, time.Since(start).Seconds(), strings.Join(c.brokers, ","))
		lib, err := kraft.Resolve(ctx, cfg.kafkaVersion)
		if err != nil {
			return nil, err
		}
		if c.jmx, err = startJMX(ctx, addrs, lib, logf); err != nil {
			logf("broker fetch counts unknown: %v", err)
		}
	case len(cfg.brokers) > 0:
		c.desc = strings.Join(cfg.brokers, ",")
		if len(cfg.jmx) > 0 {
			if c.jmx, err = startJMX(ctx, cfg.jmx, "", logf); err != nil {
				logf("broker fetch counts unknown: %v", err)
			}
		}
	default:
		opts := []kfake.Opt{kfake.NumBrokers(3), kfake.ClusterID("kafkaedge-bench")}
		if ms := cfg.groupHeartbeat.Milliseconds(); ms > 0 {
			opts = append(opts, kfake.BrokerConfigs(map[string]string{"group.consumer.heartbeat.interval.ms": strconv.FormatInt(ms, 10)}))
		}
		fake, err := kfake.NewCluster(opts...)
		if err != nil {
			return nil, fmt.Errorf("start kfake: %w", err)
		}
		c.fake = fake
		c.brokers = fake.ListenAddrs()
		c.desc = "in-process kfake, 3 brokers"
		// Count every Fetch and ListOffsets, then let the broker handle
		// it as usual.
		fake.ControlKey(int16(kmsg.Fetch), func(kmsg.Request) (kmsg.Response, error, bool) {
			fake.KeepControl()
			c.fetches.Add(1)
			return nil, nil, false
		})
		fake.ControlKey(int16(kmsg.ListOffsets), func(kmsg.Request) (kmsg.Response, error, bool) {
			fake.KeepControl()
			c.listOffsets.Add(1)
			return nil, nil, false
		})
		fake.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
			fake.KeepControl()
			c.produces.Add(1)
			return nil, nil, false
		})
	}
	admin, err := kgo.NewClient(kgo.SeedBrokers(c.brokers...), kgo.ClientID("kafkaedge-bench-admin"))
	if err != nil {
		return nil, fmt.Errorf("kafka client: %w", err)
	}
	c.admin = admin
	return c, nil
}

// close stops what newCluster started: the admin client, the JMX reader,
// and the fake or real brokers (whose data is deleted).
func (c *cluster) close() {
	if c.admin != nil {
		c.admin.Close()
	}
	if c.jmx != nil {
		c.jmx.close()
	}
	if c.fake != nil {
		c.fake.Close()
	}
	if c.real != nil {
		c.real.Close()
	}
}

// brokerCounts are request counters of the brokers, summed over them; -1
// where not counted.
type brokerCounts struct {
	fetches     int64 // consumer Fetch requests (not followers' replication fetches)
	listOffsets int64 // ListOffsets requests
	bytesOut    int64 // record bytes sent in consumers' fetch responses (JMX only)
	produces    int64 // Produce requests
}

// noCounts is a reading of nothing.
var noCounts = brokerCounts{-1, -1, -1, -1}

// sub returns c - o field by field, -1 where either is unknown.
func (c brokerCounts) sub(o brokerCounts) brokerCounts {
	d := func(a, b int64) int64 {
		if a < 0 || b < 0 {
			return -1
		}
		return a - b
	}
	return brokerCounts{d(c.fetches, o.fetches), d(c.listOffsets, o.listOffsets), d(c.bytesOut, o.bytesOut), d(c.produces, o.produces)}
}

// add returns c + o field by field, -1 where either is unknown.
func (c brokerCounts) add(o brokerCounts) brokerCounts {
	a := func(x, y int64) int64 {
		if x < 0 || y < 0 {
			return -1
		}
		return x + y
	}
	return brokerCounts{a(c.fetches, o.fetches), a(c.listOffsets, o.listOffsets), a(c.bytesOut, o.bytesOut), a(c.produces, o.produces)}
}

// The brokers' JMX counters (Kafka's request and topic metrics) the suite
// reads; each RequestMetrics name has a meter per request version.
const (
	listOffsetsMBeans = "kafka.network:type=RequestMetrics,name=RequestsPerSec,request=ListOffsets,*"
	producesMBeans    = "kafka.network:type=RequestMetrics,name=RequestsPerSec,request=Produce,*"
	bytesOutMBean     = "kafka.server:type=BrokerTopicMetrics,name=BytesOutPerSec" // all topics; followers' bytes are ReplicationBytesOutPerSec
)

// brokerCounts reads the brokers' counters: kfake's request counters, or
// the brokers' meters over JMX (with JmxTool, one JVM per read, the
// consumer fetches only).
func (c *cluster) brokerCounts() brokerCounts {
	if c.fake != nil {
		return brokerCounts{c.fetches.Load(), c.listOffsets.Load(), -1, c.produces.Load()}
	}
	if c.jmx == nil {
		return noCounts
	}
	ctx := context.Background()
	out := noCounts
	n, err := c.jmx.read(ctx, fetchConsumerMBeans, "Count")
	if err != nil {
		c.jmxFailed(err)
		return noCounts
	}
	out.fetches = n
	if c.jmx.cheap() {
		if n, err := c.jmx.read(ctx, listOffsetsMBeans, "Count"); err == nil {
			out.listOffsets = n
		}
		if n, err := c.jmx.read(ctx, bytesOutMBean, "Count"); err == nil {
			out.bytesOut = n
		}
		if n, err := c.jmx.read(ctx, producesMBeans, "Count"); err == nil {
			out.produces = n
		}
	}
	return out
}

// countsCheap reports whether brokerCounts costs little enough to be read
// around every fixed-rate slice.
func (c *cluster) countsCheap() bool { return c.fake != nil || (c.jmx != nil && c.jmx.cheap()) }

var jmxWarn sync.Once

// jmxFailed reports the first failed JMX read.
func (c *cluster) jmxFailed(err error) {
	jmxWarn.Do(func() { fmt.Fprintf(os.Stderr, "kafkaedge-bench: broker fetch count: %v\n", err) })
}

// brokerCPU returns the CPU time the real brokers' JVMs have used, false
// when it cannot be read (kfake's is the benchmark process's own).
func (c *cluster) brokerCPU() (time.Duration, bool) {
	if len(c.brokerPIDs) == 0 {
		return 0, false
	}
	var sum time.Duration
	for _, pid := range c.brokerPIDs {
		s, err := readProc(pid)
		if err != nil {
			return 0, false
		}
		sum += s.CPU
	}
	return sum, true
}

// groupInfo is how the cluster runs consumer groups.
type groupInfo struct {
	// kip848: KIP-848's consumer protocol is on (the ConsumerGroupHeartbeat
	// API and the feature group.version >= 1, what kafkaedge's members
	// check before they use it); else the classic one.
	kip848 bool
	// heartbeat is the brokers' group.consumer.heartbeat.interval.ms, the
	// interval of KIP-848 members; 0 if it could not be read.
	heartbeat time.Duration
}

// classicHeartbeat is the heartbeat interval of classic group members,
// chosen by the client: kafkaedge's (kafkawire.DefaultHeartbeatInterval)
// and kgo's default alike. The suite does not import kafkawire: it
// measures the node as a process.
const classicHeartbeat = 3 * time.Second

// interval returns the heartbeat interval of the members: the brokers'
// under KIP-848 (5s, Kafka's default, if unknown), classicHeartbeat under
// the classic protocol.
func (gi groupInfo) interval() time.Duration {
	switch {
	case !gi.kip848:
		return classicHeartbeat
	case gi.heartbeat > 0:
		return gi.heartbeat
	}
	return 5 * time.Second
}

// groupInfo reads how the cluster runs consumer groups: the features a
// broker advertises, and the heartbeat interval in its configuration.
func (c *cluster) groupInfo(ctx context.Context) (groupInfo, error) {
	var gi groupInfo
	av, err := kmsg.NewPtrApiVersionsRequest().RequestWith(ctx, c.admin)
	if err != nil {
		return gi, fmt.Errorf("api versions: %w", err)
	}
	api := slices.ContainsFunc(av.ApiKeys, func(k kmsg.ApiVersionsResponseApiKey) bool { return k.ApiKey == int16(kmsg.ConsumerGroupHeartbeat) })
	feature := slices.ContainsFunc(av.FinalizedFeatures, func(f kmsg.ApiVersionsResponseFinalizedFeature) bool {
		return f.Name == "group.version" && f.MaxVersionLevel >= 1
	})
	gi.kip848 = api && feature
	meta, err := kmsg.NewPtrMetadataRequest().RequestWith(ctx, c.admin)
	if err != nil || len(meta.Brokers) == 0 {
		return gi, nil // the interval stays unknown
	}
	req := kmsg.NewPtrDescribeConfigsRequest()
	r := kmsg.NewDescribeConfigsRequestResource()
	r.ResourceType = kmsg.ConfigResourceTypeBroker
	r.ResourceName = strconv.Itoa(int(meta.Brokers[0].NodeID))
	r.ConfigNames = []string{"group.consumer.heartbeat.interval.ms"}
	req.Resources = append(req.Resources, r)
	resp, err := req.RequestWith(ctx, c.admin)
	if err != nil {
		return gi, nil
	}
	for _, res := range resp.Resources {
		for _, cv := range res.Configs {
			if cv.Value == nil {
				continue
			}
			if ms, err := strconv.Atoi(*cv.Value); err == nil && ms > 0 {
				gi.heartbeat = time.Duration(ms) * time.Millisecond
			}
		}
	}
	return gi, nil
}

// createTopic creates topic with n partitions (replication factor
// c.replication, -1 for the broker default) through a CreateTopics request.
func (c *cluster) createTopic(ctx context.Context, topic string, n int32) error {
	req := kmsg.NewPtrCreateTopicsRequest()
	req.TimeoutMillis = 30_000
	t := kmsg.NewCreateTopicsRequestTopic()
	t.Topic = topic
	t.NumPartitions = n
	t.ReplicationFactor = c.replication
	req.Topics = append(req.Topics, t)
	resp, err := req.RequestWith(ctx, c.admin)
	if err != nil {
		return fmt.Errorf("create topic %s: %w", topic, err)
	}
	for _, rt := range resp.Topics {
		if err := kerr.ErrorForCode(rt.ErrorCode); err != nil {
			msg := ""
			if rt.ErrorMessage != nil {
				msg = ": " + *rt.ErrorMessage
			}
			return fmt.Errorf("create topic %s: %w%s", topic, err, msg)
		}
	}
	// Wait until every partition has a leader.
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := c.leaders(ctx, topic, n); err == nil {
			return nil
		} else if time.Now().After(deadline) {
			return fmt.Errorf("create topic %s: %w", topic, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// errNoLeader means a partition has no leader yet.
var errNoLeader = errors.New("partition has no leader")

// leaders returns the leader broker of each of the n partitions of topic.
func (c *cluster) leaders(ctx context.Context, topic string, n int32) ([]int32, error) {
	req := kmsg.NewPtrMetadataRequest()
	rt := kmsg.NewMetadataRequestTopic()
	rt.Topic = kmsg.StringPtr(topic)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, c.admin)
	if err != nil {
		return nil, fmt.Errorf("metadata %s: %w", topic, err)
	}
	out := make([]int32, n)
	for i := range out {
		out[i] = -1
	}
	for _, t := range resp.Topics {
		if err := kerr.ErrorForCode(t.ErrorCode); err != nil {
			return nil, fmt.Errorf("metadata %s: %w", topic, err)
		}
		for _, p := range t.Partitions {
			if p.Partition >= 0 && p.Partition < n {
				out[p.Partition] = p.Leader
			}
		}
	}
	for p, l := range out {
		if l < 0 {
			return nil, fmt.Errorf("metadata %s/%d: %w", topic, p, errNoLeader)
		}
	}
	return out, nil
}

// codecs maps the -codec names to kgo codecs.
var codecs = map[string]kgo.CompressionCodec{
	"none":   kgo.NoCompression(),
	"gzip":   kgo.GzipCompression(),
	"snappy": kgo.SnappyCompression(),
	"lz4":    kgo.Lz4Compression(),
	"zstd":   kgo.ZstdCompression(),
}

// producer writes benchmark records to one topic.
type producer struct {
	cl    *kgo.Client
	topic string
	value []byte
	seq   uint64
}

// newProducer creates a producer of valueSize-byte values compressed with
// codec; batch > 0 limits its batches to about that many records.
func (c *cluster) newProducer(topic, codec string, valueSize, batch int) (*producer, error) {
	cc, ok := codecs[codec]
	if !ok {
		return nil, fmt.Errorf("unknown codec %q", codec)
	}
	opts := []kgo.Opt{kgo.SeedBrokers(c.brokers...),
		kgo.ClientID("kafkaedge-bench-producer"),
		kgo.DefaultProduceTopic(topic),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerBatchCompression(cc),
		kgo.ProducerLinger(5 * time.Millisecond),
		kgo.MaxBufferedRecords(200_000),
		kgo.WithLogger(kgo.BasicLogger(io.Discard, kgo.LogLevelNone, nil))}
	if batch > 0 {
		// A record of a batch takes its value plus about 10 bytes.
		opts = append(opts, kgo.ProducerBatchMaxBytes(int32(batch*(valueSize+10)+61)))
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("producer for %s: %w", topic, err)
	}
	return &producer{cl: cl, topic: topic, value: make([]byte, valueSize)}, nil
}

// words make values that compress about as well as JSON events do.
var words = []string{"id", "user", "event", "click", "view", "order", "price", "amount", "\"", ":", ",",
	"{", "}", "session", "page", "/home", "/cart", "true", "false", "null", "2024-05-01T12:00:00Z"}

// fill writes the next value into p.value and returns a copy of it.
func (p *producer) fill() []byte {
	p.seq++
	x := p.seq*0x9E3779B97F4A7C15 + 1
	v := p.value[:0]
	for len(v) < cap(v) {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		w := words[x%uint64(len(words))]
		if x&3 == 0 {
			w = fmt.Sprint(x % 100000)
		}
		n := min(len(w), cap(v)-len(v))
		v = append(v, w[:n]...)
	}
	return append([]byte(nil), v...)
}

// produce writes n records to partition (without waiting); errors go to
// errp.
func (p *producer) produce(ctx context.Context, partition int32, n int, errp *firstError) {
	for range n {
		r := &kgo.Record{Partition: partition, Value: p.fill()}
		p.cl.Produce(ctx, r, func(_ *kgo.Record, err error) { errp.set(err) })
	}
}

// flush waits for every record produced so far.
func (p *producer) flush(ctx context.Context) error { return p.cl.Flush(ctx) }

// close closes the producer's client.
func (p *producer) close() { p.cl.Close() }

// firstError keeps the first non-nil error set.
type firstError struct {
	mu  sync.Mutex
	err error
}

func (f *firstError) set(err error) {
	if err == nil {
		return
	}
	f.mu.Lock()
	if f.err == nil {
		f.err = err
	}
	f.mu.Unlock()
}

func (f *firstError) get() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.err
}

// seedTopic creates topic and writes perPartition records to each of its
// partitions, in batches of at most batch records if batch > 0.
func (c *cluster) seedTopic(ctx context.Context, topic string, partitions int32, perPartition int, codec string, valueSize, batch int) error {
	if err := c.createTopic(ctx, topic, partitions); err != nil {
		return err
	}
	p, err := c.newProducer(topic, codec, valueSize, batch)
	if err != nil {
		return err
	}
	defer p.close()
	var errp firstError
	const chunk = 20_000
	for done := 0; done < perPartition; done += chunk {
		n := min(chunk, perPartition-done)
		for part := range partitions {
			p.produce(ctx, part, n, &errp)
		}
		if err := p.flush(ctx); err != nil {
			return fmt.Errorf("seed %s: %w", topic, err)
		}
		if err := errp.get(); err != nil {
			return fmt.Errorf("seed %s: %w", topic, err)
		}
	}
	return nil
}

// endOffsets returns the high watermark of each partition.
func (c *cluster) endOffsets(ctx context.Context, topic string, partitions int32) ([]int64, error) {
	req := kmsg.NewPtrListOffsetsRequest()
	req.ReplicaID = -1
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = topic
	for p := range partitions {
		rp := kmsg.NewListOffsetsRequestTopicPartition()
		rp.Partition = p
		rp.CurrentLeaderEpoch = -1
		rp.Timestamp = -1
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, c.admin)
	if err != nil {
		return nil, fmt.Errorf("list offsets %s: %w", topic, err)
	}
	out := make([]int64, partitions)
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
				return nil, fmt.Errorf("list offsets %s/%d: %w", topic, p.Partition, err)
			}
			if p.Partition >= 0 && p.Partition < partitions {
				out[p.Partition] = p.Offset
			}
		}
	}
	return out, nil
}
