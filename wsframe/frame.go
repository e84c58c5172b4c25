package wsframe

import (
	"encoding/binary"
	"strconv"
	"unicode/utf8"

	"github.com/gobwas/ws"
)

// DefaultMaxMessage is the message size limit of a Decoder whose MaxMessage
// is 0 or less.
const DefaultMaxMessage = 1 << 20

// keepBuffer is the largest reassembly buffer a Decoder keeps between
// messages; a larger one is dropped once its message has been delivered, so
// an idle connection holds little memory.
const keepBuffer = 64 << 10

// CloseError is a protocol violation by the peer; the caller sends
// AppendClose(dst, e.Code, e.Reason) and closes the connection.
type CloseError struct {
	Code   ws.StatusCode // 1002 protocol error, 1007 a close reason or text message not UTF-8, 1009 message too big
	Reason string        // what the peer did wrong
}

// Error returns the close code and the reason.
func (e *CloseError) Error() string {
	return "wsframe: close " + strconv.Itoa(int(e.Code)) + ": " + e.Reason
}

// Message is one complete message or control frame from the client. Op is
// OpText, OpBinary, OpPing, OpPong or OpClose (whose payload is the status
// code and reason, see ws.ParseCloseFrameData). Op is OpContinuation, the
// zero value, when Next consumed fragments of an unfinished message and has
// nothing to deliver yet.
type Message struct {
	Op      ws.OpCode
	Payload []byte
}

// Decoder parses client frames from the inbound buffer. The payload of a
// single-frame message is unmasked in place and aliases the buffer passed to
// Next (valid until the caller discards the n bytes Next consumed); a
// fragmented message is reassembled into the Decoder's own buffer (valid
// until the next call to Next). Control frames are returned as they come,
// also between the fragments of a message. The zero value is ready to use;
// a Decoder serves one connection and is not safe for concurrent use.
type Decoder struct {
	// MaxMessage is the largest data message accepted, in bytes; 0 or less
	// means DefaultMaxMessage.
	MaxMessage int

	op   ws.OpCode // opcode of the fragmented message in progress, 0 if none
	frag []byte    // fragments received so far
}

// Next parses the frames at the start of buf and returns the first complete
// message or control frame, with n, the number of bytes of buf it consumed.
// It returns n == 0 and a zero Message when buf holds no complete frame yet,
// and n > 0 with Op OpContinuation when it consumed only fragments of an
// unfinished message; in both cases the caller waits for more bytes. A
// protocol violation returns a *CloseError (1002, 1007, or 1009 for a message
// over MaxMessage) as soon as the frame header shows it, before the claimed
// payload is read or any memory is allocated for it (a text message that is
// not UTF-8, 1007, once it is complete); the connection must then be closed,
// and m and n are of no further use.
func (d *Decoder) Next(buf []byte) (m Message, n int, err error) {
	if d.op == 0 && cap(d.frag) > keepBuffer {
		d.frag = nil
	}
	for {
		h, hlen, cerr := d.header(buf[n:])
		if cerr != nil {
			return Message{}, n, cerr
		}
		if hlen == 0 || int64(len(buf)-n-hlen) < h.Length {
			return Message{}, n, nil
		}
		payload := buf[n+hlen : n+hlen+int(h.Length)]
		n += hlen + int(h.Length)
		ws.Cipher(payload, h.Mask, 0)

		switch {
		case h.OpCode.IsControl():
			if h.OpCode == ws.OpClose {
				if cerr := checkClose(payload); cerr != nil {
					return Message{}, n, cerr
				}
			}
			return Message{Op: h.OpCode, Payload: payload}, n, nil
		case h.OpCode != ws.OpContinuation && h.Fin:
			return d.message(h.OpCode, payload, n)
		case h.OpCode != ws.OpContinuation:
			d.op = h.OpCode
			d.frag = append(d.frag[:0], payload...)
		default:
			d.frag = append(d.frag, payload...)
			if h.Fin {
				op := d.op
				d.op = 0
				return d.message(op, d.frag, n)
			}
		}
	}
}

// message returns a complete data message, or the 1007 a text message
// that is not UTF-8 calls for (RFC 6455 8.1).
func (d *Decoder) message(op ws.OpCode, payload []byte, n int) (Message, int, error) {
	if op == ws.OpText && !utf8.Valid(payload) {
		return Message{}, n, &CloseError{Code: ws.StatusInvalidFramePayloadData, Reason: "text message is not UTF-8"}
	}
	return Message{Op: op, Payload: payload}, n, nil
}

// header parses and checks the frame header at the start of b. It returns
// hlen == 0 when the header is not complete yet, and a *CloseError as soon
// as the bytes seen so far break the protocol.
func (d *Decoder) header(b []byte) (h ws.Header, hlen int, err *CloseError) {
	if len(b) < 2 {
		return h, 0, nil
	}
	h.Fin = b[0]&0x80 != 0
	h.Rsv = (b[0] & 0x70) >> 4
	h.OpCode = ws.OpCode(b[0] & 0x0f)
	h.Masked = b[1]&0x80 != 0
	l7 := b[1] & 0x7f
	h.Length = int64(l7)
	if h.OpCode.IsControl() && l7 > ws.MaxControlFramePayloadSize {
		// Checked before the extended length arrives: any length above
		// 125 needs it.
		return h, 0, protocolError(ws.ErrProtocolControlPayloadOverflow.Error())
	}
	state := ws.StateServerSide
	if d.op != 0 {
		state |= ws.StateFragmented
	}
	if e := ws.CheckHeader(h, state); e != nil {
		return h, 0, protocolError(e.Error())
	}

	hlen = 2
	switch l7 {
	case 126:
		if len(b) < 4 {
			return h, 0, nil
		}
		h.Length = int64(binary.BigEndian.Uint16(b[2:4]))
		hlen = 4
	case 127:
		if len(b) < 10 {
			if len(b) > 2 && b[2]&0x80 != 0 {
				return h, 0, protocolError(ws.ErrHeaderLengthMSB.Error())
			}
			return h, 0, nil
		}
		u := binary.BigEndian.Uint64(b[2:10])
		if u>>63 != 0 {
			return h, 0, protocolError(ws.ErrHeaderLengthMSB.Error())
		}
		h.Length = int64(u)
		hlen = 10
	}
	if h.OpCode.IsData() {
		limit := int64(d.MaxMessage)
		if limit <= 0 {
			limit = DefaultMaxMessage
		}
		var have int64 // bytes of the message in progress
		if d.op != 0 {
			have = int64(len(d.frag))
		}
		if h.Length > limit-have {
			return h, 0, &CloseError{Code: ws.StatusMessageTooBig, Reason: "message larger than " + strconv.FormatInt(limit, 10) + " bytes"}
		}
	}
	if len(b) < hlen+4 {
		return h, 0, nil
	}
	copy(h.Mask[:], b[hlen:hlen+4])
	return h, hlen + 4, nil
}

// checkClose validates a close frame payload: empty, or a 2-byte status code
// a peer may send followed by a UTF-8 reason.
func checkClose(p []byte) *CloseError {
	switch {
	case len(p) == 0:
		return nil
	case len(p) == 1:
		return protocolError("close frame payload of 1 byte")
	}
	code, reason := ws.ParseCloseFrameDataUnsafe(p)
	if reason := closeCodeError(code); reason != "" {
		return protocolError(reason + ": " + strconv.Itoa(int(code)))
	}
	if !utf8.ValidString(reason) {
		return &CloseError{Code: ws.StatusInvalidFramePayloadData, Reason: ws.ErrProtocolInvalidUTF8.Error()}
	}
	return nil
}

// closeCodeError says why code may not appear in a close frame (RFC 6455
// 7.4: only 1000-1003, 1007-1011 and 3000-4999 may), or returns "".
func closeCodeError(code ws.StatusCode) string {
	if e := ws.CheckCloseFrameData(code, ""); e != nil {
		return e.Error()
	}
	if code > ws.StatusRangePrivate.Max {
		return "status code is not defined"
	}
	return ""
}

func protocolError(reason string) *CloseError {
	return &CloseError{Code: ws.StatusProtocolError, Reason: reason}
}

// AppendHeader appends the header of an unmasked, final server frame with
// opcode op and a payload of n bytes, so the payload can be written as a
// separate slice, and returns the extended slice.
func AppendHeader(dst []byte, op ws.OpCode, n int) []byte {
	dst = append(dst, 0x80|byte(op))
	switch {
	case n <= 125:
		return append(dst, byte(n))
	case n <= 0xffff:
		return binary.BigEndian.AppendUint16(append(dst, 126), uint16(n))
	default:
		return binary.BigEndian.AppendUint64(append(dst, 127), uint64(n))
	}
}

// AppendClose appends a whole close frame with status code and reason and
// returns the extended slice. A code of 0 sends an empty close payload; a
// reason that would make the payload exceed 125 bytes is cut at a UTF-8
// character boundary.
func AppendClose(dst []byte, code ws.StatusCode, reason string) []byte {
	if code == 0 {
		return AppendHeader(dst, ws.OpClose, 0)
	}
	const maxReason = ws.MaxControlFramePayloadSize - 2
	if len(reason) > maxReason {
		cut := maxReason
		for cut > 0 && !utf8.RuneStart(reason[cut]) {
			cut--
		}
		reason = reason[:cut]
	}
	dst = AppendHeader(dst, ws.OpClose, 2+len(reason))
	dst = binary.BigEndian.AppendUint16(dst, uint16(code))
	return append(dst, reason...)
}

// AppendPong appends the pong frame that answers a ping carrying payload
// (RFC 6455 5.5.3: the same application data) and returns the extended
// slice.
func AppendPong(dst, payload []byte) []byte {
	dst = AppendHeader(dst, ws.OpPong, len(payload))
	return append(dst, payload...)
}

// AppendCloseReply appends the close frame that answers a peer's close frame
// carrying payload (RFC 6455 5.5.1) and returns the extended slice and the
// code it sent: the peer's status code echoed without a reason, or 1000
// (normal closure) when the peer sent none or one that may not be sent.
// After it the connection is closed.
func AppendCloseReply(dst, payload []byte) ([]byte, ws.StatusCode) {
	code := ws.StatusNormalClosure
	if len(payload) >= 2 {
		if c := ws.StatusCode(binary.BigEndian.Uint16(payload)); closeCodeError(c) == "" {
			code = c
		}
	}
	return AppendClose(dst, code, ""), code
}
