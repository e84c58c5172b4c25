package record

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"math"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/snappy"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// The Builder's own tests: round trips through the Decoder, the batch
// fields checked against franz-go's kmsg (byte for byte when
// uncompressed), the size cap, and what each codec writes.

// produceCodecs are the codecs a Builder writes.
var produceCodecs = []int{CodecNone, CodecGzip, CodecSnappy, CodecLz4, CodecZstd}

// build encodes recs as one batch with a fresh Builder of no cap.
func build(t testing.TB, recs []Record, p Producer, codec int) []byte {
	t.Helper()
	b := Builder{MaxBytes: math.MaxInt32}
	for i, r := range recs {
		if err := b.Add(r); err != nil {
			t.Fatalf("Add record %d: %v", i, err)
		}
	}
	out, err := b.AppendTo(nil, p, codec)
	if err != nil {
		t.Fatalf("AppendTo %s: %v", CodecName(codec), err)
	}
	return out
}

// asProduced returns recs as decoding their batch returns them: offsets
// from 0 in order.
func asProduced(recs []Record) []Record {
	out := make([]Record, len(recs))
	for i, r := range recs {
		r.Offset = int64(i)
		out[i] = r
	}
	return out
}

// encodeCases are record sets for the round trips: nil, empty and set keys
// and values, headers with nil and empty values, timestamps out of order and
// far apart (negative and 10-byte deltas), values from none to several
// lz4 blocks and zstd windows.
func encodeCases() map[string][]Record {
	shuffled := testRecords(0, 50, 40)
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range shuffled {
		shuffled[i].Timestamp = 1_700_000_000_000 + rng.Int64N(100_000) - 50_000
	}
	shuffled[7].Timestamp = -1
	shuffled[8].Timestamp = math.MaxInt64 / 2
	return map[string][]Record{
		"one":       {{Timestamp: 1_700_000_000_000, Value: []byte("v")}},
		"null-both": {{Timestamp: 5}, {Timestamp: 5, Key: []byte{}, Value: []byte{}}},
		"varied":    testRecords(0, 300, 100),
		"shuffled":  shuffled,
		"large":     testRecords(0, 4, 200_000),
		"headers": {{Timestamp: 9, Key: []byte("k"), Value: []byte("v"), Headers: []Header{
			{Key: "", Value: nil}, {Key: "a", Value: []byte{}}, {Key: strings.Repeat("h", 300), Value: bytes.Repeat([]byte{0xff}, 300)},
		}}},
	}
}

func TestBuilderRoundTrip(t *testing.T) {
	p := Producer{ID: 1234567890123, Epoch: 7, Sequence: 1 << 30}
	for name, recs := range encodeCases() {
		for _, codec := range produceCodecs {
			t.Run(name+"/"+CodecName(codec), func(t *testing.T) {
				batch := build(t, recs, p, codec)
				got, err := new(Decoder).Append(nil, batch, 0, nil)
				if err != nil {
					t.Fatal(err)
				}
				equalRecords(t, got, asProduced(recs))
				checkHeader(t, batch, recs, p)
				if len(batch) > BatchHeaderSize+sumSizes(recs) {
					t.Fatalf("batch of %d bytes, over its uncompressed size", len(batch))
				}
			})
		}
	}
}

// sumSizes is what recs take uncompressed in a batch, computed with
// kmsg's encoder.
func sumSizes(recs []Record) int { return len(kmsgRecords(recs)) }

// checkHeader reads batch with kmsg and checks every header field but the
// codec, which TestBuilderCodecs checks.
func checkHeader(t *testing.T, batch []byte, recs []Record, p Producer) {
	t.Helper()
	var kb kmsg.RecordBatch
	if err := kb.ReadFrom(batch); err != nil {
		t.Fatalf("kmsg cannot read the batch: %v", err)
	}
	maxTime := recs[0].Timestamp
	for _, r := range recs {
		maxTime = max(maxTime, r.Timestamp)
	}
	want := kmsg.RecordBatch{
		FirstOffset: 0, Length: int32(len(batch) - lengthEnd), PartitionLeaderEpoch: -1, Magic: 2,
		CRC: int32(crc32.Checksum(batch[attributesAt:], castagnoli)), Attributes: kb.Attributes & attrCodecMask,
		LastOffsetDelta: int32(len(recs) - 1), FirstTimestamp: recs[0].Timestamp, MaxTimestamp: maxTime,
		ProducerID: p.ID, ProducerEpoch: p.Epoch, FirstSequence: p.Sequence, NumRecords: int32(len(recs)),
	}
	kb.Records = nil
	if !reflect.DeepEqual(kb, want) {
		t.Fatalf("batch header\n%+v, want\n%+v", kb, want)
	}
}

// kmsgRecords encodes recs with kmsg, as franz-go's producer does, offset
// deltas from 0 and timestamp deltas from the first record's.
func kmsgRecords(recs []Record) []byte {
	var out []byte
	for i, r := range recs {
		kr := kmsg.Record{TimestampDelta64: r.Timestamp - recs[0].Timestamp, OffsetDelta: int32(i), Key: r.Key, Value: r.Value}
		for _, h := range r.Headers {
			kr.Headers = append(kr.Headers, kmsg.Header{Key: h.Key, Value: h.Value})
		}
		kr.Length = int32(len(kr.AppendTo(nil)) - 1) // everything after a 1-byte length 0
		out = kr.AppendTo(out)
	}
	return out
}

// TestBuilderMatchesKmsg: uncompressed, the batch is byte for byte the one
// kmsg's types encode; compressed, franz-go's decompressor gives back those
// same record bytes.
func TestBuilderMatchesKmsg(t *testing.T) {
	dec := kgo.DefaultDecompressor()
	for name, recs := range encodeCases() {
		for _, p := range []Producer{NoProducer, {ID: 42, Epoch: 3, Sequence: math.MaxInt32 - 1}} {
			raw := kmsgRecords(recs)
			maxTime := recs[0].Timestamp
			for _, r := range recs {
				maxTime = max(maxTime, r.Timestamp)
			}
			kb := kmsg.RecordBatch{
				PartitionLeaderEpoch: -1, Magic: 2, LastOffsetDelta: int32(len(recs) - 1),
				FirstTimestamp: recs[0].Timestamp, MaxTimestamp: maxTime,
				ProducerID: p.ID, ProducerEpoch: p.Epoch, FirstSequence: p.Sequence, NumRecords: int32(len(recs)), Records: raw,
			}
			kb.Length = int32(len(kb.AppendTo(nil)) - lengthEnd)
			kb.CRC = int32(crc32.Checksum(kb.AppendTo(nil)[attributesAt:], castagnoli))
			if got, want := build(t, recs, p, CodecNone), kb.AppendTo(nil); !bytes.Equal(got, want) {
				t.Fatalf("%s: uncompressed batch differs from kmsg's\n got %x\nwant %x", name, got[:min(len(got), 120)], want[:min(len(want), 120)])
			}
			for _, codec := range produceCodecs[1:] {
				batch := build(t, recs, p, codec)
				if used := int(binary.BigEndian.Uint16(batch[attributesAt:]) & attrCodecMask); used == CodecNone {
					continue // not smaller compressed: TestBuilderCodecs covers it
				}
				got, err := dec.Decompress(batch[BatchHeaderSize:], kgo.CompressionCodecType(codec))
				if err != nil || !bytes.Equal(got, raw) {
					t.Fatalf("%s %s: franz-go decompresses %d bytes (%v), want the %d record bytes", name, CodecName(codec), len(got), err, len(raw))
				}
			}
		}
	}
}

// TestBuilderCodecs checks what each codec writes with decoders other than
// the package's, and that a batch the codec does not shrink goes
// uncompressed.
func TestBuilderCodecs(t *testing.T) {
	recs := testRecords(0, 100, 300)
	raw := kmsgRecords(recs)
	for _, codec := range produceCodecs {
		batch := build(t, recs, NoProducer, codec)
		if used := int(binary.BigEndian.Uint16(batch[attributesAt:]) & attrCodecMask); used != codec {
			t.Fatalf("%s: batch codec %d", CodecName(codec), used)
		}
		data := batch[BatchHeaderSize:]
		var got []byte
		var err error
		switch codec {
		case CodecNone:
			got = data
		case CodecGzip:
			var zr *gzip.Reader
			if zr, err = gzip.NewReader(bytes.NewReader(data)); err == nil {
				got, err = io.ReadAll(zr)
			}
		case CodecSnappy:
			if bytes.HasPrefix(data, xerialMagic) {
				t.Fatal("snappy: xerial framing, want a raw block")
			}
			got, err = snappy.Decode(nil, data)
		case CodecLz4:
			// Java's Lz4BlockOutputStream descriptor: version 1, independent
			// blocks, no checksums, no size; 64 KiB blocks; its checksum byte.
			if want := []byte{0x04, 0x22, 0x4d, 0x18, 0x60, 0x40, 0x82}; !bytes.HasPrefix(data, want) {
				t.Fatalf("lz4 frame starts % x, want % x", data[:7], want)
			}
			got, err = io.ReadAll(lz4.NewReader(bytes.NewReader(data)))
		case CodecZstd:
			var zd *zstd.Decoder
			if zd, err = zstd.NewReader(nil); err == nil {
				got, err = zd.DecodeAll(data, nil)
				zd.Close()
			}
		}
		if err != nil || !bytes.Equal(got, raw) {
			t.Fatalf("%s: decoded %d bytes (%v), want %d", CodecName(codec), len(got), err, len(raw))
		}
	}
	// Incompressible records, and a single short one: sent uncompressed.
	noise := make([]byte, 2000)
	for i := range noise {
		noise[i] = byte(rand.Uint32())
	}
	for _, recs := range [][]Record{{{Value: noise}}, {{Value: []byte("x")}}} {
		for _, codec := range produceCodecs {
			batch := build(t, recs, NoProducer, codec)
			if used := binary.BigEndian.Uint16(batch[attributesAt:]) & attrCodecMask; used != CodecNone {
				t.Fatalf("%s of %d bytes: codec %d, want none (compressing it does not shrink it)", CodecName(codec), len(recs[0].Value), used)
			}
			if !bytes.Equal(batch, build(t, recs, NoProducer, CodecNone)) {
				t.Fatalf("%s: fallback batch differs from the uncompressed one", CodecName(codec))
			}
		}
	}
}

// TestBuilderLargeLz4 checks that a batch over 64 KiB is several lz4 blocks
// of at most 64 KiB, which Java's reader takes (it sizes its buffer from the
// descriptor).
func TestBuilderLargeLz4(t *testing.T) {
	batch := build(t, testRecords(0, 3, 100_000), NoProducer, CodecLz4)
	frame := batch[BatchHeaderSize+7:]
	blocks := 0
	for {
		n := binary.LittleEndian.Uint32(frame)
		frame = frame[4:]
		if n == 0 {
			break
		}
		size := int(n &^ 0x80000000)
		if size > 64<<10 {
			t.Fatalf("lz4 block of %d bytes", size)
		}
		frame = frame[size:]
		blocks++
	}
	if blocks < 5 || len(frame) != 0 {
		t.Fatalf("%d blocks, %d bytes after the end mark", blocks, len(frame))
	}
}

func TestBuilderCap(t *testing.T) {
	rec := Record{Timestamp: 1_700_000_000_000, Key: []byte("key"), Value: bytes.Repeat([]byte("v"), 100)}
	one := BatchHeaderSize + RecordSize(rec)
	if got := len(build(t, []Record{rec}, NoProducer, CodecNone)); got != one {
		t.Fatalf("BatchHeaderSize + RecordSize = %d, batch of it alone %d bytes", one, got)
	}

	// A cap of exactly one record's batch: it fits, a second does not.
	b := Builder{MaxBytes: one}
	if err := b.Add(rec); err != nil {
		t.Fatalf("record at exactly the cap: %v", err)
	}
	if b.Size() != one || b.Len() != 1 {
		t.Fatalf("Size %d Len %d, want %d 1", b.Size(), b.Len(), one)
	}
	before, _ := b.AppendTo(nil, NoProducer, CodecNone)
	if err := b.Add(rec); err != ErrBatchFull {
		t.Fatalf("second record over the cap: %v, want ErrBatchFull", err)
	}
	// A record too large for any batch is refused as such, also when the
	// batch holds records.
	if err := b.Add(Record{Value: make([]byte, one)}); !errors.Is(err, ErrRecordTooLarge) {
		t.Fatalf("record over the cap alone, batch not empty: %v, want ErrRecordTooLarge", err)
	}
	if after, _ := b.AppendTo(nil, NoProducer, CodecNone); !bytes.Equal(before, after) || b.Len() != 1 {
		t.Fatal("a refused record changed the batch")
	}
	// One byte less: the record alone is too large.
	b = Builder{MaxBytes: one - 1}
	err := b.Add(rec)
	if !errors.Is(err, ErrRecordTooLarge) || b.Len() != 0 {
		t.Fatalf("record over the cap in an empty batch: %v, Len %d", err, b.Len())
	}
	t.Log(err)

	// Filling a batch: Add refuses at the cap, and the batch stays under it
	// with every codec; the refused record opens the next batch.
	const limit = 16 << 10
	recs := testRecords(0, 1000, 100)
	for _, codec := range produceCodecs {
		b := Builder{MaxBytes: limit}
		var got []Record
		var batches int
		flush := func() {
			batch, err := b.AppendTo(nil, NoProducer, codec)
			if err != nil {
				t.Fatal(err)
			}
			if len(batch) > limit || len(batch) > b.Size() {
				t.Fatalf("%s: batch of %d bytes, Size %d, cap %d", CodecName(codec), len(batch), b.Size(), limit)
			}
			dec, err := new(Decoder).Append(nil, batch, 0, nil)
			if err != nil {
				t.Fatal(err)
			}
			base := int64(len(got))
			for _, r := range dec {
				r.Offset += base
				got = append(got, r)
			}
			batches++
			b.Reset()
		}
		for _, r := range recs {
			err := b.Add(r)
			if err == ErrBatchFull {
				if b.Size() > limit || b.Size()+RecordSize(r) <= limit {
					t.Fatalf("ErrBatchFull at Size %d for a %d-byte record", b.Size(), RecordSize(r))
				}
				flush()
				err = b.Add(r)
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		flush()
		if batches < 5 {
			t.Fatalf("%s: %d batches", CodecName(codec), batches)
		}
		equalRecords(t, got, asProduced(recs))
	}

	// The zero value caps at Kafka's default max.message.bytes.
	var z Builder
	big := Record{Value: make([]byte, DefaultMaxMessageBytes)}
	if err := z.Add(big); !errors.Is(err, ErrRecordTooLarge) {
		t.Fatalf("zero Builder, %d-byte value: %v", len(big.Value), err)
	}
	for BatchHeaderSize+RecordSize(big) > DefaultMaxMessageBytes {
		big.Value = big.Value[:len(big.Value)-1]
	}
	if err := z.Add(big); err != nil || z.Size() != DefaultMaxMessageBytes {
		t.Fatalf("zero Builder, a record of the whole cap: %v, Size %d", err, z.Size())
	}
}

// TestBuilderReuse: a retry appends the same batch, Reset starts a clean
// one, and AppendTo keeps what dst held.
func TestBuilderReuse(t *testing.T) {
	recs := testRecords(0, 20, 50)
	p := Producer{ID: 5, Epoch: 1, Sequence: 20}
	var b Builder
	for _, codec := range produceCodecs {
		b.Reset()
		for _, r := range recs[:3] {
			if err := b.Add(r); err != nil {
				t.Fatal(err)
			}
		}
		b.Reset()
		for _, r := range recs {
			if err := b.Add(r); err != nil {
				t.Fatal(err)
			}
		}
		want := build(t, recs, p, codec)
		prefix := []byte("request header")
		first, err := b.AppendTo(bytes.Clone(prefix), p, codec)
		if err != nil {
			t.Fatal(err)
		}
		again, _ := b.AppendTo(first, p, codec)
		if !bytes.Equal(first, append(bytes.Clone(prefix), want...)) || !bytes.Equal(again[len(first):], want) {
			t.Fatalf("%s: reused Builder's batch differs from a fresh one's", CodecName(codec))
		}
	}
	b.Reset()
	if out, err := b.AppendTo([]byte("x"), NoProducer, CodecNone); err == nil || string(out) != "x" {
		t.Fatalf("empty batch: %q, %v", out, err)
	}
	if err := b.Add(recs[0]); err != nil {
		t.Fatal(err)
	}
	if out, err := b.AppendTo([]byte("x"), NoProducer, 5); !errors.Is(err, ErrUnsupportedCodec) || string(out) != "x" {
		t.Fatalf("codec 5: %q, %v", out, err)
	}
}

func TestParseCodec(t *testing.T) {
	for _, codec := range produceCodecs {
		if got, err := ParseCodec(CodecName(codec)); err != nil || got != codec {
			t.Fatalf("ParseCodec(%q) = %d, %v", CodecName(codec), got, err)
		}
	}
	for _, name := range []string{"unknown", "LZ4", ""} {
		if _, err := ParseCodec(name); !errors.Is(err, ErrUnsupportedCodec) {
			t.Fatalf("ParseCodec(%q): %v", name, err)
		}
	}
}

// TestBuilderAllocs: once warm, building and encoding a batch allocates
// nothing, whatever the codec.
func TestBuilderAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool drops items at random under -race")
	}
	recs := testRecords(0, 50, 100)
	var b Builder
	dst := make([]byte, 0, 64<<10)
	for _, codec := range produceCodecs {
		n := testing.AllocsPerRun(50, func() {
			b.Reset()
			for _, r := range recs {
				if err := b.Add(r); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := b.AppendTo(dst[:0], NoProducer, codec); err != nil {
				t.Fatal(err)
			}
		})
		if n > 0 {
			t.Errorf("%s: %.1f allocations a batch", CodecName(codec), n)
		}
	}
}
