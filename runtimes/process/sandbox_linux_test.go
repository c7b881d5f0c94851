package process

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"gatehouse.dev/gatehouse/runtimes/process/sandbox"
)

// needSandbox skips a test on a node that cannot make sandboxes, saying why.
func needSandbox(t *testing.T) {
	t.Helper()
	if err := CheckSandbox(context.Background(), t.TempDir()); err != nil {
		t.Skipf("this machine cannot sandbox processes (%v); the sandbox tests need Linux namespaces", err)
	}
}

func sandboxed(t *testing.T) Config {
	needSandbox(t)
	cfg := config(t)
	cfg.Isolate = true
	return cfg
}

// call invokes p with ev and decodes its answer into out.
func call(t *testing.T, p *Process, ev any, out any) {
	t.Helper()
	b, _ := json.Marshal(ev)
	res, err := invoke(t, p, string(b))
	if err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	if err := json.Unmarshal(res, out); err != nil {
		t.Fatalf("%s: answer %s: %v", b, res, err)
	}
}

func TestSandboxProcessView(t *testing.T) {
	cfg := sandboxed(t)
	cfg.AccessKeyID, cfg.SecretAccessKey, cfg.GatewayURL = "ASIAEXAMPLEEXAMPLE00", "secret-of-the-function-0000000000000000", "http://127.0.0.1:8080"
	p := start(t, cfg)
	var who struct {
		UID, GID, PID int
		Hostname, Cwd string
	}
	call(t, p, map[string]string{"op": "whoami"}, &who)
	if os.Geteuid() == 0 && (who.UID != sandbox.Nobody || who.GID != sandbox.Nobody) {
		t.Errorf("runs as %d:%d; root's sandboxes run as nobody (%d)", who.UID, who.GID, sandbox.Nobody)
	}
	if who.UID == 0 {
		t.Error("the sandboxed process is root")
	}
	if who.PID != 1 || who.Hostname != "sandbox" || who.Cwd != SandboxTaskRoot {
		t.Errorf("pid %d, hostname %q, cwd %q: want its own PID namespace (1), UTS namespace, and %s", who.PID, who.Hostname, who.Cwd, SandboxTaskRoot)
	}

	// No capabilities, none to gain.
	var status map[string]string
	call(t, p, map[string]any{"op": "read", "paths": []string{"/proc/self/status"}, "bytes": 8000}, &status)
	for _, want := range []string{"CapEff:\t0000000000000000", "CapPrm:\t0000000000000000", "CapAmb:\t0000000000000000", "NoNewPrivs:\t1"} {
		if !strings.Contains(status["/proc/self/status"], want) {
			t.Errorf("/proc/self/status has no %q:\n%s", want, status["/proc/self/status"])
		}
	}

	var env []string
	call(t, p, map[string]string{"op": "env"}, &env)
	want := map[string]string{
		"AWS_LAMBDA_RUNTIME_API": SandboxRuntimeAPI, "LAMBDA_TASK_ROOT": SandboxTaskRoot,
		"LAMBDA_RUNTIME_DIR": SandboxTaskRoot, "TMPDIR": SandboxTmp, "HOME": SandboxTmp, "GREETING": "hello",
		"AWS_ACCESS_KEY_ID": cfg.AccessKeyID, "AWS_SECRET_ACCESS_KEY": cfg.SecretAccessKey,
		"GATEHOUSE_GATEWAY_URL": cfg.GatewayURL,
	}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		if w, ok := want[k]; ok {
			if v != w {
				t.Errorf("%s=%q, want %q", k, v, w)
			}
			delete(want, k)
		}
		if k == sandbox.Env {
			t.Errorf("the sandbox's description reached the process: %s", kv)
		}
	}
	if len(want) > 0 {
		t.Errorf("missing from the environment: %v", want)
	}
}

// TestSandboxFiles: a sandboxed process reads its package and the system's files, and nothing of
// the node's own: not a secret next to its package, not the worker's files, not root's home.
func TestSandboxFiles(t *testing.T) {
	cfg := sandboxed(t)
	secretDir := t.TempDir()
	secret := filepath.Join(secretDir, "secret.key")
	if err := os.WriteFile(secret, []byte("node secret"), 0o644); err != nil {
		t.Fatal(err)
	}
	self, _ := os.Executable()
	p := start(t, cfg)
	paths := []string{secret, self, pkgDir + "/bootstrap", SandboxTaskRoot + "/bootstrap", "/etc/passwd", "/etc/shadow",
		"/proc/1/cmdline", "/usr/bin/env"}
	var got map[string]string
	call(t, p, map[string]any{"op": "read", "paths": paths}, &got)
	for _, path := range []string{secret, self, pkgDir + "/bootstrap", "/etc/shadow"} {
		if !strings.HasPrefix(got[path], "error:") {
			t.Errorf("%s is readable in the sandbox: %q", path, got[path])
		}
	}
	for _, path := range []string{SandboxTaskRoot + "/bootstrap", "/usr/bin/env"} {
		if strings.HasPrefix(got[path], "error:") {
			t.Errorf("%s: %s", path, got[path])
		}
	}
	if !strings.Contains(got["/etc/passwd"], "sbx_user") {
		t.Errorf("/etc/passwd is not the sandbox's own: %q", got["/etc/passwd"])
	}
	if !strings.HasPrefix(got["/proc/1/cmdline"], "./bootstrap") {
		t.Errorf("/proc/1/cmdline = %q: the sandbox's /proc is not its own PID namespace's", got["/proc/1/cmdline"])
	}

	// The package is read-only.
	var wrote string
	call(t, p, map[string]any{"op": "write", "bytes": 10}, &wrote) // $TMPDIR: allowed
	if wrote != "ok" {
		t.Errorf("writing /tmp: %s", wrote)
	}
}

// TestSandboxNetwork: a sandboxed process reaches its Runtime API and nothing else: not a listener on
// the node's loopback, not the outside.
func TestSandboxNetwork(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	p := start(t, sandboxed(t))
	node := ln.Addr().String()
	var got map[string]string
	call(t, p, map[string]any{"op": "dial", "addrs": []string{node, SandboxRuntimeAPI, "192.0.2.1:80"}}, &got)
	if got[SandboxRuntimeAPI] != "ok" {
		t.Errorf("the Runtime API from inside: %s", got[SandboxRuntimeAPI])
	}
	if !strings.Contains(got[node], "refused") {
		t.Errorf("a listener on the node's loopback (%s) from inside: %q, want connection refused", node, got[node])
	}
	if !strings.Contains(got["192.0.2.1:80"], "unreachable") {
		t.Errorf("the outside network from inside: %q, want network unreachable", got["192.0.2.1:80"])
	}
}

// TestSandboxTmpCap: /tmp holds 512 MB and no more.
func TestSandboxTmpCap(t *testing.T) {
	cfg := sandboxed(t)
	cfg.MemoryMB = 1024 // /tmp is memory: room for all of it
	p := start(t, cfg)
	var got string
	call(t, p, map[string]any{"op": "write", "bytes": SandboxTmpBytes + 1<<20}, &got)
	if !strings.Contains(got, "no space left") {
		t.Errorf("writing past %d bytes to /tmp: %q, want no space left on device", SandboxTmpBytes, got)
	}
	call(t, p, map[string]any{"op": "write", "bytes": 100 << 20}, &got)
	if got != "ok" {
		t.Errorf("writing 100 MB to /tmp: %s", got)
	}
}

// TestMemoryLimit: a process that goes past its memory is killed and reported out of memory, and the
// next process of the same configuration works — sandboxed or not, where the node has a memory
// cgroup.
func TestMemoryLimit(t *testing.T) {
	for _, isolate := range []bool{true, false} {
		t.Run("isolate="+strconv.FormatBool(isolate), func(t *testing.T) {
			cfg := config(t)
			if isolate {
				cfg = sandboxed(t)
			}
			cfg.MemoryMB = 128
			p := start(t, cfg)
			if !p.cg.hasMemory() {
				t.Skip("this machine gives the worker no memory cgroup (v1 memory hierarchy or delegated v2)")
			}
			var n int
			call(t, p, map[string]any{"op": "alloc", "bytes": 32 << 20}, &n) // well within
			_, err := invoke(t, p, `{"op":"alloc","bytes":`+strconv.Itoa(400<<20)+`}`)
			var ee *ExitError
			if !errors.As(err, &ee) || !ee.OutOfMemory {
				t.Fatalf("allocating 400 MB with a 128 MB limit: %v, want an out-of-memory exit", err)
			}
			p2 := start(t, cfg)
			call(t, p2, map[string]any{"op": "alloc", "bytes": 32 << 20}, &n)
		})
	}
}

// TestSandboxTimeout: a sandboxed process past its deadline is killed, with everything in its PID
// namespace.
func TestSandboxTimeout(t *testing.T) {
	p := start(t, sandboxed(t))
	_, err := p.Invoke(context.Background(), "req-1", time.Now().Add(300*time.Millisecond), []byte(`{"op":"sleep","ms":5000}`))
	if !errors.Is(err, ErrTimeout) {
		t.Fatalf("got %v, want ErrTimeout", err)
	}
	gone(t, p.Pid())
}

func TestInsidePath(t *testing.T) {
	for _, c := range [][2]string{
		{"/w/task/bootstrap", "/var/task/bootstrap"},
		{"/w/task", "/var/task"},
		{"/w/rt/bootstrap.py", "/var/runtime/bootstrap.py"},
		{"/w/taskother/x", "/w/taskother/x"},
		{"/usr/bin/python3", "/usr/bin/python3"},
		{"--max-old-space-size=96", "--max-old-space-size=96"},
	} {
		if got := insidePath(c[0], "/w/task", "/w/rt"); got != c[1] {
			t.Errorf("insidePath(%q) = %q, want %q", c[0], got, c[1])
		}
	}
}

// BenchmarkStart measures a cold start of the test bootstrap, sandboxed and not: Start to the end of
// its init phase. Run with: go test -run '^$' -bench Start ./runtimes/process/
func BenchmarkStart(b *testing.B) {
	for _, isolate := range []bool{false, true} {
		b.Run("isolate="+strconv.FormatBool(isolate), func(b *testing.B) {
			if isolate {
				if err := CheckSandbox(context.Background(), b.TempDir()); err != nil {
					b.Skip(err)
				}
			}
			for b.Loop() {
				cfg := config(b)
				cfg.Isolate = isolate
				p, err := Start(context.Background(), cfg)
				if err != nil {
					b.Fatal(err)
				}
				p.Close()
			}
		})
	}
}

// TestSandboxProxy: a sandboxed process reaches the network through its proxy, and only where Dial
// lets it: plain HTTP to an allowed host answers, a host Dial refuses is 403, and an https tunnel to
// a refused host fails.
func TestSandboxProxy(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "upstream saw %s %s", r.Host, r.URL.Path)
	}))
	defer srv.Close()
	cfg := sandboxed(t)
	var mu sync.Mutex
	var asked []string
	cfg.Dial = func(ctx context.Context, scheme, host string, port int) (net.Conn, error) {
		mu.Lock()
		asked = append(asked, fmt.Sprintf("%s://%s:%d", scheme, host, port))
		mu.Unlock()
		if scheme == "http" && host == "allowed.test" && port == 80 {
			var d net.Dialer
			return d.DialContext(ctx, "tcp", srv.Listener.Addr().String())
		}
		return nil, fmt.Errorf("%w: %s://%s:%d is not in allowedOutboundHosts", ErrDenied, scheme, host, port)
	}
	p := start(t, cfg)
	type fetched struct {
		Status      int
		Body, Error string
	}
	var got fetched
	call(t, p, map[string]string{"op": "fetch", "url": "http://allowed.test/path"}, &got)
	if got.Status != 200 || got.Body != "upstream saw allowed.test /path" {
		t.Errorf("an allowed host through the proxy: %+v", got)
	}
	got = fetched{}
	call(t, p, map[string]string{"op": "fetch", "url": "http://denied.test/"}, &got)
	if got.Status != 403 || !strings.Contains(got.Body, "not in allowedOutboundHosts") {
		t.Errorf("a refused host through the proxy: %+v, want 403 and why", got)
	}
	got = fetched{}
	call(t, p, map[string]string{"op": "fetch", "url": "https://denied.test/"}, &got)
	if got.Error == "" || !strings.Contains(got.Error, "Forbidden") {
		t.Errorf("an https tunnel to a refused host: %+v, want the proxy's Forbidden", got)
	}
	mu.Lock()
	defer mu.Unlock()
	if strings.Join(asked, " ") != "http://allowed.test:80 http://denied.test:80 https://denied.test:443" {
		t.Errorf("the proxy asked Dial for %v", asked)
	}
}

// TestSandboxForward: a forward's address inside the sandbox leads to its target, directly and
// through the proxy (whatever Dial says), and is in NO_PROXY.
func TestSandboxForward(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "gateway saw %s", r.URL.Path)
	}))
	defer srv.Close()
	cfg := sandboxed(t)
	cfg.Dial = func(ctx context.Context, scheme, host string, port int) (net.Conn, error) {
		return nil, fmt.Errorf("%w: nothing is allowed", ErrDenied)
	}
	fw, ok := GatewayForward("0.0.0.0:18080")
	if !ok || fw.Inside != "127.0.0.1:18080" || fw.Target != "127.0.0.1:18080" {
		t.Fatalf("GatewayForward(0.0.0.0:18080) = %+v %v", fw, ok)
	}
	if _, ok := GatewayForward("127.0.0.1:9001"); ok {
		t.Error("a gateway on the sandbox's own Runtime API port is forwarded")
	}
	fw.Target = srv.Listener.Addr().String()
	cfg.Forwards = []Forward{fw}
	p := start(t, cfg)
	var got struct {
		Status      int
		Body, Error string
	}
	// Go never proxies loopback: this is the direct path.
	call(t, p, map[string]string{"op": "fetch", "url": "http://127.0.0.1:18080/direct"}, &got)
	if got.Status != 200 || got.Body != "gateway saw /direct" {
		t.Errorf("the forward, directly: %+v", got)
	}
	var env []string
	call(t, p, map[string]string{"op": "env"}, &env)
	if !slices.Contains(env, "NO_PROXY=127.0.0.1:9001,localhost:9001,127.0.0.1:18080,localhost:18080") {
		t.Errorf("NO_PROXY does not name the forward: %v", env)
	}
	// Through the proxy, as a client that ignores NO_PROXY's ports would send it.
	conn, err := p.proxyDial()(context.Background(), "http", "localhost", 18080)
	if err != nil {
		t.Fatalf("the proxy's dial of the forward: %v", err)
	}
	conn.Close()
	if _, err := p.proxyDial()(context.Background(), "http", "127.0.0.1", 18081); !errors.Is(err, ErrDenied) {
		t.Errorf("the proxy's dial of another port: %v, want ErrDenied", err)
	}
}

// TestRemoveStaleCgroups: the cgroups a dead worker left are removed, a live worker's stay.
func TestRemoveStaleCgroups(t *testing.T) {
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	stale, err := newCgroup(cgroupName(dead.Process.Pid), 64<<20, 16)
	if !stale.hasMemory() {
		t.Skipf("this machine gives the worker no memory cgroup: %v", err)
	}
	live, _ := newCgroup(cgroupName(os.Getpid()), 64<<20, 16)
	defer live.remove()
	if n := RemoveStaleCgroups(); n < 1 {
		t.Errorf("RemoveStaleCgroups removed %d", n)
	}
	if _, err := os.Stat(stale.memory); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the dead worker's cgroup %s is still there: %v", stale.memory, err)
	}
	if _, err := os.Stat(live.memory); err != nil {
		t.Errorf("the live worker's cgroup is gone: %v", err)
	}
}
