package kafkawire

import (
	"encoding/binary"
	"hash/crc32"
	"net"
	"strconv"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkaedge/kafkaedge/kafkawire/wire"
)

// oneTopic is the topic of a oneBroker cluster, and oneTopicID its ID.
const oneTopic = "t"

var oneTopicID = [16]byte{15: 7}

// oneBroker is a one-node cluster on a fakeBroker: oneTopic has partitions
// partitions led by node 0 (this broker), each holding the same records,
// offsets 0 to n-1, in one uncompressed batch. fetch, when not nil, answers
// Fetch requests instead of the default (records from the offset asked,
// none at the end, OFFSET_OUT_OF_RANGE past it; no sessions).
type oneBroker struct {
	*fakeBroker
	partitions int32
	batch      []byte
	n          int64
	fetch      func(corr int32, req *kmsg.FetchRequest) []byte
}

// newOneBroker starts a oneBroker whose partitions hold values.
func newOneBroker(t testing.TB, partitions int32, values [][]byte, fetch func(corr int32, req *kmsg.FetchRequest) []byte) *oneBroker {
	t.Helper()
	ob := &oneBroker{partitions: partitions, batch: plainBatch(0, values), n: int64(len(values)), fetch: fetch}
	ob.fakeBroker = newFakeBroker(t, false, ob.answer)
	return ob
}

func (ob *oneBroker) answer(key int16, corr int32, req kmsg.Request) []byte {
	switch r := req.(type) {
	case *kmsg.MetadataRequest:
		return respFrame(corr, ob.metadata(r))
	case *kmsg.ListOffsetsRequest:
		resp := listOffsetsErrorResponse(r, 0).(*kmsg.ListOffsetsResponse)
		for ti, t := range resp.Topics {
			for pi := range t.Partitions {
				t.Partitions[pi].Offset = ob.n
				if r.Topics[ti].Partitions[pi].Timestamp == -2 {
					t.Partitions[pi].Offset = 0
				}
			}
		}
		return respFrame(corr, resp)
	case *kmsg.FetchRequest:
		if ob.fetch != nil {
			return ob.fetch(corr, r)
		}
		return respFrame(corr, ob.fetchResponse(r))
	}
	return nil
}

// metadata answers for oneTopic (all topics: oneTopic), and
// UNKNOWN_TOPIC_OR_PARTITION for others.
func (ob *oneBroker) metadata(r *kmsg.MetadataRequest) *kmsg.MetadataResponse {
	resp := r.ResponseKind().(*kmsg.MetadataResponse)
	host, port, _ := net.SplitHostPort(ob.addr())
	p, _ := strconv.Atoi(port)
	b := kmsg.NewMetadataResponseBroker()
	b.NodeID, b.Host, b.Port = 0, host, int32(p)
	resp.Brokers = append(resp.Brokers, b)
	topics := r.Topics
	if topics == nil { // every topic
		topics = []kmsg.MetadataRequestTopic{{Topic: kmsg.StringPtr(oneTopic)}}
	}
	for _, t := range topics {
		rt := kmsg.NewMetadataResponseTopic()
		rt.Topic = t.Topic
		if t.Topic == nil || *t.Topic != oneTopic {
			rt.ErrorCode = wire.ErrUnknownTopicOrPartition
			resp.Topics = append(resp.Topics, rt)
			continue
		}
		rt.TopicID = oneTopicID
		for i := range ob.partitions {
			rp := kmsg.NewMetadataResponseTopicPartition()
			rp.Partition, rp.Leader, rp.LeaderEpoch, rp.Replicas, rp.ISR = i, 0, 1, []int32{0}, []int32{0}
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp
}

// fetchResponse is the default answer to a Fetch request.
func (ob *oneBroker) fetchResponse(r *kmsg.FetchRequest) *kmsg.FetchResponse {
	resp := fetchErrorResponse(r, 0).(*kmsg.FetchResponse)
	for ti, t := range resp.Topics {
		for pi := range t.Partitions {
			rp, offset := &t.Partitions[pi], r.Topics[ti].Partitions[pi].FetchOffset
			rp.HighWatermark, rp.LastStableOffset, rp.LogStartOffset = ob.n, ob.n, 0
			switch {
			case offset > ob.n:
				rp.ErrorCode = wire.ErrOffsetOutOfRange
			case offset < ob.n:
				rp.RecordBatches = ob.batch
			}
		}
	}
	return resp
}

// plainBatch encodes values as one uncompressed magic 2 batch at base, with
// null keys and timestamps 0, 1, ...
func plainBatch(base int64, values [][]byte) []byte {
	var recs []byte
	for i, v := range values {
		r := kmsg.Record{TimestampDelta64: int64(i), OffsetDelta: int32(i), Value: v}
		r.Length = int32(len(r.AppendTo(nil)) - 1)
		recs = r.AppendTo(recs)
	}
	n := int32(len(values))
	rb := kmsg.RecordBatch{
		FirstOffset: base, PartitionLeaderEpoch: -1, Magic: 2, LastOffsetDelta: n - 1,
		MaxTimestamp: int64(n - 1), ProducerID: -1, ProducerEpoch: -1, FirstSequence: -1, NumRecords: n, Records: recs,
	}
	b := rb.AppendTo(nil)
	binary.BigEndian.PutUint32(b[8:], uint32(len(b)-12))
	binary.BigEndian.PutUint32(b[17:], crc32.Checksum(b[21:], crc32.MakeTable(crc32.Castagnoli)))
	return b
}

// values returns n values of size bytes, each starting with its index.
func values(n, size int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		v := make([]byte, size)
		copy(v, strconv.Itoa(i))
		out[i] = v
	}
	return out
}

// BenchmarkFetch measures one Fetch of one partition (100 records of 200
// bytes, uncompressed) against a broker that answers at once; allocs/op
// counts the client and the fake broker.
func BenchmarkFetch(b *testing.B) {
	ob := newOneBroker(b, 1, values(100, 200), nil)
	c, err := New(Config{Brokers: []string{ob.addr()}, Logger: quietLogger})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	ctx := b.Context()
	b.ReportAllocs()
	for b.Loop() {
		res, err := c.Fetch(ctx, oneTopic, 0, 0)
		if err != nil || len(res.Records) != 100 {
			b.Fatalf("%v, %v", res, err)
		}
		res.Release()
	}
}

// BenchmarkFetchMany measures one FetchMany of four partitions of one
// leader (100 records of 200 bytes each), as BenchmarkFetch does.
func BenchmarkFetchMany(b *testing.B) {
	ob := newOneBroker(b, 4, values(100, 200), nil)
	c, err := New(Config{Brokers: []string{ob.addr()}, Logger: quietLogger})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	ctx := b.Context()
	parts := []FetchPartition{{oneTopic, 0, 0}, {oneTopic, 1, 0}, {oneTopic, 2, 0}, {oneTopic, 3, 0}}
	b.ReportAllocs()
	for b.Loop() {
		rs, err := c.FetchMany(ctx, parts)
		if err != nil {
			b.Fatal(err)
		}
		for _, r := range rs {
			if r.Err != nil || len(r.Records) != 100 {
				b.Fatalf("%v", r.Err)
			}
			r.Release()
		}
	}
}
