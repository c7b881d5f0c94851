package app

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"gatehouse.dev/gatehouse/functions"
	"gatehouse.dev/gatehouse/internal/adminapi"
	"gatehouse.dev/gatehouse/internal/testfix"
)

// The deploy benchmarks measure a deploy as a user sees it: upload of a bundle through the admin API
// → bundle read → module compiled in the control process → stored in JetStream → every worker loads the
// new version → the deploy call answers → the next request through the gateway is served by the new
// version. Every iteration deploys a module with other bytes (a custom section with a random payload),
// so that each one is stored, compiled and loaded anew, as a real deploy is. Run with:
//
//	go test ./internal/app -run '^$' -bench 'Deploy|Upload' -benchtime 5x

// deployBenchTimeout bounds each deploy and each wait for its first response in these benchmarks.
const deployBenchTimeout = 3 * time.Minute

// benchDataDir is a data directory that shares the tests' build cache but has a compilation cache of
// its own, so that the many modules these benchmarks deploy are not left in the shared one.
func benchDataDir(b *testing.B) string {
	b.Helper()
	dir := b.TempDir()
	if err := os.MkdirAll(testfix.BuildDir(), 0o755); err != nil {
		b.Fatal(err)
	}
	if err := os.Symlink(testfix.BuildDir(), filepath.Join(dir, "build")); err != nil {
		b.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "compile"), 0o755); err != nil {
		b.Fatal(err)
	}
	return dir
}

// benchBundle zips module with a manifest for function name, its environment env, after adding a custom
// section with payload to the module.
func benchBundle(b *testing.B, name string, module []byte, env map[string]string, payload []byte) []byte {
	b.Helper()
	m := functions.NewManifest(name)
	m.Environment = env
	var buf bytes.Buffer
	if err := functions.WriteBundle(&buf, m, withCustomSection(module, "padding", payload)); err != nil {
		b.Fatal(err)
	}
	return buf.Bytes()
}

// randomBytes returns n bytes that do not compress.
func randomBytes(n int) []byte {
	p := make([]byte, n)
	var seed [32]byte
	for i := 0; i < len(seed); i += 8 {
		binary.LittleEndian.PutUint64(seed[i:], rand.Uint64())
	}
	rand.NewChaCha8(seed).Read(p)
	return p
}

// benchDeployer deploys bundles to a node through its admin API.
type benchDeployer struct {
	n     *Node
	token string
	admin *http.Client
	gw    *http.Client
}

func newBenchDeployer(b *testing.B, n *Node) *benchDeployer {
	b.Helper()
	tok, err := os.ReadFile(adminapi.TokenPath(n.DataDir()))
	if err != nil {
		b.Fatal(err)
	}
	d := &benchDeployer{
		n:     n,
		token: strings.TrimSpace(string(tok)),
		admin: &http.Client{Timeout: deployBenchTimeout, Transport: &http.Transport{}},
		gw:    &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 4}},
	}
	b.Cleanup(func() {
		d.admin.CloseIdleConnections()
		d.gw.CloseIdleConnections()
	})
	return d
}

// eofReader notes when its reader is drained: when the HTTP client has handed the whole body to
// the connection.
type eofReader struct {
	r    io.Reader
	done time.Time
}

func (e *eofReader) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err == io.EOF && e.done.IsZero() {
		e.done = time.Now()
	}
	return n, err
}

// deploy uploads a bundle and returns the version created, with the time the body was sent.
func (d *benchDeployer) deploy(b *testing.B, bundle []byte) (version int, sent time.Time) {
	b.Helper()
	body := &eofReader{r: bytes.NewReader(bundle)}
	req, err := http.NewRequest(http.MethodPost, "http://"+d.n.AdminAddr()+"/admin/v1/functions", body)
	if err != nil {
		b.Fatal(err)
	}
	req.ContentLength = int64(len(bundle))
	req.Header.Set("Content-Type", "application/zip")
	req.Header.Set("Authorization", "Bearer "+d.token)
	resp, err := d.admin.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	answer, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		b.Fatal(err)
	}
	if resp.StatusCode != http.StatusCreated {
		b.Fatalf("deploy: %d %s", resp.StatusCode, answer)
	}
	var a struct {
		Version struct {
			Version int `json:"version"`
		} `json:"version"`
	}
	if err := json.Unmarshal(answer, &a); err != nil || a.Version.Version == 0 {
		b.Fatalf("deploy answered %s (%v)", answer, err)
	}
	return a.Version.Version, body.done
}

// get returns the status and body of GET path through the gateway.
func (d *benchDeployer) get(b *testing.B, path string) (int, []byte) {
	b.Helper()
	resp, err := d.gw.Get("http://" + d.n.GatewayAddr() + path)
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		b.Fatal(err)
	}
	return resp.StatusCode, body
}

// benchDeployToFirstResponse deploys the bundle next(i) returns each iteration and then GETs path until
// the served function next returned with it says that the new version answered.
func benchDeployToFirstResponse(b *testing.B, n *Node, path string, next func(i int) (bundle []byte, served func(version int, body []byte) bool)) {
	d := newBenchDeployer(b, n)
	if status, body := d.get(b, path); status != http.StatusOK { // opens the gateway connection
		b.Fatalf("GET %s before the first deploy: %d %s", path, status, body)
	}
	var deployTime, firstTime time.Duration
	retries, i := 0, 0
	for b.Loop() {
		b.StopTimer() // zipping a 6 MB module is not part of a deploy
		bundle, served := next(i)
		i++
		b.StartTimer()
		start := time.Now()
		version, _ := d.deploy(b, bundle)
		deployed := time.Now()
		deadline := deployed.Add(deployBenchTimeout)
		for {
			status, body := d.get(b, path)
			if status == http.StatusOK && served(version, body) {
				break
			}
			if time.Now().After(deadline) {
				b.Fatalf("GET %s: version %d not served %s after its deploy answered; last answer %d %s", path, version, deployBenchTimeout, status, body)
			}
			retries++
			time.Sleep(5 * time.Millisecond)
		}
		deployTime += deployed.Sub(start)
		firstTime += time.Since(deployed)
	}
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) / float64(i) }
	b.ReportMetric(ms(deployTime+firstTime), "ms/op")
	b.ReportMetric(ms(deployTime), "deploy-ms")
	b.ReportMetric(ms(firstTime), "first-ms")
	b.ReportMetric(float64(retries)/float64(i), "retries/op")
}

// BenchmarkDeployToFirstResponse measures the time from the start of a deploy's upload until the
// deployed version first answers through the gateway: deploy-ms until the deploy call answers,
// first-ms from then until the first response of the new version, and retries/op, the GETs that still
// got the old version (0 when a deploy answers only once the version is served).
func BenchmarkDeployToFirstResponse(b *testing.B) {
	// The Go version function (a 6 MB module), behind GET /latest.
	b.Run("go", func(b *testing.B) {
		module, err := os.ReadFile(testfix.Reactor(b, versionModule))
		if err != nil {
			b.Fatal(err)
		}
		n := startNode(b, "testdata/deploy-stack.yaml", benchDataDir(b))
		defer n.Stop(context.Background())
		salt := rand.Uint64()
		benchDeployToFirstResponse(b, n, "/latest", func(i int) ([]byte, func(int, []byte) bool) {
			color := fmt.Sprintf("bench-%x-%d", salt, i)
			return benchBundle(b, "version", module, map[string]string{"COLOR": color}, randomBytes(64)),
				func(version int, body []byte) bool {
					var s served
					return json.Unmarshal(body, &s) == nil && s.Version == strconv.Itoa(version) && s.Color == color
				}
		})
	})
	// A hand-assembled reactor of a few hundred bytes, behind GET /wat.
	b.Run("wat", func(b *testing.B) {
		dir := b.TempDir()
		salt := rand.Uint32()
		token := func(i int) string { return fmt.Sprintf("wat-%08x-%06d", salt, i) }
		if err := os.WriteFile(filepath.Join(dir, "watfn.wasm"), watReactor(token(-1)), 0o644); err != nil {
			b.Fatal(err)
		}
		stack := filepath.Join(dir, "stack.yaml")
		if err := os.WriteFile(stack, []byte(watStack), 0o644); err != nil {
			b.Fatal(err)
		}
		n := startNode(b, stack, benchDataDir(b))
		defer n.Stop(context.Background())
		benchDeployToFirstResponse(b, n, "/wat", func(i int) ([]byte, func(int, []byte) bool) {
			return benchBundle(b, "watfn", watReactor(token(i)), nil, randomBytes(64)),
				func(_ int, body []byte) bool { return string(body) == token(i) }
		})
	})
}

// watStack serves the reactor watReactor builds, from watfn.wasm next to it.
const watStack = `version: 1
name: deploy-wat
functions:
  watfn:
    source: ./watfn.wasm
apis:
  web:
    type: http
    routes:
      GET /wat:
        function: watfn
`

// BenchmarkUploadBundle20MB deploys the version function with a 20 MB custom section of random bytes
// (so the bundle does not compress) each iteration, and reports the upload's throughput: the zip's
// bytes over the time from the start of the request until the deploy answered, which includes
// compiling the module in the control process and loading it in every worker. send-ms is when the
// client had handed the whole body to the connection.
func BenchmarkUploadBundle20MB(b *testing.B) {
	module, err := os.ReadFile(testfix.Reactor(b, versionModule))
	if err != nil {
		b.Fatal(err)
	}
	n := startNode(b, "testdata/deploy-stack.yaml", benchDataDir(b))
	defer n.Stop(context.Background())
	d := newBenchDeployer(b, n)
	var total, send time.Duration
	var size int64
	version, i := 0, 0
	for b.Loop() {
		b.StopTimer()
		bundle := benchBundle(b, "version", module, map[string]string{"COLOR": "big"}, randomBytes(20<<20))
		i++
		b.StartTimer()
		start := time.Now()
		v, sent := d.deploy(b, bundle)
		total += time.Since(start)
		send += sent.Sub(start)
		size += int64(len(bundle))
		version = v
	}
	b.StopTimer()
	if status, body := d.get(b, "/latest"); status != http.StatusOK || !bytes.Contains(body, []byte(`"version":"`+strconv.Itoa(version)+`"`)) {
		b.Fatalf("GET /latest after the last deploy (version %d): %d %s", version, status, body)
	}
	b.ReportMetric(float64(total)/float64(time.Millisecond)/float64(i), "ms/op")
	b.ReportMetric(float64(send)/float64(time.Millisecond)/float64(i), "send-ms")
	b.ReportMetric(float64(size)/1e6/total.Seconds(), "MB/s")
	b.ReportMetric(float64(size)/1e6/float64(i), "bundle-MB")
}

// watReactor assembles a reactor module (about 200 bytes) that answers every event with
// {"statusCode":200,"body":BODY}: the docs/abi.md example "hi.wat", without its global. body must
// need no JSON escaping.
func watReactor(body string) []byte {
	const (
		typeFunc, typeI32, typeI64 = 0x60, 0x7f, 0x7e
		kindFunc, kindMemory       = 0x00, 0x02
		localGet, localSet         = 0x20, 0x21
		i32Const, i64Const         = 0x41, 0x42
		i32GtU, i32Add, i32Sub     = 0x4b, 0x6a, 0x6b
		i32ShrU                    = 0x76
		memorySize, memoryGrow     = 0x3f, 0x40
		opIf, blockVoid, opEnd     = 0x04, 0x40, 0x0b
		opDrop                     = 0x1a
		heap, outPtr               = 1024, 16
	)
	uleb := func(p []byte, v uint64) []byte { return binary.AppendUvarint(p, v) }
	sleb := func(p []byte, v int64) []byte {
		for {
			c := byte(v & 0x7f)
			v >>= 7
			if (v == 0 && c&0x40 == 0) || (v == -1 && c&0x40 != 0) {
				return append(p, c)
			}
			p = append(p, c|0x80)
		}
	}
	vec := func(items ...[]byte) []byte {
		p := uleb(nil, uint64(len(items)))
		for _, it := range items {
			p = append(p, it...)
		}
		return p
	}
	name := func(s string) []byte { return append(uleb(nil, uint64(len(s))), s...) }
	sized := func(p []byte) []byte { return append(uleb(nil, uint64(len(p))), p...) }
	out := []byte("\x00asm\x01\x00\x00\x00")
	section := func(id byte, content []byte) { out = append(append(out, id), sized(content)...) }

	output := append([]byte{0}, `{"statusCode":200,"body":"`+body+`"}`...) // status byte 0 (ok), then the response

	// gatehouse_alloc(size) grows memory to hold heap+size bytes, and returns heap.
	alloc := vec([]byte{1, typeI32}) // one local: pages
	alloc = sleb(append(alloc, i32Const), heap)
	alloc = append(alloc, localGet, 0, i32Add)
	alloc = sleb(append(alloc, i32Const), 65535)
	alloc = append(alloc, i32Add)
	alloc = sleb(append(alloc, i32Const), 16)
	alloc = append(alloc, i32ShrU, localSet, 1, // pages = (heap + size + 65535) >> 16
		localGet, 1, memorySize, 0, i32GtU, opIf, blockVoid, // if pages > memory.size
		localGet, 1, memorySize, 0, i32Sub, memoryGrow, 0, opDrop, // memory.grow(pages - memory.size)
		opEnd)
	alloc = sleb(append(alloc, i32Const), heap)
	alloc = append(alloc, opEnd)
	// gatehouse_handle returns (outPtr << 32) | len(output).
	handle := sleb(append(vec(), i64Const), outPtr<<32|int64(len(output)))
	handle = append(handle, opEnd)

	section(1, vec([]byte{typeFunc, 1, typeI32, 1, typeI32}, []byte{typeFunc, 3, typeI32, typeI32, typeI32, 1, typeI64}))
	section(3, vec([]byte{0}, []byte{1}))
	section(5, vec([]byte{0x00, 1})) // one memory: at least 1 page, no maximum
	section(7, vec(
		append(name("memory"), kindMemory, 0),
		append(name("gatehouse_alloc"), kindFunc, 0),
		append(name("gatehouse_handle"), kindFunc, 1)))
	section(10, vec(sized(alloc), sized(handle)))
	segment := sleb([]byte{0x00, i32Const}, outPtr) // active, memory 0, at offset outPtr
	segment = append(append(segment, opEnd), sized(output)...)
	section(11, vec(segment))
	return out
}
