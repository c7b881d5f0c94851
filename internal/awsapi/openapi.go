package awsapi

import (
	"cmp"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/goccy/go-yaml"
)

// The OpenAPI 3.0 documents of HTTP APIs, as API Gateway exports and imports them: a path per route
// key's path, an operation per method (x-amazon-apigateway-any-method for ANY), each with its
// x-amazon-apigateway-integration and its security (the route's authorizer and scopes), the API's
// authorizers as security schemes with x-amazon-apigateway-authorizer, and its CORS as
// x-amazon-apigateway-cors.

// oasIntegration is x-amazon-apigateway-integration.
type oasIntegration struct {
	Type                 string `json:"type"`
	HTTPMethod           string `json:"httpMethod"`
	URI                  string `json:"uri"`
	PayloadFormatVersion string `json:"payloadFormatVersion,omitempty"`
	ConnectionType       string `json:"connectionType,omitempty"`
	TimeoutInMillis      int    `json:"timeoutInMillis,omitempty"`
}

const anyMethod = "x-amazon-apigateway-any-method"

// sigv4Scheme is the security scheme of routes authorized with AWS_IAM.
const sigv4Scheme = "sigv4"

// securitySchemes are a's authorizers as OpenAPI security schemes, by name, and the sigv4 scheme
// when a route uses AWS_IAM.
func (s *Server) securitySchemes(a *gwAPI) map[string]any {
	schemes := map[string]any{}
	for _, rt := range a.Routes {
		if rt.AuthorizationType == "AWS_IAM" {
			schemes[sigv4Scheme] = map[string]any{"type": "apiKey", "name": "Authorization", "in": "header",
				"x-amazon-apigateway-authtype": "awsSigv4"}
		}
	}
	for _, au := range a.Authorizers {
		ext := map[string]any{"identitySource": strings.Join(au.IdentitySource, ", ")}
		scheme := map[string]any{"type": "apiKey", "name": "Authorization", "in": "header", "x-amazon-apigateway-authorizer": ext}
		switch au.Type {
		case "JWT":
			ext["type"] = "jwt"
			ext["jwtConfiguration"] = map[string]any{"issuer": au.Issuer, "audience": au.Audience}
			scheme = map[string]any{"type": "oauth2", "flows": map[string]any{}, "x-amazon-apigateway-authorizer": ext}
		case "REQUEST":
			ext["type"] = "request"
			ext["authorizerUri"] = au.URI
			if !strings.Contains(au.URI, ":lambda:path/") {
				ext["authorizerUri"] = fmt.Sprintf("arn:aws:apigateway:%s:lambda:path/2015-03-31/functions/%s/invocations", s.cfg.Region, au.URI)
			}
			ext["authorizerPayloadFormatVersion"] = cmp.Or(au.PayloadFormatVersion, "2.0")
			ext["authorizerResultTtlInSeconds"] = au.TTLSeconds
			ext["enableSimpleResponses"] = au.SimpleResponses
		}
		schemes[au.Name] = scheme
	}
	return schemes
}

// export writes a's OpenAPI document (HTTP APIs only).
func (s *Server) export(w http.ResponseWriter, req *request, a *gwAPI, spec string) error {
	if spec != "OAS30" {
		return gwBad(fmt.Sprintf("specification %q: want OAS30", spec))
	}
	if a.ProtocolType != "HTTP" {
		return gwBad("only HTTP APIs are exported to OpenAPI")
	}
	q := req.r.URL.Query()
	paths := map[string]map[string]any{}
	keys := make([]string, 0, len(a.Routes))
	for _, rt := range a.Routes {
		keys = append(keys, rt.ID)
	}
	slices.Sort(keys)
	for _, id := range keys {
		rt := a.Routes[id]
		method, path := "ANY", "/$default"
		if rt.RouteKey != "$default" {
			method, path, _ = strings.Cut(rt.RouteKey, " ")
		}
		op := map[string]any{"responses": map[string]any{"default": map[string]string{"description": "Default response for " + rt.RouteKey}}}
		if iid, ok := strings.CutPrefix(rt.Target, "integrations/"); ok && a.Integrations[iid] != nil {
			it := a.Integrations[iid]
			op["x-amazon-apigateway-integration"] = oasIntegration{Type: "aws_proxy", HTTPMethod: "POST", URI: it.URI,
				PayloadFormatVersion: it.PayloadFormatVersion, ConnectionType: "INTERNET", TimeoutInMillis: it.TimeoutMs}
		}
		switch au := a.Authorizers[rt.AuthorizerID]; {
		case rt.AuthorizationType == "AWS_IAM":
			op["security"] = []map[string][]string{{sigv4Scheme: {}}}
		case au != nil:
			scopes := rt.AuthorizationScopes
			if scopes == nil {
				scopes = []string{}
			}
			op["security"] = []map[string][]string{{au.Name: scopes}}
		}
		if paths[path] == nil {
			paths[path] = map[string]any{}
		}
		name := strings.ToLower(method)
		if method == "ANY" {
			name = anyMethod
		}
		paths[path][name] = op
	}
	doc := map[string]any{
		"openapi": "3.0.1",
		"info":    map[string]string{"title": a.Name, "version": a.Created.Format(time.RFC3339)},
		"paths":   paths,
	}
	if stage := q.Get("stageName"); stage != "" && a.Stages[stage] != nil {
		doc["servers"] = []any{map[string]any{"url": strings.TrimSuffix(s.cfg.APIs.GatewayURL, "/") + "/" + a.ID + "/{basePath}",
			"variables": map[string]any{"basePath": map[string]string{"default": stage}}}}
	}
	if a.Description != "" {
		doc["info"].(map[string]string)["description"] = a.Description
	}
	if len(a.CORS) > 0 {
		doc["x-amazon-apigateway-cors"] = a.CORS
	}
	if schemes := s.securitySchemes(a); len(schemes) > 0 {
		doc["components"] = map[string]any{"securitySchemes": schemes}
	}
	body, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return err
	}
	ctype := "application/json"
	if strings.EqualFold(q.Get("outputType"), "YAML") {
		if body, err = yaml.JSONToYAML(body); err != nil {
			return err
		}
		ctype = "application/yaml"
	}
	w.Header().Set("Content-Type", ctype)
	_, err = w.Write(body)
	return err
}

// fromOpenAPI reads an HTTP API's OpenAPI document (JSON or YAML, as export writes it) into a's
// name, description, CORS, integrations and routes, replacing those it had.
func fromOpenAPI(a *gwAPI, body string) error {
	data := []byte(body)
	if !json.Valid(data) {
		j, err := yaml.YAMLToJSON(data)
		if err != nil {
			return gwBad("the body is neither JSON nor YAML: " + err.Error())
		}
		data = j
	}
	var doc struct {
		OpenAPI string `json:"openapi"`
		Info    struct {
			Title, Description string
		} `json:"info"`
		Paths map[string]map[string]json.RawMessage `json:"paths"`
		CORS  json.RawMessage                       `json:"x-amazon-apigateway-cors"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return gwBad("the body is not an OpenAPI document: " + err.Error())
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.") {
		return gwBad(fmt.Sprintf("openapi %q: want an OpenAPI 3 document", doc.OpenAPI))
	}
	if doc.Info.Title == "" {
		return gwBad("info.title, the API's name, is required")
	}
	a.Name, a.Description, a.CORS = doc.Info.Title, doc.Info.Description, doc.CORS
	a.Integrations, a.Routes = map[string]*gwIntegration{}, map[string]*gwRoute{}
	byURI := map[string]string{} // one integration per target, as API Gateway's import makes them
	for _, path := range slices.Sorted(maps.Keys(doc.Paths)) {
		for _, name := range slices.Sorted(maps.Keys(doc.Paths[path])) {
			method := strings.ToUpper(name)
			switch {
			case name == anyMethod:
				method = "ANY"
			case !slices.Contains([]string{"get", "put", "post", "delete", "patch", "head", "options"}, name):
				continue // parameters, summary, other extensions
			}
			var op struct {
				Integration *oasIntegration `json:"x-amazon-apigateway-integration"`
			}
			if err := json.Unmarshal(doc.Paths[path][name], &op); err != nil {
				return gwBad(fmt.Sprintf("paths[%q].%s: %v", path, name, err))
			}
			key := method + " " + path
			if path == "/$default" && method == "ANY" {
				key = "$default"
			}
			rt := &gwRoute{ID: randomID(7), RouteKey: key, AuthorizationType: "NONE"}
			if it := op.Integration; it != nil {
				if !strings.EqualFold(it.Type, "aws_proxy") {
					return gwBad(fmt.Sprintf("paths[%q].%s: integration type %q is not served yet: use aws_proxy to a function", path, name, it.Type))
				}
				if _, err := functionOfURI(it.URI); err != nil {
					return err
				}
				iid, ok := byURI[it.URI+"|"+it.PayloadFormatVersion]
				if !ok {
					iid = randomID(7)
					pfv := it.PayloadFormatVersion
					if pfv == "" {
						pfv = "2.0"
					}
					a.Integrations[iid] = &gwIntegration{ID: iid, Type: "AWS_PROXY", URI: it.URI, PayloadFormatVersion: pfv, TimeoutMs: it.TimeoutInMillis}
					byURI[it.URI+"|"+it.PayloadFormatVersion] = iid
				}
				rt.Target = "integrations/" + iid
			}
			a.Routes[rt.ID] = rt
		}
	}
	return nil
}
