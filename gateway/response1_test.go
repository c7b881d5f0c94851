package gateway

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/gofiber/fiber/v2"
	"github.com/valyala/fasthttp"
)

// newResponseV1TestApp is newResponseTestApp for payload 1.0: it sets apigw-requestid, writes
// payload through WriteResponseV1 and answers a malformed payload with 500
// {"message":"Internal Server Error"}.
func newResponseV1TestApp(payload string) *fiber.App {
	app := fiber.New()
	app.Use(func(c *fiber.Ctx) error {
		c.Set("apigw-requestid", "Mc7UVioPPHcEKPA=")
		if err := WriteResponseV1(c, []byte(payload)); err != nil {
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

func TestWriteResponseV1(t *testing.T) {
	tests := []struct {
		name        string
		payload     string
		wantStatus  int
		wantType    string // Content-Type; "-" means no Content-Type header
		wantBody    string
		wantHeaders map[string][]string // headers that must be present, exactly
		wantAbsent  []string            // headers that must not be present
	}{
		{name: "statusCode only", payload: `{"statusCode":204}`, wantStatus: 204, wantType: "-"},
		{name: "statusCode and body without content type", payload: `{"statusCode":200,"body":"{}"}`,
			wantStatus: 200, wantType: "-", wantBody: "{}"},
		{name: "aws-lambda-go nulls are absent",
			payload:    `{"statusCode":404,"headers":null,"multiValueHeaders":null,"body":"","isBase64Encoded":null}`,
			wantStatus: 404, wantType: "-"},
		{name: "headers",
			payload:    `{"statusCode":201,"headers":{"Content-Type":"text/plain","X-A":"1","X-Count":3,"X-On":true},"body":"created"}`,
			wantStatus: 201, wantType: "text/plain", wantBody: "created",
			wantHeaders: map[string][]string{"X-A": {"1"}, "X-Count": {"3"}, "X-On": {"true"}, "Apigw-Requestid": {"Mc7UVioPPHcEKPA="}}},
		{name: "multiValueHeaders each value a header line",
			payload:    `{"statusCode":200,"multiValueHeaders":{"X-Multi":["a","b","a"],"Content-Type":["application/json"]},"body":"[]"}`,
			wantStatus: 200, wantType: "application/json", wantBody: "[]",
			wantHeaders: map[string][]string{"X-Multi": {"a", "b", "a"}}},
		{name: "headers and multiValueHeaders merge",
			payload: `{"statusCode":200,
				"headers":{"X-Both":"c","X-Dup":"a","X-Only":"s","x-case":"2"},
				"multiValueHeaders":{"X-Both":["a","b"],"X-Dup":["a","b"],"X-Case":["1"],"X-Empty":[],"X-Null":null}}`,
			wantStatus: 200, wantType: "-",
			wantHeaders: map[string][]string{"X-Both": {"a", "b", "c"}, "X-Dup": {"a", "b"}, "X-Only": {"s"}, "X-Case": {"1", "2"}},
			wantAbsent:  []string{"X-Empty", "X-Null"}},
		{name: "set-cookie values are separate headers",
			payload: `{"statusCode":302,"headers":{"Location":"/x","Set-Cookie":"c=3"},
				"multiValueHeaders":{"Set-Cookie":["a=1; Path=/","b=2; HttpOnly","a=1; Path=/"]}}`,
			wantStatus: 302, wantType: "-",
			wantHeaders: map[string][]string{"Location": {"/x"}, "Set-Cookie": {"a=1; Path=/", "b=2; HttpOnly", "a=1; Path=/", "c=3"}}},
		{name: "cookies field ignored", payload: `{"statusCode":200,"cookies":["a=1"]}`,
			wantStatus: 200, wantType: "-", wantAbsent: []string{"Set-Cookie"}},
		{name: "base64 body decoded",
			payload:    `{"statusCode":200,"headers":{"content-type":"application/octet-stream"},"body":"AP8Q","isBase64Encoded":true}`,
			wantStatus: 200, wantType: "application/octet-stream", wantBody: "\x00\xff\x10"},
		{name: "isBase64Encoded false keeps body", payload: `{"statusCode":200,"body":"AP8Q","isBase64Encoded":false}`,
			wantStatus: 200, wantType: "-", wantBody: "AP8Q"},
		{name: "framing headers dropped from both",
			payload:    `{"statusCode":200,"headers":{"Content-Length":"999","Upgrade":"h2c"},"multiValueHeaders":{"Transfer-Encoding":["chunked"],"Connection":["close"],"Keep-Alive":["timeout=5"]},"body":"short"}`,
			wantStatus: 200, wantType: "-", wantBody: "short",
			wantAbsent: []string{"Transfer-Encoding", "Upgrade", "Keep-Alive"}},
		{name: "function cannot replace apigw-requestid",
			payload:    `{"statusCode":200,"multiValueHeaders":{"apigw-requestid":["forged"]}}`,
			wantStatus: 200, wantType: "-",
			wantHeaders: map[string][]string{"Apigw-Requestid": {"Mc7UVioPPHcEKPA="}}},
		{name: "surrounding whitespace", payload: " \n{\"statusCode\":200,\"body\":\"x\"}\n", wantStatus: 200, wantType: "-", wantBody: "x"},
		{name: "status 599", payload: `{"statusCode":599}`, wantStatus: 599, wantType: "-"},

		// No inference: what payload 2.0 would take as a body is malformed in 1.0.
		{name: "missing statusCode", payload: `{"ok":true}`, wantStatus: 500},
		{name: "statusCode key is case-sensitive", payload: `{"StatusCode":200}`, wantStatus: 500},
		{name: "JSON string", payload: `"hi"`, wantStatus: 500},
		{name: "JSON array", payload: `[{"statusCode":200}]`, wantStatus: 500},
		{name: "JSON null", payload: `null`, wantStatus: 500},
		{name: "not JSON", payload: `hello`, wantStatus: 500},
		{name: "empty payload", payload: ``, wantStatus: 500},
		{name: "truncated JSON", payload: `{"statusCode":200`, wantStatus: 500},
		{name: "trailing garbage", payload: `{"statusCode":200} x`, wantStatus: 500},
		{name: "statusCode string", payload: `{"statusCode":"200"}`, wantStatus: 500},
		{name: "statusCode fraction", payload: `{"statusCode":200.5}`, wantStatus: 500},
		{name: "statusCode null", payload: `{"statusCode":null}`, wantStatus: 500},
		{name: "statusCode 99", payload: `{"statusCode":99}`, wantStatus: 500},
		{name: "statusCode 600", payload: `{"statusCode":600}`, wantStatus: 500},
		{name: "headers not an object", payload: `{"statusCode":200,"headers":["x"]}`, wantStatus: 500},
		{name: "header value array", payload: `{"statusCode":200,"headers":{"a":["b"]}}`, wantStatus: 500},
		{name: "header value null", payload: `{"statusCode":200,"headers":{"a":null}}`, wantStatus: 500},
		{name: "multiValueHeaders not an object", payload: `{"statusCode":200,"multiValueHeaders":"x"}`, wantStatus: 500},
		{name: "multiValueHeaders value not an array", payload: `{"statusCode":200,"multiValueHeaders":{"a":"b"}}`, wantStatus: 500},
		{name: "multiValueHeaders element object", payload: `{"statusCode":200,"multiValueHeaders":{"a":[{}]}}`, wantStatus: 500},
		{name: "multiValueHeaders element null", payload: `{"statusCode":200,"multiValueHeaders":{"a":["b",null]}}`, wantStatus: 500},
		{name: "multiValueHeaders CRLF injection", payload: `{"statusCode":200,"multiValueHeaders":{"a":["b\r\nX-Evil: 1"]}}`,
			wantStatus: 500, wantAbsent: []string{"X-Evil"}},
		{name: "multiValueHeaders bad name with no values", payload: `{"statusCode":200,"multiValueHeaders":{"bad name":[]}}`, wantStatus: 500},
		{name: "header name with space", payload: `{"statusCode":200,"headers":{"bad name":"x"}}`, wantStatus: 500},
		{name: "body not a string", payload: `{"statusCode":200,"body":{"a":1}}`, wantStatus: 500},
		{name: "isBase64Encoded not a bool", payload: `{"statusCode":200,"body":"","isBase64Encoded":"true"}`, wantStatus: 500},
		{name: "invalid base64", payload: `{"statusCode":200,"body":"!!!","isBase64Encoded":true}`, wantStatus: 500},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := newResponseV1TestApp(tt.payload).Test(httptest.NewRequest("GET", "/", nil), -1)
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

// TestWriteResponseV1Errors checks the error of each kind of malformed output.
func TestWriteResponseV1Errors(t *testing.T) {
	app := fiber.New()
	for _, payload := range []string{`{"body":"x"}`, `{"statusCode":"200"}`, `"hi"`, `{"statusCode":200,"multiValueHeaders":{"a":"b"}}`} {
		fctx := &fasthttp.RequestCtx{}
		c := app.AcquireCtx(fctx)
		if err := WriteResponseV1(c, []byte(payload)); !errors.Is(err, ErrMalformedResponse) {
			t.Errorf("WriteResponseV1(%s) = %v, want ErrMalformedResponse", payload, err)
		}
		app.ReleaseCtx(c)
	}
}

// TestWriteResponseV1WritesNothingOnError checks that a malformed payload leaves the response
// as it was.
func TestWriteResponseV1WritesNothingOnError(t *testing.T) {
	app := fiber.New()
	for _, payload := range []string{
		`{"statusCode":201,"headers":{"X-A":"1"},"multiValueHeaders":{"X-B":["1"],"bad name":["x"]},"body":"b"}`,
		`{"statusCode":201,"multiValueHeaders":{"Set-Cookie":["a=1"]},"body":"!","isBase64Encoded":true}`,
		`{"headers":{"X-A":"1"},"body":"b"}`,
	} {
		fctx := &fasthttp.RequestCtx{}
		c := app.AcquireCtx(fctx)
		c.Set("X-Before", "kept")
		err := WriteResponseV1(c, []byte(payload))
		if !errors.Is(err, ErrMalformedResponse) {
			t.Errorf("WriteResponseV1(%s) = %v, want ErrMalformedResponse", payload, err)
		}
		r := &fctx.Response
		if r.StatusCode() != 200 || len(r.Body()) != 0 || r.Header.Peek("X-A") != nil || r.Header.Peek("X-B") != nil ||
			r.Header.PeekCookie("a") != nil || string(r.Header.Peek("X-Before")) != "kept" {
			t.Errorf("WriteResponseV1(%s) changed the response:\n%s", payload, r.String())
		}
		app.ReleaseCtx(c)
	}
}

// TestWriteResponseV1ReplacesHeaders checks that a header the function sets replaces the one on
// the response, all of its values, and that Set-Cookie values are added.
func TestWriteResponseV1ReplacesHeaders(t *testing.T) {
	app := fiber.New()
	fctx := &fasthttp.RequestCtx{}
	c := app.AcquireCtx(fctx)
	defer app.ReleaseCtx(c)
	c.Set("X-Set", "before")
	c.Response().Header.Add("X-Set", "before2")
	c.Response().Header.Add(fiber.HeaderSetCookie, "pre=1")
	if err := WriteResponseV1(c, []byte(`{"statusCode":200,"multiValueHeaders":{"x-set":["1","2"],"Set-Cookie":["a=1"]}}`)); err != nil {
		t.Fatal(err)
	}
	var got, cookies []string
	for k, v := range fctx.Response.Header.All() {
		switch string(k) {
		case "X-Set":
			got = append(got, string(v))
		case fiber.HeaderSetCookie:
			cookies = append(cookies, string(v))
		}
	}
	wantSlice(t, "X-Set", got, []string{"1", "2"})
	wantSlice(t, "Set-Cookie", cookies, []string{"pre=1", "a=1"})
}

// TestWriteResponseV1AWSLambdaGo writes responses made by aws-lambda-go's
// events.APIGatewayProxyResponse, as a Go function for payload 1.0 returns them.
func TestWriteResponseV1AWSLambdaGo(t *testing.T) {
	out, err := json.Marshal(events.APIGatewayProxyResponse{
		StatusCode:        200,
		Headers:           map[string]string{"Content-Type": "text/html", "X-One": "1"},
		MultiValueHeaders: map[string][]string{"Set-Cookie": {"a=1", "b=2"}, "X-Nil": nil},
		Body:              "<p>hi</p>",
	})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := newResponseV1TestApp(string(out)).Test(httptest.NewRequest("GET", "/", nil), -1)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || string(body) != "<p>hi</p>" {
		t.Fatalf("status %d, body %q (error %q)", resp.StatusCode, body, resp.Header.Get("X-Error"))
	}
	wantString(t, "Content-Type", resp.Header.Get("Content-Type"), "text/html")
	wantString(t, "X-One", resp.Header.Get("X-One"), "1")
	wantSlice(t, "Set-Cookie", resp.Header.Values("Set-Cookie"), []string{"a=1", "b=2"})
}

func FuzzWriteResponseV1(f *testing.F) {
	for _, s := range []string{
		`{"statusCode":200}`, `{"ok":true}`, `"hi"`, `null`, ``, `{`,
		`{"statusCode":200,"headers":{"a":"b","c":1,"Content-Type":"text/plain"},"multiValueHeaders":{"a":["x","b"],"Set-Cookie":["x=1","y=2"]},"body":"hey"}`,
		`{"statusCode":204,"body":"ignored"}`,
		`{"statusCode":101,"multiValueHeaders":{"Upgrade":["websocket"],"Connection":["Upgrade"]}}`,
		`{"statusCode":200,"body":"AP8=","isBase64Encoded":true}`,
		`{"statusCode":200,"multiValueHeaders":{"Content-Length":["0","5"],"Transfer-Encoding":["chunked"]},"body":"abc"}`,
		`{"statusCode":200,"multiValueHeaders":{"x":["\u0000"]}}`,
		`{"statusCode":200,"multiValueHeaders":{"Content-Type":["a/b","c/d"],"Server":["s"],"Date":["d"]}}`,
	} {
		f.Add([]byte(s))
	}
	app := fiber.New()
	f.Fuzz(func(t *testing.T, payload []byte) {
		fctx := &fasthttp.RequestCtx{}
		c := app.AcquireCtx(fctx)
		defer app.ReleaseCtx(c)
		if err := WriteResponseV1(c, payload); err != nil {
			if !errors.Is(err, ErrMalformedResponse) {
				t.Fatalf("error %v does not wrap ErrMalformedResponse", err)
			}
			if fctx.Response.StatusCode() != 200 || len(fctx.Response.Body()) != 0 {
				t.Fatalf("failed WriteResponseV1 changed the response")
			}
			return
		}
		status := fctx.Response.StatusCode()
		if status < 200 || status > 599 {
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
		if status != 204 && status != 304 && !bytes.Equal(body, fctx.Response.Body()) {
			t.Fatalf("body %q on the wire, want %q", body, fctx.Response.Body())
		}
		next, err := http.ReadResponse(br, req)
		if err != nil || next.StatusCode != 299 {
			t.Fatalf("response framing swallowed the next response: %v", err)
		}
	})
}
