package record

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkaedge/kafkaedge/internal/kafkatest"
)

// These tests put the Builder's batches through real produce paths: Produce
// requests to kfake and to real Apache Kafka (whose broker decompresses and
// validates every record of a batch it appends), read back by franz-go's
// consumer and librdkafka's (kcat); and they rebuild, byte for byte, the
// batches that franz-go, librdkafka and Kafka's Java producer write.

// eachKafka runs fn on a one-broker kfake cluster and on the shared real
// cluster of the newest Kafka version (kafkawire's produce tests put the
// Builder's batches through every verified version; one here keeps this
// package's tests short).
func eachKafka(t *testing.T, fn func(t *testing.T, k *kafkatest.Kafka)) {
	t.Run("kfake", func(t *testing.T) { fn(t, kafkatest.Fake(t, 1)) })
	newest(t, fn)
}

// newest runs fn on the shared real cluster of the newest verified Kafka
// version (skipped with KAFKAEDGE_KAFKA_VERSIONS=none).
func newest(t *testing.T, fn func(t *testing.T, k *kafkatest.Kafka)) {
	vs := kafkatest.Versions()
	if len(vs) == 0 {
		return
	}
	v := vs[0]
	t.Run("kafka-"+v, func(t *testing.T) { fn(t, kafkatest.Real(t, v)) })
}

// produceRecords returns n varied records (as testRecords) stamped around
// now, a few out of order, so that no broker's timestamp or retention rule
// refuses or drops them.
func produceRecords(n int) []Record {
	recs := testRecords(0, n, 120)
	now := time.Now().UnixMilli()
	for i := range recs {
		recs[i].Timestamp = now - 60_000 + int64(i)*3
		if i%17 == 4 {
			recs[i].Timestamp -= 30_000
		}
	}
	return recs
}

// initProducer asks the cluster for an idempotent producer ID and epoch.
func initProducer(t *testing.T, cl *kgo.Client) Producer {
	t.Helper()
	req := kmsg.NewPtrInitProducerIDRequest()
	req.TransactionTimeoutMillis = 60_000
	req.ProducerID, req.ProducerEpoch = -1, -1
	resp, err := req.RequestWith(testContext(t), cl)
	if err == nil {
		err = kerr.ErrorForCode(resp.ErrorCode)
	}
	if err != nil {
		t.Fatalf("InitProducerID: %v", err)
	}
	return Producer{ID: resp.ProducerID, Epoch: resp.ProducerEpoch}
}

// produce sends one batch to partition 0 of topic (acks all) and returns
// the partition's answer: its error (nil or a kerr error) and base offset.
func produce(t *testing.T, cl *kgo.Client, topic string, batch []byte) (int64, error) {
	t.Helper()
	leader, topicID := leaderOf(t, cl, topic)
	req := kmsg.NewPtrProduceRequest()
	req.Acks = -1
	req.TimeoutMillis = 10_000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic, rt.TopicID = topic, topicID
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Records = batch
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(testContext(t), leader)
	if err != nil {
		t.Fatalf("produce to %s: %v", topic, err)
	}
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		t.Fatalf("produce to %s: answer %+v", topic, resp)
	}
	p := resp.Topics[0].Partitions[0]
	return p.BaseOffset, kerr.ErrorForCode(p.ErrorCode)
}

// TestBuilderProduced sends the batches of an idempotent producer, in two
// Produce requests per codec, and reads every record back.
func TestBuilderProduced(t *testing.T) {
	eachKafka(t, func(t *testing.T, k *kafkatest.Kafka) {
		for _, codec := range produceCodecs {
			t.Run(CodecName(codec), func(t *testing.T) {
				topic := k.Topic(t, "built-"+CodecName(codec), 1)
				cl := k.Client(t)
				p := initProducer(t, cl)
				recs := produceRecords(300)
				const split = 180
				first := build(t, recs[:split], p, codec)
				p.Sequence = split
				second := build(t, recs[split:], p, codec)
				for _, b := range [][]byte{first, second} {
					if got := int(binary.BigEndian.Uint16(b[attributesAt:]) & attrCodecMask); got != codec {
						t.Fatalf("batch codec %d, want %d", got, codec)
					}
				}
				if base, err := produce(t, cl, topic, first); err != nil || base != 0 {
					t.Fatalf("first batch: base offset %d, %v", base, err)
				}
				if base, err := produce(t, cl, topic, second); err != nil || base != split {
					t.Fatalf("second batch: base offset %d, %v", base, err)
				}
				// The broker checks the sequence: a retry of the last batch is
				// a duplicate, acknowledged and not appended again; a gap is
				// refused.
				if base, err := produce(t, cl, topic, second); err != nil && err != kerr.DuplicateSequenceNumber {
					t.Fatalf("retried batch: base offset %d, %v", base, err)
				}
				p.Sequence = 400
				if _, err := produce(t, cl, topic, build(t, recs[:1], p, codec)); err != kerr.OutOfOrderSequenceNumber {
					t.Fatalf("batch after a sequence gap: %v, want OUT_OF_ORDER_SEQUENCE_NUMBER", err)
				}

				want := asProduced(recs)
				equalRecords(t, consumeKgo(t, k, topic, len(recs)), want)
				if kcat, err := exec.LookPath("kcat"); err == nil {
					consumeKcat(t, kcat, k, topic, want)
				}
			})
		}
	})
}

// consumeKgo reads n records of topic/0 with franz-go's consumer (and makes
// sure no more follow).
func consumeKgo(t *testing.T, k *kafkatest.Kafka, topic string, n int) []Record {
	t.Helper()
	cl := k.Client(t, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().AtStart()}}),
		kgo.FetchMaxWait(200*time.Millisecond))
	ctx := testContext(t)
	var got []Record
	for len(got) <= n {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			if len(got) == n {
				break // and nothing after
			}
			t.Fatalf("consumed %d records of %d: %v", len(got), n, err)
		}
		if errs := fs.Errors(); len(errs) > 0 {
			t.Fatalf("consume %s: %v", topic, errs[0].Err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			rec := Record{Offset: r.Offset, Timestamp: r.Timestamp.UnixMilli(), Key: r.Key, Value: r.Value}
			for _, h := range r.Headers {
				rec.Headers = append(rec.Headers, Header{Key: h.Key, Value: h.Value})
			}
			got = append(got, rec)
		})
		if len(got) == n {
			end, err := k.Admin(t).ListEndOffsets(ctx, topic)
			if err != nil {
				t.Fatal(err)
			}
			if o, _ := end.Lookup(topic, 0); o.Offset != int64(n) {
				t.Fatalf("log end offset %d after %d records", o.Offset, n)
			}
			break
		}
	}
	return got
}

// kcatRecord is one record as kcat -J prints it.
type kcatRecord struct {
	Offset  int64     `json:"offset"`
	TS      int64     `json:"ts"`
	Key     *string   `json:"key"`
	Payload *string   `json:"payload"`
	Headers []*string `json:"headers"`
}

// consumeKcat reads topic/0 with librdkafka's consumer and compares each
// record with want.
func consumeKcat(t *testing.T, kcat string, k *kafkatest.Kafka, topic string, want []Record) {
	t.Helper()
	brokers := strings.Join(k.Brokers, ",")
	if !k.IsReal() {
		brokers = minVersionProxy(t, k.Brokers[0]) // kfake: see minVersionProxy
	}
	cmd := exec.CommandContext(testContext(t), kcat, "-C", "-b", brokers, "-t", topic, "-p", "0",
		"-o", "beginning", "-c", fmt.Sprint(len(want)), "-e", "-J")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("kcat: %v: %s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != len(want) {
		t.Fatalf("kcat read %d records, want %d", len(lines), len(want))
	}
	str := func(b []byte) *string {
		if b == nil {
			return nil
		}
		s := string(b)
		return &s
	}
	for i, line := range lines {
		var got kcatRecord
		if err := json.Unmarshal([]byte(line), &got); err != nil {
			t.Fatalf("kcat line %d: %v: %s", i, err, line)
		}
		w := want[i]
		ok := got.Offset == w.Offset && got.TS == w.Timestamp && samePtr(got.Key, str(w.Key)) && samePtr(got.Payload, str(w.Value)) &&
			len(got.Headers) == 2*len(w.Headers)
		for j := 0; ok && j < len(w.Headers); j++ {
			ok = samePtr(got.Headers[2*j], &w.Headers[j].Key) && samePtr(got.Headers[2*j+1], str(w.Headers[j].Value))
		}
		if !ok {
			t.Fatalf("kcat record %d: %s\nwant offset %d ts %d key %q value %q headers %+v", i, line, w.Offset, w.Timestamp, w.Key, w.Value, w.Headers)
		}
	}
}

// samePtr compares two optional strings, nil only equal to nil.
func samePtr(a, b *string) bool {
	return (a == nil) == (b == nil) && (a == nil || *a == *b)
}

// rebuildBatches checks every batch in src (as fetched) against the one a
// Builder makes of its decoded records, stamped with its producer fields:
// uncompressed, byte for byte but for the base offset and partition leader
// epoch the broker wrote; compressed, the same header and the same record
// bytes once decompressed. It returns the data of each batch after the
// header, for the caller to look at the framing.
func rebuildBatches(t *testing.T, src []byte, codec int) [][]byte {
	t.Helper()
	var payloads [][]byte
	for len(src) > 0 {
		size := lengthEnd + int(binary.BigEndian.Uint32(src[8:]))
		theirs := src[:size]
		src = src[size:]
		recs, err := new(Decoder).Append(nil, theirs, 0, nil)
		if err != nil {
			t.Fatal(err)
		}
		p := Producer{
			ID:       int64(binary.BigEndian.Uint64(theirs[producerIDAt:])),
			Epoch:    int16(binary.BigEndian.Uint16(theirs[producerIDAt+8:])),
			Sequence: int32(binary.BigEndian.Uint32(theirs[producerIDAt+10:])),
		}
		var b Builder
		for _, r := range recs {
			if err := b.Add(r); err != nil {
				t.Fatal(err)
			}
		}
		ours, err := b.AppendTo(nil, p, CodecNone)
		if err != nil {
			t.Fatal(err)
		}
		if got := int(binary.BigEndian.Uint16(theirs[attributesAt:])); got != codec {
			t.Fatalf("their batch has attributes %#x, want codec %d", got, codec)
		}
		theirRecords := theirs[BatchHeaderSize:]
		if codec != CodecNone {
			if theirRecords, err = decompress(codec, theirRecords, 1<<30, 1<<30); err != nil {
				t.Fatal(err)
			}
		}
		// The header fields from the last offset delta to the record count,
		// and the records.
		if !bytes.Equal(theirs[lastDeltaAt:BatchHeaderSize], ours[lastDeltaAt:BatchHeaderSize]) {
			t.Fatalf("batch header\n got % x\nwant % x", ours[:BatchHeaderSize], theirs[:BatchHeaderSize])
		}
		if !bytes.Equal(theirRecords, ours[BatchHeaderSize:]) {
			t.Fatalf("%d records: their %d record bytes differ from ours (%d)", len(recs), len(theirRecords), len(ours)-BatchHeaderSize)
		}
		// Uncompressed, all of it: the length, and from the magic on, the
		// CRC included.
		if codec == CodecNone && (!bytes.Equal(theirs[8:lengthEnd], ours[8:lengthEnd]) || !bytes.Equal(theirs[magicAt:], ours[magicAt:])) {
			t.Fatalf("uncompressed batch\n got % x\nwant % x", ours[:BatchHeaderSize], theirs[:BatchHeaderSize])
		}
		payloads = append(payloads, theirs[BatchHeaderSize:])
	}
	return payloads
}

// TestBuilderMatchesKgo: franz-go's producer's batches are the ones a
// Builder makes of the same records.
func TestBuilderMatchesKgo(t *testing.T) {
	codecs := map[int]kgo.CompressionCodec{
		CodecNone: kgo.NoCompression(), CodecGzip: kgo.GzipCompression(), CodecSnappy: kgo.SnappyCompression(),
		CodecLz4: kgo.Lz4Compression(), CodecZstd: kgo.ZstdCompression(),
	}
	k := kafkatest.Fake(t, 1)
	for _, codec := range produceCodecs {
		t.Run(CodecName(codec), func(t *testing.T) {
			topic := k.Topic(t, "kgo-"+CodecName(codec), 1)
			var recs []*kgo.Record
			for _, r := range produceRecords(200) {
				kr := &kgo.Record{Topic: topic, Key: r.Key, Value: r.Value, Timestamp: time.UnixMilli(r.Timestamp)}
				for _, h := range r.Headers {
					kr.Headers = append(kr.Headers, kgo.RecordHeader{Key: h.Key, Value: h.Value})
				}
				recs = append(recs, kr)
			}
			k.Produce(t, []kgo.Opt{kgo.ProducerBatchCompression(codecs[codec]), kgo.ProducerBatchMaxBytes(8 << 10)}, recs...)
			src, _ := fetchRaw(t, k.Client(t), topic, 0, 0)
			if n := len(rebuildBatches(t, src, codec)); n < 2 {
				t.Fatalf("%d batches, want several", n)
			}
		})
	}
}

// TestForeignProducers rebuilds the batches that Kafka's Java producer (the
// console producer of the newest Kafka version; 3.9's writes the same
// framings) and librdkafka (kcat) write with
// each codec, and checks the framings the Builder chose after theirs: Java
// writes snappy in xerial framing and librdkafka a raw block (which Java's
// SnappyInputStream also reads, and the Builder writes); both write the
// Builder's lz4 frame descriptor (64 KiB blocks, no checksums).
func TestForeignProducers(t *testing.T) {
	kcat, kcatErr := exec.LookPath("kcat")
	newest(t, func(t *testing.T, k *kafkatest.Kafka) {
		readerProp, producerProp := "--reader-property", "--command-property" // 4.x names
		if strings.HasPrefix(k.Real.Version, "3.") {
			readerProp, producerProp = "--property", "--producer-property"
		}
		for _, codec := range produceCodecs {
			for _, producer := range []string{"java", "kcat"} {
				t.Run(producer+"-"+CodecName(codec), func(t *testing.T) {
					if producer == "kcat" && kcatErr != nil {
						t.Skip("kcat not installed: apt-get install kcat")
					}
					t.Parallel()
					topic := k.Topic(t, producer+"-"+CodecName(codec), 1)
					var in strings.Builder
					for i := range 200 {
						fmt.Fprintf(&in, "key%d:%s\n", i%5, strings.Repeat(fmt.Sprintf("value %d ", i), 1+i%7))
					}
					ctx := testContext(t)
					var cmd *exec.Cmd
					if producer == "java" {
						cmd = k.Real.Java(ctx, k.Real.ConsoleProducerClass(), "--bootstrap-server", strings.Join(k.Brokers, ","),
							"--topic", topic, "--compression-codec", CodecName(codec), readerProp, "parse.key=true", readerProp, "key.separator=:",
							producerProp, "linger.ms=50", producerProp, "batch.size=4096")
					} else {
						cmd = exec.CommandContext(ctx, kcat, "-P", "-b", strings.Join(k.Brokers, ","), "-t", topic, "-p", "0", "-K", ":",
							"-H", "hk=hv", "-z", CodecName(codec), "-X", "linger.ms=50", "-X", "batch.size=4096")
					}
					cmd.Stdin = strings.NewReader(in.String())
					if out, err := cmd.CombinedOutput(); err != nil {
						t.Fatalf("%s producer: %v: %s", producer, err, out)
					}
					src, _ := fetchRaw(t, k.Client(t), topic, 0, 0)
					payloads := rebuildBatches(t, src, codec)
					if len(payloads) < 2 {
						t.Fatalf("%d batches, want several", len(payloads))
					}
					for _, data := range payloads {
						switch {
						case codec == CodecSnappy && bytes.HasPrefix(data, xerialMagic) != (producer == "java"):
							t.Fatalf("%s snappy starts % x: xerial framing %v", producer, data[:8], producer == "java")
						case codec == CodecLz4 && !bytes.Equal(data[:7], []byte{0x04, 0x22, 0x4d, 0x18, 0x60, 0x40, 0x82}):
							t.Fatalf("%s lz4 frame starts % x", producer, data[:7])
						}
					}
					t.Logf("%s %s: %d batches, the first's data starts % x", producer, CodecName(codec), len(payloads), payloads[0][:min(len(payloads[0]), 16)])
				})
			}
		}
	})
}
