package stackfile

import (
	"github.com/goccy/go-yaml/ast"

	"gatehouse.dev/gatehouse/internal/spec"
	"gatehouse.dev/gatehouse/internal/yamldecode"
)

// Decoding: YAML structure and types → the spec types, with internal/yamldecode's decoder, which
// walks the syntax tree so that every error knows the position and key path of what it is about.
// It is strict: unknown keys are errors at every level. Anchors, aliases, merge keys (<<) and the
// !!str tag work as in YAML.

// decoder reads a stack file's sections (sections.go, apisections.go) with yamldecode's readers.
type decoder struct {
	*yamldecode.Decoder
}

// Shape limits of a stack file and of an API definition read on its own; real stack files are far
// from them.
const (
	maxFlowDepth      = 100  // [ and { open at once
	maxLinesOneIndent = 5000 // consecutive lines at one indentation (keys of one mapping)
)

var (
	stackFormat = yamldecode.Format{Noun: "stack file", MaxBytes: spec.MaxFileSize, SizeText: "1 MiB",
		MaxFlowDepth: maxFlowDepth, MaxKeysPerMapping: maxLinesOneIndent}
	definitionFormat = yamldecode.Format{Noun: "definition", MaxBytes: spec.MaxFileSize, SizeText: "1 MiB",
		MaxFlowDepth: maxFlowDepth, MaxKeysPerMapping: maxLinesOneIndent}
)

// newDecoder checks data's size, encoding and shape, parses its YAML, and returns a decoder of it
// and the document's body (nil when empty). absDir is the directory relative paths resolve
// against; "" refuses them.
func newDecoder(file string, data []byte, absDir string, f yamldecode.Format) (*decoder, ast.Node, error) {
	root, err := yamldecode.Parse(file, data, f)
	if err != nil {
		return nil, nil, err
	}
	d := &decoder{yamldecode.New(file, absDir, root)}
	d.Shorthand = routeShorthand
	return d, root, nil
}

// order records the file order of functions and APIs, so checks report the first problem in the
// file.
type order struct {
	funcs, apis, plans []string
}

// routeShorthand lets Locate find a route's integration target, timeout and invocation type where
// a shorthand route writes them: `function: NAME`, and `timeout:` and `invocationType:` beside it.
func routeShorthand(found, rest []string) []string {
	if len(found) < 2 || found[len(found)-2] != "routes" || len(rest) < 2 || rest[0] != "integration" {
		return nil
	}
	switch rest[1] {
	case "target":
		return append([]string{"function"}, rest[2:]...)
	case "timeout", "invocationType":
		return append([]string{rest[1]}, rest[2:]...)
	}
	return nil
}

// duration decodes a duration such as 3s as a spec.Duration.
func (d *decoder) duration(path []string, n ast.Node) (spec.Duration, error) {
	dur, err := d.Duration(path, n)
	return spec.Duration(dur), err
}

// place turns problems found by spec's validation into Errors placed in the file.
func (d *decoder) place(errs spec.Errors) Errors {
	out := make(Errors, 0, len(errs))
	for _, e := range errs {
		out = append(out, d.placeOne(e))
	}
	return out
}

func (d *decoder) placeOne(e spec.FieldError) *Error {
	line, col, path := d.Locate(e.Keys, e.AtKey)
	return &Error{File: d.File, Line: line, Column: col, Path: yamldecode.FormatPath(path), Msg: e.Message}
}
