package process

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultInitTimeout bounds the init phase when Config.InitTimeout is zero: Lambda's 10 s.
const DefaultInitTimeout = 10 * time.Second

// MaxResponseBytes is the largest response (or error) body a function may post: Lambda's 6 MB
// synchronous payload limit, counted as 6 MiB like the WebAssembly runtimes' response cap.
const MaxResponseBytes = 6 << 20

// Config describes one runtime process of one function version.
type Config struct {
	// Command is the process's argv: ["./bootstrap"] (provided.*), ["python3", "/path/ric.py"]. A name
	// without a slash is looked up on the worker's PATH (an interpreter), a relative path is taken
	// from Dir.
	Command []string
	// Dir is the function package's directory: the working directory and LAMBDA_TASK_ROOT.
	Dir string
	// RuntimeDir is LAMBDA_RUNTIME_DIR, where the runtime's own files are (the runtime interface
	// client's); Dir when empty.
	RuntimeDir string
	// Runtime names the runtime (python3.12, nodejs22.x, provided.al2023): AWS_EXECUTION_ENV is
	// AWS_Lambda_<Runtime>, and unset for provided.* and when empty.
	Runtime string
	// Env is the function's configured environment, the only variables the process sees besides those
	// Lambda defines. Of those it may set only LANG, PATH, LD_LIBRARY_PATH, NODE_PATH and PYTHONPATH.
	Env          map[string]string
	FunctionName string
	// Version is AWS_LAMBDA_FUNCTION_VERSION and ends the invoked function ARN; $LATEST when empty.
	Version string
	Handler string
	// MemoryMB is AWS_LAMBDA_FUNCTION_MEMORY_SIZE (128 when zero), and the limit of the process's
	// memory cgroup where the node lets the worker make one.
	MemoryMB int
	// Isolate runs the process in a sandbox: its own mount, PID, network, IPC and UTS namespaces, a
	// root filesystem of read-only system directories with the package at /var/task, a 512 MB /tmp
	// of its own, no network but its Runtime API, as an unprivileged user. Start fails with
	// ErrNoSandbox where the node cannot make one (see CheckSandbox).
	Isolate bool
	// Dial, for an isolated process, is its way to the network: an HTTP proxy inside its sandbox
	// (HTTP_PROXY and HTTPS_PROXY, at SandboxProxy) whose every connection Dial opens or refuses (an
	// error wrapping ErrDenied is answered 403). Nil leaves the process no network at all.
	Dial DialFunc
	// Forwards are addresses an isolated process reaches on its own loopback that lead outside (the
	// node's gateway, see GatewayForward), directly and through its proxy, whatever Dial allows.
	Forwards []Forward
	// Region is AWS_REGION and AWS_DEFAULT_REGION, and in the ARN; us-east-1 when empty.
	Region string
	// AccountID is the account of the function's ARN; 000000000000 when empty.
	AccountID string
	// AccessKeyID and SecretAccessKey are AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, as Lambda
	// sets them from the execution role; unset when empty.
	AccessKeyID, SecretAccessKey string
	// GatewayURL is GATEHOUSE_GATEWAY_URL, the node's gateway as the process reaches it
	// ("http://127.0.0.1:8080"): where @connections is, under an API's mount; unset when empty. An
	// isolated process is given its forward's inside address instead (see GatewayForward).
	GatewayURL string
	// TmpDir is the process's own /tmp (TMPDIR and HOME), made and removed by the caller. An
	// isolated process has a /tmp in memory instead, and TmpDir holds its root filesystem.
	TmpDir string
	// InitTimeout bounds the init phase, from the start of the process to its first request for an
	// invocation; DefaultInitTimeout when zero.
	InitTimeout time.Duration
	// Stdout and Stderr receive the process's output, one line per Write (a longer line than
	// MaxLineBytes in pieces). Nil discards. Writes of the two are never concurrent.
	Stdout, Stderr io.Writer
	// Logger receives Gatehouse's own records about the process; nil discards.
	Logger *slog.Logger
}

// Process is one running runtime process and its Runtime API. It serves one invocation at a time.
type Process struct {
	cfg     Config
	log     *slog.Logger
	arn     string
	cmd     *exec.Cmd
	pid     int
	ln      net.Listener
	srv     *http.Server
	serving chan struct{} // closed when srv.Serve has returned

	// proxyLn, proxySrv and px are a sandboxed process's proxy, when it has one; proxyDone is closed
	// when proxySrv.Serve has returned.
	proxyLn   net.Listener
	proxySrv  *http.Server
	px        *proxy
	proxyDone chan struct{}
	// fwdLns are the listeners of Config.Forwards, in order, and forwarders what serves them.
	fwdLns     []net.Listener
	forwarders []*forwarder

	// next hands an invocation to the process's pending GET /next.
	next chan *invocation
	// closing is closed by Close: pending /next requests end.
	closing   chan struct{}
	closeOnce sync.Once
	closeErr  error

	// exited is closed once the process has been waited for; exitErr says how it ended.
	exited  chan struct{}
	exitErr *ExitError
	killed  atomic.Bool // Gatehouse sent the SIGKILL
	output  sync.WaitGroup

	initOnce   sync.Once
	initDone   chan struct{} // closed at the first GET /next
	initFailed chan struct{} // closed when /init/error is posted
	initErr    *InitError

	busy atomic.Bool // an Invoke is in flight

	cgMu   sync.Mutex // orders setting cg against its removal at exit
	cg     *cgroup    // the process's cgroups; nil or empty when the node has none
	cgDone bool       // the process was waited for: no cgroup may be made for it any more

	mu  sync.Mutex
	cur *invocation // the invocation handed out last

	hmu      sync.Mutex
	hclosed  bool
	handlers sync.WaitGroup
}

// invocation is one event handed to the process and its outcome.
type invocation struct {
	id       string
	deadline time.Time
	trace    string
	payload  []byte
	answered bool        // a response or error was accepted (under Process.mu)
	done     chan result // buffered: the one outcome
}

type result struct {
	body []byte
	err  error
}

// Start starts the Runtime API for one process, then the process, and returns once the process has
// finished its init phase by asking for its first invocation. It fails with an *InitError (ErrInit)
// when the process posts /runtime/init/error, exits, or outlasts Config.InitTimeout first, and leaves
// nothing running. ctx bounds only the start.
func Start(ctx context.Context, cfg Config) (*Process, error) {
	if len(cfg.Command) == 0 || cfg.Command[0] == "" {
		return nil, errors.New("process: no command")
	}
	if cfg.Dir == "" || cfg.TmpDir == "" {
		return nil, errors.New("process: Dir and TmpDir are required")
	}
	var err error
	if cfg.Dir, err = filepath.Abs(cfg.Dir); err != nil {
		return nil, err
	}
	if cfg.RuntimeDir == "" {
		cfg.RuntimeDir = cfg.Dir
	}
	if cfg.Version == "" {
		cfg.Version = "$LATEST"
	}
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	if cfg.AccountID == "" {
		cfg.AccountID = "000000000000"
	}
	if cfg.MemoryMB <= 0 {
		cfg.MemoryMB = 128
	}
	if cfg.InitTimeout <= 0 {
		cfg.InitTimeout = DefaultInitTimeout
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	exe, interpDir, err := resolve(cfg.Command[0], cfg.Dir)
	if err != nil {
		return nil, err
	}

	p := &Process{
		cfg:        cfg,
		log:        log.With("function", cfg.FunctionName, "version", cfg.Version),
		arn:        fmt.Sprintf("arn:aws:lambda:%s:%s:function:%s:%s", cfg.Region, cfg.AccountID, cfg.FunctionName, cfg.Version),
		serving:    make(chan struct{}),
		next:       make(chan *invocation),
		closing:    make(chan struct{}),
		exited:     make(chan struct{}),
		initDone:   make(chan struct{}),
		initFailed: make(chan struct{}),
	}
	p.srv = &http.Server{
		Handler:           p.routes(),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(p.log.Handler(), slog.LevelDebug),
	}
	if cfg.Isolate {
		err = p.spawnSandboxed(ctx, exe, interpDir)
	} else {
		err = p.spawnPlain(exe, interpDir)
	}
	if err != nil {
		close(p.closing)
		if p.cmd != nil {
			p.kill()
			<-p.exited
			p.output.Wait()
		}
		if p.ln != nil {
			p.ln.Close()
		}
		if p.proxyLn != nil {
			p.proxyLn.Close()
		}
		for _, ln := range p.fwdLns {
			ln.Close()
		}
		close(p.serving)
		return nil, err
	}
	go func() {
		defer close(p.serving)
		_ = p.srv.Serve(p.ln)
	}()
	for i, ln := range p.fwdLns {
		p.forwarders = append(p.forwarders, startForwarder(ln, cfg.Forwards[i].Target, p.log))
	}
	if p.proxyLn != nil {
		p.px = newProxy(p.proxyDial(), p.srv.Handler, p.log)
		p.proxySrv = &http.Server{
			Handler:           p.px,
			ReadHeaderTimeout: 30 * time.Second,
			ErrorLog:          slog.NewLogLogger(p.log.Handler(), slog.LevelDebug),
		}
		p.proxyDone = make(chan struct{})
		go func() {
			defer close(p.proxyDone)
			_ = p.proxySrv.Serve(p.proxyLn)
		}()
	}
	p.log.Debug("runtime process started", "pid", p.pid, "isolated", cfg.Isolate, "memory_cgroup", p.cg.hasMemory())

	ierr := p.awaitInit(ctx)
	if ierr != nil {
		p.Close()
		p.log.Info("runtime init failed", "pid", p.pid, "error", ierr)
		return nil, ierr
	}
	return p, nil
}

// resolve finds the executable and, when it is an interpreter outside the package, its directory.
func resolve(name, dir string) (exe, interpDir string, err error) {
	switch {
	case filepath.IsAbs(name):
		exe = name
	case strings.Contains(name, "/"):
		exe = filepath.Join(dir, name)
	default:
		if exe, err = exec.LookPath(name); err != nil {
			return "", "", fmt.Errorf("process: %w", err)
		}
		if exe, err = filepath.Abs(exe); err != nil {
			return "", "", err
		}
	}
	return exe, interpreterDir(exe, dir), nil
}

// spawnPlain starts the process as the worker's user, with a Runtime API listener on the worker's
// loopback.
func (p *Process) spawnPlain(exe, interpDir string) error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("process: runtime API listener: %w", err)
	}
	p.ln = ln
	env, err := environ(&p.cfg, ln.Addr().String(), interpDir)
	if err != nil {
		return fmt.Errorf("process: %w", err)
	}
	made := p.makeCgroup()
	err = p.spawn(&exec.Cmd{
		Path:        exe,
		Args:        append([]string(nil), p.cfg.Command...),
		Dir:         p.cfg.Dir,
		Env:         env, // never nil: nothing of the worker's environment
		SysProcAttr: sysProcAttr(),
	})
	if err != nil {
		dropCgroup(made)
		return err
	}
	p.limit(made)
	return nil
}

// madeCgroup is a process's cgroups, made while the process starts.
type madeCgroup struct {
	cg  *cgroup
	err error
}

// makeCgroup starts making the process's cgroups, which takes milliseconds: in parallel with the
// start of the process, which limit then puts in them.
func (p *Process) makeCgroup() <-chan madeCgroup {
	made := make(chan madeCgroup, 1)
	go func() {
		cg, err := newCgroup(cgroupName(os.Getpid()), int64(p.cfg.MemoryMB)<<20, SandboxMaxProcs)
		made <- madeCgroup{cg, err}
	}()
	return made
}

// dropCgroup removes cgroups made for a process that never went into them.
func dropCgroup(made <-chan madeCgroup) {
	go func() { (<-made).cg.remove() }()
}

// limit puts the process in the cgroups made for it, where the node has them.
func (p *Process) limit(made <-chan madeCgroup) {
	m := <-made
	p.cgMu.Lock()
	defer p.cgMu.Unlock()
	if p.cgDone { // the process is gone already
		m.cg.remove()
		return
	}
	err := m.err
	if aerr := m.cg.add(p.pid); aerr != nil {
		err = errors.Join(err, aerr)
	}
	p.cg = m.cg
	if err != nil {
		p.log.Debug("runtime process not limited by every cgroup", "pid", p.pid, "error", err)
	}
}

// spawn starts cmd with its output going through pipes to the configured writers, and watches for
// its end.
func (p *Process) spawn(cmd *exec.Cmd) error {
	outR, outW, err := os.Pipe()
	if err != nil {
		return err
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		outR.Close()
		outW.Close()
		return err
	}
	cmd.Stdout, cmd.Stderr = outW, errW
	err = cmd.Start()
	outW.Close()
	errW.Close()
	if err != nil {
		outR.Close()
		errR.Close()
		return fmt.Errorf("process: starting %s: %w", cmd.Path, err)
	}
	p.cmd, p.pid = cmd, cmd.Process.Pid
	var mu sync.Mutex
	p.output.Add(2)
	go func() { defer p.output.Done(); defer outR.Close(); copyLines(p.cfg.Stdout, &mu, outR) }()
	go func() { defer p.output.Done(); defer errR.Close(); copyLines(p.cfg.Stderr, &mu, errR) }()
	go func() {
		_ = cmd.Wait()
		// Whatever the leader left behind in its group goes with it.
		killGroup(p.pid)
		p.exitErr = exitError(p.pid, cmd.ProcessState, p.killed.Load())
		p.cgMu.Lock()
		p.cgDone = true
		if p.cg.hasMemory() {
			// The cgroup counts its out-of-memory kills: no need to guess from the signal.
			p.exitErr.OutOfMemory = p.cg.oomKills() > 0
		}
		p.cg.remove()
		p.cgMu.Unlock()
		close(p.exited)
		p.log.Debug("runtime process ended", "pid", p.pid, "status", p.exitErr.Error())
	}()
	return nil
}

// awaitInit waits for the end of the init phase: nil once the process asked for its first invocation.
func (p *Process) awaitInit(ctx context.Context) *InitError {
	t := time.NewTimer(p.cfg.InitTimeout)
	defer t.Stop()
	select {
	case <-p.initDone:
		return nil
	case <-p.initFailed:
		return p.initErr
	case <-p.exited:
		select { // a posted init error explains the exit that follows it
		case <-p.initFailed:
			return p.initErr
		default:
		}
		return &InitError{Type: p.exitErr.ErrorType(), Message: p.exitErr.Error(), Cause: p.exitErr}
	case <-t.C:
		return &InitError{
			Type:    "Sandbox.Timeout",
			Message: fmt.Sprintf("runtime did not ask for an invocation within the init timeout of %s", p.cfg.InitTimeout),
			Cause:   ErrTimeout,
		}
	case <-ctx.Done():
		return &InitError{Type: "Runtime.Unknown", Message: ctx.Err().Error(), Cause: ctx.Err()}
	}
}

// Pid is the process's id (and its process group's).
func (p *Process) Pid() int { return p.pid }

// MaxMemoryUsed is the most memory the process (with its children) has used, in bytes, as its
// memory cgroup counts it; 0 without one.
func (p *Process) MaxMemoryUsed() uint64 { return p.cg.peakMemory() }

// RuntimeAPI is the host:port of the process's Runtime API.
func (p *Process) RuntimeAPI() string { return p.ln.Addr().String() }

// Alive reports whether the process is running and not closed.
func (p *Process) Alive() bool {
	select {
	case <-p.exited:
		return false
	case <-p.closing:
		return false
	default:
		return true
	}
}

// Invoke hands one event to the process and returns its response. It fails with a *FunctionError
// (ErrFunction) when the function posts an error, ErrTooLarge when its response is over
// MaxResponseBytes, ErrTimeout when deadline passes (the process group is killed first), ErrExited when
// the process is gone (an *ExitError when it ended by itself), ErrBusy when another Invoke is in flight,
// or the context's error (the process is killed if it had the event already: its state is unknown).
// The deadline is required: runtimes read it (Lambda-Runtime-Deadline-Ms) to tell handlers the time left.
// After ErrFunction and ErrTooLarge the process stays warm; after the others it is gone.
func (p *Process) Invoke(ctx context.Context, requestID string, deadline time.Time, payload []byte) ([]byte, error) {
	if !p.busy.CompareAndSwap(false, true) {
		return nil, ErrBusy
	}
	defer p.busy.Store(false)
	if deadline.IsZero() {
		return nil, errors.New("process: Invoke needs a deadline")
	}
	if err := p.goneErr(); err != nil {
		return nil, err
	}
	inv := &invocation{
		id:       requestID,
		deadline: deadline,
		trace:    traceOf(ctx),
		payload:  payload,
		done:     make(chan result, 1),
	}
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	timeout := timer.C

	// Hand the event to the process's pending /next (or the next one it makes).
	select {
	case p.next <- inv:
	case <-timeout:
		return nil, p.timedOut(inv)
	case <-p.exited:
		return nil, p.goneErr()
	case <-p.closing:
		return nil, p.goneErr()
	case <-ctx.Done():
		return nil, ctx.Err()
	}

	select {
	case r := <-inv.done:
		return r.body, r.err
	case <-timeout:
		if r, ok := poll(inv); ok {
			return r.body, r.err
		}
		return nil, p.timedOut(inv)
	case <-p.exited:
		if r, ok := poll(inv); ok {
			return r.body, r.err
		}
		return nil, p.goneErr()
	case <-p.closing:
		return nil, p.goneErr()
	case <-ctx.Done():
		if r, ok := poll(inv); ok {
			return r.body, r.err
		}
		p.kill()
		<-p.exited
		return nil, fmt.Errorf("invocation %s abandoned, process %d killed: %w", inv.id, p.pid, ctx.Err())
	}
}

func poll(inv *invocation) (result, bool) {
	select {
	case r := <-inv.done:
		return r, true
	default:
		return result{}, false
	}
}

// timedOut kills the process group and waits for it.
func (p *Process) timedOut(inv *invocation) error {
	p.kill()
	<-p.exited
	p.log.Info("runtime process killed: invocation past its deadline", "pid", p.pid, "request_id", inv.id)
	return fmt.Errorf("%w: invocation %s past its deadline %s; process %d killed",
		ErrTimeout, inv.id, inv.deadline.UTC().Format(time.RFC3339Nano), p.pid)
}

// goneErr is nil while the process runs, else why it is gone.
func (p *Process) goneErr() error {
	select {
	case <-p.closing:
		return fmt.Errorf("%w: process %d closed", ErrExited, p.pid)
	default:
	}
	select {
	case <-p.exited:
		if p.exitErr.Signal != 0 && p.killed.Load() {
			return fmt.Errorf("%w: process %d killed", ErrExited, p.pid)
		}
		return p.exitErr
	default:
		return nil
	}
}

// kill sends SIGKILL to the process group.
func (p *Process) kill() {
	p.killed.Store(true)
	killGroup(p.pid)
}

// Close kills the process group, closes the Runtime API and waits for all of it to end.
func (p *Process) Close() error {
	p.closeOnce.Do(func() {
		close(p.closing)
		select {
		case <-p.exited:
		default:
			p.kill()
		}
		<-p.exited
		p.output.Wait()
		p.closeErr = p.stopServer()
	})
	return p.closeErr
}

// stopServer closes the listener and every connection, and waits for the handlers to return.
func (p *Process) stopServer() error {
	p.hmu.Lock()
	p.hclosed = true
	p.hmu.Unlock()
	err := p.srv.Close()
	<-p.serving
	p.handlers.Wait()
	if p.proxySrv != nil {
		p.proxySrv.Close()
		p.px.close()
		<-p.proxyDone
	}
	for _, f := range p.forwarders {
		f.close()
	}
	return err
}

type traceKey struct{}

// WithTrace returns ctx carrying the X-Ray trace header (Lambda's _X_AMZN_TRACE_ID format) that
// Invoke gives the function in Lambda-Runtime-Trace-Id; without one, Invoke makes a new trace id.
func WithTrace(ctx context.Context, amznTraceID string) context.Context {
	return context.WithValue(ctx, traceKey{}, amznTraceID)
}

func traceOf(ctx context.Context) string {
	if t, _ := ctx.Value(traceKey{}).(string); t != "" {
		return t
	}
	return traceID(time.Now())
}
