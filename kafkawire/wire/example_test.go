package wire_test

import (
	"encoding/binary"
	"fmt"

	"github.com/kafkaedge/kafkaedge/kafkawire/wire"
)

// A request on the wire is a 4-byte size, the request header and the body
// encoded for the negotiated version.
func ExampleAppendRequestHeader() {
	req := &wire.MetadataRequest{Topics: []string{"orders"}}
	version, _ := wire.Negotiate(req.Key(), wire.VersionRange{Min: 0, Max: 12})

	msg := []byte{0, 0, 0, 0} // size, filled in below
	msg = wire.AppendRequestHeader(msg, req.Key(), version, 1, "kafkaedge")
	msg = req.AppendTo(msg, version)
	binary.BigEndian.PutUint32(msg, uint32(len(msg)-4))

	fmt.Printf("Metadata v%d, flexible %v, %d bytes\n", version, wire.IsFlexible(req.Key(), version), len(msg))
	// Output: Metadata v12, flexible true, 52 bytes
}

// A response is a 4-byte size, the correlation id, for flexible versions a
// tag section, and the body.
func ExampleResponseBody() {
	// ListOffsets v6 (flexible): correlation id 1, no header tags, one topic
	// "t" with partition 0 at offset 42.
	var b []byte
	b = wire.AppendInt32(b, 1) // correlation id
	b = wire.AppendEmptyTags(b)
	b = wire.AppendInt32(b, 0) // throttle
	b = wire.AppendCompactArrayLen(b, 1)
	b = wire.AppendCompactString(b, "t")
	b = wire.AppendCompactArrayLen(b, 1)
	b = wire.AppendInt32(b, 0)  // partition
	b = wire.AppendInt16(b, 0)  // error code
	b = wire.AppendInt64(b, -1) // timestamp
	b = wire.AppendInt64(b, 42) // offset
	b = wire.AppendInt32(b, 3)  // leader epoch
	b = wire.AppendEmptyTags(b) // partition tags
	b = wire.AppendEmptyTags(b) // topic tags
	b = wire.AppendEmptyTags(b) // response tags

	body, err := wire.ResponseBody(b[4:], wire.KeyListOffsets, 6)
	if err != nil {
		fmt.Println(err)
		return
	}
	var resp wire.ListOffsetsResponse
	if err := resp.Decode(body, 6); err != nil {
		fmt.Println(err)
		return
	}
	p := resp.Topics[0].Partitions[0]
	fmt.Println(resp.Topics[0].Name, p.Partition, p.Offset, wire.ErrorName(p.ErrorCode))
	// Output: t 0 42 NONE
}

func ExampleErrorName() {
	fmt.Println(wire.ErrorName(wire.ErrNotLeaderOrFollower))
	fmt.Println(wire.ErrorName(3))
	fmt.Println(wire.ErrorName(4000))
	// Output:
	// NOT_LEADER_OR_FOLLOWER
	// UNKNOWN_TOPIC_OR_PARTITION
	// UNKNOWN_ERROR_CODE_4000
}

// A Produce request carries record batches as they are; with acks 0 the
// broker sends no response, so nothing may wait for one.
func ExampleProduceRequest_ExpectsResponse() {
	batch := []byte("one encoded record batch") // what a record batch encoder made
	req := &wire.ProduceRequest{Acks: wire.AcksAll, TimeoutMillis: 30000, Topics: []wire.ProduceTopic{
		{Name: "orders", Partitions: []wire.ProducePartition{{Partition: 0, Records: batch}}},
	}}
	version, _ := wire.Negotiate(req.Key(), wire.VersionRange{Min: 0, Max: 11}) // Kafka 3.9

	msg := []byte{0, 0, 0, 0}
	msg = wire.AppendRequestHeader(msg, req.Key(), version, 1, "kafkaedge")
	msg = req.AppendTo(msg, version) // one allocation, one copy of the batch
	binary.BigEndian.PutUint32(msg, uint32(len(msg)-4))
	fmt.Printf("Produce v%d, %d bytes, response expected: %v\n", version, len(msg), req.ExpectsResponse())

	req.Acks = wire.AcksNone
	fmt.Println("with acks 0, response expected:", req.ExpectsResponse())
	// Output:
	// Produce v11, 72 bytes, response expected: true
	// with acks 0, response expected: false
}
