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
	// FieldKafkaSubscribeResp is the PubSubResp field number of kafka_subscribe_resp.
	FieldKafkaSubscribeResp protowire.Number = 40
	// FieldKafkaRecords is the PubSubResp field number of kafka_records.
	FieldKafkaRecords protowire.Number = 41
	// FieldKafkaAssignmentResp is the PubSubResp field number of kafka_assignment_resp.
	FieldKafkaAssignmentResp protowire.Number = 42
	// FieldKafkaSubscriptionEndResp is the PubSubResp field number of kafka_subscription_end_resp.
	FieldKafkaSubscriptionEndResp protowire.Number = 43
	// FieldKafkaCommitResp is the PubSubResp field number of kafka_commit_resp.
	FieldKafkaCommitResp protowire.Number = 44
	// FieldKafkaCommittedResp is the PubSubResp field number of kafka_committed_resp.
	FieldKafkaCommittedResp protowire.Number = 45
	// FieldKafkaProduceResp is the PubSubResp field number of kafka_produce_resp.
	FieldKafkaProduceResp protowire.Number = 46
	// FieldKafkaFetchManyResp is the PubSubResp field number of kafka_fetch_many_resp.
	FieldKafkaFetchManyResp protowire.Number = 47
	// FieldKafkaMetadataResp is the PubSubResp field number of kafka_metadata_resp.
	FieldKafkaMetadataResp protowire.Number = 48
)

// Field numbers inside the responses (TestFieldNumbers holds them to the
// generated descriptors).
const (
	fieldSequence         protowire.Number = 1 // PubSubResp.sequence
	fieldErrorCode        protowire.Number = 1 // ErrorResp.code
	fieldErrorMessage     protowire.Number = 2 // ErrorResp.message
	fieldPongState        protowire.Number = 1 // PongResp.state
	fieldListOffset       protowire.Number = 1 // KafkaListOffsetResp.offset
	fieldMessageOffset    protowire.Number = 1 // KafkaMessage.offset
	fieldMessageTimestamp protowire.Number = 2 // KafkaMessage.timestamp
	fieldMessageKey       protowire.Number = 3 // KafkaMessage.key
	fieldMessageValue     protowire.Number = 4 // KafkaMessage.value

	fieldMessageHeaders     protowire.Number = 16 // KafkaMessage.headers
	fieldHeaderKey          protowire.Number = 1  // KafkaHeader.key
	fieldHeaderValue        protowire.Number = 2  // KafkaHeader.value
	fieldFetchHighWatermark protowire.Number = 16 // KafkaFetchResp.high_watermark
	fieldFetchNextOffset    protowire.Number = 17 // KafkaFetchResp.next_offset
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
	return AppendKafkaMessageHead(dst, FieldFetchRespMessages, offset, timestamp, key, value, 0)
}

// Fields that hold KafkaMessage entries, for AppendKafkaMessageHead.
const (
	FieldFetchRespMessages protowire.Number = 1 // KafkaFetchResp.messages
	FieldRecordsMessages   protowire.Number = 3 // KafkaPartitionRecords.messages
)

// AppendKafkaMessageHead is AppendKafkaMessage for the messages of field
// (FieldFetchRespMessages or FieldRecordsMessages) and a message with
// headers: headersLen is the size of the KafkaHeader entries
// (KafkaHeaderSize each) that the caller appends right after, with
// AppendKafkaHeader.
func AppendKafkaMessageHead(dst []byte, field protowire.Number, offset, timestamp int64, key, value []byte, headersLen int) []byte {
	n := headersLen
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
	dst = append(dst, tagByte(field, protowire.BytesType))
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

// Tags of kafkaedge's fields (numbers 16 and up take two bytes).
var (
	tagMessageHeaders = protowire.AppendTag(nil, fieldMessageHeaders, protowire.BytesType)
	tagFetchHWM       = protowire.AppendTag(nil, fieldFetchHighWatermark, protowire.VarintType)
	tagFetchNext      = protowire.AppendTag(nil, fieldFetchNextOffset, protowire.VarintType)
)

// KafkaHeaderSize is the size of the KafkaMessage.headers entry that
// AppendKafkaHeader appends for key and value.
func KafkaHeaderSize(key string, value []byte) int {
	n := headerBodySize(key, value)
	return len(tagMessageHeaders) + protowire.SizeVarint(uint64(n)) + n
}

func headerBodySize(key string, value []byte) int {
	n := 0
	if key != "" {
		n += 1 + protowire.SizeBytes(len(key))
	}
	if len(value) > 0 {
		n += 1 + protowire.SizeBytes(len(value))
	}
	return n
}

// AppendKafkaHeader appends one entry of KafkaMessage.headers (field 16).
func AppendKafkaHeader(dst []byte, key string, value []byte) []byte {
	dst = append(dst, tagMessageHeaders...)
	dst = protowire.AppendVarint(dst, uint64(headerBodySize(key, value)))
	if key != "" {
		dst = append(dst, tagByte(fieldHeaderKey, protowire.BytesType))
		dst = protowire.AppendString(dst, key)
	}
	if len(value) > 0 {
		dst = append(dst, tagByte(fieldHeaderValue, protowire.BytesType))
		dst = protowire.AppendBytes(dst, value)
	}
	return dst
}

// AppendKafkaFetchRespPositions appends KafkaFetchResp's high_watermark and
// next_offset (fields 16 and 17, omitted when 0), after its messages.
func AppendKafkaFetchRespPositions(dst []byte, highWatermark, nextOffset int64) []byte {
	if highWatermark != 0 {
		dst = append(dst, tagFetchHWM...)
		dst = protowire.AppendVarint(dst, uint64(highWatermark))
	}
	if nextOffset != 0 {
		dst = append(dst, tagFetchNext...)
		dst = protowire.AppendVarint(dst, uint64(nextOffset))
	}
	return dst
}

// Fields of KafkaPartitionRecords and KafkaFetchManyResp.
const (
	fieldRecordsTopic     protowire.Number = 1
	fieldRecordsPartition protowire.Number = 2
	fieldRecordsHWM       protowire.Number = 4
	fieldRecordsNext      protowire.Number = 5
	fieldRecordsError     protowire.Number = 6
	fieldFetchManyEntries protowire.Number = 1 // KafkaFetchManyResp.partitions
)

// AppendKafkaPartitionRecords appends the body of a KafkaPartitionRecords:
// messages are its entries as AppendKafkaMessageHead appended them with
// FieldRecordsMessages; errMessage, when not empty, makes the error field
// (code errCode).
func AppendKafkaPartitionRecords(dst []byte, topic string, partition int32, messages []byte,
	highWatermark, nextOffset int64, errCode int32, errMessage string) []byte {
	if topic != "" {
		dst = append(dst, tagByte(fieldRecordsTopic, protowire.BytesType))
		dst = protowire.AppendString(dst, topic)
	}
	if partition != 0 {
		dst = append(dst, tagByte(fieldRecordsPartition, protowire.VarintType))
		dst = protowire.AppendVarint(dst, uint64(int64(partition)))
	}
	dst = append(dst, messages...)
	if highWatermark != 0 {
		dst = append(dst, tagByte(fieldRecordsHWM, protowire.VarintType))
		dst = protowire.AppendVarint(dst, uint64(highWatermark))
	}
	if nextOffset != 0 {
		dst = append(dst, tagByte(fieldRecordsNext, protowire.VarintType))
		dst = protowire.AppendVarint(dst, uint64(nextOffset))
	}
	if errMessage != "" || errCode != 0 {
		dst = append(dst, tagByte(fieldRecordsError, protowire.BytesType))
		dst = protowire.AppendVarint(dst, uint64(errorRespSize(errCode, errMessage)))
		dst = AppendErrorResp(dst, errCode, errMessage)
	}
	return dst
}

// errorRespSize is the size of the ErrorResp body AppendErrorResp appends.
func errorRespSize(code int32, message string) int {
	n := 0
	if code != 0 {
		n += 1 + protowire.SizeVarint(uint64(int64(code)))
	}
	if message != "" {
		n += 1 + protowire.SizeBytes(len(message))
	}
	return n
}

// AppendKafkaFetchManyEntry appends one entry of KafkaFetchManyResp.partitions
// holding the KafkaPartitionRecords body records.
func AppendKafkaFetchManyEntry(dst, records []byte) []byte {
	dst = append(dst, tagByte(fieldFetchManyEntries, protowire.BytesType))
	return protowire.AppendBytes(dst, records)
}

// tagByte is the one-byte tag of a field numbered below 16: every field
// inside the response bodies.
func tagByte(num protowire.Number, typ protowire.Type) byte {
	return byte(num)<<3 | byte(typ)
}
