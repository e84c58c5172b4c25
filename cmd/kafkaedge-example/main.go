// Command kafkaedge-example is the Go client of the README: it opens a
// WebSocket on a kafkaedge route, lists the first and the next offset of one
// partition, fetches its messages from -offset up to that next offset and
// prints each one. An error_resp from the server, a refused upgrade (404 for
// a URI that has no route) or a broken connection is printed on stderr and
// ends it with exit code 1; bad flags with 2.
//
//	make run                       # one terminal: kafkaedge on its demo cluster
//	go run ./cmd/kafkaedge-example # another: ws://127.0.0.1:9080/kafka, topic demo, partition 0
//
// It uses only gorilla/websocket and the generated protobuf package
// github.com/kafkaedge/kafkaedge/proto/pubsub, so that it can be copied into
// a program of your own (README: "Using the module from another project").
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/gorilla/websocket"
	"google.golang.org/protobuf/proto"

	"github.com/kafkaedge/kafkaedge/proto/pubsub"
)

// timeout bounds the upgrade and the answer to each request.
const timeout = 10 * time.Second

// The timestamps of cmd_kafka_list_offset that ask for an offset rather than
// a time (docs/protocol.md).
const (
	firstOffset = -2 // the first offset still in the partition
	nextOffset  = -1 // the high watermark: the offset the next message will get
)

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}

// run is the program with its arguments and outputs; it returns the exit
// code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("kafkaedge-example", flag.ContinueOnError)
	fs.SetOutput(stderr)
	url := fs.String("url", "ws://127.0.0.1:9080/kafka", "WebSocket URL of a kafkaedge route")
	topic := fs.String("topic", "demo", "Kafka topic")
	partition := fs.Int("partition", 0, "partition of the topic")
	offset := fs.Int64("offset", 0, "first offset to fetch")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "kafkaedge-example: unexpected argument %q (flags only, see -h)\n", fs.Arg(0))
		return 2
	}
	if *partition < 0 || *partition > math.MaxInt32 {
		fmt.Fprintf(stderr, "kafkaedge-example: -partition %d out of range 0..%d\n", *partition, math.MaxInt32)
		return 2
	}
	if err := consume(ctx, stdout, *url, *topic, int32(*partition), *offset); err != nil {
		fmt.Fprintf(stderr, "kafkaedge-example: %v\n", err)
		return 1
	}
	return 0
}

// consume prints the offsets of topic/partition and then its messages from
// offset up to the next offset listed.
func consume(ctx context.Context, out io.Writer, url, topic string, partition int32, offset int64) error {
	c, err := dial(ctx, url)
	if err != nil {
		return err
	}
	defer c.close()

	first, err := c.listOffset(topic, partition, firstOffset)
	if err != nil {
		return err
	}
	next, err := c.listOffset(topic, partition, nextOffset)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "topic %s partition %d: first offset %d, next offset %d\n", topic, partition, first, next)

	// A fetch returns the messages from offset on, as many as fit in one
	// answer (an empty list: nothing there yet); go on from the last one + 1.
	for offset < next {
		msgs, err := c.fetch(topic, partition, offset)
		if err != nil {
			return err
		}
		if len(msgs) == 0 {
			break
		}
		for _, m := range msgs {
			fmt.Fprintf(out, "offset %d key %s value %s\n", m.GetOffset(), m.GetKey(), m.GetValue())
		}
		offset = msgs[len(msgs)-1].GetOffset() + 1
	}
	return nil
}

// client is one WebSocket connection to a kafkaedge route. It sends one
// request at a time (the protocol allows many in flight, matched by
// sequence).
type client struct {
	conn *websocket.Conn
	seq  int64 // sequence of the last request
}

// dial opens the WebSocket. When the server answers the upgrade with an HTTP
// error (404 when no route has the URI), the error carries its status and
// the body, the server's one-line reason.
func dial(ctx context.Context, url string) (*client, error) {
	d := websocket.Dialer{HandshakeTimeout: timeout}
	conn, resp, err := d.DialContext(ctx, url, nil)
	if err != nil {
		if resp != nil {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
			resp.Body.Close()
			return nil, fmt.Errorf("%s: upgrade refused: %s: %s", url, resp.Status, strings.TrimSpace(string(body)))
		}
		if errors.Is(err, syscall.ECONNREFUSED) {
			return nil, fmt.Errorf("%s: %w (is kafkaedge running? `make run` starts the demo)", url, err)
		}
		return nil, fmt.Errorf("%s: %w", url, err)
	}
	return &client{conn: conn}, nil
}

// close sends a close frame (1000, normal closure) and closes the connection.
func (c *client) close() {
	msg := websocket.FormatCloseMessage(websocket.CloseNormalClosure, "")
	_ = c.conn.WriteControl(websocket.CloseMessage, msg, time.Now().Add(time.Second))
	c.conn.Close()
}

// do sends req with the next sequence and returns the answer. An error_resp
// is returned as an error holding the server's code and message; so is the
// server's close frame (e.g. 1001 "route removed" when the route goes away).
func (c *client) do(req *pubsub.PubSubReq) (*pubsub.PubSubResp, error) {
	c.seq++
	req.Sequence = c.seq
	b, err := proto.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("encode request: %w", err)
	}
	_ = c.conn.SetWriteDeadline(time.Now().Add(timeout))
	if err := c.conn.WriteMessage(websocket.BinaryMessage, b); err != nil {
		return nil, fmt.Errorf("send request: %w", err)
	}
	_ = c.conn.SetReadDeadline(time.Now().Add(timeout))
	typ, data, err := c.conn.ReadMessage()
	if err != nil {
		return nil, fmt.Errorf("read answer: %w", err)
	}
	if typ != websocket.BinaryMessage {
		return nil, errors.New("read answer: a text message (the protocol has binary ones only)")
	}
	resp := new(pubsub.PubSubResp)
	if err := proto.Unmarshal(data, resp); err != nil {
		return nil, fmt.Errorf("decode answer: %w", err)
	}
	if e := resp.GetErrorResp(); e != nil {
		return nil, fmt.Errorf("server error (code %d): %s", e.GetCode(), e.GetMessage())
	}
	if resp.GetSequence() != c.seq {
		return nil, fmt.Errorf("answer with sequence %d to request %d", resp.GetSequence(), c.seq)
	}
	return resp, nil
}

// listOffset returns the offset of topic/partition at timestamp: firstOffset,
// nextOffset, or milliseconds since the epoch.
func (c *client) listOffset(topic string, partition int32, timestamp int64) (int64, error) {
	resp, err := c.do(&pubsub.PubSubReq{Req: &pubsub.PubSubReq_CmdKafkaListOffset{
		CmdKafkaListOffset: &pubsub.CmdKafkaListOffset{Topic: topic, Partition: partition, Timestamp: timestamp}}})
	if err != nil {
		return 0, err
	}
	r := resp.GetKafkaListOffsetResp()
	if r == nil {
		return 0, fmt.Errorf("list offset answered with %T", resp.GetResp())
	}
	return r.GetOffset(), nil
}

// fetch returns the messages of topic/partition from offset on.
func (c *client) fetch(topic string, partition int32, offset int64) ([]*pubsub.KafkaMessage, error) {
	resp, err := c.do(&pubsub.PubSubReq{Req: &pubsub.PubSubReq_CmdKafkaFetch{
		CmdKafkaFetch: &pubsub.CmdKafkaFetch{Topic: topic, Partition: partition, Offset: offset}}})
	if err != nil {
		return nil, err
	}
	r := resp.GetKafkaFetchResp()
	if r == nil {
		return nil, fmt.Errorf("fetch answered with %T", resp.GetResp())
	}
	return r.GetMessages(), nil
}
