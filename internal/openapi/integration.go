package openapi

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"gatehouse.dev/gatehouse/internal/doctree"
)

// Reading an operation's x-amazon-apigateway-integration into a stack file's integration: aws_proxy
// (a function), http_proxy (a backend URL) and mock (REST APIs' form: the request template picks a
// status code, and the response chosen by it gives the headers and the body). A REST API's
// function integrations send payload format 1.0, the stack file's default for them.

// integrationsRef is where a $ref to a shared integration points.
const integrationsRef = "#/components/x-amazon-apigateway-integrations/"

// resolveIntegration returns the integration it stands for: itself, or the one of
// components.x-amazon-apigateway-integrations its $ref names.
func (im *importer) resolveIntegration(it *doctree.Node) (*doctree.Node, error) {
	ref := it.Get("$ref")
	if ref == nil {
		return it, nil
	}
	name, ok := strings.CutPrefix(ref.Scalar(), integrationsRef)
	shared := im.doc.Get("components").Get("x-amazon-apigateway-integrations").Get(name)
	if !ok || shared == nil {
		return nil, im.errorf(ref, "$ref %q: want %sNAME, an integration of the document's components", ref.Scalar(), integrationsRef)
	}
	if shared.Kind != doctree.Map {
		return nil, im.errorf(shared, "want an integration (a mapping with type:), not %s", shared.Kind)
	}
	return shared, nil
}

// unread notices a key of the integration that Gatehouse does not read.
func (im *importer) unread(v *doctree.Node, key string) {
	im.notice(v, "x-amazon-apigateway-integration.%s is not served locally: ignored", key)
}

// functionIntegration reads an aws_proxy integration: a function, named by uri.
func (im *importer) functionIntegration(it, typ *doctree.Node) (*doctree.Node, error) {
	uri := it.Get("uri")
	target, ok := FunctionOfURI(uri.Scalar())
	if uri == nil || !ok {
		return nil, im.errorf(cmpNode(uri, it), "uri %q: want a function's ARN or name, or API Gateway's invocation ARN of one", uri.Scalar())
	}
	integration := doctree.NewMap(it)
	integration.Set("type", doctree.Str("function", typ))
	integration.Set("target", doctree.Str(target, uri))
	for i, k := range it.Keys {
		v := it.Vals[i]
		switch k {
		case "type", "uri", "httpMethod", "connectionType", "passthroughBehavior", "credentials":
		case "payloadFormatVersion":
			integration.Set("payloadFormatVersion", doctree.Str(v.Scalar(), v))
		case "timeoutInMillis":
			if err := im.timeout(v, integration); err != nil {
				return nil, err
			}
		case "responseParameters":
			if rp := im.responseParameters(v); rp != nil {
				integration.Set("responseParameters", rp)
			}
		case "requestParameters":
			im.notice(v, "x-amazon-apigateway-integration.requestParameters of an aws_proxy integration are not served: the function receives the whole request in its event; ignored")
		default:
			im.restOrUnread(v, k)
		}
	}
	return integration, nil
}

// restOrUnread passes over the keys of a REST API's proxy integration that change nothing here
// (responses, which proxies do not use, and cacheNamespace), notices cacheKeyParameters, and
// notices any other key with unread.
func (im *importer) restOrUnread(v *doctree.Node, key string) {
	switch {
	case im.rest && (key == "responses" || key == "cacheNamespace"):
	case im.rest && key == "cacheKeyParameters":
		if len(v.List()) > 0 {
			im.notice(v, "x-amazon-apigateway-integration.cacheKeyParameters: a route's cache keys go with its stage's cache, which a document does not carry; write them in the stack file (routes' cache: {keys: [...]}, and the stage's cache:): ignored")
		}
	default:
		im.unread(v, key)
	}
}

// proxyIntegration reads an http_proxy integration of the route key: a backend URL, with stage
// variables and path parameters as written. nil, with a notice, for a private integration.
func (im *importer) proxyIntegration(it, typ *doctree.Node, routeKey string) (*doctree.Node, error) {
	if ct := it.Get("connectionType"); strings.EqualFold(ct.Scalar(), "VPC_LINK") {
		im.notice(ct, "%s: private integrations (connectionType VPC_LINK) are not served locally: the route is skipped; point uri at the backend's URL", routeKey)
		return nil, nil
	}
	uri := it.Get("uri")
	if uri.Scalar() == "" {
		return nil, im.errorf(cmpNode(uri, it), "an http_proxy integration's uri is the backend's URL, such as https://backend.example.com/{proxy}")
	}
	integration := doctree.NewMap(it)
	integration.Set("type", doctree.Str("http_proxy", typ))
	integration.Set("target", doctree.Str(uri.Scalar(), uri))
	for i, k := range it.Keys {
		v := it.Vals[i]
		switch k {
		case "type", "uri", "connectionType", "passthroughBehavior":
		case "httpMethod":
			integration.Set("method", doctree.Str(strings.ToUpper(v.Scalar()), v))
		case "payloadFormatVersion":
			integration.Set("payloadFormatVersion", doctree.Str(v.Scalar(), v))
		case "timeoutInMillis":
			if err := im.timeout(v, integration); err != nil {
				return nil, err
			}
		case "requestParameters":
			if rp := im.requestParameters(v); rp != nil {
				integration.Set("requestParameters", rp)
			}
		case "responseParameters":
			if rp := im.responseParameters(v); rp != nil {
				integration.Set("responseParameters", rp)
			}
		case "tlsConfig":
			if tls := im.tlsConfig(v); tls != nil {
				integration.Set("tls", tls)
			}
		default:
			im.restOrUnread(v, k)
		}
	}
	return integration, nil
}

// tlsConfig reads an http_proxy integration's tlsConfig; nil when it sets nothing served.
func (im *importer) tlsConfig(v *doctree.Node) *doctree.Node {
	tls := doctree.NewMap(v)
	for k, x := range v.All() {
		switch k {
		case "serverNameToVerify":
			tls.Set("serverName", doctree.Str(x.Scalar(), x))
		case "insecureSkipVerification":
			if x.Scalar() == "true" {
				im.notice(x, "tlsConfig.insecureSkipVerification is not served: Gatehouse verifies every backend's certificate (a stack file's tls.caFile names the authorities of a private one); ignored")
			}
		default:
			im.notice(x, "tlsConfig.%s is not served locally: ignored", k)
		}
	}
	if len(tls.Keys) == 0 {
		return nil
	}
	return tls
}

// httpMappingActions are the actions that start HTTP APIs' parameter-mapping keys.
var httpMappingActions = []string{"append:", "overwrite:", "remove:"}

// requestParameters reads HTTP APIs' request parameter mappings ("overwrite:header.x" →
// "$request.header.y"). REST APIs' form ("integration.request.header.x" → "method.request…") is
// noticed and skipped in an HTTP API; in a REST API, a header's or query string parameter's from a
// request value, a literal, context or stage variable is read as HTTP APIs' overwrite:, one that
// passes a path parameter on is done by the URL's {NAME}, and others are noticed and skipped. nil
// when nothing is left.
func (im *importer) requestParameters(v *doctree.Node) *doctree.Node {
	if v.Kind != doctree.Map {
		return v // refused, at its place, by the stack file's checks
	}
	out := doctree.NewMap(v)
	for k, x := range v.All() {
		if im.rest && !hasAnyPrefix(k, httpMappingActions) {
			key, val, skip, ok := restRequestMapping(k, x.Scalar())
			switch {
			case skip:
			case ok:
				out.Set(key, doctree.Str(val, x))
			default:
				im.notice(x, "requestParameters %q: %s is not served: ignored (Gatehouse maps integration.request.header.NAME and integration.request.querystring.NAME from method.request.*, context.*, stageVariables.* and 'literals')", k, x.Scalar())
			}
			continue
		}
		if !hasAnyPrefix(k, httpMappingActions) {
			im.notice(x, "requestParameters %q is a REST API's mapping, not served: ignored (HTTP APIs write overwrite:header.NAME: $request.header.NAME)", k)
			continue
		}
		out.Set(k, x)
	}
	if len(out.Keys) == 0 {
		return nil
	}
	return out
}

// responseParameters reads HTTP APIs' response parameter mappings, keyed by the integration's
// status code; other keys (REST APIs' method.response.header.NAME) are noticed and skipped. nil when
// nothing is left.
func (im *importer) responseParameters(v *doctree.Node) *doctree.Node {
	if v.Kind != doctree.Map {
		return v // refused, at its place, by the stack file's checks
	}
	out := doctree.NewMap(v)
	for k, x := range v.All() {
		if _, err := strconv.Atoi(k); err != nil {
			im.notice(x, "responseParameters %q is a REST API's mapping, not served: ignored (HTTP APIs key responseParameters by status code: \"200\": {overwrite:header.NAME: VALUE})", k)
			continue
		}
		out.Set(k, x)
	}
	if len(out.Keys) == 0 {
		return nil
	}
	return out
}

// mockIntegration reads a mock integration in REST APIs' form: requestTemplates'
// {"statusCode": N} picks the entry of responses whose key (a regular expression) matches N, else
// the default one; its statusCode is the answer's, its responseParameters'
// method.response.header.NAME: "'value'" its headers and its responseTemplates' application/json
// its body. nil, with a notice, when the request template computes the status code.
func (im *importer) mockIntegration(it, typ *doctree.Node, routeKey string) (*doctree.Node, error) {
	status, statusAt := 200, typ
	if tmpl := requestTemplate(it.Get("requestTemplates")); tmpl != nil {
		n, ok := templateStatus(tmpl.Scalar())
		if !ok {
			im.notice(tmpl, "%s: a mock's request template is read as {\"statusCode\": N}; one that computes the status code is not served: the route is skipped", routeKey)
			return nil, nil
		}
		status, statusAt = n, tmpl
	}
	integration := doctree.NewMap(it)
	integration.Set("type", doctree.Str("mock", typ))
	response, err := im.mockResponse(it.Get("responses"), status)
	if err != nil {
		return nil, err
	}
	for i, k := range it.Keys {
		v := it.Vals[i]
		switch k {
		case "type", "requestTemplates", "responses", "passthroughBehavior":
		case "timeoutInMillis":
			if err := im.timeout(v, integration); err != nil {
				return nil, err
			}
		default:
			im.unread(v, k)
		}
	}
	if response == nil {
		integration.Set("statusCode", number(status, statusAt))
		return integration, nil
	}
	if sc := response.Get("statusCode"); sc != nil {
		n, err := strconv.Atoi(sc.Scalar())
		if err != nil {
			return nil, im.errorf(sc, "statusCode %q: want a status code such as 200", sc.Scalar())
		}
		status, statusAt = n, sc
	}
	integration.Set("statusCode", number(status, statusAt))
	headers := doctree.NewMap(response.Get("responseParameters"))
	for k, v := range response.All() {
		switch k {
		case "statusCode":
		case "responseParameters":
			for p, x := range v.All() {
				name, isHeader := strings.CutPrefix(p, "method.response.header.")
				val := x.Scalar()
				if !isHeader || len(val) < 2 || val[0] != '\'' || val[len(val)-1] != '\'' {
					im.notice(x, "%s: a mock answers with literal headers (method.response.header.NAME: \"'value'\"); %s: %s is not served: ignored", routeKey, p, val)
					continue
				}
				headers.Set(name, doctree.Str(val[1:len(val)-1], x))
			}
		case "responseTemplates":
			for ct, x := range v.All() {
				if ct != "application/json" {
					im.notice(x, "%s: a mock's body is its application/json template; the %s one is not served: ignored", routeKey, ct)
					continue
				}
				integration.Set("body", doctree.Str(x.Scalar(), x))
			}
		default:
			im.notice(v, "%s: responses' %s is not served locally: ignored", routeKey, k)
		}
	}
	if len(headers.Keys) > 0 {
		integration.Set("headers", headers)
	}
	return integration, nil
}

// requestTemplate is a mock's request template: the application/json one, or the only one.
func requestTemplate(templates *doctree.Node) *doctree.Node {
	if t := templates.Get("application/json"); t != nil {
		return t
	}
	if templates != nil && len(templates.Keys) == 1 {
		return templates.Vals[0]
	}
	return nil
}

// templateStatus is the status code of a mock's request template, {"statusCode": N} (N a number
// or a string of digits).
func templateStatus(tmpl string) (int, bool) {
	var t struct{ StatusCode json.RawMessage }
	if err := json.Unmarshal([]byte(tmpl), &t); err != nil || t.StatusCode == nil {
		return 0, false
	}
	var s string
	if json.Unmarshal(t.StatusCode, &s) != nil {
		s = string(t.StatusCode)
	}
	n, err := strconv.Atoi(s)
	return n, err == nil
}

// mockResponse is the entry of a mock's responses that answers status: the first whose key, a
// regular expression, matches all of it, else "default"; nil when there is neither.
func (im *importer) mockResponse(responses *doctree.Node, status int) (*doctree.Node, error) {
	code := strconv.Itoa(status)
	for k, r := range responses.All() {
		if k == "default" {
			continue
		}
		re, err := regexp.Compile("^(?:" + k + ")$")
		if err != nil {
			return nil, im.errorf(r, "responses %q: the key is a regular expression matched against the status code: %v", k, err)
		}
		if re.MatchString(code) {
			return im.responseEntry(r)
		}
	}
	if r := responses.Get("default"); r != nil {
		return im.responseEntry(r)
	}
	return nil, nil
}

// responseEntry checks that r, an entry of a mock's responses, is a mapping.
func (im *importer) responseEntry(r *doctree.Node) (*doctree.Node, error) {
	if r.Kind != doctree.Map {
		return nil, im.errorf(r, "want a response (a mapping with statusCode:), not %s", r.Kind)
	}
	return r, nil
}

// timeout sets the integration's timeout from timeoutInMillis v.
func (im *importer) timeout(v, integration *doctree.Node) error {
	ms, err := strconv.Atoi(v.Scalar())
	if err != nil {
		return im.errorf(v, "timeoutInMillis %q: want a whole number of milliseconds", v.Scalar())
	}
	integration.Set("timeout", doctree.Str(fmt.Sprintf("%dms", ms), v))
	return nil
}

// number is a number node of n, placed where at is.
func number(n int, at *doctree.Node) *doctree.Node {
	v := doctree.Str(strconv.Itoa(n), at)
	v.Kind = doctree.Number
	return v
}

func cmpNode(a, b *doctree.Node) *doctree.Node {
	if a != nil {
		return a
	}
	return b
}

func hasAnyPrefix(s string, prefixes []string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}
