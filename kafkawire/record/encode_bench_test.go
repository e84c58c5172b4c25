package record

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// benchProduceRecords returns n records as WebSocket clients send them: a
// 16-byte key and a 100-byte JSON value each.
func benchProduceRecords(n int) []Record {
	rng := rand.New(rand.NewPCG(5, 6))
	events := []string{"click", "view", "cart", "order", "login"}
	recs := make([]Record, n)
	for i := range recs {
		v := fmt.Appendf(nil, `{"user":"u%06d","event":"%s","at":%d,"page":"/p/%d","ref":"`,
			rng.IntN(1_000_000), events[rng.IntN(len(events))], 1_700_000_000_000+int64(i)*7, rng.IntN(500))
		for len(v) < 98 {
			v = append(v, events[rng.IntN(len(events))]...)
		}
		recs[i] = Record{
			Timestamp: 1_700_000_000_000 + int64(i)*7,
			Key:       fmt.Appendf(nil, "device-%09d", rng.IntN(1e9)),
			Value:     append(v[:98], '"', '}'),
		}
	}
	return recs
}

// BenchmarkEncode builds and encodes one batch per op (Add each record,
// AppendTo into a reused buffer, Reset), per codec and batch size.
// wire-bytes is the batch's size; SetBytes counts it uncompressed.
func BenchmarkEncode(b *testing.B) {
	for _, codec := range produceCodecs {
		for _, n := range []int{1, 10, 100} {
			b.Run(fmt.Sprintf("%s/%d", CodecName(codec), n), func(b *testing.B) {
				recs := benchProduceRecords(n)
				var bld Builder
				var dst []byte
				p := Producer{ID: 1, Epoch: 0, Sequence: 0}
				b.ReportAllocs()
				for b.Loop() {
					bld.Reset()
					for _, r := range recs {
						if err := bld.Add(r); err != nil {
							b.Fatal(err)
						}
					}
					var err error
					if dst, err = bld.AppendTo(dst[:0], p, codec); err != nil {
						b.Fatal(err)
					}
				}
				b.SetBytes(int64(bld.Size()))
				b.ReportMetric(float64(len(dst)), "wire-bytes")
			})
		}
	}
}
