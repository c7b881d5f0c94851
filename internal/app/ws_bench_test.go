package app

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/fasthttp/websocket"

	"gatehouse.dev/gatehouse/internal/adminapi"
)

// The WebSocket benchmarks open thousands of sockets, so they run only with GATEHOUSE_BENCH_WS=1:
//
//	GATEHOUSE_BENCH_WS=1 go test ./internal/app -run '^$' -bench WebSocketConnect -benchtime 5x
//	GATEHOUSE_BENCH_WS=1 go test ./internal/app -run '^$' -bench WebSocketIdle -benchtime 1x
//	GATEHOUSE_BENCH_WS=1 go test ./internal/app -run '^$' -bench Broadcast10k -benchtime 5x
//
// Each runs `gatehouse up` with testdata/wsbench-stack.yaml (2 workers) in a subprocess of its own,
// because the limit on open files is per process: the gateway's sockets count in that process, the
// clients' in this one. Clients dial from 127.0.0.1 to 127.0.0.4 (where the system lets them), so that
// ephemeral ports do not run out.
//
// GATEHOUSE_BENCH_WS_PPROF=127.0.0.1:6061 serves net/http/pprof from the `up` process at that address
// (test binary only), e.g. for `go tool pprof http://127.0.0.1:6061/debug/pprof/profile?seconds=10`.
const (
	envBenchWS      = "GATEHOUSE_BENCH_WS"
	envBenchWSPprof = "GATEHOUSE_BENCH_WS_PPROF"
	// envBenchWSIdle sets how many connections BenchmarkWebSocketIdle opens (default wsbIdleConns).
	envBenchWSIdle = "GATEHOUSE_BENCH_WS_IDLE"
	// envBenchWSDialers sets how many dialers BenchmarkWebSocketConnect runs at once (default
	// wsbConnectDialers).
	envBenchWSDialers = "GATEHOUSE_BENCH_WS_DIALERS"
	// envBenchWSWorkerMode, when set, is the node's --worker-mode (process or inline).
	envBenchWSWorkerMode = "GATEHOUSE_BENCH_WS_WORKER_MODE"
)

const (
	// wsbIdleConns is how many idle connections BenchmarkWebSocketIdle opens by default: as many as
	// the limit of 20,000 open files per process leaves room for.
	wsbIdleConns = 19000
	// wsbConnectBatch is how many connections one iteration of BenchmarkWebSocketConnect opens, from
	// wsbConnectDialers dialers at once.
	wsbConnectBatch   = 2000
	wsbConnectDialers = 16
	// wsbBroadcastConns is how many clients BenchmarkBroadcast10k reaches; wsbPosters is how many
	// @connections POSTs it has in flight.
	wsbBroadcastConns = 10000
	wsbPosters        = 64
	// wsbTimeout bounds every single wait of these benchmarks: a start, a dial, a delivery, a drain.
	wsbTimeout = 2 * time.Minute
	// The access key of testdata/wsbench-stack.yaml.
	wsbKeyID     = "AKIAIOSFODNN7EXAMPLE"
	wsbKeySecret = "wJalrXUtnFEMIK7MDENGbPxRfiCYEXAMPLEKEY"
)

// In the `up` process of a benchmark (this test binary run as the command line), serve pprof when asked.
func init() {
	addr := os.Getenv(envBenchWSPprof)
	if addr == "" || os.Getenv(envRunCLI) != "1" || len(os.Args) < 2 || os.Args[1] != "up" {
		return
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	go func() {
		if err := http.ListenAndServe(addr, mux); err != nil {
			fmt.Fprintln(os.Stderr, "pprof:", err)
		}
	}()
}

// wsbStack is `gatehouse up` running testdata/wsbench-stack.yaml in a subprocess.
type wsbStack struct {
	cmd    *exec.Cmd
	wsURL  string // ws://127.0.0.1:PORT/live
	base   string // http://127.0.0.1:PORT/live, for @connections
	admin  string // http://127.0.0.1:PORT of the admin API
	token  string
	stderr *syncBuffer
	waited chan error
	once   sync.Once
}

func wsbSkip(b *testing.B) {
	b.Helper()
	if os.Getenv(envBenchWS) != "1" {
		b.Skipf("opens thousands of sockets: set %s=1 to run", envBenchWS)
	}
}

// wsbStart runs `gatehouse up` with the worker mode GATEHOUSE_BENCH_WS_WORKER_MODE names (the
// default when unset) and waits for its route list; the process is stopped when b ends.
func wsbStart(b *testing.B) *wsbStack {
	b.Helper()
	return wsbStartMode(b, os.Getenv(envBenchWSWorkerMode))
}

// wsbStartMode is wsbStart with --worker-mode mode ("" for the default).
func wsbStartMode(b *testing.B, mode string) *wsbStack {
	b.Helper()
	exe, env := cliCommand()
	dataDir := newDataDir(b)
	args := []string{"up", "-f", "testdata/wsbench-stack.yaml", "--data", dataDir,
		"--addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0", "--aws-addr", "127.0.0.1:0", "--workers", "2"}
	if mode != "" {
		args = append(args, "--worker-mode", mode)
	}
	cmd := exec.Command(exe[0], args...)
	cmd.Env = append(cmd.Environ(), env...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	s := &wsbStack{cmd: cmd, stderr: &syncBuffer{}, waited: make(chan error, 1)}
	cmd.Stderr = s.stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.stop(b) })
	go func() {
		s.waited <- cmd.Wait()
	}()

	wsRe := regexp.MustCompile(`^\s*WS\s+(ws://\S+)\s`)
	postRe := regexp.MustCompile(`^\s*POST\s+(http://\S+)/@connections/`)
	adminRe := regexp.MustCompile(`^admin: (http://[^/\s]+)/healthz`)
	ready := make(chan error, 1)
	var out syncBuffer
	go func() {
		lines := bufio.NewScanner(stdout)
		for lines.Scan() {
			line := lines.Text()
			out.Write([]byte(line + "\n"))
			if m := wsRe.FindStringSubmatch(line); m != nil {
				s.wsURL = m[1]
			}
			if m := postRe.FindStringSubmatch(line); m != nil {
				s.base = m[1]
			}
			if m := adminRe.FindStringSubmatch(line); m != nil {
				s.admin = m[1]
				ready <- nil
				io.Copy(io.Discard, stdout)
				return
			}
		}
		ready <- errors.New("the output ended before the route list")
	}()
	select {
	case err = <-ready:
	case <-time.After(wsbTimeout):
		err = fmt.Errorf("not up within %v", wsbTimeout)
	}
	if err == nil && (s.wsURL == "" || s.base == "") {
		err = errors.New("no WebSocket route in the route list")
	}
	if err != nil {
		b.Fatalf("gatehouse up: %v\nstdout:\n%s\nstderr:\n%s", err, out.String(), s.stderr.String())
	}
	tok, err := os.ReadFile(adminapi.TokenPath(dataDir))
	if err != nil {
		b.Fatal(err)
	}
	s.token = strings.TrimSpace(string(tok))
	return s
}

// stop sends SIGTERM and waits for the process to drain; it is killed if it does not exit in time.
func (s *wsbStack) stop(b *testing.B) {
	s.once.Do(func() { s.stopOnce(b) })
}

func (s *wsbStack) stopOnce(b *testing.B) {
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.waited:
	case <-time.After(wsbTimeout):
		s.cmd.Process.Kill()
		<-s.waited
		b.Logf("gatehouse up did not exit within %v of SIGTERM; killed", wsbTimeout)
	}
	if b.Failed() {
		b.Logf("gatehouse up stderr:\n%s", s.stderr.String())
	}
}

// rss returns the resident set size of the `up` process (VmRSS), in bytes.
func (s *wsbStack) rss(b *testing.B) int64 {
	b.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", s.cmd.Process.Pid))
	if err != nil {
		b.Skipf("reading the gateway's memory: %v", err)
	}
	for line := range strings.Lines(string(data)) {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				b.Fatalf("VmRSS %q: %v", rest, err)
			}
			return kb << 10
		}
	}
	b.Fatal("no VmRSS in /proc/PID/status")
	return 0
}

// cpu returns the CPU time (user and system) the `up` process and its workers have used so far.
func (s *wsbStack) cpu() (gateway, workers time.Duration) {
	pid := s.cmd.Process.Pid
	gateway, _ = wsbProcCPU(pid)
	procs, _ := os.ReadDir("/proc")
	for _, p := range procs {
		child, err := strconv.Atoi(p.Name())
		if err != nil {
			continue
		}
		if t, ppid := wsbProcCPU(child); ppid == pid {
			workers += t
		}
	}
	return gateway, workers
}

// wsbProcCPU returns the CPU time process pid has used (utime + stime, at the kernel's 100 ticks a
// second) and its parent's pid; zeros when it cannot be read.
func wsbProcCPU(pid int) (time.Duration, int) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0
	}
	// The command name (field 2) may hold spaces; the fields after it are plain.
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return 0, 0
	}
	f := strings.Fields(string(data[i+1:]))
	if len(f) < 13 {
		return 0, 0
	}
	ppid, _ := strconv.Atoi(f[1])
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * 10 * time.Millisecond, ppid
}

// metrics returns the values of the `up` process's metrics (name with its labels → value).
func (s *wsbStack) metrics(b *testing.B) map[string]float64 {
	b.Helper()
	req, err := http.NewRequest("GET", s.admin+"/metrics", nil)
	if err != nil {
		b.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+s.token)
	resp, err := client.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	m := map[string]float64{}
	lines := bufio.NewScanner(resp.Body)
	lines.Buffer(nil, 1<<20)
	for lines.Scan() {
		line := lines.Text()
		i := strings.LastIndexByte(line, ' ')
		if i <= 0 || strings.HasPrefix(line, "#") {
			continue
		}
		if v, err := strconv.ParseFloat(line[i+1:], 64); err == nil {
			m[line[:i]] = v
		}
	}
	return m
}

// waitOpen waits until the gateway counts n open WebSocket connections ($disconnect of the others
// has finished).
func (s *wsbStack) waitOpen(b *testing.B, n int) {
	b.Helper()
	deadline := time.Now().Add(wsbTimeout)
	for {
		got := s.metrics(b)["gatehouse_websocket_connections"]
		if int(got) == n {
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("the gateway counts %v open connections after %v, want %d", got, wsbTimeout, n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// wsbDialer dials from the loopback addresses 127.0.0.1 to 127.0.0.4 in turn (those the system lets
// it bind to), so that 20,000 connections to one gateway port do not exhaust the ephemeral ports of
// one source address.
type wsbDialer struct {
	ws    *websocket.Dialer
	local []*net.TCPAddr
	next  atomic.Uint32
}

func newWSBDialer() *wsbDialer {
	d := &wsbDialer{}
	for i := 1; i <= 4; i++ {
		a := &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(i))}
		ln, err := net.ListenTCP("tcp", a)
		if err != nil {
			continue
		}
		ln.Close()
		d.local = append(d.local, a)
	}
	d.ws = &websocket.Dialer{
		HandshakeTimeout: wsbTimeout,
		ReadBufferSize:   1024,
		WriteBufferSize:  1024,
		NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			nd := net.Dialer{Timeout: wsbTimeout}
			if len(d.local) > 0 {
				nd.LocalAddr = d.local[int(d.next.Add(1))%len(d.local)]
			}
			return nd.DialContext(ctx, network, addr)
		},
	}
	return d
}

// open opens n connections to url from dialers goroutines. each, when set, runs on every new
// connection (in its dialer's goroutine) and may fail. It returns the connections and how long each
// handshake took.
func (d *wsbDialer) open(url string, n, dialers int, each func(i int, c *websocket.Conn) error) ([]*websocket.Conn, []time.Duration, error) {
	conns := make([]*websocket.Conn, n)
	took := make([]time.Duration, n)
	var next atomic.Int64
	var firstErr error
	var errOnce sync.Once
	var failed atomic.Bool
	var wg sync.WaitGroup
	for range dialers {
		wg.Go(func() {
			for !failed.Load() {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				start := time.Now()
				c, resp, err := d.ws.Dial(url, nil)
				took[i] = time.Since(start)
				if err == nil && each != nil {
					if err = each(i, c); err != nil {
						c.Close()
					}
				}
				if err != nil {
					status := 0
					if resp != nil {
						status = resp.StatusCode
					}
					errOnce.Do(func() { firstErr = fmt.Errorf("connection %d: %w (status %d)", i, err, status) })
					failed.Store(true)
					return
				}
				conns[i] = c
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		wsbCloseAll(conns)
		return nil, nil, firstErr
	}
	return conns, took, nil
}

// wsbCloseAll closes the connections without a close handshake, as a client that goes away does.
func wsbCloseAll(conns []*websocket.Conn) {
	for _, c := range conns {
		if c != nil {
			c.Close()
		}
	}
}

// wsbPercentile returns the p-th percentile (0 < p ≤ 1) of ds, which it sorts.
func wsbPercentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	slices.Sort(ds)
	i := int(float64(len(ds))*p+0.5) - 1
	return ds[min(max(i, 0), len(ds)-1)]
}

func wsbMs(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// BenchmarkWebSocketConnect opens wsbConnectBatch connections per iteration, wsbConnectDialers at a
// time, to an API whose $connect runs a function; each connection counts when its handshake has
// answered 101, so after $connect's function returned and the record was stored. Between iterations
// (not timed) the connections are closed and the benchmark waits for every $disconnect to finish.
func BenchmarkWebSocketConnect(b *testing.B) {
	wsbSkip(b)
	s := wsbStart(b)
	d := newWSBDialer()
	s.warmConnects(b, d)
	dialers := wsbConnectDialers
	if v := os.Getenv(envBenchWSDialers); v != "" {
		var err error
		if dialers, err = strconv.Atoi(v); err != nil || dialers <= 0 {
			b.Fatalf("%s=%q: want a number of dialers", envBenchWSDialers, v)
		}
	}
	var r wsbConnects
	for b.Loop() {
		r.round(b, s, d, wsbConnectBatch, dialers)
	}
	b.ReportMetric(r.perSecond(), "conns/s")
	b.ReportMetric(wsbMs(wsbPercentile(r.handshakes, 0.5)), "p50-handshake-ms")
	b.ReportMetric(wsbMs(wsbPercentile(r.handshakes, 0.99)), "p99-handshake-ms")
	n := float64(len(r.handshakes))
	b.ReportMetric(float64(r.gwCPU.Microseconds())/n, "gateway-cpu-µs/conn")
	b.ReportMetric(float64(r.workerCPU.Microseconds())/n, "workers-cpu-µs/conn")
	b.ReportMetric(float64(r.clientCPU.Microseconds())/n, "client-cpu-µs/conn")
	b.ReportMetric(0, "ns/op")
}

// warmConnects opens and closes 200 connections: instances of the function, the gateway's pools.
func (s *wsbStack) warmConnects(b *testing.B, d *wsbDialer) {
	b.Helper()
	conns, _, err := d.open(s.wsURL, 200, wsbConnectDialers, nil)
	if err != nil {
		b.Fatal(err)
	}
	wsbCloseAll(conns)
	s.waitOpen(b, 0)
}

// wsbConnects adds up rounds of new connections.
type wsbConnects struct {
	elapsed, gwCPU, workerCPU, clientCPU time.Duration
	handshakes                           []time.Duration
}

// round opens n connections, dialers at a time, and counts how long that took and the CPU every
// process spent; then (not counted) it closes them and waits until every $disconnect has finished.
func (r *wsbConnects) round(b *testing.B, s *wsbStack, d *wsbDialer, n, dialers int) {
	b.Helper()
	gw0, w0 := s.cpu()
	c0, _ := wsbProcCPU(os.Getpid())
	start := time.Now()
	conns, took, err := d.open(s.wsURL, n, dialers, nil)
	elapsed := time.Since(start)
	gw1, w1 := s.cpu()
	c1, _ := wsbProcCPU(os.Getpid())
	if err != nil {
		b.Fatal(err)
	}
	r.elapsed += elapsed
	r.gwCPU += gw1 - gw0
	r.workerCPU += w1 - w0
	r.clientCPU += c1 - c0
	r.handshakes = append(r.handshakes, took...)
	wsbCloseAll(conns)
	s.waitOpen(b, 0)
}

// perSecond is the connections opened per second over all rounds.
func (r *wsbConnects) perSecond() float64 {
	return float64(len(r.handshakes)) / r.elapsed.Seconds()
}

// BenchmarkWebSocketIdle opens as many idle connections as the file limit allows (19,000 by default,
// GATEHOUSE_BENCH_WS_IDLE to change) and reports what they cost the `up` process: its resident set
// (VmRSS) before and after, and the Go heap in use (from its metrics).
func BenchmarkWebSocketIdle(b *testing.B) {
	wsbSkip(b)
	n := wsbIdleConns
	if v := os.Getenv(envBenchWSIdle); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n <= 0 {
			b.Fatalf("%s=%q: want a number of connections", envBenchWSIdle, v)
		}
	}
	var rlim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rlim); err == nil && rlim.Cur < uint64(n)+200 {
		b.Skipf("the limit on open files is %d: %d connections need more", rlim.Cur, n)
	}
	for b.Loop() {
		b.StopTimer()
		r := wsbMeasureIdle(b, wsbStart(b), n)
		b.ReportMetric(float64(n), "conns")
		b.ReportMetric(r.perSecond, "conns/s")
		b.ReportMetric(float64(r.rssBefore)/(1<<20), "rss-before-MiB")
		b.ReportMetric(float64(r.rss)/(1<<20), "rss-MiB")
		b.ReportMetric(r.rssPerConn, "rss-B/conn")
		b.ReportMetric(r.heapPerConn, "heap-B/conn")
		b.ReportMetric(r.stackPerConn, "stack-B/conn")
		b.ReportMetric(r.goroutinesPerConn, "goroutines/conn")
		b.ReportMetric(r.rssPerConn*100000/(1<<20)+float64(r.rssBefore)/(1<<20), "rss-100k-MiB")
		b.ReportMetric(r.closeAll.Seconds(), "close-all-s")
		b.ReportMetric(float64(r.rssAfterClose)/(1<<20), "rss-after-close-MiB")
		b.StartTimer()
	}
	b.ReportMetric(0, "ns/op")
}

// wsbIdle is what n idle connections cost the `up` process.
type wsbIdle struct {
	perSecond                             float64 // connections opened per second
	rssBefore, rss, rssAfterClose         int64
	rssPerConn, heapPerConn, stackPerConn float64 // bytes
	goroutinesPerConn                     float64
	closeAll                              time.Duration // closing them all until every $disconnect ran
}

// wsbMeasureIdle opens n idle connections to s, reads what they cost, closes them and stops s.
func wsbMeasureIdle(b *testing.B, s *wsbStack, n int) wsbIdle {
	b.Helper()
	d := newWSBDialer()
	s.warmConnects(b, d)
	time.Sleep(2 * time.Second) // let the gateway settle
	m0, rss0 := s.metrics(b), s.rss(b)

	start := time.Now()
	conns, _, err := d.open(s.wsURL, n, 32, nil)
	elapsed := time.Since(start)
	if err != nil {
		b.Fatalf("after opening some of %d connections: %v", n, err)
	}
	s.waitOpen(b, n)
	time.Sleep(5 * time.Second)
	m1, rss1 := s.metrics(b), s.rss(b)
	r := wsbIdle{perSecond: float64(n) / elapsed.Seconds(), rssBefore: rss0, rss: rss1,
		rssPerConn:        float64(rss1-rss0) / float64(n),
		heapPerConn:       (m1["go_memstats_heap_inuse_bytes"] - m0["go_memstats_heap_inuse_bytes"]) / float64(n),
		stackPerConn:      (m1["go_memstats_stack_inuse_bytes"] - m0["go_memstats_stack_inuse_bytes"]) / float64(n),
		goroutinesPerConn: (m1["go_goroutines"] - m0["go_goroutines"]) / float64(n)}

	start = time.Now()
	wsbCloseAll(conns)
	s.waitOpen(b, 0)
	r.closeAll = time.Since(start)
	r.rssAfterClose = s.rss(b)
	s.stop(b)
	return r
}

// wsbClients are connected clients that count the frames they receive.
type wsbClients struct {
	conns []*websocket.Conn
	ids   []string
	// want is the frame of the current round; got counts the clients that received it; done
	// receives the time the last one did.
	mu   sync.Mutex
	want string
	got  atomic.Int64
	done chan time.Time
	// stray counts frames that were not the current round's.
	stray atomic.Int64
	wg    sync.WaitGroup
}

// read receives frames on every connection until it closes.
func (w *wsbClients) read() {
	for _, c := range w.conns {
		w.wg.Go(func() {
			for {
				c.SetReadDeadline(time.Time{})
				_, msg, err := c.ReadMessage()
				if err != nil {
					return
				}
				w.mu.Lock()
				want := w.want
				w.mu.Unlock()
				if string(msg) != want {
					w.stray.Add(1)
					continue
				}
				if w.got.Add(1) == int64(len(w.conns)) {
					w.done <- time.Now()
				}
			}
		})
	}
}

// round starts a round whose frame is want.
func (w *wsbClients) round(want string) {
	w.mu.Lock()
	w.want = want
	w.mu.Unlock()
	w.got.Store(0)
}

// wait waits for the last client of the round, and returns when it received the frame.
func (w *wsbClients) wait(b *testing.B) time.Time {
	b.Helper()
	select {
	case t := <-w.done:
		return t
	case <-time.After(wsbTimeout):
		b.Fatalf("%d of %d clients received the frame within %v (%d stray frames)", w.got.Load(), len(w.conns), wsbTimeout, w.stray.Load())
		return time.Time{}
	}
}

// wsbConnectClients opens n connections to s, each learning its connection id from the function,
// and starts reading every one.
func wsbConnectClients(b *testing.B, s *wsbStack, n int) *wsbClients {
	b.Helper()
	d := newWSBDialer()
	w := &wsbClients{ids: make([]string, n), done: make(chan time.Time, 1)}
	var err error
	w.conns, _, err = d.open(s.wsURL, n, 32, func(i int, c *websocket.Conn) error {
		c.SetWriteDeadline(time.Now().Add(wsbTimeout))
		if err := c.WriteMessage(websocket.TextMessage, []byte("id")); err != nil {
			return err
		}
		c.SetReadDeadline(time.Now().Add(wsbTimeout))
		_, id, err := c.ReadMessage()
		if err != nil {
			return err
		}
		if len(id) != 24 {
			return fmt.Errorf("the function answered %q, want a connection id", id)
		}
		w.ids[i] = string(id)
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	w.read()
	return w
}

// close closes every connection and waits for the readers.
func (w *wsbClients) close() {
	wsbCloseAll(w.conns)
	w.wg.Wait()
}

// wsbBroadcasts adds up broadcasts to every client of a wsbClients.
type wsbBroadcasts struct {
	lat, call, host             []time.Duration // until the last client had it; the invocation; the host call
	gwCPU, workerCPU, clientCPU time.Duration
	round                       int
}

// once invokes the function through the admin API to broadcast one message to every client, and
// waits until the last one received it.
func (r *wsbBroadcasts) once(b *testing.B, s *wsbStack, w *wsbClients) {
	b.Helper()
	r.round++
	want := fmt.Sprintf("broadcast %d", r.round)
	body, _ := json.Marshal(map[string]any{"ids": w.ids, "data": want})
	payload, _ := json.Marshal(map[string]any{"body": string(body)})
	req, err := http.NewRequest("POST", s.admin+"/admin/v1/functions/wsbench/invocations", bytes.NewReader(payload))
	if err != nil {
		b.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+s.token)
	req.Header.Set("Content-Type", "application/json")
	w.round(want)
	gw0, wk0 := s.cpu()
	c0, _ := wsbProcCPU(os.Getpid())
	start := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	answer, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	answered := time.Since(start)
	var out struct{ Body string }
	json.Unmarshal(answer, &out)
	sent, us, _ := strings.Cut(out.Body, " ")
	hostUs, err := strconv.Atoi(us)
	if resp.StatusCode != 200 || sent != strconv.Itoa(len(w.ids)) || err != nil {
		b.Fatalf("invocation: %d %s", resp.StatusCode, answer)
	}
	last := w.wait(b)
	gw1, wk1 := s.cpu()
	c1, _ := wsbProcCPU(os.Getpid())
	r.host = append(r.host, time.Duration(hostUs)*time.Microsecond)
	r.lat = append(r.lat, last.Sub(start))
	r.call = append(r.call, answered)
	r.gwCPU += gw1 - gw0
	r.workerCPU += wk1 - wk0
	r.clientCPU += c1 - c0
}

// BenchmarkBroadcast10k connects 10,000 clients, each learning its connection id from the function,
// and measures how long one message takes to reach all of them:
//
//   - broadcast: from the start of an admin API invocation of the function, which calls
//     sdk.Broadcast once with the 10,000 ids, until the last client received the frame;
//   - posts: from the first of 10,000 @connections POSTs (signed with SigV4 before the clock starts,
//     wsbPosters in flight) until the last client received its frame.
func BenchmarkBroadcast10k(b *testing.B) {
	wsbSkip(b)
	s := wsbStart(b)
	w := wsbConnectClients(b, s, wsbBroadcastConns)
	defer w.close()

	b.Run("broadcast", func(b *testing.B) {
		var r wsbBroadcasts
		for b.Loop() {
			b.StopTimer()
			r.once(b, s, w)
			b.StartTimer()
		}
		b.ReportMetric(wsbMs(r.gwCPU)/float64(b.N), "gateway-cpu-ms/op")
		b.ReportMetric(wsbMs(r.workerCPU)/float64(b.N), "workers-cpu-ms/op")
		b.ReportMetric(wsbMs(wsbPercentile(r.lat, 0.5)), "p50-ms")
		b.ReportMetric(wsbMs(wsbPercentile(r.lat, 1)), "max-ms")
		b.ReportMetric(wsbMs(wsbPercentile(r.call, 0.5)), "p50-invoke-ms")
		b.ReportMetric(wsbMs(wsbPercentile(r.host, 0.5)), "p50-hostcall-ms")
		b.ReportMetric(0, "ns/op")
	})

	b.Run("posts", func(b *testing.B) {
		tr := &http.Transport{MaxIdleConnsPerHost: wsbPosters, MaxConnsPerHost: wsbPosters, IdleConnTimeout: time.Minute}
		defer tr.CloseIdleConnections()
		hc := &http.Client{Transport: tr, Timeout: wsbTimeout}
		signer := v4.NewSigner()
		creds := aws.Credentials{AccessKeyID: wsbKeyID, SecretAccessKey: wsbKeySecret}
		var lat, sent []time.Duration
		var gwCPU, clientCPU time.Duration
		round := 0
		for b.Loop() {
			b.StopTimer()
			round++
			want := fmt.Sprintf("post %d", round)
			body := []byte(want)
			sum := sha256.Sum256(body)
			reqs := make([]*http.Request, len(w.ids))
			now := time.Now()
			for i, id := range w.ids {
				req, err := http.NewRequest("POST", s.base+"/@connections/"+id, bytes.NewReader(body))
				if err != nil {
					b.Fatal(err)
				}
				if err := signer.SignHTTP(context.Background(), creds, req, hex.EncodeToString(sum[:]), "execute-api", "us-east-1", now); err != nil {
					b.Fatal(err)
				}
				reqs[i] = req
			}
			w.round(want)
			b.StartTimer()
			gw0, _ := s.cpu()
			c0, _ := wsbProcCPU(os.Getpid())
			start := time.Now()
			var next atomic.Int64
			var failures atomic.Int64
			var errMu sync.Mutex
			var firstErr error
			var wg sync.WaitGroup
			for range wsbPosters {
				wg.Go(func() {
					for {
						i := int(next.Add(1) - 1)
						if i >= len(reqs) {
							return
						}
						resp, err := hc.Do(reqs[i])
						if err == nil {
							io.Copy(io.Discard, resp.Body)
							resp.Body.Close()
							if resp.StatusCode != 200 {
								err = fmt.Errorf("POST @connections: status %d", resp.StatusCode)
							}
						}
						if err != nil {
							if failures.Add(1) == 1 {
								errMu.Lock()
								firstErr = err
								errMu.Unlock()
							}
						}
					}
				})
			}
			wg.Wait()
			allSent := time.Since(start)
			if n := failures.Load(); n > 0 {
				errMu.Lock()
				defer errMu.Unlock()
				b.Fatalf("%d of %d posts failed, the first: %v", n, len(reqs), firstErr)
			}
			last := w.wait(b)
			gw1, _ := s.cpu()
			c1, _ := wsbProcCPU(os.Getpid())
			lat = append(lat, last.Sub(start))
			sent = append(sent, allSent)
			gwCPU += gw1 - gw0
			clientCPU += c1 - c0
		}
		b.ReportMetric(wsbMs(gwCPU)/float64(b.N), "gateway-cpu-ms/op")
		b.ReportMetric(wsbMs(clientCPU)/float64(b.N), "client-cpu-ms/op")
		b.ReportMetric(wsbMs(wsbPercentile(lat, 0.5)), "p50-ms")
		b.ReportMetric(wsbMs(wsbPercentile(lat, 1)), "max-ms")
		b.ReportMetric(float64(len(w.ids))/wsbPercentile(sent, 0.5).Seconds(), "posts/s")
		b.ReportMetric(0, "ns/op")
	})
}
