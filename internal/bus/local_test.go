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

	d, err := connectLocal(t, s, RoleGateway, l).NewDispatcher(DispatchConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	for deadline := time.Now().Add(5 * time.Second); len(d.Workers()) == 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the dispatcher sees no worker")
		}
	}
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
