package gateway

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"maps"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/gofiber/fiber/v2"

	"gatehouse.dev/gatehouse/internal/bus"
)

// eventTestKeys are the routes of the test API.
var eventTestKeys = []string{
	"GET /",
	"GET /hello",
	"GET /items/{id}",
	"GET /pets/{proxy+}",
	"POST /pets",
	"HEAD /pets",
	"OPTIONS /pets",
	"ANY /echo",
	"$default",
}

// eventTestFunction is the function of a route of the test API: one per route, so that the
// function invoked tells which route matched.
func eventTestFunction(key string) string {
	return "fn-" + strings.NewReplacer(" ", "_", "/", "_", "{", "", "}", "", "+", "", "$", "").Replace(key)
}

// newEventTestServer serves the test API through a real gateway: a path starting with /dev is
// the "dev" stage (stage variable env=dev), anything else the "$default" stage. Its functions answer
// an empty 200 response, and the fake invoker keeps the events they receive.
func newEventTestServer(t *testing.T, keys []string) (*testServer, *fakeInvoker) {
	t.Helper()
	routes := make([]Route, len(keys))
	for i, k := range keys {
		routes[i] = Route{Key: k, Function: eventTestFunction(k)}
	}
	inv := &fakeInvoker{}
	ts := startServer(t, Config{APIs: []API{{
		ID:     "a1b2c3d4e5",
		Stages: []Stage{{Name: DefaultStage}, {Name: "dev", Variables: map[string]string{"env": "dev"}}},
		Routes: routes,
	}}}, inv)
	return ts, inv
}

// sendEvent sends req (made by httptest.NewRequest: its Host is example.com unless changed) to ts
// and decodes the event its function received; raw holds the event's top-level keys, to check which
// were omitted. It fails unless exactly one function ran, the route's own.
func sendEvent(t *testing.T, ts *testServer, inv *fakeInvoker, req *http.Request) (response, events.APIGatewayV2HTTPRequest, map[string]json.RawMessage) {
	t.Helper()
	inv.setScript(nil)
	req.URL.Scheme, req.URL.Host, req.RequestURI = "http", strings.TrimPrefix(ts.base, "http://"), ""
	resp := ts.do(t, req)
	calls := inv.invocations()
	if len(calls) != 1 {
		t.Fatalf("%d invocations, want 1 (response %v)", len(calls), resp)
	}
	var ev events.APIGatewayV2HTTPRequest
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(calls[0].Payload, &ev); err != nil {
		t.Fatalf("event %s: %v", calls[0].Payload, err)
	}
	if err := json.Unmarshal(calls[0].Payload, &raw); err != nil {
		t.Fatal(err)
	}
	if want := eventTestFunction(ev.RouteKey); calls[0].Function != want {
		t.Errorf("function %s ran for route %s, want %s", calls[0].Function, ev.RouteKey, want)
	}
	return resp, ev, raw
}

func TestBuildEvent(t *testing.T) {
	ts, inv := newEventTestServer(t, eventTestKeys)
	binary := []byte{0x00, 0xff, 0x10, 'a', 0x80, 0xfe, '\n'}
	tests := []struct {
		name  string
		req   func() *http.Request
		check func(t *testing.T, ev events.APIGatewayV2HTTPRequest, raw map[string]json.RawMessage)
	}{
		{
			name: "checklist 1 path parameter",
			req:  func() *http.Request { return httptest.NewRequest("GET", "/items/7", nil) },
			check: func(t *testing.T, ev events.APIGatewayV2HTTPRequest, raw map[string]json.RawMessage) {
				wantString(t, "routeKey", ev.RouteKey, "GET /items/{id}")
				wantMap(t, "pathParameters", ev.PathParameters, map[string]string{"id": "7"})
			},
		},
		{
			name: "checklist 4 unmatched goes to $default",
			req:  func() *http.Request { return httptest.NewRequest("PUT", "/nowhere/at/all", nil) },
			check: func(t *testing.T, ev events.APIGatewayV2HTTPRequest, raw map[string]json.RawMessage) {
				wantString(t, "routeKey", ev.RouteKey, "$default")
				wantString(t, "requestContext.routeKey", ev.RequestContext.RouteKey, "$default")
				wantString(t, "rawPath", ev.RawPath, "/nowhere/at/all")
				wantAbsent(t, raw, "pathParameters")
			},
		},
		{
			name: "checklist 7 repeated query keys",
			req: func() *http.Request {
				return httptest.NewRequest("GET", "/hello?a=1&a=2&b=x%20y&c=d+e&flag&=novalue&&e=%zz", nil)
			},
			check: func(t *testing.T, ev events.APIGatewayV2HTTPRequest, raw map[string]json.RawMessage) {
				wantString(t, "rawQueryString", ev.RawQueryString, "a=1&a=2&b=x%20y&c=d+e&flag&=novalue&&e=%zz")
				wantMap(t, "queryStringParameters", ev.QueryStringParameters, map[string]string{
					"a": "1,2", "b": "x y", "c": "d e", "flag": "", "e": "%zz",
				})
			},
		},
		{
			name: "no query string",
			req:  func() *http.Request { return httptest.NewRequest("GET", "/hello", nil) },
			check: func(t *testing.T, ev events.APIGatewayV2HTTPRequest, raw map[string]json.RawMessage) {
				wantString(t, "rawQueryString", ev.RawQueryString, "")
				wantPresent(t, raw, "rawQueryString")
				wantAbsent(t, raw, "queryStringParameters")
			},
		},
		{
			name: "checklist 8 repeated headers",
			req: func() *http.Request {
				r := httptest.NewRequest("GET", "/hello", nil)
				r.Header.Add("X-Foo", "v1")
				r.Header.Add("X-Foo", "v2")
				r.Header.Set("X-Mixed-CASE", "Value Kept")
				r.Header.Set("User-Agent", "test-agent/1.0")
				return r
			},
			check: func(t *testing.T, ev events.APIGatewayV2HTTPRequest, raw map[string]json.RawMessage) {
				wantString(t, "headers[x-foo]", ev.Headers["x-foo"], "v1,v2")
				wantString(t, "headers[x-mixed-case]", ev.Headers["x-mixed-case"], "Value Kept")
				wantString(t, "headers[user-agent]", ev.Headers["user-agent"], "test-agent/1.0")
				wantString(t, "headers[host]", ev.Headers["host"], "example.com")
				wantString(t, "http.userAgent", ev.RequestContext.HTTP.UserAgent, "test-agent/1.0")
				for k := range ev.Headers {
					if k != strings.ToLower(k) {
						t.Errorf("header name %q is not lower-case", k)
					}
				}
			},
		},
		{
			name: "checklist 9 cookies",
			req: func() *http.Request {
				r := httptest.NewRequest("GET", "/hello", nil)
				r.Header.Set("Cookie", "a=1; b=2")
				return r
			},
			check: func(t *testing.T, ev events.APIGatewayV2HTTPRequest, raw map[string]json.RawMessage) {
				wantSlice(t, "cookies", ev.Cookies, []string{"a=1", "b=2"})
				if _, ok := ev.Headers["cookie"]; ok {
					t.Errorf("cookie repeated in headers: %q", ev.Headers["cookie"])
				}
			},
		},
		{
			name: "multiple cookie headers kept raw",
			req: func() *http.Request {
				r := httptest.NewRequest("GET", "/hello", nil)
				r.Header.Add("Cookie", `a=1;b=2 ; ;q="x y"`)
				r.Header.Add("Cookie", "c=3; flag")
				return r
			},
			check: func(t *testing.T, ev events.APIGatewayV2HTTPRequest, raw map[string]json.RawMessage) {
				wantSlice(t, "cookies", ev.Cookies, []string{"a=1", "b=2", `q="x y"`, "c=3", "flag"})
				if _, ok := ev.Headers["cookie"]; ok {
					t.Errorf("cookie repeated in headers: %q", ev.Headers["cookie"])
				}
			},
		},
		{
			name: "no cookies omitted",
			req:  func() *http.Request { return httptest.NewRequest("GET", "/hello", nil) },
			check: func(t *testing.T, ev events.APIGatewayV2HTTPRequest, raw map[string]json.RawMessage) {
				wantAbsent(t, raw, "cookies")
			},
		},
		{
			name: "checklist 10 percent-20 raw and decoded",
			req:  func() *http.Request { return httptest.NewRequest("GET", "/items/a%20b", nil) },
			check: func(t *testing.T, ev events.APIGatewayV2HTTPRequest, raw map[string]json.RawMessage) {
				wantString(t, "rawPath", ev.RawPath, "/items/a%20b")
				wantString(t, "http.path", ev.RequestContext.HTTP.Path, "/items/a%20b")
				wantMap(t, "pathParameters", ev.PathParameters, map[string]string{"id": "a b"})
			},
		},
		{
			name: "raw path not normalized",
			req:  func() *http.Request { return httptest.NewRequest("GET", "/pets/a/../b//c%2Fd", nil) },
			check: func(t *testing.T, ev events.APIGatewayV2HTTPRequest, raw map[string]json.RawMessage) {
				wantString(t, "rawPath", ev.RawPath, "/pets/a/../b//c%2Fd")
				wantMap(t, "pathParameters", ev.PathParameters, map[string]string{"proxy": "a/../b//c/d"})
			},
		},
		{
			name: "checklist 2 greedy parameter",
			req:  func() *http.Request { return httptest.NewRequest("GET", "/pets/cat/1", nil) },
			check: func(t *testing.T, ev events.APIGatewayV2HTTPRequest, raw map[string]json.RawMessage) {
				wantString(t, "routeKey", ev.RouteKey, "GET /pets/{proxy+}")
				wantMap(t, "pathParameters", ev.PathParameters, map[string]string{"proxy": "cat/1"})
			},
		},
		{
			name: "checklist 11 octet-stream body is base64",
			req: func() *http.Request {
				r := httptest.NewRequest("POST", "/pets", bytes.NewReader(binary))
				r.Header.Set("Content-Type", "application/octet-stream")
				return r
			},
			check: func(t *testing.T, ev events.APIGatewayV2HTTPRequest, raw map[string]json.RawMessage) {
				wantBool(t, "isBase64Encoded", ev.IsBase64Encoded, true)
				got, err := base64.StdEncoding.DecodeString(ev.Body)
				if err != nil || !bytes.Equal(got, binary) {
					t.Errorf("body %q decodes to %q, %v; want %q", ev.Body, got, err, binary)
				}
			},
		},
		{
			name: "checklist 11 json body is plain",
			req:  func() *http.Request { return jsonRequest("POST", "/pets", `{"name":"rex"}`, "application/json") },
			check: func(t *testing.T, ev events.APIGatewayV2HTTPRequest, raw map[string]json.RawMessage) {
				wantBool(t, "isBase64Encoded", ev.IsBase64Encoded, false)
				wantString(t, "body", ev.Body, `{"name":"rex"}`)
				wantString(t, "headers[content-type]", ev.Headers["content-type"], "application/json")
				wantString(t, "headers[content-length]", ev.Headers["content-length"], "14")
			},
		},
		{
			name: "json with charset is plain",
			req:  func() *http.Request { return jsonRequest("POST", "/pets", `{}`, "Application/JSON; charset=utf-8") },
			check: func(t *testing.T, ev events.APIGatewayV2HTTPRequest, raw map[string]json.RawMessage) {
				wantBool(t, "isBase64Encoded", ev.IsBase64Encoded, false)
				wantString(t, "body", ev.Body, `{}`)
			},
		},
		{
			name: "text types are plain",
			req:  func() *http.Request { return jsonRequest("POST", "/pets", "héllo\n", "text/plain; charset=utf-8") },
			check: func(t *testing.T, ev events.APIGatewayV2HTTPRequest, raw map[string]json.RawMessage) {
				wantBool(t, "isBase64Encoded", ev.IsBase64Encoded, false)
				wantString(t, "body", ev.Body, "héllo\n")
			},
		},
		{
			name: "invalid utf-8 text is base64",
			req:  func() *http.Request { return jsonRequest("POST", "/pets", "a\xffb", "text/plain") },
			check: func(t *testing.T, ev events.APIGatewayV2HTTPRequest, raw map[string]json.RawMessage) {
				wantBool(t, "isBase64Encoded", ev.IsBase64Encoded, true)
				wantString(t, "body", ev.Body, base64.StdEncoding.EncodeToString([]byte("a\xffb")))
			},
		},
		{
			name: "problem+json is plain",
			req:  func() *http.Request { return jsonRequest("POST", "/pets", `{"title":"x"}`, "application/problem+json") },
			check: func(t *testing.T, ev events.APIGatewayV2HTTPRequest, raw map[string]json.RawMessage) {
				wantBool(t, "isBase64Encoded", ev.IsBase64Encoded, false)
			},
		},
		{
			name: "xml and javascript are plain",
			req:  func() *http.Request { return jsonRequest("POST", "/pets", "<a/>", "application/xml") },
			check: func(t *testing.T, ev events.APIGatewayV2HTTPRequest, raw map[string]json.RawMessage) {
				wantBool(t, "isBase64Encoded", ev.IsBase64Encoded, false)
				wantString(t, "body", ev.Body, "<a/>")
			},
		},
		{
			name: "form body is base64",
			req: func() *http.Request {
				return jsonRequest("POST", "/pets", "a=1&b=2", "application/x-www-form-urlencoded")
			},
			check: func(t *testing.T, ev events.APIGatewayV2HTTPRequest, raw map[string]json.RawMessage) {
				wantBool(t, "isBase64Encoded", ev.IsBase64Encoded, true)
				wantString(t, "body", ev.Body, base64.StdEncoding.EncodeToString([]byte("a=1&b=2")))
			},
		},
		{
			name: "multipart body is base64",
			req: func() *http.Request {
				return jsonRequest("POST", "/pets", "--x--\r\n", "multipart/form-data; boundary=x")
			},
			check: func(t *testing.T, ev events.APIGatewayV2HTTPRequest, raw map[string]json.RawMessage) {
				wantBool(t, "isBase64Encoded", ev.IsBase64Encoded, true)
			},
		},
		{
			name: "missing content type is base64",
			req:  func() *http.Request { return jsonRequest("POST", "/pets", "plain words", "") },
			check: func(t *testing.T, ev events.APIGatewayV2HTTPRequest, raw map[string]json.RawMessage) {
				wantBool(t, "isBase64Encoded", ev.IsBase64Encoded, true)
				wantString(t, "body", ev.Body, base64.StdEncoding.EncodeToString([]byte("plain words")))
			},
		},
		{
			name: "empty body omitted",
			req:  func() *http.Request { return jsonRequest("POST", "/pets", "", "application/octet-stream") },
			check: func(t *testing.T, ev events.APIGatewayV2HTTPRequest, raw map[string]json.RawMessage) {
				wantAbsent(t, raw, "body")
				wantBool(t, "isBase64Encoded", ev.IsBase64Encoded, false)
				wantPresent(t, raw, "isBase64Encoded")
			},
		},
		{
			name: "named stage",
			req:  func() *http.Request { return httptest.NewRequest("GET", "/dev/items/9?x=1", nil) },
			check: func(t *testing.T, ev events.APIGatewayV2HTTPRequest, raw map[string]json.RawMessage) {
				wantString(t, "rawPath", ev.RawPath, "/dev/items/9")
				wantString(t, "http.path", ev.RequestContext.HTTP.Path, "/dev/items/9")
				wantString(t, "requestContext.stage", ev.RequestContext.Stage, "dev")
				wantString(t, "routeKey", ev.RouteKey, "GET /items/{id}")
				wantMap(t, "stageVariables", ev.StageVariables, map[string]string{"env": "dev"})
				wantMap(t, "pathParameters", ev.PathParameters, map[string]string{"id": "9"})
			},
		},
		{
			name: "default stage has no stage variables",
			req:  func() *http.Request { return httptest.NewRequest("GET", "/items/9", nil) },
			check: func(t *testing.T, ev events.APIGatewayV2HTTPRequest, raw map[string]json.RawMessage) {
				wantString(t, "requestContext.stage", ev.RequestContext.Stage, "$default")
				wantAbsent(t, raw, "stageVariables")
			},
		},
		{
			name: "trailing slash routes and stays in rawPath",
			req:  func() *http.Request { return httptest.NewRequest("GET", "/hello/", nil) },
			check: func(t *testing.T, ev events.APIGatewayV2HTTPRequest, raw map[string]json.RawMessage) {
				wantString(t, "routeKey", ev.RouteKey, "GET /hello")
				wantString(t, "rawPath", ev.RawPath, "/hello/")
			},
		},
		{
			name: "root route",
			req:  func() *http.Request { return httptest.NewRequest("GET", "/", nil) },
			check: func(t *testing.T, ev events.APIGatewayV2HTTPRequest, raw map[string]json.RawMessage) {
				wantString(t, "routeKey", ev.RouteKey, "GET /")
				wantString(t, "rawPath", ev.RawPath, "/")
				wantAbsent(t, raw, "pathParameters")
			},
		},
		{
			name: "stage root",
			req:  func() *http.Request { return httptest.NewRequest("GET", "/dev", nil) },
			check: func(t *testing.T, ev events.APIGatewayV2HTTPRequest, raw map[string]json.RawMessage) {
				wantString(t, "routeKey", ev.RouteKey, "GET /")
				wantString(t, "rawPath", ev.RawPath, "/dev")
			},
		},
		{
			name: "OPTIONS route",
			req:  func() *http.Request { return httptest.NewRequest("OPTIONS", "/pets", nil) },
			check: func(t *testing.T, ev events.APIGatewayV2HTTPRequest, raw map[string]json.RawMessage) {
				wantString(t, "routeKey", ev.RouteKey, "OPTIONS /pets")
				wantString(t, "http.method", ev.RequestContext.HTTP.Method, "OPTIONS")
			},
		},
		{
			name: "request context",
			req: func() *http.Request {
				r := httptest.NewRequest("PATCH", "/echo", nil)
				r.Host = "a1b2c3d4e5.execute-api.local"
				r.Header.Set("X-Forwarded-For", "198.51.100.1")
				r.Header.Set("X-Forwarded-Proto", "gopher")
				r.Header.Set("X-Forwarded-Port", "1")
				return r
			},
			check: func(t *testing.T, ev events.APIGatewayV2HTTPRequest, raw map[string]json.RawMessage) {
				rc := ev.RequestContext
				wantString(t, "version", ev.Version, "2.0")
				wantString(t, "routeKey", ev.RouteKey, "ANY /echo")
				wantString(t, "accountId", rc.AccountID, "000000000000")
				wantString(t, "apiId", rc.APIID, "a1b2c3d4e5")
				wantString(t, "domainName", rc.DomainName, "a1b2c3d4e5.execute-api.local")
				wantString(t, "domainPrefix", rc.DomainPrefix, "a1b2c3d4e5")
				// The arrival time is now: time (CLF, UTC) and timeEpoch (ms) tell the same second.
				at, err := time.Parse(eventTimeLayout, rc.Time)
				if err != nil || !strings.HasSuffix(rc.Time, " +0000") || at.Unix() != rc.TimeEpoch/1000 {
					t.Errorf("time %q and timeEpoch %d disagree or are not UTC (%v)", rc.Time, rc.TimeEpoch, err)
				}
				wantString(t, "http.method", rc.HTTP.Method, "PATCH")
				wantString(t, "http.protocol", rc.HTTP.Protocol, "HTTP/1.1")
				wantString(t, "http.sourceIp", rc.HTTP.SourceIP, "127.0.0.1")
				wantString(t, "headers[x-forwarded-for]", ev.Headers["x-forwarded-for"], "198.51.100.1, 127.0.0.1")
				wantString(t, "headers[x-forwarded-proto]", ev.Headers["x-forwarded-proto"], "http")
				// The client's x-forwarded-port is replaced by the gateway's listening port.
				wantString(t, "headers[x-forwarded-port]", ev.Headers["x-forwarded-port"], ts.port)
				if !requestIDPattern.MatchString(rc.RequestID) {
					t.Errorf("requestId %q does not look like an API Gateway id", rc.RequestID)
				}
				wantAbsent(t, rc2raw(t, raw), "authorizer")
				wantAbsent(t, rc2raw(t, raw), "authentication")
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, ev, raw := sendEvent(t, ts, inv, tt.req())
			if resp.status != http.StatusOK {
				t.Fatalf("status %d", resp.status)
			}
			// Checklist 6: apigw-requestid equals requestContext.requestId.
			wantString(t, "apigw-requestid", resp.header.Get("apigw-requestid"), ev.RequestContext.RequestID)
			tt.check(t, ev, raw)
		})
	}
}

// TestBuildEventRouting covers requests whose answer has no event body to read: which function
// ran, if any, tells the route.
func TestBuildEventRouting(t *testing.T) {
	tests := []struct {
		name       string
		keys       []string
		method     string
		target     string
		wantStatus int
		wantKey    string // "" when no function may run
		wantBody   string
	}{
		{"HEAD route", eventTestKeys, "HEAD", "/pets", 200, "HEAD /pets", ""},
		{"HEAD without HEAD route goes to $default", eventTestKeys, "HEAD", "/hello", 200, "$default", ""},
		{"checklist 3 undefined method to ANY greedy", []string{"GET /test/{id}", "ANY /{proxy+}"}, "POST", "/test/5", 200, "ANY /{proxy+}", ""},
		{"checklist 5 no route is 404", []string{"GET /a"}, "GET", "/b", 404, "", `{"message":"Not Found"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts, inv := newEventTestServer(t, tt.keys)
			resp := ts.do(t, ts.request(t, tt.method, tt.target, ""))
			if resp.status != tt.wantStatus {
				t.Errorf("status %d, want %d", resp.status, tt.wantStatus)
			}
			var ran []string
			for _, c := range inv.invocations() {
				ran = append(ran, c.Function)
			}
			var want []string
			if tt.wantKey != "" {
				want = []string{eventTestFunction(tt.wantKey)}
			}
			wantSlice(t, "functions run", ran, want)
			if tt.wantBody != "" {
				wantString(t, "body", resp.body, tt.wantBody)
			}
		})
	}
}

// TestBuildEventBinaryRoundTrip sends binary bytes through an event and back through a base64
// function response: the function echoes the event's body.
func TestBuildEventBinaryRoundTrip(t *testing.T) {
	payload := make([]byte, 256)
	for i := range payload {
		payload[i] = byte(i)
	}
	ts, inv := newEventTestServer(t, []string{"POST /echo"})
	inv.setScript(func(_ context.Context, c bus.Invocation) ([]byte, error) {
		var ev events.APIGatewayV2HTTPRequest
		if err := json.Unmarshal(c.Payload, &ev); err != nil {
			return nil, err
		}
		return json.Marshal(events.APIGatewayV2HTTPResponse{
			StatusCode:      200,
			Headers:         map[string]string{"content-type": "application/octet-stream"},
			Body:            ev.Body,
			IsBase64Encoded: ev.IsBase64Encoded,
		})
	})
	resp := ts.do(t, ts.request(t, "POST", "/echo", string(payload), "Content-Type", "application/octet-stream"))
	if resp.status != 200 || resp.body != string(payload) {
		t.Fatalf("status %d, body %q; want 200 and the 256 bytes sent", resp.status, resp.body)
	}
	wantString(t, "content-type", resp.header.Get("Content-Type"), "application/octet-stream")
}

// TestBuildEventDefaults checks the fallbacks for an empty EventContext.
func TestBuildEventDefaults(t *testing.T) {
	app := fiber.New()
	app.Get("/*", func(c *fiber.Ctx) error {
		before := time.Now()
		raw, err := BuildEvent(c, EventContext{DomainName: "127.0.0.1"})
		if err != nil {
			return err
		}
		var ev events.APIGatewayV2HTTPRequest
		if err := json.Unmarshal(raw, &ev); err != nil {
			return err
		}
		rc := ev.RequestContext
		if d := rc.TimeEpoch - before.UnixMilli(); d < 0 || d > 5000 {
			t.Errorf("timeEpoch %d is not now (%d)", rc.TimeEpoch, before.UnixMilli())
		}
		if !strings.HasSuffix(rc.Time, " +0000") {
			t.Errorf("time %q is not UTC", rc.Time)
		}
		wantString(t, "domainPrefix", rc.DomainPrefix, "127.0.0.1")
		wantString(t, "sourceIp", rc.HTTP.SourceIP, "0.0.0.0")
		return c.SendStatus(204)
	})
	resp, err := app.Test(httptest.NewRequest("GET", "/x", nil), -1)
	if err != nil || resp.StatusCode != 204 {
		t.Fatalf("status %v, %v", resp, err)
	}
}

func TestEventDomainPrefix(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"api domain", "abc.execute-api.us-east-1.amazonaws.com", "abc"},
		{"single label", "localhost", "localhost"},
		{"ipv4", "192.0.2.1", "192.0.2.1"},
		{"ipv6", "::1", "::1"},
		{"empty", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantString(t, "domainPrefix", eventDomainPrefix(tt.in), tt.want)
		})
	}
}

func TestIsTextMediaType(t *testing.T) {
	tests := []struct {
		in   string
		want bool
	}{
		{"text/plain", true},
		{"text/html; charset=utf-8", true},
		{"TEXT/CSV", true},
		{"application/json", true},
		{" application/json ; charset=utf-8", true},
		{"application/xml", true},
		{"application/javascript", true},
		{"application/problem+json", true},
		{"application/vnd.api+json; ext=x", true},
		{"image/svg+xml", true},
		{"+json", false},
		{"", false},
		{"application/octet-stream", false},
		{"application/x-www-form-urlencoded", false},
		{"multipart/form-data; boundary=x", false},
		{"application/jsonp", false},
		{"image/png", false},
		{"textual/plain", false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			if got := isTextMediaType(tt.in); got != tt.want {
				t.Errorf("isTextMediaType(%q) = %v, want %v", tt.in, got, tt.want)
			}
		})
	}
}

// requestIDPattern matches API Gateway request ids such as "Mc7UVioPPHcEKPA=".
var requestIDPattern = regexp.MustCompile(`^[A-Za-z0-9+/]{15}=$`)

func TestNewRequestID(t *testing.T) {
	seen := make(map[string]bool)
	for range 1000 {
		id := NewRequestID()
		if !requestIDPattern.MatchString(id) {
			t.Fatalf("NewRequestID() = %q, want 16 base64 characters ending in one =", id)
		}
		if b, err := base64.StdEncoding.DecodeString(id); err != nil || len(b) != requestIDBytes {
			t.Fatalf("%q decodes to %d bytes, %v", id, len(b), err)
		}
		if seen[id] {
			t.Fatalf("NewRequestID() repeated %q", id)
		}
		seen[id] = true
	}
}

// BenchmarkNewRequestID shows the cost of an id: one allocation, the string
// (two under the race detector).
func BenchmarkNewRequestID(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		NewRequestID()
	}
}

func jsonRequest(method, target, body, contentType string) *http.Request {
	r := httptest.NewRequest(method, target, strings.NewReader(body))
	if contentType != "" {
		r.Header.Set("Content-Type", contentType)
	}
	return r
}

func rc2raw(t *testing.T, raw map[string]json.RawMessage) map[string]json.RawMessage {
	t.Helper()
	var rc map[string]json.RawMessage
	if err := json.Unmarshal(raw["requestContext"], &rc); err != nil {
		t.Fatal(err)
	}
	return rc
}

func wantString(t *testing.T, what, got, want string) {
	t.Helper()
	if got != want {
		t.Errorf("%s = %q, want %q", what, got, want)
	}
}

func wantBool(t *testing.T, what string, got, want bool) {
	t.Helper()
	if got != want {
		t.Errorf("%s = %v, want %v", what, got, want)
	}
}

func wantMap(t *testing.T, what string, got, want map[string]string) {
	t.Helper()
	if !maps.Equal(got, want) {
		t.Errorf("%s = %v, want %v", what, got, want)
	}
}

func wantSlice(t *testing.T, what string, got, want []string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Errorf("%s = %q, want %q", what, got, want)
	}
}

func wantAbsent(t *testing.T, raw map[string]json.RawMessage, key string) {
	t.Helper()
	if v, ok := raw[key]; ok {
		t.Errorf("%s present (%s), want it omitted", key, v)
	}
}

func wantPresent(t *testing.T, raw map[string]json.RawMessage, key string) {
	t.Helper()
	if _, ok := raw[key]; !ok {
		t.Errorf("%s omitted, want it present", key)
	}
}

func FuzzEventQueryParameters(f *testing.F) {
	for _, s := range []string{"", "a=1&a=2", "b=x%20y&c=d+e", "flag&=v&&", "e=%zz", "%3D=%26", "a==b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, rawQuery string) {
		params := eventQueryParameters(rawQuery)
		if params != nil && len(params) == 0 {
			t.Fatal("empty non-nil map")
		}
		if n := strings.Count(rawQuery, "&") + 1; len(params) > n {
			t.Fatalf("%d keys from %d pairs", len(params), n)
		}
		for k := range params {
			if k == "" {
				t.Fatal("empty key kept")
			}
		}
	})
}
