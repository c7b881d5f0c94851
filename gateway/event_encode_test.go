package gateway

import (
	"bytes"
	"math"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/gofiber/fiber/v2"
	"github.com/valyala/fasthttp"
)

// checkEncodeEventV2 fails t unless encodeEventV2 writes ev byte for byte as encoding/json does.
func checkEncodeEventV2(t *testing.T, ev *eventRequest) {
	t.Helper()
	want, wantErr := encodeEvent(ev, "2.0")
	got, gotErr := encodeEventV2(ev)
	if (gotErr == nil) != (wantErr == nil) || gotErr != nil && gotErr.Error() != wantErr.Error() {
		t.Fatalf("error %v, encoding/json gives %v", gotErr, wantErr)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("encodeEventV2 writes\n%s\nencoding/json writes\n%s", got, want)
	}
}

// typicalEvent is an event as BuildEvent makes one for a small POST.
func typicalEvent() *eventRequest {
	return &eventRequest{
		APIGatewayV2HTTPRequest: events.APIGatewayV2HTTPRequest{
			Version: "2.0", RouteKey: "POST /pets/{id}", RawPath: "/pets/7", RawQueryString: "a=1&b=x%20y",
			Cookies: []string{"session=abc", "theme=dark"},
			Headers: map[string]string{
				"accept": "*/*", "content-length": "13", "content-type": "application/json", "host": "api.example.com",
				"user-agent": "curl/8.5.0", "x-forwarded-for": "127.0.0.1", "x-forwarded-port": "8080", "x-forwarded-proto": "http",
			},
			QueryStringParameters: map[string]string{"a": "1", "b": "x y"},
			PathParameters:        map[string]string{"id": "7"},
			Body:                  `{"name":"Rex"}`,
		},
		RequestContext: eventRequestContext{APIGatewayV2HTTPRequestContext: events.APIGatewayV2HTTPRequestContext{
			RouteKey: "POST /pets/{id}", AccountID: "000000000000", Stage: "$default", RequestID: "Mc7UVioPPHcEKPA=",
			APIID: "a1b2c3d4e5", DomainName: "api.example.com", DomainPrefix: "api",
			Time: "07/Dec/2026:10:00:00 +0000", TimeEpoch: 1796637600000,
			HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{
				Method: "POST", Path: "/pets/7", Protocol: "HTTP/1.1", SourceIP: "127.0.0.1", UserAgent: "curl/8.5.0",
			},
		}},
	}
}

func TestEncodeEventV2(t *testing.T) {
	tests := []struct {
		name string
		edit func(ev *eventRequest)
	}{
		{"typical", func(*eventRequest) {}},
		{"zero", func(ev *eventRequest) { *ev = eventRequest{} }},
		{"empty maps and slices", func(ev *eventRequest) {
			ev.Headers, ev.QueryStringParameters, ev.PathParameters = map[string]string{}, map[string]string{}, map[string]string{}
			ev.StageVariables, ev.Cookies = map[string]string{}, []string{}
		}},
		{"nil headers", func(ev *eventRequest) { ev.Headers = nil }},
		{"stage variables", func(ev *eventRequest) { ev.StageVariables = map[string]string{"b": "2", "a": "1", "": "empty"} }},
		{"base64 body", func(ev *eventRequest) { ev.Body, ev.IsBase64Encoded = "AP8Q", true }},
		{"escapes", func(ev *eventRequest) {
			s := "q\" b\\ <>& \b\f\n\r\t \x00\x01\x1f\x7f é ☃ 😀 \u2028\u2029 \ufffd bad\xff\xfe \xed\xa0\x80 \xe2\x82"
			ev.Body, ev.RawPath, ev.RequestContext.HTTP.UserAgent = s, s, s
			ev.Headers[s] = s
			ev.Cookies = append(ev.Cookies, s)
			ev.RequestContext.Time = s
		}},
		{"many headers", func(ev *eventRequest) {
			for _, k := range []string{"a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l", "m", "n", "o", "p",
				"q", "r", "s", "t", "u", "v", "w", "x", "y", "z", "aa", "ab", "ac", "ad", "ae", "af", "ag", "ah", "ai"} {
				ev.Headers["x-"+k] = k
			}
		}},
		{"negative epoch", func(ev *eventRequest) { ev.RequestContext.TimeEpoch = math.MinInt64 }},
		{"JWT authorizer", func(ev *eventRequest) {
			ev.RequestContext.Authorizer = &events.APIGatewayV2HTTPRequestContextAuthorizerDescription{
				JWT: &events.APIGatewayV2HTTPRequestContextAuthorizerJWTDescription{
					Claims: map[string]string{"sub": "u1", "iss": "https://issuer/<x>&"}, Scopes: []string{"read", "write"},
				},
			}
		}},
		{"Lambda authorizer", func(ev *eventRequest) {
			ev.RequestContext.Authorizer = &events.APIGatewayV2HTTPRequestContextAuthorizerDescription{
				Lambda: map[string]any{"user": "u1", "n": 3.5, "ok": true, "nested": map[string]any{"a": []any{1, "<b>", nil}}},
			}
		}},
		{"IAM authorizer", func(ev *eventRequest) {
			ev.RequestContext.Authorizer = &events.APIGatewayV2HTTPRequestContextAuthorizerDescription{
				IAM: &events.APIGatewayV2HTTPRequestContextAuthorizerIAMDescription{AccessKey: "AKIA", AccountID: "123", UserARN: "arn:aws:iam::123:user/x"},
			}
		}},
		{"empty authorizer", func(ev *eventRequest) {
			ev.RequestContext.Authorizer = &events.APIGatewayV2HTTPRequestContextAuthorizerDescription{}
		}},
		{"authorizer that cannot be encoded", func(ev *eventRequest) {
			ev.RequestContext.Authorizer = &events.APIGatewayV2HTTPRequestContextAuthorizerDescription{
				Lambda: map[string]any{"nan": math.NaN()},
			}
		}},
		{"authentication", func(ev *eventRequest) {
			ev.RequestContext.Authentication = &events.APIGatewayV2HTTPRequestContextAuthentication{
				ClientCert: events.APIGatewayV2HTTPRequestContextAuthenticationClientCert{
					ClientCertPem: "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n", IssuerDN: "CN=ca", SerialNumber: "1",
					SubjectDN: "CN=client", Validity: events.APIGatewayV2HTTPRequestContextAuthenticationClientCertValidity{NotAfter: "b", NotBefore: "a"},
				},
			}
		}},
		{"hidden embedded fields set", func(ev *eventRequest) {
			ev.APIGatewayV2HTTPRequest.RequestContext.RouteKey = "hidden"
			ev.RequestContext.APIGatewayV2HTTPRequestContext.Authentication.ClientCert.IssuerDN = "hidden"
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev := typicalEvent()
			tt.edit(ev)
			checkEncodeEventV2(t, ev)
		})
	}
}

// TestBuildEventEncodesAsJSON checks the hand-written encoder against encoding/json on the events
// of requests, as BuildEvent gathers them.
func TestBuildEventEncodesAsJSON(t *testing.T) {
	app := fiber.New()
	for _, req := range []*fasthttp.Request{
		buildTestRequest("GET", "http://api.example.com/hello", "", "", nil),
		buildTestRequest("POST", "http://api.example.com/pets/7?a=1&b=x+y&a=2&c=%zz", `{"name":"<Rex>"}`, "application/json",
			map[string]string{"Cookie": "a=1; b=\"2\"", "X-Forwarded-For": "10.0.0.1", "X-Weird": "\u00e9\u2028"}),
		buildTestRequest("PUT", "http://1.2.3.4:8080/upload", "\x00\xff binary", "application/octet-stream", nil),
		buildTestRequest("POST", "http://api.example.com/text", "caf\xe9", "text/plain", nil),
	} {
		fctx := &fasthttp.RequestCtx{}
		req.CopyTo(&fctx.Request)
		c := app.AcquireCtx(fctx)
		ec := EventContext{RouteKey: "$default", Stage: "dev", RequestID: "id", DomainName: "api.example.com",
			PathParameters: map[string]string{"id": "7"}, StageVariables: map[string]string{"v": "1"},
			Time: time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC), SourceIP: "127.0.0.1"}
		var ev eventRequest
		fillEventRequest(&ev, c, ec)
		checkEncodeEventV2(t, &ev)
		built, err := BuildEvent(c, ec)
		if err != nil {
			t.Fatal(err)
		}
		if want, _ := encodeEvent(&ev, "2.0"); !bytes.Equal(built, want) {
			t.Errorf("BuildEvent writes\n%s\nencoding/json writes\n%s", built, want)
		}
		app.ReleaseCtx(c)
	}
}

// buildTestRequest makes a request for TestBuildEventEncodesAsJSON.
func buildTestRequest(method, url, body, contentType string, headers map[string]string) *fasthttp.Request {
	r := httptest.NewRequest(method, url, nil)
	req := &fasthttp.Request{}
	req.Header.SetMethod(method)
	req.SetRequestURI(r.URL.String())
	req.Header.SetHost(r.Host)
	if contentType != "" {
		req.Header.SetContentType(contentType)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	req.SetBodyString(body)
	return req
}

// FuzzEncodeEventV2 checks the hand-written encoder against encoding/json on events made of
// arbitrary strings.
func FuzzEncodeEventV2(f *testing.F) {
	f.Add("GET /x", "/x", "a=1", "content-type", "text/plain", "body <b>", int64(1), byte(0))
	f.Add("$default", "/", "", "x", "é\u2028\x00\xff", "", int64(-5), byte(0xff))
	f.Add("", "", "", "", "", "\xed\xa0\x80\"\\", int64(0), byte(0x55))
	f.Fuzz(func(t *testing.T, routeKey, path, query, key, value, body string, epoch int64, flags byte) {
		ev := typicalEvent()
		ev.RouteKey, ev.RequestContext.RouteKey = routeKey, routeKey
		ev.RawPath, ev.RequestContext.HTTP.Path = path, path
		ev.RawQueryString = query
		ev.Body, ev.IsBase64Encoded = body, flags&1 != 0
		ev.RequestContext.TimeEpoch = epoch
		ev.RequestContext.HTTP.UserAgent = value
		ev.Headers[key] = value
		if flags&2 != 0 {
			ev.Cookies = []string{key, value}
		} else {
			ev.Cookies = nil
		}
		if flags&4 != 0 {
			ev.QueryStringParameters = map[string]string{key: value, value: key}
		} else {
			ev.QueryStringParameters = nil
		}
		if flags&8 != 0 {
			ev.StageVariables = map[string]string{key: body}
		}
		if flags&16 != 0 {
			ev.PathParameters = nil
		}
		if flags&32 != 0 {
			ev.Headers = nil
		}
		if flags&64 != 0 {
			ev.RequestContext.Authorizer = &events.APIGatewayV2HTTPRequestContextAuthorizerDescription{
				JWT:    &events.APIGatewayV2HTTPRequestContextAuthorizerJWTDescription{Claims: map[string]string{key: value}},
				Lambda: map[string]any{key: body},
			}
		}
		if flags&128 != 0 {
			ev.RequestContext.Authentication = &events.APIGatewayV2HTTPRequestContextAuthentication{}
			ev.RequestContext.Authentication.ClientCert.SubjectDN = value
		}
		checkEncodeEventV2(t, ev)
	})
}

// BenchmarkEncodeEventV2 compares encoding/json ("json") with the hand-written encoder ("fast")
// on the event of a small POST.
func BenchmarkEncodeEventV2(b *testing.B) {
	ev := typicalEvent()
	b.Run("json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := encodeEvent(ev, "2.0"); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("fast", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := encodeEventV2(ev); err != nil {
				b.Fatal(err)
			}
		}
	})
}
