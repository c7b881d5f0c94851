package admin

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"gatehouse.dev/gatehouse/connections"
	"gatehouse.dev/gatehouse/internal/adminapi"
)

// ConnectionAdmin is what the connection endpoints work with: this node's WebSocket connections, to
// list them, and the operations of @connections on any node's connection.
type ConnectionAdmin interface {
	// List returns the stack's open connections (in a cluster, every node's), of one API or of all ("").
	List(api string) []connections.Record
	// Post sends data to a connection of any node. Errors wrap connections.ErrGone,
	// ErrPayloadTooLarge (over the API's message limit) or ErrLimitExceeded.
	Post(ctx context.Context, id string, data []byte) error
	// Get describes a connection of any node. Errors wrap connections.ErrGone.
	Get(ctx context.Context, id string) (connections.Record, error)
	// Delete closes a connection of any node. Errors wrap connections.ErrGone.
	Delete(ctx context.Context, id string) error
}

const (
	// MaxConnectionPost bounds the body of a post to a connection: adminapi.MaxConnectionMessage
	// (128 KiB, API Gateway's message limit); the connection's API may set a lower limit, which also
	// answers 413.
	MaxConnectionPost = adminapi.MaxConnectionMessage
	// connectionTimeout bounds one operation on a connection, including the hop to another node.
	connectionTimeout = 10 * time.Second
)

// ActionConnectionDelete is the audit action of closing a connection. Posts are data-plane traffic
// and are not audited.
const ActionConnectionDelete = "connection.delete"

func connectionView(r connections.Record) adminapi.ConnectionView {
	return adminapi.ConnectionView{ID: r.ID, API: r.API, Stage: r.Stage, ConnectedAt: r.ConnectedAt.UTC(),
		LastActiveAt: r.LastActiveAt.UTC(), SourceIP: r.SourceIP, UserAgent: r.UserAgent}
}

// connectionRoutes registers the connection endpoints; without a ConnectionAdmin they answer 503.
func (s *Server) connectionRoutes(v1 fiber.Router) {
	v1.Get("/connections", s.listConnections)
	v1.Get("/connections/:id", s.getConnection)
	v1.Post("/connections/:id", s.postToConnection)
	v1.Delete("/connections/:id", s.deleteConnection)
}

// connectionAdmin returns the configured ConnectionAdmin, or a 503 error.
func (s *Server) connectionAdmin() (ConnectionAdmin, error) {
	if s.cfg.Connections == nil {
		return nil, fiber.NewError(fiber.StatusServiceUnavailable, "WebSocket connections are not available on this node")
	}
	return s.cfg.Connections, nil
}

func (s *Server) listConnections(c *fiber.Ctx) error {
	conns, err := s.connectionAdmin()
	if err != nil {
		return err
	}
	list := conns.List(c.Query("api"))
	views := make([]adminapi.ConnectionView, 0, len(list))
	for _, r := range list {
		views = append(views, connectionView(r))
	}
	slices.SortFunc(views, func(a, b adminapi.ConnectionView) int {
		return cmp.Or(a.ConnectedAt.Compare(b.ConnectedAt), cmp.Compare(a.ID, b.ID))
	})
	return c.JSON(adminapi.ConnectionList{Connections: views})
}

func (s *Server) getConnection(c *fiber.Ctx) error {
	conns, err := s.connectionAdmin()
	if err != nil {
		return err
	}
	id := connectionID(c)
	ctx, cancel := context.WithTimeout(c.UserContext(), connectionTimeout)
	defer cancel()
	r, err := conns.Get(ctx, id)
	if err != nil {
		return connectionError(id, err)
	}
	return c.JSON(connectionView(r))
}

func (s *Server) postToConnection(c *fiber.Ctx) error {
	id, body := connectionID(c), c.Body()
	if int64(c.Request().Header.ContentLength()) > MaxConnectionPost || len(body) > MaxConnectionPost {
		return fiber.NewError(fiber.StatusRequestEntityTooLarge,
			fmt.Sprintf("the message is over the limit of %d bytes (128 KiB)", MaxConnectionPost))
	}
	conns, err := s.connectionAdmin()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(c.UserContext(), connectionTimeout)
	defer cancel()
	// The body is fasthttp's buffer, reused once the handler returns; the message is queued and
	// written to the socket later.
	if err := conns.Post(ctx, id, bytes.Clone(body)); err != nil {
		return connectionError(id, err)
	}
	return c.SendStatus(fiber.StatusNoContent)
}

func (s *Server) deleteConnection(c *fiber.Ctx) error {
	conns, err := s.connectionAdmin()
	if err != nil {
		return err
	}
	id := connectionID(c)
	ctx, cancel := context.WithTimeout(c.UserContext(), connectionTimeout)
	defer cancel()
	if err := conns.Delete(ctx, id); err != nil {
		return connectionError(id, err)
	}
	s.audit(c, ActionConnectionDelete, id, "")
	s.cfg.Logger.Info("connection closed", "connection_id", id, "by", c.Locals(localTokenName), "from", c.IP())
	return c.SendStatus(fiber.StatusNoContent)
}

// connectionID is the request's connection id, copied: Fiber's parameters point into a buffer that
// is reused once the handler returns, and a ConnectionAdmin may keep the id.
func connectionID(c *fiber.Ctx) string { return strings.Clone(c.Params("id")) }

// connectionError is the answer to an operation on connection id that failed with err.
func connectionError(id string, err error) error {
	switch {
	case errors.Is(err, connections.ErrGone):
		return fiber.NewError(fiber.StatusGone, fmt.Sprintf("connection %s is gone: it closed, or never opened", id))
	case errors.Is(err, connections.ErrPayloadTooLarge):
		return fiber.NewError(fiber.StatusRequestEntityTooLarge,
			fmt.Sprintf("the message is over the message limit of connection %s's API", id))
	case errors.Is(err, connections.ErrLimitExceeded):
		return fiber.NewError(fiber.StatusTooManyRequests,
			fmt.Sprintf("connection %s was not reading its messages (its send queue was full), and was disconnected", id))
	case errors.Is(err, context.DeadlineExceeded):
		return fiber.NewError(fiber.StatusGatewayTimeout,
			fmt.Sprintf("the node holding connection %s did not answer within %s: try again", id, connectionTimeout))
	}
	return fmt.Errorf("connection %s: %w", id, err)
}
