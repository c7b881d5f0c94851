package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/gofiber/fiber/v2"

	"gatehouse.dev/gatehouse/functions"
	"gatehouse.dev/gatehouse/internal/adminapi"
	"gatehouse.dev/gatehouse/internal/async"
	"gatehouse.dev/gatehouse/internal/bus"
	"gatehouse.dev/gatehouse/internal/spec"
)

// Limits of the function endpoints.
const (
	// MaxInvocationPayload bounds the event of a synchronous invocation (6 MiB, as in Lambda).
	MaxInvocationPayload = 6 << 20
	// bodySlack is what the listener's body limit allows beyond the largest bundle or payload, so
	// that the handlers, not fasthttp, refuse what is just over a limit, with a precise message.
	bodySlack = 64 << 10
)

var functionName = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

func bundleLimits(l functions.BundleLimits) functions.BundleLimits {
	if l.MaxBundleBytes <= 0 {
		l.MaxBundleBytes = functions.DefaultMaxBundleBytes
	}
	if l.MaxModuleBytes <= 0 {
		l.MaxModuleBytes = functions.DefaultMaxModuleBytes
	}
	if l.MaxEntries <= 0 {
		l.MaxEntries = functions.DefaultMaxEntries
	}
	return l
}

func (s *Server) functionRoutes(v1 fiber.Router) {
	v1.Post("/functions", s.deploy)
	v1.Get("/functions", s.listFunctions)
	v1.Get("/functions/:name", s.getFunction)
	v1.Delete("/functions/:name", s.deleteFunction)
	v1.Get("/functions/:name/versions", s.listVersions)
	v1.Get("/functions/:name/aliases", s.listAliases)
	v1.Put("/functions/:name/aliases/:alias", s.putAlias)
	v1.Delete("/functions/:name/aliases/:alias", s.deleteAlias)
	v1.Post("/functions/:name/invocations", s.invoke)
	v1.Get("/queues", s.queues)
	v1.Get("/schedules", s.schedules)
	v1.Post("/queues/:name/redrive", s.redrive)
	v1.Post("/events/:subject", s.publishEvent)
	v1.Get("/functions/:name/logs", s.logs)
}

// userMessage is err's message for an API answer, without the package prefix.
func userMessage(err error) string {
	return strings.TrimPrefix(err.Error(), "functions: ")
}

// tooLargeMessage says which limit a request refused before its body was read is over.
func (s *Server) tooLargeMessage(c *fiber.Ctx) string {
	if strings.HasSuffix(c.Path(), "/invocations") {
		return payloadTooLarge()
	}
	if c.Method() == fiber.MethodPost && strings.TrimSuffix(c.Path(), "/") == "/admin/v1/functions" {
		return bundleTooLarge(s.cfg.BundleLimits.MaxBundleBytes)
	}
	return fmt.Sprintf("the request body is over the limit of %d bytes", s.app.Config().BodyLimit)
}

func bundleTooLarge(limit int64) string {
	return fmt.Sprintf("the bundle is over the limit of %d bytes: leave out files the function does not need, or make the module smaller", limit)
}

func payloadTooLarge() string {
	return fmt.Sprintf("the invocation payload is over the limit of %d bytes (6 MiB)", MaxInvocationPayload)
}

// checkFunctionName refuses a function name in a path that no function can have.
func checkFunctionName(name string) error {
	if !functionName.MatchString(name) {
		return fiber.NewError(fiber.StatusBadRequest, fmt.Sprintf("%q is not a function name: want 1 to %d letters, digits, - and _", name, functions.MaxNameLength))
	}
	return nil
}

// deploy reads the uploaded bundle, checks its module, publishes it, waits until the node's workers
// have loaded it, and points the alias of the query at it. Nothing is stored unless the bundle and
// its module pass every check.
func (s *Server) deploy(c *fiber.Ctx) error {
	limit := s.cfg.BundleLimits.MaxBundleBytes
	body := c.Body()
	if int64(c.Request().Header.ContentLength()) > limit || int64(len(body)) > limit {
		return fiber.NewError(fiber.StatusRequestEntityTooLarge, bundleTooLarge(limit))
	}
	alias, description := c.Query("alias"), c.Query("description")
	if alias != "" && !functions.ValidAliasName(alias) {
		return fiber.NewError(fiber.StatusBadRequest, fmt.Sprintf("alias %q: want 1 to %d letters, digits, - and _, not all digits", alias, functions.MaxAliasNameLength))
	}
	ctx := c.UserContext()
	b, err := functions.ReadBundle(bytes.NewReader(body), int64(len(body)), s.cfg.BundleLimits)
	if err != nil {
		return err
	}
	name := b.Manifest.Name
	if s.cfg.Check != nil {
		if err := s.cfg.Check(ctx, b); err != nil {
			return fiber.NewError(fiber.StatusBadRequest, fmt.Sprintf("the module of %s cannot be run: %v", name, err))
		}
	}
	by, _ := c.Locals(localTokenName).(string)
	v, created, err := s.cfg.Registry.Publish(ctx, b, functions.PublishOptions{Description: description, By: by, From: c.IP()})
	if err != nil {
		return err
	}
	target := name + ":" + strconv.Itoa(v.Version)
	detail := "sha256 " + v.ModuleSHA256 + ", unchanged"
	if created {
		detail = "sha256 " + v.ModuleSHA256 + ", created"
	}
	if s.cfg.Activate != nil {
		if err := s.cfg.Activate(ctx, v); err != nil {
			s.audit(c, ActionFunctionDeploy, target, detail+", not loaded yet")
			s.cfg.Logger.Error("deployed version not loaded", "function", name, "version", v.Version, "err", err)
			return fiber.NewError(fiber.StatusInternalServerError,
				fmt.Sprintf("version %d of %s is stored but not yet loaded by the workers (%v): deploy the same bundle again to retry", v.Version, name, err))
		}
	}
	s.audit(c, ActionFunctionDeploy, target, detail)
	s.cfg.Logger.Info("function deployed", "function", name, "version", v.Version, "sha256", v.ModuleSHA256,
		"created", created, "by", c.Locals(localTokenName), "from", c.IP())
	answer := adminapi.DeployAnswer{Function: name, Created: created, Version: versionView(v)}
	if alias != "" {
		rec := functions.AliasRecord{Function: name, Name: alias, Version: v.Version}
		if old, err := s.cfg.Registry.Alias(ctx, name, alias); err == nil {
			rec.Description = old.Description
		}
		a, err := s.cfg.Registry.SetAlias(ctx, rec)
		if err == nil {
			err = s.applied(ctx, functions.AliasApplied(a))
		}
		if err != nil {
			return fmt.Errorf("version %d of %s is deployed, but alias %s was not set: %w", v.Version, name, alias, err)
		}
		s.audit(c, ActionAliasSet, name+":"+alias, "version "+strconv.Itoa(v.Version))
		view := aliasView(a)
		answer.Alias = &view
	}
	status := fiber.StatusOK
	if created {
		status = fiber.StatusCreated
	}
	return c.Status(status).JSON(answer)
}

func (s *Server) listFunctions(c *fiber.Ctx) error {
	list, err := s.cfg.Registry.List(c.UserContext())
	if err != nil {
		return err
	}
	views := make([]adminapi.FunctionView, 0, len(list))
	for _, f := range list {
		views = append(views, functionView(f))
	}
	return c.JSON(adminapi.FunctionList{Functions: views})
}

func (s *Server) getFunction(c *fiber.Ctx) error {
	ctx, name := c.UserContext(), c.Params("name")
	f, err := s.cfg.Registry.Get(ctx, name)
	if err != nil {
		return err
	}
	latest, err := s.cfg.Registry.Version(ctx, name, f.LatestVersion)
	if err != nil {
		return err
	}
	aliases, err := s.cfg.Registry.Aliases(ctx, name)
	if err != nil {
		return err
	}
	return c.JSON(adminapi.FunctionDetail{FunctionView: functionView(f), Latest: versionView(latest), Aliases: aliasViews(aliases)})
}

func (s *Server) deleteFunction(c *fiber.Ctx) error {
	name := c.Params("name")
	f, err := s.cfg.Registry.Get(c.UserContext(), name)
	if err != nil {
		return err
	}
	if err := s.cfg.Registry.Delete(c.UserContext(), name); err != nil {
		return err
	}
	if err := s.applied(c.UserContext(), func(snap *functions.Snapshot) bool {
		got, ok := snap.Function(name)
		return !ok || got.ID != f.ID
	}); err != nil {
		return err
	}
	s.audit(c, ActionFunctionDelete, name, "")
	s.cfg.Logger.Info("function deleted", "function", name, "by", c.Locals(localTokenName), "from", c.IP())
	return c.SendStatus(fiber.StatusNoContent)
}

func (s *Server) listVersions(c *fiber.Ctx) error {
	vs, err := s.cfg.Registry.Versions(c.UserContext(), c.Params("name"))
	if err != nil {
		return err
	}
	return c.JSON(adminapi.VersionList{Versions: versionViews(vs)})
}

func (s *Server) listAliases(c *fiber.Ctx) error {
	as, err := s.cfg.Registry.Aliases(c.UserContext(), c.Params("name"))
	if err != nil {
		return err
	}
	return c.JSON(adminapi.AliasList{Aliases: aliasViews(as)})
}

func (s *Server) putAlias(c *fiber.Ctx) error {
	var req adminapi.AliasRequest
	dec := json.NewDecoder(bytes.NewReader(c.Body()))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return fiber.NewError(fiber.StatusBadRequest, fmt.Sprintf(
			`the body must be JSON: {"version": N, "additionalVersion": N, "additionalWeight": 0.1, "description": "...", "revision": N} (%v)`, err))
	}
	name, alias := c.Params("name"), c.Params("alias")
	a, err := s.cfg.Registry.SetAlias(c.UserContext(), functions.AliasRecord{
		Function:          name,
		Name:              alias,
		Version:           req.Version,
		AdditionalVersion: req.AdditionalVersion,
		AdditionalWeight:  req.AdditionalWeight,
		Description:       req.Description,
		Revision:          req.Revision,
	})
	if err != nil {
		return err
	}
	if err := s.applied(c.UserContext(), functions.AliasApplied(a)); err != nil {
		return err
	}
	view := aliasView(a)
	detail := "version " + view.Target
	if a.AdditionalVersion != 0 {
		detail += fmt.Sprintf(", %g to version %d", a.AdditionalWeight, a.AdditionalVersion)
	}
	s.audit(c, ActionAliasSet, name+":"+alias, detail)
	s.cfg.Logger.Info("alias set", "function", name, "alias", alias, "version", a.Version,
		"by", c.Locals(localTokenName), "from", c.IP())
	return c.JSON(view)
}

func (s *Server) deleteAlias(c *fiber.Ctx) error {
	name, alias := c.Params("name"), c.Params("alias")
	if err := s.cfg.Registry.DeleteAlias(c.UserContext(), name, alias); err != nil {
		return err
	}
	if err := s.applied(c.UserContext(), func(snap *functions.Snapshot) bool {
		_, ok := snap.Alias(name, alias)
		return !ok
	}); err != nil {
		return err
	}
	s.audit(c, ActionAliasDelete, name+":"+alias, "")
	s.cfg.Logger.Info("alias deleted", "function", name, "alias", alias, "by", c.Locals(localTokenName), "from", c.IP())
	return c.SendStatus(fiber.StatusNoContent)
}

// applied waits, when the wiring says how, until the node serves what the registry now holds.
func (s *Server) applied(ctx context.Context, done func(*functions.Snapshot) bool) error {
	if s.cfg.Applied == nil {
		return nil
	}
	if err := s.cfg.Applied(ctx, done); err != nil {
		return fmt.Errorf("the change is stored but this node has not applied it yet: %w", err)
	}
	return nil
}

// invoke runs the function synchronously. A function that fails is still a 200, with
// HeaderFunctionError set, as in Lambda's Invoke; only failures to run it are errors.
func (s *Server) invoke(c *fiber.Ctx) error {
	name := c.Params("name")
	if err := checkFunctionName(name); err != nil {
		return err
	}
	payload := c.Body()
	switch t := invocationType(c); t {
	case "", "RequestResponse":
	case "Event":
		return s.invokeAsync(c, name, payload)
	default:
		return fiber.NewError(fiber.StatusBadRequest, fmt.Sprintf("invocationType %q: want RequestResponse (the default) or Event", t))
	}
	if len(payload) > MaxInvocationPayload {
		return fiber.NewError(fiber.StatusRequestEntityTooLarge, payloadTooLarge())
	}
	if s.cfg.Invoke == nil {
		return fiber.NewError(fiber.StatusServiceUnavailable, "invocations are not available on this node")
	}
	out, version, err := s.cfg.Invoke(c.UserContext(), name, c.Query("qualifier"), payload)
	if version > 0 {
		c.Set(adminapi.HeaderExecutedVersion, strconv.Itoa(version))
	}
	if err == nil {
		c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSON)
		return c.Send(out)
	}
	var fe *adminapi.FunctionError
	switch {
	case errors.Is(err, bus.ErrFunctionError):
		fe = workerFailure(err, adminapi.FunctionError{ErrorType: "FunctionError", ErrorMessage: remoteDetail(err)})
	case errors.Is(err, bus.ErrFunctionTimeout):
		fe = workerFailure(err, adminapi.FunctionError{ErrorType: "Sandbox.Timedout", ErrorMessage: "Task timed out"})
	case errors.Is(err, bus.ErrResponseTooLarge):
		fe = workerFailure(err, adminapi.FunctionError{ErrorType: "ResponseTooLarge", ErrorMessage: "the function's response is over the limit of 6 MiB"})
	case errors.Is(err, bus.ErrOverloaded):
		return fiber.NewError(fiber.StatusServiceUnavailable, "the workers are out of capacity: try again shortly")
	case errors.Is(err, bus.ErrThrottled):
		return fiber.NewError(fiber.StatusTooManyRequests, fmt.Sprintf("%s is at its maxConcurrency: try again later", name))
	case errors.Is(err, bus.ErrNoWorkers):
		return fiber.NewError(fiber.StatusServiceUnavailable, "no worker is available to run the function: try again later")
	case errors.Is(err, bus.ErrWorkerLost):
		return fiber.NewError(fiber.StatusInternalServerError, "the worker running the invocation stopped before it answered: try again")
	case errors.Is(err, bus.ErrFunctionNotFound):
		return fiber.NewError(fiber.StatusNotFound, fmt.Sprintf("function %s: not found on the worker", name))
	default:
		return err // functions.ErrNotFound, ErrInvalid, or a failure: handleError maps it
	}
	c.Set(adminapi.HeaderFunctionError, "Unhandled")
	return c.JSON(fe)
}

// invocationType is the invocations endpoint's ?invocationType=, or its X-Amz-Invocation-Type
// header as Lambda's Invoke takes it.
func invocationType(c *fiber.Ctx) string {
	if t := c.Query("invocationType"); t != "" {
		return t
	}
	return c.Get("X-Amz-Invocation-Type")
}

// invokeAsync queues an asynchronous invocation and answers 202 with its request id once it is
// stored.
func (s *Server) invokeAsync(c *fiber.Ctx, name string, payload []byte) error {
	if len(payload) > spec.MaxAsyncPayload {
		return fiber.NewError(fiber.StatusRequestEntityTooLarge,
			fmt.Sprintf("the event is %d bytes; an asynchronous invocation takes at most %d (1 MiB)", len(payload), spec.MaxAsyncPayload))
	}
	if s.cfg.Enqueue == nil {
		return fiber.NewError(fiber.StatusServiceUnavailable, "asynchronous invocations are not available on this node")
	}
	requestID, err := s.cfg.Enqueue(c.UserContext(), name, c.Query("qualifier"), payload)
	switch {
	case errors.Is(err, async.ErrQueueFull):
		return fiber.NewError(fiber.StatusTooManyRequests, "the asynchronous invocation queue is full: try again later")
	case err != nil:
		return err // functions.ErrNotFound: handleError maps it
	}
	return c.Status(fiber.StatusAccepted).JSON(adminapi.Queued{RequestID: requestID})
}

// queues lists the asynchronous invocation queues.
func (s *Server) queues(c *fiber.Ctx) error {
	if s.cfg.Queues == nil {
		return fiber.NewError(fiber.StatusServiceUnavailable, "asynchronous invocations are not available on this node")
	}
	q, err := s.cfg.Queues(c.UserContext())
	if err != nil {
		return err
	}
	if q == nil {
		q = []adminapi.QueueStats{}
	}
	return c.JSON(adminapi.QueueList{Queues: q})
}

// schedules lists the stack's stored schedules.
func (s *Server) schedules(c *fiber.Ctx) error {
	if s.cfg.Schedules == nil {
		return fiber.NewError(fiber.StatusServiceUnavailable, "schedules are not available on this node")
	}
	list, err := s.cfg.Schedules(c.UserContext())
	if err != nil {
		return err
	}
	if list == nil {
		list = []adminapi.Schedule{}
	}
	return c.JSON(adminapi.ScheduleList{Schedules: list})
}

// redrive queues a function's dead letters again.
func (s *Server) redrive(c *fiber.Ctx) error {
	name := c.Params("name")
	if err := checkFunctionName(name); err != nil {
		return err
	}
	if s.cfg.Redrive == nil {
		return fiber.NewError(fiber.StatusServiceUnavailable, "asynchronous invocations are not available on this node")
	}
	n, err := s.cfg.Redrive(c.UserContext(), name)
	if err != nil {
		return err
	}
	s.audit(c, adminapi.ActionQueueRedrive, name, strconv.Itoa(n)+" dead letters")
	return c.JSON(adminapi.Redriven{Function: name, Queued: n})
}

// publishEvent stores the body as a message on a subject of the stack's event bus: the functions
// whose event sources match it receive it.
func (s *Server) publishEvent(c *fiber.Ctx) error {
	subject := c.Params("subject")
	if err := spec.CheckSubject(subject, false); err != nil {
		return fiber.NewError(fiber.StatusBadRequest, err.Error())
	}
	if len(c.Body()) > spec.MaxAsyncPayload {
		return fiber.NewError(fiber.StatusRequestEntityTooLarge, fmt.Sprintf("the message is %d bytes; at most %d (1 MiB)", len(c.Body()), spec.MaxAsyncPayload))
	}
	if s.cfg.Publish == nil {
		return fiber.NewError(fiber.StatusServiceUnavailable, "the event bus is not available on this node")
	}
	seq, err := s.cfg.Publish(c.UserContext(), subject, c.Body())
	switch {
	case errors.Is(err, async.ErrQueueFull):
		return fiber.NewError(fiber.StatusTooManyRequests, "the stack's event stream is full: try again later")
	case err != nil:
		return err
	}
	return c.Status(fiber.StatusAccepted).JSON(adminapi.Published{Subject: subject, Sequence: seq})
}

// workerFailure is the failure the worker described (Lambda's errorType, errorMessage and
// stackTrace, as JSON in the error's detail), or otherwise.
func workerFailure(err error, otherwise adminapi.FunctionError) *adminapi.FunctionError {
	f := adminapi.FunctionError(bus.FailureOf(err, bus.FunctionFailure(otherwise)))
	return &f
}

// remoteDetail is what the worker said about a function error, or the error's own message.
func remoteDetail(err error) string {
	var re *bus.RemoteError
	if errors.As(err, &re) && re.Detail != "" {
		return re.Detail
	}
	return err.Error()
}
