package stackfile

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"github.com/goccy/go-yaml/ast"

	"gatehouse.dev/gatehouse/internal/spec"
)

// Errors is every problem found in a definition, each placed in its file. It is returned when the
// definition's structure is sound and its values are not.
type Errors []*Error

// Error implements error: one problem per line.
func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// ParseAPI decodes and validates one API named name, written in data as an entry of a stack file's
// `apis:` is (JSON is YAML, so what spec.API marshals to is read back the same). Relative paths
// resolve against dir; with dir "", a relative path is refused. Structural problems (unknown keys,
// wrong types, missing keys, files that do not exist) stop at the first, an [*Error]; every problem
// with the values is reported at once, as [Errors], with paths relative to the API and checked
// against env.
func ParseAPI(file string, data []byte, dir, name string, env spec.Env) (spec.API, error) {
	d, root, err := newDecoder(file, data, dir)
	if err != nil {
		return spec.API{}, err
	}
	if root == nil {
		return spec.API{}, &Error{File: file, Line: 1, Column: 1, Msg: "the API definition is empty; it needs at least type and routes"}
	}
	api, err := d.api(nil, entry{key: name, keyAt: root, val: root})
	if err != nil {
		return spec.API{}, err
	}
	if errs := api.Validate(name, env); len(errs) > 0 {
		return spec.API{}, d.place(root, errs)
	}
	return api, nil
}

// ParseAPIs decodes and validates the `apis:` of data, a stack file or a document that holds only
// `apis:`, in file order, checking them against env. It does not read the document's other
// sections. Errors are as ParseAPI's, with paths from the document's root.
func ParseAPIs(file string, data []byte, dir string, env spec.Env) ([]spec.API, error) {
	d, root, err := newDecoder(file, data, dir)
	if err != nil {
		return nil, err
	}
	if root == nil {
		return nil, &Error{File: file, Line: 1, Column: 1, Msg: "the file is empty; want apis: with the API definitions"}
	}
	es, err := d.entries(nil, root)
	if err != nil {
		return nil, err
	}
	ae, ok := findEntry(es, "apis")
	if !ok {
		return nil, d.errAt(root, []string{"apis"}, "no apis: in the file; want apis: with the API definitions, as in a stack file")
	}
	entries, err := d.entries([]string{"apis"}, ae.val)
	if err != nil {
		return nil, err
	}
	var apis []spec.API
	var errs spec.Errors
	for _, e := range entries {
		path := []string{"apis", e.key}
		api, err := d.api(path, e)
		if err != nil {
			return nil, err
		}
		for _, fe := range api.Validate(e.key, env) {
			fe.Keys = append(slices.Clone(path), fe.Keys...)
			errs = append(errs, fe)
		}
		apis = append(apis, api)
	}
	if len(errs) > 0 {
		return nil, d.place(root, errs)
	}
	return apis, nil
}

// newDecoder checks data's size and shape and parses its YAML.
func newDecoder(file string, data []byte, dir string) (*decoder, ast.Node, error) {
	if file == "" {
		file = "<definition>"
	}
	if len(data) > spec.MaxFileSize {
		return nil, nil, &Error{File: file, Line: 1, Column: 1,
			Msg: fmt.Sprintf("the definition is larger than the limit of %d bytes (1 MiB)", spec.MaxFileSize)}
	}
	if err := checkShape(file, data); err != nil {
		return nil, nil, err
	}
	absDir := ""
	if dir != "" {
		var err error
		if absDir, err = filepath.Abs(dir); err != nil {
			return nil, nil, &Error{File: file, Msg: "cannot resolve directory " + dir + ": " + err.Error(), Err: err}
		}
	}
	root, err := parseYAML(file, data)
	if err != nil {
		return nil, nil, err
	}
	return &decoder{file: file, dir: absDir, root: root}, root, nil
}

// place turns problems found by spec's validation into Errors placed in the file.
func (d *decoder) place(root ast.Node, errs spec.Errors) Errors {
	out := make(Errors, 0, len(errs))
	for _, e := range errs {
		d.decoded = 0 // locate decodes again, a little
		line, col, path := d.locate(root, e.Keys, e.AtKey)
		out = append(out, &Error{File: d.file, Line: line, Column: col, Path: spec.FormatPath(path), Msg: e.Message})
	}
	return out
}
