package wsframe

import (
	"bufio"
	"bytes"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
)

const validKeyText = "dGhlIHNhbXBsZSBub25jZQ=="

func upgradeRequest(target string, extra ...string) string {
	lines := []string{
		"GET " + target + " HTTP/1.1",
		"Host: example.com",
		"Upgrade: websocket",
		"Connection: Upgrade",
		"Sec-WebSocket-Key: " + validKeyText,
		"Sec-WebSocket-Version: 13",
	}
	return strings.Join(append(lines, extra...), "\r\n") + "\r\n\r\n"
}

// request builds a head from the request line and header lines.
func request(line string, headers ...string) string {
	return strings.Join(append([]string{line}, headers...), "\r\n") + "\r\n\r\n"
}

func TestParseRequestValidUpgrade(t *testing.T) {
	cases := []struct {
		name string
		head string
		path string
	}{
		{
			name: "plain",
			head: upgradeRequest("/kafka"),
			path: "/kafka",
		},
		{
			name: "query stripped",
			head: upgradeRequest("/kafka/ws?token=abc&x=1"),
			path: "/kafka/ws",
		},
		{
			name: "absolute form",
			head: upgradeRequest("http://example.com:9080/kafka?q"),
			path: "/kafka",
		},
		{
			name: "absolute form without path",
			head: upgradeRequest("http://example.com"),
			path: "/",
		},
		{
			name: "case and lists",
			head: request("GET /k HTTP/1.1",
				"host: h",
				"upgrade: WebSocket",
				"connection: keep-alive, UPGRADE",
				"sec-websocket-key:"+validKeyText,
				"SEC-WEBSOCKET-VERSION:   13  ",
				"Sec-WebSocket-Extensions: permessage-deflate",
				"Origin: http://x"),
			path: "/k",
		},
		{
			name: "leading empty line",
			head: "\r\n" + upgradeRequest("/kafka"),
			path: "/kafka",
		},
		{
			name: "upgrade list",
			head: request("GET /k HTTP/1.1", "Host: h", "Upgrade: h2c, websocket", "Connection: upgrade",
				"Sec-WebSocket-Key: "+validKeyText, "Sec-WebSocket-Version: 13"),
			path: "/k",
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			buf := []byte(c.head + "\x81\x80trailing frame bytes")
			req, n, err := ParseRequest(buf, 0)
			if err != nil {
				t.Fatalf(
					"ParseRequest: %v",
					err)
			}
			if n != len(c.head) {
				t.Fatalf(
					"n = %d, want %d",
					n, len(c.head))
			}
			if !req.Upgrade || req.UpgradeErr != "" || req.Method != "GET" || req.Path != c.path || string(req.Key) != validKeyText {
				t.Fatalf(
					"got %+v, want a valid upgrade of %q",
					req, c.path)
			}
			// Key is a copy: the caller may reuse its buffer.
			copy(buf, bytes.Repeat([]byte{'x'}, len(buf)))
			if string(req.Key) != validKeyText {
				t.Fatalf(
					"Key aliases the input buffer")
			}
		})
	}
}

func TestParseRequestInvalidUpgrade(t *testing.T) {
	key := "Sec-WebSocket-Key: " + validKeyText
	cases := []struct {
		name string
		head string
		want string
	}{
		{
			name: "POST",
			head: request("POST /k HTTP/1.1", "Host: h", "Upgrade: websocket", "Connection: Upgrade", key, "Sec-WebSocket-Version: 13"),
			want: "websocket upgrade must use method GET",
		},
		{
			name: "HTTP/1.0",
			head: request("GET /k HTTP/1.0", "Upgrade: websocket", "Connection: Upgrade", key, "Sec-WebSocket-Version: 13"),
			want: "websocket upgrade needs HTTP/1.1",
		},
		{
			name: "other protocol",
			head: request("GET /k HTTP/1.1", "Host: h", "Upgrade: h2c", "Connection: Upgrade", key, "Sec-WebSocket-Version: 13"),
			want: `Upgrade header must be "websocket"`,
		},
		{
			name: "no connection upgrade",
			head: request("GET /k HTTP/1.1", "Host: h", "Upgrade: websocket", "Connection: keep-alive", key, "Sec-WebSocket-Version: 13"),
			want: `Connection header must contain "upgrade"`,
		},
		{
			name: "connection token substring",
			head: request("GET /k HTTP/1.1", "Host: h", "Upgrade: websocket", "Connection: upgraded", key, "Sec-WebSocket-Version: 13"),
			want: `Connection header must contain "upgrade"`,
		},
		{
			name: "missing version",
			head: request("GET /k HTTP/1.1", "Host: h", "Upgrade: websocket", "Connection: Upgrade", key),
			want: "missing Sec-WebSocket-Version header",
		},
		{
			name: "version 8",
			head: request("GET /k HTTP/1.1", "Host: h", "Upgrade: websocket", "Connection: Upgrade", key, "Sec-WebSocket-Version: 8"),
			want: "unsupported Sec-WebSocket-Version (supported: 13)",
		},
		{
			name: "two versions",
			head: request("GET /k HTTP/1.1", "Host: h", "Upgrade: websocket", "Connection: Upgrade", key, "Sec-WebSocket-Version: 13", "Sec-WebSocket-Version: 8"),
			want: "unsupported Sec-WebSocket-Version (supported: 13)",
		},
		{
			name: "missing key",
			head: request("GET /k HTTP/1.1", "Host: h", "Upgrade: websocket", "Connection: Upgrade", "Sec-WebSocket-Version: 13"),
			want: "missing Sec-WebSocket-Key header",
		},
		{
			name: "key not base64",
			head: request("GET /k HTTP/1.1", "Host: h", "Upgrade: websocket", "Connection: Upgrade", "Sec-WebSocket-Key: !!!!!!!!!!!!!!!!!!!!!!==", "Sec-WebSocket-Version: 13"),
			want: "Sec-WebSocket-Key must be a base64-encoded 16-byte nonce",
		},
		{
			name: "key of 15 bytes",
			head: request("GET /k HTTP/1.1", "Host: h", "Upgrade: websocket", "Connection: Upgrade", "Sec-WebSocket-Key: "+base64.StdEncoding.EncodeToString(make([]byte, 15)), "Sec-WebSocket-Version: 13"),
			want: "Sec-WebSocket-Key must be a base64-encoded 16-byte nonce",
		},
		{
			name: "two keys",
			head: request("GET /k HTTP/1.1", "Host: h", "Upgrade: websocket", "Connection: Upgrade", key, key, "Sec-WebSocket-Version: 13"),
			want: "Sec-WebSocket-Key must be a base64-encoded 16-byte nonce",
		},
		{
			name: "body",
			head: request("GET /k HTTP/1.1", "Host: h", "Upgrade: websocket", "Connection: Upgrade", key, "Sec-WebSocket-Version: 13", "Transfer-Encoding: chunked"),
			want: "websocket upgrade must not have a body",
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req, n, err := ParseRequest([]byte(c.head), 0)
			if err != nil {
				t.Fatalf(
					"ParseRequest: %v",
					err)
			}
			if n != len(c.head) || req.Upgrade || req.UpgradeErr != c.want || req.Key != nil {
				t.Fatalf(
					"got %+v n=%d, want Upgrade=false UpgradeErr=%q n=%d",
					req, n, c.want, len(c.head))
			}
		})
	}
}

func TestParseRequestPlainHTTP(t *testing.T) {
	head := request("GET /kafka?x HTTP/1.1", "Host: h", "Accept: */*", "Sec-WebSocket-Key: "+validKeyText)
	req, n, err := ParseRequest([]byte(head), 0)
	if err != nil || n != len(head) || req.Upgrade || req.UpgradeErr != "" || req.Path != "/kafka" || req.Method != "GET" {
		t.Fatalf(
			"got %+v n=%d err=%v, want a plain GET /kafka",
			req, n, err)
	}
	head = request("HEAD / HTTP/1.0")
	req, n, err = ParseRequest([]byte(head), 0)
	if err != nil || n != len(head) || req.Upgrade || req.UpgradeErr != "" || req.Path != "/" || req.Method != "HEAD" {
		t.Fatalf(
			"got %+v n=%d err=%v, want a plain HEAD /",
			req, n, err)
	}
}

func TestParseRequestMalformed(t *testing.T) {
	cases := []struct {
		name   string
		head   string
		status int
	}{
		{
			name:   "garbage line",
			head:   "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n",
			status: 400,
		},
		{
			name:   "no version",
			head:   "GET /\r\nHost: h\r\n\r\n",
			status: 400,
		},
		{
			name:   "HTTP/2",
			head:   "GET / HTTP/2.0\r\nHost: h\r\n\r\n",
			status: 505,
		},
		{
			name:   "two spaces",
			head:   "GET  / HTTP/1.1\r\nHost: h\r\n\r\n",
			status: 400,
		},
		{
			name:   "space in target",
			head:   "GET /a b HTTP/1.1\r\nHost: h\r\n\r\n",
			status: 400,
		},
		{
			name:   "relative target",
			head:   "GET kafka HTTP/1.1\r\nHost: h\r\n\r\n",
			status: 400,
		},
		{
			name:   "missing host",
			head:   "GET / HTTP/1.1\r\nUpgrade: websocket\r\n\r\n",
			status: 400,
		},
		{
			name:   "two hosts",
			head:   "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
			status: 400,
		},
		{
			name:   "header without colon",
			head:   "GET / HTTP/1.1\r\nHost: h\r\nbroken\r\n\r\n",
			status: 400,
		},
		{
			name:   "space before colon",
			head:   "GET / HTTP/1.1\r\nHost : h\r\n\r\n",
			status: 400,
		},
		{
			name:   "empty name",
			head:   "GET / HTTP/1.1\r\nHost: h\r\n: v\r\n\r\n",
			status: 400,
		},
		{
			name:   "folded header",
			head:   "GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n b\r\n\r\n",
			status: 400,
		},
		{
			name:   "bare LF",
			head:   "GET / HTTP/1.1\r\nHost: h\nX: a\r\n\r\n",
			status: 400,
		},
		{
			name:   "NUL in value",
			head:   "GET / HTTP/1.1\r\nHost: h\x00\r\n\r\n",
			status: 400,
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, n, err := ParseRequest([]byte(c.head), 0)
			var he *HTTPError
			if !errors.As(err, &he) || he.Status != c.status || n != 0 {
				t.Fatalf(
					"got n=%d err=%v, want HTTP %d",
					n, err, c.status)
			}
		})
	}
}

// TestParseRequestEarlyReject checks that a garbage request line is refused
// as soon as its line ends, without waiting for a whole head.
func TestParseRequestEarlyReject(t *testing.T) {
	_, _, err := ParseRequest([]byte("\x16\x03\x01 garbage\r\nmore"), 0)
	var he *HTTPError
	if !errors.As(err, &he) || he.Status != 400 {
		t.Fatalf(
			"got %v, want HTTP 400",
			err)
	}
}

// TestParseRequestPartial feeds a head one byte at a time: every prefix is
// incomplete, the whole head parses.
func TestParseRequestPartial(t *testing.T) {
	head := upgradeRequest("/kafka", "User-Agent: test", "X-Filler: "+strings.Repeat("a", 2000))
	for i := 0; i < len(head); i++ {
		_, n, err := ParseRequest([]byte(head[:i]), 0)
		if !errors.Is(err, ErrIncomplete) || n != 0 {
			t.Fatalf(
				"prefix of %d bytes: n=%d err=%v, want ErrIncomplete",
				i, n, err)
		}
	}
	req, n, err := ParseRequest([]byte(head), 0)
	if err != nil || n != len(head) || !req.Upgrade {
		t.Fatalf(
			"whole head: %+v n=%d err=%v",
			req, n, err)
	}
}

// TestParseRequestHeaderBomb checks the size cap: 10 KiB of headers are
// refused with 431 whether or not the head ever ends, and the default cap
// is 8 KiB.
func TestParseRequestHeaderBomb(t *testing.T) {
	var b strings.Builder
	b.WriteString("GET /kafka HTTP/1.1\r\nHost: h\r\n")
	for b.Len() < 10<<10 {
		b.WriteString("X-Bomb: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n")
	}
	unfinished := b.String()
	finished := unfinished + "\r\n"
	for _, head := range []string{unfinished, finished} {
		_, n, err := ParseRequest([]byte(head), 0)
		var he *HTTPError
		if !errors.As(err, &he) || he.Status != 431 || n != 0 {
			t.Fatalf(
				"got n=%d err=%v, want HTTP 431",
				n, err)
		}
	}
	// Just under the cap is incomplete, and a larger cap accepts it.
	if _, _, err := ParseRequest([]byte(unfinished[:DefaultMaxHeader-1]), 0); !errors.Is(err, ErrIncomplete) {
		t.Fatalf(
			"prefix under the cap: %v, want ErrIncomplete",
			err)
	}
	if _, n, err := ParseRequest([]byte(finished), 16<<10); err != nil || n != len(finished) {
		t.Fatalf(
			"with a 16 KiB cap: n=%d err=%v",
			n, err)
	}
	// A head ending exactly at the cap is accepted, one byte more is not.
	if _, _, err := ParseRequest([]byte(finished), len(finished)); err != nil {
		t.Fatalf(
			"head of exactly maxHeader bytes: %v",
			err)
	}
	if _, _, err := ParseRequest([]byte(finished), len(finished)-1); err == nil {
		t.Fatalf("head one byte over maxHeader accepted")
	}
}

func TestAppendUpgradeResponse(t *testing.T) {
	// The example of RFC 6455 1.3.
	got := string(AppendUpgradeResponse([]byte("x"), []byte(validKeyText)))
	want := "xHTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n"
	if got != want {
		t.Fatalf(
			"got %q, want %q",
			got, want)
	}
	// And an independent computation for another key.
	key := base64.StdEncoding.EncodeToString([]byte("0123456789abcdef"))
	sum := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(AppendUpgradeResponse(nil, []byte(key)))), nil)
	if err != nil {
		t.Fatalf(
			"read response: %v",
			err)
	}
	if resp.StatusCode != 101 || resp.Header.Get("Sec-WebSocket-Accept") != base64.StdEncoding.EncodeToString(sum[:]) {
		t.Fatalf(
			"got %d %v",
			resp.StatusCode, resp.Header)
	}
}

func TestAppendHTTPResponse(t *testing.T) {
	cases := []struct {
		status  int
		body    string
		version string
		upgrade string
	}{
		{status: 400, body: "websocket upgrade must use method GET", version: "13"},
		{status: 404, body: "no route for /x"},
		{status: 426, body: "", version: "13", upgrade: "websocket"},
		{status: 431, body: "request head larger than 8192 bytes"},
		{status: 599, body: "odd"},
	}
	for _, c := range cases {
		raw := AppendHTTPResponse(nil, c.status, c.body)
		resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(raw)), nil)
		if err != nil {
			t.Fatalf(
				"status %d: read response: %v",
				c.status, err)
		}
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatalf(
				"status %d: read body: %v",
				c.status, err)
		}
		if resp.StatusCode != c.status || string(body) != c.body || !resp.Close ||
			resp.Header.Get("Sec-WebSocket-Version") != c.version || resp.Header.Get("Upgrade") != c.upgrade {
			t.Fatalf(
				"status %d: got %d %q close=%v headers %v",
				c.status, resp.StatusCode, body, resp.Close, resp.Header)
		}
	}
}

func TestHTTPErrorMessage(t *testing.T) {
	e := &HTTPError{Status: 431, Reason: "too big"}
	if e.Error() != "wsframe: HTTP 431: too big" {
		t.Fatalf(
			"Error() = %q",
			e.Error())
	}
}
