package bus

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

func startServer(t testing.TB) *Server {
	t.Helper()
	s, err := NewServer(ServerConfig{Stack: "t"})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Shutdown)
	return s
}

func connect(t testing.TB, s *Server, role Role) *Client {
	t.Helper()
	c, err := Connect(ClientConfig{URL: s.ClientURL(), Credentials: s.Credentials(role), Stack: "t", Name: string(role)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// serve runs handle for invocations addressed to worker id.
func serve(t *testing.T, c *Client, id string, capacity int, handle Handler) *Worker {
	t.Helper()
	var wg sync.WaitGroup
	w, err := c.ServeWorker(id, capacity, func(f func()) { wg.Add(1); go func() { defer wg.Done(); f() }() }, handle, nil, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Drain(context.Background()); wg.Wait() })
	return w
}

// dispatcher returns a gateway-side dispatcher that already knows the workers in ids.
func dispatcher(t *testing.T, s *Server, cfg DispatchConfig, ids ...string) *Dispatcher {
	t.Helper()
	d, err := connect(t, s, RoleGateway).NewDispatcher(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Close)
	deadline := time.Now().Add(5 * time.Second)
	for len(d.Workers()) < len(ids) {
		if time.Now().After(deadline) {
			t.Fatalf("dispatcher sees workers %v, want %v", d.Workers(), ids)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return d
}

func TestInvokeRoundTrip(t *testing.T) {
	s := startServer(t)
	worker := connect(t, s, RoleWorker)
	var got Invocation
	serve(t, worker, "w1", 4, func(ctx context.Context, inv Invocation) ([]byte, error) {
		got = inv
		if _, ok := ctx.Deadline(); !ok {
			return nil, errors.New("no deadline on the handler's context")
		}
		return append([]byte("re:"), inv.Payload...), nil
	})
	gw := dispatcher(t, s, DispatchConfig{}, "w1")
	deadline := time.Now().Add(5 * time.Second).Truncate(time.Millisecond)
	out, err := gw.Invoke(context.Background(), Invocation{Function: "fn-1", RequestID: "rid", TraceParent: "00-abc-def-01", Deadline: deadline, Payload: []byte("event")})
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != "re:event" {
		t.Fatalf("reply %q", out)
	}
	if got.Function != "fn-1" || got.RequestID != "rid" || got.TraceParent != "00-abc-def-01" || !got.Deadline.Equal(deadline) {
		t.Fatalf("worker saw %+v", got)
	}
}

func TestErrorsCrossAsSentinels(t *testing.T) {
	s := startServer(t)
	worker := connect(t, s, RoleWorker)
	serve(t, worker, "w1", 4, func(ctx context.Context, inv Invocation) ([]byte, error) {
		switch inv.Function {
		case "throttled":
			return nil, ErrThrottled
		case "fails":
			return nil, ErrFunctionError
		case "wrapped":
			return nil, errors.Join(errors.New("context"), ErrResponseTooLarge)
		}
		return nil, errors.New("something unexpected")
	})
	gw := dispatcher(t, s, DispatchConfig{}, "w1")
	for fn, want := range map[string]error{"throttled": ErrThrottled, "fails": ErrFunctionError, "wrapped": ErrResponseTooLarge, "other": ErrInternal} {
		_, err := gw.Invoke(context.Background(), Invocation{Function: fn, RequestID: "r"})
		if !errors.Is(err, want) {
			t.Errorf("%s: err = %v, want %v", fn, err, want)
		}
	}
}

func TestNoWorkers(t *testing.T) {
	s := startServer(t)
	gw := dispatcher(t, s, DispatchConfig{NoWorkerWait: 200 * time.Millisecond})
	_, err := gw.Invoke(context.Background(), Invocation{Function: "fn", RequestID: "r"})
	if !errors.Is(err, ErrNoWorkers) {
		t.Fatalf("err = %v, want ErrNoWorkers", err)
	}
}

func TestInvokeHonoursContext(t *testing.T) {
	s := startServer(t)
	worker := connect(t, s, RoleWorker)
	release := make(chan struct{})
	defer close(release)
	serve(t, worker, "w1", 4, func(ctx context.Context, inv Invocation) ([]byte, error) {
		<-release
		return nil, nil
	})
	gw := dispatcher(t, s, DispatchConfig{}, "w1")
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err := gw.Invoke(ctx, Invocation{Function: "slow", RequestID: "r"})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want DeadlineExceeded", err)
	}
}

func TestLargePayload(t *testing.T) {
	s := startServer(t)
	worker := connect(t, s, RoleWorker)
	serve(t, worker, "w1", 4, func(ctx context.Context, inv Invocation) ([]byte, error) { return inv.Payload[:10], nil })
	gw := dispatcher(t, s, DispatchConfig{}, "w1")
	payload := bytes.Repeat([]byte("x"), 14<<20) // a 10 MB binary body, base64-encoded in its event
	out, err := gw.Invoke(context.Background(), Invocation{Function: "big", RequestID: "r", Payload: payload})
	if err != nil || string(out) != "xxxxxxxxxx" {
		t.Fatalf("out %q err %v", out, err)
	}
}

func TestCredentialsRequired(t *testing.T) {
	s := startServer(t)
	if _, err := nats.Connect(s.ClientURL()); err == nil {
		t.Fatal("connected without credentials")
	}
	if _, err := nats.Connect(s.ClientURL(), nats.UserInfo("gateway", "wrong")); err == nil {
		t.Fatal("connected with a wrong password")
	}
}

func TestPermissions(t *testing.T) {
	s := startServer(t)
	subj, _ := NewSubjects("t")
	tests := []struct {
		name string
		role Role
		act  func(nc *nats.Conn) error
	}{
		{"worker cannot invoke", RoleWorker, func(nc *nats.Conn) error { return nc.Publish(subj.WorkerInvoke("w2", "fn"), nil) }},
		{"worker cannot report workers gone", RoleWorker, func(nc *nats.Conn) error { return nc.Publish(subj.WorkerGone(), []byte(`{"worker":"w2"}`)) }},
		{"worker cannot read reply inboxes", RoleWorker, func(nc *nats.Conn) error {
			_, err := nc.Subscribe("_INBOX.>", func(*nats.Msg) {})
			return err
		}},
		{"gateway cannot take invocations", RoleGateway, func(nc *nats.Conn) error {
			_, err := nc.Subscribe(subj.AnyWorkerInvoke(), func(*nats.Msg) {})
			return err
		}},
		{"gateway cannot fake heartbeats", RoleGateway, func(nc *nats.Conn) error { return nc.Publish(subj.WorkerHeartbeat(), []byte(`{}`)) }},
		{"gateway cannot fake readiness", RoleGateway, func(nc *nats.Conn) error { return nc.Publish(subj.WorkerReady(), []byte("w9")) }},
		{"gateway cannot leave its stack", RoleGateway, func(nc *nats.Conn) error { return nc.Publish("gh.other.invoke.fn", nil) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			violations := make(chan error, 4)
			creds := s.Credentials(tt.role)
			nc, err := nats.Connect(s.ClientURL(), nats.UserInfo(creds.User, creds.Password),
				nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { violations <- err }))
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			if err := tt.act(nc); err != nil {
				t.Fatal(err)
			}
			nc.Flush()
			select {
			case err := <-violations:
				if !strings.Contains(strings.ToLower(err.Error()), "permissions violation") {
					t.Fatalf("error %v, want a permissions violation", err)
				}
			case <-time.After(2 * time.Second):
				t.Fatal("no permissions violation reported")
			}
		})
	}
	t.Run("worker may take invocations", func(t *testing.T) {
		c := connect(t, s, RoleWorker)
		if _, err := c.Conn().Subscribe(subj.WorkerInvokeAll("w1"), func(*nats.Msg) {}); err != nil {
			t.Fatal(err)
		}
		if err := c.Conn().Flush(); err != nil {
			t.Fatal(err)
		}
		if err := c.Conn().LastError(); err != nil {
			t.Fatalf("queue subscription refused: %v", err)
		}
	})
}

func TestServerRefusesNonLoopback(t *testing.T) {
	if _, err := NewServer(ServerConfig{Host: "0.0.0.0"}); err == nil {
		t.Fatal("an embedded bus on all interfaces was accepted")
	}
}
