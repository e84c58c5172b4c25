package wire

import (
	"fmt"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// BenchmarkFetchResponseDecode decodes a one-topic, four-partition Fetch
// response carrying 64 KiB of records per partition; Records alias the body,
// so the cost must not grow with the record bytes.
func BenchmarkFetchResponseDecode(b *testing.B) {
	k := kmsg.NewPtrFetchResponse()
	t := kmsg.NewFetchResponseTopic()
	t.Topic = "benchmark-topic"
	t.TopicID = uuid(3)
	for p := int32(0); p < 4; p++ {
		pp := kmsg.NewFetchResponseTopicPartition()
		pp.Partition = p
		pp.HighWatermark = 1 << 20
		pp.RecordBatches = make([]byte, 64<<10)
		t.Partitions = append(t.Partitions, pp)
	}
	k.Topics = append(k.Topics, t)
	for _, v := range []int16{11, 16} {
		body := encodeKmsg(k, v)
		b.Run("v"+string(rune('0'+v/10))+string(rune('0'+v%10)), func(b *testing.B) {
			b.ReportAllocs()
			var r FetchResponse
			for b.Loop() {
				if err := r.Decode(body, v); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkProduceRequestEncode encodes a Produce request of 10 partitions
// of 1 KiB batches, into nil (one allocation: AppendTo grows dst once and
// copies each batch into it) and into a reused buffer (none).
func BenchmarkProduceRequestEncode(b *testing.B) {
	r := sampleProduceRequest(10, 1<<10)
	for _, v := range []int16{8, 11, 13} {
		size := r.EncodedLen(v)
		b.Run(fmt.Sprintf("v%d/new", v), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(size))
			for b.Loop() {
				_ = r.AppendTo(nil, v)
			}
		})
		b.Run(fmt.Sprintf("v%d/reused", v), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(size))
			buf := make([]byte, 0, size)
			for b.Loop() {
				buf = r.AppendTo(buf[:0], v)
			}
		})
	}
}
