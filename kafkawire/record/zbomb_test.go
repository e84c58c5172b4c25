package record

import (
	"encoding/binary"
	"errors"
	"testing"
)

// rleZstdFrame hand-builds one zstd frame of n zero bytes from RLE blocks of
// 128 KiB (4 bytes each on the wire). With declareSize the frame header
// carries the content size (single segment); without, a 128 KiB window.
func rleZstdFrame(n int, declareSize bool) []byte {
	b := []byte{0x28, 0xb5, 0x2f, 0xfd}
	if declareSize {
		b = append(b, 0xe0) // 8-byte content size, single segment
		b = binary.LittleEndian.AppendUint64(b, uint64(n))
	} else {
		b = append(b, 0x00, 7<<3) // no content size; window 1<<(10+7)
	}
	const block = 128 << 10
	for n > 0 {
		size := min(n, block)
		n -= size
		last := uint32(0)
		if n == 0 {
			last = 1
		}
		h := uint32(size)<<3 | 1<<1 | last // RLE block
		b = append(b, byte(h), byte(h>>8), byte(h>>16), 0)
	}
	return b
}

func TestZstdSingleFrameBomb(t *testing.T) {
	for _, declare := range []bool{true, false} {
		z := rleZstdFrame(200<<20, declare)
		if bound, sized, ok := zstdFrameBound(z); !ok || sized != declare || bound != 200<<20 {
			t.Fatalf("hand-built frame misjudged: bound %d, sized %v, ok %v", bound, sized, ok)
		}
		src := encodeBatch(t, batchSpec{rawRecords: z, attrs: CodecZstd, count: 1})
		var err error
		n := allocated(func() { _, err = new(Decoder).Append(nil, src, 0, nil) })
		if !errors.Is(err, ErrTooLarge) {
			t.Fatalf("declared size %v: %v, want ErrTooLarge", declare, err)
		}
		if n > 160<<20 {
			t.Fatalf("declared size %v: allocated %d MiB against a 64 MiB cap", declare, n>>20)
		}
	}
	// The same frames within the cap decode.
	for _, declare := range []bool{true, false} {
		z := rleZstdFrame(1<<20, declare)
		out, err := unzstd(z, 1<<20, 1<<20)
		if err != nil || len(out) != 1<<20 {
			t.Fatalf("declared size %v: %d bytes, %v", declare, len(out), err)
		}
	}
}

// TestTotalBudget: batches that each fit the per-batch cap still cannot make
// one Append call take more than totalBatches caps of decoded memory.
func TestTotalBudget(t *testing.T) {
	const limit = 256 << 10
	rec := testRecords(0, 1, limit-4096)
	var src []byte
	for i := range 3 * totalBatches {
		r := rec[0]
		r.Offset = int64(i)
		src = append(src, encodeBatch(t, batchSpec{base: int64(i), codec: CodecZstd, records: []Record{r}})...)
	}
	d := &Decoder{MaxBatchBytes: limit}
	got, err := d.Append(nil, src, 0, nil)
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Append of %d near-cap batches: %v, want ErrTooLarge", 3*totalBatches, err)
	}
	if len(got) >= 3*totalBatches || len(got) < totalBatches-1 {
		t.Fatalf("decoded %d batches before the budget ran out, want about %d", len(got), totalBatches)
	}
	// The same batches one call each decode: the budget is per call.
	if _, err := d.Append(nil, encodeBatch(t, batchSpec{codec: CodecZstd, records: rec}), 0, nil); err != nil {
		t.Fatalf("single near-cap batch: %v", err)
	}
}
