package acme

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// managerFor returns a Manager of dir that uses p and answers challenges on n's ports, closed when
// the test ends.
func managerFor(t *testing.T, dir string, p pebble, n *node, logs *logBuffer, tweak func(*Config)) *Manager {
	t.Helper()
	cfg := Config{
		Dir:         dir,
		CA:          p.DirURL,
		CARoots:     p.Roots,
		HTTPPort:    n.httpPort,
		TLSALPNPort: n.tlsPort,
		Logger:      logs.logger(),
	}
	if tweak != nil {
		tweak(&cfg)
	}
	m, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	return m
}

func TestManageObtainsStoresAndServes(t *testing.T) {
	logs := newLogBuffer(t)
	p := startPebble(t, pebbleOptions{AlwaysValid: true}, logs)
	n := startNode(t)
	dir := filepath.Join(t.TempDir(), "acme")
	const name = "shop.example.test"

	m := managerFor(t, dir, p, n, logs, nil)
	n.mgr.Store(m)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := m.Manage(ctx, []string{"Shop.Example.Test."}); err != nil {
		t.Fatalf("Manage: %v", err)
	}
	if got := m.Names(); !slices.Equal(got, []string{name}) {
		t.Fatalf("Names() = %q, want [%s]", got, name)
	}

	roots := x509.NewCertPool()
	roots.AddCert(p.issuingRoot(t))
	leaf, err := handshake(t, n.tlsAddr, name, roots)
	if err != nil {
		t.Fatalf("handshake for %s: %v", name, err)
	}
	if !slices.Equal(leaf.DNSNames, []string{name}) {
		t.Errorf("certificate names %q, want [%s]", leaf.DNSNames, name)
	}
	if _, err := handshake(t, n.tlsAddr, "other.example.test", roots); err == nil {
		t.Error("a handshake for a name not managed succeeded")
	}
	if _, err := m.GetCertificate(&tls.ClientHelloInfo{ServerName: "other.example.test"}); !errors.Is(err, ErrNotManaged) {
		t.Errorf("GetCertificate(other.example.test) error = %v, want ErrNotManaged", err)
	}

	// The certificate and its key are in Dir, the key readable by the owner only.
	var keys []string
	_ = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err == nil && strings.HasSuffix(path, name+".key") {
			keys = append(keys, path)
		}
		return nil
	})
	if len(keys) != 1 {
		t.Fatalf("key files for %s under %s: %q, want one", name, dir, keys)
	}
	if fi, err := os.Stat(keys[0]); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("key file %s: mode %v, %v; want 0600", keys[0], fi.Mode().Perm(), err)
	}

	// Managing the name again does nothing.
	before := p.Requests.Load()
	if err := m.Manage(ctx, []string{name}); err != nil {
		t.Fatalf("Manage again: %v", err)
	}
	if after := p.Requests.Load(); after != before {
		t.Errorf("managing a managed name again made %d requests to the CA", after-before)
	}
	m.Close()

	// A new Manager of the same directory loads the certificate from storage, with the CA gone.
	p.stop()
	m2 := managerFor(t, dir, p, n, logs, nil)
	n.mgr.Store(m2)
	ctx2, cancel2 := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel2()
	if err := m2.Manage(ctx2, []string{name}); err != nil {
		t.Fatalf("Manage with the stored certificate and no CA: %v", err)
	}
	leaf2, err := handshake(t, n.tlsAddr, name, roots)
	if err != nil {
		t.Fatalf("handshake after reload: %v", err)
	}
	if leaf2.SerialNumber.Cmp(leaf.SerialNumber) != 0 {
		t.Errorf("after reload the serial is %x, want the stored certificate's %x", leaf2.SerialNumber, leaf.SerialNumber)
	}
}

// TestChallenges obtains a certificate with each challenge validated for real: Pebble resolves the
// name to 127.0.0.1 through a test DNS server and fetches the HTTP-01 token from the node's plain
// listener, or makes a TLS-ALPN-01 handshake with its TLS listener.
func TestChallenges(t *testing.T) {
	tests := []struct {
		name      string
		tweak     func(*Config)
		answered  func(n *node) int64
		challenge string
	}{
		{
			name:      "http-01",
			tweak:     func(c *Config) { c.DisableTLSALPNChallenge = true },
			answered:  func(n *node) int64 { return n.challengeGets.Load() - n.fellThrough.Load() },
			challenge: "HTTP-01 requests answered by HTTPChallengeHandler",
		},
		{
			name:      "tls-alpn-01",
			tweak:     func(c *Config) { c.DisableHTTPChallenge = true },
			answered:  func(n *node) int64 { return n.alpnHellos.Load() },
			challenge: "TLS-ALPN-01 handshakes",
		},
	}
	resolver := startDNS(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			logs := newLogBuffer(t)
			n := startNode(t)
			p := startPebble(t, pebbleOptions{HTTPPort: n.httpPort, TLSPort: n.tlsPort, Resolver: resolver}, logs)
			m := managerFor(t, t.TempDir(), p, n, logs, tt.tweak)
			n.mgr.Store(m)
			name := tt.name + ".example.test"
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			if err := m.Manage(ctx, []string{name}); err != nil {
				t.Fatalf("Manage: %v", err)
			}
			if got := tt.answered(n); got == 0 {
				t.Errorf("no %s", tt.challenge)
			}
			roots := x509.NewCertPool()
			roots.AddCert(p.issuingRoot(t))
			if _, err := handshake(t, n.tlsAddr, name, roots); err != nil {
				t.Fatalf("handshake: %v", err)
			}
		})
	}
}

// TestRenewal gives certificates a lifetime of seconds and checks that the background maintenance
// renews the one served and serves the new one.
func TestRenewal(t *testing.T) {
	logs := newLogBuffer(t)
	p := startPebble(t, pebbleOptions{AlwaysValid: true, Validity: 6 * time.Second}, logs)
	n := startNode(t)
	m := managerFor(t, t.TempDir(), p, n, logs, nil)
	m.renewCheck = 250 * time.Millisecond
	n.mgr.Store(m)
	const name = "renew.example.test"
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := m.Manage(ctx, []string{name}); err != nil {
		t.Fatalf("Manage: %v", err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(p.issuingRoot(t))
	first, err := handshake(t, n.tlsAddr, name, roots)
	if err != nil {
		t.Fatal(err)
	}
	// CertMagic renews at a time drawn from the renewal window the CA suggests (ACME Renewal
	// Information), which Pebble makes the whole lifetime, and at the latest when a third of the
	// lifetime is left. The margin past expiry is for a slow machine.
	deadline := first.NotAfter.Add(5 * time.Second)
	for {
		leaf, err := handshake(t, n.tlsAddr, name, roots)
		if err == nil && leaf.SerialNumber.Cmp(first.SerialNumber) != 0 {
			if leaf.NotAfter.Before(first.NotAfter) {
				t.Errorf("renewed certificate expires %v, before the first's %v", leaf.NotAfter, first.NotAfter)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("still serving serial %x (expiring %v) at %v; last handshake error %v",
				first.SerialNumber, first.NotAfter, time.Now(), err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestManageRenewsAnExpiredStoredCertificate restarts a Manager after its stored certificate has
// expired: Manage renews it before returning instead of serving it.
func TestManageRenewsAnExpiredStoredCertificate(t *testing.T) {
	logs := newLogBuffer(t)
	// Short, but long enough for Pebble to suggest a renewal window (ACME Renewal Information) of a
	// few seconds, which CertMagic needs, and for a slow machine to verify the renewed certificate.
	p := startPebble(t, pebbleOptions{AlwaysValid: true, Validity: 4 * time.Second}, logs)
	n := startNode(t)
	dir := t.TempDir()
	const name = "expired.example.test"
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	roots := x509.NewCertPool()
	roots.AddCert(p.issuingRoot(t))

	m := managerFor(t, dir, p, n, logs, nil)
	n.mgr.Store(m)
	if err := m.Manage(ctx, []string{name}); err != nil {
		t.Fatalf("Manage: %v", err)
	}
	first, err := servedLeaf(n.tlsAddr, name)
	if err != nil {
		t.Fatal(err)
	}
	m.Close()
	time.Sleep(time.Until(first.NotAfter) + 1100*time.Millisecond)

	m2 := managerFor(t, dir, p, n, logs, nil)
	n.mgr.Store(m2)
	if err := m2.Manage(ctx, []string{name}); err != nil {
		t.Fatalf("Manage with an expired stored certificate: %v", err)
	}
	leaf, err := handshake(t, n.tlsAddr, name, roots)
	if err != nil {
		t.Fatalf("handshake after renewal: %v", err)
	}
	if leaf.SerialNumber.Cmp(first.SerialNumber) == 0 {
		t.Errorf("still serving the expired certificate %x", first.SerialNumber)
	}
}

// stallingCA is an ACME endpoint that never answers until the test ends.
func stallingCA(t *testing.T) (string, *x509.CertPool) {
	t.Helper()
	release := make(chan struct{})
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	t.Cleanup(func() {
		close(release)
		srv.Close()
	})
	roots := x509.NewCertPool()
	roots.AddCert(srv.Certificate())
	return srv.URL + "/dir", roots
}

func TestManageEndsWithItsContext(t *testing.T) {
	logs := newLogBuffer(t)
	caURL, roots := stallingCA(t)
	n := startNode(t)
	m, err := New(Config{Dir: t.TempDir(), CA: caURL, CARoots: roots, HTTPPort: n.httpPort, TLSALPNPort: n.tlsPort,
		Logger: logs.logger()})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	err = m.Manage(ctx, []string{"slow.example.test"})
	if elapsed := time.Since(start); elapsed > 3*time.Second {
		t.Errorf("Manage returned after %v with a 300ms context", elapsed)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Manage error = %v, want context.DeadlineExceeded", err)
	}
	if err != nil && !strings.Contains(err.Error(), "slow.example.test") {
		t.Errorf("Manage error %q does not name the domain", err)
	}
	if got := m.Names(); len(got) != 0 {
		t.Errorf("Names() = %q after a failed Manage, want none", got)
	}
}

func TestCloseEndsManage(t *testing.T) {
	logs := newLogBuffer(t)
	caURL, roots := stallingCA(t)
	n := startNode(t)
	m, err := New(Config{Dir: t.TempDir(), CA: caURL, CARoots: roots, HTTPPort: n.httpPort, TLSALPNPort: n.tlsPort,
		Logger: logs.logger()})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- m.Manage(context.Background(), []string{"slow.example.test"}) }()
	time.Sleep(200 * time.Millisecond) // let it reach the CA
	closed := make(chan struct{})
	go func() {
		m.Close()
		close(closed)
	}()
	select {
	case err := <-done:
		if !errors.Is(err, ErrClosed) {
			t.Errorf("Manage error = %v, want ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Manage still running 5s after Close")
	}
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("Close still running 5s after Manage returned")
	}
	if err := m.Manage(context.Background(), []string{"shop.example.test"}); !errors.Is(err, ErrClosed) {
		t.Errorf("Manage after Close: %v, want ErrClosed", err)
	}
	if _, err := m.GetCertificate(&tls.ClientHelloInfo{ServerName: "slow.example.test"}); !errors.Is(err, ErrClosed) {
		t.Errorf("GetCertificate after Close: %v, want ErrClosed", err)
	}
	m.Close() // a second Close does nothing
}

func TestManageRefusesInvalidNames(t *testing.T) {
	m, err := New(Config{Dir: t.TempDir(), CA: "https://127.0.0.1:1/dir"})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	err = m.Manage(context.Background(), []string{"shop.example.test", "*.example.test", "localhost"})
	if !errors.Is(err, ErrInvalidName) {
		t.Fatalf("Manage error = %v, want ErrInvalidName", err)
	}
	for _, want := range []string{"*.example.test", "localhost"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
	if got := m.Names(); len(got) != 0 {
		t.Errorf("Names() = %q, want none: an invalid name fails the whole call", got)
	}
}

func TestBeforeManage(t *testing.T) {
	m, err := New(Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if _, err := m.GetCertificate(&tls.ClientHelloInfo{ServerName: "shop.example.test"}); !errors.Is(err, ErrNotManaged) {
		t.Errorf("GetCertificate before Manage: %v, want ErrNotManaged", err)
	}
	h := m.HTTPChallengeHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusTeapot)
	}))
	for _, path := range []string{"/", "/.well-known/acme-challenge/abc"} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "http://shop.example.test"+path, nil))
		if rec.Code != http.StatusTeapot {
			t.Errorf("GET %s: status %d, want the next handler's %d", path, rec.Code, http.StatusTeapot)
		}
	}
	if got := m.Names(); len(got) != 0 {
		t.Errorf("Names() = %q, want none", got)
	}
}

// TestChallengeHandlerPassesOnOtherRequests checks that once a Manager is running, requests that
// are not a challenge in progress reach the next handler.
func TestChallengeHandlerPassesOnOtherRequests(t *testing.T) {
	logs := newLogBuffer(t)
	p := startPebble(t, pebbleOptions{AlwaysValid: true}, logs)
	n := startNode(t)
	m := managerFor(t, t.TempDir(), p, n, logs, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := m.Manage(ctx, []string{"pass.example.test"}); err != nil {
		t.Fatal(err)
	}
	h := m.HTTPChallengeHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusTeapot)
	}))
	for _, tc := range []struct{ method, path string }{
		{http.MethodGet, "/"},
		{http.MethodGet, "/.well-known/acme-challenge/not-a-token"},
		{http.MethodPost, "/.well-known/acme-challenge/abc"},
	} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(tc.method, "http://pass.example.test"+tc.path, nil))
		if rec.Code != http.StatusTeapot {
			t.Errorf("%s %s: status %d, want the next handler's %d", tc.method, tc.path, rec.Code, http.StatusTeapot)
		}
	}
}
