package app

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"text/tabwriter"
	"time"

	"gatehouse.dev/gatehouse/internal/testfix"
	"gatehouse.dev/gatehouse/runtimes"
)

// Settings of BenchmarkTargets.
const (
	// targetsColdStarts is how many instances of the Go hello each cold-start measurement starts.
	targetsColdStarts = 200
	// targetsConnectRounds is how many rounds of wsbConnectBatch connections each worker mode opens.
	targetsConnectRounds = 3
	// targetsBroadcasts is how many broadcasts to wsbBroadcastConns clients each worker mode sends.
	targetsBroadcasts = 5
)

// BenchmarkTargets measures every target of the performance work in one run and prints them beside
// their goals (docs/performance.md, "Every target in one command"):
//
//		go test ./internal/app -run '^$' -bench '^BenchmarkTargets$' -benchtime 1x
//
//	  - the suite's hello targets (bare Fiber, Gatehouse with worker processes and inline, the minimal
//	    reactor inline, a Node.js hello through the Runtime API inline, Fiber again), with 1, 16 and
//	    64 requests in flight (see BenchmarkSuite; with GATEHOUSE_SUITE_SLS_OFFLINE set,
//	    serverless-offline in both its modes as well);
//	  - the Go hello's cold start to its first response, initialised and from a snapshot (as
//	    BenchmarkColdStart), the median of targetsColdStarts each;
//	  - WebSocket connects per second with a $connect function, one message broadcast to 10,000
//	    clients, and the `up` process's memory per idle connection (as BenchmarkWebSocketConnect,
//	    BenchmarkBroadcast10k and BenchmarkWebSocketIdle), each with worker processes and inline where
//	    the mode matters. These open up to 19,000 sockets and are left out, with a line saying so, when
//	    the limit on open files is too low.
//
// Each sub-benchmark measures once, whatever b.N. A target is "met" when the measured value is within
// its goal in this run; the machine is shared and noisy, so compare runs, never one number.
func BenchmarkTargets(b *testing.B) {
	t := &targets{}
	s := newSuite(b, []int{1, 16, 64})
	s.hello(b, suiteOptions{node: true, slsModes: []string{slsInProcess, slsDefault}})
	t.suite = s

	b.Run("cold-start", func(b *testing.B) { t.coldInit, t.coldSnapshot = targetsColdStart(b) })

	limit := targetsFileLimit()
	t.fileLimit = limit
	modes := []string{WorkerModeInline, WorkerModeProcess}
	if limit >= wsbConnectBatch+500 {
		for _, mode := range modes {
			b.Run("connect-"+mode, func(b *testing.B) {
				s := wsbStartMode(b, mode)
				d := newWSBDialer()
				s.warmConnects(b, d)
				var r wsbConnects
				for range targetsConnectRounds {
					r.round(b, s, d, wsbConnectBatch, wsbConnectDialers)
				}
				t.connects = append(t.connects, targetsConnect{mode, r})
				b.ReportMetric(r.perSecond(), "conns/s")
			})
		}
	}
	if limit >= wsbBroadcastConns+500 {
		for _, mode := range modes {
			b.Run("broadcast-"+mode, func(b *testing.B) {
				s := wsbStartMode(b, mode)
				w := wsbConnectClients(b, s, wsbBroadcastConns)
				defer w.close()
				var r wsbBroadcasts
				for range targetsBroadcasts {
					r.once(b, s, w)
				}
				t.broadcasts = append(t.broadcasts, targetsBroadcast{mode, r})
				b.ReportMetric(wsbMs(wsbPercentile(r.lat, 0.5)), "p50-ms")
			})
		}
	}
	if n := min(wsbIdleConns, int(limit)-1000); n >= 1000 {
		b.Run("idle", func(b *testing.B) {
			t.idle = wsbMeasureIdle(b, wsbStartMode(b, ""), n)
			t.idleConns = n
			b.ReportMetric(t.idle.rssPerConn, "rss-B/conn")
		})
	}
	fmt.Println(s.table())
	fmt.Println()
	fmt.Println(t.table())
}

// targets holds what BenchmarkTargets measured.
type targets struct {
	suite                  *suite
	coldInit, coldSnapshot time.Duration
	fileLimit              uint64
	connects               []targetsConnect
	broadcasts             []targetsBroadcast
	idle                   wsbIdle
	idleConns              int
}

type targetsConnect struct {
	mode string
	r    wsbConnects
}

type targetsBroadcast struct {
	mode string
	r    wsbBroadcasts
}

// targetsFileLimit returns this process's limit on open files (the clients' sockets count here).
func targetsFileLimit() uint64 {
	var rlim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rlim); err != nil {
		return 0
	}
	return rlim.Cur
}

// targetsColdStart starts targetsColdStarts instances of the Go hello and invokes each once, as a
// worker does for a request that finds no idle instance: initialised by the module, then from a
// snapshot. It returns the medians.
func targetsColdStart(b *testing.B) (initialised, restored time.Duration) {
	ctx := context.Background()
	wasm, err := os.ReadFile(testfix.Reactor(b, "samples/hello"))
	if err != nil {
		b.Fatal(err)
	}
	e, err := runtimes.NewEngine(ctx, runtimes.Config{CacheDir: testfix.CompileCacheDir()})
	if err != nil {
		b.Fatal(err)
	}
	defer e.Close(ctx)
	m, err := e.Compile(ctx, wasm)
	if err != nil {
		b.Fatal(err)
	}
	event := []byte(`{"version":"2.0","routeKey":"GET /hello","rawPath":"/hello","rawQueryString":"","headers":{"host":"127.0.0.1"},"requestContext":{"routeKey":"GET /hello","stage":"$default","requestId":"r","http":{"method":"GET","path":"/hello","protocol":"HTTP/1.1","sourceIp":"127.0.0.1"}},"isBase64Encoded":false}`)
	measure := func(snapshot bool) time.Duration {
		cfg := runtimes.InstanceConfig{FunctionName: "hello", Snapshot: snapshot}
		took := make([]time.Duration, 0, targetsColdStarts)
		for i := range targetsColdStarts + 1 {
			start := time.Now()
			inst, err := m.Instantiate(ctx, cfg)
			if err != nil {
				b.Fatal(err)
			}
			out, err := inst.Invoke(ctx, runtimes.Meta{RequestID: "r"}, event)
			elapsed := time.Since(start)
			if err != nil {
				b.Fatal(err)
			}
			if !strings.Contains(string(out), "hello from gatehouse") {
				b.Fatalf("the first response is %q", out)
			}
			inst.Close(ctx)
			if i > 0 { // the first takes the snapshot, or warms the engine's kept memories
				took = append(took, elapsed)
			}
		}
		return wsbPercentile(took, 0.5)
	}
	initialised, restored = measure(false), measure(true)
	b.ReportMetric(float64(initialised.Microseconds()), "init-µs")
	b.ReportMetric(float64(restored.Microseconds()), "snapshot-µs")
	return initialised, restored
}

// notMeasured says why a WebSocket target that needs need open files was not measured.
func (t *targets) notMeasured(need int) string {
	if t.fileLimit < uint64(need) {
		return fmt.Sprintf("not measured: the limit on open files is %d, it needs %d (ulimit -n)", t.fileLimit, need)
	}
	return "not measured: left out by -bench"
}

// row returns the suite's run of target with c in flight, or nil.
func (t *targets) row(target string, c int) *suiteRow {
	for _, r := range t.suite.rows {
		if r.Target == target && r.Concurrency == c {
			return r
		}
	}
	return nil
}

// fiberRPS returns the higher of the two bare Fiber runs with c in flight: the ceiling the targets'
// shares are of. The higher one, because the machine's noise only ever lowers a run.
func (t *targets) fiberRPS(c int) float64 {
	var best float64
	for _, name := range []string{"fiber", "fiber-again"} {
		if r := t.row(name, c); r != nil {
			best = max(best, r.RPS)
		}
	}
	return best
}

// table lists every target with its goal and what this run measured, one line per measurement.
func (t *targets) table() string {
	var sb strings.Builder
	tw := tabwriter.NewWriter(&sb, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "target\tgoal\tmeasured on\tthis run\tmet\t")
	last := ""
	line := func(what, goal, on, measured string, met bool) {
		if what == last {
			what, goal = "", ""
		} else {
			last = what
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t\n", what, goal, on, measured, map[bool]string{true: "yes", false: "no"}[met])
	}
	missing := func(what, goal, why string) {
		fmt.Fprintf(tw, "%s\t%s\t\t%s\t\t\n", what, goal, why)
		last = what
	}

	for _, tg := range []struct {
		what, goal string
		targets    []string
		share      float64
	}{
		{"warm Go hello vs bare Fiber, 64 in flight", "≥ 40%", []string{"gatehouse-inline", "gatehouse"}, 0.40},
		{"minimal reactor vs bare Fiber, 64 in flight", "≥ 55%", []string{"minimal-inline"}, 0.55},
	} {
		fiber := t.fiberRPS(64)
		for _, target := range tg.targets {
			if r := t.row(target, 64); r != nil && fiber > 0 {
				line(tg.what, tg.goal, target, fmt.Sprintf("%.1f%% (%.0f of %.0f req/s)", 100*r.RPS/fiber, r.RPS, fiber), r.RPS/fiber >= tg.share)
			}
		}
	}
	for _, target := range []string{"gatehouse-inline", "gatehouse"} {
		if r := t.row(target, 1); r != nil {
			line("Go hello, 1 in flight: p50 / p99", "≤ 200 / 500 µs", target, fmt.Sprintf("%d / %d µs", r.P50US, r.P99US), r.P50US <= 200 && r.P99US <= 500)
		}
	}
	if t.coldInit > 0 {
		const what, goal = "Go cold start to the first response, median", "≤ 2 ms"
		line(what, goal, "initialised", t.coldInit.Round(10*time.Microsecond).String(), t.coldInit <= 2*time.Millisecond)
		line(what, goal, "snapStart", t.coldSnapshot.Round(10*time.Microsecond).String(), t.coldSnapshot <= 2*time.Millisecond)
	}

	const connects, connectsGoal = "new WebSocket connections with a $connect function", "≥ 8,000/s"
	for _, c := range t.connects {
		n := float64(len(c.r.handshakes))
		cpu := c.r.gwCPU + c.r.workerCPU + c.r.clientCPU
		line(connects, connectsGoal, c.mode, fmt.Sprintf("%.0f/s (CPU per connect: up %.0f µs, workers %.0f µs, clients %.0f µs: at most %.0f/s on %d CPUs)",
			c.r.perSecond(), float64(c.r.gwCPU.Microseconds())/n, float64(c.r.workerCPU.Microseconds())/n,
			float64(c.r.clientCPU.Microseconds())/n, n*float64(runtime.NumCPU())/cpu.Seconds(), runtime.NumCPU()),
			c.r.perSecond() >= 8000)
	}
	if len(t.connects) == 0 {
		missing(connects, connectsGoal, t.notMeasured(wsbConnectBatch+500))
	}
	const broadcast, broadcastGoal = "one message to 10,000 clients by broadcast, p50", "≤ 80 ms"
	for _, c := range t.broadcasts {
		p50 := wsbPercentile(c.r.lat, 0.5)
		n := float64(len(c.r.lat))
		cpu := float64(c.r.gwCPU+c.r.workerCPU+c.r.clientCPU) / n
		line(broadcast, broadcastGoal, c.mode, fmt.Sprintf("%.0f ms (the host call %.0f ms; CPU: up %.0f ms, workers %.0f ms, clients %.0f ms: at least %.0f ms on %d CPUs)",
			wsbMs(p50), wsbMs(wsbPercentile(c.r.host, 0.5)), wsbMs(c.r.gwCPU)/n, wsbMs(c.r.workerCPU)/n, wsbMs(c.r.clientCPU)/n,
			cpu/float64(runtime.NumCPU())/float64(time.Millisecond), runtime.NumCPU()),
			p50 <= 80*time.Millisecond)
	}
	if len(t.broadcasts) == 0 {
		missing(broadcast, broadcastGoal, t.notMeasured(wsbBroadcastConns+500))
	}
	const idle, idleGoal = "memory per idle WebSocket connection", "≤ 10 KB"
	if t.idleConns > 0 {
		line(idle, idleGoal, fmt.Sprintf("%d connections", t.idleConns),
			fmt.Sprintf("%.1f KB of RSS (%.1f KB of Go heap)", t.idle.rssPerConn/1000, t.idle.heapPerConn/1000), t.idle.rssPerConn <= 10000)
	} else {
		missing(idle, idleGoal, t.notMeasured(2000))
	}

	for _, sls := range []struct {
		target, what, goal string
		c                  int
		ratio              float64
		p50                bool
	}{
		{slsInProcess, "vs serverless-offline --useInProcess, 64 in flight", "≥ 5× its req/s; p50 at 1 in flight below its", 64, 5, true},
		{slsDefault, "vs serverless-offline's default mode, 16 in flight", "≥ 20× its req/s", 16, 20, false},
	} {
		base, base1 := t.row(sls.target, sls.c), t.row(sls.target, 1)
		if base == nil || base.RPS == 0 {
			missing(sls.what, sls.goal, "not measured: set "+envSuiteSLSOffline+" (docs/performance.md)")
			continue
		}
		for _, target := range []string{"gatehouse-inline", "gatehouse", "node-inline"} {
			r, r1 := t.row(target, sls.c), t.row(target, 1)
			if r == nil {
				continue
			}
			x := r.RPS / base.RPS
			met := x >= sls.ratio
			s := fmt.Sprintf("%.1f× (%.0f against %.0f req/s)", x, r.RPS, base.RPS)
			if sls.p50 && r1 != nil && base1 != nil {
				met = met && r1.P50US < base1.P50US
				s += fmt.Sprintf(", p50 %d against %d µs", r1.P50US, base1.P50US)
			}
			line(sls.what, sls.goal, target, s, met)
		}
	}
	tw.Flush()
	sb.WriteString("shares of Fiber are of the higher of its two runs at the same concurrency; one run says little on a shared machine\n")
	return strings.TrimRight(sb.String(), "\n")
}
