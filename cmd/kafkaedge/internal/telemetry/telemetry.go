// Package telemetry is kafkaedge's Prometheus metrics: the implementation
// of reactor.Observer and kafkawire.Observer over counters resolved in
// advance (an event of an event loop is an atomic add), the gauges read
// from the server at scrape time, and the /metrics handler.
package telemetry

import (
	"log/slog"
	"net/http"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/kafkaedge/kafkaedge/kafkawire"
	"github.com/kafkaedge/kafkaedge/reactor"
)

// metricsNamespace prefixes every kafkaedge metric.
const metricsNamespace = "kafkaedge"

// unmatchedRoute is the route label of requests that matched no route.
// Route URIs start with "/", so it cannot collide with one.
const unmatchedRoute = "unmatched"

// Latency buckets in seconds: a ping answered on the loop takes
// microseconds, a fetch waiting at the end of a partition up to
// -fetch-max-wait, a slow broker up to -request-timeout.
var latencyBuckets = []float64{0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}

// Metrics implements reactor.Observer and kafkawire.Observer with Prometheus
// collectors. The events of the event loops resolve to counters created in
// advance (arrays indexed by the event, and a copy-on-write map per route),
// so an event is an atomic add.
type Metrics struct {
	reg         *prometheus.Registry
	topicLabels bool

	wsConns        *prometheus.GaugeVec
	upgrades       *prometheus.CounterVec
	closes         *prometheus.CounterVec
	closeByCode    [16]prometheus.Counter // codes 1000..1015
	closeOther     prometheus.Counter
	connRejected   [reactor.NumConnRejects]prometheus.Counter
	requests       [reactor.NumCommands][2]prometheus.Counter // [cmd][ok]
	requestLatency [reactor.NumCommands]prometheus.Observer
	deliveredBytes *prometheus.CounterVec
	deliveredMsgs  *prometheus.CounterVec
	coalesced      prometheus.Counter
	listCoalesced  prometheus.Counter
	backpressure   [reactor.NumBackpressureEvents]prometheus.Counter
	framesRejected [reactor.NumFrameReasons]prometheus.Counter
	subscriptions  prometheus.Gauge
	groupMembers   prometheus.Gauge
	rebalances     prometheus.Counter
	lagging        prometheus.Gauge
	tails          prometheus.Gauge
	tailReads      [reactor.NumTailReads]prometheus.Counter
	pushes         prometheus.Counter
	pushedBytes    prometheus.Counter
	pushedMsgs     prometheus.Counter

	routesMu sync.Mutex // serializes additions to routes
	routes   atomic.Pointer[map[string]*routeMetrics]

	kafkaRequests *prometheus.CounterVec
	kafkaLatency  *prometheus.HistogramVec
	brokerConns   *prometheus.GaugeVec
	brokerEvents  *prometheus.CounterVec
	brokersMu     sync.Mutex
	brokers       map[string]int        // Clients using each broker address
	metaRefresh   [2]prometheus.Counter // [ok]
	decBatches    *prometheus.CounterVec
	decIn         *prometheus.CounterVec
	decOut        *prometheus.CounterVec
	decErrors     *prometheus.CounterVec
	codecs        [5]codecMetrics // gzip, snappy, lz4, zstd, other

	producedRecords *prometheus.CounterVec
	producedBytes   prometheus.Counter
	batchRecords    prometheus.Observer
	batchWait       prometheus.Observer
	produceRetries  prometheus.Counter

	routeUp *prometheus.GaugeVec
}

// routeMetrics are the children of one route's label value.
type routeMetrics struct {
	conns      prometheus.Gauge
	upgradesOK prometheus.Counter
	bytes      prometheus.Counter
	msgs       prometheus.Counter // nil with topic labels
}

// codecMetrics are the children of one codec's label value.
type codecMetrics struct {
	batches, in, out, errors prometheus.Counter
}

// New creates the collectors and registers them, with the Go runtime and
// process collectors, in a registry of their own. With topicLabels,
// delivered messages are counted by topic too.
func New(topicLabels bool) *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry(), topicLabels: topicLabels, brokers: map[string]int{}}
	f := factory{m.reg}
	m.wsConns = f.gaugeVec("ws_connections", "Open WebSocket connections (upgraded), by route.", "route")
	m.upgrades = f.counterVec("ws_upgrades_total", "HTTP requests on the WebSocket listener by route (\"unmatched\" for none) and result: ok (101), bad_request, not_found, header_too_large, or the status.", "route", "result")
	m.closes = f.counterVec("ws_closes_total", "WebSocket connections closed, by close code (1006: the peer vanished without a close; other: codes outside 1000-1015).", "code")
	for i := range m.closeByCode {
		m.closeByCode[i] = m.closes.WithLabelValues(strconv.Itoa(1000 + i))
	}
	m.closeOther = m.closes.WithLabelValues("other")
	rejected := f.counterVec("connections_rejected_total", "TCP connections refused before the upgrade, by reason: max_conns or draining.", "reason")
	for i := range m.connRejected {
		m.connRejected[i] = rejected.WithLabelValues(reactor.ConnReject(i).String())
	}
	requests := f.counterVec("requests_total", "Client requests answered, by command (ping, list_offset, fetch, unknown, invalid) and result (ok, error).", "command", "result")
	latency := f.histogramVec("request_duration_seconds", "Time from reading a client request to handing its answer to the socket, by command.", latencyBuckets, "command")
	for c := range m.requests {
		name := reactor.Command(c).String()
		m.requests[c][0] = requests.WithLabelValues(name, "error")
		m.requests[c][1] = requests.WithLabelValues(name, "ok")
		m.requestLatency[c] = latency.WithLabelValues(name)
	}
	m.deliveredBytes = f.counterVec("delivered_bytes_total", "Bytes of WebSocket frames handed to client sockets after the upgrade, by route.", "route")
	if topicLabels {
		m.deliveredMsgs = f.counterVec("delivered_messages_total", "Kafka messages delivered to clients, by route and topic (-metrics-topic-labels).", "route", "topic")
	} else {
		m.deliveredMsgs = f.counterVec("delivered_messages_total", "Kafka messages delivered to clients, by route.", "route")
	}
	m.coalesced = f.counter("fetch_coalesced_total", "Fetch requests answered by an identical Kafka fetch already in flight (fan-out hits).")
	m.listCoalesced = f.counter("list_offset_coalesced_total", "ListOffset requests answered by an identical Kafka ListOffset already in flight.")
	bp := f.counterVec("backpressure_events_total", "Flow-control events: paused (outbound queue over -max-outbound), resumed, inflight_cap, slot_wait, slow_closed, flood_closed.", "event")
	for i := range m.backpressure {
		m.backpressure[i] = bp.WithLabelValues(reactor.BackpressureEvent(i).String())
	}
	frames := f.counterVec("rejected_frames_total", "Client frames or messages not served, by reason: protocol_error, too_big, invalid_payload, undecodable, no_command, text.", "reason")
	for i := range m.framesRejected {
		m.framesRejected[i] = frames.WithLabelValues(reactor.FrameReason(i).String())
	}
	m.subscriptions = f.gauge("subscriptions", "Subscriptions (CmdKafkaSubscribe) open.")
	m.groupMembers = f.gauge("group_members", "Group subscriptions open: members of consumer groups (also in subscriptions).")
	m.rebalances = f.counter("group_rebalances_total", "Changes of group subscriptions' assignments.")
	m.lagging = f.gauge("subscriptions_lagging_partitions", "Subscribed partitions behind their tail: paused for a full outbound queue, or reading on their own behind the tail cache.")
	m.tails = f.gauge("subscription_tails", "Partitions that subscriptions read, each fetched once at its end for all of them.")
	reads := f.counterVec("tail_reads_total", "Reads of subscribers behind the end of their tail, by kind: cache_hit (from the tail cache), cache_miss (a Kafka fetch of their own), coalesced (joined an identical fetch).", "kind")
	for i := range m.tailReads {
		m.tailReads[i] = reads.WithLabelValues(reactor.TailReadKind(i).String())
	}
	m.pushes = f.counter("pushes_total", "Pushes (kafka_records) of subscriptions handed to client sockets.")
	m.pushedBytes = f.counter("pushed_bytes_total", "Bytes of the pushes of subscriptions (also in delivered_bytes_total).")
	m.pushedMsgs = f.counter("pushed_messages_total", "Kafka messages in the pushes of subscriptions (also in delivered_messages_total).")
	empty := map[string]*routeMetrics{}
	m.routes.Store(&empty)

	m.kafkaRequests = f.counterVec("kafka_requests_total", "Kafka requests by API, broker (host:port) and outcome: the Kafka error name (NONE when none) or timeout, network, closed.", "api", "broker", "outcome")
	m.kafkaLatency = f.histogramVec("kafka_request_duration_seconds", "Kafka request round-trip time, by API.", latencyBuckets, "api")
	m.brokerConns = f.gaugeVec("kafka_broker_connections", "Connections to Kafka brokers by broker and state: dialing or up.", "broker", "state")
	m.brokerEvents = f.counterVec("kafka_broker_connection_events_total", "Broker connection events by broker and event: dialing, up, dial_failed, closed.", "broker", "event")
	meta := f.counterVec("kafka_metadata_refreshes_total", "Metadata refreshes (on demand and periodic) by result: ok or error.", "result")
	m.metaRefresh[0] = meta.WithLabelValues("error")
	m.metaRefresh[1] = meta.WithLabelValues("ok")
	m.producedRecords = f.counterVec("kafka_produced_records_total", "Records of produced batches that settled, by outcome: NONE (written), the Kafka error name, timeout, network or closed.", "outcome")
	m.producedBytes = f.counter("kafka_produced_bytes_total", "Bytes of the record batches written (compressed, as sent).")
	m.batchRecords = f.histogramVec("kafka_produce_batch_records", "Records per produced batch (all connections' records of one partition).", []float64{1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 5000}).WithLabelValues()
	m.batchWait = f.histogramVec("kafka_produce_batch_wait_seconds", "From a batch's first record to its first send (linger, and the 5 batches in flight per partition).", latencyBuckets).WithLabelValues()
	m.produceRetries = f.counter("kafka_produce_retries_total", "Produced batches sent again after a retriable failure.")
	m.decBatches = f.counterVec("kafka_decompressed_batches_total", "Compressed record batches decompressed, by codec.", "codec")
	m.decIn = f.counterVec("kafka_decompressed_in_bytes_total", "Compressed bytes decompressed, by codec.", "codec")
	m.decOut = f.counterVec("kafka_decompressed_out_bytes_total", "Bytes produced by decompression, by codec.", "codec")
	m.decErrors = f.counterVec("kafka_decompress_errors_total", "Record batches that failed to decompress, by codec.", "codec")
	for i, name := range []string{"gzip", "snappy", "lz4", "zstd", "other"} {
		m.codecs[i] = codecMetrics{
			batches: m.decBatches.WithLabelValues(name),
			in:      m.decIn.WithLabelValues(name),
			out:     m.decOut.WithLabelValues(name),
			errors:  m.decErrors.WithLabelValues(name),
		}
	}
	m.routeUp = f.gaugeVec("route_ready", "1 if at least one broker of the route's cluster answered the last readiness probe, else 0.", "route")

	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return m
}

// Logs is what the metrics read of the log pipeline.
type Logs interface {
	Dropped() uint64    // records dropped because the writer fell behind
	Suppressed() uint64 // warnings and errors dropped by the rate limit
}

// Handler serves the metrics in the Prometheus text format; its errors go
// to log.
func (m *Metrics) Handler(log *slog.Logger) http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		ErrorLog:      slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		ErrorHandling: promhttp.ContinueOnError,
	})
}

// RegisterServer adds the metrics read at scrape time from the server's
// counters and from the log pipeline (nil: none), and the build info of
// version.
func (m *Metrics) RegisterServer(srv *reactor.Server, lg Logs, version string) {
	f := factory{m.reg}
	f.gaugeFunc("connections", "Open TCP connections on the WebSocket listener, upgraded or not.", func() float64 { return float64(srv.Stats().Conns) })
	f.gaugeFunc("kafka_calls_in_flight", "Kafka calls (ListOffset, Fetch) running for clients.", func() float64 { return float64(srv.Stats().KafkaCalls) })
	f.counterFunc("kafka_fetches_total", "Kafka fetches made for clients (coalesced requests not counted).", func() float64 { return float64(srv.Stats().Fetches) })
	f.counterFunc("kafka_list_offsets_total", "Kafka ListOffset calls made for clients.", func() float64 { return float64(srv.Stats().ListOffsets) })
	f.gaugeFunc("routes", "Routes in the route table.", func() float64 { return float64(len(srv.Routes())) })
	if lg != nil {
		f.counterFunc("log_dropped_total", "Log lines dropped because the log writer fell behind.", func() float64 { return float64(lg.Dropped()) })
		f.counterFunc("log_suppressed_total", "Warning and error log lines suppressed by the rate limit.", func() float64 { return float64(lg.Suppressed()) })
	}
	lag := groupLag{srv: srv, labels: m.topicLabels}
	if lag.labels {
		lag.desc = prometheus.NewDesc(metricsNamespace+"_group_lag_messages", "Messages the group subscriptions of this node are behind their partitions' high watermarks, by group and topic (-metrics-topic-labels).", []string{"group", "topic"}, nil)
	} else {
		lag.desc = prometheus.NewDesc(metricsNamespace+"_group_lag_messages", "Messages the group subscriptions of this node are behind their partitions' high watermarks, summed over groups (by group and topic with -metrics-topic-labels).", nil, nil)
	}
	m.reg.MustRegister(lag)
	build := f.gaugeVec("build_info", "Always 1; the version label is the kafkaedge version.", "version", "goversion")
	build.WithLabelValues(version, runtime.Version()).Set(1)
}

// groupLag is kafkaedge_group_lag_messages, read from the server at
// scrape time: one series per group and topic with labels (their names are
// the clients': unbounded), else the node's total.
type groupLag struct {
	srv    *reactor.Server
	desc   *prometheus.Desc
	labels bool
}

func (g groupLag) Describe(ch chan<- *prometheus.Desc) { ch <- g.desc }

func (g groupLag) Collect(ch chan<- prometheus.Metric) {
	lags := g.srv.GroupLags()
	if !g.labels {
		var sum int64
		for _, l := range lags {
			sum += l.Lag
		}
		ch <- prometheus.MustNewConstMetric(g.desc, prometheus.GaugeValue, float64(sum))
		return
	}
	for _, l := range lags {
		ch <- prometheus.MustNewConstMetric(g.desc, prometheus.GaugeValue, float64(l.Lag), l.Group, l.Topic)
	}
}

// route returns the children of a route label value, creating them once.
func (m *Metrics) route(uri string) *routeMetrics {
	if rm := (*m.routes.Load())[uri]; rm != nil {
		return rm
	}
	m.routesMu.Lock()
	defer m.routesMu.Unlock()
	cur := *m.routes.Load()
	if rm := cur[uri]; rm != nil {
		return rm
	}
	label := uri
	if label == "" {
		label = unmatchedRoute
	}
	rm := &routeMetrics{
		conns:      m.wsConns.WithLabelValues(label),
		upgradesOK: m.upgrades.WithLabelValues(label, "ok"),
		bytes:      m.deliveredBytes.WithLabelValues(label),
	}
	if !m.topicLabels {
		rm.msgs = m.deliveredMsgs.WithLabelValues(label)
	}
	next := make(map[string]*routeMetrics, len(cur)+1)
	for k, v := range cur {
		next[k] = v
	}
	next[uri] = rm
	m.routes.Store(&next)
	return rm
}

// Upgrade implements reactor.Observer.
func (m *Metrics) Upgrade(route string, status int) {
	if status == 101 {
		rm := m.route(route)
		rm.upgradesOK.Inc()
		rm.conns.Inc()
		return
	}
	label := route
	if label == "" {
		label = unmatchedRoute
	}
	m.upgrades.WithLabelValues(label, upgradeResult(status)).Inc()
}

// upgradeResult is the result label of an HTTP status.
func upgradeResult(status int) string {
	switch status {
	case 101:
		return "ok"
	case 400:
		return "bad_request"
	case 404:
		return "not_found"
	case 408:
		return "timeout"
	case 431:
		return "header_too_large"
	}
	return strconv.Itoa(status)
}

// ConnClosed implements reactor.Observer.
func (m *Metrics) ConnClosed(route string, info reactor.CloseInfo) {
	m.route(route).conns.Dec()
	if c := int(info.Code) - 1000; c >= 0 && c < len(m.closeByCode) {
		m.closeByCode[c].Inc()
	} else {
		m.closeOther.Inc()
	}
}

// RouteRemoved implements reactor.Observer: the series of a route's label
// value (ws_connections, ws_upgrades_total, delivered_bytes_total,
// delivered_messages_total) are deleted once the reactor reports the route
// gone and its last connection closed, so that routes put and deleted do
// not leave series behind. The reactor reports nothing naming the route
// after it, unless the route is added again, which creates them anew.
func (m *Metrics) RouteRemoved(route string) {
	m.routesMu.Lock()
	defer m.routesMu.Unlock()
	cur := *m.routes.Load()
	if _, ok := cur[route]; ok {
		next := make(map[string]*routeMetrics, len(cur))
		for k, v := range cur {
			if k != route {
				next[k] = v
			}
		}
		m.routes.Store(&next)
	}
	m.wsConns.DeleteLabelValues(route)
	m.deliveredBytes.DeleteLabelValues(route)
	m.upgrades.DeletePartialMatch(prometheus.Labels{"route": route})
	m.deliveredMsgs.DeletePartialMatch(prometheus.Labels{"route": route})
}

// ConnRejected implements reactor.Observer.
func (m *Metrics) ConnRejected(reason reactor.ConnReject) {
	if int(reason) < len(m.connRejected) {
		m.connRejected[reason].Inc()
	}
}

// Request implements reactor.Observer.
func (m *Metrics) Request(cmd reactor.Command, ok bool, d time.Duration) {
	if int(cmd) >= len(m.requests) {
		return
	}
	i := 0
	if ok {
		i = 1
	}
	m.requests[cmd][i].Inc()
	m.requestLatency[cmd].Observe(d.Seconds())
}

// Delivered implements reactor.Observer.
func (m *Metrics) Delivered(route, topic string, bytes, messages int) {
	rm := m.route(route)
	rm.bytes.Add(float64(bytes))
	if messages == 0 {
		return
	}
	if rm.msgs != nil {
		rm.msgs.Add(float64(messages))
		return
	}
	m.deliveredMsgs.WithLabelValues(route, topic).Add(float64(messages))
}

// FetchCoalesced implements reactor.Observer.
func (m *Metrics) FetchCoalesced() { m.coalesced.Inc() }

// ListOffsetCoalesced implements reactor.Observer.
func (m *Metrics) ListOffsetCoalesced() { m.listCoalesced.Inc() }

// Backpressure implements reactor.Observer.
func (m *Metrics) Backpressure(ev reactor.BackpressureEvent) {
	if int(ev) < len(m.backpressure) {
		m.backpressure[ev].Inc()
	}
}

// Subscriptions implements reactor.Observer.
func (m *Metrics) Subscriptions(delta int) { m.subscriptions.Add(float64(delta)) }

// GroupMembers implements reactor.Observer.
func (m *Metrics) GroupMembers(delta int) { m.groupMembers.Add(float64(delta)) }

// GroupRebalance implements reactor.Observer.
func (m *Metrics) GroupRebalance() { m.rebalances.Inc() }

// Lagging implements reactor.Observer.
func (m *Metrics) Lagging(delta int) { m.lagging.Add(float64(delta)) }

// Tails implements reactor.Observer.
func (m *Metrics) Tails(delta int) { m.tails.Add(float64(delta)) }

// TailRead implements reactor.Observer.
func (m *Metrics) TailRead(kind reactor.TailReadKind) {
	if int(kind) < len(m.tailReads) {
		m.tailReads[kind].Inc()
	}
}

// Pushed implements reactor.Observer.
func (m *Metrics) Pushed(_ string, bytes, messages int) {
	m.pushes.Inc()
	m.pushedBytes.Add(float64(bytes))
	m.pushedMsgs.Add(float64(messages))
}

// FrameRejected implements reactor.Observer.
func (m *Metrics) FrameRejected(reason reactor.FrameReason) {
	if int(reason) < len(m.framesRejected) {
		m.framesRejected[reason].Inc()
	}
}

// KafkaRequest implements kafkawire.Observer.
func (m *Metrics) KafkaRequest(api, broker, outcome string, d time.Duration) {
	m.kafkaRequests.WithLabelValues(api, broker, outcome).Inc()
	m.kafkaLatency.WithLabelValues(api).Observe(d.Seconds())
}

// BrokerConn implements kafkawire.Observer.
func (m *Metrics) BrokerConn(broker string, ev kafkawire.ConnEvent) {
	m.brokerEvents.WithLabelValues(broker, ev.String()).Inc()
	switch ev {
	case kafkawire.ConnDialing:
		m.brokerConns.WithLabelValues(broker, "dialing").Inc()
	case kafkawire.ConnUp:
		m.brokerConns.WithLabelValues(broker, "dialing").Dec()
		m.brokerConns.WithLabelValues(broker, "up").Inc()
	case kafkawire.ConnDialFailed:
		m.brokerConns.WithLabelValues(broker, "dialing").Dec()
	case kafkawire.ConnClosed:
		m.brokerConns.WithLabelValues(broker, "up").Dec()
	}
}

// BrokerUsed implements kafkawire.Observer: one more Client uses broker.
func (m *Metrics) BrokerUsed(broker string) {
	m.brokersMu.Lock()
	m.brokers[broker]++
	m.brokersMu.Unlock()
}

// BrokerUnused implements kafkawire.Observer: once no Client uses broker,
// its series (kafka_requests_total, kafka_broker_connections,
// kafka_broker_connection_events_total) are deleted, so that brokers of
// routes gone do not stay in the metrics. The Clients report nothing
// naming the broker after BrokerUnused, and any Client using it again
// reports BrokerUsed first: under brokersMu, a deletion is never undone by
// a late event.
func (m *Metrics) BrokerUnused(broker string) {
	m.brokersMu.Lock()
	defer m.brokersMu.Unlock()
	if n := m.brokers[broker] - 1; n > 0 {
		m.brokers[broker] = n
		return
	}
	delete(m.brokers, broker)
	// The label values of connections are few and known: deleting them
	// one by one costs nothing per other series (a partial match walks
	// every series of the metric).
	for _, state := range []string{"dialing", "up"} {
		m.brokerConns.DeleteLabelValues(broker, state)
	}
	for ev := kafkawire.ConnDialing; ev <= kafkawire.ConnClosed; ev++ {
		m.brokerEvents.DeleteLabelValues(broker, ev.String())
	}
	m.kafkaRequests.DeletePartialMatch(prometheus.Labels{"broker": broker})
}

// MetadataRefresh implements kafkawire.Observer.
func (m *Metrics) MetadataRefresh(err error) {
	if err != nil {
		m.metaRefresh[0].Inc()
		return
	}
	m.metaRefresh[1].Inc()
}

// ProduceBatch implements kafkawire.Observer.
func (m *Metrics) ProduceBatch(records, bytes int, waited time.Duration, retries int, outcome string) {
	m.producedRecords.WithLabelValues(outcome).Add(float64(records))
	if outcome == "NONE" {
		m.producedBytes.Add(float64(bytes))
	}
	m.batchRecords.Observe(float64(records))
	m.batchWait.Observe(waited.Seconds())
	m.produceRetries.Add(float64(retries))
}

// Decompressed implements kafkawire.Observer.
func (m *Metrics) Decompressed(codec string, in, out int, failed bool) {
	var cm *codecMetrics
	switch codec {
	case "gzip":
		cm = &m.codecs[0]
	case "snappy":
		cm = &m.codecs[1]
	case "lz4":
		cm = &m.codecs[2]
	case "zstd":
		cm = &m.codecs[3]
	default:
		cm = &m.codecs[4]
	}
	cm.batches.Inc()
	cm.in.Add(float64(in))
	cm.out.Add(float64(out))
	if failed {
		cm.errors.Inc()
	}
}

// SetRouteReady records the last readiness probe of each route (now) and
// drops the label values of the routes that are gone since the one before.
func (m *Metrics) SetRouteReady(now map[string]bool, before map[string]bool) {
	for uri, ok := range now {
		v := 0.0
		if ok {
			v = 1
		}
		m.routeUp.WithLabelValues(uri).Set(v)
	}
	for uri := range before {
		if _, ok := now[uri]; !ok {
			m.routeUp.DeleteLabelValues(uri)
		}
	}
}

// factory creates and registers kafkaedge_* collectors.
type factory struct{ reg *prometheus.Registry }

func (f factory) counter(name, help string) prometheus.Counter {
	c := prometheus.NewCounter(prometheus.CounterOpts{Namespace: metricsNamespace, Name: name, Help: help})
	f.reg.MustRegister(c)
	return c
}

func (f factory) counterVec(name, help string, labels ...string) *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: metricsNamespace, Name: name, Help: help}, labels)
	f.reg.MustRegister(c)
	return c
}

func (f factory) gauge(name, help string) prometheus.Gauge {
	g := prometheus.NewGauge(prometheus.GaugeOpts{Namespace: metricsNamespace, Name: name, Help: help})
	f.reg.MustRegister(g)
	return g
}

func (f factory) gaugeVec(name, help string, labels ...string) *prometheus.GaugeVec {
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: metricsNamespace, Name: name, Help: help}, labels)
	f.reg.MustRegister(g)
	return g
}

func (f factory) histogramVec(name, help string, buckets []float64, labels ...string) *prometheus.HistogramVec {
	h := prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: metricsNamespace, Name: name, Help: help, Buckets: buckets}, labels)
	f.reg.MustRegister(h)
	return h
}

func (f factory) gaugeFunc(name, help string, fn func() float64) {
	f.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: metricsNamespace, Name: name, Help: help}, fn))
}

func (f factory) counterFunc(name, help string, fn func() float64) {
	f.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: metricsNamespace, Name: name, Help: help}, fn))
}
