package app

import (
	"context"
	"io"
	"net/http"
	"syscall"
	"testing"
	"time"
)

// BenchmarkHelloWholePath measures GET /hello through the whole path: HTTP client → gateway → bus →
// worker process → warm wasm instance → back. Run with:
//
//	go test -run '^$' -bench HelloWholePath -benchtime 5s ./internal/app/
func BenchmarkHelloWholePath(b *testing.B) {
	n := startNode(b, "testdata/stack.yaml", newDataDir(b))
	defer n.Stop(context.Background())
	url := "http://" + n.GatewayAddr() + "/hello"
	tr := &http.Transport{MaxIdleConnsPerHost: 256, MaxConnsPerHost: 256, IdleConnTimeout: time.Minute}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	get := func(b *testing.B) {
		resp, err := c.Get(url)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			b.Fatalf("status %d", resp.StatusCode)
		}
	}
	for range 200 { // warm every worker's pool
		get(b)
	}
	b.Run("serial", func(b *testing.B) {
		for b.Loop() {
			get(b)
		}
	})
	b.Run("parallel-64", func(b *testing.B) {
		b.SetParallelism(32) // ×GOMAXPROCS(2) = 64 requests in flight
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				get(b)
			}
		})
	})
}

// BenchmarkWorkerReplacement measures the time from SIGKILL of a worker until its replacement is ready
// (subscribed, taking invocations): a new process (started, functions loaded from the compilation
// cache) and the standby (told to take the worker's place). Run with:
//
//	go test -run '^$' -bench WorkerReplacement -benchtime 5x ./internal/app/
func BenchmarkWorkerReplacement(b *testing.B) {
	for _, standby := range []bool{false, true} {
		b.Run(map[bool]string{false: "new-process", true: "standby"}[standby], func(b *testing.B) {
			n := startNode(b, "testdata/stack.yaml", newDataDir(b), func(o *Options) { o.Standby = standby })
			defer n.Stop(context.Background())
			b.ResetTimer()
			for range b.N {
				b.StopTimer()
				for standby && n.sup.readyStandby() == 0 {
					time.Sleep(time.Millisecond)
				}
				pid := n.WorkerPIDs()["w1"]
				b.StartTimer()
				if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
					b.Fatal(err)
				}
				for {
					if p, ok := n.WorkerPIDs()["w1"]; ok && p != pid && n.readyWorkers() == 2 {
						break
					}
					time.Sleep(time.Millisecond)
				}
			}
		})
	}
}
