package gateway

import (
	"testing"
	"time"

	"gatehouse.dev/gatehouse/internal/spec"
)

func TestFromSpec(t *testing.T) {
	age := 600
	a := spec.API{Name: "web", Type: spec.APITypeHTTP, Mount: "/shop", Host: "api.example.com",
		CORS: &spec.CORS{AllowOrigins: []string{"https://example.com"}},
		Authorizers: map[string]spec.Authorizer{
			"j": {Name: "j", Type: spec.AuthorizerJWT, JWT: &spec.JWTAuthorizer{Issuer: "https://i.example.com", Audiences: []string{"a"},
				IdentitySource: "$request.header.X-Token", Algorithms: []string{"ES256"}, Skew: spec.Duration(time.Minute)}},
			"f": {Name: "f", Type: spec.AuthorizerFunction, Function: &spec.FunctionAuthorizer{Function: "auth:3",
				IdentitySources: []string{"$request.header.X"}, ResultTTL: spec.Duration(time.Minute), Timeout: spec.Duration(time.Second)}},
		},
		Stages: map[string]spec.Stage{"prod": {Name: "prod", Variables: map[string]string{"a": "b"}, Throttle: &spec.Throttle{Rate: 2, Burst: 3},
			RouteThrottles: map[string]spec.Throttle{"GET /x": {Rate: 1, Burst: 1}}}, "$default": {Name: "$default"}},
		Routes: spec.Routes{{Key: "GET /x", Integration: spec.Integration{Target: "hello:prod", Timeout: spec.Duration(5 * time.Second)},
			Authorization: spec.Authorization{Type: spec.AuthNone}, APIKeyRequired: true}},
	}
	g := FromSpec("abcdefghij", a)
	if g.ID != "web" || g.EndpointID != "abcdefghij" || g.Mount != "/shop" || g.Host != "api.example.com" || g.Spec.Name != "web" || g.WebSocket != nil {
		t.Errorf("API %+v", g)
	}
	if g.CORS == nil || g.CORS.MaxAge != CORSMaxAgeUnset {
		t.Errorf("CORS without maxAge: %+v", g.CORS)
	}
	a.CORS.MaxAge = &age
	if g := FromSpec("abcdefghij", a); g.CORS.MaxAge != 600 {
		t.Errorf("CORS maxAge: %+v", g.CORS)
	}
	if j := g.Authorizers["j"]; j.Type != AuthJWT || j.JWT.Skew != time.Minute || j.IdentitySources[0] != "$request.header.X-Token" || j.JWT.Algorithms[0] != "ES256" {
		t.Errorf("JWT authorizer %+v", j)
	}
	if f := g.Authorizers["f"]; f.Type != AuthFunction || f.Function != "auth:3" || f.ResultTTL != time.Minute || f.Timeout != time.Second {
		t.Errorf("function authorizer %+v", f)
	}
	if len(g.Stages) != 2 || g.Stages[0].Name != "$default" || g.Stages[1].Throttle != (ThrottleSettings{Rate: 2, Burst: 3}) || g.Stages[1].RouteThrottles["GET /x"].Rate != 1 {
		t.Errorf("stages %+v", g.Stages)
	}
	r := g.Routes[0]
	if r.Function != "hello:prod" || r.Timeout != 5*time.Second || r.Auth.Type != AuthNone || !r.APIKeyRequired || r.Spec.Key != "GET /x" {
		t.Errorf("route %+v", r)
	}
	ws := FromSpec("", spec.API{Name: "chat", Type: spec.APITypeWebSocket, RouteSelectionExpression: "$request.body.type",
		WebSocket: &spec.WebSocketLimits{MaxMessageBytes: 4096, MaxFrameBytes: 1024, IdleTimeout: spec.Duration(time.Minute), MaxConnectionDuration: spec.Duration(time.Hour), SendQueue: 9}})
	if w := ws.WebSocket; w == nil || *w != (WebSocketSettings{RouteSelectionExpression: "$request.body.type", MaxMessageBytes: 4096, MaxFrameBytes: 1024,
		IdleTimeout: time.Minute, MaxDuration: time.Hour, SendQueue: 9}) {
		t.Errorf("WebSocket settings %+v", w)
	}
	plans := UsagePlansFromSpec(map[string]spec.UsagePlan{"p": {Throttle: &spec.Throttle{Rate: 5, Burst: 6}, Quota: &spec.Quota{Limit: 10, Period: "day"}}})
	if p := plans["p"]; p.Throttle.Burst != 6 || p.Quota.Limit != 10 || p.Quota.Period != "day" {
		t.Errorf("usage plan %+v", p)
	}
}

// An API with an EndpointID answers at {id}.execute-api.localhost and under /{id}/ on any host,
// besides its own host and mount.
func TestEndpointAddresses(t *testing.T) {
	inv := &fakeInvoker{}
	inv.setScript(answer(`{"statusCode": 200, "body": "ok"}`))
	shop := API{ID: "shop", EndpointID: "abc0123456", Host: "shop.example.com", Mount: "/shop", Stages: []Stage{{Name: "prod"}},
		Routes: []Route{{Key: "GET /items/{id}", Function: "items"}}}
	root := API{ID: "root", EndpointID: "zzz9999999", Routes: []Route{{Key: "ANY /{proxy+}", Function: "root"}}}
	ts := startServer(t, Config{APIs: []API{shop, root}}, inv)
	for _, c := range []struct {
		path, host, want string
	}{
		{"/shop/prod/items/1", "shop.example.com", "items"},
		{"/prod/items/1", "abc0123456.execute-api.localhost", "items"},
		{"/prod/items/1", "ABC0123456.Execute-API.localhost:8080", "items"},
		{"/abc0123456/prod/items/1", "127.0.0.1", "items"},
		{"/abc0123456/prod/items/1", "anything.example.com", "items"},
		{"/items/1", "zzz9999999.execute-api.localhost", "root"},
		{"/zzz9999999/items/1", "", "root"},
		{"/shop/prod/items/1", "", "root"}, // shop answers only its host
	} {
		before := len(inv.of(c.want))
		r := ts.get(t, c.path, "Host", c.host)
		if r.status != 200 || len(inv.of(c.want)) != before+1 {
			t.Errorf("GET %s (host %q): %v, want the %s function", c.path, c.host, r, c.want)
			continue
		}
		if c.want == "items" {
			ev := decodeEvent(t, inv.of("items")[before])
			// rawPath is the path as the client sent it, as with a mount.
			if got := path(ev, "rawPath"); got != c.path {
				t.Errorf("GET %s: rawPath %v", c.path, got)
			}
			if got := path(ev, "pathParameters.id"); got != "1" {
				t.Errorf("GET %s: id %v", c.path, got)
			}
		}
	}
	if r := ts.get(t, "/prod/items/1", "Host", "nosuch0000.execute-api.localhost"); r.status != 404 {
		t.Errorf("an id no API has: %v", r)
	}
}
