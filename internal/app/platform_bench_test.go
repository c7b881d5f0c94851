package app

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"syscall"
	"testing"
	"time"
)

// BenchmarkPlatformCost measures what the platform itself costs per request, side by side in one
// run: the Go `hello` sample against a minimal reactor (the docs/abi.md example, about 200 bytes of
// WebAssembly that answers a constant without reading its event), both behind the same node, the
// same routes and the same client. The difference is the Go guest's own work (its runtime, the SDK's
// JSON); what the minimal reactor costs is the gateway, the bus, the worker and the sandbox call. Each
// runs with the worker processes and with the inline worker (--worker-mode inline).
//
//	go test ./internal/app -run '^$' -bench PlatformCost -benchtime 3s
func BenchmarkPlatformCost(b *testing.B) {
	stack := platformStack(b)
	for _, mode := range []string{WorkerModeProcess, WorkerModeInline} {
		b.Run(mode, func(b *testing.B) { benchPlatformCost(b, stack, mode) })
	}
}

// platformStack writes a stack of the Go hello sample (GET /hello) and the minimal reactor, which
// answers "hi" (GET /minimal), and returns its file.
func platformStack(b *testing.B) string {
	dir := b.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "minimal.wasm"), watReactor("hi"), 0o644); err != nil {
		b.Fatal(err)
	}
	samples, err := filepath.Abs("../../samples/hello")
	if err != nil {
		b.Fatal(err)
	}
	stack := fmt.Sprintf(`version: 1
name: platform
functions:
  hello:
    source: %s
  minimal:
    source: ./minimal.wasm
apis:
  web:
    type: http
    routes:
      GET /hello:
        function: hello
      GET /minimal:
        function: minimal
`, samples)
	if err := os.WriteFile(filepath.Join(dir, "gatehouse.yaml"), []byte(stack), 0o644); err != nil {
		b.Fatal(err)
	}
	return filepath.Join(dir, "gatehouse.yaml")
}

// benchPlatformCost serves the stack's hello and minimal with the worker mode given, one request at
// a time and 64 at once.
func benchPlatformCost(b *testing.B, stackFile, mode string) {
	n := startNode(b, stackFile, newDataDir(b), func(o *Options) { o.WorkerMode = mode })
	defer n.Stop(context.Background())
	tr := &http.Transport{MaxIdleConnsPerHost: 256, MaxConnsPerHost: 256, IdleConnTimeout: time.Minute}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	get := func(b *testing.B, url string) {
		resp, err := c.Get(url)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b.Fatalf("%s: status %d", url, resp.StatusCode)
		}
	}
	for _, fn := range []string{"hello", "minimal"} {
		url := "http://" + n.GatewayAddr() + "/" + fn
		for range 200 { // warm every worker's pool
			get(b, url)
		}
		b.Run(fn+"/serial", func(b *testing.B) {
			lat := make([]time.Duration, 0, b.N)
			for b.Loop() {
				start := time.Now()
				get(b, url)
				lat = append(lat, time.Since(start))
			}
			sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-us")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-us")
		})
		b.Run(fn+"/parallel-64", func(b *testing.B) {
			b.SetParallelism(32) // ×GOMAXPROCS(2) = 64 requests in flight
			before := processCPU(b, n)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					get(b, url)
				}
			})
			// CPU per request of this process (client, gateway, bus, and an inline worker) and of
			// the worker processes: steadier than the rate on a shared machine.
			b.ReportMetric(float64((processCPU(b, n)-before).Microseconds())/float64(b.N), "cpu-us/op")
		})
	}
}

// processCPU is the CPU time this process and n's worker processes have used.
func processCPU(b *testing.B, n *Node) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Skip("no getrusage:", err)
	}
	total := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	for _, pid := range n.WorkerPIDs() {
		cpu, _ := wsbProcCPU(pid)
		total += cpu
	}
	return total
}
