package serverless

import (
	"math"
	"slices"
	"strconv"
	"strings"

	"gatehouse.dev/gatehouse/internal/doctree"
	"gatehouse.dev/gatehouse/internal/openapi"
	"gatehouse.dev/gatehouse/internal/spec"
)

// REST APIs: the functions' http events, with provider.apiGateway, provider.logs.restApi and the
// serverless-api-gateway-caching plugin's settings, read into one `type: rest` API.

// RESTAPIName names the REST API of the service's http events: the framework's CloudFormation
// name for it, as the other APIs are named. (Its name on AWS, STAGE-SERVICE, changes with the
// stage and may hold characters an API name cannot.)
const RESTAPIName = "ApiGatewayRestApi"

// restMountShared is where the REST API is mounted when the service also has httpApi events,
// whose HTTP API takes /.
const restMountShared = "/rest"

// Account-wide limits of API Gateway, which stand in for a throttle's missing rate or burst.
const ()

// defaultCORSHeaders are the headers the framework allows with cors: true.
var defaultCORSHeaders = []string{"Content-Type", "X-Amz-Date", "Authorization", "X-Api-Key", "X-Amz-Security-Token", "X-Amz-User-Agent", "X-Amzn-Trace-Id"}

// restSettings are the service-wide settings of its REST API, read before the http events.
type restSettings struct {
	api *doctree.Node // the API, made by the first http event
	// provider.apiGateway's binaryMediaTypes and minimumCompressionSize, and its resourcePolicy as
	// a policy document.
	binary, compression, resourcePolicy *doctree.Node
	// models are the API's models; schemas names the model of each of
	// provider.apiGateway.request.schemas' keys.
	models  *doctree.Node
	schemas map[string]string
	stage   *doctree.Node
	cached  bool
	// plan is the usage plan keys and private endpoints belong to when usagePlan is not a list.
	plan   string
	routes []*restRoute
}

// restRoute is an http event's route, with its caching settings (the caching plugin's).
type restRoute struct {
	method, path string
	def, at      *doctree.Node
	caching      *doctree.Node
}

// readRESTSettings reads provider.apiGateway (binary media types, compression, request schemas,
// usage plans and API keys), provider.logs.restApi and custom.apiGatewayCaching. provider is the
// resolved provider; raw the provider as written, for values that are only noticed.
func (r *reader) readRESTSettings(service string, provider, raw *doctree.Node) error {
	rs := &r.rest
	rs.schemas = map[string]string{}
	rs.plan = planName(service + "-" + r.stage)
	gw := provider.Get("apiGateway")
	rs.binary, rs.compression = gw.Get("binaryMediaTypes"), gw.Get("minimumCompressionSize")
	for name, s := range gw.Get("request").Get("schemas").All() {
		schema, model := s, s.Get("name")
		if s.Get("schema") != nil {
			schema = s.Get("schema")
		}
		modelName := alnum(name)
		if model != nil {
			modelName = model.Scalar()
		}
		rs.schemas[name] = modelName
		r.addModel(modelName, schema, cmpNode(model, s))
	}
	rawGW := raw.Get("apiGateway")
	for _, k := range []string{"restApiId", "restApiRootResourceId", "restApiResources"} {
		if v := rawGW.Get(k); v != nil {
			r.Notice(v, "provider.apiGateway.%s shares an API Gateway REST API of another service, which is not served here: the http events make a REST API of their own", k)
			break
		}
	}
	if v := rawGW.Get("resourcePolicy"); v != nil {
		// The framework takes the policy's statements; the API's policy document holds them.
		doc := doctree.NewMap(v)
		doc.Set("Version", doctree.Str("2012-10-17", v))
		doc.Set("Statement", v)
		rs.resourcePolicy = doc
	}
	if v := gw.Get("apiKeySourceType"); v != nil && !strings.EqualFold(v.Scalar(), "HEADER") {
		r.Notice(v, "provider.apiGateway.apiKeySourceType %s is not served: API keys are read from the x-api-key header", v.Scalar())
	}
	if err := r.usagePlanSettings(gw.Get("usagePlan"), rawGW.Get("apiKeys")); err != nil {
		return err
	}

	rs.stage = doctree.NewMap(provider)
	if err := r.restAccessLog(service, provider.Get("logs").Get("restApi")); err != nil {
		return err
	}
	caching, err := r.resolve(r.root.Get("custom").Get("apiGatewayCaching"), 0)
	if err != nil {
		return err
	}
	if caching.Get("enabled").Scalar() == "true" {
		cache := doctree.NewMap(caching)
		size, sizeAt := 0.5, caching // the plugin's default cluster, in GB
		if s := caching.Get("clusterSize"); s != nil {
			gb, err := strconv.ParseFloat(s.Scalar(), 64)
			if err != nil || gb <= 0 {
				return r.Errorf(s, "clusterSize %q: want a size in GB, such as '0.5'", s.Scalar())
			}
			size, sizeAt = gb, s
		}
		// API Gateway's cluster is size GB of a machine of its own; here the cache is in the
		// gateway's memory, bounded to MinCacheSizeMB..MaxCacheSizeMB.
		mb := size * 1024
		if clamped := math.Min(math.Max(mb, spec.MinCacheSizeMB), spec.MaxCacheSizeMB); clamped != mb {
			r.Notice(sizeAt, "a cache of %v GB is kept in the gateway's memory here, at most %v MB: the stage cache holds %v MB", size, spec.MaxCacheSizeMB, clamped)
			mb = clamped
		}
		cache.Set("sizeMB", &doctree.Node{Kind: doctree.Number, Text: strconv.FormatFloat(mb, 'f', -1, 64), Line: sizeAt.Line, Column: sizeAt.Column, Path: sizeAt.Path})
		ttl, ttlAt := "3600", caching // the plugin's default
		if v := caching.Get("ttlInSeconds"); v != nil {
			ttl, ttlAt = v.Scalar(), v
		}
		cache.Set("ttl", doctree.Str(ttl+"s", ttlAt))
		if v := caching.Get("perKeyInvalidation").Get("requireAuthorization"); v != nil {
			cache.Set("requireAuthorization", v)
		}
		rs.stage.Set("cache", cache)
		rs.cached = true
	}
	return nil
}

// restAccessLog reads provider.logs.restApi (true, or {accessLogging, format}) into the stage's
// access log, written to the log group the framework makes, /aws/api-gateway/SERVICE-STAGE. A format
// that names variables Gatehouse's access logs do not have (the framework's default does) is
// replaced by the json preset.
func (r *reader) restAccessLog(service string, l *doctree.Node) error {
	if l == nil || l.Kind == doctree.Bool && l.Text != "true" || l.Get("accessLogging").Scalar() == "false" {
		return nil
	}
	log := doctree.NewMap(l)
	format := doctree.Str(spec.AccessLogJSON, l)
	if f := l.Get("format"); f != nil {
		_, vars := spec.AccessLogTokens(f.Scalar())
		known, hasID := spec.AccessLogVariables(), false
		var unknown []string
		for _, v := range vars {
			hasID = hasID || v == "requestId" || v == "extendedRequestId"
			if !slices.Contains(known, v) && !strings.HasPrefix(v, "authorizer.") {
				unknown = append(unknown, "$context."+v)
			}
		}
		switch {
		case len(unknown) > 0:
			r.Notice(f, "the access log format names %s, which Gatehouse's access logs do not have: the json format is written instead", strings.Join(unknown, ", "))
		case !hasID:
			r.Notice(f, "the access log format does not name $context.requestId, as API Gateway asks: the json format is written instead")
		default:
			format = f
		}
	}
	log.Set("format", format)
	log.Set("destination", doctree.Str(spec.AccessLogGroupPrefix+"/aws/api-gateway/"+service+"-"+r.stage, l))
	r.rest.stage.Set("accessLog", log)
	return nil
}

// usagePlanSettings reads provider.apiGateway.usagePlan (one plan, or a list of named plans) and
// apiKeys, whose names it lists in a notice: keys are made with gatehouse keys create.
func (r *reader) usagePlanSettings(plans, keys *doctree.Node) error {
	switch {
	case plans == nil:
	case plans.Kind == doctree.List:
		for _, it := range plans.Items {
			for name, p := range it.All() {
				r.usagePlans.Set(name, r.usagePlan(p))
			}
		}
	default:
		r.usagePlans.Set(r.rest.plan, r.usagePlan(plans))
	}
	if keys == nil {
		return nil
	}
	var cmds []string
	valued := false
	add := func(plan string, k *doctree.Node) error {
		name := k
		if k.Kind == doctree.Map {
			name = k.Get("name")
			valued = valued || k.Get("value") != nil
		}
		if name == nil {
			cmds = append(cmds, "gatehouse keys create NAME --plan "+plan)
			return nil
		}
		v, err := r.resolve(name, 0)
		if err != nil {
			return err
		}
		cmds = append(cmds, "gatehouse keys create "+v.Scalar()+" --plan "+plan)
		return nil
	}
	for _, k := range keys.List() {
		// {PLAN: [KEYS]} when usagePlan lists plans.
		if k.Kind == doctree.Map && len(k.Keys) == 1 && k.Vals[0].Kind == doctree.List {
			for _, kk := range k.Vals[0].Items {
				if err := add(k.Keys[0], kk); err != nil {
					return err
				}
			}
			continue
		}
		if err := add(r.rest.plan, k); err != nil {
			return err
		}
	}
	if plans == nil {
		// The framework makes a plan without limits for the keys.
		r.usagePlans.Set(r.rest.plan, doctree.NewMap(keys))
	}
	note := ""
	if valued {
		note = " (Gatehouse makes each key's value; the values written here are not used)"
	}
	r.Notice(keys, "API keys are not made from serverless.yml%s: make them with %s", note, strings.Join(cmds, "; "))
	return nil
}

// usagePlan is a stack file's usage plan from {throttle: {rateLimit, burstLimit}, quota: {limit,
// period}}.
func (r *reader) usagePlan(p *doctree.Node) *doctree.Node {
	def := doctree.NewMap(p)
	t := p.Get("throttle")
	if throttle := openapi.Throttle(t.Get("rateLimit"), t.Get("burstLimit"), t, &r.Notes); throttle != nil {
		def.Set("throttle", throttle)
	}
	if q := p.Get("quota"); q != nil {
		def.Set("quota", openapi.Quota(q.Get("limit"), q.Get("period"), q.Get("offset"), q, &r.Notes))
	}
	return def
}

// restAPI returns the service's REST API, made by its first http event (at).
//
// Its one stage is the service's stage, as serverless-offline serves http events:
// http://localhost:3000/dev/hello. A request without the stage is answered as API Gateway answers
// it, 403 Missing Authentication Token.
func (r *reader) restAPI(at *doctree.Node) *doctree.Node {
	rs := &r.rest
	if rs.api != nil {
		return rs.api
	}
	api := r.api(RESTAPIName, "rest", at)
	stages := doctree.NewMap(at)
	stages.Set(r.stage, rs.stage)
	api.Set("stages", stages)
	if rs.binary != nil {
		api.Set("binaryMediaTypes", rs.binary)
	}
	if rs.compression != nil {
		api.Set("minimumCompressionSize", doctree.AsNumber(rs.compression))
	}
	if rs.resourcePolicy != nil {
		api.Set("resourcePolicy", rs.resourcePolicy)
	}
	if rs.models != nil {
		api.Set("models", rs.models)
	}
	rs.api = api
	return api
}

// addModel adds a model to the REST API's models.
func (r *reader) addModel(name string, schema, at *doctree.Node) {
	if r.rest.models == nil {
		r.rest.models = doctree.NewMap(at)
		if r.rest.api != nil {
			r.rest.api.Set("models", r.rest.models)
		}
	}
	m := doctree.NewMap(at)
	m.Set("schema", schema)
	r.rest.models.Set(name, m)
}

// restEvent adds an http event's route: "METHOD path", or {method, path, cors, private,
// authorizer, request, caching}.
func (r *reader) restEvent(fn string, e *doctree.Node) error {
	var method, path *doctree.Node
	switch e.Kind {
	case doctree.String:
		parts := strings.Fields(e.Text)
		if len(parts) != 2 {
			return r.Errorf(e, "http %q: want \"METHOD path\", such as \"GET hello\"", e.Text)
		}
		method, path = doctree.Str(parts[0], e), doctree.Str(parts[1], e)
	case doctree.Map:
		method, path = e.Get("method"), e.Get("path")
		if method == nil || path == nil {
			return r.Errorf(e, "http: an http event has a method and a path")
		}
	default:
		return r.Errorf(e, "http: want \"METHOD path\" or {method, path}")
	}
	switch t := e.Get("integration"); strings.ToLower(t.Scalar()) {
	case "", "lambda-proxy", "aws-proxy", "aws_proxy":
	default:
		r.Notice(t, "function %s: an http event with integration: %s is not served yet (Gatehouse serves lambda-proxy, the default): skipped", fn, t.Scalar())
		return nil
	}
	if v := e.Get("async"); v.Scalar() == "true" {
		r.Notice(v, "function %s: async http events are served as synchronous ones here: the client gets the function's answer", fn)
	}
	m := strings.ToUpper(method.Scalar())
	if m == "*" {
		m = "ANY"
	}
	p := "/" + strings.Trim(path.Scalar(), "/")
	key := m + " " + p
	api := r.restAPI(e)

	integration := doctree.NewMap(e)
	integration.Set("type", doctree.Str("function", e))
	integration.Set("target", doctree.Str(fn, e))
	route := doctree.NewMap(e)
	route.Set("integration", integration)
	if a := e.Get("authorizer"); a != nil {
		auth, err := r.restAuthorization(fn, a)
		if err != nil {
			return err
		}
		if auth != nil {
			route.Set("authorization", auth)
		}
	}
	if v := e.Get("private"); v != nil {
		route.Set("apiKeyRequired", doctree.AsBool(v))
		if v.Scalar() == "true" && r.keysAt == nil {
			r.keysAt = v
		}
	}
	if c := e.Get("cors"); c != nil {
		if err := r.restCors(c, m); err != nil {
			return err
		}
	}
	if req := e.Get("request"); req != nil {
		v, err := r.restRequest(fn, m, req)
		if err != nil {
			return err
		}
		if v != nil {
			route.Set("request", v)
		}
	}
	routes := api.Get("routes")
	if routes.Get(key) != nil {
		return r.Errorf(e, "the route %s is defined by two http events", key)
	}
	routes.Set(key, route)
	r.rest.routes = append(r.rest.routes, &restRoute{method: m, path: p, def: route, at: e, caching: e.Get("caching")})
	return nil
}

// restAuthorization is a route's authorization from an http event's authorizer: a function of the
// service (a token authorizer, the framework's default), aws_iam, an ARN, or {name, arn, type:
// token|request|cognito_user_pools|aws_iam, identitySource, resultTtlInSeconds (default 300),
// identityValidationExpression}. It adds the authorizer to the API on first use; nil for a Cognito
// user pool, which is not served.
func (r *reader) restAuthorization(fn string, a *doctree.Node) (*doctree.Node, error) {
	var name, arn, typ *doctree.Node
	switch a.Kind {
	case doctree.String:
		if strings.HasPrefix(a.Text, "arn:") {
			arn = a
		} else if strings.EqualFold(a.Text, "aws_iam") {
			typ = a
		} else {
			name = a
		}
	case doctree.Map:
		name, arn, typ = a.Get("name"), a.Get("arn"), a.Get("type")
	default:
		return nil, r.Errorf(a, "authorizer: want a function's name, aws_iam, or {name, type, identitySource…}")
	}
	kind := strings.ToLower(typ.Scalar())
	switch {
	case kind == "aws_iam":
		auth := doctree.NewMap(a)
		auth.Set("type", doctree.Str("iam", a))
		return auth, nil
	case kind == "cognito_user_pools" || strings.Contains(arn.Scalar(), ":cognito-idp:"):
		r.Notice(a, "function %s: Cognito user pool authorizers are not served locally: the route is served without authorization, as serverless-offline serves it", fn)
		return nil, nil
	case kind == "":
		kind = spec.AuthorizerToken // the framework's default
	case kind != spec.AuthorizerToken && kind != spec.AuthorizerRequest:
		return nil, r.Errorf(typ, "authorizer type %q: want token, request, cognito_user_pools or aws_iam", typ.Scalar())
	}
	target := name.Scalar()
	if arn != nil {
		t, ok := openapi.FunctionOfURI(arn.Scalar())
		if !ok {
			return nil, r.Errorf(arn, "authorizer %q is not a Lambda function's ARN", arn.Scalar())
		}
		target = t
	}
	authName := cmpNode(name, arn)
	if authName == nil {
		return nil, r.Errorf(a, "authorizer: name a function of the service (name:), or give its arn:")
	}
	key := authName.Scalar()
	if arn != nil && name == nil {
		key = target
	}
	auths := r.rest.api.Get("authorizers")
	if auths == nil {
		auths = doctree.NewMap(a)
		r.rest.api.Set("authorizers", auths)
	}
	// The framework makes one authorizer of each name; the first event that names it says how.
	if auths.Get(key) == nil {
		def := doctree.NewMap(a)
		def.Set("type", doctree.Str(kind, cmpNode(typ, a)))
		def.Set("function", doctree.Str(target, cmpNode(arn, authName)))
		src := a.Get("identitySource")
		text := src.Scalar()
		if text == "" {
			text, src = "method.request.header.Authorization", a
		}
		sources := doctree.NewList(src)
		for _, s := range strings.Split(text, ",") {
			v, ok := identitySource(s)
			if !ok {
				return nil, r.Errorf(src, "identitySource %q: want method.request.header.NAME, method.request.querystring.NAME, stageVariables.NAME or context.NAME, separated by commas", strings.TrimSpace(s))
			}
			sources.Items = append(sources.Items, doctree.Str(v, src))
		}
		def.Set("identitySources", sources)
		ttl, ttlAt := "300", a // the framework's default
		if v := a.Get("resultTtlInSeconds"); v != nil {
			ttl, ttlAt = v.Scalar(), v
		}
		def.Set("resultTtl", doctree.Str(ttl+"s", ttlAt))
		if v := a.Get("identityValidationExpression"); v != nil {
			if kind == spec.AuthorizerToken {
				def.Set("identityValidationExpression", v)
			} else {
				r.Notice(v, "function %s: identityValidationExpression is for token authorizers; a request authorizer ignores it, as API Gateway does", fn)
			}
		}
		auths.Set(key, def)
	}
	auth := doctree.NewMap(a)
	auth.Set("type", doctree.Str("function", a))
	auth.Set("authorizer", doctree.Str(key, authName))
	return auth, nil
}

// identitySource is API Gateway's REST identity source s (method.request.header.NAME…) as the stack
// file writes it ($request.header.NAME…).
func identitySource(s string) (string, bool) {
	s = strings.TrimSpace(s)
	for _, m := range []struct{ from, to string }{{"method.request.header.", spec.IdentitySourceHeader}, {"method.request.querystring.", spec.IdentitySourceQuery},
		{"stageVariables.", spec.IdentitySourceStageVariable}, {"context.", spec.IdentitySourceContext}} {
		if rest, ok := strings.CutPrefix(s, m.from); ok && rest != "" {
			return m.to + rest, true
		}
	}
	if strings.HasPrefix(s, "$") {
		return s, true // written as the stack file writes it
	}
	return "", false
}

// restCors adds an http event's cors (true, or {origin, origins, headers, allowCredentials,
// maxAge}) to the API's. API Gateway answers CORS per resource; the gateway answers it for the
// whole API, allowing what the events allow together.
func (r *reader) restCors(c *doctree.Node, method string) error {
	if c.Kind == doctree.Bool && c.Text != "true" {
		return nil
	}
	api := r.rest.api
	cors := api.Get("cors")
	if cors == nil {
		cors = doctree.NewMap(c)
		api.Set("cors", cors)
	}
	add := func(key string, values ...*doctree.Node) {
		l := cors.Get(key)
		if l == nil {
			l = doctree.NewList(c)
			cors.Set(key, l)
		}
		for _, v := range values {
			if !slices.ContainsFunc(l.Items, func(n *doctree.Node) bool { return n.Text == v.Text }) {
				l.Items = append(l.Items, v)
			}
		}
	}
	m := method
	if m == "ANY" {
		m = "*"
	}
	add("allowMethods", doctree.Str("OPTIONS", c), doctree.Str(m, c))
	if c.Kind != doctree.Map {
		add("allowOrigins", doctree.Str("*", c))
		var hs []*doctree.Node
		for _, h := range defaultCORSHeaders {
			hs = append(hs, doctree.Str(h, c))
		}
		add("allowHeaders", hs...)
		return nil
	}
	origins := []*doctree.Node{}
	if o := c.Get("origin"); o != nil {
		origins = append(origins, o)
	}
	origins = append(origins, c.Get("origins").List()...)
	if len(origins) == 0 {
		origins = append(origins, doctree.Str("*", c))
	}
	for _, o := range origins {
		add("allowOrigins", doctree.Str(strings.ToLower(o.Scalar()), o))
	}
	if h := c.Get("headers"); h != nil {
		add("allowHeaders", h.List()...)
	} else {
		var hs []*doctree.Node
		for _, h := range defaultCORSHeaders {
			hs = append(hs, doctree.Str(h, c))
		}
		add("allowHeaders", hs...)
	}
	for k, v := range c.All() {
		switch k {
		case "origin", "origins", "headers", "cacheControl":
		case "allowCredentials":
			cors.Set("allowCredentials", doctree.AsBool(v))
		case "maxAge":
			cors.Set("maxAge", doctree.AsNumber(v))
		default:
			return r.Errorf(v, "cors.%s: unknown key; want origin, origins, headers, allowCredentials, maxAge or cacheControl", k)
		}
	}
	return nil
}

// restRequest is a route's request validation from an http event's request: parameters
// ({querystrings, headers, paths: {NAME: true|{required}}}) and schemas ({CONTENT_TYPE: a schema,
// {schema, name}, or a key of provider.apiGateway.request.schemas}). As on AWS, the framework
// attaches a request validator, which checks the body and the required parameters, only to
// events with schemas.
func (r *reader) restRequest(fn, method string, req *doctree.Node) (*doctree.Node, error) {
	out := doctree.NewMap(req)
	params := doctree.NewMap(req.Get("parameters"))
	for _, g := range []struct{ key, prefix string }{{"querystrings", "querystring."}, {"headers", "header."}, {"paths", "path."}} {
		for name, v := range req.Get("parameters").Get(g.key).All() {
			required := v
			if v.Kind == doctree.Map {
				required = v.Get("required")
				if required == nil {
					required = &doctree.Node{Kind: doctree.Bool, Text: "false", Line: v.Line, Column: v.Column, Path: v.Path}
				}
			}
			params.Set(g.prefix+name, doctree.AsBool(required))
		}
	}
	if len(params.Keys) > 0 {
		out.Set("parameters", params)
	}
	schemas := req.Get("schemas")
	models := doctree.NewMap(schemas)
	for ct, s := range schemas.All() {
		var name string
		switch {
		case s.Kind == doctree.String:
			var ok bool
			if name, ok = r.rest.schemas[s.Text]; !ok {
				return nil, r.Errorf(s, "no schema %q in provider.apiGateway.request.schemas", s.Text)
			}
		case s.Kind == doctree.Map && s.Get("schema") != nil:
			name = s.Get("name").Scalar()
			if name == "" {
				name = r.modelName(fn, method, ct)
			}
			r.addModel(name, s.Get("schema"), s)
		case s.Kind == doctree.Map:
			name = r.modelName(fn, method, ct)
			r.addModel(name, s, s)
		default:
			return nil, r.Errorf(s, "request.schemas.%s: want a JSON schema, {schema, name}, or the name of one of provider.apiGateway.request.schemas", ct)
		}
		models.Set(ct, doctree.Str(name, s))
	}
	validate := len(models.Keys) > 0
	if validate {
		out.Set("models", models)
	}
	if len(out.Keys) == 0 {
		return nil, nil
	}
	out.Set("validateBody", &doctree.Node{Kind: doctree.Bool, Text: strconv.FormatBool(validate), Line: req.Line, Column: req.Column, Path: req.Path})
	out.Set("validateParameters", &doctree.Node{Kind: doctree.Bool, Text: strconv.FormatBool(validate), Line: req.Line, Column: req.Column, Path: req.Path})
	return out, nil
}

// modelName names the model of an event's own schema: function, method and content type, such as
// CreateOrderPostJson, numbered when taken.
func (r *reader) modelName(fn, method, ct string) string {
	_, sub, _ := strings.Cut(ct, "/")
	base := alnum(title(fn) + title(strings.ToLower(method)) + title(sub))
	name := base
	for i := 2; r.rest.models.Get(name) != nil; i++ {
		name = base + strconv.Itoa(i)
	}
	return name
}

// finishREST applies the caching plugin's per-endpoint settings to the routes, and makes sure
// private routes have a usage plan.
func (r *reader) finishREST() {
	rs := &r.rest
	for _, rr := range rs.routes {
		if !rs.cached {
			break
		}
		// With the plugin, an endpoint caches only when its caching says so.
		c := rr.caching
		enabled, def := c.Get("enabled").Scalar() == "true", rr.method == "GET"
		ttl := c.Get("ttlInSeconds")
		var keys []*doctree.Node
		seen := map[string]bool{}
		// API Gateway keys only on the parameters listed; Gatehouse keeps a route's path
		// parameters among its keys too, so that /cats/1 and /cats/2 are never one entry.
		for _, seg := range strings.Split(rr.path, "/") {
			if strings.HasPrefix(seg, "{") && strings.HasSuffix(seg, "}") {
				k := "path." + strings.TrimSuffix(strings.Trim(seg, "{}"), "+")
				seen[k] = true
				keys = append(keys, doctree.Str(k, rr.at))
			}
		}
		listed := false
		for _, p := range c.Get("cacheKeyParameters").List() {
			name := p.Get("name")
			k, ok := strings.CutPrefix(name.Scalar(), "request.")
			if !ok {
				r.Notice(cmpNode(name, p), "cache key %s is not served (Gatehouse keys on request.path, request.querystring and request.header parameters): ignored", name.Scalar())
				continue
			}
			listed = true
			if !seen[k] {
				seen[k] = true
				keys = append(keys, doctree.Str(k, name))
			}
		}
		if enabled == def && ttl == nil && !listed {
			continue
		}
		cache := doctree.NewMap(cmpNode(c, rr.at))
		cache.Set("enabled", &doctree.Node{Kind: doctree.Bool, Text: strconv.FormatBool(enabled), Line: cache.Line, Column: cache.Column, Path: cache.Path})
		if ttl != nil {
			cache.Set("ttl", doctree.Str(ttl.Scalar()+"s", ttl))
		}
		if listed {
			cache.Set("keys", doctree.NewList(c, keys...))
		}
		rr.def.Set("cache", cache)
	}
	if r.keysAt != nil && len(r.usagePlans.Keys) == 0 {
		r.usagePlans.Set(rs.plan, doctree.NewMap(r.keysAt))
		r.Notice(r.keysAt, "private endpoints ask for an API key, and provider.apiGateway has no usagePlan or apiKeys: usage plan %s (no throttle, no quota) is made for their keys: gatehouse keys create NAME --plan %s", rs.plan, rs.plan)
	}
}

// planName makes s a usage plan name: letters, digits, - and _, at most MaxUsagePlanNameLength.
func planName(s string) string {
	b := []byte(s)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			b[i] = '-'
		}
	}
	return string(b[:min(len(b), spec.MaxUsagePlanNameLength)])
}

// alnum keeps the letters and digits of s, as model names want them.
func alnum(s string) string {
	return strings.Map(func(c rune) rune {
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' {
			return c
		}
		return -1
	}, s)
}

// title upper-cases s's first letter.
func title(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// cmpNode returns a unless it is nil, else b.
func cmpNode(a, b *doctree.Node) *doctree.Node {
	if a != nil {
		return a
	}
	return b
}
