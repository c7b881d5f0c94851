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
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"

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
