package scheduler

import (
	"context"
	"log/slog"
	"sync"

	"gatehouse.dev/gatehouse/runtimes"
)

// pool holds the idle instances of one function version. Instances are reused most-recently-used first,
// so the warmest (already faulted-in) memory is used and the rest can be reaped.
type pool struct {
	fn  Function
	mod *runtimes.Module
	cfg runtimes.InstanceConfig

	mu     sync.Mutex
	idle   []*runtimes.Instance
	closed bool
}

func newPool(fn Function, mod *runtimes.Module, log *slog.Logger) *pool {
	out := newLogWriter(log, fn.Name, "stdout")
	errw := newLogWriter(log, fn.Name, "stderr")
	return &pool{fn: fn, mod: mod, cfg: runtimes.InstanceConfig{
		FunctionName: fn.Name,
		Version:      fn.Version,
		MemoryMB:     fn.MemoryMB,
		Env:          fn.Env,
		Stdout:       out,
		Stderr:       errw,
	}}
}

func (p *pool) instantiate(ctx context.Context) (*runtimes.Instance, error) {
	return p.mod.Instantiate(ctx, p.cfg)
}

// get returns an idle instance, or starts a new one.
func (p *pool) get(ctx context.Context) (*runtimes.Instance, error) {
	p.mu.Lock()
	if n := len(p.idle); n > 0 {
		inst := p.idle[n-1]
		p.idle = p.idle[:n-1]
		p.mu.Unlock()
		return inst, nil
	}
	p.mu.Unlock()
	return p.instantiate(ctx)
}

// put returns inst to the pool, or closes it when it is broken or the pool is closed.
func (p *pool) put(ctx context.Context, inst *runtimes.Instance) {
	p.mu.Lock()
	if inst.Broken() || p.closed {
		p.mu.Unlock()
		inst.Close(ctx)
		return
	}
	p.idle = append(p.idle, inst)
	p.mu.Unlock()
}

func (p *pool) close(ctx context.Context) {
	p.mu.Lock()
	idle := p.idle
	p.idle, p.closed = nil, true
	p.mu.Unlock()
	for _, inst := range idle {
		inst.Close(ctx)
	}
	p.mod.Close(ctx)
}
