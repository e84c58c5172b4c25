package record

import (
	"encoding/binary"
	"math"
	"testing"
)

// TestScan reads the end of the complete batches of a fetch.
func TestScan(t *testing.T) {
	batch := func(base int64, lastDelta int32, magic byte, size int) []byte {
		b := binary.BigEndian.AppendUint64(nil, uint64(base))
		b = binary.BigEndian.AppendUint32(b, uint32(size-lengthEnd))
		b = append(b, make([]byte, size-lengthEnd)...)
		b[magicAt] = magic
		if magic == 2 && len(b) >= lastDeltaAt+4 {
			binary.BigEndian.PutUint32(b[lastDeltaAt:], uint32(lastDelta))
		}
		return b
	}
	two := append(batch(10, 4, 2, 70), batch(15, 0, 2, 61)...)
	for _, tt := range []struct {
		name string
		in   []byte
		want int64
	}{
		{"empty", nil, -1},
		{"one v2", batch(10, 4, 2, 70), 15},
		{"two v2", two, 16},
		{"truncated second", two[:100], 15},
		{"legacy", append(batch(7, 0, 1, 40), batch(9, 0, 0, 40)...), 10},
		{"unknown magic", batch(3, 0, 9, 40), -1},
		{"lying length", binary.BigEndian.AppendUint32(make([]byte, 8), 1<<30), -1},
		{"negative length", append(binary.BigEndian.AppendUint32(make([]byte, 8), 0xffffffff), make([]byte, 20)...), -1},
		{"v2 too short", batch(1, 0, 2, 20), -1},
		{"real batch", encodeBatch(t, batchSpec{base: 40, records: testRecords(40, 5, 8)}), 45},
	} {
		if got, _ := Scan(tt.in, math.MaxInt64); got != tt.want {
			t.Errorf("%s: %d, want %d", tt.name, got, tt.want)
		}
	}
	// Up to an offset: the walk stops after the batch that reaches it.
	first := len(batch(10, 4, 2, 70))
	for _, tt := range []struct {
		upTo     int64
		next     int64
		consumed int
	}{{10, 15, first}, {14, 15, first}, {15, 16, len(two)}, {99, 16, len(two)}} {
		if next, n := Scan(two, tt.upTo); next != tt.next || n != tt.consumed {
			t.Errorf("up to %d: next %d after %d bytes, want %d after %d", tt.upTo, next, n, tt.next, tt.consumed)
		}
	}
}
