package wire

import "fmt"

// ConsumerProtocolMaxVersion is the highest version of ConsumerSubscription
// and ConsumerAssignment this package knows.
const ConsumerProtocolMaxVersion int16 = 3

// ConsumerSubscription is the protocol metadata a member of a classic group
// with protocol type "consumer" sends in JoinGroupProtocol.Metadata, and the
// leader reads in JoinGroupMember.Metadata (Java's
// ConsumerProtocolSubscription v0-v3, in the same encoding: the version
// int16 first, then the fields of that version).
type ConsumerSubscription struct {
	Version         int16
	Topics          []string
	UserData        []byte                    // nil is null
	OwnedPartitions []ConsumerTopicPartitions // v1+
	GenerationID    int32                     // v2+; -1 when unknown
	RackID          string                    // v3+; "" is null
}

// ConsumerAssignment is the assignment the leader of a classic group with
// protocol type "consumer" sends each member in SyncGroupAssignment, and the
// member reads in SyncGroupResponse.Assignment (Java's
// ConsumerProtocolAssignment v0-v3, whose versions all have the same fields,
// encoded the same way as ConsumerSubscription).
type ConsumerAssignment struct {
	Version            int16
	AssignedPartitions []ConsumerTopicPartitions
	UserData           []byte // nil is null
}

// ConsumerTopicPartitions holds partitions of one topic.
type ConsumerTopicPartitions struct {
	Topic      string
	Partitions []int32
}

// AppendTo appends s to dst. A Version above ConsumerProtocolMaxVersion is
// written as ConsumerProtocolMaxVersion, as Java does.
func (s *ConsumerSubscription) AppendTo(dst []byte) []byte {
	v := min(s.Version, ConsumerProtocolMaxVersion)
	dst = AppendInt16(dst, v)
	dst = AppendArrayLen(dst, len(s.Topics))
	for _, t := range s.Topics {
		dst = AppendString(dst, t)
	}
	dst = AppendBytes(dst, s.UserData)
	if v >= 1 {
		dst = appendConsumerTopicPartitions(dst, s.OwnedPartitions)
	}
	if v >= 2 {
		dst = AppendInt32(dst, s.GenerationID)
	}
	if v >= 3 {
		dst = appendNstr(dst, s.RackID, false)
	}
	return dst
}

// Decode decodes b into s. As Java does, a version above
// ConsumerProtocolMaxVersion is read with the fields of
// ConsumerProtocolMaxVersion (a newer version may only add fields at the
// end), bytes after the fields are ignored, and a negative version is an
// error. s.Version is the version b holds; s.UserData aliases b.
func (s *ConsumerSubscription) Decode(b []byte) error {
	*s = ConsumerSubscription{GenerationID: -1}
	rd := Reader{Src: b}
	s.Version = readConsumerProtocolVersion(&rd)
	v := min(s.Version, ConsumerProtocolMaxVersion)
	s.Topics = rd.strings(false)
	s.UserData = rd.Bytes()
	if v >= 1 {
		s.OwnedPartitions = decodeConsumerTopicPartitions(&rd)
	}
	if v >= 2 {
		s.GenerationID = rd.Int32()
	}
	if v >= 3 {
		s.RackID = rd.NullableString()
	}
	if err := rd.Err(); err != nil {
		return fmt.Errorf("decode consumer subscription v%d: %w", s.Version, err)
	}
	return nil
}

// AppendTo appends a to dst. A Version above ConsumerProtocolMaxVersion is
// written as ConsumerProtocolMaxVersion, as Java does.
func (a *ConsumerAssignment) AppendTo(dst []byte) []byte {
	dst = AppendInt16(dst, min(a.Version, ConsumerProtocolMaxVersion))
	dst = appendConsumerTopicPartitions(dst, a.AssignedPartitions)
	return AppendBytes(dst, a.UserData)
}

// Decode decodes b into a the way ConsumerSubscription.Decode does: bytes
// after the fields are ignored, a negative version is an error.
// a.UserData aliases b.
func (a *ConsumerAssignment) Decode(b []byte) error {
	*a = ConsumerAssignment{}
	rd := Reader{Src: b}
	a.Version = readConsumerProtocolVersion(&rd)
	a.AssignedPartitions = decodeConsumerTopicPartitions(&rd)
	a.UserData = rd.Bytes()
	if err := rd.Err(); err != nil {
		return fmt.Errorf("decode consumer assignment v%d: %w", a.Version, err)
	}
	return nil
}

func readConsumerProtocolVersion(rd *Reader) int16 {
	v := rd.Int16()
	if v < 0 {
		rd.fail(fmt.Sprintf("version %d", v), ErrInvalid)
	}
	return v
}

func appendConsumerTopicPartitions(dst []byte, tps []ConsumerTopicPartitions) []byte {
	dst = AppendArrayLen(dst, len(tps))
	for _, tp := range tps {
		dst = AppendString(dst, tp.Topic)
		dst = appendInt32s(dst, tp.Partitions, false)
	}
	return dst
}

func decodeConsumerTopicPartitions(rd *Reader) []ConsumerTopicPartitions {
	n := rd.arrayLen(false, 6) // empty topic, empty partitions
	if n < 0 {
		return nil
	}
	tps := make([]ConsumerTopicPartitions, 0, n)
	for i := 0; i < n && rd.err == nil; i++ {
		tps = append(tps, ConsumerTopicPartitions{Topic: rd.String(), Partitions: rd.int32s(false)})
	}
	return tps
}
