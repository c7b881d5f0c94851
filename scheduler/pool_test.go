package scheduler

import (
	"context"
	"errors"
	"testing"
	"time"
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
