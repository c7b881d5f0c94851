package app

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"gatehouse.dev/gatehouse/internal/adminapi"
	"gatehouse.dev/gatehouse/internal/testfix"
)

// BenchmarkIntegrations measures, side by side on one node in one run and on loopback only:
//
//   - hop: a backend in this process answering 64 bytes, called directly ("direct") and through
//     an HTTP API route GET /p whose http_proxy integration targets it ("proxy");
//   - cache: GET /hello of a REST API running the sample hello, in a stage without a cache
//     ("uncached") and in a stage with one ("cached", every measured request a hit).
//
// Each case runs serial (one request in flight; p50-µs and p99-µs of b.N requests, and for the
// second case of each pair Δp50-µs and Δp99-µs against the first: the hop's added latency, the
// cache's saving) and with 16 requests in flight (req/s). The cached cases also report hits/op, the
// share of their requests gatehouse_cache_requests_total counted as hits. The client, the backend and the node's
// gateway share this process; the node's workers are processes of their own. b.N is the number of
// requests per case, so fix it to bound the run:
//
//	go test ./internal/app -run '^$' -bench Integrations -benchtime 3000x
func BenchmarkIntegrations(b *testing.B) {
	payload := []byte(`{"data":"` + strings.Repeat("x", 53) + `"}`) // 64 bytes
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(payload)
	}))
	defer backend.Close()

	stack := fmt.Sprintf(`version: 1
name: integrationsbench
functions:
  hello: {source: %q}
apis:
  web:
    type: http
    routes:
      GET /p:
        integration: {type: http_proxy, target: %q}
  shop:
    type: rest
    mount: /shop
    stages:
      cached: {cache: {sizeMB: 1, ttl: 60s}}
      plain: {}
    routes:
      GET /hello: {function: hello}
`, filepath.Join(testfix.RepoRoot(), "samples", "hello"), backend.URL+"/data")
	path := filepath.Join(b.TempDir(), "gatehouse.yaml")
	if err := os.WriteFile(path, []byte(stack), 0o644); err != nil {
		b.Fatal(err)
	}
	n := startNode(b, path, newDataDir(b))
	defer n.Stop(context.Background())
	gw := "http://" + n.GatewayAddr()

	tr := &http.Transport{MaxIdleConnsPerHost: 64}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	hello := []byte(`{"message":"hello from gatehouse"}`)
	type target struct {
		name, url string
		want      []byte
	}
	pairs := []struct {
		name string
		of   [2]target
	}{
		{"hop", [2]target{{"direct", backend.URL + "/data", payload}, {"proxy", gw + "/p", payload}}},
		{"cache", [2]target{{"uncached", gw + "/shop/plain/hello", hello}, {"cached", gw + "/shop/cached/hello", hello}}},
	}
	get := func(tg target) error {
		resp, err := hc.Get(tg.url)
		if err != nil {
			return err
		}
		got, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return err
		}
		if resp.StatusCode != http.StatusOK || !bytes.Equal(got, tg.want) {
			return fmt.Errorf("GET %s: %d %q", tg.url, resp.StatusCode, got)
		}
		return nil
	}

	// Warm up: connections for 16 in flight to every target, and hello's instances for 16 in flight,
	// so that no case pays for cold starts. The cached stage's first request fills its cache.
	var warm sync.WaitGroup
	errs := make(chan error, 16)
	for range 16 {
		warm.Add(1)
		go func() {
			defer warm.Done()
			for range 30 {
				for _, p := range pairs {
					for _, tg := range p.of {
						if err := get(tg); err != nil {
							errs <- err
							return
						}
					}
				}
			}
		}()
	}
	warm.Wait()
	close(errs)
	if err := <-errs; err != nil {
		b.Fatal(err)
	}

	hits := func(b *testing.B) float64 {
		v, err := ibCacheCount(n, "shop", "cached", "hit")
		if err != nil {
			b.Fatal(err)
		}
		return v
	}
	for _, p := range pairs {
		var first [2]time.Duration // p50 and p99 of the pair's first case, serial
		for i, tg := range p.of {
			b.Run(p.name+"/"+tg.name+"/serial", func(b *testing.B) {
				before := hits(b)
				var d []time.Duration
				for b.Loop() {
					start := time.Now()
					if err := get(tg); err != nil {
						b.Fatal(err)
					}
					d = append(d, time.Since(start))
				}
				slices.Sort(d)
				p50, p99 := d[len(d)/2], d[len(d)*99/100]
				b.ReportMetric(ibMicros(p50), "p50-µs")
				b.ReportMetric(ibMicros(p99), "p99-µs")
				if i == 0 {
					first = [2]time.Duration{p50, p99}
				} else {
					b.ReportMetric(ibMicros(p50-first[0]), "Δp50-µs")
					b.ReportMetric(ibMicros(p99-first[1]), "Δp99-µs")
				}
				if tg.name == "cached" {
					b.ReportMetric((hits(b)-before)/float64(len(d)), "hits/op")
				}
			})
		}
		for _, tg := range p.of {
			b.Run(p.name+"/"+tg.name+"/16-in-flight", func(b *testing.B) {
				before := hits(b)
				b.ResetTimer()
				start := time.Now()
				b.SetParallelism(8) // × GOMAXPROCS(2) = 16 in flight
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						if err := get(tg); err != nil {
							b.Error(err)
							return
						}
					}
				})
				b.StopTimer()
				b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "req/s")
				if tg.name == "cached" {
					b.ReportMetric((hits(b)-before)/float64(b.N), "hits/op")
				}
			})
		}
	}
}

// ibMicros is d in microseconds, with its fraction.
func ibMicros(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

// ibCacheCount reads gatehouse_cache_requests_total for one API, stage and result from the node's
// admin /metrics. The gateway counts in the node's own process, so the value is current.
func ibCacheCount(n *Node, api, stage, result string) (float64, error) {
	tok, err := os.ReadFile(adminapi.TokenPath(n.DataDir()))
	if err != nil {
		return 0, err
	}
	req, err := http.NewRequest(http.MethodGet, "http://"+n.AdminAddr()+"/metrics", nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(tok)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("metrics: status %d", resp.StatusCode)
	}
	want := []string{fmt.Sprintf("api=%q", api), fmt.Sprintf("stage=%q", stage), fmt.Sprintf("result=%q", result)}
	var sum float64
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		labels, value, ok := strings.Cut(strings.TrimPrefix(sc.Text(), "gatehouse_cache_requests_total{"), "} ")
		if !ok || !strings.HasPrefix(sc.Text(), "gatehouse_cache_requests_total{") {
			continue
		}
		have := strings.Split(labels, ",")
		if !slices.Contains(have, want[0]) || !slices.Contains(have, want[1]) || !slices.Contains(have, want[2]) {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
		if err != nil {
			return 0, fmt.Errorf("metrics: %q: %v", sc.Text(), err)
		}
		sum += v
	}
	return sum, sc.Err()
}
