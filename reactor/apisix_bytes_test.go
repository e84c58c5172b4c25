package reactor

import (
	"bytes"
	"encoding/hex"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/kafkaedge/kafkaedge/internal/wsclient"
	"github.com/kafkaedge/kafkaedge/proto/pubsub"
)

var updateGolden = flag.Bool("update-golden", false, "rewrite testdata/apisix-bytes.golden from the running server (TestAPISIXBytes)")

// apisixGolden holds every frame an APISIX client receives in the
// scenario of TestAPISIXBytes.
const apisixGolden = "testdata/apisix-bytes.golden"

// apisixTopic is the one topic of the scenario (one partition).
const apisixTopic = "apisix"

// apisixRecords are the records of the scenario, produced in three batches
// (offsets 0-3, 4-6, 7-9; the last one lz4-compressed) so that fetches
// start at the first record of a batch, inside one and inside a compressed
// one. Keys are null, empty or set; some records carry headers, which never
// reach an APISIX client. Timestamps are fixed; records 4 and 5 share one.
func apisixRecords() [][]*kgo.Record {
	rec := func(ts int64, key, value []byte, headers ...string) *kgo.Record {
		r := &kgo.Record{Topic: apisixTopic, Timestamp: time.UnixMilli(tsBase + ts), Key: key, Value: value}
		for i := 0; i+1 < len(headers); i += 2 {
			r.Headers = append(r.Headers, kgo.RecordHeader{Key: headers[i], Value: []byte(headers[i+1])})
		}
		return r
	}
	big := func(c byte) []byte { return bytes.Repeat([]byte{c}, 200) } // two-byte lengths, and lz4 has something to compress
	return [][]*kgo.Record{
		{
			rec(0, nil, []byte("value-0")),
			rec(1000, []byte("key-1"), []byte("value-1"), "trace-id", "abc"),
			rec(2000, []byte{}, []byte{}),
			rec(3000, []byte("key-3"), []byte{0x00, 0xff, 0x01}, "h1", "", "h2", "\x00\x01"),
		},
		{
			rec(4000, []byte("key-4"), []byte("value-4")),
			rec(4000, nil, []byte("value-5"), "trace-id", "def"),
			rec(6000, []byte("key-6"), []byte("value-6")),
		},
		{
			rec(7000, []byte("key-7"), big('a'), "trace-id", "ghi"),
			rec(8000, nil, big('b')),
			rec(9000, []byte("key-9"), big('c'), "h", "v"),
		},
	}
}

// batchHook receives the metrics of each record batch kgo wrote.
type batchHook chan kgo.ProduceBatchMetrics

func (h batchHook) OnProduceBatchWritten(_ kgo.BrokerMetadata, _ string, _ int32, m kgo.ProduceBatchMetrics) {
	h <- m
}

// apisixStep is one thing the client sends and the number of frames it
// must cause: one for every request, none for what the protocol skips (the
// next step's frame then shows that nothing came in between).
type apisixStep struct {
	name   string
	desc   string // the request, readable
	typ    int    // wsclient.BinaryMessage or wsclient.TextMessage
	frame  []byte // the WebSocket payload sent
	frames int
}

func apisixReq(name string, req *pubsub.PubSubReq) apisixStep {
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(req)
	if err != nil {
		panic(err)
	}
	return apisixStep{name: name, desc: describeReq(req), typ: wsclient.BinaryMessage, frame: b, frames: 1}
}

// describeReq is req as one line of the golden file.
func describeReq(req *pubsub.PubSubReq) string {
	seq := req.GetSequence()
	switch {
	case req.GetCmdPing() != nil:
		return fmt.Sprintf("ping seq=%d state=%s", seq, quote(req.GetCmdPing().GetState()))
	case req.GetCmdKafkaListOffset() != nil:
		c := req.GetCmdKafkaListOffset()
		return fmt.Sprintf("list_offset seq=%d topic=%q partition=%d timestamp=%d", seq, c.GetTopic(), c.GetPartition(), c.GetTimestamp())
	case req.GetCmdKafkaFetch() != nil:
		c := req.GetCmdKafkaFetch()
		return fmt.Sprintf("fetch seq=%d topic=%q partition=%d offset=%d", seq, c.GetTopic(), c.GetPartition(), c.GetOffset())
	case req.GetCmdEmpty() != nil:
		return fmt.Sprintf("empty seq=%d", seq)
	}
	return fmt.Sprintf("no command seq=%d", seq)
}

// quote is b as a Go string literal, ASCII only.
func quote(b []byte) string {
	if len(b) > 32 {
		return fmt.Sprintf("%d bytes %s...", len(b), strconv.QuoteToASCII(string(b[:16])))
	}
	return strconv.QuoteToASCII(string(b))
}

// apisixSteps is the scenario: only what an APISIX client sends, one
// request at a time. Requests are not pipelined: a ping is answered on the
// event loop and a Kafka command from a goroutine, so the order of their
// answers would vary from run to run.
func apisixSteps() []apisixStep {
	const t = apisixTopic
	empty := &pubsub.PubSubReq{Sequence: -7, Req: &pubsub.PubSubReq_CmdEmpty{CmdEmpty: &pubsub.CmdEmpty{}}}
	steps := []apisixStep{
		apisixReq("ping with state", pingReq(1, "state-\x00\xff")),
		apisixReq("ping without state", pingReq(2, "")),
		apisixReq("ping sequence 0", pingReq(0, "zero")),
		apisixReq("ping sequence max", pingReq(math.MaxInt64, "max")),
		apisixReq("ping sequence min", pingReq(math.MinInt64, "min")),
		apisixReq("ping sequence -1, 300-byte state", pingReq(-1, strings.Repeat("s", 300))),

		apisixReq("list offset -1 (end)", listReq(10, t, 0, -1)),
		apisixReq("list offset -2 (first)", listReq(11, t, 0, -2)),
		apisixReq("list offset 0 (before all)", listReq(12, t, 0, 0)),
		apisixReq("list offset exact first", listReq(13, t, 0, tsBase)),
		apisixReq("list offset exact", listReq(14, t, 0, tsBase+1000)),
		apisixReq("list offset between", listReq(15, t, 0, tsBase+1500)),
		apisixReq("list offset shared timestamp", listReq(16, t, 0, tsBase+4000)),
		apisixReq("list offset in the compressed batch", listReq(17, t, 0, tsBase+7500)),
		apisixReq("list offset last", listReq(18, t, 0, tsBase+9000)),
		apisixReq("list offset after all (none)", listReq(-19, t, 0, tsBase+1_000_000)),
		apisixReq("list offset unknown topic", listReq(20, "nope", 0, -1)),
		apisixReq("list offset unknown partition", listReq(21, t, 7, -1)),

		apisixReq("fetch at 0 (every batch)", fetchReq(30, t, 0, 0)),
		apisixReq("fetch inside the first batch", fetchReq(31, t, 0, 2)),
		apisixReq("fetch at the second batch", fetchReq(32, t, 0, 4)),
		apisixReq("fetch inside the second batch", fetchReq(33, t, 0, 5)),
		apisixReq("fetch at the compressed batch", fetchReq(34, t, 0, 7)),
		apisixReq("fetch inside the compressed batch", fetchReq(35, t, 0, 8)),
		apisixReq("fetch the last record", fetchReq(math.MinInt64, t, 0, 9)),
		apisixReq("fetch at the end (empty)", fetchReq(36, t, 0, 10)),
		apisixReq("fetch past the end", fetchReq(37, t, 0, 11)),
		apisixReq("fetch far past the end", fetchReq(-38, t, 0, 1000)),
		apisixReq("fetch unknown topic", fetchReq(39, "nope", 0, 0)),
		apisixReq("fetch unknown partition", fetchReq(40, t, 7, 0)),
		apisixReq("fetch again after the errors", fetchReq(41, t, 0, 6)),

		apisixReq("empty (no handler)", empty),
		{name: "wrong command", desc: "bytes ff ff ff ff ff", typ: wsclient.BinaryMessage, frame: []byte{0xff, 0xff, 0xff, 0xff, 0xff}, frames: 1},
		{name: "wrong command (truncated varint)", desc: "bytes 08 0d ff", typ: wsclient.BinaryMessage, frame: []byte{0x08, 0x0d, 0xff}, frames: 1},
	}
	skipped := apisixReq("no command (skipped)", &pubsub.PubSubReq{Sequence: 50})
	skipped.frames = 0
	steps = append(steps, skipped,
		apisixStep{name: "text frame (skipped)", desc: `text "hello"`, typ: wsclient.TextMessage, frame: []byte("hello")},
		apisixReq("ping after the skipped ones", pingReq(51, "alive")),
	)
	return steps
}

// TestAPISIXBytes pins every byte an APISIX client receives from a
// kfake-backed server for APISIX's own commands, against
// testdata/apisix-bytes.golden. The file was generated on the code before
// kafkaedge's extensions (EXTENSIONS.md) were added, so the test holds that
// they change nothing an APISIX client sees. Regenerate with
// `go test ./reactor -run TestAPISIXBytes -update-golden` only for a
// deliberate change of the APISIX protocol.
//
// Nothing in the scenario depends on the time or on addresses: the
// records' timestamps are fixed, kfake names topics as asked, and no
// answer to an APISIX command carries an address.
func TestAPISIXBytes(t *testing.T) {
	k := newKafka(t, 1, apisixTopic)
	for i, batch := range apisixRecords() {
		written := make(batchHook, 4)
		opts := []kgo.Opt{kgo.WithHooks(written)}
		codec := uint8(0)
		if i == 2 {
			opts = append(opts, kgo.ProducerBatchCompression(kgo.Lz4Compression()))
			codec = 3 // lz4
		}
		k.Produce(t, opts, batch...)
		// The scenario's premise: each batch went to Kafka as one record
		// batch (of all its records), the last one compressed.
		select {
		case m := <-written:
			if m.NumRecords != len(batch) || m.CompressionType != codec {
				t.Fatalf("batch %d written as %d records, compression %d; want %d, %d", i, m.NumRecords, m.CompressionType, len(batch), codec)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("batch %d: no OnProduceBatchWritten", i)
		}
	}
	s := startServer(t, Config{}, kafkaRoute("/kafka", k))
	c := dialWS(t, s, "/kafka")

	var got strings.Builder
	got.WriteString(goldenHeader)
	for _, st := range apisixSteps() {
		if err := c.SendRaw(st.typ, st.frame); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		for range st.frames {
			if err := c.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
				t.Fatal(err)
			}
			b, err := c.RecvRaw() // the binary message's payload as received
			if err != nil {
				t.Fatalf("%s: %v", st.name, err)
			}
			fmt.Fprintf(&got, "%s | %s | %x\n", st.name, st.desc, b)
		}
	}
	// Nothing more comes: every request was answered exactly once.
	if err := c.SetReadDeadline(time.Now().Add(200 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	if b, err := c.RecvRaw(); err == nil {
		t.Errorf("a frame after the last answer: %x", b)
	}

	path := filepath.FromSlash(apisixGolden)
	if *updateGolden {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s", path)
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (generate it with -update-golden)", err)
	}
	if d := goldenDiff(string(want), got.String()); d != "" {
		t.Errorf("the frames an APISIX client receives differ from %s (- golden, + got):\n%s", apisixGolden, d)
	}
}

const goldenHeader = `# The frames an APISIX client receives (reactor.TestAPISIXBytes), in order:
# one line per frame, "step | request | payload in hex", the payload being
# the WebSocket message's bytes exactly as received (a PubSubResp).
# Generated before kafkaedge's extensions; a difference is a break of the
# APISIX protocol. Regenerate: go test ./reactor -run TestAPISIXBytes -update-golden
`

// goldenDiff is a line diff of want and got ("" when equal): the lines
// only in want with "-", only in got with "+", and under a changed frame
// the first differing byte and both frames decoded.
func goldenDiff(want, got string) string {
	if want == got {
		return ""
	}
	a, b := strings.Split(want, "\n"), strings.Split(got, "\n")
	// Longest common subsequence, from the ends.
	lcs := make([][]int, len(a)+1)
	for i := range lcs {
		lcs[i] = make([]int, len(b)+1)
	}
	for i := len(a) - 1; i >= 0; i-- {
		for j := len(b) - 1; j >= 0; j-- {
			if a[i] == b[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	var out strings.Builder
	var dels, adds []string
	flush := func() {
		for _, l := range dels {
			fmt.Fprintf(&out, "- %s\n", l)
		}
		for _, l := range adds {
			fmt.Fprintf(&out, "+ %s\n", l)
		}
		for n := range min(len(dels), len(adds)) {
			out.WriteString(explainFrames(dels[n], adds[n]))
		}
		dels, adds = dels[:0], adds[:0]
	}
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		switch {
		case i < len(a) && j < len(b) && a[i] == b[j]:
			flush()
			i, j = i+1, j+1
		case j < len(b) && (i == len(a) || lcs[i][j+1] >= lcs[i+1][j]):
			adds = append(adds, b[j])
			j++
		default:
			dels = append(dels, a[i])
			i++
		}
	}
	flush()
	return out.String()
}

// explainFrames describes how the frames of two golden lines differ.
func explainFrames(want, got string) string {
	wb, err1 := hex.DecodeString(want[strings.LastIndex(want, " ")+1:])
	gb, err2 := hex.DecodeString(got[strings.LastIndex(got, " ")+1:])
	if err1 != nil || err2 != nil {
		return ""
	}
	n := 0
	for n < len(wb) && n < len(gb) && wb[n] == gb[n] {
		n++
	}
	return fmt.Sprintf("    first difference at byte %d (golden %d bytes, got %d)\n    golden: %s\n    got:    %s\n",
		n, len(wb), len(gb), dumpProto(wb), dumpProto(gb))
}

// dumpProto is a protobuf message as field numbers and values, nested
// messages in braces, for a failure message; it needs no schema, so a
// field an old client does not know shows as plainly as the others.
func dumpProto(b []byte) string {
	var out strings.Builder
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			fmt.Fprintf(&out, "<bad tag: %x>", b)
			break
		}
		b = b[n:]
		if out.Len() > 0 {
			out.WriteByte(' ')
		}
		fmt.Fprintf(&out, "%d:", num)
		n = protowire.ConsumeFieldValue(num, typ, b)
		if n < 0 {
			fmt.Fprintf(&out, "<bad value: %x>", b)
			break
		}
		switch typ {
		case protowire.VarintType:
			v, _ := protowire.ConsumeVarint(b)
			fmt.Fprintf(&out, "%d", int64(v))
		case protowire.BytesType:
			v, _ := protowire.ConsumeBytes(b)
			if isMessage(v) {
				fmt.Fprintf(&out, "{%s}", dumpProto(v))
			} else {
				out.WriteString(quote(v))
			}
		default:
			fmt.Fprintf(&out, "%x", b[:n])
		}
		b = b[n:]
	}
	return out.String()
}

// isMessage guesses whether b is a nested message rather than a string
// (printable ASCII is taken for a string).
func isMessage(b []byte) bool {
	printable := true
	for _, c := range b {
		printable = printable && c >= 0x20 && c < 0x7f
	}
	if len(b) == 0 || printable {
		return false
	}
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 || num > 100 {
			return false
		}
		b = b[n:]
		if n = protowire.ConsumeFieldValue(num, typ, b); n < 0 {
			return false
		}
		b = b[n:]
	}
	return true
}
