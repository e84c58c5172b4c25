// Package wsclient is a WebSocket client of kafkaedge's client protocol (the
// APISIX pub/sub protocol), built on gorilla/websocket, an implementation
// independent of the server's: the one client of the reactor's, the
// binary's and the benchmark's tests, and of the benchmark suite. It offers
// full protobuf round trips for checks, raw frames, pipelined requests in
// one write, the server's close frames, and an allocation-light fetch path
// that only counts what a response carries.
package wsclient

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"time"

	"github.com/gobwas/ws"
	"github.com/gorilla/websocket"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/kafkaedge/kafkaedge/proto/pubsub"
)

// Frame types of SendRaw (gorilla/websocket's values).
const (
	TextMessage   = websocket.TextMessage
	BinaryMessage = websocket.BinaryMessage
)

// Close codes (RFC 6455, section 7.4.1) to compare with those of RecvClose
// and CloseCode.
const (
	CloseNormalClosure = websocket.CloseNormalClosure // 1000
	CloseGoingAway     = websocket.CloseGoingAway     // 1001
	CloseMessageTooBig = websocket.CloseMessageTooBig // 1009
)

// MaxResponse is the largest response frame a Conn accepts (a 10 MiB Kafka
// fetch re-encoded with per-message framing stays well under it).
const MaxResponse = 64 << 20

// Sentinel errors callers branch on.
var (
	// ErrSequence means a response carried a sequence the client did not
	// expect (the server answered out of order or made one up).
	ErrSequence = errors.New("wsclient: unexpected response sequence")
	// ErrUnexpected means a response held a different kind of message than
	// the request asked for.
	ErrUnexpected = errors.New("wsclient: unexpected response type")
	// ErrMalformed means a response frame was not a valid PubSubResp.
	ErrMalformed = errors.New("wsclient: malformed response")
	// ErrText means the server sent a text message, which the protocol
	// never does.
	ErrText = errors.New("wsclient: text message from the server")
	// ErrNotClosed means RecvClose read a message where it expected the
	// server's close frame.
	ErrNotClosed = errors.New("wsclient: a message instead of a close frame")
)

// ServerError is an ErrorResp returned by the server.
type ServerError struct {
	Code    int32
	Message string
}

// Error returns the server's message.
func (e *ServerError) Error() string { return e.Message }

// Options tunes Dial. The zero value is usable.
type Options struct {
	// HandshakeTimeout bounds the HTTP upgrade, default 10s.
	HandshakeTimeout time.Duration
	// ReadBufferSize and WriteBufferSize are gorilla's I/O buffer sizes
	// (default 4096 each).
	ReadBufferSize, WriteBufferSize int
	// WrapConn, if set, wraps the TCP connection after it is dialed, e.g. to
	// throttle reads for a slow-reader client.
	WrapConn func(net.Conn) net.Conn
}

// Conn is one WebSocket connection. Its methods are not safe for concurrent
// use, except that one goroutine may Send while another reads with Recv or
// RecvFetch.
type Conn struct {
	ws    *websocket.Conn
	seq   int64
	out   []byte    // encoding buffer of Send
	in    []byte    // frame buffer of Recv
	batch []byte    // frames of SendBatch
	wdl   time.Time // write deadline, for the raw write of SendBatch

	br      *bufio.Reader // streaming reader of RecvFetch
	scratch []byte        // one message of RecvFetch
}

// Dial opens a WebSocket to url ("ws://host:port/uri").
func Dial(ctx context.Context, url string, o Options) (*Conn, error) {
	d := websocket.Dialer{
		HandshakeTimeout: o.HandshakeTimeout,
		ReadBufferSize:   o.ReadBufferSize,
		WriteBufferSize:  o.WriteBufferSize,
	}
	if d.HandshakeTimeout == 0 {
		d.HandshakeTimeout = 10 * time.Second
	}
	if o.WrapConn != nil {
		var nd net.Dialer
		d.NetDialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := nd.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			return o.WrapConn(c), nil
		}
	}
	ws, resp, err := d.DialContext(ctx, url, nil)
	if err != nil {
		if resp != nil {
			resp.Body.Close()
			return nil, &HandshakeError{URL: url, Status: resp.StatusCode, Err: err}
		}
		return nil, fmt.Errorf("dial %s: %w", url, err)
	}
	ws.SetReadLimit(MaxResponse)
	return &Conn{ws: ws}, nil
}

// Close closes the connection without a closing handshake.
func (c *Conn) Close() error { return c.ws.Close() }

// CloseGracefully sends a close frame (1000) and closes the connection.
func (c *Conn) CloseGracefully() error {
	msg := websocket.FormatCloseMessage(websocket.CloseNormalClosure, "")
	_ = c.ws.WriteControl(websocket.CloseMessage, msg, time.Now().Add(time.Second))
	return c.ws.Close()
}

// SendClose sends a close frame with code and reason and leaves the
// connection open: the server's reply comes back from the next read as an
// error, see CloseCode.
func (c *Conn) SendClose(code int, reason string) error {
	msg := websocket.FormatCloseMessage(code, reason)
	if err := c.ws.WriteControl(websocket.CloseMessage, msg, time.Now().Add(10*time.Second)); err != nil {
		return fmt.Errorf("send close: %w", err)
	}
	return nil
}

// CloseCode returns the status code of the close frame that ended a read
// with err, and false if err is not the receipt of a close frame.
func CloseCode(err error) (int, bool) {
	var ce *websocket.CloseError
	if errors.As(err, &ce) {
		return ce.Code, true
	}
	return 0, false
}

// CloseReason returns the reason of the server's close frame that err
// reports, and whether it reports one.
func CloseReason(err error) (string, bool) {
	var ce *websocket.CloseError
	if errors.As(err, &ce) {
		return ce.Text, true
	}
	return "", false
}

// SetDeadline sets the read and write deadline of the connection.
func (c *Conn) SetDeadline(t time.Time) error {
	if err := c.ws.SetReadDeadline(t); err != nil {
		return err
	}
	return c.SetWriteDeadline(t)
}

// SetWriteDeadline sets the deadline of the writes: Send, SendRaw and
// SendBatch fail after it.
func (c *Conn) SetWriteDeadline(t time.Time) error {
	c.wdl = t
	return c.ws.SetWriteDeadline(t)
}

// SetReadDeadline sets the deadline of the reads: Recv and its kin fail
// after it.
func (c *Conn) SetReadDeadline(t time.Time) error { return c.ws.SetReadDeadline(t) }

// NextSequence returns the sequence the next Fetch, ListOffset, Ping or
// Number will use.
func (c *Conn) NextSequence() int64 { return c.seq + 1 }

// Number sets the sequence of req to the connection's next one (see
// NextSequence) and returns req, for a request built by the caller that is
// sent with Send, SendBatch or Do among those of Fetch, ListOffset and Ping
// without reusing their sequences: c.Do(c.Number(req)).
func (c *Conn) Number(req *pubsub.PubSubReq) *pubsub.PubSubReq {
	c.seq++
	req.Sequence = c.seq
	return req
}

// Send writes req as one binary frame.
func (c *Conn) Send(req *pubsub.PubSubReq) error {
	var err error
	c.out, err = proto.MarshalOptions{}.MarshalAppend(c.out[:0], req)
	if err != nil {
		return fmt.Errorf("encode request %d: %w", req.GetSequence(), err)
	}
	return c.SendRaw(websocket.BinaryMessage, c.out)
}

// SendRaw writes one frame of the given gorilla message type as is.
func (c *Conn) SendRaw(messageType int, payload []byte) error {
	if err := c.ws.WriteMessage(messageType, payload); err != nil {
		return fmt.Errorf("send: %w", err)
	}
	return nil
}

// SendBatch writes reqs as binary frames in a single write to the socket,
// so that the server finds them in its input at once.
func (c *Conn) SendBatch(reqs ...*pubsub.PubSubReq) error {
	c.batch = c.batch[:0]
	for _, req := range reqs {
		var err error
		c.out, err = proto.MarshalOptions{}.MarshalAppend(c.out[:0], req)
		if err != nil {
			return fmt.Errorf("encode request %d: %w", req.GetSequence(), err)
		}
		frame, err := ws.CompileFrame(ws.MaskFrameInPlace(ws.NewBinaryFrame(c.out)))
		if err != nil {
			return fmt.Errorf("encode request %d: %w", req.GetSequence(), err)
		}
		c.batch = append(c.batch, frame...)
	}
	conn := c.ws.UnderlyingConn()
	if err := conn.SetWriteDeadline(c.wdl); err != nil {
		return fmt.Errorf("send: %w", err)
	}
	if _, err := conn.Write(c.batch); err != nil {
		return fmt.Errorf("send: %w", err)
	}
	return nil
}

// RecvClose reads the next frame, which must be the server's close frame,
// and returns its status code (1005 if it carried none). A message is
// ErrNotClosed; any other failure of the read is returned as it is.
func (c *Conn) RecvClose() (int, error) {
	typ, r, err := c.ws.NextReader()
	if err != nil {
		if code, ok := CloseCode(err); ok {
			return code, nil
		}
		return 0, fmt.Errorf("read close: %w", err)
	}
	n, _ := io.Copy(io.Discard, r)
	return 0, fmt.Errorf("%w: message of type %d, %d bytes", ErrNotClosed, typ, n)
}

// RecvRaw reads the next message, which must be binary, and returns its
// payload, valid until the next read.
func (c *Conn) RecvRaw() ([]byte, error) { return c.readFrame() }

// readFrame reads the next message into c.in.
func (c *Conn) readFrame() ([]byte, error) {
	r, err := c.nextReader()
	if err != nil {
		return nil, err
	}
	c.in = c.in[:0]
	for {
		if len(c.in) == cap(c.in) {
			c.in = append(c.in, 0)[:len(c.in)]
		}
		n, err := r.Read(c.in[len(c.in):cap(c.in)])
		c.in = c.in[:len(c.in)+n]
		if err == io.EOF {
			return c.in, nil
		}
		if err != nil {
			return nil, fmt.Errorf("read response: %w", err)
		}
	}
}

// nextReader returns the reader of the next message, which must be binary.
func (c *Conn) nextReader() (io.Reader, error) {
	typ, r, err := c.ws.NextReader()
	if err != nil {
		return nil, fmt.Errorf("read response: %w", err)
	}
	if typ != websocket.BinaryMessage {
		return nil, ErrText
	}
	return r, nil
}

// Recv reads and decodes the next response.
func (c *Conn) Recv() (*pubsub.PubSubResp, error) {
	b, err := c.readFrame()
	if err != nil {
		return nil, err
	}
	resp := new(pubsub.PubSubResp)
	if err := proto.Unmarshal(b, resp); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	return resp, nil
}

// Do sends req and returns the next response, checking its sequence.
func (c *Conn) Do(req *pubsub.PubSubReq) (*pubsub.PubSubResp, error) {
	if err := c.Send(req); err != nil {
		return nil, err
	}
	resp, err := c.Recv()
	if err != nil {
		return nil, err
	}
	if resp.GetSequence() != req.GetSequence() {
		return nil, fmt.Errorf("%w: sent %d, got %d", ErrSequence, req.GetSequence(), resp.GetSequence())
	}
	return resp, nil
}

// ProduceReq builds a produce request.
func ProduceReq(seq int64, m *pubsub.CmdKafkaProduce) *pubsub.PubSubReq {
	return &pubsub.PubSubReq{Sequence: seq, Req: &pubsub.PubSubReq_CmdKafkaProduce{CmdKafkaProduce: m}}
}

// FetchReq builds a fetch request.
func FetchReq(seq int64, topic string, partition int32, offset int64) *pubsub.PubSubReq {
	return &pubsub.PubSubReq{Sequence: seq, Req: &pubsub.PubSubReq_CmdKafkaFetch{
		CmdKafkaFetch: &pubsub.CmdKafkaFetch{Topic: topic, Partition: partition, Offset: offset}}}
}

// ListOffsetReq builds a list-offset request.
func ListOffsetReq(seq int64, topic string, partition int32, timestamp int64) *pubsub.PubSubReq {
	return &pubsub.PubSubReq{Sequence: seq, Req: &pubsub.PubSubReq_CmdKafkaListOffset{
		CmdKafkaListOffset: &pubsub.CmdKafkaListOffset{Topic: topic, Partition: partition, Timestamp: timestamp}}}
}

// PingReq builds a ping request.
func PingReq(seq int64, state []byte) *pubsub.PubSubReq {
	return &pubsub.PubSubReq{Sequence: seq, Req: &pubsub.PubSubReq_CmdPing{CmdPing: &pubsub.CmdPing{State: state}}}
}

// errorOf returns the ServerError in resp, if any.
func errorOf(resp *pubsub.PubSubResp) error {
	if e := resp.GetErrorResp(); e != nil {
		return &ServerError{Code: e.GetCode(), Message: e.GetMessage()}
	}
	return nil
}

// Fetch fetches topic/partition from offset and returns the decoded messages.
func (c *Conn) Fetch(topic string, partition int32, offset int64) ([]*pubsub.KafkaMessage, error) {
	c.seq++
	resp, err := c.Do(FetchReq(c.seq, topic, partition, offset))
	if err != nil {
		return nil, err
	}
	if err := errorOf(resp); err != nil {
		return nil, err
	}
	f := resp.GetKafkaFetchResp()
	if f == nil {
		return nil, fmt.Errorf("%w: fetch answered with %T", ErrUnexpected, resp.GetResp())
	}
	return f.GetMessages(), nil
}

// Produce sends a produce request and returns its results, one per
// record; an ErrorResp is a *ServerError.
func (c *Conn) Produce(m *pubsub.CmdKafkaProduce) ([]*pubsub.KafkaProduced, error) {
	c.seq++
	resp, err := c.Do(ProduceReq(c.seq, m))
	if err != nil {
		return nil, err
	}
	if err := errorOf(resp); err != nil {
		return nil, err
	}
	pr := resp.GetKafkaProduceResp()
	if pr == nil {
		return nil, fmt.Errorf("%w: produce answered with %T", ErrUnexpected, resp.GetResp())
	}
	if len(pr.GetResults()) != len(m.GetRecords()) {
		return nil, fmt.Errorf("%w: %d results for %d records", ErrUnexpected, len(pr.GetResults()), len(m.GetRecords()))
	}
	return pr.GetResults(), nil
}

// ListOffset asks for the offset of topic/partition at timestamp (-1 end, -2 start).
func (c *Conn) ListOffset(topic string, partition int32, timestamp int64) (int64, error) {
	c.seq++
	resp, err := c.Do(ListOffsetReq(c.seq, topic, partition, timestamp))
	if err != nil {
		return 0, err
	}
	if err := errorOf(resp); err != nil {
		return 0, err
	}
	l := resp.GetKafkaListOffsetResp()
	if l == nil {
		return 0, fmt.Errorf("%w: list offset answered with %T", ErrUnexpected, resp.GetResp())
	}
	return l.GetOffset(), nil
}

// Ping sends state and returns the state of the pong.
func (c *Conn) Ping(state []byte) ([]byte, error) {
	c.seq++
	resp, err := c.Do(PingReq(c.seq, state))
	if err != nil {
		return nil, err
	}
	if err := errorOf(resp); err != nil {
		return nil, err
	}
	p := resp.GetPongResp()
	if p == nil {
		return nil, fmt.Errorf("%w: ping answered with %T", ErrUnexpected, resp.GetResp())
	}
	return p.GetState(), nil
}

// Summary is what a fetch response carried, without the messages themselves.
type Summary struct {
	Sequence    int64
	Messages    int   // number of messages
	ValueBytes  int   // sum of the value lengths
	FirstOffset int64 // offset of the first message, -1 if none
	LastOffset  int64 // offset of the last message, -1 if none
}

// FetchSummary sends a fetch and summarizes its response without decoding
// the messages into structs. An ErrorResp is returned as *ServerError.
func (c *Conn) FetchSummary(topic string, partition int32, offset int64) (Summary, error) {
	c.seq++
	if err := c.Send(FetchReq(c.seq, topic, partition, offset)); err != nil {
		return Summary{}, err
	}
	s, err := c.RecvFetch()
	if err != nil {
		return s, err
	}
	if s.Sequence != c.seq {
		return s, fmt.Errorf("%w: sent %d, got %d", ErrSequence, c.seq, s.Sequence)
	}
	return s, nil
}

// SendFetch sends a fetch with the next sequence and returns that sequence,
// for callers that keep several requests in flight.
func (c *Conn) SendFetch(topic string, partition int32, offset int64) (int64, error) {
	c.seq++
	return c.seq, c.Send(FetchReq(c.seq, topic, partition, offset))
}

// RecvFetch reads the next response and summarizes it as a fetch response.
// It parses the frame as it streams in, so a large response costs no large
// buffer.
func (c *Conn) RecvFetch() (Summary, error) {
	r, err := c.nextReader()
	if err != nil {
		return Summary{}, err
	}
	if c.br == nil {
		c.br = bufio.NewReaderSize(r, 32<<10)
	} else {
		c.br.Reset(r)
	}
	s, err := c.summarize()
	if err != nil {
		return s, err
	}
	// The frame must be consumed entirely before the next one.
	if _, err := c.br.Discard(math.MaxInt); err != nil && err != io.EOF {
		return s, fmt.Errorf("read response: %w", err)
	}
	return s, nil
}

// streamReader reads protobuf primitives from a bufio.Reader and counts
// the bytes it consumed.
type streamReader struct {
	br *bufio.Reader
	n  int64
}

func (r *streamReader) uvarint() (uint64, error) {
	var v uint64
	for shift := uint(0); shift < 64; shift += 7 {
		b, err := r.br.ReadByte()
		if err == io.EOF && shift > 0 {
			return 0, fmt.Errorf("%w: truncated varint", ErrMalformed)
		}
		if err != nil {
			return 0, err
		}
		r.n++
		v |= uint64(b&0x7f) << shift
		if b < 0x80 {
			return v, nil
		}
	}
	return 0, fmt.Errorf("%w: varint overflow", ErrMalformed)
}

// bytes reads n bytes into buf (grown as needed, up to MaxResponse).
func (r *streamReader) bytes(buf []byte, n uint64) ([]byte, error) {
	if n > MaxResponse {
		return buf, fmt.Errorf("%w: field of %d bytes", ErrMalformed, n)
	}
	// Grow with what actually arrives, so that a lying length in a short
	// frame costs no large allocation.
	buf = buf[:0]
	for rest := int(n); rest > 0; {
		chunk := min(rest, 64<<10)
		if cap(buf)-len(buf) < chunk {
			buf = append(buf, make([]byte, chunk)...)[:len(buf)]
		}
		m, err := io.ReadFull(r.br, buf[len(buf):len(buf)+chunk])
		buf = buf[:len(buf)+m]
		r.n += int64(m)
		if err != nil {
			return buf, err
		}
		rest -= m
	}
	return buf, nil
}

// skip discards the value of a field of wire type typ.
func (r *streamReader) skip(typ protowire.Type) error {
	var n uint64
	switch typ {
	case protowire.VarintType:
		_, err := r.uvarint()
		return err
	case protowire.Fixed32Type:
		n = 4
	case protowire.Fixed64Type:
		n = 8
	case protowire.BytesType:
		var err error
		if n, err = r.uvarint(); err != nil {
			return err
		}
	default:
		return fmt.Errorf("%w: wire type %d", ErrMalformed, typ)
	}
	d, err := r.br.Discard(int(min(n, MaxResponse)))
	r.n += int64(d)
	return err
}

// eofOK turns an io.EOF inside a frame into a malformed-response error.
func eofOK(err error) error {
	if err == io.EOF {
		return fmt.Errorf("%w: truncated", ErrMalformed)
	}
	return err
}

// summarize walks a PubSubResp holding a KafkaFetchResp from c.br.
func (c *Conn) summarize() (Summary, error) {
	s := Summary{FirstOffset: -1, LastOffset: -1}
	r := &streamReader{br: c.br}
	found := false
	for {
		tag, err := r.uvarint()
		if err == io.EOF {
			break
		}
		if err != nil {
			return s, fmt.Errorf("read response: %w", err)
		}
		num, typ := protowire.Number(tag>>3), protowire.Type(tag&7)
		switch {
		case num == 1 && typ == protowire.VarintType:
			v, err := r.uvarint()
			if err != nil {
				return s, eofOK(err)
			}
			s.Sequence = int64(v)
		case num == pubsub.FieldErrorResp && typ == protowire.BytesType:
			n, err := r.uvarint()
			if err != nil {
				return s, eofOK(err)
			}
			if c.scratch, err = r.bytes(c.scratch, n); err != nil {
				return s, eofOK(err)
			}
			var e pubsub.ErrorResp
			if err := proto.Unmarshal(c.scratch, &e); err != nil {
				return s, fmt.Errorf("%w: error response: %w", ErrMalformed, err)
			}
			return s, &ServerError{Code: e.GetCode(), Message: e.GetMessage()}
		case num == pubsub.FieldKafkaFetchResp && typ == protowire.BytesType:
			n, err := r.uvarint()
			if err != nil {
				return s, eofOK(err)
			}
			found = true
			if err := c.messages(r, int64(n), &s); err != nil {
				return s, err
			}
		default:
			if num >= pubsub.FieldErrorResp {
				return s, fmt.Errorf("%w: field %d instead of a fetch response", ErrUnexpected, num)
			}
			if err := r.skip(typ); err != nil {
				return s, eofOK(err)
			}
		}
	}
	if !found {
		return s, fmt.Errorf("%w: no fetch response", ErrUnexpected)
	}
	return s, nil
}

// messages reads the n bytes of a KafkaFetchResp body.
func (c *Conn) messages(r *streamReader, n int64, s *Summary) error {
	end := r.n + n
	for r.n < end {
		tag, err := r.uvarint()
		if err != nil {
			return eofOK(err)
		}
		num, typ := protowire.Number(tag>>3), protowire.Type(tag&7)
		if num != 1 || typ != protowire.BytesType {
			if err := r.skip(typ); err != nil {
				return eofOK(err)
			}
			continue
		}
		mlen, err := r.uvarint()
		if err != nil {
			return eofOK(err)
		}
		if c.scratch, err = r.bytes(c.scratch, mlen); err != nil {
			return eofOK(err)
		}
		off, vlen, err := scanMessage(c.scratch)
		if err != nil {
			return err
		}
		if s.Messages == 0 {
			s.FirstOffset = off
		}
		s.Messages++
		s.ValueBytes += vlen
		s.LastOffset = off
	}
	if r.n != end {
		return fmt.Errorf("%w: messages overrun their length", ErrMalformed)
	}
	return nil
}

// scanMessage returns the offset and value length of one KafkaMessage.
func scanMessage(m []byte) (offset int64, valueLen int, err error) {
	for len(m) > 0 {
		num, typ, n := protowire.ConsumeTag(m)
		if n < 0 {
			return 0, 0, fmt.Errorf("%w: message field: %w", ErrMalformed, protowire.ParseError(n))
		}
		m = m[n:]
		if num == 1 && typ == protowire.VarintType {
			v, n := protowire.ConsumeVarint(m)
			if n < 0 {
				return 0, 0, fmt.Errorf("%w: message offset: %w", ErrMalformed, protowire.ParseError(n))
			}
			offset = int64(v)
			m = m[n:]
			continue
		}
		if num == 4 && typ == protowire.BytesType {
			v, n := protowire.ConsumeBytes(m)
			if n < 0 {
				return 0, 0, fmt.Errorf("%w: message value: %w", ErrMalformed, protowire.ParseError(n))
			}
			valueLen = len(v)
			m = m[n:]
			continue
		}
		n = protowire.ConsumeFieldValue(num, typ, m)
		if n < 0 {
			return 0, 0, fmt.Errorf("%w: message field %d: %w", ErrMalformed, num, protowire.ParseError(n))
		}
		m = m[n:]
	}
	return offset, valueLen, nil
}

// HandshakeError is a refused WebSocket upgrade: the server answered with
// an HTTP status instead of 101.
type HandshakeError struct {
	URL    string
	Status int
	Err    error
}

// Error names the URL and the status.
func (e *HandshakeError) Error() string {
	return fmt.Sprintf("dial %s: HTTP %d: %v", e.URL, e.Status, e.Err)
}

// Unwrap returns gorilla's error.
func (e *HandshakeError) Unwrap() error { return e.Err }
