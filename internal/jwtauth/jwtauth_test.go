package jwtauth

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"
)

// t0 is the tests' "now".
var t0 = time.Unix(1_700_000_000, 0)

// clock is an injectable Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: t0} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// testKey is a signing key of the test issuer.
type testKey struct {
	kid    string
	alg    string // the JWK's alg; "" leaves it out
	priv   crypto.Signer
	method jwt.SigningMethod
}

type keyRing struct {
	rsa, rsa2, rsaOther, ec, ed testKey
}

// keys are generated once per test binary: RSA generation is slow.
var keys = sync.OnceValue(func() keyRing {
	genRSA := func() *rsa.PrivateKey {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		return k
	}
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	_, ed, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		panic(err)
	}
	return keyRing{
		rsa:      testKey{kid: "rsa-1", priv: genRSA(), method: jwt.SigningMethodRS256},
		rsa2:     testKey{kid: "rsa-2", priv: genRSA(), method: jwt.SigningMethodRS256},
		rsaOther: testKey{kid: "rsa-1", priv: genRSA(), method: jwt.SigningMethodRS256}, // same kid, not published
		ec:       testKey{kid: "ec-1", priv: ec, method: jwt.SigningMethodES256},
		ed:       testKey{kid: "ed-1", alg: "EdDSA", priv: ed, method: jwt.SigningMethodEdDSA},
	}
})

func jwksOf(t testing.TB, ks ...testKey) []byte {
	t.Helper()
	var set jwkset.JWKSMarshal
	for _, k := range ks {
		jwk, err := jwkset.NewJWKFromKey(k.priv.Public(), jwkset.JWKOptions{
			Metadata: jwkset.JWKMetadataOptions{KID: k.kid, ALG: jwkset.ALG(k.alg), USE: jwkset.UseSig},
		})
		if err != nil {
			t.Fatal(err)
		}
		set.Keys = append(set.Keys, jwk.Marshal())
	}
	b, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// issuer is an OpenID provider served by httptest: discovery at the well-known path, keys at /jwks.
type issuer struct {
	srv       *httptest.Server
	jwks      atomic.Pointer[[]byte]
	down      atomic.Bool
	jwksHits  atomic.Int64
	discovery atomic.Int64
}

func newIssuer(t testing.TB, ks ...testKey) *issuer {
	t.Helper()
	is := &issuer{}
	is.serve(t, ks...)
	mux := http.NewServeMux()
	mux.HandleFunc("/.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		is.discovery.Add(1)
		if is.down.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintf(w, `{"issuer":%q,"jwks_uri":%q}`, is.srv.URL, is.srv.URL+"/jwks")
	})
	mux.HandleFunc("/jwks", func(w http.ResponseWriter, r *http.Request) {
		is.jwksHits.Add(1)
		if is.down.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(*is.jwks.Load())
	})
	is.srv = httptest.NewServer(mux)
	t.Cleanup(is.srv.Close)
	return is
}

func (is *issuer) serve(t testing.TB, ks ...testKey) {
	b := jwksOf(t, ks...)
	is.jwks.Store(&b)
}

func (is *issuer) config(c *clock) Config {
	return Config{
		Issuer:     is.srv.URL,
		Audiences:  []string{"api", "other-api"},
		Algorithms: []string{"RS256", "ES256", "EdDSA"},
		Now:        c.Now,
	}
}

func newAuthorizer(t testing.TB, cfg Config) *Authorizer {
	t.Helper()
	a, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(a.Close)
	return a
}

// claims are a valid token's claims at t0 for issuer iss.
func claims(iss string, edit func(jwt.MapClaims)) jwt.MapClaims {
	c := jwt.MapClaims{
		"iss": iss,
		"aud": "api",
		"sub": "user-1",
		"exp": t0.Add(time.Hour).Unix(),
		"iat": t0.Add(-time.Minute).Unix(),
	}
	if edit != nil {
		edit(c)
	}
	return c
}

func sign(t testing.TB, k testKey, c jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(k.method, c)
	tok.Header["kid"] = k.kid
	s, err := tok.SignedString(k.priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestAuthorize(t *testing.T) {
	kr := keys()
	is := newIssuer(t, kr.rsa, kr.ec, kr.ed)
	a := newAuthorizer(t, is.config(newClock()))
	iss := is.srv.URL
	valid := sign(t, kr.rsa, claims(iss, nil))

	rsaPEM := func() []byte {
		der, err := x509.MarshalPKIXPublicKey(kr.rsa.priv.Public())
		if err != nil {
			t.Fatal(err)
		}
		return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	}()
	withHeader := func(method jwt.SigningMethod, key any, hdr map[string]any, c jwt.MapClaims) string {
		tok := jwt.NewWithClaims(method, c)
		for k, v := range hdr {
			tok.Header[k] = v
		}
		s, err := tok.SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	tampered := func() string {
		parts := strings.Split(valid, ".")
		other := strings.Split(sign(t, kr.rsa, claims(iss, func(c jwt.MapClaims) { c["sub"] = "admin" })), ".")
		return parts[0] + "." + other[1] + "." + parts[2]
	}()

	tests := []struct {
		name       string
		identity   string
		scopes     []string
		wantErr    error
		wantDesc   string   // part of the error text
		wantScopes []string // checked when wantErr is nil
	}{
		{name: "valid RS256", identity: "Bearer " + valid},
		{name: "valid ES256", identity: sign(t, kr.ec, claims(iss, nil))},
		{name: "valid EdDSA", identity: sign(t, kr.ed, claims(iss, nil))},
		{name: "no prefix", identity: valid},
		{name: "lowercase bearer", identity: "bearer " + valid},
		{name: "uppercase bearer and spaces", identity: "  BEARER   " + valid + " "},
		{name: "missing", identity: "", wantErr: ErrMissing},
		{name: "blank", identity: "   ", wantErr: ErrMissing},
		{name: "prefix only", identity: "Bearer ", wantErr: ErrMissing},
		{name: "garbage", identity: "Bearer not-a-token", wantErr: ErrInvalid, wantDesc: "malformed"},
		{name: "garbage three parts", identity: "a.b.c", wantErr: ErrInvalid, wantDesc: "malformed"},
		{name: "garbage json", identity: "e30.e30.", wantErr: ErrInvalid},
		{name: "too long", identity: strings.Repeat("a", MaxTokenBytes+1), wantErr: ErrInvalid, wantDesc: "too long"},
		{name: "forged signature", identity: sign(t, kr.rsaOther, claims(iss, nil)), wantErr: ErrInvalid, wantDesc: "signature is invalid"},
		{name: "tampered payload", identity: tampered, wantErr: ErrInvalid, wantDesc: "signature is invalid"},
		{name: "expired", identity: sign(t, kr.rsa, claims(iss, func(c jwt.MapClaims) { c["exp"] = t0.Add(-time.Second).Unix() })), wantErr: ErrInvalid, wantDesc: "expired"},
		{name: "exp equals now", identity: sign(t, kr.rsa, claims(iss, func(c jwt.MapClaims) { c["exp"] = t0.Unix() })), wantErr: ErrInvalid, wantDesc: "expired"},
		{name: "no exp", identity: sign(t, kr.rsa, claims(iss, func(c jwt.MapClaims) { delete(c, "exp") })), wantErr: ErrInvalid, wantDesc: "no exp"},
		{name: "exp as string", identity: sign(t, kr.rsa, claims(iss, func(c jwt.MapClaims) { c["exp"] = "9999999999" })), wantErr: ErrInvalid, wantDesc: "not a number"},
		{name: "nbf in future", identity: sign(t, kr.rsa, claims(iss, func(c jwt.MapClaims) { c["nbf"] = t0.Add(10 * time.Second).Unix() })), wantErr: ErrInvalid, wantDesc: "not valid yet"},
		{name: "nbf now", identity: sign(t, kr.rsa, claims(iss, func(c jwt.MapClaims) { c["nbf"] = t0.Unix() }))},
		{name: "iat in future", identity: sign(t, kr.rsa, claims(iss, func(c jwt.MapClaims) { c["iat"] = t0.Add(10 * time.Second).Unix() })), wantErr: ErrInvalid, wantDesc: "issued in the future"},
		{name: "no iat", identity: sign(t, kr.rsa, claims(iss, func(c jwt.MapClaims) { delete(c, "iat") }))},
		{name: "wrong issuer", identity: sign(t, kr.rsa, claims(iss+"/evil", nil)), wantErr: ErrInvalid, wantDesc: "issuer"},
		{name: "no issuer", identity: sign(t, kr.rsa, claims(iss, func(c jwt.MapClaims) { delete(c, "iss") })), wantErr: ErrInvalid, wantDesc: "issuer"},
		{name: "wrong audience", identity: sign(t, kr.rsa, claims(iss, func(c jwt.MapClaims) { c["aud"] = "someone-else" })), wantErr: ErrInvalid, wantDesc: "audience"},
		{name: "audience array", identity: sign(t, kr.rsa, claims(iss, func(c jwt.MapClaims) { c["aud"] = []string{"x", "other-api"} }))},
		{name: "wrong audience array", identity: sign(t, kr.rsa, claims(iss, func(c jwt.MapClaims) { c["aud"] = []string{"x", "y"} })), wantErr: ErrInvalid, wantDesc: "audience"},
		{name: "client_id accepted", identity: sign(t, kr.rsa, claims(iss, func(c jwt.MapClaims) { c["aud"] = "someone-else"; c["client_id"] = "api" }))},
		{name: "client_id without aud", identity: sign(t, kr.rsa, claims(iss, func(c jwt.MapClaims) { delete(c, "aud"); c["client_id"] = "api" }))},
		{name: "wrong client_id", identity: sign(t, kr.rsa, claims(iss, func(c jwt.MapClaims) { delete(c, "aud"); c["client_id"] = "nope" })), wantErr: ErrInvalid, wantDesc: "audience"},
		{name: "alg none", identity: withHeader(jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, map[string]any{"kid": "rsa-1"}, claims(iss, nil)), wantErr: ErrInvalid, wantDesc: "not allowed"},
		{name: "HS256 with the RSA public key", identity: withHeader(jwt.SigningMethodHS256, rsaPEM, map[string]any{"kid": "rsa-1"}, claims(iss, nil)), wantErr: ErrInvalid, wantDesc: "not allowed"},
		{name: "RS384 not allowed", identity: withHeader(jwt.SigningMethodRS384, kr.rsa.priv, map[string]any{"kid": "rsa-1"}, claims(iss, nil)), wantErr: ErrInvalid, wantDesc: "not allowed"},
		{name: "RS256 on the EC key's kid", identity: withHeader(jwt.SigningMethodRS256, kr.rsa.priv, map[string]any{"kid": "ec-1"}, claims(iss, nil)), wantErr: ErrInvalid, wantDesc: "does not match the key"},
		{name: "ES256 on the RSA key's kid", identity: withHeader(jwt.SigningMethodES256, kr.ec.priv, map[string]any{"kid": "rsa-1"}, claims(iss, nil)), wantErr: ErrInvalid, wantDesc: "does not match the key"},
		{name: "unknown alg", identity: "eyJhbGciOiJYWVoiLCJraWQiOiJyc2EtMSJ9.e30.c2ln", wantErr: ErrInvalid, wantDesc: "not supported"},
		{name: "no kid", identity: withHeader(jwt.SigningMethodRS256, kr.rsa.priv, nil, claims(iss, nil)), wantErr: ErrInvalid, wantDesc: "no kid"},
		{name: "unknown kid", identity: withHeader(jwt.SigningMethodRS256, kr.rsa.priv, map[string]any{"kid": "nobody"}, claims(iss, nil)), wantErr: ErrInvalid, wantDesc: "no key matches"},
		{name: "crit header", identity: withHeader(jwt.SigningMethodRS256, kr.rsa.priv, map[string]any{"kid": "rsa-1", "crit": []string{"exp"}}, claims(iss, nil)), wantErr: ErrInvalid, wantDesc: "critical"},
		{name: "scope matches", identity: sign(t, kr.rsa, claims(iss, func(c jwt.MapClaims) { c["scope"] = "write read" })), scopes: []string{"read"}, wantScopes: []string{"write", "read"}},
		{name: "one of the route's scopes", identity: sign(t, kr.rsa, claims(iss, func(c jwt.MapClaims) { c["scope"] = "b" })), scopes: []string{"a", "b"}, wantScopes: []string{"b"}},
		{name: "scope missing", identity: sign(t, kr.rsa, claims(iss, func(c jwt.MapClaims) { c["scope"] = "write" })), scopes: []string{"read"}, wantErr: ErrScope},
		{name: "no scope claim", identity: valid, scopes: []string{"read"}, wantErr: ErrScope},
		{name: "scp array", identity: sign(t, kr.rsa, claims(iss, func(c jwt.MapClaims) { c["scp"] = []string{"x", "read"} })), scopes: []string{"read"}, wantScopes: []string{"x", "read"}},
		{name: "scp string", identity: sign(t, kr.rsa, claims(iss, func(c jwt.MapClaims) { c["scp"] = "x read" })), scopes: []string{"read"}, wantScopes: []string{"x", "read"}},
		{name: "scp array without the scope", identity: sign(t, kr.rsa, claims(iss, func(c jwt.MapClaims) { c["scp"] = []string{"x"} })), scopes: []string{"read"}, wantErr: ErrScope},
		{name: "no route scopes, scopes nil", identity: sign(t, kr.rsa, claims(iss, func(c jwt.MapClaims) { c["scope"] = "read" }))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Twice: the second call may be answered by the cache and must agree.
			for i := range 2 {
				res, err := a.Authorize(context.Background(), tt.identity, tt.scopes)
				if tt.wantErr == nil {
					if err != nil {
						t.Fatalf("call %d: %v", i, err)
					}
					if res.Claims["sub"] == "" || !res.Expires.Equal(t0.Add(time.Hour)) {
						t.Fatalf("call %d: result %+v", i, res)
					}
					if !slices.Equal(res.Scopes, tt.wantScopes) {
						t.Fatalf("call %d: scopes %q, want %q", i, res.Scopes, tt.wantScopes)
					}
					continue
				}
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("call %d: error %v, want %v", i, err, tt.wantErr)
				}
				if !strings.Contains(err.Error(), tt.wantDesc) {
					t.Fatalf("call %d: error %q does not say %q", i, err, tt.wantDesc)
				}
				noEcho(t, err, tt.identity)
			}
		})
	}
}

// noEcho fails when err's text carries a piece of the token.
func noEcho(t *testing.T, err error, identity string) {
	t.Helper()
	for _, part := range strings.Split(bearerToken(identity), ".") {
		if len(part) >= 4 && strings.Contains(err.Error(), part) {
			t.Fatalf("error %q echoes the token", err)
		}
		if len(part) >= 4 && strings.Contains(WWWAuthenticate(err), part) {
			t.Fatalf("www-authenticate %q echoes the token", WWWAuthenticate(err))
		}
	}
}

func TestSkew(t *testing.T) {
	kr := keys()
	is := newIssuer(t, kr.rsa)
	cfg := is.config(newClock())
	cfg.Skew = 30 * time.Second
	a := newAuthorizer(t, cfg)
	tests := []struct {
		name string
		edit func(jwt.MapClaims)
		ok   bool
	}{
		{"expired inside skew", func(c jwt.MapClaims) { c["exp"] = t0.Add(-20 * time.Second).Unix() }, true},
		{"expired beyond skew", func(c jwt.MapClaims) { c["exp"] = t0.Add(-30 * time.Second).Unix() }, false},
		{"nbf inside skew", func(c jwt.MapClaims) { c["nbf"] = t0.Add(30 * time.Second).Unix() }, true},
		{"nbf beyond skew", func(c jwt.MapClaims) { c["nbf"] = t0.Add(31 * time.Second).Unix() }, false},
		{"iat inside skew", func(c jwt.MapClaims) { c["iat"] = t0.Add(30 * time.Second).Unix() }, true},
		{"iat beyond skew", func(c jwt.MapClaims) { c["iat"] = t0.Add(31 * time.Second).Unix() }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := a.Authorize(context.Background(), sign(t, kr.rsa, claims(is.srv.URL, tt.edit)), nil)
			if (err == nil) != tt.ok {
				t.Fatalf("err %v, want ok=%v", err, tt.ok)
			}
		})
	}
}

func TestClaimsAsStrings(t *testing.T) {
	kr := keys()
	is := newIssuer(t, kr.rsa)
	a := newAuthorizer(t, is.config(newClock()))
	tok := sign(t, kr.rsa, claims(is.srv.URL, func(c jwt.MapClaims) {
		c["exp"] = json.Number("1700003600")
		c["num"] = json.Number("1.5")
		c["big"] = json.Number("12345678901234567890")
		c["flag"] = true
		c["groups"] = []any{"admin", "poweruser"}
		c["mixed"] = []any{"a", json.Number("1"), false, map[string]any{"k": "v"}}
		c["obj"] = map[string]any{"b": []any{json.Number("1"), json.Number("2")}, "a": "x"}
		c["nothing"] = nil
		c["empty"] = ""
	}))
	res, err := a.Authorize(context.Background(), tok, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"iss":    is.srv.URL,
		"aud":    "api",
		"sub":    "user-1",
		"exp":    "1700003600",
		"iat":    "1699999940",
		"num":    "1.5",
		"big":    "12345678901234567890",
		"flag":   "true",
		"groups": "[admin poweruser]",
		"mixed":  `[a 1 false {"k":"v"}]`,
		"obj":    `{"a":"x","b":[1,2]}`,
		"empty":  "",
	}
	if fmt.Sprint(res.Claims) != fmt.Sprint(want) {
		t.Fatalf("claims\n got %v\nwant %v", res.Claims, want)
	}
}

func TestKeyRotation(t *testing.T) {
	kr := keys()
	is := newIssuer(t, kr.rsa)
	c := newClock()
	cfg := is.config(c)
	cfg.CacheSize = -1
	a := newAuthorizer(t, cfg)
	ctx := context.Background()
	if got := is.jwksHits.Load(); got != 1 {
		t.Fatalf("JWKS fetched %d times at start, want 1", got)
	}

	rotated := sign(t, kr.rsa2, claims(is.srv.URL, nil))
	// The issuer has not published rsa-2 yet: one refresh, then failure.
	if _, err := a.Authorize(ctx, rotated, nil); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "no key matches") {
		t.Fatalf("before rotation: %v", err)
	}
	if got := is.jwksHits.Load(); got != 2 {
		t.Fatalf("JWKS fetched %d times after an unknown kid, want 2", got)
	}

	// Rotation: the issuer now serves only rsa-2. Inside the gap, unknown kids cause no fetch.
	is.serve(t, kr.rsa2)
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			if _, err := a.Authorize(ctx, rotated, nil); !errors.Is(err, ErrInvalid) {
				t.Errorf("inside the gap: %v", err)
			}
		})
	}
	wg.Wait()
	if got := is.jwksHits.Load(); got != 2 {
		t.Fatalf("a burst of unknown kids fetched the JWKS %d times inside the gap, want 0", got-2)
	}

	// After the gap, a burst causes exactly one fetch and the new key verifies.
	c.Add(DefaultMinRefreshGap)
	var ok atomic.Int64
	for range 50 {
		wg.Go(func() {
			if _, err := a.Authorize(ctx, rotated, nil); err == nil {
				ok.Add(1)
			}
		})
	}
	wg.Wait()
	if got := is.jwksHits.Load(); got != 3 {
		t.Fatalf("JWKS fetched %d times after the gap, want 3", got)
	}
	if ok.Load() != 50 {
		t.Fatalf("%d of 50 rotated tokens accepted", ok.Load())
	}
	// The old key is gone with the old set.
	if _, err := a.Authorize(ctx, sign(t, kr.rsa, claims(is.srv.URL, nil)), nil); !errors.Is(err, ErrInvalid) {
		t.Fatalf("token of a withdrawn key: %v", err)
	}
	if got := is.discovery.Load(); got != 1 {
		t.Fatalf("discovery ran %d times, want 1", got)
	}
}

func TestCache(t *testing.T) {
	kr := keys()
	is := newIssuer(t, kr.rsa)
	c := newClock()
	a := newAuthorizer(t, is.config(c))
	ctx := context.Background()
	tok := sign(t, kr.rsa, claims(is.srv.URL, func(c jwt.MapClaims) { c["scope"] = "read" }))

	for range 3 {
		if _, err := a.Authorize(ctx, "Bearer "+tok, []string{"read"}); err != nil {
			t.Fatal(err)
		}
	}
	if got := a.verifications.Load(); got != 1 {
		t.Fatalf("%d verifications for one token used 3 times, want 1", got)
	}
	// A hit still checks the route's scopes.
	if _, err := a.Authorize(ctx, tok, []string{"write"}); !errors.Is(err, ErrScope) {
		t.Fatalf("cached token, missing scope: %v", err)
	}

	// Rotate the key away: the cached token stays accepted, a fresh one of the old key does not.
	is.serve(t, kr.rsa2)
	if err := a.keys.refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Authorize(ctx, tok, nil); err != nil {
		t.Fatalf("cached token after rotation: %v", err)
	}
	fresh := sign(t, kr.rsa, claims(is.srv.URL, func(c jwt.MapClaims) { c["jti"] = "new" }))
	if _, err := a.Authorize(ctx, fresh, nil); !errors.Is(err, ErrInvalid) {
		t.Fatalf("uncached token of the withdrawn key: %v", err)
	}

	// Past exp the cached entry is refused.
	c.Add(time.Hour - time.Second)
	if _, err := a.Authorize(ctx, tok, nil); err != nil {
		t.Fatalf("one second before exp: %v", err)
	}
	c.Add(time.Second)
	if _, err := a.Authorize(ctx, tok, nil); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "expired") {
		t.Fatalf("cached token at exp: %v", err)
	}
	if a.cache.len() != 0 {
		t.Fatalf("expired entry kept")
	}
}

func TestCacheBounded(t *testing.T) {
	kr := keys()
	is := newIssuer(t, kr.rsa)
	cfg := is.config(newClock())
	cfg.CacheSize = 3
	a := newAuthorizer(t, cfg)
	for i := range 10 {
		tok := sign(t, kr.rsa, claims(is.srv.URL, func(c jwt.MapClaims) { c["jti"] = fmt.Sprint(i) }))
		if _, err := a.Authorize(context.Background(), tok, nil); err != nil {
			t.Fatal(err)
		}
		if n := a.cache.len(); n > 3 {
			t.Fatalf("cache holds %d entries, limit 3", n)
		}
	}
}

func TestJWKSTooLarge(t *testing.T) {
	kr := keys()
	is := newIssuer(t, kr.rsa)
	big := append(jwksOf(t, kr.rsa), strings.Repeat(" ", MaxDocumentBytes)...)
	is.jwks.Store(&big)
	a := newAuthorizer(t, is.config(newClock()))
	if err := a.keys.refresh(context.Background()); !errors.Is(err, errTooLarge) {
		t.Fatalf("refresh of an oversized JWKS: %v", err)
	}
	_, err := a.Authorize(context.Background(), sign(t, kr.rsa, claims(is.srv.URL, nil)), nil)
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "not available") {
		t.Fatalf("token with no keys loaded: %v", err)
	}

	// Exactly the limit is fine.
	ok := jwksOf(t, kr.rsa)
	ok = append(ok, strings.Repeat(" ", MaxDocumentBytes-len(ok))...)
	is.jwks.Store(&ok)
	if err := a.keys.refresh(context.Background()); err != nil {
		t.Fatalf("JWKS of exactly %d bytes: %v", MaxDocumentBytes, err)
	}
}

func TestJWKSFile(t *testing.T) {
	kr := keys()
	path := filepath.Join(t.TempDir(), "jwks.json")
	if err := os.WriteFile(path, jwksOf(t, kr.rsa, kr.ed), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := Config{
		Issuer:     "https://issuer.invalid",
		Audiences:  []string{"api"},
		JWKSFile:   path,
		Algorithms: []string{"RS256", "EdDSA"},
		Now:        newClock().Now,
	}
	a := newAuthorizer(t, cfg)
	for _, k := range []testKey{kr.rsa, kr.ed} {
		if _, err := a.Authorize(context.Background(), sign(t, k, claims(cfg.Issuer, nil)), nil); err != nil {
			t.Fatalf("%s: %v", k.kid, err)
		}
	}
	// An unknown kid fails at once: a file is never fetched again.
	if _, err := a.Authorize(context.Background(), sign(t, kr.rsa2, claims(cfg.Issuer, nil)), nil); !errors.Is(err, ErrInvalid) {
		t.Fatalf("unknown kid: %v", err)
	}

	for name, content := range map[string]string{
		"missing":    "",
		"not json":   "{",
		"no keys":    `{"keys":[]}`,
		"only HMAC":  `{"keys":[{"kty":"oct","kid":"h","k":"c2VjcmV0"}]}`,
		"no kid":     strings.Replace(string(jwksOf(t, kr.rsa)), `"kid":"rsa-1",`, "", 1),
		"enc key":    strings.Replace(string(jwksOf(t, kr.rsa)), `"use":"sig"`, `"use":"enc"`, 1),
		"duplicates": strings.Replace(string(jwksOf(t, kr.rsa, kr.rsa2)), `"rsa-2"`, `"rsa-1"`, 1),
	} {
		t.Run(name, func(t *testing.T) {
			cfg := cfg
			cfg.JWKSFile = filepath.Join(t.TempDir(), "jwks.json")
			if content != "" {
				if err := os.WriteFile(cfg.JWKSFile, []byte(content), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			if a, err := New(context.Background(), cfg); err == nil {
				a.Close()
				t.Fatal("New accepted the file")
			}
		})
	}
}

func TestIssuerDownAtStart(t *testing.T) {
	kr := keys()
	is := newIssuer(t, kr.rsa)
	is.down.Store(true)
	c := newClock()
	cfg := is.config(c)
	cfg.RefreshInterval = 50 * time.Millisecond
	a := newAuthorizer(t, cfg)
	tok := sign(t, kr.rsa, claims(is.srv.URL, nil))
	if _, err := a.Authorize(context.Background(), tok, nil); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "not available") {
		t.Fatalf("issuer down: %v", err)
	}
	is.down.Store(false)
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, err := a.Authorize(context.Background(), tok, nil)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("keys never loaded in the background: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestClose(t *testing.T) {
	kr := keys()
	is := newIssuer(t, kr.rsa)
	cfg := is.config(newClock())
	cfg.RefreshInterval = time.Millisecond
	a, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	// The background refresh runs (every millisecond here) before Close.
	for start := time.Now(); is.jwksHits.Load() < 2; time.Sleep(time.Millisecond) {
		if time.Since(start) > 5*time.Second {
			t.Fatalf("background refresh did not run (%d fetches)", is.jwksHits.Load())
		}
	}
	a.Close()
	a.Close()
	// A fetch that Close cancelled may still reach the test server a moment later: count once the
	// count stops moving, then check that it stays put for far longer than the refresh interval.
	hits := is.jwksHits.Load()
	for start := time.Now(); ; hits = is.jwksHits.Load() {
		time.Sleep(100 * time.Millisecond)
		if is.jwksHits.Load() == hits {
			break
		}
		if time.Since(start) > 5*time.Second {
			t.Fatalf("fetches went on after Close: %d and counting", is.jwksHits.Load())
		}
	}
	time.Sleep(300 * time.Millisecond)
	if got := is.jwksHits.Load(); got != hits {
		t.Fatalf("fetches went on after Close: %d then %d", hits, got)
	}
	// Keys loaded before Close still verify.
	if _, err := a.Authorize(context.Background(), sign(t, kr.rsa, claims(is.srv.URL, nil)), nil); err != nil {
		t.Fatal(err)
	}
}

func TestJWKSURL(t *testing.T) {
	kr := keys()
	is := newIssuer(t, kr.rsa)
	cfg := is.config(newClock())
	cfg.JWKSURL = is.srv.URL + "/jwks"
	a := newAuthorizer(t, cfg)
	if _, err := a.Authorize(context.Background(), sign(t, kr.rsa, claims(is.srv.URL, nil)), nil); err != nil {
		t.Fatal(err)
	}
	if is.discovery.Load() != 0 {
		t.Fatal("discovery ran although JWKSURL was set")
	}
}

func TestConfigRefused(t *testing.T) {
	good := Config{Issuer: "https://issuer.example", Audiences: []string{"api"}}
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		edit func(*Config)
	}{
		{"no issuer", func(c *Config) { c.Issuer = "" }},
		{"issuer not a URL for discovery", func(c *Config) { c.Issuer = "issuer" }},
		{"no audience", func(c *Config) { c.Audiences = nil }},
		{"empty audience", func(c *Config) { c.Audiences = []string{""} }},
		{"51 audiences", func(c *Config) { c.Audiences = make([]string, 51) }},
		{"alg none", func(c *Config) { c.Algorithms = []string{"none"} }},
		{"HS256", func(c *Config) { c.Algorithms = []string{"RS256", "HS256"} }},
		{"HS512", func(c *Config) { c.Algorithms = []string{"HS512"} }},
		{"PS256", func(c *Config) { c.Algorithms = []string{"PS256"} }},
		{"negative skew", func(c *Config) { c.Skew = -time.Second }},
		{"skew over 5 min", func(c *Config) { c.Skew = 5*time.Minute + time.Second }},
		{"URL and file", func(c *Config) { c.JWKSURL = "https://x/jwks"; c.JWKSFile = "jwks.json" }},
		{"bad JWKS URL", func(c *Config) { c.JWKSURL = "ftp://x/jwks" }},
		{"negative refresh", func(c *Config) { c.RefreshInterval = -1 }},
		{"negative gap", func(c *Config) { c.MinRefreshGap = -1 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := good
			tt.edit(&cfg)
			if a, err := New(context.Background(), cfg); err == nil {
				a.Close()
				t.Fatal("New accepted the config")
			}
		})
	}
}

func TestKeyFitsAlgorithm(t *testing.T) {
	kr := keys()
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	rsaKey := pubKey{pub: kr.rsa.priv.Public()}
	ecKey := pubKey{pub: kr.ec.priv.Public()}
	tests := []struct {
		key  pubKey
		alg  string
		want bool
	}{
		{rsaKey, "RS256", true},
		{rsaKey, "RS512", true},
		{rsaKey, "HS256", false}, // algorithm confusion
		{rsaKey, "ES256", false},
		{rsaKey, "none", false},
		{pubKey{pub: kr.rsa.priv.Public(), alg: "RS512"}, "RS256", false},
		{ecKey, "ES256", true},
		{ecKey, "ES384", false},
		{pubKey{pub: p384.Public()}, "ES384", true},
		{pubKey{pub: kr.ed.priv.Public()}, "EdDSA", true},
		{pubKey{pub: kr.ed.priv.Public()}, "HS256", false},
	}
	for _, tt := range tests {
		if got := tt.key.fits(tt.alg); got != tt.want {
			t.Errorf("%T fits %s = %v, want %v", tt.key.pub, tt.alg, got, tt.want)
		}
	}
}

func TestWWWAuthenticate(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{nil, ""},
		{&authError{kind: ErrScope, desc: "x"}, ""},
		{errors.New("other"), ""},
		{invalid("token has expired"), `Bearer scope="" error="invalid_token" error_description="token has expired"`},
		{&authError{kind: ErrMissing, desc: "no token in the identity source"}, `Bearer scope="" error="invalid_token" error_description="no token in the identity source"`},
		{fmt.Errorf("wrapped: %w", invalid(`a "quoted"\ thing`+"\n")), `Bearer scope="" error="invalid_token" error_description="a quoted thing"`},
	}
	for _, tt := range tests {
		if got := WWWAuthenticate(tt.err); got != tt.want {
			t.Errorf("WWWAuthenticate(%v) = %q, want %q", tt.err, got, tt.want)
		}
	}
}

func FuzzAuthorize(f *testing.F) {
	kr := keys()
	path := filepath.Join(f.TempDir(), "jwks.json")
	if err := os.WriteFile(path, jwksOf(f, kr.rsa, kr.ec, kr.ed), 0o600); err != nil {
		f.Fatal(err)
	}
	a, err := New(context.Background(), Config{
		Issuer:     "https://issuer.example",
		Audiences:  []string{"api"},
		JWKSFile:   path,
		Algorithms: []string{"RS256", "ES256", "EdDSA"},
		Now:        func() time.Time { return t0 },
		CacheSize:  64,
	})
	if err != nil {
		f.Fatal(err)
	}
	defer a.Close()
	for _, k := range []testKey{kr.rsa, kr.ec, kr.ed} {
		f.Add("Bearer " + sign(f, k, claims("https://issuer.example", func(c jwt.MapClaims) {
			c["scp"] = []any{"read", json.Number("1")}
			c["obj"] = map[string]any{"n": nil}
		})))
	}
	for _, s := range []string{"", "bearer", "Bearer  .", "a.b.c", "e30.e30.", "eyJhbGciOiJub25lIn0.e30.", "eyJhbGciOiJSUzI1NiIsImtpZCI6InJzYS0xIn0.eyJleHAiOjFlOTk5fQ.AA"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, identity string) {
		res, err := a.Authorize(context.Background(), identity, []string{"read"})
		switch {
		case err == nil:
			if res.Claims == nil {
				t.Fatal("accepted without claims")
			}
		case errors.Is(err, ErrMissing), errors.Is(err, ErrInvalid), errors.Is(err, ErrScope):
			if h := WWWAuthenticate(err); strings.ContainsAny(h, "\r\n") {
				t.Fatalf("header %q", h)
			}
		default:
			t.Fatalf("error outside the sentinels: %v", err)
		}
	})
}

func BenchmarkAuthorize(b *testing.B) {
	kr := keys()
	is := newIssuer(b, kr.rsa, kr.ec, kr.ed)
	for _, bc := range []struct {
		name  string
		key   testKey
		cache int
	}{
		{"hit/RS256", kr.rsa, 0},
		{"miss/RS256", kr.rsa, -1},
		{"miss/ES256", kr.ec, -1},
		{"miss/EdDSA", kr.ed, -1},
	} {
		b.Run(bc.name, func(b *testing.B) {
			cfg := is.config(newClock())
			cfg.CacheSize = bc.cache
			a := newAuthorizer(b, cfg)
			tok := "Bearer " + sign(b, bc.key, claims(is.srv.URL, func(c jwt.MapClaims) { c["scope"] = "read write" }))
			ctx := context.Background()
			scopes := []string{"write"}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := a.Authorize(ctx, tok, scopes); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
