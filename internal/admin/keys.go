package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/gofiber/fiber/v2"

	"gatehouse.dev/gatehouse/internal/adminapi"
	"gatehouse.dev/gatehouse/internal/apikeys"
)

// KeyAdmin is what the API key endpoints work with: the stack's API key store.
type KeyAdmin interface {
	Create(ctx context.Context, name, plan string) (string, apikeys.Key, error)
	List(ctx context.Context) ([]apikeys.Key, error)
	Delete(ctx context.Context, name string) error
}

// Audit actions of API keys.
const (
	ActionKeyCreate = "key.create"
	ActionKeyDelete = "key.delete"
)

func (s *Server) keyRoutes(v1 fiber.Router) {
	v1.Get("/keys", s.listKeys)
	v1.Post("/keys", s.createKey)
	v1.Delete("/keys/:name", s.deleteKey)
}

func (s *Server) keyAdmin() (KeyAdmin, error) {
	if s.cfg.APIKeys == nil {
		return nil, fiber.NewError(fiber.StatusServiceUnavailable, "API keys are not available on this node")
	}
	return s.cfg.APIKeys, nil
}

func (s *Server) listKeys(c *fiber.Ctx) error {
	keys, err := s.keyAdmin()
	if err != nil {
		return err
	}
	list, err := keys.List(c.UserContext())
	if err != nil {
		return err
	}
	views := make([]adminapi.KeyView, 0, len(list))
	for _, k := range list {
		views = append(views, adminapi.KeyView{Name: k.Name, Plan: k.Plan, CreatedAt: k.CreatedAt})
	}
	return c.JSON(adminapi.KeyList{Keys: views})
}

func (s *Server) createKey(c *fiber.Ctx) error {
	keys, err := s.keyAdmin()
	if err != nil {
		return err
	}
	var req adminapi.KeyRequest
	if err := json.Unmarshal(c.Body(), &req); err != nil {
		return fiber.NewError(fiber.StatusBadRequest, `the body must be JSON: {"name": "...", "plan": "..."}`)
	}
	if !slices.Contains(s.cfg.UsagePlans, req.Plan) {
		msg := fmt.Sprintf("no usage plan named %q", req.Plan)
		if len(s.cfg.UsagePlans) == 0 {
			msg += ": the stack file defines none (usagePlans:)"
		} else {
			msg += fmt.Sprintf(" (defined: %v)", s.cfg.UsagePlans)
		}
		return fiber.NewError(fiber.StatusBadRequest, msg)
	}
	secret, k, err := keys.Create(c.UserContext(), req.Name, req.Plan)
	switch {
	case errors.Is(err, apikeys.ErrExists):
		return fiber.NewError(fiber.StatusConflict, fmt.Sprintf("an API key named %s exists", req.Name))
	case errors.Is(err, apikeys.ErrInvalid):
		return fiber.NewError(fiber.StatusBadRequest, err.Error())
	case err != nil:
		return err
	}
	s.audit(c, ActionKeyCreate, k.Name, "plan "+k.Plan)
	s.cfg.Logger.Info("API key created", "name", k.Name, "plan", k.Plan, "by", c.Locals(localTokenName), "from", c.IP())
	return c.Status(fiber.StatusCreated).JSON(adminapi.KeyCreated{Name: k.Name, Plan: k.Plan, Key: secret, CreatedAt: k.CreatedAt})
}

func (s *Server) deleteKey(c *fiber.Ctx) error {
	keys, err := s.keyAdmin()
	if err != nil {
		return err
	}
	name := c.Params("name")
	if err := keys.Delete(c.UserContext(), name); errors.Is(err, apikeys.ErrNotFound) {
		return fiber.NewError(fiber.StatusNotFound, fmt.Sprintf("no API key named %s", name))
	} else if err != nil {
		return err
	}
	s.audit(c, ActionKeyDelete, name, "")
	return c.SendStatus(fiber.StatusNoContent)
}
