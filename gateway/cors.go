package gateway

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// CORS response header names, lower case as the gateway sends them.
const (
	corsAllowOrigin      = "access-control-allow-origin"
	corsAllowMethods     = "access-control-allow-methods"
	corsAllowHeaders     = "access-control-allow-headers"
	corsExposeHeaders    = "access-control-expose-headers"
	corsMaxAge           = "access-control-max-age"
	corsAllowCredentials = "access-control-allow-credentials"
	corsVary             = "vary"
	corsHeaderPrefix     = "access-control-"
)

// Limits of CORS.MaxAge, in seconds.
const (
	CORSMaxAgeUnset = -1
	CORSMaxAgeMax   = 86400
)

// errCORSCredentialsWildcard is API Gateway's message for allowCredentials with a "*" origin.
var errCORSCredentialsWildcard = errors.New("allow-credentials is not supported if 'allow-origin' is *")

// CORS is an API's CORS configuration. With one, the gateway answers preflight requests itself (no
// route, authorizer or function runs) and adds CORS headers to the other responses, replacing any
// CORS headers the function returned. Without one (a nil *CORS), OPTIONS requests are routed like any
// other and no CORS header is added.
//
// Origins compare case-insensitively: an origin is scheme://host[:port], and both scheme and host
// are case-insensitive. Nothing else is normalised: a default port written out
// ("https://example.com:443") does not match an Origin without it, as browsers send, and a
// configured origin with a trailing "/" matches nothing.
type CORS struct {
	// AllowOrigins are the origins allowed, or "*" for any.
	AllowOrigins []string
	// AllowMethods are the methods a preflight allows, or "*".
	AllowMethods []string
	// AllowHeaders are the request headers a preflight allows; "*" allows those the preflight asks
	// for.
	AllowHeaders []string
	// ExposeHeaders are the response headers scripts may read, or "*".
	ExposeHeaders []string
	// MaxAge is how long, in seconds, a browser may cache a preflight answer: -1 (CORSMaxAgeUnset)
	// sends no access-control-max-age header; at most 86400. Note that the zero value sends 0.
	MaxAge int
	// AllowCredentials sends access-control-allow-credentials: true. It cannot go with a "*" origin.
	AllowCredentials bool
}

// Validate checks c as API Gateway checks a corsConfiguration: allowCredentials with a "*" origin is
// refused with API Gateway's message, MaxAge must be within -1…86400, methods and header names must
// be HTTP tokens or "*", and origins must be non-empty with no space, comma or control character. A
// nil c is valid.
func (c *CORS) Validate() error {
	if c == nil {
		return nil
	}
	if c.AllowCredentials && slices.Contains(c.AllowOrigins, "*") {
		return errCORSCredentialsWildcard
	}
	if c.MaxAge < CORSMaxAgeUnset || c.MaxAge > CORSMaxAgeMax {
		return fmt.Errorf("cors: maxAge %d must be between %d and %d", c.MaxAge, CORSMaxAgeUnset, CORSMaxAgeMax)
	}
	for _, o := range c.AllowOrigins {
		if !validCORSOrigin(o) {
			return fmt.Errorf("cors: invalid origin %q", o)
		}
	}
	for _, l := range []struct {
		what  string
		items []string
	}{{"method", c.AllowMethods}, {"allowed header", c.AllowHeaders}, {"exposed header", c.ExposeHeaders}} {
		for _, v := range l.items {
			if !validHeaderName(v) { // an HTTP token; "*" is one
				return fmt.Errorf("cors: invalid %s %q", l.what, v)
			}
		}
	}
	return nil
}

// IsCORSHeader reports whether name (in any case) is a CORS response header, one the gateway
// removes from a function's response when the API has a CORS configuration.
func IsCORSHeader(name string) bool {
	n := len(corsHeaderPrefix)
	return len(name) >= n && strings.EqualFold(name[:n], corsHeaderPrefix)
}

// validCORSOrigin reports whether o is non-empty with no space, comma or control character.
func validCORSOrigin(o string) bool {
	if o == "" {
		return false
	}
	for i := 0; i < len(o); i++ {
		if c := o[i]; c <= ' ' || c == ',' || c == 0x7f {
			return false
		}
	}
	return true
}

// DependsOnOrigin reports whether the CORS answer depends on the request's Origin, that is whether
// some origins are allowed and they are a list rather than "*" (or "*" with credentials, which echoes
// the Origin). When it does, a response that can be cached should carry Vary: Origin even when it has no
// CORS header (no Origin, or one not allowed).
func (c *CORS) DependsOnOrigin() bool {
	return c != nil && len(c.AllowOrigins) > 0 && (c.AllowCredentials || !slices.Contains(c.AllowOrigins, "*"))
}

// allowOrigin returns the access-control-allow-origin value for origin, or "" when origin is empty or
// not allowed: "*" when "*" is configured without credentials, otherwise origin itself as sent.
func (c *CORS) allowOrigin(origin string) string {
	if origin == "" {
		return ""
	}
	for _, o := range c.AllowOrigins {
		if o == "*" {
			if c.AllowCredentials {
				return origin
			}
			return "*"
		}
	}
	for _, o := range c.AllowOrigins {
		if strings.EqualFold(o, origin) {
			return origin
		}
	}
	return ""
}

// Preflight reports whether a request is a CORS preflight: an OPTIONS request with an Origin and an
// Access-Control-Request-Method header (method, origin, requestMethod and requestHeaders are the
// request's method, Origin, Access-Control-Request-Method and Access-Control-Request-Headers). The
// gateway answers a preflight itself with status 204 and headers: access-control-allow-origin,
// access-control-allow-methods and access-control-allow-headers (each when there is something to
// allow), access-control-max-age (when MaxAge ≥ 0), access-control-allow-credentials (when set), and
// vary: Origin when the answer depends on the Origin. headers is nil when the Origin is not allowed:
// the answer is still 204, with no CORS header.
//
// "*" in AllowHeaders answers with the request's Access-Control-Request-Headers. A nil c reports no
// preflight: without a CORS configuration OPTIONS requests are routed.
func (c *CORS) Preflight(method, origin, requestMethod, requestHeaders string) (isPreflight bool, headers map[string]string) {
	if c == nil || method != "OPTIONS" || origin == "" || requestMethod == "" {
		return false, nil
	}
	allow := c.allowOrigin(origin)
	if allow == "" {
		return true, nil
	}
	h := make(map[string]string, 6)
	h[corsAllowOrigin] = allow
	if len(c.AllowMethods) > 0 {
		h[corsAllowMethods] = strings.Join(c.AllowMethods, ",")
	}
	if slices.Contains(c.AllowHeaders, "*") {
		if rh := strings.TrimSpace(requestHeaders); rh != "" {
			h[corsAllowHeaders] = rh
		}
	} else if len(c.AllowHeaders) > 0 {
		h[corsAllowHeaders] = strings.Join(c.AllowHeaders, ",")
	}
	if c.MaxAge >= 0 {
		h[corsMaxAge] = strconv.Itoa(c.MaxAge)
	}
	c.addCommon(h)
	return true, h
}

// Headers returns the CORS headers the gateway adds to a response other than a preflight's, for a
// request with Origin origin: access-control-allow-origin, access-control-expose-headers (when
// ExposeHeaders is set), access-control-allow-credentials (when set) and vary: Origin when the
// answer depends on the Origin. It returns nil when origin is empty or not allowed, and for a nil c.
//
// The caller removes the function's own CORS headers (see IsCORSHeader) before adding these, and
// merges vary with any vary header the function returned.
func (c *CORS) Headers(origin string) map[string]string {
	if c == nil {
		return nil
	}
	allow := c.allowOrigin(origin)
	if allow == "" {
		return nil
	}
	h := make(map[string]string, 4)
	h[corsAllowOrigin] = allow
	if len(c.ExposeHeaders) > 0 {
		h[corsExposeHeaders] = strings.Join(c.ExposeHeaders, ",")
	}
	c.addCommon(h)
	return h
}

func (c *CORS) addCommon(h map[string]string) {
	if c.AllowCredentials {
		h[corsAllowCredentials] = "true"
	}
	if c.DependsOnOrigin() {
		h[corsVary] = "Origin"
	}
}
