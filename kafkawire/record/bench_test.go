package record

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// benchBatch returns a batch of 500 records with 256-byte JSON-like values
// (varying numbers and words, so codecs compress it like real payloads),
// 16-byte keys and a header on every tenth record, and its uncompressed size.
func benchBatch(b *testing.B, codec int) ([]byte, int) {
	rng := rand.New(rand.NewPCG(1, 2))
	words := []string{"order", "created", "shipped", "user", "cart", "price", "EUR", "USD", "sku", "warehouse", "berlin", "paris"}
	recs := make([]Record, 500)
	for i := range recs {
		v := fmt.Appendf(nil, `{"id":%d,"ts":%d,"user":"u%06d","event":"%s","amount":%d.%02d,"currency":"%s","tags":["%s","%s"],"note":"`,
			1_000_000+i, 1_700_000_000_000+int64(i)*17, rng.IntN(1_000_000), words[rng.IntN(len(words))],
			rng.IntN(10_000), rng.IntN(100), words[6+rng.IntN(2)], words[rng.IntN(len(words))], words[rng.IntN(len(words))])
		for len(v) < 254 {
			v = append(v, words[rng.IntN(len(words))]...)
			v = append(v, ' ')
		}
		v = append(v[:254], '"', '}')
		recs[i] = Record{Offset: int64(i), Timestamp: 1_700_000_000_000 + int64(i), Key: fmt.Appendf(nil, "key-%012d", rng.IntN(1e12)), Value: v}
		if i%10 == 0 {
			recs[i].Headers = []Header{{Key: "trace-id", Value: fmt.Appendf(nil, "%016x", rng.Uint64())}}
		}
	}
	plain := encodeBatch(b, batchSpec{records: recs, baseTime: 1_700_000_000_000})
	return encodeBatch(b, batchSpec{records: recs, codec: codec, baseTime: 1_700_000_000_000}), len(plain)
}

func BenchmarkDecode(b *testing.B) {
	codecs := append(testCodecs, struct {
		name  string
		codec int
	}{"zstd-stream", codecZstdStream})
	for _, c := range codecs {
		b.Run(c.name, func(b *testing.B) {
			src, size := benchBatch(b, c.codec)
			var d Decoder
			dst, err := d.Append(nil, src, 0, nil)
			if err != nil || len(dst) != 500 {
				b.Fatalf("%d records, %v", len(dst), err)
			}
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				if dst, err = d.Append(dst[:0], src, 0, nil); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(len(src)), "wire-bytes")
		})
	}
}
