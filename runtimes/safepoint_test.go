package runtimes_test

import (
	"context"
	"encoding/binary"
	"errors"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"gatehouse.dev/gatehouse/internal/testfix"
	"gatehouse.dev/gatehouse/runtimes"
)

// countingTurn is a Turn that counts how it is used.
type countingTurn struct {
	yields, releases, acquires atomic.Int64
}

func (c *countingTurn) Yield(context.Context) error { c.yields.Add(1); return nil }
func (c *countingTurn) Release()                    { c.releases.Add(1) }
func (c *countingTurn) Acquire(context.Context) error {
	c.acquires.Add(1)
	return nil
}

func hostile(t *testing.T, e *runtimes.Engine, name string) *runtimes.Instance {
	t.Helper()
	m := compile(t, e, testfix.WAT(t, "internal/app/testdata/hostile/"+name+".wat"))
	inst, err := m.Instantiate(context.Background(), runtimes.InstanceConfig{FunctionName: name})
	if err != nil {
		t.Fatal(err)
	}
	return inst
}

// TestLoopStopsAtDeadline runs a guest that loops forever: it is stopped at its deadline, having
// offered its turn up along the way, and its instance is discarded.
func TestLoopStopsAtDeadline(t *testing.T) {
	inst := hostile(t, newEngine(t), "spin")
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	turn := &countingTurn{}
	start := time.Now()
	_, err := inst.Invoke(ctx, runtimes.Meta{RequestID: "r", Turn: turn}, []byte("{}"))
	if !errors.Is(err, runtimes.ErrTimeout) {
		t.Fatalf("err = %v, want ErrTimeout", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("stopped after %s", took)
	}
	if turn.yields.Load() == 0 {
		t.Fatal("the loop never reached a safepoint")
	}
	t.Logf("%d safepoints in %s", turn.yields.Load(), time.Since(start).Round(time.Millisecond))
	if !inst.Broken() {
		t.Fatal("the stopped instance is still in use")
	}
}

// TestRecursionIsBounded runs a guest that recurses without end: it fails with ErrCallDepth, and its
// call stack stays small.
func TestRecursionIsBounded(t *testing.T) {
	inst := hostile(t, newEngine(t), "recurse")
	_, err := inst.Invoke(context.Background(), runtimes.Meta{RequestID: "r"}, []byte("{}"))
	if !errors.Is(err, runtimes.ErrCallDepth) {
		t.Fatalf("err = %v, want ErrCallDepth", err)
	}
}

// TestSleepGivesTheTurnUp runs a guest that sleeps: it gives its turn up while it sleeps, and a sleep
// past its deadline ends at the deadline.
func TestSleepGivesTheTurnUp(t *testing.T) {
	e := newEngine(t)
	inst := hostile(t, e, "sleep")
	ns := func(d time.Duration) []byte { return binary.LittleEndian.AppendUint64(nil, uint64(d)) }
	turn := &countingTurn{}
	out, err := inst.Invoke(context.Background(), runtimes.Meta{RequestID: "r", Turn: turn}, ns(20*time.Millisecond))
	if err != nil || string(out) != `{"statusCode":200,"body":"slept"}` {
		t.Fatalf("got %q, %v", out, err)
	}
	if turn.releases.Load() != 1 || turn.acquires.Load() != 1 {
		t.Fatalf("released %d times, acquired %d, want once each", turn.releases.Load(), turn.acquires.Load())
	}

	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = inst.Invoke(ctx, runtimes.Meta{RequestID: "r", Turn: turn}, ns(time.Minute))
	if !errors.Is(err, runtimes.ErrTimeout) {
		t.Fatalf("err = %v, want ErrTimeout", err)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Fatalf("a sleep of a minute with a 200 ms deadline ended after %s", took)
	}
	if turn.acquires.Load() != 2 {
		t.Fatalf("the turn was not taken back after the sleep (acquired %d times)", turn.acquires.Load())
	}
}

// TestReservedImportIsRefused: a module may not import the safepoint itself.
func TestReservedImportIsRefused(t *testing.T) {
	wasm, err := os.ReadFile(testfix.WAT(t, "runtimes/testdata/abi/yield-import.wat"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := newEngine(t).Compile(context.Background(), wasm); !errors.Is(err, runtimes.ErrABI) {
		t.Fatalf("err = %v, want ErrABI", err)
	}
}

// TestMemoryBudget: instances sharing a budget cannot commit more than it together; a guest growing
// past its part sees memory.grow fail, the last quarter is kept for small instances, a new instance
// that does not fit finds no room, and what an instance held comes back when it closes.
func TestMemoryBudget(t *testing.T) {
	ctx := context.Background()
	budget := runtimes.NewMemoryBudget(64 << 20)
	e, err := runtimes.NewEngine(ctx, runtimes.Config{CacheDir: testfix.CompileCacheDir(), Memory: budget, MemoryLimitMB: 1024})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close(ctx) })
	grow := compile(t, e, testfix.WAT(t, "internal/app/testdata/hostile/grow.wat"))
	inst, err := grow.Instantiate(ctx, runtimes.InstanceConfig{FunctionName: "grow"})
	if err != nil {
		t.Fatal(err)
	}
	// grow.wat grows a page at a time until memory.grow fails, then traps: at three quarters of the
	// budget, which a large instance may not pass.
	if _, err := inst.Invoke(ctx, runtimes.Meta{RequestID: "r"}, []byte("{}")); !errors.Is(err, runtimes.ErrTrap) {
		t.Fatalf("err = %v, want a trap once memory.grow fails", err)
	}
	if used := budget.Used(); used != 48<<20 {
		t.Fatalf("%d MiB committed, want three quarters of the budget of 64", used>>20)
	}
	// A second instance may still grow, into the last quarter, up to an eighth of the budget.
	small, err := grow.Instantiate(ctx, runtimes.InstanceConfig{FunctionName: "grow"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := small.Invoke(ctx, runtimes.Meta{RequestID: "r"}, []byte("{}")); !errors.Is(err, runtimes.ErrTrap) {
		t.Fatalf("err = %v, want a trap once memory.grow fails", err)
	}
	if used := budget.Used(); used != 56<<20 {
		t.Fatalf("%d MiB committed, want 48 + 8", used>>20)
	}
	// 8 MiB left: an instance starting with more finds no room.
	big := compile(t, e, testfix.WAT(t, "runtimes/testdata/abi/big-memory.wat"))
	if _, err := big.Instantiate(ctx, runtimes.InstanceConfig{FunctionName: "big"}); !errors.Is(err, runtimes.ErrMemoryBudget) {
		t.Fatalf("a new instance bigger than what is left: %v, want ErrMemoryBudget", err)
	}
	small.Close(ctx)
	inst.Close(ctx)
	if used := budget.Used(); used != 0 {
		t.Fatalf("%d bytes still committed after the instance closed", used)
	}
	again, err := grow.Instantiate(ctx, runtimes.InstanceConfig{FunctionName: "grow"})
	if err != nil {
		t.Fatalf("a new instance once memory came back: %v", err)
	}
	again.Close(ctx)
}
