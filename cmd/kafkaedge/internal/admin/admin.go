// Package admin is kafkaedge's admin API: the routes part of APISIX's
// admin API (PUT, POST, GET, DELETE on /apisix/admin/routes), behind the
// X-API-KEY check, as an http.Handler over a routes.Registry.
package admin

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/kafkaedge/kafkaedge/cmd/kafkaedge/internal/apisix"
	"github.com/kafkaedge/kafkaedge/cmd/kafkaedge/internal/routes"
)

// MaxBody caps the body of an admin request.
const MaxBody = 1 << 20

// routeKeyPrefix is the etcd-style key APISIX reports for a route.
const routeKeyPrefix = "/apisix/routes/"

// api serves the admin API for the routes of reg.
type api struct {
	reg *routes.Registry
	key []byte
}

// routeItem is one route as the admin API returns it.
type routeItem struct {
	Key   string            `json:"key"`
	Value *apisix.RouteSpec `json:"value"`
}

// New returns the admin API for the routes of reg; every request must carry
// key in its X-API-KEY header.
func New(reg *routes.Registry, key string) http.Handler {
	a := &api{reg: reg, key: []byte(key)}
	mux := http.NewServeMux()
	mux.HandleFunc("/apisix/admin/routes", a.collection)
	mux.HandleFunc("/apisix/admin/routes/{id}", a.item)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "not found: kafkaedge serves /apisix/admin/routes")
	})
	return a.auth(mux)
}

// auth refuses requests without the admin key (constant-time compare).
func (a *api) auth(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got := []byte(r.Header.Get("X-API-KEY"))
		if len(got) == 0 || subtle.ConstantTimeCompare(got, a.key) != 1 {
			writeError(w, http.StatusUnauthorized, "failed to check token: missing or wrong X-API-KEY")
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (a *api) collection(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet:
		all := a.reg.List()
		list := make([]routeItem, len(all))
		for i, rt := range all {
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

func (a *api) item(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	switch r.Method {
	case http.MethodGet:
		rt, ok := a.reg.Get(id)
		if !ok {
			writeJSON(w, http.StatusNotFound, map[string]string{"message": "Key not found"})
			return
		}
		writeJSON(w, http.StatusOK, routeItem{routeKeyPrefix + id, rt})
	case http.MethodPut:
		a.put(w, r, id, false)
	case http.MethodDelete:
		switch err := a.reg.Delete(id); {
		case errors.Is(err, routes.ErrNotFound):
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
func (a *api) put(w http.ResponseWriter, r *http.Request, id string, bodyID bool) {
	if id != "" && !apisix.ValidID(id) {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("invalid route id %q: 1 to 64 characters of a-z A-Z 0-9 . _ -", id))
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body larger than %d bytes", MaxBody))
			return
		}
		writeError(w, http.StatusBadRequest, "read request body: "+err.Error())
		return
	}
	rt, err := apisix.ParseRoute(body)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	switch {
	case bodyID && rt.ID == "":
		writeError(w, http.StatusBadRequest, "missing route id: PUT /apisix/admin/routes/{id}, or give \"id\" in the body")
		return
	case id == "" && rt.ID != "":
		id = rt.ID
	case id == "":
		id = a.reg.NewID()
	case rt.ID != "" && rt.ID != id:
		writeError(w, http.StatusBadRequest, fmt.Sprintf("wrong route id: %q in the body, %q in the path", rt.ID, id))
		return
	}
	rt.ID = id
	created, err := a.reg.Put(rt)
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

// writeRouteError maps a registry error to its status: a change that
// could not be saved is the node's failure (500), any other refusal the
// request's (400).
func writeRouteError(w http.ResponseWriter, err error) {
	status := http.StatusBadRequest
	if errors.Is(err, routes.ErrStorage) {
		status = http.StatusInternalServerError
	}
	writeError(w, status, err.Error())
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
