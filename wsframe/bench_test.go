package wsframe

import (
	"bytes"
	"testing"

	"github.com/gobwas/ws"

	"github.com/kafkaedge/kafkaedge/internal/wstest"
)

func benchDecoder(b *testing.B, size int) {
	const frames = 64
	payload := bytes.Repeat([]byte{0x5a}, size)
	var stream []byte
	for i := 0; i < frames; i++ {
		stream = append(stream, wstest.ClientFrame(ws.OpBinary, true, payload)...)
	}
	buf := make([]byte, len(stream))
	var d Decoder
	b.SetBytes(int64(len(stream)) / frames)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if i%frames == 0 {
			copy(buf, stream) // Next unmasks in place
			i = 0
		}
		off := (len(stream) / frames) * i
		m, n, err := d.Next(buf[off:])
		if err != nil || n == 0 || len(m.Payload) != size {
			b.Fatalf(
				"Next: n=%d err=%v",
				n, err)
		}
		i++
	}
}

// BenchmarkDecoderNext measures frame parsing and unmasking; it allocates
// nothing.
func BenchmarkDecoderNext(b *testing.B) {
	b.Run("small", func(b *testing.B) { benchDecoder(b, 40) })
	b.Run("1KiB", func(b *testing.B) { benchDecoder(b, 1024) })
}

// BenchmarkParseRequest measures parsing a typical browser upgrade request.
func BenchmarkParseRequest(b *testing.B) {
	head := []byte(upgradeRequest("/kafka?client=1",
		"User-Agent: Mozilla/5.0 (X11; Linux x86_64) Gecko/20100101 Firefox/128.0",
		"Accept: */*",
		"Accept-Language: en-US,en;q=0.5",
		"Accept-Encoding: gzip, deflate",
		"Sec-WebSocket-Extensions: permessage-deflate",
		"Origin: http://localhost:9080",
		"Pragma: no-cache",
		"Cache-Control: no-cache"))
	b.SetBytes(int64(len(head)))
	b.ReportAllocs()
	for b.Loop() {
		req, _, err := ParseRequest(head, 0)
		if err != nil || !req.Upgrade {
			b.Fatalf(
				"ParseRequest: %+v %v",
				req, err)
		}
	}
}

// BenchmarkAppendUpgradeResponse measures the 101 response.
func BenchmarkAppendUpgradeResponse(b *testing.B) {
	key := []byte(validKeyText)
	var dst []byte
	b.ReportAllocs()
	for b.Loop() {
		dst = AppendUpgradeResponse(dst[:0], key)
	}
}
