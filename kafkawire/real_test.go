package kafkawire

import (
	"context"
	"fmt"
	"log/slog"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kafkaedge/kafkaedge/internal/kafkatest"
	"github.com/kafkaedge/kafkaedge/kafkawire/record"
	"github.com/kafkaedge/kafkaedge/kafkawire/wire"
)

// The tests of this file need real Apache Kafka brokers: data written by
// other producers (librdkafka's kcat, Kafka's own Java producer) and the
// versions each Kafka line negotiates. The tests that stop and kill
// brokers are in failover_test.go; the rest of the suite runs on kfake and
// on real brokers alike (kafkatest.Each).

// producedLine is one record written by a command-line producer: the
// producer reads "key:value" lines and adds the header hk=hv.
type producedLine struct{ key, value string }

// lines makes n records for a command-line producer: five keys, values that
// compress and tell their index.
func lines(n int, tag string) []producedLine {
	out := make([]producedLine, n)
	for i := range out {
		out[i] = producedLine{key: fmt.Sprintf("key%d", i%5), value: strings.Repeat(fmt.Sprintf("%s value %d ", tag, i), 1+i%9)}
	}
	return out
}

// consumeAll fetches topic/0 from 0 until want records came, and compares
// them value by value (keys, header hk=hv, a timestamp between from and
// to); batches of codec must have been decompressed.
func consumeAll(t *testing.T, k *kafkatest.Kafka, topic string, want []producedLine, codec string, from, to time.Time) {
	t.Helper()
	rec := newRecorder()
	c := newClient(t, Config{Brokers: k.Brokers, Observer: rec, FetchPartitionMaxBytes: 32 << 10})
	var got []record.Record
	var results []*FetchResult
	defer func() {
		for _, r := range results {
			r.Release()
		}
	}()
	for len(got) < len(want) {
		res, err := c.Fetch(testCtx(t), topic, 0, int64(len(got)))
		if err != nil {
			t.Fatalf("Fetch @%d: %v", len(got), err)
		}
		results = append(results, res)
		if len(res.Records) == 0 {
			t.Fatalf("Fetch @%d: no records, high watermark %d, want %d records", len(got), res.HighWatermark, len(want))
		}
		got = append(got, res.Records...)
	}
	if len(got) != len(want) {
		t.Fatalf("got %d records, want %d", len(got), len(want))
	}
	for i, r := range got {
		w := want[i]
		if r.Offset != int64(i) || string(r.Key) != w.key || string(r.Value) != w.value {
			t.Fatalf("record %d: offset %d key %q value %q, want key %q value %q", i, r.Offset, r.Key, r.Value, w.key, w.value)
		}
		if len(r.Headers) != 1 || r.Headers[0].Key != "hk" || string(r.Headers[0].Value) != "hv" {
			t.Fatalf("record %d: headers %+v, want hk=hv", i, r.Headers)
		}
		if r.Timestamp < from.UnixMilli() || r.Timestamp > to.UnixMilli() {
			t.Fatalf("record %d: timestamp %d not between %d and %d", i, r.Timestamp, from.UnixMilli(), to.UnixMilli())
		}
	}
	if n := rec.decompressed(codec); codec != "none" && n == 0 {
		t.Errorf("no %s batch decompressed: the producer did not compress", codec)
	}
	if rec.decompressed("none") != 0 {
		t.Errorf("batches decompressed as codec none")
	}
}

// TestKcatProduced reads back, value by value, records that librdkafka's
// kcat wrote to a real cluster in every codec.
func TestKcatProduced(t *testing.T) {
	kcat, err := exec.LookPath("kcat")
	if err != nil {
		t.Skip("kcat not installed (apt-get install kcat)")
	}
	kafkatest.EachReal(t, func(t *testing.T, k *kafkatest.Kafka) {
		names := topics(t, k, 1, codecTopics("kcat-"))
		for i, cd := range codecs {
			t.Run(cd.name, func(t *testing.T) {
				t.Parallel()
				tp := names[i]
				want := lines(300, "kcat "+cd.name)
				var in strings.Builder
				for _, l := range want {
					fmt.Fprintf(&in, "%s:%s\n", l.key, l.value)
				}
				from := time.Now().Add(-time.Minute)
				cmd := exec.CommandContext(testCtx(t), kcat, "-P", "-b", strings.Join(k.Brokers, ","), "-t", tp, "-p", "0",
					"-K", ":", "-H", "hk=hv", "-z", cd.name, "-X", "linger.ms=20", "-X", "batch.size=8192")
				cmd.Stdin = strings.NewReader(in.String())
				if out, err := cmd.CombinedOutput(); err != nil {
					t.Fatalf("kcat: %v: %s", err, out)
				}
				consumeAll(t, k, tp, want, cd.name, from, time.Now().Add(time.Minute))
			})
		}
	})
}

// TestJavaProducer reads back, value by value, records that Kafka's own
// console producer (the Java client of the broker's version) wrote with
// each compression codec: its gzip, snappy (xerial framing), lz4 and zstd
// streams. (Its uncompressed batches are the format every producer writes,
// covered by kgo and kcat; each run of the producer is a JVM of a second or
// two.)
func TestJavaProducer(t *testing.T) {
	kafkatest.EachReal(t, func(t *testing.T, k *kafkatest.Kafka) {
		// 4.x renamed the console producer's --property (to the line
		// reader) and --producer-property options.
		readerProp, producerProp := "--reader-property", "--command-property"
		if strings.HasPrefix(k.Real.Version, "3.") {
			readerProp, producerProp = "--property", "--producer-property"
		}
		compressed := codecs[1:]
		names := topics(t, k, 1, codecTopics("java-")[1:])
		for i, cd := range compressed {
			t.Run(cd.name, func(t *testing.T) {
				t.Parallel()
				tp := names[i]
				want := lines(300, "java "+cd.name)
				var in strings.Builder
				for _, l := range want {
					fmt.Fprintf(&in, "hk:hv\t%s:%s\n", l.key, l.value)
				}
				from := time.Now().Add(-time.Minute)
				ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
				defer cancel()
				cmd := k.Real.Java(ctx, k.Real.ConsoleProducerClass(),
					"--bootstrap-server", strings.Join(k.Brokers, ","), "--topic", tp, "--compression-codec", cd.name,
					readerProp, "parse.key=true", readerProp, "key.separator=:", readerProp, "parse.headers=true",
					producerProp, "linger.ms=20", producerProp, "batch.size=8192")
				cmd.Stdin = strings.NewReader(in.String())
				if out, err := cmd.CombinedOutput(); err != nil {
					t.Fatalf("console producer: %v: %s", err, out)
				}
				consumeAll(t, k, tp, want, cd.name, from, time.Now().Add(time.Minute))
			})
		}
	})
}

// logLines is a slog handler that keeps the messages with their attributes.
type logLines struct {
	mu    sync.Mutex
	lines []string
}

func (l *logLines) Enabled(context.Context, slog.Level) bool { return true }
func (l *logLines) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *logLines) WithGroup(string) slog.Handler            { return l }
func (l *logLines) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(r.Message)
	r.Attrs(func(a slog.Attr) bool {
		fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
		return true
	})
	l.mu.Lock()
	l.lines = append(l.lines, b.String())
	l.mu.Unlock()
	return nil
}

func (l *logLines) matching(substr string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, s := range l.lines {
		if strings.Contains(s, substr) {
			out = append(out, s)
		}
	}
	return out
}

// TestVersions checks version negotiation with each Kafka line. 4.x removed
// the oldest versions (KIP-896: Fetch v0-v3, ListOffsets v0) and added
// newer ones that 3.9 lacks (Metadata v13, Fetch v18, ListOffsets v10); the
// versions this package implements lie inside both ranges, so it picks the
// same ones, the highest it has: Fetch v16 (topic IDs), ListOffsets v9,
// Metadata v12, ApiVersions v3. Each new connection logs them at debug
// level.
func TestVersions(t *testing.T) {
	kafkatest.EachReal(t, func(t *testing.T, k *kafkatest.Kafka) {
		tp := k.Topic(t, "versions", 1)
		recs := makeRecords(tp, 0, 3, time.UnixMilli(1_700_000_000_000), "v")
		k.Produce(t, nil, recs...)
		logs := &logLines{}
		c := newClient(t, Config{Brokers: k.Brokers, Logger: slog.New(logs)})
		ctx := testCtx(t)
		res, err := c.Fetch(ctx, tp, 0, 1)
		if err != nil {
			t.Fatal(err)
		}
		sameRecords(t, res.Records, recs[1:], 1)
		res.Release()
		if off, err := c.ListOffset(ctx, tp, 0, -2); err != nil || off != 0 {
			t.Fatalf("ListOffset -2: %d, %v", off, err)
		}

		// Every connection of the client, on every broker it talked to.
		var conns []*conn
		c.poolsMu.Lock()
		for _, p := range c.pools {
			p.mu.Lock()
			for _, s := range p.slots {
				if s.c != nil {
					conns = append(conns, s.c)
				}
			}
			p.mu.Unlock()
		}
		c.poolsMu.Unlock()
		if len(conns) == 0 {
			t.Fatal("no connection")
		}
		four := !strings.HasPrefix(k.Real.Version, "3.")
		for _, cn := range conns {
			vs := cn.versions
			t.Logf("%s: %s", cn.addr, cn.negotiated())
			fetch, lo, md := vs[wire.KeyFetch], vs[wire.KeyListOffsets], vs[wire.KeyMetadata]
			if four {
				if fetch.Min != 4 || lo.Min != 1 || md.Max < 13 || fetch.Max < 18 || lo.Max < 10 {
					t.Errorf("Kafka %s ranges: Fetch %v ListOffsets %v Metadata %v; want Fetch from v4, ListOffsets from v1 (KIP-896), Metadata to v13+, Fetch to v18+, ListOffsets to v10+",
						k.Real.Version, fetch, lo, md)
				}
			} else if fetch.Min != 0 || lo.Min != 0 || md.Max != 12 || fetch.Max != 17 || lo.Max != 9 {
				t.Errorf("Kafka %s ranges: Fetch %v ListOffsets %v Metadata %v; want Fetch v0-v17, ListOffsets v0-v9, Metadata to v12",
					k.Real.Version, fetch, lo, md)
			}
			for key, want := range map[int16]int16{wire.KeyFetch: 16, wire.KeyListOffsets: 9, wire.KeyMetadata: 12, wire.KeyApiVersions: 3} {
				if v, err := cn.version(key, -1); err != nil || v != want {
					t.Errorf("%s negotiated with %s: v%d, %v; want v%d", apiName(key), cn.addr, v, err, want)
				}
			}
			if len(logs.matching("kafkawire: connected broker="+cn.addr)) == 0 {
				t.Errorf("no debug line for the connection to %s", cn.addr)
			}
		}
		if got := logs.matching("Fetch v16 (broker v"); len(got) == 0 {
			t.Errorf("no connection logged its versions: %v", logs.lines)
		} else {
			t.Log(got[0])
		}
		// The Fetch went out with topic IDs (v13+), which Metadata v12 gave.
		li, err := c.meta.Load().lookup(tp, 0)
		if err != nil || li.topicID == ([16]byte{}) {
			t.Errorf("no topic ID for %s: %+v, %v", tp, li, err)
		}
	})
}
