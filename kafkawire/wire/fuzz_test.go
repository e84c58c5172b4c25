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

	for _, s := range seeds {
		// The fuzz targets map their int16 onto the implemented range with
		// clampVersion, so a seed stores the version minus the range minimum.
		arg := s.v - Implemented[s.key].Min
		content := "go test fuzz v1\n[]byte(" + strconv.Quote(string(s.data)) + ")\nint16(" + strconv.Itoa(int(arg)) + ")\n"
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
