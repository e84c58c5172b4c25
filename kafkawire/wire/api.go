package wire

import "fmt"

// API keys of the requests kafkaedge sends.
const (
	KeyProduce                int16 = 0
	KeyFetch                  int16 = 1
	KeyListOffsets            int16 = 2
	KeyMetadata               int16 = 3
	KeyOffsetCommit           int16 = 8
	KeyOffsetFetch            int16 = 9
	KeyFindCoordinator        int16 = 10
	KeyJoinGroup              int16 = 11
	KeyHeartbeat              int16 = 12
	KeyLeaveGroup             int16 = 13
	KeySyncGroup              int16 = 14
	KeySaslHandshake          int16 = 17
	KeyApiVersions            int16 = 18
	KeyInitProducerID         int16 = 22
	KeySaslAuthenticate       int16 = 36
	KeyConsumerGroupHeartbeat int16 = 68
)

// VersionRange is an inclusive range of API versions.
type VersionRange struct{ Min, Max int16 }

// Implemented holds, per API key, the versions this package can encode and
// decode. The group APIs start at the lowest version Kafka 4.0 still accepts
// (KIP-896 removed OffsetCommit v0-v1, OffsetFetch v0, FindCoordinator v0
// and JoinGroup v0-v1). OffsetCommit and OffsetFetch stop at v9: v10 names
// topics by ID instead of by name. Produce starts at v3, the first
// version with record batches and the lowest Kafka 4.0 accepts (it still
// lists v0-v2 in ApiVersions, KAFKA-18659, but rejects them).
var Implemented = map[int16]VersionRange{
	KeyApiVersions:            {0, 3},
	KeyMetadata:               {1, 12},
	KeyListOffsets:            {1, 9},
	KeyFetch:                  {4, 16},
	KeySaslHandshake:          {1, 1},
	KeySaslAuthenticate:       {0, 2},
	KeyOffsetCommit:           {2, 9},
	KeyOffsetFetch:            {1, 9},
	KeyFindCoordinator:        {1, 6},
	KeyJoinGroup:              {2, 9},
	KeyHeartbeat:              {0, 4},
	KeyLeaveGroup:             {0, 5},
	KeySyncGroup:              {0, 5},
	KeyConsumerGroupHeartbeat: {0, 1},
	KeyProduce:                {3, 13},
	KeyInitProducerID:         {0, 5},
}

// Negotiate picks the highest version in both our range for key and the
// broker's. It reports false if key is not implemented or the ranges do not
// overlap.
func Negotiate(key int16, broker VersionRange) (int16, bool) {
	ours, ok := Implemented[key]
	if !ok {
		return 0, false
	}
	lo, hi := max(ours.Min, broker.Min), min(ours.Max, broker.Max)
	if lo > hi {
		return 0, false
	}
	return hi, true
}

// IsFlexible reports whether version of the API key uses the flexible
// encoding (compact strings, arrays and bytes plus tagged fields).
func IsFlexible(key, version int16) bool {
	switch key {
	case KeyFetch:
		return version >= 12
	case KeyMetadata:
		return version >= 9
	case KeyListOffsets:
		return version >= 6
	case KeyApiVersions:
		return version >= 3
	case KeySaslAuthenticate:
		return version >= 2
	case KeyOffsetCommit:
		return version >= 8
	case KeyOffsetFetch:
		return version >= 6
	case KeyFindCoordinator:
		return version >= 3
	case KeyJoinGroup:
		return version >= 6
	case KeyHeartbeat, KeyLeaveGroup, KeySyncGroup:
		return version >= 4
	case KeyConsumerGroupHeartbeat:
		return true
	case KeyProduce:
		return version >= 9
	case KeyInitProducerID:
		return version >= 2
	}
	return false
}

// AppendRequestHeader appends request header v1 (api key, version,
// correlation id, client id as a nullable string) to dst, or header v2 (v1
// plus an empty tag section) when the version is flexible. The 4-byte size
// prefix of the request is the caller's.
func AppendRequestHeader(dst []byte, key, version int16, correlationID int32, clientID string) []byte {
	dst = AppendInt16(dst, key)
	dst = AppendInt16(dst, version)
	dst = AppendInt32(dst, correlationID)
	dst = AppendString(dst, clientID)
	return appendTags(dst, IsFlexible(key, version))
}

// ResponseBody strips what remains of the response header after the 4-byte
// correlation id: the tag section of header v1, used by flexible versions
// except ApiVersions, whose response header is always v0. The body is a
// sub-slice of afterCorrelationID.
func ResponseBody(afterCorrelationID []byte, key, version int16) ([]byte, error) {
	if key == KeyApiVersions || !IsFlexible(key, version) {
		return afterCorrelationID, nil
	}
	r := Reader{Src: afterCorrelationID}
	r.SkipTags()
	if err := r.Err(); err != nil {
		return nil, fmt.Errorf("read response header tags (api key %d v%d): %w", key, version, err)
	}
	return r.Src, nil
}

// checkVersion returns an error wrapping ErrInvalid if version is outside the
// implemented range of key.
func checkVersion(key, version int16) error {
	vr := Implemented[key]
	if version < vr.Min || version > vr.Max {
		return fmt.Errorf("api key %d version %d outside implemented range %d-%d: %w", key, version, vr.Min, vr.Max, ErrInvalid)
	}
	return nil
}
