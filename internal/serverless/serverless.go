// Package serverless reads a Serverless Framework service (serverless.yml) into the stack file it
// describes: the provider's runtime, memory, timeout and environment; functions with their handler,
// http, httpApi, websocket and schedule events, and their asynchronous invocations' retries and
// destinations; the provider's httpApi CORS, authorizers and payload format; the REST API of the
// http events, with provider.apiGateway's binary media types, compression, request schemas, usage
// plans and API keys, provider.logs.restApi, and the serverless-api-gateway-caching plugin's
// settings; the service's variables (${self:…}, ${opt:stage}, ${env:…}, ${sls:stage}, ${file(…)}).
// Each function's code is the service's directory, as the framework packages it.
//
// As the sam package does, it builds the stack file as a doctree whose values keep their places in
// serverless.yml, for stackfile.ParseDoc to check, and lists what is not served locally (plugins,
// other events, resources) in Notices.
package serverless

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"gatehouse.dev/gatehouse/internal/doctree"
	"gatehouse.dev/gatehouse/internal/spec"
)

// MaxFileBytes bounds serverless.yml.
const MaxFileBytes = 4 << 20

// The APIs a service makes, named as the framework's CloudFormation names them.
const (
	HTTPAPIName      = "HttpApi"
	WebSocketAPIName = "WebsocketsApi"
)

// Options are what serverless.yml leaves to the command line.
type Options struct {
	// Stage and Region are --stage and --region (${opt:stage}, ${opt:region}); default the
	// provider's, then dev and us-east-1.
	Stage, Region string
	// AccountID is ${aws:accountId}; default 000000000000.
	AccountID string
	// Env looks up ${env:NAME}; default os.LookupEnv.
	Env func(string) (string, bool)
}

// Parse reads serverless.yml (or its JSON form).
func Parse(file string, data []byte) (*doctree.Node, error) {
	return doctree.Parse(file, data, "serverless.yml", MaxFileBytes, true)
}

// IsService reports whether doc looks like a Serverless Framework service.
func IsService(doc *doctree.Node) bool {
	return doc.Get("service") != nil && doc.Get("provider") != nil
}

type reader struct {
	doctree.Notes
	opts          Options
	root          *doctree.Node
	stage, region string
	apis          *doctree.Node
	authorizers   *doctree.Node // provider.httpApi.authorizers, as the stack file's
	payload       *doctree.Node // provider.httpApi.payload: the payload format of httpApi routes
	dir           string        // the service's directory, where ${file(…)} paths resolve
	files         map[string]*doctree.Node
	rest          restSettings
	usagePlans    *doctree.Node
	keysAt        *doctree.Node // the first private: true
	// functionKeys are the functions' keys in functions:, and deployed holds their names on AWS
	// (SERVICE-STAGE-KEY, or the function's name:) by key: what destinations name.
	functionKeys []string
	deployed     map[string]string
}

// Read makes the stack file a serverless.yml describes.
func Read(file string, doc *doctree.Node, o Options) (*doctree.Made, error) {
	if o.AccountID == "" {
		o.AccountID = spec.DefaultAccountID
	}
	if o.Env == nil {
		o.Env = os.LookupEnv
	}
	dir, err := filepath.Abs(filepath.Dir(file))
	if err != nil {
		return nil, err
	}
	r := &reader{Notes: doctree.Notes{File: file}, opts: o, root: doc, stage: "dev", region: spec.DefaultRegion, dir: dir,
		files: map[string]*doctree.Node{}, usagePlans: doctree.NewMap(nil)}
	if doc == nil || doc.Kind != doctree.Map {
		return nil, r.Errorf(doc, "serverless.yml is a mapping with service:, provider: and functions:")
	}
	provider := doc.Get("provider")
	if name := provider.Get("name"); name != nil && name.Scalar() != "aws" {
		return nil, r.Errorf(name, "provider %q: Gatehouse serves aws services", name.Scalar())
	}
	// The stage and region first: other values refer to them.
	if o.Stage != "" {
		r.stage = o.Stage
	} else if s := provider.Get("stage"); s != nil {
		v, err := r.resolve(s, 0)
		if err != nil {
			return nil, err
		}
		r.stage = v.Scalar()
	}
	if o.Region != "" {
		r.region = o.Region
	} else if s := provider.Get("region"); s != nil {
		v, err := r.resolve(s, 0)
		if err != nil {
			return nil, err
		}
		r.region = v.Scalar()
	}
	service, err := r.resolve(doc.Get("service"), 0)
	if err != nil {
		return nil, err
	}
	if service.Kind == doctree.Map { // the old form: service: {name: …}
		service = service.Get("name")
	}
	if plugins := doc.Get("plugins"); plugins != nil {
		var names []string
		for _, p := range plugins.List() {
			names = append(names, p.Scalar())
		}
		if l := plugins.Get("modules"); l != nil {
			for _, p := range l.List() {
				names = append(names, p.Scalar())
			}
		}
		r.Notice(plugins, "plugins are not run: %s (Gatehouse serves the service itself)", strings.Join(names, ", "))
	}
	if res := doc.Get("resources"); res != nil {
		r.Notice(res, "resources: (CloudFormation resources) are not served locally")
	}
	// The provider's settings that shape functions and APIs; the rest (iam, deployment, tags…) is
	// for AWS, and may hold CloudFormation functions that only a deployed stack evaluates.
	raw := provider
	used := doctree.NewMap(provider)
	for _, k := range []string{"runtime", "memorySize", "timeout", "environment", "httpApi", "websocketsApiRouteSelectionExpression", "region"} {
		if v := provider.Get(k); v != nil {
			used.Set(k, v)
		}
	}
	// Of apiGateway and logs, what the REST API serves; API keys' values and the resource policy
	// are only noticed.
	if gw := provider.Get("apiGateway"); gw != nil {
		sub := doctree.NewMap(gw)
		for _, k := range []string{"binaryMediaTypes", "minimumCompressionSize", "request", "usagePlan", "apiKeySourceType"} {
			if v := gw.Get(k); v != nil {
				sub.Set(k, v)
			}
		}
		used.Set("apiGateway", sub)
	}
	if l := provider.Get("logs").Get("restApi"); l != nil {
		logs := doctree.NewMap(provider.Get("logs"))
		logs.Set("restApi", l)
		used.Set("logs", logs)
	}
	if provider, err = r.resolve(used, 0); err != nil {
		return nil, err
	}
	r.apis = doctree.NewMap(doc)
	if err := r.httpAPISettings(provider); err != nil {
		return nil, err
	}
	if err := r.readRESTSettings(service.Scalar(), provider, raw); err != nil {
		return nil, err
	}

	functions := doctree.NewMap(doc.Get("functions"))
	fns := doc.Get("functions")
	r.deployed = map[string]string{}
	for name, f := range fns.All() {
		r.functionKeys = append(r.functionKeys, name)
		r.deployed[name] = service.Scalar() + "-" + r.stage + "-" + name
		if n := f.Get("name"); n != nil {
			v, err := r.resolve(n, 0)
			if err != nil {
				return nil, err
			}
			r.deployed[name] = v.Scalar()
		}
	}
	for name, f := range fns.All() {
		f, err := r.resolve(f, 0)
		if err != nil {
			return nil, err
		}
		fn, err := r.function(name, f, provider)
		if err != nil {
			return nil, err
		}
		functions.Set(name, fn)
	}
	if len(functions.Keys) == 0 {
		return nil, r.Errorf(doc, "the service has no functions")
	}

	stack := doctree.NewMap(doc)
	stack.Set("version", &doctree.Node{Kind: doctree.Number, Text: strconv.Itoa(spec.SchemaVersion)})
	stack.Set("name", doctree.Str(spec.StackNameOf(service.Scalar()), service))
	iam := doctree.NewMap(nil)
	iam.Set("region", doctree.Str(r.region, provider.Get("region")))
	iam.Set("accountId", doctree.Str(o.AccountID, nil))
	stack.Set("iam", iam)
	stack.Set("functions", functions)
	r.finishREST()
	// The APIs share one port: the HTTP API at /, the REST API at / too when there is no HTTP API
	// (its stage comes first in its paths, /dev/hello, as serverless-offline serves http events),
	// and the WebSocket API at /ws unless it is alone.
	apis := doctree.NewMap(r.apis)
	for _, name := range []string{HTTPAPIName, RESTAPIName, WebSocketAPIName} {
		api := r.apis.Get(name)
		if api == nil || len(api.Get("routes").Keys) == 0 {
			continue
		}
		mount := "/"
		switch {
		case len(apis.Keys) == 0:
		case name == RESTAPIName:
			mount = restMountShared
			r.Notice(api, "the http events' REST API shares the port with the httpApi events' HTTP API, which is at /: it is mounted at %s (%s/%s/PATH)", mount, mount, r.stage)
		default:
			mount = "/ws"
		}
		api.Set("mount", doctree.Str(mount, nil))
		apis.Set(name, api)
	}
	if len(apis.Keys) == 0 {
		return nil, r.Errorf(fns, "no function has an http, httpApi or websocket event: there is nothing to serve")
	}
	stack.Set("apis", apis)
	if len(r.usagePlans.Keys) > 0 {
		stack.Set("usagePlans", r.usagePlans)
	}
	return &doctree.Made{Stack: stack, Notices: r.Notices}, nil
}

// api returns the API named name, made on first use.
func (r *reader) api(name, typ string, at *doctree.Node) *doctree.Node {
	a := r.apis.Get(name)
	if a == nil {
		a = doctree.NewMap(at)
		a.Set("type", doctree.Str(typ, at))
		a.Set("routes", doctree.NewMap(at))
		r.apis.Set(name, a)
	}
	return a
}

// httpAPISettings reads provider.httpApi: CORS, authorizers and the payload format.
func (r *reader) httpAPISettings(provider *doctree.Node) error {
	h := provider.Get("httpApi")
	if h == nil {
		return nil
	}
	api := r.api(HTTPAPIName, "http", h)
	r.payload = h.Get("payload")
	if c := h.Get("cors"); c != nil {
		cors := doctree.NewMap(c)
		switch {
		case c.Kind == doctree.Bool && c.Text == "true":
			// The framework's cors: true.
			cors.Set("allowOrigins", doctree.NewList(c, doctree.Str("*", c)))
			cors.Set("allowHeaders", doctree.NewList(c, doctree.Str("Content-Type", c), doctree.Str("X-Amz-Date", c), doctree.Str("Authorization", c),
				doctree.Str("X-Api-Key", c), doctree.Str("X-Amz-Security-Token", c), doctree.Str("X-Amz-User-Agent", c), doctree.Str("X-Amzn-Trace-Id", c)))
			cors.Set("allowMethods", doctree.NewList(c, doctree.Str("OPTIONS", c), doctree.Str("GET", c), doctree.Str("POST", c), doctree.Str("PUT", c),
				doctree.Str("PATCH", c), doctree.Str("DELETE", c)))
		case c.Kind == doctree.Map:
			for k, v := range c.All() {
				switch k {
				case "allowedOrigins":
					cors.Set("allowOrigins", v)
				case "allowedHeaders":
					cors.Set("allowHeaders", v)
				case "allowedMethods":
					cors.Set("allowMethods", v)
				case "exposedResponseHeaders":
					cors.Set("exposeHeaders", v)
				case "allowCredentials":
					cors.Set("allowCredentials", v)
				case "maxAge":
					cors.Set("maxAge", v)
				default:
					return r.Errorf(v, "provider.httpApi.cors.%s: unknown key", k)
				}
			}
		}
		if len(cors.Keys) > 0 {
			api.Set("cors", cors)
		}
	}
	auths := doctree.NewMap(h.Get("authorizers"))
	for name, a := range h.Get("authorizers").All() {
		def := doctree.NewMap(a)
		switch t := a.Get("type"); t.Scalar() {
		case "", "jwt":
			def.Set("type", doctree.Str("jwt", a))
			def.Set("issuer", a.Get("issuerUrl"))
			aud := a.Get("audience")
			if aud != nil && aud.Kind != doctree.List {
				aud = doctree.NewList(aud, aud)
			}
			def.Set("audiences", aud)
			if v := a.Get("identitySource"); v != nil {
				def.Set("identitySource", v)
			}
		case "request":
			def.Set("type", doctree.Str("function", t))
			fn := a.Get("functionName")
			if fn == nil {
				return r.Errorf(a, "authorizer %s: a request authorizer names its function with functionName (functionArn is not served locally)", name)
			}
			def.Set("function", fn)
			srcs := a.Get("identitySource")
			if srcs != nil && srcs.Kind != doctree.List {
				srcs = doctree.NewList(srcs, srcs)
			}
			if srcs == nil {
				srcs = doctree.NewList(a, doctree.Str("$request.header.Authorization", a))
			}
			def.Set("identitySources", srcs)
			if v := a.Get("resultTtlInSeconds"); v != nil {
				def.Set("resultTtl", doctree.Str(v.Scalar()+"s", v))
			}
			simple := a.Get("enableSimpleResponses")
			if simple == nil {
				simple = &doctree.Node{Kind: doctree.Bool, Text: "false"}
			}
			def.Set("simpleResponses", simple)
		default:
			return r.Errorf(t, "authorizer %s: type %q: want jwt or request", name, t.Scalar())
		}
		auths.Set(name, def)
	}
	if len(auths.Keys) > 0 {
		api.Set("authorizers", auths)
	}
	r.authorizers = auths
	return nil
}

// function makes one function and its events' routes.
func (r *reader) function(name string, f, provider *doctree.Node) (*doctree.Node, error) {
	fn := doctree.NewMap(f)
	if f.Get("image") != nil {
		return nil, r.Errorf(f.Get("image"), "function %s: container images are not served: Gatehouse runs zip packages", name)
	}
	handler := f.Get("handler")
	if handler == nil {
		return nil, r.Errorf(f, "function %s has no handler", name)
	}
	source := doctree.Str(".", nil)
	if a := f.Get("package").Get("artifact"); a != nil {
		source = a
	}
	fn.Set("source", source)
	runtime := first(f.Get("runtime"), provider.Get("runtime"))
	if runtime == nil {
		return nil, r.Errorf(f, "function %s has no runtime, and provider has none", name)
	}
	fn.Set("runtime", runtime)
	fn.Set("handler", handler)
	mem := first(f.Get("memorySize"), provider.Get("memorySize"))
	if mem == nil {
		mem = &doctree.Node{Kind: doctree.Number, Text: "1024"} // the framework's default
	}
	fn.Set("memory", mem)
	timeout := "6s" // the framework's default
	at := f
	if t := first(f.Get("timeout"), provider.Get("timeout")); t != nil {
		sec, err := strconv.Atoi(t.Scalar())
		if err != nil {
			return nil, r.Errorf(t, "timeout %q: want a whole number of seconds", t.Scalar())
		}
		timeout, at = fmt.Sprintf("%ds", sec), t
	}
	fn.Set("timeout", doctree.Str(timeout, at))
	env := doctree.NewMap(f.Get("environment"))
	for _, src := range []*doctree.Node{provider.Get("environment"), f.Get("environment")} {
		for k, v := range src.All() {
			env.Set(k, doctree.Str(v.Scalar(), v))
		}
	}
	if len(env.Keys) > 0 {
		fn.Set("environment", env)
	}
	if v := f.Get("reservedConcurrency"); v != nil {
		fn.Set("maxConcurrency", v)
	}
	// The framework's snapStart: true is Lambda's SnapStart on the published versions, which every
	// version Gatehouse deploys is.
	if v := f.Get("snapStart"); v != nil {
		switch rt := runtime.Scalar(); {
		case !v.IsScalar() || v.Text != "true" && v.Text != "false":
			return nil, r.Errorf(v, "function %s: snapStart: want true or false", name)
		case v.Text == "false":
		case spec.IsProcessRuntime(rt):
			r.Notice(v, "function %s: snapStart applies to WebAssembly functions only here; a %s function starts as usual: ignored", name, rt)
		default:
			fn.Set("snapStart", doctree.AsBool(v))
		}
	}
	async, err := r.asyncSettings(name, f)
	if err != nil {
		return nil, err
	}
	if async != nil {
		fn.Set("async", async)
	}
	schedules := doctree.NewList(f.Get("events"))
	for i, ev := range f.Get("events").List() {
		if ev.Kind != doctree.Map || len(ev.Keys) != 1 {
			return nil, r.Errorf(ev, "function %s: events[%d]: want one event such as httpApi: GET /path", name, i)
		}
		kind, e := ev.Keys[0], ev.Vals[0]
		var err error
		switch kind {
		case "httpApi":
			err = r.httpAPIEvent(name, e)
		case "websocket":
			err = r.websocketEvent(name, e, provider)
		case "http":
			err = r.restEvent(name, e)
		case "schedule":
			var ss []*doctree.Node
			ss, err = r.scheduleEvent(name, e)
			schedules.Items = append(schedules.Items, ss...)
		default:
			r.Notice(e, "function %s: %s events are not served locally: skipped", name, kind)
		}
		if err != nil {
			return nil, err
		}
	}
	if len(schedules.Items) > 0 {
		fn.Set("schedules", schedules)
	}
	return fn, nil
}

func first(nodes ...*doctree.Node) *doctree.Node {
	for _, n := range nodes {
		if n != nil {
			return n
		}
	}
	return nil
}

// httpAPIEvent adds an httpApi event's route: "METHOD /path", "*" (the $default route), or
// {method, path, authorizer}.
func (r *reader) httpAPIEvent(fn string, e *doctree.Node) error {
	api := r.api(HTTPAPIName, "http", e)
	var method, path string
	var authorizer *doctree.Node
	switch e.Kind {
	case doctree.String:
		if e.Text == "*" {
			method, path = "*", ""
		} else {
			var ok bool
			method, path, ok = strings.Cut(e.Text, " ")
			if !ok {
				return r.Errorf(e, "httpApi %q: want \"METHOD /path\" or \"*\"", e.Text)
			}
		}
	case doctree.Map:
		method, path = e.Get("method").Scalar(), e.Get("path").Scalar()
		if method == "" {
			method = "*"
		}
		authorizer = e.Get("authorizer")
	default:
		return r.Errorf(e, "httpApi: want \"METHOD /path\" or {method, path}")
	}
	key := strings.ToUpper(method) + " " + path
	switch {
	case method == "*" && (path == "" || path == "*"):
		key = "$default"
	case method == "*":
		key = "ANY " + path
	}
	integration := doctree.NewMap(e)
	integration.Set("type", doctree.Str("function", e))
	integration.Set("target", doctree.Str(fn, e))
	if r.payload != nil {
		// The framework's default, and the stack file's, is 2.0.
		integration.Set("payloadFormatVersion", doctree.Str(r.payload.Scalar(), r.payload))
	}
	route := doctree.NewMap(e)
	route.Set("integration", integration)
	if authorizer != nil {
		name := authorizer
		if authorizer.Kind == doctree.Map {
			name = authorizer.Get("name")
			if name == nil {
				return r.Errorf(authorizer, "authorizer: name one of provider.httpApi.authorizers (id and type: aws_iam are not served here)")
			}
		}
		def := r.authorizers.Get(name.Scalar())
		if def == nil {
			return r.Errorf(name, "authorizer %q is not in provider.httpApi.authorizers", name.Scalar())
		}
		auth := doctree.NewMap(authorizer)
		auth.Set("type", def.Get("type"))
		auth.Set("authorizer", name)
		if s := authorizer.Get("scopes"); s != nil {
			auth.Set("scopes", s)
		}
		route.Set("authorization", auth)
	}
	routes := api.Get("routes")
	if routes.Get(key) != nil {
		return r.Errorf(e, "the route %s is defined by two events", key)
	}
	routes.Set(key, route)
	return nil
}

// websocketEvent adds a websocket event's route: "$connect", or {route, routeResponseSelectionExpression}.
func (r *reader) websocketEvent(fn string, e, provider *doctree.Node) error {
	api := r.apis.Get(WebSocketAPIName)
	if api == nil {
		api = r.api(WebSocketAPIName, "websocket", e)
		if v := provider.Get("websocketsApiRouteSelectionExpression"); v != nil {
			api.Set("routeSelectionExpression", v)
		}
	}
	key := e
	if e.Kind == doctree.Map {
		key = e.Get("route")
	}
	if key == nil || key.Scalar() == "" {
		return r.Errorf(e, "websocket: want a route, such as $connect or sendMessage")
	}
	integration := doctree.NewMap(e)
	integration.Set("type", doctree.Str("function", e))
	integration.Set("target", doctree.Str(fn, e))
	route := doctree.NewMap(e)
	route.Set("integration", integration)
	if v := e.Get("routeResponseSelectionExpression"); v != nil {
		if v.Scalar() != "$default" {
			return r.Errorf(v, "routeResponseSelectionExpression %q: Gatehouse has the $default route response only", v.Scalar())
		}
		route.Set("routeResponse", &doctree.Node{Kind: doctree.Bool, Text: "true", Line: v.Line, Column: v.Column, Path: v.Path})
	}
	if a := e.Get("authorizer"); a != nil {
		r.Notice(a, "function %s: websocket authorizers are not read from serverless.yml yet: the $connect route is open", fn)
	}
	routes := api.Get("routes")
	if routes.Get(key.Scalar()) != nil {
		return r.Errorf(key, "the websocket route %s is defined by two events", key.Scalar())
	}
	routes.Set(key.Scalar(), route)
	return nil
}
