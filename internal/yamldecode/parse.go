package yamldecode

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/lexer"
	"github.com/goccy/go-yaml/parser"
	"github.com/goccy/go-yaml/token"

	"gatehouse.dev/gatehouse/internal/yamlnode"
)

// Format describes a kind of document for [Parse]: what messages call it, and its limits.
//
// The shape limits exist because the YAML parser takes time and memory quadratic in the depth of
// nested flow collections and in the number of keys of one block mapping. A format with
// MaxKeysPerMapping (a large document) is checked on its lines before the lexer runs, roughly
// (brackets count wherever they are but in comment lines); one without, on its tokens, exactly.
type Format struct {
	// Noun names the document in messages: "stack file" gives "the stack file is not UTF-8 text"
	// and "a stack file holds one YAML document".
	Noun string
	// MaxBytes bounds the document's size; SizeText says it for people, e.g. "1 MiB".
	MaxBytes int
	SizeText string
	// MaxFlowDepth bounds the [ and { open at once.
	MaxFlowDepth int
	// MaxKeysPerMapping bounds consecutive lines at one indentation (the keys of one mapping); 0 is
	// no bound.
	MaxKeysPerMapping int
	// MaxBlockDepth bounds the levels of indentation (a list item counts as one); 0 is no bound.
	MaxBlockDepth int
	// Plain refuses the YAML features a flat file does not need: anchors, aliases, tags, merge keys
	// and explicit keys (?).
	Plain bool
}

// Parse checks data's size, encoding and shape against f and parses it into the body of its single
// document; a nil body is an empty document (or one of comments only). A byte order mark at the
// start is skipped, as is a directive (%YAML 1.2) before the document. file names the document in
// errors, which are [*Error]s with a position (1:1 when the problem has no better place).
func Parse(file string, data []byte, f Format) (body ast.Node, err error) {
	if len(data) > f.MaxBytes {
		return nil, &Error{File: file, Line: 1, Column: 1,
			Msg: fmt.Sprintf("the %s is larger than the limit of %d bytes (%s)", f.Noun, f.MaxBytes, f.SizeText)}
	}
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf")) // a byte order mark, as some editors write
	if !utf8.Valid(data) {
		line, col := invalidUTF8At(data)
		return nil, &Error{File: file, Line: line, Column: col, Msg: fmt.Sprintf("the %s is not UTF-8 text", f.Noun)}
	}
	if i := bytes.IndexByte(data, 0); i >= 0 {
		line, col := offsetPosition(data, i)
		return nil, &Error{File: file, Line: line, Column: col, Msg: fmt.Sprintf("the %s contains a NUL byte", f.Noun)}
	}
	if f.MaxKeysPerMapping > 0 {
		if e := checkLines(file, data, f); e != nil {
			return nil, e
		}
	}
	// The YAML parser is third-party code fed with user input: turn a panic in it into an error
	// rather than crashing the command.
	defer func() {
		if r := recover(); r != nil {
			body, err = nil, &Error{File: file, Line: 1, Column: 1, Msg: fmt.Sprintf("invalid YAML (the parser failed: %v)", r)}
		}
	}()
	tokens := lexer.Tokenize(string(data))
	if e := checkTokens(file, tokens, f); e != nil {
		return nil, e
	}
	doc, perr := parser.Parse(tokens, 0)
	if perr != nil {
		e := &Error{File: file, Line: 1, Column: 1, Msg: "invalid YAML: " + perr.Error()}
		var ye yaml.Error
		if errors.As(perr, &ye) {
			e.Msg = "invalid YAML: " + yamlnode.ReadablePositions(ye.GetMessage())
			if tk := ye.GetToken(); tk != nil && tk.Position != nil && tk.Position.Line > 0 {
				e.Line, e.Column = tk.Position.Line, max(tk.Position.Column, 1)
			}
		}
		// One line, whatever the parser quotes from the input.
		e.Msg = strings.NewReplacer("\n", `\n`, "\r", `\r`).Replace(e.Msg)
		return nil, e
	}
	for _, d := range doc.Docs {
		if d == nil || yamlnode.IsNil(d.Body) {
			continue
		}
		if _, ok := d.Body.(*ast.DirectiveNode); ok {
			continue // %YAML 1.2 before the document
		}
		if body != nil {
			line, col := yamlnode.Position(d.Body)
			return nil, &Error{File: file, Line: line, Column: col, Msg: fmt.Sprintf("a %s holds one YAML document; remove this second one", f.Noun)}
		}
		body = d.Body
	}
	return body, nil
}

// checkLines refuses data beyond f's shape limits, counting roughly: brackets anywhere but in
// comment lines, and lines by indentation.
func checkLines(file string, data []byte, f Format) *Error {
	type level struct{ indent, lines int }
	var levels []level
	depth := 0
	for line := 1; len(data) > 0; line++ {
		l := data
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			l, data = data[:i], data[i+1:]
		} else {
			data = nil
		}
		text := bytes.TrimLeft(l, " ")
		if len(bytes.TrimSpace(text)) == 0 || text[0] == '#' {
			continue
		}
		for col, c := range l {
			switch c {
			case '[', '{':
				if depth++; depth > f.MaxFlowDepth {
					return &Error{File: file, Line: line, Column: col + 1,
						Msg: fmt.Sprintf("[ and { nested more than %d deep", f.MaxFlowDepth)}
				}
			case ']', '}':
				depth = max(depth-1, 0)
			}
		}
		indent := len(l) - len(text)
		for len(levels) > 0 && levels[len(levels)-1].indent > indent {
			levels = levels[:len(levels)-1]
		}
		if n := len(levels); n > 0 && levels[n-1].indent == indent {
			if levels[n-1].lines++; levels[n-1].lines > f.MaxKeysPerMapping {
				return &Error{File: file, Line: line, Column: indent + 1,
					Msg: fmt.Sprintf("more than %d keys in one mapping", f.MaxKeysPerMapping)}
			}
		} else {
			levels = append(levels, level{indent: indent, lines: 1})
		}
	}
	return nil
}

// checkTokens refuses, for a Plain format, the YAML features it does not use, and nesting beyond
// f's limits (the flow depth only where checkLines did not count it).
func checkTokens(file string, tokens token.Tokens, f Format) *Error {
	at := func(tk *token.Token, format string, args ...any) *Error {
		line, col := 1, 1
		if tk.Position != nil && tk.Position.Line > 0 {
			line, col = tk.Position.Line, max(tk.Position.Column, 1)
		}
		return &Error{File: file, Line: line, Column: col, Msg: fmt.Sprintf(format, args...)}
	}
	a := "a " + f.Noun
	flow := 0
	var block []int // columns of the open block levels
	lastLine := 0
	for _, tk := range tokens {
		if tk == nil {
			continue
		}
		switch tk.Type {
		case token.CommentType:
			continue
		case token.AnchorType, token.AliasType:
			if f.Plain {
				return at(tk, "YAML anchors (&) and aliases (*) are not supported in %s; write the value out", a)
			}
		case token.TagType:
			if f.Plain {
				return at(tk, "YAML tags (%s) are not supported in %s; quote the value to make it a string", Printable(tk.Value), a)
			}
		case token.MergeKeyType:
			if f.Plain {
				return at(tk, "merge keys (<<) are not supported in %s", a)
			}
		case token.MappingKeyType:
			if f.Plain {
				return at(tk, "explicit keys (?) are not supported in %s", a)
			}
		case token.SequenceStartType, token.MappingStartType:
			if flow++; f.MaxKeysPerMapping == 0 && flow > f.MaxFlowDepth {
				return at(tk, "[ and { nested more than %d deep", f.MaxFlowDepth)
			}
			continue
		case token.SequenceEndType, token.MappingEndType:
			flow = max(flow-1, 0)
			continue
		}
		if f.MaxBlockDepth == 0 || flow > 0 || tk.Position == nil {
			continue
		}
		line, col := tk.Position.Line, tk.Position.Column
		if line == lastLine && tk.Type != token.SequenceEntryType {
			continue
		}
		lastLine = line
		for len(block) > 0 && block[len(block)-1] >= col {
			block = block[:len(block)-1]
		}
		if block = append(block, col); len(block) > f.MaxBlockDepth {
			return at(tk, "nested more than %d levels deep", f.MaxBlockDepth)
		}
	}
	return nil
}

func invalidUTF8At(data []byte) (line, col int) {
	for i := 0; i < len(data); {
		r, size := utf8.DecodeRune(data[i:])
		if r == utf8.RuneError && size <= 1 {
			return offsetPosition(data, i)
		}
		i += size
	}
	return 1, 1
}

func offsetPosition(data []byte, off int) (line, col int) {
	before := data[:off]
	line = 1 + bytes.Count(before, []byte("\n"))
	col = 1 + utf8.RuneCount(before[bytes.LastIndexByte(before, '\n')+1:])
	return line, col
}
