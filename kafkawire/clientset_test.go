package kafkawire

import (
	"errors"
	"sync"
	"testing"
)

// TestClientSet: Configs of one Key share a Client, held until the last
// release closes it; other keys get other Clients; a bad Config is New's
// error and leaves nothing in the set.
func TestClientSet(t *testing.T) {
	var set ClientSet
	cfg := Config{Brokers: []string{"127.0.0.1:1"}, Logger: quietLogger}
	a, releaseA, err := set.Acquire(cfg)
	if err != nil {
		t.Fatal(err)
	}
	same := cfg
	same.ConnsPerBroker, same.Observer = 2, newRecorder() // the defaults and Observer are not the key
	b, releaseB, err := set.Acquire(same)
	if err != nil || b != a || set.Len() != 1 {
		t.Fatalf("same key: %p and %p, %v, %d clients", a, b, err, set.Len())
	}
	other := cfg
	other.IsolationLevel = 1
	o, releaseO, err := set.Acquire(other)
	if err != nil || o == a || set.Len() != 2 {
		t.Fatalf("other key: %p, %v, %d clients", o, err, set.Len())
	}
	if _, _, err := set.Acquire(Config{}); !errors.Is(err, ErrConfig) || set.Len() != 2 {
		t.Fatalf("bad config: %v, %d clients", err, set.Len())
	}

	releaseA()
	releaseA() // twice is once
	if a.closed.Load() {
		t.Fatal("closed while held")
	}
	releaseB()
	if !a.closed.Load() || set.Len() != 1 {
		t.Fatalf("after the last release: closed %t, %d clients", a.closed.Load(), set.Len())
	}
	if err := a.Ready(testCtx(t)); !errors.Is(err, ErrClosed) {
		t.Fatalf("Ready on the released client: %v", err)
	}
	c, releaseC, err := set.Acquire(cfg)
	if err != nil || c == a {
		t.Fatalf("after the last release: %p (old %p), %v", c, a, err)
	}
	releaseC()
	releaseO()
	if set.Len() != 0 || !o.closed.Load() {
		t.Fatalf("%d clients left", set.Len())
	}

	// Many holders at once: one Client while any holds it.
	var wg sync.WaitGroup
	clients := make(chan *Client, 50)
	for range 50 {
		wg.Go(func() {
			c, release, err := set.Acquire(cfg)
			if err != nil {
				t.Error(err)
				return
			}
			clients <- c
			defer release()
		})
	}
	wg.Wait()
	close(clients)
	if set.Len() != 0 {
		t.Fatalf("%d clients left after every release", set.Len())
	}
	for c := range clients {
		if !c.closed.Load() {
			t.Fatal("a client left open")
		}
	}
}
