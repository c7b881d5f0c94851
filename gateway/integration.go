package gateway

import (
	"bytes"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/gofiber/fiber/v2"

	"gatehouse.dev/gatehouse/internal/mapping"
	"gatehouse.dev/gatehouse/internal/spec"
)

// routeIntegration is a route's integration, compiled: a function (the zero value, with the
// payload format), an HTTP backend or a mock, and its parameter mappings.
type routeIntegration struct {
	kind string // spec.IntegrationFunction, spec.IntegrationHTTPProxy or spec.IntegrationMock
	// payloadV1 says a function integration takes payload format 1.0 events and responses.
	payloadV1 bool
	// event says a function integration queues an asynchronous invocation (invocationType Event).
	event bool
	// resource is the route's path pattern ("/pets/{id}", "$default") for 1.0 events.
	resource string
	proxy    *proxyIntegration
	mock     *mockIntegration
	request  *mapping.RequestMap  // nil for none
	response *mapping.ResponseMap // nil for none
}

// mockIntegration is a mock integration's answer.
type mockIntegration struct {
	status  int
	headers map[string]string
	body    *mapping.Template
}

// compileIntegration compiles the integration of r, which came from the stack model when r.Spec
// has a type (routes made without it call functions with payload format 2.0).
func compileIntegration(r Route) (routeIntegration, error) {
	in := r.Spec.Integration
	ri := routeIntegration{kind: in.Type, payloadV1: in.PayloadFormatVersion == spec.PayloadFormat1, resource: routeKeyDefault,
		event: in.InvocationType == spec.InvocationEvent}
	if ri.kind == "" {
		ri.kind = spec.IntegrationFunction
	}
	if _, path, ok := strings.Cut(r.Key, " "); ok {
		ri.resource = path
	}
	var err error
	if len(in.RequestParameters) > 0 {
		if ri.request, err = mapping.CompileRequest(in.RequestParameters); err != nil {
			return ri, fmt.Errorf("route %q: %w", r.Key, err)
		}
	}
	if len(in.ResponseParameters) > 0 {
		if ri.response, err = mapping.CompileResponse(in.ResponseParameters); err != nil {
			return ri, fmt.Errorf("route %q: %w", r.Key, err)
		}
	}
	switch ri.kind {
	case spec.IntegrationFunction:
	case spec.IntegrationHTTPProxy:
		if ri.proxy, err = compileProxy(r.Key, in); err != nil {
			return ri, fmt.Errorf("route %q: %w", r.Key, err)
		}
	case spec.IntegrationMock:
		m := &mockIntegration{status: in.StatusCode, headers: in.Headers}
		if m.status == 0 {
			m.status = fiber.StatusOK
		}
		if m.body, err = mapping.ParseTemplate(in.Body); err != nil {
			return ri, fmt.Errorf("route %q: mock body: %w", r.Key, err)
		}
		ri.mock = m
	default:
		return ri, fmt.Errorf("route %q: unknown integration type %q", r.Key, ri.kind)
	}
	return ri, nil
}

// serveMock answers a request of a mock integration's route.
func (s *Server) serveMock(c *fiber.Ctx, rq *routeRequest) error {
	m := rq.integration.mock
	for k, v := range m.headers {
		c.Set(k, v)
	}
	if len(c.Response().Header.ContentType()) == 0 {
		c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSON)
	}
	var b bytes.Buffer
	m.body.Execute(&b, rq)
	c.Status(m.status)
	c.Response().SetBodyRaw(b.Bytes())
	rq.l.access.integrationStatus = m.status
	return nil
}

// routeRequest is a request on its way to a route's integration: what mappings, templates and
// backends read of it.
type routeRequest struct {
	s           *Server
	c           *fiber.Ctx
	l           *labels
	api         *compiledAPI
	stage       *Stage
	route       Route
	integration *routeIntegration
	params      map[string]string
	// rest is the request's path below the API's mount and stage.
	rest string
	// info is the request's $context, filled when first asked for.
	info *accessInfo
}

// context returns the value of $context.name for the request.
func (rq *routeRequest) context(name string) (string, bool) {
	if rq.info == nil {
		info := rq.l.access
		c := rq.c
		info.requestID, _ = c.Locals(localRequestID).(string)
		info.method, info.path, info.protocol = c.Method(), string(c.Request().URI().PathOriginal()), string(c.Request().Header.Protocol())
		info.sourceIP, info.userAgent, info.domain = c.IP(), string(c.Request().Header.UserAgent()), hostOnly(string(c.Request().Host()))
		info.start = rq.l.start
		rq.info = &info
	}
	return rq.s.accessValue(rq.info, name)
}

// Context implements mapping.TemplateSource.
func (rq *routeRequest) Context(name string) (string, bool) { return rq.context(name) }

// StageVariable implements mapping.TemplateSource.
func (rq *routeRequest) StageVariable(name string) (string, bool) {
	v, ok := rq.stage.Variables[name]
	return v, ok
}

// Param implements mapping.TemplateSource: a path parameter, else a query string parameter, else
// a header.
func (rq *routeRequest) Param(name string) (string, bool) {
	if v, ok := rq.params[name]; ok {
		return v, true
	}
	if v := rq.c.Request().URI().QueryArgs().Peek(name); v != nil {
		return string(v), true
	}
	if v := rq.c.Request().Header.Peek(name); v != nil {
		return string(v), true
	}
	return "", false
}

// Body implements mapping.TemplateSource.
func (rq *routeRequest) Body() []byte { return rq.c.Body() }

// Lookup implements mapping.Source for request mappings and response mappings' $context and
// $stageVariables.
func (rq *routeRequest) Lookup(ref mapping.Ref) (string, bool) {
	switch ref.Kind {
	case mapping.RequestHeader:
		vs := rq.c.Request().Header.PeekAll(ref.Name)
		if len(vs) == 0 {
			return "", false
		}
		return string(bytes.Join(vs, []byte(","))), true
	case mapping.RequestQuery:
		vs := rq.c.Request().URI().QueryArgs().PeekMulti(ref.Name)
		if len(vs) == 0 {
			return "", false
		}
		return string(bytes.Join(vs, []byte(","))), true
	case mapping.RequestBody:
		return mapping.BodyValue(rq.c.Body(), ref.Name)
	case mapping.RequestPath:
		return rq.rest, true
	case mapping.RequestPathParam:
		v, ok := rq.params[ref.Name]
		return v, ok
	case mapping.Context:
		return rq.context(ref.Name)
	case mapping.StageVariable:
		return rq.StageVariable(ref.Name)
	}
	return "", false
}

// responseSource is what a response mapping reads: the integration's response, then the request.
type responseSource struct {
	rq     *routeRequest
	header http.Header
	body   func() []byte
}

func (r responseSource) Lookup(ref mapping.Ref) (string, bool) {
	switch ref.Kind {
	case mapping.ResponseHeader:
		vs := r.header.Values(ref.Name)
		if len(vs) == 0 {
			return "", false
		}
		return strings.Join(vs, ","), true
	case mapping.ResponseBody:
		return mapping.BodyValue(r.body(), ref.Name)
	}
	return r.rq.Lookup(ref)
}

// mapFunctionResponse applies the route's response mapping to the response a function's answer
// was written as.
func (rq *routeRequest) mapFunctionResponse() {
	m := rq.integration.response
	resp := rq.c.Response()
	// serveProxy has applied an HTTP proxy's mapping, to the backend's status and body.
	if m == nil || rq.integration.kind == spec.IntegrationHTTPProxy || !m.For(resp.StatusCode()) {
		return
	}
	h := http.Header{}
	resp.Header.VisitAll(func(k, v []byte) { h.Add(string(k), string(v)) })
	out := mapping.Response{Status: resp.StatusCode(), Header: h.Clone()}
	m.Apply(&out, responseSource{rq: rq, header: h, body: resp.Body})
	if out.Status != resp.StatusCode() {
		resp.SetStatusCode(out.Status)
	}
	for k := range h {
		if _, ok := out.Header[k]; !ok {
			resp.Header.Del(k)
		}
	}
	for k, vs := range out.Header {
		if slices.Equal(h[k], vs) {
			continue
		}
		resp.Header.Del(k)
		for _, v := range vs {
			resp.Header.Add(k, v)
		}
	}
}
