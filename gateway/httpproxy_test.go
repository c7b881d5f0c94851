package gateway

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"gatehouse.dev/gatehouse/internal/spec"
)

// backend is an HTTP server on 127.0.0.1 standing behind the gateway's HTTP proxy integrations:
// it records every request exactly as it received it, and answers with the function set by
// answerWith (an empty 200 by default).
type backend struct {
	srv  *httptest.Server
	addr string // 127.0.0.1:PORT
	// conns counts the TCP (or TLS) connections the backend accepted.
	conns atomic.Int32

	mu     sync.Mutex
	seen   []backendRequest
	answer http.HandlerFunc
}

// backendRequest is a request as the backend received it.
type backendRequest struct {
	method, requestURI, proto, host string
	header                          http.Header
	transferEncoding                []string
	body                            []byte
}

// startBackend starts a backend, with TLS when tls is set, and closes it when the test ends.
func startBackend(t *testing.T, tls bool) *backend {
	t.Helper()
	b := &backend{}
	b.srv = httptest.NewUnstartedServer(http.HandlerFunc(b.serveHTTP))
	b.srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			b.conns.Add(1)
		}
	}
	// Handshakes the gateway refuses (TLS tests) are expected.
	b.srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	if tls {
		b.srv.StartTLS()
	} else {
		b.srv.Start()
	}
	b.addr = b.srv.Listener.Addr().String()
	t.Cleanup(b.srv.Close)
	return b
}

func (b *backend) serveHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	b.mu.Lock()
	b.seen = append(b.seen, backendRequest{method: r.Method, requestURI: r.RequestURI, proto: r.Proto, host: r.Host,
		header: r.Header.Clone(), transferEncoding: r.TransferEncoding, body: body})
	answer := b.answer
	b.mu.Unlock()
	if answer != nil {
		answer(w, r)
	}
}

// answerWith makes f answer the requests from now on, and forgets the requests so far.
func (b *backend) answerWith(f http.HandlerFunc) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.answer, b.seen = f, nil
}

// requests returns the requests received since the last answerWith.
func (b *backend) requests() []backendRequest {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.seen)
}

// proxyRoute is a route of an http_proxy integration to target, taking the client's method.
func proxyRoute(key, target string) Route {
	return Route{Key: key, Timeout: 5 * time.Second, Spec: spec.Route{Key: key, Integration: spec.Integration{
		Type: spec.IntegrationHTTPProxy, Target: target, Method: spec.MethodAny, Timeout: spec.Duration(5 * time.Second)}}}
}

// with returns r with its integration changed by f.
func (r Route) with(f func(in *spec.Integration)) Route {
	f(&r.Spec.Integration)
	return r
}

// mockRoute is a route of a mock integration.
func mockRoute(key string, status int, headers map[string]string, body string) Route {
	return Route{Key: key, Spec: spec.Route{Key: key, Integration: spec.Integration{
		Type: spec.IntegrationMock, StatusCode: status, Headers: headers, Body: body}}}
}

// proxyGoldenConfig is the gateway of the archives of testdata/proxy, whose HTTP backend is at
// addr: a proxy API on the root, with stages $default and dev (whose variables name the backend)
// and bare (with none); a CORS API under /cors.
func proxyGoldenConfig(addr string) Config {
	b := "http://" + addr
	return Config{
		APIs: []API{
			{
				ID: "proxyapi",
				Stages: []Stage{
					{Name: DefaultStage, Variables: map[string]string{"host": addr, "tenant": "t-default"}},
					{Name: "dev", Variables: map[string]string{"host": addr, "tenant": "t-dev"}},
					{Name: "bare"},
				},
				Routes: []Route{
					proxyRoute("GET /items/{id}", b+"/v1/items/{id}"),
					proxyRoute("GET /files/{proxy+}", b+"/store/{proxy}"),
					proxyRoute("GET /plain", b+"/static/plain.json"),
					proxyRoute("GET /search", b+"/find?source=gateway&tag=fixed"),
					proxyRoute("ANY /echo", b+"/echo"),
					proxyRoute("ANY /fixed", b+"/fixed").with(func(in *spec.Integration) { in.Method = "POST" }),
					proxyRoute("GET /stagevar", "http://${stageVariables.host}/sv/x"),
					proxyRoute("POST /mapped/{id}", b+"/mapped/{id}").with(func(in *spec.Integration) {
						in.RequestParameters = map[string]string{
							"overwrite:header.x-tenant":     "$stageVariables.tenant",
							"overwrite:header.x-user":       "$request.body.user.name",
							"overwrite:header.x-request-id": "$context.requestId",
							"overwrite:header.x-item":       "item-${request.path.id}-${request.querystring.q}",
							"overwrite:header.x-multi":      "$request.querystring.multi",
							"overwrite:header.x-replaced":   "new",
							"append:header.x-list":          "$request.header.x-extra",
							"remove:header.x-secret":        "",
							"overwrite:header.x-absent":     "$request.header.x-not-sent",
						}
					}),
					proxyRoute("GET /rewrite/{id}", b+"/original/{id}").with(func(in *spec.Integration) {
						in.RequestParameters = map[string]string{
							"overwrite:path":              "/rewritten/${request.path.id}",
							"overwrite:querystring.mode":  "$request.header.x-mode",
							"append:querystring.tag":      "$request.path.id",
							"remove:querystring.drop":     "",
							"overwrite:querystring.stage": "$context.stage",
						}
					}),
					proxyRoute("GET /respmap", b+"/respmap").with(func(in *spec.Integration) {
						in.ResponseParameters = map[string]map[string]string{
							"404": {
								"overwrite:statuscode":     "200",
								"append:header.x-from":     "$response.header.x-backend",
								"append:header.x-item-id":  "$response.body.id",
								"overwrite:header.x-stage": "$stageVariables.tenant",
								"remove:header.x-internal": "",
							},
							"500": {"overwrite:statuscode": "503"},
						}
					}),
					mockRoute("GET /mock/basic", 201, map[string]string{"x-mock": "yes"},
						`{"requestId":"$context.requestId","stage":"$context.stage","tenant":"$stageVariables.tenant","missing":"$stageVariables.nothing"}`),
					mockRoute("POST /mock/{id}", 0, nil,
						`{"path":"$input.params('id')","query":"$input.params('q')","header":"$input.params('x-h')",`+
							`"a":$input.json('$.a'),"b":"$input.path('$.a.b')","none":$input.json('$.zzz'),"raw":$input.body}`),
					mockRoute("GET /mock/text", 0, map[string]string{"Content-Type": "text/plain; charset=utf-8"}, "plain $context.stage"),
					proxyRoute("$default", b+"/base"),
				},
			},
			{
				ID:    "corsapi",
				Mount: "/cors",
				CORS: &CORS{AllowOrigins: []string{"https://app.example.com"}, AllowMethods: []string{"GET"},
					ExposeHeaders: []string{"x-result"}, MaxAge: CORSMaxAgeUnset, AllowCredentials: true},
				Routes: []Route{proxyRoute("ANY /things", b+"/things")},
			},
		},
	}
}

// Proxy golden files.
//
// Each testdata/proxy/*.txtar archive is one request through the gateway of proxyGoldenConfig,
// with:
//
//   - request (and request-body.base64): the client's request, as in the archives of testdata/
//     (see Golden files in server_test.go).
//   - backend-response: what the backend answers: a status line, header lines in order, a blank
//     line and the body, without the file's final newline; backend-response-body.base64, when
//     present, holds the body instead. The backend sends no Date and no Content-Type of its own.
//     Absent for a mock integration's route.
//   - backend-request (written by -update): the request as the backend received it: the request
//     line, Host, every header in sorted order, Transfer-Encoding when the body was chunked, a blank
//     line and the body ("[base64] " and its base64 when it is not UTF-8). The backend's address
//     in Host is BACKEND, X-Forwarded-Port (checked to be the gateway's port) is PORT, and the
//     request id (checked against apigw-requestid wherever it appears) is REQUEST_ID. Nothing else
//     varies: the client sends User-Agent golden-test/1.0 and no Accept-Encoding but the archive's,
//     and the gateway adds none. Absent when the backend must not be called.
//   - response (written by -update): the client's response, as in testdata/, with the request id
//     written REQUEST_ID in the body too.
//
// go test ./gateway -run TestProxyGolden -update rewrites backend-request and response.

// proxyAnswer returns the backend's answer of an archive.
func proxyAnswer(t *testing.T, a *archive) http.HandlerFunc {
	t.Helper()
	text, ok := a.get("backend-response")
	if !ok {
		return nil
	}
	head, body, _ := strings.Cut(string(text), "\n\n")
	body = strings.TrimSuffix(body, "\n")
	lines := strings.Split(strings.TrimSuffix(head, "\n"), "\n")
	fields := strings.Fields(lines[0])
	if len(fields) < 2 {
		t.Fatalf("backend status line %q", lines[0])
	}
	status, err := strconv.Atoi(fields[1])
	if err != nil {
		t.Fatalf("backend status line %q", lines[0])
	}
	if b64, ok := a.get("backend-response-body.base64"); ok {
		raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(b64)))
		if err != nil {
			t.Fatal(err)
		}
		body = string(raw)
	}
	var header [][2]string
	for _, h := range lines[1:] {
		k, v, ok := strings.Cut(h, ":")
		if !ok {
			t.Fatalf("backend header line %q", h)
		}
		header = append(header, [2]string{k, strings.TrimSpace(v)})
	}
	return func(w http.ResponseWriter, _ *http.Request) {
		h := w.Header()
		// Only the archive's headers: a nil value keeps net/http from adding its own.
		h["Date"], h["Content-Type"] = nil, nil
		for _, kv := range header {
			h.Add(kv[0], kv[1])
		}
		w.WriteHeader(status)
		io.WriteString(w, body)
	}
}

// dumpBackendRequest writes a backend request as the archives hold it.
func dumpBackendRequest(t *testing.T, r backendRequest, backendAddr, gatewayPort string) []byte {
	t.Helper()
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s %s %s\n", r.method, r.requestURI, r.proto)
	host := r.host
	if host == backendAddr {
		host = "BACKEND"
	}
	fmt.Fprintf(&b, "Host: %s\n", host)
	for _, k := range slices.Sorted(maps.Keys(r.header)) {
		for _, v := range r.header[k] {
			if k == "X-Forwarded-Port" {
				if v != gatewayPort {
					t.Errorf("X-Forwarded-Port %q, want the gateway's port %s", v, gatewayPort)
				}
				v = "PORT"
			}
			fmt.Fprintf(&b, "%s: %s\n", k, v)
		}
	}
	if len(r.transferEncoding) > 0 {
		fmt.Fprintf(&b, "Transfer-Encoding: %s\n", strings.Join(r.transferEncoding, ", "))
	}
	b.WriteString("\n")
	if utf8.Valid(r.body) {
		b.Write(r.body)
	} else {
		b.WriteString("[base64] " + base64.StdEncoding.EncodeToString(r.body))
	}
	b.WriteString("\n")
	return b.Bytes()
}

func TestProxyGolden(t *testing.T) {
	names, err := filepath.Glob("testdata/proxy/*.txtar")
	if err != nil {
		t.Fatal(err)
	}
	if len(names) == 0 {
		t.Fatal("no golden files")
	}
	be := startBackend(t, false)
	ts := startServer(t, proxyGoldenConfig(be.addr), &fakeInvoker{})
	for _, name := range names {
		t.Run(strings.TrimSuffix(filepath.Base(name), ".txtar"), func(t *testing.T) {
			data, err := os.ReadFile(name)
			if err != nil {
				t.Fatal(err)
			}
			a := parseArchive(data)
			be.answerWith(proxyAnswer(t, a))
			r := ts.do(t, goldenRequest(t, a, ts.base))

			requestID := r.header.Get(HeaderRequestID)
			if !requestIDPattern.MatchString(requestID) {
				t.Fatalf("apigw-requestid %q", requestID)
			}
			normalise := func(b []byte) []byte {
				return bytes.ReplaceAll(b, []byte(requestID), []byte("REQUEST_ID"))
			}
			var backendRequest []byte
			switch seen := be.requests(); len(seen) {
			case 0:
			case 1:
				backendRequest = normalise(dumpBackendRequest(t, seen[0], be.addr, ts.port))
			default:
				t.Fatalf("the backend received %d requests, want at most one", len(seen))
			}
			got := map[string][]byte{"backend-request": backendRequest, "response": normalise(dumpResponse(t, r, requestID))}
			files := []string{"backend-request", "response"}
			if *update {
				for _, f := range files {
					a.set(f, got[f])
				}
				if err := os.WriteFile(name, formatArchive(a), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			for _, f := range files {
				want, _ := a.get(f)
				if !bytes.Equal(got[f], want) {
					switch {
					case want == nil:
						t.Errorf("%s: got one, want none (the backend must not be called):\n%s", f, got[f])
					case got[f] == nil:
						t.Errorf("%s: got none, want:\n%s", f, want)
					default:
						t.Errorf("%s differs:\n--- got\n%s--- want\n%s", f, got[f], want)
					}
				}
			}
		})
	}
}

// The archives' request ids are checked where they stand: a header the backend received carrying
// $context.requestId, and a mock body, must hold the apigw-requestid of the response.
func TestProxyContextRequestID(t *testing.T) {
	be := startBackend(t, false)
	ts := startServer(t, proxyGoldenConfig(be.addr), &fakeInvoker{})
	r := ts.do(t, ts.request(t, "POST", "/mapped/1?q=x", `{}`))
	id := r.header.Get(HeaderRequestID)
	seen := be.requests()
	if r.status != 200 || len(seen) != 1 {
		t.Fatalf("%v; the backend received %d requests", r, len(seen))
	}
	if got := seen[0].header.Get("X-Request-Id"); got != id || !requestIDPattern.MatchString(id) {
		t.Errorf("X-Request-Id %q at the backend, apigw-requestid %q", got, id)
	}
	r = ts.get(t, "/mock/basic")
	if id := r.header.Get(HeaderRequestID); !strings.Contains(r.body, `"requestId":"`+id+`"`) || !requestIDPattern.MatchString(id) {
		t.Errorf("mock body %s, apigw-requestid %q", r.body, id)
	}
}

// streamAnswer returns an answer that sends size bytes of a repeating pattern in chunks of 64 KiB,
// flushed as they go (so chunked), and the SHA-256 of those bytes.
func streamAnswer(size int) (http.HandlerFunc, [32]byte) {
	chunk := make([]byte, 64<<10)
	for i := range chunk {
		chunk[i] = byte('a' + i%26)
	}
	h := sha256.New()
	for n := size; n > 0; n -= len(chunk) {
		h.Write(chunk[:min(n, len(chunk))])
	}
	var sum [32]byte
	h.Sum(sum[:0])
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/octet-stream")
		for n := size; n > 0; n -= len(chunk) {
			if _, err := w.Write(chunk[:min(n, len(chunk))]); err != nil {
				return
			}
			w.(http.Flusher).Flush()
		}
	}, sum
}

// A large response streams through whole; one over MaxProxyResponseBytes is cut off.
func TestProxyLargeResponses(t *testing.T) {
	be := startBackend(t, false)
	ts := startServer(t, Config{APIs: []API{{ID: "big", Routes: []Route{proxyRoute("GET /big", "http://"+be.addr+"/big")}}}}, &fakeInvoker{})

	t.Run("5MB chunked", func(t *testing.T) {
		answer, sum := streamAnswer(5 << 20)
		be.answerWith(answer)
		resp, err := ts.client.Get(ts.base + "/big")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		h := sha256.New()
		n, err := io.Copy(h, resp.Body)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("%d, read %d bytes: %v", resp.StatusCode, n, err)
		}
		if n != 5<<20 || !bytes.Equal(h.Sum(nil), sum[:]) {
			t.Errorf("got %d bytes (sha256 %x), want %d (%x)", n, h.Sum(nil), 5<<20, sum)
		}
		if len(resp.TransferEncoding) == 0 || resp.TransferEncoding[0] != "chunked" {
			t.Errorf("Transfer-Encoding %v, want chunked: the gateway streams a body of unknown length", resp.TransferEncoding)
		}
	})

	over := func(t *testing.T, answer http.HandlerFunc, size int) {
		t.Helper()
		be.answerWith(answer)
		resp, err := ts.client.Get(ts.base + "/big")
		if err != nil {
			// Cut before the headers: as good as cut after.
			return
		}
		defer resp.Body.Close()
		n, err := io.Copy(io.Discard, resp.Body)
		if err == nil && n == int64(size) {
			t.Fatalf("the client got all %d bytes of a response over MaxProxyResponseBytes", n)
		}
		if n > MaxProxyResponseBytes {
			t.Errorf("the client got %d bytes, more than MaxProxyResponseBytes (%d)", n, MaxProxyResponseBytes)
		}
		if err == nil {
			t.Errorf("%d bytes and no error: a cut response must not look complete", n)
		}
	}
	t.Run("over the limit, chunked", func(t *testing.T) {
		size := MaxProxyResponseBytes + 1<<20
		answer, _ := streamAnswer(size)
		over(t, answer, size)
	})
	t.Run("over the limit, with Content-Length", func(t *testing.T) {
		size := MaxProxyResponseBytes + 1<<20
		body := bytes.Repeat([]byte("z"), size)
		over(t, func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Length", strconv.Itoa(size))
			w.Write(body)
		}, size)
	})
	t.Run("at the limit", func(t *testing.T) {
		answer, sum := streamAnswer(MaxProxyResponseBytes)
		be.answerWith(answer)
		r := ts.get(t, "/big")
		if got := sha256.Sum256([]byte(r.body)); r.status != 200 || got != sum {
			t.Errorf("%d, %d bytes; want all %d", r.status, len(r.body), MaxProxyResponseBytes)
		}
	})
}

// hangUpBackend accepts connections on 127.0.0.1, reads a request from each, writes the start of
// a status line and headers, and closes the connection.
func hangUpBackend(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			if _, err := http.ReadRequest(bufio.NewReader(c)); err == nil {
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Type: appl")
			}
			c.Close()
		}
	}()
	return ln.Addr().String()
}

// closedAddr returns an address of 127.0.0.1 on which nothing listens.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// Backends that fail are answered with API Gateway's errors, made by the gateway.
func TestProxyBackendErrors(t *testing.T) {
	slow := startBackend(t, false)
	slow.answerWith(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	})
	slowBody := startBackend(t, false)
	slowBody.answerWith(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "100")
		io.WriteString(w, "the start")
		w.(http.Flusher).Flush()
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	})
	// The timeout comes from the stack model, as a stack file sets it.
	timeout := spec.Duration(200 * time.Millisecond)
	routes := spec.Routes{
		{Key: "GET /refused", Integration: spec.Integration{Type: spec.IntegrationHTTPProxy, Target: "http://" + closedAddr(t) + "/x", Method: spec.MethodAny, Timeout: timeout}},
		{Key: "GET /slow", Integration: spec.Integration{Type: spec.IntegrationHTTPProxy, Target: "http://" + slow.addr + "/x", Method: spec.MethodAny, Timeout: timeout}},
		{Key: "GET /slow-body", Integration: spec.Integration{Type: spec.IntegrationHTTPProxy, Target: "http://" + slowBody.addr + "/x", Method: spec.MethodAny, Timeout: timeout}},
		{Key: "GET /hangup", Integration: spec.Integration{Type: spec.IntegrationHTTPProxy, Target: "http://" + hangUpBackend(t) + "/x", Method: spec.MethodAny, Timeout: timeout}},
		{Key: "GET /stagevar", Integration: spec.Integration{Type: spec.IntegrationHTTPProxy, Target: "http://${stageVariables.host}/x", Method: spec.MethodAny, Timeout: timeout}},
	}
	for i := range routes {
		routes[i].Authorization.Type = spec.AuthNone
	}
	api := FromSpec("", spec.API{Name: "errs", Type: spec.APITypeHTTP, Routes: routes,
		Stages: map[string]spec.Stage{"$default": {Name: "$default"}, "other": {Name: "other", Variables: map[string]string{"port": "1"}}}})
	ts := startServer(t, Config{APIs: []API{api}}, &fakeInvoker{})

	for _, c := range []struct {
		name, path string
		status     int
		message    string
	}{
		{"connection refused", "/refused", 502, "Bad Gateway"},
		{"slower than the route's timeout", "/slow", 504, "Gateway Timeout"},
		{"connection closed in the headers", "/hangup", 502, "Bad Gateway"},
		{"stage without the target's variable", "/stagevar", 500, "Internal Server Error"},
		{"named stage without the target's variable", "/other/stagevar", 500, "Internal Server Error"},
	} {
		t.Run(c.name, func(t *testing.T) {
			wantGatewayError(t, c.path, ts.get(t, c.path), c.status, c.message)
		})
	}
	if n := len(slow.requests()); n != 1 {
		t.Errorf("the slow backend received %d requests, want 1 (the gateway never retries)", n)
	}

	// Headers in time, the body not: the client has the status, and a body that is not complete.
	t.Run("body slower than the route's timeout", func(t *testing.T) {
		resp, err := ts.client.Get(ts.base + "/slow-body")
		if err != nil {
			return
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err == nil {
			t.Errorf("%d %q and no error: a body cut by the timeout must not look complete", resp.StatusCode, body)
		}
	})
}

// A target on one of the node's own control listeners is refused before any connection is made,
// by address or by a name that resolves to it.
func TestProxyProtectedAddrs(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	accepted := make(chan net.Conn, 16)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				close(accepted)
				return
			}
			accepted <- c
		}
	}()
	defer func() {
		ln.Close()
		for c := range accepted {
			c.Close()
		}
	}()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	api := API{ID: "p", Routes: []Route{
		proxyRoute("GET /addr", "http://"+ln.Addr().String()+"/admin"),
		proxyRoute("GET /localhost", "http://localhost:"+port+"/admin"),
		proxyRoute("GET /any", "http://0.0.0.0:"+port+"/admin"),
	}}
	ts := startServer(t, Config{APIs: []API{api}, ProtectedAddrs: []string{ln.Addr().String()}}, &fakeInvoker{})
	for _, p := range []string{"/addr", "/localhost", "/any"} {
		wantGatewayError(t, p, ts.get(t, p), 500, "Internal Server Error")
	}

	// A connection of the test's own, last: the listener accepts in order, so when it comes out,
	// any connection the gateway made would have come out before it.
	mine, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer mine.Close()
	select {
	case c := <-accepted:
		if c.RemoteAddr().String() != mine.LocalAddr().String() {
			t.Errorf("the protected listener accepted a connection from %s", c.RemoteAddr())
		}
		c.Close()
	case <-time.After(5 * time.Second):
		t.Fatal("the protected listener accepted nothing, not even the test's connection")
	}
}

// An https backend is checked against the CA file and server name of its integration.
func TestProxyTLS(t *testing.T) {
	be := startBackend(t, true)
	be.answerWith(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "secure "+r.URL.Path) })
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: be.srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	target := "https://" + be.addr + "/tls"
	withTLS := func(key string, tls *spec.IntegrationTLS) Route {
		return proxyRoute(key, target).with(func(in *spec.Integration) { in.TLS = tls })
	}
	api := API{ID: "tls", Routes: []Route{
		withTLS("GET /ca", &spec.IntegrationTLS{CAFile: caFile}),
		withTLS("GET /system", nil),
		withTLS("GET /mismatch", &spec.IntegrationTLS{CAFile: caFile, ServerName: "other.example"}),
		// The test certificate is for example.com too.
		withTLS("GET /named", &spec.IntegrationTLS{CAFile: caFile, ServerName: "example.com"}),
	}}
	ts := startServer(t, Config{APIs: []API{api}}, &fakeInvoker{})

	for _, p := range []string{"/ca", "/named"} {
		if r := ts.get(t, p); r.status != 200 || r.body != "secure /tls" {
			t.Errorf("%s: %v", p, r)
		}
	}
	if n := len(be.requests()); n != 2 {
		t.Errorf("the backend received %d requests, want 2", n)
	}
	be.answerWith(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "secure "+r.URL.Path) }) // forgets the requests so far
	for _, p := range []string{"/system", "/mismatch"} {
		wantGatewayError(t, p, ts.get(t, p), 502, "Bad Gateway")
	}
	if n := len(be.requests()); n != 0 {
		t.Errorf("the backend received %d requests over connections it should not have been trusted on", n)
	}
}

// Sequential requests to a backend reuse its connections, whether its responses have a length or
// are chunked, across the routes that name it and across a reload of the APIs.
func TestProxyConnectionReuse(t *testing.T) {
	be := startBackend(t, false)
	var n atomic.Int32
	be.answerWith(func(w http.ResponseWriter, _ *http.Request) {
		if n.Add(1)%2 == 0 {
			w.(http.Flusher).Flush() // chunked
		}
		io.WriteString(w, "pong")
	})
	apis := []API{{ID: "pool", Routes: []Route{
		proxyRoute("ANY /ping", "http://"+be.addr+"/ping"),
		proxyRoute("GET /other", "http://"+be.addr+"/other"),
	}}}
	ts := startServer(t, Config{APIs: apis}, &fakeInvoker{})
	for i := range 20 {
		if i == 10 {
			if err := ts.SetAPIs(apis); err != nil {
				t.Fatal(err)
			}
		}
		req := ts.request(t, "GET", "/other", "")
		switch i % 3 {
		case 0:
			req = ts.request(t, "POST", "/ping", "body")
		case 1:
			req = ts.request(t, "GET", "/ping", "")
		}
		if r := ts.do(t, req); r.status != 200 || r.body != "pong" {
			t.Fatalf("request %d: %v", i, r)
		}
	}
	if got := len(be.requests()); got != 20 {
		t.Errorf("the backend received %d requests, want 20", got)
	}
	if got := be.conns.Load(); got > 2 {
		t.Errorf("20 sequential requests opened %d connections to the backend, want at most 2", got)
	}
}

// rawRequest sends text as it is on a new connection to ts and reads the response.
func (ts *testServer) rawRequest(t *testing.T, text string) response {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(ts.base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, text); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: string(body)}
}

// The $default route joins the request's path to the target's as text: a path that starts with
// "//" does not name another host, and the target's own query string stays.
func TestProxyDefaultRoutePath(t *testing.T) {
	target := startBackend(t, false)
	other := startBackend(t, false)
	for _, c := range []struct{ target, requestTarget, want string }{
		{"http://" + target.addr, "//" + other.addr + "/steal", "//" + other.addr + "/steal"},
		{"http://" + target.addr + "/", "//" + other.addr + "/steal", "//" + other.addr + "/steal"},
		{"http://" + target.addr + "/base/", "//x//y", "/base//x//y"},
		{"http://" + target.addr + "/base?k=1", "/x/a%2Fb?c=2", "/base/x/a%2Fb?k=1&c=2"},
	} {
		target.answerWith(nil)
		other.answerWith(nil)
		ts := startServer(t, Config{APIs: []API{{ID: "d", Routes: []Route{proxyRoute("$default", c.target)}}}}, &fakeInvoker{})
		r := ts.rawRequest(t, "GET "+c.requestTarget+" HTTP/1.1\r\nHost: api.example.com\r\nConnection: close\r\n\r\n")
		if n := len(other.requests()); n != 0 {
			t.Errorf("target %s, %s: the request reached %s (%d requests)", c.target, c.requestTarget, other.addr, n)
		}
		seen := target.requests()
		if r.status != 200 || len(seen) != 1 || seen[0].requestURI != c.want {
			t.Errorf("target %s, %s: %v; the target received %+v, want %s", c.target, c.requestTarget, r, seen, c.want)
		}
	}
}

// A response mapping applies once: an append of a status's mapping adds one value.
func TestProxyResponseMappingOnce(t *testing.T) {
	be := startBackend(t, false)
	be.answerWith(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("X-Backend", "b1")
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"id":"i-1"}`)
	})
	route := proxyRoute("GET /m", "http://"+be.addr+"/m").with(func(in *spec.Integration) {
		in.ResponseParameters = map[string]map[string]string{"200": {
			"append:header.x-backend": "again-${response.header.x-backend}",
			"append:header.x-id":      "$response.body.id",
		}}
	})
	ts := startServer(t, Config{APIs: []API{{ID: "m", Routes: []Route{route}}}}, &fakeInvoker{})
	r := ts.get(t, "/m")
	if r.status != 200 || r.body != `{"id":"i-1"}` {
		t.Fatalf("%v", r)
	}
	if got, want := r.header.Values("X-Backend"), []string{"b1", "again-b1"}; !slices.Equal(got, want) {
		t.Errorf("X-Backend %q, want %q", got, want)
	}
	if got, want := r.header.Values("X-Id"), []string{"i-1"}; !slices.Equal(got, want) {
		t.Errorf("X-Id %q, want %q", got, want)
	}
}

// A HEAD request's response carries the backend's headers and no body.
func TestProxyHead(t *testing.T) {
	be := startBackend(t, false)
	be.answerWith(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Length", "1234")
		w.Header().Set("X-Kind", "head")
	})
	ts := startServer(t, Config{APIs: []API{{ID: "h", Routes: []Route{proxyRoute("ANY /h", "http://"+be.addr+"/h")}}}}, &fakeInvoker{})
	r := ts.do(t, ts.request(t, "HEAD", "/h", ""))
	if seen := be.requests(); len(seen) != 1 || seen[0].method != "HEAD" {
		t.Fatalf("the backend received %+v", seen)
	}
	if r.status != 200 || r.body != "" || r.header.Get("X-Kind") != "head" {
		t.Errorf("%v", r)
	}
}

// A request body the client sends chunked reaches the backend whole, with its length.
func TestProxyChunkedRequestBody(t *testing.T) {
	be := startBackend(t, false)
	ts := startServer(t, Config{APIs: []API{{ID: "c", Routes: []Route{proxyRoute("POST /up", "http://"+be.addr+"/up")}}}}, &fakeInvoker{})
	pr, pw := io.Pipe()
	go func() {
		pw.Write([]byte("part one, "))
		pw.Write([]byte("part two"))
		pw.Close()
	}()
	req, err := http.NewRequest("POST", ts.base+"/up", pr)
	if err != nil {
		t.Fatal(err)
	}
	r := ts.do(t, req)
	seen := be.requests()
	if r.status != 200 || len(seen) != 1 {
		t.Fatalf("%v; the backend received %d requests", r, len(seen))
	}
	if got := seen[0]; string(got.body) != "part one, part two" || got.header.Get("Content-Length") != "18" || len(got.transferEncoding) != 0 {
		t.Errorf("the backend received %q, Content-Length %q, Transfer-Encoding %v", got.body, got.header.Get("Content-Length"), got.transferEncoding)
	}
}

// A $default route's request path cannot climb above the target's path with dot segments, written
// plainly or percent-encoded.
func TestResolveDots(t *testing.T) {
	for in, want := range map[string]string{
		"/a/b":            "/a/b",
		"/a/b/":           "/a/b/",
		"/a/../../admin":  "/admin",
		"/%2e%2e/admin":   "/admin",
		"/a/./b/":         "/a/b/",
		"/a%20b/../c":     "/c",
		"/x/%2E%2E/%2e./": "/",
	} {
		if got := resolveDots(in); got != want {
			t.Errorf("resolveDots(%q) = %q, want %q", in, got, want)
		}
	}
}

// A greedy parameter reaches the backend as written, but cannot climb above the target's path.
func TestRawGreedyParam(t *testing.T) {
	p, err := compileProxy("ANY /files/{proxy+}", spec.Integration{Type: spec.IntegrationHTTPProxy, Target: "http://b/store/{proxy}", Method: spec.MethodAny})
	if err != nil {
		t.Fatal(err)
	}
	for rest, want := range map[string]string{
		"/files/a%2Bb/c":        "a%2Bb/c",
		"/files/a/../../../etc": "etc",
		"/files/%2e%2e/x":       "x",
	} {
		if got := p.rawParam(&routeRequest{rest: rest, params: map[string]string{"proxy": "decoded"}}, "proxy"); got != want {
			t.Errorf("%s: proxy = %q, want %q", rest, got, want)
		}
	}
}
