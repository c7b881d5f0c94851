package app

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gatehouse.dev/gatehouse/internal/adminapi"
)

// apiDef is an HTTP API at mount whose routes all run wsecho, which answers with its event.
func apiDef(mount string, routes ...string) string {
	var rs []string
	for _, r := range routes {
		rs = append(rs, fmt.Sprintf("%q: {\"function\": \"wsecho\"}", r))
	}
	return fmt.Sprintf(`{"type": "http", "mount": %q, "routes": {%s}}`, mount, strings.Join(rs, ", "))
}

func putAPI(t *testing.T, n *Node, token, name, def string, header ...string) (int, http.Header, string) {
	t.Helper()
	req := newRequest(t, "PUT", "http://"+n.AdminAddr()+"/admin/v1/apis/"+name, strings.NewReader(def))
	req.Header.Set("Authorization", "Bearer "+token)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

// routeKeyServed asks the gateway for path and returns the route key the function saw (""
// when the answer is not the function's).
func routeKeyServed(t *testing.T, n *Node, path string) (int, string) {
	t.Helper()
	r := do(t, newRequest(t, "GET", "http://"+n.GatewayAddr()+path, nil))
	var a struct {
		RouteKey string `json:"routeKey"`
	}
	json.Unmarshal(r.body, &a)
	return r.status, a.RouteKey
}

// An API applied through the admin API serves as soon as the PUT answers, without a restart; an
// invalid one is refused whole with every problem; a WebSocket connection of another API stays open
// across the changes; and every change is in the audit log.
func TestAPIsChangeWhileTheNodeRuns(t *testing.T) {
	n := startNode(t, "testdata/ws-stack.yaml", newDataDir(t))
	t.Cleanup(func() { n.Stop(context.Background()) })
	token := adminToken(t, n)
	c := wsDial(t, n, "/chat", nil)
	id := wsID(t, c)

	if status, _ := routeKeyServed(t, n, "/extra/hello"); status != 404 {
		t.Fatalf("GET /extra/hello before the API exists: %d", status)
	}
	status, header, body := putAPI(t, n, token, "extra", apiDef("/extra", "GET /hello"))
	if status != 201 {
		t.Fatalf("PUT extra: %d %s", status, body)
	}
	var v adminapi.APIView
	if err := json.Unmarshal([]byte(body), &v); err != nil || v.Name != "extra" || v.ManagedBy != "admin-api" || len(v.ID) != 10 || v.Revision == 0 {
		t.Fatalf("PUT extra answered %s (%v)", body, err)
	}
	if header.Get("ETag") != fmt.Sprintf("%q", fmt.Sprint(v.Revision)) {
		t.Errorf("ETag %q, revision %d", header.Get("ETag"), v.Revision)
	}
	// Served at once: the PUT answered after this node's gateway applied it.
	if status, key := routeKeyServed(t, n, "/extra/hello"); status != 200 || key != "GET /hello" {
		t.Fatalf("GET /extra/hello after PUT: %d %q", status, key)
	}
	// What GET returns can be applied again as it is: nothing changes.
	status, _, got := adminDo(t, n, "GET", "/admin/v1/apis/extra", token, "")
	if status != 200 {
		t.Fatalf("GET extra: %d %s", status, got)
	}
	var gv adminapi.APIView
	json.Unmarshal([]byte(got), &gv)
	again, _ := json.Marshal(gv.API)
	if status, _, body := putAPI(t, n, token, "extra", string(again)); status != 200 || !strings.Contains(body, fmt.Sprintf(`"revision":%d`, v.Revision)) {
		t.Fatalf("PUT of what GET returned: %d %s", status, body)
	}

	// An invalid definition is refused whole, with every problem, and changes nothing.
	bad := `{"type": "http", "mount": "/extra", "routes": {"GET /hello": {"function": "nosuch"}, "GET /x/:id": {"function": "wsecho"}, "GET /new": {"function": "wsecho"}}, "stages": {"$default": {"throttle": {"rate": 0, "burst": 1}}}}`
	status, _, body = putAPI(t, n, token, "extra", bad)
	var pv adminapi.ProblemsView
	if err := json.Unmarshal([]byte(body), &pv); status != 400 || err != nil || len(pv.Problems) != 3 {
		t.Fatalf("PUT of an invalid definition: %d %s", status, body)
	}
	for i, want := range []string{`stages["$default"].throttle.rate`, `routes["GET /hello"].function`, `routes["GET /x/:id"]`} {
		if p := pv.Problems[i]; p.Path != want || p.Line != 1 || p.Column == 0 {
			t.Errorf("problem %d is %+v, want one at %s placed in the body", i, p, want)
		}
	}
	if status, _ := routeKeyServed(t, n, "/extra/new"); status != 404 {
		t.Errorf("a route of the refused definition is served: %d", status)
	}
	if status, key := routeKeyServed(t, n, "/extra/hello"); status != 200 || key != "GET /hello" {
		t.Errorf("GET /extra/hello after the refused change: %d %q", status, key)
	}
	// A change based on an old revision is refused.
	status, _, body = putAPI(t, n, token, "extra", apiDef("/extra", "GET /hello", "GET /new"), "If-Match", fmt.Sprintf(`"%d"`, v.Revision+100))
	if status != 412 {
		t.Errorf("PUT with a stale If-Match: %d %s", status, body)
	}
	// Two APIs cannot share a mount.
	if status, _, body := putAPI(t, n, token, "clash", apiDef("/extra", "GET /other")); status != 409 || !strings.Contains(body, "extra") {
		t.Errorf("PUT of an API at a taken mount: %d %s", status, body)
	}

	status, _, body = putAPI(t, n, token, "extra", apiDef("/extra", "GET /hello", "GET /new"), "If-Match", fmt.Sprint(v.Revision))
	if status != 200 {
		t.Fatalf("PUT with the current If-Match: %d %s", status, body)
	}
	if status, key := routeKeyServed(t, n, "/extra/new"); status != 200 || key != "GET /new" {
		t.Fatalf("GET /extra/new after the change: %d %q", status, key)
	}
	if status, _, body := adminDo(t, n, "DELETE", "/admin/v1/apis/extra", token, ""); status != 204 {
		t.Fatalf("DELETE extra: %d %s", status, body)
	}
	if status, _ := routeKeyServed(t, n, "/extra/hello"); status != 404 {
		t.Errorf("GET /extra/hello after DELETE: %d", status)
	}
	if status, _, body := adminDo(t, n, "GET", "/admin/v1/apis/chta", token, ""); status != 404 || !strings.Contains(body, `no API named \"chta\" (did you mean \"chat\"?)`) {
		t.Errorf("GET of a missing API: %d %s", status, body)
	}

	// The WebSocket connection of the API nobody changed is still open, and still answered.
	if a := wsAsk(t, c, `{"action":"echo"}`); a.ConnectionID != id || a.RouteKey != "echo" {
		t.Errorf("after the changes the connection answers %+v", a)
	}
	status, _, body = adminDo(t, n, "GET", "/admin/v1/audit", token, "")
	if status != 200 || strings.Count(body, `"action":"api.apply"`) != 2 || strings.Count(body, `"action":"api.delete"`) != 1 {
		t.Errorf("audit log: %d %s", status, body)
	}
}

// Requests keep being answered while the API they use changes: none fails.
func TestAPIChangesUnderLoad(t *testing.T) {
	n := startNode(t, "testdata/ws-stack.yaml", newDataDir(t))
	t.Cleanup(func() { n.Stop(context.Background()) })
	token := adminToken(t, n)
	if status, _, body := putAPI(t, n, token, "busy", apiDef("/busy", "GET /hello")); status != 201 {
		t.Fatalf("PUT busy: %d %s", status, body)
	}
	ctx, cancel := context.WithCancel(t.Context())
	var sent, failed atomic.Int64
	var firstFailure atomic.Value
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			hc := &http.Client{Timeout: 10 * time.Second}
			for ctx.Err() == nil {
				resp, err := hc.Get("http://" + n.GatewayAddr() + "/busy/hello")
				if ctx.Err() != nil {
					return
				}
				sent.Add(1)
				if err != nil || resp.StatusCode != 200 {
					failed.Add(1)
					firstFailure.CompareAndSwap(nil, fmt.Sprint(err, resp))
				}
				if resp != nil {
					resp.Body.Close()
				}
			}
		}()
	}
	const changes = 6
	var during int64
	for i := range changes {
		start := sent.Load()
		routes := []string{"GET /hello"}
		for j := range i + 1 {
			routes = append(routes, fmt.Sprintf("GET /r%d", j))
		}
		if status, _, body := putAPI(t, n, token, "busy", apiDef("/busy", routes...)); status != 200 {
			t.Fatalf("change %d: %d %s", i, status, body)
		}
		// Wait for some requests to go through the new definition before the next change.
		for deadline := time.Now().Add(5 * time.Second); sent.Load() < start+20 && time.Now().Before(deadline); {
			time.Sleep(5 * time.Millisecond)
		}
		during += sent.Load() - start
	}
	cancel()
	wg.Wait()
	if during < changes*20 {
		t.Fatalf("only %d requests were made during %d changes: the load did not overlap the changes", during, changes)
	}
	if f := failed.Load(); f != 0 {
		t.Fatalf("%d of %d requests failed across %d API changes; first: %v", f, sent.Load(), changes, firstFailure.Load())
	}
	if status, key := routeKeyServed(t, n, fmt.Sprintf("/busy/r%d", changes-1)); status != 200 || key != fmt.Sprintf("GET /r%d", changes-1) {
		t.Errorf("the last change is not served: %d %q", status, key)
	}
	t.Logf("%d requests, none failed, across %d changes", sent.Load(), changes)
}
