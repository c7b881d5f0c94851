package app

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"context"

	"gatehouse.dev/gatehouse/internal/testfix"
)

// hostileWAT builds one of the misbehaving modules in testdata/hostile and returns its path.
func hostileWAT(t *testing.T, name string) string {
	return testfix.WAT(t, "internal/app/testdata/hostile/"+name+".wat")
}

// writeStack writes a stack file into a temporary directory and returns its path.
func writeStack(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "gatehouse.yaml")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// hostileStack writes a stack of misbehaving functions next to well-behaved ones.
func hostileStack(t *testing.T) string {
	t.Helper()
	wat := func(name string) string { return hostileWAT(t, name) }
	root := testfix.RepoRoot()
	stack := fmt.Sprintf(`version: 1
name: hostile
functions:
  hello:
    source: %s
  respond:
    source: %s
  limited:
    source: %s
    maxConcurrency: 2
  spin:
    source: %s
    timeout: 1s
  grow:
    source: %s
    memory: 128
  recurse:
    source: %s
  bigout:
    source: %s
  watcmd:
    source: %s
apis:
  web:
    type: http
    routes:
      GET /hello: {function: hello}
      POST /respond: {function: respond}
      POST /limited: {function: limited}
      ANY /spin: {function: spin}
      ANY /grow: {function: grow}
      ANY /recurse: {function: recurse}
      ANY /bigout: {function: bigout}
      ANY /watcmd: {function: watcmd}
`, filepath.Join(root, "samples/hello"), filepath.Join(root, "internal/app/testdata/functions/respond"),
		filepath.Join(root, "internal/app/testdata/functions/respond"),
		wat("spin"), wat("grow"), wat("recurse"), wat("bigout"), wat("hi-command"))
	return writeStack(t, stack)
}

// TestHostileFunctions runs functions that loop forever, eat memory, recurse without end and answer
// too much, while hello is called all along: each hostile call gets a 500, hello never fails, and no
// request is lost.
func TestHostileFunctions(t *testing.T) {
	n := startNode(t, hostileStack(t), newDataDir(t))
	defer n.Stop(context.Background())
	base := "http://" + n.GatewayAddr()

	// hello, called all along from two goroutines.
	stop := make(chan struct{})
	var helloOK, helloBad atomic.Int64
	var badMu sync.Mutex
	var badSeen []string
	var helloWG sync.WaitGroup
	for range 2 {
		helloWG.Add(1)
		go func() {
			defer helloWG.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				resp, err := client.Get(base + "/hello")
				if err != nil {
					helloBad.Add(1)
					badMu.Lock()
					badSeen = append(badSeen, err.Error())
					badMu.Unlock()
					continue
				}
				resp.Body.Close()
				if resp.StatusCode == 200 {
					helloOK.Add(1)
				} else {
					helloBad.Add(1)
					badMu.Lock()
					badSeen = append(badSeen, resp.Status)
					badMu.Unlock()
				}
				time.Sleep(5 * time.Millisecond)
			}
		}()
	}

	internal := `{"message":"Internal Server Error"}`
	for _, tt := range []struct {
		name  string
		path  string
		limit time.Duration
	}{
		{"infinite loop with a 1 s timeout", "/spin", 5 * time.Second},
		{"memory growth past the limit", "/grow", 10 * time.Second},
		{"unbounded recursion", "/recurse", 10 * time.Second},
		{"8 MiB of output", "/bigout", 10 * time.Second},
	} {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			r := do(t, newRequest(t, "GET", base+tt.path, nil))
			took := time.Since(start)
			if r.status != 500 || string(r.body) != internal {
				t.Fatalf("got %d %s, want 500", r.status, r.body)
			}
			if took > tt.limit {
				t.Fatalf("answered after %s, want within %s", took, tt.limit)
			}
			t.Logf("500 after %s", took.Round(time.Millisecond))
		})
	}

	t.Run("worker memory stays bounded", func(t *testing.T) {
		// The memory bomb may grow to its function's 128 MB and no further; a worker's peak resident
		// size stays far below what an unbounded guest would reach (4 GiB).
		for id, pid := range n.WorkerPIDs() {
			kb := procStatusKB(t, pid, "VmHWM")
			t.Logf("worker %s peak resident size %d MiB", id, kb/1024)
			if kb > 1<<20 {
				t.Errorf("worker %s peaked at %d MiB", id, kb/1024)
			}
		}
	})

	t.Run("a command-ABI module in WAT", func(t *testing.T) {
		r := do(t, newRequest(t, "POST", base+"/watcmd", strings.NewReader(`{"some":"event"}`)))
		if r.status != 200 || string(r.body) != "hi from a wat command" {
			t.Fatalf("got %d %q", r.status, r.body)
		}
	})

	t.Run("max concurrency 2 under 100 concurrent requests", func(t *testing.T) {
		var ok, throttled, other atomic.Int64
		var wg sync.WaitGroup
		for range 100 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				req, _ := http.NewRequest("POST", base+"/limited", strings.NewReader(`"done"`))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("x-sleep-ms", "300")
				resp, err := client.Do(req)
				if err != nil {
					other.Add(1)
					return
				}
				var body bytes.Buffer
				body.ReadFrom(resp.Body)
				resp.Body.Close()
				switch {
				case resp.StatusCode == 200 && body.String() == "done":
					ok.Add(1)
				case resp.StatusCode == 429 && body.String() == `{"message":"Too Many Requests"}`:
					throttled.Add(1)
				default:
					other.Add(1)
				}
			}()
		}
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			t.Fatal("requests hang")
		}
		if ok.Load() < 2 || throttled.Load() < 90 || other.Load() != 0 || ok.Load()+throttled.Load() != 100 {
			t.Fatalf("200: %d, 429: %d, other: %d", ok.Load(), throttled.Load(), other.Load())
		}
	})

	close(stop)
	helloWG.Wait()
	if helloBad.Load() != 0 || helloOK.Load() < 20 {
		t.Fatalf("hello meanwhile: %d answered, %d failed: %v", helloOK.Load(), helloBad.Load(), badSeen)
	}
	t.Logf("hello answered %d times meanwhile; %d worker restarts", helloOK.Load(), n.WorkerRestarts())
}
