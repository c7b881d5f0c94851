package bus

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestDispatcherThrottlesOverMaxConcurrency(t *testing.T) {
	s := startServer(t)
	release := make(chan struct{})
	serve(t, connect(t, s, RoleWorker), "w1", 64, func(ctx context.Context, inv Invocation) ([]byte, error) {
		<-release
		return []byte("ok"), nil
	})
	gw := dispatcher(t, s, DispatchConfig{Functions: map[string]FunctionLimits{"fn": {MaxConcurrency: 2}}, ThrottleWait: 50 * time.Millisecond}, "w1")
	var ok, throttled, other atomic.Int32
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := gw.Invoke(context.Background(), Invocation{Function: "fn", RequestID: "r"})
			switch {
			case err == nil:
				ok.Add(1)
			case errors.Is(err, ErrThrottled):
				throttled.Add(1)
			default:
				other.Add(1)
			}
		}()
	}
	// The excess is refused after the short wait while two run; then the two finish.
	deadline := time.Now().Add(5 * time.Second)
	for throttled.Load() < 18 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	close(release)
	wg.Wait()
	if ok.Load() != 2 || throttled.Load() != 18 || other.Load() != 0 {
		t.Fatalf("ok %d, throttled %d, other %d; want 2, 18, 0", ok.Load(), throttled.Load(), other.Load())
	}
}

// TestDispatcherRespectsWorkerCapacity: two functions flooding a worker fill its capacity (one alone
// would leave the reserve), never more.
func TestDispatcherRespectsWorkerCapacity(t *testing.T) {
	s := startServer(t)
	var running, peak atomic.Int32
	serve(t, connect(t, s, RoleWorker), "w1", 3, func(ctx context.Context, inv Invocation) ([]byte, error) {
		n := running.Add(1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		time.Sleep(20 * time.Millisecond)
		running.Add(-1)
		return nil, nil
	})
	gw := dispatcher(t, s, DispatchConfig{}, "w1")
	var wg sync.WaitGroup
	for i := range 12 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := gw.Invoke(context.Background(), Invocation{Function: []string{"fn", "other"}[i%2], RequestID: "r"}); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if p := peak.Load(); p != 3 {
		t.Fatalf("peak concurrency on the worker %d, want its capacity 3", p)
	}
}

// A worker reported gone: the overdue invocation fails at once as a timeout, one with a kept answer gets
// it, and the others run again on another worker, whether or not they had started.
func TestDispatcherWorkerGone(t *testing.T) {
	s := startServer(t)
	block := make(chan struct{})
	defer close(block)
	var onW1 sync.Map
	serve(t, connect(t, s, RoleWorker), "w1", 64, func(ctx context.Context, inv Invocation) ([]byte, error) {
		onW1.Store(inv.RequestID, true)
		<-block
		return nil, nil
	})
	gw := dispatcher(t, s, DispatchConfig{}, "w1")
	results := make(map[string]chan error)
	for _, id := range []string{"runaway", "bystander", "queued", "finished", "posted"} {
		ch := make(chan error, 1)
		results[id] = ch
		go func() {
			out, err := gw.Invoke(context.Background(), Invocation{Function: "fn", RequestID: id})
			if want := "w2:" + id; id == "finished" {
				want = "kept"
				if err == nil && string(out) != want {
					err = errors.New("unexpected reply " + string(out))
				}
			} else if err == nil && string(out) != want {
				err = errors.New("unexpected reply " + string(out))
			}
			ch <- err
		}()
	}
	for _, id := range []string{"runaway", "bystander", "queued", "finished", "posted"} {
		for {
			if _, ok := onW1.Load(id); ok {
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	// A second worker appears, then w1 is reported gone having started only two of the three.
	serve(t, connect(t, s, RoleWorker), "w2", 64, func(ctx context.Context, inv Invocation) ([]byte, error) {
		return []byte("w2:" + inv.RequestID), nil
	})
	for len(gw.Workers()) < 2 {
		time.Sleep(5 * time.Millisecond)
	}
	if err := connect(t, s, RoleControl).PublishWorkerGone(WorkerGone{Worker: "w1", Started: []string{"runaway", "bystander", "finished", "posted"}, Effected: []string{"posted"}, Overdue: []string{"runaway"},
		Answers: []Answer{{RequestID: "finished", Body: []byte("kept")}}}); err != nil {
		t.Fatal(err)
	}
	wait := func(id string) error {
		select {
		case err := <-results[id]:
			return err
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: no answer", id)
			return nil
		}
	}
	if err := wait("runaway"); !errors.Is(err, ErrFunctionTimeout) {
		t.Errorf("runaway: %v, want ErrFunctionTimeout", err)
	}
	if err := wait("bystander"); err != nil {
		t.Errorf("bystander: %v, want it answered by w2", err)
	}
	if err := wait("queued"); err != nil {
		t.Errorf("queued: %v, want it answered by w2", err)
	}
	if err := wait("finished"); err != nil {
		t.Errorf("finished: %v, want the kept answer", err)
	}
	// It had posted to a connection: running it again could post twice.
	if err := wait("posted"); !errors.Is(err, ErrWorkerLost) {
		t.Errorf("posted: %v, want ErrWorkerLost", err)
	}
}

// A worker with an invocation past its function's timeout may be frozen: it gets no new work.
func TestDispatcherAvoidsOverdueWorker(t *testing.T) {
	s := startServer(t)
	block := make(chan struct{})
	defer close(block)
	serve(t, connect(t, s, RoleWorker), "w1", 64, func(ctx context.Context, inv Invocation) ([]byte, error) {
		if inv.Function == "spin" {
			<-block
		}
		return []byte("w1"), nil
	})
	serve(t, connect(t, s, RoleWorker), "w2", 64, func(ctx context.Context, inv Invocation) ([]byte, error) {
		if inv.Function == "spin" {
			<-block
		}
		return []byte("w2"), nil
	})
	gw := dispatcher(t, s, DispatchConfig{
		Functions:    map[string]FunctionLimits{"spin": {Timeout: 50 * time.Millisecond}, "hello": {Timeout: time.Second}},
		OverrunGrace: 50 * time.Millisecond,
	}, "w1", "w2")
	go gw.Invoke(context.Background(), Invocation{Function: "spin", RequestID: "spin-1"})
	// Wait for the spinning invocation to be on a worker and past its 50 ms + 50 ms: without that,
	// the check below would pass without testing anything.
	var frozen string
	for start := time.Now(); frozen == ""; time.Sleep(10 * time.Millisecond) {
		if time.Since(start) > 5*time.Second {
			t.Fatal("the spinning invocation never became overdue on a worker")
		}
		gw.mu.Lock()
		for _, w := range gw.workers {
			if len(w.calls) > 0 && w.overdue {
				frozen = w.id
			}
		}
		gw.mu.Unlock()
	}
	for range 20 {
		out, err := gw.Invoke(context.Background(), Invocation{Function: "hello", RequestID: "h"})
		if err != nil {
			t.Fatal(err)
		}
		if string(out) == frozen {
			t.Fatalf("an invocation went to %s, which has an overdue one", frozen)
		}
	}
}

func TestDispatcherSkipsLeavingWorker(t *testing.T) {
	s := startServer(t)
	w1 := serve(t, connect(t, s, RoleWorker), "w1", 64, func(ctx context.Context, inv Invocation) ([]byte, error) { return []byte("w1"), nil })
	serve(t, connect(t, s, RoleWorker), "w2", 64, func(ctx context.Context, inv Invocation) ([]byte, error) { return []byte("w2"), nil })
	gw := dispatcher(t, s, DispatchConfig{}, "w1", "w2")
	if err := w1.Drain(context.Background()); err != nil {
		t.Fatal(err)
	}
	for len(gw.Workers()) != 1 {
		time.Sleep(5 * time.Millisecond)
	}
	for range 10 {
		out, err := gw.Invoke(context.Background(), Invocation{Function: "fn", RequestID: "r"})
		if err != nil || string(out) != "w2" {
			t.Fatalf("%s %v, want w2", out, err)
		}
	}
}

// A caller that stops waiting does not free its function's concurrency: the function is still running.
func TestDispatcherAbandonedCallKeepsItsPlace(t *testing.T) {
	s := startServer(t)
	release := make(chan struct{})
	serve(t, connect(t, s, RoleWorker), "w1", 64, func(ctx context.Context, inv Invocation) ([]byte, error) {
		if inv.RequestID == "slow" {
			<-release
		}
		return []byte("ok"), nil
	})
	gw := dispatcher(t, s, DispatchConfig{Functions: map[string]FunctionLimits{"fn": {MaxConcurrency: 1}}, ThrottleWait: 20 * time.Millisecond}, "w1")
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := gw.Invoke(ctx, Invocation{Function: "fn", RequestID: "slow"}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err %v, want the caller's deadline", err)
	}
	if _, err := gw.Invoke(context.Background(), Invocation{Function: "fn", RequestID: "next"}); !errors.Is(err, ErrThrottled) {
		t.Fatalf("while the abandoned call runs: %v, want ErrThrottled", err)
	}
	close(release)
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, err := gw.Invoke(context.Background(), Invocation{Function: "fn", RequestID: "after"})
		if err == nil {
			break
		}
		if !errors.Is(err, ErrThrottled) || time.Now().After(deadline) {
			t.Fatalf("after the abandoned call finished: %v", err)
		}
	}
}

// TestDispatcherShares: a function alone fills a worker but its reserve, and what finds every slot
// it may take taken is refused as overloaded after FullWait; another function then runs at once, in
// the reserve; while it runs on the worker (or waits for it), one function holds at most its share
// of the slots, and its excess is throttled after ShareWait.
func TestDispatcherShares(t *testing.T) {
	s := startServer(t)
	release := map[string]chan struct{}{"flood": make(chan struct{}), "slow": make(chan struct{})}
	serve(t, connect(t, s, RoleWorker), "w1", 8, func(ctx context.Context, inv Invocation) ([]byte, error) {
		if ch := release[inv.Function]; ch != nil {
			select {
			case <-ch:
			case <-ctx.Done():
			}
		}
		return []byte("ok"), nil
	})
	gw := dispatcher(t, s, DispatchConfig{ShareWait: 200 * time.Millisecond, FullWait: 300 * time.Millisecond}, "w1")
	invoke := func(function string) chan error {
		done := make(chan error, 1)
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_, err := gw.Invoke(ctx, Invocation{Function: function, RequestID: function})
			done <- err
		}()
		return done
	}
	wait := func(what string, done chan error, want error) {
		t.Helper()
		select {
		case err := <-done:
			if !errors.Is(err, want) && !(want == nil && err == nil) {
				t.Fatalf("%s: %v, want %v", what, err, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: no answer", what)
		}
	}
	calls := func(function string) int {
		gw.mu.Lock()
		defer gw.mu.Unlock()
		n := 0
		for _, w := range gw.workers {
			n += w.functions[function]
		}
		return n
	}
	until := func(what string, ok func() bool) {
		t.Helper()
		for start := time.Now(); !ok(); time.Sleep(time.Millisecond) {
			if time.Since(start) > 10*time.Second {
				t.Fatalf("never: %s", what)
			}
		}
	}

	// Alone, the flood fills 7 of the 8 slots, leaving the worker's reserve; an eighth is refused
	// as overloaded when FullWait passes.
	var floods []chan error
	for range 7 {
		floods = append(floods, invoke("flood"))
	}
	until("the flood holds every slot but the reserve", func() bool { return calls("flood") == 7 })
	wait("an eighth flood invocation", invoke("flood"), ErrOverloaded)

	// Another function reaches the worker at once, in the reserve, though none of the flood's calls
	// has ended. While it runs, the flood holds more than its share (6 of the 8 slots): its calls
	// that end are not replaced until it is under its share, and then it takes its share, not more.
	slow := invoke("slow")
	until("slow runs beside the flood", func() bool { return calls("slow") == 1 && calls("flood") == 7 })
	release["flood"] <- struct{}{}
	release["flood"] <- struct{}{}
	until("two flood calls end", func() bool { return calls("flood") == 5 })
	floods = append(floods, invoke("flood"))
	until("the flood takes its share", func() bool { return calls("flood") == 6 })
	wait("a flood invocation over its share", invoke("flood"), ErrThrottled)

	close(release["slow"])
	wait("slow", slow, nil)
	close(release["flood"])
	for _, done := range floods {
		wait("flood", done, nil)
	}
}
