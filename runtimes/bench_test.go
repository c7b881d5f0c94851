package runtimes_test

import (
	"context"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"gatehouse.dev/gatehouse/internal/testfix"
	"gatehouse.dev/gatehouse/runtimes"
)

// Run with: go test -run '^$' -bench . -benchtime 20x ./runtimes/

func helloWasm(b *testing.B) []byte {
	wasm, err := os.ReadFile(testfix.Reactor(b, "samples/hello"))
	if err != nil {
		b.Fatal(err)
	}
	return wasm
}

// BenchmarkCompile measures compiling the Go hello module: from scratch, and from a warm file cache
// (what a worker does at start once `up` has compiled it), with and without the safepoint rewrite.
func BenchmarkCompile(b *testing.B) {
	ctx := context.Background()
	wasm := helloWasm(b)
	b.Run("no-cache", func(b *testing.B) {
		for b.Loop() {
			e, err := runtimes.NewEngine(ctx, runtimes.Config{})
			if err != nil {
				b.Fatal(err)
			}
			if _, err := e.Compile(ctx, wasm); err != nil {
				b.Fatal(err)
			}
			e.Close(ctx)
		}
	})
	for _, unmetered := range []bool{false, true} {
		name := map[bool]string{false: "file-cache/metered", true: "file-cache/unmetered"}[unmetered]
		b.Run(name, func(b *testing.B) {
			dir := b.TempDir()
			cfg := runtimes.Config{CacheDir: dir, Unmetered: unmetered}
			warm, _ := runtimes.NewEngine(ctx, cfg)
			if _, err := warm.Compile(ctx, wasm); err != nil {
				b.Fatal(err)
			}
			warm.Close(ctx)
			b.ResetTimer()
			for b.Loop() {
				e, err := runtimes.NewEngine(ctx, cfg)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := e.Compile(ctx, wasm); err != nil {
					b.Fatal(err)
				}
				e.Close(ctx)
			}
		})
	}
}

var helloEvent = []byte(`{"version":"2.0","routeKey":"GET /hello","rawPath":"/hello","rawQueryString":"","headers":{"host":"127.0.0.1:8080","user-agent":"bench"},"requestContext":{"routeKey":"GET /hello","stage":"$default","requestId":"Mc7UVioPPHcEKPA=","http":{"method":"GET","path":"/hello","protocol":"HTTP/1.1","sourceIp":"127.0.0.1","userAgent":"bench"}},"isBase64Encoded":false}`)

// BenchmarkColdStart measures instantiating a compiled Go hello (Go runtime start included) and its
// first invocation: initialised by the module itself, and started from a snapshot.
func BenchmarkColdStart(b *testing.B) {
	b.Run("init", func(b *testing.B) { benchColdStart(b, helloWasm(b), false) })
	b.Run("snapshot", func(b *testing.B) { benchColdStart(b, helloWasm(b), true) })
	b.Run("first", func(b *testing.B) { benchFirstStart(b, helloWasm(b)) })
}

// benchFirstStart measures the first instance of a new engine (as in a new worker process, whose
// memories are all new), a second after the engine was made; the engine's making and the module's
// compiling (from the file cache) are not counted.
func benchFirstStart(b *testing.B, wasm []byte) {
	ctx := context.Background()
	for b.Loop() {
		b.StopTimer()
		e, _ := runtimes.NewEngine(ctx, runtimes.Config{CacheDir: testfix.CompileCacheDir(), MemoryLimitMB: 128})
		m, err := e.Compile(ctx, wasm)
		if err != nil {
			b.Fatal(err)
		}
		time.Sleep(time.Second)
		b.StartTimer()
		inst, err := m.Instantiate(ctx, runtimes.InstanceConfig{FunctionName: "f"})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := inst.Invoke(ctx, runtimes.Meta{RequestID: "r"}, helloEvent); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		inst.Close(ctx)
		e.Close(ctx)
		b.StartTimer()
	}
}

// benchColdStart compiles wasm, then instantiates and invokes it once per iteration; with snapshot,
// from the snapshot the first instance leaves.
func benchColdStart(b *testing.B, wasm []byte, snapshot bool) {
	ctx := context.Background()
	e, _ := runtimes.NewEngine(ctx, runtimes.Config{CacheDir: testfix.CompileCacheDir()})
	defer e.Close(ctx)
	m, err := e.Compile(ctx, wasm)
	if err != nil {
		b.Fatal(err)
	}
	cfg := runtimes.InstanceConfig{FunctionName: "f", Snapshot: snapshot}
	if snapshot {
		inst, err := m.Instantiate(ctx, cfg)
		if err != nil {
			b.Fatal(err)
		}
		inst.Close(ctx)
	}
	for b.Loop() {
		inst, err := m.Instantiate(ctx, cfg)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := inst.Invoke(ctx, runtimes.Meta{RequestID: "r"}, helloEvent); err != nil {
			b.Fatal(err)
		}
		inst.Close(ctx)
	}
}

// BenchmarkWarmInvoke measures one invocation of a warm Go hello instance, with the safepoint
// rewrite (metered) and without it (unmetered), side by side.
func BenchmarkWarmInvoke(b *testing.B) {
	for _, unmetered := range []bool{false, true} {
		b.Run(map[bool]string{false: "metered", true: "unmetered"}[unmetered], func(b *testing.B) {
			benchWarmInvoke(b, runtimes.Config{CacheDir: testfix.CompileCacheDir(), Unmetered: unmetered})
		})
	}
}

func benchWarmInvoke(b *testing.B, cfg runtimes.Config) {
	ctx := context.Background()
	e, _ := runtimes.NewEngine(ctx, cfg)
	defer e.Close(ctx)
	m, err := e.Compile(ctx, helloWasm(b))
	if err != nil {
		b.Fatal(err)
	}
	inst, err := m.Instantiate(ctx, runtimes.InstanceConfig{FunctionName: "hello"})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	// With a deadline, as every invocation through a worker has.
	meta := runtimes.Meta{RequestID: "r", Deadline: time.Now().Add(time.Hour)}
	for b.Loop() {
		if _, err := inst.Invoke(ctx, meta, helloEvent); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkColdStartWAT measures instantiating a compiled small WAT reactor and its first invocation.
func BenchmarkColdStartWAT(b *testing.B) {
	wasm, err := os.ReadFile(testfix.WAT(b, "runtimes/testdata/abi/echo.wat"))
	if err != nil {
		b.Fatal(err)
	}
	benchColdStart(b, wasm, false)
}

// BenchmarkWarmInstanceRSS reports the resident memory one more warm Go hello instance costs
// (instantiated and invoked ten times), from the process's VmRSS over b.N instances. Run with:
//
//	go test -run '^$' -bench WarmInstanceRSS -benchtime 100x ./runtimes/
func BenchmarkWarmInstanceRSS(b *testing.B) {
	ctx := context.Background()
	e, _ := runtimes.NewEngine(ctx, runtimes.Config{CacheDir: testfix.CompileCacheDir()})
	defer e.Close(ctx)
	m, err := e.Compile(ctx, helloWasm(b))
	if err != nil {
		b.Fatal(err)
	}
	var keep []*runtimes.Instance
	defer func() {
		for _, inst := range keep {
			inst.Close(ctx)
		}
	}()
	warm := func() {
		inst, err := m.Instantiate(ctx, runtimes.InstanceConfig{FunctionName: "f"})
		if err != nil {
			b.Fatal(err)
		}
		for range 10 {
			if _, err := inst.Invoke(ctx, runtimes.Meta{RequestID: "r"}, helloEvent); err != nil {
				b.Fatal(err)
			}
		}
		keep = append(keep, inst)
	}
	warm() // the module's code and the engine's own memory are resident before counting
	runtime.GC()
	before := vmRSS(b)
	b.ResetTimer()
	for range b.N {
		warm()
	}
	b.StopTimer()
	runtime.GC()
	b.ReportMetric(float64(vmRSS(b)-before)/float64(b.N)/(1<<20), "MiB-RSS/instance")
}

// vmRSS returns this process's resident set in bytes.
func vmRSS(b *testing.B) int64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		b.Skip("no /proc/self/status here")
	}
	for line := range strings.Lines(string(data)) {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				b.Fatal(err)
			}
			return kb << 10
		}
	}
	b.Fatal("no VmRSS in /proc/self/status")
	return 0
}

// BenchmarkTightLoop measures 100 million iterations of a tight loop, with the safepoint counter
// (metered) and without (unmetered): the rewrite's worst case.
func BenchmarkTightLoop(b *testing.B) {
	wasm, err := os.ReadFile(testfix.WAT(b, "runtimes/testdata/bench/count.wat"))
	if err != nil {
		b.Fatal(err)
	}
	for _, unmetered := range []bool{false, true} {
		b.Run(map[bool]string{false: "metered", true: "unmetered"}[unmetered], func(b *testing.B) {
			benchInvoke(b, runtimes.Config{CacheDir: testfix.CompileCacheDir(), Unmetered: unmetered}, wasm, []byte("{}"))
		})
	}
}

// BenchmarkGoJSON measures a Go guest decoding and echoing a 256 KiB event (the echo sample): Go code
// that calls many small functions, each an entry the counter runs at.
func BenchmarkGoJSON(b *testing.B) {
	wasm, err := os.ReadFile(testfix.Reactor(b, "samples/echo"))
	if err != nil {
		b.Fatal(err)
	}
	body := strings.Repeat(`{"k":"value","n":12345,"list":[1,2,3,"four"]},`, 5500)
	event := []byte(`{"version":"2.0","rawPath":"/echo/x","headers":{"content-type":"application/json"},"body":` + strconv.Quote("["+body[:len(body)-1]+"]") + `,"requestContext":{"http":{"method":"POST","path":"/echo/x"}}}`)
	for _, unmetered := range []bool{false, true} {
		b.Run(map[bool]string{false: "metered", true: "unmetered"}[unmetered], func(b *testing.B) {
			benchInvoke(b, runtimes.Config{CacheDir: testfix.CompileCacheDir(), Unmetered: unmetered}, wasm, event)
		})
	}
}

// benchInvoke invokes one warm instance of wasm with event once per iteration.
func benchInvoke(b *testing.B, cfg runtimes.Config, wasm, event []byte) {
	ctx := context.Background()
	e, err := runtimes.NewEngine(ctx, cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer e.Close(ctx)
	m, err := e.Compile(ctx, wasm)
	if err != nil {
		b.Fatal(err)
	}
	inst, err := m.Instantiate(ctx, runtimes.InstanceConfig{FunctionName: "bench", MemoryMB: 128})
	if err != nil {
		b.Fatal(err)
	}
	defer inst.Close(ctx)
	for b.Loop() {
		if _, err := inst.Invoke(ctx, runtimes.Meta{RequestID: "r"}, event); err != nil {
			b.Fatal(err)
		}
	}
}
