package mapping

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// Action is what a mapping key does to its parameter.
type Action uint8

const (
	// Append adds a value and keeps those already there.
	Append Action = iota + 1
	// Overwrite replaces every value with one.
	Overwrite
	// Remove deletes the parameter.
	Remove
)

// String returns the action as it is written in a key: "append", "overwrite" or "remove".
func (a Action) String() string {
	switch a {
	case Append:
		return "append"
	case Overwrite:
		return "overwrite"
	case Remove:
		return "remove"
	}
	return "invalid"
}

// Location is the part of a request or response that a mapping key changes.
type Location uint8

const (
	// Header is a header; the key's Name is the header name in lower case.
	Header Location = iota + 1
	// QueryString is a query-string parameter (request keys only); Name is its name as written.
	QueryString
	// Path is the whole path of the backend request (request keys, overwrite only).
	Path
	// StatusCode is the status code sent to the client (response keys, overwrite only).
	StatusCode
)

// String returns the location as it is written in a key.
func (l Location) String() string {
	switch l {
	case Header:
		return "header"
	case QueryString:
		return "querystring"
	case Path:
		return "path"
	case StatusCode:
		return "statuscode"
	}
	return "invalid"
}

// Key is a parsed mapping key such as "append:header.x-tenant".
type Key struct {
	Action   Action
	Location Location
	// Name is the header (lower case) or query-string parameter; "" for Path and StatusCode.
	Name string
}

// String returns the key as it is written in requestParameters or responseParameters.
func (k Key) String() string {
	if k.Name == "" {
		return k.Action.String() + ":" + k.Location.String()
	}
	return k.Action.String() + ":" + k.Location.String() + "." + k.Name
}

// maxNameLength is the longest header or query-string name a key or reference may use.
const maxNameLength = 128

const (
	requestKeyForms  = "append:, overwrite: or remove: followed by header.<name> or querystring.<name>, or overwrite:path"
	responseKeyForms = "append:, overwrite: or remove: followed by header.<name>, or overwrite:statuscode"
)

// ParseRequestKey parses a key of an integration's requestParameters: append:, overwrite: or
// remove: followed by header.<name> or querystring.<name>, or overwrite:path. Actions and locations
// are lower case. Headers that API Gateway keeps to itself are refused: access-control-*, apigw-*,
// x-amz-*, x-amzn-*, x-forwarded-*, authorization, forwarded, origin, via, and the headers that
// describe the connection or the framing, such as host, connection and content-length.
func ParseRequestKey(s string) (Key, error) {
	return parseKey(s, true)
}

// ParseResponseKey parses a key of an integration's responseParameters: append:, overwrite: or
// remove: followed by header.<name>, or overwrite:statuscode. Actions and locations are lower case.
// The same headers as for [ParseRequestKey] are refused.
func ParseResponseKey(s string) (Key, error) {
	return parseKey(s, false)
}

func parseKey(s string, request bool) (Key, error) {
	forms := responseKeyForms
	if request {
		forms = requestKeyForms
	}
	act, loc, ok := strings.Cut(s, ":")
	if !ok {
		return Key{}, invalidf("%q is not a mapping key: a key is %s", clip(s), forms)
	}
	var k Key
	switch act {
	case "append":
		k.Action = Append
	case "overwrite":
		k.Action = Overwrite
	case "remove":
		k.Action = Remove
	default:
		return Key{}, invalidf("unknown action %q: the action is append, overwrite or remove, in lower case", clip(act))
	}
	where, name, dotted := strings.Cut(loc, ".")
	switch where {
	case "header":
		k.Location = Header
	case "querystring":
		if !request {
			return Key{}, invalidf("a response mapping cannot set a query string: a key is %s", forms)
		}
		k.Location = QueryString
	case "path":
		if !request {
			return Key{}, invalidf("a response mapping cannot set the path: a key is %s", forms)
		}
		if dotted {
			return Key{}, invalidf("overwrite:path takes no name (found %q); path parameters cannot be mapped one by one", clip(name))
		}
		if k.Action != Overwrite {
			return Key{}, invalidf("%s:path is not allowed: the path can only be overwritten (overwrite:path)", act)
		}
		k.Location = Path
		return k, nil
	case "statuscode":
		if request {
			return Key{}, invalidf("only a response mapping can set the status code: a request key is %s", forms)
		}
		if dotted {
			return Key{}, invalidf("overwrite:statuscode takes no name (found %q)", clip(name))
		}
		if k.Action != Overwrite {
			return Key{}, invalidf("%s:statuscode is not allowed: the status code can only be overwritten (overwrite:statuscode)", act)
		}
		k.Location = StatusCode
		return k, nil
	default:
		return Key{}, invalidf("unknown location %q: a key is %s", clip(loc), forms)
	}
	if !dotted || name == "" {
		return Key{}, invalidf("%s:%s needs a name: write %s:%s.<name>", act, where, act, where)
	}
	if k.Location == Header {
		if err := checkHeaderName(name); err != nil {
			return Key{}, err
		}
		lower := strings.ToLower(name)
		if reservedHeader(lower) {
			return Key{}, invalidf("header %q cannot be mapped: API Gateway, and so Gatehouse, keeps %s to itself", lower, reservedList)
		}
		k.Name = lower
		return k, nil
	}
	if err := checkQueryName(name); err != nil {
		return Key{}, err
	}
	k.Name = name
	return k, nil
}

// reservedPrefixes and reservedHeaders are the header names that no mapping may set or remove: the
// gateway's own headers, AWS's, those that describe the connection or the message framing, and
// those that carry the client's identity or origin.
var (
	reservedPrefixes = []string{"access-control-", "apigw-", "x-amz-", "x-amzn-", "x-forwarded-"}
	reservedHeaders  = []string{
		"authorization", "connection", "content-length", "expect", "forwarded", "host",
		"keep-alive", "max-forwards", "origin", "proxy-authenticate", "proxy-authorization",
		"proxy-connection", "server", "te", "trailer", "transfer-encoding", "upgrade", "via",
	}
	reservedList = "access-control-*, apigw-*, x-amz-*, x-amzn-*, x-forwarded-*, " + strings.Join(reservedHeaders[:len(reservedHeaders)-1], ", ") + " and via"
)

// reservedHeader reports whether the header named name (in any case) is one that mappings may not
// change: access-control-*, apigw-*, x-amz-*, x-amzn-*, x-forwarded-*, authorization, connection,
// content-length, expect, forwarded, host, keep-alive, max-forwards, origin, proxy-authenticate,
// proxy-authorization, proxy-connection, server, te, trailer, transfer-encoding, upgrade and via.
func reservedHeader(name string) bool {
	for _, p := range reservedPrefixes {
		if len(name) >= len(p) && strings.EqualFold(name[:len(p)], p) {
			return true
		}
	}
	for _, h := range reservedHeaders {
		if strings.EqualFold(name, h) {
			return true
		}
	}
	return false
}

// checkHeaderName accepts 1 to maxNameLength HTTP token characters.
func checkHeaderName(name string) error {
	if name == "" {
		return invalidf("a header name is empty")
	}
	if len(name) > maxNameLength {
		return invalidf("header name %q is longer than %d characters", clip(name), maxNameLength)
	}
	for i := 0; i < len(name); i++ {
		if !isTokenChar(name[i]) {
			return invalidf("header name %q has %q at offset %d: a header name is letters, digits and !#$%%&'*+-.^_`|~", clip(name), rune(name[i]), i)
		}
	}
	return nil
}

// checkQueryName accepts 1 to maxNameLength characters that are neither control characters nor
// &, = or #.
func checkQueryName(name string) error {
	if name == "" {
		return invalidf("a query-string name is empty")
	}
	if len(name) > maxNameLength && (len(name) > utf8.UTFMax*maxNameLength || utf8.RuneCountInString(name) > maxNameLength) {
		return invalidf("query-string name %q is longer than %d characters", clip(name), maxNameLength)
	}
	if !utf8.ValidString(name) {
		return invalidf("query-string name %q is not valid UTF-8", clip(name))
	}
	for i, r := range name {
		if unicode.IsControl(r) || r == '&' || r == '=' || r == '#' {
			return invalidf("query-string name %q has %q at offset %d: a name may not hold control characters, &, = or #", clip(name), r, i)
		}
	}
	return nil
}

// isTokenChar reports whether c may appear in an HTTP token (a header name).
func isTokenChar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

// clip shortens s for an error message, so that a huge input does not make a huge error.
func clip(s string) string {
	const max = 64
	if len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}
