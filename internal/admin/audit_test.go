package admin

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	"gatehouse.dev/gatehouse/functions"
	"gatehouse.dev/gatehouse/internal/adminapi"
)

func TestAuditRecordsChanges(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	start := time.Now().Add(-time.Second)
	h.want("POST", "/admin/v1/tokens", []byte(`{"name":"ci"}`), 201, nil)
	var dep deployAnswerJSON
	h.want("POST", "/admin/v1/functions", bundle(t, "hello", "1"), 201, &dep)
	h.want("PUT", "/admin/v1/functions/hello/aliases/prod", []byte(`{"version":1}`), 200, nil)
	h.want("DELETE", "/admin/v1/functions/hello/aliases/prod", nil, 204, nil)
	h.want("DELETE", "/admin/v1/functions/hello", nil, 204, nil)
	h.want("DELETE", "/admin/v1/tokens/ci", nil, 204, nil)
	// Reads and refused changes are not recorded.
	h.want("GET", "/admin/v1/functions", nil, 200, nil)
	h.want("DELETE", "/admin/v1/functions/hello", nil, 404, nil)

	want := []struct{ action, target, detail string }{
		{ActionTokenCreate, "ci", ""},
		{ActionFunctionDeploy, "hello:1", "sha256 " + dep.Version.ModuleSHA256 + ", created"},
		{ActionAliasSet, "hello:prod", "version 1"},
		{ActionAliasDelete, "hello:prod", ""},
		{ActionFunctionDelete, "hello", ""},
		{ActionTokenDelete, "ci", ""},
	}
	var got struct{ Entries []adminapi.AuditEntry }
	h.want("GET", "/admin/v1/audit", nil, 200, &got)
	if len(got.Entries) != len(want) {
		t.Fatalf("%d entries, want %d: %+v", len(got.Entries), len(want), got.Entries)
	}
	for i, w := range want {
		e := got.Entries[i]
		if e.Action != w.action || e.Target != w.target || e.Detail != w.detail || e.Token != "admin" || e.Address != "127.0.0.1" ||
			e.Time.Before(start) || e.Time.After(time.Now()) || (i > 0 && e.Time.Before(got.Entries[i-1].Time)) {
			t.Errorf("entry %d: %+v, want %+v by admin from 127.0.0.1", i, e, w)
		}
	}

	h.want("GET", "/admin/v1/audit?limit=2", nil, 200, &got)
	if len(got.Entries) != 2 || got.Entries[0].Action != ActionFunctionDelete || got.Entries[1].Action != ActionTokenDelete {
		t.Fatalf("limit=2: %+v", got.Entries)
	}
	h.want("GET", "/admin/v1/audit?limit=0", nil, 200, &got)
	if len(got.Entries) != 0 {
		t.Fatalf("limit=0: %+v", got.Entries)
	}
	h.wantError("GET", "/admin/v1/audit?limit=-1", nil, 400, "limit")
	h.wantError("GET", "/admin/v1/audit?limit=many", nil, 400, "limit")

	h2 := newHarness(t, harnessOptions{noAudit: true})
	h2.want("POST", "/admin/v1/tokens", []byte(`{"name":"ci"}`), 201, nil) // recording nothing is fine
	h2.wantError("GET", "/admin/v1/audit", nil, 503, "the audit log is not available")
}

func TestAuditList(t *testing.T) {
	ctx := t.Context()
	js := newJetStream(t)
	a, err := OpenAudit(ctx, js, "t")
	if err != nil {
		t.Fatal(err)
	}
	if list, err := a.List(ctx, 10); err != nil || len(list) != 0 {
		t.Fatalf("empty log: %+v, %v", list, err)
	}
	for i := range 25 {
		if err := a.Record(ctx, adminapi.AuditEntry{Time: time.Now().UTC(), Token: "admin", Action: ActionFunctionDeploy, Target: fmt.Sprintf("f:%d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	// Opening again binds to the same stream.
	if a, err = OpenAudit(ctx, js, "t"); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ limit, want, first int }{{0, 0, 0}, {1, 1, 24}, {10, 10, 15}, {25, 25, 0}, {1000, 25, 0}} {
		list, err := a.List(ctx, tt.limit)
		if err != nil {
			t.Fatal(err)
		}
		if len(list) != tt.want {
			t.Fatalf("List(%d): %d entries, want %d", tt.limit, len(list), tt.want)
		}
		for i, e := range list {
			if e.Target != fmt.Sprintf("f:%d", tt.first+i) {
				t.Fatalf("List(%d)[%d] = %+v", tt.limit, i, e)
			}
		}
	}
	info, err := a.stream.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if c := info.Config; c.Name != "gh_t_audit" || len(c.Subjects) != 1 || c.Subjects[0] != "gh.t.audit" || c.MaxMsgs != AuditMaxEntries ||
		c.MaxAge != AuditMaxAge || c.Storage.String() != "File" || c.Discard.String() != "DiscardOld" {
		t.Fatalf("stream config: %+v", c)
	}
	if info.State.Consumers != 0 {
		t.Fatalf("List left %d consumers behind", info.State.Consumers)
	}
}

// TestAuditReconcile: versions deployed through the admin API whose audit entries were lost (the node
// stopped between storing the version and recording it) get entries from their records; versions
// deployed from the stack file, and those already recorded, get none; reconciling twice adds nothing.
func TestAuditReconcile(t *testing.T) {
	ctx := t.Context()
	js := newJetStream(t)
	reg, err := functions.OpenRegistry(ctx, js, functions.RegistryConfig{Stack: "t", SecretKey: bytes.Repeat([]byte{7}, functions.SecretKeySize)})
	if err != nil {
		t.Fatal(err)
	}
	a, err := OpenAudit(ctx, js, "t")
	if err != nil {
		t.Fatal(err)
	}
	publish := func(name, content string, opts functions.PublishOptions) functions.VersionRecord {
		t.Helper()
		raw := bundle(t, name, content)
		b, err := functions.ReadBundle(bytes.NewReader(raw), int64(len(raw)), functions.BundleLimits{})
		if err != nil {
			t.Fatal(err)
		}
		v, _, err := reg.Publish(ctx, b, opts)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	publish("hello", "1", functions.PublishOptions{})                                     // from the stack file
	publish("hello", "2", functions.PublishOptions{By: "ci", From: "10.0.0.7"})           // its entry lost
	v3 := publish("hello", "3", functions.PublishOptions{By: "admin", From: "127.0.0.1"}) // recorded
	if err := a.Record(ctx, adminapi.AuditEntry{Time: v3.CreatedAt, Token: "admin", Action: ActionFunctionDeploy, Target: "hello:3"}); err != nil {
		t.Fatal(err)
	}
	added, err := a.Reconcile(ctx, reg)
	if err != nil || added != 1 {
		t.Fatalf("Reconcile added %d (%v), want 1", added, err)
	}
	list, err := a.List(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	last := list[len(list)-1]
	if len(list) != 2 || last.Target != "hello:2" || last.Token != "ci" || last.Address != "10.0.0.7" || !strings.Contains(last.Detail, "recorded at start") {
		t.Fatalf("log after reconciling: %+v", list)
	}
	if added, err := a.Reconcile(ctx, reg); err != nil || added != 0 {
		t.Fatalf("reconciling again added %d (%v)", added, err)
	}
}
