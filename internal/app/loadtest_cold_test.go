package app

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gatehouse.dev/gatehouse/functions"
	"gatehouse.dev/gatehouse/loadtest"
)

// TestLoadtestCold runs `gatehouse loadtest cold` against a running node: three copies of a
// hand-assembled reactor are deployed, invoked cold and warm, and deleted.
func TestLoadtestCold(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "watfn.wasm"), watReactor("stack"), 0o644); err != nil {
		t.Fatal(err)
	}
	stack := filepath.Join(dir, "stack.yaml")
	if err := os.WriteFile(stack, []byte(watStack), 0o644); err != nil {
		t.Fatal(err)
	}
	n := startNode(t, stack, newDataDir(t))
	t.Cleanup(func() { n.Stop(context.Background()) })

	var buf bytes.Buffer
	if err := functions.WriteBundle(&buf, functions.NewManifest("coldsrc"), watReactor("cold")); err != nil {
		t.Fatal(err)
	}
	bundle := filepath.Join(dir, "cold.zip")
	if err := os.WriteFile(bundle, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}

	var stdout, stderr syncBuffer
	code := Main([]string{"loadtest", "cold", "http://" + n.AdminAddr(), "--bundle", bundle,
		"--functions", "3", "--warm", "--json", "--data", n.DataDir()}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, stdout.String(), stderr.String())
	}
	var sum loadtest.ColdSummary
	if err := json.Unmarshal([]byte(stdout.String()), &sum); err != nil {
		t.Fatalf("output %s: %v", stdout.String(), err)
	}
	if sum.Deployed != 3 || sum.Invoked != 3 || sum.Warm != 3 || sum.Errors != 0 || sum.Deleted != 3 {
		t.Fatalf("deployed %d, first invocations %d, warm %d, deleted %d, errors %v; want 3 each and none\n%s",
			sum.Deployed, sum.Invoked, sum.Warm, sum.Deleted, sum.ErrorKinds, stdout.String())
	}
	seen := map[string]bool{}
	for _, f := range sum.Functions {
		if !strings.HasPrefix(f.Name, "coldtest-") || seen[f.Name] || f.Version != 1 || !f.Deleted {
			t.Errorf("function %+v", f)
		}
		seen[f.Name] = true
	}
	// Nothing is left but the stack's own function.
	out := runCLI(t, n, "functions", "--json")
	if strings.Contains(out, "coldtest-") {
		t.Errorf("functions left behind:\n%s", out)
	}
}
