package acme

import (
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"net/mail"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/certmagic"
)

// Directory URLs of Let's Encrypt's ACME servers.
const (
	// LetsEncrypt is Let's Encrypt's production CA, the default [Config.CA]. When it is the CA, a
	// failed attempt is retried against [LetsEncryptStaging] first, so that a misconfigured domain
	// does not use up the production rate limits.
	LetsEncrypt = certmagic.LetsEncryptProductionCA
	// LetsEncryptStaging is Let's Encrypt's staging CA: the same checks, with certificates no
	// browser trusts.
	LetsEncryptStaging = certmagic.LetsEncryptStagingCA
)

// TLSALPNProtocol is the ALPN protocol of the TLS-ALPN-01 challenge (RFC 8737). A TLS listener that
// answers the challenge through [Manager.GetCertificate] must list it in its NextProtos; a client
// offering only this protocol gets the challenge certificate, never a real one.
const TLSALPNProtocol = "acme-tls/1"

// Maximum number of names a Manage call obtains certificates for at once.
const manageParallel = 4

// The ports the CA checks challenges on (RFC 8555 section 8.3, RFC 8737 section 3), the defaults of
// Config.HTTPPort and Config.TLSALPNPort. They are always given to CertMagic explicitly, so that its
// package-level port settings never apply.
const (
	defaultHTTPPort    = 80
	defaultTLSALPNPort = 443
)

// eventCertFailed is CertMagic's event for a failed attempt to obtain or renew a certificate.
const eventCertFailed = "cert_failed"

// Errors of a Manager.
var (
	// ErrNotManaged is returned by GetCertificate for a server name the Manager has no certificate
	// for, so that the caller can try its other certificates.
	ErrNotManaged = errors.New("acme: no ACME certificate for this server name")
	// ErrInvalidName is returned by Manage for a name no ACME certificate can be obtained for here.
	ErrInvalidName = errors.New("acme: invalid name")
	// ErrClosed is returned by Manage after Close, and by a Manage call that Close interrupted.
	ErrClosed = errors.New("acme: manager closed")
)

// Config configures a Manager. Only Dir is required.
type Config struct {
	// Dir is the directory certificates, keys and the ACME account are stored in: the data
	// directory's "acme/". It is made (0700) when first written to.
	Dir string
	// Email is the ACME account's contact address, where the CA sends expiry and policy notices.
	// Optional.
	Email string
	// CA is the ACME directory URL of the certificate authority, an https URL. Empty means
	// [LetsEncrypt].
	CA string
	// CARoots are the roots trusted for the CA's own HTTPS endpoint; nil means the system's. Tests
	// give the root of their local ACME server here.
	CARoots *x509.CertPool
	// HTTPPort is the port the node answers the HTTP-01 challenge on: where its plain HTTP
	// listener (with HTTPChallengeHandler) is, which the CA reaches as port 80, directly or through
	// a port forward. 0 means 80.
	HTTPPort int
	// TLSALPNPort is the port the node answers the TLS-ALPN-01 challenge on: where its TLS listener
	// (with GetCertificate) is, which the CA reaches as port 443. 0 means 443.
	TLSALPNPort int
	// DisableHTTPChallenge and DisableTLSALPNChallenge turn a challenge off: the CA is asked only
	// for the other. At most one may be set. Turn HTTP-01 off on a node that serves no plain HTTP
	// (otherwise CertMagic binds HTTPPort itself while a challenge is in progress).
	DisableHTTPChallenge, DisableTLSALPNChallenge bool
	// Logger receives CertMagic's records (certificates obtained and renewed, failures, retries)
	// and the Manager's own. Nil means none.
	Logger *slog.Logger
}

// Validate reports the first problem of a Config, or nil.
func (c Config) Validate() error {
	if c.Dir == "" {
		return errors.New("acme: no storage directory")
	}
	if c.Email != "" {
		a, err := mail.ParseAddress(c.Email)
		if err != nil || a.Address != c.Email || a.Name != "" {
			return fmt.Errorf("acme: account e-mail %q is not a plain address such as ops@example.com", c.Email)
		}
	}
	if c.CA != "" {
		u, err := url.Parse(c.CA)
		if err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil {
			return fmt.Errorf("acme: CA %q is not an https URL of an ACME directory", c.CA)
		}
	}
	for _, p := range []struct {
		name string
		port int
	}{{"HTTP", c.HTTPPort}, {"TLS-ALPN", c.TLSALPNPort}} {
		if p.port < 0 || p.port > 65535 {
			return fmt.Errorf("acme: %s challenge port %d is out of range", p.name, p.port)
		}
	}
	if c.DisableHTTPChallenge && c.DisableTLSALPNChallenge {
		return errors.New("acme: both challenges are disabled; keep HTTP-01 or TLS-ALPN-01")
	}
	return nil
}

// Manager obtains, stores, renews and serves ACME certificates for a set of names. Make one with
// [New]; it is safe for concurrent use.
//
// New does no I/O and starts no goroutine. The first Manage call starts CertMagic's certificate
// cache, whose one maintenance goroutine checks every ten minutes for certificates to renew and
// renews them, retrying with backoff; Close stops it.
type Manager struct {
	cfg Config
	log *slog.Logger

	// closing is cancelled by Close; every Manage call's context ends with it.
	closing    context.Context
	closeNow   context.CancelFunc
	closeOnce  sync.Once
	manageSlot chan struct{} // one Manage call at a time

	// mu guards starting and closing: magic, cache and issuer are set once under it, and inflight
	// counts Manage calls that Close waits for.
	mu       sync.Mutex
	closed   bool
	inflight sync.WaitGroup
	cache    *certmagic.Cache

	// What handshakes and challenge requests read, without a lock: the CertMagic config and issuer
	// once started, and the snapshot of names with a certificate (replaced, never changed).
	magic  atomic.Pointer[certmagic.Config]
	issuer atomic.Pointer[certmagic.ACMEIssuer]
	names  atomic.Pointer[map[string]struct{}]

	// failMu guards lastFail: the error of each name's last failed attempt, from CertMagic's
	// cert_failed events, so that a Manage call its context ended can say why.
	failMu   sync.Mutex
	lastFail map[string]error

	// renewCheck overrides how often the cache looks for certificates to renew (tests only; 0
	// means CertMagic's ten minutes). Set before the first Manage.
	renewCheck time.Duration
}

// New checks cfg and returns a Manager that manages no name yet.
//
// # Errors
//
// The first problem [Config.Validate] finds.
func New(cfg Config) (*Manager, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.CA == "" {
		cfg.CA = LetsEncrypt
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	closing, closeNow := context.WithCancel(context.Background())
	m := &Manager{
		cfg:        cfg,
		log:        logger,
		closing:    closing,
		closeNow:   closeNow,
		manageSlot: make(chan struct{}, 1),
		lastFail:   map[string]error{},
	}
	m.names.Store(&map[string]struct{}{})
	return m, nil
}

// start makes CertMagic's cache, config and issuer the first time it is called. It is called with
// m.mu held.
func (m *Manager) start() {
	if m.cache != nil {
		return
	}
	zl := zapLogger(m.log.Handler())
	m.cache = certmagic.NewCache(certmagic.CacheOptions{
		GetConfigForCert: func(certmagic.Certificate) (*certmagic.Config, error) {
			if c := m.magic.Load(); c != nil {
				return c, nil
			}
			return nil, ErrClosed
		},
		RenewCheckInterval: m.renewCheck,
		Logger:             zl,
	})
	magic := certmagic.New(m.cache, certmagic.Config{
		RenewalWindowRatio: certmagic.DefaultRenewalWindowRatio,
		KeySource:          certmagic.StandardKeyGenerator{KeyType: certmagic.P256},
		Storage:            &certmagic.FileStorage{Path: m.cfg.Dir},
		OnEvent:            m.onEvent,
		// Only failures are wanted; without this CertMagic builds an event for every handshake.
		ShouldEmitFunc: func(event string) bool { return event == eventCertFailed },
		Logger:         zl,
	})
	testCA := ""
	if m.cfg.CA == LetsEncrypt {
		testCA = LetsEncryptStaging
	}
	issuer := certmagic.NewACMEIssuer(magic, certmagic.ACMEIssuer{
		CA:                      m.cfg.CA,
		TestCA:                  testCA,
		Email:                   m.cfg.Email,
		Agreed:                  true,
		TrustedRoots:            m.cfg.CARoots,
		AltHTTPPort:             cmp.Or(m.cfg.HTTPPort, defaultHTTPPort),
		AltTLSALPNPort:          cmp.Or(m.cfg.TLSALPNPort, defaultTLSALPNPort),
		DisableHTTPChallenge:    m.cfg.DisableHTTPChallenge,
		DisableTLSALPNChallenge: m.cfg.DisableTLSALPNChallenge,
		Logger:                  zl,
	})
	magic.Issuers = []certmagic.Issuer{issuer}
	m.magic.Store(magic)
	m.issuer.Store(issuer)
}

// onEvent records the error of each failed attempt to obtain or renew a certificate.
func (m *Manager) onEvent(_ context.Context, event string, data map[string]any) error {
	if event != eventCertFailed {
		return nil
	}
	name, _ := data["identifier"].(string)
	err, _ := data["error"].(error)
	if name != "" && err != nil {
		m.failMu.Lock()
		m.lastFail[name] = err
		m.failMu.Unlock()
	}
	return nil
}

// Manage makes sure each name has a certificate, and keeps it renewed in the background until
// Close. A name whose certificate is in storage gets it loaded without contacting the CA, even when
// it is due for renewal (the background renewal sees to that within ten minutes), unless it has
// expired: then it is renewed now. Any other name gets a certificate from the CA now. Manage
// returns when every name has a certificate, or when ctx ends: attempts that fail are retried
// (after a minute, then at growing intervals) for as long as ctx allows. Names already managed are
// skipped. Up to four names are obtained at once; Manage calls run one at a time.
//
// # Errors
//
// Manage checks every name first and manages none if one is invalid ([ErrInvalidName]). Otherwise
// the names that got a certificate are managed even when others failed, and a name that failed is
// not managed at all (call Manage again to retry it); the error joins one error per failed name,
// naming it. A name whose attempts ctx cut short gets the context's error
// ([context.DeadlineExceeded], [context.Canceled]) with the last attempt's failure, if any;
// [ErrClosed] when Close cut it short or was called before.
func (m *Manager) Manage(ctx context.Context, names []string) error {
	want := make([]string, 0, len(names))
	var bad []error
	for _, raw := range names {
		n, err := canonicalName(raw)
		if err != nil {
			bad = append(bad, err)
			continue
		}
		if !slices.Contains(want, n) {
			want = append(want, n)
		}
	}
	if len(bad) > 0 {
		return errors.Join(bad...)
	}
	if len(want) == 0 {
		return nil
	}

	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return ErrClosed
	}
	m.start()
	m.inflight.Add(1)
	m.mu.Unlock()
	defer m.inflight.Done()

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	stop := context.AfterFunc(m.closing, func() { cancel(ErrClosed) })
	defer stop()

	select {
	case m.manageSlot <- struct{}{}:
		defer func() { <-m.manageSlot }()
	case <-ctx.Done():
		return context.Cause(ctx)
	}

	magic := m.magic.Load()
	have := *m.names.Load()
	todo := slices.DeleteFunc(want, func(n string) bool { _, ok := have[n]; return ok })

	errs := make([]error, len(todo))
	sem := make(chan struct{}, manageParallel)
	var wg sync.WaitGroup
	for i, name := range todo {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			errs[i] = m.manageOne(ctx, magic, name)
		})
	}
	wg.Wait()

	next := make(map[string]struct{}, len(have)+len(todo))
	for n := range have {
		next[n] = struct{}{}
	}
	var failed []error
	for i, name := range todo {
		if errs[i] != nil {
			failed = append(failed, errs[i])
			continue
		}
		next[name] = struct{}{}
	}
	m.names.Store(&next)
	return errors.Join(failed...)
}

// manageOne loads or obtains the certificate for one name and puts it in the cache as managed, so
// that the cache's maintenance renews it. On error, nothing of name is left in the cache.
func (m *Manager) manageOne(ctx context.Context, magic *certmagic.Config, name string) error {
	m.failMu.Lock()
	delete(m.lastFail, name)
	m.failMu.Unlock()
	cert, err := magic.CacheManagedCertificate(ctx, name)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		// ObtainCertAsync is CertMagic's non-interactive obtain: it never prompts, and retries
		// failed attempts until ctx ends. It returns once the certificate is in storage.
		if err := magic.ObtainCertAsync(ctx, name); err != nil {
			return m.failure(ctx, name, "obtaining a certificate", err)
		}
		if _, err := magic.CacheManagedCertificate(ctx, name); err != nil {
			return fmt.Errorf("acme: %s: loading the certificate just obtained: %w", name, err)
		}
		return nil
	case err != nil:
		return fmt.Errorf("acme: %s: loading the stored certificate: %w", name, err)
	case !cert.Expired():
		// Served as it is, even when due for renewal: the maintenance renews it within its
		// check interval, and a restart neither waits for the CA nor contacts it.
		return nil
	}
	err = magic.RenewCertAsync(ctx, name, false)
	if err == nil {
		var renewed certmagic.Certificate
		renewed, err = magic.CacheManagedCertificate(ctx, name)
		if err == nil {
			if renewed.Hash() != cert.Hash() {
				m.cache.Remove([]string{cert.Hash()})
			}
			return nil
		}
		err = fmt.Errorf("acme: %s: loading the renewed certificate: %w", name, err)
	} else {
		err = m.failure(ctx, name, "renewing the stored certificate, which has expired", err)
	}
	m.cache.Remove([]string{cert.Hash()})
	return err
}

// failure describes a failed obtain or renewal of name: when ctx ended it, the context's cause
// (CertMagic reports every end of its retries as context.Canceled) and the last attempt's error.
func (m *Manager) failure(ctx context.Context, name, doing string, err error) error {
	if ctx.Err() == nil {
		return fmt.Errorf("acme: %s: %s: %w", name, doing, err)
	}
	cause := context.Cause(ctx)
	m.failMu.Lock()
	last := m.lastFail[name]
	m.failMu.Unlock()
	if last == nil {
		return fmt.Errorf("acme: %s: %s: %w", name, doing, cause)
	}
	return fmt.Errorf("acme: %s: %s: %w (last attempt: %v)", name, doing, cause, last)
}

// GetCertificate returns the certificate for the handshake's server name, for use as (part of) a
// tls.Config's GetCertificate. A client offering only [TLSALPNProtocol] is an ACME CA checking a
// TLS-ALPN-01 challenge; it gets the challenge certificate of the name it asks for.
//
// # Errors
//
// [ErrNotManaged] for a server name Manage has not given a certificate (or none), so that the
// caller can fall back to its other certificates; [ErrClosed] after Close. CertMagic's error for
// a challenge it has no certificate for.
func (m *Manager) GetCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	magic := m.magic.Load()
	if magic == nil {
		if m.closing.Err() != nil {
			return nil, ErrClosed
		}
		return nil, ErrNotManaged
	}
	if len(hello.SupportedProtos) == 1 && hello.SupportedProtos[0] == TLSALPNProtocol && hello.ServerName != "" {
		return magic.GetCertificate(hello)
	}
	name := strings.TrimSuffix(strings.ToLower(hello.ServerName), ".")
	if _, ok := (*m.names.Load())[name]; !ok {
		return nil, ErrNotManaged
	}
	return magic.GetCertificate(hello)
}

// HTTPChallengeHandler wraps next, the plain HTTP listener's handler, with the answer to the
// HTTP-01 challenge: a GET of /.well-known/acme-challenge/TOKEN whose Host is a name this Manager
// (or another process sharing its directory) has a challenge in progress for gets the key
// authorisation; every other request goes to next.
func (m *Manager) HTTPChallengeHandler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if iss := m.issuer.Load(); iss != nil && iss.HandleHTTPChallenge(w, r) {
			return
		}
		next.ServeHTTP(w, r)
	})
}

// Names returns the names that have a certificate, sorted.
func (m *Manager) Names() []string {
	set := *m.names.Load()
	out := make([]string, 0, len(set))
	for n := range set {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// Close ends the Manage calls in progress (they return [ErrClosed]) and waits for them, then stops
// the background renewal and waits for its goroutine (which may be in the middle of a request to the
// CA, bounded by CertMagic's 30-second HTTP timeout). A renewal CertMagic had already started sees
// its context cancelled and ends on its own, without being waited for. After Close,
// GetCertificate serves nothing and Manage returns ErrClosed. Close may be called more than once.
func (m *Manager) Close() {
	m.closeOnce.Do(func() {
		m.mu.Lock()
		m.closed = true
		m.mu.Unlock()
		m.closeNow()
		m.inflight.Wait()
		m.magic.Store(nil)
		m.issuer.Store(nil)
		m.names.Store(&map[string]struct{}{})
		if m.cache != nil {
			m.cache.Stop()
		}
	})
}
