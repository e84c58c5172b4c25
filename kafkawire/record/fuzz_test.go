package record

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

// FuzzDecode feeds arbitrary bytes and start offsets to Append: it must
// return records or a sentinel error, never panic or allocate past the cap.
func FuzzDecode(f *testing.F) {
	f.Fuzz(func(t *testing.T, src []byte, from int64) {
		d := Decoder{MaxBatchBytes: 1 << 20}
		all, errAll := d.Append(nil, src, from, nil)
		checkFuzzResult(t, all, errAll, from)
		committed, errCommitted := d.Append(nil, src, from, []AbortedTransaction{{ProducerID: 0, FirstOffset: 0}, {ProducerID: 1, FirstOffset: 0}})
		checkFuzzResult(t, committed, errCommitted, from)
		if errAll == nil && errCommitted == nil && len(committed) > len(all) {
			t.Fatalf("read_committed returned %d records, read_uncommitted %d", len(committed), len(all))
		}
		// Mutations rarely keep a CRC valid; recomputing the CRCs lets the
		// fuzzer reach the record parsing and the decompressors.
		fixed, err := d.Append(nil, fixCRCs(src), from, nil)
		checkFuzzResult(t, fixed, err, from)
	})
}

// fixCRCs returns a copy of src with the CRC of every whole top-level batch
// or legacy message recomputed.
func fixCRCs(src []byte) []byte {
	out := append([]byte(nil), src...)
	for b := out; len(b) > magicAt; {
		end := lengthEnd + int64(int32(binary.BigEndian.Uint32(b[8:])))
		if end < lengthEnd+minV0Size || end > int64(len(b)) {
			break
		}
		switch b[magicAt] {
		case 0, 1:
			binary.BigEndian.PutUint32(b[lengthEnd:], crc32.ChecksumIEEE(b[magicAt:end]))
		case 2:
			binary.BigEndian.PutUint32(b[crcAt:], crc32.Checksum(b[attributesAt:end], castagnoli))
		}
		b = b[end:]
	}
	return out
}

func checkFuzzResult(t *testing.T, recs []Record, err error, from int64) {
	if err != nil && !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrTooLarge) && !errors.Is(err, ErrUnsupportedCodec) {
		t.Fatalf("error without a sentinel: %v", err)
	}
	for _, r := range recs {
		if r.Offset < from {
			t.Fatalf("record at offset %d before from %d", r.Offset, from)
		}
	}
}

// TestWriteFuzzSeeds writes the seed corpus of FuzzDecode into
// testdata/fuzz/FuzzDecode when RECORD_WRITE_SEEDS=1; the files are
// committed, so it does nothing otherwise.
func TestWriteFuzzSeeds(t *testing.T) {
	if os.Getenv("RECORD_WRITE_SEEDS") != "1" {
		t.Skip("set RECORD_WRITE_SEEDS=1 to rewrite testdata/fuzz/FuzzDecode")
	}
	seeds := map[string][]byte{}
	for _, c := range testCodecs {
		seeds["v2-"+c.name] = encodeBatch(t, batchSpec{base: 0, codec: c.codec, records: testRecords(0, 4, 12)})
		inner := append(legacyMessage(1, 0, 0, 7, []byte("k"), []byte("a")), legacyMessage(1, 1, 0, 8, nil, []byte("b"))...)
		if c.codec != CodecNone {
			seeds["v1-"+c.name] = legacyMessage(1, 1, int8(c.codec&attrCodecMask), 8, nil, compressFor(t, c.codec, inner))
			seeds["v0-"+c.name] = legacyMessage(0, 1, int8(c.codec&attrCodecMask), 0, nil, compressFor(t, c.codec,
				append(legacyMessage(0, 0, 0, 0, nil, []byte("a")), legacyMessage(0, 1, 0, 0, []byte{}, nil)...)))
		}
	}
	seeds["v2-zstd-stream"] = encodeBatch(t, batchSpec{codec: codecZstdStream, records: testRecords(0, 4, 12)})
	seeds["v0-none"] = append(legacyMessage(0, 0, 0, 0, []byte("k"), []byte("v")), legacyMessage(0, 1, 0, 0, nil, nil)...)
	seeds["v1-none"] = append(legacyMessage(1, 0, 0, 5, []byte("k"), []byte("v")), legacyMessage(1, 1, 0, 6, nil, nil)...)
	seeds["v2-txn"] = append(append(
		encodeBatch(t, batchSpec{records: testRecords(0, 2, 8), attrs: attrTransactional, producerID: 1}),
		controlBatch(t, 2, 1, false)...),
		encodeBatch(t, batchSpec{base: 3, records: testRecords(3, 2, 8), attrs: attrLogAppendTime, maxTime: 99})...)
	full := encodeBatch(t, batchSpec{records: testRecords(0, 3, 8)})
	seeds["v2-truncated"] = append(append([]byte(nil), full...), full[:len(full)-5]...)

	dir := filepath.Join("testdata", "fuzz", "FuzzDecode")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, src := range seeds {
		for _, from := range []int64{0, 1} {
			body := fmt.Sprintf("go test fuzz v1\n[]byte(%s)\nint64(%d)\n", strconv.Quote(string(src)), from)
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("%s-from%d", name, from)), []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}
