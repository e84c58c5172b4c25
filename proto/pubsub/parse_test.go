package pubsub

import (
	"bytes"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// checkParse fails unless ParseReq and proto.Unmarshal agree on b.
func checkParse(t *testing.T, b []byte) {
	t.Helper()
	var want PubSubReq
	werr := proto.Unmarshal(b, &want)
	var got Req
	gerr := ParseReq(b, &got)
	if (werr == nil) != (gerr == nil) {
		t.Fatalf("%x: proto.Unmarshal error %v, ParseReq error %v", b, werr, gerr)
	}
	if werr != nil {
		return
	}
	if got.Sequence != want.GetSequence() {
		t.Fatalf("%x: sequence %d, want %d", b, got.Sequence, want.GetSequence())
	}
	var topic string
	var partition, maxWait, minBytes, maxBytes int32
	var offset, timestamp int64
	var state []byte
	var headers bool
	var cmd protowire.Number
	var ext proto.Message
	switch r := want.GetReq().(type) {
	case nil:
	case *PubSubReq_CmdEmpty:
		cmd = FieldCmdEmpty
	case *PubSubReq_CmdPing:
		cmd, state = FieldCmdPing, r.CmdPing.GetState()
	case *PubSubReq_CmdKafkaFetch:
		f := r.CmdKafkaFetch
		cmd, topic, partition, offset = FieldCmdKafkaFetch, f.GetTopic(), f.GetPartition(), f.GetOffset()
		maxWait, minBytes, maxBytes, headers = f.GetMaxWaitMs(), f.GetMinBytes(), f.GetMaxBytes(), f.GetHeaders()
	case *PubSubReq_CmdKafkaListOffset:
		cmd, topic, partition, timestamp = FieldCmdKafkaListOffset, r.CmdKafkaListOffset.GetTopic(), r.CmdKafkaListOffset.GetPartition(), r.CmdKafkaListOffset.GetTimestamp()
	case *PubSubReq_CmdKafkaSubscribe:
		cmd, ext = FieldCmdKafkaSubscribe, r.CmdKafkaSubscribe
	case *PubSubReq_CmdKafkaUnsubscribe:
		cmd, ext = FieldCmdKafkaUnsubscribe, r.CmdKafkaUnsubscribe
	case *PubSubReq_CmdKafkaCommit:
		cmd, ext = FieldCmdKafkaCommit, r.CmdKafkaCommit
	case *PubSubReq_CmdKafkaCommitted:
		cmd, ext = FieldCmdKafkaCommitted, r.CmdKafkaCommitted
	case *PubSubReq_CmdKafkaProduce:
		cmd, ext = FieldCmdKafkaProduce, r.CmdKafkaProduce
	case *PubSubReq_CmdKafkaFetchMany:
		cmd, ext = FieldCmdKafkaFetchMany, r.CmdKafkaFetchMany
	case *PubSubReq_CmdKafkaMetadata:
		cmd, ext = FieldCmdKafkaMetadata, r.CmdKafkaMetadata
	}
	if got.Command != cmd || string(got.Topic) != topic || got.Partition != partition ||
		got.Offset != offset || got.Timestamp != timestamp || !bytes.Equal(got.State, state) ||
		got.MaxWaitMs != maxWait || got.MinBytes != minBytes || got.MaxBytes != maxBytes || got.Headers != headers ||
		(ext == nil) != (got.Ext == nil) || ext != nil && !proto.Equal(ext, got.Ext) {
		t.Fatalf("%x: ParseReq %+v, proto.Unmarshal %v", b, got, &want)
	}
}

func reqCases(t testing.TB) [][]byte {
	msgs := []*PubSubReq{
		{},
		{Sequence: -1, Req: &PubSubReq_CmdEmpty{CmdEmpty: &CmdEmpty{}}},
		{Sequence: 1<<63 - 1, Req: &PubSubReq_CmdPing{CmdPing: &CmdPing{State: []byte("state")}}},
		{Sequence: -1 << 63, Req: &PubSubReq_CmdPing{CmdPing: &CmdPing{}}},
		{Sequence: 7, Req: &PubSubReq_CmdKafkaFetch{CmdKafkaFetch: &CmdKafkaFetch{Topic: "demo", Partition: 2, Offset: 120}}},
		{Sequence: 8, Req: &PubSubReq_CmdKafkaFetch{CmdKafkaFetch: &CmdKafkaFetch{Topic: "t", Partition: -1, Offset: -5}}},
		{Sequence: 9, Req: &PubSubReq_CmdKafkaListOffset{CmdKafkaListOffset: &CmdKafkaListOffset{Topic: "dé", Partition: 1, Timestamp: -2}}},
		{Sequence: 10, Req: &PubSubReq_CmdKafkaFetch{CmdKafkaFetch: &CmdKafkaFetch{Topic: "t", Offset: 3, MaxWaitMs: 5000, MinBytes: 1, MaxBytes: 1 << 20, Headers: true}}},
		{Sequence: 11, Req: &PubSubReq_CmdKafkaMetadata{CmdKafkaMetadata: &CmdKafkaMetadata{Topics: []string{"a", "b"}}}},
		{Sequence: 12, Req: &PubSubReq_CmdKafkaFetchMany{CmdKafkaFetchMany: &CmdKafkaFetchMany{
			Targets: []*KafkaFetchTarget{{Topic: "a", Partition: 1, Offset: 2}, {Topic: "b"}}, MaxWaitMs: 100, Headers: true}}},
		{Sequence: 13, Req: &PubSubReq_CmdKafkaSubscribe{CmdKafkaSubscribe: &CmdKafkaSubscribe{Topic: "t", Partitions: []int32{0, 1},
			Start: &CmdKafkaSubscribe_Last{Last: 10}, Offsets: map[int32]int64{1: 5}, Filter: &KafkaFilter{Key: []byte{}}}}},
		{Sequence: 14, Req: &PubSubReq_CmdKafkaUnsubscribe{CmdKafkaUnsubscribe: &CmdKafkaUnsubscribe{Subscription: 13}}},
		{Sequence: 15, Req: &PubSubReq_CmdKafkaProduce{CmdKafkaProduce: &CmdKafkaProduce{Topic: "t", Records: []*KafkaRecord{{Value: []byte("v")}}}}},
		{Sequence: 16, Req: &PubSubReq_CmdKafkaCommit{CmdKafkaCommit: &CmdKafkaCommit{Group: "g"}}},
		{Sequence: 17, Req: &PubSubReq_CmdKafkaCommitted{CmdKafkaCommitted: &CmdKafkaCommitted{Group: "g", Topic: "t"}}},
	}
	var out [][]byte
	for _, m := range msgs {
		b, err := proto.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	fetch := func(fields ...byte) []byte {
		return protowire.AppendBytes(protowire.AppendTag(nil, FieldCmdKafkaFetch, protowire.BytesType), fields)
	}
	ping := protowire.AppendBytes(protowire.AppendTag(nil, FieldCmdPing, protowire.BytesType), []byte{0x0a, 1, 'x'})
	metadata := func(fields ...byte) []byte {
		return protowire.AppendBytes(protowire.AppendTag(nil, FieldCmdKafkaMetadata, protowire.BytesType), fields)
	}
	out = append(out,
		append(fetch(0x0a, 1, 'a'), fetch(0x10, 3)...),            // the same member twice: merged
		append(fetch(0x0a, 1, 'a', 0x18, 9), ping...),             // another member: replaces
		append(ping, fetch(0x10, 4)...),                           // and back
		fetch(0x0a, 2, 0xff, 0xfe),                                // invalid UTF-8 topic
		fetch(0x15, 1, 2, 3, 4),                                   // partition as fixed32: skipped
		[]byte{0x08, 5, 0x08, 6},                                  // last sequence wins
		[]byte{0x09, 1, 2, 3, 4, 5, 6, 7, 8},                      // sequence as fixed64: skipped
		[]byte{0x98, 0x02, 1},                                     // field 35 (unknown) varint
		[]byte{0x0c},                                              // end group at top level
		[]byte{0x0b, 0x0c},                                        // empty group, field 1
		[]byte{0xf8, 0xff, 0xff, 0xff, 0x0f, 1},                   // field 2^29-1
		[]byte{0x80, 0x80, 0x80, 0x80, 0x10, 1},                   // field 2^29: out of range
		[]byte{0x08},                                              // truncated varint
		[]byte{0x8a, 0x02, 5, 0x0a},                               // length past the end
		[]byte{0x8a, 0x02, 2, 0x0c, 0x00},                         // end group inside a command
		[]byte{0x0f},                                              // wire type 7
		append(metadata(0x0a, 1, 'a'), metadata(0x0a, 1, 'b')...), // a kafkaedge command twice: merged
		append(metadata(0x0a, 1, 'a'), ping...),                   // replaced
		metadata(0x0a, 2, 0xff, 0xfe),                             // invalid UTF-8 inside
		fetch(0x80, 0x01, 7, 0x98, 0x01, 1),                       // CmdKafkaFetch fields 16 and 19
		fetch(0x85, 0x01, 1, 2, 3, 4),                             // field 16 as fixed32: skipped
	)
	return out
}

func TestParseReqMatchesUnmarshal(t *testing.T) {
	for _, b := range reqCases(t) {
		checkParse(t, b)
	}
}

func TestParseReqAllocatesNothing(t *testing.T) {
	b := reqCases(t)[4]
	var r Req
	if n := testing.AllocsPerRun(100, func() { _ = ParseReq(b, &r) }); n != 0 {
		t.Fatalf("ParseReq allocates %v times per call", n)
	}
}

func FuzzParseReq(f *testing.F) {
	for _, b := range reqCases(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) { checkParse(t, b) })
}

func BenchmarkParseReq(b *testing.B) {
	req, err := proto.Marshal(&PubSubReq{Sequence: 42, Req: &PubSubReq_CmdKafkaFetch{
		CmdKafkaFetch: &CmdKafkaFetch{Topic: "demo", Partition: 3, Offset: 123456}}})
	if err != nil {
		b.Fatal(err)
	}
	b.Run("parse", func(b *testing.B) {
		b.ReportAllocs()
		var r Req
		for b.Loop() {
			if err := ParseReq(req, &r); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("unmarshal", func(b *testing.B) {
		b.ReportAllocs()
		var m PubSubReq
		for b.Loop() {
			if err := proto.Unmarshal(req, &m); err != nil {
				b.Fatal(err)
			}
		}
	})
}
