package wire

import (
	"bytes"
	"errors"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// This file tests the producer APIs (produce.go) against kmsg.

// sampleProduceRequest returns a request of one topic with partitions
// partitions, each carrying a batch of size bytes.
func sampleProduceRequest(partitions, size int) *ProduceRequest {
	t := ProduceTopic{Name: "benchmark-topic", TopicID: uuid(7)}
	for p := range partitions {
		t.Partitions = append(t.Partitions, ProducePartition{Partition: int32(p), Records: bytes.Repeat([]byte{byte(p)}, size)})
	}
	return &ProduceRequest{Acks: AcksAll, TimeoutMillis: 30000, Topics: []ProduceTopic{t}}
}

// produceToKmsg builds the kmsg request holding the values of r.
func produceToKmsg(r *ProduceRequest, v int16) *kmsg.ProduceRequest {
	k := kmsg.NewPtrProduceRequest()
	k.Version, k.Acks, k.TimeoutMillis = v, r.Acks, r.TimeoutMillis
	if r.TransactionalID != "" {
		k.TransactionID = kmsg.StringPtr(r.TransactionalID)
	}
	for _, t := range r.Topics {
		kt := kmsg.NewProduceRequestTopic()
		kt.Topic, kt.TopicID = t.Name, t.TopicID
		for _, p := range t.Partitions {
			kp := kmsg.NewProduceRequestTopicPartition()
			kp.Partition, kp.Records = p.Partition, p.Records
			kt.Partitions = append(kt.Partitions, kp)
		}
		k.Topics = append(k.Topics, kt)
	}
	return k
}

func TestProduceRequest(t *testing.T) {
	cases := []ProduceRequest{
		{Acks: AcksAll, TimeoutMillis: 30000, Topics: []ProduceTopic{
			{Name: "orders", TopicID: uuid(1), Partitions: []ProducePartition{
				{Partition: 0, Records: []byte("record batch of orders/0")},
				{Partition: 5, Records: bytes.Repeat([]byte("batch"), 40)}, // a 2-byte compact length
				{Partition: 6, Records: bytes.Repeat([]byte("big"), 6000)}, // a 3-byte one
			}},
			{Name: "payments", TopicID: uuid(40), Partitions: []ProducePartition{{Partition: 2}, {Partition: 3, Records: []byte{}}}},
		}},
		{TransactionalID: "txn-1", Acks: AcksLeader, TimeoutMillis: 1, Topics: []ProduceTopic{{Name: "t", TopicID: uuid(2)}}},
		{Acks: AcksNone},
	}
	for _, c := range cases {
		for _, v := range versions(KeyProduce) {
			k := kmsg.NewPtrProduceRequest()
			checkRequest(t, v, &c, k)
			body := c.AppendTo(nil, v)
			if n := c.EncodedLen(v); n != len(body) {
				t.Fatalf("v%d: EncodedLen %d, AppendTo appended %d bytes", v, n, len(body))
			}
			// The other direction: kmsg encodes the same values to the
			// same bytes.
			if kb := produceToKmsg(&c, v).AppendTo(nil); !bytes.Equal(kb, body) {
				t.Fatalf("v%d: kmsg encodes differently\nours %x\nkmsg %x", v, body, kb)
			}
			got := ProduceRequest{TransactionalID: nstrK(k.TransactionID), Acks: k.Acks, TimeoutMillis: k.TimeoutMillis}
			for _, kt := range k.Topics {
				ot := ProduceTopic{Name: kt.Topic, TopicID: kt.TopicID}
				for _, kp := range kt.Partitions {
					ot.Partitions = append(ot.Partitions, ProducePartition{Partition: kp.Partition, Records: kp.Records})
				}
				got.Topics = append(got.Topics, ot)
			}
			want := c
			want.Topics = append([]ProduceTopic(nil), c.Topics...)
			for i := range want.Topics {
				if v >= 13 {
					want.Topics[i].Name = ""
				} else {
					want.Topics[i].TopicID = [16]byte{}
				}
			}
			// Records compare as []byte, nil (null) apart from empty.
			equalNormalized(t, "produce request", got, want)
		}
	}
}

func TestProduceRequestCopiesRecordsOnce(t *testing.T) {
	r := sampleProduceRequest(10, 1<<10)
	for _, v := range []int16{3, 8, 9, 12, 13} {
		// Into nil or a buffer holding only the frame's header: one
		// allocation, the body's room, and each batch copied into it.
		header := AppendRequestHeader(make([]byte, 4, 64), KeyProduce, v, 1, "kafkaedge")
		for name, dst := range map[string][]byte{"nil": nil, "header": header} {
			if n := testing.AllocsPerRun(50, func() { r.AppendTo(dst, v) }); n != 1 {
				t.Errorf("v%d into %s: %v allocations, want 1", v, name, n)
			}
		}
		full := make([]byte, 0, r.EncodedLen(v))
		if n := testing.AllocsPerRun(50, func() { r.AppendTo(full, v) }); n != 0 {
			t.Errorf("v%d into a buffer of EncodedLen: %v allocations, want 0", v, n)
		}
		if got := r.AppendTo(bytes.Clone(header), v); !bytes.Equal(got[len(header):], r.AppendTo(nil, v)) || !bytes.Equal(got[:len(header)], header) {
			t.Fatalf("v%d: appending after a header changed the bytes", v)
		}
	}
}

func TestProduceRequestExpectsResponse(t *testing.T) {
	for acks, want := range map[int16]bool{AcksAll: true, AcksLeader: true, AcksNone: false} {
		if got := (&ProduceRequest{Acks: acks}).ExpectsResponse(); got != want {
			t.Errorf("acks %d: ExpectsResponse %v, want %v", acks, got, want)
		}
	}
}

func produceFromKmsg(k *kmsg.ProduceResponse) ProduceResponse {
	r := ProduceResponse{ThrottleMillis: k.ThrottleMillis}
	for _, t := range k.Topics {
		ot := ProduceTopicResponse{Name: t.Topic, TopicID: t.TopicID}
		for _, p := range t.Partitions {
			op := ProducePartitionResponse{
				Partition: p.Partition, ErrorCode: p.ErrorCode, BaseOffset: p.BaseOffset, LogAppendTime: p.LogAppendTime,
				LogStartOffset: p.LogStartOffset, ErrorMessage: deref(p.ErrorMessage), CurrentLeader: LeaderAndEpoch{-1, -1},
			}
			for _, e := range p.ErrorRecords {
				op.RecordErrors = append(op.RecordErrors, ProduceRecordError{BatchIndex: e.RelativeOffset, Message: deref(e.ErrorMessage)})
			}
			// kmsg reads the KIP-951 tags in every flexible version, Kafka
			// defines them from v10.
			if k.Version >= 10 {
				op.CurrentLeader = LeaderAndEpoch{LeaderID: p.CurrentLeader.LeaderID, LeaderEpoch: p.CurrentLeader.LeaderEpoch}
			}
			ot.Partitions = append(ot.Partitions, op)
		}
		r.Topics = append(r.Topics, ot)
	}
	if k.Version >= 10 {
		for _, b := range k.Brokers {
			r.NodeEndpoints = append(r.NodeEndpoints, MetadataBroker{NodeID: b.NodeID, Host: b.Host, Port: b.Port, Rack: deref(b.Rack)})
		}
	}
	return r
}

// sampleProduce returns a kmsg Produce response with every field set,
// including both KIP-951 tagged fields and unknown tags the decoder must
// skip.
func sampleProduce() *kmsg.ProduceResponse {
	r := kmsg.NewPtrProduceResponse()
	r.ThrottleMillis = 12
	for ti, name := range []string{"orders", "payments"} {
		t := kmsg.NewProduceResponseTopic()
		t.Topic, t.TopicID = name, uuid(byte(16*(ti+1)))
		for p := int32(0); p < 3; p++ {
			pp := kmsg.NewProduceResponseTopicPartition()
			pp.Partition = p
			pp.BaseOffset = 1000*int64(ti) + 10*int64(p)
			pp.LogStartOffset = 5 + int64(p)
			switch p {
			case 0:
				pp.LogAppendTime = 1700000000000
			case 1:
				pp.ErrorCode = ErrInvalidRecord
				pp.ErrorMessage = kmsg.StringPtr("one or more records have been rejected")
				e := kmsg.NewProduceResponseTopicPartitionErrorRecord()
				e.RelativeOffset, e.ErrorMessage = 0, kmsg.StringPtr("bad key")
				pp.ErrorRecords = append(pp.ErrorRecords, e)
				e.RelativeOffset, e.ErrorMessage = 3, nil
				pp.ErrorRecords = append(pp.ErrorRecords, e)
			case 2:
				pp.ErrorCode = ErrNotLeaderOrFollower
				pp.CurrentLeader.LeaderID, pp.CurrentLeader.LeaderEpoch = 2, 7
				pp.UnknownTags.Set(5, []byte{1, 2, 3})
			}
			t.Partitions = append(t.Partitions, pp)
		}
		r.Topics = append(r.Topics, t)
	}
	b := kmsg.NewProduceResponseBroker()
	b.NodeID, b.Host, b.Port, b.Rack = 2, "broker-2", 9094, kmsg.StringPtr("rack-b")
	r.Brokers = append(r.Brokers, b)
	b.NodeID, b.Host, b.Port, b.Rack = 3, "broker-3", 9095, nil
	r.Brokers = append(r.Brokers, b)
	r.UnknownTags.Set(9, []byte("unknown"))
	return r
}

func TestProduceResponse(t *testing.T) {
	for _, v := range versions(KeyProduce) {
		r := decodeBoth(t, "produce response", encodeKmsg(sampleProduce(), v), v, kmsg.NewPtrProduceResponse(), produceFromKmsg)

		// Independent of kmsg: the values the sample set are there.
		if len(r.Topics) != 2 || len(r.Topics[1].Partitions) != 3 || r.ThrottleMillis != 12 {
			t.Fatalf("v%d: shape %+v", v, r)
		}
		if v < 13 && (r.Topics[1].Name != "payments" || r.Topics[1].TopicID != [16]byte{}) || v >= 13 && (r.Topics[1].Name != "" || r.Topics[1].TopicID != uuid(32)) {
			t.Fatalf("v%d: topic identity %q %x", v, r.Topics[1].Name, r.Topics[1].TopicID)
		}
		p0, p1, p2 := r.Topics[1].Partitions[0], r.Topics[1].Partitions[1], r.Topics[1].Partitions[2]
		want0 := ProducePartitionResponse{Partition: 0, BaseOffset: 1000, LogAppendTime: 1700000000000, LogStartOffset: -1, CurrentLeader: LeaderAndEpoch{-1, -1}}
		if v >= 5 {
			want0.LogStartOffset = 5
		}
		equalNormalized(t, "partition 0", p0, want0)
		if p1.ErrorCode != ErrInvalidRecord || p1.BaseOffset != 1010 || p1.LogAppendTime != -1 {
			t.Fatalf("v%d: partition 1 %+v", v, p1)
		}
		if (v >= 8) != (p1.ErrorMessage == "one or more records have been rejected" && len(p1.RecordErrors) == 2 &&
			p1.RecordErrors[0] == ProduceRecordError{0, "bad key"} && p1.RecordErrors[1] == ProduceRecordError{3, ""}) {
			t.Fatalf("v%d: record errors %q %+v", v, p1.ErrorMessage, p1.RecordErrors)
		}
		wantEndpoints := []MetadataBroker{{NodeID: 2, Host: "broker-2", Port: 9094, Rack: "rack-b"}, {NodeID: 3, Host: "broker-3", Port: 9095}}
		wantLeader := LeaderAndEpoch{2, 7}
		if v < 10 {
			wantEndpoints, wantLeader = nil, LeaderAndEpoch{-1, -1}
		}
		if p2.ErrorCode != ErrNotLeaderOrFollower || p2.CurrentLeader != wantLeader || p1.CurrentLeader != (LeaderAndEpoch{-1, -1}) {
			t.Fatalf("v%d: current leaders %+v %+v", v, p2.CurrentLeader, p1.CurrentLeader)
		}
		equalNormalized(t, "node endpoints", r.NodeEndpoints, wantEndpoints)
	}
}

func TestProduceResponseBadTaggedFields(t *testing.T) {
	// v10, no topics, throttle 0, then one tagged field 0 (NodeEndpoints)
	// of the given bytes.
	body := func(field []byte) []byte {
		b := AppendCompactArrayLen(nil, 0)
		b = AppendInt32(b, 0)
		b = AppendUvarint(b, 1) // one field
		b = AppendUvarint(b, 0) // tag 0
		b = AppendUvarint(b, uint32(len(field)))
		return append(b, field...)
	}
	endpoint := AppendCompactArrayLen(nil, 1)
	endpoint = AppendInt32(endpoint, 4)
	endpoint = AppendCompactString(endpoint, "h")
	endpoint = AppendInt32(endpoint, 9092)
	endpoint = AppendCompactNullableString(endpoint, nil)
	endpoint = AppendEmptyTags(endpoint)
	var r ProduceResponse
	if err := r.Decode(body(endpoint), 10); err != nil || len(r.NodeEndpoints) != 1 || r.NodeEndpoints[0] != (MetadataBroker{NodeID: 4, Host: "h", Port: 9092}) {
		t.Fatalf("well-formed endpoint: %v, %+v", err, r.NodeEndpoints)
	}
	// At v9 tag 0 is not defined: skipped, whatever it holds.
	if err := r.Decode(body([]byte("anything")), 9); err != nil || r.NodeEndpoints != nil {
		t.Fatalf("v9 tag 0: %v, %+v", err, r.NodeEndpoints)
	}
	for name, field := range map[string][]byte{
		"one byte more": append(bytes.Clone(endpoint), 0),
		"one byte less": endpoint[:len(endpoint)-1],
		"lying count":   append(AppendCompactArrayLen(nil, 1000), endpoint[1:]...),
	} {
		err := r.Decode(body(field), 10)
		if !errors.Is(err, ErrInvalid) && !errors.Is(err, ErrShort) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestInitProducerIDRequest(t *testing.T) {
	for _, c := range []InitProducerIDRequest{
		{TransactionTimeoutMillis: 60000, ProducerID: -1, ProducerEpoch: -1},
		{TransactionTimeoutMillis: 1, ProducerID: 1 << 40, ProducerEpoch: 7},
		{TransactionalID: "txn-1", TransactionTimeoutMillis: 900000, ProducerID: 12345, ProducerEpoch: 3},
	} {
		for _, v := range versions(KeyInitProducerID) {
			k := kmsg.NewPtrInitProducerIDRequest()
			checkRequest(t, v, &c, k)
			got := InitProducerIDRequest{TransactionalID: nstrK(k.TransactionalID), TransactionTimeoutMillis: k.TransactionTimeoutMillis, ProducerID: k.ProducerID, ProducerEpoch: k.ProducerEpoch}
			want := c
			if v < 3 {
				want.ProducerID, want.ProducerEpoch = -1, -1 // kmsg defaults for absent fields
			}
			if got != want {
				t.Fatalf("v%d: kmsg read %+v, want %+v", v, got, want)
			}
		}
	}
}

func initProducerIDFromKmsg(k *kmsg.InitProducerIDResponse) InitProducerIDResponse {
	return InitProducerIDResponse{ThrottleMillis: k.ThrottleMillis, ErrorCode: k.ErrorCode, ProducerID: k.ProducerID, ProducerEpoch: k.ProducerEpoch}
}

func sampleInitProducerID() *kmsg.InitProducerIDResponse {
	r := kmsg.NewPtrInitProducerIDResponse()
	r.ThrottleMillis, r.ErrorCode, r.ProducerID, r.ProducerEpoch = 3, ErrProducerFenced, 1<<40+42, 9
	r.UnknownTags.Set(1, []byte("unknown"))
	return r
}

func TestInitProducerIDResponse(t *testing.T) {
	for _, v := range versions(KeyInitProducerID) {
		r := decodeBoth(t, "init producer id response", encodeKmsg(sampleInitProducerID(), v), v, kmsg.NewPtrInitProducerIDResponse(), initProducerIDFromKmsg)
		if r != (InitProducerIDResponse{ThrottleMillis: 3, ErrorCode: ErrProducerFenced, ProducerID: 1<<40 + 42, ProducerEpoch: 9}) {
			t.Fatalf("v%d: %+v", v, r)
		}
	}
}

func TestProducerErrorCodes(t *testing.T) {
	for code, name := range map[int16]string{
		ErrCorruptMessage: "CORRUPT_MESSAGE", ErrRequestTimedOut: "REQUEST_TIMED_OUT", ErrMessageTooLarge: "MESSAGE_TOO_LARGE",
		ErrRecordListTooLarge: "RECORD_LIST_TOO_LARGE", ErrNotEnoughReplicas: "NOT_ENOUGH_REPLICAS",
		ErrNotEnoughReplicasAfterAppend: "NOT_ENOUGH_REPLICAS_AFTER_APPEND", ErrInvalidRequiredAcks: "INVALID_REQUIRED_ACKS",
		ErrTopicAuthorizationFailed: "TOPIC_AUTHORIZATION_FAILED", ErrClusterAuthorizationFailed: "CLUSTER_AUTHORIZATION_FAILED",
		ErrInvalidTimestamp: "INVALID_TIMESTAMP", ErrOutOfOrderSequenceNumber: "OUT_OF_ORDER_SEQUENCE_NUMBER",
		ErrDuplicateSequenceNumber: "DUPLICATE_SEQUENCE_NUMBER", ErrInvalidProducerEpoch: "INVALID_PRODUCER_EPOCH",
		ErrKafkaStorageError: "KAFKA_STORAGE_ERROR", ErrUnknownProducerID: "UNKNOWN_PRODUCER_ID", ErrInvalidRecord: "INVALID_RECORD",
		ErrThrottlingQuotaExceeded: "THROTTLING_QUOTA_EXCEEDED", ErrProducerFenced: "PRODUCER_FENCED", ErrTransactionAbortable: "TRANSACTION_ABORTABLE",
	} {
		if got := ErrorName(code); got != name {
			t.Errorf("ErrorName(%d) = %q, want %q", code, got, name)
		}
	}
}
