package bus

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// connectAs connects with role as a process of node.
func connectAs(t *testing.T, s *Server, role Role, node string) *Client {
	t.Helper()
	c, err := Connect(ClientConfig{URL: s.ClientURL(), Credentials: s.Credentials(role), Stack: "t", Name: string(role) + "-" + node, Node: node})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// A dispatcher prefers its own node's workers: one invocation at a time all run there, and the other
// node's worker takes load once the local one has calls waiting.
func TestDispatcherPrefersLocalWorkers(t *testing.T) {
	s := startServer(t)
	var mu sync.Mutex
	ran := map[string]int{}
	hold := make(chan struct{})
	var held sync.WaitGroup
	handler := func(worker string) Handler {
		return func(ctx context.Context, inv Invocation) ([]byte, error) {
			mu.Lock()
			ran[worker]++
			mu.Unlock()
			if string(inv.Payload) == "hold" {
				held.Done()
				<-hold
			}
			return []byte(worker), nil
		}
	}
	serve(t, connectAs(t, s, RoleWorker, "a"), "w1-a", 64, handler("local"))
	serve(t, connectAs(t, s, RoleWorker, "b"), "w1-b", 64, handler("remote"))
	d, err := connectAs(t, s, RoleGateway, "a").NewDispatcher(DispatchConfig{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Close)
	waitFor(t, 5*time.Second, "both workers seen", func() bool { return len(d.Workers()) == 2 })

	for range 20 {
		if _, err := d.Invoke(context.Background(), Invocation{Function: "fn", RequestID: "r"}); err != nil {
			t.Fatal(err)
		}
	}
	mu.Lock()
	if ran["local"] != 20 || ran["remote"] != 0 {
		t.Fatalf("one at a time: local %d, remote %d; want all 20 local", ran["local"], ran["remote"])
	}
	mu.Unlock()

	// Eight held at once: past remoteCost calls waiting locally, the other node's worker is less
	// loaded and takes some.
	const n = 8
	held.Add(n)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			if _, err := d.Invoke(context.Background(), Invocation{Function: "fn", RequestID: "r", Payload: []byte("hold")}); err != nil {
				t.Error(err)
			}
		})
	}
	held.Wait()
	close(hold)
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	if remote := ran["remote"]; remote == 0 || remote >= n/2+1 {
		t.Fatalf("%d held at once: %d ran remotely; want some, fewer than locally", n, remote)
	}
}

// When another node's worker goes silent (its node died: no supervisor is left to report it), its
// invocations fail within RemoteLostTimeout rather than waiting for their timeout or LostTimeout.
func TestDispatcherFailsInvocationsOfSilentRemoteWorker(t *testing.T) {
	s := startServer(t)
	remote := connectAs(t, s, RoleWorker, "b")
	started := make(chan struct{}, 1)
	end := make(chan struct{})
	serve(t, remote, "w1-b", 64, func(ctx context.Context, inv Invocation) ([]byte, error) {
		started <- struct{}{}
		<-end
		return nil, nil
	})
	t.Cleanup(func() { close(end) }) // before serve's, which waits for the handler
	d, err := connectAs(t, s, RoleGateway, "a").NewDispatcher(DispatchConfig{RemoteLostTimeout: 500 * time.Millisecond, LostTimeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Close)
	waitFor(t, 5*time.Second, "remote worker seen", func() bool { return len(d.Workers()) == 1 })

	errc := make(chan error, 1)
	go func() {
		_, err := d.Invoke(context.Background(), Invocation{Function: "fn", RequestID: "r", Timeout: time.Minute})
		errc <- err
	}()
	select {
	case <-started:
	case <-time.After(5 * time.Second):
		t.Fatal("the remote worker never got the invocation")
	}
	lost := time.Now()
	remote.Close() // the node is gone: no more heartbeats, and no report
	select {
	case err := <-errc:
		if !errors.Is(err, ErrWorkerLost) {
			t.Fatalf("invocation on a lost node: %v, want ErrWorkerLost", err)
		}
		t.Logf("failed %v after the node's connection closed", time.Since(lost).Round(time.Millisecond))
	case <-time.After(20 * time.Second):
		t.Fatal("the invocation still waits 20 s after its worker's node went silent")
	}
}

// A worker whose heartbeat is still fresh but whose subscription is gone (its process just died):
// NATS answers "no responders", and the invocation runs on another worker rather than failing or
// returning that empty answer.
func TestDispatcherRetriesWhenNoOneTakesTheInvocation(t *testing.T) {
	s := startServer(t)
	serve(t, connectAs(t, s, RoleWorker, "a"), "w1-a", 64, func(ctx context.Context, inv Invocation) ([]byte, error) {
		return []byte("from the live worker"), nil
	})
	d, err := connectAs(t, s, RoleGateway, "a").NewDispatcher(DispatchConfig{HeartbeatTimeout: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Close)
	// A ghost: it beat once, with more room than the live worker, and subscribed to nothing.
	ghost := connectAs(t, s, RoleWorker, "a")
	if err := ghost.Conn().Publish(ghost.Subjects().WorkerHeartbeat(), []byte(`{"worker":"w9-a","node":"a","instance":"x","capacity":1000}`)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "both workers seen", func() bool { return len(d.Workers()) == 2 })
	for i := range 10 {
		out, err := d.Invoke(context.Background(), Invocation{Function: "fn", RequestID: "r"})
		if err != nil || string(out) != "from the live worker" {
			t.Fatalf("invocation %d: %q, %v; want the live worker's answer", i, out, err)
		}
	}
	if ws := d.Workers(); len(ws) != 1 || ws[0] != "w1-a" {
		t.Fatalf("after no one took an invocation, usable workers %v; want only w1-a", ws)
	}
}
