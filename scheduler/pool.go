package scheduler

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"gatehouse.dev/gatehouse/internal/bus"
	"gatehouse.dev/gatehouse/runtimes"
)

// pool holds the instances of one function version. Idle instances are reused most-recently-used
// first, so the warmest memory is used and the coldest can be reaped.
type pool struct {
	fn  Function
	mod *runtimes.Module
	log *slog.Logger

	mu     sync.Mutex
	idle   []idleInstance
	busy   int
	closed bool
	stats  bus.FunctionStats
}

type idleInstance struct {
	inst  *runtimes.Instance
	logs  *invocationLog
	since time.Time
}

func newPool(fn Function, mod *runtimes.Module, log *slog.Logger) *pool {
	return &pool{fn: fn, mod: mod, log: log}
}

// sandbox is an instance taken from the pool, with the log its output goes to.
type sandbox struct {
	inst *runtimes.Instance
	logs *invocationLog
	cold bool
}

func (p *pool) instantiate(ctx context.Context) (sandbox, error) {
	logs := newInvocationLog(p.log, p.fn.Name, p.fn.Version)
	inst, err := p.mod.Instantiate(ctx, runtimes.InstanceConfig{
		FunctionName: p.fn.Name,
		Version:      p.fn.Version,
		MemoryMB:     p.fn.MemoryMB,
		Env:          p.fn.Env,
		Stdout:       logs.stream("stdout"),
		Stderr:       logs.stream("stderr"),
	})
	if err != nil {
		return sandbox{}, err
	}
	return sandbox{inst: inst, logs: logs, cold: true}, nil
}

// get returns an idle instance, or starts a new one (a cold start).
func (p *pool) get(ctx context.Context) (sandbox, error) {
	p.mu.Lock()
	p.stats.Invocations++
	p.busy++
	if n := len(p.idle); n > 0 {
		it := p.idle[n-1]
		p.idle = p.idle[:n-1]
		p.mu.Unlock()
		return sandbox{inst: it.inst, logs: it.logs}, nil
	}
	p.stats.ColdStarts++
	p.mu.Unlock()
	sb, err := p.instantiate(ctx)
	if err != nil {
		p.mu.Lock()
		p.busy--
		p.stats.Errors++
		p.mu.Unlock()
	}
	return sb, err
}

// put returns an instance to the pool, or closes it when it is broken or the pool is closed.
func (p *pool) put(ctx context.Context, sb sandbox, failed bool) {
	p.mu.Lock()
	p.busy--
	if failed {
		p.stats.Errors++
	}
	if sb.inst.Broken() || p.closed {
		p.mu.Unlock()
		sb.inst.Close(ctx)
		return
	}
	p.idle = append(p.idle, idleInstance{inst: sb.inst, logs: sb.logs, since: time.Now()})
	p.mu.Unlock()
}

// prewarm starts instances until MinWarm exist.
func (p *pool) prewarm(ctx context.Context) error {
	for {
		p.mu.Lock()
		need := p.fn.MinWarm - len(p.idle) - p.busy
		p.mu.Unlock()
		if need <= 0 {
			return nil
		}
		sb, err := p.instantiate(ctx)
		if err != nil {
			return err
		}
		p.mu.Lock()
		p.idle = append(p.idle, idleInstance{inst: sb.inst, logs: sb.logs, since: time.Now()})
		p.mu.Unlock()
	}
}

// reap closes instances idle for longer than the function's idle timeout, keeping MinWarm.
func (p *pool) reap(ctx context.Context, now time.Time) int {
	p.mu.Lock()
	var stale []*runtimes.Instance
	// idle is ordered oldest-used first.
	for len(p.idle) > 0 && len(p.idle)+p.busy > p.fn.MinWarm && now.Sub(p.idle[0].since) > p.fn.IdleTimeout {
		stale = append(stale, p.idle[0].inst)
		p.idle = p.idle[1:]
	}
	p.mu.Unlock()
	for _, inst := range stale {
		inst.Close(ctx)
	}
	return len(stale)
}

func (p *pool) snapshot() bus.FunctionStats {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.stats
	s.Idle, s.Busy = len(p.idle), p.busy
	return s
}

func (p *pool) close(ctx context.Context) {
	p.mu.Lock()
	idle := p.idle
	p.idle, p.closed = nil, true
	p.mu.Unlock()
	for _, it := range idle {
		it.inst.Close(ctx)
	}
	p.mod.Close(ctx)
}
