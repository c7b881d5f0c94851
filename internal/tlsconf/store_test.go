package tlsconf

import (
	"context"
	"crypto/tls"
	"errors"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestStoreSNI picks among three certificates, an exact name, a wildcard and the default, by the
// server name real clients send.
func TestStoreSNI(t *testing.T) {
	ca := newTestCA(t, "SNI CA")
	dir := t.TempDir()
	exact := ca.issue(t, leafOpts{serial: 0xe1, dns: []string{"api.example.com"}})
	wild := ca.issue(t, leafOpts{serial: 0xa2, dns: []string{"*.apps.example.com"}})
	def := ca.issue(t, leafOpts{serial: 0xd3, dns: []string{"default.example.com"}, ips: []net.IP{net.IPv4(127, 0, 0, 1)}})

	store := NewStore(nil)
	for name, c := range map[string]issued{"exact": exact, "wild": wild, "default": def} {
		certFile, keyFile := writePair(t, dir, name, c)
		if err := store.Add(nil, certFile, keyFile); err != nil {
			t.Fatal(err)
		}
	}
	if err := store.SetDefault("default.example.com"); err != nil {
		t.Fatal(err)
	}
	srv := startTLSServer(t, &tls.Config{GetCertificate: store.GetCertificate})

	tests := []struct {
		serverName string
		want       string
		verify     bool // check the chain and name as a browser would
	}{
		{"api.example.com", "e1", true},
		{"API.Example.COM", "e1", false},
		{"shop.apps.example.com", "a2", true},
		{"a.b.apps.example.com", "d3", false}, // a wildcard stands for one label only
		{"apps.example.com", "d3", false},
		{"unknown.test", "d3", false},
		{"", "d3", false}, // no SNI, as when dialling an IP address
	}
	for _, tt := range tests {
		t.Run("sni="+tt.serverName, func(t *testing.T) {
			cfg := &tls.Config{ServerName: tt.serverName, InsecureSkipVerify: !tt.verify, RootCAs: ca.pool()}
			cs, err := dial(srv.addr, cfg)
			if err != nil {
				t.Fatal(err)
			}
			if got := serial(cs); got != tt.want {
				t.Fatalf("got certificate %s, want %s", got, tt.want)
			}
		})
	}
}

// TestStoreUnknownNameWithoutDefault: with no default, a name nobody serves ends the handshake.
func TestStoreUnknownNameWithoutDefault(t *testing.T) {
	ca := newTestCA(t, "SNI CA")
	certFile, keyFile := writePair(t, t.TempDir(), "api", ca.issue(t, leafOpts{dns: []string{"api.example.com"}}))
	store := NewStore(nil)
	if err := store.Add(nil, certFile, keyFile); err != nil {
		t.Fatal(err)
	}
	srv := startTLSServer(t, &tls.Config{GetCertificate: store.GetCertificate})

	for _, name := range []string{"other.example.com", ""} {
		_, err := dial(srv.addr, &tls.Config{ServerName: name, InsecureSkipVerify: true})
		if !isRemoteAlert(err) {
			t.Fatalf("sni=%q: client error %v, want a TLS alert", name, err)
		}
		if err := srv.lastHandshake(t); !errors.Is(err, ErrNoCertificate) {
			t.Fatalf("sni=%q: server error %v, want ErrNoCertificate", name, err)
		}
	}
	if _, err := dial(srv.addr, &tls.Config{ServerName: "api.example.com", RootCAs: ca.pool()}); err != nil {
		t.Fatalf("the served name fails too: %v", err)
	}
	srv.lastHandshake(t)
}

func TestStoreAddErrors(t *testing.T) {
	ca := newTestCA(t, "Add CA")
	dir := t.TempDir()
	good := ca.issue(t, leafOpts{dns: []string{"a.example.com", "*.wild.example.com"}})
	other := ca.issue(t, leafOpts{dns: []string{"a.example.com"}})
	goodCert, goodKey := writePair(t, dir, "good", good)
	_, otherKey := writePair(t, dir, "other", other)
	garbage := filepath.Join(dir, "garbage.pem")
	if err := os.WriteFile(garbage, []byte("not PEM at all"), 0o600); err != nil {
		t.Fatal(err)
	}
	combined := filepath.Join(dir, "combined.pem")
	if err := os.WriteFile(combined, append(append([]byte{}, good.certPEM...), good.keyPEM...), 0o600); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name      string
		names     []string
		cert, key string
		wantIs    error
		wantText  []string
	}{
		{"missing certificate file", nil, filepath.Join(dir, "nope.pem"), goodKey, fs.ErrNotExist, []string{"nope.pem"}},
		{"missing key file", nil, goodCert, filepath.Join(dir, "nope-key.pem"), fs.ErrNotExist, []string{"nope-key.pem"}},
		{"key of another certificate", nil, goodCert, otherKey, ErrKeyMismatch, []string{"other-key.pem", "good.pem"}},
		{"not PEM", nil, garbage, goodKey, nil, []string{"no PEM CERTIFICATE block"}},
		{"names not covered", []string{"a.example.com", "b.example.com", "x.y.wild.example.com"}, goodCert, goodKey,
			ErrNameNotCovered, []string{"b.example.com, x.y.wild.example.com", "it covers a.example.com, *.wild.example.com"}},
		{"wildcard not in the certificate", []string{"*.example.com"}, goodCert, goodKey, ErrNameNotCovered, []string{"*.example.com"}},
		{"bad name", []string{"exa mple.com"}, goodCert, goodKey, nil, []string{"cannot"}},
		{"too broad a wildcard", []string{"*.com"}, goodCert, goodKey, nil, []string{"at least two labels"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			store := NewStore(nil)
			err := store.Add(tt.names, tt.cert, tt.key)
			if err == nil {
				t.Fatal("no error")
			}
			if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
				t.Fatalf("error %v is not %v", err, tt.wantIs)
			}
			for _, want := range tt.wantText {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not say %q", err, want)
				}
			}
			if _, err := store.GetCertificate(&tls.ClientHelloInfo{ServerName: "a.example.com"}); err == nil {
				t.Error("a failed Add left a certificate behind")
			}
		})
	}

	t.Run("a wildcard SAN covers one label", func(t *testing.T) {
		store := NewStore(nil)
		if err := store.Add([]string{"one.wild.example.com", "*.wild.example.com", "A.Example.com."}, goodCert, goodKey); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("certificate and key in one file", func(t *testing.T) {
		if err := NewStore(nil).Add(nil, combined, combined); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("duplicate name", func(t *testing.T) {
		store := NewStore(nil)
		if err := store.Add(nil, goodCert, goodKey); err != nil {
			t.Fatal(err)
		}
		otherCert, otherKey := writePair(t, dir, "other2", other)
		if err := store.Add(nil, otherCert, otherKey); !errors.Is(err, ErrDuplicateName) {
			t.Fatalf("got %v, want ErrDuplicateName", err)
		}
	})
	t.Run("expired certificate is added with a warning", func(t *testing.T) {
		old := ca.issue(t, leafOpts{dns: []string{"old.example.com"}, notBefore: time.Now().Add(-48 * time.Hour),
			notAfter: time.Now().Add(-24 * time.Hour)})
		certFile, keyFile := writePair(t, dir, "old", old)
		log, buf := newTestLogger()
		store := NewStore(log)
		if err := store.Add(nil, certFile, keyFile); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(buf.String(), "level=WARN") || !strings.Contains(buf.String(), "expired") {
			t.Fatalf("no warning logged: %s", buf)
		}
	})
	t.Run("SetDefault needs a served name", func(t *testing.T) {
		store := NewStore(nil)
		if err := store.SetDefault("a.example.com"); err == nil {
			t.Fatal("no error")
		}
	})
}

func TestWildcardMatches(t *testing.T) {
	tests := []struct {
		pattern, name string
		want          bool
	}{
		{"*.example.com", "a.example.com", true},
		{"*.example.com", "example.com", false},
		{"*.example.com", "a.b.example.com", false},
		{"*.example.com", ".example.com", false},
		{"*.example.com", "a.example.org", false},
		{"f*.example.com", "foo.example.com", false},
		{"api.example.com", "api.example.com", true},
		{"api.example.com", "web.example.com", false},
	}
	for _, tt := range tests {
		if got := wildcardMatches(tt.pattern, tt.name); got != tt.want {
			t.Errorf("wildcardMatches(%q, %q) = %v, want %v", tt.pattern, tt.name, got, tt.want)
		}
	}
}

// TestStoreHammer reads certificates from many goroutines while the store reloads, for the race
// detector.
func TestStoreHammer(t *testing.T) {
	ca := newTestCA(t, "Hammer CA")
	dir := t.TempDir()
	certFile, keyFile := writePair(t, dir, "h", ca.issue(t, leafOpts{dns: []string{"h.example.com"}}))
	store := NewStore(nil)
	if err := store.Add(nil, certFile, keyFile); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			hello := &tls.ClientHelloInfo{ServerName: "h.example.com"}
			for ctx.Err() == nil {
				if c, err := store.GetCertificate(hello); err != nil || c.Leaf == nil {
					t.Errorf("GetCertificate: %v", err)
					return
				}
			}
		}()
	}
	for i := 0; ctx.Err() == nil; i++ {
		writePair(t, dir, "h", ca.issue(t, leafOpts{serial: int64(i + 1), dns: []string{"h.example.com"}}))
		_ = store.Reload() // a reload may see the key of one pair with the certificate of another
	}
	wg.Wait()
}
