package openapi

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/goccy/go-yaml"

	"gatehouse.dev/gatehouse/internal/spec"
)

// ExportOptions say what Export writes besides the API's routes.
type ExportOptions struct {
	// Title is info.title (the API's name); Description info.description when not "".
	Title, Description string
	// Version is info.version; default the time of the export.
	Version string
	// Region and AccountID make the function ARNs of integrations and authorizers.
	Region, AccountID string
	// ServerURL, when set, is written as the document's server, with Stage as the default of its
	// {basePath} variable when Stage is set.
	ServerURL, Stage string
	// YAML writes YAML instead of JSON.
	YAML bool
}

// The security schemes Export writes besides the API's authorizers: IAM's, and API keys'.
const (
	sigv4Scheme  = "sigv4"
	apiKeyScheme = "api_key"
)

// Export writes an HTTP or REST API as an OpenAPI 3.0 document that Import reads back as the same
// API: routes, integrations, authorizers, API keys and CORS, and a REST API's models, request
// validation, gateway responses, binary media types and minimum compression size. An HTTP API's
// document carries x-amazon-apigateway-importexport-version, as API Gateway's exports do, a REST
// API's x-amazon-apigateway-api-key-source; Import tells them apart by these.
//
// What has no place in a document is not written: an http_proxy integration's tls.caFile (a file
// of this machine), authorizers' timeouts, and a REST route's cache settings but for its keys
// (cacheKeyParameters, which Import notices: a stage's cache is the stack file's).
func Export(api spec.API, o ExportOptions) ([]byte, error) {
	rest := api.Type == spec.APITypeREST
	if api.Type != spec.APITypeHTTP && !rest {
		return nil, errors.New("only HTTP and REST APIs are written as OpenAPI documents")
	}
	functionARN := func(target string) string {
		return spec.FunctionARN(o.Region, o.AccountID, target)
	}
	invocationARN := func(target string) string {
		return fmt.Sprintf("arn:aws:apigateway:%s:lambda:path/2015-03-31/functions/%s/invocations", o.Region, functionARN(target))
	}
	paths := map[string]map[string]any{}
	validators := map[string]any{}
	apiKeys := false
	for _, rt := range api.Routes {
		method, path := "ANY", "/$default"
		if rt.Key != "$default" {
			method, path, _ = strings.Cut(rt.Key, " ")
		}
		var it map[string]any
		if rest {
			it = exportRESTIntegration(rt, invocationARN)
		} else {
			it = exportIntegration(rt.Integration, functionARN)
		}
		op := map[string]any{"x-amazon-apigateway-integration": it,
			"responses": map[string]any{"default": map[string]string{"description": "Default response for " + rt.Key}}}
		requirement := map[string][]string{}
		switch rt.Authorization.Type {
		case spec.AuthIAM:
			requirement[sigv4Scheme] = []string{}
		case spec.AuthJWT, spec.AuthFunction:
			scopes := rt.Authorization.Scopes
			if scopes == nil {
				scopes = []string{}
			}
			requirement[rt.Authorization.Authorizer] = scopes
		}
		if rt.APIKeyRequired {
			requirement[apiKeyScheme], apiKeys = []string{}, true
		}
		if len(requirement) > 0 {
			op["security"] = []map[string][]string{requirement}
		}
		if rest {
			if name, v := exportRequest(op, rt, path); name != "" {
				validators[name] = v
			}
		}
		if paths[path] == nil {
			paths[path] = map[string]any{}
		}
		key := strings.ToLower(method)
		if method == "ANY" {
			key = AnyMethod
		}
		paths[path][key] = op
	}
	version := o.Version
	if version == "" {
		version = time.Now().UTC().Format(time.RFC3339)
	}
	info := map[string]string{"title": o.Title, "version": version}
	if o.Description != "" {
		info["description"] = o.Description
	}
	doc := map[string]any{"openapi": "3.0.1", "info": info, "paths": paths}
	if o.ServerURL != "" {
		server := map[string]any{"url": o.ServerURL}
		if o.Stage != "" {
			server["url"] = strings.TrimSuffix(o.ServerURL, "/") + "/{basePath}"
			server["variables"] = map[string]any{"basePath": map[string]string{"default": o.Stage}}
		}
		doc["servers"] = []any{server}
	}
	if api.CORS != nil {
		doc["x-amazon-apigateway-cors"] = api.CORS
	}
	components := map[string]any{}
	if rest {
		if err := exportRESTRoot(doc, components, api, validators); err != nil {
			return nil, err
		}
	} else {
		doc["x-amazon-apigateway-importexport-version"] = "1.0"
	}
	schemes := map[string]any{}
	for _, rt := range api.Routes {
		if rt.Authorization.Type == spec.AuthIAM {
			schemes[sigv4Scheme] = map[string]any{"type": "apiKey", "name": "Authorization", "in": "header",
				"x-amazon-apigateway-authtype": "awsSigv4"}
		}
	}
	if apiKeys {
		schemes[apiKeyScheme] = map[string]any{"type": "apiKey", "name": spec.APIKeyHeader, "in": "header"}
	}
	for name, au := range api.Authorizers {
		switch {
		case au.JWT != nil:
			schemes[name] = map[string]any{"type": "oauth2", "flows": map[string]any{},
				"x-amazon-apigateway-authorizer": map[string]any{"type": "jwt", "identitySource": au.JWT.IdentitySource,
					"jwtConfiguration": map[string]any{"issuer": au.JWT.Issuer, "audience": au.JWT.Audiences}}}
		case au.Function != nil && rest:
			schemes[name] = exportRESTAuthorizer(au, invocationARN)
		case au.Function != nil:
			schemes[name] = map[string]any{"type": "apiKey", "name": "Authorization", "in": "header",
				"x-amazon-apigateway-authorizer": map[string]any{"type": "request",
					"identitySource":                 strings.Join(au.Function.IdentitySources, ", "),
					"authorizerUri":                  invocationARN(au.Function.Function),
					"authorizerPayloadFormatVersion": "2.0",
					"authorizerResultTtlInSeconds":   int(au.Function.ResultTTL.D() / time.Second),
					"enableSimpleResponses":          au.Function.SimpleResponses}}
		}
	}
	if len(schemes) > 0 {
		components["securitySchemes"] = schemes
	}
	if len(components) > 0 {
		doc["components"] = components
	}
	body, err := json.MarshalIndent(doc, "", "  ")
	if err != nil || !o.YAML {
		return body, err
	}
	return yaml.JSONToYAML(body)
}

// exportIntegration writes an integration as x-amazon-apigateway-integration, in the form Import
// reads: aws_proxy to a function's ARN, http_proxy to the backend's URL, and mock as REST APIs
// write it (a request template with the status code, and a default response with the headers and
// the body). An http_proxy integration's tls.caFile, a file of this machine, is not written.
func exportIntegration(in spec.Integration, functionARN func(string) string) map[string]any {
	var it map[string]any
	switch in.Type {
	case spec.IntegrationHTTPProxy:
		it = map[string]any{"type": "http_proxy", "httpMethod": cmp.Or(in.Method, spec.MethodAny), "uri": in.Target,
			"payloadFormatVersion": spec.PayloadFormat1, "connectionType": "INTERNET"}
		if len(in.RequestParameters) > 0 {
			it["requestParameters"] = in.RequestParameters
		}
		if in.TLS != nil && in.TLS.ServerName != "" {
			it["tlsConfig"] = map[string]string{"serverNameToVerify": in.TLS.ServerName}
		}
	case spec.IntegrationMock:
		response := map[string]any{"statusCode": strconv.Itoa(in.StatusCode)}
		if len(in.Headers) > 0 {
			params := map[string]string{}
			for name, v := range in.Headers {
				params["method.response.header."+name] = "'" + v + "'"
			}
			response["responseParameters"] = params
		}
		if in.Body != "" {
			response["responseTemplates"] = map[string]string{"application/json": in.Body}
		}
		it = map[string]any{"type": "mock", "passthroughBehavior": "when_no_match",
			"requestTemplates": map[string]string{"application/json": fmt.Sprintf(`{"statusCode": %d}`, in.StatusCode)},
			"responses":        map[string]any{"default": response}}
	default:
		it = map[string]any{"type": "aws_proxy", "httpMethod": "POST", "uri": functionARN(in.Target),
			"payloadFormatVersion": in.PayloadFormatVersion, "connectionType": "INTERNET"}
	}
	if len(in.ResponseParameters) > 0 {
		it["responseParameters"] = in.ResponseParameters
	}
	if in.Timeout > 0 {
		it["timeoutInMillis"] = in.Timeout.D().Milliseconds()
	}
	return it
}
