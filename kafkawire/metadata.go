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

// negativeTTL is how long the cluster's list of topics answers for the
// topics that are not in it, and how long a topic the cluster answered
// with an error is kept: clients asking for names that do not exist, all
// different, cost one Metadata request per negativeTTL, not one each.
const negativeTTL = time.Second

// snapshot is an immutable view of the cluster metadata; a refresh replaces
// the whole snapshot.
type snapshot struct {
	brokers map[int32]string // node id -> "host:port"
	topics  map[string]*topicMeta
	// names is every topic of the cluster as a Metadata request for all
	// topics found it at namesAt (nil before the first). While it is
	// younger than negativeTTL, a topic neither cached nor in it does not
	// exist. Its size is the cluster's, whatever names clients ask for.
	names   map[string]struct{}
	namesAt time.Time
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
	topics map[string]struct{} // guarded by Client.metaMu
	all    bool                // asks for every topic of the cluster (the list of names)
	// sealed is set, under Client.metaMu, when the answer of an all flight
	// is about to be installed: the topics of callers that join it before
	// are installed from it too, later ones need a flight of their own.
	sealed bool
	start  time.Time
	done   chan struct{}
	err    error
}

// covers reports whether the flight answers for all of topics: an all
// flight not sealed yet answers for any (a joiner adds its topics to those
// installed), any flight for the topics it asks for. Called with
// Client.metaMu held.
func (f *metaFlight) covers(topics []string) bool {
	if f.all && !f.sealed {
		return true
	}
	for _, t := range topics {
		if _, ok := f.topics[t]; !ok {
			return false
		}
	}
	return true
}

// listFresh reports whether the list of topic names answers at now.
func (s *snapshot) listFresh(now time.Time) bool {
	return s.names != nil && now.Sub(s.namesAt) < negativeTTL
}

// absent reports whether topic is known not to exist: it is not cached and
// the fresh list of names lacks it.
func (s *snapshot) absent(topic string, now time.Time) bool {
	if _, ok := s.topics[topic]; ok || !s.listFresh(now) {
		return false
	}
	_, listed := s.names[topic]
	return !listed
}

// needsList reports whether only the cluster's list of topics can answer
// for topic: it is not cached, and no fresh list names it (a name in a
// fresh list is asked for by name).
func (s *snapshot) needsList(topic string, now time.Time) bool {
	if _, ok := s.topics[topic]; ok {
		return false
	}
	_, listed := s.names[topic]
	return !listed || !s.listFresh(now)
}

// needsRefresh reports whether the cache cannot answer for topic/partition:
// the topic is neither cached nor absent, or the partition or its leader is
// missing and the entry is older than negativeTTL.
func (s *snapshot) needsRefresh(topic string, partition int32, now time.Time) bool {
	t, ok := s.topics[topic]
	if !ok {
		return !s.absent(topic, now)
	}
	if now.Sub(t.at) < negativeTTL {
		return false
	}
	p, ok := t.parts[partition]
	return t.err != 0 || !ok || p.leader < 0
}

// knows reports whether the snapshot has an answer for every topic: its
// metadata, or that it does not exist.
func (s *snapshot) knows(topics []string, now time.Time) bool {
	for _, t := range topics {
		if _, ok := s.topics[t]; !ok && !s.absent(t, now) {
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
// if it answers for its topics and started after `after`, else the next
// flight, which collects the topics of everyone queued behind the current
// one. A topic neither cached nor in a fresh list of names makes the flight
// ask for every topic of the cluster, so that the names that do not exist
// are answered for negativeTTL without asking again.
// seen is the snapshot the caller found lacking (nil: none): with a zero
// after, a flight that answered for every topic since then is enough, so a
// caller that looked just before the shared flight landed asks nothing.
func (c *Client) refresh(ctx context.Context, topics []string, after time.Time, seen *snapshot) error {
	return c.refreshFor(ctx, topics, false, after, seen)
}

// refreshFor is refresh, and with list it also makes sure the list of the
// cluster's topic names is fresh.
func (c *Client) refreshFor(ctx context.Context, topics []string, list bool, after time.Time, seen *snapshot) error {
	now := time.Now()
	cur := c.meta.Load()
	all := list && !cur.listFresh(now)
	for _, t := range topics {
		all = all || cur.needsList(t, now)
	}
	c.metaMu.Lock()
	var f *metaFlight
	start := false
	switch {
	case c.metaCur == nil && after.IsZero() && seen != nil && c.meta.Load() != seen && c.meta.Load().knows(topics, now) &&
		(!list || c.meta.Load().listFresh(now)):
		// A flight ended between the caller's look and now (it installs
		// its answer before it stops being current).
		c.metaMu.Unlock()
		return nil
	case c.metaCur == nil:
		f = &metaFlight{topics: make(map[string]struct{}), start: time.Now(), done: make(chan struct{})}
		c.metaCur = f
		start = true
	case !c.metaCur.start.Before(after) && c.metaCur.covers(topics) && (!list || c.metaCur.all):
		f = c.metaCur
	default:
		if c.metaNext == nil {
			c.metaNext = &metaFlight{topics: make(map[string]struct{}), done: make(chan struct{})}
		}
		f = c.metaNext
	}
	switch {
	case f != c.metaCur || start:
		f.all = f.all || all
		fallthrough
	case f.all:
		// An all flight joined before it is sealed installs the joiner's
		// topics from its answer (see covers).
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
// every topic already cached (or for every topic of the cluster, of which
// those are installed), then starts the next flight if one is queued.
func (c *Client) runFlight(f *metaFlight) {
	c.metaMu.Lock()
	want := maps.Clone(f.topics)
	all := f.all
	c.metaMu.Unlock()
	for name, t := range c.meta.Load().topics {
		if t.err == 0 {
			want[name] = struct{}{}
		}
	}
	topics := slices.Sorted(maps.Keys(want))
	ctx, cancel := context.WithTimeout(c.ctx, c.cfg.RequestTimeout)
	err := c.fetchMetadata(ctx, topics, all, f)
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

// Asking for metadata when brokers do not answer.
const (
	// metadataDials is how many brokers a Metadata request may be
	// connecting to at once; the request itself goes to one at a time.
	metadataDials = 3
	// namedFailures is how many failed brokers an error names; it counts
	// the others.
	namedFailures = 3
)

// fetchMetadata asks for metadata of topics, or of every topic with all,
// or of none (topics nil: brokers only), and installs the answer. Brokers
// with a live connection are asked first, one after the other; then the
// other known brokers and the bootstrap list, connecting to up to
// metadataDials of them at once, so that brokers that do not answer cost
// a dial timeout per metadataDials of them, not one each. The request goes
// to one connected broker at a time; a broker that fails only moves it on
// to the next.
//
// The answer of an all flight f is installed for f's topics as they are
// when it arrives (callers may have joined it meanwhile); f is nil for a
// request outside the flights.
func (c *Client) fetchMetadata(ctx context.Context, topics []string, all bool, f *metaFlight) error {
	req := &wire.MetadataRequest{Topics: topics}
	switch {
	case all:
		req.Topics = nil
	case topics == nil:
		req.Topics = []string{}
	}
	cands, live := c.metadataCandidates()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		turn    = make(chan struct{}, 1) // held while a request is out
		results = make(chan error, metadataDials)
		won     bool // guarded by turn
	)
	ask := func(addr string) {
		cn, err := c.pool(addr, laneControl).get(ctx)
		if err != nil {
			results <- err
			return
		}
		select {
		case turn <- struct{}{}:
		case <-ctx.Done():
			results <- ctxError(ctx, "metadata from broker "+addr)
			return
		}
		if won {
			<-turn
			results <- nil
			return
		}
		// Each broker gets a part of the time: one that stopped answering
		// must not use it all while the others could.
		actx, cancel := context.WithTimeout(ctx, c.metadataAttempt())
		var resp wire.MetadataResponse
		v, err := cn.do(actx, req, &resp)
		cancel()
		if err == nil {
			won = true
			install := topics
			if all && f != nil {
				c.metaMu.Lock()
				f.sealed = true
				install = slices.AppendSeq(slices.Clone(topics), maps.Keys(f.topics))
				c.metaMu.Unlock()
			}
			c.applyMetadata(install, all, &resp, v)
		}
		<-turn
		results <- err
	}

	var errs brokerErrors
	next, running := 0, 0
	for {
		// A broker with a live connection is asked alone; past them (next
		// > live: the last live one has finished), up to metadataDials.
		for next < len(cands) && !c.closed.Load() && ctx.Err() == nil &&
			(running == 0 || next > live && running < metadataDials) {
			go ask(cands[next])
			next++
			running++
		}
		if running == 0 {
			break
		}
		err := <-results
		running--
		if err == nil {
			return nil
		}
		errs.add(err)
	}
	if c.closed.Load() {
		return ErrClosed
	}
	if ctx.Err() != nil {
		errs.end = ctxError(ctx, "metadata")
	}
	return fmt.Errorf("metadata: no broker answered: %w", &errs)
}

// metadataAttempt is how long one broker may take to answer a Metadata
// request before the next is asked: a quarter of RequestTimeout, at least
// a second (or RequestTimeout if shorter).
func (c *Client) metadataAttempt() time.Duration {
	return max(c.cfg.RequestTimeout/4, min(c.cfg.RequestTimeout, time.Second))
}

// brokerErrors is the failures of several brokers on one line (unlike
// errors.Join, whose newlines would end up in logs and probes). It names
// the first namedFailures and counts the others, so that a cluster of many
// brokers that do not answer gives a short error.
type brokerErrors struct {
	named []error
	more  int   // failures not named
	end   error // the deadline or cancellation that stopped the tries
}

// add records the failure of one broker.
func (b *brokerErrors) add(err error) {
	if len(b.named) < namedFailures {
		b.named = append(b.named, err)
		return
	}
	b.more++
}

func (b *brokerErrors) Error() string {
	parts := make([]string, 0, len(b.named)+2)
	for _, err := range b.named {
		parts = append(parts, err.Error())
	}
	if b.more > 0 {
		parts = append(parts, fmt.Sprintf("and %d more", b.more))
	}
	if b.end != nil {
		parts = append(parts, b.end.Error())
	}
	if len(parts) == 0 {
		return "no broker to ask"
	}
	return strings.Join(parts, "; ")
}

func (b *brokerErrors) Unwrap() []error {
	if b.end != nil {
		return append(slices.Clip(b.named), b.end)
	}
	return b.named
}

// metadataCandidates orders the addresses to ask for metadata: the live
// ones (with a live connection; the first live of cands), then those to
// dial, then those whose last dials failed.
func (c *Client) metadataCandidates() (cands []string, live int) {
	snap := c.meta.Load()
	known := slices.Collect(maps.Values(snap.brokers))
	slices.Sort(known)
	if n := len(known); n > 0 {
		r := int(c.rr.Add(1)) % n
		known = append(known[r:], known[:r]...)
	}
	all := append(known, c.cfg.Brokers...)

	var lives, ready, later []string
	seen := make(map[string]bool, len(all))
	for _, a := range all {
		if seen[a] {
			continue
		}
		seen[a] = true
		p := c.existingPool(a, laneControl)
		switch {
		case p == nil:
			ready = append(ready, a)
		case p.hasLive():
			lives = append(lives, a)
		case p.down():
			later = append(later, a)
		default:
			ready = append(ready, a)
		}
	}
	return append(append(lives, ready...), later...), len(lives)
}

// applyMetadata installs a Metadata response for the requested topics;
// with all, the response lists every topic of the cluster, of which only
// the requested ones are installed and the names of all are kept.
func (c *Client) applyMetadata(requested []string, all bool, resp *wire.MetadataResponse, version int16) {
	c.snapMu.Lock()
	defer c.snapMu.Unlock()
	old := c.meta.Load()
	now := time.Now()
	n := &snapshot{
		brokers: old.brokers,
		topics:  maps.Clone(old.topics),
		names:   old.names,
		namesAt: old.namesAt,
	}
	if len(resp.Brokers) > 0 {
		n.brokers = make(map[int32]string, len(resp.Brokers))
		for _, b := range resp.Brokers {
			n.brokers[b.NodeID] = fmt.Sprintf("%s:%d", b.Host, b.Port)
		}
	}
	want := make(map[string]bool, len(requested))
	for _, t := range requested {
		want[t] = true
	}
	if all {
		n.names, n.namesAt = make(map[string]struct{}, len(resp.Topics)), now
	}
	namesCopied := all
	seen := make(map[string]bool, len(requested))
	for _, t := range resp.Topics {
		if t.Name == "" {
			continue
		}
		unknown := t.ErrorCode == wire.ErrUnknownTopicOrPartition || t.ErrorCode == wire.ErrUnknownTopicID
		if all && !unknown {
			n.names[t.Name] = struct{}{}
		}
		if !want[t.Name] {
			continue // listed only
		}
		seen[t.Name] = true
		if unknown {
			delete(n.topics, t.Name)
			n.unlist(t.Name, &namesCopied)
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
			n.unlist(t, &namesCopied)
		}
	}
	// A topic the cluster answered with an error is kept only as long as
	// the list of names answers for missing ones.
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

// unlist drops topic, which the cluster says does not exist, from the
// list of names, copying the list first unless *copied.
func (s *snapshot) unlist(topic string, copied *bool) {
	if _, ok := s.names[topic]; !ok {
		return
	}
	if !*copied {
		s.names, *copied = maps.Clone(s.names), true
	}
	delete(s.names, topic)
}

// leader resolves the leader of tp, refreshing the metadata first if the
// cache cannot answer for it or after is not zero (see leaders).
func (c *Client) leader(ctx context.Context, tp topicPartition, after time.Time) (leaderInfo, error) {
	after = c.staleSince(tp.topic, after)
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
	for _, tp := range need {
		after = c.staleSince(tp.topic, after)
	}
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

// markStale records that a call for topic timed out: its leader may be a
// broker that stopped answering, so the next lookup asks for metadata newer
// than now instead of trusting the cache (see staleSince).
func (c *Client) markStale(topic string) {
	c.stale.Store(topic, time.Now())
}

// staleSince returns after, or the time of the last timed-out call for
// topic if that is later, consuming the mark: one refresh follows a
// timeout.
func (c *Client) staleSince(topic string, after time.Time) time.Time {
	if v, ok := c.stale.LoadAndDelete(topic); ok {
		if t := v.(time.Time); t.After(after) {
			return t
		}
	}
	return after
}

// topicPartition names one partition.
type topicPartition struct {
	topic     string
	partition int32
}
