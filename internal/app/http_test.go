package app

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
)

type response struct {
	status  int
	header  http.Header
	body    []byte
	cookies []string
}

func do(t *testing.T, req *http.Request) response {
	t.Helper()
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Header.Get("apigw-requestid") == "" {
		t.Errorf("%s %s: response has no apigw-requestid header", req.Method, req.URL)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: body, cookies: resp.Header.Values("Set-Cookie")}
}

func newRequest(t *testing.T, method, url string, body io.Reader) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

// echoed decodes the event the echo function returned.
func echoed(t *testing.T, r response) events.APIGatewayV2HTTPRequest {
	t.Helper()
	if r.status != 200 {
		t.Fatalf("status %d, body %s", r.status, r.body)
	}
	var ev events.APIGatewayV2HTTPRequest
	if err := json.Unmarshal(r.body, &ev); err != nil {
		t.Fatalf("decoding echoed event %s: %v", r.body, err)
	}
	return ev
}

func TestHello(t *testing.T) {
	n := sharedNode(t)
	r := do(t, newRequest(t, "GET", "http://"+n.GatewayAddr()+"/hello", nil))
	if r.status != 200 || string(r.body) != `{"message":"hello from gatehouse"}` {
		t.Fatalf("GET /hello = %d %s", r.status, r.body)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("content-type %q", ct)
	}
}

func TestHostSelectsAPI(t *testing.T) {
	n := sharedNode(t)
	req := newRequest(t, "GET", "http://"+n.GatewayAddr()+"/hello", nil)
	req.Host = "fns.example.test"
	ev := echoed(t, do(t, req))
	if ev.RequestContext.APIID != "hosted" || ev.RequestContext.DomainName != "fns.example.test" || ev.RequestContext.DomainPrefix != "fns" {
		t.Fatalf("apiId %q domainName %q domainPrefix %q", ev.RequestContext.APIID, ev.RequestContext.DomainName, ev.RequestContext.DomainPrefix)
	}
	req = newRequest(t, "GET", "http://"+n.GatewayAddr()+"/hello", nil)
	req.Host = "another.example.test"
	if r := do(t, req); r.status != 200 || string(r.body) != `{"message":"hello from gatehouse"}` {
		t.Fatalf("another host: %d %s", r.status, r.body)
	}
}

func TestRoutePrecedence(t *testing.T) {
	n := sharedNode(t)
	base := "http://" + n.GatewayAddr()
	tests := []struct {
		name, method, path string
		routeKey           string
		stage              string
		params             map[string]string
		status             int
	}{
		{name: "param beats greedy", method: "GET", path: "/items/7", routeKey: "GET /items/{id}", params: map[string]string{"id": "7"}},
		{name: "greedy takes deeper paths", method: "GET", path: "/items/7/parts", routeKey: "GET /items/{proxy+}", params: map[string]string{"proxy": "7/parts"}},
		{name: "more specific greedy wins", method: "GET", path: "/pets/cat/1", routeKey: "GET /pets/{proxy+}", params: map[string]string{"proxy": "cat/1"}},
		{name: "literal beats param", method: "GET", path: "/pets/dog/1", routeKey: "GET /pets/dog/1"},
		{name: "param after literal", method: "GET", path: "/pets/dog/2", routeKey: "GET /pets/dog/{id}", params: map[string]string{"id": "2"}},
		{name: "method beats ANY", method: "POST", path: "/pets", routeKey: "POST /pets"},
		{name: "ANY catches other methods", method: "DELETE", path: "/pets", routeKey: "ANY /pets"},
		{name: "method mismatch falls to greedy ANY", method: "POST", path: "/test/5", routeKey: "ANY /{proxy+}", params: map[string]string{"proxy": "test/5"}},
		{name: "trailing slash", method: "GET", path: "/pets/dog/1/", routeKey: "GET /pets/dog/1"},
		{name: "root", method: "GET", path: "/", routeKey: "GET /"},
		{name: "encoded param is decoded", method: "GET", path: "/items/a%20b", routeKey: "GET /items/{id}", params: map[string]string{"id": "a b"}},
		{name: "named stage", method: "GET", path: "/dev/items/7", routeKey: "GET /items/{id}", stage: "dev", params: map[string]string{"id": "7"}},
		{name: "mount with stage, literal route", method: "GET", path: "/other/prod/only", routeKey: "GET /only", stage: "prod"},
		{name: "mount with stage, $default route", method: "PUT", path: "/other/prod/anything/else", routeKey: "$default", stage: "prod"},
		{name: "no such stage and no $default stage", method: "GET", path: "/other/only", status: 404},
		{name: "no route and no $default route", method: "GET", path: "/strict/b", status: 404},
		{name: "route of another method", method: "POST", path: "/strict/a", status: 404},
		{name: "paths are case-sensitive", method: "GET", path: "/strict/A", status: 404},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := do(t, newRequest(t, tt.method, base+tt.path, nil))
			if tt.status != 0 {
				if r.status != tt.status || string(r.body) != `{"message":"Not Found"}` {
					t.Fatalf("%s %s = %d %s, want %d Not Found", tt.method, tt.path, r.status, r.body, tt.status)
				}
				return
			}
			ev := echoed(t, r)
			if ev.RouteKey != tt.routeKey || ev.RequestContext.RouteKey != tt.routeKey {
				t.Errorf("routeKey = %q (context %q), want %q", ev.RouteKey, ev.RequestContext.RouteKey, tt.routeKey)
			}
			stage := tt.stage
			if stage == "" {
				stage = "$default"
			}
			if ev.RequestContext.Stage != stage {
				t.Errorf("stage = %q, want %q", ev.RequestContext.Stage, stage)
			}
			if !mapsEqual(ev.PathParameters, tt.params) {
				t.Errorf("pathParameters = %v, want %v", ev.PathParameters, tt.params)
			}
			if ev.RawPath != tt.path {
				t.Errorf("rawPath = %q, want %q", ev.RawPath, tt.path)
			}
		})
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func TestEventConformance(t *testing.T) {
	n := sharedNode(t)
	base := "http://" + n.GatewayAddr()

	t.Run("text request", func(t *testing.T) {
		req := newRequest(t, "POST", base+"/echo/a%20b/c?a=1&a=2&q=x%20y&empty=", strings.NewReader(`{"k":"v"}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Add("X-Foo", "v1")
		req.Header.Add("X-Foo", "v2")
		req.Header.Add("Cookie", "a=1; b=2")
		req.Header.Set("User-Agent", "gatehouse-test/1")
		before := time.Now()
		r := do(t, req)
		ev := echoed(t, r)
		checks := []struct {
			name      string
			got, want any
		}{
			{"version", ev.Version, "2.0"},
			{"routeKey", ev.RouteKey, "ANY /echo/{proxy+}"},
			{"rawPath", ev.RawPath, "/echo/a%20b/c"},
			{"rawQueryString", ev.RawQueryString, "a=1&a=2&q=x%20y&empty="},
			{"cookies", strings.Join(ev.Cookies, "|"), "a=1|b=2"},
			{"repeated header", ev.Headers["x-foo"], "v1,v2"},
			{"content-type", ev.Headers["content-type"], "application/json"},
			{"no cookie header", ev.Headers["cookie"], ""},
			{"query a", ev.QueryStringParameters["a"], "1,2"},
			{"query q decoded", ev.QueryStringParameters["q"], "x y"},
			{"greedy param", ev.PathParameters["proxy"], "a b/c"},
			{"body", ev.Body, `{"k":"v"}`},
			{"isBase64Encoded", ev.IsBase64Encoded, false},
			{"requestId", ev.RequestContext.RequestID, r.header.Get("apigw-requestid")},
			{"context routeKey", ev.RequestContext.RouteKey, "ANY /echo/{proxy+}"},
			{"stage", ev.RequestContext.Stage, "$default"},
			{"method", ev.RequestContext.HTTP.Method, "POST"},
			{"http path", ev.RequestContext.HTTP.Path, "/echo/a%20b/c"},
			{"protocol", ev.RequestContext.HTTP.Protocol, "HTTP/1.1"},
			{"sourceIp", ev.RequestContext.HTTP.SourceIP, "127.0.0.1"},
			{"userAgent", ev.RequestContext.HTTP.UserAgent, "gatehouse-test/1"},
			{"apiId", ev.RequestContext.APIID, "web"},
			{"domainName", ev.RequestContext.DomainName, "127.0.0.1"},
		}
		for _, c := range checks {
			if c.got != c.want {
				t.Errorf("%s = %#v, want %#v", c.name, c.got, c.want)
			}
		}
		if _, ok := ev.QueryStringParameters["empty"]; !ok {
			t.Errorf("query key with an empty value is missing: %v", ev.QueryStringParameters)
		}
		for k := range ev.Headers {
			if k != strings.ToLower(k) {
				t.Errorf("header %q is not lower-case", k)
			}
		}
		tm, err := time.Parse("02/Jan/2006:15:04:05 -0700", ev.RequestContext.Time)
		if err != nil {
			t.Errorf("time %q: %v", ev.RequestContext.Time, err)
		}
		epoch := time.UnixMilli(ev.RequestContext.TimeEpoch)
		if epoch.Before(before.Add(-time.Second)) || epoch.After(time.Now().Add(time.Second)) || tm.Unix() != epoch.Unix() {
			t.Errorf("timeEpoch %v and time %v do not match the request time %v", epoch, tm, before)
		}
	})

	t.Run("binary body", func(t *testing.T) {
		payload := []byte{0, 1, 2, 0xff, 0xfe, 'x'}
		req := newRequest(t, "PUT", base+"/echo/bin", bytes.NewReader(payload))
		req.Header.Set("Content-Type", "application/octet-stream")
		ev := echoed(t, do(t, req))
		got, err := base64.StdEncoding.DecodeString(ev.Body)
		if !ev.IsBase64Encoded || err != nil || !bytes.Equal(got, payload) {
			t.Fatalf("body %q (base64 %v, %v), want %v", ev.Body, ev.IsBase64Encoded, err, payload)
		}
	})

	t.Run("no query, no cookies, no body", func(t *testing.T) {
		ev := echoed(t, do(t, newRequest(t, "GET", base+"/echo/x", nil)))
		if ev.RawQueryString != "" || ev.QueryStringParameters != nil || ev.Cookies != nil || ev.Body != "" || ev.StageVariables != nil {
			t.Fatalf("want empty optional fields, got query %q %v cookies %v body %q stageVariables %v",
				ev.RawQueryString, ev.QueryStringParameters, ev.Cookies, ev.Body, ev.StageVariables)
		}
	})

	t.Run("stage variables", func(t *testing.T) {
		ev := echoed(t, do(t, newRequest(t, "GET", base+"/dev/echo/x", nil)))
		if ev.StageVariables["color"] != "blue" || ev.RawPath != "/dev/echo/x" || ev.RequestContext.Stage != "dev" {
			t.Fatalf("stageVariables %v rawPath %q stage %q", ev.StageVariables, ev.RawPath, ev.RequestContext.Stage)
		}
	})
}

func TestResponseMapping(t *testing.T) {
	n := sharedNode(t)
	url := "http://" + n.GatewayAddr() + "/respond"
	tests := []struct {
		name        string
		output      string // what the function returns
		status      int
		body        string
		contentType string
		header      [2]string
		cookies     []string
	}{
		{name: "structured", output: `{"statusCode":201,"headers":{"x-a":"1","content-type":"text/plain"},"body":"made"}`,
			status: 201, body: "made", contentType: "text/plain", header: [2]string{"X-A", "1"}},
		{name: "cookies", output: `{"statusCode":200,"cookies":["a=1","b=2; Path=/"],"body":""}`,
			status: 200, cookies: []string{"a=1", "b=2; Path=/"}},
		{name: "base64 body", output: `{"statusCode":200,"isBase64Encoded":true,"body":"aGk="}`, status: 200, body: "hi"},
		{name: "function status passes through", output: `{"statusCode":404,"body":"nope"}`, status: 404, body: "nope"},
		{name: "multiValueHeaders ignored", output: `{"statusCode":200,"multiValueHeaders":{"x-m":["1","2"]},"body":"ok"}`, status: 200, body: "ok", header: [2]string{"X-M", ""}},
		{name: "bare object", output: `{"ok":true}`, status: 200, body: `{"ok":true}`, contentType: "application/json"},
		{name: "bare string", output: `"hi"`, status: 200, body: "hi", contentType: "application/json"},
		{name: "bare number", output: `42`, status: 200, body: "42", contentType: "application/json"},
		{name: "bad statusCode", output: `{"statusCode":"soon"}`, status: 500, body: `{"message":"Internal Server Error"}`, contentType: "application/json"},
		{name: "informational status refused", output: `{"statusCode":103,"body":"x"}`, status: 500, body: `{"message":"Internal Server Error"}`},
		{name: "bad base64", output: `{"statusCode":200,"isBase64Encoded":true,"body":"%%%"}`, status: 500, body: `{"message":"Internal Server Error"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := newRequest(t, "POST", url, strings.NewReader(tt.output))
			req.Header.Set("Content-Type", "application/json")
			r := do(t, req)
			if r.status != tt.status || string(r.body) != tt.body {
				t.Fatalf("got %d %q, want %d %q", r.status, r.body, tt.status, tt.body)
			}
			if tt.contentType != "" && r.header.Get("Content-Type") != tt.contentType {
				t.Errorf("content-type %q, want %q", r.header.Get("Content-Type"), tt.contentType)
			}
			if tt.header[0] != "" && r.header.Get(tt.header[0]) != tt.header[1] {
				t.Errorf("%s = %q, want %q", tt.header[0], r.header.Get(tt.header[0]), tt.header[1])
			}
			if tt.cookies != nil && !slices.Equal(r.cookies, tt.cookies) {
				t.Errorf("set-cookie %q, want %q", r.cookies, tt.cookies)
			}
		})
	}
}

func TestFailures(t *testing.T) {
	n := sharedNode(t)
	base := "http://" + n.GatewayAddr()
	internal := `{"message":"Internal Server Error"}`

	t.Run("function error", func(t *testing.T) {
		req := newRequest(t, "GET", base+"/echo/x", nil)
		req.Header.Set("x-echo-fail", "error")
		if r := do(t, req); r.status != 500 || string(r.body) != internal {
			t.Fatalf("got %d %s", r.status, r.body)
		}
	})
	t.Run("panic, then the function still answers", func(t *testing.T) {
		for range 3 {
			req := newRequest(t, "GET", base+"/echo/x", nil)
			req.Header.Set("x-echo-fail", "panic")
			if r := do(t, req); r.status != 500 || string(r.body) != internal {
				t.Fatalf("got %d %s", r.status, r.body)
			}
		}
		echoed(t, do(t, newRequest(t, "GET", base+"/echo/x", nil)))
	})
	t.Run("integration timeout", func(t *testing.T) {
		req := newRequest(t, "POST", base+"/respond/short-timeout", strings.NewReader(`"late"`))
		req.Header.Set("x-sleep-ms", "1000")
		if r := do(t, req); r.status != 503 || string(r.body) != `{"message":"Service Unavailable"}` {
			t.Fatalf("got %d %s", r.status, r.body)
		}
	})
	t.Run("body over 10 MB is refused before it is sent", func(t *testing.T) {
		// Only the headers go out: the gateway must answer from Content-Length alone, without waiting
		// for (or buffering) the body.
		conn, err := net.Dial("tcp", n.GatewayAddr())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(10 * time.Second))
		fmt.Fprintf(conn, "POST /echo/big HTTP/1.1\r\nHost: %s\r\nContent-Type: application/octet-stream\r\nContent-Length: %d\r\n\r\n", n.GatewayAddr(), 11<<20)
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 413 || string(body) != `{"message":"Request Entity Too Large"}` || resp.Header.Get("apigw-requestid") == "" {
			t.Fatalf("got %d %s (request id %q)", resp.StatusCode, body, resp.Header.Get("apigw-requestid"))
		}
	})
	t.Run("body of 10 MB reaches the function", func(t *testing.T) {
		payload := bytes.Repeat([]byte("abcdefgh"), 10<<20/8)
		req := newRequest(t, "POST", base+"/respond", bytes.NewReader(payload))
		req.Header.Set("Content-Type", "text/plain")
		req.Header.Set("x-report-length", "1")
		r := do(t, req)
		if want := fmt.Sprintf(`{"length":%d}`, len(payload)); r.status != 200 || string(r.body) != want {
			t.Fatalf("got %d %s, want 200 %s", r.status, r.body, want)
		}
	})
	t.Run("response over 6 MB", func(t *testing.T) {
		payload := bytes.Repeat([]byte("abcdefgh"), 7<<20/8)
		req := newRequest(t, "POST", base+"/respond", bytes.NewReader(append(append([]byte(`"`), payload...), '"')))
		req.Header.Set("Content-Type", "application/json")
		if r := do(t, req); r.status != 500 || string(r.body) != internal {
			t.Fatalf("got %d %.100s", r.status, r.body)
		}
	})
}
