package main

import (
	"context"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// direct is the ceiling's request path: franz-go sending the same Kafka
// requests the WebSocket servers send, straight from the benchmark process,
// with kgo's record decoding.
type direct struct {
	cl      *kgo.Client
	topic   string
	topicID [16]byte
	leaders []int32
	decomp  kgo.Decompressor
}

// newDirect creates a kgo client and learns the leaders of topic's n partitions.
func (c *cluster) newDirect(ctx context.Context, topic string, n int32) (*direct, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.brokers...), kgo.ClientID("kafkaedge-bench-ceiling"))
	if err != nil {
		return nil, fmt.Errorf("ceiling client: %w", err)
	}
	d := &direct{cl: cl, topic: topic, decomp: kgo.DefaultDecompressor()}
	req := kmsg.NewPtrMetadataRequest()
	rt := kmsg.NewMetadataRequestTopic()
	rt.Topic = kmsg.StringPtr(topic)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		cl.Close()
		return nil, fmt.Errorf("ceiling metadata %s: %w", topic, err)
	}
	d.leaders = make([]int32, n)
	for _, t := range resp.Topics {
		if err := kerr.ErrorForCode(t.ErrorCode); err != nil {
			cl.Close()
			return nil, fmt.Errorf("ceiling metadata %s: %w", topic, err)
		}
		d.topicID = t.TopicID
		for _, p := range t.Partitions {
			if p.Partition >= 0 && p.Partition < n {
				d.leaders[p.Partition] = p.Leader
			}
		}
	}
	return d, nil
}

func (d *direct) close() { d.cl.Close() }

// fetch sends one Fetch as APISIX does (max wait 100ms, min bytes 0, 10 MiB)
// and decodes it; it returns the messages from offset on, their value
// bytes and the last offset.
func (d *direct) fetch(ctx context.Context, partition int32, offset int64) (msgs, bytes int, last int64, err error) {
	req := kmsg.NewPtrFetchRequest()
	req.ReplicaID = -1
	req.MaxWaitMillis = 100
	req.MaxBytes = 10 << 20
	req.SessionEpoch = -1
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic = d.topic
	rt.TopicID = d.topicID
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.Partition = partition
	rp.CurrentLeaderEpoch = -1
	rp.FetchOffset = offset
	rp.LogStartOffset = -1
	rp.PartitionMaxBytes = 10 << 20
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	kresp, err := d.cl.Broker(int(d.leaders[partition])).Request(ctx, req)
	if err != nil {
		return 0, 0, -1, fmt.Errorf("fetch %s/%d@%d: %w", d.topic, partition, offset, err)
	}
	resp := kresp.(*kmsg.FetchResponse)
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		return 0, 0, -1, fmt.Errorf("fetch %s/%d@%d: %w", d.topic, partition, offset, err)
	}
	last = -1
	for i := range resp.Topics {
		for j := range resp.Topics[i].Partitions {
			p := &resp.Topics[i].Partitions[j]
			fp, _ := kgo.ProcessFetchPartition(kgo.ProcessFetchPartitionOpts{
				Offset: offset, Topic: d.topic, Partition: partition,
			}, p, d.decomp, nil)
			if fp.Err != nil {
				return 0, 0, -1, fmt.Errorf("fetch %s/%d@%d: %w", d.topic, partition, offset, fp.Err)
			}
			for _, r := range fp.Records {
				msgs++
				bytes += len(r.Value)
				last = r.Offset
			}
		}
	}
	return msgs, bytes, last, nil
}

// listOffset sends one ListOffsets for partition at timestamp.
func (d *direct) listOffset(ctx context.Context, partition int32, timestamp int64) (int64, error) {
	req := kmsg.NewPtrListOffsetsRequest()
	req.ReplicaID = -1
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = d.topic
	rp := kmsg.NewListOffsetsRequestTopicPartition()
	rp.Partition = partition
	rp.CurrentLeaderEpoch = -1
	rp.Timestamp = timestamp
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	kresp, err := d.cl.Broker(int(d.leaders[partition])).Request(ctx, req)
	if err != nil {
		return 0, fmt.Errorf("list offsets %s/%d: %w", d.topic, partition, err)
	}
	topics := kresp.(*kmsg.ListOffsetsResponse).Topics
	if len(topics) != 1 || len(topics[0].Partitions) != 1 {
		return 0, fmt.Errorf("list offsets %s/%d: %d topics in the response, want one partition", d.topic, partition, len(topics))
	}
	p := topics[0].Partitions[0]
	if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
		return 0, fmt.Errorf("list offsets %s/%d: %w", d.topic, partition, err)
	}
	return p.Offset, nil
}

// e2eHook records the end-to-end time of every Fetch a kgo consumer sends.
type e2eHook struct{ rec *recorderSync }

// OnBrokerE2E implements kgo.HookBrokerE2E.
func (h e2eHook) OnBrokerE2E(_ kgo.BrokerMetadata, key int16, e2e kgo.BrokerE2E) {
	if key == int16(kmsg.Fetch) && e2e.Err() == nil {
		h.rec.add(e2e.DurationE2E())
	}
}

// recorderSync counts requests and records their latencies, safe for concurrent use
// (kgo calls hooks from its broker goroutines).
type recorderSync struct {
	l   *load
	mu  chan struct{}
	rec *recorder
}

func newRecorderSync(l *load) *recorderSync {
	return &recorderSync{l: l, mu: make(chan struct{}, 1), rec: &recorder{l: l}}
}

func (r *recorderSync) add(d time.Duration) {
	r.l.reqs.Add(1)
	r.mu <- struct{}{}
	r.rec.samples = append(r.rec.samples, d)
	if len(r.rec.samples) >= 4096 {
		r.rec.flush()
	}
	<-r.mu
}

func (r *recorderSync) flush() {
	r.mu <- struct{}{}
	r.rec.flush()
	<-r.mu
}
