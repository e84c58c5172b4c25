// Package routes is the node's route table: the routes by id, where each
// comes from (the config file, -route, -embedded, the admin API), its rules
// (ids and URIs that collide, the number of a route's upstream nodes), and
// the Sink that applies the table to the server. Routes created through the admin API are kept in a Store
// (DIR/routes.json); the config file's routes are replaced on SIGHUP with
// ReloadFile.
package routes

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/kafkaedge/kafkaedge/cmd/kafkaedge/internal/apisix"
)

var (
	// ErrNotFound is a route id that does not exist.
	ErrNotFound = errors.New("route not found")
	// ErrStorage is a failure to persist a change; the change was rolled back.
	ErrStorage = errors.New("routes not saved")
)

// Sink applies routes to the running server.
type Sink interface {
	// PutRoute adds or replaces the route for r.URI.
	PutRoute(r *apisix.RouteSpec) error
	// DeleteRoute removes the route for uri and closes its connections.
	DeleteRoute(uri string) bool
}

// Kind says where a route comes from.
type Kind int

const (
	// Dynamic routes come from the admin API (or DIR/routes.json) and are kept in the Store.
	Dynamic Kind = iota
	// Static routes come from -route; the admin API cannot change them.
	Static
	// File routes come from the -config file: static, and replaced by the
	// file's routes when SIGHUP reloads it.
	File
	// Demo is the -embedded route: static, but it yields its URI to an
	// admin route (so that APISIX's example works on make run).
	Demo
)

// String names the kind in messages.
func (k Kind) String() string {
	switch k {
	case Dynamic:
		return "admin API"
	case Static:
		return "-route"
	case File:
		return "config file"
	case Demo:
		return "-embedded"
	}
	return "unknown"
}

// Route is a route and where it comes from.
type Route struct {
	Spec *apisix.RouteSpec
	Kind Kind
}

// Registry is the table of routes by id. It keeps the Sink and the Store in
// step with the table; changes are serialized.
type Registry struct {
	mu       sync.Mutex
	routes   map[string]Route
	sink     Sink
	store    *Store // nil without -data-dir
	maxNodes int    // upstream nodes a route may have (-max-route-nodes); 0: any number
	log      *slog.Logger
	now      func() time.Time
}

// New returns an empty registry that applies its routes to sink, keeps
// the dynamic ones in st (nil: in memory only) and refuses a route with
// more than maxNodes upstream nodes (0: no limit), wherever it comes from.
func New(sink Sink, st *Store, maxNodes int, log *slog.Logger) *Registry {
	return &Registry{routes: make(map[string]Route), sink: sink, store: st, maxNodes: maxNodes, log: log, now: time.Now}
}

// refusal is a route that the table refuses: its id or URI is another
// route's, or it has too many upstream nodes.
type refusal struct {
	route Route  // the route refused
	msg   string // why
}

func (c *refusal) Error() string { return c.msg }

// check is the route table's rules: a route has at most maxNodes upstream
// nodes (0: any number; every request of a route may dial all of them),
// and no two routes share an id or a URI, except that the demo route
// yields its URI (not its id) to a dynamic route. It checks the routes
// added, in order, against the routes kept and those added before them,
// and returns the ids of the routes that yielded, or the first refusal.
func check(kept map[string]Route, added []Route, maxNodes int) (yielded []string, c *refusal) {
	ids := make(map[string]Route, len(kept)+len(added))
	uris := make(map[string]Route, len(kept)+len(added))
	for _, id := range slices.Sorted(maps.Keys(kept)) {
		ids[id] = kept[id]
		uris[kept[id].Spec.URI] = kept[id]
	}
	for _, n := range added {
		refuse := func(format string, args ...any) *refusal {
			return &refusal{route: n, msg: fmt.Sprintf(format, args...)}
		}
		if count := len(n.Spec.Upstream.Nodes.List); maxNodes > 0 && count > maxNodes {
			return nil, refuse("route %q (%s): %d upstream nodes, more than the limit of %d (-max-route-nodes)", n.Spec.ID, n.Kind, count, maxNodes)
		}
		if h, ok := ids[n.Spec.ID]; ok {
			return nil, refuse("duplicate route id %q (%s and %s routes)", n.Spec.ID, h.Kind, n.Kind)
		}
		ids[n.Spec.ID] = n
		h, ok := uris[n.Spec.URI]
		uris[n.Spec.URI] = n
		switch {
		case !ok:
		case h.Kind == Demo && n.Kind == Dynamic:
			yielded = append(yielded, h.Spec.ID)
		case n.Kind == Dynamic && h.Kind == Dynamic:
			return nil, refuse("uri %q is already used by route %q", n.Spec.URI, h.Spec.ID)
		case n.Kind == Dynamic:
			return nil, refuse("uri %q is already used by static route %q", n.Spec.URI, h.Spec.ID)
		case h.Kind == Demo, n.Kind == Demo:
			other := h
			if h.Kind == Demo {
				other = n
			}
			return nil, refuse("-embedded routes %s to the demo cluster, but route %q uses it", n.Spec.URI, other.Spec.ID)
		default:
			return nil, refuse("duplicate route uri %q (routes %q and %q)", n.Spec.URI, h.Spec.ID, n.Spec.ID)
		}
	}
	return yielded, nil
}

// Load fills the empty table with the routes the node starts with, in the
// order given (the config file's, -route's, the demo route, then the
// stored ones). The whole table is checked before any route goes to the
// sink. An error about a stored route names the store's file.
func (g *Registry) Load(rs []Route) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	yielded, c := check(g.routes, rs, g.maxNodes)
	if c != nil {
		return g.stored(c.route, c)
	}
	now := g.now().Unix()
	for _, r := range rs {
		if r.Kind == Demo && slices.Contains(yielded, r.Spec.ID) {
			g.log.Warn("a stored route takes over the embedded demo route", "uri", r.Spec.URI)
			continue
		}
		if r.Spec.CreateTime == 0 {
			r.Spec.CreateTime = now
		}
		if r.Spec.UpdateTime == 0 {
			r.Spec.UpdateTime = r.Spec.CreateTime
		}
		if err := g.sink.PutRoute(r.Spec); err != nil {
			return g.stored(r, fmt.Errorf("route %q: %w", r.Spec.ID, err))
		}
		g.routes[r.Spec.ID] = r
	}
	return nil
}

// stored prefixes err with the store's file if r is a stored route.
func (g *Registry) stored(r Route, err error) error {
	if r.Kind == Dynamic && g.store != nil {
		return fmt.Errorf("%s: %w", g.store.Path(), err)
	}
	return err
}

// Put creates or replaces the dynamic route r.ID and reports whether it was
// new. A route on the demo route's URI takes it over.
func (g *Registry) Put(r *apisix.RouteSpec) (created bool, err error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	old, exists := g.routes[r.ID]
	if exists && old.Kind != Dynamic {
		return false, fmt.Errorf("route %q is static (from the config file, -route or -embedded) and cannot be changed through the admin API", r.ID)
	}
	kept := maps.Clone(g.routes)
	delete(kept, r.ID)
	yielded, c := check(kept, []Route{{r, Dynamic}}, g.maxNodes)
	if c != nil {
		return false, c
	}
	var demo Route
	if len(yielded) > 0 {
		demo = g.routes[yielded[0]]
	}
	now := g.now().Unix()
	r.CreateTime, r.UpdateTime = now, now
	if exists {
		r.CreateTime = old.Spec.CreateTime
	}
	if err := g.sink.PutRoute(r); err != nil { // replaces the demo route on the same URI
		return false, err
	}
	if exists && old.Spec.URI != r.URI {
		g.sink.DeleteRoute(old.Spec.URI)
	}
	g.routes[r.ID] = Route{r, Dynamic}
	if demo.Spec != nil {
		delete(g.routes, demo.Spec.ID)
	}
	if err := g.save(); err != nil {
		// Roll back so that memory, server and disk agree.
		if exists {
			g.routes[r.ID] = old
			if old.Spec.URI != r.URI {
				g.sink.DeleteRoute(r.URI)
			}
			g.restore(old.Spec)
		} else {
			delete(g.routes, r.ID)
			g.sink.DeleteRoute(r.URI)
		}
		if demo.Spec != nil {
			g.routes[demo.Spec.ID] = demo
			g.restore(demo.Spec)
		}
		return false, err
	}
	if demo.Spec != nil {
		g.log.Info("route takes over the embedded demo route", "id", r.ID, "uri", r.URI)
	}
	g.log.Info("route put", "id", r.ID, "uri", r.URI, "brokers", r.Upstream.Nodes.Brokers())
	return !exists, nil
}

// restore puts a route back into the sink after a failed change.
func (g *Registry) restore(r *apisix.RouteSpec) {
	if err := g.sink.PutRoute(r); err != nil {
		g.log.Error("restore route after failed save", "id", r.ID, "err", err)
	}
}

// Delete removes the dynamic route id.
func (g *Registry) Delete(id string) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	old, ok := g.routes[id]
	if !ok {
		return ErrNotFound
	}
	if old.Kind != Dynamic {
		return fmt.Errorf("route %q is static (from the config file, -route or -embedded) and cannot be deleted through the admin API", id)
	}
	delete(g.routes, id)
	if err := g.save(); err != nil {
		g.routes[id] = old
		return err
	}
	g.sink.DeleteRoute(old.Spec.URI)
	g.log.Info("route deleted", "id", id, "uri", old.Spec.URI)
	return nil
}

// Get returns route id; the caller must not change it.
func (g *Registry) Get(id string) (*apisix.RouteSpec, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	r, ok := g.routes[id]
	return r.Spec, ok
}

// List returns every route sorted by id; the caller must not change them.
func (g *Registry) List() []*apisix.RouteSpec {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make([]*apisix.RouteSpec, 0, len(g.routes))
	for _, id := range slices.Sorted(maps.Keys(g.routes)) {
		out = append(out, g.routes[id].Spec)
	}
	return out
}

// save writes the dynamic routes to the store; g.mu is held.
func (g *Registry) save() error {
	if g.store == nil {
		return nil
	}
	var dyn []*apisix.RouteSpec
	for _, id := range slices.Sorted(maps.Keys(g.routes)) {
		if r := g.routes[id]; r.Kind == Dynamic {
			dyn = append(dyn, r.Spec)
		}
	}
	if err := g.store.Save(dyn); err != nil {
		g.log.Error("save routes", "err", err)
		return fmt.Errorf("%w: %w", ErrStorage, err)
	}
	return nil
}

// NewID returns a fresh 20-digit id, as APISIX generates for POST.
func (g *Registry) NewID() string {
	for {
		var b [8]byte
		rand.Read(b[:])
		id := fmt.Sprintf("%020d", binary.BigEndian.Uint64(b[:]))
		if _, taken := g.Get(id); !taken {
			return id
		}
	}
}
