package openapi

import (
	"path/filepath"
	"testing"

	"golang.org/x/tools/txtar"

	"gatehouse.dev/gatehouse/internal/stackfile"
)

// FuzzImport reads any document as an OpenAPI one: Import and the stack file's checks of what it
// makes may refuse it, and must not panic. Seeded with the golden documents (HTTP and REST APIs',
// OpenAPI 3 and Swagger 2.0), a few integrations and a REST API's request validation.
func FuzzImport(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.txtar")
	for _, file := range files {
		ar, err := txtar.ParseFile(file)
		if err != nil {
			f.Fatal(err)
		}
		for _, af := range ar.Files {
			if filepath.Ext(af.Name) == ".yaml" || filepath.Ext(af.Name) == ".json" {
				f.Add(af.Data)
			}
		}
	}
	const head = "openapi: 3.0.1\ninfo: {title: t, version: '1'}\npaths:\n  /a/{id}:\n    get:\n      x-amazon-apigateway-integration: "
	for _, it := range []string{
		"{type: mock, requestTemplates: {application/json: '{\"statusCode\": \"404\"}'}, responses: {'4\\d\\d': {statusCode: 404}}}",
		"{type: mock, responses: {'(': {}}}",
		"{type: http_proxy, uri: 'http://b/{id}', requestParameters: {'overwrite:header.x': $request.path.id}, tlsConfig: {serverNameToVerify: b}}",
		"{$ref: '#/components/x-amazon-apigateway-integrations/x'}",
		"{type: aws_proxy, uri: f}\n      x-amazon-apigateway-request-validator: v\n      parameters: [{name: q, in: query, required: true}, {$ref: '#/components/parameters/p'}]\n" +
			"      requestBody: {content: {application/json: {schema: {type: object, properties: {a: {$ref: '#/components/schemas/A'}}}}}}\n" +
			"x-amazon-apigateway-request-validators: {v: {validateRequestBody: true, validateRequestParameters: true}}\n" +
			"x-amazon-apigateway-gateway-responses: {DEFAULT_4XX: {statusCode: '400', responseParameters: {gatewayresponse.header.a: \"'b'\"}}}\n" +
			"components: {schemas: {A: {type: string}}, parameters: {p: {name: h, in: header}}}",
	} {
		f.Add([]byte(head + it + "\n"))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		doc, err := Parse("fuzz.yaml", data)
		if err != nil {
			return
		}
		im, err := Import("fuzz.yaml", doc)
		if err != nil {
			return
		}
		_, _ = stackfile.ParseAPIDoc("fuzz.yaml", im.Definition, "", "fuzz", anyFunction())
	})
}
