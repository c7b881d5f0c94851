package spec

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"
)

func validStack() *Stack {
	return &Stack{
		Version: SchemaVersion, Name: "shop",
		Functions: map[string]Function{"hello": {Name: "hello", Source: "/src/hello", Kind: SourceGo, FunctionSettings: FunctionSettings{
			MemoryMB: DefaultMemoryMB, Timeout: Duration(DefaultTimeout), IdleTimeout: Duration(DefaultIdleTimeout)}}},
		APIs: map[string]API{"web": {Name: "web", Type: APITypeHTTP, Mount: "/",
			Stages: map[string]Stage{DefaultStage: {Name: DefaultStage}},
			Routes: Routes{{Key: "GET /hello", Authorization: Authorization{Type: AuthNone},
				Integration: Integration{Type: IntegrationFunction, Target: "hello", PayloadFormatVersion: PayloadFormat2, Timeout: Duration(time.Second)}}}}},
		IAM: IAM{Region: DefaultRegion, AccountID: DefaultAccountID},
	}
}

func TestValidateFindsEveryProblem(t *testing.T) {
	s := validStack()
	if errs := s.Validate(); errs != nil {
		t.Fatalf("valid stack: %v", errs)
	}
	fn := s.Functions["hello"]
	fn.MemoryMB = 1
	s.Functions["hello"] = fn
	web := s.APIs["web"]
	web.Routes = append(web.Routes,
		Route{Key: "GET /x/:id", Authorization: Authorization{Type: AuthNone}, Integration: web.Routes[0].Integration},
		Route{Key: "GET /y", Authorization: Authorization{Type: "jwt"}, Integration: Integration{Type: IntegrationFunction, Target: "nosuch", PayloadFormatVersion: PayloadFormat2, Timeout: Duration(time.Second)}})
	s.APIs["web"] = web
	s.APIs["other"] = API{Name: "other", Type: APITypeHTTP, Mount: "/", Stages: web.Stages, Routes: web.Routes[:1]}
	errs := s.Validate()
	want := []string{
		"functions.hello.memory: 1 is out of range",
		`apis.web.routes["GET /x/:id"]: the segment ":id" would match only the literal text`,
		`apis.web.routes["GET /y"].integration.target: no function named "nosuch"`,
		`apis.web.routes["GET /y"].authorization.authorizer: required: the name of a jwt authorizer`,
		`apis.web.mount: APIs other and web are both mounted at / on any host`,
	}
	if len(errs) != len(want) {
		t.Fatalf("%d problems, want %d:\n%v", len(errs), len(want), errs)
	}
	for i, w := range want {
		if !strings.HasPrefix(errs[i].Error(), w) {
			t.Errorf("problem %d: got %s, want %s…", i, errs[i], w)
		}
	}
}

// An API checked on its own has paths relative to it, and its targets are checked against the
// functions the environment names.
func TestAPIValidate(t *testing.T) {
	api := validStack().APIs["web"]
	if errs := api.Validate("web", FunctionsEnv([]string{"hello"}, false)); errs != nil {
		t.Fatal(errs)
	}
	errs := api.Validate("web", FunctionsEnv([]string{"other"}, false))
	if len(errs) != 1 || errs[0].Error() != `routes["GET /hello"].integration.target: no function named "hello" in functions (defined: other)` {
		t.Fatalf("got %v", errs)
	}
	if errs := api.Validate("bad name", FunctionsEnv([]string{"hello"}, false)); len(errs) != 1 || errs[0].Path != "name" {
		t.Fatalf("got %v", errs)
	}
}

func TestRouteKeys(t *testing.T) {
	for key, want := range map[string]string{
		"$default":            "",
		"GET /":               "",
		"ANY /{proxy+}":       "",
		"GET /a/{id}/b":       "",
		"get /x":              "the method",
		"FETCH /x":            `method "FETCH" is not one of`,
		"GET /a/":             `path must not end with "/"`,
		"GET /a//b":           "empty path segment",
		"GET /a/{p+}/b":       "a greedy parameter must be the last segment",
		"GET /a/{x}/{x}":      `parameter name "x" used twice`,
		"GET /a/x{y}":         `character '{' not allowed`,
		"GET /a/{}":           "parameter name must be",
		"GET /*":              "would match only a literal *",
		"GET /users/:id":      "would match only the literal text",
		"GET /a b":            "must not contain spaces",
		"GET":                 "not a route key",
		"GET /a/{id}/{rest+}": "",
	} {
		got := CheckRouteKey(key)
		if want == "" && got != "" || want != "" && !strings.Contains(got, want) {
			t.Errorf("CheckRouteKey(%q) = %q, want %q", key, got, want)
		}
	}
	a, _ := ParseRouteKey("GET /a/{x}/{rest+}")
	b, _ := ParseRouteKey("GET /a/{y}/{more+}")
	if a.Pattern() != b.Pattern() || a.Pattern() != "GET /a/{}/{+}" {
		t.Errorf("patterns %q and %q", a.Pattern(), b.Pattern())
	}
}

// JSON uses the stack file's keys and writes durations as a stack file does; routes keep their
// order, and names come from the keys.
func TestJSON(t *testing.T) {
	s := validStack()
	web := s.APIs["web"]
	web.Routes = append(Routes{{Key: "POST /z", Authorization: Authorization{Type: AuthNone}, Integration: web.Routes[0].Integration}}, web.Routes...)
	web.Authorizers = map[string]Authorizer{"j": {Name: "j", Type: AuthorizerJWT, JWT: &JWTAuthorizer{Issuer: "https://i.example.com",
		Audiences: []string{"a"}, IdentitySource: DefaultJWTIdentitySource, Algorithms: DefaultJWTAlgorithms(), Skew: Duration(90 * time.Second)}}}
	s.APIs["web"] = web
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"routes":{"POST /z":{`, `"timeout":"1s"`, `"memory":128`, `"kind":"go"`,
		`"authorizers":{"j":{"type":"jwt","issuer":"https://i.example.com"`, `"skew":"1m30s"`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("JSON lacks %s:\n%s", want, b)
		}
	}
	var back Stack
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if errs := back.Validate(); errs != nil {
		t.Fatalf("read back: %v", errs)
	}
	got := back.APIs["web"]
	if got.Name != "web" || got.Routes[0].Key != "POST /z" || got.Routes[1].Key != "GET /hello" || got.Authorizers["j"].JWT.Skew.D() != 90*time.Second ||
		got.Stages[DefaultStage].Name != DefaultStage || back.Functions["hello"].Name != "hello" {
		t.Errorf("read back as %+v", back)
	}
	var d Duration
	if err := json.Unmarshal([]byte(`3000`), &d); err == nil {
		t.Error("a number read as a duration")
	}
}

func TestStackNameOf(t *testing.T) {
	for in, want := range map[string]string{"sam-app": "sam-app", "My App_2": "my-app-2", "--": DefaultStackName, "": DefaultStackName,
		strings.Repeat("x", 70): strings.Repeat("x", 63), "orders-service.v2": "orders-service-v2"} {
		if got := StackNameOf(in); got != want {
			t.Errorf("StackNameOf(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestAccessLogTokens(t *testing.T) {
	for _, tc := range []struct {
		format     string
		text, vars []string
	}{
		{"$context.requestId", []string{"", ""}, []string{"requestId"}},
		{`{"id":"$context.requestId","s":$context.status}`, []string{`{"id":"`, `","s":`, "}"}, []string{"requestId", "status"}},
		{"$context.status. $context. done $context.authorizer.claims.sub-x", []string{"", ". $context. done ", ""}, []string{"status", "authorizer.claims.sub-x"}},
		{"no variables", []string{"no variables"}, nil},
	} {
		text, vars := AccessLogTokens(tc.format)
		if !slices.Equal(text, tc.text) || !slices.Equal(vars, tc.vars) {
			t.Errorf("AccessLogTokens(%q) = %q, %q; want %q, %q", tc.format, text, vars, tc.text, tc.vars)
		}
	}
	for _, name := range []string{AccessLogCLF, AccessLogJSON, AccessLogXML, AccessLogCSV} {
		format, _ := AccessLogPreset(name)
		if e := checkAccessLog([]string{"accessLog"}, AccessLog{Format: format, Destination: AccessLogStdout}); e != nil {
			t.Errorf("preset %s: %v", name, e)
		}
	}
}
