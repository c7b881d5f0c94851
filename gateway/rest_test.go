package gateway

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/events"
	"github.com/prometheus/client_golang/prometheus"

	"gatehouse.dev/gatehouse/internal/apikeys"
	"gatehouse.dev/gatehouse/internal/bus"
	"gatehouse.dev/gatehouse/internal/spec"
	"gatehouse.dev/gatehouse/internal/stackfile"
)

// REST APIs (type: rest) through the gateway. Each test writes its API as a stack file writes
// it, reads it as the wiring does (stackfile.ParseAPI, then FromSpec), serves it on 127.0.0.1
// and sends real HTTP requests. Functions and authorizers are fakeInvoker scripts, which record
// every invocation, so that "the function did not run" and "the authorizer ran once" are
// checked, not assumed.

// parseRESTAPI reads def, the definition of a REST API named name (an entry of a stack file's apis:)
// whose functions are fns, into the gateway's API.
func parseRESTAPI(t *testing.T, name, def string, usagePlans bool, fns ...string) API {
	t.Helper()
	a, err := stackfile.ParseAPI(name+".yaml", []byte(def), "", name, spec.FunctionsEnv(fns, usagePlans))
	if err != nil {
		t.Fatalf("ParseAPI:\n%v", err)
	}
	if a.Type != spec.APITypeREST {
		t.Fatalf("API type %q, want rest", a.Type)
	}
	return FromSpec("", a)
}

// startREST serves the REST API "shop" of def, whose functions are fns, with the rest of cfg;
// with cfg.UsagePlans the API may require keys. Its functions answer {"statusCode":200} until the
// test sets a script.
func startREST(t *testing.T, cfg Config, def string, fns ...string) (*testServer, *fakeInvoker) {
	t.Helper()
	cfg.APIs = []API{parseRESTAPI(t, "shop", def, cfg.UsagePlans != nil, fns...)}
	inv := &fakeInvoker{}
	return startServer(t, cfg, inv), inv
}

// wantRESTHeaders checks what every response of a REST API carries: a request id in
// x-amzn-RequestId, and no apigw-requestid (an HTTP API's header). It returns the request id.
func wantRESTHeaders(t *testing.T, what string, r response) string {
	t.Helper()
	id := r.header.Get(HeaderRESTRequestID)
	if !requestIDPattern.MatchString(id) {
		t.Errorf("%s: x-amzn-RequestId %q, want a request id", what, id)
	}
	if v, ok := r.header[http.CanonicalHeaderKey(HeaderRequestID)]; ok {
		t.Errorf("%s: apigw-requestid %q on a REST API's response", what, v)
	}
	return id
}

// wantRESTError checks an answer the gateway made itself in REST's shape: status, the body
// {"message": message} exactly (message "" stands for null), JSON, x-amzn-ErrorType errType
// ("" for none) and the request id headers.
func wantRESTError(t *testing.T, what string, r response, status int, message, errType string) {
	t.Helper()
	want := `{"message":null}`
	if message != "" {
		want = string(mustJSON(t, map[string]string{"message": message}))
	}
	if r.status != status || r.body != want {
		t.Errorf("%s: %d %s, want %d %s", what, r.status, r.body, status, want)
	}
	wantRESTErrorHeaders(t, what, r, errType)
}

// wantRESTErrorHeaders checks the headers of a REST error: JSON, x-amzn-ErrorType errType (""
// for none) and the request id headers.
func wantRESTErrorHeaders(t *testing.T, what string, r response, errType string) {
	t.Helper()
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("%s: Content-Type %q, want application/json", what, ct)
	}
	if got := r.header.Values("x-amzn-ErrorType"); errType == "" && len(got) > 0 || errType != "" && !slices.Equal(got, []string{errType}) {
		t.Errorf("%s: x-amzn-ErrorType %q, want %q", what, got, errType)
	}
	wantRESTHeaders(t, what, r)
}

// wantRESTDenial checks an authorizer's refusal: status, x-amzn-ErrorType and the message. The
// key of the message is matched without its case: API Gateway has been observed to spell it
// "Message" in these answers (reference, section 3), docs/stack-file.md spells it "message", and
// either passes here.
func wantRESTDenial(t *testing.T, what string, r response, status int, message, errType string) {
	t.Helper()
	var body map[string]any
	if err := json.Unmarshal([]byte(r.body), &body); err != nil || len(body) != 1 {
		t.Errorf("%s: body %s, want one message", what, r.body)
	}
	var got struct {
		Message string `json:"message"` // matches "Message" too
	}
	json.Unmarshal([]byte(r.body), &got)
	if r.status != status || got.Message != message {
		t.Errorf("%s: %d %s, want %d and the message %q", what, r.status, r.body, status, message)
	}
	wantRESTErrorHeaders(t, what, r, errType)
}

// functionFailure is the error the bus returns when a function fails with errorType and
// message, as a worker reports it.
func functionFailure(errorType, message string) error {
	detail, _ := json.Marshal(bus.FunctionFailure{ErrorType: errorType, ErrorMessage: message})
	return &bus.RemoteError{Code: bus.CodeFunctionError, Detail: string(detail)}
}

// iamPolicy is a REST authorizer's answer: principal, one statement of effect on resource (a
// string or a list), and ctx (none when nil).
func iamPolicy(principal, effect string, resource any, ctx map[string]any) string {
	out := map[string]any{
		"principalId": principal,
		"policyDocument": map[string]any{"Version": "2012-10-17", "Statement": []any{
			map[string]any{"Action": "execute-api:Invoke", "Effect": effect, "Resource": resource},
		}},
	}
	if ctx != nil {
		out["context"] = ctx
	}
	b, _ := json.Marshal(out)
	return string(b)
}

// restARN is the method ARN of the API "shop" for a stage, method and path, in the region and
// account the gateway defaults to.
func restARN(stage, method, path string) string {
	return "arn:aws:execute-api:us-east-1:000000000000:shop/" + stage + "/" + method + path
}

// decodeV1 decodes a route's payload 1.0 event as a Lambda handler written for REST APIs does.
func decodeV1(t *testing.T, inv bus.Invocation) events.APIGatewayProxyRequest {
	t.Helper()
	var ev events.APIGatewayProxyRequest
	if err := json.Unmarshal(inv.Payload, &ev); err != nil {
		t.Fatalf("event does not decode into events.APIGatewayProxyRequest: %v\n%s", err, inv.Payload)
	}
	return ev
}

// scripted is a script that answers each function with its entry of outs (a function missing
// from outs answers {"statusCode":200}), read under a lock so that a test may change an answer
// between requests with set.
type scripted struct {
	mu   sync.Mutex
	outs map[string]string
	errs map[string]error
}

func (s *scripted) set(function, out string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.outs == nil {
		s.outs = map[string]string{}
	}
	s.outs[function] = out
	delete(s.errs, function)
}

func (s *scripted) fail(function string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.errs == nil {
		s.errs = map[string]error{}
	}
	s.errs[function] = err
}

func (s *scripted) script(_ context.Context, inv bus.Invocation) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.errs[inv.Function]; err != nil {
		return nil, err
	}
	if out, ok := s.outs[inv.Function]; ok {
		return []byte(out), nil
	}
	return []byte(`{"statusCode":200}`), nil
}

// Golden files of REST APIs.
//
// Each testdata/rest/*.txtar archive is one request through the gateway serving restGoldenDef:
//
//   - the comment says what the archive shows.
//   - request and request-body.base64: the request, as TestGolden reads them.
//   - authorizer: what the authorizer functions (auth, reqauth) answer; output: what the route's
//     function answers.
//   - authorizer-event (written by -update): the event the authorizer received, absent when none
//     ran.
//   - event (written by -update): the payload 1.0 event the route's function received, absent
//     when it did not run.
//   - response (written by -update): what the client got, as TestGolden writes it, with
//     x-amzn-RequestId as REQUEST_ID.
//
// Volatile fields are checked, then normalised: requestContext.requestId and extendedRequestId
// (equal to x-amzn-RequestId and the invocation's request id) are REQUEST_ID, requestTime and
// requestTimeEpoch (which must agree) are TIME and 0, X-Forwarded-Port (the listener's port) is
// PORT. Each route event must also decode into events.APIGatewayProxyRequest and pass the
// archive's entry of restGoldenChecks.
//
// go test ./gateway -run TestRESTGolden -update rewrites authorizer-event, event and response.

// restGoldenDef is the REST API of the archives.
const restGoldenDef = `
type: rest
stages:
  dev:
    variables: {env: dev, table: pets-dev}
binaryMediaTypes: [image/png]
authorizers:
  bearer:
    type: token
    function: auth
    identityValidationExpression: "^Bearer [a-z0-9-]+$"
  tenant:
    type: request
    function: reqauth
    identitySources: [$request.header.X-Tenant, $request.querystring.key]
routes:
  GET /pets/{id}:
    function: pets
    authorization: {type: function, authorizer: bearer}
  GET /files/{path+}:
    function: files
  POST /upload:
    function: upload
  GET /tenants/{tenant}/items:
    function: items
    authorization: {type: function, authorizer: tenant}
`

var restGoldenFunctions = []string{"auth", "reqauth", "pets", "files", "upload", "items"}

// restGoldenChecks holds, for each archive, checks of the route's event as a Lambda handler
// decodes it, and of the response.
var restGoldenChecks = map[string]func(t *testing.T, ev events.APIGatewayProxyRequest, r response){
	"token-authorizer": func(t *testing.T, ev events.APIGatewayProxyRequest, r response) {
		wantString(t, "resource", ev.Resource, "/pets/{id}")
		wantString(t, "path", ev.Path, "/pets/7")
		wantString(t, "httpMethod", ev.HTTPMethod, "GET")
		wantSlice(t, "multiValueHeaders[X-Multi]", ev.MultiValueHeaders["X-Multi"], []string{"one", "two"})
		wantString(t, "headers[X-Multi]", ev.Headers["X-Multi"], "two")
		wantString(t, "headers[Authorization]", ev.Headers["Authorization"], "Bearer tok-1")
		wantSlice(t, "multiValueQueryStringParameters[a]", ev.MultiValueQueryStringParameters["a"], []string{"1", "2"})
		wantString(t, "queryStringParameters[a]", ev.QueryStringParameters["a"], "2")
		wantString(t, "queryStringParameters[b]", ev.QueryStringParameters["b"], "x y")
		wantMap(t, "pathParameters", ev.PathParameters, map[string]string{"id": "7"})
		wantMap(t, "stageVariables", ev.StageVariables, map[string]string{"env": "dev", "table": "pets-dev"})
		rc := ev.RequestContext
		wantString(t, "requestContext.stage", rc.Stage, "dev")
		wantString(t, "requestContext.resourcePath", rc.ResourcePath, "/pets/{id}")
		wantString(t, "requestContext.path", rc.Path, "/dev/pets/7")
		wantString(t, "requestContext.identity.sourceIp", rc.Identity.SourceIP, "127.0.0.1")
		wantString(t, "requestContext.requestId", rc.RequestID, r.header.Get(HeaderRESTRequestID))
		wantString(t, "requestContext.apiId", rc.APIID, "shop")
		if len(rc.ResourceID) != 6 {
			t.Errorf("requestContext.resourceId %q, want 6 characters", rc.ResourceID)
		}
		// Context values are stringified, as API Gateway passes them on.
		a := rc.Authorizer
		if a["principalId"] != "user-1" || a["tier"] != "gold" || a["level"] != "3" || a["admin"] != "true" || len(a) != 4 {
			t.Errorf("requestContext.authorizer %v, want principalId and the context's keys, flat, as strings", a)
		}
		wantBool(t, "isBase64Encoded", ev.IsBase64Encoded, false)
		// The response: statusCode, headers and every multiValueHeaders value.
		if r.status != 201 || r.body != `{"id":"7"}` {
			t.Errorf("response %d %s", r.status, r.body)
		}
		wantSlice(t, "Set-Cookie", r.header.Values("Set-Cookie"), []string{"a=1", "b=2"})
		wantSlice(t, "X-Many", r.header.Values("X-Many"), []string{"m1", "m2"})
		wantString(t, "X-One", r.header.Get("X-One"), "1")
	},
	"greedy-binary-response": func(t *testing.T, ev events.APIGatewayProxyRequest, r response) {
		wantString(t, "resource", ev.Resource, "/files/{path+}")
		wantString(t, "path", ev.Path, "/files/docs/a%20b/pic.png")
		wantMap(t, "pathParameters", ev.PathParameters, map[string]string{"path": "docs/a b/pic.png"})
		if ev.RequestContext.Authorizer != nil {
			t.Errorf("authorizer %v on a route without one", ev.RequestContext.Authorizer)
		}
		// image/png is a binary media type: the client gets the bytes.
		if want := "\x89PNG\r\n\x1a\n"; r.body != want {
			t.Errorf("body %q, want the decoded PNG signature %q", r.body, want)
		}
	},
	"post-json": func(t *testing.T, ev events.APIGatewayProxyRequest, r response) {
		wantString(t, "body", ev.Body, `{"name":"rex"}`)
		wantBool(t, "isBase64Encoded", ev.IsBase64Encoded, false)
		if ev.QueryStringParameters != nil || ev.MultiValueQueryStringParameters != nil || ev.PathParameters != nil {
			t.Errorf("query %v %v and path parameters %v, want null", ev.QueryStringParameters, ev.MultiValueQueryStringParameters, ev.PathParameters)
		}
		// text/plain is not a binary media type: a REST API sends the base64 text as it is.
		if r.body != "aGVsbG8=" {
			t.Errorf("body %q, want the base64 text", r.body)
		}
	},
	"post-png": func(t *testing.T, ev events.APIGatewayProxyRequest, _ response) {
		wantBool(t, "isBase64Encoded", ev.IsBase64Encoded, true)
		wantString(t, "body", ev.Body, "iVBORw0KGgoAAAANSUhEUg==")
	},
	"request-authorizer": func(t *testing.T, ev events.APIGatewayProxyRequest, _ response) {
		wantString(t, "resource", ev.Resource, "/tenants/{tenant}/items")
		wantString(t, "path", ev.Path, "/tenants/acme/items")
		a := ev.RequestContext.Authorizer
		if a["principalId"] != "acme-admin" || a["plan"] != "pro" || len(a) != 2 {
			t.Errorf("requestContext.authorizer %v", a)
		}
	},
}

func TestRESTGolden(t *testing.T) {
	names, err := filepath.Glob("testdata/rest/*.txtar")
	if err != nil {
		t.Fatal(err)
	}
	if len(names) == 0 {
		t.Fatal("no golden files")
	}
	ts, inv := startREST(t, Config{}, restGoldenDef, restGoldenFunctions...)
	seen := map[string]bool{}
	for _, name := range names {
		base := strings.TrimSuffix(filepath.Base(name), ".txtar")
		seen[base] = true
		t.Run(base, func(t *testing.T) {
			data, err := os.ReadFile(name)
			if err != nil {
				t.Fatal(err)
			}
			a := parseArchive(data)
			output, _ := a.get("output")
			authOut, _ := a.get("authorizer")
			inv.setScript(func(_ context.Context, c bus.Invocation) ([]byte, error) {
				if c.Function == "auth" || c.Function == "reqauth" {
					return authOut, nil
				}
				return output, nil
			})
			r := ts.do(t, goldenRequest(t, a, ts.base))
			requestID := wantRESTHeaders(t, "response", r)

			var event, authEvent []byte
			var ev events.APIGatewayProxyRequest
			for _, call := range inv.invocations() {
				if call.RequestID != requestID {
					t.Errorf("%s invoked with request id %q, want %q", call.Function, call.RequestID, requestID)
				}
				switch {
				case call.Function == "auth" || call.Function == "reqauth":
					if authEvent != nil {
						t.Errorf("the authorizer ran twice")
					}
					authEvent = normaliseRESTEvent(t, call.Payload, requestID, ts.port)
				case event != nil:
					t.Errorf("a function ran twice")
				default:
					event = normaliseRESTEvent(t, call.Payload, requestID, ts.port)
					ev = decodeV1(t, call)
				}
			}
			if check := restGoldenChecks[base]; check == nil {
				t.Error("no entry in restGoldenChecks")
			} else if event != nil {
				check(t, ev, r)
			}

			got := map[string][]byte{"authorizer-event": authEvent, "event": event, "response": dumpRESTResponse(t, r, requestID)}
			files := []string{"authorizer-event", "event", "response"}
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
						t.Errorf("%s: got one, want none:\n%s", f, got[f])
					case got[f] == nil:
						t.Errorf("%s: got none, want:\n%s", f, want)
					default:
						t.Errorf("%s differs:\n--- got\n%s--- want\n%s", f, got[f], want)
					}
				}
			}
		})
	}
	for name := range restGoldenChecks {
		if !seen[name] {
			t.Errorf("restGoldenChecks[%q] has no archive", name)
		}
	}
}

// normaliseRESTEvent checks the volatile fields of an event (a route's or an authorizer's) and
// replaces them, as the REST golden files hold them.
func normaliseRESTEvent(t *testing.T, payload []byte, requestID, port string) []byte {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.UseNumber()
	var ev map[string]any
	if err := dec.Decode(&ev); err != nil {
		t.Fatalf("event %s: %v", payload, err)
	}
	if rc, ok := ev["requestContext"].(map[string]any); ok {
		for _, k := range []string{"requestId", "extendedRequestId"} {
			if rc[k] != requestID {
				t.Errorf("requestContext.%s %v, want the x-amzn-RequestId %q", k, rc[k], requestID)
			}
			rc[k] = "REQUEST_ID"
		}
		at, err := time.Parse(eventTimeLayout, fmt.Sprint(rc["requestTime"]))
		epoch, err2 := rc["requestTimeEpoch"].(json.Number).Int64()
		if err != nil || err2 != nil || at.Unix() != epoch/1000 {
			t.Errorf("requestContext.requestTime %v and requestTimeEpoch %v disagree (%v, %v)", rc["requestTime"], rc["requestTimeEpoch"], err, err2)
		}
		rc["requestTime"], rc["requestTimeEpoch"] = "TIME", 0
	}
	b, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	return normaliseEventV1(t, b, port)
}

// dumpRESTResponse writes a response as the REST archives hold it: as dumpResponse, with the
// x-amzn-RequestId (checked to be requestID) as REQUEST_ID.
func dumpRESTResponse(t *testing.T, r response, requestID string) []byte {
	t.Helper()
	var b bytes.Buffer
	fmt.Fprintf(&b, "HTTP/1.1 %d %s\n", r.status, http.StatusText(r.status))
	names := make([]string, 0, len(r.header))
	for k := range r.header {
		if k != "Date" {
			names = append(names, k)
		}
	}
	slices.Sort(names)
	for _, k := range names {
		for _, v := range r.header[k] {
			if k == http.CanonicalHeaderKey(HeaderRESTRequestID) {
				if v != requestID {
					t.Errorf("x-amzn-RequestId %q, want %q", v, requestID)
				}
				v = "REQUEST_ID"
			}
			fmt.Fprintf(&b, "%s: %s\n", k, v)
		}
	}
	b.WriteString("\n")
	if utf8.ValidString(r.body) {
		b.WriteString(r.body)
	} else {
		b.WriteString("[base64] " + base64.StdEncoding.EncodeToString([]byte(r.body)))
	}
	b.WriteString("\n")
	return b.Bytes()
}

// restBasicDef is a REST API with a dev stage and one function route per need.
const restBasicDef = `
type: rest
stages:
  dev:
    variables: {x: vx}
binaryMediaTypes: [image/png]
routes:
  ANY /echo: {function: echo}
  GET /pets/{id}: {function: pets}
  GET /slow:
    function: slow
    timeout: 200ms
`

var restBasicFunctions = []string{"echo", "pets", "slow"}

// A REST function's payload 1.0 response, as the client gets it.
func TestRESTResponses(t *testing.T) {
	ts, inv := startREST(t, Config{}, restBasicDef, restBasicFunctions...)
	png := "\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"
	png64 := base64.StdEncoding.EncodeToString([]byte(png))
	tests := []struct {
		name    string
		output  string
		headers []string // of the request
		status  int
		want    map[string][]string // response headers
		body    string
	}{
		{
			name:   "statusCode, headers and multiValueHeaders",
			output: `{"statusCode":202,"headers":{"Content-Type":"text/plain","X-One":"1","X-Both":"h"},"multiValueHeaders":{"X-Many":["m1","m2"],"X-Both":["m"]},"body":"accepted"}`,
			status: 202,
			want:   map[string][]string{"Content-Type": {"text/plain"}, "X-One": {"1"}, "X-Many": {"m1", "m2"}, "X-Both": {"m", "h"}},
			body:   "accepted",
		},
		{
			name:   "base64 body of a binary media type is decoded",
			output: `{"statusCode":200,"headers":{"Content-Type":"image/png"},"isBase64Encoded":true,"body":"` + png64 + `"}`,
			status: 200, want: map[string][]string{"Content-Type": {"image/png"}}, body: png,
		},
		{
			name:   "base64 body of another type reaches the client as base64 text",
			output: `{"statusCode":200,"headers":{"Content-Type":"application/octet-stream"},"isBase64Encoded":true,"body":"` + png64 + `"}`,
			status: 200, want: map[string][]string{"Content-Type": {"application/octet-stream"}}, body: png64,
		},
		{
			name:    "a client that accepts a binary media type gets the bytes",
			output:  `{"statusCode":200,"headers":{"Content-Type":"application/octet-stream"},"isBase64Encoded":true,"body":"` + png64 + `"}`,
			headers: []string{"Accept", "image/png"},
			status:  200, want: map[string][]string{"Content-Type": {"application/octet-stream"}}, body: png,
		},
		{
			name:    "an Accept of another type changes nothing",
			output:  `{"statusCode":200,"headers":{"Content-Type":"application/octet-stream"},"isBase64Encoded":true,"body":"` + png64 + `"}`,
			headers: []string{"Accept", "application/json"},
			status:  200, body: png64,
		},
		{
			name:   "binary media type with parameters",
			output: `{"statusCode":200,"headers":{"content-type":"IMAGE/PNG; q=1"},"isBase64Encoded":true,"body":"` + png64 + `"}`,
			status: 200, body: png,
		},
		{
			name:   "a text body is sent as it is",
			output: `{"statusCode":200,"body":"aGVsbG8="}`,
			status: 200, body: "aGVsbG8=",
		},
		{
			name:   "function's own 500 is passed through",
			output: `{"statusCode":500,"headers":{"Content-Type":"application/json"},"body":"{\"error\":\"mine\"}"}`,
			status: 500, want: map[string][]string{"Content-Type": {"application/json"}}, body: `{"error":"mine"}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inv.setScript(answer(tt.output))
			r := ts.get(t, "/dev/echo", tt.headers...)
			if r.status != tt.status || r.body != tt.body {
				t.Errorf("%d %q, want %d %q", r.status, r.body, tt.status, tt.body)
			}
			for k, v := range tt.want {
				wantSlice(t, k, r.header.Values(k), v)
			}
			if _, ok := r.header["Content-Encoding"]; ok {
				t.Errorf("Content-Encoding %q without minimumCompressionSize", r.header.Get("Content-Encoding"))
			}
			if r.header.Get("x-amzn-ErrorType") != "" {
				t.Errorf("x-amzn-ErrorType %q on a function's answer", r.header.Get("x-amzn-ErrorType"))
			}
			wantRESTHeaders(t, tt.name, r)
			if n := len(inv.invocations()); n != 1 {
				t.Errorf("%d invocations, want 1", n)
			}
		})
	}
}

// A REST event's body is base64 exactly when its Content-Type is a binary media type.
func TestRESTRequestBodies(t *testing.T) {
	ts, inv := startREST(t, Config{}, restBasicDef, restBasicFunctions...)
	raw := "\x89PNG\r\n\x1a\n\xff\x00"
	tests := []struct {
		name, contentType, body string
		wantBody                string
		wantBase64              bool
	}{
		{"binary media type", "image/png", raw, base64.StdEncoding.EncodeToString([]byte(raw)), true},
		{"binary media type with parameters", "image/PNG; name=x", raw, base64.StdEncoding.EncodeToString([]byte(raw)), true},
		{"JSON", "application/json", `{"a":"<b>"}`, `{"a":"<b>"}`, false},
		// An HTTP API would send these base64 (section 1.1); a REST API only binary media types.
		{"form", "application/x-www-form-urlencoded", "a=1&b=2", "a=1&b=2", false},
		{"no content type", "", "plain", "plain", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inv.setScript(nil)
			req := ts.request(t, "POST", "/dev/echo", tt.body)
			if tt.contentType != "" {
				req.Header.Set("Content-Type", tt.contentType)
			}
			if r := ts.do(t, req); r.status != 200 {
				t.Fatalf("%v", r)
			}
			calls := inv.invocations()
			if len(calls) != 1 {
				t.Fatalf("%d invocations", len(calls))
			}
			ev := decodeV1(t, calls[0])
			wantString(t, "body", ev.Body, tt.wantBody)
			wantBool(t, "isBase64Encoded", ev.IsBase64Encoded, tt.wantBase64)
			wantString(t, "httpMethod", ev.HTTPMethod, "POST")
			wantString(t, "resource", ev.Resource, "/echo")
		})
	}
}

// The gateway's own answers on a REST API: REST's statuses and bodies, x-amzn-ErrorType and
// x-amzn-RequestId.
func TestRESTErrors(t *testing.T) {
	ts, inv := startREST(t, Config{}, restBasicDef, restBasicFunctions...)
	t.Run("no route", func(t *testing.T) {
		inv.setScript(nil)
		for _, p := range []string{"/dev/nowhere", "/dev/pets", "/dev/pets/1/more", "/dev/", "/dev"} {
			wantRESTError(t, p, ts.get(t, p), 403, "Missing Authentication Token", "MissingAuthenticationTokenException")
		}
		// A method the resource does not have.
		r := ts.do(t, ts.request(t, "DELETE", "/dev/pets/1", ""))
		wantRESTError(t, "DELETE /dev/pets/1", r, 403, "Missing Authentication Token", "MissingAuthenticationTokenException")
		if n := len(inv.invocations()); n != 0 {
			t.Errorf("%d invocations, want none", n)
		}
	})
	t.Run("no stage", func(t *testing.T) {
		// Known bug (gateway/server.go, serve): a path whose first segment names no stage of a REST
		// API is refused before the request is known to be a REST API's, with an HTTP API's 404
		// {"message":"Not Found"} and apigw-requestid; API Gateway answers it as a missing route
		// (reference section 3: "No stage / no route").
		wantRESTError(t, "unknown stage", ts.get(t, "/prod/pets/1"), 403, "Missing Authentication Token", "MissingAuthenticationTokenException")
	})
	t.Run("body too large", func(t *testing.T) {
		// Known bug (gateway/server.go, handleServerError): a body over Config.BodyLimit is refused
		// before the request is known to be a REST API's, with an HTTP API's 413 {"message":"Request
		// Entity Too Large"} and apigw-requestid, where restError has REST's 413 {"message":"Request
		// Too Long"} (reference section 3).
		ts, _ := startREST(t, Config{BodyLimit: 100}, restBasicDef, restBasicFunctions...)
		r := ts.do(t, ts.request(t, "POST", "/dev/echo", strings.Repeat("x", 200)))
		wantRESTError(t, "body too large", r, 413, "Request Too Long", "RequestTooLongException")
	})
	for _, tt := range []struct {
		name   string
		output string
		err    error
	}{
		{name: "function error", err: functionFailure("Error", "boom")},
		{name: "function error as the bus wraps it locally", err: fmt.Errorf("%w: Unhandled: boom", bus.ErrFunctionError)},
		{name: "function timed out", err: fmt.Errorf("%w: Task timed out after 3.00 seconds", bus.ErrFunctionTimeout)},
		{name: "response too large", err: bus.ErrResponseTooLarge},
		{name: "not JSON", output: `hello`},
		{name: "JSON without statusCode", output: `{"body":"x"}`},
		{name: "a JSON string", output: `"hello"`},
		{name: "statusCode not a number", output: `{"statusCode":"200"}`},
		{name: "statusCode out of range", output: `{"statusCode":99}`},
		{name: "body not a string", output: `{"statusCode":200,"body":{"a":1}}`},
		{name: "headers not an object", output: `{"statusCode":200,"headers":["a"]}`},
		{name: "invalid base64", output: `{"statusCode":200,"isBase64Encoded":true,"body":"%%%"}`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			inv.setScript(func(context.Context, bus.Invocation) ([]byte, error) {
				return []byte(tt.output), tt.err
			})
			r := ts.get(t, "/dev/pets/1")
			wantRESTError(t, tt.name, r, 502, "Internal server error", "InternalServerErrorException")
			if n := len(inv.of("pets")); n != 1 {
				t.Errorf("%d invocations, want 1 (the gateway never retries)", n)
			}
		})
	}
	t.Run("integration timeout", func(t *testing.T) {
		inv.setScript(func(ctx context.Context, _ bus.Invocation) ([]byte, error) {
			<-ctx.Done() // the route's 200ms
			return nil, ctx.Err()
		})
		r := ts.get(t, "/dev/slow")
		wantRESTError(t, "integration timeout", r, 504, "Endpoint request timed out", "")
	})
	t.Run("success carries only x-amzn-RequestId", func(t *testing.T) {
		inv.setScript(answer(`{"statusCode":200,"body":"ok"}`))
		r := ts.get(t, "/dev/pets/1")
		if r.status != 200 {
			t.Fatalf("%v", r)
		}
		id := wantRESTHeaders(t, "success", r)
		if got := decodeV1(t, inv.invocations()[0]).RequestContext.RequestID; got != id {
			t.Errorf("requestContext.requestId %q, x-amzn-RequestId %q", got, id)
		}
	})
}

// accessLines takes access log lines.
type accessLines struct {
	mu    sync.Mutex
	lines []string
}

func (a *accessLines) Log(_ AccessLogDestination, line []byte) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.lines = append(a.lines, string(line))
}

// A REST API's access log names its errors as its answers do.
func TestRESTAccessLog(t *testing.T) {
	// Known bug (gateway/server.go, handle, and accesslog.go): the access log line of a REST
	// API's error takes the HTTP API's message and response type (a missing route logs "Not
	// Found" and ACCESS_DENIED, a function error "Internal Server Error" and INTEGRATION_FAILURE),
	// not the REST answer's ("Missing Authentication Token", MISSING_AUTHENTICATION_TOKEN).
	def := strings.Replace(restBasicDef, "variables: {x: vx}",
		"variables: {x: vx}\n    accessLog: {format: '$context.requestId $context.status $context.error.messageString $context.error.responseType'}", 1)
	logs := &accessLines{}
	ts, inv := startREST(t, Config{AccessLogs: logs}, def, restBasicFunctions...)
	inv.setScript(func(context.Context, bus.Invocation) ([]byte, error) { return nil, functionFailure("Error", "boom") })
	a := ts.get(t, "/dev/nowhere")
	b := ts.get(t, "/dev/pets/1")
	logs.mu.Lock()
	defer logs.mu.Unlock()
	if len(logs.lines) != 2 {
		t.Fatalf("access log %q, want 2 lines", logs.lines)
	}
	wantString(t, "missing token", logs.lines[0], a.header.Get(HeaderRESTRequestID)+` 403 "Missing Authentication Token" MISSING_AUTHENTICATION_TOKEN`)
	if want := b.header.Get(HeaderRESTRequestID) + ` 502 "Internal server error" `; !strings.HasPrefix(logs.lines[1], want) {
		t.Errorf("function error: %q, want it to start %q", logs.lines[1], want)
	}
}

// restAuthDef is a REST API with token authorizers (one cached, one not, one with a short timeout)
// and a cached request authorizer.
const restAuthDef = `
type: rest
stages:
  dev:
    variables: {x: vx}
authorizers:
  cached:
    type: token
    function: auth
    identityValidationExpression: "^Bearer [a-z0-9-]+$"
    resultTtl: 300s
  fresh:
    type: token
    function: auth
    identitySources: [$request.header.X-Token]
  tenant:
    type: request
    function: reqauth
    identitySources: [$request.header.X-Tenant, $request.querystring.key]
    resultTtl: 300s
  slow:
    type: token
    function: auth
    timeout: 100ms
routes:
  GET /pets/{id}:
    function: pets
    authorization: {type: function, authorizer: cached}
  GET /slowauth:
    function: pets
    authorization: {type: function, authorizer: slow}
  POST /pets/{id}:
    function: pets
    authorization: {type: function, authorizer: cached}
  GET /fresh:
    function: pets
    authorization: {type: function, authorizer: fresh}
  GET /tenants/{tenant}:
    function: pets
    authorization: {type: function, authorizer: tenant}
`

var restAuthFunctions = []string{"auth", "reqauth", "pets"}

func TestRESTTokenAuthorizer(t *testing.T) {
	ts, inv := startREST(t, Config{}, restAuthDef, restAuthFunctions...)
	s := &scripted{}
	s.set("pets", `{"statusCode":200,"body":"pets"}`)
	reset := func() { inv.setScript(s.script) }

	t.Run("missing token", func(t *testing.T) {
		reset()
		wantRESTError(t, "no Authorization", ts.get(t, "/dev/pets/1"), 401, "Unauthorized", "UnauthorizedException")
		wantRESTError(t, "empty Authorization", ts.get(t, "/dev/pets/1", "Authorization", ""), 401, "Unauthorized", "UnauthorizedException")
		wantRESTError(t, "no X-Token", ts.get(t, "/dev/fresh", "Authorization", "Bearer x"), 401, "Unauthorized", "UnauthorizedException")
		if n := len(inv.invocations()); n != 0 {
			t.Errorf("%d invocations, want none: neither the authorizer nor the function may run", n)
		}
	})
	t.Run("identityValidationExpression mismatch", func(t *testing.T) {
		reset()
		for _, tok := range []string{"Basic abc", "Bearer UPPER", "bearer abc", "Bearer a b"} {
			wantRESTError(t, tok, ts.get(t, "/dev/pets/1", "Authorization", tok), 401, "Unauthorized", "UnauthorizedException")
		}
		if n := len(inv.invocations()); n != 0 {
			t.Errorf("%d invocations, want none", n)
		}
	})
	t.Run("allow", func(t *testing.T) {
		reset()
		s.set("auth", iamPolicy("user-1", "Allow", restARN("dev", "GET", "/pets/*"), map[string]any{"tier": "gold", "n": 3.5, "ok": true, "none": nil}))
		r := ts.get(t, "/dev/pets/1", "Authorization", "Bearer allow-1")
		if r.status != 200 || r.body != "pets" {
			t.Fatalf("%v", r)
		}
		id := wantRESTHeaders(t, "allowed", r)
		auth, fn := inv.of("auth"), inv.of("pets")
		if len(auth) != 1 || len(fn) != 1 {
			t.Fatalf("%d authorizer and %d function invocations, want 1 each", len(auth), len(fn))
		}
		var aev events.APIGatewayCustomAuthorizerRequest
		if err := json.Unmarshal(auth[0].Payload, &aev); err != nil {
			t.Fatal(err)
		}
		wantString(t, "type", aev.Type, "TOKEN")
		wantString(t, "authorizationToken", aev.AuthorizationToken, "Bearer allow-1")
		wantString(t, "methodArn", aev.MethodArn, restARN("dev", "GET", "/pets/1"))
		if auth[0].RequestID != id || fn[0].RequestID != id {
			t.Errorf("request ids: authorizer %q, function %q, response %q", auth[0].RequestID, fn[0].RequestID, id)
		}
		// Numbers and booleans stringified, null kept (API Gateway's documentation, and measured
		// by serverless-offline#1244).
		a := decodeV1(t, fn[0]).RequestContext.Authorizer
		if none, ok := a["none"]; a["principalId"] != "user-1" || a["tier"] != "gold" || a["n"] != "3.5" || a["ok"] != "true" || !ok || none != nil || len(a) != 5 {
			t.Errorf("requestContext.authorizer %v", a)
		}
	})
	t.Run("explicit deny", func(t *testing.T) {
		reset()
		allow := `{"Action":"execute-api:Invoke","Effect":"Allow","Resource":"*"}`
		deny := `{"Action":"execute-api:*","Effect":"Deny","Resource":"` + restARN("dev", "GET", "/pets/1") + `"}`
		// A matching Deny wins over any Allow, before or after it.
		for i, statements := range []string{allow + "," + deny, deny + "," + allow} {
			s.set("auth", `{"principalId":"u","policyDocument":{"Version":"2012-10-17","Statement":[`+statements+`]}}`)
			r := ts.get(t, "/dev/pets/1", "Authorization", fmt.Sprintf("Bearer deny-%d", i))
			wantRESTDenial(t, "deny", r, 403, "User is not authorized to access this resource with an explicit deny", "AccessDeniedException")
		}
		if len(inv.of("pets")) != 0 {
			t.Error("the function ran after a Deny")
		}
		// The Deny names another resource: the Allow lets this one through.
		r := ts.get(t, "/dev/pets/2", "Authorization", "Bearer deny-other")
		if r.status != 200 {
			t.Errorf("a Deny of another resource: %v", r)
		}
	})
	t.Run("no statement allows", func(t *testing.T) {
		reset()
		for name, out := range map[string]string{
			"another resource": iamPolicy("u", "Allow", restARN("dev", "GET", "/other"), nil),
			"another action": `{"principalId":"u","policyDocument":{"Statement":[` +
				`{"Action":"execute-api:ManageConnections","Effect":"Allow","Resource":"*"}]}}`,
			"no statements": `{"principalId":"u","policyDocument":{"Statement":[]}}`,
		} {
			s.set("auth", out)
			r := ts.get(t, "/dev/pets/1", "Authorization", "Bearer none-"+strings.ReplaceAll(name, " ", "-"))
			wantRESTDenial(t, name, r, 403, "User is not authorized to access this resource", "AccessDeniedException")
		}
		if len(inv.of("pets")) != 0 {
			t.Error("the function ran without an Allow")
		}
	})
	t.Run("cached policy is evaluated for each method ARN", func(t *testing.T) {
		reset()
		s.set("auth", iamPolicy("user-2", "Allow", restARN("dev", "GET", "/pets/*"), nil))
		const tok = "Bearer per-method"
		if r := ts.get(t, "/dev/pets/1", "Authorization", tok); r.status != 200 {
			t.Fatalf("GET: %v", r)
		}
		r := ts.do(t, ts.request(t, "POST", "/dev/pets/1", "{}", "Authorization", tok))
		wantRESTDenial(t, "POST with the GET policy", r, 403, "User is not authorized to access this resource", "AccessDeniedException")
		if r := ts.get(t, "/dev/pets/2", "Authorization", tok); r.status != 200 {
			t.Fatalf("GET another pet: %v", r)
		}
		if n := len(inv.of("auth")); n != 1 {
			t.Errorf("%d authorizer invocations, want 1: the policy is cached by token", n)
		}
		if n := len(inv.of("pets")); n != 2 {
			t.Errorf("%d function invocations, want 2 (the GETs)", n)
		}
		// A new token is a new identity.
		if r := ts.get(t, "/dev/pets/1", "Authorization", "Bearer per-method-2"); r.status != 200 {
			t.Fatalf("GET: %v", r)
		}
		if n := len(inv.of("auth")); n != 2 {
			t.Errorf("%d authorizer invocations after a new token, want 2", n)
		}
	})
	t.Run("a cached Deny is not asked again", func(t *testing.T) {
		reset()
		s.set("auth", iamPolicy("u", "Deny", "*", nil))
		for range 2 {
			wantRESTDenial(t, "deny", ts.get(t, "/dev/pets/1", "Authorization", "Bearer cached-deny"), 403,
				"User is not authorized to access this resource with an explicit deny", "AccessDeniedException")
		}
		if n := len(inv.of("auth")); n != 1 {
			t.Errorf("%d authorizer invocations, want 1", n)
		}
	})
	t.Run("resultTtl 0 asks every time", func(t *testing.T) {
		reset()
		s.set("auth", iamPolicy("u", "Allow", restARN("dev", "GET", "/fresh"), nil))
		for range 3 {
			if r := ts.get(t, "/dev/fresh", "X-Token", "same"); r.status != 200 {
				t.Fatalf("%v", r)
			}
		}
		if n := len(inv.of("auth")); n != 3 {
			t.Errorf("%d authorizer invocations, want 3", n)
		}
	})
	t.Run("authorizer fails with Unauthorized", func(t *testing.T) {
		reset()
		s.fail("auth", functionFailure("Error", "Unauthorized"))
		wantRESTError(t, "Unauthorized", ts.get(t, "/dev/pets/1", "Authorization", "Bearer unauthorized"), 401, "Unauthorized", "UnauthorizedException")
		if len(inv.of("auth")) != 1 || len(inv.of("pets")) != 0 {
			t.Errorf("%d authorizer and %d function invocations, want 1 and 0", len(inv.of("auth")), len(inv.of("pets")))
		}
	})
	t.Run("authorizer does not answer in time", func(t *testing.T) {
		inv.setScript(func(ctx context.Context, c bus.Invocation) ([]byte, error) {
			if c.Function == "auth" {
				<-ctx.Done() // the authorizer's 100ms
				return nil, ctx.Err()
			}
			return s.script(ctx, c)
		})
		r := ts.get(t, "/dev/slowauth", "Authorization", "Bearer slow")
		// Observed of API Gateway: 500 {"message":null}, not the integration's 504.
		wantRESTError(t, "authorizer timeout", r, 500, "", "AuthorizerConfigurationException")
		if len(inv.of("pets")) != 0 {
			t.Error("the function ran without an answer from the authorizer")
		}
	})
	t.Run("authorizer misbehaves", func(t *testing.T) {
		for _, tt := range []struct {
			name string
			out  string
			err  error
		}{
			{name: "not JSON", out: `allow`},
			{name: "a JSON string", out: `"Allow"`},
			{name: "no policyDocument", out: `{"principalId":"u"}`},
			{name: "no principalId", out: `{"policyDocument":{"Statement":[{"Action":"execute-api:Invoke","Effect":"Allow","Resource":"*"}]}}`},
			{name: "an HTTP API's simple response", out: `{"isAuthorized":true}`},
			{name: "an object in the context", out: iamPolicy("u", "Allow", "*", map[string]any{"user": map[string]any{"id": 1}})},
			{name: "an array in the context", out: iamPolicy("u", "Allow", "*", map[string]any{"roles": []string{"admin"}})},
			{name: "fails with another message", err: functionFailure("Error", "boom")},
			{name: "fails as the bus wraps it locally", err: fmt.Errorf("%w: Unhandled: Unauthorized", bus.ErrFunctionError)},
		} {
			t.Run(tt.name, func(t *testing.T) {
				reset()
				if tt.err != nil {
					s.fail("auth", tt.err)
				} else {
					s.set("auth", tt.out)
				}
				r := ts.get(t, "/dev/pets/1", "Authorization", "Bearer garbage")
				wantRESTError(t, tt.name, r, 500, "", "AuthorizerConfigurationException")
				if len(inv.of("pets")) != 0 {
					t.Error("the function ran after the authorizer misbehaved")
				}
			})
		}
	})
}

func TestRESTRequestAuthorizer(t *testing.T) {
	ts, inv := startREST(t, Config{}, restAuthDef, restAuthFunctions...)
	s := &scripted{}
	s.set("pets", `{"statusCode":200,"body":"pets"}`)
	s.set("reqauth", iamPolicy("acme-admin", "Allow", restARN("dev", "*", "/tenants/*"), map[string]any{"plan": "pro"}))
	inv.setScript(s.script)

	t.Run("missing identity source", func(t *testing.T) {
		inv.setScript(s.script)
		wantRESTError(t, "no header", ts.get(t, "/dev/tenants/acme?key=k1"), 401, "Unauthorized", "UnauthorizedException")
		wantRESTError(t, "no query", ts.get(t, "/dev/tenants/acme", "X-Tenant", "acme"), 401, "Unauthorized", "UnauthorizedException")
		wantRESTError(t, "empty query", ts.get(t, "/dev/tenants/acme?key=", "X-Tenant", "acme"), 401, "Unauthorized", "UnauthorizedException")
		if n := len(inv.invocations()); n != 0 {
			t.Errorf("%d invocations, want none", n)
		}
	})
	t.Run("the authorizer's event", func(t *testing.T) {
		inv.setScript(s.script)
		r := ts.get(t, "/dev/tenants/acme?key=k1&view=full", "X-Tenant", "acme", "Host", "api.example.com")
		if r.status != 200 {
			t.Fatalf("%v", r)
		}
		id := wantRESTHeaders(t, "allowed", r)
		auth := inv.of("reqauth")
		if len(auth) != 1 {
			t.Fatalf("%d authorizer invocations", len(auth))
		}
		var raw map[string]json.RawMessage
		if err := json.Unmarshal(auth[0].Payload, &raw); err != nil {
			t.Fatal(err)
		}
		for _, k := range []string{"body", "isBase64Encoded"} {
			wantAbsent(t, raw, k)
		}
		var ev events.APIGatewayCustomAuthorizerRequestTypeRequest
		if err := json.Unmarshal(auth[0].Payload, &ev); err != nil {
			t.Fatal(err)
		}
		wantString(t, "type", ev.Type, "REQUEST")
		wantString(t, "methodArn", ev.MethodArn, restARN("dev", "GET", "/tenants/acme"))
		wantString(t, "resource", ev.Resource, "/tenants/{tenant}")
		wantString(t, "path", ev.Path, "/tenants/acme")
		wantString(t, "httpMethod", ev.HTTPMethod, "GET")
		wantString(t, "headers[X-Tenant]", ev.Headers["X-Tenant"], "acme")
		wantMap(t, "queryStringParameters", ev.QueryStringParameters, map[string]string{"key": "k1", "view": "full"})
		wantMap(t, "pathParameters", ev.PathParameters, map[string]string{"tenant": "acme"})
		wantMap(t, "stageVariables", ev.StageVariables, map[string]string{"x": "vx"})
		wantString(t, "requestContext.stage", ev.RequestContext.Stage, "dev")
		wantString(t, "requestContext.requestId", ev.RequestContext.RequestID, id)
		wantString(t, "requestContext.resourcePath", ev.RequestContext.ResourcePath, "/tenants/{tenant}")
		wantString(t, "requestContext.httpMethod", ev.RequestContext.HTTPMethod, "GET")
		a := decodeV1(t, inv.of("pets")[0]).RequestContext.Authorizer
		if a["principalId"] != "acme-admin" || a["plan"] != "pro" || len(a) != 2 {
			t.Errorf("requestContext.authorizer %v", a)
		}
	})
	t.Run("cached by the identity values", func(t *testing.T) {
		inv.setScript(s.script)
		for range 2 {
			if r := ts.get(t, "/dev/tenants/acme?key=k2", "X-Tenant", "acme"); r.status != 200 {
				t.Fatalf("%v", r)
			}
		}
		// The path is not an identity source: another tenant's path with the same values is served
		// from the cache, and allowed by the cached policy's wildcard.
		if r := ts.get(t, "/dev/tenants/other?key=k2", "X-Tenant", "acme"); r.status != 200 {
			t.Fatalf("%v", r)
		}
		if n := len(inv.of("reqauth")); n != 1 {
			t.Errorf("%d authorizer invocations, want 1", n)
		}
		if r := ts.get(t, "/dev/tenants/acme?key=k3", "X-Tenant", "acme"); r.status != 200 {
			t.Fatalf("%v", r)
		}
		if n := len(inv.of("reqauth")); n != 2 {
			t.Errorf("%d authorizer invocations after a new key, want 2", n)
		}
	})
}

// restValidationDef is a REST API whose routes validate requests.
const restValidationDef = `
type: rest
stages:
  dev:
    variables: {x: vx}
models:
  Pet:
    schema:
      type: object
      required: [name]
      properties:
        name: {type: string}
        age: {type: integer, minimum: 0}
routes:
  POST /pets:
    function: pets
    request:
      models: {application/json: Pet}
  GET /search:
    function: search
    request:
      parameters: {querystring.q: true, header.x-client: true, querystring.page: false}
`

func TestRESTValidation(t *testing.T) {
	ts, inv := startREST(t, Config{}, restValidationDef, "pets", "search")
	post := func(body, contentType string) response {
		req := ts.request(t, "POST", "/dev/pets", body)
		if contentType != "" {
			req.Header.Set("Content-Type", contentType)
		}
		return ts.do(t, req)
	}
	t.Run("body does not match the model", func(t *testing.T) {
		inv.setScript(nil)
		for name, body := range map[string]string{
			"missing property":      `{"age":3}`,
			"wrong type":            `{"name":7}`,
			"below minimum":         `{"name":"rex","age":-1}`,
			"not JSON":              `{"name":`,
			"not an object":         `["rex"]`,
			"empty body":            ``,
			"JSON with charset set": `{"age":1}`,
		} {
			ct := "application/json"
			if name == "JSON with charset set" {
				ct = "application/json; charset=utf-8"
			}
			wantRESTError(t, name, post(body, ct), 400, "Invalid request body", "BadRequestException")
		}
		// Without a Content-Type the body is checked as application/json.
		wantRESTError(t, "no content type", post(`{"age":3}`, ""), 400, "Invalid request body", "BadRequestException")
		if n := len(inv.invocations()); n != 0 {
			t.Errorf("%d invocations, want none", n)
		}
	})
	t.Run("body matches", func(t *testing.T) {
		inv.setScript(nil)
		if r := post(`{"name":"rex","age":3}`, "application/json"); r.status != 200 {
			t.Fatalf("%v", r)
		}
		if n := len(inv.of("pets")); n != 1 {
			t.Errorf("%d invocations, want 1", n)
		}
	})
	t.Run("a content type without a model is not checked", func(t *testing.T) {
		inv.setScript(nil)
		if r := post(`not json`, "text/plain"); r.status != 200 {
			t.Fatalf("%v", r)
		}
	})
	t.Run("required parameters", func(t *testing.T) {
		inv.setScript(nil)
		wantRESTError(t, "none", ts.get(t, "/dev/search"), 400, "Missing required request parameters: [q, x-client]", "BadRequestException")
		wantRESTError(t, "no header", ts.get(t, "/dev/search?q=cat"), 400, "Missing required request parameters: [x-client]", "BadRequestException")
		wantRESTError(t, "empty query", ts.get(t, "/dev/search?q=", "X-Client", "web"), 400, "Missing required request parameters: [q]", "BadRequestException")
		if n := len(inv.invocations()); n != 0 {
			t.Errorf("%d invocations, want none", n)
		}
		// The header is found whatever its case; page is optional.
		if r := ts.get(t, "/dev/search?q=cat", "X-CLIENT", "web"); r.status != 200 {
			t.Fatalf("%v", r)
		}
	})
	t.Run("BAD_REQUEST_BODY gateway response", func(t *testing.T) {
		def := strings.Replace(restValidationDef, "routes:", `gatewayResponses:
  BAD_REQUEST_BODY:
    statusCode: 422
    headers: {x-why: "$context.error.responseType"}
    body: '{"error":"$context.error.validationErrorString","message":$context.error.messageString}'
routes:`, 1)
		ts, inv := startREST(t, Config{}, def, "pets", "search")
		req := ts.request(t, "POST", "/dev/pets", `{"age":"x"}`)
		req.Header.Set("Content-Type", "application/json")
		r := ts.do(t, req)
		if r.status != 422 {
			t.Errorf("status %d, want the gateway response's 422", r.status)
		}
		var body struct {
			Error   string `json:"error"`
			Message string `json:"message"`
		}
		if err := json.Unmarshal([]byte(r.body), &body); err != nil {
			t.Fatalf("body %s is not JSON: %v", r.body, err)
		}
		if !strings.HasPrefix(body.Error, "[") || !strings.Contains(body.Error, "name") || !strings.Contains(body.Error, "age") {
			t.Errorf("validationErrorString %q, want both problems listed", body.Error)
		}
		wantString(t, "message", body.Message, "Invalid request body")
		wantString(t, "x-why", r.header.Get("x-why"), "BAD_REQUEST_BODY")
		wantRESTErrorHeaders(t, "BAD_REQUEST_BODY", r, "BadRequestException")
		// Parameters are BAD_REQUEST_PARAMETERS: the default answer.
		wantRESTError(t, "parameters", ts.get(t, "/dev/search"), 400, "Missing required request parameters: [q, x-client]", "BadRequestException")
		if n := len(inv.invocations()); n != 0 {
			t.Errorf("%d invocations, want none", n)
		}
	})
}

// restResponsesDef is a REST API with DEFAULT_4XX and DEFAULT_5XX gateway responses; {{MORE}}
// is replaced with more of them.
const restResponsesDef = `
type: rest
stages:
  dev:
    variables: {x: vx}
authorizers:
  bearer: {type: token, function: auth}
gatewayResponses:
  DEFAULT_4XX:
    headers: {x-gw: 4xx, x-req: $context.requestId, x-stage: $stageVariables.x}
    body: '{"kind":"4xx","msg":$context.error.messageString,"type":"$context.error.responseType"}'
  DEFAULT_5XX:
    statusCode: 503
    headers: {x-gw: 5xx}
{{MORE}}
routes:
  GET /open: {function: fn}
  GET /secure:
    function: fn
    authorization: {type: function, authorizer: bearer}
`

func TestRESTGatewayResponses(t *testing.T) {
	// gwBody decodes a DEFAULT_4XX body.
	type gwBody struct {
		Kind, Msg, Type string
	}
	decode := func(t *testing.T, r response) gwBody {
		t.Helper()
		var b gwBody
		if err := json.Unmarshal([]byte(r.body), &b); err != nil {
			t.Errorf("body %s is not JSON: %v", r.body, err)
		}
		return b
	}
	wantHeaders := func(t *testing.T, what string, r response, gw string) {
		t.Helper()
		id := wantRESTHeaders(t, what, r)
		wantString(t, what+": x-gw", r.header.Get("x-gw"), gw)
		if gw == "4xx" {
			wantString(t, what+": x-req", r.header.Get("x-req"), id)
			wantString(t, what+": x-stage", r.header.Get("x-stage"), "vx")
		}
	}

	t.Run("DEFAULT_4XX", func(t *testing.T) {
		ts, inv := startREST(t, Config{}, strings.Replace(restResponsesDef, "{{MORE}}", "", 1), "fn", "auth")
		r := ts.get(t, "/dev/nowhere")
		if r.status != 403 {
			t.Errorf("missing token: status %d", r.status)
		}
		wantHeaders(t, "missing token", r, "4xx")
		wantString(t, "x-amzn-ErrorType", r.header.Get("x-amzn-ErrorType"), "MissingAuthenticationTokenException")
		b := decode(t, r)
		if b != (gwBody{"4xx", "Missing Authentication Token", "MISSING_AUTHENTICATION_TOKEN"}) {
			t.Errorf("missing token: body %+v", b)
		}

		r = ts.get(t, "/dev/secure")
		if r.status != 401 {
			t.Errorf("unauthorized: status %d", r.status)
		}
		wantHeaders(t, "unauthorized", r, "4xx")
		if b := decode(t, r); b != (gwBody{"4xx", "Unauthorized", "UNAUTHORIZED"}) {
			t.Errorf("unauthorized: body %+v", b)
		}
		if n := len(inv.invocations()); n != 0 {
			t.Errorf("%d invocations", n)
		}
	})
	t.Run("a type of its own wins over DEFAULT_4XX", func(t *testing.T) {
		more := `  UNAUTHORIZED:
    statusCode: 407
    headers: {x-gw: unauthorized}
    body: '{"signIn":"$context.requestId"}'`
		ts, _ := startREST(t, Config{}, strings.Replace(restResponsesDef, "{{MORE}}", more, 1), "fn", "auth")
		r := ts.get(t, "/dev/secure")
		id := wantRESTHeaders(t, "unauthorized", r)
		if r.status != 407 || r.body != `{"signIn":"`+id+`"}` {
			t.Errorf("unauthorized: %d %s", r.status, r.body)
		}
		wantString(t, "x-gw", r.header.Get("x-gw"), "unauthorized")
		if r.header.Get("x-stage") != "" {
			t.Errorf("DEFAULT_4XX's header x-stage on UNAUTHORIZED's answer")
		}
		// Other 4XX types still take DEFAULT_4XX.
		r = ts.get(t, "/dev/nowhere")
		wantHeaders(t, "missing token", r, "4xx")
		if r.status != 403 {
			t.Errorf("missing token: status %d", r.status)
		}
	})
	t.Run("DEFAULT_5XX", func(t *testing.T) {
		ts, inv := startREST(t, Config{}, strings.Replace(restResponsesDef, "{{MORE}}", "", 1), "fn", "auth")
		inv.setScript(func(context.Context, bus.Invocation) ([]byte, error) { return nil, functionFailure("Error", "boom") })
		r := ts.get(t, "/dev/open")
		// No body of its own: the default message, at the gateway response's status.
		wantRESTError(t, "function error", r, 503, "Internal server error", "InternalServerErrorException")
		wantHeaders(t, "function error", r, "5xx")

		inv.setScript(answer(`{"statusCode":200,"body":"ok"}`))
		if r := ts.get(t, "/dev/open"); r.status != 200 || r.header.Get("x-gw") != "" {
			t.Errorf("a function's answer took a gateway response: %v", r)
		}
	})
	t.Run("the default body reads messageString as JSON", func(t *testing.T) {
		// API Gateway's default body template is {"message":$context.error.messageString}: written
		// out, it must give what the gateway sends without one.
		more := `  MISSING_AUTHENTICATION_TOKEN:
    body: '{"message":$context.error.messageString}'`
		ts, _ := startREST(t, Config{}, strings.Replace(restResponsesDef, "{{MORE}}", more, 1), "fn", "auth")
		r := ts.get(t, "/dev/nowhere")
		if r.body != `{"message":"Missing Authentication Token"}` {
			t.Errorf("body %s", r.body)
		}
	})
}

// restCacheDef is a REST API with a stage cache in two stages: dev, where only signed requests
// may refresh an entry, and open, where anyone may.
const restCacheDef = `
type: rest
stages:
  dev:
    cache: {sizeMB: 0.5}
  open:
    cache: {sizeMB: 0.5, requireAuthorization: false}
routes:
  GET /items/{id}: {function: items}
  POST /items/{id}: {function: items}
  GET /plain: {function: plain}
  GET /pages:
    function: pages
    cache: {keys: [querystring.page]}
  GET /short:
    function: short
    cache: {ttl: 500ms}
  GET /flaky: {function: flaky}
  GET /off:
    function: off
    cache: {enabled: false}
`

// counting is a script whose functions answer their name and how many times they ran, "items
// #2"; flaky answers 500.
type counting struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *counting) script(_ context.Context, inv bus.Invocation) ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == nil {
		c.n = map[string]int{}
	}
	c.n[inv.Function]++
	status := 200
	if inv.Function == "flaky" {
		status = 500
	}
	return fmt.Appendf(nil, `{"statusCode":%d,"headers":{"Content-Type":"text/plain","X-Fn":%q},"multiValueHeaders":{"X-Multi":["a","b"]},"body":"%s #%d"}`,
		status, inv.Function, inv.Function, c.n[inv.Function]), nil
}

// cacheCount is the value of gatehouse_cache_requests_total for the API shop, stage and result.
func cacheCount(t *testing.T, reg *prometheus.Registry, stage, result string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "gatehouse_cache_requests_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["api"] == "shop" && labels["stage"] == stage && labels["result"] == result {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

func TestRESTCache(t *testing.T) {
	reg := prometheus.NewRegistry()
	ts, inv := startREST(t, Config{Metrics: reg, Verifier: testVerifier(t)}, restCacheDef, "items", "plain", "pages", "short", "flaky", "off")
	c := &counting{}
	inv.setScript(c.script)
	calls := func(function string) int { return len(inv.of(function)) }
	wantBody := func(t *testing.T, what string, r response, body string) {
		t.Helper()
		if r.status != 200 || r.body != body {
			t.Errorf("%s: %d %q, want 200 %q", what, r.status, r.body, body)
		}
	}

	t.Run("a GET is answered from the cache", func(t *testing.T) {
		hits, misses := cacheCount(t, reg, "dev", "hit"), cacheCount(t, reg, "dev", "miss")
		first := ts.get(t, "/dev/items/1")
		wantBody(t, "first", first, "items #1")
		second := ts.get(t, "/dev/items/1")
		wantBody(t, "second", second, "items #1")
		if n := calls("items"); n != 1 {
			t.Errorf("%d invocations, want 1", n)
		}
		// The cached answer keeps the function's headers, and has a request id of its own.
		for _, k := range []string{"Content-Type", "X-Fn", "X-Multi"} {
			wantSlice(t, "cached "+k, second.header.Values(k), first.header.Values(k))
		}
		wantSlice(t, "X-Multi", second.header.Values("X-Multi"), []string{"a", "b"})
		if a, b := wantRESTHeaders(t, "first", first), wantRESTHeaders(t, "second", second); a == b {
			t.Errorf("both answers have the request id %q", a)
		}
		if got := cacheCount(t, reg, "dev", "miss") - misses; got != 1 {
			t.Errorf("%v misses counted, want 1", got)
		}
		if got := cacheCount(t, reg, "dev", "hit") - hits; got != 1 {
			t.Errorf("%v hits counted, want 1", got)
		}
	})
	t.Run("another path parameter is another entry", func(t *testing.T) {
		before := calls("items")
		wantBody(t, "items/2", ts.get(t, "/dev/items/2"), fmt.Sprintf("items #%d", before+1))
		if n := calls("items"); n != before+1 {
			t.Errorf("%d invocations, want %d", n, before+1)
		}
		// Another stage has its own cache.
		wantBody(t, "open/items/2", ts.get(t, "/open/items/2"), fmt.Sprintf("items #%d", before+2))
	})
	t.Run("the query string is not a key by default", func(t *testing.T) {
		wantBody(t, "page 1", ts.get(t, "/dev/plain?page=1"), "plain #1")
		wantBody(t, "page 2", ts.get(t, "/dev/plain?page=2"), "plain #1")
		wantBody(t, "no query", ts.get(t, "/dev/plain"), "plain #1")
		if n := calls("plain"); n != 1 {
			t.Errorf("%d invocations, want 1", n)
		}
	})
	t.Run("cache keys", func(t *testing.T) {
		wantBody(t, "page 1", ts.get(t, "/dev/pages?page=1"), "pages #1")
		wantBody(t, "page 2", ts.get(t, "/dev/pages?page=2"), "pages #2")
		wantBody(t, "page 1 again", ts.get(t, "/dev/pages?page=1&other=x"), "pages #1")
		if n := calls("pages"); n != 2 {
			t.Errorf("%d invocations, want 2", n)
		}
	})
	t.Run("an entry expires after its TTL", func(t *testing.T) {
		// No clock can be set in the gateway: a 500ms TTL, asked again at once and after 700ms.
		wantBody(t, "first", ts.get(t, "/dev/short"), "short #1")
		wantBody(t, "at once", ts.get(t, "/dev/short"), "short #1")
		time.Sleep(700 * time.Millisecond)
		wantBody(t, "after the TTL", ts.get(t, "/dev/short"), "short #2")
	})
	t.Run("POST is not cached", func(t *testing.T) {
		before := calls("items")
		for range 2 {
			if r := ts.do(t, ts.request(t, "POST", "/dev/items/9", "{}")); r.status != 200 {
				t.Fatalf("%v", r)
			}
		}
		if n := calls("items"); n != before+2 {
			t.Errorf("%d invocations, want %d", n, before+2)
		}
		// Nor does it answer a GET from what it got.
		before = calls("items")
		ts.get(t, "/dev/items/9")
		if n := calls("items"); n != before+1 {
			t.Errorf("the GET after the POSTs was not a miss")
		}
	})
	t.Run("a route with the cache off", func(t *testing.T) {
		ts.get(t, "/dev/off")
		ts.get(t, "/dev/off")
		if n := calls("off"); n != 2 {
			t.Errorf("%d invocations, want 2", n)
		}
	})
	t.Run("an error is not cached", func(t *testing.T) {
		for i := range 2 {
			r := ts.get(t, "/dev/flaky")
			if want := fmt.Sprintf("flaky #%d", i+1); r.status != 500 || r.body != want {
				t.Errorf("%d %q, want 500 %q", r.status, r.body, want)
			}
		}
	})
	t.Run("max-age=0 unsigned with requireAuthorization", func(t *testing.T) {
		before := calls("items") + 1
		wantBody(t, "first", ts.get(t, "/dev/items/4"), fmt.Sprintf("items #%d", before))
		invalidated := cacheCount(t, reg, "dev", "invalidated")
		r := ts.get(t, "/dev/items/4", "Cache-Control", "max-age=0")
		wantBody(t, "max-age=0", r, fmt.Sprintf("items #%d", before))
		if n := calls("items"); n != before {
			t.Errorf("the function ran: an unsigned max-age=0 refreshed the entry")
		}
		if got := cacheCount(t, reg, "dev", "invalidated") - invalidated; got != 0 {
			t.Errorf("%v invalidations counted, want 0", got)
		}
	})
	t.Run("max-age=0 signed with requireAuthorization", func(t *testing.T) {
		before := calls("items") + 1
		wantBody(t, "first", ts.get(t, "/dev/items/5"), fmt.Sprintf("items #%d", before))
		req := ts.request(t, "GET", "/dev/items/5", "", "Cache-Control", "max-age=0")
		wantBody(t, "signed max-age=0", ts.do(t, sign(t, req, nil, testKeySecret)), fmt.Sprintf("items #%d", before+1))
		wantBody(t, "after", ts.get(t, "/dev/items/5"), fmt.Sprintf("items #%d", before+1))
		// A wrong signature is unsigned.
		req = ts.request(t, "GET", "/dev/items/5", "", "Cache-Control", "max-age=0")
		wantBody(t, "badly signed", ts.do(t, sign(t, req, nil, "wrong")), fmt.Sprintf("items #%d", before+1))
	})
	t.Run("max-age=0 without requireAuthorization", func(t *testing.T) {
		before := calls("items") + 1
		wantBody(t, "first", ts.get(t, "/open/items/6"), fmt.Sprintf("items #%d", before))
		invalidated := cacheCount(t, reg, "open", "invalidated")
		wantBody(t, "max-age=0", ts.get(t, "/open/items/6", "Cache-Control", "no-cache, max-age=0"), fmt.Sprintf("items #%d", before+1))
		wantBody(t, "after", ts.get(t, "/open/items/6"), fmt.Sprintf("items #%d", before+1))
		if got := cacheCount(t, reg, "open", "invalidated") - invalidated; got != 1 {
			t.Errorf("%v invalidations counted, want 1", got)
		}
	})
}

// restCompressionDef is a REST API that compresses bodies of 100 bytes or more.
const restCompressionDef = `
type: rest
stages:
  dev:
    variables: {x: vx}
minimumCompressionSize: 100
binaryMediaTypes: [image/png]
routes:
  GET /big: {function: big}
  GET /edge: {function: edge}
  GET /small: {function: small}
  GET /encoded: {function: encoded}
`

func TestRESTCompression(t *testing.T) {
	big := strings.Repeat("gatehouse compresses REST responses. ", 28)[:1024]
	edge := strings.Repeat("e", 100)
	small := strings.Repeat("s", 50)
	// What the encoded route's function gzips itself: bytes that do not compress, so that its
	// gzip stays over the minimum size.
	noise := make([]byte, 512)
	rand.NewChaCha8([32]byte{1}).Read(noise)
	var gz bytes.Buffer
	w := gzip.NewWriter(&gz)
	w.Write(noise)
	w.Close()
	if gz.Len() < 100 {
		t.Fatalf("the encoded body is %d bytes, under the minimum size", gz.Len())
	}
	text := func(body string) string {
		return `{"statusCode":200,"headers":{"Content-Type":"text/plain"},"body":"` + body + `"}`
	}
	ts, inv := startREST(t, Config{}, restCompressionDef, "big", "edge", "small", "encoded")
	inv.setScript(byFunction(map[string]string{
		"big":   text(big),
		"edge":  text(edge),
		"small": text(small),
		"encoded": `{"statusCode":200,"headers":{"Content-Type":"image/png","Content-Encoding":"gzip"},"isBase64Encoded":true,"body":"` +
			base64.StdEncoding.EncodeToString(gz.Bytes()) + `"}`,
	}))
	inflate := map[string]func(io.Reader) (io.Reader, error){
		"gzip":    func(r io.Reader) (io.Reader, error) { return gzip.NewReader(r) },
		"deflate": func(r io.Reader) (io.Reader, error) { return flate.NewReader(r), nil },
	}
	decoded := func(t *testing.T, r response, encoding string) string {
		t.Helper()
		rd, err := inflate[encoding](strings.NewReader(r.body))
		if err != nil {
			t.Fatalf("%s: %v", encoding, err)
		}
		b, err := io.ReadAll(rd)
		if err != nil {
			t.Fatalf("%s: %v", encoding, err)
		}
		return string(b)
	}
	for _, tt := range []struct {
		name, path, acceptEncoding string
		encoding                   string // "" for none
		body                       string
	}{
		{"gzip", "/dev/big", "gzip", "gzip", big},
		{"deflate", "/dev/big", "deflate", "deflate", big},
		{"one the gateway makes, after one it does not", "/dev/big", "br, GZIP", "gzip", big},
		{"refused with q=0", "/dev/big", "gzip;q=0, identity", "", big},
		{"refused with q=0.0", "/dev/big", "gzip; q=0.0, deflate;q=0.000", "", big},
		{"a weight that is not 0", "/dev/big", "gzip;q=0.5", "gzip", big},
		{"at the minimum size", "/dev/edge", "gzip", "gzip", edge},
		{"below the minimum size", "/dev/small", "gzip", "", small},
		{"not accepted", "/dev/big", "", "", big},
		{"only encodings the gateway does not make", "/dev/big", "br", "", big},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var headers []string
			if tt.acceptEncoding != "" {
				headers = []string{"Accept-Encoding", tt.acceptEncoding}
			}
			r := ts.get(t, tt.path, headers...)
			if r.status != 200 {
				t.Fatalf("%v", r)
			}
			wantSlice(t, "Content-Encoding", r.header.Values("Content-Encoding"), slices.DeleteFunc([]string{tt.encoding}, func(s string) bool { return s == "" }))
			body := r.body
			if tt.encoding != "" {
				if !slices.Contains(r.header.Values("Vary"), "Accept-Encoding") {
					t.Errorf("Vary %q, want Accept-Encoding", r.header.Values("Vary"))
				}
				body = decoded(t, r, tt.encoding)
			}
			if body != tt.body {
				t.Errorf("body (%d bytes) differs from the function's (%d bytes)", len(body), len(tt.body))
			}
			wantString(t, "Content-Type", r.header.Get("Content-Type"), "text/plain")
			wantRESTHeaders(t, tt.name, r)
		})
	}
	t.Run("an encoded answer is not encoded again", func(t *testing.T) {
		r := ts.get(t, "/dev/encoded", "Accept-Encoding", "gzip, deflate")
		wantSlice(t, "Content-Encoding", r.header.Values("Content-Encoding"), []string{"gzip"})
		if r.body != gz.String() {
			t.Errorf("body is not the function's gzip bytes")
		}
		if got := decoded(t, r, "gzip"); got != string(noise) {
			t.Errorf("decoded body differs")
		}
	})
	t.Run("gateway errors are not compressed", func(t *testing.T) {
		r := ts.get(t, "/dev/nowhere", "Accept-Encoding", "gzip")
		wantRESTError(t, "no route", r, 403, "Missing Authentication Token", "MissingAuthenticationTokenException")
	})
}

// restKeysDef is a REST API with a route that requires an API key; {{MORE}} is replaced with
// API settings.
const restKeysDef = `
type: rest
stages:
  dev:
    variables: {x: vx}
{{MORE}}
routes:
  GET /keyed: {function: fn, apiKeyRequired: true}
  GET /free: {function: fn}
`

func TestRESTAPIKeys(t *testing.T) {
	const gold, burst = "gold-key-0123456789abcdef", "burst-key-0123456789abcdef"
	config := func() Config {
		return Config{
			APIKeys: &fakeKeys{keys: map[string]apikeys.Key{
				gold:  {Name: "gold", Plan: "gold", SHA256: "h-gold"},
				burst: {Name: "burst", Plan: "burst", SHA256: "h-burst"},
			}},
			UsagePlans: map[string]UsagePlan{
				"gold":  {Quota: apikeys.Quota{Limit: 2, Period: "DAY"}},
				"burst": {Throttle: ThrottleSettings{Burst: 1}},
			},
		}
	}
	ts, inv := startREST(t, config(), strings.Replace(restKeysDef, "{{MORE}}", "", 1), "fn")
	wantRESTError(t, "no key", ts.get(t, "/dev/keyed"), 403, "Forbidden", "ForbiddenException")
	wantRESTError(t, "unknown key", ts.get(t, "/dev/keyed", "x-api-key", "nope-0123456789abcdefgh"), 403, "Forbidden", "ForbiddenException")
	if n := len(inv.invocations()); n != 0 {
		t.Errorf("%d invocations without a key, want none", n)
	}
	for i := range 2 {
		if r := ts.get(t, "/dev/keyed", "x-api-key", gold); r.status != 200 {
			t.Fatalf("request %d with the key: %v", i, r)
		}
	}
	wantRESTError(t, "over the quota", ts.get(t, "/dev/keyed", "x-api-key", gold), 429, "Limit Exceeded", "LimitExceededException")
	if r := ts.get(t, "/dev/free"); r.status != 200 {
		t.Errorf("a route without apiKeyRequired: %v", r)
	}
	// Burst 1 without a rate: one request, ever.
	if r := ts.get(t, "/dev/keyed", "x-api-key", burst); r.status != 200 {
		t.Fatalf("first request of the burst plan: %v", r)
	}
	wantRESTError(t, "the plan's throttle", ts.get(t, "/dev/keyed", "x-api-key", burst), 429, "Too Many Requests", "TooManyRequestsException")
	if n := len(inv.invocations()); n != 4 {
		t.Errorf("%d invocations, want 4", n)
	}

	t.Run("INVALID_API_KEY and QUOTA_EXCEEDED gateway responses", func(t *testing.T) {
		more := `gatewayResponses:
  INVALID_API_KEY:
    body: '{"message":"send x-api-key","type":"$context.error.responseType"}'
  ACCESS_DENIED:
    body: '{"message":"denied"}'
  QUOTA_EXCEEDED:
    headers: {retry-after: "86400"}`
		ts, _ := startREST(t, config(), strings.Replace(restKeysDef, "{{MORE}}", more, 1), "fn")
		r := ts.get(t, "/dev/keyed")
		if r.status != 403 || r.body != `{"message":"send x-api-key","type":"INVALID_API_KEY"}` {
			t.Errorf("no key: %d %s, want INVALID_API_KEY's body", r.status, r.body)
		}
		wantRESTErrorHeaders(t, "no key", r, "ForbiddenException")
		for range 2 {
			ts.get(t, "/dev/keyed", "x-api-key", gold)
		}
		r = ts.get(t, "/dev/keyed", "x-api-key", gold)
		wantRESTError(t, "over the quota", r, 429, "Limit Exceeded", "LimitExceededException")
		wantString(t, "retry-after", r.header.Get("retry-after"), "86400")
	})
}

// HTTP proxy and mock integrations on a REST API: the gateway's parts of REST (x-amzn-RequestId,
// errors in REST's shape) apply to them too.
func TestRESTProxyAndMock(t *testing.T) {
	b := startBackend(t, false)
	b.answerWith(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			select {
			case <-r.Context().Done():
			case <-time.After(2 * time.Second):
			}
			return
		}
		w.Header().Set("Content-Type", "text/plain")
		w.Header().Set("X-Backend", "yes")
		if r.URL.Path == "/missing" {
			w.WriteHeader(http.StatusNotFound)
		}
		fmt.Fprintf(w, "backend %s %s", r.Method, r.URL.RequestURI())
	})
	def := strings.NewReplacer("BACKEND", b.addr, "CLOSED", closedAddr(t)).Replace(`
type: rest
stages:
  dev:
    variables: {x: vx}
routes:
  ANY /proxy/{proxy+}:
    integration: {type: http_proxy, target: "http://BACKEND/{proxy}"}
  GET /down:
    integration: {type: http_proxy, target: "http://CLOSED/x"}
  GET /slow:
    integration: {type: http_proxy, target: "http://BACKEND/slow", timeout: 200ms}
  GET /mock:
    integration:
      type: mock
      statusCode: 201
      headers: {x-mock: "1"}
      body: '{"stage":"$context.stage","x":"$stageVariables.x","id":"$context.requestId"}'
`)
	ts, inv := startREST(t, Config{}, def)

	t.Run("http_proxy", func(t *testing.T) {
		r := ts.do(t, ts.request(t, "POST", "/dev/proxy/a/b?q=1", "data"))
		if r.status != 200 || r.body != "backend POST /a/b?q=1" || r.header.Get("X-Backend") != "yes" {
			t.Errorf("%v", r)
		}
		wantRESTHeaders(t, "proxy", r)
		// The backend's own 404 is its answer, not the gateway's.
		r = ts.get(t, "/dev/proxy/missing")
		if r.status != 404 || r.body != "backend GET /missing" || r.header.Get("x-amzn-ErrorType") != "" {
			t.Errorf("backend 404: %v", r)
		}
		wantRESTHeaders(t, "backend 404", r)
	})
	t.Run("http_proxy errors", func(t *testing.T) {
		wantRESTError(t, "backend down", ts.get(t, "/dev/down"), 502, "Internal server error", "InternalServerErrorException")
		wantRESTError(t, "backend too slow", ts.get(t, "/dev/slow"), 504, "Endpoint request timed out", "")
	})
	t.Run("mock", func(t *testing.T) {
		r := ts.get(t, "/dev/mock")
		id := wantRESTHeaders(t, "mock", r)
		if r.status != 201 || r.body != `{"stage":"dev","x":"vx","id":"`+id+`"}` || r.header.Get("x-mock") != "1" {
			t.Errorf("%v", r)
		}
		wantString(t, "Content-Type", r.header.Get("Content-Type"), "application/json")
	})
	t.Run("no route", func(t *testing.T) {
		wantRESTError(t, "no route", ts.do(t, ts.request(t, "POST", "/dev/mock", "")), 403, "Missing Authentication Token", "MissingAuthenticationTokenException")
	})
	if n := len(inv.invocations()); n != 0 {
		t.Errorf("%d function invocations", n)
	}
}
