package kafkawire

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/plain"

	"github.com/kafkaedge/kafkaedge/internal/kafkatest"
	"github.com/kafkaedge/kafkaedge/internal/testcert"
)

// TestTLS: verification on without the CA fails with a clear error, off
// works, and on with the CA file works, on kfake with a certificate of the
// test and on a real cluster's SSL listener (kraft's self-signed
// certificate for 127.0.0.1 and localhost).
func TestTLS(t *testing.T) {
	t.Run("kfake", func(t *testing.T) {
		cert, _, caFile, _ := testcert.Files(t, t.TempDir(), "broker", "broker.test")
		tc := newCluster(t, kfake.SeedTopics(1, "s"), kfake.TLS(&tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}))
		tc.k.Produce(t, []kgo.Opt{kgo.DialTLSConfig(&tls.Config{InsecureSkipVerify: true})},
			makeRecords("s", 0, 3, time.Now(), "s")...)
		tlsCases(t, tc.addrs[:1], "s", caFile, "broker.test")

		// Bad files are configuration errors.
		if _, err := New(Config{Brokers: tc.addrs, TLS: &TLSConfig{CAFile: filepath.Join(t.TempDir(), "none.pem")}}); err == nil {
			t.Error("New with a missing CA file succeeded")
		}
		if _, err := New(Config{Brokers: tc.addrs, TLS: &TLSConfig{CAFile: caFile, CertFile: caFile}}); err == nil {
			t.Error("New with a cert file but no key file succeeded")
		}
	})
	kafkatest.EachReal(t, func(t *testing.T, k *kafkatest.Kafka) {
		tp := k.Topic(t, "s", 1)
		k.Produce(t, nil, makeRecords(tp, 0, 3, time.Now(), "s")...)
		tlsCases(t, k.Real.SSLBootstrap()[:1], tp, k.Real.CAFile(), "localhost")
	})
}

// tlsCases fetches the 3 records of topic/0 over TLS from brokers, whose
// certificate is signed by caFile and valid for the IP address and for
// serverName.
func tlsCases(t *testing.T, brokers []string, topic, caFile, serverName string) {
	t.Helper()
	verify := newClient(t, Config{Brokers: brokers, TLS: &TLSConfig{Verify: true}, RequestTimeout: 5 * time.Second})
	_, err := verify.ListOffset(testCtx(t), topic, 0, -1)
	var e *Error
	if !errors.As(err, &e) || !strings.Contains(err.Error(), "TLS handshake") || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("verify without the CA: %v", err)
	}
	t.Logf("verify without the CA: %v", err)

	for name, cfg := range map[string]*TLSConfig{
		"no verify":          {Verify: false},
		"verify with CA":     {Verify: true, CAFile: caFile},
		"verify server name": {Verify: true, CAFile: caFile, ServerName: serverName},
	} {
		c := newClient(t, Config{Brokers: brokers, TLS: cfg})
		res, err := c.Fetch(testCtx(t), topic, 0, 0)
		if err != nil || len(res.Records) != 3 {
			t.Fatalf("%s: %v", name, err)
		}
		res.Release()
	}

	wrongName := newClient(t, Config{Brokers: brokers, TLS: &TLSConfig{Verify: true, CAFile: caFile, ServerName: "other.test"}})
	if _, err := wrongName.ListOffset(testCtx(t), topic, 0, -1); err == nil || !strings.Contains(err.Error(), "other.test") {
		t.Fatalf("verify a wrong server name: %v", err)
	}
}

// TestTLSClientCertificate: a broker that requires a client certificate
// accepts the configured one.
func TestTLSClientCertificate(t *testing.T) {
	cert, certPEM, caFile, keyFile := testcert.Files(t, t.TempDir(), "broker", "broker.test")
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(certPEM)
	tc := newCluster(t, kfake.SeedTopics(1, "s"), kfake.TLS(&tls.Config{
		Certificates: []tls.Certificate{cert},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    pool,
		MinVersion:   tls.VersionTLS12,
	}))
	c := newClient(t, Config{Brokers: tc.addrs[:1], TLS: &TLSConfig{Verify: true, CAFile: caFile, CertFile: caFile, KeyFile: keyFile}})
	if off, err := c.ListOffset(testCtx(t), "s", 0, -1); err != nil || off != 0 {
		t.Fatalf("with a client certificate: %d, %v", off, err)
	}
	noCert := newClient(t, Config{Brokers: tc.addrs[:1], TLS: &TLSConfig{Verify: true, CAFile: caFile}, RequestTimeout: 5 * time.Second})
	if _, err := noCert.ListOffset(testCtx(t), "s", 0, -1); err == nil {
		t.Fatal("without a client certificate: no error")
	}
}

// TestSASL authenticates with PLAIN and SCRAM-SHA-256/512, with the right
// and a wrong password, on kfake and on a real cluster's SASL_PLAINTEXT
// listener.
func TestSASL(t *testing.T) {
	t.Run("kfake", func(t *testing.T) {
		tc := newCluster(t, kfake.SeedTopics(1, "a"), kfake.EnableSASL(),
			kfake.Superuser("PLAIN", "plainuser", "plainpass"),
			kfake.Superuser("SCRAM-SHA-256", "user256", "pass256"),
			kfake.Superuser("SCRAM-SHA-512", "user,=512", "pass512"),
		)
		tc.k.Produce(t, []kgo.Opt{kgo.SASL(plain.Auth{User: "plainuser", Pass: "plainpass"}.AsMechanism())},
			makeRecords("a", 0, 2, time.Now(), "a")...)
		saslCases(t, tc.addrs[:1], "a", []SASLConfig{
			{"", "plainuser", "plainpass"}, // PLAIN is the default
			{"PLAIN", "plainuser", "plainpass"},
			{"SCRAM-SHA-256", "user256", "pass256"},
			{"SCRAM-SHA-512", "user,=512", "pass512"},
		})
		if _, err := New(Config{Brokers: tc.addrs, SASL: &SASLConfig{Mechanism: "GSSAPI", Username: "u"}}); err == nil {
			t.Error("New with an unknown mechanism succeeded")
		}
	})
	kafkatest.EachReal(t, func(t *testing.T, k *kafkatest.Kafka) {
		tp := k.Topic(t, "a", 1)
		k.Produce(t, nil, makeRecords(tp, 0, 2, time.Now(), "a")...)
		u := k.Real.Users[0]
		saslCases(t, k.Real.SASLBootstrap()[:1], tp, []SASLConfig{
			{"", u.Name, u.Password},
			{"PLAIN", u.Name, u.Password},
			{"SCRAM-SHA-256", u.Name, u.Password},
			{"SCRAM-SHA-512", u.Name, u.Password},
		})
	})
}

// saslCases fetches the 2 records of topic/0 from brokers with each of
// users, then fails with each one's mechanism and a wrong password; a
// client without SASL is refused.
func saslCases(t *testing.T, brokers []string, topic string, users []SASLConfig) {
	t.Helper()
	for _, u := range users {
		c := newClient(t, Config{Brokers: brokers, SASL: &u})
		res, err := c.Fetch(testCtx(t), topic, 0, 0)
		if err != nil || len(res.Records) != 2 {
			t.Fatalf("%s as %s: %v", u.Mechanism, u.Username, err)
		}
		res.Release()

		bad := newClient(t, Config{Brokers: brokers, RequestTimeout: 5 * time.Second,
			SASL: &SASLConfig{Mechanism: u.Mechanism, Username: u.Username, Password: "wrong"}})
		_, err = bad.ListOffset(testCtx(t), topic, 0, -1)
		var e *Error
		if !errors.As(err, &e) || !strings.Contains(err.Error(), "SASL") || !strings.Contains(err.Error(), "authentication as") {
			t.Fatalf("%s with a wrong password: %v", u.Mechanism, err)
		}
		t.Logf("%s with a wrong password: %v", u.Mechanism, err)
	}

	// No SASL against a SASL listener: the broker refuses the requests.
	none := newClient(t, Config{Brokers: brokers, RequestTimeout: 5 * time.Second})
	_, err := none.ListOffset(testCtx(t), topic, 0, -1)
	if err == nil {
		t.Fatal("no SASL against a SASL listener: no error")
	}
	t.Logf("no SASL against a SASL listener: %v", err)
}

// TestSCRAMConcurrentHandshakes runs many SCRAM handshakes at once over
// pooled connections. The server's SCRAM messages alias a pooled response
// buffer; they were read after the buffer went back to the pool, where
// another connection's read could fill it (the race detector flags it).
func TestSCRAMConcurrentHandshakes(t *testing.T) {
	tc := newCluster(t, kfake.SeedTopics(1, "a"), kfake.EnableSASL(), kfake.Superuser("SCRAM-SHA-256", "u", "p"))
	var wg sync.WaitGroup
	for range 8 {
		c := newClient(t, Config{Brokers: tc.addrs, ConnsPerBroker: 4,
			SASL: &SASLConfig{Mechanism: "SCRAM-SHA-256", Username: "u", Password: "p"}})
		for range 8 {
			wg.Go(func() {
				if _, err := c.ListOffset(testCtx(t), "a", 0, -1); err != nil {
					t.Error(err)
				}
			})
		}
	}
	wg.Wait()
}
