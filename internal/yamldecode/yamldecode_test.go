package yamldecode

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

var (
	big   = Format{Noun: "stack file", MaxBytes: 1 << 20, SizeText: "1 MiB", MaxFlowDepth: 4, MaxKeysPerMapping: 3}
	plain = Format{Noun: "manifest", MaxBytes: 64, SizeText: "64 bytes", MaxFlowDepth: 2, MaxBlockDepth: 3, Plain: true}
)

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		f    Format
		in   string
		want string
	}{
		{"too large", plain, strings.Repeat("#", 65), "f.yaml:1:1: the manifest is larger than the limit of 64 bytes (64 bytes)"},
		{"not UTF-8", big, "a: 1\nb: \xff\n", "f.yaml:2:4: the stack file is not UTF-8 text"},
		{"NUL", big, "a: x\x00\n", "f.yaml:1:5: the stack file contains a NUL byte"},
		{"flow by lines", big, "a: [[[[[x]]]]]\n", "f.yaml:1:8: [ and { nested more than 4 deep"},
		{"keys by lines", big, "a: 1\nb: 1\n# c\nc: 1\nd: 1\n", "f.yaml:5:1: more than 3 keys in one mapping"},
		{"flow by tokens", plain, "a: [[[x]]]\n", "f.yaml:1:6: [ and { nested more than 2 deep"},
		{"brackets in strings are no flow", plain, "a: \"[[[x\"\n", ""},
		{"block depth", plain, "a:\n b:\n  c:\n   d: 1\n", "f.yaml:4:4: nested more than 3 levels deep"},
		{"anchor", plain, "a: &x 1\n", "f.yaml:1:4: YAML anchors (&) and aliases (*) are not supported in a manifest; write the value out"},
		{"tag", plain, "a: !!str 1\n", "f.yaml:1:4: YAML tags (!!str) are not supported in a manifest; quote the value to make it a string"},
		{"merge key", plain, "<<: {a: 1}\n", "f.yaml:1:1: merge keys (<<) are not supported in a manifest"},
		{"anchors in a big format", big, "a: &x 1\nb: *x\n", ""},
		{"two documents", big, "a: 1\n---\nb: 2\n", "f.yaml:3:1: a stack file holds one YAML document; remove this second one"},
		{"syntax", big, "a: [x\n", "f.yaml:1:4: invalid YAML: "},
		{"duplicate key", big, "a: 1\na: 2\n", `f.yaml:2:1: invalid YAML: mapping key "a" already defined at line 1, column 1`},
		{"byte order mark and directive", big, "\xef\xbb\xbf%YAML 1.2\n---\na: 1\n", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("f.yaml", []byte(tc.in), tc.f)
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var e *Error
			if !errors.As(err, &e) || e.Line < 1 || !strings.HasPrefix(err.Error(), tc.want) {
				t.Errorf("got %v, want %s…", err, tc.want)
			}
		})
	}
}

func decoder(t *testing.T, doc string) *Decoder {
	f := big
	f.MaxKeysPerMapping = 100
	t.Helper()
	root, err := Parse("f.yaml", []byte(doc), f)
	if err != nil {
		t.Fatal(err)
	}
	return New("f.yaml", "", root)
}

func TestReaders(t *testing.T) {
	d := decoder(t, `
base: &b {s: x, n: 3}
m:
  <<: *b
  n: 4
  f: 1.5
  on: true
  dur: 90s
  l: [a, !!str 1]
  t: 08080
`)
	f, err := d.Fields(nil, d.Root(), "base", "m")
	if err != nil {
		t.Fatal(err)
	}
	m, err := d.Fields([]string{"m"}, f["m"].Val, "s", "n", "f", "on", "dur", "l", "t")
	if err != nil {
		t.Fatal(err)
	}
	p := func(k string) []string { return []string{"m", k} }
	s, _ := d.Str(p("s"), m["s"].Val)
	n, _ := d.Integer(p("n"), m["n"].Val, "")
	x, _ := d.Number(p("f"), m["f"].Val, "")
	on, _ := d.Bool(p("on"), m["on"].Val)
	dur, _ := d.Duration(p("dur"), m["dur"].Val)
	l, _ := d.StrList(p("l"), m["l"].Val)
	text, _ := d.Text(p("t"), m["t"].Val)
	if s != "x" || n != 4 || x != 1.5 || !on || dur != 90*time.Second || !reflect.DeepEqual(l, []string{"a", "1"}) || text != "08080" {
		t.Errorf("got %q %d %v %v %v %q %q", s, n, x, on, dur, l, text)
	}
	if _, err := d.Str(p("n"), m["n"].Val); err == nil || err.Error() != `f.yaml:5:6: m.n: want a string, got the number 4 (quote it: "4")` {
		t.Errorf("Str of a number: %v", err)
	}
	if _, err := d.Duration(p("n"), m["n"].Val); err == nil || err.Error() != `f.yaml:5:6: m.n: 4 is not a duration: give a unit, e.g. "4s" or "4ms"` {
		t.Errorf("Duration of a number: %v", err)
	}
	if _, err := d.Fields([]string{"m"}, f["m"].Val, "s", "n"); err == nil ||
		err.Error() != `f.yaml:6:3: m.f: unknown key (did you mean "s"?); known keys here: s, n` {
		t.Errorf("unknown key: %v", err)
	}
	if _, err := d.Required(m, f["m"].KeyAt, []string{"m"}, "zz", "a %s", "thing"); err == nil || err.Error() != "f.yaml:3:1: m.zz: required: a thing" {
		t.Errorf("required: %v", err)
	}
}

func TestLocate(t *testing.T) {
	d := decoder(t, `
apis:
  web:
    routes:
      GET /x: {function: hello}
    items:
      - a
      - b
`)
	d.Shorthand = func(found, rest []string) []string {
		if len(rest) == 2 && rest[0] == "integration" && rest[1] == "target" {
			return []string{"function"}
		}
		return nil
	}
	for _, tc := range []struct {
		path  []string
		atKey bool
		line  int
		col   int
		named string
	}{
		{[]string{"apis", "web", "items", Index(1)}, false, 8, 9, "apis.web.items[1]"},
		{[]string{"apis", "web", "routes", "GET /x"}, true, 5, 7, `apis.web.routes["GET /x"]`},
		{[]string{"apis", "web", "routes", "GET /x", "integration", "target"}, false, 5, 26, `apis.web.routes["GET /x"].function`},
		{[]string{"apis", "web", "stages", "$default"}, false, 3, 3, `apis.web.stages["$default"]`}, // a default: at the deepest key written
		{[]string{"nope"}, false, 1, 1, "nope"},
	} {
		line, col, named := d.Locate(tc.path, tc.atKey)
		if line != tc.line || col != tc.col || FormatPath(named) != tc.named {
			t.Errorf("%q: got %d:%d %s, want %d:%d %s", tc.path, line, col, FormatPath(named), tc.line, tc.col, tc.named)
		}
	}
}

func TestErrorFormat(t *testing.T) {
	for _, tc := range []struct {
		err  Error
		want string
	}{
		{Error{File: "g.yaml", Line: 7, Column: 5, Path: "a.b", Msg: "bad"}, "g.yaml:7:5: a.b: bad"},
		{Error{File: "g.yaml", Path: "a", Msg: "bad"}, "g.yaml: a: bad"},
		{Error{Msg: "m"}, "m"},
	} {
		if got := tc.err.Error(); got != tc.want {
			t.Errorf("got %q, want %q", got, tc.want)
		}
	}
}
