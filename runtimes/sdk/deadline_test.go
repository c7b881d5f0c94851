package sdk

import (
	"context"
	"errors"
	"testing"
	"time"
)

// withDeadline is an invocation context ending at d, and its cancel.
func withDeadline(inv Invocation, d time.Time) (context.Context, context.CancelFunc) {
	inv.DeadlineMs = d.UnixMilli()
	c := newInvocationContext(inv)
	return c, func() { c.end(context.Canceled) }
}

func TestInvocationContextEndsAtItsDeadline(t *testing.T) {
	ctx, cancel := withDeadline(Invocation{RequestID: "r"}, time.Now().Add(50*time.Millisecond))
	defer cancel()
	if d, ok := ctx.Deadline(); !ok || d.IsZero() {
		t.Fatalf("Deadline() = %v, %v", d, ok)
	}
	if inv, ok := FromContext(ctx); !ok || inv.RequestID != "r" {
		t.Fatalf("FromContext = %+v, %v", inv, ok)
	}
	if err := ctx.Err(); err != nil {
		t.Fatalf("Err() before the deadline = %v", err)
	}
	select {
	case <-ctx.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("Done did not close at the deadline")
	}
	if err := ctx.Err(); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Err() = %v, want DeadlineExceeded", err)
	}
}

func TestInvocationContextErrWithoutDone(t *testing.T) {
	ctx, cancel := withDeadline(Invocation{}, time.Now().Add(20*time.Millisecond))
	defer cancel()
	for ctx.Err() == nil {
		time.Sleep(5 * time.Millisecond)
	}
	if err := ctx.Err(); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Err() = %v, want DeadlineExceeded", err)
	}
	select {
	case <-ctx.Done():
	default:
		t.Fatal("Done asked for after the deadline is not closed")
	}
}

func TestInvocationContextCancel(t *testing.T) {
	ctx, cancel := withDeadline(Invocation{}, time.Now().Add(time.Hour))
	done := ctx.Done()
	child, cancelChild := context.WithTimeout(ctx, time.Hour)
	defer cancelChild()
	stopped := make(chan struct{})
	context.AfterFunc(ctx, func() { close(stopped) })
	cancel()
	cancel() // twice is harmless
	for name, ch := range map[string]<-chan struct{}{"Done": done, "a child's Done": child.Done(), "AfterFunc": stopped} {
		select {
		case <-ch:
		case <-time.After(5 * time.Second):
			t.Fatalf("%s did not close on cancel", name)
		}
	}
	if err := ctx.Err(); !errors.Is(err, context.Canceled) {
		t.Fatalf("Err() = %v, want Canceled", err)
	}
	if err := child.Err(); !errors.Is(err, context.Canceled) {
		t.Fatalf("the child's Err() = %v, want Canceled", err)
	}
}

func TestInvocationContextChildSeesTheEarlierDeadline(t *testing.T) {
	ctx, cancel := withDeadline(Invocation{}, time.Now().Add(30*time.Millisecond))
	defer cancel()
	child, cancelChild := context.WithTimeout(ctx, time.Hour)
	defer cancelChild()
	if d, _ := child.Deadline(); time.Until(d) > time.Second {
		t.Fatalf("the child's deadline is %v away, want the parent's", time.Until(d))
	}
	select {
	case <-child.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the child did not end at the parent's deadline")
	}
	if err := child.Err(); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("the child's Err() = %v, want DeadlineExceeded", err)
	}
}

func TestInvocationContextWithoutDeadline(t *testing.T) {
	c := newInvocationContext(Invocation{RequestID: "r"})
	if d, ok := c.Deadline(); ok {
		t.Fatalf("Deadline() = %v, true for an invocation without one", d)
	}
	done := c.Done()
	select {
	case <-done:
		t.Fatal("Done is closed before the invocation ended")
	case <-time.After(20 * time.Millisecond):
	}
	if err := c.Err(); err != nil {
		t.Fatalf("Err() = %v", err)
	}
	c.end(context.Canceled)
	<-done
	if err := c.Err(); !errors.Is(err, context.Canceled) {
		t.Fatalf("Err() after the invocation = %v, want Canceled", err)
	}
}
