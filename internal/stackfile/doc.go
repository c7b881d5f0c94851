package stackfile

import (
	"encoding/json"
	"errors"
	"strings"

	"gatehouse.dev/gatehouse/internal/doctree"
	"gatehouse.dev/gatehouse/internal/spec"
	"gatehouse.dev/gatehouse/internal/yamldecode"
)

// Other formats (SAM templates, serverless.yml, OpenAPI documents) are read by building the stack
// file they describe as a doctree: each node made from a value of the source file keeps that
// value's place. The stack file is then parsed as any other, so it gets the same defaults, checks
// and messages, and a problem is reported at the place in the source file that the offending
// value came from, under the source's own key path.

// ParseDoc parses and validates doc, a stack file made from the file named file, with relative
// paths resolved against dir. Errors are [*Error]s placed in file.
func ParseDoc(file string, doc *doctree.Node, dir string) (*spec.Stack, error) {
	data, err := json.Marshal(doc)
	if err != nil {
		return nil, err
	}
	s, err := Parse(file, data, dir)
	if err != nil {
		return nil, relocate(file, doc, err)
	}
	// The positions later messages give are the source's, not the JSON's.
	for name, fn := range s.Functions {
		fn.Line, fn.Column = 0, 0
		if n := doc.Get("functions").Get(name); n != nil {
			fn.Line, fn.Column = n.Line, n.Column
		}
		s.Functions[name] = fn
	}
	for name, api := range s.APIs {
		routes := doc.Get("apis").Get(name).Get("routes")
		for i, rt := range api.Routes {
			api.Routes[i].Line, api.Routes[i].Column = 0, 0
			if n := routes.Get(rt.Key); n != nil {
				api.Routes[i].Line, api.Routes[i].Column = n.Line, n.Column
			}
		}
	}
	return s, nil
}

// ParseAPIDoc is ParseAPI of doc, one API's definition made from the file named file.
func ParseAPIDoc(file string, doc *doctree.Node, dir, name string, env spec.Env) (spec.API, error) {
	data, err := json.Marshal(doc)
	if err != nil {
		return spec.API{}, err
	}
	api, err := ParseAPI(file, data, dir, name, env)
	if err != nil {
		return spec.API{}, relocate(file, doc, err)
	}
	return api, nil
}

// relocate places err's problems (found in doc's JSON) at the source values doc was made from.
func relocate(file string, doc *doctree.Node, err error) error {
	var es Errors
	if errors.As(err, &es) {
		out := make(Errors, len(es))
		for i, e := range es {
			out[i] = relocateOne(file, doc, e)
		}
		return out
	}
	var e *Error
	if errors.As(err, &e) {
		return relocateOne(file, doc, e)
	}
	return err
}

func relocateOne(file string, doc *doctree.Node, e *Error) *Error {
	out := &Error{File: file, Path: e.Path, Msg: e.Msg, Err: e.Err}
	if n := locate(doc, nil, e.Path); n != nil {
		out.Line, out.Column = n.Line, n.Column
		if n.Path != "" {
			out.Path = n.Path
		}
	}
	return out
}

// locate returns the node of doc whose stack-file key path is the longest prefix of path and that
// has a place in the source; nil when none has.
func locate(n *doctree.Node, at []string, path string) *doctree.Node {
	if n == nil {
		return nil
	}
	here := yamldecode.FormatPath(at)
	if here != "" && (!strings.HasPrefix(path, here) || len(path) > len(here) && !strings.ContainsRune(".[", rune(path[len(here)]))) {
		return nil
	}
	var best *doctree.Node
	if n.Line > 0 {
		best = n
	}
	switch n.Kind {
	case doctree.Map:
		for i, k := range n.Keys {
			if found := locate(n.Vals[i], append(at[:len(at):len(at)], k), path); found != nil {
				return found
			}
		}
	case doctree.List:
		for i, it := range n.Items {
			if found := locate(it, append(at[:len(at):len(at)], yamldecode.Index(i)), path); found != nil {
				return found
			}
		}
	}
	return best
}
