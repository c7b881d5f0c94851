// Package clustertest runs Gatehouse clusters of real `gatehouse up` processes on loopback and checks
// what their users see through HTTP and WebSocket clients: a deploy on one node served by another,
// WebSocket posts and broadcasts across nodes, a node killed under load, a node cut off from the
// quorum, a rolling restart, and nodes sharing an external NATS cluster.
//
// TestMain builds the gatehouse binary once. The nodes' build/ and compile/ directories are symbolic
// links to the build and compilation caches every test package shares (internal/testfix): both
// are content-addressed and written with a rename, so the nodes of a run, and later runs, reuse what
// one of them built or compiled.
//
// Timing: nothing is asserted about speed but coarse bounds that a loaded two-core machine meets
// many times over; the measured times are logged (go test -v) and the benchmark reports finer ones.
//
//	go test ./internal/clustertest/                                       # about 1.5 minutes
//	go test ./internal/clustertest/ -run '^$' -bench CrossNode -benchtime 1x
package clustertest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"gatehouse.dev/gatehouse/internal/adminapi"
	"gatehouse.dev/gatehouse/internal/testfix"
)

var (
	// gatehouseBin is the gatehouse binary TestMain built.
	gatehouseBin string
	// workRoot is the run's temporary directory, removed when the tests end.
	workRoot string
)

// stackFile is the stack every node serves.
var stackFile = filepath.Join("testdata", "stack.yaml")

func TestMain(m *testing.M) {
	flag.Parse()
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	if testing.Short() {
		return m.Run() // every test skips itself: no binary is needed
	}
	dir, err := os.MkdirTemp("", "gatehouse-clustertest-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	workRoot = dir
	gatehouseBin = filepath.Join(dir, "gatehouse")
	cmd := exec.Command("go", "build", "-o", gatehouseBin, "gatehouse.dev/gatehouse/cmd/gatehouse")
	if out, err := cmd.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building gatehouse: %v\n%s", err, out)
		return 1
	}
	for _, d := range []string{testfix.BuildDir(), testfix.CompileCacheDir()} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
	if abs, err := filepath.Abs(stackFile); err == nil {
		stackFile = abs
	}
	return m.Run()
}

// skipShort skips the calling test in -short mode: every test here runs a cluster.
func skipShort(tb testing.TB) {
	tb.Helper()
	if testing.Short() {
		tb.Skip("runs a cluster of gatehouse processes")
	}
}

// freeAddr returns a loopback address for a node's listener (testfix.FreeAddr: outside the range
// other connections on the machine take their ports from).
func freeAddr(tb testing.TB) string { return testfix.FreeAddr(tb) }

// newDataDir makes a node's data directory under the run's work directory, with build/ and compile/
// linked to the shared caches.
func newDataDir(tb testing.TB, name string) string {
	tb.Helper()
	dir, err := os.MkdirTemp(workRoot, name+"-")
	if err != nil {
		tb.Fatal(err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		tb.Fatal(err)
	}
	for sub, target := range map[string]string{"build": testfix.BuildDir(), "compile": testfix.CompileCacheDir()} {
		if err := os.Symlink(target, filepath.Join(dir, sub)); err != nil {
			tb.Fatal(err)
		}
	}
	return dir
}

// node is one `gatehouse up` process, restartable with the same data directory and flags.
type node struct {
	name  string
	dir   string
	addr  string // gateway
	admin string // admin listener
	route string // cluster route listener; "" outside a cluster
	args  []string

	mu       sync.Mutex
	cmd      *exec.Cmd
	done     chan struct{} // closed when the current process has exited
	exitErr  error
	runs     int
	stdout   string   // the current run's output file
	logFiles []string // every run's output files
}

// nodeConfig describes a node to newNode.
type nodeConfig struct {
	name string
	// cluster, token and join make the node part of an embedded cluster.
	cluster, token string
	join           []string
	route          string
	// nats makes the node use an external NATS instead.
	nats string
	role string
	// dir, when set, is the node's data directory (one an earlier node used); else a new one.
	dir string
	// stack, when set, is the stack file to serve instead of stackFile; args are more flags.
	stack string
	args  []string
}

func newNode(tb testing.TB, cfg nodeConfig) *node {
	tb.Helper()
	dir := cfg.dir
	if dir == "" {
		dir = newDataDir(tb, cfg.name)
	}
	n := &node{name: cfg.name, dir: dir, addr: freeAddr(tb), admin: freeAddr(tb), route: cfg.route}
	stack := stackFile
	if cfg.stack != "" {
		stack = cfg.stack
	}
	n.args = []string{"up", "-f", stack, "--data", n.dir, "--addr", n.addr, "--admin-addr", n.admin,
		"--aws-addr", "", "--workers", "1", "--standby=false"}
	if cfg.cluster != "" {
		n.args = append(n.args, "--cluster", cfg.cluster, "--cluster-listen", cfg.route,
			"--join", strings.Join(cfg.join, ","), "--cluster-token-file", cfg.token)
	}
	if cfg.nats != "" {
		n.args = append(n.args, "--nats", cfg.nats)
	}
	if cfg.role != "" {
		n.args = append(n.args, "--role", cfg.role)
	}
	n.args = append(n.args, cfg.args...)
	return n
}

// start starts the node's process; it returns at once.
func (n *node) start(tb testing.TB) {
	tb.Helper()
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd != nil {
		select {
		case <-n.done:
		default:
			tb.Fatalf("%s: started while running", n.name)
		}
	}
	n.runs++
	base := filepath.Join(workRoot, fmt.Sprintf("%s-run%d", n.name, n.runs))
	stdout, err := os.Create(base + ".stdout")
	if err != nil {
		tb.Fatal(err)
	}
	stderr, err := os.Create(base + ".stderr")
	if err != nil {
		tb.Fatal(err)
	}
	cmd := exec.Command(gatehouseBin, n.args...)
	cmd.Stdout, cmd.Stderr = stdout, stderr
	// Its own process group, and killed with the test binary should that die first. (Its workers
	// have their own groups and die with it.)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		stdout.Close()
		stderr.Close()
		tb.Fatalf("%s: %v", n.name, err)
	}
	done := make(chan struct{})
	n.cmd, n.done, n.exitErr = cmd, done, nil
	n.stdout = stdout.Name()
	n.logFiles = append(n.logFiles, stdout.Name(), stderr.Name())
	go func() {
		err := cmd.Wait()
		stdout.Close()
		stderr.Close()
		n.mu.Lock()
		n.exitErr = err
		n.mu.Unlock()
		close(done)
	}()
}

// exited returns the channel closed when the current process exits.
func (n *node) exited() <-chan struct{} {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.done
}

func (n *node) running() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd == nil {
		return false
	}
	select {
	case <-n.done:
		return false
	default:
		return true
	}
}

func (n *node) pid() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.cmd.Process.Pid
}

// output is what the current run printed so far.
func (n *node) output() string {
	n.mu.Lock()
	path := n.stdout
	n.mu.Unlock()
	b, _ := os.ReadFile(path)
	return string(b)
}

// errExited is awaitOutput's error when the process exited first.
var errExited = errors.New("exited")

// awaitOutput waits until the current run prints s, for at most bound.
func (n *node) awaitOutput(s string, bound time.Duration) error {
	deadline := time.Now().Add(bound)
	done := n.exited()
	for !strings.Contains(n.output(), s) {
		select {
		case <-done:
			n.mu.Lock()
			err := n.exitErr
			n.mu.Unlock()
			return fmt.Errorf("%s %w (%v) before printing %q: %s", n.name, errExited, err, s, n.lastError())
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not print %q within %v", n.name, s, bound)
		}
	}
	return nil
}

// waitOutput waits until the current run prints s.
func (n *node) waitOutput(tb testing.TB, s string, bound time.Duration) {
	tb.Helper()
	if err := n.awaitOutput(s, bound); err != nil {
		tb.Fatal(err)
	}
}

// lastError is the last line the current run wrote to its standard error.
func (n *node) lastError() string {
	n.mu.Lock()
	path := n.logFiles[len(n.logFiles)-1]
	n.mu.Unlock()
	b, _ := os.ReadFile(path)
	ls := lines(string(b))
	if len(ls) == 0 {
		return "(no error output)"
	}
	return ls[len(ls)-1]
}

// waitUp waits until the current run says it serves.
func (n *node) waitUp(tb testing.TB, bound time.Duration) {
	tb.Helper()
	n.waitOutput(tb, "Gatehouse is up", bound)
}

// signal sends sig to the node's process and, with tree, to every process under it (its workers)
// first.
func (n *node) signal(sig syscall.Signal, tree bool) {
	if !n.running() {
		return
	}
	pid := n.pid()
	if tree {
		for _, p := range descendants(pid) {
			syscall.Kill(p, sig)
		}
	}
	syscall.Kill(pid, sig)
}

// kill kills the node and its workers at once, as a lost machine, and waits for the process to end.
func (n *node) kill(tb testing.TB) {
	tb.Helper()
	if !n.running() {
		return
	}
	// Its workers too, at once: nothing of the node may go on answering once `up` is gone (they
	// would die of their parent-death signal anyway).
	pid := n.pid()
	pids := descendants(pid)
	syscall.Kill(pid, syscall.SIGKILL)
	for _, p := range pids {
		syscall.Kill(p, syscall.SIGKILL)
	}
	select {
	case <-n.exited():
	case <-time.After(10 * time.Second):
		tb.Fatalf("%s did not die of SIGKILL", n.name)
	}
}

// terminate sends SIGTERM to the node's process alone (as systemd's KillMode=mixed does) and waits
// for it to exit, which it must do with status 0.
func (n *node) terminate(tb testing.TB, bound time.Duration) {
	tb.Helper()
	n.signal(syscall.SIGTERM, false)
	select {
	case <-n.exited():
	case <-time.After(bound):
		tb.Fatalf("%s did not exit within %v of SIGTERM", n.name, bound)
	}
	n.mu.Lock()
	err := n.exitErr
	n.mu.Unlock()
	if err != nil {
		tb.Errorf("%s exited with %v after SIGTERM, want status 0", n.name, err)
	}
}

// dumpLogs logs the end of every output file of the node.
func (n *node) dumpLogs(tb testing.TB) {
	tb.Helper()
	n.mu.Lock()
	files := append([]string(nil), n.logFiles...)
	n.mu.Unlock()
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		const keep = 12 << 10
		if len(b) > keep {
			b = append([]byte("…"), b[len(b)-keep:]...)
		}
		tb.Logf("=== %s (%s) ===\n%s", n.name, filepath.Base(f), b)
	}
}

func (n *node) url(path string) string { return "http://" + n.addr + path }

func (n *node) adminURL(path string) string { return "http://" + n.admin + path }

// adminToken is the admin token the node keeps in its data directory.
func (n *node) adminToken(tb testing.TB) string {
	tb.Helper()
	b, err := os.ReadFile(adminapi.TokenPath(n.dir))
	if err != nil {
		tb.Fatalf("%s: admin token: %v", n.name, err)
	}
	return strings.TrimSpace(string(b))
}

// healthz returns the status of the node's /healthz, 0 when it does not answer.
func (n *node) healthz() int {
	status, _, _ := get(n.adminURL("/healthz"), 5*time.Second)
	return status
}

// gatehouse runs a command of the gatehouse binary (not up) and returns its standard output.
func gatehouse(tb testing.TB, bound time.Duration, args ...string) string {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), bound)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, gatehouseBin, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		tb.Fatalf("gatehouse %s: %v\nstdout: %s\nstderr: %s", strings.Join(args, " "), err, stdout.Bytes(), stderr.Bytes())
	}
	return stdout.String()
}

// clusterStatus is `gatehouse cluster status --json` asked of n.
func clusterStatus(tb testing.TB, n *node) adminapi.ClusterStatus {
	tb.Helper()
	out := gatehouse(tb, 30*time.Second, "cluster", "status", "--data", n.dir, "--json")
	var st adminapi.ClusterStatus
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		tb.Fatalf("cluster status: %v\n%s", err, out)
	}
	return st
}

// nodeID is the id the node keeps in its data directory.
func (n *node) nodeID(tb testing.TB) string {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join(n.dir, "node.id"))
	if err != nil {
		tb.Fatalf("%s: node id: %v", n.name, err)
	}
	return strings.TrimSpace(string(b))
}

// httpClient is shared by the polling helpers; load generators make their own.
var httpClient = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16, DisableCompression: true}}

// get returns the status and body of GET url, bounded by timeout; 0 and the error when it failed.
func get(url string, timeout time.Duration) (int, []byte, error) {
	return getWith(httpClient, url, timeout)
}

func getWith(c *http.Client, url string, timeout time.Duration) (int, []byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		return 0, nil, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, nil, err
	}
	return resp.StatusCode, body, nil
}

// waitFor polls cond every interval until it holds, and returns how long that took; it fails the test
// past bound, describing what was awaited with the last state cond reported.
func waitFor(tb testing.TB, what string, bound, interval time.Duration, cond func() (bool, string)) time.Duration {
	tb.Helper()
	start := time.Now()
	last := ""
	for {
		ok, state := cond()
		if ok {
			return time.Since(start)
		}
		last = state
		if time.Since(start) > bound {
			tb.Fatalf("%s: not within %v (last: %s)", what, bound, last)
		}
		time.Sleep(interval)
	}
}

// descendants returns the ids of every process under pid, read from /proc.
func descendants(pid int) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	children := map[int][]int{}
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if st, ok := readStat(p); ok {
			children[st.ppid] = append(children[st.ppid], p)
		}
	}
	var out []int
	queue := []int{pid}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, c := range children[p] {
			out = append(out, c)
			queue = append(queue, c)
		}
	}
	return out
}

// procStat is what the tests read of /proc/PID/stat.
type procStat struct {
	ppid int
	// cpuTicks is the user and system time, in clock ticks (USER_HZ, 100 a second on Linux).
	cpuTicks int64
}

func readStat(pid int) (procStat, bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procStat{}, false
	}
	// The command name, in parentheses, may hold spaces: the fields start after the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return procStat{}, false
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return procStat{}, false
	}
	ppid, _ := strconv.Atoi(f[1])
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return procStat{ppid: ppid, cpuTicks: utime + stime}, true
}

// clockTick is USER_HZ, the unit of /proc/PID/stat's times.
const clockTick = 10 * time.Millisecond

// treeCPU is the CPU time used so far by each process and its descendants (the node and its
// workers); processes that exited meanwhile are not counted.
func treeCPU(pids ...int) time.Duration {
	var ticks int64
	for _, pid := range pids {
		for _, p := range append([]int{pid}, descendants(pid)...) {
			if st, ok := readStat(p); ok {
				ticks += st.cpuTicks
			}
		}
	}
	return time.Duration(ticks) * clockTick
}

// result is one request of a load generator.
type result struct {
	client  int
	target  string
	start   time.Time
	latency time.Duration
	status  int
	err     error
}

func (r result) ok() bool { return r.err == nil && r.status == http.StatusOK }

func (r result) String() string {
	if r.err != nil {
		return fmt.Sprintf("client %d → %s at %s: %v after %v", r.client, r.target, r.start.Format("15:04:05.000"), r.err, r.latency.Round(time.Millisecond))
	}
	return fmt.Sprintf("client %d → %s at %s: %d after %v", r.client, r.target, r.start.Format("15:04:05.000"), r.status, r.latency.Round(time.Millisecond))
}

// load runs clients concurrent HTTP clients, each sending GET path to its target in turn (client i to
// targets[i%len(targets)]) one request at a time, until stop is closed; it returns every request's
// result once all have ended. A 200 whose body does not hold want is a failure.
func load(targets []*node, clients int, path, want string, stop <-chan struct{}) []result {
	var mu sync.Mutex
	var all []result
	var wg sync.WaitGroup
	for i := range clients {
		target := targets[i%len(targets)]
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1, DisableCompression: true}}
			defer c.CloseIdleConnections()
			var mine []result
			for {
				select {
				case <-stop:
					mu.Lock()
					all = append(all, mine...)
					mu.Unlock()
					return
				default:
				}
				start := time.Now()
				// 60 s: beyond the route's 30 s integration timeout, so that a request that would
				// wait for it is seen waiting, not cut short by the client.
				status, body, err := getWith(c, target.url(path), 60*time.Second)
				if err == nil && status == http.StatusOK && !strings.Contains(string(body), want) {
					err = fmt.Errorf("200 with the body %q, want one with %q", body, want)
				}
				mine = append(mine, result{client: i, target: target.name, start: start, latency: time.Since(start), status: status, err: err})
				if err != nil {
					time.Sleep(10 * time.Millisecond) // a refused connection fails at once
				}
			}
		}()
	}
	wg.Wait()
	sort.Slice(all, func(i, j int) bool { return all[i].start.Before(all[j].start) })
	return all
}

// startLoad runs load in the background; the function it returns stops it and returns the results.
// It stops when the test ends in any case.
func startLoad(tb testing.TB, targets []*node, clients int, path, want string) func() []result {
	stop := make(chan struct{})
	done := make(chan []result, 1)
	go func() { done <- load(targets, clients, path, want, stop) }()
	var once sync.Once
	var rs []result
	finish := func() []result {
		once.Do(func() {
			close(stop)
			rs = <-done
		})
		return rs
	}
	tb.Cleanup(func() { finish() })
	return finish
}

// summary describes a load run's results in a line: counts, failures and latency percentiles.
func summary(rs []result) string {
	var lat []time.Duration
	failed := 0
	for _, r := range rs {
		lat = append(lat, r.latency)
		if !r.ok() {
			failed++
		}
	}
	if len(lat) == 0 {
		return "no requests"
	}
	return fmt.Sprintf("%d requests, %d failed; latency p50 %v, p99 %v, max %v", len(rs), failed,
		percentile(lat, 50).Round(time.Microsecond), percentile(lat, 99).Round(time.Microsecond), percentile(lat, 100).Round(time.Microsecond))
}

// percentile returns the p-th percentile (nearest rank) of ds, which it sorts.
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	i := int(float64(len(ds))*p/100+0.5) - 1
	return ds[max(0, min(i, len(ds)-1))]
}

// copyDir copies the regular files of src (not its subdirectories) into dst.
func copyDir(tb testing.TB, src, dst string) {
	tb.Helper()
	if err := os.MkdirAll(dst, 0o755); err != nil {
		tb.Fatal(err)
	}
	entries, err := os.ReadDir(src)
	if err != nil {
		tb.Fatal(err)
	}
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			tb.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), b, 0o644); err != nil {
			tb.Fatal(err)
		}
	}
}

// lines returns the non-empty lines of s.
func lines(s string) []string {
	var out []string
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" {
			out = append(out, l)
		}
	}
	return out
}
