package app

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gatehouse.dev/gatehouse/internal/testfix"
)

// BenchmarkTLS measures the node's TLS listener (`up --tls`, the local CA's ECDSA P-256
// certificate for localhost) side by side in one run, on one node serving the sample hello, on
// loopback only:
//
//   - handshake/full: a new TCP connection and a TLS 1.3 handshake with no session cache, key
//     exchange X25519 (what the ECDSA certificate and X25519 cost together);
//   - handshake/full-mlkem: the same with X25519MLKEM768, what Go clients and current browsers
//     offer first by default;
//   - handshake/resumed: the same as full, with a tls.ClientSessionCache shared by the case's
//     connections. One handshake before the measurement fills the cache; every measured one must
//     resume (ConnectionState().DidResume), and the case reports the share that did as resumed;
//   - hello: GET /hello over keep-alive connections, plain HTTP to the gateway's listener and
//     HTTPS to its TLS listener, after a warm-up that opens the connections and starts hello's
//     instances for 16 requests in flight.
//
// Each handshake case runs serial and with 8 connections being opened at once, and reports
// handshakes/s (b.N over the wall time of the case, closing each connection included), the p50 and
// p99 of the time from dial to a completed handshake (p50-µs, p99-µs) and resumed. Each
// connection is closed as a client does once it is done: close_notify, then reading until the
// gateway closes its side, which is also when a TLS 1.3 client takes in the session tickets the
// server sent after the handshake. Each hello case runs serial (p50-µs, p99-µs, req/s; the HTTPS
// one also Δp50-µs and Δp99-µs against HTTP) and with 16 requests in flight (req/s, p50-µs,
// p99-µs). The clients and the gateway, so both sides of every handshake, share this process and
// the machine's cores; hello runs in the node's worker processes. b.N is the number of handshakes
// or requests per case, so fix it to bound the run:
//
//	go test ./internal/app -run '^$' -bench TLS -benchtime 2000x
func BenchmarkTLS(b *testing.B) {
	stack := fmt.Sprintf(`version: 1
name: tlsbench
functions:
  hello: {source: %q}
apis:
  web:
    type: http
    routes:
      GET /hello: {function: hello}
`, filepath.Join(testfix.RepoRoot(), "samples", "hello"))
	path := filepath.Join(b.TempDir(), "gatehouse.yaml")
	if err := os.WriteFile(path, []byte(stack), 0o644); err != nil {
		b.Fatal(err)
	}
	n := startNode(b, path, newDataDir(b), func(o *Options) { o.TLSAddr = "127.0.0.1:0" })
	defer n.Stop(context.Background())
	if n.TLSAddr() == "" || n.CAPath() == "" {
		b.Fatalf("no TLS listener (%q) or local CA (%q)", n.TLSAddr(), n.CAPath())
	}
	caPEM, err := os.ReadFile(n.CAPath())
	if err != nil {
		b.Fatal(err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(caPEM) {
		b.Fatal("the local CA file holds no certificate")
	}
	clientConfig := func(curve tls.CurveID, cache tls.ClientSessionCache) *tls.Config {
		return &tls.Config{RootCAs: roots, ServerName: "localhost", MinVersion: tls.VersionTLS13,
			MaxVersion: tls.VersionTLS13, CurvePreferences: []tls.CurveID{curve}, ClientSessionCache: cache}
	}

	handshakes := []struct {
		name   string
		curve  tls.CurveID
		resume bool
	}{
		{"full", tls.X25519, false},
		{"full-mlkem", tls.X25519MLKEM768, false},
		{"resumed", tls.X25519, true},
	}
	for _, hs := range handshakes {
		for _, conc := range []int{1, 8} {
			b.Run(fmt.Sprintf("handshake/%s/%s", hs.name, tbConcName(conc, "parallel")), func(b *testing.B) {
				cfg := clientConfig(hs.curve, nil)
				if hs.resume {
					cfg.ClientSessionCache = tls.NewLRUClientSessionCache(0)
					if _, st, err := tbHandshake(n.TLSAddr(), cfg); err != nil {
						b.Fatal(err)
					} else if st.DidResume {
						b.Fatal("the first handshake with an empty session cache resumed")
					}
				}
				var resumed atomic.Int64
				b.ResetTimer()
				wall, took, err := tbFanOut(b.N, conc, func() (time.Duration, error) {
					d, st, err := tbHandshake(n.TLSAddr(), cfg)
					if err != nil {
						return 0, err
					}
					if st.CurveID != hs.curve {
						return 0, fmt.Errorf("key exchange %v, want %v", st.CurveID, hs.curve)
					}
					if st.DidResume {
						resumed.Add(1)
					}
					return d, nil
				})
				b.StopTimer()
				if err != nil {
					b.Fatal(err)
				}
				if want := int64(b.N); hs.resume && resumed.Load() != want {
					b.Errorf("%d of %d handshakes resumed, want all", resumed.Load(), want)
				} else if !hs.resume && resumed.Load() != 0 {
					b.Errorf("%d handshakes resumed without a session cache", resumed.Load())
				}
				p50, p99 := tbPercentiles(took)
				b.ReportMetric(float64(b.N)/wall.Seconds(), "handshakes/s")
				b.ReportMetric(ibMicros(p50), "p50-µs")
				b.ReportMetric(ibMicros(p99), "p99-µs")
				b.ReportMetric(float64(resumed.Load())/float64(b.N), "resumed")
			})
		}
	}

	// hello over keep-alive connections, plain and TLS, to the same node.
	hello := []byte(`{"message":"hello from gatehouse"}`)
	type target struct {
		name, url string
		client    *http.Client
	}
	var targets []target
	for _, t := range []struct{ name, url string }{
		{"http", "http://" + n.GatewayAddr() + "/hello"},
		{"https", "https://" + n.TLSAddr() + "/hello"},
	} {
		tr := &http.Transport{TLSClientConfig: clientConfig(tls.X25519, nil), MaxIdleConnsPerHost: 64,
			IdleConnTimeout: time.Minute, DisableCompression: true}
		defer tr.CloseIdleConnections()
		targets = append(targets, target{t.name, t.url, &http.Client{Transport: tr, Timeout: 10 * time.Second}})
	}
	get := func(tg target) (time.Duration, error) {
		start := time.Now()
		resp, err := tg.client.Get(tg.url)
		if err != nil {
			return 0, err
		}
		got, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		took := time.Since(start)
		if err != nil {
			return 0, err
		}
		if resp.StatusCode != http.StatusOK || !bytes.Equal(got, hello) {
			return 0, fmt.Errorf("GET %s: %d %q", tg.url, resp.StatusCode, got)
		}
		if (resp.TLS != nil) != (tg.name == "https") {
			return 0, fmt.Errorf("GET %s: TLS state %v", tg.url, resp.TLS)
		}
		return took, nil
	}
	// Warm up: 16 connections to each listener, and hello's instances for 16 in flight.
	if _, _, err := tbFanOut(16*30, 16, func() (time.Duration, error) {
		for _, tg := range targets {
			if _, err := get(tg); err != nil {
				return 0, err
			}
		}
		return 0, nil
	}); err != nil {
		b.Fatal(err)
	}
	for _, conc := range []int{1, 16} {
		var first [2]time.Duration // p50 and p99 of plain HTTP, serial
		for i, tg := range targets {
			b.Run(fmt.Sprintf("hello/%s/%s", tg.name, tbConcName(conc, "in-flight")), func(b *testing.B) {
				b.ResetTimer()
				wall, took, err := tbFanOut(b.N, conc, func() (time.Duration, error) { return get(tg) })
				b.StopTimer()
				if err != nil {
					b.Fatal(err)
				}
				p50, p99 := tbPercentiles(took)
				b.ReportMetric(float64(b.N)/wall.Seconds(), "req/s")
				b.ReportMetric(ibMicros(p50), "p50-µs")
				b.ReportMetric(ibMicros(p99), "p99-µs")
				if conc == 1 && i == 0 {
					first = [2]time.Duration{p50, p99}
				} else if conc == 1 {
					b.ReportMetric(ibMicros(p50-first[0]), "Δp50-µs")
					b.ReportMetric(ibMicros(p99-first[1]), "Δp99-µs")
				}
			})
		}
	}
}

// tbConcName names a case by its concurrency: "serial" for 1, else such as "8-parallel".
func tbConcName(conc int, what string) string {
	if conc == 1 {
		return "serial"
	}
	return fmt.Sprintf("%d-%s", conc, what)
}

// tbHandshake opens a TCP connection to addr and completes a TLS handshake with cfg, returning the
// time from dial to a completed handshake and the connection's state. It then closes the
// connection as a client that is done does: close_notify, then reading until the server closes its
// side. A TLS 1.3 server sends its session tickets after the handshake and a client takes them in
// only when it reads, so without the read a session cache would stay empty.
func tbHandshake(addr string, cfg *tls.Config) (time.Duration, tls.ConnectionState, error) {
	start := time.Now()
	raw, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return 0, tls.ConnectionState{}, err
	}
	c := tls.Client(raw, cfg)
	defer c.Close()
	if err := c.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		return 0, tls.ConnectionState{}, err
	}
	if err := c.Handshake(); err != nil {
		return 0, tls.ConnectionState{}, fmt.Errorf("handshake: %w", err)
	}
	took := time.Since(start)
	st := c.ConnectionState()
	if st.Version != tls.VersionTLS13 {
		return 0, st, fmt.Errorf("negotiated %s, want TLS 1.3", tls.VersionName(st.Version))
	}
	if err := c.CloseWrite(); err != nil {
		return 0, st, fmt.Errorf("close_notify: %w", err)
	}
	if _, err := io.Copy(io.Discard, c); err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
		return 0, st, fmt.Errorf("reading to the end: %w", err)
	}
	return took, st, nil
}

// tbFanOut calls do n times from conc goroutines and returns the wall time of all the calls and
// the duration each returned, in call order. It stops at the first error and returns it.
func tbFanOut(n, conc int, do func() (time.Duration, error)) (time.Duration, []time.Duration, error) {
	took := make([]time.Duration, n)
	var (
		next    atomic.Int64
		wg      sync.WaitGroup
		errOnce sync.Once
		first   error
		failed  atomic.Bool
	)
	start := time.Now()
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !failed.Load() {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				d, err := do()
				if err != nil {
					errOnce.Do(func() { first = err })
					failed.Store(true)
					return
				}
				took[i] = d
			}
		}()
	}
	wg.Wait()
	return time.Since(start), took, first
}

// tbPercentiles returns the p50 and p99 of d, sorting it.
func tbPercentiles(d []time.Duration) (p50, p99 time.Duration) {
	slices.Sort(d)
	return d[len(d)/2], d[len(d)*99/100]
}
