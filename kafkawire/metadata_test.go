package kafkawire

import (
	"errors"
	"fmt"
	"maps"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkaedge/kafkaedge/internal/kafkatest"
	"github.com/kafkaedge/kafkaedge/kafkawire/wire"
)

// TestUnknownTopicsBounded: calls for many distinct topic names that do not
// exist, one after the other and at once, cost a few Metadata requests, not
// one per name: a name missing from the metadata is looked up in the
// cluster's list of topics, asked for once and trusted for negativeTTL. The
// requests are counted by the client and, on kfake, by the broker.
func TestUnknownTopicsBounded(t *testing.T) {
	kafkatest.Each(t, func(t *testing.T, k *kafkatest.Kafka) {
		tp := k.Topic(t, "known", 1)
		atBroker := new(atomic.Int64)
		if k.Fake != nil {
			atBroker = countRequests(k.Fake, wire.KeyMetadata)
		}
		rec := newRecorder()
		c := newClient(t, Config{Brokers: k.Brokers, Observer: rec})
		ctx := testCtx(t)
		if _, err := c.ListOffset(ctx, tp, 0, -1); err != nil {
			t.Fatal(err)
		}

		const sequential, concurrent = 5000, 200
		start := time.Now()
		for i := range sequential {
			name := fmt.Sprintf("nope-%d", i)
			if _, err := c.Fetch(ctx, name, 0, 0); !errors.Is(err, ErrUnknownTopic) {
				t.Fatalf("Fetch %s: %v", name, err)
			}
		}
		var wg sync.WaitGroup
		for i := range concurrent {
			wg.Go(func() {
				name := fmt.Sprintf("nope-at-once-%d", i)
				if _, err := c.ListOffset(ctx, name, 0, -1); !errors.Is(err, ErrUnknownTopic) {
					t.Errorf("ListOffset %s: %v", name, err)
				}
			})
		}
		wg.Wait()
		elapsed := time.Since(start)

		// One list per negativeTTL at most, and the first call's.
		n, limit := rec.count("Metadata"), 2+int(elapsed/negativeTTL)
		t.Logf("%d calls of distinct unknown topics in %v: %d Metadata requests", sequential+concurrent, elapsed, n)
		if n > limit {
			t.Errorf("%d Metadata requests for %d distinct unknown topics in %v, want at most %d", n, sequential+concurrent, elapsed, limit)
		}
		if k.Fake != nil && atBroker.Load() != int64(n) {
			t.Errorf("the brokers got %d Metadata requests, the client counted %d", atBroker.Load(), n)
		}
		// Nothing is kept per name asked.
		if snap := c.meta.Load(); len(snap.topics) != 1 || len(snap.names) > 1000 {
			t.Errorf("%d topics cached, %d names listed", len(snap.topics), len(snap.names))
		}
		// The known topic is still served from the cache.
		if _, err := c.ListOffset(ctx, tp, 0, -1); err != nil {
			t.Fatal(err)
		}
	})
}

// TestCreatedTopicVisible: a topic found missing and then created is served
// within about negativeTTL of its creation.
func TestCreatedTopicVisible(t *testing.T) {
	kafkatest.Each(t, func(t *testing.T, k *kafkatest.Kafka) {
		name := fmt.Sprintf("later-%d", time.Now().UnixNano())
		c := newClient(t, Config{Brokers: k.Brokers})
		ctx := testCtx(t)
		if _, err := c.ListOffset(ctx, name, 0, -1); !errors.Is(err, ErrUnknownTopic) {
			t.Fatalf("ListOffset before the topic exists: %v", err)
		}
		rf := int16(1)
		if k.Fake != nil {
			rf = -1
		}
		resp, err := k.Admin(t).CreateTopic(ctx, 1, rf, nil, name)
		if err == nil {
			err = resp.Err
		}
		if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
			t.Fatalf("create %s: %v", name, err)
		}
		k.WaitLeaders(t, name, 1)
		created := time.Now()
		for {
			_, err := c.ListOffset(ctx, name, 0, -1)
			if err == nil {
				break
			}
			if !errors.Is(err, ErrUnknownTopic) || time.Since(created) > negativeTTL+2*time.Second {
				t.Fatalf("ListOffset %v after the topic was created: %v", time.Since(created), err)
			}
			select {
			case <-ctx.Done():
				t.Fatal(ctx.Err())
			case <-time.After(20 * time.Millisecond):
			}
		}
		t.Logf("served %v after the topic was created", time.Since(created))
	})
}

// TestManyBootstrapBrokers: when none of many bootstrap brokers answers,
// the error names a few of them and counts the others, on one short line.
func TestManyBootstrapBrokers(t *testing.T) {
	dead := deadAddrs(t, 1000)
	c := newClient(t, Config{Brokers: dead})
	ctx := testCtx(t)
	start := time.Now()
	_, err := c.ListOffset(ctx, "t", 0, -1)
	t.Logf("after %v: %v", time.Since(start), err)
	if !errors.Is(err, ErrBrokerUnreachable) || !strings.Contains(err.Error(), "refused") {
		t.Fatalf("no broker up: %v", err)
	}
	text := err.Error()
	if named := strings.Count(text, "broker 127.0.0.1:"); named < 1 || named > 3 || !strings.Contains(text, "; and 997 more") || len(text) > 1000 {
		t.Errorf("the error of %d dead brokers names %d (%d bytes): %s", len(dead), named, len(text), text)
	}
	if err := c.Ready(ctx); err == nil || len(err.Error()) > 1000 {
		t.Errorf("Ready: %v", err)
	}
}

// deadAddrs is n distinct loopback addresses nothing listens on (a port
// closed may come again: drawn until n differ).
func deadAddrs(t *testing.T, n int) []string {
	t.Helper()
	seen := make(map[string]bool, n)
	for len(seen) < n {
		seen[deadAddr(t)] = true
	}
	return slices.Collect(maps.Keys(seen))
}

// accepted is a connection a silentBroker took.
type accepted struct {
	idx int
	nc  net.Conn
}

// silentBrokers starts n silent brokers that report every connection on the
// channel returned.
func silentBrokers(t *testing.T, n int) ([]string, <-chan accepted) {
	t.Helper()
	ch := make(chan accepted, 16*n)
	addrs := make([]string, n)
	for i := range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close() })
		addrs[i] = l.Addr().String()
		go func() {
			for {
				nc, err := l.Accept()
				if err != nil {
					return
				}
				t.Cleanup(func() { nc.Close() })
				ch <- accepted{i, nc}
			}
		}()
	}
	return addrs, ch
}

// TestBootstrapParallel: bootstrap brokers that do not answer are tried
// three at a time; when one fails the next is tried, and a broker that
// answers further down the list serves the call.
func TestBootstrapParallel(t *testing.T) {
	kafkatest.Each(t, func(t *testing.T, k *kafkatest.Kafka) {
		tp := k.Topic(t, "bp", 1)
		silent, conns := silentBrokers(t, 5)
		c := newClient(t, Config{Brokers: append(silent, k.Brokers...)})
		ctx := testCtx(t)
		done := make(chan error, 1)
		go func() {
			_, err := c.ListOffset(ctx, tp, 0, -1)
			done <- err
		}()
		wait := func(what string) accepted {
			t.Helper()
			select {
			case a := <-conns:
				return a
			case err := <-done:
				t.Fatalf("the call ended (%v) while waiting for %s", err, what)
			case <-time.After(5 * time.Second):
				t.Fatalf("no connection to %s", what)
			}
			return accepted{}
		}
		first := map[int]net.Conn{}
		for len(first) < 3 {
			a := wait(fmt.Sprintf("the bootstrap broker tried with %d others at once", len(first)))
			first[a.idx] = a.nc
		}
		for i := range 3 {
			if first[i] == nil {
				t.Fatalf("brokers %v tried first, want 0, 1, 2", first)
			}
		}
		select {
		case a := <-conns:
			t.Fatalf("broker %d tried while 3 were in progress", a.idx)
		default:
		}
		// One failure at a time, so that one slot is free at a time: with
		// two, the broker that answers (after the silent ones) may be
		// tried, and answer, before the fifth silent one's accept is read.
		first[0].Close() // fails the dial: the next broker is tried
		if a := wait("the fourth broker"); a.idx != 3 {
			t.Fatalf("broker %d tried after the first failed, want 3", a.idx)
		} else {
			a.nc.Close()
		}
		if a := wait("the fifth broker"); a.idx != 4 {
			t.Fatalf("broker %d tried last, want 4", a.idx)
		} else {
			a.nc.Close()
		}
		first[1].Close()
		first[2].Close()
		if err := <-done; err != nil {
			t.Fatalf("the call with a broker up further down the list: %v", err)
		}
	})
}

// TestJoinListFlight: a caller that joins a Metadata flight asking for the
// cluster's whole topic list has its topic installed from that answer.
// (Before, it found the topic listed but not cached, and its call failed
// with "unknown topic" although the topic existed.)
func TestJoinListFlight(t *testing.T) {
	tc := newCluster(t, kfake.SeedTopics(1, "t"))
	c := newClient(t, Config{Brokers: tc.addrs})
	entered, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	tc.ControlKey(int16(wire.KeyMetadata), func(req kmsg.Request) (kmsg.Response, error, bool) {
		tc.KeepControl()
		if req.(*kmsg.MetadataRequest).Topics == nil { // the list of every topic
			once.Do(func() { close(entered); <-release })
		}
		return nil, nil, false
	})
	ctx := testCtx(t)
	errs := make(chan error, 2)
	go func() { _, err := c.ListOffset(ctx, "nope", 0, -1); errs <- err }()
	<-entered
	go func() { _, err := c.ListOffset(ctx, "t", 0, -1); errs <- err }()
	joined := func() bool {
		c.metaMu.Lock()
		defer c.metaMu.Unlock()
		if c.metaCur == nil {
			return false
		}
		_, ok := c.metaCur.topics["t"]
		return ok
	}
	for deadline := time.Now().Add(10 * time.Second); !joined(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			close(release)
			t.Fatal("the second caller did not join the list's flight with its topic")
		}
	}
	close(release)
	var unknown, ok int
	for range 2 {
		switch err := <-errs; {
		case err == nil:
			ok++
		case errors.Is(err, ErrUnknownTopic):
			unknown++
		default:
			t.Errorf("ListOffset: %v", err)
		}
	}
	if ok != 1 || unknown != 1 {
		t.Fatalf("%d answered, %d unknown topic; want t answered and nope unknown", ok, unknown)
	}
}
