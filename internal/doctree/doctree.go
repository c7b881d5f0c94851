// Package doctree holds a YAML or JSON document as a tree of values that remember where they were
// written, for the formats Gatehouse reads other tools' definitions from: OpenAPI documents, AWS
// SAM and CloudFormation templates, serverless.yml. Readers of those formats walk the tree, rewrite
// parts of it (a template's intrinsic functions, serverless.yml's variables) and report every
// problem at a line and column of the file.
//
// Parsing goes through yamldecode, so these files get the stack file's limits on size, nesting and
// alias expansion, and its messages.
package doctree

import (
	"encoding/json"
	"fmt"
	"iter"
	"strconv"

	"github.com/goccy/go-yaml/ast"

	"gatehouse.dev/gatehouse/internal/yamldecode"
	"gatehouse.dev/gatehouse/internal/yamlnode"
)

// Kind is what a Node holds.
type Kind int

// The kinds of nodes.
const (
	Null Kind = iota
	String
	Number
	Bool
	Map
	List
)

// String names the kind for messages: "a string", "a mapping"…
func (k Kind) String() string {
	switch k {
	case String:
		return "a string"
	case Number:
		return "a number"
	case Bool:
		return "a boolean"
	case Map:
		return "a mapping"
	case List:
		return "a list"
	}
	return "null"
}

// Node is one value of a document.
type Node struct {
	Kind Kind
	// Text is a scalar's text as written ("8080", "true", "hello"); "" for the others.
	Text string
	// Tag is a custom tag written on the value, such as "!Ref" or "!Sub"; "" when none.
	Tag string
	// Keys and Vals are a mapping's entries in document order (merge keys expanded).
	Keys []string
	Vals []*Node
	// Items are a list's items.
	Items []*Node
	// Line and Column are where the value was written (1-based); 0 for values made in code with
	// no place.
	Line, Column int
	// Path is the value's key path in its document, as messages write it
	// (`Resources.Hello.Properties.MemorySize`); "" for the root and for values made in code.
	Path string
}

// Get returns the value of key in a mapping; nil when n is not a mapping or has no such key.
func (n *Node) Get(key string) *Node {
	if n == nil || n.Kind != Map {
		return nil
	}
	for i, k := range n.Keys {
		if k == key {
			return n.Vals[i]
		}
	}
	return nil
}

// All yields a mapping's entries in order; nothing for nil and for other kinds.
func (n *Node) All() iter.Seq2[string, *Node] {
	return func(yield func(string, *Node) bool) {
		if n == nil || n.Kind != Map {
			return
		}
		for i, k := range n.Keys {
			if !yield(k, n.Vals[i]) {
				return
			}
		}
	}
}

// List returns a list's items; nil for nil and for other kinds.
func (n *Node) List() []*Node {
	if n == nil || n.Kind != List {
		return nil
	}
	return n.Items
}

// Scalar returns a scalar's text; "" for nil and for mappings and lists.
func (n *Node) Scalar() string {
	if n == nil {
		return ""
	}
	return n.Text
}

// Set replaces the value of key in a mapping, or adds it at the end.
func (n *Node) Set(key string, v *Node) {
	for i, k := range n.Keys {
		if k == key {
			n.Vals[i] = v
			return
		}
	}
	n.Keys = append(n.Keys, key)
	n.Vals = append(n.Vals, v)
}

// Str returns a string node with s, placed where at is (nil: nowhere).
func Str(s string, at *Node) *Node {
	n := &Node{Kind: String, Text: s}
	n.place(at)
	return n
}

// NewMap returns an empty mapping placed where at is.
func NewMap(at *Node) *Node {
	n := &Node{Kind: Map}
	n.place(at)
	return n
}

// NewList returns a list of items placed where at is.
func NewList(at *Node, items ...*Node) *Node {
	n := &Node{Kind: List, Items: items}
	n.place(at)
	return n
}

func (n *Node) place(at *Node) {
	if at != nil {
		n.Line, n.Column, n.Path = at.Line, at.Column, at.Path
	}
}

// MarshalJSON writes n as JSON with mappings in document order.
func (n *Node) MarshalJSON() ([]byte, error) {
	if n == nil {
		return []byte("null"), nil
	}
	switch n.Kind {
	case Map:
		b := []byte{'{'}
		for i, k := range n.Keys {
			if i > 0 {
				b = append(b, ',')
			}
			kb, _ := json.Marshal(k)
			vb, err := n.Vals[i].MarshalJSON()
			if err != nil {
				return nil, err
			}
			b = append(append(append(b, kb...), ':'), vb...)
		}
		return append(b, '}'), nil
	case List:
		b := []byte{'['}
		for i, it := range n.Items {
			if i > 0 {
				b = append(b, ',')
			}
			vb, err := it.MarshalJSON()
			if err != nil {
				return nil, err
			}
			b = append(b, vb...)
		}
		return append(b, ']'), nil
	}
	return json.Marshal(n.Value())
}

// IsScalar reports whether n is a string, number or boolean.
func (n *Node) IsScalar() bool {
	return n != nil && (n.Kind == String || n.Kind == Number || n.Kind == Bool)
}

// Value returns n as plain Go values for encoding/json: map[string]any, []any, string,
// json.Number, bool or nil. Tags are dropped.
func (n *Node) Value() any {
	if n == nil {
		return nil
	}
	switch n.Kind {
	case String:
		return n.Text
	case Number:
		if json.Valid([]byte(n.Text)) {
			return json.Number(n.Text)
		}
		return n.Text
	case Bool:
		b, _ := strconv.ParseBool(n.Text)
		return b
	case Map:
		m := make(map[string]any, len(n.Keys))
		for i, k := range n.Keys {
			m[k] = n.Vals[i].Value()
		}
		return m
	case List:
		l := make([]any, len(n.Items))
		for i, it := range n.Items {
			l[i] = it.Value()
		}
		return l
	}
	return nil
}

// Errorf returns an error about the value n, placed at n in file under its key path (1:1 when n
// is nil).
func Errorf(file string, n *Node, format string, args ...any) *yamldecode.Error {
	e := &yamldecode.Error{File: file, Line: 1, Column: 1, Msg: fmt.Sprintf(format, args...)}
	if n != nil {
		e.Path = n.Path
		if n.Line > 0 {
			e.Line, e.Column = n.Line, n.Column
		}
	}
	return e
}

// maxDepth bounds the nesting of a document.
const maxDepth = 200

// Parse parses a YAML or JSON document (JSON is read as YAML) into a tree. noun names the document
// in messages ("OpenAPI document", "template"); maxBytes bounds its size. With customTags, values
// may carry tags of their own (CloudFormation's short forms); without, a tag other than !!str is
// refused. An empty document is an error. Errors are *yamldecode.Error.
func Parse(file string, data []byte, noun string, maxBytes int, customTags bool) (*Node, error) {
	f := yamldecode.Format{Noun: noun, MaxBytes: maxBytes, SizeText: fmt.Sprintf("%d MiB", maxBytes>>20),
		MaxFlowDepth: 64, MaxKeysPerMapping: 50_000}
	root, err := yamldecode.Parse(file, data, f)
	if err != nil {
		return nil, err
	}
	if root == nil {
		return nil, &yamldecode.Error{File: file, Line: 1, Column: 1, Msg: "the " + noun + " is empty"}
	}
	d := yamldecode.New(file, "", root)
	d.CustomTags = customTags
	return build(d, nil, root, 0)
}

func build(d *yamldecode.Decoder, path []string, written ast.Node, depth int) (*Node, error) {
	if depth > maxDepth {
		return nil, d.Errorf(written, path, "nested more than %d levels deep", maxDepth)
	}
	v, str, err := d.Resolve(path, written)
	if err != nil {
		return nil, err
	}
	line, col := yamlnode.Position(written)
	n := &Node{Line: line, Column: col, Path: yamldecode.FormatPath(path)}
	if t, ok := v.(*ast.TagNode); ok {
		inner, err := build(d, path, t.Value, depth+1)
		if err != nil {
			return nil, err
		}
		if inner == nil {
			inner = &Node{Line: line, Column: col}
		}
		inner.Tag = t.Start.Value
		inner.Line, inner.Column, inner.Path = line, col, yamldecode.FormatPath(path)
		return inner, nil
	}
	switch x := v.(type) {
	case nil:
		n.Kind = Null
	case *ast.IntegerNode, *ast.FloatNode, *ast.InfinityNode, *ast.NanNode:
		n.Kind, n.Text = Number, x.GetToken().Value
	case *ast.BoolNode:
		n.Kind, n.Text = Bool, x.GetToken().Value
	case *ast.MappingNode, *ast.MappingValueNode:
		n.Kind = Map
		es, err := d.Entries(path, written)
		if err != nil {
			return nil, err
		}
		for _, e := range es {
			val, err := build(d, yamldecode.Sub(path, e.Key), e.Val, depth+1)
			if err != nil {
				return nil, err
			}
			n.Keys = append(n.Keys, e.Key)
			n.Vals = append(n.Vals, val)
		}
	case *ast.SequenceNode:
		n.Kind = List
		items, err := d.List(path, written)
		if err != nil {
			return nil, err
		}
		for i, it := range items {
			item, err := build(d, yamldecode.Sub(path, yamldecode.Index(i)), it, depth+1)
			if err != nil {
				return nil, err
			}
			n.Items = append(n.Items, item)
		}
	default:
		s, ok := yamlnode.ScalarText(v)
		if !ok {
			return nil, d.Errorf(written, path, "want a mapping, a list or a scalar, not %s", yamldecode.Describe(v))
		}
		n.Kind, n.Text = String, s
	}
	if str && n.IsScalar() {
		n.Kind = String // !!str 8080
	}
	return n, nil
}

// Notes collects what one reading of a file has to say: its errors, and the notices of what it
// skipped, each placed at a value of the file.
type Notes struct {
	File    string
	Notices []*yamldecode.Error
}

// Errorf returns an error about the value at, placed in the file.
func (n *Notes) Errorf(at *Node, format string, args ...any) error {
	return Errorf(n.File, at, format, args...)
}

// Notice records a notice about the value at.
func (n *Notes) Notice(at *Node, format string, args ...any) {
	n.Notices = append(n.Notices, Errorf(n.File, at, format, args...))
}

// Made is a stack file made from another format's file: its values placed in that file, and the
// notices of what was skipped.
type Made struct {
	Stack   *Node
	Notices []*yamldecode.Error
}

// AsNumber returns n as a number node when it is a string whose text is a number (templates often
// quote numbers), else n itself; nil stays nil.
func AsNumber(n *Node) *Node {
	if n != nil && n.Kind == String {
		if _, err := strconv.ParseFloat(n.Text, 64); err == nil {
			c := *n
			c.Kind = Number
			return &c
		}
	}
	return n
}

// AsBool returns n as a boolean node when it is the string "true" or "false", else n itself.
func AsBool(n *Node) *Node {
	if n != nil && n.Kind == String && (n.Text == "true" || n.Text == "false") {
		c := *n
		c.Kind = Bool
		return &c
	}
	return n
}
