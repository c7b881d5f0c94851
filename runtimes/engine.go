package runtimes

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/experimental"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"

	"gatehouse.dev/gatehouse/runtimes/meter"
)

// Config configures an [Engine]. The zero value compiles without a persistent cache.
type Config struct {
	// CacheDir holds wazero's compilation cache; "" keeps compiled code in memory only.
	CacheDir string
	// MaxResponseBytes caps a function's response; default 6 MiB (Lambda's synchronous payload limit).
	MaxResponseBytes int
	// MemoryLimitMB caps the linear memory of every instance the engine creates; 0 means wazero's
	// limit of 4 GiB. A guest that grows its memory past the cap sees memory.grow fail (a Go guest then
	// dies with "out of memory"), and its invocation fails.
	MemoryLimitMB int
	// YieldFuel is the work a guest does between two safepoints (loop iterations and function
	// entries; see package meter); default DefaultYieldFuel.
	YieldFuel int32
	// MaxCallDepth bounds how deep a guest's calls may nest; default DefaultMaxCallDepth. A guest
	// past it fails with ErrCallDepth.
	MaxCallDepth int32
	// Memory, when set, bounds the linear memory committed by all the instances of every engine
	// sharing it; nil leaves only each instance's own limit.
	Memory *MemoryBudget
	// Unmetered compiles modules as they are, without safepoints: a guest then cannot be stopped
	// before it returns, and stalls its process's garbage collector while it runs. Only for measuring
	// what the safepoints cost.
	Unmetered bool
}

// DefaultMaxResponseBytes is the default cap on a response: Lambda's 6 MB synchronous payload.
const DefaultMaxResponseBytes = 6 << 20

// Sentinel errors.
var (
	// ErrABI means a module speaks no ABI Gatehouse knows, or is ambiguous.
	ErrABI = errors.New("unsupported module ABI")
	// ErrFunction means the function reported an error; the instance stays usable.
	ErrFunction = errors.New("function error")
	// ErrTrap means the guest trapped or panicked; the instance is discarded.
	ErrTrap = errors.New("function crashed")
	// ErrResponseTooLarge means the response exceeded the configured cap.
	ErrResponseTooLarge = errors.New("function response too large")
	// ErrMemoryLimit means a module needs more memory than its function may have.
	ErrMemoryLimit = errors.New("memory limit too small")
	// ErrClosed means the instance or engine was closed.
	ErrClosed = errors.New("closed")
)

const (
	pagesPerMB = 16 // 64 KiB pages
	maxPages   = 65536
)

// Engine compiles and instantiates modules. It is safe for concurrent use.
type Engine struct {
	cfg   Config
	cache wazero.CompilationCache
	rt    wazero.Runtime
	// memory backs instances' linear memories.
	memory *regionPool
}

// NewEngine creates a wazero runtime with WASI and the compilation cache.
func NewEngine(ctx context.Context, cfg Config) (*Engine, error) {
	if cfg.MaxResponseBytes <= 0 {
		cfg.MaxResponseBytes = DefaultMaxResponseBytes
	}
	if cfg.YieldFuel <= 0 {
		cfg.YieldFuel = DefaultYieldFuel
	}
	if cfg.MaxCallDepth <= 0 {
		cfg.MaxCallDepth = DefaultMaxCallDepth
	}
	rc := wazero.NewRuntimeConfigCompiler()
	if cfg.MemoryLimitMB > 0 {
		rc = rc.WithMemoryLimitPages(uint32(min(cfg.MemoryLimitMB*pagesPerMB, maxPages)))
	}
	var cache wazero.CompilationCache
	if cfg.CacheDir != "" {
		c, err := wazero.NewCompilationCacheWithDir(cfg.CacheDir)
		if err != nil {
			return nil, fmt.Errorf("runtimes: opening compilation cache: %w", err)
		}
		cache = c
		rc = rc.WithCompilationCache(c)
	}
	rt := wazero.NewRuntimeWithConfig(ctx, rc)
	if _, err := wasi_snapshot_preview1.Instantiate(ctx, rt); err != nil {
		rt.Close(ctx)
		return nil, fmt.Errorf("runtimes: instantiating WASI: %w", err)
	}
	if err := instantiateHostModule(ctx, rt, uint32(cfg.YieldFuel)); err != nil {
		rt.Close(ctx)
		return nil, fmt.Errorf("runtimes: instantiating the host module: %w", err)
	}
	// Modules without a maximum of their own (Go's) get the limit as theirs: the size of the
	// reservation kept ready.
	warm := uint64(maxPages) << 16
	if cfg.MemoryLimitMB > 0 {
		warm = uint64(min(cfg.MemoryLimitMB*pagesPerMB, maxPages)) << 16
	}
	return &Engine{cfg: cfg, cache: cache, rt: rt, memory: newRegionPool(cfg.Memory, warm)}, nil
}

// withMemory returns ctx carrying the engine's memory allocator, for instantiating a module.
func (e *Engine) withMemory(ctx context.Context) context.Context {
	return experimental.WithMemoryAllocator(ctx, e.memory)
}

// Close releases every module and instance of the engine.
func (e *Engine) Close(ctx context.Context) error {
	err := e.rt.Close(ctx)
	e.memory.Close()
	if e.cache != nil {
		err = errors.Join(err, e.cache.Close(ctx))
	}
	return err
}

// instrument rewrites wasm for safepoints (see package meter). With a cache directory, the rewritten
// module is kept there, named by the original's SHA-256 and the rewrite's settings: hashing a module
// costs a tenth of rewriting it.
func (e *Engine) instrument(wasm []byte) ([]byte, error) {
	cfg := meter.Config{
		ImportModule: HostModule, ImportName: HostYield,
		Fuel: e.cfg.YieldFuel, MaxDepth: e.cfg.MaxCallDepth, BulkShift: bulkShift,
	}
	var path string
	if e.cfg.CacheDir != "" {
		sum := sha256.Sum256(wasm)
		path = filepath.Join(e.cfg.CacheDir, "metered", fmt.Sprintf("%x-v%d-%d-%d-%d.wasm", sum, meter.Version, cfg.Fuel, cfg.MaxDepth, cfg.BulkShift))
		if b, err := os.ReadFile(path); err == nil {
			return b, nil
		}
	}
	out, err := meter.Instrument(wasm, cfg)
	if err != nil || path == "" {
		return out, err
	}
	// Written whole or not at all: another process may read it at any moment.
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err == nil {
		if tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-*"); err == nil {
			_, werr := tmp.Write(out)
			if cerr := tmp.Close(); werr == nil && cerr == nil {
				os.Rename(tmp.Name(), path)
			}
			os.Remove(tmp.Name())
		}
	}
	return out, nil
}

// Compile compiles wasm and decides its ABI. The module is first rewritten to reach a safepoint
// regularly and to bound its call depth (see package meter). With a cache directory, a module
// compiled before (by any process sharing the directory) is loaded from the cache instead.
func (e *Engine) Compile(ctx context.Context, wasm []byte) (*Module, error) {
	metered, err := wasm, error(nil)
	if !e.cfg.Unmetered {
		metered, err = e.instrument(wasm)
	}
	if err != nil {
		if errors.Is(err, meter.ErrUnsupported) {
			return nil, fmt.Errorf("%w: %w", ErrABI, err)
		}
		return nil, fmt.Errorf("runtimes: compiling module: %w", err)
	}
	// The data segments are taken out for the host to write (see snapshot.go): fewer, longer copies
	// than wazero's one per segment, and the way to start from a snapshot instead.
	code, detached := metered, (*meter.Detached)(nil)
	if d, err := meter.Detach(metered); err == nil {
		code, detached = d.Wasm, d
		d.Wasm = nil
	}
	cm, err := e.rt.CompileModule(ctx, code)
	if err != nil {
		if e.cfg.MemoryLimitMB > 0 && strings.Contains(err.Error(), "section memory: min") && strings.Contains(err.Error(), "over limit") {
			return nil, fmt.Errorf("%w: the module needs more memory than the function's limit of %d MB: %v", ErrMemoryLimit, e.cfg.MemoryLimitMB, err)
		}
		return nil, fmt.Errorf("runtimes: compiling module: %w", err)
	}
	abi, err := detectABI(cm)
	if err != nil {
		cm.Close(ctx)
		return nil, err
	}

	var initial uint64
	for _, mem := range cm.ExportedMemories() {
		initial = uint64(mem.Min()) << 16
	}
	return &Module{e: e, cm: cm, abi: abi, initialBytes: initial, detached: detached}, nil
}
