package reactor

import (
	"errors"

	"github.com/gobwas/ws"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/kafkaedge/kafkaedge/kafkawire"
	"github.com/kafkaedge/kafkaedge/kafkawire/record"
	"github.com/kafkaedge/kafkaedge/kafkawire/wire"
	"github.com/kafkaedge/kafkaedge/proto/pubsub"
	"github.com/kafkaedge/kafkaedge/wsframe"
)

// This file is the reactor's side of the client protocol: it puts the
// responses that proto/pubsub encodes into WebSocket frames, chooses the
// records of a fetch answer, and turns kafkawire's failures into the error
// texts of docs/protocol.md.

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
	*scratch = pubsub.AppendErrorResp((*scratch)[:0], code, msg)
	return appendResp(dst, seq, pubsub.FieldErrorResp, *scratch)
}

// appendFetchBody appends a KafkaFetchResp body with the records at or
// after from and returns it with the number of messages appended. It stops
// before a message that would take the body past limit (the client fetches
// the rest from the next offset), but always includes the first message.
func appendFetchBody(dst []byte, recs []record.Record, from int64, limit int) ([]byte, int) {
	size := 0
	for i := range recs {
		size += pubsub.KafkaMessageOverhead + len(recs[i].Key) + len(recs[i].Value)
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
		if len(dst) > start && len(dst)-start+pubsub.KafkaMessageOverhead+len(r.Key)+len(r.Value) > limit {
			break
		}
		dst = pubsub.AppendKafkaMessage(dst, r.Offset, r.Timestamp, r.Key, r.Value)
		n++
	}
	return dst, n
}

// kafkaError returns the ErrorResp code (the Kafka error code, 0 if none)
// and the <reason> of docs/protocol.md for a failed Kafka call: "not found
// topic" for an unknown topic or partition, else the Kafka error name, else
// "timeout" or "client closed", else the text of the failure.
func kafkaError(err error) (code int32, reason string) {
	var ke *kafkawire.Error
	if !errors.As(err, &ke) {
		return 0, err.Error()
	}
	code = int32(ke.Code)
	switch {
	case errors.Is(ke.Err, kafkawire.ErrUnknownTopic) || ke.Code == wire.ErrUnknownTopicOrPartition:
		return code, pubsub.ReasonNotFoundTopic
	case ke.Code != 0:
		return code, wire.ErrorName(ke.Code)
	case errors.Is(ke.Err, kafkawire.ErrTimeout):
		return code, pubsub.ReasonTimeout
	case errors.Is(ke.Err, kafkawire.ErrClosed):
		return code, pubsub.ReasonClientClosed
	case ke.Err != nil:
		return code, ke.Err.Error()
	}
	return code, pubsub.ReasonUnknown
}
