package app

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/golang-jwt/jwt/v5"

	"gatehouse.dev/gatehouse/internal/testfix"
)

// controlsStack writes a stack file exercising every gateway control, with a JWKS file of key, and
// returns its path. Every route runs the sample fn: echo (which answers with its event) or hello.
func controlsStack(t testing.TB, key *rsa.PrivateKey, fn string) string {
	t.Helper()
	dir := t.TempDir()
	jwks := fmt.Sprintf(`{"keys":[{"kty":"RSA","kid":"k1","use":"sig","alg":"RS256","n":%q,"e":%q}]}`,
		base64.RawURLEncoding.EncodeToString(key.N.Bytes()), base64.RawURLEncoding.EncodeToString(big.NewInt(int64(key.E)).Bytes()))
	if err := os.WriteFile(filepath.Join(dir, "keys.json"), []byte(jwks), 0o644); err != nil {
		t.Fatal(err)
	}
	root := testfix.RepoRoot()
	stack := fmt.Sprintf(`version: 1
name: controls
iam:
  accessKeys:
    - id: AKIAIOSFODNN7EXAMPLE
      secret: wJalrXUtnFEMIK7MDENGbPxRfiCYEXAMPLEKEY
usagePlans:
  basic:
    throttle: {rate: 100, burst: 100}
    quota: {limit: 3, period: day}
  bench:
    throttle: {rate: 100000, burst: 100000}
    quota: {limit: 1000000000, period: day}
functions:
  echo:
    source: %s
  authz:
    source: %s
apis:
  web:
    type: http
    cors:
      allowOrigins: ["https://app.example"]
      allowMethods: [GET, POST]
      allowHeaders: [content-type, authorization]
      maxAge: 600
    authorizers:
      corp:
        type: jwt
        issuer: https://id.example
        audiences: [api://web]
        jwksFile: ./keys.json
      gate:
        type: function
        function: authz
        identitySources: [$request.header.x-token]
        resultTtl: 60s
    stages:
      $default:
        routeThrottles:
          "GET /throttled": {rate: 0.001, burst: 2}
          "GET /throttled-high": {rate: 100000, burst: 100000}
          "GET /all": {rate: 100000, burst: 100000}
    routes:
      GET /open: {function: echo}
      GET /throttled: {function: echo}
      GET /jwt:
        function: echo
        authorization: {type: jwt, authorizer: corp, scopes: [read]}
      GET /fn:
        function: echo
        authorization: {type: function, authorizer: gate}
      GET /keyed:
        function: echo
        apiKeyRequired: true
      GET /iam:
        function: echo
        authorization: {type: iam}
      GET /throttled-high: {function: echo}
      GET /all:
        function: echo
        authorization: {type: jwt, authorizer: corp, scopes: [read]}
        apiKeyRequired: true
  plain:
    type: http
    mount: /plain
    routes:
      GET /open: {function: echo}
`, filepath.Join(root, "samples", fn), filepath.Join(root, "internal", "app", "testdata", "functions", "authz"))
	path := filepath.Join(dir, "gatehouse.yaml")
	if err := os.WriteFile(path, []byte(stack), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestGatewayControls sends requests through every gateway control of a running stack and checks
// the statuses, bodies and headers a client gets, and what reaches the function.
func TestGatewayControls(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	n := startNode(t, controlsStack(t, key, "echo"), newDataDir(t))
	t.Cleanup(func() { n.Stop(context.Background()) })
	base := "http://" + n.GatewayAddr()
	var secrets []string // none of these may reach the node's log
	t.Cleanup(func() {
		logs := n.opts.Stderr.(*syncBuffer).String()
		for _, secret := range secrets {
			if strings.Contains(logs, secret) {
				t.Errorf("a secret reached the log: %.12s…", secret)
			}
		}
	})
	get := func(path string, header map[string]string) response {
		t.Helper()
		req := newRequest(t, "GET", base+path, nil)
		for k, v := range header {
			req.Header.Set(k, v)
		}
		return do(t, req)
	}
	authorizerOf := func(r response) map[string]any {
		t.Helper()
		var ev struct {
			RequestContext struct {
				Authorizer map[string]any `json:"authorizer"`
			} `json:"requestContext"`
		}
		if err := json.Unmarshal(r.body, &ev); err != nil {
			t.Fatalf("event %s: %v", r.body, err)
		}
		return ev.RequestContext.Authorizer
	}

	t.Run("cors", func(t *testing.T) {
		req := newRequest(t, "OPTIONS", base+"/open", nil)
		req.Header.Set("Origin", "https://app.example")
		req.Header.Set("Access-Control-Request-Method", "POST")
		r := do(t, req)
		if r.status != 204 || r.header.Get("Access-Control-Allow-Origin") != "https://app.example" ||
			!strings.Contains(r.header.Get("Access-Control-Allow-Methods"), "POST") || r.header.Get("Access-Control-Max-Age") != "600" {
			t.Fatalf("preflight: %d %v", r.status, r.header)
		}
		r = get("/open", map[string]string{"Origin": "https://app.example"})
		if r.status != 200 || r.header.Get("Access-Control-Allow-Origin") != "https://app.example" {
			t.Fatalf("simple request: %d %v", r.status, r.header)
		}
		if r := get("/open", map[string]string{"Origin": "https://evil.example"}); r.header.Get("Access-Control-Allow-Origin") != "" {
			t.Fatalf("an unlisted origin got %q", r.header.Get("Access-Control-Allow-Origin"))
		}
	})

	t.Run("throttle", func(t *testing.T) {
		var statuses []int
		for range 4 {
			statuses = append(statuses, get("/throttled", nil).status)
		}
		if fmt.Sprint(statuses) != "[200 200 429 429]" {
			t.Fatalf("statuses %v, want the burst of 2 then 429", statuses)
		}
		if r := get("/throttled", nil); string(r.body) != `{"message":"Too Many Requests"}` {
			t.Fatalf("body %s", r.body)
		}
	})

	t.Run("jwt", func(t *testing.T) {
		now := time.Now()
		token := func(claims jwt.MapClaims, signer *rsa.PrivateKey) string {
			tok := jwt.NewWithClaims(jwt.SigningMethodRS256, claims)
			tok.Header["kid"] = "k1"
			s, err := tok.SignedString(signer)
			if err != nil {
				t.Fatal(err)
			}
			return s
		}
		good := jwt.MapClaims{"iss": "https://id.example", "aud": "api://web", "sub": "alice", "scope": "read write", "exp": now.Add(time.Hour).Unix(), "iat": now.Unix()}
		other, _ := rsa.GenerateKey(rand.Reader, 2048)
		noScope := jwt.MapClaims{"iss": "https://id.example", "aud": "api://web", "sub": "bob", "scope": "write", "exp": now.Add(time.Hour).Unix()}
		expired := jwt.MapClaims{"iss": "https://id.example", "aud": "api://web", "sub": "carol", "scope": "read", "exp": now.Add(-time.Hour).Unix()}
		for _, tc := range []struct {
			name, auth string
			status     int
		}{
			{"missing", "", 401},
			{"garbage", "Bearer not-a-token", 401},
			{"forged", "Bearer " + token(good, other), 401},
			{"expired", "Bearer " + token(expired, key), 401},
			{"scope missing", "Bearer " + token(noScope, key), 403},
			{"valid", "Bearer " + token(good, key), 200},
		} {
			if len(tc.auth) > 20 {
				secrets = append(secrets, strings.TrimPrefix(tc.auth, "Bearer "))
			}
			r := get("/jwt", map[string]string{"Authorization": tc.auth})
			if r.status != tc.status {
				t.Fatalf("%s: %d %s, want %d", tc.name, r.status, r.body, tc.status)
			}
			if tc.status == 401 && (string(r.body) != `{"message":"Unauthorized"}` || !strings.HasPrefix(r.header.Get("Www-Authenticate"), "Bearer")) {
				t.Fatalf("%s: %s, www-authenticate %q", tc.name, r.body, r.header.Get("Www-Authenticate"))
			}
			if tc.status == 200 {
				claims := authorizerOf(r)["jwt"].(map[string]any)["claims"].(map[string]any)
				if claims["sub"] != "alice" || claims["exp"] == nil {
					t.Fatalf("claims %v", claims)
				}
			}
		}
	})

	t.Run("function authorizer", func(t *testing.T) {
		if r := get("/fn", nil); r.status != 401 {
			t.Fatalf("without the identity source: %d", r.status)
		}
		if r := get("/fn", map[string]string{"x-token": "wrong"}); r.status != 403 || string(r.body) != `{"message":"Forbidden"}` {
			t.Fatalf("denied: %d %s", r.status, r.body)
		}
		r := get("/fn", map[string]string{"x-token": "let-me-in"})
		if r.status != 200 {
			t.Fatalf("allowed: %d %s", r.status, r.body)
		}
		if lambda := authorizerOf(r)["lambda"].(map[string]any); lambda["user"] != "u1" || !strings.HasSuffix(lambda["routeArn"].(string), "/$default/GET/fn") {
			t.Fatalf("context %v", lambda)
		}
		// The answer is cached by identity value for the authorizer's resultTtl: the function
		// decided once for these five requests.
		for range 5 {
			if r := get("/fn", map[string]string{"x-token": "let-me-in"}); r.status != 200 {
				t.Fatalf("cached: %d", r.status)
			}
		}
		if r := get("/fn", map[string]string{"x-token": "boom"}); r.status != 500 || string(r.body) != `{"message":"Internal Server Error"}` {
			t.Fatalf("authorizer failing: %d %s", r.status, r.body)
		}
		deadline := time.Now().Add(10 * time.Second)
		for {
			recs, err := n.logs.Recent(t.Context(), "authz", 100)
			if err != nil {
				t.Fatal(err)
			}
			decisions := map[string]int{}
			for _, rec := range recs {
				decisions[rec.Message]++
			}
			if decisions["deciding for [boom]"] == 1 {
				if decisions["deciding for [let-me-in]"] != 1 {
					t.Fatalf("decisions %v: want one for let-me-in, the rest from the cache", decisions)
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("decisions %v", decisions)
			}
			time.Sleep(50 * time.Millisecond)
		}
	})

	t.Run("api keys", func(t *testing.T) {
		if r := get("/keyed", nil); r.status != 403 {
			t.Fatalf("without a key: %d", r.status)
		}
		out := runCLI(t, n, "keys", "create", "partner", "--plan", "basic", "--json")
		var created struct{ Key string }
		if err := json.Unmarshal([]byte(out), &created); err != nil || created.Key == "" {
			t.Fatalf("keys create: %q", out)
		}
		secrets = append(secrets, created.Key)
		deadline := time.Now().Add(10 * time.Second)
		if r := get("/keyed", map[string]string{"x-api-key": created.Key + "x"}); r.status != 403 {
			t.Fatalf("a wrong key: %d", r.status)
		}
		var statuses []int
		for range 5 {
			r := get("/keyed", map[string]string{"x-api-key": created.Key})
			if r.status == 403 && len(statuses) == 0 && time.Now().Before(deadline) {
				time.Sleep(20 * time.Millisecond) // the key reaches the gateway's copy
				continue
			}
			statuses = append(statuses, r.status)
			if r.status == 429 && string(r.body) != `{"message":"Limit Exceeded"}` {
				t.Fatalf("over the quota: %s", r.body)
			}
		}
		if fmt.Sprint(statuses[:4]) != "[200 200 200 429]" {
			t.Fatalf("statuses %v, want the quota of 3 then 429", statuses)
		}
	})

	t.Run("iam", func(t *testing.T) {
		if r := get("/iam", nil); r.status != 403 {
			t.Fatalf("unsigned: %d", r.status)
		}
		req := newRequest(t, "GET", base+"/iam", nil)
		sum := sha256.Sum256(nil)
		if err := v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: "AKIAIOSFODNN7EXAMPLE", SecretAccessKey: "wJalrXUtnFEMIK7MDENGbPxRfiCYEXAMPLEKEY"},
			req, hex.EncodeToString(sum[:]), "execute-api", "us-east-1", time.Now()); err != nil {
			t.Fatal(err)
		}
		secrets = append(secrets, "wJalrXUtnFEMIK7MDENGbPxRfiCYEXAMPLEKEY", req.Header.Get("Authorization"))
		r := do(t, req)
		if r.status != 200 {
			t.Fatalf("signed: %d %s", r.status, r.body)
		}
		if iam := authorizerOf(r)["iam"].(map[string]any); iam["accessKey"] != "AKIAIOSFODNN7EXAMPLE" {
			t.Fatalf("iam %v", iam)
		}
	})
}
