package gateway

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"mime"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"gatehouse.dev/gatehouse/internal/bus"
	"gatehouse.dev/gatehouse/internal/mapping"
	"gatehouse.dev/gatehouse/internal/reqvalidate"
	"gatehouse.dev/gatehouse/internal/respcache"
	"gatehouse.dev/gatehouse/internal/spec"
)

// REST APIs are served by the same request path as HTTP APIs, with what REST APIs do differently:
// payload format 1.0 events and responses (binary bodies by binaryMediaTypes), token and request
// authorizers answering IAM policies, request validation with models, the gateway's own answers
// in REST's shape (x-amzn-RequestId, x-amzn-ErrorType, customisable by gateway responses), a stage
// cache, and compression.

// HeaderRESTRequestID carries the request id of a REST API's responses, as API Gateway's REST APIs
// send it (instead of apigw-requestid).
const HeaderRESTRequestID = "x-amzn-RequestId"

// restAPI is a REST API's own settings, compiled.
type restAPI struct {
	binary []string
	// minCompress is the smallest body compressed; -1 for no compression.
	minCompress int
	models      *reqvalidate.Models
	responses   map[string]*gatewayResponse
	// routes are the routes' validation and cache settings, by route index.
	routes []restRoute
	// caches are the stages' caches, by stage name (none for a stage without one).
	caches map[string]*stageCache
}

// gatewayResponse is a customised gateway response, compiled.
type gatewayResponse struct {
	status  int
	headers map[string]*mapping.Template
	body    *mapping.Template // nil keeps the default body
}

// stageCache is a stage's response cache.
type stageCache struct {
	cache       *respcache.Cache
	ttl         time.Duration
	requireAuth bool
}

// restRoute is a REST route's request validation and caching.
type restRoute struct {
	resourceID     string
	required       map[string]bool
	validateParams bool
	models         map[string]string
	validateBody   bool
	cache          bool
	cacheTTL       time.Duration // -1 for the stage's
	cacheKeys      []string
}

// compileREST compiles the REST settings of a, whose routes are compiled as ca's; caches are
// shared with the API's previous definition when a stage's cache keeps its size.
func (s *Server) compileREST(ca *compiledAPI) error {
	a := ca.Spec
	r := &restAPI{binary: a.BinaryMediaTypes, minCompress: -1, responses: map[string]*gatewayResponse{}, caches: map[string]*stageCache{}}
	if a.MinimumCompressionSize != nil {
		r.minCompress = *a.MinimumCompressionSize
	}
	if len(a.Models) > 0 {
		m, err := reqvalidate.Compile(a.ModelSchemas())
		if err != nil {
			return fmt.Errorf("gateway: API %s: %w", ca.ID, err)
		}
		r.models = m
	}
	for t, gr := range a.GatewayResponses {
		c := &gatewayResponse{status: gr.StatusCode, headers: map[string]*mapping.Template{}}
		for h, v := range gr.Headers {
			tpl, err := mapping.ParseTemplate(v)
			if err != nil {
				return fmt.Errorf("gateway: API %s: gatewayResponses.%s.headers.%s: %w", ca.ID, t, h, err)
			}
			c.headers[h] = tpl
		}
		if gr.Body != "" {
			tpl, err := mapping.ParseTemplate(gr.Body)
			if err != nil {
				return fmt.Errorf("gateway: API %s: gatewayResponses.%s.body: %w", ca.ID, t, err)
			}
			c.body = tpl
		}
		r.responses[t] = c
	}
	for name, st := range a.Stages {
		if st.Cache == nil {
			continue
		}
		capacity := int64(st.Cache.SizeMB * (1 << 20))
		key := ca.ID + "\x00" + name + "\x00" + strconv.FormatInt(capacity, 10)
		c, _ := s.caches.LoadOrStore(key, respcache.New(capacity))
		r.caches[name] = &stageCache{cache: c.(*respcache.Cache), ttl: st.Cache.TTL.D(), requireAuth: st.Cache.RequireAuthorization}
	}
	for _, rt := range ca.Routes {
		sr := rt.Spec
		h := sha256.Sum256([]byte(ca.ID + "\x00" + sr.Key))
		rr := restRoute{resourceID: hex.EncodeToString(h[:])[:6], cacheTTL: -1}
		if v := sr.Request; v != nil {
			rr.required, rr.validateParams, rr.models, rr.validateBody = v.Parameters, v.ValidateParameters, v.Models, v.ValidateBody
		}
		method, _, _ := strings.Cut(sr.Key, " ")
		rr.cache = method == fiber.MethodGet && len(r.caches) > 0
		if k, err := spec.ParseRouteKey(sr.Key); err == nil {
			for _, seg := range k.Segments {
				if seg.Kind != spec.SegmentLiteral {
					rr.cacheKeys = append(rr.cacheKeys, "path."+seg.Text)
				}
			}
		}
		if c := sr.Cache; c != nil {
			rr.cache = c.Enabled
			if c.TTL != nil {
				rr.cacheTTL = c.TTL.D()
			}
			if c.Keys != nil {
				rr.cacheKeys = c.Keys
			}
		}
		r.routes = append(r.routes, rr)
	}
	ca.rest = r
	return nil
}

// restDenial is a request a REST API refuses before its integration, with the gateway response
// type that answers it.
func restDenial(status int, message, respType, reason string) *denial {
	return &denial{status: status, message: message, reason: reason, respType: respType}
}

// validateREST applies a REST route's request validation.
func (s *Server) validateREST(c *fiber.Ctx, route string, rr *restRoute, models *reqvalidate.Models, params map[string]string) error {
	if rr.validateParams {
		missing := reqvalidate.MissingParameters(rr.required, func(location, name string) bool {
			switch location {
			case "querystring":
				return len(c.Request().URI().QueryArgs().Peek(name)) > 0
			case "header":
				return len(c.Request().Header.Peek(name)) > 0
			case "path":
				return params[name] != ""
			}
			return false
		})
		if missing != "" {
			return restDenial(fiber.StatusBadRequest, missing, "BAD_REQUEST_PARAMETERS", missing)
		}
	}
	if rr.validateBody && models != nil {
		ct, _, _ := mime.ParseMediaType(string(c.Request().Header.ContentType()))
		if ct == "" {
			ct = fiber.MIMEApplicationJSON
		}
		model, ok := rr.models[ct]
		if !ok {
			model, ok = rr.models["$default"]
		}
		if ok {
			err := models.ValidateBody(model, c.Body())
			var bad *reqvalidate.BodyError
			switch {
			case err == nil:
			case errors.As(err, &bad):
				d := restDenial(fiber.StatusBadRequest, "Invalid request body", "BAD_REQUEST_BODY", err.Error())
				d.validation = err.Error()
				return d
			case errors.Is(err, reqvalidate.ErrBodyTooLarge):
				return restDenial(fiber.StatusRequestEntityTooLarge, "Request Too Long", "REQUEST_TOO_LARGE", err.Error())
			default:
				// The model is missing or the validator failed: the API's fault, not the caller's.
				return fmt.Errorf("route %s: validating the body: %w", route, err)
			}
		}
	}
	return nil
}

// restCacheKey is the cache key of a request to a REST route.
func restCacheKey(c *fiber.Ctx, stage string, route Route, rr *restRoute, params map[string]string) string {
	parts := []string{stage, route.Key, c.Method()}
	for _, k := range rr.cacheKeys {
		location, name, _ := strings.Cut(k, ".")
		var v string
		switch location {
		case "querystring":
			v = string(bytes.Join(c.Request().URI().QueryArgs().PeekMulti(name), []byte(",")))
		case "header":
			v = string(bytes.Join(c.Request().Header.PeekAll(name), []byte(",")))
		case "path":
			v = params[name]
		}
		parts = append(parts, k, v)
	}
	return respcache.Key(parts...)
}

// serveFromCache answers c from the stage cache when the route caches and has an entry; it
// returns the key the response is to be stored under (or "" when it is not stored) and whether
// c was answered.
func (s *Server) serveFromCache(c *fiber.Ctx, api *compiledAPI, stage *Stage, idx int, route Route, params map[string]string, now time.Time) (string, bool) {
	rr := &api.rest.routes[idx]
	sc := api.rest.caches[stage.Name]
	if sc == nil || !rr.cache {
		return "", false
	}
	key := restCacheKey(c, stage.Name, route, rr, params)
	if strings.Contains(strings.ToLower(c.Get(fiber.HeaderCacheControl)), "max-age=0") {
		// A client asks for a fresh answer: granted when it may invalidate the cache.
		if !sc.requireAuth || s.signedByStack(c) {
			sc.cache.Delete(key)
			s.metrics.cacheResult(api.ID, stage.Name, "invalidated")
			return key, false
		}
	}
	e, _, ok := sc.cache.Get(key, now)
	if !ok {
		s.metrics.cacheResult(api.ID, stage.Name, "miss")
		return key, false
	}
	s.metrics.cacheResult(api.ID, stage.Name, "hit")
	c.Status(e.Status)
	for _, h := range e.Header {
		c.Response().Header.Add(h[0], h[1])
	}
	c.Response().SetBodyRaw(e.Body)
	return "", true
}

// storeInCache keeps c's response in the stage cache under key: successful answers only, so that
// an error is not served again for the TTL.
func (s *Server) storeInCache(c *fiber.Ctx, api *compiledAPI, stage *Stage, idx int, key string, now time.Time) {
	sc := api.rest.caches[stage.Name]
	status := c.Response().StatusCode()
	if key == "" || sc == nil || status < 200 || status > 299 {
		return
	}
	ttl := sc.ttl
	if rr := &api.rest.routes[idx]; rr.cacheTTL >= 0 {
		ttl = rr.cacheTTL
	}
	e := &respcache.Entry{Status: status, Body: bytes.Clone(c.Response().Body())}
	c.Response().Header.VisitAll(func(k, v []byte) {
		if name := string(k); strings.EqualFold(name, HeaderRESTRequestID) || strings.EqualFold(name, "Date") || strings.EqualFold(name, "Content-Length") {
			return
		}
		e.Header = append(e.Header, [2]string{string(k), string(v)})
	})
	sc.cache.Put(key, e, ttl, now)
}

// signedByStack reports whether c is signed with AWS Signature Version 4 by one of the stack's
// access keys: what a cache invalidation needs, as API Gateway asks for the
// execute-api:InvalidateCache permission.
func (s *Server) signedByStack(c *fiber.Ctx) bool {
	if s.cfg.Verifier == nil || len(c.Request().Header.Peek(fiber.HeaderAuthorization)) == 0 {
		return false
	}
	_, err := s.verifySigV4(c)
	return err == nil
}

// mediaTypeMatches reports whether the media type of contentType (parameters ignored) is one of
// patterns, where "*" stands for any type or subtype.
func mediaTypeMatches(patterns []string, contentType string) bool {
	if len(patterns) == 0 || contentType == "" {
		return false
	}
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return false
	}
	typ, subtype, _ := strings.Cut(mt, "/")
	for _, p := range patterns {
		pt, ps, _ := strings.Cut(strings.ToLower(p), "/")
		if (pt == "*" || pt == typ) && (ps == "*" || ps == subtype) {
			return true
		}
	}
	return false
}

// acceptsBinary reports whether one of the media types of an Accept header is binary to the API.
func acceptsBinary(patterns []string, accept string) bool {
	for part := range strings.SplitSeq(accept, ",") {
		if mediaTypeMatches(patterns, strings.TrimSpace(part)) {
			return true
		}
	}
	return false
}

// writeResponseREST applies a REST API function's payload 1.0 response: as WriteResponseV1, except
// that a base64 body is decoded only when its content type, or one the client accepts, is one of
// the API's binary media types; otherwise the client gets the base64 text, as REST APIs do.
func writeResponseREST(c *fiber.Ctx, payload []byte, binary []string) error {
	r, err := parseFunctionResponseV1(payload)
	if err != nil {
		return err
	}
	if r.base64 != "" && !mediaTypeMatches(binary, r.contentType) && !acceptsBinary(binary, c.Get(fiber.HeaderAccept)) {
		r.body = []byte(r.base64)
	}
	writeFunctionResponseV1(c, r)
	return nil
}

// compressREST compresses c's response body with gzip or deflate when the API compresses, the
// body is at least its minimum size, the client accepts one of them and the body is not encoded
// already.
func compressREST(c *fiber.Ctx, min int) {
	resp := c.Response()
	if min < 0 || len(resp.Header.Peek(fiber.HeaderContentEncoding)) > 0 || c.Method() == fiber.MethodHead {
		return
	}
	encoding := ""
	for part := range strings.SplitSeq(c.Get(fiber.HeaderAcceptEncoding), ",") {
		name, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if refusedCoding(params) {
			continue
		}
		if n := strings.ToLower(strings.TrimSpace(name)); n == "gzip" || n == "deflate" {
			encoding = n
			break
		}
	}
	if encoding == "" {
		return
	}
	body := resp.Body() // reads a streamed body whole
	if len(body) < min {
		return
	}
	var b bytes.Buffer
	var w interface {
		Write([]byte) (int, error)
		Close() error
	}
	if encoding == "gzip" {
		w = gzip.NewWriter(&b)
	} else {
		w, _ = flate.NewWriter(&b, flate.DefaultCompression)
	}
	w.Write(body)
	w.Close()
	resp.SetBodyRaw(b.Bytes())
	resp.Header.Set(fiber.HeaderContentEncoding, encoding)
	resp.Header.Add(fiber.HeaderVary, fiber.HeaderAcceptEncoding)
}

// refusedCoding reports whether the parameters of an Accept-Encoding entry give it the weight 0
// ("q=0", "q=0.0", "q=0.000"): the client refuses that coding.
func refusedCoding(params string) bool {
	for p := range strings.SplitSeq(params, ";") {
		if v, ok := strings.CutPrefix(strings.ToLower(strings.ReplaceAll(p, " ", "")), "q="); ok {
			q, err := strconv.ParseFloat(v, 64)
			return err == nil && q == 0
		}
	}
	return false
}

// restError is how a REST API answers err: its status, message, x-amzn-ErrorType and gateway
// response type.
func restError(err error, status int, message string) (int, string, string, string) {
	var d *denial
	if errors.As(err, &d) && d.respType != "" {
		return d.status, d.message, restErrorType(d.respType), d.respType
	}
	switch {
	case errors.Is(err, errNotFound):
		return fiber.StatusForbidden, "Missing Authentication Token", "MissingAuthenticationTokenException", "MISSING_AUTHENTICATION_TOKEN"
	case errors.Is(err, errGatewayTimeout):
		return fiber.StatusGatewayTimeout, "Endpoint request timed out", "", "INTEGRATION_TIMEOUT"
	case errors.Is(err, errAuthorizerFailed), errors.Is(err, errAuthorizerTimeout):
		// An authorizer that does not answer in time is a failed authorizer, not a slow
		// integration: API Gateway answers 500 {"message":null} (reference, section 3).
		return fiber.StatusInternalServerError, "", "AuthorizerConfigurationException", "AUTHORIZER_CONFIGURATION_ERROR"
	}
	rt := responseType(status, err)
	switch {
	case rt == "INTEGRATION_TIMEOUT":
		return fiber.StatusGatewayTimeout, "Endpoint request timed out", "", rt
	case status == fiber.StatusInternalServerError && (errors.Is(err, bus.ErrFunctionError) || errors.Is(err, bus.ErrFunctionTimeout) ||
		errors.Is(err, ErrMalformedResponse) || errors.Is(err, bus.ErrResponseTooLarge)):
		return fiber.StatusBadGateway, "Internal server error", "InternalServerErrorException", "DEFAULT_5XX"
	case status == fiber.StatusBadGateway:
		return status, "Internal server error", "InternalServerErrorException", "INTEGRATION_FAILURE"
	case status == fiber.StatusNotFound:
		return fiber.StatusForbidden, "Missing Authentication Token", "MissingAuthenticationTokenException", "MISSING_AUTHENTICATION_TOKEN"
	case status == fiber.StatusUnauthorized:
		return status, "Unauthorized", "UnauthorizedException", rt
	case status == fiber.StatusForbidden:
		return status, "Forbidden", "ForbiddenException", rt
	case status == fiber.StatusTooManyRequests:
		if message == "Limit Exceeded" {
			return status, message, "LimitExceededException", "QUOTA_EXCEEDED"
		}
		return status, message, "TooManyRequestsException", rt
	case status == fiber.StatusRequestEntityTooLarge:
		return status, "Request Too Long", "RequestTooLongException", rt
	case status >= 500:
		return status, message, "", "DEFAULT_5XX"
	}
	return status, message, "", "DEFAULT_4XX"
}

// restErrorType is the x-amzn-ErrorType of a gateway response type.
func restErrorType(respType string) string {
	switch respType {
	case "BAD_REQUEST_BODY", "BAD_REQUEST_PARAMETERS":
		return "BadRequestException"
	case "UNAUTHORIZED":
		return "UnauthorizedException"
	case "ACCESS_DENIED":
		return "AccessDeniedException"
	case "INVALID_API_KEY":
		return "ForbiddenException"
	case "THROTTLED":
		return "TooManyRequestsException"
	case "QUOTA_EXCEEDED":
		return "LimitExceededException"
	case "AUTHORIZER_CONFIGURATION_ERROR", "AUTHORIZER_FAILURE":
		return "AuthorizerConfigurationException"
	}
	return ""
}

// writeRESTError answers c, a request to the REST API rest, with err in REST's shape and the API's
// gateway responses.
func (s *Server) writeRESTError(c *fiber.Ctx, rest *restAPI, info *accessInfo, err error, status int, message string) {
	status, message, errType, respType := restError(err, status, message)
	gr := rest.responses[respType]
	if gr == nil {
		class := "DEFAULT_4XX"
		if status >= 500 {
			class = "DEFAULT_5XX"
		}
		gr = rest.responses[class]
	}
	if errType != "" {
		c.Set("x-amzn-ErrorType", errType)
	}
	c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSON)
	key := "message"
	if strings.HasPrefix(message, "User") {
		// API Gateway spells the key of an authorizer's and a resource policy's refusals with a
		// capital M.
		key = "Message"
	}
	body := []byte(`{"` + key + `":null}`)
	if message != "" {
		body = []byte(`{"` + key + `":` + strconv.Quote(message) + `}`)
	}
	info.errMessage, info.respType = message, respType
	if gr != nil {
		info.err, info.status = err, status
		src := &errorSource{s: s, info: info, message: message, respType: respType}
		if gr.status != 0 {
			status = gr.status
		}
		for h, tpl := range gr.headers {
			var b bytes.Buffer
			tpl.Execute(&b, src)
			c.Set(h, b.String())
		}
		if gr.body != nil {
			var b bytes.Buffer
			gr.body.Execute(&b, src)
			body = b.Bytes()
		}
	}
	c.Status(status)
	c.Response().SetBodyRaw(body)
}

// errorSource is what a gateway response's templates read: the request's $context, with its
// error, and its stage variables.
type errorSource struct {
	s    *Server
	info *accessInfo
	// message is the answer's message ("" for null) and respType its gateway response type.
	message, respType string
}

func (e *errorSource) Context(name string) (string, bool) {
	switch name {
	case "error.messageString":
		// Quoted, as API Gateway's: the default body {"message":$context.error.messageString}
		// written as a template gives the default body.
		if e.message == "" {
			return "null", true
		}
		return strconv.Quote(e.message), true
	case "error.responseType":
		// The REST type the answer took its gateway response by, not the HTTP API's guess.
		return e.respType, e.respType != ""
	}
	return e.s.accessValue(e.info, name)
}
func (e *errorSource) StageVariable(name string) (string, bool) {
	if e.info.stage == nil {
		return "", false
	}
	v, ok := e.info.stage.Variables[name]
	return v, ok
}
func (e *errorSource) Param(string) (string, bool) { return "", false }
func (e *errorSource) Body() []byte                { return nil }

// Errors of REST authorizers.
var (
	errAuthorizerFailed  = errors.New("the authorizer failed")
	errAuthorizerTimeout = errors.New("the authorizer did not answer in time")
)

// finishREST stores a REST API's response in its stage cache under cacheKey ("" for none) and
// compresses it.
func (s *Server) finishREST(c *fiber.Ctx, api *compiledAPI, stage *Stage, idx int, cacheKey string, now time.Time) {
	if cacheKey != "" {
		s.storeInCache(c, api, stage, idx, cacheKey, now)
	}
	compressREST(c, api.rest.minCompress)
}
