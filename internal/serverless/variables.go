package serverless

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"gatehouse.dev/gatehouse/internal/doctree"
)

// Variables, as the Serverless Framework writes them: ${self:a.b}, ${opt:stage}, ${env:NAME},
// ${sls:stage}, ${aws:region}, ${aws:accountId}, ${file(./schema.json)} and
// ${file(./config.yml):a.b} (a JSON or YAML file beside serverless.yml), with fallbacks after a
// comma (${opt:stage, 'dev'}, ${env:A, env:B, 'x'}). A string that is one variable takes the
// value's own kind (a list, a number, a mapping); variables inside a longer string are replaced by
// their text. Other sources (ssm, s3, cf, file() of JavaScript…) need AWS or code Gatehouse does
// not run, and are refused at their place.

// maxDepth bounds variables that refer to values with variables.
const maxDepth = 32

// resolve replaces the variables in every string of n.
func (r *reader) resolve(n *doctree.Node, depth int) (*doctree.Node, error) {
	if n == nil {
		return nil, nil
	}
	if depth > maxDepth {
		return nil, r.Errorf(n, "variables refer to each other more than %d deep (or in a circle)", maxDepth)
	}
	if n.Tag != "" && n.Tag != "!!str" {
		return nil, r.Errorf(n, "%s is a CloudFormation function, which only a deployed AWS stack evaluates: give the value, or a ${…} variable", n.Tag)
	}
	switch n.Kind {
	case doctree.String:
		return r.resolveString(n, depth)
	case doctree.Map:
		out := doctree.NewMap(n)
		for k, v := range n.All() {
			rv, err := r.resolve(v, depth)
			if err != nil {
				return nil, err
			}
			out.Set(k, rv)
		}
		return out, nil
	case doctree.List:
		out := doctree.NewList(n)
		for _, it := range n.Items {
			rv, err := r.resolve(it, depth)
			if err != nil {
				return nil, err
			}
			out.Items = append(out.Items, rv)
		}
		return out, nil
	}
	return n, nil
}

func (r *reader) resolveString(n *doctree.Node, depth int) (*doctree.Node, error) {
	s := n.Text
	if !strings.Contains(s, "${") {
		return n, nil
	}
	// The whole string is one variable: its value as it is.
	if start, end := findVar(s); start == 0 && end == len(s) {
		v, err := r.variable(n, s[2:end-1], depth)
		if err != nil {
			return nil, err
		}
		return r.resolve(v, depth+1)
	}
	var b strings.Builder
	for {
		start, end := findVar(s)
		if start < 0 {
			b.WriteString(s)
			break
		}
		b.WriteString(s[:start])
		v, err := r.variable(n, s[start+2:end-1], depth)
		if err != nil {
			return nil, err
		}
		if v, err = r.resolve(v, depth+1); err != nil {
			return nil, err
		}
		if !v.IsScalar() {
			return nil, r.Errorf(n, "${%s} is %s, which cannot be part of a string", s[start+2:end-1], v.Kind)
		}
		b.WriteString(v.Text)
		s = s[end:]
	}
	return doctree.Str(b.String(), n), nil
}

// findVar returns the bounds of the first ${…} in s, nested ones included; -1 when there is none.
func findVar(s string) (start, end int) {
	start = strings.Index(s, "${")
	if start < 0 {
		return -1, -1
	}
	depth := 0
	for i := start; i < len(s); i++ {
		switch {
		case strings.HasPrefix(s[i:], "${"):
			depth++
			i++
		case s[i] == '}':
			depth--
			if depth == 0 {
				return start, i + 1
			}
		}
	}
	return -1, -1
}

// variable is the value of one variable's expression: sources separated by commas, the first that
// has a value wins.
func (r *reader) variable(at *doctree.Node, expr string, depth int) (*doctree.Node, error) {
	for _, alt := range splitFallbacks(expr) {
		alt = strings.TrimSpace(alt)
		if v, ok, err := r.source(at, alt, depth); err != nil {
			return nil, err
		} else if ok {
			return v, nil
		}
	}
	return nil, r.Errorf(at, "${%s} has no value: give it one (for ${opt:…}, a flag of gatehouse up; for ${env:…}, the environment) or a fallback such as ${%s, 'value'}", expr, expr)
}

// splitFallbacks splits at commas outside quotes and nested ${…}.
func splitFallbacks(expr string) []string {
	var out []string
	depth, quote, last := 0, byte(0), 0
	for i := 0; i < len(expr); i++ {
		c := expr[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '\'' || c == '"':
			quote = c
		case strings.HasPrefix(expr[i:], "${"):
			depth++
		case c == '}':
			depth--
		case c == ',' && depth == 0:
			out = append(out, expr[last:i])
			last = i + 1
		}
	}
	return append(out, expr[last:])
}

// source is one alternative of a variable: a quoted string, a number, a nested variable, or a
// source:address.
func (r *reader) source(at *doctree.Node, alt string, depth int) (*doctree.Node, bool, error) {
	if len(alt) >= 2 && (alt[0] == '\'' && alt[len(alt)-1] == '\'' || alt[0] == '"' && alt[len(alt)-1] == '"') {
		return doctree.Str(alt[1:len(alt)-1], at), true, nil
	}
	if _, err := strconv.ParseFloat(alt, 64); err == nil {
		return &doctree.Node{Kind: doctree.Number, Text: alt, Line: at.Line, Column: at.Column, Path: at.Path}, true, nil
	}
	if alt == "true" || alt == "false" {
		return &doctree.Node{Kind: doctree.Bool, Text: alt, Line: at.Line, Column: at.Column, Path: at.Path}, true, nil
	}
	if strings.HasPrefix(alt, "${") {
		v, err := r.resolveString(doctree.Str(alt, at), depth+1)
		return v, err == nil, err
	}
	if strings.Contains(alt, "${") { // a variable inside the address: ${self:custom.level.${sls:stage}}
		v, err := r.resolveString(doctree.Str(alt, at), depth+1)
		if err != nil {
			return nil, false, err
		}
		alt = v.Text
	}
	if strings.HasPrefix(alt, "file(") {
		return r.file(at, alt)
	}
	kind, addr, ok := strings.Cut(alt, ":")
	if !ok {
		// ${self:…} may be written without self: in older files.
		kind, addr = "self", alt
	}
	switch kind {
	case "self":
		v := lookup(r.root, addr)
		return v, v != nil, nil
	case "opt":
		if addr == "stage" && r.opts.Stage != "" {
			return doctree.Str(r.opts.Stage, at), true, nil
		}
		if addr == "region" && r.opts.Region != "" {
			return doctree.Str(r.opts.Region, at), true, nil
		}
		return nil, false, nil
	case "sls":
		switch addr {
		case "stage":
			return doctree.Str(r.stage, at), true, nil
		case "instanceId":
			return doctree.Str("local", at), true, nil
		}
	case "aws":
		switch addr {
		case "region":
			return doctree.Str(r.region, at), true, nil
		case "accountId":
			return doctree.Str(r.opts.AccountID, at), true, nil
		}
	case "env":
		if v, ok := r.opts.Env(addr); ok {
			return doctree.Str(v, at), true, nil
		}
		return nil, false, nil
	}
	return nil, false, r.Errorf(at, "${%s}: the variable source %s: is not read locally (Gatehouse reads self:, opt:, env:, sls:, aws:region/accountId and file()): give the value, or a fallback", alt, kind)
}

// lookup returns the value at the dotted address addr of v (list items by index); nil when there is
// none.
func lookup(v *doctree.Node, addr string) *doctree.Node {
	for _, part := range strings.Split(addr, ".") {
		if part == "" {
			continue
		}
		if i, err := strconv.Atoi(part); err == nil && v.Kind == doctree.List {
			if i < 0 || i >= len(v.Items) {
				return nil
			}
			v = v.Items[i]
			continue
		}
		v = v.Get(part)
	}
	return v
}

// file is the value of ${file(PATH)} or ${file(PATH):a.b}: a JSON or YAML file, relative to
// serverless.yml's directory, or a value in it. A file that does not exist has no value, so that
// a fallback applies, as in the framework. The file's values are placed at the variable, so that
// a problem in them is reported where serverless.yml names the file.
func (r *reader) file(at *doctree.Node, alt string) (*doctree.Node, bool, error) {
	end := strings.Index(alt, ")")
	if end < 0 {
		return nil, false, r.Errorf(at, "${%s}: want file(PATH) or file(PATH):ADDRESS", alt)
	}
	name := strings.Trim(strings.TrimSpace(alt[len("file("):end]), `'"`)
	addr, _ := strings.CutPrefix(alt[end+1:], ":")
	switch strings.ToLower(filepath.Ext(name)) {
	case ".js", ".cjs", ".mjs", ".ts":
		return nil, false, r.Errorf(at, "${%s}: a JavaScript file's value needs its code run, which Gatehouse does not do: write the value, or put it in a JSON or YAML file", alt)
	}
	path := name
	if !filepath.IsAbs(path) {
		path = filepath.Join(r.dir, path)
	}
	doc, ok := r.files[path]
	if !ok {
		data, err := os.ReadFile(path)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, false, nil
		}
		if err != nil {
			return nil, false, r.Errorf(at, "${%s}: %v", alt, err)
		}
		if doc, err = doctree.Parse(path, data, "file", MaxFileBytes, false); err != nil {
			return nil, false, r.Errorf(at, "${%s}: %v", alt, err)
		}
		doc = placeAll(doc, at)
		r.files[path] = doc
	}
	v := lookup(doc, strings.TrimSpace(addr))
	return v, v != nil, nil
}

// placeAll returns a copy of n with every value placed at at.
func placeAll(n, at *doctree.Node) *doctree.Node {
	c := *n
	c.Line, c.Column, c.Path = at.Line, at.Column, at.Path
	c.Vals, c.Items = nil, nil
	for _, v := range n.Vals {
		c.Vals = append(c.Vals, placeAll(v, at))
	}
	for _, it := range n.Items {
		c.Items = append(c.Items, placeAll(it, at))
	}
	c.Keys = append([]string(nil), n.Keys...)
	return &c
}
