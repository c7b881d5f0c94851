package app

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"gatehouse.dev/gatehouse/internal/testfix"
)

// readmeBlock returns the first fenced block of lang after marker in README.md.
func readmeBlock(t *testing.T, readme, marker, lang string) string {
	t.Helper()
	_, after, ok := strings.Cut(readme, marker)
	if !ok {
		t.Fatalf("README.md has no %q", marker)
	}
	_, block, ok := strings.Cut(after, "```"+lang+"\n")
	if !ok {
		t.Fatalf("README.md has no %s block after %q", lang, marker)
	}
	block, _, _ = strings.Cut(block, "```")
	return block
}

// TestREADMETutorial follows the README's tutorial, step by step, with the code, stack file, commands
// and messages it shows, taken from README.md itself: a function outside the repository, its stack
// file, `up` from its directory, a mistake in the stack file, a deploy of a new version with a
// relative data directory, and the canary the README suggests.
func TestREADMETutorial(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(testfix.RepoRoot(), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	readme := string(raw)
	mainGo := readmeBlock(t, readme, "**2. Write a function.**", "go")
	stackYAML := readmeBlock(t, readme, "**3. Describe the stack.**", "yaml")

	// ~/fns: the function and the stack file, as the README writes them.
	fns := t.TempDir()
	if err := os.MkdirAll(filepath.Join(fns, "greet"), 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(path, text string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(fns, "greet", "main.go"), mainGo)
	write(filepath.Join(fns, "gatehouse.yaml"), stackYAML)

	// Step 4: a mistake in the stack file stops up with the file, line and key the README shows.
	m := regexp.MustCompile("`(gatehouse\\.yaml:\\d+:\\d+: [^`]+)`").FindStringSubmatch(readme)
	if m == nil {
		t.Fatal("README.md shows no stack file error")
	}
	bad := filepath.Join(t.TempDir(), "bad")
	if err := os.MkdirAll(filepath.Join(bad, "greet"), 0o755); err != nil {
		t.Fatal(err)
	}
	write(filepath.Join(bad, "greet", "main.go"), mainGo)
	write(filepath.Join(bad, "gatehouse.yaml"), strings.Replace(stackYAML, "timeout: 3s", "timeout: 3x", 1))
	t.Chdir(bad)
	var out, errOut syncBuffer
	if code := Main([]string{"up", "--data", ".gatehouse"}, &out, &errOut); code == 0 || !strings.Contains(errOut.String(), m[1]) {
		t.Fatalf("up with timeout: 3x: exit %d, stderr %q; the README says %q", code, errOut.String(), m[1])
	}

	// Step 4: up from ~/fns, and the greeting.
	t.Chdir(fns)
	data := filepath.Join(fns, ".gatehouse")
	if err := os.MkdirAll(data, 0o755); err != nil {
		t.Fatal(err)
	}
	shared := newDataDir(t)
	for _, name := range []string{"build", "compile"} {
		if err := os.Symlink(filepath.Join(shared, name), filepath.Join(data, name)); err != nil {
			t.Fatal(err)
		}
	}
	n := startNode(t, "gatehouse.yaml", ".gatehouse")
	defer n.Stop(context.Background())
	base := "http://" + n.GatewayAddr()
	if r := do(t, newRequest(t, "GET", base+"/greet/world", nil)); r.status != 200 || string(r.body) != "hello, world\n" {
		t.Fatalf("GET /greet/world: %d %q, want the README's greeting", r.status, r.body)
	}

	// Step 5: change the function, deploy it from ~/fns with the default (relative) data directory.
	write(filepath.Join(fns, "greet", "main.go"), strings.Replace(mainGo, `"hello, "`, `"hi, "`, 1))
	cli := func(args ...string) string {
		t.Helper()
		var out, errOut syncBuffer
		if code := Main(append(args, "--data", ".gatehouse"), &out, &errOut); code != 0 {
			t.Fatalf("gatehouse %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, out.String(), errOut.String())
		}
		return out.String()
	}
	// The stack file defines greet: the new version keeps its settings, and the deploy says so.
	if got := cli("deploy", "./greet"); !strings.Contains(got, "deployed greet version 2") ||
		!strings.Contains(got, "settings from gatehouse.yaml: timeout 3s, memory 128 MB, environment GREETING") {
		t.Fatalf("deploy printed %q", got)
	}
	if got := cli("versions", "greet", "--json"); strings.Count(got, `"GREETING"`) < 2 {
		t.Fatalf("the versions' environments: %s", got)
	}
	if r := do(t, newRequest(t, "GET", base+"/greet/world", nil)); r.status != 200 || string(r.body) != "hi, world\n" {
		t.Fatalf("GET /greet/world after the deploy: %d %q", r.status, r.body)
	}
	if got := cli("versions", "greet"); !strings.Contains(got, "2") {
		t.Fatalf("versions printed %q", got)
	}
	// The canary the README suggests, with the versions the tutorial made.
	alias := regexp.MustCompile("`gatehouse (alias set [^`]+)`").FindStringSubmatch(readme)
	if alias == nil {
		t.Fatal("README.md shows no alias command")
	}
	cli(strings.Fields(alias[1])...)
}
