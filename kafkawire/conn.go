package kafkawire

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kafkaedge/kafkaedge/kafkawire/wire"
)

// request is a wire request body encoder.
type request interface {
	Key() int16
	AppendTo(dst []byte, version int16) []byte
}

// response is a wire response body decoder.
type response interface {
	Decode(body []byte, version int16) error
}

// Limits of one connection.
const (
	// maxAbandoned is how many timed-out calls may await their late
	// responses on one connection before it is considered wedged and closed.
	maxAbandoned = 64
	// readBufferSize is the bufio buffer in front of a connection's reads.
	readBufferSize = 32 << 10
	// softwareName and softwareVersion are sent in ApiVersions v3.
	softwareName    = "kafkaedge"
	softwareVersion = "1.0.0"
)

// apiName names the API keys this package sends, for error messages.
func apiName(key int16) string {
	switch key {
	case wire.KeyFetch:
		return "Fetch"
	case wire.KeyListOffsets:
		return "ListOffsets"
	case wire.KeyMetadata:
		return "Metadata"
	case wire.KeySaslHandshake:
		return "SaslHandshake"
	case wire.KeyApiVersions:
		return "ApiVersions"
	case wire.KeySaslAuthenticate:
		return "SaslAuthenticate"
	case wire.KeyProduce:
		return "Produce"
	case wire.KeyInitProducerID:
		return "InitProducerId"
	case wire.KeyOffsetCommit:
		return "OffsetCommit"
	case wire.KeyOffsetFetch:
		return "OffsetFetch"
	case wire.KeyFindCoordinator:
		return "FindCoordinator"
	case wire.KeyJoinGroup:
		return "JoinGroup"
	case wire.KeyHeartbeat:
		return "Heartbeat"
	case wire.KeyLeaveGroup:
		return "LeaveGroup"
	case wire.KeySyncGroup:
		return "SyncGroup"
	case wire.KeyConsumerGroupHeartbeat:
		return "ConsumerGroupHeartbeat"
	}
	return fmt.Sprintf("api key %d", key)
}

// conn is one multiplexed connection to a broker. Any number of goroutines
// call do at once: each request gets a fresh correlation id and a pending
// entry, its frame is written under wmu, and the single reader goroutine
// hands every response to the call waiting for its correlation id.
type conn struct {
	addr     string
	log      *slog.Logger
	nc       net.Conn
	clientID string
	maxResp  int
	versions map[int16]wire.VersionRange // set by the handshake, then read-only
	features []wire.Feature              // the cluster's finalized features, as the handshake found them
	use      *brokerUse                  // reports to the Observer; nil: none
	up       atomic.Bool                 // reported as ConnUp and not yet as ConnClosed

	wmu sync.Mutex // serializes frame writes

	mu        sync.Mutex
	pending   map[int32]*call
	corr      int32
	abandoned int // pending calls whose caller gave up
	// silentAfter, when not 0, makes a call that waited this long with no
	// response frame read on the connection since it was sent fail the
	// connection: the broker stopped answering (a stopped process, a
	// black hole). 0 on the lane of long polls, where silence is expected.
	silentAfter time.Duration
	frames      atomic.Uint64 // response frames read
	err         *connError    // why the connection died; nil while alive
	dead        atomic.Bool
}

// call is one request awaiting its response.
type call struct {
	ch        chan callResult // buffered 1; receives exactly one result unless abandoned
	abandoned bool            // guarded by conn.mu
}

// callResult is a response frame (raw starts after the correlation id) or
// the error that ended the call.
type callResult struct {
	buf *respBuf
	raw []byte
	err error
}

// dialConn connects to addr and runs the handshake: TLS when configured,
// ApiVersions, then SASL when configured. ctx bounds the whole setup; use
// reports the connection's events (nil: none).
func dialConn(ctx context.Context, cl *Client, addr string, l lane, use *brokerUse) (*conn, error) {
	cfg := &cl.cfg
	dctx, cancel := context.WithTimeout(ctx, cfg.DialTimeout)
	defer cancel()
	d := net.Dialer{KeepAlive: 30 * time.Second}
	nc, err := d.DialContext(dctx, "tcp", addr)
	if err != nil {
		return nil, &connError{addr: addr, err: err}
	}
	if cl.tls != nil {
		tc := cl.tls.Clone()
		if tc.ServerName == "" {
			host, _, _ := net.SplitHostPort(addr)
			tc.ServerName = host
		}
		tconn := tls.Client(nc, tc)
		if err := tconn.HandshakeContext(dctx); err != nil {
			nc.Close()
			return nil, &connError{addr: addr, err: fmt.Errorf("TLS handshake: %w", err)}
		}
		nc = tconn
	}
	c := &conn{
		addr:     addr,
		log:      cfg.Logger,
		nc:       nc,
		clientID: cfg.ClientID,
		maxResp:  cfg.maxResponse(),
		pending:  make(map[int32]*call),
		use:      use,
	}
	if l == laneControl {
		c.silentAfter = cfg.RequestTimeout
	}
	go c.readLoop()

	hctx, hcancel := context.WithTimeout(ctx, cfg.RequestTimeout)
	defer hcancel()
	err = c.negotiate(hctx)
	if err == nil && cfg.SASL != nil {
		err = c.authenticate(hctx, cfg.SASL)
	}
	if err != nil {
		var ce *connError
		if !errors.As(err, &ce) {
			ce = &connError{addr: addr, err: err}
		}
		c.fail(ce)
		return nil, ce
	}
	return c, nil
}

// negotiate asks the broker for its API versions: ApiVersions v3 first, and
// if the broker answers UNSUPPORTED_VERSION, again at the version it lists.
func (c *conn) negotiate(ctx context.Context) error {
	version := wire.Implemented[wire.KeyApiVersions].Max
	for range 3 {
		var resp wire.ApiVersionsResponse
		req := &wire.ApiVersionsRequest{ClientSoftwareName: softwareName, ClientSoftwareVersion: softwareVersion}
		buf, err := c.doAt(ctx, req, version, &resp)
		if err != nil {
			return err
		}
		buf.release()
		if resp.ErrorCode == wire.ErrUnsupportedVersion {
			next := int16(0)
			for _, a := range resp.APIs {
				if a.Key == wire.KeyApiVersions {
					next = min(a.Max, version-1)
				}
			}
			if version == 0 || next < 0 {
				return &connError{addr: c.addr, err: errors.New("ApiVersions: broker supports no ApiVersions version we implement")}
			}
			version = max(next, 0)
			continue
		}
		if resp.ErrorCode != 0 {
			return &connError{addr: c.addr, err: fmt.Errorf("ApiVersions v%d: %s", version, wire.ErrorName(resp.ErrorCode))}
		}
		vs := make(map[int16]wire.VersionRange, len(resp.APIs))
		for _, a := range resp.APIs {
			vs[a.Key] = wire.VersionRange{Min: a.Min, Max: a.Max}
		}
		c.versions, c.features = vs, resp.FinalizedFeatures
		return nil
	}
	return &connError{addr: c.addr, err: errors.New("ApiVersions: broker keeps answering UNSUPPORTED_VERSION")}
}

// feature returns the finalized level of the cluster's feature name as
// this connection's handshake found it, 0 if none.
func (c *conn) feature(name string) int16 {
	for _, f := range c.features {
		if f.Name == name {
			return f.Max
		}
	}
	return 0
}

// version returns the version to encode key at on this connection: the
// highest both sides support, at most limit (-1 for no limit).
func (c *conn) version(key, limit int16) (int16, error) {
	br, ok := c.versions[key]
	if !ok {
		return 0, fmt.Errorf("broker %s does not support %s", c.addr, apiName(key))
	}
	if limit >= 0 && br.Max > limit {
		br.Max = limit
	}
	v, ok := wire.Negotiate(key, br)
	if !ok {
		ours := wire.Implemented[key]
		return 0, fmt.Errorf("no common %s version with broker %s: it supports v%d-v%d, we implement v%d-v%d",
			apiName(key), c.addr, br.Min, br.Max, ours.Min, ours.Max)
	}
	return v, nil
}

// logAPIs are the APIs whose negotiated versions a new connection logs.
var logAPIs = []int16{wire.KeyFetch, wire.KeyListOffsets, wire.KeyMetadata, wire.KeyApiVersions, wire.KeySaslHandshake, wire.KeySaslAuthenticate}

// negotiated describes, for the debug log of a new connection, the version
// picked for each API this package sends and the broker's range:
// "Fetch v16 (broker v4-v18), ListOffsets v9 (broker v1-v11), ...".
func (c *conn) negotiated() string {
	parts := make([]string, 0, len(logAPIs))
	for _, key := range logAPIs {
		br, ok := c.versions[key]
		switch v, err := c.version(key, -1); {
		case !ok:
			parts = append(parts, apiName(key)+" none (broker lacks it)")
		case err != nil:
			parts = append(parts, fmt.Sprintf("%s none (broker v%d-v%d)", apiName(key), br.Min, br.Max))
		default:
			parts = append(parts, fmt.Sprintf("%s v%d (broker v%d-v%d)", apiName(key), v, br.Min, br.Max))
		}
	}
	return strings.Join(parts, ", ")
}

// do sends req at the negotiated version and decodes the answer into resp.
// The response buffer is released before returning, so resp must not keep
// byte slices that alias it (strings are copies); doAt is for those that do.
func (c *conn) do(ctx context.Context, req request, resp response) (int16, error) {
	v, err := c.version(req.Key(), -1)
	if err != nil {
		return 0, err
	}
	buf, err := c.doAt(ctx, req, v, resp)
	if buf != nil {
		buf.release()
	}
	return v, err
}

// doAt sends req at version and decodes the answer into resp. On success it
// returns the response buffer, which resp may alias; the caller releases it.
func (c *conn) doAt(ctx context.Context, req request, version int16, resp response) (*respBuf, error) {
	return c.finish(ctx, c.send(ctx, req, version), resp)
}

// sent is a request written by send, whose answer finish reads.
type sent struct {
	written
	start    time.Time // zero: not reported
	reported bool      // the report of the round trip is open
}

// send writes req at version (see write: requests go out in the order of
// the send calls) and opens the Observer's report of its round trip, which
// finish closes.
func (c *conn) send(ctx context.Context, req request, version int16) sent {
	var s sent
	if c.use.enter() {
		s.start, s.reported = time.Now(), true
	}
	s.written = c.write(ctx, req, version)
	return s
}

// finish waits for the answer of a request sent by send and decodes it
// into resp (nothing for a request without an answer). On success it
// returns the response buffer (nil without an answer), which resp may
// alias; the caller releases it.
func (c *conn) finish(ctx context.Context, s sent, resp response) (*respBuf, error) {
	if s.reported {
		defer c.use.exit()
	}
	key, version := s.key, s.version
	res := callResult{err: s.err}
	if s.err == nil {
		res = c.await(ctx, s.written)
	}
	if res.err != nil {
		c.observe(key, resp, res.err, s.start)
		return nil, res.err
	}
	if s.cl == nil {
		c.observe(key, nil, nil, s.start)
		return nil, nil
	}
	body, err := wire.ResponseBody(res.raw, key, version)
	if err == nil {
		err = resp.Decode(body, version)
	}
	if err != nil {
		res.buf.release()
		ce := &connError{addr: c.addr, err: fmt.Errorf("%s v%d response: %w", apiName(key), version, err)}
		// A well-framed response we cannot decode means the broker speaks
		// something else than we think: do not trust the connection.
		c.fail(ce)
		c.observe(key, resp, ce, s.start)
		return nil, ce
	}
	c.observe(key, resp, nil, s.start)
	return res.buf, nil
}

// observe reports a finished round trip that started at start (zero: not
// reported) to the Observer.
func (c *conn) observe(key int16, resp response, err error, start time.Time) {
	if !start.IsZero() {
		c.use.obs.KafkaRequest(apiName(key), c.addr, requestOutcome(resp, err), time.Since(start))
	}
}

// written is a request frame handed to the connection: the call that
// receives its response (nil for a request without one).
type written struct {
	cl           *call
	corr         int32
	sentAt       time.Time
	framesBefore uint64
	key, version int16
	err          error
}

// oneWay is a request the broker does not answer (Produce with acks 0).
type oneWay interface{ ExpectsResponse() bool }

// write writes one request frame, registering the call that waits for its
// response first. Frames go out in the order of the write calls, so a
// caller that must keep its requests in order writes them one after the
// other and awaits the responses later.
func (c *conn) write(ctx context.Context, req request, version int16) written {
	key := req.Key()
	w := written{key: key, version: version}
	if ctx.Err() != nil {
		w.err = ctxError(ctx, fmt.Sprintf("%s v%d to broker %s", apiName(key), version, c.addr))
		return w
	}
	answered := true
	if ow, ok := req.(oneWay); ok {
		answered = ow.ExpectsResponse()
	}
	c.mu.Lock()
	if c.err != nil {
		w.err = c.err
		c.mu.Unlock()
		return w
	}
	c.corr++
	w.corr = c.corr
	if answered {
		w.cl = &call{ch: make(chan callResult, 1)}
		c.pending[w.corr] = w.cl
	}
	c.mu.Unlock()

	frame := make([]byte, 4, 256)
	frame = wire.AppendRequestHeader(frame, key, version, w.corr, c.clientID)
	frame = req.AppendTo(frame, version)
	binary.BigEndian.PutUint32(frame, uint32(len(frame)-4))

	c.wmu.Lock()
	if dl, ok := ctx.Deadline(); ok {
		_ = c.nc.SetWriteDeadline(dl)
	} else {
		_ = c.nc.SetWriteDeadline(time.Time{})
	}
	n, werr := c.nc.Write(frame)
	c.wmu.Unlock()
	w.sentAt, w.framesBefore = time.Now(), c.frames.Load()
	if werr != nil {
		var ne net.Error
		if _, isTLS := c.nc.(*tls.Conn); !isTLS && n == 0 && errors.As(werr, &ne) && ne.Timeout() {
			// Nothing went out: the stream is intact, only this call ends.
			// (A TLS connection is unusable after any write timeout.)
			c.mu.Lock()
			delete(c.pending, w.corr)
			c.mu.Unlock()
			w.err = fmt.Errorf("%w: writing %s v%d to broker %s (%w)", ErrTimeout, apiName(key), version, c.addr, werr)
			return w
		}
		// A partly written frame leaves the stream unusable.
		ce := &connError{addr: c.addr, err: fmt.Errorf("write %s: %w", apiName(key), werr)}
		c.fail(ce)
		if w.cl == nil {
			w.err = ce
		}
	}
	return w
}

// await waits for the response of a written request (a request without
// one is done once written).
func (c *conn) await(ctx context.Context, w written) callResult {
	if w.cl == nil {
		return callResult{}
	}
	select {
	case res := <-w.cl.ch:
		return res
	case <-ctx.Done():
	}
	c.mu.Lock()
	if _, ok := c.pending[w.corr]; ok {
		w.cl.abandoned = true
		c.abandoned++
		wedged := c.abandoned > maxAbandoned
		c.mu.Unlock()
		silent := c.silentAfter > 0 && c.frames.Load() == w.framesBefore && time.Since(w.sentAt) >= c.silentAfter
		switch {
		case wedged:
			c.fail(&connError{addr: c.addr, err: fmt.Errorf("%d requests unanswered", maxAbandoned)})
		case silent:
			c.fail(&connError{addr: c.addr, err: fmt.Errorf("%w: no response from the broker for %s", ErrTimeout, time.Since(w.sentAt).Round(time.Millisecond))})
		}
		return callResult{err: ctxError(ctx, fmt.Sprintf("%s v%d to broker %s", apiName(w.key), w.version, c.addr))}
	}
	c.mu.Unlock()
	// The response (or the connection's failure) arrived as the deadline
	// passed; it is ours to consume.
	return <-w.cl.ch
}

// readLoop reads response frames until the connection fails.
func (c *conn) readLoop() {
	br := bufio.NewReaderSize(c.nc, readBufferSize)
	var size [4]byte
	for {
		if _, err := io.ReadFull(br, size[:]); err != nil {
			c.fail(&connError{addr: c.addr, err: readError(err)})
			return
		}
		n := int(int32(binary.BigEndian.Uint32(size[:])))
		if n < 4 || n > c.maxResp {
			c.fail(&connError{addr: c.addr, err: fmt.Errorf("response frame of %d bytes outside 4..%d", n, c.maxResp)})
			return
		}
		rb := getRespBuf(n)
		if _, err := io.ReadFull(br, rb.b); err != nil {
			rb.release()
			c.fail(&connError{addr: c.addr, err: readError(err)})
			return
		}
		c.frames.Add(1)
		corr := int32(binary.BigEndian.Uint32(rb.b))
		c.mu.Lock()
		cl, ok := c.pending[corr]
		if ok {
			delete(c.pending, corr)
			if cl.abandoned {
				c.abandoned--
			}
		}
		c.mu.Unlock()
		switch {
		case !ok:
			rb.release()
			c.fail(&connError{addr: c.addr, err: fmt.Errorf("response with unknown correlation id %d", corr)})
			return
		case cl.abandoned:
			rb.release() // a late answer to a call that timed out
		default:
			cl.ch <- callResult{buf: rb, raw: rb.b[4:]}
		}
	}
}

// readError turns the end of a response stream into a clear cause.
func readError(err error) error {
	switch {
	case errors.Is(err, io.EOF):
		return errors.New("connection closed by broker")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return errors.New("connection closed by broker in the middle of a response")
	case errors.Is(err, net.ErrClosed):
		return errors.New("connection closed")
	}
	return fmt.Errorf("read: %w", err)
}

// fail marks the connection dead with err, closes it and fails every pending
// call. Only the first failure counts.
func (c *conn) fail(err *connError) {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return
	}
	c.err = err
	c.dead.Store(true)
	calls := c.pending
	c.pending = nil
	c.mu.Unlock()
	c.nc.Close()
	if c.up.CompareAndSwap(true, false) {
		c.use.conn(ConnClosed)
	}
	c.log.Debug("kafkawire: connection closed", "broker", c.addr, "pending", len(calls), "err", err.err)
	for _, cl := range calls {
		if !cl.abandoned {
			cl.ch <- callResult{err: err}
		}
	}
}

// alive reports whether the connection can take requests.
func (c *conn) alive() bool { return !c.dead.Load() }

// load is the number of requests awaiting a response, for least-pending
// selection; calls abandoned by their callers still occupy the broker.
func (c *conn) load() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.pending)
}

// ctxError describes why ctx ended while doing what: a passed deadline is
// ErrTimeout (and context.DeadlineExceeded), a cancellation is
// context.Canceled.
func ctxError(ctx context.Context, what string) error {
	err := ctx.Err()
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%w: %s (%w)", ErrTimeout, what, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}
