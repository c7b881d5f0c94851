// Package scheduler is the worker side of Gatehouse: it takes invocations from the bus and runs them in
// sandboxes, keeping a pool of warm instances per function version, starting new ones on demand (a cold
// start) and discarding instances that crashed.
//
// One worker process runs one Scheduler. The wiring tells it which versions are live (Sync): those are
// compiled and warmed before they take traffic; others are loaded when called by number and closed
// when unused.
package scheduler

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"gatehouse.dev/gatehouse/internal/bus"
	"gatehouse.dev/gatehouse/internal/sigv4"
	"gatehouse.dev/gatehouse/internal/spec"
	"gatehouse.dev/gatehouse/internal/tracing"
	"gatehouse.dev/gatehouse/runtimes"
	"gatehouse.dev/gatehouse/runtimes/process"
)

// Function is one function version the scheduler serves.
type Function struct {
	Name string
	// ID and Version name the version in the function registry. A function given without an ID is
	// served under its name alone (as "$LATEST"), for invocations that name no version.
	ID      string
	Version int
	// Wasm is the module's bytes.
	Wasm []byte
	// MemoryMB is the function's memory size, reported to the guest.
	MemoryMB int
	// Timeout is the function's own time limit, counted from when the invocation has an instance
	// (getting one, a cold start included, is bounded by InitTimeout), whatever the caller's
	// deadline; default 3s.
	Timeout time.Duration
	// Env is the function's environment.
	Env map[string]string
	// MinWarm instances are started when the version is loaded and kept while it is live.
	MinWarm int
	// IdleTimeout is how long an instance beyond MinWarm may sit unused before it is closed; default
	// 5 minutes.
	IdleTimeout time.Duration
	// SnapStart starts the version's WebAssembly instances from a snapshot of its first initialised
	// instance (runtimes.InstanceConfig.Snapshot). When a live version is loaded, one instance is
	// started at once, so that the snapshot is taken before the first invocation; that instance is
	// then kept or closed as any other (MinWarm, IdleTimeout), and the snapshot stays with the
	// module. It does nothing for a process runtime, nor for a module that cannot be snapshotted.
	SnapStart bool
	// Outbound are where the function's outbound HTTP requests may go; none allows none.
	Outbound []spec.OutboundHost
	// Publish are the subjects the function may publish on; none allows none.
	Publish []string
	// Runtime is the function's runtime: "" or spec.RuntimeWasm for Wasm, a WebAssembly module;
	// a process runtime's Wasm holds its package, a zip, and Handler names its code.
	Runtime, Handler string
	// Isolation is a process runtime's: spec.IsolationNone runs its processes unsandboxed.
	Isolation string
}

// key names a version's pool: its registry id and number, or its name when it has no id.
func (f Function) key() string { return poolKey(f.Name, f.ID, f.Version) }

func poolKey(name, id string, version int) string {
	if id == "" {
		return name
	}
	return id + ":" + strconv.Itoa(version)
}

// versionLabel is how a version is shown to the guest and in logs.
func (f Function) versionLabel() string {
	if f.Version == 0 {
		return "$LATEST"
	}
	return strconv.Itoa(f.Version)
}

// LogRecord is one line a function wrote to its stdout or stderr.
type LogRecord struct {
	Time      time.Time
	Function  string
	Version   int
	RequestID string
	// TraceID is the invocation's trace id (32 hex digits), when it has one.
	TraceID string
	Stream  string
	Message string
}

// Config configures a [Scheduler].
type Config struct {
	// Functions are loaded by Load and stay live.
	Functions []Function
	// Loader, when set, fetches a version that an invocation names and the scheduler has not
	// loaded (a version that is not live: called by its number). It is loaded then, from the
	// compilation cache when it is there, and closed after it has been unused for a while.
	Loader func(ctx context.Context, name, id string, version int) (Function, error)
	// MaxInFlight bounds the invocations one worker runs at once; default 64.
	MaxInFlight int
	// Parallelism bounds the invocations running guest code (or starting an instance) at the same
	// time; default GOMAXPROCS. The others wait their turn, served round-robin by function; an
	// invocation waiting on a host call or sleeping gives its turn up meanwhile, and a running guest
	// offers it up at every safepoint while others wait. More at once would only add instances —
	// each a cold start and memory of its own — for the same CPUs. The process should have one
	// processor more than turns (GOMAXPROCS), so that the bus and heartbeats always have one.
	Parallelism int
	// MaxActive bounds the invocations admitted to run guest code at once: running, or waiting for a
	// turn again after offering theirs up at a safepoint; default 8 × Parallelism. The admitted share
	// the turns; the others wait to be admitted, served round-robin by function, for up to
	// QueueTimeout.
	MaxActive int
	// QueueTimeout bounds the wait to be admitted. An invocation still waiting then is shed, without
	// running: it fails with bus.ErrThrottled when its function holds more than its share of the
	// waiting invocations, else with bus.ErrOverloaded. Default 1s.
	QueueTimeout time.Duration
	// QuarantineAfter overruns of its timeout within QuarantineWindow put a function in quarantine
	// for QuarantineFor: it then runs one invocation at a time in the worker (the others wait for
	// that place up to QueueTimeout, then fail with bus.ErrThrottled), and each new overrun keeps it
	// there QuarantineFor longer. Defaults: 2, 1 minute, 5 minutes.
	QuarantineAfter  int
	QuarantineWindow time.Duration
	QuarantineFor    time.Duration
	// Logger receives scheduler events and function output; default discards.
	Logger *slog.Logger
	// LogSink, when set, receives every line of function output too.
	LogSink func(LogRecord)
	// Host performs the functions' host calls (connections, key-value store); nil makes them fail
	// as unavailable.
	Host runtimes.Host
	// WorkDir holds what process runtimes need on disk: their unpacked packages, their /tmp
	// directories, the runtime interface clients. Required for process runtimes.
	WorkDir string
	// GatewayAddr is the node's gateway listen address, which sandboxed processes reach at the same
	// port on their own loopback (process.GatewayForward), to post to @connections; "" gives none.
	GatewayAddr string
	// Region is process runtimes' AWS_REGION (us-east-1 when empty), and Credentials their
	// AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (none when empty): as a Lambda function's
	// execution role's, what their AWS SDKs sign requests to the stack (@connections) with.
	Region      string
	Credentials sigv4.Credentials
	// AccountID is the account of process runtimes' function ARNs (000000000000 when empty).
	AccountID string
	// Tracer, when set, records a span for each invocation (and its wait for an instance, and a
	// cold start), continuing the trace of the invocation's traceparent, and gives the function the
	// invocation span's traceparent.
	Tracer trace.Tracer
	// DrainTimeout bounds the wait, at stop, for invocations already received; default 30s.
	DrainTimeout time.Duration
	// Slots, when set, records each running invocation for the supervising process, and its length
	// bounds the invocations run at once (instead of MaxInFlight).
	Slots *Slots
	// RetireAfter is how long a version that is no longer live (or was loaded on demand) is kept
	// after its last invocation, before its instances and module are closed; default 30s.
	RetireAfter time.Duration
}

// Scheduler runs invocations. Create it with [New], then [Scheduler.Load], then [Scheduler.Run];
// [Scheduler.Sync] changes the live versions at any time.
type Scheduler struct {
	cfg     Config
	runtime runtimes.Config
	log     *slog.Logger
	// interpreters are the process runtimes' interpreters found so far, by runtime: a lookup runs the
	// interpreter (a third of a second behind a version manager's shim), once per worker.
	interpMu     sync.Mutex
	interpreters map[string]process.Interpreter
	// outbound counts the functions' outbound requests, by function: kept across their versions.
	outbound outboundCounters

	mu      sync.RWMutex
	engines map[int]*runtimes.Engine // by memory limit
	pools   map[string]*pool         // by Function.key
	byName  map[string]*pool         // the pool an invocation naming no version runs in
	loading map[string]*loadCall

	wg   sync.WaitGroup
	sem  chan struct{} // a token per runner goroutine
	work chan func()   // invocations for idle runners
	quit chan struct{} // closed by Close: runners end
	stop sync.Once
	// admitted holds the invocations admitted to run (Config.MaxActive), turns those running guest
	// code (Config.Parallelism).
	admitted, turns *turns
	quarantine      *quarantine

	loaded atomic.Uint64
	worker atomic.Pointer[bus.Worker]

	// sandboxOnce checks once, at the first load of a sandboxed process runtime, whether this node can
	// make sandboxes; sandboxErr says why not.
	sandboxOnce sync.Once
	sandboxErr  error
}

type loadCall struct {
	done chan struct{}
	p    *pool
	err  error
}

// New checks cfg. It does no work. Functions run in engines configured like rc, one per memory size.
func New(cfg Config, rc runtimes.Config) (*Scheduler, error) {
	if cfg.MaxInFlight <= 0 {
		cfg.MaxInFlight = 64
	}
	if cfg.Slots != nil {
		cfg.MaxInFlight = cfg.Slots.Len()
	}
	if cfg.Parallelism <= 0 {
		cfg.Parallelism = runtime.GOMAXPROCS(0)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.DrainTimeout <= 0 {
		cfg.DrainTimeout = 30 * time.Second
	}
	if cfg.QuarantineAfter <= 0 {
		cfg.QuarantineAfter = 2
	}
	if cfg.QuarantineWindow <= 0 {
		cfg.QuarantineWindow = time.Minute
	}
	if cfg.QuarantineFor <= 0 {
		cfg.QuarantineFor = 5 * time.Minute
	}
	if cfg.MaxActive <= 0 {
		cfg.MaxActive = 8 * cfg.Parallelism
	}
	if cfg.QueueTimeout <= 0 {
		cfg.QueueTimeout = DefaultQueueTimeout
	}
	if cfg.RetireAfter <= 0 {
		cfg.RetireAfter = 30 * time.Second
	}
	seen := map[string]bool{}
	for i, f := range cfg.Functions {
		f, err := checkFunction(f)
		if err != nil {
			return nil, err
		}
		cfg.Functions[i] = f
		if seen[f.key()] {
			return nil, fmt.Errorf("scheduler: function %s version %s listed twice", f.Name, f.versionLabel())
		}
		seen[f.key()] = true
	}
	return &Scheduler{cfg: cfg, runtime: rc, log: cfg.Logger,
		engines: map[int]*runtimes.Engine{}, pools: map[string]*pool{}, byName: map[string]*pool{}, loading: map[string]*loadCall{},
		sem: make(chan struct{}, cfg.MaxInFlight), work: make(chan func()), quit: make(chan struct{}), admitted: newTurns(cfg.MaxActive), turns: newTurns(cfg.Parallelism),
		quarantine: newQuarantine(cfg.QuarantineAfter, cfg.QuarantineWindow, cfg.QuarantineFor, cfg.Logger)}, nil
}

// checkFunction fills in f's defaults and checks its name.
func checkFunction(f Function) (Function, error) {
	if f.IdleTimeout <= 0 {
		f.IdleTimeout = 5 * time.Minute
	}
	if f.Timeout <= 0 {
		f.Timeout = 3 * time.Second
	}
	if err := bus.ValidToken(f.Name); err != nil {
		return f, fmt.Errorf("scheduler: function name: %w", err)
	}
	return f, nil
}

// Load compiles every configured function (from the compilation cache when it has them) and starts
// the minimum warm instances, so that no invocation pays for compilation.
func (s *Scheduler) Load(ctx context.Context) error {
	return s.Sync(ctx, nil)
}

// Sync makes the configured functions and live the versions that are live: it loads those it has
// not loaded (compiling them and starting their minimum warm instances before they are used), and
// retires the versions no longer live: they finish what they run, and are closed once unused for
// RetireAfter (a caller that still names one brings it back). An invocation that names no version
// runs the newest live version of its function. Versions that fail to load are reported together;
// the others are loaded all the same.
func (s *Scheduler) Sync(ctx context.Context, live []Function) error {
	want := append(slices.Clone(s.cfg.Functions), live...)
	var errs []error
	loaded := map[string]*pool{}
	for _, f := range want {
		f, err := checkFunction(f)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		s.mu.RLock()
		p := s.pools[f.key()]
		s.mu.RUnlock()
		if p == nil && f.Wasm == nil && s.cfg.Loader != nil {
			// Given without its module because it was loaded, and closed since.
			if f, err = s.cfg.Loader(ctx, f.Name, f.ID, f.Version); err == nil {
				f, err = checkFunction(f)
			}
			if err != nil {
				errs = append(errs, err)
				continue
			}
		}
		if p == nil {
			if p, err = s.load(ctx, f); err != nil {
				errs = append(errs, err)
				continue
			}
		}
		p.setLive(true)
		if err := p.prewarm(ctx); err != nil {
			errs = append(errs, fmt.Errorf("scheduler: function %s version %s: %w", f.Name, f.versionLabel(), err))
		}
		loaded[f.key()] = p
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.byName)
	for key, p := range s.pools {
		if _, ok := loaded[key]; !ok {
			p.setLive(false)
		}
	}
	for key, p := range loaded {
		s.pools[key] = p
		if cur := s.byName[p.fn.Name]; cur == nil || p.fn.Version > cur.fn.Version {
			s.byName[p.fn.Name] = p
		}
	}
	return errors.Join(errs...)
}

// Has reports whether the version is loaded (live or not). A caller of Sync may leave the module
// out of the versions that are.
func (s *Scheduler) Has(name, id string, version int) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.pools[poolKey(name, id, version)] != nil
}

// SetLoaded tells the gateways, with the worker's heartbeats, that the live versions of registry
// revision rev are loaded.
func (s *Scheduler) SetLoaded(rev uint64) {
	s.loaded.Store(rev)
	if w := s.worker.Load(); w != nil {
		w.SetLoaded(rev)
	}
}

// load compiles f into a new pool (not yet in s.pools); a process runtime's package is unpacked
// instead.
func (s *Scheduler) load(ctx context.Context, f Function) (*pool, error) {
	var m module
	if spec.IsProcessRuntime(f.Runtime) {
		if f.Isolation != spec.IsolationNone {
			if err := s.checkSandbox(ctx); err != nil {
				return nil, fmt.Errorf("scheduler: function %s version %s: %w; isolation: %s runs it without one, as the node's own user, able to read the node's files (the data directory's secret.key and admin.token) and reach its network (the admin API, the bus)",
					f.Name, f.versionLabel(), err, spec.IsolationNone)
			}
		}
		pm, err := newProcessModule(ctx, f, s.cfg.WorkDir, s.log, s.interpreter)
		if err == nil {
			pm.region, pm.account, pm.creds = s.cfg.Region, s.cfg.AccountID, s.cfg.Credentials
			pm.dial = s.processDial(f)
			if fw, ok := process.GatewayForward(s.cfg.GatewayAddr); ok {
				pm.forwards = []process.Forward{fw}
			}
		}
		if err != nil {
			return nil, fmt.Errorf("scheduler: function %s version %s: %w", f.Name, f.versionLabel(), err)
		}
		m = pm
	} else {
		engine, err := s.engine(ctx, f.MemoryMB)
		if err != nil {
			return nil, err
		}
		wm, err := engine.Compile(ctx, f.Wasm)
		if err != nil {
			return nil, fmt.Errorf("scheduler: function %s version %s: %w", f.Name, f.versionLabel(), err)
		}
		m = wasmModule{wm}
	}
	var host runtimes.Host
	if s.cfg.Host != nil {
		host = functionHost{Host: turnYieldingHost{Host: s.cfg.Host, log: s.log}, name: f.Name, allow: f.Outbound, outbound: &s.outbound, publish: f.Publish}
	}
	return newPool(f, m, s.log, s.cfg.LogSink, host), nil
}

// Dialer is what a Host implements to give sandboxed process runtimes outbound connections: one to
// scheme://host:port for the function, checked against its allow-list (a refusal wraps
// runtimes.ErrHostNotAllowed).
type Dialer interface {
	Dial(ctx context.Context, function string, allow []spec.OutboundHost, scheme, host string, port int) (net.Conn, error)
}

// processDial is how f's sandboxed processes reach the network: through the host's Dialer, counted
// as outbound requests are; nil (no network) when the host has none.
func (s *Scheduler) processDial(f Function) process.DialFunc {
	d, ok := s.cfg.Host.(Dialer)
	if !ok {
		return nil
	}
	return func(ctx context.Context, scheme, host string, port int) (net.Conn, error) {
		start := time.Now()
		conn, err := d.Dial(ctx, f.Name, f.Outbound, scheme, host, port)
		target := scheme + "://" + net.JoinHostPort(host, strconv.Itoa(port))
		s.outbound.record(f.Name, destination(target, f.Outbound, err), err, time.Since(start))
		if errors.Is(err, runtimes.ErrHostNotAllowed) {
			return nil, fmt.Errorf("%w: %w", process.ErrDenied, err)
		}
		return conn, err
	}
}

// checkSandbox reports whether this node can make process sandboxes, checked the first time.
func (s *Scheduler) checkSandbox(ctx context.Context) error {
	s.sandboxOnce.Do(func() {
		if err := os.MkdirAll(s.cfg.WorkDir, 0o700); err != nil {
			s.sandboxErr = err
			return
		}
		s.sandboxErr = process.CheckSandbox(ctx, s.cfg.WorkDir)
		if s.sandboxErr != nil {
			s.log.Warn("process runtimes cannot be sandboxed on this node", "error", s.sandboxErr)
		}
	})
	return s.sandboxErr
}

// engine returns the engine for a memory limit, creating it the first time.
func (s *Scheduler) engine(ctx context.Context, memoryMB int) (*runtimes.Engine, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.engines[memoryMB]; ok {
		return e, nil
	}
	rc := s.runtime
	rc.MemoryLimitMB = memoryMB
	e, err := runtimes.NewEngine(ctx, rc)
	if err != nil {
		return nil, err
	}
	s.engines[memoryMB] = e
	return e, nil
}

// poolFor returns the pool that runs inv, loading the version it names when the scheduler has a
// Loader and has not loaded it.
func (s *Scheduler) poolFor(ctx context.Context, inv bus.Invocation) (*pool, error) {
	key := poolKey(inv.Function, inv.FunctionID, inv.Version)
	s.mu.RLock()
	p := s.pools[key]
	if inv.FunctionID == "" {
		p = s.byName[inv.Function]
	}
	s.mu.RUnlock()
	if p != nil {
		return p, nil
	}
	if inv.FunctionID == "" || s.cfg.Loader == nil {
		return nil, fmt.Errorf("%q: %w", inv.Function, bus.ErrFunctionNotFound)
	}
	// One load per version, however many invocations wait for it.
	s.mu.Lock()
	if p := s.pools[key]; p != nil {
		s.mu.Unlock()
		return p, nil
	}
	lc, ok := s.loading[key]
	if !ok {
		lc = &loadCall{done: make(chan struct{})}
		s.loading[key] = lc
		go s.loadOnDemand(key, inv, lc)
	}
	s.mu.Unlock()
	select {
	case <-lc.done:
		return lc.p, lc.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (s *Scheduler) loadOnDemand(key string, inv bus.Invocation, lc *loadCall) {
	defer close(lc.done)
	// Not bound to one caller's context: others may wait for the same load.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	start := time.Now()
	f, err := s.cfg.Loader(ctx, inv.Function, inv.FunctionID, inv.Version)
	if err == nil {
		f, err = checkFunction(f)
	}
	var p *pool
	if err == nil {
		p, err = s.load(ctx, f)
	}
	s.mu.Lock()
	delete(s.loading, key)
	if err == nil {
		s.pools[key] = p
	}
	s.mu.Unlock()
	if err != nil {
		s.log.Error("loading a function version", "function", inv.Function, "version", inv.Version, "err", err)
		lc.err = fmt.Errorf("%s version %d: %w", inv.Function, inv.Version, bus.ErrFunctionNotFound)
		return
	}
	s.log.Info("loaded a function version on demand", "function", inv.Function, "version", inv.Version, "took", time.Since(start).Round(time.Millisecond))
	lc.p = p
}

// InvocationSource is the part of the bus the scheduler needs.
type InvocationSource interface {
	ServeWorker(id string, capacity int, start func(func()), handle bus.Handler, stats func() map[string]bus.FunctionStats, log *slog.Logger) (*bus.Worker, error)
	AnnounceReady(id string) error
}

var _ InvocationSource = (*bus.Client)(nil)

// Run takes invocations from b until ctx is done, then stops taking new ones, lets running invocations
// finish and closes every instance.
func (s *Scheduler) Run(ctx context.Context, b InvocationSource, id string) error {
	sub, err := b.ServeWorker(id, s.cfg.MaxInFlight, s.start, s.Handle, s.Stats, s.log)
	if err != nil {
		return err
	}
	// Handle answers within QueueTimeout (admission) and InitTimeout (an instance) of the
	// function's timeout.
	sub.RunOnCaller(s.run, s.cfg.QueueTimeout+InitTimeout)
	s.worker.Store(sub)
	sub.SetLoaded(s.loaded.Load())
	if err := b.AnnounceReady(id); err != nil {
		return fmt.Errorf("scheduler: announcing readiness: %w", err)
	}
	reaped := make(chan struct{})
	go func() {
		defer close(reaped)
		s.reapLoop(ctx)
	}()
	if s.cfg.Slots != nil {
		go s.cfg.Slots.Beat(ctx)
	}
	<-ctx.Done()
	<-reaped
	// Stop taking invocations; every one already received is started, then all of them finish and
	// reply before the pools close.
	drainCtx, cancel := context.WithTimeout(context.Background(), s.cfg.DrainTimeout)
	defer cancel()
	if err := sub.Drain(drainCtx); err != nil {
		s.log.Warn("draining invocations", "err", err)
	}
	s.wg.Wait()
	s.Close(context.Background())
	return nil
}

// start runs fn on a goroutine the scheduler owns, waiting while MaxInFlight are running. The
// goroutines stay for the next invocations rather than end: a new one grows its stack anew for every
// invocation, which cost 5% of a busy worker's CPU.
func (s *Scheduler) start(fn func()) {
	s.wg.Add(1)
	select {
	case s.work <- fn: // an idle runner takes it
		return
	default:
	}
	select {
	case s.sem <- struct{}{}: // room for one more runner
		go s.runner(fn)
	case s.work <- fn:
	}
}

// run runs fn on the caller's goroutine, counted with the invocations start hands out (Run waits for
// them all before it closes the pools).
func (s *Scheduler) run(fn func()) {
	s.wg.Add(1)
	defer s.wg.Done()
	fn()
}

// runner runs fn, then whatever start hands it, until the scheduler stops.
func (s *Scheduler) runner(fn func()) {
	for {
		fn()
		s.wg.Done()
		select {
		case fn = <-s.work:
		case <-s.quit:
			return
		}
	}
}

// Handle runs one invocation: it takes a warm instance or starts one, invokes it, and returns the
// instance to the pool unless it crashed. Errors wrap the bus's sentinels.
func (s *Scheduler) Handle(ctx context.Context, inv bus.Invocation) ([]byte, error) {
	received := time.Now()
	p, err := s.poolFor(ctx, inv)
	if err != nil {
		return nil, err
	}
	// Getting an instance (waiting for one, or starting one) is bounded by InitTimeout, like a Lambda
	// function's init phase; the function's own timeout starts once it has one and bounds it whatever
	// the caller's deadline: like a Lambda function, it runs on after an integration timeout until
	// its own time is up.
	slot := -1
	if s.cfg.Slots != nil {
		slot = s.cfg.Slots.acquire(inv.RequestID, time.Now().Add(max(p.fn.Timeout, InitTimeout)))
		defer s.cfg.Slots.release(slot)
	}
	tk := &turn{admit: s.admitted, run: s.turns, function: inv.Function}
	qctx, cancel := context.WithTimeout(ctx, s.cfg.QueueTimeout)
	leave, ok := s.quarantine.enter(qctx, inv.Function, time.Now())
	if !ok {
		cancel()
		return nil, s.shed(ctx, p, inv, errQuarantined)
	}
	defer leave()
	err = s.admitted.acquire(qctx, inv.Function, false)
	cancel()
	if err != nil {
		return nil, s.shed(ctx, p, inv, err)
	}
	tk.admitted = true
	defer tk.Release()
	// Waiting for an instance holds no turn; starting one takes one (see pool.start).
	gctx, cancelGet := context.WithTimeout(context.WithValue(ctx, turnKey{}, tk), InitTimeout)
	defer cancelGet()
	sb, err := p.get(gctx)
	deadline := time.Now().Add(p.fn.Timeout)
	if s.cfg.Slots != nil {
		s.cfg.Slots.extend(slot, deadline)
	}
	for attempt := 0; errors.Is(err, errPoolClosed) && attempt < 3; attempt++ {
		// The version was retired and closed just now: load it again.
		if p, err = s.poolFor(ctx, inv); err == nil {
			sb, err = p.get(gctx)
		}
	}
	if err != nil && ctx.Err() == nil && gctx.Err() != nil {
		// No instance came within InitTimeout: the worker is out of capacity; the invocation did
		// not run.
		p.shed()
		s.log.Warn("invocation shed: no instance in time", "function", inv.Function, "request_id", inv.RequestID)
		return nil, fmt.Errorf("waited %s for an instance: %w", InitTimeout, bus.ErrOverloaded)
	}
	if errors.Is(err, runtimes.ErrMemoryBudget) {
		// Out of capacity, not broken: it did not run.
		p.shed()
		s.log.Warn("invocation shed: no memory left in the worker for another instance", "function", inv.Function, "request_id", inv.RequestID, "err", err)
		return nil, fmt.Errorf("starting instance: %w", bus.ErrOverloaded)
	}
	if err != nil {
		s.log.Error("starting instance", "function", inv.Function, "request_id", inv.RequestID, "err", err)
		return nil, fmt.Errorf("starting instance: %w", bus.ErrFunctionError)
	}
	if err := tk.Acquire(ctx); err != nil {
		p.put(ctx, sb, false)
		return nil, fmt.Errorf("waiting to run: %w", bus.ErrFunctionTimeout)
	}
	invoked := time.Now()
	if s.cfg.Slots != nil {
		s.cfg.Slots.entered(inv.RequestID)
	}
	meta := runtimes.Meta{RequestID: inv.RequestID, Deadline: deadline, TraceParent: inv.TraceParent, Turn: tk}
	var span trace.Span
	if s.cfg.Tracer != nil {
		span = s.traceInvocation(inv, p, sb, received, invoked)
		defer span.End()
		meta.TraceParent = tracing.TraceParent(trace.ContextWithSpan(context.Background(), span))
	}
	sb.logs.begin(inv.RequestID, meta.TraceParent, invoked)
	if s.cfg.Slots != nil {
		meta.OnEffect = func() { s.cfg.Slots.effected(inv.RequestID) }
	}
	// The guest runs until its own deadline, whatever the caller's (see above), and is stopped at
	// its first safepoint past it.
	ictx, cancelInvoke := context.WithDeadline(context.WithoutCancel(ctx), deadline)
	if span != nil {
		// Host calls (outbound requests, posts) trace themselves as the invocation's children.
		ictx = trace.ContextWithSpan(ictx, span)
	}
	out, err := sb.inst.Invoke(context.WithValue(ictx, turnKey{}, tk), meta, inv.Payload)
	cancelInvoke()
	if errors.Is(err, runtimes.ErrTimeout) {
		s.quarantine.overran(inv.Function, time.Now())
	}
	sb.logs.end()
	took := time.Since(invoked)
	broken := err != nil
	out, err = s.outcome(p, inv, sb.logs, out, err)
	s.report(p, inv, sb, took, err != nil)
	p.put(ctx, sb, broken)
	if s.cfg.Slots != nil {
		code := ""
		if err != nil {
			code = string(bus.CodeOf(err))
		}
		s.cfg.Slots.answered(inv.RequestID, code, out)
	}
	return out, err
}

// shed answers an invocation that was not admitted: the caller gave up, or it waited QueueTimeout.
// It never ran, so the caller may send it again.
func (s *Scheduler) shed(ctx context.Context, p *pool, inv bus.Invocation, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("waiting to run: %w", bus.ErrFunctionTimeout)
	}
	p.shed()
	if errors.Is(err, errQuarantined) {
		s.log.Warn("invocation shed: its function is in quarantine and its one place is taken", "function", inv.Function, "request_id", inv.RequestID)
		return fmt.Errorf("waited %s to run: %w: %w", s.cfg.QueueTimeout, errQuarantined, bus.ErrThrottled)
	}
	if errors.Is(err, errOverShare) {
		s.log.Warn("invocation shed: its function holds more than its share of the worker", "function", inv.Function, "request_id", inv.RequestID)
		return fmt.Errorf("waited %s to run: %w", s.cfg.QueueTimeout, bus.ErrThrottled)
	}
	s.log.Warn("invocation shed: the worker is out of capacity", "function", inv.Function, "request_id", inv.RequestID)
	return fmt.Errorf("waited %s to run: %w", s.cfg.QueueTimeout, bus.ErrOverloaded)
}

// outcome turns what an instance returned into what the bus carries.
// A failure of the function's own (an error, a crash, a timeout) is also written to the function's
// logs, as Lambda writes it, so that `gatehouse logs` shows why an invocation failed.
func (s *Scheduler) outcome(p *pool, inv bus.Invocation, logs *invocationLog, out []byte, err error) ([]byte, error) {
	if err == nil {
		return out, nil
	}
	s.log.Warn("invocation failed", "function", inv.Function, "request_id", inv.RequestID, "err", err)
	var sentinel error
	switch {
	case errors.Is(err, runtimes.ErrResponseTooLarge):
		sentinel = bus.ErrResponseTooLarge
	case errors.Is(err, runtimes.ErrTimeout):
		sentinel = bus.ErrFunctionTimeout
	case errors.Is(err, runtimes.ErrMemoryBudget):
		return nil, bus.ErrOverloaded
	case errors.Is(err, runtimes.ErrFunction), errors.Is(err, runtimes.ErrTrap), errors.Is(err, runtimes.ErrCallDepth):
		sentinel = bus.ErrFunctionError
	default:
		return nil, bus.ErrInternal
	}
	f := failureOf(err, p.fn.Timeout)
	failed := newInvocationFailure(sentinel, f)
	logs.mu.Lock()
	logs.startLocked()
	logs.record("stderr", failed.Error(), time.Now())
	logs.mu.Unlock()
	return nil, failed
}

// reapLoop closes idle instances past their function's idle timeout and retired versions past
// RetireAfter, every reapInterval, until ctx ends.
func (s *Scheduler) reapLoop(ctx context.Context) {
	t := time.NewTicker(reapInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			s.reap(ctx, now)
		}
	}
}

func (s *Scheduler) reap(ctx context.Context, now time.Time) {
	s.mu.RLock()
	pools := slices.Collect(maps.Values(s.pools))
	s.mu.RUnlock()
	for _, p := range pools {
		if n := p.reap(ctx, now, s.cfg.RetireAfter); n > 0 {
			s.log.Debug("reaped idle instances", "function", p.fn.Name, "version", p.fn.versionLabel(), "count", n)
		}
		if !p.isLive() {
			s.mu.Lock()
			closed := s.pools[p.fn.key()] == p && p.closeIfUnused(now, s.cfg.RetireAfter)
			if closed {
				delete(s.pools, p.fn.key())
			}
			s.mu.Unlock()
			if closed {
				p.mod.Close(ctx)
				s.log.Info("closed a retired function version", "function", p.fn.Name, "version", p.fn.versionLabel())
			}
			continue
		}
		// Instances that crashed were discarded: start new ones up to minWarm.
		if err := p.prewarm(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("keeping instances warm", "function", p.fn.Name, "err", err)
		}
	}
}

// Loaded lists the versions the scheduler has loaded, as "name:version" (name alone for a
// function without an id), sorted, live or not.
func (s *Scheduler) Loaded() []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]string, 0, len(s.pools))
	for _, p := range s.pools {
		label := p.fn.Name
		if p.fn.ID != "" {
			label += ":" + strconv.Itoa(p.fn.Version)
		}
		out = append(out, label)
	}
	slices.Sort(out)
	return out
}

const reapInterval = time.Second

// DefaultQueueTimeout is Config.QueueTimeout's default.
const DefaultQueueTimeout = time.Second

// InitTimeout bounds how long an invocation may take to get an instance (waiting for one or starting
// one, the guest's initialisation included) before its worker is treated as frozen, as a Lambda
// function's init phase is bounded to 10 s.
const InitTimeout = 10 * time.Second

// Stats returns each function's pool counters, summed over its versions.
func (s *Scheduler) Stats() map[string]bus.FunctionStats {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make(map[string]bus.FunctionStats, len(s.pools))
	now := time.Now()
	for _, p := range s.pools {
		st, sum := p.snapshot(), out[p.fn.Name]
		sum.Runtime = cmp.Or(p.fn.Runtime, spec.RuntimeWasm)
		sum.Invocations += st.Invocations
		sum.ColdStarts += st.ColdStarts
		sum.Errors += st.Errors
		sum.Idle += st.Idle
		sum.Busy += st.Busy
		sum.Shed += st.Shed
		sum.Quarantined = s.quarantine.held(p.fn.Name, now)
		sum.Outbound = s.outbound.snapshot(p.fn.Name)
		out[p.fn.Name] = sum
	}
	return out
}

// Close closes every pooled instance, compiled module and engine.
func (s *Scheduler) Close(ctx context.Context) {
	s.stop.Do(func() { close(s.quit) })
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range s.pools {
		p.close(ctx)
	}
	for _, e := range s.engines {
		e.Close(ctx)
	}
}

// interpreter finds runtime's interpreter, once per worker (a failure is looked for again).
func (s *Scheduler) interpreter(ctx context.Context, runtime string) (process.Interpreter, error) {
	s.interpMu.Lock()
	defer s.interpMu.Unlock()
	if in, ok := s.interpreters[runtime]; ok {
		return in, nil
	}
	in, err := process.FindInterpreter(ctx, runtime, exec.LookPath)
	if err != nil {
		return in, err
	}
	if s.interpreters == nil {
		s.interpreters = map[string]process.Interpreter{}
	}
	s.interpreters[runtime] = in
	return in, nil
}

// memoryUser is an instance that can say the most memory it has used, in bytes.
type memoryUser interface {
	MaxMemoryUsed() uint64
}

// report writes an invocation's END and REPORT lines, as Lambda writes them: the duration, the
// billed duration (rounded up to the millisecond), the memory size and the most used, and the init
// duration after a cold start. A warm invocation that wrote nothing and succeeded writes none (see
// invocationLog.start).
func (s *Scheduler) report(p *pool, inv bus.Invocation, sb sandbox, took time.Duration, failed bool) {
	if s.cfg.LogSink == nil || !failed && sb.initDuration == 0 && !sb.logs.hasLogged() {
		return
	}
	sb.logs.platform("END RequestId: " + inv.RequestID)
	ms := float64(took.Microseconds()) / 1000
	billed := (took + time.Millisecond - 1) / time.Millisecond
	line := fmt.Sprintf("REPORT RequestId: %s\tDuration: %.2f ms\tBilled Duration: %d ms\tMemory Size: %d MB", inv.RequestID, ms, billed, p.fn.MemoryMB)
	if m, ok := sb.inst.(memoryUser); ok {
		if used := m.MaxMemoryUsed(); used > 0 {
			line += fmt.Sprintf("\tMax Memory Used: %d MB", (used+1<<20-1)>>20)
		}
	}
	if sb.initDuration > 0 {
		// An instance started from a snapshot did not initialise: Lambda SnapStart's REPORT says
		// Restore Duration for it.
		what := "Init Duration"
		if r, ok := sb.inst.(restorable); ok && r.Restored() {
			what = "Restore Duration"
		}
		line += fmt.Sprintf("\t%s: %.2f ms", what, float64(sb.initDuration.Microseconds())/1000)
	}
	sb.logs.platform(line)
}

// restorable is an instance that may have started from a snapshot (runtimes.Instance).
type restorable interface{ Restored() bool }

// traceInvocation starts the span of an invocation that began at invoked, after waiting since
// received for its instance, with that wait (and the instance's start, after a cold start) as
// spans of their own; the caller ends it.
func (s *Scheduler) traceInvocation(inv bus.Invocation, p *pool, sb sandbox, received, invoked time.Time) trace.Span {
	parent := tracing.FromTraceParent(context.Background(), inv.TraceParent)
	ctx, span := s.cfg.Tracer.Start(parent, "invoke "+inv.Function, trace.WithSpanKind(trace.SpanKindServer), trace.WithTimestamp(received),
		trace.WithAttributes(attribute.String("faas.name", inv.Function), attribute.String("faas.version", p.fn.versionLabel()),
			attribute.String("faas.invocation_id", inv.RequestID), attribute.Bool("faas.coldstart", sb.initDuration > 0)))
	_, wait := s.cfg.Tracer.Start(ctx, "wait for an instance", trace.WithTimestamp(received))
	if sb.initDuration > 0 {
		_, cold := s.cfg.Tracer.Start(ctx, "cold start", trace.WithTimestamp(invoked.Add(-sb.initDuration)))
		cold.End(trace.WithTimestamp(invoked))
	}
	wait.End(trace.WithTimestamp(invoked))
	return span
}
