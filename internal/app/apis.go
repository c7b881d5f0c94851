package app

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"gatehouse.dev/gatehouse/gateway"
	"gatehouse.dev/gatehouse/internal/adminapi"
	"gatehouse.dev/gatehouse/internal/apistore"
	"gatehouse.dev/gatehouse/internal/spec"
)

// servedAPIs is what this node's gateway serves of the stack's API definitions: every stored API,
// followed through the store's watch. Who waits for a change to be served waits on it.
type servedAPIs struct {
	mu      sync.Mutex
	records map[string]apistore.Record // by name
	// revision is the bucket revision of the last change applied to the gateway.
	revision uint64
	changed  chan struct{} // closed and replaced on every change applied
}

func newServedAPIs() *servedAPIs {
	return &servedAPIs{records: map[string]apistore.Record{}, changed: make(chan struct{})}
}

// gatewayAPIs returns the gateway's settings for the records, by name. mu is held.
func (s *servedAPIs) gatewayAPIs() []gateway.API {
	names := make([]string, 0, len(s.records))
	for name := range s.records {
		names = append(names, name)
	}
	slices.Sort(names)
	apis := make([]gateway.API, 0, len(names))
	for _, name := range names {
		r := s.records[name]
		apis = append(apis, gateway.FromSpec(r.ID, r.API))
	}
	return apis
}

// wait returns once the gateway serves the API name at revision or later (revision 0: once the
// API is gone), or when ctx ends.
func (s *servedAPIs) wait(ctx context.Context, name string, revision uint64) error {
	for {
		s.mu.Lock()
		done := s.applied(name, revision)
		ch := s.changed
		s.mu.Unlock()
		if done {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("the change is stored but this node's gateway has not applied it yet: %w", ctx.Err())
		}
	}
}

// applied reports whether the gateway serves the API name at revision or later (revision 0: whether
// the API is gone). mu is held.
func (s *servedAPIs) applied(name string, revision uint64) bool {
	r, ok := s.records[name]
	switch {
	case revision == 0:
		return !ok
	case ok:
		return r.Revision >= revision
	default:
		// Gone since: a later change deleted it, which counts as past the revision waited for.
		return s.revision > revision
	}
}

// applyStackAPIs stores the stack file's APIs: an API the file defines is created, or updated when
// the file's definition of it changed since the file last set it; an API the file set before and no
// longer defines is deleted. An API changed through the admin API since the file set it keeps that
// change (drift) until the file's own definition of it changes.
//
// It returns what it did, and the revision each changed API is at (0 for those deleted), to wait for.
func applyStackAPIs(ctx context.Context, store *apistore.Store, stack *spec.Stack, now time.Time) (adminapi.APIChanges, map[string]uint64, error) {
	var rep adminapi.APIChanges
	changed := map[string]uint64{}
	source := filepath.Base(stack.File)
	stored, err := store.List(ctx, nil)
	if err != nil {
		return rep, nil, err
	}
	byName := map[string]apistore.Record{}
	for _, r := range stored {
		byName[r.Name] = r
	}
	names := make([]string, 0, len(stack.APIs))
	for name := range stack.APIs {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		api := stack.APIs[name]
		h := apistore.Hash(api)
		cur, exists := byName[name]
		rec := apistore.Record{Name: name, ManagedBy: apistore.ManagedByStackFile, Source: source, FileHash: h, UpdatedAt: now, API: api}
		switch {
		case !exists:
			rev, err := store.Put(ctx, rec, 0)
			if err != nil {
				return rep, changed, err
			}
			changed[name] = rev
			rep.Created = append(rep.Created, name)
		case cur.FileHash == h && cur.Hash == h:
			rep.Unchanged = append(rep.Unchanged, name)
		case cur.FileHash == h:
			rep.Drift = append(rep.Drift, name)
		default:
			rev, err := store.Put(ctx, rec, cur.Revision)
			if err != nil {
				return rep, changed, err
			}
			changed[name] = rev
			if cur.Hash != cur.FileHash && cur.FileHash != "" {
				rep.Replaced = append(rep.Replaced, name)
			}
			rep.Updated = append(rep.Updated, name)
		}
	}
	for _, r := range stored {
		if _, ok := stack.APIs[r.Name]; ok || r.ManagedBy != apistore.ManagedByStackFile {
			continue
		}
		if err := store.Delete(ctx, r.Name, r.Revision); err != nil && !errors.Is(err, apistore.ErrConflict) {
			return rep, changed, err
		}
		changed[r.Name] = 0
		rep.Deleted = append(rep.Deleted, r.Name)
	}
	return rep, changed, nil
}

// logReport logs what applying the stack file's APIs did.
func (n *Node) logReport(rep adminapi.APIChanges) {
	for _, name := range rep.Drift {
		n.log.Warn("API changed through the admin API since the stack file set it; it keeps that change until the file's definition of it changes",
			"api", name)
	}
	for _, name := range rep.Replaced {
		n.log.Warn("API changed through the admin API replaced by the stack file's changed definition", "api", name)
	}
	if len(rep.Created)+len(rep.Updated)+len(rep.Deleted) > 0 {
		n.log.Info("stack file APIs applied", "created", rep.Created, "updated", rep.Updated, "deleted", rep.Deleted)
	}
}

// publishAPIs opens the stack's API store, stores the stack file's APIs in it, and returns the
// definitions the gateway is to serve: every stored API.
func (n *Node) publishAPIs(ctx context.Context) ([]gateway.API, error) {
	js, err := n.jetStream()
	if err != nil {
		return nil, fmt.Errorf("bus: %w", err)
	}
	if n.apiStore, err = apistore.Open(ctx, js, n.stack.Name); err != nil {
		return nil, err
	}
	// Nodes that start together apply the same stack file at once, while the cluster's streams elect
	// their leaders: a write that lost to another node's, or that timed out, is made again from a
	// fresh read (which finds the other node's identical write unchanged).
	var rep adminapi.APIChanges
	err = retryTransient(ctx, func() (err error) {
		rep, _, err = applyStackAPIs(ctx, n.apiStore, n.stack, time.Now())
		return err
	}, func(err error) bool { return errors.Is(err, apistore.ErrConflict) })
	if err != nil {
		return nil, err
	}
	n.logReport(rep)
	recs, err := n.apiStore.List(ctx, func(err error) { n.log.Error("API definition not readable", "err", err) })
	if err != nil {
		return nil, err
	}
	n.apis.mu.Lock()
	defer n.apis.mu.Unlock()
	for _, r := range recs {
		n.apis.records[r.Name] = r
	}
	return n.apis.gatewayAPIs(), nil
}

// followAPIs applies every change of the stack's API definitions to the gateway (a change through
// the admin API, a reload, another node started with a changed stack file), until ctx is done. A
// change the gateway refuses is logged and leaves the APIs served as they were.
func (n *Node) followAPIs(ctx context.Context) {
	var synced bool
	pending := map[string]*apistore.Record{}
	var last uint64
	apply := func() {
		n.apis.mu.Lock()
		defer n.apis.mu.Unlock()
		next := make(map[string]apistore.Record, len(n.apis.records))
		for name, r := range n.apis.records {
			next[name] = r
		}
		for name, r := range pending {
			if r == nil {
				delete(next, name)
			} else {
				next[name] = *r
			}
		}
		clear(pending)
		prev := n.apis.records
		n.apis.records = next
		if err := n.gw.SetAPIs(n.apis.gatewayAPIs()); err != nil {
			n.apis.records = prev
			n.log.Error("API definitions not applied", "revision", last, "err", err)
			return
		}
		n.apis.revision = last
		close(n.apis.changed)
		n.apis.changed = make(chan struct{})
	}
	err := n.apiStore.Watch(ctx, func(c apistore.Change) {
		last = c.Revision
		if !synced {
			// The current records first: applied together once they are all in.
			pending[c.Name] = c.Record
			return
		}
		pending[c.Name] = c.Record
		apply()
		if c.Record != nil {
			n.log.Info("API definition applied", "api", c.Name, "revision", c.Revision, "managedBy", c.Record.ManagedBy)
		} else {
			n.log.Info("API removed", "api", c.Name, "revision", c.Revision)
		}
	}, func() {
		synced = true
		// Only what changed since publishAPIs listed them: the gateway keeps its state otherwise.
		n.apis.mu.Lock()
		for name, r := range pending {
			if cur, ok := n.apis.records[name]; r != nil && ok && cur.Revision == r.Revision {
				delete(pending, name)
			}
		}
		todo := len(pending) > 0
		n.apis.mu.Unlock()
		if todo {
			apply()
		}
	}, func(err error) { n.log.Error("API definition not readable", "err", err) })
	if err != nil {
		n.log.Error("following API definitions stopped", "err", err)
	}
}

// apiEnv is what API definitions made while the node runs are checked against: the functions in
// the registry now, and the stack's usage plans.
func (n *Node) apiEnv(ctx context.Context) (spec.Env, error) {
	list, err := n.registry.List(ctx)
	if err != nil {
		return spec.Env{}, err
	}
	names := make([]string, 0, len(list))
	for _, f := range list {
		names = append(names, f.Name)
	}
	return spec.FunctionsEnv(names, len(n.stack.UsagePlans) > 0), nil
}
