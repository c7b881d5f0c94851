package tlsconf

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// mtlsFixture is a server requiring client certificates from a trust store, and the certificates
// clients present.
type mtlsFixture struct {
	srv       *tlsServer
	trust     *TrustStore
	serverCAs *x509.CertPool
	clients   map[string][]tls.Certificate // by case name; nil for no certificate
}

func newMTLSFixture(t *testing.T) *mtlsFixture {
	t.Helper()
	serverCA := newTestCA(t, "Server CA")
	server := serverCA.issue(t, leafOpts{dns: []string{"mtls.example.com"}})
	store := NewStore(nil)
	certFile, keyFile := writePair(t, t.TempDir(), "server", server)
	if err := store.Add(nil, certFile, keyFile); err != nil {
		t.Fatal(err)
	}

	clientCA := newTestCA(t, "Client Root")
	intermediate := clientCA.issue(t, leafOpts{cn: "Client Issuing CA", isCA: true}).asCA()
	stranger := newTestCA(t, "Someone Else's CA")
	clientUsage := []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	chain := func(c issued, parents ...*testCA) []tls.Certificate {
		tc := *c.tls
		for _, p := range parents {
			tc.Certificate = append(tc.Certificate, p.cert.Raw)
		}
		return []tls.Certificate{tc}
	}
	clients := map[string][]tls.Certificate{
		"valid":           chain(clientCA.issue(t, leafOpts{cn: "client", usage: clientUsage})),
		"valid, no usage": chain(clientCA.issue(t, leafOpts{cn: "client", usage: []x509.ExtKeyUsage{}})),
		"valid, through an intermediate": chain(intermediate.issue(t, leafOpts{cn: "client", usage: clientUsage}),
			intermediate),
		"expired": chain(clientCA.issue(t, leafOpts{cn: "old", usage: clientUsage,
			notBefore: time.Now().Add(-72 * time.Hour), notAfter: time.Now().Add(-time.Hour)})),
		"not yet valid": chain(clientCA.issue(t, leafOpts{cn: "early", usage: clientUsage,
			notBefore: time.Now().Add(time.Hour), notAfter: time.Now().Add(72 * time.Hour)})),
		"wrong CA":             chain(stranger.issue(t, leafOpts{cn: "intruder", usage: clientUsage})),
		"server-auth only":     chain(clientCA.issue(t, leafOpts{cn: "server", usage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})),
		"revoked":              chain(clientCA.issue(t, leafOpts{serial: 0x0bad, cn: "revoked", usage: clientUsage})),
		"intermediate missing": chain(intermediate.issue(t, leafOpts{cn: "client", usage: clientUsage})),
		"no certificate":       nil,
	}

	bundle := filepath.Join(t.TempDir(), "truststore.pem")
	if err := os.WriteFile(bundle, clientCA.pem, 0o644); err != nil {
		t.Fatal(err)
	}
	trust, err := LoadTrustStore(bundle, []string{"0B:AD", "00ff00"})
	if err != nil {
		t.Fatal(err)
	}
	base := &tls.Config{GetCertificate: store.GetCertificate}
	if err := DefaultPolicy.Apply(base); err != nil {
		t.Fatal(err)
	}
	return &mtlsFixture{srv: startTLSServer(t, trust.Config(base)), trust: trust, serverCAs: serverCA.pool(), clients: clients}
}

// clientConfig makes the client present the named certificate whatever CAs the server says it
// accepts, as curl and OpenSSL do (crypto/tls would otherwise send nothing for a certificate whose
// issuer is not in the server's list).
func (f *mtlsFixture) clientConfig(name string, maxVersion uint16) *tls.Config {
	cfg := &tls.Config{ServerName: "mtls.example.com", RootCAs: f.serverCAs, MaxVersion: maxVersion}
	if certs := f.clients[name]; certs != nil {
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &certs[0], nil }
	}
	return cfg
}

// TestMutualTLS runs handshakes with each kind of client certificate, under TLS 1.3 and 1.2: a
// refused certificate ends the handshake with an alert the client sees, never an HTTP response.
func TestMutualTLS(t *testing.T) {
	f := newMTLSFixture(t)
	tests := []struct {
		client string
		want   error // nil: accepted
	}{
		{"valid", nil},
		{"valid, no usage", nil},
		{"valid, through an intermediate", nil},
		{"expired", ErrExpired},
		{"not yet valid", ErrExpired},
		{"wrong CA", ErrUntrusted},
		{"server-auth only", ErrUntrusted},
		{"intermediate missing", ErrUntrusted},
		{"revoked", ErrRevoked},
		{"no certificate", ErrNoClientCert},
	}
	for _, version := range []uint16{tls.VersionTLS13, tls.VersionTLS12} {
		for _, tt := range tests {
			t.Run(tls.VersionName(version)+"/"+tt.client, func(t *testing.T) {
				_, err := dial(f.srv.addr, f.clientConfig(tt.client, version))
				srvErr := f.srv.lastHandshake(t)
				if tt.want == nil {
					if err != nil || srvErr != nil {
						t.Fatalf("client error %v, server error %v", err, srvErr)
					}
					return
				}
				if err == nil {
					t.Fatal("the client got through")
				}
				if !isRemoteAlert(err) {
					t.Fatalf("client error %v is not a TLS alert from the server", err)
				}
				if !strings.Contains(err.Error(), "bad certificate") {
					t.Errorf("client error %v, want a bad_certificate alert", err)
				}
				if !errors.Is(srvErr, tt.want) {
					t.Fatalf("server error %v, want %v", srvErr, tt.want)
				}
			})
		}
	}
}

// TestMutualTLSPicksByCA: a crypto/tls client that lists certificates sends the one the trust
// store's CA list (ClientCAs) names.
func TestMutualTLSPicksByCA(t *testing.T) {
	f := newMTLSFixture(t)
	cfg := &tls.Config{ServerName: "mtls.example.com", RootCAs: f.serverCAs,
		Certificates: append(append([]tls.Certificate{}, f.clients["wrong CA"]...), f.clients["valid"]...)}
	if _, err := dial(f.srv.addr, cfg); err != nil {
		t.Fatal(err)
	}
	if err := f.srv.lastHandshake(t); err != nil {
		t.Fatal(err)
	}
}

// TestMutualTLSResumption checks that a resumed session is checked again: a certificate that
// expires after its session began is refused when the session is resumed.
func TestMutualTLSResumption(t *testing.T) {
	f := newMTLSFixture(t)
	var shift atomic.Int64
	f.trust.now = func() time.Time { return time.Now().Add(time.Duration(shift.Load())) }
	cfg := f.clientConfig("valid", 0)
	cfg.ClientSessionCache = tls.NewLRUClientSessionCache(4)

	if _, err := dial(f.srv.addr, cfg); err != nil {
		t.Fatal(err)
	}
	f.srv.lastHandshake(t)
	cs, err := dial(f.srv.addr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	f.srv.lastHandshake(t)
	if !cs.DidResume {
		t.Fatal("the second connection did not resume its session")
	}
	shift.Store(int64(48 * time.Hour)) // the certificate is valid for a day
	_, err = dial(f.srv.addr, cfg)
	if !isRemoteAlert(err) {
		t.Fatalf("client error %v, want a TLS alert", err)
	}
	if srvErr := f.srv.lastHandshake(t); !errors.Is(srvErr, ErrExpired) {
		t.Fatalf("server error %v, want ErrExpired", srvErr)
	}
}

func TestVerifyClient(t *testing.T) {
	f := newMTLSFixture(t)
	raw := func(name string) [][]byte { return f.clients[name][0].Certificate }
	if _, err := f.trust.VerifyClient(nil); !errors.Is(err, ErrNoClientCert) {
		t.Fatalf("no certificates: %v", err)
	}
	if _, err := f.trust.VerifyClient([][]byte{[]byte("junk")}); !errors.Is(err, ErrUntrusted) {
		t.Fatalf("junk: %v", err)
	}
	leaf, err := f.trust.VerifyClient(raw("valid, through an intermediate"))
	if err != nil || leaf.Subject.CommonName != "client" {
		t.Fatalf("got %v, %v", leaf, err)
	}
	for name, want := range map[string]error{"revoked": ErrRevoked, "expired": ErrExpired, "wrong CA": ErrUntrusted} {
		_, err := f.trust.VerifyClient(raw(name))
		if !errors.Is(err, want) {
			t.Errorf("%s: %v, want %v", name, err, want)
		}
		for _, other := range []error{ErrNoClientCert, ErrUntrusted, ErrExpired, ErrRevoked} {
			if other != want && errors.Is(err, other) {
				t.Errorf("%s: the error also wraps %v", name, other)
			}
		}
	}
}

func TestRevokedSerials(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{"0B:AD", "bad"},
		{"0x0bad", "bad"},
		{"BAD", "bad"},
		{"00 0b ad", "bad"},
		{"00", "0"},
		{"a1:a1:a1:a1:a1:a1:a1:a1:a1:a1:a1:a1:a1:a1:a1:a1", "a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1"},
	}
	for _, tt := range tests {
		if got, err := normalizeSerial(tt.in); err != nil || got != tt.want {
			t.Errorf("normalizeSerial(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
	for _, bad := range []string{"", "0x", "12g4", "-1"} {
		if _, err := normalizeSerial(bad); err == nil {
			t.Errorf("normalizeSerial(%q) accepted", bad)
		}
	}
	ca := newTestCA(t, "CA")
	if _, err := ParseTrustStore(ca.pem, []string{"zz"}); err == nil || !strings.Contains(err.Error(), `"zz"`) {
		t.Errorf("a bad serial: %v", err)
	}
	if _, err := ParseTrustStore([]byte("nothing"), nil); err == nil {
		t.Error("a trust store with no certificate was accepted")
	}
	if _, err := LoadTrustStore(filepath.Join(t.TempDir(), "missing.pem"), nil); err == nil {
		t.Error("a missing trust store file was accepted")
	}
}

// TestTrustConfigKeepsBase checks what Config changes and what it keeps.
func TestTrustConfigKeepsBase(t *testing.T) {
	ca := newTestCA(t, "CA")
	trust, err := ParseTrustStore(ca.pem, nil)
	if err != nil {
		t.Fatal(err)
	}
	called := false
	base := &tls.Config{
		MinVersion:         tls.VersionTLS13,
		VerifyConnection:   func(tls.ConnectionState) error { called = true; return nil },
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) { return nil, nil },
	}
	cfg := trust.Config(base)
	if cfg == base || base.ClientAuth != tls.NoClientCert || base.GetConfigForClient == nil {
		t.Fatal("Config modified its base")
	}
	if cfg.MinVersion != tls.VersionTLS13 || cfg.ClientAuth != tls.RequestClientCert || cfg.GetConfigForClient != nil {
		t.Fatalf("MinVersion %x, ClientAuth %v, GetConfigForClient set %v", cfg.MinVersion, cfg.ClientAuth,
			cfg.GetConfigForClient != nil)
	}
	leaf := ca.issue(t, leafOpts{cn: "c"})
	if err := cfg.VerifyConnection(tls.ConnectionState{PeerCertificates: []*x509.Certificate{leaf.tls.Leaf}}); err != nil {
		t.Fatal(err)
	}
	if !called {
		t.Fatal("base's VerifyConnection was not called")
	}
	if trust.Config(nil) == nil || trust.Len() != 1 {
		t.Fatal("Config(nil) or Len")
	}
}
