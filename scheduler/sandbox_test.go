package scheduler

import (
	"archive/zip"
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"testing"
)

func zipOf(t *testing.T, files map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for name, content := range files {
		h := &zip.FileHeader{Name: name}
		h.SetMode(0o644)
		if name == "bootstrap" {
			h.SetMode(0o755)
		}
		w, err := zw.CreateHeader(h)
		if err != nil {
			t.Fatal(err)
		}
		w.Write([]byte(content))
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// A package is unpacked with its executables' modes; a path that would leave it is refused.
func TestUnzip(t *testing.T) {
	dir := t.TempDir()
	if err := unzip(zipOf(t, map[string]string{"bootstrap": "#!/bin/sh\n", "lib/a.py": "x = 1\n"}), dir); err != nil {
		t.Fatal(err)
	}
	if info, err := os.Stat(filepath.Join(dir, "bootstrap")); err != nil || info.Mode().Perm()&0o100 == 0 {
		t.Errorf("bootstrap: %v %v", info, err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "lib", "a.py")); err != nil || string(b) != "x = 1\n" {
		t.Errorf("lib/a.py: %q %v", b, err)
	}
	for _, bad := range []string{"../escape", "/abs"} {
		if err := unzip(zipOf(t, map[string]string{bad: "x"}), t.TempDir()); err == nil {
			t.Errorf("%s was unpacked", bad)
		}
	}
	if err := unzip([]byte("not a zip"), t.TempDir()); err == nil {
		t.Error("bytes that are not a zip were unpacked")
	}
}

func TestLambdaRequestID(t *testing.T) {
	id := lambdaRequestID("Wgi/VBh8QlSlmYw=")
	if !regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`).MatchString(id) || id != lambdaRequestID("Wgi/VBh8QlSlmYw=") || id == lambdaRequestID("other") {
		t.Errorf("%q", id)
	}
}
