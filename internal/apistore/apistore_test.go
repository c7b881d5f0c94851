package apistore

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"gatehouse.dev/gatehouse/internal/spec"
	"gatehouse.dev/gatehouse/internal/stackfile"
	"gatehouse.dev/gatehouse/internal/testfix/jstest"
)

// openStores opens the bucket of stack "t" from two nodes; before sets up the bucket's contents
// before either opens it, when not nil.
func openStores(t *testing.T, before func(js jetstream.JetStream)) (*Store, *Store) {
	t.Helper()
	ns := jstest.Start(t, "")
	var stores []*Store
	for i := range 2 { // two nodes
		_, js := jstest.Connect(t, ns)
		if i == 0 && before != nil {
			before(js)
		}
		s, err := Open(t.Context(), js, "t")
		if err != nil {
			t.Fatal(err)
		}
		stores = append(stores, s)
	}
	return stores[0], stores[1]
}

func api(target string) spec.API {
	return spec.API{Type: spec.APITypeHTTP, Mount: "/", Stages: map[string]spec.Stage{"$default": {Name: "$default"}},
		Routes: spec.Routes{{Key: "GET /x", Integration: spec.Integration{Type: "function", Target: target, PayloadFormatVersion: "2.0",
			Timeout: spec.Duration(time.Second)}, Authorization: spec.Authorization{Type: spec.AuthNone}}}}
}

func TestPutIsCompareAndSetAndWatchSeesEveryChange(t *testing.T) {
	a, b := openStores(t, nil)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()

	changes := make(chan Change, 16)
	synced := make(chan struct{})
	bad := make(chan error, 8)
	go b.Watch(ctx, func(c Change) { changes <- c }, func() { close(synced) }, func(err error) { bad <- err })
	<-synced

	rev1, err := a.Put(ctx, Record{Name: "web", ManagedBy: ManagedByAdmin, API: api("hello")}, 0)
	if err != nil || rev1 == 0 {
		t.Fatalf("create: %d %v", rev1, err)
	}
	if _, err := a.Put(ctx, Record{Name: "web", ManagedBy: ManagedByAdmin, API: api("other")}, 0); !errors.Is(err, ErrConflict) {
		t.Fatalf("second create: %v, want ErrConflict", err)
	}
	c := <-changes
	if c.Name != "web" || c.Record == nil || c.Record.API.Routes[0].Integration.Target != "hello" || c.Record.Hash != Hash(api("hello")) || c.Revision != rev1 {
		t.Fatalf("watch saw %+v", c)
	}
	rev2, err := a.Put(ctx, Record{Name: "web", ManagedBy: ManagedByAdmin, API: api("other")}, rev1)
	if err != nil {
		t.Fatal(err)
	}
	// A writer that read revision 1 cannot overwrite revision 2.
	if _, err := a.Put(ctx, Record{Name: "web", API: api("stale")}, rev1); !errors.Is(err, ErrConflict) {
		t.Fatalf("stale update: %v, want ErrConflict", err)
	}
	if c := <-changes; c.Record == nil || c.Record.API.Routes[0].Integration.Target != "other" {
		t.Fatalf("watch saw %+v", c)
	}
	// A record this release cannot read is reported and skipped; the next good one arrives.
	if _, err := a.kv.Put(ctx, "api.broken", []byte(`{"schemaVersion":9}`)); err != nil {
		t.Fatal(err)
	}
	if err := <-bad; !errors.Is(err, ErrUnreadable) {
		t.Fatalf("bad record: %v", err)
	}
	if err := a.Delete(ctx, "web", rev1); !errors.Is(err, ErrConflict) {
		t.Fatalf("stale delete: %v, want ErrConflict", err)
	}
	if err := a.Delete(ctx, "web", rev2); err != nil {
		t.Fatal(err)
	}
	if c := <-changes; c.Name != "web" || c.Record != nil {
		t.Fatalf("delete seen as %+v", c)
	}
	if _, err := b.Get(ctx, "web"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get after delete: %v", err)
	}
	// Deleted, the name can be created again.
	if _, err := a.Put(ctx, Record{Name: "web", API: api("again")}, 0); err != nil {
		t.Fatal(err)
	}
	recs, err := b.List(ctx, func(error) {})
	if err != nil || len(recs) != 1 || recs[0].Name != "web" || recs[0].API.Routes[0].Integration.Target != "again" {
		t.Fatalf("List: %+v %v", recs, err)
	}
}

// The record of schema version 1 in testdata was written by the release before records per API,
// from migrationStack; opening the bucket turns it into the same APIs the stack file gives now.
func TestMigratesSchemaVersion1(t *testing.T) {
	v1, err := os.ReadFile(filepath.Join("testdata", "v1-apis.json"))
	if err != nil {
		t.Fatal(err)
	}
	a, _ := openStores(t, func(js jetstream.JetStream) {
		kv, err := js.CreateKeyValue(t.Context(), jetstream.KeyValueConfig{Bucket: Bucket("t"), History: History})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := kv.Put(t.Context(), v1Key, v1); err != nil {
			t.Fatal(err)
		}
	})
	ctx := t.Context()
	if _, err := a.kv.Get(ctx, v1Key); !errors.Is(err, jetstream.ErrKeyNotFound) {
		t.Errorf("the record of schema version 1 is still there: %v", err)
	}
	recs, err := a.List(ctx, func(err error) { t.Error(err) })
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, f := range []string{"a.wasm", "keys.json"} {
		if err := os.WriteFile(filepath.Join(dir, f), []byte("{}"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	stack, err := stackfile.Parse("gatehouse.yaml", []byte(migrationStack), dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != len(stack.APIs) {
		t.Fatalf("%d APIs after migrating, want %d", len(recs), len(stack.APIs))
	}
	for _, r := range recs {
		want := stack.APIs[r.Name]
		for i := range want.Routes {
			want.Routes[i].Line, want.Routes[i].Column = 0, 0
		}
		for _, z := range want.Authorizers {
			if z.JWT != nil {
				z.JWT.JWKSFile = "/srv/shop/keys.json" // where the record was written
			}
		}
		if got, want := mustJSON(t, r.API), mustJSON(t, want); got != want {
			t.Errorf("API %s migrated as\n%s\nwant\n%s", r.Name, got, want)
		}
		if errs := r.API.Validate(r.Name, spec.EnvOf(stack)); errs != nil {
			t.Errorf("API %s migrated to an invalid definition: %v", r.Name, errs)
		}
		if r.ManagedBy != ManagedByStackFile || r.Source != "gatehouse.yaml" || r.FileHash != "" {
			t.Errorf("API %s migrated with %+v", r.Name, r)
		}
	}
	// Opening again finds nothing to migrate.
	if err := a.migrate(ctx); err != nil {
		t.Fatal(err)
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.MarshalIndent(v, "", " ")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

const migrationStack = `version: 1
name: shop
functions:
  orders: {source: a.wasm}
  auth: {source: a.wasm}
usagePlans:
  basic: {throttle: {rate: 5, burst: 10}, quota: {limit: 1000, period: day}}
apis:
  web:
    type: http
    mount: /shop
    host: api.example.com
    cors: {allowOrigins: ["https://example.com"], allowMethods: [GET, POST], maxAge: 600, allowCredentials: true}
    authorizers:
      jwt1: {type: jwt, issuer: "https://issuer.example.com", audiences: [shop], jwksFile: keys.json, skew: 30s}
      fn1: {type: function, function: auth, identitySources: [$request.header.X-Token], resultTtl: 5m, timeout: 2s}
    stages:
      prod:
        variables: {color: blue}
        throttle: {rate: 100, burst: 200}
        routeThrottles: {"POST /orders": {rate: 1.5, burst: 3}}
      $default: {}
    routes:
      GET /orders/{id}: {function: "orders:prod", timeout: 5s, authorization: {type: jwt, authorizer: jwt1, scopes: [read]}}
      POST /orders: {function: orders, apiKeyRequired: true}
      ANY /admin/{proxy+}: {function: orders, authorization: {type: function, authorizer: fn1}}
      GET /signed: {function: orders, authorization: {type: iam}}
  chat:
    type: websocket
    routeSelectionExpression: $request.body.type
    limits: {maxMessageBytes: 65536, idleTimeout: 5m, maxConnectionDuration: 1h, sendQueue: 64}
    authorizers:
      fn2: {type: function, function: auth, identitySources: [$request.querystring.token]}
    routes:
      $connect: {function: auth, authorization: {type: function, authorizer: fn2}, apiKeyRequired: true}
      $default: {function: orders}
      send: {function: orders, routeResponse: true, timeout: 10s}
`
