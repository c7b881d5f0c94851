package scheduler

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"
)

// errQuarantined is why an invocation of a function in quarantine did not run: its one place was
// taken until QueueTimeout.
var errQuarantined = errors.New("the function is in quarantine")

// quarantine keeps the functions that misbehaved lately to a reduced share of the worker: one
// invocation at a time. A function enters it when it overran its timeout Offenses times within
// Window, and leaves it once it has run For without overrunning again.
type quarantine struct {
	offenses int
	window   time.Duration
	hold     time.Duration
	log      *slog.Logger

	mu  sync.Mutex
	fns map[string]*probation
}

// probation is what the quarantine knows of one function.
type probation struct {
	recent []time.Time // overruns within the window
	until  time.Time   // in quarantine until then (zero: not in quarantine)
	// one is the single place a quarantined function's invocations take turns for.
	one chan struct{}
}

func newQuarantine(offenses int, window, hold time.Duration, log *slog.Logger) *quarantine {
	return &quarantine{offenses: offenses, window: window, hold: hold, log: log, fns: map[string]*probation{}}
}

// overran records that an invocation of function overran its timeout, and quarantines the function
// when that makes too many lately (or keeps it there longer when it is already).
func (q *quarantine) overran(function string, now time.Time) {
	q.mu.Lock()
	defer q.mu.Unlock()
	p := q.fns[function]
	if p == nil {
		p = &probation{one: make(chan struct{}, 1)}
		q.fns[function] = p
	}
	keep := p.recent[:0]
	for _, t := range p.recent {
		if now.Sub(t) < q.window {
			keep = append(keep, t)
		}
	}
	p.recent = append(keep, now)
	if len(p.recent) < q.offenses {
		return
	}
	if p.until.IsZero() || !now.Before(p.until) {
		q.log.Warn("function quarantined: it overran its timeout repeatedly; it runs one invocation at a time in this worker",
			"function", function, "overruns", len(p.recent), "window", q.window, "for", q.hold)
	}
	p.until = now.Add(q.hold)
}

// enter waits, when function is in quarantine, for its one place, until ctx ends, and returns what
// gives the place back (a no-op when the function is free). It reports false when ctx ended first.
func (q *quarantine) enter(ctx context.Context, function string, now time.Time) (func(), bool) {
	q.mu.Lock()
	p := q.fns[function]
	if p == nil || p.until.IsZero() {
		q.mu.Unlock()
		return func() {}, true
	}
	if !now.Before(p.until) {
		p.until = time.Time{}
		q.mu.Unlock()
		q.log.Info("function released from quarantine: it ran without overrunning its timeout", "function", function)
		return func() {}, true
	}
	one := p.one
	q.mu.Unlock()
	select {
	case one <- struct{}{}:
		return func() { <-one }, true
	case <-ctx.Done():
		return nil, false
	}
}

// held reports whether function is in quarantine now.
func (q *quarantine) held(function string, now time.Time) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	p := q.fns[function]
	return p != nil && now.Before(p.until)
}
