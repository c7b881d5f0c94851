package app

import (
	"context"
	"math/rand/v2"
	"sync"
	"sync/atomic"

	"gatehouse.dev/gatehouse/functions"
)

// servedView is the registry snapshot this node's gateway routes by: the newest one that every ready
// worker has loaded. A deploy or an alias move therefore takes traffic only once the versions it
// makes live are compiled and warm in every worker, and until then requests keep going to the
// versions they went to before. With no worker ready, it follows the registry.
type servedView struct {
	reg *functions.Registry
	cur atomic.Pointer[functions.Snapshot]

	mu      sync.Mutex
	changed chan struct{} // closed and replaced when cur changes
}

func newServedView(reg *functions.Registry) *servedView {
	v := &servedView{reg: reg, changed: make(chan struct{})}
	v.cur.Store(reg.Snapshot())
	return v
}

// Snapshot returns the snapshot requests are routed by now.
func (v *servedView) Snapshot() *functions.Snapshot { return v.cur.Load() }

// Resolve resolves a route's target on the served snapshot, picking a weighted alias's version at
// random; it implements gateway.Resolver.
func (v *servedView) Resolve(function, qualifier string) (functions.Target, error) {
	return v.cur.Load().Target(function, qualifier, rand.Float64())
}

// WaitFor waits until the served snapshot satisfies done.
func (v *servedView) WaitFor(ctx context.Context, done func(*functions.Snapshot) bool) (*functions.Snapshot, error) {
	for {
		v.mu.Lock()
		s, changed := v.cur.Load(), v.changed
		v.mu.Unlock()
		if done(s) {
			return s, nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

func (v *servedView) set(s *functions.Snapshot) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.cur.Load() == s {
		return
	}
	v.cur.Store(s)
	close(v.changed)
	v.changed = make(chan struct{})
}

// run advances the served snapshot as the registry changes and workers load it, until ctx ends.
// workers reports the lowest revision a ready worker has loaded, how many are ready, and a channel
// closed at their next change.
func (v *servedView) run(ctx context.Context, workers func() (uint64, int, <-chan struct{})) {
	// pending holds the snapshots newer than the served one, oldest first. Snapshots that replace
	// each other before this loop sees them are skipped, which only delays the switch to one that
	// every worker has passed.
	var pending []*functions.Snapshot
	for {
		latest := v.reg.Snapshot()
		if served := v.cur.Load(); latest != served && (len(pending) == 0 || pending[len(pending)-1] != latest) {
			pending = append(pending, latest)
		}
		minLoaded, ready, workersChanged := workers()
		next := -1
		for i, s := range pending {
			if ready == 0 || s.Revision() <= minLoaded {
				next = i
			}
		}
		if next >= 0 {
			v.set(pending[next])
			pending = pending[next+1:]
		}
		select {
		case <-latest.Replaced():
		case <-workersChanged:
		case <-ctx.Done():
			return
		}
	}
}
