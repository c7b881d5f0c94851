package app

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"gatehouse.dev/gatehouse/internal/adminapi"
	"gatehouse.dev/gatehouse/internal/apistore"
	"gatehouse.dev/gatehouse/internal/spec"
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
	// And at its id, whatever its mount.
	if status, key := routeKeyServed(t, n, "/"+v.ID+"/hello"); status != 200 || key != "GET /hello" {
		t.Fatalf("GET /%s/hello: %d %q", v.ID, status, key)
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
	// A change of the connection's own API reaches the open connection: a route added is routed.
	if a := wsAsk(t, c, `{"action":"added"}`); a.RouteKey != "$default" {
		t.Fatalf("before the route is added, a message for it goes to %q", a.RouteKey)
	}
	status, _, got = adminDo(t, n, "GET", "/admin/v1/apis/chat", token, "")
	var chat adminapi.APIView
	if err := json.Unmarshal([]byte(got), &chat); status != 200 || err != nil {
		t.Fatalf("GET chat: %d %s", status, got)
	}
	added := chat.API
	added.Routes = append(added.Routes, spec.Route{Key: "added", RouteResponse: true, Authorization: spec.Authorization{Type: spec.AuthNone},
		Integration: spec.Integration{Type: spec.IntegrationFunction, Target: "wsecho", Timeout: spec.Duration(5 * time.Second)}})
	def, _ := json.Marshal(added)
	if status, _, body := putAPI(t, n, token, "chat", string(def)); status != 200 {
		t.Fatalf("PUT chat: %d %s", status, body)
	}
	if a := wsAsk(t, c, `{"action":"added"}`); a.ConnectionID != id || a.RouteKey != "added" {
		t.Errorf("after the route was added, the open connection routes a message for it to %q", a.RouteKey)
	}
	// A connection of an API that is deleted is closed with 1001.
	sleepy := wsDial(t, n, "/sleepy", nil)
	wsSend(t, sleepy, "hello")
	if status, _, body := adminDo(t, n, "DELETE", "/admin/v1/apis/sleepy", token, ""); status != 204 {
		t.Fatalf("DELETE sleepy: %d %s", status, body)
	}
	wsWantClose(t, sleepy, 1001)
	status, _, body = adminDo(t, n, "GET", "/admin/v1/audit", token, "")
	if status != 200 || strings.Count(body, `"action":"api.apply"`) != 3 || strings.Count(body, `"action":"api.delete"`) != 2 {
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

// reloadStack writes a stack file of HTTP APIs at path: each API's routes run wsecho.
func reloadStack(t *testing.T, path string, apis map[string][]string, extra string) {
	t.Helper()
	src, err := filepath.Abs("testdata/functions/wsecho")
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "version: 1\nname: reload\nfunctions:\n  wsecho: {source: %q}\napis:\n", src)
	for _, name := range slices.Sorted(maps.Keys(apis)) {
		fmt.Fprintf(&b, "  %s:\n    type: http\n    mount: /%s\n    routes:\n", name, name)
		for _, r := range apis[name] {
			fmt.Fprintf(&b, "      %s: {function: %s}\n", r, extra+"wsecho")
		}
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

func reload(t *testing.T, n *Node, token string) (int, adminapi.ReloadView, string) {
	t.Helper()
	status, _, body := adminDo(t, n, "POST", "/admin/v1/reload", token, "")
	var v adminapi.ReloadView
	if status == 200 {
		if err := json.Unmarshal([]byte(body), &v); err != nil {
			t.Fatalf("reload answered %s: %v", body, err)
		}
	}
	return status, v, body
}

// A reload applies what changed in the stack file, keeps what was changed through the admin API
// since (drift) until the file changes it, and refuses a broken file whole.
func TestReloadAppliesStackFileChanges(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gatehouse.yaml")
	reloadStack(t, path, map[string][]string{"web": {"GET /a"}, "side": {"GET /s"}}, "")
	n := startNode(t, path, newDataDir(t))
	t.Cleanup(func() { n.Stop(context.Background()) })
	token := adminToken(t, n)
	served := func(path string, want int) {
		t.Helper()
		if status, _ := routeKeyServed(t, n, path); status != want {
			t.Errorf("GET %s: %d, want %d", path, status, want)
		}
	}
	served("/web/a", 200)
	if status, _, body := putAPI(t, n, token, "side", apiDef("/side", "GET /s", "GET /t")); status != 200 {
		t.Fatalf("PUT side: %d %s", status, body)
	}

	reloadStack(t, path, map[string][]string{"web": {"GET /a", "GET /b"}, "side": {"GET /s"}, "fresh": {"GET /n"}}, "")
	status, rep, body := reload(t, n, token)
	if status != 200 || !slices.Equal(rep.APIs.Created, []string{"fresh"}) || !slices.Equal(rep.APIs.Updated, []string{"web"}) ||
		!slices.Equal(rep.APIs.Drift, []string{"side"}) || len(rep.APIs.Deleted) != 0 || len(rep.Functions) != 0 {
		t.Fatalf("first reload: %d %s", status, body)
	}
	served("/web/b", 200)
	served("/fresh/n", 200)
	served("/side/t", 200) // the admin API's change stays

	reloadStack(t, path, map[string][]string{"web": {"GET /a", "GET /b"}, "side": {"GET /u"}}, "")
	status, rep, body = reload(t, n, token)
	if status != 200 || !slices.Equal(rep.APIs.Deleted, []string{"fresh"}) || !slices.Equal(rep.APIs.Updated, []string{"side"}) ||
		!slices.Equal(rep.APIs.Replaced, []string{"side"}) || !slices.Equal(rep.APIs.Unchanged, []string{"web"}) {
		t.Fatalf("second reload: %d %s", status, body)
	}
	served("/fresh/n", 404)
	served("/side/t", 404)
	served("/side/u", 200)

	// A file with a problem changes nothing, and says where the problem is.
	reloadStack(t, path, map[string][]string{"web": {"GET /c"}}, "no")
	status, _, body = reload(t, n, token)
	if status != 400 || !strings.Contains(body, "gatehouse.yaml:") || !strings.Contains(body, `no function named \"nowsecho\"`) {
		t.Fatalf("reload of a broken file: %d %s", status, body)
	}
	served("/web/a", 200)
	served("/web/c", 404)
	status, _, body = adminDo(t, n, "GET", "/admin/v1/audit", token, "")
	if status != 200 || strings.Count(body, `"action":"stack.reload"`) != 2 {
		t.Errorf("audit log: %d %s", status, body)
	}

	// The same through the command line.
	reloadStack(t, path, map[string][]string{"web": {"GET /a", "GET /b"}, "side": {"GET /u"}}, "")
	if out := runCLI(t, n, "reload"); !strings.Contains(out, "reloaded "+path) || !strings.Contains(out, "nothing changed") {
		t.Errorf("gatehouse reload:\n%s", out)
	}
	if out := runCLI(t, n, "apis", "ls"); !strings.Contains(out, "web") || !strings.Contains(out, "stack-file") || !strings.Contains(out, apistore.ID("reload", "web")) {
		t.Errorf("gatehouse apis ls:\n%s", out)
	}
	got := runCLI(t, n, "apis", "get", "web")
	dir := t.TempDir()
	webFile := filepath.Join(dir, "web.yaml")
	if err := os.WriteFile(webFile, []byte(got), 0o644); err != nil {
		t.Fatal(err)
	}
	if out := runCLI(t, n, "apis", "apply", "-f", webFile); !strings.Contains(out, "applied API web") {
		t.Errorf("gatehouse apis apply of what get printed:\n%s\nfrom:\n%s", out, got)
	}
	extra := filepath.Join(dir, "extra.yaml")
	os.WriteFile(extra, []byte("type: http\nmount: /extra\nroutes:\n  GET /x: {function: wsecho}\n"), 0o644)
	if out := runCLI(t, n, "apis", "apply", "extra", "-f", extra); !strings.Contains(out, "applied API extra") {
		t.Errorf("gatehouse apis apply extra:\n%s", out)
	}
	served("/extra/x", 200)
	os.WriteFile(extra, []byte("type: http\nmount: /extra\nroutes:\n  GET /x: {function: nosuch}\n"), 0o644)
	if _, errOut, code := cliResult(n, "apis", "apply", "extra", "-f", extra); code == 0 || !strings.Contains(errOut, extra+":4:") || !strings.Contains(errOut, `no function named "nosuch"`) {
		t.Errorf("gatehouse apis apply of a broken definition: exit %d\n%s", code, errOut)
	}
	if out := runCLI(t, n, "apis", "rm", "extra"); !strings.Contains(out, "deleted API extra") {
		t.Errorf("gatehouse apis rm:\n%s", out)
	}
	served("/extra/x", 404)
}

// SIGHUP to `gatehouse up` reloads the stack file, as `gatehouse reload` does.
func TestSIGHUPReloads(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gatehouse.yaml")
	reloadStack(t, path, map[string][]string{"web": {"GET /a"}}, "")
	cmd := cli(t, "up", "-f", path, "--data", newDataDir(t), "--addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0", "--aws-addr", "127.0.0.1:0", "--workers", "1")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr syncBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	lines := bufio.NewScanner(stdout)
	re := regexp.MustCompile(`GET\s+(http://\S+)/web/a\s`)
	var base string
	for lines.Scan() {
		if m := re.FindStringSubmatch(lines.Text()); m != nil {
			base = m[1]
			break
		}
	}
	if base == "" {
		t.Fatalf("no route list in the output; stderr:\n%s", stderr.String())
	}
	var out syncBuffer
	go io.Copy(&out, stdout)
	get := func(p string) int {
		resp, err := client.Get(base + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if s := get("/web/b"); s != 404 {
		t.Fatalf("GET /web/b before the reload: %d", s)
	}
	reloadStack(t, path, map[string][]string{"web": {"GET /a", "GET /b"}}, "")
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the reload is reported", func() bool { return strings.Contains(out.String(), "APIs updated:") })
	if s := get("/web/b"); s != 200 {
		t.Fatalf("GET /web/b after SIGHUP: %d\nstdout:\n%s\nstderr:\n%s", s, out.String(), stderr.String())
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit after SIGTERM: %v\nstderr:\n%s", err, stderr.String())
	}
}
