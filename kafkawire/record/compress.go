package record

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"runtime"
	"slices"
	"sync"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/snappy"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

// decompress returns the decompressed form of src in fresh memory, failing
// with ErrTooLarge as soon as it would exceed limit bytes. window is the
// Decoder's per-batch cap (limit is at most that), which sizes the pooled
// zstd decoders: a fixed value per Decoder, so their pools stay few.
func decompress(codec int, src []byte, window, limit int) ([]byte, error) {
	switch codec {
	case CodecGzip:
		return gunzip(src, limit)
	case CodecSnappy:
		return unsnappy(src, limit)
	case CodecLz4:
		return unlz4(src, limit)
	case CodecZstd:
		return unzstd(src, window, limit)
	default:
		return nil, fmt.Errorf("%w %d", ErrUnsupportedCodec, codec)
	}
}

// gzipReader is a pooled gzip decoder with the reader it reads from, so that
// a decompression allocates neither.
type gzipReader struct {
	zr  gzip.Reader
	src bytes.Reader
}

var gzipPool = sync.Pool{New: func() any { return new(gzipReader) }}

func gunzip(src []byte, limit int) ([]byte, error) {
	r := gzipPool.Get().(*gzipReader)
	defer gzipPool.Put(r)
	r.src.Reset(src)
	if err := r.zr.Reset(&r.src); err != nil {
		return nil, fmt.Errorf("gunzip: %w: %w", ErrCorrupt, err)
	}
	out, err := readBounded(&r.zr, limit)
	if err != nil {
		return nil, fmt.Errorf("gunzip: %w", err)
	}
	return out, nil
}

// lz4Reader is a pooled lz4 frame decoder, like gzipReader.
type lz4Reader struct {
	zr  *lz4.Reader
	src bytes.Reader
}

var lz4Pool = sync.Pool{New: func() any { return &lz4Reader{zr: lz4.NewReader(nil)} }}

func unlz4(src []byte, limit int) ([]byte, error) {
	r := lz4Pool.Get().(*lz4Reader)
	defer lz4Pool.Put(r)
	r.src.Reset(src)
	r.zr.Reset(&r.src)
	out, err := readBounded(r.zr, limit)
	if err != nil {
		return nil, fmt.Errorf("unlz4: %w", err)
	}
	return out, nil
}

// maxPooledBuffer is the largest streaming buffer kept for reuse: a rare
// huge batch does not pin its memory in the pool.
const maxPooledBuffer = 4 << 20

// minGrow is the first size of a streaming buffer.
const minGrow = 32 << 10

// streamBuffer is a pooled buffer that streaming decompressors write into.
type streamBuffer struct{ b []byte }

var bufferPool = sync.Pool{New: func() any { return new(streamBuffer) }}

// readBounded reads r to its end, failing with ErrTooLarge past limit bytes,
// and returns an exact-size copy. The buffer it reads into doubles up to
// limit+1 bytes and no further, so a decompression bomb costs at most about
// twice limit in allocations.
func readBounded(r io.Reader, limit int) ([]byte, error) {
	sb := bufferPool.Get().(*streamBuffer)
	b := sb.b[:0]
	defer func() {
		if cap(b) > maxPooledBuffer {
			b = nil
		}
		sb.b = b[:0]
		bufferPool.Put(sb)
	}()
	for {
		if len(b) == cap(b) {
			if len(b) > limit {
				return nil, fmt.Errorf("%w: over %d bytes", ErrTooLarge, limit)
			}
			n := max(2*cap(b), minGrow)
			if n >= limit {
				n = limit + 1 // the last growth: one byte past the cap tells an overflow
			}
			nb := make([]byte, len(b), n)
			copy(nb, b)
			b = nb
		}
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrCorrupt, err)
		}
	}
	if len(b) > limit {
		return nil, fmt.Errorf("%w: over %d bytes", ErrTooLarge, limit)
	}
	return slices.Clone(b), nil
}

// xerialMagic starts snappy data in the xerial framing that the Java
// producer writes: the magic, an int32 version and an int32 minimum
// compatible version, then blocks of an int32 length and a raw snappy block.
var xerialMagic = []byte{0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0}

const xerialHeaderSize = 16

func unsnappy(src []byte, limit int) ([]byte, error) {
	if bytes.HasPrefix(src, xerialMagic) {
		return unxerial(src, limit)
	}
	n, err := snappy.DecodedLen(src)
	if err != nil {
		return nil, fmt.Errorf("unsnappy: %w: %w", ErrCorrupt, err)
	}
	if n > limit {
		return nil, fmt.Errorf("unsnappy: %w: %d bytes over %d", ErrTooLarge, n, limit)
	}
	out, err := snappy.Decode(nil, src)
	if err != nil {
		return nil, fmt.Errorf("unsnappy: %w: %w", ErrCorrupt, err)
	}
	return out, nil
}

// unxerial decodes xerial-framed snappy. It first walks the block headers,
// summing the decoded lengths the blocks claim, so that it checks limit before
// allocating and allocates once.
func unxerial(src []byte, limit int) ([]byte, error) {
	if len(src) < xerialHeaderSize {
		return nil, fmt.Errorf("unsnappy xerial: %w: short header", ErrCorrupt)
	}
	src = src[xerialHeaderSize:]
	total := 0
	for rem := src; len(rem) > 0; {
		block, next, err := xerialBlock(rem)
		if err != nil {
			return nil, err
		}
		n, err := snappy.DecodedLen(block)
		if err != nil {
			return nil, fmt.Errorf("unsnappy xerial: %w: %w", ErrCorrupt, err)
		}
		if total += n; total > limit {
			return nil, fmt.Errorf("unsnappy xerial: %w: over %d bytes", ErrTooLarge, limit)
		}
		rem = next
	}
	out := make([]byte, total)
	at := 0
	for len(src) > 0 {
		block, next, _ := xerialBlock(src)
		n, _ := snappy.DecodedLen(block)
		dec, err := snappy.Decode(out[at:at+n:at+n], block)
		if err != nil {
			return nil, fmt.Errorf("unsnappy xerial: %w: %w", ErrCorrupt, err)
		}
		if n > 0 && &dec[0] != &out[at] {
			copy(out[at:], dec)
		}
		at += n
		src = next
	}
	return out, nil
}

// xerialBlock splits the first xerial block off src.
func xerialBlock(src []byte) (block, rest []byte, err error) {
	if len(src) < 4 {
		return nil, nil, fmt.Errorf("unsnappy xerial: %w: truncated block length", ErrCorrupt)
	}
	n := int64(int32(binary.BigEndian.Uint32(src)))
	src = src[4:]
	if n < 0 || n > int64(len(src)) {
		return nil, nil, fmt.Errorf("unsnappy xerial: %w: block length %d with %d bytes left", ErrCorrupt, n, len(src))
	}
	return src[:n], src[n:], nil
}

// zstdPools holds one pool of decoders per limit (a *sync.Pool per int): the
// decoder enforces the limit itself (WithDecoderMaxMemory), before
// allocating when a frame declares its size and while decoding otherwise.
// Callers use one or a few distinct MaxBatchBytes, so the map stays small.
var zstdPools sync.Map

// zstdDecoder wraps a decoder so that a cleanup can close it when the pool
// drops it; err is set if the decoder could not be built (never, with these
// options).
type zstdDecoder struct {
	d   *zstd.Decoder
	err error
}

func zstdPool(limit int) *sync.Pool {
	if p, ok := zstdPools.Load(limit); ok {
		return p.(*sync.Pool)
	}
	p, _ := zstdPools.LoadOrStore(limit, &sync.Pool{New: func() any {
		d, err := zstd.NewReader(nil,
			zstd.WithDecoderLowmem(true),
			zstd.WithDecoderConcurrency(1),
			zstd.WithDecoderMaxMemory(uint64(limit)),
		)
		if err != nil {
			return &zstdDecoder{err: err}
		}
		zd := &zstdDecoder{d: d}
		runtime.AddCleanup(zd, func(d *zstd.Decoder) { d.Close() }, d)
		return zd
	}})
	return p.(*sync.Pool)
}

// unzstd decodes one zstd frame with DecodeAll into memory sized up front:
// the exact content size when the frame declares it, otherwise a pooled
// buffer of the bound that the block headers give, copied out at the exact
// size. Either way DecodeAll never grows its output. What does not fit that
// (several frames, which DecodeAll would grow frame by frame; a bound over
// the limit; input whose frame structure does not walk) streams through
// readBounded instead, which stops at the limit.
func unzstd(src []byte, window, limit int) ([]byte, error) {
	pool := zstdPool(window)
	zd := pool.Get().(*zstdDecoder)
	if zd.err != nil {
		return nil, fmt.Errorf("unzstd: new decoder: %w", zd.err)
	}
	defer pool.Put(zd)
	if bound, sized, ok := zstdFrameBound(src); ok && bound <= limit {
		var out []byte
		var err error
		if sized {
			out, err = zd.d.DecodeAll(src, nil)
		} else {
			sb := bufferPool.Get().(*streamBuffer)
			if cap(sb.b) < bound {
				sb.b = make([]byte, 0, max(bound, minGrow))
			}
			if out, err = zd.d.DecodeAll(src, sb.b[:0]); err == nil {
				out = slices.Clone(out)
			}
			if cap(sb.b) > maxPooledBuffer {
				sb.b = nil
			}
			bufferPool.Put(sb)
		}
		if errors.Is(err, zstd.ErrDecoderSizeExceeded) || errors.Is(err, zstd.ErrWindowSizeExceeded) {
			return nil, fmt.Errorf("unzstd: %w: over %d bytes: %w", ErrTooLarge, limit, err)
		}
		if err != nil {
			return nil, fmt.Errorf("unzstd: %w: %w", ErrCorrupt, err)
		}
		return out, nil
	}
	if err := zd.d.Reset(bytes.NewReader(src)); err != nil {
		return nil, fmt.Errorf("unzstd: %w: %w", ErrCorrupt, err)
	}
	defer zd.d.Reset(nil)
	out, err := readBounded(zd.d, limit)
	if errors.Is(err, zstd.ErrDecoderSizeExceeded) || errors.Is(err, zstd.ErrWindowSizeExceeded) {
		return nil, fmt.Errorf("unzstd: %w: over %d bytes: %w", ErrTooLarge, limit, err)
	}
	if err != nil {
		return nil, fmt.Errorf("unzstd: %w", err)
	}
	return out, nil
}

// zstdMaxBlock is the most a zstd block decompresses to.
const zstdMaxBlock = 128 << 10

// zstdFrameBound walks the frame header and the block headers of src
// without decoding. If src is exactly one frame it returns ok, whether the
// frame declares its content size (sized) and a bound on the decoded size:
// the declared size, or the sizes of raw and RLE blocks plus 128 KiB per
// compressed block.
func zstdFrameBound(src []byte) (bound int, sized, ok bool) {
	var h zstd.Header
	if err := h.Decode(src); err != nil || h.Skippable {
		return 0, false, false
	}
	at := h.HeaderSize
	for {
		if len(src)-at < 3 {
			return 0, false, false
		}
		bh := uint32(src[at]) | uint32(src[at+1])<<8 | uint32(src[at+2])<<16
		at += 3
		switch size := int(bh >> 3); (bh >> 1) & 3 {
		case 0: // raw
			at += size
			bound += size
		case 1: // RLE: one byte repeated size times
			at++
			bound += size
		case 2: // compressed
			at += size
			bound += zstdMaxBlock
		default: // reserved
			return 0, false, false
		}
		if at > len(src) {
			return 0, false, false
		}
		if bh&1 != 0 { // last block
			break
		}
	}
	if h.HasCheckSum {
		at += 4
	}
	if at != len(src) {
		return 0, false, false
	}
	if h.HasFCS {
		if h.FrameContentSize > uint64(math.MaxInt) {
			return math.MaxInt, true, true
		}
		return int(h.FrameContentSize), true, true
	}
	return bound, false, true
}
