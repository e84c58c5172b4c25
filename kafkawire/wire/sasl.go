package wire

import "fmt"

// SaslHandshakeRequest names the SASL mechanism a client wants to use
// (SaslHandshake v1; the authentication bytes then go in SaslAuthenticate).
type SaslHandshakeRequest struct {
	Mechanism string
}

// Key returns KeySaslHandshake.
func (*SaslHandshakeRequest) Key() int16 { return KeySaslHandshake }

// AppendTo appends the request body at version to dst.
func (r *SaslHandshakeRequest) AppendTo(dst []byte, version int16) []byte {
	return AppendString(dst, r.Mechanism)
}

// SaslHandshakeResponse is a broker's answer to SaslHandshakeRequest.
type SaslHandshakeResponse struct {
	ErrorCode  int16
	Mechanisms []string
}

// Decode decodes a response body at version into r.
func (r *SaslHandshakeResponse) Decode(body []byte, version int16) error {
	if err := checkVersion(KeySaslHandshake, version); err != nil {
		return fmt.Errorf("decode sasl handshake response: %w", err)
	}
	*r = SaslHandshakeResponse{}
	rd := Reader{Src: body}
	r.ErrorCode = rd.Int16()
	r.Mechanisms = rd.strings(false)
	if err := rd.Complete(); err != nil {
		return fmt.Errorf("decode sasl handshake response v%d: %w", version, err)
	}
	return nil
}

// SaslAuthenticateRequest carries one SASL exchange step
// (SaslAuthenticate v0-v2).
type SaslAuthenticateRequest struct {
	AuthBytes []byte
}

// Key returns KeySaslAuthenticate.
func (*SaslAuthenticateRequest) Key() int16 { return KeySaslAuthenticate }

// AppendTo appends the request body at version to dst. Nil AuthBytes are sent
// as empty bytes (the field is not nullable).
func (r *SaslAuthenticateRequest) AppendTo(dst []byte, version int16) []byte {
	flex := version >= 2
	b := r.AuthBytes
	if b == nil {
		b = []byte{}
	}
	dst = appendBytes(dst, b, flex)
	return appendTags(dst, flex)
}

// SaslAuthenticateResponse is a broker's answer to SaslAuthenticateRequest.
// AuthBytes is a sub-slice of the decoded body.
type SaslAuthenticateResponse struct {
	ErrorCode             int16
	ErrorMessage          string
	AuthBytes             []byte
	SessionLifetimeMillis int64
}

// Decode decodes a response body at version into r.
func (r *SaslAuthenticateResponse) Decode(body []byte, version int16) error {
	if err := checkVersion(KeySaslAuthenticate, version); err != nil {
		return fmt.Errorf("decode sasl authenticate response: %w", err)
	}
	*r = SaslAuthenticateResponse{}
	flex := version >= 2
	rd := Reader{Src: body}
	r.ErrorCode = rd.Int16()
	r.ErrorMessage = rd.nstr(flex)
	r.AuthBytes = rd.bytes(flex)
	if version >= 1 {
		r.SessionLifetimeMillis = rd.Int64()
	}
	rd.tags(flex)
	if err := rd.Complete(); err != nil {
		return fmt.Errorf("decode sasl authenticate response v%d: %w", version, err)
	}
	return nil
}
