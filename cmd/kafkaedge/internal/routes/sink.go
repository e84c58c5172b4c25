package routes

import (
	"github.com/kafkaedge/kafkaedge/cmd/kafkaedge/internal/apisix"
	"github.com/kafkaedge/kafkaedge/kafkawire"
	"github.com/kafkaedge/kafkaedge/reactor"
)

// Reactor is the Sink of a reactor.Server: every route's cluster gets the
// Kafka client settings of Base, and a logger that names the route.
type Reactor struct {
	Server *reactor.Server
	Base   kafkawire.Config
}

// PutRoute adds or replaces r in the server.
func (s Reactor) PutRoute(r *apisix.RouteSpec) error {
	c := r.Cluster(s.Base)
	if c.Logger != nil {
		c.Logger = c.Logger.With("route", r.ID)
	}
	return s.Server.PutRoute(reactor.Route{URI: r.URI, Cluster: c})
}

// DeleteRoute removes the route for uri from the server.
func (s Reactor) DeleteRoute(uri string) bool { return s.Server.DeleteRoute(uri) }
