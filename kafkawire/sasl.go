package kafkawire

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"strconv"
	"strings"

	"github.com/kafkaedge/kafkaedge/kafkawire/wire"
)

// authenticate runs SaslHandshake v1 and the SaslAuthenticate exchange of the
// configured mechanism.
func (c *conn) authenticate(ctx context.Context, s *SASLConfig) error {
	fail := func(err error) error {
		var ce *connError
		if errors.As(err, &ce) {
			err = ce.err
		}
		return &connError{addr: c.addr, err: fmt.Errorf("SASL %s authentication as %q: %w", s.Mechanism, s.Username, err)}
	}
	var hs wire.SaslHandshakeResponse
	if _, err := c.do(ctx, &wire.SaslHandshakeRequest{Mechanism: s.Mechanism}, &hs); err != nil {
		return fail(err)
	}
	if hs.ErrorCode != 0 {
		return fail(fmt.Errorf("handshake: %s (broker enables %s)", wire.ErrorName(hs.ErrorCode), strings.Join(hs.Mechanisms, ", ")))
	}

	step := func(msg []byte) ([]byte, error) {
		// resp.AuthBytes aliases the response buffer: it is copied before
		// the buffer goes back to the pool, where another read may fill it.
		var resp wire.SaslAuthenticateResponse
		req := &wire.SaslAuthenticateRequest{AuthBytes: msg}
		v, err := c.version(req.Key(), -1)
		if err != nil {
			return nil, err
		}
		buf, err := c.doAt(ctx, req, v, &resp)
		if err != nil {
			var ce *connError
			if errors.As(err, &ce) {
				// Brokers close the connection on bad credentials.
				return nil, fmt.Errorf("rejected (wrong username or password?): %w", ce.err)
			}
			return nil, err
		}
		defer buf.release()
		if resp.ErrorCode != 0 {
			text := wire.ErrorName(resp.ErrorCode)
			if resp.ErrorMessage != "" {
				text += ": " + resp.ErrorMessage
			}
			return nil, errors.New(text)
		}
		return bytes.Clone(resp.AuthBytes), nil
	}

	var err error
	switch s.Mechanism {
	case mechanismPlain:
		_, err = step([]byte("\x00" + s.Username + "\x00" + s.Password))
	case mechanismScramSHA256:
		err = scram(step, sha256.New, s.Username, s.Password)
	case mechanismScramSHA512:
		err = scram(step, sha512.New, s.Username, s.Password)
	default:
		err = fmt.Errorf("unknown mechanism %q", s.Mechanism)
	}
	if err != nil {
		return fail(err)
	}
	return nil
}

// scramEscaper escapes a SCRAM username (RFC 5802 section 5.1).
var scramEscaper = strings.NewReplacer("=", "=3D", ",", "=2C")

// scram runs the client side of SCRAM (RFC 5802, RFC 7677) over step, which
// sends one client message and returns the server's answer.
func scram(step func([]byte) ([]byte, error), h func() hash.Hash, user, pass string) error {
	var raw [24]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return fmt.Errorf("scram nonce: %w", err)
	}
	return scramNonce(step, h, user, pass, base64.RawStdEncoding.EncodeToString(raw[:]))
}

// scramNonce is scram with the client nonce given.
func scramNonce(step func([]byte) ([]byte, error), h func() hash.Hash, user, pass, nonce string) error {
	bare := "n=" + scramEscaper.Replace(user) + ",r=" + nonce

	serverFirst, err := step([]byte("n,," + bare))
	if err != nil {
		return err
	}
	fields, err := scramFields(string(serverFirst))
	if err != nil {
		return fmt.Errorf("server-first-message: %w", err)
	}
	if e, ok := fields["e"]; ok {
		return fmt.Errorf("server error %q", e)
	}
	serverNonce := fields["r"]
	if !strings.HasPrefix(serverNonce, nonce) || len(serverNonce) == len(nonce) {
		return errors.New("server-first-message: nonce does not extend ours")
	}
	salt, err := base64.StdEncoding.DecodeString(fields["s"])
	if err != nil || len(salt) == 0 {
		return errors.New("server-first-message: invalid salt")
	}
	iters, err := strconv.Atoi(fields["i"])
	if err != nil || iters < 1 || iters > maxScramIterations {
		return fmt.Errorf("server-first-message: iteration count %q outside 1..%d", fields["i"], maxScramIterations)
	}

	salted, err := pbkdf2.Key(h, pass, salt, iters, h().Size())
	if err != nil {
		return fmt.Errorf("scram salted password: %w", err)
	}
	clientKey := hmacSum(h, salted, []byte("Client Key"))
	stored := h()
	stored.Write(clientKey)
	storedKey := stored.Sum(nil)
	finalNoProof := "c=biws,r=" + serverNonce
	authMessage := []byte(bare + "," + string(serverFirst) + "," + finalNoProof)
	proof := hmacSum(h, storedKey, authMessage)
	for i := range proof {
		proof[i] ^= clientKey[i]
	}

	serverFinal, err := step([]byte(finalNoProof + ",p=" + base64.StdEncoding.EncodeToString(proof)))
	if err != nil {
		return err
	}
	fields, err = scramFields(string(serverFinal))
	if err != nil {
		return fmt.Errorf("server-final-message: %w", err)
	}
	if e, ok := fields["e"]; ok {
		return fmt.Errorf("server error %q", e)
	}
	got, err := base64.StdEncoding.DecodeString(fields["v"])
	if err != nil {
		return errors.New("server-final-message: invalid verifier")
	}
	want := hmacSum(h, hmacSum(h, salted, []byte("Server Key")), authMessage)
	if !hmac.Equal(got, want) {
		return errors.New("server signature does not match: the broker does not know the password")
	}
	return nil
}

// hmacSum returns HMAC(key, msg) with hash h.
func hmacSum(h func() hash.Hash, key, msg []byte) []byte {
	m := hmac.New(h, key)
	m.Write(msg)
	return m.Sum(nil)
}

// scramFields splits "a=1,b=2" into its attributes.
func scramFields(msg string) (map[string]string, error) {
	out := make(map[string]string)
	for part := range strings.SplitSeq(msg, ",") {
		k, v, ok := strings.Cut(part, "=")
		if !ok || len(k) != 1 {
			return nil, fmt.Errorf("malformed attribute %q", part)
		}
		out[k] = v
	}
	return out, nil
}
