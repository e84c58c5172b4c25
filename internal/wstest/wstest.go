// Package wstest holds raw WebSocket frames for the tests of several
// packages: a frame reader independent of wsframe (gobwas/ws's) and masked
// client frames, for hostile input that a well-behaved client
// (internal/wsclient) never sends.
package wstest

import (
	"bytes"
	"fmt"
	"io"

	"github.com/gobwas/ws"
)

// MaxFrame is the largest payload ReadFrame accepts.
const MaxFrame = 64 << 20

// Mask is the masking key of ClientFrame.
var Mask = [4]byte{0x12, 0x34, 0x56, 0x78}

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

// ClientFrame returns a client frame with opcode op, the FIN bit fin and
// payload masked with Mask, as gobwas/ws writes it. It does not check that
// the frame is valid: hostile tests send the ones that are not.
func ClientFrame(op ws.OpCode, fin bool, payload []byte) []byte {
	b, err := ws.CompileFrame(ws.MaskFrameWith(ws.NewFrame(op, fin, bytes.Clone(payload)), Mask))
	if err != nil {
		panic(fmt.Sprintf("wstest: compile frame: %v", err))
	}
	return b
}
