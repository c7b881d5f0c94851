package admin

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strings"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/adaptor"
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
}

// Server is the admin listener's HTTP API, versioned under /admin/v1/.
type Server struct {
	cfg Config
	app *fiber.App
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
	s := &Server{cfg: cfg}
	app := fiber.New(fiber.Config{DisableStartupMessage: true, ErrorHandler: s.handleError})
	app.Get("/healthz", func(c *fiber.Ctx) error {
		status, body := cfg.Health()
		return c.Status(status).JSON(body)
	})
	app.Use(s.authenticate)
	if cfg.Metrics != nil {
		app.Get("/metrics", adaptor.HTTPHandler(cfg.Metrics))
	}
	v1 := app.Group("/admin/v1")
	v1.Get("/tokens", s.listTokens)
	v1.Post("/tokens", s.createToken)
	v1.Delete("/tokens/:name", s.deleteToken)
	s.app = app
	return s, nil
}

// Serve serves on ln until Shutdown.
func (s *Server) Serve(ln net.Listener) error { return s.app.Listener(ln) }

// Shutdown stops accepting connections and waits for requests in flight until ctx ends.
func (s *Server) Shutdown(ctx context.Context) error { return s.app.ShutdownWithContext(ctx) }

var errUnauthorized = fiber.NewError(fiber.StatusUnauthorized, "Unauthorized")

// authenticate requires "Authorization: Bearer <token>" with a token of the store. A failure says
// nothing about why.
func (s *Server) authenticate(c *fiber.Ctx) error {
	token, ok := strings.CutPrefix(c.Get(fiber.HeaderAuthorization), "Bearer ")
	if !ok {
		return errUnauthorized
	}
	name, ok := s.cfg.Tokens.Verify(c.UserContext(), strings.TrimSpace(token))
	if !ok {
		return errUnauthorized
	}
	c.Locals(localTokenName, name)
	return c.Next()
}

func (s *Server) handleError(c *fiber.Ctx, err error) error {
	status, message := fiber.StatusInternalServerError, "Internal Server Error"
	var fe *fiber.Error
	switch {
	case errors.As(err, &fe):
		status, message = fe.Code, fe.Message
	case errors.Is(err, ErrTokenNotFound):
		status, message = fiber.StatusNotFound, err.Error()
	case errors.Is(err, ErrTokenExists):
		status, message = fiber.StatusConflict, err.Error()
	case errors.Is(err, ErrTokenName):
		status, message = fiber.StatusBadRequest, err.Error()
	default:
		s.cfg.Logger.Error("admin request failed", "method", c.Method(), "path", c.Path(), "err", err)
	}
	if status == fiber.StatusUnauthorized {
		c.Set(fiber.HeaderWWWAuthenticate, `Bearer realm="gatehouse"`)
	}
	return c.Status(status).JSON(fiber.Map{"message": message})
}

func (s *Server) listTokens(c *fiber.Ctx) error {
	list, err := s.cfg.Tokens.List(c.UserContext())
	if err != nil {
		return err
	}
	if list == nil {
		list = []TokenInfo{}
	}
	return c.JSON(fiber.Map{"tokens": list})
}

func (s *Server) createToken(c *fiber.Ctx) error {
	var req struct {
		Name string `json:"name"`
	}
	if err := c.BodyParser(&req); err != nil {
		return fiber.NewError(fiber.StatusBadRequest, `the body must be JSON: {"name": "..."}`)
	}
	token, err := s.cfg.Tokens.Create(c.UserContext(), req.Name)
	if err != nil {
		return err
	}
	s.cfg.Logger.Info("token created", "name", req.Name, "by", c.Locals(localTokenName), "from", c.IP())
	return c.Status(fiber.StatusCreated).JSON(fiber.Map{"name": req.Name, "token": token})
}

func (s *Server) deleteToken(c *fiber.Ctx) error {
	if err := s.cfg.Tokens.Delete(c.UserContext(), c.Params("name")); err != nil {
		return err
	}
	s.cfg.Logger.Info("token deleted", "name", c.Params("name"), "by", c.Locals(localTokenName), "from", c.IP())
	return c.SendStatus(fiber.StatusNoContent)
}
