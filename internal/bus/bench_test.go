package bus

import (
	"context"
	"testing"
	"time"
)

// BenchmarkInvokeRoundTrip measures one invocation over the bus with a handler that answers at once:
// the cost of the hop itself (loopback TCP, both directions, envelope headers).
func BenchmarkInvokeRoundTrip(b *testing.B) {
	s := startServer(b)
	worker := connect(b, s, RoleWorker)
	w, err := worker.ServeWorker("w1", 64, func(f func()) { go f() }, func(ctx context.Context, inv Invocation) ([]byte, error) {
		return inv.Payload, nil
	}, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer w.Drain(context.Background())
	gw, err := connect(b, s, RoleGateway).NewDispatcher(DispatchConfig{})
	if err != nil {
		b.Fatal(err)
	}
	defer gw.Close()
	for len(gw.Workers()) == 0 {
		time.Sleep(10 * time.Millisecond)
	}
	payload := make([]byte, 512)
	for b.Loop() {
		if _, err := gw.Invoke(context.Background(), Invocation{Function: "fn", RequestID: "Mc7UVioPPHcEKPA=", Payload: payload}); err != nil {
			b.Fatal(err)
		}
	}
}
