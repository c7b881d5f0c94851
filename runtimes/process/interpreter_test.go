package process

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// fakeInterpreters writes executables that answer the version probe with version and a path of
// their own, and returns a lookup over them.
func fakeInterpreters(t *testing.T, versions map[string]string) func(string) (string, error) {
	t.Helper()
	dir := t.TempDir()
	for name, v := range versions {
		script := "#!/bin/sh\necho " + v + "\necho /opt/" + name + "/bin/real\n"
		if err := os.WriteFile(filepath.Join(dir, name), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return func(name string) (string, error) {
		p := filepath.Join(dir, name)
		if _, err := os.Stat(p); err != nil {
			return "", exec.ErrNotFound
		}
		return p, nil
	}
}

func TestFindInterpreter(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		runtime   string
		installed map[string]string
		want      string // the path found, or "error: …"
	}{
		{"python3.11", map[string]string{"python3": "3.11.7"}, "/opt/python3/bin/real"},
		{"python3.11", map[string]string{"python3": "3.13.0"}, "/opt/python3/bin/real"},
		{"python3.12", map[string]string{"python3.12": "3.12.4", "python3": "3.11.7"}, "/opt/python3.12/bin/real"},
		{"python3.12", map[string]string{"python3": "3.11.7"},
			"error: python3.12 runtime: no python3.12 or python3 >= 3.12 on PATH (found python3 3.11.7); install one, or set runtime: python3.11"},
		{"python3.12", map[string]string{}, "error: python3.12 runtime: no python3.12 or python3 >= 3.12 on PATH; install one"},
		{"nodejs20.x", map[string]string{"node": "20.20.2"}, "/opt/node/bin/real"},
		{"nodejs22.x", map[string]string{"node": "20.20.2"},
			"error: nodejs22.x runtime: no node22 or node >= 22 on PATH (found node 20.20.2); install one, or set runtime: nodejs20.x"},
		{"nodejs20.x", map[string]string{"nodejs": "22.1.0"}, "/opt/nodejs/bin/real"},
		{"provided.al2023", map[string]string{}, ""},
		{"ruby3.3", map[string]string{}, "error: ruby3.3 is not a process runtime"},
	} {
		in, err := FindInterpreter(ctx, c.runtime, fakeInterpreters(t, c.installed))
		got := in.Path
		if err != nil {
			got = "error: " + strings.TrimPrefix(err.Error(), ErrNoInterpreter.Error()+": ")
		}
		if got != c.want {
			t.Errorf("%s with %v:\n got %s\nwant %s", c.runtime, c.installed, got, c.want)
		}
		if strings.HasPrefix(c.want, "error: "+c.runtime+" runtime") && !errors.Is(err, ErrNoInterpreter) {
			t.Errorf("%s: %v does not wrap ErrNoInterpreter", c.runtime, err)
		}
	}
}

// On this machine: the interpreter found is the real executable, not a shim in front of it.
func TestFindInstalledPython(t *testing.T) {
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("python3 not found on PATH")
	}
	in, err := FindInterpreter(context.Background(), "python3.8", exec.LookPath)
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(in.Path, "-c", "import sys; print(sys.executable)").Output()
	if err != nil || strings.TrimSpace(string(out)) != in.Path || !strings.HasPrefix(in.Version, "3.") {
		t.Errorf("found %+v; it says it is %q (%v)", in, out, err)
	}
}
