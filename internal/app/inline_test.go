package app

import (
	"context"
	"fmt"
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
