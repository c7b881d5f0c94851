package gateway

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/gofiber/fiber/v2"

	"gatehouse.dev/gatehouse/internal/bus"
	"gatehouse.dev/gatehouse/internal/spec"
)

// REST APIs' token and request authorizers: a function gets the token (or the request, as a
// payload 1.0 event) and the method ARN, and answers an IAM policy with a principal and a context.
// The answer is cached by the identity values for the authorizer's TTL; the policy is evaluated
// against each request's own method ARN, so a cached policy that allows one method does not allow
// another, as with API Gateway.

// Messages of REST authorizers' refusals, as API Gateway words them.
const (
	msgExplicitDeny = "User is not authorized to access this resource with an explicit deny"
	msgNotAllowed   = "User is not authorized to access this resource"
)

// restPolicy is a REST authorizer's answer.
type restPolicy struct {
	PrincipalID string `json:"principalId"`
	// Context holds strings, numbers, booleans and nulls (callRESTAuthorizer refuses others).
	Context        map[string]json.RawMessage `json:"context"`
	PolicyDocument *struct {
		Statement []struct {
			Effect   string `json:"Effect"`
			Action   any    `json:"Action"`
			Resource any    `json:"Resource"`
		} `json:"Statement"`
	} `json:"policyDocument"`
	UsageIdentifierKey string `json:"usageIdentifierKey"`
}

// methodArn is the ARN a REST authorizer's policy is evaluated against:
// arn:aws:execute-api:REGION:ACCOUNT:API/STAGE/METHOD/PATH, PATH being the request's path below
// its stage.
func (s *Server) methodArn(c *fiber.Ctx, api *compiledAPI, stage *Stage, rest string) string {
	return fmt.Sprintf("arn:aws:execute-api:%s:%s:%s/%s/%s%s", s.cfg.Region, s.cfg.AccountID, api.ID, stage.Name, c.Method(), rest)
}

// authorizeREST runs a REST API's token or request authorizer for the route.
func (s *Server) authorizeREST(c *fiber.Ctx, api *compiledAPI, stage *Stage, route Route, a Authorizer, idx int, params map[string]string, rest string, now time.Time) (*events.APIGatewayV2HTTPRequestContextAuthorizerDescription, error) {
	values := make([]string, 0, len(a.IdentitySources))
	for _, src := range a.IdentitySources {
		v, ok := identityValue(c, src, stage, route)
		if !ok {
			return nil, restDenial(fiber.StatusUnauthorized, "Unauthorized", "UNAUTHORIZED", "identity source "+src+" is missing")
		}
		values = append(values, v)
	}
	if a.REST == spec.AuthorizerToken && a.Validation != nil && !a.Validation.MatchString(values[0]) {
		return nil, restDenial(fiber.StatusUnauthorized, "Unauthorized", "UNAUTHORIZED", "the token does not match the identity validation expression")
	}
	arn := s.methodArn(c, api, stage, rest)
	var p *restPolicy
	cacheKey := ""
	if a.ResultTTL > 0 {
		h := sha256.New()
		fmt.Fprintf(h, "rest\x00%s\x00%s\x00%s", api.ID, route.Auth.Authorizer, strings.Join(values, "\x00"))
		cacheKey = hex.EncodeToString(h.Sum(nil))
		if r, ok := s.controls.authCache.get(cacheKey, now); ok {
			p = r.policy
		}
	}
	if p == nil {
		var err error
		if p, err = s.callRESTAuthorizer(c, api, stage, route, a, idx, params, rest, values[0], arn, now); err != nil {
			return nil, err
		}
		if cacheKey != "" {
			s.controls.authCache.put(cacheKey, authResult{policy: p, expires: now.Add(a.ResultTTL)})
		}
	}
	switch evaluatePolicy(p, arn) {
	case policyDeny:
		return nil, restDenial(fiber.StatusForbidden, msgExplicitDeny, "ACCESS_DENIED", "the authorizer's policy denies "+arn)
	case policyNone:
		return nil, restDenial(fiber.StatusForbidden, msgNotAllowed, "ACCESS_DENIED", "the authorizer's policy does not allow "+arn)
	}
	ctx := map[string]any{"principalId": p.PrincipalID}
	for k, v := range p.Context {
		if k != "principalId" {
			ctx[k] = restContextValue(v)
		}
	}
	return &events.APIGatewayV2HTTPRequestContextAuthorizerDescription{Lambda: ctx}, nil
}

// restContextValue is a value of a REST authorizer's context as API Gateway passes it on to the
// integration: stringified, as its documentation says ("123", "true"), null kept.
func restContextValue(v json.RawMessage) any {
	var s string
	switch {
	case string(v) == "null":
		return nil
	case json.Unmarshal(v, &s) == nil:
		return s
	}
	return string(v) // a number or a boolean, as written
}

// callRESTAuthorizer invokes the authorizer's function and reads its policy.
func (s *Server) callRESTAuthorizer(c *fiber.Ctx, api *compiledAPI, stage *Stage, route Route, a Authorizer, idx int, params map[string]string, rest, token, arn string, now time.Time) (*restPolicy, error) {
	requestID, _ := c.Locals(localRequestID).(string)
	var payload []byte
	if a.REST == spec.AuthorizerToken {
		var err error
		if payload, err = json.Marshal(map[string]string{"type": "TOKEN", "authorizationToken": token, "methodArn": arn}); err != nil {
			return nil, err
		}
	} else {
		base, err := BuildEventV1(c, EventV1Context{EventContext: EventContext{RouteKey: route.Key, Stage: stage.Name, StageVariables: stage.Variables,
			PathParameters: params, RequestID: requestID, Time: now, APIID: api.ID, AccountID: s.cfg.AccountID,
			DomainName: hostOnly(string(c.Request().Host())), SourceIP: c.IP(), Authentication: clientCertOf(c)},
			Resource: api.integrations[idx].resource, REST: true, Path: rest, ResourceID: api.rest.routes[idx].resourceID, BinaryMediaTypes: api.rest.binary})
		if err != nil {
			return nil, err
		}
		var ev map[string]any
		if err := json.Unmarshal(base, &ev); err != nil {
			return nil, err
		}
		delete(ev, "body")
		delete(ev, "isBase64Encoded")
		ev["type"], ev["methodArn"] = "REQUEST", arn
		if payload, err = json.Marshal(ev); err != nil {
			return nil, err
		}
	}
	out, err := s.callAuthorizer(a, route.Auth.Authorizer, requestID, payload)
	if err != nil {
		// A function that fails with the message "Unauthorized" refuses the caller, as in Lambda.
		if f := bus.FailureOf(err, bus.FunctionFailure{}); f.ErrorMessage == "Unauthorized" {
			return nil, restDenial(fiber.StatusUnauthorized, "Unauthorized", "UNAUTHORIZED", "the authorizer answered Unauthorized")
		}
		if errors.Is(err, context.DeadlineExceeded) {
			return nil, fmt.Errorf("%w: %v", errAuthorizerTimeout, err)
		}
		return nil, fmt.Errorf("%w: %v", errAuthorizerFailed, err)
	}
	var p restPolicy
	if err := json.Unmarshal(out, &p); err != nil || p.PolicyDocument == nil || p.PrincipalID == "" {
		why := "it has no principalId"
		switch {
		case err != nil:
			why = "it is not a JSON object: " + err.Error()
		case p.PolicyDocument == nil:
			why = "it has no policyDocument"
		}
		return nil, fmt.Errorf("%w: authorizer %s answered something that is not a policy: %s", errAuthorizerFailed, route.Auth.Authorizer, why)
	}
	for k, v := range p.Context {
		// API Gateway refuses a context value that is an object or an array (500,
		// AuthorizerConfigurationException).
		if len(v) > 0 && (v[0] == '{' || v[0] == '[') {
			return nil, fmt.Errorf("%w: authorizer %s answered a context whose %q is an object or an array; values are strings, numbers and booleans",
				errAuthorizerFailed, route.Auth.Authorizer, k)
		}
	}
	return &p, nil
}

// Outcomes of a policy for one ARN.
const (
	policyNone = iota
	policyAllow
	policyDeny
)

// evaluatePolicy returns what p says of arn: a matching Deny wins over any Allow; no matching
// statement allows nothing. A statement counts when its Action is execute-api:Invoke (or a wildcard
// that matches it).
func evaluatePolicy(p *restPolicy, arn string) int {
	out := policyNone
	for _, st := range p.PolicyDocument.Statement {
		if !actionMatches(st.Action) || !resourceMatches(st.Resource, arn) {
			continue
		}
		switch st.Effect {
		case "Deny":
			return policyDeny
		case "Allow":
			out = policyAllow
		}
	}
	return out
}

func actionMatches(action any) bool {
	switch a := action.(type) {
	case nil:
		return true
	case string:
		return wildcardMatch(strings.ToLower(a), "execute-api:invoke")
	case []any:
		for _, v := range a {
			if s, ok := v.(string); ok && wildcardMatch(strings.ToLower(s), "execute-api:invoke") {
				return true
			}
		}
	}
	return false
}
