package gateway

import (
	"net"
	"net/http"
	"strings"
	"testing"

	"gatehouse.dev/gatehouse/internal/spec"
	"gatehouse.dev/gatehouse/internal/stackfile"
)

// A resource policy is evaluated before the route's authorizer and function: a denied address gets
// 403 with API Gateway's message and nothing runs; an allowed one goes on. The test's client is
// 127.0.0.1.
func TestResourcePolicy(t *testing.T) {
	env := spec.FunctionsEnv([]string{"hello"}, false)
	for _, c := range []struct {
		name, policy string
		status       int
		message      string
	}{
		{"allow list with the client", `{Statement: [{Effect: Allow, Principal: "*", Action: "execute-api:Invoke", Resource: "execute-api:/*", Condition: {IpAddress: {"aws:SourceIp": ["127.0.0.0/8"]}}}]}`, 200, ""},
		{"allow list without the client", `{Statement: [{Effect: Allow, Principal: "*", Action: "execute-api:Invoke", Resource: "execute-api:/*", Condition: {IpAddress: {"aws:SourceIp": "10.0.0.0/8"}}}]}`, 403,
			"User: anonymous is not authorized to perform: execute-api:Invoke on resource: arn:aws:execute-api:us-east-1:000000000000:web/$default/GET/hello"},
		{"deny list with the client", `{Statement: [{Effect: Allow, Principal: "*", Action: "execute-api:Invoke", Resource: "execute-api:/*"}, {Effect: Deny, Principal: "*", Action: "execute-api:Invoke", Resource: "execute-api:/*/GET/*", Condition: {IpAddress: {"aws:SourceIp": "127.0.0.1"}}}]}`, 403,
			"User: anonymous is not authorized to perform: execute-api:Invoke on resource: arn:aws:execute-api:us-east-1:000000000000:web/$default/GET/hello with an explicit deny"},
		{"policy as JSON text", `'{"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "execute-api:Invoke", "Resource": "execute-api:/*", "Condition": {"NotIpAddress": {"aws:SourceIp": "10.0.0.0/8"}}}]}'`, 200, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			api, err := stackfile.ParseAPI("p.yaml", []byte("type: http\nresourcePolicy: "+c.policy+"\nroutes: {GET /hello: {function: hello}}\n"), "", "web", env)
			if err != nil {
				t.Fatal(err)
			}
			inv := &fakeInvoker{}
			ts := startServer(t, Config{APIs: []API{FromSpec("", api)}}, inv)
			r := ts.get(t, "/hello")
			if r.status != c.status {
				t.Fatalf("%d %s, want %d", r.status, r.body, c.status)
			}
			if c.status == http.StatusForbidden {
				wantGatewayError(t, c.name, r, 403, c.message)
				if n := len(inv.invocations()); n != 0 {
					t.Errorf("the function ran %d times", n)
				}
			}
		})
	}
	// A policy that cannot be evaluated here is refused when the API is read, with its reason.
	_, err := stackfile.ParseAPI("p.yaml", []byte("type: http\nresourcePolicy: {Statement: [{Effect: Allow, Principal: {AWS: \"arn:aws:iam::123456789012:root\"}, Action: \"execute-api:Invoke\", Resource: \"*\"}]}\nroutes: {GET /hello: {function: hello}}\n"), "", "web", env)
	if err == nil || !strings.Contains(err.Error(), "resourcePolicy") {
		t.Errorf("a policy naming an AWS account: %v", err)
	}
}

// The policy sees each client's own address: on loopback, a client from 127.0.0.2 is let through
// where one from 127.0.0.1 is refused.
func TestResourcePolicyByAddress(t *testing.T) {
	api, err := stackfile.ParseAPI("p.yaml", []byte(`type: http
resourcePolicy:
  Statement:
    - {Effect: Allow, Principal: "*", Action: "execute-api:Invoke", Resource: "execute-api:/*", Condition: {IpAddress: {"aws:SourceIp": "127.0.0.2/32"}}}
routes: {GET /hello: {function: hello}}
`), "", "web", spec.FunctionsEnv([]string{"hello"}, false))
	if err != nil {
		t.Fatal(err)
	}
	ts := startServer(t, Config{APIs: []API{FromSpec("", api)}}, &fakeInvoker{})
	for from, want := range map[string]int{"127.0.0.1": 403, "127.0.0.2": 200} {
		local, _ := net.ResolveTCPAddr("tcp", from+":0")
		c := &http.Client{Transport: &http.Transport{DialContext: (&net.Dialer{LocalAddr: local}).DialContext}}
		resp, err := c.Get(ts.base + "/hello")
		if err != nil {
			t.Fatalf("from %s: %v", from, err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("from %s: %d, want %d", from, resp.StatusCode, want)
		}
	}
}
