package app

import (
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"gatehouse.dev/gatehouse/internal/testfix"
)

// BenchmarkWatchSaveToServing measures `up --watch` as a developer sees it: the time from an
// editor's save (a new file renamed over the old one) to the first 200 answer carrying the new
// body, polled through the gateway every millisecond. Each runtime starts one node and makes
// watchBenchEdits edits; b.N is ignored, so run it once:
//
//	go test ./internal/app -run '^$' -bench WatchSaveToServing -benchtime 1x -timeout 20m
func BenchmarkWatchSaveToServing(b *testing.B) {
	for _, c := range []watchBenchCase{
		{
			name: "python", tool: "python3", file: "app.py", runtime: "python3.11", handler: "app.handler",
			source: func(v string) string {
				return "def handler(event, context):\n    return {'statusCode': 200, 'body': '" + v + "'}\n"
			},
		},
		{
			name: "node", tool: "node", file: "index.js", runtime: "nodejs20.x", handler: "index.handler",
			source: func(v string) string {
				return "exports.handler = async () => ({statusCode: 200, body: '" + v + "'})\n"
			},
		},
		{
			// Gatehouse builds the bootstrap with go build in the function's directory, which must
			// therefore be inside this module to find aws-lambda-go.
			name: "provided-go", tool: "go", file: "main.go", runtime: "provided.al2023", inModule: true,
			source: func(v string) string {
				return `package main

import (
	"context"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
)

func handle(ctx context.Context, req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	return events.APIGatewayV2HTTPResponse{StatusCode: 200, Body: "` + v + `"}, nil
}

func main() { lambda.Start(handle) }
`
			},
		},
		{
			// WebAssembly: Gatehouse builds the package itself on every save.
			name: "go-wasm", tool: "go", file: "main.go", wasm: true,
			source: func(v string) string {
				return `package main

import (
	"context"

	"github.com/aws/aws-lambda-go/events"

	"gatehouse.dev/gatehouse/runtimes/sdk"
)

func handle(ctx context.Context, req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	return events.APIGatewayV2HTTPResponse{StatusCode: 200, Body: "` + v + `"}, nil
}

func main() { sdk.Start(handle) }
`
			},
		},
	} {
		b.Run(c.name, func(b *testing.B) { benchWatchEdits(b, c) })
	}
}

// watchBenchEdits is how many edits each runtime's benchmark makes.
const watchBenchEdits = 10

// watchBenchTimeout bounds the node's first answer and each edit's wait for its new answer.
const watchBenchTimeout = 3 * time.Minute

type watchBenchCase struct {
	name, tool, file, runtime, handler string
	source                             func(v string) string
	inModule                           bool // the function's directory must be inside this module
	wasm                               bool // a WebAssembly function, which needs no sandbox
}

func benchWatchEdits(b *testing.B, c watchBenchCase) {
	if _, err := exec.LookPath(c.tool); err != nil {
		b.Skipf("%s not found on PATH: the %s benchmark needs it", c.tool, c.name)
	}
	if !c.wasm {
		needSandbox(b)
	}
	dir := b.TempDir()
	if c.inModule {
		root := filepath.Join(testfix.RepoRoot(), ".bench-tmp")
		if err := os.MkdirAll(root, 0o755); err != nil {
			b.Fatal(err)
		}
		d, err := os.MkdirTemp(root, "watch-")
		if err != nil {
			b.Fatal(err)
		}
		dir = d
		b.Cleanup(func() {
			os.RemoveAll(d)
			os.Remove(root) // only when no other run still uses it
		})
	}
	src := filepath.Join(dir, "fn", c.file)
	if err := os.MkdirAll(filepath.Dir(src), 0o755); err != nil {
		b.Fatal(err)
	}
	// save writes the function as editors save: a new file renamed over the old one. It returns the
	// time of the rename.
	save := func(v string) time.Time {
		b.Helper()
		tmp := src + ".tmp"
		if err := os.WriteFile(tmp, []byte(c.source(v)), 0o644); err != nil {
			b.Fatal(err)
		}
		at := time.Now()
		if err := os.Rename(tmp, src); err != nil {
			b.Fatal(err)
		}
		return at
	}
	save("v1")
	fn := "{source: ./fn}"
	if !c.wasm {
		fn = "{source: ./fn, runtime: " + c.runtime
		if c.handler != "" {
			fn += ", handler: " + c.handler
		}
		fn += "}"
	}
	stack := "version: 1\nname: bench\nfunctions:\n  fn: " + fn + "\napis:\n  web:\n    type: http\n    routes:\n      GET /fn: {function: fn}\n"
	stackFile := filepath.Join(dir, "gatehouse.yaml")
	if err := os.WriteFile(stackFile, []byte(stack), 0o644); err != nil {
		b.Fatal(err)
	}
	var out syncBuffer
	n := startNode(b, stackFile, benchDataDir(b), func(o *Options) { o.Watch, o.Stdout = true, &out })
	b.Cleanup(func() { n.Stop(context.Background()) })
	url := "http://" + n.GatewayAddr() + "/fn"
	poller := &http.Client{Timeout: 30 * time.Second}

	// served polls the route every millisecond until it answers 200 with body.
	served := func(body string) {
		b.Helper()
		deadline := time.Now().Add(watchBenchTimeout)
		for {
			if resp, err := poller.Get(url); err == nil {
				got, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK && string(got) == body {
					return
				}
			}
			if time.Now().After(deadline) {
				b.Fatalf("%s not served after %s; output:\n%s", body, watchBenchTimeout, out.String())
			}
			time.Sleep(time.Millisecond)
		}
	}
	// reported waits for watch mode's line about version (printed once the reload is done), so that
	// an edit does not land in the previous one's reload.
	reported := func(version int) {
		b.Helper()
		want := "fn version " + strconv.Itoa(version) + ", serving in "
		deadline := time.Now().Add(watchBenchTimeout)
		for !strings.Contains(out.String(), want) {
			if time.Now().After(deadline) {
				b.Fatalf("no report of version %d; output:\n%s", version, out.String())
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	served("v1")
	for deadline := time.Now().Add(watchBenchTimeout); !strings.Contains(out.String(), "watching"); {
		if time.Now().After(deadline) {
			b.Fatalf("watch mode did not start; output:\n%s", out.String())
		}
		time.Sleep(5 * time.Millisecond)
	}

	times := make([]time.Duration, 0, watchBenchEdits)
	b.ResetTimer()
	for i := 2; i < 2+watchBenchEdits; i++ {
		v := "v" + strconv.Itoa(i)
		saved := save(v)
		served(v)
		times = append(times, time.Since(saved))
		b.StopTimer()
		reported(i)
		time.Sleep(100 * time.Millisecond) // a pause between saves, as when editing
		b.StartTimer()
	}
	b.StopTimer()

	b.Logf("save to serving, in order: %v", times)
	var reports []string
	for _, line := range strings.Split(out.String(), "\n") {
		if strings.Contains(line, " changed: ") {
			reports = append(reports, strings.TrimSpace(line))
		}
	}
	b.Logf("watch mode's reports: %s", strings.Join(reports, "; "))
	slices.Sort(times)
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	b.ReportMetric(ms(times[len(times)/2]), "p50-ms")
	b.ReportMetric(ms(times[len(times)-1]), "max-ms")
}
