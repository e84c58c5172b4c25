package kafkawire

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/kafkaedge/kafkaedge/kafkawire/wire"
)

// negativeTTL is how long a missing topic or partition is answered from the
// cache before the cluster is asked again, so a client asking for names
// that do not exist cannot turn each request into a Metadata round trip.
const negativeTTL = time.Second

// snapshot is an immutable view of the cluster metadata; a refresh replaces
// the whole snapshot.
type snapshot struct {
	brokers map[int32]string // node id -> "host:port"
	topics  map[string]*topicMeta
	missing map[string]time.Time // topics the cluster said do not exist, and when
}

// topicMeta is the cached metadata of one topic.
type topicMeta struct {
	id    [16]byte // zero before Metadata v10
	err   int16
	at    time.Time
	parts map[int32]partMeta
}

// partMeta is the leader of one partition; epoch is -1 when unknown.
type partMeta struct {
	leader, epoch int32
}

// leaderInfo is where to send a request for one partition.
type leaderInfo struct {
	addr    string
	node    int32
	epoch   int32
	topicID [16]byte
}

// metaFlight is one Metadata request shared by every caller that needs it.
type metaFlight struct {
	topics map[string]struct{}
	start  time.Time
	done   chan struct{}
	err    error
}

// covers reports whether the flight asks for all of topics.
func (f *metaFlight) covers(topics []string) bool {
	for _, t := range topics {
		if _, ok := f.topics[t]; !ok {
			return false
		}
	}
	return true
}

// needsRefresh reports whether the cache cannot answer for topic/partition:
// the topic is not cached (and was not recently found missing), or the
// partition or its leader is missing and the entry is older than negativeTTL.
func (s *snapshot) needsRefresh(topic string, partition int32, now time.Time) bool {
	t, ok := s.topics[topic]
	if !ok {
		at, missing := s.missing[topic]
		return !missing || now.Sub(at) >= negativeTTL
	}
	if now.Sub(t.at) < negativeTTL {
		return false
	}
	p, ok := t.parts[partition]
	return t.err != 0 || !ok || p.leader < 0
}

// knows reports whether the snapshot has an answer for every topic: its
// metadata, or that it is missing.
func (s *snapshot) knows(topics []string) bool {
	for _, t := range topics {
		_, ok := s.topics[t]
		_, missing := s.missing[t]
		if !ok && !missing {
			return false
		}
	}
	return true
}

// lookup returns the leader of topic/partition from the cache.
func (s *snapshot) lookup(topic string, partition int32) (leaderInfo, error) {
	t, ok := s.topics[topic]
	if !ok {
		return leaderInfo{}, ErrUnknownTopic
	}
	if t.err != 0 {
		return leaderInfo{}, fmt.Errorf("metadata of topic %q: %w", topic, kafkaError{t.err})
	}
	p, ok := t.parts[partition]
	if !ok {
		return leaderInfo{}, ErrUnknownPartition
	}
	if p.leader < 0 {
		return leaderInfo{}, fmt.Errorf("partition has no leader: %w", kafkaError{wire.ErrLeaderNotAvailable})
	}
	addr, ok := s.brokers[p.leader]
	if !ok {
		return leaderInfo{}, fmt.Errorf("leader broker %d not in metadata: %w", p.leader, kafkaError{wire.ErrLeaderNotAvailable})
	}
	return leaderInfo{addr: addr, node: p.leader, epoch: p.epoch, topicID: t.id}, nil
}

// refresh makes sure metadata for topics is at most as old as after (zero:
// any cached answer will do, so an in-flight request is joined). Concurrent
// callers share one Metadata request: a caller joins the flight in progress
// if it asks for its topics and started after `after`, else the next flight,
// which collects the topics of everyone queued behind the current one.
// seen is the snapshot the caller found lacking (nil: none): with a zero
// after, a flight that answered for every topic since then is enough, so a
// caller that looked just before the shared flight landed asks nothing.
func (c *Client) refresh(ctx context.Context, topics []string, after time.Time, seen *snapshot) error {
	c.metaMu.Lock()
	var f *metaFlight
	start := false
	switch {
	case c.metaCur == nil && after.IsZero() && seen != nil && c.meta.Load() != seen && c.meta.Load().knows(topics):
		// A flight ended between the caller's look and now (it installs
		// its answer before it stops being current).
		c.metaMu.Unlock()
		return nil
	case c.metaCur == nil:
		f = &metaFlight{topics: make(map[string]struct{}), start: time.Now(), done: make(chan struct{})}
		c.metaCur = f
		start = true
	case !c.metaCur.start.Before(after) && c.metaCur.covers(topics):
		f = c.metaCur
	default:
		if c.metaNext == nil {
			c.metaNext = &metaFlight{topics: make(map[string]struct{}), done: make(chan struct{})}
		}
		f = c.metaNext
	}
	if f != c.metaCur || start {
		for _, t := range topics {
			f.topics[t] = struct{}{}
		}
	}
	c.metaMu.Unlock()
	if start {
		go c.runFlight(f)
	}

	select {
	case <-f.done:
		return f.err
	case <-ctx.Done():
		return ctxError(ctx, "waiting for metadata")
	}
}

// runFlight sends the flight's Metadata request, asking for its topics plus
// every topic already cached, then starts the next flight if one is queued.
func (c *Client) runFlight(f *metaFlight) {
	c.metaMu.Lock()
	want := maps.Clone(f.topics)
	c.metaMu.Unlock()
	for name, t := range c.meta.Load().topics {
		if t.err == 0 {
			want[name] = struct{}{}
		}
	}
	topics := slices.Sorted(maps.Keys(want))
	ctx, cancel := context.WithTimeout(c.ctx, c.cfg.RequestTimeout)
	err := c.fetchMetadata(ctx, topics)
	cancel()
	if obs := c.cfg.Observer; obs != nil && !c.closed.Load() {
		obs.MetadataRefresh(err)
	}

	c.metaMu.Lock()
	f.err = err
	next := c.metaNext
	c.metaCur, c.metaNext = next, nil
	if next != nil {
		next.start = time.Now()
		go c.runFlight(next)
	}
	c.metaMu.Unlock()
	close(f.done)
}

// fetchMetadata asks one broker after the other for metadata of topics
// (none: brokers only) and installs the answer. Brokers with a live
// connection are asked first, then known brokers, then the bootstrap list;
// an unreachable broker only moves the request on to the next.
func (c *Client) fetchMetadata(ctx context.Context, topics []string) error {
	if topics == nil {
		topics = []string{}
	}
	req := &wire.MetadataRequest{Topics: topics}
	var errs []error
	for _, addr := range c.metadataCandidates() {
		if c.closed.Load() {
			return ErrClosed
		}
		if ctx.Err() != nil {
			break
		}
		cn, err := c.pool(addr, laneControl).get(ctx)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		var resp wire.MetadataResponse
		v, err := cn.do(ctx, req, &resp)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		c.applyMetadata(topics, &resp, v)
		return nil
	}
	if c.closed.Load() {
		return ErrClosed
	}
	if ctx.Err() != nil {
		errs = append(errs, ctxError(ctx, "metadata"))
	}
	return fmt.Errorf("metadata: no broker answered: %w", brokerErrors(errs))
}

// brokerErrors is the failures of several brokers on one line (unlike
// errors.Join, whose newlines would end up in client-facing reasons).
type brokerErrors []error

func (b brokerErrors) Error() string {
	parts := make([]string, len(b))
	for i, err := range b {
		parts[i] = err.Error()
	}
	return strings.Join(parts, "; ")
}

func (b brokerErrors) Unwrap() []error { return b }

// metadataCandidates orders the addresses to ask for metadata.
func (c *Client) metadataCandidates() []string {
	snap := c.meta.Load()
	known := slices.Collect(maps.Values(snap.brokers))
	slices.Sort(known)
	if n := len(known); n > 0 {
		r := int(c.rr.Add(1)) % n
		known = append(known[r:], known[:r]...)
	}
	all := append(known, c.cfg.Brokers...)

	var live, ready, later []string
	seen := make(map[string]bool, len(all))
	for _, a := range all {
		if seen[a] {
			continue
		}
		seen[a] = true
		p := c.pool(a, laneControl)
		switch {
		case p.hasLive():
			live = append(live, a)
		case p.backingOff():
			later = append(later, a)
		default:
			ready = append(ready, a)
		}
	}
	return append(append(live, ready...), later...)
}

// applyMetadata installs a Metadata response for the requested topics.
func (c *Client) applyMetadata(requested []string, resp *wire.MetadataResponse, version int16) {
	c.snapMu.Lock()
	defer c.snapMu.Unlock()
	old := c.meta.Load()
	now := time.Now()
	n := &snapshot{
		brokers: old.brokers,
		topics:  maps.Clone(old.topics),
		missing: make(map[string]time.Time, len(old.missing)),
	}
	for t, at := range old.missing {
		if now.Sub(at) < negativeTTL {
			n.missing[t] = at
		}
	}
	if len(resp.Brokers) > 0 {
		n.brokers = make(map[int32]string, len(resp.Brokers))
		for _, b := range resp.Brokers {
			n.brokers[b.NodeID] = fmt.Sprintf("%s:%d", b.Host, b.Port)
		}
	}
	seen := make(map[string]bool, len(resp.Topics))
	for _, t := range resp.Topics {
		if t.Name == "" {
			continue
		}
		seen[t.Name] = true
		if t.ErrorCode == wire.ErrUnknownTopicOrPartition || t.ErrorCode == wire.ErrUnknownTopicID {
			delete(n.topics, t.Name)
			n.missing[t.Name] = now
			continue
		}
		tm := &topicMeta{id: t.TopicID, err: t.ErrorCode, at: now, parts: make(map[int32]partMeta, len(t.Partitions))}
		for _, p := range t.Partitions {
			epoch := p.LeaderEpoch
			if version < 7 {
				epoch = -1
			}
			tm.parts[p.Partition] = partMeta{leader: p.Leader, epoch: epoch}
		}
		n.topics[t.Name] = tm
	}
	for _, t := range requested {
		if !seen[t] {
			delete(n.topics, t)
			n.missing[t] = now
		}
	}
	// A topic the cluster answered with an error is kept only as long as a
	// missing one, so that names from clients cannot pile up.
	for name, t := range n.topics {
		if t.err != 0 && now.Sub(t.at) >= negativeTTL {
			delete(n.topics, name)
		}
	}
	c.meta.Store(n)
	if len(resp.Brokers) > 0 {
		c.prunePools(n.brokers)
	}
}

// leader resolves the leader of tp, refreshing the metadata first if the
// cache cannot answer for it or after is not zero (see leaders).
func (c *Client) leader(ctx context.Context, tp topicPartition, after time.Time) (leaderInfo, error) {
	snap := c.meta.Load()
	if !after.IsZero() || snap.needsRefresh(tp.topic, tp.partition, time.Now()) {
		if err := c.refresh(ctx, []string{tp.topic}, after, snap); err != nil {
			return leaderInfo{}, err
		}
		snap = c.meta.Load()
	}
	return snap.lookup(tp.topic, tp.partition)
}

// leaders resolves the leader of every partition in need, refreshing the
// metadata once for all topics the cache cannot answer for. after is the
// freshness required by callers that retry (zero: any).
func (c *Client) leaders(ctx context.Context, need []topicPartition, after time.Time) ([]leaderInfo, []error) {
	snap := c.meta.Load()
	now := time.Now()
	var stale []string
	for _, tp := range need {
		if (!after.IsZero() || snap.needsRefresh(tp.topic, tp.partition, now)) && !slices.Contains(stale, tp.topic) {
			stale = append(stale, tp.topic)
		}
	}
	infos := make([]leaderInfo, len(need))
	errs := make([]error, len(need))
	if len(stale) > 0 {
		if err := c.refresh(ctx, stale, after, snap); err != nil {
			for i, tp := range need {
				if slices.Contains(stale, tp.topic) {
					errs[i] = err
				}
			}
		}
		snap = c.meta.Load()
	}
	for i, tp := range need {
		if errs[i] == nil {
			infos[i], errs[i] = snap.lookup(tp.topic, tp.partition)
		}
	}
	return infos, errs
}

// topicPartition names one partition.
type topicPartition struct {
	topic     string
	partition int32
}
