package conventional

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kafkaedge/kafkaedge/proto/pubsub"
)

// This file serves CmdKafkaProduce the way a team would: every connection
// hands its records to one franz-go producer per route and acks setting,
// shared by all connections (kgo batches them per partition), and waits
// for them with ProduceSync before it reads its next request.

// maxProduceRecords is the most records one CmdKafkaProduce may carry, as
// with kafkaedge.
const maxProduceRecords = 1000

// Producer settings, kafkaedge's defaults (-produce-linger,
// -produce-codec), so that the benchmark compares the servers rather than
// their settings.
const (
	produceLinger = 5 * time.Millisecond
)

// produceCodec is the compression of produced batches (kafkaedge's default).
var produceCodec = kgo.Lz4Compression()

// producerOpts are the options of a route's producers, added to those of
// its metadata client; acks all is idempotent (kgo's default).
func producerOpts(acks pubsub.Acks) []kgo.Opt {
	opts := []kgo.Opt{
		kgo.ProducerLinger(produceLinger),
		kgo.ProducerBatchCompression(produceCodec),
		kgo.RecordPartitioner(edgePartitioner{kgo.StickyKeyPartitioner(nil)}),
	}
	switch acks {
	case pubsub.Acks_ACKS_LEADER:
		opts = append(opts, kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite())
	case pubsub.Acks_ACKS_NONE:
		opts = append(opts, kgo.RequiredAcks(kgo.NoAck()), kgo.DisableIdempotentWrite())
	}
	return opts
}

// manualKey marks, in a record's Context, a record whose partition the
// client named.
type manualKey struct{}

// edgePartitioner keeps the partition a client named and otherwise
// partitions as the Java client does (murmur2 on the key, sticky without).
type edgePartitioner struct{ inner kgo.Partitioner }

func (p edgePartitioner) ForTopic(topic string) kgo.TopicPartitioner {
	return edgeTopicPartitioner{p.inner.ForTopic(topic)}
}

type edgeTopicPartitioner struct{ inner kgo.TopicPartitioner }

func (p edgeTopicPartitioner) RequiresConsistency(r *kgo.Record) bool {
	return manual(r) || p.inner.RequiresConsistency(r)
}

func (p edgeTopicPartitioner) Partition(r *kgo.Record, n int) int {
	if manual(r) {
		return int(r.Partition)
	}
	return p.inner.Partition(r, n)
}

func (p edgeTopicPartitioner) OnNewBatch() {
	if nb, ok := p.inner.(kgo.TopicPartitionerOnNewBatch); ok {
		nb.OnNewBatch()
	}
}

func manual(r *kgo.Record) bool { return r.Context != nil && r.Context.Value(manualKey{}) != nil }

// produce writes a request's records and returns one result per record,
// or the error of the request as a whole.
func (b *backend) produce(ctx context.Context, cmd *pubsub.CmdKafkaProduce) ([]*pubsub.KafkaProduced, error) {
	switch n := len(cmd.GetRecords()); {
	case cmd.GetTopic() == "":
		return nil, errors.New("no topic")
	case cmd.Partition != nil && cmd.GetPartition() < 0:
		return nil, errors.New("negative partition")
	case n == 0:
		return nil, errors.New("no records")
	case n > maxProduceRecords:
		return nil, fmt.Errorf("%d records in one request, more than the limit of %d", n, maxProduceRecords)
	case cmd.GetAcks() < 0 || cmd.GetAcks() > pubsub.Acks_ACKS_NONE:
		return nil, errors.New("unknown acks " + strconv.Itoa(int(cmd.GetAcks())))
	}
	ctx, cancel := context.WithTimeout(ctx, b.timeout)
	defer cancel()
	// Known topic and partition first: kgo would wait for a topic that
	// does not exist, and refuse a partition out of range less clearly.
	if cmd.Partition != nil {
		if _, err := b.lookup(ctx, cmd.GetTopic(), cmd.GetPartition(), false); err != nil {
			return nil, err
		}
	} else if _, err := b.lookup(ctx, cmd.GetTopic(), 0, false); err != nil {
		return nil, err
	}
	rctx := ctx
	if cmd.Partition != nil {
		rctx = context.WithValue(ctx, manualKey{}, true)
	}
	now := time.Now()
	recs := make([]*kgo.Record, len(cmd.GetRecords()))
	for i, r := range cmd.GetRecords() {
		kr := &kgo.Record{Topic: cmd.GetTopic(), Key: r.Key, Value: r.GetValue(), Partition: cmd.GetPartition(), Context: rctx, Timestamp: now}
		if kr.Value == nil {
			kr.Value = []byte{}
		}
		if ts := r.GetTimestamp(); ts != 0 {
			kr.Timestamp = time.UnixMilli(ts)
		}
		for _, h := range r.GetHeaders() {
			kr.Headers = append(kr.Headers, kgo.RecordHeader{Key: h.GetKey(), Value: h.GetValue()})
		}
		recs[i] = kr
	}
	// ProduceSync's results come in the order the records completed.
	errs := make(map[*kgo.Record]error, len(recs))
	for _, pr := range b.producers[cmd.GetAcks()].ProduceSync(ctx, recs...) {
		errs[pr.Record] = pr.Err
	}
	out := make([]*pubsub.KafkaProduced, len(recs))
	var first error
	failed, alike := 0, true
	for i, kr := range recs {
		p := &pubsub.KafkaProduced{Partition: kr.Partition, Offset: kr.Offset, Timestamp: kr.Timestamp.UnixMilli()}
		if cmd.GetAcks() == pubsub.Acks_ACKS_NONE {
			p.Offset = -1
		}
		if err := errs[kr]; err != nil {
			p.Offset, p.ErrorCode, p.Error = -1, codeOf(err), reason(err)
			if first == nil {
				first = err
			} else if reason(err) != reason(first) {
				alike = false
			}
			failed++
		}
		out[i] = p
	}
	if failed == len(recs) && alike {
		return nil, first // every record failed alike: the request failed
	}
	return out, nil
}

// produceResp answers a CmdKafkaProduce.
func (b *backend) produceResp(ctx context.Context, seq int64, cmd *pubsub.CmdKafkaProduce) *pubsub.PubSubResp {
	partition := int32(-1)
	if cmd.Partition != nil {
		partition = cmd.GetPartition()
	}
	results, err := b.produce(ctx, cmd)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			err = kerr.RequestTimedOut
		}
		return errorResp(seq, codeOf(err), pubsub.ProduceErrorMessage(cmd.GetTopic(), partition, reason(err)))
	}
	return &pubsub.PubSubResp{Sequence: seq, Resp: &pubsub.PubSubResp_KafkaProduceResp{
		KafkaProduceResp: &pubsub.KafkaProduceResp{Results: results}}}
}
