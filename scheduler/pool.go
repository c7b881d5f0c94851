package scheduler

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"gatehouse.dev/gatehouse/internal/bus"
	"gatehouse.dev/gatehouse/runtimes"
)

// pool holds the instances of one function version. Idle instances are reused most-recently-used
// first, so the warmest memory is used and the coldest can be reaped.
type pool struct {
	fn   Function
	mod  *runtimes.Module
	log  *slog.Logger
	sink func(LogRecord)
	host runtimes.Host

	mu     sync.Mutex
	idle   []idleInstance
	busy   int
	closed bool
	// live pools keep MinWarm instances; others are closed once unused for a while.
	live     bool
	lastUsed time.Time
	stats    bus.FunctionStats
}

// errPoolClosed means the pool was closed (its version retired) after it was looked up.
var errPoolClosed = errors.New("scheduler: pool closed")

type idleInstance struct {
	inst  *runtimes.Instance
	logs  *invocationLog
	since time.Time
}

func newPool(fn Function, mod *runtimes.Module, log *slog.Logger, sink func(LogRecord), host runtimes.Host) *pool {
	return &pool{fn: fn, mod: mod, log: log, sink: sink, host: host, lastUsed: time.Now()}
}

func (p *pool) setLive(live bool) {
	p.mu.Lock()
	p.live = live
	p.mu.Unlock()
}

func (p *pool) isLive() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.live
}

// minWarm is how many instances the pool keeps: MinWarm while live, none after. p.mu is held.
func (p *pool) minWarm() int {
	if !p.live {
		return 0
	}
	return p.fn.MinWarm
}

// closeIfUnused marks a pool that is not live, runs nothing, holds no instance and has not been used
// for retireAfter as closed, and reports whether it did; the caller closes its module.
func (p *pool) closeIfUnused(now time.Time, retireAfter time.Duration) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.live || p.closed || p.busy > 0 || len(p.idle) > 0 || now.Sub(p.lastUsed) < retireAfter {
		return false
	}
	p.closed = true
	return true
}

// sandbox is an instance taken from the pool, with the log its output goes to.
type sandbox struct {
	inst *runtimes.Instance
	logs *invocationLog
	cold bool
}

func (p *pool) instantiate(ctx context.Context) (sandbox, error) {
	logs := newInvocationLog(p.log, p.sink, p.fn.Name, p.fn.Version)
	inst, err := p.mod.Instantiate(ctx, runtimes.InstanceConfig{
		FunctionName: p.fn.Name,
		Version:      p.fn.versionLabel(),
		MemoryMB:     p.fn.MemoryMB,
		Env:          p.fn.Env,
		Stdout:       logs.stream("stdout"),
		Stderr:       logs.stream("stderr"),
		Host:         p.host,
	})
	if err != nil {
		return sandbox{}, err
	}
	return sandbox{inst: inst, logs: logs, cold: true}, nil
}

// get returns an idle instance, or starts a new one (a cold start).
func (p *pool) get(ctx context.Context) (sandbox, error) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return sandbox{}, errPoolClosed
	}
	p.stats.Invocations++
	p.busy++
	p.lastUsed = time.Now()
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
	p.lastUsed = time.Now()
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
		need := p.minWarm() - len(p.idle) - p.busy
		if p.closed {
			need = 0
		}
		p.mu.Unlock()
		if need <= 0 {
			return nil
		}
		sb, err := p.instantiate(ctx)
		if err != nil {
			return err
		}
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			sb.inst.Close(ctx)
			return nil
		}
		p.idle = append(p.idle, idleInstance{inst: sb.inst, logs: sb.logs, since: time.Now()})
		p.mu.Unlock()
	}
}

// reap closes instances idle for longer than the function's idle timeout (or retireAfter, when the
// version is no longer live, if that is shorter), keeping MinWarm while live.
func (p *pool) reap(ctx context.Context, now time.Time, retireAfter time.Duration) int {
	p.mu.Lock()
	var stale []*runtimes.Instance
	idleTimeout := p.fn.IdleTimeout
	if !p.live {
		idleTimeout = min(idleTimeout, retireAfter)
	}
	// idle is ordered oldest-used first.
	for len(p.idle) > 0 && len(p.idle)+p.busy > p.minWarm() && now.Sub(p.idle[0].since) > idleTimeout {
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
