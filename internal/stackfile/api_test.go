package stackfile

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"gatehouse.dev/gatehouse/internal/spec"
)

// everyAPISetting uses every key an API can have.
const everyAPISetting = `version: 1
functions:
  hello: {source: hello}
  echo: {source: echo}
usagePlans:
  basic: {throttle: {rate: 5, burst: 10}}
apis:
  web:
    type: http
    mount: /shop
    host: api.example.com
    cors: {allowOrigins: ["https://example.com"], allowMethods: [GET], allowHeaders: [x-a], exposeHeaders: [x-b], maxAge: 600, allowCredentials: true}
    authorizers:
      jwt1: {type: jwt, issuer: "https://issuer.example.com", audiences: [shop], jwksFile: keys.json, skew: 30s, algorithms: [ES256]}
      fn1: {type: function, function: echo, identitySources: [$request.header.X-Token], resultTtl: 5m, timeout: 2s, simpleResponses: false}
    stages:
      prod:
        variables: {color: blue}
        throttle: {rate: 100, burst: 200}
        routeThrottles: {"POST /orders": {rate: 1.5, burst: 3}}
      $default: {}
    routes:
      GET /orders/{id}: {function: "hello:prod", timeout: 5s, authorization: {type: jwt, authorizer: jwt1, scopes: [read]}}
      POST /orders: {function: hello, apiKeyRequired: true}
      ANY /admin/{proxy+}: {function: hello, authorization: {type: function, authorizer: fn1}}
      GET /signed: {integration: {type: function, target: echo, timeout: 1s}, authorization: {type: iam}}
      GET /v1/{id}:
        integration:
          target: echo
          payloadFormatVersion: "1.0"
          responseParameters: {"404": {"overwrite:statuscode": "200", "append:header.x-missing": "$response.body.id"}}
      ANY /legacy/{proxy+}:
        integration:
          type: http_proxy
          target: "https://${stageVariables.backend}/api/{proxy}"
          method: ANY
          timeout: 10s
          tls: {caFile: ca.pem, serverName: orders.internal}
          requestParameters: {"overwrite:header.x-user": "${request.header.x-id}-${context.requestId}", "remove:header.cookie": ""}
          responseParameters: {"500": {"overwrite:statuscode": "502"}}
      GET /health:
        integration: {type: mock, statusCode: 200, headers: {x-mock: "yes"}, body: '{"ok": true, "id": "$context.requestId"}'}
  chat:
    type: websocket
    routeSelectionExpression: $request.body.type
    limits: {maxMessageBytes: 65536, maxFrameBytes: 4096, idleTimeout: 5m, maxConnectionDuration: 1h, sendQueue: 64}
    authorizers:
      fn2: {type: function, function: echo, identitySources: [$request.querystring.token]}
    routes:
      $connect: {function: echo, authorization: {type: function, authorizer: fn2}, apiKeyRequired: true}
      $default: {function: hello}
      send: {function: hello, routeResponse: true, timeout: 10s}
`

func parseEverySetting(t *testing.T) (*spec.Stack, string) {
	t.Helper()
	dir := stackDir(t)
	if err := os.WriteFile(filepath.Join(dir, "keys.json"), []byte(`{"keys":[]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "ca.pem"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := Parse("gatehouse.yaml", []byte(everyAPISetting), dir)
	if err != nil {
		t.Fatal(err)
	}
	return s, dir
}

// What spec.API marshals to reads back as the same API: the admin API returns definitions that
// can be applied again as they are.
func TestAPIJSONRoundTrip(t *testing.T) {
	s, _ := parseEverySetting(t)
	env := spec.EnvOf(s)
	for name, api := range s.APIs {
		for i := range api.Routes {
			api.Routes[i].Line, api.Routes[i].Column = 0, 0
		}
		b, err := json.Marshal(api)
		if err != nil {
			t.Fatal(err)
		}
		got, err := ParseAPI("body", b, "", name, env)
		if err != nil {
			t.Fatalf("%s: %v\n%s", name, err, b)
		}
		for i := range got.Routes {
			got.Routes[i].Line, got.Routes[i].Column = 0, 0
		}
		if !reflect.DeepEqual(got, api) {
			t.Errorf("%s read back as\n%+v\nwant\n%+v\nfrom %s", name, got, api, b)
		}
		// The order of the routes survives.
		if got.Routes[0].Key != api.Routes[0].Key || got.Routes[len(got.Routes)-1].Key != api.Routes[len(api.Routes)-1].Key {
			t.Errorf("%s: routes reordered", name)
		}
	}
}

// A definition with several problems gets all of them at once, each placed in the file.
func TestParseAPIReportsEveryProblem(t *testing.T) {
	def := `type: http
stages:
  prod:
    throttle: {rate: 0, burst: 1}
routes:
  GET /a/{x}: {function: nosuch}
  GET /a/{y}: {function: hello}
  GET /b//c: {function: hello}
`
	_, err := ParseAPI("orders.yaml", []byte(def), "", "orders", spec.FunctionsEnv([]string{"hello"}, false))
	var errs Errors
	if !errors.As(err, &errs) {
		t.Fatalf("got %v, want Errors", err)
	}
	want := []string{
		`orders.yaml:4:22: stages.prod.throttle.rate: 0 is out of range`,
		`orders.yaml:6:26: routes["GET /a/{x}"].function: no function named "nosuch" in functions (defined: hello)`,
		`orders.yaml:7:3: routes["GET /a/{y}"]: matches the same requests as the route "GET /a/{x}"`,
		`orders.yaml:8:3: routes["GET /b//c"]: empty path segment`,
	}
	if len(errs) != len(want) {
		t.Fatalf("%d problems, want %d:\n%v", len(errs), len(want), err)
	}
	for i, w := range want {
		if !strings.HasPrefix(errs[i].Error(), w) {
			t.Errorf("problem %d:\n got %s\nwant %s…", i, errs[i], w)
		}
	}
}

func TestParseAPIStructure(t *testing.T) {
	env := spec.FunctionsEnv([]string{"hello"}, false)
	for _, tt := range []struct{ name, def, want string }{
		{"unknown key", "type: http\nroutes: {$default: {function: hello}}\nmounts: /x\n", `d.yaml:3:1: mounts: unknown key`},
		{"empty", "", `d.yaml:1:1: the API definition is empty`},
		{"relative key file", "type: http\nauthorizers: {j: {type: jwt, issuer: \"https://i.example.com\", audiences: [a], jwksFile: keys.json}}\nroutes: {$default: {function: hello}}\n",
			`d.yaml:2:89: authorizers.j.jwksFile: "keys.json" is a relative path, and this definition has no directory to resolve it against`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseAPI("d.yaml", []byte(tt.def), "", "web", env)
			if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
				t.Errorf("got %v\nwant %s…", err, tt.want)
			}
		})
	}
}

// ParseAPIs reads the APIs of a whole stack file, or of a file that holds only apis:.
func TestParseAPIs(t *testing.T) {
	s, dir := parseEverySetting(t)
	apis, err := ParseAPIs("gatehouse.yaml", []byte(everyAPISetting), dir, spec.EnvOf(s))
	if err != nil || len(apis) != 2 || apis[0].Name != "web" || apis[1].Name != "chat" {
		t.Fatalf("%+v %v", apis, err)
	}
	_, err = ParseAPIs("part.yaml", []byte("apis:\n  x:\n    type: http\n    routes: {GET /x: {function: nosuch}}\n"), dir, spec.EnvOf(s))
	if err == nil || !strings.HasPrefix(err.Error(), `part.yaml:4:33: apis.x.routes["GET /x"].function: no function named "nosuch"`) {
		t.Errorf("got %v", err)
	}
	if _, err := ParseAPIs("part.yaml", []byte("functions: {}\n"), dir, spec.EnvOf(s)); err == nil || !strings.Contains(err.Error(), "no apis:") {
		t.Errorf("got %v", err)
	}
}

func TestFunctionRuntime(t *testing.T) {
	dir := stackDir(t)
	stack := func(runtime string) string {
		return "version: 1\nfunctions:\n  hello:\n    source: hello\n" + runtime + "apis:\n  web:\n    type: http\n    routes: {GET /x: {function: hello}}\n"
	}
	s, err := Parse("gatehouse.yaml", []byte(stack("    runtime: wasm\n")), dir)
	if err != nil || s.Functions["hello"].RuntimeName() != spec.RuntimeWasm {
		t.Fatalf("runtime: wasm: %v", err)
	}
	if s, err := Parse("gatehouse.yaml", []byte(stack("")), dir); err != nil || s.Functions["hello"].RuntimeName() != spec.RuntimeWasm {
		t.Fatalf("no runtime: %v", err)
	}
	_, err = Parse("gatehouse.yaml", []byte(stack("    runtime: ruby3.3\n")), dir)
	if err == nil || !strings.HasPrefix(err.Error(), "gatehouse.yaml:5:14: functions.hello.runtime: the ruby3.3 runtime is not available") {
		t.Errorf("runtime: ruby3.3: %v", err)
	}
	// A process runtime needs its handler; isolation is a choice of two.
	_, err = Parse("gatehouse.yaml", []byte(stack("    runtime: python3.12\n")), dir)
	if err == nil || !strings.HasPrefix(err.Error(), "gatehouse.yaml:3:3: functions.hello.handler: required for the python3.12 runtime") {
		t.Errorf("runtime: python3.12 without a handler: %v", err)
	}
	s, err = Parse("gatehouse.yaml", []byte(stack("    runtime: python3.12\n    handler: app.lambda_handler\n")), dir)
	if err != nil || s.Functions["hello"].Handler != "app.lambda_handler" || s.Functions["hello"].Kind != spec.SourceGo || s.Functions["hello"].Isolation != "" {
		t.Errorf("a python3.12 function: %+v %v", s, err)
	}
	_, err = Parse("gatehouse.yaml", []byte(stack("    runtime: python3.12\n    handler: app.lambda_handler\n    isolation: chroot\n")), dir)
	if err == nil || !strings.HasPrefix(err.Error(), `gatehouse.yaml:7:16: functions.hello.isolation: "chroot" is not an isolation`) {
		t.Errorf("isolation: chroot: %v", err)
	}
}
