// Package record decodes the Records bytes of a Kafka fetch response (record
// batches of magic 2 and legacy message sets of magic 0 and 1, compressed
// with gzip, snappy, lz4 or zstd) and builds the magic 2 record batches of a
// Produce request (Builder).
// Decoding checks CRCs, trims to the requested offset, skips control
// batches, drops aborted transactions for read_committed, and bounds every
// allocation by the bytes it was given or by Decoder.MaxBatchBytes.
package record

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
)

// DefaultMaxBatchBytes is the decompressed size allowed per batch when
// Decoder.MaxBatchBytes is zero.
const DefaultMaxBatchBytes = 64 << 20

// Sentinel errors, wrapped with context by Append; test with errors.Is.
var (
	// ErrCorrupt reports bytes that are not a valid record batch or message
	// set: a CRC mismatch, a length or count that disagrees with the content,
	// an unknown magic, or compressed data that does not decompress.
	ErrCorrupt = errors.New("corrupt record data")
	// ErrTooLarge reports a batch that decompresses to more than
	// MaxBatchBytes (see Decoder.MaxBatchBytes for what else it caps).
	ErrTooLarge = errors.New("decompressed batch too large")
	// ErrUnsupportedCodec reports a compression codec this package does not
	// know: attribute values 5 to 7 in a batch, or a codec number or name
	// given to Builder.AppendTo or ParseCodec.
	ErrUnsupportedCodec = errors.New("unsupported compression codec")
)

// Header is one record header. A null header value is a nil Value.
type Header struct {
	Key   string
	Value []byte
}

// Record is one decoded Kafka record. Timestamp is in milliseconds since the
// epoch (-1 for magic 0 messages, which carry none); Key and Value are nil
// when null.
type Record struct {
	Offset, Timestamp int64
	Key, Value        []byte
	Headers           []Header
}

// AbortedTransaction is one entry of a fetch response's aborted transactions:
// the producer and the first offset of a transaction it aborted.
type AbortedTransaction struct {
	ProducerID, FirstOffset int64
}

// Decoder decodes the Records bytes of one fetched partition. The zero value
// is usable (MaxBatchBytes 0 means DefaultMaxBatchBytes). A Decoder is safe
// for concurrent use; the decompressors are pooled inside the package.
type Decoder struct {
	// MaxBatchBytes caps the decompressed size of one batch (or one legacy
	// compressed wrapper message); a batch over it fails with ErrTooLarge,
	// and so do a zstd frame that declares a window larger than it and a
	// batch whose decoded Record values alone would take more. One Append
	// call may decode to at most 4 times MaxBatchBytes in all.
	MaxBatchBytes int
	// StopAfterBytes, if positive, ends Append after the batch with which
	// the appended records' keys and values reach that many bytes, leaving
	// the rest of src undecoded: a caller that can use only so much saves
	// decompressing and decoding what it would drop.
	StopAfterBytes int

	// Observer, when not nil, is told about every batch (or legacy wrapper
	// message) that was decompressed.
	Observer Observer
}

// Observer receives decompression events, for metrics. Decompressed is
// called from the goroutine that runs Append, possibly from many at once, so
// it must be safe for concurrent use and cheap.
type Observer interface {
	// Decompressed reports one batch of codec ("gzip", "snappy", "lz4" or
	// "zstd") inflated from in to out bytes; failed is true when the batch
	// did not decompress (out then counts what was produced before that).
	Decompressed(codec string, in, out int, failed bool)
}

// CodecName returns the name of a compression codec number (the low three
// bits of a batch's attributes): "none", "gzip", "snappy", "lz4", "zstd", or
// "unknown". ParseCodec is its inverse.
func CodecName(codec int) string {
	switch codec {
	case CodecNone:
		return "none"
	case CodecGzip:
		return "gzip"
	case CodecSnappy:
		return "snappy"
	case CodecLz4:
		return "lz4"
	case CodecZstd:
		return "zstd"
	}
	return "unknown"
}

// ParseCodec returns the codec number of a name CodecName returns ("none",
// "gzip", "snappy", "lz4" or "zstd"), for a flag or a route that chooses the
// compression of produced batches. Another name fails with
// ErrUnsupportedCodec.
func ParseCodec(name string) (int, error) {
	for codec := CodecNone; codec <= CodecZstd; codec++ {
		if CodecName(codec) == name {
			return codec, nil
		}
	}
	return 0, fmt.Errorf("%w %q (none, gzip, snappy, lz4 or zstd)", ErrUnsupportedCodec, name)
}

// Compression codecs: the numbers of a batch's attributes' low three bits,
// as Builder.AppendTo takes them.
const (
	CodecNone   = 0
	CodecGzip   = 1
	CodecSnappy = 2
	CodecLz4    = 3
	CodecZstd   = 4
)

// Offsets inside the common prefix of a batch or legacy message.
const (
	lengthEnd = 12 // baseOffset int64 + length int32
	magicAt   = 16 // after the partition leader epoch (v2) or crc (v0/v1)
)

// Minimum values of the length field (the bytes after it) per magic.
const (
	minV0Size = 4 + 1 + 1 + 4 + 4 // crc, magic, attributes, key, value
	minV1Size = minV0Size + 8     // + timestamp
	minV2Size = BatchHeaderSize - lengthEnd
)

// Append decodes src (magic 0, 1 and 2; gzip, snappy raw+xerial, lz4 frame,
// zstd), appending to dst every record with Offset >= from; control batches
// are skipped; CRCs are checked (CRC-32C for v2, CRC-32 IEEE for v0/v1); a
// truncated trailing batch ends decoding without error.
// If aborted != nil (read_committed), records of aborted transactions are
// dropped.
//
// Ownership: Key/Value/Header values of uncompressed batches are sub-slices of
// src (valid as long as src is); of compressed batches, fresh memory owned by
// the records.
//
// On error the returned slice holds dst plus the records of the batches that
// decoded before the failing one.
func (d *Decoder) Append(dst []Record, src []byte, from int64, aborted []AbortedTransaction) ([]Record, error) {
	limit := d.MaxBatchBytes
	if limit <= 0 {
		limit = DefaultMaxBatchBytes
	}
	st := state{limit: limit, left: totalBatches * limit, from: from, obs: d.Observer}
	out := 0 // key and value bytes appended, for StopAfterBytes
	if aborted != nil {
		st.aborts = newAborter(aborted)
	}
	for len(src) >= lengthEnd {
		base := int64(binary.BigEndian.Uint64(src))
		size := int64(int32(binary.BigEndian.Uint32(src[8:])))
		if size < minV0Size {
			return dst, fmt.Errorf("decode batch at offset %d: %w: length %d below the minimum %d", base, ErrCorrupt, size, minV0Size)
		}
		if len(src) <= magicAt {
			break // truncated trailing batch
		}
		magic := src[magicAt]
		var minSize int64
		switch magic {
		case 0:
			minSize = minV0Size
		case 1:
			minSize = minV1Size
		case 2:
			minSize = minV2Size
		default:
			return dst, fmt.Errorf("decode batch at offset %d: %w: unknown magic %d", base, ErrCorrupt, magic)
		}
		if size < minSize {
			return dst, fmt.Errorf("decode magic %d batch at offset %d: %w: length %d below the minimum %d", magic, base, ErrCorrupt, size, minSize)
		}
		end := lengthEnd + size
		if int64(len(src)) < end {
			break // truncated trailing batch: normal at the end of a fetch
		}
		batch := src[:end]
		src = src[end:]
		n := len(dst)
		var err error
		if magic == 2 {
			dst, err = st.appendBatch(dst, batch)
		} else {
			dst, err = st.appendLegacy(dst, batch)
		}
		if err != nil {
			return dst[:n], fmt.Errorf("decode magic %d batch at offset %d: %w", magic, base, err)
		}
		if d.StopAfterBytes > 0 {
			for _, r := range dst[n:] {
				out += len(r.Key) + len(r.Value)
			}
			if out >= d.StopAfterBytes {
				break
			}
		}
	}
	return dst, nil
}

// state is what one Append call carries from batch to batch.
type state struct {
	limit  int // decompressed bytes per batch
	left   int // decoded bytes the rest of this Append call may take
	from   int64
	aborts aborter // nil for read_uncommitted
	obs    Observer
}

// totalBatches is how many full batches' worth of decoded memory one Append
// call may take, so a response packed with many batches just under the
// per-batch cap still cannot grow without bound.
const totalBatches = 4

// room is what the next batch may decode to: the per-batch cap, or less when
// the call's total budget is nearly spent.
func (st *state) room() int { return max(0, min(st.limit, st.left)) }

// decompress inflates one batch (or legacy wrapper) within room and charges
// the result to the call's budget.
func (st *state) decompress(codec int, src []byte) ([]byte, error) {
	out, err := decompress(codec, src, st.limit, st.room())
	st.left -= len(out)
	if st.obs != nil {
		st.obs.Decompressed(CodecName(codec), len(src), len(out), err != nil)
	}
	return out, err
}

// corrupt returns ErrCorrupt wrapped with a description.
func corrupt(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrCorrupt, fmt.Sprintf(format, args...))
}

// wrapf prefixes err with a description, keeping it for errors.Is.
func wrapf(err error, format string, args ...any) error {
	return fmt.Errorf("%s: %w", fmt.Sprintf(format, args...), err)
}

// itoa formats v in base 10.
func itoa(v int64) string { return strconv.FormatInt(v, 10) }
