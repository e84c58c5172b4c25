// Package kafkawire is kafkaedge's own Kafka client: pools of multiplexed
// broker connections, metadata-driven routing to partition leaders, and the
// ListOffsets and Fetch requests the edge serves, one call at a time or as
// a Stream that tails many partitions in fetch sessions. A ClientSet shares
// one Client among the users of a cluster.
// It speaks the protocol through its sub-packages wire (request and response
// codec) and record (record batches), with TLS and SASL, and no Kafka client
// library.
package kafkawire

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kafkaedge/kafkaedge/kafkawire/record"
	"github.com/kafkaedge/kafkaedge/kafkawire/wire"
)

// Client is a connection to one Kafka cluster, shared by any number of
// goroutines. It keeps a small fixed pool of connections per broker, routes
// every request to the partition leader from cached metadata, and retries
// once when a leader moved or its connection broke.
type Client struct {
	cfg Config
	tls *tls.Config
	dec record.Decoder
	// roundHook, set by tests before any call, sees every Fetch request
	// of fetchRound that was answered, and its answer.
	roundHook func(addr string, req *wire.FetchRequest, resp *wire.FetchResponse)
	// shares holds, per partition fetched (topicPartition), an
	// *atomic.Int32: wire bytes per decoded byte, in 1/shareScale units.
	shares sync.Map

	ctx    context.Context // canceled by Close
	cancel context.CancelFunc
	closed atomic.Bool
	bg     sync.WaitGroup

	poolsMu sync.Mutex
	pools   map[poolKey]*brokerPool
	uses    map[string]*brokerUse // by address, with an Observer
	usesWG  sync.WaitGroup        // uses not yet reported unused

	coords groupCoords // the coordinators of consumer groups

	meta     atomic.Pointer[snapshot]
	stale    sync.Map   // topic -> time.Time of a call that timed out (markStale)
	snapMu   sync.Mutex // serializes metadata installs
	metaMu   sync.Mutex // guards the flights
	metaCur  *metaFlight
	metaNext *metaFlight
	rr       atomic.Uint32

	prodOnce sync.Once
	prod     *producer // see Client.Produce
	codec    int       // Config.ProduceCodec
}

// New validates cfg (Config.Validate) and returns a Client. It dials
// lazily, on the first call, and starts the periodic metadata refresh.
func New(cfg Config) (*Client, error) {
	cfg = cfg.withDefaults()
	// The Client keeps its own copies of what the caller could change.
	cfg.Brokers = slices.Clone(cfg.Brokers)
	if cfg.TLS != nil {
		t := *cfg.TLS
		cfg.TLS = &t
	}
	if cfg.SASL != nil {
		s := *cfg.SASL
		cfg.SASL = &s
	}
	tc, err := cfg.check()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := &Client{
		cfg:    cfg,
		tls:    tc,
		dec:    record.Decoder{MaxBatchBytes: cfg.MaxBatchBytes, StopAfterBytes: int(cfg.FetchPartitionMaxBytes)},
		ctx:    ctx,
		cancel: cancel,
		pools:  make(map[poolKey]*brokerPool),
		uses:   make(map[string]*brokerUse),
	}
	if cfg.Observer != nil {
		c.dec.Observer = cfg.Observer
	}
	c.codec, _ = record.ParseCodec(cfg.ProduceCodec) // checked
	c.meta.Store(&snapshot{brokers: map[int32]string{}, topics: map[string]*topicMeta{}})
	c.bg.Add(1)
	go c.refreshLoop()
	return c, nil
}

// Close fails in-flight calls with ErrClosed, closes the connections and
// stops the background refresh. Later calls fail with ErrClosed. It
// returns once the Observer was told that every broker is unused.
func (c *Client) Close() error {
	if !c.closed.CompareAndSwap(false, true) {
		return nil
	}
	c.cancel()
	c.poolsMu.Lock()
	pools, uses := c.pools, c.uses
	c.pools, c.uses = map[poolKey]*brokerPool{}, map[string]*brokerUse{}
	c.poolsMu.Unlock()
	for _, p := range pools {
		p.close(ErrClosed)
	}
	for _, u := range uses {
		u.close()
	}
	c.bg.Wait()
	c.usesWG.Wait()
	return nil
}

// Ready reports whether at least one broker answers (a Metadata round trip),
// for /readyz.
func (c *Client) Ready(ctx context.Context) error {
	if c.closed.Load() {
		return ErrClosed
	}
	ctx, cancel := c.opContext(ctx)
	defer cancel()
	return c.fetchMetadata(ctx, nil, false, nil)
}

// refreshLoop refreshes the metadata of the cached topics every
// MetadataRefresh. It does nothing before the first call has asked for a
// topic, so an unused Client does not connect.
func (c *Client) refreshLoop() {
	defer c.bg.Done()
	t := time.NewTicker(c.cfg.MetadataRefresh)
	defer t.Stop()
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-t.C:
		}
		if len(c.meta.Load().topics) == 0 {
			continue
		}
		if err := c.refresh(c.ctx, nil, time.Now(), nil); err != nil && !c.closed.Load() {
			c.cfg.Logger.Warn("kafkawire: metadata refresh failed", "brokers", c.cfg.Brokers, "err", err)
		}
	}
}

// pool returns the connection pool of lane l to addr, creating it on first
// use.
func (c *Client) pool(addr string, l lane) *brokerPool {
	k := poolKey{addr, l}
	c.poolsMu.Lock()
	defer c.poolsMu.Unlock()
	p, ok := c.pools[k]
	if !ok {
		if c.closed.Load() {
			p = newBrokerPool(c, k, nil)
			p.closed = true
			return p
		}
		u := c.uses[addr]
		if u == nil && c.cfg.Observer != nil {
			u = newBrokerUse(c.cfg.Observer, addr, &c.usesWG)
			c.uses[addr] = u
		}
		p = newBrokerPool(c, k, u)
		c.pools[k] = p
	}
	return p
}

// existingPool returns the pool of lane l to addr, nil if there is none.
func (c *Client) existingPool(addr string, l lane) *brokerPool {
	c.poolsMu.Lock()
	defer c.poolsMu.Unlock()
	return c.pools[poolKey{addr, l}]
}

// prunePools closes the pools of addresses that are neither a broker of the
// cluster any more nor a bootstrap address, and reports them unused.
func (c *Client) prunePools(brokers map[int32]string) {
	keep := make(map[string]bool, len(brokers)+len(c.cfg.Brokers))
	for _, a := range brokers {
		keep[a] = true
	}
	for _, a := range c.cfg.Brokers {
		keep[a] = true
	}
	var (
		gone   []*brokerPool
		unused []*brokerUse
	)
	c.poolsMu.Lock()
	for k, p := range c.pools {
		if !keep[k.addr] {
			gone = append(gone, p)
			delete(c.pools, k)
		}
	}
	for a, u := range c.uses {
		if !keep[a] {
			unused = append(unused, u)
			delete(c.uses, a)
		}
	}
	c.poolsMu.Unlock()
	for _, p := range gone {
		p.close(errBrokerGone)
	}
	for _, u := range unused {
		u.close()
	}
}

// errBrokerGone fails the calls on a broker that left the cluster metadata.
var errBrokerGone = errors.New("broker is no longer in the cluster metadata")

// opContext bounds ctx by RequestTimeout unless it already ends sooner.
func (c *Client) opContext(ctx context.Context) (context.Context, context.CancelFunc) {
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) <= c.cfg.RequestTimeout {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, c.cfg.RequestTimeout)
}

// opContextFor is opContext for a call that may first wait up to wait for
// data: it is bounded by RequestTimeout plus wait.
func (c *Client) opContextFor(ctx context.Context, wait time.Duration) (context.Context, context.CancelFunc) {
	limit := c.cfg.RequestTimeout + wait
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) <= limit {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, limit)
}

// mayRetry reports whether a failed first attempt should be retried.
func (c *Client) mayRetry(ctx context.Context, err error) bool {
	return retriable(err) && ctx.Err() == nil && !c.closed.Load()
}

// opError builds the *Error of a failed call, reporting ErrClosed once the
// Client is closed whatever the transport said.
func (c *Client) opError(op, topic string, partition int32, offset int64, err error) *Error {
	if c.closed.Load() {
		err = fmt.Errorf("%w (%v)", ErrClosed, err)
	}
	return newError(op, topic, partition, offset, err)
}

// ListOffset returns an offset of topic/partition by timestamp: -1 asks for
// the high watermark (the next offset to be written; the last stable offset
// with read_committed), -2 for the log start offset, -3 for the offset of
// the record with the largest timestamp (ListOffsets v7+, KIP-734), -4 for
// the log start offset of the broker's local log (v8+, KIP-405: the log
// start without tiered storage), -5 for the last offset in tiered storage
// (v9+, KIP-1005: -1 without it), a value >= 0 for the first offset whose
// record timestamp is >= timestamp in milliseconds; -1 when there is none.
// Any other negative timestamp, or one the leader's ListOffsets version
// does not know, fails with Code UNSUPPORTED_VERSION, as Kafka answers it,
// without a request. Failures are *Error.
func (c *Client) ListOffset(ctx context.Context, topic string, partition int32, timestamp int64) (int64, error) {
	const op = "list offsets"
	if c.closed.Load() {
		return -1, newError(op, topic, partition, timestamp, ErrClosed)
	}
	if _, ok := wire.ListOffsetsMinVersion(timestamp); !ok {
		return -1, newError(op, topic, partition, timestamp, kafkaError{wire.ErrUnsupportedVersion})
	}
	ctx, cancel := c.opContext(ctx)
	defer cancel()
	off := int64(-1)
	err := c.call(ctx, func(after time.Time) (err error) {
		off, err = c.listOffsetOnce(ctx, topic, partition, timestamp, after)
		return err
	})
	if err != nil {
		if errors.Is(err, ErrTimeout) {
			c.markStale(topic)
		}
		return -1, c.opError(op, topic, partition, timestamp, err)
	}
	return off, nil
}

// call runs once until it succeeds or ctx leaves no time: a transient
// failure is asked again, paced, with the metadata at hand (after zero); a
// retriable one once, with metadata newer than the failure (after set).
// It returns the last failure.
func (c *Client) call(ctx context.Context, once func(after time.Time) error) error {
	var after time.Time
	retried, waits := false, 0
	for {
		err := once(after)
		switch {
		case err == nil:
			return nil
		case transient(err) && !c.closed.Load() && pause(ctx, waits):
			// The leader will answer once it has caught up.
			waits, after = waits+1, time.Time{}
		case !retried && c.mayRetry(ctx, err):
			retried, after = true, time.Now()
		default:
			return err
		}
	}
}

// Pacing of the calls repeated after a transient failure: 25 ms doubling
// to 400 ms.
const (
	pauseBase = 25 * time.Millisecond
	pauseMax  = 400 * time.Millisecond
)

// pause waits before the n-th repetition (from 0) of a call, and reports
// false at once, without waiting, unless ctx leaves time for the wait and
// as long again for the call after it.
func pause(ctx context.Context, n int) bool {
	d := pauseMax
	if n < 5 {
		d = min(pauseBase<<n, pauseMax)
	}
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) <= 2*d {
		return false
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// listOffsetOnce sends one ListOffsets request to the partition leader.
func (c *Client) listOffsetOnce(ctx context.Context, topic string, partition int32, timestamp int64, after time.Time) (int64, error) {
	li, err := c.leader(ctx, topicPartition{topic, partition}, after)
	if err != nil {
		return -1, err
	}
	cn, err := c.pool(li.addr, laneControl).get(ctx)
	if err != nil {
		return -1, err
	}
	v, err := cn.version(wire.KeyListOffsets, -1)
	if err != nil {
		return -1, err
	}
	if need, _ := wire.ListOffsetsMinVersion(timestamp); v < need {
		// The broker would search for the timestamp as a time.
		return -1, fmt.Errorf("timestamp %d needs ListOffsets v%d, broker %d (%s) supports v%d: %w",
			timestamp, need, li.node, li.addr, v, kafkaError{wire.ErrUnsupportedVersion})
	}
	req := &wire.ListOffsetsRequest{
		ReplicaID:      -1,
		IsolationLevel: c.cfg.IsolationLevel,
		Topics: []wire.ListOffsetsTopic{{
			Name:       topic,
			Partitions: []wire.ListOffsetsPartition{{Partition: partition, CurrentLeaderEpoch: li.epoch, Timestamp: timestamp}},
		}},
	}
	var resp wire.ListOffsetsResponse
	buf, err := cn.doAt(ctx, req, v, &resp)
	if err != nil {
		return -1, err
	}
	buf.release()
	for _, t := range resp.Topics {
		if t.Name != topic {
			continue
		}
		for _, p := range t.Partitions {
			if p.Partition != partition {
				continue
			}
			if p.ErrorCode != 0 {
				return -1, fmt.Errorf("broker %d: %w", li.node, kafkaError{p.ErrorCode})
			}
			return p.Offset, nil
		}
	}
	return -1, fmt.Errorf("broker %d (%s) left the partition out of its ListOffsets response", li.node, li.addr)
}
