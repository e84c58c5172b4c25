package wire

import "fmt"

// ApiVersionsRequest asks a broker which API versions it supports
// (ApiVersions v0-v3). The client software fields are sent from v3.
type ApiVersionsRequest struct {
	ClientSoftwareName, ClientSoftwareVersion string
}

// Key returns KeyApiVersions.
func (*ApiVersionsRequest) Key() int16 { return KeyApiVersions }

// AppendTo appends the request body at version to dst.
func (r *ApiVersionsRequest) AppendTo(dst []byte, version int16) []byte {
	if version >= 3 {
		dst = AppendCompactString(dst, r.ClientSoftwareName)
		dst = AppendCompactString(dst, r.ClientSoftwareVersion)
		dst = AppendEmptyTags(dst)
	}
	return dst
}

// ApiVersionsResponse is a broker's answer to ApiVersionsRequest.
type ApiVersionsResponse struct {
	ErrorCode      int16
	APIs           []APIVersion
	ThrottleMillis int32
	// FinalizedFeatures (v3+, tagged field 2) are the cluster's feature
	// levels in force, such as "group.version" (1: KIP-848's consumer
	// groups are enabled).
	FinalizedFeatures []Feature
}

// Feature is a finalized feature of the cluster and its version levels.
type Feature struct {
	Name     string
	Min, Max int16
}

// APIVersion is the version range a broker supports for one API key.
type APIVersion struct{ Key, Min, Max int16 }

// Decode decodes a response body at version into r. A broker that does not
// support the requested version answers UNSUPPORTED_VERSION in the v0 format;
// Decode accepts that too, so r.ErrorCode is ErrUnsupportedVersion and r.APIs
// holds the broker's ApiVersions range.
func (r *ApiVersionsResponse) Decode(body []byte, version int16) error {
	if err := checkVersion(KeyApiVersions, version); err != nil {
		return fmt.Errorf("decode api versions response: %w", err)
	}
	if version > 0 && len(body) >= 2 && int16(body[0])<<8|int16(body[1]) == ErrUnsupportedVersion {
		if r.decode(body, 0) == nil {
			return nil
		}
	}
	if err := r.decode(body, version); err != nil {
		return fmt.Errorf("decode api versions response v%d: %w", version, err)
	}
	return nil
}

func (r *ApiVersionsResponse) decode(body []byte, version int16) error {
	*r = ApiVersionsResponse{}
	flex := version >= 3
	rd := Reader{Src: body}
	r.ErrorCode = rd.Int16()
	if n := rd.arrayLen(flex, 6); n >= 0 { // key, min, max
		r.APIs = make([]APIVersion, 0, n)
		for i := 0; i < n && rd.err == nil; i++ {
			r.APIs = append(r.APIs, APIVersion{Key: rd.Int16(), Min: rd.Int16(), Max: rd.Int16()})
			rd.tags(flex)
		}
	}
	if version >= 1 {
		r.ThrottleMillis = rd.Int32()
	}
	if !flex {
		return rd.Complete()
	}
	n := rd.Uvarint()
	for i := uint32(0); i < n && rd.err == nil; i++ {
		tag := rd.Uvarint()
		field := Reader{Src: rd.take(int(rd.Uvarint()), "tagged field")}
		if tag != 2 || rd.err != nil {
			continue
		}
		if m := field.CompactArrayLen(); m >= 0 {
			r.FinalizedFeatures = make([]Feature, 0, min(m, len(field.Src)/5)) // name, max, min, tags
			for j := 0; j < m && field.err == nil; j++ {
				f := Feature{Name: field.CompactString(), Max: field.Int16()}
				f.Min = field.Int16()
				field.SkipTags()
				r.FinalizedFeatures = append(r.FinalizedFeatures, f)
			}
		}
		if err := field.Complete(); err != nil {
			return fmt.Errorf("finalized features: %w", err)
		}
	}
	return rd.Complete()
}
