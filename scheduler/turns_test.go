package scheduler

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"gatehouse.dev/gatehouse/internal/bus"
	"gatehouse.dev/gatehouse/internal/testfix"
	"gatehouse.dev/gatehouse/runtimes"
)

// blockingHost holds every KVGet until release is closed.
type blockingHost struct {
	runtimes.Host // nil: other calls are not made
	entered       chan struct{}
	release       chan struct{}
}

func (h blockingHost) KVGet(ctx context.Context, key string) ([]byte, error) {
	h.entered <- struct{}{}
	<-h.release
	return []byte("v"), nil
}

// With one turn to run guest code, an invocation waiting on a host call gives its turn up: another
// invocation runs meanwhile, and the first finishes after.
func TestHostCallGivesUpTheTurn(t *testing.T) {
	host := blockingHost{entered: make(chan struct{}, 1), release: make(chan struct{})}
	s := started(t, Config{
		Functions:   []Function{{Name: "calls", Wasm: wasm(t, "internal/testfix/testdata/hostcalls"), MemoryMB: 128, Timeout: 10 * time.Second}},
		Parallelism: 1,
		Host:        host,
	})

	first := make(chan string, 1)
	go func() {
		out, err := s.Handle(context.Background(), bus.Invocation{Function: "calls", RequestID: "a", Payload: []byte(`{"op":"kvget","key":"k"}`)})
		if err != nil {
			first <- err.Error()
			return
		}
		first <- string(out)
	}()
	select {
	case <-host.entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the first invocation never made its host call")
	}
	// The only turn is free while the first waits on its host call.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := s.Handle(ctx, bus.Invocation{Function: "calls", RequestID: "b", Payload: []byte(`{"op":"nothing"}`)})
	if err != nil {
		t.Fatalf("second invocation while the first waits on a host call: %v", err)
	}
	if len(out) == 0 {
		t.Fatal("second invocation: empty answer")
	}
	close(host.release)
	if got := <-first; !strings.Contains(got, `"v"`) {
		t.Fatalf("first invocation answered %s, want the key's value", got)
	}
}

// TestTurnsRoundRobin: with one turn taken, waiters of three functions are served one function at a
// time in turn, each function's longest-waiting first.
func TestTurnsRoundRobin(t *testing.T) {
	tu := newTurns(1)
	ctx := context.Background()
	if err := tu.acquire(ctx, "x", false); err != nil {
		t.Fatal(err)
	}
	order := make(chan string, 8)
	arrive := func(name, function string) {
		queued := tu.waiting.Load()
		go func() {
			if err := tu.acquire(ctx, function, false); err != nil {
				order <- "error: " + err.Error()
				return
			}
			order <- name
		}()
		for tu.waiting.Load() == queued { // in the queue before the next one arrives
			time.Sleep(time.Millisecond)
		}
	}
	for _, w := range [][2]string{{"a1", "a"}, {"a2", "a"}, {"a3", "a"}, {"b1", "b"}, {"c1", "c"}, {"b2", "b"}} {
		arrive(w[0], w[1])
	}
	var got []string
	for range 6 {
		tu.release()
		got = append(got, <-order)
	}
	if want := "a1 b1 c1 a2 b2 a3"; strings.Join(got, " ") != want {
		t.Fatalf("served %v, want %s", got, want)
	}
	tu.release()
	if tu.free != 1 || tu.contended() {
		t.Fatalf("after all: free %d, contended %v", tu.free, tu.contended())
	}
}

// TestTurnsShareAndGiveUp: a waiter that gives up leaves no trace, and one whose function holds the
// most waiters while others wait is told it is over its share.
func TestTurnsShareAndGiveUp(t *testing.T) {
	tu := newTurns(1)
	ctx := context.Background()
	if err := tu.acquire(ctx, "x", false); err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if err := tu.acquire(short, "alone", false); err == nil || errors.Is(err, errOverShare) {
		t.Fatalf("a lone waiter giving up: %v, want its context's error", err)
	}
	if tu.contended() || len(tu.order) != 0 {
		t.Fatal("the waiter that gave up is still queued")
	}
	done := make(chan error, 3)
	for range 2 {
		go func() { done <- tu.acquire(ctx, "busy", false) }()
	}
	go func() { done <- tu.acquire(ctx, "other", false) }()
	for tu.waiting.Load() < 3 {
		time.Sleep(time.Millisecond)
	}
	short2, cancel2 := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel2()
	if err := tu.acquire(short2, "busy", false); !errors.Is(err, errOverShare) {
		t.Fatalf("the busiest function's waiter: %v, want errOverShare", err)
	}
	for range 3 {
		tu.release()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
}

// TestLoopDoesNotShutOthersOut: with one turn, a function looping until its timeout offers its turn
// up at every safepoint, so another function is answered while it loops; the loop then fails at its
// timeout as a timeout.
func TestLoopDoesNotShutOthersOut(t *testing.T) {
	s := started(t, Config{
		Functions: []Function{
			{Name: "spin", Wasm: watModule(t, "internal/app/testdata/hostile/spin.wat"), MemoryMB: 16, Timeout: 3 * time.Second},
			{Name: "hello", Wasm: wasm(t, "samples/hello"), MemoryMB: 128, Timeout: 10 * time.Second, MinWarm: 1},
		},
		Parallelism: 1,
	})

	spun := make(chan error, 1)
	go func() {
		_, err := s.Handle(context.Background(), bus.Invocation{Function: "spin", RequestID: "loop", Payload: []byte("{}")})
		spun <- err
	}()
	for s.Stats()["spin"].Busy == 0 {
		time.Sleep(time.Millisecond)
	}
	for i := range 20 {
		if _, err := s.Handle(context.Background(), bus.Invocation{Function: "hello", RequestID: "h", Payload: []byte(`{"version":"2.0"}`)}); err != nil {
			t.Fatalf("hello %d while spin loops: %v", i, err)
		}
	}
	select {
	case err := <-spun:
		t.Fatalf("spin answered (%v) before hello's 20 calls were done; the loop should still run", err)
	default:
	}
	if err := <-spun; !errors.Is(err, bus.ErrFunctionTimeout) {
		t.Fatalf("spin: %v, want a timeout", err)
	}
}

// started makes a scheduler of cfg (with the shared compilation cache and no logs unless cfg has a
// logger), loads it, and closes it when the test ends.
func started(t *testing.T, cfg Config) *Scheduler {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s, err := New(cfg, runtimes.Config{CacheDir: testfix.CompileCacheDir()})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close(context.Background()) })
	return s
}

func watModule(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(testfix.WAT(t, path))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestQuarantine: a function that overran its timeout twice runs one invocation at a time; a second
// invocation meanwhile waits QueueTimeout for the one place and is throttled; other functions are not
// held back; and the quarantine ends after QuarantineFor.
func TestQuarantine(t *testing.T) {
	s := started(t, Config{
		Functions: []Function{
			{Name: "spin", Wasm: watModule(t, "internal/app/testdata/hostile/spin.wat"), MemoryMB: 16, Timeout: 200 * time.Millisecond},
			{Name: "hello", Wasm: wasm(t, "samples/hello"), MemoryMB: 128, Timeout: 10 * time.Second},
		},
		Parallelism:   2,
		QueueTimeout:  100 * time.Millisecond,
		QuarantineFor: 2 * time.Second,
	})
	spin := func() error {
		_, err := s.Handle(context.Background(), bus.Invocation{Function: "spin", RequestID: "s", Payload: []byte("{}")})
		return err
	}
	for range 2 {
		if err := spin(); !errors.Is(err, bus.ErrFunctionTimeout) {
			t.Fatalf("spin: %v, want a timeout", err)
		}
	}
	if !s.Stats()["spin"].Quarantined {
		t.Fatal("spin is not in quarantine after two overruns")
	}
	// Two at once: one runs (and times out), the other finds the place taken.
	errs := make(chan error, 2)
	for range 2 {
		go func() { errs <- spin() }()
	}
	var timedOut, throttled int
	for range 2 {
		switch err := <-errs; {
		case errors.Is(err, bus.ErrFunctionTimeout):
			timedOut++
		case errors.Is(err, bus.ErrThrottled):
			throttled++
		default:
			t.Fatalf("spin in quarantine: %v", err)
		}
	}
	if timedOut != 1 || throttled != 1 {
		t.Fatalf("two spins in quarantine: %d timed out, %d throttled; want one each", timedOut, throttled)
	}
	if _, err := s.Handle(context.Background(), bus.Invocation{Function: "hello", RequestID: "h", Payload: []byte(`{"version":"2.0"}`)}); err != nil {
		t.Fatalf("hello beside a quarantined function: %v", err)
	}
	time.Sleep(2500 * time.Millisecond)
	go func() { errs <- spin() }()
	go func() { errs <- spin() }()
	for range 2 {
		if err := <-errs; !errors.Is(err, bus.ErrFunctionTimeout) {
			t.Fatalf("spin after its quarantine: %v, want both to run (and time out)", err)
		}
	}
}

// A process invocation keeps its admission while it runs for a moment, and gives it up to the next
// invocation when it runs on (waiting on the network, most likely).
func TestHoldAdmission(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	admit, run := newTurns(1), newTurns(1)

	// Quick: the admission is still held when it returns.
	quick := &turn{admit: admit, run: run, function: "f"}
	if err := quick.Acquire(ctx); err != nil {
		t.Fatal(err)
	}
	quick.releaseRun()
	out, err := holdAdmission(quick, time.Hour, func() ([]byte, error) { return []byte("ok"), nil })
	if string(out) != "ok" || err != nil {
		t.Fatalf("holdAdmission = %q, %v", out, err)
	}
	if !quick.admitted {
		t.Fatal("an invocation that returned within the hold gave its admission up")
	}
	quick.Release()

	// Slow: it runs until the next invocation has been admitted, which only its giving up the
	// admission allows (there is one).
	slow := &turn{admit: admit, run: run, function: "f"}
	if err := slow.Acquire(ctx); err != nil {
		t.Fatal(err)
	}
	slow.releaseRun()
	admitted := make(chan error, 1)
	result := make(chan error, 1)
	go func() {
		_, err := holdAdmission(slow, 20*time.Millisecond, func() ([]byte, error) {
			next := &turn{admit: admit, run: run, function: "g"}
			err := next.Acquire(ctx)
			admitted <- err
			if err == nil {
				next.Release()
			}
			return nil, err
		})
		result <- err
	}()
	if err := <-admitted; err != nil {
		t.Fatalf("the next invocation was not admitted while the slow one ran: %v", err)
	}
	if err := <-result; err != nil {
		t.Fatal(err)
	}
	if slow.admitted || slow.held {
		t.Fatalf("the slow invocation still holds admitted=%v turn=%v", slow.admitted, slow.held)
	}
}
