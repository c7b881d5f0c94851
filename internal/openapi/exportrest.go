package openapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"gatehouse.dev/gatehouse/internal/spec"
)

// Writing what only REST APIs have, in the form Import reads back (see rest.go).

// The request validators Export writes, named as API Gateway's console names them.
const (
	validateBody       = "Validate body"
	validateParameters = "Validate query string parameters and headers"
	validateBoth       = "Validate body, query string parameters, and headers"
)

// exportRESTIntegration writes a REST route's integration: as exportIntegration does, but without
// payloadFormatVersion (REST APIs' integrations have none, which is how Import knows the document
// is a REST API's), with function ARNs in API Gateway's invocation form, an http_proxy
// integration's mappings in REST's form where they have one, and the route's cache keys as
// cacheKeyParameters.
func exportRESTIntegration(rt spec.Route, invocationARN func(string) string) map[string]any {
	in := rt.Integration
	it := exportIntegration(in, invocationARN)
	delete(it, "payloadFormatVersion")
	switch in.Type {
	case spec.IntegrationFunction:
		delete(it, "connectionType")
		it["passthroughBehavior"] = "when_no_match"
	case spec.IntegrationHTTPProxy:
		it["passthroughBehavior"] = "when_no_match"
		if params := restRequestParameters(rt); len(params) > 0 {
			it["requestParameters"] = params
		}
	}
	if rt.Cache != nil && len(rt.Cache.Keys) > 0 {
		keys := make([]string, len(rt.Cache.Keys))
		for i, k := range rt.Cache.Keys {
			keys[i] = "method.request." + k
		}
		it["cacheKeyParameters"] = keys
	}
	return it
}

// restRequestParameters are an http_proxy route's request mappings as a REST API writes them:
// integration.request.path.NAME: method.request.path.NAME for each path parameter its URL names,
// which API Gateway needs to fill {NAME}, and an overwrite of a header or query string parameter
// from a request value, context or stage variable, or literal, as integration.request.…; other
// mappings (appends, removes, templates) keep HTTP APIs' form, which only Gatehouse reads.
func restRequestParameters(rt spec.Route) map[string]string {
	params := map[string]string{}
	_, path, _ := strings.Cut(rt.Key, " ")
	for _, name := range pathParamNames(path) {
		if strings.Contains(rt.Integration.Target, "{"+name+"}") {
			params["integration.request.path."+name] = "method.request.path." + name
		}
	}
	for k, v := range rt.Integration.RequestParameters {
		target, ok := strings.CutPrefix(k, "overwrite:")
		src := restSource(v, false)
		if ok && (strings.HasPrefix(target, "header.") || strings.HasPrefix(target, "querystring.")) &&
			(!strings.Contains(v, "$") || !strings.HasPrefix(src, "'")) {
			params["integration.request."+target] = src
			continue
		}
		params[k] = v
	}
	return params
}

// pathParamNames are the names of a route path's parameters: id of {id}, proxy of {proxy+}.
func pathParamNames(path string) []string {
	var names []string
	for _, seg := range strings.Split(path, "/") {
		if strings.HasPrefix(seg, "{") && strings.HasSuffix(seg, "}") {
			names = append(names, strings.TrimSuffix(seg[1:len(seg)-1], "+"))
		}
	}
	return names
}

// exportRequest writes a REST route's request validation into its operation op: its path
// parameters (required, as API Gateway writes them) and request parameters as parameters, its
// models as requestBody, and its request validator. It returns the validator's name and
// definition; "" when the route validates nothing.
func exportRequest(op map[string]any, rt spec.Route, path string) (string, map[string]bool) {
	var params []map[string]any
	declared := map[string]bool{}
	param := func(name, in string, required bool) {
		params = append(params, map[string]any{"name": name, "in": in, "required": required, "schema": map[string]string{"type": "string"}})
	}
	for _, name := range pathParamNames(path) {
		param(name, "path", true)
		declared["path."+name] = true
	}
	r := rt.Request
	if r == nil {
		r = &spec.RequestValidation{}
	}
	for _, k := range slices.Sorted(maps.Keys(r.Parameters)) {
		place, name, _ := strings.Cut(k, ".")
		if in := map[string]string{"querystring": "query", "header": "header", "path": "path"}[place]; in != "" && !declared[k] {
			param(name, in, r.Parameters[k])
		}
	}
	if len(params) > 0 {
		op["parameters"] = params
	}
	if len(r.Models) > 0 {
		content := map[string]any{}
		for ct, model := range r.Models {
			content[ct] = map[string]any{"schema": map[string]string{"$ref": schemasRef + model}}
		}
		op["requestBody"] = map[string]any{"content": content}
	}
	var name string
	switch {
	case r.ValidateBody && r.ValidateParameters:
		name = validateBoth
	case r.ValidateBody:
		name = validateBody
	case r.ValidateParameters:
		name = validateParameters
	default:
		return "", nil
	}
	op["x-amazon-apigateway-request-validator"] = name
	return name, map[string]bool{"validateRequestBody": r.ValidateBody, "validateRequestParameters": r.ValidateParameters}
}

// exportRESTRoot writes a REST API's root extensions into doc and its models into components:
// x-amazon-apigateway-api-key-source (always HEADER, and always written: it marks the document as a
// REST API's), the request validators the routes use, binary media types, the minimum
// compression size and gateway responses.
func exportRESTRoot(doc, components map[string]any, api spec.API, validators map[string]any) error {
	doc["x-amazon-apigateway-api-key-source"] = "HEADER"
	if len(validators) > 0 {
		doc["x-amazon-apigateway-request-validators"] = validators
	}
	if api.BinaryMediaTypes != nil {
		doc[binaryMediaTypes] = api.BinaryMediaTypes
	}
	if n := api.MinimumCompressionSize; n != nil {
		doc["x-amazon-apigateway-minimum-compression-size"] = *n
	}
	if api.ResourcePolicy != nil {
		doc["x-amazon-apigateway-policy"] = api.ResourcePolicy
	}
	if len(api.GatewayResponses) > 0 {
		grs := map[string]any{}
		for t, gr := range api.GatewayResponses {
			r := map[string]any{}
			if gr.StatusCode != 0 {
				r["statusCode"] = strconv.Itoa(gr.StatusCode)
			}
			if len(gr.Headers) > 0 {
				params := map[string]string{}
				for h, v := range gr.Headers {
					params["gatewayresponse.header."+h] = restSource(v, true)
				}
				r["responseParameters"] = params
			}
			if gr.Body != "" {
				r["responseTemplates"] = map[string]string{"application/json": gr.Body}
			}
			grs[t] = r
		}
		doc["x-amazon-apigateway-gateway-responses"] = grs
	}
	if len(api.Models) > 0 {
		schemas := map[string]any{}
		for name, m := range api.Models {
			s, err := exportSchema(m.Schema, api.Models)
			if err != nil {
				return fmt.Errorf("models.%s: %w", name, err)
			}
			schemas[name] = s
		}
		components["schemas"] = schemas
	}
	return nil
}

// exportSchema is a model's schema, its keys in their order, with its references to the API's
// other models (API Gateway's model URLs, whatever the API id) written as
// #/components/schemas/NAME.
func exportSchema(schema json.RawMessage, models map[string]spec.Model) (json.RawMessage, error) {
	dec := json.NewDecoder(bytes.NewReader(schema))
	dec.UseNumber()
	var out bytes.Buffer
	write := func(v any) error {
		b, err := json.Marshal(v)
		out.Write(b)
		return err
	}
	var value func() error
	value = func() error {
		t, err := dec.Token()
		if err != nil {
			return err
		}
		d, ok := t.(json.Delim)
		if !ok {
			return write(t)
		}
		out.WriteByte(byte(d))
		for i := 0; dec.More(); i++ {
			if i > 0 {
				out.WriteByte(',')
			}
			if d == '[' {
				if err := value(); err != nil {
					return err
				}
				continue
			}
			k, err := dec.Token()
			if err != nil {
				return err
			}
			if err := write(k); err != nil {
				return err
			}
			out.WriteByte(':')
			if k != "$ref" {
				if err := value(); err != nil {
					return err
				}
				continue
			}
			var ref any
			if err := dec.Decode(&ref); err != nil {
				return err
			}
			if s, ok := ref.(string); ok {
				if name, pointer, ok := modelOfURL(s); ok && models[name].Schema != nil {
					ref = schemasRef + name + pointer
				}
			}
			if err := write(ref); err != nil {
				return err
			}
		}
		end, err := dec.Token()
		if err != nil {
			return err
		}
		out.WriteByte(byte(end.(json.Delim)))
		return nil
	}
	if err := value(); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

// modelOfURL is the model name an API Gateway model URL names,
// https://apigateway.amazonaws.com/restapis/ID/models/NAME, and the JSON pointer of its fragment
// ("/properties/id" of "#/properties/id"; "" for none).
func modelOfURL(ref string) (name, pointer string, ok bool) {
	rest, ok := strings.CutPrefix(ref, "https://apigateway.amazonaws.com/restapis/")
	if !ok {
		return "", "", false
	}
	rest, fragment, _ := strings.Cut(rest, "#")
	parts := strings.Split(rest, "/")
	if len(parts) != 3 || parts[0] == "" || parts[1] != "models" || parts[2] == "" {
		return "", "", false
	}
	return parts[2], fragment, true
}

// exportRESTAuthorizer writes a REST API's token or request authorizer as API Gateway's REST
// exports write Lambda authorizers: an apiKey security scheme (in the header a token authorizer
// reads) with x-amazon-apigateway-authtype custom, identity sources in REST's form.
func exportRESTAuthorizer(au spec.Authorizer, invocationARN func(string) string) map[string]any {
	f := au.Function
	sources := make([]string, len(f.IdentitySources))
	for i, s := range f.IdentitySources {
		sources[i] = restIdentitySource(s)
	}
	a := map[string]any{"type": au.Type, "authorizerUri": invocationARN(f.Function),
		"identitySource":               strings.Join(sources, ", "),
		"authorizerResultTtlInSeconds": int(f.ResultTTL.D() / time.Second)}
	if f.IdentityValidationExpression != "" {
		a["identityValidationExpression"] = f.IdentityValidationExpression
	}
	header := "Unused" // as API Gateway writes a request authorizer's scheme
	if au.Type == spec.AuthorizerToken && len(f.IdentitySources) > 0 {
		header = strings.TrimPrefix(f.IdentitySources[0], spec.IdentitySourceHeader)
	}
	return map[string]any{"type": "apiKey", "name": header, "in": "header",
		"x-amazon-apigateway-authtype": "custom", "x-amazon-apigateway-authorizer": a}
}
