package app

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gatehouse.dev/gatehouse/internal/adminapi"
	"gatehouse.dev/gatehouse/loadtest"
)

// Settings of BenchmarkAsync.
const (
	// abFunction is the function of testdata/asyncbench-stack.yaml that the events invoke.
	abFunction = "asyncbench"
	// abThroughputEvents is how many events the throughput run queues at once.
	abThroughputEvents = 5000
	// abRate and abRateFor are the steady rate, below saturation, of the start-latency run.
	abRate    = 200
	abRateFor = 5 * time.Second
	// abSyncFor is the length of each run of synchronous requests; abBacklog the events queued
	// before the runs that measure them beside a backlog.
	abSyncFor = 3 * time.Second
	abBacklog = 10000
	// abEnqueuers is how many goroutines queue a batch of events (the throughput run's, a backlog).
	abEnqueuers = 8
	// abPoll is how often the queue is looked at while waiting for it to drain; abWait bounds every
	// wait.
	abPoll = 20 * time.Millisecond
	abWait = 2 * time.Minute
	// envAsyncBenchConcurrency sets the node's --async-concurrency (default 4 per CPU), to see what
	// the bound does to the sync runs.
	envAsyncBenchConcurrency = "GATEHOUSE_ASYNCBENCH_CONCURRENCY"
)

// abSyncConcurrency are the synchronous requests in flight of the sync runs: 1 (latency) and 16.
var abSyncConcurrency = []int{1, 16}

// BenchmarkAsync measures asynchronous invocations on one node (testdata/asyncbench-stack.yaml, two
// workers, the default --async-concurrency), in one run:
//
//   - throughput: abThroughputEvents events of a function that answers at once, queued from
//     abEnqueuers goroutines, until all have run: events/s from the first Enqueue to the moment the
//     queue's Stats show nothing queued or in flight (looked at every abPoll), checked against the
//     node's gatehouse_async_invocations_total{outcome="succeeded"}, with the CPU time the node's
//     process and its workers used per event meanwhile;
//   - start-latency: events queued at abRate a second for abRateFor, one at a time on a fixed
//     schedule, and the time from each Enqueue returning to its invocation starting (see
//     asyncBench.readStarts for how the start is known);
//   - sync-cN: GET /hello (the hello sample) with N requests in flight (closed loop, package
//     loadtest) for abSyncFor with an empty queue, then again right after abBacklog events were
//     queued, while they drain; the metrics put the two side by side. The second run ends early
//     should the backlog drain first (backlog-run-ms says how long it ran; backlog-start and
//     backlog-end are the events left at its start and end), so it measures requests beside a
//     backlog only. The cores are the CPU time the node's processes used over each run's length.
//
// Each sub-benchmark does its work once, whatever b.N; run it with
//
//	go test ./internal/app -run '^$' -bench BenchmarkAsync -benchtime 1x
//
// GATEHOUSE_ASYNCBENCH_CONCURRENCY=N runs the node with --async-concurrency N instead of the default.
//
// The load generator, the gateway, NATS and the queue's consumers share this process; the workers
// are processes of their own. All of them share the machine's cores.
func BenchmarkAsync(b *testing.B) {
	ctx := context.Background()
	asyncConcurrency := 0 // the default
	if v := os.Getenv(envAsyncBenchConcurrency); v != "" {
		var err error
		if asyncConcurrency, err = strconv.Atoi(v); err != nil || asyncConcurrency < 1 {
			b.Fatalf("%s=%q: want a positive number", envAsyncBenchConcurrency, v)
		}
	}
	n := startNode(b, "testdata/asyncbench-stack.yaml", newDataDir(b), func(o *Options) { o.AsyncConcurrency = asyncConcurrency })
	defer n.Stop(ctx)
	raw, err := os.ReadFile(adminapi.TokenPath(n.DataDir()))
	if err != nil {
		b.Fatal(err)
	}
	a := &asyncBench{n: n, token: strings.TrimSpace(string(raw)), hello: "http://" + n.GatewayAddr() + "/hello",
		admin: &http.Client{Timeout: 30 * time.Second}}

	// Warm up: the sandboxes the runs need (the async consumers run up to 4 per CPU at once; 16
	// requests in flight), started a few at a time, and the function's log path.
	for _, c := range []int{1, 4, 16} {
		if _, err := loadtest.Run(ctx, loadtest.Config{Target: a.hello, Concurrency: c, Duration: 500 * time.Millisecond}); err != nil {
			b.Fatal(err)
		}
	}
	a.enqueueMany(b, 500, []byte(`{}`))
	for range 20 {
		a.enqueue(b, []byte(`{"t":`+strconv.FormatInt(time.Now().UnixNano(), 10)+`}`))
	}
	a.waitDrained(b)

	b.Run("throughput", func(b *testing.B) {
		runtime.GC()
		before := a.outcomes(b)
		nodeCPU, workerCPU := a.cpu()
		start := time.Now()
		a.enqueueMany(b, abThroughputEvents, []byte(`{}`))
		enqueued := time.Now()
		left := a.pending(b)
		done := a.waitDrained(b)
		nodeCPU2, workerCPU2 := a.cpu()
		after := a.outcomes(b)
		if got := after["succeeded"] - before["succeeded"]; got < abThroughputEvents {
			b.Fatalf("%v events succeeded, want %d (outcomes before %v, after %v)", got, abThroughputEvents, before, after)
		}
		took := done.Sub(start)
		b.ReportMetric(float64(took.Nanoseconds())/abThroughputEvents, "ns/op")
		b.ReportMetric(abThroughputEvents/took.Seconds(), "events/s")
		b.ReportMetric(abThroughputEvents/enqueued.Sub(start).Seconds(), "enqueued/s")
		b.ReportMetric(float64(left), "left-after-enqueue")
		b.ReportMetric(after["throttled"]-before["throttled"], "throttled")
		b.ReportMetric(float64((nodeCPU2-nodeCPU).Microseconds())/abThroughputEvents, "node-cpu-µs/event")
		b.ReportMetric(float64((workerCPU2-workerCPU).Microseconds())/abThroughputEvents, "worker-cpu-µs/event")
	})

	b.Run("start-latency", func(b *testing.B) {
		runtime.GC()
		before := a.outcomes(b)
		interval := time.Second / abRate
		count := int(abRateFor / interval)
		returned := make(map[string]time.Time, count)
		calls := make([]time.Duration, 0, count)
		start := time.Now()
		for i := range count {
			time.Sleep(time.Until(start.Add(time.Duration(i) * interval)))
			called := time.Now()
			id := a.enqueue(b, []byte(`{"t":`+strconv.FormatInt(called.UnixNano(), 10)+`}`))
			at := time.Now()
			returned[id] = at
			calls = append(calls, at.Sub(called))
		}
		sent := time.Since(start)
		a.waitDrained(b)
		after := a.outcomes(b)
		host, guest := a.readStarts(b, returned)
		var toHost, toGuest []time.Duration
		for id, at := range returned {
			toHost = append(toHost, host[id].Sub(at))
			toGuest = append(toGuest, guest[id].Sub(at))
		}
		b.ReportMetric(float64(count)/sent.Seconds(), "events/s")
		b.ReportMetric(abQuantile(calls, 0.5), "enqueue-p50-µs")
		b.ReportMetric(abQuantile(calls, 0.99), "enqueue-p99-µs")
		b.ReportMetric(abQuantile(toHost, 0.5), "p50-µs")
		b.ReportMetric(abQuantile(toHost, 0.99), "p99-µs")
		b.ReportMetric(abQuantile(toHost, 1), "max-µs")
		b.ReportMetric(abQuantile(toGuest, 0.5), "guest-p50-µs")
		b.ReportMetric(abQuantile(toGuest, 0.99), "guest-p99-µs")
		b.ReportMetric(after["throttled"]-before["throttled"], "throttled")
	})

	for _, c := range abSyncConcurrency {
		b.Run(fmt.Sprintf("sync-c%d", c), func(b *testing.B) {
			runtime.GC()
			cores := func(n0, w0, n1, w1 time.Duration, d time.Duration) float64 {
				return (n1 - n0 + w1 - w0).Seconds() / d.Seconds()
			}
			n0, w0 := a.cpu()
			idle := a.load(b, c)
			n1, w1 := a.cpu()
			idleCores := cores(n0, w0, n1, w1, idle.Elapsed)
			if p := a.pending(b); p != 0 {
				b.Fatalf("%d events queued during the run without a backlog", p)
			}
			runtime.GC()
			start := time.Now()
			a.enqueueMany(b, abBacklog, []byte(`{}`))
			enqueueTook := time.Since(start)
			atStart, before := a.pending(b), a.outcomes(b)
			// The run ends early should the backlog drain first: it measures requests beside a
			// backlog only.
			bctx, drained := context.WithCancel(context.Background())
			watched := make(chan struct{})
			go func() {
				defer close(watched)
				for bctx.Err() == nil {
					if p, err := a.pendingErr(); err == nil && p == 0 {
						drained()
						return
					}
					select {
					case <-bctx.Done():
					case <-time.After(100 * time.Millisecond):
					}
				}
			}()
			n0, w0 = a.cpu()
			busy := a.loadCtx(bctx, b, c)
			n1, w1 = a.cpu()
			drained()
			<-watched
			atEnd, after := a.pending(b), a.outcomes(b)
			busyCores := cores(n0, w0, n1, w1, busy.Elapsed)
			a.waitDrained(b)
			us := func(d time.Duration) float64 { return float64(d.Microseconds()) }
			if busy.Answered > 0 {
				b.ReportMetric(float64(busy.Elapsed.Nanoseconds())/float64(busy.Answered), "ns/op")
			}
			b.ReportMetric(us(idle.Latency.Quantile(0.5)), "idle-p50-µs")
			b.ReportMetric(us(idle.Latency.Quantile(0.99)), "idle-p99-µs")
			b.ReportMetric(us(idle.Latency.Max()), "idle-max-µs")
			b.ReportMetric(idle.Throughput(), "idle-req/s")
			b.ReportMetric(us(busy.Latency.Quantile(0.5)), "backlog-p50-µs")
			b.ReportMetric(us(busy.Latency.Quantile(0.99)), "backlog-p99-µs")
			b.ReportMetric(us(busy.Latency.Max()), "backlog-max-µs")
			b.ReportMetric(busy.Throughput(), "backlog-req/s")
			b.ReportMetric(float64(idle.ErrorCount()+busy.ErrorCount()), "errors")
			b.ReportMetric(float64(atStart), "backlog-start")
			b.ReportMetric(float64(atEnd), "backlog-end")
			b.ReportMetric((after["succeeded"]-before["succeeded"])/busy.Elapsed.Seconds(), "async-events/s")
			b.ReportMetric(enqueueTook.Seconds()*1e3, "enqueue-ms")
			b.ReportMetric(float64(busy.Elapsed.Milliseconds()), "backlog-run-ms")
			b.ReportMetric(idleCores, "idle-cores")
			b.ReportMetric(busyCores, "backlog-cores")
			if idle.ErrorCount()+busy.ErrorCount() > 0 {
				b.Logf("errors: without a backlog %v %v, with one %v %v", idle.Statuses, idle.Errors, busy.Statuses, busy.Errors)
			}
		})
	}
}

// asyncBench is BenchmarkAsync's node and its clients.
type asyncBench struct {
	n     *Node
	token string
	hello string
	admin *http.Client
}

// enqueue queues one event of abFunction, as the admin API does, and returns its request id.
func (a *asyncBench) enqueue(b *testing.B, payload []byte) string {
	id, err := a.n.enqueueNew(context.Background(), abFunction, "", payload)
	if err != nil {
		b.Fatalf("queueing an event: %v", err)
	}
	return id
}

// enqueueMany queues count events of abFunction from abEnqueuers goroutines.
func (a *asyncBench) enqueueMany(b *testing.B, count int, payload []byte) {
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, abEnqueuers)
	for range abEnqueuers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(count) {
				if _, err := a.n.enqueueNew(context.Background(), abFunction, "", payload); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		b.Fatalf("queueing events: %v", err)
	}
}

// cpu is the CPU time used so far by this process (the node, the enqueuers, the load generator and
// the polling: the benchmark's own work is a small part of it) and by the node's worker processes,
// from /proc (zeros without it). A worker restarted meanwhile would make the difference wrong; the
// runs restart none.
func (a *asyncBench) cpu() (node, workers time.Duration) {
	node, _ = wsbProcCPU(os.Getpid())
	for _, pid := range a.n.WorkerPIDs() {
		t, _ := wsbProcCPU(pid)
		workers += t
	}
	return node, workers
}

// pending is abFunction's events queued or in flight, as the queue's Stats count them.
func (a *asyncBench) pending(b *testing.B) int {
	p, err := a.pendingErr()
	if err != nil {
		b.Fatal(err)
	}
	return p
}

func (a *asyncBench) pendingErr() (int, error) {
	stats, err := a.n.async.Stats(context.Background())
	if err != nil {
		return 0, err
	}
	for _, s := range stats {
		if s.Function == abFunction {
			return int(s.Queued) + s.InFlight, nil
		}
	}
	return 0, nil
}

// waitDrained waits for abFunction's queue to hold nothing queued or in flight, and returns when it
// saw that.
func (a *asyncBench) waitDrained(b *testing.B) time.Time {
	deadline := time.Now().Add(abWait)
	for {
		if a.pending(b) == 0 {
			return time.Now()
		}
		if time.Now().After(deadline) {
			b.Fatalf("the queue did not drain in %s: %d events left", abWait, a.pending(b))
		}
		time.Sleep(abPoll)
	}
}

// outcomes are abFunction's gatehouse_async_invocations_total by outcome, from the node's /metrics.
func (a *asyncBench) outcomes(b *testing.B) map[string]float64 {
	req, err := http.NewRequest(http.MethodGet, "http://"+a.n.AdminAddr()+"/metrics", nil)
	if err != nil {
		b.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+a.token)
	resp, err := a.admin.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK {
		b.Fatalf("GET /metrics: %d %v", resp.StatusCode, err)
	}
	prefix := `gatehouse_async_invocations_total{function="` + abFunction + `",outcome="`
	out := map[string]float64{}
	for line := range strings.Lines(string(body)) {
		rest, ok := strings.CutPrefix(line, prefix)
		if !ok {
			continue
		}
		outcome, value, ok := strings.Cut(rest, `"} `)
		if v, err := strconv.ParseFloat(strings.TrimSpace(value), 64); ok && err == nil {
			out[outcome] += v
		}
	}
	return out
}

// readStarts finds when each event of returned (request id → when its Enqueue returned) started,
// in abFunction's logs (GET /admin/v1/functions/asyncbench/logs), two ways:
//
//   - host: the time of the invocation's platform START line, which the worker's scheduler stamps
//     when it hands the invocation to its sandbox (after taking an instance and a turn), on the
//     host's clock. A warm invocation writes that line only once it prints something, so the
//     function prints its BENCHSTART line for events carrying "t".
//   - guest: the clock the function read as its handler began (printed in BENCHSTART): the host's
//     real time too (the sandbox provides the system's clocks), later by the SDK's work of reading
//     the event.
//
// Both are compared with the benchmark's own clock when Enqueue returned: one machine, one
// real-time clock. The log stream is written asynchronously, so it waits until every event has
// both.
func (a *asyncBench) readStarts(b *testing.B, returned map[string]time.Time) (host, guest map[string]time.Time) {
	deadline := time.Now().Add(abWait)
	for {
		host, guest = map[string]time.Time{}, map[string]time.Time{}
		req, err := http.NewRequest(http.MethodGet, "http://"+a.n.AdminAddr()+"/admin/v1/functions/"+abFunction+"/logs?limit=10000", nil)
		if err != nil {
			b.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+a.token)
		resp, err := a.admin.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var rec adminapi.LogRecord
			if json.Unmarshal(sc.Bytes(), &rec) != nil {
				continue
			}
			if _, ok := returned[rec.RequestID]; !ok {
				continue
			}
			msg := strings.TrimSpace(rec.Message)
			if rec.Stream == "platform" && strings.HasPrefix(msg, "START RequestId: ") {
				if _, seen := host[rec.RequestID]; !seen { // the first start, should an event run twice
					host[rec.RequestID] = rec.Time
				}
			} else if f := strings.Fields(msg); len(f) == 3 && f[0] == "BENCHSTART" {
				if ns, err := strconv.ParseInt(f[2], 10, 64); err == nil {
					if _, seen := guest[rec.RequestID]; !seen {
						guest[rec.RequestID] = time.Unix(0, ns)
					}
				}
			}
		}
		err = sc.Err()
		resp.Body.Close()
		if err != nil {
			b.Fatal(err)
		}
		if len(host) == len(returned) && len(guest) == len(returned) {
			return host, guest
		}
		if time.Now().After(deadline) {
			b.Fatalf("the logs hold the start of %d and %d (host, guest) of %d events", len(host), len(guest), len(returned))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// load is one closed-loop run of GET /hello with c requests in flight for abSyncFor.
func (a *asyncBench) load(b *testing.B, c int) *loadtest.Result {
	return a.loadCtx(context.Background(), b, c)
}

// loadCtx is load ended early by ctx; requests in flight then are abandoned, not counted.
func (a *asyncBench) loadCtx(ctx context.Context, b *testing.B, c int) *loadtest.Result {
	res, err := loadtest.Run(ctx, loadtest.Config{Target: a.hello, Concurrency: c, Duration: abSyncFor})
	if err != nil {
		b.Fatal(err)
	}
	return res
}

// abQuantile is the q quantile of ds in microseconds (1 is the largest).
func abQuantile(ds []time.Duration, q float64) float64 {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := min(int(q*float64(len(s))), len(s)-1)
	return float64(s[i].Microseconds())
}
