package record

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"math/bits"
	"slices"
)

// DefaultMaxMessageBytes is the batch size cap of a Builder whose MaxBytes
// is zero: the broker's default max.message.bytes (message.max.bytes),
// 1 MiB plus 12 bytes.
const DefaultMaxMessageBytes = 1<<20 + 12

// Errors of Builder.Add; test with errors.Is.
var (
	// ErrBatchFull reports a record that does not fit in the batch being
	// built but would in an empty one: send the batch, Reset the Builder
	// and add the record again. It is returned as is, never wrapped.
	ErrBatchFull = errors.New("record batch full")
	// ErrRecordTooLarge reports a record that does not fit even in a
	// batch of its own: it can never be produced under that cap.
	ErrRecordTooLarge = errors.New("record too large")
)

// Producer is what a record batch tells the broker of the producer that
// sent it, for idempotence: its producer ID and epoch (from InitProducerID)
// and the sequence number of the batch's first record. The producer's next
// batch to the partition starts at Sequence plus the record count of this
// one, wrapping past math.MaxInt32 to 0. A producer that is not idempotent
// sends NoProducer.
type Producer struct {
	ID       int64
	Epoch    int16
	Sequence int32
}

// NoProducer marks a batch of a producer that is not idempotent: producer
// ID, epoch and base sequence -1.
var NoProducer = Producer{ID: -1, Epoch: -1, Sequence: -1}

// Builder builds one magic 2 record batch, as a Produce request carries for
// one partition: records are added one at a time (Add encodes each at once,
// so the caller may reuse its key and value bytes as soon as Add returns),
// then AppendTo compresses them and appends the whole batch to the
// request's buffer. Reset readies the Builder for the next batch, keeping
// its buffer, so that steady-state building does not allocate.
//
// The batch has base offset 0 and partition leader epoch -1 (the broker
// assigns both), timestamp type CreateTime (each Record's Timestamp, which
// the caller sets: milliseconds since the epoch), base timestamp that of
// the first record added, and is neither transactional nor a control
// batch. A Record's Offset is ignored: the records take offset deltas 0, 1,
// 2... in the order added. Nil Key, Value and header Value encode as null.
//
// The zero value is ready to use, with a cap of DefaultMaxMessageBytes. A
// Builder must not be copied after first use or used by two goroutines at
// once.
type Builder struct {
	// MaxBytes caps the batch's size before compression, from its base
	// offset to its end: Add refuses a record past it. AppendTo never
	// returns a larger batch (it sends the records uncompressed when the
	// codec does not make them smaller), so a cap at the broker's
	// max.message.bytes (and at most the Produce request's size limit less
	// its header) keeps every batch acceptable. Zero means
	// DefaultMaxMessageBytes; a value over math.MaxInt32 (what the batch's
	// length field holds) counts as math.MaxInt32.
	MaxBytes int

	records           []byte // the records, encoded and uncompressed
	count             int32
	baseTime, maxTime int64
}

// Add appends r to the batch. If r does not fit under MaxBytes it returns
// an error wrapping ErrRecordTooLarge when a batch of r alone would not
// either, and ErrBatchFull otherwise (send the batch first); either way the
// batch is unchanged.
func (b *Builder) Add(r Record) error {
	baseTime := b.baseTime
	if b.count == 0 {
		baseTime = r.Timestamp
	}
	tsDelta := r.Timestamp - baseTime
	body := recordBodySize(&r, b.count, tsDelta)
	size := varintSize(int64(body)) + body
	if limit := b.maxBytes(); BatchHeaderSize+len(b.records)+size > limit {
		if alone := BatchHeaderSize + RecordSize(r); alone > limit {
			return fmt.Errorf("add record: %w: a batch of it alone takes %d bytes, over the %d-byte cap", ErrRecordTooLarge, alone, limit)
		}
		return ErrBatchFull
	}
	dst := binary.AppendVarint(b.records, int64(body))
	dst = append(dst, 0) // record attributes: unused
	dst = binary.AppendVarint(dst, tsDelta)
	dst = binary.AppendVarint(dst, int64(b.count))
	dst = appendNullable(dst, r.Key)
	dst = appendNullable(dst, r.Value)
	dst = binary.AppendVarint(dst, int64(len(r.Headers)))
	for _, h := range r.Headers {
		dst = binary.AppendVarint(dst, int64(len(h.Key)))
		dst = append(dst, h.Key...)
		dst = appendNullable(dst, h.Value)
	}
	b.records = dst
	if b.count == 0 || r.Timestamp > b.maxTime {
		b.maxTime = r.Timestamp
	}
	b.baseTime = baseTime
	b.count++
	return nil
}

// Len returns the number of records added since the last Reset.
func (b *Builder) Len() int { return int(b.count) }

// Size returns the size of the batch before compression: BatchHeaderSize
// plus the encoded records. The batch AppendTo appends is at most that.
func (b *Builder) Size() int { return BatchHeaderSize + len(b.records) }

// Reset empties the batch, keeping the memory its records took for the
// next one.
func (b *Builder) Reset() {
	b.records = b.records[:0]
	b.count = 0
}

// AppendTo appends the batch of the records added, compressed with codec
// (CodecNone, CodecGzip, CodecSnappy, CodecLz4 or CodecZstd) and stamped
// with p, to dst, and returns the extended buffer. When the codec does not
// make the records smaller (a few short records), the batch carries them
// uncompressed. The Builder is unchanged: a retry may append the same batch
// again. It fails on an unknown codec (ErrUnsupportedCodec) and on an empty
// batch, which no broker accepts; on error dst is returned as it was.
//
// The codecs write what Kafka's Java producer reads and writes: gzip at the
// default level; snappy as one raw snappy block (see snappyAppend); lz4 as
// an LZ4 frame of 64 KiB independent blocks without checksums, the frame
// Java's Lz4BlockOutputStream writes; zstd as one frame at the default
// level with a 64 KiB window.
func (b *Builder) AppendTo(dst []byte, p Producer, codec int) ([]byte, error) {
	if b.count == 0 {
		return dst, errors.New("encode record batch: no records")
	}
	if codec < CodecNone || codec > CodecZstd {
		return dst, fmt.Errorf("encode record batch: %w %d", ErrUnsupportedCodec, codec)
	}
	start := len(dst)
	dst = slices.Grow(dst, b.Size())
	dst = binary.BigEndian.AppendUint64(dst, 0)          // base offset: the broker assigns it
	dst = binary.BigEndian.AppendUint32(dst, 0)          // length, below
	dst = binary.BigEndian.AppendUint32(dst, 0xffffffff) // partition leader epoch -1: the broker sets it
	dst = append(dst, 2)                                 // magic
	dst = binary.BigEndian.AppendUint32(dst, 0)          // crc, below
	dst = binary.BigEndian.AppendUint16(dst, 0)          // attributes, below
	dst = binary.BigEndian.AppendUint32(dst, uint32(b.count-1))
	dst = binary.BigEndian.AppendUint64(dst, uint64(b.baseTime))
	dst = binary.BigEndian.AppendUint64(dst, uint64(b.maxTime))
	dst = binary.BigEndian.AppendUint64(dst, uint64(p.ID))
	dst = binary.BigEndian.AppendUint16(dst, uint16(p.Epoch))
	dst = binary.BigEndian.AppendUint32(dst, uint32(p.Sequence))
	dst = binary.BigEndian.AppendUint32(dst, uint32(b.count))
	recordsAt := len(dst)
	used := CodecNone
	if codec != CodecNone {
		var err error
		if dst, err = compress(dst, codec, b.records); err != nil {
			return dst[:start], fmt.Errorf("encode record batch of %d records: %s: %w", b.count, CodecName(codec), err)
		}
		if len(dst)-recordsAt < len(b.records) {
			used = codec
		} else {
			dst = dst[:recordsAt]
		}
	}
	if used == CodecNone {
		dst = append(dst, b.records...)
	}
	batch := dst[start:]
	binary.BigEndian.PutUint32(batch[8:], uint32(len(batch)-lengthEnd))
	binary.BigEndian.PutUint16(batch[attributesAt:], uint16(used)) // CreateTime, not transactional, not control
	binary.BigEndian.PutUint32(batch[crcAt:], crc32.Checksum(batch[attributesAt:], castagnoli))
	return dst, nil
}

// RecordSize returns the bytes r takes in a batch before compression when
// it is the batch's first record (offset and timestamp deltas 0; a later
// record takes up to 14 bytes more for them). A batch of r alone is
// BatchHeaderSize + RecordSize(r) bytes: a caller refuses, before batching,
// a record for which that is over the broker's max.message.bytes, as
// Kafka's Java producer does, since compression cannot be counted on.
func RecordSize(r Record) int {
	body := recordBodySize(&r, 0, 0)
	return varintSize(int64(body)) + body
}

// recordBodySize is the size of r's encoding after its length varint, at
// offset delta offsetDelta and timestamp delta tsDelta.
func recordBodySize(r *Record, offsetDelta int32, tsDelta int64) int {
	n := 1 + varintSize(tsDelta) + varintSize(int64(offsetDelta)) +
		nullableSize(r.Key) + nullableSize(r.Value) + varintSize(int64(len(r.Headers)))
	for _, h := range r.Headers {
		n += varintSize(int64(len(h.Key))) + len(h.Key) + nullableSize(h.Value)
	}
	return n
}

// maxBytes is the cap Add applies.
func (b *Builder) maxBytes() int {
	if b.MaxBytes <= 0 {
		return DefaultMaxMessageBytes
	}
	return min(b.MaxBytes, math.MaxInt32)
}

// varintSize is the length of v as a zigzag varint.
func varintSize(v int64) int {
	u := uint64(v<<1) ^ uint64(v>>63)
	return (bits.Len64(u|1) + 6) / 7
}

// nullableSize is the length of b as varint-length bytes (-1 for nil).
func nullableSize(b []byte) int {
	if b == nil {
		return 1
	}
	return varintSize(int64(len(b))) + len(b)
}

// appendNullable appends b as varint-length bytes, length -1 for nil.
func appendNullable(dst, b []byte) []byte {
	if b == nil {
		return append(dst, 1) // -1 as a zigzag varint
	}
	dst = binary.AppendVarint(dst, int64(len(b)))
	return append(dst, b...)
}
