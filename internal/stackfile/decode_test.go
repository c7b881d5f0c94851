package stackfile

import (
	"testing"

	"gatehouse.dev/gatehouse/internal/spec"
	"gatehouse.dev/gatehouse/internal/yamldecode"
)

// spec's key paths are located by yamldecode: both must mark list items, and write paths, alike.
func TestSpecPathsAreYAMLDecodePaths(t *testing.T) {
	if spec.IndexMark != yamldecode.IndexMark || spec.Index(3) != yamldecode.Index(3) {
		t.Fatalf("index marks differ: %q, %q", spec.IndexMark, yamldecode.IndexMark)
	}
	for _, path := range [][]string{
		{"functions", "hello", "timeout"},
		{"apis", "web", "routes", "GET /x", "integration", "target"},
		{"iam", "accessKeys", spec.Index(2), "id"},
		{"apis", "a.b", "stages", "$default"},
		{"x_y-z", "", "é"},
	} {
		if a, b := spec.FormatPath(path), yamldecode.FormatPath(path); a != b {
			t.Errorf("%q: spec writes %s, yamldecode %s", path, a, b)
		}
	}
}
