package functions

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// The snapshot.

// Snapshot is an immutable view of every function of the registry, with its committed versions and
// its aliases, as of one revision of the Key-Value bucket. Records that are not committed, or that
// belong to a deleted function, are not in it. Its methods are safe for concurrent use and take no
// lock.
type Snapshot struct {
	revision  uint64
	functions map[string]*snapFunction
	replaced  chan struct{}
}

type snapFunction struct {
	fn       FunctionRecord
	versions map[int]VersionRecord
	aliases  map[string]AliasRecord
}

func newSnapshot(rev uint64, fns map[string]*snapFunction) *Snapshot {
	return &Snapshot{revision: rev, functions: fns, replaced: make(chan struct{})}
}

// Revision is the revision of the Key-Value bucket the snapshot reflects (0 before the first load).
func (s *Snapshot) Revision() uint64 { return s.revision }

// Replaced returns a channel that is closed when a newer snapshot replaces this one.
func (s *Snapshot) Replaced() <-chan struct{} { return s.replaced }

// Function returns the function's record.
func (s *Snapshot) Function(name string) (FunctionRecord, bool) {
	f := s.functions[name]
	if f == nil {
		return FunctionRecord{}, false
	}
	return f.fn, true
}

// Functions returns every function's record, sorted by name.
func (s *Snapshot) Functions() []FunctionRecord {
	out := make([]FunctionRecord, 0, len(s.functions))
	for _, f := range s.functions {
		out = append(out, f.fn)
	}
	slices.SortFunc(out, func(a, b FunctionRecord) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// Version returns version n of the function (a copy: changing it does not change the snapshot).
func (s *Snapshot) Version(name string, n int) (VersionRecord, bool) {
	f := s.functions[name]
	if f == nil {
		return VersionRecord{}, false
	}
	v, ok := f.versions[n]
	return v.clone(), ok
}

// Versions returns the function's versions, oldest first.
func (s *Snapshot) Versions(name string) []VersionRecord {
	f := s.functions[name]
	if f == nil {
		return nil
	}
	out := make([]VersionRecord, 0, len(f.versions))
	for _, v := range f.versions {
		out = append(out, v.clone())
	}
	slices.SortFunc(out, func(a, b VersionRecord) int { return a.Version - b.Version })
	return out
}

// Alias returns the function's alias.
func (s *Snapshot) Alias(function, alias string) (AliasRecord, bool) {
	f := s.functions[function]
	if f == nil {
		return AliasRecord{}, false
	}
	a, ok := f.aliases[alias]
	return a, ok
}

// Aliases returns the function's aliases, sorted by name.
func (s *Snapshot) Aliases(function string) []AliasRecord {
	f := s.functions[function]
	if f == nil {
		return nil
	}
	return slices.SortedFunc(maps.Values(f.aliases), func(a, b AliasRecord) int { return strings.Compare(a.Name, b.Name) })
}

// Resolve returns the version a call of function with qualifier runs, as Lambda resolves a qualified
// function name: "" or "$LATEST" is the newest version, a number is that version, and anything else
// names an alias. pick, in [0, 1), chooses between a weighted alias's versions: the additional
// version when pick < AdditionalWeight, else the primary version; a uniformly random pick sends each
// its share. It does not allocate unless it fails.
//
// # Errors
//
// ErrNotFound for an unknown function, version or alias; ErrInvalid for a qualifier that is neither
// (a number with a leading zero, characters an alias cannot have) or a pick outside [0, 1).
func (s *Snapshot) Resolve(function, qualifier string, pick float64) (int, error) {
	if !(pick >= 0 && pick < 1) {
		return 0, fmt.Errorf("functions: resolving %s: pick %v is not in [0, 1): %w", function, pick, ErrInvalid)
	}
	f := s.functions[function]
	if f == nil {
		return 0, fmt.Errorf("functions: resolving function %s: %w", function, ErrNotFound)
	}
	switch {
	case qualifier == "" || qualifier == LatestQualifier:
		return f.fn.LatestVersion, nil
	case strings.Trim(qualifier, "0123456789") == "":
		n, err := strconv.Atoi(qualifier)
		if err != nil || qualifier[0] == '0' {
			return 0, fmt.Errorf("functions: resolving %s:%s: not a version number: %w", function, qualifier, ErrInvalid)
		}
		if _, ok := f.versions[n]; !ok {
			return 0, fmt.Errorf("functions: resolving %s:%s: %w", function, qualifier, ErrNotFound)
		}
		return n, nil
	}
	a, ok := f.aliases[qualifier]
	if !ok {
		if !ValidAliasName(qualifier) {
			return 0, fmt.Errorf("functions: resolving %s:%s: %w", function, qualifier, badAliasName(qualifier))
		}
		return 0, fmt.Errorf("functions: resolving %s:%s: alias %w", function, qualifier, ErrNotFound)
	}
	if a.AdditionalVersion != 0 && pick < a.AdditionalWeight {
		return a.AdditionalVersion, nil
	}
	if a.Version == 0 {
		return f.fn.LatestVersion, nil
	}
	return a.Version, nil
}

// Target is what a call of a qualified function name runs: one version, and the settings of that
// version a caller needs before it reaches a worker.
type Target struct {
	Function   string
	FunctionID string
	Version    int
	// Timeout is the version's time limit.
	Timeout time.Duration
	// MaxConcurrency bounds the function's invocations running at once; 0 means no bound.
	MaxConcurrency int
}

// Target resolves function and qualifier as [Snapshot.Resolve] does and returns the version with its
// settings. It does not allocate unless it fails.
func (s *Snapshot) Target(function, qualifier string, pick float64) (Target, error) {
	n, err := s.Resolve(function, qualifier, pick)
	if err != nil {
		return Target{}, err
	}
	f := s.functions[function]
	v, ok := f.versions[n]
	if !ok {
		// A $LATEST alias or the function's latest version whose record is missing.
		return Target{}, fmt.Errorf("functions: resolving %s: version %d: %w", function, n, ErrNotFound)
	}
	timeout, err := time.ParseDuration(v.Manifest.Timeout)
	if err != nil {
		return Target{}, fmt.Errorf("functions: %s version %d: timeout %q: %w", function, n, v.Manifest.Timeout, ErrCorrupt)
	}
	return Target{Function: function, FunctionID: f.fn.ID, Version: n, Timeout: timeout, MaxConcurrency: v.Manifest.MaxConcurrency}, nil
}

// Live returns the versions that can take traffic without naming their number: each function's
// newest version and the versions its aliases point at. They are sorted by function name, then
// version. Workers load these ahead of any call; a version named by number is loaded when called.
func (s *Snapshot) Live() []VersionRecord {
	var out []VersionRecord
	for _, fr := range s.Functions() {
		f := s.functions[fr.Name]
		nums := map[int]bool{f.fn.LatestVersion: true}
		for _, a := range f.aliases {
			if a.Version != 0 {
				nums[a.Version] = true
			}
			if a.AdditionalVersion != 0 {
				nums[a.AdditionalVersion] = true
			}
		}
		for _, n := range slices.Sorted(maps.Keys(nums)) {
			if v, ok := f.versions[n]; ok {
				out = append(out, v.clone())
			}
		}
	}
	return out
}

// Snapshot returns the current snapshot. Before [Registry.Run] has loaded the registry, it is empty;
// [Registry.Synced] says when it has.
func (r *Registry) Snapshot() *Snapshot { return r.snap.Load() }

// Resolve resolves a qualified function name on the current snapshot: see [Snapshot.Resolve].
func (r *Registry) Resolve(function, qualifier string, pick float64) (int, error) {
	return r.snap.Load().Resolve(function, qualifier, pick)
}

// Synced returns a channel that is closed once Run has loaded the whole registry into the snapshot.
func (r *Registry) Synced() <-chan struct{} { return r.synced }

// WaitFor waits until the current snapshot satisfies cond, and returns it; it needs Run to be
// running. Use it to read a change of one's own back from the snapshot.
func (r *Registry) WaitFor(ctx context.Context, cond func(*Snapshot) bool) (*Snapshot, error) {
	for {
		s := r.snap.Load()
		if cond(s) {
			return s, nil
		}
		select {
		case <-s.replaced:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// Run keeps the snapshot up to date until ctx is done, watching every record of the bucket. It loads
// the whole registry first (then Synced is closed), then applies changes as they arrive, replacing
// the snapshot after each batch. A record that cannot be read is logged and skipped. Run returns nil
// when ctx is done, or an error if the watch cannot start or stops (the connection closed). It may be
// called once.
func (r *Registry) Run(ctx context.Context) error {
	if !r.running.CompareAndSwap(false, true) {
		return errors.New("functions: Registry.Run called twice")
	}
	w, err := r.kv.WatchAll(ctx)
	if err != nil {
		return fmt.Errorf("functions: watching the registry: %w", err)
	}
	defer stopWatcher(w)
	st := &watchState{
		fns:      map[string]FunctionRecord{},
		versions: map[string]map[int]VersionRecord{},
		aliases:  map[string]map[string]AliasRecord{},
		touched:  map[string]bool{},
		log:      r.log,
	}
	synced := false
	var rev uint64
	for {
		var e jetstream.KeyValueEntry
		var ok bool
		select {
		case <-ctx.Done():
			return nil
		case e, ok = <-w.Updates():
		}
		// Apply this entry and whatever else has arrived (up to a bound), then publish once.
		for batch := 1; ; batch++ {
			if !ok {
				if ctx.Err() != nil {
					return nil
				}
				return errors.New("functions: the registry watch stopped")
			}
			if e == nil {
				if !synced {
					synced = true
					r.publish(st, rev, true)
					close(r.synced)
				}
			} else {
				st.apply(e)
				rev = e.Revision()
			}
			if batch < maxBatch {
				select {
				case e, ok = <-w.Updates():
					continue
				default:
				}
			}
			break
		}
		if synced && len(st.touched) > 0 {
			r.publish(st, rev, false)
		}
	}
}

// publish replaces the snapshot with one that has the functions st touched rebuilt.
func (r *Registry) publish(st *watchState, rev uint64, all bool) {
	old := r.snap.Load()
	fns := make(map[string]*snapFunction, len(old.functions)+len(st.touched))
	if !all {
		maps.Copy(fns, old.functions)
	}
	names := st.touched
	if all {
		names = map[string]bool{}
		for _, m := range []map[string]bool{st.touched, keysOf(st.fns), keysOf(st.versions), keysOf(st.aliases)} {
			maps.Copy(names, m)
		}
	}
	for name := range names {
		if sf := st.view(name); sf != nil {
			fns[name] = sf
		} else {
			delete(fns, name)
		}
	}
	clear(st.touched)
	r.snap.Store(newSnapshot(rev, fns))
	close(old.replaced)
}

func keysOf[V any](m map[string]V) map[string]bool {
	out := make(map[string]bool, len(m))
	for k := range m {
		out[k] = true
	}
	return out
}

// watchState is every record Run has seen, committed or not, by function name. Only Run uses it.
type watchState struct {
	fns      map[string]FunctionRecord
	versions map[string]map[int]VersionRecord
	aliases  map[string]map[string]AliasRecord
	touched  map[string]bool
	log      *slog.Logger
}

func (st *watchState) apply(e jetstream.KeyValueEntry) {
	key := e.Key()
	deleted := e.Operation() != jetstream.KeyValuePut
	kind, rest, _ := strings.Cut(key, ".")
	switch kind {
	case "fn":
		name := rest
		st.touched[name] = true
		if deleted {
			delete(st.fns, name)
			return
		}
		f, err := decodeFunction(key, e.Value(), e.Revision())
		if err != nil {
			st.log.Warn("skipping a registry record", "key", key, "err", err)
			delete(st.fns, name)
			return
		}
		st.fns[name] = f
	case "ver":
		name, num, _ := strings.Cut(rest, ".")
		n, err := strconv.Atoi(num)
		if err != nil {
			st.log.Warn("skipping a registry record", "key", key, "err", "not a version number")
			return
		}
		st.touched[name] = true
		if deleted {
			delete(st.versions[name], n)
			return
		}
		v, err := decodeVersion(key, e.Value(), e.Revision())
		if err != nil {
			st.log.Warn("skipping a registry record", "key", key, "err", err)
			delete(st.versions[name], n)
			return
		}
		if st.versions[name] == nil {
			st.versions[name] = map[int]VersionRecord{}
		}
		st.versions[name][n] = v
	case "alias":
		name, alias, _ := strings.Cut(rest, ".")
		st.touched[name] = true
		if deleted {
			delete(st.aliases[name], alias)
			return
		}
		a, err := decodeAlias(key, e.Value(), e.Revision())
		if err != nil {
			st.log.Warn("skipping a registry record", "key", key, "err", err)
			delete(st.aliases[name], alias)
			return
		}
		if st.aliases[name] == nil {
			st.aliases[name] = map[string]AliasRecord{}
		}
		st.aliases[name][alias] = a
	default:
		// Not a registry record (a later release may add kinds): ignore it.
	}
}

// view builds the immutable view of the function name: its committed versions and its aliases; nil
// when the function does not exist for readers.
func (st *watchState) view(name string) *snapFunction {
	if len(st.versions[name]) == 0 {
		delete(st.versions, name)
	}
	if len(st.aliases[name]) == 0 {
		delete(st.aliases, name)
	}
	f, ok := st.fns[name]
	if !ok || f.LatestVersion == 0 {
		return nil
	}
	sf := &snapFunction{fn: f, versions: map[int]VersionRecord{}, aliases: map[string]AliasRecord{}}
	for n, v := range st.versions[name] {
		if v.FunctionID == f.ID && n <= f.LatestVersion {
			sf.versions[n] = v.clone()
		}
	}
	for alias, a := range st.aliases[name] {
		if a.FunctionID == f.ID {
			sf.aliases[alias] = a
		}
	}
	return sf
}

// AliasApplied is the check that a snapshot shows alias a as set (or a later change to it): for
// waiting until a node serves an alias just set.
func AliasApplied(a AliasRecord) func(*Snapshot) bool {
	return func(snap *Snapshot) bool {
		got, ok := snap.Alias(a.Function, a.Name)
		return ok && got.Revision >= a.Revision || !ok && snap.Revision() > a.Revision
	}
}
