package sdk

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestLazyDeadlineEndsAtItsDeadline(t *testing.T) {
	ctx, cancel := withLazyDeadline(context.WithValue(context.Background(), invocationKey{}, Invocation{RequestID: "r"}), time.Now().Add(50*time.Millisecond))
	defer cancel()
	if d, ok := ctx.Deadline(); !ok || d.IsZero() {
		t.Fatalf("Deadline() = %v, %v", d, ok)
	}
	if inv, ok := FromContext(ctx); !ok || inv.RequestID != "r" {
		t.Fatalf("the parent's values are lost: %+v, %v", inv, ok)
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

func TestLazyDeadlineErrWithoutDone(t *testing.T) {
	ctx, cancel := withLazyDeadline(context.Background(), time.Now().Add(20*time.Millisecond))
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

func TestLazyDeadlineCancel(t *testing.T) {
	ctx, cancel := withLazyDeadline(context.Background(), time.Now().Add(time.Hour))
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

func TestLazyDeadlineChildSeesTheEarlierDeadline(t *testing.T) {
	ctx, cancel := withLazyDeadline(context.Background(), time.Now().Add(30*time.Millisecond))
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
