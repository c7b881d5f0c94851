package spec

import (
	"encoding/json"
	"maps"
	"regexp"
	"slices"
	"strings"

	"gatehouse.dev/gatehouse/internal/didyoumean"
	"gatehouse.dev/gatehouse/internal/mapping"
	"gatehouse.dev/gatehouse/internal/reqvalidate"
	"gatehouse.dev/gatehouse/internal/respolicy"
	"gatehouse.dev/gatehouse/internal/yamlnode"
)

// GatewayResponseTypes are the types of the answers a REST API's gateway makes itself, keys of
// `gatewayResponses:`, with the status each has: API Gateway's list. DEFAULT_4XX and DEFAULT_5XX
// stand for every type of their class that has no entry of its own.
var gatewayResponseTypes = map[string]int{
	"ACCESS_DENIED":                  403,
	"API_CONFIGURATION_ERROR":        500,
	"AUTHORIZER_CONFIGURATION_ERROR": 500,
	"AUTHORIZER_FAILURE":             500,
	"BAD_REQUEST_PARAMETERS":         400,
	"BAD_REQUEST_BODY":               400,
	"DEFAULT_4XX":                    0,
	"DEFAULT_5XX":                    0,
	"EXPIRED_TOKEN":                  403,
	"INTEGRATION_FAILURE":            504,
	"INTEGRATION_TIMEOUT":            504,
	"INVALID_API_KEY":                403,
	"INVALID_SIGNATURE":              403,
	"MISSING_AUTHENTICATION_TOKEN":   403,
	"QUOTA_EXCEEDED":                 429,
	"REQUEST_TOO_LARGE":              413,
	"RESOURCE_NOT_FOUND":             404,
	"THROTTLED":                      429,
	"UNAUTHORIZED":                   401,
	"UNSUPPORTED_MEDIA_TYPE":         415,
	"WAF_FILTERED":                   403,
}

// GatewayResponseTypes returns the gateway response types, sorted.
func GatewayResponseTypes() []string { return slices.Sorted(maps.Keys(gatewayResponseTypes)) }

// GatewayResponseStatus returns the status of a gateway response type; 0 for DEFAULT_4XX,
// DEFAULT_5XX and unknown types.
func GatewayResponseStatus(t string) int { return gatewayResponseTypes[t] }

// ModelSchemas returns the schemas of an API's models by name, for reqvalidate.Compile.
func (a API) ModelSchemas() map[string]json.RawMessage {
	out := make(map[string]json.RawMessage, len(a.Models))
	for name, m := range a.Models {
		out[name] = m.Schema
	}
	return out
}

// checkREST checks the settings only REST APIs have, and that other APIs have none of them; and
// the resource policy of HTTP and REST APIs.
func (c *checker) checkREST(path []string, api API) {
	if api.ResourcePolicy != nil {
		if api.Type == APITypeWebSocket {
			c.add(errf(sub(path, "resourcePolicy"), true, "only for http and rest APIs; remove it"))
		} else if _, err := respolicy.Parse(api.ResourcePolicy); err != nil {
			c.add(errf(sub(path, "resourcePolicy"), true, "%v", err))
		}
	}
	if api.Type != APITypeREST {
		for key, set := range map[string]bool{
			"binaryMediaTypes":       api.BinaryMediaTypes != nil,
			"minimumCompressionSize": api.MinimumCompressionSize != nil,
			"models":                 api.Models != nil,
			"gatewayResponses":       api.GatewayResponses != nil,
		} {
			if set {
				c.add(errf(sub(path, key), true, "only for rest APIs (type: rest); remove it"))
			}
		}
		for name, st := range api.Stages {
			if st.Cache != nil {
				c.add(errf(sub(path, "stages", name, "cache"), true, "only for rest APIs (type: rest); remove it"))
			}
		}
		return
	}
	if len(api.BinaryMediaTypes) > MaxBinaryMediaTypes {
		c.add(errf(sub(path, "binaryMediaTypes"), true, "more than %d media types", MaxBinaryMediaTypes))
	}
	for i, t := range api.BinaryMediaTypes {
		typ, subtype, ok := strings.Cut(t, "/")
		if !ok || !validMediaPart(typ) || !validMediaPart(subtype) {
			c.add(errf(sub(path, "binaryMediaTypes", Index(i)), false, "%s is not a media type: want type/subtype, with * for any part (image/png, image/*, */*)", yamlnode.QuoteShort(t)))
		}
	}
	if n := api.MinimumCompressionSize; n != nil && (*n < 0 || *n > MaxMinimumCompressionSize) {
		c.add(errf(sub(path, "minimumCompressionSize"), false, "%d is out of range: want 0 to %d bytes", *n, MaxMinimumCompressionSize))
	}
	for _, name := range slices.Sorted(maps.Keys(api.Models)) {
		mp := sub(path, "models", name)
		if !validModelName(name) {
			c.add(errf(mp, true, "%s is not a model name: want 1 to 128 letters and digits", yamlnode.QuoteShort(name)))
		}
		if n := len(api.Models[name].Schema); n > MaxModelBytes {
			c.add(errf(sub(mp, "schema"), false, "the schema is %d bytes as JSON; at most %d", n, MaxModelBytes))
		}
	}
	if len(api.Models) > 0 {
		if _, err := reqvalidate.Compile(api.ModelSchemas()); err != nil {
			c.add(errf(sub(path, "models"), true, "%v", err))
		}
	}
	types := GatewayResponseTypes()
	for _, t := range slices.Sorted(maps.Keys(api.GatewayResponses)) {
		gp := sub(path, "gatewayResponses", t)
		if _, ok := gatewayResponseTypes[t]; !ok {
			c.add(errf(gp, true, "unknown gateway response type %s%s: want one of %s", yamlnode.QuoteShort(t), didyoumean.Suggest(t, types), strings.Join(types, ", ")))
			continue
		}
		gr := api.GatewayResponses[t]
		if gr.StatusCode != 0 && (gr.StatusCode < 100 || gr.StatusCode > 599) {
			c.add(errf(sub(gp, "statusCode"), false, "%d is not a status code: want 100 to 599", gr.StatusCode))
		}
		for _, h := range slices.Sorted(maps.Keys(gr.Headers)) {
			if !validToken(h) {
				c.add(errf(sub(gp, "headers", h), true, "%s is not a header name", yamlnode.QuoteShort(h)))
			} else if _, err := mapping.ParseTemplate(gr.Headers[h]); err != nil {
				c.add(errf(sub(gp, "headers", h), false, "%v", err))
			}
		}
		if _, err := mapping.ParseTemplate(gr.Body); err != nil {
			c.add(errf(sub(gp, "body"), false, "%v", err))
		}
	}
	for _, name := range slices.Sorted(maps.Keys(api.Stages)) {
		if sc := api.Stages[name].Cache; sc != nil {
			cp := sub(path, "stages", name, "cache")
			if sc.SizeMB < MinCacheSizeMB || sc.SizeMB > MaxCacheSizeMB {
				c.add(errf(sub(cp, "sizeMB"), false, "%v is out of range: want %v to %v", sc.SizeMB, MinCacheSizeMB, MaxCacheSizeMB))
			}
			if sc.TTL.D() < 0 || sc.TTL.D() > MaxCacheTTL {
				c.add(errf(sub(cp, "ttl"), false, "%v is out of range: want 0s to 1h", sc.TTL))
			}
		}
	}
}

// checkRESTAuthorizer checks a token or request authorizer.
func (c *checker) checkRESTAuthorizer(path []string, a Authorizer) *checkErr {
	f := a.Function
	if e := c.checkFunctionAuthorizer(path, f); e != nil {
		return e
	}
	if f.SimpleResponses {
		return errf(sub(path, "simpleResponses"), true, "a rest API's authorizers answer with an IAM policy; remove it")
	}
	if a.Type == AuthorizerToken {
		if len(f.IdentitySources) != 1 || !strings.HasPrefix(f.IdentitySources[0], IdentitySourceHeader) {
			return errf(sub(path, "identitySources"), false, "a token authorizer reads one header: want [$request.header.NAME] (default [%s])", DefaultJWTIdentitySource)
		}
		if f.IdentityValidationExpression != "" {
			if _, err := regexp.Compile(f.IdentityValidationExpression); err != nil {
				return errf(sub(path, "identityValidationExpression"), false, "not a regular expression: %v", err)
			}
		}
	} else if f.IdentityValidationExpression != "" {
		return errf(sub(path, "identityValidationExpression"), true, "only for token authorizers; remove it")
	}
	return nil
}

// checkRESTRoute checks a route's request validation and cache settings.
func (c *checker) checkRESTRoute(rp []string, r Route, api API) *checkErr {
	if api.Type != APITypeREST {
		if r.Request != nil {
			return errf(sub(rp, "request"), true, "only for rest APIs (type: rest); remove it")
		}
		if r.Cache != nil {
			return errf(sub(rp, "cache"), true, "only for rest APIs (type: rest); remove it")
		}
		return nil
	}
	if r.Key == RouteDefault {
		return errf(rp, true, "a rest API has no $default route: use ANY /{proxy+} (and ANY / for the root) to catch every request")
	}
	if v := r.Request; v != nil {
		vp := sub(rp, "request")
		for _, k := range slices.Sorted(maps.Keys(v.Parameters)) {
			if err := reqvalidate.CheckParameterKey(k); err != nil {
				return errf(sub(vp, "parameters", k), true, "%v", err)
			}
		}
		models := slices.Sorted(maps.Keys(api.Models))
		for _, ct := range slices.Sorted(maps.Keys(v.Models)) {
			typ, subtype, ok := strings.Cut(ct, "/")
			if !ok || !validMediaPart(typ) || !validMediaPart(subtype) {
				return errf(sub(vp, "models", ct), true, "%s is not a content type such as application/json", yamlnode.QuoteShort(ct))
			}
			if _, ok := api.Models[v.Models[ct]]; !ok {
				return errf(sub(vp, "models", ct), false, "no model named %s in this API's models%s", yamlnode.QuoteShort(v.Models[ct]), didyoumean.Suggest(v.Models[ct], models))
			}
		}
		if v.ValidateBody && len(v.Models) == 0 {
			return errf(sub(vp, "validateBody"), true, "there are no models to validate the body with: add models: {application/json: NAME}")
		}
	}
	if rc := r.Cache; rc != nil {
		cp := sub(rp, "cache")
		if rc.TTL != nil && (rc.TTL.D() < 0 || rc.TTL.D() > MaxCacheTTL) {
			return errf(sub(cp, "ttl"), false, "%v is out of range: want 0s to 1h", *rc.TTL)
		}
		for i, k := range rc.Keys {
			if err := reqvalidate.CheckParameterKey(k); err != nil {
				return errf(sub(cp, "keys", Index(i)), false, "%v", err)
			}
		}
		hasCache := false
		for _, st := range api.Stages {
			hasCache = hasCache || st.Cache != nil
		}
		if rc.Enabled && !hasCache {
			return errf(cp, true, "no stage of this API has a cache: add cache: {sizeMB: 0.5} to a stage")
		}
	}
	return nil
}

// validMediaPart reports whether s is a media type's type or subtype, or "*".
func validMediaPart(s string) bool { return s == "*" || validToken(s) && !strings.Contains(s, "*") }

// validModelName reports whether s is a model name: 1 to 128 letters and digits.
func validModelName(s string) bool {
	return len(s) > 0 && len(s) <= 128 && allIn(s, func(r rune) bool {
		return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9'
	})
}
