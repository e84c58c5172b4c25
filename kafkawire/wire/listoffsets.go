package wire

import "fmt"

// ListOffsetsRequest asks for the offset of a timestamp in partitions
// (ListOffsets v1-v9; v7, v8 and v9 differ from v6 only in the special
// timestamps a broker knows). Consumers set ReplicaID to -1.
type ListOffsetsRequest struct {
	ReplicaID      int32
	IsolationLevel int8 // v2+: 0 read_uncommitted, 1 read_committed
	Topics         []ListOffsetsTopic
}

// ListOffsetsTopic holds the partitions of one topic to look up.
type ListOffsetsTopic struct {
	Name       string
	Partitions []ListOffsetsPartition
}

// ListOffsetsPartition is one partition to look up. Timestamp is a time in
// milliseconds or one of the special timestamps (TimestampLatest, ...);
// CurrentLeaderEpoch (v4+) is -1 when unknown.
type ListOffsetsPartition struct {
	Partition, CurrentLeaderEpoch int32
	Timestamp                     int64
}

// Special timestamps of ListOffsets, and the version that gave each its
// meaning.
const (
	TimestampLatest        int64 = -1 // the high watermark (the last stable offset with read_committed)
	TimestampEarliest      int64 = -2 // the log start offset
	TimestampMax           int64 = -3 // v7+ (KIP-734): the record with the largest timestamp
	TimestampEarliestLocal int64 = -4 // v8+ (KIP-405): the log start offset of the local log
	TimestampLatestTiered  int64 = -5 // v9+ (KIP-1005): the last offset in tiered storage
)

// ListOffsetsMinVersion returns the lowest ListOffsets version at which a
// broker knows timestamp, and false for a negative timestamp that no
// version we implement knows (-6, KIP-1023, needs v11). Kafka answers a
// negative timestamp it does not know, or one sent below its version,
// UNSUPPORTED_VERSION (ReplicaManager.timestampMinSupportedVersion); a
// broker older than the version would take it for a time to search for.
func ListOffsetsMinVersion(timestamp int64) (int16, bool) {
	switch timestamp {
	case TimestampMax:
		return 7, true
	case TimestampEarliestLocal:
		return 8, true
	case TimestampLatestTiered:
		return 9, true
	}
	return Implemented[KeyListOffsets].Min, timestamp >= TimestampEarliest
}

// Key returns KeyListOffsets.
func (*ListOffsetsRequest) Key() int16 { return KeyListOffsets }

// AppendTo appends the request body at version to dst.
func (r *ListOffsetsRequest) AppendTo(dst []byte, version int16) []byte {
	flex := version >= 6
	dst = AppendInt32(dst, r.ReplicaID)
	if version >= 2 {
		dst = AppendInt8(dst, r.IsolationLevel)
	}
	dst = appendArrayLen(dst, len(r.Topics), flex)
	for i := range r.Topics {
		t := &r.Topics[i]
		dst = appendStr(dst, t.Name, flex)
		dst = appendArrayLen(dst, len(t.Partitions), flex)
		for _, p := range t.Partitions {
			dst = AppendInt32(dst, p.Partition)
			if version >= 4 {
				dst = AppendInt32(dst, p.CurrentLeaderEpoch)
			}
			dst = AppendInt64(dst, p.Timestamp)
			dst = appendTags(dst, flex)
		}
		dst = appendTags(dst, flex)
	}
	return appendTags(dst, flex)
}

// ListOffsetsResponse is a broker's answer to ListOffsetsRequest.
type ListOffsetsResponse struct {
	Topics []ListOffsetsTopicResponse
}

// ListOffsetsTopicResponse holds the answers for one topic.
type ListOffsetsTopicResponse struct {
	Name       string
	Partitions []ListOffsetsPartitionResponse
}

// ListOffsetsPartitionResponse is the answer for one partition; LeaderEpoch
// is -1 before v4.
type ListOffsetsPartitionResponse struct {
	Partition         int32
	ErrorCode         int16
	Timestamp, Offset int64
	LeaderEpoch       int32
}

// Decode decodes a response body at version into r.
func (r *ListOffsetsResponse) Decode(body []byte, version int16) error {
	if err := checkVersion(KeyListOffsets, version); err != nil {
		return fmt.Errorf("decode list offsets response: %w", err)
	}
	*r = ListOffsetsResponse{}
	flex := version >= 6
	rd := Reader{Src: body}
	if version >= 2 {
		rd.Int32() // ThrottleMillis
	}
	if n := rd.arrayLen(flex, 3); n >= 0 { // v6: empty name, empty partitions, tags
		r.Topics = make([]ListOffsetsTopicResponse, 0, n)
		for i := 0; i < n && rd.err == nil; i++ {
			t := ListOffsetsTopicResponse{Name: rd.str(flex)}
			if n := rd.arrayLen(flex, 22); n >= 0 { // v1: partition, error, timestamp, offset
				t.Partitions = make([]ListOffsetsPartitionResponse, 0, n)
				for j := 0; j < n && rd.err == nil; j++ {
					p := ListOffsetsPartitionResponse{Partition: rd.Int32(), ErrorCode: rd.Int16()}
					p.Timestamp = rd.Int64()
					p.Offset = rd.Int64()
					p.LeaderEpoch = -1
					if version >= 4 {
						p.LeaderEpoch = rd.Int32()
					}
					rd.tags(flex)
					t.Partitions = append(t.Partitions, p)
				}
			}
			rd.tags(flex)
			r.Topics = append(r.Topics, t)
		}
	}
	rd.tags(flex)
	if err := rd.Complete(); err != nil {
		return fmt.Errorf("decode list offsets response v%d: %w", version, err)
	}
	return nil
}
