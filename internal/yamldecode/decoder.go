package yamldecode

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/token"

	"gatehouse.dev/gatehouse/internal/didyoumean"
	"gatehouse.dev/gatehouse/internal/yamlnode"
)

// MaxDecodedEntries bounds the keys and list items one Decoder reads, counting each use of an alias
// anew: aliases can make a small file expand to a huge one (one list of routes used by thousands of
// APIs).
const MaxDecodedEntries = 200_000

// maxIndirections bounds chains of anchors, aliases and tags (and catches alias cycles).
const maxIndirections = 64

// Decoder reads the values of one parsed document. Its methods take the key path of the value they
// read, for their errors, and the node as written (an alias, anchor or tag too).
type Decoder struct {
	// File names the document in errors.
	File string
	// Dir is the directory relative paths in the document resolve against; "" is none. The
	// decoder does not use it; the caller's readers of file names do.
	Dir string
	// Shorthand, if set, lets Locate find a key path that the document may write in a shorter form:
	// given the keys found so far and the rest of the path, whose first key is not written there,
	// it returns the rest as the shorthand writes it, or nil.
	Shorthand func(found, rest []string) []string
	// CustomTags lets documents use tags of their own (CloudFormation's !Ref, !Sub…): Resolve
	// returns such a tag's *ast.TagNode as the value, for the caller to read, instead of refusing it.
	CustomTags bool

	root    ast.Node                     // the document body
	anchors map[string][]*ast.AnchorNode // by name; collected on first use of an alias
	decoded int                          // entries decoded so far, for MaxDecodedEntries
}

// New returns a decoder of the document whose body is root (as [Parse] returns it).
func New(file, dir string, root ast.Node) *Decoder {
	return &Decoder{File: file, Dir: dir, root: root}
}

// Root returns the document body.
func (d *Decoder) Root() ast.Node { return d.root }

// Entry is one key/value pair of a mapping, after merge keys have been expanded.
type Entry struct {
	Key   string
	KeyAt ast.Node // the key as written
	Val   ast.Node // the value as written (an alias, anchor or tag too); for `key:` alone, a null at the key
}

// FindEntry returns the entry of key in es.
func FindEntry(es []Entry, key string) (Entry, bool) {
	for _, e := range es {
		if e.Key == key {
			return e, true
		}
	}
	return Entry{}, false
}

// Errorf returns an error at n (1:1 for nil) about the key path.
func (d *Decoder) Errorf(n ast.Node, path []string, format string, args ...any) *Error {
	line, col := yamlnode.Position(n)
	return &Error{File: d.File, Line: line, Column: col, Path: FormatPath(path), Msg: fmt.Sprintf(format, args...)}
}

// TypeError reports that the value v (resolved), written at written, is not what the key path
// wants: "want WANT, got DESCRIPTION".
func (d *Decoder) TypeError(path []string, written, v ast.Node, want string) *Error {
	return d.Errorf(written, path, "want %s, got %s", want, Describe(v))
}

func isImplicitNull(n ast.Node) bool {
	nn, ok := n.(*ast.NullNode)
	return ok && nn != nil && nn.Token != nil && nn.Token.Type == token.ImplicitNullType
}

// Resolve follows anchors, aliases and tags from the node as written to the node that holds the
// value. It returns nil for null. str reports a !!str tag.
func (d *Decoder) Resolve(path []string, n ast.Node) (v ast.Node, str bool, err error) {
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
				name = Printable(name)
				return nil, false, d.Errorf(t, path, "alias *%s does not refer to an anchor (&%s) defined before it", name, name)
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
				if d.CustomTags && strings.HasPrefix(tag, "!") && !strings.HasPrefix(tag, "!!") {
					return t, str, nil
				}
				return nil, false, d.Errorf(t, path, "the YAML tag %s is not supported (only !!str)", Printable(tag))
			}
			n = t.Value
		default:
			return n, str, nil
		}
	}
	return nil, false, d.Errorf(written, path, "too many nested anchors, aliases or tags (or an alias that refers to itself)")
}

// anchorFor returns the last anchor with the alias's name that is defined before the alias.
func (d *Decoder) anchorFor(alias *ast.AliasNode) *ast.AnchorNode {
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

// Entries returns the key/value pairs of the mapping written at n (none for null), with merge keys
// expanded: explicit keys win over merged ones, and earlier merged mappings over later ones.
func (d *Decoder) Entries(path []string, n ast.Node) ([]Entry, error) {
	v, _, err := d.Resolve(path, n)
	if err != nil {
		return nil, err
	}
	if v == nil {
		return nil, nil
	}
	var m *ast.MappingNode
	switch x := v.(type) {
	case *ast.MappingNode:
		m = x
	case *ast.MappingValueNode:
		m = &ast.MappingNode{Values: []*ast.MappingValueNode{x}} // a mapping of one key, as a flow list item
	default:
		return nil, d.TypeError(path, n, v, "a mapping")
	}
	es, err := d.mapEntries(path, m, map[*ast.MappingNode]bool{})
	if err != nil {
		return nil, err
	}
	if d.decoded += len(es); d.decoded > MaxDecodedEntries {
		return nil, d.Errorf(n, path, "the file expands (through aliases) to more than %d keys", MaxDecodedEntries)
	}
	return es, nil
}

func (d *Decoder) mapEntries(path []string, m *ast.MappingNode, seen map[*ast.MappingNode]bool) ([]Entry, error) {
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
			return nil, d.Errorf(mv.Key, Sub(path, k), "duplicate key")
		}
		explicit[k] = true
		keys[i] = k
	}
	added := map[string]bool{}
	out := make([]Entry, 0, len(m.Values))
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
			out = append(out, Entry{Key: keys[i], KeyAt: mv.Key, Val: val})
			added[keys[i]] = true
			continue
		}
		src, _, err := d.Resolve(path, mv.Value)
		if err != nil {
			return nil, err
		}
		sources := []ast.Node{src}
		if seq, ok := src.(*ast.SequenceNode); ok && seq != nil {
			sources = seq.Values
		}
		for _, written := range sources {
			v, _, err := d.Resolve(path, written)
			if err != nil {
				return nil, err
			}
			mm, ok := v.(*ast.MappingNode)
			if !ok || mm == nil {
				return nil, d.Errorf(mv.Key, path, "<< (merge key) wants a mapping or a list of mappings")
			}
			merged, err := d.mapEntries(path, mm, seen)
			if err != nil {
				return nil, err
			}
			for _, e := range merged {
				if !explicit[e.Key] && !added[e.Key] {
					out = append(out, e)
					added[e.Key] = true
				}
			}
		}
	}
	return out, nil
}

// keyText returns a mapping key as a string; keys must be scalars.
func (d *Decoder) keyText(path []string, k ast.Node) (string, error) {
	if mk, ok := k.(*ast.MappingKeyNode); ok && mk != nil {
		k = mk.Value
	}
	v, _, err := d.Resolve(path, k)
	if err != nil {
		return "", err
	}
	s, ok := yamlnode.ScalarText(v)
	if !ok || v == nil {
		return "", d.Errorf(k, path, "keys must be plain strings, not %s", Describe(v))
	}
	return s, nil
}

// Fields reads a mapping with a fixed set of keys and returns its entries by key.
func (d *Decoder) Fields(path []string, n ast.Node, known ...string) (map[string]Entry, error) {
	es, err := d.Entries(path, n)
	if err != nil {
		return nil, err
	}
	return d.ByKey(path, es, known)
}

// ByKey returns entries by key; a key not in known is an error (see UnknownKey).
func (d *Decoder) ByKey(path []string, es []Entry, known []string) (map[string]Entry, error) {
	out := make(map[string]Entry, len(es))
	for _, e := range es {
		if !slices.Contains(known, e.Key) {
			return nil, d.UnknownKey(path, e, known)
		}
		out[e.Key] = e
	}
	return out, nil
}

// UnknownKey reports that e, an entry of the mapping at path, has none of the known keys, with
// the one it may have meant.
func (d *Decoder) UnknownKey(path []string, e Entry, known []string) *Error {
	return d.Errorf(e.KeyAt, Sub(path, e.Key), "unknown key%s; known keys here: %s",
		didyoumean.Suggest(e.Key, known), strings.Join(known, ", "))
}

// Required returns the entry of key in f. Where f has none, the error is at at (the key of the
// mapping) and says what key wants: "required: " and hint, formatted with args.
func (d *Decoder) Required(f map[string]Entry, at ast.Node, path []string, key, hint string, args ...any) (Entry, error) {
	e, ok := f[key]
	if !ok {
		return e, d.Errorf(at, Sub(path, key), "required: "+hint, args...)
	}
	return e, nil
}

// RequiredStr decodes the string at key in f, which is required (see Required).
func (d *Decoder) RequiredStr(f map[string]Entry, at ast.Node, path []string, key, hint string, args ...any) (string, error) {
	e, err := d.Required(f, at, path, key, hint, args...)
	if err != nil {
		return "", err
	}
	return d.Str(Sub(path, key), e.Val)
}

// RequiredStrList decodes the list of strings at key in f, which is required (see Required).
func (d *Decoder) RequiredStrList(f map[string]Entry, at ast.Node, path []string, key, hint string, args ...any) ([]string, error) {
	e, err := d.Required(f, at, path, key, hint, args...)
	if err != nil {
		return nil, err
	}
	return d.StrList(Sub(path, key), e.Val)
}

// List returns the items of the sequence written at n (none for null), as written.
func (d *Decoder) List(path []string, n ast.Node) ([]ast.Node, error) {
	return d.ListOf(path, n, "a list")
}

// ListOf is List with what the list holds in its type error: want is e.g. "a list of names".
func (d *Decoder) ListOf(path []string, n ast.Node, want string) ([]ast.Node, error) {
	v, _, err := d.Resolve(path, n)
	if err != nil || v == nil {
		return nil, err
	}
	seq, ok := v.(*ast.SequenceNode)
	if !ok || seq == nil {
		return nil, d.TypeError(path, n, v, want)
	}
	if d.decoded += len(seq.Values); d.decoded > MaxDecodedEntries {
		return nil, d.Errorf(n, path, "the file expands (through aliases) to more than %d keys", MaxDecodedEntries)
	}
	return seq.Values, nil
}

// Str decodes a string. Numbers and booleans are refused (quote them), unless tagged !!str.
func (d *Decoder) Str(path []string, n ast.Node) (string, error) {
	v, tagged, err := d.Resolve(path, n)
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
		return "", d.Errorf(n, path, "want a string, got %s (quote it: %q)", Describe(v), s)
	}
	return "", d.TypeError(path, n, v, "a string")
}

// Text decodes any scalar but null as its text: for values such as environment variables, where
// `PORT: 8080` means the string "8080".
func (d *Decoder) Text(path []string, n ast.Node) (string, error) {
	v, _, err := d.Resolve(path, n)
	if err != nil {
		return "", err
	}
	if s, ok := yamlnode.ScalarText(v); ok && v != nil {
		return s, nil
	}
	if v == nil {
		return "", d.Errorf(n, path, `want a string, got nothing (null); write "" for an empty value`)
	}
	return "", d.TypeError(path, n, v, "a string")
}

// Integer decodes a whole number. unit completes "want a whole number" in its type error, e.g.
// " of MB".
func (d *Decoder) Integer(path []string, n ast.Node, unit string) (int, error) {
	v, _, err := d.Resolve(path, n)
	if err != nil {
		return 0, err
	}
	iv, ok := v.(*ast.IntegerNode)
	if !ok || iv == nil {
		if sn, ok := v.(*ast.StringNode); ok && sn.Token != nil && sn.Token.Type == token.StringType &&
			len(sn.Value) > 18 && strings.Trim(sn.Value, "0123456789") == "" {
			// The YAML parser reads integers beyond 64 bits as strings.
			return 0, d.Errorf(n, path, "%s is too large", Printable(sn.Value))
		}
		return 0, d.TypeError(path, n, v, "a whole number"+unit)
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
	return 0, d.Errorf(n, path, "%s is too large", Printable(s))
}

// Number decodes a finite number, whole or with a fraction. unit completes "want a number" in its
// type error.
func (d *Decoder) Number(path []string, n ast.Node, unit string) (float64, error) {
	v, _, err := d.Resolve(path, n)
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
		return 0, d.Errorf(n, path, "want a finite number%s, got %s", unit, Printable(s))
	}
	return 0, d.TypeError(path, n, v, "a number"+unit)
}

// Bool decodes true or false.
func (d *Decoder) Bool(path []string, n ast.Node) (bool, error) {
	v, _, err := d.Resolve(path, n)
	if err != nil {
		return false, err
	}
	if b, ok := v.(*ast.BoolNode); ok && b != nil {
		return b.Value, nil
	}
	return false, d.TypeError(path, n, v, "true or false")
}

// Duration decodes a Go duration string such as "3s" or "500ms". A bare number is refused: it
// could mean seconds or milliseconds.
func (d *Decoder) Duration(path []string, n ast.Node) (time.Duration, error) {
	v, _, err := d.Resolve(path, n)
	if err != nil {
		return 0, err
	}
	switch v.(type) {
	case *ast.IntegerNode, *ast.FloatNode:
		s, _ := yamlnode.ScalarText(v)
		return 0, d.Errorf(n, path, "%s is not a duration: give a unit, e.g. %q or %q", Printable(s), s+"s", s+"ms")
	case *ast.StringNode:
		s, _ := yamlnode.ScalarText(v)
		dur, err := time.ParseDuration(strings.TrimSpace(s))
		if err != nil {
			return 0, d.Errorf(n, path, "%s is not a duration (want e.g. 3s or 500ms)", yamlnode.QuoteShort(s))
		}
		return dur, nil
	}
	return 0, d.TypeError(path, n, v, "a duration such as 3s or 500ms")
}

// StrList decodes a list of strings: nil for null, a non-nil slice for a list (even empty).
func (d *Decoder) StrList(path []string, n ast.Node) ([]string, error) {
	v, _, err := d.Resolve(path, n)
	if err != nil || v == nil {
		return nil, err
	}
	items, err := d.List(path, n)
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(items))
	for i, item := range items {
		s, err := d.Str(Sub(path, Index(i)), item)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

// Describe names a resolved value for type errors, quoting a string (cut short).
func Describe(n ast.Node) string {
	switch v := n.(type) {
	case nil, *ast.NullNode:
		return "nothing (null)"
	case *ast.StringNode:
		return "the string " + yamlnode.QuoteShort(v.Value)
	case *ast.LiteralNode:
		return "a block string"
	case *ast.IntegerNode, *ast.FloatNode, *ast.InfinityNode, *ast.NanNode:
		s, _ := yamlnode.ScalarText(n)
		return "the number " + Printable(s)
	case *ast.BoolNode:
		s, _ := yamlnode.ScalarText(n)
		return "the boolean " + Printable(s)
	}
	return Kind(n)
}

// Kind names the kind of a resolved value without quoting it, for values that may be secret.
func Kind(n ast.Node) string {
	switch n.(type) {
	case nil, *ast.NullNode:
		return "nothing (null)"
	case *ast.StringNode, *ast.LiteralNode:
		return "a string"
	case *ast.IntegerNode, *ast.FloatNode, *ast.InfinityNode, *ast.NanNode:
		return "a number"
	case *ast.BoolNode:
		return "a boolean"
	case *ast.MappingNode, *ast.MappingValueNode:
		return "a mapping"
	case *ast.SequenceNode:
		return "a list"
	}
	return "a " + n.Type().YAMLName()
}

// Printable returns s as written when it is short and holds no spaces or characters that are not
// printable, else quoted (and cut short).
func Printable(s string) string {
	if s != "" && len(s) <= 40 && !strings.ContainsFunc(s, func(r rune) bool { return r <= ' ' || r == 0x7f || !unicode.IsPrint(r) }) {
		return s
	}
	return yamlnode.QuoteShort(s)
}

// Locate finds the position of the key (atKey) or value at path in the document, for errors found
// after decoding (by a validation of the decoded values). Where the path is not in the document (a
// default value), it returns the deepest key that is, and path itself as named; where it is, the
// path as written (see Shorthand). It decodes again, a little, and runs only on the error path.
func (d *Decoder) Locate(path []string, atKey bool) (line, col int, named []string) {
	d.decoded = 0
	cur := d.root
	var at ast.Node // the deepest key found, or the value at the end of the path
	var found []string
	complete := len(path) == 0
	rest := path
	shorthand := false // rest is already a shorthand's
	for len(rest) > 0 {
		key := rest[0]
		if i, ok := strings.CutPrefix(key, IndexMark); ok {
			// A list item: it has no key; point at the item.
			items, err := d.List(found, cur)
			n, aerr := strconv.Atoi(i)
			if err != nil || aerr != nil || n < 0 || n >= len(items) {
				break
			}
			found = append(found, key)
			at, cur = items[n], items[n]
			rest, shorthand = rest[1:], false
			complete = len(rest) == 0
			continue
		}
		es, err := d.Entries(found, cur)
		if err != nil {
			break
		}
		e, ok := FindEntry(es, key)
		if !ok {
			if d.Shorthand != nil && !shorthand {
				if alt := d.Shorthand(found, rest); alt != nil {
					rest, shorthand = alt, true
					continue
				}
			}
			break
		}
		found = append(found, e.Key)
		at, cur = e.KeyAt, e.Val
		rest, shorthand = rest[1:], false
		if len(rest) == 0 {
			complete = true
			if !atKey && !yamlnode.IsNil(e.Val) {
				at = e.Val
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

// JSON decodes any value (a mapping, a list or a scalar, nested) as JSON text, for settings that
// hold a document of their own, such as a JSON Schema. Mapping keys keep their order; scalars keep
// their YAML type (a quoted "1" stays a string).
func (d *Decoder) JSON(path []string, n ast.Node) (json.RawMessage, error) {
	var b bytes.Buffer
	if err := d.appendJSON(&b, path, n, 0); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

func (d *Decoder) appendJSON(b *bytes.Buffer, path []string, n ast.Node, depth int) error {
	if depth > 64 {
		return d.Errorf(n, path, "nested more than 64 levels deep")
	}
	v, tagged, err := d.Resolve(path, n)
	if err != nil {
		return err
	}
	switch t := v.(type) {
	case nil:
		b.WriteString("null")
	case *ast.MappingNode, *ast.MappingValueNode:
		es, err := d.Entries(path, n)
		if err != nil {
			return err
		}
		b.WriteByte('{')
		for i, e := range es {
			if i > 0 {
				b.WriteByte(',')
			}
			k, _ := json.Marshal(e.Key)
			b.Write(k)
			b.WriteByte(':')
			if err := d.appendJSON(b, Sub(path, e.Key), e.Val, depth+1); err != nil {
				return err
			}
		}
		b.WriteByte('}')
	case *ast.SequenceNode:
		b.WriteByte('[')
		for i, item := range t.Values {
			if i > 0 {
				b.WriteByte(',')
			}
			if err := d.appendJSON(b, Sub(path, Index(i)), item, depth+1); err != nil {
				return err
			}
		}
		b.WriteByte(']')
	case *ast.BoolNode:
		if tagged {
			s, _ := json.Marshal(t.String())
			b.Write(s)
		} else {
			b.WriteString(strconv.FormatBool(t.Value))
		}
	case *ast.IntegerNode, *ast.FloatNode:
		s, _ := yamlnode.ScalarText(v)
		if tagged {
			q, _ := json.Marshal(s)
			b.Write(q)
			break
		}
		f, err := strconv.ParseFloat(strings.ReplaceAll(s, "_", ""), 64)
		if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
			return d.Errorf(n, path, "%s is not a number JSON can hold", Printable(s))
		}
		if json.Valid([]byte(s)) {
			b.WriteString(s)
		} else {
			b.WriteString(strconv.FormatFloat(f, 'g', -1, 64))
		}
	default:
		s, ok := yamlnode.ScalarText(v)
		if !ok {
			return d.TypeError(path, n, v, "a value")
		}
		q, _ := json.Marshal(s)
		b.Write(q)
	}
	return nil
}
