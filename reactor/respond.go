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
// after from, with their headers if asked, and returns it with the number
// of messages appended and the offset after the last of them (from if
// none). It stops before a message that would take the body past limit
// (the client fetches the rest from the next offset), but always includes
// the first message.
func appendFetchBody(dst []byte, recs []record.Record, from int64, limit int, headers bool) ([]byte, int, int64) {
	return appendMessages(dst, pubsub.FieldFetchRespMessages, recs, from, limit, headers)
}

// appendMessages is appendFetchBody for the KafkaMessage entries of field
// (pubsub.FieldFetchRespMessages or FieldRecordsMessages).
func appendMessages(dst []byte, field protowire.Number, recs []record.Record, from int64, limit int, headers bool) ([]byte, int, int64) {
	size := 0
	for i := range recs {
		size += messageSize(&recs[i], headers)
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
	n, next := 0, from
	for i := range recs {
		r := &recs[i]
		if r.Offset < from {
			continue
		}
		size := messageSize(r, headers)
		if len(dst) > start && len(dst)-start+size > limit {
			break
		}
		if headers && len(r.Headers) > 0 {
			hl := 0
			for _, h := range r.Headers {
				hl += pubsub.KafkaHeaderSize(h.Key, h.Value)
			}
			dst = pubsub.AppendKafkaMessageHead(dst, field, r.Offset, r.Timestamp, r.Key, r.Value, hl)
			for _, h := range r.Headers {
				dst = pubsub.AppendKafkaHeader(dst, h.Key, h.Value)
			}
		} else {
			dst = pubsub.AppendKafkaMessageHead(dst, field, r.Offset, r.Timestamp, r.Key, r.Value, 0)
		}
		n++
		next = r.Offset + 1
	}
	return dst, n, next
}

// messageSize bounds the encoded size of r as a KafkaMessage entry.
func messageSize(r *record.Record, headers bool) int {
	n := pubsub.KafkaMessageOverhead + len(r.Key) + len(r.Value)
	if headers {
		for _, h := range r.Headers {
			n += pubsub.KafkaHeaderSize(h.Key, h.Value)
		}
	}
	return n
}

// kafkaError returns the ErrorResp code (the Kafka error code, 0 if none)
// and the <reason> of docs/protocol.md for a failed Kafka call: "not found
// partition" for an unknown partition of a known topic, "not found topic"
// for an unknown topic, else the Kafka error name, else "timeout", "client
// closed" or "broker unreachable", else "unknown error". hidden reports a
// reason that leaves out what the node's log should tell: the addresses
// and causes of a transport failure never reach a client.
func kafkaError(err error) (code int32, reason string, hidden bool) {
	var ke *kafkawire.Error
	if !errors.As(err, &ke) {
		return 0, pubsub.ReasonUnknown, true
	}
	code = int32(ke.Code)
	switch {
	case errors.Is(ke.Err, kafkawire.ErrUnknownPartition):
		return code, pubsub.ReasonNotFoundPartition, false
	case errors.Is(ke.Err, kafkawire.ErrUnknownTopic) || ke.Code == wire.ErrUnknownTopicOrPartition:
		return code, pubsub.ReasonNotFoundTopic, false
	case ke.Code != 0:
		return code, wire.ErrorName(ke.Code), false
	case errors.Is(ke.Err, kafkawire.ErrTimeout):
		return code, pubsub.ReasonTimeout, false
	case errors.Is(ke.Err, kafkawire.ErrClosed):
		return code, pubsub.ReasonClientClosed, false
	case errors.Is(ke.Err, kafkawire.ErrBrokerUnreachable):
		return code, pubsub.ReasonBrokerUnreachable, true
	}
	return code, pubsub.ReasonUnknown, true
}

// kafkaFailure is kafkaError for the call k, logging what the client is
// not told. Called on a Kafka goroutine, never on a loop.
func (s *Server) kafkaFailure(k callKey, err error) (code int32, reason string) {
	code, reason, hidden := kafkaError(err)
	if hidden {
		s.log.Warn("kafka call failed", "topic", k.topic, "partition", k.partition, "reason", reason, "err", err)
	}
	return code, reason
}
