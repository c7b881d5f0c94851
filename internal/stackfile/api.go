package stackfile

import (
	"path/filepath"
	"slices"
	"strings"

	"github.com/goccy/go-yaml/ast"

	"gatehouse.dev/gatehouse/internal/spec"
	"gatehouse.dev/gatehouse/internal/yamldecode"
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
	d, root, err := newDefinitionDecoder(file, data, dir)
	if err != nil {
		return spec.API{}, err
	}
	if root == nil {
		return spec.API{}, &Error{File: file, Line: 1, Column: 1, Msg: "the API definition is empty; it needs at least type and routes"}
	}
	api, err := d.api(nil, yamldecode.Entry{Key: name, KeyAt: root, Val: root})
	if err != nil {
		return spec.API{}, err
	}
	if errs := api.Validate(name, env); len(errs) > 0 {
		return spec.API{}, d.place(errs)
	}
	return api, nil
}

// ParseAPIs decodes and validates the `apis:` of data, a stack file or a document that holds only
// `apis:`, in file order, checking them against env. It does not read the document's other
// sections. Errors are as ParseAPI's, with paths from the document's root.
func ParseAPIs(file string, data []byte, dir string, env spec.Env) ([]spec.API, error) {
	d, root, err := newDefinitionDecoder(file, data, dir)
	if err != nil {
		return nil, err
	}
	if root == nil {
		return nil, &Error{File: file, Line: 1, Column: 1, Msg: "the file is empty; want apis: with the API definitions"}
	}
	es, err := d.Entries(nil, root)
	if err != nil {
		return nil, err
	}
	ae, ok := yamldecode.FindEntry(es, "apis")
	if !ok {
		return nil, d.Errorf(root, []string{"apis"}, "no apis: in the file; want apis: with the API definitions, as in a stack file")
	}
	entries, err := d.Entries([]string{"apis"}, ae.Val)
	if err != nil {
		return nil, err
	}
	var apis []spec.API
	var errs spec.Errors
	for _, e := range entries {
		path := []string{"apis", e.Key}
		api, err := d.api(path, e)
		if err != nil {
			return nil, err
		}
		for _, fe := range api.Validate(e.Key, env) {
			fe.Keys = append(slices.Clone(path), fe.Keys...)
			errs = append(errs, fe)
		}
		apis = append(apis, api)
	}
	if len(errs) > 0 {
		return nil, d.place(errs)
	}
	return apis, nil
}

// newDefinitionDecoder returns a decoder of the definition in data (see newDecoder); file "" is
// "<definition>", and dir "" refuses relative paths.
func newDefinitionDecoder(file string, data []byte, dir string) (*decoder, ast.Node, error) {
	if file == "" {
		file = "<definition>"
	}
	absDir := ""
	if dir != "" {
		var err error
		if absDir, err = filepath.Abs(dir); err != nil {
			return nil, nil, &Error{File: file, Msg: "cannot resolve directory " + dir + ": " + err.Error(), Err: err}
		}
	}
	return newDecoder(file, data, absDir, definitionFormat)
}
