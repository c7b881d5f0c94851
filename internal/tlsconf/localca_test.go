package tlsconf

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestLocalCACreatedOnce(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data", "ca")
	ca, err := LoadOrCreateCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	c := ca.Certificate()
	if c.Subject.CommonName != CACommonName || !c.IsCA || !c.BasicConstraintsValid {
		t.Fatalf("CA certificate: CN %q, IsCA %v", c.Subject.CommonName, c.IsCA)
	}
	if k, ok := c.PublicKey.(*ecdsa.PublicKey); !ok || k.Curve != elliptic.P256() {
		t.Fatalf("CA key is %T, want ECDSA P-256", c.PublicKey)
	}
	if years := c.NotAfter.Sub(c.NotBefore).Hours() / 24 / 365; years < 9.9 || years > 10.1 {
		t.Fatalf("CA valid for %.1f years, want 10", years)
	}
	if ca.CertPath() != filepath.Join(dir, "ca.pem") {
		t.Fatalf("CertPath %s", ca.CertPath())
	}
	if runtime.GOOS != "windows" {
		for file, want := range map[string]os.FileMode{"ca.pem": 0o644, "ca-key.pem": 0o600} {
			fi, err := os.Stat(filepath.Join(dir, file))
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode().Perm() != want {
				t.Errorf("%s has mode %#o, want %#o", file, fi.Mode().Perm(), want)
			}
		}
	}

	again, err := LoadOrCreateCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	if again.Certificate().SerialNumber.Cmp(c.SerialNumber) != 0 || !again.Certificate().Equal(c) {
		t.Fatal("the second load made a new CA")
	}
}

func TestLocalCARefusesAnExposedKey(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("Windows has no file modes to check")
	}
	dir := t.TempDir()
	if _, err := LoadOrCreateCA(dir); err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(dir, CAKeyFile)
	for _, mode := range []os.FileMode{0o644, 0o640, 0o604} {
		if err := os.Chmod(keyFile, mode); err != nil {
			t.Fatal(err)
		}
		_, err := LoadOrCreateCA(dir)
		if !errors.Is(err, ErrInsecureKey) {
			t.Fatalf("mode %#o: got %v, want ErrInsecureKey", mode, err)
		}
		if !strings.Contains(err.Error(), "chmod 600 "+keyFile) {
			t.Errorf("the error does not say how to fix it: %v", err)
		}
	}
	if err := os.Chmod(keyFile, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOrCreateCA(dir); err != nil {
		t.Fatal(err)
	}
}

func TestLocalCAHalfPresent(t *testing.T) {
	dir := t.TempDir()
	if _, err := LoadOrCreateCA(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, CAKeyFile)); err != nil {
		t.Fatal(err)
	}
	_, err := LoadOrCreateCA(dir)
	if err == nil || !strings.Contains(err.Error(), "remove "+filepath.Join(dir, CACertFile)) {
		t.Fatalf("got %v, want an error saying to remove ca.pem", err)
	}
}

func TestLocalCAIssue(t *testing.T) {
	dir := t.TempDir()
	ca, err := LoadOrCreateCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	names := []string{"localhost", "127.0.0.1", "::1", "shop.localhost"}
	start := time.Now()
	cert, err := ca.Issue(names, 0)
	if err != nil {
		t.Fatal(err)
	}
	leaf := cert.Leaf
	roots := x509.NewCertPool()
	roots.AddCert(ca.Certificate())
	for _, host := range []string{"localhost", "shop.localhost", "127.0.0.1", "::1"} {
		if _, err := leaf.Verify(x509.VerifyOptions{DNSName: host, Roots: roots,
			KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
			t.Errorf("verify for %s: %v", host, err)
		}
	}
	if _, err := leaf.Verify(x509.VerifyOptions{DNSName: "example.com", Roots: roots}); err == nil {
		t.Error("the certificate verifies for a name it was not issued for")
	}
	if !slices.Equal(leaf.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}) || leaf.IsCA {
		t.Errorf("usage %v, IsCA %v", leaf.ExtKeyUsage, leaf.IsCA)
	}
	if k, ok := leaf.PublicKey.(*ecdsa.PublicKey); !ok || k.Curve != elliptic.P256() {
		t.Errorf("leaf key is %T, want ECDSA P-256", leaf.PublicKey)
	}
	if leaf.Subject.CommonName != "localhost" {
		t.Errorf("common name %q, want the first name", leaf.Subject.CommonName)
	}
	if d := start.Add(-LeafBackdate).Sub(leaf.NotBefore); d < -5*time.Second || d > 5*time.Second {
		t.Errorf("NotBefore %v, want an hour before issuance", leaf.NotBefore)
	}
	if d := start.Add(MaxLeafValidity).Sub(leaf.NotAfter); d < -5*time.Second || d > 5*time.Second {
		t.Errorf("NotAfter %v, want 825 days after issuance", leaf.NotAfter)
	}

	t.Run("kept and reused for the same names", func(t *testing.T) {
		again, err := ca.Issue([]string{"::1", "Shop.Localhost", "127.0.0.1", "localhost", "localhost"}, 0)
		if err != nil {
			t.Fatal(err)
		}
		if again.Leaf.SerialNumber.Cmp(leaf.SerialNumber) != 0 {
			t.Fatal("the same names got a new certificate")
		}
		reloaded, err := LoadOrCreateCA(dir)
		if err != nil {
			t.Fatal(err)
		}
		third, err := reloaded.Issue(names, 0)
		if err != nil {
			t.Fatal(err)
		}
		if third.Leaf.SerialNumber.Cmp(leaf.SerialNumber) != 0 {
			t.Fatal("a reloaded CA did not reuse the kept certificate")
		}
	})
	t.Run("reissued when it would outlive the validity asked for", func(t *testing.T) {
		short, err := ca.Issue(names, 48*time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		if short.Leaf.SerialNumber.Cmp(leaf.SerialNumber) == 0 {
			t.Fatal("a 48-hour request got the 825-day certificate")
		}
		if d := short.Leaf.NotAfter.Sub(time.Now()); d > 48*time.Hour || d < 47*time.Hour {
			t.Fatalf("validity %v, want 48h", d)
		}
		// Under LeafRenewBefore, it is issued anew each time.
		again, err := ca.Issue(names, 48*time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		if again.Leaf.SerialNumber.Cmp(short.Leaf.SerialNumber) == 0 {
			t.Fatal("a certificate with 2 days left was reused")
		}
	})
	t.Run("validity capped", func(t *testing.T) {
		long, err := ca.Issue([]string{"long.localhost"}, 5000*24*time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		if d := long.Leaf.NotAfter.Sub(long.Leaf.NotBefore); d > MaxLeafValidity+LeafBackdate {
			t.Fatalf("validity %v exceeds the cap", d)
		}
	})
	t.Run("bad requests", func(t *testing.T) {
		for _, names := range [][]string{nil, {"bad name"}, {"*"}, {"fe80::1%eth0"}} {
			if _, err := ca.Issue(names, 0); err == nil {
				t.Errorf("Issue(%q) succeeded", names)
			}
		}
		if _, err := ca.Issue([]string{"localhost"}, -time.Hour); err == nil {
			t.Error("a negative validity was accepted")
		}
	})
}

// TestLocalCAServesHTTPS serves an issued certificate from its kept files through a Store, to a
// client that trusts the CA.
func TestLocalCAServesHTTPS(t *testing.T) {
	ca, err := LoadOrCreateCA(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	names := []string{"localhost", "127.0.0.1"}
	if _, err := ca.Issue(names, 0); err != nil {
		t.Fatal(err)
	}
	certFile, keyFile, err := ca.LeafPaths(names)
	if err != nil {
		t.Fatal(err)
	}
	store := NewStore(nil)
	if err := store.Add(names, certFile, keyFile); err != nil {
		t.Fatal(err)
	}
	if err := store.SetDefault("127.0.0.1"); err != nil {
		t.Fatal(err)
	}
	cfg := &tls.Config{GetCertificate: store.GetCertificate}
	if err := DefaultPolicy.Apply(cfg); err != nil {
		t.Fatal(err)
	}
	srv := startTLSServer(t, cfg)
	roots := x509.NewCertPool()
	roots.AddCert(ca.Certificate())
	for _, name := range []string{"localhost", ""} { // "": verified against 127.0.0.1, with no SNI
		cfg := &tls.Config{RootCAs: roots, ServerName: name}
		if name == "" {
			cfg.ServerName = "127.0.0.1"
		}
		if _, err := dial(srv.addr, cfg); err != nil {
			t.Fatalf("%q: %v", name, err)
		}
		srv.lastHandshake(t)
	}
}

// TestLocalCAOpenSSLVerify checks an issued certificate with OpenSSL, as a system tool sees it.
func TestLocalCAOpenSSLVerify(t *testing.T) {
	openssl, err := exec.LookPath("openssl")
	if err != nil {
		t.Skip("openssl is not on PATH; the chain is still checked with crypto/x509 in TestLocalCAIssue")
	}
	dir := t.TempDir()
	ca, err := LoadOrCreateCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	names := []string{"localhost", "127.0.0.1"}
	if _, err := ca.Issue(names, 0); err != nil {
		t.Fatal(err)
	}
	certFile, _, err := ca.LeafPaths(names)
	if err != nil {
		t.Fatal(err)
	}
	for _, check := range [][]string{{"-verify_hostname", "localhost"}, {"-verify_ip", "127.0.0.1"}} {
		args := append([]string{"verify", "-CAfile", ca.CertPath(), "-purpose", "sslserver"}, check...)
		out, err := exec.Command(openssl, append(args, certFile)...).CombinedOutput()
		if err != nil || !strings.Contains(string(out), ": OK") {
			t.Fatalf("openssl %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	// And a name it was not issued for fails.
	out, err := exec.Command(openssl, "verify", "-CAfile", ca.CertPath(), "-verify_hostname", "example.com", certFile).CombinedOutput()
	if err == nil {
		t.Fatalf("openssl accepted the certificate for example.com:\n%s", out)
	}
}

func TestTrustInstructions(t *testing.T) {
	ca, err := LoadOrCreateCA(filepath.Join(t.TempDir(), "with space"))
	if err != nil {
		t.Fatal(err)
	}
	text := ca.TrustInstructions()
	quoted := "'" + ca.CertPath() + "'"
	for _, want := range []string{
		"update-ca-certificates", "trust anchor --store " + quoted, "security add-trusted-cert",
		`certutil -user -addstore Root "` + ca.CertPath() + `"`, "Firefox", "sql:$HOME/.pki/nssdb",
		"curl --cacert " + quoted, "NODE_EXTRA_CA_CERTS=" + quoted, "SSL_CERT_FILE=" + quoted,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("instructions lack %q:\n%s", want, text)
		}
	}
}
