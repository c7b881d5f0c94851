package app

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
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

	var stop atomic.Bool
	var total, failed atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				resp, err := client.Get("http://" + n.GatewayAddr() + "/latest")
				total.Add(1)
				if err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, fmt.Sprintf("status %d", resp.StatusCode))
				}
			}
		}()
	}
	for i, color := range []string{"red", "cyan", "plum"} {
		runCLI(t, n, "deploy", versionBundle(t, color, []byte(color)))
		wantServed(t, n, "/latest", fmt.Sprint(2+i), color)
	}
	stop.Store(true)
	wg.Wait()
	if failed.Load() != 0 || total.Load() == 0 {
		t.Fatalf("%d of %d requests failed during deploys; first: %v", failed.Load(), total.Load(), firstErr.Load())
	}
	t.Logf("%d requests during three deploys, none failed", total.Load())
}
