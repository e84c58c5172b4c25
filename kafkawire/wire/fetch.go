package wire

import (
	"fmt"

	"github.com/kafkaedge/kafkaedge/kafkawire/record"
)

// FetchRequest asks for record batches of partitions (Fetch v4-v16).
// A consumer sets ReplicaID to -1. From v7 a fetch belongs to a fetch
// session (KIP-227): a sessionless fetch uses SessionID 0 and SessionEpoch
// -1, the full fetch that opens a session SessionEpoch 0, and the
// incremental fetches of an open session its SessionID and the next epoch;
// Topics then lists only the partitions added or changed, and
// ForgottenTopics those the session drops.
type FetchRequest struct {
	// ReplicaID is -1 for consumers. From v15 it is sent in the ReplicaState
	// tagged field, and only when it is not -1.
	ReplicaID       int32
	MaxWaitMillis   int32
	MinBytes        int32
	MaxBytes        int32
	IsolationLevel  int8 // 0 read_uncommitted, 1 read_committed
	SessionID       int32
	SessionEpoch    int32
	Topics          []FetchTopic
	ForgottenTopics []ForgottenTopic // v7+
	RackID          string           // v11+
}

// FetchTopic holds the partitions of one topic to fetch. Name is sent up to
// v12, TopicID from v13.
type FetchTopic struct {
	Name       string
	TopicID    [16]byte
	Partitions []FetchPartition
}

// FetchPartition is one partition to fetch. CurrentLeaderEpoch (v9+) and
// LogStartOffset (v5+, consumers send -1) are -1 when unknown.
type FetchPartition struct {
	Partition, CurrentLeaderEpoch int32
	FetchOffset, LogStartOffset   int64
	PartitionMaxBytes             int32
}

// ForgottenTopic names partitions an incremental fetch drops from its
// session: Name is sent up to v12, TopicID from v13.
type ForgottenTopic struct {
	Name       string
	TopicID    [16]byte
	Partitions []int32
}

// Key returns KeyFetch.
func (*FetchRequest) Key() int16 { return KeyFetch }

// AppendTo appends the request body at version to dst.
func (r *FetchRequest) AppendTo(dst []byte, version int16) []byte {
	flex := version >= 12
	if version <= 14 {
		dst = AppendInt32(dst, r.ReplicaID)
	}
	dst = AppendInt32(dst, r.MaxWaitMillis)
	dst = AppendInt32(dst, r.MinBytes)
	dst = AppendInt32(dst, r.MaxBytes)
	dst = AppendInt8(dst, r.IsolationLevel)
	if version >= 7 {
		dst = AppendInt32(dst, r.SessionID)
		dst = AppendInt32(dst, r.SessionEpoch)
	}
	dst = appendArrayLen(dst, len(r.Topics), flex)
	for i := range r.Topics {
		t := &r.Topics[i]
		dst = appendFetchTopic(dst, t.Name, t.TopicID, len(t.Partitions), version)
		for _, p := range t.Partitions {
			dst = AppendInt32(dst, p.Partition)
			if version >= 9 {
				dst = AppendInt32(dst, p.CurrentLeaderEpoch)
			}
			dst = AppendInt64(dst, p.FetchOffset)
			if version >= 12 {
				dst = AppendInt32(dst, -1) // LastFetchedEpoch
			}
			if version >= 5 {
				dst = AppendInt64(dst, p.LogStartOffset)
			}
			dst = AppendInt32(dst, p.PartitionMaxBytes)
			dst = appendTags(dst, flex)
		}
		dst = appendTags(dst, flex)
	}
	if version >= 7 {
		dst = appendArrayLen(dst, len(r.ForgottenTopics), flex)
		for i := range r.ForgottenTopics {
			t := &r.ForgottenTopics[i]
			dst = appendFetchTopic(dst, t.Name, t.TopicID, len(t.Partitions), version)
			for _, p := range t.Partitions {
				dst = AppendInt32(dst, p)
			}
			dst = appendTags(dst, flex)
		}
	}
	if version >= 11 {
		dst = appendStr(dst, r.RackID, flex)
	}
	if !flex {
		return dst
	}
	if version < 15 || r.ReplicaID == -1 {
		return AppendEmptyTags(dst)
	}
	// One tagged field: tag 1, ReplicaState, 13 bytes long, holding
	// ReplicaID int32, ReplicaEpoch int64 (-1) and its own empty tags.
	dst = AppendUvarint(dst, 1) // tag count
	dst = AppendUvarint(dst, 1) // tag
	dst = AppendUvarint(dst, 4+8+1)
	dst = AppendInt32(dst, r.ReplicaID)
	dst = AppendInt64(dst, -1)
	return AppendEmptyTags(dst)
}

// appendFetchTopic appends the start of a topic entry of a Fetch request
// (of Topics or ForgottenTopics) at version: the name up to v12, the ID
// from v13, then the length of its partitions array.
func appendFetchTopic(dst []byte, name string, id [16]byte, partitions int, version int16) []byte {
	flex := version >= 12
	if version >= 13 {
		dst = AppendUUID(dst, id)
	} else {
		dst = appendStr(dst, name, flex)
	}
	return appendArrayLen(dst, partitions, flex)
}

// FetchResponse is a broker's answer to FetchRequest.
type FetchResponse struct {
	ThrottleMillis int32
	ErrorCode      int16 // v7+
	SessionID      int32 // v7+
	Topics         []FetchTopicResponse
}

// FetchTopicResponse holds the partitions of one topic. Name is set up to
// v12, TopicID from v13.
type FetchTopicResponse struct {
	Name       string
	TopicID    [16]byte
	Partitions []FetchPartitionResponse
}

// FetchPartitionResponse is the answer for one partition. Records is a
// sub-slice of the decoded body (no copy), nil when the broker sent null.
// AbortedTransactions (read_committed fetches) go to record.Decoder.Append
// as they are. PreferredReadReplica is -1 before v11.
type FetchPartitionResponse struct {
	Partition                                       int32
	ErrorCode                                       int16
	HighWatermark, LastStableOffset, LogStartOffset int64
	AbortedTransactions                             []record.AbortedTransaction
	PreferredReadReplica                            int32
	Records                                         []byte
}

// Decode decodes a response body at version into r. The Records of every
// partition alias body.
func (r *FetchResponse) Decode(body []byte, version int16) error {
	if err := checkVersion(KeyFetch, version); err != nil {
		return fmt.Errorf("decode fetch response: %w", err)
	}
	*r = FetchResponse{}
	flex := version >= 12
	rd := Reader{Src: body}
	r.ThrottleMillis = rd.Int32()
	if version >= 7 {
		r.ErrorCode = rd.Int16()
		r.SessionID = rd.Int32()
	}
	if n := rd.arrayLen(flex, 3); n >= 0 { // v12: empty name, empty partitions, tags
		r.Topics = make([]FetchTopicResponse, 0, n)
		for i := 0; i < n && rd.err == nil; i++ {
			var t FetchTopicResponse
			if version >= 13 {
				t.TopicID = rd.UUID()
			} else {
				t.Name = rd.str(flex)
			}
			if n := rd.arrayLen(flex, 30); n >= 0 { // v4: 22 fixed bytes, null aborted, null records
				t.Partitions = make([]FetchPartitionResponse, 0, n)
				for j := 0; j < n && rd.err == nil; j++ {
					t.Partitions = append(t.Partitions, decodeFetchPartition(&rd, version, flex))
				}
			}
			rd.tags(flex)
			r.Topics = append(r.Topics, t)
		}
	}
	rd.tags(flex)
	if err := rd.Complete(); err != nil {
		return fmt.Errorf("decode fetch response v%d: %w", version, err)
	}
	return nil
}

func decodeFetchPartition(rd *Reader, version int16, flex bool) FetchPartitionResponse {
	p := FetchPartitionResponse{
		Partition:            rd.Int32(),
		ErrorCode:            rd.Int16(),
		HighWatermark:        rd.Int64(),
		LastStableOffset:     rd.Int64(),
		LogStartOffset:       -1,
		PreferredReadReplica: -1,
	}
	if version >= 5 {
		p.LogStartOffset = rd.Int64()
	}
	if n := rd.arrayLen(flex, 16); n >= 0 { // producer id, first offset
		p.AbortedTransactions = make([]record.AbortedTransaction, 0, n)
		for k := 0; k < n && rd.err == nil; k++ {
			p.AbortedTransactions = append(p.AbortedTransactions, record.AbortedTransaction{ProducerID: rd.Int64(), FirstOffset: rd.Int64()})
			rd.tags(flex)
		}
	}
	if version >= 11 {
		p.PreferredReadReplica = rd.Int32()
	}
	p.Records = rd.bytes(flex)
	rd.tags(flex)
	return p
}
