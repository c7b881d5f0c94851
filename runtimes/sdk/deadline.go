package sdk

import (
	"context"
	"sync"
	"time"
)

// invocationContext is the context of one invocation: it carries the Invocation (FromContext) and
// ends at the invocation's deadline, as a context from context.WithDeadline does, or when the
// invocation returns. It arms its timer only once something asks for Done: most handlers never wait
// on their context, and inside a WebAssembly guest making and stopping a runtime timer for every
// invocation costs a few microseconds (10–15% of a warm hello, BenchmarkWarmInvoke). Err reports
// the deadline once it has passed whether or not Done was asked for. One value for both, because
// each allocation costs more in a guest than natively.
type invocationContext struct {
	inv      Invocation
	deadline time.Time // zero: none

	mu    sync.Mutex
	done  chan struct{} // made by the first Done
	timer *time.Timer
	err   error
}

func newInvocationContext(inv Invocation) *invocationContext {
	return &invocationContext{inv: inv, deadline: inv.Deadline()}
}

func (c *invocationContext) Deadline() (time.Time, bool) { return c.deadline, !c.deadline.IsZero() }

func (c *invocationContext) Value(key any) any {
	if key == (invocationKey{}) {
		return c.inv
	}
	return nil
}

func (c *invocationContext) Done() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done == nil {
		c.done = make(chan struct{})
		if c.err == nil && c.expired() {
			c.err = context.DeadlineExceeded
		}
		switch {
		case c.err != nil:
			close(c.done)
		case !c.deadline.IsZero():
			c.timer = time.AfterFunc(time.Until(c.deadline), func() { c.end(context.DeadlineExceeded) })
		}
	}
	return c.done
}

func (c *invocationContext) Err() error {
	c.mu.Lock()
	err := c.err
	c.mu.Unlock()
	if err == nil && c.expired() {
		c.end(context.DeadlineExceeded)
		c.mu.Lock()
		err = c.err
		c.mu.Unlock()
	}
	return err
}

func (c *invocationContext) expired() bool {
	return !c.deadline.IsZero() && !time.Now().Before(c.deadline)
}

// end ends the context with err, unless it has ended already.
func (c *invocationContext) end(err error) {
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

func (c *invocationContext) String() string {
	return "sdk.invocationContext(" + c.inv.RequestID + ")"
}
