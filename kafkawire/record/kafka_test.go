package record

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// These tests produce with independent producers (franz-go's kgo and
// librdkafka's kcat) into an in-process kfake broker, fetch the raw Records
// bytes of the partition, and decode them with this package.

// newCluster starts a one-broker kfake cluster on loopback with topic
// seeded (one partition) and returns its address.
func newCluster(t *testing.T, topics ...string) string {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, topics...),
		kfake.ListenFn(func(network, _ string) (net.Listener, error) { return net.Listen(network, "127.0.0.1:0") }))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c.ListenAddrs()[0]
}

func newClient(t *testing.T, addr string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addr)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// leaderOf returns the leader of partition 0 of topic and the topic's ID.
func leaderOf(t *testing.T, cl *kgo.Client, topic string) (*kgo.Broker, [16]byte) {
	t.Helper()
	meta := kmsg.NewPtrMetadataRequest()
	mt := kmsg.NewMetadataRequestTopic()
	mt.Topic = kmsg.StringPtr(topic)
	meta.Topics = append(meta.Topics, mt)
	mresp, err := meta.RequestWith(testContext(t), cl)
	if err != nil || len(mresp.Topics) != 1 || mresp.Topics[0].ErrorCode != 0 || len(mresp.Topics[0].Partitions) == 0 {
		t.Fatalf("metadata %s: %v %+v", topic, err, mresp)
	}
	return cl.Broker(int(mresp.Topics[0].Partitions[0].Leader)), mresp.Topics[0].TopicID
}

// fetchRaw fetches partition 0 of topic from offset with a kmsg
// FetchRequest to its leader and returns the raw Records bytes and, for
// read_committed (isolation 1), the aborted transactions.
func fetchRaw(t *testing.T, cl *kgo.Client, topic string, offset int64, isolation int8) ([]byte, []AbortedTransaction) {
	t.Helper()
	leader, topicID := leaderOf(t, cl, topic)
	req := kmsg.NewPtrFetchRequest()
	req.MaxBytes = 64 << 20
	req.IsolationLevel = isolation
	req.SessionEpoch = -1
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic = topic
	rt.TopicID = topicID
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.FetchOffset = offset
	rp.PartitionMaxBytes = 64 << 20
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(testContext(t), leader)
	if err != nil {
		t.Fatal(err)
	}
	if resp.ErrorCode != 0 || len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		t.Fatalf("fetch %s: %+v", topic, resp)
	}
	p := resp.Topics[0].Partitions[0]
	if p.ErrorCode != 0 {
		t.Fatalf("fetch %s/0@%d: error code %d", topic, offset, p.ErrorCode)
	}
	var aborted []AbortedTransaction
	if isolation == 1 {
		aborted = []AbortedTransaction{}
		for _, a := range p.AbortedTransactions {
			aborted = append(aborted, AbortedTransaction{ProducerID: a.ProducerID, FirstOffset: a.FirstOffset})
		}
	}
	return p.RecordBatches, aborted
}

// batchCodecs returns the codec of every batch in src.
func batchCodecs(src []byte) []int {
	var codecs []int
	for len(src) >= BatchHeaderSize {
		codecs = append(codecs, int(binary.BigEndian.Uint16(src[attributesAt:])&attrCodecMask))
		src = src[lengthEnd+int(binary.BigEndian.Uint32(src[8:])):]
	}
	return codecs
}

// kgoRecords returns n varied records to produce: nil and empty keys, nil
// values, headers (with a nil value), explicit timestamps.
func kgoRecords(n int) []*kgo.Record {
	var recs []*kgo.Record
	for _, r := range testRecords(0, n, 200) {
		kr := &kgo.Record{Key: r.Key, Value: r.Value, Timestamp: time.UnixMilli(r.Timestamp)}
		for _, h := range r.Headers {
			kr.Headers = append(kr.Headers, kgo.RecordHeader{Key: h.Key, Value: h.Value})
		}
		recs = append(recs, kr)
	}
	return recs
}

// fromKgo converts produced records to what decoding must return.
func fromKgo(recs []*kgo.Record) []Record {
	var out []Record
	for _, kr := range recs {
		r := Record{Offset: kr.Offset, Timestamp: kr.Timestamp.UnixMilli(), Key: kr.Key, Value: kr.Value}
		for _, h := range kr.Headers {
			r.Headers = append(r.Headers, Header{Key: h.Key, Value: h.Value})
		}
		out = append(out, r)
	}
	return out
}

func TestKgoProduced(t *testing.T) {
	codecs := []struct {
		name  string
		codec int
		kgo   kgo.CompressionCodec
	}{
		{"none", CodecNone, kgo.NoCompression()},
		{"gzip", CodecGzip, kgo.GzipCompression()},
		{"snappy", CodecSnappy, kgo.SnappyCompression()},
		{"lz4", CodecLz4, kgo.Lz4Compression()},
		{"zstd", CodecZstd, kgo.ZstdCompression()},
	}
	var topics []string
	for _, c := range codecs {
		topics = append(topics, "t-"+c.name)
	}
	addr := newCluster(t, topics...)
	for _, c := range codecs {
		t.Run(c.name, func(t *testing.T) {
			topic := "t-" + c.name
			cl := newClient(t, addr, kgo.DefaultProduceTopic(topic), kgo.ProducerBatchCompression(c.kgo),
				kgo.ProducerBatchMaxBytes(16<<10), kgo.ProducerLinger(50*time.Millisecond))
			recs := kgoRecords(300)
			if err := cl.ProduceSync(testContext(t), recs...).FirstErr(); err != nil {
				t.Fatal(err)
			}
			want := fromKgo(recs)

			src, _ := fetchRaw(t, cl, topic, 0, 0)
			codecsSeen := batchCodecs(src)
			if len(codecsSeen) < 2 {
				t.Fatalf("%d batches, want several", len(codecsSeen))
			}
			for _, seen := range codecsSeen {
				if seen != c.codec {
					t.Fatalf("batch codecs %v, want %d", codecsSeen, c.codec)
				}
			}
			var d Decoder
			got, err := d.Append(nil, src, 0, nil)
			if err != nil {
				t.Fatal(err)
			}
			equalRecords(t, got, want)
			for from := int64(1); from <= 301; from += 7 { // inside batches
				got, err := d.Append(nil, src, from, nil)
				if err != nil {
					t.Fatal(err)
				}
				equalRecords(t, got, want[min(from, 300):])
			}
			// A fetch from the middle returns the batch holding the
			// offset; decoding trims it.
			src, _ = fetchRaw(t, cl, topic, 150, 0)
			if got, err = d.Append(nil, src, 150, nil); err != nil {
				t.Fatal(err)
			}
			equalRecords(t, got, want[150:])
		})
	}
}

func TestKgoTransactions(t *testing.T) {
	const topic = "txn"
	addr := newCluster(t, topic)
	ctx := testContext(t)
	a := newClient(t, addr, kgo.DefaultProduceTopic(topic), kgo.TransactionalID("a"), kgo.ProducerBatchCompression(kgo.ZstdCompression()))
	b := newClient(t, addr, kgo.DefaultProduceTopic(topic), kgo.TransactionalID("b"), kgo.ProducerBatchCompression(kgo.GzipCompression()))
	plain := newClient(t, addr, kgo.DefaultProduceTopic(topic))

	var committed, all []*kgo.Record
	produce := func(cl *kgo.Client, commit bool, tag string, n int) []*kgo.Record {
		recs := make([]*kgo.Record, n)
		for i := range recs {
			recs[i] = &kgo.Record{Key: []byte(tag), Value: []byte(fmt.Sprintf("%s-%d", tag, i))}
		}
		if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
		all = append(all, recs...)
		if commit {
			committed = append(committed, recs...)
		}
		return recs
	}
	begin := func(cl *kgo.Client) {
		if err := cl.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
	}
	end := func(cl *kgo.Client, commit kgo.TransactionEndTry) {
		if err := cl.EndTransaction(ctx, commit); err != nil {
			t.Fatal(err)
		}
	}
	// a aborts a transaction that b's committed one interleaves with; then
	// both commit, then a aborts again, with plain records between.
	begin(a)
	produce(a, false, "a1", 5)
	begin(b)
	produce(b, true, "b1", 4)
	produce(plain, true, "p1", 2)
	produce(a, false, "a1b", 3)
	end(b, kgo.TryCommit)
	end(a, kgo.TryAbort)
	begin(a)
	produce(a, true, "a2", 6)
	end(a, kgo.TryCommit)
	begin(a)
	produce(a, false, "a3", 2)
	end(a, kgo.TryAbort)
	produce(plain, true, "p2", 3)

	// read_committed: aborted dropped, markers never returned.
	src, aborted := fetchRaw(t, plain, topic, 0, 1)
	if len(aborted) != 2 {
		t.Fatalf("broker reports %d aborted transactions, want 2", len(aborted))
	}
	var d Decoder
	got, err := d.Append(nil, src, 0, aborted)
	if err != nil {
		t.Fatal(err)
	}
	sameValues(t, got, committed)

	// read_uncommitted: every data record, still no markers.
	src, _ = fetchRaw(t, plain, topic, 0, 0)
	if got, err = d.Append(nil, src, 0, nil); err != nil {
		t.Fatal(err)
	}
	sameValues(t, got, all)
}

// sameValues checks that got holds the values of want in offset order.
func sameValues(t *testing.T, got []Record, want []*kgo.Record) {
	t.Helper()
	byOffset := make(map[int64]*kgo.Record)
	for _, r := range want {
		byOffset[r.Offset] = r
	}
	if len(got) != len(want) {
		t.Fatalf("got %d records, want %d", len(got), len(want))
	}
	for i, r := range got {
		w := byOffset[r.Offset]
		if w == nil || !bytes.Equal(r.Value, w.Value) || !bytes.Equal(r.Key, w.Key) {
			t.Fatalf("record %d at offset %d: %q, not a wanted record", i, r.Offset, r.Value)
		}
		if i > 0 && got[i-1].Offset >= r.Offset {
			t.Fatalf("offsets out of order at %d", i)
		}
	}
}

func TestKcatProduced(t *testing.T) {
	kcat, err := exec.LookPath("kcat")
	if err != nil {
		t.Skip("kcat not installed: apt-get install kcat")
	}
	codecs := map[string]int{"none": CodecNone, "gzip": CodecGzip, "snappy": CodecSnappy, "lz4": CodecLz4, "zstd": CodecZstd}
	var topics []string
	for name := range codecs {
		topics = append(topics, "kcat-"+name)
	}
	addr := newCluster(t, topics...)
	cl := newClient(t, addr)
	proxy := minVersionProxy(t, addr)
	for name, codec := range codecs {
		t.Run(name, func(t *testing.T) {
			topic := "kcat-" + name
			var in strings.Builder
			var want []Record
			for i := range 200 {
				v := strings.Repeat(fmt.Sprintf("kcat value %d ", i), 8)
				fmt.Fprintf(&in, "key%d:%s\n", i%5, v)
				want = append(want, Record{Offset: int64(i), Key: []byte(fmt.Sprintf("key%d", i%5)), Value: []byte(v),
					Headers: []Header{{Key: "hk", Value: []byte("hv")}}})
			}
			ctx := testContext(t)
			start := time.Now().Add(-time.Minute).UnixMilli()
			cmd := exec.CommandContext(ctx, kcat, "-P", "-b", proxy, "-t", topic, "-p", "0", "-K", ":",
				"-H", "hk=hv", "-z", name, "-X", "linger.ms=20")
			cmd.Stdin = strings.NewReader(in.String())
			if out, err := cmd.CombinedOutput(); err != nil {
				if strings.Contains(string(out), "compression") || strings.Contains(string(out), "codec") {
					t.Skipf("kcat cannot produce %s: %s", name, out)
				}
				t.Fatalf("kcat: %v: %s", err, out)
			}
			end := time.Now().Add(time.Minute).UnixMilli()
			src, _ := fetchRaw(t, cl, topic, 0, 0)
			for _, seen := range batchCodecs(src) {
				if seen != codec {
					t.Fatalf("batch codecs %v, want %d", batchCodecs(src), codec)
				}
			}
			got, err := new(Decoder).Append(nil, src, 0, nil)
			if err != nil {
				t.Fatal(err)
			}
			for i := range got {
				if ts := got[i].Timestamp; ts < start || ts > end {
					t.Fatalf("record %d: timestamp %d not around now", i, ts)
				}
				want[i].Timestamp = got[i].Timestamp
			}
			equalRecords(t, got, want)
		})
	}
}

// minVersionProxy relays Kafka connections to addr, rewriting every
// ApiVersions response to advertise minimum version 0, and Metadata
// responses to name the proxy as the broker. librdkafka derives its codec
// support from old request versions (gzip and snappy need the magic 1 era
// Produce v2 and Fetch v2 in the advertised range) that kfake does not list,
// so without this kcat silently sends those batches uncompressed. The
// versions actually used stay within kfake's real range.
func minVersionProxy(t *testing.T, addr string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	host, portStr, _ := net.SplitHostPort(ln.Addr().String())
	port, _ := strconv.Atoi(portStr)
	type keyVersion struct{ key, version int16 }
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", addr)
			if err != nil {
				c.Close()
				continue
			}
			var mu sync.Mutex
			pending := make(map[int32]keyVersion) // by correlation id
			go func() {                           // client -> broker
				defer s.Close()
				for {
					frame, err := readFrame(c)
					if err != nil {
						return
					}
					if len(frame) >= 12 {
						if key := int16(binary.BigEndian.Uint16(frame[4:])); key == 18 || key == 3 {
							mu.Lock()
							pending[int32(binary.BigEndian.Uint32(frame[8:]))] = keyVersion{key, int16(binary.BigEndian.Uint16(frame[6:]))}
							mu.Unlock()
						}
					}
					if _, err := s.Write(frame); err != nil {
						return
					}
				}
			}()
			go func() { // broker -> client
				defer c.Close()
				for {
					frame, err := readFrame(s)
					if err != nil {
						return
					}
					mu.Lock()
					kv, ok := pending[int32(binary.BigEndian.Uint32(frame[4:]))]
					mu.Unlock()
					var body []byte
					switch {
					case ok && kv.key == 18:
						resp := kmsg.NewPtrApiVersionsResponse()
						resp.Version = kv.version
						if resp.ReadFrom(frame[8:]) == nil {
							for i := range resp.ApiKeys {
								resp.ApiKeys[i].MinVersion = 0
							}
							body = resp.AppendTo(bytes.Clone(frame[4:8]))
						}
					case ok && kv.key == 3:
						head := 8
						if kv.version >= 9 {
							head++ // empty response header tags
						}
						resp := kmsg.NewPtrMetadataResponse()
						resp.Version = kv.version
						if resp.ReadFrom(frame[head:]) == nil {
							for i := range resp.Brokers {
								resp.Brokers[i].Host, resp.Brokers[i].Port = host, int32(port)
							}
							body = resp.AppendTo(bytes.Clone(frame[4:head]))
						}
					}
					if body != nil {
						frame = append(binary.BigEndian.AppendUint32(nil, uint32(len(body))), body...)
					}
					if _, err := c.Write(frame); err != nil {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// readFrame reads one size-prefixed Kafka frame, the size included.
func readFrame(r io.Reader) ([]byte, error) {
	var size [4]byte
	if _, err := io.ReadFull(r, size[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(size[:])
	if n < 4 || n > 64<<20 {
		return nil, fmt.Errorf("frame size %d", n)
	}
	frame := make([]byte, 4+n)
	copy(frame, size[:])
	_, err := io.ReadFull(r, frame[4:])
	return frame, err
}
