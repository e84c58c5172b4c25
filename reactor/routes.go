package reactor

import (
	"context"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gobwas/ws"

	"github.com/kafkaedge/kafkaedge/kafkawire"
)

// routeChangeTimeout bounds how long a route change waits for the loops to
// close the connections of the old route.
const routeChangeTimeout = 5 * time.Second

// route is one entry of the route table. Connections keep a pointer to the
// route they upgraded on; a replaced or deleted route's connections are
// found by that pointer.
type route struct {
	r  Route
	cl *cluster
}

// routeTable is immutable once stored in Server.routes; a change stores a
// new table.
type routeTable struct {
	byURI map[string]*route
}

// PutRoute adds or replaces the route for r.URI. An identical route is a
// no-op; a changed one closes that URI's connections with 1001. kafkawire
// Clients are shared per Cluster.Key() and refcounted; other routes'
// connections are untouched.
func (s *Server) PutRoute(r Route) error {
	if !strings.HasPrefix(r.URI, "/") || strings.ContainsAny(r.URI, "? \t\r\n") {
		return fmt.Errorf("%w: route URI %q must be a path starting with /", ErrConfig, r.URI)
	}
	if s.draining.Load() {
		return ErrShutdown
	}
	key := r.Cluster.Key()
	s.routesMu.Lock()
	old := s.routes.Load().byURI[r.URI]
	if old != nil && sameRoute(old.r, r) {
		s.routesMu.Unlock()
		return nil
	}
	cl := s.clusters[key]
	if cl == nil {
		cfg := r.Cluster
		if cfg.Logger == nil {
			cfg.Logger = s.cfg.Logger
		}
		// One fetch answer carries at most maxBody bytes. Asking Kafka for
		// more would make the broker send, and this node read and decode,
		// data that is dropped and asked for again by the next request.
		pm := int(cfg.FetchPartitionMaxBytes)
		if pm == 0 {
			pm = kafkawire.DefaultFetchPartitionMaxBytes
		}
		cfg.FetchPartitionMaxBytes = int32(min(pm, s.maxBody))
		client, err := kafkawire.New(cfg)
		if err != nil {
			s.routesMu.Unlock()
			return fmt.Errorf("reactor: route %s: new kafka client: %w", r.URI, err)
		}
		cl = &cluster{key: key, client: client}
		s.clusters[key] = cl
	}
	cl.refs++
	next := &routeTable{byURI: maps.Clone(s.routes.Load().byURI)}
	if next.byURI == nil {
		next.byURI = make(map[string]*route)
	}
	next.byURI[r.URI] = &route{r: r, cl: cl}
	s.routes.Store(next)
	var unused *kafkawire.Client
	if old != nil {
		unused = s.releaseCluster(old.cl)
	}
	s.routesMu.Unlock()
	if old != nil {
		s.log.Info("route replaced", "uri", r.URI)
		s.closeRouteConns(old)
	} else {
		s.log.Info("route added", "uri", r.URI)
	}
	s.closeClient(unused)
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
	unused := s.releaseCluster(old.cl)
	s.routesMu.Unlock()
	s.log.Info("route deleted", "uri", uri)
	s.closeRouteConns(old)
	s.closeClient(unused)
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

// releaseCluster drops one reference to cl and returns its client if that
// was the last one. Called with routesMu held.
func (s *Server) releaseCluster(cl *cluster) *kafkawire.Client {
	cl.refs--
	if cl.refs > 0 {
		return nil
	}
	delete(s.clusters, cl.key)
	return cl.client
}

// closeClient closes a client no route uses any more; its calls still in
// flight fail with kafkawire.ErrClosed.
func (s *Server) closeClient(c *kafkawire.Client) {
	if c == nil {
		return
	}
	if err := c.Close(); err != nil {
		s.log.Warn("closing kafka client", "err", err)
	}
}

// closeRouteConns closes, on their loops, the connections that upgraded on
// rt.
func (s *Server) closeRouteConns(rt *route) {
	ctx, cancel := context.WithTimeout(context.Background(), routeChangeTimeout)
	defer cancel()
	s.onLoops(ctx, func(ls *loopState) {
		for st := range ls.conns {
			if st.route == rt {
				st.goAway(ws.StatusGoingAway, "route changed")
			}
		}
	})
}

// sameRoute reports whether a and b are the same route. The loggers and
// observers are not part of a route's identity.
func sameRoute(a, b Route) bool {
	a.Cluster.Logger, b.Cluster.Logger = nil, nil
	a.Cluster.Observer, b.Cluster.Observer = nil, nil
	return reflect.DeepEqual(a, b)
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
	results := make(map[*cluster]error)
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, rt := range t.byURI {
		cl := rt.cl
		mu.Lock()
		_, seen := results[cl]
		results[cl] = nil
		mu.Unlock()
		if seen {
			continue
		}
		wg.Go(func() {
			err := cl.client.Ready(ctx)
			mu.Lock()
			results[cl] = err
			mu.Unlock()
		})
	}
	wg.Wait()
	out := make([]RouteHealth, 0, len(t.byURI))
	for _, uri := range slices.Sorted(maps.Keys(t.byURI)) {
		out = append(out, RouteHealth{URI: uri, Err: results[t.byURI[uri].cl]})
	}
	return out
}
