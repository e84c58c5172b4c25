package kafkawire

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkaedge/kafkaedge/kafkawire/wire"
)

// fakeBroker is a raw listener that answers ApiVersions properly and every
// other request with answer(key, corr, req), written as is: req is the
// request decoded with kmsg. A nil answer closes the connection, and so
// does any answer when hangUp is set. Like Kafka, it serves the requests of
// one connection one after the other: an answer that blocks holds up that
// connection only.
type fakeBroker struct {
	ln      net.Listener
	accepts atomic.Int64
	answer  func(key int16, corr int32, req kmsg.Request) []byte
	hangUp  bool
	wg      sync.WaitGroup
}

func newFakeBroker(t testing.TB, hangUp bool, answer func(key int16, corr int32, req kmsg.Request) []byte) *fakeBroker {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fb := &fakeBroker{ln: ln, answer: answer, hangUp: hangUp}
	fb.wg.Add(1)
	go fb.serve()
	t.Cleanup(func() {
		ln.Close()
		fb.wg.Wait()
	})
	return fb
}

// addr is the broker's host:port.
func (fb *fakeBroker) addr() string { return fb.ln.Addr().String() }

func (fb *fakeBroker) serve() {
	defer fb.wg.Done()
	for {
		nc, err := fb.ln.Accept()
		if err != nil {
			return
		}
		fb.accepts.Add(1)
		fb.wg.Add(1)
		go func() {
			defer fb.wg.Done()
			defer nc.Close()
			_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
			for {
				var size [4]byte
				if _, err := io.ReadFull(nc, size[:]); err != nil {
					return
				}
				raw := make([]byte, binary.BigEndian.Uint32(size[:]))
				if _, err := io.ReadFull(nc, raw); err != nil || len(raw) < 10 {
					return
				}
				key := int16(binary.BigEndian.Uint16(raw))
				version := int16(binary.BigEndian.Uint16(raw[2:]))
				corr := int32(binary.BigEndian.Uint32(raw[4:]))
				var out []byte
				if key == wire.KeyApiVersions {
					out = apiVersionsFrame(corr, version)
				} else {
					out = fb.answer(key, corr, decodeRequest(key, version, raw))
				}
				if out == nil {
					return // close
				}
				if _, err := nc.Write(out); err != nil || (fb.hangUp && key != wire.KeyApiVersions) {
					return
				}
			}
		}()
	}
}

// decodeRequest decodes the request frame raw (after its size) with kmsg,
// or returns nil if it does not decode.
func decodeRequest(key, version int16, raw []byte) kmsg.Request {
	req := kmsg.RequestForKey(key)
	if req == nil {
		return nil
	}
	req.SetVersion(version)
	body := raw[8:]
	if n := int16(binary.BigEndian.Uint16(body)); n > 0 && int(n)+2 <= len(body) {
		body = body[2+n:] // client id
	} else {
		body = body[2:]
	}
	if req.IsFlexible() && len(body) > 0 {
		body = body[1:] // no header tags
	}
	if err := req.ReadFrom(body); err != nil {
		return nil
	}
	return req
}

// respFrame is the whole frame of resp answering corr, with the empty tag
// section of response header v1 when resp is flexible.
func respFrame(corr int32, resp kmsg.Response) []byte {
	var body []byte
	if resp.IsFlexible() {
		body = append(body, 0)
	}
	return frame(corr, resp.AppendTo(body))
}

// apiVersionsFrame is a whole ApiVersions response frame.
func apiVersionsFrame(corr int32, version int16) []byte {
	resp := kmsg.NewPtrApiVersionsResponse()
	resp.Version = version
	for key, vr := range wire.Implemented {
		k := kmsg.NewApiVersionsResponseApiKey()
		k.ApiKey, k.MinVersion, k.MaxVersion = key, vr.Min, vr.Max
		resp.ApiKeys = append(resp.ApiKeys, k)
	}
	return frame(corr, resp.AppendTo(nil))
}

// frame prefixes body with its size and corr.
func frame(corr int32, body []byte) []byte {
	out := binary.BigEndian.AppendUint32(nil, uint32(4+len(body)))
	out = binary.BigEndian.AppendUint32(out, uint32(corr))
	return append(out, body...)
}

// TestHostileBroker: truncated or garbage responses, absurd sizes and
// unknown correlation ids fail the call with a clear error, drop the
// connection, and the next call dials again.
func TestHostileBroker(t *testing.T) {
	for _, tt := range []struct {
		name   string
		hangUp bool
		answer func(corr int32) []byte
		want   string
	}{
		{"truncated", true, func(corr int32) []byte {
			return frame(corr, make([]byte, 10))[:10]
		}, "in the middle of a response"},
		{"truncated size", true, func(int32) []byte { return []byte{0, 0} }, "closed by broker"},
		{"closed", true, func(int32) []byte { return nil }, "connection closed by broker"},
		{"garbage", false, func(corr int32) []byte {
			return frame(corr, bytes.Repeat([]byte{0xff}, 64))
		}, "Metadata v12 response"},
		{"huge size", false, func(int32) []byte {
			return []byte{0x7f, 0xff, 0xff, 0xff, 0, 0, 0, 1}
		}, "response frame of 2147483647 bytes"},
		{"negative size", false, func(int32) []byte {
			return []byte{0xff, 0xff, 0xff, 0xfb}
		}, "response frame of -5 bytes"},
		{"tiny size", false, func(int32) []byte {
			return []byte{0, 0, 0, 2, 0, 0}
		}, "response frame of 2 bytes"},
		{"unknown correlation id", false, func(corr int32) []byte {
			return frame(corr+1000, []byte{0, 0})
		}, "unknown correlation id"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			fb := newFakeBroker(t, tt.hangUp, func(_ int16, corr int32, _ kmsg.Request) []byte { return tt.answer(corr) })
			c := newClient(t, Config{Brokers: []string{fb.ln.Addr().String()}, RequestTimeout: 5 * time.Second})
			for i := range 2 {
				err := c.Ready(testCtx(t))
				if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), fb.ln.Addr().String()) {
					t.Fatalf("call %d: %v; want an error with %q", i, err, tt.want)
				}
				if n := fb.accepts.Load(); n != int64(i+1) {
					t.Fatalf("call %d: %d connections; the broken one was not dropped and redialed", i, n)
				}
			}
			_, err := c.ListOffset(testCtx(t), "t", 0, -1)
			var e *Error
			if !errors.As(err, &e) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("ListOffset: %v", err)
			}
		})
	}
}

// TestHostileHandshake: a broker that breaks during ApiVersions fails the
// dial, and the pool backs off instead of redialing at once.
func TestHostileHandshake(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var accepts atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			accepts.Add(1)
			_, _ = nc.Write([]byte{0x7f, 0, 0, 0}) // a 2 GiB claim
			nc.Close()
		}
	}()
	t.Cleanup(func() { ln.Close(); <-done })

	c := newClient(t, Config{Brokers: []string{ln.Addr().String()}})
	start := time.Now()
	for range 3 {
		err := c.Ready(testCtx(t))
		if err == nil || !strings.Contains(err.Error(), "bytes outside 4..") {
			t.Fatalf("Ready: %v", err)
		}
	}
	// The shortest first backoff is 80ms (100ms less 20% jitter); only a
	// machine too slow to make three calls in that time may have redialed.
	if n := accepts.Load(); n != 1 && time.Since(start) < backoffBase*4/5 {
		t.Errorf("%d dials within the backoff, want 1", n)
	}
	if !c.pool(ln.Addr().String(), laneControl).down() {
		t.Error("pool not down after a failed handshake")
	}
}

// TestDownBrokerFailsFast: once dials to a broker failed, calls fail at
// once with ErrBrokerUnreachable, also the one that starts the probe dial
// and those while it runs: a broker that accepts and never answers holds
// the probe until its timeout, and no call. Before, every call waited for
// the probe dial (the 26-28 s behind a silent broker).
func TestDownBrokerFailsFast(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	accepted := make(chan net.Conn, 16)
	go func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- nc
		}
	}()
	var silent []net.Conn
	t.Cleanup(func() {
		ln.Close()
		for _, nc := range silent {
			nc.Close()
		}
	})
	addr := ln.Addr().String()
	c := newClient(t, Config{Brokers: []string{addr}, RequestTimeout: time.Minute})
	p := c.pool(addr, laneControl)

	// The first dial fails: the broker hangs up during the handshake.
	first := make(chan error, 1)
	go func() { _, err := p.get(testCtx(t)); first <- err }()
	(<-accepted).Close()
	if err := <-first; !errors.Is(err, ErrBrokerUnreachable) {
		t.Fatalf("first dial: %v, want ErrBrokerUnreachable", err)
	}
	// While the pool backs off: no dial.
	if _, err := p.get(testCtx(t)); !errors.Is(err, ErrBrokerUnreachable) || !strings.Contains(err.Error(), "next dial in") {
		t.Fatalf("while backing off: %v, want a fast ErrBrokerUnreachable", err)
	}
	// The backoff ends (as if its time had passed); the next call starts
	// the probe and fails at once, and the broker now accepts and never
	// answers.
	p.mu.Lock()
	p.retryAt = time.Time{}
	p.mu.Unlock()
	if _, err := p.get(testCtx(t)); !errors.Is(err, ErrBrokerUnreachable) || !strings.Contains(err.Error(), "probing") {
		t.Fatalf("the call that starts the probe: %v, want a fast ErrBrokerUnreachable", err)
	}
	nc := <-accepted
	silent = append(silent, nc)
	ctx, cancel := context.WithTimeout(testCtx(t), 10*time.Second)
	defer cancel()
	_, err = c.ListOffset(ctx, "t", 0, -1)
	if !errors.Is(err, ErrBrokerUnreachable) || errors.Is(err, ErrTimeout) || !strings.Contains(err.Error(), "probing") {
		t.Fatalf("a call during the probe: %v, want a fast ErrBrokerUnreachable", err)
	}
	if !p.down() {
		t.Fatal("the pool is up while its probe hangs")
	}
	if len(accepted) != 0 {
		t.Fatalf("%d more dials during the probe, want none", len(accepted))
	}
}
