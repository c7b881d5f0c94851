package app

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fasthttp/websocket"

	"gatehouse.dev/gatehouse/internal/testfix"
)

// isolationStack writes a stack of functions that loop, sleep, compute, eat memory and recurse, next
// to hello and the chat sample.
func isolationStack(t *testing.T) string {
	t.Helper()
	wat := func(name string) string { return hostileWAT(t, name) }
	root := testfix.RepoRoot()
	stack := fmt.Sprintf(`version: 1
name: isolation
functions:
  hello:
    source: %s
  chat:
    source: %s
  loop:
    source: %s
    timeout: 10s
  sleeper:
    source: %s
    timeout: 5s
  cpu:
    source: %s
    timeout: 10s
  bomb:
    source: %s
    memory: 1024
  recurse:
    source: %s
apis:
  web:
    type: http
    routes:
      GET /hello: {function: hello}
      GET /loop: {function: loop}
      GET /sleeper: {function: sleeper}
      GET /cpu: {function: cpu}
      GET /bomb: {function: bomb}
      GET /recurse: {function: recurse}
  chat:
    type: websocket
    mount: /chat
    routeSelectionExpression: $request.body.action
    routes:
      $connect: {function: chat}
      $disconnect: {function: chat}
      $default: {function: chat}
`, filepath.Join(root, "samples/hello"), filepath.Join(root, "samples/chat"),
		wat("spin"), wat("sleep"), wat("cpu"), wat("grow"), wat("recurse"))
	return writeStack(t, stack)
}

// helloLoad calls /hello from clients goroutines until stopped, keeping every status and latency.
type helloLoad struct {
	stop     chan struct{}
	wg       sync.WaitGroup
	mu       sync.Mutex
	statuses map[string]int
	took     []time.Duration
}

func startHelloLoad(base string, clients int) *helloLoad {
	l := &helloLoad{stop: make(chan struct{}), statuses: map[string]int{}}
	for range clients {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for {
				select {
				case <-l.stop:
					return
				default:
				}
				start := time.Now()
				status := "error"
				if resp, err := client.Get(base + "/hello"); err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					status = resp.Status
				}
				l.mu.Lock()
				l.statuses[status]++
				l.took = append(l.took, time.Since(start))
				l.mu.Unlock()
				time.Sleep(2 * time.Millisecond)
			}
		}()
	}
	return l
}

// end stops the load and checks that every call was answered 200, reporting how many and how fast.
func (l *helloLoad) end(t *testing.T) {
	t.Helper()
	close(l.stop)
	l.wg.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	ok := l.statuses["200 OK"]
	slices.Sort(l.took)
	pct := func(p float64) time.Duration {
		if len(l.took) == 0 {
			return 0
		}
		return l.took[min(len(l.took)-1, int(float64(len(l.took))*p))].Round(100 * time.Microsecond)
	}
	t.Logf("hello meanwhile: %d answered 200, p50 %s, p99 %s, max %s", ok, pct(0.5), pct(0.99), pct(1))
	if ok == 0 || ok != len(l.took) {
		t.Errorf("hello meanwhile: %v, want every call answered 200", l.statuses)
	}
}

// getAll sends n concurrent GETs to path and returns their statuses and bodies.
func getAll(t *testing.T, base, path string, n int) []response {
	t.Helper()
	out := make([]response, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i] = do(t, newRequest(t, "GET", base+path, nil))
		}()
	}
	wg.Wait()
	return out
}

// TestIsolation runs the misbehaving functions of the issue that fair turns and safepoints were built
// for, each while /hello is called all along: the misbehaving calls fail (or are shed) alone, hello
// answers 200 every time, and no worker is killed.
func TestIsolation(t *testing.T) { testIsolation(t, WorkerModeProcess) }

// TestIsolationInline is TestIsolation with the guests in `up`'s own process (--worker-mode
// inline): the same guarantees hold there.
func TestIsolationInline(t *testing.T) { testIsolation(t, WorkerModeInline) }

func testIsolation(t *testing.T, mode string) {
	// An inline worker's memory is this process's: what it holds is measured from what the process
	// held before the node started.
	var baseHWM, baseRSS int
	if mode == WorkerModeInline {
		baseHWM, baseRSS = procStatusKB(t, os.Getpid(), "VmHWM"), procStatusKB(t, os.Getpid(), "VmRSS")
	}
	n := startNode(t, isolationStack(t), newDataDir(t), func(o *Options) { o.WorkerMemoryMB = 512; o.WorkerMode = mode })
	defer n.Stop(context.Background())
	workers := func() map[string]int {
		if mode == WorkerModeInline {
			return map[string]int{"inline": os.Getpid()}
		}
		return n.WorkerPIDs()
	}
	if len(workers()) == 0 {
		t.Fatal("no worker process")
	}
	base := "http://" + n.GatewayAddr()
	internal := `{"message":"Internal Server Error"}`

	t.Run("four loops at a 10 s timeout", func(t *testing.T) {
		load := startHelloLoad(base, 8)
		start := time.Now()
		for _, r := range getAll(t, base, "/loop", 4) {
			if r.status != 500 || string(r.body) != internal {
				t.Errorf("loop: %d %s, want 500", r.status, r.body)
			}
		}
		// Stopped at their timeout, not when a watchdog gave up on their workers (coarse bound).
		if took := time.Since(start); took > 15*time.Second {
			t.Errorf("the loops were answered after %s", took)
		}
		t.Logf("loops answered after %s", time.Since(start).Round(time.Millisecond))
		load.end(t)
		if v := metricValue(t, n, `gatehouse_invocation_failures_total{function="loop",reason="timeout"}`); v != 4 {
			t.Errorf("%v loop invocations counted as timed out, want 4", v)
		}
	})

	for _, tt := range []struct {
		name, path string
		n          int
		want       string
	}{
		{"twelve sleepers", "/sleeper", 12, "slept"},
		{"computing for 2 s", "/cpu", 2, "done"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			load := startHelloLoad(base, 8)
			for _, r := range getAll(t, base, tt.path, tt.n) {
				if r.status != 200 || string(r.body) != tt.want {
					t.Errorf("%s: %d %s, want 200 %s", tt.path, r.status, r.body, tt.want)
				}
			}
			load.end(t)
		})
	}

	t.Run("memory bomb of 1024 MB in a worker of 512", func(t *testing.T) {
		load := startHelloLoad(base, 4)
		if r := do(t, newRequest(t, "GET", base+"/bomb", nil)); r.status != 500 || string(r.body) != internal {
			t.Errorf("bomb: %d %s, want 500", r.status, r.body)
		}
		load.end(t)
		for id, pid := range workers() {
			if peak := procStatusKB(t, pid, "VmHWM") - baseHWM; peak > 900<<10 {
				t.Errorf("worker %s peaked at %d MiB with a budget of 512", id, peak>>10)
			}
		}
	})

	t.Run("recursion twenty times", func(t *testing.T) {
		load := startHelloLoad(base, 4)
		for range 20 {
			if r := do(t, newRequest(t, "GET", base+"/recurse", nil)); r.status != 500 || string(r.body) != internal {
				t.Fatalf("recurse: %d %s, want 500", r.status, r.body)
			}
		}
		load.end(t)
		for id, pid := range workers() {
			rss := procStatusKB(t, pid, "VmRSS") - baseRSS
			t.Logf("worker %s resident: %d MiB", id, rss>>10)
			if rss > 400<<10 {
				t.Errorf("worker %s holds %d MiB after the recursions", id, rss>>10)
			}
		}
	})

	t.Run("a storm of 2,000 WebSocket connects", func(t *testing.T) {
		load := startHelloLoad(base, 4)
		var opened, refused, failed atomic.Int64
		var mu sync.Mutex
		other := map[string]int{}
		var conns []*websocket.Conn
		var wg sync.WaitGroup
		dialer := &websocket.Dialer{HandshakeTimeout: 30 * time.Second}
		for range 2000 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c, resp, err := dialer.Dial("ws://"+n.GatewayAddr()+"/chat", nil)
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					opened.Add(1)
					conns = append(conns, c)
				case resp != nil && (resp.StatusCode == 503 && resp.Header.Get("Retry-After") != "" || resp.StatusCode == 429):
					refused.Add(1)
				case resp != nil && resp.StatusCode == 500:
					// The chat function itself failed: under this load its own key-value calls
					// can outlast its 3 s timeout.
					failed.Add(1)
				case resp != nil:
					other[resp.Status]++
				default:
					msg := err.Error()
					if strings.Contains(msg, "timeout") {
						msg = "timeout"
					}
					other[msg]++
				}
			}()
		}
		wg.Wait()
		t.Logf("2,000 connects: %d opened, %d refused with 503 or 429, %d failed in the function, others %v", opened.Load(), refused.Load(), failed.Load(), other)
		if len(other) != 0 {
			t.Errorf("connects answered neither 101, a clean refusal nor a function error: %v", other)
		}
		if failed.Load() > 100 {
			t.Errorf("%d connects failed in the function: overload should be shed before it runs, not time out in it", failed.Load())
		}
		if opened.Load() == 0 {
			t.Error("no connection opened")
		}
		// The opened ones stay open: each answers a message.
		for _, c := range conns[:min(len(conns), 20)] {
			c.SetReadDeadline(time.Now().Add(wsTimeout))
			if err := c.WriteMessage(websocket.TextMessage, []byte(`{"action":"help"}`)); err != nil {
				t.Errorf("writing to an opened connection: %v", err)
			}
		}
		for _, c := range conns {
			c.Close()
		}
		load.end(t)
	})

	if r := n.WorkerRestarts(); r != 0 {
		t.Errorf("%d worker restarts; guests that can be stopped need none", r)
	}
	shed := metricValue(t, n, "gatehouse_invocations_shed_total")
	t.Logf("invocations shed: %v", shed)
}

// procStatusKB reads a field of /proc/PID/status in kB, skipping the test where there is no /proc.
func procStatusKB(t *testing.T, pid int, field string) int {
	t.Helper()
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			var kb int
			fmt.Sscan(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), &kb)
			return kb
		}
	}
	t.Fatalf("no %s in /proc/%d/status", field, pid)
	return 0
}

// scrapeMetrics reads the admin listener's /metrics.
func scrapeMetrics(t *testing.T, n *Node) string {
	t.Helper()
	req := newRequest(t, "GET", "http://"+n.AdminAddr()+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+adminToken(t, n))
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return string(body)
}

// metricValue sums a metric's samples from the admin listener's /metrics.
func metricValue(t *testing.T, n *Node, name string) float64 {
	t.Helper()
	var sum float64
	for _, line := range strings.Split(scrapeMetrics(t, n), "\n") {
		if strings.HasPrefix(line, name) {
			var v float64
			fmt.Sscan(line[strings.LastIndexByte(line, ' ')+1:], &v)
			sum += v
		}
	}
	return sum
}
