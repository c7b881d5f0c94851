package functions

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"gatehouse.dev/gatehouse/internal/testfix/jstest"
)

// ---------------------------------------------------------------------------------------------
// Helpers: an embedded JetStream server per test, bundles made in memory.

// startJetStream starts a NATS server with JetStream storing in dir: see jstest.Start.
func startJetStream(t *testing.T, dir string) *server.Server { return jstest.Start(t, dir) }

// connectJetStream connects a client (one "node") to ns.
func connectJetStream(t *testing.T, ns *server.Server) (*nats.Conn, jetstream.JetStream) {
	return jstest.Connect(t, ns)
}

func openTestRegistry(t *testing.T, js jetstream.JetStream, cfg RegistryConfig) *Registry {
	t.Helper()
	if cfg.Stack == "" {
		cfg.Stack = "test"
	}
	r, err := OpenRegistry(t.Context(), js, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// newTestRegistry starts a server and opens a registry on it.
func newTestRegistry(t *testing.T, cfg RegistryConfig) (*Registry, *server.Server) {
	t.Helper()
	ns := startJetStream(t, t.TempDir())
	_, js := connectJetStream(t, ns)
	return openTestRegistry(t, js, cfg), ns
}

// runRegistry runs r until the test ends and waits until its snapshot is loaded.
func runRegistry(t *testing.T, r *Registry) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	select {
	case <-r.Synced():
	case err := <-done:
		t.Fatalf("Run returned before it synced: %v", err)
	case <-time.After(5 * time.Second):
		t.Fatal("the registry did not sync")
	}
}

// waitSnapshot waits until r's snapshot satisfies cond.
func waitSnapshot(t *testing.T, r *Registry, what string, cond func(*Snapshot) bool) *Snapshot {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	s, err := r.WaitFor(ctx, cond)
	if err != nil {
		t.Fatalf("waiting for the snapshot to show %s: %v", what, err)
	}
	return s
}

// testBundle returns a bundle of function name whose module is a wasm header followed by body.
func testBundle(name, body string, edit ...func(*Manifest)) *Bundle {
	m := NewManifest(name)
	for _, e := range edit {
		e(&m)
	}
	module := append(slices.Clone(wasmHeader), body...)
	sum := sha256.Sum256(module)
	return &Bundle{Manifest: m, Module: module, SHA256: hex.EncodeToString(sum[:])}
}

func withSecret(name, value string) func(*Manifest) {
	return func(m *Manifest) {
		m.Environment[name] = value
		m.Secrets = append(m.Secrets, name)
	}
}

func publish(t *testing.T, r *Registry, b *Bundle) (VersionRecord, bool) {
	t.Helper()
	v, created, err := r.Publish(t.Context(), b, PublishOptions{})
	if err != nil {
		t.Fatalf("publishing %s: %v", b.Manifest.Name, err)
	}
	return v, created
}

func wantErr(t *testing.T, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("got error %v, want one wrapping %v", err, want)
	}
}

func versionNumbers(vs []VersionRecord) []int {
	var out []int
	for _, v := range vs {
		out = append(out, v.Version)
	}
	return out
}

func testKey() []byte { return bytes.Repeat([]byte{7}, SecretKeySize) }

// ---------------------------------------------------------------------------------------------
// Publishing and reading.

func TestRegistryPublishVersions(t *testing.T) {
	r, _ := newTestRegistry(t, RegistryConfig{})
	ctx := t.Context()
	a, b := testBundle("hello", "a"), testBundle("hello", "b")

	v1, created := publish(t, r, a)
	if !created || v1.Version != 1 || v1.ModuleSHA256 != a.SHA256 || v1.ModuleSize != int64(len(a.Module)) || v1.Function != "hello" {
		t.Fatalf("first publish: %+v created=%v", v1, created)
	}
	v2, created := publish(t, r, b)
	if !created || v2.Version != 2 || v2.ModuleSHA256 != b.SHA256 {
		t.Fatalf("second publish: %+v created=%v", v2, created)
	}

	// Same bytes, same version: the description is not part of a version's identity.
	again, created, err := r.Publish(ctx, b, PublishOptions{Description: "again"})
	if err != nil || created || again.Version != 2 || again.Description != "" {
		t.Fatalf("republishing the newest bundle: %+v created=%v err=%v", again, created, err)
	}
	// Only the newest version counts: the first bundle again is a new version, and so is the same
	// module with another manifest.
	if v3, created := publish(t, r, a); !created || v3.Version != 3 {
		t.Fatalf("republishing an older bundle: %+v created=%v", v3, created)
	}
	bigger := testBundle("hello", "a", func(m *Manifest) { m.MemoryMB = 256 })
	v4, created := publish(t, r, bigger)
	if !created || v4.Version != 4 || v4.ModuleSHA256 != a.SHA256 || v4.ManifestSHA256 == v1.ManifestSHA256 || v4.Manifest.MemoryMB != 256 {
		t.Fatalf("publishing a new manifest: %+v created=%v", v4, created)
	}

	f, err := r.Get(ctx, "hello")
	if err != nil || f.LatestVersion != 4 || f.Name != "hello" || f.ID == "" || f.SchemaVersion != 1 {
		t.Fatalf("Get: %+v %v", f, err)
	}
	vs, err := r.Versions(ctx, "hello")
	if err != nil || !reflect.DeepEqual(versionNumbers(vs), []int{1, 2, 3, 4}) {
		t.Fatalf("Versions: %v %v", versionNumbers(vs), err)
	}
	got, err := r.Version(ctx, "hello", 2)
	if err != nil || got.ModuleSHA256 != b.SHA256 || got.Manifest.Timeout != "3s" || got.Manifest.IdleTimeout != "5m" || got.CreatedAt.IsZero() {
		t.Fatalf("Version 2: %+v %v", got, err)
	}
	m, err := got.Manifest.Manifest(nil)
	if err != nil || !reflect.DeepEqual(*m, b.Manifest) {
		t.Fatalf("the stored manifest reads back as %+v (%v), want %+v", m, err, b.Manifest)
	}
	for _, b := range []*Bundle{a, b} {
		mod, err := r.Module(ctx, b.SHA256)
		if err != nil || !bytes.Equal(mod, b.Module) {
			t.Fatalf("Module %s: %q %v", b.SHA256, mod, err)
		}
	}

	// Content-addressed: another function with the same module stores nothing new.
	publish(t, r, testBundle("other", "a"))
	objects, err := r.obs.List(ctx)
	if err != nil || len(objects) != 2 {
		t.Fatalf("the object store holds %d modules (%v), want 2", len(objects), err)
	}
	list, err := r.List(ctx)
	if err != nil || len(list) != 2 || list[0].Name != "hello" || list[1].Name != "other" {
		t.Fatalf("List: %+v %v", list, err)
	}

	_, err = r.Get(ctx, "nope")
	wantErr(t, err, ErrNotFound)
	_, err = r.Version(ctx, "hello", 5)
	wantErr(t, err, ErrNotFound)
	_, err = r.Version(ctx, "hello", 0)
	wantErr(t, err, ErrNotFound)
	_, err = r.Get(ctx, "bad.name")
	wantErr(t, err, ErrInvalid)
	_, err = r.Module(ctx, strings.Repeat("0", 64))
	wantErr(t, err, ErrNotFound)
	_, err = r.Module(ctx, "not-a-sha")
	wantErr(t, err, ErrInvalid)
}

func TestRegistryPublishRefusesBadInput(t *testing.T) {
	r, _ := newTestRegistry(t, RegistryConfig{})
	lying := testBundle("hello", "a")
	lying.SHA256 = strings.Repeat("0", 64)
	notWasm := testBundle("hello", "a")
	notWasm.Module = []byte("(module)")
	sum := sha256.Sum256(notWasm.Module)
	notWasm.SHA256 = hex.EncodeToString(sum[:])
	for _, tc := range []struct {
		name string
		b    *Bundle
		opts PublishOptions
	}{
		{"nil bundle", nil, PublishOptions{}},
		{"module hash is not the bundle's", lying, PublishOptions{}},
		{"not wasm", notWasm, PublishOptions{}},
		{"invalid manifest", testBundle("hello", "a", func(m *Manifest) { m.MemoryMB = 1 }), PublishOptions{}},
		{"secrets without a key", testBundle("hello", "a", withSecret("PASSWORD", "x")), PublishOptions{}},
		{"description too long", testBundle("hello", "a"), PublishOptions{Description: strings.Repeat("d", MaxDescriptionLength+1)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := r.Publish(t.Context(), tc.b, tc.opts)
			wantErr(t, err, ErrInvalid)
		})
	}
	// Nothing was stored.
	if _, err := r.obs.List(t.Context()); !errors.Is(err, jetstream.ErrNoObjectsFound) {
		t.Fatalf("a refused publish stored a module: %v", err)
	}
	if entries, err := r.scan(t.Context(), ">"); err != nil || len(entries) != 0 {
		t.Fatalf("a refused publish stored %d records (%v)", len(entries), err)
	}
}

func TestOpenRegistry(t *testing.T) {
	ns := startJetStream(t, t.TempDir())
	_, js := connectJetStream(t, ns)
	r := openTestRegistry(t, js, RegistryConfig{})
	publish(t, r, testBundle("hello", "a"))
	// Opening again binds to the same buckets.
	r2 := openTestRegistry(t, js, RegistryConfig{})
	if f, err := r2.Get(t.Context(), "hello"); err != nil || f.LatestVersion != 1 {
		t.Fatalf("a second open: %+v %v", f, err)
	}
	// Another stack has its own buckets.
	r3 := openTestRegistry(t, js, RegistryConfig{Stack: "other"})
	_, err := r3.Get(t.Context(), "hello")
	wantErr(t, err, ErrNotFound)
	st, err := r.kv.Status(t.Context())
	if err != nil || st.Bucket() != "gh_test_functions" || st.History() != RegistryHistory {
		t.Fatalf("bucket %v: %v", st, err)
	}

	for _, cfg := range []RegistryConfig{{Stack: "a.b"}, {Stack: "a b"}, {Replicas: 6}, {Replicas: -1}, {SecretKey: make([]byte, 16)}} {
		if _, err := OpenRegistry(t.Context(), js, cfg); !errors.Is(err, ErrInvalid) {
			t.Errorf("OpenRegistry(%+v): %v, want ErrInvalid", cfg, err)
		}
	}
}

// Concurrent publishes from two nodes get consecutive versions, without gaps or duplicates.
func TestRegistryConcurrentPublish(t *testing.T) {
	ns := startJetStream(t, t.TempDir())
	var nodes []*Registry
	for range 2 {
		_, js := connectJetStream(t, ns)
		nodes = append(nodes, openTestRegistry(t, js, RegistryConfig{}))
	}
	ctx := t.Context()

	t.Run("different modules", func(t *testing.T) {
		const n = 8
		results := make([]VersionRecord, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				var created bool
				results[i], created, errs[i] = nodes[i%2].Publish(ctx, testBundle("busy", fmt.Sprint("module ", i)), PublishOptions{})
				if errs[i] == nil && !created {
					errs[i] = errors.New("not created")
				}
			})
		}
		wg.Wait()
		seen := map[int]string{}
		for i := range n {
			if errs[i] != nil {
				t.Fatalf("publish %d: %v", i, errs[i])
			}
			if prev, dup := seen[results[i].Version]; dup {
				t.Fatalf("version %d given twice (%s, %s)", results[i].Version, prev, results[i].ModuleSHA256)
			}
			seen[results[i].Version] = results[i].ModuleSHA256
		}
		vs, err := nodes[0].Versions(ctx, "busy")
		if err != nil || !reflect.DeepEqual(versionNumbers(vs), []int{1, 2, 3, 4, 5, 6, 7, 8}) {
			t.Fatalf("versions %v (%v), want 1 to 8", versionNumbers(vs), err)
		}
		for _, v := range vs {
			if seen[v.Version] != v.ModuleSHA256 {
				t.Errorf("version %d has module %s, but its publish was told %s", v.Version, v.ModuleSHA256, seen[v.Version])
			}
		}
	})

	t.Run("same module", func(t *testing.T) {
		const n = 6
		b := testBundle("same", "one module")
		results := make([]VersionRecord, n)
		created := make([]bool, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() { results[i], created[i], errs[i] = nodes[i%2].Publish(ctx, b, PublishOptions{}) })
		}
		wg.Wait()
		creations := 0
		for i := range n {
			if errs[i] != nil || results[i].Version != 1 {
				t.Fatalf("publish %d: version %d, %v; want 1", i, results[i].Version, errs[i])
			}
			if created[i] {
				creations++
			}
		}
		if creations != 1 {
			t.Fatalf("%d publishes say they created the version, want 1", creations)
		}
	})
}

// Races staged between a publish's version record and its commit.
func TestRegistryPublishRaces(t *testing.T) {
	ns := startJetStream(t, t.TempDir())
	_, js1 := connectJetStream(t, ns)
	_, js2 := connectJetStream(t, ns)
	slow := openTestRegistry(t, js1, RegistryConfig{})
	other := openTestRegistry(t, js2, RegistryConfig{})
	ctx := t.Context()

	t.Run("another publish commits it first", func(t *testing.T) {
		var otherV VersionRecord
		slow.beforeCommit = func(VersionRecord) {
			slow.beforeCommit = nil
			// The other node finds slow's version written but not committed: it commits it for
			// slow, then publishes its own as the next.
			otherV, _ = publish(t, other, testBundle("race", "other"))
		}
		v, created := publish(t, slow, testBundle("race", "slow"))
		if !created || v.Version != 1 || otherV.Version != 2 {
			t.Fatalf("slow got %d (created %v), other got %d; want 1 and 2", v.Version, created, otherV.Version)
		}
		vs, _ := other.Versions(ctx, "race")
		if !reflect.DeepEqual(versionNumbers(vs), []int{1, 2}) {
			t.Fatalf("versions %v", versionNumbers(vs))
		}
	})

	t.Run("the function is deleted", func(t *testing.T) {
		publish(t, other, testBundle("doomed", "1"))
		slow.beforeCommit = func(VersionRecord) {
			slow.beforeCommit = nil
			if err := other.Delete(ctx, "doomed"); err != nil {
				t.Error(err)
			}
		}
		// Slow's version 2 now belongs to no function: the publish starts the new function at 1.
		b := testBundle("doomed", "2")
		v, created := publish(t, slow, b)
		if !created || v.Version != 1 || v.ModuleSHA256 != b.SHA256 {
			t.Fatalf("publishing across a delete: %+v created=%v", v, created)
		}
		vs, _ := other.Versions(ctx, "doomed")
		if !reflect.DeepEqual(versionNumbers(vs), []int{1}) {
			t.Fatalf("versions %v", versionNumbers(vs))
		}
		// Delete removed slow's version 2 with the others (had it not, the next publish would).
		if v, created := publish(t, other, testBundle("doomed", "3")); !created || v.Version != 2 {
			t.Fatalf("the next publish: %+v created=%v", v, created)
		}
		vs, _ = other.Versions(ctx, "doomed")
		if len(vs) != 2 || vs[1].ModuleSHA256 != testBundle("doomed", "3").SHA256 {
			t.Fatalf("versions %v", versionNumbers(vs))
		}
	})
}

// ---------------------------------------------------------------------------------------------
// Aliases and resolving.

func TestRegistryAliases(t *testing.T) {
	r, _ := newTestRegistry(t, RegistryConfig{})
	runRegistry(t, r)
	ctx := t.Context()
	for _, body := range []string{"1", "2", "3"} {
		publish(t, r, testBundle("fn", body))
	}

	prod, err := r.SetAlias(ctx, AliasRecord{Function: "fn", Name: "prod", Version: 1, Description: "the live one"})
	if err != nil || prod.Revision == 0 || prod.FunctionID == "" || prod.SchemaVersion != 1 {
		t.Fatalf("SetAlias: %+v %v", prod, err)
	}
	waitSnapshot(t, r, "prod", func(s *Snapshot) bool { _, ok := s.Alias("fn", "prod"); return ok })
	if v, err := r.Resolve("fn", "prod", 0.5); err != nil || v != 1 {
		t.Fatalf("Resolve prod: %d %v", v, err)
	}

	// A canary: a quarter of the traffic to version 3.
	canary, err := r.SetAlias(ctx, AliasRecord{Function: "fn", Name: "prod", Version: 2, AdditionalVersion: 3, AdditionalWeight: 0.25, Revision: prod.Revision})
	if err != nil {
		t.Fatal(err)
	}
	// Moving it again from the old revision is a conflict.
	_, err = r.SetAlias(ctx, AliasRecord{Function: "fn", Name: "prod", Version: 1, Revision: prod.Revision})
	wantErr(t, err, ErrConflict)

	latest, err := r.SetAlias(ctx, AliasRecord{Function: "fn", Name: "edge"})
	if err != nil || latest.Version != 0 {
		t.Fatalf("an alias of $LATEST: %+v %v", latest, err)
	}
	s := waitSnapshot(t, r, "the canary", func(s *Snapshot) bool {
		a, _ := s.Alias("fn", "prod")
		_, ok := s.Alias("fn", "edge")
		return a.Revision == canary.Revision && ok
	})
	counts := map[int]int{}
	for i := range 4000 {
		v, err := s.Resolve("fn", "prod", float64(i)/4000)
		if err != nil {
			t.Fatal(err)
		}
		counts[v]++
	}
	if !reflect.DeepEqual(counts, map[int]int{2: 3000, 3: 1000}) {
		t.Fatalf("a 0.25 canary over 4000 evenly spaced picks: %v", counts)
	}
	if v, _ := s.Resolve("fn", "edge", 0); v != 3 {
		t.Fatalf("edge resolves to %d, want $LATEST (3)", v)
	}
	got, err := r.Aliases(ctx, "fn")
	if err != nil || len(got) != 2 || got[0].Name != "edge" || got[1].Name != "prod" || got[1].AdditionalWeight != 0.25 {
		t.Fatalf("Aliases: %+v %v", got, err)
	}
	if a, err := r.Alias(ctx, "fn", "prod"); err != nil || a.Version != 2 || a.AdditionalVersion != 3 {
		t.Fatalf("Alias: %+v %v", a, err)
	}

	for _, tc := range []struct {
		name string
		a    AliasRecord
		want error
	}{
		{"empty name", AliasRecord{Function: "fn", Name: "", Version: 1}, ErrInvalid},
		{"all digits", AliasRecord{Function: "fn", Name: "123", Version: 1}, ErrInvalid},
		{"dot", AliasRecord{Function: "fn", Name: "a.b", Version: 1}, ErrInvalid},
		{"space", AliasRecord{Function: "fn", Name: "a b", Version: 1}, ErrInvalid},
		{"$LATEST", AliasRecord{Function: "fn", Name: "$LATEST", Version: 1}, ErrInvalid},
		{"too long", AliasRecord{Function: "fn", Name: strings.Repeat("a", MaxAliasNameLength+1), Version: 1}, ErrInvalid},
		{"version that does not exist", AliasRecord{Function: "fn", Name: "x", Version: 4}, ErrInvalid},
		{"negative version", AliasRecord{Function: "fn", Name: "x", Version: -1}, ErrInvalid},
		{"additional version that does not exist", AliasRecord{Function: "fn", Name: "x", Version: 1, AdditionalVersion: 9, AdditionalWeight: 0.1}, ErrInvalid},
		{"additional version equal to the primary", AliasRecord{Function: "fn", Name: "x", Version: 1, AdditionalVersion: 1, AdditionalWeight: 0.1}, ErrInvalid},
		{"weight above 1", AliasRecord{Function: "fn", Name: "x", Version: 1, AdditionalVersion: 2, AdditionalWeight: 1.5}, ErrInvalid},
		{"negative weight", AliasRecord{Function: "fn", Name: "x", Version: 1, AdditionalVersion: 2, AdditionalWeight: -0.1}, ErrInvalid},
		{"NaN weight", AliasRecord{Function: "fn", Name: "x", Version: 1, AdditionalVersion: 2, AdditionalWeight: math.NaN()}, ErrInvalid},
		{"weight without a version", AliasRecord{Function: "fn", Name: "x", Version: 1, AdditionalWeight: 0.1}, ErrInvalid},
		{"weighted alias of $LATEST", AliasRecord{Function: "fn", Name: "x", Version: 0, AdditionalVersion: 2, AdditionalWeight: 0.1}, ErrInvalid},
		{"unknown function", AliasRecord{Function: "nope", Name: "x", Version: 1}, ErrNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := r.SetAlias(ctx, tc.a)
			wantErr(t, err, tc.want)
		})
	}
	for _, name := range []string{"1a", "a-1_B", strings.Repeat("z", MaxAliasNameLength)} {
		if _, err := r.SetAlias(ctx, AliasRecord{Function: "fn", Name: name, Version: 2}); err != nil {
			t.Errorf("alias %q: %v", name, err)
		}
	}

	if err := r.DeleteAlias(ctx, "fn", "prod"); err != nil {
		t.Fatal(err)
	}
	wantErr(t, r.DeleteAlias(ctx, "fn", "prod"), ErrNotFound)
	_, err = r.Alias(ctx, "fn", "prod")
	wantErr(t, err, ErrNotFound)
	waitSnapshot(t, r, "prod deleted", func(s *Snapshot) bool { _, ok := s.Alias("fn", "prod"); return !ok })
	_, err = r.Resolve("fn", "prod", 0)
	wantErr(t, err, ErrNotFound)
}

// Resolve is a pure function of the snapshot; this builds one by hand.
func TestSnapshotResolve(t *testing.T) {
	f := &snapFunction{
		fn:       FunctionRecord{Name: "fn", ID: "x", LatestVersion: 3},
		versions: map[int]VersionRecord{1: {Version: 1}, 2: {Version: 2}, 3: {Version: 3}},
		aliases: map[string]AliasRecord{
			"prod":   {Name: "prod", Version: 1},
			"latest": {Name: "latest", Version: 0},
			"canary": {Name: "canary", Version: 1, AdditionalVersion: 2, AdditionalWeight: 0.1},
			"all":    {Name: "all", Version: 1, AdditionalVersion: 3, AdditionalWeight: 1},
			"none":   {Name: "none", Version: 1, AdditionalVersion: 3, AdditionalWeight: 0},
			"123a":   {Name: "123a", Version: 2},
		},
	}
	s := newSnapshot(1, map[string]*snapFunction{"fn": f})
	for _, tc := range []struct {
		fn, qualifier string
		pick          float64
		want          int
		err           error
	}{
		{"fn", "", 0, 3, nil},
		{"fn", "$LATEST", 0.99, 3, nil},
		{"fn", "1", 0, 1, nil},
		{"fn", "3", 0, 3, nil},
		{"fn", "prod", 0.7, 1, nil},
		{"fn", "latest", 0.7, 3, nil},
		{"fn", "123a", 0, 2, nil},
		{"fn", "canary", 0, 2, nil},
		{"fn", "canary", 0.0999, 2, nil},
		{"fn", "canary", 0.1, 1, nil},
		{"fn", "canary", 0.999, 1, nil},
		{"fn", "all", 0.999, 3, nil},
		{"fn", "none", 0, 1, nil},
		{"fn", "4", 0, 0, ErrNotFound},
		{"fn", "0", 0, 0, ErrInvalid},
		{"fn", "03", 0, 0, ErrInvalid},
		{"fn", "99999999999999999999999", 0, 0, ErrInvalid},
		{"fn", "beta", 0, 0, ErrNotFound},
		{"fn", "a.b", 0, 0, ErrInvalid},
		{"fn", "$latest", 0, 0, ErrInvalid},
		{"fn", "prod", 1, 0, ErrInvalid},
		{"fn", "prod", -0.1, 0, ErrInvalid},
		{"fn", "prod", math.NaN(), 0, ErrInvalid},
		{"nope", "", 0, 0, ErrNotFound},
	} {
		got, err := s.Resolve(tc.fn, tc.qualifier, tc.pick)
		if got != tc.want || !errors.Is(err, tc.err) || (tc.err == nil) != (err == nil) {
			t.Errorf("Resolve(%q, %q, %v) = %d, %v; want %d, %v", tc.fn, tc.qualifier, tc.pick, got, err, tc.want, tc.err)
		}
	}

	// The split is exact: evenly spaced picks send each version its share.
	for _, w := range []float64{0, 0.1, 0.25, 0.5, 0.9, 1} {
		f.aliases["canary"] = AliasRecord{Name: "canary", Version: 1, AdditionalVersion: 2, AdditionalWeight: w}
		counts := map[int]int{}
		for i := range 1000 {
			v, err := s.Resolve("fn", "canary", float64(i)/1000)
			if err != nil {
				t.Fatal(err)
			}
			counts[v]++
		}
		if want := int(math.Round(w * 1000)); counts[2] != want || counts[1] != 1000-want {
			t.Errorf("weight %v: %v, want %d to version 2", w, counts, want)
		}
	}

	if allocs := testing.AllocsPerRun(100, func() { _, _ = s.Resolve("fn", "canary", 0.5) }); allocs != 0 {
		t.Errorf("Resolve allocates %v times", allocs)
	}
}

func TestSnapshotTargetAndLive(t *testing.T) {
	rec := func(n int, timeout string, maxConc int) VersionRecord {
		return VersionRecord{Function: "fn", FunctionID: "x", Version: n, Manifest: ManifestRecord{Timeout: timeout, MaxConcurrency: maxConc}}
	}
	f := &snapFunction{
		fn:       FunctionRecord{Name: "fn", ID: "x", LatestVersion: 4},
		versions: map[int]VersionRecord{1: rec(1, "1s", 0), 2: rec(2, "2s", 5), 3: rec(3, "3s", 0), 4: rec(4, "4s", 0)},
		aliases: map[string]AliasRecord{
			"prod":   {Name: "prod", Version: 1},
			"canary": {Name: "canary", Version: 1, AdditionalVersion: 2, AdditionalWeight: 0.5},
			"latest": {Name: "latest"},
		},
	}
	g := &snapFunction{
		fn:       FunctionRecord{Name: "g", ID: "y", LatestVersion: 1},
		versions: map[int]VersionRecord{1: {Function: "g", FunctionID: "y", Version: 1, Manifest: ManifestRecord{Timeout: "bogus"}}},
	}
	s := newSnapshot(1, map[string]*snapFunction{"fn": f, "g": g})

	got, err := s.Target("fn", "canary", 0.2)
	if want := (Target{Function: "fn", FunctionID: "x", Version: 2, Timeout: 2 * time.Second, MaxConcurrency: 5}); err != nil || got != want {
		t.Errorf("Target(canary, 0.2) = %+v, %v; want %+v", got, err, want)
	}
	if got, err := s.Target("fn", "", 0); err != nil || got.Version != 4 || got.Timeout != 4*time.Second {
		t.Errorf("Target($LATEST) = %+v, %v", got, err)
	}
	if _, err := s.Target("fn", "9", 0); !errors.Is(err, ErrNotFound) {
		t.Errorf("Target(9): %v, want ErrNotFound", err)
	}
	if _, err := s.Target("g", "", 0); !errors.Is(err, ErrCorrupt) {
		t.Errorf("Target of a version with a bad timeout: %v, want ErrCorrupt", err)
	}
	if allocs := testing.AllocsPerRun(100, func() { _, _ = s.Target("fn", "canary", 0.7) }); allocs != 0 {
		t.Errorf("Target allocates %v times", allocs)
	}

	var live []string
	for _, v := range s.Live() {
		live = append(live, fmt.Sprintf("%s:%d", v.Function, v.Version))
	}
	// Version 3 is neither the newest nor aliased: it is loaded only when called by number.
	if want := "fn:1 fn:2 fn:4 g:1"; strings.Join(live, " ") != want {
		t.Errorf("Live() = %v, want %s", live, want)
	}
}

// ---------------------------------------------------------------------------------------------
// Nodes, restarts, secrets, integrity.

// A second registry on the same server (another node) sees every change in its snapshot.
func TestRegistrySnapshotAcrossNodes(t *testing.T) {
	ns := startJetStream(t, t.TempDir())
	_, js1 := connectJetStream(t, ns)
	_, js2 := connectJetStream(t, ns)
	a := openTestRegistry(t, js1, RegistryConfig{})
	publish(t, a, testBundle("early", "x")) // there before the other node starts
	b := openTestRegistry(t, js2, RegistryConfig{})
	runRegistry(t, a)
	before := b.Snapshot()
	runRegistry(t, b)
	select {
	case <-before.Replaced():
	default:
		t.Fatal("loading did not replace the empty snapshot")
	}
	if _, ok := b.Snapshot().Function("early"); !ok {
		t.Fatal("the second node's first snapshot lacks a function published before it started")
	}

	v1, _ := publish(t, a, testBundle("hello", "1"))
	s := waitSnapshot(t, b, "hello 1", func(s *Snapshot) bool { f, ok := s.Function("hello"); return ok && f.LatestVersion == 1 })
	if got, ok := s.Version("hello", 1); !ok || got.ModuleSHA256 != v1.ModuleSHA256 {
		t.Fatalf("node b's version 1: %+v %v", got, ok)
	}
	publish(t, a, testBundle("hello", "2"))
	if _, err := b.SetAlias(t.Context(), AliasRecord{Function: "hello", Name: "live", Version: 1, AdditionalVersion: 2, AdditionalWeight: 0.5}); err != nil {
		t.Fatal(err)
	}
	for _, r := range []*Registry{a, b} {
		s := waitSnapshot(t, r, "the alias", func(s *Snapshot) bool { _, ok := s.Alias("hello", "live"); return ok })
		if v, err := s.Resolve("hello", "live", 0.49); err != nil || v != 2 {
			t.Fatalf("Resolve live: %d %v", v, err)
		}
		if got := versionNumbers(s.Versions("hello")); !reflect.DeepEqual(got, []int{1, 2}) {
			t.Fatalf("snapshot versions %v", got)
		}
		if got := s.Functions(); len(got) != 2 || got[0].Name != "early" || got[1].Name != "hello" {
			t.Fatalf("snapshot functions %+v", got)
		}
	}

	// Changing what a snapshot returned does not change the snapshot.
	got, _ := b.Snapshot().Version("hello", 1)
	got.Manifest.Environment = map[string]string{"X": "y"}
	if again, _ := b.Snapshot().Version("hello", 1); again.Manifest.Environment != nil {
		t.Fatal("a returned version shares its maps with the snapshot")
	}

	if err := a.Delete(t.Context(), "hello"); err != nil {
		t.Fatal(err)
	}
	waitSnapshot(t, b, "hello deleted", func(s *Snapshot) bool { _, ok := s.Function("hello"); return !ok })
	_, err := b.Resolve("hello", "live", 0)
	wantErr(t, err, ErrNotFound)
}

func TestRegistryRestartKeepsEverything(t *testing.T) {
	dir := t.TempDir()
	ns := startJetStream(t, dir)
	nc, js := connectJetStream(t, ns)
	cfg := RegistryConfig{SecretKey: testKey()}
	r := openTestRegistry(t, js, cfg)
	b1 := testBundle("hello", "1", withSecret("TOKEN", "t0ken"))
	publish(t, r, b1)
	publish(t, r, testBundle("hello", "2"))
	publish(t, r, testBundle("world", "w"))
	if _, err := r.SetAlias(t.Context(), AliasRecord{Function: "hello", Name: "prod", Version: 1, AdditionalVersion: 2, AdditionalWeight: 0.1}); err != nil {
		t.Fatal(err)
	}
	nc.Close()
	ns.Shutdown()
	ns.WaitForShutdown()

	ns = startJetStream(t, dir)
	_, js = connectJetStream(t, ns)
	r = openTestRegistry(t, js, cfg)
	runRegistry(t, r)
	ctx := t.Context()
	list, err := r.List(ctx)
	if err != nil || len(list) != 2 {
		t.Fatalf("after a restart, List: %+v %v", list, err)
	}
	vs, err := r.Versions(ctx, "hello")
	if err != nil || !reflect.DeepEqual(versionNumbers(vs), []int{1, 2}) {
		t.Fatalf("after a restart, versions %v %v", versionNumbers(vs), err)
	}
	if mod, err := r.Module(ctx, vs[0].ModuleSHA256); err != nil || !bytes.Equal(mod, b1.Module) {
		t.Fatalf("after a restart, module: %v", err)
	}
	if secrets, err := r.OpenSecrets(vs[0]); err != nil || secrets["TOKEN"] != "t0ken" {
		t.Fatalf("after a restart, secrets %v %v", secrets, err)
	}
	if v, err := r.Resolve("hello", "prod", 0.05); err != nil || v != 2 {
		t.Fatalf("after a restart, the snapshot resolves prod to %d, %v", v, err)
	}
	// Numbers go on from where they were.
	if v, created := publish(t, r, testBundle("hello", "3")); !created || v.Version != 3 {
		t.Fatalf("after a restart, publish: %+v", v)
	}
}

func TestRegistrySecrets(t *testing.T) {
	ns := startJetStream(t, t.TempDir())
	_, js := connectJetStream(t, ns)
	r := openTestRegistry(t, js, RegistryConfig{SecretKey: testKey()})
	ctx := t.Context()
	const secret = "correct horse battery staple"
	b := testBundle("vault", "v", withSecret("DB_PASSWORD", secret), func(m *Manifest) { m.Environment["TABLE"] = "orders" })

	v, _ := publish(t, r, b)
	if _, ok := v.Manifest.Environment["DB_PASSWORD"]; ok || v.Manifest.Environment["TABLE"] != "orders" || v.SealedSecrets == nil {
		t.Fatalf("the version record's environment: %v, sealed %v", v.Manifest.Environment, v.SealedSecrets)
	}
	raw, err := r.kv.Get(ctx, verKey("vault", 1))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(raw.Value(), []byte(secret)) || bytes.Contains(raw.Value(), []byte("horse")) {
		t.Fatalf("the stored record holds the secret in plain text: %s", raw.Value())
	}
	if !bytes.Contains(raw.Value(), []byte(`"DB_PASSWORD"`)) || !bytes.Contains(raw.Value(), []byte(`"orders"`)) {
		t.Fatalf("the stored record lacks the secret's name or the plain variable: %s", raw.Value())
	}
	// The whole bucket, every revision of every key, never holds it.
	w, err := r.kv.WatchAll(ctx, jetstream.IncludeHistory())
	if err != nil {
		t.Fatal(err)
	}
	for e := range w.Updates() {
		if e == nil {
			break
		}
		if bytes.Contains(e.Value(), []byte(secret)) {
			t.Fatalf("record %s holds the secret", e.Key())
		}
	}
	stopWatcher(w)

	got, err := r.Version(ctx, "vault", 1)
	if err != nil {
		t.Fatal(err)
	}
	secrets, err := r.OpenSecrets(got)
	if err != nil || !reflect.DeepEqual(secrets, map[string]string{"DB_PASSWORD": secret}) {
		t.Fatalf("OpenSecrets: %v %v", secrets, err)
	}
	m, err := got.Manifest.Manifest(secrets)
	if err != nil || !reflect.DeepEqual(*m, b.Manifest) {
		t.Fatalf("the manifest rebuilt with its secrets: %+v %v, want %+v", m, err, b.Manifest)
	}
	if _, err := got.Manifest.Manifest(nil); err == nil {
		t.Fatal("rebuilding a manifest without its secrets' values succeeded")
	}

	// The same secret is the same version; another value is a new one.
	if again, created := publish(t, r, b); created || again.Version != 1 {
		t.Fatalf("republishing the same secrets: %+v created=%v", again, created)
	}
	v2, created := publish(t, r, testBundle("vault", "v", withSecret("DB_PASSWORD", "another"), func(m *Manifest) { m.Environment["TABLE"] = "orders" }))
	if !created || v2.Version != 2 || v2.ManifestSHA256 == v.ManifestSHA256 {
		t.Fatalf("changing a secret's value: %+v created=%v", v2, created)
	}

	// Sealed values open only for their own version, and only with the key.
	moved := v2
	moved.SealedSecrets = got.SealedSecrets
	_, err = r.OpenSecrets(moved)
	wantErr(t, err, ErrCorrupt)
	noKey := openTestRegistry(t, js, RegistryConfig{})
	_, err = noKey.OpenSecrets(got)
	wantErr(t, err, ErrInvalid)
	otherKey := openTestRegistry(t, js, RegistryConfig{SecretKey: bytes.Repeat([]byte{8}, SecretKeySize)})
	if _, err := otherKey.OpenSecrets(got); err == nil || !strings.Contains(err.Error(), "key") {
		t.Fatalf("opening with another key: %v", err)
	}
	if secrets, err := noKey.OpenSecrets(VersionRecord{}); err != nil || secrets != nil {
		t.Fatalf("a version without secrets: %v %v", secrets, err)
	}
}

func TestRegistryModuleIntegrity(t *testing.T) {
	r, _ := newTestRegistry(t, RegistryConfig{})
	ctx := t.Context()
	b := testBundle("hello", "the real module")
	publish(t, r, b)

	// Damage: other bytes stored under the module's name.
	if _, err := r.obs.PutBytes(ctx, b.SHA256, append(slices.Clone(wasmHeader), "tampered"...)); err != nil {
		t.Fatal(err)
	}
	_, err := r.Module(ctx, b.SHA256)
	wantErr(t, err, ErrCorrupt)

	// Publishing the bundle again repairs it (and is still the same version).
	if v, created := publish(t, r, b); created || v.Version != 1 {
		t.Fatalf("republishing: %+v created=%v", v, created)
	}
	if mod, err := r.Module(ctx, b.SHA256); err != nil || !bytes.Equal(mod, b.Module) {
		t.Fatalf("after the repair: %q %v", mod, err)
	}
}

// ---------------------------------------------------------------------------------------------
// Crashes between steps, deletes, collection.

// Each case runs a publish's steps by hand and stops, as a crashed process would; the registry must
// stay consistent, and the next publish must carry on.
func TestRegistryCrashBetweenPublishSteps(t *testing.T) {
	r, _ := newTestRegistry(t, RegistryConfig{})
	runRegistry(t, r)
	ctx := t.Context()

	// steps runs steps 1 to last (1 module, 2 reserve, 3 version record) of publishing b.
	steps := func(b *Bundle, last int) {
		t.Helper()
		p, err := r.prepare(b, PublishOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if err := r.storeModule(ctx, p.sha, p.module); err != nil || last == 1 {
			if err != nil {
				t.Fatal(err)
			}
			return
		}
		f, err := r.reserve(ctx, p.name)
		if err != nil || last == 2 {
			if err != nil {
				t.Fatal(err)
			}
			return
		}
		v, err := r.versionRecord(p, f, f.LatestVersion+1)
		if err != nil {
			t.Fatal(err)
		}
		if err := r.createVersion(ctx, &v); err != nil {
			t.Fatal(err)
		}
	}
	absent := func(name string) {
		t.Helper()
		_, err := r.Get(ctx, name)
		wantErr(t, err, ErrNotFound)
		_, err = r.Versions(ctx, name)
		wantErr(t, err, ErrNotFound)
		_, err = r.Version(ctx, name, 1)
		wantErr(t, err, ErrNotFound)
		if list, _ := r.List(ctx); slices.ContainsFunc(list, func(f FunctionRecord) bool { return f.Name == name }) {
			t.Fatalf("List shows %s", name)
		}
		_, err = r.SetAlias(ctx, AliasRecord{Function: name, Name: "prod", Version: 1})
		wantErr(t, err, ErrNotFound)
		// Let the snapshot catch up with everything written so far, then check it.
		s := waitSnapshot(t, r, "the latest records", func(s *Snapshot) bool { return s.Revision() >= lastRevision(t, r) })
		if _, ok := s.Function(name); ok {
			t.Fatalf("the snapshot shows %s", name)
		}
	}

	t.Run("after the module", func(t *testing.T) {
		b := testBundle("m", "m1")
		steps(b, 1)
		absent("m")
		if v, created := publish(t, r, b); !created || v.Version != 1 {
			t.Fatalf("the next publish: %+v %v", v, created)
		}
	})

	t.Run("after reserving the name", func(t *testing.T) {
		b := testBundle("r", "r1")
		steps(b, 2)
		absent("r")
		if v, created := publish(t, r, b); !created || v.Version != 1 {
			t.Fatalf("the next publish: %+v %v", v, created)
		}
	})

	t.Run("first version written, not committed", func(t *testing.T) {
		b := testBundle("first", "f1")
		steps(b, 3)
		absent("first")
		// The retried publish adopts the crashed one's version: same bytes, same version.
		v, created := publish(t, r, b)
		if created || v.Version != 1 || v.ModuleSHA256 != b.SHA256 {
			t.Fatalf("the retried publish: %+v created=%v", v, created)
		}
		if v, created := publish(t, r, testBundle("first", "f2")); !created || v.Version != 2 {
			t.Fatalf("the publish after: %+v created=%v", v, created)
		}
	})

	t.Run("later version written, not committed", func(t *testing.T) {
		a, b, c := testBundle("later", "1"), testBundle("later", "2"), testBundle("later", "3")
		publish(t, r, a)
		steps(b, 3)
		// Readers see version 1 only.
		f, err := r.Get(ctx, "later")
		if err != nil || f.LatestVersion != 1 {
			t.Fatalf("Get: %+v %v", f, err)
		}
		vs, _ := r.Versions(ctx, "later")
		if !reflect.DeepEqual(versionNumbers(vs), []int{1}) {
			t.Fatalf("versions %v, want [1]", versionNumbers(vs))
		}
		_, err = r.Version(ctx, "later", 2)
		wantErr(t, err, ErrNotFound)
		_, err = r.SetAlias(ctx, AliasRecord{Function: "later", Name: "prod", Version: 2})
		wantErr(t, err, ErrInvalid)
		s := waitSnapshot(t, r, "the latest records", func(s *Snapshot) bool { return s.Revision() >= lastRevision(t, r) })
		if v, err := s.Resolve("later", "$LATEST", 0); err != nil || v != 1 {
			t.Fatalf("the snapshot resolves $LATEST to %d, %v", v, err)
		}
		if _, ok := s.Version("later", 2); ok {
			t.Fatal("the snapshot shows the uncommitted version")
		}
		// Another bundle: the crashed version is committed first, as 2, and this one is 3.
		v, created := publish(t, r, c)
		if !created || v.Version != 3 {
			t.Fatalf("the next publish: %+v created=%v", v, created)
		}
		vs, _ = r.Versions(ctx, "later")
		var modules []string
		for _, v := range vs {
			modules = append(modules, v.ModuleSHA256)
		}
		if !reflect.DeepEqual(modules, []string{a.SHA256, b.SHA256, c.SHA256}) {
			t.Fatalf("versions %v hold modules %v", versionNumbers(vs), modules)
		}
	})
}

// lastRevision is the bucket's newest revision.
func lastRevision(t *testing.T, r *Registry) uint64 {
	t.Helper()
	st, err := r.kv.Status(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	info := st.(*jetstream.KeyValueBucketStatus).StreamInfo()
	return info.State.LastSeq
}

func TestRegistryDelete(t *testing.T) {
	r, _ := newTestRegistry(t, RegistryConfig{})
	ctx := t.Context()
	a := testBundle("gone", "a")
	publish(t, r, a)
	publish(t, r, testBundle("gone", "b"))
	if _, err := r.SetAlias(ctx, AliasRecord{Function: "gone", Name: "prod", Version: 1}); err != nil {
		t.Fatal(err)
	}
	if err := r.Delete(ctx, "gone"); err != nil {
		t.Fatal(err)
	}
	_, err := r.Get(ctx, "gone")
	wantErr(t, err, ErrNotFound)
	wantErr(t, r.Delete(ctx, "gone"), ErrNotFound)
	if entries, err := r.scan(ctx, ">"); err != nil || len(entries) != 0 {
		t.Fatalf("%d records left after a delete (%v)", len(entries), err)
	}
	// Modules stay until collected.
	if _, err := r.Module(ctx, a.SHA256); err != nil {
		t.Fatal(err)
	}
	// A function of the same name starts again at 1, without the old aliases.
	if v, created := publish(t, r, testBundle("gone", "c")); !created || v.Version != 1 {
		t.Fatalf("publishing after a delete: %+v", v)
	}
	_, err = r.Alias(ctx, "gone", "prod")
	wantErr(t, err, ErrNotFound)
}

// A delete that stops after its first step leaves records of no function: invisible, removed by the
// next publish that meets them and by Collect.
func TestRegistryCrashDuringDeleteAndCollect(t *testing.T) {
	r, _ := newTestRegistry(t, RegistryConfig{})
	runRegistry(t, r)
	ctx := t.Context()
	old1, old2, old3 := testBundle("fn", "old 1"), testBundle("fn", "old 2"), testBundle("fn", "old 3")
	keep := testBundle("keep", "kept")
	for _, b := range []*Bundle{old1, old2, old3, keep} {
		publish(t, r, b)
	}
	if _, err := r.SetAlias(ctx, AliasRecord{Function: "fn", Name: "prod", Version: 2}); err != nil {
		t.Fatal(err)
	}
	f, err := r.Get(ctx, "fn")
	if err != nil {
		t.Fatal(err)
	}
	// The first step of Delete, and no more.
	if err := r.kv.Delete(ctx, fnKey("fn"), jetstream.LastRevision(f.Revision)); err != nil {
		t.Fatal(err)
	}
	_, err = r.Get(ctx, "fn")
	wantErr(t, err, ErrNotFound)
	waitSnapshot(t, r, "fn deleted", func(s *Snapshot) bool { _, ok := s.Function("fn"); return !ok })

	// A new function of the same name: the old version 1 is replaced, the old alias is not its.
	n1 := testBundle("fn", "new 1")
	if v, created := publish(t, r, n1); !created || v.Version != 1 || v.ModuleSHA256 != n1.SHA256 {
		t.Fatalf("publishing over the leftovers: %+v created=%v", v, created)
	}
	vs, err := r.Versions(ctx, "fn")
	if err != nil || !reflect.DeepEqual(versionNumbers(vs), []int{1}) || vs[0].ModuleSHA256 != n1.SHA256 {
		t.Fatalf("versions over the leftovers: %v %v", versionNumbers(vs), err)
	}
	_, err = r.Alias(ctx, "fn", "prod")
	wantErr(t, err, ErrNotFound)
	if aliases, err := r.Aliases(ctx, "fn"); err != nil || len(aliases) != 0 {
		t.Fatalf("aliases over the leftovers: %+v %v", aliases, err)
	}
	s := waitSnapshot(t, r, "the new fn", func(s *Snapshot) bool {
		f, ok := s.Function("fn")
		return ok && f.ID != "" && s.Revision() >= lastRevision(t, r)
	})
	if _, ok := s.Alias("fn", "prod"); ok {
		t.Fatal("the snapshot shows an alias of the deleted function")
	}
	if got := versionNumbers(s.Versions("fn")); !reflect.DeepEqual(got, []int{1}) {
		t.Fatalf("the snapshot's versions over the leftovers: %v", got)
	}

	// Collect removes the old versions 2 and 3 and the old alias; modules are young, so they stay.
	st, err := r.Collect(ctx, 0)
	if err != nil || st != (CollectStats{Versions: 2, Aliases: 1}) {
		t.Fatalf("Collect: %+v %v", st, err)
	}
	if _, err := r.Module(ctx, old2.SHA256); err != nil {
		t.Fatalf("a young module was collected: %v", err)
	}
	// Later, the modules no version refers to go; the others stay.
	r.now = func() time.Time { return time.Now().Add(2 * MinCollectAge) }
	st, err = r.Collect(ctx, 0)
	if err != nil || st != (CollectStats{Modules: 3}) {
		t.Fatalf("Collect later: %+v %v", st, err)
	}
	for _, b := range []*Bundle{old1, old2, old3} {
		_, err := r.Module(ctx, b.SHA256)
		wantErr(t, err, ErrNotFound)
	}
	for _, b := range []*Bundle{n1, keep} {
		if _, err := r.Module(ctx, b.SHA256); err != nil {
			t.Fatalf("a module in use was collected: %v", err)
		}
	}
	// The registry goes on.
	if v, created := publish(t, r, testBundle("fn", "new 2")); !created || v.Version != 2 {
		t.Fatalf("publishing after collection: %+v", v)
	}
}

// The records' JSON is the documented schema (docs/registry.md).
func TestRegistryRecordSchema(t *testing.T) {
	r, _ := newTestRegistry(t, RegistryConfig{})
	ctx := t.Context()
	publish(t, r, testBundle("fn", "x", func(m *Manifest) { m.Environment["A"] = "b" }))
	if _, err := r.SetAlias(ctx, AliasRecord{Function: "fn", Name: "prod", Version: 1}); err != nil {
		t.Fatal(err)
	}
	for key, want := range map[string][]string{
		"fn.fn":         {"schemaVersion", "name", "id", "latestVersion", "createdAt", "updatedAt"},
		"ver.fn.1":      {"schemaVersion", "function", "functionId", "version", "moduleSha256", "moduleSize", "manifest", "manifestSha256", "createdAt"},
		"alias.fn.prod": {"schemaVersion", "function", "functionId", "name", "version", "updatedAt"},
	} {
		e, err := r.kv.Get(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		var fields map[string]json.RawMessage
		if err := json.Unmarshal(e.Value(), &fields); err != nil {
			t.Fatal(err)
		}
		got := slices.Sorted(func(yield func(string) bool) {
			for k := range fields {
				if !yield(k) {
					return
				}
			}
		})
		slices.Sort(want)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s has fields %v, want %v", key, got, want)
		}
		if string(fields["schemaVersion"]) != "1" {
			t.Errorf("%s: schemaVersion %s", key, fields["schemaVersion"])
		}
	}
	e, _ := r.kv.Get(ctx, "ver.fn.1")
	var v struct {
		Manifest map[string]any `json:"manifest"`
	}
	_ = json.Unmarshal(e.Value(), &v)
	want := map[string]any{"version": 1.0, "name": "fn", "module": "function.wasm", "memory": 128.0, "timeout": "3s",
		"environment": map[string]any{"A": "b"}, "maxConcurrency": 0.0, "minWarm": 0.0, "idleTimeout": "5m"}
	if !reflect.DeepEqual(v.Manifest, want) {
		t.Errorf("the manifest record: %v, want %v", v.Manifest, want)
	}
}

func TestPruneVersions(t *testing.T) {
	r, _ := newTestRegistry(t, RegistryConfig{})
	runRegistry(t, r)
	ctx := t.Context()
	for i := range 6 {
		publish(t, r, testBundle("fn", fmt.Sprintf("body %d", i)))
	}
	if _, err := r.SetAlias(ctx, AliasRecord{Function: "fn", Name: "live", Version: 2, AdditionalVersion: 1, AdditionalWeight: 0.1}); err != nil {
		t.Fatal(err)
	}
	removed, err := r.PruneVersions(ctx, "fn", 2, []int{4})
	if err != nil || !reflect.DeepEqual(removed, []int{3}) {
		t.Fatalf("PruneVersions = %v, %v; want [3] (6 and 5 are the newest, 4 is pinned, 2 and 1 are the alias's)", removed, err)
	}
	vs, err := r.Versions(ctx, "fn")
	if err != nil || !reflect.DeepEqual(versionNumbers(vs), []int{1, 2, 4, 5, 6}) {
		t.Fatalf("versions after pruning: %v %v", versionNumbers(vs), err)
	}
	if _, err := r.Version(ctx, "fn", 3); !errors.Is(err, ErrNotFound) {
		t.Errorf("Version 3 after pruning: %v, want ErrNotFound", err)
	}
	// Gone from a snapshot that has the function (one from before the publishes lacks version 3 too).
	waitSnapshot(t, r, "version 3 gone", func(s *Snapshot) bool {
		_, err3 := s.Resolve("fn", "3", 0)
		latest, err := s.Resolve("fn", "", 0)
		return err3 != nil && err == nil && latest == 6
	})
	if v, err := r.Resolve("fn", "live", 0.5); err != nil || v != 2 {
		t.Errorf("Resolve live = %d, %v; want 2", v, err)
	}
	if v, err := r.Resolve("fn", "", 0); err != nil || v != 6 {
		t.Errorf("Resolve $LATEST = %d, %v; want 6", v, err)
	}
	// Publishing again continues the numbering.
	if v, _ := publish(t, r, testBundle("fn", "body 7")); v.Version != 7 {
		t.Errorf("the next publish is version %d, want 7", v.Version)
	}
}
