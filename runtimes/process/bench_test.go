package process

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"gatehouse.dev/gatehouse/runtimes/process/ric"
)

// BenchmarkInvoke measures one invocation of a warm hello handler through the Runtime API and
// Gatehouse's runtime interface clients, without the gateway or the bus: the wall time per
// invocation (ns/op) and the runtime process's own CPU time (cpu-µs/op), sandboxed and not. Run
// with: go test -run '^$' -bench Invoke ./runtimes/process/
func BenchmarkInvoke(b *testing.B) {
	dir := b.TempDir()
	task, rt := filepath.Join(dir, "task"), filepath.Join(dir, "rt")
	for path, data := range map[string][]byte{
		filepath.Join(task, "index.mjs"):   []byte("export const handler = async () => ({statusCode: 200, body: 'hello'});\n"),
		filepath.Join(task, "app.py"):      []byte("def handler(event, context):\n    return {'statusCode': 200, 'body': 'hello'}\n"),
		filepath.Join(rt, "bootstrap.mjs"): ric.Node,
		filepath.Join(rt, "bootstrap.py"):  ric.Python,
	} {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(path, data, 0o644); err != nil {
			b.Fatal(err)
		}
	}
	ev := []byte(`{"rawPath":"/hello","requestContext":{"http":{"method":"GET"}}}`)
	for _, c := range []struct{ runtime, script, handler string }{
		{"nodejs20.x", "bootstrap.mjs", "index.handler"},
		{"python3.11", "bootstrap.py", "app.handler"},
	} {
		in, err := FindInterpreter(context.Background(), c.runtime, exec.LookPath)
		if err != nil {
			b.Logf("%s: %v", c.runtime, err)
			continue
		}
		for _, isolate := range []bool{false, true} {
			b.Run(fmt.Sprintf("%s/isolate=%v", c.runtime, isolate), func(b *testing.B) {
				if isolate {
					if err := CheckSandbox(context.Background(), b.TempDir()); err != nil {
						b.Skip(err)
					}
				}
				p, err := Start(context.Background(), Config{Command: []string{in.Path, filepath.Join(rt, c.script)},
					Dir: task, RuntimeDir: rt, TmpDir: b.TempDir(), Handler: c.handler, FunctionName: "hello", Isolate: isolate})
				if err != nil {
					b.Fatal(err)
				}
				defer p.Close()
				for i := range 500 { // past the interpreter's warm-up
					if _, err := p.Invoke(context.Background(), "warm-"+strconv.Itoa(i), time.Now().Add(5*time.Second), ev); err != nil {
						b.Fatal(err)
					}
				}
				cpu0 := processCPU(b, p.Pid())
				i := 0
				for b.Loop() {
					i++
					if _, err := p.Invoke(context.Background(), "req-"+strconv.Itoa(i), time.Now().Add(5*time.Second), ev); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64((processCPU(b, p.Pid())-cpu0).Microseconds())/float64(i), "cpu-µs/op")
			})
		}
	}
}

// processCPU is the user and system CPU time of a process so far, from /proc (at clock-tick
// resolution, 10 ms: enough over thousands of invocations).
func processCPU(b *testing.B, pid int) time.Duration {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Skipf("no /proc here: %v", err)
	}
	s := string(stat)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	utime, _ := strconv.Atoi(f[11])
	stime, _ := strconv.Atoi(f[12])
	return time.Duration(utime+stime) * 10 * time.Millisecond
}
