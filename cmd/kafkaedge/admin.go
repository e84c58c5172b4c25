package main

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sort"
	"sync"
	"time"
)

// maxAdminBody caps the body of an admin request.
const maxAdminBody = 1 << 20

// routeKeyPrefix is the etcd-style key APISIX reports for a route.
const routeKeyPrefix = "/apisix/routes/"

var (
	// errNotFound is a route id that does not exist (404).
	errNotFound = errors.New("route not found")
	// errStorage is a failure to persist a change (500); the change was rolled back.
	errStorage = errors.New("routes not saved")
)

// routeSink applies routes to the running server (the reactor in main.go).
type routeSink interface {
	// PutRoute adds or replaces the route for r.URI.
	PutRoute(r *RouteSpec) error
	// DeleteRoute removes the route for uri and closes its connections.
	DeleteRoute(uri string) bool
}

// routeKind says where a route comes from.
type routeKind int

const (
	// kindDynamic routes come from the admin API (or DIR/routes.json) and are persisted.
	kindDynamic routeKind = iota
	// kindStatic routes come from the config file or -route; the admin API cannot change them.
	kindStatic
	// kindDemo is the -embedded route: static, but it yields its URI to a
	// route created through the admin API (so APISIX's example works on make run).
	kindDemo
	// kindFile routes come from the -config file: static, and replaced by
	// the file's routes when SIGHUP reloads it.
	kindFile
)

// registry is the table of routes by id: static ones (config file, -route,
// -embedded) and dynamic ones (admin API, persisted in the store). It keeps
// the sink and the store in step with the table; changes are serialised.
type registry struct {
	mu     sync.Mutex
	routes map[string]*RouteSpec
	kind   map[string]routeKind
	sink   routeSink
	store  *store // nil without -data-dir
	log    *slog.Logger
	now    func() time.Time
}

func newRegistry(sink routeSink, st *store, log *slog.Logger) *registry {
	return &registry{
		routes: make(map[string]*RouteSpec),
		kind:   make(map[string]routeKind),
		sink:   sink,
		store:  st,
		log:    log,
		now:    time.Now,
	}
}

// holder returns the id of the route other than id that uses uri, if any,
// and an error if that route cannot yield it.
func (g *registry) holder(id, uri string) (string, error) {
	for oid, o := range g.routes {
		if oid == id || o.URI != uri {
			continue
		}
		switch g.kind[oid] {
		case kindDemo:
			return oid, nil
		case kindStatic, kindFile:
			return oid, fmt.Errorf("%w: uri %q is already used by static route %q", errInvalidRoute, uri, oid)
		default:
			return oid, fmt.Errorf("%w: uri %q is already used by route %q", errInvalidRoute, uri, oid)
		}
	}
	return "", nil
}

// add installs a route at start, before the admin API is serving.
func (g *registry) add(r *RouteSpec, kind routeKind) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if _, ok := g.routes[r.ID]; ok {
		return fmt.Errorf("%w: duplicate route id %q", errInvalidRoute, r.ID)
	}
	yielded, err := g.holder(r.ID, r.URI)
	if err != nil {
		return err
	}
	if r.CreateTime == 0 {
		r.CreateTime = g.now().Unix()
	}
	if r.UpdateTime == 0 {
		r.UpdateTime = r.CreateTime
	}
	if err := g.sink.PutRoute(r); err != nil {
		return fmt.Errorf("%w: route %q: %w", errInvalidRoute, r.ID, err)
	}
	if yielded != "" {
		g.log.Warn("route takes over the embedded demo route", "id", r.ID, "uri", r.URI)
		delete(g.routes, yielded)
		delete(g.kind, yielded)
	}
	g.routes[r.ID] = r
	g.kind[r.ID] = kind
	return nil
}

// put creates or replaces the dynamic route r.ID and reports whether it was new.
func (g *registry) put(r *RouteSpec) (created bool, err error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if _, ok := g.routes[r.ID]; ok && g.kind[r.ID] != kindDynamic {
		return false, fmt.Errorf("%w: route %q is static (from the config file, -route or -embedded) and cannot be changed through the admin API", errInvalidRoute, r.ID)
	}
	yielded, err := g.holder(r.ID, r.URI)
	if err != nil {
		return false, err
	}
	old := g.routes[r.ID]
	demo := g.routes[yielded]
	now := g.now().Unix()
	r.CreateTime, r.UpdateTime = now, now
	if old != nil {
		r.CreateTime = old.CreateTime
	}
	if err := g.sink.PutRoute(r); err != nil { // replaces the demo route on the same URI
		return false, fmt.Errorf("%w: %w", errInvalidRoute, err)
	}
	if old != nil && old.URI != r.URI {
		g.sink.DeleteRoute(old.URI)
	}
	g.routes[r.ID] = r
	g.kind[r.ID] = kindDynamic
	if demo != nil {
		delete(g.routes, yielded)
		delete(g.kind, yielded)
	}
	if err := g.save(); err != nil {
		// Roll back so that memory, server and disk agree.
		if old != nil {
			g.routes[r.ID] = old
			if old.URI != r.URI {
				g.sink.DeleteRoute(r.URI)
			}
			g.restore(old)
		} else {
			delete(g.routes, r.ID)
			delete(g.kind, r.ID)
			g.sink.DeleteRoute(r.URI)
		}
		if demo != nil {
			g.routes[yielded] = demo
			g.kind[yielded] = kindDemo
			g.restore(demo)
		}
		return false, err
	}
	if demo != nil {
		g.log.Info("route takes over the embedded demo route", "id", r.ID, "uri", r.URI)
	}
	g.log.Info("route put", "id", r.ID, "uri", r.URI, "brokers", r.Upstream.Nodes.Brokers())
	return old == nil, nil
}

// restore puts a route back into the sink after a failed change.
func (g *registry) restore(r *RouteSpec) {
	if err := g.sink.PutRoute(r); err != nil {
		g.log.Error("restore route after failed save", "id", r.ID, "err", err)
	}
}

// delete removes the dynamic route id.
func (g *registry) delete(id string) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	old, ok := g.routes[id]
	if !ok {
		return errNotFound
	}
	if g.kind[id] != kindDynamic {
		return fmt.Errorf("%w: route %q is static (from the config file, -route or -embedded) and cannot be deleted through the admin API", errInvalidRoute, id)
	}
	delete(g.routes, id)
	if err := g.save(); err != nil {
		g.routes[id] = old
		return err
	}
	g.sink.DeleteRoute(old.URI)
	g.log.Info("route deleted", "id", id, "uri", old.URI)
	return nil
}

// get returns a copy-free view of route id.
func (g *registry) get(id string) (*RouteSpec, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	r, ok := g.routes[id]
	return r, ok
}

// list returns all routes sorted by id.
func (g *registry) list() []*RouteSpec {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make([]*RouteSpec, 0, len(g.routes))
	for _, r := range g.routes {
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// save writes the dynamic routes to the store; g.mu is held.
func (g *registry) save() error {
	if g.store == nil {
		return nil
	}
	var dyn []*RouteSpec
	for id, r := range g.routes {
		if g.kind[id] == kindDynamic {
			dyn = append(dyn, r)
		}
	}
	sort.Slice(dyn, func(i, j int) bool { return dyn[i].ID < dyn[j].ID })
	if err := g.store.save(dyn); err != nil {
		g.log.Error("save routes", "err", err)
		return fmt.Errorf("%w: %w", errStorage, err)
	}
	return nil
}

// newID returns a fresh 20-digit id, as APISIX generates for POST.
func (g *registry) newID() string {
	for {
		var b [8]byte
		rand.Read(b[:])
		id := fmt.Sprintf("%020d", binary.BigEndian.Uint64(b[:]))
		if _, taken := g.get(id); !taken {
			return id
		}
	}
}

// adminAPI serves the APISIX-compatible admin API for routes.
type adminAPI struct {
	reg *registry
	key []byte
	log *slog.Logger
}

// routeItem is one route as the admin API returns it.
type routeItem struct {
	Key   string     `json:"key"`
	Value *RouteSpec `json:"value"`
}

// newAdminServer returns the HTTP server of the admin API, with timeouts and
// limits fit for a management endpoint.
func newAdminServer(a *adminAPI) *http.Server {
	return &http.Server{
		Handler:           a.handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(a.log.Handler(), slog.LevelWarn),
	}
}

// handler routes the admin API behind the key check.
func (a *adminAPI) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/apisix/admin/routes", a.collection)
	mux.HandleFunc("/apisix/admin/routes/{id}", a.item)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "not found: kafkaedge serves /apisix/admin/routes")
	})
	return a.auth(mux)
}

// auth refuses requests without the admin key (constant-time compare).
func (a *adminAPI) auth(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got := []byte(r.Header.Get("X-API-KEY"))
		if len(got) == 0 || subtle.ConstantTimeCompare(got, a.key) != 1 {
			writeError(w, http.StatusUnauthorized, "failed to check token: missing or wrong X-API-KEY")
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (a *adminAPI) collection(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet:
		routes := a.reg.list()
		list := make([]routeItem, len(routes))
		for i, rt := range routes {
			list[i] = routeItem{routeKeyPrefix + rt.ID, rt}
		}
		writeJSON(w, http.StatusOK, struct {
			Total int         `json:"total"`
			List  []routeItem `json:"list"`
		}{len(list), list})
	case http.MethodPost:
		a.put(w, r, "", false)
	case http.MethodPut: // APISIX v2 style: the id in the body
		a.put(w, r, "", true)
	default:
		w.Header().Set("Allow", "GET, POST, PUT")
		writeError(w, http.StatusMethodNotAllowed, "method "+r.Method+" not allowed on /apisix/admin/routes")
	}
}

func (a *adminAPI) item(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	switch r.Method {
	case http.MethodGet:
		rt, ok := a.reg.get(id)
		if !ok {
			writeJSON(w, http.StatusNotFound, map[string]string{"message": "Key not found"})
			return
		}
		writeJSON(w, http.StatusOK, routeItem{routeKeyPrefix + id, rt})
	case http.MethodPut:
		a.put(w, r, id, false)
	case http.MethodDelete:
		switch err := a.reg.delete(id); {
		case errors.Is(err, errNotFound):
			writeJSON(w, http.StatusNotFound, map[string]string{"message": "Key not found"})
		case err != nil:
			writeRouteError(w, err)
		default:
			writeJSON(w, http.StatusOK, map[string]string{"deleted": "1", "key": routeKeyPrefix + id})
		}
	default:
		w.Header().Set("Allow", "GET, PUT, DELETE")
		writeError(w, http.StatusMethodNotAllowed, "method "+r.Method+" not allowed on a route")
	}
}

// put handles PUT .../routes/{id}, POST .../routes (id == "": the body's id
// or a generated one) and PUT .../routes (bodyID: the body must name the id).
func (a *adminAPI) put(w http.ResponseWriter, r *http.Request, id string, bodyID bool) {
	if id != "" && !idPattern.MatchString(id) {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("invalid route id %q: 1 to 64 characters of a-z A-Z 0-9 . _ -", id))
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxAdminBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body larger than %d bytes", maxAdminBody))
			return
		}
		writeError(w, http.StatusBadRequest, "read request body: "+err.Error())
		return
	}
	rt, err := ParseRoute(body)
	if err != nil {
		writeRouteError(w, err)
		return
	}
	switch {
	case bodyID && rt.ID == "":
		writeError(w, http.StatusBadRequest, "missing route id: PUT /apisix/admin/routes/{id}, or give \"id\" in the body")
		return
	case id == "" && rt.ID != "":
		id = rt.ID
	case id == "":
		id = a.reg.newID()
	case rt.ID != "" && rt.ID != id:
		writeError(w, http.StatusBadRequest, fmt.Sprintf("wrong route id: %q in the body, %q in the path", rt.ID, id))
		return
	}
	rt.ID = id
	created, err := a.reg.put(rt)
	if err != nil {
		writeRouteError(w, err)
		return
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	writeJSON(w, status, routeItem{routeKeyPrefix + id, rt})
}

// writeRouteError maps a registry error to its status.
func writeRouteError(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, errInvalidRoute):
		writeError(w, http.StatusBadRequest, routeProblem(err))
	default:
		writeError(w, http.StatusInternalServerError, err.Error())
	}
}

// writeError writes APISIX's error shape {"error_msg": ...}.
func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error_msg": msg})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error_msg":"encode response"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}
