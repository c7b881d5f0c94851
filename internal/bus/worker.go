package bus

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
)

// HeartbeatInterval is how often a worker tells the gateways it is alive and how much it can take.
const HeartbeatInterval = 100 * time.Millisecond

// Heartbeat is what a worker publishes every HeartbeatInterval.
type Heartbeat struct {
	// Worker is the worker's id, stable across restarts and unique in the cluster.
	Worker string `json:"worker"`
	// Node is the node whose supervisor runs the worker.
	Node string `json:"node,omitempty"`
	// Instance changes every time the worker process starts.
	Instance string `json:"instance"`
	// Capacity is how many invocations the worker runs at once.
	Capacity int `json:"capacity"`
	// Leaving is set when the worker stops taking invocations.
	Leaving bool `json:"leaving,omitempty"`
	// Loaded is the revision of the function registry whose live versions the worker has loaded
	// (compiled, with their minimum warm instances started); 0 before the first.
	Loaded uint64 `json:"loaded,omitempty"`
	// Functions holds the worker's counters by function, on every fifth heartbeat.
	Functions map[string]FunctionStats `json:"functions,omitempty"`
}

// FunctionStats are a worker's counters for one function since the worker started.
type FunctionStats struct {
	// Runtime is the function's runtime ("wasm", "python3.12", …); "" from a worker that did not say.
	Runtime     string `json:"runtime,omitempty"`
	Invocations uint64 `json:"invocations"`
	ColdStarts  uint64 `json:"coldStarts"`
	Errors      uint64 `json:"errors"`
	Idle        int    `json:"idle"`
	Busy        int    `json:"busy"`
	// Shed counts invocations answered without running because the worker had no turn for them.
	Shed uint64 `json:"shed,omitempty"`
	// Quarantined is set while the function runs one invocation at a time in the worker, for
	// overrunning its timeout repeatedly.
	Quarantined bool `json:"quarantined,omitempty"`
	// Outbound counts the function's outbound HTTP requests by destination: the allowedOutboundHosts
	// entry they matched, or "refused" for those no entry allowed.
	Outbound map[string]OutboundStats `json:"outbound,omitempty"`
}

// OutboundStats are a function's outbound requests to one destination, by outcome, and the time
// they took.
type OutboundStats struct {
	OK       uint64  `json:"ok,omitempty"`
	Errors   uint64  `json:"errors,omitempty"`
	Refused  uint64  `json:"refused,omitempty"`
	TooLarge uint64  `json:"tooLarge,omitempty"`
	Timeouts uint64  `json:"timeouts,omitempty"`
	Seconds  float64 `json:"seconds,omitempty"`
}

// Worker is the worker side of the bus: a subscription to the invocations addressed to one worker, and
// its heartbeat.
type Worker struct {
	c       *Client
	sub     *nats.Subscription
	hb      Heartbeat
	stats   func() map[string]FunctionStats
	loaded  atomic.Uint64
	leaving atomic.Bool
	stop    chan struct{}
	wg      sync.WaitGroup
	closed  sync.Once
	// local is what the worker offers a dispatcher in its own process (ClientConfig.Local).
	local localWorker
}

// ServeWorker subscribes to invocations addressed to worker id and starts its heartbeat. Each
// invocation is handed to handle on a goroutine through start, which may block for back-pressure and
// through which the caller owns and waits for those goroutines. capacity is announced to gateways,
// which send no more than that many invocations at once. stats, when set, supplies the counters sent
// with the heartbeat.
func (c *Client) ServeWorker(id string, capacity int, start func(func()), handle Handler, stats func() map[string]FunctionStats, log *slog.Logger) (*Worker, error) {
	if err := ValidToken(id); err != nil {
		return nil, fmt.Errorf("bus: worker id: %w", err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	inst := make([]byte, 8)
	rand.Read(inst)
	w := &Worker{c: c, hb: Heartbeat{Worker: id, Node: c.node, Instance: hex.EncodeToString(inst), Capacity: capacity}, stats: stats, stop: make(chan struct{})}
	sub, err := c.nc.Subscribe(c.subj.WorkerInvokeAll(id), func(m *nats.Msg) {
		start(func() { c.serve(m, handle, log) })
	})
	if err != nil {
		return nil, fmt.Errorf("bus: subscribing to invocations: %w", err)
	}
	// Invocations may be large; let a worker hold many pending without being a slow consumer.
	if err := sub.SetPendingLimits(-1, 512<<20); err != nil {
		return nil, fmt.Errorf("bus: setting pending limits: %w", err)
	}
	w.sub = sub
	w.local = localWorker{start: start, handle: handle}
	if c.local != nil {
		c.local.add(id, w.local)
	}
	if err := w.beat(); err != nil {
		w.unlocal()
		sub.Unsubscribe()
		return nil, err
	}
	w.wg.Add(1)
	go w.heartbeat()
	return w, nil
}

// RunOnCaller lets a dispatcher in the worker's own process (ClientConfig.Local) run an invocation on
// its caller's goroutine, through run (which runs a function there, counted with those start was
// given), when the caller's context leaves room for everything the worker may take: allowance (waits
// to be admitted and for an instance) plus the function's timeout. Call it once, right after
// ServeWorker; it does nothing for a worker that has no such dispatcher.
func (w *Worker) RunOnCaller(run func(func()), allowance time.Duration) {
	if w.c.local == nil {
		return
	}
	w.local.run, w.local.allowance = run, allowance
	w.c.local.replace(w.hb.Worker, w.local)
}

// SetLoaded announces that the worker has loaded the live versions of registry revision rev, at once
// and with every heartbeat after.
func (w *Worker) SetLoaded(rev uint64) {
	w.loaded.Store(rev)
	w.c.nc.Publish(w.c.subj.WorkerHeartbeat(), w.message(false))
}

// message encodes a heartbeat, with the function counters when stats is set.
func (w *Worker) message(stats bool) []byte {
	hb := w.hb
	hb.Loaded = w.loaded.Load()
	hb.Leaving = w.leaving.Load()
	if stats && w.stats != nil {
		hb.Functions = w.stats()
	}
	b, _ := json.Marshal(hb)
	return b
}

func (w *Worker) beat() error {
	b := w.message(false)
	if err := w.c.nc.Publish(w.c.subj.WorkerHeartbeat(), b); err != nil {
		return fmt.Errorf("bus: heartbeat: %w", err)
	}
	return w.c.nc.Flush()
}

func (w *Worker) heartbeat() {
	defer w.wg.Done()
	t := time.NewTicker(HeartbeatInterval)
	defer t.Stop()
	for n := 1; ; n++ {
		select {
		case <-w.stop:
			return
		case <-t.C:
			w.c.nc.Publish(w.c.subj.WorkerHeartbeat(), w.message(n%5 == 0))
		}
	}
}

// Drain tells gateways the worker is leaving, stops taking invocations, and waits, until ctx ends, for
// every invocation already received to be handed to its handler. Handlers may still be running.
func (w *Worker) Drain(ctx context.Context) error {
	var err error
	w.closed.Do(func() {
		w.unlocal()
		close(w.stop)
		w.wg.Wait()
		w.leaving.Store(true)
		w.beat()
		closed := w.sub.StatusChanged(nats.SubscriptionClosed)
		if err = w.sub.Drain(); err != nil {
			return
		}
		select {
		case <-closed:
		case <-ctx.Done():
			err = ctx.Err()
		}
	})
	return err
}

// unlocal takes the worker off its client's Local: invocations for it go over the bus again (and
// find no responder once its subscription is gone, as for any worker that left).
func (w *Worker) unlocal() {
	if w.c.local != nil {
		w.c.local.remove(w.hb.Worker)
	}
}
