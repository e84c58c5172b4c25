package reactor

import (
	"github.com/gobwas/ws"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/kafkaedge/kafkaedge/kafkawire/record"
	"github.com/kafkaedge/kafkaedge/proto/pubsub"
	"github.com/kafkaedge/kafkaedge/wsframe"
)

// Field numbers inside the response bodies (PROTOCOL.md).
const (
	fieldErrorCode    protowire.Number = 1 // ErrorResp.code
	fieldErrorMessage protowire.Number = 2 // ErrorResp.message
	fieldPongState    protowire.Number = 1 // PongResp.state
	fieldListOffset   protowire.Number = 1 // KafkaListOffsetResp.offset
)

// appendRespHeaderFrame appends the WebSocket frame header and the
// PubSubResp header (sequence, oneof tag and length) of a response whose
// body of bodyLen bytes is written separately.
func appendRespHeaderFrame(dst []byte, seq int64, field protowire.Number, bodyLen int) []byte {
	var hb [32]byte
	h := pubsub.AppendRespHeader(hb[:0], seq, field, bodyLen)
	dst = wsframe.AppendHeader(dst, ws.OpBinary, len(h)+bodyLen)
	return append(dst, h...)
}

// appendResp appends one whole binary frame holding a PubSubResp.
func appendResp(dst []byte, seq int64, field protowire.Number, body []byte) []byte {
	dst = appendRespHeaderFrame(dst, seq, field, len(body))
	return append(dst, body...)
}

// appendErrorResp appends a frame holding an ErrorResp; scratch is reused
// for the body.
func appendErrorResp(dst []byte, scratch *[]byte, seq int64, code int32, msg string) []byte {
	b := (*scratch)[:0]
	if code != 0 {
		b = protowire.AppendTag(b, fieldErrorCode, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(int64(code)))
	}
	if msg != "" {
		b = protowire.AppendTag(b, fieldErrorMessage, protowire.BytesType)
		b = protowire.AppendString(b, msg)
	}
	*scratch = b
	return appendResp(dst, seq, pubsub.FieldErrorResp, b)
}

// appendPongBody appends a PongResp body.
func appendPongBody(dst []byte, state []byte) []byte {
	if len(state) == 0 {
		return dst
	}
	dst = protowire.AppendTag(dst, fieldPongState, protowire.BytesType)
	return protowire.AppendBytes(dst, state)
}

// appendListOffsetBody appends a KafkaListOffsetResp body.
func appendListOffsetBody(dst []byte, offset int64) []byte {
	if offset == 0 {
		return dst
	}
	dst = protowire.AppendTag(dst, fieldListOffset, protowire.VarintType)
	return protowire.AppendVarint(dst, uint64(offset))
}

// messageOverhead bounds the protobuf bytes around one message's key and
// value: two tags and lengths of the entry, offset and timestamp varints and
// the key and value tags and lengths.
const messageOverhead = 2 + 10 + 2*(1+10) + 2*(1+10)

// appendFetchBody appends a KafkaFetchResp body with the records at or after
// from, straight from the decoded records. It stops before a message that
// would take the body past limit (a client fetches the rest from the next
// offset), but always includes the first message.
func appendFetchBody(dst []byte, recs []record.Record, from int64, limit int) []byte {
	dst, _ = appendFetchMessages(dst, recs, from, limit)
	return dst
}

// appendFetchMessages is appendFetchBody that also returns the number of
// messages appended.
func appendFetchMessages(dst []byte, recs []record.Record, from int64, limit int) ([]byte, int) {
	size := 0
	for i := range recs {
		size += messageOverhead + len(recs[i].Key) + len(recs[i].Value)
		if size >= limit {
			break
		}
	}
	if need := len(dst) + min(size, limit); cap(dst) < need {
		nb := make([]byte, len(dst), need)
		copy(nb, dst)
		dst = nb
	}
	start := len(dst)
	n := 0
	for i := range recs {
		r := &recs[i]
		if r.Offset < from {
			continue
		}
		if len(dst) > start && len(dst)-start+messageOverhead+len(r.Key)+len(r.Value) > limit {
			break
		}
		dst = pubsub.AppendKafkaMessage(dst, r.Offset, r.Timestamp, r.Key, r.Value)
		n++
	}
	return dst, n
}
