package awsapi

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"gatehouse.dev/gatehouse/internal/apistore"
	"gatehouse.dev/gatehouse/internal/spec"
)

// The APIs of the stack file and of the admin API are the stack's too. API Gateway v2 shows them
// with their ids, read-only: their definition lives where they were written, and a change made
// here would be undone by the next reload of the stack file. REST APIs are not among them: they
// belong to API Gateway v1 (apigateway), which this server does not serve, so v2 neither lists
// them nor finds them by id, as on AWS.

// inV2 reports whether a stored definition is one API Gateway v2 shows: one the stack file or the
// admin API wrote (the AWS API's own are kept as its resources), of type http or websocket.
func inV2(r apistore.Record) bool {
	return !strings.HasPrefix(r.Source, "aws:") && r.API.Type != spec.APITypeREST
}

// stackAPI is the API with id written by the stack file or the admin API, in API Gateway's terms;
// nil when there is none.
func (s *Server) stackAPI(ctx context.Context, id string) (*gwAPI, error) {
	records, err := s.cfg.APIs.Store.List(ctx, nil)
	if err != nil {
		return nil, err
	}
	for _, r := range records {
		if r.ID == id && inV2(r) {
			return s.fromRecord(r), nil
		}
	}
	return nil, nil
}

// readOnly is the error of a change to an API that gwAPI.managedBy says is not the AWS API's.
func readOnly(a *gwAPI) error {
	where := "the stack file (gatehouse.yaml): change it there and reload"
	if a.managedBy == apistore.ManagedByAdmin {
		where = "the admin API (gatehouse apis apply): change it there"
	}
	return gwBad(fmt.Sprintf("API %s (%s) is defined by %s", a.ID, a.Name, where))
}

// subID is a stable id for a part of a stack-file API: 7 lower-case letters and digits from a
// hash of the API's id and the part's name, so that ids stay the same across calls and restarts.
func subID(apiID, name string) string {
	const digits = "0123456789abcdefghijklmnopqrstuvwxyz"
	h := sha256.Sum256([]byte(apiID + "\x00" + name))
	b := make([]byte, 7)
	for i := range b {
		b[i] = digits[int(h[i])%len(digits)]
	}
	return string(b)
}

// fromRecord describes a stored definition as API Gateway v2's resources, with ids that stay the
// same across calls and restarts.
func (s *Server) fromRecord(r apistore.Record) *gwAPI {
	api := r.API
	a := &gwAPI{ID: r.ID, StoreName: r.Name, Name: r.Name, ProtocolType: "HTTP", Created: r.UpdatedAt.UTC(),
		Stages: map[string]*gwStage{}, managedBy: r.ManagedBy}
	if api.Type == spec.APITypeWebSocket {
		a.ProtocolType, a.RouteSelectionExpression = "WEBSOCKET", api.RouteSelectionExpression
	}
	s.fromSpec(a, api, func(name string) string { return subID(r.ID, name) })
	for name, st := range api.Stages {
		g := &gwStage{Name: name, AutoDeploy: true, Variables: st.Variables, Created: a.Created}
		if st.Throttle != nil {
			g.Throttle = &throttle{Rate: st.Throttle.Rate, Burst: st.Throttle.Burst}
		}
		for key, t := range st.RouteThrottles {
			if g.RouteThrottles == nil {
				g.RouteThrottles = map[string]*throttle{}
			}
			g.RouteThrottles[key] = &throttle{Rate: t.Rate, Burst: t.Burst}
		}
		a.Stages[name] = g
	}
	return a
}

// fromSpec sets a's CORS, integrations (one per route), routes and authorizers to api's, with ids
// from id (given "route KEY", "integration KEY", "route response KEY" or "authorizer NAME").
func (s *Server) fromSpec(a *gwAPI, api spec.API, id func(name string) string) {
	a.CORS = nil
	if api.CORS != nil {
		a.CORS, _ = json.Marshal(api.CORS)
	}
	a.Integrations, a.Routes, a.Authorizers = map[string]*gwIntegration{}, map[string]*gwRoute{}, map[string]*gwAuthorizer{}
	authorizerIDs := map[string]string{}
	for name, au := range api.Authorizers {
		g := &gwAuthorizer{ID: id("authorizer " + name), Name: name}
		switch {
		case au.JWT != nil:
			g.Type, g.Issuer, g.Audience = "JWT", au.JWT.Issuer, au.JWT.Audiences
			g.IdentitySource = []string{au.JWT.IdentitySource}
		case au.Function != nil:
			g.Type, g.URI, g.IdentitySource = "REQUEST", s.functionARN(au.Function.Function), au.Function.IdentitySources
			g.TTLSeconds, g.SimpleResponses = int(au.Function.ResultTTL.D()/time.Second), au.Function.SimpleResponses
			g.PayloadFormatVersion = "2.0"
		}
		a.Authorizers[g.ID] = g
		authorizerIDs[name] = g.ID
	}
	for _, rt := range api.Routes {
		iid := id("integration " + rt.Key)
		a.Integrations[iid] = s.integrationOf(iid, rt.Integration)
		route := &gwRoute{ID: id("route " + rt.Key), RouteKey: rt.Key, Target: "integrations/" + iid,
			AuthorizationType: authorizationType(rt.Authorization.Type), AuthorizationScopes: rt.Authorization.Scopes,
			AuthorizerID: authorizerIDs[rt.Authorization.Authorizer], APIKeyRequired: rt.APIKeyRequired}
		if rt.RouteResponse {
			route.RouteResponse = id("route response " + rt.Key)
		}
		a.Routes[route.ID] = route
	}
}

// integrationOf describes a stack file's integration as API Gateway's, with id. An http_proxy
// integration's tls.caFile has no place in it.
func (s *Server) integrationOf(id string, in spec.Integration) *gwIntegration {
	g := &gwIntegration{ID: id, TimeoutMs: int(in.Timeout.D() / time.Millisecond), ResponseParameters: in.ResponseParameters}
	switch in.Type {
	case spec.IntegrationHTTPProxy:
		g.Type, g.URI, g.Method, g.PayloadFormatVersion = "HTTP_PROXY", in.Target, in.Method, spec.PayloadFormat1
		g.RequestParameters = in.RequestParameters
		if in.TLS != nil {
			g.ServerName = in.TLS.ServerName
		}
	case spec.IntegrationMock:
		g.Type, g.Mock = "MOCK", &gwMock{StatusCode: in.StatusCode, Headers: in.Headers, Body: in.Body}
	default:
		g.Type, g.URI, g.PayloadFormatVersion = "AWS_PROXY", s.functionARN(in.Target), in.PayloadFormatVersion
	}
	return g
}

// authorizationType is API Gateway's name of a stack file's authorization type.
func authorizationType(t string) string {
	switch t {
	case spec.AuthIAM:
		return "AWS_IAM"
	case spec.AuthJWT:
		return "JWT"
	case spec.AuthFunction:
		return "CUSTOM"
	}
	return "NONE"
}

// serveStackAPI answers the read calls on a stack-file or admin-API API, and refuses changes.
func (s *Server) serveStackAPI(w http.ResponseWriter, req *request, a *gwAPI, parts []string) error {
	r := req.r
	if r.Method != http.MethodGet {
		return readOnly(a)
	}
	switch {
	case len(parts) == 1:
		return writeJSON(w, http.StatusOK, s.apiView(a))
	case len(parts) == 3 && parts[1] == "exports":
		return s.export(w, req, a, parts[2])
	case len(parts) >= 4 && parts[1] == "routes" && parts[3] == "routeresponses":
		return s.routeResponses(r.Context(), w, req, a, 0, parts[2], parts[4:])
	case len(parts) >= 2 && len(parts) <= 3 && parts[1] != "deployments":
		return s.subresource(r.Context(), w, req, a, 0, parts[1], parts[2:])
	}
	return unknownGW(r)
}
