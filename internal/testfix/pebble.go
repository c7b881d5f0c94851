package testfix

import (
	"crypto/x509"
	"encoding/pem"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/letsencrypt/pebble/v2/ca"
	"github.com/letsencrypt/pebble/v2/db"
	"github.com/letsencrypt/pebble/v2/va"
	"github.com/letsencrypt/pebble/v2/wfe"
)

// PebbleOptions configures a Pebble.
type PebbleOptions struct {
	// alwaysValid makes every challenge valid without the validation authority contacting the
	// node (PEBBLE_VA_ALWAYS_VALID). Otherwise it validates for real: it resolves names with
	// resolver and connects to httpPort (HTTP-01) and tlsPort (TLS-ALPN-01).
	AlwaysValid       bool
	HTTPPort, TLSPort int
	Resolver          string
	// validity is the lifetime of the certificates it issues; 0 for Pebble's 90 days.
	Validity time.Duration
}

// Pebble is a running Pebble.
type Pebble struct {
	DirURL string         // the ACME directory
	Roots  *x509.CertPool // trusts the HTTPS of the directory and management endpoints
	ACME   *httptest.Server
	Mgmt   *httptest.Server
	// Requests counts the requests to the ACME endpoint.
	Requests atomic.Int64
}

// StartPebble starts Pebble, Let's Encrypt's ACME test server, in the test process from its Go
// packages (wired as its command wires them: an in-memory database, the CA, the validation authority
// and the web front end, served over HTTPS on random loopback ports); it logs to out and stops when
// the test ends. No public CA is ever contacted.
func StartPebble(t testing.TB, opts PebbleOptions, out io.Writer) *Pebble {
	t.Helper()
	// Pebble reads these when its parts are made; they do not change a Pebble already running.
	t.Setenv("PEBBLE_VA_NOSLEEP", "1")      // no random sleep before validating
	t.Setenv("PEBBLE_WFE_NONCEREJECT", "0") // no nonces rejected at random
	t.Setenv("PEBBLE_AUTHZREUSE", "0")      // every order validates its challenges again
	t.Setenv("PEBBLE_VA_ALWAYS_VALID", "0")
	if opts.AlwaysValid {
		t.Setenv("PEBBLE_VA_ALWAYS_VALID", "1")
	}
	logger := log.New(out, "pebble ", log.Lmicroseconds)
	store := db.NewMemoryStore()
	profile := ca.Profile{Description: "test", ValidityPeriod: uint64(opts.Validity / time.Second)}
	authority := ca.New(logger, store, "", "ecdsa", 0, 1, map[string]ca.Profile{"default": profile})
	validator := va.New(logger, opts.HTTPPort, opts.TLSPort, false, opts.Resolver, store)
	front := wfe.New(logger, store, validator, authority, []string{"pebble.letsencrypt.org"}, false, false, 0, 0)

	p := &Pebble{}
	handler := front.Handler()
	p.ACME = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.Requests.Add(1)
		handler.ServeHTTP(w, r)
	}))
	p.ACME.Config.ErrorLog = logger
	p.ACME.StartTLS()
	p.Mgmt = httptest.NewUnstartedServer(front.ManagementHandler())
	p.Mgmt.Config.ErrorLog = logger
	p.Mgmt.StartTLS()
	t.Cleanup(p.Stop)

	p.DirURL = p.ACME.URL + wfe.DirectoryPath
	p.Roots = x509.NewCertPool()
	p.Roots.AddCert(p.ACME.Certificate())
	return p
}

// Stop stops both of Pebble's endpoints; its certificates stay valid.
func (p *Pebble) Stop() {
	p.ACME.Close()
	p.Mgmt.Close()
}

// IssuingRoot fetches the root Pebble issues under from its management endpoint.
func (p *Pebble) IssuingRoot(t testing.TB) *x509.Certificate {
	t.Helper()
	resp, err := p.Mgmt.Client().Get(p.Mgmt.URL + wfe.RootCertPath + "0")
	if err != nil {
		t.Fatalf("fetching Pebble's root: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("fetching Pebble's root: status %d, %v", resp.StatusCode, err)
	}
	block, _ := pem.Decode(body)
	if block == nil {
		t.Fatalf("Pebble's root is not PEM: %q", body)
	}
	root, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return root
}
