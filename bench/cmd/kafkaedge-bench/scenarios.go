package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kafkaedge/kafkaedge/internal/wsclient"
)

// Result is the outcome of one scenario on one system. Figures that do not
// apply or were not measured are -1.
type Result struct {
	Scenario          string             `json:"scenario"`
	System            string             `json:"system"`
	Error             string             `json:"error,omitempty"`
	Clients           int                `json:"clients"`
	Seconds           float64            `json:"seconds"`
	Requests          int64              `json:"requests"`
	Errors            int64              `json:"errors"`
	Messages          int64              `json:"messages"`
	ValueBytes        int64              `json:"value_bytes"`
	ReqPerSec         float64            `json:"req_per_sec"`
	MsgsPerSec        float64            `json:"msgs_per_sec"`
	MBPerSec          float64            `json:"mb_per_sec"` // of values, 10^6 bytes
	P50Ms             float64            `json:"p50_ms"`
	P99Ms             float64            `json:"p99_ms"`
	MaxMs             float64            `json:"max_ms"`
	CPUSeconds        float64            `json:"cpu_seconds"`         // server process utime+stime over the run
	CPUSecPerGB       float64            `json:"cpu_sec_per_gb"`      // CPU seconds per 10^9 value bytes delivered
	RSSMiB            float64            `json:"rss_mib"`             // server VmRSS at the end of the run
	PeakRSSMiB        float64            `json:"peak_rss_mib"`        // server VmHWM
	BenchCPU          float64            `json:"bench_cpu_seconds"`   // the benchmark process (clients, kfake, ceiling) over the run
	BrokerFetches     int64              `json:"broker_fetches"`      // consumer Fetch requests the brokers received
	BrokerCPU         float64            `json:"broker_cpu_seconds"`  // the real brokers' JVMs over the run (-kafka real)
	BrokerListOffsets int64              `json:"broker_list_offsets"` // ListOffsets requests the brokers received
	BrokerMBOut       float64            `json:"broker_mb_out"`       // record bytes (10^6) in the brokers' consumer fetch responses (JMX)
	Extra             map[string]float64 `json:"extra,omitempty"`     // scenario figures, see docs/benchmarks.md
}

// bench runs the scenarios and keeps their results.
type bench struct {
	cfg     config
	cl      *cluster
	prog    *progress
	started time.Time
	results []*Result

	topics map[string][]int64 // seeded topic -> end offsets after seeding

	nodeEnv  []string          // added to kafkaedge's environment (the soak's GODEBUG=gctrace=1)
	nodeLine func(line string) // if set, sees every line kafkaedge writes to stderr
}

// target is the system a run measures.
type target struct {
	system string
	srv    *server // nil for the ceiling
	url    string
}

// meter measures the server process and the brokers over a window.
type meter struct {
	srv        *server
	peers      []*server    // more processes of the system (groups: its second node), counted with srv
	p0         []procSample // the peers at begin
	cl         *cluster
	skipCounts bool // do not read the brokers' counts (too slow to read for this window)
	t0         time.Time
	s0         procSample
	self0      procSample
	self       time.Duration // CPU of the benchmark process over the window
	c0         brokerCounts
	b0         time.Duration // the brokers' CPU at the start
	bOK        bool
	elapsed    time.Duration
	cpu        time.Duration
	end        procSample
	counts     brokerCounts  // the brokers' counters over the window
	fetches    int64         // counts.fetches
	broker     time.Duration // the brokers' CPU over the window; -1: not measured
	started    bool
	ended      bool
}

func (m *meter) begin() {
	m.c0 = noCounts
	if !m.skipCounts {
		m.c0 = m.cl.brokerCounts()
	}
	if m.srv != nil {
		m.s0 = m.srv.sample()
	}
	m.p0 = m.p0[:0]
	for _, p := range m.peers {
		m.p0 = append(m.p0, p.sample())
	}
	m.self0, _ = readProc(os.Getpid())
	m.b0, m.bOK = m.cl.brokerCPU()
	m.t0 = time.Now()
	m.started = true
}

func (m *meter) stop() {
	if m.ended {
		return
	}
	m.ended = true
	m.elapsed = time.Since(m.t0)
	if self, err := readProc(os.Getpid()); err == nil && m.self0.valid {
		m.self = self.CPU - m.self0.CPU
	}
	m.broker = -1
	if b, ok := m.cl.brokerCPU(); ok && m.bOK {
		m.broker = b - m.b0
	}
	if m.srv != nil {
		m.end = m.srv.sample()
		if m.end.valid && m.s0.valid {
			m.cpu = m.end.CPU - m.s0.CPU
		}
	}
	// The peers' CPU adds to the server's, their RSS and peak to its.
	for i, p := range m.peers {
		e := p.sample()
		if !e.valid || !m.p0[i].valid || !m.end.valid {
			m.end.valid = false
			continue
		}
		m.cpu += e.CPU - m.p0[i].CPU
		m.end.RSS += e.RSS
		m.end.HWM += e.HWM
	}
	m.counts = noCounts
	if m.c0.fetches >= 0 {
		m.counts = m.cl.brokerCounts().sub(m.c0)
	}
	m.fetches = m.counts.fetches
}

// merge adds the figures of a finished window o to m, which then covers
// both (the server's RSS is o's).
func (m *meter) merge(o *meter) {
	m.started, m.ended = true, true
	m.elapsed += o.elapsed
	m.self += o.self
	m.cpu += o.cpu
	m.counts = m.counts.add(o.counts)
	m.fetches = m.counts.fetches
	if o.broker < 0 || m.broker < 0 {
		m.broker = -1
	} else {
		m.broker += o.broker
	}
	if o.end.valid {
		m.end = o.end
	}
}

// topic returns the full name of a suite topic.
func (b *bench) topic(name string) string { return b.cfg.topicPrefix + name }

// fixedBatch is the records per batch of the fixed-rate topic, so that its
// fetches carry small batches.
const fixedBatch = 10

// seeded creates and seeds a topic once and returns its end offsets;
// batch > 0 limits the records per batch.
func (b *bench) seeded(ctx context.Context, name string, partitions int32, perPartition int, codec string, batch int) (string, []int64, error) {
	t := b.topic(name)
	if ends, ok := b.topics[t]; ok {
		return t, ends, nil
	}
	start := time.Now()
	b.prog.note("seeding %s: %d partitions x %d records of %d bytes, %s", t, partitions, perPartition, b.cfg.valueSize, codec)
	if err := b.cl.seedTopic(ctx, t, partitions, perPartition, codec, b.cfg.valueSize, batch); err != nil {
		return "", nil, err
	}
	ends, err := b.cl.endOffsets(ctx, t, partitions)
	if err != nil {
		return "", nil, err
	}
	b.prog.note("seeded %s in %.1fs", t, time.Since(start).Seconds())
	if b.topics == nil {
		b.topics = make(map[string][]int64)
	}
	b.topics[t] = ends
	return t, ends, nil
}

// partitions returns the partition count of a seeded topic (1 if unknown).
func (b *bench) partitions(topic string) int32 {
	if n := len(b.topics[topic]); n > 0 {
		return int32(n)
	}
	return 1
}

// scenario runs one scenario on every selected system.
func (b *bench) scenario(ctx context.Context, name string) error {
	switch name {
	case "fetch":
		for _, codec := range b.cfg.codecs {
			topic, ends, err := b.seeded(ctx, "fetch-"+codec, int32(b.cfg.clients), b.cfg.records, codec, 0)
			if err != nil {
				return err
			}
			b.each(ctx, "fetch-"+codec, b.cfg.clients, topic, nil, func(ctx context.Context, t *target, m *meter, l *load) (map[string]float64, error) {
				return nil, b.fetchLoad(ctx, t, m, l, topic, ends)
			})
		}
	case "fanout":
		topic, _, err := b.seeded(ctx, "fanout", 1, b.cfg.fanoutBacklog, "none", 0)
		if err != nil {
			return err
		}
		b.each(ctx, "fanout", b.cfg.fanoutClients, topic, nil, func(ctx context.Context, t *target, m *meter, l *load) (map[string]float64, error) {
			return b.fanoutLoad(ctx, t, m, l, topic)
		})
	case "listoffset":
		topic, _, err := b.seeded(ctx, "listoffset", 4, 100, "none", 0)
		if err != nil {
			return err
		}
		b.each(ctx, "listoffset", b.cfg.listClients, topic, nil, func(ctx context.Context, t *target, m *meter, l *load) (map[string]float64, error) {
			return nil, b.listOffsetLoad(ctx, t, m, l, topic, 4)
		})
	case "fixed-rate":
		topic, ends, err := b.seeded(ctx, "fixed-rate", 1, 10_000, "none", fixedBatch)
		if err != nil {
			return err
		}
		b.fixedRate(ctx, topic, ends[0])
	case "idle":
		topic, _, err := b.seeded(ctx, "listoffset", 4, 100, "none", 0)
		if err != nil {
			return err
		}
		b.each(ctx, "idle", b.cfg.idleConns, topic, nil, func(ctx context.Context, t *target, m *meter, l *load) (map[string]float64, error) {
			return b.idleLoad(ctx, t, m, l)
		})
	case "slow-readers":
		codec := "none"
		topic, ends, err := b.seeded(ctx, "fetch-"+codec, int32(b.cfg.clients), b.cfg.records, codec, 0)
		if err != nil {
			return err
		}
		args := []string{"-max-outbound", strconv.Itoa(b.cfg.slowMaxOutbound)}
		b.each(ctx, "slow-readers", b.cfg.clients+b.cfg.slowClients, topic, args, func(ctx context.Context, t *target, m *meter, l *load) (map[string]float64, error) {
			return b.slowLoad(ctx, t, m, l, topic, ends)
		})
	case scSubFanout:
		return b.subscribeFanout(ctx)
	case scSubIdle:
		return b.subscribeIdle(ctx)
	case scSubCatchup:
		return b.subscribeCatchup(ctx)
	case scProduce:
		return b.produce(ctx)
	case scGroups:
		return b.groups(ctx)
	default:
		return fmt.Errorf("unknown scenario %q", name)
	}
	return nil
}

// loadFunc generates one run's load, calling m.begin and m.stop around the
// measured part, and returns scenario figures.
type loadFunc func(ctx context.Context, t *target, m *meter, l *load) (map[string]float64, error)

// maxRequests bounds the requests of one client in one run, besides the
// duration, so that no loop of the suite runs unbounded.
const maxRequests = 5_000_000

// noCeiling lists the scenarios that measure a WebSocket server only.
var noCeiling = []string{"idle", "slow-readers", scProduceClosed, scProducePaced}

// each runs fn on every selected system.
func (b *bench) each(ctx context.Context, scenario string, clients int, warmTopic string, kafkaedgeArgs []string, fn loadFunc) {
	for _, sys := range b.cfg.systems {
		if ctx.Err() != nil {
			return
		}
		if sys == sysCeiling && slices.Contains(noCeiling, scenario) {
			continue
		}
		res := b.runOne(ctx, scenario, sys, clients, warmTopic, kafkaedgeArgs, fn)
		b.add(res)
	}
}

// add keeps a result and prints its line.
func (b *bench) add(res *Result) {
	b.results = append(b.results, res)
	line := fmt.Sprintf("%-24s %-12s %9.0f req/s %10.0f msgs/s %8.1f MB/s  p50 %7.2f ms  p99 %7.2f ms",
		res.Scenario, res.System, res.ReqPerSec, res.MsgsPerSec, res.MBPerSec, res.P50Ms, res.P99Ms)
	if res.Error != "" {
		line += "  ERROR: " + res.Error
	}
	b.prog.note("%s", line)
}

// startSystem execs the server of sys routed at /kafka to the cluster.
func (b *bench) startSystem(ctx context.Context, sys string, kafkaedgeArgs []string) (*server, error) {
	route := "/kafka=" + strings.Join(b.cl.brokers, ",")
	switch sys {
	case sysKafkaedge:
		args := []string{"-listen", "127.0.0.1:0", "-admin-listen", "", "-metrics-listen", "127.0.0.1:0", "-route", route}
		args = append(append(args, b.cfg.kafkaedgeFlags...), kafkaedgeArgs...)
		return startServerWith(ctx, sys, b.cfg.kafkaedgeBin, args, b.nodeEnv, b.nodeLine)
	case sysConventional:
		return startServer(ctx, sys, b.cfg.conventionalBin, []string{"-listen", "127.0.0.1:0", "-route", route})
	}
	return nil, fmt.Errorf("no server for system %q", sys)
}

// runOne starts the system's server (none for the ceiling), warms it up,
// runs fn and fills a Result.
func (b *bench) runOne(ctx context.Context, scenario, sys string, clients int, warmTopic string, kafkaedgeArgs []string, fn loadFunc) *Result {
	res := &Result{Scenario: scenario, System: sys, Clients: clients}
	t, err := b.startTarget(ctx, sys, warmTopic, kafkaedgeArgs)
	if err != nil {
		res.Error = err.Error()
		return res
	}
	defer t.stop()
	l := newLoad()
	m := &meter{srv: t.srv, cl: b.cl}
	b.prog.set(scenario+" "+sys, l, b.cfg.duration)
	extra, err := fn(ctx, t, m, l)
	b.prog.set("", nil, 0)
	if !m.started {
		m.begin()
	}
	m.stop()
	res.Error = resultError(err, l)
	if t.srv != nil {
		if err := t.srv.alive(); err != nil && res.Error == "" {
			res.Error = err.Error()
		}
	}
	fill(res, l, m)
	res.Extra = extra
	return res
}

// resultError is a run's error for its Result: err, else the count and
// the first of the load's failures, else "".
func resultError(err error, l *load) string {
	switch {
	case err != nil:
		return err.Error()
	case l.firstErr != nil && l.errs.Load() > 0:
		return fmt.Sprintf("%d errors, first: %v", l.errs.Load(), l.firstErr)
	}
	return ""
}

// startTarget starts the system's server (none for the ceiling) and warms
// it up on warmTopic. The caller stops it.
func (b *bench) startTarget(ctx context.Context, sys, warmTopic string, kafkaedgeArgs []string) (*target, error) {
	t := &target{system: sys}
	if sys == sysCeiling {
		return t, nil
	}
	srv, err := b.startSystem(ctx, sys, kafkaedgeArgs)
	if err != nil {
		return nil, err
	}
	t.srv, t.url = srv, "ws://"+srv.addr+"/kafka"
	if err := warmUp(ctx, t.url, warmTopic, b.partitions(warmTopic)); err != nil {
		srv.stop()
		return nil, fmt.Errorf("warm-up: %w (%s)", err, srv.logTail())
	}
	return t, nil
}

// stop stops t's server, if any.
func (t *target) stop() {
	if t.srv != nil {
		t.srv.stop()
	}
}

// fill computes a Result's figures from the load and the meter.
func fill(res *Result, l *load, m *meter) {
	sec := max(m.elapsed.Seconds(), 1e-9)
	res.Seconds = m.elapsed.Seconds()
	res.Requests, res.Errors = l.reqs.Load(), l.errs.Load()
	res.Messages, res.ValueBytes = l.msgs.Load(), l.bytes.Load()
	res.ReqPerSec = float64(res.Requests) / sec
	res.MsgsPerSec = float64(res.Messages) / sec
	res.MBPerSec = float64(res.ValueBytes) / 1e6 / sec
	res.P50Ms, res.P99Ms, res.MaxMs = l.percentiles()
	res.BrokerFetches = m.fetches
	res.BrokerListOffsets = m.counts.listOffsets
	res.BrokerMBOut = -1
	if m.counts.bytesOut >= 0 {
		res.BrokerMBOut = float64(m.counts.bytesOut) / 1e6
	}
	res.BrokerCPU = -1
	if m.broker >= 0 {
		res.BrokerCPU = m.broker.Seconds()
	}
	res.BenchCPU = m.self.Seconds()
	res.CPUSeconds, res.CPUSecPerGB, res.RSSMiB, res.PeakRSSMiB = -1, -1, -1, -1
	if m.srv != nil && m.end.valid {
		res.CPUSeconds = m.cpu.Seconds()
		if res.ValueBytes > 0 {
			res.CPUSecPerGB = res.CPUSeconds / (float64(res.ValueBytes) / 1e9)
		}
		res.RSSMiB = float64(m.end.RSS) / (1 << 20)
		res.PeakRSSMiB = float64(m.end.HWM) / (1 << 20)
	}
}

// warmUp makes the server connect to the leaders of the topic's
// partitions and learn its metadata before anything is measured: a
// ListOffset(-1) and an (empty) fetch at the end of each partition.
func warmUp(ctx context.Context, url, topic string, partitions int32) error {
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	c, err := wsclient.Dial(dctx, url, wsclient.Options{})
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		return err
	}
	for p := range partitions {
		end, err := c.ListOffset(topic, p, -1)
		if err != nil {
			return err
		}
		if _, err := c.FetchSummary(topic, p, end); err != nil {
			return err
		}
	}
	return nil
}

// dialMany opens n connections, parallel at a time.
func dialMany(ctx context.Context, url string, n, parallel int, o wsclient.Options, l *load) ([]*wsclient.Conn, error) {
	conns := make([]*wsclient.Conn, n)
	var next atomic.Int64
	var ferr firstError
	var wg sync.WaitGroup
	for range min(parallel, n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n || ferr.get() != nil || ctx.Err() != nil {
					return
				}
				dctx, cancel := context.WithTimeout(ctx, 15*time.Second)
				c, err := wsclient.Dial(dctx, url, o)
				cancel()
				if err != nil {
					ferr.set(fmt.Errorf("connection %d of %d: %w", i+1, n, err))
					return
				}
				conns[i] = c
				if l != nil {
					l.reqs.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if err := ferr.get(); err != nil {
		closeAll(conns)
		return nil, err
	}
	return conns, ctx.Err()
}

// closeAll closes every non-nil connection.
func closeAll(conns []*wsclient.Conn) {
	for _, c := range conns {
		if c != nil {
			c.Close()
		}
	}
}

// fetchLoad: each client reads one partition from start to end, again and
// again, for the duration.
func (b *bench) fetchLoad(ctx context.Context, t *target, m *meter, l *load, topic string, ends []int64) error {
	if t.srv == nil {
		m.begin()
		err := directFetchers(ctx, b.cl, topic, ends, time.Now().Add(b.cfg.duration), l)
		m.stop()
		return err
	}
	conns, err := dialMany(ctx, t.url, b.cfg.clients, 8, wsclient.Options{}, nil)
	if err != nil {
		return err
	}
	defer closeAll(conns)
	m.begin()
	wsFetchers(ctx, conns, topic, ends, time.Now().Add(b.cfg.duration), l)
	m.stop()
	return nil
}

// wsFetchers runs one reader per connection until the deadline (requests
// in flight then still complete and count); connection i reads partition i
// mod len(ends) and starts over at the end.
func wsFetchers(ctx context.Context, conns []*wsclient.Conn, topic string, ends []int64, until time.Time, l *load) {
	var wg sync.WaitGroup
	for i, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := int32(i % len(ends))
			rec := l.recorder()
			defer rec.flush()
			_ = c.SetDeadline(until.Add(30 * time.Second))
			var off int64
			for n := 0; n < maxRequests && ctx.Err() == nil && time.Now().Before(until); n++ {
				if off >= ends[p] {
					off = 0
				}
				t0 := time.Now()
				s, err := c.FetchSummary(topic, p, off)
				if err != nil {
					l.fail(err)
					return
				}
				rec.add(time.Since(t0), s.Messages, s.ValueBytes)
				if s.Messages == 0 {
					l.fail(fmt.Errorf("fetch %s/%d@%d: empty before the end %d", topic, p, off, ends[p]))
					return
				}
				off = s.LastOffset + 1
			}
		}()
	}
	wg.Wait()
}

// directFetchers is the ceiling of the fetch scenario: one kgo consumer per
// client reading its partition from start to end, again and again.
func directFetchers(ctx context.Context, cl *cluster, topic string, ends []int64, until time.Time, l *load) error {
	ctx, cancel := context.WithDeadline(ctx, until)
	defer cancel()
	rs := newRecorderSync(l)
	defer rs.flush()
	var wg sync.WaitGroup
	var ferr firstError
	for p := range int32(len(ends)) {
		c, err := kgo.NewClient(kgo.SeedBrokers(cl.brokers...),
			kgo.ClientID("kafkaedge-bench-ceiling"),
			kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {p: kgo.NewOffset().At(0)}}),
			kgo.FetchMaxWait(100*time.Millisecond),
			kgo.FetchMaxBytes(10<<20), kgo.FetchMaxPartitionBytes(10<<20),
			kgo.WithHooks(e2eHook{rec: rs}))
		if err != nil {
			return fmt.Errorf("ceiling consumer: %w", err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer c.Close()
			for range maxRequests {
				fs := c.PollFetches(ctx)
				if ctx.Err() != nil {
					return
				}
				for _, fe := range fs.Errors() {
					ferr.set(fmt.Errorf("ceiling fetch %s/%d: %w", fe.Topic, fe.Partition, fe.Err))
					return
				}
				var msgs, bytes int
				last := int64(-1)
				fs.EachRecord(func(r *kgo.Record) {
					msgs++
					bytes += len(r.Value)
					last = r.Offset
				})
				l.msgs.Add(int64(msgs))
				l.bytes.Add(int64(bytes))
				if last+1 >= ends[p] {
					c.SetOffsets(map[string]map[int32]kgo.EpochOffset{topic: {p: {Epoch: -1, Offset: 0}}})
				}
			}
		}()
	}
	wg.Wait()
	return ferr.get()
}

// openClients dials n WebSocket clients (parallel at a time) to t's server,
// or, for the ceiling (no server), opens one direct franz-go client on the
// first partitions of topic. done releases what was opened.
func (b *bench) openClients(ctx context.Context, t *target, topic string, n, parallel int, partitions int32) (conns []*wsclient.Conn, d *direct, done func(), err error) {
	if t.srv != nil {
		if conns, err = dialMany(ctx, t.url, n, parallel, wsclient.Options{}, nil); err != nil {
			return nil, nil, nil, err
		}
		return conns, nil, func() { closeAll(conns) }, nil
	}
	if d, err = b.cl.newDirect(ctx, topic, partitions); err != nil {
		return nil, nil, nil, err
	}
	return nil, d, d.close, nil
}

// fanoutLoad: many clients tail one partition from the same offset while a
// producer keeps writing to it.
func (b *bench) fanoutLoad(ctx context.Context, t *target, m *meter, l *load, topic string) (map[string]float64, error) {
	ends, err := b.cl.endOffsets(ctx, topic, 1)
	if err != nil {
		return nil, err
	}
	start := max(0, ends[0]-int64(b.cfg.fanoutBacklog))
	n := b.cfg.fanoutClients
	conns, d, done, err := b.openClients(ctx, t, topic, n, 32, 1)
	if err != nil {
		return nil, err
	}
	defer done()
	m.begin()
	until := time.Now().Add(b.cfg.duration)
	pctx, pcancel := context.WithDeadline(ctx, until)
	defer pcancel()
	prodDone := make(chan error, 1)
	go func() { prodDone <- b.produceFor(pctx, topic, 1, b.cfg.fanoutRate) }()

	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rec := l.recorder()
			defer rec.flush()
			off := start
			for n := 0; n < maxRequests && ctx.Err() == nil && time.Now().Before(until); n++ {
				t0 := time.Now()
				var msgs, bytes int
				var err error
				last := int64(-1)
				if d != nil {
					msgs, bytes, last, err = d.fetch(ctx, 0, off)
				} else {
					c := conns[i]
					_ = c.SetDeadline(until.Add(30 * time.Second))
					var s wsclient.Summary
					s, err = c.FetchSummary(topic, 0, off)
					msgs, bytes, last = s.Messages, s.ValueBytes, s.LastOffset
				}
				if err != nil {
					l.fail(err)
					return
				}
				rec.add(time.Since(t0), msgs, bytes)
				if msgs == 0 {
					time.Sleep(20 * time.Millisecond) // caught up: poll again shortly
					continue
				}
				off = last + 1
			}
		}()
	}
	wg.Wait()
	m.stop()
	pcancel()
	if err := <-prodDone; err != nil {
		return nil, fmt.Errorf("fanout producer: %w", err)
	}
	extra := map[string]float64{"start_backlog": float64(b.cfg.fanoutBacklog), "producer_rate": float64(b.cfg.fanoutRate)}
	if m.fetches >= 0 && l.reqs.Load() > 0 {
		extra["broker_fetches_per_client_fetch"] = float64(m.fetches) / float64(l.reqs.Load())
	}
	return extra, nil
}

// produceFor writes rate records per second to partitions 0..partitions-1
// of topic, in turn, until ctx ends.
func (b *bench) produceFor(ctx context.Context, topic string, partitions int32, rate int) error {
	if rate <= 0 {
		<-ctx.Done()
		return nil
	}
	p, err := b.cl.newProducer(topic, "none", b.cfg.valueSize, 0)
	if err != nil {
		return err
	}
	defer p.close()
	var errp firstError
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	start := time.Now()
	sent := 0
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := p.flush(fctx); err != nil {
				return err
			}
			return ignoreCanceled(errp.get())
		case now := <-tick.C:
			due := int(now.Sub(start).Seconds()*float64(rate)) - sent
			for ; due > 0; due-- {
				p.produce(ctx, int32(sent%int(partitions)), 1, &errp)
				sent++
			}
		}
	}
}

// ignoreCanceled drops the context errors of records still buffered when
// the producer stops.
func ignoreCanceled(err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return nil
	}
	return err
}

// listOffsetLoad: clients ask ListOffset(-1) back to back.
func (b *bench) listOffsetLoad(ctx context.Context, t *target, m *meter, l *load, topic string, partitions int32) error {
	n := b.cfg.listClients
	conns, d, done, err := b.openClients(ctx, t, topic, n, 16, partitions)
	if err != nil {
		return err
	}
	defer done()
	m.begin()
	until := time.Now().Add(b.cfg.duration)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rec := l.recorder()
			defer rec.flush()
			p := int32(i) % partitions
			if conns != nil {
				_ = conns[i].SetDeadline(until.Add(30 * time.Second))
			}
			for n := 0; n < maxRequests && ctx.Err() == nil && time.Now().Before(until); n++ {
				t0 := time.Now()
				var err error
				if d != nil {
					_, err = d.listOffset(ctx, p, -1)
				} else {
					_, err = conns[i].ListOffset(topic, p, -1)
				}
				if err != nil {
					l.fail(err)
					return
				}
				rec.add(time.Since(t0), 0, 0)
			}
		}()
	}
	wg.Wait()
	m.stop()
	return nil
}

// fixedRate runs the fixed-rate scenario: for each command, total rate and
// number of clients (a point), every system. Each system's server is
// started once for all the points. A point is measured in -fixed-rounds
// slices per system, the systems taking turns slice by slice in an order
// that reverses every round (A B, B A, A B, ...), and each system's slices
// are merged into its result: a burst of other work on the machine, or a
// drift, weighs on the systems alike.
func (b *bench) fixedRate(ctx context.Context, topic string, end int64) {
	var targets []*target
	defer func() {
		for _, t := range targets {
			t.stop()
		}
	}()
	failed := map[string]string{}
	for _, sys := range b.cfg.systems {
		t, err := b.startTarget(ctx, sys, topic, nil)
		if err != nil {
			failed[sys] = err.Error()
			continue
		}
		targets = append(targets, t)
	}
	slice := b.cfg.fixedDuration / time.Duration(b.cfg.fixedRounds)
	// Each slice reads the brokers' fetch count twice: only if that is
	// cheap (kfake, the JmxCount reader), not a JVM per read (JmxTool).
	cheap := b.cl.countsCheap()
	for _, cmd := range b.cfg.fixedCommands {
		for _, rate := range b.cfg.fixedRates {
			for _, n := range b.cfg.fixedClients {
				name := fixedName(cmd, rate, n)
				type run struct {
					t   *target
					l   *load
					m   meter
					err error
				}
				runs := make([]*run, len(targets))
				for i, t := range targets {
					runs[i] = &run{t: t, l: newLoad(), m: meter{srv: t.srv, cl: b.cl, skipCounts: !cheap}}
				}
				for r := 0; r < b.cfg.fixedRounds && ctx.Err() == nil; r++ {
					for j := range runs {
						ru := runs[j]
						if r%2 == 1 {
							ru = runs[len(runs)-1-j]
						}
						if ru.err != nil {
							continue
						}
						m := &meter{srv: ru.t.srv, cl: b.cl, skipCounts: !cheap}
						b.prog.set(name+" "+ru.t.system, ru.l, slice)
						ru.err = b.fixedRateLoad(ctx, ru.t, m, ru.l, cmd, rate, n, slice, topic, end)
						b.prog.set("", nil, 0)
						if !m.started {
							m.begin()
						}
						m.stop()
						ru.m.merge(m)
						if ru.err == nil && ru.t.srv != nil {
							ru.err = ru.t.srv.alive()
						}
					}
				}
				if ctx.Err() != nil {
					return
				}
				for _, sys := range b.cfg.systems {
					if msg, ok := failed[sys]; ok {
						b.add(&Result{Scenario: name, System: sys, Clients: n, Error: msg})
						continue
					}
					ru := runs[slices.IndexFunc(runs, func(ru *run) bool { return ru.t.system == sys })]
					res := &Result{Scenario: name, System: sys, Clients: n, Error: resultError(ru.err, ru.l)}
					fill(res, ru.l, &ru.m)
					b.add(res)
				}
			}
		}
	}
}

// fixedName names a point of the fixed-rate scenario.
func fixedName(cmd string, rate, clients int) string {
	return fmt.Sprintf("fixed-rate/%s/%drps/%dc", cmd, rate, clients)
}

// fixedRateLoad: n clients share a fixed total rate of requests (cmd
// "listoffset": ListOffset(-1); "fetch": a fetch of the last 1-10 records,
// written in batches of 10) for dur. Each client has one
// request in flight and sends at fixed intervals, staggered between the
// clients; latency counts from the time each request was due, so a server
// that falls behind is charged for it (no coordinated omission), except
// that a client that was early and slept counts from its wake-up.
func (b *bench) fixedRateLoad(ctx context.Context, t *target, m *meter, l *load, cmd string, rate, n int, dur time.Duration, topic string, end int64) error {
	conns, d, done, err := b.openClients(ctx, t, topic, n, 16, 1)
	if err != nil {
		return err
	}
	defer done()
	interval := time.Duration(float64(time.Second) * float64(n) / float64(rate))
	m.begin()
	start := time.Now().Add(50 * time.Millisecond)
	until := start.Add(dur)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rec := l.recorder()
			defer rec.flush()
			rng := rand.New(rand.NewPCG(uint64(i), 7))
			if conns != nil {
				_ = conns[i].SetDeadline(until.Add(30 * time.Second))
			}
			due := start.Add(interval * time.Duration(i) / time.Duration(n))
			for k := 0; k < maxRequests && ctx.Err() == nil && due.Before(until); k++ {
				// A request is timed from when it was due; if the client
				// was early and slept, from when it woke: Go's timers on
				// Linux wake up to a millisecond late, and that is the
				// client's slack, not the server's.
				sent := due
				if w := time.Until(due); w > 0 {
					time.Sleep(w)
					sent = time.Now()
				}
				var msgs, bytes int
				var err error
				switch {
				case cmd == "listoffset" && d != nil:
					_, err = d.listOffset(ctx, 0, -1)
				case cmd == "listoffset":
					_, err = conns[i].ListOffset(topic, 0, -1)
				case d != nil:
					msgs, bytes, _, err = d.fetch(ctx, 0, end-1-rng.Int64N(min(10, end)))
				default:
					var s wsclient.Summary
					s, err = conns[i].FetchSummary(topic, 0, end-1-rng.Int64N(min(10, end)))
					msgs, bytes = s.Messages, s.ValueBytes
				}
				if err != nil {
					l.fail(err)
					return
				}
				rec.add(time.Since(sent), msgs, bytes)
				due = due.Add(interval)
			}
		}()
	}
	wg.Wait()
	m.stop()
	return nil
}

// idleLoad: open many connections, leave them idle, and read the server's
// memory per connection.
func (b *bench) idleLoad(ctx context.Context, t *target, m *meter, l *load) (map[string]float64, error) {
	time.Sleep(300 * time.Millisecond) // let the warm-up's garbage settle
	before := t.srv.sample()
	m.begin()
	o := wsclient.Options{ReadBufferSize: 256, WriteBufferSize: 256}
	conns, err := dialMany(ctx, t.url, b.cfg.idleConns, 32, o, l)
	if err != nil {
		return nil, err
	}
	defer closeAll(conns)
	time.Sleep(time.Second)
	after := t.srv.sample()
	// The connections must still be served.
	for i := 0; i < len(conns); i += max(1, len(conns)/50) {
		_ = conns[i].SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := conns[i].Ping([]byte("idle")); err != nil {
			return nil, fmt.Errorf("ping idle connection %d: %w", i, err)
		}
	}
	m.stop()
	extra := map[string]float64{"conns": float64(len(conns))}
	if before.valid && after.valid {
		extra["rss_before_mib"] = float64(before.RSS) / (1 << 20)
		extra["kib_per_conn"] = float64(after.RSS-before.RSS) / 1024 / float64(len(conns))
	}
	return extra, nil
}

// throttledConn reads at most rate bytes per second, like a client on a
// slow link; its socket receive buffer is kept small so the kernel does not
// absorb what the server sends.
type throttledConn struct {
	net.Conn
	rate int
}

func (c *throttledConn) Read(p []byte) (int, error) {
	chunk := max(c.rate/10, 512)
	if len(p) > chunk {
		p = p[:chunk]
	}
	n, err := c.Conn.Read(p)
	time.Sleep(time.Duration(n) * time.Second / time.Duration(c.rate))
	return n, err
}

// slowLoad: fast clients read alone (solo), then again while slow clients
// keep large fetches outstanding and read them slowly.
func (b *bench) slowLoad(ctx context.Context, t *target, m *meter, l *load, topic string, ends []int64) (map[string]float64, error) {
	fast, err := dialMany(ctx, t.url, b.cfg.clients, 8, wsclient.Options{}, nil)
	if err != nil {
		return nil, err
	}
	defer closeAll(fast)
	solo := newLoad()
	soloDur := max(b.cfg.duration/2, time.Second)
	t0 := time.Now()
	wsFetchers(ctx, fast, topic, ends, t0.Add(soloDur), solo)
	soloRate := float64(solo.msgs.Load()) / time.Since(t0).Seconds()
	if solo.firstErr != nil {
		return nil, fmt.Errorf("solo phase: %w", solo.firstErr)
	}
	base := t.srv.sample()

	rate := b.cfg.slowRate
	o := wsclient.Options{WrapConn: func(c net.Conn) net.Conn {
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetReadBuffer(64 << 10)
		}
		return &throttledConn{Conn: c, rate: rate}
	}}
	slow, err := dialMany(ctx, t.url, b.cfg.slowClients, 16, o, nil)
	if err != nil {
		return nil, err
	}
	var slowBytes atomic.Int64
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for i, c := range slow {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := int32(i % len(ends))
			_ = c.SetDeadline(time.Now().Add(b.cfg.duration + time.Minute))
			for range maxRequests {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := c.SendFetch(topic, p, 0); err != nil {
					return
				}
				s, err := c.RecvFetch()
				if err != nil {
					return // closed at the end of the run, or by the server
				}
				slowBytes.Add(int64(s.ValueBytes))
			}
		}()
	}
	time.Sleep(time.Second) // let the slow clients' responses pile up

	m.begin()
	wsFetchers(ctx, fast, topic, ends, time.Now().Add(b.cfg.duration), l)
	m.stop()
	close(stop)
	closeAll(slow)
	wg.Wait()

	fastRate := float64(l.msgs.Load()) / max(m.elapsed.Seconds(), 1e-9)
	extra := map[string]float64{
		"fast_solo_msgs_per_sec": soloRate,
		"fast_msgs_per_sec":      fastRate,
		"fast_vs_solo":           fastRate / max(soloRate, 1e-9),
		"slow_clients":           float64(len(slow)),
		"slow_value_mb_read":     float64(slowBytes.Load()) / 1e6,
	}
	if base.valid {
		extra["rss_before_slow_mib"] = float64(base.RSS) / (1 << 20)
	}
	if t.system == sysKafkaedge {
		capBytes := int64(len(slow)+len(fast)) * int64(b.cfg.slowMaxOutbound)
		extra["max_outbound_mib"] = float64(b.cfg.slowMaxOutbound) / (1 << 20)
		extra["cap_mib"] = float64(base.RSS+capBytes) / (1 << 20)
	}
	return extra, nil
}

// warmBrokers exercises real brokers' produce, fetch and ListOffsets paths
// before anything is measured, so that their JIT has compiled those paths:
// otherwise the first system measured would meet colder brokers than the
// others. It seeds a small topic (3 partitions, a leader on each broker),
// reads each partition through once, then sends small fetches (the last
// 1-10 records) and ListOffsets back to back for -broker-warmup.
func (b *bench) warmBrokers(ctx context.Context) error {
	start := time.Now()
	const parts = 3
	topic, ends, err := b.seeded(ctx, "broker-warmup", parts, 20_000, "none", 0)
	if err != nil {
		return err
	}
	d, err := b.cl.newDirect(ctx, topic, parts)
	if err != nil {
		return err
	}
	defer d.close()
	var ferr firstError
	var reqs atomic.Int64
	for p := range int32(parts) {
		for off := int64(0); off < ends[p] && ctx.Err() == nil; {
			n, _, last, err := d.fetch(ctx, p, off)
			if err != nil || n == 0 {
				return fmt.Errorf("read %s/%d@%d: %v (%d records)", topic, p, off, err, n)
			}
			off = last + 1
		}
	}
	until := time.Now().Add(b.cfg.brokerWarmup)
	var wg sync.WaitGroup
	for i := range 6 {
		wg.Go(func() {
			p := int32(i % parts)
			rng := rand.New(rand.NewPCG(uint64(i), 9))
			for n := 0; n < maxRequests && ctx.Err() == nil && time.Now().Before(until); n++ {
				var err error
				if i < 4 {
					_, _, _, err = d.fetch(ctx, p, ends[p]-1-rng.Int64N(10))
				} else {
					_, err = d.listOffset(ctx, p, -1)
				}
				if err != nil {
					ferr.set(err)
					return
				}
				reqs.Add(1)
			}
		})
	}
	wg.Wait()
	if err := ferr.get(); err != nil {
		return err
	}
	b.prog.note("warmed the brokers up in %.1fs (%d small fetches and ListOffsets after a full read)", time.Since(start).Seconds(), reqs.Load())
	return ctx.Err()
}
