package sdk

import (
	"context"
	"sync"
	"time"
)

// deadlineContext ends at a deadline, as a context from context.WithDeadline does, but arms its
// timer only once something asks for Done. Most handlers never wait on their context, and inside a
// WebAssembly guest making and stopping a runtime timer for every invocation costs a few
// microseconds (measured with BenchmarkWarmInvoke: 10–15% of a warm hello). Err reports the
// deadline once it has passed whether or not Done was asked for.
//
// Its parent must never end (the invocation's context is made from context.Background): only the
// deadline and cancel end it.
type deadlineContext struct {
	context.Context // the parent, for values
	deadline        time.Time

	mu    sync.Mutex
	done  chan struct{} // made by the first Done
	timer *time.Timer
	err   error
}

// withLazyDeadline returns a context that ends at d or when cancel is called, whichever is first.
func withLazyDeadline(parent context.Context, d time.Time) (context.Context, context.CancelFunc) {
	c := &deadlineContext{Context: parent, deadline: d}
	return c, func() { c.end(context.Canceled) }
}

func (c *deadlineContext) Deadline() (time.Time, bool) { return c.deadline, true }

func (c *deadlineContext) Done() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done == nil {
		c.done = make(chan struct{})
		if c.err == nil && !time.Now().Before(c.deadline) {
			c.err = context.DeadlineExceeded
		}
		if c.err != nil {
			close(c.done)
		} else {
			c.timer = time.AfterFunc(time.Until(c.deadline), func() { c.end(context.DeadlineExceeded) })
		}
	}
	return c.done
}

func (c *deadlineContext) Err() error {
	c.mu.Lock()
	err := c.err
	c.mu.Unlock()
	if err == nil && !time.Now().Before(c.deadline) {
		c.end(context.DeadlineExceeded)
		c.mu.Lock()
		err = c.err
		c.mu.Unlock()
	}
	return err
}

// end ends the context with err, unless it has ended already.
func (c *deadlineContext) end(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return
	}
	c.err = err
	if c.timer != nil {
		c.timer.Stop()
	}
	if c.done != nil {
		close(c.done)
	}
}

func (c *deadlineContext) String() string {
	return "sdk.deadlineContext(" + c.deadline.String() + ")"
}
