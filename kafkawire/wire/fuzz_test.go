package wire

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

var updateSeeds = flag.Bool("update-seeds", false, "rewrite the fuzz seed corpora in testdata/fuzz from kmsg-encoded responses")

// checkDecodeErr fails unless err is nil or wraps one of the sentinels.
func checkDecodeErr(t *testing.T, err error) {
	t.Helper()
	if err != nil && !errors.Is(err, ErrShort) && !errors.Is(err, ErrInvalid) {
		t.Fatalf("error wraps neither ErrShort nor ErrInvalid: %v", err)
	}
}

// The fuzz targets decode arbitrary bytes at a version in range: the decoder
// must not panic, its errors must wrap ErrShort or ErrInvalid, and whenever
// it succeeds kmsg must read the same fields. kmsg only runs on inputs our
// decoder accepted: its tag loops are not bounded by the input, so a lying
// tag count would make it spin for seconds.

func FuzzFetchResponse(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte, version int16) {
		v := clampVersion(KeyFetch, version)
		var ours FetchResponse
		err := ours.Decode(data, v)
		checkDecodeErr(t, err)
		k := kmsg.NewPtrFetchResponse()
		k.Version = v
		if err == nil && k.ReadFrom(data) == nil {
			equalNormalized(t, "fetch response", ours, fetchFromKmsg(k))
		}
	})
}

func FuzzMetadataResponse(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte, version int16) {
		v := clampVersion(KeyMetadata, version)
		var ours MetadataResponse
		err := ours.Decode(data, v)
		checkDecodeErr(t, err)
		k := kmsg.NewPtrMetadataResponse()
		k.Version = v
		if err == nil && k.ReadFrom(data) == nil {
			equalNormalized(t, "metadata response", ours, metadataFromKmsg(k))
		}
	})
}

func FuzzListOffsetsResponse(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte, version int16) {
		v := clampVersion(KeyListOffsets, version)
		var ours ListOffsetsResponse
		err := ours.Decode(data, v)
		checkDecodeErr(t, err)
		k := kmsg.NewPtrListOffsetsResponse()
		k.Version = v
		if err == nil && k.ReadFrom(data) == nil {
			equalNormalized(t, "list offsets response", ours, listOffsetsFromKmsg(k))
		}
	})
}

func FuzzApiVersionsResponse(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte, version int16) {
		v := clampVersion(KeyApiVersions, version)
		var ours ApiVersionsResponse
		err := ours.Decode(data, v)
		checkDecodeErr(t, err)
		k := kmsg.NewPtrApiVersionsResponse()
		k.Version = v
		if err != nil || ours.ErrorCode == ErrUnsupportedVersion {
			return // the v0 fallback has no kmsg counterpart at version v
		}
		if k.ReadFrom(data) == nil {
			equalNormalized(t, "api versions response", ours, apiVersionsFromKmsg(k))
		}
	})
}

func FuzzSaslResponses(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte, version int16) {
		var h SaslHandshakeResponse
		err := h.Decode(data, 1)
		checkDecodeErr(t, err)
		kh := kmsg.NewPtrSASLHandshakeResponse()
		kh.Version = 1
		if err == nil && kh.ReadFrom(data) == nil {
			equalNormalized(t, "sasl handshake", h, SaslHandshakeResponse{ErrorCode: kh.ErrorCode, Mechanisms: kh.SupportedMechanisms})
		}

		v := clampVersion(KeySaslAuthenticate, version)
		var a SaslAuthenticateResponse
		err = a.Decode(data, v)
		checkDecodeErr(t, err)
		ka := kmsg.NewPtrSASLAuthenticateResponse()
		ka.Version = v
		if err == nil && ka.ReadFrom(data) == nil {
			want := SaslAuthenticateResponse{ErrorCode: ka.ErrorCode, ErrorMessage: deref(ka.ErrorMessage), AuthBytes: ka.SASLAuthBytes, SessionLifetimeMillis: ka.SessionLifetimeMillis}
			if len(a.AuthBytes) == 0 && len(want.AuthBytes) == 0 {
				// A null in this non-nullable field: kmsg reads it as
				// empty, we as nil; both mean "no bytes".
				a.AuthBytes, want.AuthBytes = nil, nil
			}
			equalNormalized(t, "sasl authenticate", a, want)
		}
	})
}

// fuzzResponse decodes data at the version in range of key into a T and,
// if that succeeds and kmsg's k reads data too, checks that conv(k) holds
// the same values, after fix (if not nil) has run on both. It returns both
// and whether they were compared, for checks normalizing would hide.
func fuzzResponse[T any, K kmsg.Response](t *testing.T, what string, key int16, data []byte, version int16, k K, conv func(K) T, fix func(*T)) (ours, want T, ok bool) {
	t.Helper()
	v := clampVersion(key, version)
	err := any(&ours).(interface {
		Decode([]byte, int16) error
	}).Decode(data, v)
	checkDecodeErr(t, err)
	k.SetVersion(v)
	if err != nil || k.ReadFrom(data) != nil {
		return ours, want, false
	}
	want = conv(k)
	if fix != nil {
		fix(&ours)
		fix(&want)
	}
	equalNormalized(t, what, ours, want)
	return ours, want, true
}

// nilIfEmpty maps empty bytes to nil: kmsg reads a null in a non-nullable
// bytes field as empty, we as nil; both mean "no bytes".
func nilIfEmpty(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b
}

func FuzzOffsetCommitResponse(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte, version int16) {
		fuzzResponse(t, "offset commit response", KeyOffsetCommit, data, version, kmsg.NewPtrOffsetCommitResponse(), offsetCommitFromKmsg, nil)
	})
}

func FuzzOffsetFetchResponse(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte, version int16) {
		fuzzResponse(t, "offset fetch response", KeyOffsetFetch, data, version, kmsg.NewPtrOffsetFetchResponse(), offsetFetchFromKmsg, nil)
	})
}

func FuzzFindCoordinatorResponse(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte, version int16) {
		fuzzResponse(t, "find coordinator response", KeyFindCoordinator, data, version, kmsg.NewPtrFindCoordinatorResponse(), findCoordinatorFromKmsg, nil)
	})
}

func FuzzJoinGroupResponse(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte, version int16) {
		fuzzResponse(t, "join group response", KeyJoinGroup, data, version, kmsg.NewPtrJoinGroupResponse(), joinGroupFromKmsg, func(r *JoinGroupResponse) {
			for i := range r.Members {
				r.Members[i].Metadata = nilIfEmpty(r.Members[i].Metadata)
			}
		})
	})
}

// FuzzGroupResponses covers the small classic group responses: SyncGroup,
// Heartbeat and LeaveGroup.
func FuzzGroupResponses(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte, version int16) {
		fuzzResponse(t, "sync group response", KeySyncGroup, data, version, kmsg.NewPtrSyncGroupResponse(), syncGroupFromKmsg, func(r *SyncGroupResponse) {
			r.Assignment = nilIfEmpty(r.Assignment)
		})
		fuzzResponse(t, "heartbeat response", KeyHeartbeat, data, version, kmsg.NewPtrHeartbeatResponse(), func(k *kmsg.HeartbeatResponse) HeartbeatResponse {
			return HeartbeatResponse{ErrorCode: k.ErrorCode}
		}, nil)
		fuzzResponse(t, "leave group response", KeyLeaveGroup, data, version, kmsg.NewPtrLeaveGroupResponse(), leaveGroupFromKmsg, nil)
	})
}

func FuzzConsumerGroupHeartbeatResponse(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte, version int16) {
		ours, want, ok := fuzzResponse(t, "consumer group heartbeat response", KeyConsumerGroupHeartbeat, data, version, kmsg.NewPtrConsumerGroupHeartbeatResponse(), consumerGroupHeartbeatFromKmsg, nil)
		if ok && (ours.Assignment == nil) != (want.Assignment == nil) {
			t.Fatalf("null assignment %v, kmsg %v", ours.Assignment == nil, want.Assignment == nil)
		}
	})
}

func FuzzProduceResponse(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte, version int16) {
		fuzzResponse(t, "produce response", KeyProduce, data, version, kmsg.NewPtrProduceResponse(), produceFromKmsg, nil)
	})
}

func FuzzInitProducerIDResponse(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte, version int16) {
		fuzzResponse(t, "init producer id response", KeyInitProducerID, data, version, kmsg.NewPtrInitProducerIDResponse(), initProducerIDFromKmsg, nil)
	})
}

// FuzzConsumerProtocol decodes data as a ConsumerSubscription and as a
// ConsumerAssignment: whatever decodes must read as kmsg reads it, and
// re-encode to what decodes the same again.
func FuzzConsumerProtocol(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		var s, s2 ConsumerSubscription
		err := s.Decode(data)
		checkDecodeErr(t, err)
		var ks kmsg.ConsumerMemberMetadata
		if err == nil && ks.ReadFrom(data) == nil {
			equalNormalized(t, "subscription", s, subscriptionFromKmsg(&ks))
		}
		if err == nil {
			if err := s2.Decode(s.AppendTo(nil)); err != nil {
				t.Fatalf("re-encoded subscription: %v", err)
			}
			s.Version = min(s.Version, ConsumerProtocolMaxVersion)
			equalNormalized(t, "re-encoded subscription", s2, s)
		}

		var a, a2 ConsumerAssignment
		err = a.Decode(data)
		checkDecodeErr(t, err)
		var ka kmsg.ConsumerMemberAssignment
		if err == nil && ka.ReadFrom(data) == nil {
			equalNormalized(t, "assignment", a, assignmentFromKmsg(&ka))
		}
		if err == nil {
			if err := a2.Decode(a.AppendTo(nil)); err != nil {
				t.Fatalf("re-encoded assignment: %v", err)
			}
			a.Version = min(a.Version, ConsumerProtocolMaxVersion)
			equalNormalized(t, "re-encoded assignment", a2, a)
		}
	})
}

// TestWriteFuzzSeeds rewrites testdata/fuzz/Fuzz*/ when run with
// -update-seeds; otherwise it checks that every seed file exists and holds
// the current kmsg encoding, so a codec or sample change cannot leave the
// corpora stale.
func TestWriteFuzzSeeds(t *testing.T) {
	type seed struct {
		target string
		name   string
		data   []byte
		key    int16
		v      int16
	}
	var seeds []seed
	add := func(target, name string, key int16, enc func(v int16) []byte) {
		for _, v := range versions(key) {
			seeds = append(seeds, seed{target, fmt.Sprintf("%s-v%d", name, v), enc(v), key, v})
		}
	}
	add("FuzzFetchResponse", "kmsg", KeyFetch, func(v int16) []byte { return encodeKmsg(sampleFetch(), v) })
	add("FuzzMetadataResponse", "kmsg", KeyMetadata, func(v int16) []byte { return encodeKmsg(sampleMetadata(), v) })
	add("FuzzListOffsetsResponse", "kmsg", KeyListOffsets, func(v int16) []byte { return encodeKmsg(sampleListOffsets(), v) })
	add("FuzzApiVersionsResponse", "kmsg", KeyApiVersions, func(v int16) []byte { return encodeKmsg(sampleApiVersions(), v) })
	add("FuzzSaslResponses", "authenticate", KeySaslAuthenticate, func(v int16) []byte { return encodeKmsg(sampleSaslAuthenticate(), v) })
	add("FuzzSaslResponses", "handshake", KeySaslHandshake, func(v int16) []byte { return encodeKmsg(sampleSaslHandshake(), v) })
	add("FuzzOffsetCommitResponse", "kmsg", KeyOffsetCommit, func(v int16) []byte { return encodeKmsg(sampleOffsetCommit(), v) })
	add("FuzzOffsetFetchResponse", "kmsg", KeyOffsetFetch, func(v int16) []byte { return encodeKmsg(sampleOffsetFetch(), v) })
	add("FuzzFindCoordinatorResponse", "kmsg", KeyFindCoordinator, func(v int16) []byte { return encodeKmsg(sampleFindCoordinator(false), v) })
	add("FuzzJoinGroupResponse", "kmsg", KeyJoinGroup, func(v int16) []byte { return encodeKmsg(sampleJoinGroup(false), v) })
	add("FuzzGroupResponses", "sync", KeySyncGroup, func(v int16) []byte { return encodeKmsg(sampleSyncGroup(false), v) })
	add("FuzzGroupResponses", "heartbeat", KeyHeartbeat, func(v int16) []byte { return encodeKmsg(sampleHeartbeat(), v) })
	add("FuzzGroupResponses", "leave", KeyLeaveGroup, func(v int16) []byte { return encodeKmsg(sampleLeaveGroup(), v) })
	add("FuzzConsumerGroupHeartbeatResponse", "kmsg", KeyConsumerGroupHeartbeat, func(v int16) []byte { return encodeKmsg(sampleConsumerGroupHeartbeat(false), v) })
	add("FuzzConsumerGroupHeartbeatResponse", "null", KeyConsumerGroupHeartbeat, func(v int16) []byte { return encodeKmsg(sampleConsumerGroupHeartbeat(true), v) })
	add("FuzzProduceResponse", "kmsg", KeyProduce, func(v int16) []byte { return encodeKmsg(sampleProduce(), v) })
	add("FuzzInitProducerIDResponse", "kmsg", KeyInitProducerID, func(v int16) []byte { return encodeKmsg(sampleInitProducerID(), v) })
	// FuzzConsumerProtocol takes only bytes, the version is their first field
	// (key -1: no int16 argument).
	for v := int16(0); v <= ConsumerProtocolMaxVersion; v++ {
		seeds = append(seeds,
			seed{"FuzzConsumerProtocol", fmt.Sprintf("subscription-v%d", v), sampleSubscription(v, false).AppendTo(nil), -1, v},
			seed{"FuzzConsumerProtocol", fmt.Sprintf("assignment-v%d", v), sampleAssignment(v, false).AppendTo(nil), -1, v})
	}

	for _, s := range seeds {
		content := "go test fuzz v1\n[]byte(" + strconv.Quote(string(s.data)) + ")\n"
		if s.key >= 0 {
			// The fuzz targets map their int16 onto the implemented range
			// with clampVersion, so a seed stores the version minus the
			// range minimum.
			content += "int16(" + strconv.Itoa(int(s.v-Implemented[s.key].Min)) + ")\n"
		}
		path := filepath.Join("testdata", "fuzz", s.target, s.name)
		if *updateSeeds {
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("seed missing (run go test -run TestWriteFuzzSeeds -update-seeds): %v", err)
		}
		if string(got) != content {
			t.Fatalf("seed %s is stale (run go test -run TestWriteFuzzSeeds -update-seeds)", path)
		}
	}
}
