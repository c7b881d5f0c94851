package admin

import (
	"context"
	"encoding/json"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
)

func TestOpenAPIDocumentIsValid(t *testing.T) {
	doc, err := openapi3.NewLoader().LoadFromData(OpenAPI())
	if err != nil {
		t.Fatal(err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatal(err)
	}
}

var fiberParam = regexp.MustCompile(`:([A-Za-z]+)`)

// TestOpenAPIDescribesEveryRoute checks that the document's operations are exactly the routes the
// server registers when every optional part is configured.
func TestOpenAPIDescribesEveryRoute(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	var registered []string
	for _, r := range h.srv.app.GetRoutes(true) {
		if r.Method == "HEAD" { // Fiber adds one to every GET
			continue
		}
		registered = append(registered, r.Method+" "+fiberParam.ReplaceAllString(r.Path, "{$1}"))
	}
	doc, err := openapi3.NewLoader().LoadFromData(OpenAPI())
	if err != nil {
		t.Fatal(err)
	}
	var documented []string
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			documented = append(documented, method+" "+path)
		}
	}
	slices.Sort(registered)
	registered = slices.Compact(registered)
	slices.Sort(documented)
	if !slices.Equal(registered, documented) {
		t.Fatalf("registered routes:\n  %s\ndocumented operations:\n  %s", strings.Join(registered, "\n  "), strings.Join(documented, "\n  "))
	}
	if len(registered) < 17 {
		t.Fatalf("only %d routes: %v", len(registered), registered)
	}

	// It is served without a token.
	status, header, body := h.doWith("", "GET", "/admin/v1/openapi.json", nil)
	var served map[string]any
	if status != 200 || !strings.HasPrefix(header.Get("Content-Type"), "application/json") || json.Unmarshal(body, &served) != nil || served["openapi"] != "3.0.3" {
		t.Fatalf("GET /admin/v1/openapi.json: %d %v %.100s", status, header, body)
	}
}
