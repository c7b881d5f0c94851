package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"

	"gatehouse.dev/gatehouse/internal/adminapi"
	"gatehouse.dev/gatehouse/internal/apistore"
)

// apisServer is an admin server with an API store and a reload that answers what reload returns.
func apisServer(t *testing.T, reload func(context.Context) (adminapi.ReloadView, error)) (*harness, *apistore.Store) {
	t.Helper()
	h := newHarness(t, harnessOptions{})
	store, err := apistore.Open(t.Context(), newJetStream(t), "t")
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewServer(Config{Tokens: h.tokens, Health: func() (int, any) { return 200, nil }, Registry: h.reg, APIs: store, Reload: reload, Audit: h.audit})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(ln)
	t.Cleanup(func() { s.Shutdown(context.Background()) })
	h.base = "http://" + ln.Addr().String()
	return h, store
}

func TestAPIEndpoints(t *testing.T) {
	h, store := apisServer(t, nil)
	// With no function deployed, a route's target names nothing: refused with the problem placed.
	yamlDef := []byte("type: http\nroutes:\n  GET /x: {function: hello}\n")
	status, _, body := h.do("PUT", "/admin/v1/apis/web", yamlDef)
	var pv adminapi.ProblemsView
	if json.Unmarshal(body, &pv); status != 400 || len(pv.Problems) != 1 || pv.Problems[0].Line != 3 || !strings.Contains(pv.Problems[0].Message, `no function named "hello"`) {
		t.Fatalf("PUT with an unknown target: %d %s", status, body)
	}
	h.want("POST", "/admin/v1/functions", bundle(t, "hello", "one"), 201, nil)
	status, _, body = h.do("PUT", "/admin/v1/apis/web", yamlDef) // YAML is read as the stack file reads it
	var v adminapi.APIView
	if json.Unmarshal(body, &v); status != 201 || v.ManagedBy != apistore.ManagedByAdmin || v.Source != "admin" || v.API.Routes[0].Integration.Target != "hello" {
		t.Fatalf("PUT: %d %s", status, body)
	}
	if r, err := store.Get(t.Context(), "web"); err != nil || r.Revision != v.Revision || r.ID != v.ID {
		t.Fatalf("stored %+v %v", r, err)
	}
	status, _, body = h.do("GET", "/admin/v1/apis", nil)
	var list adminapi.APIList
	if json.Unmarshal(body, &list); status != 200 || len(list.APIs) != 1 || list.APIs[0].Name != "web" {
		t.Fatalf("GET /apis: %d %s", status, body)
	}
	huge := []byte(`{"type":"http","routes":{"GET /x":{"function":"hello"}},"host":"` + strings.Repeat("a", 1<<20) + `"}`)
	if status, _, body := h.do("PUT", "/admin/v1/apis/web", huge); status != 413 {
		t.Errorf("PUT of 1 MiB: %d %.200s", status, body)
	}
	if status, _, body := h.do("PUT", "/admin/v1/apis/bad%20name", yamlDef); status != 400 || !strings.Contains(string(body), "not a valid API name") {
		t.Errorf("PUT of a bad name: %d %s", status, body)
	}
	req, _ := http.NewRequest("PUT", h.base+"/admin/v1/apis/web", strings.NewReader(string(yamlDef)))
	req.Header.Set("Authorization", "Bearer "+h.token)
	req.Header.Set("If-Match", "soon")
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 400 {
		t.Errorf("If-Match that is not a revision: %v %v", resp, err)
	}
	if status, _, _ := h.doWith("", "GET", "/admin/v1/apis/web", nil); status != 401 {
		t.Errorf("GET without a token: %d", status)
	}
	if status, _, body := h.do("DELETE", "/admin/v1/apis/nosuch", nil); status != 404 {
		t.Errorf("DELETE of a missing API: %d %s", status, body)
	}
	if status, _, body := h.do("DELETE", "/admin/v1/apis/web", nil); status != 204 {
		t.Errorf("DELETE: %d %s", status, body)
	}
	if _, err := store.Get(t.Context(), "web"); !errors.Is(err, apistore.ErrNotFound) {
		t.Errorf("after DELETE: %v", err)
	}
	if status, _, body := h.do("POST", "/admin/v1/reload", nil); status != 503 {
		t.Errorf("reload without a stack file: %d %s", status, body)
	}
}

func TestReloadEndpoint(t *testing.T) {
	calls := 0
	h, _ := apisServer(t, func(context.Context) (adminapi.ReloadView, error) {
		calls++
		if calls == 2 {
			return adminapi.ReloadView{}, fmt.Errorf("%w: gatehouse.yaml:3:5: functions.x.memory: 1 is out of range", ErrReloadRefused)
		}
		return adminapi.ReloadView{File: "gatehouse.yaml", APIs: adminapi.APIChanges{Created: []string{"web"}}}, nil
	})
	status, _, body := h.do("POST", "/admin/v1/reload", nil)
	var rep adminapi.ReloadView
	if json.Unmarshal(body, &rep); status != 200 || rep.APIs.Created[0] != "web" {
		t.Fatalf("reload: %d %s", status, body)
	}
	status, _, body = h.do("POST", "/admin/v1/reload", nil)
	if status != 400 || !strings.Contains(string(body), `"gatehouse.yaml:3:5: functions.x.memory: 1 is out of range"`) {
		t.Fatalf("refused reload: %d %s", status, body)
	}
	if s := rep.Summary(); !strings.Contains(s, "APIs created:") || !strings.Contains(s, "web") {
		t.Errorf("summary: %q", s)
	}
}
