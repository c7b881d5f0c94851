package bus

import (
	"bytes"
	"context"
	"sync"
	"time"
)

// Local joins a dispatcher to workers in its own process (`up --worker-mode inline`): an invocation
// for one of them is handed to the worker by a function call, and its answer comes back the same
// way, instead of both crossing the NATS server (a publish, the server's parse, routing and
// permission check, a delivery, twice per invocation). Everything else (heartbeats, capacity,
// draining, what a gateway does when a worker is gone) is as for any worker. The dispatcher and the
// workers must be given the same Local in their ClientConfig.
type Local struct {
	mu      sync.RWMutex
	workers map[string]localWorker
}

type localWorker struct {
	start  func(func())
	handle Handler
	// run, when set, runs a function on the caller's goroutine (see Worker.RunOnCaller), and
	// allowance is how much longer than the function's timeout the worker may take to answer.
	run       func(func())
	allowance time.Duration
}

// callerMargin is the time a caller must have left beyond everything the worker may take (its
// allowance and the function's timeout) for its invocation to run on its own goroutine: a guest
// past its deadline is stopped at its next safepoint, within milliseconds.
const callerMargin = time.Second

// onCaller reports whether an invocation of a function with the timeout given, whose caller waits
// on ctx, can run on the caller's goroutine without changing what the caller sees: the caller's
// context cannot end before the worker answers, so the caller would have waited for the answer on
// another goroutine anyway. An invocation that may outlive its caller's wait (a function whose
// timeout is longer than its route's integration timeout runs on after the gateway answered 504,
// as a Lambda function does) is handed to a goroutine of the worker's.
func (w localWorker) onCaller(ctx context.Context, timeout time.Duration) bool {
	if w.run == nil || timeout <= 0 {
		return false
	}
	deadline, ok := ctx.Deadline()
	if !ok {
		return ctx.Done() == nil
	}
	return time.Until(deadline) > w.allowance+timeout+callerMargin
}

// NewLocal returns an empty Local.
func NewLocal() *Local { return &Local{workers: map[string]localWorker{}} }

func (l *Local) add(id string, w localWorker) {
	l.mu.Lock()
	l.workers[id] = w
	l.mu.Unlock()
}

// replace puts w in the place of the worker id, unless that worker is gone (drained).
func (l *Local) replace(id string, w localWorker) {
	l.mu.Lock()
	if _, ok := l.workers[id]; ok {
		l.workers[id] = w
	}
	l.mu.Unlock()
}

func (l *Local) remove(id string) {
	l.mu.Lock()
	delete(l.workers, id)
	l.mu.Unlock()
}

func (l *Local) lookup(id string) (localWorker, bool) {
	if l == nil {
		return localWorker{}, false
	}
	l.mu.RLock()
	defer l.mu.RUnlock()
	w, ok := l.workers[id]
	return w, ok
}

// handOver runs inv on the local worker w, as the worker's subscription would, and completes the call
// c with its answer: on the caller's goroutine when it can (onCaller), which saves two hand-offs
// between goroutines, each a wake-up of another thread when the machine is not busy (≈ 9 µs apiece
// at one request in flight, docs/performance.md), else on one of the worker's.
func (d *Dispatcher) handOver(ctx context.Context, w localWorker, c *call, inv Invocation) {
	start := w.start
	if w.onCaller(ctx, d.timeout(inv)) {
		start, c.onCaller = w.run, true
	} else {
		// The caller may reuse its buffer once it stops waiting, while the function may still be
		// running.
		inv.Payload = bytes.Clone(inv.Payload)
	}
	token := c.token
	start(func() {
		answered := false
		defer func() {
			if !answered {
				// The handler panicked. On the caller's goroutine the panic may be recovered
				// there (a WebSocket connection's reader recovers its own): the call must not
				// stay registered, holding a place on the worker for good.
				d.complete(token, callResult{err: &RemoteError{Code: CodeInternal, Detail: "the worker's handler panicked"}})
			}
		}()
		ctx := context.Background()
		if !inv.Deadline.IsZero() {
			var cancel context.CancelFunc
			ctx, cancel = context.WithDeadline(ctx, inv.Deadline)
			defer cancel()
		}
		out, err := w.handle(ctx, inv)
		r := callResult{data: out}
		if err != nil {
			// What the worker's reply would carry, decoded as onReply decodes it.
			r = callResult{err: &RemoteError{Code: CodeOf(err), Detail: err.Error()}}
		}
		answered = true
		d.complete(token, r)
	})
}
