package app

import (
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestWatchMode edits a function's file under a running `up --watch` while a client keeps calling
// it: the new answer is served with no failed request, a save with a syntax error keeps the last
// good version serving, and old versions are pruned.
func TestWatchMode(t *testing.T) {
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("python3 not found on PATH: the test edits a Python function (.ci/run installs it)")
	}
	needSandbox(t)
	dir := t.TempDir()
	src := filepath.Join(dir, "fn", "app.py")
	write := func(body string) {
		t.Helper()
		// As editors save: a new file renamed over the old one.
		tmp := src + ".tmp"
		if err := os.WriteFile(tmp, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, src); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(filepath.Dir(src), 0o755); err != nil {
		t.Fatal(err)
	}
	answer := func(s string) string {
		return "def handler(event, context):\n    return {'statusCode': 200, 'body': '" + s + "'}\n"
	}
	write(answer("v1"))
	stack := "version: 1\nname: watched\nfunctions:\n  fn: {source: ./fn, runtime: python3.11, handler: app.handler}\napis:\n  web:\n    type: http\n    routes:\n      GET /fn: {function: fn}\n"
	if err := os.WriteFile(filepath.Join(dir, "gatehouse.yaml"), []byte(stack), 0o644); err != nil {
		t.Fatal(err)
	}
	var out syncBuffer
	n := startNode(t, filepath.Join(dir, "gatehouse.yaml"), newDataDir(t), func(o *Options) { o.Watch, o.Stdout = true, &out })
	url := "http://" + n.GatewayAddr() + "/fn"

	// A client calling the function all along; every answer must be 200 with one of the versions.
	var mu sync.Mutex
	bodies := map[string]int{}
	var failures []string
	var stop atomic.Bool
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for !stop.Load() {
			resp, err := http.Get(url)
			mu.Lock()
			if err != nil {
				failures = append(failures, err.Error())
			} else {
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					failures = append(failures, resp.Status+" "+string(body))
				}
				bodies[string(body)]++
			}
			mu.Unlock()
		}
	}()
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("waiting for %s; output:\n%s", what, out.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	seen := func(body string) func() bool {
		return func() bool { mu.Lock(); defer mu.Unlock(); return bodies[body] > 0 }
	}
	waitFor("the first answer", seen("v1"))
	waitFor("the watcher", func() bool { return strings.Contains(out.String(), "watching") })

	for i := 2; i <= 5; i++ {
		v := "v" + string(rune('0'+i))
		write(answer(v))
		waitFor(v+" served", seen(v))
	}
	if !strings.Contains(out.String(), "fn/app.py changed: fn version 5, serving in ") {
		t.Errorf("watch mode's report:\n%s", out.String())
	}

	// A save that does not parse is reported and changes nothing.
	write("def handler(event, context:\n")
	waitFor("the broken save reported", func() bool {
		return strings.Contains(out.String(), "not reloaded, the last good version keeps serving")
	})
	if !strings.Contains(out.String(), "fn/app.py:1:") {
		t.Errorf("the report of the broken save does not say where:\n%s", out.String())
	}
	time.Sleep(200 * time.Millisecond) // requests after the report
	stop.Store(true)
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	if len(failures) > 0 {
		t.Errorf("%d failed requests during the edits, such as %q", len(failures), failures[0])
	}
	if bodies["v5"] < 2 {
		t.Errorf("answers %v: want v5 still served after the broken save", bodies)
	}

	// Only the newest versions are kept.
	vs, err := n.registry.Versions(context.Background(), "fn")
	if err != nil || len(vs) != watchKeepVersions || vs[len(vs)-1].Version != 5 {
		var nums []int
		for _, v := range vs {
			nums = append(nums, v.Version)
		}
		t.Errorf("versions after five saves: %v %v, want the newest %d", nums, err, watchKeepVersions)
	}
	if _, err := n.registry.Version(context.Background(), "fn", 1); err == nil || !strings.Contains(err.Error(), "removed") {
		t.Errorf("version 1 after pruning: %v", err)
	}
}
