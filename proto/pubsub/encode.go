// Package pubsub is kafkaedge's client protocol, the APISIX pub/sub
// protocol: its messages as generated from proto/pubsub.proto, and beside
// them what a server of the protocol needs on its hot path. ParseReq decodes
// a request in place; the Append functions encode every response, producing
// exactly the bytes proto.Marshal would without building structs; and the
// error texts clients match on are defined here (docs/protocol.md is their
// reference).
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

// Field numbers inside the responses (TestFieldNumbers holds them to the
// generated descriptors).
const (
	fieldSequence         protowire.Number = 1 // PubSubResp.sequence
	fieldErrorCode        protowire.Number = 1 // ErrorResp.code
	fieldErrorMessage     protowire.Number = 2 // ErrorResp.message
	fieldPongState        protowire.Number = 1 // PongResp.state
	fieldListOffset       protowire.Number = 1 // KafkaListOffsetResp.offset
	fieldFetchMessages    protowire.Number = 1 // KafkaFetchResp.messages
	fieldMessageOffset    protowire.Number = 1 // KafkaMessage.offset
	fieldMessageTimestamp protowire.Number = 2 // KafkaMessage.timestamp
	fieldMessageKey       protowire.Number = 3 // KafkaMessage.key
	fieldMessageValue     protowire.Number = 4 // KafkaMessage.value
)

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

// AppendErrorResp appends the body of an ErrorResp (the error_resp member of
// a PubSubResp) to dst and returns the extended slice.
func AppendErrorResp(dst []byte, code int32, message string) []byte {
	if code != 0 {
		dst = append(dst, tagByte(fieldErrorCode, protowire.VarintType))
		dst = protowire.AppendVarint(dst, uint64(int64(code)))
	}
	if message != "" {
		dst = append(dst, tagByte(fieldErrorMessage, protowire.BytesType))
		dst = protowire.AppendString(dst, message)
	}
	return dst
}

// AppendPongResp appends the body of a PongResp carrying state to dst and
// returns the extended slice.
func AppendPongResp(dst []byte, state []byte) []byte {
	if len(state) == 0 {
		return dst
	}
	dst = append(dst, tagByte(fieldPongState, protowire.BytesType))
	return protowire.AppendBytes(dst, state)
}

// AppendKafkaListOffsetResp appends the body of a KafkaListOffsetResp to dst
// and returns the extended slice.
func AppendKafkaListOffsetResp(dst []byte, offset int64) []byte {
	if offset == 0 {
		return dst
	}
	dst = append(dst, tagByte(fieldListOffset, protowire.VarintType))
	return protowire.AppendVarint(dst, uint64(offset))
}

// KafkaMessageOverhead bounds the bytes AppendKafkaMessage adds around a
// message's key and value: the entry's tag and length, the offset and
// timestamp fields, and the tags and lengths of the key and value.
const KafkaMessageOverhead = 2 + 10 + 2*(1+10) + 2*(1+10)

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

// tagByte is the one-byte tag of a field numbered below 16: every field
// inside the response bodies.
func tagByte(num protowire.Number, typ protowire.Type) byte {
	return byte(num)<<3 | byte(typ)
}
