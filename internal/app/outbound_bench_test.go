package app

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// BenchmarkOutbound measures, side by side in one run, what an outbound request costs a function:
// a loopback service's /ok called natively by this process, and through the gateway a function that
// makes that call (fetch; and twice, for the cost of a call alone) and one that makes none
// (respond). Each reports p50 and p99 with one
// request in flight, and throughput with 16. Run with:
//
//	go test -run '^$' -bench Outbound -benchtime 3s ./internal/app/
func BenchmarkOutbound(b *testing.B) {
	svc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(`{"ok":true}`)) }))
	defer svc.Close()
	fetchSrc, _ := filepath.Abs("testdata/functions/fetch")
	respondSrc, _ := filepath.Abs("testdata/functions/respond")
	stack := fmt.Sprintf(`version: 1
name: outboundbench
functions:
  fetch: {source: %q, allowedOutboundHosts: [%q]}
  respond: {source: %q}
apis:
  web:
    type: http
    routes:
      POST /fetch: {function: fetch}
      POST /respond: {function: respond}
`, fetchSrc, svc.URL, respondSrc)
	path := filepath.Join(b.TempDir(), "gatehouse.yaml")
	if err := os.WriteFile(path, []byte(stack), 0o644); err != nil {
		b.Fatal(err)
	}
	n := startNode(b, path, newDataDir(b))
	defer n.Stop(context.Background())
	tr := &http.Transport{MaxIdleConnsPerHost: 64}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	targets := []struct{ name, method, url, body string }{
		{"native", "GET", svc.URL + "/ok", ""},
		{"function-one-call", "POST", "http://" + n.GatewayAddr() + "/fetch?url=" + svc.URL + "/ok", ""},
		// The difference with one call is the cost of a call alone, without the invocation's.
		{"function-two-calls", "POST", "http://" + n.GatewayAddr() + "/fetch?count=2&url=" + svc.URL + "/ok", ""},
		{"function-no-call", "POST", "http://" + n.GatewayAddr() + "/respond", `{"ok":true}`},
	}
	call := func(b *testing.B, method, url, body string) {
		req, _ := http.NewRequest(method, url, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		resp, err := c.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			b.Fatalf("%s: status %d", url, resp.StatusCode)
		}
	}
	for _, tg := range targets {
		for range 200 {
			call(b, tg.method, tg.url, tg.body)
		}
	}
	for _, tg := range targets {
		b.Run(tg.name+"/serial", func(b *testing.B) {
			var d []time.Duration
			for b.Loop() {
				start := time.Now()
				call(b, tg.method, tg.url, tg.body)
				d = append(d, time.Since(start))
			}
			slices.Sort(d)
			b.ReportMetric(float64(d[len(d)/2].Microseconds()), "p50-µs")
			b.ReportMetric(float64(d[len(d)*99/100].Microseconds()), "p99-µs")
		})
		b.Run(tg.name+"/parallel-16", func(b *testing.B) {
			start := time.Now()
			b.SetParallelism(8) // ×GOMAXPROCS(2) = 16 in flight
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					call(b, tg.method, tg.url, tg.body)
				}
			})
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "req/s")
		})
	}
}
