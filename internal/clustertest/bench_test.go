package clustertest

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

// hello is what GET /hello answers.
const hello = `{"message":"hello from gatehouse"}`

// addNode makes one more node of the cluster, with role ("" is all), joining through the others'
// route listeners; it does not start it.
func (c *testCluster) addNode(t testing.TB, role string) *node {
	t.Helper()
	route := freeAddr(t)
	c.join = append(c.join, route)
	n := newNode(t, nodeConfig{name: fmt.Sprintf("%s-n%d", c.name, len(c.nodes)+1), cluster: c.name, route: route,
		join: c.join, role: role})
	n.args = append(n.args, "--cluster-token-file", c.token)
	c.nodes = append(c.nodes, n)
	return n
}

// sequential sends count GET path requests to n one after another over one connection, and returns
// their latencies and how many failed (a 200 whose body does not hold want fails).
func sequential(n *node, path, want string, count int) ([]time.Duration, int) {
	c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1, DisableCompression: true}}
	defer c.CloseIdleConnections()
	lat := make([]time.Duration, 0, count)
	failed := 0
	for range count {
		start := time.Now()
		status, body, err := getWith(c, n.url(path), 30*time.Second)
		lat = append(lat, time.Since(start))
		if err != nil || status != http.StatusOK || !strings.Contains(string(body), want) {
			failed++
		}
	}
	return lat, failed
}

// BenchmarkCrossNode measures, on a cluster of node A (role all, one worker) and node B (role
// gateway: it runs no workers, so each of its requests runs on A's worker), the latency of GET /hello
// with one request in flight through A (a local invocation) and through B (a cross-node one), and
// the CPU time the cluster's processes (the nodes and their workers) spend per request. Then it adds
// a node C (role all), kills it under load through B, and measures how soon the invocations that
// were running on C's worker fail, and how soon requests succeed again.
//
// It starts clusters and takes about a minute whatever -benchtime says: run it with
//
//	go test ./internal/clustertest -run '^$' -bench CrossNode -benchtime 1x
func BenchmarkCrossNode(b *testing.B) {
	skipShort(b)
	c := startCluster(b, "bench", "", "gateway")
	a, g := c.nodes[0], c.nodes[1]
	const requests = 2000
	// Warm: both paths have their connection, and A's worker an instance of hello.
	for _, n := range []*node{a, g} {
		if _, failed := sequential(n, "/hello", hello, 50); failed > 0 {
			b.Fatalf("warming %s: %d of 50 requests failed", n.name, failed)
		}
	}

	type phase struct {
		name     string
		via      *node
		lat      []time.Duration
		cpu      time.Duration
		failed   int
		duration time.Duration
	}
	phases := []*phase{{name: "local", via: a}, {name: "cross", via: g}}
	b.ResetTimer()
	for range b.N {
		for _, p := range phases {
			cpu := treeCPU(a.pid(), g.pid())
			start := time.Now()
			p.lat, p.failed = sequential(p.via, "/hello", hello, requests)
			p.duration = time.Since(start)
			p.cpu = treeCPU(a.pid(), g.pid()) - cpu
		}
	}
	b.StopTimer()
	for _, p := range phases {
		if p.failed > 0 {
			b.Errorf("%s: %d of %d requests failed", p.name, p.failed, requests)
		}
		p50, p99 := percentile(p.lat, 50), percentile(p.lat, 99)
		cpuPerReq := float64(p.cpu.Microseconds()) / float64(len(p.lat))
		b.ReportMetric(float64(p50.Microseconds()), "p50-"+p.name+"-us")
		b.ReportMetric(float64(p99.Microseconds()), "p99-"+p.name+"-us")
		b.ReportMetric(cpuPerReq, "cpu-"+p.name+"-us/req")
		b.Logf("GET /hello through %s (%s): %d requests in %v, p50 %v, p99 %v, max %v; CPU of the nodes and workers %v (%.0f µs a request, at %v a tick)",
			p.via.name, p.name, len(p.lat), p.duration.Round(time.Millisecond), p50, p99, percentile(p.lat, 100), p.cpu, cpuPerReq, clockTick)
	}

	// Failover: a third node joins; clients send requests through B, which runs them on A's and
	// C's workers; C is killed with its workers.
	cn := c.addNode(b, "")
	cn.start(b)
	cn.waitUp(b, startBound)
	c.waitFormed(b)
	if _, failed := sequential(cn, "/probe?ms=1", `"sleptMs":1`, 20); failed > 0 {
		b.Fatalf("warming %s: %d of 20 requests failed", cn.name, failed)
	}
	// Six clients with a 200 ms invocation each in flight: B spreads them over both workers. One
	// client of /hello, which answers at once, tells how soon new requests succeed.
	slow := startLoad(b, []*node{g}, 6, "/probe?ms=200", `"sleptMs":200`)
	fast := startLoad(b, []*node{g}, 1, "/hello", hello)
	time.Sleep(2 * time.Second)
	killed := time.Now()
	cn.kill(b)
	time.Sleep(5 * time.Second)
	slowRs, fastRs := slow(), fast()

	var inflightErr, firstOK, lastErr time.Duration = -1, -1, -1
	inflightFailed, inflightOK := 0, 0
	for _, r := range slowRs {
		end := r.start.Add(r.latency).Sub(killed)
		switch {
		case r.start.Before(killed) && end > 0 && !r.ok():
			inflightFailed++
			inflightErr = max(inflightErr, end)
		case r.start.Before(killed) && end > 0:
			inflightOK++
		}
	}
	for _, r := range fastRs {
		if end := r.start.Add(r.latency).Sub(killed); !r.start.Before(killed) && r.ok() && (firstOK < 0 || end < firstOK) {
			firstOK = end
		}
	}
	rs := append(slowRs, fastRs...)
	for _, r := range rs {
		if !r.ok() {
			lastErr = max(lastErr, r.start.Add(r.latency).Sub(killed))
		}
	}
	b.Logf("failover: %s killed under load through %s: GET /probe?ms=200: %s; GET /hello: %s", cn.name, g.name, summary(slowRs), summary(fastRs))
	b.Logf("failover: %d requests in flight at the kill failed, the last %v after it; %d in flight succeeded (on %s's worker); the first GET /hello sent after the kill succeeded %v after it; the last failure ended %v after it",
		inflightFailed, inflightErr.Round(time.Millisecond), inflightOK, a.name, firstOK.Round(time.Millisecond), lastErr.Round(time.Millisecond))
	if inflightFailed > 0 {
		b.ReportMetric(float64(inflightErr.Milliseconds()), "failover-inflight-err-ms")
	} else {
		b.Logf("failover: no request was in flight on %s's worker at the kill, so how soon such requests fail was not measured", cn.name)
	}
	if firstOK >= 0 {
		b.ReportMetric(float64(firstOK.Milliseconds()), "failover-first-ok-ms")
	}
	if lastErr >= 0 {
		b.ReportMetric(float64(lastErr.Milliseconds()), "failover-last-err-ms")
	}
	for _, r := range rs {
		if !r.ok() {
			b.Logf("failover: failed: %v (%v after the kill)", r, r.start.Sub(killed).Round(time.Millisecond))
		}
	}
}
