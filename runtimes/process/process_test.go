package process

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// pkgDir is a function package holding the test bootstrap (testdata/bootstrap), built once: a
// provided.al2023 function. goPkgDir holds testdata/golambda as its bootstrap: one built with
// aws-lambda-go.
var pkgDir, goPkgDir string

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "gatehouse-process-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	pkgDir, goPkgDir = filepath.Join(dir, "bootstrap"), filepath.Join(dir, "golambda")
	for _, out := range []string{pkgDir, goPkgDir} {
		cmd := exec.Command("go", "build", "-trimpath", "-o", filepath.Join(out, "bootstrap"), "./testdata/"+filepath.Base(out))
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOWORK=off")
		if b, err := cmd.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "building the test bootstrap %s: %v\n%s", out, err, b)
			return 1
		}
	}
	before := runtime.NumGoroutine()
	code := m.Run()
	if code == 0 {
		if n, stacks := settle(before); n > before {
			fmt.Fprintf(os.Stderr, "goroutines leaked: %d before the tests, %d after\n%s", before, n, stacks)
			return 1
		}
	}
	return code
}

// settle waits up to 5 s for the goroutine count to fall to want; it returns the count and, when it
// is still higher, every goroutine's stack.
func settle(want int) (int, string) {
	var n int
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
		if n = runtime.NumGoroutine(); n <= want {
			return n, ""
		}
	}
	buf := make([]byte, 1<<20)
	return n, string(buf[:runtime.Stack(buf, true)])
}

// lines records the writes of a process's output.
type lines struct {
	mu     sync.Mutex
	writes []string
}

func (l *lines) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.writes = append(l.writes, string(b))
	return len(b), nil
}

func (l *lines) get() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.writes)
}

func config(t testing.TB) Config {
	return Config{
		Command:      []string{"./bootstrap"},
		Dir:          pkgDir,
		Runtime:      "provided.al2023",
		Env:          map[string]string{"GREETING": "hello"},
		FunctionName: "fn",
		Version:      "3",
		Handler:      "bootstrap.handler",
		MemoryMB:     256,
		Region:       "eu-west-1",
		TmpDir:       t.TempDir(),
		Stdout:       &lines{},
		Stderr:       &lines{},
	}
}

func start(t *testing.T, cfg Config) *Process {
	t.Helper()
	p, err := Start(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func invoke(t *testing.T, p *Process, event string) ([]byte, error) {
	t.Helper()
	return p.Invoke(context.Background(), "req-"+strconv.FormatInt(time.Now().UnixNano(), 36), time.Now().Add(20*time.Second), []byte(event))
}

// gone waits up to 5 s for pid to be gone: no such process, or a zombie no one has reaped yet (an
// orphan waiting for init).
func gone(t *testing.T, pid int) {
	t.Helper()
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
			return
		}
		if stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil {
			if i := strings.LastIndexByte(string(stat), ')'); i > 0 && strings.HasPrefix(string(stat[i+1:]), " Z") {
				return
			}
		}
	}
	t.Fatalf("process %d still running", pid)
}

func pidFile(t *testing.T, dir, name string) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatalf("the bootstrap's %s file: %v", name, err)
	}
	pid, err := strconv.Atoi(string(b))
	if err != nil {
		t.Fatal(err)
	}
	return pid
}

func TestEchoRoundTrip(t *testing.T) {
	p := start(t, config(t))
	if !p.Alive() {
		t.Fatal("not alive after Start")
	}
	deadline := time.Now().Add(30 * time.Second)
	for i, id := range []string{"8f0e1d2c-0001", "8f0e1d2c-0002"} { // the second on the warm process
		out, err := p.Invoke(context.Background(), id, deadline, []byte(`{"op":"echo","data":{"n":`+strconv.Itoa(i)+`}}`))
		if err != nil {
			t.Fatalf("Invoke %d: %v", i, err)
		}
		var got struct {
			Event struct {
				Data struct{ N int }
			}
			RequestID, DeadlineMs, Arn, TraceID, Cwd string
		}
		if err := json.Unmarshal(out, &got); err != nil {
			t.Fatalf("%s: %v", out, err)
		}
		if got.Event.Data.N != i {
			t.Errorf("event came back as %s", out)
		}
		if got.RequestID != id {
			t.Errorf("request id %q, want %q", got.RequestID, id)
		}
		if want := strconv.FormatInt(deadline.UnixMilli(), 10); got.DeadlineMs != want {
			t.Errorf("deadline %q, want %q", got.DeadlineMs, want)
		}
		if want := "arn:aws:lambda:eu-west-1:000000000000:function:fn:3"; got.Arn != want {
			t.Errorf("ARN %q, want %q", got.Arn, want)
		}
		if !strings.HasPrefix(got.TraceID, "Root=1-") {
			t.Errorf("trace id %q", got.TraceID)
		}
		if got.Cwd != pkgDir {
			t.Errorf("working directory %q, want %q", got.Cwd, pkgDir)
		}
	}
}

func TestInitError(t *testing.T) {
	cfg := config(t)
	cfg.Env["BOOTSTRAP_INIT"] = "error"
	p, err := Start(context.Background(), cfg)
	if p != nil || !errors.Is(err, ErrInit) {
		t.Fatalf("Start: %v, want ErrInit", err)
	}
	var ie *InitError
	if !errors.As(err, &ie) {
		t.Fatalf("%T is not an *InitError", err)
	}
	if ie.Type != "Runtime.ImportModuleError" || ie.Message != "Unable to import module 'app'" ||
		!slices.Equal(ie.StackTrace, []string{"line 1", "line 2"}) || !json.Valid(ie.Raw) {
		t.Errorf("init error %+v (raw %s)", ie, ie.Raw)
	}
	gone(t, pidFile(t, cfg.TmpDir, "pid"))
}

func TestInitExit(t *testing.T) {
	cfg := config(t)
	cfg.Env["BOOTSTRAP_INIT"] = "exit"
	_, err := Start(context.Background(), cfg)
	var ee *ExitError
	if !errors.Is(err, ErrInit) || !errors.Is(err, ErrExited) || !errors.As(err, &ee) || ee.Code != 3 {
		t.Fatalf("Start: %v, want ErrInit with exit status 3", err)
	}
}

func TestInitTimeout(t *testing.T) {
	cfg := config(t)
	cfg.Env["BOOTSTRAP_INIT"] = "hang"
	cfg.InitTimeout = 300 * time.Millisecond
	_, err := Start(context.Background(), cfg)
	if !errors.Is(err, ErrInit) || !errors.Is(err, ErrTimeout) {
		t.Fatalf("Start: %v, want ErrInit and ErrTimeout", err)
	}
	gone(t, pidFile(t, cfg.TmpDir, "pid"))
}

func TestFunctionError(t *testing.T) {
	p := start(t, config(t))
	_, err := invoke(t, p, `{"op":"error"}`)
	var fe *FunctionError
	if !errors.Is(err, ErrFunction) || !errors.As(err, &fe) {
		t.Fatalf("Invoke: %v, want a *FunctionError", err)
	}
	if fe.Type != "Custom.Boom" || fe.Message != "boom" || !slices.Equal(fe.StackTrace, []string{"at a", "at b"}) || !json.Valid(fe.Raw) {
		t.Errorf("function error %+v (raw %s)", fe, fe.Raw)
	}
	// The process stays warm.
	if _, err := invoke(t, p, `{"op":"echo"}`); err != nil || !p.Alive() {
		t.Fatalf("after a function error: %v, alive %v", err, p.Alive())
	}
}

func TestTimeoutKillsOnlyThatProcess(t *testing.T) {
	slow, other := start(t, config(t)), start(t, config(t))
	_, err := slow.Invoke(context.Background(), "slow-1", time.Now().Add(300*time.Millisecond), []byte(`{"op":"sleep","ms":3600000}`))
	if !errors.Is(err, ErrTimeout) {
		t.Fatalf("Invoke: %v, want ErrTimeout", err)
	}
	if slow.Alive() {
		t.Error("the timed-out process is alive")
	}
	gone(t, slow.Pid())
	if _, err := invoke(t, slow, `{"op":"echo"}`); !errors.Is(err, ErrExited) {
		t.Errorf("Invoke after the timeout: %v, want ErrExited", err)
	}
	if _, err := invoke(t, other, `{"op":"echo"}`); err != nil || !other.Alive() {
		t.Fatalf("the other process: %v, alive %v", err, other.Alive())
	}
	again := start(t, config(t))
	if _, err := invoke(t, again, `{"op":"echo"}`); err != nil {
		t.Fatalf("a new process after the timeout: %v", err)
	}
}

func TestExitMidInvocation(t *testing.T) {
	p := start(t, config(t))
	_, err := invoke(t, p, `{"op":"exit","code":7}`)
	var ee *ExitError
	if !errors.Is(err, ErrExited) || !errors.As(err, &ee) || ee.Code != 7 || ee.OutOfMemory {
		t.Fatalf("Invoke: %v, want ErrExited with status 7", err)
	}
	if p.Alive() {
		t.Error("alive after exiting")
	}
	if _, err := invoke(t, p, `{"op":"echo"}`); !errors.Is(err, ErrExited) {
		t.Errorf("Invoke after the exit: %v, want ErrExited", err)
	}
}

// TestSIGKILLNotOurs: a SIGKILL Gatehouse did not send is an out-of-memory kill where the node has
// no memory cgroup to tell (the kernel's OOM killer is what sends those), and only when the cgroup
// counted one where it has.
func TestSIGKILLNotOurs(t *testing.T) {
	p := start(t, config(t))
	_, err := invoke(t, p, `{"op":"sigkill"}`)
	var ee *ExitError
	if !errors.As(err, &ee) || ee.Signal != syscall.SIGKILL {
		t.Fatalf("Invoke: %v, want an ExitError for SIGKILL", err)
	}
	if p.cg.hasMemory() {
		if ee.OutOfMemory {
			t.Errorf("a process that killed itself, with a memory cgroup that counted no OOM kill: reported %v", err)
		}
	} else if !ee.OutOfMemory || ee.ErrorType() != "Runtime.OutOfMemory" {
		t.Errorf("Invoke: %v, want an out-of-memory ExitError", err)
	}
}

func TestTooLarge(t *testing.T) {
	p := start(t, config(t))
	_, err := invoke(t, p, fmt.Sprintf(`{"op":"big","bytes":%d}`, MaxResponseBytes+1))
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Invoke: %v, want ErrTooLarge", err)
	}
	out, err := invoke(t, p, fmt.Sprintf(`{"op":"big","bytes":%d}`, MaxResponseBytes))
	if err != nil || len(out) != MaxResponseBytes {
		t.Fatalf("a response of exactly the limit: %d bytes, %v", len(out), err)
	}
}

func TestEnvironmentIsolation(t *testing.T) {
	t.Setenv("GATEHOUSE_WORKER_SECRET", "do-not-leak")
	cfg := config(t)
	cfg.Env["AWS_LAMBDA_FUNCTION_NAME"] = "spoofed" // reserved: Lambda's value wins
	cfg.Env["LANG"] = "C.UTF-8"                     // one a function may set
	p := start(t, cfg)
	out, err := invoke(t, p, `{"op":"env"}`)
	if err != nil {
		t.Fatal(err)
	}
	var list []string
	if err := json.Unmarshal(out, &list); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	for _, kv := range list {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	if _, ok := env["GATEHOUSE_WORKER_SECRET"]; ok {
		t.Error("the worker's environment reached the process")
	}
	want := map[string]string{
		"GREETING":                        "hello",
		"AWS_LAMBDA_RUNTIME_API":          p.RuntimeAPI(),
		"_HANDLER":                        "bootstrap.handler",
		"LAMBDA_TASK_ROOT":                pkgDir,
		"LAMBDA_RUNTIME_DIR":              pkgDir,
		"AWS_LAMBDA_FUNCTION_NAME":        "fn",
		"AWS_LAMBDA_FUNCTION_VERSION":     "3",
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
		"AWS_REGION":                      "eu-west-1",
		"AWS_DEFAULT_REGION":              "eu-west-1",
		"AWS_LAMBDA_LOG_GROUP_NAME":       "/aws/lambda/fn",
		"TZ":                              ":UTC",
		"LANG":                            "C.UTF-8",
		"PATH":                            BasePath,
		"TMPDIR":                          cfg.TmpDir,
		"HOME":                            cfg.TmpDir,
	}
	for k, v := range want {
		if env[k] != v {
			t.Errorf("%s=%q, want %q", k, env[k], v)
		}
	}
	if _, ok := env["AWS_EXECUTION_ENV"]; ok {
		t.Error("AWS_EXECUTION_ENV set for a provided runtime")
	}
	if s := env["AWS_LAMBDA_LOG_STREAM_NAME"]; !strings.Contains(s, "/[3]") || len(s) != len("2006/01/02/[3]")+32 {
		t.Errorf("log stream name %q", s)
	}
	for k := range env {
		if _, ok := want[k]; !ok && !slices.Contains([]string{"AWS_LAMBDA_LOG_STREAM_NAME", "AWS_LAMBDA_INITIALIZATION_TYPE"}, k) {
			t.Errorf("unexpected variable %s=%q", k, env[k])
		}
	}
}

func TestEnvironInterpreter(t *testing.T) {
	cfg := Config{Dir: "/srv/fn", Runtime: "python3.12", FunctionName: "fn", Version: "$LATEST", TmpDir: "/tmp/x", Env: map[string]string{}}
	env, err := environ(&cfg, "127.0.0.1:1", "/opt/python/bin")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"AWS_EXECUTION_ENV=AWS_Lambda_python3.12", "PATH=/opt/python/bin:" + BasePath} {
		if !slices.Contains(env, want) {
			t.Errorf("no %s in %q", want, env)
		}
	}
	if d := interpreterDir("/srv/fn/bootstrap", "/srv/fn"); d != "" {
		t.Errorf("a package's own bootstrap puts %q on PATH", d)
	}
	cfg.Env["BAD=NAME"] = "x"
	if _, err := environ(&cfg, "127.0.0.1:1", ""); err == nil {
		t.Error("a variable name with '=' accepted")
	}
}

func TestOutputLines(t *testing.T) {
	cfg := config(t)
	p := start(t, cfg)
	if out, err := invoke(t, p, `{"op":"print"}`); err != nil || string(out) != `"printed"` {
		t.Fatalf("Invoke: %s, %v", out, err)
	}
	p.Close() // waits for the output to be written
	if got, want := cfg.Stdout.(*lines).get(), []string{"bootstrap init\n", "out line 1\n", "out line 2\n"}; !slices.Equal(got, want) {
		t.Errorf("stdout writes %q, want %q", got, want)
	}
	if got, want := cfg.Stderr.(*lines).get(), []string{"err line 1\n"}; !slices.Equal(got, want) {
		t.Errorf("stderr writes %q, want %q", got, want)
	}
}

func TestConcurrentInvokeRefused(t *testing.T) {
	p := start(t, config(t))
	first := make(chan error, 1)
	go func() {
		_, err := p.Invoke(context.Background(), "long", time.Now().Add(time.Hour), []byte(`{"op":"sleep","ms":3600000}`))
		first <- err
	}()
	for !p.busy.Load() {
		runtime.Gosched()
	}
	if _, err := invoke(t, p, `{"op":"echo"}`); !errors.Is(err, ErrBusy) {
		t.Fatalf("second Invoke: %v, want ErrBusy", err)
	}
	p.Close()
	if err := <-first; !errors.Is(err, ErrExited) {
		t.Fatalf("the first Invoke after Close: %v, want ErrExited", err)
	}
}

func TestCloseLeavesNothingBehind(t *testing.T) {
	cfg := config(t)
	p := start(t, cfg)
	done := make(chan error, 1)
	go func() {
		_, err := p.Invoke(context.Background(), "spawn", time.Now().Add(time.Hour), []byte(`{"op":"spawn"}`))
		done <- err
	}()
	var child int
	for end := time.Now().Add(10 * time.Second); child == 0; time.Sleep(10 * time.Millisecond) {
		if b, err := os.ReadFile(filepath.Join(cfg.TmpDir, "child")); err == nil && len(b) > 0 {
			child, _ = strconv.Atoi(string(b))
		} else if time.Now().After(end) {
			t.Fatal("the bootstrap started no child")
		}
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; !errors.Is(err, ErrExited) {
		t.Errorf("Invoke during Close: %v, want ErrExited", err)
	}
	if err := syscall.Kill(p.Pid(), 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("process %d after Close: kill 0: %v", p.Pid(), err)
	}
	gone(t, child)
	if p.Alive() {
		t.Error("alive after Close")
	}
	if err := p.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestRuntimeAPIStatuses(t *testing.T) {
	p := start(t, config(t))
	out, err := invoke(t, p, `{"op":"statuses"}`)
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]int
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatal(err)
	}
	if want := map[string]int{"otherID": 400, "otherPath": 404, "initError": 403}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("statuses %v, want %v", got, want)
	}
	if out, err := invoke(t, p, `{"op":"twice"}`); err != nil || string(out) != `"first"` {
		t.Errorf("two responses: %s, %v; want the first", out, err)
	}
	if _, err := invoke(t, p, `{"op":"echo"}`); err != nil {
		t.Errorf("after two responses: %v", err)
	}
}

func TestNoGoroutineLeft(t *testing.T) {
	before := runtime.NumGoroutine()
	for _, ev := range []string{`{"op":"echo"}`, `{"op":"error"}`, `{"op":"exit","code":1}`} {
		p, err := Start(context.Background(), config(t))
		if err != nil {
			t.Fatal(err)
		}
		_, _ = invoke(t, p, ev)
		p.Close()
	}
	if n, stacks := settle(before); n > before {
		t.Fatalf("%d goroutines before, %d after\n%s", before, n, stacks)
	}
}

func TestAWSLambdaGoBootstrap(t *testing.T) {
	cfg := config(t)
	cfg.Dir = goPkgDir
	p := start(t, cfg)
	deadline := time.Now().Add(30 * time.Second)
	out, err := p.Invoke(context.Background(), "go-1", deadline, []byte(`{"name":"gopher"}`))
	if err != nil {
		t.Fatalf("Invoke: %v", err)
	}
	var got struct {
		Greeting, RequestID, FunctionArn, FunctionName string
		DeadlineMs                                     int64
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("%s: %v", out, err)
	}
	if got.Greeting != "hello gopher" || got.RequestID != "go-1" || got.FunctionName != "fn" ||
		got.FunctionArn != "arn:aws:lambda:eu-west-1:000000000000:function:fn:3" || got.DeadlineMs != deadline.UnixMilli() {
		t.Errorf("reply %s", out)
	}
	_, err = p.Invoke(context.Background(), "go-2", deadline, []byte(`{"fail":true}`))
	var fe *FunctionError
	if !errors.As(err, &fe) || fe.Message != "failed as asked" || fe.Type == "" {
		t.Fatalf("Invoke: %v, want the handler's error", err)
	}
}

func TestInvokeCanceledKillsTheProcess(t *testing.T) {
	p := start(t, config(t))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := p.Invoke(ctx, "cancel-1", time.Now().Add(time.Hour), []byte(`{"op":"sleep","ms":3600000}`))
		done <- err
	}()
	for handed := false; !handed; runtime.Gosched() { // until the process has the event
		p.mu.Lock()
		handed = p.cur != nil && p.cur.id == "cancel-1"
		p.mu.Unlock()
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Invoke: %v, want context.Canceled", err)
	}
	if _, err := invoke(t, p, `{"op":"echo"}`); !errors.Is(err, ErrExited) {
		t.Errorf("Invoke after a cancel: %v, want ErrExited", err)
	}
	if _, err := p.Invoke(context.Background(), "x", time.Time{}, nil); err == nil {
		t.Error("Invoke without a deadline accepted")
	}
}
