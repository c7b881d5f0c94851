package app

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"gatehouse.dev/gatehouse/functions"
	"gatehouse.dev/gatehouse/internal/testfix"
)

func TestWorkerKilledIsReplaced(t *testing.T) {
	for _, standby := range []bool{false, true} {
		t.Run(map[bool]string{false: "new process", true: "with a standby"}[standby], func(t *testing.T) {
			n := startNode(t, "testdata/stack.yaml", newDataDir(t), func(o *Options) { o.Standby = standby })
			defer n.Stop(context.Background())
			url := "http://" + n.GatewayAddr() + "/hello"
			if r := do(t, newRequest(t, "GET", url, nil)); r.status != 200 {
				t.Fatalf("before: %d %s", r.status, r.body)
			}
			before := n.WorkerPIDs()
			if len(before) != 2 {
				t.Fatalf("workers %v, want 2", before)
			}
			spare := 0
			if standby {
				waitUntil(t, "the standby worker is loaded", func() bool { spare = n.sup.readyStandby(); return spare != 0 })
			}
			for _, pid := range before {
				if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
					t.Fatal(err)
				}
			}
			// Every worker is gone at once; the supervisor must bring both back and they must serve again.
			deadline := time.Now().Add(30 * time.Second)
			for {
				pids := n.WorkerPIDs()
				replaced := len(pids) == 2
				for id, pid := range pids {
					if before[id] == pid {
						replaced = false
					}
				}
				if replaced && n.readyWorkers() == 2 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("workers not replaced: before %v, now %v, ready %d", before, pids, n.readyWorkers())
				}
				time.Sleep(20 * time.Millisecond)
			}
			if standby && !slices.Contains(slices.Collect(maps.Values(n.WorkerPIDs())), spare) {
				t.Errorf("workers now %v: the standby (pid %d) replaced none", n.WorkerPIDs(), spare)
			}
			for range 10 {
				if r := do(t, newRequest(t, "GET", url, nil)); r.status != 200 || string(r.body) != `{"message":"hello from gatehouse"}` {
					t.Fatalf("after replacement: %d %s", r.status, r.body)
				}
			}
			if got := n.WorkerRestarts(); got < 2 {
				t.Errorf("restarts = %d, want ≥ 2", got)
			}
			if standby {
				waitUntil(t, "a new standby", func() bool { p := n.sup.readyStandby(); return p != 0 && p != spare })
			}
		})
	}
}

func TestMetrics(t *testing.T) {
	n := sharedNode(t)
	for range 3 {
		do(t, newRequest(t, "GET", "http://"+n.GatewayAddr()+"/hello", nil))
	}
	do(t, newRequest(t, "GET", "http://"+n.GatewayAddr()+"/strict/nope", nil))
	want := []string{
		`gatehouse_http_requests_total{api="web",route="GET /hello",status="200"}`,
		`gatehouse_http_requests_total{api="strict",route="",status="404"}`,
		`gatehouse_http_request_duration_seconds_bucket{api="web",route="GET /hello",le="+Inf"}`,
		`gatehouse_integration_duration_seconds_count{api="web",route="GET /hello"}`,
		`gatehouse_invocations_total{function="hello",runtime="wasm",worker=`,
		`gatehouse_cold_starts_total{function="hello",runtime="wasm",worker=`,
		`gatehouse_instances{function="hello",state="idle",worker=`,
		`gatehouse_warm_share{function="hello"}`,
		`gatehouse_workers_ready 2`,
		`gatehouse_worker_restarts_total`,
	}
	// Worker counters arrive with heartbeats, every half second.
	deadline := time.Now().Add(10 * time.Second)
	for {
		body := scrapeMetrics(t, n)
		var missing []string
		for _, w := range want {
			if !strings.Contains(body, w) {
				missing = append(missing, w)
			}
		}
		if len(missing) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("metrics lack %q", missing)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestHealthz(t *testing.T) {
	n := sharedNode(t)
	resp, err := client.Get("http://" + n.AdminAddr() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"workers":2`) {
		t.Fatalf("healthz = %d %s", resp.StatusCode, body)
	}
}

// cli runs the gatehouse command line (this test binary) in a subprocess.
func cli(t *testing.T, args ...string) *exec.Cmd {
	t.Helper()
	exe, env := cliCommand()
	cmd := exec.Command(exe[0], args...)
	cmd.Env = append(cmd.Environ(), env...)
	return cmd
}

func TestMalformedStackFileExitsNonZero(t *testing.T) {
	var stderr bytes.Buffer
	cmd := cli(t, "up", "-f", "testdata/bad-stack.yaml", "--data", t.TempDir(), "--addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0", "--aws-addr", "127.0.0.1:0")
	cmd.Stderr = &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() == 0 {
		t.Fatalf("exit: %v, want a non-zero exit code; stderr: %s", err, stderr.String())
	}
	if msg := stderr.String(); !strings.Contains(msg, "testdata/bad-stack.yaml:5:") || !strings.Contains(msg, "timeout") {
		t.Fatalf("stderr %q should name the file, line 5 and the key", msg)
	}
}

func TestMissingStackFile(t *testing.T) {
	var stderr bytes.Buffer
	cmd := cli(t, "up", "-f", "testdata/no-such-file.yaml", "--data", t.TempDir())
	cmd.Stderr = &stderr
	if err := cmd.Run(); err == nil || !strings.Contains(stderr.String(), "no-such-file.yaml") {
		t.Fatalf("exit %v, stderr %q", err, stderr.String())
	}
}

// TestSignalDrains runs `gatehouse up` as a user would, sends SIGTERM while a request is in flight, and
// checks that the request completes and the process exits 0.
func TestSignalDrains(t *testing.T) {
	cmd := cli(t, "up", "-f", "testdata/stack.yaml", "--data", newDataDir(t), "--addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0", "--aws-addr", "127.0.0.1:0")
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
	// Wait for the route list and take the address from the /respond line.
	lines := bufio.NewScanner(stdout)
	re := regexp.MustCompile(`POST\s+(http://\S+)/respond\s`)
	var base string
	var out strings.Builder
	for lines.Scan() {
		out.WriteString(lines.Text() + "\n")
		if m := re.FindStringSubmatch(lines.Text()); m != nil {
			base = m[1]
			break
		}
	}
	if base == "" {
		t.Fatalf("no route list in output:\n%s\nstderr:\n%s", out.String(), stderr.String())
	}
	go io.Copy(&out, stdout)

	type result struct {
		status int
		body   string
		err    error
	}
	done := make(chan result, 1)
	go func() {
		req, _ := http.NewRequest("POST", base+"/respond", strings.NewReader(`"finished"`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("x-sleep-ms", "800")
		resp, err := client.Do(req)
		if err != nil {
			done <- result{err: err}
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		done <- result{status: resp.StatusCode, body: string(b)}
	}()
	time.Sleep(300 * time.Millisecond) // the request is now in the function
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	r := <-done
	if r.err != nil || r.status != 200 || r.body != "finished" {
		t.Fatalf("in-flight request: %d %q %v", r.status, r.body, r.err)
	}
	waitErr := make(chan error, 1)
	go func() { waitErr <- cmd.Wait() }()
	select {
	case err := <-waitErr:
		if err != nil {
			t.Fatalf("exit: %v\nstderr:\n%s", err, stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("gatehouse up did not exit after SIGTERM")
	}
	// Nothing accepts connections any more.
	if _, err := client.Get(base + "/hello"); err == nil {
		t.Fatal("gateway still answers after exit")
	}
}

func TestBuildMakesABundle(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "hello.zip")
	var stderr bytes.Buffer
	cmd := cli(t, "build", filepath.Join(testfix.RepoRoot(), "samples", "hello"), "-o", out, "--data", newDataDir(t))
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("build: %v\n%s", err, stderr.String())
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	b, err := functions.ReadBundle(bytes.NewReader(data), int64(len(data)), functions.BundleLimits{})
	if err != nil {
		t.Fatal(err)
	}
	if b.Manifest.Name != "hello" || b.Manifest.ABI != functions.ABIReactor || !bytes.HasPrefix(b.Module, []byte("\x00asm")) {
		t.Fatalf("bundle: manifest %+v, module starts %q", b.Manifest, b.Module[:8])
	}
}

// waitUntil polls cond until it holds, or fails the test after 30 s.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
	}
}
