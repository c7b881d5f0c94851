package app

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-lambda-go/events"
)

// integrationsHandler is a Node.js function that answers payload 1.0 events with the event itself,
// and token authorizer events with a policy: "Bearer good" may GET anything under its stage,
// "Bearer deny" is refused with "Unauthorized".
const integrationsHandler = `export const handler = async (event) => {
  if (event.type === "TOKEN") {
    if (event.authorizationToken === "Bearer deny") throw new Error("Unauthorized");
    const effect = event.authorizationToken === "Bearer good" ? "Allow" : "Deny";
    const resource = event.methodArn.split("/").slice(0, 2).join("/") + "/GET/*";
    return {principalId: "user-1", context: {tier: "gold"},
      policyDocument: {Version: "2012-10-17", Statement: [{Action: "execute-api:Invoke", Effect: effect, Resource: resource}]}};
  }
  return {statusCode: 200, headers: {"content-type": "application/json"},
    multiValueHeaders: {"x-multi": ["a", "b"]}, body: JSON.stringify(event)};
};
`

// sent is a response read whole.
type sent struct {
	status int
	header http.Header
	body   string
}

func send(t *testing.T, method, url, body string, headers ...string) sent {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, r)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Add(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return sent{resp.StatusCode, resp.Header, string(b)}
}

// TestIntegrationsEndToEnd runs HTTP proxy, mock and payload 1.0 routes of an HTTP API, and a REST
// API with a token authorizer, validation and a stage cache, through `up` with a real Node.js
// function and a real backend.
func TestIntegrationsEndToEnd(t *testing.T) {
	if _, err := exec.LookPath("node"); err != nil {
		t.Skip("node not found on PATH: this test's function is a Node.js handler (.ci/run installs node)")
	}
	var backendHits atomic.Int32
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		backendHits.Add(1)
		w.Header().Set("X-Backend-Saw", r.Method+" "+r.URL.RequestURI())
		w.Header().Set("X-User", r.Header.Get("X-User"))
		w.Header().Set("X-Forwarded-For-Seen", r.Header.Get("X-Forwarded-For"))
		w.WriteHeader(http.StatusAccepted)
		io.Copy(w, r.Body)
	}))
	t.Cleanup(backend.Close)
	// The admin listener's port is chosen before the stack names it as a (refused) backend.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	adminAddr := ln.Addr().String()
	ln.Close()

	fnDir := t.TempDir()
	if err := os.WriteFile(filepath.Join(fnDir, "index.mjs"), []byte(integrationsHandler), 0o644); err != nil {
		t.Fatal(err)
	}
	stack := fmt.Sprintf(`version: 1
name: integrations
functions:
  js: {source: %q, runtime: nodejs20.x, handler: index.handler, isolation: none}
apis:
  web:
    type: http
    stages:
      $default: {variables: {backend: %q}}
    routes:
      ANY /legacy/{proxy+}:
        integration:
          type: http_proxy
          target: "http://${stageVariables.backend}/v2/{proxy}"
          requestParameters: {"overwrite:header.x-user": "${request.header.x-id}-${context.stage}"}
      GET /health:
        integration: {type: mock, statusCode: 200, body: '{"ok": true, "id": "$context.requestId", "q": "$input.params(''q'')"}'}
      GET /v1/{id}:
        integration: {target: js, payloadFormatVersion: "1.0"}
      GET /admin/{proxy+}:
        integration: {type: http_proxy, target: "http://%s/{proxy}"}
  shop:
    type: rest
    mount: /shop
    stages:
      dev: {cache: {sizeMB: 1, ttl: 60s}}
    models:
      Pet: {schema: {type: object, required: [name], properties: {name: {type: string}}}}
    authorizers:
      bearer: {type: token, function: js, identityValidationExpression: "^Bearer ", resultTtl: 60s}
    routes:
      GET /pets/{id}: {function: js, authorization: {type: function, authorizer: bearer}}
      POST /pets: {function: js, request: {models: {application/json: Pet}}}
`, fnDir, strings.TrimPrefix(backend.URL, "http://"), adminAddr)
	n := startNode(t, writeStack(t, stack), newDataDir(t), func(o *Options) { o.AdminAddr = adminAddr })
	t.Cleanup(func() { n.Stop(context.Background()) })
	base := "http://" + n.GatewayAddr()

	t.Run("http proxy", func(t *testing.T) {
		r := send(t, "POST", base+"/legacy/a/b?x=1&x=2", "hello", "X-Id", "u1")
		if r.status != http.StatusAccepted || r.body != "hello" || r.header.Get("X-Backend-Saw") != "POST /v2/a/b?x=1&x=2" ||
			r.header.Get("X-User") != "u1-$default" || r.header.Get("X-Forwarded-For-Seen") != "127.0.0.1" || r.header.Get("Apigw-Requestid") == "" {
			t.Errorf("proxied: %d %v %q", r.status, r.header, r.body)
		}
	})
	t.Run("node's own admin port is refused", func(t *testing.T) {
		before := backendHits.Load()
		r := send(t, "GET", base+"/admin/healthz", "")
		if r.status != http.StatusInternalServerError || r.body != `{"message":"Internal Server Error"}` {
			t.Errorf("a route to the admin listener: %d %q", r.status, r.body)
		}
		if backendHits.Load() != before {
			t.Errorf("the backend was called")
		}
	})
	t.Run("mock", func(t *testing.T) {
		r := send(t, "GET", base+"/health?q=hi", "")
		want := fmt.Sprintf(`{"ok": true, "id": %q, "q": "hi"}`, r.header.Get("Apigw-Requestid"))
		if r.status != 200 || r.body != want || r.header.Get("Content-Type") != "application/json" {
			t.Errorf("mock: %d %v %s, want %s", r.status, r.header, r.body, want)
		}
	})
	t.Run("payload 1.0", func(t *testing.T) {
		r := send(t, "GET", base+"/v1/7?a=1&a=2", "", "X-Multi-In", "p", "X-Multi-In", "q")
		var ev events.APIGatewayProxyRequest
		if err := json.Unmarshal([]byte(r.body), &ev); r.status != 200 || err != nil {
			t.Fatalf("%d %s (%v)", r.status, r.body, err)
		}
		if ev.Resource != "/v1/{id}" || ev.Path != "/v1/7" || ev.HTTPMethod != "GET" || ev.PathParameters["id"] != "7" ||
			strings.Join(ev.MultiValueQueryStringParameters["a"], ",") != "1,2" || ev.QueryStringParameters["a"] != "2" ||
			strings.Join(ev.MultiValueHeaders["x-multi-in"], ",") != "p,q" || ev.RequestContext.RequestID != r.header.Get("Apigw-Requestid") {
			t.Errorf("event: %+v", ev)
		}
		if got := r.header.Values("X-Multi"); strings.Join(got, ",") != "a,b" {
			t.Errorf("multiValueHeaders reached the client as %q", got)
		}
	})
	t.Run("rest", func(t *testing.T) {
		r := send(t, "GET", base+"/shop/dev/nope", "")
		if r.status != http.StatusForbidden || r.body != `{"message":"Missing Authentication Token"}` || r.header.Get("X-Amzn-Errortype") != "MissingAuthenticationTokenException" {
			t.Errorf("unknown path: %d %v %s", r.status, r.header, r.body)
		}
		r = send(t, "GET", base+"/shop/dev/pets/1", "", "Authorization", "nope")
		if r.status != http.StatusUnauthorized {
			t.Errorf("a token the validation expression refuses: %d %s", r.status, r.body)
		}
		r = send(t, "GET", base+"/shop/dev/pets/1", "", "Authorization", "Bearer deny")
		if r.status != http.StatusUnauthorized || r.body != `{"message":"Unauthorized"}` {
			t.Errorf("an authorizer failing with Unauthorized: %d %s", r.status, r.body)
		}
		r = send(t, "GET", base+"/shop/dev/pets/1", "", "Authorization", "Bearer bad")
		if r.status != http.StatusForbidden || !strings.Contains(r.body, "explicit deny") {
			t.Errorf("a denying policy: %d %s", r.status, r.body)
		}
		first := send(t, "GET", base+"/shop/dev/pets/1", "", "Authorization", "Bearer good")
		var ev events.APIGatewayProxyRequest
		if err := json.Unmarshal([]byte(first.body), &ev); first.status != 200 || err != nil {
			t.Fatalf("allowed: %d %s (%v)", first.status, first.body, err)
		}
		if ev.Resource != "/pets/{id}" || ev.Path != "/pets/1" || ev.RequestContext.Stage != "dev" || ev.RequestContext.Authorizer["principalId"] != "user-1" ||
			ev.RequestContext.Authorizer["tier"] != "gold" || ev.RequestContext.RequestID != first.header.Get("X-Amzn-Requestid") {
			t.Errorf("REST event: %+v", ev)
		}
		// The stage cache answers the same request again: the function's body, with the first
		// request's id in it, under a new request id.
		again := send(t, "GET", base+"/shop/dev/pets/1", "", "Authorization", "Bearer good")
		if again.status != 200 || again.body != first.body || again.header.Get("X-Amzn-Requestid") == first.header.Get("X-Amzn-Requestid") {
			t.Errorf("cached: %d %s, first %s", again.status, again.body, first.body)
		}
		other := send(t, "GET", base+"/shop/dev/pets/2", "", "Authorization", "Bearer good")
		if other.status != 200 || other.body == first.body {
			t.Errorf("another path parameter was answered from the cache: %d %s", other.status, other.body)
		}
		r = send(t, "POST", base+"/shop/dev/pets", `{"kind":"dog"}`, "Content-Type", "application/json")
		if r.status != http.StatusBadRequest || r.body != `{"message":"Invalid request body"}` || r.header.Get("X-Amzn-Errortype") != "BadRequestException" {
			t.Errorf("invalid body: %d %v %s", r.status, r.header, r.body)
		}
		r = send(t, "POST", base+"/shop/dev/pets", `{"name":"rex"}`, "Content-Type", "application/json")
		if r.status != 200 || !strings.Contains(r.body, `"body":"{\"name\":\"rex\"}"`) {
			t.Errorf("valid body: %d %s", r.status, r.body)
		}
	})
}
