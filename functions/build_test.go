package functions_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"gatehouse.dev/gatehouse/functions"
	"gatehouse.dev/gatehouse/internal/testfix"
	"gatehouse.dev/gatehouse/runtimes"
)

const outsideFunction = `package main

import (
	"context"

	"github.com/aws/aws-lambda-go/events"

	"gatehouse.dev/gatehouse/runtimes/sdk"
)

func handle(ctx context.Context, req events.APIGatewayV2HTTPRequest) (map[string]string, error) {
	inv, _ := sdk.FromContext(ctx)
	return map[string]string{"from": "outside", "request": inv.RequestID, "function": inv.FunctionName}, nil
}

func main() { sdk.Start(handle) }
`

func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// run compiles and invokes a built module once.
func run(t *testing.T, path string) map[string]string {
	t.Helper()
	ctx := context.Background()
	e, err := runtimes.NewEngine(ctx, runtimes.Config{CacheDir: testfix.CompileCacheDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close(ctx)
	wasm, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	m, err := e.Compile(ctx, wasm)
	if err != nil {
		t.Fatal(err)
	}
	if m.ABI() != runtimes.ABIReactor {
		t.Fatalf("ABI %v, want reactor", m.ABI())
	}
	inst, err := m.Instantiate(ctx, runtimes.InstanceConfig{FunctionName: "outside"})
	if err != nil {
		t.Fatal(err)
	}
	out, err := inst.Invoke(ctx, runtimes.Meta{RequestID: "req-7"}, []byte(`{"version":"2.0"}`))
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]string
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("%s: %v", out, err)
	}
	return got
}

// Functions outside this repository build without touching their go.mod: with a module of their own,
// and as bare source files.
func TestBuildOutsideRepository(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
	}{
		{"own module", map[string]string{"main.go": outsideFunction, "go.mod": "module example.com/outside\n\ngo 1.24\n"}},
		{"own module at the toolchain's go version", map[string]string{"main.go": outsideFunction, "go.mod": "module example.com/outside\n\ngo " + strings.TrimPrefix(runtime.Version(), "go") + "\n"}},
		{"no go.mod", map[string]string{"main.go": outsideFunction}},
		// The SDK's packages are all there, not only its top one.
		{"with outbound HTTP", map[string]string{"main.go": outsideFunction, "http.go": "package main\n\nimport _ \"gatehouse.dev/gatehouse/runtimes/sdk/sdkhttp\"\n",
			"go.mod": "module example.com/outside\n\ngo 1.24\n"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			writeFiles(t, dir, tt.files)
			var progress bytes.Buffer
			// The cache directory is given relative to the working directory, as `--data .gatehouse`
			// does; the go command runs elsewhere.
			t.Chdir(t.TempDir())
			b, err := functions.NewBuilder(functions.BuildConfig{
				CacheDir: "build", SDK: runtimes.GoSDKSource(),
				SDKImportPath: runtimes.SDKImportPath, SDKRequires: testfix.SDKRequires(), Progress: &progress,
			})
			if err != nil {
				t.Fatal(err)
			}
			path, err := b.Build(context.Background(), "outside", dir)
			if err != nil {
				t.Fatal(err)
			}
			got := run(t, path)
			if got["from"] != "outside" || got["request"] != "req-7" || got["function"] != "outside" {
				t.Fatalf("response %v", got)
			}
			if gomod, _ := os.ReadFile(filepath.Join(dir, "go.mod")); string(gomod) != tt.files["go.mod"] {
				t.Fatalf("go.mod changed to %q", gomod)
			}
			entries, _ := os.ReadDir(dir)
			if len(entries) != len(tt.files) {
				t.Fatalf("the build left files in the function's directory: %v", entries)
			}
			// A second build of the same sources is a cache hit.
			progress.Reset()
			again, err := b.Build(context.Background(), "outside", dir)
			if err != nil || again != path || !strings.Contains(progress.String(), "cached") {
				t.Fatalf("second build: %s %v, progress %q", again, err, progress.String())
			}
			// A change to the sources is a new build.
			writeFiles(t, dir, map[string]string{"extra.go": "package main\n\nconst extra = 1\n"})
			changed, err := b.Build(context.Background(), "outside", dir)
			if err != nil || changed == path {
				t.Fatalf("build after a change: %s %v", changed, err)
			}
		})
	}
}

func TestBuildErrorShowsCompilerOutput(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"main.go": "package main\n\nfunc main() { undefinedThing() }\n"})
	_, err := testfix.Builder(t).Build(context.Background(), "broken", dir)
	if !errors.Is(err, functions.ErrBuild) || !strings.Contains(err.Error(), "undefinedThing") {
		t.Fatalf("err = %v, want ErrBuild with the compiler's message", err)
	}
}

// TestBuildRunsLambdaStart: a handler written for aws-lambda-go's lambda.Start, unmodified, builds into
// a module that answers events, with the invocation's request id on its context as Lambda gives it.
func TestBuildRunsLambdaStart(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"main.go": `package main

import (
	"context"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"
)

func handle(ctx context.Context, req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	lc, _ := lambdacontext.FromContext(ctx)
	return events.APIGatewayV2HTTPResponse{StatusCode: 200, Body: "hi " + req.RawPath + " " + lc.AwsRequestID}, nil
}

func main() { lambda.Start(handle) }
`})
	path, err := testfix.Builder(t).Build(context.Background(), "lambdastyle", dir)
	if err != nil {
		t.Fatal(err)
	}
	wasm, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	e, err := runtimes.NewEngine(ctx, runtimes.Config{CacheDir: testfix.CompileCacheDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close(ctx)
	m, err := e.Compile(ctx, wasm)
	if err != nil {
		t.Fatal(err)
	}
	inst, err := m.Instantiate(ctx, runtimes.InstanceConfig{FunctionName: "lambdastyle", MemoryMB: 128})
	if err != nil {
		t.Fatal(err)
	}
	defer inst.Close(ctx)
	out, err := inst.Invoke(ctx, runtimes.Meta{RequestID: "req-42"}, []byte(`{"version":"2.0","rawPath":"/x","requestContext":{"http":{"method":"GET","path":"/x"}}}`))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), `"statusCode":200`) || !strings.Contains(string(out), `"body":"hi /x req-42"`) {
		t.Fatalf("answered %s", out)
	}
}
