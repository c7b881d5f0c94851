package mapping

import (
	"strings"
	"unicode/utf8"
)

// RefKind is what a reference in a value reads.
type RefKind uint8

const (
	// RequestHeader is $request.header.<name>; Name is lower case. A header sent more than once
	// reads as its values joined by commas.
	RequestHeader RefKind = iota + 1
	// RequestQuery is $request.querystring.<name>. A parameter given more than once reads as its
	// values joined by commas.
	RequestQuery
	// RequestBody is $request.body.<path>; Name is the path, for [BodyValue]. A body that is an
	// array is indexed as $request.body[0].name, with Name "[0].name".
	RequestBody
	// RequestPath is $request.path, the whole request path; Name is "".
	RequestPath
	// RequestPathParam is $request.path.<name>, a parameter of the route's path.
	RequestPathParam
	// Context is $context.<name>; Name may have dots, as in "authorizer.claims.sub".
	Context
	// StageVariable is $stageVariables.<name>.
	StageVariable
	// ResponseHeader is $response.header.<name>, from the backend's response; Name is lower case.
	ResponseHeader
	// ResponseBody is $response.body.<path>, from the backend's response; Name is the path, for
	// [BodyValue], as for RequestBody.
	ResponseBody
)

// Ref is one reference in a value, such as $request.header.x-id.
type Ref struct {
	Kind RefKind
	Name string
}

// String returns the reference as written in a value, with its leading $.
func (r Ref) String() string {
	switch r.Kind {
	case RequestHeader:
		return "$request.header." + r.Name
	case RequestQuery:
		return "$request.querystring." + r.Name
	case RequestBody:
		return "$request.body" + bodySuffix(r.Name)
	case RequestPath:
		return "$request.path"
	case RequestPathParam:
		return "$request.path." + r.Name
	case Context:
		return "$context." + r.Name
	case StageVariable:
		return "$stageVariables." + r.Name
	case ResponseHeader:
		return "$response.header." + r.Name
	case ResponseBody:
		return "$response.body" + bodySuffix(r.Name)
	}
	return "$invalid"
}

func bodySuffix(path string) string {
	if strings.HasPrefix(path, "[") {
		return path
	}
	return "." + path
}

// Source gives the values of references. The gateway implements it over the client's request
// (for request mappings) or the backend's response (for response mappings), as received, never over
// the message being rewritten.
type Source interface {
	// Lookup returns the value ref reads, and whether there is one.
	Lookup(ref Ref) (string, bool)
}

// MaxValueLength is the longest value, in characters, that ParseRequestValue and ParseResponseValue
// accept.
const MaxValueLength = 512

// Expr is a parsed mapping value: literal text, one reference, or text mixed with ${...}
// references. The zero Expr is the empty literal. An Expr is immutable and safe for concurrent use.
type Expr struct {
	src   string
	parts []part
}

// part is literal text (ref.Kind == 0) or a reference.
type part struct {
	lit string
	ref Ref
}

// ParseRequestValue parses a value of requestParameters. It is one of:
//
//   - literal text, such as "v2";
//   - one reference, as the whole value: $request.header.<name>, $request.querystring.<name>,
//     $request.body.<path> (such as $request.body.items[0].name, or $request.body[0].id for a
//     body that is an array), $request.path, $request.path.<name>, $context.<name> (such as
//     $context.authorizer.claims.sub) or $stageVariables.<name>;
//   - text with references in ${...}, written without their $: "Bearer ${request.header.token}",
//     "${stageVariables.prefix}-${context.requestId}".
//
// Names follow what they name: a header name is an HTTP token (and is kept in lower case), a
// stage variable's name is letters, digits and _, and a context variable's name is parts joined by
// dots. A $ anywhere else is an error (a value cannot hold a literal $), as is a reference to
// $response. Values are at most [MaxValueLength] characters and hold no control characters other
// than tab.
func ParseRequestValue(s string) (Expr, error) {
	return parseValue(s, true)
}

// ParseResponseValue parses a value of responseParameters: as [ParseRequestValue], but the
// references are $response.header.<name>, $response.body.<path>, $context.<name> and
// $stageVariables.<name>.
func ParseResponseValue(s string) (Expr, error) {
	return parseValue(s, false)
}

// String returns the value as it was written.
func (e Expr) String() string { return e.src }

// Refs returns the references e reads, in order, including repeats.
func (e Expr) Refs() []Ref {
	var refs []Ref
	for _, p := range e.parts {
		if p.ref.Kind != 0 {
			refs = append(refs, p.ref)
		}
	}
	return refs
}

// Eval returns the value of e, looking each reference up in src. A reference with no value reads
// as "". A nil src has no values.
func (e Expr) Eval(src Source) string {
	v, _ := e.eval(src)
	return v
}

// eval is Eval, and also reports (with missing) that e is one reference that has no value.
func (e Expr) eval(src Source) (v string, missing bool) {
	switch len(e.parts) {
	case 0:
		return "", false
	case 1:
		p := e.parts[0]
		if p.ref.Kind == 0 {
			return p.lit, false
		}
		v, ok := lookup(src, p.ref)
		return v, !ok
	}
	var b strings.Builder
	b.Grow(len(e.src))
	for _, p := range e.parts {
		if p.ref.Kind == 0 {
			b.WriteString(p.lit)
		} else {
			v, _ := lookup(src, p.ref)
			b.WriteString(v)
		}
	}
	return b.String(), false
}

func lookup(src Source, ref Ref) (string, bool) {
	if src == nil {
		return "", false
	}
	return src.Lookup(ref)
}

// needsBody reports whether e reads a request or response body.
func (e Expr) needsBody() bool {
	for _, p := range e.parts {
		if p.ref.Kind == RequestBody || p.ref.Kind == ResponseBody {
			return true
		}
	}
	return false
}

const (
	requestRefForms  = "$request.header.<name>, $request.querystring.<name>, $request.body.<path>, $request.path, $request.path.<name>, $context.<name> or $stageVariables.<name>"
	responseRefForms = "$response.header.<name>, $response.body.<path>, $context.<name> or $stageVariables.<name>"
)

func parseValue(s string, request bool) (Expr, error) {
	// Counting characters only when the bytes could be few enough keeps a huge value cheap.
	if len(s) > MaxValueLength && (len(s) > utf8.UTFMax*MaxValueLength || utf8.RuneCountInString(s) > MaxValueLength) {
		return Expr{}, invalidf("the value is longer than %d characters", MaxValueLength)
	}
	if !utf8.ValidString(s) {
		return Expr{}, invalidf("the value is not valid UTF-8")
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < ' ' && c != '\t') || c == 0x7f {
			return Expr{}, invalidf("the value has control character %q at offset %d; a value is one line of text", rune(c), i)
		}
	}
	if s == "" {
		return Expr{}, nil
	}
	if s[0] == '$' && !strings.HasPrefix(s, "${") {
		ref, err := parseRef(s[1:], request)
		if err != nil {
			return Expr{}, invalidf("%v (a value that starts with $ is one reference; to mix text and references write ${...}, as in \"Bearer ${request.header.token}\")", err)
		}
		return Expr{src: s, parts: []part{{ref: ref}}}, nil
	}
	e := Expr{src: s}
	lit := 0 // start of the literal text not yet added
	for i := 0; i < len(s); i++ {
		if s[i] != '$' {
			continue
		}
		if i+1 >= len(s) || s[i+1] != '{' {
			return Expr{}, invalidf("stray $ at offset %d: references inside text are written ${...}, as in \"Bearer ${request.header.token}\", and a value cannot hold a literal $", i)
		}
		end := strings.IndexByte(s[i+2:], '}')
		if end < 0 {
			return Expr{}, invalidf("${ at offset %d is not closed with }", i)
		}
		inner := s[i+2 : i+2+end]
		if strings.HasPrefix(inner, "$") {
			return Expr{}, invalidf("${%s} at offset %d: inside ${...} write the reference without its $, as in ${%s}", clip(inner), i, clip(inner[1:]))
		}
		ref, err := parseRef(inner, request)
		if err != nil {
			return Expr{}, invalidf("${%s} at offset %d: %v", clip(inner), i, err)
		}
		if i > lit {
			e.parts = append(e.parts, part{lit: s[lit:i]})
		}
		e.parts = append(e.parts, part{ref: ref})
		i += 2 + end
		lit = i + 1
	}
	if lit < len(s) {
		e.parts = append(e.parts, part{lit: s[lit:]})
	}
	return e, nil
}

// parseRef parses a reference without its $ (or ${ and }), such as "request.header.x-id".
func parseRef(s string, request bool) (Ref, error) {
	forms := responseRefForms
	if request {
		forms = requestRefForms
	}
	root, rest, _ := strings.Cut(s, ".")
	switch root {
	case "request":
		if !request {
			return Ref{}, invalidf("a response mapping cannot read $%s: it reads %s", clip(s), responseRefForms)
		}
		return parseMessageRef(s, rest, true)
	case "response":
		if request {
			return Ref{}, invalidf("a request mapping cannot read $%s: it reads %s", clip(s), requestRefForms)
		}
		return parseMessageRef(s, rest, false)
	case "context":
		if !validDotted(rest) {
			return Ref{}, invalidf("$%s is not a context variable: write $context.<name>, with dots between the parts of the name, as in $context.authorizer.claims.sub", clip(s))
		}
		return Ref{Kind: Context, Name: rest}, nil
	case "stageVariables":
		if !validStageVariable(rest) {
			return Ref{}, invalidf("$%s is not a stage variable: a stage variable's name is 1 to 64 letters, digits and _", clip(s))
		}
		return Ref{Kind: StageVariable, Name: rest}, nil
	}
	return Ref{}, invalidf("unknown reference $%s: a value reads %s", clip(s), forms)
}

// parseMessageRef parses the part of a $request or $response reference after the dot.
func parseMessageRef(s, rest string, request bool) (Ref, error) {
	kindHeader, kindBody, root := ResponseHeader, ResponseBody, "$response"
	if request {
		kindHeader, kindBody, root = RequestHeader, RequestBody, "$request"
	}
	what, name, dotted := strings.Cut(rest, ".")
	if strings.HasPrefix(rest, "body[") { // an index into a body that is an array: body[0].id
		what, name, dotted = "body", rest[len("body"):], true
	}
	switch {
	case what == "header" && dotted:
		if err := checkHeaderName(name); err != nil {
			return Ref{}, invalidf("$%s: %v", clip(s), err)
		}
		return Ref{Kind: kindHeader, Name: strings.ToLower(name)}, nil
	case what == "body" && dotted:
		if !validBodyPath(name) || name == "" || strings.ContainsAny(name, "$}") || strings.HasPrefix(rest, "body.[") {
			return Ref{}, invalidf("$%s is not a body reference: write %s.body.<path>, with names and [n] indexes, as in %s.body.items[0].name (or %s.body[0].name for a body that is an array)", clip(s), root, root, root)
		}
		return Ref{Kind: kindBody, Name: name}, nil
	case request && what == "querystring" && dotted:
		if err := checkQueryName(name); err != nil {
			return Ref{}, invalidf("$%s: %v", clip(s), err)
		}
		return Ref{Kind: RequestQuery, Name: name}, nil
	case request && what == "path" && !dotted:
		return Ref{Kind: RequestPath}, nil
	case request && what == "path":
		if !validPathParam(name) {
			return Ref{}, invalidf("$%s is not a path parameter: a parameter's name is 1 to %d characters without /, {, }, $ or spaces", clip(s), maxNameLength)
		}
		return Ref{Kind: RequestPathParam, Name: name}, nil
	}
	if request {
		return Ref{}, invalidf("unknown reference $%s: $request has header.<name>, querystring.<name>, body.<path>, path and path.<name>", clip(s))
	}
	return Ref{}, invalidf("unknown reference $%s: $response has header.<name> and body.<path>", clip(s))
}

// validDotted accepts names such as "requestId" or "authorizer.claims.cognito:groups": non-empty
// parts, joined by dots, without spaces, $, {, }, [ or ].
func validDotted(s string) bool {
	if s == "" || len(s) > 256 {
		return false
	}
	prev := byte('.')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '.' && prev == '.':
			return false
		case c <= ' ' || c == 0x7f || strings.IndexByte("${}[]", c) >= 0:
			return false
		}
		prev = c
	}
	return prev != '.'
}

// validStageVariable accepts 1 to 64 letters, digits and _, the names a stage variable may have.
func validStageVariable(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// validPathParam accepts the name of a route's path parameter.
func validPathParam(s string) bool {
	if s == "" || utf8.RuneCountInString(s) > maxNameLength {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c == 0x7f || strings.IndexByte("/{}$", c) >= 0 {
			return false
		}
	}
	return true
}
