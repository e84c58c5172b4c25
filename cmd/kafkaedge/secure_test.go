package main

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/plain"

	"github.com/kafkaedge/kafkaedge/internal/kafkatest"
	"github.com/kafkaedge/kafkaedge/proto/pubsub"

	"github.com/kafkaedge/kafkaedge/internal/testcert"
)

// secureCluster is the SASL or the TLS listener of a cluster under test,
// with a topic whose partition 0 holds values (keyed "k-<value>").
type secureCluster struct {
	name       string
	brokers    []string // the SASL_PLAINTEXT or SSL listeners
	user, pass string   // SASL: a user every mechanism knows
	caFile     string   // TLS: the CA that signed the brokers' certificate
	topic      string
	values     []string
}

// nodesJSON is brokers as an APISIX nodes object.
func nodesJSON(brokers []string) string {
	nodes := make([]string, len(brokers))
	for i, b := range brokers {
		nodes[i] = fmt.Sprintf("%q:1", b)
	}
	return "{" + strings.Join(nodes, ",") + "}"
}

// listOffsetError asks uri for the high watermark of topic/0 and returns
// the message of the error_resp it must get.
func listOffsetError(t *testing.T, p *proc, uri, topic string) string {
	t.Helper()
	resp := dial(t, p, uri).call(t, &pubsub.PubSubReq{Req: &pubsub.PubSubReq_CmdKafkaListOffset{
		CmdKafkaListOffset: &pubsub.CmdKafkaListOffset{Topic: topic, Partition: 0, Timestamp: -1}}})
	e := resp.GetErrorResp()
	if e == nil {
		t.Fatalf("list offset on %s: got %v, want an error_resp", uri, resp)
	}
	want := fmt.Sprintf("failed to list offset, topic: %s, partition: 0, err: ", topic)
	if !strings.HasPrefix(e.Message, want) {
		t.Fatalf("list offset on %s: error %q, want it to start with %q", uri, e.Message, want)
	}
	return e.Message
}

// brokerUnreachable checks that a list offset on uri is answered with the
// short reason "broker unreachable" (no address, no cause), and waits for
// the node's log to hold the cause: a "kafka call failed" line containing
// every text of want.
func brokerUnreachable(t *testing.T, p *proc, uri, topic string, want ...string) {
	t.Helper()
	msg := listOffsetError(t, p, uri, topic)
	if exp := fmt.Sprintf("failed to list offset, topic: %s, partition: 0, err: broker unreachable", topic); msg != exp {
		t.Errorf("%s: error %q, want %q", uri, msg, exp)
	}
	waitFor(t, p, fmt.Sprintf("the log to say why %s failed (%q)", uri, want), func() bool {
		for l := range strings.Lines(p.stderr.String()) {
			if strings.Contains(l, "kafka call failed") && strings.Contains(l, "topic="+topic) && containsAll(l, want) {
				return true
			}
		}
		return false
	})
}

// containsAll reports whether s contains every one of subs.
func containsAll(s string, subs []string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}

// waitDegraded waits until /readyz reports exactly the routes of uris
// degraded (503), and returns their errors by URI.
func waitDegraded(t *testing.T, p *proc, uris ...string) map[string]string {
	t.Helper()
	sort.Strings(uris)
	want := strings.Join(uris, " ")
	var got map[string]string
	waitFor(t, p, "/readyz to report "+want+" degraded", func() bool {
		status, rep := readyz(t, p)
		got = make(map[string]string)
		var names []string
		for _, d := range rep.Degraded {
			got[d.URI] = d.Error
			names = append(names, d.URI)
		}
		sort.Strings(names)
		return status == http.StatusServiceUnavailable && !rep.Ready && strings.Join(names, " ") == want
	})
	return got
}

// kfakeSASL is a one-broker kfake cluster that requires SASL, with one
// user for PLAIN and both SCRAMs.
func kfakeSASL(t *testing.T) secureCluster {
	const user, pass = "edge-user", "s3cret-Pa55word"
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "secure"), kfake.EnableSASL(),
		kfake.Superuser("PLAIN", user, pass), kfake.Superuser("SCRAM-SHA-256", user, pass),
		kfake.Superuser("SCRAM-SHA-512", user, pass))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	k := &kafkatest.Kafka{Name: "kfake", Brokers: c.ListenAddrs(), Fake: c}
	sc := secureCluster{name: k.Name, brokers: k.Brokers, user: user, pass: pass, topic: "secure", values: []string{"s0", "s1"}}
	k.Produce(t, produceOpts(kgo.SASL(plain.Auth{User: user, Pass: pass}.AsMechanism())), records(sc.topic, sc.values...)...)
	return sc
}

// realSASL is the SASL_PLAINTEXT listener of a real cluster and its user.
func realSASL(t *testing.T, k *kafkatest.Kafka) secureCluster {
	sc := secureCluster{name: k.Name, brokers: k.Real.SASLBootstrap(), user: k.Real.Users[0].Name, pass: k.Real.Users[0].Password,
		topic: k.Topic(t, "secure", 1), values: []string{"s0", "s1"}}
	produce(t, k, sc.topic, sc.values...)
	return sc
}

// TestAdminSASLRoute: routes with plugins.kafka-proxy.sasl, for every
// mechanism the route JSON offers, serve data with the right password; with
// a wrong one every request gets an error naming the mechanism and the user,
// and /readyz reports the route degraded. No password is ever logged.
func TestAdminSASLRoute(t *testing.T) {
	t.Parallel()
	t.Run("kfake", func(t *testing.T) { testSASLRoutes(t, kfakeSASL(t)) })
	kafkatest.EachReal(t, func(t *testing.T, k *kafkatest.Kafka) { testSASLRoutes(t, realSASL(t, k)) })
}

func testSASLRoutes(t *testing.T, sc secureCluster) {
	const wrong = "not-the-Pa55word"
	p := start(t)
	route := func(uri, mech, pass string, brokers []string) string {
		m := ""
		if mech != "" {
			m = fmt.Sprintf(`,"mechanism":%q`, mech)
		}
		return fmt.Sprintf(`{"uri":%q,"plugins":{"kafka-proxy":{"sasl":{"username":%q,"password":%q%s}}},
			"upstream":{"nodes":%s,"type":"none","scheme":"kafka"}}`, uri, sc.user, pass, m, nodesJSON(brokers))
	}
	var bad []string
	for _, mech := range []string{"", "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"} {
		id := strings.ToLower(mech)
		if mech == "" {
			id = "default" // APISIX's route: no mechanism, PLAIN
		}
		p.mustDo(t, "PUT", "/apisix/admin/routes/"+id, route("/"+id, mech, sc.pass, sc.brokers), http.StatusCreated)
		expectData(t, p, "/"+id, sc.topic, sc.values...)

		// One bootstrap broker: a real broker answers a failed
		// authentication only after a delay (about 300 ms), and the
		// metadata request tries the bootstrap brokers one after another.
		p.mustDo(t, "PUT", "/apisix/admin/routes/bad-"+id, route("/bad-"+id, mech, wrong, sc.brokers[:1]), http.StatusCreated)
		bad = append(bad, "/bad-"+id)
		effective := mech
		if effective == "" {
			effective = "PLAIN"
		}
		// The client is told "broker unreachable"; the log says why
		// (slog quotes the err value, so the user's quotes are escaped).
		brokerUnreachable(t, p, "/bad-"+id, sc.topic, fmt.Sprintf(`SASL %s authentication as \"%s\"`, effective, sc.user))
	}
	for uri, e := range waitDegraded(t, p, bad...) {
		if !strings.Contains(e, "SASL") || !strings.Contains(e, "authentication as") {
			t.Errorf("/readyz: %s degraded with %q, want the SASL failure", uri, e)
		}
	}
	// The handshakes are in the Kafka-side metrics: a real broker answers
	// a wrong password with SASL_AUTHENTICATION_FAILED, kfake closes the
	// connection (outcome network).
	m := scrape(t, p)
	auth := map[string]string{"api": "SaslAuthenticate"}
	ok := metricSum(m, "kafkaedge_kafka_requests_total", map[string]string{"api": "SaslAuthenticate", "outcome": "NONE"})
	if all := metricSum(m, "kafkaedge_kafka_requests_total", auth); ok < 1 || all-ok < 1 {
		t.Errorf("SaslAuthenticate requests: %v answered without error of %v, want some of each", ok, all)
	}
	if v := metricSum(m, "kafkaedge_kafka_requests_total", map[string]string{"api": "SaslHandshake", "outcome": "NONE"}); v < 1 {
		t.Errorf("SaslHandshake requests without error: %v", v)
	}
	if v := metricSum(m, "kafkaedge_kafka_broker_connection_events_total", map[string]string{"event": "dial_failed"}); v < 1 {
		t.Errorf("dials failed: %v, want the wrong passwords counted", v)
	}
	for _, secret := range []string{sc.pass, wrong} {
		if strings.Contains(p.stderr.String(), secret) {
			t.Fatalf("a SASL password appears in the log:\n%s", p.stderr)
		}
	}
}

// kfakeTLS is a one-broker kfake cluster behind TLS with a certificate of
// its own.
func kfakeTLS(t *testing.T) secureCluster {
	cert, _, caFile, _ := testcert.Files(t, t.TempDir(), "broker")
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "tls"),
		kfake.TLS(&tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	pool := x509.NewCertPool()
	pool.AddCert(cert.Leaf)
	k := &kafkatest.Kafka{Name: "kfake", Brokers: c.ListenAddrs(), Fake: c}
	sc := secureCluster{name: k.Name, brokers: k.Brokers, caFile: caFile, topic: "tls", values: []string{"t0", "t1", "t2"}}
	k.Produce(t, produceOpts(kgo.DialTLSConfig(&tls.Config{RootCAs: pool})), records(sc.topic, sc.values...)...)
	return sc
}

// realTLS is the SSL listener of a real cluster and its CA.
func realTLS(t *testing.T, k *kafkatest.Kafka) secureCluster {
	sc := secureCluster{name: k.Name, brokers: k.Real.SSLBootstrap(), caFile: k.Real.CAFile(),
		topic: k.Topic(t, "tls", 1), values: []string{"t0", "t1", "t2"}}
	produce(t, k, sc.topic, sc.values...)
	return sc
}

// TestAdminTLSRoute: routes with upstream.tls against the brokers' TLS
// listener, with every TLS field the route JSON has: verify off; verify
// with ca_file (and server_name, and a client certificate); and the
// failures, verify on without the CA and a server_name the certificate
// does not name, each a clear error to the client and a degraded route.
func TestAdminTLSRoute(t *testing.T) {
	t.Parallel()
	t.Run("kfake", func(t *testing.T) { testTLSRoutes(t, kfakeTLS(t)) })
	kafkatest.EachReal(t, func(t *testing.T, k *kafkatest.Kafka) { testTLSRoutes(t, realTLS(t, k)) })
}

func testTLSRoutes(t *testing.T, sc secureCluster) {
	_, _, clientCert, clientKey := testcert.Files(t, t.TempDir(), "client")
	p := start(t)
	route := func(uri, tlsJSON string) string {
		return fmt.Sprintf(`{"uri":%q,"upstream":{"nodes":%s,"type":"none","scheme":"kafka","tls":%s}}`, uri, nodesJSON(sc.brokers), tlsJSON)
	}
	for _, c := range []struct{ uri, tls string }{
		{"/no-verify", `{"verify":false}`},
		{"/ca", fmt.Sprintf(`{"verify":true,"ca_file":%q}`, sc.caFile)},
		{"/ca-name", fmt.Sprintf(`{"verify":true,"ca_file":%q,"server_name":"localhost"}`, sc.caFile)},
		{"/client-cert", fmt.Sprintf(`{"verify":true,"ca_file":%q,"cert_file":%q,"key_file":%q}`, sc.caFile, clientCert, clientKey)},
	} {
		p.mustDo(t, "PUT", "/apisix/admin/routes"+c.uri, route(c.uri, c.tls), http.StatusCreated)
		expectData(t, p, c.uri, sc.topic, sc.values...)
	}

	failures := []struct{ uri, tls, want string }{
		// The system roots do not know the brokers' self-signed certificate.
		{"/no-ca", `{"verify":true}`, "certificate signed by unknown authority"},
		{"/wrong-name", fmt.Sprintf(`{"verify":true,"ca_file":%q,"server_name":"other.test"}`, sc.caFile), "other.test"},
	}
	var bad []string
	for _, c := range failures {
		p.mustDo(t, "PUT", "/apisix/admin/routes"+c.uri, route(c.uri, c.tls), http.StatusCreated)
		bad = append(bad, c.uri)
		brokerUnreachable(t, p, c.uri, sc.topic, "TLS handshake", c.want)
	}
	errs := waitDegraded(t, p, bad...)
	for _, c := range failures {
		if !strings.Contains(errs[c.uri], c.want) {
			t.Errorf("/readyz: %s degraded with %q, want it to name %q", c.uri, errs[c.uri], c.want)
		}
	}
	m := scrape(t, p)
	for event, min := range map[string]float64{"up": 1, "dial_failed": 1} {
		if v := metricSum(m, "kafkaedge_kafka_broker_connection_events_total", map[string]string{"event": event}); v < min {
			t.Errorf("broker connection events %s: %v, want at least %v", event, v, min)
		}
	}
}
