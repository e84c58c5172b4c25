// Package wstest holds the WebSocket helpers that tests of several
// packages share.
package wstest

import (
	"fmt"
	"io"

	"github.com/gobwas/ws"
)

// MaxFrame is the largest payload ReadFrame accepts.
const MaxFrame = 64 << 20

// ReadFrame reads one frame with gobwas/ws's header parser (an independent
// implementation of RFC 6455) and unmasks its payload. Unlike ws.ReadFrame
// it refuses a declared length over MaxFrame before reading it.
func ReadFrame(r io.Reader) (ws.Frame, error) {
	h, err := ws.ReadHeader(r)
	if err != nil {
		return ws.Frame{}, err
	}
	if h.Length > MaxFrame {
		return ws.Frame{}, fmt.Errorf("frame payload of %d bytes, over %d", h.Length, MaxFrame)
	}
	p := make([]byte, h.Length)
	if _, err := io.ReadFull(r, p); err != nil {
		return ws.Frame{}, err
	}
	if h.Masked {
		ws.Cipher(p, h.Mask, 0)
	}
	return ws.Frame{Header: h, Payload: p}, nil
}
