package pubsub

import (
	"errors"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"
)

// Field numbers of the PubSubReq oneof `req`.
const (
	FieldCmdEmpty           protowire.Number = 31
	FieldCmdPing            protowire.Number = 32
	FieldCmdKafkaFetch      protowire.Number = 33
	FieldCmdKafkaListOffset protowire.Number = 34
)

// ErrMalformed is returned by ParseReq for bytes that are not a PubSubReq:
// the cases where proto.Unmarshal fails.
var ErrMalformed = errors.New("pubsub: malformed PubSubReq")

// Req is a PubSubReq decoded in place by ParseReq. Topic and State alias the
// bytes it was parsed from.
type Req struct {
	Sequence  int64
	Command   protowire.Number // the command set: a FieldCmd* number, 0 when none
	Topic     []byte           // CmdKafkaFetch.topic or CmdKafkaListOffset.topic (valid UTF-8)
	Partition int32            // CmdKafkaFetch.partition or CmdKafkaListOffset.partition
	Offset    int64            // CmdKafkaFetch.offset
	Timestamp int64            // CmdKafkaListOffset.timestamp
	State     []byte           // CmdPing.state
}

// ParseReq decodes b into r without allocating. It accepts exactly the bytes
// proto.Unmarshal accepts for a PubSubReq and yields the same values: unknown
// fields and fields of an unexpected wire type are skipped, the last value of
// a repeated scalar wins, a oneof member that appears twice is merged, a
// different one replaces it, and strings must be valid UTF-8.
func ParseReq(b []byte, r *Req) error {
	*r = Req{}
	for len(b) > 0 {
		num, typ, n := consumeTag(b)
		if n < 0 {
			return ErrMalformed
		}
		b = b[n:]
		switch {
		case num == 1 && typ == protowire.VarintType:
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return ErrMalformed
			}
			r.Sequence = int64(v)
			b = b[n:]
			continue
		case num >= FieldCmdEmpty && num <= FieldCmdKafkaListOffset && typ == protowire.BytesType:
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return ErrMalformed
			}
			if num != r.Command {
				seq := r.Sequence
				*r = Req{Sequence: seq, Command: num}
			}
			if err := r.parseCommand(v); err != nil {
				return err
			}
			b = b[n:]
			continue
		}
		if n = skip(num, typ, b); n < 0 {
			return ErrMalformed
		}
		b = b[n:]
	}
	return nil
}

// parseCommand merges the body of the command r.Command into r.
func (r *Req) parseCommand(b []byte) error {
	for len(b) > 0 {
		num, typ, n := consumeTag(b)
		if n < 0 {
			return ErrMalformed
		}
		b = b[n:]
		if r.Command == FieldCmdPing && num == 1 && typ == protowire.BytesType {
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return ErrMalformed
			}
			r.State = v
			b = b[n:]
			continue
		}
		if r.Command == FieldCmdKafkaFetch || r.Command == FieldCmdKafkaListOffset {
			switch {
			case num == 1 && typ == protowire.BytesType:
				v, n := protowire.ConsumeBytes(b)
				if n < 0 || !utf8.Valid(v) {
					return ErrMalformed
				}
				r.Topic = v
				b = b[n:]
				continue
			case (num == 2 || num == 3) && typ == protowire.VarintType:
				v, n := protowire.ConsumeVarint(b)
				if n < 0 {
					return ErrMalformed
				}
				switch {
				case num == 2:
					r.Partition = int32(v)
				case r.Command == FieldCmdKafkaFetch:
					r.Offset = int64(v)
				default:
					r.Timestamp = int64(v)
				}
				b = b[n:]
				continue
			}
		}
		if n = skip(num, typ, b); n < 0 {
			return ErrMalformed
		}
		b = b[n:]
	}
	return nil
}

// consumeTag is protowire.ConsumeTag with the field-number range that
// proto.Unmarshal enforces.
func consumeTag(b []byte) (protowire.Number, protowire.Type, int) {
	num, typ, n := protowire.ConsumeTag(b)
	if n < 0 || num > protowire.MaxValidNumber {
		return 0, 0, -1
	}
	return num, typ, n
}

// skip consumes an unknown field's value; an end-group tag with no group
// open is an error, as in proto.Unmarshal.
func skip(num protowire.Number, typ protowire.Type, b []byte) int {
	if typ == protowire.EndGroupType {
		return -1
	}
	return protowire.ConsumeFieldValue(num, typ, b)
}
