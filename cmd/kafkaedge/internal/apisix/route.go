// Package apisix is the route JSON of the APISIX admin API as kafkaedge
// reads and writes it: a route with a kafka upstream (its bootstrap nodes in
// either of APISIX's forms, TLS) and the kafka-proxy plugin (SASL). The
// admin API, the config file's routes: and DIR/routes.json all read routes
// with ParseRoute or FromValue, and the node turns one into the
// kafkawire.Config of its cluster with Cluster.
package apisix

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"net"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/kafkaedge/kafkaedge/internal/hostport"
	"github.com/kafkaedge/kafkaedge/kafkawire"
)

// maxURILen bounds a route URI; APISIX has no smaller limit that matters here.
const maxURILen = 4096

// idPattern is APISIX's rule for resource ids.
var idPattern = regexp.MustCompile(`^[a-zA-Z0-9._-]{1,64}$`)

// ValidID reports whether id follows APISIX's rule for resource ids: 1 to
// 64 characters of a-z A-Z 0-9 . _ -.
func ValidID(id string) bool { return idPattern.MatchString(id) }

// RouteSpec is one route in the APISIX admin shape, as accepted by
// PUT /apisix/admin/routes/{id}, listed under routes: in the config file and
// kept in DIR/routes.json. Only the fields that matter for a kafka upstream
// and a few harmless descriptive ones are known; anything else is refused.
type RouteSpec struct {
	ID              string            `json:"id"`
	URI             string            `json:"uri"`
	Name            string            `json:"name,omitempty"`
	Desc            string            `json:"desc,omitempty"`
	Labels          map[string]string `json:"labels,omitempty"`
	EnableWebsocket *bool             `json:"enable_websocket,omitempty"`
	Plugins         *Plugins          `json:"plugins,omitempty"`
	Upstream        Upstream          `json:"upstream"`
	CreateTime      int64             `json:"create_time,omitempty"`
	UpdateTime      int64             `json:"update_time,omitempty"`
}

// Plugins holds the route's plugins; kafka-proxy is the only one kafkaedge knows.
type Plugins struct {
	KafkaProxy *KafkaProxy `json:"kafka-proxy,omitempty"`
}

// KafkaProxy is the APISIX kafka-proxy plugin: SASL credentials for the brokers.
type KafkaProxy struct {
	SASL *SASL `json:"sasl,omitempty"`
}

// SASL holds broker credentials. Mechanism is a kafkaedge extension
// ("PLAIN", the APISIX behaviour and default, "SCRAM-SHA-256", "SCRAM-SHA-512").
type SASL struct {
	Username  string `json:"username"`
	Password  string `json:"password"`
	Mechanism string `json:"mechanism,omitempty"`
}

// Upstream is the Kafka cluster of a route.
type Upstream struct {
	Nodes  Nodes             `json:"nodes"`
	Type   string            `json:"type,omitempty"`
	Scheme string            `json:"scheme"`
	TLS    *UpstreamTLS      `json:"tls,omitempty"`
	Name   string            `json:"name,omitempty"`
	Desc   string            `json:"desc,omitempty"`
	Labels map[string]string `json:"labels,omitempty"`
}

// UpstreamTLS turns on TLS to the brokers. Verify is APISIX's field; the file
// paths and server name are kafkaedge extensions.
type UpstreamTLS struct {
	Verify     bool   `json:"verify"`
	CAFile     string `json:"ca_file,omitempty"`
	CertFile   string `json:"cert_file,omitempty"`
	KeyFile    string `json:"key_file,omitempty"`
	ServerName string `json:"server_name,omitempty"`
}

// Node is one bootstrap broker. Weight and Priority mean nothing for Kafka
// and are kept only to echo the route back as it was given.
type Node struct {
	Host     string
	Port     int
	Weight   int
	Priority *int
}

// Addr returns the node as "host:port".
func (n Node) Addr() string { return net.JoinHostPort(n.Host, strconv.Itoa(n.Port)) }

// Nodes is upstream.nodes in either APISIX form: an object {"host:port": weight}
// or an array [{"host": ..., "port": ..., "weight": ...}]. It is written back
// in the form it was read.
type Nodes struct {
	List  []Node
	Array bool
}

// Brokers returns the nodes as "host:port" strings.
func (ns Nodes) Brokers() []string {
	out := make([]string, len(ns.List))
	for i, n := range ns.List {
		out[i] = n.Addr()
	}
	return out
}

// MarshalJSON writes the nodes in the form they were given.
func (ns Nodes) MarshalJSON() ([]byte, error) {
	if !ns.Array {
		m := make(map[string]int, len(ns.List))
		for _, n := range ns.List {
			m[n.Addr()] = n.Weight
		}
		return json.Marshal(m)
	}
	type arrayNode struct {
		Host     string `json:"host"`
		Port     int    `json:"port"`
		Weight   int    `json:"weight"`
		Priority *int   `json:"priority,omitempty"`
	}
	a := make([]arrayNode, len(ns.List))
	for i, n := range ns.List {
		a[i] = arrayNode(n)
	}
	return json.Marshal(a)
}

// ParseRoute decodes and validates one route from its JSON form. Unknown
// fields are refused with their full path; the error names the problem
// (`unknown field "upstream.retries"`).
func ParseRoute(data []byte) (*RouteSpec, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("invalid JSON: %s", strings.TrimPrefix(err.Error(), "json: "))
	}
	if dec.More() {
		return nil, fmt.Errorf("invalid JSON: data after the route object")
	}
	return FromValue(v)
}

// FromValue validates a generic JSON value, as encoding/json decodes it with
// UseNumber, into a route.
func FromValue(v any) (*RouteSpec, error) {
	w := walker{}
	r := w.route(v)
	if w.err != nil {
		return nil, w.err
	}
	return r, nil
}

// walker checks a generic JSON tree field by field and remembers the first problem.
type walker struct{ err error }

func (w *walker) fail(format string, args ...any) {
	if w.err == nil {
		w.err = fmt.Errorf(format, args...)
	}
}

// object returns v as an object, or fails naming path.
func (w *walker) object(v any, path string) map[string]any {
	m, ok := v.(map[string]any)
	if !ok {
		w.fail("%s must be an object", path)
		return nil
	}
	return m
}

// known fails on the first key of m (in sorted order) not in allowed.
func (w *walker) known(m map[string]any, path string, allowed ...string) {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		found := false
		for _, a := range allowed {
			if k == a {
				found = true
				break
			}
		}
		if !found {
			w.fail("unknown field %q", join(path, k))
			return
		}
	}
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func (w *walker) str(v any, path string) string {
	if v == nil {
		return ""
	}
	s, ok := v.(string)
	if !ok {
		w.fail("%s must be a string", path)
	}
	return s
}

func (w *walker) boolean(v any, path string) bool {
	b, ok := v.(bool)
	if !ok {
		w.fail("%s must be true or false", path)
	}
	return b
}

func (w *walker) integer(v any, path string, lo, hi int64) int64 {
	n, ok := v.(json.Number)
	if !ok {
		w.fail("%s must be an integer", path)
		return 0
	}
	i, err := strconv.ParseInt(n.String(), 10, 64)
	if err != nil || i < lo || i > hi {
		w.fail("%s must be an integer from %d to %d, not %s", path, lo, hi, n.String())
		return 0
	}
	return i
}

func (w *walker) labels(v any, path string) map[string]string {
	if v == nil {
		return nil
	}
	m := w.object(v, path)
	out := make(map[string]string, len(m))
	for k, lv := range m {
		out[k] = w.str(lv, join(path, k))
	}
	return out
}

func (w *walker) route(v any) *RouteSpec {
	m := w.object(v, "route")
	if m == nil {
		return nil
	}
	w.known(m, "", "id", "uri", "name", "desc", "labels", "enable_websocket", "plugins", "upstream", "create_time", "update_time")
	r := &RouteSpec{}
	switch id := m["id"].(type) {
	case nil:
	case string:
		r.ID = id
	case json.Number: // APISIX accepts numeric ids
		r.ID = id.String()
	default:
		w.fail("id must be a string or a number")
	}
	if r.ID != "" && !idPattern.MatchString(r.ID) {
		w.fail("id %q must be 1 to 64 characters of a-z A-Z 0-9 . _ -", r.ID)
	}
	r.URI = w.str(m["uri"], "uri")
	ctl := controlByte(r.URI)
	switch {
	case m["uri"] == nil:
		w.fail("uri is required")
	case !strings.HasPrefix(r.URI, "/"):
		w.fail("uri %q must start with /", r.URI)
	case len(r.URI) > maxURILen:
		w.fail("uri is longer than %d bytes", maxURILen)
	case ctl >= 0: // no request line can carry it: the route could never be reached
		w.fail("uri %q must not contain control characters (byte 0x%02x at offset %d)", r.URI, r.URI[ctl], ctl)
	case strings.ContainsAny(r.URI, "*?# "):
		w.fail("uri %q must be a plain path (no wildcard, query, fragment or space)", r.URI)
	}
	r.Name = w.str(m["name"], "name")
	r.Desc = w.str(m["desc"], "desc")
	r.Labels = w.labels(m["labels"], "labels")
	if ev, ok := m["enable_websocket"]; ok {
		b := w.boolean(ev, "enable_websocket")
		r.EnableWebsocket = &b
	}
	if t, ok := m["create_time"]; ok {
		r.CreateTime = w.integer(t, "create_time", 0, math.MaxInt64)
	}
	if t, ok := m["update_time"]; ok {
		r.UpdateTime = w.integer(t, "update_time", 0, math.MaxInt64)
	}
	if pv, ok := m["plugins"]; ok {
		r.Plugins = w.plugins(pv)
	}
	if uv, ok := m["upstream"]; ok {
		r.Upstream = w.upstream(uv)
	} else {
		w.fail("upstream is required")
	}
	return r
}

func (w *walker) plugins(v any) *Plugins {
	m := w.object(v, "plugins")
	if m == nil {
		return nil
	}
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	sort.Strings(names)
	p := &Plugins{}
	for _, name := range names {
		if name != "kafka-proxy" {
			w.fail("plugin %q is not supported (kafkaedge knows only kafka-proxy)", name)
			continue
		}
		kp := w.object(m[name], "plugins.kafka-proxy")
		if kp == nil {
			continue
		}
		w.known(kp, "plugins.kafka-proxy", "sasl")
		p.KafkaProxy = &KafkaProxy{}
		if sv, ok := kp["sasl"]; ok {
			p.KafkaProxy.SASL = w.sasl(sv)
		}
	}
	return p
}

func (w *walker) sasl(v any) *SASL {
	const path = "plugins.kafka-proxy.sasl"
	m := w.object(v, path)
	if m == nil {
		return nil
	}
	w.known(m, path, "username", "password", "mechanism")
	s := &SASL{
		Username:  w.str(m["username"], path+".username"),
		Password:  w.str(m["password"], path+".password"),
		Mechanism: w.str(m["mechanism"], path+".mechanism"),
	}
	if s.Username == "" {
		w.fail("%s.username is required", path)
	}
	if s.Password == "" {
		w.fail("%s.password is required", path)
	}
	switch strings.ToUpper(s.Mechanism) {
	case "", "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512":
		s.Mechanism = strings.ToUpper(s.Mechanism)
	default:
		w.fail("%s.mechanism %q is not one of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512", path, s.Mechanism)
	}
	return s
}

func (w *walker) upstream(v any) Upstream {
	m := w.object(v, "upstream")
	if m == nil {
		return Upstream{}
	}
	w.known(m, "upstream", "nodes", "type", "scheme", "tls", "name", "desc", "labels")
	u := Upstream{
		Type:   w.str(m["type"], "upstream.type"),
		Scheme: w.str(m["scheme"], "upstream.scheme"),
		Name:   w.str(m["name"], "upstream.name"),
		Desc:   w.str(m["desc"], "upstream.desc"),
		Labels: w.labels(m["labels"], "upstream.labels"),
	}
	if u.Scheme != "kafka" {
		w.fail("upstream.scheme must be \"kafka\", not %q", u.Scheme)
	}
	u.Nodes = w.nodes(m["nodes"])
	if tv, ok := m["tls"]; ok {
		u.TLS = w.tls(tv)
	}
	return u
}

func (w *walker) nodes(v any) Nodes {
	const path = "upstream.nodes"
	var ns Nodes
	switch v := v.(type) {
	case nil:
		w.fail("%s is required (at least one \"host:port\")", path)
		return ns
	case map[string]any:
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			host, port, err := hostport.Split(k)
			if err != nil {
				w.fail("%s: bad address %q: %v", path, k, err)
				continue
			}
			weight := w.integer(v[k], fmt.Sprintf("%s[%q]", path, k), 0, math.MaxInt32)
			ns.List = append(ns.List, Node{Host: host, Port: port, Weight: int(weight)})
		}
	case []any:
		ns.Array = true
		for i, e := range v {
			p := fmt.Sprintf("%s[%d]", path, i)
			m := w.object(e, p)
			if m == nil {
				continue
			}
			w.known(m, p, "host", "port", "weight", "priority")
			n := Node{Host: w.str(m["host"], p+".host"), Weight: 1}
			if pv, ok := m["port"]; ok {
				n.Port = int(w.integer(pv, p+".port", 1, 65535))
			} else {
				w.fail("%s.port is required", p)
			}
			if wv, ok := m["weight"]; ok {
				n.Weight = int(w.integer(wv, p+".weight", 0, math.MaxInt32))
			}
			if pv, ok := m["priority"]; ok {
				pr := int(w.integer(pv, p+".priority", math.MinInt32, math.MaxInt32))
				n.Priority = &pr
			}
			if err := hostport.CheckHost(n.Host); err != nil {
				w.fail("%s.host: %v", p, err)
			}
			ns.List = append(ns.List, n)
		}
	default:
		w.fail("%s must be an object {\"host:port\": weight} or an array of {\"host\", \"port\", \"weight\"}", path)
		return ns
	}
	if w.err == nil && len(ns.List) == 0 {
		w.fail("%s is empty: at least one \"host:port\" is required", path)
	}
	return ns
}

func (w *walker) tls(v any) *UpstreamTLS {
	const path = "upstream.tls"
	m := w.object(v, path)
	if m == nil {
		return nil
	}
	w.known(m, path, "verify", "ca_file", "cert_file", "key_file", "server_name")
	t := &UpstreamTLS{
		CAFile:     w.str(m["ca_file"], path+".ca_file"),
		CertFile:   w.str(m["cert_file"], path+".cert_file"),
		KeyFile:    w.str(m["key_file"], path+".key_file"),
		ServerName: w.str(m["server_name"], path+".server_name"),
	}
	if vv, ok := m["verify"]; ok {
		t.Verify = w.boolean(vv, path+".verify")
	}
	// The files themselves are read once, by kafkawire.New, when the
	// route's cluster client is made.
	if (t.CertFile == "") != (t.KeyFile == "") {
		w.fail("%s: cert_file and key_file must be given together", path)
	}
	return t
}

// controlByte returns the offset of the first control character of s (a
// byte below 0x20, or 0x7f), or -1.
func controlByte(s string) int {
	return strings.IndexFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f })
}

// ParseFlag parses a -route value "/uri=host:port,host:port".
func ParseFlag(s string) (*RouteSpec, error) {
	uri, nodes, ok := strings.Cut(s, "=")
	if !ok || uri == "" || nodes == "" {
		return nil, fmt.Errorf("-route %q: want /uri=host:port[,host:port...]", s)
	}
	obj := make(map[string]any)
	for _, n := range strings.Split(nodes, ",") {
		n = strings.TrimSpace(n)
		if n == "" {
			return nil, fmt.Errorf("-route %q: empty broker address", s)
		}
		obj[n] = json.Number("1")
	}
	r, err := FromValue(map[string]any{
		"uri":      uri,
		"upstream": map[string]any{"nodes": obj, "type": "none", "scheme": "kafka"},
	})
	if err != nil {
		return nil, fmt.Errorf("-route %q: %w", s, err)
	}
	return r, nil
}

// Cluster is the kafkawire configuration of the route's Kafka cluster:
// base, the settings every route shares, with the route's brokers, TLS and
// SASL.
func (r *RouteSpec) Cluster(base kafkawire.Config) kafkawire.Config {
	c := base
	c.Brokers = r.Upstream.Nodes.Brokers()
	if t := r.Upstream.TLS; t != nil {
		c.TLS = &kafkawire.TLSConfig{Verify: t.Verify, CAFile: t.CAFile, CertFile: t.CertFile, KeyFile: t.KeyFile, ServerName: t.ServerName}
	}
	if kp := r.kafkaProxy(); kp != nil && kp.SASL != nil {
		sa := kp.SASL
		mech := sa.Mechanism
		if mech == "" {
			mech = "PLAIN" // APISIX's kafka-proxy speaks only PLAIN
		}
		c.SASL = &kafkawire.SASLConfig{Mechanism: mech, Username: sa.Username, Password: sa.Password}
	}
	return c
}

// Same reports whether a and b are the same route apart from their
// create_time and update_time: the same cluster (the kafkawire.Config.Key
// of their brokers, TLS and SASL) and the same fields of their own, as the
// admin API echoes them.
func Same(a, b *RouteSpec) bool {
	au, bu := &a.Upstream, &b.Upstream
	return a.ID == b.ID && a.URI == b.URI && a.Name == b.Name && a.Desc == b.Desc &&
		maps.Equal(a.Labels, b.Labels) && equalPtr(a.EnableWebsocket, b.EnableWebsocket) &&
		(a.Plugins == nil) == (b.Plugins == nil) && (a.kafkaProxy() == nil) == (b.kafkaProxy() == nil) &&
		au.Type == bu.Type && au.Scheme == bu.Scheme && au.Name == bu.Name && au.Desc == bu.Desc &&
		maps.Equal(au.Labels, bu.Labels) && au.Nodes.Array == bu.Nodes.Array &&
		slices.EqualFunc(au.Nodes.List, bu.Nodes.List, func(x, y Node) bool {
			return x.Host == y.Host && x.Port == y.Port && x.Weight == y.Weight && equalPtr(x.Priority, y.Priority)
		}) &&
		a.Cluster(kafkawire.Config{}).Key() == b.Cluster(kafkawire.Config{}).Key()
}

// kafkaProxy is the route's kafka-proxy plugin, nil without one.
func (r *RouteSpec) kafkaProxy() *KafkaProxy {
	if r.Plugins == nil {
		return nil
	}
	return r.Plugins.KafkaProxy
}

// equalPtr reports whether a and b are both nil or point to equal values.
func equalPtr[T comparable](a, b *T) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}
