package wsframe_test

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/gobwas/ws"
	"github.com/kafkaedge/kafkaedge/wsframe"
)

// An event loop parses the upgrade request, answers it, then decodes frames
// from the bytes that follow, discarding what each call consumed.
func Example() {
	in := []byte("GET /kafka HTTP/1.1\r\nHost: edge\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
	// A masked binary frame "hi" and a masked ping, as a client sends them.
	in = append(in, 0x82, 0x82, 1, 2, 3, 4, 'h'^1, 'i'^2)
	in = append(in, 0x89, 0x80, 1, 2, 3, 4)

	req, n, err := wsframe.ParseRequest(in, 0)
	if err != nil || !req.Upgrade {
		fmt.Println("refused:", err, req.UpgradeErr)
		return
	}
	out := wsframe.AppendUpgradeResponse(nil, req.Key)
	fmt.Printf("%s\n", out[:bytes.IndexByte(out, '\r')])
	in = in[n:]

	var d wsframe.Decoder
	for {
		m, n, err := d.Next(in)
		var ce *wsframe.CloseError
		if errors.As(err, &ce) {
			fmt.Println("close with", ce.Code)
			return
		}
		if n == 0 {
			break // wait for more bytes
		}
		in = in[n:]
		switch m.Op {
		case ws.OpBinary:
			fmt.Printf("binary %q\n", m.Payload)
		case ws.OpPing:
			pong := wsframe.AppendPong(nil, m.Payload)
			fmt.Printf("ping, pong % x\n", pong)
		}
	}
	// Output:
	// HTTP/1.1 101 Switching Protocols
	// binary "hi"
	// ping, pong 8a 00
}
