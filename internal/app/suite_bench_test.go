package app

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/gofiber/fiber/v2"

	"gatehouse.dev/gatehouse/internal/adminapi"
	"gatehouse.dev/gatehouse/internal/testfix"
	"gatehouse.dev/gatehouse/loadtest"
)

// Settings of BenchmarkSuite.
const (
	suiteDefaultDuration = 5 * time.Second
	suiteDefaultWarmup   = 2 * time.Second
	envSuiteDuration     = "GATEHOUSE_SUITE_DURATION" // measured run length, e.g. 10s
	envSuiteWarmup       = "GATEHOUSE_SUITE_WARMUP"   // warm-up before each target's runs, e.g. 4s
	envSuiteJSON         = "GATEHOUSE_SUITE_JSON"     // write the results as JSON to this path
	// envSuiteSLSOffline names a directory where `npm install serverless@3 serverless-offline@13`
	// ran: the suite then measures serverless-offline (--useInProcess) too, a Node handler.
	envSuiteSLSOffline = "GATEHOUSE_SUITE_SLS_OFFLINE"
)

// suiteConcurrency is the number of requests in flight in each closed-loop run: one (latency) and 64
// (throughput).
var suiteConcurrency = []int{1, 64}

// suiteWarmupSteps are the concurrencies of the warm-up, which share its duration.
var suiteWarmupSteps = []int{1, 4, 16, 64}

// BenchmarkSuite measures, in one run on one machine and with the same load generator and settings
// (package loadtest, closed loop), GET of a hello function on:
//
//   - fiber: a bare Fiber server answering "Hello" on GET /hello, the ceiling for an HTTP server on
//     this machine with this client;
//   - gatehouse: GET /hello through the whole path (gateway → NATS → worker process → wasm) on the
//     stack in testdata/stack.yaml, as BenchmarkHelloWholePath;
//   - controls: the same sample behind GET /all of controlsStack, which has CORS, a route throttle, a
//     cached JWT and an API key on, as BenchmarkGatewayControls' "all" case;
//
// each with 1 and with 64 requests in flight for GATEHOUSE_SUITE_DURATION (default 5s) after a
// warm-up of GATEHOUSE_SUITE_WARMUP (default 2s) per target, and prints a table with each run's
// throughput as a share of the Fiber ceiling, its latency percentiles and their differences to
// Fiber's, and each node's warm share from its /metrics. Run it with
//
//	go test ./internal/app -run '^$' -bench Suite -benchtime 1x
//
// (each sub-benchmark runs its load once, whatever b.N; ns/op is the wall time per answered request).
// GATEHOUSE_SUITE_JSON=path also writes the results as JSON (go test runs the benchmark in
// internal/app, so a relative path is relative to that directory).
//
// Order: fiber, gatehouse, gatehouse-inline (--worker-mode inline), minimal-inline (a minimal reactor
// instead of the Go guest: the platform's own cost), controls, then fiber again. The machine is shared and the load generator
// runs on the same cores as the servers, so conditions drift during a run (other load, CPU frequency,
// the heap of this process). The ratios are to the first Fiber run; the second Fiber run is reported
// as a target of its own, so its ratio to the first shows how much the ceiling moved while the other
// targets ran: a gap between Gatehouse and Fiber much larger than that drift is real. Each target's
// server runs only while that target is measured (a node's workers and NATS would otherwise compete
// for the two cores), and the collector runs between runs, so no run pays for the previous one's
// garbage.
func BenchmarkSuite(b *testing.B) {
	s := newSuite(b, suiteConcurrency)
	s.hello(b, suiteOptions{controls: true})
	if len(s.rows) == 0 {
		return // every target filtered out by -bench
	}
	// To stdout: a benchmark with sub-benchmarks prints its b.Log lines only when it fails.
	fmt.Println(s.table())
	for _, w := range s.warm {
		fmt.Println(w.String())
	}
	if path := os.Getenv(envSuiteJSON); path != "" {
		if err := s.writeJSON(path); err != nil {
			b.Fatal(err)
		}
		fmt.Printf("results written to %s\n", path)
	}
}

// newSuite reads the suite's settings from the environment; its runs have each of concurrency
// requests in flight in turn.
func newSuite(b *testing.B, concurrency []int) *suite {
	return &suite{duration: suiteEnvDuration(b, envSuiteDuration, suiteDefaultDuration),
		warmup:      suiteEnvDuration(b, envSuiteWarmup, suiteDefaultWarmup),
		concurrency: concurrency, baseline: map[int]*suiteRow{}}
}

// suiteOptions picks the suite's optional targets.
type suiteOptions struct {
	controls bool // hello behind every gateway control
	// node adds a Node.js handler answering what hello answers, run as a process runtime through the
	// Runtime API (with the inline worker), when node is on PATH and processes can be sandboxed.
	node bool
	// slsModes are serverless-offline's modes to measure (slsInProcess, slsDefault) when
	// GATEHOUSE_SUITE_SLS_OFFLINE names its install; --useInProcess only when none is given.
	slsModes []string
}

// hello runs the suite's targets in their order (see BenchmarkSuite) and the optional ones o asks for.
func (s *suite) hello(b *testing.B, o suiteOptions) {
	s.target(b, "fiber", func(b *testing.B) suiteTarget { return startSuiteFiber(b) })
	s.target(b, "gatehouse", func(b *testing.B) suiteTarget {
		n := startNode(b, "testdata/stack.yaml", newDataDir(b))
		b.Cleanup(func() { n.Stop(context.Background()) })
		return suiteTarget{url: "http://" + n.GatewayAddr() + "/hello", node: n, function: "hello",
			wantBody: `{"message":"hello from gatehouse"}`}
	})
	s.target(b, "gatehouse-inline", func(b *testing.B) suiteTarget {
		n := startNode(b, "testdata/stack.yaml", newDataDir(b), func(o *Options) { o.WorkerMode = WorkerModeInline })
		b.Cleanup(func() { n.Stop(context.Background()) })
		return suiteTarget{url: "http://" + n.GatewayAddr() + "/hello", node: n, function: "hello",
			wantBody: `{"message":"hello from gatehouse"}`}
	})
	// The platform's own cost: a minimal reactor (docs/abi.md's example) instead of the Go guest.
	s.target(b, "minimal-inline", func(b *testing.B) suiteTarget {
		n := startNode(b, platformStack(b), newDataDir(b), func(o *Options) { o.WorkerMode = WorkerModeInline })
		b.Cleanup(func() { n.Stop(context.Background()) })
		return suiteTarget{url: "http://" + n.GatewayAddr() + "/minimal", node: n, function: "minimal", wantBody: "hi"}
	})
	if o.node {
		s.target(b, "node-inline", func(b *testing.B) suiteTarget {
			if _, err := exec.LookPath("node"); err != nil {
				b.Skip("node is not on PATH")
			}
			needSandbox(b)
			n := startNode(b, nodeHelloStack(b), newDataDir(b), func(o *Options) { o.WorkerMode = WorkerModeInline })
			b.Cleanup(func() { n.Stop(context.Background()) })
			return suiteTarget{url: "http://" + n.GatewayAddr() + "/hello", node: n, function: "hello",
				wantBody: `{"message":"hello from gatehouse"}`}
		})
	}
	if o.controls {
		s.target(b, "controls", func(b *testing.B) suiteTarget {
			c := startControlsNode(b, "hello")
			h := http.Header{}
			for k, v := range c.allHeader() {
				h.Set(k, v)
			}
			// controlsStack names every route's function "echo", whatever sample it is built from.
			return suiteTarget{url: c.base + "/all", header: h, node: c.node, function: "echo",
				wantBody: `{"message":"hello from gatehouse"}`}
		})
	}
	if dir := os.Getenv(envSuiteSLSOffline); dir != "" {
		modes := o.slsModes
		if len(modes) == 0 {
			modes = []string{slsInProcess}
		}
		for _, mode := range modes {
			var flags []string
			if mode == slsInProcess {
				flags = append(flags, "--useInProcess")
			}
			s.target(b, mode, func(b *testing.B) suiteTarget { return startSLSOffline(b, dir, flags...) })
		}
	}
	s.target(b, "fiber-again", func(b *testing.B) suiteTarget { return startSuiteFiber(b) })
}

// The suite's names of serverless-offline's two modes: handlers in its own process, and its default,
// a worker thread per invocation.
const (
	slsInProcess = "sls-offline-inprocess"
	slsDefault   = "sls-offline"
)

// suiteTarget is one server under test.
type suiteTarget struct {
	url      string
	header   http.Header
	wantBody string
	// node and function, for a Gatehouse target: where to read the warm share after the runs.
	node     *Node
	function string
}

// suiteRow is one measured run.
type suiteRow struct {
	Target      string  `json:"target"`
	Concurrency int     `json:"concurrency"`
	RPS         float64 `json:"throughput_rps"`
	P50US       int64   `json:"p50_us"`
	P90US       int64   `json:"p90_us"`
	P99US       int64   `json:"p99_us"`
	P999US      int64   `json:"p999_us"`
	MaxUS       int64   `json:"max_us"`
	Errors      int64   `json:"errors"`
	// Ratio is RPS over the first Fiber run's at the same concurrency; the deltas are latency minus
	// that run's. Zero when the Fiber run was filtered out.
	Ratio      float64              `json:"ratio_to_fiber,omitempty"`
	DeltaP50US int64                `json:"delta_p50_us"`
	DeltaP99US int64                `json:"delta_p99_us"`
	Summary    loadtest.JSONSummary `json:"loadtest"` // the run as `gatehouse loadtest --json` reports it
	result     *loadtest.Result
}

// suiteWarm is a Gatehouse target's warm share, read from the node's /metrics after its runs.
type suiteWarm struct {
	Target   string `json:"target"`
	Function string `json:"function"`
	// Share is gatehouse_warm_share: over all invocations since the workers started, warm-up included.
	Share float64 `json:"warm_share"`
	// Invocations and ColdStarts are during the measured runs only (gatehouse_invocations_total and
	// gatehouse_cold_starts_total summed over workers, after the warm-up and after the runs).
	// Measured is false when they are unknown: a worker restarted, resetting its counters, or the
	// counters did not arrive in time.
	Measured    bool   `json:"measured"`
	Invocations uint64 `json:"measured_invocations"`
	ColdStarts  uint64 `json:"measured_cold_starts"`
	// Restarts counts worker processes restarted during the measured runs.
	Restarts int `json:"worker_restarts"`
}

func (w suiteWarm) String() string {
	window := "unknown (a worker restarted or its counters were late)"
	if w.Measured && w.Invocations > 0 {
		window = fmt.Sprintf("%.4f", 1-float64(w.ColdStarts)/float64(w.Invocations))
	}
	return fmt.Sprintf("warm share %-11s gatehouse_warm_share{function=%q} = %.4f (since start, warm-up included); measured runs: %d invocations, %d cold starts, warm share %s, %d worker restarts",
		w.Target, w.Function, w.Share, w.Invocations, w.ColdStarts, window, w.Restarts)
}

type suite struct {
	duration, warmup time.Duration
	concurrency      []int // requests in flight of each target's runs, in turn
	rows             []*suiteRow
	baseline         map[int]*suiteRow // the first Fiber run by concurrency
	warm             []suiteWarm
}

// target runs one target's sub-benchmark: start it, check it answers, warm it up, then one measured
// run per concurrency, each a sub-benchmark of its own.
func (s *suite) target(b *testing.B, name string, start func(b *testing.B) suiteTarget) {
	b.Run(name, func(b *testing.B) {
		t := start(b)
		if err := suiteCheck(t); err != nil {
			b.Fatalf("%s: %v", name, err)
		}
		// Warm up: connections, the gateway's caches, and on a node the sandboxes 64 requests in flight
		// need. The concurrency ramps up (1, 4, 16, 64), so that a node starts its sandboxes a few at a
		// time: 64 cold starts at once on two cores that the load generator also uses could push
		// invocations past hello's 3s timeout (seen once), and the watchdog then kills the worker.
		// Errors here are logged, not fatal: what counts is the measured runs.
		var warmed int64
		for _, c := range suiteWarmupSteps {
			res, err := loadtest.Run(context.Background(), loadtest.Config{Target: t.url, Header: t.header,
				Concurrency: c, Duration: s.warmup / time.Duration(len(suiteWarmupSteps))})
			if err != nil {
				b.Fatal(err)
			}
			warmed += res.Answered
			if n := res.ErrorCount(); n > 0 {
				b.Logf("%s: %d errors during the warm-up with %d in flight (%v, statuses %v)", name, n, c, res.Errors, res.Statuses)
			}
		}
		var before suiteCounters
		if t.node != nil {
			// The counters of every invocation so far, to subtract from those after the runs.
			var err error
			if before, err = suiteScrape(t.node, t.function, uint64(warmed)+1); err != nil {
				b.Fatal(err)
			}
		}
		var answered int64
		for _, c := range s.concurrency {
			b.Run(fmt.Sprintf("c%d", c), func(b *testing.B) {
				row := s.run(b, name, t, c)
				answered += row.result.Answered
			})
		}
		if t.node != nil {
			after, err := suiteScrape(t.node, t.function, before.invocations+uint64(answered))
			if err != nil {
				b.Fatal(err)
			}
			w := suiteWarm{Target: name, Function: t.function, Share: after.warmShare, Restarts: after.restarts - before.restarts}
			if before.complete && after.complete && after.restarts == before.restarts {
				w.Invocations, w.ColdStarts = after.invocations-before.invocations, after.coldStarts-before.coldStarts
				w.Measured = true
			}
			s.warm = append(s.warm, w)
		}
	})
}

// run is one measured closed-loop run.
func (s *suite) run(b *testing.B, name string, t suiteTarget, concurrency int) *suiteRow {
	runtime.GC() // no run pays for the garbage of the one before
	res, err := loadtest.Run(context.Background(), loadtest.Config{Target: t.url, Header: t.header,
		Concurrency: concurrency, Duration: s.duration})
	if err != nil {
		b.Fatal(err)
	}
	us := func(d time.Duration) int64 { return d.Microseconds() }
	row := &suiteRow{Target: name, Concurrency: concurrency, RPS: res.Throughput(),
		P50US: us(res.Latency.Quantile(0.5)), P90US: us(res.Latency.Quantile(0.9)), P99US: us(res.Latency.Quantile(0.99)),
		P999US: us(res.Latency.Quantile(0.999)), MaxUS: us(res.Latency.Max()), Errors: res.ErrorCount(),
		Summary: res.Summary(), result: res}
	if name == "fiber" {
		s.baseline[concurrency] = row
	}
	if base := s.baseline[concurrency]; base != nil && base.RPS > 0 {
		row.Ratio = row.RPS / base.RPS
		row.DeltaP50US, row.DeltaP99US = row.P50US-base.P50US, row.P99US-base.P99US
	}
	s.rows = append(s.rows, row)

	if res.Answered > 0 {
		b.ReportMetric(float64(res.Elapsed.Nanoseconds())/float64(res.Answered), "ns/op")
	}
	b.ReportMetric(row.RPS, "req/s")
	b.ReportMetric(float64(row.P50US), "p50-µs")
	b.ReportMetric(float64(row.P99US), "p99-µs")
	if row.Ratio > 0 {
		b.ReportMetric(row.Ratio, "ratio")
	}
	if row.Errors > 0 {
		// Reported, not failed: on a loaded machine an invocation can overrun its timeout (the
		// watchdog then restarts its worker), and a benchmark does not assert timings. The table
		// shows the errors and the warm-share line the worker restarts.
		b.ReportMetric(float64(row.Errors), "errors")
		b.Logf("%s with %d in flight: %d errors (%v, statuses %v)", name, concurrency, row.Errors, res.Errors, res.Statuses)
	}
	return row
}

// table formats the results.
func (s *suite) table() string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "closed loop, %s per run after a %s warm-up per target; GOMAXPROCS %d, %d CPUs; the load generator shares the CPUs\n",
		s.duration, s.warmup, runtime.GOMAXPROCS(0), runtime.NumCPU())
	tw := tabwriter.NewWriter(&sb, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "target\tin flight\treq/s\tvs fiber\tp50\tp90\tp99\tp99.9\tmax\terrors\tΔp50\tΔp99\t")
	d := func(us int64) string { return loadtest.FormatDuration(time.Duration(us) * time.Microsecond) }
	for _, r := range s.rows {
		ratio, dp50, dp99 := "-", "-", "-"
		if r.Ratio > 0 {
			ratio = fmt.Sprintf("%.3f", r.Ratio)
			dp50, dp99 = suiteDelta(r.DeltaP50US), suiteDelta(r.DeltaP99US)
		}
		fmt.Fprintf(tw, "%s\t%d\t%.0f\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\t\n", r.Target, r.Concurrency, r.RPS, ratio,
			d(r.P50US), d(r.P90US), d(r.P99US), d(r.P999US), d(r.MaxUS), r.Errors, dp50, dp99)
	}
	tw.Flush()
	var drift []string
	for _, r := range s.rows {
		if r.Target == "fiber-again" && r.Ratio > 0 {
			drift = append(drift, fmt.Sprintf("%.3f with %d in flight", r.Ratio, r.Concurrency))
		}
	}
	for _, r := range s.rows {
		if r.Errors > 0 {
			fmt.Fprintf(&sb, "%s with %d in flight had %d errors (statuses %v, transport errors %v): its numbers include them\n",
				r.Target, r.Concurrency, r.Errors, r.result.Statuses, r.result.Errors)
		}
	}
	if len(drift) > 0 {
		fmt.Fprintf(&sb, "ratios and deltas are to the first fiber run; the ceiling moved by a factor of %s between the two fiber runs\n",
			strings.Join(drift, ", "))
	}
	return strings.TrimRight(sb.String(), "\n")
}

func (s *suite) writeJSON(path string) error {
	host, _ := os.Hostname()
	out := struct {
		Time        time.Time   `json:"time"`
		Host        string      `json:"host"`
		GoVersion   string      `json:"go_version"`
		OS          string      `json:"os"`
		Arch        string      `json:"arch"`
		NumCPU      int         `json:"num_cpu"`
		GOMAXPROCS  int         `json:"gomaxprocs"`
		DurationS   float64     `json:"duration_s"`
		WarmupS     float64     `json:"warmup_s"`
		Runs        []*suiteRow `json:"runs"`
		WarmShare   []suiteWarm `json:"warm_share"`
		Description string      `json:"description"`
	}{time.Now().UTC(), host, runtime.Version(), runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.GOMAXPROCS(0),
		s.duration.Seconds(), s.warmup.Seconds(), s.rows, s.warm,
		"BenchmarkSuite: closed-loop GET of hello on bare Fiber, Gatehouse's whole path and Gatehouse with every gateway control; ratios and deltas are to the first Fiber run at the same concurrency"}
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
	}
	data, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(data, '\n'), 0o644)
}

func suiteDelta(us int64) string {
	if us < 0 {
		return "-" + loadtest.FormatDuration(time.Duration(-us)*time.Microsecond)
	}
	return "+" + loadtest.FormatDuration(time.Duration(us)*time.Microsecond)
}

func suiteEnvDuration(b *testing.B, name string, def time.Duration) time.Duration {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 || d > loadtest.MaxDuration {
		b.Fatalf("%s=%q: want a duration in (0, %s], such as 10s", name, v, loadtest.MaxDuration)
	}
	return d
}

// suiteCheck sends one request and checks the answer, so that a misconfigured target fails the run
// instead of measuring how fast it refuses.
func suiteCheck(t suiteTarget) error {
	req, err := http.NewRequest(http.MethodGet, t.url, nil)
	if err != nil {
		return err
	}
	for k, vs := range t.header {
		req.Header[k] = vs
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || string(body) != t.wantBody {
		return fmt.Errorf("GET %s: %d %q, want 200 %q", t.url, resp.StatusCode, body, t.wantBody)
	}
	return nil
}

// startSuiteFiber starts the ceiling: a bare Fiber app answering "Hello" on GET /hello on a loopback
// port, in this process like the gateway of a node, stopped when b ends.
func startSuiteFiber(b *testing.B) suiteTarget {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	app := fiber.New(fiber.Config{DisableStartupMessage: true})
	app.Get("/hello", func(c *fiber.Ctx) error { return c.SendString("Hello") })
	done := make(chan error, 1)
	go func() { done <- app.Listener(ln) }()
	b.Cleanup(func() {
		app.ShutdownWithTimeout(5 * time.Second)
		if err := <-done; err != nil && !errors.Is(err, net.ErrClosed) {
			b.Logf("fiber: %v", err)
		}
	})
	return suiteTarget{url: "http://" + ln.Addr().String() + "/hello", wantBody: "Hello"}
}

// suiteCounters are a function's counters from a node's /metrics.
type suiteCounters struct {
	invocations, coldStarts uint64
	warmShare               float64
	restarts                int  // worker restarts so far (which reset a worker's counters)
	complete                bool // the counters cover every invocation asked for
}

// suiteScrape reads fn's counters from the node's admin /metrics. Workers send their counters with
// every fifth heartbeat (every half second), so it waits until the invocations add up to at least
// want, or, if they never do (a worker restarted and its counters with it), until they have been
// still for a second; then it returns them with complete false.
func suiteScrape(n *Node, fn string, want uint64) (suiteCounters, error) {
	tok, err := os.ReadFile(adminapi.TokenPath(n.DataDir()))
	if err != nil {
		return suiteCounters{}, err
	}
	restarts := n.WorkerRestarts()
	var last suiteCounters
	lastChange := time.Now()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := suiteScrapeOnce(n, fn, strings.TrimSpace(string(tok)))
		if err != nil {
			return c, err
		}
		c.restarts = restarts
		if c.invocations >= want {
			c.complete = true
			return c, nil
		}
		if c.invocations != last.invocations {
			last, lastChange = c, time.Now()
		}
		if time.Since(lastChange) > time.Second || time.Now().After(deadline) {
			return c, nil
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func suiteScrapeOnce(n *Node, fn, token string) (suiteCounters, error) {
	var c suiteCounters
	req, err := http.NewRequest(http.MethodGet, "http://"+n.AdminAddr()+"/metrics", nil)
	if err != nil {
		return c, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := client.Do(req)
	if err != nil {
		return c, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return c, fmt.Errorf("metrics: status %d", resp.StatusCode)
	}
	label := fmt.Sprintf(`function=%q`, fn)
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		name, rest, ok := strings.Cut(line, "{")
		if !ok || strings.HasPrefix(line, "#") {
			continue
		}
		labels, value, ok := strings.Cut(rest, "} ")
		if !ok || !slices.Contains(strings.Split(labels, ","), label) {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
		if err != nil {
			return c, fmt.Errorf("metrics: %q: %v", line, err)
		}
		switch name {
		case "gatehouse_invocations_total":
			c.invocations += uint64(v)
		case "gatehouse_cold_starts_total":
			c.coldStarts += uint64(v)
		case "gatehouse_warm_share":
			c.warmShare = v
		}
	}
	return c, sc.Err()
}

// slsOfflineService is the serverless-offline service the suite measures: a Node handler answering
// what the Go hello sample answers, behind an HTTP API route.
const slsOfflineService = `service: gatehouse-suite
frameworkVersion: "3"
provider:
  name: aws
  runtime: nodejs20.x
plugins:
  - serverless-offline
functions:
  hello:
    handler: handler.hello
    events:
      - httpApi:
          path: /hello
          method: get
`

const slsOfflineHandler = `exports.hello = async () => ({
  statusCode: 200,
  headers: { "content-type": "application/json" },
  body: '{"message":"hello from gatehouse"}',
});
`

// nodeHelloStack writes a stack whose GET /hello runs slsOfflineHandler as a Node.js process
// runtime, and returns its file.
func nodeHelloStack(b *testing.B) string {
	dir := b.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "handler.js"), []byte(slsOfflineHandler), 0o644); err != nil {
		b.Fatal(err)
	}
	stack := `version: 1
name: nodehello
functions:
  hello: {source: ., runtime: nodejs20.x, handler: handler.hello}
apis:
  web:
    type: http
    routes:
      GET /hello: {function: hello}
`
	if err := os.WriteFile(filepath.Join(dir, "gatehouse.yaml"), []byte(stack), 0o644); err != nil {
		b.Fatal(err)
	}
	return filepath.Join(dir, "gatehouse.yaml")
}

// startSLSOffline writes the service into dir (where serverless and serverless-offline are
// installed) and runs `serverless offline` with flags until b ends.
func startSLSOffline(b *testing.B, dir string, flags ...string) suiteTarget {
	for name, body := range map[string]string{"serverless.yml": slsOfflineService, "handler.js": slsOfflineHandler} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	port := strings.TrimPrefix(testfix.FreeAddr(b), "127.0.0.1:")
	lambdaPort := strings.TrimPrefix(testfix.FreeAddr(b), "127.0.0.1:")
	args := append([]string{"serverless", "offline", "--httpPort", port, "--lambdaPort", lambdaPort}, flags...)
	cmd := exec.Command("npx", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "SLS_TELEMETRY_DISABLED=1", "SLS_NOTIFICATIONS_MODE=off",
		"AWS_ACCESS_KEY_ID=suite", "AWS_SECRET_ACCESS_KEY=suite")
	var out syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		b.Skipf("serverless-offline: %v", err)
	}
	b.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		cmd.Wait()
	})
	url := "http://127.0.0.1:" + port + "/hello"
	for deadline := time.Now().Add(90 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		if resp, err := http.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			b.Fatalf("serverless-offline did not answer within 90 s:\n%s", out.String())
		}
	}
	return suiteTarget{url: url, wantBody: `{"message":"hello from gatehouse"}`}
}
