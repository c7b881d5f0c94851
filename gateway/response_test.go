package gateway

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"

	"github.com/gofiber/fiber/v2"
	"github.com/valyala/fasthttp"
)

// newResponseTestApp returns a Fiber app that plays the gateway for tests: it sets
// apigw-requestid, writes payload through WriteResponse and answers a malformed
// payload like API Gateway, 500 {"message":"Internal Server Error"}.
func newResponseTestApp(payload string) *fiber.App {
	app := fiber.New()
	app.Use(func(c *fiber.Ctx) error {
		c.Set("apigw-requestid", "Mc7UVioPPHcEKPA=")
		if err := WriteResponse(c, []byte(payload)); err != nil {
			if !errors.Is(err, ErrMalformedResponse) {
				return err
			}
			c.Set("X-Error", err.Error())
			return c.Status(fiber.StatusInternalServerError).JSON(fiber.Map{"message": "Internal Server Error"})
		}
		return nil
	})
	return app
}

func TestWriteResponse(t *testing.T) {
	tests := []struct {
		name        string
		payload     string
		wantStatus  int
		wantType    string // Content-Type; "-" means no Content-Type header
		wantBody    string
		wantHeaders map[string][]string // other headers that must be present, exactly
		wantAbsent  []string            // headers that must not be present
	}{
		// Reference §14 checklist 12–16.
		{name: "12 object without statusCode", payload: `{"ok":true}`,
			wantStatus: 200, wantType: "application/json", wantBody: `{"ok":true}`},
		{name: "13 JSON string", payload: `"hi"`,
			wantStatus: 200, wantType: "application/json", wantBody: "hi"},
		{name: "14 cookies become set-cookie headers",
			payload:    `{"statusCode":200,"cookies":["a=1","b=2; Path=/; HttpOnly","a=3"],"body":"x"}`,
			wantStatus: 200, wantType: "-", wantBody: "x",
			wantHeaders: map[string][]string{"Set-Cookie": {"a=1", "b=2; Path=/; HttpOnly", "a=3"}}},
		{name: "15 multiValueHeaders ignored",
			payload:    `{"statusCode":200,"multiValueHeaders":{"X-Multi":["a","b"]},"body":"x"}`,
			wantStatus: 200, wantBody: "x", wantType: "-", wantAbsent: []string{"X-Multi"}},
		{name: "16 not JSON is 500", payload: `hello`,
			wantStatus: 500, wantType: "application/json", wantBody: `{"message":"Internal Server Error"}`},

		{name: "inferred array", payload: `[1, 2]`, wantStatus: 200, wantType: "application/json", wantBody: `[1, 2]`},
		{name: "inferred number", payload: `42`, wantStatus: 200, wantType: "application/json", wantBody: `42`},
		{name: "inferred bool", payload: `true`, wantStatus: 200, wantType: "application/json", wantBody: `true`},
		{name: "inferred null", payload: `null`, wantStatus: 200, wantType: "application/json", wantBody: `null`},
		{name: "inferred whitespace trimmed", payload: " \n{\"a\": 1}\n", wantStatus: 200, wantType: "application/json", wantBody: `{"a": 1}`},
		{name: "inferred object with body key", payload: `{"body":"x","headers":{"a":"b"}}`,
			wantStatus: 200, wantType: "application/json", wantBody: `{"body":"x","headers":{"a":"b"}}`, wantAbsent: []string{"A"}},
		{name: "statusCode key is case-sensitive", payload: `{"statuscode":404}`,
			wantStatus: 200, wantType: "application/json", wantBody: `{"statuscode":404}`},
		{name: "JSON string escapes decoded", payload: `"line\n\u00e9\"q\""`,
			wantStatus: 200, wantType: "application/json", wantBody: "line\né\"q\""},

		{name: "structured",
			payload:    `{"statusCode":201,"headers":{"Content-Type":"text/plain","X-A":"1","x-multi":"a,b"},"body":"created"}`,
			wantStatus: 201, wantType: "text/plain", wantBody: "created",
			wantHeaders: map[string][]string{"X-A": {"1"}, "X-Multi": {"a,b"}, "Apigw-Requestid": {"Mc7UVioPPHcEKPA="}}},
		{name: "structured without content type sets none", payload: `{"statusCode":200,"body":"{}"}`,
			wantStatus: 200, wantType: "-", wantBody: "{}"},
		{name: "structured with only statusCode", payload: `{"statusCode":204}`,
			wantStatus: 204, wantType: "-", wantBody: ""},
		{name: "structured nulls are absent", payload: `{"statusCode":404,"headers":null,"cookies":null,"body":null,"isBase64Encoded":null}`,
			wantStatus: 404, wantType: "-", wantBody: ""},
		{name: "base64 body decoded",
			payload:    `{"statusCode":200,"headers":{"content-type":"application/octet-stream"},"body":"AP8Q","isBase64Encoded":true}`,
			wantStatus: 200, wantType: "application/octet-stream", wantBody: "\x00\xff\x10"},
		{name: "isBase64Encoded false keeps body", payload: `{"statusCode":200,"body":"AP8Q","isBase64Encoded":false}`,
			wantStatus: 200, wantType: "-", wantBody: "AP8Q"},
		{name: "number and bool header values stringified",
			payload:    `{"statusCode":200,"headers":{"X-Count":3,"X-Ratio":-1.5e3,"X-On":true}}`,
			wantStatus: 200, wantType: "-",
			wantHeaders: map[string][]string{"X-Count": {"3"}, "X-Ratio": {"-1.5e3"}, "X-On": {"true"}}},
		{name: "framing headers dropped",
			payload:    `{"statusCode":200,"headers":{"Content-Length":"999","Transfer-Encoding":"chunked","Connection":"upgrade","Upgrade":"h2c","Keep-Alive":"timeout=5","Trailer":"X-T","TE":"trailers"},"body":"short"}`,
			wantStatus: 200, wantType: "-", wantBody: "short",
			wantAbsent: []string{"Transfer-Encoding", "Upgrade", "Keep-Alive", "Trailer", "Te"}},
		{name: "function cannot replace apigw-requestid",
			payload:    `{"statusCode":200,"headers":{"apigw-requestid":"forged"}}`,
			wantStatus: 200, wantType: "-",
			wantHeaders: map[string][]string{"Apigw-Requestid": {"Mc7UVioPPHcEKPA="}}},
		{name: "set-cookie in headers", payload: `{"statusCode":302,"headers":{"Location":"/x","Set-Cookie":"s=1"},"cookies":["t=2"]}`,
			wantStatus: 302, wantType: "-",
			wantHeaders: map[string][]string{"Location": {"/x"}, "Set-Cookie": {"s=1", "t=2"}}},
		{name: "status 599", payload: `{"statusCode":599}`, wantStatus: 599, wantType: "-"},

		{name: "empty payload", payload: ``, wantStatus: 500},
		{name: "truncated JSON", payload: `{"statusCode":200`, wantStatus: 500},
		{name: "trailing garbage", payload: `{"statusCode":200} x`, wantStatus: 500},
		{name: "statusCode 99", payload: `{"statusCode":99}`, wantStatus: 500},
		{name: "statusCode 600", payload: `{"statusCode":600}`, wantStatus: 500},
		{name: "statusCode string", payload: `{"statusCode":"200"}`, wantStatus: 500},
		{name: "statusCode fraction", payload: `{"statusCode":200.5}`, wantStatus: 500},
		{name: "statusCode null", payload: `{"statusCode":null}`, wantStatus: 500},
		{name: "headers not an object", payload: `{"statusCode":200,"headers":"x"}`, wantStatus: 500},
		{name: "header value object", payload: `{"statusCode":200,"headers":{"a":{}}}`, wantStatus: 500},
		{name: "header value array", payload: `{"statusCode":200,"headers":{"a":["b"]}}`, wantStatus: 500},
		{name: "header value null", payload: `{"statusCode":200,"headers":{"a":null}}`, wantStatus: 500},
		{name: "header value CRLF injection", payload: `{"statusCode":200,"headers":{"a":"b\r\nX-Evil: 1"}}`, wantStatus: 500, wantAbsent: []string{"X-Evil"}},
		{name: "header name with space", payload: `{"statusCode":200,"headers":{"bad name":"x"}}`, wantStatus: 500},
		{name: "empty header name", payload: `{"statusCode":200,"headers":{"":"x"}}`, wantStatus: 500},
		{name: "cookies not an array", payload: `{"statusCode":200,"cookies":"a=1"}`, wantStatus: 500},
		{name: "cookie not a string", payload: `{"statusCode":200,"cookies":[1]}`, wantStatus: 500},
		{name: "cookie with newline", payload: `{"statusCode":200,"cookies":["a=1\nb"]}`, wantStatus: 500},
		{name: "body not a string", payload: `{"statusCode":200,"body":{"a":1}}`, wantStatus: 500},
		{name: "isBase64Encoded not a bool", payload: `{"statusCode":200,"body":"","isBase64Encoded":"true"}`, wantStatus: 500},
		{name: "invalid base64", payload: `{"statusCode":200,"body":"!!!","isBase64Encoded":true}`, wantStatus: 500},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := newResponseTestApp(tt.payload).Test(httptest.NewRequest("GET", "/", nil), -1)
			if err != nil {
				t.Fatal(err)
			}
			body, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("status %d, want %d (error %q)", resp.StatusCode, tt.wantStatus, resp.Header.Get("X-Error"))
			}
			if tt.wantStatus == 500 {
				if resp.Header.Get("X-Error") == "" {
					t.Errorf("500 without an ErrMalformedResponse")
				}
				wantString(t, "body", string(body), `{"message":"Internal Server Error"}`)
			} else {
				wantString(t, "body", string(body), tt.wantBody)
				if n := resp.ContentLength; n != int64(len(tt.wantBody)) && tt.wantStatus != 204 {
					t.Errorf("Content-Length %d, body %d bytes", n, len(tt.wantBody))
				}
			}
			if tt.wantType == "-" {
				if v, ok := resp.Header["Content-Type"]; ok {
					t.Errorf("Content-Type %q, want none", v)
				}
			} else if tt.wantType != "" {
				wantString(t, "Content-Type", resp.Header.Get("Content-Type"), tt.wantType)
			}
			for name, want := range tt.wantHeaders {
				if got := resp.Header.Values(name); !slices.Equal(got, want) {
					t.Errorf("%s = %q, want %q", name, got, want)
				}
			}
			for _, name := range tt.wantAbsent {
				if v, ok := resp.Header[http.CanonicalHeaderKey(name)]; ok {
					t.Errorf("%s = %q, want none", name, v)
				}
			}
		})
	}
}

// TestWriteResponseWritesNothingOnError checks that a malformed payload leaves
// the response as it was.
func TestWriteResponseWritesNothingOnError(t *testing.T) {
	app := fiber.New()
	for _, payload := range []string{
		`{"statusCode":201,"headers":{"X-A":"1","bad name":"x"},"body":"b"}`,
		`{"statusCode":201,"headers":{"X-A":"1"},"cookies":["a=1"],"body":"!","isBase64Encoded":true}`,
		`nope`,
	} {
		fctx := &fasthttp.RequestCtx{}
		c := app.AcquireCtx(fctx)
		c.Set("X-Before", "kept")
		err := WriteResponse(c, []byte(payload))
		if !errors.Is(err, ErrMalformedResponse) {
			t.Errorf("WriteResponse(%s) = %v, want ErrMalformedResponse", payload, err)
		}
		r := &fctx.Response
		if r.StatusCode() != 200 || len(r.Body()) != 0 || r.Header.Peek("X-A") != nil ||
			r.Header.PeekCookie("a") != nil || string(r.Header.Peek("X-Before")) != "kept" {
			t.Errorf("WriteResponse(%s) changed the response:\n%s", payload, r.String())
		}
		app.ReleaseCtx(c)
	}
}

func FuzzWriteResponse(f *testing.F) {
	for _, s := range []string{
		`{"ok":true}`, `"hi"`, `null`, `[1]`, `1e3`, ``, `{`,
		`{"statusCode":200,"headers":{"a":"b","c":1,"Content-Type":"text/plain"},"cookies":["x=1"],"body":"hey"}`,
		`{"statusCode":204,"body":"ignored"}`,
		`{"statusCode":101,"headers":{"Upgrade":"websocket","Connection":"Upgrade"}}`,
		`{"statusCode":200,"body":"AP8=","isBase64Encoded":true}`,
		`{"statusCode":200,"headers":{"Content-Length":"0","Transfer-Encoding":"chunked"},"body":"abc"}`,
		`{"statusCode":200,"headers":{"x":"\u0000"}}`,
		`{"statusCode":200,"headers":{"Server":"s","Date":"d","Content-Encoding":"gzip"}}`,
	} {
		f.Add([]byte(s))
	}
	app := fiber.New()
	f.Fuzz(func(t *testing.T, payload []byte) {
		fctx := &fasthttp.RequestCtx{}
		c := app.AcquireCtx(fctx)
		defer app.ReleaseCtx(c)
		if err := WriteResponse(c, payload); err != nil {
			if !errors.Is(err, ErrMalformedResponse) {
				t.Fatalf("error %v does not wrap ErrMalformedResponse", err)
			}
			if fctx.Response.StatusCode() != 200 || len(fctx.Response.Body()) != 0 {
				t.Fatalf("failed WriteResponse changed the response")
			}
			return
		}
		status := fctx.Response.StatusCode()
		if status < 100 || status > 599 {
			t.Fatalf("status %d", status)
		}
		// Whatever the function said, the response must still frame correctly.
		var wire bytes.Buffer
		if _, err := fctx.Response.WriteTo(&wire); err != nil {
			t.Fatalf("write response: %v", err)
		}
		wire.WriteString("HTTP/1.1 299 Sentinel\r\nContent-Length: 0\r\n\r\n")
		br := bufio.NewReader(&wire)
		req := &http.Request{Method: http.MethodGet}
		resp, err := http.ReadResponse(br, req)
		if err != nil {
			t.Fatalf("response does not parse: %v", err)
		}
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatalf("response body: %v", err)
		}
		if resp.StatusCode != status {
			t.Fatalf("status %d on the wire, want %d", resp.StatusCode, status)
		}
		if status >= 200 && status != 204 && status != 304 && !bytes.Equal(body, fctx.Response.Body()) {
			t.Fatalf("body %q on the wire, want %q", body, fctx.Response.Body())
		}
		if status == 101 {
			return // after switching protocols the stream is no longer HTTP
		}
		next, err := http.ReadResponse(br, req)
		if err != nil || next.StatusCode != 299 {
			t.Fatalf("response framing swallowed the next response: %v", err)
		}
	})
}
