package reactor

import (
	"context"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gobwas/ws"

	"github.com/kafkaedge/kafkaedge/kafkawire"
	"github.com/kafkaedge/kafkaedge/kafkawire/record"
)

// routeChangeTimeout bounds how long a route change waits for the loops to
// close the connections of the old route.
const routeChangeTimeout = 5 * time.Second

// kafkaClient is what the reactor needs of a Kafka cluster; *kafkawire.Client
// implements it, and tests substitute their own (Server.acquire). Its
// methods are called on many goroutines at once, never on an event loop.
type kafkaClient interface {
	// ListOffset returns the offset of topic/partition at timestamp (-1
	// the end, -2 the start). Failures are *kafkawire.Error.
	ListOffset(ctx context.Context, topic string, partition int32, timestamp int64) (int64, error)
	// FetchWith returns the records of topic/partition from offset on, in
	// a result that is not nil when err is nil and that the caller
	// releases. Failures are *kafkawire.Error.
	FetchWith(ctx context.Context, topic string, partition int32, offset int64, o kafkawire.FetchOptions) (*kafkawire.FetchResult, error)
	// Ready reports whether a broker of the cluster answers.
	Ready(ctx context.Context) error
	// FetchManyWith fetches many partitions at once; failures are in the
	// results' Err, err is kafkawire.ErrClosed only.
	FetchManyWith(ctx context.Context, parts []kafkawire.FetchPartition, o kafkawire.FetchOptions) ([]*kafkawire.FetchResult, error)
	// Partitions returns the partitions of topics (nil: every topic).
	Partitions(ctx context.Context, topics []string) ([]kafkawire.TopicPartitions, error)
	// PartitionsAfter is Partitions from metadata fetched at or after
	// after.
	PartitionsAfter(ctx context.Context, topics []string, after time.Time) ([]kafkawire.TopicPartitions, error)
	// CommitOffsets commits a group's offsets of topic's partitions, as
	// the member gen names (the zero Generation: without membership).
	// A refused partition fails it with that partition's *kafkawire.Error.
	CommitOffsets(ctx context.Context, group, topic string, offs []kafkawire.CommittedOffset, gen kafkawire.Generation) error
	// CommittedOffsets returns a group's committed offsets of topic's
	// partitions (nil: every partition of the topic), -1 where none is.
	CommittedOffsets(ctx context.Context, group, topic string, partitions []int32) ([]kafkawire.CommittedOffset, error)
	// JoinGroup starts a member of a consumer group (group
	// subscriptions).
	JoinGroup(cfg kafkawire.MemberConfig) (*kafkawire.Member, error)
	// NewStream starts a Stream of the cluster: the subscriptions' tails.
	NewStream(deliver func(*kafkawire.FetchResult)) *kafkawire.Stream
	// Produce writes records to topic (partition -1: by key) and calls
	// done once with one outcome per record; it never blocks.
	Produce(ctx context.Context, topic string, partition int32, acks kafkawire.Acks, recs []record.Record, done func([]kafkawire.Produced))
}

var _ kafkaClient = (*kafkawire.Client)(nil)

// acquireFunc returns the client of cfg's cluster, shared by the routes
// whose configurations have the same kafkawire.Config.Key(), and the
// function that releases this hold: the last release closes the client,
// failing its calls in flight with kafkawire.ErrClosed.
type acquireFunc func(cfg kafkawire.Config) (kafkaClient, func(), error)

// acquireFrom returns the acquireFunc of a kafkawire.ClientSet.
func acquireFrom(set *kafkawire.ClientSet) acquireFunc {
	return func(cfg kafkawire.Config) (kafkaClient, func(), error) {
		c, release, err := set.Acquire(cfg)
		if err != nil {
			return nil, nil, err
		}
		return c, release, nil
	}
}

// route is one entry of the route table. Connections keep a pointer to the
// route they upgraded on; a replaced or deleted route's connections are
// found by that pointer.
type route struct {
	r       Route
	key     string // the kafkawire.Config.Key() of the route's client
	client  kafkaClient
	release func()         // releases the route's hold of client
	cl      *clusterLimits // the cluster's shares of the node's limits, shared by the routes of one client
}

// routeTable is immutable once stored in Server.routes; a change stores a
// new table.
type routeTable struct {
	byURI map[string]*route
}

// clientConfig returns the configuration of the Kafka client of cluster:
// the server's Logger unless it has its own, and the fetch size cut to what
// one answer carries. One fetch answer holds at most maxBody bytes; asking
// Kafka for more per partition would make the broker send, and this node
// read and decode, data that is dropped and asked for again by the next
// request (docs/architecture.md, "Backpressure and slow clients").
func (s *Server) clientConfig(c kafkawire.Config) kafkawire.Config {
	if c.Logger == nil {
		c.Logger = s.cfg.Logger
	}
	if limit := int32(min(s.maxBody, math.MaxInt32)); c.FetchPartitionMaxBytes == 0 || c.FetchPartitionMaxBytes > limit {
		c.FetchPartitionMaxBytes = limit
	}
	return c
}

// PutRoute adds or replaces the route for r.URI. A route to the same
// cluster (equal kafkawire.Config.Key() once the fetch size is cut to what
// one answer carries) is a no-op; a changed one closes that URI's
// connections with 1001. Routes to the same cluster share one Kafka client;
// other routes' connections are untouched.
func (s *Server) PutRoute(r Route) error {
	if !strings.HasPrefix(r.URI, "/") || strings.ContainsAny(r.URI, "? \t\r\n") {
		return fmt.Errorf("%w: route URI %q must be a path starting with /", ErrConfig, r.URI)
	}
	if s.draining.Load() {
		return ErrShutdown
	}
	cfg := s.clientConfig(r.Cluster)
	key := cfg.Key()
	s.routesMu.Lock()
	old := s.routes.Load().byURI[r.URI]
	if old != nil && old.key == key {
		s.routesMu.Unlock()
		return nil
	}
	client, release, err := s.acquire(cfg)
	if err != nil {
		s.routesMu.Unlock()
		return fmt.Errorf("reactor: route %s: new kafka client: %w", r.URI, err)
	}
	next := &routeTable{byURI: maps.Clone(s.routes.Load().byURI)}
	if next.byURI == nil {
		next.byURI = make(map[string]*route)
	}
	var cl *clusterLimits
	for _, rt := range next.byURI {
		if rt.key == key {
			cl = rt.cl
			break
		}
	}
	if cl == nil {
		cl = s.newClusterLimits()
	}
	next.byURI[r.URI] = &route{r: r, key: key, client: client, release: release, cl: cl}
	s.routes.Store(next)
	s.reshare(next)
	s.routesMu.Unlock()
	if old != nil {
		s.log.Info("route replaced", "uri", r.URI)
		s.closeRouteConns(old, "route changed")
		old.release()
	} else {
		s.log.Info("route added", "uri", r.URI)
	}
	return nil
}

// DeleteRoute removes the route for uri and closes its connections with
// 1001. It reports whether the route existed.
func (s *Server) DeleteRoute(uri string) bool {
	s.routesMu.Lock()
	old := s.routes.Load().byURI[uri]
	if old == nil {
		s.routesMu.Unlock()
		return false
	}
	next := &routeTable{byURI: maps.Clone(s.routes.Load().byURI)}
	delete(next.byURI, uri)
	s.routes.Store(next)
	s.reshare(next)
	s.uris.deleted(s, uri)
	s.routesMu.Unlock()
	s.log.Info("route deleted", "uri", uri)
	s.closeRouteConns(old, "route removed")
	old.release()
	return true
}

// Routes returns the current routes sorted by URI.
func (s *Server) Routes() []Route {
	t := s.routes.Load()
	out := make([]Route, 0, len(t.byURI))
	for _, uri := range slices.Sorted(maps.Keys(t.byURI)) {
		out = append(out, t.byURI[uri].r)
	}
	return out
}

// closeRouteConns closes, on their loops, the connections that upgraded on
// rt, with 1001 and reason ("route changed", "route removed").
func (s *Server) closeRouteConns(rt *route, reason string) {
	ctx, cancel := context.WithTimeout(context.Background(), routeChangeTimeout)
	defer cancel()
	s.onLoops(ctx, func(ls *loopState) {
		for st := range ls.conns {
			if st.route == rt {
				st.goAwaySubs(ws.StatusGoingAway, reason)
			}
		}
	})
}

// uriConns counts the upgraded connections of each route URI, so that
// Observer.RouteRemoved comes once a deleted URI's last connection is
// reported closed. Its mutex orders the upgrades of a URI against its
// deletion: an upgrade counts only while its route is in the table.
type uriConns struct {
	mu sync.Mutex
	n  map[string]int
}

// upgrade reports the answered upgrade (status) of a connection on rt and,
// for a 101, counts it, unless rt's URI left the table since the connection
// found it: then it reports nothing and returns false (the caller answers
// as if there were no route). A connection of a route replaced meanwhile is
// counted: the route change closes it. Called on a loop.
func (u *uriConns) upgrade(s *Server, rt *route, status int) bool {
	uri := rt.r.URI
	u.mu.Lock()
	defer u.mu.Unlock()
	if s.routes.Load().byURI[uri] == nil {
		return false
	}
	s.obs.Upgrade(uri, status)
	if status == 101 {
		if u.n == nil {
			u.n = make(map[string]int)
		}
		u.n[uri]++
	}
	return true
}

// closed uncounts a closed connection of uri, after its ConnClosed. Called
// on a loop.
func (u *uriConns) closed(s *Server, uri string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.n[uri]--; u.n[uri] > 0 {
		return
	}
	delete(u.n, uri)
	if s.routes.Load().byURI[uri] == nil {
		s.obs.RouteRemoved(uri)
	}
}

// deleted reports uri removed if none of its connections is open; else
// the last one's close will. Called with routesMu held, after the table
// without uri is stored.
func (u *uriConns) deleted(s *Server, uri string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.n[uri] == 0 {
		s.obs.RouteRemoved(uri)
	}
}

// RouteHealth is the readiness of one route's cluster.
type RouteHealth struct {
	URI string
	Err error // nil when a broker of the route's cluster answered
}

// CheckRoutes probes the cluster of every route with kafkawire.Client.Ready,
// once per distinct cluster and all at once, and returns one entry per route
// sorted by URI. ctx bounds the probes; a probe cut short reports ctx's error.
// It never runs on an event loop.
func (s *Server) CheckRoutes(ctx context.Context) []RouteHealth {
	t := s.routes.Load()
	results := make(map[kafkaClient]error)
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, rt := range t.byURI {
		c := rt.client
		mu.Lock()
		_, seen := results[c]
		results[c] = nil
		mu.Unlock()
		if seen {
			continue
		}
		wg.Go(func() {
			err := c.Ready(ctx)
			mu.Lock()
			results[c] = err
			mu.Unlock()
		})
	}
	wg.Wait()
	out := make([]RouteHealth, 0, len(t.byURI))
	for _, uri := range slices.Sorted(maps.Keys(t.byURI)) {
		out = append(out, RouteHealth{URI: uri, Err: results[t.byURI[uri].client]})
	}
	return out
}
