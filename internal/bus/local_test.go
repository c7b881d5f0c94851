package bus

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

func connectLocal(t *testing.T, s *Server, role Role, l *Local) *Client {
	t.Helper()
	c, err := Connect(ClientConfig{URL: s.ClientURL(), Credentials: s.Credentials(role), Stack: "t", Name: string(role), Local: l})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// localDispatcher returns a gateway-side dispatcher on l that already sees a worker.
func localDispatcher(t *testing.T, s *Server, l *Local, cfg DispatchConfig) *Dispatcher {
	t.Helper()
	d, err := connectLocal(t, s, RoleGateway, l).NewDispatcher(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Close)
	for deadline := time.Now().Add(5 * time.Second); len(d.Workers()) == 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the dispatcher sees no worker")
		}
	}
	return d
}

// TestLocalHandsOverByCall: a dispatcher and a worker sharing a Local exchange invocations and
// answers without a message on the bus, with the invocation's fields, its deadline and the worker's
// errors as over the bus; once the worker drains, its invocations go over the bus again.
func TestLocalHandsOverByCall(t *testing.T) {
	s := startServer(t)
	l := NewLocal()
	worker := connectLocal(t, s, RoleWorker, l)
	var got Invocation
	var hadDeadline atomic.Bool
	w := serve(t, worker, "w1", 4, func(ctx context.Context, inv Invocation) ([]byte, error) {
		got = inv
		_, ok := ctx.Deadline()
		hadDeadline.Store(ok)
		if string(inv.Payload) == "fail" {
			return nil, ErrBadEnvelope
		}
		return append([]byte("re: "), inv.Payload...), nil
	})
	// What crosses the bus to the worker: nothing, while the local path is taken.
	watcher := connect(t, s, RoleControl)
	var onBus atomic.Int32
	sub, err := watcher.Conn().Subscribe(watcher.Subjects().WorkerInvokeAll("w1"), func(*nats.Msg) { onBus.Add(1) })
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	watcher.Conn().Flush()

	d := localDispatcher(t, s, l, DispatchConfig{})
	payload := []byte("hi")
	out, err := d.Invoke(context.Background(), Invocation{Function: "fn", RequestID: "r1", TraceParent: "00-abc-def-01",
		Deadline: time.Now().Add(time.Minute), Payload: payload})
	if err != nil || string(out) != "re: hi" {
		t.Fatalf("Invoke = %q, %v", out, err)
	}
	if got.Function != "fn" || got.RequestID != "r1" || got.TraceParent != "00-abc-def-01" || !hadDeadline.Load() {
		t.Errorf("the worker got %+v (deadline %v)", got, hadDeadline.Load())
	}
	if &got.Payload[0] == &payload[0] {
		t.Error("the worker got the caller's buffer, not a copy")
	}
	_, err = d.Invoke(context.Background(), Invocation{Function: "fn", RequestID: "r2", Payload: []byte("fail")})
	var re *RemoteError
	if !errors.As(err, &re) || re.Code != CodeOf(ErrBadEnvelope) {
		t.Errorf("a failing handler: %v, want a RemoteError with code %s", err, CodeOf(ErrBadEnvelope))
	}
	watcher.Conn().Flush()
	if n := onBus.Load(); n != 0 {
		t.Fatalf("%d invocations crossed the bus between a dispatcher and a worker sharing a Local", n)
	}

	// Drained, the worker is off the Local: an invocation for it would be published on the bus
	// again, where a worker that left answers nothing, rather than reach a handler that stopped.
	if err := w.Drain(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, ok := l.lookup("w1"); ok {
		t.Fatal("a drained worker is still on the Local")
	}
}

// TestLocalRunsOnCaller: a local worker that offers RunOnCaller runs an invocation on its caller's
// goroutine when the caller's context cannot end first, and on a goroutine of its own otherwise, so
// that a caller whose deadline comes before the function's still gets its answer (the deadline) on
// time while the function runs on.
func TestLocalRunsOnCaller(t *testing.T) {
	s := startServer(t)
	l := NewLocal()
	worker := connectLocal(t, s, RoleWorker, l)
	release := make(chan struct{})
	var ran atomic.Int32 // invocations that ended, wherever they ran
	var cancelFromHandler atomic.Pointer[context.CancelFunc]
	w := serve(t, worker, "w1", 4, func(ctx context.Context, inv Invocation) ([]byte, error) {
		defer ran.Add(1)
		switch string(inv.Payload) {
		case "wait":
			select {
			case <-release:
			case <-time.After(10 * time.Second):
			}
		case "cancel":
			(*cancelFromHandler.Load())()
		}
		return []byte("ok"), nil
	})
	var onCaller atomic.Int32
	w.RunOnCaller(func(f func()) { onCaller.Add(1); f() }, time.Second)
	d := localDispatcher(t, s, l, DispatchConfig{})
	invoke := func(ctx context.Context, timeout time.Duration, payload string) ([]byte, error) {
		return d.Invoke(ctx, Invocation{Function: "fn", RequestID: "r", Timeout: timeout, Payload: []byte(payload)})
	}
	roomy, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cancellable, cancel2 := context.WithCancel(context.Background())
	defer cancel2()
	for _, c := range []struct {
		name     string
		ctx      context.Context
		timeout  time.Duration
		onCaller bool
	}{
		{"a deadline with room for the allowance, the timeout and the margin", roomy, 3 * time.Second, true},
		{"no deadline and no way to end", context.Background(), 3 * time.Second, true},
		{"a deadline too close", roomy, 28 * time.Second, false},
		{"a function of no known timeout", roomy, 0, false},
		{"a context that may be cancelled at any time", cancellable, 3 * time.Second, false},
	} {
		before := onCaller.Load()
		if out, err := invoke(c.ctx, c.timeout, "hi"); err != nil || string(out) != "ok" {
			t.Fatalf("%s: Invoke = %q, %v", c.name, out, err)
		}
		if got := onCaller.Load() - before; got != map[bool]int32{true: 1, false: 0}[c.onCaller] {
			t.Errorf("%s: ran on the caller's goroutine %d times, want onCaller %v", c.name, got, c.onCaller)
		}
	}

	// A caller whose integration timeout comes before the function's: answered at its deadline,
	// while the function goes on running on the worker's goroutine.
	short, cancel3 := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel3()
	endedBefore := ran.Load()
	_, err := invoke(short, 3*time.Second, "wait")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a caller with 100 ms left for a 3 s function: %v, want its deadline", err)
	}
	// The function waits for the test to let it end: had it run on the caller's goroutine, the
	// caller would have been answered only after it ended.
	if ran.Load() != endedBefore {
		t.Fatal("the caller was answered after the function ended: it waited for the function")
	}
	close(release)
	for deadline := time.Now().Add(5 * time.Second); ran.Load() == endedBefore; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the function did not run on after its caller gave up")
		}
	}

	// A caller cancelled while its invocation ran on its goroutine gets what it would have got
	// waiting on another: its context's error.
	ctx, cancel4 := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel4()
	cancelFromHandler.Store(&cancel4)
	before := onCaller.Load()
	if _, err := invoke(ctx, 3*time.Second, "cancel"); !errors.Is(err, context.Canceled) {
		t.Errorf("a caller cancelled during the call: %v, want context.Canceled", err)
	}
	if onCaller.Load() == before {
		t.Error("the cancelled call did not run on the caller's goroutine; the case proves nothing")
	}
}

// TestLocalPanicOnCaller: a handler that panics on its caller's goroutine, where a caller up the
// stack recovers (as a WebSocket connection's reader does), leaves neither the worker's place nor
// the function's concurrency taken: the next invocation runs at once.
func TestLocalPanicOnCaller(t *testing.T) {
	s := startServer(t)
	l := NewLocal()
	worker := connectLocal(t, s, RoleWorker, l)
	w := serve(t, worker, "w1", 1, func(ctx context.Context, inv Invocation) ([]byte, error) {
		if string(inv.Payload) == "panic" {
			panic("a bug in the worker")
		}
		return []byte("ok"), nil
	})
	w.RunOnCaller(func(f func()) { f() }, time.Second)
	d := localDispatcher(t, s, l, DispatchConfig{FullWait: 500 * time.Millisecond, ThrottleWait: 500 * time.Millisecond})
	invoke := func(payload string) ([]byte, error) {
		return d.Invoke(context.Background(), Invocation{Function: "fn", RequestID: "r", Timeout: time.Second, MaxConcurrency: 1, Payload: []byte(payload)})
	}
	func() {
		defer func() {
			if r := recover(); r == nil {
				t.Fatal("the handler's panic did not reach its caller: it did not run on the caller's goroutine")
			}
		}()
		invoke("panic")
	}()
	if out, err := invoke("hi"); err != nil || string(out) != "ok" {
		t.Fatalf("the invocation after a recovered panic: %q, %v (the worker's one place or the function's concurrency of 1 still taken)", out, err)
	}
}
