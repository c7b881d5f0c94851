package mapping

import (
	"bytes"
	"fmt"
	"strings"
)

// MaxTemplateBytes is the longest mock body template ParseTemplate accepts.
const MaxTemplateBytes = 64 << 10

// TemplateSource gives the values a mock body template reads. Each method reports whether there is
// a value; the template writes nothing for one that has none.
type TemplateSource interface {
	// Context returns $context.<name>, where name may have dots, as in "identity.sourceIp".
	Context(name string) (string, bool)
	// StageVariable returns $stageVariables.<name>.
	StageVariable(name string) (string, bool)
	// Param returns $input.params('<name>'): the path parameter called name, else the query-string
	// parameter, else the header, as API Gateway looks them up.
	Param(name string) (string, bool)
	// Body returns the request body as received.
	Body() []byte
}

// Template is a parsed mock body template; see the package documentation for what it may hold. It
// is immutable and safe for concurrent use.
type Template struct {
	parts    []tplPart
	readJSON bool // whether a part looks into the body as JSON
}

type tplKind uint8

const (
	tplText tplKind = iota
	tplContext
	tplStageVariable
	tplBody
	tplParam
	tplJSON
	tplPath
)

// tplPart is literal text, or a reference with its name (or body path).
type tplPart struct {
	kind tplKind
	text string
}

// directives are the Velocity directives that ParseTemplate refuses at the start of a line: the
// common ones, and the rarer ones that would also make API Gateway's output differ from ours.
var directives = []string{
	"if", "elseif", "else", "end", "foreach", "set",
	"break", "define", "evaluate", "include", "macro", "parse", "stop",
}

// ParseTemplate parses a mock body template of up to [MaxTemplateBytes]. Text that starts with $
// but is not a reference the package documentation lists is kept as it is. Errors give the offset
// (and line and column) of a ${ that is not closed on its line, of a malformed $input.params(...),
// $input.json(...) or $input.path(...), and of a directive (#if, #foreach, #set, #else, #elseif,
// #end, and the rarer #macro, #define, #parse, #include, #evaluate, #break and #stop) at the start
// of a line; they match [ErrInvalid].
func ParseTemplate(s string) (*Template, error) {
	if len(s) > MaxTemplateBytes {
		return nil, invalidf("the template is %d bytes long; the limit is %d", len(s), MaxTemplateBytes)
	}
	if err := checkDirectives(s); err != nil {
		return nil, err
	}
	t := &Template{}
	lit := 0 // start of the literal text not yet added
	for i := 0; i < len(s); {
		j := strings.IndexByte(s[i:], '$')
		if j < 0 {
			break
		}
		dollar := i + j
		start := dollar + 1
		if byteAtString(s, start) == '!' {
			start++
		}
		braced := byteAtString(s, start) == '{'
		if braced {
			start++
		}
		p, end, ok, err := parseTemplateRef(s, start, dollar)
		if err != nil {
			return nil, err
		}
		switch {
		case ok && braced && byteAtString(s, end) != '}':
			return nil, invalidf("%s at %s is not closed: } must follow %s", s[dollar:start], position(s, dollar), clip(s[start:end]))
		case ok:
			if braced {
				end++
			}
			if dollar > lit {
				t.parts = append(t.parts, tplPart{kind: tplText, text: s[lit:dollar]})
			}
			t.parts = append(t.parts, p)
			t.readJSON = t.readJSON || p.kind == tplJSON || p.kind == tplPath
			lit = end
			i = end
		case braced:
			// Not a reference this package knows: the whole ${...} stays as text.
			brace := closingBrace(s, start)
			if brace < 0 {
				return nil, invalidf("%s at %s is not closed with } on its line", s[dollar:start], position(s, dollar))
			}
			i = brace + 1
		default:
			// Not a reference this package knows: the $ and the names after it stay as text.
			i = max(end, dollar+1)
		}
	}
	if lit < len(s) {
		t.parts = append(t.parts, tplPart{kind: tplText, text: s[lit:]})
	}
	return t, nil
}

// closingBrace returns the offset of the first } at or after s[i] on the same line, or -1.
func closingBrace(s string, i int) int {
	for ; i < len(s) && s[i] != '\n'; i++ {
		if s[i] == '}' {
			return i
		}
	}
	return -1
}

// parseTemplateRef reads the names of a reference from s[start:] ("context.requestId",
// "input.params('id')"), for the $ at s[dollar]. ok reports a reference the package supports; end
// is where the names (and the call) end in either case. err is for a malformed $input call.
func parseTemplateRef(s string, start, dollar int) (p tplPart, end int, ok bool, err error) {
	end = start
	var names [3]string // the first names, enough to tell what the reference is
	n := 0
	for {
		e := identEnd(s, end)
		if e == end {
			break
		}
		if n < len(names) {
			names[n] = s[end:e]
		}
		n++
		end = e
		if byteAtString(s, end) != '.' || identEnd(s, end+1) == end+1 {
			break
		}
		end++
	}
	call := byteAtString(s, end) == '('
	switch {
	case n >= 2 && names[0] == "context" && !call:
		return tplPart{kind: tplContext, text: s[start+len("context.") : end]}, end, true, nil
	case n == 2 && names[0] == "stageVariables" && !call:
		return tplPart{kind: tplStageVariable, text: names[1]}, end, true, nil
	case n == 2 && names[0] == "input" && names[1] == "body" && !call:
		return tplPart{kind: tplBody}, end, true, nil
	case n == 2 && names[0] == "input" && call:
		var kind tplKind
		switch names[1] {
		case "params":
			kind = tplParam
		case "json":
			kind = tplJSON
		case "path":
			kind = tplPath
		default:
			return tplPart{}, end, false, nil
		}
		arg, callEnd, good := parseCallArg(s, end)
		if !good {
			example := "'name'"
			if kind != tplParam {
				example = "'$.a.b'"
			}
			return tplPart{}, end, false, invalidf("$input.%s( at %s is not a call this package understands: write $input.%s(%s), with the argument in quotes", names[1], position(s, dollar), names[1], example)
		}
		if kind == tplParam {
			return tplPart{kind: kind, text: arg}, callEnd, true, nil
		}
		path, good := bodyPathOf(arg)
		if !good {
			return tplPart{}, end, false, invalidf("$input.%s at %s: JSONPath %q is not supported: write $ for the whole body, or $ followed by .name and [index] steps, as in '$.items[0].id'", names[1], position(s, dollar), clip(arg))
		}
		return tplPart{kind: kind, text: path}, callEnd, true, nil
	}
	return tplPart{}, end, false, nil
}

// parseCallArg reads "('arg')" (or with double quotes, and spaces around the argument) at s[i],
// which is "(". The argument may not span lines.
func parseCallArg(s string, i int) (arg string, end int, ok bool) {
	i = skipBlanks(s, i+1)
	quote := byteAtString(s, i)
	if quote != '\'' && quote != '"' {
		return "", 0, false
	}
	j := i + 1
	for j < len(s) && s[j] != quote && s[j] != '\n' {
		j++
	}
	if byteAtString(s, j) != quote {
		return "", 0, false
	}
	arg = s[i+1 : j]
	j = skipBlanks(s, j+1)
	if byteAtString(s, j) != ')' {
		return "", 0, false
	}
	return arg, j + 1, true
}

// bodyPathOf turns a JSONPath such as "$.items[0].id" into a body path, "items[0].id".
func bodyPathOf(jsonPath string) (string, bool) {
	rest, ok := strings.CutPrefix(jsonPath, "$")
	if !ok {
		return "", false
	}
	switch {
	case rest == "":
	case rest[0] == '.':
		rest = rest[1:]
	case rest[0] == '[':
	default:
		return "", false
	}
	if rest == "" && len(jsonPath) > 1 || strings.Contains(rest, "*") || !validBodyPath(rest) {
		return "", false
	}
	return rest, true
}

// identEnd returns the end of the Velocity identifier (a letter or _, then letters, digits and _)
// at s[i], or i when there is none.
func identEnd(s string, i int) int {
	if i >= len(s) || !(isLetter(s[i]) || s[i] == '_') {
		return i
	}
	i++
	for i < len(s) && (isLetter(s[i]) || s[i] == '_' || '0' <= s[i] && s[i] <= '9') {
		i++
	}
	return i
}

func isLetter(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }

func skipBlanks(s string, i int) int {
	for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
		i++
	}
	return i
}

func byteAtString(s string, i int) byte {
	if i < 0 || i >= len(s) {
		return 0
	}
	return s[i]
}

// checkDirectives refuses a line that starts, after spaces and tabs, with a Velocity directive.
func checkDirectives(s string) error {
	for line := 0; line < len(s); {
		i := skipBlanks(s, line)
		if byteAtString(s, i) == '#' {
			word := i + 1
			if byteAtString(s, word) == '{' { // #{if}, the braced spelling
				word++
			}
			e := word
			for e < len(s) && isLetter(s[e]) {
				e++
			}
			next := byteAtString(s, e)
			for _, d := range directives {
				if s[word:e] == d && !(next == '_' || '0' <= next && next <= '9') {
					return invalidf("#%s at %s: mapping-template directives (#if, #foreach, #set) are not supported in mock bodies", d, position(s, i))
				}
			}
		}
		nl := strings.IndexByte(s[line:], '\n')
		if nl < 0 {
			break
		}
		line += nl + 1
	}
	return nil
}

// position describes offset i of s for an error message.
func position(s string, i int) string {
	line := 1 + strings.Count(s[:i], "\n")
	col := i - (strings.LastIndexByte(s[:i], '\n') + 1) + 1
	return fmt.Sprintf("offset %d (line %d, column %d)", i, line, col)
}

// MaxOutputBytes is the most a template's Execute writes: the largest payload the gateway sends,
// so that a template that repeats $input.body cannot turn a large request into a huge allocation.
const MaxOutputBytes = 10 << 20

// Execute writes the template's text to w, with the values from src in place of its references. A
// reference with no value writes nothing, except $input.json, which writes null. A nil src has no
// values and an empty body. Execute stops after writing [MaxOutputBytes].
func (t *Template) Execute(w *bytes.Buffer, src TemplateSource) {
	if t == nil || w == nil {
		return
	}
	out := limitedWriter{w: w, left: MaxOutputBytes}
	var doc []byte
	var isJSON bool
	if t.readJSON && src != nil {
		doc, isJSON = cutJSON(src.Body())
	}
	for _, p := range t.parts {
		if out.left == 0 {
			return
		}
		var v string
		var ok bool
		switch p.kind {
		case tplText:
			out.writeString(p.text)
			continue
		case tplJSON:
			var raw []byte
			if isJSON {
				raw, ok = valueAt(doc, p.text)
			}
			out.writeString(jsonOf(raw, ok))
			continue
		case tplPath:
			if isJSON {
				v, ok = textOf(valueAt(doc, p.text))
			}
		case tplBody:
			if src != nil {
				out.write(src.Body())
			}
			continue
		case tplContext:
			if src != nil {
				v, ok = src.Context(p.text)
			}
		case tplStageVariable:
			if src != nil {
				v, ok = src.StageVariable(p.text)
			}
		case tplParam:
			if src != nil {
				v, ok = src.Param(p.text)
			}
		}
		if ok {
			out.writeString(v)
		}
	}
}

// limitedWriter writes to w until left bytes have been written, and drops the rest.
type limitedWriter struct {
	w    *bytes.Buffer
	left int
}

func (l *limitedWriter) writeString(s string) {
	if len(s) > l.left {
		s = s[:l.left]
	}
	l.w.WriteString(s)
	l.left -= len(s)
}

func (l *limitedWriter) write(b []byte) {
	if len(b) > l.left {
		b = b[:l.left]
	}
	l.w.Write(b)
	l.left -= len(b)
}
