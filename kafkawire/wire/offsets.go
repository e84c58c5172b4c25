package wire

import "fmt"

// OffsetCommitRequest commits offsets of a group (OffsetCommit v2-v9; v9
// is the first a KIP-848 consumer may use, with the same fields as v8).
type OffsetCommitRequest struct {
	GroupID string
	// GenerationIDOrMemberEpoch is the generation of a classic group, the
	// member epoch of a KIP-848 consumer group, or -1 with an empty
	// MemberID to commit outside of group membership.
	GenerationIDOrMemberEpoch int32
	MemberID                  string
	GroupInstanceID           string // v7+; "" is sent as null
	RetentionTimeMillis       int64  // v2-v4; -1 for the broker's retention
	Topics                    []OffsetCommitTopic
}

// OffsetCommitTopic holds the partitions of one topic to commit.
type OffsetCommitTopic struct {
	Name       string
	Partitions []OffsetCommitPartition
}

// OffsetCommitPartition is the offset to commit for one partition.
// LeaderEpoch (CommittedLeaderEpoch, v6+) is -1 when unknown. Metadata is
// sent as a string, never null, as the Java client does.
type OffsetCommitPartition struct {
	Partition   int32
	Offset      int64
	LeaderEpoch int32
	Metadata    string
}

// Key returns KeyOffsetCommit.
func (*OffsetCommitRequest) Key() int16 { return KeyOffsetCommit }

// AppendTo appends the request body at version to dst.
func (r *OffsetCommitRequest) AppendTo(dst []byte, version int16) []byte {
	flex := version >= 8
	dst = appendStr(dst, r.GroupID, flex)
	dst = AppendInt32(dst, r.GenerationIDOrMemberEpoch)
	dst = appendStr(dst, r.MemberID, flex)
	if version >= 7 {
		dst = appendNstr(dst, r.GroupInstanceID, flex)
	}
	if version <= 4 {
		dst = AppendInt64(dst, r.RetentionTimeMillis)
	}
	dst = appendArrayLen(dst, len(r.Topics), flex)
	for i := range r.Topics {
		t := &r.Topics[i]
		dst = appendStr(dst, t.Name, flex)
		dst = appendArrayLen(dst, len(t.Partitions), flex)
		for _, p := range t.Partitions {
			dst = AppendInt32(dst, p.Partition)
			dst = AppendInt64(dst, p.Offset)
			if version >= 6 {
				dst = AppendInt32(dst, p.LeaderEpoch)
			}
			dst = appendStr(dst, p.Metadata, flex)
			dst = appendTags(dst, flex)
		}
		dst = appendTags(dst, flex)
	}
	return appendTags(dst, flex)
}

// OffsetCommitResponse is a broker's answer to OffsetCommitRequest.
type OffsetCommitResponse struct {
	Topics []OffsetCommitTopicResponse
}

// OffsetCommitTopicResponse holds the answers for one topic.
type OffsetCommitTopicResponse struct {
	Name       string
	Partitions []OffsetCommitPartitionResponse
}

// OffsetCommitPartitionResponse is the answer for one partition.
type OffsetCommitPartitionResponse struct {
	Partition int32
	ErrorCode int16
}

// Decode decodes a response body at version into r.
func (r *OffsetCommitResponse) Decode(body []byte, version int16) error {
	if err := checkVersion(KeyOffsetCommit, version); err != nil {
		return fmt.Errorf("decode offset commit response: %w", err)
	}
	*r = OffsetCommitResponse{}
	flex := version >= 8
	rd := Reader{Src: body}
	if version >= 3 {
		rd.Int32() // ThrottleMillis
	}
	if n := rd.arrayLen(flex, 3); n >= 0 { // v8: empty name, empty partitions, tags
		r.Topics = make([]OffsetCommitTopicResponse, 0, n)
		for i := 0; i < n && rd.err == nil; i++ {
			t := OffsetCommitTopicResponse{Name: rd.str(flex)}
			if n := rd.arrayLen(flex, 6); n >= 0 { // partition, error
				t.Partitions = make([]OffsetCommitPartitionResponse, 0, n)
				for j := 0; j < n && rd.err == nil; j++ {
					t.Partitions = append(t.Partitions, OffsetCommitPartitionResponse{Partition: rd.Int32(), ErrorCode: rd.Int16()})
					rd.tags(flex)
				}
			}
			rd.tags(flex)
			r.Topics = append(r.Topics, t)
		}
	}
	rd.tags(flex)
	if err := rd.Complete(); err != nil {
		return fmt.Errorf("decode offset commit response v%d: %w", version, err)
	}
	return nil
}

// OffsetFetchRequest asks for the committed offsets of groups (OffsetFetch
// v1-v9). From v8 one request carries several groups; below v8 only
// Groups[0] is sent (an empty Groups sends an empty group ID), so a caller
// sends one request per group.
type OffsetFetchRequest struct {
	Groups        []OffsetFetchGroup
	RequireStable bool // v7+
}

// OffsetFetchGroup names a group and the partitions to fetch its offsets
// for. MemberID and MemberEpoch (v9+) identify a KIP-848 consumer group
// member; a classic consumer leaves MemberID "" (sent as null) and sets
// MemberEpoch to -1.
type OffsetFetchGroup struct {
	GroupID     string
	MemberID    string
	MemberEpoch int32
	// Topics to fetch; nil asks for every topic of the group (v2+; at v1
	// it is sent as an empty list).
	Topics []OffsetFetchTopic
}

// OffsetFetchTopic holds the partitions of one topic to fetch.
type OffsetFetchTopic struct {
	Name       string
	Partitions []int32
}

// Key returns KeyOffsetFetch.
func (*OffsetFetchRequest) Key() int16 { return KeyOffsetFetch }

// AppendTo appends the request body at version to dst.
func (r *OffsetFetchRequest) AppendTo(dst []byte, version int16) []byte {
	flex := version >= 6
	if version <= 7 {
		var g OffsetFetchGroup
		if len(r.Groups) > 0 {
			g = r.Groups[0]
		}
		dst = appendStr(dst, g.GroupID, flex)
		dst = appendOffsetFetchTopics(dst, g.Topics, version >= 2, flex)
	} else {
		dst = appendArrayLen(dst, len(r.Groups), flex)
		for i := range r.Groups {
			g := &r.Groups[i]
			dst = appendStr(dst, g.GroupID, flex)
			if version >= 9 {
				dst = appendNstr(dst, g.MemberID, flex)
				dst = AppendInt32(dst, g.MemberEpoch)
			}
			dst = appendOffsetFetchTopics(dst, g.Topics, true, flex)
			dst = appendTags(dst, flex)
		}
	}
	if version >= 7 {
		dst = AppendBool(dst, r.RequireStable)
	}
	return appendTags(dst, flex)
}

// appendOffsetFetchTopics appends topics, nil as the null array if nullable.
func appendOffsetFetchTopics(dst []byte, topics []OffsetFetchTopic, nullable, flex bool) []byte {
	if topics == nil && nullable {
		return appendArrayLen(dst, -1, flex)
	}
	dst = appendArrayLen(dst, len(topics), flex)
	for i := range topics {
		dst = appendStr(dst, topics[i].Name, flex)
		dst = appendInt32s(dst, topics[i].Partitions, flex)
		dst = appendTags(dst, flex)
	}
	return dst
}

// OffsetFetchResponse is a broker's answer to OffsetFetchRequest. Below v8
// Groups holds exactly one group, the one requested, with an empty GroupID.
type OffsetFetchResponse struct {
	Groups []OffsetFetchGroupResponse
}

// OffsetFetchGroupResponse holds the offsets of one group. ErrorCode is the
// group-level error (v2+).
type OffsetFetchGroupResponse struct {
	GroupID   string
	ErrorCode int16
	Topics    []OffsetFetchTopicResponse
}

// OffsetFetchTopicResponse holds the offsets of one topic.
type OffsetFetchTopicResponse struct {
	Name       string
	Partitions []OffsetFetchPartitionResponse
}

// OffsetFetchPartitionResponse is the committed offset of one partition
// (-1 if none); LeaderEpoch is -1 before v5, Metadata "" when null.
type OffsetFetchPartitionResponse struct {
	Partition   int32
	Offset      int64
	LeaderEpoch int32
	Metadata    string
	ErrorCode   int16
}

// Decode decodes a response body at version into r.
func (r *OffsetFetchResponse) Decode(body []byte, version int16) error {
	if err := checkVersion(KeyOffsetFetch, version); err != nil {
		return fmt.Errorf("decode offset fetch response: %w", err)
	}
	*r = OffsetFetchResponse{}
	flex := version >= 6
	rd := Reader{Src: body}
	if version >= 3 {
		rd.Int32() // ThrottleMillis
	}
	if version <= 7 {
		g := OffsetFetchGroupResponse{Topics: decodeOffsetFetchTopics(&rd, version, flex)}
		if version >= 2 {
			g.ErrorCode = rd.Int16()
		}
		r.Groups = []OffsetFetchGroupResponse{g}
	} else if n := rd.arrayLen(flex, 5); n >= 0 { // empty name, empty topics, error, tags
		r.Groups = make([]OffsetFetchGroupResponse, 0, n)
		for i := 0; i < n && rd.err == nil; i++ {
			g := OffsetFetchGroupResponse{GroupID: rd.str(flex)}
			g.Topics = decodeOffsetFetchTopics(&rd, version, flex)
			g.ErrorCode = rd.Int16()
			rd.tags(flex)
			r.Groups = append(r.Groups, g)
		}
	}
	rd.tags(flex)
	if err := rd.Complete(); err != nil {
		return fmt.Errorf("decode offset fetch response v%d: %w", version, err)
	}
	return nil
}

func decodeOffsetFetchTopics(rd *Reader, version int16, flex bool) []OffsetFetchTopicResponse {
	n := rd.arrayLen(flex, 3) // v6: empty name, empty partitions, tags
	if n < 0 {
		return nil
	}
	topics := make([]OffsetFetchTopicResponse, 0, n)
	for i := 0; i < n && rd.err == nil; i++ {
		t := OffsetFetchTopicResponse{Name: rd.str(flex)}
		if n := rd.arrayLen(flex, 16); n >= 0 { // v1: partition, offset, null metadata, error
			t.Partitions = make([]OffsetFetchPartitionResponse, 0, n)
			for j := 0; j < n && rd.err == nil; j++ {
				p := OffsetFetchPartitionResponse{Partition: rd.Int32(), Offset: rd.Int64(), LeaderEpoch: -1}
				if version >= 5 {
					p.LeaderEpoch = rd.Int32()
				}
				p.Metadata = rd.nstr(flex)
				p.ErrorCode = rd.Int16()
				rd.tags(flex)
				t.Partitions = append(t.Partitions, p)
			}
		}
		rd.tags(flex)
		topics = append(topics, t)
	}
	return topics
}
