package wire

import "fmt"

// MetadataRequest asks for brokers and topic partitions (Metadata v1-v12).
type MetadataRequest struct {
	// Topics to describe; nil asks for all topics, an empty non-nil slice for none.
	Topics []string
	// AllowAutoTopicCreation lets the broker create missing topics (v4+).
	AllowAutoTopicCreation bool
}

// Key returns KeyMetadata.
func (*MetadataRequest) Key() int16 { return KeyMetadata }

// AppendTo appends the request body at version to dst.
func (r *MetadataRequest) AppendTo(dst []byte, version int16) []byte {
	flex := version >= 9
	if r.Topics == nil {
		dst = appendArrayLen(dst, -1, flex)
	} else {
		dst = appendArrayLen(dst, len(r.Topics), flex)
		for i := range r.Topics {
			if version >= 10 {
				dst = AppendUUID(dst, [16]byte{})
				dst = AppendCompactNullableString(dst, &r.Topics[i])
			} else {
				dst = appendStr(dst, r.Topics[i], flex)
			}
			dst = appendTags(dst, flex)
		}
	}
	if version >= 4 {
		dst = AppendBool(dst, r.AllowAutoTopicCreation)
	}
	if version >= 8 && version <= 10 {
		dst = AppendBool(dst, false) // IncludeClusterAuthorizedOperations
	}
	if version >= 8 {
		dst = AppendBool(dst, false) // IncludeTopicAuthorizedOperations
	}
	return appendTags(dst, flex)
}

// MetadataResponse is a broker's answer to MetadataRequest. Fields the
// version lacks keep their zero value (ClusterID before v2).
type MetadataResponse struct {
	Brokers      []MetadataBroker
	ClusterID    string
	ControllerID int32
	Topics       []MetadataTopic
}

// MetadataBroker is one broker of the cluster; Rack is "" when null.
type MetadataBroker struct {
	NodeID int32
	Host   string
	Port   int32
	Rack   string
}

// MetadataTopic is one topic; TopicID is set from v10.
type MetadataTopic struct {
	ErrorCode  int16
	Name       string
	TopicID    [16]byte
	Partitions []MetadataPartition
}

// MetadataPartition is one partition; LeaderEpoch is -1 before v7.
type MetadataPartition struct {
	ErrorCode                      int16
	Partition, Leader, LeaderEpoch int32
	Replicas, ISR                  []int32
}

// Decode decodes a response body at version into r.
func (r *MetadataResponse) Decode(body []byte, version int16) error {
	if err := checkVersion(KeyMetadata, version); err != nil {
		return fmt.Errorf("decode metadata response: %w", err)
	}
	*r = MetadataResponse{}
	flex := version >= 9
	rd := Reader{Src: body}
	if version >= 3 {
		rd.Int32() // ThrottleMillis
	}
	if n := rd.arrayLen(flex, 11); n >= 0 { // v9: id, empty host, port, null rack, tags
		r.Brokers = make([]MetadataBroker, 0, n)
		for i := 0; i < n && rd.err == nil; i++ {
			b := MetadataBroker{NodeID: rd.Int32(), Host: rd.str(flex), Port: rd.Int32()}
			b.Rack = rd.nstr(flex)
			rd.tags(flex)
			r.Brokers = append(r.Brokers, b)
		}
	}
	if version >= 2 {
		r.ClusterID = rd.nstr(flex)
	}
	r.ControllerID = rd.Int32()
	if n := rd.arrayLen(flex, 9); n >= 0 { // v1: error, empty name, internal, empty partitions
		r.Topics = make([]MetadataTopic, 0, n)
		for i := 0; i < n && rd.err == nil; i++ {
			var t MetadataTopic
			t.ErrorCode = rd.Int16()
			if version >= 12 {
				t.Name = rd.CompactNullableString()
			} else {
				t.Name = rd.str(flex)
			}
			if version >= 10 {
				t.TopicID = rd.UUID()
			}
			rd.Bool() // IsInternal
			// Minimum partition (v1): error, partition, leader, two empty arrays.
			if n := rd.arrayLen(flex, 18); n >= 0 {
				t.Partitions = make([]MetadataPartition, 0, n)
				for j := 0; j < n && rd.err == nil; j++ {
					p := MetadataPartition{ErrorCode: rd.Int16(), Partition: rd.Int32(), Leader: rd.Int32(), LeaderEpoch: -1}
					if version >= 7 {
						p.LeaderEpoch = rd.Int32()
					}
					p.Replicas = rd.int32s(flex)
					p.ISR = rd.int32s(flex)
					if version >= 5 {
						rd.int32s(flex) // OfflineReplicas
					}
					rd.tags(flex)
					t.Partitions = append(t.Partitions, p)
				}
			}
			if version >= 8 {
				rd.Int32() // AuthorizedOperations
			}
			rd.tags(flex)
			r.Topics = append(r.Topics, t)
		}
	}
	if version >= 8 && version <= 10 {
		rd.Int32() // ClusterAuthorizedOperations
	}
	rd.tags(flex)
	if err := rd.Complete(); err != nil {
		return fmt.Errorf("decode metadata response v%d: %w", version, err)
	}
	return nil
}
