package kafkawire

import (
	"math/bits"
	"sync"
	"sync/atomic"
)

// Response buffers are pooled by size class: class i holds buffers of
// capacity 4 KiB << i, up to 128 MiB. A frame larger than the largest class
// (only possible with a raised FetchMaxBytes) gets an unpooled buffer.
const (
	minClassShift = 12
	numClasses    = 16
)

var bufClasses [numClasses]sync.Pool

// classOf returns the size class that holds n bytes, or -1 when none does.
func classOf(n int) int {
	if n <= 1<<minClassShift {
		return 0
	}
	c := bits.Len(uint(n-1)) - minClassShift
	if c >= numClasses {
		return -1
	}
	return c
}

// respBuf is one response frame read from a broker, shared by everything
// that aliases it (the decoded FetchResults of one Fetch response) and
// returned to its pool when the last reference is released.
type respBuf struct {
	b    []byte // the whole frame after the size prefix, len == frame size
	refs atomic.Int32
}

// getRespBuf returns a buffer of length n with one reference.
func getRespBuf(n int) *respBuf {
	c := classOf(n)
	if c < 0 {
		rb := &respBuf{b: make([]byte, n)}
		rb.refs.Store(1)
		return rb
	}
	rb, _ := bufClasses[c].Get().(*respBuf)
	if rb == nil {
		rb = &respBuf{b: make([]byte, 1<<(c+minClassShift))}
	}
	rb.b = rb.b[:n]
	rb.refs.Store(1)
	return rb
}

// retain adds a reference.
func (rb *respBuf) retain() { rb.refs.Add(1) }

// release drops a reference; the last one returns the buffer to its pool.
func (rb *respBuf) release() {
	if rb.refs.Add(-1) != 0 {
		return
	}
	c := classOf(cap(rb.b))
	if c < 0 || cap(rb.b) != 1<<(c+minClassShift) {
		return
	}
	bufClasses[c].Put(rb)
}
