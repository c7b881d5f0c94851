package jwtauth

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/MicahParks/jwkset"
)

// minRSABits is the smallest RSA modulus accepted from a JWKS; smaller keys are skipped.
const minRSABits = 2048

// firstRetryDelay is the background loop's first wait after a failed fetch; it doubles up to the
// refresh interval.
const firstRetryDelay = time.Second

// pubKey is one usable signing key of the issuer.
type pubKey struct {
	pub any    // *rsa.PublicKey, *ecdsa.PublicKey or ed25519.PublicKey
	alg string // the JWK's alg, "" when the JWK names none
}

// fits reports whether a token signed with alg may be verified by k: the algorithm must suit the
// key's type (an RSA key never verifies an HMAC or ECDSA token) and the JWK's own alg, if any.
func (k pubKey) fits(alg string) bool {
	if k.alg != "" && k.alg != alg {
		return false
	}
	switch pub := k.pub.(type) {
	case *rsa.PublicKey:
		return alg == "RS256" || alg == "RS384" || alg == "RS512"
	case *ecdsa.PublicKey:
		return (alg == "ES256" && pub.Curve == elliptic.P256()) || (alg == "ES384" && pub.Curve == elliptic.P384())
	case ed25519.PublicKey:
		return alg == "EdDSA"
	}
	return false
}

// keySet is an immutable snapshot of the issuer's keys, swapped whole on refresh.
type keySet struct {
	byKID map[string]pubKey
}

// keySource holds the current keys and fetches them again when asked.
type keySource struct {
	client          *http.Client
	issuer          string
	remote          bool   // false for a JWKS file: nothing to fetch
	jwksURL         string // fixed URL; "" means discovery
	refreshInterval time.Duration
	minGap          time.Duration
	now             func() time.Time

	set atomic.Pointer[keySet] // nil until keys load

	// sem serializes fetches: a request waiting on it honours its context.
	sem chan struct{}
	// Guarded by sem:
	discovered     string    // jwks_uri found through discovery, "" when unknown
	lastKIDRefresh time.Time // last fetch caused by an unknown kid
}

func newKeySource(cfg Config, now func() time.Time) *keySource {
	ks := &keySource{
		remote:          cfg.JWKSFile == "",
		client:          cfg.HTTPClient,
		issuer:          strings.TrimSuffix(cfg.Issuer, "/"),
		jwksURL:         cfg.JWKSURL,
		refreshInterval: cfg.RefreshInterval,
		minGap:          cfg.MinRefreshGap,
		now:             now,
		sem:             make(chan struct{}, 1),
	}
	if ks.client == nil {
		ks.client = &http.Client{Timeout: DefaultHTTPTimeout}
	}
	if ks.refreshInterval == 0 {
		ks.refreshInterval = DefaultRefreshInterval
	}
	if ks.minGap == 0 {
		ks.minGap = DefaultMinRefreshGap
	}
	return ks
}

// loadFile reads a local JWKS once.
func (ks *keySource) loadFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("jwtauth: read JWKS file: %w", err)
	}
	defer f.Close()
	body, err := readLimited(f)
	if err != nil {
		return fmt.Errorf("jwtauth: read JWKS file %s: %w", path, err)
	}
	set, err := parseJWKS(body)
	if err != nil {
		return fmt.Errorf("jwtauth: JWKS file %s: %w", path, err)
	}
	ks.set.Store(set)
	return nil
}

// lookup returns the key of kid. An unknown kid causes one fetch, unless a fetch for an unknown
// kid happened less than minGap ago; concurrent callers share one fetch.
func (ks *keySource) lookup(ctx context.Context, kid string) (pubKey, error) {
	seen := ks.set.Load()
	if seen != nil {
		if k, ok := seen.byKID[kid]; ok {
			return k, nil
		}
	}
	if !ks.remote {
		return pubKey{}, invalid("no key matches the token's kid")
	}
	select {
	case ks.sem <- struct{}{}:
	case <-ctx.Done():
		return pubKey{}, invalid("gave up waiting for signing keys")
	}
	defer func() { <-ks.sem }()

	if cur := ks.set.Load(); cur != seen && cur != nil {
		// Another caller fetched while this one waited.
		if k, ok := cur.byKID[kid]; ok {
			return k, nil
		}
	}
	now := ks.now()
	if ks.lastKIDRefresh.IsZero() || now.Sub(ks.lastKIDRefresh) >= ks.minGap {
		ks.lastKIDRefresh = now
		if err := ks.fetchLocked(ctx); err == nil {
			if k, ok := ks.set.Load().byKID[kid]; ok {
				return k, nil
			}
		}
	}
	if ks.set.Load() == nil {
		return pubKey{}, invalid("signing keys are not available")
	}
	return pubKey{}, invalid("no key matches the token's kid")
}

// refresh fetches the keys now, waiting for any fetch in progress.
func (ks *keySource) refresh(ctx context.Context) error {
	select {
	case ks.sem <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-ks.sem }()
	return ks.fetchLocked(ctx)
}

// run refreshes the keys every refreshInterval until ctx ends. After a failed fetch it retries
// sooner: 1 s, then doubling, never beyond refreshInterval.
func (ks *keySource) run(ctx context.Context, loaded bool) {
	retry := min(firstRetryDelay, ks.refreshInterval)
	delay := ks.refreshInterval
	if !loaded {
		delay = retry
	}
	t := time.NewTimer(delay)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := ks.refresh(ctx); err != nil {
			delay = retry
			retry = min(retry*2, ks.refreshInterval)
		} else {
			delay = ks.refreshInterval
			retry = min(firstRetryDelay, ks.refreshInterval)
		}
		t.Reset(delay)
	}
}

// fetchLocked fetches the JWKS (after discovery when needed) and swaps it in. The caller holds sem.
// On failure the keys in use stay.
func (ks *keySource) fetchLocked(ctx context.Context) error {
	uri := ks.jwksURL
	if uri == "" {
		if ks.discovered == "" {
			found, err := ks.discover(ctx)
			if err != nil {
				return err
			}
			ks.discovered = found
		}
		uri = ks.discovered
	}
	body, err := ks.get(ctx, uri)
	if err != nil {
		ks.discovered = "" // the issuer may have moved its keys: discover again next time
		return fmt.Errorf("jwtauth: fetch JWKS: %w", err)
	}
	set, err := parseJWKS(body)
	if err != nil {
		return fmt.Errorf("jwtauth: JWKS from %s: %w", uri, err)
	}
	ks.set.Store(set)
	return nil
}

// discover reads the issuer's OpenID configuration and returns its jwks_uri.
func (ks *keySource) discover(ctx context.Context) (string, error) {
	u := ks.issuer + "/.well-known/openid-configuration"
	body, err := ks.get(ctx, u)
	if err != nil {
		return "", fmt.Errorf("jwtauth: OpenID discovery: %w", err)
	}
	var doc struct {
		JWKSURI string `json:"jwks_uri"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return "", fmt.Errorf("jwtauth: OpenID configuration from %s: %w", u, err)
	}
	if err := checkHTTPURL(doc.JWKSURI); err != nil {
		return "", fmt.Errorf("jwtauth: OpenID configuration from %s: jwks_uri: %w", u, err)
	}
	return doc.JWKSURI, nil
}

func (ks *keySource) get(ctx context.Context, u string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := ks.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: status %d", u, resp.StatusCode)
	}
	body, err := readLimited(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", u, err)
	}
	return body, nil
}

var errTooLarge = fmt.Errorf("document exceeds %d bytes", MaxDocumentBytes)

func readLimited(r io.Reader) ([]byte, error) {
	body, err := io.ReadAll(io.LimitReader(r, MaxDocumentBytes+1))
	if err != nil {
		return nil, err
	}
	if len(body) > MaxDocumentBytes {
		return nil, errTooLarge
	}
	return body, nil
}

// parseJWKS keeps the set's usable signing keys: public RSA (2048 bits or more), P-256, P-384 and
// Ed25519 keys that have a kid and are not marked for encryption. Other keys are skipped, so one
// odd key does not cost the others; a set with no usable key is an error.
func parseJWKS(body []byte) (*keySet, error) {
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, fmt.Errorf("not a JWKS: %w", err)
	}
	set := &keySet{byKID: make(map[string]pubKey, len(doc.Keys))}
	for _, raw := range doc.Keys {
		var m jwkset.JWKMarshal
		if json.Unmarshal(raw, &m) != nil {
			continue
		}
		if m.KID == "" || (m.USE != "" && m.USE != jwkset.UseSig) {
			continue
		}
		jwk, err := jwkset.NewJWKFromMarshal(m, jwkset.JWKMarshalOptions{}, jwkset.JWKValidateOptions{})
		if err != nil {
			continue
		}
		k := pubKey{pub: jwk.Key(), alg: string(m.ALG)}
		if !usable(k.pub) {
			continue
		}
		if _, dup := set.byKID[m.KID]; dup {
			// Two keys with one kid: a token naming it cannot be tied to one key, so neither is used.
			set.byKID[m.KID] = pubKey{}
			continue
		}
		set.byKID[m.KID] = k
	}
	for kid, k := range set.byKID {
		if k.pub == nil {
			delete(set.byKID, kid)
		}
	}
	if len(set.byKID) == 0 {
		return nil, errors.New("no usable signing key")
	}
	return set, nil
}

func usable(pub any) bool {
	switch pub := pub.(type) {
	case *rsa.PublicKey:
		return pub.N.BitLen() >= minRSABits && pub.E >= 3 && pub.E%2 == 1
	case *ecdsa.PublicKey:
		return pub.Curve == elliptic.P256() || pub.Curve == elliptic.P384()
	case ed25519.PublicKey:
		return len(pub) == ed25519.PublicKeySize
	}
	return false
}
