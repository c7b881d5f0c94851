package gateway

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"unicode/utf8"
)

// wsDefaultRoute is the route key of a WebSocket API's catch-all route.
const wsDefaultRoute = "$default"

// wsBodyExprPrefix starts a route selection expression that reads the message.
const wsBodyExprPrefix = "$request.body."

// wsLiteralDefaultExpr is the route selection expression that sends every message to
// $default.
const wsLiteralDefaultExpr = `\$default`

// RouteSelector evaluates a WebSocket API's route selection expression against a
// message. It is immutable and safe for concurrent use.
type RouteSelector struct {
	path []string // object keys from the message's root; nil for `\$default`
}

// NewRouteSelector parses a route selection expression:
//
//   - "$request.body.<path>", where path is one or more dot-separated JSON object
//     keys (e.g. $request.body.action, $request.body.meta.kind). Keys are matched
//     exactly (case-sensitive) against the message's keys after JSON unescaping; a
//     key that itself contains "." cannot be named.
//   - the literal `\$default`: every message goes to $default.
//
// Anything else, composite templates ("${request.body.a}/${request.body.b}")
// included, is an error.
func NewRouteSelector(expr string) (*RouteSelector, error) {
	if expr == wsLiteralDefaultExpr {
		return &RouteSelector{}, nil
	}
	rest, ok := strings.CutPrefix(expr, wsBodyExprPrefix)
	if !ok {
		return nil, fmt.Errorf("route selection expression %q: want %s<path> or %s", expr, wsBodyExprPrefix, wsLiteralDefaultExpr)
	}
	path := strings.Split(rest, ".")
	for _, key := range path {
		if key == "" {
			return nil, fmt.Errorf("route selection expression %q: empty key in path", expr)
		}
	}
	return &RouteSelector{path: path}, nil
}

// Select returns the route key for message, given the API's route keys (a set).
//
// The expression's value is used when it is a key of routes, other than $connect
// and $disconnect (a message never runs those); otherwise the message goes to
// $default when routes has it; otherwise Select returns "", false (the client is
// sent a "Forbidden" error frame, see [WSErrorFrame]).
//
// The value is that of the path in the message decoded as encoding/json would
// decode it into map[string]any: the message must be valid JSON (as json.Valid
// sees it) whose top level is an object; a key repeated in an object takes the
// last value, at every level; strings are unescaped (invalid UTF-8 becoming
// U+FFFD). A string value is used as is; a number or boolean as its JSON text as
// written in the message ("1", "1.50", "1e3", "true"). A message that is not a
// JSON object, a missing path, and a null, object or array value fall to $default.
//
// Select does not decode the message into maps: it validates it with json.Valid
// and walks it with a small scanner, allocating at most the returned key (and the
// unescaped text of keys or values holding escapes).
func (r *RouteSelector) Select(message []byte, routes map[string]bool) (string, bool) {
	if r.path != nil {
		if v, ok := r.value(message); ok && len(v) > 0 && !wsReservedRoute(v) && routes[string(v)] {
			return string(v), true
		}
	}
	if routes[wsDefaultRoute] {
		return wsDefaultRoute, true
	}
	return "", false
}

// wsReservedRoute reports whether key names a route that no message may select.
func wsReservedRoute(key []byte) bool {
	return string(key) == "$connect" || string(key) == "$disconnect"
}

// value returns the stringified value of r's path in message, or false when the
// message is not a JSON object or the path does not lead to a string, number or
// boolean.
func (r *RouteSelector) value(message []byte) ([]byte, bool) {
	if !json.Valid(message) {
		return nil, false
	}
	s := wsScanner{data: message}
	s.skipSpace()
	if s.pos >= len(s.data) || s.data[s.pos] != '{' {
		return nil, false
	}
	tok, ok := s.findInObject(r.path)
	if !ok {
		return nil, false
	}
	switch tok[0] {
	case '"':
		return wsUnquote(tok)
	case 't', 'f', '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		return tok, true
	}
	return nil, false // null
}

// wsScanner walks a JSON text already known to be valid.
type wsScanner struct {
	data []byte
	pos  int
}

// findInObject reads the object starting at s.pos (a '{') and returns the raw token
// of the scalar at path inside it, where the last occurrence of a repeated key
// wins. It leaves s.pos after the object's '}'. ok is false when the path is
// missing or leads to an object or array.
func (s *wsScanner) findInObject(path []string) (tok []byte, ok bool) {
	s.pos++ // '{'
	for {
		s.skipSpace()
		if s.data[s.pos] == '}' {
			s.pos++
			return tok, ok
		}
		if s.data[s.pos] == ',' {
			s.pos++
			s.skipSpace()
		}
		key := s.scanString()
		s.skipSpace()
		s.pos++ // ':'
		s.skipSpace()
		if !wsKeyEqual(key, path[0]) {
			s.skipValue()
			continue
		}
		switch c := s.data[s.pos]; {
		case len(path) > 1 && c == '{':
			tok, ok = s.findInObject(path[1:])
		case len(path) == 1 && c != '{' && c != '[':
			start := s.pos
			s.skipValue()
			tok, ok = s.data[start:s.pos], true
		default:
			s.skipValue()
			tok, ok = nil, false
		}
	}
}

// skipSpace advances past JSON whitespace.
func (s *wsScanner) skipSpace() {
	for s.pos < len(s.data) {
		switch s.data[s.pos] {
		case ' ', '\t', '\n', '\r':
			s.pos++
		default:
			return
		}
	}
}

// scanString returns the raw string token at s.pos, quotes included, and advances
// past it.
func (s *wsScanner) scanString() []byte {
	start := s.pos
	s.pos++ // opening quote
	for {
		switch s.data[s.pos] {
		case '\\':
			s.pos += 2
		case '"':
			s.pos++
			return s.data[start:s.pos]
		default:
			s.pos++
		}
	}
}

// skipValue advances past the value at s.pos. Nesting is tracked by a counter: the
// text is valid, so brackets pair up.
func (s *wsScanner) skipValue() {
	depth := 0
	for {
		switch s.data[s.pos] {
		case '"':
			s.scanString()
		case '{', '[':
			depth++
			s.pos++
		case '}', ']':
			depth--
			s.pos++
		case ',', ':', ' ', '\t', '\n', '\r':
			s.pos++ // only met inside a container
		default: // a literal or number
			for s.pos < len(s.data) && !wsDelimiter(s.data[s.pos]) {
				s.pos++
			}
		}
		if depth == 0 {
			return
		}
	}
}

// wsDelimiter reports whether c ends a JSON literal or number.
func wsDelimiter(c byte) bool {
	switch c {
	case ',', '}', ']', ' ', '\t', '\n', '\r':
		return true
	}
	return false
}

// wsKeyEqual reports whether the raw string token key decodes to want.
func wsKeyEqual(key []byte, want string) bool {
	inner := key[1 : len(key)-1]
	if wsPlainString(inner) {
		return string(inner) == want
	}
	decoded, ok := wsUnquote(key)
	return ok && string(decoded) == want
}

// wsUnquote returns the text of the raw string token tok as encoding/json decodes
// it.
func wsUnquote(tok []byte) ([]byte, bool) {
	inner := tok[1 : len(tok)-1]
	if wsPlainString(inner) {
		return inner, true
	}
	var s string
	if err := json.Unmarshal(tok, &s); err != nil {
		return nil, false
	}
	return []byte(s), true
}

// wsPlainString reports whether the inside of a valid string token decodes to
// itself: no escapes and valid UTF-8.
func wsPlainString(inner []byte) bool {
	return bytes.IndexByte(inner, '\\') < 0 && utf8.Valid(inner)
}
