package scheduler

import (
	"context"
	"errors"
	"log/slog"
	"runtime"
	"slices"
	"sync"
	"time"

	"gatehouse.dev/gatehouse/internal/bus"
	"gatehouse.dev/gatehouse/runtimes"
)

// pool holds the instances of one function version. Idle instances are reused most-recently-used
// first, so the warmest memory is used and the coldest can be reaped.
type pool struct {
	fn   Function
	mod  module
	log  *slog.Logger
	sink func(LogRecord)
	host runtimes.Host

	mu   sync.Mutex
	idle []idleInstance
	busy int // invocations taken or waiting for an instance
	// starting counts instances being started; waiters are invocations waiting for an instance, in
	// arrival order.
	starting    int
	maxStarting int // max(2, GOMAXPROCS)
	waiters     []chan handoff
	closed      bool
	// live pools keep MinWarm instances; others are closed once unused for a while.
	live     bool
	lastUsed time.Time
	stats    bus.FunctionStats
	// started is set once the pool has tried to start an instance. With SnapStart, that first
	// start takes the module's snapshot: prewarm makes it at load, and not again.
	started bool
}

// errPoolClosed means the pool was closed (its version retired) after it was looked up.
var errPoolClosed = errors.New("scheduler: pool closed")

type idleInstance struct {
	inst  instance
	logs  *invocationLog
	since time.Time
}

func newPool(fn Function, mod module, log *slog.Logger, sink func(LogRecord), host runtimes.Host) *pool {
	return &pool{fn: fn, mod: mod, log: log, sink: sink, host: host, lastUsed: time.Now(),
		maxStarting: max(2, runtime.GOMAXPROCS(0))}
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

// warmAtLoad is how many instances prewarm starts: minWarm, and at least one for a live SnapStart
// version whose module can be snapshotted until the pool has started one (which takes the
// snapshot), so that no invocation after a deploy waits for the initialisation. p.mu is held.
func (p *pool) warmAtLoad() int {
	n := p.minWarm()
	if p.live && p.fn.SnapStart && !p.started && p.mod.snapshottable() {
		n = max(n, 1)
	}
	return n
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
	inst instance
	logs *invocationLog
	// initDuration is how long the instance took to start, when it started for this invocation (a
	// cold start); 0 for an instance that was waiting.
	initDuration time.Duration
}

func (p *pool) instantiate(ctx context.Context) (sandbox, error) {
	p.mu.Lock()
	p.started = true
	p.mu.Unlock()
	logs := newInvocationLog(p.log, p.sink, p.fn.Name, p.fn.Version)
	inst, err := p.mod.Instantiate(ctx, runtimes.InstanceConfig{
		FunctionName: p.fn.Name,
		Version:      p.fn.versionLabel(),
		MemoryMB:     p.fn.MemoryMB,
		Env:          p.fn.Env,
		Stdout:       logs.stream("stdout"),
		Stderr:       logs.stream("stderr"),
		Host:         p.host,
		Snapshot:     p.fn.SnapStart,
	})
	if err != nil {
		return sandbox{}, err
	}
	return sandbox{inst: inst, logs: logs}, nil
}

// get returns an idle instance, or starts a new one (a cold start). At most maxStarting instances
// of a pool start at once: past that, an invocation waits for whichever comes first, an instance
// another invocation hands back or its turn to start one. Under load on few cores, starting an
// instance for every invocation that finds none idle would spend the CPU on starts that the returning
// instances make unnecessary, and slow every invocation in the worker while doing it.
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
	if p.starting < p.maxStarting {
		p.starting++
		p.stats.ColdStarts++
		p.mu.Unlock()
		return p.start(ctx)
	}
	w := make(chan handoff, 1)
	p.waiters = append(p.waiters, w)
	p.mu.Unlock()
	select {
	case h := <-w:
		return p.take(ctx, h)
	case <-ctx.Done():
	}
	p.mu.Lock()
	if i := slices.Index(p.waiters, w); i >= 0 {
		p.waiters = slices.Delete(p.waiters, i, i+1)
		p.busy--
		p.mu.Unlock()
		return sandbox{}, ctx.Err()
	}
	p.mu.Unlock()
	// Handed something just as the caller gave up: pass it on.
	h := <-w
	if h.start {
		p.startDone()
	} else if h.sb.inst != nil {
		p.put(ctx, h.sb, false)
		return sandbox{}, ctx.Err()
	}
	p.mu.Lock()
	p.busy--
	p.mu.Unlock()
	return sandbox{}, ctx.Err()
}

// handoff is what a waiting invocation is given: an instance, its turn to start one, or an error.
type handoff struct {
	sb    sandbox
	start bool
	err   error
}

// take acts on what a waiting invocation was handed.
func (p *pool) take(ctx context.Context, h handoff) (sandbox, error) {
	switch {
	case h.err != nil:
		p.mu.Lock()
		p.busy--
		p.mu.Unlock()
		return sandbox{}, h.err
	case h.start:
		return p.start(ctx)
	}
	return h.sb, nil
}

// start starts an instance for an invocation that holds one of the pool's starting places (counted
// in p.starting), and gives the place up after.
func (p *pool) start(ctx context.Context) (sandbox, error) {
	var sb sandbox
	var err error
	// Starting an instance runs guest code (its initialisation): it takes the invocation's turn.
	if tk, _ := ctx.Value(turnKey{}).(*turn); tk != nil {
		err = tk.Acquire(ctx)
	}
	if err == nil {
		began := time.Now()
		sb, err = p.instantiate(ctx)
		sb.initDuration = time.Since(began)
	}
	if err != nil {
		p.mu.Lock()
		p.busy--
		p.stats.Errors++
		p.mu.Unlock()
	}
	p.startDone()
	return sb, err
}

// startDone gives up a starting place: to the longest-waiting invocation, which starts an instance in
// turn (waiters remain only when no instance was handed back meanwhile, so more are needed).
func (p *pool) startDone() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.starting--
	p.grantStart()
}

// grantStart lets the longest-waiting invocation start an instance when a starting place is free.
// p.mu is held.
func (p *pool) grantStart() {
	if len(p.waiters) == 0 || p.starting >= p.maxStarting || p.closed {
		return
	}
	w := p.waiters[0]
	p.waiters = p.waiters[1:]
	p.starting++
	p.stats.ColdStarts++
	w <- handoff{start: true}
}

// put returns an instance to the pool: to the longest-waiting invocation, else to the idle list. A
// broken instance, or any once the pool is closed, is closed instead.
func (p *pool) put(ctx context.Context, sb sandbox, failed bool) {
	p.mu.Lock()
	p.busy--
	p.lastUsed = time.Now()
	if failed {
		p.stats.Errors++
	}
	if sb.inst.Broken() || p.closed {
		p.grantStart() // a waiter must not wait on an instance that will never come back
		p.mu.Unlock()
		sb.inst.Close(ctx)
		return
	}
	if len(p.waiters) > 0 {
		w := p.waiters[0]
		p.waiters = p.waiters[1:]
		p.mu.Unlock()
		w <- handoff{sb: sandbox{inst: sb.inst, logs: sb.logs}}
		return
	}
	p.idle = append(p.idle, idleInstance{inst: sb.inst, logs: sb.logs, since: time.Now()})
	p.mu.Unlock()
}

// prewarm starts instances until MinWarm exist (and, for a SnapStart version, the one that takes
// its snapshot; see warmAtLoad).
func (p *pool) prewarm(ctx context.Context) error {
	for {
		p.mu.Lock()
		need := p.warmAtLoad() - len(p.idle) - p.busy
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
	var stale []instance
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

// shed counts an invocation shed before it ran.
func (p *pool) shed() {
	p.mu.Lock()
	p.stats.Shed++
	p.mu.Unlock()
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
	for _, w := range p.waiters {
		w <- handoff{err: errPoolClosed}
	}
	p.waiters = nil
	p.mu.Unlock()
	for _, it := range idle {
		it.inst.Close(ctx)
	}
	p.mod.Close(ctx)
}
