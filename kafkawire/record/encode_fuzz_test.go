package record

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

// FuzzEncodeRoundTrip builds batches of arbitrary records (fuzzRecords
// reads them from data) with any codec and a cap of BatchHeaderSize plus
// capExtra bytes: every batch must stay under the cap and decode to the
// records added, and a record is refused (ErrRecordTooLarge) exactly when
// a batch of it alone would pass the cap.
func FuzzEncodeRoundTrip(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte, codec uint8, capExtra uint16) {
		recs := fuzzRecords(data)
		limit := BatchHeaderSize + int(capExtra)
		b := Builder{MaxBytes: limit}
		p := Producer{ID: int64(len(data)), Epoch: int16(codec), Sequence: int32(capExtra)}
		var want, got []Record
		flush := func() {
			if b.Len() == 0 {
				return
			}
			batch, err := b.AppendTo(nil, p, int(codec%5))
			if err != nil {
				t.Fatal(err)
			}
			if len(batch) > limit || len(batch) > b.Size() {
				t.Fatalf("batch of %d bytes, Size %d, cap %d", len(batch), b.Size(), limit)
			}
			dec, err := (&Decoder{MaxBatchBytes: 1 << 20}).Append(nil, batch, 0, nil)
			if err != nil {
				t.Fatalf("decode our %s batch: %v", CodecName(int(codec%5)), err)
			}
			base := int64(len(got))
			for _, r := range dec {
				r.Offset += base
				got = append(got, r)
			}
			b.Reset()
		}
		for _, r := range recs {
			err := b.Add(r)
			if tooLarge := BatchHeaderSize+RecordSize(r) > limit; tooLarge != errors.Is(err, ErrRecordTooLarge) {
				t.Fatalf("record of %d bytes under a %d-byte cap: %v", RecordSize(r), limit, err)
			}
			if err == ErrBatchFull {
				flush()
				err = b.Add(r)
			}
			if errors.Is(err, ErrRecordTooLarge) {
				continue
			}
			if err != nil {
				t.Fatal(err)
			}
			r.Offset = int64(len(want))
			want = append(want, r)
		}
		flush()
		equalRecords(t, got, want)
	})
}

// fuzzRecords reads records from data, each a flags byte (bit 0: a key,
// bit 1: a value, bit 2: an explicit timestamp, bits 4-5: the header
// count), then the timestamp (int64; else the previous one plus 1), the key
// (a length byte), the value (a uint16 length) and the headers (a length
// byte and the key; a length byte, 0xff for null, and the value). A field
// cut short takes what is left.
func fuzzRecords(data []byte) []Record {
	take := func(n int) []byte {
		n = min(n, len(data))
		b := data[:n:n]
		data = data[n:]
		return b
	}
	length := func(size int) int {
		v := 0
		for _, c := range take(size) {
			v = v<<8 | int(c)
		}
		return v
	}
	var recs []Record
	ts := int64(1_700_000_000_000)
	for len(data) > 0 {
		flags := take(1)[0]
		ts++
		if flags&4 != 0 {
			var raw [8]byte
			copy(raw[:], take(8))
			ts = int64(binary.BigEndian.Uint64(raw[:]))
		}
		r := Record{Timestamp: ts}
		if flags&1 != 0 {
			r.Key = take(length(1))
		}
		if flags&2 != 0 {
			r.Value = take(length(2))
		}
		for range flags >> 4 & 3 {
			h := Header{Key: string(take(length(1)))}
			if n := length(1); n != 0xff {
				h.Value = take(n)
			}
			r.Headers = append(r.Headers, h)
		}
		recs = append(recs, r)
	}
	return recs
}

// fuzzData is the inverse of fuzzRecords, for seeds: recs must fit its
// limits (keys and header fields under 255 bytes, values under 64 KiB, at
// most 3 headers).
func fuzzData(recs []Record) []byte {
	var out []byte
	for _, r := range recs {
		flags := byte(len(r.Headers)<<4) | 4
		if r.Key != nil {
			flags |= 1
		}
		if r.Value != nil {
			flags |= 2
		}
		out = binary.BigEndian.AppendUint64(append(out, flags), uint64(r.Timestamp))
		if r.Key != nil {
			out = append(append(out, byte(len(r.Key))), r.Key...)
		}
		if r.Value != nil {
			out = append(binary.BigEndian.AppendUint16(out, uint16(len(r.Value))), r.Value...)
		}
		for _, h := range r.Headers {
			out = append(append(out, byte(len(h.Key))), h.Key...)
			if h.Value == nil {
				out = append(out, 0xff)
				continue
			}
			out = append(append(out, byte(len(h.Value))), h.Value...)
		}
	}
	return out
}

func TestFuzzRecordsInverse(t *testing.T) {
	recs := asProduced(encodeCases()["shuffled"])
	got := fuzzRecords(fuzzData(recs))
	for i := range got {
		got[i].Offset = int64(i)
	}
	equalRecords(t, got, recs)
}

// TestWriteEncodeFuzzSeeds writes the seeds of FuzzEncodeRoundTrip, and
// Builder batches as seeds of FuzzDecode, when RECORD_WRITE_SEEDS=1 (as
// TestWriteFuzzSeeds does); the files are committed.
func TestWriteEncodeFuzzSeeds(t *testing.T) {
	if os.Getenv("RECORD_WRITE_SEEDS") != "1" {
		t.Skip("set RECORD_WRITE_SEEDS=1 to rewrite testdata/fuzz/FuzzEncodeRoundTrip")
	}
	write := func(target, name, body string) {
		dir := filepath.Join("testdata", "fuzz", target)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte("go test fuzz v1\n"+body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cases := map[string][]Record{
		"varied":   testRecords(0, 12, 30),
		"shuffled": encodeCases()["shuffled"][:10],
		"headers":  encodeCases()["headers"],
		"nulls":    encodeCases()["null-both"],
	}
	for name, recs := range cases {
		data := strconv.Quote(string(fuzzData(recs)))
		for _, codec := range produceCodecs {
			// A cap that holds everything, and one that splits the records
			// into batches and refuses the longest.
			for _, capExtra := range []int{0xffff, 200} {
				write("FuzzEncodeRoundTrip", fmt.Sprintf("%s-%s-cap%d", name, CodecName(codec), capExtra),
					fmt.Sprintf("[]byte(%s)\nuint8(%d)\nuint16(%d)\n", data, codec, capExtra))
			}
		}
	}
	for _, codec := range produceCodecs {
		batch := build(t, testRecords(0, 4, 12), Producer{ID: 9, Epoch: 1, Sequence: 4}, codec)
		write("FuzzDecode", "v2-builder-"+CodecName(codec)+"-from0", fmt.Sprintf("[]byte(%s)\nint64(0)\n", strconv.Quote(string(batch))))
	}
}
