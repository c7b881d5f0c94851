package gateway

import (
	"net/http"
	"strings"
	"testing"

	"gatehouse.dev/gatehouse/internal/spec"
	"gatehouse.dev/gatehouse/internal/stackfile"
)

// Custom domains route by Host and base path to an API's stage, whatever its mount; a path no
// mapping covers, and an API whose execute-api endpoint is disabled, answer 403.
func TestCustomDomains(t *testing.T) {
	env := spec.FunctionsEnv([]string{"hello", "other"}, false)
	shop, err := stackfile.ParseAPI("shop.yaml", []byte("type: http\nmount: /shop\nstages: {prod: {variables: {v: p}}, dev: {}}\nroutes: {GET /hello: {function: hello}}\n"), "", "shop", env)
	if err != nil {
		t.Fatal(err)
	}
	hidden, err := stackfile.ParseAPI("hidden.yaml", []byte("type: http\nmount: /hidden\ndisableExecuteApiEndpoint: true\nroutes: {GET /x: {function: other}}\n"), "", "hidden", env)
	if err != nil {
		t.Fatal(err)
	}
	domains := map[string]spec.Domain{
		"api.example.com": {Mappings: map[string]spec.APIMapping{"": {API: "shop", Stage: "prod"}, "v2/beta": {API: "shop", Stage: "dev"}, "h": {API: "hidden", Stage: spec.DefaultStage}}},
		"*.apps.example":  {Mappings: map[string]spec.APIMapping{"": {API: "shop", Stage: "dev"}}, RedirectHTTP: true},
	}
	inv := &fakeInvoker{}
	ts := startServer(t, Config{APIs: []API{FromSpec("", shop), FromSpec("", hidden)}, Domains: DomainsFromSpec(domains, "8443")}, inv)

	for _, c := range []struct {
		host, path string
		status     int
		stage      string
	}{
		{"api.example.com", "/hello", 200, "prod"},
		{"API.example.com:8080", "/hello", 200, "prod"},
		{"api.example.com", "/v2/beta/hello", 200, "dev"},
		{"api.example.com", "/v2/hello", 404, ""}, // the root mapping, and no route /v2/hello
		{"api.example.com", "/h/x", 200, "$default"},
		{"other.example.com", "/shop/prod/hello", 200, "prod"}, // not a domain: the API's mount
		{"other.example.com", "/hidden/x", 403, ""},
	} {
		inv.setScript(nil)
		r := ts.get(t, c.path, "Host", c.host)
		if r.status != c.status {
			t.Errorf("%s%s: %d %s, want %d", c.host, c.path, r.status, r.body, c.status)
			continue
		}
		if c.status != 200 {
			continue
		}
		calls := inv.invocations()
		if len(calls) != 1 {
			t.Fatalf("%s%s: %d invocations", c.host, c.path, len(calls))
		}
		ev := decodeEvent(t, calls[0])
		if got := path(ev, "requestContext.stage"); got != c.stage {
			t.Errorf("%s%s: stage %v, want %s", c.host, c.path, got, c.stage)
		}
		if got, want := path(ev, "requestContext.domainName"), strings.ToLower(hostOnly(c.host)); got != want {
			t.Errorf("%s%s: domainName %v, want %s", c.host, c.path, got, want)
		}
	}
	// A domain that redirects plain HTTP to HTTPS.
	noFollow := &http.Client{Transport: ts.client.Transport, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	req := ts.request(t, "GET", "/nothing?a=1", "", "Host", "x.apps.example")
	resp, err := noFollow.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMovedPermanently || resp.Header.Get("Location") != "https://x.apps.example:8443/nothing?a=1" {
		t.Errorf("redirect: %d %v", resp.StatusCode, resp.Header)
	}
	// A domain's path no mapping covers: 403.
	one := map[string]spec.Domain{"one.example.com": {Mappings: map[string]spec.APIMapping{"v1": {API: "shop", Stage: "prod"}}}}
	ts.SetDomains(DomainsFromSpec(one, ""))
	if r := ts.get(t, "/v2/hello", "Host", "one.example.com"); r.status != http.StatusForbidden || r.body != `{"message":"Forbidden"}` {
		t.Errorf("unmapped base path: %d %s", r.status, r.body)
	}
	if r := ts.get(t, "/v1/hello", "Host", "one.example.com"); r.status != 200 {
		t.Errorf("after SetDomains: %d %s", r.status, r.body)
	}
}

// ACME's HTTP-01 challenges on the plain listener go to the configured handler, whatever the host,
// before any API is matched; other paths are routed as usual.
func TestACMEChallenges(t *testing.T) {
	shop, err := stackfile.ParseAPI("shop.yaml", []byte("type: http\nroutes: {$default: {function: hello}}\n"), "", "shop", spec.FunctionsEnv([]string{"hello"}, false))
	if err != nil {
		t.Fatal(err)
	}
	challenges := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/.well-known/acme-challenge/token-1" && r.Host == "shop.example.test" {
			w.Write([]byte("token-1.key-authorization"))
			return
		}
		http.NotFound(w, r)
	})
	inv := &fakeInvoker{}
	ts := startServer(t, Config{APIs: []API{FromSpec("", shop)}, ACMEChallenges: challenges}, inv)
	if r := ts.get(t, "/.well-known/acme-challenge/token-1", "Host", "shop.example.test"); r.status != 200 || r.body != "token-1.key-authorization" {
		t.Errorf("challenge: %d %q", r.status, r.body)
	}
	if r := ts.get(t, "/.well-known/acme-challenge/other", "Host", "shop.example.test"); r.status != 404 {
		t.Errorf("an unknown token: %d %q", r.status, r.body)
	}
	if n := len(inv.invocations()); n != 0 {
		t.Errorf("challenge requests reached the function %d times", n)
	}
	if r := ts.get(t, "/orders", "Host", "shop.example.test"); r.status != 200 || len(inv.invocations()) != 1 {
		t.Errorf("an ordinary request: %d", r.status)
	}
}
