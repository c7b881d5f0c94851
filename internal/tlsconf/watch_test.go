package tlsconf

import (
	"context"
	"crypto/tls"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// watchedStore serves one certificate for name from dir, with Watch running until the test ends.
func watchedStore(t *testing.T, certFile, keyFile, name string) (*Store, *tlsServer, *logBuffer) {
	t.Helper()
	log, buf := newTestLogger()
	store := NewStore(log)
	if err := store.Add([]string{name}, certFile, keyFile); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := store.Watch(ctx); err != nil {
			t.Errorf("Watch: %v", err)
		}
	}()
	t.Cleanup(func() {
		cancel()
		wg.Wait()
	})
	select {
	case <-store.Watching():
	case <-time.After(5 * time.Second):
		t.Fatal("Watch did not start")
	}
	return store, startTLSServer(t, &tls.Config{GetCertificate: store.GetCertificate}), buf
}

// servedSerial returns the serial number of the certificate a new handshake gets.
func servedSerial(t *testing.T, srv *tlsServer, name string) string {
	t.Helper()
	cs, err := dial(srv.addr, &tls.Config{ServerName: name, InsecureSkipVerify: true})
	srv.lastHandshake(t)
	if err != nil {
		t.Fatal(err)
	}
	return serial(cs)
}

// TestWatchReloads rewrites the files in place, breaks them, then renames new files over them, and
// checks what the next handshakes get.
func TestWatchReloads(t *testing.T) {
	ca := newTestCA(t, "Reload CA")
	dir := t.TempDir()
	const name = "reload.example.com"
	opts := func(serial int64) leafOpts { return leafOpts{serial: serial, dns: []string{name}} }
	certFile, keyFile := writePair(t, dir, "site", ca.issue(t, opts(0x100)))
	_, srv, logs := watchedStore(t, certFile, keyFile, name)
	if got := servedSerial(t, srv, name); got != "100" {
		t.Fatalf("serving %s, want 100", got)
	}

	t.Run("rewritten in place", func(t *testing.T) {
		writePair(t, dir, "site", ca.issue(t, opts(0x101)))
		waitFor(t, "serial 101", func() bool { return servedSerial(t, srv, name) == "101" })
	})

	t.Run("a broken file keeps the old certificate", func(t *testing.T) {
		if err := os.WriteFile(certFile, []byte("-----BEGIN CERTIFICATE-----\nbroken\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the failure to be logged", func() bool { return strings.Contains(logs.String(), "certificate reload failed") })
		if got := servedSerial(t, srv, name); got != "101" {
			t.Fatalf("serving %s after a broken write, want 101", got)
		}
		// A key that is not the certificate's is refused the same way.
		other := ca.issue(t, opts(0x1ff))
		if err := os.WriteFile(certFile, other.certPEM, 0o644); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the mismatch to be logged", func() bool { return strings.Contains(logs.String(), "does not hold the private key") })
		if got := servedSerial(t, srv, name); got != "101" {
			t.Fatalf("serving %s with a mismatched key, want 101", got)
		}
	})

	t.Run("renamed over", func(t *testing.T) {
		tmp := t.TempDir() // on the same file system as dir, both under the test's temporary directory
		newCert, newKey := writePair(t, tmp, "new", ca.issue(t, opts(0x102)))
		if err := os.Rename(newKey, keyFile); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(newCert, certFile); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "serial 102", func() bool { return servedSerial(t, srv, name) == "102" })
		if !strings.Contains(logs.String(), "certificate reloaded") {
			t.Errorf("no reload logged: %s", logs)
		}
	})
}

// TestWatchSymlinkSwap updates the files as Kubernetes updates a mounted Secret: the files are links
// through ..data, a link to a directory of the current version, which is swapped by a rename.
func TestWatchSymlinkSwap(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("symbolic links need privileges on Windows")
	}
	ca := newTestCA(t, "Secret CA")
	dir := t.TempDir()
	const name = "secret.example.com"
	version := func(v string, serial int64) {
		vdir := filepath.Join(dir, "..v"+v)
		if err := os.Mkdir(vdir, 0o755); err != nil {
			t.Fatal(err)
		}
		writePair(t, vdir, "tls", ca.issue(t, leafOpts{serial: serial, dns: []string{name}}))
		tmpLink := filepath.Join(dir, "..data_tmp")
		if err := os.Symlink("..v"+v, tmpLink); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmpLink, filepath.Join(dir, "..data")); err != nil {
			t.Fatal(err)
		}
	}
	version("1", 0x201)
	certFile, keyFile := filepath.Join(dir, "tls.pem"), filepath.Join(dir, "tls-key.pem")
	for _, f := range []string{"tls.pem", "tls-key.pem"} {
		if err := os.Symlink(filepath.Join("..data", f), filepath.Join(dir, f)); err != nil {
			t.Fatal(err)
		}
	}
	_, srv, _ := watchedStore(t, certFile, keyFile, name)
	if got := servedSerial(t, srv, name); got != "201" {
		t.Fatalf("serving %s, want 201", got)
	}
	version("2", 0x202)
	if err := os.RemoveAll(filepath.Join(dir, "..v1")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "serial 202", func() bool { return servedSerial(t, srv, name) == "202" })
	version("3", 0x203)
	waitFor(t, "serial 203", func() bool { return servedSerial(t, srv, name) == "203" })
}

// TestReload forces a reload without a watcher.
func TestReload(t *testing.T) {
	ca := newTestCA(t, "Reload CA")
	dir := t.TempDir()
	const name = "force.example.com"
	certFile, keyFile := writePair(t, dir, "f", ca.issue(t, leafOpts{serial: 0x300, dns: []string{name}}))
	store := NewStore(nil)
	if err := store.Add(nil, certFile, keyFile); err != nil {
		t.Fatal(err)
	}
	if err := store.SetDefault(name); err != nil {
		t.Fatal(err)
	}
	get := func() string {
		c, err := store.GetCertificate(&tls.ClientHelloInfo{})
		if err != nil {
			t.Fatal(err)
		}
		return c.Leaf.SerialNumber.Text(16)
	}
	writePair(t, dir, "f", ca.issue(t, leafOpts{serial: 0x301, dns: []string{name}}))
	if got := get(); got != "300" {
		t.Fatalf("changed before Reload: %s", got)
	}
	if err := store.Reload(); err != nil {
		t.Fatal(err)
	}
	if got := get(); got != "301" {
		t.Fatalf("default after Reload is %s, want 301", got)
	}
	// A certificate that no longer covers its names is refused.
	writePair(t, dir, "f", ca.issue(t, leafOpts{serial: 0x302, dns: []string{"elsewhere.example.com"}}))
	if err := store.Reload(); err == nil || !strings.Contains(err.Error(), "force.example.com") {
		t.Fatalf("Reload error %v, want one naming force.example.com", err)
	}
	if got := get(); got != "301" {
		t.Fatalf("serving %s after a failed reload, want 301", got)
	}
}
