package reactor

import (
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/panjf2000/gnet/v2"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/kafkaedge/kafkaedge/kafkawire"
	"github.com/kafkaedge/kafkaedge/proto/pubsub"
)

// maxPooledBody is the largest response buffer kept for reuse.
const maxPooledBody = 16 << 20

// callKey identifies identical Kafka requests: a fetch at one offset or a
// list offset at one timestamp of the same partition. Clients are shared
// per cluster key, so the client stands for the cluster.
type callKey struct {
	client    kafkaClient
	cmd       protowire.Number // pubsub.FieldCmdKafkaListOffset or pubsub.FieldCmdKafkaFetch
	topic     string
	partition int32
	arg       int64 // offset or timestamp
	opts      fetchOpts
}

// kafkaCall is one Kafka request and the client requests waiting for its
// answer.
type kafkaCall struct {
	key     callKey
	cl      *clusterLimits // the cluster's, released with the node's when the call ends
	waiters []waiter       // appended under Server.fanMu until the call is removed from Server.fan
}

type waiter struct {
	st    *connState
	seq   int64
	start int64 // Server.now() when the request was read
}

var kafkaCallPool = sync.Pool{New: func() any { return new(kafkaCall) }}

// done removes f from the calls in flight, after which nobody joins it.
func (s *Server) done(f *kafkaCall) {
	s.fanMu.Lock()
	delete(s.fan, f.key)
	s.fanMu.Unlock()
}

// recycle returns f to its pool once every waiter is answered.
func recycle(f *kafkaCall) {
	clear(f.waiters)
	f.waiters = f.waiters[:0]
	f.cl = nil
	if cap(f.waiters) <= 1024 {
		kafkaCallPool.Put(f)
	}
}

// dispatchKafka starts r on a goroutine, or joins an identical request in
// flight. It returns false, without side effects, when the node has no free
// slot or, for a fetch, when the bytes queued to the connection plus maxBody
// for each of its fetches in flight would pass MaxOutbound; a write callback
// or a freed slot resumes the connection. Called on the loop.
func (st *connState) dispatchKafka(r kafkaReq) bool {
	s := st.s
	if r.ext != nil {
		return st.dispatchExt(r)
	}
	fetch := r.cmd == pubsub.FieldCmdKafkaFetch
	if fetch && st.fetches > 0 && st.queued()+(st.fetches+1)*s.maxBody > s.cfg.MaxOutbound {
		return false
	}
	key := callKey{client: st.route.client, cmd: r.cmd, topic: r.topic, partition: r.partition, arg: r.arg, opts: r.opts}
	s.fanMu.Lock()
	f := s.fan[key]
	var mem int64 // of the memory budget: the answer's share, and the call's if it is new
	if fetch {
		mem = s.fetchMem
		if f == nil {
			mem += s.callMem
		}
		if !st.takeMem(mem, r.start) {
			s.fanMu.Unlock()
			return false
		}
	}
	switch {
	case f != nil:
		if fetch {
			s.obs.FetchCoalesced()
		} else {
			s.obs.ListOffsetCoalesced()
		}
	case !st.acquireSlots(r.start):
		s.fanMu.Unlock()
		s.giveMem(st.route.cl, mem)
		return false
	default:
		f = kafkaCallPool.Get().(*kafkaCall)
		f.key = key
		f.cl = st.route.cl
		s.fan[key] = f
		s.calls.Add(1)
		if fetch {
			s.stats.fetches.Add(1)
			go s.runFetch(f)
		} else {
			s.stats.listOffsets.Add(1)
			go s.runListOffset(f)
		}
	}
	f.waiters = append(f.waiters, waiter{st, r.seq, r.start})
	s.fanMu.Unlock()
	st.inflight++
	if fetch {
		st.fetches++
	}
	return true
}

// releaseSlots frees a call's slots: the node's first, so that a
// connection of another cluster woken by it can find one.
func (s *Server) releaseSlots(cl *clusterLimits) {
	s.slots.release(1)
	cl.slots.release(1)
}

// runListOffset makes one ListOffset call and writes its answer.
func (s *Server) runListOffset(f *kafkaCall) {
	defer s.calls.Add(-1)
	defer s.releaseSlots(f.cl)
	k := f.key
	off, err := k.client.ListOffset(s.baseCtx, k.topic, k.partition, k.arg)
	s.done(f)
	var msg string
	var code int32
	if err != nil {
		var reason string
		code, reason = s.kafkaFailure(k, err)
		msg = pubsub.ListOffsetErrorMessage(k.topic, k.partition, reason)
	}
	for _, w := range f.waiters {
		j := newJob(w.st)
		j.cmd, j.ok, j.start = CmdListOffset, err == nil, w.start
		if err != nil {
			j.own = appendErrorResp(j.own[:0], &j.scratch, w.seq, code, msg)
		} else {
			j.scratch = pubsub.AppendKafkaListOffsetResp(j.scratch[:0], off)
			j.own = appendResp(j.own[:0], w.seq, pubsub.FieldKafkaListOffsetResp, j.scratch)
		}
		s.send(j)
	}
	recycle(f)
}

// runFetch makes one Fetch call and writes its answer to every request that
// joined it. The encoded KafkaFetchResp is shared: each connection gets its
// own small header and the same body bytes.
func (s *Server) runFetch(f *kafkaCall) {
	defer s.calls.Add(-1)
	// The slot is held until the answer is queued to every connection, so
	// the node-wide cap also bounds the Kafka responses and encoded bodies
	// in memory.
	defer s.releaseSlots(f.cl)
	k := f.key
	// The call's share of the memory budget is given back once its
	// response is released and its answers hold their own.
	defer s.giveMem(f.cl, s.callMem)
	o := k.opts
	limit := s.maxBody
	if o.maxBytes > 0 {
		limit = int(o.maxBytes)
	}
	res, err := k.client.FetchWith(s.baseCtx, k.topic, k.partition, k.arg,
		kafkawire.FetchOptions{MaxWait: o.maxWait, MinBytes: o.minBytes, MaxBytes: int32(min(limit, math.MaxInt32))})
	s.done(f) // from here on nobody appends to f.waiters
	if err != nil {
		code, reason := s.kafkaFailure(k, err)
		msg := pubsub.FetchErrorMessage(k.topic, k.partition, reason)
		for _, w := range f.waiters {
			j := newJob(w.st)
			j.cmd, j.start, j.mem = CmdFetch, w.start, s.fetchMem
			j.own = appendErrorResp(j.own[:0], &j.scratch, w.seq, code, msg)
			s.send(j)
		}
	} else {
		body := sharedPool.Get().(*sharedBody)
		var msgs int
		var next int64
		body.buf, msgs, next = appendFetchBody(body.buf[:0], res.Records, k.arg, limit, o.headers)
		if o.extended {
			if msgs == 0 || next == res.Records[len(res.Records)-1].Offset+1 {
				next = max(next, res.NextOffset)
			}
			body.buf = pubsub.AppendKafkaFetchRespPositions(body.buf, res.HighWatermark, next)
		}
		res.Release()
		body.refs.Store(int32(len(f.waiters)))
		for _, w := range f.waiters {
			j := newJob(w.st)
			j.cmd, j.ok, j.start, j.mem = CmdFetch, true, w.start, s.fetchMem
			j.topic, j.msgs = k.topic, msgs
			j.shared = body
			j.own = appendRespHeaderFrame(j.own[:0], w.seq, pubsub.FieldKafkaFetchResp, len(body.buf))
			s.send(j)
		}
	}
	recycle(f)
}

// sharedBody is an encoded KafkaFetchResp written to several connections.
// The last write callback returns it to the pool.
type sharedBody struct {
	buf  []byte
	refs atomic.Int32
}

var sharedPool = sync.Pool{New: func() any { return new(sharedBody) }}

func (b *sharedBody) unref() {
	if b.refs.Add(-1) != 0 {
		return
	}
	if cap(b.buf) > maxPooledBody {
		b.buf = nil
	}
	sharedPool.Put(b)
}

// writeJob is one response on its way to a connection. Jobs are pooled; cb
// is bound once per job so a write allocates no closure.
type writeJob struct {
	st      *connState
	own     []byte      // a whole frame, or the frame and PubSubResp headers of body
	shared  *sharedBody // a pooled body written after own, nil if none
	body    []byte      // the bytes written after own: shared's
	more    [][]byte    // or those of a push: slices of tail chunks (tail.go)
	scratch []byte
	iov     [][]byte
	n       int
	cb      gnet.AsyncCallback

	// The request answered (a fetch frees the connection's fetch
	// reservation) and, for the Observer, whether the answer is not an
	// error, when the request was read, the topic and messages of a fetch;
	// or push: a message of a subscription, which answers no request.
	push  bool
	cmd   Command
	cl    *clusterLimits // the connection's cluster
	mem   int64          // of the memory budget, given back once written
	ok    bool
	start int64
	topic string
	msgs  int
}

var jobPool sync.Pool

func newJob(st *connState) *writeJob {
	j, _ := jobPool.Get().(*writeJob)
	if j == nil {
		j = &writeJob{own: make([]byte, 0, 64), scratch: make([]byte, 0, 64)}
		j.cb = j.written
	}
	j.st = st
	j.cl = st.route.cl
	return j
}

// free returns j (and its share of a shared body) to the pools.
func (j *writeJob) free() {
	if j.shared != nil {
		j.shared.unref()
		j.shared = nil
	}
	j.st = nil
	j.body = nil
	j.cl, j.mem = nil, 0
	j.ok, j.push = false, false
	j.topic = ""
	j.msgs = 0
	clear(j.iov)
	j.iov = j.iov[:0]
	clear(j.more)
	j.more = j.more[:0]
	if cap(j.own) > 4096 {
		j.own = make([]byte, 0, 64)
	}
	if cap(j.scratch) > 4096 {
		j.scratch = make([]byte, 0, 64)
	}
	jobPool.Put(j)
}

// send hands j to gnet. The bytes count as queued for the connection until
// the write callback runs on its loop.
func (s *Server) send(j *writeJob) {
	st := j.st
	j.iov = append(j.iov[:0], j.own)
	j.n = len(j.own)
	if j.shared != nil {
		j.body = j.shared.buf
	}
	if len(j.body) > 0 {
		j.iov = append(j.iov, j.body)
		j.n += len(j.body)
	}
	for _, b := range j.more {
		j.iov = append(j.iov, b)
		j.n += len(b)
	}
	iov := j.iov
	st.pending.Add(int64(j.n))
	if err := st.c.AsyncWritev(iov, j.cb); err != nil {
		// The engine is stopping; the callback will not run.
		st.pending.Add(-int64(j.n))
		s.giveMem(j.cl, j.mem)
		j.free()
	}
}

// written is the AsyncWritev callback; gnet runs it on the connection's
// loop after the bytes went to the socket or to its outbound buffer (which
// copies them), or failed because the connection is closed.
func (j *writeJob) written(_ gnet.Conn, err error) error {
	st := j.st
	s := st.s
	st.pending.Add(-int64(j.n))
	if !j.push {
		st.inflight--
		if j.cmd == CmdFetch || j.cmd == CmdFetchMany {
			st.fetches--
		}
		s.giveMem(j.cl, j.mem)
		s.obs.Request(j.cmd, j.ok, time.Duration(s.now()-j.start))
	}
	if err == nil {
		st.bytesOut += int64(j.n)
		st.msgsOut += int64(j.msgs)
		s.obs.Delivered(st.route.r.URI, j.topic, j.n, j.msgs)
		if j.push && j.topic != "" {
			s.obs.Pushed(st.route.r.URI, j.n, j.msgs)
		}
		if st.phase != phaseClosed {
			st.holdAnswer(j)
		}
	}
	j.free()
	if err != nil || st.phase != phaseOpen {
		return nil
	}
	st.lastActive = s.now()
	st.outBuffered.Store(int64(st.c.OutboundBuffered()))
	if st.queued() > s.cfg.MaxOutbound {
		st.markOver()
		return nil
	}
	if !st.over() {
		st.resumeSubs()
	}
	if st.inflight < s.cfg.MaxInflight {
		st.resume()
	}
	return nil
}
