package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// cluster is the Kafka the benchmark runs against: an in-process kfake
// cluster (default) or a real one given with -brokers.
type cluster struct {
	brokers []string
	fake    *kfake.Cluster // nil for a real cluster
	fetches atomic.Int64   // Fetch requests the fake brokers received
	admin   *kgo.Client
}

// newCluster starts kfake with three brokers, or connects to brokers.
func newCluster(brokers []string) (*cluster, error) {
	c := &cluster{brokers: brokers}
	if len(brokers) == 0 {
		fake, err := kfake.NewCluster(kfake.NumBrokers(3), kfake.ClusterID("kafkaedge-bench"))
		if err != nil {
			return nil, fmt.Errorf("start kfake: %w", err)
		}
		c.fake = fake
		c.brokers = fake.ListenAddrs()
		// Count every Fetch, then let the broker handle it as usual.
		fake.ControlKey(int16(kmsg.Fetch), func(kmsg.Request) (kmsg.Response, error, bool) {
			fake.KeepControl()
			c.fetches.Add(1)
			return nil, nil, false
		})
	}
	admin, err := kgo.NewClient(kgo.SeedBrokers(c.brokers...), kgo.ClientID("kafkaedge-bench-admin"))
	if err != nil {
		c.close()
		return nil, fmt.Errorf("kafka client: %w", err)
	}
	c.admin = admin
	return c, nil
}

// close stops the fake cluster and the admin client.
func (c *cluster) close() {
	if c.admin != nil {
		c.admin.Close()
	}
	if c.fake != nil {
		c.fake.Close()
	}
}

// brokerFetches returns the Fetch requests counted so far, -1 for a real
// cluster (whose request counts the suite cannot see).
func (c *cluster) brokerFetches() int64 {
	if c.fake == nil {
		return -1
	}
	return c.fetches.Load()
}

// createTopic creates topic with n partitions (replication factor: the
// broker default) through a CreateTopics request.
func (c *cluster) createTopic(ctx context.Context, topic string, n int32) error {
	req := kmsg.NewPtrCreateTopicsRequest()
	req.TimeoutMillis = 30_000
	t := kmsg.NewCreateTopicsRequestTopic()
	t.Topic = topic
	t.NumPartitions = n
	t.ReplicationFactor = -1
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
