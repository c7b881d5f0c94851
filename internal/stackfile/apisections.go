package stackfile

import (
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"

	"github.com/goccy/go-yaml/ast"

	"gatehouse.dev/gatehouse/internal/didyoumean"
	"gatehouse.dev/gatehouse/internal/spec"
	"gatehouse.dev/gatehouse/internal/yamldecode"
	"gatehouse.dev/gatehouse/internal/yamlnode"
)

// Decoding an API: its stages, routes, limits, CORS and authorizers.

// api decodes the API ae; path is where it is in the document (nil for a document that is one API).
func (d *decoder) api(path []string, ae yamldecode.Entry) (spec.API, error) {
	api := spec.API{Name: ae.Key, Mount: spec.DefaultMount, Stages: map[string]spec.Stage{}}
	f, err := d.Fields(path, ae.Val, keysOf(spec.API{})...)
	if err != nil {
		return api, err
	}
	if api.Type, err = d.RequiredStr(f, ae.KeyAt, path, "type", "%q, %q or %q", spec.APITypeHTTP, spec.APITypeREST, spec.APITypeWebSocket); err != nil {
		return api, err
	}
	ws := api.Type == spec.APITypeWebSocket
	for _, k := range []string{"routeSelectionExpression", "limits"} {
		if e, ok := f[k]; ok && (api.Type == spec.APITypeHTTP || api.Type == spec.APITypeREST) {
			return api, d.Errorf(e.KeyAt, yamldecode.Sub(path, k), "%s", spec.MsgOnlyWebSocket)
		}
	}
	if err := d.restAPI(path, f, &api); err != nil {
		return api, err
	}
	if ws {
		api.RouteSelectionExpression = spec.DefaultRouteSelectionExpression
		if e, ok := f["routeSelectionExpression"]; ok {
			if api.RouteSelectionExpression, err = d.Str(yamldecode.Sub(path, "routeSelectionExpression"), e.Val); err != nil {
				return api, err
			}
		}
		var le ast.Node
		if e, ok := f["limits"]; ok {
			le = e.Val
		}
		if api.WebSocket, err = d.wsLimits(yamldecode.Sub(path, "limits"), le); err != nil {
			return api, err
		}
	}
	if e, ok := f["cors"]; ok {
		if ws {
			return api, d.Errorf(e.KeyAt, yamldecode.Sub(path, "cors"), "%s", spec.MsgOnlyHTTPCORS)
		}
		if api.CORS, err = d.cors(yamldecode.Sub(path, "cors"), e.Val); err != nil {
			return api, err
		}
	}
	if e, ok := f["authorizers"]; ok {
		authPath := yamldecode.Sub(path, "authorizers")
		as, err := d.Entries(authPath, e.Val)
		if err != nil {
			return api, err
		}
		for _, ae := range as {
			a, err := d.authorizer(yamldecode.Sub(authPath, ae.Key), ae)
			if err != nil {
				return api, err
			}
			if api.Authorizers == nil {
				api.Authorizers = map[string]spec.Authorizer{}
			}
			api.Authorizers[a.Name] = a
		}
	}
	if e, ok := f["mount"]; ok {
		if api.Mount, err = d.Str(yamldecode.Sub(path, "mount"), e.Val); err != nil {
			return api, err
		}
	}
	if e, ok := f["host"]; ok {
		if api.Host, err = d.Str(yamldecode.Sub(path, "host"), e.Val); err != nil {
			return api, err
		}
		api.Host = strings.ToLower(api.Host)
	}
	if e, ok := f["stages"]; ok {
		stagesPath := yamldecode.Sub(path, "stages")
		stages, err := d.Entries(stagesPath, e.Val)
		if err != nil {
			return api, err
		}
		for _, se := range stages {
			st, err := d.stage(yamldecode.Sub(stagesPath, se.Key), se)
			if err != nil {
				return api, err
			}
			api.Stages[st.Name] = st
		}
	}
	if len(api.Stages) == 0 {
		api.Stages[spec.DefaultStage] = spec.Stage{Name: spec.DefaultStage, Variables: map[string]string{}}
	}
	if e, ok := f["routes"]; ok {
		routesPath := yamldecode.Sub(path, "routes")
		routes, err := d.Entries(routesPath, e.Val)
		if err != nil {
			return api, err
		}
		for i, re := range routes {
			if i == spec.MaxRoutesPerAPI {
				return api, d.Errorf(re.KeyAt, routesPath, "more than %d routes in one API", spec.MaxRoutesPerAPI)
			}
			r, err := d.route(yamldecode.Sub(routesPath, re.Key), re, api.Type)
			if err != nil {
				return api, err
			}
			api.Routes = append(api.Routes, r)
		}
	}
	if e, ok := f["resourcePolicy"]; ok {
		rp := yamldecode.Sub(path, "resourcePolicy")
		if v, _, err := d.Resolve(rp, e.Val); err == nil {
			if _, isMap := v.(*ast.MappingNode); !isMap {
				// The policy document as JSON text, as AWS's tools write it.
				text, err := d.Str(rp, e.Val)
				if err != nil {
					return api, err
				}
				api.ResourcePolicy = json.RawMessage(text)
			} else if api.ResourcePolicy, err = d.JSON(rp, e.Val); err != nil {
				return api, err
			}
		}
	}
	return api, d.decodeRest(path, f, &api, "type", "mount", "host", "stages", "routes", "routeSelectionExpression", "limits", "cors", "authorizers",
		"minimumCompressionSize", "models", "gatewayResponses", "resourcePolicy")
}

func (d *decoder) stage(path []string, se yamldecode.Entry) (spec.Stage, error) {
	st := spec.Stage{Name: se.Key, Variables: map[string]string{}}
	f, err := d.Fields(path, se.Val, keysOf(spec.Stage{})...)
	if err != nil {
		return st, err
	}
	if e, ok := f["throttle"]; ok {
		t, err := d.throttle(yamldecode.Sub(path, "throttle"), e)
		if err != nil {
			return st, err
		}
		st.Throttle = &t
	}
	if e, ok := f["routeThrottles"]; ok {
		rtPath := yamldecode.Sub(path, "routeThrottles")
		rts, err := d.Entries(rtPath, e.Val)
		if err != nil {
			return st, err
		}
		for _, rt := range rts {
			t, err := d.throttle(yamldecode.Sub(rtPath, rt.Key), rt)
			if err != nil {
				return st, err
			}
			if st.RouteThrottles == nil {
				st.RouteThrottles = map[string]spec.Throttle{}
			}
			st.RouteThrottles[rt.Key] = t
		}
	}
	if e, ok := f["variables"]; ok {
		varsPath := yamldecode.Sub(path, "variables")
		vars, err := d.Entries(varsPath, e.Val)
		if err != nil {
			return st, err
		}
		for i, v := range vars {
			if i == spec.MaxStageVariables {
				return st, d.Errorf(e.KeyAt, varsPath, "more than %d variables in one stage", spec.MaxStageVariables)
			}
			if st.Variables[v.Key], err = d.Text(yamldecode.Sub(varsPath, v.Key), v.Val); err != nil {
				return st, err
			}
		}
	}
	if e, ok := f["accessLog"]; ok {
		a, err := d.accessLog(yamldecode.Sub(path, "accessLog"), e)
		if err != nil {
			return st, err
		}
		st.AccessLog = a
	}
	if e, ok := f["cache"]; ok {
		cp := yamldecode.Sub(path, "cache")
		g, err := d.Fields(cp, e.Val, keysOf(spec.StageCache{})...)
		if err != nil {
			return st, err
		}
		st.Cache = &spec.StageCache{TTL: spec.Duration(spec.DefaultCacheTTL), RequireAuthorization: true}
		if _, err := d.Required(g, e.KeyAt, cp, "sizeMB", "the cache's capacity in MB, %v to %v", spec.MinCacheSizeMB, spec.MaxCacheSizeMB); err != nil {
			return st, err
		}
		if err := d.decodeRest(cp, g, st.Cache); err != nil {
			return st, err
		}
	}
	return st, d.decodeRest(path, f, &st, "variables", "throttle", "routeThrottles", "accessLog", "cache")
}

// accessLog decodes a stage's accessLog: and fills its defaults; a file: destination's path is made
// absolute against the stack file's directory.
func (d *decoder) accessLog(path []string, e yamldecode.Entry) (*spec.AccessLog, error) {
	a := &spec.AccessLog{Format: spec.AccessLogJSON, Destination: spec.AccessLogStdout}
	f, err := d.Fields(path, e.Val, "format", "destination", "maxFileMB")
	if err != nil {
		return nil, err
	}
	if v, ok := f["format"]; ok {
		if a.Format, err = d.Str(yamldecode.Sub(path, "format"), v.Val); err != nil {
			return nil, err
		}
	}
	if v, ok := f["destination"]; ok {
		if a.Destination, err = d.Str(yamldecode.Sub(path, "destination"), v.Val); err != nil {
			return nil, err
		}
	}
	if p, ok := strings.CutPrefix(a.Destination, spec.AccessLogFilePrefix); ok {
		if p != "" && !filepath.IsAbs(p) {
			if d.Dir == "" {
				return nil, d.Errorf(f["destination"].Val, yamldecode.Sub(path, "destination"), "a relative path needs a stack file's directory: write an absolute path")
			}
			a.Destination = spec.AccessLogFilePrefix + filepath.Join(d.Dir, p)
		}
		a.MaxFileMB = spec.DefaultAccessLogFileMB
	}
	if v, ok := f["maxFileMB"]; ok {
		if a.MaxFileMB, err = d.Integer(yamldecode.Sub(path, "maxFileMB"), v.Val, "MB"); err != nil {
			return nil, err
		}
	}
	return a, nil
}

// wsLimits decodes a WebSocket API's limits (n may be nil) and fills the defaults.
func (d *decoder) wsLimits(path []string, n ast.Node) (*spec.WebSocketLimits, error) {
	l := &spec.WebSocketLimits{
		MaxMessageBytes:       spec.DefaultMaxMessageBytes,
		IdleTimeout:           spec.Duration(spec.DefaultWSIdleTimeout),
		MaxConnectionDuration: spec.Duration(spec.DefaultMaxConnectionDuration),
		SendQueue:             spec.DefaultSendQueue,
	}
	f, err := d.Fields(path, n, "maxMessageBytes", "maxFrameBytes", "idleTimeout", "maxConnectionDuration", "sendQueue")
	if err != nil {
		return l, err
	}
	ints := []struct {
		key  string
		to   *int
		unit string
	}{{"maxMessageBytes", &l.MaxMessageBytes, " of bytes"}, {"maxFrameBytes", &l.MaxFrameBytes, " of bytes"}, {"sendQueue", &l.SendQueue, ""}}
	for _, x := range ints {
		if e, ok := f[x.key]; ok {
			if *x.to, err = d.Integer(yamldecode.Sub(path, x.key), e.Val, x.unit); err != nil {
				return l, err
			}
		}
	}
	durs := []struct {
		key string
		to  *spec.Duration
	}{{"idleTimeout", &l.IdleTimeout}, {"maxConnectionDuration", &l.MaxConnectionDuration}}
	for _, x := range durs {
		if e, ok := f[x.key]; ok {
			if *x.to, err = d.duration(yamldecode.Sub(path, x.key), e.Val); err != nil {
				return l, err
			}
		}
	}
	if _, ok := f["maxFrameBytes"]; !ok {
		l.MaxFrameBytes = min(spec.DefaultMaxFrameBytes, l.MaxMessageBytes)
	}
	return l, nil
}

func (d *decoder) route(path []string, re yamldecode.Entry, apiType string) (spec.Route, error) {
	r := spec.NewRoute(re.Key, apiType)
	r.Line, r.Column = yamlnode.Position(re.KeyAt)
	ws := apiType == spec.APITypeWebSocket
	if v, _, err := d.Resolve(path, re.Val); err == nil && v != nil {
		if _, ok := v.(*ast.MappingNode); !ok {
			return r, d.Errorf(re.Val, path, "want a mapping such as {function: NAME}, got %s", yamldecode.Describe(v))
		}
	}
	f, err := d.Fields(path, re.Val, append(keysOf(spec.Route{}, "function", "timeout"), "invocationType")...)
	if err != nil {
		return r, err
	}
	if e, ok := f["authorization"]; ok {
		if r.Authorization, err = d.authorization(yamldecode.Sub(path, "authorization"), e.Val); err != nil {
			return r, err
		}
	}
	if e, ok := f["apiKeyRequired"]; ok {
		if r.APIKeyRequired, err = d.Bool(yamldecode.Sub(path, "apiKeyRequired"), e.Val); err != nil {
			return r, err
		}
	}
	if err := d.restRoute(path, f, &r); err != nil {
		return r, err
	}
	if e, ok := f["routeResponse"]; ok {
		if apiType == spec.APITypeHTTP || apiType == spec.APITypeREST {
			return r, d.Errorf(e.KeyAt, yamldecode.Sub(path, "routeResponse"), "%s", spec.MsgOnlyWebSocket)
		}
		if r.RouteResponse, err = d.Bool(yamldecode.Sub(path, "routeResponse"), e.Val); err != nil {
			return r, err
		}
	}
	fe, hasFn := f["function"]
	ie, hasInt := f["integration"]
	switch {
	case hasFn && hasInt:
		return r, d.Errorf(ie.KeyAt, path, "give either function or integration, not both")
	case hasFn:
		if r.Integration.Target, err = d.Str(yamldecode.Sub(path, "function"), fe.Val); err != nil {
			return r, err
		}
		if e, ok := f["timeout"]; ok {
			if r.Integration.Timeout, err = d.duration(yamldecode.Sub(path, "timeout"), e.Val); err != nil {
				return r, err
			}
		}
		if e, ok := f["invocationType"]; ok {
			if r.Integration.InvocationType, err = d.invocationType(yamldecode.Sub(path, "invocationType"), e.Val); err != nil {
				return r, err
			}
		}
	case hasInt:
		for _, k := range []string{"timeout", "invocationType"} {
			if e, ok := f[k]; ok {
				return r, d.Errorf(e.KeyAt, yamldecode.Sub(path, k), "with integration, put %s inside it", k)
			}
		}
		intPath := yamldecode.Sub(path, "integration")
		if r.Integration, err = d.integration(intPath, ie, r.Integration, ws); err != nil {
			return r, err
		}
	default:
		return r, d.Errorf(re.KeyAt, path, "the route has no target: add function: NAME (or an integration)")
	}
	return r, d.decodeRest(path, f, &r, "function", "timeout", "invocationType", "integration", "routeResponse", "authorization", "apiKeyRequired", "request", "cache")
}

// integration reads a route's long form `integration:` over in, which holds the defaults.
func (d *decoder) integration(path []string, ie yamldecode.Entry, in spec.Integration, ws bool) (spec.Integration, error) {
	g, err := d.Fields(path, ie.Val, keysOf(spec.Integration{})...)
	if err != nil {
		return in, err
	}
	if e, ok := g["type"]; ok {
		if in.Type, err = d.Str(yamldecode.Sub(path, "type"), e.Val); err != nil {
			return in, err
		}
	}
	switch in.Type {
	case spec.IntegrationHTTPProxy:
		in.PayloadFormatVersion, in.Method = "", spec.MethodAny
		if in.Target, err = d.RequiredStr(g, ie.KeyAt, path, "target", "the backend's URL, such as http://orders.internal:8080/{proxy}"); err != nil {
			return in, err
		}
	case spec.IntegrationMock:
		in.PayloadFormatVersion, in.StatusCode = "", 200
		if e, ok := g["target"]; ok {
			// Read to be refused by the checks, with their reason.
			if in.Target, err = d.Str(yamldecode.Sub(path, "target"), e.Val); err != nil {
				return in, err
			}
		}
	default:
		if in.Target, err = d.RequiredStr(g, ie.KeyAt, path, "target", "the name of a function"); err != nil {
			return in, err
		}
	}
	if e, ok := g["payloadFormatVersion"]; ok {
		if ws {
			return in, d.Errorf(e.KeyAt, yamldecode.Sub(path, "payloadFormatVersion"), "only for http APIs: websocket routes receive WebSocket events; remove it")
		}
		// `payloadFormatVersion: 2.0` unquoted is a number in YAML; take its text.
		if in.PayloadFormatVersion, err = d.Text(yamldecode.Sub(path, "payloadFormatVersion"), e.Val); err != nil {
			return in, err
		}
		if in.Type == spec.IntegrationHTTPProxy && in.PayloadFormatVersion == spec.PayloadFormat1 {
			// What API Gateway asks of its HTTP proxy integrations, and means nothing more here.
			in.PayloadFormatVersion = ""
		}
	}
	if e, ok := g["invocationType"]; ok {
		if in.InvocationType, err = d.invocationType(yamldecode.Sub(path, "invocationType"), e.Val); err != nil {
			return in, err
		}
	}
	if e, ok := g["tls"]; ok {
		tp := yamldecode.Sub(path, "tls")
		h, err := d.Fields(tp, e.Val, keysOf(spec.IntegrationTLS{})...)
		if err != nil {
			return in, err
		}
		in.TLS = &spec.IntegrationTLS{}
		if ce, ok := h["caFile"]; ok {
			if in.TLS.CAFile, err = d.file(yamldecode.Sub(tp, "caFile"), ce.Val, "a PEM file of certificate authorities, such as ./ca.pem"); err != nil {
				return in, err
			}
		}
		if err := d.decodeRest(tp, h, in.TLS, "caFile"); err != nil {
			return in, err
		}
	}
	return in, d.decodeRest(path, g, &in, "type", "target", "payloadFormatVersion", "invocationType", "tls")
}

// invocationType reads an integration's invocationType, in Lambda's spelling or in lower case
// (`event`, `requestResponse`).
func (d *decoder) invocationType(path []string, n ast.Node) (string, error) {
	s, err := d.Str(path, n)
	if err != nil {
		return "", err
	}
	for _, t := range []string{spec.InvocationRequestResponse, spec.InvocationEvent} {
		if strings.EqualFold(s, t) {
			return t, nil
		}
	}
	return s, nil // refused by the checks, with their message
}

func (d *decoder) cors(path []string, n ast.Node) (*spec.CORS, error) {
	c := &spec.CORS{}
	f, err := d.Fields(path, n, "allowOrigins", "allowMethods", "allowHeaders", "exposeHeaders", "maxAge", "allowCredentials")
	if err != nil {
		return nil, err
	}
	lists := []struct {
		key string
		to  *[]string
	}{{"allowOrigins", &c.AllowOrigins}, {"allowMethods", &c.AllowMethods}, {"allowHeaders", &c.AllowHeaders}, {"exposeHeaders", &c.ExposeHeaders}}
	for _, l := range lists {
		if e, ok := f[l.key]; ok {
			if *l.to, err = d.StrList(yamldecode.Sub(path, l.key), e.Val); err != nil {
				return nil, err
			}
			if len(*l.to) == 0 {
				*l.to = nil
			}
		}
	}
	if e, ok := f["maxAge"]; ok {
		age, err := d.Integer(yamldecode.Sub(path, "maxAge"), e.Val, " of seconds")
		if err != nil {
			return nil, err
		}
		c.MaxAge = &age
	}
	if e, ok := f["allowCredentials"]; ok {
		if c.AllowCredentials, err = d.Bool(yamldecode.Sub(path, "allowCredentials"), e.Val); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// Keys of each authorizer type.
var (
	jwtAuthorizerKeys      = []string{"issuer", "audiences", "identitySource", "jwksUrl", "jwksFile", "algorithms", "skew"}
	functionAuthorizerKeys = []string{"function", "identitySources", "resultTtl", "simpleResponses", "timeout"}
	restAuthorizerKeys     = []string{"function", "identitySources", "resultTtl", "timeout", "identityValidationExpression"}
)

func (d *decoder) authorizer(path []string, ae yamldecode.Entry) (spec.Authorizer, error) {
	a := spec.Authorizer{Name: ae.Key}
	es, err := d.Entries(path, ae.Val)
	if err != nil {
		return a, err
	}
	te, ok := yamldecode.FindEntry(es, "type")
	if !ok {
		return a, d.Errorf(ae.KeyAt, yamldecode.Sub(path, "type"), "required: %q or %q", spec.AuthorizerJWT, spec.AuthorizerFunction)
	}
	if a.Type, err = d.Str(yamldecode.Sub(path, "type"), te.Val); err != nil {
		return a, err
	}
	var own, others []string
	switch a.Type {
	case spec.AuthorizerJWT:
		own, others = jwtAuthorizerKeys, functionAuthorizerKeys
	case spec.AuthorizerFunction:
		own, others = functionAuthorizerKeys, jwtAuthorizerKeys
	case spec.AuthorizerToken, spec.AuthorizerRequest:
		own, others = restAuthorizerKeys, jwtAuthorizerKeys
	default:
		types := []string{spec.AuthorizerJWT, spec.AuthorizerFunction, spec.AuthorizerToken, spec.AuthorizerRequest}
		return a, d.Errorf(te.Val, yamldecode.Sub(path, "type"), "unknown authorizer type %s%s: want jwt or function (http APIs), token or request (rest APIs)",
			yamlnode.QuoteShort(a.Type), didyoumean.Suggest(a.Type, types))
	}
	for _, e := range es {
		if slices.Contains(others, e.Key) {
			other := spec.AuthorizerJWT
			if a.Type == spec.AuthorizerJWT {
				other = spec.AuthorizerFunction
			}
			return a, d.Errorf(e.KeyAt, yamldecode.Sub(path, e.Key), "only for %s authorizers; this one has type: %s", other, a.Type)
		}
	}
	f, err := d.ByKey(path, es, append([]string{"type"}, own...))
	if err != nil {
		return a, err
	}
	switch a.Type {
	case spec.AuthorizerJWT:
		a.JWT, err = d.jwtAuthorizer(path, ae.KeyAt, f)
	case spec.AuthorizerFunction:
		a.Function, err = d.functionAuthorizer(path, ae.KeyAt, f, nil)
	default:
		var sources []string
		if a.Type == spec.AuthorizerToken {
			// A token authorizer reads the Authorization header unless told otherwise.
			sources = []string{spec.DefaultJWTIdentitySource}
		}
		a.Function, err = d.functionAuthorizer(path, ae.KeyAt, f, sources)
		if err == nil {
			a.Function.SimpleResponses = false
			if e, ok := f["identityValidationExpression"]; ok {
				a.Function.IdentityValidationExpression, err = d.Str(yamldecode.Sub(path, "identityValidationExpression"), e.Val)
			}
		}
	}
	return a, err
}

func (d *decoder) jwtAuthorizer(path []string, at ast.Node, f map[string]yamldecode.Entry) (*spec.JWTAuthorizer, error) {
	j := &spec.JWTAuthorizer{IdentitySource: spec.DefaultJWTIdentitySource, Algorithms: spec.DefaultJWTAlgorithms(), Skew: spec.Duration(spec.DefaultJWTSkew)}
	var err error
	if j.Issuer, err = d.RequiredStr(f, at, path, "issuer", "the token issuer, an https URL such as https://id.example.com"); err != nil {
		return nil, err
	}
	if j.Audiences, err = d.RequiredStrList(f, at, path, "audiences", "the audiences a token may be for, such as [api://web]"); err != nil {
		return nil, err
	}
	strs := []struct {
		key string
		to  *string
	}{{"identitySource", &j.IdentitySource}, {"jwksUrl", &j.JWKSURL}}
	for _, x := range strs {
		if e, ok := f[x.key]; ok {
			if *x.to, err = d.Str(yamldecode.Sub(path, x.key), e.Val); err != nil {
				return nil, err
			}
		}
	}
	if e, ok := f["jwksFile"]; ok {
		if _, both := f["jwksUrl"]; both {
			return nil, d.Errorf(e.KeyAt, path, "give either jwksUrl or jwksFile, not both")
		}
		if j.JWKSFile, err = d.jwksFile(yamldecode.Sub(path, "jwksFile"), e.Val); err != nil {
			return nil, err
		}
	}
	if e, ok := f["algorithms"]; ok {
		algs, err := d.StrList(yamldecode.Sub(path, "algorithms"), e.Val)
		if err != nil {
			return nil, err
		}
		if algs != nil {
			j.Algorithms = algs
		}
	}
	if e, ok := f["skew"]; ok {
		if j.Skew, err = d.duration(yamldecode.Sub(path, "skew"), e.Val); err != nil {
			return nil, err
		}
	}
	return j, nil
}

// jwksFile resolves a JWT authorizer's key file against the stack file's directory and checks
// that it is a regular file.
func (d *decoder) jwksFile(path []string, n ast.Node) (string, error) {
	return d.file(path, n, "a JSON Web Key Set file, such as ./keys.json")
}

// file resolves the name of a file against the stack file's directory and checks that it is a
// regular file; want says what it should be, for errors.
func (d *decoder) file(path []string, n ast.Node, want string) (string, error) {
	name, err := d.Str(path, n)
	if err != nil {
		return "", err
	}
	if strings.TrimSpace(name) == "" || strings.ContainsRune(name, 0) {
		return "", d.Errorf(n, path, "%s is not a file name; want the path of %s", yamlnode.QuoteShort(name), want)
	}
	abs := name
	if !filepath.IsAbs(abs) {
		if d.Dir == "" {
			return "", d.Errorf(n, path, "%s is a relative path, and this definition has no directory to resolve it against; give an absolute path", yamlnode.QuoteShort(name))
		}
		abs = filepath.Join(d.Dir, abs)
	}
	abs = filepath.Clean(abs)
	info, err := os.Stat(abs)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "", d.Errorf(n, path, "%s does not exist (looked for %q)", yamlnode.QuoteShort(name), abs)
	case err != nil:
		return "", d.Errorf(n, path, "cannot use %s: %v", yamlnode.QuoteShort(name), err)
	case !info.Mode().IsRegular():
		return "", d.Errorf(n, path, "%s is not a file; want %s", yamlnode.QuoteShort(name), want)
	}
	return abs, nil
}

// functionAuthorizer reads a function, token or request authorizer's settings; identitySources
// are required unless sources gives their default.
func (d *decoder) functionAuthorizer(path []string, at ast.Node, f map[string]yamldecode.Entry, sources []string) (*spec.FunctionAuthorizer, error) {
	a := &spec.FunctionAuthorizer{ResultTTL: spec.Duration(spec.DefaultAuthorizerResultTTL), SimpleResponses: spec.DefaultSimpleResponses, Timeout: spec.Duration(spec.DefaultAuthorizerTimeout)}
	var err error
	if a.Function, err = d.RequiredStr(f, at, path, "function", "the function that decides, a function of this stack"); err != nil {
		return nil, err
	}
	if _, ok := f["identitySources"]; ok || sources == nil {
		if a.IdentitySources, err = d.RequiredStrList(f, at, path, "identitySources", "the request values the decision depends on, such as [$request.header.Authorization]"); err != nil {
			return nil, err
		}
	} else {
		a.IdentitySources = sources
	}
	durs := []struct {
		key string
		to  *spec.Duration
	}{{"resultTtl", &a.ResultTTL}, {"timeout", &a.Timeout}}
	for _, x := range durs {
		if e, ok := f[x.key]; ok {
			if *x.to, err = d.duration(yamldecode.Sub(path, x.key), e.Val); err != nil {
				return nil, err
			}
		}
	}
	if e, ok := f["simpleResponses"]; ok {
		if a.SimpleResponses, err = d.Bool(yamldecode.Sub(path, "simpleResponses"), e.Val); err != nil {
			return nil, err
		}
	}
	return a, nil
}

func (d *decoder) authorization(path []string, n ast.Node) (spec.Authorization, error) {
	a := spec.Authorization{Type: spec.AuthNone}
	f, err := d.Fields(path, n, "type", "authorizer", "scopes")
	if err != nil {
		return a, err
	}
	if e, ok := f["type"]; ok {
		if a.Type, err = d.Str(yamldecode.Sub(path, "type"), e.Val); err != nil {
			return a, err
		}
	}
	if e, ok := f["authorizer"]; ok {
		if a.Authorizer, err = d.Str(yamldecode.Sub(path, "authorizer"), e.Val); err != nil {
			return a, err
		}
	}
	if e, ok := f["scopes"]; ok {
		if a.Scopes, err = d.StrList(yamldecode.Sub(path, "scopes"), e.Val); err != nil {
			return a, err
		}
		if len(a.Scopes) == 0 {
			a.Scopes = nil
		}
	}
	return a, nil
}

// restAPI reads the settings only REST APIs have: minimumCompressionSize, models and
// gatewayResponses (binaryMediaTypes is a plain list, read with the rest).
func (d *decoder) restAPI(path []string, f map[string]yamldecode.Entry, api *spec.API) error {
	for _, k := range []string{"binaryMediaTypes", "minimumCompressionSize", "models", "gatewayResponses"} {
		if e, ok := f[k]; ok && api.Type != spec.APITypeREST {
			return d.Errorf(e.KeyAt, yamldecode.Sub(path, k), "only for rest APIs (type: rest); remove it")
		}
	}
	if e, ok := f["minimumCompressionSize"]; ok {
		n, err := d.Integer(yamldecode.Sub(path, "minimumCompressionSize"), e.Val, " of bytes")
		if err != nil {
			return err
		}
		api.MinimumCompressionSize = &n
	}
	if e, ok := f["models"]; ok {
		mp := yamldecode.Sub(path, "models")
		es, err := d.Entries(mp, e.Val)
		if err != nil {
			return err
		}
		api.Models = map[string]spec.Model{}
		for _, me := range es {
			p := yamldecode.Sub(mp, me.Key)
			g, err := d.Fields(p, me.Val, keysOf(spec.Model{})...)
			if err != nil {
				return err
			}
			se, err := d.Required(g, me.KeyAt, p, "schema", "a JSON Schema (draft 4), such as {type: object, required: [name]}")
			if err != nil {
				return err
			}
			schema, err := d.JSON(yamldecode.Sub(p, "schema"), se.Val)
			if err != nil {
				return err
			}
			api.Models[me.Key] = spec.Model{Schema: schema}
		}
	}
	if e, ok := f["gatewayResponses"]; ok {
		gp := yamldecode.Sub(path, "gatewayResponses")
		es, err := d.Entries(gp, e.Val)
		if err != nil {
			return err
		}
		api.GatewayResponses = map[string]spec.GatewayResponse{}
		for _, ge := range es {
			p := yamldecode.Sub(gp, ge.Key)
			g, err := d.Fields(p, ge.Val, keysOf(spec.GatewayResponse{})...)
			if err != nil {
				return err
			}
			var gr spec.GatewayResponse
			if err := d.decodeRest(p, g, &gr); err != nil {
				return err
			}
			api.GatewayResponses[ge.Key] = gr
		}
	}
	return nil
}

// restRoute reads a route's request validation and cache settings, which only REST APIs have.
func (d *decoder) restRoute(path []string, f map[string]yamldecode.Entry, r *spec.Route) error {
	if e, ok := f["request"]; ok {
		p := yamldecode.Sub(path, "request")
		g, err := d.Fields(p, e.Val, keysOf(spec.RequestValidation{})...)
		if err != nil {
			return err
		}
		v := &spec.RequestValidation{}
		if pe, ok := g["parameters"]; ok {
			pp := yamldecode.Sub(p, "parameters")
			es, err := d.Entries(pp, pe.Val)
			if err != nil {
				return err
			}
			v.Parameters = map[string]bool{}
			for _, x := range es {
				if v.Parameters[x.Key], err = d.Bool(yamldecode.Sub(pp, x.Key), x.Val); err != nil {
					return err
				}
				v.ValidateParameters = v.ValidateParameters || v.Parameters[x.Key]
			}
		}
		if me, ok := g["models"]; ok {
			if err := d.decodeValue(yamldecode.Sub(p, "models"), me, reflect.ValueOf(&v.Models).Elem()); err != nil {
				return err
			}
			v.ValidateBody = len(v.Models) > 0
		}
		if err := d.decodeRest(p, g, v, "parameters", "models"); err != nil {
			return err
		}
		r.Request = v
	}
	if e, ok := f["cache"]; ok {
		p := yamldecode.Sub(path, "cache")
		g, err := d.Fields(p, e.Val, keysOf(spec.RouteCache{})...)
		if err != nil {
			return err
		}
		c := &spec.RouteCache{Enabled: true}
		if te, ok := g["ttl"]; ok {
			ttl, err := d.duration(yamldecode.Sub(p, "ttl"), te.Val)
			if err != nil {
				return err
			}
			c.TTL = &ttl
		}
		if err := d.decodeRest(p, g, c, "ttl"); err != nil {
			return err
		}
		r.Cache = c
	}
	return nil
}
