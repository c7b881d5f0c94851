package gateway

import (
	"maps"
	"regexp"
	"slices"

	"gatehouse.dev/gatehouse/internal/apikeys"
	"gatehouse.dev/gatehouse/internal/jwtauth"
	"gatehouse.dev/gatehouse/internal/spec"
)

// FromSpec returns the gateway's settings for an API of the stack model whose id is id (its
// EndpointID; "" for none). The API must be valid (spec's Validate); its name identifies it in
// events (requestContext.apiId).
func FromSpec(id string, a spec.API) API {
	ga := API{ID: a.Name, EndpointID: id, Host: a.Host, Mount: a.Mount, Spec: a}
	if w := a.WebSocket; w != nil {
		ga.WebSocket = &WebSocketSettings{
			RouteSelectionExpression: a.RouteSelectionExpression,
			MaxMessageBytes:          w.MaxMessageBytes,
			MaxFrameBytes:            w.MaxFrameBytes,
			IdleTimeout:              w.IdleTimeout.D(),
			MaxDuration:              w.MaxConnectionDuration.D(),
			SendQueue:                w.SendQueue,
		}
	}
	if c := a.CORS; c != nil {
		ga.CORS = &CORS{AllowOrigins: c.AllowOrigins, AllowMethods: c.AllowMethods, AllowHeaders: c.AllowHeaders,
			ExposeHeaders: c.ExposeHeaders, MaxAge: CORSMaxAgeUnset, AllowCredentials: c.AllowCredentials}
		if c.MaxAge != nil {
			ga.CORS.MaxAge = *c.MaxAge
		}
	}
	for name, z := range a.Authorizers {
		if ga.Authorizers == nil {
			ga.Authorizers = map[string]Authorizer{}
		}
		switch {
		case z.JWT != nil:
			j := z.JWT
			ga.Authorizers[name] = Authorizer{Type: AuthJWT, IdentitySources: []string{j.IdentitySource},
				JWT: &jwtauth.Config{Issuer: j.Issuer, Audiences: j.Audiences, JWKSURL: j.JWKSURL, JWKSFile: j.JWKSFile,
					Algorithms: j.Algorithms, Skew: j.Skew.D()}}
		case z.Function != nil:
			f := z.Function
			fa := Authorizer{Type: AuthFunction, IdentitySources: f.IdentitySources,
				Function: f.Function, ResultTTL: f.ResultTTL.D(), Timeout: f.Timeout.D()}
			if z.Type == spec.AuthorizerToken || z.Type == spec.AuthorizerRequest {
				fa.REST = z.Type
				if f.IdentityValidationExpression != "" {
					// Validated with the API; an expression that does not compile validates nothing.
					fa.Validation, _ = regexp.Compile(f.IdentityValidationExpression)
				}
			}
			ga.Authorizers[name] = fa
		}
	}
	for _, sn := range slices.Sorted(maps.Keys(a.Stages)) {
		st := a.Stages[sn]
		gs := Stage{Name: sn, Variables: st.Variables}
		if st.AccessLog != nil {
			gs.AccessLog = CompileAccessLog(*st.AccessLog)
		}
		if st.Throttle != nil {
			gs.Throttle = throttleFromSpec(*st.Throttle)
		}
		for key, t := range st.RouteThrottles {
			if gs.RouteThrottles == nil {
				gs.RouteThrottles = map[string]ThrottleSettings{}
			}
			gs.RouteThrottles[key] = throttleFromSpec(t)
		}
		ga.Stages = append(ga.Stages, gs)
	}
	for _, r := range a.Routes {
		auth := RouteAuth{Type: r.Authorization.Type, Authorizer: r.Authorization.Authorizer, Scopes: r.Authorization.Scopes}
		if auth.Type == spec.AuthNone {
			auth.Type = AuthNone
		}
		fn := r.Integration.Target
		if t := r.Integration.Type; t == spec.IntegrationHTTPProxy || t == spec.IntegrationMock {
			fn = ""
		}
		ga.Routes = append(ga.Routes, Route{Key: r.Key, Function: fn, Timeout: r.Integration.Timeout.D(),
			RouteResponse: r.RouteResponse, Auth: auth, APIKeyRequired: r.APIKeyRequired, Spec: r})
	}
	return ga
}

// UsagePlansFromSpec returns the gateway's settings for the usage plans of the stack model.
func UsagePlansFromSpec(plans map[string]spec.UsagePlan) map[string]UsagePlan {
	out := make(map[string]UsagePlan, len(plans))
	for name, p := range plans {
		var gp UsagePlan
		if p.Throttle != nil {
			gp.Throttle = throttleFromSpec(*p.Throttle)
		}
		if p.Quota != nil {
			gp.Quota = apikeys.Quota{Limit: int64(p.Quota.Limit), Period: p.Quota.Period}
		}
		out[name] = gp
	}
	return out
}

func throttleFromSpec(t spec.Throttle) ThrottleSettings {
	return ThrottleSettings{Rate: t.Rate, Burst: t.Burst}
}
