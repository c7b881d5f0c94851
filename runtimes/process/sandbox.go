package process

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"gatehouse.dev/gatehouse/runtimes/process/sandbox"
)

// The paths a sandboxed process sees its files at, as Lambda's own: the package at /var/task, the
// runtime interface client at /var/runtime, its own /tmp.
const (
	SandboxTaskRoot   = sandbox.TaskRoot
	SandboxRuntimeDir = sandbox.RuntimeDir
	SandboxTmp        = sandbox.Tmp
	// SandboxRuntimeAPI is where a sandboxed process reaches its Runtime API, inside its own network
	// namespace: Lambda's own address.
	SandboxRuntimeAPI = "127.0.0.1:9001"
	// SandboxTmpBytes caps a sandboxed process's /tmp: Lambda's default ephemeral storage, 512 MB.
	SandboxTmpBytes = 512 << 20
	// SandboxMaxProcs caps the processes and threads of one sandbox (a pids cgroup), as Lambda caps
	// them at 1,024.
	SandboxMaxProcs = 1024
)

// ErrNoSandbox is the error of a sandboxed start on a node that cannot make the sandbox: no Linux
// namespaces (another OS, or a kernel or container that refuses them).
var ErrNoSandbox = errors.New("process: this node cannot sandbox processes")

// insidePath maps a host path under the package or the runtime directory to the sandbox's path for
// it, and leaves any other path as it is (an interpreter's, mounted at its own path).
func insidePath(p, task, runtime string) string {
	for _, m := range [][2]string{{task, SandboxTaskRoot}, {runtime, SandboxRuntimeDir}} {
		if m[0] == "" {
			continue
		}
		if p == m[0] {
			return m[1]
		}
		if rel, err := filepath.Rel(m[0], p); err == nil && filepath.IsLocal(rel) {
			return m[1] + "/" + filepath.ToSlash(rel)
		}
	}
	return p
}

// systemPrefix reports whether dir is one of the system directories every sandbox has (read-only).
func systemPrefix(dir string) bool {
	for _, s := range []string{"/usr", "/bin", "/sbin", "/lib", "/lib64", "/lib32", "/libx32"} {
		if dir == s || strings.HasPrefix(dir, s+"/") {
			return true
		}
	}
	return false
}

// interpreterPrefix is the directory an interpreter outside the system directories is installed in,
// which its sandbox must see: the parent of its bin directory (pyenv's
// /root/.pyenv/versions/3.11.7 for .../bin/python3.11), or its own directory. "" for a system one.
func interpreterPrefix(exe string) string {
	if real, err := filepath.EvalSymlinks(exe); err == nil {
		exe = real
	}
	dir := filepath.Dir(exe)
	if systemPrefix(dir) {
		return ""
	}
	if filepath.Base(dir) == "bin" && filepath.Dir(dir) != "/" {
		return filepath.Dir(dir)
	}
	return dir
}

// spawnSandboxed starts the process in a new sandbox and takes its Runtime API listener from it.
func (p *Process) spawnSandboxed(ctx context.Context, exe, interpDir string) error {
	cfg := p.cfg
	runtimeDir := cfg.RuntimeDir
	inside := cfg
	inside.Dir, inside.RuntimeDir, inside.TmpDir = SandboxTaskRoot, SandboxRuntimeDir, SandboxTmp
	if runtimeDir == cfg.Dir {
		runtimeDir, inside.RuntimeDir = "", SandboxTaskRoot
	}
	if cfg.Dial != nil {
		// The proxy is the way out; what it may reach is Dial's to say. Through it, an address is
		// the node's: http://127.0.0.1:8080 is the node's port 8080, if allowed. The Runtime API is
		// not proxied (and the proxy serves it too, for clients that ignore NO_PROXY's port).
		inside.Env = maps.Clone(cfg.Env)
		if inside.Env == nil {
			inside.Env = map[string]string{}
		}
		for _, k := range []string{"HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"} {
			inside.Env[k] = "http://" + SandboxProxy
		}
		np := noProxy(cfg.Forwards)
		inside.Env["NO_PROXY"], inside.Env["no_proxy"] = np, np
	}
	env, err := environ(&inside, SandboxRuntimeAPI, interpDir)
	if err != nil {
		return fmt.Errorf("process: %w", err)
	}
	s := sandbox.Spec{UserNS: os.Geteuid() != 0, Listen: []string{SandboxRuntimeAPI},
		Exe: insidePath(exe, cfg.Dir, runtimeDir), Env: env,
		Root: cfg.TmpDir, Task: cfg.Dir, Runtime: runtimeDir,
		TmpBytes: SandboxTmpBytes, UID: sandbox.Nobody, GID: sandbox.Nobody,
	}
	if cfg.Dial != nil {
		s.Listen = append(s.Listen, SandboxProxy)
	}
	for _, f := range cfg.Forwards {
		s.Listen = append(s.Listen, f.Inside)
	}
	for _, a := range cfg.Command {
		s.Args = append(s.Args, insidePath(a, cfg.Dir, runtimeDir))
	}
	if s.Exe == exe { // an interpreter, outside the package
		if pre := interpreterPrefix(exe); pre != "" {
			s.Binds = append(s.Binds, pre)
		}
	}
	return p.startSandbox(ctx, s)
}

// startSandbox starts the sandbox's first process, takes the Runtime API listener from it, puts it in
// its cgroups and lets it go on to build the sandbox and become the runtime process (or, for a probe,
// exit). It returns once that has happened or failed.
func (p *Process) startSandbox(ctx context.Context, s sandbox.Spec) error {
	desc, err := json.Marshal(s)
	if err != nil {
		return err
	}
	worker, child, err := socketPair()
	if err != nil {
		return err
	}
	defer worker.Close()
	made := p.makeCgroup()
	limited := false
	defer func() {
		if !limited {
			dropCgroup(made)
		}
	}()
	err = p.spawn(&exec.Cmd{
		Path:        "/proc/self/exe",
		Args:        []string{sandbox.Arg0},
		Env:         []string{sandbox.Env + "=" + string(desc)},
		ExtraFiles:  []*os.File{child},
		SysProcAttr: sandboxAttr(),
	})
	child.Close()
	if err != nil {
		return err
	}
	// The first process's steps take milliseconds; a bound keeps a stuck one from holding the start.
	wait := func(f func() error) error {
		done := make(chan error, 1)
		go func() { done <- f() }()
		t := time.NewTimer(p.cfg.InitTimeout)
		defer t.Stop()
		select {
		case err := <-done:
			return err
		case <-t.C:
		case <-ctx.Done():
		}
		p.kill() // its socket closes, and f returns
		<-done
		return fmt.Errorf("%w: its first process did not get ready in time", ErrNoSandbox)
	}
	var lns []net.Listener
	if err := wait(func() (err error) { lns, err = sandboxHandshake(worker); return err }); err != nil {
		return err
	}
	if len(lns) != len(s.Listen) {
		for _, ln := range lns {
			ln.Close()
		}
		return fmt.Errorf("%w: %d listeners handed over, want %d", ErrNoSandbox, len(lns), len(s.Listen))
	}
	if len(lns) > 0 {
		p.ln, lns = lns[0], lns[1:]
	}
	if p.cfg.Dial != nil && len(lns) > 0 {
		p.proxyLn, lns = lns[0], lns[1:]
	}
	p.fwdLns = lns
	p.limit(made)
	limited = true
	if _, err := worker.Write([]byte{sandbox.MsgGo}); err != nil {
		return fmt.Errorf("%w: %w", ErrNoSandbox, err)
	}
	// What comes next: end of file when the runtime process replaced the first one (the socket is
	// closed at exec), "P" when a probe got through, or "E" and why it failed.
	return wait(func() error {
		buf := make([]byte, 4096)
		n, err := worker.Read(buf)
		switch {
		case n > 0 && buf[0] == sandbox.MsgError:
			return fmt.Errorf("%w: %s", ErrNoSandbox, strings.TrimPrefix(string(buf[1:n]), "sandbox: "))
		case n > 0 && buf[0] == sandbox.MsgProbed:
			return nil
		case n == 0 && (err == nil || errors.Is(err, io.EOF)):
			return nil
		}
		return fmt.Errorf("%w: %v", ErrNoSandbox, err)
	})
}

// CheckSandbox reports whether this node can run isolated processes: nil, or why not (an error
// wrapping ErrNoSandbox). It builds one whole sandbox, with an empty package, under dir.
func CheckSandbox(ctx context.Context, dir string) error {
	work, err := os.MkdirTemp(dir, "sandbox-check-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	task, root := filepath.Join(work, "task"), filepath.Join(work, "root")
	for _, d := range []string{task, root} {
		if err := os.Mkdir(d, 0o755); err != nil {
			return err
		}
	}
	p := &Process{
		cfg:    Config{InitTimeout: DefaultInitTimeout, MemoryMB: 128},
		log:    slog.New(slog.DiscardHandler),
		exited: make(chan struct{}),
	}
	err = p.startSandbox(ctx, sandbox.Spec{Probe: true, Root: root, Task: task, TmpBytes: 1 << 20, Listen: []string{SandboxRuntimeAPI},
		UID: sandbox.Nobody, GID: sandbox.Nobody, UserNS: os.Geteuid() != 0})
	if p.cmd != nil {
		<-p.exited
		p.output.Wait()
		if err == nil && p.exitErr.Code != 0 {
			err = fmt.Errorf("%w: the check ended with %s", ErrNoSandbox, p.exitErr)
		}
	}
	if p.ln != nil {
		p.ln.Close()
	}
	return err
}

// proxyDial is the proxy's dial: a forward's address (by its address or as localhost) leads to its
// target, anything else is Config.Dial's to allow.
func (p *Process) proxyDial() DialFunc {
	return func(ctx context.Context, scheme, host string, port int) (net.Conn, error) {
		for _, f := range p.cfg.Forwards {
			_, fport, _ := net.SplitHostPort(f.Inside)
			if hp := net.JoinHostPort(host, strconv.Itoa(port)); hp == f.Inside || hp == "localhost:"+fport {
				var d net.Dialer
				return d.DialContext(ctx, "tcp", f.Target)
			}
		}
		return p.cfg.Dial(ctx, scheme, host, port)
	}
}
