package runtimes

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/tetratelabs/wazero/api"

	"gatehouse.dev/gatehouse/runtimes/meter"
)

// HostYield is the host function every module is rewritten to call (see package meter): its
// safepoint. Modules may not import it themselves.
const HostYield = "yield"

// Defaults of the safepoint rewrite.
const (
	// DefaultYieldFuel is the work between two safepoints, in loop iterations and function entries:
	// about 0.12 ms of a tight loop on the reference machine (TestLoopStopsAtDeadline logs the
	// rate) and about 2.5 ms of a Go guest decoding JSON, whose units do more. A safepoint costs a
	// call into Go of well under a microsecond, so the counter's own inline decrements are what the
	// rewrite costs.
	DefaultYieldFuel = 1 << 18
	// DefaultMaxCallDepth bounds how deep a guest's calls may nest.
	DefaultMaxCallDepth = 20000
	// bulkShift charges memory.copy and memory.fill a unit of fuel per 64 bytes.
	bulkShift = 6
)

// More sentinel errors.
var (
	// ErrTimeout means the guest was stopped at its deadline; the instance is discarded.
	ErrTimeout = errors.New("function timed out")
	// ErrCallDepth means the guest's calls nested deeper than the limit; the instance is discarded.
	ErrCallDepth = errors.New("call depth limit exceeded")
)

// Turn is the share of CPU an invocation holds while its guest code runs. A sandbox offers it up at
// every safepoint, and gives it up while the guest sleeps.
type Turn interface {
	// Yield is called at every safepoint: it may let waiting invocations run first. It fails when ctx
	// ends while it waits to run again.
	Yield(ctx context.Context) error
	// Release gives the turn up, and Acquire takes it again, around a wait.
	Release()
	Acquire(ctx context.Context) error
}

// invocation is what the host functions of a running guest know of its invocation.
type invocation struct {
	ctx  context.Context
	turn Turn
}

type invocationKey struct{}

// stopped is the error a guest is stopped with when ctx has ended.
func stopped(ctx context.Context) error {
	if errors.Is(context.Cause(ctx), context.DeadlineExceeded) {
		return ErrTimeout
	}
	return fmt.Errorf("%w: %w", ErrTimeout, context.Cause(ctx))
}

// hostYield is the safepoint: the guest's fuel ran out (or its call depth did).
func hostYield(fuel uint32) api.GoModuleFunc {
	return func(ctx context.Context, _ api.Module, stack []uint64) {
		if uint32(stack[0]) == meter.ReasonDepth {
			panic(ErrCallDepth)
		}
		if ctx.Err() != nil {
			panic(stopped(ctx))
		}
		if inv, _ := ctx.Value(invocationKey{}).(*invocation); inv != nil && inv.turn != nil {
			if err := inv.turn.Yield(ctx); err != nil {
				panic(stopped(ctx))
			}
		}
		stack[0] = uint64(fuel)
	}
}

// sleeper is a sandbox's clock sleep (WASI poll_oneoff): it gives the turn up while it sleeps, and
// ends at the invocation's deadline.
type sleeper struct {
	// current is the invocation running in the sandbox, nil between invocations. A sandbox runs one
	// invocation at a time, on the goroutine that set it.
	current *invocation
}

func (s *sleeper) sleep(ns int64) {
	d := time.Duration(ns)
	inv := s.current
	if inv == nil {
		time.Sleep(min(d, initSleep)) // in a guest's initialisation: bounded
		return
	}
	if inv.turn != nil {
		inv.turn.Release()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	var err error
	select {
	case <-t.C:
	case <-inv.ctx.Done():
		err = stopped(inv.ctx)
	}
	if inv.turn != nil {
		if aerr := inv.turn.Acquire(inv.ctx); aerr != nil && err == nil {
			err = stopped(inv.ctx)
		}
	}
	if err != nil {
		panic(err)
	}
}
