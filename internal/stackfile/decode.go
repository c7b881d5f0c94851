package stackfile

import (
	"cmp"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/token"

	"gatehouse.dev/gatehouse/internal/didyoumean"
	"gatehouse.dev/gatehouse/internal/spec"
	"gatehouse.dev/gatehouse/internal/yamlnode"
)

// Decoding: YAML structure and types → the spec types.
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
