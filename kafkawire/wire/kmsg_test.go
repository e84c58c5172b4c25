package wire

import (
	"bytes"
	"reflect"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkaedge/kafkaedge/kafkawire/record"
)

// This file holds the kmsg cross-check helpers shared by the codec tests and
// the fuzz targets: kmsg (franz-go's generated codec) is the reference for
// which field exists at which version.

type request interface {
	Key() int16
	AppendTo(dst []byte, version int16) []byte
}

func versions(key int16) []int16 {
	vr := Implemented[key]
	var vs []int16
	for v := vr.Min; v <= vr.Max; v++ {
		vs = append(vs, v)
	}
	return vs
}

// clampVersion maps any int16 onto the implemented range of key.
func clampVersion(key, version int16) int16 {
	vr := Implemented[key]
	return vr.Min + int16(uint16(version)%uint16(vr.Max-vr.Min+1))
}

// checkRequest encodes ours at version v, decodes the body with kmsg into k,
// and checks that kmsg re-encodes the identical bytes and that the full
// request (header and body) matches kmsg's RequestFormatter.
func checkRequest(t *testing.T, v int16, ours request, k kmsg.Request) {
	t.Helper()
	if ours.Key() != k.Key() {
		t.Fatalf("Key() = %d, kmsg says %d", ours.Key(), k.Key())
	}
	k.SetVersion(v)
	body := ours.AppendTo(nil, v)
	if err := k.ReadFrom(body); err != nil {
		t.Fatalf("v%d: kmsg cannot read our request %x: %v", v, body, err)
	}
	if re := k.AppendTo(nil); !bytes.Equal(re, body) {
		t.Fatalf("v%d: kmsg re-encodes differently\nours %x\nkmsg %x", v, body, re)
	}
	if IsFlexible(k.Key(), v) != k.IsFlexible() {
		t.Fatalf("v%d: IsFlexible = %v, kmsg says %v", v, IsFlexible(k.Key(), v), k.IsFlexible())
	}
	const corr = 0x01020304
	full := AppendRequestHeader(nil, ours.Key(), v, corr, "kafkaedge")
	full = ours.AppendTo(full, v)
	want := kmsg.NewRequestFormatter(kmsg.FormatterClientID("kafkaedge")).AppendRequest(nil, k, corr)
	if !bytes.Equal(full, want[4:]) {
		t.Fatalf("v%d: header+body differ from kmsg\nours %x\nkmsg %x", v, full, want[4:])
	}
}

// normalize turns every empty slice except []byte into nil, recursively, so
// that results compare equal regardless of empty-versus-nil array handling.
func normalize(x any) any {
	v := reflect.ValueOf(x)
	c := reflect.New(v.Type()).Elem()
	c.Set(v)
	normValue(c)
	return c.Interface()
}

func normValue(v reflect.Value) {
	switch v.Kind() {
	case reflect.Slice:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			return
		}
		if v.Len() == 0 {
			v.Set(reflect.Zero(v.Type()))
			return
		}
		for i := 0; i < v.Len(); i++ {
			normValue(v.Index(i))
		}
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			normValue(v.Field(i))
		}
	}
}

func equalNormalized(t *testing.T, what string, got, want any) {
	t.Helper()
	if g, w := normalize(got), normalize(want); !reflect.DeepEqual(g, w) {
		t.Fatalf("%s mismatch\n got %+v\nwant %+v", what, g, w)
	}
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func fetchFromKmsg(k *kmsg.FetchResponse) FetchResponse {
	r := FetchResponse{ThrottleMillis: k.ThrottleMillis, ErrorCode: k.ErrorCode, SessionID: k.SessionID}
	for _, t := range k.Topics {
		ot := FetchTopicResponse{Name: t.Topic, TopicID: t.TopicID}
		for _, p := range t.Partitions {
			op := FetchPartitionResponse{
				Partition: p.Partition, ErrorCode: p.ErrorCode, HighWatermark: p.HighWatermark,
				LastStableOffset: p.LastStableOffset, LogStartOffset: p.LogStartOffset,
				PreferredReadReplica: p.PreferredReadReplica, Records: p.RecordBatches,
			}
			for _, a := range p.AbortedTransactions {
				op.AbortedTransactions = append(op.AbortedTransactions, record.AbortedTransaction{ProducerID: a.ProducerID, FirstOffset: a.FirstOffset})
			}
			ot.Partitions = append(ot.Partitions, op)
		}
		r.Topics = append(r.Topics, ot)
	}
	return r
}

func metadataFromKmsg(k *kmsg.MetadataResponse) MetadataResponse {
	r := MetadataResponse{ClusterID: deref(k.ClusterID), ControllerID: k.ControllerID}
	for _, b := range k.Brokers {
		r.Brokers = append(r.Brokers, MetadataBroker{NodeID: b.NodeID, Host: b.Host, Port: b.Port, Rack: deref(b.Rack)})
	}
	for _, t := range k.Topics {
		ot := MetadataTopic{ErrorCode: t.ErrorCode, Name: deref(t.Topic), TopicID: t.TopicID}
		for _, p := range t.Partitions {
			ot.Partitions = append(ot.Partitions, MetadataPartition{
				ErrorCode: p.ErrorCode, Partition: p.Partition, Leader: p.Leader, LeaderEpoch: p.LeaderEpoch,
				Replicas: p.Replicas, ISR: p.ISR,
			})
		}
		r.Topics = append(r.Topics, ot)
	}
	return r
}

func listOffsetsFromKmsg(k *kmsg.ListOffsetsResponse) ListOffsetsResponse {
	var r ListOffsetsResponse
	for _, t := range k.Topics {
		ot := ListOffsetsTopicResponse{Name: t.Topic}
		for _, p := range t.Partitions {
			ot.Partitions = append(ot.Partitions, ListOffsetsPartitionResponse{
				Partition: p.Partition, ErrorCode: p.ErrorCode, Timestamp: p.Timestamp, Offset: p.Offset, LeaderEpoch: p.LeaderEpoch,
			})
		}
		r.Topics = append(r.Topics, ot)
	}
	return r
}

func apiVersionsFromKmsg(k *kmsg.ApiVersionsResponse) ApiVersionsResponse {
	r := ApiVersionsResponse{ErrorCode: k.ErrorCode, ThrottleMillis: k.ThrottleMillis}
	for _, a := range k.ApiKeys {
		r.APIs = append(r.APIs, APIVersion{Key: a.ApiKey, Min: a.MinVersion, Max: a.MaxVersion})
	}
	for _, f := range k.FinalizedFeatures {
		r.FinalizedFeatures = append(r.FinalizedFeatures, Feature{Name: f.Name, Min: f.MinVersionLevel, Max: f.MaxVersionLevel})
	}
	return r
}

func uuid(b byte) [16]byte {
	var id [16]byte
	for i := range id {
		id[i] = b + byte(i)
	}
	return id
}

// sampleFetch returns a kmsg Fetch response with every field set, including
// tagged fields and unknown tags that the decoder must skip.
func sampleFetch() *kmsg.FetchResponse {
	r := kmsg.NewPtrFetchResponse()
	r.ThrottleMillis = 17
	r.ErrorCode = 0
	r.SessionID = 4242
	for ti, name := range []string{"alpha", "beta-topic"} {
		t := kmsg.NewFetchResponseTopic()
		t.Topic = name
		t.TopicID = uuid(byte(16 * (ti + 1)))
		for p := int32(0); p < 3; p++ {
			pp := kmsg.NewFetchResponseTopicPartition()
			pp.Partition = p
			pp.ErrorCode = int16(p) // 0, OFFSET_OUT_OF_RANGE, CORRUPT_MESSAGE
			pp.HighWatermark = 1000 + int64(p)
			pp.LastStableOffset = 900 + int64(p)
			pp.LogStartOffset = 10 + int64(p)
			pp.PreferredReadReplica = 2
			pp.DivergingEpoch.Epoch = 3
			pp.DivergingEpoch.EndOffset = 77
			pp.CurrentLeader.LeaderID = 1
			pp.CurrentLeader.LeaderEpoch = 9
			switch p {
			case 0:
				pp.RecordBatches = []byte("record batch bytes of " + name)
				pp.AbortedTransactions = nil
			case 1:
				pp.RecordBatches = nil
				a := kmsg.NewFetchResponseTopicPartitionAbortedTransaction()
				a.ProducerID, a.FirstOffset = 55, 501
				pp.AbortedTransactions = append(pp.AbortedTransactions, a, a)
			case 2:
				pp.RecordBatches = []byte{}
				pp.AbortedTransactions = []kmsg.FetchResponseTopicPartitionAbortedTransaction{}
				pp.UnknownTags.Set(42, []byte{1, 2, 3})
			}
			t.Partitions = append(t.Partitions, pp)
		}
		r.Topics = append(r.Topics, t)
	}
	b := kmsg.NewFetchResponseBroker()
	b.NodeID, b.Host, b.Port = 1, "broker-1", 9092
	r.Brokers = append(r.Brokers, b)
	r.UnknownTags.Set(77, []byte("unknown"))
	return r
}

func sampleMetadata() *kmsg.MetadataResponse {
	r := kmsg.NewPtrMetadataResponse()
	r.ThrottleMillis = 5
	for i := int32(0); i < 2; i++ {
		b := kmsg.NewMetadataResponseBroker()
		b.NodeID, b.Host, b.Port = i, "host-"+string(rune('a'+i)), 9092+i
		if i == 1 {
			b.Rack = kmsg.StringPtr("rack-1")
		}
		r.Brokers = append(r.Brokers, b)
	}
	r.ClusterID = kmsg.StringPtr("cluster-xyz")
	r.ControllerID = 1
	r.AuthorizedOperations = 99
	for ti, name := range []string{"orders", "payments"} {
		t := kmsg.NewMetadataResponseTopic()
		t.Topic = kmsg.StringPtr(name)
		t.TopicID = uuid(byte(ti + 1))
		t.IsInternal = ti == 1
		t.AuthorizedOperations = 31
		if ti == 1 {
			t.ErrorCode = ErrTopicAuthorizationFailed
		}
		for p := int32(0); p < 2; p++ {
			pp := kmsg.NewMetadataResponseTopicPartition()
			pp.Partition, pp.Leader, pp.LeaderEpoch = p, p%2, 4+p
			pp.Replicas = []int32{0, 1, 2}
			pp.ISR = []int32{p}
			pp.OfflineReplicas = []int32{2}
			t.Partitions = append(t.Partitions, pp)
		}
		r.Topics = append(r.Topics, t)
	}
	r.UnknownTags.Set(9, []byte{0xff})
	return r
}

func sampleListOffsets() *kmsg.ListOffsetsResponse {
	r := kmsg.NewPtrListOffsetsResponse()
	r.ThrottleMillis = 3
	for ti, name := range []string{"t0", "t1"} {
		t := kmsg.NewListOffsetsResponseTopic()
		t.Topic = name
		for p := int32(0); p < 2; p++ {
			pp := kmsg.NewListOffsetsResponseTopicPartition()
			pp.Partition = p
			pp.ErrorCode = int16(ti) * ErrOffsetNotAvailable
			pp.Timestamp = 1700000000000 + int64(p)
			pp.Offset = 12345 + int64(p)
			pp.LeaderEpoch = 6
			pp.OldStyleOffsets = []int64{1}
			t.Partitions = append(t.Partitions, pp)
		}
		r.Topics = append(r.Topics, t)
	}
	return r
}

func sampleApiVersions() *kmsg.ApiVersionsResponse {
	r := kmsg.NewPtrApiVersionsResponse()
	r.ThrottleMillis = 2
	for _, k := range []int16{KeyFetch, KeyListOffsets, KeyMetadata, KeyApiVersions} {
		a := kmsg.NewApiVersionsResponseApiKey()
		a.ApiKey, a.MinVersion, a.MaxVersion = k, 0, 12+k
		r.ApiKeys = append(r.ApiKeys, a)
	}
	f := kmsg.NewApiVersionsResponseSupportedFeature()
	f.Name, f.MinVersion, f.MaxVersion = "metadata.version", 1, 20
	r.SupportedFeatures = append(r.SupportedFeatures, f)
	r.FinalizedFeaturesEpoch = 8
	for _, name := range []string{"metadata.version", "group.version"} {
		ff := kmsg.NewApiVersionsResponseFinalizedFeature()
		ff.Name, ff.MinVersionLevel, ff.MaxVersionLevel = name, 1, int16(len(name))
		r.FinalizedFeatures = append(r.FinalizedFeatures, ff)
	}
	r.ZkMigrationReady = true
	return r
}

func sampleSaslAuthenticate() *kmsg.SASLAuthenticateResponse {
	r := kmsg.NewPtrSASLAuthenticateResponse()
	r.ErrorCode = ErrSaslAuthenticationFailed
	r.ErrorMessage = kmsg.StringPtr("bad password")
	r.SASLAuthBytes = []byte("server-final-message")
	r.SessionLifetimeMillis = 3600000
	return r
}

func sampleSaslHandshake() *kmsg.SASLHandshakeResponse {
	r := kmsg.NewPtrSASLHandshakeResponse()
	r.ErrorCode = ErrUnsupportedSaslMechanism
	r.SupportedMechanisms = []string{"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"}
	return r
}

// encodeKmsg encodes k at version v.
func encodeKmsg(k kmsg.Response, v int16) []byte {
	k.SetVersion(v)
	return k.AppendTo(nil)
}
