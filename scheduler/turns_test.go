package scheduler

import (
	"context"
	"log/slog"
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
	s, err := New(Config{
		Functions:   []Function{{Name: "calls", Wasm: wasm(t, "internal/testfix/testdata/hostcalls"), MemoryMB: 128, Timeout: 10 * time.Second}},
		Parallelism: 1,
		Host:        host,
		Logger:      slog.New(slog.DiscardHandler),
	}, runtimes.Config{CacheDir: testfix.CompileCacheDir()})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close(context.Background()) })

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
