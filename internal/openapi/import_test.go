package openapi

import (
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/tools/txtar"

	"gatehouse.dev/gatehouse/internal/doctree"

	"gatehouse.dev/gatehouse/internal/spec"
	"gatehouse.dev/gatehouse/internal/stackfile"
	"gatehouse.dev/gatehouse/internal/testfix"
)

var update = flag.Bool("update", false, "rewrite the golden files of testdata/*.txtar")

// anyFunction is an Env in which every function exists, and API keys have a usage plan.
func anyFunction() spec.Env {
	return spec.Env{HasFunction: func(string) bool { return true }, UsagePlans: true}
}

// importFile imports one document and checks it as a stack file's API named by its title.
func importFile(t *testing.T, name string, data []byte) (spec.API, *Imported) {
	t.Helper()
	doc, err := Parse(name, data)
	if err != nil {
		t.Fatal(err)
	}
	im, err := Import(name, doc)
	if err != nil {
		t.Fatal(err)
	}
	def := im.Definition
	api, err := stackfile.ParseAPIDoc(name, def, "", im.Name, anyFunction())
	if err != nil {
		t.Fatal(err)
	}
	return api, im
}

// TestGolden imports each testdata/*.txtar's openapi.json or openapi.yaml and compares the API, as
// the stack-file model writes it, with its spec.yaml, and the notices with its notices; then
// exports the API and imports the export, which must give the same API.
func TestGolden(t *testing.T) {
	testfix.Golden(t, []string{"spec.yaml", "notices"}, *update, func(t *testing.T, inputs []txtar.File) map[string]string {
		var input txtar.File
		for _, f := range inputs {
			if strings.HasPrefix(f.Name, "openapi.") {
				input = f
			}
		}
		api, im := importFile(t, input.Name, input.Data)
		var notices []string
		for _, n := range im.Notices {
			notices = append(notices, n.Error())
		}
		got := map[string]string{"spec.yaml": testfix.YAML(t, api), "notices": strings.Join(notices, "\n")}

		// Exported and imported again, the API is the same.
		out, err := Export(api, ExportOptions{Title: im.Name, Region: "us-east-1", AccountID: "000000000000", YAML: strings.HasSuffix(input.Name, ".yaml")})
		if err != nil {
			t.Fatal(err)
		}
		again, _ := importFile(t, "export", out)
		byKey := func(a, b spec.Route) int { return strings.Compare(a.Key, b.Key) }
		slices.SortFunc(api.Routes, byKey) // a document's paths have no order
		slices.SortFunc(again.Routes, byKey)
		if a, b := testfix.YAML(t, api), testfix.YAML(t, again); a != b {
			t.Errorf("after export and import:\n%s\nwant:\n%s\nthe export:\n%s", b, a, out)
		}
		return got
	})
}

// TestImportErrors checks that what Gatehouse cannot serve is refused at its place in the document.
func TestImportErrors(t *testing.T) {
	const head = "openapi: 3.0.1\ninfo: {title: t, version: '1'}\n"
	const httpHead = head + "x-amazon-apigateway-importexport-version: '1.0'\n"
	const restOp = head + "paths:\n  /a:\n    post:\n      x-amazon-apigateway-integration: {type: aws_proxy, uri: f}\n"
	tests := []struct {
		name, apiType, doc, want string
	}{
		{"swagger 2 as http", spec.APITypeHTTP, "swagger: '2.0'\ninfo: {title: t}\n", `api.yaml:1:10: swagger: this is a Swagger 2.0 document, which Gatehouse reads as a REST API's: an HTTP API's document is OpenAPI 3 (API Gateway exports it with --specification OAS30)`},
		{"swagger 1.2", "", "swagger: '1.2'\ninfo: {title: t}\n", `api.yaml:1:10: swagger: swagger: 1.2: want "2.0" (a REST API's Swagger document), or an OpenAPI 3 document`},
		{"no version", "", "info: {title: t}\npaths: {}\n", `api.yaml:1:1: want openapi: 3.0.x (an OpenAPI 3 document)`},
		{"no title", "", "openapi: 3.0.1\ninfo: {version: '1'}\npaths: {}\n", `api.yaml:2:7: info: info.title, the API's name, is required`},
		{"no paths", "", head, `api.yaml:1:1: paths: is required and has no paths: an API needs at least one route`},
		{"rest http", "", head + "paths:\n  /a:\n    get:\n      x-amazon-apigateway-integration: {type: http, uri: 'http://x'}\n",
			`api.yaml:6:47: paths["/a"].get.x-amazon-apigateway-integration.type: integration type http is not served yet: Gatehouse serves aws_proxy (functions), http_proxy and mock integrations`},
		{"unknown type", "", head + "paths:\n  /a:\n    get:\n      x-amazon-apigateway-integration: {type: lambda, uri: f}\n",
			`api.yaml:6:47: paths["/a"].get.x-amazon-apigateway-integration.type: integration type "lambda": want aws_proxy, http_proxy or mock`},
		{"http proxy without uri", "", head + "paths:\n  /a:\n    get:\n      x-amazon-apigateway-integration: {type: http_proxy, httpMethod: GET}\n",
			`api.yaml:6:40: paths["/a"].get.x-amazon-apigateway-integration: an http_proxy integration's uri is the backend's URL, such as https://backend.example.com/{proxy}`},
		{"bad ref", "", head + "paths:\n  /a:\n    get:\n      x-amazon-apigateway-integration: {$ref: '#/components/x-amazon-apigateway-integrations/nope'}\n",
			`api.yaml:6:47: paths["/a"].get.x-amazon-apigateway-integration["$ref"]: $ref "#/components/x-amazon-apigateway-integrations/nope": want #/components/x-amazon-apigateway-integrations/NAME, an integration of the document's components`},
		{"mock response pattern", "", head + "paths:\n  /a:\n    get:\n      x-amazon-apigateway-integration:\n        type: mock\n        responses: {'2(': {statusCode: '200'}}\n",
			`api.yaml:8:27: paths["/a"].get.x-amazon-apigateway-integration.responses["2("]: responses "2(": the key is a regular expression matched against the status code: error parsing regexp: missing closing ): ` + "`^(?:2()$`"},
		{"mock status", "", head + "paths:\n  /a:\n    get:\n      x-amazon-apigateway-integration:\n        type: mock\n        responses: {default: {statusCode: ok}}\n",
			`api.yaml:8:43: paths["/a"].get.x-amazon-apigateway-integration.responses.default.statusCode: statusCode "ok": want a status code such as 200`},
		{"bad uri", "", head + "paths:\n  /a:\n    get:\n      x-amazon-apigateway-integration: {type: aws_proxy, uri: 'arn:aws:s3:::bucket'}\n",
			`api.yaml:6:63: paths["/a"].get.x-amazon-apigateway-integration.uri: uri "arn:aws:s3:::bucket": want a function's ARN or name, or API Gateway's invocation ARN of one`},
		{"unknown scheme", "", head + "paths:\n  /a:\n    get:\n      security: [{nope: []}]\n      x-amazon-apigateway-integration: {type: aws_proxy, uri: f}\n",
			`api.yaml:6:18: paths["/a"].get.security[0]: security scheme "nope" is not in components.securitySchemes`},
		{"token authorizer in an http API", "", httpHead + "paths:\n  /a:\n    get:\n      security: [{t: []}]\n      x-amazon-apigateway-integration: {type: aws_proxy, uri: f, payloadFormatVersion: '2.0'}\n" +
			"components:\n  securitySchemes:\n    t: {type: apiKey, x-amazon-apigateway-authorizer: {type: token, authorizerUri: f}}\n",
			`api.yaml:11:62: components.securitySchemes.t.x-amazon-apigateway-authorizer.type: TOKEN authorizers belong to REST APIs, and this document is read as an HTTP API (it has x-amazon-apigateway-importexport-version at line 3, as HTTP API exports do): use a request authorizer`},
		{"jwt authorizer in a rest API", spec.APITypeREST, head + "paths:\n  /a:\n    get:\n      security: [{j: []}]\n      x-amazon-apigateway-integration: {type: aws_proxy, uri: f}\n" +
			"components:\n  securitySchemes:\n    j: {type: oauth2, x-amazon-apigateway-authorizer: {type: jwt, jwtConfiguration: {issuer: 'https://id'}}}\n",
			`api.yaml:10:62: components.securitySchemes.j.x-amazon-apigateway-authorizer.type: jwt authorizers belong to HTTP APIs, and this document is read as a REST API (it is imported as one): a REST API checks tokens with a token authorizer`},
		{"cognito authorizer", "", head + "paths:\n  /a:\n    get:\n      security: [{c: []}]\n      x-amazon-apigateway-integration: {type: aws_proxy, uri: f}\n" +
			"components:\n  securitySchemes:\n    c: {type: apiKey, x-amazon-apigateway-authorizer: {type: cognito_user_pools, providerARNs: [x]}}\n",
			`api.yaml:10:62: components.securitySchemes.c.x-amazon-apigateway-authorizer.type: authorizer type "cognito_user_pools": want token or request (a REST API's Lambda authorizers)`},
		{"authorizer uri", "", restOp + "      security: [{t: []}]\ncomponents:\n  securitySchemes:\n    t: {type: apiKey, x-amazon-apigateway-authorizer: {type: token, authorizerUri: 'arn:aws:s3:::b'}}\n",
			`api.yaml:10:84: components.securitySchemes.t.x-amazon-apigateway-authorizer.authorizerUri: authorizerUri "arn:aws:s3:::b": want API Gateway's invocation ARN of a function, or its ARN or name`},
		{"two requirements", "", head + "paths:\n  /a:\n    get:\n      security: [{a: []}, {b: []}]\n      x-amazon-apigateway-integration: {type: aws_proxy, uri: f}\n",
			`api.yaml:6:27: paths["/a"].get.security[1]: a route has one authorizer here: the operation lists more than one security requirement`},
		{"nothing routed", "", head + "paths:\n  /a:\n    get: {summary: x}\n", `api.yaml:4:3: paths: no operation has an x-amazon-apigateway-integration Gatehouse serves: there is no route to serve`},
		{"path ref", "", head + "paths:\n  /a:\n    $ref: '#/x'\n", `api.yaml:5:11: paths["/a"]["$ref"]: path items by $ref are not read: write the operations here`},
		{"unknown validator", "", restOp + "      x-amazon-apigateway-request-validator: nope\n      parameters: [{name: q, in: query, required: true}]\n",
			`api.yaml:7:46: paths["/a"].post.x-amazon-apigateway-request-validator: request validator "nope" is not in x-amazon-apigateway-request-validators`},
		{"unknown default validator", "", "x-amazon-apigateway-request-validators: {all: {validateRequestBody: true}}\nx-amazon-apigateway-request-validator: every\n" + restOp,
			`api.yaml:2:40: x-amazon-apigateway-request-validator: request validator "every" is not in x-amazon-apigateway-request-validators`},
		{"validators not a mapping", "", "x-amazon-apigateway-request-validators: [all]\n" + restOp,
			`api.yaml:1:41: x-amazon-apigateway-request-validators: want request validators by name (a mapping), not a list`},
		{"body of an unknown schema", "", restOp + "      requestBody: {content: {application/json: {schema: {$ref: '#/components/schemas/Pet'}}}}\n",
			`api.yaml:7:65: paths["/a"].post.requestBody.content["application/json"].schema["$ref"]: $ref "#/components/schemas/Pet": the document has no such schema`},
		{"body of a schema named badly", "", restOp + "      requestBody: {content: {application/json: {schema: {$ref: '#/components/schemas/Pet-1'}}}}\ncomponents: {schemas: {Pet-1: {type: object}}}\n",
			`api.yaml:7:65: paths["/a"].post.requestBody.content["application/json"].schema["$ref"]: $ref "#/components/schemas/Pet-1": a REST API's model names are 1 to 128 letters and digits`},
		{"body of a part of a schema", "", restOp + "      requestBody: {content: {application/json: {schema: {$ref: '#/components/schemas/Pet/properties/a'}}}}\n",
			`api.yaml:7:65: paths["/a"].post.requestBody.content["application/json"].schema["$ref"]: $ref "#/components/schemas/Pet/properties/a": a request body's schema is a model of the API: want #/components/schemas/NAME`},
		{"request body ref", "", restOp + "      requestBody: {$ref: '#/components/requestBodies/Nope'}\n",
			`api.yaml:7:27: paths["/a"].post.requestBody["$ref"]: $ref "#/components/requestBodies/Nope": want #/components/requestBodies/NAME, a request body of the document`},
		{"parameter ref", "", restOp + "      parameters: [{$ref: '#/components/schemas/X'}]\n",
			`api.yaml:7:27: paths["/a"].post.parameters[0]["$ref"]: $ref "#/components/schemas/X": want #/components/parameters/NAME, a parameter of the document`},
		{"parameter without name", "", restOp + "      parameters: [{in: header, required: true}]\n",
			`api.yaml:7:20: paths["/a"].post.parameters[0]: a parameter needs a name`},
		{"gateway response status", "", "x-amazon-apigateway-gateway-responses: {UNAUTHORIZED: {statusCode: nope}}\n" + restOp,
			`api.yaml:1:68: x-amazon-apigateway-gateway-responses.UNAUTHORIZED.statusCode: statusCode "nope": want a status code such as 401`},
		{"gateway response not a mapping", "", "x-amazon-apigateway-gateway-responses: {UNAUTHORIZED: 401}\n" + restOp,
			`api.yaml:1:55: x-amazon-apigateway-gateway-responses.UNAUTHORIZED: want a gateway response (a mapping with statusCode, responseParameters and responseTemplates), not a number`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc, err := Parse("api.yaml", []byte(tt.doc))
			if err == nil {
				_, err = ImportAs("api.yaml", doc, tt.apiType)
			}
			if err == nil || err.Error() != tt.want {
				t.Errorf("got  %v\nwant %s", err, tt.want)
			}
		})
	}
}

// TestValueErrorsArePlaced checks that a problem stackfile finds in an imported definition is
// reported at the document's value it came from.
func TestValueErrorsArePlaced(t *testing.T) {
	const doc = "openapi: 3.0.1\ninfo: {title: t, version: '1'}\npaths:\n  /a:\n    get:\n      x-amazon-apigateway-integration:\n        type: aws_proxy\n        uri: f\n        timeoutInMillis: 90000\n"
	d, err := Parse("api.yaml", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	im, err := Import("api.yaml", d)
	if err != nil {
		t.Fatal(err)
	}
	_, err = stackfile.ParseAPIDoc("api.yaml", im.Definition, "", "t", anyFunction())
	if err == nil || !strings.HasPrefix(err.Error(), "api.yaml:9:26: paths[\"/a\"].get.x-amazon-apigateway-integration.timeoutInMillis: 1m30s is out of range") {
		t.Errorf("got %v, want the timeout's place", err)
	}
}

// TestIntegrationValueErrorsArePlaced checks that the stack file's checks of http_proxy and mock
// integrations, and of payload format versions, report problems at the document's values.
func TestIntegrationValueErrorsArePlaced(t *testing.T) {
	const head = "openapi: 3.0.1\ninfo: {title: t, version: '1'}\npaths:\n  /a/{id}:\n    get:\n      x-amazon-apigateway-integration:\n"
	tests := []struct{ name, integration, want string }{
		{"scheme", "        type: http_proxy\n        uri: ftp://backend/{id}\n",
			`api.yaml:8:14: paths["/a/{id}"].get.x-amazon-apigateway-integration.uri: "ftp://backend/{id}": the scheme must be http or https`},
		{"path parameter", "        type: http_proxy\n        uri: http://backend/{name}\n",
			`api.yaml:8:14: paths["/a/{id}"].get.x-amazon-apigateway-integration.uri: "http://backend/{name}" names the path parameter {name}, which is not one of the route's: {id}`},
		{"method", "        type: http_proxy\n        uri: http://backend/{id}\n        httpMethod: fetch\n",
			`api.yaml:9:21: paths["/a/{id}"].get.x-amazon-apigateway-integration.httpMethod: "FETCH" is not a method: want ANY (the client's method), GET, POST, PUT, PATCH, DELETE, HEAD or OPTIONS`},
		{"proxy payload 2.0", "        type: http_proxy\n        uri: http://backend/{id}\n        payloadFormatVersion: '2.0'\n",
			`api.yaml:9:31: paths["/a/{id}"].get.x-amazon-apigateway-integration.payloadFormatVersion: http_proxy integrations send the request itself, not an event; remove it`},
		{"function payload", "        type: aws_proxy\n        uri: f\n        payloadFormatVersion: '3.0'\n",
			`api.yaml:9:31: paths["/a/{id}"].get.x-amazon-apigateway-integration.payloadFormatVersion: unknown payload format version "3.0": want "2.0" or "1.0"`},
		{"mock status", "        type: mock\n        requestTemplates: {application/json: '{\"statusCode\": 700}'}\n",
			`api.yaml:8:46: paths["/a/{id}"].get.x-amazon-apigateway-integration.requestTemplates["application/json"]: 700 is not a status code: want 100 to 599`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := Parse("api.yaml", []byte(head+tt.integration))
			if err != nil {
				t.Fatal(err)
			}
			im, err := Import("api.yaml", d)
			if err != nil {
				t.Fatal(err)
			}
			_, err = stackfile.ParseAPIDoc("api.yaml", im.Definition, "", "t", anyFunction())
			if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
				t.Errorf("got  %v\nwant %s", err, tt.want)
			}
		})
	}
}

// TestRESTValueErrorsArePlaced checks that the stack file's checks of a REST API's settings
// report problems at the document's values they were made from.
func TestRESTValueErrorsArePlaced(t *testing.T) {
	const head = "openapi: 3.0.1\ninfo: {title: t, version: '1'}\n"
	const op = "paths:\n  /a/{id}:\n    post:\n      x-amazon-apigateway-integration: {type: aws_proxy, uri: f}\n"
	tests := []struct {
		name, apiType, doc, want string
		env                      spec.Env
	}{
		{"timeout", "", head + "paths:\n  /a:\n    get:\n      x-amazon-apigateway-integration: {type: aws_proxy, uri: f, timeoutInMillis: 29500}\n",
			`api.yaml:6:83: paths["/a"].get.x-amazon-apigateway-integration.timeoutInMillis: 29.5s is out of range: want 50ms to 29s (the limit for rest APIs)`, anyFunction()},
		{"payload 2.0", spec.APITypeREST, head + "paths:\n  /a:\n    get:\n      x-amazon-apigateway-integration: {type: aws_proxy, uri: f, payloadFormatVersion: '2.0'}\n",
			`api.yaml:6:88: paths["/a"].get.x-amazon-apigateway-integration.payloadFormatVersion: rest APIs send functions payload format "1.0"; remove it`, anyFunction()},
		{"$default", spec.APITypeREST, head + "paths:\n  /$default:\n    x-amazon-apigateway-any-method:\n      x-amazon-apigateway-integration: {type: aws_proxy, uri: f}\n",
			`api.yaml:6:7: paths["/$default"].x-amazon-apigateway-any-method: a rest API has no $default route`, anyFunction()},
		{"identity validation expression", "", head + op + "      security: [{t: []}]\ncomponents:\n  securitySchemes:\n    t:\n      type: apiKey\n      x-amazon-apigateway-authorizer: {type: token, authorizerUri: f, identityValidationExpression: '('}\n",
			`api.yaml:12:101: components.securitySchemes.t.x-amazon-apigateway-authorizer.identityValidationExpression: not a regular expression`, anyFunction()},
		{"gateway response type", "", "x-amazon-apigateway-gateway-responses:\n  UNAUTHORISED: {statusCode: '401'}\n" + head + op,
			`api.yaml:2:17: x-amazon-apigateway-gateway-responses.UNAUTHORISED: unknown gateway response type "UNAUTHORISED" (did you mean "UNAUTHORIZED"?)`, anyFunction()},
		{"binary media type", "", "x-amazon-apigateway-binary-media-types: [png]\n" + head + op,
			`api.yaml:1:42: x-amazon-apigateway-binary-media-types[0]: "png" is not a media type`, anyFunction()},
		{"compression size", "", "x-amazon-apigateway-minimum-compression-size: -1\n" + head + op,
			`api.yaml:1:47: x-amazon-apigateway-minimum-compression-size: -1 is out of range: want 0 to 10485760 bytes`, anyFunction()},
		{"model", "", head + op + "      requestBody: {content: {application/json: {schema: {$ref: '#/components/schemas/Pet'}}}}\ncomponents:\n  schemas:\n    Pet: {$ref: 'https://example.com/pet.json'}\n",
			`api.yaml:10:5: components.schemas: models.Pet: refers to "https://example.com/pet.json", which is not allowed`, anyFunction()},
		{"parameter", "", head + op + "      parameters: [{name: 'a b', in: header, required: true}]\n",
			`api.yaml:7:27: paths["/a/{id}"].post.parameters[0].name: invalid request parameter key "header.a b"`, anyFunction()},
		{"api key without usage plans", "", head + op + "      security: [{api_key: []}]\ncomponents:\n  securitySchemes:\n    api_key: {type: apiKey, name: x-api-key, in: header}\n",
			`api.yaml:7:18: paths["/a/{id}"].post.security[0]: API keys belong to usage plans, and the stack has none`, spec.Env{HasFunction: func(string) bool { return true }}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := Parse("api.yaml", []byte(tt.doc))
			if err != nil {
				t.Fatal(err)
			}
			im, err := ImportAs("api.yaml", d, tt.apiType)
			if err != nil {
				t.Fatal(err)
			}
			if im.Type != spec.APITypeREST {
				t.Fatalf("imported as %s (%s), want rest", im.Type, im.Reason)
			}
			_, err = stackfile.ParseAPIDoc("api.yaml", im.Definition, "", "t", tt.env)
			if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
				t.Errorf("got  %v\nwant %s…", err, tt.want)
			}
		})
	}
}

func TestFunctionOfURI(t *testing.T) {
	for uri, want := range map[string]string{
		"hello":      "hello",
		"hello:live": "hello:live",
		"arn:aws:lambda:us-east-1:123456789012:function:hello":   "hello",
		"arn:aws:lambda:us-east-1:123456789012:function:hello:7": "hello:7",
		"123456789012:function:hello":                            "hello",
		"arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/arn:aws:lambda:us-east-1:123456789012:function:hello/invocations": "hello",
		"arn:aws:s3:::bucket":  "",
		"":                     "",
		"a:b:c":                "",
		"http://example.com/x": "",
	} {
		got, ok := FunctionOfURI(uri)
		if got != want || ok != (want != "") {
			t.Errorf("FunctionOfURI(%q) = %q, %v; want %q", uri, got, ok, want)
		}
	}
}

// TestExportRoundTrip writes a stack file's API with every kind of integration as OpenAPI and reads
// it back: the same API, but for the http_proxy integration's tls.caFile, a file of this machine
// that the document has no place for.
func TestExportRoundTrip(t *testing.T) {
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, []byte("-----BEGIN CERTIFICATE-----\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	def := `type: http
routes:
  GET /items/{id}:
    integration:
      type: http_proxy
      target: https://${stageVariables.backend}/items/{id}
      method: GET
      timeout: 2500ms
      tls: {serverName: items.internal, caFile: ` + ca + `}
      requestParameters:
        overwrite:header.x-user: $request.header.x-id
        append:querystring.via: gatehouse
        remove:header.cookie: ""
        overwrite:path: /v2/items/${request.path.id}
      responseParameters:
        "500":
          overwrite:statuscode: "502"
        "200":
          append:header.x-cache: ${context.requestId}-hit
  ANY /proxy/{proxy+}:
    integration: {type: http_proxy, target: "http://127.0.0.1:9000/{proxy}"}
  POST /v1:
    integration:
      type: function
      target: legacy:live
      payloadFormatVersion: "1.0"
      responseParameters:
        "201":
          overwrite:header.location: $response.header.x-location
  GET /v2:
    function: modern
  GET /teapot:
    integration:
      type: mock
      statusCode: 418
      headers: {Content-Type: application/json, X-Quote: "it's tea"}
      body: '{"id": "$context.requestId", "q": "$input.params(''q'')"}'
  $default:
    integration: {type: mock, timeout: 1s}
`
	api, err := stackfile.ParseAPI("api.yaml", []byte(def), "", "shop", anyFunction())
	if err != nil {
		t.Fatal(err)
	}
	out, err := Export(api, ExportOptions{Title: "shop", Region: "eu-west-1", AccountID: "123456789012"})
	if err != nil {
		t.Fatal(err)
	}
	again, _ := importFile(t, "export.json", out)
	api.Routes[0].Integration.TLS.CAFile = ""
	byKey := func(a, b spec.Route) int { return strings.Compare(a.Key, b.Key) }
	slices.SortFunc(api.Routes, byKey)
	slices.SortFunc(again.Routes, byKey)
	for i := range api.Routes {
		api.Routes[i].Line, api.Routes[i].Column = 0, 0
	}
	if a, b := testfix.YAML(t, api), testfix.YAML(t, again); a != b {
		t.Errorf("after export and import:\n%s\nwant:\n%s\nthe export:\n%s", b, a, out)
	}
}

// TestDocumentType checks how Import tells an HTTP API's document from a REST API's, rule by rule
// (see ImportAs).
func TestDocumentType(t *testing.T) {
	const head = "openapi: 3.0.1\ninfo: {title: t, version: '1'}\n"
	const fn = "      x-amazon-apigateway-integration: {type: aws_proxy, uri: f}\n"
	const fn2 = "      x-amazon-apigateway-integration: {type: aws_proxy, uri: f, payloadFormatVersion: '2.0'}\n"
	const mock = "      x-amazon-apigateway-integration: {type: mock}\n"
	scheme := func(s string) string { return "components:\n  securitySchemes:\n    s: " + s + "\n" }
	tests := []struct{ name, doc, want, reason string }{
		{"export version", head + "x-amazon-apigateway-importexport-version: '1.0'\npaths:\n  /a:\n    get:\n" + fn, spec.APITypeHTTP,
			"it has x-amazon-apigateway-importexport-version at line 3, as HTTP API exports do"},
		{"swagger", "swagger: '2.0'\ninfo: {title: t}\npaths:\n  /a:\n    get:\n" + fn2, spec.APITypeREST, "it is a Swagger 2.0 document"},
		{"payload format version", head + "x-amazon-apigateway-gateway-responses: {}\npaths:\n  /a:\n    get:\n" + fn2, spec.APITypeHTTP,
			"its integration at line 7 has a payloadFormatVersion, as only HTTP APIs' do"},
		{"$default", head + "paths:\n  /$default:\n    get:\n" + fn, spec.APITypeHTTP, "it has the path /$default at line 5, the $default route of HTTP APIs"},
		{"jwt", head + "paths:\n  /a:\n    get:\n" + fn + scheme("{type: oauth2, x-amazon-apigateway-authorizer: {type: jwt}}"), spec.APITypeHTTP,
			"its authorizer at line 9 is of type jwt, which only HTTP APIs have"},
		{"simple responses", head + "paths:\n  /a:\n    get:\n" + fn + scheme("{type: apiKey, x-amazon-apigateway-authorizer: {type: request, enableSimpleResponses: true}}"), spec.APITypeHTTP,
			"its authorizer at line 9 has enableSimpleResponses, which only HTTP APIs' have"},
		{"validators", head + "x-amazon-apigateway-request-validators: {}\npaths:\n  /a:\n    get:\n" + mock, spec.APITypeREST,
			"it has x-amazon-apigateway-request-validators at line 3, which only REST APIs have"},
		{"operation's validator", head + "paths:\n  /a:\n    get:\n      x-amazon-apigateway-request-validator: v\n" + mock, spec.APITypeREST,
			"it has x-amazon-apigateway-request-validator at line 6, which only REST APIs have"},
		{"token", head + "paths:\n  /a:\n    get:\n" + mock + scheme("{type: apiKey, x-amazon-apigateway-authorizer: {type: token}}"), spec.APITypeREST,
			"its authorizer at line 9 is of type token, which only REST APIs have"},
		{"identity source", head + "paths:\n  /a:\n    get:\n" + mock + scheme("{type: apiKey, x-amazon-apigateway-authorizer: {type: request, identitySource: method.request.header.a}}"), spec.APITypeREST,
			"its authorizer's identitySource at line 9 is in REST APIs' form (method.request.…)"},
		{"api key", head + "paths:\n  /a:\n    get:\n" + mock + scheme("{type: apiKey, name: X-API-Key, in: header}"), spec.APITypeREST,
			"its security scheme at line 9 is an API key (x-api-key), which only REST APIs ask for"},
		{"aws_proxy without payload format", head + "paths:\n  /a:\n    get:\n" + fn, spec.APITypeREST,
			"its aws_proxy integration at line 6 has no payloadFormatVersion, which HTTP APIs' have"},
		{"mocks only", head + "x-amazon-apigateway-cors: {allowOrigins: ['*']}\npaths:\n  /a:\n    get:\n" + mock, spec.APITypeHTTP, "nothing in it is only REST APIs'"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc, err := Parse("api.yaml", []byte(tt.doc))
			if err != nil {
				t.Fatal(err)
			}
			if typ, reason := documentType(doc); typ != tt.want || reason != tt.reason {
				t.Errorf("documentType = %s, %q; want %s, %q", typ, reason, tt.want, tt.reason)
			}
		})
	}
}

// TestExportRoundTripREST writes a stack file's REST API with every setting a document carries as
// OpenAPI and reads it back: the same API, but for the route's cache, which goes with a stage's
// cache that documents do not carry (its keys are written as cacheKeyParameters, and noticed).
func TestExportRoundTripREST(t *testing.T) {
	def := `type: rest
stages:
  prod:
    cache: {sizeMB: 0.5}
binaryMediaTypes: [image/png, "application/*"]
minimumCompressionSize: 1024
cors: {allowOrigins: ["https://shop.example.com"], allowMethods: [GET, POST]}
models:
  Order:
    schema:
      type: object
      required: [sku, quantity]
      properties:
        sku: {type: string, pattern: "^[A-Z]{3}-[0-9]+$"}
        quantity: {type: integer, minimum: 1, maximum: 100}
        owner: {$ref: "https://apigateway.amazonaws.com/restapis/openapi/models/Owner"}
        tags: {type: array, items: {$ref: "https://apigateway.amazonaws.com/restapis/openapi/models/Owner#/properties/name"}}
  Owner:
    schema: {type: object, properties: {name: {type: string}}, required: [name]}
authorizers:
  bearer:
    type: token
    function: authz
    identityValidationExpression: "^Bearer .+"
    resultTtl: 300s
  gate:
    type: request
    function: authz:live
    identitySources: [$request.header.x-tenant, $request.querystring.key, $stageVariables.realm, $context.identity.sourceIp]
    resultTtl: 0s
gatewayResponses:
  DEFAULT_4XX:
    headers: {access-control-allow-origin: "*", x-request-id: $context.requestId, x-stage: $stageVariables.stage}
  UNAUTHORIZED:
    statusCode: 401
    body: '{"error": "sign in", "requestId": "$context.requestId"}'
  DEFAULT_5XX: {}
routes:
  GET /orders/{id}:
    function: orders
    authorization: {type: function, authorizer: bearer}
    request: {parameters: {querystring.view: false}}
    cache: {keys: [path.id, querystring.view], ttl: 60s}
  POST /orders:
    integration: {type: function, target: orders:live, timeout: 10s}
    apiKeyRequired: true
    authorization: {type: function, authorizer: gate}
    request:
      models: {application/json: Order}
      parameters: {header.x-client: true, querystring.dry-run: false}
  PUT /orders/{id}:
    function: orders
    authorization: {type: iam}
    request: {models: {application/json: Order, application/xml: Owner}, validateParameters: false}
  PATCH /orders/{id}:
    function: orders
    apiKeyRequired: true
    request: {parameters: {header.if-match: true}, models: {application/json: Owner}, validateBody: false}
  ANY /legacy/{proxy+}:
    integration:
      type: http_proxy
      target: http://legacy.internal:9000/v1/{proxy}
      timeout: 5s
      requestParameters:
        overwrite:header.x-user: $request.header.x-id
        overwrite:querystring.source: shop
        overwrite:header.x-stage: $stageVariables.stage
        overwrite:header.x-both: ${request.header.a}-${request.header.b}
        append:header.x-via: gatehouse
        remove:header.cookie: ""
  GET /teapot:
    integration:
      type: mock
      statusCode: 418
      headers: {Content-Type: application/json, X-Quote: "it's tea"}
      body: '{"id": "$context.requestId", "q": "$input.params(''q'')"}'
  OPTIONS /orders:
    integration: {type: mock, statusCode: 204, headers: {Access-Control-Allow-Origin: "*"}, timeout: 1s}
`
	api, err := stackfile.ParseAPI("api.yaml", []byte(def), "", "shop", anyFunction())
	if err != nil {
		t.Fatal(err)
	}
	out, err := Export(api, ExportOptions{Title: "shop", Region: "eu-west-1", AccountID: "123456789012", YAML: true})
	if err != nil {
		t.Fatal(err)
	}
	doc, err := Parse("export.yaml", out)
	if err != nil {
		t.Fatal(err)
	}
	im, err := Import("export.yaml", doc)
	if err != nil {
		t.Fatal(err)
	}
	if im.Type != spec.APITypeREST {
		t.Fatalf("the export is read as an %s API (%s)", im.Type, im.Reason)
	}
	if len(im.Notices) != 1 || !strings.Contains(im.Notices[0].Error(), "cacheKeyParameters") {
		t.Errorf("notices: %v, want only the cache keys'", im.Notices)
	}
	// The stages are the stack file's; the document has none.
	im.Definition.Set("stages", api2stages(t, def))
	again, err := stackfile.ParseAPIDoc("export.yaml", im.Definition, "", "shop", anyFunction())
	if err != nil {
		t.Fatalf("%v\nthe export:\n%s", err, out)
	}
	byKey := func(a, b spec.Route) int { return strings.Compare(a.Key, b.Key) }
	slices.SortFunc(api.Routes, byKey)
	slices.SortFunc(again.Routes, byKey)
	for i := range api.Routes {
		api.Routes[i].Line, api.Routes[i].Column, api.Routes[i].Cache = 0, 0, nil
		again.Routes[i].Line, again.Routes[i].Column = 0, 0
	}
	if a, b := testfix.YAML(t, api), testfix.YAML(t, again); a != b {
		t.Errorf("after export and import:\n%s\nwant:\n%s\nthe export:\n%s", b, a, out)
	}
	for _, want := range []string{
		"uri: arn:aws:apigateway:eu-west-1:lambda:path/2015-03-31/functions/arn:aws:lambda:eu-west-1:123456789012:function:orders:live/invocations",
		"integration.request.path.proxy: method.request.path.proxy",
		"integration.request.header.x-user: method.request.header.x-id",
		`integration.request.querystring.source: "'shop'"`,
		"overwrite:header.x-both: ${request.header.a}-${request.header.b}",
		"cacheKeyParameters:\n        - method.request.path.id\n        - method.request.querystring.view",
		"$ref: \"#/components/schemas/Owner/properties/name\"",
		"identitySource: method.request.header.x-tenant, method.request.querystring.key, stageVariables.realm, context.identity.sourceIp",
		"x-amazon-apigateway-request-validator: Validate body, query string parameters, and headers",
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("the export has no %s:\n%s", want, out)
		}
	}
}

// api2stages is the stages: of a stack file's API definition, as a doctree.
func api2stages(t *testing.T, def string) *doctree.Node {
	t.Helper()
	d, err := Parse("api.yaml", []byte(def))
	if err != nil {
		t.Fatal(err)
	}
	return d.Get("stages")
}
