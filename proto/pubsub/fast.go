// Package pubsub holds the messages of kafkaedge's client protocol, the
// APISIX pub/sub protocol, as generated from proto/pubsub.proto. Beside the
// generated types it has hand-written append encoders for the fetch hot path,
// which produce exactly the bytes proto.Marshal would without building
// per-message structs.
package pubsub

import "google.golang.org/protobuf/encoding/protowire"

// Field numbers of the PubSubResp oneof members, for AppendRespHeader.
const (
	// FieldErrorResp is the PubSubResp field number of error_resp.
	FieldErrorResp protowire.Number = 31
	// FieldPongResp is the PubSubResp field number of pong_resp.
	FieldPongResp protowire.Number = 32
	// FieldKafkaFetchResp is the PubSubResp field number of kafka_fetch_resp.
	FieldKafkaFetchResp protowire.Number = 33
	// FieldKafkaListOffsetResp is the PubSubResp field number of kafka_list_offset_resp.
	FieldKafkaListOffsetResp protowire.Number = 34
)

// Field numbers inside KafkaMessage and KafkaFetchResp.
const (
	fieldFetchMessages    protowire.Number = 1
	fieldMessageOffset    protowire.Number = 1
	fieldMessageTimestamp protowire.Number = 2
	fieldMessageKey       protowire.Number = 3
	fieldMessageValue     protowire.Number = 4
	fieldSequence         protowire.Number = 1
)

// AppendKafkaMessage appends one entry of KafkaFetchResp.messages (field 1:
// tag, length and the KafkaMessage body) to dst and returns the extended
// slice. As in proto3, zero-valued fields (offset 0, timestamp 0, empty key or
// value) are omitted, so a sequence of calls yields the bytes of
// proto.Marshal of a KafkaFetchResp holding the same messages.
func AppendKafkaMessage(dst []byte, offset, timestamp int64, key, value []byte) []byte {
	n := 0
	if offset != 0 {
		n += 1 + protowire.SizeVarint(uint64(offset))
	}
	if timestamp != 0 {
		n += 1 + protowire.SizeVarint(uint64(timestamp))
	}
	if len(key) > 0 {
		n += 1 + protowire.SizeBytes(len(key))
	}
	if len(value) > 0 {
		n += 1 + protowire.SizeBytes(len(value))
	}
	// Every tag here is one byte (field number < 16), written directly.
	dst = append(dst, tagByte(fieldFetchMessages, protowire.BytesType))
	dst = protowire.AppendVarint(dst, uint64(n))
	if offset != 0 {
		dst = append(dst, tagByte(fieldMessageOffset, protowire.VarintType))
		dst = protowire.AppendVarint(dst, uint64(offset))
	}
	if timestamp != 0 {
		dst = append(dst, tagByte(fieldMessageTimestamp, protowire.VarintType))
		dst = protowire.AppendVarint(dst, uint64(timestamp))
	}
	if len(key) > 0 {
		dst = append(dst, tagByte(fieldMessageKey, protowire.BytesType))
		dst = protowire.AppendVarint(dst, uint64(len(key)))
		dst = append(dst, key...)
	}
	if len(value) > 0 {
		dst = append(dst, tagByte(fieldMessageValue, protowire.BytesType))
		dst = protowire.AppendVarint(dst, uint64(len(value)))
		dst = append(dst, value...)
	}
	return dst
}

// tagByte is the one-byte tag of a field numbered below 16.
func tagByte(num protowire.Number, typ protowire.Type) byte {
	return byte(num)<<3 | byte(typ)
}

// AppendRespHeader appends the start of a PubSubResp to dst: field 1
// (sequence, omitted when 0 as in proto3) and the tag and length of the oneof
// member field whose body of bodyLen bytes the caller writes separately, for
// example encoded KafkaFetchResp bytes shared by several connections. The
// header followed by the body is exactly what proto.Marshal yields for the
// same PubSubResp.
func AppendRespHeader(dst []byte, sequence int64, field protowire.Number, bodyLen int) []byte {
	if sequence != 0 {
		dst = protowire.AppendTag(dst, fieldSequence, protowire.VarintType)
		dst = protowire.AppendVarint(dst, uint64(sequence))
	}
	dst = protowire.AppendTag(dst, field, protowire.BytesType)
	return protowire.AppendVarint(dst, uint64(bodyLen))
}
