package kafkawire

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkaedge/kafkaedge/kafkawire/wire"
)

// faultCluster is a cluster with topic "f" (1 partition, leader off the
// bootstrap broker 0, 5 records) and a client bootstrapped from broker 0.
func faultCluster(t *testing.T, cfg Config) (*testCluster, *Client) {
	t.Helper()
	tc := newCluster(t, kfake.SeedTopics(1, "f"))
	bootstrapOff(t, tc.k, "f", 1)
	tc.k.Produce(t, nil, makeRecords("f", 0, 5, time.UnixMilli(1_700_000_000_000), "f")...)
	cfg.Brokers = tc.addrs[:1]
	c := newClient(t, cfg)
	if _, err := c.ListOffset(testCtx(t), "f", 0, -1); err != nil {
		t.Fatalf("warm-up: %v", err)
	}
	return tc, c
}

// fetchErrorResponse answers a Fetch request with code for every partition.
func fetchErrorResponse(req kmsg.Request, code int16) kmsg.Response {
	fr := req.(*kmsg.FetchRequest)
	resp := fr.ResponseKind().(*kmsg.FetchResponse)
	for _, t := range fr.Topics {
		rt := kmsg.NewFetchResponseTopic()
		rt.Topic, rt.TopicID = t.Topic, t.TopicID
		for _, p := range t.Partitions {
			rp := kmsg.NewFetchResponseTopicPartition()
			rp.Partition, rp.ErrorCode = p.Partition, code
			rp.HighWatermark, rp.LastStableOffset, rp.LogStartOffset = -1, -1, -1
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp
}

// listOffsetsErrorResponse answers a ListOffsets request with code.
func listOffsetsErrorResponse(req kmsg.Request, code int16) kmsg.Response {
	lr := req.(*kmsg.ListOffsetsRequest)
	resp := lr.ResponseKind().(*kmsg.ListOffsetsResponse)
	for _, t := range lr.Topics {
		rt := kmsg.NewListOffsetsResponseTopic()
		rt.Topic = t.Topic
		for _, p := range t.Partitions {
			rp := kmsg.NewListOffsetsResponseTopicPartition()
			rp.Partition, rp.ErrorCode, rp.Offset, rp.Timestamp = p.Partition, code, -1, -1
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp
}

// TestBrokerClosesMidRequest: a connection closed under a request is retried
// on a fresh connection once; if it keeps happening the error names the
// broker and the cause.
func TestBrokerClosesMidRequest(t *testing.T) {
	rec := newRecorder()
	tc, c := faultCluster(t, Config{Observer: rec})
	ctx := testCtx(t)
	leader := tc.addrs[tc.LeaderFor("f", 0)]

	var hits atomic.Int64
	tc.ControlKey(int16(wire.KeyFetch), func(kmsg.Request) (kmsg.Response, error, bool) {
		hits.Add(1)
		return nil, errors.New("close the connection"), true
	})
	before := rec.connsUp()
	res, err := c.Fetch(ctx, "f", 0, 1)
	if err != nil {
		t.Fatalf("Fetch with one connection closed under it: %v", err)
	}
	if len(res.Records) != 4 || hits.Load() != 1 {
		t.Fatalf("%d records, %d closes", len(res.Records), hits.Load())
	}
	res.Release()
	if rec.connsUp() == before {
		t.Error("no new connection after the close")
	}

	tc.ControlKey(int16(wire.KeyListOffsets), func(kmsg.Request) (kmsg.Response, error, bool) {
		tc.KeepControl()
		return nil, errors.New("close the connection"), true
	})
	_, err = c.ListOffset(ctx, "f", 0, -1)
	var e *Error
	if !errors.As(err, &e) || !strings.Contains(err.Error(), "connection closed by broker") || !strings.Contains(err.Error(), leader) {
		t.Fatalf("ListOffset with every connection closed: %v", err)
	}
	t.Logf("every connection closed: %v", err)
	if !strings.HasPrefix(err.Error(), "list offsets f/0@-1: ") || e.Code != 0 || !errors.Is(err, ErrBrokerUnreachable) {
		t.Errorf("error %q code %d, want a broker-unreachable failure", err, e.Code)
	}
}

// TestSlowBroker: a broker slower than the caller's deadline gives
// ErrTimeout; its late response is dropped and the connection stays usable.
func TestSlowBroker(t *testing.T) {
	rec := newRecorder()
	tc, c := faultCluster(t, Config{ConnsPerBroker: 1, Observer: rec})
	release := make(chan struct{})
	var slept atomic.Bool
	tc.ControlKey(int16(wire.KeyListOffsets), func(kmsg.Request) (kmsg.Response, error, bool) {
		if slept.CompareAndSwap(false, true) {
			tc.SleepControl(func() { <-release })
		}
		return nil, nil, false
	})
	before := rec.connsUp()

	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err := c.ListOffset(ctx, "f", 0, -1)
	var e *Error
	if !errors.As(err, &e) || !errors.Is(err, ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, ErrBrokerUnreachable) {
		t.Fatalf("ListOffset past its deadline: %v", err)
	}
	close(release)

	// The next calls use the same connection, which first gets the late
	// answer to the timed-out call and drops it.
	for range 3 {
		if off, err := c.ListOffset(testCtx(t), "f", 0, -1); err != nil || off != 5 {
			t.Fatalf("ListOffset after the timeout: %d, %v", off, err)
		}
	}
	if n := rec.connsUp() - before; n != 0 {
		t.Errorf("%d new connections: the late response broke the connection", n)
	}
	leader := tc.addrs[tc.LeaderFor("f", 0)]
	p := c.pool(leader, laneControl)
	p.mu.Lock()
	cn := p.slots[0].c
	p.mu.Unlock()
	if cn == nil || !cn.alive() || cn.load() != 0 {
		t.Fatalf("leader connection: %+v", cn)
	}
	cn.mu.Lock()
	abandoned := cn.abandoned
	cn.mu.Unlock()
	if abandoned != 0 {
		t.Errorf("%d abandoned calls still pending", abandoned)
	}
}

// TestErrorOnceThenSuccess: leader errors returned once are retried
// transparently after a metadata refresh; persistent ones are reported with
// their code.
func TestErrorOnceThenSuccess(t *testing.T) {
	tc, c := faultCluster(t, Config{})
	ctx := testCtx(t)
	metadata := tc.countKey(int16(wire.KeyMetadata))

	for _, code := range []int16{wire.ErrNotLeaderOrFollower, wire.ErrFencedLeaderEpoch, wire.ErrUnknownTopicOrPartition, wire.ErrLeaderNotAvailable,
		wire.ErrReplicaNotAvailable, wire.ErrKafkaStorageError, wire.ErrInconsistentTopicID} {
		tc.ControlKey(int16(wire.KeyFetch), func(req kmsg.Request) (kmsg.Response, error, bool) {
			return fetchErrorResponse(req, code), nil, true
		})
		m := metadata.Load()
		res, err := c.Fetch(ctx, "f", 0, 0)
		if err != nil || len(res.Records) != 5 {
			t.Fatalf("Fetch with %s once: %v", wire.ErrorName(code), err)
		}
		res.Release()
		if metadata.Load() != m+1 {
			t.Errorf("%s: %d metadata refreshes, want 1", wire.ErrorName(code), metadata.Load()-m)
		}

		tc.ControlKey(int16(wire.KeyListOffsets), func(req kmsg.Request) (kmsg.Response, error, bool) {
			return listOffsetsErrorResponse(req, code), nil, true
		})
		if off, err := c.ListOffset(ctx, "f", 0, -2); err != nil || off != 0 {
			t.Fatalf("ListOffset with %s once: %d, %v", wire.ErrorName(code), off, err)
		}
	}

	// Persistent errors: one retry, then the code.
	for _, tt := range []struct {
		code   int16
		reason string
	}{
		{wire.ErrNotLeaderOrFollower, "NOT_LEADER_OR_FOLLOWER"},
		{wire.ErrUnknownTopicOrPartition, "unknown topic or partition"},
	} {
		var n atomic.Int64
		tc.ControlKey(int16(wire.KeyFetch), func(req kmsg.Request) (kmsg.Response, error, bool) {
			tc.KeepControl()
			if n.Add(1) == 2 {
				tc.DropControl()
			}
			return fetchErrorResponse(req, tt.code), nil, true
		})
		_, err := c.Fetch(ctx, "f", 0, 3)
		var e *Error
		if !errors.As(err, &e) || e.Code != tt.code || err.Error() != "fetch f/0@3: "+tt.reason {
			t.Fatalf("persistent %s: %v", wire.ErrorName(tt.code), err)
		}
		if n.Load() != 2 {
			t.Errorf("%s: %d attempts, want 2", wire.ErrorName(tt.code), n.Load())
		}
	}

	// Other errors are not retried: the one error answer is the result.
	tc.ControlKey(int16(wire.KeyFetch), func(req kmsg.Request) (kmsg.Response, error, bool) {
		return fetchErrorResponse(req, wire.ErrTopicAuthorizationFailed), nil, true
	})
	_, err := c.Fetch(ctx, "f", 0, 3)
	var e *Error
	if !errors.As(err, &e) || e.Code != wire.ErrTopicAuthorizationFailed || err.Error() != "fetch f/0@3: TOPIC_AUTHORIZATION_FAILED" {
		t.Fatalf("TOPIC_AUTHORIZATION_FAILED once: %v", err)
	}
	if res, err := c.Fetch(ctx, "f", 0, 0); err != nil || len(res.Records) != 5 {
		t.Fatalf("Fetch after the faults: %v", err)
	}
}

// TestTransientErrors: a leader elected moments ago answers ListOffsets with
// OFFSET_NOT_AVAILABLE until it knows its high watermark, and any call with
// UNKNOWN_LEADER_EPOCH until it has applied the metadata the client already
// has (both seen on real clusters, see TestFailover). The call asks it
// again, paced, without refreshing the metadata, until its deadline.
func TestTransientErrors(t *testing.T) {
	rec := newRecorder()
	tc, c := faultCluster(t, Config{Observer: rec})
	for _, tt := range []struct {
		key  int16
		code int16
		call func(ctx context.Context) error
	}{
		{wire.KeyListOffsets, wire.ErrOffsetNotAvailable, func(ctx context.Context) error {
			off, err := c.ListOffset(ctx, "f", 0, -1)
			if err == nil && off != 5 {
				err = fmt.Errorf("offset %d, want 5", off)
			}
			return err
		}},
		{wire.KeyListOffsets, wire.ErrUnknownLeaderEpoch, func(ctx context.Context) error {
			_, err := c.ListOffset(ctx, "f", 0, -1)
			return err
		}},
		{wire.KeyFetch, wire.ErrUnknownLeaderEpoch, func(ctx context.Context) error {
			res, err := c.Fetch(ctx, "f", 0, 2)
			if err == nil && len(res.Records) != 3 {
				err = fmt.Errorf("%d records, want 3", len(res.Records))
			}
			return err
		}},
	} {
		name := fmt.Sprintf("%s %s", apiName(tt.key), wire.ErrorName(tt.code))
		answer := func(req kmsg.Request) kmsg.Response {
			if tt.key == wire.KeyFetch {
				return fetchErrorResponse(req, tt.code)
			}
			return listOffsetsErrorResponse(req, tt.code)
		}
		var n atomic.Int64
		tc.ControlKey(tt.key, func(req kmsg.Request) (kmsg.Response, error, bool) {
			if n.Add(1) < 4 {
				tc.KeepControl()
				return answer(req), nil, true
			}
			return nil, nil, false
		})
		metadata := rec.count("Metadata")
		start := time.Now()
		if err := tt.call(testCtx(t)); err != nil {
			t.Fatalf("%s 3 times: %v", name, err)
		}
		if d := time.Since(start); n.Load() != 4 || d < pauseBase*7 {
			t.Errorf("%s: %d attempts in %v; want 4, paced %v, %v, %v", name, n.Load(), d, pauseBase, 2*pauseBase, 4*pauseBase)
		}
		if m := rec.count("Metadata"); m != metadata {
			t.Errorf("%s: %d metadata refreshes for a leader that is right", name, m-metadata)
		}

		// For as long as it lasts: the error, before the deadline.
		var over atomic.Bool
		tc.ControlKey(tt.key, func(req kmsg.Request) (kmsg.Response, error, bool) {
			if over.Load() {
				return nil, nil, false // dropped
			}
			tc.KeepControl()
			return answer(req), nil, true
		})
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		err := tt.call(ctx)
		var e *Error
		if !errors.As(err, &e) || e.Code != tt.code || !strings.HasSuffix(err.Error(), ": "+wire.ErrorName(tt.code)) {
			t.Fatalf("persistent %s: %v", name, err)
		}
		if ctx.Err() != nil {
			t.Errorf("persistent %s: the call waited past its deadline", name)
		}
		cancel()
		over.Store(true)
	}
}
