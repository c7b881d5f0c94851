package app

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/trace"

	"gatehouse.dev/gatehouse/connections"
	"gatehouse.dev/gatehouse/functions"
	"gatehouse.dev/gatehouse/internal/bus"
	"gatehouse.dev/gatehouse/internal/outbound"
	"gatehouse.dev/gatehouse/internal/spec"
	"gatehouse.dev/gatehouse/internal/tracing"
	"gatehouse.dev/gatehouse/runtimes"
	procrt "gatehouse.dev/gatehouse/runtimes/process"
	"gatehouse.dev/gatehouse/scheduler"
)

// Environment variables through which `up` hands bus credentials to its workers (never on the command
// line, where other users could read them).
const (
	envBusURL      = "GATEHOUSE_BUS_URL"
	envBusUser     = "GATEHOUSE_BUS_USER"
	envBusPassword = "GATEHOUSE_BUS_PASSWORD"
	// envBusCreds names a NATS credentials file, with an external NATS (up --nats-creds).
	envBusCreds = "GATEHOUSE_BUS_CREDS"
)

type workerOptions struct {
	id      string
	stack   string
	dataDir string
	slots   string
	// memoryMB bounds the guest memory the worker commits; 0 means no bound.
	memoryMB int
	// quarantineFor is scheduler.Config.QuarantineFor (0: its default).
	quarantineFor time.Duration
	// outboundCAFile is passed on from up's --outbound-ca-file.
	outboundCAFile string
	// gateway is the node's gateway address, for sandboxed process runtimes to reach; region and
	// accountID are the stack's.
	gateway, region, accountID string
	// traceEndpoint and traceRatio are up's --otlp-endpoint and --trace-ratio.
	traceEndpoint string
	traceRatio    float64
	// outboundMaxResponseMB is passed on from up's --outbound-max-response-mb.
	outboundMaxResponseMB int
	// standby makes the worker load everything and then wait, without taking invocations, until it
	// reads the id of the worker it replaces on standard input (see supervisor.standby).
	standby bool
	// node is the id of the node whose supervisor runs the worker.
	node   string
	stdin  io.Reader
	stdout io.Writer
	// inline runs the worker inside `up`'s own process (--worker-mode inline).
	inline bool
}

// runWorker is `gatehouse worker`: it loads the live function versions from the registry, serves
// invocations, follows the registry as versions are deployed, and on SIGTERM or SIGINT drains.
func runWorker(opts workerOptions, log *slog.Logger) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	log = log.With("worker", opts.id)

	client, err := bus.Connect(bus.ClientConfig{
		URL:         os.Getenv(envBusURL),
		Credentials: bus.Credentials{User: os.Getenv(envBusUser), Password: os.Getenv(envBusPassword), File: os.Getenv(envBusCreds)},
		Stack:       opts.stack,
		Node:        opts.node,
		Name:        "worker-" + opts.id,
		// The bus lives in the supervising process: when it is gone for good (5 s of failed reconnects),
		// so is this worker's purpose.
		OnClosed:      stop,
		MaxReconnects: 50,
		InboxPrefix:   bus.WorkerInboxPrefix,
	})
	if err != nil {
		return err
	}
	defer client.Close()
	return serveWorker(ctx, client, opts, log)
}

// serveWorker is a worker on client: it loads the live versions, serves invocations and follows
// the registry until ctx ends, then drains.
func serveWorker(ctx context.Context, client *bus.Client, opts workerOptions, log *slog.Logger) error {
	js, err := jetstream.New(client.Conn())
	if err != nil {
		return fmt.Errorf("bus: %w", err)
	}
	key, err := readSecretKey(opts.dataDir)
	if err != nil {
		return err
	}
	reg, err := functions.OpenRegistry(ctx, js, functions.RegistryConfig{Stack: opts.stack, SecretKey: key, Logger: log})
	if err != nil {
		return err
	}
	regCtx, cancelReg := context.WithCancel(context.Background())
	defer cancelReg()
	regDone := make(chan error, 1)
	go func() { regDone <- reg.Run(regCtx) }()
	select {
	case <-reg.Synced():
	case err := <-regDone:
		return err
	case <-ctx.Done():
		return nil
	}

	kv, err := js.KeyValue(ctx, kvBucket(opts.stack))
	if err != nil {
		return fmt.Errorf("key-value store: %w", err)
	}
	loader := &versionLoader{reg: reg}
	workerID := &atomic.Pointer[string]{}
	workerID.Store(&opts.id)
	// A turn per processor for guest code, and one processor more for the Go runtime: the bus, the
	// heartbeats and the collector always have one, even while every turn runs a guest between two
	// safepoints.
	// An inline worker shares `up`'s processors as they are: guests reach a safepoint often enough
	// for the gateway's goroutines to get a processor between two.
	turns := runtime.GOMAXPROCS(0)
	if !opts.inline {
		runtime.GOMAXPROCS(turns + 1)
	}
	// Process runtimes' packages and /tmp directories: this worker's own, emptied at start.
	workDir := filepath.Join(opts.dataDir, "run", "worker-"+opts.id)
	if err := os.RemoveAll(workDir); err != nil {
		return err
	}
	defer os.RemoveAll(workDir)
	out, err := outbound.New(outbound.Config{Resolver: outboundResolver(os.Getenv(envTestHosts)), CAFile: opts.outboundCAFile,
		MaxResponseBytes: int64(opts.outboundMaxResponseMB) << 20, Logger: log})
	if err != nil {
		return err
	}
	defer out.Close()
	tp, err := tracing.New(ctx, tracing.Config{Endpoint: opts.traceEndpoint, Ratio: opts.traceRatio, Service: "gatehouse-worker"})
	if err != nil {
		return err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = tp.Shutdown(sctx)
	}()
	cfg := scheduler.Config{Logger: log, Loader: loader.load, LogSink: newLogSink(client, opts.stack, workerID),
		Host: &workerHost{router: connections.NewRouter(client, "", nil), kv: kv, js: js, stack: opts.stack, outbound: out, tracer: workerTracer(tp)}, Parallelism: turns,
		WorkDir: workDir, GatewayAddr: opts.gateway, Region: opts.region, AccountID: opts.accountID,
		Tracer:        workerTracer(tp),
		Credentials:   functionCredentials(key, opts.stack),
		QuarantineFor: opts.quarantineFor}
	if opts.slots != "" {
		slots, err := scheduler.OpenSlots(opts.slots)
		if err != nil {
			return err
		}
		defer slots.Close()
		cfg.Slots = slots
	}
	rc := runtimes.Config{CacheDir: filepath.Join(opts.dataDir, "compile")}
	if opts.memoryMB > 0 {
		rc.Memory = runtimes.NewMemoryBudget(int64(opts.memoryMB) << 20)
	}
	if n := procrt.RemoveStaleCgroups(); n > 0 {
		log.Info("removed the cgroups of runtime processes of workers no longer running", "count", n)
	}
	sched, err := scheduler.New(cfg, rc)
	if err != nil {
		return err
	}
	// The live versions are loaded before the worker says it is ready.
	snap := reg.Snapshot()
	loader.sync(ctx, sched, snap, log)
	go func() {
		for {
			select {
			case <-snap.Replaced():
			case <-ctx.Done():
				return
			}
			snap = reg.Snapshot()
			loader.sync(ctx, sched, snap, log)
		}
	}()
	id := opts.id
	if opts.standby {
		fmt.Fprintln(opts.stdout, standbyReady)
		var ok bool
		if id, ok = awaitPromotion(ctx, opts.stdin); !ok {
			return nil
		}
		workerID.Store(&id)
		log = log.With("worker", id)
		// Loaded up to the newest snapshot before taking traffic, as a fresh worker is.
		loader.sync(ctx, sched, reg.Snapshot(), log)
	}
	return sched.Run(ctx, client, id)
}

// awaitPromotion waits for a standby worker's promotion: one line on r naming the worker it becomes.
// It reports false when r ends first or ctx is done.
func awaitPromotion(ctx context.Context, r io.Reader) (string, bool) {
	line := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(r)
		if sc.Scan() {
			line <- strings.TrimSpace(sc.Text())
		}
		close(line)
	}()
	select {
	case id, ok := <-line:
		return id, ok && bus.ValidToken(id) == nil
	case <-ctx.Done():
		return "", false
	}
}

// versionLoader turns registry versions into what the scheduler runs.
type versionLoader struct {
	reg *functions.Registry
}

// sync loads the live versions of snap and announces them loaded.
func (l *versionLoader) sync(ctx context.Context, sched *scheduler.Scheduler, snap *functions.Snapshot, log *slog.Logger) {
	start := time.Now()
	var live []scheduler.Function
	var errs []error
	for _, v := range snap.Live() {
		if sched.Has(v.Function, v.FunctionID, v.Version) {
			live = append(live, scheduler.Function{Name: v.Function, ID: v.FunctionID, Version: v.Version})
			continue
		}
		f, err := l.function(ctx, v)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		live = append(live, f)
	}
	if err := errors.Join(append(errs, sched.Sync(ctx, live))...); err != nil && ctx.Err() == nil {
		log.Error("loading function versions", "err", err)
	}
	sched.SetLoaded(snap.Revision())
	log.Debug("function versions loaded", "revision", snap.Revision(), "versions", len(live), "took", time.Since(start))
}

// load is the scheduler's Loader: a version called by number that is not live.
func (l *versionLoader) load(ctx context.Context, name, id string, version int) (scheduler.Function, error) {
	v, ok := l.reg.Snapshot().Version(name, version)
	if !ok || v.FunctionID != id {
		var err error
		if v, err = l.reg.Version(ctx, name, version); err != nil {
			return scheduler.Function{}, err
		}
	}
	if v.FunctionID != id {
		return scheduler.Function{}, fmt.Errorf("%s version %d: %w", name, version, functions.ErrNotFound)
	}
	return l.function(ctx, v)
}

// function reads v's module (checking its SHA-256) and secrets.
func (l *versionLoader) function(ctx context.Context, v functions.VersionRecord) (scheduler.Function, error) {
	wasm, err := l.reg.Module(ctx, v.ModuleSHA256)
	if err != nil {
		return scheduler.Function{}, err
	}
	m := v.Manifest
	timeout, err := time.ParseDuration(m.Timeout)
	if err != nil {
		return scheduler.Function{}, fmt.Errorf("%s version %d: timeout: %w", v.Function, v.Version, err)
	}
	idle, err := time.ParseDuration(m.IdleTimeout)
	if err != nil {
		return scheduler.Function{}, fmt.Errorf("%s version %d: idle timeout: %w", v.Function, v.Version, err)
	}
	env := maps.Clone(m.Environment)
	if v.SealedSecrets != nil {
		secrets, err := l.reg.OpenSecrets(v)
		if err != nil {
			return scheduler.Function{}, err
		}
		if env == nil {
			env = map[string]string{}
		}
		maps.Copy(env, secrets)
	}
	return scheduler.Function{Name: v.Function, ID: v.FunctionID, Version: v.Version, Wasm: wasm, MemoryMB: m.MemoryMB,
		Timeout: timeout, Env: env, MinWarm: m.MinWarm, IdleTimeout: idle, SnapStart: m.SnapStart,
		Outbound: spec.FunctionSettings{AllowedOutboundHosts: m.AllowedOutboundHosts}.OutboundHosts(),
		Publish:  m.AllowedPublishSubjects,
		Runtime:  m.Runtime, Handler: m.Handler, Isolation: m.Isolation}, nil
}

// workerTracer is the scheduler's tracer: nil when tracing is off, so invocations skip it.
func workerTracer(tp *tracing.Provider) trace.Tracer {
	if !tp.On() {
		return nil
	}
	return tp.Tracer("gatehouse.dev/gatehouse/scheduler")
}
