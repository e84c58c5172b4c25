package wsframe

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gorilla/websocket"
)

// peer is the server side of a loopback TCP connection. It reads what the
// client sends in chunks chosen by chunk (to exercise partial input) and
// feeds the bytes received so far to ParseRequest and a Decoder, the way an
// event loop holding an inbound buffer would.
type peer struct {
	conn    net.Conn
	chunk   func() int
	pending []byte
	dec     Decoder
}

func (p *peer) read() error {
	k := p.chunk()
	if cap(p.pending)-len(p.pending) < k {
		p.pending = append(make([]byte, 0, 2*cap(p.pending)+k), p.pending...)
	}
	m, err := p.conn.Read(p.pending[len(p.pending) : len(p.pending)+k])
	p.pending = p.pending[:len(p.pending)+m]
	if m > 0 {
		return nil
	}
	return err
}

// handshake reads the upgrade request and answers it.
func (p *peer) handshake() (Request, error) {
	for {
		req, n, err := ParseRequest(p.pending, 0)
		if errors.Is(err, ErrIncomplete) {
			if err := p.read(); err != nil {
				return req, err
			}
			continue
		}
		if err != nil {
			return req, err
		}
		p.pending = p.pending[n:]
		if !req.Upgrade {
			_, err := p.conn.Write(AppendHTTPResponse(nil, http.StatusBadRequest, req.UpgradeErr))
			return req, errors.Join(errors.New("not an upgrade: "+req.UpgradeErr), err)
		}
		_, err = p.conn.Write(AppendUpgradeResponse(nil, req.Key))
		return req, err
	}
}

// next returns a copy of the next message the client sent.
func (p *peer) next() (Message, error) {
	for {
		m, n, err := p.dec.Next(p.pending)
		if err != nil {
			return m, err
		}
		p.pending = p.pending[n:]
		if m.Op != ws.OpContinuation {
			return Message{Op: m.Op, Payload: bytes.Clone(m.Payload)}, nil
		}
		if err := p.read(); err != nil {
			return m, err
		}
	}
}

type chunking struct {
	name  string
	chunk func(rng *rand.Rand) func() int
}

var chunkings = []chunking{
	{
		name:  "one byte",
		chunk: func(*rand.Rand) func() int { return func() int { return 1 } },
	},
	{
		name:  "random",
		chunk: func(rng *rand.Rand) func() int { return func() int { return 1 + rng.IntN(3000) } },
	},
	{
		name:  "large",
		chunk: func(*rand.Rand) func() int { return func() int { return 64 << 10 } },
	},
}

// dial connects a gorilla client to a fresh peer over loopback TCP.
func dial(t *testing.T, chunk func() int, writeBuffer int) (*websocket.Conn, *peer) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf(
			"listen: %v",
			err)
	}
	t.Cleanup(func() { ln.Close() })
	type result struct {
		p   *peer
		err error
	}
	done := make(chan result, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- result{err: err}
			return
		}
		p := &peer{conn: c, chunk: chunk}
		_, err = p.handshake()
		done <- result{p: p, err: err}
	}()
	d := websocket.Dialer{WriteBufferSize: writeBuffer, HandshakeTimeout: 10 * time.Second}
	cl, _, err := d.Dial("ws://"+ln.Addr().String()+"/kafka?x=1", nil)
	if err != nil {
		t.Fatalf(
			"gorilla dial: %v",
			err)
	}
	t.Cleanup(func() { cl.Close() })
	r := <-done
	if r.err != nil {
		t.Fatalf(
			"server handshake: %v",
			r.err)
	}
	t.Cleanup(func() { r.p.conn.Close() })
	return cl, r.p
}

func pattern(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7) + seed
	}
	return b
}

// sample is message i of n bytes: every third one text (UTF-8), the others
// binary.
func sample(i, n int) []byte {
	if i%3 == 2 {
		return textPattern(n)
	}
	return pattern(n, byte(i))
}

// textPattern returns n bytes of UTF-8 text, with two-byte runes split
// across any cut of the message at an odd offset.
func textPattern(n int) []byte {
	b := make([]byte, 0, n)
	for len(b) < n-1 {
		b = append(b, "\u00e9"...)
	}
	return append(b, 'x')[:n]
}

func expect(t *testing.T, p *peer, op ws.OpCode, payload []byte) {
	t.Helper()
	m, err := p.next()
	if err != nil {
		t.Fatalf(
			"next (want op %v, %d bytes): %v",
			op, len(payload), err)
	}
	if m.Op != op || !bytes.Equal(m.Payload, payload) {
		t.Fatalf(
			"got op %v with %d bytes, want op %v with %d bytes (equal content: %v)",
			m.Op, len(m.Payload), op, len(payload), bytes.Equal(m.Payload, payload))
	}
}

// TestGorillaClientFrames decodes what an independent client sends: whole
// messages of many sizes, fragmented messages, pings between fragments and
// a close, under several read chunkings.
func TestGorillaClientFrames(t *testing.T) {
	sizes := []int{0, 1, 125, 126, 127, 65535, 65536, 200000, DefaultMaxMessage}
	for _, ck := range chunkings {
		t.Run(ck.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(7, uint64(len(ck.name))))
			cl, p := dial(t, ck.chunk(rng), 0)
			done := make(chan error, 1)
			go func() {
				for i, n := range sizes {
					if ck.name == "one byte" && n > 70000 {
						continue
					}
					op := websocket.BinaryMessage
					if i%3 == 2 {
						op = websocket.TextMessage
					}
					if err := cl.WriteMessage(op, sample(i, n)); err != nil {
						done <- err
						return
					}
				}
				if err := cl.WriteControl(websocket.PingMessage, []byte("state"), time.Now().Add(5*time.Second)); err != nil {
					done <- err
					return
				}
				done <- cl.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, "bye"))
			}()
			for i, n := range sizes {
				if ck.name == "one byte" && n > 70000 {
					continue
				}
				op := ws.OpBinary
				if i%3 == 2 {
					op = ws.OpText
				}
				expect(t, p, op, sample(i, n))
			}
			expect(t, p, ws.OpPing, []byte("state"))
			expect(t, p, ws.OpClose, websocket.FormatCloseMessage(websocket.CloseNormalClosure, "bye"))
			if err := <-done; err != nil {
				t.Fatalf(
					"client write: %v",
					err)
			}
		})
	}
}

// TestGorillaFragments has gorilla fragment messages (a small write buffer
// makes it flush non-final frames) and interleave pings with the fragments.
func TestGorillaFragments(t *testing.T) {
	for _, ck := range chunkings {
		t.Run(ck.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(11, uint64(len(ck.name))))
			cl, p := dial(t, ck.chunk(rng), 64)
			first := pattern(5000, 1)
			second := textPattern(3000) // a text message must be UTF-8
			done := make(chan error, 1)
			go func() {
				done <- func() error {
					if err := cl.WriteMessage(websocket.BinaryMessage, first); err != nil {
						return err
					}
					w, err := cl.NextWriter(websocket.TextMessage)
					if err != nil {
						return err
					}
					if _, err := w.Write(second[:1000]); err != nil {
						return err
					}
					if err := cl.WriteControl(websocket.PingMessage, []byte("between"), time.Now().Add(5*time.Second)); err != nil {
						return err
					}
					if _, err := w.Write(second[1000:]); err != nil {
						return err
					}
					if err := w.Close(); err != nil {
						return err
					}
					return cl.WriteMessage(websocket.BinaryMessage, nil)
				}()
			}()
			expect(t, p, ws.OpBinary, first)
			if cap(p.dec.frag) == 0 {
				t.Fatalf("gorilla sent the message unfragmented; the test needs fragments")
			}
			expect(t, p, ws.OpPing, []byte("between"))
			expect(t, p, ws.OpText, second)
			expect(t, p, ws.OpBinary, nil)
			if err := <-done; err != nil {
				t.Fatalf(
					"client write: %v",
					err)
			}
		})
	}
}

// TestGorillaOversizedMessage checks that a message one byte over the limit
// sent by gorilla, whole or fragmented, is refused with 1009.
func TestGorillaOversizedMessage(t *testing.T) {
	for _, buf := range []int{0, 4096} {
		rng := rand.New(rand.NewPCG(3, 4))
		cl, p := dial(t, chunkings[1].chunk(rng), buf)
		p.dec.MaxMessage = 10000
		go cl.WriteMessage(websocket.BinaryMessage, pattern(10001, 0))
		_, err := p.next()
		var ce *CloseError
		if !errors.As(err, &ce) || ce.Code != ws.StatusMessageTooBig {
			t.Fatalf(
				"write buffer %d: got %v, want close 1009",
				buf, err)
		}
	}
}

// TestServerFramesReadByGorilla writes frames with AppendHeader and
// AppendClose and reads them with gorilla, and checks the pong gorilla sends
// back for our ping.
func TestServerFramesReadByGorilla(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	cl, p := dial(t, chunkings[1].chunk(rng), 0)
	sizes := []int{0, 1, 125, 126, 65535, 65536, 1 << 20}
	go func() {
		for i, n := range sizes {
			op := ws.OpBinary
			if i == 2 {
				op = ws.OpText
			}
			hdr := AppendHeader(nil, op, n)
			bufs := net.Buffers{hdr, pattern(n, byte(i))}
			if _, err := bufs.WriteTo(p.conn); err != nil {
				return
			}
		}
		ping := append(AppendHeader(nil, ws.OpPing, 4), "ping"...)
		p.conn.Write(ping)
		p.conn.Write(AppendClose(nil, ws.StatusGoingAway, "route changed"))
	}()
	for i, n := range sizes {
		typ, data, err := cl.ReadMessage()
		if err != nil {
			t.Fatalf(
				"gorilla read %d: %v",
				i, err)
		}
		want := websocket.BinaryMessage
		if i == 2 {
			want = websocket.TextMessage
		}
		if typ != want || !bytes.Equal(data, pattern(n, byte(i))) {
			t.Fatalf(
				"message %d: type %d with %d bytes, want type %d with %d bytes",
				i, typ, len(data), want, n)
		}
	}
	_, _, err := cl.ReadMessage() // handles the ping (answering it) and returns the close
	var ce *websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != websocket.CloseGoingAway || ce.Text != "route changed" {
		t.Fatalf(
			"got %v, want close 1001 \"route changed\"",
			err)
	}
	expect(t, p, ws.OpPong, []byte("ping"))
	// gorilla echoes the close frame.
	expect(t, p, ws.OpClose, websocket.FormatCloseMessage(websocket.CloseGoingAway, ""))
}
