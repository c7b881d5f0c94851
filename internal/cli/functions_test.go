package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"gatehouse.dev/gatehouse/internal/adminapi"
)

// fakeAdminToken is the only token the fake admin API accepts.
const fakeAdminToken = "gh.admin.test-secret"

// fakeRequest is what the fake admin API received.
type fakeRequest struct {
	method, path, contentType string
	contentLength             int64
	query                     url.Values
	body                      []byte
}

// fakeAdmin implements the admin API contract's function endpoints for the cases the CLI tests use:
// function hello has versions 1 to 3 and alias prod; world has version 1.
type fakeAdmin struct {
	t   *testing.T
	srv *httptest.Server

	mu       sync.Mutex
	requests []fakeRequest
	deployed [][]byte // bundles deployed so far; deploying the newest again leaves it unchanged
}

var (
	fakeCreated = time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	fakeUpdated = time.Date(2026, 11, 25, 10, 5, 0, 0, time.UTC)
	fakeSHA256  = "455ee18f0a76" + strings.Repeat("ab", 26)
)

func newFakeAdmin(t *testing.T) *fakeAdmin {
	t.Helper()
	f := &fakeAdmin{t: t}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /admin/v1/functions", f.deploy)
	mux.HandleFunc("GET /admin/v1/functions", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, map[string]any{"functions": []any{
			map[string]any{"name": "hello", "latestVersion": 3, "createdAt": fakeCreated, "updatedAt": fakeUpdated},
			map[string]any{"name": "world", "latestVersion": 1, "createdAt": fakeCreated, "updatedAt": fakeCreated},
		}})
	})
	mux.HandleFunc("DELETE /admin/v1/functions/{name}", func(w http.ResponseWriter, r *http.Request) {
		if !f.known(w, r) {
			return
		}
		w.WriteHeader(204)
	})
	mux.HandleFunc("GET /admin/v1/functions/{name}/versions", func(w http.ResponseWriter, r *http.Request) {
		if !f.known(w, r) {
			return
		}
		vs := []any{fakeVersion(1, 700, "first"), fakeVersion(2, 5700486, "")}
		writeJSON(w, 200, map[string]any{"versions": vs})
	})
	mux.HandleFunc("GET /admin/v1/functions/{name}/aliases", func(w http.ResponseWriter, r *http.Request) {
		if !f.known(w, r) {
			return
		}
		writeJSON(w, 200, map[string]any{"aliases": []any{
			fakeAlias("latest", 0, 0, 0, "tracks\tthe newest"),
			fakeAlias("prod", 2, 3, 0.1, "canary"),
		}})
	})
	mux.HandleFunc("PUT /admin/v1/functions/{name}/aliases/{alias}", f.putAlias)
	mux.HandleFunc("DELETE /admin/v1/functions/{name}/aliases/{alias}", func(w http.ResponseWriter, r *http.Request) {
		if !f.known(w, r) {
			return
		}
		if r.PathValue("alias") != "prod" {
			writeJSON(w, 404, map[string]string{"message": fmt.Sprintf("function hello has no alias %q", r.PathValue("alias"))})
			return
		}
		w.WriteHeader(204)
	})
	mux.HandleFunc("POST /admin/v1/functions/{name}/invocations", f.invoke)
	mux.HandleFunc("GET /admin/v1/functions/{name}/logs", f.logs)
	mux.HandleFunc("GET /admin/v1/audit", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("limit") != "2" {
			writeJSON(w, 400, map[string]string{"message": "want limit=2 in this test"})
			return
		}
		writeJSON(w, 200, map[string]any{"entries": []any{
			map[string]any{"time": fakeCreated, "token": "admin", "address": "127.0.0.1", "action": "function.deploy", "target": "hello:1", "detail": "sha256 455e…, created"},
			map[string]any{"time": fakeUpdated, "token": "ci", "address": "10.0.0.7", "action": "alias.set", "target": "hello:prod", "detail": "→ 2"},
		}})
	})
	f.serve(t, mux)
	return f
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func fakeVersion(n int, size int64, description string) map[string]any {
	return map[string]any{"function": "hello", "version": n, "moduleSha256": fakeSHA256, "moduleSize": size, "abi": "reactor",
		"memory": 128, "timeout": "3s", "environment": map[string]string{}, "secrets": []string{}, "maxConcurrency": 0,
		"minWarm": 0, "idleTimeout": "5m0s", "description": description, "createdAt": fakeCreated}
}

func fakeAlias(name string, version, additional int, weight float64, description string) map[string]any {
	a := map[string]any{"function": "hello", "name": name, "version": version, "target": fmt.Sprint(version),
		"description": description, "updatedAt": fakeUpdated, "revision": 17}
	if version == 0 {
		a["target"] = "$LATEST"
	}
	if additional != 0 {
		a["additionalVersion"], a["additionalWeight"] = additional, weight
	}
	return a
}

// known answers 404 for any function but hello.
func (f *fakeAdmin) known(w http.ResponseWriter, r *http.Request) bool {
	if r.PathValue("name") != "hello" {
		writeJSON(w, 404, map[string]string{"message": fmt.Sprintf("no function %q: see `gatehouse functions`", r.PathValue("name"))})
		return false
	}
	return true
}

func (f *fakeAdmin) deploy(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	if ct := r.Header.Get("Content-Type"); ct != "application/zip" && ct != "application/octet-stream" {
		writeJSON(w, 400, map[string]string{"message": "want a zip, got " + ct})
		return
	}
	if r.ContentLength != int64(len(body)) {
		writeJSON(w, 400, map[string]string{"message": fmt.Sprintf("Content-Length %d, body %d bytes", r.ContentLength, len(body))})
		return
	}
	f.mu.Lock()
	unchanged := len(f.deployed) > 0 && bytes.Equal(f.deployed[len(f.deployed)-1], body)
	if !unchanged {
		f.deployed = append(f.deployed, body)
	}
	version := 3 + len(f.deployed)
	f.mu.Unlock()
	answer := map[string]any{"function": "hello", "created": !unchanged,
		"version": fakeVersion(version, 5700486, r.URL.Query().Get("description"))}
	if alias := r.URL.Query().Get("alias"); alias != "" {
		answer["alias"] = fakeAlias(alias, version, 0, 0, "")
	}
	status := 201
	if unchanged {
		status = 200
	}
	writeJSON(w, status, answer)
}

func (f *fakeAdmin) putAlias(w http.ResponseWriter, r *http.Request) {
	if !f.known(w, r) {
		return
	}
	if r.Header.Get("Content-Type") != "application/json" {
		writeJSON(w, 400, map[string]string{"message": "want JSON"})
		return
	}
	var req adminapi.AliasRequest
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		writeJSON(w, 400, map[string]string{"message": err.Error()})
		return
	}
	if req.Version > 3 || req.AdditionalVersion > 3 {
		writeJSON(w, 400, map[string]string{"message": "function hello has no version 9"})
		return
	}
	writeJSON(w, 200, fakeAlias(r.PathValue("alias"), req.Version, req.AdditionalVersion, req.AdditionalWeight, req.Description))
}

func (f *fakeAdmin) invoke(w http.ResponseWriter, r *http.Request) {
	if !f.known(w, r) {
		return
	}
	event, _ := io.ReadAll(r.Body)
	version := "3"
	switch q := r.URL.Query().Get("qualifier"); q {
	case "", "$LATEST":
	case "1", "2":
		version = q
	case "prod":
		version = "2"
	default:
		writeJSON(w, 404, map[string]string{"message": fmt.Sprintf("function hello has no version or alias %q", q)})
		return
	}
	w.Header().Set("X-Gatehouse-Executed-Version", version)
	switch string(event) {
	case `{"fail":true}`:
		w.Header().Set("X-Gatehouse-Function-Error", "Unhandled")
		w.Write([]byte(`{"errorType":"FunctionError","errorMessage":"boom"}`))
	case `{"text":true}`:
		w.Write([]byte("plain text"))
	default:
		w.Write(append([]byte(`{"got":`), append(event, '}')...))
	}
}

func (f *fakeAdmin) logs(w http.ResponseWriter, r *http.Request) {
	if r.PathValue("name") == "world" { // a function that has written nothing
		w.Header().Set("Content-Type", "application/x-ndjson")
		return
	}
	if !f.known(w, r) {
		return
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	record := func(n int, stream, message string) {
		fmt.Fprintf(w, `{"time":"2026-11-25T10:05:0%d.123Z","function":"hello","version":3,"requestId":"abcdef1234-%d","stream":%q,"worker":"w1","message":%q}`+"\n",
			n, n, stream, message)
	}
	record(1, "stdout", "hello world")
	w.Write([]byte("\n")) // a keep-alive
	record(2, "stderr", "oops\n")
	if r.URL.Query().Get("follow") != "true" {
		return
	}
	w.(http.Flusher).Flush()
	time.Sleep(20 * time.Millisecond)
	w.Write([]byte("\n"))
	w.(http.Flusher).Flush()
	record(3, "stdout", "later")
	// Returning closes the stream, which ends `logs -f`.
}

// take returns the requests received so far and forgets them.
func (f *fakeAdmin) take() []fakeRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	r := f.requests
	f.requests = nil
	return r
}

// runCLI runs the command line with --admin and --token for the fake (unless noAuth), stdin as the
// standard input when not empty, and returns the exit code and output.
func (f *fakeAdmin) runCLI(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	args = append(args, "--admin", f.srv.URL)
	if !slicesContains(args, "--token") {
		args = append(args, "--token", fakeAdminToken)
	}
	return runMain(t, stdin, args...)
}

func slicesContains(s []string, v string) bool {
	for _, e := range s {
		if e == v {
			return true
		}
	}
	return false
}

func runMain(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	if stdin != "" {
		path := filepath.Join(t.TempDir(), "stdin")
		if err := os.WriteFile(path, []byte(stdin), 0o644); err != nil {
			t.Fatal(err)
		}
		in, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		old := os.Stdin
		os.Stdin = in
		defer func() { os.Stdin = old; in.Close() }()
	}
	var stdout, stderr bytes.Buffer
	code := Run(NewRoot(&stdout, &stderr), args, &stderr)
	return code, stdout.String(), stderr.String()
}

func localTime(t time.Time) string { return t.Local().Format(time.RFC3339) }

func TestCLIDeployBundle(t *testing.T) {
	f := newFakeAdmin(t)
	bundle := bytes.Repeat([]byte("PK\x03\x04 not really a zip "), 40000)
	path := filepath.Join(t.TempDir(), "hello.zip")
	if err := os.WriteFile(path, bundle, 0o644); err != nil {
		t.Fatal(err)
	}

	code, out, errOut := f.runCLI(t, "", "deploy", path, "--alias", "prod", "--description", "first & best?")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	want := regexp.MustCompile(`^deployed hello version 4 \(module 455ee18f0a76…, 5\.7 MB\) in \d+\.\ds\nalias prod → 4\n$`)
	if !want.MatchString(out) {
		t.Fatalf("output:\n%s", out)
	}
	reqs := f.take()
	if len(reqs) != 1 {
		t.Fatalf("%d requests", len(reqs))
	}
	r := reqs[0]
	if r.method != "POST" || r.path != "/admin/v1/functions" || r.contentType != "application/zip" || r.contentLength != int64(len(bundle)) {
		t.Fatalf("request: %s %s, %s, length %d", r.method, r.path, r.contentType, r.contentLength)
	}
	if !bytes.Equal(r.body, bundle) {
		t.Fatalf("the server received %d bytes, not the bundle's %d", len(r.body), len(bundle))
	}
	if !reflect.DeepEqual(r.query, url.Values{"alias": {"prod"}, "description": {"first & best?"}}) {
		t.Fatalf("query: %v", r.query)
	}

	// The same bytes again: unchanged. Without --alias or --description, no query.
	code, out, errOut = f.runCLI(t, "", "deploy", path)
	if code != 0 || out != "hello is unchanged: version 4 (same module and manifest)\n" {
		t.Fatalf("exit %d: %q %s", code, out, errOut)
	}
	if r := f.take(); len(r) != 1 || len(r[0].query) != 0 {
		t.Fatalf("requests: %+v", r)
	}

	// --json prints the API's answer.
	code, out, errOut = f.runCLI(t, "", "deploy", path, "--json")
	var answer struct {
		Function string
		Created  bool
		Version  struct{ Version int }
	}
	if err := json.Unmarshal([]byte(out), &answer); code != 0 || err != nil || answer.Function != "hello" || answer.Created || answer.Version.Version != 4 {
		t.Fatalf("exit %d: %q %s (%v)", code, out, errOut, err)
	}
}

func TestCLIDeployRejectsOtherFiles(t *testing.T) {
	f := newFakeAdmin(t)
	dir := t.TempDir()
	notZip := filepath.Join(dir, "hello.tar")
	if err := os.WriteFile(notZip, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ name, path, want string }{
		{"not a zip", notZip, "hello.tar is neither a function directory nor a bundle"},
		{"missing", filepath.Join(dir, "nope.zip"), "no such file or directory"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, _, errOut := f.runCLI(t, "", "deploy", tt.path)
			if code != 1 || !strings.HasPrefix(errOut, "gatehouse: ") || !strings.Contains(errOut, tt.want) {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			if r := f.take(); len(r) != 0 {
				t.Fatalf("made %d requests", len(r))
			}
		})
	}
}

func TestCLIFunctionsAndVersions(t *testing.T) {
	f := newFakeAdmin(t)
	code, out, errOut := f.runCLI(t, "", "functions")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	want := fmt.Sprintf("NAME   LATEST  UPDATED\nhello  3       %s\nworld  1       %s\n", localTime(fakeUpdated), localTime(fakeCreated))
	if out != want {
		t.Fatalf("functions:\n%s\nwant:\n%s", out, want)
	}

	code, out, errOut = f.runCLI(t, "", "versions", "hello")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	c := localTime(fakeCreated)
	want = "VERSION  MODULE        SIZE    MEMORY  TIMEOUT  CREATED" + strings.Repeat(" ", len(c)-5) + "DESCRIPTION\n" +
		"1        455ee18f0a76  700 B   128 MB  3s       " + c + "  first\n" +
		"2        455ee18f0a76  5.7 MB  128 MB  3s       " + c + "  \n"
	if out != want {
		t.Fatalf("versions:\n%s\nwant:\n%s", out, want)
	}
	if r := f.take(); r[1].method != "GET" || r[1].path != "/admin/v1/functions/hello/versions" {
		t.Fatalf("request: %+v", r[1])
	}

	code, out, _ = f.runCLI(t, "", "versions", "hello", "--json")
	var answer struct{ Versions []adminapi.VersionView }
	if err := json.Unmarshal([]byte(out), &answer); code != 0 || err != nil || len(answer.Versions) != 2 {
		t.Fatalf("--json: %d %s %v", code, out, err)
	}

	code, _, errOut = f.runCLI(t, "", "versions", "nope")
	if code != 1 || errOut != "gatehouse: no function \"nope\": see `gatehouse functions`\n" {
		t.Fatalf("unknown function: %d %q", code, errOut)
	}
}

func TestCLIAlias(t *testing.T) {
	f := newFakeAdmin(t)
	for _, tt := range []struct {
		name string
		args []string
		body string
		out  string
	}{
		{"weighted", []string{"3", "--weight", "2=0.1", "--description", "canary"},
			`{"version":3,"additionalVersion":2,"additionalWeight":0.1,"description":"canary","revision":0}`,
			"alias hello:prod → 3, 10% to version 2 (revision 17)\n"},
		{"latest", []string{"$LATEST"},
			`{"version":0,"additionalVersion":0,"additionalWeight":0,"description":"","revision":0}`,
			"alias hello:prod → $LATEST (revision 17)\n"},
		{"latest with a canary", []string{"$LATEST", "--weight", "3=0.25"},
			`{"version":0,"additionalVersion":3,"additionalWeight":0.25,"description":"","revision":0}`,
			"alias hello:prod → $LATEST, 25% to version 3 (revision 17)\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := f.runCLI(t, "", append([]string{"alias", "set", "hello", "prod"}, tt.args...)...)
			if code != 0 || out != tt.out {
				t.Fatalf("exit %d: %q %s", code, out, errOut)
			}
			r := f.take()[0]
			if r.method != "PUT" || r.path != "/admin/v1/functions/hello/aliases/prod" || r.contentType != "application/json" {
				t.Fatalf("request: %s %s %s", r.method, r.path, r.contentType)
			}
			if got := strings.TrimSpace(string(r.body)); got != tt.body {
				t.Fatalf("body:\n%s\nwant:\n%s", got, tt.body)
			}
		})
	}

	for _, tt := range []struct{ name, version, weight, want string }{
		{"not a number", "three", "", `VERSION "three": want a version number (1, 2, …) or $LATEST`},
		{"zero", "0", "", `VERSION "0": want a version number`},
		{"expanded by the shell", "", "", "VERSION is empty: give a version number or $LATEST (in single quotes"},
		{"weight without =", "3", "2", `--weight "2": want VERSION=WEIGHT, e.g. 4=0.1`},
		{"weight's version", "3", "two=0.1", `--weight "two=0.1": "two" is not a version number`},
		{"negative version", "3", "-1=0.1", `"-1" is not a version number`},
		{"weight over 1", "3", "2=1.5", `--weight "2=1.5": the weight "1.5" must be a number from 0 to 1`},
		{"negative weight", "3", "2=-0.1", `the weight "-0.1" must be a number from 0 to 1`},
		{"NaN", "3", "2=NaN", `the weight "NaN" must be a number from 0 to 1`},
		{"percent", "3", "2=10%", `the weight "10%" must be a number from 0 to 1`},
		{"same version", "3", "3=0.1", `--weight "3=0.1": version 3 is the alias's version already`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			args := []string{"alias", "set", "hello", "prod", tt.version}
			if tt.weight != "" {
				args = append(args, "--weight", tt.weight)
			}
			code, _, errOut := f.runCLI(t, "", args...)
			if code != 1 || !strings.HasPrefix(errOut, "gatehouse: ") || !strings.Contains(errOut, tt.want) {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			if r := f.take(); len(r) != 0 {
				t.Fatalf("made %d requests", len(r))
			}
		})
	}

	t.Run("unknown version", func(t *testing.T) {
		code, _, errOut := f.runCLI(t, "", "alias", "set", "hello", "prod", "9")
		if code != 1 || !strings.Contains(errOut, "gatehouse: function hello has no version 9") {
			t.Fatalf("exit %d: %s", code, errOut)
		}
		f.take()
	})

	t.Run("ls", func(t *testing.T) {
		code, out, errOut := f.runCLI(t, "", "alias", "ls", "hello")
		u := localTime(fakeUpdated)
		want := "NAME    VERSION  ROUTING   REVISION  UPDATED" + strings.Repeat(" ", len(u)-5) + "DESCRIPTION\n" +
			"latest  $LATEST  -         17        " + u + "  tracks the newest\n" +
			"prod    2        10% to 3  17        " + u + "  canary\n"
		if code != 0 || out != want {
			t.Fatalf("exit %d: %s\n%s\nwant:\n%s", code, errOut, out, want)
		}
		if r := f.take()[0]; r.method != "GET" || r.path != "/admin/v1/functions/hello/aliases" {
			t.Fatalf("request: %s %s", r.method, r.path)
		}
	})

	t.Run("rm", func(t *testing.T) {
		code, out, errOut := f.runCLI(t, "", "alias", "rm", "hello", "prod")
		if code != 0 || out != "deleted alias hello:prod\n" {
			t.Fatalf("exit %d: %q %s", code, out, errOut)
		}
		if r := f.take()[0]; r.method != "DELETE" || r.path != "/admin/v1/functions/hello/aliases/prod" {
			t.Fatalf("request: %s %s", r.method, r.path)
		}
		code, _, errOut = f.runCLI(t, "", "alias", "rm", "hello", "staging")
		if code != 1 || !strings.Contains(errOut, `gatehouse: function hello has no alias "staging"`) {
			t.Fatalf("exit %d: %s", code, errOut)
		}
	})
}

func TestCLIInvoke(t *testing.T) {
	f := newFakeAdmin(t)
	file := filepath.Join(t.TempDir(), "event.json")
	if err := os.WriteFile(file, []byte(`{"from":"file"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name, stdin string
		args        []string
		query       url.Values
		event, out  string
	}{
		{"default payload", "", []string{"hello"}, url.Values{}, `{}`, `{"got":{}}` + "\n"},
		{"inline", "", []string{"hello:prod", "--payload", `{"name":"world"}`}, url.Values{"qualifier": {"prod"}},
			`{"name":"world"}`, `{"got":{"name":"world"}}` + "\n"},
		{"file", "", []string{"hello:$LATEST", "-p", "@" + file}, url.Values{"qualifier": {"$LATEST"}},
			`{"from":"file"}`, `{"got":{"from":"file"}}` + "\n"},
		{"stdin", `{"from":"stdin"}`, []string{"hello:1", "--payload", "-"}, url.Values{"qualifier": {"1"}},
			`{"from":"stdin"}`, `{"got":{"from":"stdin"}}` + "\n"},
		{"text output", "", []string{"hello", "--payload", `{"text":true}`}, url.Values{}, `{"text":true}`, "plain text\n"},
		{"json", "", []string{"hello:prod", "--json"}, url.Values{"qualifier": {"prod"}}, `{}`,
			`{"version":2,"output":{"got":{}},"error":null}` + "\n"},
		{"json text output", "", []string{"hello", "--json", "-p", `{"text":true}`}, url.Values{}, `{"text":true}`,
			`{"version":3,"output":"plain text","error":null}` + "\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := f.runCLI(t, tt.stdin, append([]string{"invoke"}, tt.args...)...)
			if code != 0 || out != tt.out || errOut != "" {
				t.Fatalf("exit %d: %q, stderr %q; want %q", code, out, errOut, tt.out)
			}
			r := f.take()[0]
			if r.method != "POST" || r.path != "/admin/v1/functions/hello/invocations" || !reflect.DeepEqual(r.query, tt.query) ||
				string(r.body) != tt.event || r.contentType != "application/json" {
				t.Fatalf("request: %s %s %v %s %q", r.method, r.path, r.query, r.contentType, r.body)
			}
		})
	}

	t.Run("invalid inline JSON", func(t *testing.T) {
		code, _, errOut := f.runCLI(t, "", "invoke", "hello", "--payload", "{name:world}")
		if code != 1 || !strings.Contains(errOut, "gatehouse: --payload is not valid JSON (invalid character 'n'") {
			t.Fatalf("exit %d: %s", code, errOut)
		}
		if r := f.take(); len(r) != 0 {
			t.Fatalf("made %d requests", len(r))
		}
	})
	t.Run("missing file", func(t *testing.T) {
		code, _, errOut := f.runCLI(t, "", "invoke", "hello", "--payload", "@/no/such/file")
		if code != 1 || !strings.Contains(errOut, "reading the payload: open /no/such/file") {
			t.Fatalf("exit %d: %s", code, errOut)
		}
	})
	t.Run("function error", func(t *testing.T) {
		code, out, errOut := f.runCLI(t, "", "invoke", "hello", "-p", `{"fail":true}`)
		want := `{"errorType":"FunctionError","errorMessage":"boom"}` + "\ngatehouse: function error: FunctionError: boom\n"
		if code != 1 || out != "" || errOut != want {
			t.Fatalf("exit %d: %q, stderr %q", code, out, errOut)
		}
	})
	t.Run("function error, json", func(t *testing.T) {
		code, out, errOut := f.runCLI(t, "", "invoke", "hello", "-p", `{"fail":true}`, "--json")
		if code != 1 || out != `{"version":3,"output":null,"error":{"errorType":"FunctionError","errorMessage":"boom"}}`+"\n" ||
			errOut != "gatehouse: function error: FunctionError: boom\n" {
			t.Fatalf("exit %d: %q, stderr %q", code, out, errOut)
		}
	})
	t.Run("empty qualifier", func(t *testing.T) {
		code, _, errOut := f.runCLI(t, "", "invoke", "hello:")
		if code != 1 || !strings.Contains(errOut, "the qualifier after : is empty") {
			t.Fatalf("exit %d: %s", code, errOut)
		}
	})
	t.Run("unknown alias", func(t *testing.T) {
		code, _, errOut := f.runCLI(t, "", "invoke", "hello:staging")
		if code != 1 || !strings.Contains(errOut, `gatehouse: function hello has no version or alias "staging"`) {
			t.Fatalf("exit %d: %s", code, errOut)
		}
	})
}

func TestCLILogs(t *testing.T) {
	f := newFakeAdmin(t)
	line := func(n int, version, stream, message string) string {
		tm := time.Date(2026, 11, 25, 10, 5, n, 123e6, time.UTC)
		return fmt.Sprintf("%s %-4s abcdef12 %-6s  %s\n", tm.Local().Format(timeFormat), version, stream, message)
	}
	code, out, errOut := f.runCLI(t, "", "logs", "world")
	if code != 0 || out != "" || !strings.Contains(errOut, "no log records for world") {
		t.Fatalf("logs of a function with none: exit %d: %q %q", code, out, errOut)
	}
	f.take()
	code, out, errOut = f.runCLI(t, "", "logs", "hello", "--limit", "5")
	want := line(1, "v3", "stdout", "hello world") + line(2, "v3", "stderr", "oops")
	if code != 0 || out != want {
		t.Fatalf("exit %d: %s\n%s\nwant:\n%s", code, errOut, out, want)
	}
	if r := f.take()[0]; r.method != "GET" || r.path != "/admin/v1/functions/hello/logs" || !reflect.DeepEqual(r.query, url.Values{"limit": {"5"}}) {
		t.Fatalf("request: %s %s %v", r.method, r.path, r.query)
	}

	// -f prints records as they come and ends, exit 0, when the node closes the stream.
	code, out, errOut = f.runCLI(t, "", "logs", "hello", "-f")
	want += line(3, "v3", "stdout", "later")
	if code != 0 || out != want {
		t.Fatalf("exit %d: %s\n%s\nwant:\n%s", code, errOut, out, want)
	}
	if r := f.take()[0]; !reflect.DeepEqual(r.query, url.Values{"limit": {"100"}, "follow": {"true"}}) {
		t.Fatalf("query: %v", r.query)
	}

	code, out, _ = f.runCLI(t, "", "logs", "hello", "--json")
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if code != 0 || len(lines) != 2 || !strings.HasPrefix(lines[0], `{"time":"2026-11-25T10:05:01.123Z","function":"hello"`) {
		t.Fatalf("--json: %d\n%s", code, out)
	}

	code, _, errOut = f.runCLI(t, "", "logs", "hello", "--limit", "0")
	if code != 1 || !strings.Contains(errOut, "--limit 0: want at least 1") {
		t.Fatalf("exit %d: %s", code, errOut)
	}
}

func TestCLIRm(t *testing.T) {
	f := newFakeAdmin(t)
	code, out, errOut := f.runCLI(t, "", "rm", "hello")
	if code != 0 || out != "deleted function hello (all versions and aliases)\n" {
		t.Fatalf("exit %d: %q %s", code, out, errOut)
	}
	if r := f.take()[0]; r.method != "DELETE" || r.path != "/admin/v1/functions/hello" || len(r.body) != 0 {
		t.Fatalf("request: %s %s", r.method, r.path)
	}
	code, _, errOut = f.runCLI(t, "", "rm", "nope")
	if code != 1 || !strings.Contains(errOut, "gatehouse: no function \"nope\"") {
		t.Fatalf("exit %d: %s", code, errOut)
	}
}

func TestCLIAudit(t *testing.T) {
	f := newFakeAdmin(t)
	code, out, errOut := f.runCLI(t, "", "audit", "--limit", "2")
	c, u := localTime(fakeCreated), localTime(fakeUpdated)
	pad := strings.Repeat(" ", len(c)-4)
	want := "TIME" + pad + "  TOKEN  ADDRESS    ACTION           TARGET      DETAIL\n" +
		c + "  admin  127.0.0.1  function.deploy  hello:1     sha256 455e…, created\n" +
		u + "  ci     10.0.0.7   alias.set        hello:prod  → 2\n"
	if code != 0 || out != want {
		t.Fatalf("exit %d: %s\n%s\nwant:\n%s", code, errOut, out, want)
	}
}

func TestCLIUnauthorized(t *testing.T) {
	f := newFakeAdmin(t)
	code, out, errOut := f.runCLI(t, "", "functions", "--token", "gh.admin.wrong")
	if code != 1 || out != "" || !strings.Contains(errOut, "gatehouse: the node refused the admin token: check --token") {
		t.Fatalf("exit %d: %q %s", code, out, errOut)
	}
	if r := f.take()[0]; r.method != "GET" || r.path != "/admin/v1/functions" {
		t.Fatalf("request: %s %s", r.method, r.path)
	}
}

func TestCLIWithoutARunningNode(t *testing.T) {
	dir := t.TempDir()
	for _, args := range [][]string{
		{"functions"}, {"versions", "hello"}, {"invoke", "hello"}, {"logs", "hello"}, {"rm", "hello"}, {"audit"},
		{"alias", "ls", "hello"}, {"alias", "set", "hello", "prod", "1"},
	} {
		code, _, errOut := runMain(t, "", append(args, "--data", dir)...)
		if code != 1 || !strings.HasPrefix(errOut, "gatehouse: no running node found in "+dir+" (start one with `gatehouse up`, or pass --admin)") {
			t.Fatalf("%v: exit %d: %s", args, code, errOut)
		}
	}
}

// TestCLIWithAStoppedNode: the address file a stopped node left behind makes a deploy fail at once,
// before it builds anything, saying what to check.
func TestCLIWithAStoppedNode(t *testing.T) {
	dir := t.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there any more
	if err := os.MkdirAll(filepath.Join(dir, "run"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(adminapi.AddressPath(dir), []byte(`{"url":"http://`+addr+`"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(adminapi.TokenPath(dir), []byte("gh.admin.x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	fn := filepath.Join(t.TempDir(), "greet")
	if err := os.MkdirAll(fn, 0o755); err != nil {
		t.Fatal(err)
	}
	// Not a Go package at all: a build would fail, so an error about the node shows none was tried.
	for _, args := range [][]string{{"deploy", fn}, {"functions"}} {
		code, out, errOut := runMain(t, "", append(args, "--data", dir)...)
		if code != 1 || out != "" || !strings.Contains(errOut, "no node answers at http://"+addr) || !strings.Contains(errOut, "is `gatehouse up` running?") {
			t.Fatalf("%v: exit %d: %q %s", args, code, out, errOut)
		}
	}
}

// serve starts the fake admin API: /healthz open, every other request recorded, checked for the
// token and answered by mux.
func (f *fakeAdmin) serve(t *testing.T, mux *http.ServeMux) {
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" { // the CLI's check that a node answers, before its request
			writeJSON(w, 200, map[string]string{"status": "ok"})
			return
		}
		body, err := io.ReadAll(r.Body)
		if err != nil {
			t.Errorf("fake admin: reading the body: %v", err)
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		f.mu.Lock()
		f.requests = append(f.requests, fakeRequest{method: r.Method, path: r.URL.Path, contentType: r.Header.Get("Content-Type"),
			contentLength: r.ContentLength, query: r.URL.Query(), body: body})
		f.mu.Unlock()
		if r.Header.Get("Authorization") != "Bearer "+fakeAdminToken {
			w.Header().Set("WWW-Authenticate", `Bearer realm="gatehouse"`)
			writeJSON(w, 401, map[string]string{"message": "Unauthorized"})
			return
		}
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(f.srv.Close)
}
