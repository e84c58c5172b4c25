package wire

import (
	"bytes"
	"errors"
	"fmt"
	"runtime"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkaedge/kafkaedge/kafkawire/record"
)

func TestApiVersionsRequest(t *testing.T) {
	ours := &ApiVersionsRequest{ClientSoftwareName: "kafkaedge", ClientSoftwareVersion: "1.2.3"}
	for _, v := range versions(KeyApiVersions) {
		k := kmsg.NewPtrApiVersionsRequest()
		checkRequest(t, v, ours, k)
		if v >= 3 && (k.ClientSoftwareName != ours.ClientSoftwareName || k.ClientSoftwareVersion != ours.ClientSoftwareVersion) {
			t.Fatalf("v%d: kmsg read %q %q", v, k.ClientSoftwareName, k.ClientSoftwareVersion)
		}
		if v < 3 && len(ours.AppendTo(nil, v)) != 0 {
			t.Fatalf("v%d: body must be empty", v)
		}
	}
}

func TestMetadataRequest(t *testing.T) {
	cases := []MetadataRequest{
		{Topics: nil, AllowAutoTopicCreation: false},
		{Topics: []string{}, AllowAutoTopicCreation: true},
		{Topics: []string{"orders", "payments", ""}, AllowAutoTopicCreation: true},
	}
	for _, c := range cases {
		for _, v := range versions(KeyMetadata) {
			k := kmsg.NewPtrMetadataRequest()
			checkRequest(t, v, &c, k)
			if (c.Topics == nil) != (k.Topics == nil) || len(c.Topics) != len(k.Topics) {
				t.Fatalf("v%d: topics %q, kmsg read %v", v, c.Topics, k.Topics)
			}
			for i, name := range c.Topics {
				if deref(k.Topics[i].Topic) != name || k.Topics[i].TopicID != [16]byte{} {
					t.Fatalf("v%d: topic %d = %q, kmsg read %q", v, i, name, deref(k.Topics[i].Topic))
				}
			}
			if v >= 4 && k.AllowAutoTopicCreation != c.AllowAutoTopicCreation {
				t.Fatalf("v%d: AllowAutoTopicCreation not carried", v)
			}
			if k.IncludeTopicAuthorizedOperations || k.IncludeClusterAuthorizedOperations {
				t.Fatalf("v%d: authorized operations requested", v)
			}
		}
	}
}

func TestListOffsetsRequest(t *testing.T) {
	ours := &ListOffsetsRequest{ReplicaID: -1, IsolationLevel: 1, Topics: []ListOffsetsTopic{
		{Name: "a", Partitions: []ListOffsetsPartition{{Partition: 0, CurrentLeaderEpoch: 4, Timestamp: -1}, {Partition: 7, CurrentLeaderEpoch: -1, Timestamp: 1700000000000}}},
		{Name: "bb", Partitions: []ListOffsetsPartition{{Partition: 3, CurrentLeaderEpoch: 2, Timestamp: -2}}},
	}}
	for _, v := range versions(KeyListOffsets) {
		k := kmsg.NewPtrListOffsetsRequest()
		checkRequest(t, v, ours, k)
		if k.ReplicaID != -1 || (v >= 2) != (k.IsolationLevel == 1) {
			t.Fatalf("v%d: replica %d isolation %d", v, k.ReplicaID, k.IsolationLevel)
		}
		if len(k.Topics) != len(ours.Topics) {
			t.Fatalf("v%d: %d topics", v, len(k.Topics))
		}
		for i, tp := range ours.Topics {
			kt := k.Topics[i]
			if kt.Topic != tp.Name || len(kt.Partitions) != len(tp.Partitions) {
				t.Fatalf("v%d: topic %+v", v, kt)
			}
			for j, p := range tp.Partitions {
				kp := kt.Partitions[j]
				wantEpoch := p.CurrentLeaderEpoch
				if v < 4 {
					wantEpoch = -1 // kmsg default for an absent field
				}
				if kp.Partition != p.Partition || kp.Timestamp != p.Timestamp || kp.CurrentLeaderEpoch != wantEpoch {
					t.Fatalf("v%d: partition %+v, want %+v", v, kp, p)
				}
			}
		}
	}
}

func TestFetchRequest(t *testing.T) {
	for _, replica := range []int32{-1, 3} {
		ours := &FetchRequest{
			ReplicaID: replica, MaxWaitMillis: 100, MinBytes: 1, MaxBytes: 10 << 20, IsolationLevel: 1,
			SessionID: 77, SessionEpoch: 5, RackID: "rack-a",
			ForgottenTopics: []ForgottenTopic{{Name: "gamma", TopicID: uuid(9), Partitions: []int32{1, 4}}, {Name: "delta", TopicID: uuid(10)}},
			Topics: []FetchTopic{
				{Name: "alpha", TopicID: uuid(1), Partitions: []FetchPartition{
					{Partition: 0, CurrentLeaderEpoch: 5, FetchOffset: 120, LogStartOffset: -1, PartitionMaxBytes: 1 << 20},
					{Partition: 2, CurrentLeaderEpoch: -1, FetchOffset: 0, LogStartOffset: -1, PartitionMaxBytes: 512},
				}},
				{Name: "beta", TopicID: uuid(100), Partitions: []FetchPartition{{Partition: 9, CurrentLeaderEpoch: 1, FetchOffset: 1 << 40, LogStartOffset: 7, PartitionMaxBytes: 1}}},
			},
		}
		for _, v := range versions(KeyFetch) {
			k := kmsg.NewPtrFetchRequest()
			checkRequest(t, v, ours, k)
			gotReplica := k.ReplicaID
			if v >= 15 {
				gotReplica = k.ReplicaState.ID
			}
			if gotReplica != replica || k.MaxWaitMillis != 100 || k.MinBytes != 1 || k.MaxBytes != 10<<20 || k.IsolationLevel != 1 {
				t.Fatalf("v%d: header fields %+v", v, k)
			}
			if v >= 7 && (k.SessionID != 77 || k.SessionEpoch != 5 || len(k.ForgottenTopics) != 2) {
				t.Fatalf("v%d: session %d/%d, %d forgotten topics", v, k.SessionID, k.SessionEpoch, len(k.ForgottenTopics))
			}
			for i, ft := range ours.ForgottenTopics {
				if v < 7 {
					break
				}
				kf := k.ForgottenTopics[i]
				if v < 13 && (kf.Topic != ft.Name || kf.TopicID != [16]byte{}) || v >= 13 && (kf.Topic != "" || kf.TopicID != ft.TopicID) ||
					fmt.Sprint(kf.Partitions) != fmt.Sprint(ft.Partitions) && len(ft.Partitions) > 0 || len(kf.Partitions) != len(ft.Partitions) {
					t.Fatalf("v%d: forgotten topic %q %x %v, want %+v", v, kf.Topic, kf.TopicID, kf.Partitions, ft)
				}
			}
			if v >= 11 && k.Rack != "rack-a" {
				t.Fatalf("v%d: rack %q", v, k.Rack)
			}
			if len(k.Topics) != len(ours.Topics) {
				t.Fatalf("v%d: %d topics", v, len(k.Topics))
			}
			for i, tp := range ours.Topics {
				kt := k.Topics[i]
				if v < 13 && (kt.Topic != tp.Name || kt.TopicID != [16]byte{}) || v >= 13 && (kt.Topic != "" || kt.TopicID != tp.TopicID) {
					t.Fatalf("v%d: topic %q %x", v, kt.Topic, kt.TopicID)
				}
				for j, p := range tp.Partitions {
					kp := kt.Partitions[j]
					want := p
					if v < 9 {
						want.CurrentLeaderEpoch = -1
					}
					if v < 5 {
						want.LogStartOffset = -1
					}
					got := FetchPartition{Partition: kp.Partition, CurrentLeaderEpoch: kp.CurrentLeaderEpoch, FetchOffset: kp.FetchOffset, LogStartOffset: kp.LogStartOffset, PartitionMaxBytes: kp.PartitionMaxBytes}
					if got != want || kp.LastFetchedEpoch != -1 {
						t.Fatalf("v%d: partition %+v, want %+v", v, got, want)
					}
				}
			}
		}
	}
}

func TestSaslRequests(t *testing.T) {
	h := &SaslHandshakeRequest{Mechanism: "SCRAM-SHA-512"}
	kh := kmsg.NewPtrSASLHandshakeRequest()
	checkRequest(t, 1, h, kh)
	if kh.Mechanism != h.Mechanism {
		t.Fatalf("mechanism %q", kh.Mechanism)
	}
	for _, auth := range [][]byte{nil, []byte("\x00user\x00pass")} {
		a := &SaslAuthenticateRequest{AuthBytes: auth}
		for _, v := range versions(KeySaslAuthenticate) {
			ka := kmsg.NewPtrSASLAuthenticateRequest()
			checkRequest(t, v, a, ka)
			if !bytes.Equal(ka.SASLAuthBytes, auth) || ka.SASLAuthBytes == nil {
				t.Fatalf("v%d: auth bytes %q", v, ka.SASLAuthBytes)
			}
		}
	}
}

func TestFetchResponse(t *testing.T) {
	for _, v := range versions(KeyFetch) {
		body := encodeKmsg(sampleFetch(), v)
		var ours FetchResponse
		if err := ours.Decode(body, v); err != nil {
			t.Fatalf("v%d: %v", v, err)
		}
		k := kmsg.NewPtrFetchResponse()
		k.Version = v
		if err := k.ReadFrom(body); err != nil {
			t.Fatalf("v%d: kmsg: %v", v, err)
		}
		equalNormalized(t, "fetch response", ours, fetchFromKmsg(k))

		// Independent of kmsg: the values the sample set are there.
		if len(ours.Topics) != 2 || len(ours.Topics[1].Partitions) != 3 || ours.ThrottleMillis != 17 {
			t.Fatalf("v%d: shape %+v", v, ours)
		}
		if v >= 7 && ours.SessionID != 4242 {
			t.Fatalf("v%d: session id %d", v, ours.SessionID)
		}
		if v < 13 && ours.Topics[1].Name != "beta-topic" || v >= 13 && ours.Topics[1].TopicID != uuid(32) {
			t.Fatalf("v%d: topic identity %q %x", v, ours.Topics[1].Name, ours.Topics[1].TopicID)
		}
		p0, p1, p2 := ours.Topics[1].Partitions[0], ours.Topics[1].Partitions[1], ours.Topics[1].Partitions[2]
		if string(p0.Records) != "record batch bytes of beta-topic" || p1.Records != nil || p2.Records == nil || len(p2.Records) != 0 {
			t.Fatalf("v%d: records %q %v %v", v, p0.Records, p1.Records, p2.Records)
		}
		if p1.HighWatermark != 1001 || p1.LastStableOffset != 901 || len(p1.AbortedTransactions) != 2 || p1.AbortedTransactions[1] != (record.AbortedTransaction{ProducerID: 55, FirstOffset: 501}) {
			t.Fatalf("v%d: partition 1 %+v", v, p1)
		}
		if p0.AbortedTransactions != nil {
			t.Fatalf("v%d: null aborted transactions decoded as %v", v, p0.AbortedTransactions)
		}
		if (v >= 5) != (p2.LogStartOffset == 12) || (v >= 11) != (p2.PreferredReadReplica == 2) {
			t.Fatalf("v%d: version-gated fields %+v", v, p2)
		}

		// Records alias the body: no copy.
		i := bytes.Index(body, []byte("record batch bytes of beta-topic"))
		body[i] = 'R'
		if p0.Records[0] != 'R' {
			t.Fatalf("v%d: Records is a copy, not a sub-slice of the body", v)
		}
	}
}

func TestMetadataResponse(t *testing.T) {
	for _, v := range versions(KeyMetadata) {
		body := encodeKmsg(sampleMetadata(), v)
		var ours MetadataResponse
		if err := ours.Decode(body, v); err != nil {
			t.Fatalf("v%d: %v", v, err)
		}
		k := kmsg.NewPtrMetadataResponse()
		k.Version = v
		if err := k.ReadFrom(body); err != nil {
			t.Fatalf("v%d: kmsg: %v", v, err)
		}
		equalNormalized(t, "metadata response", ours, metadataFromKmsg(k))
		if len(ours.Brokers) != 2 || ours.Brokers[1].Host != "host-b" || ours.Brokers[1].Rack != "rack-1" || ours.ControllerID != 1 {
			t.Fatalf("v%d: brokers %+v", v, ours)
		}
		if (v >= 2) != (ours.ClusterID == "cluster-xyz") {
			t.Fatalf("v%d: cluster id %q", v, ours.ClusterID)
		}
		tp := ours.Topics[1]
		if tp.Name != "payments" || tp.ErrorCode != ErrTopicAuthorizationFailed || (v >= 10) != (tp.TopicID == uuid(2)) {
			t.Fatalf("v%d: topic %+v", v, tp)
		}
		p := tp.Partitions[1]
		if p.Partition != 1 || p.Leader != 1 || len(p.Replicas) != 3 || len(p.ISR) != 1 || (v >= 7) != (p.LeaderEpoch == 5) {
			t.Fatalf("v%d: partition %+v", v, p)
		}
	}
}

func TestMetadataResponseNullTopicName(t *testing.T) {
	k := sampleMetadata()
	k.Topics[0].Topic = nil
	body := encodeKmsg(k, 12)
	var ours MetadataResponse
	if err := ours.Decode(body, 12); err != nil {
		t.Fatal(err)
	}
	if ours.Topics[0].Name != "" || ours.Topics[0].TopicID != uuid(1) {
		t.Fatalf("topic %+v", ours.Topics[0])
	}
}

func TestListOffsetsResponse(t *testing.T) {
	for _, v := range versions(KeyListOffsets) {
		body := encodeKmsg(sampleListOffsets(), v)
		var ours ListOffsetsResponse
		if err := ours.Decode(body, v); err != nil {
			t.Fatalf("v%d: %v", v, err)
		}
		k := kmsg.NewPtrListOffsetsResponse()
		k.Version = v
		if err := k.ReadFrom(body); err != nil {
			t.Fatalf("v%d: kmsg: %v", v, err)
		}
		equalNormalized(t, "list offsets response", ours, listOffsetsFromKmsg(k))
		p := ours.Topics[1].Partitions[1]
		want := ListOffsetsPartitionResponse{Partition: 1, ErrorCode: ErrOffsetNotAvailable, Timestamp: 1700000000001, Offset: 12346, LeaderEpoch: -1}
		if v >= 4 {
			want.LeaderEpoch = 6
		}
		if ours.Topics[1].Name != "t1" || p != want {
			t.Fatalf("v%d: partition %+v, want %+v", v, p, want)
		}
	}
}

func TestApiVersionsResponse(t *testing.T) {
	for _, v := range versions(KeyApiVersions) {
		body := encodeKmsg(sampleApiVersions(), v)
		var ours ApiVersionsResponse
		if err := ours.Decode(body, v); err != nil {
			t.Fatalf("v%d: %v", v, err)
		}
		k := kmsg.NewPtrApiVersionsResponse()
		k.Version = v
		if err := k.ReadFrom(body); err != nil {
			t.Fatalf("v%d: kmsg: %v", v, err)
		}
		equalNormalized(t, "api versions response", ours, apiVersionsFromKmsg(k))
		if len(ours.APIs) != 4 || ours.APIs[2] != (APIVersion{KeyMetadata, 0, 15}) || (v >= 1) != (ours.ThrottleMillis == 2) ||
			(v >= 3) != (len(ours.FinalizedFeatures) == 2 && ours.FinalizedFeatures[1] == Feature{"group.version", 1, 13}) {
			t.Fatalf("v%d: %+v", v, ours)
		}
	}
}

func TestApiVersionsResponseUnsupportedVersion(t *testing.T) {
	// A broker that does not know our ApiVersions version answers in v0.
	k := kmsg.NewPtrApiVersionsResponse()
	k.ErrorCode = ErrUnsupportedVersion
	a := kmsg.NewApiVersionsResponseApiKey()
	a.ApiKey, a.MinVersion, a.MaxVersion = KeyApiVersions, 0, 2
	k.ApiKeys = append(k.ApiKeys, a)
	for _, n := range []int{0, 1} {
		k.ApiKeys = k.ApiKeys[:n]
		body := encodeKmsg(k, 0)
		var ours ApiVersionsResponse
		if err := ours.Decode(body, 3); err != nil {
			t.Fatalf("%d apis: %v", n, err)
		}
		if ours.ErrorCode != ErrUnsupportedVersion || len(ours.APIs) != n || n == 1 && ours.APIs[0] != (APIVersion{KeyApiVersions, 0, 2}) {
			t.Fatalf("%d apis: %+v", n, ours)
		}
	}
}

func TestSaslResponses(t *testing.T) {
	body := encodeKmsg(sampleSaslHandshake(), 1)
	var h SaslHandshakeResponse
	if err := h.Decode(body, 1); err != nil {
		t.Fatal(err)
	}
	if h.ErrorCode != ErrUnsupportedSaslMechanism || len(h.Mechanisms) != 3 || h.Mechanisms[2] != "SCRAM-SHA-512" {
		t.Fatalf("handshake %+v", h)
	}
	for _, v := range versions(KeySaslAuthenticate) {
		body := encodeKmsg(sampleSaslAuthenticate(), v)
		var a SaslAuthenticateResponse
		if err := a.Decode(body, v); err != nil {
			t.Fatalf("v%d: %v", v, err)
		}
		want := SaslAuthenticateResponse{ErrorCode: ErrSaslAuthenticationFailed, ErrorMessage: "bad password", AuthBytes: []byte("server-final-message")}
		if v >= 1 {
			want.SessionLifetimeMillis = 3600000
		}
		equalNormalized(t, "sasl authenticate", a, want)
	}
}

func TestDecodeRejectsBadInput(t *testing.T) {
	type decoder interface {
		Decode(body []byte, version int16) error
	}
	cases := []struct {
		name string
		d    decoder
		key  int16
		body func(v int16) []byte
	}{
		{"fetch", &FetchResponse{}, KeyFetch, func(v int16) []byte { return encodeKmsg(sampleFetch(), v) }},
		{"metadata", &MetadataResponse{}, KeyMetadata, func(v int16) []byte { return encodeKmsg(sampleMetadata(), v) }},
		{"list offsets", &ListOffsetsResponse{}, KeyListOffsets, func(v int16) []byte { return encodeKmsg(sampleListOffsets(), v) }},
		{"api versions", &ApiVersionsResponse{}, KeyApiVersions, func(v int16) []byte { return encodeKmsg(sampleApiVersions(), v) }},
		{"sasl authenticate", &SaslAuthenticateResponse{}, KeySaslAuthenticate, func(v int16) []byte { return encodeKmsg(sampleSaslAuthenticate(), v) }},
		{"sasl handshake", &SaslHandshakeResponse{}, KeySaslHandshake, func(v int16) []byte { return encodeKmsg(sampleSaslHandshake(), v) }},
		{"offset commit", &OffsetCommitResponse{}, KeyOffsetCommit, func(v int16) []byte { return encodeKmsg(sampleOffsetCommit(), v) }},
		{"offset fetch", &OffsetFetchResponse{}, KeyOffsetFetch, func(v int16) []byte { return encodeKmsg(sampleOffsetFetch(), v) }},
		{"find coordinator", &FindCoordinatorResponse{}, KeyFindCoordinator, func(v int16) []byte { return encodeKmsg(sampleFindCoordinator(false), v) }},
		{"join group", &JoinGroupResponse{}, KeyJoinGroup, func(v int16) []byte { return encodeKmsg(sampleJoinGroup(false), v) }},
		{"sync group", &SyncGroupResponse{}, KeySyncGroup, func(v int16) []byte { return encodeKmsg(sampleSyncGroup(false), v) }},
		{"heartbeat", &HeartbeatResponse{}, KeyHeartbeat, func(v int16) []byte { return encodeKmsg(sampleHeartbeat(), v) }},
		{"leave group", &LeaveGroupResponse{}, KeyLeaveGroup, func(v int16) []byte { return encodeKmsg(sampleLeaveGroup(), v) }},
		{"consumer group heartbeat", &ConsumerGroupHeartbeatResponse{}, KeyConsumerGroupHeartbeat, func(v int16) []byte { return encodeKmsg(sampleConsumerGroupHeartbeat(false), v) }},
		{"produce", &ProduceResponse{}, KeyProduce, func(v int16) []byte { return encodeKmsg(sampleProduce(), v) }},
		{"init producer id", &InitProducerIDResponse{}, KeyInitProducerID, func(v int16) []byte { return encodeKmsg(sampleInitProducerID(), v) }},
	}
	for _, c := range cases {
		vr := Implemented[c.key]
		if err := c.d.Decode(c.body(vr.Max), vr.Max+1); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: version beyond range: %v", c.name, err)
		}
		for _, v := range versions(c.key) {
			body := c.body(v)
			// Every truncation fails with ErrShort or ErrInvalid.
			for n := 0; n < len(body); n++ {
				err := c.d.Decode(body[:n], v)
				if err == nil {
					t.Fatalf("%s v%d: truncated to %d of %d bytes decoded without error", c.name, v, n, len(body))
				}
				if !errors.Is(err, ErrShort) && !errors.Is(err, ErrInvalid) {
					t.Fatalf("%s v%d: truncated: error %v wraps neither sentinel", c.name, v, err)
				}
			}
			if err := c.d.Decode(append(body, 0), v); !errors.Is(err, ErrInvalid) {
				t.Fatalf("%s v%d: trailing byte: %v", c.name, v, err)
			}
		}
	}
}

func TestFetchResponseLyingArrayLength(t *testing.T) {
	// v11: throttle, error, session, then a topic array claiming 2^31-1 topics.
	body := AppendInt32(nil, 0)
	body = AppendInt16(body, 0)
	body = AppendInt32(body, 0)
	body = AppendInt32(body, 1<<31-1)
	body = append(body, make([]byte, 64)...)
	var r FetchResponse
	if err := r.Decode(body, 11); !errors.Is(err, ErrInvalid) {
		t.Fatalf("lying topic count: %v", err)
	}
	// v12 (flexible): a compact topic count of 2^32-2.
	body = AppendInt32(nil, 0)
	body = AppendInt16(body, 0)
	body = AppendInt32(body, 0)
	body = AppendUvarint(body, 1<<32-1)
	body = append(body, make([]byte, 64)...)
	if err := r.Decode(body, 12); !errors.Is(err, ErrInvalid) {
		t.Fatalf("lying compact topic count: %v", err)
	}
	// v12 (flexible): a compact records length beyond the input.
	p := kmsg.NewFetchResponseTopicPartition()
	p.RecordBatches = []byte("abcd")
	k := kmsg.NewPtrFetchResponse()
	tp := kmsg.NewFetchResponseTopic()
	tp.Topic = "x"
	tp.Partitions = append(tp.Partitions, p)
	k.Topics = append(k.Topics, tp)
	good := encodeKmsg(k, 12)
	i := bytes.Index(good, []byte("abcd"))
	bad := bytes.Clone(good)
	bad[i-1] = 0x7f // compact length 126 with 4 bytes of records
	if err := r.Decode(bad, 12); !errors.Is(err, ErrShort) {
		t.Fatalf("lying records length: %v", err)
	}
}

func TestFetchResponseAllocationBounded(t *testing.T) {
	// A 1 MiB v11 response with one topic whose partition count is claimed;
	// the real (all-zero) partitions take 42 bytes each.
	const size = 1 << 20
	hostile := func(partitions int) []byte {
		body := AppendInt32(nil, 0) // throttle
		body = AppendInt16(body, 0)
		body = AppendInt32(body, 0) // session
		body = AppendInt32(body, 1) // one topic
		body = AppendString(body, "")
		body = AppendInt32(body, int32(partitions))
		return append(body, make([]byte, size-len(body))...)
	}
	decode := func(body []byte) (uint64, error) {
		var r FetchResponse
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		err := r.Decode(body, 11)
		runtime.ReadMemStats(&after)
		return after.TotalAlloc - before.TotalAlloc, err
	}
	// As many partitions as bytes remain: rejected before any slice is made
	// (a partition takes at least 30 bytes).
	if alloc, err := decode(hostile(size - 20)); !errors.Is(err, ErrInvalid) || alloc > size {
		t.Fatalf("byte-count partitions: err = %v, allocated %d bytes", err, alloc)
	}
	// As many as 30-byte partitions fit: decoding runs out of input, and
	// what it allocated on the way stays a small multiple of the input.
	if alloc, err := decode(hostile((size - 20) / 30)); !errors.Is(err, ErrShort) || alloc > 8*size {
		t.Fatalf("30-byte partitions: err = %v, allocated %d bytes", err, alloc)
	}
}

// TestMinimalElements decodes responses made of many minimal elements (empty
// names, null or empty arrays, null records) at every version. The decoders
// reject an array whose claimed length cannot fit its minimum element size in
// the remaining input; with 50 minimal elements as the last array of a
// response, a minimum set even one byte too high would reject these
// well-formed responses.
func TestMinimalElements(t *testing.T) {
	const n = 50
	type decoder interface {
		Decode(body []byte, version int16) error
	}
	type tc struct {
		name string
		key  int16
		k    kmsg.Response
		d    decoder
	}
	var cases []tc

	fetchTopics, fetchParts := kmsg.NewPtrFetchResponse(), kmsg.NewPtrFetchResponse()
	fetchParts.Topics = append(fetchParts.Topics, kmsg.NewFetchResponseTopic())
	metaBrokers, metaTopics, metaParts := kmsg.NewPtrMetadataResponse(), kmsg.NewPtrMetadataResponse(), kmsg.NewPtrMetadataResponse()
	metaParts.Topics = append(metaParts.Topics, kmsg.NewMetadataResponseTopic())
	loTopics, loParts := kmsg.NewPtrListOffsetsResponse(), kmsg.NewPtrListOffsetsResponse()
	loParts.Topics = append(loParts.Topics, kmsg.NewListOffsetsResponseTopic())
	apis := kmsg.NewPtrApiVersionsResponse()
	mechs := kmsg.NewPtrSASLHandshakeResponse()
	ocTopics, ocParts := kmsg.NewPtrOffsetCommitResponse(), kmsg.NewPtrOffsetCommitResponse()
	ocParts.Topics = append(ocParts.Topics, kmsg.NewOffsetCommitResponseTopic())
	// Topics serves below v8, Groups from v8.
	ofTopics, ofParts, ofGroups := kmsg.NewPtrOffsetFetchResponse(), kmsg.NewPtrOffsetFetchResponse(), kmsg.NewPtrOffsetFetchResponse()
	ofTopics.Groups = append(ofTopics.Groups, kmsg.NewOffsetFetchResponseGroup())
	ofParts.Topics = append(ofParts.Topics, kmsg.NewOffsetFetchResponseTopic())
	ofParts.Groups = append(ofParts.Groups, kmsg.NewOffsetFetchResponseGroup())
	ofParts.Groups[0].Topics = append(ofParts.Groups[0].Topics, kmsg.NewOffsetFetchResponseGroupTopic())
	coordinators := kmsg.NewPtrFindCoordinatorResponse()
	joinMembers, leaveMembers := kmsg.NewPtrJoinGroupResponse(), kmsg.NewPtrLeaveGroupResponse()
	cghTopics := kmsg.NewPtrConsumerGroupHeartbeatResponse()
	cghTopics.Assignment = new(kmsg.ConsumerGroupHeartbeatResponseAssignment)
	// Produce: the partitions' record errors come before their tags, the
	// node endpoints last.
	produceTopics, produceParts, produceErrors, produceNodes := kmsg.NewPtrProduceResponse(), kmsg.NewPtrProduceResponse(), kmsg.NewPtrProduceResponse(), kmsg.NewPtrProduceResponse()
	produceParts.Topics = append(produceParts.Topics, kmsg.NewProduceResponseTopic())
	produceErrors.Topics = append(produceErrors.Topics, kmsg.NewProduceResponseTopic())
	produceErrors.Topics[0].Partitions = append(produceErrors.Topics[0].Partitions, kmsg.NewProduceResponseTopicPartition())
	for i := 0; i < n; i++ {
		produceTopics.Topics = append(produceTopics.Topics, kmsg.NewProduceResponseTopic())
		produceParts.Topics[0].Partitions = append(produceParts.Topics[0].Partitions, kmsg.NewProduceResponseTopicPartition())
		produceErrors.Topics[0].Partitions[0].ErrorRecords = append(produceErrors.Topics[0].Partitions[0].ErrorRecords, kmsg.NewProduceResponseTopicPartitionErrorRecord())
		produceNodes.Brokers = append(produceNodes.Brokers, kmsg.NewProduceResponseBroker())
		ocTopics.Topics = append(ocTopics.Topics, kmsg.NewOffsetCommitResponseTopic())
		ocParts.Topics[0].Partitions = append(ocParts.Topics[0].Partitions, kmsg.NewOffsetCommitResponseTopicPartition())
		ofTopics.Topics = append(ofTopics.Topics, kmsg.NewOffsetFetchResponseTopic())
		ofTopics.Groups[0].Topics = append(ofTopics.Groups[0].Topics, kmsg.NewOffsetFetchResponseGroupTopic())
		ofParts.Topics[0].Partitions = append(ofParts.Topics[0].Partitions, kmsg.NewOffsetFetchResponseTopicPartition())
		ofParts.Groups[0].Topics[0].Partitions = append(ofParts.Groups[0].Topics[0].Partitions, kmsg.NewOffsetFetchResponseGroupTopicPartition())
		ofGroups.Groups = append(ofGroups.Groups, kmsg.NewOffsetFetchResponseGroup())
		coordinators.Coordinators = append(coordinators.Coordinators, kmsg.NewFindCoordinatorResponseCoordinator())
		joinMembers.Members = append(joinMembers.Members, kmsg.NewJoinGroupResponseMember())
		leaveMembers.Members = append(leaveMembers.Members, kmsg.NewLeaveGroupResponseMember())
		cghTopics.Assignment.Topics = append(cghTopics.Assignment.Topics, kmsg.NewConsumerGroupHeartbeatResponseAssignmentTopic())
		fetchTopics.Topics = append(fetchTopics.Topics, kmsg.NewFetchResponseTopic())
		fetchParts.Topics[0].Partitions = append(fetchParts.Topics[0].Partitions, kmsg.NewFetchResponseTopicPartition())
		metaBrokers.Brokers = append(metaBrokers.Brokers, kmsg.NewMetadataResponseBroker())
		mt := kmsg.NewMetadataResponseTopic()
		mt.Topic = kmsg.StringPtr("")
		metaTopics.Topics = append(metaTopics.Topics, mt)
		metaParts.Topics[0].Partitions = append(metaParts.Topics[0].Partitions, kmsg.NewMetadataResponseTopicPartition())
		loTopics.Topics = append(loTopics.Topics, kmsg.NewListOffsetsResponseTopic())
		loParts.Topics[0].Partitions = append(loParts.Topics[0].Partitions, kmsg.NewListOffsetsResponseTopicPartition())
		apis.ApiKeys = append(apis.ApiKeys, kmsg.NewApiVersionsResponseApiKey())
		mechs.SupportedMechanisms = append(mechs.SupportedMechanisms, "")
	}
	// Metadata topics are followed by nothing but ClusterAuthorizedOperations
	// and tags, brokers by the cluster id, controller and topics: keep the
	// topics empty in metaBrokers so the broker array is nearly last.
	cases = append(cases,
		tc{"fetch topics", KeyFetch, fetchTopics, &FetchResponse{}},
		tc{"fetch partitions", KeyFetch, fetchParts, &FetchResponse{}},
		tc{"metadata brokers", KeyMetadata, metaBrokers, &MetadataResponse{}},
		tc{"metadata topics", KeyMetadata, metaTopics, &MetadataResponse{}},
		tc{"metadata partitions", KeyMetadata, metaParts, &MetadataResponse{}},
		tc{"list offsets topics", KeyListOffsets, loTopics, &ListOffsetsResponse{}},
		tc{"list offsets partitions", KeyListOffsets, loParts, &ListOffsetsResponse{}},
		tc{"api versions", KeyApiVersions, apis, &ApiVersionsResponse{}},
		tc{"sasl mechanisms", KeySaslHandshake, mechs, &SaslHandshakeResponse{}},
		tc{"offset commit topics", KeyOffsetCommit, ocTopics, &OffsetCommitResponse{}},
		tc{"offset commit partitions", KeyOffsetCommit, ocParts, &OffsetCommitResponse{}},
		tc{"offset fetch topics", KeyOffsetFetch, ofTopics, &OffsetFetchResponse{}},
		tc{"offset fetch partitions", KeyOffsetFetch, ofParts, &OffsetFetchResponse{}},
		tc{"offset fetch groups", KeyOffsetFetch, ofGroups, &OffsetFetchResponse{}},
		tc{"find coordinator coordinators", KeyFindCoordinator, coordinators, &FindCoordinatorResponse{}},
		tc{"join group members", KeyJoinGroup, joinMembers, &JoinGroupResponse{}},
		tc{"leave group members", KeyLeaveGroup, leaveMembers, &LeaveGroupResponse{}},
		tc{"consumer group heartbeat assignment", KeyConsumerGroupHeartbeat, cghTopics, &ConsumerGroupHeartbeatResponse{}},
		tc{"produce topics", KeyProduce, produceTopics, &ProduceResponse{}},
		tc{"produce partitions", KeyProduce, produceParts, &ProduceResponse{}},
		tc{"produce record errors", KeyProduce, produceErrors, &ProduceResponse{}},
		tc{"produce node endpoints", KeyProduce, produceNodes, &ProduceResponse{}},
	)
	for _, c := range cases {
		for _, v := range versions(c.key) {
			if err := c.d.Decode(encodeKmsg(c.k, v), v); err != nil {
				t.Errorf("%s v%d: %v", c.name, v, err)
			}
		}
	}
	var r FetchResponse
	if err := r.Decode(encodeKmsg(fetchParts, 16), 16); err != nil || len(r.Topics[0].Partitions) != n {
		t.Fatalf("fetch v16: %v, %+v", err, r)
	}
}
