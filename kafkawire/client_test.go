package kafkawire

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"

	"github.com/kafkaedge/kafkaedge/kafkawire/wire"
)

// TestListOffsetAndFetch covers both calls against leaders that are not the
// bootstrap broker: timestamp semantics, trimming, the end of the log, and
// the error texts of bad offsets, topics and partitions.
func TestListOffsetAndFetch(t *testing.T) {
	tc := newCluster(t, kfake.SeedTopics(3, "t"))
	tc.moveOff(t, "t", 3, 0)
	base := time.UnixMilli(1_700_000_000_000)
	recs := makeRecords("t", 1, 20, base, "a")
	produce(t, tc.addrs, nil, recs...)

	c := newClient(t, Config{Brokers: tc.addrs[:1]})
	ctx := testCtx(t)

	for _, tt := range []struct {
		ts, want int64
	}{
		{-2, 0},
		{-1, 20},
		{base.UnixMilli(), 0},
		{base.Add(5 * time.Second).UnixMilli(), 5},
		{base.Add(5*time.Second + time.Millisecond).UnixMilli(), 6},
		{base.Add(19 * time.Second).UnixMilli(), 19},
		{base.Add(time.Hour).UnixMilli(), -1},
	} {
		got, err := c.ListOffset(ctx, "t", 1, tt.ts)
		if err != nil || got != tt.want {
			t.Errorf("ListOffset(t/1, %d) = %d, %v; want %d", tt.ts, got, err, tt.want)
		}
	}
	if got, err := c.ListOffset(ctx, "t", 2, -1); err != nil || got != 0 {
		t.Errorf("ListOffset(empty partition, -1) = %d, %v; want 0", got, err)
	}

	res, err := c.Fetch(ctx, "t", 1, 0)
	if err != nil {
		t.Fatalf("Fetch at 0: %v", err)
	}
	sameRecords(t, res.Records, recs, 0)
	if res.HighWatermark != 20 || res.LogStartOffset != 0 || res.Topic != "t" || res.Partition != 1 || res.Offset != 0 {
		t.Errorf("result fields %+v", res)
	}
	res.Release()
	res.Release() // twice is safe
	if res.Records != nil {
		t.Error("Records kept after Release")
	}

	res, err = c.Fetch(ctx, "t", 1, 7)
	if err != nil {
		t.Fatalf("Fetch at 7: %v", err)
	}
	sameRecords(t, res.Records, recs[7:], 7)
	res.Release()

	res, err = c.Fetch(ctx, "t", 1, 20)
	if err != nil || len(res.Records) != 0 {
		t.Fatalf("Fetch at the end = %v, %v; want no records", res, err)
	}

	_, err = c.Fetch(ctx, "t", 1, 120)
	var e *Error
	if !errors.As(err, &e) || e.Code != wire.ErrOffsetOutOfRange || e.Reason() != "OFFSET_OUT_OF_RANGE" {
		t.Fatalf("Fetch past the end: %v", err)
	}
	if got, want := err.Error(), "fetch t/1@120: OFFSET_OUT_OF_RANGE"; got != want {
		t.Errorf("error text %q, want %q", got, want)
	}

	for _, tt := range []struct {
		topic string
		part  int32
	}{{"nope", 0}, {"t", 3}, {"t", -1}} {
		_, err := c.Fetch(ctx, tt.topic, tt.part, 0)
		if !errors.As(err, &e) || !errors.Is(err, ErrUnknownTopic) || e.Reason() != "not found topic" {
			t.Errorf("Fetch %s/%d: %v", tt.topic, tt.part, err)
		}
		_, err = c.ListOffset(ctx, tt.topic, tt.part, -1)
		if !errors.As(err, &e) || e.Reason() != "not found topic" || e.Op != "list offsets" {
			t.Errorf("ListOffset %s/%d: %v", tt.topic, tt.part, err)
		}
	}
	if err := c.Ready(ctx); err != nil {
		t.Errorf("Ready: %v", err)
	}
}

// TestFetchMany fetches several topics and partitions (leaders on several
// brokers) in one call, with an unknown topic and a repeated partition.
func TestFetchMany(t *testing.T) {
	tc := newCluster(t, kfake.SeedTopics(3, "a", "b"))
	tc.moveOff(t, "a", 3, 0)
	base := time.UnixMilli(1_700_000_000_000)
	var all []*kgo.Record
	want := map[string][]*kgo.Record{}
	for _, topic := range []string{"a", "b"} {
		for p := range int32(3) {
			recs := makeRecords(topic, p, 5+int(p), base, fmt.Sprintf("%s%d", topic, p))
			want[fmt.Sprintf("%s/%d", topic, p)] = recs
			all = append(all, recs...)
		}
	}
	produce(t, tc.addrs, nil, all...)

	c := newClient(t, Config{Brokers: tc.addrs[:1]})
	parts := []FetchPartition{
		{"a", 0, 0}, {"a", 1, 2}, {"a", 2, 0}, {"b", 0, 1}, {"b", 2, 0},
		{"missing", 0, 0}, {"a", 1, 4}, {"b", 1, 99},
	}
	rs, err := c.FetchMany(testCtx(t), parts)
	if err != nil {
		t.Fatalf("FetchMany: %v", err)
	}
	if len(rs) != len(parts) {
		t.Fatalf("%d results for %d partitions", len(rs), len(parts))
	}
	for i, p := range parts {
		r := rs[i]
		if r.Topic != p.Topic || r.Partition != p.Partition || r.Offset != p.Offset {
			t.Fatalf("result %d is for %s/%d@%d", i, r.Topic, r.Partition, r.Offset)
		}
		switch {
		case p.Topic == "missing":
			if !errors.Is(r.Err, ErrUnknownTopic) {
				t.Errorf("missing topic: %v", r.Err)
			}
		case p.Offset == 99:
			var e *Error
			if !errors.As(r.Err, &e) || e.Code != wire.ErrOffsetOutOfRange {
				t.Errorf("b/1@99: %v", r.Err)
			}
		default:
			if r.Err != nil {
				t.Fatalf("%s/%d: %v", p.Topic, p.Partition, r.Err)
			}
			sameRecords(t, r.Records, want[fmt.Sprintf("%s/%d", p.Topic, p.Partition)][p.Offset:], p.Offset)
		}
	}
	for _, r := range rs {
		r.Release()
	}
}

// TestMoveTopicPartition moves a leader between calls: the stale leader
// answers NOT_LEADER_OR_FOLLOWER (or the epoch is fenced) and the client
// refreshes its metadata and retries.
func TestMoveTopicPartition(t *testing.T) {
	tc := newCluster(t, kfake.SeedTopics(1, "m"))
	tc.moveOff(t, "m", 1, 0)
	recs := makeRecords("m", 0, 10, time.UnixMilli(1_700_000_000_000), "m")
	produce(t, tc.addrs, nil, recs...)
	c := newClient(t, Config{Brokers: tc.addrs[:1]})
	ctx := testCtx(t)
	metadata := tc.countKey(int16(wire.KeyMetadata))
	fetches := tc.versionsOf(int16(wire.KeyFetch))

	for _, to := range []int32{2, 0, 1, 2} {
		if err := tc.MoveTopicPartition("m", 0, to); err != nil {
			t.Fatal(err)
		}
		res, err := c.Fetch(ctx, "m", 0, 3)
		if err != nil {
			t.Fatalf("Fetch after moving the leader to %d: %v", to, err)
		}
		sameRecords(t, res.Records, recs[3:], 3)
		res.Release()
		if err := tc.MoveTopicPartition("m", 0, (to+1)%3); err != nil {
			t.Fatal(err)
		}
		if off, err := c.ListOffset(ctx, "m", 0, -1); err != nil || off != 10 {
			t.Fatalf("ListOffset after moving the leader: %d, %v", off, err)
		}
	}
	// Every move made the next call fail once, refresh and retry.
	if n := metadata.Load(); n < 8 {
		t.Errorf("%d Metadata requests for 8 leader moves", n)
	}
	if v := fetches(); len(v) == 0 || v[0] < 13 {
		t.Errorf("Fetch versions %v, want topic-ID versions (13+)", v)
	}
}

// TestDeadBootstrapFirst lists a dead address first: the call goes on to the
// next bootstrap broker.
func TestDeadBootstrapFirst(t *testing.T) {
	tc := newCluster(t, kfake.SeedTopics(2, "d"))
	produce(t, tc.addrs, nil, makeRecords("d", 1, 3, time.Now(), "d")...)

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := l.Addr().String()
	l.Close()

	c := newClient(t, Config{Brokers: []string{dead, tc.addrs[1]}})
	ctx := testCtx(t)
	if off, err := c.ListOffset(ctx, "d", 1, -1); err != nil || off != 3 {
		t.Fatalf("ListOffset with a dead first bootstrap broker: %d, %v", off, err)
	}
	if err := c.Ready(ctx); err != nil {
		t.Fatalf("Ready: %v", err)
	}

	// Only dead brokers: a clear error naming each address, on one line.
	l2, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead2 := l2.Addr().String()
	l2.Close()
	c2 := newClient(t, Config{Brokers: []string{dead, dead2}, RequestTimeout: 2 * time.Second})
	_, err = c2.Fetch(ctx, "d", 0, 0)
	var e *Error
	if !errors.As(err, &e) || !strings.Contains(err.Error(), dead) || !strings.Contains(err.Error(), dead2) ||
		!strings.Contains(err.Error(), "refused") || strings.Contains(e.Reason(), "\n") {
		t.Fatalf("all brokers dead: %q", err)
	}
	t.Logf("all brokers dead: %v", err)
	if err := c2.Ready(ctx); err == nil {
		t.Fatal("Ready with no broker up succeeded")
	}
}

// TestOldVersions runs against a cluster that advertises old maxima (Fetch
// v4, Metadata v1, ListOffsets v1, ApiVersions v0): the client negotiates
// down, ApiVersions included, and still works without topic IDs or epochs.
func TestOldVersions(t *testing.T) {
	vs := kversion.V0_11_0()
	vs.SetMaxKeyVersion(int16(wire.KeyFetch), 4)
	vs.SetMaxKeyVersion(int16(wire.KeyMetadata), 1)
	vs.SetMaxKeyVersion(int16(wire.KeyListOffsets), 1)
	vs.SetMaxKeyVersion(int16(wire.KeyApiVersions), 0)
	tc := newCluster(t, kfake.SeedTopics(2, "o"), kfake.MaxVersions(vs))
	tc.moveOff(t, "o", 2, 0)
	base := time.UnixMilli(1_700_000_000_000)
	recs := makeRecords("o", 1, 8, base, "o")
	produce(t, tc.addrs, []kgo.Opt{kgo.MaxVersions(vs)}, recs...)

	apiVersions := tc.versionsOf(int16(wire.KeyApiVersions))
	fetches := tc.versionsOf(int16(wire.KeyFetch))
	metadatas := tc.versionsOf(int16(wire.KeyMetadata))
	listOffsets := tc.versionsOf(int16(wire.KeyListOffsets))
	c := newClient(t, Config{Brokers: tc.addrs[:1]})
	ctx := testCtx(t)
	res, err := c.Fetch(ctx, "o", 1, 2)
	if err != nil {
		t.Fatalf("Fetch v4: %v", err)
	}
	sameRecords(t, res.Records, recs[2:], 2)
	res.Release()
	for ts, want := range map[int64]int64{-1: 8, -2: 0, base.Add(3 * time.Second).UnixMilli(): 3} {
		if off, err := c.ListOffset(ctx, "o", 1, ts); err != nil || off != want {
			t.Errorf("ListOffsets v1 (%d) = %d, %v; want %d", ts, off, err, want)
		}
	}
	if err := tc.MoveTopicPartition("o", 1, 0); err != nil {
		t.Fatal(err)
	}
	if off, err := c.ListOffset(ctx, "o", 1, -1); err != nil || off != 8 {
		t.Errorf("ListOffsets after a move on an old cluster = %d, %v", off, err)
	}
	onlyV := func(name string, got []int16, v int16) {
		t.Helper()
		if len(got) == 0 {
			t.Errorf("no %s request seen", name)
		}
		for _, g := range got {
			if g != v {
				t.Errorf("%s versions %v, want all v%d", name, got, v)
				return
			}
		}
	}
	onlyV("Fetch", fetches(), 4)
	onlyV("Metadata", metadatas(), 1)
	onlyV("ListOffsets", listOffsets(), 1)
	// Each connection asks ApiVersions v3, is told UNSUPPORTED_VERSION,
	// and asks again at v0.
	av := apiVersions()
	if len(av) < 4 || len(av)%2 != 0 {
		t.Fatalf("ApiVersions versions %v", av)
	}
	for i := 0; i < len(av); i += 2 {
		if av[i] != 3 || av[i+1] != 0 {
			t.Fatalf("ApiVersions versions %v, want pairs of v3, v0", av)
		}
	}
}

// TestNoCommonVersion: a broker whose only Fetch versions are below ours
// fails the fetch with a clear error.
func TestNoCommonVersion(t *testing.T) {
	vs := kversion.V0_10_1() // Fetch v3, ListOffsets v1, Metadata v2
	tc := newCluster(t, kfake.SeedTopics(1, "n"), kfake.MaxVersions(vs))
	c := newClient(t, Config{Brokers: tc.addrs})
	_, err := c.Fetch(testCtx(t), "n", 0, 0)
	if err == nil || !strings.Contains(err.Error(), "no common Fetch version") {
		t.Fatalf("Fetch against a Fetch v2 broker: %v", err)
	}
	if off, err := c.ListOffset(testCtx(t), "n", 0, -1); err != nil || off != 0 {
		t.Fatalf("ListOffsets v1 on the same broker: %d, %v", off, err)
	}
}

// TestCodecs fetches data kgo produced with every codec and compares it
// value by value, from the start and from inside a compressed batch.
func TestCodecs(t *testing.T) {
	codecs := []struct {
		name  string
		codec kgo.CompressionCodec
	}{
		{"none", kgo.NoCompression()},
		{"gzip", kgo.GzipCompression()},
		{"snappy", kgo.SnappyCompression()},
		{"lz4", kgo.Lz4Compression()},
		{"zstd", kgo.ZstdCompression()},
	}
	topics := make([]string, len(codecs))
	for i, cd := range codecs {
		topics[i] = "codec-" + cd.name
	}
	tc := newCluster(t, kfake.SeedTopics(1, topics...))
	c := newClient(t, Config{Brokers: tc.addrs})
	base := time.UnixMilli(1_700_000_000_000)
	for i, cd := range codecs {
		t.Run(cd.name, func(t *testing.T) {
			recs := makeRecords(topics[i], 0, 40, base, cd.name)
			// Two batches, so that fetching from the middle trims one.
			produce(t, tc.addrs, []kgo.Opt{kgo.ProducerBatchCompression(cd.codec)}, recs[:25]...)
			produce(t, tc.addrs, []kgo.Opt{kgo.ProducerBatchCompression(cd.codec)}, recs[25:]...)
			for _, from := range []int64{0, 13, 25, 39} {
				res, err := c.Fetch(testCtx(t), topics[i], 0, from)
				if err != nil {
					t.Fatalf("Fetch @%d: %v", from, err)
				}
				sameRecords(t, res.Records, recs[from:], from)
				res.Release()
			}
		})
	}
}

// TestTransactions reads committed and aborted transactions: every data
// record with read_uncommitted, only committed ones with read_committed,
// control records never.
func TestTransactions(t *testing.T) {
	tc := newCluster(t, kfake.SeedTopics(1, "tx"))
	cl, err := kgo.NewClient(kgo.SeedBrokers(tc.addrs...), kgo.TransactionalID("kafkawire-test"),
		kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerLinger(0))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx := testCtx(t)
	base := time.UnixMilli(1_700_000_000_000)
	txn := func(tag string, n int, commit kgo.TransactionEndTry) []*kgo.Record {
		recs := makeRecords("tx", 0, n, base, tag)
		if err := cl.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
		if err := cl.EndTransaction(ctx, commit); err != nil {
			t.Fatal(err)
		}
		return recs
	}
	c1 := txn("c1", 4, kgo.TryCommit) // offsets 0-3, marker 4
	ab := txn("ab", 3, kgo.TryAbort)  // offsets 5-7, marker 8
	c2 := txn("c2", 2, kgo.TryCommit) // offsets 9-10, marker 11

	uncommitted := newClient(t, Config{Brokers: tc.addrs})
	committed := newClient(t, Config{Brokers: tc.addrs, IsolationLevel: 1})

	type want struct {
		offset int64
		value  string
	}
	var all, onlyCommitted []want
	for i, r := range c1 {
		all = append(all, want{int64(i), string(r.Value)})
	}
	for i, r := range ab {
		all = append(all, want{int64(5 + i), string(r.Value)})
	}
	for i, r := range c2 {
		all = append(all, want{int64(9 + i), string(r.Value)})
	}
	for _, w := range all {
		if w.offset < 5 || w.offset > 8 {
			onlyCommitted = append(onlyCommitted, w)
		}
	}
	// Fetch until the end, as a consumer would: from the last offset + 1.
	consume := func(c *Client, from int64) []want {
		var got []want
		for range 10 {
			res, err := c.Fetch(ctx, "tx", 0, from)
			if err != nil {
				t.Fatalf("Fetch @%d: %v", from, err)
			}
			if len(res.Records) == 0 {
				res.Release()
				return got
			}
			for _, r := range res.Records {
				got = append(got, want{r.Offset, string(r.Value)})
				from = r.Offset + 1
			}
			res.Release()
		}
		t.Fatal("consumer did not reach the end")
		return nil
	}
	check := func(name string, got, want []want) {
		t.Helper()
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s:\n got %v\nwant %v", name, got, want)
		}
	}
	check("read_uncommitted from 0", consume(uncommitted, 0), all)
	check("read_committed from 0", consume(committed, 0), onlyCommitted)
	// Starting on a marker or inside the aborted transaction still reaches
	// the data after it.
	check("read_uncommitted from the marker", consume(uncommitted, 4), all[4:])
	check("read_committed inside the aborted transaction", consume(committed, 6), onlyCommitted[4:])
	if res, err := committed.Fetch(ctx, "tx", 0, 11); err != nil || len(res.Records) != 0 {
		t.Errorf("fetch of the last marker: %v, %v", res, err)
	}
	if off, err := committed.ListOffset(ctx, "tx", 0, -1); err != nil || off != 12 {
		t.Errorf("ListOffset -1 = %d, %v; want 12", off, err)
	}
}

// TestConcurrency runs 100 goroutines fetching at once over 2 connections
// per broker: the number of TCP connections stays at most 2 per broker, and
// the goroutines that all need metadata at once share one Metadata request.
func TestConcurrency(t *testing.T) {
	tc := newCluster(t, kfake.SeedTopics(3, "c"))
	tc.moveOff(t, "c", 3, 0)
	recs := map[int32][]*kgo.Record{}
	var all []*kgo.Record
	for p := range int32(3) {
		recs[p] = makeRecords("c", p, 30, time.UnixMilli(1_700_000_000_000), fmt.Sprint(p))
		all = append(all, recs[p]...)
	}
	produce(t, tc.addrs, nil, all...)

	metadata := tc.countKey(int16(wire.KeyMetadata))
	before := tc.accepts.Load()
	c := newClient(t, Config{Brokers: tc.addrs[:1], ConnsPerBroker: 2})
	ctx := testCtx(t)

	var wg sync.WaitGroup
	errs := make(chan error, 100)
	start := make(chan struct{})
	for i := range 100 {
		wg.Go(func() {
			<-start
			p, from := int32(i%3), int64(i%30)
			for range 3 {
				res, err := c.Fetch(ctx, "c", p, from)
				if err != nil {
					errs <- err
					return
				}
				if len(res.Records) != 30-int(from) || string(res.Records[0].Value) != string(recs[p][from].Value) {
					errs <- fmt.Errorf("%d/%d: %d records", p, from, len(res.Records))
				}
				res.Release()
			}
		})
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := tc.accepts.Load() - before; n > 6 || n < 2 {
		t.Errorf("%d TCP connections for 3 brokers at 2 per broker", n)
	}
	if n := metadata.Load(); n != 1 {
		t.Errorf("%d Metadata requests for 100 concurrent callers, want 1", n)
	}
}

// TestClose fails later calls with ErrClosed.
func TestClose(t *testing.T) {
	tc := newCluster(t, kfake.SeedTopics(1, "x"))
	c := newClient(t, Config{Brokers: tc.addrs})
	ctx := testCtx(t)
	if _, err := c.ListOffset(ctx, "x", 0, -1); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Fetch(ctx, "x", 0, 0); !errors.Is(err, ErrClosed) {
		t.Errorf("Fetch after Close: %v", err)
	}
	if _, err := c.ListOffset(ctx, "x", 0, 0); !errors.Is(err, ErrClosed) {
		t.Errorf("ListOffset after Close: %v", err)
	}
	if _, err := c.FetchMany(ctx, []FetchPartition{{"x", 0, 0}}); !errors.Is(err, ErrClosed) {
		t.Errorf("FetchMany after Close: %v", err)
	}
	if err := c.Ready(ctx); !errors.Is(err, ErrClosed) {
		t.Errorf("Ready after Close: %v", err)
	}
	if err := c.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// TestBackgroundRefresh: the periodic refresh picks up a leader move before
// any request fails.
func TestBackgroundRefresh(t *testing.T) {
	tc := newCluster(t, kfake.SeedTopics(1, "r"))
	tc.moveOff(t, "r", 1, 0)
	c := newClient(t, Config{Brokers: tc.addrs[:1], MetadataRefresh: 20 * time.Millisecond})
	ctx := testCtx(t)
	if _, err := c.ListOffset(ctx, "r", 0, -1); err != nil {
		t.Fatal(err)
	}
	if err := tc.MoveTopicPartition("r", 0, 0); err != nil {
		t.Fatal(err)
	}
	for {
		li, err := c.meta.Load().lookup("r", 0)
		if err == nil && li.node == 0 {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatal("the background refresh never saw the new leader")
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// TestFetchWaitWithinDeadline: the broker's wait for data is bounded by the
// caller's deadline, so an empty fetch with a short deadline comes back
// empty instead of timing out.
func TestFetchWaitWithinDeadline(t *testing.T) {
	tc := newCluster(t, kfake.SeedTopics(1, "w"))
	c := newClient(t, Config{Brokers: tc.addrs, FetchMaxWait: 10 * time.Second, FetchMinBytes: 1})
	if _, err := c.ListOffset(testCtx(t), "w", 0, -1); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	res, err := c.Fetch(ctx, "w", 0, 0)
	if err != nil || len(res.Records) != 0 {
		t.Fatalf("empty fetch with a 1s deadline and 10s max wait: %v, %v", res, err)
	}
}

// TestCloseDuringCall: Close fails a call waiting on the broker with
// ErrClosed.
func TestCloseDuringCall(t *testing.T) {
	tc := newCluster(t, kfake.SeedTopics(1, "x"))
	c := newClient(t, Config{Brokers: tc.addrs})
	if _, err := c.ListOffset(testCtx(t), "x", 0, -1); err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	defer close(release)
	entered := make(chan struct{})
	tc.ControlKey(int16(wire.KeyListOffsets), func(kmsg.Request) (kmsg.Response, error, bool) {
		close(entered)
		tc.SleepControl(func() { <-release })
		return nil, nil, false
	})
	errc := make(chan error, 1)
	go func() {
		_, err := c.ListOffset(testCtx(t), "x", 0, -1)
		errc <- err
	}()
	<-entered
	c.Close()
	if err := <-errc; !errors.Is(err, ErrClosed) {
		t.Fatalf("call in flight during Close: %v", err)
	}
}

// TestBufferOwnership: records of a result stay intact while other fetches
// recycle response buffers, until the result itself is released; results of
// one response share its buffer and each holds it.
func TestBufferOwnership(t *testing.T) {
	tc := newCluster(t, kfake.SeedTopics(3, "o"))
	for p := range int32(3) {
		if err := tc.MoveTopicPartition("o", p, 1); err != nil {
			t.Fatal(err)
		}
	}
	want := map[int32][]*kgo.Record{}
	var all []*kgo.Record
	for p := range int32(3) {
		want[p] = makeRecords("o", p, 20, time.UnixMilli(1_700_000_000_000), fmt.Sprint("p", p))
		all = append(all, want[p]...)
	}
	// Uncompressed, so that the records alias the response buffer.
	produce(t, tc.addrs, []kgo.Opt{kgo.ProducerBatchCompression(kgo.NoCompression())}, all...)
	c := newClient(t, Config{Brokers: tc.addrs})
	ctx := testCtx(t)

	held, err := c.Fetch(ctx, "o", 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	rs, err := c.FetchMany(ctx, []FetchPartition{{"o", 0, 5}, {"o", 1, 0}, {"o", 2, 3}})
	if err != nil {
		t.Fatal(err)
	}
	if rs[0].buf == nil || rs[0].buf != rs[1].buf || rs[1].buf != rs[2].buf || rs[0].buf.refs.Load() != 3 {
		t.Fatalf("one response, results not sharing its buffer")
	}
	rs[0].Release()
	rs[2].Release()
	for range 30 {
		r, err := c.Fetch(ctx, "o", 2, 0)
		if err != nil {
			t.Fatal(err)
		}
		r.Release()
	}
	sameRecords(t, held.Records, want[0], 0)
	sameRecords(t, rs[1].Records, want[1], 0)
	held.Release()
	rs[1].Release()
}

// TestDeletedTopic: a topic deleted after it was cached fails with the
// broker's error, then the metadata check finds it gone: "not found topic".
func TestDeletedTopic(t *testing.T) {
	tc := newCluster(t, kfake.SeedTopics(1, "gone"))
	tc.moveOff(t, "gone", 1, 0)
	produce(t, tc.addrs, nil, makeRecords("gone", 0, 2, time.Now(), "g")...)
	c := newClient(t, Config{Brokers: tc.addrs[:1]})
	ctx := testCtx(t)
	if res, err := c.Fetch(ctx, "gone", 0, 0); err != nil || len(res.Records) != 2 {
		t.Fatalf("Fetch before the delete: %v", err)
	}

	admin, err := kgo.NewClient(kgo.SeedBrokers(tc.addrs...))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	req := kmsg.NewPtrDeleteTopicsRequest()
	req.TopicNames = []string{"gone"}
	dt := kmsg.NewDeleteTopicsRequestTopic()
	dt.Topic = kmsg.StringPtr("gone")
	req.Topics = append(req.Topics, dt)
	resp, err := req.RequestWith(ctx, admin)
	if err != nil || len(resp.Topics) != 1 || resp.Topics[0].ErrorCode != 0 {
		t.Fatalf("delete topic: %v %+v", err, resp)
	}

	for _, call := range []func() error{
		func() error { _, err := c.Fetch(ctx, "gone", 0, 0); return err },
		func() error { _, err := c.ListOffset(ctx, "gone", 0, -1); return err },
	} {
		err := call()
		var e *Error
		if !errors.As(err, &e) || e.Reason() != "not found topic" || !errors.Is(err, ErrUnknownTopic) {
			t.Fatalf("after the delete: %v", err)
		}
	}
}

// TestFetchSizedByCompression: once a compressed partition has been fetched,
// the next Fetch asks Kafka for about the wire bytes that decode to
// FetchPartitionMaxBytes, not for FetchPartitionMaxBytes of compressed
// batches that would decode to many times what is used.
func TestFetchSizedByCompression(t *testing.T) {
	tc := newCluster(t, kfake.SeedTopics(1, "z"))
	var (
		mu    sync.Mutex
		sizes []int32
	)
	tc.ControlKey(int16(wire.KeyFetch), func(req kmsg.Request) (kmsg.Response, error, bool) {
		mu.Lock()
		sizes = append(sizes, req.(*kmsg.FetchRequest).Topics[0].Partitions[0].PartitionMaxBytes)
		mu.Unlock()
		return nil, nil, false
	})
	value := []byte(strings.Repeat("kafkaedge compresses ", 50)) // about 1 KiB, compresses far below
	var recs []*kgo.Record
	for range 4000 {
		recs = append(recs, &kgo.Record{Topic: "z", Partition: 0, Value: value})
	}
	produce(t, tc.addrs, []kgo.Opt{kgo.ProducerBatchCompression(kgo.Lz4Compression()), kgo.ProducerBatchMaxBytes(128 << 10)}, recs...)

	const limit = 256 << 10
	c := newClient(t, Config{Brokers: tc.addrs, FetchPartitionMaxBytes: limit})
	ctx := testCtx(t)
	offset := int64(0)
	for i := range 3 {
		r, err := c.Fetch(ctx, "z", 0, offset)
		if err != nil {
			t.Fatalf("fetch %d @%d: %v", i, offset, err)
		}
		kv := 0
		for _, rec := range r.Records {
			kv += len(rec.Value)
		}
		if kv < limit {
			t.Fatalf("fetch %d @%d decoded %d bytes of values, want at least the %d limit", i, offset, kv, limit)
		}
		offset = r.Records[len(r.Records)-1].Offset + 1
		r.Release()
	}
	mu.Lock()
	defer mu.Unlock()
	if len(sizes) != 3 || sizes[0] != limit {
		t.Fatalf("partition_max_bytes asked: %v, want 3 fetches starting at %d", sizes, limit)
	}
	for _, s := range sizes[1:] {
		if s > limit/4 {
			t.Fatalf("partition_max_bytes asked: %v; after the first, want well under %d for data that compresses over 10x", sizes, limit)
		}
	}
}
