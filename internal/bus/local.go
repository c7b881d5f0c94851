package bus

import (
	"bytes"
	"context"
	"sync"
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
}

// NewLocal returns an empty Local.
func NewLocal() *Local { return &Local{workers: map[string]localWorker{}} }

func (l *Local) add(id string, w localWorker) {
	l.mu.Lock()
	l.workers[id] = w
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
// token with its answer. The payload is copied: the caller may reuse its buffer once it stops
// waiting, while the function may still be running.
func (d *Dispatcher) handOver(w localWorker, token string, inv Invocation) {
	inv.Payload = bytes.Clone(inv.Payload)
	w.start(func() {
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
		d.complete(token, r)
	})
}
