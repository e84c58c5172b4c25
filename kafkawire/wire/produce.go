package wire

import "fmt"

// Acks values of a ProduceRequest: how many replicas must have a batch
// before the leader answers.
const (
	// AcksNone asks for no answer at all: the broker sends no response to
	// the request (see ProduceRequest.ExpectsResponse).
	AcksNone int16 = 0
	// AcksLeader answers once the leader has written the batch.
	AcksLeader int16 = 1
	// AcksAll answers once every in-sync replica has it, the only setting
	// an idempotent producer may use.
	AcksAll int16 = -1
)

// ProduceRequest writes record batches to partitions (Produce v3-v13).
// v3 is the first version that carries record batches (magic 2), and the
// oldest Kafka 4.0 still accepts (KIP-896); from v13 topics are named by
// ID (KIP-516).
type ProduceRequest struct {
	// TransactionalID is "" for an idempotent or plain producer, sent as
	// null.
	TransactionalID string
	Acks            int16 // AcksAll, AcksLeader or AcksNone
	TimeoutMillis   int32
	Topics          []ProduceTopic
}

// ProduceTopic holds the batches of one topic. Name is sent up to v12,
// TopicID from v13.
type ProduceTopic struct {
	Name       string
	TopicID    [16]byte
	Partitions []ProducePartition
}

// ProducePartition holds the records of one partition: one or more encoded
// record batches, sent as they are (nil is sent as null).
type ProducePartition struct {
	Partition int32
	Records   []byte
}

// Key returns KeyProduce.
func (*ProduceRequest) Key() int16 { return KeyProduce }

// ExpectsResponse reports whether the broker answers the request. With
// Acks AcksNone it does not: the request has no response frame, so its
// correlation id must not wait for one (a broker that cannot write such a
// request's batches closes the connection instead, so that the producer
// refreshes its metadata).
func (r *ProduceRequest) ExpectsResponse() bool { return r.Acks != AcksNone }

// AppendTo appends the request body at version to dst. It grows dst once,
// by EncodedLen, before it appends anything, so every record batch is
// copied exactly once, from Records into dst, however large it is.
func (r *ProduceRequest) AppendTo(dst []byte, version int16) []byte {
	flex := version >= 9
	if n := r.EncodedLen(version); cap(dst)-len(dst) < n {
		grown := make([]byte, len(dst), len(dst)+n)
		copy(grown, dst)
		dst = grown
	}
	dst = appendNstr(dst, r.TransactionalID, flex)
	dst = AppendInt16(dst, r.Acks)
	dst = AppendInt32(dst, r.TimeoutMillis)
	dst = appendArrayLen(dst, len(r.Topics), flex)
	for i := range r.Topics {
		t := &r.Topics[i]
		if version >= 13 {
			dst = AppendUUID(dst, t.TopicID)
		} else {
			dst = appendStr(dst, t.Name, flex)
		}
		dst = appendArrayLen(dst, len(t.Partitions), flex)
		for j := range t.Partitions {
			p := &t.Partitions[j]
			dst = AppendInt32(dst, p.Partition)
			dst = appendBytes(dst, p.Records, flex)
			dst = appendTags(dst, flex)
		}
		dst = appendTags(dst, flex)
	}
	return appendTags(dst, flex)
}

// EncodedLen returns the length of the request body at version, what
// AppendTo appends: a caller that builds the whole frame (size, header,
// body) can size its buffer with it.
func (r *ProduceRequest) EncodedLen(version int16) int {
	flex := version >= 9
	n := strLen(len(r.TransactionalID), flex) + 2 + 4 + arrayLenLen(len(r.Topics), flex)
	for i := range r.Topics {
		t := &r.Topics[i]
		if version >= 13 {
			n += 16
		} else {
			n += strLen(len(t.Name), flex)
		}
		n += arrayLenLen(len(t.Partitions), flex) + tagsLen(flex)
		for j := range t.Partitions {
			n += 4 + bytesLen(t.Partitions[j].Records, flex) + tagsLen(flex)
		}
	}
	return n + tagsLen(flex)
}

// strLen is the encoded length of a string of n bytes; a nullable "" (n 0)
// sent as null takes the same room as an empty string.
func strLen(n int, flex bool) int {
	if flex {
		return uvarintLen(uint32(n)+1) + n
	}
	return 2 + n
}

// bytesLen is the encoded length of b, nil as null.
func bytesLen(b []byte, flex bool) int {
	switch {
	case !flex:
		return 4 + len(b)
	case b == nil:
		return 1
	}
	return uvarintLen(uint32(len(b))+1) + len(b)
}

func arrayLenLen(n int, flex bool) int {
	if flex {
		return uvarintLen(uint32(n + 1))
	}
	return 4
}

func tagsLen(flex bool) int {
	if flex {
		return 1
	}
	return 0
}

func uvarintLen(v uint32) int {
	n := 1
	for ; v >= 0x80; v >>= 7 {
		n++
	}
	return n
}

// ProduceResponse is a broker's answer to ProduceRequest (none is sent for
// Acks AcksNone).
type ProduceResponse struct {
	Topics         []ProduceTopicResponse
	ThrottleMillis int32
	// NodeEndpoints (v10+, KIP-951) are the brokers named as CurrentLeader
	// of the partitions answered with ErrNotLeaderOrFollower, so that the
	// producer can send there without a metadata refresh. Rack is "" when
	// null.
	NodeEndpoints []MetadataBroker
}

// ProduceTopicResponse holds the answers for one topic. Name is set up to
// v12, TopicID from v13.
type ProduceTopicResponse struct {
	Name       string
	TopicID    [16]byte
	Partitions []ProducePartitionResponse
}

// ProducePartitionResponse is the answer for one partition. BaseOffset is
// the offset of the first record written; a batch of an idempotent
// producer that the partition already holds (a retry) is answered
// ErrNone with the offset it was written at. LogAppendTime is the
// broker's time when the topic stamps records with it, else -1 (but a
// retried batch gets its own maximum timestamp there). LogStartOffset is
// -1 before v5. RecordErrors and ErrorMessage ("" when null) say why a
// batch was refused (v8+).
type ProducePartitionResponse struct {
	Partition      int32
	ErrorCode      int16
	BaseOffset     int64
	LogAppendTime  int64
	LogStartOffset int64
	RecordErrors   []ProduceRecordError
	ErrorMessage   string
	// CurrentLeader (v10+, KIP-951) is the partition's leader when it is
	// not this broker; -1/-1 when the broker did not say.
	CurrentLeader LeaderAndEpoch
}

// ProduceRecordError names one record that made the broker drop its batch:
// its index in the batch and the reason ("" when null).
type ProduceRecordError struct {
	BatchIndex int32
	Message    string
}

// LeaderAndEpoch is the leader of a partition and its epoch, -1 when
// unknown.
type LeaderAndEpoch struct {
	LeaderID, LeaderEpoch int32
}

// Decode decodes a response body at version into r.
func (r *ProduceResponse) Decode(body []byte, version int16) error {
	if err := checkVersion(KeyProduce, version); err != nil {
		return fmt.Errorf("decode produce response: %w", err)
	}
	*r = ProduceResponse{}
	flex := version >= 9
	rd := Reader{Src: body}
	if n := rd.arrayLen(flex, 3); n >= 0 { // v9: empty name, empty partitions, tags
		r.Topics = make([]ProduceTopicResponse, 0, n)
		for i := 0; i < n && rd.err == nil; i++ {
			var t ProduceTopicResponse
			if version >= 13 {
				t.TopicID = rd.UUID()
			} else {
				t.Name = rd.str(flex)
			}
			if n := rd.arrayLen(flex, 22); n >= 0 { // v3: partition, error, base offset, append time
				t.Partitions = make([]ProducePartitionResponse, 0, n)
				for j := 0; j < n && rd.err == nil; j++ {
					t.Partitions = append(t.Partitions, decodeProducePartition(&rd, version, flex))
				}
			}
			rd.tags(flex)
			r.Topics = append(r.Topics, t)
		}
	}
	r.ThrottleMillis = rd.Int32()
	if version >= 10 {
		rd.readTags(func(tag uint32, f *Reader) bool {
			if tag != 0 {
				return false
			}
			n := f.arrayLen(true, 11) // id, empty host, port, null rack, tags
			r.NodeEndpoints = make([]MetadataBroker, 0, max(n, 0))
			for i := 0; i < n && f.err == nil; i++ {
				b := MetadataBroker{NodeID: f.Int32(), Host: f.CompactString(), Port: f.Int32()}
				b.Rack = f.CompactNullableString()
				f.SkipTags()
				r.NodeEndpoints = append(r.NodeEndpoints, b)
			}
			return true
		})
	} else {
		rd.tags(flex)
	}
	if err := rd.Complete(); err != nil {
		return fmt.Errorf("decode produce response v%d: %w", version, err)
	}
	return nil
}

func decodeProducePartition(rd *Reader, version int16, flex bool) ProducePartitionResponse {
	p := ProducePartitionResponse{
		Partition:      rd.Int32(),
		ErrorCode:      rd.Int16(),
		BaseOffset:     rd.Int64(),
		LogAppendTime:  rd.Int64(),
		LogStartOffset: -1,
		CurrentLeader:  LeaderAndEpoch{-1, -1},
	}
	if version >= 5 {
		p.LogStartOffset = rd.Int64()
	}
	if version >= 8 {
		if n := rd.arrayLen(flex, 6); n >= 0 { // index, null message (, tags)
			p.RecordErrors = make([]ProduceRecordError, 0, n)
			for k := 0; k < n && rd.err == nil; k++ {
				p.RecordErrors = append(p.RecordErrors, ProduceRecordError{BatchIndex: rd.Int32(), Message: rd.nstr(flex)})
				rd.tags(flex)
			}
		}
		p.ErrorMessage = rd.nstr(flex)
	}
	if version < 10 {
		rd.tags(flex)
		return p
	}
	rd.readTags(func(tag uint32, f *Reader) bool {
		if tag != 0 {
			return false
		}
		p.CurrentLeader = LeaderAndEpoch{LeaderID: f.Int32(), LeaderEpoch: f.Int32()}
		f.SkipTags()
		return true
	})
	return p
}

// readTags reads a tagged-field section. Each field is handed to known
// with a Reader over its bytes; a field whose tag known decodes (it returns
// true) must consume them exactly, any other is skipped.
func (r *Reader) readTags(known func(tag uint32, field *Reader) bool) {
	n := r.Uvarint()
	for i := uint32(0); i < n && r.err == nil; i++ {
		tag := r.Uvarint()
		field := Reader{Src: r.take(int(r.Uvarint()), "tagged field")}
		if r.err != nil || !known(tag, &field) {
			continue
		}
		if err := field.Complete(); err != nil {
			r.err = fmt.Errorf("tagged field %d: %w", tag, err)
			r.Src = nil
		}
	}
}

// InitProducerIDRequest asks for a producer ID and epoch (InitProducerId
// v0-v5), the identity an idempotent producer stamps on its batches, with
// a sequence number per partition, so that the leader writes a retried
// batch once. An idempotent producer sends it to any broker, with no
// TransactionalID; from v3 it may send the ID and epoch it has, to have
// the epoch bumped after an error (KIP-360), or -1 and -1 for a new one.
// v4 and v5 add error codes only (PRODUCER_FENCED, TRANSACTION_ABORTABLE).
type InitProducerIDRequest struct {
	// TransactionalID is "" for an idempotent producer, sent as null.
	TransactionalID          string
	TransactionTimeoutMillis int32
	ProducerID               int64 // v3+; -1 for a new producer
	ProducerEpoch            int16 // v3+; -1 for a new producer
}

// Key returns KeyInitProducerID.
func (*InitProducerIDRequest) Key() int16 { return KeyInitProducerID }

// AppendTo appends the request body at version to dst.
func (r *InitProducerIDRequest) AppendTo(dst []byte, version int16) []byte {
	flex := version >= 2
	dst = appendNstr(dst, r.TransactionalID, flex)
	dst = AppendInt32(dst, r.TransactionTimeoutMillis)
	if version >= 3 {
		dst = AppendInt64(dst, r.ProducerID)
		dst = AppendInt16(dst, r.ProducerEpoch)
	}
	return appendTags(dst, flex)
}

// InitProducerIDResponse is a broker's answer to InitProducerIDRequest.
type InitProducerIDResponse struct {
	ThrottleMillis int32
	ErrorCode      int16
	ProducerID     int64
	ProducerEpoch  int16
}

// Decode decodes a response body at version into r.
func (r *InitProducerIDResponse) Decode(body []byte, version int16) error {
	if err := checkVersion(KeyInitProducerID, version); err != nil {
		return fmt.Errorf("decode init producer id response: %w", err)
	}
	rd := Reader{Src: body}
	*r = InitProducerIDResponse{ThrottleMillis: rd.Int32(), ErrorCode: rd.Int16(), ProducerID: rd.Int64(), ProducerEpoch: rd.Int16()}
	rd.tags(version >= 2)
	if err := rd.Complete(); err != nil {
		return fmt.Errorf("decode init producer id response v%d: %w", version, err)
	}
	return nil
}
