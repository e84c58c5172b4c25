package record

import (
	"bytes"
	"encoding/binary"
	"errors"
	"runtime"
	"sync"
	"testing"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

func TestBatchCodecs(t *testing.T) {
	for _, c := range testCodecs {
		t.Run(c.name, func(t *testing.T) {
			want := testRecords(100, 120, 64)
			src := encodeBatch(t, batchSpec{base: 100, codec: c.codec, baseTime: want[0].Timestamp, records: want[:70]})
			src = append(src, encodeBatch(t, batchSpec{base: 170, codec: c.codec, baseTime: want[70].Timestamp, records: want[70:]})...)
			var d Decoder
			got, err := d.Append(nil, src, 0, nil)
			if err != nil {
				t.Fatal(err)
			}
			equalRecords(t, got, want)
			for from := int64(95); from <= 225; from += 3 { // trims inside both batches
				got, err := d.Append(nil, src, from, nil)
				if err != nil {
					t.Fatal(err)
				}
				equalRecords(t, got, want[max(0, min(from-100, int64(len(want)))):])
			}
		})
	}
}

func TestUncompressedAliasesSrc(t *testing.T) {
	want := testRecords(0, 3, 16)
	src := encodeBatch(t, batchSpec{records: want})
	got, err := new(Decoder).Append(nil, src, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	clear(src) // the values alias src, so they read zeros now
	if v := got[2].Value; len(v) == 0 || !bytes.Equal(v, make([]byte, len(v))) {
		t.Fatal("uncompressed value is not a sub-slice of src")
	}
	src = encodeBatch(t, batchSpec{records: want})
	dst := make([]Record, 1, 8) // Append keeps what dst holds
	dst[0].Offset = -7
	dst, err = new(Decoder).Append(dst, src, 0, nil)
	if err != nil || len(dst) != 4 || dst[0].Offset != -7 {
		t.Fatalf("append to dst: %d records, %v", len(dst), err)
	}
}

func TestEmptyBatch(t *testing.T) {
	// Compaction may leave a batch with no records; a compressed-looking
	// one has nothing to decompress.
	var src []byte
	for _, codec := range []int16{CodecNone, CodecZstd} {
		src = append(src, encodeBatch(t, batchSpec{base: 0, lastOffsetDelta: 4, attrs: codec, count: 0})...)
	}
	src = append(src, encodeBatch(t, batchSpec{base: 5, records: testRecords(5, 2, 4)})...)
	got, err := new(Decoder).Append(nil, src, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	equalRecords(t, got, testRecords(5, 2, 4))
}

func TestLogAppendTime(t *testing.T) {
	recs := testRecords(10, 5, 8)
	src := encodeBatch(t, batchSpec{base: 10, attrs: attrLogAppendTime, baseTime: recs[0].Timestamp, maxTime: 42, records: recs})
	got, err := new(Decoder).Append(nil, src, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range recs {
		recs[i].Timestamp = 42
	}
	equalRecords(t, got, recs)
}

func TestControlBatchSkipped(t *testing.T) {
	recs := testRecords(0, 2, 8)
	src := encodeBatch(t, batchSpec{records: recs, attrs: attrTransactional, producerID: 3})
	src = append(src, controlBatch(t, 2, 3, true)...)
	src = append(src, encodeBatch(t, batchSpec{base: 3, records: testRecords(3, 1, 8)})...)
	got, err := new(Decoder).Append(nil, src, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	equalRecords(t, got, append(recs, testRecords(3, 1, 8)...))
}

func TestReadCommitted(t *testing.T) {
	// Producer 7: aborted at 0-1, committed at 4-5, aborted at 8.
	// Producer 8: committed at 2-3 (interleaved), aborted at 6-7.
	// Producer 9: not transactional at 10.
	var src []byte
	add := func(b []byte) { src = append(src, b...) }
	txn := func(base, pid int64, n int, codec int) []Record {
		recs := testRecords(base, n, 8)
		add(encodeBatch(t, batchSpec{base: base, codec: codec, attrs: attrTransactional, producerID: pid, records: recs}))
		return recs
	}
	txn(0, 7, 2, CodecZstd)
	c1 := txn(2, 8, 1, CodecNone)
	add(controlBatch(t, 3, 7, false)) // abort 7's first
	add(controlBatch(t, 4, 8, true))
	c2 := txn(5, 7, 2, CodecGzip)
	add(controlBatch(t, 7, 7, true))
	txn(8, 8, 1, CodecNone)
	txn(9, 7, 1, CodecLz4)
	add(controlBatch(t, 10, 8, false))
	add(controlBatch(t, 11, 7, false))
	plain := testRecords(12, 2, 8)
	add(encodeBatch(t, batchSpec{base: 12, records: plain}))

	// Unsorted on purpose: the decoder sorts per producer.
	aborted := []AbortedTransaction{{7, 9}, {8, 8}, {7, 0}}
	got, err := new(Decoder).Append(nil, src, 0, aborted)
	if err != nil {
		t.Fatal(err)
	}
	want := append(append(append([]Record{}, c1...), c2...), plain...)
	equalRecords(t, got, want)

	// read_committed with nothing aborted, and read_uncommitted, keep all
	// data records and no markers.
	for _, ab := range [][]AbortedTransaction{{}, nil} {
		got, err = new(Decoder).Append(nil, src, 0, ab)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 9 {
			t.Fatalf("aborted %v: %d records, want 9", ab, len(got))
		}
	}
	// Starting after the first abort marker still drops 7's later abort.
	got, err = new(Decoder).Append(nil, src, 5, aborted)
	if err != nil {
		t.Fatal(err)
	}
	equalRecords(t, got, append(append([]Record{}, c2...), plain...))
}

func TestLegacy(t *testing.T) {
	for _, magic := range []int8{0, 1} {
		for _, c := range testCodecs {
			t.Run(string(rune('0'+magic))+"/"+c.name, func(t *testing.T) {
				ts := func(i int64) int64 {
					if magic == 0 {
						return -1
					}
					return 1_600_000_000_000 + i
				}
				want := []Record{
					{Offset: 20, Timestamp: ts(0), Key: nil, Value: []byte("plain")},
					{Offset: 21, Timestamp: ts(1), Key: []byte{}, Value: nil},
				}
				src := legacyMessage(magic, 20, 0, ts(0), nil, []byte("plain"))
				src = append(src, legacyMessage(magic, 21, 0, ts(1), []byte{}, nil)...)
				if c.codec != CodecNone {
					// A wrapper for offsets 22..26, with a compaction gap at 25.
					var inner []byte
					for i, off := range []int64{22, 23, 24, 26} {
						rel := off
						if magic == 1 {
							rel = off - 22 // relative inner offsets
						}
						k := []byte("k" + itoa(off))
						v := bytes.Repeat([]byte("value "), 10+i)
						inner = append(inner, legacyMessage(magic, rel, 0, ts(off), k, v)...)
						want = append(want, Record{Offset: off, Timestamp: ts(off), Key: k, Value: v})
					}
					src = append(src, legacyMessage(magic, 26, int8(c.codec&attrCodecMask), ts(26), nil, compressFor(t, c.codec, inner))...)
				}
				src = append(src, legacyMessage(magic, 27, 0, ts(27), []byte("last"), []byte("x"))...)
				want = append(want, Record{Offset: 27, Timestamp: ts(27), Key: []byte("last"), Value: []byte("x")})
				var d Decoder
				got, err := d.Append(nil, src, 0, nil)
				if err != nil {
					t.Fatal(err)
				}
				equalRecords(t, got, want)
				for i, r := range want { // trimming, also inside the wrapper
					got, err := d.Append(nil, src, r.Offset, nil)
					if err != nil {
						t.Fatal(err)
					}
					equalRecords(t, got, want[i:])
				}
			})
		}
	}
}

func TestLegacyWrapperQuirks(t *testing.T) {
	inner := legacyMessage(1, 0, 0, 5, nil, []byte("a"))
	inner = append(inner, legacyMessage(1, 1, 0, 6, nil, []byte("b"))...)
	value := compressFor(t, CodecGzip, inner)
	var d Decoder

	// Wrapper offset 0 (old librdkafka): inner offsets used as they are.
	got, err := d.Append(nil, legacyMessage(1, 0, CodecGzip, 6, nil, value), 0, nil)
	if err != nil || len(got) != 2 || got[0].Offset != 0 || got[1].Offset != 1 {
		t.Fatalf("wrapper offset 0: %+v %v", got, err)
	}
	// LogAppendTime wrapper: its timestamp for every inner message.
	got, err = d.Append(nil, legacyMessage(1, 11, CodecGzip|legacyLogAppendTime, 99, nil, value), 0, nil)
	if err != nil || len(got) != 2 || got[0].Offset != 10 || got[0].Timestamp != 99 || got[1].Timestamp != 99 {
		t.Fatalf("log append time: %+v %v", got, err)
	}

	cases := map[string][]byte{
		"nested compression": legacyMessage(1, 20, CodecGzip, 0, nil, compressFor(t, CodecGzip,
			legacyMessage(1, 0, CodecGzip, 0, nil, value))),
		"no inner messages":     legacyMessage(1, 20, CodecGzip, 0, nil, compressFor(t, CodecGzip, nil)),
		"null wrapper value":    legacyMessage(1, 20, CodecGzip, 0, nil, nil),
		"truncated inner":       legacyMessage(1, 20, CodecGzip, 0, nil, compressFor(t, CodecGzip, inner[:len(inner)-1])),
		"garbage inner":         legacyMessage(1, 20, CodecGzip, 0, nil, compressFor(t, CodecGzip, bytes.Repeat([]byte{0xff}, 40))),
		"not gzip":              legacyMessage(1, 20, CodecGzip, 0, nil, []byte("definitely not gzip")),
		"inner crc":             legacyMessage(1, 20, CodecGzip, 0, nil, compressFor(t, CodecGzip, flip(inner, 20))),
		"bytes after the value": fixLegacy(append(legacyMessage(1, 20, 0, 0, nil, nil), 0)),
		"key longer than size":  fixLegacy(binary.BigEndian.AppendUint32(legacyMessage(0, 20, 0, 0, nil, nil)[:18], 100)),
	}
	// Relative inner offsets 0 and 30 cannot end at wrapper offset 20.
	cases["wrapper below inner"] = legacyMessage(1, 20, CodecGzip, 0, nil, compressFor(t, CodecGzip,
		append(legacyMessage(1, 0, 0, 0, nil, nil), legacyMessage(1, 30, 0, 0, nil, nil)...)))
	for name, src := range cases {
		if _, err := d.Append(nil, src, 0, nil); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: %v, want ErrCorrupt", name, err)
		}
	}
}

// flip returns a copy of b with byte i inverted.
func flip(b []byte, i int) []byte {
	c := bytes.Clone(b)
	c[i] ^= 0xff
	return c
}

func TestCorrupt(t *testing.T) {
	recs := testRecords(0, 4, 8)
	good := encodeBatch(t, batchSpec{records: recs})
	var d Decoder
	// Every single-byte change from the magic on fails the CRC (or, for
	// the magic byte, the magic check). The partition leader epoch before
	// it is outside the CRC.
	for i := magicAt; i < len(good); i++ {
		if _, err := d.Append(nil, flip(good, i), 0, nil); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("byte %d flipped: %v, want ErrCorrupt", i, err)
		}
	}

	rec := func(b []byte) []byte { return b }
	one := appendRecordV2(nil, 0, 0, []byte("k"), []byte("v"), nil)
	cases := map[string][]byte{
		"count too high":      encodeBatch(t, batchSpec{rawRecords: one, count: 2}),
		"count too low":       encodeBatch(t, batchSpec{rawRecords: append(bytes.Clone(one), one...), count: 1}),
		"count huge":          encodeBatch(t, batchSpec{rawRecords: one, count: 1<<31 - 1}),
		"count negative":      encodeBatch(t, batchSpec{rawRecords: one, count: -1}),
		"claims with no data": encodeBatch(t, batchSpec{count: 3}),
		"record length lies":  encodeBatch(t, batchSpec{rawRecords: append([]byte{40}, one[1:]...), count: 1}),
		"record too short":    encodeBatch(t, batchSpec{rawRecords: rec([]byte{2, 0, 0, 0, 0, 0, 0}), count: 1}),
		"key length lies": encodeBatch(t, batchSpec{rawRecords: rec(append(binary.AppendVarint(nil, 6),
			0, 0, 0, 100, 0, 0)), count: 1}),
		"key length negative": encodeBatch(t, batchSpec{rawRecords: rec(append(binary.AppendVarint(nil, 6),
			0, 0, 0, 5, 0, 0)), count: 1}),
		"header count huge": encodeBatch(t, batchSpec{rawRecords: rec(append(append(binary.AppendVarint(nil, 9),
			0, 0, 0, 1, 1), binary.AppendVarint(nil, 1<<30)...)), count: 1}),
		"null header key": encodeBatch(t, batchSpec{rawRecords: rec(append(binary.AppendVarint(nil, 8),
			0, 0, 0, 1, 1, 2, 1, 1)), count: 1}),
		"varint overflow": encodeBatch(t, batchSpec{rawRecords: rec(append(binary.AppendVarint(nil, 14),
			0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01)), count: 1}),
		"offset delta overflows int32": encodeBatch(t, batchSpec{rawRecords: rec(append(append(binary.AppendVarint(nil, 10),
			0, 0), append(binary.AppendVarint(nil, 1<<40), 1, 1, 0)...)), count: 1}),
		"bytes left in record": encodeBatch(t, batchSpec{rawRecords: rec(append(binary.AppendVarint(nil, 8),
			0, 0, 0, 1, 1, 0, 0, 0)), count: 1}),
		"batch length below header": fixShort(good),
		"unknown magic":             setByte(good, magicAt, 3),
		"negative length":           setLen(good, -5),
		"gzip garbage":              encodeBatch(t, batchSpec{codec: CodecNone, attrs: CodecGzip, rawRecords: []byte("garbage"), count: 1}),
		"zstd garbage":              encodeBatch(t, batchSpec{codec: CodecNone, attrs: CodecZstd, rawRecords: []byte("garbage garbage"), count: 1}),
		"lz4 garbage":               encodeBatch(t, batchSpec{codec: CodecNone, attrs: CodecLz4, rawRecords: []byte("garbage garbage"), count: 1}),
		"snappy garbage":            encodeBatch(t, batchSpec{codec: CodecNone, attrs: CodecSnappy, rawRecords: []byte{0xff, 0xff, 0xff}, count: 1}),
		"xerial block lies": encodeBatch(t, batchSpec{codec: CodecNone, attrs: CodecSnappy,
			rawRecords: append(append(bytes.Clone(xerialMagic), 0, 0, 0, 1, 0, 0, 0, 1), 0, 0, 1, 0, 1), count: 1}),
	}
	for name, src := range cases {
		got, err := d.Append(nil, append(bytes.Clone(good), src...), 0, nil)
		if !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: %v, want ErrCorrupt", name, err)
		}
		// The good batch before the bad one is kept.
		if len(got) != len(recs) {
			t.Errorf("%s: %d records before the error, want %d", name, len(got), len(recs))
		}
	}
	bad := encodeBatch(t, batchSpec{codec: CodecNone, attrs: 5, rawRecords: one, count: 1})
	if _, err := d.Append(nil, bad, 0, nil); !errors.Is(err, ErrUnsupportedCodec) {
		t.Errorf("codec 5: %v, want ErrUnsupportedCodec", err)
	}
}

func fixShort(good []byte) []byte {
	b := bytes.Clone(good[:lengthEnd+30])
	binary.BigEndian.PutUint32(b[8:], 30)
	return b
}

func setByte(b []byte, i int, v byte) []byte {
	c := bytes.Clone(b)
	c[i] = v
	return c
}

func setLen(b []byte, n int32) []byte {
	c := bytes.Clone(b)
	binary.BigEndian.PutUint32(c[8:], uint32(n))
	return c
}

// TestTruncated cuts a stream of every kind of batch at every byte: the
// records of the complete batches come back, without error.
func TestTruncated(t *testing.T) {
	var src []byte
	var ends []int // end of each batch in src
	var counts []int
	add := func(b []byte, n int) {
		src = append(src, b...)
		ends = append(ends, len(src))
		counts = append(counts, n)
	}
	off := int64(0)
	for _, c := range testCodecs {
		add(encodeBatch(t, batchSpec{base: off, codec: c.codec, records: testRecords(off, 5, 20)}), 5)
		off += 5
	}
	add(legacyMessage(0, off, 0, 0, []byte("k"), []byte("v")), 1)
	add(legacyMessage(1, off+1, 0, 9, nil, []byte("v")), 1)
	add(legacyMessage(1, off+3, CodecSnappy, 9, nil, compressFor(t, CodecSnappy,
		append(legacyMessage(1, 0, 0, 9, nil, []byte("a")), legacyMessage(1, 1, 0, 9, nil, []byte("b"))...))), 2)

	var d Decoder
	for cut := 0; cut <= len(src); cut++ {
		want := 0
		for i, e := range ends {
			if e <= cut {
				want += counts[i]
			}
		}
		got, err := d.Append(nil, src[:cut:cut], 0, nil)
		if err != nil {
			t.Fatalf("cut at %d: %v", cut, err)
		}
		if len(got) != want {
			t.Fatalf("cut at %d: %d records, want %d", cut, len(got), want)
		}
	}
}

// zerosBomb returns codec-compressed data that inflates to about n zero
// bytes: concatenated gzip members or zstd frames, each of 1 MiB.
func zerosBomb(t *testing.T, codec int, n int) []byte {
	one := compressFor(t, codec, make([]byte, 1<<20))
	return bytes.Repeat(one, n>>20)
}

// allocated returns the bytes f allocates (all goroutines; other tests are
// not parallel with this one).
func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

func TestDecompressionBomb(t *testing.T) {
	// 200 MiB of zeros against the default 64 MiB cap.
	for _, codec := range []int{CodecGzip, CodecZstd} {
		bomb := encodeBatch(t, batchSpec{rawRecords: zerosBomb(t, codec, 200<<20), attrs: int16(codec), count: 1})
		var err error
		n := allocated(func() { _, err = new(Decoder).Append(nil, bomb, 0, nil) })
		if !errors.Is(err, ErrTooLarge) {
			t.Fatalf("codec %d: %v, want ErrTooLarge", codec, err)
		}
		if n > 160<<20 {
			t.Fatalf("codec %d: the bomb allocated %d MiB against a 64 MiB cap", codec, n>>20)
		}
	}
	// 32 MiB against a 256 KiB cap, every codec and the legacy wrapper: the
	// allocations stay near twice the cap, plus codec state (an lz4 frame
	// reader holds up to two buffers of the 4 MiB blocks a frame may declare).
	const limit = 256 << 10
	payload := make([]byte, 32<<20)
	for _, c := range testCodecs[1:] {
		z := compressFor(t, c.codec, payload)
		for name, src := range map[string][]byte{
			"batch":  encodeBatch(t, batchSpec{rawRecords: z, attrs: int16(c.codec & attrCodecMask), count: 1}),
			"legacy": legacyMessage(1, 3, int8(c.codec&attrCodecMask), 0, nil, z),
		} {
			d := Decoder{MaxBatchBytes: limit}
			var err error
			n := allocated(func() { _, err = d.Append(nil, src, 0, nil) })
			if !errors.Is(err, ErrTooLarge) {
				t.Fatalf("%s %s: %v, want ErrTooLarge", c.name, name, err)
			}
			if n > 4*limit+9<<20 {
				t.Fatalf("%s %s: allocated %d KiB with a %d KiB cap", c.name, name, n>>10, limit>>10)
			}
		}
	}
	// A batch exactly at the cap decodes; one byte less fails.
	rec := appendRecordV2(nil, 0, 0, nil, make([]byte, 100_000), nil)
	for _, c := range testCodecs[1:] {
		src := encodeBatch(t, batchSpec{rawRecords: compressFor(t, c.codec, rec), attrs: int16(c.codec & attrCodecMask), count: 1})
		d := Decoder{MaxBatchBytes: len(rec)}
		if got, err := d.Append(nil, src, 0, nil); err != nil || len(got) != 1 {
			t.Fatalf("%s at the cap: %d records, %v", c.name, len(got), err)
		}
		d.MaxBatchBytes--
		if _, err := d.Append(nil, src, 0, nil); !errors.Is(err, ErrTooLarge) {
			t.Fatalf("%s one byte over the cap: %v", c.name, err)
		}
	}
}

func TestTinyRecordsBomb(t *testing.T) {
	// 50,000 minimal records: 350 KB on the wire after decompression, 4.4 MB
	// as Records. A 1 MiB cap admits the bytes but not the Records.
	var raw []byte
	for i := range 50_000 {
		raw = appendRecordV2(raw, int32(i), 0, nil, nil, nil)
	}
	d := Decoder{MaxBatchBytes: 1 << 20}
	src := encodeBatch(t, batchSpec{rawRecords: compressFor(t, CodecZstd, raw), attrs: CodecZstd, count: 50_000})
	if _, err := d.Append(nil, src, 0, nil); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("v2: %v, want ErrTooLarge", err)
	}
	var inner []byte
	for i := range 20_000 {
		inner = append(inner, legacyMessage(1, int64(i), 0, 0, nil, nil)...)
	}
	if _, err := d.Append(nil, legacyMessage(1, 19_999, CodecGzip, 0, nil, compressFor(t, CodecGzip, inner)), 0, nil); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("legacy: %v, want ErrTooLarge", err)
	}
	// The default cap takes them.
	if got, err := new(Decoder).Append(nil, src, 0, nil); err != nil || len(got) != 50_000 {
		t.Fatalf("default cap: %d records, %v", len(got), err)
	}
}

func TestZstdFrames(t *testing.T) {
	recs := testRecords(0, 50, 100)
	var raw []byte
	for _, r := range recs {
		raw = appendRecordV2(raw, int32(r.Offset), r.Timestamp, r.Key, r.Value, r.Headers)
	}
	// A streamed frame without a content size (DecodeAll into a bounded
	// buffer), two frames and two gzip members (streaming).
	var buf bytes.Buffer
	w, _ := zstd.NewWriter(&buf, zstd.WithEncoderConcurrency(1))
	w.Write(raw[:100])
	w.Flush()
	w.Write(raw[100:])
	w.Close()
	half := len(raw) / 2
	twoFrames := append(compressFor(t, CodecZstd, raw[:half]), compressFor(t, CodecZstd, raw[half:])...)
	var gz bytes.Buffer // two gzip members
	for _, part := range [][]byte{raw[:half], raw[half:]} {
		zw := gzip.NewWriter(&gz)
		zw.Write(part)
		zw.Close()
	}
	for name, z := range map[string][]byte{"stream": buf.Bytes(), "two frames": twoFrames, "gzip members": gz.Bytes()} {
		codec := int16(CodecZstd)
		if name == "gzip members" {
			codec = CodecGzip
		}
		got, err := new(Decoder).Append(nil, encodeBatch(t, batchSpec{rawRecords: z, attrs: codec, count: int32(len(recs))}), 0, nil)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		equalRecords(t, got, recs)
	}
	if _, sized, ok := zstdFrameBound(compressFor(t, CodecZstd, raw)); !sized || !ok {
		t.Fatal("a frame with its size misjudged")
	}
	if bound, sized, ok := zstdFrameBound(buf.Bytes()); sized || !ok || bound < len(raw) {
		t.Fatalf("a streamed frame misjudged: bound %d for %d bytes", bound, len(raw))
	}
	if _, _, ok := zstdFrameBound(twoFrames); ok {
		t.Fatal("two frames taken for one")
	}
}

func TestConcurrentUse(t *testing.T) {
	var src []byte
	for i, c := range testCodecs {
		src = append(src, encodeBatch(t, batchSpec{base: int64(i * 10), codec: c.codec, records: testRecords(int64(i*10), 10, 50)})...)
	}
	d := &Decoder{MaxBatchBytes: 1 << 20}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Go(func() {
			for range 20 {
				got, err := d.Append(nil, src, 0, nil)
				if err == nil && len(got) != 10*len(testCodecs) {
					err = errors.New("wrong record count")
				}
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// TestStopAfterBytes: Append ends after the batch that reaches the byte
// budget, leaving later batches undecoded, and decodes everything without it.
func TestStopAfterBytes(t *testing.T) {
	var src []byte
	for b := range 5 {
		src = append(src, encodeBatch(t, batchSpec{base: int64(b * 10), codec: CodecLz4, records: testRecords(int64(b*10), 10, 100)})...)
	}
	all, err := new(Decoder).Append(nil, src, 0, nil)
	if err != nil || len(all) != 50 {
		t.Fatalf("without a budget: %d records, %v; want 50", len(all), err)
	}
	perBatch := 0
	for _, r := range all[:10] {
		perBatch += len(r.Key) + len(r.Value)
	}
	d := &Decoder{StopAfterBytes: perBatch + 1}
	got, err := d.Append(nil, src, 0, nil)
	if err != nil || len(got) != 20 {
		t.Fatalf("budget of one batch plus a byte: %d records, %v; want 20 (two whole batches)", len(got), err)
	}
	equalRecords(t, got, all[:20])
	// Trimmed records before from do not count against the budget.
	got, err = d.Append(nil, src, 25, nil)
	if err != nil || len(got) != 15 || got[0].Offset != 25 {
		t.Fatalf("from 25: %d records from %v, %v; want 15 from 25", len(got), got[0].Offset, err)
	}
}
