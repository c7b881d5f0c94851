// Package scheduler is the worker side of Gatehouse: it takes invocations from the bus and runs them in
// sandboxes, keeping a pool of warm instances per function version, starting new ones on demand (a cold
// start) and discarding instances that crashed.
//
// One worker process runs one Scheduler. Which functions it serves is fixed when it starts; the wiring
// restarts workers to change that.
package scheduler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"gatehouse.dev/gatehouse/internal/bus"
	"gatehouse.dev/gatehouse/runtimes"
)

// Function is one function version the scheduler serves.
type Function struct {
	Name    string
	Version string
	// Wasm is the module's bytes.
	Wasm []byte
	// MemoryMB is the function's memory size, reported to the guest.
	MemoryMB int
	// Timeout is the function's own time limit, counted from when the worker takes the invocation
	// (a cold start included), whatever the caller's deadline; default 3s.
	Timeout time.Duration
	// Env is the function's environment.
	Env map[string]string
	// MinWarm instances are started when the scheduler loads and kept.
	MinWarm int
	// IdleTimeout is how long an instance beyond MinWarm may sit unused before it is closed; default
	// 5 minutes.
	IdleTimeout time.Duration
}

// Config configures a [Scheduler].
type Config struct {
	Functions []Function
	// MaxInFlight bounds the invocations one worker runs at once; default 64.
	MaxInFlight int
	// Logger receives scheduler events and function output; default discards.
	Logger *slog.Logger
	// DrainTimeout bounds the wait, at stop, for invocations already received; default 30s.
	DrainTimeout time.Duration
	// Slots, when set, records each running invocation for the supervising process, and its length
	// bounds the invocations run at once (instead of MaxInFlight).
	Slots *Slots
}

// Scheduler runs invocations. Create it with [New], then [Scheduler.Load], then [Scheduler.Run].
type Scheduler struct {
	cfg     Config
	runtime runtimes.Config
	engines map[int]*runtimes.Engine // by memory limit
	log     *slog.Logger
	pools   map[string]*pool

	wg  sync.WaitGroup
	sem chan struct{}
}

// New checks cfg. It does no work. Functions run in engines configured like rc, one per memory size.
func New(cfg Config, rc runtimes.Config) (*Scheduler, error) {
	if cfg.MaxInFlight <= 0 {
		cfg.MaxInFlight = 64
	}
	if cfg.Slots != nil {
		cfg.MaxInFlight = cfg.Slots.Len()
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.DrainTimeout <= 0 {
		cfg.DrainTimeout = 30 * time.Second
	}
	seen := map[string]bool{}
	for i, f := range cfg.Functions {
		if f.IdleTimeout <= 0 {
			cfg.Functions[i].IdleTimeout = 5 * time.Minute
		}
		if f.Timeout <= 0 {
			cfg.Functions[i].Timeout = 3 * time.Second
		}
		if err := bus.ValidToken(f.Name); err != nil {
			return nil, fmt.Errorf("scheduler: function name: %w", err)
		}
		if seen[f.Name] {
			return nil, fmt.Errorf("scheduler: function %s listed twice", f.Name)
		}
		seen[f.Name] = true
	}
	return &Scheduler{cfg: cfg, runtime: rc, engines: map[int]*runtimes.Engine{}, log: cfg.Logger, pools: map[string]*pool{}, sem: make(chan struct{}, cfg.MaxInFlight)}, nil
}

// Load compiles every function (from the compilation cache when it has them) and starts the minimum
// warm instances, so that no invocation pays for compilation.
func (s *Scheduler) Load(ctx context.Context) error {
	for _, f := range s.cfg.Functions {
		engine, ok := s.engines[f.MemoryMB]
		if !ok {
			rc := s.runtime
			rc.MemoryLimitMB = f.MemoryMB
			var err error
			if engine, err = runtimes.NewEngine(ctx, rc); err != nil {
				return err
			}
			s.engines[f.MemoryMB] = engine
		}
		m, err := engine.Compile(ctx, f.Wasm)
		if err != nil {
			return fmt.Errorf("scheduler: function %s: %w", f.Name, err)
		}
		p := newPool(f, m, s.log)
		s.pools[f.Name] = p
		if err := p.prewarm(ctx); err != nil {
			return fmt.Errorf("scheduler: function %s: %w", f.Name, err)
		}
	}
	return nil
}

// InvocationSource is the part of the bus the scheduler needs.
type InvocationSource interface {
	ServeWorker(id string, capacity int, start func(func()), handle bus.Handler, stats func() map[string]bus.FunctionStats, log *slog.Logger) (*bus.Worker, error)
	AnnounceReady(id string) error
}

var _ InvocationSource = (*bus.Client)(nil)

// Run takes invocations from b until ctx is done, then stops taking new ones, lets running invocations
// finish and closes every instance.
func (s *Scheduler) Run(ctx context.Context, b InvocationSource, id string) error {
	sub, err := b.ServeWorker(id, s.cfg.MaxInFlight, s.start, s.Handle, s.Stats, s.log)
	if err != nil {
		return err
	}
	if err := b.AnnounceReady(id); err != nil {
		return fmt.Errorf("scheduler: announcing readiness: %w", err)
	}
	reaped := make(chan struct{})
	go func() {
		defer close(reaped)
		s.reapLoop(ctx)
	}()
	<-ctx.Done()
	<-reaped
	// Stop taking invocations; every one already received is started, then all of them finish and
	// reply before the pools close.
	drainCtx, cancel := context.WithTimeout(context.Background(), s.cfg.DrainTimeout)
	defer cancel()
	if err := sub.Drain(drainCtx); err != nil {
		s.log.Warn("draining invocations", "err", err)
	}
	s.wg.Wait()
	s.Close(context.Background())
	return nil
}

// start runs fn on a goroutine the scheduler owns, waiting while MaxInFlight are running.
func (s *Scheduler) start(fn func()) {
	s.sem <- struct{}{}
	s.wg.Add(1)
	go func() {
		defer func() { <-s.sem; s.wg.Done() }()
		fn()
	}()
}

// Handle runs one invocation: it takes a warm instance or starts one, invokes it, and returns the
// instance to the pool unless it crashed. Errors wrap the bus's sentinels.
func (s *Scheduler) Handle(ctx context.Context, inv bus.Invocation) ([]byte, error) {
	p, ok := s.pools[inv.Function]
	if !ok {
		return nil, fmt.Errorf("%q: %w", inv.Function, bus.ErrFunctionNotFound)
	}
	// The function's own timeout bounds it, whatever the caller's deadline: like a Lambda function, it
	// runs on after an integration timeout until its own time is up.
	deadline := time.Now().Add(p.fn.Timeout)
	if s.cfg.Slots != nil {
		slot := s.cfg.Slots.acquire(inv.RequestID, deadline)
		defer s.cfg.Slots.release(slot)
	}
	sb, err := p.get(ctx)
	if err != nil {
		s.log.Error("starting instance", "function", inv.Function, "request_id", inv.RequestID, "err", err)
		return nil, fmt.Errorf("starting instance: %w", bus.ErrFunctionError)
	}
	sb.logs.begin(inv.RequestID)
	if s.cfg.Slots != nil {
		s.cfg.Slots.entered(inv.RequestID)
	}
	out, err := sb.inst.Invoke(ctx, runtimes.Meta{RequestID: inv.RequestID, Deadline: deadline, TraceParent: inv.TraceParent}, inv.Payload)
	sb.logs.end()
	p.put(ctx, sb, err != nil)
	out, err = s.outcome(inv, out, err)
	if s.cfg.Slots != nil {
		code := ""
		if err != nil {
			code = string(bus.CodeOf(err))
		}
		s.cfg.Slots.answered(inv.RequestID, code, out)
	}
	return out, err
}

// outcome turns what an instance returned into what the bus carries.
func (s *Scheduler) outcome(inv bus.Invocation, out []byte, err error) ([]byte, error) {
	if err != nil {
		s.log.Warn("invocation failed", "function", inv.Function, "request_id", inv.RequestID, "err", err)
		switch {
		case errors.Is(err, runtimes.ErrResponseTooLarge):
			return nil, bus.ErrResponseTooLarge
		case errors.Is(err, runtimes.ErrFunction), errors.Is(err, runtimes.ErrTrap):
			return nil, bus.ErrFunctionError
		}
		return nil, bus.ErrInternal
	}
	return out, nil
}

// reapLoop closes idle instances past their function's idle timeout, every reapInterval, until ctx ends.
func (s *Scheduler) reapLoop(ctx context.Context) {
	t := time.NewTicker(reapInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			for name, p := range s.pools {
				if n := p.reap(ctx, now); n > 0 {
					s.log.Debug("reaped idle instances", "function", name, "count", n)
				}
				// Instances that crashed were discarded: start new ones up to minWarm.
				if err := p.prewarm(ctx); err != nil && ctx.Err() == nil {
					s.log.Warn("keeping instances warm", "function", name, "err", err)
				}
			}
		}
	}
}

const reapInterval = time.Second

// Stats returns each function's pool counters.
func (s *Scheduler) Stats() map[string]bus.FunctionStats {
	out := make(map[string]bus.FunctionStats, len(s.pools))
	for name, p := range s.pools {
		out[name] = p.snapshot()
	}
	return out
}

// Close closes every pooled instance, compiled module and engine.
func (s *Scheduler) Close(ctx context.Context) {
	for _, p := range s.pools {
		p.close(ctx)
	}
	for _, e := range s.engines {
		e.Close(ctx)
	}
}
