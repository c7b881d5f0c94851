package app

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gatehouse.dev/gatehouse/functions"
	"gatehouse.dev/gatehouse/internal/testfix"
)

// versionModule is the test function that answers which version of it ran.
const versionModule = "internal/app/testdata/functions/version"

// versionBundle writes a bundle of the version function with COLOR=color, and returns its path. Extra
// bytes, when given, go into a custom section, which makes a module with other bytes (and size) that
// runs the same.
func versionBundle(t *testing.T, color string, extra []byte) string {
	t.Helper()
	module, err := os.ReadFile(testfix.Reactor(t, versionModule))
	if err != nil {
		t.Fatal(err)
	}
	if extra != nil {
		module = withCustomSection(module, "padding", extra)
	}
	m := functions.NewManifest("version")
	m.Environment = map[string]string{"COLOR": color}
	path := filepath.Join(t.TempDir(), "version-"+color+".zip")
	var buf bytes.Buffer
	if err := functions.WriteBundle(&buf, m, module); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// withCustomSection appends a custom section (which runtimes ignore) to a module.
func withCustomSection(module []byte, name string, payload []byte) []byte {
	var body []byte
	body = binary.AppendUvarint(body, uint64(len(name)))
	body = append(body, name...)
	body = append(body, payload...)
	out := append([]byte{}, module...)
	out = append(out, 0)
	out = binary.AppendUvarint(out, uint64(len(body)))
	return append(out, body...)
}

// runCLI runs the gatehouse command line in this process against node n, and returns its output; it
// fails the test when the command fails.
func runCLI(t *testing.T, n *Node, args ...string) string {
	t.Helper()
	out, errOut, code := cliResult(n, args...)
	if code != 0 {
		t.Fatalf("gatehouse %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

func cliResult(n *Node, args ...string) (string, string, int) {
	var stdout, stderr syncBuffer
	args = append(args[:len(args):len(args)], "--data", n.DataDir())
	code := Main(args, &stdout, &stderr)
	return stdout.String(), stderr.String(), code
}

// served is what the version function answered.
type served struct {
	Version string `json:"version"`
	Color   string `json:"color"`
}

func getVersion(t *testing.T, n *Node, path string) (int, served) {
	t.Helper()
	r := do(t, newRequest(t, "GET", "http://"+n.GatewayAddr()+path, nil))
	var s served
	if r.status == 200 {
		if err := json.Unmarshal(r.body, &s); err != nil {
			t.Fatalf("GET %s: %s: %v", path, r.body, err)
		}
	}
	return r.status, s
}

func wantServed(t *testing.T, n *Node, path, version, color string) {
	t.Helper()
	status, s := getVersion(t, n, path)
	if status != 200 || s.Version != version || s.Color != color {
		t.Fatalf("GET %s: %d %+v, want version %s (%s)", path, status, s, version, color)
	}
}

// TestDeployLifecycle deploys, invokes, redeploys, moves an alias and rolls it back through the
// command line against a running stack, then restarts the stack and finds everything kept.
func TestDeployLifecycle(t *testing.T) {
	dataDir := newDataDir(t)
	n := startNode(t, "testdata/deploy-stack.yaml", dataDir)
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			n.Stop(context.Background())
		}
	})

	// The stack file's function is version 1; the alias the /live route names does not exist yet.
	wantServed(t, n, "/latest", "1", "stack")
	wantServed(t, n, "/first", "1", "stack")
	if status, _ := getVersion(t, n, "/live"); status != 500 {
		t.Fatalf("GET /live before the alias exists: %d, want 500", status)
	}

	blue := versionBundle(t, "blue", nil)
	if out := runCLI(t, n, "deploy", blue, "--alias", "live"); !strings.Contains(out, "deployed version version 2") || !strings.Contains(out, "live") {
		t.Fatalf("deploy output: %q", out)
	}
	// Deploy answers once the version serves: the very next request gets it.
	wantServed(t, n, "/latest", "2", "blue")
	wantServed(t, n, "/live", "2", "blue")
	wantServed(t, n, "/first", "1", "stack")
	if out := runCLI(t, n, "deploy", blue); !strings.Contains(out, "unchanged") {
		t.Fatalf("deploying the same bundle again: %q", out)
	}

	green := versionBundle(t, "green", nil)
	runCLI(t, n, "deploy", green)
	wantServed(t, n, "/latest", "3", "green")
	wantServed(t, n, "/live", "2", "blue") // the alias did not move

	runCLI(t, n, "alias", "set", "version", "live", "3")
	wantServed(t, n, "/live", "3", "green")
	runCLI(t, n, "alias", "set", "version", "live", "2") // roll back
	wantServed(t, n, "/live", "2", "blue")

	if out := runCLI(t, n, "invoke", "version:live"); !strings.Contains(out, `"version":"2"`) {
		t.Fatalf("invoke version:live: %q", out)
	}
	if out := runCLI(t, n, "invoke", "version:3", "--payload", `{"rawPath":"/direct"}`); !strings.Contains(out, `"color":"green"`) {
		t.Fatalf("invoke version:3: %q", out)
	}
	var versions struct {
		Versions []struct {
			Version     int               `json:"version"`
			Environment map[string]string `json:"environment"`
		} `json:"versions"`
	}
	if err := json.Unmarshal([]byte(runCLI(t, n, "versions", "version", "--json")), &versions); err != nil {
		t.Fatal(err)
	}
	if len(versions.Versions) != 3 || versions.Versions[2].Environment["COLOR"] != "green" {
		t.Fatalf("versions: %+v", versions.Versions)
	}
	if out := runCLI(t, n, "functions"); !strings.Contains(out, "version") {
		t.Fatalf("functions: %q", out)
	}
	// Function output reaches the log stream, tagged with its version.
	deadline := time.Now().Add(10 * time.Second)
	for {
		out := runCLI(t, n, "logs", "version")
		if strings.Contains(out, "version 3 (green) served /direct") && strings.Contains(out, "version 2 (blue) served /live") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("logs lack the invocations' output:\n%s", out)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if out := runCLI(t, n, "audit"); !strings.Contains(out, "function.deploy") || !strings.Contains(out, "alias.set") {
		t.Fatalf("audit: %q", out)
	}

	// A restart keeps functions, versions and aliases, and does not deploy the stack file's
	// function again.
	if err := n.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	stopped = true
	n = startNode(t, "testdata/deploy-stack.yaml", dataDir)
	t.Cleanup(func() { n.Stop(context.Background()) })
	wantServed(t, n, "/latest", "3", "green")
	wantServed(t, n, "/live", "2", "blue")
	wantServed(t, n, "/first", "1", "stack")
	if err := json.Unmarshal([]byte(runCLI(t, n, "versions", "version", "--json")), &versions); err != nil || len(versions.Versions) != 3 {
		t.Fatalf("versions after a restart: %+v, %v", versions.Versions, err)
	}

	// A weighted alias splits traffic in its ratio.
	t.Run("canary", func(t *testing.T) {
		runCLI(t, n, "alias", "set", "version", "live", "2", "--weight", "3=0.1")
		counts := map[string]int{}
		var mu sync.Mutex
		var wg sync.WaitGroup
		for w := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range 250 {
					status, s := getVersion(t, n, "/live")
					mu.Lock()
					counts[fmt.Sprint(status, " ", s.Version)]++
					mu.Unlock()
				}
				_ = w
			}()
		}
		wg.Wait()
		if got := counts["200 3"]; got < 150 || got > 250 || counts["200 2"]+got != 2000 {
			t.Fatalf("2,000 requests to a 10%% canary went %v; want 150 to 250 to version 3, the rest to 2", counts)
		}
	})

	// Deploys and alias moves under continuous load lose no request and serve no error.
	t.Run("under load", func(t *testing.T) {
		total := underLoad(t, n, []string{"/latest", "/live"}, func() {
			for i, color := range []string{"red", "cyan", "plum"} {
				// Each a new module, so each deploy stores, compiles and loads one.
				runCLI(t, n, "deploy", versionBundle(t, color, []byte(color)))
				wantServed(t, n, "/latest", fmt.Sprint(4+i), color)
				runCLI(t, n, "alias", "set", "version", "live", fmt.Sprint(4+i))
				wantServed(t, n, "/live", fmt.Sprint(4+i), color)
			}
		})
		t.Logf("%d requests during three deploys and alias moves, none failed", total)
	})

	// A directory is built into a bundle, then deployed.
	t.Run("from a directory", func(t *testing.T) {
		out := runCLI(t, n, "deploy", filepath.Join(testfix.RepoRoot(), versionModule))
		if !strings.Contains(out, "deployed version version 7") {
			t.Fatalf("deploy DIR: %q", out)
		}
		wantServed(t, n, "/latest", "7", "")
	})

	t.Run("rm", func(t *testing.T) {
		runCLI(t, n, "rm", "version")
		if status, _ := getVersion(t, n, "/latest"); status != 500 {
			t.Fatalf("GET /latest after rm: %d, want 500", status)
		}
		if _, errOut, code := cliResult(n, "versions", "version"); code == 0 || !strings.Contains(errOut, "function version: not found") {
			t.Fatalf("versions of a removed function: exit %d, %q", code, errOut)
		}
	})
}

// underLoad GETs paths in turn from 8 clients while during runs, and fails the test unless every
// request was answered 200; it returns how many were made.
func underLoad(t *testing.T, n *Node, paths []string, during func()) int64 {
	t.Helper()
	var stop atomic.Bool
	var total, failed atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				for _, path := range paths {
					resp, err := client.Get("http://" + n.GatewayAddr() + path)
					total.Add(1)
					if err != nil {
						failed.Add(1)
						firstErr.CompareAndSwap(nil, err.Error())
						continue
					}
					resp.Body.Close()
					if resp.StatusCode != http.StatusOK {
						failed.Add(1)
						firstErr.CompareAndSwap(nil, fmt.Sprintf("%s: %d", path, resp.StatusCode))
					}
				}
			}
		}()
	}
	during()
	stop.Store(true)
	wg.Wait()
	if failed.Load() != 0 || total.Load() == 0 {
		t.Fatalf("%d of %d requests failed; first: %v", failed.Load(), total.Load(), firstErr.Load())
	}
	return total.Load()
}
