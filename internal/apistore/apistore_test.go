package apistore

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"gatehouse.dev/gatehouse/internal/testfix/jstest"
)

func openStore(t *testing.T) (*Store, *Store) {
	t.Helper()
	ns := jstest.Start(t, "")
	var stores []*Store
	for range 2 { // two nodes
		_, js := jstest.Connect(t, ns)
		s, err := Open(t.Context(), js, "t")
		if err != nil {
			t.Fatal(err)
		}
		stores = append(stores, s)
	}
	return stores[0], stores[1]
}

func TestPutIsIdempotentAndWatchSeesEveryRevision(t *testing.T) {
	a, b := openStore(t)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

	rev1, changed, err := a.Put(ctx, "gatehouse.yaml", json.RawMessage(`[ {"id": "web"} ]`), now)
	if err != nil || !changed || rev1 == 0 {
		t.Fatalf("first put: %d %v %v", rev1, changed, err)
	}
	// The same definitions, spaced differently, are not a new revision.
	if rev, changed, err := a.Put(ctx, "gatehouse.yaml", json.RawMessage(`[{"id":"web"}]`), now); err != nil || changed || rev != rev1 {
		t.Fatalf("second put: %d %v %v", rev, changed, err)
	}
	if _, _, err := a.Put(ctx, "x", json.RawMessage(`[{`), now); err == nil {
		t.Fatal("invalid JSON stored")
	}

	got := make(chan Definitions, 8)
	bad := make(chan error, 8)
	go b.Watch(ctx, func(d Definitions) { got <- d }, func(err error) { bad <- err })
	first := <-got
	if string(first.APIs) != `[{"id":"web"}]` || first.Source != "gatehouse.yaml" || first.Revision != rev1 || !first.UpdatedAt.Equal(now) {
		t.Fatalf("watch started with %+v", first)
	}
	// A record this release cannot read is reported and skipped; the next good one arrives.
	if _, err := a.kv.Put(ctx, key, []byte(`{"schemaVersion":2,"apis":[]}`)); err != nil {
		t.Fatal(err)
	}
	rev2, _, err := a.Put(ctx, "gatehouse.yaml", json.RawMessage(`[{"id":"web"},{"id":"other"}]`), now)
	if err != nil {
		t.Fatal(err)
	}
	if err := <-bad; err == nil {
		t.Fatal("no error for a record of another schema version")
	}
	if d := <-got; d.Revision != rev2 || string(d.APIs) != `[{"id":"web"},{"id":"other"}]` {
		t.Fatalf("second revision seen as %+v", d)
	}
	if d, err := b.Get(ctx); err != nil || d.Revision != rev2 {
		t.Fatalf("Get: %+v %v", d, err)
	}
}
