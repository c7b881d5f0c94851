package gateway

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/gofiber/fiber/v2"

	"gatehouse.dev/gatehouse/internal/apikeys"
	"gatehouse.dev/gatehouse/internal/jwtauth"
	"gatehouse.dev/gatehouse/internal/respolicy"
	"gatehouse.dev/gatehouse/internal/sigv4"
)

// Route authorization types.
const (
	AuthNone     = ""
	AuthJWT      = "jwt"
	AuthFunction = "function"
	AuthIAM      = "iam"
)

// RouteAuth is how a route is authorized.
type RouteAuth struct {
	// Type is AuthNone, AuthJWT, AuthFunction or AuthIAM.
	Type string
	// Authorizer names one of the API's Authorizers (jwt and function).
	Authorizer string
	// Scopes are the JWT scopes of which the token must carry one; none means no scope check.
	Scopes []string
}

// Authorizer is one of an API's authorizers.
type Authorizer struct {
	// Type is AuthJWT or AuthFunction.
	Type string
	// JWT configures the verification of tokens (Type AuthJWT). The gateway keeps one verifier per
	// distinct configuration, with its keys, across changes of its APIs.
	JWT *jwtauth.Config
	// IdentitySources are where the identity comes from: "$request.header.NAME",
	// "$request.querystring.NAME", "$context.NAME" or "$stageVariables.NAME". A JWT authorizer
	// uses the first (default the Authorization header).
	IdentitySources []string
	// Function is the function a function authorizer runs (name, optionally qualified).
	Function string
	// ResultTTL caches a function authorizer's answer by identity values; 0 does not cache.
	ResultTTL time.Duration
	// Timeout bounds a function authorizer; default 10s.
	Timeout time.Duration
	// REST is, for a REST API's function authorizer, its kind: spec.AuthorizerToken or
	// spec.AuthorizerRequest; "" for an HTTP or WebSocket API's.
	REST string
	// Validation is a token authorizer's identity validation expression; nil for none.
	Validation *regexp.Regexp
}

// UsagePlan limits the requests of the API keys that belong to it.
type UsagePlan struct {
	Throttle ThrottleSettings
	Quota    apikeys.Quota
}

// KeyStore finds API keys and counts their quotas: the apikeys package's Store.
type KeyStore interface {
	Lookup(presented string) (apikeys.Key, bool)
	Consume(ctx context.Context, k apikeys.Key, q apikeys.Quota) (bool, error)
}

// denial is a request refused by a gateway control, with API Gateway's status, message and headers.
type denial struct {
	status  int
	message string
	header  map[string]string
	reason  string // for the log only
	// respType is the gateway response type a REST API answers the denial with ("" for the
	// one its status gives); validation is a body's validation errors.
	respType, validation string
}

func (d *denial) Error() string { return fmt.Sprintf("%d %s: %s", d.status, d.message, d.reason) }

func unauthorized(reason, wwwAuthenticate string) *denial {
	d := &denial{status: fiber.StatusUnauthorized, message: "Unauthorized", reason: reason}
	if wwwAuthenticate != "" {
		d.header = map[string]string{fiber.HeaderWWWAuthenticate: wwwAuthenticate}
	}
	return d
}

func forbidden(reason string) *denial {
	return &denial{status: fiber.StatusForbidden, message: "Forbidden", reason: reason}
}

// controlState is the gateway's mutable state for its controls: buckets and cached authorizations.
type controlState struct {
	keyBuckets sync.Map // API key hash → *Bucket
	authCache  authCache

	jwtMu sync.Mutex
	jwts  map[string]*jwtauth.Authorizer // by configuration
}

// jwtVerifier returns the verifier of a JWT authorizer's configuration, creating it the first time
// (which loads its keys, within ctx and a few seconds).
func (s *Server) jwtVerifier(ctx context.Context, cfg *jwtauth.Config) (*jwtauth.Authorizer, error) {
	if cfg == nil {
		return nil, errors.New("a JWT authorizer without configuration")
	}
	key := jwtConfigKey(cfg)
	s.controls.jwtMu.Lock()
	defer s.controls.jwtMu.Unlock()
	if a, ok := s.controls.jwts[key]; ok {
		return a, nil
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	a, err := jwtauth.New(ctx, *cfg)
	if err != nil {
		return nil, err
	}
	if s.controls.jwts == nil {
		s.controls.jwts = map[string]*jwtauth.Authorizer{}
	}
	s.controls.jwts[key] = a
	return a, nil
}

// prepareJWT creates the verifiers of every JWT authorizer of apis, so their keys load before
// requests need them.
func (s *Server) prepareJWT(ctx context.Context, apis []API) {
	for _, a := range apis {
		for name, z := range a.Authorizers {
			if z.Type == AuthJWT {
				if _, err := s.jwtVerifier(ctx, z.JWT); err != nil {
					s.log.Error("JWT authorizer", "api", a.ID, "authorizer", name, "err", err)
				}
			}
		}
	}
}

// jwtConfigKey identifies a JWT authorizer's configuration: authorizers with equal settings share one
// verifier.
func jwtConfigKey(cfg *jwtauth.Config) string {
	return fmt.Sprintf("%q|%q|%q|%q|%q|%d", cfg.Issuer, cfg.Audiences, cfg.JWKSURL, cfg.JWKSFile, cfg.Algorithms, cfg.Skew)
}

// pruneJWT stops the verifiers no authorizer of apis uses any more (their APIs changed), so that
// changing APIs while the gateway runs leaves no key refresh behind. A request in flight that holds
// one still verifies with the keys it has.
func (s *Server) pruneJWT(apis []API) {
	used := map[string]bool{}
	for _, a := range apis {
		for _, z := range a.Authorizers {
			if z.Type == AuthJWT && z.JWT != nil {
				used[jwtConfigKey(z.JWT)] = true
			}
		}
	}
	s.controls.jwtMu.Lock()
	defer s.controls.jwtMu.Unlock()
	for key, a := range s.controls.jwts {
		if !used[key] {
			go a.Close() // waits for a refresh in progress: not on the caller's time
			delete(s.controls.jwts, key)
		}
	}
}

// closeJWT stops the verifiers' key refreshes.
func (s *Server) closeJWT() {
	s.controls.jwtMu.Lock()
	defer s.controls.jwtMu.Unlock()
	for _, a := range s.controls.jwts {
		a.Close()
	}
	s.controls.jwts = nil
}

type authResult struct {
	allowed bool
	context map[string]any
	expires time.Time
	// policy is a REST authorizer's answer, evaluated for each request.
	policy *restPolicy
}

// throttle applies the route's bucket in its stage.
func (s *Server) throttle(api *compiledAPI, stage *Stage, idx int, now time.Time) error {
	if t := api.throttles[stage.Name]; t != nil && !t.Allow(idx, now) {
		return &denial{status: fiber.StatusTooManyRequests, message: "Too Many Requests", reason: "stage or route throttle", respType: "THROTTLED"}
	}
	return nil
}

// authorize runs the route's authorization and returns what the event's requestContext.authorizer
// carries.
// idx is the route's index and rest the request's path below its stage (for REST authorizers).
func (s *Server) authorize(c *fiber.Ctx, api *compiledAPI, stage *Stage, route Route, idx int, params map[string]string, rest string, now time.Time) (*events.APIGatewayV2HTTPRequestContextAuthorizerDescription, error) {
	switch route.Auth.Type {
	case AuthNone:
		return nil, nil
	case AuthIAM:
		if s.cfg.Verifier == nil {
			return nil, forbidden("no access keys are configured")
		}
		id, err := s.verifySigV4(c)
		if err != nil {
			return nil, forbidden(err.Error())
		}
		return &events.APIGatewayV2HTTPRequestContextAuthorizerDescription{IAM: &events.APIGatewayV2HTTPRequestContextAuthorizerIAMDescription{AccessKey: id}}, nil
	}
	a, ok := api.Authorizers[route.Auth.Authorizer]
	if !ok {
		return nil, fmt.Errorf("route %s: no authorizer %q", route.Key, route.Auth.Authorizer)
	}
	switch a.Type {
	case AuthJWT:
		source := "$request.header.Authorization"
		if len(a.IdentitySources) > 0 {
			source = a.IdentitySources[0]
		}
		identity, _ := identityValue(c, source, stage, route)
		verifier, err := s.jwtVerifier(context.Background(), a.JWT)
		if err != nil {
			return nil, fmt.Errorf("authorizer %s: %w", route.Auth.Authorizer, err)
		}
		res, err := verifier.Authorize(c.UserContext(), identity, route.Auth.Scopes)
		switch {
		case errors.Is(err, jwtauth.ErrScope):
			return nil, forbidden(err.Error())
		case err != nil:
			return nil, unauthorized(err.Error(), jwtauth.WWWAuthenticate(err))
		}
		return &events.APIGatewayV2HTTPRequestContextAuthorizerDescription{JWT: &events.APIGatewayV2HTTPRequestContextAuthorizerJWTDescription{
			Claims: res.Claims, Scopes: res.Scopes}}, nil
	case AuthFunction:
		if a.REST != "" {
			return s.authorizeREST(c, api, stage, route, a, idx, params, rest, now)
		}
		return s.authorizeWithFunction(c, api, stage, route, a, params, now)
	}
	return nil, fmt.Errorf("route %s: authorizer %q has unknown type %q", route.Key, route.Auth.Authorizer, a.Type)
}

// checkPolicy evaluates the API's resource policy for the request, before its authorizers: a
// request it does not allow is refused with 403 and the policy's message.
func (s *Server) checkPolicy(c *fiber.Ctx, api *compiledAPI, stage *Stage, rest string) error {
	ip, _ := netip.ParseAddr(c.IP())
	arn := respolicy.ARN(s.cfg.Region, s.cfg.AccountID, api.ID, stage.Name, c.Method(), rest)
	d := api.policy.Evaluate(respolicy.Request{SourceIP: ip, MethodARN: arn})
	if d == respolicy.Allow {
		return nil
	}
	return &denial{status: fiber.StatusForbidden, message: respolicy.Message(d, arn), reason: "the resource policy: " + d.String(), respType: "ACCESS_DENIED"}
}

// verifySigV4 checks c's AWS Signature Version 4 against the stack's access keys, and returns the
// access key that signed it.
func (s *Server) verifySigV4(c *fiber.Ctx) (string, error) {
	header := http.Header{}
	c.Request().Header.VisitAll(func(k, v []byte) { header.Add(string(k), string(v)) })
	return s.cfg.Verifier.Verify(sigv4.Request{Method: c.Method(), RawPath: string(c.Request().URI().PathOriginal()),
		RawQuery: string(c.Request().URI().QueryString()), Host: string(c.Request().Host()), Header: header, Body: c.Body()})
}

// identityValue reads one identity source of a request.
func identityValue(c *fiber.Ctx, source string, stage *Stage, route Route) (string, bool) {
	switch {
	case strings.HasPrefix(source, "$request.header."):
		v := c.Get(strings.TrimPrefix(source, "$request.header."))
		return v, v != ""
	case strings.HasPrefix(source, "$request.querystring."):
		v := string(c.Request().URI().QueryArgs().Peek(strings.TrimPrefix(source, "$request.querystring.")))
		return v, v != ""
	case strings.HasPrefix(source, "$stageVariables."):
		v := stage.Variables[strings.TrimPrefix(source, "$stageVariables.")]
		return v, v != ""
	case source == "$context.routeKey":
		return route.Key, true
	case source == "$context.stage":
		return stage.Name, true
	case source == "$context.httpMethod":
		return c.Method(), true
	}
	return "", false
}

// authorizeWithFunction runs a function authorizer (payload 2.0) and caches its answer.
func (s *Server) authorizeWithFunction(c *fiber.Ctx, api *compiledAPI, stage *Stage, route Route, a Authorizer, params map[string]string, now time.Time) (*events.APIGatewayV2HTTPRequestContextAuthorizerDescription, error) {
	values := make([]string, 0, len(a.IdentitySources))
	for _, src := range a.IdentitySources {
		v, ok := identityValue(c, src, stage, route)
		if !ok {
			return nil, unauthorized("identity source "+src+" is missing", "")
		}
		values = append(values, v)
	}
	cacheKey := ""
	if a.ResultTTL > 0 {
		h := sha256.New()
		fmt.Fprintf(h, "%s\x00%s\x00%s", api.ID, route.Auth.Authorizer, strings.Join(values, "\x00"))
		cacheKey = hex.EncodeToString(h.Sum(nil))
		if r, ok := s.controls.authCache.get(cacheKey, now); ok {
			return authOutcome(r)
		}
	}
	routeArn := fmt.Sprintf("arn:aws:execute-api:%s:%s:%s/%s/%s%s", s.cfg.Region, s.cfg.AccountID, api.ID, stage.Name, c.Method(), string(c.Request().URI().PathOriginal()))
	requestID, _ := c.Locals(localRequestID).(string)
	base, err := BuildEvent(c, EventContext{RouteKey: route.Key, Stage: stage.Name, StageVariables: stage.Variables, PathParameters: params,
		RequestID: requestID, Time: now, APIID: api.ID, AccountID: s.cfg.AccountID, DomainName: hostOnly(string(c.Request().Host())), SourceIP: c.IP(),
		Authentication: clientCertOf(c)})
	if err != nil {
		return nil, err
	}
	var ev map[string]any
	if err := json.Unmarshal(base, &ev); err != nil {
		return nil, err
	}
	delete(ev, "body")
	delete(ev, "isBase64Encoded")
	ev["type"], ev["routeArn"], ev["identitySource"] = "REQUEST", routeArn, values
	payload, err := json.Marshal(ev)
	if err != nil {
		return nil, err
	}
	out, err := s.callAuthorizer(a, route.Auth.Authorizer, requestID, payload)
	if err != nil {
		return nil, err
	}
	r, err := parseAuthorizerResponse(out, routeArn)
	if err != nil {
		return nil, fmt.Errorf("authorizer %s: %w", route.Auth.Authorizer, err)
	}
	if cacheKey != "" {
		r.expires = now.Add(a.ResultTTL)
		s.controls.authCache.put(cacheKey, r)
	}
	return authOutcome(r)
}

// callAuthorizer invokes the function of the authorizer named name with payload, within its
// timeout (10 s when it has none).
func (s *Server) callAuthorizer(a Authorizer, name, requestID string, payload []byte) ([]byte, error) {
	fn, qualifier, _ := strings.Cut(a.Function, ":")
	timeout := a.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	return s.call(invocation{target: target{fn, qualifier}, label: "authorizer " + name, requestID: requestID,
		deadline: time.Now().Add(timeout), timeout: timeout, payload: payload})
}

func authOutcome(r authResult) (*events.APIGatewayV2HTTPRequestContextAuthorizerDescription, error) {
	if !r.allowed {
		return nil, forbidden("the authorizer denied the request")
	}
	return &events.APIGatewayV2HTTPRequestContextAuthorizerDescription{Lambda: r.context}, nil
}

// parseAuthorizerResponse reads a function authorizer's answer: the simple response
// {"isAuthorized": bool, "context": {…}} or an IAM policy, which allows when a statement allows
// execute-api:Invoke on a resource matching routeArn and none denies it.
func parseAuthorizerResponse(out []byte, routeArn string) (authResult, error) {
	var resp struct {
		IsAuthorized   *bool          `json:"isAuthorized"`
		Context        map[string]any `json:"context"`
		PolicyDocument *struct {
			Statement []struct {
				Effect   string `json:"Effect"`
				Resource any    `json:"Resource"`
			} `json:"Statement"`
		} `json:"policyDocument"`
	}
	dec := json.NewDecoder(bytes.NewReader(out))
	if err := dec.Decode(&resp); err != nil {
		return authResult{}, fmt.Errorf("%w: the authorizer's answer is not JSON: %v", ErrMalformedResponse, err)
	}
	switch {
	case resp.IsAuthorized != nil:
		return authResult{allowed: *resp.IsAuthorized, context: resp.Context}, nil
	case resp.PolicyDocument != nil:
		allowed := false
		for _, st := range resp.PolicyDocument.Statement {
			if !resourceMatches(st.Resource, routeArn) {
				continue
			}
			switch st.Effect {
			case "Deny":
				return authResult{context: resp.Context}, nil
			case "Allow":
				allowed = true
			}
		}
		return authResult{allowed: allowed, context: resp.Context}, nil
	}
	return authResult{}, fmt.Errorf("%w: the authorizer answered neither isAuthorized nor a policyDocument", ErrMalformedResponse)
}

// resourceMatches reports whether a policy's Resource (a string or a list) matches arn, with "*"
// matching any run of characters.
func resourceMatches(resource any, arn string) bool {
	switch r := resource.(type) {
	case string:
		return wildcardMatch(r, arn)
	case []any:
		for _, v := range r {
			if s, ok := v.(string); ok && wildcardMatch(s, arn) {
				return true
			}
		}
	}
	return false
}

func wildcardMatch(pattern, s string) bool {
	parts := strings.Split(pattern, "*")
	if len(parts) == 1 {
		return pattern == s
	}
	if !strings.HasPrefix(s, parts[0]) {
		return false
	}
	s = s[len(parts[0]):]
	for _, p := range parts[1 : len(parts)-1] {
		i := strings.Index(s, p)
		if i < 0 {
			return false
		}
		s = s[i+len(p):]
	}
	return strings.HasSuffix(s, parts[len(parts)-1])
}

// checkAPIKey requires a known x-api-key of a usage plan, and applies the plan's throttle and quota.
func (s *Server) checkAPIKey(c *fiber.Ctx, now time.Time) error {
	invalidKey := func(reason string) error {
		d := forbidden(reason)
		d.respType = "INVALID_API_KEY"
		return d
	}
	if s.cfg.APIKeys == nil {
		return invalidKey("API keys are not configured")
	}
	k, ok := s.cfg.APIKeys.Lookup(c.Get("x-api-key"))
	if !ok {
		return invalidKey("missing or unknown x-api-key")
	}
	plan, ok := s.cfg.UsagePlans[k.Plan]
	if !ok {
		return invalidKey("the key's usage plan is not defined")
	}
	if plan.Throttle.Rate > 0 || plan.Throttle.Burst > 0 {
		v, _ := s.controls.keyBuckets.LoadOrStore(k.SHA256, NewBucket(plan.Throttle, now))
		if !v.(*Bucket).Allow(now) {
			return &denial{status: fiber.StatusTooManyRequests, message: "Too Many Requests", reason: "usage plan throttle", respType: "THROTTLED"}
		}
	}
	within, err := s.cfg.APIKeys.Consume(c.UserContext(), k, plan.Quota)
	if err != nil {
		return err
	}
	if !within {
		return &denial{status: fiber.StatusTooManyRequests, message: "Limit Exceeded", reason: "usage plan quota",
			header: map[string]string{"x-amzn-ErrorType": "LimitExceededException"}, respType: "QUOTA_EXCEEDED"}
	}
	return nil
}
