package testfix

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/goccy/go-yaml"
	"golang.org/x/tools/txtar"
)

// Golden runs a golden test for each testdata/*.txtar of the calling package: run gets the
// archive's input files (those not named in outputs) and returns what it made of them, by output
// name ("" for an output it does not make). The outputs are compared with the archive's files of the
// same names; with update, the archive is rewritten with them instead.
func Golden(t *testing.T, outputs []string, update bool, run func(t *testing.T, inputs []txtar.File) map[string]string) {
	t.Helper()
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
			var inputs []txtar.File
			want := map[string]string{}
			for _, f := range ar.Files {
				if slices.Contains(outputs, f.Name) {
					want[f.Name] = strings.TrimSuffix(string(f.Data), "\n")
				} else {
					inputs = append(inputs, f)
				}
			}
			got := run(t, inputs)
			if update {
				ar.Files = inputs
				for _, name := range outputs {
					if g := strings.TrimSuffix(got[name], "\n"); g != "" {
						ar.Files = append(ar.Files, txtar.File{Name: name, Data: []byte(g + "\n")})
					}
				}
				if err := os.WriteFile(file, txtar.Format(ar), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			for _, name := range outputs {
				if g := strings.TrimSuffix(got[name], "\n"); g != want[name] {
					t.Errorf("%s:\n%s\nwant:\n%s\n(go test -update rewrites the golden files)", name, g, want[name])
				}
			}
		})
	}
}

// WriteArchive writes an archive's files into a new temporary directory, which it returns.
func WriteArchive(t *testing.T, files []txtar.File) string {
	t.Helper()
	dir := t.TempDir()
	for _, f := range files {
		p := filepath.Join(dir, f.Name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, f.Data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// YAML writes v as JSON makes it, in YAML, for golden files.
func YAML(t *testing.T, v any) string {
	t.Helper()
	j, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	y, err := yaml.JSONToYAML(j)
	if err != nil {
		t.Fatal(err)
	}
	return string(y)
}
