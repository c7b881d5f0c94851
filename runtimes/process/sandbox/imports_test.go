package sandbox

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestStandardLibraryOnly keeps the package's init early among the binary's: it may import only
// standard library packages that the runtime initializes first anyway (not net, whose init waits for
// much of the rest).
func TestStandardLibraryOnly(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(token.NewFileSet(), name, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range f.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			first, _, _ := strings.Cut(path, "/")
			if strings.Contains(first, ".") || path == "net" || strings.HasPrefix(path, "net/") {
				t.Errorf("%s imports %s: only the standard library, and not net", name, path)
			}
			checked++
		}
	}
	if checked == 0 {
		t.Fatal("no imports found: the test read no source")
	}
}
