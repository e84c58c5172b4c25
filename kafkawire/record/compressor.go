package record

import (
	"fmt"
	"io"
	"runtime"
	"slices"
	"sync"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

// The compressors of Builder.AppendTo. Each appends to the caller's buffer;
// the stateful ones (gzip, lz4, zstd) are pooled, so that steady-state
// compression allocates nothing. What each writes is what every Kafka
// decoder reads: the broker's (Java), librdkafka's, franz-go's and this
// package's.

// compressors append src compressed with each codec to dst.
var compressors = [...]func(dst, src []byte) ([]byte, error){
	CodecGzip:   gzipAppend,
	CodecSnappy: snappyAppend,
	CodecLz4:    lz4Append,
	CodecZstd:   zstdAppend,
}

// compress appends src compressed with codec to dst.
func compress(dst []byte, codec int, src []byte) ([]byte, error) {
	if codec <= CodecNone || codec >= len(compressors) {
		return dst, fmt.Errorf("%w %d", ErrUnsupportedCodec, codec)
	}
	return compressors[codec](dst, src)
}

// appender is an io.Writer that appends to b.
type appender struct{ b []byte }

func (a *appender) Write(p []byte) (int, error) {
	a.b = append(a.b, p...)
	return len(p), nil
}

// streamEncoder is a pooled streaming encoder (gzip, lz4) with the buffer
// it appends to; err is set if its options could not be applied (never,
// with the options used).
type streamEncoder struct {
	zw interface {
		io.WriteCloser
		Reset(io.Writer)
	}
	out appender
	err error
}

// appendStream appends src encoded by a streaming encoder of pool to dst.
func appendStream(pool *sync.Pool, dst, src []byte) ([]byte, error) {
	w := pool.Get().(*streamEncoder)
	if w.err != nil {
		return dst, w.err
	}
	defer pool.Put(w)
	w.out.b = dst
	w.zw.Reset(&w.out)
	_, err := w.zw.Write(src)
	if err == nil {
		err = w.zw.Close()
	}
	dst, w.out.b = w.out.b, nil
	return dst, err
}

var gzipEncoders = sync.Pool{New: func() any {
	w := new(streamEncoder)
	w.zw, w.err = gzip.NewWriterLevel(&w.out, gzip.DefaultCompression)
	return w
}}

// gzipAppend appends one gzip member at the default level, as Java's
// GZIPOutputStream writes.
func gzipAppend(dst, src []byte) ([]byte, error) { return appendStream(&gzipEncoders, dst, src) }

// snappyAppend appends src as one raw snappy block (no framing), as
// librdkafka and franz-go write it. Kafka's Java producer writes snappy in
// xerial framing instead, but every reader takes both: Java's
// SnappyInputStream decodes input without the xerial magic as one raw
// block, and librdkafka, franz-go and this package's Decoder look for the
// magic first. A raw block cannot start with the whole magic (its eight
// bytes are not a valid block start), so the two never mix up.
func snappyAppend(dst, src []byte) ([]byte, error) {
	n := s2.MaxEncodedLen(len(src))
	if n < 0 {
		return dst, fmt.Errorf("%d bytes too large for snappy", len(src))
	}
	dst = slices.Grow(dst, n)
	// With room for n bytes, EncodeSnappy writes in place after dst.
	out := s2.EncodeSnappy(dst[len(dst):], src)
	return dst[:len(dst)+len(out)], nil
}

var lz4Encoders = sync.Pool{New: func() any {
	w := new(streamEncoder)
	zw := lz4.NewWriter(&w.out)
	w.zw, w.err = zw, zw.Apply(lz4.BlockSizeOption(lz4.Block64Kb), lz4.ChecksumOption(false), lz4.ConcurrencyOption(1))
	return w
}}

// lz4Append appends one LZ4 frame of src with the frame descriptor Java's
// Lz4BlockOutputStream writes (magic, then 60 40 82): version 1,
// independent blocks of at most 64 KiB, no block or content checksum and
// no content size; an incompressible block is stored as is, as Java
// stores it. Java's Lz4BlockInputStream reads all of that (it refuses
// dependent blocks); pierrec/lz4's defaults would add a content checksum,
// which Java never writes, and 4 MiB blocks, where 64 KiB keeps every
// decoder's block buffer small. The level is lz4's fast default, which
// Java uses too.
func lz4Append(dst, src []byte) ([]byte, error) { return appendStream(&lz4Encoders, dst, src) }

// zstdEncoder wraps a pooled encoder so that a cleanup can close it when
// the pool drops it; err is set if it could not be built (never, with these
// options).
type zstdEncoder struct {
	e   *zstd.Encoder
	err error
}

var zstdEncoders = sync.Pool{New: func() any {
	e, err := zstd.NewWriter(nil,
		zstd.WithEncoderConcurrency(1),
		zstd.WithWindowSize(zstdWindow),
		zstd.WithZeroFrames(true),
	)
	if err != nil {
		return &zstdEncoder{err: err}
	}
	ze := &zstdEncoder{e: e}
	runtime.AddCleanup(ze, func(e *zstd.Encoder) { e.Close() }, e)
	return ze
}}

// zstdWindow is the window of the zstd frames written, as franz-go writes
// them. Every frame declares its content size, and no decoder (the
// broker's validation, every consumer) needs more than 64 KiB of window for
// one; a batch larger than that compresses a little less than it would
// with a larger window.
const zstdWindow = 64 << 10

// zstdAppend appends one zstd frame of src (with its content checksum) at
// the default level.
func zstdAppend(dst, src []byte) ([]byte, error) {
	ze := zstdEncoders.Get().(*zstdEncoder)
	if ze.err != nil {
		return dst, fmt.Errorf("new zstd encoder: %w", ze.err)
	}
	defer zstdEncoders.Put(ze)
	return ze.e.EncodeAll(src, dst), nil
}
