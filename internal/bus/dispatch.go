package bus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
)

// ErrWorkerLost means the workers running an invocation kept dying before answering, so it was not
// sent again.
var ErrWorkerLost = errors.New("worker lost while running the invocation")

// FunctionLimits are what the dispatcher enforces for one function.
type FunctionLimits struct {
	// MaxConcurrency bounds the invocations of the function running at once through this dispatcher;
	// 0 means no bound.
	MaxConcurrency int
	// Timeout is the function's own time limit; an invocation not answered by then plus the overrun
	// grace marks its worker as frozen.
	Timeout time.Duration
}

// DispatchConfig configures a [Dispatcher].
type DispatchConfig struct {
	// Functions holds per-function limits by name.
	Functions map[string]FunctionLimits
	// ThrottleWait is how long an invocation over its function's MaxConcurrency waits for a slot before
	// failing with ErrThrottled; default 100ms.
	ThrottleWait time.Duration
	// NoWorkerWait is how long an invocation waits for a live worker to appear before failing with
	// ErrNoWorkers; default 5s.
	NoWorkerWait time.Duration
	// HeartbeatTimeout is the silence after which a worker gets no new invocations; default 500ms.
	HeartbeatTimeout time.Duration
	// LostTimeout is the silence after which a worker is given up, failing its invocations with
	// ErrWorkerLost; default 10s. (A worker's supervisor normally reports it gone long before.)
	LostTimeout time.Duration
	// RemoteLostTimeout is the same for a worker of another node, default 1s: when a whole node is
	// lost, no supervisor is left to report its workers gone, and their invocations must not wait for
	// their timeout. They fail with ErrWorkerLost: which of them had acted on something outside their
	// sandbox is known only to the lost node, so none is sent again.
	RemoteLostTimeout time.Duration
	// OverrunGrace is how long past its function's timeout an invocation may go unanswered before its
	// worker is taken for frozen; default 250ms.
	OverrunGrace time.Duration
	// StartAllowance is how long a worker may take to start an invocation (to admit it and find it
	// an instance) before the function's timeout begins to count, for telling when an invocation is
	// overdue; default 0.
	StartAllowance time.Duration
	// FullWait is how long an invocation waits while every worker is full before failing with
	// ErrOverloaded; default 2s.
	FullWait time.Duration
	// ShareWait is how long an invocation whose function holds its share of every worker with room
	// (FunctionShare of its slots) waits for one of its own calls to end before failing with
	// ErrThrottled; default 1s.
	ShareWait time.Duration
	// Logger receives dispatcher events; default discards.
	Logger *slog.Logger
}

// FunctionShare is the part of a worker's slots one function may hold while other functions run on
// the worker or wait for one: the rest stay free for them, so a flood of one function never keeps
// another from reaching a worker. A function alone may fill every slot but the worker's reserve.
const FunctionShare = 0.75

// reserve is how many of a worker's slots a function alone leaves free: a sixteenth (4 of 64), at
// least one where there are two or more. The share alone cannot keep a flood that came first from
// shutting others out: it only stops the flood from taking slots that free up, and a flood whose
// calls each run for seconds (a storm of WebSocket connects, each broadcasting) frees none for that
// long. Another function's invocation then finds a slot at once. A function alone that could use
// every slot loses a sixteenth of its concurrency on a worker.
func reserve(capacity int) int {
	if capacity < 2 {
		return 0
	}
	return max(1, capacity/16)
}

// Dispatcher sends invocations to workers it knows are alive, not frozen and not full, and never loses
// one: when a worker dies, the invocation that overran its timeout fails at once, and the others on
// that worker get the answer the worker had kept or run again on another worker. It enforces per-function concurrency limits (per dispatcher, that is per
// gateway node). It is safe for concurrent use.
type Dispatcher struct {
	c   *Client
	cfg DispatchConfig
	log *slog.Logger

	inbox string
	subs  []*nats.Subscription
	stop  chan struct{}
	wg    sync.WaitGroup

	mu      sync.Mutex
	workers map[string]*workerState
	calls   map[string]*call
	seq     uint64
	rr      int
	changed chan struct{} // closed (and replaced) whenever capacity may have become available

	// waiting counts the invocations waiting for a worker, by function.
	waiting map[string]int

	slotsMu sync.Mutex
	fnSlots map[string]chan struct{} // by function name; a channel's capacity is the limit
}

type workerState struct {
	id, instance string
	// remote is set for a worker of another node.
	remote bool
	// instances holds the function's instances (idle and busy) by function, from the worker's
	// latest counters; nil until they came.
	instances map[string]int
	capacity  int
	lastSeen  time.Time
	leaving   bool
	calls     map[*call]struct{}
	// functions counts calls by function.
	functions map[string]int
	// overdue is set by the watch loop while one of calls has overrun its timeout: the worker may be
	// frozen. Checked on every dispatch, it is kept by the clock rather than found by a scan of calls.
	overdue bool
}

type call struct {
	token     string
	requestID string
	function  string
	worker    *workerState
	overdueAt time.Time
	done      chan callResult
	// onFinish, when set, runs when the call is unregistered (its caller gave up waiting).
	onFinish func()
	// onCaller is set when the call ran on its caller's goroutine (Local.handOver): it is over by
	// the time send returns.
	onCaller bool
}

type callResult struct {
	data  []byte
	err   error
	retry bool
}

var _ interface {
	Invoke(context.Context, Invocation) ([]byte, error)
} = (*Dispatcher)(nil)

// NewDispatcher subscribes to worker heartbeats, worker reports and its reply inbox.
func (c *Client) NewDispatcher(cfg DispatchConfig) (*Dispatcher, error) {
	if cfg.ThrottleWait <= 0 {
		cfg.ThrottleWait = 100 * time.Millisecond
	}
	if cfg.NoWorkerWait <= 0 {
		cfg.NoWorkerWait = 5 * time.Second
	}
	if cfg.HeartbeatTimeout <= 0 {
		cfg.HeartbeatTimeout = 500 * time.Millisecond
	}
	if cfg.LostTimeout <= 0 {
		cfg.LostTimeout = 10 * time.Second
	}
	if cfg.RemoteLostTimeout <= 0 {
		cfg.RemoteLostTimeout = time.Second
	}
	if cfg.OverrunGrace <= 0 {
		cfg.OverrunGrace = 250 * time.Millisecond
	}
	if cfg.FullWait <= 0 {
		cfg.FullWait = 2 * time.Second
	}
	if cfg.ShareWait <= 0 {
		cfg.ShareWait = time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	d := &Dispatcher{
		c: c, cfg: cfg, log: cfg.Logger,
		inbox:   nats.NewInbox(),
		stop:    make(chan struct{}),
		workers: map[string]*workerState{},
		calls:   map[string]*call{},
		changed: make(chan struct{}),
		waiting: map[string]int{},
		fnSlots: map[string]chan struct{}{},
	}
	for subject, handler := range map[string]nats.MsgHandler{
		d.inbox + ".*":           d.onReply,
		c.subj.WorkerHeartbeat(): d.onHeartbeat,
		c.subj.WorkerGone():      d.onGone,
	} {
		sub, err := c.nc.Subscribe(subject, handler)
		if err != nil {
			d.Close()
			return nil, fmt.Errorf("bus: dispatcher: %w", err)
		}
		sub.SetPendingLimits(-1, 512<<20)
		d.subs = append(d.subs, sub)
	}
	if err := c.nc.Flush(); err != nil {
		d.Close()
		return nil, fmt.Errorf("bus: dispatcher: %w", err)
	}
	d.wg.Add(1)
	go d.watch()
	return d, nil
}

// Close stops the dispatcher. Invocations waiting for a reply fail.
func (d *Dispatcher) Close() {
	select {
	case <-d.stop:
		return
	default:
	}
	close(d.stop)
	for _, s := range d.subs {
		s.Unsubscribe()
	}
	d.wg.Wait()
}

// Workers returns the ids of the workers the dispatcher would send invocations to now.
func (d *Dispatcher) Workers() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	var ids []string
	now := time.Now()
	for _, w := range d.workers {
		if d.usable(w, now) {
			ids = append(ids, w.id)
		}
	}
	return ids
}

// Invoke sends inv to a worker and waits for the function's response, until ctx ends. Errors wrap one
// of the package's sentinels, or ctx's error.
//
// When ctx ends first, the invocation keeps counting against its function's MaxConcurrency and its
// worker's capacity until the worker answers or is gone: the function is still running.
func (d *Dispatcher) Invoke(ctx context.Context, inv Invocation) ([]byte, error) {
	release := func() {}
	if slots := d.slots(inv); slots != nil {
		t := time.NewTimer(d.cfg.ThrottleWait)
		select {
		case slots <- struct{}{}:
			t.Stop()
			release = sync.OnceFunc(func() { <-slots })
		case <-t.C:
			return nil, fmt.Errorf("invoking %s: %w", inv.Function, ErrThrottled)
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("invoking %s: %w", inv.Function, ctx.Err())
		}
	}
	// A worker in this process may run the call on this goroutine (Local); should its handler
	// panic and a caller up the stack recover, the function's place must not stay taken.
	defer func() {
		if r := recover(); r != nil {
			release()
			panic(r)
		}
	}()
	// An invocation that a dying worker never started goes to another; a few times at most.
	for attempt := 0; ; attempt++ {
		c, err := d.send(ctx, inv)
		if err != nil {
			release()
			return nil, fmt.Errorf("invoking %s: %w", inv.Function, err)
		}
		if c.onCaller && ctx.Err() != nil {
			// The caller's context ended while the call ran on its goroutine (cancelled: its
			// deadline left room for the call): what it would have seen waiting on another.
			d.abandon(c, release)
			return nil, fmt.Errorf("invoking %s: %w", inv.Function, ctx.Err())
		}
		select {
		case r := <-c.done:
			if r.retry && attempt < 3 {
				continue
			}
			release()
			if r.retry {
				return nil, fmt.Errorf("invoking %s: %w", inv.Function, ErrWorkerLost)
			}
			if r.err != nil {
				return nil, fmt.Errorf("invoking %s: %w", inv.Function, r.err)
			}
			return r.data, nil
		case <-ctx.Done():
			d.abandon(c, release)
			return nil, fmt.Errorf("invoking %s: %w", inv.Function, ctx.Err())
		}
	}
}

// timeout is the function's own time limit for inv: its own, else the configured one.
func (d *Dispatcher) timeout(inv Invocation) time.Duration {
	if inv.Timeout > 0 {
		return inv.Timeout
	}
	return d.cfg.Functions[inv.Function].Timeout
}

// slots returns the channel that bounds inv's function's concurrency, or nil when it has no bound.
// When the limit changes (a new version says otherwise), a new channel replaces the old one;
// invocations holding a place in the old one release it there.
func (d *Dispatcher) slots(inv Invocation) chan struct{} {
	limit := inv.MaxConcurrency
	if limit <= 0 {
		limit = d.cfg.Functions[inv.Function].MaxConcurrency
	}
	if limit <= 0 {
		return nil
	}
	d.slotsMu.Lock()
	defer d.slotsMu.Unlock()
	ch, ok := d.fnSlots[inv.Function]
	if !ok || cap(ch) != limit {
		ch = make(chan struct{}, limit)
		d.fnSlots[inv.Function] = ch
	}
	return ch
}

// abandon leaves c registered until its worker answers or is gone, then calls release.
func (d *Dispatcher) abandon(c *call, release func()) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.calls[c.token]; !ok {
		release()
		return
	}
	c.onFinish = release
}

// send picks a worker, waiting for capacity, registers the call and publishes it.
func (d *Dispatcher) send(ctx context.Context, inv Invocation) (*call, error) {
	// noWorkers bounds the wait for a live worker (NoWorkerWait). It starts when the invocation
	// first waits, so that one finding room at once, nearly every one, sets no timer.
	var noWorkers *time.Timer
	// since is when the invocation began to wait for room on a worker.
	var since time.Time
	counted := false
	defer func() {
		if noWorkers != nil {
			noWorkers.Stop()
		}
		if counted {
			d.mu.Lock()
			d.unwait(inv.Function)
			d.mu.Unlock()
		}
	}()
	for {
		d.mu.Lock()
		w, anyAlive, overShare := d.pick(inv.Function)
		if w == nil && !counted {
			counted = true
			d.waiting[inv.Function]++
		}
		if w != nil {
			d.seq++
			c := &call{
				token:     strconv.FormatUint(d.seq, 16),
				requestID: inv.RequestID,
				function:  inv.Function,
				worker:    w,
				done:      make(chan callResult, 1),
			}
			if timeout := d.timeout(inv); timeout > 0 {
				c.overdueAt = time.Now().Add(d.cfg.StartAllowance + timeout + d.cfg.OverrunGrace)
			}
			w.calls[c] = struct{}{}
			w.functions[c.function]++
			d.calls[c.token] = c
			d.mu.Unlock()
			if err := d.publish(ctx, c, inv); err != nil {
				d.forget(c)
				return nil, err
			}
			return c, nil
		}
		changed := d.changed
		d.mu.Unlock()
		if noWorkers == nil {
			noWorkers = time.NewTimer(d.cfg.NoWorkerWait)
		}
		// How long this invocation may go on waiting, by why it waits.
		var bound time.Duration
		var boundErr error
		switch {
		case overShare:
			// Room, but not for this function: its own calls must end first.
			bound, boundErr = d.cfg.ShareWait, fmt.Errorf("%w: the function holds its share of every worker", ErrThrottled)
		case anyAlive:
			// Workers exist but all are full.
			bound, boundErr = d.cfg.FullWait, fmt.Errorf("%w: every worker is full", ErrOverloaded)
		}
		if bound > 0 {
			// Counted from the first wait for room: the reason may change back and forth while
			// other functions' calls come and go.
			if since.IsZero() {
				since = time.Now()
			}
			if time.Since(since) >= bound {
				return nil, boundErr
			}
			noWorkers.Reset(d.cfg.NoWorkerWait)
		}
		var wake *time.Timer
		var woken <-chan time.Time
		if bound > 0 {
			wake = time.NewTimer(bound - time.Since(since))
			woken = wake.C
		}
		var err error
		select {
		case <-changed:
		case <-woken:
		case <-noWorkers.C:
			err = ErrNoWorkers
		case <-ctx.Done():
			err = ctx.Err()
		case <-d.stop:
			err = ErrNoWorkers
		}
		if wake != nil {
			wake.Stop()
		}
		if err != nil {
			return nil, err
		}
	}
}

// unwait counts an invocation of function that no longer waits. d.mu is held.
func (d *Dispatcher) unwait(function string) {
	if d.waiting[function]--; d.waiting[function] <= 0 {
		delete(d.waiting, function)
	}
}

// othersWaiting reports whether invocations of functions other than function wait. d.mu is held.
func (d *Dispatcher) othersWaiting(function string) bool {
	return len(d.waiting) > 1 || len(d.waiting) == 1 && d.waiting[function] == 0
}

// publish sends inv to c's worker: over the bus, or by a call to a worker in this process.
func (d *Dispatcher) publish(ctx context.Context, c *call, inv Invocation) error {
	worker := c.worker.id
	if w, ok := d.c.local.lookup(worker); ok {
		d.handOver(ctx, w, c, inv)
		return nil
	}
	msg := &nats.Msg{
		Subject: d.c.subj.WorkerInvoke(worker, inv.Function),
		Reply:   d.inbox + "." + c.token,
		Header:  make(nats.Header, 4),
		Data:    inv.Payload,
	}
	msg.Header[HeaderEnvelope] = []string{EnvelopeVersion}
	msg.Header[HeaderRequestID] = []string{inv.RequestID}
	if dl := formatDeadline(inv.Deadline); dl != "" {
		msg.Header[HeaderDeadline] = []string{dl}
	}
	if inv.TraceParent != "" {
		msg.Header[HeaderTraceParent] = []string{inv.TraceParent}
	}
	if inv.FunctionID != "" {
		msg.Header[HeaderFunctionID] = []string{inv.FunctionID}
		msg.Header[HeaderVersion] = []string{strconv.Itoa(inv.Version)}
	}
	return d.c.nc.PublishMsg(msg)
}

// usable reports whether w may get a new invocation: alive, not leaving, not frozen.
func (d *Dispatcher) usable(w *workerState, now time.Time) bool {
	return !w.leaving && !w.overdue && now.Sub(w.lastSeen) <= d.cfg.HeartbeatTimeout
}

// hasOverdue reports whether an invocation on w has overrun its timeout. d.mu is held.
func hasOverdue(w *workerState, now time.Time) bool {
	for c := range w.calls {
		if !c.overdueAt.IsZero() && now.After(c.overdueAt) {
			return true
		}
	}
	return false
}

// Costs that weigh a worker's load when picking one, in invocations in flight: a worker of another
// node costs a hop over the cluster's routes (about a tenth of a millisecond on a LAN, docs/cluster.md),
// and one without an instance of the function a cold start. A worker that is that much less loaded
// still wins, so remote workers take load as soon as local ones queue.
const (
	remoteCost = 2
	coldCost   = 1
)

// load is w's weighed load for a call of function.
func (w *workerState) load(function string) int {
	l := len(w.calls)
	if w.remote {
		l += remoteCost
	}
	if w.instances != nil && w.instances[function] == 0 {
		l += coldCost
	}
	return l
}

// pick returns a usable worker with room for a call of function and the least weighed load (rotating
// among equals), whether any usable worker exists at all, and whether workers have room but
// function already holds its share of each. d.mu is held.
func (d *Dispatcher) pick(function string) (best *workerState, anyAlive, overShare bool) {
	now := time.Now()
	var ties []*workerState
	bestLoad := 0
	others := d.othersWaiting(function)
	for _, w := range d.workers {
		if !d.usable(w, now) {
			continue
		}
		anyAlive = true
		mine := w.functions[function]
		shared := others || len(w.functions) > 1 || len(w.functions) == 1 && mine == 0
		load := w.load(function)
		switch {
		case len(w.calls) >= w.capacity:
		case !shared && mine >= w.capacity-reserve(w.capacity):
			// Full for a function alone: the rest is the reserve.
		case shared && mine >= max(1, int(float64(w.capacity)*FunctionShare)):
			overShare = true
		case best == nil || load < bestLoad:
			best, bestLoad, ties = w, load, append(ties[:0], w)
		case load == bestLoad:
			ties = append(ties, w)
		}
	}
	if len(ties) > 1 {
		d.rr++
		best = ties[d.rr%len(ties)]
	}
	return best, anyAlive, overShare && best == nil
}

// forget drops a call that will not be answered (or whose caller went away).
func (d *Dispatcher) forget(c *call) {
	d.mu.Lock()
	d.finish(c)
	d.mu.Unlock()
}

// finish unregisters c. d.mu is held.
func (d *Dispatcher) finish(c *call) {
	if _, ok := d.calls[c.token]; !ok {
		return
	}
	delete(d.calls, c.token)
	delete(c.worker.calls, c)
	if c.worker.functions[c.function]--; c.worker.functions[c.function] <= 0 {
		delete(c.worker.functions, c.function)
	}
	if c.onFinish != nil {
		c.onFinish()
	}
	d.signal()
}

// signal wakes invocations waiting for capacity. d.mu is held.
func (d *Dispatcher) signal() {
	close(d.changed)
	d.changed = make(chan struct{})
}

func (d *Dispatcher) onReply(m *nats.Msg) {
	token := m.Subject[strings.LastIndexByte(m.Subject, '.')+1:]
	d.mu.Lock()
	c, ok := d.calls[token]
	if ok {
		d.finish(c)
	}
	noResponders := ok && len(m.Data) == 0 && m.Header.Get("Status") == noRespondersStatus
	if noResponders {
		// Nothing took the invocation: the worker's subscription is gone (its process or its node
		// died within the last heartbeat interval) though its heartbeats have not yet stopped
		// counting. It ran nowhere, so it goes to another worker, and this one gets no more until
		// a heartbeat says otherwise.
		c.worker.leaving = true
		d.signal()
	}
	d.mu.Unlock()
	if !ok {
		return // the caller gave up, or the worker was reported gone
	}
	if noResponders {
		c.done <- callResult{retry: true}
		return
	}
	r := callResult{data: m.Data}
	if code := m.Header.Get(HeaderError); code != "" {
		r = callResult{err: &RemoteError{Code: Code(code), Detail: m.Header.Get(HeaderErrorDetail)}}
	}
	c.done <- r
}

// complete ends the call token with r, unless its caller gave up or its worker was reported gone.
func (d *Dispatcher) complete(token string, r callResult) {
	d.mu.Lock()
	c, ok := d.calls[token]
	if ok {
		d.finish(c)
	}
	d.mu.Unlock()
	if ok {
		c.done <- r
	}
}

// noRespondersStatus is the Status header of the message NATS sends a requester when nothing is
// subscribed to the subject it published to.
const noRespondersStatus = "503"

func (d *Dispatcher) onHeartbeat(m *nats.Msg) {
	var hb Heartbeat
	if json.Unmarshal(m.Data, &hb) != nil || ValidToken(hb.Worker) != nil {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	w, ok := d.workers[hb.Worker]
	if ok && w.instance != hb.Instance {
		// A new process under the same id: the old one is gone without a report we saw.
		d.drop(w, nil, nil, nil)
		ok = false
	}
	if !ok {
		w = &workerState{id: hb.Worker, instance: hb.Instance, remote: hb.Node != d.c.node,
			calls: map[*call]struct{}{}, functions: map[string]int{}}
		d.workers[hb.Worker] = w
	}
	if hb.Functions != nil {
		w.instances = make(map[string]int, len(hb.Functions))
		for fn, st := range hb.Functions {
			w.instances[fn] = st.Idle + st.Busy
		}
	}
	w.capacity = max(hb.Capacity, 1)
	w.lastSeen = time.Now()
	w.leaving = hb.Leaving
	d.signal()
}

func (d *Dispatcher) onGone(m *nats.Msg) {
	var g WorkerGone
	if json.Unmarshal(m.Data, &g) != nil {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if w, ok := d.workers[g.Worker]; ok {
		d.drop(w, g.Overdue, g.Effected, g.Answers)
	}
}

// drop forgets a worker that is gone. An invocation with a kept answer gets it; an overdue one fails
// with ErrFunctionTimeout; one that made a host call with effects fails with ErrWorkerLost (running it
// again could repeat them); every other one runs again on another worker, even one whose guest code
// had started: it has acted on nothing outside its sandbox, so running it again is safe, and it is
// what keeps bystanders of a runaway function from failing. d.mu is held.
func (d *Dispatcher) drop(w *workerState, overdue, effected []string, answers []Answer) {
	if d.workers[w.id] == w {
		delete(d.workers, w.id)
	}
	for c := range w.calls {
		d.finish(c)
		if a, ok := findAnswer(answers, c.requestID); ok {
			if a.Code != "" {
				c.done <- callResult{err: &RemoteError{Code: a.Code, Detail: "answered by the supervisor"}}
			} else {
				c.done <- callResult{data: a.Body}
			}
			continue
		}
		if slices.Contains(overdue, c.requestID) {
			c.done <- callResult{err: ErrFunctionTimeout}
			continue
		}
		if slices.Contains(effected, c.requestID) {
			c.done <- callResult{err: ErrWorkerLost}
			continue
		}
		c.done <- callResult{retry: true}
	}
	d.signal()
}

// dropLost forgets a worker of another node that went silent: its invocations fail with
// ErrWorkerLost. d.mu is held.
func (d *Dispatcher) dropLost(w *workerState) {
	if d.workers[w.id] == w {
		delete(d.workers, w.id)
	}
	for c := range w.calls {
		d.finish(c)
		c.done <- callResult{err: ErrWorkerLost}
	}
	d.signal()
}

func findAnswer(answers []Answer, requestID string) (Answer, bool) {
	for _, a := range answers {
		if a.RequestID == requestID {
			return a, true
		}
	}
	return Answer{}, false
}

// watch gives up on workers silent for LostTimeout, and wakes waiters now and then so that a worker
// becoming unusable or usable again by the clock is noticed.
func (d *Dispatcher) watch() {
	defer d.wg.Done()
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-d.stop:
			d.mu.Lock()
			for _, w := range d.workers {
				d.drop(w, nil, nil, nil)
			}
			d.mu.Unlock()
			return
		case now := <-t.C:
			d.mu.Lock()
			for _, w := range d.workers {
				w.overdue = hasOverdue(w, now)
				switch silent := now.Sub(w.lastSeen); {
				case w.remote && silent > d.cfg.RemoteLostTimeout:
					d.log.Warn("worker of another node silent; giving up on it and failing its invocations", "worker", w.id, "silent", silent.Round(time.Millisecond))
					d.dropLost(w)
				case silent > d.cfg.LostTimeout:
					d.log.Warn("worker silent; giving up on it", "worker", w.id)
					d.drop(w, nil, nil, nil)
				}
			}
			d.signal()
			d.mu.Unlock()
		}
	}
}
