package gateway

import (
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// This file holds the hand-written encoder of the payload 2.0 event. Its output is byte for byte
// what encodeEvent (encoding/json without HTML escaping) writes for the same eventRequest;
// TestEncodeEventV2 and FuzzEncodeEventV2 hold it to that. The authorizer and the
// authentication, when there are any, are encoded by encoding/json and spliced in.

// encodeEventV2 encodes a payload 2.0 event as encodeEvent(ev, "2.0") does.
func encodeEventV2(ev *eventRequest) ([]byte, error) {
	r := &ev.APIGatewayV2HTTPRequest
	rc := &ev.RequestContext.APIGatewayV2HTTPRequestContext
	var authorizer, authentication []byte
	if rc.Authorizer != nil {
		b, err := encodeEvent(rc.Authorizer, "2.0")
		if err != nil {
			return encodeEventJSON(ev) // the error as encoding/json words it for the event
		}
		authorizer = b
	}
	if ev.RequestContext.Authentication != nil {
		b, err := encodeEvent(ev.RequestContext.Authentication, "2.0")
		if err != nil {
			return encodeEventJSON(ev)
		}
		authentication = b
	}

	n := 400 + len(r.Version) + len(r.RouteKey) + len(r.RawPath) + len(r.RawQueryString) + len(r.Body) +
		len(rc.RouteKey) + len(rc.AccountID) + len(rc.Stage) + len(rc.RequestID) + len(rc.APIID) +
		len(rc.DomainName) + len(rc.DomainPrefix) + len(rc.Time) + len(rc.HTTP.Method) + len(rc.HTTP.Path) +
		len(rc.HTTP.Protocol) + len(rc.HTTP.SourceIP) + len(rc.HTTP.UserAgent) + len(authorizer) + len(authentication) +
		stringMapSize(r.Headers) + stringMapSize(r.QueryStringParameters) + stringMapSize(r.PathParameters) +
		stringMapSize(r.StageVariables)
	for _, c := range r.Cookies {
		n += len(c) + 3
	}
	dst := make([]byte, 0, n+n/16)

	dst = append(dst, `{"version":`...)
	dst = appendEventString(dst, r.Version)
	dst = append(dst, `,"routeKey":`...)
	dst = appendEventString(dst, r.RouteKey)
	dst = append(dst, `,"rawPath":`...)
	dst = appendEventString(dst, r.RawPath)
	dst = append(dst, `,"rawQueryString":`...)
	dst = appendEventString(dst, r.RawQueryString)
	if len(r.Cookies) > 0 {
		dst = append(dst, `,"cookies":[`...)
		for i, c := range r.Cookies {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendEventString(dst, c)
		}
		dst = append(dst, ']')
	}
	dst = append(dst, `,"headers":`...)
	dst = appendEventStringMap(dst, r.Headers)
	if len(r.QueryStringParameters) > 0 {
		dst = append(dst, `,"queryStringParameters":`...)
		dst = appendEventStringMap(dst, r.QueryStringParameters)
	}
	if len(r.PathParameters) > 0 {
		dst = append(dst, `,"pathParameters":`...)
		dst = appendEventStringMap(dst, r.PathParameters)
	}
	// The embedded request context is hidden by eventRequest's own, written last.
	if len(r.StageVariables) > 0 {
		dst = append(dst, `,"stageVariables":`...)
		dst = appendEventStringMap(dst, r.StageVariables)
	}
	if r.Body != "" {
		dst = append(dst, `,"body":`...)
		dst = appendEventString(dst, r.Body)
	}
	dst = append(dst, `,"isBase64Encoded":`...)
	dst = strconv.AppendBool(dst, r.IsBase64Encoded)

	dst = append(dst, `,"requestContext":{"routeKey":`...)
	dst = appendEventString(dst, rc.RouteKey)
	dst = append(dst, `,"accountId":`...)
	dst = appendEventString(dst, rc.AccountID)
	dst = append(dst, `,"stage":`...)
	dst = appendEventString(dst, rc.Stage)
	dst = append(dst, `,"requestId":`...)
	dst = appendEventString(dst, rc.RequestID)
	if authorizer != nil {
		dst = append(dst, `,"authorizer":`...)
		dst = append(dst, authorizer...)
	}
	dst = append(dst, `,"apiId":`...)
	dst = appendEventString(dst, rc.APIID)
	dst = append(dst, `,"domainName":`...)
	dst = appendEventString(dst, rc.DomainName)
	dst = append(dst, `,"domainPrefix":`...)
	dst = appendEventString(dst, rc.DomainPrefix)
	dst = append(dst, `,"time":`...)
	dst = appendEventString(dst, rc.Time)
	dst = append(dst, `,"timeEpoch":`...)
	dst = strconv.AppendInt(dst, rc.TimeEpoch, 10)
	dst = append(dst, `,"http":{"method":`...)
	dst = appendEventString(dst, rc.HTTP.Method)
	dst = append(dst, `,"path":`...)
	dst = appendEventString(dst, rc.HTTP.Path)
	dst = append(dst, `,"protocol":`...)
	dst = appendEventString(dst, rc.HTTP.Protocol)
	dst = append(dst, `,"sourceIp":`...)
	dst = appendEventString(dst, rc.HTTP.SourceIP)
	dst = append(dst, `,"userAgent":`...)
	dst = appendEventString(dst, rc.HTTP.UserAgent)
	dst = append(dst, '}')
	// The embedded authentication is hidden by eventRequestContext's own.
	if authentication != nil {
		dst = append(dst, `,"authentication":`...)
		dst = append(dst, authentication...)
	}
	return append(dst, "}}"...), nil
}

// encodeEventJSON is encodeEvent(ev, "2.0") on a copy of ev, so that ev itself need not escape
// to the heap.
func encodeEventJSON(ev *eventRequest) ([]byte, error) {
	cp := *ev
	return encodeEvent(&cp, "2.0")
}

// stringMapSize is about the length of m encoded.
func stringMapSize(m map[string]string) int {
	n := 0
	for k, v := range m {
		n += len(k) + len(v) + 6
	}
	return n
}

// appendEventStringMap appends m as encoding/json encodes a map[string]string: null when nil,
// keys in sorted order.
func appendEventStringMap(dst []byte, m map[string]string) []byte {
	if m == nil {
		return append(dst, "null"...)
	}
	var stack [32]string
	keys := stack[:0]
	for k := range m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, strings.Compare)
	dst = append(dst, '{')
	for i, k := range keys {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendEventString(dst, k)
		dst = append(dst, ':')
		dst = appendEventString(dst, m[k])
	}
	return append(dst, '}')
}

// eventSafe marks the ASCII bytes encoding/json writes as they are when it does not escape
// HTML: all but control characters, the quote and the backslash.
var eventSafe = func() (t [utf8.RuneSelf]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// appendEventString appends s as a JSON string as encoding/json writes it without HTML
// escaping: invalid UTF-8 as \ufffd, U+2028 and U+2029 escaped. The Go SDK has its twin (with HTML
// escaping, as json.Marshal writes), kept apart because the SDK is built into functions as a module
// of its own and imports nothing of Gatehouse's.
func appendEventString(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if eventSafe[c] {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i++
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hex[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
