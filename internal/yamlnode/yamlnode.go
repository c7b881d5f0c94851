// Package yamlnode holds the small helpers Gatehouse's YAML readers (the stack file and the function
// manifest) share over goccy/go-yaml's syntax tree: where a node stands in the file, a scalar's text as
// written, and a short quoted form for error messages.
package yamlnode

import (
	"strconv"
	"strings"

	"github.com/goccy/go-yaml/ast"
)

// Position returns the 1-based line and column of n: for a block mapping, of its first key; for a
// missing or empty node, 1:1.
func Position(n ast.Node) (line, col int) {
	switch v := n.(type) {
	case nil:
		return 1, 1
	case *ast.MappingNode:
		if v == nil {
			return 1, 1
		}
		if !v.IsFlowStyle && len(v.Values) > 0 && v.Values[0] != nil && v.Values[0].Key != nil {
			return Position(v.Values[0].Key)
		}
	case *ast.MappingValueNode:
		if v == nil || v.Key == nil {
			return 1, 1
		}
		return Position(v.Key)
	}
	if IsNil(n) {
		return 1, 1
	}
	tk := n.GetToken()
	if tk == nil || tk.Position == nil || tk.Position.Line < 1 {
		return 1, 1
	}
	return tk.Position.Line, max(tk.Position.Column, 1)
}

// IsNil reports whether n is missing: nil, or a nil pointer of one of the node types the parser can
// leave behind.
func IsNil(n ast.Node) bool {
	switch v := n.(type) {
	case nil:
		return true
	case *ast.MappingNode:
		return v == nil
	case *ast.MappingValueNode:
		return v == nil
	case *ast.StringNode:
		return v == nil
	case *ast.NullNode:
		return v == nil
	case *ast.AliasNode:
		return v == nil
	case *ast.AnchorNode:
		return v == nil
	case *ast.TagNode:
		return v == nil
	case *ast.SequenceNode:
		return v == nil
	case *ast.LiteralNode:
		return v == nil
	}
	return false
}

// ReadablePositions rewrites the parser's "[3:5]" position references in msg as "line 3, column 5".
func ReadablePositions(msg string) string {
	isNumber := func(s string) bool { _, err := strconv.Atoi(s); return err == nil }
	var b strings.Builder
	for {
		before, rest, ok := strings.Cut(msg, "[")
		if !ok {
			break
		}
		inside, after, closed := strings.Cut(rest, "]")
		line, col, isPos := strings.Cut(inside, ":")
		if closed && isPos && isNumber(line) && isNumber(col) {
			b.WriteString(before + "line " + line + ", column " + col)
			msg = after
			continue
		}
		b.WriteString(before + "[")
		msg = rest
	}
	b.WriteString(msg)
	return b.String()
}

// ScalarText returns a scalar node's text as written (a quoted string without its quotes), and false
// for anything that is not a scalar.
func ScalarText(n ast.Node) (string, bool) {
	switch v := n.(type) {
	case *ast.StringNode:
		if v == nil {
			return "", false
		}
		return v.Value, true
	case *ast.LiteralNode:
		if v == nil {
			return "", false
		}
		if v.Value == nil {
			return "", true
		}
		return v.Value.Value, true
	case *ast.IntegerNode, *ast.FloatNode, *ast.BoolNode, *ast.InfinityNode, *ast.NanNode:
		if tk := n.GetToken(); tk != nil {
			return tk.Value, true
		}
	}
	return "", false
}

// QuoteShort quotes s for an error message, cut to 40 characters.
func QuoteShort(s string) string {
	const limit = 40
	if r := []rune(s); len(r) > limit {
		return strconv.Quote(string(r[:limit])) + "…"
	}
	return strconv.Quote(s)
}
