package yamlnode

import (
	"testing"

	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
)

func TestReadablePositions(t *testing.T) {
	for in, want := range map[string]string{
		"[3:5] unexpected key":     "line 3, column 5 unexpected key",
		"list [a:b] and [7:1] end": "list [a:b] and line 7, column 1 end",
		"no position":              "no position",
		"open [3:5":                "open [3:5",
	} {
		if got := ReadablePositions(in); got != want {
			t.Errorf("ReadablePositions(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestPosition(t *testing.T) {
	f, err := parser.ParseBytes([]byte("a: 1\nb:\n  c: \"x\"\n"), 0)
	if err != nil {
		t.Fatal(err)
	}
	body := f.Docs[0].Body
	if l, c := Position(body); l != 1 || c != 1 {
		t.Errorf("mapping at %d:%d, want its first key at 1:1", l, c)
	}
	m := body.(*ast.MappingNode)
	if l, c := Position(m.Values[1].Value); l != 3 || c != 3 {
		t.Errorf("nested mapping at %d:%d, want 3:3", l, c)
	}
	var nilMapping *ast.MappingNode
	if l, c := Position(nilMapping); l != 1 || c != 1 || !IsNil(nilMapping) || !IsNil(nil) {
		t.Errorf("a nil node must sit at 1:1 and count as nil")
	}
	if s, ok := ScalarText(m.Values[1].Value.(*ast.MappingNode).Values[0].Value); !ok || s != "x" {
		t.Errorf("ScalarText = %q, %v", s, ok)
	}
}
