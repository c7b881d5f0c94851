package scheduler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"sync"
	"sync/atomic"
	"time"

	"gatehouse.dev/gatehouse/internal/bus"
	"gatehouse.dev/gatehouse/internal/outbound"
	"gatehouse.dev/gatehouse/internal/spec"
	"gatehouse.dev/gatehouse/runtimes"
)

// turns hands out n places, to run guest code or to be admitted to. When a place frees up and
// invocations wait, the functions with waiters are served round-robin, each its longest-waiting
// invocation first: a busy function never shuts the others out, its own queue does not hold theirs
// up, and a function alone keeps every turn.
type turns struct {
	mu     sync.Mutex
	free   int
	queues map[string]*turnQueue // functions with waiters
	order  []*turnQueue          // the next turn goes to order[0]'s first waiter
	// resuming are waiters that held a place before and gave it up for a while (a host call, a
	// sleep): they are served every other time while new ones wait too, so work already begun is not
	// held up by work not yet begun, nor the other way round.
	resuming []*turnWaiter
	// resumed tells whether the last place went to a resuming waiter.
	resumed bool
	// waiting counts the waiters; read without the lock at every safepoint.
	waiting atomic.Int64
}

type turnQueue struct {
	function string
	waiters  []*turnWaiter
}

type turnWaiter struct {
	granted chan struct{} // closed when the turn is handed over
	done    bool          // handed over (under turns.mu)
}

func newTurns(n int) *turns {
	return &turns{free: n, queues: map[string]*turnQueue{}}
}

// acquire waits for a place for an invocation of function, until ctx ends. A resuming invocation
// (one that gave its place up for a while) is served before the others.
func (t *turns) acquire(ctx context.Context, function string, resume bool) error {
	t.mu.Lock()
	if t.free > 0 && len(t.order) == 0 && len(t.resuming) == 0 {
		t.free--
		t.mu.Unlock()
		return nil
	}
	w := &turnWaiter{granted: make(chan struct{})}
	var q *turnQueue
	if resume {
		t.resuming = append(t.resuming, w)
	} else {
		q = t.queues[function]
		if q == nil {
			q = &turnQueue{function: function}
			t.queues[function] = q
			t.order = append(t.order, q)
		}
		q.waiters = append(q.waiters, w)
	}
	t.waiting.Add(1)
	t.mu.Unlock()
	select {
	case <-w.granted:
		return nil
	case <-ctx.Done():
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if w.done {
		// Handed over just as ctx ended: pass it on.
		t.releaseLocked()
		return context.Cause(ctx)
	}
	t.waiting.Add(-1)
	if resume {
		t.resuming = removeWaiter(t.resuming, w)
		return context.Cause(ctx)
	}
	over := t.overShareLocked(q)
	q.waiters = removeWaiter(q.waiters, w)
	if len(q.waiters) == 0 {
		t.dropQueue(q)
	}
	if over {
		return errOverShare
	}
	return context.Cause(ctx)
}

// errOverShare is why a wait for a turn ended when its function held more than its share of the
// waiting invocations.
var errOverShare = errors.New("scheduler: the function is over its share of the worker")

// release gives a turn back: to the next function in turn with a waiter, else to the free turns.
func (t *turns) release() {
	t.mu.Lock()
	t.releaseLocked()
	t.mu.Unlock()
}

func removeWaiter(ws []*turnWaiter, w *turnWaiter) []*turnWaiter {
	for i, other := range ws {
		if other == w {
			return append(ws[:i], ws[i+1:]...)
		}
	}
	return ws
}

func (t *turns) releaseLocked() {
	if len(t.resuming) > 0 && (len(t.order) == 0 || !t.resumed) {
		w := t.resuming[0]
		t.resuming = t.resuming[1:]
		t.waiting.Add(-1)
		t.resumed = true
		w.done = true
		close(w.granted)
		return
	}
	t.resumed = false
	if len(t.order) == 0 {
		t.free++
		return
	}
	q := t.order[0]
	w := q.waiters[0]
	q.waiters = q.waiters[1:]
	t.order = t.order[1:]
	if len(q.waiters) == 0 {
		delete(t.queues, q.function)
	} else {
		t.order = append(t.order, q)
	}
	t.waiting.Add(-1)
	w.done = true
	close(w.granted)
}

func (t *turns) dropQueue(q *turnQueue) {
	delete(t.queues, q.function)
	for i, other := range t.order {
		if other == q {
			t.order = append(t.order[:i], t.order[i+1:]...)
			return
		}
	}
}

// contended reports whether invocations wait for a turn.
func (t *turns) contended() bool { return t.waiting.Load() > 0 }

// overShareLocked tells whether q's function has more than its share of the waiting invocations:
// more than every other function waiting, while others wait too. t.mu is held.
func (t *turns) overShareLocked(q *turnQueue) bool {
	if len(t.order) < 2 {
		return false
	}
	for _, other := range t.order {
		if other != q && len(other.waiters) >= len(q.waiters) {
			return false
		}
	}
	return true
}

// turn is one invocation's hold on the worker's CPU: its admission among the invocations running or
// ready to run guest code, and a turn to run while it runs. A sandbox offers the turn up at
// safepoints, and gives both up while its guest sleeps or waits on a host call. It is used by the
// invocation's goroutine only.
type turn struct {
	admit, run *turns
	function   string
	admitted   bool
	held       bool
}

var _ runtimes.Turn = (*turn)(nil)

// Yield lets the invocations waiting for a turn run first, when any wait.
func (tk *turn) Yield(ctx context.Context) error {
	if !tk.held || !tk.run.contended() {
		return nil
	}
	tk.held = false
	tk.run.release()
	if err := tk.run.acquire(ctx, tk.function, false); err != nil {
		return err
	}
	tk.held = true
	return nil
}

// releaseRun gives the turn up and keeps the admission.
func (tk *turn) releaseRun() {
	if tk.held {
		tk.held = false
		tk.run.release()
	}
}

// Release gives the turn and the admission up.
func (tk *turn) Release() {
	if tk.held {
		tk.held = false
		tk.run.release()
	}
	if tk.admitted {
		tk.admitted = false
		tk.admit.release()
	}
}

// Acquire takes an admission and a turn again, until ctx ends. The admission is given before new
// invocations': this one has begun.
func (tk *turn) Acquire(ctx context.Context) error {
	if !tk.admitted {
		if err := tk.admit.acquire(ctx, tk.function, true); err != nil {
			return err
		}
		tk.admitted = true
	}
	if !tk.held {
		if err := tk.run.acquire(ctx, tk.function, false); err != nil {
			return err
		}
		tk.held = true
	}
	return nil
}

type turnKey struct{}

// turnYieldingHost gives up the invocation's turn while a host call waits (on the bus, the key-value
// store), and takes a turn again before the guest goes on.
type turnYieldingHost struct {
	runtimes.Host
	log *slog.Logger
}

// during runs a host call without the turn of the invocation in ctx. A call that failed for a
// reason of Gatehouse's (not a missing key, a gone connection or the like) is logged: the guest
// only learns that it failed.
func during[T any](t turnYieldingHost, ctx context.Context, op string, call func() (T, error)) (T, error) {
	tk, _ := ctx.Value(turnKey{}).(*turn)
	if tk != nil {
		tk.Release()
	}
	v, err := call()
	if tk != nil {
		if aerr := tk.Acquire(ctx); aerr != nil && err == nil {
			err = fmt.Errorf("taking a turn again after the call: %w", aerr)
		}
	}
	if err != nil && !hostSentinel(err) {
		t.log.Warn("host call failed", "op", op, "err", err)
	}
	return v, err
}

// hostSentinel reports whether err is one a Host reports to the guest as a status of its own.
func hostSentinel(err error) bool {
	for _, s := range []error{runtimes.ErrHostNotFound, runtimes.ErrHostTooLarge, runtimes.ErrHostLimit, runtimes.ErrHostInvalid, runtimes.ErrHostExists, runtimes.ErrHostNotAllowed, context.DeadlineExceeded} {
		if errors.Is(err, s) {
			return true
		}
	}
	return false
}

func (t turnYieldingHost) PostToConnection(ctx context.Context, id string, data []byte) error {
	_, err := during(t, ctx, "PostToConnection", func() (struct{}, error) { return struct{}{}, t.Host.PostToConnection(ctx, id, data) })
	return err
}

func (t turnYieldingHost) GetConnection(ctx context.Context, id string) ([]byte, error) {
	return during(t, ctx, "GetConnection", func() ([]byte, error) { return t.Host.GetConnection(ctx, id) })
}

func (t turnYieldingHost) DeleteConnection(ctx context.Context, id string) error {
	_, err := during(t, ctx, "DeleteConnection", func() (struct{}, error) { return struct{}{}, t.Host.DeleteConnection(ctx, id) })
	return err
}

func (t turnYieldingHost) Broadcast(ctx context.Context, ids []string, data []byte) ([]string, error) {
	return during(t, ctx, "Broadcast", func() ([]string, error) { return t.Host.Broadcast(ctx, ids, data) })
}

func (t turnYieldingHost) KVGet(ctx context.Context, key string) ([]byte, error) {
	return during(t, ctx, "KVGet", func() ([]byte, error) { return t.Host.KVGet(ctx, key) })
}

func (t turnYieldingHost) KVPut(ctx context.Context, key string, value []byte) error {
	_, err := during(t, ctx, "KVPut", func() (struct{}, error) { return struct{}{}, t.Host.KVPut(ctx, key, value) })
	return err
}

func (t turnYieldingHost) KVCreate(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	_, err := during(t, ctx, "KVCreate", func() (struct{}, error) { return struct{}{}, t.Host.KVCreate(ctx, key, value, ttl) })
	return err
}

func (t turnYieldingHost) KVDelete(ctx context.Context, key string) error {
	_, err := during(t, ctx, "KVDelete", func() (struct{}, error) { return struct{}{}, t.Host.KVDelete(ctx, key) })
	return err
}

func (t turnYieldingHost) KVList(ctx context.Context, prefix string) ([]string, error) {
	return during(t, ctx, "KVList", func() ([]string, error) { return t.Host.KVList(ctx, prefix) })
}

func (t turnYieldingHost) HTTP(ctx context.Context, req runtimes.HTTPRequest) (runtimes.HTTPResponse, error) {
	return during(t, ctx, "HTTP", func() (runtimes.HTTPResponse, error) { return t.Host.HTTP(ctx, req) })
}

func (t turnYieldingHost) Publish(ctx context.Context, req runtimes.PublishRequest) error {
	_, err := during(t, ctx, "Publish", func() (struct{}, error) { return struct{}{}, t.Host.Publish(ctx, req) })
	return err
}

// functionHost is the host of one function's pool: its outbound requests carry the function's
// name and allow-list, and are counted.
type functionHost struct {
	runtimes.Host
	name     string
	allow    []spec.OutboundHost
	outbound *outboundCounters
	// publish are the subjects the function may publish on.
	publish []string
}

func (h functionHost) Publish(ctx context.Context, req runtimes.PublishRequest) error {
	req.Function, req.Allow = h.name, h.publish
	return h.Host.Publish(ctx, req)
}

func (h functionHost) HTTP(ctx context.Context, req runtimes.HTTPRequest) (runtimes.HTTPResponse, error) {
	req.Function, req.Allow = h.name, h.allow
	start := time.Now()
	resp, err := h.Host.HTTP(ctx, req)
	if h.outbound != nil {
		h.outbound.record(h.name, destination(req.URL, h.allow, err), err, time.Since(start))
	}
	return resp, err
}

// destination is the allow-list entry a request's URL matches, or "refused": a label of a bounded
// set (the list is at most spec.MaxOutboundHosts entries).
func destination(rawURL string, allow []spec.OutboundHost, err error) string {
	if errors.Is(err, runtimes.ErrHostNotAllowed) {
		return "refused"
	}
	if h, ok := outbound.Destination(allow, rawURL); ok {
		return h.String()
	}
	return "refused"
}

// outboundCounters are a worker's outbound requests by function and destination.
type outboundCounters struct {
	mu sync.Mutex
	by map[string]map[string]bus.OutboundStats
}

func (c *outboundCounters) record(function, dest string, err error, d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.by == nil {
		c.by = map[string]map[string]bus.OutboundStats{}
	}
	m := c.by[function]
	if m == nil {
		m = map[string]bus.OutboundStats{}
		c.by[function] = m
	}
	st := m[dest]
	switch {
	case err == nil:
		st.OK++
	case errors.Is(err, runtimes.ErrHostNotAllowed):
		st.Refused++
	case errors.Is(err, runtimes.ErrHostTooLarge):
		st.TooLarge++
	case errors.Is(err, context.DeadlineExceeded):
		st.Timeouts++
	default:
		st.Errors++
	}
	st.Seconds += d.Seconds()
	m[dest] = st
}

// snapshot returns a copy of the counters of function.
func (c *outboundCounters) snapshot(function string) map[string]bus.OutboundStats {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.by[function]) == 0 {
		return nil
	}
	return maps.Clone(c.by[function])
}
