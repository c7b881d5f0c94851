package admin

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"gatehouse.dev/gatehouse/internal/adminapi"
	"gatehouse.dev/gatehouse/internal/apistore"
	"gatehouse.dev/gatehouse/internal/didyoumean"
	"gatehouse.dev/gatehouse/internal/spec"
	"gatehouse.dev/gatehouse/internal/stackfile"
)

// APIStore is what the API definition endpoints work with: the stack's API store.
type APIStore interface {
	List(ctx context.Context, bad func(error)) ([]apistore.Record, error)
	Get(ctx context.Context, name string) (apistore.Record, error)
	Put(ctx context.Context, r apistore.Record, revision uint64) (uint64, error)
	Delete(ctx context.Context, name string, revision uint64) error
}

var _ APIStore = (*apistore.Store)(nil)

// Audit actions of API definitions.
const (
	ActionAPIApply  = adminapi.ActionAPIApply
	ActionAPIDelete = adminapi.ActionAPIDelete
)

// applyTimeout bounds waiting for this node's gateway to serve a change.
const applyTimeout = 5 * time.Second

func (s *Server) apiRoutes(v1 fiber.Router) {
	v1.Get("/apis", s.listAPIs)
	v1.Get("/apis/:name", s.getAPI)
	v1.Put("/apis/:name", s.putAPI)
	v1.Delete("/apis/:name", s.deleteAPI)
	v1.Get("/apis/:name/stages/:stage/access-log", s.accessLog)
	v1.Post("/reload", s.reload)
}

func (s *Server) apiStore() (APIStore, error) {
	if s.cfg.APIs == nil {
		return nil, fiber.NewError(fiber.StatusServiceUnavailable, "API definitions are not available on this node")
	}
	return s.cfg.APIs, nil
}

func apiView(r apistore.Record) adminapi.APIView {
	return adminapi.APIView{Name: r.Name, ID: r.ID, ManagedBy: r.ManagedBy, Source: r.Source, Revision: r.Revision,
		Hash: r.Hash, UpdatedAt: r.UpdatedAt, API: r.API}
}

func (s *Server) listAPIs(c *fiber.Ctx) error {
	store, err := s.apiStore()
	if err != nil {
		return err
	}
	recs, err := store.List(c.UserContext(), func(err error) { s.cfg.Logger.Error("API definition not readable", "err", err) })
	if err != nil {
		return err
	}
	views := make([]adminapi.APIView, 0, len(recs))
	for _, r := range recs {
		views = append(views, apiView(r))
	}
	return c.JSON(adminapi.APIList{APIs: views})
}

// notFoundAPI answers 404 for the API name, suggesting a close name.
func (s *Server) notFoundAPI(c *fiber.Ctx, store APIStore, name string) error {
	var names []string
	if recs, err := store.List(c.UserContext(), nil); err == nil {
		for _, r := range recs {
			names = append(names, r.Name)
		}
	}
	return fiber.NewError(fiber.StatusNotFound, fmt.Sprintf("no API named %q%s", name, didyoumean.Suggest(name, names)))
}

func (s *Server) getAPI(c *fiber.Ctx) error {
	store, err := s.apiStore()
	if err != nil {
		return err
	}
	name := c.Params("name")
	r, err := store.Get(c.UserContext(), name)
	if errors.Is(err, apistore.ErrNotFound) {
		return s.notFoundAPI(c, store, name)
	}
	if err != nil {
		return err
	}
	c.Set(fiber.HeaderETag, strconv.Quote(strconv.FormatUint(r.Revision, 10)))
	return c.JSON(apiView(r))
}

// ifMatch reads the revision an If-Match header names ("3" or "\"3\""); 0 when there is none.
func ifMatch(c *fiber.Ctx) (uint64, error) {
	h := strings.TrimSpace(c.Get(fiber.HeaderIfMatch))
	if h == "" {
		return 0, nil
	}
	rev, err := strconv.ParseUint(strings.Trim(h, `"`), 10, 64)
	if err != nil || rev == 0 {
		return 0, fiber.NewError(fiber.StatusBadRequest, "If-Match must name a revision of the API, such as \"3\" (the revision GET answers with)")
	}
	return rev, nil
}

// env is what an API may refer to: the stack's functions and usage plans.
func (s *Server) env(ctx context.Context) (spec.Env, error) {
	var names []string
	if s.cfg.Registry != nil {
		list, err := s.cfg.Registry.List(ctx)
		if err != nil {
			return spec.Env{}, err
		}
		for _, f := range list {
			names = append(names, f.Name)
		}
	}
	return spec.FunctionsEnv(names, len(s.cfg.UsagePlans) > 0), nil
}

// putAPI creates or replaces an API from its definition (JSON or YAML, as under apis.NAME in a stack
// file). A definition with problems is refused whole with every problem; a change to an API changed
// since the revision If-Match names is refused with 412. The answer comes once this node's gateway
// serves the change.
func (s *Server) putAPI(c *fiber.Ctx) error {
	store, err := s.apiStore()
	if err != nil {
		return err
	}
	name := c.Params("name")
	want, err := ifMatch(c)
	if err != nil {
		return err
	}
	body := c.Body()
	if len(body) > spec.MaxFileSize {
		return fiber.NewError(fiber.StatusRequestEntityTooLarge, fmt.Sprintf("an API definition is at most %d bytes (1 MiB)", spec.MaxFileSize))
	}
	env, err := s.env(c.UserContext())
	if err != nil {
		return err
	}
	api, err := stackfile.ParseAPI("body", body, "", name, env)
	if err != nil {
		return problems(c, err)
	}
	ctx := c.UserContext()
	cur, err := store.Get(ctx, name)
	exists := err == nil
	switch {
	case errors.Is(err, apistore.ErrNotFound):
	case err != nil:
		return err
	}
	if want != 0 && (!exists || cur.Revision != want) {
		return fiber.NewError(fiber.StatusPreconditionFailed, fmt.Sprintf("the API %s is not at revision %d; read it again and apply your change to what it is now", name, want))
	}
	// No two APIs may answer the same host and mount.
	others, err := store.List(ctx, nil)
	if err != nil {
		return err
	}
	seen := map[[2]string]string{}
	for _, o := range others {
		if o.Name != name {
			spec.MountClash(seen, o.Name, o.API)
		}
	}
	if other := spec.MountClash(seen, name, api); other != "" {
		where := "any host"
		if api.Host != "" {
			where = "host " + api.Host
		}
		return c.Status(fiber.StatusConflict).JSON(adminapi.ProblemsView{Message: "the API definition has a problem",
			Problems: []adminapi.Problem{{Path: "mount", Message: fmt.Sprintf("the API %s is already mounted at %s on %s; give this one another mount or host", other, api.Mount, where)}}})
	}
	token, _ := c.Locals(localTokenName).(string)
	rec := apistore.Record{Name: name, ManagedBy: apistore.ManagedByAdmin, Source: token, UpdatedAt: time.Now(), API: api}
	if exists {
		rec.FileHash = cur.FileHash // a reload of the stack file tells this change from its own
		if cur.Hash == apistore.Hash(api) {
			return c.JSON(apiView(cur)) // nothing to change
		}
	}
	rev, err := store.Put(ctx, rec, cur.Revision)
	if errors.Is(err, apistore.ErrConflict) {
		return fiber.NewError(fiber.StatusConflict, fmt.Sprintf("the API %s changed while this change was made; read it again and retry", name))
	}
	if err != nil {
		return err
	}
	detail := "created"
	if exists {
		detail = fmt.Sprintf("revision %d replaced", cur.Revision)
	}
	s.audit(c, ActionAPIApply, name, detail)
	if s.cfg.APIsApplied != nil {
		wctx, cancel := context.WithTimeout(ctx, applyTimeout)
		defer cancel()
		if err := s.cfg.APIsApplied(wctx, name, rev); err != nil {
			return fiber.NewError(fiber.StatusInternalServerError, "the API is stored, but "+err.Error())
		}
	}
	r, err := store.Get(ctx, name)
	if err != nil {
		return err
	}
	status := fiber.StatusOK
	if !exists {
		status = fiber.StatusCreated
	}
	c.Set(fiber.HeaderETag, strconv.Quote(strconv.FormatUint(r.Revision, 10)))
	return c.Status(status).JSON(apiView(r))
}

// problems answers 400 with every problem of a definition.
func problems(c *fiber.Ctx, err error) error {
	var list stackfile.Errors
	var one *stackfile.Error
	switch {
	case errors.As(err, &list):
	case errors.As(err, &one):
		list = stackfile.Errors{one}
	default:
		return err
	}
	out := adminapi.ProblemsView{Message: "the API definition has a problem"}
	if len(list) > 1 {
		out.Message = fmt.Sprintf("the API definition has %d problems", len(list))
	}
	for _, e := range list {
		out.Problems = append(out.Problems, adminapi.Problem{Path: e.Path, Line: e.Line, Column: e.Column, Message: e.Msg})
	}
	return c.Status(fiber.StatusBadRequest).JSON(out)
}

func (s *Server) deleteAPI(c *fiber.Ctx) error {
	store, err := s.apiStore()
	if err != nil {
		return err
	}
	name := c.Params("name")
	want, err := ifMatch(c)
	if err != nil {
		return err
	}
	ctx := c.UserContext()
	cur, err := store.Get(ctx, name)
	if errors.Is(err, apistore.ErrNotFound) {
		return s.notFoundAPI(c, store, name)
	}
	if err != nil {
		return err
	}
	if want != 0 && cur.Revision != want {
		return fiber.NewError(fiber.StatusPreconditionFailed, fmt.Sprintf("the API %s is not at revision %d", name, want))
	}
	if err := store.Delete(ctx, name, cur.Revision); errors.Is(err, apistore.ErrConflict) {
		return fiber.NewError(fiber.StatusConflict, fmt.Sprintf("the API %s changed while it was being deleted; read it again and retry", name))
	} else if err != nil {
		return err
	}
	s.audit(c, ActionAPIDelete, name, fmt.Sprintf("revision %d, managed by %s", cur.Revision, cur.ManagedBy))
	if s.cfg.APIsApplied != nil {
		wctx, cancel := context.WithTimeout(ctx, applyTimeout)
		defer cancel()
		if err := s.cfg.APIsApplied(wctx, name, 0); err != nil {
			return fiber.NewError(fiber.StatusInternalServerError, "the API is deleted, but "+err.Error())
		}
	}
	return c.SendStatus(fiber.StatusNoContent)
}

// ErrReloadRefused wraps the reason a reload of the stack file changed nothing: a problem in the
// file, or a change that needs a restart.
var ErrReloadRefused = errors.New("reload refused")

// ActionStackReload is the audit action of a reload of the stack file.
const ActionStackReload = "stack.reload"

// reload re-reads the node's stack file and applies what changed.
func (s *Server) reload(c *fiber.Ctx) error {
	if s.cfg.Reload == nil {
		return fiber.NewError(fiber.StatusServiceUnavailable, "this node has no stack file to reload")
	}
	rep, err := s.cfg.Reload(c.UserContext())
	if errors.Is(err, ErrReloadRefused) {
		return fiber.NewError(fiber.StatusBadRequest, strings.TrimPrefix(err.Error(), ErrReloadRefused.Error()+": "))
	}
	if err != nil {
		return err
	}
	a := rep.APIs
	s.audit(c, ActionStackReload, rep.File, fmt.Sprintf("functions deployed %d, APIs created %d, updated %d, deleted %d, drifted %d",
		len(rep.Functions), len(a.Created), len(a.Updated), len(a.Deleted), len(a.Drift)))
	return c.JSON(rep)
}
