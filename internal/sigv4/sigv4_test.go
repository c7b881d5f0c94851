package sigv4

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

const (
	keyID    = "AKIDGATEHOUSETEST01"
	secret   = "c2VjcmV0LWtleS1mb3ItdGVzdHMtb25seQ"
	keyID2   = "AKIDGATEHOUSETEST02"
	secret2  = "another-secret-for-the-second-key"
	region   = "us-east-1"
	service  = "execute-api"
	connPath = "/prod/@connections/R1kmxc2VNjMCFIA%3D"
)

// signedAt is when the test requests are signed; verifiers see it as now unless a test says otherwise.
var signedAt = time.Date(2026, 3, 4, 23, 58, 30, 0, time.UTC)

var sentinels = []error{ErrMissing, ErrMalformed, ErrUnknownKey, ErrExpired, ErrScope, ErrSignature}

func newVerifier(tb testing.TB, now time.Time) *Verifier {
	tb.Helper()
	v, err := New(Config{
		Keys: []Credentials{{keyID, secret}, {keyID2, secret2}},
		Now:  func() time.Time { return now },
	})
	if err != nil {
		tb.Fatal(err)
	}
	return v
}

func hashHex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// signOpts varies how a test request is signed.
type signOpts struct {
	id, secret, token string
	region, service   string
	at                time.Time
	payloadHash       string // default: the hex SHA-256 of the body
	header            http.Header
}

// sign builds a request and signs it with the AWS SDK's signer, as an SDK client would.
func sign(tb testing.TB, method, url string, body []byte, o signOpts) *http.Request {
	tb.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		tb.Fatal(err)
	}
	for k, vs := range o.header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	o = o.withDefaults(body)
	creds := aws.Credentials{AccessKeyID: o.id, SecretAccessKey: o.secret, SessionToken: o.token}
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, o.payloadHash, o.service, o.region, o.at); err != nil {
		tb.Fatal(err)
	}
	return req
}

func (o signOpts) withDefaults(body []byte) signOpts {
	if o.id == "" {
		o.id, o.secret = keyID, secret
	}
	if o.region == "" {
		o.region = region
	}
	if o.service == "" {
		o.service = service
	}
	if o.at.IsZero() {
		o.at = signedAt
	}
	if o.payloadHash == "" {
		o.payloadHash = hashHex(body)
	}
	return o
}

// toRequest turns a client request into what a server receives: the request target exactly as Go's
// client writes it, and the Content-Length header its transport adds.
func toRequest(req *http.Request, body []byte) Request {
	path, query, _ := strings.Cut(req.URL.RequestURI(), "?")
	h := req.Header.Clone()
	if req.ContentLength > 0 {
		h.Set("Content-Length", fmt.Sprint(req.ContentLength))
	}
	host := req.Host
	if host == "" {
		host = req.URL.Host
	}
	return Request{Method: req.Method, RawPath: path, RawQuery: query, Host: host, Header: h, Body: body}
}

func checkErr(t *testing.T, id string, err, want error) {
	t.Helper()
	if want == nil {
		if err != nil || id != keyID {
			t.Fatalf("Verify = %q, %v; want %q, nil", id, err, keyID)
		}
		return
	}
	if !errors.Is(err, want) || id != "" {
		t.Fatalf("Verify = %q, %v; want an error wrapping %v", id, err, want)
	}
}

func TestVerifySignedBySDK(t *testing.T) {
	jsonHeader := http.Header{"Content-Type": {"application/json"}}
	tests := []struct {
		name   string
		method string
		url    string
		body   []byte
		opts   signOpts
	}{
		{"post to connection", "POST", "https://abc123.execute-api.us-east-1.amazonaws.com" + connPath, []byte(`{"msg":"hi"}`), signOpts{}},
		{"get connection", "GET", "https://abc123.execute-api.us-east-1.amazonaws.com" + connPath, nil, signOpts{}},
		{"delete connection", "DELETE", "https://abc123.execute-api.us-east-1.amazonaws.com" + connPath, nil, signOpts{}},
		{"connection id with slash and plus", "POST", "http://localhost:8080/prod/@connections/a%2Fb%2Bc%3D%3D", []byte("x"), signOpts{}},
		{"encoded spaces", "GET", "http://localhost:8080/prod/with%20space/x%20%20y", nil, signOpts{}},
		{"raw space in path", "GET", "http://localhost:8080/prod/with space", nil, signOpts{}},
		{"unicode", "GET", "http://localhost:8080/prod/h%C3%A9llo/日本", nil, signOpts{}},
		{"reserved characters kept by the client", "GET", "http://localhost:8080/prod/a:b,c;d=e&f$g!h'i(j)k*l+m@n", nil, signOpts{}},
		{"unnormalised path", "GET", "http://localhost:8080/prod//a/./b/../c/", nil, signOpts{}},
		{"empty path", "GET", "http://localhost:8080", nil, signOpts{}},
		{"query with repeated keys", "GET", "http://localhost:8080/prod/items?b=2&a=3&a=1&a=1&c=x%20y&d=a+b&e&f=&%C3%A9=%E2%9C%93&g=%2F%3D%26", nil, signOpts{}},
		{"body with signed headers", "PUT", "http://localhost:8080/prod/items/1?v=2", []byte(`{"name":"gatehouse"}`), signOpts{
			header: http.Header{
				"Content-Type": {"application/json"},
				"X-Custom":     {"  a   b  c ", "second"},
			},
		}},
		{"unsigned payload", "POST", "http://localhost:8080" + connPath, []byte("data"), signOpts{
			payloadHash: "UNSIGNED-PAYLOAD",
			header:      http.Header{"X-Amz-Content-Sha256": {"UNSIGNED-PAYLOAD"}},
		}},
		{"declared payload hash", "POST", "http://localhost:8080" + connPath, []byte("data"), signOpts{
			header: http.Header{"X-Amz-Content-Sha256": {hashHex([]byte("data"))}},
		}},
		{"session token", "GET", "http://localhost:8080" + connPath, nil, signOpts{token: "session-token"}},
		{"default https port", "GET", "https://localhost:443" + connPath, nil, signOpts{header: jsonHeader}},
		{"signed at the edge of the window", "GET", "http://localhost:8080" + connPath, nil, signOpts{at: signedAt.Add(-DefaultWindow)}},
	}
	v := newVerifier(t, signedAt)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := sign(t, tc.method, tc.url, tc.body, tc.opts)
			id, err := v.Verify(toRequest(req, tc.body))
			checkErr(t, id, err, nil)
		})
	}

	t.Run("second key", func(t *testing.T) {
		req := sign(t, "GET", "http://localhost:8080"+connPath, nil, signOpts{id: keyID2, secret: secret2})
		if id, err := v.Verify(toRequest(req, nil)); err != nil || id != keyID2 {
			t.Fatalf("Verify = %q, %v; want %q", id, err, keyID2)
		}
	})
}

// TestVerifyOverHTTP sends signed requests through Go's HTTP client and server, so the path, query
// and headers are what arrives on the wire.
func TestVerifyOverHTTP(t *testing.T) {
	v := newVerifier(t, signedAt)
	type result struct {
		id  string
		err error
	}
	results := make(chan result, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		path, query, _ := strings.Cut(r.RequestURI, "?")
		id, err := v.Verify(Request{Method: r.Method, RawPath: path, RawQuery: query, Host: r.Host, Header: r.Header, Body: body})
		results <- result{id, err}
	}))
	defer srv.Close()

	for _, tc := range []struct {
		method, path string
		body         []byte
	}{
		{"POST", connPath, []byte("hello over the wire")},
		{"GET", connPath, nil},
		{"DELETE", connPath, nil},
		{"GET", "/prod/h%C3%A9llo/a%20b?x=1&x=0&y=a+b", nil},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			req := sign(t, tc.method, srv.URL+tc.path, tc.body, signOpts{})
			if tc.body != nil {
				req.Body = io.NopCloser(bytes.NewReader(tc.body))
			}
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			r := <-results
			checkErr(t, r.id, r.err, nil)
		})
	}
}

func TestVerifyPresigned(t *testing.T) {
	presign := func(t *testing.T, url string, expires string) (string, http.Header) {
		t.Helper()
		req, err := http.NewRequest("GET", url, nil)
		if err != nil {
			t.Fatal(err)
		}
		if expires != "" {
			q := req.URL.Query()
			q.Set("X-Amz-Expires", expires)
			req.URL.RawQuery = q.Encode()
		}
		creds := aws.Credentials{AccessKeyID: keyID, SecretAccessKey: secret}
		u, h, err := v4.NewSigner().PresignHTTP(context.Background(), creds, req, hashHex(nil), service, region, signedAt)
		if err != nil {
			t.Fatal(err)
		}
		return u, h
	}
	toReq := func(t *testing.T, signedURL string, h http.Header) Request {
		t.Helper()
		req, err := http.NewRequest("GET", signedURL, nil)
		if err != nil {
			t.Fatal(err)
		}
		for k, vs := range h {
			if k != "Host" {
				req.Header[k] = vs
			}
		}
		return toRequest(req, nil)
	}

	tests := []struct {
		name    string
		url     string
		expires string
		now     time.Time
		want    error
	}{
		{"connection", "https://abc.execute-api.us-east-1.amazonaws.com" + connPath, "300", signedAt, nil},
		{"with query", "http://localhost:8080/prod/items?b=2&a=1&a=0", "60", signedAt.Add(59 * time.Second), nil},
		{"no expiry, inside the window", "http://localhost:8080" + connPath, "", signedAt.Add(DefaultWindow), nil},
		{"no expiry, outside the window", "http://localhost:8080" + connPath, "", signedAt.Add(DefaultWindow + time.Second), ErrExpired},
		{"expired", "http://localhost:8080" + connPath, "300", signedAt.Add(301 * time.Second), ErrExpired},
		{"seven days", "http://localhost:8080" + connPath, "604800", signedAt.Add(6 * 24 * time.Hour), nil},
		{"more than seven days", "http://localhost:8080" + connPath, "604801", signedAt, ErrExpired},
		{"signed in the future", "http://localhost:8080" + connPath, "300", signedAt.Add(-DefaultWindow - time.Second), ErrExpired},
		{"bad expiry", "http://localhost:8080" + connPath, "-5", signedAt, ErrMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			u, h := presign(t, tc.url, tc.expires)
			id, err := newVerifier(t, tc.now).Verify(toReq(t, u, h))
			checkErr(t, id, err, tc.want)
		})
	}

	t.Run("tampered", func(t *testing.T) {
		u, h := presign(t, "http://localhost:8080"+connPath, "300")
		r := toReq(t, u, h)
		v := newVerifier(t, signedAt)
		for name, mutate := range map[string]func(*Request){
			"method":      func(r *Request) { r.Method = "DELETE" },
			"path":        func(r *Request) { r.RawPath = strings.Replace(r.RawPath, "R1km", "R1kn", 1) },
			"extra query": func(r *Request) { r.RawQuery += "&extra=1" },
			"expiry": func(r *Request) {
				r.RawQuery = strings.Replace(r.RawQuery, "X-Amz-Expires=300", "X-Amz-Expires=600", 1)
			},
			"host": func(r *Request) { r.Host = "evil.example" },
		} {
			rr := r
			mutate(&rr)
			id, err := v.Verify(rr)
			if !errors.Is(err, ErrSignature) || id != "" {
				t.Errorf("%s: Verify = %q, %v; want ErrSignature", name, id, err)
			}
		}
		both := r
		both.Header = http.Header{"Authorization": {"AWS4-HMAC-SHA256 Credential=x"}}
		if _, err := v.Verify(both); !errors.Is(err, ErrMalformed) {
			t.Errorf("header and query: %v; want ErrMalformed", err)
		}
	})
}

// baseRequest is a signed POST to a connection, as received.
func baseRequest(tb testing.TB) Request {
	tb.Helper()
	body := []byte(`{"message":"hello"}`)
	req := sign(tb, "POST", "https://abc123.execute-api.us-east-1.amazonaws.com"+connPath+"?a=1&a=2", body, signOpts{
		header: http.Header{"Content-Type": {"application/json"}},
	})
	return toRequest(req, body)
}

func TestVerifyRefuses(t *testing.T) {
	base := baseRequest(t)
	if _, err := newVerifier(t, signedAt).Verify(base); err != nil {
		t.Fatalf("base request: %v", err)
	}
	auth := base.Header.Get("Authorization")
	setAuth := func(a string) func(*Request) {
		return func(r *Request) { r.Header.Set("Authorization", a) }
	}
	resign := func(o signOpts) func(*Request) {
		return func(r *Request) {
			req := sign(t, "POST", "https://abc123.execute-api.us-east-1.amazonaws.com"+connPath+"?a=1&a=2", r.Body, o)
			*r = toRequest(req, r.Body)
		}
	}
	tests := []struct {
		name   string
		mutate func(*Request)
		now    time.Time
		want   error
	}{
		{"method", func(r *Request) { r.Method = "DELETE" }, signedAt, ErrSignature},
		{"path", func(r *Request) { r.RawPath = "/prod/@connections/R1kmxc2VNjMCFIA=" }, signedAt, ErrSignature},
		{"decoded path", func(r *Request) { r.RawPath = "/prod/%40connections/R1kmxc2VNjMCFIA%3D" }, signedAt, ErrSignature},
		{"query value", func(r *Request) { r.RawQuery = "a=1&a=3" }, signedAt, ErrSignature},
		{"query dropped", func(r *Request) { r.RawQuery = "a=1" }, signedAt, ErrSignature},
		{"signed header", func(r *Request) { r.Header.Set("Content-Type", "text/plain") }, signedAt, ErrSignature},
		{"host", func(r *Request) { r.Host = "other.example" }, signedAt, ErrSignature},
		{"body", func(r *Request) { r.Body = []byte(`{"message":"hellO"}`) }, signedAt, ErrSignature},
		{"body against declared hash", func(r *Request) {
			r.Header.Set("X-Amz-Content-Sha256", hashHex(r.Body))
			r.Body = []byte("other")
		}, signedAt, ErrSignature},
		{"unsigned payload not signed", func(r *Request) { r.Header.Set("X-Amz-Content-Sha256", "UNSIGNED-PAYLOAD") }, signedAt, ErrSignature},
		{"signature", setAuth(auth[:len(auth)-1] + "0"), signedAt, ErrSignature},
		{"wrong secret", resign(signOpts{id: keyID, secret: "wrong"}), signedAt, ErrSignature},
		{"secret of another key", resign(signOpts{id: keyID, secret: secret2}), signedAt, ErrSignature},
		{"unknown key", resign(signOpts{id: "AKIDUNKNOWN", secret: secret}), signedAt, ErrUnknownKey},
		{"six minutes old", nil, signedAt.Add(6 * time.Minute), ErrExpired},
		{"six minutes ahead", nil, signedAt.Add(-6 * time.Minute), ErrExpired},
		{"region", resign(signOpts{region: "eu-west-1"}), signedAt, ErrScope},
		{"service", resign(signOpts{service: "execute-apis"}), signedAt, ErrScope},
		{"scope date", setAuth(strings.Replace(auth, "/20260304/", "/20260305/", 1)), signedAt, ErrScope},
		{"scope terminator", setAuth(strings.Replace(auth, "/aws4_request", "/aws5_request", 1)), signedAt, ErrScope},
		{"no Authorization", func(r *Request) { r.Header.Del("Authorization") }, signedAt, ErrMissing},
		{"no headers at all", func(r *Request) { r.Header = nil }, signedAt, ErrMissing},
		{"two Authorization headers", func(r *Request) { r.Header.Add("Authorization", auth) }, signedAt, ErrMalformed},
		{"no X-Amz-Date", func(r *Request) { r.Header.Del("X-Amz-Date") }, signedAt, ErrMalformed},
		{"bad X-Amz-Date", func(r *Request) { r.Header.Set("X-Amz-Date", "2026-03-04T23:58:30Z") }, signedAt, ErrMalformed},
		{"host not signed", setAuth(strings.Replace(auth, "host;", "", 1)), signedAt, ErrMalformed},
		{"x-amz-date not signed", setAuth(strings.Replace(auth, ";x-amz-date", "", 1)), signedAt, ErrMalformed},
		{"unsorted signed headers", setAuth(strings.Replace(auth, "content-length;content-type", "content-type;content-length", 1)), signedAt, ErrMalformed},
		{"malformed query", func(r *Request) { r.RawQuery = "a=1;b=2" }, signedAt, ErrMalformed},
		{"bad content hash", func(r *Request) { r.Header.Set("X-Amz-Content-Sha256", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD") }, signedAt, ErrMalformed},
	}
	for _, g := range []string{
		"",
		"garbage",
		"Bearer abc.def.ghi",
		"AWS4-HMAC-SHA256",
		"AWS4-HMAC-SHA256 ",
		"AWS4-ECDSA-P256-SHA256 Credential=a/b/c/d/e, SignedHeaders=host, Signature=00",
		"AWS4-HMAC-SHA256 Credential=, SignedHeaders=, Signature=",
		"AWS4-HMAC-SHA256 Credential=" + keyID + "/20260304/us-east-1/execute-api/aws4_request",
		"AWS4-HMAC-SHA256 Credential=" + keyID + "/20260304/us-east-1/execute-api, SignedHeaders=host;x-amz-date, Signature=" + strings.Repeat("0", 64),
		"AWS4-HMAC-SHA256 Credential=" + keyID + "/20260304/us-east-1/execute-api/aws4_request, SignedHeaders=host;x-amz-date, Signature=xyz",
		"AWS4-HMAC-SHA256 Credential=" + keyID + "/20260304/us-east-1/execute-api/aws4_request, SignedHeaders=Host;X-Amz-Date, Signature=" + strings.Repeat("0", 64),
		"AWS4-HMAC-SHA256 Credential=" + keyID + "/20260304/us-east-1/execute-api/aws4_request, SignedHeaders=host;;x-amz-date, Signature=" + strings.Repeat("0", 64),
		"AWS4-HMAC-SHA256 Credential=" + keyID + "/20260304/us-east-1/execute-api/aws4_request, Credential=x, SignedHeaders=host;x-amz-date, Signature=" + strings.Repeat("0", 64),
		"AWS4-HMAC-SHA256 Credential=" + keyID + "/20260304/us-east-1/execute-api/aws4_request, SignedHeaders=host;x-amz-date, Signature=" + strings.Repeat("0", 64) + ", Extra=1",
		"AWS4-HMAC-SHA256 Credential=" + keyID + "/20260304/us-east-1/execute-api/aws4_request,,SignedHeaders=host;x-amz-date,Signature=" + strings.Repeat("0", 64),
		strings.Repeat("AWS4-HMAC-SHA256 =,", 1000),
	} {
		tests = append(tests, struct {
			name   string
			mutate func(*Request)
			now    time.Time
			want   error
		}{fmt.Sprintf("garbage %.40q", g), setAuth(g), signedAt, ErrMalformed})
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := base
			r.Header = base.Header.Clone()
			r.Body = bytes.Clone(base.Body)
			if tc.mutate != nil {
				tc.mutate(&r)
			}
			id, err := newVerifier(t, tc.now).Verify(r)
			checkErr(t, id, err, tc.want)
		})
	}
}

func TestVerifyAcceptsDateHeader(t *testing.T) {
	// A client may sign Date instead of X-Amz-Date; the string to sign still uses the basic format.
	base := baseRequest(t)
	base.Header.Del("X-Amz-Date")
	base.Header.Set("Date", signedAt.Format(http.TimeFormat))
	// The SDK signer always adds X-Amz-Date; compute the Date-signed request by hand from ours.
	s := &signed{keyID: keyID, scopeDate: "20260304", amzDate: signedAt.Format(amzDateLayout)}
	if err := s.setSignedHeaders("content-length;content-type;date;host"); err != nil {
		t.Fatal(err)
	}
	s.query, _ = url.ParseQuery(base.RawQuery)
	canonical := canonicalRequest(base, s, hashHex(base.Body))
	sum := sha256.Sum256([]byte(canonical))
	sts := algorithm + "\n" + s.amzDate + "\n20260304/us-east-1/execute-api/aws4_request\n" + hex.EncodeToString(sum[:])
	v := newVerifier(t, signedAt)
	sig := hex.EncodeToString(hmacSHA256(v.signingKey(keyID, secret, "20260304"), []byte(sts)))
	base.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential="+keyID+"/20260304/us-east-1/execute-api/aws4_request, SignedHeaders=content-length;content-type;date;host, Signature="+sig)
	id, err := v.Verify(base)
	checkErr(t, id, err, nil)

	base.Header.Set("Date", signedAt.Add(time.Second).Format(http.TimeFormat))
	id, err = v.Verify(base)
	checkErr(t, id, err, ErrSignature)
}

func TestCanonicalURI(t *testing.T) {
	// What the SDK signer does to the path it sends, for services other than S3.
	for in, want := range map[string]string{
		"":                                     "/",
		"/":                                    "/",
		connPath:                               "/prod/%40connections/R1kmxc2VNjMCFIA%253D",
		"/a%20b/c d":                           "/a%2520b/c%20d",
		"/h%C3%A9llo":                          "/h%25C3%25A9llo",
		"/héllo":                               "/h%C3%A9llo",
		"//a/./b/../c/":                        "//a/./b/../c/",
		"/AZaz09-._~":                          "/AZaz09-._~",
		"/a:b,c;d=e&f$g!h'i(j)k*l+m@n":         "/a%3Ab%2Cc%3Bd%3De%26f%24g%21h%27i%28j%29k%2Al%2Bm%40n",
		"/%2F":                                 "/%252F",
		"/\x00\xff":                            "/%00%FF",
		"/prod/@connections/a%2Fb%2Bc%3D%3D/x": "/prod/%40connections/a%252Fb%252Bc%253D%253D/x",
	} {
		var b strings.Builder
		writeCanonicalURI(&b, in)
		if b.String() != want {
			t.Errorf("canonical URI of %q = %q; want %q", in, b.String(), want)
		}
	}
}

func TestNewValidates(t *testing.T) {
	for name, cfg := range map[string]Config{
		"no keys":       {},
		"empty secret":  {Keys: []Credentials{{"A", ""}}},
		"empty id":      {Keys: []Credentials{{"", "s"}}},
		"slash in id":   {Keys: []Credentials{{"A/B", "s"}}},
		"duplicate id":  {Keys: []Credentials{{"A", "s"}, {"A", "t"}}},
		"negative skew": {Keys: []Credentials{{"A", "s"}}, Window: -time.Second},
	} {
		if _, err := New(cfg); err == nil {
			t.Errorf("%s: New succeeded", name)
		}
	}
	v, err := New(Config{Keys: []Credentials{{"A", "s"}}})
	if err != nil {
		t.Fatal(err)
	}
	if v.region != DefaultRegion || v.service != DefaultService || v.window != DefaultWindow || v.now == nil {
		t.Errorf("defaults: %q %q %v", v.region, v.service, v.window)
	}
}

func TestSigningKeyCacheIsBounded(t *testing.T) {
	v := newVerifier(t, signedAt)
	first := v.signingKey(keyID, secret, "20260304")
	for d := range 3 * maxCachedKeys {
		v.signingKey(keyID, secret, fmt.Sprintf("2026%04d", d))
		if n := len(v.keys); n > maxCachedKeys {
			t.Fatalf("cache holds %d keys; bound is %d", n, maxCachedKeys)
		}
	}
	if again := v.signingKey(keyID, secret, "20260304"); !bytes.Equal(first, again) {
		t.Fatal("derived key changed after eviction")
	}
}

// TestVerifyConcurrently hammers one Verifier from many goroutines (run with -race), across dates so
// that the key cache is written while it is read.
func TestVerifyConcurrently(t *testing.T) {
	const goroutines, iterations = 8, 50
	v := newVerifier(t, signedAt)
	reqs := make([]Request, 4)
	for i := range reqs {
		at := signedAt.Add(time.Duration(i) * time.Minute) // 23:58 … 00:01: two scope dates
		id, sec := keyID, secret
		if i%2 == 1 {
			id, sec = keyID2, secret2
		}
		reqs[i] = toRequest(sign(t, "GET", "http://localhost:8080"+connPath, nil, signOpts{id: id, secret: sec, at: at}), nil)
	}
	var wg sync.WaitGroup
	errs := make(chan error, goroutines)
	for g := range goroutines {
		wg.Go(func() {
			for i := range iterations {
				if _, err := v.Verify(reqs[(g+i)%len(reqs)]); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func FuzzVerify(f *testing.F) {
	v := newVerifier(f, signedAt)
	base := baseRequest(f)
	f.Add(base.Header.Get("Authorization"), base.RawPath, base.RawQuery)
	for _, u := range []string{
		"http://localhost:8080/prod/h%C3%A9llo/a%20b?x=1&x=0&y=a+b",
		"http://localhost:8080/?%C3%A9=%E2%9C%93&g=%2F%3D%26",
		"http://localhost:8080" + connPath,
	} {
		r := toRequest(sign(f, "POST", u, base.Body, signOpts{header: http.Header{"Content-Type": {"application/json"}}}), base.Body)
		f.Add(r.Header.Get("Authorization"), r.RawPath, r.RawQuery)
	}
	creds := aws.Credentials{AccessKeyID: keyID, SecretAccessKey: secret}
	preq, _ := http.NewRequest("GET", "http://localhost:8080"+connPath+"?X-Amz-Expires=300", nil)
	pu, _, err := v4.NewSigner().PresignHTTP(context.Background(), creds, preq, hashHex(nil), service, region, signedAt)
	if err != nil {
		f.Fatal(err)
	}
	pr, _ := http.NewRequest("GET", pu, nil)
	path, query, _ := strings.Cut(pr.URL.RequestURI(), "?")
	f.Add("", path, query)
	f.Add("AWS4-HMAC-SHA256 Credential=a/b/c/d/e, SignedHeaders=host, Signature=00", "/", "X-Amz-Expires=99999999999999999999")

	f.Fuzz(func(t *testing.T, auth, path, query string) {
		r := base
		r.Header = base.Header.Clone()
		if auth == "" {
			r.Header.Del("Authorization")
		} else {
			r.Header.Set("Authorization", auth)
		}
		r.RawPath, r.RawQuery = path, query
		id, err := v.Verify(r)
		if err == nil {
			if id != keyID {
				t.Fatalf("verified as %q", id)
			}
			return
		}
		if id != "" {
			t.Fatalf("error %v with id %q", err, id)
		}
		n := 0
		for _, s := range sentinels {
			if errors.Is(err, s) {
				n++
			}
		}
		if n != 1 {
			t.Fatalf("error %v wraps %d sentinels", err, n)
		}
	})
}

func BenchmarkVerify(b *testing.B) {
	v := newVerifier(b, signedAt)
	r := baseRequest(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(r); err != nil {
			b.Fatal(err)
		}
	}
}
