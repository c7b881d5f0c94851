// Package stackfile parses and validates Gatehouse stack files (gatehouse.yaml): the functions of a
// stack, their sources and limits, the HTTP and WebSocket APIs, stages and routes that reach them,
// the gateway controls on those (CORS, authorizers, authorization, API keys with usage plans and
// throttles), and the access keys that sign calls to the stack's management endpoints.
//
// It decodes the file into the one model of a stack, [spec.Stack], and validates it with
// [spec.Stack.ValidateInOrder], turning each problem's key path into a line and column of the
// file. The format is documented for users in docs/stack-file.md.
//
// # Errors
//
// [Parse] and [Load] return the first problem they find as an [*Error] whose message starts with
// "FILE:LINE:COLUMN: " and names the key path, for example
//
//	gatehouse.yaml:7:14: functions.hello.timeout: "3x" is not a duration (want e.g. 3s or 500ms)
//
// Problems are found in this order: YAML syntax; the schema version; structure (unknown keys, wrong
// types, missing required keys, sources and JWKS files that do not exist, environment variables
// named by secretFromEnv that are not set), in file order; then values (ranges, names, references
// from routes to functions and authorizers): the stack name, iam, usage plans, functions, then
// APIs. Fix the reported problem and run again to see the next one.
//
// No message quotes an access key's secret.
package stackfile

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
	"github.com/goccy/go-yaml/token"

	"gatehouse.dev/gatehouse/internal/didyoumean"
	"gatehouse.dev/gatehouse/internal/spec"
	"gatehouse.dev/gatehouse/internal/yamlnode"
)

// Where formats a position of path in file as the parser's errors do: "FILE:LINE:COL: PATH".
func Where(file string, line, col int, path string) string {
	if line <= 0 {
		return file + ": " + path
	}
	return fmt.Sprintf("%s:%d:%d: %s", file, line, col, path)
}

// Error is a problem in a stack file.
//
// Error() formats it as "FILE:LINE:COLUMN: PATH: MSG". Line is 0 when the problem has no place in
// the file (the file cannot be read, or Validate checked a Stack built in code); then the format
// is "FILE: PATH: MSG". Path is omitted when empty (YAML syntax errors).
type Error struct {
	// File is the stack file as given to Load, or the name given to Parse.
	File string
	// Line and Column are 1-based, of the offending key or value.
	Line, Column int
	// Path is the key path, e.g. `functions.hello.timeout` or `apis.web.routes["GET /hello"]`.
	Path string
	// Msg says what is wrong.
	Msg string
	// Err is the underlying error, if any (reading the file); see Unwrap.
	Err error
}

// Error implements error.
func (e *Error) Error() string {
	var b strings.Builder
	if e.File != "" || e.Line > 0 {
		b.WriteString(e.File)
		if e.Line > 0 {
			fmt.Fprintf(&b, ":%d:%d", e.Line, e.Column)
		}
		b.WriteString(": ")
	}
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Unwrap returns the underlying error, e.g. an fs.ErrNotExist from Load.
func (e *Error) Unwrap() error { return e.Err }

// Load reads the stack file at path and parses it with Parse, resolving relative paths against
// the file's directory. Errors are [*Error]; one that comes from reading the file wraps the
// underlying error (errors.Is(err, fs.ErrNotExist) works) and has Line 0.
func Load(path string) (*spec.Stack, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, readError(path, "cannot open stack file", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, spec.MaxFileSize+1))
	if err != nil {
		return nil, readError(path, "cannot read stack file", err)
	}
	return Parse(path, data, filepath.Dir(path))
}

func readError(path, doing string, err error) *Error {
	msg := err.Error()
	if pe := (*fs.PathError)(nil); errors.As(err, &pe) {
		msg = pe.Err.Error()
	}
	return &Error{File: path, Msg: doing + ": " + msg, Err: err}
}

// Parse parses and validates a stack file held in data. name is used in error messages and as
// Stack.File; dir is the directory relative paths are resolved against (made absolute; "" is the
// working directory). Parse stats every function source to decide its Kind, and reads the
// environment variables that access keys name in secretFromEnv. Errors are [*Error].
func Parse(name string, data []byte, dir string) (*spec.Stack, error) {
	if name == "" {
		name = "<stack>"
	}
	if len(data) > spec.MaxFileSize {
		return nil, &Error{File: name, Line: 1, Column: 1,
			Msg: fmt.Sprintf("the file is larger than the limit of %d bytes (1 MiB)", spec.MaxFileSize)}
	}
	if err := checkShape(name, data); err != nil {
		return nil, err
	}
	absDir, err := filepath.Abs(dir)
	if err != nil {
		return nil, &Error{File: name, Msg: "cannot resolve directory " + strconv.Quote(dir) + ": " + err.Error(), Err: err}
	}
	root, err := parseYAML(name, data)
	if err != nil {
		return nil, err
	}
	d := &decoder{file: name, dir: absDir, root: root}
	s, ord, err := d.stack(root)
	if err != nil {
		return nil, err
	}
	s.File = name
	s.Dir = absDir
	errs := s.ValidateInOrder(spec.Order{Functions: ord.funcs, APIs: ord.apis, UsagePlans: ord.plans})
	if len(errs) > 0 {
		e := errs[0]
		d.decoded = 0 // locate decodes again, a little
		line, col, path := d.locate(root, e.Keys, e.AtKey)
		return nil, &Error{File: name, Line: line, Column: col, Path: spec.FormatPath(path), Msg: e.Message}
	}
	return s, nil
}

// Shape limits. The YAML parser takes time and memory quadratic in the depth of nested flow
// collections and in the number of keys of one block mapping, so a 1 MiB file of either could take
// minutes and gigabytes. Real stack files are far from both limits.
const (
	maxFlowDepth      = 100  // [ and { open at once
	maxLinesOneIndent = 5000 // consecutive lines at one indentation (keys of one mapping)

	// maxDecodedEntries bounds the keys decoded, counting each use of an alias anew.
	maxDecodedEntries = 200_000
)

// checkShape refuses data beyond the shape limits, counting roughly: brackets anywhere but in
// comment lines, and lines by indentation.
func checkShape(name string, data []byte) *Error {
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
				if depth++; depth > maxFlowDepth {
					return &Error{File: name, Line: line, Column: col + 1,
						Msg: fmt.Sprintf("[ and { nested more than %d deep", maxFlowDepth)}
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
			if levels[n-1].lines++; levels[n-1].lines > maxLinesOneIndent {
				return &Error{File: name, Line: line, Column: indent + 1,
					Msg: fmt.Sprintf("more than %d keys in one mapping", maxLinesOneIndent)}
			}
		} else {
			levels = append(levels, level{indent: indent, lines: 1})
		}
	}
	return nil
}

// parseYAML parses data into the body of its single document; a nil body is an empty file.
func parseYAML(name string, data []byte) (body ast.Node, err error) {
	// The YAML parser is third-party code fed with user input: turn a panic in it into an error
	// rather than crashing the command.
	defer func() {
		if r := recover(); r != nil {
			body, err = nil, &Error{File: name, Line: 1, Column: 1, Msg: fmt.Sprintf("invalid YAML (the parser failed: %v)", r)}
		}
	}()
	f, perr := parser.ParseBytes(data, 0)
	if perr != nil {
		e := &Error{File: name, Line: 1, Column: 1, Msg: "invalid YAML: " + perr.Error()}
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
	for _, doc := range f.Docs {
		if doc == nil || doc.Body == nil {
			continue
		}
		if body != nil {
			line, col := yamlnode.Position(doc.Body)
			return nil, &Error{File: name, Line: line, Column: col, Msg: "a stack file holds one YAML document; remove this second one"}
		}
		body = doc.Body
	}
	return body, nil
}

// ---------------------------------------------------------------------------------------------
// Decoding: YAML structure and types → Stack.
//
// The decoder walks the AST itself instead of using yaml.Unmarshal, so that every error knows the
// position and key path of what it is about, numbers are never silently converted (memory: 128.5,
// timeout: 3), environment values keep the text as written (PORT: 08080), and routes keep file
// order and line numbers. It is strict: unknown keys are errors at every level. Anchors, aliases,
// merge keys (<<) and the !!str tag work as in YAML.

type decoder struct {
	file    string
	dir     string
	root    ast.Node                     // the document body
	anchors map[string][]*ast.AnchorNode // by name; collected on first use of an alias
	decoded int                          // entries decoded so far, for maxDecodedEntries
}

// order records the file order of functions and APIs, so checks report the first problem in the
// file.
type order struct {
	funcs, apis, plans []string
}

// entry is one key/value pair of a mapping, after merge keys have been expanded.
type entry struct {
	key   string
	keyAt ast.Node // the key as written
	val   ast.Node // the value as written (an alias, anchor or tag too); for `key:` alone, a null at the key
}

func (d *decoder) errAt(n ast.Node, path []string, format string, args ...any) *Error {
	line, col := yamlnode.Position(n)
	return &Error{File: d.file, Line: line, Column: col, Path: spec.FormatPath(path), Msg: fmt.Sprintf(format, args...)}
}

func isImplicitNull(n ast.Node) bool {
	nn, ok := n.(*ast.NullNode)
	return ok && nn != nil && nn.Token != nil && nn.Token.Type == token.ImplicitNullType
}

// maxIndirections bounds chains of anchors, aliases and tags (and catches alias cycles).
const maxIndirections = 64

// resolve follows anchors, aliases and tags from the node as written to the node that holds the
// value. It returns nil for null. str reports a !!str tag.
func (d *decoder) resolve(path []string, n ast.Node) (v ast.Node, str bool, err error) {
	written := n
	for range maxIndirections {
		if yamlnode.IsNil(n) {
			return nil, str, nil
		}
		switch t := n.(type) {
		case *ast.NullNode:
			return nil, str, nil
		case *ast.AnchorNode:
			n = t.Value
		case *ast.AliasNode:
			a := d.anchorFor(t)
			if a == nil {
				name := ""
				if t.Value != nil {
					name = t.Value.String()
				}
				name = printable(name)
				return nil, false, d.errAt(t, path, "alias *%s does not refer to an anchor (&%s) defined before it", name, name)
			}
			n = a.Value
		case *ast.TagNode:
			tag := ""
			if t.Start != nil {
				tag = t.Start.Value
			}
			switch tag {
			case "!!str", "!<tag:yaml.org,2002:str>":
				str = true
			case "!!map", "!!seq", "!<tag:yaml.org,2002:map>", "!<tag:yaml.org,2002:seq>":
			default:
				return nil, false, d.errAt(t, path, "the YAML tag %s is not supported (only !!str)", printable(tag))
			}
			n = t.Value
		default:
			return n, str, nil
		}
	}
	return nil, false, d.errAt(written, path, "too many nested anchors, aliases or tags (or an alias that refers to itself)")
}

// anchorFor returns the last anchor with the alias's name that is defined before the alias.
func (d *decoder) anchorFor(alias *ast.AliasNode) *ast.AnchorNode {
	if alias.Value == nil {
		return nil
	}
	if d.anchors == nil {
		d.anchors = map[string][]*ast.AnchorNode{}
		if d.root != nil {
			ast.Walk(anchorCollector(d.anchors), d.root)
		}
		for _, as := range d.anchors {
			slices.SortStableFunc(as, func(a, b *ast.AnchorNode) int {
				al, ac := yamlnode.Position(a)
				bl, bc := yamlnode.Position(b)
				return cmp.Or(cmp.Compare(al, bl), cmp.Compare(ac, bc))
			})
		}
	}
	// Anchors are sorted by position: find the last one before the alias.
	as := d.anchors[alias.Value.String()]
	al, ac := yamlnode.Position(alias)
	i := sort.Search(len(as), func(i int) bool {
		l, c := yamlnode.Position(as[i])
		return l > al || (l == al && c >= ac)
	})
	if i == 0 {
		return nil
	}
	return as[i-1]
}

type anchorCollector map[string][]*ast.AnchorNode

func (m anchorCollector) Visit(n ast.Node) ast.Visitor {
	if a, ok := n.(*ast.AnchorNode); ok && a != nil && a.Name != nil {
		name := a.Name.String()
		m[name] = append(m[name], a)
	}
	return m
}

// entries returns the key/value pairs of the mapping written at n (none for null), with merge keys
// expanded: explicit keys win over merged ones, and earlier merged mappings over later ones.
func (d *decoder) entries(path []string, n ast.Node) ([]entry, error) {
	v, _, err := d.resolve(path, n)
	if err != nil {
		return nil, err
	}
	if v == nil {
		return nil, nil
	}
	m, ok := v.(*ast.MappingNode)
	if !ok {
		return nil, d.typeError(path, n, v, "a mapping")
	}
	es, err := d.mapEntries(path, m, map[*ast.MappingNode]bool{})
	if err != nil {
		return nil, err
	}
	// Aliases can make a small file expand to a huge stack (one list of routes used by
	// thousands of APIs); bound the work.
	if d.decoded += len(es); d.decoded > maxDecodedEntries {
		return nil, d.errAt(n, path, "the file expands (through aliases) to more than %d keys", maxDecodedEntries)
	}
	return es, nil
}

func (d *decoder) mapEntries(path []string, m *ast.MappingNode, seen map[*ast.MappingNode]bool) ([]entry, error) {
	if seen[m] {
		return nil, nil // merged twice, or merged into itself: nothing new
	}
	seen[m] = true
	keys := make([]string, len(m.Values))
	explicit := map[string]bool{}
	for i, mv := range m.Values {
		if mv == nil || yamlnode.IsNil(mv.Key) || mv.Key.IsMergeKey() {
			continue
		}
		k, err := d.keyText(path, mv.Key)
		if err != nil {
			return nil, err
		}
		if explicit[k] {
			return nil, d.errAt(mv.Key, sub(path, k), "duplicate key")
		}
		explicit[k] = true
		keys[i] = k
	}
	added := map[string]bool{}
	out := make([]entry, 0, len(m.Values))
	for i, mv := range m.Values {
		if mv == nil || yamlnode.IsNil(mv.Key) {
			continue
		}
		if !mv.Key.IsMergeKey() {
			val := mv.Value
			if yamlnode.IsNil(val) || isImplicitNull(val) {
				// `key:` with nothing after it: report problems with the value at the key.
				val = ast.Null(mv.Key.GetToken())
			}
			out = append(out, entry{key: keys[i], keyAt: mv.Key, val: val})
			added[keys[i]] = true
			continue
		}
		src, _, err := d.resolve(path, mv.Value)
		if err != nil {
			return nil, err
		}
		sources := []ast.Node{src}
		if seq, ok := src.(*ast.SequenceNode); ok && seq != nil {
			sources = seq.Values
		}
		for _, written := range sources {
			v, _, err := d.resolve(path, written)
			if err != nil {
				return nil, err
			}
			mm, ok := v.(*ast.MappingNode)
			if !ok || mm == nil {
				return nil, d.errAt(mv.Key, path, "<< (merge key) wants a mapping or a list of mappings")
			}
			merged, err := d.mapEntries(path, mm, seen)
			if err != nil {
				return nil, err
			}
			for _, e := range merged {
				if !explicit[e.key] && !added[e.key] {
					out = append(out, e)
					added[e.key] = true
				}
			}
		}
	}
	return out, nil
}

// keyText returns a mapping key as a string; keys must be scalars.
func (d *decoder) keyText(path []string, k ast.Node) (string, error) {
	if mk, ok := k.(*ast.MappingKeyNode); ok && mk != nil {
		k = mk.Value
	}
	v, _, err := d.resolve(path, k)
	if err != nil {
		return "", err
	}
	s, ok := yamlnode.ScalarText(v)
	if !ok || v == nil {
		return "", d.errAt(k, path, "keys must be plain strings, not %s", describe(v))
	}
	return s, nil
}

// describe names the kind of a resolved value for type errors.
func describe(n ast.Node) string {
	switch v := n.(type) {
	case nil, *ast.NullNode:
		return "nothing (null)"
	case *ast.StringNode:
		return "the string " + yamlnode.QuoteShort(v.Value)
	case *ast.LiteralNode:
		return "a block string"
	case *ast.IntegerNode, *ast.FloatNode, *ast.InfinityNode, *ast.NanNode:
		s, _ := yamlnode.ScalarText(n)
		return "the number " + printable(s)
	case *ast.BoolNode:
		s, _ := yamlnode.ScalarText(n)
		return "the boolean " + printable(s)
	case *ast.MappingNode:
		return "a mapping"
	case *ast.SequenceNode:
		return "a list"
	}
	return "a " + n.Type().YAMLName()
}

// printable returns s, or s quoted when it holds spaces or characters that are not printable.
func printable(s string) string {
	if s != "" && !strings.ContainsFunc(s, func(r rune) bool { return r <= ' ' || r == 0x7f || !unicode.IsPrint(r) }) {
		return s
	}
	return yamlnode.QuoteShort(s)
}

func (d *decoder) typeError(path []string, written, v ast.Node, want string) *Error {
	return d.errAt(written, path, "want %s, got %s", want, describe(v))
}

// str decodes a string. Numbers and booleans are refused (quote them), unless tagged !!str.
func (d *decoder) str(path []string, n ast.Node) (string, error) {
	v, tagged, err := d.resolve(path, n)
	if err != nil {
		return "", err
	}
	switch v.(type) {
	case *ast.StringNode, *ast.LiteralNode:
		s, _ := yamlnode.ScalarText(v)
		return s, nil
	}
	if s, ok := yamlnode.ScalarText(v); ok && tagged {
		return s, nil
	}
	if s, ok := yamlnode.ScalarText(v); ok {
		return "", d.errAt(n, path, "want a string, got %s (quote it: %q)", describe(v), s)
	}
	return "", d.typeError(path, n, v, "a string")
}

// text decodes any scalar but null as its text: for values such as environment variables, where
// `PORT: 8080` means the string "8080".
func (d *decoder) text(path []string, n ast.Node) (string, error) {
	v, _, err := d.resolve(path, n)
	if err != nil {
		return "", err
	}
	if s, ok := yamlnode.ScalarText(v); ok && v != nil {
		return s, nil
	}
	if v == nil {
		return "", d.errAt(n, path, `want a string, got nothing (null); write "" for an empty value`)
	}
	return "", d.typeError(path, n, v, "a string")
}

// integer decodes a whole number.
func (d *decoder) integer(path []string, n ast.Node, unit string) (int, error) {
	v, _, err := d.resolve(path, n)
	if err != nil {
		return 0, err
	}
	iv, ok := v.(*ast.IntegerNode)
	if !ok || iv == nil {
		if sn, ok := v.(*ast.StringNode); ok && sn.Token != nil && sn.Token.Type == token.StringType &&
			len(sn.Value) > 18 && strings.Trim(sn.Value, "0123456789") == "" {
			// The YAML parser reads integers beyond 64 bits as strings.
			s := sn.Value
			return 0, d.errAt(n, path, "%s is too large", s)
		}
		return 0, d.typeError(path, n, v, "a whole number"+unit)
	}
	switch x := iv.Value.(type) {
	case int64:
		if int64(int(x)) == x {
			return int(x), nil
		}
	case uint64:
		if x <= uint64(int(^uint(0)>>1)) {
			return int(x), nil
		}
	}
	s, _ := yamlnode.ScalarText(v)
	return 0, d.errAt(n, path, "%s is too large", printable(s))
}

// duration decodes a Go duration string such as "3s" or "500ms".
func (d *decoder) duration(path []string, n ast.Node) (spec.Duration, error) {
	v, _, err := d.resolve(path, n)
	if err != nil {
		return 0, err
	}
	switch v.(type) {
	case *ast.IntegerNode, *ast.FloatNode:
		s, _ := yamlnode.ScalarText(v)
		return 0, d.errAt(n, path, "%s is not a duration: give a unit, e.g. %q or %q", printable(s), s+"s", s+"ms")
	case *ast.StringNode:
		s, _ := yamlnode.ScalarText(v)
		dur, err := time.ParseDuration(strings.TrimSpace(s))
		if err != nil {
			return 0, d.errAt(n, path, "%s is not a duration (want e.g. 3s or 500ms)", yamlnode.QuoteShort(s))
		}
		return spec.Duration(dur), nil
	}
	return 0, d.typeError(path, n, v, "a duration such as 3s or 500ms")
}

// fields reads a mapping with a fixed set of keys and returns its entries by key.
func (d *decoder) fields(path []string, n ast.Node, known ...string) (map[string]entry, error) {
	es, err := d.entries(path, n)
	if err != nil {
		return nil, err
	}
	return d.byKey(path, es, known)
}

// byKey returns entries by key; a key not in known is an error.
func (d *decoder) byKey(path []string, es []entry, known []string) (map[string]entry, error) {
	out := make(map[string]entry, len(es))
	for _, e := range es {
		if !slices.Contains(known, e.key) {
			return nil, d.errAt(e.keyAt, sub(path, e.key), "unknown key%s; known keys here: %s",
				didyoumean.Suggest(e.key, known), strings.Join(known, ", "))
		}
		out[e.key] = e
	}
	return out, nil
}

// required returns the entry of key in f. Where f has none, the error is at at (the key of the
// mapping) and says what key wants: "required: " and hint, formatted with args.
func (d *decoder) required(f map[string]entry, at ast.Node, path []string, key, hint string, args ...any) (entry, error) {
	e, ok := f[key]
	if !ok {
		return e, d.errAt(at, sub(path, key), "required: "+hint, args...)
	}
	return e, nil
}

// requiredStr decodes the string at key in f, which is required (see required).
func (d *decoder) requiredStr(f map[string]entry, at ast.Node, path []string, key, hint string, args ...any) (string, error) {
	e, err := d.required(f, at, path, key, hint, args...)
	if err != nil {
		return "", err
	}
	return d.str(sub(path, key), e.val)
}

// requiredStrList decodes the list of strings at key in f, which is required (see required).
func (d *decoder) requiredStrList(f map[string]entry, at ast.Node, path []string, key, hint string, args ...any) ([]string, error) {
	e, err := d.required(f, at, path, key, hint, args...)
	if err != nil {
		return nil, err
	}
	return d.strList(sub(path, key), e.val)
}

// sub returns path extended by key, without sharing path's backing array.
func sub(path []string, keys ...string) []string {
	return append(slices.Clip(path), keys...)
}

func (d *decoder) stack(root ast.Node) (*spec.Stack, order, error) {
	var ord order
	if root == nil {
		return nil, ord, &Error{File: d.file, Line: 1, Column: 1,
			Msg: fmt.Sprintf("the stack file is empty; a stack file starts with \"version: %d\"", spec.SchemaVersion)}
	}
	if v, _, err := d.resolve(nil, root); err == nil {
		if _, ok := v.(*ast.MappingNode); !ok {
			return nil, ord, d.errAt(root, nil, "a stack file is a mapping of version, name, functions, apis, iam and usagePlans; got %s", describe(v))
		}
	}
	es, err := d.entries(nil, root)
	if err != nil {
		return nil, ord, err
	}
	// The schema version comes first: a file for another version may have other keys.
	ve, ok := findEntry(es, "version")
	if !ok {
		return nil, ord, &Error{File: d.file, Line: 1, Column: 1, Path: "version",
			Msg: fmt.Sprintf("required; add \"version: %d\" at the top of the file", spec.SchemaVersion)}
	}
	version, err := d.integer([]string{"version"}, ve.val, "")
	if err != nil {
		return nil, ord, err
	}
	if version != spec.SchemaVersion {
		return nil, ord, d.errAt(ve.val, []string{"version"},
			"version %d is not supported; this Gatehouse reads version %d", version, spec.SchemaVersion)
	}
	f, err := d.byKey(nil, es, []string{"version", "name", "functions", "apis", "iam", "usagePlans"})
	if err != nil {
		return nil, ord, err
	}
	s := &spec.Stack{Version: version, Name: spec.DefaultStackName, Functions: map[string]spec.Function{}, APIs: map[string]spec.API{},
		IAM: spec.IAM{Region: spec.DefaultRegion}}
	if e, ok := f["name"]; ok {
		if s.Name, err = d.str([]string{"name"}, e.val); err != nil {
			return nil, ord, err
		}
	}
	if e, ok := f["functions"]; ok {
		fns, err := d.entries([]string{"functions"}, e.val)
		if err != nil {
			return nil, ord, err
		}
		for _, fe := range fns {
			fn, err := d.function(fe)
			if err != nil {
				return nil, ord, err
			}
			s.Functions[fn.Name] = fn
			ord.funcs = append(ord.funcs, fn.Name)
		}
	}
	if e, ok := f["apis"]; ok {
		apis, err := d.entries([]string{"apis"}, e.val)
		if err != nil {
			return nil, ord, err
		}
		for _, ae := range apis {
			api, err := d.api([]string{"apis", ae.key}, ae)
			if err != nil {
				return nil, ord, err
			}
			s.APIs[api.Name] = api
			ord.apis = append(ord.apis, api.Name)
		}
	}
	if e, ok := f["iam"]; ok {
		if s.IAM, err = d.iam(e.val); err != nil {
			return nil, ord, err
		}
	}
	if e, ok := f["usagePlans"]; ok {
		path := []string{"usagePlans"}
		plans, err := d.entries(path, e.val)
		if err != nil {
			return nil, ord, err
		}
		for _, pe := range plans {
			p, err := d.usagePlan(sub(path, pe.key), pe)
			if err != nil {
				return nil, ord, err
			}
			if s.UsagePlans == nil {
				s.UsagePlans = map[string]spec.UsagePlan{}
			}
			s.UsagePlans[p.Name] = p
			ord.plans = append(ord.plans, p.Name)
		}
	}
	return s, ord, nil
}

func (d *decoder) iam(n ast.Node) (spec.IAM, error) {
	path := []string{"iam"}
	out := spec.IAM{Region: spec.DefaultRegion}
	f, err := d.fields(path, n, "region", "accessKeys")
	if err != nil {
		return out, err
	}
	if e, ok := f["region"]; ok {
		if out.Region, err = d.str(sub(path, "region"), e.val); err != nil {
			return out, err
		}
	}
	e, ok := f["accessKeys"]
	if !ok {
		return out, nil
	}
	keysPath := sub(path, "accessKeys")
	items, err := d.list(keysPath, e.val)
	if err != nil {
		return out, err
	}
	for i, item := range items {
		k, err := d.accessKey(sub(keysPath, spec.Index(i)), item)
		if err != nil {
			return out, err
		}
		out.AccessKeys = append(out.AccessKeys, k)
	}
	return out, nil
}

func (d *decoder) accessKey(path []string, n ast.Node) (spec.AccessKey, error) {
	var k spec.AccessKey
	v, _, err := d.resolve(path, n)
	if err != nil {
		return k, err
	}
	if _, ok := v.(*ast.MappingNode); !ok {
		// Not describe(v): a string here may well be a secret.
		return k, d.errAt(n, path, "want a mapping of id and secret (or secretFromEnv), got %s", kind(v))
	}
	f, err := d.fields(path, n, "id", "secret", "secretFromEnv")
	if err != nil {
		return k, err
	}
	if k.ID, err = d.requiredStr(f, n, path, "id", "the access key ID, such as AKIAIOSFODNN7EXAMPLE"); err != nil {
		return k, err
	}
	se, hasSecret := f["secret"]
	ee, hasEnv := f["secretFromEnv"]
	switch {
	case hasSecret && hasEnv:
		return k, d.errAt(ee.keyAt, path, "give either secret or secretFromEnv, not both")
	case hasSecret:
		k.Secret, err = d.secret(sub(path, "secret"), se.val)
		return k, err
	case hasEnv:
		envPath := sub(path, "secretFromEnv")
		name, err := d.str(envPath, ee.val)
		if err != nil {
			return k, err
		}
		if !spec.ValidEnvName(name) {
			return k, d.errAt(ee.val, envPath, "%s is not an environment variable name: want letters, digits and _, not starting with a digit", yamlnode.QuoteShort(name))
		}
		secret, _ := os.LookupEnv(name)
		if secret == "" {
			return k, d.errAt(ee.val, envPath, "the environment variable %s is not set or empty; set it to the secret access key", name)
		}
		if msg := spec.CheckSecret(secret); msg != "" {
			return k, d.errAt(ee.val, envPath, "the secret in the environment variable %s %s", name, msg)
		}
		k.Secret = secret
		return k, nil
	}
	return k, d.errAt(n, path, "the access key has no secret: add secretFromEnv: VARIABLE (or secret: …)")
}

// secret decodes a secret access key as str does, without quoting the value in any message.
func (d *decoder) secret(path []string, n ast.Node) (string, error) {
	v, tagged, err := d.resolve(path, n)
	if err != nil {
		return "", err
	}
	switch v.(type) {
	case *ast.StringNode, *ast.LiteralNode:
		s, _ := yamlnode.ScalarText(v)
		return s, nil
	}
	s, ok := yamlnode.ScalarText(v)
	switch {
	case ok && tagged:
		return s, nil
	case ok:
		return "", d.errAt(n, path, "want a string, got %s (quote it; the value is not shown)", kind(v))
	}
	return "", d.errAt(n, path, "want a string, got %s", kind(v))
}

// kind names the kind of a resolved value without quoting it.
func kind(n ast.Node) string {
	switch n.(type) {
	case nil, *ast.NullNode:
		return "nothing (null)"
	case *ast.StringNode, *ast.LiteralNode:
		return "a string"
	case *ast.IntegerNode, *ast.FloatNode, *ast.InfinityNode, *ast.NanNode:
		return "a number"
	case *ast.BoolNode:
		return "a boolean"
	case *ast.MappingNode:
		return "a mapping"
	case *ast.SequenceNode:
		return "a list"
	}
	return "a " + n.Type().YAMLName()
}

// list returns the items of the sequence written at n (none for null), as written.
func (d *decoder) list(path []string, n ast.Node) ([]ast.Node, error) {
	v, _, err := d.resolve(path, n)
	if err != nil || v == nil {
		return nil, err
	}
	seq, ok := v.(*ast.SequenceNode)
	if !ok || seq == nil {
		return nil, d.typeError(path, n, v, "a list")
	}
	if d.decoded += len(seq.Values); d.decoded > maxDecodedEntries {
		return nil, d.errAt(n, path, "the file expands (through aliases) to more than %d keys", maxDecodedEntries)
	}
	return seq.Values, nil
}

// boolean decodes true or false.
func (d *decoder) boolean(path []string, n ast.Node) (bool, error) {
	v, _, err := d.resolve(path, n)
	if err != nil {
		return false, err
	}
	if b, ok := v.(*ast.BoolNode); ok && b != nil {
		return b.Value, nil
	}
	return false, d.typeError(path, n, v, "true or false")
}

func (d *decoder) function(fe entry) (spec.Function, error) {
	path := []string{"functions", fe.key}
	fn := spec.Function{Name: fe.key, MemoryMB: spec.DefaultMemoryMB, Timeout: spec.Duration(spec.DefaultTimeout), IdleTimeout: spec.Duration(spec.DefaultIdleTimeout), Environment: map[string]string{}}
	fn.Line, fn.Column = yamlnode.Position(fe.keyAt)
	f, err := d.fields(path, fe.val, "source", "memory", "timeout", "environment", "maxConcurrency", "minWarm", "idleTimeout")
	if err != nil {
		return fn, err
	}
	se, err := d.required(f, fe.keyAt, path, "source", "the function's Go source directory or .wasm file")
	if err != nil {
		return fn, err
	}
	if err := d.source(&fn, sub(path, "source"), se.val); err != nil {
		return fn, err
	}
	if e, ok := f["memory"]; ok {
		if fn.MemoryMB, err = d.integer(sub(path, "memory"), e.val, " of MB"); err != nil {
			return fn, err
		}
	}
	if e, ok := f["timeout"]; ok {
		if fn.Timeout, err = d.duration(sub(path, "timeout"), e.val); err != nil {
			return fn, err
		}
	}
	if e, ok := f["environment"]; ok {
		envPath := sub(path, "environment")
		vars, err := d.entries(envPath, e.val)
		if err != nil {
			return fn, err
		}
		size := 0
		for _, v := range vars {
			val, err := d.text(sub(envPath, v.key), v.val)
			if err != nil {
				return fn, err
			}
			// Stop early on a huge environment (aliases can repeat one many times).
			if size += len(v.key) + len(val); size > spec.MaxEnvironmentSize {
				return fn, d.errAt(e.keyAt, envPath, "%s", spec.EnvSizeMessage(size, true))
			}
			fn.Environment[v.key] = val
		}
	}
	if e, ok := f["maxConcurrency"]; ok {
		if fn.MaxConcurrency, err = d.integer(sub(path, "maxConcurrency"), e.val, ""); err != nil {
			return fn, err
		}
	}
	if e, ok := f["minWarm"]; ok {
		if fn.MinWarm, err = d.integer(sub(path, "minWarm"), e.val, ""); err != nil {
			return fn, err
		}
	}
	if e, ok := f["idleTimeout"]; ok {
		if fn.IdleTimeout, err = d.duration(sub(path, "idleTimeout"), e.val); err != nil {
			return fn, err
		}
		if fn.IdleTimeout.D() < spec.MinIdleTimeout || fn.IdleTimeout.D() > spec.MaxIdleTimeout {
			return fn, d.errAt(e.val, sub(path, "idleTimeout"), "%s is out of range: want %s to %s", fn.IdleTimeout, spec.MinIdleTimeout, spec.MaxIdleTimeout)
		}
	}
	return fn, nil
}

// source resolves and stats a function's source and sets Source and Kind.
func (d *decoder) source(fn *spec.Function, path []string, n ast.Node) error {
	src, err := d.str(path, n)
	if err != nil {
		return err
	}
	if strings.TrimSpace(src) == "" {
		return d.errAt(n, path, "empty; want a Go source directory or a .wasm file")
	}
	if strings.ContainsRune(src, 0) {
		return d.errAt(n, path, "contains a NUL byte")
	}
	abs := src
	if !filepath.IsAbs(abs) {
		abs = filepath.Join(d.dir, abs)
	}
	abs = filepath.Clean(abs)
	info, err := os.Stat(abs)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return d.errAt(n, path, "%s does not exist (looked for %q)", yamlnode.QuoteShort(src), abs)
	case err != nil:
		return d.errAt(n, path, "cannot use %s: %v", yamlnode.QuoteShort(src), err)
	case info.IsDir():
		fn.Kind = spec.SourceGo
	case info.Mode().IsRegular() && strings.HasSuffix(abs, ".wasm"):
		fn.Kind = spec.SourceWasm
	default:
		return d.errAt(n, path, "%s is neither a directory of Go source nor a .wasm file", yamlnode.QuoteShort(src))
	}
	fn.Source = abs
	return nil
}

// api decodes the API ae; path is where it is in the document (nil for a document that is one API).
func (d *decoder) api(path []string, ae entry) (spec.API, error) {
	api := spec.API{Name: ae.key, Mount: spec.DefaultMount, Stages: map[string]spec.Stage{}}
	f, err := d.fields(path, ae.val, keysOf(spec.API{})...)
	if err != nil {
		return api, err
	}
	if api.Type, err = d.requiredStr(f, ae.keyAt, path, "type", "%q or %q", spec.APITypeHTTP, spec.APITypeWebSocket); err != nil {
		return api, err
	}
	ws := api.Type == spec.APITypeWebSocket
	for _, k := range []string{"routeSelectionExpression", "limits"} {
		if e, ok := f[k]; ok && api.Type == spec.APITypeHTTP {
			return api, d.errAt(e.keyAt, sub(path, k), "%s", spec.MsgOnlyWebSocket)
		}
	}
	if ws {
		api.RouteSelectionExpression = spec.DefaultRouteSelectionExpression
		if e, ok := f["routeSelectionExpression"]; ok {
			if api.RouteSelectionExpression, err = d.str(sub(path, "routeSelectionExpression"), e.val); err != nil {
				return api, err
			}
		}
		var le ast.Node
		if e, ok := f["limits"]; ok {
			le = e.val
		}
		if api.WebSocket, err = d.wsLimits(sub(path, "limits"), le); err != nil {
			return api, err
		}
	}
	if e, ok := f["cors"]; ok {
		if ws {
			return api, d.errAt(e.keyAt, sub(path, "cors"), "%s", spec.MsgOnlyHTTPCORS)
		}
		if api.CORS, err = d.cors(sub(path, "cors"), e.val); err != nil {
			return api, err
		}
	}
	if e, ok := f["authorizers"]; ok {
		authPath := sub(path, "authorizers")
		as, err := d.entries(authPath, e.val)
		if err != nil {
			return api, err
		}
		for _, ae := range as {
			a, err := d.authorizer(sub(authPath, ae.key), ae)
			if err != nil {
				return api, err
			}
			if api.Authorizers == nil {
				api.Authorizers = map[string]spec.Authorizer{}
			}
			api.Authorizers[a.Name] = a
		}
	}
	if e, ok := f["mount"]; ok {
		if api.Mount, err = d.str(sub(path, "mount"), e.val); err != nil {
			return api, err
		}
	}
	if e, ok := f["host"]; ok {
		if api.Host, err = d.str(sub(path, "host"), e.val); err != nil {
			return api, err
		}
		api.Host = strings.ToLower(api.Host)
	}
	if e, ok := f["stages"]; ok {
		stagesPath := sub(path, "stages")
		stages, err := d.entries(stagesPath, e.val)
		if err != nil {
			return api, err
		}
		for _, se := range stages {
			st, err := d.stage(sub(stagesPath, se.key), se)
			if err != nil {
				return api, err
			}
			api.Stages[st.Name] = st
		}
	}
	if len(api.Stages) == 0 {
		api.Stages[spec.DefaultStage] = spec.Stage{Name: spec.DefaultStage, Variables: map[string]string{}}
	}
	if e, ok := f["routes"]; ok {
		routesPath := sub(path, "routes")
		routes, err := d.entries(routesPath, e.val)
		if err != nil {
			return api, err
		}
		for i, re := range routes {
			if i == spec.MaxRoutesPerAPI {
				return api, d.errAt(re.keyAt, routesPath, "more than %d routes in one API", spec.MaxRoutesPerAPI)
			}
			r, err := d.route(sub(routesPath, re.key), re, api.Type)
			if err != nil {
				return api, err
			}
			api.Routes = append(api.Routes, r)
		}
	}
	return api, d.decodeRest(path, f, &api, "type", "mount", "host", "stages", "routes", "routeSelectionExpression", "limits", "cors", "authorizers")
}

func (d *decoder) stage(path []string, se entry) (spec.Stage, error) {
	st := spec.Stage{Name: se.key, Variables: map[string]string{}}
	f, err := d.fields(path, se.val, keysOf(spec.Stage{})...)
	if err != nil {
		return st, err
	}
	if e, ok := f["throttle"]; ok {
		t, err := d.throttle(sub(path, "throttle"), e)
		if err != nil {
			return st, err
		}
		st.Throttle = &t
	}
	if e, ok := f["routeThrottles"]; ok {
		rtPath := sub(path, "routeThrottles")
		rts, err := d.entries(rtPath, e.val)
		if err != nil {
			return st, err
		}
		for _, rt := range rts {
			t, err := d.throttle(sub(rtPath, rt.key), rt)
			if err != nil {
				return st, err
			}
			if st.RouteThrottles == nil {
				st.RouteThrottles = map[string]spec.Throttle{}
			}
			st.RouteThrottles[rt.key] = t
		}
	}
	if e, ok := f["variables"]; ok {
		varsPath := sub(path, "variables")
		vars, err := d.entries(varsPath, e.val)
		if err != nil {
			return st, err
		}
		for i, v := range vars {
			if i == spec.MaxStageVariables {
				return st, d.errAt(e.keyAt, varsPath, "more than %d variables in one stage", spec.MaxStageVariables)
			}
			if st.Variables[v.key], err = d.text(sub(varsPath, v.key), v.val); err != nil {
				return st, err
			}
		}
	}
	return st, d.decodeRest(path, f, &st, "variables", "throttle", "routeThrottles")
}

// wsLimits decodes a WebSocket API's limits (n may be nil) and fills the defaults.
func (d *decoder) wsLimits(path []string, n ast.Node) (*spec.WebSocketLimits, error) {
	l := &spec.WebSocketLimits{
		MaxMessageBytes:       spec.DefaultMaxMessageBytes,
		IdleTimeout:           spec.Duration(spec.DefaultWSIdleTimeout),
		MaxConnectionDuration: spec.Duration(spec.DefaultMaxConnectionDuration),
		SendQueue:             spec.DefaultSendQueue,
	}
	f, err := d.fields(path, n, "maxMessageBytes", "maxFrameBytes", "idleTimeout", "maxConnectionDuration", "sendQueue")
	if err != nil {
		return l, err
	}
	ints := []struct {
		key  string
		to   *int
		unit string
	}{{"maxMessageBytes", &l.MaxMessageBytes, " of bytes"}, {"maxFrameBytes", &l.MaxFrameBytes, " of bytes"}, {"sendQueue", &l.SendQueue, ""}}
	for _, x := range ints {
		if e, ok := f[x.key]; ok {
			if *x.to, err = d.integer(sub(path, x.key), e.val, x.unit); err != nil {
				return l, err
			}
		}
	}
	durs := []struct {
		key string
		to  *spec.Duration
	}{{"idleTimeout", &l.IdleTimeout}, {"maxConnectionDuration", &l.MaxConnectionDuration}}
	for _, x := range durs {
		if e, ok := f[x.key]; ok {
			if *x.to, err = d.duration(sub(path, x.key), e.val); err != nil {
				return l, err
			}
		}
	}
	if _, ok := f["maxFrameBytes"]; !ok {
		l.MaxFrameBytes = min(spec.DefaultMaxFrameBytes, l.MaxMessageBytes)
	}
	return l, nil
}

func (d *decoder) route(path []string, re entry, apiType string) (spec.Route, error) {
	r := spec.NewRoute(re.key, apiType)
	r.Line, r.Column = yamlnode.Position(re.keyAt)
	ws := apiType == spec.APITypeWebSocket
	if v, _, err := d.resolve(path, re.val); err == nil && v != nil {
		if _, ok := v.(*ast.MappingNode); !ok {
			return r, d.errAt(re.val, path, "want a mapping such as {function: NAME}, got %s", describe(v))
		}
	}
	f, err := d.fields(path, re.val, keysOf(spec.Route{}, "function", "timeout")...)
	if err != nil {
		return r, err
	}
	if e, ok := f["authorization"]; ok {
		if r.Authorization, err = d.authorization(sub(path, "authorization"), e.val); err != nil {
			return r, err
		}
	}
	if e, ok := f["apiKeyRequired"]; ok {
		if r.APIKeyRequired, err = d.boolean(sub(path, "apiKeyRequired"), e.val); err != nil {
			return r, err
		}
	}
	if e, ok := f["routeResponse"]; ok {
		if apiType == spec.APITypeHTTP {
			return r, d.errAt(e.keyAt, sub(path, "routeResponse"), "%s", spec.MsgOnlyWebSocket)
		}
		if r.RouteResponse, err = d.boolean(sub(path, "routeResponse"), e.val); err != nil {
			return r, err
		}
	}
	fe, hasFn := f["function"]
	ie, hasInt := f["integration"]
	switch {
	case hasFn && hasInt:
		return r, d.errAt(ie.keyAt, path, "give either function or integration, not both")
	case hasFn:
		if r.Integration.Target, err = d.str(sub(path, "function"), fe.val); err != nil {
			return r, err
		}
		if e, ok := f["timeout"]; ok {
			if r.Integration.Timeout, err = d.duration(sub(path, "timeout"), e.val); err != nil {
				return r, err
			}
		}
	case hasInt:
		if e, ok := f["timeout"]; ok {
			return r, d.errAt(e.keyAt, sub(path, "timeout"), "with integration, put timeout inside it")
		}
		intPath := sub(path, "integration")
		g, err := d.fields(intPath, ie.val, "type", "target", "payloadFormatVersion", "timeout")
		if err != nil {
			return r, err
		}
		if e, ok := g["type"]; ok {
			if r.Integration.Type, err = d.str(sub(intPath, "type"), e.val); err != nil {
				return r, err
			}
		}
		if r.Integration.Target, err = d.requiredStr(g, ie.keyAt, intPath, "target", "the name of a function"); err != nil {
			return r, err
		}
		if e, ok := g["payloadFormatVersion"]; ok {
			if ws {
				return r, d.errAt(e.keyAt, sub(intPath, "payloadFormatVersion"), "only for http APIs: websocket routes receive WebSocket events; remove it")
			}
			// `payloadFormatVersion: 2.0` unquoted is a number in YAML; take its text.
			if r.Integration.PayloadFormatVersion, err = d.text(sub(intPath, "payloadFormatVersion"), e.val); err != nil {
				return r, err
			}
		}
		if e, ok := g["timeout"]; ok {
			if r.Integration.Timeout, err = d.duration(sub(intPath, "timeout"), e.val); err != nil {
				return r, err
			}
		}
	default:
		return r, d.errAt(re.keyAt, path, "the route has no target: add function: NAME (or an integration)")
	}
	return r, d.decodeRest(path, f, &r, "function", "timeout", "integration", "routeResponse", "authorization", "apiKeyRequired")
}

// number decodes a number, whole or with a fraction.
func (d *decoder) number(path []string, n ast.Node, unit string) (float64, error) {
	v, _, err := d.resolve(path, n)
	if err != nil {
		return 0, err
	}
	switch x := v.(type) {
	case *ast.IntegerNode:
		switch i := x.Value.(type) {
		case int64:
			return float64(i), nil
		case uint64:
			return float64(i), nil
		}
	case *ast.FloatNode:
		return x.Value, nil
	case *ast.InfinityNode, *ast.NanNode:
		s, _ := yamlnode.ScalarText(v)
		return 0, d.errAt(n, path, "want a finite number%s, got %s", unit, printable(s))
	}
	return 0, d.typeError(path, n, v, "a number"+unit)
}

// strList decodes a list of strings: nil for null, a non-nil slice for a list (even empty).
func (d *decoder) strList(path []string, n ast.Node) ([]string, error) {
	v, _, err := d.resolve(path, n)
	if err != nil || v == nil {
		return nil, err
	}
	items, err := d.list(path, n)
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(items))
	for i, item := range items {
		s, err := d.str(sub(path, spec.Index(i)), item)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

func (d *decoder) usagePlan(path []string, pe entry) (spec.UsagePlan, error) {
	p := spec.UsagePlan{Name: pe.key}
	f, err := d.fields(path, pe.val, "throttle", "quota")
	if err != nil {
		return p, err
	}
	if e, ok := f["throttle"]; ok {
		t, err := d.throttle(sub(path, "throttle"), e)
		if err != nil {
			return p, err
		}
		p.Throttle = &t
	}
	if e, ok := f["quota"]; ok {
		qPath := sub(path, "quota")
		g, err := d.fields(qPath, e.val, "limit", "period")
		if err != nil {
			return p, err
		}
		q := spec.Quota{}
		le, err := d.required(g, e.keyAt, qPath, "limit", "the requests each key may make per period, %d to %d", spec.MinQuotaLimit, spec.MaxQuotaLimit)
		if err != nil {
			return p, err
		}
		if q.Limit, err = d.integer(sub(qPath, "limit"), le.val, " of requests"); err != nil {
			return p, err
		}
		if q.Period, err = d.requiredStr(g, e.keyAt, qPath, "period", "%s, %s or %s", spec.QuotaPeriodDay, spec.QuotaPeriodWeek, spec.QuotaPeriodMonth); err != nil {
			return p, err
		}
		p.Quota = &q
	}
	return p, nil
}

// throttle decodes the throttle written as the value of te.
func (d *decoder) throttle(path []string, te entry) (spec.Throttle, error) {
	var t spec.Throttle
	f, err := d.fields(path, te.val, "rate", "burst")
	if err != nil {
		return t, err
	}
	re, err := d.required(f, te.keyAt, path, "rate", "the steady rate in requests per second, more than 0 and at most %d", spec.MaxThrottleRate)
	if err != nil {
		return t, err
	}
	if t.Rate, err = d.number(sub(path, "rate"), re.val, " of requests per second"); err != nil {
		return t, err
	}
	be, err := d.required(f, te.keyAt, path, "burst", "the most requests at once, 0 to %d", spec.MaxThrottleBurst)
	if err != nil {
		return t, err
	}
	if t.Burst, err = d.integer(sub(path, "burst"), be.val, " of requests"); err != nil {
		return t, err
	}
	return t, nil
}

func (d *decoder) cors(path []string, n ast.Node) (*spec.CORS, error) {
	c := &spec.CORS{}
	f, err := d.fields(path, n, "allowOrigins", "allowMethods", "allowHeaders", "exposeHeaders", "maxAge", "allowCredentials")
	if err != nil {
		return nil, err
	}
	lists := []struct {
		key string
		to  *[]string
	}{{"allowOrigins", &c.AllowOrigins}, {"allowMethods", &c.AllowMethods}, {"allowHeaders", &c.AllowHeaders}, {"exposeHeaders", &c.ExposeHeaders}}
	for _, l := range lists {
		if e, ok := f[l.key]; ok {
			if *l.to, err = d.strList(sub(path, l.key), e.val); err != nil {
				return nil, err
			}
			if len(*l.to) == 0 {
				*l.to = nil
			}
		}
	}
	if e, ok := f["maxAge"]; ok {
		age, err := d.integer(sub(path, "maxAge"), e.val, " of seconds")
		if err != nil {
			return nil, err
		}
		c.MaxAge = &age
	}
	if e, ok := f["allowCredentials"]; ok {
		if c.AllowCredentials, err = d.boolean(sub(path, "allowCredentials"), e.val); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// Keys of each authorizer type.
var (
	jwtAuthorizerKeys      = []string{"issuer", "audiences", "identitySource", "jwksUrl", "jwksFile", "algorithms", "skew"}
	functionAuthorizerKeys = []string{"function", "identitySources", "resultTtl", "simpleResponses", "timeout"}
)

func (d *decoder) authorizer(path []string, ae entry) (spec.Authorizer, error) {
	a := spec.Authorizer{Name: ae.key}
	es, err := d.entries(path, ae.val)
	if err != nil {
		return a, err
	}
	te, ok := findEntry(es, "type")
	if !ok {
		return a, d.errAt(ae.keyAt, sub(path, "type"), "required: %q or %q", spec.AuthorizerJWT, spec.AuthorizerFunction)
	}
	if a.Type, err = d.str(sub(path, "type"), te.val); err != nil {
		return a, err
	}
	var own, others []string
	switch a.Type {
	case spec.AuthorizerJWT:
		own, others = jwtAuthorizerKeys, functionAuthorizerKeys
	case spec.AuthorizerFunction:
		own, others = functionAuthorizerKeys, jwtAuthorizerKeys
	default:
		return a, d.errAt(te.val, sub(path, "type"), "unknown authorizer type %s%s: want %q or %q",
			yamlnode.QuoteShort(a.Type), didyoumean.Suggest(a.Type, []string{spec.AuthorizerJWT, spec.AuthorizerFunction}), spec.AuthorizerJWT, spec.AuthorizerFunction)
	}
	for _, e := range es {
		if slices.Contains(others, e.key) {
			other := spec.AuthorizerJWT
			if a.Type == spec.AuthorizerJWT {
				other = spec.AuthorizerFunction
			}
			return a, d.errAt(e.keyAt, sub(path, e.key), "only for %s authorizers; this one has type: %s", other, a.Type)
		}
	}
	f, err := d.byKey(path, es, append([]string{"type"}, own...))
	if err != nil {
		return a, err
	}
	if a.Type == spec.AuthorizerJWT {
		a.JWT, err = d.jwtAuthorizer(path, ae.keyAt, f)
	} else {
		a.Function, err = d.functionAuthorizer(path, ae.keyAt, f)
	}
	return a, err
}

func (d *decoder) jwtAuthorizer(path []string, at ast.Node, f map[string]entry) (*spec.JWTAuthorizer, error) {
	j := &spec.JWTAuthorizer{IdentitySource: spec.DefaultJWTIdentitySource, Algorithms: spec.DefaultJWTAlgorithms(), Skew: spec.Duration(spec.DefaultJWTSkew)}
	var err error
	if j.Issuer, err = d.requiredStr(f, at, path, "issuer", "the token issuer, an https URL such as https://id.example.com"); err != nil {
		return nil, err
	}
	if j.Audiences, err = d.requiredStrList(f, at, path, "audiences", "the audiences a token may be for, such as [api://web]"); err != nil {
		return nil, err
	}
	strs := []struct {
		key string
		to  *string
	}{{"identitySource", &j.IdentitySource}, {"jwksUrl", &j.JWKSURL}}
	for _, x := range strs {
		if e, ok := f[x.key]; ok {
			if *x.to, err = d.str(sub(path, x.key), e.val); err != nil {
				return nil, err
			}
		}
	}
	if e, ok := f["jwksFile"]; ok {
		if _, both := f["jwksUrl"]; both {
			return nil, d.errAt(e.keyAt, path, "give either jwksUrl or jwksFile, not both")
		}
		if j.JWKSFile, err = d.jwksFile(sub(path, "jwksFile"), e.val); err != nil {
			return nil, err
		}
	}
	if e, ok := f["algorithms"]; ok {
		algs, err := d.strList(sub(path, "algorithms"), e.val)
		if err != nil {
			return nil, err
		}
		if algs != nil {
			j.Algorithms = algs
		}
	}
	if e, ok := f["skew"]; ok {
		if j.Skew, err = d.duration(sub(path, "skew"), e.val); err != nil {
			return nil, err
		}
	}
	return j, nil
}

// jwksFile resolves a JWT authorizer's key file against the stack file's directory and checks
// that it is a regular file.
func (d *decoder) jwksFile(path []string, n ast.Node) (string, error) {
	name, err := d.str(path, n)
	if err != nil {
		return "", err
	}
	if strings.TrimSpace(name) == "" || strings.ContainsRune(name, 0) {
		return "", d.errAt(n, path, "%s is not a file name; want the path of a JSON Web Key Set file, such as ./keys.json", yamlnode.QuoteShort(name))
	}
	abs := name
	if !filepath.IsAbs(abs) {
		if d.dir == "" {
			return "", d.errAt(n, path, "%s is a relative path, and this definition has no directory to resolve it against; give an absolute path", yamlnode.QuoteShort(name))
		}
		abs = filepath.Join(d.dir, abs)
	}
	abs = filepath.Clean(abs)
	info, err := os.Stat(abs)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "", d.errAt(n, path, "%s does not exist (looked for %q)", yamlnode.QuoteShort(name), abs)
	case err != nil:
		return "", d.errAt(n, path, "cannot use %s: %v", yamlnode.QuoteShort(name), err)
	case !info.Mode().IsRegular():
		return "", d.errAt(n, path, "%s is not a file; want a JSON Web Key Set file, such as ./keys.json", yamlnode.QuoteShort(name))
	}
	return abs, nil
}

func (d *decoder) functionAuthorizer(path []string, at ast.Node, f map[string]entry) (*spec.FunctionAuthorizer, error) {
	a := &spec.FunctionAuthorizer{ResultTTL: spec.Duration(spec.DefaultAuthorizerResultTTL), SimpleResponses: spec.DefaultSimpleResponses, Timeout: spec.Duration(spec.DefaultAuthorizerTimeout)}
	var err error
	if a.Function, err = d.requiredStr(f, at, path, "function", "the function that decides, a function of this stack"); err != nil {
		return nil, err
	}
	if a.IdentitySources, err = d.requiredStrList(f, at, path, "identitySources", "the request values the decision depends on, such as [$request.header.Authorization]"); err != nil {
		return nil, err
	}
	durs := []struct {
		key string
		to  *spec.Duration
	}{{"resultTtl", &a.ResultTTL}, {"timeout", &a.Timeout}}
	for _, x := range durs {
		if e, ok := f[x.key]; ok {
			if *x.to, err = d.duration(sub(path, x.key), e.val); err != nil {
				return nil, err
			}
		}
	}
	if e, ok := f["simpleResponses"]; ok {
		if a.SimpleResponses, err = d.boolean(sub(path, "simpleResponses"), e.val); err != nil {
			return nil, err
		}
	}
	return a, nil
}

func (d *decoder) authorization(path []string, n ast.Node) (spec.Authorization, error) {
	a := spec.Authorization{Type: spec.AuthNone}
	f, err := d.fields(path, n, "type", "authorizer", "scopes")
	if err != nil {
		return a, err
	}
	if e, ok := f["type"]; ok {
		if a.Type, err = d.str(sub(path, "type"), e.val); err != nil {
			return a, err
		}
	}
	if e, ok := f["authorizer"]; ok {
		if a.Authorizer, err = d.str(sub(path, "authorizer"), e.val); err != nil {
			return a, err
		}
	}
	if e, ok := f["scopes"]; ok {
		if a.Scopes, err = d.strList(sub(path, "scopes"), e.val); err != nil {
			return a, err
		}
		if len(a.Scopes) == 0 {
			a.Scopes = nil
		}
	}
	return a, nil
}

// locate finds the position of the key (atKey) or value at path, for errors found after
// decoding. Where the path is not in the file (a default value, or a shorthand route), it returns
// the deepest key that is, and the path of what was found. It runs only on the error path.
func (d *decoder) locate(root ast.Node, path []string, atKey bool) (line, col int, found []string) {
	cur := root
	var at ast.Node // the deepest key found, or the value at the end of the path
	complete := false
	for i := 0; i < len(path); i++ {
		if rest, ok := strings.CutPrefix(path[i], spec.IndexMark); ok {
			// A list item: it has no key; point at the item.
			items, err := d.list(found, cur)
			n, aerr := strconv.Atoi(rest)
			if err != nil || aerr != nil || n < 0 || n >= len(items) {
				break
			}
			found = append(found, path[i])
			at, cur = items[n], items[n]
			complete = i == len(path)-1
			continue
		}
		es, err := d.entries(found, cur)
		if err != nil {
			break
		}
		e, ok := findEntry(es, path[i])
		if !ok && path[i] == "integration" && len(found) >= 2 && found[len(found)-2] == "routes" && i+1 < len(path) {
			// A shorthand route: integration.target is written as function, and
			// integration.timeout as timeout beside it.
			i++
			switch path[i] {
			case "target":
				e, ok = findEntry(es, "function")
			case "timeout":
				e, ok = findEntry(es, "timeout")
			}
		}
		if !ok {
			break
		}
		found = append(found, e.key)
		at, cur = e.keyAt, e.val
		if i == len(path)-1 {
			complete = true
			if !atKey && !yamlnode.IsNil(e.val) {
				at = e.val
			}
		}
	}
	if at == nil {
		return 1, 1, path
	}
	line, col = yamlnode.Position(at)
	if !complete {
		// Only a prefix is written (the value is a default): point at it, name the whole path.
		return line, col, path
	}
	return line, col, found
}

func findEntry(es []entry, key string) (entry, bool) {
	for _, e := range es {
		if e.key == key {
			return e, true
		}
	}
	return entry{}, false
}

// ---------------------------------------------------------------------------------------------
