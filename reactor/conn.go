package reactor

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gobwas/ws"
	"github.com/panjf2000/gnet/v2"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/kafkaedge/kafkaedge/proto/pubsub"
	"github.com/kafkaedge/kafkaedge/wsframe"
)

// Connection phases.
const (
	phaseHandshake uint8 = iota // waiting for the HTTP upgrade
	phaseOpen                   // WebSocket frames flow
	phaseClosing                // a close was decided; input is dropped
	phaseClosed                 // gnet closed the connection
)

// Input states of an open connection.
const (
	inReading uint8 = iota // its input is consumed as it arrives
	inPaused               // its input is left in gnet's buffer because of a cap; resume wakes it
	inWaking               // paused, and a Wake is on its way to read on
)

// inboundSlack is how many bytes beyond one maximum message a paused
// connection may leave in gnet's inbound buffer before it is closed: a
// client pipelining small requests stays far below it.
const inboundSlack = 256 << 10

// connState is the state of one connection, kept in gnet's Conn.Context().
// Every field but pending and slotQueue is touched only on the
// connection's event loop (gnet callbacks, AsyncWritev callbacks and tasks
// run there).
type connState struct {
	s    *Server
	c    gnet.Conn
	loop *loopState

	phase uint8
	input uint8 // inReading, inPaused or inWaking
	// held is a request read but not dispatched yet, for want of a
	// node-wide slot or of outbound budget for one more fetch; the
	// connection stays paused until it goes. held.cmd is 0 when none.
	held  kafkaReq
	dec   wsframe.Decoder
	route *route // set at the upgrade

	inflight   int    // requests answered by a Kafka goroutine, not yet written
	fetches    int    // the Fetch requests among them, each reserving maxBody of MaxOutbound
	openedAt   int64  // Server.now() at accept
	lastActive int64  // Server.now() at the last input or completed response
	overSince  int64  // Server.now() when the queued bytes passed MaxOutbound; 0 if not
	topic      string // the last topic requested, reused while the client repeats it

	slotQueue atomic.Pointer[limiter] // the limiter whose waiters hold st; set under its mutex

	memHeld       int64 // of the memory budget, for the copies in gnet's outbound buffer
	sweptBuffered int64 // OutboundBuffered at the last full sweep, while holding memory

	requests    int64         // requests read
	bytesOut    int64         // bytes of frames handed to gnet after the upgrade
	msgsOut     int64         // Kafka messages among them
	closeCode   ws.StatusCode // close code sent or received; 0 until then
	closeReason string

	pending atomic.Int64 // bytes handed to AsyncWritev whose callback has not run

	// Subscriptions (subscribe.go). subs and paused are guarded by subMu,
	// which is taken after a tail's mutex, never before.
	subMu       sync.Mutex
	subs        map[int64]*subscription // by sequence
	paused      []*subPart              // paused for the outbound queue, resumed once it drains
	pauseCheck  bool                    // a checkPaused is queued on the loop
	npaused     atomic.Int32            // 1 while paused is not empty
	nsubs       atomic.Int32            // len(subs)
	outBuffered atomic.Int64            // gnet's OutboundBuffered at the last write callback or sweep
}

// kafkaReq is a decoded Kafka request.
type kafkaReq struct {
	cmd       protowire.Number // pubsub.FieldCmdKafkaListOffset or pubsub.FieldCmdKafkaFetch
	seq       int64
	topic     string
	partition int32
	arg       int64         // offset or timestamp
	start     int64         // Server.now() when the request was read
	ext       proto.Message // kafkaedge's commands: the decoded command (pubsub.Req.Ext)
	opts      fetchOpts     // a fetch's kafkaedge fields
	sub       *subscription // a CmdKafkaSubscribe's subscription
}

// fetchOpts are the kafkaedge fields of a CmdKafkaFetch, with the node's
// limits applied; the zero value is an APISIX fetch.
type fetchOpts struct {
	maxWait  time.Duration // 0: the route's FetchMaxWait
	minBytes int32
	maxBytes int32 // of the answer's messages; 0: maxBody
	headers  bool
	extended bool // the answer carries KafkaFetchResp's fields 16 and up
}

// fetchOptions returns the options of a CmdKafkaFetch: max_wait_ms capped by
// MaxFetchWait, max_bytes by what one answer carries.
func (s *Server) fetchOptions(req *pubsub.Req) fetchOpts {
	if !req.Extended() {
		return fetchOpts{}
	}
	o := fetchOpts{minBytes: max(req.MinBytes, 0), headers: req.Headers, extended: true}
	if req.MaxWaitMs > 0 {
		o.maxWait = min(time.Duration(req.MaxWaitMs)*time.Millisecond, s.cfg.MaxFetchWait)
	}
	if req.MaxBytes > 0 && int(req.MaxBytes) < s.maxBody {
		o.maxBytes = req.MaxBytes
	}
	return o
}

// Limits of kafkaedge's commands.
const (
	// maxMetadataTopics is the most topics one CmdKafkaMetadata may name.
	maxMetadataTopics = 1000
	// maxFetchManyTargets is the most partitions one CmdKafkaFetchMany
	// may fetch.
	maxFetchManyTargets = 100
)

// queued returns the bytes waiting to go to the client: gnet's outbound
// buffer plus asynchronous writes not yet executed.
func (st *connState) queued() int {
	return st.c.OutboundBuffered() + int(st.pending.Load())
}

// onTraffic consumes what the connection's inbound buffer holds, as far as
// the caps allow, and returns gnet's action.
func (st *connState) onTraffic() gnet.Action {
	s := st.s
	if st.input == inWaking {
		st.input = inPaused
	}
	c := st.c
	switch st.phase {
	case phaseClosing, phaseClosed:
		_, _ = c.Discard(-1)
		return gnet.None
	case phaseHandshake:
		if act, done := st.handshake(); !done {
			return act
		}
	}
	st.lastActive = s.now()
	if st.held.cmd != 0 && !s.draining.Load() {
		if st.queued() > s.cfg.MaxOutbound {
			st.markOver()
			st.input = inPaused
			return st.checkInbound()
		}
		if !st.dispatchKafka(st.held) {
			st.input = inPaused
			return st.checkInbound()
		}
		st.held = kafkaReq{}
	}
	buf, _ := c.Peek(-1)
	ls := st.loop
	ls.out = ls.out[:0]
	off := 0
	act := gnet.None
	st.input = inReading
	for off < len(buf) && st.phase == phaseOpen {
		if !st.canConsume() {
			st.input = inPaused
			break
		}
		m, n, err := st.dec.Next(buf[off:])
		if err != nil {
			act = st.protocolError(err)
			break
		}
		if n == 0 {
			break
		}
		off += n
		st.onMessage(m)
	}
	if st.held.cmd != 0 {
		st.input = inPaused // resumed by a write callback or a freed slot
	}
	if len(ls.out) > 0 {
		_, _ = c.Write(ls.out)
		st.bytesOut += int64(len(ls.out))
		s.obs.Delivered(st.route.r.URI, "", len(ls.out), 0)
		ls.out = ls.out[:0]
	}
	if off > 0 {
		_, _ = c.Discard(off)
	}
	if act != gnet.None {
		return act
	}
	if st.phase == phaseClosing {
		return gnet.Close
	}
	if st.input == inPaused {
		return st.checkInbound()
	}
	return gnet.None
}

// checkInbound closes a paused connection whose unread input grows past
// what one message and some pipelining need.
func (st *connState) checkInbound() gnet.Action {
	if st.c.InboundBuffered() > st.s.cfg.MaxMessage+inboundSlack {
		st.s.obs.Backpressure(BackpressureFloodClosed)
		st.s.loopLog.Warn("closing a client that sends past its pause",
			"remote", st.c.RemoteAddr(), "unread", st.c.InboundBuffered())
		st.closeFrame(ws.StatusPolicyViolation, "too many requests in flight")
		return gnet.Close
	}
	return gnet.None
}

// canConsume reports whether another request may be read: the connection is
// below MaxInflight and MaxOutbound, no request waits for a slot and the
// server is not draining.
func (st *connState) canConsume() bool {
	s := st.s
	if st.held.cmd != 0 || s.draining.Load() {
		return false
	}
	if st.inflight >= s.cfg.MaxInflight {
		s.obs.Backpressure(BackpressureInflightCap)
		return false
	}
	if st.queued() > s.cfg.MaxOutbound {
		st.markOver()
		return false
	}
	return true
}

// markOver records that the queued bytes passed MaxOutbound, for the sweep
// that resumes or closes the connection.
func (st *connState) markOver() {
	if st.overSince == 0 {
		st.s.obs.Backpressure(BackpressurePaused)
		st.overSince = max(st.s.now(), 1)
		st.loop.over[st] = struct{}{}
		st.loop.overN.Add(1)
	}
}

// resume makes gnet call OnTraffic again for a paused connection, which
// reads the input left in gnet's buffer. Called on the loop.
func (st *connState) resume() {
	if st.input != inPaused || st.phase != phaseOpen {
		return
	}
	st.input = inWaking
	_ = st.c.Wake(nil)
}

// handshake parses the HTTP upgrade. done is true once the connection is a
// WebSocket and frames may follow in the same buffer.
func (st *connState) handshake() (act gnet.Action, done bool) {
	s := st.s
	c := st.c
	buf, _ := c.Peek(-1)
	req, n, err := wsframe.ParseRequest(buf, s.cfg.MaxHeader)
	if errors.Is(err, wsframe.ErrIncomplete) {
		return gnet.None, false
	}
	if err != nil {
		status, reason := 400, "bad request"
		var he *wsframe.HTTPError
		if errors.As(err, &he) {
			status, reason = he.Status, he.Reason
		}
		s.obs.Upgrade("", status)
		return st.reject(status, reason), false
	}
	rt := s.routes.Load().byURI[req.Path]
	if rt != nil && !req.Upgrade {
		reason := "this URI speaks WebSocket only"
		if req.UpgradeErr != "" {
			reason = "bad WebSocket upgrade: " + req.UpgradeErr
		}
		if !s.uris.upgrade(s, rt, 400) {
			s.obs.Upgrade("", 400)
		}
		return st.reject(400, reason), false
	}
	if rt == nil || !s.uris.upgrade(s, rt, 101) {
		s.obs.Upgrade("", 404)
		return st.reject(404, "no route for "+req.Path), false
	}
	ls := st.loop
	ls.out = wsframe.AppendUpgradeResponse(ls.out[:0], req.Key)
	_, _ = c.Write(ls.out)
	ls.out = ls.out[:0]
	_, _ = c.Discard(n)
	st.route = rt
	st.phase = phaseOpen
	return gnet.None, true
}

// reject answers a failed upgrade with a plain HTTP response and closes the
// connection once it is written.
func (st *connState) reject(status int, reason string) gnet.Action {
	ls := st.loop
	ls.out = wsframe.AppendHTTPResponse(ls.out[:0], status, reason)
	_, _ = st.c.Write(ls.out)
	ls.out = ls.out[:0]
	st.phase = phaseClosing
	return gnet.Close
}

// protocolError answers a frame-level violation with its close code.
func (st *connState) protocolError(err error) gnet.Action {
	code, reason := ws.StatusProtocolError, "protocol error"
	var ce *wsframe.CloseError
	if errors.As(err, &ce) {
		code, reason = ce.Code, ce.Reason
	}
	st.s.obs.FrameRejected(frameReason(code))
	st.loop.out = wsframe.AppendClose(st.loop.out, code, reason)
	st.closeCode, st.closeReason = code, reason
	st.phase = phaseClosing
	return gnet.Close
}

// closeFrame writes a close frame now and marks the connection closing.
// The caller closes the connection.
func (st *connState) closeFrame(code ws.StatusCode, reason string) {
	ls := st.loop
	frame := wsframe.AppendClose(ls.body[:0], code, reason)
	_, _ = st.c.Write(frame)
	st.bytesOut += int64(len(frame))
	ls.body = frame[:0]
	st.closeCode, st.closeReason = code, reason
	st.phase = phaseClosing
}

// goAway sends a close frame and closes the connection from outside
// OnTraffic (a sweep or a route change). Called on the loop.
func (st *connState) goAway(code ws.StatusCode, reason string) {
	if st.phase == phaseClosing || st.phase == phaseClosed {
		return
	}
	if st.phase == phaseOpen {
		st.closeFrame(code, reason)
	}
	st.phase = phaseClosing
	_ = st.c.Close()
}

// onMessage handles one complete message. Responses produced on the loop go
// to st.loop.out.
func (st *connState) onMessage(m wsframe.Message) {
	ls := st.loop
	switch m.Op {
	case ws.OpPing:
		ls.out = wsframe.AppendPong(ls.out, m.Payload)
	case ws.OpClose:
		var code ws.StatusCode
		ls.out, code = wsframe.AppendCloseReply(ls.out, m.Payload)
		st.closeCode, st.closeReason = code, "client closed"
		st.phase = phaseClosing
	case ws.OpBinary:
		st.onRequest(m.Payload)
	case ws.OpText:
		st.s.obs.FrameRejected(FrameText)
	}
	// Text frames and unsolicited pongs are skipped.
}

// onRequest decodes one PubSubReq and answers it on the loop (ping, errors)
// or hands it to Kafka.
func (st *connState) onRequest(payload []byte) {
	ls := st.loop
	obs := st.s.obs
	st.requests++
	req := &ls.req
	if err := pubsub.ParseReq(payload, req); err != nil {
		obs.FrameRejected(FrameUndecodable)
		obs.Request(CmdInvalid, false, 0)
		ls.out = appendErrorResp(ls.out, &ls.body, 0, 0, pubsub.MessageWrongCommand)
		return
	}
	seq := req.Sequence
	switch req.Command {
	case 0:
		// A request without a command is skipped.
		obs.FrameRejected(FrameNoCommand)
	case pubsub.FieldCmdPing:
		obs.Request(CmdPing, true, 0)
		ls.body = pubsub.AppendPongResp(ls.body[:0], req.State)
		ls.out = appendResp(ls.out, seq, pubsub.FieldPongResp, ls.body)
	case pubsub.FieldCmdKafkaListOffset:
		st.startKafka(kafkaReq{cmd: req.Command, seq: seq, topic: st.topicString(req.Topic),
			partition: req.Partition, arg: req.Timestamp, start: st.s.now()})
	case pubsub.FieldCmdKafkaFetch:
		st.startKafka(kafkaReq{cmd: req.Command, seq: seq, topic: st.topicString(req.Topic),
			partition: req.Partition, arg: req.Offset, start: st.s.now(), opts: st.s.fetchOptions(req)})
	case pubsub.FieldCmdKafkaMetadata:
		m := req.Ext.(*pubsub.CmdKafkaMetadata)
		if n := len(m.GetTopics()); n > maxMetadataTopics {
			obs.Request(CmdMetadata, false, 0)
			ls.out = appendErrorResp(ls.out, &ls.body, seq, 0, pubsub.MetadataErrorMessage(
				fmt.Sprintf("%d topics in one request, more than the limit of %d", n, maxMetadataTopics)))
			return
		}
		st.startKafka(kafkaReq{cmd: req.Command, seq: seq, ext: m, start: st.s.now()})
	case pubsub.FieldCmdKafkaFetchMany:
		m := req.Ext.(*pubsub.CmdKafkaFetchMany)
		if n := len(m.GetTargets()); n == 0 || n > maxFetchManyTargets {
			obs.Request(CmdFetchMany, false, 0)
			ls.out = appendErrorResp(ls.out, &ls.body, seq, 0, pubsub.FetchManyErrorMessage(
				fmt.Sprintf("%d targets in one request, want 1 to %d", n, maxFetchManyTargets)))
			return
		}
		st.startKafka(kafkaReq{cmd: req.Command, seq: seq, ext: m, start: st.s.now()})
	case pubsub.FieldCmdKafkaSubscribe:
		st.subscribe(seq, req.Ext.(*pubsub.CmdKafkaSubscribe))
	case pubsub.FieldCmdKafkaUnsubscribe:
		st.unsubscribe(seq, req.Ext.(*pubsub.CmdKafkaUnsubscribe))
	case pubsub.FieldCmdKafkaCommit:
		st.commit(seq, req.Ext.(*pubsub.CmdKafkaCommit))
	case pubsub.FieldCmdKafkaCommitted:
		st.committed(seq, req.Ext.(*pubsub.CmdKafkaCommitted))
	case pubsub.FieldCmdKafkaProduce:
		st.produce(seq, req.Ext.(*pubsub.CmdKafkaProduce))
	default: // CmdEmpty
		obs.Request(CmdUnknown, false, 0)
		ls.out = appendErrorResp(ls.out, &ls.body, seq, 0, pubsub.MessageUnknownCommand)
	}
}

// topicString returns topic as a string, without allocating while the
// client keeps asking for the same topic.
func (st *connState) topicString(topic []byte) string {
	if string(topic) != st.topic {
		st.topic = string(topic)
	}
	return st.topic
}

// startKafka dispatches a Kafka request, or holds it (pausing the
// connection) when the node has no free slot or the connection's outbound
// budget is taken by the fetches in flight.
func (st *connState) startKafka(r kafkaReq) {
	if !st.dispatchKafka(r) {
		st.held = r
	}
}
