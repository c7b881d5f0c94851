package admin

import (
	"archive/zip"
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"gatehouse.dev/gatehouse/internal/testfix"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"gatehouse.dev/gatehouse/functions"
	"gatehouse.dev/gatehouse/internal/adminapi"
	"gatehouse.dev/gatehouse/internal/apikeys"
	"gatehouse.dev/gatehouse/internal/bus"
)

// ---------------------------------------------------------------------------------------------
// Harness: a real admin Server on a loopback port, a real registry, token store and audit log on an
// embedded JetStream, and fakes for what the wiring layer provides.

// newJetStream starts the bus with JetStream and connects with the control role's credentials, as
// the node does.
func newJetStream(t *testing.T) jetstream.JetStream {
	t.Helper()
	srv, err := bus.NewServer(bus.ServerConfig{Stack: "t", StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	creds := srv.Credentials(bus.RoleControl)
	nc, err := nats.Connect(srv.ClientURL(), nats.UserInfo(creds.User, creds.Password))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

// syncBuffer collects output that goroutines write while the test reads it.
type syncBuffer = testfix.SyncBuffer

type harness struct {
	t      *testing.T
	srv    *Server
	base   string
	token  string
	reg    *functions.Registry
	tokens *Tokens
	audit  *Audit
	logs   *syncBuffer

	mu        sync.Mutex
	check     func(*functions.Bundle) error
	activate  func(functions.VersionRecord) error
	invoke    func(function, qualifier string, payload []byte) ([]byte, int, error)
	activated []int
}

type harnessOptions struct {
	limits   functions.BundleLimits
	noLogs   bool
	logs     LogSource
	noAudit  bool
	noInvoke bool
	// readTimeout, when set, is the listener's ReadTimeout.
	readTimeout time.Duration
}

func newHarness(t *testing.T, opts harnessOptions) *harness {
	t.Helper()
	ctx := t.Context()
	js := newJetStream(t)
	reg, err := functions.OpenRegistry(ctx, js, functions.RegistryConfig{Stack: "t", SecretKey: bytes.Repeat([]byte{7}, functions.SecretKeySize)})
	if err != nil {
		t.Fatal(err)
	}
	tokens, err := OpenTokens(ctx, js, "t")
	if err != nil {
		t.Fatal(err)
	}
	token, err := tokens.Create(ctx, "admin")
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, token: token, reg: reg, tokens: tokens, logs: &syncBuffer{}}
	keys, err := apikeys.Open(ctx, js, apikeys.Config{Stack: "t"})
	if err != nil {
		t.Fatal(err)
	}
	keysCtx, stopKeys := context.WithCancel(context.Background())
	keysDone := make(chan struct{})
	go func() { defer close(keysDone); keys.Run(keysCtx) }()
	t.Cleanup(func() { stopKeys(); <-keysDone })
	<-keys.Synced()
	if !opts.noAudit {
		if h.audit, err = OpenAudit(ctx, js, "t"); err != nil {
			t.Fatal(err)
		}
	}
	cfg := Config{
		ReadTimeout: opts.readTimeout,
		Tokens:      tokens,
		Health:      func() (int, any) { return 200, map[string]string{"status": "ok"} },
		Metrics:     http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "up 1\n") }),
		Logger:      slog.New(slog.NewJSONHandler(h.logs, nil)),
		Registry:    reg,
		Check: func(_ context.Context, b *functions.Bundle) error {
			h.mu.Lock()
			defer h.mu.Unlock()
			if h.check != nil {
				return h.check(b)
			}
			return nil
		},
		Activate: func(_ context.Context, v functions.VersionRecord) error {
			h.mu.Lock()
			defer h.mu.Unlock()
			h.activated = append(h.activated, v.Version)
			if h.activate != nil {
				return h.activate(v)
			}
			return nil
		},
		Invoke: func(_ context.Context, function, qualifier string, payload []byte) ([]byte, int, error) {
			h.mu.Lock()
			invoke := h.invoke
			h.mu.Unlock()
			if invoke == nil {
				return nil, 0, errors.New("no invoke set")
			}
			return invoke(function, qualifier, payload)
		},
		Logs:         opts.logs,
		Audit:        h.audit,
		BundleLimits: opts.limits,
		APIKeys:      keys,
		UsagePlans:   []string{"basic"},
	}
	if opts.noInvoke {
		cfg.Invoke = nil
	}
	if opts.logs == nil && !opts.noLogs {
		cfg.Logs = &fakeLogs{}
	}
	s, err := NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	s.keepAlive = 50 * time.Millisecond
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.Shutdown(ctx) // a test may have shut it down already
		<-served
	})
	h.srv, h.base = s, "http://"+ln.Addr().String()
	return h
}

// do sends a request with the harness's token and returns the status, headers and body.
func (h *harness) do(method, path string, body []byte) (int, http.Header, []byte) {
	h.t.Helper()
	return h.doWith(h.token, method, path, body)
}

func (h *harness) doWith(token, method, path string, body []byte) (int, http.Header, []byte) {
	h.t.Helper()
	req, err := http.NewRequest(method, h.base+path, bytes.NewReader(body))
	if err != nil {
		h.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	switch {
	case bytes.HasPrefix(body, []byte("{")):
		req.Header.Set("Content-Type", "application/json")
	case body != nil:
		req.Header.Set("Content-Type", "application/zip")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		h.t.Fatalf("%s %s: reading the body: %v", method, path, err)
	}
	return resp.StatusCode, resp.Header, b
}

// want checks an answer's status, and decodes a JSON body into into (when not nil).
func (h *harness) want(method, path string, body []byte, status int, into any) []byte {
	h.t.Helper()
	got, _, b := h.do(method, path, body)
	if got != status {
		h.t.Fatalf("%s %s: status %d, want %d: %s", method, path, got, status, b)
	}
	if into != nil {
		if err := json.Unmarshal(b, into); err != nil {
			h.t.Fatalf("%s %s: %v: %s", method, path, err, b)
		}
	}
	return b
}

// wantError checks that an answer is an error with status and a JSON message containing substr.
func (h *harness) wantError(method, path string, body []byte, status int, substr string) {
	h.t.Helper()
	var e struct{ Message string }
	h.want(method, path, body, status, &e)
	if e.Message == "" || !strings.Contains(e.Message, substr) {
		h.t.Fatalf("%s %s: message %q, want one containing %q", method, path, e.Message, substr)
	}
}

// stored returns what the registry holds: every function's name and newest version.
func (h *harness) stored() string {
	h.t.Helper()
	list, err := h.reg.List(h.t.Context())
	if err != nil {
		h.t.Fatal(err)
	}
	var out []string
	for _, f := range list {
		out = append(out, f.Name+":"+strconv.Itoa(f.LatestVersion))
	}
	return strings.Join(out, ",")
}

// module returns a valid WebAssembly module: the header, then a custom section holding content
// (so different contents give different modules).
func module(content string) []byte {
	if len(content) > 100 {
		panic("content too long for a one-byte section size")
	}
	m := []byte("\x00asm\x01\x00\x00\x00")
	m = append(m, 0, byte(2+len(content)), 1, 'x')
	return append(m, content...)
}

// bundle writes a bundle of function name with module(content).
func bundle(t *testing.T, name, content string, edit ...func(*functions.Manifest)) []byte {
	t.Helper()
	m := functions.NewManifest(name)
	m.ABI = functions.ABIReactor
	for _, e := range edit {
		e(&m)
	}
	var buf bytes.Buffer
	if err := functions.WriteBundle(&buf, m, module(content)); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// rawZip writes a zip of the given entries (name, data), names taken as they are.
func rawZip(t *testing.T, entries ...string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for i := 0; i < len(entries); i += 2 {
		w, err := zw.CreateHeader(&zip.FileHeader{Name: entries[i], Method: zip.Deflate})
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(w, entries[i+1])
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

type deployAnswerJSON struct {
	Function string
	Created  bool
	Version  adminapi.VersionView
	Alias    *adminapi.AliasView
}

// ---------------------------------------------------------------------------------------------
// Deploying.

func TestDeploy(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	v1 := bundle(t, "hello", "one")

	var first deployAnswerJSON
	h.want("POST", "/admin/v1/functions", v1, 201, &first)
	if first.Function != "hello" || !first.Created || first.Version.Version != 1 || first.Version.Function != "hello" ||
		first.Version.ABI != "reactor" || first.Version.MemoryMB != 128 || first.Version.Timeout != "3s" ||
		len(first.Version.ModuleSHA256) != 64 || first.Version.ModuleSize != int64(len(module("one"))) || first.Alias != nil {
		t.Fatalf("first deploy: %+v", first)
	}

	var again deployAnswerJSON
	h.want("POST", "/admin/v1/functions?description=ignored", v1, 200, &again)
	if again.Created || again.Version.Version != 1 || again.Version.ModuleSHA256 != first.Version.ModuleSHA256 {
		t.Fatalf("same bundle again: %+v", again)
	}

	var second deployAnswerJSON
	h.want("POST", "/admin/v1/functions", bundle(t, "hello", "two"), 201, &second)
	if !second.Created || second.Version.Version != 2 || second.Version.ModuleSHA256 == first.Version.ModuleSHA256 {
		t.Fatalf("changed module: %+v", second)
	}

	var third deployAnswerJSON
	h.want("POST", "/admin/v1/functions?alias=prod&description=third+one", bundle(t, "hello", "three"), 201, &third)
	if third.Version.Version != 3 || third.Version.Description != "third one" || third.Alias == nil ||
		third.Alias.Name != "prod" || third.Alias.Version != 3 || third.Alias.Target != "3" || third.Alias.Revision == 0 {
		t.Fatalf("deploy with an alias: %+v alias %+v", third, third.Alias)
	}
	if a, err := h.reg.Alias(t.Context(), "hello", "prod"); err != nil || a.Version != 3 {
		t.Fatalf("stored alias: %+v, %v", a, err)
	}
	// Activate ran after every publish, created or not.
	h.mu.Lock()
	activated := slices.Clone(h.activated)
	h.mu.Unlock()
	if !slices.Equal(activated, []int{1, 1, 2, 3}) {
		t.Fatalf("activated %v", activated)
	}
	// The deploy is logged with what was deployed and by whom, never with the token.
	logs := h.logs.String()
	secret := h.token[strings.LastIndexByte(h.token, '.')+1:]
	if !strings.Contains(logs, `"msg":"function deployed","function":"hello","version":3,"sha256":"`+third.Version.ModuleSHA256) ||
		!strings.Contains(logs, `"by":"admin","from":"127.0.0.1"`) || strings.Contains(logs, secret) || strings.Contains(logs, "Bearer") {
		t.Fatalf("logs:\n%s", logs)
	}

	// Activation failing: the version is stored, and the answer says it is not loaded yet.
	h.mu.Lock()
	h.activate = func(functions.VersionRecord) error { return errors.New("worker w1 did not load it in 30s") }
	h.mu.Unlock()
	h.wantError("POST", "/admin/v1/functions", bundle(t, "hello", "four"), 500, "version 4 of hello is stored but not yet loaded")
	if got := h.stored(); got != "hello:4" {
		t.Fatalf("stored %s", got)
	}
}

func TestDeployRefusesBadBundles(t *testing.T) {
	limits := functions.BundleLimits{MaxBundleBytes: 256 << 10, MaxModuleBytes: 64 << 10}
	h := newHarness(t, harnessOptions{limits: limits})
	h.want("POST", "/admin/v1/functions", bundle(t, "existing", "x"), 201, nil)
	before := h.stored()
	checked := 0 // guarded by h.mu, which the Check fake holds
	h.mu.Lock()
	h.check = func(b *functions.Bundle) error {
		checked++
		if b.Manifest.Name == "fails-check" {
			return errors.New(`module imports "env"."mystery", which Gatehouse does not provide`)
		}
		return nil
	}
	h.mu.Unlock()

	// A module that compresses well but expands past MaxModuleBytes.
	big := module("")
	big = append(big, make([]byte, 80<<10)...)
	var bomb bytes.Buffer
	zw := zip.NewWriter(&bomb)
	w, _ := zw.Create("function.yaml")
	io.WriteString(w, "version: 1\nname: bomb\n")
	w, _ = zw.Create("function.wasm")
	w.Write(big)
	zw.Close()

	// Over MaxBundleBytes (stored, so it does not compress).
	var large bytes.Buffer
	zw = zip.NewWriter(&large)
	w, _ = zw.CreateHeader(&zip.FileHeader{Name: "padding.bin", Method: zip.Store})
	w.Write(make([]byte, 300<<10))
	zw.Close()

	for _, tt := range []struct {
		name   string
		body   []byte
		query  string
		status int
		substr string
	}{
		{"not a zip", []byte("\x00asm\x01\x00\x00\x00"), "", 400, "not a zip archive"},
		{"empty body", nil, "", 400, "not a zip archive"},
		{"path escaping the archive", rawZip(t, "function.yaml", "version: 1\nname: esc\n", "../x", "y"), "", 400, "would escape the bundle"},
		{"entry expanding past the limit", bomb.Bytes(), "", 413, "the limit is 64 KiB"},
		{"missing manifest", rawZip(t, "function.wasm", string(module("m"))), "", 400, "no function.yaml"},
		{"invalid manifest", rawZip(t, "function.yaml", "version: 1\nname: hi\nmemroy: 256\n", "function.wasm", string(module("m"))), "", 400, "function.yaml:3:1: memroy: unknown key"},
		{"module failing the check", bundle(t, "fails-check", "c"), "", 400, `the module of fails-check cannot be run: module imports "env"."mystery"`},
		{"bundle over the limit", large.Bytes(), "", 413, "the bundle is over the limit of 262144 bytes"},
		{"invalid alias", bundle(t, "existing", "new"), "?alias=123", 400, "alias \"123\""},
		{"description too long", bundle(t, "existing", "new"), "?description=" + strings.Repeat("d", 300), 400, "description"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h.t = t
			h.wantError("POST", "/admin/v1/functions"+tt.query, tt.body, tt.status, tt.substr)
			if got := h.stored(); got != before {
				t.Fatalf("the registry changed: %s, was %s", got, before)
			}
		})
	}
	h.t = t
	h.mu.Lock()
	defer h.mu.Unlock()
	if checked != 2 { // only the bundles that were read: fails-check, and the too-long description
		t.Fatalf("Check ran %d times", checked)
	}
}

// TestPartialRequestIsDropped: a client that sends part of a request and stops is disconnected when
// the listener's read timeout passes, rather than holding the connection.
func TestPartialRequestIsDropped(t *testing.T) {
	h := newHarness(t, harnessOptions{readTimeout: 300 * time.Millisecond})
	conn, err := net.Dial("tcp", strings.TrimPrefix(h.base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	io.WriteString(conn, "GET /admin/v1/functions HTTP/1.1\r\nHost: adm")
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err = io.ReadAll(conn)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatal("the connection of a partial request was still open after 10 s")
	}
}

// TestDeployTooLargeFromContentLength sends only the headers of an upload larger than the listener's
// body limit, and its first 16 KiB (the listener reads 8 KiB before any handler): the answer comes
// without the rest of the body being sent.
func TestDeployTooLargeFromContentLength(t *testing.T) {
	h := newHarness(t, harnessOptions{limits: functions.BundleLimits{MaxBundleBytes: 1 << 20}})
	limit := h.srv.app.Config().BodyLimit
	conn, err := net.Dial("tcp", strings.TrimPrefix(h.base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /admin/v1/functions HTTP/1.1\r\nHost: admin\r\nAuthorization: Bearer %s\r\nContent-Type: application/zip\r\nContent-Length: %d\r\n\r\n", h.token, limit+1)
	conn.Write(make([]byte, 16<<10))
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 413 || !strings.Contains(string(body), `"message":"the bundle is over the limit of 1048576 bytes`) {
		t.Fatalf("got %d %s", resp.StatusCode, body)
	}
	// Between the bundle limit and the listener's, the handler refuses it.
	h.wantError("POST", "/admin/v1/functions", make([]byte, 1<<20+1), 413, "the bundle is over the limit of 1048576 bytes")
	if got := h.stored(); got != "" {
		t.Fatalf("stored %s", got)
	}
}

// ---------------------------------------------------------------------------------------------
// Reading and changing functions and aliases.

func TestFunctionsAndAliases(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	h.want("POST", "/admin/v1/functions", bundle(t, "hello", "1"), 201, nil)
	h.want("POST", "/admin/v1/functions", bundle(t, "hello", "2"), 201, nil)
	h.want("POST", "/admin/v1/functions", bundle(t, "abc", "1"), 201, nil)

	var list struct{ Functions []adminapi.FunctionView }
	h.want("GET", "/admin/v1/functions", nil, 200, &list)
	if len(list.Functions) != 2 || list.Functions[0].Name != "abc" || list.Functions[1].Name != "hello" ||
		list.Functions[1].LatestVersion != 2 || list.Functions[1].CreatedAt.IsZero() || list.Functions[1].UpdatedAt.Before(list.Functions[1].CreatedAt) {
		t.Fatalf("list: %+v", list)
	}

	var versions struct{ Versions []adminapi.VersionView }
	h.want("GET", "/admin/v1/functions/hello/versions", nil, 200, &versions)
	if len(versions.Versions) != 2 || versions.Versions[0].Version != 1 || versions.Versions[1].Version != 2 {
		t.Fatalf("versions: %+v", versions)
	}

	// Aliases: $LATEST, then weighted between two versions.
	var latest adminapi.AliasView
	h.want("PUT", "/admin/v1/functions/hello/aliases/live", []byte(`{"version":0,"description":"newest"}`), 200, &latest)
	if latest.Version != 0 || latest.Target != "$LATEST" || latest.Description != "newest" || latest.Revision == 0 {
		t.Fatalf("alias of $LATEST: %+v", latest)
	}
	var prod adminapi.AliasView
	body := h.want("PUT", "/admin/v1/functions/hello/aliases/prod", []byte(`{"version":1,"additionalVersion":2,"additionalWeight":0.1}`), 200, &prod)
	if prod.Function != "hello" || prod.Name != "prod" || prod.Version != 1 || prod.Target != "1" || prod.AdditionalVersion != 2 || prod.AdditionalWeight != 0.1 {
		t.Fatalf("weighted alias: %+v", prod)
	}
	if !strings.Contains(string(body), `"additionalWeight":0.1`) {
		t.Fatalf("weighted alias: %s", body)
	}
	if strings.Contains(string(h.want("GET", "/admin/v1/functions/hello/aliases", nil, 200, nil)), `"additionalVersion":0`) {
		t.Fatal("additionalVersion 0 is not omitted")
	}

	for _, tt := range []struct {
		name, path, body string
		status           int
		substr           string
	}{
		{"weight over 1", "/hello/aliases/prod", `{"version":1,"additionalVersion":2,"additionalWeight":1.5}`, 400, "additional weight 1.5: want 0 to 1"},
		{"unknown version", "/hello/aliases/prod", `{"version":9}`, 400, "version 9 of hello does not exist"},
		{"revision moved", "/hello/aliases/prod", fmt.Sprintf(`{"version":2,"revision":%d}`, prod.Revision-1), 409, "changed since revision"},
		{"unknown function", "/nope/aliases/prod", `{"version":1}`, 404, "not found"},
		{"invalid alias name", "/hello/aliases/123", `{"version":1}`, 400, "alias name"},
		{"not JSON", "/hello/aliases/prod", `version: 1`, 400, "the body must be JSON"},
		{"unknown key", "/hello/aliases/prod", `{"versoin":1}`, 400, "unknown field"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h.t = t
			h.wantError("PUT", "/admin/v1/functions"+tt.path, []byte(tt.body), tt.status, tt.substr)
		})
	}
	h.t = t
	var moved adminapi.AliasView
	h.want("PUT", "/admin/v1/functions/hello/aliases/prod", []byte(fmt.Sprintf(`{"version":2,"revision":%d}`, prod.Revision)), 200, &moved)
	if moved.Version != 2 || moved.AdditionalVersion != 0 || moved.Revision <= prod.Revision {
		t.Fatalf("compare-and-set: %+v", moved)
	}

	var one adminapi.FunctionDetail
	h.want("GET", "/admin/v1/functions/hello", nil, 200, &one)
	if one.Name != "hello" || one.LatestVersion != 2 || one.Latest.Version != 2 || len(one.Aliases) != 2 ||
		one.Aliases[0].Name != "live" || one.Aliases[1].Name != "prod" {
		t.Fatalf("get: %+v", one)
	}
	var noAliases map[string]any
	h.want("GET", "/admin/v1/functions/abc", nil, 200, &noAliases)
	if a, ok := noAliases["aliases"].([]any); !ok || len(a) != 0 {
		t.Fatalf("a function without aliases: %v", noAliases)
	}

	h.want("DELETE", "/admin/v1/functions/hello/aliases/live", nil, 204, nil)
	h.wantError("DELETE", "/admin/v1/functions/hello/aliases/live", nil, 404, "not found")
	var aliases struct{ Aliases []adminapi.AliasView }
	h.want("GET", "/admin/v1/functions/hello/aliases", nil, 200, &aliases)
	if len(aliases.Aliases) != 1 || aliases.Aliases[0].Name != "prod" {
		t.Fatalf("aliases: %+v", aliases)
	}

	h.want("DELETE", "/admin/v1/functions/hello", nil, 204, nil)
	for _, path := range []string{"/hello", "/hello/versions", "/hello/aliases"} {
		h.wantError("GET", "/admin/v1/functions"+path, nil, 404, "not found")
	}
	h.wantError("DELETE", "/admin/v1/functions/hello", nil, 404, "not found")
	h.wantError("GET", "/admin/v1/functions/bad.name", nil, 400, "function name")
	h.wantError("GET", "/admin/v1/functions/abd/versions", nil, 404, `(did you mean "abc"?)`)
	h.want("GET", "/admin/v1/functions", nil, 200, &list)
	if len(list.Functions) != 1 || list.Functions[0].Name != "abc" {
		t.Fatalf("list after delete: %+v", list)
	}
}

// A version's snapStart is shown as its minWarm is: in the deploy's answer, and in the function's
// latest version.
func TestVersionViewShowsSnapStart(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	var plain, snap deployAnswerJSON
	h.want("POST", "/admin/v1/functions", bundle(t, "hello", "one", func(m *functions.Manifest) { m.MinWarm = 1 }), 201, &plain)
	if plain.Version.SnapStart || plain.Version.MinWarm != 1 {
		t.Fatalf("without snapStart: %+v", plain.Version)
	}
	h.want("POST", "/admin/v1/functions", bundle(t, "hello", "one", func(m *functions.Manifest) { m.SnapStart = true }), 201, &snap)
	if !snap.Version.SnapStart || snap.Version.Version != 2 {
		t.Fatalf("with snapStart: %+v", snap.Version)
	}
	var detail struct{ Latest map[string]any }
	h.want("GET", "/admin/v1/functions/hello", nil, 200, &detail)
	if detail.Latest["snapStart"] != true {
		t.Errorf("the function's latest version: %v", detail.Latest)
	}
	var versions struct{ Versions []map[string]any }
	h.want("GET", "/admin/v1/functions/hello/versions", nil, 200, &versions)
	if len(versions.Versions) != 2 || versions.Versions[0]["snapStart"] != false || versions.Versions[1]["snapStart"] != true {
		t.Errorf("versions: %v", versions.Versions)
	}
}

func TestSealedSecretsNeverShown(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	const secret = "s3cret-Value-42"
	withSecret := func(m *functions.Manifest) {
		m.Environment["TABLE"] = "orders"
		m.Environment["DB_PASSWORD"] = secret
		m.Secrets = []string{"DB_PASSWORD"}
	}
	var answers []string
	var dep deployAnswerJSON
	answers = append(answers, string(h.want("POST", "/admin/v1/functions?alias=prod", bundle(t, "vault", "v", withSecret), 201, &dep)))
	if !slices.Equal(dep.Version.Secrets, []string{"DB_PASSWORD"}) || len(dep.Version.Environment) != 1 || dep.Version.Environment["TABLE"] != "orders" {
		t.Fatalf("version view: %+v", dep.Version)
	}
	answers = append(answers, string(h.want("POST", "/admin/v1/functions", bundle(t, "vault", "v", withSecret), 200, nil)))
	for _, path := range []string{"", "/vault", "/vault/versions", "/vault/aliases"} {
		answers = append(answers, string(h.want("GET", "/admin/v1/functions"+path, nil, 200, nil)))
	}
	for _, a := range answers {
		for _, leak := range []string{secret, "sealed", "ciphertext", "nonce", "functionId", "manifestSha256"} {
			if strings.Contains(a, leak) {
				t.Fatalf("an answer shows %q: %s", leak, a)
			}
		}
	}
	// It was stored sealed, all the same.
	v, err := h.reg.Version(t.Context(), "vault", 1)
	if err != nil || v.SealedSecrets == nil {
		t.Fatalf("stored version: %+v, %v", v, err)
	}
}

// ---------------------------------------------------------------------------------------------
// Invoking.

func TestInvoke(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	qualifiers := make(chan string, 100)
	h.mu.Lock()
	h.invoke = func(function, qualifier string, payload []byte) ([]byte, int, error) {
		qualifiers <- qualifier
		if function != "hello" {
			return nil, 0, fmt.Errorf("resolving %s: %w", function, functions.ErrNotFound)
		}
		switch string(payload) {
		case "fail":
			return nil, 3, &bus.RemoteError{Code: bus.CodeFunctionError, Detail: "panic: index out of range"}
		case "slow":
			return nil, 3, fmt.Errorf("invoking: %w", bus.ErrFunctionTimeout)
		case "huge":
			return nil, 3, bus.ErrResponseTooLarge
		case "busy":
			return nil, 0, bus.ErrThrottled
		case "nobody":
			return nil, 0, bus.ErrNoWorkers
		case "lost":
			return nil, 3, bus.ErrWorkerLost
		case "badqualifier":
			return nil, 0, fmt.Errorf("resolving hello:0x: not a version number: %w", functions.ErrInvalid)
		}
		return append([]byte(`{"echo":`), append(payload, '}')...), 3, nil
	}
	h.mu.Unlock()
	status, header, body := h.do("POST", "/admin/v1/functions/hello/invocations?qualifier=prod", []byte(`"hi"`))
	if status != 200 || string(body) != `{"echo":"hi"}` || header.Get("X-Gatehouse-Executed-Version") != "3" ||
		header.Get("X-Gatehouse-Function-Error") != "" {
		t.Fatalf("invoke: %d %s %v", status, body, header)
	}
	if q := <-qualifiers; q != "prod" {
		t.Fatalf("qualifier %q", q)
	}
	for _, tt := range []struct {
		payload, body string
	}{
		{"fail", `{"errorType":"FunctionError","errorMessage":"panic: index out of range"}`},
		{"slow", `{"errorType":"Sandbox.Timedout","errorMessage":"Task timed out"}`},
		{"huge", `{"errorType":"ResponseTooLarge","errorMessage":"the function's response is over the limit of 6 MiB"}`},
	} {
		status, header, body := h.do("POST", "/admin/v1/functions/hello/invocations", []byte(tt.payload))
		if status != 200 || string(body) != tt.body || header.Get("X-Gatehouse-Function-Error") != "Unhandled" || header.Get("X-Gatehouse-Executed-Version") != "3" {
			t.Errorf("%s: %d %s %v", tt.payload, status, body, header)
		}
	}
	for _, tt := range []struct {
		path, payload string
		status        int
		substr        string
	}{
		{"/nope/invocations", "x", 404, "not found"},
		{"/hello/invocations?qualifier=0x", "badqualifier", 400, "not a version number"},
		{"/hello/invocations", "busy", 429, "maxConcurrency"},
		{"/hello/invocations", "nobody", 503, "no worker"},
		{"/hello/invocations", "lost", 500, "try again"},
		{"/bad.name/invocations", "x", 400, "is not a function name"},
	} {
		h.wantError("POST", "/admin/v1/functions"+tt.path, []byte(tt.payload), tt.status, tt.substr)
	}
	// 6 MiB is accepted; one byte more is not.
	status, _, _ = h.do("POST", "/admin/v1/functions/hello/invocations", bytes.Repeat([]byte("a"), MaxInvocationPayload))
	if status != 200 {
		t.Fatalf("a 6 MiB payload: %d", status)
	}
	h.wantError("POST", "/admin/v1/functions/hello/invocations", bytes.Repeat([]byte("a"), MaxInvocationPayload+1), 413, "6 MiB")

	// Without an Invoke, the endpoint says so.
	h2 := newHarness(t, harnessOptions{noInvoke: true})
	h2.wantError("POST", "/admin/v1/functions/hello/invocations", []byte("{}"), 503, "invocations are not available")
}

// ---------------------------------------------------------------------------------------------
// Authentication.

func TestFunctionEndpointsNeedAToken(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	h.want("POST", "/admin/v1/functions", bundle(t, "hello", "1"), 201, nil)
	for _, route := range []string{
		"POST /admin/v1/functions",
		"GET /admin/v1/functions",
		"GET /admin/v1/functions/hello",
		"DELETE /admin/v1/functions/hello",
		"GET /admin/v1/functions/hello/versions",
		"GET /admin/v1/functions/hello/aliases",
		"PUT /admin/v1/functions/hello/aliases/prod",
		"DELETE /admin/v1/functions/hello/aliases/prod",
		"POST /admin/v1/functions/hello/invocations",
		"GET /admin/v1/functions/hello/logs",
		"GET /admin/v1/audit",
	} {
		method, path, _ := strings.Cut(route, " ")
		for _, token := range []string{"", "gh.admin.forged", h.token + "x"} {
			status, header, body := h.doWith(token, method, path, []byte(`{"version":1}`))
			if status != 401 || string(body) != `{"message":"Unauthorized"}` || header.Get("WWW-Authenticate") != `Bearer realm="gatehouse"` {
				t.Errorf("%s with token %q: %d %s %v", route, token, status, body, header)
			}
		}
	}
	if got := h.stored(); got != "hello:1" {
		t.Fatalf("stored %s", got)
	}
}
