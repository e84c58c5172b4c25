// Package wsframe implements the WebSocket wire (RFC 6455) over byte slices:
// the HTTP/1.1 upgrade request, the server's responses and the frames. It
// parses the bytes an event loop already holds, without copying them into
// readers or building net/http requests, and leaves connections and
// dispatch to its caller.
package wsframe

import (
	"bytes"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/gobwas/httphead"
)

// DefaultMaxHeader is the request head size limit ParseRequest applies when
// given a maxHeader of 0 or less.
const DefaultMaxHeader = 8 << 10

// ErrIncomplete is returned by ParseRequest when the request head has not
// fully arrived yet; the caller waits for more bytes and calls again with
// the whole head so far.
var ErrIncomplete = errors.New("wsframe: incomplete HTTP request head")

// HTTPError is a request head ParseRequest refuses; the caller answers it
// with AppendHTTPResponse(dst, e.Status, e.Reason) and closes the connection.
type HTTPError struct {
	Status int    // HTTP status code: 400, 431 or 505
	Reason string // what is wrong, for the response body and logs
}

// Error returns the status and the reason.
func (e *HTTPError) Error() string {
	return "wsframe: HTTP " + strconv.Itoa(e.Status) + ": " + e.Reason
}

// Request is a parsed HTTP/1.1 request head.
type Request struct {
	Method string // request method, e.g. "GET"
	Path   string // request-target without query string
	// Upgrade reports whether the request is a valid RFC 6455 opening
	// handshake: GET, HTTP/1.1 or later, "Upgrade: websocket", a Connection
	// header with the "upgrade" token, a Sec-WebSocket-Key holding a
	// base64-encoded 16-byte nonce and Sec-WebSocket-Version 13.
	Upgrade bool
	// Key is a copy of the Sec-WebSocket-Key value when Upgrade is true.
	Key []byte
	// UpgradeErr says why a request that asked to upgrade (it carries an
	// Upgrade header) is not a valid handshake; empty for a valid upgrade and
	// for a plain HTTP request.
	UpgradeErr string
}

var (
	crlf     = []byte("\r\n")
	headEnd  = []byte("\r\n\r\n")
	tokenWS  = []byte("websocket")
	tokenUpg = []byte("upgrade")
)

// ParseRequest parses the HTTP/1.1 request head at the start of buf, which
// holds the bytes received so far. It returns the request and n, the length
// of the head including the blank line that ends it. It returns
// ErrIncomplete while the head has not fully arrived and len(buf) <
// maxHeader, and an *HTTPError when the head is malformed (400), longer than
// maxHeader bytes (431) or not HTTP/1.x (505). maxHeader <= 0 means
// DefaultMaxHeader. A request that asks for an upgrade but does not meet RFC
// 6455 is no error: it comes back with Upgrade false and UpgradeErr set.
func ParseRequest(buf []byte, maxHeader int) (req Request, n int, err error) {
	if maxHeader <= 0 {
		maxHeader = DefaultMaxHeader
	}
	// RFC 9112 2.2: a server SHOULD ignore empty lines received before the
	// request line.
	window := buf
	if len(window) > maxHeader {
		window = window[:maxHeader]
	}
	start := 0
	for len(window)-start >= 2 && window[start] == '\r' && window[start+1] == '\n' {
		start += 2
	}
	end := bytes.Index(window[start:], headEnd)
	if end < 0 {
		// Refuse a garbage request line early rather than at maxHeader.
		if eol := bytes.IndexByte(window[start:], '\n'); eol >= 0 {
			if _, e := parseRequestLine(window[start : start+eol+1]); e != nil {
				return req, 0, e
			}
		}
		if len(buf) >= maxHeader {
			return req, 0, &HTTPError{Status: http.StatusRequestHeaderFieldsTooLarge, Reason: "request head larger than " + strconv.Itoa(maxHeader) + " bytes"}
		}
		return req, 0, ErrIncomplete
	}
	n = start + end + len(headEnd)
	head := buf[start : start+end+2] // every line with its CRLF

	eol := bytes.Index(head, crlf)
	rl, herr := parseRequestLine(head[:eol+2])
	if herr != nil {
		return req, 0, herr
	}
	switch string(rl.Method) { // common methods without an allocation
	case http.MethodGet:
		req.Method = http.MethodGet
	case http.MethodHead:
		req.Method = http.MethodHead
	case http.MethodPost:
		req.Method = http.MethodPost
	default:
		req.Method = string(rl.Method)
	}
	path, perr := requestPath(rl.URI)
	if perr != nil {
		return req, 0, perr
	}
	req.Path = path

	var (
		host, upgradeSeen, connUpgrade, upgradeWS bool
		keys, versions                            int
		key, version                              []byte
		hasBody                                   bool
	)
	for rest := head[eol+2:]; len(rest) > 0; {
		i := bytes.Index(rest, crlf)
		line := rest[:i]
		rest = rest[i+2:]
		if line[0] == ' ' || line[0] == '\t' {
			return req, 0, badRequest("obsolete header line folding")
		}
		if bytes.IndexByte(line, '\r') >= 0 || bytes.IndexByte(line, '\n') >= 0 {
			return req, 0, badRequest("bare CR or LF in header line")
		}
		k, v, ok := httphead.ParseHeaderLine(line)
		if !ok || len(k) == 0 || len(k) != bytes.IndexByte(line, ':') {
			// A name must be a token directly followed by the colon
			// (RFC 9112 5.1: no whitespace before it).
			return req, 0, badRequest(fmt.Sprintf("malformed header line %q", truncate(line)))
		}
		for _, c := range v {
			if (c < ' ' && c != '\t') || c == 0x7f {
				return req, 0, badRequest(fmt.Sprintf("control character in header %q", k))
			}
		}
		switch {
		case bytes.EqualFold(k, []byte("Host")):
			if host {
				return req, 0, badRequest("more than one Host header")
			}
			host = true
		case bytes.EqualFold(k, []byte("Upgrade")):
			upgradeSeen = true
			upgradeWS = upgradeWS || hasToken(v, tokenWS)
		case bytes.EqualFold(k, []byte("Connection")):
			connUpgrade = connUpgrade || hasToken(v, tokenUpg)
		case bytes.EqualFold(k, []byte("Sec-WebSocket-Key")):
			keys++
			key = v
		case bytes.EqualFold(k, []byte("Sec-WebSocket-Version")):
			versions++
			version = v
		case bytes.EqualFold(k, []byte("Content-Length")):
			hasBody = hasBody || !bytes.Equal(v, []byte("0"))
		case bytes.EqualFold(k, []byte("Transfer-Encoding")):
			hasBody = true
		}
	}
	if rl.Version.Minor >= 1 && !host {
		return req, 0, badRequest("missing Host header")
	}
	if !upgradeSeen {
		return req, n, nil
	}

	switch {
	case req.Method != http.MethodGet:
		req.UpgradeErr = "websocket upgrade must use method GET"
	case rl.Version.Minor < 1:
		req.UpgradeErr = "websocket upgrade needs HTTP/1.1"
	case !upgradeWS:
		req.UpgradeErr = `Upgrade header must be "websocket"`
	case !connUpgrade:
		req.UpgradeErr = `Connection header must contain "upgrade"`
	case versions == 0:
		req.UpgradeErr = "missing Sec-WebSocket-Version header"
	case versions > 1 || !bytes.Equal(version, []byte("13")):
		req.UpgradeErr = "unsupported Sec-WebSocket-Version (supported: 13)"
	case keys == 0:
		req.UpgradeErr = "missing Sec-WebSocket-Key header"
	case keys > 1 || !validKey(key):
		req.UpgradeErr = "Sec-WebSocket-Key must be a base64-encoded 16-byte nonce"
	case hasBody:
		req.UpgradeErr = "websocket upgrade must not have a body"
	default:
		req.Upgrade = true
		req.Key = bytes.Clone(key)
	}
	return req, n, nil
}

// parseRequestLine parses line (ending in CRLF) as an HTTP/1.x request line.
func parseRequestLine(line []byte) (httphead.RequestLine, *HTTPError) {
	if len(line) < 2 || line[len(line)-2] != '\r' {
		return httphead.RequestLine{}, badRequest("request line must end with CRLF")
	}
	line = line[:len(line)-2]
	rl, ok := httphead.ParseRequestLine(line)
	if !ok || bytes.IndexByte(rl.URI, ' ') >= 0 || len(rl.URI) == 0 {
		return rl, badRequest(fmt.Sprintf("malformed request line %q", truncate(line)))
	}
	for _, c := range rl.URI {
		if c <= ' ' || c == 0x7f {
			return rl, badRequest("control character in request target")
		}
	}
	if rl.Version.Major != 1 {
		return rl, &HTTPError{Status: http.StatusHTTPVersionNotSupported, Reason: "only HTTP/1.x is supported"}
	}
	return rl, nil
}

// requestPath returns the path of a request-target in origin form
// ("/a/b?q") or absolute form ("http://host/a/b?q"), without the query.
func requestPath(uri []byte) (string, *HTTPError) {
	switch {
	case uri[0] == '/':
	case len(uri) == 1 && uri[0] == '*':
		return "*", nil
	default:
		i := bytes.Index(uri, []byte("://"))
		if i <= 0 {
			return "", badRequest(fmt.Sprintf("malformed request target %q", truncate(uri)))
		}
		uri = uri[i+3:]
		j := bytes.IndexAny(uri, "/?")
		if j < 0 || uri[j] == '?' {
			return "/", nil
		}
		uri = uri[j:]
	}
	if q := bytes.IndexByte(uri, '?'); q >= 0 {
		uri = uri[:q]
	}
	return string(uri), nil
}

// hasToken reports whether the comma-separated token list v contains token,
// compared case-insensitively.
func hasToken(v, token []byte) (has bool) {
	httphead.ScanTokens(v, func(t []byte) bool {
		has = bytes.EqualFold(t, token)
		return !has
	})
	return has
}

// validKey reports whether key is the base64 encoding of 16 bytes.
func validKey(key []byte) bool {
	if len(key) != 24 {
		return false
	}
	var raw [18]byte
	n, err := base64.StdEncoding.Decode(raw[:], key)
	return err == nil && n == 16
}

func badRequest(reason string) *HTTPError {
	return &HTTPError{Status: http.StatusBadRequest, Reason: reason}
}

func truncate(b []byte) []byte {
	if len(b) > 64 {
		return b[:64]
	}
	return b
}

// acceptGUID is the fixed suffix of RFC 6455 4.2.2 for Sec-WebSocket-Accept.
const acceptGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// AppendUpgradeResponse appends the 101 Switching Protocols response to a
// valid upgrade request carrying Sec-WebSocket-Key key (Request.Key), with
// its Sec-WebSocket-Accept, and returns the extended slice.
func AppendUpgradeResponse(dst []byte, key []byte) []byte {
	var in [64]byte // the key is 24 bytes: no heap allocation
	b := append(append(in[:0], key...), acceptGUID...)
	sum := sha1.Sum(b)
	var accept [28]byte
	base64.StdEncoding.Encode(accept[:], sum[:])
	dst = append(dst, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: "...)
	dst = append(dst, accept[:]...)
	return append(dst, "\r\n\r\n"...)
}

// AppendHTTPResponse appends a complete plain-text HTTP/1.1 response with
// status and body that ends the connection ("Connection: close") and returns
// the extended slice. Responses 400 and 426, the answers to a bad upgrade,
// also carry "Sec-WebSocket-Version: 13" as RFC 6455 4.4 asks for a version
// mismatch; 426 also carries "Upgrade: websocket".
func AppendHTTPResponse(dst []byte, status int, body string) []byte {
	text := http.StatusText(status)
	if text == "" {
		text = "Status " + strconv.Itoa(status)
	}
	dst = append(dst, "HTTP/1.1 "...)
	dst = strconv.AppendInt(dst, int64(status), 10)
	dst = append(dst, ' ')
	dst = append(dst, text...)
	dst = append(dst, "\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: "...)
	dst = strconv.AppendInt(dst, int64(len(body)), 10)
	dst = append(dst, "\r\nConnection: close\r\n"...)
	switch status {
	case http.StatusUpgradeRequired:
		dst = append(dst, "Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"...)
	case http.StatusBadRequest:
		dst = append(dst, "Sec-WebSocket-Version: 13\r\n"...)
	}
	dst = append(dst, crlf...)
	return append(dst, body...)
}
