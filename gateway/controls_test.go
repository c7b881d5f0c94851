package gateway

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/golang-jwt/jwt/v5"

	"gatehouse.dev/gatehouse/internal/apikeys"
	"gatehouse.dev/gatehouse/internal/bus"
	"gatehouse.dev/gatehouse/internal/jwtauth"
	"gatehouse.dev/gatehouse/internal/sigv4"
)

const testIssuer = "https://issuer.example.com"

// testKey signs the tests' tokens; testJWKS is its public half as a JWKS document.
var (
	testKeyOnce sync.Once
	testKey     *rsa.PrivateKey
	testJWKS    []byte
)

func jwtKey(t *testing.T) (*rsa.PrivateKey, []byte) {
	t.Helper()
	testKeyOnce.Do(func() {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		b64 := base64.RawURLEncoding.EncodeToString
		testJWKS, _ = json.Marshal(map[string]any{"keys": []map[string]string{{
			"kty": "RSA", "kid": "k1", "use": "sig", "alg": "RS256",
			"n": b64(k.N.Bytes()), "e": b64(big.NewInt(int64(k.E)).Bytes()),
		}}})
		testKey = k
	})
	return testKey, testJWKS
}

// token signs claims (with iss, and exp an hour ahead, unless given) with the test key.
func token(t *testing.T, claims jwt.MapClaims) string {
	t.Helper()
	key, _ := jwtKey(t)
	if _, ok := claims["iss"]; !ok {
		claims["iss"] = testIssuer
	}
	if _, ok := claims["exp"]; !ok {
		claims["exp"] = time.Now().Add(time.Hour).Unix()
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodRS256, claims)
	tok.Header["kid"] = "k1"
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func jwksFile(t *testing.T) string {
	t.Helper()
	_, jwks := jwtKey(t)
	p := filepath.Join(t.TempDir(), "jwks.json")
	if err := os.WriteFile(p, jwks, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// controlsAPI is an API with a route per control; the function of every route is "fn".
func controlsAPI(authorizers map[string]Authorizer, routes ...Route) API {
	for i := range routes {
		if routes[i].Function == "" {
			routes[i].Function = "fn"
		}
	}
	return API{ID: "ctl", Stages: []Stage{{Name: DefaultStage, Variables: map[string]string{"tenant": "t1"}}},
		Routes: routes, Authorizers: authorizers}
}

func TestJWTAuthorizer(t *testing.T) {
	inv := &fakeInvoker{}
	ts := startServer(t, Config{APIs: []API{controlsAPI(
		map[string]Authorizer{"jwt": {Type: AuthJWT, JWT: &jwtauth.Config{Issuer: testIssuer, Audiences: []string{"api"}, JWKSFile: jwksFile(t)}}},
		Route{Key: "GET /open", Auth: RouteAuth{Type: AuthJWT, Authorizer: "jwt"}},
		Route{Key: "GET /scoped", Auth: RouteAuth{Type: AuthJWT, Authorizer: "jwt", Scopes: []string{"read"}}},
	)}}, inv)

	t.Run("checklist 18 no token", func(t *testing.T) {
		inv.setScript(nil)
		r := ts.get(t, "/open")
		wantGatewayError(t, "no token", r, 401, "Unauthorized")
		if !strings.Contains(r.header.Get("WWW-Authenticate"), `error="invalid_token"`) {
			t.Errorf("www-authenticate %q", r.header.Get("WWW-Authenticate"))
		}
		if n := len(inv.invocations()); n != 0 {
			t.Errorf("%d invocations, want none", n)
		}
	})
	t.Run("checklist 20 expired", func(t *testing.T) {
		inv.setScript(nil)
		r := ts.get(t, "/open", "Authorization", "Bearer "+token(t, jwt.MapClaims{"aud": "api", "exp": time.Now().Add(-time.Hour).Unix()}))
		wantGatewayError(t, "expired", r, 401, "Unauthorized")
		if h := r.header.Get("WWW-Authenticate"); !strings.Contains(h, `error="invalid_token"`) || !strings.Contains(h, "expired") {
			t.Errorf("www-authenticate %q", h)
		}
		if n := len(inv.invocations()); n != 0 {
			t.Errorf("%d invocations, want none", n)
		}
	})
	t.Run("checklist 22 claims as strings", func(t *testing.T) {
		inv.setScript(nil)
		r := ts.get(t, "/open", "Authorization", "Bearer "+token(t, jwt.MapClaims{"aud": "api", "sub": "u1", "exp": 4102444800,
			"groups": []string{"admin", "poweruser"}, "n": nil}))
		if r.status != 200 {
			t.Fatalf("valid token: %v", r)
		}
		calls := inv.invocations()
		if len(calls) != 1 {
			t.Fatalf("%d invocations", len(calls))
		}
		ev := decodeEvent(t, calls[0])
		claims, _ := path(ev, "requestContext.authorizer.jwt.claims").(map[string]any)
		want := map[string]any{"aud": "api", "sub": "u1", "exp": "4102444800", "groups": "[admin poweruser]", "iss": testIssuer}
		if fmt.Sprint(claims) != fmt.Sprint(want) {
			t.Errorf("claims %v, want %v", claims, want)
		}
		if s := path(ev, "requestContext.authorizer.jwt.scopes"); s != nil {
			t.Errorf("scopes %v, want null: the route has none", s)
		}
	})
	t.Run("checklist 19 client_id", func(t *testing.T) {
		inv.setScript(nil)
		r := ts.get(t, "/open", "Authorization", "Bearer "+token(t, jwt.MapClaims{"aud": "other", "client_id": "api"}))
		if r.status != 200 {
			t.Errorf("client_id matching an audience: %v", r)
		}
		r = ts.get(t, "/open", "Authorization", "Bearer "+token(t, jwt.MapClaims{"aud": "other", "client_id": "nope"}))
		wantGatewayError(t, "no audience", r, 401, "Unauthorized")
	})
	t.Run("checklist 21 scopes", func(t *testing.T) {
		inv.setScript(nil)
		r := ts.get(t, "/scoped", "Authorization", "Bearer "+token(t, jwt.MapClaims{"aud": "api", "scope": "write read"}))
		if r.status != 200 {
			t.Fatalf("scope held: %v", r)
		}
		ev := decodeEvent(t, inv.invocations()[0])
		// The route has scopes, so the event carries the token's.
		if s := fmt.Sprint(path(ev, "requestContext.authorizer.jwt.scopes")); s != "[write read]" {
			t.Errorf("scopes %s, want the token's [write read]", s)
		}
		r = ts.get(t, "/scoped", "Authorization", "Bearer "+token(t, jwt.MapClaims{"aud": "api", "scope": "write"}))
		wantGatewayError(t, "scope missing", r, 403, "Forbidden")
		if n := len(inv.invocations()); n != 1 {
			t.Errorf("%d invocations, want only the allowed one", n)
		}
	})
}

// jwksServer serves the test JWKS and counts its requests.
func jwksServer(t *testing.T) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	_, jwks := jwtKey(t)
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		w.Header().Set("Content-Type", "application/json")
		w.Write(jwks)
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

// TestNewDoesNoIO checks that New leaves the JWT keys alone, that Start (which Serve calls) loads
// them, and that SetAPIs loads new authorizers' keys only once the server has started.
func TestNewDoesNoIO(t *testing.T) {
	srv, fetches := jwksServer(t)
	jwtAPI := func(aud string) API {
		return controlsAPI(map[string]Authorizer{"jwt": {Type: AuthJWT, JWT: &jwtauth.Config{Issuer: testIssuer, Audiences: []string{aud}, JWKSURL: srv.URL}}},
			Route{Key: "GET /open", Auth: RouteAuth{Type: AuthJWT, Authorizer: "jwt"}})
	}
	s, err := New(Config{APIs: []API{jwtAPI("api")}}, &fakeInvoker{})
	if err != nil {
		t.Fatal(err)
	}
	// jwtauth.New makes its first fetch before it returns, so a New that created the verifier
	// would have counted one already.
	if n := fetches.Load(); n != 0 {
		t.Fatalf("New fetched the JWKS %d times", n)
	}
	if err := s.SetAPIs([]API{jwtAPI("api")}); err != nil {
		t.Fatal(err)
	}
	if n := fetches.Load(); n != 0 {
		t.Fatalf("SetAPIs before Start fetched the JWKS %d times", n)
	}
	s.Start(context.Background())
	if n := fetches.Load(); n != 1 {
		t.Fatalf("Start fetched the JWKS %d times, want 1", n)
	}
	ts := serveOn(t, s) // Serve's own Start does nothing more
	r := ts.get(t, "/open", "Authorization", "Bearer "+token(t, jwt.MapClaims{"aud": "api"}))
	if r.status != 200 {
		t.Fatalf("valid token: %v", r)
	}
	if n := fetches.Load(); n != 1 {
		t.Errorf("%d fetches after Serve and a request, want the 1 of Start", n)
	}
	// A new authorizer configuration after Start loads its keys in SetAPIs.
	if err := s.SetAPIs([]API{jwtAPI("api2")}); err != nil {
		t.Fatal(err)
	}
	if n := fetches.Load(); n != 2 {
		t.Errorf("%d fetches after SetAPIs with a new authorizer, want 2", n)
	}
	r = ts.get(t, "/open", "Authorization", "Bearer "+token(t, jwt.MapClaims{"aud": "api2"}))
	if r.status != 200 {
		t.Errorf("token for the new audience: %v", r)
	}
	// The verifier of the configuration no API uses any more is stopped and dropped.
	s.controls.jwtMu.Lock()
	verifiers := len(s.controls.jwts)
	s.controls.jwtMu.Unlock()
	if verifiers != 1 {
		t.Errorf("%d JWT verifiers after the API changed, want the 1 in use", verifiers)
	}
}

// TestServeStartsJWT checks that Serve alone loads the keys (through Start): a token is accepted
// without a fetch of its own.
func TestServeStartsJWT(t *testing.T) {
	srv, fetches := jwksServer(t)
	ts := startServer(t, Config{APIs: []API{controlsAPI(
		map[string]Authorizer{"jwt": {Type: AuthJWT, JWT: &jwtauth.Config{Issuer: testIssuer, Audiences: []string{"api"}, JWKSURL: srv.URL}}},
		Route{Key: "GET /open", Auth: RouteAuth{Type: AuthJWT, Authorizer: "jwt"}})}}, &fakeInvoker{})
	r := ts.get(t, "/open", "Authorization", "Bearer "+token(t, jwt.MapClaims{"aud": "api"}))
	if r.status != 200 {
		t.Fatalf("valid token: %v", r)
	}
	if n := fetches.Load(); n != 1 {
		t.Errorf("%d fetches, want 1 (Serve's Start)", n)
	}
}

func TestFunctionAuthorizer(t *testing.T) {
	inv := &fakeInvoker{}
	authz := map[string]Authorizer{
		"simple": {Type: AuthFunction, Function: "auth", IdentitySources: []string{"$request.header.Authorization", "$request.querystring.tenant"},
			ResultTTL: 5 * time.Minute},
		"nocache": {Type: AuthFunction, Function: "auth", IdentitySources: []string{"$request.header.X-Token", "$stageVariables.tenant",
			"$context.routeKey", "$context.stage", "$context.httpMethod"}},
	}
	ts := startServer(t, Config{APIs: []API{controlsAPI(authz,
		Route{Key: "GET /pets/{id}", Auth: RouteAuth{Type: AuthFunction, Authorizer: "simple"}},
		Route{Key: "POST /policy", Auth: RouteAuth{Type: AuthFunction, Authorizer: "nocache"}},
	)}}, inv)
	answers := map[string]string{"fn": `{"statusCode":200,"body":"ran"}`}
	var mu sync.Mutex
	inv.setScript(nil)
	script := func(_ context.Context, c bus.Invocation) ([]byte, error) {
		mu.Lock()
		defer mu.Unlock()
		if c.Function == "auth" && answers["auth-error"] != "" {
			return nil, errors.New(answers["auth-error"])
		}
		return []byte(answers[c.Function]), nil
	}
	setAuth := func(out string) {
		mu.Lock()
		defer mu.Unlock()
		answers["auth"], answers["auth-error"] = out, ""
		inv.setScript(script)
	}

	t.Run("checklist 23 missing identity source", func(t *testing.T) {
		setAuth(`{"isAuthorized":true}`)
		r := ts.get(t, "/pets/1?tenant=t1") // no Authorization
		wantGatewayError(t, "missing header", r, 401, "Unauthorized")
		r = ts.get(t, "/pets/1", "Authorization", "a") // no tenant
		wantGatewayError(t, "missing query", r, 401, "Unauthorized")
		if n := len(inv.invocations()); n != 0 {
			t.Errorf("%d invocations, want none: the authorizer must not run", n)
		}
	})
	t.Run("checklist 24 denied", func(t *testing.T) {
		setAuth(`{"isAuthorized":false}`)
		r := ts.get(t, "/pets/1?tenant=t1", "Authorization", "deny-me")
		wantGatewayError(t, "denied", r, 403, "Forbidden")
		if len(inv.of("fn")) != 0 {
			t.Error("the route's function ran after a denial")
		}
	})
	t.Run("checklist 26 context and the authorizer event", func(t *testing.T) {
		setAuth(`{"isAuthorized":true,"context":{"user":"u1","n":3}}`)
		r := ts.get(t, "/pets/7?tenant=t1", "Authorization", "allow-1")
		if r.status != 200 || r.body != "ran" {
			t.Fatalf("allowed: %v", r)
		}
		auth, fn := inv.of("auth"), inv.of("fn")
		if len(auth) != 1 || len(fn) != 1 {
			t.Fatalf("%d authorizer and %d route invocations, want 1 each", len(auth), len(fn))
		}
		aev := decodeEvent(t, auth[0])
		for k, want := range map[string]string{"type": "REQUEST", "version": "2.0", "routeKey": "GET /pets/{id}",
			"routeArn": "arn:aws:execute-api:us-east-1:000000000000:ctl/$default/GET/pets/7", "identitySource": "[allow-1 t1]",
			"pathParameters": "map[id:7]", "body": "<nil>"} {
			if got := fmt.Sprint(path(aev, k)); got != want {
				t.Errorf("authorizer event %s = %s, want %s", k, got, want)
			}
		}
		if auth[0].RequestID != fn[0].RequestID || auth[0].RequestID != r.header.Get(HeaderRequestID) {
			t.Errorf("request ids: authorizer %s, route %s, response %s", auth[0].RequestID, fn[0].RequestID, r.header.Get(HeaderRequestID))
		}
		ev := decodeEvent(t, fn[0])
		if got := fmt.Sprint(path(ev, "requestContext.authorizer.lambda")); got != "map[n:3 user:u1]" {
			t.Errorf("requestContext.authorizer.lambda = %s", got)
		}
	})
	t.Run("checklist 25 cached by identity", func(t *testing.T) {
		setAuth(`{"isAuthorized":true}`)
		for range 3 {
			if r := ts.get(t, "/pets/1?tenant=t1", "Authorization", "cached-1"); r.status != 200 {
				t.Fatalf("allowed: %v", r)
			}
		}
		if n := len(inv.of("auth")); n != 1 {
			t.Errorf("%d authorizer invocations for one identity, want 1", n)
		}
		if r := ts.get(t, "/pets/2?tenant=t1", "Authorization", "cached-2"); r.status != 200 {
			t.Fatalf("allowed: %v", r)
		}
		if n := len(inv.of("auth")); n != 2 {
			t.Errorf("%d authorizer invocations after a new identity, want 2", n)
		}
	})
	t.Run("policy", func(t *testing.T) {
		policy := func(effect, resource string) string {
			return `{"principalId":"p","policyDocument":{"Version":"2012-10-17","Statement":[{"Action":"execute-api:Invoke","Effect":"` +
				effect + `","Resource":` + resource + `}]},"context":{"k":"v"}}`
		}
		for _, tt := range []struct {
			name, out string
			status    int
		}{
			{"allow wildcard", policy("Allow", `"arn:aws:execute-api:*:*:ctl/*/POST/policy"`), 200},
			{"allow in a list", policy("Allow", `["arn:aws:execute-api:us-east-1:1:x/*", "arn:aws:execute-api:*/POST/*"]`), 200},
			{"deny", policy("Deny", `"*"`), 403},
			{"allow another route", policy("Allow", `"arn:aws:execute-api:*:*:ctl/*/GET/*"`), 403},
			{"neither answer", `{"principalId":"p"}`, 500},
			{"not JSON", `yes`, 500},
		} {
			t.Run(tt.name, func(t *testing.T) {
				setAuth(tt.out)
				r := ts.do(t, ts.request(t, "POST", "/policy", "", "X-Token", "tok"))
				if r.status != tt.status {
					t.Errorf("%v, want %d", r, tt.status)
				}
				if tt.status == 200 {
					ev := decodeEvent(t, inv.of("fn")[0])
					if got := fmt.Sprint(path(ev, "requestContext.authorizer.lambda")); got != "map[k:v]" {
						t.Errorf("context %s", got)
					}
					aev := decodeEvent(t, inv.of("auth")[0])
					if got := fmt.Sprint(path(aev, "identitySource")); got != "[tok t1 POST /policy $default POST]" {
						t.Errorf("identitySource %s", got)
					}
				}
			})
		}
	})
	t.Run("authorizer fails", func(t *testing.T) {
		setAuth("")
		mu.Lock()
		answers["auth-error"] = "boom"
		mu.Unlock()
		r := ts.do(t, ts.request(t, "POST", "/policy", "", "X-Token", "tok"))
		wantGatewayError(t, "authorizer error", r, 500, "Internal Server Error")
		if len(inv.of("fn")) != 0 {
			t.Error("the route's function ran after the authorizer failed")
		}
	})
}

// TestAuthCacheBounded fills a small cache through the gateway with more identities than it holds.
func TestAuthCacheBounded(t *testing.T) {
	inv := &fakeInvoker{}
	s, err := New(Config{APIs: []API{controlsAPI(
		map[string]Authorizer{"a": {Type: AuthFunction, Function: "auth", IdentitySources: []string{"$request.header.X-Id"}, ResultTTL: time.Hour}},
		Route{Key: "GET /x", Auth: RouteAuth{Type: AuthFunction, Authorizer: "a"}})}}, inv)
	if err != nil {
		t.Fatal(err)
	}
	s.controls.authCache.max = 3
	ts := serveOn(t, s)
	inv.setScript(byFunction(map[string]string{"auth": `{"isAuthorized":true}`, "fn": `{"statusCode":204}`}))
	for i := range 10 {
		if r := ts.get(t, "/x", "X-Id", fmt.Sprint("id-", i)); r.status != 204 {
			t.Fatalf("request %d: %v", i, r)
		}
		if n := s.controls.authCache.len(); n > 3 {
			t.Fatalf("after %d identities the cache holds %d answers, more than its 3", i+1, n)
		}
	}
	if n := s.controls.authCache.len(); n != 3 {
		t.Errorf("cache holds %d answers, want 3", n)
	}
	// The latest identity is still cached; the first was evicted, so it runs the authorizer again.
	before := len(inv.of("auth"))
	ts.get(t, "/x", "X-Id", "id-9")
	if n := len(inv.of("auth")); n != before {
		t.Errorf("a cached identity ran the authorizer")
	}
	ts.get(t, "/x", "X-Id", "id-0")
	if n := len(inv.of("auth")); n != before+1 {
		t.Errorf("an evicted identity did not run the authorizer again")
	}
}

func TestAuthCacheLRU(t *testing.T) {
	now := time.Now()
	c := authCache{max: 2}
	c.put("a", authResult{allowed: true, expires: now.Add(time.Hour)})
	c.put("b", authResult{allowed: true, expires: now.Add(time.Hour)})
	if _, ok := c.get("a", now); !ok { // a is now the most recently used
		t.Fatal("a missing")
	}
	c.put("c", authResult{allowed: true, expires: now.Add(time.Hour)})
	if _, ok := c.get("b", now); ok {
		t.Error("b, the least recently used, was not evicted")
	}
	for _, k := range []string{"a", "c"} {
		if _, ok := c.get(k, now); !ok {
			t.Errorf("%s evicted", k)
		}
	}
	c.put("c", authResult{allowed: false, expires: now.Add(time.Minute)}) // replaces, no eviction
	if r, ok := c.get("c", now); !ok || r.allowed || c.len() != 2 {
		t.Errorf("replaced entry: %v %v, %d entries", r, ok, c.len())
	}
	if _, ok := c.get("c", now.Add(time.Minute)); ok || c.len() != 1 {
		t.Errorf("expired entry returned, or kept (%d entries)", c.len())
	}
	var d authCache // the zero value has the default bound
	d.put("x", authResult{})
	if d.max != defaultAuthCacheEntries {
		t.Errorf("zero value bound %d", d.max)
	}
}

const (
	testKeyID     = "AKIDGATEHOUSETEST"
	testKeySecret = "secret-of-the-test-key"
)

func testVerifier(t *testing.T) *sigv4.Verifier {
	t.Helper()
	v, err := sigv4.New(sigv4.Config{Keys: []sigv4.Credentials{{AccessKeyID: testKeyID, SecretAccessKey: testKeySecret}}})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// sign signs req (whose body is body) for execute-api as an AWS SDK does.
func sign(t *testing.T, req *http.Request, body []byte, secret string) *http.Request {
	t.Helper()
	sum := sha256.Sum256(body)
	creds := aws.Credentials{AccessKeyID: testKeyID, SecretAccessKey: secret}
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, hex.EncodeToString(sum[:]), "execute-api", "us-east-1", time.Now()); err != nil {
		t.Fatal(err)
	}
	return req
}

func TestIAMAuthorization(t *testing.T) {
	inv := &fakeInvoker{}
	api := controlsAPI(nil, Route{Key: "POST /iam", Auth: RouteAuth{Type: AuthIAM}})
	ts := startServer(t, Config{APIs: []API{api}, Verifier: testVerifier(t)}, inv)

	r := ts.do(t, ts.request(t, "POST", "/iam", "data"))
	wantGatewayError(t, "unsigned", r, 403, "Forbidden")
	r = ts.do(t, sign(t, ts.request(t, "POST", "/iam", "data"), []byte("data"), "wrong secret"))
	wantGatewayError(t, "wrong secret", r, 403, "Forbidden")
	if n := len(inv.invocations()); n != 0 {
		t.Fatalf("%d invocations before a valid signature", n)
	}
	r = ts.do(t, sign(t, ts.request(t, "POST", "/iam", "data"), []byte("data"), testKeySecret))
	if r.status != 200 {
		t.Fatalf("signed: %v", r)
	}
	ev := decodeEvent(t, inv.invocations()[0])
	if got := path(ev, "requestContext.authorizer.iam.accessKey"); got != testKeyID {
		t.Errorf("authorizer.iam.accessKey = %v", got)
	}

	// Without access keys configured every IAM request is refused.
	ts2 := startServer(t, Config{APIs: []API{api}}, inv)
	r = ts2.do(t, sign(t, ts2.request(t, "POST", "/iam", "data"), []byte("data"), testKeySecret))
	wantGatewayError(t, "no verifier", r, 403, "Forbidden")
}

// fakeKeys is a KeyStore: keys by the value presented, quotas counted in memory.
type fakeKeys struct {
	mu   sync.Mutex
	keys map[string]apikeys.Key
	used map[string]int64
	err  error
}

func (f *fakeKeys) Lookup(presented string) (apikeys.Key, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	k, ok := f.keys[presented]
	return k, ok
}

func (f *fakeKeys) Consume(_ context.Context, k apikeys.Key, q apikeys.Quota) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return false, f.err
	}
	if f.used == nil {
		f.used = map[string]int64{}
	}
	f.used[k.SHA256]++
	return q.Limit == 0 || f.used[k.SHA256] <= q.Limit, nil
}

func TestAPIKeys(t *testing.T) {
	keys := &fakeKeys{keys: map[string]apikeys.Key{
		"gold-key-0123456789abcdef":   {Name: "gold", Plan: "gold", SHA256: "h-gold"},
		"burst-key-0123456789abcdef":  {Name: "burst", Plan: "burst", SHA256: "h-burst"},
		"orphan-key-0123456789abcdef": {Name: "orphan", Plan: "none", SHA256: "h-orphan"},
	}}
	inv := &fakeInvoker{}
	ts := startServer(t, Config{
		APIs:    []API{controlsAPI(nil, Route{Key: "GET /keyed", APIKeyRequired: true}, Route{Key: "GET /free"})},
		APIKeys: keys,
		UsagePlans: map[string]UsagePlan{
			"gold":  {Quota: apikeys.Quota{Limit: 2, Period: "DAY"}},
			"burst": {Throttle: ThrottleSettings{Burst: 1}},
		},
	}, inv)

	wantGatewayError(t, "checklist 39 missing key", ts.get(t, "/keyed"), 403, "Forbidden")
	wantGatewayError(t, "unknown key", ts.get(t, "/keyed", "x-api-key", "nope"), 403, "Forbidden")
	wantGatewayError(t, "key of no plan", ts.get(t, "/keyed", "x-api-key", "orphan-key-0123456789abcdef"), 403, "Forbidden")
	if r := ts.get(t, "/free"); r.status != 200 {
		t.Errorf("a route without apiKeyRequired: %v", r)
	}
	for i := range 2 {
		if r := ts.get(t, "/keyed", "x-api-key", "gold-key-0123456789abcdef"); r.status != 200 {
			t.Fatalf("request %d within the quota: %v", i, r)
		}
	}
	r := ts.get(t, "/keyed", "x-api-key", "gold-key-0123456789abcdef")
	wantGatewayError(t, "checklist 39 quota", r, 429, "Limit Exceeded")
	if got := r.header.Get("x-amzn-ErrorType"); got != "LimitExceededException" {
		t.Errorf("x-amzn-ErrorType %q", got)
	}
	// Burst 1 without a rate: one request, ever.
	if r := ts.get(t, "/keyed", "x-api-key", "burst-key-0123456789abcdef"); r.status != 200 {
		t.Fatalf("first request of the burst plan: %v", r)
	}
	wantGatewayError(t, "plan throttle", ts.get(t, "/keyed", "x-api-key", "burst-key-0123456789abcdef"), 429, "Too Many Requests")
	if n := len(inv.invocations()); n != 4 {
		t.Errorf("%d invocations, want 4 (free, gold twice, burst once)", n)
	}

	keys.mu.Lock()
	keys.err = errors.New("store down")
	keys.mu.Unlock()
	wantGatewayError(t, "quota store fails", ts.get(t, "/keyed", "x-api-key", "gold-key-0123456789abcdef"), 500, "Internal Server Error")

	// Without a key store, keyed routes refuse everyone.
	ts2 := startServer(t, Config{APIs: []API{controlsAPI(nil, Route{Key: "GET /keyed", APIKeyRequired: true})}}, inv)
	wantGatewayError(t, "no key store", ts2.get(t, "/keyed", "x-api-key", "gold-key-0123456789abcdef"), 403, "Forbidden")
}

func TestStageThrottles(t *testing.T) {
	inv := &fakeInvoker{}
	api := controlsAPI(nil, Route{Key: "GET /limited"}, Route{Key: "GET /roomy"})
	api.Stages = []Stage{{Name: DefaultStage, Throttle: ThrottleSettings{Burst: 1},
		RouteThrottles: map[string]ThrottleSettings{"GET /roomy": {Burst: 3}}}}
	ts := startServer(t, Config{APIs: []API{api}}, inv)
	// A burst without a rate is a fixed allowance: whatever the timing, the second request is over it.
	if r := ts.get(t, "/limited"); r.status != 200 {
		t.Fatalf("first request: %v", r)
	}
	wantGatewayError(t, "checklist 27 second request", ts.get(t, "/limited"), 429, "Too Many Requests")
	for i := range 3 {
		if r := ts.get(t, "/roomy"); r.status != 200 {
			t.Fatalf("request %d of a route with its own burst of 3: %v", i, r)
		}
	}
	wantGatewayError(t, "fourth request", ts.get(t, "/roomy"), 429, "Too Many Requests")
	if n := len(inv.invocations()); n != 4 {
		t.Errorf("%d invocations, want 4", n)
	}
}

// TestConfigErrors checks that New refuses APIs the gateway cannot serve.
func TestConfigErrors(t *testing.T) {
	for _, tt := range []struct {
		name string
		api  API
		want string
	}{
		{"mount without slash", API{ID: "a", Mount: "x", Routes: []Route{{Key: "GET /", Function: "f"}}}, "must start with /"},
		{"route without function", API{ID: "a", Routes: []Route{{Key: "GET /"}}}, "has no function"},
		{"bad route key", API{ID: "a", Routes: []Route{{Key: "FETCH /", Function: "f"}}}, "API a"},
		{"unknown authorizer", API{ID: "a", Routes: []Route{{Key: "GET /", Function: "f", Auth: RouteAuth{Type: AuthJWT, Authorizer: "x"}}}}, "names no authorizer"},
		{"CORS credentials with any origin", API{ID: "a", CORS: &CORS{AllowOrigins: []string{"*"}, AllowCredentials: true},
			Routes: []Route{{Key: "GET /", Function: "f"}}}, "CORS"},
		{"bad throttle", API{ID: "a", Stages: []Stage{{Name: DefaultStage, Throttle: ThrottleSettings{Burst: -1}}},
			Routes: []Route{{Key: "GET /", Function: "f"}}}, "stage $default"},
		{"WebSocket route twice", API{ID: "a", WebSocket: &WebSocketSettings{}, Routes: []Route{{Key: "$default", Function: "f"},
			{Key: "$default", Function: "g"}}}, "defined twice"},
		{"WebSocket API without a node id", API{ID: "a", WebSocket: &WebSocketSettings{}, Routes: []Route{{Key: "$default", Function: "f"}}},
			"not a node id"},
		{"WebSocket bad selection expression", API{ID: "a", WebSocket: &WebSocketSettings{RouteSelectionExpression: "body.action"},
			Routes: []Route{{Key: "$default", Function: "f"}}}, "API a"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(Config{APIs: []API{tt.api}}, &fakeInvoker{})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("New: %v, want an error containing %q", err, tt.want)
			}
			s, err := New(Config{}, &fakeInvoker{})
			if err != nil {
				t.Fatal(err)
			}
			if err := s.SetAPIs([]API{tt.api}); err == nil {
				t.Error("SetAPIs accepted it")
			}
		})
	}
}

func TestRouteURLs(t *testing.T) {
	s, err := New(Config{APIs: []API{
		{ID: "h", Mount: "/m", Stages: []Stage{{Name: DefaultStage}, {Name: "dev"}}, Routes: []Route{{Key: "GET /a", Function: "f"}, {Key: "$default", Function: "g"}}},
		{ID: "w", Host: "ws.example.com", WebSocket: &WebSocketSettings{}, Routes: []Route{{Key: "$connect", Function: "c"}}},
	}, NodeID: "testnode"}, &fakeInvoker{})
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(s.RouteURLs("http://127.0.0.1:8080"), "\n")
	for _, want := range []string{
		"GET     http://127.0.0.1:8080/m/a  → f",
		"*       http://127.0.0.1:8080/m/…  → g",
		"GET     http://127.0.0.1:8080/m/dev/a  → f",
		"WS      ws://127.0.0.1:8080/  ($connect → c)  (Host: ws.example.com)",
		"POST    http://127.0.0.1:8080/@connections/{connectionId}  (Host: ws.example.com)",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("RouteURLs lacks %q:\n%s", want, got)
		}
	}
	if bytes.Count([]byte(got), []byte("\n")) != 5 {
		t.Errorf("RouteURLs:\n%s", got)
	}
}
