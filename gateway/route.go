package gateway

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// ErrInvalidRouteKey is wrapped by every error NewRouteTable returns.
var ErrInvalidRouteKey = errors.New("invalid route key")

// routeKeyDefault is the catch-all route key of an HTTP API.
const routeKeyDefault = "$default"

// routeMethodAny and the other routeMethod* values index a routeMethodSet.
const (
	routeMethodAny = iota
	routeMethodGet
	routeMethodPost
	routeMethodPut
	routeMethodPatch
	routeMethodDelete
	routeMethodHead
	routeMethodOptions
	routeMethodCount
)

// routeMethodIndex returns the routeMethod* index of an HTTP method as written in a
// route key (upper case), or -1 for a method a route key cannot name.
func routeMethodIndex(method string) int {
	switch method {
	case "ANY":
		return routeMethodAny
	case "GET":
		return routeMethodGet
	case "POST":
		return routeMethodPost
	case "PUT":
		return routeMethodPut
	case "PATCH":
		return routeMethodPatch
	case "DELETE":
		return routeMethodDelete
	case "HEAD":
		return routeMethodHead
	case "OPTIONS":
		return routeMethodOptions
	}
	return -1
}

// routeMethodSet maps a routeMethod* index to a route index, or -1 when unset.
type routeMethodSet [routeMethodCount]int32

func newRouteMethodSet() routeMethodSet {
	var s routeMethodSet
	for i := range s {
		s[i] = -1
	}
	return s
}

// lookup returns the route for the request method index mi (-1 for a method no
// route key can name), falling back to ANY; -1 when neither is set.
func (s *routeMethodSet) lookup(mi int) int {
	if mi > routeMethodAny && s[mi] >= 0 {
		return int(s[mi])
	}
	return int(s[routeMethodAny])
}

// routeSegmentKind tells how one segment of a route path matches.
type routeSegmentKind uint8

const (
	routeSegmentLiteral routeSegmentKind = iota // exact text
	routeSegmentParam                           // {name}: one non-empty segment
	routeSegmentGreedy                          // {name+}: one or more segments, last only
)

// routeSegment is one "/"-separated part of a route key's path.
type routeSegment struct {
	kind routeSegmentKind
	text string // literal text, or the parameter name without braces and "+"
}

// parsedRoute is a validated "METHOD /path" route key.
type parsedRoute struct {
	method   int
	segments []routeSegment
	nparams  int
}

// routeNode is a node of the segment trie. The path from the root to a node is a
// sequence of literal and parameter segments; routes whose path ends at the node sit
// in end, routes whose greedy segment follows the node sit in greedy.
type routeNode struct {
	literals map[string]*routeNode
	param    *routeNode
	end      routeMethodSet
	greedy   routeMethodSet
}

func newRouteNode() *routeNode {
	return &routeNode{end: newRouteMethodSet(), greedy: newRouteMethodSet()}
}

// RouteTable is the immutable set of routes of one API stage. It is safe for
// concurrent use; to change routes, build a new table and swap it in.
//
// # Matching
//
// Match follows API Gateway HTTP API precedence:
//
//  1. Routes without a greedy segment that match the whole path, comparing segments
//     left to right: a literal segment beats {var}. "GET /pets/dog/1" beats
//     "GET /pets/dog/{id}", which beats "GET /pets/{kind}/1".
//  2. Routes ending in a greedy {name+} segment, most specific first, comparing
//     segments left to right with literal > {var} > greedy: "GET /pets/{proxy+}"
//     beats "ANY /{proxy+}" for /pets/cat/1.
//  3. The "$default" route.
//
// Only routes for the request method or ANY take part; between two routes with the
// same path pattern, the one naming the method beats ANY. So ANY catches exactly the
// methods not defined for its pattern, and a request whose method a more specific
// pattern does not define falls through to less specific patterns ("POST /test/5"
// with "GET /test/{id}" and "ANY /{proxy+}" goes to "ANY /{proxy+}").
//
// # Notes
//
//   - Matching walks a segment trie; it does not allocate unless the match has
//     path parameters or a segment has to be percent-decoded.
//   - One trailing "/" on the request path is ignored: /hello/ matches "GET /hello".
//   - Paths are case-sensitive. A literal segment is compared with the raw request
//     segment, or with its percent-decoded form when it contains "%".
//   - {var} matches one non-empty segment and never spans "/"; {proxy+} needs at
//     least one character after its "/", so "ANY /{proxy+}" does not match "/".
//     Empty segments ("//") match neither literals nor {var}.
//   - HEAD requests match only HEAD and ANY routes; there is no fallback to GET
//     (API Gateway does not document one).
//   - A request method that no route key can name (TRACE, PROPFIND, lower-case
//     "get") matches only ANY routes.
//   - A path that does not start with "/" matches only "$default".
type RouteTable struct {
	keys         []string
	routes       []parsedRoute // parallel to keys; zero value for "$default"
	root         *routeNode
	defaultIndex int
}

// NewRouteTable validates route keys and builds a table. keys[i] is "$default" or
// "METHOD /path"; Match returns indexes into keys.
//
// # Errors
//
// Every error wraps ErrInvalidRouteKey and quotes the offending key. A key is
// refused when:
//
//   - METHOD is not one of ANY GET POST PUT PATCH DELETE HEAD OPTIONS (upper case),
//     or the key is not exactly "METHOD /path" with one space;
//   - the path does not start with "/", ends with "/" (other than "/" itself), or has
//     an empty segment ("//");
//   - a segment is neither a literal nor a whole {name} / {name+}; a name is one or
//     more of [A-Za-z0-9_.-]; literals must not contain "{", "}", "%", "?", "#",
//     spaces or control characters;
//   - a greedy {name+} segment is not the last one, or a name repeats in one key;
//   - the key repeats an earlier key, or differs from an earlier key with the same
//     method only in parameter names ("GET /a/{x}" and "GET /a/{y}").
func NewRouteTable(keys []string) (*RouteTable, error) {
	t := &RouteTable{
		keys:         append([]string(nil), keys...),
		routes:       make([]parsedRoute, len(keys)),
		root:         newRouteNode(),
		defaultIndex: -1,
	}
	for i, key := range t.keys {
		if key == routeKeyDefault {
			if t.defaultIndex >= 0 {
				return nil, fmt.Errorf("%w %q: duplicate route key", ErrInvalidRouteKey, key)
			}
			t.defaultIndex = i
			continue
		}
		r, err := parseRouteKey(key)
		if err != nil {
			return nil, err
		}
		t.routes[i] = r
		if err := t.insert(i, r); err != nil {
			return nil, err
		}
	}
	return t, nil
}

// parseRouteKey validates a "METHOD /path" route key.
func parseRouteKey(key string) (parsedRoute, error) {
	bad := func(format string, args ...any) (parsedRoute, error) {
		return parsedRoute{}, fmt.Errorf("%w %q: %s", ErrInvalidRouteKey, key, fmt.Sprintf(format, args...))
	}
	method, path, found := strings.Cut(key, " ")
	if !found {
		return bad(`want "$default" or "METHOD /path"`)
	}
	r := parsedRoute{method: routeMethodIndex(method)}
	if r.method < 0 {
		return bad("method %q is not one of ANY, GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS", method)
	}
	if !strings.HasPrefix(path, "/") {
		return bad(`path must start with "/"`)
	}
	if path == "/" {
		return r, nil
	}
	if strings.HasSuffix(path, "/") {
		return bad(`path must not end with "/"`)
	}
	parts := strings.Split(path[1:], "/")
	r.segments = make([]routeSegment, 0, len(parts))
	for i, part := range parts {
		if part == "" {
			return bad("empty path segment")
		}
		if part[0] != '{' {
			if c, ok := invalidRouteLiteralByte(part); ok {
				return bad("segment %q: character %q not allowed in a literal segment", part, c)
			}
			r.segments = append(r.segments, routeSegment{kind: routeSegmentLiteral, text: part})
			continue
		}
		if part[len(part)-1] != '}' {
			return bad("segment %q: a parameter must be a whole segment {name} or {name+}", part)
		}
		name := part[1 : len(part)-1]
		kind := routeSegmentParam
		if strings.HasSuffix(name, "+") {
			kind = routeSegmentGreedy
			name = name[:len(name)-1]
			if i != len(parts)-1 {
				return bad("segment %q: a greedy parameter must be the last segment", part)
			}
		}
		if !validRouteParamName(name) {
			return bad("segment %q: parameter name must be one or more of A-Z a-z 0-9 _ . -", part)
		}
		for _, s := range r.segments {
			if s.kind != routeSegmentLiteral && s.text == name {
				return bad("parameter name %q used twice", name)
			}
		}
		r.segments = append(r.segments, routeSegment{kind: kind, text: name})
		r.nparams++
	}
	return r, nil
}

// invalidRouteLiteralByte returns the first byte that may not appear in a literal
// route segment.
func invalidRouteLiteralByte(s string) (byte, bool) {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c <= ' ' || c == 0x7f, c == '{', c == '}', c == '%', c == '?', c == '#':
			return c, true
		}
	}
	return 0, false
}

// validRouteParamName reports whether name is one or more of [A-Za-z0-9_.-].
func validRouteParamName(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '_', c == '.', c == '-':
		default:
			return false
		}
	}
	return true
}

// insert adds route i to the trie, refusing a second route with the same method and
// path pattern.
func (t *RouteTable) insert(i int, r parsedRoute) error {
	n := t.root
	slot := &n.end
	for _, s := range r.segments {
		switch s.kind {
		case routeSegmentLiteral:
			child := n.literals[s.text]
			if child == nil {
				if n.literals == nil {
					n.literals = make(map[string]*routeNode)
				}
				child = newRouteNode()
				n.literals[s.text] = child
			}
			n = child
			slot = &n.end
		case routeSegmentParam:
			if n.param == nil {
				n.param = newRouteNode()
			}
			n = n.param
			slot = &n.end
		case routeSegmentGreedy:
			slot = &n.greedy
		}
	}
	if prev := slot[r.method]; prev >= 0 {
		if t.keys[prev] == t.keys[i] {
			return fmt.Errorf("%w %q: duplicate route key", ErrInvalidRouteKey, t.keys[i])
		}
		return fmt.Errorf("%w %q: conflicts with %q (they differ only in parameter names)",
			ErrInvalidRouteKey, t.keys[i], t.keys[prev])
	}
	slot[r.method] = int32(i)
	return nil
}

// Len returns the number of route keys in the table.
func (t *RouteTable) Len() int { return len(t.keys) }

// Key returns the route key at index i, as passed to NewRouteTable.
func (t *RouteTable) Key(i int) string { return t.keys[i] }

// Match finds the route for method and path. path is the raw request path after the
// stage prefix was removed: it starts with "/" and is not URL-decoded.
//
// It returns the index into the keys given to NewRouteTable and the path parameters:
// values are URL-decoded (an invalid escape leaves the value raw), a greedy {proxy+}
// is stored under "proxy" and holds the rest of the path without the trailing "/",
// and params is nil for a route without parameters. ok is false when no route, not
// even "$default", matches. See RouteTable for the precedence rules.
func (t *RouteTable) Match(method, path string) (index int, params map[string]string, ok bool) {
	if !strings.HasPrefix(path, "/") {
		return t.defaultIndex, nil, t.defaultIndex >= 0
	}
	p := path
	if len(p) > 1 && p[len(p)-1] == '/' {
		p = p[:len(p)-1]
	}
	start := 1
	if p == "/" {
		start = 2 // no segments
	}
	greedy := -1
	index = t.walk(t.root, p, start, routeMethodIndex(method), &greedy)
	if index < 0 {
		index = greedy
	}
	if index < 0 {
		return t.defaultIndex, nil, t.defaultIndex >= 0
	}
	return index, t.routes[index].params(p), true
}

// walk searches the subtree of n for the segments of p starting at byte start
// (start > len(p) means no segments are left). It returns the first route without a
// greedy segment that matches, visiting literal children before the parameter child,
// or -1. Along the way it records in *greedy the first greedy route that matches,
// checking a node's greedy routes after its children, which yields the most
// specific one.
func (t *RouteTable) walk(n *routeNode, p string, start, mi int, greedy *int) int {
	if start > len(p) {
		return n.end.lookup(mi)
	}
	end := strings.IndexByte(p[start:], '/')
	if end < 0 {
		end = len(p)
	} else {
		end += start
	}
	seg := p[start:end]
	if n.literals != nil && seg != "" {
		lit := seg
		if strings.IndexByte(lit, '%') >= 0 {
			if d, err := url.PathUnescape(lit); err == nil {
				lit = d
			}
		}
		if child := n.literals[lit]; child != nil {
			if i := t.walk(child, p, end+1, mi, greedy); i >= 0 {
				return i
			}
		}
	}
	if n.param != nil && seg != "" {
		if i := t.walk(n.param, p, end+1, mi, greedy); i >= 0 {
			return i
		}
	}
	// start < len(p): at least one byte is left for the greedy parameter.
	if *greedy < 0 && start < len(p) {
		*greedy = n.greedy.lookup(mi)
	}
	return -1
}

// params extracts r's path parameters from p, the request path without its trailing
// "/"; p is known to match r.
func (r *parsedRoute) params(p string) map[string]string {
	if r.nparams == 0 {
		return nil
	}
	m := make(map[string]string, r.nparams)
	start := 1
	for _, s := range r.segments {
		if s.kind == routeSegmentGreedy {
			m[s.text] = decodeRouteParam(p[start:])
			break
		}
		end := strings.IndexByte(p[start:], '/')
		if end < 0 {
			end = len(p)
		} else {
			end += start
		}
		if s.kind == routeSegmentParam {
			m[s.text] = decodeRouteParam(p[start:end])
		}
		start = end + 1
	}
	return m
}

// decodeRouteParam percent-decodes a path parameter ("+" stays "+"), returning s
// unchanged when it holds an invalid escape.
func decodeRouteParam(s string) string {
	if strings.IndexByte(s, '%') < 0 {
		return s
	}
	d, err := url.PathUnescape(s)
	if err != nil {
		return s
	}
	return d
}
