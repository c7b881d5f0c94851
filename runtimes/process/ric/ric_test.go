package ric_test

// Tests of the runtime interface clients (bootstrap.py, bootstrap.mjs) against a
// fake Lambda Runtime API: the test serves events, the client runs handlers the
// test wrote into a task root, and the test checks what came back.

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"gatehouse.dev/gatehouse/internal/testfix"
)

// TestMain puts a variable in the test's own environment, which the clients'
// processes must not see: they get only what start gives them.
func TestMain(m *testing.M) {
	os.Setenv("GATEHOUSE_TEST_SECRET", "must not leak")
	os.Exit(m.Run())
}

// wait bounds every wait of these tests; it only turns a hang into a failure.
const wait = 10 * time.Second

// received is one call of the client to the fake API.
type received struct {
	Kind     string // "response", "error" or "init"
	ID       string
	Body     []byte
	Header   http.Header
	Observed string // what the test's observe hook returned when the call arrived
}

type fakeAPI struct {
	srv     *httptest.Server
	events  chan event
	got     chan received
	observe func() string
}

type event struct {
	id      string
	body    string
	headers map[string]string
}

func newFakeAPI(t *testing.T) *fakeAPI {
	t.Helper()
	api := &fakeAPI{events: make(chan event, 16), got: make(chan received, 16)}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /2018-06-01/runtime/invocation/next", func(w http.ResponseWriter, r *http.Request) {
		var ev event
		select {
		case ev = <-api.events:
		case <-r.Context().Done():
			return
		}
		h := w.Header()
		h.Set("Content-Type", "application/json")
		h.Set("Lambda-Runtime-Aws-Request-Id", ev.id)
		h.Set("Lambda-Runtime-Deadline-Ms", strconv.FormatInt(time.Now().Add(time.Minute).UnixMilli(), 10))
		h.Set("Lambda-Runtime-Invoked-Function-Arn", "arn:aws:lambda:us-east-1:000000000000:function:hello:live")
		h.Set("Lambda-Runtime-Trace-Id", "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1")
		for k, v := range ev.headers {
			h.Set(k, v)
		}
		io.WriteString(w, ev.body)
	})
	record := func(kind string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			body, _ := io.ReadAll(r.Body)
			rec := received{Kind: kind, ID: r.PathValue("id"), Body: body, Header: r.Header.Clone()}
			if api.observe != nil {
				rec.Observed = api.observe()
			}
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusAccepted)
			io.WriteString(w, `{"status":"OK"}`)
			api.got <- rec
		}
	}
	mux.HandleFunc("POST /2018-06-01/runtime/invocation/{id}/response", record("response"))
	mux.HandleFunc("POST /2018-06-01/runtime/invocation/{id}/error", record("error"))
	mux.HandleFunc("POST /2018-06-01/runtime/init/error", record("init"))
	api.srv = httptest.NewServer(mux)
	t.Cleanup(api.srv.Close)
	return api
}

func (api *fakeAPI) addr() string { return strings.TrimPrefix(api.srv.URL, "http://") }

// invoke serves one event and returns what the client answered.
func (api *fakeAPI) invoke(t *testing.T, id, body string) received {
	t.Helper()
	return api.invokeWith(t, event{id: id, body: body})
}

func (api *fakeAPI) invokeWith(t *testing.T, ev event) received {
	t.Helper()
	api.events <- ev
	got := api.next(t)
	if got.Kind != "init" && got.ID != ev.id {
		t.Fatalf("answer for request %q, want %q", got.ID, ev.id)
	}
	return got
}

func (api *fakeAPI) next(t *testing.T) received {
	t.Helper()
	select {
	case got := <-api.got:
		return got
	case <-time.After(wait):
		t.Fatalf("no call from the runtime client within %v", wait)
		return received{}
	}
}

// syncBuffer collects output that goroutines write while the test reads it.
type syncBuffer = testfix.SyncBuffer

type proc struct {
	cmd            *exec.Cmd
	stdout, stderr *syncBuffer
	exited         chan struct{}
	env            []string
}

// waitExit waits for the process to end by itself and returns its exit code.
func (p *proc) waitExit(t *testing.T) int {
	t.Helper()
	select {
	case <-p.exited:
		return p.cmd.ProcessState.ExitCode()
	case <-time.After(wait):
		t.Fatalf("the runtime client did not exit within %v\nstderr:\n%s", wait, p.stderr)
		return -1
	}
}

// start runs the client with exactly the environment below, nothing inherited.
func start(t *testing.T, api *fakeAPI, interpreter, script, taskRoot, handler string) *proc {
	t.Helper()
	scriptPath, err := filepath.Abs(script)
	if err != nil {
		t.Fatal(err)
	}
	env := []string{
		"AWS_LAMBDA_RUNTIME_API=" + api.addr(),
		"_HANDLER=" + handler,
		"LAMBDA_TASK_ROOT=" + taskRoot,
		"AWS_LAMBDA_FUNCTION_NAME=hello",
		"AWS_LAMBDA_FUNCTION_VERSION=$LATEST",
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE=256",
		"AWS_LAMBDA_LOG_GROUP_NAME=/aws/lambda/hello",
		"AWS_LAMBDA_LOG_STREAM_NAME=2024/05/01/[$LATEST]0123456789abcdef0123456789abcdef",
		"AWS_REGION=us-east-1",
		"AWS_DEFAULT_REGION=us-east-1",
		"TZ=:UTC",
		"LANG=en_US.UTF-8",
		"GREETING=hi",
	}
	p := &proc{stdout: &syncBuffer{}, stderr: &syncBuffer{}, exited: make(chan struct{}), env: env}
	p.cmd = exec.Command(interpreter, scriptPath)
	p.cmd.Env = env
	p.cmd.Dir = taskRoot
	p.cmd.Stdout = p.stdout
	p.cmd.Stderr = p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.exited
		if t.Failed() {
			t.Logf("stdout:\n%s\nstderr:\n%s", p.stdout, p.stderr)
		}
	})
	return p
}

// waitOutput waits for text in a process's output: it may arrive after the
// call to the API that followed it.
func waitOutput(t *testing.T, b *syncBuffer, text string) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for !strings.Contains(b.String(), text) {
		if time.Now().After(deadline) {
			t.Fatalf("the output does not hold %q:\n%s", text, b)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for name, text := range files {
		p := filepath.Join(root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func decode(t *testing.T, b []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("not a JSON object: %v: %s", err, b)
	}
	return m
}

// checkEnv checks that the variables the handler saw are the ones the test gave,
// plus those the runtime adds itself.
func checkEnv(t *testing.T, p *proc, seen any, extra ...string) {
	t.Helper()
	keys, ok := seen.([]any)
	if !ok {
		t.Fatalf("env keys: %#v", seen)
	}
	allowed := map[string]bool{}
	for _, kv := range p.env {
		k, _, _ := strings.Cut(kv, "=")
		allowed[k] = true
	}
	for _, k := range extra {
		allowed[k] = true
	}
	if slices.Contains(keys, any("GATEHOUSE_TEST_SECRET")) {
		t.Errorf("the handler sees the test process's GATEHOUSE_TEST_SECRET")
	}
	for _, k := range keys {
		if !allowed[k.(string)] {
			t.Errorf("the handler sees %s, which the test did not give it", k)
		}
	}
	if !slices.Contains(keys, any("GREETING")) {
		t.Errorf("the handler does not see GREETING: %v", keys)
	}
}

func checkInitError(t *testing.T, got received, wantType, wantMessagePart string) map[string]any {
	t.Helper()
	if got.Kind != "init" {
		t.Fatalf("got a %s call, want /init/error: %s", got.Kind, got.Body)
	}
	m := decode(t, got.Body)
	if m["errorType"] != wantType {
		t.Errorf("errorType = %v, want %s (body %s)", m["errorType"], wantType, got.Body)
	}
	if msg, _ := m["errorMessage"].(string); !strings.Contains(msg, wantMessagePart) {
		t.Errorf("errorMessage = %q, want it to contain %q", msg, wantMessagePart)
	}
	if got.Header.Get("Lambda-Runtime-Function-Error-Type") != wantType {
		t.Errorf("Lambda-Runtime-Function-Error-Type = %q, want %s", got.Header.Get("Lambda-Runtime-Function-Error-Type"), wantType)
	}
	return m
}

// ---- Python ----------------------------------------------------------------

// python3 returns the interpreter's own path: the one on PATH may be a shim
// that needs variables the tests do not give the process.
func python3(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("python3")
	if err != nil {
		t.Skipf("python3 not found on PATH: %v", err)
	}
	out, err := exec.Command(p, "-c", "import sys; print(sys.executable); assert sys.version_info >= (3, 11), sys.version").CombinedOutput()
	if err != nil {
		t.Skipf("python3 >= 3.11 not usable: %v: %s", err, out)
	}
	return strings.TrimSpace(string(out))
}

const pyApp = `import json

def lambda_handler(event, context):
    return {
        "statusCode": 200,
        "headers": {"Content-Type": "application/json"},
        "body": json.dumps({"message": "Hello from Lambda!", "name": event.get("name")}),
    }
`

const pyContext = `import os

def handler(event, context):
    return {
        "aws_request_id": context.aws_request_id,
        "function_name": context.function_name,
        "function_version": context.function_version,
        "invoked_function_arn": context.invoked_function_arn,
        "memory_limit_in_mb": context.memory_limit_in_mb,
        "log_group_name": context.log_group_name,
        "log_stream_name": context.log_stream_name,
        "remaining": context.get_remaining_time_in_millis(),
        "identity_id": context.identity.cognito_identity_id,
        "client_context": None if context.client_context is None else context.client_context.custom,
        "trace_id": os.environ.get("_X_AMZN_TRACE_ID"),
        "cwd": os.getcwd(),
        "pid": os.getpid(),
        "env": sorted(os.environ),
        "event": event,
    }
`

func TestPython(t *testing.T) {
	py := python3(t)
	root := writeFiles(t, map[string]string{
		"app.py":         pyApp,
		"ctx.py":         pyContext,
		"raising.py":     "def handler(event, context):\n    helper()\n\ndef helper():\n    raise ValueError('boom: ' + event_name())\n\ndef event_name():\n    return 'x'\n",
		"missing.py":     "def other(event, context):\n    return 1\n",
		"syntax.py":      "def handler(event, context)\n    return 1\n",
		"badimport.py":   "import no_such_module_here\n\ndef handler(event, context):\n    return 1\n",
		"unmarshal.py":   "def handler(event, context):\n    return {'ids': {1, 2}}\n",
		"none.py":        "def handler(event, context):\n    pass\n",
		"pkg/sub/mod.py": "def handler(event, context):\n    return 'nested ' + event\n",
		"printing.py": `import os, sys, time

def handler(event, context):
    print("printed to stdout")
    sys.stderr.write("written to stderr\n")
    # Wait until the test has seen both lines: only unbuffered output gets here.
    while not os.path.exists(event["flag"]):
        time.sleep(0.005)
    return "done"
`,
	})

	t.Run("tutorial handler, two invocations in one process", func(t *testing.T) {
		t.Parallel()
		api := newFakeAPI(t)
		start(t, api, py, "bootstrap.py", root, "app.lambda_handler")
		for i, name := range []string{"ada", "grace"} {
			got := api.invoke(t, fmt.Sprintf("req-%d", i), fmt.Sprintf(`{"name":%q}`, name))
			want := fmt.Sprintf(`{"statusCode": 200, "headers": {"Content-Type": "application/json"}, "body": "{\"message\": \"Hello from Lambda!\", \"name\": \"%s\"}"}`, name)
			if got.Kind != "response" || string(got.Body) != want {
				t.Errorf("got %s %s\nwant response %s", got.Kind, got.Body, want)
			}
			if ct := got.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type = %q", ct)
			}
		}
		if _, err := os.Stat(filepath.Join(root, "__pycache__")); err == nil {
			t.Errorf("the client wrote __pycache__ into the task root")
		}
	})

	t.Run("context, environment and process reuse", func(t *testing.T) {
		t.Parallel()
		api := newFakeAPI(t)
		p := start(t, api, py, "bootstrap.py", root, "ctx.handler")
		var pids []any
		for i := range 2 {
			id := fmt.Sprintf("ctx-%d", i)
			got := api.invokeWith(t, event{id: id, body: `{"n":1}`, headers: map[string]string{
				"Lambda-Runtime-Cognito-Identity": `{"cognitoIdentityId":"us-east-1:abc","cognitoIdentityPoolId":"pool"}`,
				"Lambda-Runtime-Client-Context":   `{"custom":{"k":"v"},"env":{},"client":{"installation_id":"i"}}`,
			}})
			if got.Kind != "response" {
				t.Fatalf("got %s: %s", got.Kind, got.Body)
			}
			m := decode(t, got.Body)
			want := map[string]any{
				"aws_request_id":       id,
				"function_name":        "hello",
				"function_version":     "$LATEST",
				"invoked_function_arn": "arn:aws:lambda:us-east-1:000000000000:function:hello:live",
				"memory_limit_in_mb":   "256",
				"log_group_name":       "/aws/lambda/hello",
				"log_stream_name":      "2024/05/01/[$LATEST]0123456789abcdef0123456789abcdef",
				"identity_id":          "us-east-1:abc",
				"trace_id":             "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1",
				"cwd":                  root,
			}
			for k, v := range want {
				if m[k] != v {
					t.Errorf("%s = %#v, want %#v", k, m[k], v)
				}
			}
			if cc, _ := m["client_context"].(map[string]any); cc["k"] != "v" {
				t.Errorf("client_context.custom = %#v", m["client_context"])
			}
			if r, _ := m["remaining"].(float64); r <= 0 || r > 60000 {
				t.Errorf("get_remaining_time_in_millis() = %v, want in (0, 60000]", m["remaining"])
			}
			if ev, _ := m["event"].(map[string]any); ev["n"] != 1.0 {
				t.Errorf("event = %#v", m["event"])
			}
			// Python itself may add LC_CTYPE when it coerces a C locale (PEP 538).
			checkEnv(t, p, m["env"], "_X_AMZN_TRACE_ID", "LC_CTYPE")
			pids = append(pids, m["pid"])
		}
		if pids[0] != pids[1] {
			t.Errorf("two invocations ran in processes %v and %v, want one", pids[0], pids[1])
		}
	})

	t.Run("exception", func(t *testing.T) {
		t.Parallel()
		api := newFakeAPI(t)
		p := start(t, api, py, "bootstrap.py", root, "raising.handler")
		got := api.invoke(t, "err-1", `{}`)
		if got.Kind != "error" {
			t.Fatalf("got %s: %s", got.Kind, got.Body)
		}
		m := decode(t, got.Body)
		if m["errorType"] != "ValueError" || m["errorMessage"] != "boom: x" || m["requestId"] != "err-1" {
			t.Errorf("error body %s", got.Body)
		}
		if h := got.Header.Get("Lambda-Runtime-Function-Error-Type"); h != "ValueError" {
			t.Errorf("Lambda-Runtime-Function-Error-Type = %q", h)
		}
		trace, _ := m["stackTrace"].([]any)
		if len(trace) != 2 {
			t.Fatalf("stackTrace has %d frames, want the handler's 2: %s", len(trace), got.Body)
		}
		first, _ := trace[0].(string)
		if !strings.Contains(first, filepath.Join(root, "raising.py")) || !strings.Contains(first, "in handler") || !strings.Contains(first, "helper()") {
			t.Errorf("first frame %q", first)
		}
		if strings.Contains(string(got.Body), "bootstrap.py") {
			t.Errorf("the trace shows the runtime's own frames: %s", got.Body)
		}
		// The process goes on serving after an error.
		if got := api.invoke(t, "err-2", `{}`); got.Kind != "error" {
			t.Errorf("second invocation: %s %s", got.Kind, got.Body)
		}
		waitOutput(t, p.stderr, "[ERROR] ValueError: boom: x\nTraceback (most recent call last):\n")
		waitOutput(t, p.stderr, `raise ValueError('boom: ' + event_name())`)
	})

	t.Run("non-serialisable result", func(t *testing.T) {
		t.Parallel()
		api := newFakeAPI(t)
		start(t, api, py, "bootstrap.py", root, "unmarshal.handler")
		got := api.invoke(t, "m-1", `{}`)
		m := decode(t, got.Body)
		if got.Kind != "error" || m["errorType"] != "Runtime.MarshalError" ||
			!strings.HasPrefix(m["errorMessage"].(string), "Unable to marshal response: ") || !strings.Contains(m["errorMessage"].(string), "set") {
			t.Errorf("got %s %s", got.Kind, got.Body)
		}
	})

	t.Run("None, nested package handler", func(t *testing.T) {
		t.Parallel()
		api := newFakeAPI(t)
		start(t, api, py, "bootstrap.py", root, "none.handler")
		if got := api.invoke(t, "n-1", `{}`); got.Kind != "response" || string(got.Body) != "null" {
			t.Errorf("got %s %s, want response null", got.Kind, got.Body)
		}
		api2 := newFakeAPI(t)
		start(t, api2, py, "bootstrap.py", root, "pkg/sub/mod.handler")
		if got := api2.invoke(t, "n-2", `"x"`); got.Kind != "response" || string(got.Body) != `"nested x"` {
			t.Errorf("got %s %s", got.Kind, got.Body)
		}
		api3 := newFakeAPI(t)
		start(t, api3, py, "bootstrap.py", root, "pkg.sub.mod.handler")
		if got := api3.invoke(t, "n-3", `"y"`); got.Kind != "response" || string(got.Body) != `"nested y"` {
			t.Errorf("got %s %s", got.Kind, got.Body)
		}
	})

	t.Run("print is unbuffered", func(t *testing.T) {
		t.Parallel()
		api := newFakeAPI(t)
		p := start(t, api, py, "bootstrap.py", root, "printing.handler")
		flag := filepath.Join(t.TempDir(), "seen")
		api.events <- event{id: "p-1", body: fmt.Sprintf(`{"flag":%q}`, flag)}
		// The handler waits for flag: only output that is not held back gets here.
		waitOutput(t, p.stdout, "printed to stdout\n")
		waitOutput(t, p.stderr, "written to stderr\n")
		os.WriteFile(flag, nil, 0o644)
		if got := api.next(t); got.Kind != "response" || string(got.Body) != `"done"` {
			t.Errorf("got %s %s", got.Kind, got.Body)
		}
	})

	initCases := []struct {
		name, handler, wantType, wantMsg string
	}{
		{"missing handler", "missing.handler", "Runtime.HandlerNotFound", "Handler 'handler' missing on module 'missing'"},
		{"missing module", "nosuchfile.handler", "Runtime.ImportModuleError", "Unable to import module 'nosuchfile': No module named 'nosuchfile'"},
		{"failing import", "badimport.handler", "Runtime.ImportModuleError", "No module named 'no_such_module_here'"},
		{"syntax error", "syntax.handler", "Runtime.UserCodeSyntaxError", "Syntax error in module 'syntax'"},
		{"malformed handler", "nodot", "Runtime.MalformedHandlerName", "Bad handler 'nodot'"},
		{"built-in module", "sys.exit", "Runtime.BuiltInModuleConflict", "Cannot use built-in module sys"},
	}
	for _, tc := range initCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			api := newFakeAPI(t)
			p := start(t, api, py, "bootstrap.py", root, tc.handler)
			m := checkInitError(t, api.next(t), tc.wantType, tc.wantMsg)
			if _, ok := m["stackTrace"].([]any); !ok {
				t.Errorf("no stackTrace list: %v", m)
			}
			if tc.name == "syntax error" {
				if tr := fmt.Sprint(m["stackTrace"]); !strings.Contains(tr, "syntax.py") || !strings.Contains(tr, "def handler(event, context)") {
					t.Errorf("stackTrace %s", tr)
				}
			}
			if code := p.waitExit(t); code != 1 {
				t.Errorf("exit code %d, want 1", code)
			}
		})
	}
}

// ---- Node.js -----------------------------------------------------------------

func nodeBin(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("node")
	if err != nil {
		t.Skipf("node not found on PATH: %v", err)
	}
	out, err := exec.Command(p, "-e", "const m = +process.versions.node.split('.')[0]; if (m < 20) { console.log(process.version); process.exit(1) }").CombinedOutput()
	if err != nil {
		t.Skipf("node >= 20 not usable: %v: %s", err, out)
	}
	return p
}

func TestNode(t *testing.T) {
	node := nodeBin(t)
	root := writeFiles(t, map[string]string{
		// ES module, async.
		"index.mjs": `export const handler = async (event, context) => ({
  statusCode: 200,
  headers: { 'Content-Type': 'application/json' },
  body: JSON.stringify({ message: 'Hello from Lambda!', name: event.name }),
});
`,
		// CommonJS .js, context echo.
		"ctx.js": `exports.handler = async function (event, context) {
  return {
    awsRequestId: context.awsRequestId,
    functionName: context.functionName,
    functionVersion: context.functionVersion,
    invokedFunctionArn: context.invokedFunctionArn,
    memoryLimitInMB: context.memoryLimitInMB,
    logGroupName: context.logGroupName,
    logStreamName: context.logStreamName,
    remaining: context.getRemainingTimeInMillis(),
    callbackWaitsForEmptyEventLoop: context.callbackWaitsForEmptyEventLoop,
    identity: context.identity,
    clientContext: context.clientContext,
    traceId: process.env._X_AMZN_TRACE_ID,
    cwd: process.cwd(),
    pid: process.pid,
    env: Object.keys(process.env).sort(),
    event,
  };
};
`,
		// Callback handler that answers before its timer has run: the answer
		// must wait for the timer (callbackWaitsForEmptyEventLoop defaults to true).
		"callback.js": `const fs = require('fs');
exports.handler = (event, context, callback) => {
  setTimeout(() => fs.writeFileSync(event.marker, 'timer ran'), 20);
  callback(null, { ok: true, waits: context.callbackWaitsForEmptyEventLoop });
};
`,
		// callbackWaitsForEmptyEventLoop = false: an interval left running does
		// not hold the answer back; the next invocation stops it.
		"nowait.cjs": `let timer;
exports.handler = (event, context, callback) => {
  context.callbackWaitsForEmptyEventLoop = false;
  if (event.stop) { clearInterval(timer); return callback(null, 'stopped'); }
  timer = setInterval(() => {}, 1000);
  callback(null, 'running');
};
`,
		"sync.js": `exports.calls = (event, context, callback) => callback(null, event.n + 1);
exports.returns = (event) => ({ ignored: true });
exports.throws = (event) => { throw new RangeError('sync ' + event.n); };
exports.callbackError = (event, context, callback) => callback(new Error('via callback'));
exports.callbackString = (event, context, callback) => callback('plain string');
exports.succeed = (event, context) => { context.succeed({ legacy: 'succeed' }); context.fail(new Error('ignored')); };
exports.fail = (event, context) => context.fail(new Error('legacy fail'));
exports.nested = { deeper: { fn: async () => 'nested' } };
exports.notFn = 42;
`,
		"throwing.mjs": `export async function handler(event) {
  await null;
  throw new TypeError('bad input: ' + event.n);
}
export const hangs = async () => new Promise(() => {});
export const circular = async () => { const o = {}; o.o = o; return o; };
`,
		"crash.js": `exports.uncaught = async () => {
  setTimeout(() => { throw new Error('thrown from a timer'); }, 1);
  return new Promise(() => {});
};
exports.unhandled = async () => {
  Promise.reject(new Error('nobody catches this'));
  return new Promise(() => {});
};
`,
		"src/api/route.cjs": "module.exports.handler = async (e) => ({ from: 'src/api/route.cjs', e });\n",
		"esm/package.json":  `{"type":"module"}`,
		"esm/app.js":        "export const handler = async () => 'esm .js via package.json';\n",
		"syntax.js":         "exports.handler = async (event) => {\n  return {\n};\n",
		"esmsyntax.mjs":     "export const handler = async () => { return 1 ;;; ]\n",
		"badimport.js":      "require('no-such-package-here');\nexports.handler = async () => 1;\n",
		"initthrow.js":      "throw new Error('init failed on purpose');\n",
		"printing.js": `const fs = require('fs');
exports.handler = async (event) => {
  console.log('logged to stdout');
  console.error('logged to stderr');
  while (!fs.existsSync(event.flag)) {}
  return 'done';
};
`,
	})

	t.Run("async ESM handler, two invocations in one process", func(t *testing.T) {
		t.Parallel()
		api := newFakeAPI(t)
		start(t, api, node, "bootstrap.mjs", root, "index.handler")
		for i, name := range []string{"ada", "grace"} {
			got := api.invoke(t, fmt.Sprintf("req-%d", i), fmt.Sprintf(`{"name":%q}`, name))
			want := fmt.Sprintf(`{"statusCode":200,"headers":{"Content-Type":"application/json"},"body":"{\"message\":\"Hello from Lambda!\",\"name\":\"%s\"}"}`, name)
			if got.Kind != "response" || string(got.Body) != want {
				t.Errorf("got %s %s\nwant response %s", got.Kind, got.Body, want)
			}
		}
	})

	t.Run("context, environment and process reuse", func(t *testing.T) {
		t.Parallel()
		api := newFakeAPI(t)
		p := start(t, api, node, "bootstrap.mjs", root, "ctx.handler")
		var pids []any
		for i := range 2 {
			id := fmt.Sprintf("ctx-%d", i)
			got := api.invokeWith(t, event{id: id, body: `{"n":1}`, headers: map[string]string{
				"Lambda-Runtime-Cognito-Identity": `{"cognitoIdentityId":"us-east-1:abc","cognitoIdentityPoolId":"pool"}`,
			}})
			if got.Kind != "response" {
				t.Fatalf("got %s: %s", got.Kind, got.Body)
			}
			m := decode(t, got.Body)
			want := map[string]any{
				"awsRequestId":                   id,
				"functionName":                   "hello",
				"functionVersion":                "$LATEST",
				"invokedFunctionArn":             "arn:aws:lambda:us-east-1:000000000000:function:hello:live",
				"memoryLimitInMB":                "256",
				"logGroupName":                   "/aws/lambda/hello",
				"logStreamName":                  "2024/05/01/[$LATEST]0123456789abcdef0123456789abcdef",
				"callbackWaitsForEmptyEventLoop": true,
				"traceId":                        "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1",
				"cwd":                            root,
			}
			for k, v := range want {
				if m[k] != v {
					t.Errorf("%s = %#v, want %#v", k, m[k], v)
				}
			}
			if id, _ := m["identity"].(map[string]any); id["cognitoIdentityId"] != "us-east-1:abc" {
				t.Errorf("identity = %#v", m["identity"])
			}
			if _, ok := m["clientContext"]; ok {
				t.Errorf("clientContext = %#v, want undefined without the header", m["clientContext"])
			}
			if r, _ := m["remaining"].(float64); r <= 0 || r > 60000 {
				t.Errorf("getRemainingTimeInMillis() = %v, want in (0, 60000]", m["remaining"])
			}
			checkEnv(t, p, m["env"], "_X_AMZN_TRACE_ID")
			pids = append(pids, m["pid"])
		}
		if pids[0] != pids[1] {
			t.Errorf("two invocations ran in processes %v and %v, want one", pids[0], pids[1])
		}
	})

	t.Run("callback waits for the empty event loop", func(t *testing.T) {
		t.Parallel()
		api := newFakeAPI(t)
		marker := filepath.Join(t.TempDir(), "marker")
		api.observe = func() string {
			b, _ := os.ReadFile(marker)
			return string(b)
		}
		start(t, api, node, "bootstrap.mjs", root, "callback.handler")
		for i := range 2 {
			os.Remove(marker)
			got := api.invoke(t, fmt.Sprintf("cb-%d", i), fmt.Sprintf(`{"marker":%q}`, marker))
			if got.Kind != "response" || string(got.Body) != `{"ok":true,"waits":true}` {
				t.Errorf("got %s %s", got.Kind, got.Body)
			}
			if got.Observed != "timer ran" {
				t.Errorf("the answer came before the handler's timer ran (callbackWaitsForEmptyEventLoop is true)")
			}
		}
	})

	t.Run("callbackWaitsForEmptyEventLoop false answers at once", func(t *testing.T) {
		t.Parallel()
		api := newFakeAPI(t)
		start(t, api, node, "bootstrap.mjs", root, "nowait.handler")
		if got := api.invoke(t, "nw-1", `{}`); got.Kind != "response" || string(got.Body) != `"running"` {
			t.Errorf("got %s %s", got.Kind, got.Body)
		}
		if got := api.invoke(t, "nw-2", `{"stop":true}`); got.Kind != "response" || string(got.Body) != `"stopped"` {
			t.Errorf("got %s %s", got.Kind, got.Body)
		}
	})

	type want struct {
		kind, body             string // body: exact, for responses
		errType, errMsg, trace string // errors: trace is the first trace line
	}
	cases := []struct {
		name, handler, event string
		want                 want
	}{
		{"sync callback", "sync.calls", `{"n":41}`, want{kind: "response", body: "42"}},
		{"sync return value is ignored, as on Lambda", "sync.returns", `{}`, want{kind: "response", body: "null"}},
		{"sync throw", "sync.throws", `{"n":1}`, want{kind: "error", errType: "RangeError", errMsg: "sync 1", trace: "RangeError: sync 1"}},
		{"callback error", "sync.callbackError", `{}`, want{kind: "error", errType: "Error", errMsg: "via callback", trace: "Error: via callback"}},
		{"callback with a string", "sync.callbackString", `{}`, want{kind: "error", errType: "string", errMsg: "plain string"}},
		{"context.succeed, first completion wins", "sync.succeed", `{}`, want{kind: "response", body: `{"legacy":"succeed"}`}},
		{"context.fail", "sync.fail", `{}`, want{kind: "error", errType: "Error", errMsg: "legacy fail", trace: "Error: legacy fail"}},
		{"nested export path", "sync.nested.deeper.fn", `{}`, want{kind: "response", body: `"nested"`}},
		{"async throw", "throwing.handler", `{"n":7}`, want{kind: "error", errType: "TypeError", errMsg: "bad input: 7", trace: "TypeError: bad input: 7"}},
		{"async never settles", "throwing.hangs", `{}`, want{kind: "error", errType: "Runtime.NodeJsExit", errMsg: "Runtime exited without providing a reason"}},
		{"circular result", "throwing.circular", `{}`, want{kind: "error", errType: "Runtime.MarshalError", errMsg: "Unable to stringify response body as json"}},
		{"subdirectory .cjs", "src/api/route.handler", `{"a":1}`, want{kind: "response", body: `{"from":"src/api/route.cjs","e":{"a":1}}`}},
		{"ESM .js by package.json", "esm/app.handler", `{}`, want{kind: "response", body: `"esm .js via package.json"`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			api := newFakeAPI(t)
			p := start(t, api, node, "bootstrap.mjs", root, tc.handler)
			for i := range 2 { // the process serves a second invocation the same way
				got := api.invoke(t, fmt.Sprintf("id-%d", i), tc.event)
				if got.Kind != tc.want.kind {
					t.Fatalf("got %s %s, want a %s", got.Kind, got.Body, tc.want.kind)
				}
				if tc.want.kind == "response" {
					if string(got.Body) != tc.want.body {
						t.Errorf("body %s, want %s", got.Body, tc.want.body)
					}
					continue
				}
				m := decode(t, got.Body)
				if m["errorType"] != tc.want.errType {
					t.Errorf("errorType = %v, want %s", m["errorType"], tc.want.errType)
				}
				if msg, _ := m["errorMessage"].(string); !strings.Contains(msg, tc.want.errMsg) {
					t.Errorf("errorMessage = %q, want it to contain %q", msg, tc.want.errMsg)
				}
				trace, ok := m["trace"].([]any)
				if !ok {
					t.Errorf("no trace list (Node's key): %s", got.Body)
				} else if tc.want.trace != "" && (len(trace) < 2 || trace[0] != tc.want.trace || !strings.Contains(fmt.Sprint(trace[1:]), root)) {
					t.Errorf("trace %q, want %q then frames in the task root", trace, tc.want.trace)
				}
				if h := got.Header.Get("Lambda-Runtime-Function-Error-Type"); h != tc.want.errType {
					t.Errorf("Lambda-Runtime-Function-Error-Type = %q", h)
				}
				waitOutput(t, p.stderr, `"errorType":"`+tc.want.errType+`"`)
			}
		})
	}

	crashes := []struct {
		handler, msg string
		code         int
	}{
		{"crash.uncaught", "thrown from a timer", 129},
		{"crash.unhandled", "nobody catches this", 128},
	}
	for _, tc := range crashes {
		t.Run(tc.handler+" fails the invocation and ends the process", func(t *testing.T) {
			t.Parallel()
			api := newFakeAPI(t)
			p := start(t, api, node, "bootstrap.mjs", root, tc.handler)
			got := api.invoke(t, "c-1", `{}`)
			if m := decode(t, got.Body); got.Kind != "error" || m["errorType"] != "Error" || m["errorMessage"] != tc.msg {
				t.Errorf("got %s %s", got.Kind, got.Body)
			}
			if code := p.waitExit(t); code != tc.code {
				t.Errorf("exit code %d, want %d", code, tc.code)
			}
		})
	}

	t.Run("console output is not held back", func(t *testing.T) {
		t.Parallel()
		api := newFakeAPI(t)
		p := start(t, api, node, "bootstrap.mjs", root, "printing.handler")
		flag := filepath.Join(t.TempDir(), "seen")
		api.events <- event{id: "p-1", body: fmt.Sprintf(`{"flag":%q}`, flag)}
		waitOutput(t, p.stdout, "logged to stdout\n")
		waitOutput(t, p.stderr, "logged to stderr\n")
		os.WriteFile(flag, nil, 0o644)
		if got := api.next(t); got.Kind != "response" || string(got.Body) != `"done"` {
			t.Errorf("got %s %s", got.Kind, got.Body)
		}
	})

	initCases := []struct {
		name, handler, wantType, wantMsg string
	}{
		{"missing export", "index.nothere", "Runtime.HandlerNotFound", "index.nothere is undefined or not exported"},
		{"export is not a function", "sync.notFn", "Runtime.HandlerNotFound", "sync.notFn is not a function"},
		{"missing module", "nosuchfile.handler", "Runtime.ImportModuleError", "Cannot find module 'nosuchfile'"},
		{"failing require", "badimport.handler", "Runtime.ImportModuleError", "Cannot find module 'no-such-package-here'"},
		{"syntax error, CommonJS", "syntax.handler", "Runtime.UserCodeSyntaxError", "SyntaxError: "},
		{"syntax error, ESM", "esmsyntax.handler", "Runtime.UserCodeSyntaxError", "SyntaxError: "},
		{"malformed handler", "nodot", "Runtime.MalformedHandlerName", "Bad handler"},
		{"relative path", "../index.handler", "Runtime.MalformedHandlerName", "is not a valid handler name"},
		{"module throws at load", "initthrow.handler", "Error", "init failed on purpose"},
	}
	for _, tc := range initCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			api := newFakeAPI(t)
			p := start(t, api, node, "bootstrap.mjs", root, tc.handler)
			m := checkInitError(t, api.next(t), tc.wantType, tc.wantMsg)
			if _, ok := m["trace"].([]any); !ok {
				t.Errorf("no trace list: %v", m)
			}
			if code := p.waitExit(t); code != 129 {
				t.Errorf("exit code %d, want 129", code)
			}
		})
	}
}

// TestNodeRuntimeAPIWire and TestPythonRuntimeAPIWire: both clients speak HTTP/1.1 to the Runtime
// API themselves. Each reads an event sent chunked (the server names no length) and one sent with
// its length, each of megabytes that arrive in many reads, and carries on over a new connection
// when the server closes the one it kept: after a response that says Connection: close, and under
// a pending invocation/next.
func TestNodeRuntimeAPIWire(t *testing.T) {
	testRuntimeAPIWire(t, nodeBin(t), "bootstrap.mjs", map[string]string{
		"echo.mjs": "export const handler = async (event) => ({ size: JSON.stringify(event).length, head: event.s.slice(0, 16), tail: event.s.slice(-16) });\n",
	}, "echo.handler")
}

func TestPythonRuntimeAPIWire(t *testing.T) {
	testRuntimeAPIWire(t, python3(t), "bootstrap.py", map[string]string{
		"echo.py": "import json\ndef handler(event, context):\n    return {'size': len(json.dumps(event, separators=(',', ':'))), 'head': event['s'][:16], 'tail': event['s'][-16:]}\n",
	}, "echo.handler")
}

func testRuntimeAPIWire(t *testing.T, interpreter, script string, files map[string]string, handler string) {
	root := writeFiles(t, files)
	api := newFakeAPI(t)
	start(t, api, interpreter, script, root, handler)
	big := func(n int, fill byte) (string, string) {
		s := strings.Repeat(string(fill), n)
		body := `{"s":"` + s + `"}`
		want := fmt.Sprintf(`{"size":%d,"head":"%s","tail":"%s"}`, len(body), s[:16], s[len(s)-16:])
		return body, want
	}
	check := func(what string, got received, want string) {
		t.Helper()
		var g, w any
		if got.Kind != "response" || json.Unmarshal(got.Body, &g) != nil || json.Unmarshal([]byte(want), &w) != nil || !reflect.DeepEqual(g, w) {
			t.Fatalf("%s: got %s %.200s, want response %s", what, got.Kind, got.Body, want)
		}
	}
	body, want := big(3<<20, 'a')
	check("a 3 MB event sent chunked", api.invoke(t, "chunked", body), want)
	body, want = big(2<<20, 'b')
	check("a 2 MB event sent with its length", api.invokeWith(t, event{id: "sized", body: body,
		headers: map[string]string{"Content-Length": strconv.Itoa(len(body))}}), want)
	body, want = big(100, 'c')
	check("an event whose response closes the connection", api.invokeWith(t, event{id: "closing", body: body,
		headers: map[string]string{"Connection": "close"}}), want)
	body, want = big(100, 'd')
	check("the event after the server closed the connection", api.invoke(t, "after-close", body), want)
	// The client waits in invocation/next on a kept-alive connection; the server drops it.
	time.Sleep(100 * time.Millisecond)
	api.srv.CloseClientConnections()
	body, want = big(100, 'e')
	check("the event after the server dropped the pending invocation/next", api.invoke(t, "after-drop", body), want)
}

// TestPythonNonASCIIErrorType: an exception class with a non-ASCII name is reported with its name in
// the body and a header value that a header can hold (the client writes its own headers).
func TestPythonNonASCIIErrorType(t *testing.T) {
	root := writeFiles(t, map[string]string{
		"fail.py": "class Ошибка(Exception):\n    pass\ndef handler(event, context):\n    raise Ошибка('nope')\n",
	})
	api := newFakeAPI(t)
	start(t, api, python3(t), "bootstrap.py", root, "fail.handler")
	got := api.invoke(t, "e1", `{}`)
	if got.Kind != "error" {
		t.Fatalf("got %s %s, want an error", got.Kind, got.Body)
	}
	if m := decode(t, got.Body); m["errorType"] != "Ошибка" {
		t.Errorf("errorType %v, want Ошибка", m["errorType"])
	}
	if h := got.Header.Get("Lambda-Runtime-Function-Error-Type"); h != "??????" {
		t.Errorf("Lambda-Runtime-Function-Error-Type %q, want the name with ? for each character a header cannot hold", h)
	}
	// The client goes on serving.
	if got := api.invoke(t, "e2", `{}`); got.Kind != "error" {
		t.Fatalf("the next invocation: got %s %s", got.Kind, got.Body)
	}
}
