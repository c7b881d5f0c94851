package app

import (
	"encoding/json"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"testing"

	"gatehouse.dev/gatehouse/internal/testfix"
)

// layers is the import layering of docs/ARCHITECTURE.md: a package may import only packages of lower
// layers (never its own layer's, never a higher one's).
var layers = map[string]int{
	"cmd/gatehouse":            6,
	"internal/app":             5,
	"internal/project":         4,
	"internal/sam":             3,
	"internal/openapi":         2,
	"internal/serverless":      3,
	"internal/doctree":         1,
	"internal/accesslog":       1,
	"internal/tracing":         1,
	"internal/admin":           3,
	"internal/awsapi":          3,
	"internal/cli":             3,
	"gateway":                  3,
	"scheduler":                3,
	"runtimes":                 2,
	"runtimes/process":         2,
	"runtimes/process/ric":     0, // the runtime interface clients (Python, JavaScript), embedded
	"runtimes/process/sandbox": 0, // the inside of a process sandbox, standard library only
	"runtimes/sdk":             2,
	"runtimes/sdk/sdkhttp":     3, // guest code, above the SDK it uses
	"connections":              2,
	"internal/async":           2,
	"functions":                1,
	"runtimes/meter":           1,
	"internal/httpconns":       0,
	"internal/httpguard":       1,
	"internal/bus":             1,
	"internal/apistore":        1,
	"internal/apikeys":         1,
	"internal/jwtauth":         1,
	"internal/sigv4":           1,
	"internal/logstream":       1,
	"internal/stackfile":       2,
	"internal/outbound":        1,
	"internal/didyoumean":      -2, // leaf helpers: they import nothing of Gatehouse
	"internal/yamlnode":        -2,
	"internal/mapping":         -1,
	"internal/reqvalidate":     -1,
	"internal/respcache":       -1,
	"internal/tlsconf":         -1,
	"internal/respolicy":       -1,
	"internal/acme":            -1,
	"internal/spec":            0,
	"internal/yamldecode":      0,
	"internal/jsopen":          0,
	"internal/adminapi":        1,
}

// exempt packages are outside the layering: the test helpers, samples, tools. Only tests may import
// internal/testfix and its packages.
func exempt(rel string) bool {
	return isTestHelper(rel) || rel == "internal/clustertest" || strings.HasPrefix(rel, "samples/") || strings.HasPrefix(rel, "loadtest")
}

func isTestHelper(rel string) bool {
	return rel == "internal/testfix" || strings.HasPrefix(rel, "internal/testfix/")
}

const module = "gatehouse.dev/gatehouse"

type listedPackage struct {
	ImportPath string
	Imports    []string
}

// layerViolations returns one message per import that breaks the layering.
func layerViolations(pkgs []listedPackage) []string {
	var bad []string
	for _, p := range pkgs {
		rel := strings.TrimPrefix(strings.TrimPrefix(p.ImportPath, module), "/")
		if exempt(rel) {
			continue
		}
		layer, ok := layers[rel]
		if !ok {
			bad = append(bad, fmt.Sprintf("package %s has no layer: add it to the table here and in docs/ARCHITECTURE.md", rel))
			continue
		}
		for _, imp := range p.Imports {
			irel, ok := strings.CutPrefix(imp, module+"/")
			if !ok {
				continue
			}
			il, known := layers[irel]
			switch {
			case isTestHelper(irel):
				bad = append(bad, fmt.Sprintf("%s imports the test helper %s", rel, irel))
			case !known && !exempt(irel):
				bad = append(bad, fmt.Sprintf("%s imports %s, which has no layer", rel, irel))
			case il >= layer:
				bad = append(bad, fmt.Sprintf("%s (layer %d) imports %s (layer %d): imports must flow to lower layers only", rel, layer, irel, il))
			}
		}
	}
	return bad
}

func TestImportLayers(t *testing.T) {
	cmd := exec.Command("go", "list", "-json", "./...")
	cmd.Dir = testfix.RepoRoot()
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	var pkgs []listedPackage
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for {
		var p listedPackage
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		pkgs = append(pkgs, p)
	}
	if len(pkgs) < 8 {
		t.Fatalf("go list found only %d packages", len(pkgs))
	}
	for _, msg := range layerViolations(pkgs) {
		t.Error(msg)
	}
}

func TestLayerViolationsAreCaught(t *testing.T) {
	tests := []struct {
		name    string
		pkg     listedPackage
		wantBad bool
	}{
		{"downward", listedPackage{module + "/gateway", []string{module + "/internal/bus", "fmt"}}, false},
		{"upward", listedPackage{module + "/internal/bus", []string{module + "/gateway"}}, true},
		{"same layer", listedPackage{module + "/gateway", []string{module + "/scheduler"}}, true},
		{"test helper", listedPackage{module + "/scheduler", []string{module + "/internal/testfix"}}, true},
		{"unknown package", listedPackage{module + "/newthing", nil}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if bad := layerViolations([]listedPackage{tt.pkg}); (len(bad) > 0) != tt.wantBad {
				t.Fatalf("violations %q, want bad=%v", bad, tt.wantBad)
			}
		})
	}
}
