package runtimes_test

import (
	"context"
	"os"
	"testing"

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
// (what a worker does at start once `up` has compiled it).
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
	b.Run("file-cache", func(b *testing.B) {
		dir := b.TempDir()
		warm, _ := runtimes.NewEngine(ctx, runtimes.Config{CacheDir: dir})
		if _, err := warm.Compile(ctx, wasm); err != nil {
			b.Fatal(err)
		}
		warm.Close(ctx)
		b.ResetTimer()
		for b.Loop() {
			e, err := runtimes.NewEngine(ctx, runtimes.Config{CacheDir: dir})
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

var helloEvent = []byte(`{"version":"2.0","routeKey":"GET /hello","rawPath":"/hello","rawQueryString":"","headers":{"host":"127.0.0.1:8080","user-agent":"bench"},"requestContext":{"routeKey":"GET /hello","stage":"$default","requestId":"Mc7UVioPPHcEKPA=","http":{"method":"GET","path":"/hello","protocol":"HTTP/1.1","sourceIp":"127.0.0.1","userAgent":"bench"}},"isBase64Encoded":false}`)

// BenchmarkColdStart measures instantiating a compiled Go hello (Go runtime start included) and its
// first invocation.
func BenchmarkColdStart(b *testing.B) {
	benchColdStart(b, helloWasm(b))
}

// benchColdStart compiles wasm, then instantiates and invokes it once per iteration.
func benchColdStart(b *testing.B, wasm []byte) {
	ctx := context.Background()
	e, _ := runtimes.NewEngine(ctx, runtimes.Config{CacheDir: testfix.CompileCacheDir()})
	defer e.Close(ctx)
	m, err := e.Compile(ctx, wasm)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		inst, err := m.Instantiate(ctx, runtimes.InstanceConfig{FunctionName: "f"})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := inst.Invoke(ctx, runtimes.Meta{RequestID: "r"}, helloEvent); err != nil {
			b.Fatal(err)
		}
		inst.Close(ctx)
	}
}

// BenchmarkWarmInvoke measures one invocation of a warm Go hello instance.
func BenchmarkWarmInvoke(b *testing.B) {
	ctx := context.Background()
	e, _ := runtimes.NewEngine(ctx, runtimes.Config{CacheDir: testfix.CompileCacheDir()})
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
	for b.Loop() {
		if _, err := inst.Invoke(ctx, runtimes.Meta{RequestID: "r"}, helloEvent); err != nil {
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
	benchColdStart(b, wasm)
}
