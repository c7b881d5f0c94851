package openapi

import (
	"fmt"
	"strings"

	"gatehouse.dev/gatehouse/internal/doctree"
	"gatehouse.dev/gatehouse/internal/spec"
)

// API Gateway does not tell an HTTP API's document from a REST API's: the caller picks the API
// (apigatewayv2 import-api or apigateway import-rest-api). Gatehouse has one importer, so it reads
// the kind from the document by the rules ImportAs lists, in documentType.

// restOnlyRoot are the root extensions only REST APIs have, which make a document a REST API's
// (ImportAs's rule 4).
var restOnlyRoot = []string{
	"x-amazon-apigateway-request-validators",
	"x-amazon-apigateway-request-validator",
	"x-amazon-apigateway-gateway-responses",
	"x-amazon-apigateway-api-key-source",
	"x-amazon-apigateway-minimum-compression-size",
}

// documentType is the type of API doc describes, by ImportAs's rules, and why: the reason, which
// names what decided and where, is for messages.
func documentType(doc *doctree.Node) (apiType, reason string) {
	if v := doc.Get("x-amazon-apigateway-importexport-version"); v != nil {
		return spec.APITypeHTTP, "it has x-amazon-apigateway-importexport-version" + at(v) + ", as HTTP API exports do"
	}
	if v := doc.Get("swagger"); v != nil {
		return spec.APITypeREST, "it is a Swagger 2.0 document"
	}
	var integrations, authorizers []*doctree.Node
	paths := doc.Get("paths")
	for path, item := range paths.All() {
		if path == "/$default" {
			return spec.APITypeHTTP, "it has the path /$default" + at(item) + ", the $default route of HTTP APIs"
		}
		for key, op := range item.All() {
			if isMethod(key) {
				integrations = append(integrations, op.Get("x-amazon-apigateway-integration"))
			}
		}
	}
	components := doc.Get("components")
	for _, it := range components.Get("x-amazon-apigateway-integrations").All() {
		integrations = append(integrations, it)
	}
	schemes := components.Get("securitySchemes")
	for _, scheme := range schemes.All() {
		authorizers = append(authorizers, scheme.Get("x-amazon-apigateway-authorizer"))
	}
	for _, it := range integrations {
		if v := it.Get("payloadFormatVersion"); v != nil {
			return spec.APITypeHTTP, "its integration" + at(it) + " has a payloadFormatVersion, as only HTTP APIs' do"
		}
	}
	for _, a := range authorizers {
		if t := a.Get("type"); strings.EqualFold(t.Scalar(), "jwt") {
			return spec.APITypeHTTP, "its authorizer" + at(a) + " is of type jwt, which only HTTP APIs have"
		}
		for _, k := range []string{"authorizerPayloadFormatVersion", "enableSimpleResponses"} {
			if a.Get(k) != nil {
				return spec.APITypeHTTP, "its authorizer" + at(a) + " has " + k + ", which only HTTP APIs' have"
			}
		}
	}
	for _, k := range restOnlyRoot {
		if v := doc.Get(k); v != nil {
			return spec.APITypeREST, "it has " + k + at(v) + ", which only REST APIs have"
		}
	}
	for _, item := range paths.All() {
		for key, op := range item.All() {
			if v := op.Get("x-amazon-apigateway-request-validator"); isMethod(key) && v != nil {
				return spec.APITypeREST, "it has x-amazon-apigateway-request-validator" + at(v) + ", which only REST APIs have"
			}
		}
	}
	for _, a := range authorizers {
		if t := a.Get("type"); strings.EqualFold(t.Scalar(), "token") {
			return spec.APITypeREST, "its authorizer" + at(a) + " is of type token, which only REST APIs have"
		}
		if v := a.Get("identitySource"); strings.Contains(v.Scalar(), "method.request.") {
			return spec.APITypeREST, "its authorizer's identitySource" + at(v) + " is in REST APIs' form (method.request.…)"
		}
	}
	for _, scheme := range schemes.All() {
		if isAPIKeyScheme(scheme) {
			return spec.APITypeREST, "its security scheme" + at(scheme) + " is an API key (x-api-key), which only REST APIs ask for"
		}
	}
	for _, it := range integrations {
		switch t := it.Get("type"); strings.ToLower(t.Scalar()) {
		case "aws_proxy", "http_proxy":
			return spec.APITypeREST, "its " + strings.ToLower(t.Scalar()) + " integration" + at(it) + " has no payloadFormatVersion, which HTTP APIs' have"
		}
	}
	return spec.APITypeHTTP, "nothing in it is only REST APIs'"
}

// isAPIKeyScheme reports whether scheme is API Gateway's api_key security scheme: an API key in a
// header named x-api-key, with neither an authorizer nor an auth type of API Gateway's.
func isAPIKeyScheme(scheme *doctree.Node) bool {
	return scheme.Get("type").Scalar() == "apiKey" && scheme.Get("in").Scalar() == "header" &&
		strings.EqualFold(scheme.Get("name").Scalar(), spec.APIKeyHeader) &&
		scheme.Get("x-amazon-apigateway-authorizer") == nil && scheme.Get("x-amazon-apigateway-authtype") == nil
}

// at is " at line N" for a node with a place, "" for one without.
func at(n *doctree.Node) string {
	if n == nil || n.Line == 0 {
		return ""
	}
	return fmt.Sprintf(" at line %d", n.Line)
}
