package scheduler

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"gatehouse.dev/gatehouse/internal/sigv4"
	"gatehouse.dev/gatehouse/internal/spec"
	"gatehouse.dev/gatehouse/internal/tracing"
	"gatehouse.dev/gatehouse/runtimes"
	"gatehouse.dev/gatehouse/runtimes/process"
	"gatehouse.dev/gatehouse/runtimes/process/ric"
)

// module is what a pool starts its instances from: a compiled WebAssembly module, or a process
// runtime's package.
type module interface {
	Instantiate(ctx context.Context, cfg runtimes.InstanceConfig) (instance, error)
	Close(ctx context.Context) error
	// snapshottable reports whether instances can start from a snapshot of the first one
	// (runtimes.InstanceConfig.Snapshot).
	snapshottable() bool
}

// instance is one sandbox of a pool: a WebAssembly instance, or a runtime process.
type instance interface {
	Invoke(ctx context.Context, meta runtimes.Meta, payload []byte) ([]byte, error)
	Close(ctx context.Context) error
	Broken() bool
}

// wasmModule is a compiled WebAssembly module.
type wasmModule struct{ *runtimes.Module }

func (m wasmModule) Instantiate(ctx context.Context, cfg runtimes.InstanceConfig) (instance, error) {
	return m.Module.Instantiate(ctx, cfg)
}

func (m wasmModule) snapshottable() bool { return m.Module.Snapshottable() }

// processModule is a process runtime's package, unpacked, and how its processes start.
type processModule struct {
	fn      Function
	dir     string   // the package, unpacked
	work    string   // where the processes' /tmp directories go
	command []string // what a process runs
	log     *slog.Logger
	seq     atomic.Uint64
	// dial is how its sandboxed processes reach the network; nil leaves them none. forwards lead
	// from their loopback to the node's gateway.
	dial     process.DialFunc
	forwards []process.Forward
	// region, account and creds are the processes' AWS_REGION, ARN account and access key.
	region, account string
	creds           sigv4.Credentials
}

// newProcessModule unpacks f's package under workDir and finds what runs it: the interpreter and
// Gatehouse's runtime interface client, or the package's own bootstrap.
func newProcessModule(ctx context.Context, f Function, workDir string, log *slog.Logger, find func(context.Context, string) (process.Interpreter, error)) (*processModule, error) {
	if workDir == "" {
		return nil, errors.New("no work directory for process runtimes")
	}
	base := filepath.Join(workDir, "functions", safeName(f.key()))
	if err := os.RemoveAll(base); err != nil {
		return nil, err
	}
	dir := filepath.Join(base, "task")
	if err := unzip(f.Wasm, dir); err != nil {
		return nil, fmt.Errorf("unpacking the package: %w", err)
	}
	m := &processModule{fn: f, dir: dir, work: base, log: log}
	lang, _, _ := process.Language(f.Runtime)
	switch lang {
	case "provided":
		m.command = []string{"./bootstrap"}
	case "python", "nodejs":
		in, err := find(ctx, f.Runtime)
		if err != nil {
			return nil, err
		}
		script, data := filepath.Join(base, "runtime", "bootstrap.py"), ric.Python
		if lang == "nodejs" {
			script, data = filepath.Join(base, "runtime", "bootstrap.mjs"), ric.Node
		}
		if err := os.MkdirAll(filepath.Dir(script), 0o755); err != nil {
			return nil, err
		}
		if err := os.WriteFile(script, data, 0o644); err != nil {
			return nil, err
		}
		m.command = []string{in.Path, script}
		if lang == "nodejs" {
			// The function's memory bounds V8's heap, the one limit Node.js takes without a cgroup (an
			// address-space limit breaks V8): a handler past it dies with "heap out of memory".
			m.command = []string{in.Path, "--max-old-space-size=" + strconv.Itoa(nodeHeapMB(f.MemoryMB)), script}
		}
	default:
		return nil, fmt.Errorf("%s is not a process runtime", f.Runtime)
	}
	return m, nil
}

func (m *processModule) Instantiate(ctx context.Context, cfg runtimes.InstanceConfig) (instance, error) {
	tmp := filepath.Join(m.work, "tmp", strconv.FormatUint(m.seq.Add(1), 10))
	if err := os.MkdirAll(tmp, 0o700); err != nil {
		return nil, err
	}
	p, err := process.Start(ctx, process.Config{
		Command: m.command, Dir: m.dir, RuntimeDir: filepath.Dir(m.command[len(m.command)-1]),
		Env: cfg.Env, FunctionName: cfg.FunctionName, Version: cfg.Version, Handler: m.fn.Handler,
		Runtime: m.fn.Runtime, MemoryMB: cfg.MemoryMB, TmpDir: tmp, Stdout: cfg.Stdout, Stderr: cfg.Stderr, Logger: m.log,
		Isolate: m.fn.Isolation != spec.IsolationNone, Dial: m.dial, Forwards: m.forwards,
		Region: m.region, AccountID: m.account, AccessKeyID: m.creds.AccessKeyID, SecretAccessKey: m.creds.SecretAccessKey,
		GatewayURL: m.gatewayURL(),
	})
	if err != nil {
		os.RemoveAll(tmp)
		var ie *process.InitError
		if errors.As(err, &ie) {
			return nil, &runtimes.FunctionError{Type: ie.Type, Message: ie.Message, StackTrace: ie.StackTrace}
		}
		return nil, err
	}
	return &processInstance{p: p, tmp: tmp}, nil
}

// gatewayURL is the node's gateway as the module's processes reach it: through the forward in a
// sandbox, else at its own address.
func (m *processModule) gatewayURL() string {
	if len(m.forwards) == 0 {
		return ""
	}
	if m.fn.Isolation == spec.IsolationNone {
		return "http://" + m.forwards[0].Target
	}
	return "http://" + m.forwards[0].Inside
}

func (m *processModule) Close(context.Context) error { return os.RemoveAll(m.work) }

// snapshottable is false: a process cannot start from a snapshot.
func (m *processModule) snapshottable() bool { return false }

// processInstance is one runtime process of a pool.
type processInstance struct {
	p      *process.Process
	tmp    string
	broken bool
}

// processAdmissionHold is how long a process invocation keeps its admission (Config.MaxActive)
// before giving it up. The processes run on the machine's processors like the guests do: 64
// invocations at once, each in a process of its own on 2 cores, took 5–10 times the CPU per
// invocation of 16 at once (a Node.js hello: 200–250 against 1,000–1,500 invocations/s), as the
// processes crowd each other out of the caches. An invocation still running after this long is most
// likely waiting (on the network, a timer), so it makes room for another rather than hold the
// worker's admissions for as long as it waits.
const processAdmissionHold = 50 * time.Millisecond

// Invoke runs one invocation in the process. It gives its turn up at once (the process's own code
// cannot offer it at safepoints) and its admission after processAdmissionHold.
func (i *processInstance) Invoke(ctx context.Context, meta runtimes.Meta, payload []byte) ([]byte, error) {
	tk, _ := meta.Turn.(*turn)
	if tk != nil {
		tk.releaseRun()
	} else if meta.Turn != nil {
		meta.Turn.Release()
	}
	if meta.OnEffect != nil {
		// What a process does outside is not seen: running it again could repeat it.
		meta.OnEffect()
	}
	if t := tracing.AmznTraceID(meta.TraceParent); t != "" {
		ctx = process.WithTrace(ctx, t)
	}
	out, err := holdAdmission(tk, processAdmissionHold, func() ([]byte, error) {
		return i.p.Invoke(ctx, lambdaRequestID(meta.RequestID), meta.Deadline, payload)
	})
	var fe *process.FunctionError
	var ee *process.ExitError
	switch {
	case err == nil:
		return out, nil
	case errors.As(err, &fe):
		return nil, &runtimes.FunctionError{Type: fe.Type, Message: fe.Message, StackTrace: fe.StackTrace}
	case errors.Is(err, process.ErrTimeout):
		i.broken = true
		return nil, fmt.Errorf("%w: %w", runtimes.ErrTimeout, err)
	case errors.Is(err, process.ErrTooLarge):
		return nil, fmt.Errorf("%w: %w", runtimes.ErrResponseTooLarge, err)
	case errors.As(err, &ee):
		i.broken = true
		return nil, &runtimes.FunctionError{Type: ee.ErrorType(), Message: ee.Error()}
	}
	i.broken = true
	return nil, err
}

// holdAdmission runs invoke while tk keeps its admission, and gives the admission up if invoke has
// not returned within hold. The scheduler gives up whatever tk still holds once the invocation
// returns. It is called from the invocation's goroutine, the one that owns tk; invoke runs on
// another.
func holdAdmission(tk *turn, hold time.Duration, invoke func() ([]byte, error)) ([]byte, error) {
	if tk == nil || !tk.admitted {
		return invoke()
	}
	type answer struct {
		out []byte
		err error
	}
	done := make(chan answer, 1)
	go func() {
		out, err := invoke()
		done <- answer{out, err}
	}()
	timer := time.NewTimer(hold)
	defer timer.Stop()
	select {
	case a := <-done:
		return a.out, a.err
	case <-timer.C:
		tk.Release()
	}
	a := <-done
	return a.out, a.err
}

func (i *processInstance) Broken() bool { return i.broken || !i.p.Alive() }

// MaxMemoryUsed is the process's peak memory.
func (i *processInstance) MaxMemoryUsed() uint64 { return i.p.MaxMemoryUsed() }

func (i *processInstance) Close(context.Context) error {
	err := i.p.Close()
	os.RemoveAll(i.tmp)
	return err
}

// nodeHeapMB is the V8 heap a Node.js function of memoryMB gets: most of it, leaving room for the
// rest of the process (code, buffers outside the heap).
func nodeHeapMB(memoryMB int) int {
	return max(memoryMB*3/4, 64)
}

// lambdaRequestID is the id a runtime process knows an invocation by: a UUID, as Lambda's request
// ids are, derived from Gatehouse's request id (whose characters include "/", which runtime clients
// put in URL paths unescaped). Lambda's request id differs from API Gateway's there too.
func lambdaRequestID(requestID string) string {
	h := sha256.Sum256([]byte(requestID))
	x := hex.EncodeToString(h[:16])
	return x[:8] + "-" + x[8:12] + "-" + x[12:16] + "-" + x[16:20] + "-" + x[20:]
}

// safeName makes a pool key a directory name.
func safeName(key string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.' {
			return r
		}
		return '_'
	}, key)
}

// unzip writes the files of a zip package into dir, refusing paths that leave it; the modes of
// executables (a bootstrap) are kept.
func unzip(data []byte, dir string) error {
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, f := range zr.File {
		name := filepath.FromSlash(f.Name)
		if !filepath.IsLocal(name) {
			return fmt.Errorf("the package holds %q, which is outside it", f.Name)
		}
		path := filepath.Join(dir, name)
		if f.FileInfo().IsDir() {
			if err := os.MkdirAll(path, 0o755); err != nil {
				return err
			}
			continue
		}
		if !f.Mode().IsRegular() {
			continue // links and devices are not unpacked
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return err
		}
		rc, err := f.Open()
		if err != nil {
			return err
		}
		mode := os.FileMode(0o644)
		if f.Mode()&0o111 != 0 {
			mode = 0o755
		}
		out, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
		if err == nil {
			_, err = io.Copy(out, rc)
			if cerr := out.Close(); err == nil {
				err = cerr
			}
		}
		rc.Close()
		if err != nil {
			return err
		}
	}
	return nil
}
