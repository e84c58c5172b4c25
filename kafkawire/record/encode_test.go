package record

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"testing"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/snappy"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// This file holds the test-side encoders: record batches and legacy message
// sets built by hand, compressed with the same libraries producers use.

// Test-only pseudo codecs: snappy in xerial framing, and zstd streamed
// without a declared content size (as the Java producer writes it).
const (
	codecXerial     = 0x102
	codecZstdStream = 0x104
)

var testCodecs = []struct {
	name  string
	codec int
}{
	{"none", CodecNone}, {"gzip", CodecGzip}, {"snappy", CodecSnappy},
	{"xerial", codecXerial}, {"lz4", CodecLz4}, {"zstd", CodecZstd},
}

// compressFor compresses data with codec (codecXerial for xerial snappy).
func compressFor(t testing.TB, codec int, data []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	switch codec {
	case CodecNone:
		return data
	case CodecGzip:
		w, _ := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
		w.Write(data)
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	case CodecSnappy:
		return snappy.Encode(nil, data)
	case codecXerial:
		buf.Write(xerialMagic)
		buf.Write([]byte{0, 0, 0, 1, 0, 0, 0, 1})
		for len(data) > 0 {
			n := min(len(data), 32<<10)
			block := snappy.Encode(nil, data[:n])
			buf.Write(binary.BigEndian.AppendUint32(nil, uint32(len(block))))
			buf.Write(block)
			data = data[n:]
		}
	case CodecLz4:
		w := lz4.NewWriter(&buf)
		w.Write(data)
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	case CodecZstd:
		enc, err := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1))
		if err != nil {
			t.Fatal(err)
		}
		defer enc.Close()
		return enc.EncodeAll(data, nil)
	case codecZstdStream:
		w, err := zstd.NewWriter(&buf, zstd.WithEncoderConcurrency(1))
		if err != nil {
			t.Fatal(err)
		}
		w.Write(data)
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	default:
		t.Fatalf("no codec %d", codec)
	}
	return buf.Bytes()
}

// batchSpec describes one hand-built magic 2 record batch.
type batchSpec struct {
	base            int64
	codec           int   // as compressFor
	attrs           int16 // extra attribute bits (timestamp type, transactional, control)
	baseTime        int64
	maxTime         int64
	producerID      int64
	lastOffsetDelta int32 // raised to the largest record offset delta
	records         []Record
	rawRecords      []byte // when set, used instead of encoding records
	count           int32  // when records is nil
}

// appendRecordV2 appends one encoded record.
func appendRecordV2(dst []byte, offsetDelta int32, tsDelta int64, key, value []byte, headers []Header) []byte {
	body := []byte{0}
	body = binary.AppendVarint(body, tsDelta)
	body = binary.AppendVarint(body, int64(offsetDelta))
	body = appendVarBytes(body, key)
	body = appendVarBytes(body, value)
	body = binary.AppendVarint(body, int64(len(headers)))
	for _, h := range headers {
		body = appendVarBytes(body, []byte(h.Key))
		body = appendVarBytes(body, h.Value)
	}
	dst = binary.AppendVarint(dst, int64(len(body)))
	return append(dst, body...)
}

func appendVarBytes(dst, b []byte) []byte {
	if b == nil {
		return binary.AppendVarint(dst, -1)
	}
	dst = binary.AppendVarint(dst, int64(len(b)))
	return append(dst, b...)
}

// encodeBatch builds the batch s describes, CRC included.
func encodeBatch(t testing.TB, s batchSpec) []byte {
	t.Helper()
	raw := s.rawRecords
	count := s.count
	lastDelta := s.lastOffsetDelta
	if s.records != nil {
		count = int32(len(s.records))
		for _, r := range s.records {
			raw = appendRecordV2(raw, int32(r.Offset-s.base), r.Timestamp-s.baseTime, r.Key, r.Value, r.Headers)
			if lastDelta < int32(r.Offset-s.base) {
				lastDelta = int32(r.Offset - s.base)
			}
		}
	}
	codecBits := int16(s.codec & attrCodecMask)
	raw = compressFor(t, s.codec, raw)
	b := binary.BigEndian.AppendUint64(nil, uint64(s.base))
	b = binary.BigEndian.AppendUint32(b, 0) // length, below
	b = binary.BigEndian.AppendUint32(b, 0) // partition leader epoch
	b = append(b, 2)
	b = binary.BigEndian.AppendUint32(b, 0) // crc, below
	b = binary.BigEndian.AppendUint16(b, uint16(codecBits|s.attrs))
	b = binary.BigEndian.AppendUint32(b, uint32(lastDelta))
	b = binary.BigEndian.AppendUint64(b, uint64(s.baseTime))
	b = binary.BigEndian.AppendUint64(b, uint64(s.maxTime))
	b = binary.BigEndian.AppendUint64(b, uint64(s.producerID))
	b = binary.BigEndian.AppendUint16(b, 0)          // producer epoch
	b = binary.BigEndian.AppendUint32(b, 0xffffffff) // base sequence
	b = binary.BigEndian.AppendUint32(b, uint32(count))
	b = append(b, raw...)
	return fixBatch(b)
}

// fixBatch rewrites the length and CRC-32C of the magic 2 batch b.
func fixBatch(b []byte) []byte {
	binary.BigEndian.PutUint32(b[8:], uint32(len(b)-lengthEnd))
	binary.BigEndian.PutUint32(b[crcAt:], crc32.Checksum(b[attributesAt:], castagnoli))
	return b
}

// controlBatch builds a transactional control batch holding one marker.
func controlBatch(t testing.TB, offset, producerID int64, commit bool) []byte {
	typ := byte(0)
	if commit {
		typ = 1
	}
	return encodeBatch(t, batchSpec{
		base: offset, attrs: attrControl | attrTransactional, producerID: producerID,
		records: []Record{{Offset: offset, Key: []byte{0, 0, 0, typ}, Value: []byte{0, 0, 0, 0, 0, 0}}},
	})
}

// legacyMessage builds one legacy message entry with kmsg's message types,
// then sets its size and CRC-32.
func legacyMessage(magic int8, offset int64, attrs int8, ts int64, key, value []byte) []byte {
	var b []byte
	if magic == 0 {
		m := kmsg.MessageV0{Offset: offset, Magic: 0, Attributes: attrs, Key: key, Value: value}
		b = m.AppendTo(nil)
	} else {
		m := kmsg.MessageV1{Offset: offset, Magic: 1, Attributes: attrs, Timestamp: ts, Key: key, Value: value}
		b = m.AppendTo(nil)
	}
	return fixLegacy(b)
}

// fixLegacy rewrites the size and CRC-32 of the legacy message b.
func fixLegacy(b []byte) []byte {
	binary.BigEndian.PutUint32(b[8:], uint32(len(b)-lengthEnd))
	binary.BigEndian.PutUint32(b[lengthEnd:], crc32.ChecksumIEEE(b[magicAt:]))
	return b
}

// testRecords returns n varied records from offset base: nil and empty keys,
// nil values, headers with nil values, increasing timestamps.
func testRecords(base int64, n int, valueSize int) []Record {
	recs := make([]Record, n)
	for i := range recs {
		r := Record{Offset: base + int64(i), Timestamp: 1_700_000_000_000 + int64(i)*3}
		switch i % 7 {
		case 0:
			// nil key
		case 1:
			r.Key = []byte{}
		default:
			r.Key = []byte("key-" + itoa(int64(i)))
		}
		if i%11 != 5 {
			v := make([]byte, valueSize)
			for j := range v {
				v[j] = "abcdefghij0123456789 {}\":,"[(i*7+j*13+j/5)%26]
			}
			r.Value = v
		}
		if i%3 == 0 {
			r.Headers = []Header{{Key: "h", Value: []byte("v" + itoa(int64(i)))}, {Key: "nil", Value: nil}, {Key: "", Value: []byte{}}}
		}
		recs[i] = r
	}
	return recs
}

// equalRecords fails t unless got and want match field by field, telling nil
// from empty.
func equalRecords(t testing.TB, got, want []Record) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d records, want %d", len(got), len(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.Offset != w.Offset || g.Timestamp != w.Timestamp {
			t.Fatalf("record %d: offset/timestamp %d/%d, want %d/%d", i, g.Offset, g.Timestamp, w.Offset, w.Timestamp)
		}
		if !sameBytes(g.Key, w.Key) || !sameBytes(g.Value, w.Value) {
			t.Fatalf("record %d (offset %d): key %q value %.40q, want key %q value %.40q (nil: %v %v / %v %v)",
				i, w.Offset, g.Key, g.Value, w.Key, w.Value, g.Key == nil, g.Value == nil, w.Key == nil, w.Value == nil)
		}
		if len(g.Headers) != len(w.Headers) {
			t.Fatalf("record %d: %d headers, want %d", i, len(g.Headers), len(w.Headers))
		}
		for j := range w.Headers {
			if g.Headers[j].Key != w.Headers[j].Key || !sameBytes(g.Headers[j].Value, w.Headers[j].Value) {
				t.Fatalf("record %d header %d: %+v, want %+v", i, j, g.Headers[j], w.Headers[j])
			}
		}
	}
}

// sameBytes compares like bytes.Equal but tells nil from empty.
func sameBytes(a, b []byte) bool {
	return (a == nil) == (b == nil) && bytes.Equal(a, b)
}
