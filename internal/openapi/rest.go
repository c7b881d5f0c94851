package openapi

import (
	"strconv"
	"strings"

	"gatehouse.dev/gatehouse/internal/doctree"
	"gatehouse.dev/gatehouse/internal/spec"
)

// Reading what only REST APIs have: models (components.schemas, or Swagger 2.0's definitions),
// request validators with the operations' parameters and request bodies, gateway responses,
// binary media types, the minimum compression size, and token and request authorizers.

// Where a document's $refs point.
const (
	schemasRef       = "#/components/schemas/"
	definitionsRef   = "#/definitions/" // Swagger 2.0
	parametersRef    = "#/components/parameters/"
	swaggerParamsRef = "#/parameters/" // Swagger 2.0
	requestBodiesRef = "#/components/requestBodies/"
)

// modelURL is how an imported model refers to another: API Gateway's model URL, which
// reqvalidate.Compile resolves to the API's model of that name whatever the API id. API Gateway
// writes its new API's id there; an import has none, so "openapi" stands for it.
const modelURL = "https://apigateway.amazonaws.com/restapis/openapi/models/"

// validator is one of x-amazon-apigateway-request-validators.
type validator struct{ body, params bool }

// readModels makes the API's models of the document's schemas, each with $refs between them
// rewritten as API Gateway's model URLs; a schema whose name cannot be a model's is skipped with a
// notice.
func (im *importer) readModels() {
	schemas := im.doc.Get("components").Get("schemas")
	im.schemaRef = schemasRef
	if im.swagger {
		schemas, im.schemaRef = im.doc.Get("definitions"), definitionsRef
	}
	im.models = doctree.NewMap(schemas)
	for name, s := range schemas.All() {
		if !validModelName(name) {
			im.notice(s, "schema %q is not a model of the API: a REST API's model names are 1 to 128 letters and digits; skipped", name)
			continue
		}
		m := doctree.NewMap(s)
		m.Set("schema", im.schemaOf(s))
		im.models.Set(name, m)
	}
}

// schemaOf is a copy of the schema n with every $ref to a schema of the document rewritten as the
// model URL of that schema ("#/components/schemas/Owner/properties/id" as
// modelURL+"Owner#/properties/id"); other $refs stay as written, for the model's checks to judge.
func (im *importer) schemaOf(n *doctree.Node) *doctree.Node {
	switch n.Kind {
	case doctree.Map:
		out := doctree.NewMap(n)
		for k, v := range n.All() {
			if k == "$ref" && v.Kind == doctree.String {
				if rest, ok := strings.CutPrefix(v.Text, im.schemaRef); ok {
					name, pointer, deep := strings.Cut(rest, "/")
					ref := modelURL + name
					if deep {
						ref += "#/" + pointer
					}
					v = doctree.Str(ref, v)
				}
				out.Set(k, v)
				continue
			}
			out.Set(k, im.schemaOf(v))
		}
		return out
	case doctree.List:
		items := make([]*doctree.Node, len(n.Items))
		for i, it := range n.Items {
			items[i] = im.schemaOf(it)
		}
		return doctree.NewList(n, items...)
	}
	return n
}

// restRoot reads one of a REST API's root extensions, k with value v, into the definition def.
func (im *importer) restRoot(def *doctree.Node, k string, v *doctree.Node) error {
	switch k {
	case binaryMediaTypes:
		if v.Kind == doctree.List {
			// API Gateway escapes the / of a media type as ~1 in some of its places.
			items := make([]*doctree.Node, len(v.Items))
			for i, t := range v.Items {
				items[i] = t
				if t.Kind == doctree.String && strings.Contains(t.Text, "~1") {
					items[i] = doctree.Str(strings.ReplaceAll(t.Text, "~1", "/"), t)
				}
			}
			v = doctree.NewList(v, items...)
		}
		def.Set("binaryMediaTypes", v)
	case "x-amazon-apigateway-minimum-compression-size":
		def.Set("minimumCompressionSize", v)
	case "x-amazon-apigateway-request-validators":
		return im.readValidators(v)
	case "x-amazon-apigateway-request-validator":
		im.defaultValidator = v
	case "x-amazon-apigateway-gateway-responses":
		grs, err := im.gatewayResponses(v)
		if err != nil {
			return err
		}
		def.Set("gatewayResponses", grs)
	case "x-amazon-apigateway-policy":
		// The API's resource policy, as API Gateway's REST exports write it.
		def.Set("resourcePolicy", v)
	case "x-amazon-apigateway-api-key-source":
		if !strings.EqualFold(v.Scalar(), "HEADER") {
			im.notice(v, "%s %s is not served: Gatehouse reads API keys from the %s header (an authorizer's usageIdentifierKey is not used); ignored", k, v.Scalar(), spec.APIKeyHeader)
		}
	default:
		im.notice(v, "%s is not served locally: ignored", k)
	}
	return nil
}

// readValidators reads x-amazon-apigateway-request-validators: by name, validateRequestBody and
// validateRequestParameters.
func (im *importer) readValidators(v *doctree.Node) error {
	if v.Kind != doctree.Map {
		return im.errorf(v, "want request validators by name (a mapping), not %s", v.Kind)
	}
	im.validators = map[string]validator{}
	for name, x := range v.All() {
		if x.Kind != doctree.Map {
			return im.errorf(x, "want a request validator (a mapping with validateRequestBody and validateRequestParameters), not %s", x.Kind)
		}
		var val validator
		for k, b := range x.All() {
			switch k {
			case "validateRequestBody":
				val.body = b.Scalar() == "true"
			case "validateRequestParameters":
				val.params = b.Scalar() == "true"
			default:
				im.notice(b, "request validator %q: %s is not served locally: ignored", name, k)
			}
		}
		im.validators[name] = val
	}
	return nil
}

// request reads a REST operation's request validation (item is its path item): the parameters of
// the path item and the operation (path parameters left out: a route matches only with them),
// the models of its request body, and its request validator (or the document's). nil when it has
// neither parameters nor a body's model.
func (im *importer) request(op, item *doctree.Node, routeKey string) (*doctree.Node, error) {
	v := validator{}
	which := op.Get("x-amazon-apigateway-request-validator")
	if which == nil {
		which = im.defaultValidator
	}
	if which != nil {
		var ok bool
		if v, ok = im.validators[which.Scalar()]; !ok {
			return nil, im.errorf(which, "request validator %q is not in x-amazon-apigateway-request-validators", which.Scalar())
		}
	}
	params := doctree.NewMap(op.Get("parameters"))
	var body *doctree.Node // Swagger 2.0's body parameter
	for _, list := range []*doctree.Node{item.Get("parameters"), op.Get("parameters")} {
		for _, p := range list.List() {
			ref := parametersRef
			if im.swagger {
				ref = swaggerParamsRef
			}
			p, err := im.resolve(p, ref, "a parameter")
			if err != nil {
				return nil, err
			}
			in, name := p.Get("in"), p.Get("name")
			var key string
			switch in.Scalar() {
			case "query":
				key = "querystring."
			case "header":
				key = "header."
			case "path":
				continue
			case "body":
				if im.swagger {
					body = p
					continue
				}
				fallthrough
			default:
				im.notice(cmpNode(in, p), "%s: parameters in %q are not checked by request validators: ignored", routeKey, in.Scalar())
				continue
			}
			if name.Scalar() == "" {
				return nil, im.errorf(p, "a parameter needs a name")
			}
			params.Set(key+name.Scalar(), boolean(p.Get("required").Scalar() == "true", name))
		}
	}
	models := doctree.NewMap(op)
	switch rb := op.Get("requestBody"); {
	case im.swagger && body != nil:
		schema := body.Get("schema")
		if schema == nil {
			break
		}
		name, err := im.modelFor(schema, routeKey)
		if err != nil {
			return nil, err
		}
		consumes := op.Get("consumes")
		if consumes == nil {
			consumes = im.doc.Get("consumes")
		}
		for _, ct := range consumes.List() {
			models.Set(ct.Scalar(), doctree.Str(name, schema))
		}
		if len(models.Keys) == 0 {
			models.Set("application/json", doctree.Str(name, schema))
		}
	case rb != nil:
		rb, err := im.resolve(rb, requestBodiesRef, "a request body")
		if err != nil {
			return nil, err
		}
		for ct, media := range rb.Get("content").All() {
			schema := media.Get("schema")
			if schema == nil {
				continue
			}
			name, err := im.modelFor(schema, routeKey)
			if err != nil {
				return nil, err
			}
			models.Set(ct, doctree.Str(name, schema))
		}
	}
	if len(params.Keys) == 0 && len(models.Keys) == 0 {
		return nil, nil
	}
	at := cmpNode(which, op)
	request := doctree.NewMap(op)
	if len(params.Keys) > 0 {
		request.Set("parameters", params)
	}
	if len(models.Keys) > 0 {
		request.Set("models", models)
	}
	request.Set("validateBody", boolean(v.body && len(models.Keys) > 0, at))
	request.Set("validateParameters", boolean(v.params && len(params.Keys) > 0, at))
	return request, nil
}

// modelFor is the model a request body's schema names: the schema of the document its $ref names,
// or, for a schema written in place, a new model of it named after the route.
func (im *importer) modelFor(schema *doctree.Node, routeKey string) (string, error) {
	if ref := schema.Get("$ref"); ref != nil {
		name, ok := strings.CutPrefix(ref.Scalar(), im.schemaRef)
		if !ok || strings.Contains(name, "/") {
			return "", im.errorf(ref, "$ref %q: a request body's schema is a model of the API: want %sNAME", ref.Scalar(), im.schemaRef)
		}
		if im.models.Get(name) == nil {
			if !validModelName(name) {
				return "", im.errorf(ref, "$ref %q: a REST API's model names are 1 to 128 letters and digits", ref.Scalar())
			}
			return "", im.errorf(ref, "$ref %q: the document has no such schema", ref.Scalar())
		}
		return name, nil
	}
	base := modelNameOf(routeKey)
	name := base
	for i := 2; im.models.Get(name) != nil; i++ {
		suffix := strconv.Itoa(i)
		name = base[:min(len(base), 128-len(suffix))] + suffix
	}
	m := doctree.NewMap(schema)
	m.Set("schema", im.schemaOf(schema))
	im.models.Set(name, m)
	return name, nil
}

// modelNameOf is the name of the model of a route's request body written in place: its method
// and path's words, capitalised, and "Body" ("POST /orders/{id}" → "PostOrdersIdBody").
func modelNameOf(routeKey string) string {
	var b strings.Builder
	upper := true
	for _, c := range strings.ToLower(routeKey) {
		switch {
		case c >= 'a' && c <= 'z':
			if upper {
				c -= 'a' - 'A'
			}
			b.WriteRune(c)
			upper = false
		case c >= '0' && c <= '9':
			b.WriteRune(c)
			upper = true
		default:
			upper = true
		}
	}
	name := b.String() + "Body"
	return name[:min(len(name), 128)]
}

// resolve is n, or what its $ref names: an entry of the document's map at prefix (such as
// #/components/parameters/). what names it for messages.
func (im *importer) resolve(n *doctree.Node, prefix, what string) (*doctree.Node, error) {
	ref := n.Get("$ref")
	if ref == nil {
		return n, nil
	}
	name, ok := strings.CutPrefix(ref.Scalar(), prefix)
	var target *doctree.Node
	if ok {
		target = im.doc
		for _, k := range strings.Split(strings.TrimPrefix(prefix, "#/"), "/") {
			if k != "" {
				target = target.Get(k)
			}
		}
		target = target.Get(name)
	}
	if target == nil || target.Kind != doctree.Map {
		return nil, im.errorf(ref, "$ref %q: want %sNAME, %s of the document", ref.Scalar(), prefix, what)
	}
	return target, nil
}

// restAuthorizer adds a REST API's token or request authorizer, of the security scheme name with
// x-amazon-apigateway-authorizer a of type typ, to the definition, once.
func (im *importer) restAuthorizer(name string, scheme, a, typ *doctree.Node) error {
	if im.auths.Get(name) != nil {
		return nil
	}
	kind := strings.ToLower(typ.Scalar())
	uri := a.Get("authorizerUri")
	fn, ok := FunctionOfURI(uri.Scalar())
	if uri == nil || !ok {
		return im.errorf(cmpNode(uri, a), "authorizerUri %q: want API Gateway's invocation ARN of a function, or its ARN or name", uri.Scalar())
	}
	def := doctree.NewMap(a)
	def.Set("type", doctree.Str(kind, typ))
	def.Set("function", doctree.Str(fn, uri))
	switch src := a.Get("identitySource"); {
	case src != nil:
		def.Set("identitySources", identitySources(src))
	case kind == "token" && scheme.Get("in").Scalar() == "header" && scheme.Get("name").Scalar() != "":
		// The header the scheme names, as API Gateway's token authorizers read it.
		n := scheme.Get("name")
		def.Set("identitySources", doctree.NewList(n, doctree.Str(spec.IdentitySourceHeader+n.Scalar(), n)))
	}
	if v := a.Get("identityValidationExpression"); v != nil {
		if kind == "token" {
			def.Set("identityValidationExpression", v)
		} else {
			im.notice(v, "identityValidationExpression is for token authorizers; API Gateway does not check it for a request authorizer: ignored")
		}
	}
	ttl := doctree.Str("300s", a) // API Gateway's default for REST APIs' authorizers
	if v := a.Get("authorizerResultTtlInSeconds"); v != nil {
		var err error
		if ttl, err = im.seconds(v); err != nil {
			return err
		}
	}
	def.Set("resultTtl", ttl)
	for _, k := range []string{"enableSimpleResponses", "authorizerPayloadFormatVersion"} {
		if v := a.Get(k); v != nil {
			im.notice(v, "%s belongs to HTTP APIs' authorizers; a REST API's authorizer answers with an IAM policy: ignored", k)
		}
	}
	im.auths.Set(name, def)
	return nil
}

// The identity sources, mapping sources and header values of REST APIs' documents, and the stack
// file's for them.
var restSources = []struct{ rest, stack string }{
	{"method.request.header.", "$request.header."},
	{"method.request.querystring.", "$request.querystring."},
	{"method.request.path.", "$request.path."},
	{"stageVariables.", "$stageVariables."},
	{"context.", "$context."},
}

// stackIdentitySource is an identity source in the stack file's form: REST's
// method.request.header.NAME as $request.header.NAME, and so on; other forms as they are.
func stackIdentitySource(s string) string {
	for _, f := range restSources {
		if name, ok := strings.CutPrefix(s, f.rest); ok && name != "" {
			return f.stack + name
		}
	}
	return s
}

// restIdentitySource is an identity source in REST's form: $request.header.NAME as
// method.request.header.NAME, and so on.
func restIdentitySource(s string) string {
	for _, f := range restSources {
		if name, ok := strings.CutPrefix(s, f.stack); ok && name != "" {
			return f.rest + name
		}
	}
	return s
}

// restValue is a REST mapping's or gateway response's value ('literal', method.request.header.X,
// context.X, stageVariables.X…) as the stack file writes it (literal, $request.header.X,
// $context.X, $stageVariables.X…); ok is false for a value of another form. header says the
// value is a gateway response header's, whose sources are only $context and $stageVariables.
func restValue(v string, header bool) (string, bool) {
	if len(v) >= 2 && v[0] == '\'' && v[len(v)-1] == '\'' {
		return v[1 : len(v)-1], true
	}
	for _, f := range restSources {
		if header && strings.HasPrefix(f.rest, "method.") {
			continue
		}
		if name, ok := strings.CutPrefix(v, f.rest); ok && validSourceName(name) {
			return f.stack + name, true
		}
	}
	return "", false
}

// restSource is the stack file's value v in REST's form: restValue's inverse.
func restSource(v string, header bool) string {
	for _, f := range restSources {
		if header && strings.HasPrefix(f.rest, "method.") {
			continue
		}
		if name, ok := strings.CutPrefix(v, f.stack); ok && validSourceName(name) {
			return f.rest + name
		}
	}
	return "'" + v + "'"
}

// validSourceName reports whether s names a value: letters, digits, '.', '-' and '_'.
func validSourceName(s string) bool { return nameChars(s, ".") }

// restRequestMapping is a REST http_proxy integration's request mapping, key k with value v, as
// HTTP APIs' (and the stack file's) mapping: integration.request.header.NAME (or querystring) as
// overwrite:header.NAME. skip is true for integration.request.path.NAME:
// method.request.path.NAME, which Gatehouse does by itself ({NAME} in the URL); ok is false for
// a mapping of another form.
func restRequestMapping(k, v string) (key, val string, skip, ok bool) {
	if name, found := strings.CutPrefix(k, "integration.request.path."); found && v == "method.request.path."+name {
		return "", "", true, true
	}
	for _, place := range []string{"header.", "querystring."} {
		if name, found := strings.CutPrefix(k, "integration.request."+place); found && name != "" {
			if val, ok = restValue(v, false); ok {
				return "overwrite:" + place + name, val, false, true
			}
		}
	}
	return "", "", false, false
}

// gatewayResponses reads x-amazon-apigateway-gateway-responses: by response type, statusCode,
// responseParameters (gatewayresponse.header.NAME: "'value'", context.NAME or
// stageVariables.NAME) and responseTemplates' application/json body.
func (im *importer) gatewayResponses(v *doctree.Node) (*doctree.Node, error) {
	if v.Kind != doctree.Map {
		return v, nil // refused, at its place, by the stack file's checks
	}
	out := doctree.NewMap(v)
	for typ, r := range v.All() {
		if r.Kind != doctree.Map {
			return nil, im.errorf(r, "want a gateway response (a mapping with statusCode, responseParameters and responseTemplates), not %s", r.Kind)
		}
		gr := doctree.NewMap(r)
		headers := doctree.NewMap(r.Get("responseParameters"))
		for k, x := range r.All() {
			switch k {
			case "statusCode":
				n, err := strconv.Atoi(x.Scalar())
				if err != nil {
					return nil, im.errorf(x, "statusCode %q: want a status code such as 401", x.Scalar())
				}
				gr.Set("statusCode", number(n, x))
			case "responseParameters":
				for p, val := range x.All() {
					name, isHeader := strings.CutPrefix(p, "gatewayresponse.header.")
					hv, ok := restValue(val.Scalar(), true)
					if !isHeader || !ok {
						im.notice(val, "gateway response %s: %s: %s is not served: ignored (Gatehouse sets gatewayresponse.header.NAME to \"'value'\", context.NAME or stageVariables.NAME)", typ, p, val.Scalar())
						continue
					}
					headers.Set(name, doctree.Str(hv, val))
				}
			case "responseTemplates":
				for ct, t := range x.All() {
					if ct != "application/json" {
						im.notice(t, "gateway response %s: the body is its application/json template; the %s one is not served: ignored", typ, ct)
						continue
					}
					gr.Set("body", doctree.Str(t.Scalar(), t))
				}
			default:
				im.notice(x, "gateway response %s: %s is not served locally: ignored", typ, k)
			}
		}
		if len(headers.Keys) > 0 {
			gr.Set("headers", headers)
		}
		out.Set(typ, gr)
	}
	return out, nil
}

// validModelName reports whether s can name a REST API's model: 1 to 128 letters and digits.
func validModelName(s string) bool {
	return len(s) <= 128 && nameChars(s, "") && !strings.ContainsAny(s, "-_")
}
