// Package openapi reads and writes HTTP APIs as OpenAPI 3.0 documents in API Gateway's dialect:
// a path per route, an operation per method (x-amazon-apigateway-any-method for ANY, the path
// /$default for the $default route), each with its x-amazon-apigateway-integration (aws_proxy to a
// function, http_proxy to a backend URL with its parameter mappings, or mock in REST APIs' form) and
// its security, authorizers as security schemes with x-amazon-apigateway-authorizer (or
// x-amazon-apigateway-authtype awsSigv4 for IAM), and CORS as x-amazon-apigateway-cors.
//
// Import makes a stack file's API definition of a document, with every value placed where the
// document wrote it, for stackfile.ParseAPIDoc to check; it is the one importer behind
// `gatehouse up -f openapi.yaml`, `gatehouse apis import`, SAM's DefinitionBody and the AWS API's
// ImportApi. Export writes a spec.API back in the same dialect.
//
// The document is read with doctree rather than an OpenAPI library: Gatehouse reads only the
// routing parts and API Gateway's extensions, and needs the line and column of each for its
// messages, which the libraries' models do not keep.
package openapi

import (
	"fmt"
	"strconv"
	"strings"

	"gatehouse.dev/gatehouse/internal/doctree"
	"gatehouse.dev/gatehouse/internal/yamldecode"
)

// MaxDocumentBytes bounds an OpenAPI document.
const MaxDocumentBytes = 4 << 20

// AnyMethod is the operation key API Gateway uses for a route of any method.
const AnyMethod = "x-amazon-apigateway-any-method"

// Imported is an HTTP API read from an OpenAPI document.
type Imported struct {
	// Name is info.title; Description info.description.
	Name, Description string
	// Definition is the API as an entry of a stack file's apis:, each value placed where the
	// document wrote what it was made from. It has no stages: OpenAPI documents do not carry them.
	Definition *doctree.Node
	// Notices are the parts of the document that Gatehouse does not serve and skipped, each placed
	// in the document.
	Notices []*yamldecode.Error
}

// Parse reads an OpenAPI document, JSON or YAML.
func Parse(file string, data []byte) (*doctree.Node, error) {
	return doctree.Parse(file, data, "OpenAPI document", MaxDocumentBytes, false)
}

// IsDocument reports whether doc looks like an OpenAPI or Swagger document (it has openapi: or
// swagger: at its root), for telling file formats apart.
func IsDocument(doc *doctree.Node) bool {
	return doc.Get("openapi") != nil || doc.Get("swagger") != nil
}

// isMethod reports whether an operation's key in a path item is a method Gatehouse routes.
func isMethod(key string) bool {
	switch key {
	case "get", "put", "post", "delete", "patch", "head", "options", AnyMethod:
		return true
	}
	return false
}

// importer holds what one Import has found.
type importer struct {
	file    string
	doc     *doctree.Node
	schemes *doctree.Node // components.securitySchemes
	out     *Imported
	auths   *doctree.Node // the definition's authorizers:
	usesIAM bool
}

func (im *importer) errorf(n *doctree.Node, format string, args ...any) error {
	return doctree.Errorf(im.file, n, format, args...)
}

func (im *importer) notice(n *doctree.Node, format string, args ...any) {
	im.out.Notices = append(im.out.Notices, doctree.Errorf(im.file, n, format, args...))
}

// Import reads an HTTP API from doc, an OpenAPI 3 document. The first problem that stops it is an
// error placed in the document; what it skips is in Notices.
func Import(file string, doc *doctree.Node) (*Imported, error) {
	im := &importer{file: file, doc: doc, out: &Imported{}}
	if doc == nil || doc.Kind != doctree.Map {
		return nil, im.errorf(doc, "an OpenAPI document is a mapping with openapi:, info: and paths:")
	}
	if v := doc.Get("swagger"); v != nil {
		return nil, im.errorf(v, "this is a Swagger %s document: Gatehouse reads OpenAPI 3 (API Gateway exports it with --specification OAS30)", v.Scalar())
	}
	version := doc.Get("openapi")
	if version == nil || !strings.HasPrefix(version.Scalar(), "3.") {
		return nil, im.errorf(version, "want openapi: 3.0.x (an OpenAPI 3 document)")
	}
	info := doc.Get("info")
	title := info.Get("title")
	if title == nil || title.Scalar() == "" {
		return nil, im.errorf(info, "info.title, the API's name, is required")
	}
	im.out.Name = title.Scalar()
	if d := info.Get("description"); d != nil {
		im.out.Description = d.Scalar()
	}
	im.schemes = doc.Get("components").Get("securitySchemes")

	def := doctree.NewMap(doc)
	def.Set("type", doctree.Str("http", version))
	im.auths = doctree.NewMap(im.schemes)
	routes := doctree.NewMap(doc.Get("paths"))
	if cors := doc.Get("x-amazon-apigateway-cors"); cors != nil {
		def.Set("cors", cors)
	}
	for i, k := range doc.Keys {
		switch {
		case k == "x-amazon-apigateway-cors", k == "x-amazon-apigateway-importexport-version":
		case strings.HasPrefix(k, "x-amazon-apigateway-"):
			im.notice(doc.Vals[i], "%s is not served locally: ignored", k)
		}
	}
	defaultSecurity := doc.Get("security")
	paths := doc.Get("paths")
	if paths == nil || paths.Kind != doctree.Map || len(paths.Keys) == 0 {
		return nil, im.errorf(doc, "paths: is required and has no paths: an API needs at least one route")
	}
	for i, path := range paths.Keys {
		item := paths.Vals[i]
		if item.Kind != doctree.Map {
			return nil, im.errorf(item, "want a path item (a mapping of operations), not %s", item.Kind)
		}
		for j, key := range item.Keys {
			op := item.Vals[j]
			switch {
			case key == "$ref":
				return nil, im.errorf(op, "path items by $ref are not read: write the operations here")
			case !isMethod(key):
				if strings.HasPrefix(key, "x-amazon-apigateway-") {
					im.notice(op, "%s is not served locally: ignored", key)
				}
				continue // parameters, summary, servers, other extensions
			}
			method := strings.ToUpper(key)
			if key == AnyMethod {
				method = "ANY"
			}
			routeKey := method + " " + path
			if path == "/$default" && method == "ANY" {
				routeKey = "$default"
			}
			route, err := im.route(op, routeKey, defaultSecurity)
			if err != nil {
				return nil, err
			}
			if route != nil {
				routes.Set(routeKey, route)
			}
		}
	}
	if len(routes.Keys) == 0 {
		return nil, im.errorf(paths, "no operation has an x-amazon-apigateway-integration Gatehouse serves: there is no route to serve")
	}
	if len(im.auths.Keys) > 0 {
		def.Set("authorizers", im.auths)
	}
	def.Set("routes", routes)
	im.out.Definition = def
	return im.out, nil
}

// route makes one operation's route; nil (with a notice) when it has no integration to serve.
func (im *importer) route(op *doctree.Node, routeKey string, defaultSecurity *doctree.Node) (*doctree.Node, error) {
	it := op.Get("x-amazon-apigateway-integration")
	if it == nil {
		im.notice(op, "%s has no x-amazon-apigateway-integration: not served", routeKey)
		return nil, nil
	}
	for i, k := range op.Keys {
		if strings.HasPrefix(k, "x-amazon-apigateway-") && k != "x-amazon-apigateway-integration" {
			im.notice(op.Vals[i], "%s is not served locally: ignored", k)
		}
	}
	it, err := im.resolveIntegration(it)
	if err != nil {
		return nil, err
	}
	var integration *doctree.Node
	typ := it.Get("type")
	switch strings.ToLower(typ.Scalar()) {
	case "aws_proxy":
		integration, err = im.functionIntegration(it, typ)
	case "http_proxy":
		integration, err = im.proxyIntegration(it, typ, routeKey)
	case "mock":
		integration, err = im.mockIntegration(it, typ, routeKey)
	case "http", "aws":
		return nil, im.errorf(typ, "integration type %s is not served yet: Gatehouse serves aws_proxy (functions), http_proxy and mock integrations", typ.Scalar())
	default:
		return nil, im.errorf(cmpNode(typ, it), "integration type %q: want aws_proxy, http_proxy or mock", typ.Scalar())
	}
	if err != nil || integration == nil {
		return nil, err
	}
	route := doctree.NewMap(op)
	route.Set("integration", integration)

	security := op.Get("security")
	if security == nil {
		security = defaultSecurity
	}
	if security != nil {
		auth, err := im.authorization(security)
		if err != nil {
			return nil, err
		}
		if auth != nil {
			route.Set("authorization", auth)
		}
	}
	return route, nil
}

// authorization reads an operation's security requirement: one scheme at most, an authorizer or
// IAM.
func (im *importer) authorization(security *doctree.Node) (*doctree.Node, error) {
	if security.Kind != doctree.List {
		return nil, im.errorf(security, "security: want a list of requirements")
	}
	var req *doctree.Node
	for _, r := range security.Items {
		if r.Kind == doctree.Map && len(r.Keys) > 0 {
			if req != nil || len(r.Keys) > 1 {
				return nil, im.errorf(r, "a route has one authorizer here: the operation lists more than one security requirement")
			}
			req = r
		}
	}
	if req == nil {
		return nil, nil // security: [] or [{}]: open
	}
	name, scopes := req.Keys[0], req.Vals[0]
	scheme := im.schemes.Get(name)
	if scheme == nil {
		return nil, im.errorf(req, "security scheme %q is not in components.securitySchemes", name)
	}
	auth := doctree.NewMap(req)
	if v := scheme.Get("x-amazon-apigateway-authtype"); v != nil && strings.EqualFold(v.Scalar(), "awsSigv4") {
		auth.Set("type", doctree.Str("iam", v))
		return auth, nil
	}
	a := scheme.Get("x-amazon-apigateway-authorizer")
	if a == nil {
		return nil, im.errorf(scheme, "security scheme %q has no x-amazon-apigateway-authorizer (nor x-amazon-apigateway-authtype: awsSigv4): Gatehouse cannot check it", name)
	}
	kind, err := im.authorizer(name, a)
	if err != nil {
		return nil, err
	}
	auth.Set("type", doctree.Str(kind, a))
	auth.Set("authorizer", doctree.Str(name, req))
	if kind == "jwt" && scopes != nil && scopes.Kind == doctree.List && len(scopes.Items) > 0 {
		auth.Set("scopes", scopes)
	}
	return auth, nil
}

// authorizer adds the authorizer of the security scheme name (its x-amazon-apigateway-authorizer a)
// to the definition, once, and returns its stack-file type.
func (im *importer) authorizer(name string, a *doctree.Node) (string, error) {
	typ := a.Get("type")
	def := doctree.NewMap(a)
	kind := ""
	switch strings.ToLower(typ.Scalar()) {
	case "jwt":
		kind = "jwt"
		jc := a.Get("jwtConfiguration")
		def.Set("type", doctree.Str("jwt", typ))
		if v := jc.Get("issuer"); v != nil {
			def.Set("issuer", v)
		}
		if v := jc.Get("audience"); v != nil {
			def.Set("audiences", v)
		}
		if v := a.Get("identitySource"); v != nil {
			src := strings.TrimSpace(strings.Split(v.Scalar(), ",")[0])
			def.Set("identitySource", doctree.Str(src, v))
		}
	case "request":
		kind = "function"
		uri := a.Get("authorizerUri")
		fn, ok := FunctionOfURI(uri.Scalar())
		if uri == nil || !ok {
			return "", im.errorf(uri, "authorizerUri %q: want API Gateway's invocation ARN of a function, or its ARN or name", uri.Scalar())
		}
		def.Set("type", doctree.Str("function", typ))
		def.Set("function", doctree.Str(fn, uri))
		if v := a.Get("identitySource"); v != nil {
			var sources []*doctree.Node
			for _, s := range strings.Split(v.Scalar(), ",") {
				if s = strings.TrimSpace(s); s != "" {
					sources = append(sources, doctree.Str(s, v))
				}
			}
			def.Set("identitySources", doctree.NewList(v, sources...))
		}
		if v := a.Get("enableSimpleResponses"); v != nil {
			def.Set("simpleResponses", v)
		}
		if v := a.Get("authorizerResultTtlInSeconds"); v != nil {
			sec, err := strconv.Atoi(v.Scalar())
			if err != nil {
				return "", im.errorf(v, "authorizerResultTtlInSeconds %q: want a whole number of seconds", v.Scalar())
			}
			def.Set("resultTtl", doctree.Str(fmt.Sprintf("%ds", sec), v))
		}
		if v := a.Get("authorizerPayloadFormatVersion"); v != nil && v.Scalar() != "2.0" {
			return "", im.errorf(v, "authorizerPayloadFormatVersion %s is not served yet: Gatehouse calls authorizers with payload format 2.0", v.Scalar())
		}
	case "token":
		return "", im.errorf(typ, "TOKEN authorizers belong to REST APIs, which are not served yet: use a request authorizer")
	default:
		return "", im.errorf(a, "authorizer type %q: want jwt or request", typ.Scalar())
	}
	if im.auths.Get(name) == nil {
		im.auths.Set(name, def)
	}
	return kind, nil
}

// FunctionOfURI is the function an integration's or authorizer's URI names, as a stack file's
// target (NAME or NAME:QUALIFIER): a function name, its ARN (arn:aws:lambda:REGION:ACCOUNT:
// function:NAME[:QUALIFIER]), or API Gateway's invocation ARN of it (arn:aws:apigateway:REGION:
// lambda:path/2015-03-31/functions/ARN/invocations). ok is false when uri is none of these.
func FunctionOfURI(uri string) (target string, ok bool) {
	if _, rest, found := strings.Cut(uri, ":lambda:path/2015-03-31/functions/"); found {
		uri = strings.TrimSuffix(rest, "/invocations")
	}
	if rest, found := strings.CutPrefix(uri, "arn:"); found {
		parts := strings.Split(rest, ":")
		// aws:lambda:REGION:ACCOUNT:function:NAME[:QUALIFIER]
		if len(parts) < 6 || parts[1] != "lambda" || parts[4] != "function" {
			return "", false
		}
		uri = strings.Join(parts[5:], ":")
	} else if _, rest, found := strings.Cut(uri, ":function:"); found { // ACCOUNT:function:NAME, a partial ARN
		uri = rest
	}
	name, qualifier, hasQualifier := strings.Cut(uri, ":")
	if !nameChars(name, "") || hasQualifier && !nameChars(qualifier, "$") {
		return "", false
	}
	return uri, true
}

// nameChars reports whether s is non-empty and holds only letters, digits, - and _, and extra.
func nameChars(s, extra string) bool {
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || strings.ContainsRune(extra, c)) {
			return false
		}
	}
	return s != ""
}
