package kafkawire

// KeyPartition returns the partition of n that the Java client's default
// partitioner (and franz-go's Kafka-compatible one) chooses for a record
// with key: murmur2 of the key, made positive, modulo n. Records without a
// key are spread by the producer instead (see Producer). n must be > 0.
func KeyPartition(key []byte, n int32) int32 {
	return int32(murmur2(key)&0x7fffffff) % n
}

// murmur2 is the 32-bit MurmurHash2 with the seed and the byte order of
// Kafka's Utils.murmur2.
func murmur2(b []byte) uint32 {
	const (
		seed = 0x9747b28c
		m    = 0x5bd1e995
		r    = 24
	)
	h := uint32(seed) ^ uint32(len(b))
	n := len(b) &^ 3
	for i := 0; i < n; i += 4 {
		k := uint32(b[i]) | uint32(b[i+1])<<8 | uint32(b[i+2])<<16 | uint32(b[i+3])<<24
		k *= m
		k ^= k >> r
		k *= m
		h *= m
		h ^= k
	}
	switch len(b) & 3 {
	case 3:
		h ^= uint32(b[n+2]) << 16
		fallthrough
	case 2:
		h ^= uint32(b[n+1]) << 8
		fallthrough
	case 1:
		h ^= uint32(b[n])
		h *= m
	}
	h ^= h >> 13
	h *= m
	h ^= h >> 15
	return h
}
