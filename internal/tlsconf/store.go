package tlsconf

import (
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fsnotify/fsnotify"
)

// Errors of a Store.
var (
	// ErrNoCertificate ends a handshake whose server name no certificate serves, when no default
	// certificate is set. The client sees an internal_error alert.
	ErrNoCertificate = errors.New("tlsconf: no certificate for this server name")
	// ErrNameNotCovered is returned by Add when the certificate's SANs do not cover a name it was
	// given for.
	ErrNameNotCovered = errors.New("tlsconf: the certificate does not cover every name it is given for")
	// ErrDuplicateName is returned by Add when another certificate already serves one of the names.
	ErrDuplicateName = errors.New("tlsconf: another certificate already serves this name")
)

// Attribute keys of the Store's log records.
const (
	logKeyCertFile = "cert_file"
	logKeyKeyFile  = "key_file"
	logKeyNames    = "names"
	logKeySerial   = "serial"
	logKeyNotAfter = "not_after"
	logKeyError    = "error"
)

// Store holds server certificates by name and picks one for each handshake by the server name the
// client sends (SNI). Use [Store.GetCertificate] as a [tls.Config]'s GetCertificate.
//
// Certificates come from PEM files ([Store.Add]). [Store.Watch] reloads a certificate when its files
// change; [Store.Reload] does so at once. A reload swaps in a new immutable snapshot of every name,
// so a handshake sees either the old certificate or the new one, never a mix, and GetCertificate
// takes no lock. A file that fails to load keeps the certificate loaded before it.
//
// A Store is safe for concurrent use. Its zero value is not usable: make one with [NewStore].
type Store struct {
	log *slog.Logger

	// watching is closed once Watch has put its watches in place (see Watching).
	watching     chan struct{}
	watchingOnce sync.Once

	// mu serialises changes: Add, SetDefault, Reload and Watch's reloads. Readers never take it.
	mu      sync.Mutex
	entries []*entry          // in the order added
	byName  map[string]*entry // each name an entry serves, normalised
	defName string            // the name whose certificate is the default; "" for none
	watcher *fsnotify.Watcher // set while Watch runs
	dirs    map[string]bool   // the directories watcher watches

	snap atomic.Pointer[snapshot]
}

// entry is one certificate and the files it comes from. Its fields other than the file names are
// guarded by Store.mu.
type entry struct {
	names             []string // normalised: DNS names, wildcard patterns, IP addresses
	certFile, keyFile string
	cert              *tls.Certificate
	sum               [sha256.Size]byte // of the files' content cert was loaded from
	badSum            [sha256.Size]byte // of the content that last failed to load, to log it once
}

// snapshot is what GetCertificate reads: immutable once published.
type snapshot struct {
	exact map[string]*tls.Certificate // DNS names and IP addresses
	wild  map[string]*tls.Certificate // "*.example.com" under "example.com"
	def   *tls.Certificate
}

// NewStore returns an empty Store that logs reloads and their failures to logger (nil for none). It
// does no I/O and starts no goroutine.
func NewStore(logger *slog.Logger) *Store {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s := &Store{log: logger, watching: make(chan struct{}), byName: map[string]*entry{}}
	s.snap.Store(&snapshot{})
	return s
}

// Add loads a certificate and its private key from PEM files and serves it for names.
//
// certFile holds the certificate, then any intermediates, in PEM; keyFile its private key (PKCS #8,
// PKCS #1 or SEC 1, unencrypted); both may be the same file. Each name is a DNS name
// ("api.example.com"), a wildcard pattern ("*.example.com", which serves exactly one label in its
// place) or an IP address, and the certificate's subject alternative names must cover it: a DNS
// name by an equal or matching wildcard SAN, a wildcard pattern by the same wildcard SAN. When names
// is empty, the certificate serves every name in its SANs.
//
// A certificate that has expired, or is not yet valid, is added all the same and a warning logged:
// refusing it would take a domain offline at a restart instead of serving the certificate the
// operator is about to replace.
//
// # Errors
//
// Add adds nothing when it returns an error:
//   - a file that cannot be read (wrapping [io/fs.ErrNotExist] when it is missing);
//   - no CERTIFICATE block, an unparsable certificate or key, an encrypted key;
//   - [ErrKeyMismatch]: the key is not the certificate's;
//   - [ErrNameNotCovered]: the certificate does not cover some names, which the error lists;
//   - [ErrDuplicateName]: a name is already served by another certificate;
//   - a name that is not a valid DNS name, wildcard pattern or IP address.
func (s *Store) Add(names []string, certFile, keyFile string) error {
	files, err := readPair(certFile, keyFile)
	if err != nil {
		return err
	}
	cert, err := parsePair(certFile, keyFile, files.certPEM, files.keyPEM)
	if err != nil {
		return err
	}
	norm, err := namesFor(names, cert, certFile)
	if err != nil {
		return err
	}
	s.warnValidity(cert, certFile)

	s.mu.Lock()
	defer s.mu.Unlock()
	for _, n := range norm {
		if other := s.byName[n]; other != nil {
			return fmt.Errorf("%w: %s (already served by the certificate in %s)", ErrDuplicateName, n, other.certFile)
		}
	}
	e := &entry{names: norm, certFile: certFile, keyFile: keyFile, cert: cert, sum: files.sum}
	s.entries = append(s.entries, e)
	for _, n := range norm {
		s.byName[n] = e
	}
	if s.watcher != nil {
		s.watchEntryLocked(e)
	}
	s.publishLocked()
	return nil
}

// namesFor checks and normalises the names a certificate is added for, or lists its SANs when names
// is empty.
func namesFor(names []string, cert *tls.Certificate, certFile string) ([]string, error) {
	if len(names) == 0 {
		names = leafNames(cert.Leaf)
		if len(names) == 0 {
			return nil, fmt.Errorf("tlsconf: the certificate in %s has no subject alternative names; "+
				"reissue it with the names it serves", certFile)
		}
	}
	out := make([]string, 0, len(names))
	seen := make(map[string]bool, len(names))
	var missing []string
	for _, raw := range names {
		n, err := canonicalName(raw)
		if err != nil {
			return nil, fmt.Errorf("tlsconf: serving %s: %w", certFile, err)
		}
		if seen[n] {
			continue
		}
		seen[n] = true
		if !covers(cert.Leaf, n) {
			missing = append(missing, n)
		}
		out = append(out, n)
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("%w: the certificate in %s does not cover %s (it covers %s)", ErrNameNotCovered,
			certFile, strings.Join(missing, ", "), strings.Join(leafNames(cert.Leaf), ", "))
	}
	return out, nil
}

// SetDefault makes the certificate serving name the default: the one a handshake gets when the
// client sends no server name (as clients connecting to an IP address do) or a name no certificate
// serves. The default follows that certificate through reloads. An empty name removes the default,
// so that such handshakes fail.
//
// # Errors
//
// An error when no certificate added so far serves name.
func (s *Store) SetDefault(name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if name == "" {
		s.defName = ""
		s.publishLocked()
		return nil
	}
	n, err := canonicalName(name)
	if err != nil {
		return fmt.Errorf("tlsconf: default certificate: %w", err)
	}
	if s.byName[n] == nil {
		return fmt.Errorf("tlsconf: default certificate: no certificate added for %q", name)
	}
	s.defName = n
	s.publishLocked()
	return nil
}

// GetCertificate returns the certificate for a handshake, for use as a [tls.Config]'s
// GetCertificate. It looks the client's server name up, lower-cased and without a trailing dot:
// first among exact names, then among wildcard patterns (the name with its first label replaced by
// "*"), then it returns the default certificate. With no server name it returns the default.
//
// It reads the current snapshot and takes no lock.
//
// # Errors
//
// An error wrapping [ErrNoCertificate] when nothing matches and no default is set: crypto/tls then
// ends the handshake with an alert.
func (s *Store) GetCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	snap := s.snap.Load()
	name := normalizeName(hello.ServerName)
	if name != "" {
		if c := snap.exact[name]; c != nil {
			return c, nil
		}
		if i := strings.IndexByte(name, '.'); i > 0 {
			if c := snap.wild[name[i+1:]]; c != nil {
				return c, nil
			}
		}
	}
	if snap.def != nil {
		return snap.def, nil
	}
	if name == "" {
		return nil, fmt.Errorf("%w: the client sent no server name and no default certificate is set", ErrNoCertificate)
	}
	return nil, fmt.Errorf("%w: %q", ErrNoCertificate, name)
}

// publishLocked builds a new snapshot of the entries and makes it the one GetCertificate reads.
func (s *Store) publishLocked() {
	next := &snapshot{exact: map[string]*tls.Certificate{}, wild: map[string]*tls.Certificate{}}
	for _, e := range s.entries {
		for _, n := range e.names {
			if isWildcard(n) {
				next.wild[n[2:]] = e.cert
			} else {
				next.exact[n] = e.cert
			}
		}
	}
	if e := s.byName[s.defName]; e != nil {
		next.def = e.cert
	}
	s.snap.Store(next)
}

// Reload reads every certificate's files again and swaps in those that load, whether or not they
// changed. A certificate whose files fail to load, or no longer cover its names, keeps what was
// loaded before.
//
// # Errors
//
// The failures, joined, one per certificate; the certificates that loaded are swapped in even then.
func (s *Store) Reload() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return errors.Join(s.reloadLocked(true)...)
}

// reloadLocked reloads the entries whose files changed (all of them when force is set) and publishes
// a new snapshot if any did. It logs each certificate reloaded, and each failure once per content.
func (s *Store) reloadLocked(force bool) []error {
	var errs []error
	changed := false
	for _, e := range s.entries {
		files, err := readPair(e.certFile, e.keyFile)
		if err != nil {
			files.sum = sha256.Sum256([]byte(err.Error())) // so that the same failure is logged once
		}
		if err == nil && !force && files.sum == e.sum {
			continue
		}
		var cert *tls.Certificate
		if err == nil {
			cert, err = parsePair(e.certFile, e.keyFile, files.certPEM, files.keyPEM)
		}
		if err == nil {
			_, err = namesFor(e.names, cert, e.certFile)
		}
		if err != nil {
			errs = append(errs, err)
			if force || files.sum != e.badSum {
				e.badSum = files.sum
				s.log.Error("certificate reload failed; keeping the certificate loaded before",
					logKeyCertFile, e.certFile, logKeyKeyFile, e.keyFile, logKeyError, err.Error())
			}
			continue
		}
		s.warnValidity(cert, e.certFile)
		e.cert, e.sum, e.badSum = cert, files.sum, [sha256.Size]byte{}
		changed = true
		s.log.Info("certificate reloaded", logKeyCertFile, e.certFile, logKeyNames, strings.Join(e.names, ","),
			logKeySerial, cert.Leaf.SerialNumber.Text(16), logKeyNotAfter, cert.Leaf.NotAfter.UTC().Format(time.RFC3339))
		if s.watcher != nil {
			s.watchEntryLocked(e) // a symbolic link may now point into another directory
		}
	}
	if changed {
		s.publishLocked()
	}
	return errs
}

// warnValidity logs a warning when a certificate is outside its validity period.
func (s *Store) warnValidity(cert *tls.Certificate, certFile string) {
	now := time.Now()
	switch leaf := cert.Leaf; {
	case now.After(leaf.NotAfter):
		s.log.Warn("certificate has expired; clients will refuse it until it is replaced",
			logKeyCertFile, certFile, logKeyNotAfter, leaf.NotAfter.UTC().Format(time.RFC3339))
	case now.Before(leaf.NotBefore):
		s.log.Warn("certificate is not valid yet; clients will refuse it until then",
			logKeyCertFile, certFile, "not_before", leaf.NotBefore.UTC().Format(time.RFC3339))
	}
}
