package wsclient

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"google.golang.org/protobuf/proto"

	"github.com/kafkaedge/kafkaedge/proto/pubsub"
)

// echoServer echoes binary messages; a text message "bye" is answered
// with a binary message "x" and then a close frame 1001.
func echoServer(t *testing.T) string {
	t.Helper()
	up := websocket.Upgrader{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		for {
			typ, b, err := c.ReadMessage()
			if err != nil {
				return
			}
			if typ == websocket.TextMessage && string(b) == "bye" {
				c.WriteMessage(websocket.BinaryMessage, []byte("x"))
				c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(CloseGoingAway, ""), time.Now().Add(time.Second))
				return
			}
			if err := c.WriteMessage(typ, b); err != nil {
				return
			}
		}
	}))
	t.Cleanup(srv.Close)
	return "ws" + strings.TrimPrefix(srv.URL, "http")
}

func TestNumberBatchAndClose(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := Dial(ctx, echoServer(t), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}

	// Number continues the sequences of SendFetch (and of Fetch, ListOffset
	// and Ping); SendBatch sends the requests as they are.
	if seq, err := c.SendFetch("t", 0, 0); err != nil || seq != 1 {
		t.Fatalf("SendFetch: sequence %d, err %v", seq, err)
	}
	if _, err := c.RecvRaw(); err != nil {
		t.Fatal(err)
	}
	a, b := c.Number(PingReq(0, []byte("a"))), c.Number(FetchReq(0, "t", 0, 0))
	if a.GetSequence() != 2 || b.GetSequence() != 3 || c.NextSequence() != 4 {
		t.Fatalf("sequences %d, %d, next %d; want 2, 3, next 4", a.GetSequence(), b.GetSequence(), c.NextSequence())
	}
	if err := c.SendBatch(a, b); err != nil {
		t.Fatal(err)
	}
	for _, want := range []*pubsub.PubSubReq{a, b} {
		raw, err := c.RecvRaw()
		if err != nil {
			t.Fatal(err)
		}
		var got pubsub.PubSubReq
		if err := proto.Unmarshal(raw, &got); err != nil || !proto.Equal(&got, want) {
			t.Fatalf("echo %v (err %v), want %v", &got, err, want)
		}
	}

	// RecvClose refuses a message, then returns the close code.
	if err := c.SendRaw(TextMessage, []byte("bye")); err != nil {
		t.Fatal(err)
	}
	if code, err := c.RecvClose(); !errors.Is(err, ErrNotClosed) {
		t.Fatalf("RecvClose over a message: code %d, err %v; want ErrNotClosed", code, err)
	}
	if code, err := c.RecvClose(); err != nil || code != CloseGoingAway {
		t.Fatalf("RecvClose: code %d, err %v; want 1001", code, err)
	}
}
