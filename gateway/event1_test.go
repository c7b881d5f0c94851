package gateway

import (
	"bytes"
	"encoding/json"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/gofiber/fiber/v2"
	"github.com/valyala/fasthttp"
)

// eventV1Time and eventV1RequestID are the arrival time and request id of the events the
// golden tests build, so that the archives hold them as they are.
var eventV1Time = time.Date(2020, 3, 12, 19, 3, 58, 390e6, time.UTC)

const eventV1RequestID = "Mc7UVioPPHcEKPA="

// eventV1Server is a Fiber app on a real listener of 127.0.0.1 whose only handler builds a
// payload 1.0 event of each request with the context the test set, and keeps it.
type eventV1Server struct {
	base, port string
	client     *http.Client

	mu    sync.Mutex
	ec    EventV1Context // DomainName "" means the request's host without port
	event []byte
	err   error
}

// startEventV1Server serves until the test ends, then shuts down and checks that the
// listener's goroutine returned cleanly.
func startEventV1Server(t *testing.T) *eventV1Server {
	t.Helper()
	s := &eventV1Server{}
	app := fiber.New(fiber.Config{DisableStartupMessage: true})
	app.Use(func(c *fiber.Ctx) error {
		s.mu.Lock()
		defer s.mu.Unlock()
		ec := s.ec
		if ec.DomainName == "" {
			ec.DomainName = c.Hostname()
			if h, _, err := net.SplitHostPort(ec.DomainName); err == nil {
				ec.DomainName = h
			}
		}
		s.event, s.err = BuildEventV1(c, ec)
		return c.SendStatus(fiber.StatusNoContent)
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- app.Listener(ln) }()
	tr := &http.Transport{DisableCompression: true}
	t.Cleanup(func() {
		tr.CloseIdleConnections()
		if err := app.ShutdownWithTimeout(10 * time.Second); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		if err := <-served; err != nil {
			t.Errorf("Listener: %v", err)
		}
	})
	_, s.port, _ = net.SplitHostPort(ln.Addr().String())
	s.base = "http://" + ln.Addr().String()
	s.client = &http.Client{Transport: tr}
	return s
}

// send sends req with the event context ec and returns the event built for it.
func (s *eventV1Server) send(t *testing.T, req *http.Request, ec EventV1Context) []byte {
	t.Helper()
	s.mu.Lock()
	s.ec, s.event, s.err = ec, nil, nil
	s.mu.Unlock()
	resp, err := s.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != fiber.StatusNoContent {
		t.Fatalf("status %d", resp.StatusCode)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		t.Fatalf("BuildEventV1: %v", s.err)
	}
	return s.event
}

// request makes a request for target on s with headers given as name, value pairs.
func (s *eventV1Server) request(t *testing.T, method, target, body string, headers ...string) *http.Request {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, s.base+target, r)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Add(headers[i], headers[i+1])
	}
	return req
}

// goldenV1Context is the context.json of a golden archive: the EventV1Context fields that
// vary between archives.
type goldenV1Context struct {
	RouteKey       string                                                      `json:"routeKey"`
	Resource       string                                                      `json:"resource"`
	Stage          string                                                      `json:"stage"`
	StageVariables map[string]string                                           `json:"stageVariables"`
	PathParameters map[string]string                                           `json:"pathParameters"`
	Authorizer     *events.APIGatewayV2HTTPRequestContextAuthorizerDescription `json:"authorizer"`
	REST           bool                                                        `json:"rest"`
	ResourceID     string                                                      `json:"resourceId"`
}

func (g goldenV1Context) eventContext() EventV1Context {
	return EventV1Context{
		EventContext: EventContext{
			RouteKey:       g.RouteKey,
			Stage:          g.Stage,
			StageVariables: g.StageVariables,
			PathParameters: g.PathParameters,
			RequestID:      eventV1RequestID,
			Time:           eventV1Time,
			APIID:          "a1b2c3d4e5",
			Authorizer:     g.Authorizer,
		},
		Resource:   g.Resource,
		REST:       g.REST,
		ResourceID: g.ResourceID,
	}
}

// eventV1GoldenChecks holds, for each archive of testdata/event1, checks of the event as a
// Lambda handler written for payload 1.0 sees it: decoded into aws-lambda-go's
// events.APIGatewayProxyRequest.
var eventV1GoldenChecks = map[string]func(t *testing.T, ev events.APIGatewayProxyRequest){
	"get-repeated": func(t *testing.T, ev events.APIGatewayProxyRequest) {
		wantString(t, "httpMethod", ev.HTTPMethod, "GET")
		wantString(t, "resource", ev.Resource, "/hello")
		wantString(t, "path", ev.Path, "/hello")
		wantSlice(t, "multiValueQueryStringParameters[a]", ev.MultiValueQueryStringParameters["a"], []string{"1", "2"})
		wantMap(t, "queryStringParameters", ev.QueryStringParameters, map[string]string{
			"a": "2", "b": "x y", "c": "d e", "flag": "", "e": "%zz",
		})
		wantSlice(t, "multiValueHeaders[x-foo]", ev.MultiValueHeaders["x-foo"], []string{"v1", "v2"})
		wantString(t, "headers[x-foo]", ev.Headers["x-foo"], "v2")
		wantSlice(t, "multiValueHeaders[cookie]", ev.MultiValueHeaders["cookie"], []string{"a=1; b=2", `q="x y"`})
		wantString(t, "headers[cookie]", ev.Headers["cookie"], `q="x y"`)
		wantString(t, "headers[x-mixed-case]", ev.Headers["x-mixed-case"], "Value Kept")
		wantSlice(t, "multiValueHeaders[x-forwarded-for]", ev.MultiValueHeaders["x-forwarded-for"], []string{"198.51.100.1, 127.0.0.1"})
		wantString(t, "headers[x-forwarded-proto]", ev.Headers["x-forwarded-proto"], "http")
		if ev.PathParameters != nil || ev.StageVariables != nil || ev.RequestContext.Authorizer != nil {
			t.Errorf("pathParameters %v, stageVariables %v, authorizer %v; want all nil",
				ev.PathParameters, ev.StageVariables, ev.RequestContext.Authorizer)
		}
		rc := ev.RequestContext
		wantString(t, "requestContext.requestId", rc.RequestID, eventV1RequestID)
		wantString(t, "requestContext.extendedRequestId", rc.ExtendedRequestID, eventV1RequestID)
		wantString(t, "requestContext.resourceId", rc.ResourceID, "GET /hello")
		wantString(t, "requestContext.resourcePath", rc.ResourcePath, "/hello")
		wantString(t, "requestContext.requestTime", rc.RequestTime, "12/Mar/2020:19:03:58 +0000")
		if rc.RequestTimeEpoch != eventV1Time.UnixMilli() {
			t.Errorf("requestTimeEpoch %d, want %d", rc.RequestTimeEpoch, eventV1Time.UnixMilli())
		}
		wantString(t, "identity.sourceIp", rc.Identity.SourceIP, "127.0.0.1")
		wantString(t, "identity.userAgent", rc.Identity.UserAgent, "golden-test/1.0")
		wantString(t, "accountId", rc.AccountID, eventAccountID)
		wantString(t, "domainPrefix", rc.DomainPrefix, "api")
	},
	"post-json": func(t *testing.T, ev events.APIGatewayProxyRequest) {
		wantString(t, "body", ev.Body, `{"name":"rex","tags":["<good>","dog & friend"]}`)
		wantBool(t, "isBase64Encoded", ev.IsBase64Encoded, false)
		if ev.QueryStringParameters != nil || ev.MultiValueQueryStringParameters != nil {
			t.Errorf("query maps %v, %v; want nil", ev.QueryStringParameters, ev.MultiValueQueryStringParameters)
		}
	},
	"body-binary": func(t *testing.T, ev events.APIGatewayProxyRequest) {
		wantBool(t, "isBase64Encoded", ev.IsBase64Encoded, true)
		wantString(t, "body", ev.Body, "AP8QYYD+Cg==")
		wantString(t, "headers[content-type]", ev.Headers["content-type"], "application/octet-stream")
	},
	"path-parameter": func(t *testing.T, ev events.APIGatewayProxyRequest) {
		wantString(t, "path", ev.Path, "/items/a%20b")
		wantString(t, "resource", ev.Resource, "/items/{id}")
		wantMap(t, "pathParameters", ev.PathParameters, map[string]string{"id": "a b"})
	},
	"greedy-parameter": func(t *testing.T, ev events.APIGatewayProxyRequest) {
		wantString(t, "resource", ev.Resource, "/pets/{proxy+}")
		wantMap(t, "pathParameters", ev.PathParameters, map[string]string{"proxy": "cat/1"})
	},
	"default-route": func(t *testing.T, ev events.APIGatewayProxyRequest) {
		wantString(t, "resource", ev.Resource, "$default")
		wantString(t, "requestContext.resourcePath", ev.RequestContext.ResourcePath, "$default")
		wantString(t, "requestContext.resourceId", ev.RequestContext.ResourceID, "$default")
		wantString(t, "path", ev.Path, "/nowhere/at/all")
		wantString(t, "httpMethod", ev.HTTPMethod, "DELETE")
	},
	"stage-variables": func(t *testing.T, ev events.APIGatewayProxyRequest) {
		wantString(t, "path", ev.Path, "/dev/items/9")
		wantString(t, "requestContext.path", ev.RequestContext.Path, "/dev/items/9")
		wantString(t, "requestContext.stage", ev.RequestContext.Stage, "dev")
		wantMap(t, "stageVariables", ev.StageVariables, map[string]string{"env": "dev", "table": "pets-dev"})
	},
	"authorizer-jwt": func(t *testing.T, ev events.APIGatewayProxyRequest) {
		claims, _ := ev.RequestContext.Authorizer["claims"].(map[string]any)
		if claims["sub"] != "user-1" || claims["exp"] != "1700000000" || claims["groups"] != "[admin poweruser]" {
			t.Errorf("authorizer.claims %v", claims)
		}
		if scopes, _ := ev.RequestContext.Authorizer["scopes"].([]any); len(scopes) != 1 || scopes[0] != "read" {
			t.Errorf("authorizer.scopes %v, want [read]", ev.RequestContext.Authorizer["scopes"])
		}
	},
	"authorizer-function": func(t *testing.T, ev events.APIGatewayProxyRequest) {
		lambda, _ := ev.RequestContext.Authorizer["lambda"].(map[string]any)
		if lambda["user"] != "u-1" || lambda["level"] != 3.0 || lambda["admin"] != true {
			t.Errorf("authorizer.lambda %v", lambda)
		}
		if len(ev.RequestContext.Authorizer) != 1 {
			t.Errorf("authorizer %v, want only lambda", ev.RequestContext.Authorizer)
		}
	},
	"authorizer-iam": func(t *testing.T, ev events.APIGatewayProxyRequest) {
		id := ev.RequestContext.Identity
		wantString(t, "identity.accessKey", id.AccessKey, "AKIAIOSFODNN7EXAMPLE")
		wantString(t, "identity.accountId", id.AccountID, "111122223333")
		wantString(t, "identity.caller", id.Caller, "AIDACKCEVSQ6C2EXAMPLE")
		wantString(t, "identity.user", id.User, "AIDACKCEVSQ6C2EXAMPLE")
		wantString(t, "identity.userArn", id.UserArn, "arn:aws:iam::111122223333:user/alice")
		wantString(t, "identity.sourceIp", id.SourceIP, "127.0.0.1")
		if ev.RequestContext.Authorizer != nil {
			t.Errorf("authorizer %v, want nil", ev.RequestContext.Authorizer)
		}
	},
	"rest-function-authorizer": func(t *testing.T, ev events.APIGatewayProxyRequest) {
		wantString(t, "path", ev.Path, "/pets/7")
		wantString(t, "requestContext.path", ev.RequestContext.Path, "/prod/pets/7")
		wantString(t, "requestContext.resourceId", ev.RequestContext.ResourceID, "roq9wj")
		wantString(t, "requestContext.resourcePath", ev.RequestContext.ResourcePath, "/pets/{id}")
		wantString(t, "headers[X-Trace]", ev.Headers["X-Trace"], "t1")
		wantString(t, "headers[Cookie]", ev.Headers["Cookie"], "a=1")
		wantSlice(t, "multiValueHeaders[X-Forwarded-For]", ev.MultiValueHeaders["X-Forwarded-For"], []string{"198.51.100.1, 127.0.0.1"})
		wantSlice(t, "multiValueQueryStringParameters[a]", ev.MultiValueQueryStringParameters["a"], []string{"1", "2"})
		wantString(t, "queryStringParameters[a]", ev.QueryStringParameters["a"], "2")
		a := ev.RequestContext.Authorizer
		if a["principalId"] != "user-1" || a["tier"] != "gold" || len(a) != 2 {
			t.Errorf("authorizer %v, want the context's keys only", a)
		}
	},
}

// TestBuildEventV1Golden builds the event of each testdata/event1/*.txtar archive, which
// holds:
//
//   - context.json: the EventV1Context fields that vary (see goldenV1Context); the request id
//     is always eventV1RequestID, the time eventV1Time, the API a1b2c3d4e5 and the domain the
//     request's host.
//   - request and request-body.base64: the request, as TestGolden reads them.
//   - event (written by -update): the event, re-encoded indented with sorted keys, the
//     listener's port in x-forwarded-port (checked) written as PORT.
//
// Each event must also decode into events.APIGatewayProxyRequest and pass the archive's
// entry in eventV1GoldenChecks.
//
// go test ./gateway -run TestBuildEventV1Golden -update rewrites the events.
func TestBuildEventV1Golden(t *testing.T) {
	names, err := filepath.Glob("testdata/event1/*.txtar")
	if err != nil {
		t.Fatal(err)
	}
	if len(names) == 0 {
		t.Fatal("no golden files")
	}
	s := startEventV1Server(t)
	seen := make(map[string]bool)
	for _, name := range names {
		base := strings.TrimSuffix(filepath.Base(name), ".txtar")
		seen[base] = true
		t.Run(base, func(t *testing.T) {
			data, err := os.ReadFile(name)
			if err != nil {
				t.Fatal(err)
			}
			a := parseArchive(data)
			ctxJSON, ok := a.get("context.json")
			if !ok {
				t.Fatal("no context.json")
			}
			var gc goldenV1Context
			if err := json.Unmarshal(ctxJSON, &gc); err != nil {
				t.Fatalf("context.json: %v", err)
			}
			raw := s.send(t, goldenRequest(t, a, s.base), gc.eventContext())

			var ev events.APIGatewayProxyRequest
			if err := json.Unmarshal(raw, &ev); err != nil {
				t.Fatalf("event does not decode into events.APIGatewayProxyRequest: %v\n%s", err, raw)
			}
			if check := eventV1GoldenChecks[base]; check != nil {
				check(t, ev)
			} else {
				t.Errorf("no entry in eventV1GoldenChecks")
			}

			got := normaliseEventV1(t, raw, s.port)
			if *update {
				a.set("event", got)
				if err := os.WriteFile(name, formatArchive(a), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			if want, _ := a.get("event"); !bytes.Equal(got, want) {
				t.Errorf("event differs:\n--- got\n%s--- want\n%s", got, want)
			}
		})
	}
	for name := range eventV1GoldenChecks {
		if !seen[name] {
			t.Errorf("eventV1GoldenChecks[%q] has no archive", name)
		}
	}
}

// normaliseEventV1 re-encodes an event indented with sorted keys, writing the listener's port
// in x-forwarded-port (headers and multiValueHeaders, any spelling) as PORT.
func normaliseEventV1(t *testing.T, payload []byte, port string) []byte {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.UseNumber()
	var ev map[string]any
	if err := dec.Decode(&ev); err != nil {
		t.Fatalf("event %s: %v", payload, err)
	}
	for _, field := range []string{"headers", "multiValueHeaders"} {
		h, _ := ev[field].(map[string]any)
		for k, v := range h {
			if !strings.EqualFold(k, "x-forwarded-port") {
				continue
			}
			want, placeholder := any(port), any("PORT")
			if field == "multiValueHeaders" {
				want, placeholder = []any{port}, []any{"PORT"}
			}
			if got, _ := json.Marshal(v); !bytes.Equal(got, mustJSON(t, want)) {
				t.Errorf("%s[%s] = %s, want %s", field, k, got, mustJSON(t, want))
			}
			h[k] = placeholder
		}
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(ev); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestBuildEventV1 covers rules the golden archives do not show.
func TestBuildEventV1(t *testing.T) {
	s := startEventV1Server(t)
	base := EventV1Context{EventContext: EventContext{RouteKey: "ANY /{proxy+}", Stage: DefaultStage}, Resource: "/{proxy+}"}
	tests := []struct {
		name  string
		req   func() *http.Request
		ec    func(ec EventV1Context) EventV1Context
		check func(t *testing.T, raw []byte, ev events.APIGatewayProxyRequest)
	}{
		{
			name: "empty body is null and isBase64Encoded false is present",
			req: func() *http.Request {
				return s.request(t, "POST", "/x", "", "Content-Type", "application/octet-stream")
			},
			check: func(t *testing.T, raw []byte, ev events.APIGatewayProxyRequest) {
				top := rawKeys(t, raw)
				wantString(t, "body", string(top["body"]), "null")
				wantString(t, "isBase64Encoded", string(top["isBase64Encoded"]), "false")
				wantString(t, "version", string(top["version"]), `"1.0"`)
			},
		},
		{
			name: "no HTML escaping",
			req: func() *http.Request {
				return s.request(t, "POST", "/x?q=%3Cb%3E", `{"a":"<b>&"}`, "Content-Type", "application/json")
			},
			check: func(t *testing.T, raw []byte, ev events.APIGatewayProxyRequest) {
				if !bytes.Contains(raw, []byte(`"body":"{\"a\":\"<b>&\"}"`)) || !bytes.Contains(raw, []byte(`"q":"<b>"`)) {
					t.Errorf("event escapes HTML: %s", raw)
				}
			},
		},
		{
			name: "text types are plain, others base64",
			req: func() *http.Request {
				return s.request(t, "POST", "/x", "a=1&b=2", "Content-Type", "application/x-www-form-urlencoded")
			},
			check: func(t *testing.T, raw []byte, ev events.APIGatewayProxyRequest) {
				wantBool(t, "isBase64Encoded", ev.IsBase64Encoded, true)
				wantString(t, "body", ev.Body, "YT0xJmI9Mg==")
			},
		},
		{
			name: "invalid utf-8 text is base64",
			req:  func() *http.Request { return s.request(t, "POST", "/x", "a\xffb", "Content-Type", "text/plain") },
			check: func(t *testing.T, raw []byte, ev events.APIGatewayProxyRequest) {
				wantBool(t, "isBase64Encoded", ev.IsBase64Encoded, true)
			},
		},
		{
			name: "identity fields are null, not omitted",
			req:  func() *http.Request { return s.request(t, "GET", "/x", "") },
			check: func(t *testing.T, raw []byte, ev events.APIGatewayProxyRequest) {
				id := rawKeys(t, rawKeys(t, rawKeys(t, raw)["requestContext"])["identity"])
				for _, k := range []string{"accessKey", "accountId", "caller", "user", "userArn", "cognitoIdentityId", "principalOrgId"} {
					wantString(t, "identity."+k, string(id[k]), "null")
				}
				wantString(t, "authorizer", string(rawKeys(t, rawKeys(t, raw)["requestContext"])["authorizer"]), "null")
			},
		},
		{
			name: "REST stage root path is /",
			req:  func() *http.Request { return s.request(t, "GET", "/prod", "") },
			ec: func(ec EventV1Context) EventV1Context {
				ec.REST, ec.Stage, ec.Resource = true, "prod", "/"
				return ec
			},
			check: func(t *testing.T, raw []byte, ev events.APIGatewayProxyRequest) {
				wantString(t, "path", ev.Path, "/")
				wantString(t, "requestContext.path", ev.RequestContext.Path, "/prod")
				if _, ok := rawKeys(t, raw)["version"]; ok {
					t.Error("REST event has a version")
				}
			},
		},
		{
			name: "REST names keep the server's spelling",
			req: func() *http.Request {
				return s.request(t, "GET", "/x", "", "X-Forwarded-Proto", "gopher", "X-Forwarded-Port", "1", "User-Agent", "ua/1")
			},
			ec: func(ec EventV1Context) EventV1Context { ec.REST = true; return ec },
			check: func(t *testing.T, raw []byte, ev events.APIGatewayProxyRequest) {
				wantString(t, "headers[X-Forwarded-Proto]", ev.Headers["X-Forwarded-Proto"], "http")
				wantString(t, "headers[X-Forwarded-Port]", ev.Headers["X-Forwarded-Port"], s.port)
				wantString(t, "headers[User-Agent]", ev.Headers["User-Agent"], "ua/1")
				wantString(t, "headers[Host]", ev.Headers["Host"], strings.TrimPrefix(s.base, "http://"))
				for k := range ev.Headers {
					if k == strings.ToLower(k) {
						t.Errorf("header %q is lower-case", k)
					}
				}
			},
		},
		{
			name: "HTTP API names are lower-case, client x-forwarded values replaced",
			req: func() *http.Request {
				return s.request(t, "GET", "/x", "", "X-Forwarded-Proto", "gopher", "X-Forwarded-Port", "1",
					"X-Forwarded-For", "192.0.2.1", "X-Forwarded-For", "192.0.2.2")
			},
			check: func(t *testing.T, raw []byte, ev events.APIGatewayProxyRequest) {
				wantSlice(t, "x-forwarded-proto", ev.MultiValueHeaders["x-forwarded-proto"], []string{"http"})
				wantSlice(t, "x-forwarded-port", ev.MultiValueHeaders["x-forwarded-port"], []string{s.port})
				wantSlice(t, "x-forwarded-for", ev.MultiValueHeaders["x-forwarded-for"], []string{"192.0.2.1,192.0.2.2, 127.0.0.1"})
				for k := range ev.MultiValueHeaders {
					if k != strings.ToLower(k) {
						t.Errorf("header %q is not lower-case", k)
					}
				}
			},
		},
		{
			name: "source IP from the context",
			req:  func() *http.Request { return s.request(t, "GET", "/x", "") },
			ec: func(ec EventV1Context) EventV1Context {
				ec.SourceIP, ec.AccountID = "203.0.113.9", "123456789012"
				return ec
			},
			check: func(t *testing.T, raw []byte, ev events.APIGatewayProxyRequest) {
				wantString(t, "identity.sourceIp", ev.RequestContext.Identity.SourceIP, "203.0.113.9")
				wantString(t, "x-forwarded-for", ev.Headers["x-forwarded-for"], "203.0.113.9")
				wantString(t, "accountId", ev.RequestContext.AccountID, "123456789012")
			},
		},
		{
			name: "JWT without scopes has null scopes",
			req:  func() *http.Request { return s.request(t, "GET", "/x", "") },
			ec: func(ec EventV1Context) EventV1Context {
				ec.Authorizer = &events.APIGatewayV2HTTPRequestContextAuthorizerDescription{
					JWT: &events.APIGatewayV2HTTPRequestContextAuthorizerJWTDescription{Claims: map[string]string{"sub": "x"}},
				}
				return ec
			},
			check: func(t *testing.T, raw []byte, ev events.APIGatewayProxyRequest) {
				a := rawKeys(t, rawKeys(t, rawKeys(t, raw)["requestContext"])["authorizer"])
				wantString(t, "authorizer.scopes", string(a["scopes"]), "null")
				wantString(t, "authorizer.claims", string(a["claims"]), `{"sub":"x"}`)
			},
		},
		{
			name: "empty authorizer description is null",
			req:  func() *http.Request { return s.request(t, "GET", "/x", "") },
			ec: func(ec EventV1Context) EventV1Context {
				ec.Authorizer = &events.APIGatewayV2HTTPRequestContextAuthorizerDescription{}
				return ec
			},
			check: func(t *testing.T, raw []byte, ev events.APIGatewayProxyRequest) {
				if ev.RequestContext.Authorizer != nil {
					t.Errorf("authorizer %v, want null", ev.RequestContext.Authorizer)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ec := base
			if tt.ec != nil {
				ec = tt.ec(ec)
			}
			raw := s.send(t, tt.req(), ec)
			var ev events.APIGatewayProxyRequest
			if err := json.Unmarshal(raw, &ev); err != nil {
				t.Fatalf("event %s: %v", raw, err)
			}
			tt.check(t, raw, ev)
		})
	}
}

// TestBuildEventV1OutlivesRequest checks that an event does not share the request's buffers:
// the next request on the same connection reuses them.
func TestBuildEventV1OutlivesRequest(t *testing.T) {
	s := startEventV1Server(t)
	ec := EventV1Context{EventContext: EventContext{RouteKey: "$default", Stage: DefaultStage}, Resource: "$default"}
	first := s.send(t, s.request(t, "POST", "/first?q=1", `{"a":1}`, "Content-Type", "application/json", "Cookie", "a=1"), ec)
	kept := bytes.Clone(first)
	for range 3 {
		s.send(t, s.request(t, "PUT", "/second/longer/path?q=zzzzzzz", `{"b":"xxxxxxxxxxxxxxxx"}`, "Content-Type", "application/json", "Cookie", "b=2222222"), ec)
	}
	if !bytes.Equal(first, kept) {
		t.Errorf("event changed after later requests:\n%s\nwas\n%s", first, kept)
	}
}

// TestBuildEventV1InMemory builds an event of a request that was not parsed from the wire:
// no raw headers, no listener.
func TestBuildEventV1InMemory(t *testing.T) {
	app := fiber.New()
	fctx := &fasthttp.RequestCtx{}
	fctx.Request.Header.SetMethod("GET")
	fctx.Request.SetRequestURI("/x?a=1&a=2")
	fctx.Request.Header.Set("Cookie", "a=1; b=2")
	fctx.Request.Header.Add("X-Foo", "1")
	fctx.Request.Header.Add("X-Foo", "2")
	c := app.AcquireCtx(fctx)
	defer app.ReleaseCtx(c)
	before := time.Now()
	raw, err := BuildEventV1(c, EventV1Context{EventContext: EventContext{RouteKey: "$default", DomainName: "127.0.0.1"}, Resource: "$default"})
	if err != nil {
		t.Fatal(err)
	}
	var ev events.APIGatewayProxyRequest
	if err := json.Unmarshal(raw, &ev); err != nil {
		t.Fatalf("event %s: %v", raw, err)
	}
	wantSlice(t, "multiValueHeaders[cookie]", ev.MultiValueHeaders["cookie"], []string{"a=1; b=2"})
	wantSlice(t, "multiValueHeaders[x-foo]", ev.MultiValueHeaders["x-foo"], []string{"1", "2"})
	wantSlice(t, "multiValueQueryStringParameters[a]", ev.MultiValueQueryStringParameters["a"], []string{"1", "2"})
	wantString(t, "sourceIp", ev.RequestContext.Identity.SourceIP, "0.0.0.0")
	wantString(t, "domainPrefix", ev.RequestContext.DomainPrefix, "127.0.0.1")
	if _, ok := ev.Headers["x-forwarded-port"]; ok {
		t.Errorf("x-forwarded-port %q without a listening port", ev.Headers["x-forwarded-port"])
	}
	rc := ev.RequestContext
	if d := rc.RequestTimeEpoch - before.UnixMilli(); d < 0 || d > 5000 {
		t.Errorf("requestTimeEpoch %d is not now (%d)", rc.RequestTimeEpoch, before.UnixMilli())
	}
	if at, err := time.Parse(eventTimeLayout, rc.RequestTime); err != nil || at.Unix() != rc.RequestTimeEpoch/1000 ||
		!strings.HasSuffix(rc.RequestTime, " +0000") {
		t.Errorf("requestTime %q and requestTimeEpoch %d disagree or are not UTC (%v)", rc.RequestTime, rc.RequestTimeEpoch, err)
	}
}

// TestBuildEventV1AppTest builds an event through app.Test, whose connection has no port.
func TestBuildEventV1AppTest(t *testing.T) {
	app := fiber.New()
	var raw []byte
	app.Get("/*", func(c *fiber.Ctx) error {
		var err error
		raw, err = BuildEventV1(c, EventV1Context{EventContext: EventContext{RouteKey: "GET /{proxy+}"}, Resource: "/{proxy+}"})
		if err != nil {
			return err
		}
		return c.SendStatus(fiber.StatusNoContent)
	})
	req := httptest.NewRequest("GET", "/a/b?x=1", nil)
	req.Header["X-Lower"] = []string{"v"}
	resp, err := app.Test(req, -1)
	if err != nil || resp.StatusCode != fiber.StatusNoContent {
		t.Fatalf("status %v, %v", resp, err)
	}
	var ev events.APIGatewayProxyRequest
	if err := json.Unmarshal(raw, &ev); err != nil {
		t.Fatalf("event %s: %v", raw, err)
	}
	wantString(t, "path", ev.Path, "/a/b")
	wantString(t, "headers[x-lower]", ev.Headers["x-lower"], "v")
	wantString(t, "headers[x-forwarded-proto]", ev.Headers["x-forwarded-proto"], "http")
}

func TestEventV1StripStage(t *testing.T) {
	tests := []struct{ path, stage, want string }{
		{"/prod/pets", "prod", "/pets"},
		{"/prod", "prod", "/"},
		{"/prod/", "prod", "/"},
		{"/products", "prod", "/products"},
		{"/pets", "prod", "/pets"},
		{"/$default/x", DefaultStage, "/$default/x"},
		{"/x", "", "/x"},
		{"/api/prod/x", "prod", "/api/prod/x"},
	}
	for _, tt := range tests {
		if got := stripStage(tt.path, tt.stage); got != tt.want {
			t.Errorf("stripStage(%q, %q) = %q, want %q", tt.path, tt.stage, got, tt.want)
		}
	}
}

func TestEventV1QueryParameters(t *testing.T) {
	last, multi := eventV1QueryParameters("a=1&a=2&b=x%20y&c=d+e&flag&=novalue&&e=%zz&a=")
	wantMap(t, "last", last, map[string]string{"a": "", "b": "x y", "c": "d e", "flag": "", "e": "%zz"})
	wantSlice(t, "multi[a]", multi["a"], []string{"1", "2", ""})
	wantSlice(t, "multi[flag]", multi["flag"], []string{""})
	if last, multi := eventV1QueryParameters("&&=x"); last != nil || multi != nil {
		t.Errorf("only empty keys: %v, %v; want nil", last, multi)
	}
}

func FuzzEventV1QueryParameters(f *testing.F) {
	for _, s := range []string{"", "a=1&a=2", "b=x%20y&c=d+e", "flag&=v&&", "e=%zz", "%3D=%26", "a==b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, rawQuery string) {
		last, multi := eventV1QueryParameters(rawQuery)
		if (last == nil) != (multi == nil) || len(last) != len(multi) {
			t.Fatalf("maps disagree: %v, %v", last, multi)
		}
		if last != nil && len(last) == 0 {
			t.Fatal("empty non-nil map")
		}
		// The 2.0 rule joins the same values with ",".
		joined := eventQueryParameters(rawQuery)
		for k, vs := range multi {
			if len(vs) == 0 || last[k] != vs[len(vs)-1] {
				t.Fatalf("key %q: last %q, all %q", k, last[k], vs)
			}
			if joined[k] != strings.Join(vs, ",") {
				t.Fatalf("key %q: 2.0 has %q, 1.0 %q", k, joined[k], vs)
			}
		}
		if !slices.Equal(slices.Sorted(maps.Keys(joined)), slices.Sorted(maps.Keys(last))) {
			t.Fatalf("keys differ from 2.0: %v, %v", joined, last)
		}
	})
}

// rawKeys decodes a JSON object into its keys' raw values.
func rawKeys(t *testing.T, raw []byte) map[string]json.RawMessage {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("%s: %v", raw, err)
	}
	return m
}

// A mutual TLS request's client certificate reaches 1.0 events in requestContext.identity.clientCert,
// as API Gateway puts it there.
func TestBuildEventV1ClientCert(t *testing.T) {
	s := startEventV1Server(t)
	auth := &events.APIGatewayV2HTTPRequestContextAuthentication{ClientCert: events.APIGatewayV2HTTPRequestContextAuthenticationClientCert{
		ClientCertPem: "-----BEGIN CERTIFICATE-----\n", SubjectDN: "CN=client", IssuerDN: "CN=ca", SerialNumber: "7",
		Validity: events.APIGatewayV2HTTPRequestContextAuthenticationClientCertValidity{NotBefore: "Jan  1 00:00:00 2026 GMT", NotAfter: "Jan  1 00:00:00 2027 GMT"}}}
	for _, rest := range []bool{false, true} {
		payload := s.send(t, s.request(t, "GET", "/x", ""), EventV1Context{EventContext: EventContext{RouteKey: "GET /x", Stage: "$default", Authentication: auth}, Resource: "/x", REST: rest})
		var ev events.APIGatewayProxyRequest
		if err := json.Unmarshal(payload, &ev); err != nil {
			t.Fatal(err)
		}
		cc := ev.RequestContext.Identity.ClientCert
		if cc == nil || cc.SubjectDN != "CN=client" || cc.SerialNumber != "7" || cc.Validity.NotAfter != "Jan  1 00:00:00 2027 GMT" {
			t.Errorf("REST %v: identity.clientCert = %+v", rest, cc)
		}
	}
	// Without one, no clientCert key.
	payload := s.send(t, s.request(t, "GET", "/x", ""), EventV1Context{EventContext: EventContext{RouteKey: "GET /x", Stage: "$default"}, Resource: "/x"})
	if strings.Contains(string(payload), "clientCert") {
		t.Errorf("an event without a client certificate: %s", payload)
	}
}
