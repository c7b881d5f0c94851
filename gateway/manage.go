package gateway

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/url"
	"time"

	"github.com/gofiber/fiber/v2"

	"gatehouse.dev/gatehouse/connections"
	"gatehouse.dev/gatehouse/internal/sigv4"
)

// manageTimeout bounds one @connections operation, including the hop to another node.
const manageTimeout = 10 * time.Second

// manage serves the @connections API of a WebSocket API: POST sends the body to the connection, GET
// describes it, DELETE closes it. Requests must carry an AWS Signature Version 4 (service
// execute-api) by one of the stack's access keys, so that AWS SDK management clients work as they
// are.
func (s *Server) manage(c *fiber.Ctx, api *compiledAPI, stage *Stage, rawID string) error {
	id, err := url.PathUnescape(rawID)
	if err != nil {
		return managementError(c, fiber.StatusGone, "GoneException", "")
	}
	if s.cfg.Verifier == nil {
		return managementError(c, fiber.StatusForbidden, "ForbiddenException", "Forbidden")
	}
	header := http.Header{}
	c.Request().Header.VisitAll(func(k, v []byte) { header.Add(string(k), string(v)) })
	if _, err := s.cfg.Verifier.Verify(sigv4.Request{
		Method:   c.Method(),
		RawPath:  string(c.Request().URI().PathOriginal()),
		RawQuery: string(c.Request().URI().QueryString()),
		Host:     string(c.Request().Host()),
		Header:   header,
		Body:     c.Body(),
	}); err != nil {
		s.log.Info("@connections request refused", "api", api.ID, "reason", err)
		return managementError(c, fiber.StatusForbidden, "ForbiddenException", "Forbidden")
	}
	ctx, cancel := context.WithTimeout(context.Background(), manageTimeout)
	defer cancel()
	mgr := s.cfg.Management
	if mgr == nil {
		mgr = localConnections{s}
	}
	// A connection is reached only through the API and stage it connected to: another's is gone.
	rec, err := mgr.Get(ctx, id)
	if err == nil && (rec.API != api.ID || rec.Stage != stage.Name) {
		err = connections.ErrGone
	}
	if err != nil {
		return s.managementFailure(c, err)
	}
	switch c.Method() {
	case fiber.MethodPost:
		if len(c.Body()) > api.ws.settings.MaxMessageBytes {
			return managementError(c, fiber.StatusRequestEntityTooLarge, "PayloadTooLargeException", "Request entity too large")
		}
		// The body's buffer is reused after the handler returns; the post is written to the socket later.
		err = mgr.Post(ctx, id, bytes.Clone(c.Body()))
		if err == nil {
			// 200 with an empty body, as API Gateway answers (SendStatus would write "OK").
			c.Status(fiber.StatusOK)
			return c.Send(nil)
		}
	case fiber.MethodGet:
		return c.JSON(connectionView{
			ConnectedAt:  rec.ConnectedAt.UTC().Format(isoMillis),
			Identity:     connectionIdentity{SourceIP: rec.SourceIP, UserAgent: rec.UserAgent},
			LastActiveAt: rec.LastActiveAt.UTC().Format(isoMillis),
		})
	case fiber.MethodDelete:
		if err = mgr.Delete(ctx, id); err == nil {
			return c.SendStatus(fiber.StatusNoContent)
		}
	default:
		return errNotFound
	}
	return s.managementFailure(c, err)
}

// managementFailure answers a failed @connections operation.
func (s *Server) managementFailure(c *fiber.Ctx, err error) error {
	switch {
	case errors.Is(err, connections.ErrGone):
		return managementError(c, fiber.StatusGone, "GoneException", "")
	case errors.Is(err, connections.ErrPayloadTooLarge):
		return managementError(c, fiber.StatusRequestEntityTooLarge, "PayloadTooLargeException", "Request entity too large")
	case errors.Is(err, connections.ErrLimitExceeded):
		return managementError(c, fiber.StatusTooManyRequests, "LimitExceededException", "Limit exceeded: the client is not reading its messages")
	}
	return err
}

const isoMillis = "2006-01-02T15:04:05.000Z"

type connectionView struct {
	ConnectedAt  string             `json:"connectedAt"`
	Identity     connectionIdentity `json:"identity"`
	LastActiveAt string             `json:"lastActiveAt"`
}

type connectionIdentity struct {
	SourceIP  string `json:"sourceIp"`
	UserAgent string `json:"userAgent"`
}

// managementError answers as API Gateway's management API does: the error's name in
// x-amzn-ErrorType, and a JSON message (none for 410).
func managementError(c *fiber.Ctx, status int, errorType, message string) error {
	c.Set("x-amzn-ErrorType", errorType)
	c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSON)
	c.Status(status)
	if message == "" {
		return c.Send(nil)
	}
	return c.JSON(fiber.Map{"message": message})
}

// localConnections performs @connections operations on this node's connections only.
type localConnections struct{ s *Server }

func (l localConnections) Post(ctx context.Context, id string, data []byte) error {
	return l.s.PostToConnection(ctx, id, data)
}

func (l localConnections) Get(ctx context.Context, id string) (connections.Record, error) {
	return l.s.GetConnection(ctx, id)
}

func (l localConnections) Delete(ctx context.Context, id string) error {
	return l.s.DeleteConnection(ctx, id)
}

func (l localConnections) Broadcast(ctx context.Context, ids []string, data []byte) []string {
	return l.s.BroadcastToConnections(ctx, ids, data)
}
