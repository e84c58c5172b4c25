package chaos

import (
	"errors"
	"io"
	"net"
	"syscall"
	"testing"
	"time"
)

// TestGate: a gate proxies to its target; closed, it refuses connections
// and resets those open; opened again on the same port, it proxies again.
func TestGate(t *testing.T) {
	echo, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer echo.Close()
	go func() {
		for {
			c, err := echo.Accept()
			if err != nil {
				return
			}
			go func() { _, _ = io.Copy(c, c); c.Close() }()
		}
	}()
	g, err := newGate()
	if err != nil {
		t.Fatal(err)
	}
	defer g.close()
	g.setTarget(echo.Addr().String())

	roundTrip := func(c net.Conn) error {
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := c.Write([]byte("ping")); err != nil {
			return err
		}
		b := make([]byte, 4)
		if _, err := io.ReadFull(c, b); err != nil {
			return err
		}
		if string(b) != "ping" {
			t.Fatalf("echo through the gate: %q", b)
		}
		return nil
	}
	c, err := net.Dial("tcp", g.addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := roundTrip(c); err != nil {
		t.Fatalf("through the open gate: %v", err)
	}

	g.close()
	if err := roundTrip(c); !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("a connection open when the gate closed: %v, want ECONNRESET", err)
	}
	if c2, err := net.Dial("tcp", g.addr()); !errors.Is(err, syscall.ECONNREFUSED) {
		if c2 != nil {
			c2.Close()
		}
		t.Errorf("dial the closed gate: %v, want ECONNREFUSED", err)
	}

	if err := g.open(); err != nil {
		t.Fatalf("open again on port %d: %v", g.port, err)
	}
	c3, err := net.Dial("tcp", g.addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c3.Close()
	if err := roundTrip(c3); err != nil {
		t.Fatalf("through the gate opened again: %v", err)
	}
}
