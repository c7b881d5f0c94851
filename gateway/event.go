package gateway

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/events"
	"github.com/gofiber/fiber/v2"
)

// eventAccountID is the requestContext.accountId of events when no account is configured:
// functions written for Lambda expect twelve digits.
const eventAccountID = "000000000000"

// eventTimeLayout is the Common Log Format time of requestContext.time.
const eventTimeLayout = "02/Jan/2006:15:04:05 -0700"

// EventContext is what the gateway knows about the request beyond the HTTP message
// itself.
type EventContext struct {
	RouteKey       string            // matched key, e.g. "GET /pets/{id}" or "$default"
	Stage          string            // "$default" or stage name
	StageVariables map[string]string // nil when none
	PathParameters map[string]string // nil when none
	RequestID      string
	Time           time.Time // arrival time; the zero value means time.Now()
	APIID          string
	AccountID      string // requestContext.accountId; "" means eventAccountID
	DomainName     string // host without port
	SourceIP       string // client address; empty means the connection's remote IP
	// Authorizer is what the route's authorizer found (JWT claims and scopes, a function
	// authorizer's context, the IAM caller); nil without one.
	Authorizer *events.APIGatewayV2HTTPRequestContextAuthorizerDescription
	// Authentication is the client certificate of a mutual TLS request; nil without one.
	Authentication *events.APIGatewayV2HTTPRequestContextAuthentication
}

// BuildEvent encodes the request held by c (a *fiber.Ctx whose body was already
// read) as an API Gateway HTTP API payload 2.0 event (JSON bytes). The result does
// not refer to c's buffers and stays valid after the handler returns; ec's maps are
// only read.
//
// # Fields
//
//   - rawPath and requestContext.http.path are the path exactly as received: not
//     decoded, stage segment and trailing "/" included. rawQueryString is the query
//     without "?", "" when none.
//   - headers: names lower-cased, repeated headers joined with ",". Cookie headers
//     are not in headers; their cookies, split on ";" and trimmed, are in cookies in
//     the order received, with values untouched (quotes kept).
//   - As API Gateway does, x-forwarded-for gets SourceIP appended (", " after any
//     value the client sent), and x-forwarded-proto ("http" or "https") and
//     x-forwarded-port (the local port, when known) replace client values.
//   - queryStringParameters: keys and values form-decoded ("+" is a space; an
//     invalid escape leaves the text raw), repeated keys joined with "," in order,
//     pairs with an empty key skipped, nil when none.
//   - pathParameters and stageVariables are omitted when empty.
//   - body is the raw request body (Content-Encoding is not undone), omitted when
//     empty. It is sent as text, isBase64Encoded false, only when the media type
//     (parameters ignored, case-insensitive) is text/*, application/json,
//     application/xml, application/javascript, or has a "+json" or "+xml" suffix
//     (application/problem+json, image/svg+xml: our choice, API Gateway is not
//     known to do this), and the body is valid UTF-8 (so that JSON cannot mangle
//     it). Anything else, a missing Content-Type included, is base64 with
//     isBase64Encoded true. An empty body has isBase64Encoded false.
//   - requestContext: accountId EventContext.AccountID ("000000000000" when empty),
//     domainPrefix the first DNS label of DomainName (an IP address is kept whole), time in CLF in UTC
//     ("12/Mar/2020:19:03:58 +0000"), timeEpoch in ms, http.protocol the request's
//     ("HTTP/1.1").
//
// The event is encoded from the aws-lambda-go events.APIGatewayV2HTTPRequest type,
// without HTML escaping, and without requestContext.authentication (mTLS only): by
// hand (encodeEventV2), byte for byte as encoding/json writes it.
func BuildEvent(c *fiber.Ctx, ec EventContext) ([]byte, error) {
	var ev eventRequest
	fillEventRequest(&ev, c, ec)
	return encodeEventV2(&ev)
}

// fillEventRequest sets ev to the payload 2.0 event of the request held by c, as BuildEvent
// encodes it.
func fillEventRequest(ev *eventRequest, c *fiber.Ctx, ec EventContext) {
	req := c.Request()
	rawPath := string(req.URI().PathOriginal())
	if rawPath == "" {
		rawPath = "/"
	}
	rawQuery := string(req.URI().QueryString())

	sourceIP := ec.SourceIP
	if sourceIP == "" {
		sourceIP = c.Context().RemoteIP().String()
	}
	at := ec.Time
	if at.IsZero() {
		at = time.Now()
	}
	at = at.UTC()

	headers, cookies := eventHeaders(c)
	addForwardedHeaders(headers, c, sourceIP)

	account := ec.AccountID
	if account == "" {
		account = eventAccountID
	}
	rc := events.APIGatewayV2HTTPRequestContext{
		RouteKey:     ec.RouteKey,
		AccountID:    account,
		Stage:        ec.Stage,
		RequestID:    ec.RequestID,
		APIID:        ec.APIID,
		DomainName:   ec.DomainName,
		DomainPrefix: eventDomainPrefix(ec.DomainName),
		Authorizer:   ec.Authorizer,
		Time:         at.Format(eventTimeLayout),
		TimeEpoch:    at.UnixMilli(),
		HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{
			Method:    c.Method(),
			Path:      rawPath,
			Protocol:  string(req.Header.Protocol()),
			SourceIP:  sourceIP,
			UserAgent: string(req.Header.UserAgent()),
		},
	}
	*ev = eventRequest{
		APIGatewayV2HTTPRequest: events.APIGatewayV2HTTPRequest{
			Version:               "2.0",
			RouteKey:              ec.RouteKey,
			RawPath:               rawPath,
			RawQueryString:        rawQuery,
			Cookies:               cookies,
			Headers:               headers,
			QueryStringParameters: eventQueryParameters(rawQuery),
			PathParameters:        nilIfEmpty(ec.PathParameters),
			StageVariables:        nilIfEmpty(ec.StageVariables),
		},
		RequestContext: eventRequestContext{APIGatewayV2HTTPRequestContext: rc, Authentication: ec.Authentication},
	}
	if body := req.Body(); len(body) > 0 {
		if isTextMediaType(string(req.Header.ContentType())) && utf8.Valid(body) {
			ev.Body = string(body)
		} else {
			ev.Body = base64.StdEncoding.EncodeToString(body)
			ev.IsBase64Encoded = true
		}
	}
}

// encodeEvent encodes an event as JSON without HTML escaping (a body's "<" stays as it is).
func encodeEvent(ev any, format string) ([]byte, error) {
	var out bytes.Buffer
	enc := json.NewEncoder(&out)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(ev); err != nil {
		return nil, fmt.Errorf("encode payload %s event: %w", format, err)
	}
	return bytes.TrimSuffix(out.Bytes(), []byte("\n")), nil
}

// eventRequest is the payload 2.0 event as encoded: the aws-lambda-go type, whose
// requestContext is replaced to omit requestContext.authentication.
type eventRequest struct {
	events.APIGatewayV2HTTPRequest
	RequestContext eventRequestContext `json:"requestContext"`
}

// eventRequestContext is the aws-lambda-go request context with authentication
// omitted when nil (the embedded field's omitempty cannot omit a struct): it is set
// only for requests with a client certificate (mutual TLS).
type eventRequestContext struct {
	events.APIGatewayV2HTTPRequestContext
	Authentication *events.APIGatewayV2HTTPRequestContextAuthentication `json:"authentication,omitempty"`
}

// eventHeaders collects the request headers of c for an event: lower-case names,
// repeated headers joined with ",", and the Cookie headers split into cookies.
func eventHeaders(c *fiber.Ctx) (map[string]string, []string) {
	h := &c.Request().Header
	headers := make(map[string]string, h.Len())
	var name []byte
	hasCookie := false
	h.VisitAll(func(key, value []byte) {
		name = append(name[:0], key...)
		for i, b := range name {
			if 'A' <= b && b <= 'Z' {
				name[i] = b + ('a' - 'A')
			}
		}
		if string(name) == "cookie" {
			hasCookie = true
			return
		}
		k := string(name)
		if prev, ok := headers[k]; ok {
			headers[k] = prev + "," + string(value)
		} else {
			headers[k] = string(value)
		}
	})
	if !hasCookie {
		return headers, nil
	}
	// fasthttp re-serializes parsed cookies (dropping quotes), so read the Cookie
	// headers as received. A request built in memory has no raw headers; then the
	// parsed cookies are the best there is.
	var cookies []string
	if len(h.RawHeaders()) > 0 {
		h.VisitAllInOrder(func(key, value []byte) {
			if bytes.EqualFold(key, []byte("cookie")) {
				cookies = appendCookies(cookies, string(value))
			}
		})
	} else {
		cookies = appendCookies(cookies, string(h.Peek(fiber.HeaderCookie)))
	}
	return headers, cookies
}

// appendCookies appends the ";"-separated, trimmed, non-empty parts of a Cookie
// header value to cookies.
func appendCookies(cookies []string, value string) []string {
	for part := range strings.SplitSeq(value, ";") {
		if part = strings.TrimSpace(part); part != "" {
			cookies = append(cookies, part)
		}
	}
	return cookies
}

// addForwardedHeaders sets the x-forwarded-* headers API Gateway adds to events.
func addForwardedHeaders(headers map[string]string, c *fiber.Ctx, sourceIP string) {
	if sourceIP != "" {
		if prev := headers["x-forwarded-for"]; prev != "" {
			headers["x-forwarded-for"] = prev + ", " + sourceIP
		} else {
			headers["x-forwarded-for"] = sourceIP
		}
	}
	if c.Context().IsTLS() {
		headers["x-forwarded-proto"] = "https"
	} else {
		headers["x-forwarded-proto"] = "http"
	}
	if addr, ok := c.Context().LocalAddr().(*net.TCPAddr); ok && addr.Port != 0 {
		headers["x-forwarded-port"] = strconv.Itoa(addr.Port)
	} else {
		delete(headers, "x-forwarded-port")
	}
}

// eventQueryParameters decodes a raw query string into queryStringParameters:
// repeated keys joined with ",", nil when there are none.
func eventQueryParameters(rawQuery string) map[string]string {
	if rawQuery == "" {
		return nil
	}
	var params map[string]string
	for pair := range strings.SplitSeq(rawQuery, "&") {
		k, v, _ := strings.Cut(pair, "=")
		k = decodeQueryComponent(k)
		if k == "" {
			continue
		}
		v = decodeQueryComponent(v)
		if params == nil {
			params = make(map[string]string)
		}
		if prev, ok := params[k]; ok {
			params[k] = prev + "," + v
		} else {
			params[k] = v
		}
	}
	return params
}

// decodeQueryComponent form-decodes s, returning it unchanged when it holds an
// invalid escape.
func decodeQueryComponent(s string) string {
	if strings.IndexByte(s, '%') < 0 && strings.IndexByte(s, '+') < 0 {
		return s
	}
	d, err := url.QueryUnescape(s)
	if err != nil {
		return s
	}
	return d
}

// eventDomainPrefix returns the first DNS label of a domain name, or an IP address
// whole.
func eventDomainPrefix(domain string) string {
	if net.ParseIP(domain) != nil {
		return domain
	}
	prefix, _, _ := strings.Cut(domain, ".")
	return prefix
}

// isTextMediaType reports whether a Content-Type value names a type whose body an
// event carries as text rather than base64.
func isTextMediaType(contentType string) bool {
	mt, _, _ := strings.Cut(contentType, ";")
	mt = strings.ToLower(strings.TrimSpace(mt))
	switch {
	case strings.HasPrefix(mt, "text/"):
		return true
	case mt == "application/json", mt == "application/xml", mt == "application/javascript":
		return true
	case strings.HasSuffix(mt, "+json"), strings.HasSuffix(mt, "+xml"):
		return strings.IndexByte(mt, '/') > 0
	}
	return false
}

// nilIfEmpty returns m, or nil when m has no entries, so that an event omits it.
func nilIfEmpty(m map[string]string) map[string]string {
	if len(m) == 0 {
		return nil
	}
	return m
}
