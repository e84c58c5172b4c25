package pubsub

import (
	"errors"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// Field numbers of the PubSubReq oneof `req`.
const (
	FieldCmdEmpty           protowire.Number = 31
	FieldCmdPing            protowire.Number = 32
	FieldCmdKafkaFetch      protowire.Number = 33
	FieldCmdKafkaListOffset protowire.Number = 34

	// kafkaedge's commands (EXTENSIONS.md): ParseReq decodes them with
	// proto.Unmarshal into Req.Ext.
	FieldCmdKafkaSubscribe   protowire.Number = 40
	FieldCmdKafkaUnsubscribe protowire.Number = 41
	FieldCmdKafkaCommit      protowire.Number = 42
	FieldCmdKafkaCommitted   protowire.Number = 43
	FieldCmdKafkaProduce     protowire.Number = 44
	FieldCmdKafkaFetchMany   protowire.Number = 45
	FieldCmdKafkaMetadata    protowire.Number = 46
)

// isCommand reports whether num is a member of the oneof req.
func isCommand(num protowire.Number) bool {
	return num >= FieldCmdEmpty && num <= FieldCmdKafkaListOffset ||
		num >= FieldCmdKafkaSubscribe && num <= FieldCmdKafkaMetadata
}

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

	// kafkaedge's fields of CmdKafkaFetch (numbers 16 and up).
	MaxWaitMs, MinBytes, MaxBytes int32
	Headers                       bool

	// Ext is the decoded command of kafkaedge's commands
	// (FieldCmdKafkaSubscribe and up): a *CmdKafkaSubscribe, ... Unlike the
	// other fields it is allocated and owns its bytes.
	Ext proto.Message
}

// Extended reports whether a CmdKafkaFetch set one of kafkaedge's fields, so
// that its answer carries kafkaedge's fields too.
func (r *Req) Extended() bool {
	return r.MaxWaitMs != 0 || r.MinBytes != 0 || r.MaxBytes != 0 || r.Headers
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
		case isCommand(num) && typ == protowire.BytesType:
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return ErrMalformed
			}
			again := num == r.Command
			if !again {
				seq := r.Sequence
				*r = Req{Sequence: seq, Command: num}
			}
			if num >= FieldCmdKafkaSubscribe {
				if !again {
					r.Ext = newCommand(num)
				}
				// A member that appears again is merged, as proto.Unmarshal does.
				if err := (proto.UnmarshalOptions{Merge: true}).Unmarshal(v, r.Ext); err != nil {
					return ErrMalformed
				}
			} else if err := r.parseCommand(v); err != nil {
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
			case r.Command == FieldCmdKafkaFetch && num >= 16 && num <= 19 && typ == protowire.VarintType:
				v, n := protowire.ConsumeVarint(b)
				if n < 0 {
					return ErrMalformed
				}
				switch num {
				case 16:
					r.MaxWaitMs = int32(v)
				case 17:
					r.MinBytes = int32(v)
				case 18:
					r.MaxBytes = int32(v)
				default:
					r.Headers = v != 0
				}
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

// newCommand returns an empty message of kafkaedge's command num.
func newCommand(num protowire.Number) proto.Message {
	switch num {
	case FieldCmdKafkaSubscribe:
		return new(CmdKafkaSubscribe)
	case FieldCmdKafkaUnsubscribe:
		return new(CmdKafkaUnsubscribe)
	case FieldCmdKafkaCommit:
		return new(CmdKafkaCommit)
	case FieldCmdKafkaCommitted:
		return new(CmdKafkaCommitted)
	case FieldCmdKafkaProduce:
		return new(CmdKafkaProduce)
	case FieldCmdKafkaFetchMany:
		return new(CmdKafkaFetchMany)
	}
	return new(CmdKafkaMetadata)
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
