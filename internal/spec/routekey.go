package spec

import (
	"fmt"
	"slices"
	"strings"

	"gatehouse.dev/gatehouse/internal/yamlnode"
)

// RouteMethods are the methods an HTTP API's route key may name; ANY matches every method.
var routeMethods = [...]string{"ANY", "GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"}

// RouteMethods returns the methods an HTTP API's route key may name; ANY matches every method.
func RouteMethods() []string { return routeMethods[:] }

// SegmentKind says what one segment of a route key's path is.
type SegmentKind uint8

const (
	// SegmentLiteral matches its text exactly.
	SegmentLiteral SegmentKind = iota
	// SegmentParam ({name}) matches one non-empty segment.
	SegmentParam
	// SegmentGreedy ({name+}) matches the rest of the path; only last.
	SegmentGreedy
)

// Segment is one segment of a route key's path: literal text or a parameter's name.
type Segment struct {
	Kind SegmentKind
	Text string
}

// RouteKey is a parsed HTTP route key "METHOD /path". The $default route key has no RouteKey.
type RouteKey struct {
	Method   string
	Segments []Segment // none for "/"
}

// Pattern returns the key with parameter names erased ("GET /a/{}/{+}"): two routes with the same
// pattern would match the same requests.
func (k RouteKey) Pattern() string {
	var b strings.Builder
	b.WriteString(k.Method + " ")
	if len(k.Segments) == 0 {
		b.WriteByte('/')
	}
	for _, s := range k.Segments {
		b.WriteByte('/')
		switch s.Kind {
		case SegmentLiteral:
			b.WriteString(s.Text)
		case SegmentParam:
			b.WriteString("{}")
		case SegmentGreedy:
			b.WriteString("{+}")
		}
	}
	return b.String()
}

// ParseRouteKey parses an HTTP route key "METHOD /path" as API Gateway reads it: METHOD is one of
// RouteMethods; the path starts with "/", has no empty segment and no trailing "/" (other than "/"
// itself); a segment is a literal (no "{", "}", "%", "?", "#", spaces or control characters) or a
// whole {name} or {name+} (name: one or more of A-Z a-z 0-9 _ . -); a greedy {name+} comes last;
// no name repeats. The error says what is wrong, without repeating the key.
func ParseRouteKey(key string) (RouteKey, error) {
	method, path, found := strings.Cut(key, " ")
	if !found {
		return RouteKey{}, fmt.Errorf(`want "$default" or "METHOD /path"`)
	}
	if !slices.Contains(routeMethods[:], method) {
		return RouteKey{}, fmt.Errorf("method %q is not one of ANY, GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS", method)
	}
	k := RouteKey{Method: method}
	if !strings.HasPrefix(path, "/") {
		return RouteKey{}, fmt.Errorf(`path must start with "/"`)
	}
	if path == "/" {
		return k, nil
	}
	if strings.HasSuffix(path, "/") {
		return RouteKey{}, fmt.Errorf(`path must not end with "/"`)
	}
	parts := strings.Split(path[1:], "/")
	k.Segments = make([]Segment, 0, len(parts))
	for i, part := range parts {
		if part == "" {
			return RouteKey{}, fmt.Errorf("empty path segment")
		}
		if part[0] != '{' {
			if j := strings.IndexFunc(part, func(r rune) bool {
				return r <= ' ' || r == 0x7f || strings.ContainsRune("{}%?#", r)
			}); j >= 0 {
				return RouteKey{}, fmt.Errorf("segment %q: character %q not allowed in a literal segment", part, part[j])
			}
			k.Segments = append(k.Segments, Segment{SegmentLiteral, part})
			continue
		}
		if part[len(part)-1] != '}' {
			return RouteKey{}, fmt.Errorf("segment %q: a parameter must be a whole segment {name} or {name+}", part)
		}
		name := part[1 : len(part)-1]
		kind := SegmentParam
		if strings.HasSuffix(name, "+") {
			kind = SegmentGreedy
			name = name[:len(name)-1]
			if i != len(parts)-1 {
				return RouteKey{}, fmt.Errorf("segment %q: a greedy parameter must be the last segment", part)
			}
		}
		if name == "" || !allIn(name, func(r rune) bool {
			return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '.' || r == '-'
		}) {
			return RouteKey{}, fmt.Errorf("segment %q: parameter name must be one or more of A-Z a-z 0-9 _ . -", part)
		}
		for _, s := range k.Segments {
			if s.Kind != SegmentLiteral && s.Text == name {
				return RouteKey{}, fmt.Errorf("parameter name %q used twice", name)
			}
		}
		k.Segments = append(k.Segments, Segment{kind, name})
	}
	return k, nil
}

// CheckRouteKey checks an HTTP API's route key and returns what is wrong with it, or "".
func CheckRouteKey(key string) string {
	if key == RouteDefault {
		return ""
	}
	const want = `want "$default" or "METHOD /path", e.g. "GET /hello" or "ANY /{proxy+}"`
	method, path, ok := strings.Cut(key, " ")
	switch {
	case !ok || method == "":
		return "not a route key: " + want
	case !allIn(method, func(r rune) bool { return r >= 'A' && r <= 'Z' }):
		return fmt.Sprintf("the method %s must be an upper-case word such as GET or ANY; %s", yamlnode.QuoteShort(method), want)
	case !strings.HasPrefix(path, "/"):
		return "the path must start with /; " + want
	case strings.ContainsFunc(path, func(r rune) bool { return r <= ' ' || r == 0x7f }):
		return "the path must not contain spaces or control characters; " + want
	}
	for _, seg := range strings.Split(path[1:], "/") {
		// Express-style and glob-style parameters are literal text to API Gateway: almost
		// certainly not what was meant.
		if name, ok := strings.CutPrefix(seg, ":"); ok && name != "" {
			return fmt.Sprintf("the segment %s would match only the literal text %q; write a path parameter as {%s}", yamlnode.QuoteShort(seg), seg, strings.TrimSuffix(name, "?"))
		}
		if seg == "*" || seg == "**" {
			return fmt.Sprintf("the segment %s would match only a literal %s; write a greedy path parameter as {proxy+}", yamlnode.QuoteShort(seg), seg)
		}
	}
	if _, err := ParseRouteKey(key); err != nil {
		return err.Error() + "; " + want
	}
	return ""
}
