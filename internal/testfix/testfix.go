// Package testfix builds the WebAssembly fixtures tests share: the sample functions, built once per
// test binary into a cache shared by every test package and run (keyed by the sources' hash), and one
// wazero compilation cache directory for them all. Only tests import it.
package testfix

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"gatehouse.dev/gatehouse/functions"
	"gatehouse.dev/gatehouse/runtimes"
)

// RepoRoot returns the repository's root directory.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// CacheRoot is the directory shared by all test binaries: built modules and the compilation cache.
func CacheRoot() string {
	if d := os.Getenv("GATEHOUSE_TEST_CACHE"); d != "" {
		return d
	}
	return filepath.Join(os.TempDir(), fmt.Sprintf("gatehouse-test-cache-%d", os.Getuid()))
}

// BuildDir holds built modules.
func BuildDir() string { return filepath.Join(CacheRoot(), "build") }

// CompileCacheDir is wazero's compilation cache shared by tests.
func CompileCacheDir() string { return filepath.Join(CacheRoot(), "compile") }

// SDKRequires is what the SDK needs, as written into go.mod files of functions outside this module.
func SDKRequires() []string { return []string{"github.com/aws/aws-lambda-go " + AWSLambdaGoVersion} }

// AWSLambdaGoVersion is the version of aws-lambda-go this module requires.
const AWSLambdaGoVersion = "v1.55.1"

var (
	mu    sync.Mutex
	built = map[string]string{}
)

// Builder returns a builder writing into the shared cache.
func Builder(tb testing.TB) *functions.Builder {
	b, err := functions.NewBuilder(functions.BuildConfig{
		CacheDir:      BuildDir(),
		SDK:           runtimes.GoSDKSource(),
		SDKImportPath: runtimes.SDKImportPath,
		SDKRequires:   SDKRequires(),
	})
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// Reactor builds the Go function in dir (relative to the repository root) as a reactor module, once per
// test binary, and returns its path.
func Reactor(tb testing.TB, dir string) string {
	tb.Helper()
	mu.Lock()
	defer mu.Unlock()
	if p, ok := built["reactor:"+dir]; ok {
		return p
	}
	p, err := Builder(tb).Build(context.Background(), filepath.Base(dir), filepath.Join(RepoRoot(), dir))
	if err != nil {
		tb.Fatalf("building fixture %s: %v", dir, err)
	}
	built["reactor:"+dir] = p
	return p
}

// Command builds the Go program in dir as a plain wasip1 command module (the command ABI), once per test
// binary, and returns its path.
func Command(tb testing.TB, dir string) string {
	tb.Helper()
	mu.Lock()
	defer mu.Unlock()
	if p, ok := built["command:"+dir]; ok {
		return p
	}
	out := filepath.Join(CacheRoot(), "command-"+strings.ReplaceAll(dir, "/", "_")+".wasm")
	cmd := exec.Command("go", "build", "-trimpath", "-o", out, ".")
	cmd.Dir = filepath.Join(RepoRoot(), dir)
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0", "GOWORK=off")
	if b, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("building command fixture %s: %v\n%s", dir, err, b)
	}
	built["command:"+dir] = out
	return out
}

// WAT builds a WebAssembly text file (path relative to the repository root) with wabt's wat2wasm, once
// per test binary, and returns the module's path. Without wat2wasm the test is skipped: .ci/run
// installs it.
func WAT(tb testing.TB, path string, flags ...string) string {
	tb.Helper()
	if _, err := exec.LookPath("wat2wasm"); err != nil {
		tb.Skip("wat2wasm is not installed (Debian package wabt; .ci/run installs it)")
	}
	mu.Lock()
	defer mu.Unlock()
	key := strings.Join(append([]string{"wat:" + path}, flags...), " ")
	if p, ok := built[key]; ok {
		return p
	}
	name := strings.ReplaceAll(path, "/", "_") + strings.ReplaceAll(strings.Join(flags, ""), "-", "_") + ".wasm"
	out := filepath.Join(CacheRoot(), "wat", name)
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		tb.Fatal(err)
	}
	args := append([]string{filepath.Join(RepoRoot(), path), "-o", out}, flags...)
	if b, err := exec.Command("wat2wasm", args...).CombinedOutput(); err != nil {
		tb.Fatalf("wat2wasm %s: %v\n%s", path, err, b)
	}
	built[key] = out
	return out
}
