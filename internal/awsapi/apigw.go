package awsapi

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"gatehouse.dev/gatehouse/internal/adminapi"
	"gatehouse.dev/gatehouse/internal/apistore"
	"gatehouse.dev/gatehouse/internal/jsopen"
	"gatehouse.dev/gatehouse/internal/mapping"
	"gatehouse.dev/gatehouse/internal/openapi"
	"gatehouse.dev/gatehouse/internal/spec"
	"gatehouse.dev/gatehouse/internal/stackfile"
)

// API Gateway v2 (HTTP and WebSocket APIs) through its own resources — APIs, integrations, routes,
// stages — kept as AWS has them in a bucket of their own (gh_<stack>_apigw), and rendered into the
// stack's API store as one definition, the same spec.API a stack file writes, once the API has a
// stage and a route: from then on every change is served at once (auto-deploy, or not: Gatehouse
// deploys every change). An API named NAME in AWS is stored as aws-NAME-<hex>, mounted at /ID, so
// that its endpoint is http://GATEWAY/ID and a stage's routes are under /ID/STAGE, as
// https://ID.execute-api.REGION.amazonaws.com/STAGE are on AWS.

// APIStore is the stack's API definitions and how to wait until the gateway serves a change.
type APIStore struct {
	Store *apistore.Store
	// Stack names the stack (API ids are derived from it).
	Stack string
	// Env is what definitions are checked against (the functions that exist).
	Env func(ctx context.Context) (spec.Env, error)
	// Applied waits until the gateway serves API name at revision (0: until it is gone).
	Applied func(ctx context.Context, name string, revision uint64) error
	// GatewayURL is the gateway's base URL, for ApiEndpoint.
	GatewayURL string
	// Resources holds the AWS-side resources.
	Resources jetstream.KeyValue
}

// OpenAPIResources opens (creating once) the bucket of the AWS-side API Gateway resources.
func OpenAPIResources(ctx context.Context, js jetstream.JetStream, stack string) (jetstream.KeyValue, error) {
	return jsopen.KeyValue(ctx, js, jetstream.KeyValueConfig{Bucket: "gh_" + stack + "_apigw", History: 1,
		Description: "API Gateway v2 resources made through the AWS API"})
}

// gwAPI is one API as API Gateway v2's resources describe it.
type gwAPI struct {
	ID, StoreName, Name, ProtocolType, RouteSelectionExpression, Description string
	Created                                                                  time.Time
	// CORS is the API's CorsConfiguration, whose keys are the stack file's cors: keys.
	CORS         json.RawMessage `json:",omitempty"`
	Integrations map[string]*gwIntegration
	Routes       map[string]*gwRoute
	Stages       map[string]*gwStage
	Authorizers  map[string]*gwAuthorizer `json:",omitempty"`

	// managedBy is set on the read-only views of the stack file's and the admin API's APIs
	// (fromRecord): who wrote the API.
	managedBy string
}

// gwAuthorizer is a JWT or REQUEST (function) authorizer.
type gwAuthorizer struct {
	ID, Name, Type       string
	IdentitySource       []string
	Issuer               string   `json:",omitempty"`
	Audience             []string `json:",omitempty"`
	URI                  string   `json:",omitempty"`
	TTLSeconds           int      `json:",omitempty"`
	SimpleResponses      bool     `json:",omitempty"`
	PayloadFormatVersion string   `json:",omitempty"`
}

// gwIntegration is an integration: AWS_PROXY to a function, HTTP_PROXY to a backend URL, or MOCK
// (made by ImportApi and the stack file only: API Gateway's HTTP APIs have no mock integrations).
type gwIntegration struct {
	ID, Type, URI, PayloadFormatVersion string
	TimeoutMs                           int
	// Method is an HTTP_PROXY integration's IntegrationMethod: ANY (the client's) or a method.
	Method string `json:",omitempty"`
	// RequestParameters (HTTP_PROXY) and ResponseParameters (by status code) are the parameter
	// mappings, with the stack file's requestParameters and responseParameters keys and values.
	RequestParameters  map[string]string            `json:",omitempty"`
	ResponseParameters map[string]map[string]string `json:",omitempty"`
	// ServerName is an HTTP_PROXY integration's TlsConfig.ServerNameToVerify.
	ServerName string `json:",omitempty"`
	// Mock is a MOCK integration's answer.
	Mock *gwMock `json:",omitempty"`
}

// gwMock is a mock integration's answer, as the stack file's statusCode, headers and body.
type gwMock struct {
	StatusCode int
	Headers    map[string]string `json:",omitempty"`
	Body       string            `json:",omitempty"`
}

type gwRoute struct {
	ID, RouteKey, Target, AuthorizationType string
	AuthorizerID                            string   `json:",omitempty"`
	AuthorizationScopes                     []string `json:",omitempty"`
	// APIKeyRequired asks for one of the stack's API keys (the stack file's apiKeyRequired:).
	APIKeyRequired bool `json:",omitempty"`
	// RouteResponse is the id of the route's $default route response: the function's answer goes
	// back to the WebSocket client.
	RouteResponse string `json:",omitempty"`
}

type gwStage struct {
	Name       string
	AutoDeploy bool
	Variables  map[string]string
	Created    time.Time
	// Throttle is DefaultRouteSettings' rate and burst; RouteThrottles RouteSettings', by route key.
	Throttle       *throttle            `json:",omitempty"`
	RouteThrottles map[string]*throttle `json:",omitempty"`
	// AccessLog is AccessLogSettings, kept and returned as given.
	AccessLog *accessLogSettings `json:",omitempty"`
}

// accessLogSettings is a stage's AccessLogSettings: where its access log goes and in what format.
type accessLogSettings struct {
	DestinationArn string `json:"destinationArn,omitempty"`
	Format         string `json:"format,omitempty"`
}

// throttle is a rate (requests per second) and burst, as route settings give them.
type throttle struct {
	Rate  float64 `json:"rate"`
	Burst int     `json:"burst"`
}

// routeSettings is API Gateway's RouteSettings, the parts Gatehouse takes.
type routeSettings struct {
	ThrottlingRateLimit  *float64
	ThrottlingBurstLimit *int
}

func (r *routeSettings) throttle() *throttle {
	if r == nil || r.ThrottlingRateLimit == nil && r.ThrottlingBurstLimit == nil {
		return nil
	}
	t := &throttle{}
	if r.ThrottlingRateLimit != nil {
		t.Rate = *r.ThrottlingRateLimit
	}
	if r.ThrottlingBurstLimit != nil {
		t.Burst = *r.ThrottlingBurstLimit
	}
	return t
}

func apiKey(id string) string { return "api." + id }

// writePage answers a Get* list call with the page of items its maxResults and nextToken ask
// for (items are in a stable order), and a nextToken when more follow. The token is the
// position of the next item, base64url, so the AWS CLI's and SDKs' paginators walk the list.
func writePage(w http.ResponseWriter, r *http.Request, items []map[string]any) error {
	q := r.URL.Query()
	limit := len(items)
	if m := q.Get("maxResults"); m != "" {
		n, err := strconv.Atoi(m)
		if err != nil || n < 1 || n > 500 {
			return gwBad(fmt.Sprintf("maxResults %q: want 1 to 500", m))
		}
		limit = n
	}
	from := 0
	if t := q.Get("nextToken"); t != "" {
		b, err := base64.RawURLEncoding.DecodeString(t)
		n, err2 := strconv.Atoi(string(b))
		if err != nil || err2 != nil || n < 0 {
			return gwBad(fmt.Sprintf("nextToken %q is not a token this list gave", t))
		}
		from = min(n, len(items))
	}
	end := min(from+limit, len(items))
	body := map[string]any{"items": items[from:end]}
	if end < len(items) {
		body["nextToken"] = base64.RawURLEncoding.EncodeToString([]byte(strconv.Itoa(end)))
	}
	return writeJSON(w, http.StatusOK, body)
}

func (s *Server) loadAPI(ctx context.Context, id string) (*gwAPI, uint64, error) {
	e, err := s.cfg.APIs.Resources.Get(ctx, apiKey(id))
	if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrInvalidKey) {
		return nil, 0, &awsError{Status: http.StatusNotFound, Code: "NotFoundException", Message: "Invalid API identifier specified " + id}
	}
	if err != nil {
		return nil, 0, err
	}
	var a gwAPI
	if err := json.Unmarshal(e.Value(), &a); err != nil {
		return nil, 0, err
	}
	return &a, e.Revision(), nil
}

// randomID is an id in AWS's shape: 7 or 10 lower-case letters and digits.
func randomID(n int) string {
	const digits = "0123456789abcdefghijklmnopqrstuvwxyz"
	b := make([]byte, n)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = digits[int(b[i])%len(digits)]
	}
	return string(b)
}

// apigateway serves API Gateway v2's operations (service "apigateway", paths /v2/apis...).
func (s *Server) apigateway(w http.ResponseWriter, req *request) {
	err := s.apigatewayCall(w, req)
	if err == nil {
		return
	}
	var ae *awsError
	if !errors.As(err, &ae) {
		s.log.Error("aws api: apigateway call failed", "err", err)
		ae = &awsError{Status: http.StatusInternalServerError, Code: "InternalServerErrorException", Message: err.Error()}
	}
	restJSON{}.writeError(w, ae)
}

func gwBad(msg string) *awsError {
	return &awsError{Status: http.StatusBadRequest, Code: "BadRequestException", Message: msg}
}

func (s *Server) apigatewayCall(w http.ResponseWriter, req *request) error {
	if s.cfg.APIs == nil {
		return &awsError{Status: http.StatusServiceUnavailable, Code: "ServiceUnavailableException", Message: "API Gateway is not available on this node"}
	}
	r := req.r
	rest, ok := strings.CutPrefix(r.URL.Path, "/v2/apis")
	if !ok {
		return &awsError{Status: http.StatusBadRequest, Code: "UnknownOperationException",
			Message: fmt.Sprintf("apigateway %s %s is not an operation this Gatehouse serves (see docs/aws.md)", r.Method, r.URL.Path)}
	}
	parts := strings.Split(strings.Trim(rest, "/"), "/")
	if parts[0] == "" {
		parts = nil
	}
	ctx := r.Context()
	switch {
	case len(parts) == 0 && r.Method == http.MethodPost:
		return s.createAPI(ctx, w, req)
	case len(parts) == 0 && r.Method == http.MethodGet:
		return s.listAPIs(ctx, w, r)
	case len(parts) == 0 && r.Method == http.MethodPut:
		return s.importAPI(ctx, w, req)
	}
	if len(parts) == 0 {
		return unknownGW(r)
	}
	id := parts[0]
	a, rev, err := s.loadAPI(ctx, id)
	var notFound *awsError
	if errors.As(err, &notFound) {
		stack, serr := s.stackAPI(ctx, id)
		if serr != nil {
			return serr
		}
		if stack != nil {
			return s.serveStackAPI(w, req, stack, parts)
		}
	}
	if err != nil {
		return err
	}
	switch {
	case len(parts) == 1 && r.Method == http.MethodGet:
		return writeJSON(w, http.StatusOK, s.apiView(a))
	case len(parts) == 3 && parts[1] == "exports" && r.Method == http.MethodGet:
		return s.export(w, req, a, parts[2])
	case len(parts) == 1 && r.Method == http.MethodPut:
		var in struct{ Body string }
		if err := json.Unmarshal(req.body, &in); err != nil {
			return gwBad("the request is not ReimportApi's JSON: " + err.Error())
		}
		if a.ProtocolType != "HTTP" {
			return gwBad("only HTTP APIs are imported from OpenAPI")
		}
		warnings, err := s.fromOpenAPI(ctx, a, in.Body)
		if err != nil {
			return err
		}
		if err := s.save(ctx, req, a, rev); err != nil {
			return err
		}
		return writeJSON(w, http.StatusCreated, withWarnings(s.apiView(a), warnings))
	case len(parts) == 1 && r.Method == http.MethodPatch:
		var in struct {
			Name, RouteSelectionExpression, Description *string
			CorsConfiguration                           json.RawMessage
		}
		if err := json.Unmarshal(req.body, &in); err != nil {
			return gwBad("the request is not UpdateApi's JSON: " + err.Error())
		}
		if in.Name != nil {
			a.Name = *in.Name
		}
		if in.Description != nil {
			a.Description = *in.Description
		}
		if in.RouteSelectionExpression != nil && a.ProtocolType == "WEBSOCKET" {
			a.RouteSelectionExpression = *in.RouteSelectionExpression
		}
		if len(in.CorsConfiguration) > 0 {
			if a.ProtocolType != "HTTP" {
				return gwBad("CorsConfiguration is for HTTP APIs")
			}
			a.CORS = in.CorsConfiguration
		}
		if err := s.save(ctx, req, a, rev); err != nil {
			return err
		}
		return writeJSON(w, http.StatusOK, s.apiView(a))
	case len(parts) == 1 && r.Method == http.MethodDelete:
		if err := s.unpublish(ctx, a); err != nil {
			return err
		}
		if err := s.cfg.APIs.Resources.Delete(ctx, apiKey(id), jetstream.LastRevision(rev)); err != nil {
			return err
		}
		s.audit(ctx, req, adminapi.ActionAPIDelete, a.StoreName, "through the AWS API")
		w.WriteHeader(http.StatusNoContent)
		return nil
	case len(parts) >= 4 && parts[1] == "routes" && parts[3] == "routeresponses":
		return s.routeResponses(ctx, w, req, a, rev, parts[2], parts[4:])
	case len(parts) >= 2 && len(parts) <= 3:
		return s.subresource(ctx, w, req, a, rev, parts[1], parts[2:])
	}
	return unknownGW(r)
}

func unknownGW(r *http.Request) *awsError {
	return &awsError{Status: http.StatusBadRequest, Code: "UnknownOperationException",
		Message: fmt.Sprintf("apigateway %s %s is not an operation this Gatehouse serves (see docs/aws.md)", r.Method, r.URL.Path)}
}

func (s *Server) createAPI(ctx context.Context, w http.ResponseWriter, req *request) error {
	var in struct {
		Name, ProtocolType, RouteSelectionExpression, Description string
		CorsConfiguration                                         json.RawMessage
	}
	if err := json.Unmarshal(req.body, &in); err != nil {
		return gwBad("the request is not CreateApi's JSON: " + err.Error())
	}
	if len(in.CorsConfiguration) > 0 && in.ProtocolType != "HTTP" {
		return gwBad("CorsConfiguration is for HTTP APIs")
	}
	switch in.ProtocolType {
	case "HTTP":
	case "WEBSOCKET":
		if in.RouteSelectionExpression == "" {
			return gwBad("a WEBSOCKET API needs a RouteSelectionExpression, such as $request.body.action")
		}
	default:
		return gwBad(fmt.Sprintf("ProtocolType %q: want HTTP or WEBSOCKET", in.ProtocolType))
	}
	if in.Name == "" || len(in.Name) > 128 {
		return gwBad("Name: 1 to 128 characters")
	}
	store := storeName(in.Name)
	a := &gwAPI{ID: apistore.ID(s.cfg.APIs.Stack, store), StoreName: store, Name: in.Name, ProtocolType: in.ProtocolType,
		RouteSelectionExpression: in.RouteSelectionExpression, Description: in.Description, Created: time.Now().UTC(), CORS: in.CorsConfiguration,
		Integrations: map[string]*gwIntegration{}, Routes: map[string]*gwRoute{}, Stages: map[string]*gwStage{}}
	data, _ := json.Marshal(a)
	if _, err := s.cfg.APIs.Resources.Create(ctx, apiKey(a.ID), data); err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, s.apiView(a))
}

// importAPI makes an HTTP API from an OpenAPI document (ImportApi).
func (s *Server) importAPI(ctx context.Context, w http.ResponseWriter, req *request) error {
	var in struct{ Body string }
	if err := json.Unmarshal(req.body, &in); err != nil {
		return gwBad("the request is not ImportApi's JSON: " + err.Error())
	}
	a := &gwAPI{ProtocolType: "HTTP", Created: time.Now().UTC(), Stages: map[string]*gwStage{}}
	warnings, err := s.fromOpenAPI(ctx, a, in.Body)
	if err != nil {
		return err
	}
	a.StoreName = storeName(a.Name)
	a.ID = apistore.ID(s.cfg.APIs.Stack, a.StoreName)
	data, _ := json.Marshal(a)
	rev, err := s.cfg.APIs.Resources.Create(ctx, apiKey(a.ID), data)
	if err != nil {
		return err
	}
	// Routes alone serve nothing until a stage is made (then they are checked against the stack).
	if err := s.save(ctx, req, a, rev); err != nil {
		_ = s.cfg.APIs.Resources.Delete(ctx, apiKey(a.ID))
		return err
	}
	return writeJSON(w, http.StatusCreated, withWarnings(s.apiView(a), warnings))
}

// storeName is the API store's name of a new API named name: "aws-", the name with other characters
// than letters, digits, - and _ as -, "-" and 8 random hex digits.
func storeName(name string) string {
	var suffix [4]byte
	_, _ = rand.Read(suffix[:])
	clean := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' {
			return r
		}
		return '-'
	}, name)
	if len(clean) > 100 {
		clean = clean[:100]
	}
	return "aws-" + clean + "-" + hex.EncodeToString(suffix[:])
}

func (s *Server) apiView(a *gwAPI) map[string]any {
	// Every API answers under /ID/ as well as at its mount: that is its execute-api endpoint.
	v := map[string]any{"apiId": a.ID, "name": a.Name, "protocolType": a.ProtocolType,
		"apiEndpoint": strings.TrimSuffix(s.cfg.APIs.GatewayURL, "/") + "/" + a.ID, "createdDate": a.Created.Format(time.RFC3339),
		"apiKeySelectionExpression": "$request.header.x-api-key", "disableExecuteApiEndpoint": false}
	if a.managedBy != "" {
		v["tags"] = map[string]string{"gatehouse:managedBy": a.managedBy}
	}
	if a.ProtocolType == "WEBSOCKET" {
		v["apiEndpoint"] = "ws" + strings.TrimPrefix(v["apiEndpoint"].(string), "http")
		v["routeSelectionExpression"] = a.RouteSelectionExpression
	} else {
		v["routeSelectionExpression"] = "${request.method} ${request.path}"
	}
	if a.Description != "" {
		v["description"] = a.Description
	}
	if len(a.CORS) > 0 {
		v["corsConfiguration"] = a.CORS
	}
	return v
}

func (s *Server) listAPIs(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
	keys, err := s.cfg.APIs.Resources.ListKeys(ctx)
	if err != nil && !errors.Is(err, jetstream.ErrNoKeysFound) {
		return err
	}
	items := []map[string]any{}
	if keys != nil {
		for k := range keys.Keys() {
			id, ok := strings.CutPrefix(k, "api.")
			if !ok {
				continue
			}
			if a, _, err := s.loadAPI(ctx, id); err == nil {
				items = append(items, s.apiView(a))
			}
		}
	}
	// The APIs of the stack file and the admin API are the stack's too: listed with their ids,
	// read-only here (see stackAPI), but for REST APIs, which are API Gateway v1's.
	records, err := s.cfg.APIs.Store.List(ctx, nil)
	if err != nil {
		return err
	}
	for _, r := range records {
		if inV2(r) {
			items = append(items, s.apiView(s.fromRecord(r)))
		}
	}
	slices.SortFunc(items, func(x, y map[string]any) int {
		return cmp.Or(strings.Compare(x["name"].(string), y["name"].(string)), strings.Compare(x["apiId"].(string), y["apiId"].(string)))
	})
	return writePage(w, r, items)
}

// subresource serves an API's integrations, routes, stages and deployments.
func (s *Server) subresource(ctx context.Context, w http.ResponseWriter, req *request, a *gwAPI, rev uint64, kind string, rest []string) error {
	r := req.r
	id := ""
	if len(rest) == 1 {
		id, _ = url.PathUnescape(rest[0])
	}
	switch r.Method {
	case http.MethodGet:
		if id == "" {
			return writePage(w, r, s.views(a, kind))
		}
		v, ok := s.view(a, kind, id)
		if !ok {
			return &awsError{Status: http.StatusNotFound, Code: "NotFoundException", Message: fmt.Sprintf("Invalid %s identifier specified %s", strings.TrimSuffix(kind, "s"), id)}
		}
		return writeJSON(w, http.StatusOK, v)
	case http.MethodPost, http.MethodDelete, http.MethodPatch:
	default:
		return unknownGW(r)
	}
	if (r.Method == http.MethodPost) != (id == "") {
		return unknownGW(r)
	}
	var made string
	change := func(a *gwAPI) error {
		var err error
		made, err = s.change(a, kind, id, r.Method, req.body)
		return err
	}
	if err := change(a); err != nil {
		return err
	}
	if err := s.save(ctx, req, a, rev); err != nil {
		return err
	}
	if r.Method == http.MethodDelete {
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
	v, _ := s.view(a, kind, made)
	status := http.StatusOK
	if r.Method == http.MethodPost {
		status = http.StatusCreated
	}
	return writeJSON(w, status, v)
}

// change applies one create, update or delete of a subresource to a, returning its id.
func (s *Server) change(a *gwAPI, kind, id, method string, body []byte) (string, error) {
	var in struct {
		IntegrationType, IntegrationUri, PayloadFormatVersion string
		IntegrationMethod, ConnectionType                     string
		TimeoutInMillis                                       int
		RequestParameters                                     map[string]string
		ResponseParameters                                    map[string]map[string]string
		TlsConfig                                             *struct{ ServerNameToVerify string }
		RouteKey, Target, AuthorizationType                   string
		AuthorizerId                                          *string
		AuthorizationScopes                                   []string
		ApiKeyRequired                                        *bool
		AccessLogSettings                                     *accessLogSettings
		StageName                                             string
		Name, AuthorizerType, AuthorizerUri                   string
		AuthorizerPayloadFormatVersion                        string
		IdentitySource                                        []string
		JwtConfiguration                                      *struct {
			Audience []string
			Issuer   string
		}
		AuthorizerResultTtlInSeconds *int
		EnableSimpleResponses        *bool
		AutoDeploy                   *bool
		StageVariables               map[string]string
		DefaultRouteSettings         *routeSettings
		RouteSettings                map[string]*routeSettings
	}
	if len(body) > 0 {
		if err := json.Unmarshal(body, &in); err != nil {
			return "", gwBad("the request is not JSON: " + err.Error())
		}
	}
	notFound := func() (string, error) {
		return "", &awsError{Status: http.StatusNotFound, Code: "NotFoundException", Message: fmt.Sprintf("Invalid %s identifier specified %s", strings.TrimSuffix(kind, "s"), id)}
	}
	switch kind {
	case "integrations":
		it := a.Integrations[id]
		switch {
		case method == http.MethodDelete:
			if it == nil {
				return notFound()
			}
			for _, rt := range a.Routes {
				if rt.Target == "integrations/"+id {
					return "", &awsError{Status: http.StatusConflict, Code: "ConflictException", Message: "Cannot delete an integration that routes use: route " + rt.RouteKey}
				}
			}
			delete(a.Integrations, id)
			return id, nil
		case method == http.MethodPost:
			it = &gwIntegration{ID: randomID(7)}
			a.Integrations[it.ID] = it
		case it == nil:
			return notFound()
		}
		if in.IntegrationType != "" && in.IntegrationType != it.Type {
			if it.Type != "" {
				// What belonged to the other type does not carry over; what the call gives does.
				*it = gwIntegration{ID: it.ID, URI: it.URI, TimeoutMs: it.TimeoutMs}
			}
			it.Type = in.IntegrationType
		}
		if in.IntegrationUri != "" {
			it.URI = in.IntegrationUri
		}
		if in.PayloadFormatVersion != "" {
			it.PayloadFormatVersion = in.PayloadFormatVersion
		}
		if in.TimeoutInMillis != 0 {
			it.TimeoutMs = in.TimeoutInMillis
		}
		if in.IntegrationMethod != "" {
			it.Method = strings.ToUpper(in.IntegrationMethod)
		}
		if in.RequestParameters != nil {
			it.RequestParameters = in.RequestParameters
		}
		if in.ResponseParameters != nil {
			it.ResponseParameters = in.ResponseParameters
		}
		if in.TlsConfig != nil {
			it.ServerName = in.TlsConfig.ServerNameToVerify
		}
		if in.ConnectionType != "" && in.ConnectionType != "INTERNET" {
			return "", gwBad(fmt.Sprintf("ConnectionType %q: private integrations (VPC links) are not served; Gatehouse reaches backends by their URL (INTERNET)", in.ConnectionType))
		}
		if err := checkIntegration(a.ProtocolType, it); err != nil {
			return "", err
		}
		return it.ID, nil
	case "routes":
		rt := a.Routes[id]
		switch {
		case method == http.MethodDelete:
			if rt == nil {
				return notFound()
			}
			delete(a.Routes, id)
			return id, nil
		case method == http.MethodPost:
			for _, o := range a.Routes {
				if o.RouteKey == in.RouteKey {
					return "", &awsError{Status: http.StatusConflict, Code: "ConflictException", Message: "Route with key " + in.RouteKey + " already exists for this API"}
				}
			}
			rt = &gwRoute{ID: randomID(7), AuthorizationType: "NONE"}
			a.Routes[rt.ID] = rt
		case rt == nil:
			return notFound()
		}
		if in.RouteKey != "" {
			rt.RouteKey = in.RouteKey
		}
		if in.Target != "" {
			rt.Target = in.Target
		}
		if in.AuthorizationType != "" {
			rt.AuthorizationType = in.AuthorizationType
		}
		if in.AuthorizerId != nil {
			rt.AuthorizerID = *in.AuthorizerId
		}
		if in.AuthorizationScopes != nil {
			rt.AuthorizationScopes = in.AuthorizationScopes
		}
		if in.ApiKeyRequired != nil {
			rt.APIKeyRequired = *in.ApiKeyRequired
		}
		if rt.RouteKey == "" {
			return "", gwBad("RouteKey is required")
		}
		switch rt.AuthorizationType {
		case "NONE", "AWS_IAM":
			rt.AuthorizerID = ""
		case "JWT", "CUSTOM":
			au := a.Authorizers[rt.AuthorizerID]
			if au == nil {
				return "", gwBad(fmt.Sprintf("AuthorizerId %q: want the id of one of the API's authorizers", rt.AuthorizerID))
			}
			if want := map[string]string{"JWT": "JWT", "CUSTOM": "REQUEST"}[rt.AuthorizationType]; au.Type != want {
				return "", gwBad(fmt.Sprintf("AuthorizationType %s needs a %s authorizer; %s is %s", rt.AuthorizationType, want, au.ID, au.Type))
			}
		default:
			return "", gwBad(fmt.Sprintf("AuthorizationType %q: want NONE, AWS_IAM, JWT or CUSTOM", rt.AuthorizationType))
		}
		if rt.Target != "" {
			iid, ok := strings.CutPrefix(rt.Target, "integrations/")
			if !ok || a.Integrations[iid] == nil {
				return "", gwBad(fmt.Sprintf("Target %q: want integrations/ID of one of the API's integrations", rt.Target))
			}
		}
		return rt.ID, nil
	case "stages":
		st := a.Stages[id]
		switch {
		case method == http.MethodDelete:
			if st == nil {
				return notFound()
			}
			delete(a.Stages, id)
			return id, nil
		case method == http.MethodPost:
			if in.StageName == "" {
				return "", gwBad("StageName is required")
			}
			if a.Stages[in.StageName] != nil {
				return "", &awsError{Status: http.StatusConflict, Code: "ConflictException", Message: "Stage already exists"}
			}
			st = &gwStage{Name: in.StageName, Created: time.Now().UTC()}
			a.Stages[st.Name] = st
		case st == nil:
			return notFound()
		}
		if in.AutoDeploy != nil {
			st.AutoDeploy = *in.AutoDeploy
		}
		if in.StageVariables != nil {
			st.Variables = in.StageVariables
		}
		if in.AccessLogSettings != nil {
			st.AccessLog = in.AccessLogSettings
		}
		if in.DefaultRouteSettings != nil {
			st.Throttle = in.DefaultRouteSettings.throttle()
		}
		if in.RouteSettings != nil {
			st.RouteThrottles = map[string]*throttle{}
			for key, rs := range in.RouteSettings {
				if t := rs.throttle(); t != nil {
					st.RouteThrottles[key] = t
				}
			}
		}
		return st.Name, nil
	case "authorizers":
		if a.Authorizers == nil {
			a.Authorizers = map[string]*gwAuthorizer{}
		}
		au := a.Authorizers[id]
		switch {
		case method == http.MethodDelete:
			if au == nil {
				return notFound()
			}
			for _, rt := range a.Routes {
				if rt.AuthorizerID == id {
					return "", &awsError{Status: http.StatusConflict, Code: "ConflictException", Message: "Cannot delete an authorizer that routes use: route " + rt.RouteKey}
				}
			}
			delete(a.Authorizers, id)
			return id, nil
		case method == http.MethodPost:
			au = &gwAuthorizer{ID: randomID(6), Type: in.AuthorizerType}
			a.Authorizers[au.ID] = au
		case au == nil:
			return notFound()
		}
		if in.Name != "" {
			au.Name = in.Name
		}
		if in.IdentitySource != nil {
			au.IdentitySource = in.IdentitySource
		}
		if in.JwtConfiguration != nil {
			au.Issuer, au.Audience = in.JwtConfiguration.Issuer, in.JwtConfiguration.Audience
		}
		if in.AuthorizerUri != "" {
			au.URI = in.AuthorizerUri
		}
		if in.AuthorizerResultTtlInSeconds != nil {
			au.TTLSeconds = *in.AuthorizerResultTtlInSeconds
		}
		if in.EnableSimpleResponses != nil {
			au.SimpleResponses = *in.EnableSimpleResponses
		}
		if in.AuthorizerPayloadFormatVersion != "" {
			au.PayloadFormatVersion = in.AuthorizerPayloadFormatVersion
		}
		switch au.Type {
		case "JWT":
			if a.ProtocolType != "HTTP" {
				return "", gwBad("JWT authorizers are for HTTP APIs")
			}
		case "REQUEST":
			if _, err := functionOfURI(au.URI); err != nil {
				return "", err
			}
		default:
			return "", gwBad(fmt.Sprintf("AuthorizerType %q: want JWT or REQUEST", au.Type))
		}
		return au.ID, nil
	case "deployments":
		// Every change is served at once here: a deployment is a no-op that says so.
		if method != http.MethodPost {
			return "", gwBad("deployments cannot be changed")
		}
		return randomID(6), nil
	}
	return "", gwBad("unknown resource " + kind)
}

// checkIntegration checks an integration of an API of the protocol (HTTP or WEBSOCKET) as
// CreateIntegration and UpdateIntegration leave it, and fills its defaults; its errors are AWS's
// BadRequestException. The rest is checked as the stack file's, once a route uses it.
func checkIntegration(protocol string, it *gwIntegration) error {
	switch it.Type {
	case "AWS_PROXY":
		if _, err := functionOfURI(it.URI); err != nil {
			return err
		}
		// The AWS CLI's tutorials give POST, Lambda's invocation method: nothing to keep.
		it.Method = ""
		if protocol == "HTTP" {
			switch it.PayloadFormatVersion {
			case "":
				it.PayloadFormatVersion = spec.PayloadFormat2
			case spec.PayloadFormat1, spec.PayloadFormat2:
			default:
				return gwBad(fmt.Sprintf("PayloadFormatVersion %q: an AWS_PROXY integration takes 1.0 or 2.0", it.PayloadFormatVersion))
			}
		}
		if len(it.RequestParameters) > 0 {
			return gwBad("RequestParameters are served on HTTP_PROXY integrations: an AWS_PROXY integration's function receives the whole request in its event")
		}
		if it.ServerName != "" {
			return gwBad("TlsConfig is for HTTP_PROXY integrations")
		}
	case "HTTP_PROXY":
		if protocol != "HTTP" {
			return gwBad("HTTP_PROXY integrations are served in HTTP APIs; a WebSocket API's routes take AWS_PROXY integrations to functions")
		}
		if !strings.HasPrefix(it.URI, "http://") && !strings.HasPrefix(it.URI, "https://") && !strings.HasPrefix(it.URI, spec.StageVariableRef) {
			return gwBad(fmt.Sprintf("IntegrationUri %q: an HTTP_PROXY integration's URI is the backend's URL, such as https://backend.example.com/{proxy} (private integrations by a load balancer's or Cloud Map's ARN are not served)", it.URI))
		}
		if it.Method == "" {
			it.Method = spec.MethodAny
		}
		if it.Method != spec.MethodAny && !slices.Contains(spec.RouteMethods(), it.Method) {
			return gwBad(fmt.Sprintf("IntegrationMethod %q: want ANY (the client's method), GET, POST, PUT, PATCH, DELETE, HEAD or OPTIONS", it.Method))
		}
		switch it.PayloadFormatVersion {
		case "":
			it.PayloadFormatVersion = spec.PayloadFormat1
		case spec.PayloadFormat1:
		default:
			return gwBad(fmt.Sprintf("PayloadFormatVersion %q: HTTP_PROXY integrations take 1.0", it.PayloadFormatVersion))
		}
	case "MOCK":
		if it.Mock == nil {
			return gwBad("IntegrationType MOCK: HTTP APIs have no mock integrations on AWS; here a mock route comes from an OpenAPI document (ImportApi, with x-amazon-apigateway-integration type mock) or the stack file")
		}
		if it.URI != "" || len(it.RequestParameters) > 0 || it.ServerName != "" {
			return gwBad("a MOCK integration has no IntegrationUri, RequestParameters or TlsConfig")
		}
	default:
		return gwBad(fmt.Sprintf("IntegrationType %q is not served: use AWS_PROXY (a function) or HTTP_PROXY (a backend's URL)", it.Type))
	}
	if len(it.ResponseParameters) > 0 && protocol != "HTTP" {
		return gwBad("ResponseParameters are for HTTP APIs")
	}
	if _, err := mapping.CompileRequest(it.RequestParameters); err != nil {
		return gwBad(err.Error())
	}
	if _, err := mapping.CompileResponse(it.ResponseParameters); err != nil {
		return gwBad(err.Error())
	}
	return nil
}

// definition is the stack file's integration it describes, in an API of the protocol.
func (it *gwIntegration) definition(protocol string) (map[string]any, error) {
	var d map[string]any
	switch it.Type {
	case "HTTP_PROXY":
		// AWS's payload format 1.0 means nothing more for an HTTP proxy: not written.
		d = map[string]any{"type": spec.IntegrationHTTPProxy, "target": it.URI}
		if it.Method != "" {
			d["method"] = it.Method
		}
		if len(it.RequestParameters) > 0 {
			d["requestParameters"] = it.RequestParameters
		}
		if it.ServerName != "" {
			d["tls"] = map[string]any{"serverName": it.ServerName}
		}
	case "MOCK":
		if it.Mock == nil {
			return nil, gwBad("integration " + it.ID + " is a MOCK integration without its answer")
		}
		d = map[string]any{"type": spec.IntegrationMock, "statusCode": it.Mock.StatusCode}
		if len(it.Mock.Headers) > 0 {
			d["headers"] = it.Mock.Headers
		}
		if it.Mock.Body != "" {
			d["body"] = it.Mock.Body
		}
	default:
		target, err := functionOfURI(it.URI)
		if err != nil {
			return nil, err
		}
		d = map[string]any{"type": spec.IntegrationFunction, "target": target}
		if protocol == "HTTP" {
			d["payloadFormatVersion"] = it.PayloadFormatVersion
		}
	}
	if len(it.ResponseParameters) > 0 {
		d["responseParameters"] = it.ResponseParameters
	}
	if it.TimeoutMs != 0 {
		d["timeout"] = (time.Duration(it.TimeoutMs) * time.Millisecond).String()
	}
	return d, nil
}

// functionOfURI is the function an AWS_PROXY integration's URI names: a function name or ARN, or the
// invocation ARN API Gateway writes (arn:aws:apigateway:REGION:lambda:path/2015-03-31/functions/ARN/invocations).
func functionOfURI(uri string) (string, error) {
	target, ok := openapi.FunctionOfURI(uri)
	if !ok {
		return "", gwBad(fmt.Sprintf("IntegrationUri %q: want a function's ARN or name", uri))
	}
	return target, nil
}

func (s *Server) views(a *gwAPI, kind string) []map[string]any {
	var ids []string
	switch kind {
	case "integrations":
		for id := range a.Integrations {
			ids = append(ids, id)
		}
	case "routes":
		for id := range a.Routes {
			ids = append(ids, id)
		}
	case "stages":
		for id := range a.Stages {
			ids = append(ids, id)
		}
	case "authorizers":
		for id := range a.Authorizers {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	out := []map[string]any{}
	for _, id := range ids {
		if v, ok := s.view(a, kind, id); ok {
			out = append(out, v)
		}
	}
	return out
}

func (s *Server) view(a *gwAPI, kind, id string) (map[string]any, bool) {
	switch kind {
	case "integrations":
		it := a.Integrations[id]
		if it == nil {
			return nil, false
		}
		v := map[string]any{"integrationId": it.ID, "integrationType": it.Type, "connectionType": "INTERNET"}
		if it.URI != "" {
			v["integrationUri"] = it.URI
		}
		if it.PayloadFormatVersion != "" {
			v["payloadFormatVersion"] = it.PayloadFormatVersion
		}
		if it.Method != "" {
			v["integrationMethod"] = it.Method
		}
		if len(it.RequestParameters) > 0 {
			v["requestParameters"] = it.RequestParameters
		}
		if len(it.ResponseParameters) > 0 {
			v["responseParameters"] = it.ResponseParameters
		}
		if it.ServerName != "" {
			v["tlsConfig"] = map[string]any{"serverNameToVerify": it.ServerName}
		}
		if it.Mock != nil {
			// How REST APIs' mocks say their status code; the headers and body have no place here.
			v["requestTemplates"] = map[string]string{"application/json": fmt.Sprintf(`{"statusCode": %d}`, it.Mock.StatusCode)}
		}
		if it.TimeoutMs != 0 {
			v["timeoutInMillis"] = it.TimeoutMs
		}
		return v, true
	case "routes":
		rt := a.Routes[id]
		if rt == nil {
			return nil, false
		}
		v := map[string]any{"routeId": rt.ID, "routeKey": rt.RouteKey, "authorizationType": rt.AuthorizationType, "apiKeyRequired": rt.APIKeyRequired}
		if rt.Target != "" {
			v["target"] = rt.Target
		}
		if rt.AuthorizerID != "" {
			v["authorizerId"] = rt.AuthorizerID
		}
		if len(rt.AuthorizationScopes) > 0 {
			v["authorizationScopes"] = rt.AuthorizationScopes
		}
		return v, true
	case "authorizers":
		au := a.Authorizers[id]
		if au == nil {
			return nil, false
		}
		v := map[string]any{"authorizerId": au.ID, "name": au.Name, "authorizerType": au.Type, "identitySource": au.IdentitySource}
		if au.Type == "JWT" {
			v["jwtConfiguration"] = map[string]any{"issuer": au.Issuer, "audience": au.Audience}
		} else {
			v["authorizerUri"] = au.URI
			v["authorizerResultTtlInSeconds"] = au.TTLSeconds
			v["enableSimpleResponses"] = au.SimpleResponses
			if au.PayloadFormatVersion != "" {
				v["authorizerPayloadFormatVersion"] = au.PayloadFormatVersion
			}
		}
		return v, true
	case "stages":
		st := a.Stages[id]
		if st == nil {
			return nil, false
		}
		v := map[string]any{"stageName": st.Name, "autoDeploy": st.AutoDeploy, "stageVariables": st.Variables,
			"createdDate": st.Created.Format(time.RFC3339), "lastUpdatedDate": st.Created.Format(time.RFC3339)}
		settings := func(t *throttle) map[string]any {
			return map[string]any{"throttlingRateLimit": t.Rate, "throttlingBurstLimit": t.Burst}
		}
		if st.Throttle != nil {
			v["defaultRouteSettings"] = settings(st.Throttle)
		}
		if st.AccessLog != nil {
			v["accessLogSettings"] = st.AccessLog
		}
		if len(st.RouteThrottles) > 0 {
			rs := map[string]any{}
			for k, t := range st.RouteThrottles {
				rs[k] = settings(t)
			}
			v["routeSettings"] = rs
		}
		return v, true
	case "deployments":
		return map[string]any{"deploymentId": id, "deploymentStatus": "DEPLOYED", "createdDate": time.Now().UTC().Format(time.RFC3339)}, true
	}
	return nil, false
}

// save stores a (if it is still at rev) and publishes what it now defines.
func (s *Server) save(ctx context.Context, req *request, a *gwAPI, rev uint64) error {
	if err := s.publishAPI(ctx, req, a); err != nil {
		return err
	}
	data, _ := json.Marshal(a)
	if _, err := s.cfg.APIs.Resources.Update(ctx, apiKey(a.ID), data, rev); err != nil {
		return &awsError{Status: http.StatusConflict, Code: "ConflictException", Message: "the API changed meanwhile: try again"}
	}
	return nil
}

// definition is the stack-file definition a describes, as JSON; ok is false while it defines nothing
// to serve (no stage, or no route with a target).
func (a *gwAPI) definition() ([]byte, bool, error) {
	def, err := a.definitionDoc(false)
	if err != nil || len(def["stages"].(map[string]any)) == 0 || len(def["routes"].(map[string]any)) == 0 {
		return nil, false, err
	}
	b, err := json.Marshal(def)
	return b, true, err
}

// definitionDoc is the stack-file definition a describes, whether or not it has stages and routes.
// Authorizers are named by their ids, or with byName by their names where those are valid in a
// stack file (as an export names them).
func (a *gwAPI) definitionDoc(byName bool) (map[string]any, error) {
	authName := func(id string) string {
		if au := a.Authorizers[id]; byName && au != nil && spec.ValidAuthorizerName(au.Name) {
			return au.Name
		}
		return id
	}
	stages := map[string]any{}
	for name, st := range a.Stages {
		stage := map[string]any{}
		if len(st.Variables) > 0 {
			stage["variables"] = st.Variables
		}
		if st.Throttle != nil {
			stage["throttle"] = st.Throttle
		}
		if len(st.RouteThrottles) > 0 {
			stage["routeThrottles"] = st.RouteThrottles
		}
		if al := st.AccessLog; al != nil && al.DestinationArn != "" {
			group, err := logGroupOfARN(al.DestinationArn)
			if err != nil {
				return nil, err
			}
			stage["accessLog"] = map[string]any{"format": cmp.Or(al.Format, spec.AccessLogJSON), "destination": spec.AccessLogGroupPrefix + group}
		}
		stages[name] = stage
	}
	routes := map[string]any{}
	for _, rt := range a.Routes {
		iid, ok := strings.CutPrefix(rt.Target, "integrations/")
		it := a.Integrations[iid]
		if !ok || it == nil {
			continue
		}
		integration, err := it.definition(a.ProtocolType)
		if err != nil {
			return nil, err
		}
		route := map[string]any{"integration": integration}
		if rt.RouteResponse != "" {
			route["routeResponse"] = true
		}
		if rt.APIKeyRequired {
			route["apiKeyRequired"] = true
		}
		switch rt.AuthorizationType {
		case "AWS_IAM":
			route["authorization"] = map[string]any{"type": "iam"}
		case "JWT":
			auth := map[string]any{"type": "jwt", "authorizer": authName(rt.AuthorizerID)}
			if len(rt.AuthorizationScopes) > 0 {
				auth["scopes"] = rt.AuthorizationScopes
			}
			route["authorization"] = auth
		case "CUSTOM":
			route["authorization"] = map[string]any{"type": "function", "authorizer": authName(rt.AuthorizerID)}
		}
		routes[rt.RouteKey] = route
	}
	authorizers := map[string]any{}
	for id, au := range a.Authorizers {
		switch au.Type {
		case "JWT":
			def := map[string]any{"type": "jwt", "issuer": au.Issuer, "audiences": au.Audience}
			if len(au.IdentitySource) > 0 {
				def["identitySource"] = au.IdentitySource[0]
			}
			authorizers[authName(id)] = def
		case "REQUEST":
			fn, err := functionOfURI(au.URI)
			if err != nil {
				return nil, err
			}
			def := map[string]any{"type": "function", "function": fn, "identitySources": au.IdentitySource,
				"simpleResponses": au.SimpleResponses}
			if au.TTLSeconds > 0 {
				def["resultTtl"] = (time.Duration(au.TTLSeconds) * time.Second).String()
			}
			authorizers[authName(id)] = def
		}
	}
	def := map[string]any{"type": strings.ToLower(a.ProtocolType), "mount": "/" + a.ID, "stages": stages, "routes": routes}
	if a.ProtocolType == "WEBSOCKET" {
		def["type"] = "websocket"
		def["routeSelectionExpression"] = a.RouteSelectionExpression
	}
	if len(a.CORS) > 0 {
		def["cors"] = a.CORS
	}
	if len(authorizers) > 0 {
		def["authorizers"] = authorizers
	}
	return def, nil
}

// publishAPI writes a's definition to the API store (or removes it while it defines nothing to
// serve), checked as a stack file's, and waits until the gateway serves it.
func (s *Server) publishAPI(ctx context.Context, req *request, a *gwAPI) error {
	store := s.cfg.APIs.Store
	def, ok, err := a.definition()
	if err != nil {
		return err
	}
	if !ok {
		return s.unpublish(ctx, a)
	}
	env, err := s.cfg.APIs.Env(ctx)
	if err != nil {
		return err
	}
	api, err := stackfile.ParseAPI("the API", def, "", a.StoreName, env)
	if err != nil {
		return gwBad(strings.ReplaceAll(err.Error(), "\n", "; "))
	}
	cur, err := store.Get(ctx, a.StoreName)
	exists := err == nil
	if err != nil && !errors.Is(err, apistore.ErrNotFound) {
		return err
	}
	if exists && cur.Hash == apistore.Hash(api) {
		return nil
	}
	rec := apistore.Record{Name: a.StoreName, ManagedBy: apistore.ManagedByAdmin, Source: "aws:" + req.keyID, UpdatedAt: time.Now(), API: api}
	newRev, err := store.Put(ctx, rec, cur.Revision)
	if err != nil {
		return err
	}
	s.audit(ctx, req, adminapi.ActionAPIApply, a.StoreName, "through the AWS API, revision "+strconv.FormatUint(newRev, 10))
	if s.cfg.APIs.Applied != nil {
		wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		return s.cfg.APIs.Applied(wctx, a.StoreName, newRev)
	}
	return nil
}

// unpublish removes a's definition from the API store, if it is there.
func (s *Server) unpublish(ctx context.Context, a *gwAPI) error {
	cur, err := s.cfg.APIs.Store.Get(ctx, a.StoreName)
	if errors.Is(err, apistore.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if err := s.cfg.APIs.Store.Delete(ctx, a.StoreName, cur.Revision); err != nil {
		return err
	}
	if s.cfg.APIs.Applied != nil {
		wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		return s.cfg.APIs.Applied(wctx, a.StoreName, 0)
	}
	return nil
}

// routeResponses serves a WebSocket route's route responses: the one Gatehouse has, $default, makes
// the route two-way (the function's answer goes back to the client), as the stack file's
// routeResponse: true does.
func (s *Server) routeResponses(ctx context.Context, w http.ResponseWriter, req *request, a *gwAPI, rev uint64, routeID string, rest []string) error {
	rt := a.Routes[routeID]
	if rt == nil {
		return &awsError{Status: http.StatusNotFound, Code: "NotFoundException", Message: "Invalid route identifier specified " + routeID}
	}
	if a.ProtocolType != "WEBSOCKET" {
		return gwBad("route responses are for WebSocket APIs")
	}
	view := func() map[string]any {
		return map[string]any{"routeResponseId": rt.RouteResponse, "routeResponseKey": "$default"}
	}
	switch r := req.r; {
	case len(rest) == 0 && r.Method == http.MethodGet:
		items := []map[string]any{}
		if rt.RouteResponse != "" {
			items = append(items, view())
		}
		return writeJSON(w, http.StatusOK, map[string]any{"items": items})
	case len(rest) == 0 && r.Method == http.MethodPost:
		var in struct{ RouteResponseKey string }
		if err := json.Unmarshal(req.body, &in); err != nil {
			return gwBad("the request is not CreateRouteResponse's JSON: " + err.Error())
		}
		if in.RouteResponseKey != "$default" {
			return gwBad(fmt.Sprintf("RouteResponseKey %q: Gatehouse has the $default route response only", in.RouteResponseKey))
		}
		if rt.RouteKey == "$connect" || rt.RouteKey == "$disconnect" {
			return gwBad("the $connect and $disconnect routes cannot answer with a route response")
		}
		if rt.RouteResponse != "" {
			return &awsError{Status: http.StatusConflict, Code: "ConflictException", Message: "the route has its $default route response already"}
		}
		rt.RouteResponse = randomID(6)
		if err := s.save(ctx, req, a, rev); err != nil {
			return err
		}
		return writeJSON(w, http.StatusCreated, view())
	case len(rest) == 1 && rt.RouteResponse == rest[0] && r.Method == http.MethodGet:
		return writeJSON(w, http.StatusOK, view())
	case len(rest) == 1 && rt.RouteResponse == rest[0] && r.Method == http.MethodDelete:
		rt.RouteResponse = ""
		if err := s.save(ctx, req, a, rev); err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	case len(rest) == 1:
		return &awsError{Status: http.StatusNotFound, Code: "NotFoundException", Message: "Invalid route response identifier specified " + rest[0]}
	}
	return unknownGW(req.r)
}

// logGroupOfARN is the log group an AccessLogSettings.DestinationArn names:
// arn:aws:logs:REGION:ACCOUNT:log-group:NAME, with or without a trailing :*.
func logGroupOfARN(arn string) (string, error) {
	_, rest, ok := strings.Cut(arn, ":log-group:")
	if !ok || !strings.HasPrefix(arn, "arn:aws:logs:") {
		return "", gwBad(fmt.Sprintf("AccessLogSettings.DestinationArn %q: want a CloudWatch Logs log group's ARN (arn:aws:logs:REGION:ACCOUNT:log-group:NAME); other destinations are not served", arn))
	}
	return strings.TrimSuffix(rest, ":*"), nil
}
