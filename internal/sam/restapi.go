package sam

import (
	"math"
	"slices"
	"strconv"
	"strings"

	"gatehouse.dev/gatehouse/internal/doctree"
	"gatehouse.dev/gatehouse/internal/openapi"
	"gatehouse.dev/gatehouse/internal/spec"
)

// REST APIs: AWS::Serverless::Api resources and the functions' Api events, read into `type: rest`
// APIs.

// ImplicitRESTAPI is the name of the REST API that Api events without a RestApiId make, as SAM
// names it.
const ImplicitRESTAPI = "ServerlessRestApi"

// DefaultRESTStage is the stage of SAM's implicit REST API when Globals.Api names none.
const DefaultRESTStage = "Prod"

// SharedUsagePlan is the usage plan of Auth.UsagePlan's CreateUsagePlan: SHARED, named as SAM names
// it; it is also the plan made when routes ask for an API key and the template makes no plan.
const SharedUsagePlan = "ServerlessUsagePlan"

// Account-wide limits of API Gateway, which stand in for a throttle's missing rate or burst.
const ()

// restAPI is what reading a REST API needs beyond its definition.
type restAPI struct {
	name string
	def  *doctree.Node // the API's definition in r.apis
	// defaultAuthorizer is Auth.DefaultAuthorizer; apiKeyRequired is Auth.ApiKeyRequired.
	defaultAuthorizer, apiKeyRequired *doctree.Node
	// open are the authorizers that are not served (Cognito user pools): routes that name them
	// are served without authorization, as sam local serves them.
	open map[string]bool
	// stage is the stage's definition, served under two names (see restStages).
	stage *doctree.Node
	// cached says the stage has a cache (CacheClusterEnabled).
	cached bool
	// methodSettings are the stage's MethodSettings, applied once every route is known.
	methodSettings []*doctree.Node
	routes         []*restRoute
	// fromBody are the keys of the routes of the Api's DefinitionBody, which events may lay their
	// settings over.
	fromBody map[string]bool
}

// restRoute is a route of a REST API as its event wrote it.
type restRoute struct {
	method, path string
	def          *doctree.Node
	at           *doctree.Node
	// cacheKeys are the request parameters marked Caching: true, as the stack file writes them.
	cacheKeys []*doctree.Node
}

// restAPIResource reads an AWS::Serverless::Api, with Globals.Api under its properties.
func (r *reader) restAPIResource(id string, res *doctree.Node) error {
	p, err := r.props(res, "Api")
	if err != nil {
		return err
	}
	_, err = r.newRESTAPI(id, p, res)
	return err
}

// implicitRESTAPI returns the API of Api events without a RestApiId, made from Globals.Api on first
// use; at is the first such event.
func (r *reader) implicitRESTAPI(at *doctree.Node) (*restAPI, error) {
	if ra := r.rest[ImplicitRESTAPI]; ra != nil {
		return ra, nil
	}
	p := doctree.NewMap(at)
	if g := r.globals.Get("Api"); g != nil {
		v, err := r.eval(g)
		if err != nil {
			return nil, err
		}
		if v.Kind != doctree.Map {
			return nil, r.Errorf(g, "Globals.Api: want a mapping")
		}
		p, at = v, g
	}
	return r.newRESTAPI(ImplicitRESTAPI, p, at)
}

// newRESTAPI makes the REST API name from its properties p: stage, variables, cache, binary media
// types, compression, models, CORS, authorizers, gateway responses and usage plan.
func (r *reader) newRESTAPI(name string, p, at *doctree.Node) (*restAPI, error) {
	def := r.api(name, "rest", at)
	ra := &restAPI{name: name, def: def, open: map[string]bool{}, fromBody: map[string]bool{}}
	r.rest[name] = ra
	r.restOrder = append(r.restOrder, name)

	if err := r.restStages(ra, p, at); err != nil {
		return nil, err
	}
	if v := p.Get("BinaryMediaTypes"); v != nil {
		// SAM writes the / of a media type as ~1 (image~1png), as JSON pointers escape it.
		var types []*doctree.Node
		for _, t := range v.List() {
			types = append(types, doctree.Str(strings.ReplaceAll(t.Scalar(), "~1", "/"), t))
		}
		def.Set("binaryMediaTypes", doctree.NewList(v, types...))
	}
	if v := p.Get("MinimumCompressionSize"); v != nil {
		def.Set("minimumCompressionSize", doctree.AsNumber(v))
	}
	if v := p.Get("Models"); v != nil {
		models := doctree.NewMap(v)
		for model, schema := range v.All() {
			m := doctree.NewMap(schema)
			m.Set("schema", schema)
			models.Set(model, m)
		}
		def.Set("models", models)
	}
	if c := p.Get("Cors"); c != nil {
		cors, err := r.restCors(name, c)
		if err != nil {
			return nil, err
		}
		def.Set("cors", cors)
	}
	if auth := p.Get("Auth"); auth != nil {
		if err := r.restAuth(ra, auth); err != nil {
			return nil, err
		}
	}
	if g := p.Get("GatewayResponses"); g != nil {
		def.Set("gatewayResponses", r.gatewayResponses(name, g))
	}
	if err := r.restDefinition(ra, p); err != nil {
		return nil, err
	}
	for _, k := range []string{"Domain", "AccessLogSetting", "CanarySetting", "DisableExecuteApiEndpoint"} {
		if v := p.Get(k); v != nil {
			r.Notice(v, "Api %s: %s is not served locally: ignored", name, k)
		}
	}
	if v := p.Get("ApiKeySourceType"); v != nil && v.Scalar() != "HEADER" {
		r.Notice(v, "Api %s: ApiKeySourceType %s is not served: API keys are read from the x-api-key header", name, v.Scalar())
	}
	return ra, nil
}

// restDefinition reads an Api's DefinitionBody or DefinitionUri, a REST API's OpenAPI 3 or
// Swagger 2.0 document in API Gateway's dialect, into the API: its routes, and its authorizers,
// models, gateway responses and other settings where the Api's properties do not set them, as SAM
// merges its properties into the document.
func (r *reader) restDefinition(ra *restAPI, p *doctree.Node) error {
	body, file, err := r.definition(p)
	if err != nil || body == nil {
		return err
	}
	if body.Kind == doctree.Map && body.Get("info").Get("title").Scalar() == "" {
		// SAM names the API from the template, not from info.title, which the document may lack.
		doc := doctree.NewMap(body)
		doc.Keys, doc.Vals = append(doc.Keys, body.Keys...), append(doc.Vals, body.Vals...)
		info := doctree.NewMap(body)
		for k, v := range body.Get("info").All() {
			info.Set(k, v)
		}
		info.Set("title", doctree.Str(ra.name, body))
		doc.Set("info", info)
		body = doc
	}
	im, err := openapi.ImportAs(file, body, spec.APITypeREST)
	if err != nil {
		return err
	}
	r.Notices = append(r.Notices, im.Notices...)
	for i, k := range im.Definition.Keys {
		v := im.Definition.Vals[i]
		switch k {
		case "type":
		case "routes":
			routes := ra.def.Get("routes")
			for key, route := range v.All() {
				routes.Set(key, route)
				ra.fromBody[key] = true
				if k := route.Get("apiKeyRequired"); k.Scalar() == "true" && r.keysAt == nil {
					r.keysAt = k
				}
			}
		case "authorizers", "models", "gatewayResponses":
			mine := ra.def.Get(k)
			if mine == nil {
				ra.def.Set(k, v)
				continue
			}
			for name, x := range v.All() {
				if mine.Get(name) == nil {
					mine.Set(name, x)
				}
			}
		default:
			if ra.def.Get(k) == nil {
				ra.def.Set(k, v)
			}
		}
	}
	return nil
}

// restStages makes the API's stage from StageName (SAM's default, Prod, for the implicit API),
// Variables, CacheClusterEnabled/CacheClusterSize and the stage-wide MethodSettings.
//
// The stage is served twice: under its name, as the deployed API is (/Prod/hello), and as the
// $default stage, at the API's root, as `sam local start-api` serves every API (/hello), since
// that is the URL a SAM project's local scripts and tests call. Both have the same variables,
// throttles and cache settings.
func (r *reader) restStages(ra *restAPI, p, at *doctree.Node) error {
	stage := doctree.NewMap(at)
	ra.stage = stage
	if v := p.Get("Variables"); v != nil {
		stage.Set("variables", v)
	}
	if v := p.Get("CacheClusterEnabled"); v != nil && v.Scalar() == "true" {
		cache := doctree.NewMap(v)
		size, sizeAt := 0.5, v // API Gateway's default cluster, in GB
		if s := p.Get("CacheClusterSize"); s != nil {
			gb, err := strconv.ParseFloat(s.Scalar(), 64)
			if err != nil || gb <= 0 {
				return r.Errorf(s, "Api %s: CacheClusterSize %q: want a size in GB, such as \"0.5\"", ra.name, s.Scalar())
			}
			size, sizeAt = gb, s
		}
		// API Gateway's cluster is size GB of a machine of its own; here the cache is in the
		// gateway's memory, bounded to MinCacheSizeMB..MaxCacheSizeMB.
		mb := size * 1024
		if clamped := math.Min(math.Max(mb, spec.MinCacheSizeMB), spec.MaxCacheSizeMB); clamped != mb {
			r.Notice(sizeAt, "Api %s: a cache of %v GB is kept in the gateway's memory here, at most %v MB: the stage cache holds %v MB", ra.name, size, spec.MaxCacheSizeMB, clamped)
			mb = clamped
		}
		cache.Set("sizeMB", &doctree.Node{Kind: doctree.Number, Text: strconv.FormatFloat(mb, 'f', -1, 64), Line: sizeAt.Line, Column: sizeAt.Column, Path: sizeAt.Path})
		stage.Set("cache", cache)
		ra.cached = true
	}
	for _, ms := range p.Get("MethodSettings").List() {
		if resourcePath(ms) != "/*" || httpMethod(ms) != "*" {
			ra.methodSettings = append(ra.methodSettings, ms)
			continue
		}
		if t := openapi.Throttle(ms.Get("ThrottlingRateLimit"), ms.Get("ThrottlingBurstLimit"), ms, &r.Notes); t != nil {
			stage.Set("throttle", t)
		}
		if cache := stage.Get("cache"); cache != nil {
			if v := ms.Get("CacheTtlInSeconds"); v != nil {
				cache.Set("ttl", doctree.Str(v.Scalar()+"s", v))
			}
			if v := ms.Get("RequireAuthorizationForCacheControl"); v != nil {
				cache.Set("requireAuthorization", doctree.AsBool(v))
			}
		}
		// Caching of every method is decided with the routes' own settings.
		ra.methodSettings = append(ra.methodSettings, ms)
	}
	name := p.Get("StageName")
	stageName := name.Scalar()
	if stageName == "" {
		stageName = DefaultRESTStage
	}
	stages := doctree.NewMap(cmpNode(name, at))
	stages.Set(stageName, stage)
	stages.Set("$default", stage)
	ra.def.Set("stages", stages)
	return nil
}

// resourcePath is a MethodSettings entry's ResourcePath, decoded: "/*" for every path, else a path
// such as /orders/{id} (written /~1orders~1{id}).
func resourcePath(ms *doctree.Node) string {
	p := ms.Get("ResourcePath").Scalar()
	if p == "" || p == "/*" {
		return "/*"
	}
	p = strings.ReplaceAll(strings.TrimPrefix(p, "/"), "~1", "/")
	if !strings.HasPrefix(p, "/") {
		p = "/" + p
	}
	return p
}

// httpMethod is a MethodSettings entry's HttpMethod, upper-case: "*" for every method.
func httpMethod(ms *doctree.Node) string {
	m := strings.ToUpper(ms.Get("HttpMethod").Scalar())
	if m == "" {
		return "*"
	}
	return m
}

// restCors is a stack file's cors from an Api's Cors: an origin ("'*'"), or AllowOrigin,
// AllowMethods, AllowHeaders (comma-separated), MaxAge and AllowCredentials, whose string values
// SAM writes in single quotes.
func (r *reader) restCors(api string, c *doctree.Node) (*doctree.Node, error) {
	out := doctree.NewMap(c)
	if c.IsScalar() {
		out.Set("allowOrigins", doctree.NewList(c, doctree.Str(strings.ToLower(unquote(c.Text)), c)))
		out.Set("allowMethods", doctree.NewList(c, doctree.Str("*", c)))
		return out, nil
	}
	if c.Kind != doctree.Map {
		return nil, r.Errorf(c, "Api %s: Cors: want an origin such as \"'*'\", or a mapping with AllowOrigin", api)
	}
	list := func(v *doctree.Node, upper bool) *doctree.Node {
		l := doctree.NewList(v)
		for _, s := range strings.Split(unquote(v.Scalar()), ",") {
			if s = strings.TrimSpace(s); s != "" {
				if upper {
					s = strings.ToUpper(s)
				}
				l.Items = append(l.Items, doctree.Str(s, v))
			}
		}
		return l
	}
	for k, v := range c.All() {
		switch k {
		case "AllowOrigin":
			out.Set("allowOrigins", doctree.NewList(v, doctree.Str(strings.ToLower(unquote(v.Scalar())), v)))
		case "AllowMethods":
			out.Set("allowMethods", list(v, true))
		case "AllowHeaders":
			out.Set("allowHeaders", list(v, false))
		case "MaxAge":
			out.Set("maxAge", &doctree.Node{Kind: doctree.Number, Text: unquote(v.Scalar()), Line: v.Line, Column: v.Column, Path: v.Path})
		case "AllowCredentials":
			out.Set("allowCredentials", doctree.AsBool(v))
		default:
			return nil, r.Errorf(v, "Api %s: Cors.%s: unknown key; want AllowOrigin, AllowMethods, AllowHeaders, MaxAge or AllowCredentials", api, k)
		}
	}
	if out.Get("allowOrigins") == nil {
		return nil, r.Errorf(c, "Api %s: Cors has no AllowOrigin", api)
	}
	if out.Get("allowMethods") == nil {
		// SAM allows every method of the path.
		out.Set("allowMethods", doctree.NewList(c, doctree.Str("*", c)))
	}
	return out, nil
}

// unquote removes the single quotes API Gateway puts around static values ("'*'" → "*").
func unquote(s string) string {
	if len(s) >= 2 && s[0] == '\'' && s[len(s)-1] == '\'' {
		return s[1 : len(s)-1]
	}
	return s
}

// restAuth reads an Api's Auth: Lambda authorizers (TOKEN or REQUEST), Cognito ones (not served),
// DefaultAuthorizer, ApiKeyRequired and UsagePlan.
func (r *reader) restAuth(ra *restAPI, auth *doctree.Node) error {
	list := auth.Get("Authorizers")
	defs := doctree.NewMap(list)
	for name, a := range list.All() {
		switch {
		case a.Get("FunctionArn") != nil:
			def, err := r.lambdaAuthorizer(ra.name, name, a)
			if err != nil {
				return err
			}
			defs.Set(name, def)
		case a.Get("UserPoolArn") != nil:
			ra.open[name] = true
			r.Notice(a, "Api %s: authorizer %s checks Cognito user pool tokens, which are not served locally: routes that use it are served without authorization, as sam local serves them", ra.name, name)
		default:
			return r.Errorf(a, "Api %s: authorizer %s: want FunctionArn (a Lambda authorizer) or UserPoolArn (a Cognito one)", ra.name, name)
		}
	}
	if len(defs.Keys) > 0 {
		ra.def.Set("authorizers", defs)
	}
	ra.defaultAuthorizer = auth.Get("DefaultAuthorizer")
	ra.apiKeyRequired = auth.Get("ApiKeyRequired")
	if v := auth.Get("ResourcePolicy"); v != nil {
		if policy := r.resourcePolicy(ra.name, v); policy != nil {
			ra.def.Set("resourcePolicy", policy)
		}
	}
	if u := auth.Get("UsagePlan"); u != nil {
		return r.restUsagePlan(ra, u)
	}
	return nil
}

// lambdaAuthorizer reads a Lambda authorizer of an Api: FunctionPayloadType TOKEN (the default)
// reads Identity.Header, REQUEST its Identity.Headers, QueryStrings, StageVariables and Context;
// results are cached for Identity.ReauthorizeEvery seconds (SAM's default, 300).
func (r *reader) lambdaAuthorizer(api, name string, a *doctree.Node) (*doctree.Node, error) {
	fnArn := a.Get("FunctionArn")
	fn, ok := openapi.FunctionOfURI(fnArn.Scalar())
	if !ok {
		return nil, r.Errorf(fnArn, "Api %s: authorizer %s: FunctionArn %q is not a function's ARN (!GetAtt FUNCTION.Arn)", api, name, fnArn.Scalar())
	}
	def := doctree.NewMap(a)
	id := a.Get("Identity")
	var sources []*doctree.Node
	switch t := a.Get("FunctionPayloadType"); strings.ToUpper(t.Scalar()) {
	case "", "TOKEN":
		def.Set("type", doctree.Str("token", cmpNode(t, a)))
		header := id.Get("Header")
		h := header.Scalar()
		if h == "" {
			h = "Authorization"
		}
		sources = append(sources, doctree.Str(spec.IdentitySourceHeader+h, cmpNode(header, a)))
		if v := id.Get("ValidationExpression"); v != nil {
			def.Set("identityValidationExpression", v)
		}
	case "REQUEST":
		def.Set("type", doctree.Str("request", t))
		for _, part := range []struct{ key, prefix string }{{"Headers", spec.IdentitySourceHeader}, {"QueryStrings", spec.IdentitySourceQuery},
			{"StageVariables", spec.IdentitySourceStageVariable}, {"Context", spec.IdentitySourceContext}} {
			for _, v := range id.Get(part.key).List() {
				sources = append(sources, doctree.Str(part.prefix+v.Scalar(), v))
			}
		}
		if len(sources) == 0 {
			return nil, r.Errorf(a, "Api %s: authorizer %s: a REQUEST authorizer names what it reads in Identity: Headers, QueryStrings, StageVariables or Context", api, name)
		}
	default:
		return nil, r.Errorf(t, "Api %s: authorizer %s: FunctionPayloadType %q: want TOKEN or REQUEST", api, name, t.Scalar())
	}
	def.Set("function", doctree.Str(fn, fnArn))
	def.Set("identitySources", doctree.NewList(a, sources...))
	ttl, at := "300", a
	if v := id.Get("ReauthorizeEvery"); v != nil {
		ttl, at = v.Scalar(), v
	}
	def.Set("resultTtl", doctree.Str(ttl+"s", at))
	return def, nil
}

// restUsagePlan reads Auth.UsagePlan: PER_API makes the plan APIUsagePlan, SHARED the plan
// ServerlessUsagePlan, with the Throttle and Quota given; SAM's names for them.
func (r *reader) restUsagePlan(ra *restAPI, u *doctree.Node) error {
	create := u.Get("CreateUsagePlan")
	var plan string
	switch create.Scalar() {
	case "NONE":
		return nil
	case "PER_API":
		plan = ra.name + "UsagePlan"
	case "SHARED":
		plan = SharedUsagePlan
	default:
		return r.Errorf(cmpNode(create, u), "Api %s: UsagePlan.CreateUsagePlan %q: want PER_API, SHARED or NONE", ra.name, create.Scalar())
	}
	if r.usagePlans.Get(plan) != nil {
		return nil // SHARED, read with an earlier API
	}
	def := doctree.NewMap(u)
	t := u.Get("Throttle")
	if throttle := openapi.Throttle(t.Get("RateLimit"), t.Get("BurstLimit"), t, &r.Notes); throttle != nil {
		def.Set("throttle", throttle)
	}
	if q := u.Get("Quota"); q != nil {
		def.Set("quota", openapi.Quota(q.Get("Limit"), q.Get("Period"), q.Get("Offset"), q, &r.Notes))
	}
	r.usagePlans.Set(plan, def)
	key := ra.name + "ApiKey"
	if plan == SharedUsagePlan {
		key = "ServerlessApiKey"
	}
	r.Notice(u, "Api %s: API keys are not made from the template: make one for usage plan %s with gatehouse keys create %s --plan %s", ra.name, plan, key, plan)
	return nil
}

// gatewayResponses is a stack file's gatewayResponses from an Api's GatewayResponses: StatusCode,
// ResponseParameters.Headers (static values in single quotes, or stageVariables.NAME and
// context.NAME) and the application/json ResponseTemplates.
func (r *reader) gatewayResponses(api string, g *doctree.Node) *doctree.Node {
	out := doctree.NewMap(g)
	for typ, gr := range g.All() {
		m := doctree.NewMap(gr)
		if v := gr.Get("StatusCode"); v != nil {
			m.Set("statusCode", doctree.AsNumber(v))
		}
		rp := gr.Get("ResponseParameters")
		if h := rp.Get("Headers"); h != nil {
			headers := doctree.NewMap(h)
			for name, v := range h.All() {
				value, ok := responseParameter(v.Scalar())
				if !ok {
					r.Notice(v, "Api %s: gateway response %s: header %s takes %s, a request value, which gateway responses do not read here: ignored", api, typ, name, v.Scalar())
					continue
				}
				headers.Set(name, doctree.Str(value, v))
			}
			if len(headers.Keys) > 0 {
				m.Set("headers", headers)
			}
		}
		for _, k := range []string{"Paths", "QueryStrings"} {
			if v := rp.Get(k); v != nil {
				r.Notice(v, "Api %s: gateway response %s: ResponseParameters.%s is not served: ignored", api, typ, k)
			}
		}
		if t := gr.Get("ResponseTemplates"); t != nil {
			body := t.Get("application/json")
			if body == nil && len(t.Keys) == 1 {
				body = t.Vals[0]
			}
			for ct, v := range t.All() {
				if v != body {
					r.Notice(v, "Api %s: gateway response %s: one body is sent whatever the client accepts, the application/json one: the %s template is ignored", api, typ, ct)
				}
			}
			if body != nil {
				m.Set("body", doctree.Str(body.Scalar(), body))
			}
		}
		out.Set(typ, m)
	}
	return out
}

// responseParameter is the stack file's template for a gateway response's header value: 'static'
// text, stageVariables.NAME or context.NAME; false for request values (method.request.…).
func responseParameter(v string) (string, bool) {
	switch {
	case len(v) >= 2 && v[0] == '\'' && v[len(v)-1] == '\'':
		return v[1 : len(v)-1], true
	case strings.HasPrefix(v, "stageVariables."), strings.HasPrefix(v, "context."):
		return "$" + v, true
	}
	return "", false
}

// restEvent adds the route of a function's Api event to the implicit REST API or the
// AWS::Serverless::Api its RestApiId names.
func (r *reader) restEvent(fnID, fn, evName string, p, ev *doctree.Node) error {
	var ra *restAPI
	if v := p.Get("RestApiId"); v != nil {
		ra = r.rest[v.Scalar()]
		if ra == nil {
			if res := r.resources.Get(v.Scalar()); res != nil && strings.HasPrefix(res.Get("Type").Scalar(), "AWS::ApiGateway::") {
				r.Notice(v, "function %s: event %s: RestApiId %s is an %s, which is not served locally: skipped", fnID, evName, v.Scalar(), res.Get("Type").Scalar())
				return nil
			}
			return r.Errorf(v, "event %s: RestApiId %q is not an AWS::Serverless::Api of the template", evName, v.Scalar())
		}
	} else {
		var err error
		if ra, err = r.implicitRESTAPI(ev); err != nil {
			return err
		}
	}
	path, method := p.Get("Path"), p.Get("Method")
	if path == nil || method == nil {
		return r.Errorf(cmpNode(p, ev), "event %s: an Api event has a Path and a Method", evName)
	}
	m := strings.ToUpper(method.Scalar())
	if m == "X-AMAZON-APIGATEWAY-ANY-METHOD" || m == "*" {
		m = "ANY"
	}
	pth := path.Scalar()
	if len(pth) > 1 {
		pth = strings.TrimSuffix(pth, "/")
	}
	key := m + " " + pth
	integration := doctree.NewMap(ev)
	integration.Set("type", doctree.Str("function", ev))
	integration.Set("target", doctree.Str(fn, ev))
	if v := p.Get("TimeoutInMillis"); v != nil {
		integration.Set("timeout", doctree.Str(v.Scalar()+"ms", v))
	}
	route := doctree.NewMap(path)
	route.Set("integration", integration)

	auth := p.Get("Auth")
	authorizer := auth.Get("Authorizer")
	if authorizer == nil {
		authorizer = ra.defaultAuthorizer
	}
	switch a := authorizer.Scalar(); {
	case a == "" || a == "NONE" || ra.open[a]:
	case a == "AWS_IAM":
		am := doctree.NewMap(authorizer)
		am.Set("type", doctree.Str("iam", authorizer))
		route.Set("authorization", am)
	default:
		if ra.def.Get("authorizers").Get(a) == nil {
			return r.Errorf(authorizer, "event %s: authorizer %q is not in the Api's Auth.Authorizers", evName, a)
		}
		am := doctree.NewMap(authorizer)
		am.Set("type", doctree.Str("function", authorizer))
		am.Set("authorizer", doctree.Str(a, authorizer))
		route.Set("authorization", am)
	}
	if k := cmpNode(auth.Get("ApiKeyRequired"), ra.apiKeyRequired); k != nil {
		route.Set("apiKeyRequired", doctree.AsBool(k))
		if k.Scalar() == "true" && r.keysAt == nil {
			r.keysAt = k
		}
	}
	for _, k := range []string{"ResourcePolicy", "InvokeRole"} {
		if v := auth.Get(k); v != nil {
			r.Notice(v, "function %s: event %s: Auth.%s is not served locally: ignored", fnID, evName, k)
		}
	}

	rr := &restRoute{method: m, path: pth, def: route, at: path}
	if req, err := r.restRequest(rr, evName, p); err != nil {
		return err
	} else if req != nil {
		route.Set("request", req)
	}
	routes := ra.def.Get("routes")
	if old := routes.Get(key); ra.fromBody[key] {
		// SAM adds the event to the document's method: the event's settings over the document's.
		delete(ra.fromBody, key)
		for k, v := range route.All() {
			old.Set(k, v)
		}
		route = old
		rr.def = old
	} else if old != nil {
		return r.Errorf(path, "event %s: the route %s is defined twice in API %s", evName, key, ra.name)
	}
	routes.Set(key, route)
	ra.routes = append(ra.routes, rr)
	return nil
}

// restRequest is a route's request validation from an Api event's RequestParameters
// (method.request.querystring.NAME, or {method.request.header.NAME: {Required, Caching}}) and
// RequestModel. As on AWS, nothing is checked unless RequestModel says ValidateBody or
// ValidateParameters: SAM attaches a request validator only then.
func (r *reader) restRequest(rr *restRoute, evName string, p *doctree.Node) (*doctree.Node, error) {
	rps, rm := p.Get("RequestParameters"), p.Get("RequestModel")
	if rps == nil && rm == nil {
		return nil, nil
	}
	req := doctree.NewMap(cmpNode(rm, rps))
	if rps != nil {
		params := doctree.NewMap(rps)
		for _, it := range rps.List() {
			name, settings := it, (*doctree.Node)(nil)
			if it.Kind == doctree.Map && len(it.Keys) == 1 {
				name = doctree.Str(it.Keys[0], it)
				settings = it.Vals[0]
			}
			key, ok := strings.CutPrefix(name.Scalar(), "method.request.")
			if !ok || !name.IsScalar() {
				return nil, r.Errorf(it, "event %s: a request parameter is method.request.querystring.NAME, method.request.header.NAME or method.request.path.NAME, optionally with {Required: true, Caching: true}", evName)
			}
			required := settings.Get("Required")
			if required == nil {
				required = &doctree.Node{Kind: doctree.Bool, Text: "false"}
			}
			params.Set(key, doctree.AsBool(placed(required, name)))
			if c := settings.Get("Caching"); c.Scalar() == "true" {
				rr.cacheKeys = append(rr.cacheKeys, doctree.Str(key, name))
			}
		}
		if len(params.Keys) > 0 {
			req.Set("parameters", params)
		}
	}
	validateBody, validateParams := false, false
	if rm != nil {
		model := rm.Get("Model")
		if model == nil {
			return nil, r.Errorf(rm, "event %s: RequestModel names a Model of the Api's Models", evName)
		}
		models := doctree.NewMap(rm)
		models.Set("application/json", model)
		req.Set("models", models)
		validateBody = rm.Get("ValidateBody").Scalar() == "true"
		validateParams = rm.Get("ValidateParameters").Scalar() == "true"
	}
	req.Set("validateBody", &doctree.Node{Kind: doctree.Bool, Text: strconv.FormatBool(validateBody), Line: req.Line, Column: req.Column, Path: req.Path})
	req.Set("validateParameters", &doctree.Node{Kind: doctree.Bool, Text: strconv.FormatBool(validateParams), Line: req.Line, Column: req.Column, Path: req.Path})
	return req, nil
}

// placed returns n placed at at when n has no place of its own.
func placed(n, at *doctree.Node) *doctree.Node {
	if n.Line > 0 || at == nil {
		return n
	}
	c := *n
	c.Line, c.Column, c.Path = at.Line, at.Column, at.Path
	return &c
}

// finishREST applies what needs every route of a REST API: the caching of each route (its Caching
// parameters and the MethodSettings that name it) and route throttles; then makes sure routes that
// ask for an API key have a usage plan.
func (r *reader) finishREST() {
	for _, name := range r.restOrder {
		ra := r.rest[name]
		routeThrottles := doctree.NewMap(ra.stage)
		for _, rr := range ra.routes {
			// API Gateway caches GET methods of a stage with a cache, unless its MethodSettings say
			// otherwise; the most specific setting wins.
			enabled, def := rr.method == "GET", rr.method == "GET"
			var ttl *doctree.Node
			for _, ms := range matchingSettings(ra.methodSettings, rr.method, rr.path) {
				if v := ms.Get("CachingEnabled"); v != nil {
					enabled = v.Scalar() == "true" && (rr.method == "GET" || resourcePath(ms) != "/*" || httpMethod(ms) != "*")
				}
				if v := ms.Get("CacheTtlInSeconds"); v != nil && (resourcePath(ms) != "/*" || httpMethod(ms) != "*") {
					ttl = v
				}
				if resourcePath(ms) != "/*" || httpMethod(ms) != "*" {
					if t := openapi.Throttle(ms.Get("ThrottlingRateLimit"), ms.Get("ThrottlingBurstLimit"), ms, &r.Notes); t != nil {
						routeThrottles.Set(rr.method+" "+rr.path, t)
					}
				}
			}
			// Without a cache cluster, caching settings change nothing, as on AWS.
			if !ra.cached || enabled == def && ttl == nil && len(rr.cacheKeys) == 0 {
				continue
			}
			cache := doctree.NewMap(rr.at)
			cache.Set("enabled", &doctree.Node{Kind: doctree.Bool, Text: strconv.FormatBool(enabled), Line: rr.at.Line, Column: rr.at.Column, Path: rr.at.Path})
			if ttl != nil {
				cache.Set("ttl", doctree.Str(ttl.Scalar()+"s", ttl))
			}
			if len(rr.cacheKeys) > 0 {
				cache.Set("keys", doctree.NewList(rr.at, cacheKeys(rr)...))
			}
			rr.def.Set("cache", cache)
		}
		if len(routeThrottles.Keys) > 0 {
			ra.stage.Set("routeThrottles", routeThrottles)
		}
	}
	if r.keysAt != nil && len(r.usagePlans.Keys) == 0 {
		r.usagePlans.Set(SharedUsagePlan, doctree.NewMap(r.keysAt))
		r.Notice(r.keysAt, "routes ask for an API key, and the template makes no usage plan Gatehouse reads: usage plan %s (no throttle, no quota) is made for their keys: gatehouse keys create NAME --plan %s", SharedUsagePlan, SharedUsagePlan)
	}
}

// matchingSettings are the MethodSettings that apply to the route method path, the least specific
// first.
func matchingSettings(settings []*doctree.Node, method, path string) []*doctree.Node {
	var out []*doctree.Node
	rank := func(ms *doctree.Node) int {
		n := 0
		if resourcePath(ms) != "/*" {
			n += 2
		}
		if httpMethod(ms) != "*" {
			n++
		}
		return n
	}
	for _, ms := range settings {
		rp, hm := resourcePath(ms), httpMethod(ms)
		if (rp == "/*" || rp == path) && (hm == "*" || hm == method) {
			out = append(out, ms)
		}
	}
	slices.SortStableFunc(out, func(a, b *doctree.Node) int { return rank(a) - rank(b) })
	return out
}

// cacheKeys are a route's cache keys: its path parameters, then the parameters marked Caching.
// API Gateway keys only on the parameters marked; Gatehouse keeps a route's path parameters among
// its keys too, so that /orders/1 and /orders/2 are never answered from one entry.
func cacheKeys(rr *restRoute) []*doctree.Node {
	var keys []*doctree.Node
	seen := map[string]bool{}
	for _, seg := range strings.Split(rr.path, "/") {
		if strings.HasPrefix(seg, "{") && strings.HasSuffix(seg, "}") {
			k := "path." + strings.TrimSuffix(strings.Trim(seg, "{}"), "+")
			seen[k] = true
			keys = append(keys, doctree.Str(k, rr.at))
		}
	}
	for _, k := range rr.cacheKeys {
		if !seen[k.Text] {
			seen[k.Text] = true
			keys = append(keys, k)
		}
	}
	return keys
}

// resourcePolicy is the resource policy an Api's Auth.ResourcePolicy describes, as SAM writes it:
// IpRangeWhitelist and IpRangeBlacklist become statements that deny the addresses outside, or
// inside, the ranges, beside one that allows the rest; nil when it has neither. What depends on AWS
// (accounts, VPCs, custom statements) cannot be evaluated here and is skipped with a notice.
func (r *reader) resourcePolicy(api string, rp *doctree.Node) *doctree.Node {
	for _, k := range []string{"AwsAccountWhitelist", "AwsAccountBlacklist", "CustomStatements", "IntrinsicVpcWhitelist", "IntrinsicVpcBlacklist",
		"IntrinsicVpceWhitelist", "IntrinsicVpceBlacklist", "SourceVpcWhitelist", "SourceVpcBlacklist"} {
		if v := rp.Get(k); v != nil {
			r.Notice(v, "Api %s: Auth.ResourcePolicy.%s is not served locally (it names AWS accounts, VPCs or statements of its own): ignored", api, k)
		}
	}
	statement := func(effect string, at *doctree.Node) *doctree.Node {
		st := doctree.NewMap(at)
		st.Set("Effect", doctree.Str(effect, at))
		st.Set("Principal", doctree.Str("*", at))
		st.Set("Action", doctree.Str("execute-api:Invoke", at))
		st.Set("Resource", doctree.Str("execute-api:/*", at))
		return st
	}
	var statements []*doctree.Node
	for _, c := range []struct{ key, operator string }{{"IpRangeWhitelist", "NotIpAddress"}, {"IpRangeBlacklist", "IpAddress"}} {
		ranges := rp.Get(c.key)
		if ranges == nil {
			continue
		}
		deny := statement("Deny", ranges)
		cond, op := doctree.NewMap(ranges), doctree.NewMap(ranges)
		op.Set("aws:SourceIp", ranges)
		cond.Set(c.operator, op)
		deny.Set("Condition", cond)
		statements = append(statements, deny)
	}
	if len(statements) == 0 {
		return nil
	}
	doc := doctree.NewMap(rp)
	doc.Set("Version", doctree.Str("2012-10-17", rp))
	doc.Set("Statement", doctree.NewList(rp, append([]*doctree.Node{statement("Allow", rp)}, statements...)...))
	return doc
}
