package scheduler

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"

	"gatehouse.dev/gatehouse/runtimes"
)

// waitFor polls cond until it holds or a few seconds pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func (p *pool) waiting() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.waiters)
}

// With its starting places taken, an invocation that finds no idle instance waits, and gets the next
// instance handed back rather than starting one; a cancelled wait gives up its place; closing the
// pool ends every wait.
func TestPoolWaitsForAnInstanceWhenStartsAreBusy(t *testing.T) {
	s := load(t, nil, Function{Name: "hello", Wasm: wasm(t, "samples/hello"), MemoryMB: 128, Timeout: time.Second, MinWarm: 1})
	p := s.pools["hello"]
	ctx := context.Background()
	first, err := p.get(ctx) // the warm one
	if err != nil {
		t.Fatal(err)
	}
	// Pretend both starting places are in use by starts still running.
	p.mu.Lock()
	p.starting = p.maxStarting
	p.mu.Unlock()

	got := make(chan error, 1)
	var handed sandbox
	go func() {
		sb, err := p.get(ctx)
		handed = sb
		got <- err
	}()
	waitFor(t, "the invocation to wait", func() bool { return p.waiting() == 1 })
	p.put(ctx, first, false)
	if err := <-got; err != nil {
		t.Fatal(err)
	}
	if handed.inst != first.inst {
		t.Fatal("the waiting invocation did not get the instance handed back")
	}
	if st := p.snapshot(); st.ColdStarts != 0 || st.Busy != 1 || st.Idle != 0 {
		t.Fatalf("after the hand-over: %+v, want no cold start and one busy", st)
	}

	// A wait whose caller gives up leaves nothing behind.
	cctx, cancel := context.WithCancel(ctx)
	go func() {
		_, err := p.get(cctx)
		got <- err
	}()
	waitFor(t, "the second invocation to wait", func() bool { return p.waiting() == 1 })
	cancel()
	if err := <-got; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled wait: %v", err)
	}
	if st := p.snapshot(); st.Busy != 1 || p.waiting() != 0 {
		t.Fatalf("after a cancelled wait: %+v, %d waiting", st, p.waiting())
	}

	// A starting place that frees up goes to the longest waiter, which starts an instance.
	go func() {
		sb, err := p.get(ctx)
		if err == nil {
			p.put(ctx, sb, false)
		}
		got <- err
	}()
	waitFor(t, "the third invocation to wait", func() bool { return p.waiting() == 1 })
	p.startDone()
	if err := <-got; err != nil {
		t.Fatal(err)
	}
	if st := p.snapshot(); st.ColdStarts != 1 || st.Idle != 1 {
		t.Fatalf("after a granted start: %+v, want one cold start, now idle", st)
	}

	// Closing the pool ends a wait with errPoolClosed.
	p.mu.Lock()
	spare := p.idle[0].inst
	p.idle = nil // leave nothing to take
	p.starting = p.maxStarting
	p.mu.Unlock()
	go func() {
		_, err := p.get(ctx)
		got <- err
	}()
	waitFor(t, "the fourth invocation to wait", func() bool { return p.waiting() == 1 })
	p.close(ctx)
	if err := <-got; !errors.Is(err, errPoolClosed) {
		t.Fatalf("wait on a closed pool: %v", err)
	}
	handed.inst.Close(ctx)
	spare.Close(ctx)
}

// fakeModule is a module whose instances do nothing: it records the configuration each was started
// with, and reports snapshottable as told.
type fakeModule struct {
	canSnapshot bool
	mu          sync.Mutex
	started     []runtimes.InstanceConfig
}

func (m *fakeModule) Instantiate(_ context.Context, cfg runtimes.InstanceConfig) (instance, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.started = append(m.started, cfg)
	return fakeInstance{}, nil
}

func (m *fakeModule) Close(context.Context) error { return nil }
func (m *fakeModule) snapshottable() bool         { return m.canSnapshot }

// snapshotFlags are the Snapshot flags of the instances started so far, in order.
func (m *fakeModule) snapshotFlags() []bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []bool
	for _, c := range m.started {
		out = append(out, c.Snapshot)
	}
	return out
}

type fakeInstance struct{}

func (fakeInstance) Invoke(_ context.Context, _ runtimes.Meta, payload []byte) ([]byte, error) {
	return payload, nil
}
func (fakeInstance) Close(context.Context) error { return nil }
func (fakeInstance) Broken() bool                { return false }

// A SnapStart version's instances start with Snapshot set, and loading it live starts one instance
// (the one whose initialisation the snapshot saves) besides its MinWarm ones, once: after that
// instance is reaped, the pool keeps MinWarm as any other. Without SnapStart, or with a module that
// cannot be snapshotted (a process runtime's), nothing more starts at load.
func TestSnapStartPool(t *testing.T) {
	tests := []struct {
		name        string
		snapStart   bool
		canSnapshot bool
		minWarm     int
		atLoad      int // instances started by prewarm
	}{
		{"snapStart", true, true, 0, 1},
		{"snapStart with minWarm", true, true, 2, 2},
		{"snapStart, module not snapshottable", true, false, 0, 0},
		{"no snapStart", false, true, 0, 0},
		{"no snapStart with minWarm", false, true, 1, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			mod := &fakeModule{canSnapshot: tt.canSnapshot}
			fn := Function{Name: "f", MemoryMB: 128, Timeout: time.Second, MinWarm: tt.minWarm, IdleTimeout: time.Minute, SnapStart: tt.snapStart}
			p := newPool(fn, mod, slog.New(slog.DiscardHandler), nil, nil)
			p.setLive(true)
			if err := p.prewarm(ctx); err != nil {
				t.Fatal(err)
			}
			if got := mod.snapshotFlags(); len(got) != tt.atLoad {
				t.Fatalf("%d instances started at load, want %d", len(got), tt.atLoad)
			}
			if st := p.snapshot(); st.Idle != tt.atLoad || st.ColdStarts != 0 {
				t.Fatalf("after load: %+v", st)
			}
			// Loading again (the next registry change) starts nothing more.
			if err := p.prewarm(ctx); err != nil || len(mod.snapshotFlags()) != tt.atLoad {
				t.Fatalf("a second prewarm: %v, %d instances started", err, len(mod.snapshotFlags()))
			}
			// Idle past the idle timeout, the instances beyond MinWarm are closed, and not started
			// again.
			p.reap(ctx, time.Now().Add(2*time.Minute), time.Minute)
			if err := p.prewarm(ctx); err != nil {
				t.Fatal(err)
			}
			if st := p.snapshot(); st.Idle != tt.minWarm || len(mod.snapshotFlags()) != tt.atLoad {
				t.Fatalf("after the idle timeout: %+v, %d instances started", st, len(mod.snapshotFlags()))
			}
			// An invocation that finds none idle starts one, with the same flag.
			var taken []sandbox
			for range tt.minWarm + 1 {
				sb, err := p.get(ctx)
				if err != nil {
					t.Fatal(err)
				}
				taken = append(taken, sb)
			}
			for _, sb := range taken {
				p.put(ctx, sb, false)
			}
			flags := mod.snapshotFlags()
			if len(flags) != tt.atLoad+1 {
				t.Fatalf("%d instances started in all, want %d", len(flags), tt.atLoad+1)
			}
			for i, f := range flags {
				if f != tt.snapStart {
					t.Errorf("instance %d started with Snapshot %v, want %v", i, f, tt.snapStart)
				}
			}
		})
	}
}

// A version that is not live (called by number) starts nothing at load, SnapStart or not: its first
// invocation starts the instance the snapshot is taken from.
func TestSnapStartPoolNotLive(t *testing.T) {
	mod := &fakeModule{canSnapshot: true}
	p := newPool(Function{Name: "f", Timeout: time.Second, IdleTimeout: time.Minute, SnapStart: true}, mod, slog.New(slog.DiscardHandler), nil, nil)
	if err := p.prewarm(context.Background()); err != nil || len(mod.snapshotFlags()) != 0 {
		t.Fatalf("prewarm of a pool that is not live: %v, %d instances started", err, len(mod.snapshotFlags()))
	}
}
