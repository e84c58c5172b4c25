package chaos

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkaedge/kafkaedge/internal/kafkatest"
	"github.com/kafkaedge/kafkaedge/internal/kraft"
	"github.com/kafkaedge/kafkaedge/internal/wsclient"
)

// The node's settings that bound its answers, and the suite's bounds.
const (
	// requestTimeout is the node's -request-timeout: every Kafka call of
	// a client request ends by then, with an answer or an error.
	requestTimeout = 4 * time.Second
	// answerMargin is what a client allows beyond requestTimeout for an
	// answer: the node's loop, its write, the scheduling of a -race node
	// and test on 2 busy cores.
	answerMargin = 2 * time.Second
	answerBound  = requestTimeout + answerMargin

	partitions          = 3
	readersPerPartition = 2
	// produceEvery is the producer's pace: one record per partition.
	produceEvery = 20 * time.Millisecond

	// Tolerances of the baseline check (see checkBaseline).
	goroutineSlack = 3        // beyond the broker connections' own
	fdSlack        = 2        // beyond the broker connections' own
	rssBound       = 96 << 20 // RSS may grow by this much over the baseline

	// longRounds is how many times the long suite applies the faults.
	longRounds = 3

	// waitLimit bounds every wait for an event of the cluster or the clients.
	waitLimit = 90 * time.Second
)

var nodeBin string

func TestMain(m *testing.M) {
	code := func() int {
		dir, err := os.MkdirTemp("", "kafkaedge-chaos-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		if nodeBin, err = buildNode(dir); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		return m.Run()
	}()
	os.Exit(code)
}

// long reports whether the long suite runs (make chaos).
func long() bool { return os.Getenv("KAFKAEDGE_CHAOS") == "long" }

// TestChaos runs the faults on a real cluster of each version: the newest
// only in the short suite, every verified one (kafkatest.Versions) in the
// long one, which also repeats the faults for more rounds.
func TestChaos(t *testing.T) {
	if r := kafkatest.SkipReason(); r != "" {
		t.Skip(r)
	}
	versions, rounds := []string{kraft.Latest}, 1
	if long() {
		versions, rounds = kafkatest.Versions(), longRounds
	}
	for _, v := range versions {
		t.Run("kafka-"+v, func(t *testing.T) { runChaos(t, v, rounds) })
	}
}

// phase gathers the answers of the requests sent while one fault (or the
// calm before them) was in progress.
type phase struct {
	name  string
	began time.Time

	mu       sync.Mutex
	answers  int
	errors   int
	maxWait  time.Duration
	reasons  map[string]int // ErrorResp messages, by reason
	duration time.Duration  // set when the phase ends
}

func newPhase(name string) *phase {
	return &phase{name: name, began: time.Now(), reasons: map[string]int{}}
}

func (p *phase) answered(d time.Duration, errMsg string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.answers++
	p.maxWait = max(p.maxWait, d)
	if errMsg != "" {
		p.errors++
		// "failed to fetch message, topic: t, partition: 0, err: timeout": the reason.
		if i := strings.LastIndex(errMsg, "err: "); i >= 0 {
			errMsg = errMsg[i+len("err: "):]
		}
		p.reasons[errMsg]++
	}
}

func (p *phase) String() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var rs []string
	for r, n := range p.reasons {
		rs = append(rs, fmt.Sprintf("%s ×%d", r, n))
	}
	sort.Strings(rs)
	return fmt.Sprintf("%-22s %5.1fs  %6d answers, %5d errors, slowest answer %5.2fs  %s",
		p.name, p.duration.Seconds(), p.answers, p.errors, p.maxWait.Seconds(), strings.Join(rs, ", "))
}

// harness is one run: the cluster, its gates, the node, the producer and
// the readers.
type harness struct {
	t       *testing.T
	ctx     context.Context
	k       *kraft.Cluster
	gates   []*gate // by node index
	node    *node
	topic   string
	admin   *kadm.Client
	direct  map[int32]*kgo.Client // one per broker, seeded with it alone
	readers []*reader

	phase  atomic.Pointer[phase]
	phases []*phase

	acked    [partitions]atomic.Int64 // records acknowledged, per partition
	failMu   sync.Mutex
	failures []string
	failed   chan struct{} // closed at the first failure
	down     map[int32]bool
}

// fail records a failure of a client or the producer (from any goroutine).
func (h *harness) fail(format string, args ...any) {
	h.failMu.Lock()
	defer h.failMu.Unlock()
	if len(h.failures) == 0 {
		close(h.failed)
	}
	if len(h.failures) < 20 {
		h.failures = append(h.failures, fmt.Sprintf(format, args...))
	}
}

// check fails the test with the failures recorded so far.
func (h *harness) check() {
	h.t.Helper()
	h.failMu.Lock()
	defer h.failMu.Unlock()
	if len(h.failures) > 0 {
		h.t.Fatalf("%d failure(s):\n%s\nthe end of the node's log:\n%s", len(h.failures),
			strings.Join(h.failures, "\n"), h.node.tail(30))
	}
}

// waitFor polls cond (every 100 ms) until it holds, a client fails, or
// waitLimit passes.
func (h *harness) waitFor(what string, cond func() (bool, string)) {
	h.t.Helper()
	if !h.wait(what, cond) {
		h.t.FailNow()
	}
}

// wait is waitFor that reports a wait that times out as an error of the
// test and returns false, so that the suite goes on.
func (h *harness) wait(what string, cond func() (bool, string)) bool {
	h.t.Helper()
	deadline := time.Now().Add(waitLimit)
	for {
		ok, state := cond()
		if ok {
			return true
		}
		select {
		case <-h.failed:
			h.check()
		default:
		}
		if time.Now().After(deadline) {
			h.check()
			h.t.Errorf("%s: not within %v (%s); the end of the node's log:\n%s", what, waitLimit, state, h.node.tail(20))
			return false
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func runChaos(t *testing.T, version string, rounds int) {
	began := time.Now()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	h := &harness{t: t, ctx: ctx, failed: make(chan struct{}), direct: map[int32]*kgo.Client{}, down: map[int32]bool{}}
	for range 3 {
		g, err := newGate()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(g.close)
		h.gates = append(h.gates, g)
	}
	sctx, scancel := context.WithTimeout(ctx, 5*time.Minute)
	defer scancel()
	k, err := kraft.Start(sctx, kraft.Options{Version: version, Brokers: 3,
		Advertise: func(n *kraft.Node) string {
			g := h.gates[n.ID-1]
			g.setTarget(fmt.Sprintf("127.0.0.1:%d", n.External))
			return g.addr()
		},
		// A dead broker is fenced, and its leaderships move, after 4 s
		// (9 s by default).
		Props: []string{"broker.heartbeat.interval.ms=500", "broker.session.timeout.ms=4000"}})
	if err != nil {
		t.Fatalf("start Kafka %s: %v", version, err)
	}
	t.Cleanup(k.Close)
	h.k = k
	for _, n := range k.Nodes {
		cl, err := kgo.NewClient(kgo.SeedBrokers(n.Addr()), kgo.RequestRetries(0), kgo.DialTimeout(time.Second))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(cl.Close)
		h.direct[n.ID] = cl
	}
	acl, err := kgo.NewClient(kgo.SeedBrokers(k.Bootstrap()...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(acl.Close)
	h.admin = kadm.NewClient(acl)
	h.topic = "chaos"
	cctx, ccancel := context.WithTimeout(ctx, 30*time.Second)
	resp, err := h.admin.CreateTopic(cctx, partitions, 3, nil, h.topic)
	ccancel()
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		t.Fatalf("create topic: %v", err)
	}
	h.waitHealthy("the new topic")
	t.Logf("%5.1fs Kafka %s started, topic %s created", time.Since(began).Seconds(), version, h.topic)

	h.node = startNode(t, nodeBin, "-route", "/chaos="+strings.Join(k.ExternalBootstrap(), ","),
		"-request-timeout", requestTimeout.String(), "-dial-timeout", "1s")

	stopProducer := h.produce()
	h.setPhase("warm-up")
	h.startReaders()
	h.caughtUp("warm-up")
	h.closeReaders()
	base := h.quiet("baseline")
	t.Logf("%5.1fs baseline: %v", time.Since(began).Seconds(), base)

	h.setPhase("calm")
	h.startReaders()
	h.caughtUp("calm")
	for round := 1; round <= rounds; round++ {
		for _, f := range faults(round) {
			h.setPhase(fmt.Sprintf("%s#%d", f.name, round))
			f.run(h)
			h.waitHealthy(f.name)
			h.caughtUp(f.name)
			h.check()
			t.Logf("%5.1fs %s", time.Since(began).Seconds(), h.phase.Load().name)
		}
	}
	h.setPhase("end")
	stopProducer()
	h.readTo("the end")
	h.closeReaders()
	h.setPhase("")
	h.check()
	after := h.checkBaseline(base)
	t.Logf("%5.1fs after the faults, clients closed: %v (baseline %v)", time.Since(began).Seconds(), after, base)
	var total int64
	for p := range partitions {
		total += h.acked[p].Load()
	}
	t.Logf("%d records produced and read by %d clients, each in order, none missing; answers by phase:", total, len(h.readers))
	for _, p := range h.phases {
		t.Logf("  %v", p)
	}
	t.Logf("Kafka %s: %v in all", version, time.Since(began).Round(time.Second))
}

// setPhase ends the current phase and starts the next ("" for none).
func (h *harness) setPhase(name string) {
	if p := h.phase.Load(); p != nil {
		p.mu.Lock()
		p.duration = time.Since(p.began)
		p.mu.Unlock()
	}
	if name == "" {
		h.phase.Store(nil)
		return
	}
	p := newPhase(name)
	h.phases = append(h.phases, p)
	h.phase.Store(p)
}

// produce writes one record to each partition every produceEvery with kgo
// (idempotent, acks=all, retrying until it lands) straight to the brokers'
// PLAINTEXT listeners, not through the gates. Record n of partition p has
// the value "p-n" and must land at offset n. It returns a function that
// stops producing and waits until every record is acknowledged.
func (h *harness) produce() (stop func()) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(h.k.Bootstrap()...),
		kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.MaxBufferedRecords(100_000),
		kgo.MetadataMinAge(100*time.Millisecond),
		// A hung leader holds a produce request until this passes.
		kgo.ProduceRequestTimeout(5*time.Second), kgo.RequestTimeoutOverhead(2*time.Second))
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(cl.Close)
	ctx, cancel := context.WithCancel(h.ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(produceEvery)
		defer tick.Stop()
		var n int64
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			for p := range int32(partitions) {
				want := n
				r := &kgo.Record{Topic: h.topic, Partition: p, Value: fmt.Appendf(nil, "%d-%d", p, want)}
				cl.Produce(h.ctx, r, func(r *kgo.Record, err error) {
					switch {
					case err != nil:
						h.fail("produce %s: %v", r.Value, err)
					case r.Offset != want:
						h.fail("record %s landed at offset %d", r.Value, r.Offset)
					default:
						h.acked[p].Store(want + 1) // kgo calls back in order per partition
					}
				})
			}
			n++
		}
	}()
	return func() {
		cancel()
		<-done
		fctx, fcancel := context.WithTimeout(h.ctx, waitLimit)
		defer fcancel()
		if err := cl.Flush(fctx); err != nil {
			h.t.Fatalf("flush the producer: %v", err)
		}
	}
}

// reader is a WebSocket client that tails one partition through the node:
// CmdKafkaFetch from its next offset, and every fifth request a
// CmdKafkaListOffset.
type reader struct {
	h    *harness
	id   int
	p    int32
	next atomic.Int64 // the next offset to read
	errs atomic.Int64 // ErrorResp answers

	conn *wsclient.Conn
	stop chan struct{}
	done chan struct{}
}

// startReaders connects the readers (new ones the first time, the same
// ones on new connections afterwards, from where they stopped) and starts
// them.
func (h *harness) startReaders() {
	if h.readers == nil {
		for i := range partitions * readersPerPartition {
			h.readers = append(h.readers, &reader{h: h, id: i, p: int32(i % partitions)})
		}
	}
	for _, r := range h.readers {
		ctx, cancel := context.WithTimeout(h.ctx, 10*time.Second)
		c, err := wsclient.Dial(ctx, "ws://"+h.node.listen+"/chaos", wsclient.Options{})
		cancel()
		if err != nil {
			h.t.Fatalf("reader %d: %v", r.id, err)
		}
		r.conn, r.stop, r.done = c, make(chan struct{}), make(chan struct{})
		go r.run()
	}
}

// closeReaders stops the readers and closes their connections.
func (h *harness) closeReaders() {
	for _, r := range h.readers {
		close(r.stop)
	}
	for _, r := range h.readers {
		<-r.done
		_ = r.conn.CloseGracefully()
	}
}

// pause waits d or until the reader is stopped, and reports whether it may
// go on.
func (r *reader) pause(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-r.stop:
		return false
	case <-t.C:
		return true
	}
}

func (r *reader) run() {
	defer close(r.done)
	h := r.h
	for i := 0; ; i++ {
		select {
		case <-r.stop:
			return
		default:
		}
		ph := h.phase.Load()
		next := r.next.Load()
		sent := time.Now()
		_ = r.conn.SetDeadline(sent.Add(answerBound))
		var msgs int
		var err error
		what := fmt.Sprintf("fetch %d/%d", r.p, next)
		if i%5 == 4 {
			what = fmt.Sprintf("list offset %d", r.p)
			_, err = r.conn.ListOffset(h.topic, r.p, -1)
		} else {
			var ms []*kafkaMessage
			ms, err = r.fetch(next)
			if err == nil {
				msgs = len(ms)
				if !r.consume(next, ms) {
					return
				}
			}
		}
		took := time.Since(sent)
		var se *wsclient.ServerError
		switch {
		case err == nil:
			ph.answered(took, "")
		case errors.As(err, &se):
			ph.answered(took, se.Message)
			r.errs.Add(1)
		default:
			// No answer within answerBound, or the connection broke.
			h.fail("reader %d (%s): %s (sequence %d): no answer after %v: %v", r.id, ph.name, what, r.conn.NextSequence()-1, took.Round(time.Millisecond), err)
			return
		}
		if took > answerBound {
			h.fail("reader %d (%s): %s answered after %v, over %v", r.id, ph.name, what, took.Round(time.Millisecond), answerBound)
		}
		// The client's pace: at the end of the partition, and after an
		// error, it asks again a little later.
		switch {
		case err != nil:
			if !r.pause(50 * time.Millisecond) {
				return
			}
		case msgs == 0 && i%5 != 4:
			if !r.pause(20 * time.Millisecond) {
				return
			}
		}
	}
}

// kafkaMessage is what a reader checks of a message.
type kafkaMessage struct {
	offset int64
	value  string
}

// fetch fetches from offset.
func (r *reader) fetch(offset int64) ([]*kafkaMessage, error) {
	ms, err := r.conn.Fetch(r.h.topic, r.p, offset)
	if err != nil {
		return nil, err
	}
	out := make([]*kafkaMessage, len(ms))
	for i, m := range ms {
		out[i] = &kafkaMessage{m.GetOffset(), string(m.GetValue())}
	}
	return out, nil
}

// consume checks that ms continue the partition from next, each message
// once and in order, with the producer's value for its offset, and moves
// the reader on.
func (r *reader) consume(next int64, ms []*kafkaMessage) bool {
	for _, m := range ms {
		if want := fmt.Sprintf("%d-%d", r.p, next); m.offset != next || m.value != want {
			r.h.fail("reader %d of partition %d: offset %d value %q, want offset %d value %q (lost, repeated or reordered)",
				r.id, r.p, m.offset, m.value, next, want)
			return false
		}
		next++
	}
	r.next.Store(next)
	return true
}

// caughtUp waits until the producer has written more to every partition
// since now (the cluster takes writes again) and every reader has read all
// that was acknowledged by then: the clients resume without loss.
func (h *harness) caughtUp(what string) {
	h.t.Helper()
	h.writesOn(what)
	h.readTo(what)
}

// writesOn waits until the producer has written more to every partition
// since now.
func (h *harness) writesOn(what string) {
	h.t.Helper()
	var from [partitions]int64
	for p := range partitions {
		from[p] = h.acked[p].Load()
	}
	h.waitFor(what+": the producer to write on", func() (bool, string) {
		for p := range partitions {
			if h.acked[p].Load() < from[p]+10 {
				return false, fmt.Sprintf("partition %d: %d records acknowledged, was %d", p, h.acked[p].Load(), from[p])
			}
		}
		return true, ""
	})
}

// readTo waits until every reader has read what the producer had written
// when it was called.
func (h *harness) readTo(what string) {
	h.t.Helper()
	if !h.readsOn(what) {
		h.t.FailNow()
	}
}

// readsOn is readTo that reports a timeout as an error and returns false.
func (h *harness) readsOn(what string) bool {
	h.t.Helper()
	var to [partitions]int64
	for p := range partitions {
		to[p] = h.acked[p].Load()
	}
	return h.wait(what+": the clients to read on", func() (bool, string) {
		for _, r := range h.readers {
			if n := r.next.Load(); n < to[r.p] {
				return false, fmt.Sprintf("reader %d at %d/%d of partition %d", r.id, n, to[r.p], r.p)
			}
		}
		return true, ""
	})
}

// metadata asks broker id, and only it, for the topic's partitions.
func (h *harness) metadata(id int32) (map[int32]kmsg.MetadataResponseTopicPartition, error) {
	req := kmsg.NewPtrMetadataRequest()
	rt := kmsg.NewMetadataRequestTopic()
	rt.Topic = kmsg.StringPtr(h.topic)
	req.Topics = append(req.Topics, rt)
	ctx, cancel := context.WithTimeout(h.ctx, 3*time.Second)
	defer cancel()
	resp, err := req.RequestWith(ctx, h.direct[id].SeedBrokers()[0])
	if err != nil {
		return nil, err
	}
	out := map[int32]kmsg.MetadataResponseTopicPartition{}
	for _, t := range resp.Topics {
		if t.Topic != nil && *t.Topic == h.topic {
			for _, p := range t.Partitions {
				out[p.Partition] = p
			}
		}
	}
	return out, nil
}

// waitView waits until every broker not down sees the topic's partitions
// as ok says.
func (h *harness) waitView(what string, ok func(map[int32]kmsg.MetadataResponseTopicPartition) bool) {
	h.t.Helper()
	h.waitFor(what, func() (bool, string) {
		for _, n := range h.k.Nodes {
			if h.down[n.ID] {
				continue
			}
			ps, err := h.metadata(n.ID)
			if err != nil {
				return false, fmt.Sprintf("broker %d: %v", n.ID, err)
			}
			if len(ps) != partitions || !ok(ps) {
				return false, fmt.Sprintf("broker %d: %v", n.ID, describe(ps))
			}
		}
		return true, ""
	})
}

// waitHealthy waits until every broker sees every partition with a leader
// and all 3 replicas in sync.
func (h *harness) waitHealthy(what string) {
	h.t.Helper()
	h.waitView(what+": every partition led with 3 replicas in sync", func(ps map[int32]kmsg.MetadataResponseTopicPartition) bool {
		for _, p := range ps {
			if p.ErrorCode != 0 || p.Leader < 0 || len(p.ISR) != 3 {
				return false
			}
		}
		return true
	})
}

func describe(ps map[int32]kmsg.MetadataResponseTopicPartition) string {
	var s []string
	for i := range int32(partitions) {
		p, ok := ps[i]
		if !ok {
			s = append(s, fmt.Sprintf("p%d ?", i))
			continue
		}
		s = append(s, fmt.Sprintf("p%d leader %d isr %v err %d", i, p.Leader, p.ISR, p.ErrorCode))
	}
	return strings.Join(s, "; ")
}

// leaders returns the leader of each partition as a live broker sees it.
func (h *harness) leaders() map[int32]int32 {
	h.t.Helper()
	var ps map[int32]kmsg.MetadataResponseTopicPartition
	h.waitFor("the leaders", func() (bool, string) {
		for _, n := range h.k.Nodes {
			if h.down[n.ID] {
				continue
			}
			var err error
			if ps, err = h.metadata(n.ID); err == nil && len(ps) == partitions {
				return true, ""
			}
		}
		return false, "no broker answered"
	})
	out := map[int32]int32{}
	for i, p := range ps {
		out[i] = p.Leader
	}
	return out
}

// controller returns the active controller.
func (h *harness) controller() int32 {
	h.t.Helper()
	var id int32
	h.waitFor("the active controller", func() (bool, string) {
		var err error
		id, err = h.k.ActiveController(h.ctx)
		return err == nil, fmt.Sprint(err)
	})
	return id
}

// quiet waits until the node has no client connection and no Kafka call
// in flight and returns its resources then.
func (h *harness) quiet(what string) sample {
	h.t.Helper()
	var s sample
	h.waitFor(what+": the node without clients", func() (bool, string) {
		var err error
		s, err = h.node.sample(h.ctx)
		return err == nil && s.wsConns == 0 && s.calls == 0, fmt.Sprintf("%+v, %v", s, err)
	})
	return s
}

// checkBaseline waits until the node's goroutines and file descriptors are
// back to the baseline, give or take what its broker connections hold (a
// connection is a socket and a reader goroutine, and the faults can leave
// the node connected to a broker once more or less than before: up to
// ConnsPerBroker per broker), plus goroutineSlack and fdSlack; and checks
// that its RSS grew by less than rssBound.
func (h *harness) checkBaseline(base sample) sample {
	h.t.Helper()
	var s sample
	h.waitFor("goroutines and file descriptors back to the baseline", func() (bool, string) {
		s = h.quiet("the end")
		extra := max(0, s.brokerConns-base.brokerConns)
		ok := s.goroutines <= base.goroutines+goroutineSlack+2*extra && s.fds <= base.fds+fdSlack+extra
		return ok, fmt.Sprintf("now %v, baseline %v", s, base)
	})
	if s.rss > base.rss+rssBound {
		h.t.Errorf("RSS %.1f MiB after the faults, baseline %.1f MiB: more than %d MiB over", s.rss/(1<<20), base.rss/(1<<20), rssBound>>20)
	}
	return s
}

// fault is one kind of fault: run applies it and undoes it, waiting on
// the events that show the node riding it out; the harness then waits
// for the cluster to heal and the clients to catch up.
type fault struct {
	name string
	run  func(h *harness)
}

// faults are the faults of a round. Each kills, hangs or cuts off the
// leader of a different partition than the round before.
// The short suite (make test) kills only the active controller, which is
// a broker and the leader of a partition too: a broker SIGKILLed
// mid-stream and the controller killed in one, as a restart costs 10-20 s.
func faults(round int) []fault {
	p := int32(round % partitions)
	fs := []fault{
		{"kill-controller", func(h *harness) { h.killController() }},
		{"sigstop-leader", func(h *harness) { h.pauseLeader((p + 1) % partitions) }},
		{"move-leader", func(h *harness) { h.moveLeader((p + 2) % partitions) }},
		{"close-port", func(h *harness) { h.closePort(p) }},
	}
	if long() {
		fs = append([]fault{{"kill-leader", func(h *harness) { h.killLeader(p) }}}, fs...)
		if round == longRounds {
			fs = append(fs, fault{"sigstop-all-leaders", func(h *harness) { h.hangAll() }})
		}
	}
	return fs
}

// leaderMoved waits until every live broker sees partition p led by
// another broker than old.
func (h *harness) leaderMoved(p, old int32) int32 {
	h.t.Helper()
	var now int32
	h.waitView(fmt.Sprintf("partition %d led by another broker than %d", p, old), func(ps map[int32]kmsg.MetadataResponseTopicPartition) bool {
		now = ps[p].Leader
		return now >= 0 && now != old
	})
	return now
}

// killLeader SIGKILLs the leader of partition p (not the active controller:
// that is kill-controller), lets the clients read on from the new leader
// while it is dead, and restarts it.
func (h *harness) killLeader(p int32) {
	h.t.Helper()
	ctl, leaders := h.controller(), h.leaders()
	victim := int32(-1)
	for i := range int32(partitions) {
		if l := leaders[(p+i)%partitions]; l != ctl {
			victim = l
			break
		}
	}
	if victim < 0 { // the controller leads every partition
		victim = ctl%3 + 1
		h.moveLeaderTo(p, victim)
	}
	h.killRestart(victim)
}

// killController SIGKILLs the active controller (a broker and leader too),
// waits for a new one, and restarts it.
func (h *harness) killController() {
	h.t.Helper()
	ctl := h.controller()
	h.killRestart(ctl)
	if now := h.controller(); now == ctl {
		h.t.Logf("node %d is the active controller again", now)
	}
}

func (h *harness) killRestart(id int32) {
	h.t.Helper()
	led := h.ledBy(id)
	wasController := h.controller() == id
	h.t.Logf("SIGKILL node %d (controller %v), leader of %v", id, wasController, led)
	if err := h.k.Kill(id); err != nil {
		h.t.Fatal(err)
	}
	// Its port, as the node sees it, is closed too: refused, not
	// accepted by the gate and closed.
	h.gates[id-1].close()
	h.down[id] = true
	if wasController {
		h.waitFor("a new active controller", func() (bool, string) {
			now, err := h.k.ActiveController(h.ctx)
			return err == nil && now != id, fmt.Sprintf("%d, %v", now, err)
		})
	}
	for _, p := range led {
		h.leaderMoved(p, id)
	}
	// The clients read on from the new leaders while the node is dead.
	h.caughtUp(fmt.Sprintf("node %d dead", id))
	rctx, cancel := context.WithTimeout(h.ctx, 3*time.Minute)
	defer cancel()
	if err := h.k.Restart(rctx, id); err != nil {
		h.t.Fatalf("restart node %d: %v", id, err)
	}
	if err := h.gates[id-1].open(); err != nil {
		h.t.Fatalf("open the gate of node %d again: %v", id, err)
	}
	delete(h.down, id)
}

// ledBy lists the partitions broker id leads.
func (h *harness) ledBy(id int32) []int32 {
	var out []int32
	for p, l := range h.leaders() {
		if l == id {
			out = append(out, p)
		}
	}
	slices.Sort(out)
	return out
}

// pauseLeader hangs the leader of partition p with SIGSTOP: its sockets
// stay open and the node's requests to it go unanswered (answered
// "timeout" by the node). The cluster fences it and elects new leaders,
// and the producer writes on to them; the clients must read on from the
// new leaders while the broker is still stopped (the node gives up a
// connection that answers nothing for its request timeout and asks for
// metadata after a timeout); then the broker continues (SIGCONT).
func (h *harness) pauseLeader(p int32) {
	h.t.Helper()
	id := h.leaders()[p]
	led := h.ledBy(id)
	h.t.Logf("SIGSTOP node %d, leader of %v", id, led)
	if err := h.k.Pause(id); err != nil {
		h.t.Fatal(err)
	}
	h.down[id] = true
	for _, q := range led {
		h.leaderMoved(q, id)
	}
	what := fmt.Sprintf("node %d stopped", id)
	h.writesOn(what)
	if !h.readsOn(what) {
		h.t.Errorf("the node did not move to the new leaders while the old one hung")
	}
	if err := h.k.Resume(id); err != nil {
		h.t.Fatal(err)
	}
	delete(h.down, id)
}

// hangAll moves every leadership to one broker, hangs it with SIGSTOP,
// and requires the clients to read on from the new leaders while it is
// still stopped: a client must not depend on a hung broker coming back.
func (h *harness) hangAll() {
	h.t.Helper()
	id := h.controller()%3 + 1
	for p := range int32(partitions) {
		h.moveLeaderTo(p, id)
	}
	h.t.Logf("SIGSTOP node %d, leader of %v", id, h.ledBy(id))
	if err := h.k.Pause(id); err != nil {
		h.t.Fatal(err)
	}
	h.down[id] = true
	defer func() {
		if err := h.k.Resume(id); err != nil {
			h.t.Error(err)
		}
		delete(h.down, id)
	}()
	for p := range int32(partitions) {
		h.leaderMoved(p, id)
	}
	what := fmt.Sprintf("node %d, the leader of every partition, stopped", id)
	h.writesOn(what)
	if !h.readsOn(what) {
		h.t.Errorf("the node did not move to the new leaders while the old one hung")
	}
}

// moveLeader moves the leadership of partition p under load to a replica
// other than its leader and its preferred replica.
func (h *harness) moveLeader(p int32) {
	h.t.Helper()
	replicas, old := h.replicas(p)
	for _, r := range replicas {
		if r != old && r != replicas[0] {
			h.moveLeaderTo(p, r)
			return
		}
	}
}

// replicas returns the replicas and the leader of partition p.
func (h *harness) replicas(p int32) (replicas []int32, leader int32) {
	h.t.Helper()
	h.waitFor("the replicas of the partition", func() (bool, string) {
		ps, err := h.metadata(h.k.Nodes[0].ID)
		if err != nil {
			return false, err.Error()
		}
		replicas, leader = ps[p].Replicas, ps[p].Leader
		return len(replicas) == 3 && leader >= 0, describe(ps)
	})
	return replicas, leader
}

// moveLeaderTo makes broker to the leader of partition p: the replicas
// reordered with it first (a reassignment that moves no data) and the
// preferred replica elected.
func (h *harness) moveLeaderTo(p, to int32) {
	h.t.Helper()
	replicas, old := h.replicas(p)
	if old == to {
		return
	}
	order := []int32{to}
	for _, r := range replicas {
		if r != to {
			order = append(order, r)
		}
	}
	h.t.Logf("move partition %d from node %d to %d (replicas %v -> %v)", p, old, to, replicas, order)
	ctx, cancel := context.WithTimeout(h.ctx, 30*time.Second)
	defer cancel()
	if !slices.Equal(replicas, order) {
		req := kadm.AlterPartitionAssignmentsReq{}
		req.Assign(h.topic, p, order)
		resp, err := h.admin.AlterPartitionAssignments(ctx, req)
		if err == nil {
			err = resp.Error()
		}
		if err != nil {
			h.t.Fatalf("reassign partition %d: %v", p, err)
		}
		h.waitView(fmt.Sprintf("partition %d with replicas %v", p, order), func(ps map[int32]kmsg.MetadataResponseTopicPartition) bool {
			return slices.Equal(ps[p].Replicas, order)
		})
	}
	set := kadm.TopicsSet{}
	set.Add(h.topic, p)
	h.waitFor(fmt.Sprintf("node %d elected leader of partition %d", to, p), func() (bool, string) {
		res, err := h.admin.ElectLeaders(ctx, kadm.ElectPreferredReplica, set)
		if err != nil {
			return false, err.Error()
		}
		r := res[h.topic][p]
		// ELECTION_NOT_NEEDED: it leads already.
		return r.Err == nil || strings.Contains(r.Err.Error(), "ELECTION_NOT_NEEDED"), fmt.Sprint(r.Err)
	})
	h.waitView(fmt.Sprintf("partition %d led by node %d", p, to), func(ps map[int32]kmsg.MetadataResponseTopicPartition) bool {
		return ps[p].Leader == to
	})
}

// closePort closes the gate of the leader of partition p: the node's
// connections to it are reset and new ones refused, while the cluster
// sees it alive and leading, so the clients of its partitions get errors
// (answered in time) until the port opens again, and then read on.
func (h *harness) closePort(p int32) {
	h.t.Helper()
	id := h.leaders()[p]
	g := h.gates[id-1]
	led := h.ledBy(id)
	h.t.Logf("close the port of node %d (%s), leader of %v", id, g.addr(), led)
	from := map[*reader]int64{}
	for _, r := range h.readers {
		if slices.Contains(led, r.p) {
			from[r] = r.errs.Load()
		}
	}
	g.close()
	// Open until each client of its partitions has had 3 errors.
	h.waitFor("errors for the partitions behind the closed port", func() (bool, string) {
		for r, n := range from {
			if r.errs.Load() < n+3 {
				return false, fmt.Sprintf("reader %d of partition %d: %d errors", r.id, r.p, r.errs.Load()-n)
			}
		}
		return true, ""
	})
	if err := g.open(); err != nil {
		h.t.Fatalf("open the gate of node %d again: %v", id, err)
	}
}
