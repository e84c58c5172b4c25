package kafkawire

import (
	"math/rand/v2"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TestKeyPartition: keys land on the partitions franz-go's Kafka-compatible
// partitioner (the Java client's murmur2) puts them on, for keys of every
// length up to 64 bytes, empty keys included, and several partition counts.
func TestKeyPartition(t *testing.T) {
	// Kafka's own test vectors (Utils.murmur2 of these strings).
	for key, want := range map[string]int32{
		"21":                         -973932308,
		"foobar":                     -790332482,
		"a-little-bit-long-string":   -985981536,
		"a-little-bit-longer-string": -1486304829,
		"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
		"abc": 479470107,
	} {
		if got := int32(murmur2([]byte(key))); got != want {
			t.Errorf("murmur2(%q) = %d, want %d", key, got, want)
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int32{1, 2, 3, 4, 12, 100, 1000} {
		p := kgo.StickyKeyPartitioner(nil).ForTopic("t")
		for i := range 2000 {
			key := make([]byte, i%65)
			for j := range key {
				key[j] = byte(rng.UintN(256))
			}
			want := int32(p.Partition(&kgo.Record{Key: key}, int(n)))
			if got := KeyPartition(key, n); got != want {
				t.Fatalf("key %x over %d partitions: %d, franz-go %d", key, n, got, want)
			}
		}
	}
}

func BenchmarkKeyPartition(b *testing.B) {
	key := []byte("device-4711-sensor-temperature")
	for b.Loop() {
		KeyPartition(key, 12)
	}
}
