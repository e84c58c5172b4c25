package kafkawire

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/plain"
)

// selfSigned returns a self-signed certificate for 127.0.0.1 and its PEM.
func selfSigned(t *testing.T) (tls.Certificate, []byte, []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "kafkawire test broker"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:              []string{"broker.test"},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return cert, certPEM, keyPEM
}

// TestTLS: verification on without the CA fails with a clear error, off
// works, and on with the CA file works.
func TestTLS(t *testing.T) {
	cert, certPEM, _ := selfSigned(t)
	tc := newCluster(t, kfake.SeedTopics(1, "s"), kfake.TLS(&tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}))
	produce(t, tc.addrs, []kgo.Opt{kgo.DialTLSConfig(&tls.Config{InsecureSkipVerify: true})},
		makeRecords("s", 0, 3, time.Now(), "s")...)
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}

	verify := newClient(t, Config{Brokers: tc.addrs[:1], TLS: &TLSConfig{Verify: true}, RequestTimeout: 5 * time.Second})
	_, err := verify.ListOffset(testCtx(t), "s", 0, -1)
	var e *Error
	if !errors.As(err, &e) || !strings.Contains(err.Error(), "TLS handshake") || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("verify without the CA: %v", err)
	}
	t.Logf("verify without the CA: %v", err)

	for name, cfg := range map[string]*TLSConfig{
		"no verify":          {Verify: false},
		"verify with CA":     {Verify: true, CAFile: caFile},
		"verify server name": {Verify: true, CAFile: caFile, ServerName: "broker.test"},
	} {
		c := newClient(t, Config{Brokers: tc.addrs[:1], TLS: cfg})
		res, err := c.Fetch(testCtx(t), "s", 0, 0)
		if err != nil || len(res.Records) != 3 {
			t.Fatalf("%s: %v", name, err)
		}
		res.Release()
	}

	wrongName := newClient(t, Config{Brokers: tc.addrs[:1], TLS: &TLSConfig{Verify: true, CAFile: caFile, ServerName: "other.test"}})
	if _, err := wrongName.ListOffset(testCtx(t), "s", 0, -1); err == nil || !strings.Contains(err.Error(), "other.test") {
		t.Fatalf("verify a wrong server name: %v", err)
	}

	// Bad files are configuration errors.
	if _, err := New(Config{Brokers: tc.addrs, TLS: &TLSConfig{CAFile: filepath.Join(t.TempDir(), "none.pem")}}); err == nil {
		t.Error("New with a missing CA file succeeded")
	}
	if _, err := New(Config{Brokers: tc.addrs, TLS: &TLSConfig{CAFile: caFile, CertFile: caFile}}); err == nil {
		t.Error("New with a cert file but no key file succeeded")
	}
}

// TestTLSClientCertificate: a broker that requires a client certificate
// accepts the configured one.
func TestTLSClientCertificate(t *testing.T) {
	cert, certPEM, keyPEM := selfSigned(t)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(certPEM)
	tc := newCluster(t, kfake.SeedTopics(1, "s"), kfake.TLS(&tls.Config{
		Certificates: []tls.Certificate{cert},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    pool,
		MinVersion:   tls.VersionTLS12,
	}))
	dir := t.TempDir()
	caFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(caFile, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
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
// and a wrong password.
func TestSASL(t *testing.T) {
	tc := newCluster(t, kfake.SeedTopics(1, "a"), kfake.EnableSASL(),
		kfake.Superuser("PLAIN", "plainuser", "plainpass"),
		kfake.Superuser("SCRAM-SHA-256", "user256", "pass256"),
		kfake.Superuser("SCRAM-SHA-512", "user,=512", "pass512"),
	)
	produce(t, tc.addrs, []kgo.Opt{kgo.SASL(plain.Auth{User: "plainuser", Pass: "plainpass"}.AsMechanism())},
		makeRecords("a", 0, 2, time.Now(), "a")...)

	for _, tt := range []struct {
		mech, user, pass string
	}{
		{"", "plainuser", "plainpass"}, // PLAIN is the default
		{"PLAIN", "plainuser", "plainpass"},
		{"SCRAM-SHA-256", "user256", "pass256"},
		{"SCRAM-SHA-512", "user,=512", "pass512"},
	} {
		c := newClient(t, Config{Brokers: tc.addrs[:1], SASL: &SASLConfig{Mechanism: tt.mech, Username: tt.user, Password: tt.pass}})
		res, err := c.Fetch(testCtx(t), "a", 0, 0)
		if err != nil || len(res.Records) != 2 {
			t.Fatalf("%s as %s: %v", tt.mech, tt.user, err)
		}
		res.Release()

		bad := newClient(t, Config{Brokers: tc.addrs[:1], RequestTimeout: 5 * time.Second,
			SASL: &SASLConfig{Mechanism: tt.mech, Username: tt.user, Password: "wrong"}})
		_, err = bad.ListOffset(testCtx(t), "a", 0, -1)
		var e *Error
		if !errors.As(err, &e) || !strings.Contains(err.Error(), "SASL") || !strings.Contains(err.Error(), "authentication as") {
			t.Fatalf("%s with a wrong password: %v", tt.mech, err)
		}
		t.Logf("%s with a wrong password: %v", tt.mech, err)
	}

	// No SASL against a SASL cluster: the broker refuses the requests.
	none := newClient(t, Config{Brokers: tc.addrs[:1], RequestTimeout: 5 * time.Second})
	if _, err := none.ListOffset(testCtx(t), "a", 0, -1); err == nil {
		t.Fatal("no SASL against a SASL cluster: no error")
	}
	if _, err := New(Config{Brokers: tc.addrs, SASL: &SASLConfig{Mechanism: "GSSAPI", Username: "u"}}); err == nil {
		t.Error("New with an unknown mechanism succeeded")
	}
}
