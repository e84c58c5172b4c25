package main

import (
	"fmt"
	"reflect"
	"sort"
	"strconv"
)

// reloadResult counts what a reload changed.
type reloadResult struct {
	added, removed, changed, unchanged int
	failed                             int // routes the reactor refused (logged)
}

// fileRouteIDs gives the routes of a config file their default ids
// (config-1, config-2, ... by position) where they have none.
func fileRouteIDs(rs []*RouteSpec) {
	for i, r := range rs {
		if r.ID == "" {
			r.ID = "config-" + strconv.Itoa(i+1)
		}
	}
}

// readFileRoutes reads the routes of the config file at path, for SIGHUP.
// The whole file must parse (unknown keys are refused as at start), but
// only its routes are used.
func readFileRoutes(path string) ([]*RouteSpec, error) {
	s := defaultSettings()
	if err := loadFile(path, &s); err != nil {
		return nil, err
	}
	rs, err := fileRoutes(path, s.Routes)
	if err != nil {
		return nil, err
	}
	fileRouteIDs(rs)
	return rs, nil
}

// reloadFile replaces the routes that came from the config file with rs.
// It checks everything first and changes nothing (and returns an error)
// when rs collides with itself or another route: ids and URIs must be unique among the new
// file routes and must not be used by a -route, -embedded or admin route.
// A route that is unchanged keeps its connections (the reactor ignores an
// identical PutRoute); a changed one is replaced (its connections get
// 1001); a route no longer in the file is deleted (1001). A route the
// reactor refuses in spite of its valid definition is logged and counted in
// failed; the others are still applied.
func (g *registry) reloadFile(rs []*RouteSpec) (reloadResult, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	var res reloadResult
	ids := make(map[string]bool, len(rs))
	uris := make(map[string]string, len(rs))
	for _, r := range rs {
		if ids[r.ID] {
			return res, fmt.Errorf("%w: duplicate route id %q", errConfig, r.ID)
		}
		ids[r.ID] = true
		if other, ok := uris[r.URI]; ok {
			return res, fmt.Errorf("%w: duplicate route uri %q (routes %q and %q)", errConfig, r.URI, other, r.ID)
		}
		uris[r.URI] = r.ID
	}
	for id, o := range g.routes {
		if g.kind[id] == kindFile {
			continue
		}
		if ids[id] {
			return res, fmt.Errorf("%w: route id %q of the config file is used by a %s route", errConfig, id, kindName(g.kind[id]))
		}
		if other, ok := uris[o.URI]; ok {
			return res, fmt.Errorf("%w: uri %q of config route %q is used by %s route %q", errConfig, o.URI, other, kindName(g.kind[id]), id)
		}
	}

	// Delete the file routes whose URI no route of the new file uses, then
	// put every new route (a no-op in the reactor when unchanged).
	var oldIDs []string
	for id := range g.routes {
		if g.kind[id] == kindFile {
			oldIDs = append(oldIDs, id)
		}
	}
	sort.Strings(oldIDs)
	for _, id := range oldIDs {
		old := g.routes[id]
		if !ids[id] {
			res.removed++
			delete(g.routes, id)
			delete(g.kind, id)
			g.log.Info("route removed by config reload", "id", id, "uri", old.URI)
		}
		if _, kept := uris[old.URI]; !kept {
			g.sink.DeleteRoute(old.URI)
		}
	}
	now := g.now().Unix()
	for _, r := range rs {
		old := g.routes[r.ID]
		switch {
		case old == nil:
			r.CreateTime, r.UpdateTime = now, now
		case sameSpec(old, r):
			r.CreateTime, r.UpdateTime = old.CreateTime, old.UpdateTime
		default:
			r.CreateTime, r.UpdateTime = old.CreateTime, now
		}
		if err := g.sink.PutRoute(r); err != nil {
			// The route's definition passed validation; the reactor can
			// still refuse it (e.g. a kafkawire setting). Keep the others.
			g.log.Error("config reload: route refused", "id", r.ID, "uri", r.URI, "err", err)
			if old != nil && old.URI != r.URI {
				// The old URI was deleted above; on the same URI the
				// reactor keeps the old route, and so does the table.
				delete(g.routes, r.ID)
				delete(g.kind, r.ID)
			}
			res.failed++
			continue
		}
		switch {
		case old == nil:
			res.added++
			g.log.Info("route added by config reload", "id", r.ID, "uri", r.URI, "brokers", r.Upstream.Nodes.Brokers())
		case sameSpec(old, r):
			res.unchanged++
		default:
			res.changed++
			g.log.Info("route changed by config reload", "id", r.ID, "uri", r.URI, "brokers", r.Upstream.Nodes.Brokers())
		}
		g.routes[r.ID] = r
		g.kind[r.ID] = kindFile
	}
	return res, nil
}

// sameSpec reports whether two routes are the same apart from their times.
func sameSpec(a, b *RouteSpec) bool {
	x, y := *a, *b
	x.CreateTime, x.UpdateTime, y.CreateTime, y.UpdateTime = 0, 0, 0, 0
	return reflect.DeepEqual(x, y)
}

// kindName names a route kind in messages.
func kindName(k routeKind) string {
	switch k {
	case kindDynamic:
		return "admin API"
	case kindStatic:
		return "-route"
	case kindDemo:
		return "-embedded"
	case kindFile:
		return "config file"
	}
	return "unknown"
}
