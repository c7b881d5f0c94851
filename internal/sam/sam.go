// Package sam reads AWS SAM and CloudFormation templates into the stack file they describe:
// functions (AWS::Serverless::Function with its HttpApi and Api events, its Schedule and ScheduleV2
// events and its EventInvokeConfig; AWS::Lambda::Function; AWS::Lambda::EventInvokeConfig),
// HTTP APIs (AWS::Serverless::HttpApi, with stages, CORS, JWT and Lambda authorizers and an
// OpenAPI DefinitionBody), REST APIs (AWS::Serverless::Api and the implicit ServerlessRestApi,
// with token and request authorizers, models, gateway responses, binary media types, a stage
// cache, usage plans and an OpenAPI or Swagger DefinitionBody), and HTTP and WebSocket APIs made of AWS::ApiGatewayV2 resources, with
// the template's Parameters, Conditions, Mappings and Globals and the intrinsic functions that
// matter locally.
//
// The stack file is built as a doctree whose values keep their places in the template, for
// stackfile.ParseDoc to check: a problem is reported at the template's line and column. What a
// local stack does not serve (IAM roles, permissions, log groups, events other than HTTP and
// schedule ones) is listed once, by type, in Notices.
package sam

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"gatehouse.dev/gatehouse/internal/doctree"
	"gatehouse.dev/gatehouse/internal/openapi"
	"gatehouse.dev/gatehouse/internal/spec"
	"gatehouse.dev/gatehouse/internal/yamldecode"
)

// MaxTemplateBytes bounds a template.
const MaxTemplateBytes = 4 << 20

// ImplicitHTTPAPI is the name of the HTTP API that HttpApi events without an ApiId make, as SAM
// names it.
const ImplicitHTTPAPI = "ServerlessHttpApi"

// Options are what a template leaves to the command that reads it.
type Options struct {
	// Parameters override the template's parameter defaults (sam's --parameter-overrides).
	Parameters map[string]string
	// Region and AccountID are AWS::Region and AWS::AccountId (and make ARNs); default us-east-1
	// and 000000000000.
	Region, AccountID string
	// StackName names the stack (AWS::StackName); default the template directory's name, made a
	// valid stack name.
	StackName string
}

// Parse reads a template, YAML (with CloudFormation's short forms, !Ref and the like) or JSON.
func Parse(file string, data []byte) (*doctree.Node, error) {
	return doctree.Parse(file, data, "template", MaxTemplateBytes, true)
}

// IsTemplate reports whether doc looks like a CloudFormation or SAM template.
func IsTemplate(doc *doctree.Node) bool {
	return doc.Get("AWSTemplateFormatVersion") != nil || doc.Get("Transform") != nil || doc.Get("Resources") != nil && doc.Get("Resources").Kind == doctree.Map
}

type reader struct {
	doctree.Notes
	dir           string
	opts          Options
	stackName     string
	params        map[string]string
	lists         map[string][]string
	mappings      *doctree.Node
	conditionDefs *doctree.Node
	conditions    map[string]bool
	evaluating    map[string]bool
	resources     *doctree.Node
	functionNames map[string]string // logical id → function name
	globals       *doctree.Node

	functions, apis *doctree.Node
	unserved        map[string][]string // resource type → logical ids
	unservedAt      map[string]*doctree.Node

	// REST APIs (AWS::Serverless::Api and the implicit one), by name, in the order they were made;
	// the stack's usage plans; and the first value that asks for an API key.
	rest       map[string]*restAPI
	restOrder  []string
	usagePlans *doctree.Node
	keysAt     *doctree.Node

	// AWS::ApiGatewayV2 parts, by logical id.
	integrations map[string]string // → function target
	routeOf      map[string]*doctree.Node

	// asyncFrom says, by function name, what gave the function its async: settings (its
	// EventInvokeConfig, or an AWS::Lambda::EventInvokeConfig resource), to refuse a second one.
	asyncFrom map[string]string
}

// Read makes the stack file a template describes. file names the template in messages, and its
// directory is where CodeUri and DefinitionUri paths resolve.
func Read(file string, doc *doctree.Node, o Options) (*doctree.Made, error) {
	if o.Region == "" {
		o.Region = spec.DefaultRegion
	}
	if o.AccountID == "" {
		o.AccountID = spec.DefaultAccountID
	}
	abs, err := filepath.Abs(filepath.Dir(file))
	if err != nil {
		return nil, err
	}
	r := &reader{Notes: doctree.Notes{File: file}, dir: abs, opts: o, params: map[string]string{}, lists: map[string][]string{},
		conditions: map[string]bool{}, evaluating: map[string]bool{}, functionNames: map[string]string{},
		unserved: map[string][]string{}, unservedAt: map[string]*doctree.Node{},
		integrations: map[string]string{}, routeOf: map[string]*doctree.Node{}, rest: map[string]*restAPI{}, asyncFrom: map[string]string{}}
	r.stackName = o.StackName
	if r.stackName == "" {
		r.stackName = spec.StackNameOf(filepath.Base(abs))
	}
	if doc == nil || doc.Kind != doctree.Map {
		return nil, r.Errorf(doc, "a template is a mapping with Resources:")
	}
	r.mappings, r.conditionDefs, r.globals = doc.Get("Mappings"), doc.Get("Conditions"), doc.Get("Globals")
	r.resources = doc.Get("Resources")
	if r.resources == nil || r.resources.Kind != doctree.Map || len(r.resources.Keys) == 0 {
		return nil, r.Errorf(doc, "the template has no Resources")
	}
	if err := r.readParameters(doc.Get("Parameters")); err != nil {
		return nil, err
	}
	r.functions, r.apis, r.usagePlans = doctree.NewMap(r.resources), doctree.NewMap(r.resources), doctree.NewMap(nil)

	// Which resources exist (their Condition holds), and the functions' names, before any value
	// refers to them.
	var live []string
	for i, id := range r.resources.Keys {
		res := r.resources.Vals[i]
		if c := res.Get("Condition"); c != nil {
			ok, err := r.condition(c, c.Scalar())
			if err != nil {
				return nil, err
			}
			if !ok {
				continue
			}
		}
		live = append(live, id)
		switch res.Get("Type").Scalar() {
		case "AWS::Serverless::Function", "AWS::Lambda::Function":
			r.functionNames[id] = id
			if n := res.Get("Properties").Get("FunctionName"); n != nil {
				name, err := r.evalString(n, "FunctionName")
				if err != nil {
					return nil, err
				}
				r.functionNames[id] = name
			}
		}
	}
	// APIs first, so that events and routes find them; then functions, and the event invoke
	// configurations that name them; then the parts of ApiGatewayV2 APIs in dependency order.
	order := []string{"AWS::Serverless::HttpApi", "AWS::Serverless::Api", "AWS::ApiGatewayV2::Api", "AWS::Serverless::Function", "AWS::Lambda::Function",
		"AWS::Lambda::EventInvokeConfig", "AWS::ApiGatewayV2::Integration", "AWS::ApiGatewayV2::Authorizer", "AWS::ApiGatewayV2::Route", "AWS::ApiGatewayV2::RouteResponse",
		"AWS::ApiGatewayV2::Stage"}
	for _, typ := range order {
		for _, id := range live {
			res := r.resources.Get(id)
			if res.Get("Type").Scalar() != typ {
				continue
			}
			if err := r.resource(id, typ, res); err != nil {
				return nil, err
			}
		}
	}
	for _, id := range live {
		res := r.resources.Get(id)
		typ := res.Get("Type").Scalar()
		if slices.Contains(order, typ) {
			continue
		}
		switch typ {
		case "AWS::ApiGatewayV2::Deployment":
		case "":
			return nil, r.Errorf(res, "resource %s has no Type", id)
		default:
			if r.unservedAt[typ] == nil {
				r.unservedAt[typ] = res
			}
			r.unserved[typ] = append(r.unserved[typ], id)
		}
	}
	for _, typ := range slices.Sorted(maps.Keys(r.unserved)) {
		r.Notice(r.unservedAt[typ], "%s is not served locally: %s", typ, strings.Join(r.unserved[typ], ", "))
	}

	stack := doctree.NewMap(doc)
	stack.Set("version", &doctree.Node{Kind: doctree.Number, Text: strconv.Itoa(spec.SchemaVersion)})
	stack.Set("name", doctree.Str(r.stackName, nil))
	iam := doctree.NewMap(nil)
	iam.Set("region", doctree.Str(o.Region, nil))
	iam.Set("accountId", doctree.Str(o.AccountID, nil))
	stack.Set("iam", iam)
	if len(r.functions.Keys) > 0 {
		stack.Set("functions", r.functions)
	}
	r.finishREST()
	r.finishAPIs()
	stack.Set("apis", r.apis)
	if len(r.usagePlans.Keys) > 0 {
		stack.Set("usagePlans", r.usagePlans)
	}
	return &doctree.Made{Stack: stack, Notices: r.Notices}, nil
}

func (r *reader) readParameters(params *doctree.Node) error {
	for name := range r.opts.Parameters {
		if params.Get(name) == nil {
			return &yamldecode.Error{File: r.File, Msg: fmt.Sprintf("--parameter-overrides names %s, which is not a parameter of the template", name)}
		}
	}
	if params == nil {
		return nil
	}
	for i, name := range params.Keys {
		p := params.Vals[i]
		v, ok := r.opts.Parameters[name]
		if !ok {
			def := p.Get("Default")
			if def == nil {
				return r.Errorf(p, "parameter %s has no Default: give it a value with --parameter-overrides %s=VALUE", name, name)
			}
			if def.Kind == doctree.List {
				var parts []string
				for _, it := range def.Items {
					parts = append(parts, it.Scalar())
				}
				v = strings.Join(parts, ",")
			} else {
				v = def.Scalar()
			}
		}
		if allowed := p.Get("AllowedValues"); allowed != nil && allowed.Kind == doctree.List {
			found := false
			for _, a := range allowed.Items {
				found = found || a.Scalar() == v
			}
			if !found {
				return r.Errorf(p, "parameter %s is %q, which is not one of its AllowedValues", name, v)
			}
		}
		r.params[name] = v
		if t := p.Get("Type").Scalar(); t == "CommaDelimitedList" || strings.HasPrefix(t, "List<") {
			r.lists[name] = strings.Split(v, ",")
			for j := range r.lists[name] {
				r.lists[name][j] = strings.TrimSpace(r.lists[name][j])
			}
		}
	}
	return nil
}

// props are a resource's Properties, evaluated, with the Globals section of its kind (Function,
// HttpApi) under them.
func (r *reader) props(res *doctree.Node, globals string) (*doctree.Node, error) {
	p := res.Get("Properties")
	if p == nil {
		p = doctree.NewMap(res)
	}
	if g := r.globals.Get(globals); g != nil {
		p = merge(g, p)
	}
	v, err := r.eval(p)
	if err != nil {
		return nil, err
	}
	if v.Kind != doctree.Map {
		return nil, r.Errorf(p, "Properties: want a mapping")
	}
	return v, nil
}

// merge lays over on base as SAM's Globals do: mappings are merged key by key, and anything else in
// over replaces base's.
func merge(base, over *doctree.Node) *doctree.Node {
	if base == nil || base.Kind != doctree.Map || over.Kind != doctree.Map || over.Tag != "" || base.Tag != "" {
		return over
	}
	out := doctree.NewMap(over)
	for i, k := range base.Keys {
		out.Set(k, base.Vals[i])
	}
	for i, k := range over.Keys {
		out.Set(k, merge(base.Get(k), over.Vals[i]))
	}
	return out
}

func (r *reader) resource(id, typ string, res *doctree.Node) error {
	switch typ {
	case "AWS::Serverless::Function", "AWS::Lambda::Function":
		return r.function(id, typ, res)
	case "AWS::Serverless::HttpApi":
		return r.httpAPI(id, res)
	case "AWS::Serverless::Api":
		return r.restAPIResource(id, res)
	case "AWS::Lambda::EventInvokeConfig":
		return r.eventInvokeConfigResource(id, res)
	default:
		return r.apiGatewayV2(id, typ, res)
	}
}

// function adds a function, its HttpApi and Api events' routes, its Schedule and ScheduleV2
// events' schedules and its EventInvokeConfig's async settings.
func (r *reader) function(id, typ string, res *doctree.Node) error {
	p, err := r.props(res, "Function")
	if typ == "AWS::Lambda::Function" {
		p, err = r.props(res, "")
	}
	if err != nil {
		return err
	}
	fn := doctree.NewMap(res)
	if v := p.Get("PackageType"); v.Scalar() == "Image" {
		return r.Errorf(v, "function %s: container images (PackageType: Image) are not served: Gatehouse runs zip packages", id)
	}
	code := p.Get("CodeUri")
	if typ == "AWS::Lambda::Function" {
		code = p.Get("Code")
	}
	switch {
	case p.Get("InlineCode") != nil || code.Get("ZipFile") != nil:
		return r.Errorf(cmpNode(p.Get("InlineCode"), code), "function %s: inline code is not served: put the code in a directory and name it in CodeUri", id)
	case code == nil:
		return r.Errorf(res, "function %s has no CodeUri: name the directory of its code", id)
	case code.Kind != doctree.String:
		return r.Errorf(code, "function %s: code in S3 is not served locally: name a local directory or .zip", id)
	}
	fn.Set("source", code)
	runtime := p.Get("Runtime")
	switch rt := runtime.Scalar(); {
	case runtime == nil:
		return r.Errorf(res, "function %s has no Runtime", id)
	case rt == "go1.x":
		return r.Errorf(runtime, "function %s: go1.x is retired on Lambda: build the handler as bootstrap for provided.al2023", id)
	}
	fn.Set("runtime", runtime)
	if h := p.Get("Handler"); h != nil {
		fn.Set("handler", h)
	}
	// Lambda's defaults, where Gatehouse's differ.
	mem := p.Get("MemorySize")
	if mem == nil {
		mem = &doctree.Node{Kind: doctree.Number, Text: "128"}
	}
	fn.Set("memory", mem)
	timeout := "3s"
	at := res
	if t := p.Get("Timeout"); t != nil {
		sec, err := strconv.Atoi(t.Scalar())
		if err != nil {
			return r.Errorf(t, "Timeout %q: want a whole number of seconds", t.Scalar())
		}
		timeout, at = fmt.Sprintf("%ds", sec), t
	}
	fn.Set("timeout", doctree.Str(timeout, at))
	if vars := p.Get("Environment").Get("Variables"); vars != nil && vars.Kind == doctree.Map && len(vars.Keys) > 0 {
		env := doctree.NewMap(vars)
		for i, k := range vars.Keys {
			env.Set(k, doctree.Str(vars.Vals[i].Scalar(), vars.Vals[i]))
		}
		fn.Set("environment", env)
	}
	if v := p.Get("ReservedConcurrentExecutions"); v != nil {
		fn.Set("maxConcurrency", v)
	}
	if v := p.Get("SnapStart"); v != nil {
		on, err := r.snapStart(id, v)
		if err != nil {
			return err
		}
		switch rt := runtime.Scalar(); {
		case on && spec.IsProcessRuntime(rt):
			r.Notice(v, "function %s: SnapStart applies to WebAssembly functions only here; a %s function starts as usual: ignored", id, rt)
		case on:
			fn.Set("snapStart", doctree.AsBool(doctree.Str("true", v)))
		}
	}
	for _, k := range []string{"AutoPublishAlias", "ProvisionedConcurrencyConfig", "Layers", "VpcConfig", "DeadLetterQueue", "FunctionUrlConfig"} {
		if v := p.Get(k); v != nil {
			r.Notice(v, "function %s: %s is not served locally: ignored", id, k)
		}
	}
	name := r.functionNames[id]
	if c := p.Get("EventInvokeConfig"); c != nil {
		a, err := r.eventInvokeConfig("function "+id, c)
		if err != nil {
			return err
		}
		if a != nil {
			fn.Set("async", a)
			r.asyncFrom[name] = "its EventInvokeConfig"
		}
	}
	r.functions.Set(name, fn)
	events := p.Get("Events")
	schedules := doctree.NewList(events)
	for evName, ev := range events.All() {
		switch t := ev.Get("Type"); t.Scalar() {
		case "Schedule", "ScheduleV2":
			s, err := r.scheduleEvent(id, evName, t.Scalar(), ev.Get("Properties"), ev)
			if err != nil {
				return err
			}
			if s != nil {
				schedules.Items = append(schedules.Items, s)
			}
		case "HttpApi":
			if err := r.httpAPIEvent(name, evName, ev.Get("Properties"), ev); err != nil {
				return err
			}
		case "Api":
			if err := r.restEvent(id, name, evName, ev.Get("Properties"), ev); err != nil {
				return err
			}
		default:
			r.Notice(t, "function %s: event %s of type %s is not served locally: skipped", id, evName, t.Scalar())
		}
	}
	if len(schedules.Items) > 0 {
		fn.Set("schedules", schedules)
	}
	return nil
}

// snapStart reads a function's SnapStart: ApplyOn PublishedVersions turns it on (every version
// Gatehouse deploys is a published one), None leaves it off.
func (r *reader) snapStart(id string, v *doctree.Node) (bool, error) {
	apply := v.Get("ApplyOn")
	if apply == nil {
		return false, r.Errorf(v, "function %s: SnapStart: want {ApplyOn: PublishedVersions} or {ApplyOn: None}", id)
	}
	switch {
	case !apply.IsScalar():
		return false, r.Errorf(apply, "function %s: SnapStart.ApplyOn: want PublishedVersions or None, got %s", id, apply.Kind)
	case apply.Text == "PublishedVersions":
		return true, nil
	case apply.Text == "None":
		return false, nil
	}
	return false, r.Errorf(apply, "function %s: SnapStart.ApplyOn %q: want PublishedVersions or None", id, apply.Text)
}

func cmpNode(a, b *doctree.Node) *doctree.Node {
	if a != nil {
		return a
	}
	return b
}

// api returns the definition of the API named name, made on first use.
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

// httpAPIEvent adds the route of a function's HttpApi event.
func (r *reader) httpAPIEvent(fn, evName string, p, ev *doctree.Node) error {
	apiName := ImplicitHTTPAPI
	if v := p.Get("ApiId"); v != nil {
		apiName = v.Scalar()
		if r.apis.Get(apiName) == nil {
			return r.Errorf(v, "event %s: ApiId %q is not an AWS::Serverless::HttpApi of the template", evName, apiName)
		}
	}
	api := r.api(apiName, "http", ev)
	key := "$default"
	path, method := p.Get("Path"), p.Get("Method")
	if path != nil || method != nil {
		m := strings.ToUpper(method.Scalar())
		if m == "" || m == "X-AMAZON-APIGATEWAY-ANY-METHOD" {
			m = "ANY"
		}
		pth := path.Scalar()
		if pth == "" {
			pth = "/{proxy+}"
		}
		key = m + " " + pth
	}
	at := cmpNode(path, ev)
	integration := doctree.NewMap(ev)
	integration.Set("type", doctree.Str("function", ev))
	integration.Set("target", doctree.Str(fn, ev))
	// SAM's default, and the stack file's, is 2.0; 1.0 sends the function REST APIs' event.
	if v := p.Get("PayloadFormatVersion"); v != nil {
		integration.Set("payloadFormatVersion", doctree.Str(v.Scalar(), v))
	}
	if v := p.Get("TimeoutInMillis"); v != nil {
		integration.Set("timeout", doctree.Str(v.Scalar()+"ms", v))
	}
	route := doctree.NewMap(at)
	route.Set("integration", integration)
	auth := p.Get("Auth")
	authorizer := auth.Get("Authorizer")
	if authorizer == nil {
		authorizer = api.Get("\x00defaultAuthorizer")
	}
	switch a := authorizer.Scalar(); a {
	case "", "NONE":
	case "AWS_IAM":
		m := doctree.NewMap(authorizer)
		m.Set("type", doctree.Str("iam", authorizer))
		route.Set("authorization", m)
	default:
		def := api.Get("authorizers").Get(a)
		if def == nil {
			return r.Errorf(authorizer, "event %s: authorizer %q is not in the API's Auth.Authorizers", evName, a)
		}
		m := doctree.NewMap(authorizer)
		m.Set("type", def.Get("type"))
		m.Set("authorizer", doctree.Str(a, authorizer))
		if scopes := auth.Get("AuthorizationScopes"); scopes != nil {
			m.Set("scopes", scopes)
		}
		route.Set("authorization", m)
	}
	routes := api.Get("routes")
	if routes.Get(key) != nil {
		return r.Errorf(at, "event %s: the route %s is defined twice in API %s", evName, key, apiName)
	}
	routes.Set(key, route)
	return nil
}

// httpAPI starts an AWS::Serverless::HttpApi's definition: stage, CORS, authorizers and the routes
// of its DefinitionBody or DefinitionUri.
func (r *reader) httpAPI(id string, res *doctree.Node) error {
	p, err := r.props(res, "HttpApi")
	if err != nil {
		return err
	}
	api := r.api(id, "http", res)
	stage := doctree.NewMap(res)
	if v := p.Get("StageVariables"); v != nil {
		stage.Set("variables", v)
	}
	if t := throttleOf(p.Get("DefaultRouteSettings")); t != nil {
		stage.Set("throttle", t)
	}
	stages := doctree.NewMap(res)
	stageName := p.Get("StageName")
	name := stageName.Scalar()
	if name == "" {
		name = "$default"
	}
	stages.Set(name, stage)
	api.Set("stages", stages)
	if c := p.Get("CorsConfiguration"); c != nil {
		cors, err := r.cors(c)
		if err != nil {
			return err
		}
		api.Set("cors", cors)
	}
	if auth := p.Get("Auth"); auth != nil {
		if err := r.authorizers(api, auth); err != nil {
			return err
		}
	}
	for _, k := range []string{"Domain", "AccessLogSettings", "RouteSettings", "FailOnWarnings", "DisableExecuteApiEndpoint"} {
		if v := p.Get(k); v != nil {
			r.Notice(v, "HttpApi %s: %s is not served locally: ignored", id, k)
		}
	}
	body, file, err := r.definition(p)
	if err != nil {
		return err
	}
	if body != nil {
		im, err := openapi.ImportAs(file, body, spec.APITypeHTTP)
		if err != nil {
			return err
		}
		r.Notices = append(r.Notices, im.Notices...)
		routes := api.Get("routes")
		imported := im.Definition.Get("routes")
		for i, k := range imported.Keys {
			routes.Set(k, imported.Vals[i])
		}
		if a := im.Definition.Get("authorizers"); a != nil {
			mine := api.Get("authorizers")
			if mine == nil {
				mine = doctree.NewMap(a)
				api.Set("authorizers", mine)
			}
			for i, k := range a.Keys {
				mine.Set(k, a.Vals[i])
			}
		}
		if c := im.Definition.Get("cors"); c != nil && api.Get("cors") == nil {
			api.Set("cors", c)
		}
	}
	return nil
}

// definition is the OpenAPI document of an API's DefinitionBody, or of the local file its
// DefinitionUri names, evaluated, with the name of the file it is in; nil when there is none.
func (r *reader) definition(p *doctree.Node) (*doctree.Node, string, error) {
	body := p.Get("DefinitionBody")
	uri := p.Get("DefinitionUri")
	if body != nil || uri == nil {
		return body, r.File, nil
	}
	if uri.Kind != doctree.String {
		return nil, "", r.Errorf(uri, "DefinitionUri in S3 is not served locally: name a local file")
	}
	file := filepath.Join(r.dir, uri.Text)
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, "", r.Errorf(uri, "DefinitionUri: %v", err)
	}
	if body, err = openapi.Parse(file, data); err != nil {
		return nil, "", err
	}
	if body, err = r.eval(body); err != nil {
		return nil, "", err
	}
	return body, file, nil
}

// throttleOf is a stack file's throttle from DefaultRouteSettings (nil without limits).
func throttleOf(s *doctree.Node) *doctree.Node {
	rate, burst := s.Get("ThrottlingRateLimit"), s.Get("ThrottlingBurstLimit")
	if rate == nil && burst == nil {
		return nil
	}
	t := doctree.NewMap(s)
	if rate != nil {
		t.Set("rate", rate)
	}
	if burst != nil {
		t.Set("burst", burst)
	}
	return t
}

// cors is a stack file's cors from a CorsConfiguration: true (any origin, method and header), or
// its keys in either case.
func (r *reader) cors(c *doctree.Node) (*doctree.Node, error) {
	out := doctree.NewMap(c)
	if c.Kind == doctree.Bool {
		if c.Text == "true" {
			for _, k := range []string{"allowOrigins", "allowMethods", "allowHeaders"} {
				out.Set(k, doctree.NewList(c, doctree.Str("*", c)))
			}
		}
		return out, nil
	}
	if c.Kind != doctree.Map {
		return nil, r.Errorf(c, "CorsConfiguration: want true or a mapping")
	}
	for i, k := range c.Keys {
		key := strings.ToLower(k[:1]) + k[1:]
		switch key {
		case "allowOrigins", "allowMethods", "allowHeaders", "exposeHeaders", "maxAge", "allowCredentials":
			out.Set(key, c.Vals[i])
		default:
			return nil, r.Errorf(c.Vals[i], "CorsConfiguration.%s: unknown key", k)
		}
	}
	return out, nil
}

// authorizers reads an HttpApi's Auth: its Authorizers (JWT, or a function with Identity) and
// DefaultAuthorizer.
func (r *reader) authorizers(api, auth *doctree.Node) error {
	list := auth.Get("Authorizers")
	defs := doctree.NewMap(list)
	for name, a := range list.All() {
		def := doctree.NewMap(a)
		switch {
		case a.Get("JwtConfiguration") != nil:
			jc := a.Get("JwtConfiguration")
			def.Set("type", doctree.Str("jwt", a))
			def.Set("issuer", cmpNode(jc.Get("issuer"), jc.Get("Issuer")))
			aud := cmpNode(jc.Get("audience"), jc.Get("Audience"))
			if aud != nil && aud.Kind != doctree.List {
				aud = doctree.NewList(aud, aud)
			}
			def.Set("audiences", aud)
			if v := a.Get("IdentitySource"); v != nil {
				def.Set("identitySource", v)
			}
		case a.Get("FunctionArn") != nil:
			fnArn := a.Get("FunctionArn")
			fn, ok := openapi.FunctionOfURI(fnArn.Scalar())
			if !ok {
				return r.Errorf(fnArn, "authorizer %s: FunctionArn %q is not a function's ARN", name, fnArn.Scalar())
			}
			def.Set("type", doctree.Str("function", a))
			def.Set("function", doctree.Str(fn, fnArn))
			var sources []*doctree.Node
			id := a.Get("Identity")
			for _, part := range []struct{ key, prefix string }{{"Headers", "$request.header."}, {"QueryStrings", "$request.querystring."},
				{"Context", "$context."}, {"StageVariables", "$stageVariables."}} {
				for _, v := range id.Get(part.key).List() {
					sources = append(sources, doctree.Str(part.prefix+v.Scalar(), v))
				}
			}
			if len(sources) == 0 {
				sources = append(sources, doctree.Str("$request.header.Authorization", a))
			}
			def.Set("identitySources", doctree.NewList(a, sources...))
			if v := id.Get("ReauthorizeEvery"); v != nil {
				def.Set("resultTtl", doctree.Str(v.Scalar()+"s", v))
			}
			simple := a.Get("EnableSimpleResponses")
			if simple == nil {
				simple = &doctree.Node{Kind: doctree.Bool, Text: "false"}
			}
			def.Set("simpleResponses", simple)
		default:
			return r.Errorf(a, "authorizer %s: want JwtConfiguration (a JWT authorizer) or FunctionArn (a Lambda authorizer)", name)
		}
		defs.Set(name, def)
	}
	if len(defs.Keys) > 0 {
		api.Set("authorizers", defs)
	}
	if d := auth.Get("DefaultAuthorizer"); d != nil {
		api.Set("\x00defaultAuthorizer", d)
	}
	if v := auth.Get("EnableIamAuthorizer"); v != nil && v.Text != "true" {
		r.Notice(v, "EnableIamAuthorizer false has no effect here: AWS_IAM routes are always served")
	}
	return nil
}

// finishAPIs removes what only the reading needed, gives every API a stage, mounts them apart and
// drops those without routes.
func (r *reader) finishAPIs() {
	out := doctree.NewMap(r.apis)
	first := true
	names := slices.Clone(r.apis.Keys)
	// The implicit APIs (the HTTP API's, then the REST API's), then the others in template order:
	// the first is mounted at /.
	rank := func(name string) int {
		switch name {
		case ImplicitHTTPAPI:
			return 0
		case ImplicitRESTAPI:
			return 1
		}
		return 2
	}
	slices.SortStableFunc(names, func(a, b string) int { return rank(a) - rank(b) })
	for _, name := range names {
		api := r.apis.Get(name)
		clean := doctree.NewMap(api)
		for i, k := range api.Keys {
			if !strings.HasPrefix(k, "\x00") {
				clean.Set(k, api.Vals[i])
			}
		}
		if len(clean.Get("routes").Keys) == 0 {
			r.Notice(api, "API %s has no routes a local stack serves: skipped", name)
			continue
		}
		if clean.Get("stages") == nil {
			stages := doctree.NewMap(api)
			stages.Set("$default", doctree.NewMap(api))
			clean.Set("stages", stages)
		}
		mount := "/"
		if !first {
			mount = "/" + name
		}
		first = false
		clean.Set("mount", doctree.Str(mount, nil))
		out.Set(name, clean)
	}
	r.apis = out
}
