package serverless

import (
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/tools/txtar"

	"gatehouse.dev/gatehouse/internal/doctree"
	"gatehouse.dev/gatehouse/internal/spec"
	"gatehouse.dev/gatehouse/internal/stackfile"
	"gatehouse.dev/gatehouse/internal/testfix"
)

var update = flag.Bool("update", false, "rewrite the golden files of testdata/*.txtar")

// readService writes the archive's files to a directory and reads its serverless.yml as a stack: the
// stack as YAML (with the directory written $DIR), the notices, and the error, one of the two empty.
func readService(t *testing.T, files []txtar.File, o Options) (stack, notices, problem string) {
	t.Helper()
	dir := testfix.WriteArchive(t, files)
	file := filepath.Join(dir, "serverless.yml")
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if o.Env == nil {
		o.Env = func(string) (string, bool) { return "", false }
	}
	doc, err := Parse(file, data)
	if err != nil {
		t.Fatal(err)
	}
	res, err := Read(file, doc, o)
	var s any
	if err == nil {
		var notes []string
		for _, n := range res.Notices {
			notes = append(notes, n.Error())
		}
		notices = strings.Join(notes, "\n")
		s, err = stackfile.ParseDoc(file, res.Stack, dir)
	}
	if err != nil {
		return "", strings.ReplaceAll(notices, dir, "$DIR"), strings.ReplaceAll(err.Error(), dir, "$DIR")
	}
	return strings.ReplaceAll(testfix.YAML(t, s), dir, "$DIR"), strings.ReplaceAll(notices, dir, "$DIR"), ""
}

func isGolden(name string) bool { return name == "stack.yaml" || name == "notices" || name == "error" }

// TestGolden reads each testdata/*.txtar's serverless.yml and compares the stack, notices or error
// with the archive's stack.yaml, notices and error.
func TestGolden(t *testing.T) {
	testfix.Golden(t, []string{"stack.yaml", "notices", "error"}, *update, func(t *testing.T, inputs []txtar.File) map[string]string {
		stack, notices, problem := readService(t, inputs, Options{})
		return map[string]string{"stack.yaml": stack, "notices": notices, "error": problem}
	})
}

// TestOptions checks that --stage and the environment reach the variables that read them.
func TestOptions(t *testing.T) {
	ar, err := txtar.ParseFile("testdata/http-and-websocket.txtar")
	if err != nil {
		t.Fatal(err)
	}
	var inputs []txtar.File
	for _, f := range ar.Files {
		if !isGolden(f.Name) {
			inputs = append(inputs, f)
		}
	}
	env := func(name string) (string, bool) { return "s3cr3t", name == "ORDERS_API_TOKEN" }
	stack, _, problem := readService(t, inputs, Options{Stage: "prod", Env: env})
	for _, want := range []string{"TABLE: orders-service-prod", "LOG_LEVEL: WARN", "API_TOKEN: s3cr3t"} {
		if !strings.Contains(stack, want) {
			t.Errorf("with --stage prod: no %q in\n%s%s", want, stack, problem)
		}
	}
}

// TestServiceErrors checks that what cannot be served is refused at its place.
func TestServiceErrors(t *testing.T) {
	const head = "service: s\nprovider: {name: aws, runtime: python3.11}\nfunctions:\n  f:\n    handler: h.f\n"
	tests := []struct{ name, yml, want string }{
		{"no value", head + "    environment: {A: '${env:NOPE}'}\n    events: [{httpApi: GET /}]\n",
			`s.yml:6:22: functions.f.environment.A: ${env:NOPE} has no value: give it one (for ${opt:…}, a flag of gatehouse up; for ${env:…}, the environment) or a fallback such as ${env:NOPE, 'value'}`},
		{"ssm", head + "    environment: {A: '${ssm:/x/y}'}\n    events: [{httpApi: GET /}]\n",
			`s.yml:6:22: functions.f.environment.A: ${ssm:/x/y}: the variable source ssm: is not read locally (Gatehouse reads self:, opt:, env:, sls:, aws:region/accountId and file()): give the value, or a fallback`},
		{"unknown authorizer", head + "    events: [{httpApi: {method: GET, path: /, authorizer: nope}}]\n",
			`s.yml:6:59: functions.f.events[0].httpApi.authorizer: authorizer "nope" is not in provider.httpApi.authorizers`},
		{"bad httpApi", head + "    events: [{httpApi: /hello}]\n", `s.yml:6:24: functions.f.events[0].httpApi: httpApi "/hello": want "METHOD /path" or "*"`},
		{"azure", "service: s\nprovider: {name: azure}\nfunctions: {}\n", `s.yml:2:18: provider.name: provider "azure": Gatehouse serves aws services`},
		{"circular", "service: ${self:custom.a}\ncustom: {a: '${self:service}'}\nprovider: {name: aws}\nfunctions: {}\n",
			`s.yml:2:13: custom.a: variables refer to each other more than 32 deep (or in a circle)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc, err := Parse("s.yml", []byte(tt.yml))
			if err == nil {
				_, err = Read("s.yml", doc, Options{Env: func(string) (string, bool) { return "", false }})
			}
			if err == nil || err.Error() != tt.want {
				t.Errorf("got  %v\nwant %s", err, tt.want)
			}
		})
	}
}

// TestPayloadFormat checks that provider.httpApi.payload reaches every httpApi route, and that a
// version Gatehouse does not know is refused at the provider's key.
func TestPayloadFormat(t *testing.T) {
	yml := func(payload string) []txtar.File {
		return []txtar.File{{Name: "serverless.yml", Data: []byte("service: s\nprovider:\n  name: aws\n  runtime: python3.11\n  httpApi:\n    payload: " + payload +
			"\nfunctions:\n  f:\n    handler: h.f\n    events:\n      - httpApi: GET /a\n      - httpApi: POST /b\n")}}
	}
	stack, _, problem := readService(t, yml("'2.0'"), Options{})
	if problem != "" || strings.Count(stack, `payloadFormatVersion: "2.0"`) != 2 {
		t.Errorf("payload '2.0': %s%s", stack, problem)
	}
	stack, _, problem = readService(t, yml("1.0"), Options{})
	if problem != "" || strings.Count(stack, `payloadFormatVersion: "1.0"`) != 2 {
		t.Errorf("payload 1.0: %s%s", stack, problem)
	}
	_, _, problem = readService(t, yml("'3.0'"), Options{})
	if want := `$DIR/serverless.yml:6:14: provider.httpApi.payload: unknown payload format version "3.0": want "2.0" or "1.0"`; problem != want {
		t.Errorf("payload '3.0': %q, want %q", problem, want)
	}
}

// TestRESTStackValidates reads testdata/rest-api.txtar's service and checks, on the validated
// stack, what its REST API became: one stage, the service's, with a cache and an access log; token
// and request authorizers; models from a file and from an event; the usage plan.
func TestRESTStackValidates(t *testing.T) {
	ar, err := txtar.ParseFile("testdata/rest-api.txtar")
	if err != nil {
		t.Fatal(err)
	}
	dir := testfix.WriteArchive(t, ar.Files)
	file := filepath.Join(dir, "serverless.yml")
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := Parse(file, data)
	if err != nil {
		t.Fatal(err)
	}
	res, err := Read(file, doc, Options{Stage: "prod", Env: func(string) (string, bool) { return "", false }})
	if err != nil {
		t.Fatal(err)
	}
	s, err := stackfile.ParseDoc(file, res.Stack, dir)
	if err != nil {
		t.Fatalf("the stack made from serverless.yml does not validate: %v", err)
	}
	api := s.APIs[RESTAPIName]
	if api.Type != spec.APITypeREST || api.Mount != "/" || len(api.Stages) != 1 {
		t.Fatalf("%s: type %q at %s, stages %v; want one rest API at / with stage prod", RESTAPIName, api.Type, api.Mount, api.Stages)
	}
	st := api.Stages["prod"]
	if st.Cache == nil || st.Cache.TTL.D() != 120*time.Second || st.Cache.RequireAuthorization || st.AccessLog == nil || st.AccessLog.Destination != "group:/aws/api-gateway/pets-service-prod" {
		t.Errorf("stage prod: %+v", st)
	}
	if a := api.Authorizers["tokenAuth"]; a.Type != spec.AuthorizerToken || a.Function.ResultTTL.D() != time.Minute {
		t.Errorf("tokenAuth: %+v", a)
	}
	if a := api.Authorizers["partnerAuth"]; a.Type != spec.AuthorizerRequest || len(a.Function.IdentitySources) != 2 {
		t.Errorf("partnerAuth: %+v", a)
	}
	if _, ok := api.Models["PetModel"]; !ok || len(api.Models) != 2 {
		t.Errorf("models: %v", api.ModelSchemas())
	}
	if p, ok := s.UsagePlans["pets-service-prod"]; !ok || p.Throttle == nil || p.Throttle.Rate != 100 || p.Quota.Period != spec.QuotaPeriodMonth {
		t.Errorf("usage plans: %+v", s.UsagePlans)
	}
	keys := 0
	for _, r := range api.Routes {
		if r.APIKeyRequired {
			keys++
		}
	}
	if keys != 2 {
		t.Errorf("%d private routes, want 2", keys)
	}
}

// TestRESTServices checks what http events' settings give, and that problems are reported at
// serverless.yml's lines.
func TestRESTServices(t *testing.T) {
	const head = "service: s\nprovider:\n  name: aws\n  runtime: python3.12\n"
	fn := func(events string) string { return "functions:\n  f:\n    handler: h.f\n    events:\n" + events }
	tests := []struct {
		name, yml             string
		files                 map[string]string
		wantNotice, wantError string
		wantStack             string
	}{
		{name: "unknown schema",
			yml:       head + fn("      - http: {path: a, method: post, request: {schemas: {application/json: nope}}}\n"),
			wantError: `serverless.yml:9:77: functions.f.events[0].http.request.schemas["application/json"]: no schema "nope" in provider.apiGateway.request.schemas`},
		{name: "identity source",
			yml:       head + fn("      - http: {path: a, method: get, authorizer: {name: f, identitySource: 'header.x'}}\n"),
			wantError: `serverless.yml:9:76: functions.f.events[0].http.authorizer.identitySource: identitySource "header.x": want method.request.header.NAME, method.request.querystring.NAME, stageVariables.NAME or context.NAME, separated by commas`},
		{name: "authorizer not a function",
			yml:       head + fn("      - http: {path: a, method: get, authorizer: nope}\n"),
			wantError: `serverless.yml:9:50: functions.f.events[0].http.authorizer: no function named "nope" in functions (defined: f)`},
		{name: "javascript file",
			yml:       head + "  environment: {A: '${file(./config.js):a}'}\n" + fn("      - http: GET a\n"),
			wantError: `serverless.yml:5:20: provider.environment.A: ${file(./config.js):a}: a JavaScript file's value needs its code run, which Gatehouse does not do: write the value, or put it in a JSON or YAML file`},
		{name: "file values and fallbacks",
			yml:       head + "  environment: {A: '${file(./config.yml):db.host}', B: \"${file(./nope.yml), 'none'}\"}\n" + fn("      - http: GET a\n"),
			files:     map[string]string{"config.yml": "db:\n  host: db.internal\n"},
			wantStack: "A: db.internal\n      B: none"},
		{name: "private without a plan",
			yml:        head + fn("      - http: {path: a, method: get, private: true}\n"),
			wantNotice: `serverless.yml:9:47: functions.f.events[0].http.private: private endpoints ask for an API key, and provider.apiGateway has no usagePlan or apiKeys: usage plan s-dev (no throttle, no quota) is made for their keys: gatehouse keys create NAME --plan s-dev`},
		{name: "access log format",
			yml:        head + "  logs:\n    restApi: {format: '$context.requestId $context.resourcePath'}\n" + fn("      - http: GET a\n"),
			wantNotice: `serverless.yml:6:23: provider.logs.restApi.format: the access log format names $context.resourcePath, which Gatehouse's access logs do not have: the json format is written instead`},
		{name: "cors",
			yml:       head + fn("      - http: {path: a, method: get, cors: {origin: 'https://A.example.com', allowCredentials: true}}\n"),
			wantStack: "allowOrigins:\n      - https://a.example.com\n      allowMethods:\n      - OPTIONS\n      - GET"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			files := []txtar.File{{Name: "serverless.yml", Data: []byte(tt.yml)}}
			for name, body := range tt.files {
				files = append(files, txtar.File{Name: name, Data: []byte(body)})
			}
			stack, notices, problem := readService(t, files, Options{})
			if problem = strings.TrimPrefix(problem, "$DIR/"); problem != tt.wantError {
				t.Errorf("error\ngot  %s\nwant %s", problem, tt.wantError)
			}
			if tt.wantNotice != "" && !strings.Contains(notices, "$DIR/"+tt.wantNotice) {
				t.Errorf("notices\n%s\nwant %s", notices, tt.wantNotice)
			}
			if !strings.Contains(stack, tt.wantStack) {
				t.Errorf("stack\n%s\nwant %s", stack, tt.wantStack)
			}
		})
	}
}

// TestSnapStart checks what a function's snapStart gives the function the stack file is made of:
// true turns snapStart on for a WebAssembly function; a Node.js or Python function keeps its usual
// starts, with a notice; a value other than true or false is refused at its line.
func TestSnapStart(t *testing.T) {
	service := func(runtime, props string) string {
		return "service: s\nprovider:\n  name: aws\n  runtime: " + runtime + "\nfunctions:\n  f:\n    handler: h.f\n" + props +
			"    events:\n      - httpApi: GET /\n"
	}
	tests := []struct {
		name, yml             string
		want                  string // the stack file function's snapStart; "" for none
		wantNotice, wantError string
	}{
		{name: "on", yml: service("wasm", "    snapStart: true\n"), want: "true"},
		{name: "off", yml: service("wasm", "    snapStart: false\n")},
		{name: "not set", yml: service("wasm", "")},
		{name: "python function", yml: service("python3.12", "    snapStart: true\n"),
			wantNotice: `s.yml:8:16: functions.f.snapStart: function f: snapStart applies to WebAssembly functions only here; a python3.12 function starts as usual: ignored`},
		{name: "not a boolean", yml: service("wasm", "    snapStart: {applyOn: PublishedVersions}\n"),
			wantError: `s.yml:8:16: functions.f.snapStart: function f: snapStart: want true or false`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc, err := Parse("s.yml", []byte(tt.yml))
			if err != nil {
				t.Fatal(err)
			}
			res, err := Read("s.yml", doc, Options{Env: func(string) (string, bool) { return "", false }})
			if err != nil {
				if err.Error() != tt.wantError {
					t.Fatalf("error\ngot  %v\nwant %s", err, tt.wantError)
				}
				return
			}
			if tt.wantError != "" {
				t.Fatalf("no error, want %s", tt.wantError)
			}
			var notices []string
			for _, n := range res.Notices {
				notices = append(notices, n.Error())
			}
			if tt.wantNotice != "" && !slices.Contains(notices, tt.wantNotice) {
				t.Errorf("notices\n%s\nwant %s", strings.Join(notices, "\n"), tt.wantNotice)
			}
			got := res.Stack.Get("functions").Get("f").Get("snapStart")
			if got.Scalar() != tt.want || got != nil && got.Kind != doctree.Bool {
				t.Errorf("snapStart %+v, want %q", got, tt.want)
			}
		})
	}
	// The Python function's stack validates: the import does not fail.
	if _, _, problem := readService(t, []txtar.File{{Name: "serverless.yml", Data: []byte(service("python3.12", "    snapStart: true\n"))}}, Options{}); problem != "" {
		t.Errorf("the python function's stack: %s", problem)
	}
}
