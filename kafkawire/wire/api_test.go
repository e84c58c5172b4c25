package wire

import (
	"bytes"
	"errors"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestNegotiate(t *testing.T) {
	cases := []struct {
		key    int16
		broker VersionRange
		want   int16
		ok     bool
	}{
		{KeyFetch, VersionRange{0, 17}, 16, true},
		{KeyFetch, VersionRange{0, 11}, 11, true},
		{KeyFetch, VersionRange{0, 3}, 0, false},
		{KeyMetadata, VersionRange{0, 8}, 8, true},
		{KeyMetadata, VersionRange{13, 13}, 0, false},
		{KeyApiVersions, VersionRange{0, 4}, 3, true},
		{KeySaslHandshake, VersionRange{0, 1}, 1, true},
		{KeySaslHandshake, VersionRange{0, 0}, 0, false},
		{KeyListOffsets, VersionRange{2, 10}, 9, true},
		{KeyProduce, VersionRange{0, 11}, 11, true}, // Kafka 3.9
		{KeyProduce, VersionRange{0, 13}, 13, true}, // Kafka 4.x, which lists v0-v2 but rejects them
		{KeyProduce, VersionRange{0, 2}, 0, false},  // no record batches
		{KeyInitProducerID, VersionRange{0, 6}, 5, true},
		{4 /* LeaderAndIsr, broker to broker */, VersionRange{0, 7}, 0, false},
	}
	for _, c := range cases {
		got, ok := Negotiate(c.key, c.broker)
		if got != c.want || ok != c.ok {
			t.Errorf("Negotiate(%d, %v) = %d, %v; want %d, %v", c.key, c.broker, got, ok, c.want, c.ok)
		}
	}
}

func TestIsFlexibleMatchesKmsg(t *testing.T) {
	for key := range Implemented {
		k := kmsg.RequestForKey(key)
		for v := int16(0); v <= 20; v++ {
			k.SetVersion(v)
			if got := IsFlexible(key, v); got != k.IsFlexible() {
				t.Errorf("IsFlexible(%d, %d) = %v, kmsg says %v", key, v, got, k.IsFlexible())
			}
		}
	}
}

func TestImplementedWithinKmsg(t *testing.T) {
	for key, vr := range Implemented {
		if max := kmsg.RequestForKey(key).MaxVersion(); vr.Max > max || vr.Min > vr.Max {
			t.Errorf("key %d: range %v beyond kmsg max %d", key, vr, max)
		}
	}
}

func TestAppendRequestHeader(t *testing.T) {
	// v1: key, version, correlation id, nullable client id.
	want := []byte{0, 1, 0, 11, 0, 0, 0, 7, 0, 3, 'c', 'l', 'i'}
	if got := AppendRequestHeader(nil, KeyFetch, 11, 7, "cli"); !bytes.Equal(got, want) {
		t.Errorf("header v1 = %x, want %x", got, want)
	}
	// v2: the client id stays a non-compact string, then an empty tag section.
	want = []byte{0, 1, 0, 12, 0xff, 0xff, 0xff, 0xff, 0, 3, 'c', 'l', 'i', 0}
	if got := AppendRequestHeader(nil, KeyFetch, 12, -1, "cli"); !bytes.Equal(got, want) {
		t.Errorf("header v2 = %x, want %x", got, want)
	}
	// ApiVersions v3 is flexible: header v2.
	if got := AppendRequestHeader([]byte{9}, KeyApiVersions, 3, 0, ""); !bytes.Equal(got, []byte{9, 0, 18, 0, 3, 0, 0, 0, 0, 0, 0, 0}) {
		t.Errorf("api versions v3 header = %x", got)
	}
}

func TestResponseBody(t *testing.T) {
	body := []byte{0xaa, 0xbb}
	cases := []struct {
		name       string
		in         []byte
		key, ver   int16
		want       []byte
		wantErrors bool
	}{
		{"non-flexible keeps all", body, KeyFetch, 11, body, false},
		{"flexible empty tags", append([]byte{0}, body...), KeyFetch, 12, body, false},
		{"flexible with tags", append([]byte{2, 1, 1, 0x55, 3, 0}, body...), KeyMetadata, 12, body, false},
		{"api versions v3 has header v0", append([]byte{0}, body...), KeyApiVersions, 3, append([]byte{0}, body...), false},
		{"sasl authenticate v2", append([]byte{0}, body...), KeySaslAuthenticate, 2, body, false},
		{"truncated tags", []byte{1, 4, 9, 0}, KeyListOffsets, 6, nil, true},
		{"empty", nil, KeyFetch, 16, nil, true},
	}
	for _, c := range cases {
		got, err := ResponseBody(c.in, c.key, c.ver)
		if c.wantErrors {
			if !errors.Is(err, ErrShort) {
				t.Errorf("%s: err = %v, want ErrShort", c.name, err)
			}
			continue
		}
		if err != nil || !bytes.Equal(got, c.want) {
			t.Errorf("%s: ResponseBody = %x, %v; want %x", c.name, got, err, c.want)
		}
	}
}

func TestResponseBodyWithKmsgHeader(t *testing.T) {
	// A full flexible response as a broker writes it: correlation id, header
	// tags, body. Stripping the id and the tags leaves a decodable body.
	for _, v := range []int16{12, 16} {
		msg := AppendInt32(nil, 77)
		msg = append(msg, 0)
		msg = append(msg, encodeKmsg(sampleFetch(), v)...)
		body, err := ResponseBody(msg[4:], KeyFetch, v)
		if err != nil {
			t.Fatal(err)
		}
		var r FetchResponse
		if err := r.Decode(body, v); err != nil {
			t.Fatalf("v%d: %v", v, err)
		}
	}
}

func TestErrorName(t *testing.T) {
	for code := int16(-1); code <= 136; code++ {
		want := kerr.ErrorForCode(code)
		name := ErrorName(code)
		if code == 0 {
			if name != "NONE" {
				t.Errorf("ErrorName(0) = %q", name)
			}
			continue
		}
		ke, ok := want.(*kerr.Error)
		if !ok {
			t.Fatalf("kerr has no error for %d", code)
		}
		exp := ke.Message
		if code == ErrNotLeaderOrFollower {
			exp = "NOT_LEADER_OR_FOLLOWER" // the protocol guide's current name
		}
		if name != exp {
			t.Errorf("ErrorName(%d) = %q, want %q", code, name, exp)
		}
	}
	for _, c := range []struct {
		code int16
		want string
	}{
		{ErrOffsetOutOfRange, "OFFSET_OUT_OF_RANGE"},
		{ErrUnknownTopicOrPartition, "UNKNOWN_TOPIC_OR_PARTITION"},
		{ErrNotLeaderOrFollower, "NOT_LEADER_OR_FOLLOWER"},
		{ErrFencedLeaderEpoch, "FENCED_LEADER_EPOCH"},
		{ErrUnknownTopicID, "UNKNOWN_TOPIC_ID"},
		{ErrInconsistentTopicID, "INCONSISTENT_TOPIC_ID"},
		{ErrSaslAuthenticationFailed, "SASL_AUTHENTICATION_FAILED"},
		{ErrOffsetMovedToTieredStorage, "OFFSET_MOVED_TO_TIERED_STORAGE"},
		{999, "UNKNOWN_ERROR_CODE_999"},
		{-2, "UNKNOWN_ERROR_CODE_-2"},
		{-32768, "UNKNOWN_ERROR_CODE_-32768"},
	} {
		if got := ErrorName(c.code); got != c.want {
			t.Errorf("ErrorName(%d) = %q, want %q", c.code, got, c.want)
		}
	}
}

func TestListOffsetsMinVersion(t *testing.T) {
	for _, tt := range []struct {
		ts   int64
		want int16
		ok   bool
	}{
		{1_700_000_000_000, 1, true}, {0, 1, true}, {TimestampLatest, 1, true}, {TimestampEarliest, 1, true},
		{TimestampMax, 7, true}, {TimestampEarliestLocal, 8, true}, {TimestampLatestTiered, 9, true},
		{-6, 0, false}, {-7, 0, false}, {-1 << 63, 0, false},
	} {
		v, ok := ListOffsetsMinVersion(tt.ts)
		if ok != tt.ok || ok && v != tt.want {
			t.Errorf("ListOffsetsMinVersion(%d) = %d, %t; want %d, %t", tt.ts, v, ok, tt.want, tt.ok)
		}
	}
}
