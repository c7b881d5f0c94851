package app

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	commands "gatehouse.dev/gatehouse/internal/cli"
	runtimeprocess "gatehouse.dev/gatehouse/runtimes/process"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel/trace"

	"gatehouse.dev/gatehouse/connections"
	"gatehouse.dev/gatehouse/functions"
	"gatehouse.dev/gatehouse/gateway"
	"gatehouse.dev/gatehouse/internal/accesslog"
	"gatehouse.dev/gatehouse/internal/admin"
	"gatehouse.dev/gatehouse/internal/apikeys"
	"gatehouse.dev/gatehouse/internal/apistore"
	"gatehouse.dev/gatehouse/internal/async"
	"gatehouse.dev/gatehouse/internal/awsapi"
	"gatehouse.dev/gatehouse/internal/bus"
	"gatehouse.dev/gatehouse/internal/jsopen"
	"gatehouse.dev/gatehouse/internal/logstream"
	"gatehouse.dev/gatehouse/internal/project"
	"gatehouse.dev/gatehouse/internal/sigv4"
	"gatehouse.dev/gatehouse/internal/spec"
	"gatehouse.dev/gatehouse/internal/stackfile"
	"gatehouse.dev/gatehouse/internal/tracing"
	"gatehouse.dev/gatehouse/runtimes"
	"gatehouse.dev/gatehouse/scheduler"
)

// Defaults of `gatehouse up`.
const (
	DefaultAddr      = "127.0.0.1:8080"
	DefaultAdminAddr = "127.0.0.1:8081"
	// DefaultAWSAddr is where `up` serves the AWS API: the port local-AWS tools are set up for.
	DefaultAWSAddr   = "127.0.0.1:4566"
	DefaultDataDir   = commands.DefaultDataDir
	DefaultWorkers   = 2
	DefaultStackFile = commands.DefaultStackFile
	// workerSlots is how many invocations one worker runs at once.
	workerSlots = 64
	// overrunGrace is how long an invocation may run past its function's timeout before its worker is
	// killed.
	overrunGrace = 250 * time.Millisecond
)

// workerEnv is what workers keep of up's environment: what a Go program and its profiling need, and
// the GATEHOUSE_TEST_ switches with which a test binary runs as the gatehouse command; nothing else.
// Above all not the @connections secret (GATEHOUSE_SECRET_ACCESS_KEY), admin tokens or cloud
// credentials: a worker runs guest code.
func workerEnv(environ []string) []string {
	var out []string
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		switch {
		case name == "PATH", name == "HOME", name == "TMPDIR", name == "TZ", name == "LANG",
			strings.HasPrefix(name, "LC_"), name == envCPUProfile, strings.HasPrefix(name, "GATEHOUSE_TEST_"),
			name == "GOGC", name == "GOMEMLIMIT", name == "GODEBUG", name == "GOTRACEBACK", name == "GOMAXPROCS":
			out = append(out, kv)
		}
	}
	return out
}

// isLoopback reports whether a listen address's host is a loopback address or localhost.
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// checkAdminAddr refuses an admin address beyond loopback unless public says it is meant.
func checkAdminAddr(addr string, public bool) error {
	if isLoopback(addr) || public {
		return nil
	}
	return fmt.Errorf("admin listener: %s is not a loopback address; the admin API manages tokens and deploys, so it listens on loopback (default %s) unless --admin-public says otherwise", addr, DefaultAdminAddr)
}

// defaultWorkerMemoryMB shares half of physical bytes among workers, at least 1 GiB each (2 GiB each
// when the machine's memory is unknown).
func defaultWorkerMemoryMB(physical int64, workers int) int {
	if physical <= 0 {
		return 2048
	}
	return max(1024, int(physical/2/int64(workers)>>20))
}

// Options configure a node started by [Start]: the flags of `gatehouse up`.
type Options struct {
	// StackFile is the stack's definition: a stack file, or a SAM or CloudFormation template.
	StackFile string
	// Parameters override a template's parameter defaults (--parameter-overrides).
	Parameters map[string]string
	// Stage is a serverless.yml's ${opt:stage} (--stage).
	Stage string
	// Watch reloads the node when the stack file or a function's source changes (--watch).
	Watch bool
	// TraceEndpoint is the OTLP collector spans go to (--otlp-endpoint, http://HOST:PORT or
	// grpc://HOST:PORT); "" traces nothing. TraceRatio is the share of new traces sampled
	// (--trace-ratio).
	TraceEndpoint string
	TraceRatio    float64
	Addr          string
	AdminAddr     string
	// AdminPublic allows an AdminAddr that is not a loopback address (--admin-public); `up` then
	// warns that the admin API has no TLS unless AdminTLS.
	AdminPublic bool
	// AdminTLS serves the admin API over HTTPS with the local CA's certificate (--admin-tls); the
	// CLI trusts that CA from the data directory.
	AdminTLS bool
	// AWSAddr is where the AWS API listens (--aws-addr, 127.0.0.1:4566 from the command line); ""
	// serves none. AWSPublic allows an address beyond loopback (--aws-public).
	AWSAddr   string
	AWSPublic bool
	// AWSTLS serves the AWS API over HTTPS with the local CA's certificate (--aws-tls): the AWS CLI
	// then takes --ca-bundle with the CA's file.
	AWSTLS bool
	// TLS serves the gateway over HTTPS too, on TLSAddr or DefaultTLSAddr (--tls); TLSAddr alone
	// (--tls-addr) turns it on as well. Certificates come from the stack's domains and the local
	// certificate authority, made once under the data directory.
	TLS     bool
	TLSAddr string
	// ACMECA is the ACME directory the domains with certificate: acme get theirs from
	// (--acme-ca, default Let's Encrypt); ACMEEmail the account's contact (--acme-email).
	ACMECA, ACMEEmail string
	// ACMECARoot is a PEM file of the roots the ACME directory's own HTTPS is checked with
	// (--acme-ca-root), for a private ACME CA; "" for the system's.
	ACMECARoot string
	DataDir    string
	Workers    int
	// WorkerMemoryMB bounds the guest memory each worker commits (the linear memories of all its
	// instances): past it, new instances are refused (503) and memory.grow fails. Default: half the
	// machine's memory shared among the workers, at least 1 GiB each (--worker-memory).
	WorkerMemoryMB int
	// QuarantineFor is how long a function that overran its timeout twice within a minute runs one
	// invocation at a time in each worker; default 5 minutes (--quarantine-for).
	QuarantineFor time.Duration
	// OutboundCAFile is a PEM file of extra roots the functions' outbound HTTPS requests trust
	// (--outbound-ca-file), for local test servers; "" trusts the system's only.
	OutboundCAFile string
	// OutboundMaxResponseMB bounds the body of each response to a function's outbound request
	// (--outbound-max-response-mb); 0: 6 MB.
	OutboundMaxResponseMB int
	// Standby keeps one more worker process loaded and following the registry, taking no traffic, to
	// replace a worker that exits at once (`up` keeps one unless --standby=false).
	Standby bool
	// WorkerMode is where guests run (--worker-mode): WorkerModeProcess (the default), in Workers
	// worker processes, or WorkerModeInline, in one worker inside this process.
	WorkerMode string
	// Stdout receives progress and the route list; Stderr the logs. Nil discards.
	Stdout, Stderr io.Writer
	// WorkerCommand is the executable (and leading arguments) that runs `gatehouse worker`; default this
	// process's own executable.
	WorkerCommand []string
	// WorkerEnv is added to the workers' environment.
	WorkerEnv []string
	// ReadyTimeout bounds the wait for workers at start; default 2 minutes.
	ReadyTimeout time.Duration
	// DrainTimeout bounds the wait for requests in flight at stop; default 30s.
	DrainTimeout time.Duration
	// AsyncConcurrency bounds the asynchronous invocations the node runs at once
	// (--async-concurrency); default 4 per CPU.
	AsyncConcurrency int
	// AsyncAckWait is how long an asynchronous invocation taken by a node that vanished waits before
	// another node runs it; default 30s.
	AsyncAckWait time.Duration

	// Cluster makes the node one of the cluster named so (--cluster): its embedded NATS server opens
	// routes to the nodes at Join (--join) and listens for theirs on ClusterListen (--cluster-listen),
	// and its JetStream is clustered. The cluster's secrets come from ClusterTokenFile
	// (--cluster-token-file), $GATEHOUSE_CLUSTER_TOKEN, or the data directory once it has them.
	Cluster, ClusterListen string
	Join                   []string
	ClusterTokenFile       string
	// NATSURL uses an external NATS (with JetStream) instead of an embedded server (--nats), with the
	// credentials file NATSCreds (--nats-creds).
	NATSURL, NATSCreds string
	// NATSWorkerCreds is the credentials file of the node's workers (--nats-worker-creds); default
	// NATSCreds. Workers run guest code: give them a user with only the worker permissions.
	NATSWorkerCreds string
	// Role is what the node does: RoleAll (default), RoleGateway or RoleWorker (--role).
	Role string
	// MigrateStore moves a store written by a single node into the cluster (--migrate-store): the
	// store is set aside, the node joins on an empty one, and once the cluster has a quorum the
	// stack's streams and buckets are copied in.
	MigrateStore bool
	// CutOff is how long a node of a cluster may go without seeing a quorum of the stored state's
	// servers before it stops serving (503, /healthz not ready); default 5s (--cutoff).
	CutOff time.Duration
}

// Node is a running stack: the bus, the workers, the gateway and the admin listener.
type Node struct {
	opts    Options
	log     *slog.Logger
	stack   *spec.Stack
	srv     *bus.Server
	control *bus.Client
	gw      *gateway.Server
	metrics *prometheus.Registry
	gwBus   *bus.Client
	// accessLogs writes the stages' access logs.
	accessLogs *accesslog.Writer
	// tracing exports the gateway's spans (nothing when tracing is off).
	tracing *tracing.Provider
	// dispatcher sends the gateway's invocations to workers.
	dispatcher *bus.Dispatcher
	// async queues and runs asynchronous invocations.
	async    *async.Queue
	admin    *admin.Server
	tokens   *admin.Tokens
	dataDir  string
	sup      *supervisor
	registry *functions.Registry
	apiStore *apistore.Store
	apis     *servedAPIs
	// reloadMu makes reloads of the stack file one at a time.
	reloadMu sync.Mutex
	// latest is the stack as last loaded (at start or by a reload that succeeded); stack stays the
	// one the node started with, whose iam and usage plans it runs.
	latest atomic.Pointer[spec.Stack]
	// interpreters are the process runtimes whose interpreter was found (interpreterFound).
	interpMu     sync.Mutex
	interpreters map[string]runtimeprocess.Interpreter
	// backgroundCtx ends when the node stops; cancelBackground ends it.
	backgroundCtx    context.Context
	cancelBackground context.CancelFunc
	logs             *logstream.Reader
	// nodeID names this node in its WebSocket connection ids; conns holds their records; router
	// performs @connections operations on any node's connections.
	nodeID  string
	conns   *connections.Store
	router  *connections.Router
	gwLocal *gatewayLocal
	audit   *admin.Audit
	apiKeys *apikeys.Store
	// cancelRegistry stops the registry's watch; registryDone is closed when it has stopped.
	cancelRegistry context.CancelFunc
	registryDone   chan struct{}

	gwLn, adminLn net.Listener
	// tls is the gateway's TLS listener; nil without one.
	tls *nodeTLS
	// awsLn and aws are the AWS API's listener and server; nil when it is off.
	awsLn net.Listener
	aws   *awsapi.Server
	// secretKey is the data directory's secret key.
	secretKey []byte
	// mode is modeSingle, modeCluster or modeExternal; busURL and busCreds are how this node's
	// processes reach the bus; clusterSecrets are the cluster's (nil on a single node).
	mode           string
	busURL         string
	busCreds       func(bus.Role) bus.Credentials
	clusterSecrets *clusterSecrets
	// cluster follows the other nodes, and this node's readiness.
	cluster       *clusterState
	cancelWorkers context.CancelFunc
	// inlineWG waits for the inline worker (--worker-mode inline); local joins it to the gateway's
	// dispatcher.
	inlineWG sync.WaitGroup
	local    *bus.Local
	serveWG  sync.WaitGroup

	readyMu sync.Mutex
	ready   map[string]bool
	// loaded holds the registry revision each worker has loaded, from its heartbeats: this node's
	// and, in a cluster, other nodes' workers seen in remoteSeen (last heartbeat).
	loaded     map[string]uint64
	remoteSeen map[string]time.Time
	// workersCh is closed and replaced whenever ready or loaded changes.
	workersCh chan struct{}
	// served is the registry view the gateway routes by (see servedView).
	served *servedView

	stopOnce sync.Once
	stopErr  error
}

func (o *Options) defaults() {
	if o.StackFile == "" {
		o.StackFile = DefaultStackFile
	}
	if o.Addr == "" {
		o.Addr = DefaultAddr
	}
	if o.AdminAddr == "" {
		o.AdminAddr = DefaultAdminAddr
	}
	if o.DataDir == "" {
		o.DataDir = DefaultDataDir
	}
	if o.Workers <= 0 {
		o.Workers = DefaultWorkers
	}
	if o.WorkerMode == "" {
		o.WorkerMode = WorkerModeProcess
	}
	if o.WorkerMemoryMB <= 0 {
		o.WorkerMemoryMB = defaultWorkerMemoryMB(physicalMemory(), o.Workers)
	}
	if o.Stdout == nil {
		o.Stdout = io.Discard
	}
	if o.Stderr == nil {
		o.Stderr = io.Discard
	}
	if len(o.WorkerCommand) == 0 {
		o.WorkerCommand = selfExecutable()
	}
	if o.ReadyTimeout == 0 {
		o.ReadyTimeout = 2 * time.Minute
	}
	if o.DrainTimeout == 0 {
		o.DrainTimeout = 30 * time.Second
	}
	if o.Role == "" {
		o.Role = RoleAll
	}
	if o.CutOff <= 0 {
		o.CutOff = 5 * time.Second
	}
}

// mode is how the node's bus is made: modeSingle, modeCluster or modeExternal.
func (o *Options) mode() string {
	switch {
	case o.NATSURL != "":
		return modeExternal
	case o.Cluster != "":
		return modeCluster
	}
	return modeSingle
}

// checkCluster checks the clustering options together.
func (o *Options) checkCluster() error {
	switch o.Role {
	case RoleAll, RoleGateway, RoleWorker:
	default:
		return fmt.Errorf("--role %q: want all, gateway or worker", o.Role)
	}
	switch o.WorkerMode {
	case "", WorkerModeProcess, WorkerModeInline:
	default:
		return fmt.Errorf("--worker-mode %q: want process or inline", o.WorkerMode)
	}
	switch o.mode() {
	case modeExternal:
		if o.Cluster != "" || o.ClusterListen != "" || len(o.Join) > 0 {
			return errors.New("--nats uses an external NATS: --cluster, --cluster-listen and --join are for embedded servers")
		}
	case modeCluster:
		if o.ClusterListen == "" || len(o.Join) == 0 {
			return errors.New("--cluster needs --cluster-listen HOST:PORT (this node's route listener) and --join HOST:PORT[,…] (the nodes' route listeners; this node's own may be in the list)")
		}
	default:
		if o.ClusterListen != "" || len(o.Join) > 0 || o.ClusterTokenFile != "" {
			return errors.New("--cluster-listen, --join and --cluster-token-file need --cluster NAME (or --nats URL, for --cluster-token-file)")
		}
		if o.Role != RoleAll {
			return errors.New("--role gateway or worker needs other nodes: --cluster or --nats")
		}
	}
	if (o.NATSCreds != "" || o.NATSWorkerCreds != "") && o.NATSURL == "" {
		return errors.New("--nats-creds and --nats-worker-creds need --nats URL")
	}
	return nil
}

// Start loads the stack file, builds and compiles its functions, and starts the bus, the workers, the
// gateway and the admin listener. It returns once every worker is ready and the listeners accept
// connections. On error, whatever was started is stopped.
func Start(ctx context.Context, opts Options) (_ *Node, err error) {
	opts.defaults()
	if err := opts.checkCluster(); err != nil {
		return nil, err
	}
	n := &Node{opts: opts, mode: opts.mode(), ready: map[string]bool{}, loaded: map[string]uint64{}, remoteSeen: map[string]time.Time{}, workersCh: make(chan struct{}), apis: newServedAPIs()}
	n.backgroundCtx, n.cancelBackground = context.WithCancel(context.Background())
	n.log = slog.New(slog.NewTextHandler(opts.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	defer func() {
		if err != nil {
			n.Stop(context.Background())
		}
	}()

	loaded, err := project.Load(opts.StackFile, project.Options{Parameters: opts.Parameters, Stage: opts.Stage})
	if err != nil {
		return nil, err
	}
	stack := loaded.Stack
	n.stack = stack
	n.latest.Store(stack)
	if loaded.Format != project.FormatStackFile {
		fmt.Fprintf(opts.Stdout, "read %s as a %s\n", opts.StackFile, loaded.Format)
	}
	for _, line := range loaded.Notices {
		fmt.Fprintf(opts.Stdout, "  not served: %s\n", line)
	}
	dataDir, err := filepath.Abs(opts.DataDir)
	if err != nil {
		return nil, err
	}
	n.dataDir = dataDir
	for _, d := range []string{"build", "compile", "run", "jetstream"} {
		if err := os.MkdirAll(filepath.Join(dataDir, d), 0o700); err != nil {
			return nil, fmt.Errorf("data directory: %w", err)
		}
	}
	if n.nodeID, err = connections.NodeID(dataDir); err != nil {
		return nil, err
	}
	if n.mode == modeCluster || n.mode == modeExternal && (opts.ClusterTokenFile != "" || os.Getenv(envClusterToken) != "" || fileExists(filepath.Join(dataDir, clusterFile))) {
		// On an external NATS the token is how nodes share the secret key and the admin token.
		if n.clusterSecrets, err = loadClusterSecrets(dataDir, opts.Cluster, opts.ClusterTokenFile); err != nil {
			return nil, err
		}
		if err := installClusterSecrets(dataDir, n.clusterSecrets); err != nil {
			return nil, err
		}
	}
	if opts.Role == RoleWorker {
		// A worker-only node serves no HTTP: its workers take the cluster's gateways' invocations.
		opts.AWSAddr, opts.TLS, opts.TLSAddr = "", false, ""
		n.opts = opts
	}
	bundles, err := n.prepareFunctions(ctx, stack, dataDir, opts.Stdout)
	if err != nil {
		return nil, err
	}

	// Listeners first, so a busy port fails fast before anything else starts.
	if opts.Role != RoleWorker {
		if n.gwLn, err = listenTCP(opts.Addr); err != nil {
			return nil, fmt.Errorf("gateway listener: %w (--addr changes it)", err)
		}
	}
	if opts.AWSAddr != "" && !opts.AWSPublic && !isLoopback(opts.AWSAddr) {
		return nil, fmt.Errorf("AWS API listener: %s is not a loopback address; the AWS API deploys and runs functions, so it listens on loopback (default 127.0.0.1:4566) unless --aws-public says otherwise", opts.AWSAddr)
	}
	if err := checkAdminAddr(opts.AdminAddr, opts.AdminPublic); err != nil {
		return nil, err
	}
	if n.adminLn, err = net.Listen("tcp", opts.AdminAddr); err != nil {
		return nil, fmt.Errorf("admin listener: %w (--admin-addr changes it)", err)
	}
	if opts.AWSAddr != "" {
		if n.awsLn, err = net.Listen("tcp", opts.AWSAddr); err != nil {
			return nil, fmt.Errorf("AWS API listener: %w (--aws-addr changes it)", err)
		}
	}
	if addr := tlsAddr(opts); addr != "" {
		if n.tls, err = n.listenTLS(addr, stack); err != nil {
			return nil, err
		}
	}
	if opts.AdminTLS {
		cfg, err := n.localTLSConfig()
		if err != nil {
			return nil, fmt.Errorf("admin listener: %w", err)
		}
		n.adminLn = tls.NewListener(n.adminLn, cfg)
	}
	if opts.AWSTLS && n.awsLn != nil {
		cfg, err := n.localTLSConfig()
		if err != nil {
			return nil, fmt.Errorf("AWS API listener: %w", err)
		}
		n.awsLn = tls.NewListener(n.awsLn, cfg)
	}
	if !isLoopback(opts.AdminAddr) && !opts.AdminTLS {
		n.log.Warn("the admin API is served beyond this machine WITHOUT TLS: tokens and deploys cross the network in the clear; put a TLS proxy in front of it",
			"addr", n.adminLn.Addr().String())
		fmt.Fprintf(opts.Stdout, "WARNING: the admin API listens on %s without TLS; put a TLS proxy in front of it\n", n.adminLn.Addr())
	}

	singleStore, err := n.setAsideSingleNodeStore()
	if err != nil {
		return nil, err
	}
	if err := n.startBus(stack); err != nil {
		return nil, err
	}
	if n.control, err = bus.Connect(bus.ClientConfig{URL: n.busURL, Credentials: n.busCreds(bus.RoleControl), Stack: stack.Name, Name: "control", Node: n.nodeID, InProcess: n.srv}); err != nil {
		return nil, err
	}
	n.cluster = newClusterState(n)
	stopSaying := func() {}
	if singleStore != "" {
		// Said from before the quorum forms: the nodes that form it wait for the copy.
		stopSaying = n.sayMigrating()
		defer stopSaying()
	}
	if err := n.waitJetStream(ctx); err != nil {
		return nil, err
	}
	if singleStore != "" {
		if err := n.migrateStore(ctx, singleStore); err != nil {
			return nil, err
		}
		stopSaying()
	} else if n.mode == modeCluster {
		if err := n.waitForMigrations(ctx); err != nil {
			return nil, err
		}
	}
	if _, err := n.control.Conn().Subscribe(n.control.Subjects().WorkerReady(), func(m *nats.Msg) { n.markReady(string(m.Data)) }); err != nil {
		return nil, fmt.Errorf("bus: %w", err)
	}
	if err := n.openTokens(ctx, dataDir); err != nil {
		return nil, err
	}
	n.metrics = newRegistry()
	wm := newWorkerMetrics(func() int { return n.WorkerRestarts() }, n.readyWorkers)
	n.metrics.MustRegister(wm)
	if _, err := n.control.Conn().Subscribe(n.control.Subjects().WorkerHeartbeat(), func(m *nats.Msg) {
		wm.onHeartbeat(m)
		n.onHeartbeat(m)
	}); err != nil {
		return nil, fmt.Errorf("bus: %w", err)
	}
	if err := n.control.Conn().Flush(); err != nil {
		return nil, fmt.Errorf("bus: %w", err)
	}

	if err := n.openRegistry(ctx, dataDir); err != nil {
		return nil, err
	}
	if _, err := n.deployStackFunctions(ctx, stack, bundles, opts.Stdout); err != nil {
		return nil, err
	}
	n.served = newServedView(n.registry)

	workerCreds := n.busCreds(bus.RoleWorker)
	slotsPath := func(id string) string { return filepath.Join(dataDir, "run", id+".slots") }
	if !scheduler.SlotsSupported {
		n.log.Warn("this system cannot map slot tables: a worker frozen where no safepoint reaches will not be replaced, and the invocations of a worker that dies are not told apart")
	}
	n.sup = &supervisor{
		command: opts.WorkerCommand,
		args: func(id, slots string) []string {
			args := []string{"worker", "--id", id, "--stack", stack.Name, "--data", dataDir,
				"--memory", strconv.Itoa(opts.WorkerMemoryMB), "--gateway", n.GatewayAddr(),
				"--region", stack.IAM.Region, "--account-id", stack.IAM.AccountID}
			// Always: the dispatcher tells this node's workers from other nodes' by it, and gives
			// up on a silent worker of another node after 1 s, on its own after 10 s.
			args = append(args, "--node", n.nodeID)
			if opts.TraceEndpoint != "" {
				args = append(args, "--otlp-endpoint", opts.TraceEndpoint, "--trace-ratio", strconv.FormatFloat(opts.TraceRatio, 'g', -1, 64))
			}
			if opts.QuarantineFor > 0 {
				args = append(args, "--quarantine-for", opts.QuarantineFor.String())
			}
			if opts.OutboundCAFile != "" {
				args = append(args, "--outbound-ca-file", opts.OutboundCAFile)
			}
			if opts.OutboundMaxResponseMB > 0 {
				args = append(args, "--outbound-max-response-mb", strconv.Itoa(opts.OutboundMaxResponseMB))
			}
			if slots != "" {
				args = append(args, "--slots", slots)
			}
			return args
		},
		standby:      opts.Standby && opts.Role != RoleGateway && opts.WorkerMode != WorkerModeInline,
		idSuffix:     n.workerSuffix(),
		slots:        workerSlots,
		overrunGrace: overrunGrace,
		slotsPath:    slotsPathIfSupported(slotsPath),
		env:          append(append(workerEnv(os.Environ()), opts.WorkerEnv...), busEnv(n.busURL, workerCreds)...),
		n:            n.workerProcesses(),
		grace:        opts.DrainTimeout,
		log:          n.log,
		stderr:       opts.Stderr,
		onExit:       n.workerExited,
	}
	workerCtx, cancel := context.WithCancel(context.Background())
	n.cancelWorkers = cancel
	if w := n.workerProcesses(); w > 0 {
		fmt.Fprintf(opts.Stdout, "starting %d workers …\n", w)
	} else if n.localWorkers() > 0 {
		fmt.Fprintln(opts.Stdout, "starting the inline worker …")
	}
	n.sup.start(workerCtx)
	if opts.WorkerMode == WorkerModeInline && opts.Role != RoleGateway {
		n.local = bus.NewLocal()
		n.startInlineWorker(workerCtx, stack, dataDir, workerCreds)
	}
	if err := n.waitReady(ctx, n.localWorkers(), opts.ReadyTimeout); err != nil {
		return nil, err
	}

	gwClient, err := bus.Connect(bus.ClientConfig{URL: n.busURL, Credentials: n.busCreds(bus.RoleGateway), Stack: stack.Name, Name: "gateway", Node: n.nodeID, InProcess: n.srv, Local: n.local})
	if err != nil {
		return nil, err
	}
	n.gwBus = gwClient
	// Invocations carry their version's timeout and concurrency limit, resolved per request.
	if n.dispatcher, err = gwClient.NewDispatcher(bus.DispatchConfig{OverrunGrace: overrunGrace,
		StartAllowance: scheduler.DefaultQueueTimeout + scheduler.InitTimeout, Logger: n.log}); err != nil {
		return nil, err
	}
	apis, err := n.publishAPIs(ctx)
	if err != nil {
		return nil, err
	}
	if err := n.openConnections(); err != nil {
		return nil, err
	}
	keys, err := accessKeys(stack)
	if err != nil {
		return nil, err
	}
	var madeKey *sigv4.Credentials
	if opts.AWSAddr != "" && len(keys) == 0 {
		// The AWS API needs a key to sign with: one of the stack's own, made once and kept.
		k, created, err := ensureAWSKey(dataDir)
		if err != nil {
			return nil, fmt.Errorf("AWS API access key: %w", err)
		}
		keys = append(keys, k)
		if created {
			madeKey = &k
		}
	}
	sig, err := verifier(stack, keys, functionCredentials(n.secretKey, stack.Name))
	if err != nil {
		return nil, err
	}
	n.tracing, err = tracing.New(ctx, tracing.Config{Endpoint: opts.TraceEndpoint, Ratio: opts.TraceRatio, Service: "gatehouse"})
	if err != nil {
		return nil, err
	}
	var tracer trace.Tracer
	if n.tracing.On() {
		tracer = n.tracing.Tracer("gatehouse.dev/gatehouse/gateway")
	}
	// Access logs: written off the request path; a log group's lines go to the stack's log stream.
	logPub := logstream.NewPublisher(n.control.Conn(), stack.Name)
	n.accessLogs = accesslog.New(accesslog.Config{Stdout: opts.Stdout, Metrics: n.metrics, Logger: n.log,
		Group: func(group string, line []byte) {
			logPub.Publish(logstream.Record{Time: time.Now(), Function: logstream.GroupSource(group), Stream: "access", Message: string(line)})
		}})
	n.serve(func() error { return n.accessLogs.Run(n.backgroundCtx) }, "access logs")
	// Integrations may reach any backend they name but the node's own control listeners.
	protected := []string{n.adminLn.Addr().String()}
	if n.srv != nil {
		protected = append(protected, strings.TrimPrefix(n.srv.ClientURL(), "nats://"))
	}
	if n.awsLn != nil {
		protected = append(protected, n.awsLn.Addr().String())
	}
	n.gw, err = gateway.New(gateway.Config{APIs: apis, Logger: n.log, Metrics: n.metrics, Resolver: n.served, ProtectedAddrs: protected,
		NodeID: n.nodeID, Connections: n.conns, Management: n.router, Verifier: sig,
		APIKeys: n.apiKeys, UsagePlans: gateway.UsagePlansFromSpec(stack.UsagePlans),
		Region: stack.IAM.Region, AccountID: stack.IAM.AccountID, AccessLogs: accessLogAdapter{n.accessLogs}, Tracer: tracer,
		Domains: n.domainsFor(stack), ACMEChallenges: n.acmeChallenges(), CutOff: n.cluster.cutOff, Enqueue: n.enqueue}, n.dispatcher)
	if err != nil {
		return nil, err
	}
	if n.gwLocal != nil {
		n.gwLocal.gw = n.gw
	}
	if err := n.router.Serve(); err != nil {
		return nil, err
	}
	n.serve(func() error { n.followAPIs(n.backgroundCtx); return nil }, "API definitions")
	n.serve(func() error { n.served.run(n.backgroundCtx, n.workerState); return nil }, "served registry view")
	n.serve(func() error { return n.apiKeys.Run(n.backgroundCtx) }, "API keys")
	n.serve(func() error { n.tokens.Run(n.backgroundCtx); return nil }, "admin tokens' view")
	if err := n.openAsync(ctx, stack); err != nil {
		return nil, err
	}
	n.admin, err = admin.NewServer(admin.Config{
		Tokens:      n.tokens,
		Health:      n.health,
		Metrics:     promhttp.HandlerFor(n.metrics, promhttp.HandlerOpts{}),
		Logger:      n.log,
		Registry:    n.registry,
		Check:       n.checkBundle,
		Activate:    n.activate,
		Applied:     n.applied,
		Invoke:      n.invoke,
		Enqueue:     n.enqueueNew,
		Queues:      n.queues,
		Redrive:     n.redrive,
		Schedules:   n.schedules,
		Publish:     n.publish,
		Logs:        adminLogs{n.logs},
		Audit:       n.audit,
		Connections: adminConnections{Router: n.router, gw: n.gw, cluster: n.cluster, log: n.log},
		APIKeys:     n.apiKeys,
		UsagePlans:  usagePlanNames(stack),
		APIs:        n.apiStore,
		APIsApplied: n.apis.wait,
		Reload:      n.Reload,
		Cluster:     n.clusterStatus,
	})
	if err != nil {
		return nil, err
	}
	if err := writeAdminAddress(dataDir, n.adminURL()); err != nil {
		return nil, err
	}
	if n.awsLn != nil {
		js, err := n.jetStream()
		if err != nil {
			return nil, fmt.Errorf("bus: %w", err)
		}
		roles, err := awsapi.OpenRoleStore(ctx, js, stack.Name)
		if err != nil {
			return nil, err
		}
		resources, err := awsapi.OpenAPIResources(ctx, js, stack.Name)
		if err != nil {
			return nil, err
		}
		apis := &awsapi.APIStore{Store: n.apiStore, Stack: stack.Name, Resources: resources, Applied: n.apis.wait,
			GatewayURL: "http://" + n.GatewayAddr(), Env: n.apiEnv}
		n.aws, err = awsapi.New(awsapi.Config{Roles: roles, APIs: apis, Keys: keys, Region: stack.IAM.Region, AccountID: stack.IAM.AccountID, Registry: n.registry,
			Check: n.checkBundle, Activate: n.activate, Applied: n.applied, Invoke: n.invokeAs, NewRequestID: gateway.NewRequestID, Enqueue: n.enqueue,
			Logs: adminLogs{n.logs}, Audit: n.audit.Record, Logger: n.log.With("component", "aws")})
		if err != nil {
			return nil, err
		}
	}
	if n.gwLn != nil {
		n.serve(func() error { return n.gw.Serve(n.gwLn) }, "gateway")
	}
	n.serve(func() error { n.cluster.run(n.backgroundCtx); return nil }, "cluster status")
	if n.tls != nil {
		n.serveTLS(n.backgroundCtx)
	}
	n.serve(func() error { return n.admin.Serve(n.adminLn) }, "admin")
	if n.aws != nil {
		n.serve(func() error { return n.aws.Serve(n.awsLn) }, "aws api")
	}

	fmt.Fprintf(opts.Stdout, "\nGatehouse is up: stack %q\n", stack.Name)
	if n.mode != modeSingle {
		fmt.Fprintf(opts.Stdout, "node %s (%s), %s\n", n.nodeID, opts.Role, n.clusterLine())
	}
	if n.gwLn != nil {
		base := "http://" + n.gwLn.Addr().String()
		for _, line := range n.gw.RouteURLs(base) {
			fmt.Fprintln(opts.Stdout, "  "+line)
		}
	}
	if n.tls != nil {
		fmt.Fprintf(opts.Stdout, "https: https://%s (every route above, over TLS", n.tls.ln.Addr())
		if n.tls.ca != nil {
			fmt.Fprintf(opts.Stdout, "; certificates from the local CA %s, which `gatehouse ca trust` shows how to trust", n.tls.ca.CertPath())
		}
		fmt.Fprintln(opts.Stdout, ")")
	}
	for _, name := range slices.Sorted(maps.Keys(stack.Domains)) {
		fmt.Fprintf(opts.Stdout, "domain %s: %s\n", name, domainMappings(stack.Domains[name]))
	}
	fmt.Fprintf(opts.Stdout, "admin: %s/healthz and /metrics\n", n.adminURL())
	if n.awsLn != nil {
		if opts.AWSTLS {
			ca := filepath.Join(dataDir, caDir, "ca.pem")
			fmt.Fprintf(opts.Stdout, "aws: https://%s (aws --endpoint-url https://%s --ca-bundle %s lambda list-functions)\n", n.awsLn.Addr(), n.awsLn.Addr(), ca)
		} else {
			fmt.Fprintf(opts.Stdout, "aws: http://%s (aws --endpoint-url http://%s lambda list-functions)\n", n.awsLn.Addr(), n.awsLn.Addr())
		}
		if madeKey != nil {
			// Shown once, when made; it stays in the data directory (mode 0600).
			fmt.Fprintf(opts.Stdout, "  made an access key for the AWS API (kept in %s):\n", filepath.Join(dataDir, awsKeyFile))
			fmt.Fprintf(opts.Stdout, "    aws configure set aws_access_key_id %s\n    aws configure set aws_secret_access_key %s\n    aws configure set region %s\n",
				madeKey.AccessKeyID, madeKey.SecretAccessKey, stack.IAM.Region)
		}
	}
	if opts.Watch {
		n.serve(func() error { return n.watch(n.backgroundCtx, opts.Stdout) }, "watch mode")
	}
	return n, nil
}

func (n *Node) serve(run func() error, what string) {
	n.serveWG.Add(1)
	go func() {
		defer n.serveWG.Done()
		if err := run(); err != nil && !errors.Is(err, net.ErrClosed) {
			n.log.Error(what+" stopped", "err", err)
		}
	}()
}

// prepareFunctions builds Go functions to wasm (cached by content hash), compiles every module once so
// its ABI is checked before anything starts (and workers find it in the compilation cache), and returns
// each as a bundle to deploy.
func (n *Node) prepareFunctions(ctx context.Context, stack *spec.Stack, dataDir string, out io.Writer) ([]*functions.Bundle, error) {
	names := make([]string, 0, len(stack.Functions))
	for name := range stack.Functions {
		names = append(names, name)
	}
	sort.Strings(names)
	if len(names) == 0 {
		return nil, nil
	}
	builder, err := functions.NewBuilder(functions.BuildConfig{
		CacheDir:      filepath.Join(dataDir, "build"),
		SDK:           runtimes.GoSDKSource(),
		SDKImportPath: runtimes.SDKImportPath,
		SDKRequires:   runtimes.GoSDKRequires(),
		Progress:      out,
	})
	if err != nil {
		return nil, err
	}
	fmt.Fprintln(out, "functions:")
	var bundles []*functions.Bundle
	for _, name := range names {
		fn := stack.Functions[name]
		where := stackfile.Where(stack.File, fn.Line, fn.Column, "functions."+name)
		if spec.IsProcessRuntime(fn.Runtime) {
			b, err := n.processBundle(ctx, filepath.Join(dataDir, "build"), name, fn)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", where, err)
			}
			fmt.Fprintf(out, "  %-16s %s package ready (%s)\n", name, fn.Runtime, functions.FormatBytes(int64(len(b.Module))))
			bundles = append(bundles, b)
			continue
		}
		path := fn.Source
		if fn.Kind == spec.SourceGo {
			if path, err = builder.Build(ctx, name, fn.Source); err != nil {
				return nil, fmt.Errorf("%s: %w", stackfile.Where(stack.File, fn.Line, fn.Column, "functions."+name), err)
			}
		}
		wasm, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("function %s: %w", name, err)
		}
		m := functions.SpecManifest(name, fn)
		if err := m.Validate(); err != nil {
			return nil, fmt.Errorf("%s: %w", stackfile.Where(stack.File, fn.Line, fn.Column, "functions."+name), err)
		}
		sum := sha256.Sum256(wasm)
		b := &functions.Bundle{Manifest: m, Module: wasm, SHA256: hex.EncodeToString(sum[:])}
		start := time.Now()
		abi, err := checkModule(ctx, filepath.Join(dataDir, "compile"), b)
		if err != nil {
			return nil, fmt.Errorf("%s (%s): %w", stackfile.Where(stack.File, fn.Line, fn.Column, "functions."+name), path, err)
		}
		fmt.Fprintf(out, "  %-16s %s module ready in %s\n", name, abi, time.Since(start).Round(time.Millisecond))
		bundles = append(bundles, b)
	}
	return bundles, nil
}

// processBundle makes the bundle of a process runtime's function: its package (the source directory
// zipped, or the .zip as it is), once its interpreter is known to be installed.
func (n *Node) processBundle(ctx context.Context, buildDir, name string, fn spec.Function) (*functions.Bundle, error) {
	if err := n.interpreterFound(ctx, fn.Runtime); err != nil {
		return nil, err
	}
	var pkg []byte
	var err error
	switch {
	case fn.Kind == spec.SourceZip:
		pkg, err = os.ReadFile(fn.Source)
	case needsBootstrapBuild(fn):
		var dir string
		if dir, err = buildBootstrap(ctx, buildDir, name, fn.Source); err == nil {
			pkg, err = functions.ZipPackage(dir)
		}
	default:
		pkg, err = functions.ZipPackage(fn.Source)
	}
	if err != nil {
		return nil, fmt.Errorf("the package: %w", err)
	}
	m := functions.SpecManifest(name, fn)
	if err := m.Validate(); err != nil {
		return nil, err
	}
	sum := sha256.Sum256(pkg)
	return &functions.Bundle{Manifest: m, Module: pkg, SHA256: hex.EncodeToString(sum[:])}, nil
}

// interpreterFound checks that the machine has an interpreter for runtime, once per runtime while
// the node runs (a probe runs the interpreter, which takes a third of a second behind a version
// manager's shim: too long to repeat on every save in watch mode). A missing one is looked for
// again each time.
func (n *Node) interpreterFound(ctx context.Context, runtime string) error {
	_, err := n.interpreter(ctx, runtime)
	return err
}

// interpreter is the interpreter of a process runtime (the zero Interpreter for provided ones),
// found once per runtime while the node runs.
func (n *Node) interpreter(ctx context.Context, runtime string) (runtimeprocess.Interpreter, error) {
	n.interpMu.Lock()
	defer n.interpMu.Unlock()
	if in, ok := n.interpreters[runtime]; ok {
		return in, nil
	}
	in, err := runtimeprocess.FindInterpreter(ctx, runtime, exec.LookPath)
	if err != nil {
		return in, err
	}
	if n.interpreters == nil {
		n.interpreters = map[string]runtimeprocess.Interpreter{}
	}
	n.interpreters[runtime] = in
	return in, nil
}

// needsBootstrapBuild reports whether fn is a provided runtime's directory of Go source with no
// bootstrap yet: as `sam build` does for Go handlers, Gatehouse builds the bootstrap itself.
func needsBootstrapBuild(fn spec.Function) bool {
	if !strings.HasPrefix(fn.Runtime, "provided") || fn.Kind != spec.SourceGo {
		return false
	}
	if _, err := os.Stat(filepath.Join(fn.Source, "bootstrap")); err == nil {
		return false
	}
	gofiles, _ := filepath.Glob(filepath.Join(fn.Source, "*.go"))
	return len(gofiles) > 0
}

// buildBootstrap builds the Go program in src as a Lambda bootstrap for this machine's Linux
// (static, -tags lambda.norpc, reproducible, so the same source makes the same package) into a
// directory of its own under buildDir, which it returns.
func buildBootstrap(ctx context.Context, buildDir, name, src string) (string, error) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("building the bootstrap of Go source in %s needs the go command on PATH (or put a built bootstrap there)", src)
	}
	out := filepath.Join(buildDir, "bootstrap", name)
	if err := os.MkdirAll(out, 0o700); err != nil {
		return "", err
	}
	cmd := exec.CommandContext(ctx, gobin, "build", "-o", filepath.Join(out, "bootstrap"), "-tags", "lambda.norpc", "-trimpath", "-buildvcs=false", "-ldflags=-s -w", ".")
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "GOOS=linux", "CGO_ENABLED=0")
	if msg, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build of the bootstrap in %s: %w\n%s", src, err, strings.TrimSpace(string(msg)))
	}
	return out, nil
}

// checkModule compiles a bundle's module as workers will (same memory limit, same cache), which checks
// its ABI and imports and leaves it in the compilation cache, and returns its ABI.
func checkModule(ctx context.Context, cacheDir string, b *functions.Bundle) (runtimes.ABI, error) {
	engine, err := runtimes.NewEngine(ctx, runtimes.Config{CacheDir: cacheDir, MemoryLimitMB: b.Manifest.MemoryMB})
	if err != nil {
		return 0, err
	}
	defer engine.Close(ctx)
	mod, err := engine.Compile(ctx, b.Module)
	if err != nil {
		return 0, err
	}
	defer mod.Close(ctx)
	if want := b.Manifest.ABI; want != "" && mod.ABI().String() != want {
		return 0, fmt.Errorf("the manifest says abi: %s, but the module is a %s module: %w", want, mod.ABI(), runtimes.ErrABI)
	}
	return mod.ABI(), nil
}

// openRegistry opens the stack's function registry in the embedded JetStream, with the data
// directory's secret key, and keeps its snapshot until Stop.
func (n *Node) openRegistry(ctx context.Context, dataDir string) error {
	key, err := ensureSecretKey(dataDir)
	if err != nil {
		return err
	}
	n.secretKey = key
	if err := n.checkSecretKey(ctx); err != nil {
		return err
	}
	js, err := n.jetStream()
	if err != nil {
		return fmt.Errorf("bus: %w", err)
	}
	if n.registry, err = functions.OpenRegistry(ctx, js, functions.RegistryConfig{Stack: n.stack.Name, SecretKey: key, Logger: n.log}); err != nil {
		return err
	}
	if err := logstream.Ensure(ctx, js, n.stack.Name, logstream.Limits{}); err != nil {
		return err
	}
	if err := ensureKV(ctx, js, n.stack.Name); err != nil {
		return err
	}
	if n.apiKeys, err = apikeys.Open(ctx, js, apikeys.Config{Stack: n.stack.Name, Logger: n.log}); err != nil {
		return err
	}
	n.logs = logstream.NewReader(js, n.stack.Name)
	if n.audit, err = admin.OpenAudit(ctx, js, n.stack.Name); err != nil {
		return err
	}
	if added, err := n.audit.Reconcile(ctx, n.registry); err != nil {
		n.log.Warn("completing the audit log from the version records", "err", err)
	} else if added > 0 {
		n.log.Warn("the audit log lacked deploys (a node stopped between storing a version and recording it): added them from the version records", "entries", added)
	}
	runCtx, cancel := context.WithCancel(context.Background())
	n.cancelRegistry, n.registryDone = cancel, make(chan struct{})
	runErr := make(chan error, 1)
	go func() {
		defer close(n.registryDone)
		if err := n.registry.Run(runCtx); err != nil {
			n.log.Error("function registry watch stopped", "err", err)
			runErr <- err
		}
	}()
	select {
	case <-n.registry.Synced():
		return nil
	case err := <-runErr:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// deployStackFunctions publishes the stack file's functions through the registry, as a deploy does,
// when they changed since the stack file last deployed them: a restart with the same stack file
// deploys nothing, and leaves the versions deployed since (with `gatehouse deploy`) as they are. What
// the stack file last deployed is recorded in JetStream with compare-and-set, not in a node's data
// directory: the nodes of a cluster that start together deploy each function once (the registry
// gives an identical bundle published at once one version), and a node that joins later does not
// deploy the stack file's bundle over a newer version.
func (n *Node) deployStackFunctions(ctx context.Context, stack *spec.Stack, bundles []*functions.Bundle, out io.Writer) (deployed []string, err error) {
	if len(bundles) == 0 {
		return nil, nil
	}
	rec, err := n.openStackDeploys(ctx)
	if err != nil {
		return nil, err
	}
	last, _, err := rec.read(ctx)
	if err != nil {
		return nil, err
	}
	snap := n.registry.Snapshot()
	for _, b := range bundles {
		name := b.Manifest.Name
		digest := bundleDigest(b)
		if d, ok := last.Functions[name]; ok && d.Digest == digest {
			f, fok := snap.Function(name)
			if v, vok := snap.Version(name, d.Version); fok && vok && v.FunctionID == d.FunctionID {
				fmt.Fprintf(out, "  %-16s version %d (unchanged; newest version %d)\n", name, d.Version, f.LatestVersion)
				continue
			}
		}
		var v functions.VersionRecord
		var created bool
		// Nodes that start together publish while the cluster's streams elect their leaders: a
		// publish that timed out or found no one answering is sent again (a publish of the same
		// bundle is idempotent: it gives the version already made).
		err := retryTransient(ctx, func() (err error) {
			v, created, err = n.registry.Publish(ctx, b, functions.PublishOptions{Description: "from " + filepath.Base(stack.File)})
			return err
		})
		if err != nil {
			return deployed, fmt.Errorf("deploying function %s: %w", name, err)
		}
		state := "unchanged"
		if created {
			state = "deployed"
			deployed = append(deployed, name)
		}
		fmt.Fprintf(out, "  %-16s version %d (%s)\n", name, v.Version, state)
		// The gateway resolves on this node's snapshot: it must show the version before traffic.
		if _, err := n.registry.WaitFor(ctx, func(s *functions.Snapshot) bool {
			f, ok := s.Function(v.Function)
			return ok && f.LatestVersion >= v.Version
		}); err != nil {
			return deployed, err
		}
		if err := rec.set(ctx, name, stackDeploy{Digest: digest, FunctionID: v.FunctionID, Version: v.Version}); err != nil {
			return deployed, err
		}
	}
	return deployed, nil
}

// stackDeploysFile, in the data directory, is where nodes before the JetStream record kept what the
// stack file last deployed: read once, when the record does not exist yet.
const stackDeploysFile = "stack-deploys.json"

// stackDeploysKey is the record's key in the stack's state bucket.
const stackDeploysKey = "stack-deploys"

// stateBucket is the stack's bucket of small records about the stack itself.
func stateBucket(stack string) string { return "gh_" + stack + "_state" }

type stackDeploys struct {
	Version   int                    `json:"version"`
	Functions map[string]stackDeploy `json:"functions"`
}

type stackDeploy struct {
	Digest     string `json:"digest"`
	FunctionID string `json:"functionId"`
	Version    int    `json:"version"`
}

// stackDeploysRecord reads and updates the record of what the stack file last deployed.
type stackDeploysRecord struct {
	kv     jetstream.KeyValue
	legacy string
}

func (n *Node) openStackDeploys(ctx context.Context) (*stackDeploysRecord, error) {
	js, err := n.jetStream()
	if err != nil {
		return nil, err
	}
	kv, err := jsopen.KeyValue(ctx, js, jetstream.KeyValueConfig{Bucket: stateBucket(n.stack.Name),
		Description: "Gatehouse records of stack " + n.stack.Name, History: 1, Storage: jetstream.FileStorage})
	if err != nil {
		return nil, err
	}
	return &stackDeploysRecord{kv: kv, legacy: filepath.Join(n.dataDir, stackDeploysFile)}, nil
}

// read returns the record and its revision (0 when it does not exist yet: then the data directory's
// file, if any).
func (r *stackDeploysRecord) read(ctx context.Context) (stackDeploys, uint64, error) {
	d := stackDeploys{Version: 1, Functions: map[string]stackDeploy{}}
	e, err := r.kv.Get(ctx, stackDeploysKey)
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
		if b, err := os.ReadFile(r.legacy); err == nil && json.Unmarshal(b, &d) == nil && d.Version == 1 && d.Functions != nil {
			return d, 0, nil
		}
		return stackDeploys{Version: 1, Functions: map[string]stackDeploy{}}, 0, nil
	case err != nil:
		return d, 0, fmt.Errorf("reading what the stack file deployed: %w", err)
	}
	if json.Unmarshal(e.Value(), &d) != nil || d.Version != 1 || d.Functions == nil {
		// Only an optimisation: without it, up deploys the stack's functions again.
		d = stackDeploys{Version: 1, Functions: map[string]stackDeploy{}}
	}
	return d, e.Revision(), nil
}

// set records that the stack file deployed d for function, with compare-and-set against other nodes
// doing the same.
func (r *stackDeploysRecord) set(ctx context.Context, function string, d stackDeploy) error {
	deadline := time.Now().Add(startupRetryWait)
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			if time.Now().After(deadline) {
				return errors.New("recording what the stack file deployed: too many nodes writing at once")
			}
			// Nodes that lost a race at once retry at different times.
			if err := sleepCtx(ctx, time.Duration(10+rand.IntN(40*min(attempt, 10)))*time.Millisecond); err != nil {
				return err
			}
		}
		cur, rev, err := r.read(ctx)
		if jsopen.Transient(err) {
			continue
		}
		if err != nil {
			return err
		}
		cur.Functions[function] = d
		b, _ := json.Marshal(cur)
		if rev == 0 {
			_, err = r.kv.Create(ctx, stackDeploysKey, b)
		} else {
			_, err = r.kv.Update(ctx, stackDeploysKey, b, rev)
		}
		if err == nil {
			return nil
		}
		var api *jetstream.APIError
		lost := errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch) ||
			errors.As(err, &api) && (api.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence || api.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant)
		if !lost && !jsopen.Transient(err) {
			return fmt.Errorf("recording what the stack file deployed: %w", err)
		}
	}
}

// startupRetryWait bounds how long a node that starts keeps retrying what a forming cluster may
// refuse for a moment: a stack file publish, the record of what it deployed.
const startupRetryWait = 30 * time.Second

// retryTransient calls call again while a forming cluster refuses it for a moment (jsopen.Retry),
// for at most startupRetryWait.
func retryTransient(ctx context.Context, call func() error, also ...func(error) bool) error {
	return jsopen.Retry(ctx, startupRetryWait, call, also...)
}

// sleepCtx waits d, or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// bundleDigest identifies a stack file function's bundle: its module and its manifest.
func bundleDigest(b *functions.Bundle) string {
	m, _ := json.Marshal(b.Manifest)
	h := sha256.New()
	h.Write([]byte(b.SHA256))
	h.Write(m)
	return hex.EncodeToString(h.Sum(nil))
}

// onHeartbeat keeps the registry revision each worker has loaded.
func (n *Node) onHeartbeat(m *nats.Msg) {
	var hb bus.Heartbeat
	if json.Unmarshal(m.Data, &hb) != nil {
		return
	}
	n.readyMu.Lock()
	defer n.readyMu.Unlock()
	changed := false
	if !n.isLocalWorker(hb.Worker) {
		// Another node's worker: a deploy waits for it too, while it beats (and is not leaving).
		if hb.Leaving {
			if _, ok := n.remoteSeen[hb.Worker]; ok {
				delete(n.remoteSeen, hb.Worker)
				delete(n.loaded, hb.Worker)
				n.workersChanged()
			}
			return
		}
		if _, ok := n.remoteSeen[hb.Worker]; !ok {
			changed = true
		}
		n.remoteSeen[hb.Worker] = time.Now()
	}
	if n.loaded[hb.Worker] != hb.Loaded {
		n.loaded[hb.Worker] = hb.Loaded
		changed = true
	}
	if changed {
		n.workersChanged()
	}
}

// workersChanged wakes whoever waits for a change of the workers' readiness or loaded revisions.
// n.readyMu is held.
func (n *Node) workersChanged() {
	close(n.workersCh)
	n.workersCh = make(chan struct{})
}

// workerState returns the lowest registry revision a ready worker has loaded (ok false when no
// worker is ready), the number of ready workers, and a channel closed at the next change.
func (n *Node) workerState() (minLoaded uint64, ready int, changed <-chan struct{}) {
	n.readyMu.Lock()
	defer n.readyMu.Unlock()
	first := true
	for id := range n.ready {
		if l := n.loaded[id]; first || l < minLoaded {
			minLoaded, first = l, false
		}
	}
	for id := range n.remoteSeen {
		if l := n.loaded[id]; first || l < minLoaded {
			minLoaded, first = l, false
		}
	}
	return minLoaded, len(n.ready) + len(n.remoteSeen), n.workersCh
}

func (n *Node) markReady(id string) {
	if !n.isLocalWorker(id) {
		return // another node's: followed by its heartbeats
	}
	n.readyMu.Lock()
	defer n.readyMu.Unlock()
	n.ready[id] = true
	n.workersChanged()
}

// workerExited forgets the worker's readiness and tells the gateways which invocations it took along.
func (n *Node) workerExited(id string, started, effected, overdue []string, kept []scheduler.Answer) {
	n.readyMu.Lock()
	delete(n.ready, id)
	delete(n.loaded, id)
	n.workersChanged()
	n.readyMu.Unlock()
	answers := make([]bus.Answer, len(kept))
	for i, a := range kept {
		answers[i] = bus.Answer{RequestID: a.RequestID, Code: bus.Code(a.Code), Body: a.Body}
	}
	if err := n.control.PublishWorkerGone(bus.WorkerGone{Worker: id, Started: started, Effected: effected, Overdue: overdue, Answers: answers}); err != nil {
		n.log.Warn("reporting a gone worker", "worker", id, "err", err)
	}
}

// readyWorkers counts this node's workers that announced readiness (since their last start).
func (n *Node) readyWorkers() int {
	n.readyMu.Lock()
	defer n.readyMu.Unlock()
	return len(n.ready)
}

func (n *Node) waitReady(ctx context.Context, want int, timeout time.Duration) error {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		_, ready, changed := n.workerState()
		if ready >= want {
			return nil
		}
		select {
		case <-changed:
		case <-deadline.C:
			return fmt.Errorf("workers: only %d of %d ready after %s", ready, want, timeout)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// AWSAddr returns the AWS API's listen address; "" when it is off.
func (n *Node) AWSAddr() string {
	if n.awsLn == nil {
		return ""
	}
	return n.awsLn.Addr().String()
}

// TLSAddr returns the gateway's TLS listen address; "" without one.
func (n *Node) TLSAddr() string {
	if n.tls == nil {
		return ""
	}
	return n.tls.ln.Addr().String()
}

// CAPath returns the local certificate authority's certificate file; "" when it was not needed.
func (n *Node) CAPath() string {
	if n.tls == nil || n.tls.ca == nil {
		return ""
	}
	return n.tls.ca.CertPath()
}

// GatewayAddr returns the gateway's listen address; "" on a worker-only node.
func (n *Node) GatewayAddr() string {
	if n.gwLn == nil {
		return ""
	}
	return n.gwLn.Addr().String()
}

// DataDir returns the node's data directory (absolute).
func (n *Node) DataDir() string { return n.dataDir }

// adminURL is the admin API's base URL: https with --admin-tls.
func (n *Node) adminURL() string {
	if n.opts.AdminTLS {
		return "https://" + n.adminLn.Addr().String()
	}
	return "http://" + n.adminLn.Addr().String()
}

// AdminAddr returns the admin listener's address.
func (n *Node) AdminAddr() string { return n.adminLn.Addr().String() }

// WorkerPIDs returns the process ids of the running workers.
func (n *Node) WorkerPIDs() map[string]int { return n.sup.processes() }

// WorkerRestarts counts worker restarts since start.
func (n *Node) WorkerRestarts() int { return n.sup.restartCount() }

// Stop drains the gateway (requests in flight finish), stops the workers, then the bus, in that order.
func (n *Node) Stop(ctx context.Context) error {
	n.stopOnce.Do(func() {
		if n.cluster != nil {
			n.cluster.draining.Store(true)
		}
		ctx, cancel := context.WithTimeout(ctx, n.opts.DrainTimeout)
		defer cancel()
		var errs []error
		n.cancelBackground()
		if n.gw != nil {
			errs = append(errs, n.gw.Shutdown(ctx))
		} else if n.gwLn != nil {
			n.gwLn.Close()
		}
		if n.admin != nil {
			errs = append(errs, n.admin.Shutdown(ctx))
		} else if n.adminLn != nil {
			n.adminLn.Close()
		}
		if n.aws != nil {
			errs = append(errs, n.aws.Shutdown(ctx))
		}
		// A Serve that had not started when Shutdown ran would accept forever: closing the listeners
		// ends it either way.
		lns := []net.Listener{n.gwLn, n.adminLn, n.awsLn}
		if n.tls != nil {
			lns = append(lns, n.tls.ln)
		}
		for _, ln := range lns {
			if ln != nil {
				ln.Close()
			}
		}
		n.serveWG.Wait()
		if err := n.tracing.Shutdown(ctx); err != nil {
			n.log.Warn("exporting the last spans", "err", err)
		}
		if n.router != nil {
			n.router.Close()
		}
		if n.conns != nil {
			errs = append(errs, n.conns.Close())
		}
		if n.dispatcher != nil {
			n.dispatcher.Close()
		}
		if n.gwBus != nil {
			n.gwBus.Close()
		}
		if n.cancelWorkers != nil {
			n.cancelWorkers()
			n.sup.wait()
			n.inlineWG.Wait()
		}
		if n.cancelRegistry != nil {
			n.cancelRegistry()
			<-n.registryDone
		}
		if n.control != nil {
			n.control.Close()
		}
		if n.srv != nil {
			n.srv.Shutdown()
		}
		n.stopErr = errors.Join(errs...)
	})
	return n.stopErr
}

// busEnv is how a worker finds the bus: its URL, and its user and password or credentials file.
func busEnv(url string, creds bus.Credentials) []string {
	if creds.File != "" {
		return []string{envBusURL + "=" + url, envBusCreds + "=" + creds.File}
	}
	return []string{envBusURL + "=" + url, envBusUser + "=" + creds.User, envBusPassword + "=" + creds.Password}
}

func slotsPathIfSupported(path func(string) string) func(string) string {
	if !scheduler.SlotsSupported {
		return nil
	}
	return path
}

// accessLogAdapter hands the gateway's access log lines to the writer.
type accessLogAdapter struct{ w *accesslog.Writer }

func (a accessLogAdapter) Log(to gateway.AccessLogDestination, line []byte) {
	a.w.Log(to.Target, to.MaxFileBytes, line)
}
