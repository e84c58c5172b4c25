package wsframe

import (
	"bytes"
	"errors"
	"testing"

	"github.com/gobwas/ws"
)

// FuzzParseRequest checks that any input yields a result or an error, never
// a panic, that the input is not modified, and that a parsed head depends on
// its own bytes only. Seeds are in testdata/fuzz/FuzzParseRequest.
func FuzzParseRequest(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte, maxHeader uint16) {
		max := int(maxHeader)
		orig := bytes.Clone(data)
		req, n, err := ParseRequest(data, max)
		if !bytes.Equal(data, orig) {
			t.Fatalf("ParseRequest modified its input")
		}
		if max <= 0 {
			max = DefaultMaxHeader
		}
		var he *HTTPError
		switch {
		case errors.Is(err, ErrIncomplete):
			if len(data) >= max || n != 0 {
				t.Fatalf(
					"ErrIncomplete with %d bytes, n=%d, max %d",
					len(data), n, max)
			}
		case errors.As(err, &he):
			if (he.Status != 400 && he.Status != 431 && he.Status != 505) || n != 0 || he.Reason == "" {
				t.Fatalf(
					"HTTPError %+v n=%d",
					he, n)
			}
		case err != nil:
			t.Fatalf(
				"unexpected error type %T: %v",
				err, err)
		default:
			if n <= 0 || n > len(data) || n > max || !bytes.HasSuffix(data[:n], []byte("\r\n\r\n")) {
				t.Fatalf(
					"n=%d for %d bytes, max %d",
					n, len(data), max)
			}
			if req.Upgrade && (len(req.Key) != 24 || req.UpgradeErr != "" || req.Method != "GET") {
				t.Fatalf(
					"inconsistent upgrade %+v",
					req)
			}
			if !req.Upgrade && req.Key != nil {
				t.Fatalf(
					"Key set without Upgrade: %+v",
					req)
			}
			again, n2, err := ParseRequest(data[:n], max)
			if err != nil || n2 != n || again.Path != req.Path || again.Upgrade != req.Upgrade || again.UpgradeErr != req.UpgradeErr {
				t.Fatalf(
					"head alone parses differently: %+v n=%d err=%v vs %+v n=%d",
					again, n2, err, req, n)
			}
		}
	})
}

// FuzzDecoder checks that any input yields messages or a close error, never
// a panic or a message over the limits, and that splitting the input in two
// reads gives the same result as one. Seeds are in
// testdata/fuzz/FuzzDecoder.
func FuzzDecoder(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte, maxMessage uint16, split uint16) {
		whole, werr := fuzzDecode(Decoder{MaxMessage: int(maxMessage)}, bytes.Clone(data), len(data))
		parts, perr := fuzzDecode(Decoder{MaxMessage: int(maxMessage)}, bytes.Clone(data), int(split))
		var wce, pce *CloseError
		if (werr == nil) != (perr == nil) || (werr != nil && (!errors.As(werr, &wce) || !errors.As(perr, &pce) || wce.Code != pce.Code)) {
			t.Fatalf(
				"whole: %v, split at %d: %v",
				werr, split, perr)
		}
		if len(whole) != len(parts) {
			t.Fatalf(
				"whole gave %d messages, split at %d gave %d",
				len(whole), split, len(parts))
		}
		limit := int(maxMessage)
		if limit <= 0 {
			limit = DefaultMaxMessage
		}
		for i, m := range whole {
			if m.Op != parts[i].Op || !bytes.Equal(m.Payload, parts[i].Payload) {
				t.Fatalf(
					"message %d differs between whole and split input",
					i)
			}
			switch {
			case m.Op.IsControl() && len(m.Payload) > 125:
				t.Fatalf(
					"control frame of %d bytes",
					len(m.Payload))
			case m.Op.IsData() && len(m.Payload) > limit:
				t.Fatalf(
					"message of %d bytes over the limit %d",
					len(m.Payload), limit)
			case m.Op == ws.OpContinuation || m.Op.IsReserved():
				t.Fatalf(
					"returned op %v",
					m.Op)
			}
		}
	})
}

// fuzzDecode feeds data to d in two reads, the first of split bytes, the
// way an event loop appends to its inbound buffer.
func fuzzDecode(d Decoder, data []byte, split int) ([]Message, error) {
	if split > len(data) {
		split = len(data)
	}
	var out []Message
	pending := data[:split:split]
	for _, more := range [][]byte{nil, data[split:]} {
		pending = append(pending, more...)
		for {
			m, n, err := d.Next(pending)
			if err != nil {
				return out, err
			}
			if n == 0 {
				break
			}
			if n > len(pending) {
				return out, errors.New("consumed more than the buffer")
			}
			pending = pending[n:]
			if m.Op != ws.OpContinuation {
				out = append(out, Message{Op: m.Op, Payload: bytes.Clone(m.Payload)})
			}
		}
	}
	return out, nil
}
