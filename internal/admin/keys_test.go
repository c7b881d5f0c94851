package admin

import (
	"encoding/json"
	"strings"
	"testing"

	"gatehouse.dev/gatehouse/internal/adminapi"
)

func TestAPIKeys(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	var created struct{ Name, Plan, Key string }
	h.want("POST", "/admin/v1/keys", []byte(`{"name":"partner","plan":"basic"}`), 201, &created)
	if created.Name != "partner" || created.Plan != "basic" || !strings.HasPrefix(created.Key, "ghk_") {
		t.Fatalf("created %+v", created)
	}
	h.wantError("POST", "/admin/v1/keys", []byte(`{"name":"partner","plan":"basic"}`), 409, "exists")
	h.wantError("POST", "/admin/v1/keys", []byte(`{"name":"other","plan":"gold"}`), 400, `no usage plan named "gold"`)
	h.wantError("POST", "/admin/v1/keys", []byte(`{"name":"bad name","plan":"basic"}`), 400, "key names")
	h.wantError("POST", "/admin/v1/keys", []byte(`not json`), 400, "must be JSON")
	var list struct{ Keys []adminapi.KeyView }
	body := h.want("GET", "/admin/v1/keys", nil, 200, &list)
	if len(list.Keys) != 1 || list.Keys[0].Name != "partner" || strings.Contains(string(body), created.Key) {
		t.Fatalf("list %s", body)
	}
	h.want("DELETE", "/admin/v1/keys/partner", nil, 204, nil)
	h.wantError("DELETE", "/admin/v1/keys/partner", nil, 404, "no API key named partner")
	if status, _, _ := h.doWith("", "GET", "/admin/v1/keys", nil); status != 401 {
		t.Fatalf("without a token: %d", status)
	}
	var entries struct{ Entries []adminapi.AuditEntry }
	h.want("GET", "/admin/v1/audit", nil, 200, &entries)
	var actions []string
	for _, e := range entries.Entries {
		actions = append(actions, e.Action)
	}
	if got, _ := json.Marshal(actions); !strings.Contains(string(got), `"key.create","key.delete"`) {
		t.Fatalf("audit %s", got)
	}
	if strings.Contains(h.logs.String(), created.Key) {
		t.Fatal("the key reached the log")
	}
}
