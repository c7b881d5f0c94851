package cli

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Connections of the fake admin API: two of API chat, one of API feed.
const (
	fakeConnA = "nodeAAAA0123456789abcdef"
	fakeConnB = "nodeBBBB0123456789abcdef"
	fakeConnC = "nodeAAAAzyxwvutsrqponmlk"
)

func fakeConnection(id, api string, connected time.Time, userAgent string) map[string]any {
	return map[string]any{"id": id, "api": api, "stage": "prod", "connectedAt": connected, "lastActiveAt": connected.Add(time.Minute),
		"sourceIp": "192.0.2.7", "userAgent": userAgent}
}

// newFakeConnectionAdmin serves the admin API's connection endpoints as the contract describes them:
// connections fakeConnA to fakeConnC exist, any other id is gone; a post of "slow" answers 429.
func newFakeConnectionAdmin(t *testing.T) *fakeAdmin {
	t.Helper()
	f := &fakeAdmin{t: t}
	known := map[string]map[string]any{
		fakeConnB: fakeConnection(fakeConnB, "chat", fakeCreated, "wscat/5"),
		fakeConnA: fakeConnection(fakeConnA, "chat", fakeUpdated, "Mozilla/5.0 (X11;\tLinux)"),
		fakeConnC: fakeConnection(fakeConnC, "feed", fakeUpdated.Add(time.Second), ""),
	}
	gone := func(w http.ResponseWriter, r *http.Request) bool {
		if known[r.PathValue("id")] == nil {
			writeJSON(w, 410, map[string]string{"message": fmt.Sprintf("connection %s is gone: it closed, or never opened", r.PathValue("id"))})
			return true
		}
		return false
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /admin/v1/connections", func(w http.ResponseWriter, r *http.Request) {
		list := []any{}
		for _, id := range []string{fakeConnB, fakeConnA, fakeConnC} {
			if api := r.URL.Query().Get("api"); api == "" || known[id]["api"] == api {
				list = append(list, known[id])
			}
		}
		writeJSON(w, 200, map[string]any{"connections": list})
	})
	mux.HandleFunc("GET /admin/v1/connections/{id}", func(w http.ResponseWriter, r *http.Request) {
		if !gone(w, r) {
			writeJSON(w, 200, known[r.PathValue("id")])
		}
	})
	mux.HandleFunc("POST /admin/v1/connections/{id}", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		switch {
		case gone(w, r):
		case len(body) > 128<<10:
			writeJSON(w, 413, map[string]string{"message": "the message is over the limit of 131072 bytes (128 KiB)"})
		case string(body) == "slow":
			writeJSON(w, 429, map[string]string{"message": fmt.Sprintf("connection %s was not reading its messages (its send queue was full), and was disconnected", r.PathValue("id"))})
		default:
			w.WriteHeader(204)
		}
	})
	mux.HandleFunc("DELETE /admin/v1/connections/{id}", func(w http.ResponseWriter, r *http.Request) {
		if !gone(w, r) {
			w.WriteHeader(204)
		}
	})
	f.serve(t, mux)
	return f
}

// connectionTableWant is the table connections ls prints for rows, each ID, API, then the fake's
// fields.
func connectionTableWant(rows ...[]string) string {
	var buf bytes.Buffer
	t := newTable(&buf, "ID", "API", "STAGE", "CONNECTED", "LAST ACTIVE", "SOURCE IP", "USER AGENT")
	for _, r := range rows {
		cells := make([]any, len(r))
		for i, c := range r {
			cells[i] = c
		}
		t.row(cells...)
	}
	t.flush()
	return buf.String()
}

func TestCLIConnectionsLs(t *testing.T) {
	f := newFakeConnectionAdmin(t)
	c, u, u1 := fakeCreated, fakeUpdated, fakeUpdated.Add(time.Second)
	m := time.Minute
	rowB := []string{fakeConnB, "chat", "prod", localTime(c), localTime(c.Add(m)), "192.0.2.7", "wscat/5"}
	rowA := []string{fakeConnA, "chat", "prod", localTime(u), localTime(u.Add(m)), "192.0.2.7", "Mozilla/5.0 (X11; Linux)"}
	rowC := []string{fakeConnC, "feed", "prod", localTime(u1), localTime(u1.Add(m)), "192.0.2.7", "-"}

	code, out, errOut := f.runCLI(t, "", "connections", "ls")
	if want := connectionTableWant(rowB, rowA, rowC); code != 0 || out != want {
		t.Fatalf("exit %d: %s\n%s\nwant:\n%s", code, errOut, out, want)
	}
	// The columns line up: every row's API starts where the header's does.
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	col := strings.Index(lines[0], "API")
	for _, l := range lines[1:] {
		if !strings.HasPrefix(l[col:], "chat") && !strings.HasPrefix(l[col:], "feed") {
			t.Fatalf("misaligned:\n%s", out)
		}
	}
	if r := f.take()[0]; r.method != "GET" || r.path != "/admin/v1/connections" || len(r.query) != 0 {
		t.Fatalf("request: %s %s %v", r.method, r.path, r.query)
	}

	code, out, errOut = f.runCLI(t, "", "connections", "ls", "--api", "feed")
	if want := connectionTableWant(rowC); code != 0 || out != want {
		t.Fatalf("--api feed: exit %d: %s\n%s\nwant:\n%s", code, errOut, out, want)
	}
	if r := f.take()[0]; r.path != "/admin/v1/connections" || r.query.Get("api") != "feed" {
		t.Fatalf("request: %s %v", r.path, r.query)
	}

	code, out, errOut = f.runCLI(t, "", "connections", "ls", "--api", "none", "--json")
	if code != 0 || out != "{\"connections\":[]}\n" {
		t.Fatalf("--json: exit %d: %q %s", code, out, errOut)
	}
}

func TestCLIConnectionsGet(t *testing.T) {
	f := newFakeConnectionAdmin(t)
	code, out, errOut := f.runCLI(t, "", "connections", "get", fakeConnB)
	want := connectionTableWant([]string{fakeConnB, "chat", "prod", localTime(fakeCreated), localTime(fakeCreated.Add(time.Minute)), "192.0.2.7", "wscat/5"})
	if code != 0 || out != want {
		t.Fatalf("exit %d: %s\n%s\nwant:\n%s", code, errOut, out, want)
	}
	if r := f.take()[0]; r.method != "GET" || r.path != "/admin/v1/connections/"+fakeConnB {
		t.Fatalf("request: %s %s", r.method, r.path)
	}

	code, out, errOut = f.runCLI(t, "", "connections", "get", fakeConnB, "--json")
	if code != 0 || !strings.HasPrefix(out, `{"api":"chat","connectedAt":"2026-11-25T10:00:00Z","id":"`+fakeConnB+`"`) || !strings.HasSuffix(out, "}\n") {
		t.Fatalf("--json: exit %d: %q %s", code, out, errOut)
	}

	code, out, errOut = f.runCLI(t, "", "connections", "get", "nodeAAAAgonegonegonegone")
	if code != 1 || out != "" || errOut != "gatehouse: connection nodeAAAAgonegonegonegone is gone: it closed, or never opened (see `gatehouse connections ls`)\n" {
		t.Fatalf("gone: exit %d: %q %q", code, out, errOut)
	}
	// An id that needs escaping stays one path element.
	code, _, errOut = f.runCLI(t, "", "connections", "get", "a/b c")
	if r := f.take(); code != 1 || !strings.Contains(errOut, "connection a/b c is gone") || r[len(r)-1].path != "/admin/v1/connections/a/b c" {
		t.Fatalf("escaped id: exit %d: %s", code, errOut)
	}
}

func TestCLIConnectionsPost(t *testing.T) {
	f := newFakeConnectionAdmin(t)
	code, out, errOut := f.runCLI(t, "", "connections", "post", fakeConnA, "--payload", `{"text":"hi"}`)
	if code != 0 || out != "sent 13 bytes to connection "+fakeConnA+"\n" {
		t.Fatalf("exit %d: %q %s", code, out, errOut)
	}
	if r := f.take()[0]; r.method != "POST" || r.path != "/admin/v1/connections/"+fakeConnA || string(r.body) != `{"text":"hi"}` ||
		r.contentType != "text/plain; charset=utf-8" {
		t.Fatalf("request: %s %s %q %s", r.method, r.path, r.body, r.contentType)
	}

	// From a file: sent as it is, binary included.
	binary := []byte{0, 1, 2, 0xff, 0xfe}
	path := filepath.Join(t.TempDir(), "msg.bin")
	if err := os.WriteFile(path, binary, 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errOut = f.runCLI(t, "", "connections", "post", fakeConnA, "-p", "@"+path)
	if r := f.take()[0]; code != 0 || out != "sent 5 bytes to connection "+fakeConnA+"\n" || !bytes.Equal(r.body, binary) ||
		r.contentType != "application/octet-stream" {
		t.Fatalf("@file: exit %d: %q %s; sent %q as %s", code, out, errOut, r.body, r.contentType)
	}

	// From standard input, with --json: nothing printed.
	code, out, errOut = f.runCLI(t, "line one\nline two\n", "connections", "post", fakeConnA, "--payload", "-", "--json")
	if r := f.take()[0]; code != 0 || out != "" || string(r.body) != "line one\nline two\n" {
		t.Fatalf("stdin: exit %d: %q %s; sent %q", code, out, errOut, r.body)
	}

	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"nodeAAAAgonegonegonegone", "-p", "hi"}, "gatehouse: connection nodeAAAAgonegonegonegone is gone: it closed, or never opened (see `gatehouse connections ls`)\n"},
		{[]string{fakeConnA, "-p", "slow"}, "gatehouse: connection " + fakeConnA + " was not reading its messages (its send queue was full), and was disconnected\n"},
		{[]string{fakeConnA}, "gatehouse: no message: give it with --payload TEXT, --payload @FILE or --payload - (standard input)\n"},
		{[]string{fakeConnA, "--data", "hello"}, "gatehouse: no message: give it with --payload TEXT, --payload @FILE or --payload - (standard input); --data names the node's data directory, not the message\n"},
		{[]string{fakeConnA, "-p", strings.Repeat("x", 128<<10+1)}, "gatehouse: the message is 131073 bytes, over the limit of 131072 bytes (128 KiB)\n"},
		{[]string{fakeConnA, "-p", "@" + filepath.Join(t.TempDir(), "missing")}, "gatehouse: reading the message: open "},
	} {
		code, out, errOut := f.runCLI(t, "", append([]string{"connections", "post"}, tt.args...)...)
		if code != 1 || out != "" || !strings.HasPrefix(errOut, tt.want) {
			t.Fatalf("%.60q: exit %d: %q %q, want %q", tt.args, code, out, errOut, tt.want)
		}
	}
	// Refused locally: nothing was sent.
	if r := f.take(); len(r) != 2 {
		t.Fatalf("%d requests, want 2 (the gone and slow connections)", len(r))
	}
	// The limit is 128 KiB exactly.
	code, _, errOut = f.runCLI(t, "", "connections", "post", fakeConnA, "-p", strings.Repeat("x", 128<<10))
	if r := f.take(); code != 0 || len(r) != 1 || len(r[0].body) != 128<<10 {
		t.Fatalf("128 KiB: exit %d: %s", code, errOut)
	}
}

func TestCLIConnectionsRm(t *testing.T) {
	f := newFakeConnectionAdmin(t)
	code, out, errOut := f.runCLI(t, "", "connections", "rm", fakeConnC)
	if code != 0 || out != "closed connection "+fakeConnC+"\n" {
		t.Fatalf("exit %d: %q %s", code, out, errOut)
	}
	if r := f.take()[0]; r.method != "DELETE" || r.path != "/admin/v1/connections/"+fakeConnC || len(r.body) != 0 {
		t.Fatalf("request: %s %s", r.method, r.path)
	}
	code, out, errOut = f.runCLI(t, "", "connections", "rm", fakeConnC, "--json")
	if code != 0 || out != "" {
		t.Fatalf("--json: exit %d: %q %s", code, out, errOut)
	}
	code, _, errOut = f.runCLI(t, "", "connections", "rm", "nodeAAAAgonegonegonegone")
	if code != 1 || errOut != "gatehouse: connection nodeAAAAgonegonegonegone is gone: it closed, or never opened (see `gatehouse connections ls`)\n" {
		t.Fatalf("gone: exit %d: %s", code, errOut)
	}
}

func TestCLIConnectionsErrors(t *testing.T) {
	f := newFakeConnectionAdmin(t)
	code, out, errOut := f.runCLI(t, "", "connections", "ls", "--token", "gh.admin.wrong")
	if code != 1 || out != "" || !strings.Contains(errOut, "gatehouse: the node refused the admin token: check --token") {
		t.Fatalf("401: exit %d: %q %s", code, out, errOut)
	}
	code, _, errOut = f.runCLI(t, "", "connections", "get", fakeConnA, "--token", "gh.admin.wrong")
	if code != 1 || !strings.Contains(errOut, "the node refused the admin token") {
		t.Fatalf("401 on get: exit %d: %s", code, errOut)
	}

	// A node without the connection endpoints.
	old := newFakeAdmin(t)
	code, _, errOut = old.runCLI(t, "", "connections", "ls")
	if code != 1 || !strings.Contains(errOut, "the node does not serve the connection endpoints") {
		t.Fatalf("old node: exit %d: %s", code, errOut)
	}

	dir := t.TempDir()
	for _, args := range [][]string{
		{"connections", "ls"}, {"connections", "get", fakeConnA}, {"connections", "post", fakeConnA, "-p", "hi"}, {"connections", "rm", fakeConnA},
	} {
		code, _, errOut := runMain(t, "", append(args, "--data", dir)...)
		if code != 1 || !strings.HasPrefix(errOut, "gatehouse: no running node found in "+dir+" (start one with `gatehouse up`, or pass --admin)") {
			t.Fatalf("%v: exit %d: %s", args, code, errOut)
		}
	}
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"connections", "get"}, "accepts 1 arg(s), received 0"},
		{[]string{"connections", "rm", "a", "b"}, "accepts 1 arg(s), received 2"},
		{[]string{"connections", "post"}, "accepts 1 arg(s), received 0"},
		{[]string{"connections", "ls", "x"}, `unknown command "x"`},
	} {
		if code, _, errOut := runMain(t, "", tt.args...); code != 1 || !strings.Contains(errOut, tt.want) {
			t.Fatalf("%v: exit %d: %s", tt.args, code, errOut)
		}
	}
}
