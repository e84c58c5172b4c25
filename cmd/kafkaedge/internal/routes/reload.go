package routes

import (
	"maps"
	"slices"

	"github.com/kafkaedge/kafkaedge/cmd/kafkaedge/internal/apisix"
)

// ReloadResult counts what a reload changed.
type ReloadResult struct {
	Added, Removed, Changed, Unchanged int
	Failed                             int // routes the sink refused (logged)
}

// ReloadFile replaces the routes that came from the config file with rs.
// It checks everything first and changes nothing (and returns an error)
// when rs collides with itself or another route, or a route of it has too
// many upstream nodes. A route that is unchanged
// (apisix.Same) keeps its connections; a changed one is put again; a route
// no longer in the file is deleted (its clients get 1001). A route the sink
// refuses in spite of its valid definition (kafkawire cannot read its TLS
// files, say) is logged and counted in Failed; the others are still
// applied.
func (g *Registry) ReloadFile(rs []*apisix.RouteSpec) (ReloadResult, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	var res ReloadResult
	kept := maps.Clone(g.routes)
	maps.DeleteFunc(kept, func(_ string, r Route) bool { return r.Kind == File })
	added := make([]Route, len(rs))
	ids := make(map[string]bool, len(rs))
	uris := make(map[string]bool, len(rs))
	for i, r := range rs {
		added[i] = Route{r, File}
		ids[r.ID], uris[r.URI] = true, true
	}
	if _, c := check(kept, added, g.maxNodes); c != nil {
		return res, c
	}

	// Delete the file routes whose URI no route of the new file uses, then
	// put every new route (a no-op in the server when unchanged).
	for _, id := range slices.Sorted(maps.Keys(g.routes)) {
		old := g.routes[id]
		if old.Kind != File {
			continue
		}
		if !ids[id] {
			res.Removed++
			delete(g.routes, id)
			g.log.Info("route removed by config reload", "id", id, "uri", old.Spec.URI)
		}
		if !uris[old.Spec.URI] {
			g.sink.DeleteRoute(old.Spec.URI)
		}
	}
	now := g.now().Unix()
	for _, r := range rs {
		old, exists := g.routes[r.ID]
		same := exists && apisix.Same(old.Spec, r)
		switch {
		case !exists:
			r.CreateTime, r.UpdateTime = now, now
		case same:
			r.CreateTime, r.UpdateTime = old.Spec.CreateTime, old.Spec.UpdateTime
		default:
			r.CreateTime, r.UpdateTime = old.Spec.CreateTime, now
		}
		if err := g.sink.PutRoute(r); err != nil {
			g.log.Error("config reload: route refused", "id", r.ID, "uri", r.URI, "err", err)
			if exists && old.Spec.URI != r.URI {
				// The old URI was deleted above; on the same URI the
				// server keeps the old route, and so does the table.
				delete(g.routes, r.ID)
			}
			res.Failed++
			continue
		}
		switch {
		case !exists:
			res.Added++
			g.log.Info("route added by config reload", "id", r.ID, "uri", r.URI, "brokers", r.Upstream.Nodes.Brokers())
		case same:
			res.Unchanged++
		default:
			res.Changed++
			g.log.Info("route changed by config reload", "id", r.ID, "uri", r.URI, "brokers", r.Upstream.Nodes.Brokers())
		}
		g.routes[r.ID] = Route{r, File}
	}
	return res, nil
}
