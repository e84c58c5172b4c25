package wsframe

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/gobwas/ws"

	"github.com/kafkaedge/kafkaedge/internal/wstest"
)

var testMask = wstest.Mask

// rawHeader builds a masked frame header claiming length n without payload.
func rawHeader(b0 byte, n uint64) []byte {
	switch {
	case n <= 125:
		return append([]byte{b0, 0x80 | byte(n)}, testMask[:]...)
	case n <= 0xffff:
		h := binary.BigEndian.AppendUint16([]byte{b0, 0x80 | 126}, uint16(n))
		return append(h, testMask[:]...)
	default:
		h := binary.BigEndian.AppendUint64([]byte{b0, 0x80 | 127}, n)
		return append(h, testMask[:]...)
	}
}

// decodeAll runs a Decoder over stream and returns the messages (copied).
func decodeAll(d *Decoder, stream []byte) ([]Message, error) {
	var out []Message
	for len(stream) > 0 {
		m, n, err := d.Next(stream)
		if err != nil {
			return out, err
		}
		if n == 0 {
			return out, nil
		}
		stream = stream[n:]
		if m.Op != ws.OpContinuation {
			out = append(out, Message{Op: m.Op, Payload: bytes.Clone(m.Payload)})
		}
	}
	return out, nil
}

// TestDecoderTextUTF8: a text message must be UTF-8 as a whole (RFC 6455
// 8.1): a rune split across fragments is fine, invalid bytes are a 1007.
func TestDecoderTextUTF8(t *testing.T) {
	check := "\u2713"
	split := append(wstest.ClientFrame(ws.OpText, false, []byte(check[:1])), wstest.ClientFrame(ws.OpContinuation, true, []byte(check[1:]))...)
	var d Decoder
	got, err := decodeAll(&d, split)
	if err != nil || len(got) != 1 || string(got[0].Payload) != check {
		t.Fatalf("a rune split across fragments: %v %v", got, err)
	}
	for name, in := range map[string][]byte{
		"one frame": wstest.ClientFrame(ws.OpText, true, []byte("\xff not utf-8")),
		"fragments": append(wstest.ClientFrame(ws.OpText, false, []byte("ok ")), wstest.ClientFrame(ws.OpContinuation, true, []byte(check[:2]))...),
	} {
		var d Decoder
		_, err := decodeAll(&d, in)
		var ce *CloseError
		if !errors.As(err, &ce) || ce.Code != ws.StatusInvalidFramePayloadData {
			t.Errorf("%s: %v, want a 1007", name, err)
		}
	}
	// Binary messages are not text: any bytes.
	if got, err := decodeAll(new(Decoder), wstest.ClientFrame(ws.OpBinary, true, []byte{0xff})); err != nil || len(got) != 1 {
		t.Fatalf("binary 0xff: %v %v", got, err)
	}
}

func TestDecoderMessages(t *testing.T) {
	var stream []byte
	stream = append(stream, wstest.ClientFrame(ws.OpBinary, true, []byte("hello"))...)
	stream = append(stream, wstest.ClientFrame(ws.OpBinary, false, []byte("frag-1|"))...)
	stream = append(stream, wstest.ClientFrame(ws.OpPing, true, []byte("p1"))...)
	stream = append(stream, wstest.ClientFrame(ws.OpContinuation, false, []byte("frag-2|"))...)
	stream = append(stream, wstest.ClientFrame(ws.OpContinuation, false, nil)...)
	stream = append(stream, wstest.ClientFrame(ws.OpPong, true, nil)...)
	stream = append(stream, wstest.ClientFrame(ws.OpContinuation, true, []byte("frag-3"))...)
	stream = append(stream, wstest.ClientFrame(ws.OpText, true, []byte("text \u2713"))...)
	stream = append(stream, wstest.ClientFrame(ws.OpBinary, true, nil)...)
	stream = append(stream, wstest.ClientFrame(ws.OpBinary, true, bytes.Repeat([]byte{7}, 1000))...)
	stream = append(stream, wstest.ClientFrame(ws.OpClose, true, ws.NewCloseFrameBody(ws.StatusNormalClosure, "bye"))...)
	stream = append(stream, wstest.ClientFrame(ws.OpClose, true, nil)...)
	want := []Message{
		{Op: ws.OpBinary, Payload: []byte("hello")},
		{Op: ws.OpPing, Payload: []byte("p1")},
		{Op: ws.OpPong, Payload: []byte{}},
		{Op: ws.OpBinary, Payload: []byte("frag-1|frag-2|frag-3")},
		{Op: ws.OpText, Payload: []byte("text \u2713")},
		{Op: ws.OpBinary, Payload: []byte{}},
		{Op: ws.OpBinary, Payload: bytes.Repeat([]byte{7}, 1000)},
		{Op: ws.OpClose, Payload: ws.NewCloseFrameBody(ws.StatusNormalClosure, "bye")},
		{Op: ws.OpClose, Payload: []byte{}},
	}
	check := func(t *testing.T, got []Message) {
		t.Helper()
		if len(got) != len(want) {
			t.Fatalf(
				"got %d messages, want %d",
				len(got), len(want))
		}
		for i := range want {
			if got[i].Op != want[i].Op || !bytes.Equal(got[i].Payload, want[i].Payload) {
				t.Fatalf(
					"message %d: got %v %q, want %v %q",
					i, got[i].Op, got[i].Payload, want[i].Op, want[i].Payload)
			}
		}
	}
	t.Run("whole", func(t *testing.T) {
		var d Decoder
		got, err := decodeAll(&d, bytes.Clone(stream))
		if err != nil {
			t.Fatalf(
				"decode: %v",
				err)
		}
		check(t, got)
	})
	// Byte by byte, as an event loop would see it: the buffer grows by one
	// byte, Next is called, consumed bytes are discarded.
	t.Run("byte by byte", func(t *testing.T) {
		var d Decoder
		var got []Message
		var pending []byte
		src := bytes.Clone(stream)
		for i := range src {
			pending = append(pending, src[i])
			for {
				m, n, err := d.Next(pending)
				if err != nil {
					t.Fatalf(
						"at byte %d: %v",
						i, err)
				}
				if n == 0 {
					break
				}
				if m.Op != ws.OpContinuation {
					got = append(got, Message{Op: m.Op, Payload: bytes.Clone(m.Payload)})
				}
				pending = pending[n:]
			}
		}
		if len(pending) != 0 {
			t.Fatalf(
				"%d bytes left over",
				len(pending))
		}
		check(t, got)
	})
}

// TestDecoderTruncated checks every strict prefix of a frame: no message,
// nothing consumed, no error, and the buffer untouched (not unmasked).
func TestDecoderTruncated(t *testing.T) {
	frames := [][]byte{
		wstest.ClientFrame(ws.OpBinary, true, bytes.Repeat([]byte("a"), 10)),
		wstest.ClientFrame(ws.OpBinary, true, bytes.Repeat([]byte("b"), 300)),
		wstest.ClientFrame(ws.OpBinary, true, bytes.Repeat([]byte("c"), 70000)),
		wstest.ClientFrame(ws.OpPing, true, []byte("x")),
	}
	for _, f := range frames {
		for i := 0; i < len(f); i += 1 + i/50 {
			var d Decoder
			prefix := bytes.Clone(f[:i])
			m, n, err := d.Next(prefix)
			if err != nil || n != 0 || m.Op != 0 || m.Payload != nil || !bytes.Equal(prefix, f[:i]) {
				t.Fatalf(
					"prefix %d of %d: m=%v n=%d err=%v",
					i, len(f), m.Op, n, err)
			}
		}
	}
}

func TestDecoderRejects(t *testing.T) {
	big := bytes.Repeat([]byte{1}, 600)
	cases := []struct {
		name  string
		max   int
		input []byte
		code  ws.StatusCode
	}{
		{
			name:  "unmasked binary",
			input: []byte{0x82, 0x05, 'h', 'e', 'l', 'l', 'o'},
			code:  1002,
		},
		{
			name:  "unmasked, header only",
			input: []byte{0x82, 0x05},
			code:  1002,
		},
		{
			name:  "rsv1",
			input: rawHeader(0x80|0x40|0x2, 0),
			code:  1002,
		},
		{
			name:  "rsv3",
			input: rawHeader(0x80|0x10|0x2, 0),
			code:  1002,
		},
		{
			name:  "opcode 3",
			input: rawHeader(0x83, 0),
			code:  1002,
		},
		{
			name:  "opcode 0xB",
			input: rawHeader(0x8b, 0),
			code:  1002,
		},
		{
			name:  "ping of 126 bytes, header only",
			input: []byte{0x89, 0x80 | 126},
			code:  1002,
		},
		{
			name:  "close of 64-bit length",
			input: []byte{0x88, 0x80 | 127},
			code:  1002,
		},
		{
			name:  "fragmented ping",
			input: rawHeader(0x09, 0),
			code:  1002,
		},
		{
			name:  "continuation first",
			input: rawHeader(0x80, 0),
			code:  1002,
		},
		{
			name:  "data frame inside a message",
			input: append(wstest.ClientFrame(ws.OpBinary, false, []byte("a")), rawHeader(0x82, 0)...),
			code:  1002,
		},
		{
			name:  "text frame inside a message",
			input: append(wstest.ClientFrame(ws.OpText, false, []byte("a")), rawHeader(0x01, 0)...),
			code:  1002,
		},
		{
			name:  "1 TiB claim",
			input: rawHeader(0x82, 1<<40)[:10],
			code:  1009,
		},
		{
			name:  "1 TiB text claim",
			input: rawHeader(0x81, 1<<40)[:10],
			code:  1009,
		},
		{
			name:  "2^63-1 claim",
			input: rawHeader(0x82, 1<<63-1)[:10],
			code:  1009,
		},
		{
			name:  "top bit set, third byte only",
			input: []byte{0x82, 0x80 | 127, 0x80},
			code:  1002,
		},
		{
			name:  "top bit set",
			input: rawHeader(0x82, 1<<63),
			code:  1002,
		},
		{
			name:  "one over the limit",
			max:   1000,
			input: rawHeader(0x82, 1001)[:4],
			code:  1009,
		},
		{
			name:  "fragments over the limit",
			max:   1000,
			input: append(wstest.ClientFrame(ws.OpBinary, false, big), rawHeader(0x80, 401)[:4]...),
			code:  1009,
		},
		{
			name:  "fragments over the limit after a ping",
			max:   1000,
			input: append(append(wstest.ClientFrame(ws.OpBinary, false, big), wstest.ClientFrame(ws.OpPing, true, nil)...), rawHeader(0x00, 401)[:4]...),
			code:  1009,
		},
		{
			name:  "default limit",
			input: rawHeader(0x82, DefaultMaxMessage+1)[:10],
			code:  1009,
		},
		{
			name:  "close with 1-byte payload",
			input: wstest.ClientFrame(ws.OpClose, true, []byte{3}),
			code:  1002,
		},
		{
			name:  "close code 1005",
			input: wstest.ClientFrame(ws.OpClose, true, ws.NewCloseFrameBody(1005, "")),
			code:  1002,
		},
		{
			name:  "close code 999",
			input: wstest.ClientFrame(ws.OpClose, true, ws.NewCloseFrameBody(999, "")),
			code:  1002,
		},
		{
			name:  "close code 2000",
			input: wstest.ClientFrame(ws.OpClose, true, ws.NewCloseFrameBody(2000, "")),
			code:  1002,
		},
		{
			name:  "close code 5000",
			input: wstest.ClientFrame(ws.OpClose, true, ws.NewCloseFrameBody(5000, "")),
			code:  1002,
		},
		{
			name:  "close reason not UTF-8",
			input: wstest.ClientFrame(ws.OpClose, true, ws.NewCloseFrameBody(1000, "\xff\xfe")),
			code:  1007,
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := Decoder{MaxMessage: c.max}
			_, err := decodeAll(&d, bytes.Clone(c.input))
			var ce *CloseError
			if !errors.As(err, &ce) || ce.Code != c.code {
				t.Fatalf(
					"got %v, want close %d",
					err, c.code)
			}
		})
	}
}

func TestDecoderLimits(t *testing.T) {
	// Exactly MaxMessage is accepted, whole and in fragments.
	d := Decoder{MaxMessage: 1000}
	p := bytes.Repeat([]byte{9}, 1000)
	stream := wstest.ClientFrame(ws.OpBinary, true, p)
	stream = append(stream, wstest.ClientFrame(ws.OpText, false, p[:600])...)
	stream = append(stream, wstest.ClientFrame(ws.OpContinuation, true, p[600:])...)
	stream = append(stream, wstest.ClientFrame(ws.OpBinary, true, p)...)
	got, err := decodeAll(&d, stream)
	if err != nil || len(got) != 3 {
		t.Fatalf(
			"got %d messages, err %v; want 3",
			len(got), err)
	}
	for i, m := range got {
		if !bytes.Equal(m.Payload, p) {
			t.Fatalf(
				"message %d: %d bytes",
				i, len(m.Payload))
		}
	}
	// Control frames do not count against MaxMessage.
	d = Decoder{MaxMessage: 1}
	if _, err := decodeAll(&d, wstest.ClientFrame(ws.OpPing, true, bytes.Repeat([]byte{1}, 125))); err != nil {
		t.Fatalf(
			"ping of 125 bytes with MaxMessage 1: %v",
			err)
	}
}

// TestDecoderReleasesLargeBuffer checks that a large reassembly buffer is
// not kept once its message has been delivered.
func TestDecoderReleasesLargeBuffer(t *testing.T) {
	var d Decoder
	p := bytes.Repeat([]byte{5}, 200<<10)
	stream := append(wstest.ClientFrame(ws.OpBinary, false, p[:100<<10]), wstest.ClientFrame(ws.OpContinuation, true, p[100<<10:])...)
	if _, err := decodeAll(&d, stream); err != nil {
		t.Fatalf(
			"decode: %v",
			err)
	}
	if cap(d.frag) == 0 {
		t.Fatalf("reassembly buffer missing right after the message")
	}
	if _, _, err := d.Next(nil); err != nil {
		t.Fatalf(
			"Next: %v",
			err)
	}
	if cap(d.frag) != 0 {
		t.Fatalf(
			"kept a %d-byte reassembly buffer",
			cap(d.frag))
	}
}

func TestAppendHeader(t *testing.T) {
	for _, n := range []int{0, 1, 125, 126, 65535, 65536, 1 << 33} {
		h := AppendHeader(nil, ws.OpBinary, n)
		got, err := ws.ReadHeader(bytes.NewReader(h))
		if err != nil {
			t.Fatalf(
				"length %d: gobwas ReadHeader: %v",
				n, err)
		}
		if !got.Fin || got.Rsv != 0 || got.OpCode != ws.OpBinary || got.Masked || got.Length != int64(n) || len(h) != ws.HeaderSize(got) {
			t.Fatalf(
				"length %d: got header %+v of %d bytes",
				n, got, len(h))
		}
	}
}

func TestAppendClose(t *testing.T) {
	long := ""
	for len(long) < 200 {
		long += "é" // two bytes: the cut must not split it
	}
	cases := []struct {
		code   ws.StatusCode
		reason string
		want   string
	}{
		{code: 1000, reason: "", want: ""},
		{code: 1002, reason: "unmasked frame", want: "unmasked frame"},
		{code: 1009, reason: long, want: long[:122]},
		{code: 0, reason: "ignored", want: ""},
	}
	for _, c := range cases {
		b := AppendClose(nil, c.code, c.reason)
		f, err := wstest.ReadFrame(bytes.NewReader(b))
		if err != nil {
			t.Fatalf(
				"code %d: gobwas ReadFrame: %v",
				c.code, err)
		}
		if f.Header.OpCode != ws.OpClose || !f.Header.Fin || f.Header.Length > 125 {
			t.Fatalf(
				"code %d: header %+v",
				c.code, f.Header)
		}
		if c.code == 0 {
			if len(f.Payload) != 0 {
				t.Fatalf(
					"code 0: payload %q",
					f.Payload)
			}
			continue
		}
		code, reason := ws.ParseCloseFrameData(f.Payload)
		if code != c.code || reason != c.want {
			t.Fatalf(
				"got %d %q, want %d %q",
				code, reason, c.code, c.want)
		}
	}
}

func TestAppendPong(t *testing.T) {
	for _, p := range [][]byte{nil, []byte("hb"), bytes.Repeat([]byte{0xff}, 125)} {
		f, err := wstest.ReadFrame(bytes.NewReader(AppendPong(nil, p)))
		if err != nil || f.Header.OpCode != ws.OpPong || !f.Header.Fin || !bytes.Equal(f.Payload, p) {
			t.Fatalf("pong for %q: %v %+v %q", p, err, f.Header, f.Payload)
		}
	}
}

func TestAppendCloseReply(t *testing.T) {
	cases := []struct {
		payload []byte
		want    ws.StatusCode
	}{
		{nil, ws.StatusNormalClosure},
		{ws.NewCloseFrameBody(ws.StatusNormalClosure, "bye"), ws.StatusNormalClosure},
		{ws.NewCloseFrameBody(ws.StatusGoingAway, ""), ws.StatusGoingAway},
		{ws.NewCloseFrameBody(4000, "app"), 4000},
		{ws.NewCloseFrameBody(3999, ""), 3999},
		// Codes a peer may not send (the Decoder refuses them first) are
		// answered with 1000.
		{ws.NewCloseFrameBody(ws.StatusNoStatusRcvd, ""), ws.StatusNormalClosure},
		{ws.NewCloseFrameBody(1012, ""), ws.StatusNormalClosure},
		{ws.NewCloseFrameBody(5000, ""), ws.StatusNormalClosure},
		{ws.NewCloseFrameBody(999, ""), ws.StatusNormalClosure},
	}
	for _, c := range cases {
		b, code := AppendCloseReply([]byte("x"), c.payload)
		if code != c.want || b[0] != 'x' {
			t.Fatalf("reply to %x: code %d, want %d", c.payload, code, c.want)
		}
		f, err := wstest.ReadFrame(bytes.NewReader(b[1:]))
		if err != nil || f.Header.OpCode != ws.OpClose {
			t.Fatalf("reply to %x: %v %+v", c.payload, err, f.Header)
		}
		if got, reason := ws.ParseCloseFrameData(f.Payload); got != c.want || reason != "" {
			t.Fatalf("reply to %x: payload %d %q, want %d and no reason", c.payload, got, reason, c.want)
		}
		// Whatever the Decoder accepts is echoed.
		var d Decoder
		if _, _, err := d.Next(wstest.ClientFrame(ws.OpClose, true, c.payload)); err == nil && len(c.payload) >= 2 {
			if sent := ws.StatusCode(binary.BigEndian.Uint16(c.payload)); sent != code {
				t.Fatalf("the Decoder accepts close code %d but the reply sends %d", sent, code)
			}
		}
	}
}

func TestLimits(t *testing.T) {
	if d := DefaultLimits(); d.MaxHeader != DefaultMaxHeader || d.MaxMessage != DefaultMaxMessage || d.Validate() != nil {
		t.Fatalf("DefaultLimits() = %+v", d)
	}
	for _, l := range []Limits{{}, {MaxHeader: MinHeader}, {MaxMessage: 1}, {MaxHeader: MaxHeader, MaxMessage: MaxMessage}} {
		if err := l.Validate(); err != nil {
			t.Errorf("%+v: %v", l, err)
		}
	}
	for l, want := range map[Limits]string{
		{MaxHeader: -1}:            "wsframe: MaxHeader -1 is negative",
		{MaxHeader: 10}:            "wsframe: MaxHeader 10 is below 256 bytes",
		{MaxMessage: -5}:           "wsframe: MaxMessage -5 is negative",
		{MaxHeader: MinHeader - 1}: "wsframe: MaxHeader 255 is below 256 bytes",
		{MaxHeader: MaxHeader + 1}: "wsframe: MaxHeader 1048577 is above 1048576 bytes",
		{MaxMessage: 1<<30 + 1}:    "wsframe: MaxMessage 1073741825 is above 1073741824 bytes",
	} {
		if err := l.Validate(); err == nil || err.Error() != want {
			t.Errorf("%+v: %v, want %q", l, err, want)
		}
	}
}

func TestCloseErrorMessage(t *testing.T) {
	e := &CloseError{Code: 1009, Reason: "message larger than 10 bytes"}
	if e.Error() != "wsframe: close 1009: message larger than 10 bytes" {
		t.Fatalf(
			"Error() = %q",
			e.Error())
	}
}
