package kafkawire

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"

	"github.com/kafkaedge/kafkaedge/internal/kafkatest"
	"github.com/kafkaedge/kafkaedge/kafkawire/wire"
)

// TestListOffsetAndFetch covers both calls against leaders that are not the
// bootstrap broker: timestamp semantics, trimming, the end of the log, and
// the error texts of bad offsets, topics and partitions.
func TestListOffsetAndFetch(t *testing.T) {
	kafkatest.Each(t, func(t *testing.T, k *kafkatest.Kafka) {
		tp := k.Topic(t, "t", 3)
		boot := bootstrapOff(t, k, tp, 3)
		base := time.UnixMilli(1_700_000_000_000)
		recs := makeRecords(tp, 1, 20, base, "a")
		k.Produce(t, nil, recs...)

		c := newClient(t, Config{Brokers: boot})
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
			got, err := c.ListOffset(ctx, tp, 1, tt.ts)
			if err != nil || got != tt.want {
				t.Errorf("ListOffset(t/1, %d) = %d, %v; want %d", tt.ts, got, err, tt.want)
			}
		}
		if got, err := c.ListOffset(ctx, tp, 2, -1); err != nil || got != 0 {
			t.Errorf("ListOffset(empty partition, -1) = %d, %v; want 0", got, err)
		}

		res, err := c.Fetch(ctx, tp, 1, 0)
		if err != nil {
			t.Fatalf("Fetch at 0: %v", err)
		}
		sameRecords(t, res.Records, recs, 0)
		if res.HighWatermark != 20 || res.LogStartOffset != 0 || res.Topic != tp || res.Partition != 1 || res.Offset != 0 {
			t.Errorf("result fields %+v", res)
		}
		res.Release()
		res.Release() // twice is safe
		if res.Records != nil {
			t.Error("Records kept after Release")
		}

		res, err = c.Fetch(ctx, tp, 1, 7)
		if err != nil {
			t.Fatalf("Fetch at 7: %v", err)
		}
		sameRecords(t, res.Records, recs[7:], 7)
		res.Release()

		res, err = c.Fetch(ctx, tp, 1, 20)
		if err != nil || len(res.Records) != 0 {
			t.Fatalf("Fetch at the end = %v, %v; want no records", res, err)
		}

		_, err = c.Fetch(ctx, tp, 1, 120)
		var e *Error
		if !errors.As(err, &e) || e.Code != wire.ErrOffsetOutOfRange {
			t.Fatalf("Fetch past the end: %v", err)
		}
		if got, want := err.Error(), "fetch "+tp+"/1@120: OFFSET_OUT_OF_RANGE"; got != want {
			t.Errorf("error text %q, want %q", got, want)
		}

		for _, tt := range []struct {
			topic string
			part  int32
		}{{"nope", 0}, {tp, 3}, {tp, -1}} {
			knownTopic := tt.topic == tp
			_, err := c.Fetch(ctx, tt.topic, tt.part, 0)
			if !errors.As(err, &e) || !errors.Is(err, ErrUnknownTopic) ||
				errors.Is(err, ErrUnknownPartition) != knownTopic || e.Code != wire.ErrUnknownTopicOrPartition ||
				err.Error() != fmt.Sprintf("fetch %s/%d@0: unknown topic or partition", tt.topic, tt.part) {
				t.Errorf("Fetch %s/%d: %v", tt.topic, tt.part, err)
			}
			_, err = c.ListOffset(ctx, tt.topic, tt.part, -1)
			if !errors.As(err, &e) || e.Op != "list offsets" || errors.Is(err, ErrUnknownPartition) != knownTopic {
				t.Errorf("ListOffset %s/%d: %v", tt.topic, tt.part, err)
			}
		}
		if err := c.Ready(ctx); err != nil {
			t.Errorf("Ready: %v", err)
		}
	})
}

// TestListOffsetSpecial: the special timestamps of ListOffsets go to the
// broker: -3 the offset of the record with the largest timestamp (KIP-734),
// -4 the log start of the local log (KIP-405; the log start without tiered
// storage), -5 the latest tiered offset (KIP-1005; -1 when nothing is
// tiered). Every other negative timestamp is UNSUPPORTED_VERSION, as Kafka
// answers it, without a request.
func TestListOffsetSpecial(t *testing.T) {
	kafkatest.Each(t, func(t *testing.T, k *kafkatest.Kafka) {
		tp := k.Topic(t, "special", 2) // partition 1 stays empty
		base := time.UnixMilli(1_700_000_000_000)
		recs := makeRecords(tp, 0, 6, base, "s")
		recs[2].Timestamp = base.Add(time.Hour) // the largest, in the middle
		k.Produce(t, nil, recs...)
		c := newClient(t, Config{Brokers: k.Brokers})
		ctx := testCtx(t)
		for _, tt := range []struct {
			part     int32
			ts, want int64
		}{{0, -1, 6}, {0, -2, 0}, {0, -3, 2}, {0, -4, 0}, {0, -5, -1}, {1, -3, -1}, {1, -4, 0}, {1, -5, -1}} {
			if off, err := c.ListOffset(ctx, tp, tt.part, tt.ts); err != nil || off != tt.want {
				t.Errorf("ListOffset(%d, %d) = %d, %v; want %d", tt.part, tt.ts, off, err, tt.want)
			}
		}
		listOffsets := new(atomic.Int64)
		if k.Fake != nil {
			listOffsets = countRequests(k.Fake, wire.KeyListOffsets)
		}
		for _, ts := range []int64{-6, -7, -100, math.MinInt64} {
			_, err := c.ListOffset(ctx, tp, 0, ts)
			var e *Error
			if !errors.As(err, &e) || e.Code != wire.ErrUnsupportedVersion || err.Error() != fmt.Sprintf("list offsets %s/0@%d: UNSUPPORTED_VERSION", tp, ts) {
				t.Errorf("ListOffset(%d): %v", ts, err)
			}
		}
		if n := listOffsets.Load(); n != 0 {
			t.Errorf("%d ListOffsets requests for timestamps no Kafka version supports", n)
		}
	})
}

// TestListOffsetSpecialOldBroker: a special timestamp the broker's
// ListOffsets version does not know (-3 before v7, -4 before v8, -5 before
// v9) is UNSUPPORTED_VERSION without a request: a broker that old would
// read it as a timestamp to search for.
func TestListOffsetSpecialOldBroker(t *testing.T) {
	vs := kversion.V3_0_0()
	vs.SetMaxKeyVersion(wire.KeyListOffsets, 7)
	tc := newCluster(t, kfake.SeedTopics(1, "old"), kfake.MaxVersions(vs))
	tc.k.Produce(t, []kgo.Opt{kgo.MaxVersions(vs)}, makeRecords("old", 0, 4, time.UnixMilli(1_700_000_000_000), "o")...)
	listOffsets := tc.versionsOf(wire.KeyListOffsets)
	c := newClient(t, Config{Brokers: tc.addrs})
	ctx := testCtx(t)
	if off, err := c.ListOffset(ctx, "old", 0, -3); err != nil || off != 3 {
		t.Errorf("ListOffset(-3) at v7 = %d, %v; want 3", off, err)
	}
	for _, ts := range []int64{-4, -5} {
		_, err := c.ListOffset(ctx, "old", 0, ts)
		var e *Error
		if !errors.As(err, &e) || e.Code != wire.ErrUnsupportedVersion {
			t.Errorf("ListOffset(%d) at v7: %v", ts, err)
		}
	}
	if got := listOffsets(); len(got) != 1 || got[0] != 7 {
		t.Errorf("ListOffsets requests at %v, want one at v7", got)
	}
}

// TestFetchMany fetches several topics and partitions (leaders on several
// brokers) in one call, with an unknown topic and a repeated partition.
func TestFetchMany(t *testing.T) {
	kafkatest.Each(t, func(t *testing.T, k *kafkatest.Kafka) {
		names := topics(t, k, 3, []string{"a", "b"})
		ta, tb := names[0], names[1]
		boot := bootstrapOff(t, k, ta, 3)
		base := time.UnixMilli(1_700_000_000_000)
		var all []*kgo.Record
		want := map[string][]*kgo.Record{}
		for _, tp := range []string{ta, tb} {
			for p := range int32(3) {
				recs := makeRecords(tp, p, 5+int(p), base, fmt.Sprintf("%s%d", tp, p))
				want[fmt.Sprintf("%s/%d", tp, p)] = recs
				all = append(all, recs...)
			}
		}
		k.Produce(t, nil, all...)
		leaders := map[int32]bool{}
		for _, tp := range []string{ta, tb} {
			ls, _ := topicLeaders(t, k, tp)
			for _, l := range ls {
				leaders[l] = true
			}
		}
		if len(leaders) < 2 {
			t.Fatalf("the 6 partitions are led by %v: want several brokers", leaders)
		}

		c := newClient(t, Config{Brokers: boot})
		parts := []FetchPartition{
			{ta, 0, 0}, {ta, 1, 2}, {ta, 2, 0}, {tb, 0, 1}, {tb, 2, 0},
			{"missing", 0, 0}, {ta, 1, 4}, {tb, 1, 99},
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
				if !errors.As(r.Err, &e) || e.Code != wire.ErrOffsetOutOfRange || e.Error() != "fetch "+tb+"/1@99: OFFSET_OUT_OF_RANGE" {
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
	})
}

// TestMoveTopicPartition moves a leader between calls: the stale leader
// answers NOT_LEADER_OR_FOLLOWER (or the epoch is fenced) and the client
// refreshes its metadata and retries.
func TestMoveTopicPartition(t *testing.T) {
	tc := newCluster(t, kfake.SeedTopics(1, "m"))
	bootstrapOff(t, tc.k, "m", 1)
	recs := makeRecords("m", 0, 10, time.UnixMilli(1_700_000_000_000), "m")
	tc.k.Produce(t, nil, recs...)
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
	kafkatest.Each(t, func(t *testing.T, k *kafkatest.Kafka) {
		tp := k.Topic(t, "d", 2)
		k.Produce(t, nil, makeRecords(tp, 1, 3, time.Now(), "d")...)

		dead, dead2 := deadAddr(t), deadAddr(t)
		c := newClient(t, Config{Brokers: []string{dead, k.Brokers[1]}})
		ctx := testCtx(t)
		if off, err := c.ListOffset(ctx, tp, 1, -1); err != nil || off != 3 {
			t.Fatalf("ListOffset with a dead first bootstrap broker: %d, %v", off, err)
		}
		if err := c.Ready(ctx); err != nil {
			t.Fatalf("Ready: %v", err)
		}

		// Only dead brokers: a clear error naming each address, on one line.
		c2 := newClient(t, Config{Brokers: []string{dead, dead2}, RequestTimeout: 2 * time.Second})
		_, err := c2.Fetch(ctx, tp, 0, 0)
		var e *Error
		if !errors.As(err, &e) || !strings.Contains(err.Error(), dead) || !strings.Contains(err.Error(), dead2) ||
			!strings.Contains(err.Error(), "refused") || strings.Contains(err.Error(), "\n") || !errors.Is(err, ErrBrokerUnreachable) {
			t.Fatalf("all brokers dead: %q", err)
		}
		t.Logf("all brokers dead: %v", err)
		if err := c2.Ready(ctx); err == nil {
			t.Fatal("Ready with no broker up succeeded")
		}
	})
}

// deadAddr is a loopback address nothing listens on.
func deadAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
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
	bootstrapOff(t, tc.k, "o", 2)
	base := time.UnixMilli(1_700_000_000_000)
	recs := makeRecords("o", 1, 8, base, "o")
	tc.k.Produce(t, []kgo.Opt{kgo.MaxVersions(vs)}, recs...)

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

// codecs are the batch codecs of Kafka, as kgo names them.
var codecs = []struct {
	name  string
	codec kgo.CompressionCodec
}{
	{"none", kgo.NoCompression()},
	{"gzip", kgo.GzipCompression()},
	{"snappy", kgo.SnappyCompression()},
	{"lz4", kgo.Lz4Compression()},
	{"zstd", kgo.ZstdCompression()},
}

// codecTopics names a topic per codec.
func codecTopics(prefix string) []string {
	var out []string
	for _, cd := range codecs {
		out = append(out, prefix+cd.name)
	}
	return out
}

// TestCodecs fetches data kgo produced with every codec and compares it
// value by value, from the start and from inside a compressed batch.
func TestCodecs(t *testing.T) {
	kafkatest.Each(t, func(t *testing.T, k *kafkatest.Kafka) {
		rec := newRecorder()
		c := newClient(t, Config{Brokers: k.Brokers, Observer: rec})
		base := time.UnixMilli(1_700_000_000_000)
		names := topics(t, k, 1, codecTopics("codec-"))
		for i, cd := range codecs {
			t.Run(cd.name, func(t *testing.T) {
				tp := names[i]
				recs := makeRecords(tp, 0, 40, base, cd.name)
				// Two batches, so that fetching from the middle trims one.
				k.Produce(t, []kgo.Opt{kgo.ProducerBatchCompression(cd.codec)}, recs[:25]...)
				k.Produce(t, []kgo.Opt{kgo.ProducerBatchCompression(cd.codec)}, recs[25:]...)
				for _, from := range []int64{0, 13, 25, 39} {
					res, err := c.Fetch(testCtx(t), tp, 0, from)
					if err != nil {
						t.Fatalf("Fetch @%d: %v", from, err)
					}
					sameRecords(t, res.Records, recs[from:], from)
					res.Release()
				}
				if n := rec.decompressed(cd.name); cd.name != "none" && n == 0 {
					t.Errorf("no %s batch decompressed", cd.name)
				}
			})
		}
	})
}

// TestTransactions reads committed and aborted transactions: every data
// record with read_uncommitted, only committed ones with read_committed,
// control records never.
func TestTransactions(t *testing.T) {
	kafkatest.Each(t, func(t *testing.T, k *kafkatest.Kafka) {
		tp := k.Topic(t, "tx", 1)
		// Kafka 4 (transactions v2) answers a transaction's first produce
		// with CONCURRENT_TRANSACTIONS while the markers of the one before
		// are being written, and kgo retries after a metadata refresh:
		// allowed every 5 s by default.
		cl := k.Client(t, kgo.TransactionalID("kafkawire-"+tp), kgo.MetadataMinAge(50*time.Millisecond),
			kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerLinger(0))
		ctx := testCtx(t)
		base := time.UnixMilli(1_700_000_000_000)
		txn := func(tag string, n int, commit kgo.TransactionEndTry) []*kgo.Record {
			recs := makeRecords(tp, 0, n, base, tag)
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

		uncommitted := newClient(t, Config{Brokers: k.Brokers})
		committed := newClient(t, Config{Brokers: k.Brokers, IsolationLevel: 1})

		// A real broker's transaction coordinator writes the markers after
		// EndTransaction has returned: until the last one is written, the
		// last stable offset stays at the start of the open transaction
		// (9) and read_committed sees nothing past it. kfake writes them
		// before it answers.
		waitOffset(t, committed, tp, 0, 12)
		waitOffset(t, uncommitted, tp, 0, 12)

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
				res, err := c.Fetch(ctx, tp, 0, from)
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
		check("read_committed on the abort marker", consume(committed, 8), onlyCommitted[4:])
		if res, err := committed.Fetch(ctx, tp, 0, 11); err != nil || len(res.Records) != 0 {
			t.Errorf("fetch of the last marker: %v, %v", res, err)
		}
		if res, err := uncommitted.Fetch(ctx, tp, 0, 12); err != nil || len(res.Records) != 0 || res.HighWatermark != 12 {
			t.Errorf("fetch at the end: %v, %v", res, err)
		}
	})
}

// waitOffset polls c's ListOffset -1 of topic/partition until it is want,
// for at most 15 s.
func waitOffset(t *testing.T, c *Client, topic string, partition int32, want int64) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		off, err := c.ListOffset(testCtx(t), topic, partition, -1)
		if err == nil && off == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("ListOffset(%s/%d, -1) = %d, %v; want %d", topic, partition, off, err, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestConcurrency runs 100 goroutines fetching at once over 2 connections
// per broker: the number of connections stays at most 2 per broker, and
// the goroutines that all need metadata at once share one Metadata request.
func TestConcurrency(t *testing.T) {
	kafkatest.Each(t, func(t *testing.T, k *kafkatest.Kafka) {
		tp := k.Topic(t, "c", 3)
		boot := bootstrapOff(t, k, tp, 3)
		recs := map[int32][]*kgo.Record{}
		var all []*kgo.Record
		for p := range int32(3) {
			recs[p] = makeRecords(tp, p, 30, time.UnixMilli(1_700_000_000_000), fmt.Sprint(p))
			all = append(all, recs[p]...)
		}
		k.Produce(t, nil, all...)

		rec := newRecorder()
		c := newClient(t, Config{Brokers: boot, ConnsPerBroker: 2, Observer: rec})
		ctx := testCtx(t)

		var wg sync.WaitGroup
		errs := make(chan error, 100)
		start := make(chan struct{})
		for i := range 100 {
			wg.Go(func() {
				<-start
				p, from := int32(i%3), int64(i%30)
				for range 3 {
					res, err := c.Fetch(ctx, tp, p, from)
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
		if n := rec.connsUp(); n > 6 || n < 2 || rec.count("ApiVersions") != n {
			t.Errorf("%d connections (%d dialed) for 3 brokers at 2 per broker", n, rec.count("ApiVersions"))
		}
		if n := rec.count("Metadata"); n != 1 || rec.count("Fetch") != 300 {
			t.Errorf("%d Metadata requests for 100 concurrent callers (want 1), %d fetches (want 300)", n, rec.count("Fetch"))
		}
	})
}

// TestRefreshAfterLandedFlight: a caller that found the cache lacking a
// topic just before the shared Metadata request for it landed does not ask
// again (100 concurrent callers would otherwise now and then cause two).
func TestRefreshAfterLandedFlight(t *testing.T) {
	tc := newCluster(t, kfake.SeedTopics(1, "l", "m"))
	rec := newRecorder()
	c := newClient(t, Config{Brokers: tc.addrs, Observer: rec})
	ctx := testCtx(t)
	seen := c.meta.Load() // without "l"
	if _, err := c.ListOffset(ctx, "l", 0, -1); err != nil {
		t.Fatal(err)
	}
	count := func() int { return rec.count("Metadata") }
	if n := count(); n != 1 {
		t.Fatalf("%d Metadata requests for the first call", n)
	}
	if err := c.refresh(ctx, []string{"l"}, time.Time{}, seen); err != nil || count() != 1 {
		t.Errorf("refresh after the flight landed: %v, %d Metadata requests; want no new one", err, count())
	}
	// The landed flight listed every topic: one that does not exist is
	// answered by it.
	if err := c.refresh(ctx, []string{"other"}, time.Time{}, seen); err != nil || count() != 1 {
		t.Errorf("refresh of a topic not in the cluster: %v, %d Metadata requests; want no new one", err, count())
	}
	// Still asked: a topic the landed flight listed but did not describe,
	// and a caller that needs an answer newer than a failure.
	if err := c.refresh(ctx, []string{"m"}, time.Time{}, seen); err != nil || count() != 2 {
		t.Errorf("refresh of another topic: %v, %d Metadata requests; want 2", err, count())
	}
	if err := c.refresh(ctx, []string{"l"}, time.Now(), seen); err != nil || count() != 3 {
		t.Errorf("refresh after a failure: %v, %d Metadata requests; want 3", err, count())
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
	bootstrapOff(t, tc.k, "r", 1)
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
	kafkatest.Each(t, func(t *testing.T, k *kafkatest.Kafka) {
		tp := k.Topic(t, "w", 1)
		c := newClient(t, Config{Brokers: k.Brokers, FetchMaxWait: 10 * time.Second, FetchMinBytes: 1})
		if _, err := c.ListOffset(testCtx(t), tp, 0, -1); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		res, err := c.Fetch(ctx, tp, 0, 0)
		if err != nil || len(res.Records) != 0 {
			t.Fatalf("empty fetch with a 2s deadline and 10s max wait: %v, %v", res, err)
		}
	})
}

// TestFetchInPieces consumes a partition of many batches with a partition
// limit of a few batches: a real broker cuts its answer at the limit, in
// the middle of a batch, and the partial batch at the end is not returned
// (its records come whole with the next fetch).
func TestFetchInPieces(t *testing.T) {
	kafkatest.Each(t, func(t *testing.T, k *kafkatest.Kafka) {
		tp := k.Topic(t, "pieces", 1)
		recs := makeRecords(tp, 0, 400, time.UnixMilli(1_700_000_000_000), strings.Repeat("p", 900))
		k.Produce(t, []kgo.Opt{kgo.ProducerBatchCompression(kgo.NoCompression()), kgo.ProducerBatchMaxBytes(10 << 10)}, recs...)
		c := newClient(t, Config{Brokers: k.Brokers, FetchPartitionMaxBytes: 64<<10 + 1000})
		from, fetches := int64(0), 0
		for from < int64(len(recs)) {
			res, err := c.Fetch(testCtx(t), tp, 0, from)
			if err != nil {
				t.Fatalf("Fetch @%d: %v", from, err)
			}
			if len(res.Records) == 0 {
				t.Fatalf("Fetch @%d: no records below the high watermark %d", from, res.HighWatermark)
			}
			sameRecords(t, res.Records, recs[from:from+int64(len(res.Records))], from)
			from += int64(len(res.Records))
			res.Release()
			fetches++
		}
		if fetches < 4 {
			t.Errorf("%d fetches for about 400 KB at 64 KB each", fetches)
		}
	})
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
	tc.k.Produce(t, []kgo.Opt{kgo.ProducerBatchCompression(kgo.NoCompression())}, all...)
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
	kafkatest.Each(t, func(t *testing.T, k *kafkatest.Kafka) {
		tp := k.Topic(t, "gone", 1)
		boot := bootstrapOff(t, k, tp, 1)
		k.Produce(t, nil, makeRecords(tp, 0, 2, time.Now(), "g")...)
		c := newClient(t, Config{Brokers: boot})
		ctx := testCtx(t)
		if res, err := c.Fetch(ctx, tp, 0, 0); err != nil || len(res.Records) != 2 {
			t.Fatalf("Fetch before the delete: %v", err)
		}

		resp, err := k.Admin(t).DeleteTopics(ctx, tp)
		if err == nil {
			err = resp.Error()
		}
		if err != nil {
			t.Fatalf("delete topic: %v", err)
		}
		// Every broker of a real cluster drops the topic a little later.
		k.WaitBrokers(t, tp, func(tm *kmsg.MetadataResponseTopic) bool { return tm == nil })

		for _, call := range []func() error{
			func() error { _, err := c.Fetch(ctx, tp, 0, 0); return err },
			func() error { _, err := c.ListOffset(ctx, tp, 0, -1); return err },
		} {
			err := call()
			var e *Error
			if !errors.As(err, &e) || !errors.Is(err, ErrUnknownTopic) {
				t.Fatalf("after the delete: %v", err)
			}
		}
	})
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
	tc.k.Produce(t, []kgo.Opt{kgo.ProducerBatchCompression(kgo.Lz4Compression()), kgo.ProducerBatchMaxBytes(128 << 10)}, recs...)

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
