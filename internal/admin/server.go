package admin

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/adaptor"

	"gatehouse.dev/gatehouse/functions"
	"gatehouse.dev/gatehouse/internal/adminapi"
	"gatehouse.dev/gatehouse/internal/didyoumean"
	"gatehouse.dev/gatehouse/internal/httpconns"
	"gatehouse.dev/gatehouse/internal/httpguard"
)

// Config configures the admin [Server].
type Config struct {
	// Tokens guards every endpoint but /healthz. Required.
	Tokens *Tokens
	// Health answers /healthz: an HTTP status and a JSON-encodable body.
	Health func() (int, any)
	// Metrics serves /metrics; nil leaves it out.
	Metrics http.Handler
	// Logger receives failures; default discards. Tokens never reach it.
	Logger *slog.Logger

	// Registry serves the function endpoints; nil leaves them out.
	Registry *functions.Registry
	// Check validates a bundle's module as workers will run it (compiles it, checks ABI and
	// imports). Any error it returns is the user's fault: 400 with its message. Nil checks nothing.
	Check func(ctx context.Context, b *functions.Bundle) error
	// Activate waits until the node's workers have loaded the version (bounded by ctx); called after
	// Publish, before answering. An error → 500 whose message says the version is stored but not
	// yet loaded. Nil waits for nothing.
	Activate func(ctx context.Context, v functions.VersionRecord) error
	// Applied waits until this node's view of the registry satisfies done and its workers have loaded
	// what it shows (bounded by ctx); called after every alias or function change, before answering,
	// so that the next request through the gateway sees the change. Nil waits for nothing.
	Applied func(ctx context.Context, done func(*functions.Snapshot) bool) error
	// Invoke runs the version of function that qualifier resolves to ("" = $LATEST) with payload,
	// returning the output and the version run. Errors wrap functions.ErrNotFound / ErrInvalid, or
	// the sentinels of internal/bus: ErrFunctionError, ErrFunctionTimeout, ErrResponseTooLarge,
	// ErrThrottled, ErrNoWorkers, ErrWorkerLost. Nil: the invocations endpoint answers 503.
	Invoke func(ctx context.Context, function, qualifier string, payload []byte) ([]byte, int, error)
	// Enqueue queues an asynchronous invocation (the invocations endpoint with invocationType=Event)
	// and returns its request id. Errors wrap functions.ErrNotFound, async.ErrQueueFull or
	// async.ErrTooLarge. Nil: asynchronous invocations answer 503.
	Enqueue func(ctx context.Context, function, qualifier string, payload []byte) (requestID string, err error)
	// Queues returns the asynchronous invocation queues; nil: the queues endpoint answers 503.
	Queues func(ctx context.Context) ([]adminapi.QueueStats, error)
	// Schedules lists the stack's stored schedules; nil answers 503.
	Schedules func(ctx context.Context) ([]adminapi.Schedule, error)
	// Redrive queues a function's dead letters again and returns how many; nil answers 503.
	Redrive func(ctx context.Context, function string) (int, error)
	// Publish stores a message on a subject of the stack's event bus and returns its sequence
	// number; nil answers 503.
	Publish func(ctx context.Context, subject string, data []byte) (uint64, error)
	// Logs reads function logs; nil: the logs endpoint answers 503.
	Logs LogSource
	// Audit records control-plane changes; nil records nothing (and the audit endpoint answers 503).
	Audit *Audit
	// BundleLimits bound uploaded bundles (zero fields: functions' defaults).
	BundleLimits functions.BundleLimits
	// Connections serves the connection endpoints; nil answers 503.
	Connections ConnectionAdmin
	// APIKeys serves the API key endpoints; nil answers 503.
	APIKeys KeyAdmin
	// APIs serves the API definition endpoints; nil answers 503.
	APIs APIStore
	// APIsApplied waits until this node's gateway serves the API name at revision or later (0: until
	// it no longer serves it), bounded by ctx; called after every change, before answering. Nil waits
	// for nothing.
	APIsApplied func(ctx context.Context, name string, revision uint64) error
	// Reload re-reads the node's stack file and applies what changed; an error wrapping
	// ErrReloadRefused is the file's fault (400). Nil: the reload endpoint answers 503.
	Reload func(ctx context.Context) (adminapi.ReloadView, error)
	// Cluster answers GET /admin/v1/cluster; nil answers 503.
	Cluster func(ctx context.Context) (adminapi.ClusterStatus, error)
	// UsagePlans are the names of the stack's usage plans: a key must belong to one.
	UsagePlans []string
	// ReadTimeout bounds reading a request, headers and body; default 30s. IdleTimeout bounds how
	// long a kept-alive connection may wait for its next request; default 2 minutes.
	ReadTimeout, IdleTimeout time.Duration
}

// Server is the admin listener's HTTP API, versioned under /admin/v1/.
type Server struct {
	cfg Config
	app *fiber.App
	// done is cancelled when Shutdown starts: it ends the requests that would otherwise never end
	// (log followers).
	done context.Context
	stop context.CancelFunc
	// keepAlive is how often a log follower that has nothing to send writes an empty line.
	keepAlive time.Duration
	conns     httpconns.Conns // the HTTP connections, for Shutdown
}

// localToken is where the authenticated token's name is kept for a request.
type localKey int

const localTokenName localKey = iota

// NewServer builds the routes. It starts nothing.
func NewServer(cfg Config) (*Server, error) {
	if cfg.Tokens == nil || cfg.Health == nil {
		return nil, errors.New("admin: a token store and a health function are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	cfg.BundleLimits = bundleLimits(cfg.BundleLimits)
	if cfg.ReadTimeout <= 0 {
		cfg.ReadTimeout = 30 * time.Second
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = 2 * time.Minute
	}
	s := &Server{cfg: cfg, keepAlive: logKeepAlive}
	s.done, s.stop = context.WithCancel(context.Background())
	app := fiber.New(fiber.Config{
		DisableStartupMessage: true,
		ErrorHandler:          s.handleError,
		// A maximal bundle or invocation payload, and a little more: a larger request is refused
		// from its Content-Length, before its body is read (fasthttp answers 413 through
		// handleError).
		BodyLimit: int(max(cfg.BundleLimits.MaxBundleBytes, MaxInvocationPayload) + bodySlack),
		// The body is read when a handler asks for it, after the token was checked: an
		// unauthenticated upload is refused from its headers.
		StreamRequestBody: true,
		ReadTimeout:       cfg.ReadTimeout,
		IdleTimeout:       cfg.IdleTimeout,
	})
	app.Use(httpguard.Middleware)
	// Streamed bodies are not measured by fasthttp before the handler: a declared length over the
	// limit is refused here, from the headers.
	app.Use(func(c *fiber.Ctx) error {
		if c.Request().Header.ContentLength() > app.Config().BodyLimit {
			return fiber.ErrRequestEntityTooLarge
		}
		return c.Next()
	})
	app.Get("/healthz", func(c *fiber.Ctx) error {
		status, body := cfg.Health()
		return c.Status(status).JSON(body)
	})
	app.Get("/admin/v1/openapi.json", serveOpenAPI)
	app.Get("/", serveConsole)
	app.Get("/console", serveConsole)
	app.Use(s.authenticate)
	if cfg.Metrics != nil {
		app.Get("/metrics", adaptor.HTTPHandler(cfg.Metrics))
	}
	v1 := app.Group("/admin/v1")
	v1.Get("/tokens", s.listTokens)
	v1.Post("/tokens", s.createToken)
	v1.Delete("/tokens/:name", s.deleteToken)
	v1.Get("/audit", s.listAudit)
	v1.Get("/cluster", s.clusterStatus)
	if cfg.Registry != nil {
		s.functionRoutes(v1)
	}
	s.connectionRoutes(v1)
	s.keyRoutes(v1)
	s.apiRoutes(v1)
	s.app = app
	return s, nil
}

// Serve serves on ln until Shutdown.
func (s *Server) Serve(ln net.Listener) error { return s.app.Listener(s.conns.Listen(ln)) }

// Shutdown stops accepting connections, closes those on which no request has begun, ends log
// followers, and waits for requests in flight until ctx ends.
func (s *Server) Shutdown(ctx context.Context) error {
	s.conns.CloseUnbegun()
	s.stop()
	return s.app.ShutdownWithContext(ctx)
}

var errUnauthorized = fiber.NewError(fiber.StatusUnauthorized, "Unauthorized")

// authenticate requires "Authorization: Bearer <token>" with a token of the store. A failure says
// nothing about why.
func (s *Server) authenticate(c *fiber.Ctx) error {
	token, ok := strings.CutPrefix(c.Get(fiber.HeaderAuthorization), "Bearer ")
	if !ok {
		return errUnauthorized
	}
	name, err := s.cfg.Tokens.Verify(c.UserContext(), strings.TrimSpace(token))
	switch {
	case errors.Is(err, ErrStoreUnavailable):
		s.cfg.Logger.Warn("a token could not be checked", "err", err)
		c.Set(fiber.HeaderRetryAfter, "1")
		return fiber.NewError(fiber.StatusServiceUnavailable, "the token store is not available; try again")
	case err != nil:
		return errUnauthorized
	}
	c.Locals(localTokenName, name)
	return c.Next()
}

// functionSuggestion is a did-you-mean for the function a request names, when one is close.
func (s *Server) functionSuggestion(c *fiber.Ctx) string {
	// From the path: route parameters are gone by the time the error handler runs.
	rest, ok := strings.CutPrefix(c.Path(), "/admin/v1/functions/")
	name, _, _ := strings.Cut(rest, "/")
	if !ok || name == "" || s.cfg.Registry == nil {
		return ""
	}
	list, err := s.cfg.Registry.List(c.UserContext())
	if err != nil {
		return ""
	}
	var names []string
	for _, f := range list {
		if f.Name == name {
			return "" // the function exists: what was not found is in it
		}
		names = append(names, f.Name)
	}
	return didyoumean.Suggest(name, names)
}

func (s *Server) handleError(c *fiber.Ctx, err error) error {
	status, message := fiber.StatusInternalServerError, "Internal Server Error"
	var fe *fiber.Error
	switch {
	case err == fiber.ErrRequestEntityTooLarge: // from fasthttp, before the body was read
		status, message = fiber.StatusRequestEntityTooLarge, s.tooLargeMessage(c)
	case errors.As(err, &fe) && fe.Code == fiber.StatusBadRequest && strings.HasPrefix(fe.Message, "error when reading request"):
		// fasthttp's parse errors quote the request, headers (and tokens) included: not echoed.
		status, message = fe.Code, "Bad Request"
	case errors.As(err, &fe):
		status, message = fe.Code, fe.Message
	case errors.Is(err, ErrTokenNotFound):
		status, message = fiber.StatusNotFound, err.Error()
	case errors.Is(err, ErrTokenExists):
		status, message = fiber.StatusConflict, err.Error()
	case errors.Is(err, ErrTokenName):
		status, message = fiber.StatusBadRequest, err.Error()
	case errors.Is(err, functions.ErrBundleTooLarge): // before ErrBadBundle, which it wraps
		status, message = fiber.StatusRequestEntityTooLarge, userMessage(err)
	case errors.Is(err, functions.ErrBadBundle), errors.Is(err, functions.ErrBadManifest), errors.Is(err, functions.ErrInvalid):
		status, message = fiber.StatusBadRequest, userMessage(err)
	case errors.Is(err, functions.ErrNotFound):
		status, message = fiber.StatusNotFound, userMessage(err)+s.functionSuggestion(c)
	case errors.Is(err, functions.ErrConflict):
		status, message = fiber.StatusConflict, userMessage(err)
	default:
		s.cfg.Logger.Error("admin request failed", "method", c.Method(), "path", c.Path(), "err", err)
	}
	if status == fiber.StatusUnauthorized {
		c.Set(fiber.HeaderWWWAuthenticate, `Bearer realm="gatehouse"`)
	}
	return c.Status(status).JSON(adminapi.ErrorBody{Message: message})
}

func (s *Server) listTokens(c *fiber.Ctx) error {
	list, err := s.cfg.Tokens.List(c.UserContext())
	if err != nil {
		return err
	}
	if list == nil {
		list = []adminapi.TokenView{}
	}
	return c.JSON(adminapi.TokenList{Tokens: list})
}

func (s *Server) createToken(c *fiber.Ctx) error {
	var req adminapi.TokenRequest
	if err := c.BodyParser(&req); err != nil {
		return fiber.NewError(fiber.StatusBadRequest, `the body must be JSON: {"name": "..."}`)
	}
	token, err := s.cfg.Tokens.Create(c.UserContext(), req.Name)
	if err != nil {
		return err
	}
	s.cfg.Logger.Info("token created", "name", req.Name, "by", c.Locals(localTokenName), "from", c.IP())
	s.audit(c, ActionTokenCreate, req.Name, "")
	return c.Status(fiber.StatusCreated).JSON(adminapi.TokenCreated{Name: req.Name, Token: token})
}

func (s *Server) deleteToken(c *fiber.Ctx) error {
	if err := s.cfg.Tokens.Delete(c.UserContext(), c.Params("name")); err != nil {
		return err
	}
	s.cfg.Logger.Info("token deleted", "name", c.Params("name"), "by", c.Locals(localTokenName), "from", c.IP())
	s.audit(c, ActionTokenDelete, c.Params("name"), "")
	return c.SendStatus(fiber.StatusNoContent)
}

func (s *Server) clusterStatus(c *fiber.Ctx) error {
	if s.cfg.Cluster == nil {
		return fiber.NewError(fiber.StatusServiceUnavailable, "the cluster status is not available")
	}
	st, err := s.cfg.Cluster(c.UserContext())
	if err != nil {
		return err
	}
	return c.JSON(st)
}
