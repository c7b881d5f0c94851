package scheduler

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

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

// acquire waits for a turn for an invocation of function, until ctx ends.
func (t *turns) acquire(ctx context.Context, function string) error {
	t.mu.Lock()
	if t.free > 0 && len(t.order) == 0 {
		t.free--
		t.mu.Unlock()
		return nil
	}
	w := &turnWaiter{granted: make(chan struct{})}
	q := t.queues[function]
	if q == nil {
		q = &turnQueue{function: function}
		t.queues[function] = q
		t.order = append(t.order, q)
	}
	q.waiters = append(q.waiters, w)
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
	over := t.overShareLocked(q)
	for i, other := range q.waiters {
		if other == w {
			q.waiters = append(q.waiters[:i], q.waiters[i+1:]...)
			break
		}
	}
	t.waiting.Add(-1)
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

func (t *turns) releaseLocked() {
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
	if err := tk.run.acquire(ctx, tk.function); err != nil {
		return err
	}
	tk.held = true
	return nil
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

// Acquire takes an admission and a turn again, until ctx ends.
func (tk *turn) Acquire(ctx context.Context) error {
	if !tk.admitted {
		if err := tk.admit.acquire(ctx, tk.function); err != nil {
			return err
		}
		tk.admitted = true
	}
	if !tk.held {
		if err := tk.run.acquire(ctx, tk.function); err != nil {
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
}

// during runs a host call without the turn of the invocation in ctx.
func during[T any](ctx context.Context, call func() (T, error)) (T, error) {
	tk, _ := ctx.Value(turnKey{}).(*turn)
	if tk == nil {
		return call()
	}
	tk.Release()
	v, err := call()
	if aerr := tk.Acquire(ctx); aerr != nil && err == nil {
		var zero T
		return zero, aerr
	}
	return v, err
}

func (t turnYieldingHost) PostToConnection(ctx context.Context, id string, data []byte) error {
	_, err := during(ctx, func() (struct{}, error) { return struct{}{}, t.Host.PostToConnection(ctx, id, data) })
	return err
}

func (t turnYieldingHost) GetConnection(ctx context.Context, id string) ([]byte, error) {
	return during(ctx, func() ([]byte, error) { return t.Host.GetConnection(ctx, id) })
}

func (t turnYieldingHost) DeleteConnection(ctx context.Context, id string) error {
	_, err := during(ctx, func() (struct{}, error) { return struct{}{}, t.Host.DeleteConnection(ctx, id) })
	return err
}

func (t turnYieldingHost) Broadcast(ctx context.Context, ids []string, data []byte) ([]string, error) {
	return during(ctx, func() ([]string, error) { return t.Host.Broadcast(ctx, ids, data) })
}

func (t turnYieldingHost) KVGet(ctx context.Context, key string) ([]byte, error) {
	return during(ctx, func() ([]byte, error) { return t.Host.KVGet(ctx, key) })
}

func (t turnYieldingHost) KVPut(ctx context.Context, key string, value []byte) error {
	_, err := during(ctx, func() (struct{}, error) { return struct{}{}, t.Host.KVPut(ctx, key, value) })
	return err
}

func (t turnYieldingHost) KVCreate(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	_, err := during(ctx, func() (struct{}, error) { return struct{}{}, t.Host.KVCreate(ctx, key, value, ttl) })
	return err
}

func (t turnYieldingHost) KVDelete(ctx context.Context, key string) error {
	_, err := during(ctx, func() (struct{}, error) { return struct{}{}, t.Host.KVDelete(ctx, key) })
	return err
}

func (t turnYieldingHost) KVList(ctx context.Context, prefix string) ([]string, error) {
	return during(ctx, func() ([]string, error) { return t.Host.KVList(ctx, prefix) })
}
