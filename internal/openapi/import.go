// Package openapi reads and writes HTTP and REST APIs as OpenAPI documents in API Gateway's
// dialect: a path per route, an operation per method (x-amazon-apigateway-any-method for ANY, the
// path /$default for an HTTP API's $default route), each with its x-amazon-apigateway-integration
// (aws_proxy to a function, http_proxy to a backend URL with its parameter mappings, or mock in
// REST APIs' form) and its security, authorizers as security schemes with
// x-amazon-apigateway-authorizer (or x-amazon-apigateway-authtype awsSigv4 for IAM), and CORS as
// x-amazon-apigateway-cors. A REST API's document adds request validators and models (the
// operation's parameters and requestBody, components.schemas), gateway responses, binary media
// types, the minimum compression size, token authorizers and the api_key scheme; REST APIs'
// Swagger 2.0 documents are read too.
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
	"slices"
	"strconv"
	"strings"

	"gatehouse.dev/gatehouse/internal/doctree"
	"gatehouse.dev/gatehouse/internal/spec"
	"gatehouse.dev/gatehouse/internal/yamldecode"
)

// MaxDocumentBytes bounds an OpenAPI document.
const MaxDocumentBytes = 4 << 20

// AnyMethod is the operation key API Gateway uses for a route of any method.
const AnyMethod = "x-amazon-apigateway-any-method"

// binaryMediaTypes is the root extension of a REST API's binary media types.
const binaryMediaTypes = "x-amazon-apigateway-binary-media-types"

// Imported is an API read from an OpenAPI document.
type Imported struct {
	// Name is info.title; Description info.description.
	Name, Description string
	// Type is the API's type, spec.APITypeHTTP or spec.APITypeREST; Reason says why, for
	// messages: what in the document decided it (see ImportAs), or that the caller asked for it.
	Type, Reason string
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
	rest    bool          // the document is read as a REST API's
	swagger bool          // a Swagger 2.0 document
	schemes *doctree.Node // components.securitySchemes (securityDefinitions in Swagger 2.0)
	out     *Imported
	auths   *doctree.Node // the definition's authorizers:

	// A REST API's models: (components.schemas, definitions in Swagger 2.0, and the inline
	// schemas of request bodies), where $refs to them start, its request validators by name and
	// the document's default validator.
	models           *doctree.Node
	schemaRef        string
	validators       map[string]validator
	defaultValidator *doctree.Node
}

func (im *importer) errorf(n *doctree.Node, format string, args ...any) error {
	return doctree.Errorf(im.file, n, format, args...)
}

func (im *importer) notice(n *doctree.Node, format string, args ...any) {
	im.out.Notices = append(im.out.Notices, doctree.Errorf(im.file, n, format, args...))
}

// schemesKey is where the document keeps its security schemes, for messages.
func (im *importer) schemesKey() string {
	if im.swagger {
		return "securityDefinitions"
	}
	return "components.securitySchemes"
}

// Import reads an API from doc, an OpenAPI 3 document or a REST API's Swagger 2.0 one: an HTTP API
// or a REST API, as the document's content says (see ImportAs). The first problem that stops it
// is an error placed in the document; what it skips is in Notices.
func Import(file string, doc *doctree.Node) (*Imported, error) { return ImportAs(file, doc, "") }

// ImportAs is Import of an API of type apiType, spec.APITypeHTTP or spec.APITypeREST, for callers
// that know which they make (API Gateway v2's ImportApi makes HTTP APIs). With apiType "", the
// first of these rules that holds decides:
//
//  1. x-amazon-apigateway-importexport-version at the root (every HTTP API export has it): HTTP.
//  2. swagger: "2.0": REST.
//  3. Something only HTTP APIs have: an integration's payloadFormatVersion, the path /$default, a
//     jwt authorizer, an authorizer's authorizerPayloadFormatVersion or enableSimpleResponses:
//     HTTP.
//  4. Something only REST APIs have: x-amazon-apigateway-request-validators, -request-validator,
//     -gateway-responses, -api-key-source or -minimum-compression-size, a token authorizer, an
//     identitySource in REST's form (method.request.header.NAME), an api_key security scheme
//     (x-api-key in a header), or an aws_proxy or http_proxy integration (which in an HTTP API's
//     document would have a payloadFormatVersion): REST.
//  5. Otherwise: HTTP.
//
// A Swagger 2.0 document is read only as a REST API's.
func ImportAs(file string, doc *doctree.Node, apiType string) (*Imported, error) {
	im := &importer{file: file, doc: doc, out: &Imported{}}
	if doc == nil || doc.Kind != doctree.Map {
		return nil, im.errorf(doc, "an OpenAPI document is a mapping with openapi:, info: and paths:")
	}
	version := doc.Get("openapi")
	if v := doc.Get("swagger"); v != nil {
		if v.Scalar() != "2.0" {
			return nil, im.errorf(v, "swagger: %s: want \"2.0\" (a REST API's Swagger document), or an OpenAPI 3 document", v.Scalar())
		}
		im.swagger, version = true, v
	} else if version == nil || !strings.HasPrefix(version.Scalar(), "3.") {
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
	switch apiType {
	case "":
		apiType, im.out.Reason = documentType(doc)
	case spec.APITypeHTTP, spec.APITypeREST:
		im.out.Reason = "it is imported as one"
	default:
		return nil, fmt.Errorf("openapi: unknown API type %q: want %q or %q", apiType, spec.APITypeHTTP, spec.APITypeREST)
	}
	if im.swagger && apiType != spec.APITypeREST {
		return nil, im.errorf(version, "this is a Swagger %s document, which Gatehouse reads as a REST API's: an HTTP API's document is OpenAPI 3 (API Gateway exports it with --specification OAS30)", version.Scalar())
	}
	im.rest, im.out.Type = apiType == spec.APITypeREST, apiType
	im.schemes = doc.Get("components").Get("securitySchemes")
	if im.swagger {
		im.schemes = doc.Get("securityDefinitions")
	}

	def := doctree.NewMap(doc)
	def.Set("type", doctree.Str(apiType, version))
	im.auths = doctree.NewMap(im.schemes)
	routes := doctree.NewMap(doc.Get("paths"))
	for i, k := range doc.Keys {
		v := doc.Vals[i]
		switch {
		case k == "x-amazon-apigateway-cors":
			def.Set("cors", v)
		case k == "x-amazon-apigateway-importexport-version", !strings.HasPrefix(k, "x-amazon-apigateway-"):
		case im.rest:
			if err := im.restRoot(def, k, v); err != nil {
				return nil, err
			}
		case slices.Contains(restOnlyRoot, k), k == binaryMediaTypes:
			im.notice(v, "%s belongs to REST APIs, and this document is read as an HTTP API (%s): ignored", k, im.out.Reason)
		default:
			im.notice(v, "%s is not served locally: ignored", k)
		}
	}
	if im.rest {
		im.readModels()
	}
	if v := im.defaultValidator; v != nil {
		if _, ok := im.validators[v.Scalar()]; !ok {
			return nil, im.errorf(v, "request validator %q is not in x-amazon-apigateway-request-validators", v.Scalar())
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
			route, err := im.route(op, item, routeKey, defaultSecurity)
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
	if im.rest && len(im.models.Keys) > 0 {
		def.Set("models", im.models)
	}
	def.Set("routes", routes)
	im.out.Definition = def
	return im.out, nil
}

// route makes one operation's route (item is its path item); nil (with a notice) when it has no
// integration to serve.
func (im *importer) route(op, item *doctree.Node, routeKey string, defaultSecurity *doctree.Node) (*doctree.Node, error) {
	it := op.Get("x-amazon-apigateway-integration")
	if it == nil {
		im.notice(op, "%s has no x-amazon-apigateway-integration: not served", routeKey)
		return nil, nil
	}
	for i, k := range op.Keys {
		switch {
		case !strings.HasPrefix(k, "x-amazon-apigateway-"), k == "x-amazon-apigateway-integration":
		case k == "x-amazon-apigateway-request-validator" && im.rest:
		case k == "x-amazon-apigateway-request-validator":
			im.notice(op.Vals[i], "%s belongs to REST APIs, and this document is read as an HTTP API (%s): ignored", k, im.out.Reason)
		default:
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
		if err := im.security(route, security); err != nil {
			return nil, err
		}
	}
	if im.rest {
		request, err := im.request(op, item, routeKey)
		if err != nil {
			return nil, err
		}
		if request != nil {
			route.Set("request", request)
		}
	}
	return route, nil
}

// security reads an operation's security requirements into route: an api_key scheme makes the
// route ask for an API key (apiKeyRequired); one other scheme at most, an authorizer or IAM, is its
// authorization.
func (im *importer) security(route, security *doctree.Node) error {
	if security.Kind != doctree.List {
		return im.errorf(security, "security: want a list of requirements")
	}
	var req, scopes *doctree.Node // the requirement naming the authorization, and its scopes
	var name string
	for _, r := range security.Items {
		for k, v := range r.All() {
			if isAPIKeyScheme(im.schemes.Get(k)) {
				route.Set("apiKeyRequired", boolean(true, r))
				continue
			}
			if req != nil {
				return im.errorf(r, "a route has one authorizer here: the operation lists more than one security requirement")
			}
			req, name, scopes = r, k, v
		}
	}
	if req == nil {
		return nil // security: [] or [{}]: open
	}
	scheme := im.schemes.Get(name)
	if scheme == nil {
		return im.errorf(req, "security scheme %q is not in %s", name, im.schemesKey())
	}
	auth := doctree.NewMap(req)
	if v := scheme.Get("x-amazon-apigateway-authtype"); v != nil && strings.EqualFold(v.Scalar(), "awsSigv4") {
		auth.Set("type", doctree.Str("iam", v))
		route.Set("authorization", auth)
		return nil
	}
	a := scheme.Get("x-amazon-apigateway-authorizer")
	if a == nil {
		return im.errorf(scheme, "security scheme %q has no x-amazon-apigateway-authorizer (nor x-amazon-apigateway-authtype: awsSigv4, nor is it an API key in the %s header): Gatehouse cannot check it", name, spec.APIKeyHeader)
	}
	kind, err := im.authorizer(name, scheme, a)
	if err != nil {
		return err
	}
	auth.Set("type", doctree.Str(kind, a))
	auth.Set("authorizer", doctree.Str(name, req))
	if kind == "jwt" && scopes != nil && scopes.Kind == doctree.List && len(scopes.Items) > 0 {
		auth.Set("scopes", scopes)
	}
	route.Set("authorization", auth)
	return nil
}

// authorizer adds the authorizer of the security scheme name (its x-amazon-apigateway-authorizer
// a) to the definition, once, and returns the route's authorization type.
func (im *importer) authorizer(name string, scheme, a *doctree.Node) (string, error) {
	typ := a.Get("type")
	t := strings.ToLower(typ.Scalar())
	if im.rest {
		switch t {
		case "token", "request":
			return "function", im.restAuthorizer(name, scheme, a, typ)
		case "jwt":
			return "", im.errorf(typ, "jwt authorizers belong to HTTP APIs, and this document is read as a REST API (%s): a REST API checks tokens with a token authorizer", im.out.Reason)
		}
		return "", im.errorf(cmpNode(typ, a), "authorizer type %q: want token or request (a REST API's Lambda authorizers)", typ.Scalar())
	}
	def := doctree.NewMap(a)
	kind := ""
	switch t {
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
			def.Set("identitySources", identitySources(v))
		}
		if v := a.Get("enableSimpleResponses"); v != nil {
			def.Set("simpleResponses", v)
		}
		if v := a.Get("authorizerResultTtlInSeconds"); v != nil {
			ttl, err := im.seconds(v)
			if err != nil {
				return "", err
			}
			def.Set("resultTtl", ttl)
		}
		if v := a.Get("authorizerPayloadFormatVersion"); v != nil && v.Scalar() != "2.0" {
			return "", im.errorf(v, "authorizerPayloadFormatVersion %s is not served yet: Gatehouse calls authorizers with payload format 2.0", v.Scalar())
		}
	case "token":
		return "", im.errorf(typ, "TOKEN authorizers belong to REST APIs, and this document is read as an HTTP API (%s): use a request authorizer", im.out.Reason)
	default:
		return "", im.errorf(cmpNode(typ, a), "authorizer type %q: want jwt or request (an HTTP API's authorizers)", typ.Scalar())
	}
	if im.auths.Get(name) == nil {
		im.auths.Set(name, def)
	}
	return kind, nil
}

// identitySources is an authorizer's identitySource v, comma-separated, as a list, each source in
// the stack file's form ($request.header.NAME; REST's method.request.header.NAME is rewritten).
func identitySources(v *doctree.Node) *doctree.Node {
	var sources []*doctree.Node
	for _, s := range strings.Split(v.Scalar(), ",") {
		if s = strings.TrimSpace(s); s != "" {
			sources = append(sources, doctree.Str(stackIdentitySource(s), v))
		}
	}
	return doctree.NewList(v, sources...)
}

// seconds is authorizerResultTtlInSeconds v as a stack file's duration.
func (im *importer) seconds(v *doctree.Node) (*doctree.Node, error) {
	sec, err := strconv.Atoi(v.Scalar())
	if err != nil {
		return nil, im.errorf(v, "authorizerResultTtlInSeconds %q: want a whole number of seconds", v.Scalar())
	}
	return doctree.Str(fmt.Sprintf("%ds", sec), v), nil
}

// boolean is a boolean node of b, placed where at is.
func boolean(b bool, at *doctree.Node) *doctree.Node {
	v := doctree.Str(strconv.FormatBool(b), at)
	v.Kind = doctree.Bool
	return v
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
