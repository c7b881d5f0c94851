package openapi

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/goccy/go-yaml"
	"golang.org/x/tools/txtar"

	"gatehouse.dev/gatehouse/internal/spec"
	"gatehouse.dev/gatehouse/internal/stackfile"
)

var update = flag.Bool("update", false, "rewrite the golden files of testdata/*.txtar")

// anyFunction is an Env in which every function exists.
func anyFunction() spec.Env { return spec.Env{HasFunction: func(string) bool { return true }} }

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

func specYAML(t *testing.T, api spec.API) []byte {
	t.Helper()
	j, err := json.Marshal(api)
	if err != nil {
		t.Fatal(err)
	}
	y, err := yaml.JSONToYAML(j)
	if err != nil {
		t.Fatal(err)
	}
	return y
}

// TestGolden imports each testdata/*.txtar's openapi.json or openapi.yaml and compares the API, as
// the stack-file model writes it, with its spec.yaml, and the notices with its notices; then
// exports the API and imports the export, which must give the same API.
func TestGolden(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.txtar")
	if len(files) == 0 {
		t.Fatal("no testdata/*.txtar")
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".txtar"), func(t *testing.T) {
			ar, err := txtar.ParseFile(file)
			if err != nil {
				t.Fatal(err)
			}
			var input txtar.File
			for _, f := range ar.Files {
				if strings.HasPrefix(f.Name, "openapi.") {
					input = f
				}
			}
			api, im := importFile(t, input.Name, input.Data)
			got := map[string][]byte{"spec.yaml": specYAML(t, api)}
			var notices bytes.Buffer
			for _, n := range im.Notices {
				notices.WriteString(n.Error() + "\n")
			}
			got["notices"] = notices.Bytes()

			if *update {
				ar.Files = []txtar.File{input}
				for _, name := range []string{"spec.yaml", "notices"} {
					ar.Files = append(ar.Files, txtar.File{Name: name, Data: got[name]})
				}
				if err := os.WriteFile(file, txtar.Format(ar), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			for _, f := range ar.Files {
				if want, ok := got[f.Name]; ok && !bytes.Equal(want, f.Data) {
					t.Errorf("%s:\n%s\nwant:\n%s\n(go test -update rewrites the golden files)", f.Name, want, f.Data)
				}
				delete(got, f.Name)
			}
			if len(got) > 0 {
				t.Errorf("golden files missing: run go test -update")
			}

			// Exported and imported again, the API is the same.
			out, err := Export(api, ExportOptions{Title: im.Name, Region: "us-east-1", AccountID: "000000000000", YAML: strings.HasSuffix(input.Name, ".yaml")})
			if err != nil {
				t.Fatal(err)
			}
			again, _ := importFile(t, "export", out)
			byKey := func(a, b spec.Route) int { return strings.Compare(a.Key, b.Key) }
			slices.SortFunc(api.Routes, byKey) // a document's paths have no order
			slices.SortFunc(again.Routes, byKey)
			if a, b := specYAML(t, api), specYAML(t, again); !bytes.Equal(a, b) {
				t.Errorf("after export and import:\n%s\nwant:\n%s\nthe export:\n%s", b, a, out)
			}
		})
	}
}

// TestImportErrors checks that what Gatehouse cannot serve is refused at its place in the document.
func TestImportErrors(t *testing.T) {
	const head = "openapi: 3.0.1\ninfo: {title: t, version: '1'}\n"
	tests := []struct {
		name, doc, want string
	}{
		{"swagger 2", "swagger: '2.0'\ninfo: {title: t}\n", `api.yaml:1:10: swagger: this is a Swagger 2.0 document: Gatehouse reads OpenAPI 3 (API Gateway exports it with --specification OAS30)`},
		{"no version", "info: {title: t}\npaths: {}\n", `api.yaml:1:1: want openapi: 3.0.x (an OpenAPI 3 document)`},
		{"no title", "openapi: 3.0.1\ninfo: {version: '1'}\npaths: {}\n", `api.yaml:2:7: info: info.title, the API's name, is required`},
		{"no paths", head, `api.yaml:1:1: paths: is required and has no paths: an API needs at least one route`},
		{"http proxy", head + "paths:\n  /a:\n    get:\n      x-amazon-apigateway-integration: {type: http_proxy, uri: 'http://x'}\n",
			`api.yaml:6:47: paths["/a"].get.x-amazon-apigateway-integration.type: integration type http_proxy is not served yet: Gatehouse serves aws_proxy integrations to functions`},
		{"bad uri", head + "paths:\n  /a:\n    get:\n      x-amazon-apigateway-integration: {type: aws_proxy, uri: 'arn:aws:s3:::bucket'}\n",
			`api.yaml:6:63: paths["/a"].get.x-amazon-apigateway-integration.uri: uri "arn:aws:s3:::bucket": want a function's ARN or name, or API Gateway's invocation ARN of one`},
		{"unknown scheme", head + "paths:\n  /a:\n    get:\n      security: [{nope: []}]\n      x-amazon-apigateway-integration: {type: aws_proxy, uri: f}\n",
			`api.yaml:6:18: paths["/a"].get.security[0]: security scheme "nope" is not in components.securitySchemes`},
		{"token authorizer", head + "paths:\n  /a:\n    get:\n      security: [{t: []}]\n      x-amazon-apigateway-integration: {type: aws_proxy, uri: f}\n" +
			"components:\n  securitySchemes:\n    t: {type: apiKey, x-amazon-apigateway-authorizer: {type: token, authorizerUri: f}}\n",
			`api.yaml:10:62: components.securitySchemes.t.x-amazon-apigateway-authorizer.type: TOKEN authorizers belong to REST APIs, which are not served yet: use a request authorizer`},
		{"two requirements", head + "paths:\n  /a:\n    get:\n      security: [{a: []}, {b: []}]\n      x-amazon-apigateway-integration: {type: aws_proxy, uri: f}\n",
			`api.yaml:6:27: paths["/a"].get.security[1]: a route has one authorizer here: the operation lists more than one security requirement`},
		{"nothing routed", head + "paths:\n  /a:\n    get: {summary: x}\n", `api.yaml:4:3: paths: no operation has an x-amazon-apigateway-integration to a function: there is no route to serve`},
		{"path ref", head + "paths:\n  /a:\n    $ref: '#/x'\n", `api.yaml:5:11: paths["/a"]["$ref"]: path items by $ref are not read: write the operations here`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc, err := Parse("api.yaml", []byte(tt.doc))
			if err == nil {
				_, err = Import("api.yaml", doc)
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

func TestFunctionOfURI(t *testing.T) {
	for uri, want := range map[string]string{
		"hello":      "hello",
		"hello:live": "hello:live",
		"arn:aws:lambda:us-east-1:123456789012:function:hello":                                                                           "hello",
		"arn:aws:lambda:us-east-1:123456789012:function:hello:7":                                                                         "hello:7",
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
