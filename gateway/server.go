package gateway

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fasthttp/websocket"
	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/adaptor"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"gatehouse.dev/gatehouse/connections"
	"gatehouse.dev/gatehouse/functions"
	"gatehouse.dev/gatehouse/internal/async"
	"gatehouse.dev/gatehouse/internal/bus"
	"gatehouse.dev/gatehouse/internal/httpconns"
	"gatehouse.dev/gatehouse/internal/httpguard"
	"gatehouse.dev/gatehouse/internal/respolicy"
	"gatehouse.dev/gatehouse/internal/sigv4"
	"gatehouse.dev/gatehouse/internal/spec"
	"gatehouse.dev/gatehouse/internal/tracing"
)

// Defaults and limits.
const (
	// DefaultBodyLimit is API Gateway's HTTP API payload limit, 10 MB.
	DefaultBodyLimit = 10 << 20
	// DefaultIntegrationTimeout is the integration timeout of a route that sets none.
	DefaultIntegrationTimeout = 30 * time.Second
	// DefaultStage is the stage that serves requests whose first path segment names no stage.
	DefaultStage = "$default"
	// HeaderRequestID carries the request id on every response.
	HeaderRequestID = "apigw-requestid"
)

// Invoker calls a function. The bus dispatcher implements it.
type Invoker interface {
	Invoke(ctx context.Context, inv bus.Invocation) ([]byte, error)
}

var _ Invoker = (*bus.Dispatcher)(nil)

// Resolver finds the version a route's target runs: the target's function name and its qualifier
// ("" for $LATEST, a version number or an alias name). The function registry implements it.
type Resolver interface {
	Resolve(function, qualifier string) (functions.Target, error)
}

// Config configures a [Server].
type Config struct {
	// APIs served by the gateway.
	APIs []API
	// BodyLimit caps request bodies; default DefaultBodyLimit. Larger bodies get 413 without being read
	// in full.
	BodyLimit int
	// Logger receives request failures; default discards.
	Logger *slog.Logger
	// Metrics, when set, receives the gateway's Prometheus collectors.
	Metrics prometheus.Registerer
	// Resolver, when set, resolves each route's target to a function version for every request; a
	// target that does not resolve is answered 500. Without one, invocations name the function only.
	Resolver Resolver
	// NodeID names this node in the ids of the WebSocket connections it holds: a connections.NodeID
	// (8 characters of base64url), required when an API is a WebSocket API.
	NodeID string
	// Connections, when set, keeps a record of each WebSocket connection of this node.
	Connections ConnectionStore
	// Management performs @connections operations on any connection of the stack (its node may be
	// another); default this node's own connections only.
	Management ConnectionManager
	// Verifier checks the AWS Signature Version 4 of @connections requests and of routes authorized
	// with AuthIAM; without one they are all refused (403).
	Verifier *sigv4.Verifier
	// APIKeys finds the x-api-key of routes that require one, and counts quotas.
	APIKeys KeyStore
	// UsagePlans are the stack's usage plans by name.
	UsagePlans map[string]UsagePlan
	// Region and AccountID are what events' requestContext.accountId and authorizers' routeArn
	// name; default us-east-1 and 000000000000.
	Region, AccountID string
	// AccessLogs takes the access log lines of the stages that have an access log; nil writes none.
	AccessLogs AccessLogger
	// ProtectedAddrs are the node's own control listeners (admin, bus, AWS API) as host:port:
	// HTTP proxy integrations may reach any backend they name but these, on any of the node's
	// addresses.
	ProtectedAddrs []string
	// Domains are the stack's custom domain names; SetDomains replaces them.
	Domains []Domain
	// CutOff, when set, reports that the node must not serve: it has been cut off from the cluster's
	// stored state longer than its bound, so its API definitions and functions may be stale. Every
	// request then gets 503 {"message":"Service Unavailable"} with Retry-After, WebSocket upgrades
	// included.
	CutOff func() bool
	// ACMEChallenges, when set, answers the HTTP-01 challenges of an ACME certificate authority:
	// plain HTTP requests under /.well-known/acme-challenge/ go to it, whatever their host.
	ACMEChallenges http.Handler
	// Tracer, when set, records a span for each HTTP request (continuing the trace of its
	// traceparent header), its authorizer and its integration, and sends the integration span's
	// traceparent on to the function; nil traces nothing.
	Tracer trace.Tracer
	// Enqueue queues an asynchronous invocation, for routes with invocationType Event: the event is
	// stored when it returns nil. Errors wrap functions.ErrNotFound (a target that does not resolve),
	// async.ErrTooLarge or async.ErrQueueFull. Nil answers those routes 500.
	Enqueue func(ctx context.Context, function, qualifier string, payload []byte, requestID string) error
}

// ConnectionStore keeps the records of this node's WebSocket connections: the connections package's
// Store. The gateway keeps each connection's last activity in memory, where GET @connections reads it.
type ConnectionStore interface {
	Put(connections.Record) error
	Delete(id string) error
}

// ConnectionManager performs the @connections operations: the connections package's Router, which
// reaches a connection's node over the bus.
type ConnectionManager interface {
	Post(ctx context.Context, id string, data []byte) error
	Get(ctx context.Context, id string) (connections.Record, error)
	Delete(ctx context.Context, id string) error
}

// API is one HTTP API.
type API struct {
	// ID identifies the API in events (requestContext.apiId).
	ID string
	// Host restricts the API to requests for this host name; "" serves any host.
	Host string
	// Mount is the path prefix the API is served under; "" or "/" is the root.
	Mount string
	// Stages of the API; none means just $default.
	Stages []Stage
	// Routes of the API, shared by its stages.
	Routes []Route
	// WebSocket, when set, makes this a WebSocket API: its route keys are $connect, $disconnect,
	// $default and custom keys, and clients connect at a stage's root.
	WebSocket *WebSocketSettings
	// CORS, when set, answers preflight requests and adds CORS headers to responses (HTTP APIs).
	CORS *CORS
	// Authorizers are the API's authorizers, by name, for routes' Auth.
	Authorizers map[string]Authorizer
	// EndpointID, when set, is the API's id (10 lower-case letters and digits): besides its Host and
	// Mount, the API answers at {EndpointID}.execute-api.localhost and under /{EndpointID}/ on any
	// host, whatever its mount.
	EndpointID string
	// Spec is the API's definition in the stack model when it came from one (FromSpec): a setting
	// added there is read from here, with no field of its own in this struct.
	Spec spec.API
}

// Stage is a deployment stage of an API.
type Stage struct {
	Name      string
	Variables map[string]string
	// Throttle is every route's default throttle in this stage; RouteThrottles override it by route
	// key. Zero settings do not throttle. Buckets are per node.
	Throttle       ThrottleSettings
	RouteThrottles map[string]ThrottleSettings
	// AccessLog, when set, writes a line for every request the stage serves (every event, on a
	// WebSocket API) through Config.AccessLogs.
	AccessLog *AccessLogFormat
}

// Route sends requests matching Key to a function.
type Route struct {
	// Key is "$default" or "METHOD /path".
	Key string
	// Function is the function invoked: its name, optionally qualified as NAME:$LATEST, NAME:3 (a
	// version) or NAME:alias.
	Function string
	// Timeout is the integration timeout; default DefaultIntegrationTimeout
	// (DefaultWSIntegrationTimeout on a WebSocket API).
	Timeout time.Duration
	// RouteResponse, on a WebSocket API, sends the function's body back to the client.
	RouteResponse bool
	// Auth is how requests are authorized (on a WebSocket API, only $connect's counts).
	Auth RouteAuth
	// APIKeyRequired requires an x-api-key of a usage plan, whose throttle and quota apply.
	APIKeyRequired bool
	// Spec is the route's definition in the stack model when it came from one (FromSpec): a setting
	// added there is read from here, with no field of its own in this struct.
	Spec spec.Route
}

// targetLabel names where the route sends requests, for listings: its function, "mock", or
// its backend's URL.
func (r Route) targetLabel() string {
	switch r.Spec.Integration.Type {
	case spec.IntegrationMock:
		return "mock " + strconv.Itoa(r.Spec.Integration.StatusCode)
	case spec.IntegrationHTTPProxy:
		return r.Spec.Integration.Target
	}
	return r.Function
}

// Server is the gateway. Create it with [New], serve with [Server.Serve], stop with [Server.Shutdown].
type Server struct {
	cfg      Config
	inv      Invoker
	log      *slog.Logger
	metrics  *metrics
	app      *fiber.App
	apis     atomic.Pointer[apiSet]
	hub      wsHub
	conns    httpconns.Conns // the HTTP connections, for Shutdown
	controls controlState
	// wsUpgrader upgrades WebSocket requests once upgrade has run $connect.
	wsUpgrader *websocket.Upgrader
	// startOnce runs Start once; started tells SetAPIs whether to load new authorizers' keys at
	// once (after Start) or leave them to Start.
	startOnce sync.Once
	started   atomic.Bool
	// proxies are the HTTP transports of HTTP proxy integrations.
	proxies *proxyTransports
	// caches are REST API stages' caches by API, stage and capacity, kept across SetAPIs.
	caches sync.Map
	// domains are the custom domains, compiled.
	domains atomic.Pointer[domainSet]
}

// apiSet is what the gateway serves: the APIs as declared, and compiled, most specific first.
type apiSet struct {
	declared []API
	compiled []*compiledAPI
	// byEndpoint holds the APIs with an EndpointID, by it.
	byEndpoint map[string]*compiledAPI
}

type compiledAPI struct {
	API
	mount   string // without trailing "/"; "" for the root
	stages  map[string]*Stage
	table   *RouteTable // nil on a WebSocket API
	targets []target    // by route index
	// integrations are the routes' integrations, by route index.
	integrations []routeIntegration
	ws           *wsAPI   // set on a WebSocket API
	rest         *restAPI // set on a REST API
	// policy is the API's resource policy; nil for none.
	policy *respolicy.Policy
	// throttles holds each stage's buckets (nil for a stage without throttles).
	throttles map[string]*StageThrottle
}

// target is a route's function, split into its name and qualifier.
type target struct{ function, qualifier string }

// New validates cfg and builds the route tables. It starts nothing and does no I/O: the keys of JWT
// authorizers load in [Server.Start], which Serve calls.
func New(cfg Config, inv Invoker) (*Server, error) {
	if cfg.BodyLimit <= 0 {
		cfg.BodyLimit = DefaultBodyLimit
	}
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	if cfg.AccountID == "" {
		cfg.AccountID = eventAccountID
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{cfg: cfg, inv: inv, log: cfg.Logger, proxies: &proxyTransports{protected: newProtectedAddrs(cfg.ProtectedAddrs)}}
	s.domains.Store(compileDomains(cfg.Domains))
	apis, err := s.compileAPIs(cfg.APIs)
	if err != nil {
		return nil, err
	}
	if err := checkNodeID(cfg.NodeID, cfg.APIs); err != nil {
		return nil, err
	}
	if s.metrics, err = newMetrics(cfg.Metrics); err != nil {
		return nil, fmt.Errorf("gateway: registering metrics: %w", err)
	}
	s.wsUpgrader = newUpgrader()
	s.apis.Store(newAPISet(cfg.APIs, apis))
	s.app = fiber.New(fiber.Config{
		BodyLimit:                 cfg.BodyLimit,
		ReadBufferSize:            16 << 10, // request line and headers: API Gateway allows 10 KB
		DisableStartupMessage:     true,
		DisableDefaultContentType: true,
		DisableKeepalive:          false,
		ErrorHandler:              s.handleServerError,
		ReadTimeout:               60 * time.Second,
		IdleTimeout:               2 * time.Minute,
	})
	// A WebSocket takes its TCP connection over from the HTTP server (see hijackWS), which then lets
	// go of the request and its buffers.
	s.app.Server().KeepHijackedConns = true
	s.app.Use(s.handle)
	return s, nil
}

func (s *Server) compileAPIs(apis []API) ([]*compiledAPI, error) {
	out := make([]*compiledAPI, 0, len(apis))
	for _, a := range apis {
		ca := &compiledAPI{API: a, mount: strings.TrimSuffix(a.Mount, "/"), stages: map[string]*Stage{}}
		if ca.mount != "" && !strings.HasPrefix(ca.mount, "/") {
			return nil, fmt.Errorf("gateway: API %s: mount %q must start with /", a.ID, a.Mount)
		}
		stages := a.Stages
		if len(stages) == 0 {
			stages = []Stage{{Name: DefaultStage}}
		}
		for i := range stages {
			ca.stages[stages[i].Name] = &stages[i]
		}
		keys := make([]string, len(a.Routes))
		ca.Routes = slices.Clone(a.Routes)
		for i, r := range a.Routes {
			keys[i] = r.Key
			ri, err := compileIntegration(r)
			if err != nil {
				return nil, fmt.Errorf("gateway: API %s: %w", a.ID, err)
			}
			ca.integrations = append(ca.integrations, ri)
			name, qualifier, _ := strings.Cut(r.Function, ":")
			if name == "" && ri.kind == spec.IntegrationFunction {
				return nil, fmt.Errorf("gateway: API %s: route %q has no function", a.ID, r.Key)
			}
			ca.targets = append(ca.targets, target{name, qualifier})
			if r.Timeout <= 0 {
				ca.Routes[i].Timeout = DefaultIntegrationTimeout
				if a.WebSocket != nil {
					ca.Routes[i].Timeout = DefaultWSIntegrationTimeout
				}
			}
		}
		if a.WebSocket != nil {
			if err := compileWebSocket(ca); err != nil {
				return nil, err
			}
			out = append(out, ca)
			continue
		}
		table, err := NewRouteTable(keys)
		if err != nil {
			return nil, fmt.Errorf("gateway: API %s: %w", a.ID, err)
		}
		ca.table = table
		if a.CORS != nil {
			if err := a.CORS.Validate(); err != nil {
				return nil, fmt.Errorf("gateway: API %s: CORS: %w", a.ID, err)
			}
		}
		for i, r := range a.Routes {
			if r.Auth.Type == AuthJWT || r.Auth.Type == AuthFunction {
				if _, ok := a.Authorizers[r.Auth.Authorizer]; !ok {
					return nil, fmt.Errorf("gateway: API %s: route %q names no authorizer of the API: %q", a.ID, a.Routes[i].Key, r.Auth.Authorizer)
				}
			}
		}
		if a.Spec.Type == spec.APITypeREST {
			if err := s.compileREST(ca); err != nil {
				return nil, err
			}
		}
		if a.Spec.ResourcePolicy != nil {
			p, err := respolicy.Parse(a.Spec.ResourcePolicy)
			if err != nil {
				return nil, fmt.Errorf("gateway: API %s: resource policy: %w", a.ID, err)
			}
			ca.policy = p
		}
		ca.throttles = map[string]*StageThrottle{}
		for name, st := range ca.stages {
			if st.Throttle.Unlimited() && len(st.RouteThrottles) == 0 {
				continue
			}
			t, err := NewStageThrottle(keys, st.Throttle, st.RouteThrottles, time.Now())
			if err != nil {
				return nil, fmt.Errorf("gateway: API %s: stage %s: %w", a.ID, name, err)
			}
			ca.throttles[name] = t
		}
		out = append(out, ca)
	}
	// Most specific first: a host beats any host, a longer mount beats a shorter one.
	sort.SliceStable(out, func(i, j int) bool {
		if (out[i].Host != "") != (out[j].Host != "") {
			return out[i].Host != ""
		}
		return len(out[i].mount) > len(out[j].mount)
	})
	return out, nil
}

// checkNodeID refuses a NodeID that cannot name WebSocket connections when apis hold a WebSocket
// API: connections.NewID would panic on the first connection, in the HTTP server's goroutine.
func checkNodeID(node string, apis []API) (err error) {
	for _, a := range apis {
		if a.WebSocket == nil {
			continue
		}
		defer func() {
			if recover() != nil {
				err = fmt.Errorf("gateway: API %s is a WebSocket API, and NodeID %q is not a node id (%d characters of base64url)",
					a.ID, node, connections.NodeIDLen)
			}
		}()
		connections.NewID(node)
		return nil
	}
	return nil
}

// SetAPIs replaces the APIs the gateway serves, at once for every request that starts after it;
// requests in flight finish with the routes they matched. Invalid APIs change nothing.
func (s *Server) SetAPIs(apis []API) error {
	compiled, err := s.compileAPIs(apis)
	if err != nil {
		return err
	}
	if err := checkNodeID(s.cfg.NodeID, apis); err != nil {
		return err
	}
	s.apis.Store(newAPISet(apis, compiled))
	s.rebind(compiled)
	s.pruneJWT(apis)
	// Stored before started is read, and Start sets started before it reads the APIs: one of the
	// two loads the new authorizers' keys.
	if s.started.Load() {
		s.prepareJWT(context.Background(), apis)
	}
	return nil
}

// Start loads what serving needs and New leaves undone: the signing keys of the JWT authorizers (a
// remote key set is fetched, each attempt bounded by ctx and a few seconds; a key file is read).
// A key set that fails to load is logged, and its authorizer refuses tokens until it loads. Only the
// first call does anything; Serve calls Start when it has not run.
func (s *Server) Start(ctx context.Context) {
	s.startOnce.Do(func() {
		s.started.Store(true)
		s.prepareJWT(ctx, s.apis.Load().declared)
	})
}

// Serve serves HTTP on ln until Shutdown, after Start if it has not run.
func (s *Server) Serve(ln net.Listener) error {
	s.Start(context.Background())
	return s.app.Listener(s.conns.Listen(ln))
}

// Shutdown stops accepting connections, closes those on which no request has begun, and waits,
// until ctx ends, for requests in flight to finish; then it closes every WebSocket with 1001 (going
// away) and waits for their $disconnect.
func (s *Server) Shutdown(ctx context.Context) error {
	s.conns.CloseUnbegun()
	err := s.app.ShutdownWithContext(ctx)
	defer s.closeJWT()
	defer s.proxies.close()
	s.hub.closeAll(websocket.CloseGoingAway, "Going away")
	done := make(chan struct{})
	go func() { s.hub.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		err = errors.Join(err, fmt.Errorf("gateway: %d WebSocket connections still closing: %w", s.hub.count(), ctx.Err()))
	}
	return err
}

// acmeChallengePath is where ACME's HTTP-01 challenges are asked (RFC 8555 section 8.3).
const acmeChallengePath = "/.well-known/acme-challenge/"

// Gateway errors, each answered with API Gateway's status and body.
var (
	errNotFound           = fiber.NewError(fiber.StatusNotFound, "Not Found")
	errInternal           = fiber.NewError(fiber.StatusInternalServerError, "Internal Server Error")
	errServiceUnavailable = fiber.NewError(fiber.StatusServiceUnavailable, "Service Unavailable")
	errTooManyRequests    = fiber.NewError(fiber.StatusTooManyRequests, "Too Many Requests")
)

// labels name what a request matched, for metrics, and hold what its access log line needs.
type labels struct {
	api, route string
	access     accessInfo
	// trace is the request's span context (nil when not tracing).
	trace context.Context
	// start is when the request arrived.
	start time.Time
}

func (s *Server) handle(c *fiber.Ctx) error {
	start := time.Now()
	l := labels{start: start}
	var span trace.Span
	if s.cfg.Tracer != nil {
		l.trace, span = s.cfg.Tracer.Start(tracing.FromTraceParent(context.Background(), c.Get("traceparent")), "HTTP "+c.Method(),
			trace.WithSpanKind(trace.SpanKindServer), trace.WithTimestamp(start))
	}
	if h := s.cfg.ACMEChallenges; h != nil && !c.Context().IsTLS() && strings.HasPrefix(string(c.Request().URI().PathOriginal()), acmeChallengePath) {
		return adaptor.HTTPHandler(h)(c)
	}
	err := httpguard.Check(c)
	if err != nil {
		s.handleError(c, err)
		c.Context().SetConnectionClose() // after handleError, which resets the response
	} else if s.cfg.CutOff != nil && s.cfg.CutOff() {
		s.handleError(c, errServiceUnavailable)
		c.Set(fiber.HeaderRetryAfter, "1")
	} else if err = s.serve(c, &l, start); err != nil {
		s.handleError(c, err)
	}
	if hsts, ok := c.Locals(localHSTS).(string); ok {
		c.Set(fiber.HeaderStrictTransportSecurity, hsts)
	}
	status := c.Response().StatusCode()
	s.metrics.observeRequest(l.api, l.route, status, time.Since(start))
	if span != nil {
		if l.route != "" {
			span.SetName(l.route)
		}
		span.SetAttributes(attribute.String("http.request.method", c.Method()), attribute.String("url.path", string(c.Request().URI().PathOriginal())),
			attribute.String("http.route", l.route), attribute.Int("http.response.status_code", status), attribute.String("faas.invocation_id", l.access.requestID))
		if status >= 500 {
			span.SetStatus(codes.Error, http.StatusText(status))
		}
		span.End()
	}
	// WebSocket APIs log each event of a connection instead (invokeWS).
	if a := l.access; a.stage != nil && a.stage.AccessLog != nil && a.api.ws == nil && s.cfg.AccessLogs != nil {
		a.err, a.status, a.start = err, status, start
		if c.Response().IsBodyStream() {
			// A backend's body, still streaming: its length if it said.
			a.responseLength = max(c.Response().Header.ContentLength(), 0)
		} else {
			a.responseLength = len(c.Response().Body())
		}
		a.requestID, _ = c.Locals(localRequestID).(string)
		if ra, ok := c.Locals(localRESTError).(restAnswer); ok {
			a.errMessage, a.respType = ra.message, ra.respType
		}
		a.method, a.path, a.protocol = c.Method(), string(c.Request().URI().PathOriginal()), string(c.Request().Header.Protocol())
		a.sourceIP, a.userAgent, a.domain = c.IP(), string(c.Request().Header.UserAgent()), hostOnly(string(c.Request().Host()))
		a.traceParent = c.Get("traceparent")
		if l.trace != nil {
			a.traceParent = tracing.TraceParent(l.trace)
		}
		s.cfg.AccessLogs.Log(a.stage.AccessLog.Destination, s.accessLine(a.stage.AccessLog, &a))
	}
	return nil
}

func (s *Server) serve(c *fiber.Ctx, l *labels, now time.Time) error {
	requestID := NewRequestID()
	c.Locals(localRequestID, requestID)
	c.Set(HeaderRequestID, requestID)

	host := hostOnly(string(c.Request().Host()))
	rawPath := string(c.Request().URI().PathOriginal())
	if rawPath == "" || rawPath[0] != '/' {
		return errNotFound
	}
	api, stage, rest, dom, err := s.serveDomain(c, host, rawPath)
	switch {
	case errors.Is(err, errAnswered):
		return nil
	case err != nil:
		return err
	}
	if dom != nil && dom.HSTS != "" && c.Context().IsTLS() {
		c.Locals(localHSTS, dom.HSTS)
	}
	if api == nil {
		if api, rest = s.findAPI(host, rawPath); api == nil {
			return errNotFound
		}
		if api.Spec.DisableExecuteAPIEndpoint {
			return errForbidden
		}
	}
	l.api = api.ID
	if api.rest != nil {
		c.Locals(localREST, api.rest)
		c.Response().Header.Del(HeaderRequestID)
		c.Set(HeaderRESTRequestID, requestID)
	}
	if stage == nil {
		if stage, rest = api.findStage(rest); stage == nil {
			return errNotFound
		}
	}
	l.access.api, l.access.stage = api, stage
	if api.rest != nil {
		c.Locals(localStage, stage)
	}
	if api.ws != nil {
		if id, ok := isManagementPath(rest); ok {
			l.route = "@connections"
			return s.manage(c, api, stage, id)
		}
		if rest != "/" {
			return errNotFound
		}
		return s.upgrade(c, api, stage, l, now)
	}
	if api.CORS != nil {
		if pre, hdrs := api.CORS.Preflight(c.Method(), c.Get(fiber.HeaderOrigin), c.Get(fiber.HeaderAccessControlRequestMethod),
			c.Get(fiber.HeaderAccessControlRequestHeaders)); pre {
			// Answered by the gateway: no route, authorizer or function runs.
			l.route = "preflight"
			for k, v := range hdrs {
				c.Set(k, v)
			}
			return c.SendStatus(fiber.StatusNoContent)
		}
	}
	idx, params, ok := api.table.Match(c.Method(), rest)
	if !ok {
		return errNotFound
	}
	route, tgt := api.Routes[idx], api.targets[idx]
	l.api, l.route, l.access.routeKey = api.ID, route.Key, route.Key
	if api.policy != nil {
		if err := s.checkPolicy(c, api, stage, rest); err != nil {
			return err
		}
	}
	if err := s.throttle(api, stage, idx, now); err != nil {
		return err
	}
	var authSpan trace.Span
	if l.trace != nil && route.Auth.Type != AuthNone {
		_, authSpan = s.cfg.Tracer.Start(l.trace, "authorizer "+route.Auth.Authorizer)
	}
	authz, err := s.authorize(c, api, stage, route, idx, params, rest, now)
	if authSpan != nil {
		if err != nil {
			authSpan.SetStatus(codes.Error, err.Error())
		}
		authSpan.End()
	}
	if err != nil {
		if route.Auth.Type != AuthNone {
			l.access.authorizerError = err.Error()
		}
		return err
	}
	l.access.authorizer = authz
	if route.APIKeyRequired {
		if err := s.checkAPIKey(c, now); err != nil {
			return err
		}
	}
	cacheKey := ""
	if api.rest != nil {
		if err := s.validateREST(c, route.Key, &api.rest.routes[idx], api.rest.models, params); err != nil {
			return err
		}
		var hit bool
		if cacheKey, hit = s.serveFromCache(c, api, stage, idx, route, params, now); hit {
			s.finishREST(c, api, stage, idx, "", now)
			if api.CORS != nil {
				addCORSHeaders(c, api.CORS)
			}
			return nil
		}
	}
	ri := &api.integrations[idx]
	if ri.kind != spec.IntegrationFunction {
		rq := &routeRequest{s: s, c: c, l: l, api: api, stage: stage, route: route, integration: ri, params: params, rest: rest}
		if ri.kind == spec.IntegrationMock {
			err = s.serveMock(c, rq)
		} else {
			err = s.serveProxy(c, rq)
		}
		if err != nil {
			return err
		}
		if ri.response != nil && ri.kind == spec.IntegrationMock {
			// serveProxy maps a backend's response itself, before streaming it.
			rq.mapFunctionResponse()
		}
		if api.rest != nil {
			s.finishREST(c, api, stage, idx, cacheKey, now)
		}
		if api.CORS != nil {
			addCORSHeaders(c, api.CORS)
		}
		return nil
	}
	ec := EventContext{
		RouteKey:       route.Key,
		Stage:          stage.Name,
		StageVariables: stage.Variables,
		PathParameters: params,
		RequestID:      requestID,
		Time:           now,
		APIID:          api.ID,
		AccountID:      s.cfg.AccountID,
		DomainName:     host,
		SourceIP:       c.IP(),
		Authorizer:     authz,
		Authentication: clientCertOf(c),
	}
	var event []byte
	if api.rest != nil {
		event, err = BuildEventV1(c, EventV1Context{EventContext: ec, Resource: ri.resource, REST: true, Path: rest,
			ResourceID: api.rest.routes[idx].resourceID, BinaryMediaTypes: api.rest.binary})
	} else if ri.payloadV1 {
		event, err = BuildEventV1(c, EventV1Context{EventContext: ec, Resource: ri.resource})
	} else {
		event, err = BuildEvent(c, ec)
	}
	if err != nil {
		return fmt.Errorf("building event: %w", err)
	}
	if ri.event {
		return s.serveEvent(c, l, api, stage, idx, tgt, event, requestID)
	}
	called := time.Now()
	traceParent := c.Get("traceparent")
	var intSpan trace.Span
	if l.trace != nil {
		var ictx context.Context
		ictx, intSpan = s.cfg.Tracer.Start(l.trace, "integration "+tgt.function, trace.WithSpanKind(trace.SpanKindClient),
			trace.WithAttributes(attribute.String("faas.invoked_name", tgt.function)))
		traceParent = tracing.TraceParent(ictx)
	}
	out, err := s.call(invocation{target: tgt, label: "route " + route.Key, requestID: requestID, traceParent: traceParent,
		deadline: now.Add(route.Timeout), timeout: route.Timeout, payload: event, api: api.ID, route: route.Key})
	l.access.integrationLatency = time.Since(called)
	if intSpan != nil {
		if err != nil {
			intSpan.SetStatus(codes.Error, err.Error())
		}
		intSpan.End()
	}
	if err != nil {
		l.access.integrationError = integrationError(err)
		if errors.Is(err, bus.ErrFunctionError) || errors.Is(err, bus.ErrFunctionTimeout) {
			l.access.integrationStatus = -1 // it ran, and failed
		}
		return err
	}
	write := WriteResponse
	switch {
	case api.rest != nil:
		write = func(c *fiber.Ctx, out []byte) error { return writeResponseREST(c, out, api.rest.binary) }
	case ri.payloadV1:
		write = WriteResponseV1
	}
	if err := write(c, out); err != nil {
		l.access.integrationStatus, l.access.integrationError = -1, err.Error()
		s.metrics.failed(tgt.function, ErrMalformedResponse)
		return fmt.Errorf("function %s: %w", tgt.function, err)
	}
	l.access.integrationStatus = c.Response().StatusCode()
	if ri.response != nil {
		rq := &routeRequest{s: s, c: c, l: l, api: api, stage: stage, route: route, integration: ri, params: params, rest: rest}
		rq.mapFunctionResponse()
	}
	if api.rest != nil {
		s.finishREST(c, api, stage, idx, cacheKey, now)
	}
	if api.CORS != nil {
		addCORSHeaders(c, api.CORS)
	}
	return nil
}

// serveEvent queues the request's event as an asynchronous invocation of tgt and answers 202 with
// the request id once it is stored.
func (s *Server) serveEvent(c *fiber.Ctx, l *labels, api *compiledAPI, stage *Stage, idx int, tgt target, event []byte, requestID string) error {
	if s.cfg.Enqueue == nil {
		return fmt.Errorf("route: asynchronous invocations are not available on this node")
	}
	called := time.Now()
	ctx, cancel := context.WithTimeout(c.UserContext(), enqueueTimeout)
	defer cancel()
	err := s.cfg.Enqueue(ctx, tgt.function, tgt.qualifier, event, requestID)
	l.access.integrationLatency = time.Since(called)
	switch {
	case errors.Is(err, async.ErrTooLarge):
		return fiber.NewError(fiber.StatusRequestEntityTooLarge)
	case errors.Is(err, async.ErrQueueFull):
		c.Set(fiber.HeaderRetryAfter, "1")
		return fiber.NewError(fiber.StatusServiceUnavailable)
	case err != nil:
		l.access.integrationError = err.Error()
		return fmt.Errorf("queueing the event of %s: %w", tgt.function, err)
	}
	l.access.integrationStatus = fiber.StatusAccepted
	c.Status(fiber.StatusAccepted)
	c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSON)
	if err := c.SendString(`{"requestId":"` + requestID + `"}`); err != nil {
		return err
	}
	if api.rest != nil {
		s.finishREST(c, api, stage, idx, "", time.Now())
	}
	if api.CORS != nil {
		addCORSHeaders(c, api.CORS)
	}
	return nil
}

// enqueueTimeout bounds how long a route with invocationType Event waits for its event to be stored.
const enqueueTimeout = 10 * time.Second

// addCORSHeaders replaces whatever CORS headers the function set with the API's.
func addCORSHeaders(c *fiber.Ctx, cors *CORS) {
	var drop []string
	c.Response().Header.VisitAll(func(k, _ []byte) {
		if IsCORSHeader(string(k)) {
			drop = append(drop, string(k))
		}
	})
	for _, k := range drop {
		c.Response().Header.Del(k)
	}
	for k, v := range cors.Headers(c.Get(fiber.HeaderOrigin)) {
		c.Set(k, v)
	}
	if cors.DependsOnOrigin() {
		c.Vary(fiber.HeaderOrigin)
	}
}

type localKey int

const (
	localRequestID localKey = iota
	// localREST holds the *restAPI of a request to a REST API, whose errors take REST's shape.
	localREST
	// localStage holds the *Stage of a request to a REST API, for its gateway responses.
	localStage
	// localRESTError holds the restAnswer a REST API's error was answered with, for its access log.
	localRESTError
	// localHSTS holds the Strict-Transport-Security header of a custom domain's HTTPS response.
	localHSTS
)

// restAnswer is the message and gateway response type a REST API answered an error with.
type restAnswer struct{ message, respType string }

// findAPI returns the API serving host and rawPath, and the path below its mount.
func (s *Server) findAPI(host, rawPath string) (*compiledAPI, string) {
	set := s.apis.Load()
	if len(set.byEndpoint) > 0 {
		// {id}.execute-api.localhost, then /{id}/ on any host.
		if id, ok := cutSuffixFold(host, EndpointHostSuffix); ok {
			if a := set.byEndpoint[strings.ToLower(id)]; a != nil {
				return a, rawPath
			}
			return nil, ""
		}
		if len(rawPath) > 1 {
			first, rest, _ := strings.Cut(rawPath[1:], "/")
			if a := set.byEndpoint[first]; a != nil {
				return a, "/" + rest
			}
		}
	}
	for _, a := range set.compiled {
		if a.Host != "" && !strings.EqualFold(a.Host, host) {
			continue
		}
		if a.mount == "" {
			return a, rawPath
		}
		if rest, ok := strings.CutPrefix(rawPath, a.mount); ok && (rest == "" || rest[0] == '/') {
			if rest == "" {
				rest = "/"
			}
			return a, rest
		}
	}
	return nil, ""
}

// EndpointHostSuffix ends the host name at which an API with an EndpointID answers:
// {id}.execute-api.localhost, which resolves to the local machine without setup.
const EndpointHostSuffix = ".execute-api.localhost"

func cutSuffixFold(s, suffix string) (string, bool) {
	if len(s) > len(suffix) && strings.EqualFold(s[len(s)-len(suffix):], suffix) {
		return s[:len(s)-len(suffix)], true
	}
	return "", false
}

// newAPISet returns what the gateway serves: apis as declared, compiled, and by endpoint id.
func newAPISet(declared []API, compiled []*compiledAPI) *apiSet {
	set := &apiSet{declared: slices.Clone(declared), compiled: compiled}
	for _, a := range compiled {
		if a.EndpointID != "" {
			if set.byEndpoint == nil {
				set.byEndpoint = map[string]*compiledAPI{}
			}
			set.byEndpoint[a.EndpointID] = a
		}
	}
	return set
}

// findStage picks the stage named by the first path segment, or $default, and returns the rest of the
// path.
func (a *compiledAPI) findStage(path string) (*Stage, string) {
	first, rest, _ := strings.Cut(path[1:], "/")
	if first != "" && first != DefaultStage {
		if st, ok := a.stages[first]; ok {
			return st, "/" + rest
		}
	}
	if st, ok := a.stages[DefaultStage]; ok {
		return st, path
	}
	return nil, ""
}

func hostOnly(hostport string) string {
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		return h
	}
	return hostport
}

// handleServerError answers errors raised before a request reached the gateway's handler (a body or
// headers over the limits, a malformed request).
func (s *Server) handleServerError(c *fiber.Ctx, err error) error {
	if a, _ := s.findAPI(hostOnly(string(c.Request().Host())), string(c.Request().URI().PathOriginal())); a != nil && a.rest != nil {
		// A REST API's request answered before its handler ran (a body over the limit) takes
		// REST's shape too.
		c.Locals(localREST, a.rest)
	}
	s.handleError(c, err)
	s.metrics.observeRequest("", "", c.Response().StatusCode(), 0)
	return nil
}

// handleError is the one place that turns a failed request into API Gateway's status and JSON body, and
// logs failures the gateway or the function caused.
func (s *Server) handleError(c *fiber.Ctx, err error) error {
	requestID, _ := c.Locals(localRequestID).(string)
	if requestID == "" {
		// Errors raised before the handler ran (body or headers too large) have no id yet.
		requestID = NewRequestID()
	}
	status, message := s.classify(err)
	var d *denial
	if errors.As(err, &d) {
		status, message = d.status, d.message
	}
	if status >= 500 {
		s.log.Warn("request failed", "request_id", requestID, "method", c.Method(), "path", string(c.Request().URI().PathOriginal()), "status", status, "err", err)
	}
	c.Response().Reset()
	if rest, ok := c.Locals(localREST).(*restAPI); ok {
		c.Set(HeaderRESTRequestID, requestID)
		if d != nil {
			for k, v := range d.header {
				c.Set(k, v)
			}
		}
		info := accessInfo{requestID: requestID, method: c.Method(), path: string(c.Request().URI().PathOriginal()),
			sourceIP: c.IP(), userAgent: string(c.Request().Header.UserAgent()), domain: hostOnly(string(c.Request().Host()))}
		if d != nil {
			info.validation = d.validation
		}
		info.stage, _ = c.Locals(localStage).(*Stage)
		s.writeRESTError(c, rest, &info, err, status, message)
		c.Locals(localRESTError, restAnswer{message: info.errMessage, respType: info.respType})
		return nil
	}
	c.Set(HeaderRequestID, requestID)
	c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSON)
	if errors.Is(err, bus.ErrOverloaded) {
		// The node had no capacity: the request did not run, and can be sent again shortly.
		c.Set(fiber.HeaderRetryAfter, "1")
	}
	if d != nil {
		for k, v := range d.header {
			c.Set(k, v)
		}
	}
	c.Status(status)
	body, _ := json.Marshal(message) // a resource policy's message holds the request's path
	return c.SendString(`{"message":` + string(body) + `}`)
}

// invocation is one call of a function: for an HTTP route, a WebSocket route or a function
// authorizer, which all take the one path of [Server.call].
type invocation struct {
	target target
	// label names the route or authorizer ("route GET /x", "authorizer auth") in errors.
	label       string
	requestID   string
	traceParent string
	// deadline is when the caller stops waiting, for the bus; timeout bounds the wait from the call.
	deadline time.Time
	timeout  time.Duration
	payload  []byte
	// api and route label the integration latency metric; route "" records none.
	api, route string
}

// call resolves in's target to a function version (with a Resolver) and invokes it, waiting at
// most in.timeout. Its errors are labelled with in.label.
func (s *Server) call(in invocation) ([]byte, error) {
	inv := bus.Invocation{Function: in.target.function, RequestID: in.requestID, TraceParent: in.traceParent,
		Deadline: in.deadline, Payload: in.payload}
	if s.cfg.Resolver != nil {
		t, err := s.cfg.Resolver.Resolve(in.target.function, in.target.qualifier)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", in.label, err)
		}
		inv.FunctionID, inv.Version, inv.Timeout, inv.MaxConcurrency = t.FunctionID, t.Version, t.Timeout, t.MaxConcurrency
	}
	ctx, cancel := context.WithTimeout(context.Background(), in.timeout)
	defer cancel()
	start := time.Now()
	out, err := s.invoke(ctx, inv)
	if in.route != "" {
		s.metrics.observeIntegration(in.api, in.route, time.Since(start))
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", in.label, err)
	}
	return out, nil
}

// invoke runs inv through the invoker, counting a failure by its reason.
func (s *Server) invoke(ctx context.Context, inv bus.Invocation) ([]byte, error) {
	out, err := s.inv.Invoke(ctx, inv)
	if err != nil {
		s.metrics.failed(inv.Function, err)
		if errors.Is(err, bus.ErrThrottled) {
			s.metrics.throttle(inv.Function)
		}
	}
	return out, err
}

// failureReason names why an invocation failed, for metrics.
func failureReason(err error) string {
	switch {
	case errors.Is(err, ErrMalformedResponse):
		return "malformed_response"
	case errors.Is(err, bus.ErrFunctionTimeout):
		return "timeout"
	case errors.Is(err, bus.ErrFunctionError):
		return "function_error"
	case errors.Is(err, bus.ErrResponseTooLarge):
		return "response_too_large"
	case errors.Is(err, bus.ErrThrottled):
		return "throttled"
	case errors.Is(err, bus.ErrOverloaded):
		return "shed"
	case errors.Is(err, bus.ErrNoWorkers):
		return "no_workers"
	case errors.Is(err, bus.ErrWorkerLost):
		return "worker_lost"
	case errors.Is(err, context.DeadlineExceeded):
		return "integration_timeout"
	}
	return "internal"
}

func (s *Server) classify(err error) (int, string) {
	var fe *fiber.Error
	switch {
	case errors.As(err, &fe):
		switch fe.Code {
		case fiber.StatusRequestEntityTooLarge:
			return fe.Code, "Request Entity Too Large"
		}
		return fe.Code, messageFor(fe.Code)
	case errors.Is(err, context.DeadlineExceeded):
		// The route's integration timeout passed before the function answered.
		return fiber.StatusServiceUnavailable, "Service Unavailable"
	case errors.Is(err, bus.ErrNoWorkers), errors.Is(err, bus.ErrOverloaded):
		return fiber.StatusServiceUnavailable, "Service Unavailable"
	case errors.Is(err, bus.ErrThrottled):
		return fiber.StatusTooManyRequests, "Too Many Requests"
	}
	return fiber.StatusInternalServerError, "Internal Server Error"
}

func messageFor(code int) string {
	switch code {
	case fiber.StatusInternalServerError:
		return "Internal Server Error"
	case fiber.StatusServiceUnavailable:
		return "Service Unavailable"
	}
	return http.StatusText(code)
}

// RouteURLs lists every route of every API and stage as "METHOD URL → function" lines, with base (for
// example "http://127.0.0.1:8080") in front of each path. A route of an API bound to a host name says
// which Host header reaches it.
func (s *Server) RouteURLs(base string) []string {
	var lines []string
	for _, a := range s.apis.Load().declared {
		stages := a.Stages
		if len(stages) == 0 {
			stages = []Stage{{Name: DefaultStage}}
		}
		host := ""
		if a.Host != "" {
			host = "  (Host: " + a.Host + ")"
		}
		for _, st := range stages {
			prefix := strings.TrimSuffix(a.Mount, "/")
			if st.Name != DefaultStage {
				prefix += "/" + st.Name
			}
			if a.WebSocket != nil {
				keys := make([]string, len(a.Routes))
				for i, r := range a.Routes {
					keys[i] = r.Key + " → " + r.Function
				}
				ws := "ws" + strings.TrimPrefix(base, "http")
				lines = append(lines, fmt.Sprintf("%-7s %s%s  (%s)%s", "WS", ws, cmp.Or(prefix, "/"), strings.Join(keys, ", "), host),
					fmt.Sprintf("%-7s %s%s/@connections/{connectionId}%s", "POST", base, prefix, host))
				continue
			}
			for _, r := range a.Routes {
				method, path, ok := strings.Cut(r.Key, " ")
				if !ok {
					method, path = "*", "/…"
				}
				lines = append(lines, fmt.Sprintf("%-7s %s%s%s  → %s%s", method, base, prefix, path, r.targetLabel(), host))
			}
		}
	}
	return lines
}
