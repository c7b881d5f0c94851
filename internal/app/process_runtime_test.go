package app

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fasthttp/websocket"

	"gatehouse.dev/gatehouse/functions"
	"gatehouse.dev/gatehouse/internal/testfix"
	procrt "gatehouse.dev/gatehouse/runtimes/process"
)

const pythonHandler = `import json, os, time, urllib.request, urllib.error

def fetch(url):
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return {"statusCode": 200, "body": json.dumps({"status": r.status, "body": r.read().decode()})}
    except urllib.error.HTTPError as e:
        return {"statusCode": 200, "body": json.dumps({"status": e.code, "body": e.read().decode()})}
    except Exception as e:
        return {"statusCode": 200, "body": json.dumps({"error": str(e)})}

def readable(path):
    try:
        with open(path, "rb") as f:
            f.read(1)
        return True
    except Exception:
        return False

def lambda_handler(event, context):
    path = event["rawPath"]
    if path.endswith("/fail"):
        raise ValueError("bad input")
    if path.endswith("/slow"):
        time.sleep(5)
    if path.endswith("/fetch"):
        return fetch(os.environ["UPSTREAM"])
    if path.endswith("/fetch-denied"):
        return fetch(os.environ["DENIED"])
    print("hello from the python log")
    return {
        "statusCode": 200,
        "headers": {"content-type": "application/json"},
        "body": json.dumps({
            "message": "hello from python",
            "function": context.function_name,
            "requestId": context.aws_request_id,
            "remainingMs": context.get_remaining_time_in_millis(),
            "greeting": os.environ.get("GREETING"),
            "leaked": os.environ.get("GATEHOUSE_TEST_HOSTS") or os.environ.get("GATEHOUSE_SECRET_ACCESS_KEY"),
            "instance": os.environ["AWS_LAMBDA_LOG_STREAM_NAME"],
            "probeReadable": readable(os.environ.get("PROBE_PATH", "")),
            "taskRoot": os.environ.get("LAMBDA_TASK_ROOT"),
        }),
    }
`

const nodeHandler = `export const handler = async (event, context) => {
  if (event.rawPath === "/js/hog") {
    const hoard = [];
    for (;;) hoard.push(new Array(1 << 20).fill(hoard.length));
  }
  return {
  statusCode: 201,
  headers: {"content-type": "application/json"},
  body: JSON.stringify({message: "hello from node", function: context.functionName, path: event.rawPath, instance: process.env.AWS_LAMBDA_LOG_STREAM_NAME}),
  };
};
`

// needSandbox skips a test whose process runtimes run sandboxed on a machine that cannot make
// sandboxes, saying why.
func needSandbox(t testing.TB) {
	t.Helper()
	if err := procrt.CheckSandbox(context.Background(), t.TempDir()); err != nil {
		t.Skipf("this machine cannot sandbox processes (%v): the test runs sandboxed process runtimes", err)
	}
}

// TestProcessRuntimes runs unmodified Lambda handlers through HTTP: a Python handler in the shape of
// AWS's tutorial, a Node.js ESM handler, and a provided.al2023 bootstrap built with aws-lambda-go.
func TestProcessRuntimes(t *testing.T) {
	for _, tool := range []string{"python3", "node"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not found on PATH: the process runtimes' test needs it (.ci/run installs it)", tool)
		}
	}
	needSandbox(t)
	dir := t.TempDir()
	write := func(rel, content string, mode os.FileMode) {
		t.Helper()
		p := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
	}
	write("py/app.py", pythonHandler, 0o644)
	write("js/index.mjs", nodeHandler, 0o644)
	// A Lambda authorizer in Python, as AWS's examples write one: a simple response with a context.
	write("authz/authz.py", "def handler(event, context):\n    token = event['headers'].get('x-token', '')\n    return {'isAuthorized': token == 'let-me-in', 'context': {'user': 'ana', 'via': context.function_name}}\n", 0o644)
	write("pyws/ws.py", "import json\n\ndef handler(event, context):\n    rc = event['requestContext']\n    return {'statusCode': 200, 'body': json.dumps({'route': rc['routeKey'], 'type': rc['eventType'], 'body': event.get('body')})}\n", 0o644)
	// The provided.al2023 function: a Go program built as it is for Lambda, named bootstrap.
	build := exec.Command("go", "build", "-o", filepath.Join(dir, "go", "bootstrap"), "./runtimes/process/testdata/golambda")
	build.Dir = testfix.RepoRoot()
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the bootstrap: %v\n%s", err, out)
	}
	// py, js and gobin run sandboxed (the default); pyws, the WebSocket handler, with isolation: none.
	// py may call upstream (by its loopback address, named in its allowedOutboundHosts), not denied.
	data := newDataDir(t)
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "upstream: %s", r.URL.Path)
	}))
	t.Cleanup(upstream.Close)
	denied := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("a sandboxed function reached a server not in its allowedOutboundHosts: %s", r.URL)
	}))
	t.Cleanup(denied.Close)
	stack := fmt.Sprintf(`version: 1
name: processes
functions:
  py:
    source: %q
    runtime: python3.11
    handler: app.lambda_handler
    timeout: 1s
    environment: {GREETING: hi, PROBE_PATH: %q, UPSTREAM: %q, DENIED: %q}
    allowedOutboundHosts: [%q]
  js:
    source: %q
    runtime: nodejs20.x
    handler: index.handler
    minWarm: 2
  gobin:
    source: %q
    runtime: provided.al2023
  pyws:
    source: %q
    runtime: python3.11
    handler: ws.handler
    isolation: none
  authz:
    source: %q
    runtime: python3.11
    handler: authz.handler
apis:
  chat:
    type: websocket
    mount: /chat
    routes:
      $connect: {function: pyws}
      $default: {function: pyws, routeResponse: true}
  web:
    type: http
    authorizers:
      gate: {type: function, function: authz, identitySources: [$request.header.X-Token]}
    routes:
      GET /guarded: {function: gobin, authorization: {type: function, authorizer: gate}}
      ANY /py/{proxy+}: {function: py}
      GET /js: {function: js}
      GET /js/hog: {function: js}
      GET /go: {function: gobin}
`, filepath.Join(dir, "py"), filepath.Join(data, secretKeyFile), upstream.URL+"/up", denied.URL+"/", upstream.URL, filepath.Join(dir, "js"), filepath.Join(dir, "go"), filepath.Join(dir, "pyws"), filepath.Join(dir, "authz"))
	write("gatehouse.yaml", stack, 0o644)
	n := startNode(t, filepath.Join(dir, "gatehouse.yaml"), data)
	t.Cleanup(func() { n.Stop(context.Background()) })
	get := func(path string) response {
		t.Helper()
		return do(t, newRequest(t, "GET", "http://"+n.GatewayAddr()+path, nil))
	}

	var py struct {
		Message, Function, RequestID, Greeting, TaskRoot, Instance string
		Leaked                                                     *string
		RemainingMs                                                int
		ProbeReadable                                              bool
	}
	// A process is told apart by its log stream, named at random when it starts (sandboxed, every
	// process is PID 1 of its own PID namespace).
	instances := map[string]bool{}
	for range 3 {
		r := get("/py/hello")
		if err := json.Unmarshal(r.body, &py); r.status != 200 || err != nil || py.Message != "hello from python" || py.Function != "py" ||
			py.Greeting != "hi" || py.RequestID == "" || py.RemainingMs <= 0 || py.RemainingMs > 1000 {
			t.Fatalf("GET /py/hello: %d %s (%v)", r.status, r.body, err)
		}
		if r.header.Get("Content-Type") != "application/json" {
			t.Errorf("content type %q", r.header.Get("Content-Type"))
		}
		// The process sees its configured environment, never the worker's.
		if py.Leaked != nil {
			t.Errorf("the process sees the worker's environment: %q", *py.Leaked)
		}
		// Sandboxed, it sees its package at Lambda's /var/task and none of the node's files: not the
		// data directory's secret key, which is there.
		if py.TaskRoot != "/var/task" {
			t.Errorf("LAMBDA_TASK_ROOT=%q in a sandbox, want /var/task", py.TaskRoot)
		}
		if _, err := os.Stat(filepath.Join(data, secretKeyFile)); err != nil {
			t.Fatalf("the data directory has no secret key to hide: %v", err)
		}
		if py.ProbeReadable {
			t.Error("a sandboxed Python handler read the data directory's secret.key")
		}
		instances[py.Instance] = true
	}
	if len(instances) > 2 || instances[""] { // one warm process per worker at most, reused
		t.Errorf("3 sequential requests ran in %d processes: not reused (%v)", len(instances), instances)
	}
	if r := get("/js"); r.status != 201 || !strings.Contains(string(r.body), `"message":"hello from node"`) || !strings.Contains(string(r.body), `"path":"/js"`) {
		t.Errorf("GET /js: %d %s", r.status, r.body)
	}
	// 64 requests at once to one Node.js function: all answered, by processes reused. Two are kept
	// warm in each worker; more start on demand, about 120 ms of CPU each, and on this machine's 2
	// cores a burst of them can outlast the 1 s a worker lets an invocation wait: that one is shed
	// with 503 and Retry-After, as any overload is, and answered when tried again.
	var wg sync.WaitGroup
	var mu sync.Mutex
	nodeInstances := map[string]int{}
	failures := 0
	for round := range 2 {
		for range 64 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				// A worker out of capacity answers 503 with Retry-After, as for any overload; a
				// client that honours it is answered on its next try.
				var resp *http.Response
				var err error
				for try := 0; try < 3; try++ {
					if resp, err = http.Get("http://" + n.GatewayAddr() + "/js"); err != nil || resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" {
						break
					}
					resp.Body.Close()
					time.Sleep(time.Second)
				}
				var body map[string]any
				if err == nil {
					err = json.NewDecoder(resp.Body).Decode(&body)
					resp.Body.Close()
				}
				mu.Lock()
				defer mu.Unlock()
				if err != nil || resp.StatusCode != 201 {
					failures++
					return
				}
				instance, _ := body["instance"].(string)
				nodeInstances[instance] = round + 1
			}()
		}
		wg.Wait()
	}
	if failures > 0 || len(nodeInstances) == 0 || len(nodeInstances) >= 128 || nodeInstances[""] != 0 {
		t.Errorf("128 requests in two rounds of 64: %d failed, %d processes", failures, len(nodeInstances))
	}
	// A Node.js handler that keeps allocating dies at its memory (128 MB: V8's heap bounded to 96 MB),
	// and only its process: the client gets 500, and the function answers again.
	if r := get("/js/hog"); r.status != 500 {
		t.Errorf("GET /js/hog: %d %s", r.status, r.body)
	}
	// It died of its heap limit, which its logs say (V8 prints it).
	waitUntil(t, "the out-of-memory death reaches the function's logs", func() bool {
		out, _, _ := cliResult(n, "logs", "js", "--limit", "200")
		return strings.Contains(out, "heap out of memory")
	})
	if r := get("/js"); r.status != 201 {
		t.Errorf("GET /js after a process ran out of memory: %d %s", r.status, r.body)
	}
	if r := get("/go"); r.status != 200 || !strings.Contains(string(r.body), `"greeting":"hello "`) || !strings.Contains(string(r.body), `"functionName":"gobin"`) {
		t.Errorf("GET /go: %d %s", r.status, r.body)
	}
	// Sandboxed, the Python handler has no network but its proxy (urllib honours HTTP_PROXY), which
	// lets it reach what allowedOutboundHosts names and answers 403 for anything else.
	if r := get("/py/fetch"); r.status != 200 || string(r.body) != `{"status": 200, "body": "upstream: /up"}` {
		t.Errorf("GET /py/fetch (an allowed host): %d %s", r.status, r.body)
	}
	if r := get("/py/fetch-denied"); r.status != 200 || !strings.Contains(string(r.body), `"status": 403`) || !strings.Contains(string(r.body), "add it to allowedOutboundHosts") {
		t.Errorf("GET /py/fetch-denied (a host not allowed): %d %s", r.status, r.body)
	}
	// A route behind the Python authorizer: no token is 401 without calling it, a wrong one 403, the
	// right one reaches the route's function.
	if r := get("/guarded"); r.status != 401 {
		t.Errorf("GET /guarded without a token: %d %s", r.status, r.body)
	}
	wrong := newRequest(t, "GET", "http://"+n.GatewayAddr()+"/guarded", nil)
	wrong.Header.Set("X-Token", "nope")
	if r := do(t, wrong); r.status != 403 {
		t.Errorf("GET /guarded with a wrong token: %d %s", r.status, r.body)
	}
	right := newRequest(t, "GET", "http://"+n.GatewayAddr()+"/guarded", nil)
	right.Header.Set("X-Token", "let-me-in")
	if r := do(t, right); r.status != 200 || !strings.Contains(string(r.body), `"functionName":"gobin"`) {
		t.Errorf("GET /guarded with the token: %d %s", r.status, r.body)
	}
	// A thrown error is a 500, as for any failed function; a timeout kills only that process.
	if r := get("/py/fail"); r.status != 500 {
		t.Errorf("GET /py/fail: %d %s", r.status, r.body)
	}
	if r := get("/py/slow"); r.status != 500 {
		t.Errorf("GET /py/slow past the timeout: %d %s", r.status, r.body)
	}
	if r := get("/py/hello"); r.status != 200 {
		t.Errorf("GET /py/hello after a timeout: %d %s", r.status, r.body)
	}

	// A WebSocket API whose routes are a Python handler: $connect lets the client in, and a message
	// is answered through the route response.
	ws := wsDial(t, n, "/chat", nil)
	wsSend(t, ws, "ping from the client")
	if _, got := wsRead(t, ws); !strings.Contains(string(got), `"route": "$default"`) || !strings.Contains(string(got), `"body": "ping from the client"`) {
		t.Errorf("the WebSocket's answer: %s", got)
	}
	ws.Close()

	// /metrics counts them by runtime, as the workers' heartbeats bring the counts in.
	waitUntil(t, "the invocations of the process runtimes reach /metrics", func() bool {
		return metricValue(t, n, `gatehouse_invocations_total{function="py",runtime="python3.11"`) >= 6 &&
			metricValue(t, n, `gatehouse_cold_starts_total{function="js",runtime="nodejs20.x"`) >= 1 &&
			metricValue(t, n, `gatehouse_invocations_total{function="gobin",runtime="provided.al2023"`) >= 1
	})

	// A bundle whose module is a Python package deploys through the admin API, as a Lambda
	// deployment package would, and runs.
	pkg, err := functions.ZipPackage(filepath.Join(dir, "py"))
	if err != nil {
		t.Fatal(err)
	}
	m := functions.NewManifest("pyzip")
	m.Runtime, m.Handler, m.Isolation, m.Module = "python3.11", "app.lambda_handler", "none", functions.DefaultPackageFile
	var bundle bytes.Buffer
	if err := functions.WriteBundle(&bundle, m, pkg); err != nil {
		t.Fatal(err)
	}
	bundlePath := filepath.Join(dir, "pyzip.zip")
	if err := os.WriteFile(bundlePath, bundle.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	runCLI(t, n, "deploy", bundlePath)
	out := runCLI(t, n, "invoke", "pyzip", "--payload", `{"rawPath": "/pyzip/hello"}`)
	if !strings.Contains(out, `hello from python`) || !strings.Contains(out, `\"function\": \"pyzip\"`) {
		t.Errorf("gatehouse invoke pyzip:\n%s", out)
	}
	// So does a directory with its manifest: gatehouse deploy zips it, as a package.
	write("pydir/app.py", pythonHandler, 0o644)
	write("pydir/function.yaml", "version: 1\nname: pydir\nruntime: python3.11\nhandler: app.lambda_handler\nisolation: none\n", 0o644)
	if out := runCLI(t, n, "deploy", filepath.Join(dir, "pydir")); !strings.Contains(out, "python3.11 package") {
		t.Errorf("gatehouse deploy of a package directory:\n%s", out)
	}
	if out := runCLI(t, n, "invoke", "pydir", "--payload", `{"rawPath": "/x"}`); !strings.Contains(out, `\"function\": \"pydir\"`) {
		t.Errorf("gatehouse invoke pydir:\n%s", out)
	}
	// Versions and a canary alias work as for WebAssembly functions: a second version of pydir
	// that greets differently, and an alias that sends half of its calls to it.
	write("pydir/app.py", strings.Replace(pythonHandler, "hello from python", "hello from python v2", 1), 0o644)
	runCLI(t, n, "deploy", filepath.Join(dir, "pydir"))
	runCLI(t, n, "alias", "set", "pydir", "live", "1", "--weight", "2=0.5")
	seen := map[string]int{}
	for range 40 {
		out := runCLI(t, n, "invoke", "pydir:live", "--payload", `{"rawPath": "/x"}`)
		if strings.Contains(out, "hello from python v2") {
			seen["v2"]++
		} else if strings.Contains(out, "hello from python") {
			seen["v1"]++
		}
	}
	// Each side has a 2^-40 chance of none of 40 calls: a failure here is the canary's, not luck's.
	if seen["v1"] == 0 || seen["v2"] == 0 || seen["v1"]+seen["v2"] != 40 {
		t.Errorf("40 calls of pydir:live, 1 with 50%% to 2: %v", seen)
	}
}

// TestPyHelloSample runs samples/py-hello, AWS's tutorial handler, with its own stack file.
func TestPyHelloSample(t *testing.T) {
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("python3 not found on PATH: the sample needs it (.ci/run installs it)")
	}
	needSandbox(t)
	n := startNode(t, filepath.Join("..", "..", "samples", "py-hello", "gatehouse.yaml"), newDataDir(t))
	t.Cleanup(func() { n.Stop(context.Background()) })
	r := do(t, newRequest(t, "GET", "http://"+n.GatewayAddr()+"/hello?name=you", nil))
	var body struct{ Message, RequestID string }
	if err := json.Unmarshal(r.body, &body); r.status != 200 || err != nil || body.Message != "Hello, you, from Python" || body.RequestID == "" {
		t.Fatalf("GET /hello?name=you: %d %s (%v)", r.status, r.body, err)
	}
}

// TestNodeWSSample runs samples/node-ws as the README of its stack file says: a Node.js handler in a
// sandbox, posting to another client through @connections with the AWS SDK for JavaScript v3, signed
// with the credentials the runtime gives it and sent to the gateway through the sandbox's forward.
func TestNodeWSSample(t *testing.T) {
	if _, err := exec.LookPath("node"); err != nil {
		t.Skip("node not found on PATH: the sample needs it (.ci/run installs it)")
	}
	sample := filepath.Join(testfix.RepoRoot(), "samples", "node-ws")
	if _, err := os.Stat(filepath.Join(sample, "node_modules", "@aws-sdk", "client-apigatewaymanagementapi")); err != nil {
		t.Skip("samples/node-ws has no node_modules: run npm install --prefix samples/node-ws (.ci/run does)")
	}
	needSandbox(t)
	n := startNode(t, filepath.Join(sample, "gatehouse.yaml"), newDataDir(t))
	t.Cleanup(func() { n.Stop(context.Background()) })

	whoami := func(c *websocket.Conn) string {
		t.Helper()
		wsSend(t, c, `{"action":"whoami"}`)
		_, msg := wsRead(t, c)
		var r struct{ ConnectionID string }
		if err := json.Unmarshal(msg, &r); err != nil || r.ConnectionID == "" {
			t.Fatalf("whoami: %s (%v)", msg, err)
		}
		return r.ConnectionID
	}
	a, b := wsDial(t, n, "/node-chat", nil), wsDial(t, n, "/node-chat", nil)
	defer a.Close()
	defer b.Close()
	idA, idB := whoami(a), whoami(b)
	wsSend(t, a, fmt.Sprintf(`{"action":"sendmessage","to":%q,"data":"hello b"}`, idB))
	if _, got := wsRead(t, b); string(got) != fmt.Sprintf(`{"from":%q,"data":"hello b"}`, idA) {
		t.Errorf("b received %s", got)
	}
	if _, got := wsRead(t, a); string(got) != `{"sent":true}` {
		t.Errorf("a's route response: %s", got)
	}
	// A connection that is not there: the SDK raises GoneException from the 410.
	wsSend(t, a, `{"action":"sendmessage","to":"AAAAAAAAAAAAAAAAAAAAAAAA","data":"x"}`)
	if _, got := wsRead(t, a); string(got) != `{"error":"GoneException"}` {
		t.Errorf("posting to a connection that is gone: %s", got)
	}
}
