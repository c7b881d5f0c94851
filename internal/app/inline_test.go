package app

import (
	"context"
	"fmt"
	"strings"
	"testing"
)

// TestInlineWorkerDeploysUnderLoad: with --worker-mode inline the node runs no worker process, serves
// from the worker inside it, and three deploys under continuous load lose no request and serve no
// error, as with worker processes.
func TestInlineWorkerDeploysUnderLoad(t *testing.T) {
	n := startNode(t, "testdata/deploy-stack.yaml", newDataDir(t), func(o *Options) { o.WorkerMode = WorkerModeInline })
	defer n.Stop(context.Background())
	if pids := n.WorkerPIDs(); len(pids) != 0 {
		t.Fatalf("worker processes %v with --worker-mode inline", pids)
	}
	if ready := n.readyWorkers(); ready != 1 {
		t.Fatalf("%d workers ready, want the inline one", ready)
	}
	wantServed(t, n, "/latest", "1", "stack")

	total := underLoad(t, n, []string{"/latest"}, func() {
		for i, color := range []string{"red", "cyan", "plum"} {
			runCLI(t, n, "deploy", versionBundle(t, color, []byte(color)))
			wantServed(t, n, "/latest", fmt.Sprint(2+i), color)
		}
	})
	t.Logf("%d requests during three deploys, none failed", total)
}

// TestInlineIntegrationTimeout: with --worker-mode inline, where an invocation runs on the gateway's
// own goroutine when the route's integration timeout leaves room for the function's, a route whose
// integration timeout (200 ms) is shorter than its function's (3 s) still answers at its own: the
// invocation is handed to the worker's goroutine, and the function sleeping 1 s runs on.
func TestInlineIntegrationTimeout(t *testing.T) {
	n := startNode(t, "testdata/stack.yaml", newDataDir(t), func(o *Options) { o.WorkerMode = WorkerModeInline })
	defer n.Stop(context.Background())
	base := "http://" + n.GatewayAddr()
	req := newRequest(t, "POST", base+"/respond/short-timeout", strings.NewReader(`"late"`))
	req.Header.Set("x-sleep-ms", "1000")
	if r := do(t, req); r.status != 503 || string(r.body) != `{"message":"Service Unavailable"}` {
		t.Fatalf("a 200 ms integration timeout before a 1 s function: got %d %s, want 503", r.status, r.body)
	}
	// The same function behind a route with the default integration timeout: on the gateway's
	// goroutine, answered.
	req = newRequest(t, "POST", base+"/respond", strings.NewReader(`"in time"`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("x-sleep-ms", "300")
	if r := do(t, req); r.status != 200 || string(r.body) != `in time` {
		t.Fatalf("a 300 ms function behind a 30 s integration timeout: got %d %s", r.status, r.body)
	}
}
