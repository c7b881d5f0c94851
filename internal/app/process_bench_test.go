package app

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// BenchmarkProcessRuntimes measures, side by side in one run, hello handlers through the gateway:
// Python and Node.js as processes (sandboxed, and with isolation: none), Go as WebAssembly, and the same Node.js handler behind a plain
// Node HTTP server (what the process runtime's path adds). Each reports p50 and p99 with one request
// in flight, and throughput with 16; "cold" is the first request to a new process. Run with:
//
//	go test -run '^$' -bench ProcessRuntimes -benchtime 3s ./internal/app/
func BenchmarkProcessRuntimes(b *testing.B) {
	for _, tool := range []string{"python3", "node"} {
		if _, err := exec.LookPath(tool); err != nil {
			b.Skipf("%s not found on PATH", tool)
		}
	}
	needSandbox(b)
	dir := b.TempDir()
	os.MkdirAll(filepath.Join(dir, "py"), 0o755)
	os.MkdirAll(filepath.Join(dir, "js"), 0o755)
	os.WriteFile(filepath.Join(dir, "py", "app.py"), []byte("def lambda_handler(event, context):\n    return {'statusCode': 200, 'body': 'hello'}\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "js", "index.mjs"), []byte("export const handler = async () => ({statusCode: 200, body: 'hello'});\n"), 0o644)
	hello, _ := filepath.Abs("../../samples/hello")
	stack := fmt.Sprintf(`version: 1
name: processbench
functions:
  py: {source: %q, runtime: python3.11, handler: app.lambda_handler}
  js: {source: %q, runtime: nodejs20.x, handler: index.handler}
  pynone: {source: %[1]q, runtime: python3.11, handler: app.lambda_handler, isolation: none}
  jsnone: {source: %[2]q, runtime: nodejs20.x, handler: index.handler, isolation: none}
  hello: {source: %q}
apis:
  web:
    type: http
    routes:
      GET /py: {function: py}
      GET /js: {function: js}
      GET /pynone: {function: pynone}
      GET /jsnone: {function: jsnone}
      GET /hello: {function: hello}
`, filepath.Join(dir, "py"), filepath.Join(dir, "js"), hello)
	path := filepath.Join(dir, "gatehouse.yaml")
	os.WriteFile(path, []byte(stack), 0o644)
	n := startNode(b, path, newDataDir(b))
	defer n.Stop(context.Background())

	// The handler behind a plain Node HTTP server.
	plain := exec.Command("node", "-e", `
import(process.argv[1]).then(({handler}) => {
  const srv = require('http').createServer(async (req, res) => {
    const r = await handler({rawPath: req.url}, {});
    res.writeHead(r.statusCode); res.end(r.body);
  });
  srv.listen(0, '127.0.0.1', () => console.log(srv.address().port));
});`, filepath.Join(dir, "js", "index.mjs"))
	out, _ := plain.StdoutPipe()
	if err := plain.Start(); err != nil {
		b.Fatal(err)
	}
	defer plain.Process.Kill()
	port, _ := bufio.NewReader(out).ReadString('\n')

	tr := &http.Transport{MaxIdleConnsPerHost: 64}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	get := func(b *testing.B, url string) {
		resp, err := c.Get(url)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			b.Fatalf("%s: %d", url, resp.StatusCode)
		}
	}
	base := "http://" + n.GatewayAddr()
	// Cold: the first request of each process runtime starts its process.
	for _, p := range []string{"/py", "/js", "/pynone", "/jsnone"} {
		start := time.Now()
		get(b, base+p)
		b.Logf("cold start %s: first response in %s", p, time.Since(start).Round(time.Microsecond))
	}
	targets := []struct{ name, url string }{
		{"python", base + "/py"}, {"nodejs", base + "/js"}, {"go-wasm", base + "/hello"},
		{"python-unsandboxed", base + "/pynone"}, {"nodejs-unsandboxed", base + "/jsnone"},
		{"nodejs-plain-server", "http://127.0.0.1:" + strings.TrimSpace(port) + "/"},
	}
	for _, tg := range targets {
		for range 100 {
			get(b, tg.url)
		}
		b.Run(tg.name+"/serial", func(b *testing.B) {
			var d []time.Duration
			for b.Loop() {
				start := time.Now()
				get(b, tg.url)
				d = append(d, time.Since(start))
			}
			slices.Sort(d)
			b.ReportMetric(float64(d[len(d)/2].Microseconds()), "p50-µs")
			b.ReportMetric(float64(d[len(d)*99/100].Microseconds()), "p99-µs")
		})
		// Warm as many processes as the parallel run keeps in flight: otherwise its first round
		// starts them (sandboxed, tens of milliseconds each), and the rate it reports, taken from
		// that round when it already lasts the benchtime, is of cold starts.
		var wg sync.WaitGroup
		for range 16 {
			wg.Go(func() {
				for range 20 {
					resp, err := c.Get(tg.url)
					if err != nil {
						b.Error(err)
						return
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
			})
		}
		wg.Wait()
		b.Run(tg.name+"/parallel-16", func(b *testing.B) {
			start := time.Now()
			b.SetParallelism(8)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					get(b, tg.url)
				}
			})
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "req/s")
		})
	}
}
