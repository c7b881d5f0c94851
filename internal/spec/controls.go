package spec

import (
	"fmt"
	"maps"
	"net/url"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"gatehouse.dev/gatehouse/internal/didyoumean"
	"gatehouse.dev/gatehouse/internal/yamlnode"
)

// Checking the gateway controls: usage plans, throttles, CORS, authorizers and what routes ask of
// their callers.

func checkUsagePlan(name string, p UsagePlan) *checkErr {
	path := []string{"usagePlans", name}
	if !validName(name, MaxUsagePlanNameLength, false) {
		return errf(path, true, "%s is not a valid usage plan name: want 1 to %d letters, digits, - and _", yamlnode.QuoteShort(name), MaxUsagePlanNameLength)
	}
	if p.Name != name {
		return errf(path, true, "Name %q differs from the map key", p.Name)
	}
	if p.Throttle != nil {
		if e := checkThrottle(sub(path, "throttle"), *p.Throttle); e != nil {
			return e
		}
	}
	if q := p.Quota; q != nil {
		if q.Limit < MinQuotaLimit || q.Limit > MaxQuotaLimit {
			return errf(sub(path, "quota", "limit"), false, "%d is out of range: want %d to %d (requests per period)", q.Limit, MinQuotaLimit, MaxQuotaLimit)
		}
		periods := []string{QuotaPeriodDay, QuotaPeriodWeek, QuotaPeriodMonth}
		if !slices.Contains(periods, q.Period) {
			return errf(sub(path, "quota", "period"), false, "unknown period %s%s: want day, week or month", yamlnode.QuoteShort(q.Period), didyoumean.Suggest(q.Period, periods))
		}
	}
	return nil
}

func checkThrottle(path []string, t Throttle) *checkErr {
	if !(t.Rate > 0 && t.Rate <= MaxThrottleRate) {
		return errf(sub(path, "rate"), false, "%s is out of range: want more than 0, at most %d (requests per second)", strconv.FormatFloat(t.Rate, 'g', -1, 64), MaxThrottleRate)
	}
	if t.Burst < 0 || t.Burst > MaxThrottleBurst {
		return errf(sub(path, "burst"), false, "%d is out of range: want 0 to %d (requests)", t.Burst, MaxThrottleBurst)
	}
	return nil
}

// corsMethods are the methods allowMethods may list, besides CORSWildcard.
var corsMethods = []string{"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"}

func checkCORS(path []string, c *CORS) *checkErr {
	for i, o := range c.AllowOrigins {
		if msg := checkOrigin(o); msg != "" {
			return errf(sub(path, "allowOrigins", Index(i)), false, "%s", msg)
		}
	}
	for i, m := range c.AllowMethods {
		if m != CORSWildcard && !slices.Contains(corsMethods, m) {
			return errf(sub(path, "allowMethods", Index(i)), false, "%s is not a method%s: want GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS or *",
				yamlnode.QuoteShort(m), didyoumean.Suggest(m, corsMethods))
		}
	}
	for _, l := range []struct {
		key   string
		names []string
	}{{"allowHeaders", c.AllowHeaders}, {"exposeHeaders", c.ExposeHeaders}} {
		for i, h := range l.names {
			if h != CORSWildcard && !validToken(h) {
				return errf(sub(path, l.key, Index(i)), false, "%s is not a header name: want letters, digits and !#$%%&'*+-.^_`|~, or *", yamlnode.QuoteShort(h))
			}
		}
	}
	if c.MaxAge != nil && (*c.MaxAge < MinCORSMaxAge || *c.MaxAge > MaxCORSMaxAge) {
		return errf(sub(path, "maxAge"), false, "%d is out of range: want %d to %d (seconds)", *c.MaxAge, MinCORSMaxAge, MaxCORSMaxAge)
	}
	if c.AllowCredentials && slices.Contains(c.AllowOrigins, CORSWildcard) {
		return errf(sub(path, "allowCredentials"), false, "allowCredentials cannot be used with allowOrigins: * (browsers refuse credentials for any origin, and API Gateway refuses the pair); list the origins instead")
	}
	return nil
}

// checkOrigin checks one entry of allowOrigins.
func checkOrigin(o string) string {
	if o == CORSWildcard {
		return ""
	}
	const want = "want * or scheme://host[:port], such as https://example.com"
	scheme, hostPort, ok := strings.Cut(o, "://")
	if !ok || scheme == "" || hostPort == "" || !validScheme(strings.ToLower(scheme)) {
		return fmt.Sprintf("%s is not an origin: %s", yamlnode.QuoteShort(o), want)
	}
	if strings.ContainsAny(hostPort, "/?#") {
		return fmt.Sprintf("%s is not an origin: an origin has no path, not even a trailing /; %s", yamlnode.QuoteShort(o), want)
	}
	host, port := hostPort, ""
	if i := strings.LastIndexByte(hostPort, ':'); i >= 0 && !strings.HasSuffix(hostPort, "]") {
		host, port = hostPort[:i], hostPort[i+1:]
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 || port[0] == '0' {
			return fmt.Sprintf("%s is not an origin: %s", yamlnode.QuoteShort(o), want)
		}
	}
	lower := strings.ToLower(host)
	if lower == "" || !allIn(lower, func(r rune) bool {
		return r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || strings.ContainsRune("-.[]:", r)
	}) {
		return fmt.Sprintf("%s is not an origin: %s", yamlnode.QuoteShort(o), want)
	}
	if o != strings.ToLower(o) {
		return fmt.Sprintf("%s: write origins in lower case, as browsers send them (%s)", yamlnode.QuoteShort(o), strings.ToLower(o))
	}
	return ""
}

// validScheme reports whether s is a URL scheme: a letter, then letters, digits, +, - and .
func validScheme(s string) bool {
	return s != "" && s[0] >= 'a' && s[0] <= 'z' &&
		allIn(s, func(r rune) bool {
			return r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '+' || r == '-' || r == '.'
		})
}

// validToken reports whether s is an HTTP token (RFC 9110), such as a header name.
func validToken(s string) bool {
	return s != "" && allIn(s, func(r rune) bool {
		return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("!#$%&'*+-.^_`|~", r)
	})
}

// checkKeyURL checks an issuer or JWKS URL: https, or http on the local host; query allowed when
// withQuery.
func checkKeyURL(u string, withQuery bool) bool {
	if strings.ContainsFunc(u, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		return false
	}
	p, err := url.Parse(u)
	if err != nil || p.Host == "" || p.User != nil || p.Opaque != "" || p.Fragment != "" || (p.RawQuery != "" || p.ForceQuery) && !withQuery {
		return false
	}
	switch p.Scheme {
	case "https":
		return true
	case "http":
		h := p.Hostname()
		return h == "localhost" || h == "127.0.0.1" || h == "::1"
	}
	return false
}

// authorizerFits reports whether an authorizer of type az serves routes of authorization type
// auth: a jwt one jwt routes, function, token and request ones function routes.
func authorizerFits(auth, az string) bool {
	if auth == AuthFunction {
		return az == AuthorizerFunction || az == AuthorizerToken || az == AuthorizerRequest
	}
	return auth == az
}

func (c *checker) checkAuthorizer(path []string, name string, a Authorizer, apiType string) *checkErr {
	ws := apiType == APITypeWebSocket
	if !validName(name, MaxAuthorizerNameLength, false) {
		return errf(path, true, "%s is not a valid authorizer name: want 1 to %d letters, digits, - and _", yamlnode.QuoteShort(name), MaxAuthorizerNameLength)
	}
	if a.Name != name {
		return errf(path, true, "Name %q differs from the map key", a.Name)
	}
	switch a.Type {
	case AuthorizerJWT:
		if apiType == APITypeREST {
			return errf(sub(path, "type"), false, "jwt authorizers are for http APIs: a rest API checks tokens with a token authorizer")
		}
		if ws {
			return errf(sub(path, "type"), false, "jwt authorizers are only for http APIs: a websocket API authorizes $connect with a function authorizer or iam")
		}
		if a.JWT == nil || a.Function != nil {
			return errf(path, true, "a jwt authorizer needs its JWT settings, and no Function settings")
		}
		return checkJWTAuthorizer(path, a.JWT)
	case AuthorizerFunction:
		if apiType == APITypeREST {
			return errf(sub(path, "type"), false, "a rest API's function authorizers are of type token (one header's value) or request (the request)")
		}
		if a.Function == nil || a.JWT != nil {
			return errf(path, true, "a function authorizer needs its Function settings, and no JWT settings")
		}
		return c.checkFunctionAuthorizer(path, a.Function)
	case AuthorizerToken, AuthorizerRequest:
		if apiType != APITypeREST {
			return errf(sub(path, "type"), false, "%s authorizers are for rest APIs; an %s API's function authorizer has type function", a.Type, apiType)
		}
		if a.Function == nil || a.JWT != nil {
			return errf(path, true, "a %s authorizer needs its Function settings, and no JWT settings", a.Type)
		}
		return c.checkRESTAuthorizer(path, a)
	}
	return errf(sub(path, "type"), false, "unknown authorizer type %s: want jwt or function (http APIs), token or request (rest APIs)", yamlnode.QuoteShort(a.Type))
}

func checkJWTAuthorizer(path []string, j *JWTAuthorizer) *checkErr {
	const local = "(http:// only for localhost, 127.0.0.1 and [::1])"
	if !checkKeyURL(j.Issuer, false) {
		return errf(sub(path, "issuer"), false, "%s is not an issuer URL: want https://HOST or https://HOST/PATH, without a query %s", yamlnode.QuoteShort(j.Issuer), local)
	}
	if n := len(j.Audiences); n < 1 || n > MaxJWTAudiences {
		return errf(sub(path, "audiences"), false, "%d audiences; want 1 to %d", n, MaxJWTAudiences)
	}
	for i, a := range j.Audiences {
		if strings.TrimSpace(a) == "" {
			return errf(sub(path, "audiences", Index(i)), false, "an audience must not be empty")
		}
	}
	if !strings.HasPrefix(j.IdentitySource, IdentitySourceHeader) && !strings.HasPrefix(j.IdentitySource, IdentitySourceQuery) || checkIdentitySource(j.IdentitySource) != "" {
		return errf(sub(path, "identitySource"), false, "%s is not an identity source for a jwt authorizer: want $request.header.NAME (default %s) or $request.querystring.NAME",
			yamlnode.QuoteShort(j.IdentitySource), DefaultJWTIdentitySource)
	}
	if j.JWKSURL != "" && j.JWKSFile != "" {
		return errf(sub(path, "jwksFile"), true, "give either jwksUrl or jwksFile, not both")
	}
	if j.JWKSURL != "" && !checkKeyURL(j.JWKSURL, true) {
		return errf(sub(path, "jwksUrl"), false, "%s is not a JWKS URL: want https://HOST/PATH %s", yamlnode.QuoteShort(j.JWKSURL), local)
	}
	if j.JWKSFile != "" && !filepath.IsAbs(j.JWKSFile) {
		return errf(sub(path, "jwksFile"), false, "want an absolute path, got %s", yamlnode.QuoteShort(j.JWKSFile))
	}
	if len(j.Algorithms) == 0 {
		return errf(sub(path, "algorithms"), false, "no algorithms; list at least one, or omit algorithms for the default %s", strings.Join(DefaultJWTAlgorithms(), ", "))
	}
	const want = "want RS256, RS384, RS512, ES256, ES384 or EdDSA"
	for i, alg := range j.Algorithms {
		ap := sub(path, "algorithms", Index(i))
		switch {
		case slices.Contains(jwtAlgorithms, alg):
		case strings.EqualFold(alg, "none"):
			return errf(ap, false, "unsigned tokens (none) are never accepted; %s", want)
		case hasPrefixFold(alg, "HS"):
			return errf(ap, false, "%s is never accepted: HMAC tokens are signed with a shared secret, not a published key; %s", yamlnode.QuoteShort(alg), want)
		default:
			return errf(ap, false, "%s is not a supported algorithm%s; %s", yamlnode.QuoteShort(alg), didyoumean.Suggest(alg, jwtAlgorithms), want)
		}
	}
	if j.Skew.D() < 0 || j.Skew.D() > MaxJWTSkew {
		return errf(sub(path, "skew"), false, "%v is out of range: want 0s to 5m", j.Skew)
	}
	return nil
}

func (c *checker) checkFunctionAuthorizer(path []string, a *FunctionAuthorizer) *checkErr {
	if e := c.checkTarget(sub(path, "function"), a.Function); e != nil {
		return e
	}
	if n := len(a.IdentitySources); n < 1 || n > MaxIdentitySources {
		return errf(sub(path, "identitySources"), false, "%d identity sources; want 1 to %d", n, MaxIdentitySources)
	}
	for i, src := range a.IdentitySources {
		if msg := checkIdentitySource(src); msg != "" {
			return errf(sub(path, "identitySources", Index(i)), false, "%s", msg)
		}
	}
	if a.ResultTTL.D() < 0 || a.ResultTTL.D() > MaxAuthorizerResultTTL {
		return errf(sub(path, "resultTtl"), false, "%v is out of range: want 0s (no caching) to 1h", a.ResultTTL)
	}
	if a.Timeout.D() < MinAuthorizerTimeout || a.Timeout.D() > MaxAuthorizerTimeout {
		return errf(sub(path, "timeout"), false, "%v is out of range: want 50ms to 10s", a.Timeout)
	}
	return nil
}

// checkIdentitySource checks an identity source: a prefix and a name.
func checkIdentitySource(src string) string {
	const want = "want $request.header.NAME, $request.querystring.NAME, $context.NAME or $stageVariables.NAME"
	if rest, ok := strings.CutPrefix(src, "route.request."); ok {
		return fmt.Sprintf("%s is API Gateway's websocket form; Gatehouse writes identity sources the same way in every API: $request.%s", yamlnode.QuoteShort(src), rest)
	}
	var valid bool
	switch {
	case strings.HasPrefix(src, IdentitySourceHeader):
		valid = validToken(src[len(IdentitySourceHeader):])
	case strings.HasPrefix(src, IdentitySourceQuery):
		name := src[len(IdentitySourceQuery):]
		valid = name != "" && !strings.ContainsFunc(name, func(r rune) bool { return r <= ' ' || r == 0x7f || r == '&' || r == '=' || r == '#' })
	case strings.HasPrefix(src, IdentitySourceContext):
		valid = true
		for _, part := range strings.Split(src[len(IdentitySourceContext):], ".") {
			valid = valid && validName(part, len(part), true)
		}
	case strings.HasPrefix(src, IdentitySourceStageVariable):
		valid = validName(src[len(IdentitySourceStageVariable):], 64, true)
	}
	if !valid {
		return fmt.Sprintf("%s is not an identity source: %s", yamlnode.QuoteShort(src), want)
	}
	return ""
}

// checkRouteControls checks a route's authorization and apiKeyRequired.
func (c *checker) checkRouteControls(rp []string, r Route, api API) *checkErr {
	ws := api.Type == APITypeWebSocket
	a := r.Authorization
	ap := sub(rp, "authorization")
	types := []string{AuthNone, AuthJWT, AuthFunction, AuthIAM}
	if !slices.Contains(types, a.Type) {
		return errf(sub(ap, "type"), false, "unknown authorization type %s%s: want none, jwt, function or iam", yamlnode.QuoteShort(a.Type), didyoumean.Suggest(a.Type, types))
	}
	if ws && a.Type != AuthNone && r.Key != RouteConnect {
		return errf(ap, true, "only on the $connect route: a websocket API authorizes a client once, when it connects")
	}
	if ws && a.Type == AuthJWT {
		return errf(sub(ap, "type"), false, "jwt authorization is only for http APIs: a websocket API authorizes $connect with type function or iam")
	}
	if api.Type == APITypeREST && a.Type == AuthJWT {
		return errf(sub(ap, "type"), false, "jwt authorization is only for http APIs: a rest API checks tokens with type function and a token authorizer")
	}
	if len(a.Scopes) > 0 && a.Type != AuthJWT {
		return errf(sub(ap, "scopes"), true, "scopes are only for type jwt; this route has type %s", a.Type)
	}
	switch a.Type {
	case AuthNone, AuthIAM:
		if a.Authorizer != "" {
			return errf(sub(ap, "authorizer"), true, "only for type jwt or function; a route with type %s has no authorizer", a.Type)
		}
	case AuthJWT, AuthFunction:
		names := slices.Sorted(maps.Keys(api.Authorizers))
		var of []string
		for _, n := range names {
			if authorizerFits(a.Type, api.Authorizers[n].Type) {
				of = append(of, n)
			}
		}
		available := fmt.Sprintf("this API has no %s authorizer", a.Type)
		if len(of) > 0 {
			available = fmt.Sprintf("this API's %s authorizers: %s", a.Type, strings.Join(of, ", "))
		}
		if a.Authorizer == "" {
			return errf(sub(ap, "authorizer"), false, "required: the name of a %s authorizer (%s)", a.Type, available)
		}
		az, ok := api.Authorizers[a.Authorizer]
		if !ok {
			hint := didyoumean.Suggest(a.Authorizer, names)
			if hint == "" {
				hint = " (" + available + ")"
			}
			return errf(sub(ap, "authorizer"), false, "no authorizer named %s in apis.%s.authorizers%s", yamlnode.QuoteShort(a.Authorizer), api.Name, hint)
		}
		if !authorizerFits(a.Type, az.Type) {
			return errf(sub(ap, "authorizer"), false, "the authorizer %s has type %s; authorization type %s needs a %s authorizer (%s)",
				a.Authorizer, az.Type, a.Type, a.Type, available)
		}
	}
	if n := len(a.Scopes); n > MaxAuthorizationScopes {
		return errf(sub(ap, "scopes"), false, "%d scopes; at most %d", n, MaxAuthorizationScopes)
	}
	for i, sc := range a.Scopes {
		if sc == "" || strings.ContainsFunc(sc, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
			return errf(sub(ap, "scopes", Index(i)), false, "%s is not a scope: want a non-empty string without spaces", yamlnode.QuoteShort(sc))
		}
	}
	if r.APIKeyRequired {
		if ws && r.Key != RouteConnect {
			return errf(sub(rp, "apiKeyRequired"), false, "only on the $connect route: a websocket API checks the API key once, when a client connects")
		}
		if !c.env.UsagePlans {
			return errf(sub(rp, "apiKeyRequired"), false, "API keys belong to usage plans, and the stack has none: add a top-level usagePlans section, then create keys with gatehouse keys create --plan NAME")
		}
	}
	return nil
}
