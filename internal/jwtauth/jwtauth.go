// Package jwtauth is the gateway's JWT authorizer. It owns the issuer's signing keys (fetched from a
// JWKS URL, found through OpenID discovery, or read from a local file), the checks a bearer token must
// pass, the verified-token cache, and the text of the www-authenticate header sent with a 401.
//
// The checks are those of an HTTP API JWT authorizer: the token's kid names a key of the issuer; the
// signature verifies with that key under an allowed algorithm that fits the key's type; iss equals the
// issuer; aud or client_id names a configured audience; exp is in the future; nbf and iat are not;
// and, when the route lists scopes, the token's scope or scp claim holds one of them.
//
// The package never logs. Errors say what failed without echoing the token or its claims.
package jwtauth

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Defaults and limits of a Config.
const (
	// DefaultHTTPTimeout bounds each request of the default HTTP client (discovery and JWKS).
	DefaultHTTPTimeout = 1500 * time.Millisecond
	// MaxDocumentBytes is the largest JWKS or discovery document accepted.
	MaxDocumentBytes = 150000
	// DefaultRefreshInterval is how often remote keys are fetched again.
	DefaultRefreshInterval = time.Hour
	// DefaultMinRefreshGap is the least time between two fetches caused by an unknown kid.
	DefaultMinRefreshGap = time.Minute
	// DefaultCacheSize is the number of verified tokens kept.
	DefaultCacheSize = 10000
	// MaxSkew is the largest clock leeway accepted.
	MaxSkew = 5 * time.Minute
	// MaxAudiences is the most audiences one authorizer accepts.
	MaxAudiences = 50
	// MaxTokenBytes is the longest token considered; longer ones are refused unparsed.
	MaxTokenBytes = 16 << 10
)

// DefaultAlgorithms are the algorithms allowed when Config.Algorithms is empty.
var DefaultAlgorithms = []string{"RS256", "RS384", "RS512"}

// supportedAlgorithms are the algorithms Config.Algorithms may name. HMAC algorithms are absent on
// purpose: the keys are public, so a shared-secret algorithm would let anyone sign.
var supportedAlgorithms = []string{"RS256", "RS384", "RS512", "ES256", "ES384", "EdDSA"}

// Config describes one JWT authorizer. The zero value of each optional field selects its default.
type Config struct {
	// Issuer is required; a token's iss must equal it exactly.
	Issuer string
	// Audiences holds 1 to 50 values; a token's aud (a string or an array) or its client_id must
	// equal one of them.
	Audiences []string
	// JWKSURL is where the signing keys are fetched. When both JWKSURL and JWKSFile are empty, the
	// keys' URL is the jwks_uri of Issuer + "/.well-known/openid-configuration".
	JWKSURL string
	// JWKSFile is a local JWKS file, read once by New and never refreshed. It excludes JWKSURL.
	JWKSFile string
	// Algorithms are the allowed signing algorithms, by default RS256, RS384 and RS512. ES256,
	// ES384 and EdDSA may be added. "none" and the HMAC algorithms (HS256, HS384, HS512) are refused.
	Algorithms []string
	// Skew is the clock leeway applied to exp, nbf and iat: 0 by default, at most 5 minutes.
	Skew time.Duration
	// HTTPClient fetches discovery and JWKS documents. The default client gives each request
	// 1500 ms. A client given here is used as it is. Documents over 150000 bytes are refused either way.
	HTTPClient *http.Client
	// RefreshInterval is how often remote keys are fetched again, by default 1 hour.
	RefreshInterval time.Duration
	// MinRefreshGap is the least time between two fetches caused by tokens with an unknown kid, by
	// default 1 minute. Tokens with an unknown kid inside the gap fail without a fetch.
	MinRefreshGap time.Duration
	// CacheSize is the number of verified tokens remembered, by default 10000. A negative value
	// turns the cache off.
	CacheSize int
	// Now returns the current time, by default time.Now. It drives the token time checks, the cache
	// expiry and the unknown-kid rate limit; the background refresh runs on real timers.
	Now func() time.Time
}

// Validate reports the first problem of c, without applying defaults or doing any I/O.
func (c Config) Validate() error {
	if c.Issuer == "" {
		return errors.New("jwtauth: issuer is required")
	}
	if len(c.Audiences) == 0 {
		return errors.New("jwtauth: at least one audience is required")
	}
	if len(c.Audiences) > MaxAudiences {
		return fmt.Errorf("jwtauth: %d audiences, at most %d allowed", len(c.Audiences), MaxAudiences)
	}
	for i, aud := range c.Audiences {
		if aud == "" {
			return fmt.Errorf("jwtauth: audience %d is empty", i)
		}
	}
	switch {
	case c.JWKSURL != "" && c.JWKSFile != "":
		return errors.New("jwtauth: set JWKSURL or JWKSFile, not both")
	case c.JWKSURL != "":
		if err := checkHTTPURL(c.JWKSURL); err != nil {
			return fmt.Errorf("jwtauth: JWKS URL: %w", err)
		}
	case c.JWKSFile == "":
		if err := checkHTTPURL(c.Issuer); err != nil {
			return fmt.Errorf("jwtauth: issuer (used for OpenID discovery): %w", err)
		}
	}
	for _, alg := range c.Algorithms {
		if !slices.Contains(supportedAlgorithms, alg) {
			return fmt.Errorf("jwtauth: algorithm %q is not allowed (allowed: %s)", alg, strings.Join(supportedAlgorithms, ", "))
		}
	}
	if c.Skew < 0 || c.Skew > MaxSkew {
		return fmt.Errorf("jwtauth: skew %v outside 0 to %v", c.Skew, MaxSkew)
	}
	if c.RefreshInterval < 0 {
		return fmt.Errorf("jwtauth: negative refresh interval %v", c.RefreshInterval)
	}
	if c.MinRefreshGap < 0 {
		return fmt.Errorf("jwtauth: negative minimum refresh gap %v", c.MinRefreshGap)
	}
	return nil
}

func checkHTTPURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return err
	}
	if (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return fmt.Errorf("%q is not an absolute http(s) URL", s)
	}
	return nil
}

// Errors of Authorize. Every error it returns wraps exactly one of them.
var (
	// ErrMissing means the identity value held no token. The gateway answers 401.
	ErrMissing = errors.New("missing token")
	// ErrInvalid means the token failed a check. The gateway answers 401.
	ErrInvalid = errors.New("invalid token")
	// ErrScope means a valid token holds none of the route's scopes. The gateway answers 403.
	ErrScope = errors.New("insufficient scope")
)

// authError is an Authorize error: a sentinel and a fixed description of what failed. Descriptions
// never contain token material, so they are safe in logs and in headers.
type authError struct {
	kind error
	desc string
}

func (e *authError) Error() string { return e.kind.Error() + ": " + e.desc }
func (e *authError) Unwrap() error { return e.kind }

func invalid(desc string) error { return &authError{kind: ErrInvalid, desc: desc} }

// Result is what a verified token gives the function, as API Gateway passes it.
type Result struct {
	// Claims holds every non-null claim as a string: strings as they are, numbers as written in
	// the token, booleans as "true"/"false", arrays as "[a b]" (elements space-separated), objects
	// as JSON text. The map is shared with the cache: treat it as read-only.
	Claims map[string]string
	// Scopes are the token's scopes when the route requires scopes, and nil otherwise (API Gateway
	// passes scopes only to functions behind routes with authorization scopes). Read-only, like Claims.
	Scopes []string
	// Expires is the token's exp.
	Expires time.Time
}

// Authorizer checks bearer tokens against one issuer. It is safe for concurrent use.
type Authorizer struct {
	issuer    string
	audiences []string
	algs      []string
	skew      time.Duration
	now       func() time.Time
	parser    *jwt.Parser

	keys          *keySource
	cache         *tokenCache // nil when off
	verifications atomic.Int64

	cancel    context.CancelFunc
	wg        sync.WaitGroup
	closeOnce sync.Once
}

// New validates cfg, loads the keys and returns an Authorizer. Call Close to stop its background work.
//
// With JWKSFile, the file is read here and a missing or unusable file is an error. With remote keys,
// New makes one attempt (discovery, then JWKS) bounded by ctx and the HTTP client's timeout, then
// starts a goroutine that fetches the keys again every RefreshInterval. A failed first attempt is
// not an error: an issuer that is down while the host starts must not keep the host down. The
// Authorizer is returned, the goroutine retries with a growing delay (1 s doubling up to
// RefreshInterval), and until keys load every token fails with ErrInvalid ("signing keys are not
// available"). ctx bounds only that first attempt; the goroutine lives until Close.
func New(ctx context.Context, cfg Config) (*Authorizer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	algs := cfg.Algorithms
	if len(algs) == 0 {
		algs = DefaultAlgorithms
	}
	algs = slices.Clone(algs)
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	a := &Authorizer{
		issuer:    cfg.Issuer,
		audiences: slices.Clone(cfg.Audiences),
		algs:      algs,
		skew:      cfg.Skew,
		now:       now,
		parser: jwt.NewParser(
			jwt.WithValidMethods(algs),
			jwt.WithJSONNumber(),
			jwt.WithStrictDecoding(),
			jwt.WithoutClaimsValidation(), // checked in checkClaims, with the injected clock and client_id
		),
	}
	switch size := cfg.CacheSize; {
	case size == 0:
		a.cache = newTokenCache(DefaultCacheSize)
	case size > 0:
		a.cache = newTokenCache(size)
	}

	ks := newKeySource(cfg, now)
	a.keys = ks
	if cfg.JWKSFile != "" {
		if err := ks.loadFile(cfg.JWKSFile); err != nil {
			return nil, err
		}
		return a, nil
	}
	firstErr := ks.refresh(ctx)
	bg, cancel := context.WithCancel(context.Background())
	a.cancel = cancel
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		ks.run(bg, firstErr == nil)
	}()
	return a, nil
}

// Close stops the background refresh and waits for it. Authorize keeps working on the keys already
// loaded. Close may be called more than once.
func (a *Authorizer) Close() {
	a.closeOnce.Do(func() {
		if a.cancel != nil {
			a.cancel()
		}
		a.wg.Wait()
	})
}

// Authorize checks an identity value (the Authorization header's value, with an optional "Bearer "
// prefix in any case) and the route's required scopes: the token must hold at least one of them;
// none means no scope check.
//
// # Errors
//
//   - ErrMissing: the identity value is empty or holds only the prefix.
//   - ErrInvalid: anything wrong with the token (malformed, algorithm, kid unknown even after a
//     refresh, signature, iss, aud/client_id, exp, nbf, iat).
//   - ErrScope: the token is valid but holds none of scopes.
//
// A token verified before is answered from the cache until its exp; the scope and exp checks run
// on every call.
func (a *Authorizer) Authorize(ctx context.Context, identity string, scopes []string) (Result, error) {
	raw := bearerToken(identity)
	if raw == "" {
		return Result{}, &authError{kind: ErrMissing, desc: "no token in the identity source"}
	}
	if len(raw) > MaxTokenBytes {
		return Result{}, invalid("token is too long")
	}
	now := a.now()
	var key [sha256.Size]byte
	if a.cache != nil {
		key = sha256.Sum256([]byte(raw))
		if v, ok := a.cache.get(key); ok {
			if !now.Before(v.expires.Add(a.skew)) {
				a.cache.remove(key)
				return Result{}, invalid("token has expired")
			}
			return v.result(scopes)
		}
	}
	v, err := a.verify(ctx, raw, now)
	if err != nil {
		return Result{}, err
	}
	if a.cache != nil {
		a.cache.put(key, v)
	}
	return v.result(scopes)
}

// bearerToken strips surrounding space and an optional "Bearer " prefix (any case).
func bearerToken(identity string) string {
	s := strings.TrimSpace(identity)
	const prefix = "bearer"
	if len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix) {
		rest := s[len(prefix):]
		if rest == "" {
			return ""
		}
		if rest[0] == ' ' || rest[0] == '\t' {
			return strings.TrimSpace(rest)
		}
	}
	return s
}

// verified is a token that passed every check but the route's scopes.
type verified struct {
	claims  map[string]string
	scopes  []string
	expires time.Time
}

func (v *verified) result(required []string) (Result, error) {
	if len(required) == 0 {
		return Result{Claims: v.claims, Expires: v.expires}, nil
	}
	for _, s := range required {
		if slices.Contains(v.scopes, s) {
			return Result{Claims: v.claims, Scopes: v.scopes, Expires: v.expires}, nil
		}
	}
	return Result{}, &authError{kind: ErrScope, desc: "token holds none of the route's scopes"}
}

// verify runs every check of a token that is not in the cache.
func (a *Authorizer) verify(ctx context.Context, raw string, now time.Time) (*verified, error) {
	claims := jwt.MapClaims{}
	tok, err := a.parser.ParseWithClaims(raw, claims, func(t *jwt.Token) (any, error) {
		return a.keyFor(ctx, t)
	})
	a.verifications.Add(1)
	if err != nil {
		return nil, a.parseError(tok, err)
	}
	exp, err := a.checkClaims(claims, now)
	if err != nil {
		return nil, err
	}
	return &verified{claims: stringClaims(claims), scopes: tokenScopes(claims), expires: exp}, nil
}

// keyFor is the parser's key function: it runs after the algorithm passed the allowed list and
// returns the key of the token's kid, refusing a key whose type does not fit the algorithm.
func (a *Authorizer) keyFor(ctx context.Context, t *jwt.Token) (any, error) {
	if _, ok := t.Header["crit"]; ok {
		return nil, invalid("token has critical header parameters")
	}
	kid, _ := t.Header["kid"].(string)
	if kid == "" {
		return nil, invalid("token has no kid")
	}
	k, err := a.keys.lookup(ctx, kid)
	if err != nil {
		return nil, err
	}
	alg := t.Method.Alg()
	if !k.fits(alg) {
		return nil, invalid("signing algorithm does not match the key")
	}
	return k.pub, nil
}

// parseError turns a parser error into an ErrInvalid with a fixed description.
func (a *Authorizer) parseError(tok *jwt.Token, err error) error {
	var ae *authError
	switch {
	case errors.As(err, &ae):
		return ae
	case errors.Is(err, jwt.ErrTokenMalformed):
		return invalid("token is malformed")
	case tok != nil && tok.Method != nil && !slices.Contains(a.algs, tok.Method.Alg()):
		return invalid("signing algorithm is not allowed")
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return invalid("signature is invalid")
	case errors.Is(err, jwt.ErrTokenUnverifiable):
		return invalid("signing algorithm is missing or not supported")
	default:
		return invalid("token is invalid")
	}
}

// checkClaims checks iss, aud/client_id, exp, nbf and iat, and returns exp.
func (a *Authorizer) checkClaims(c jwt.MapClaims, now time.Time) (time.Time, error) {
	if iss, _ := c["iss"].(string); iss != a.issuer {
		return time.Time{}, invalid("token issuer does not match")
	}
	if !a.audienceOK(c) {
		return time.Time{}, invalid("token does not have a valid audience")
	}
	rawExp, ok := c["exp"]
	if !ok {
		return time.Time{}, invalid("token has no exp")
	}
	exp, ok := numericDate(rawExp)
	if !ok {
		return time.Time{}, invalid("token exp is not a number")
	}
	if !now.Before(exp.Add(a.skew)) {
		return time.Time{}, invalid("token has expired")
	}
	if raw, ok := c["nbf"]; ok {
		nbf, ok := numericDate(raw)
		if !ok {
			return time.Time{}, invalid("token nbf is not a number")
		}
		if nbf.After(now.Add(a.skew)) {
			return time.Time{}, invalid("token is not valid yet")
		}
	}
	if raw, ok := c["iat"]; ok {
		iat, ok := numericDate(raw)
		if !ok {
			return time.Time{}, invalid("token iat is not a number")
		}
		if iat.After(now.Add(a.skew)) {
			return time.Time{}, invalid("token was issued in the future")
		}
	}
	return exp, nil
}

func (a *Authorizer) audienceOK(c jwt.MapClaims) bool {
	switch aud := c["aud"].(type) {
	case string:
		if slices.Contains(a.audiences, aud) {
			return true
		}
	case []any:
		for _, v := range aud {
			if s, ok := v.(string); ok && slices.Contains(a.audiences, s) {
				return true
			}
		}
	}
	cid, ok := c["client_id"].(string)
	return ok && slices.Contains(a.audiences, cid)
}

// WWWAuthenticate returns the www-authenticate header value for a 401 answer to err:
//
//	Bearer scope="" error="invalid_token" error_description="token has expired"
//
// It returns "" when err is nil or does not call for a 401 (ErrScope, for one).
func WWWAuthenticate(err error) string {
	if err == nil || !(errors.Is(err, ErrMissing) || errors.Is(err, ErrInvalid)) {
		return ""
	}
	desc := err.Error()
	var ae *authError
	if errors.As(err, &ae) {
		desc = ae.desc
	}
	return `Bearer scope="" error="invalid_token" error_description="` + quotable(desc) + `"`
}

// quotable drops what cannot appear inside a quoted header parameter.
func quotable(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '"' || r == '\\' || r < 0x20 || r >= 0x7f {
			return -1
		}
		return r
	}, s)
}
