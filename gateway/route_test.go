package gateway

import (
	"errors"
	"maps"
	"net/url"
	"strings"
	"testing"
)

func TestNewRouteTableRejects(t *testing.T) {
	tests := []struct {
		name    string
		keys    []string
		wantKey string // quoted in the error
		wantMsg string // part of the error
	}{
		{"lower-case method", []string{"get /a"}, "get /a", `method "get"`},
		{"unknown method", []string{"TRACE /a"}, "TRACE /a", "not one of ANY"},
		{"no path", []string{"GET"}, "GET", "METHOD /path"},
		{"empty key", []string{""}, "", "METHOD /path"},
		{"two spaces", []string{"GET  /a"}, "GET  /a", `start with "/"`},
		{"path without slash", []string{"GET a"}, "GET a", `start with "/"`},
		{"trailing slash", []string{"GET /a/"}, "GET /a/", `end with "/"`},
		{"empty segment", []string{"GET /a//b"}, "GET /a//b", "empty path segment"},
		{"space in path", []string{"GET /a b"}, "GET /a b", `character ' '`},
		{"percent in literal", []string{"GET /a%20b"}, "GET /a%20b", `character '%'`},
		{"query in literal", []string{"GET /a?b"}, "GET /a?b", `character '?'`},
		{"brace inside literal", []string{"GET /a{b}"}, "GET /a{b}", `character '{'`},
		{"partial parameter", []string{"GET /{a}b"}, "GET /{a}b", "whole segment"},
		{"unclosed parameter", []string{"GET /{a"}, "GET /{a", "whole segment"},
		{"empty parameter name", []string{"GET /{}"}, "GET /{}", "parameter name"},
		{"greedy without name", []string{"GET /{+}"}, "GET /{+}", "parameter name"},
		{"bad parameter name", []string{"GET /{a b}"}, "GET /{a b}", "parameter name"},
		{"nested braces", []string{"GET /{{a}}"}, "GET /{{a}}", "parameter name"},
		{"greedy not last", []string{"GET /{proxy+}/a"}, "GET /{proxy+}/a", "last segment"},
		{"repeated parameter name", []string{"GET /{a}/{a}"}, "GET /{a}/{a}", `"a" used twice`},
		{"repeated greedy name", []string{"GET /{a}/{a+}"}, "GET /{a}/{a+}", `"a" used twice`},
		{"duplicate key", []string{"GET /a", "GET /a"}, "GET /a", "duplicate"},
		{"duplicate default", []string{"$default", "$default"}, "$default", "duplicate"},
		{"other dollar key", []string{"$connect"}, "$connect", "METHOD /path"},
		{"parameter names only differ", []string{"GET /a/{x}", "GET /a/{y}"}, "GET /a/{y}", `conflicts with "GET /a/{x}"`},
		{"greedy names only differ", []string{"ANY /a/{x+}", "ANY /a/{y+}"}, "ANY /a/{y+}", `conflicts with "ANY /a/{x+}"`},
		{"deep conflict", []string{"PUT /a/{x}/b/{y}", "PUT /a/{p}/b/{q}"}, "PUT /a/{p}/b/{q}", "conflicts"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			table, err := NewRouteTable(tt.keys)
			if err == nil {
				t.Fatalf("NewRouteTable(%q) = %v, want an error", tt.keys, table)
			}
			if !errors.Is(err, ErrInvalidRouteKey) {
				t.Errorf("error %v does not wrap ErrInvalidRouteKey", err)
			}
			if q := `"` + tt.wantKey + `"`; !strings.Contains(err.Error(), q) {
				t.Errorf("error %q does not name key %s", err, q)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("error %q does not contain %q", err, tt.wantMsg)
			}
		})
	}
}

func TestNewRouteTableAccepts(t *testing.T) {
	keys := []string{
		"$default",
		"GET /",
		"ANY /",
		"GET /a/{x}", // same pattern, other methods: no conflict
		"POST /a/{y}",
		"ANY /a/{z}",
		"GET /a/{x}/{proxy+}",
		"GET /a/{proxy+}",
		"HEAD /h", "OPTIONS /h", "PATCH /h", "PUT /h", "DELETE /h",
		"GET /{v.1_-A}",
		"GET /a-b.c_d~e:f@g+h!i$j&k'l(m)n*o,p;q=r",
		"GET /café",
	}
	table, err := NewRouteTable(keys)
	if err != nil {
		t.Fatal(err)
	}
	if table.Len() != len(keys) {
		t.Errorf("Len() = %d, want %d", table.Len(), len(keys))
	}
	for i, k := range keys {
		if table.Key(i) != k {
			t.Errorf("Key(%d) = %q, want %q", i, table.Key(i), k)
		}
	}
	empty, err := NewRouteTable(nil)
	if err != nil {
		t.Fatal(err)
	}
	if i, p, ok := empty.Match("GET", "/"); ok {
		t.Errorf("empty table matched: %d %v", i, p)
	}
}

func TestNewRouteTableCopiesKeys(t *testing.T) {
	keys := []string{"GET /a"}
	table, err := NewRouteTable(keys)
	if err != nil {
		t.Fatal(err)
	}
	keys[0] = "POST /b"
	if got := table.Key(0); got != "GET /a" {
		t.Errorf("Key(0) = %q after caller changed its slice", got)
	}
}

// precedenceKeys exercises every precedence rule at once; TestRouteMatch and
// FuzzRouteMatch share it.
var precedenceKeys = []string{
	"GET /items/{id}",
	"GET /items/{proxy+}",
	"GET /pets/{proxy+}",
	"ANY /{proxy+}",
	"GET /test/{id}",
	"GET /pets/dog/1",
	"GET /pets/dog/{id}",
	"GET /pets/{kind}/2",
	"GET /pets/{name}",
	"ANY /pets/dog",
	"POST /pets",
	"GET /",
	"GET /hello",
	"HEAD /head",
	"OPTIONS /opts/{x}",
	"GET /a/{b}/c/{rest+}",
	"GET /a/{b}/{proxy+}",
	"PUT /a/{b}/{c}",
	"DELETE /greedy/{g+}",
	"ANY /greedy/{g+}",
	"GET /café",
	"GET /Case",
}

func TestRouteMatch(t *testing.T) {
	withDefault := append([]string{"$default"}, precedenceKeys...)
	tests := []struct {
		name       string
		keys       []string // precedenceKeys when nil
		method     string
		path       string
		wantKey    string // "" means no match
		wantParams map[string]string
	}{
		// Reference §14 checklist 1–5.
		{"1 var beats greedy", nil, "GET", "/items/7", "GET /items/{id}", map[string]string{"id": "7"}},
		{"2 specific greedy beats ANY greedy", nil, "GET", "/pets/cat/1", "GET /pets/{proxy+}", map[string]string{"proxy": "cat/1"}},
		{"3 undefined method falls to ANY greedy", nil, "POST", "/test/5", "ANY /{proxy+}", map[string]string{"proxy": "test/5"}},
		{"4 unmatched goes to $default", []string{"GET /a", "$default"}, "GET", "/b", "$default", nil},
		{"5 unmatched without $default", []string{"GET /a"}, "GET", "/b", "", nil},

		{"literal beats var", nil, "GET", "/pets/dog/1", "GET /pets/dog/1", nil},
		{"literal prefix beats var prefix", nil, "GET", "/pets/dog/2", "GET /pets/dog/{id}", map[string]string{"id": "2"}},
		{"var then literal", nil, "GET", "/pets/cat/2", "GET /pets/{kind}/2", map[string]string{"kind": "cat"}},
		{"ANY literal beats GET var", nil, "GET", "/pets/dog", "ANY /pets/dog", nil},
		{"GET var where ANY literal does not match", nil, "GET", "/pets/cat", "GET /pets/{name}", map[string]string{"name": "cat"}},
		{"method literal", nil, "POST", "/pets", "POST /pets", nil},
		{"method not defined, greedy catches", nil, "DELETE", "/pets", "ANY /{proxy+}", map[string]string{"proxy": "pets"}},
		{"greedy var beats greedy later", nil, "GET", "/a/1/c/x/y", "GET /a/{b}/c/{rest+}", map[string]string{"b": "1", "rest": "x/y"}},
		{"greedy at var position", nil, "GET", "/a/1/d/x", "GET /a/{b}/{proxy+}", map[string]string{"b": "1", "proxy": "d/x"}},
		{"full var match beats greedy literal", nil, "PUT", "/a/1/c", "PUT /a/{b}/{c}", map[string]string{"b": "1", "c": "c"}},
		{"greedy one segment", nil, "GET", "/a/1/c/z", "GET /a/{b}/c/{rest+}", map[string]string{"b": "1", "rest": "z"}},
		{"greedy needs a segment", nil, "GET", "/a/1/c", "GET /a/{b}/{proxy+}", map[string]string{"b": "1", "proxy": "c"}},
		{"method greedy beats ANY greedy", nil, "DELETE", "/greedy/x", "DELETE /greedy/{g+}", map[string]string{"g": "x"}},
		{"ANY greedy for other methods", nil, "PATCH", "/greedy/x", "ANY /greedy/{g+}", map[string]string{"g": "x"}},
		{"greedy keeps inner slashes", nil, "GET", "/pets/a//b", "GET /pets/{proxy+}", map[string]string{"proxy": "a//b"}},

		{"root", nil, "GET", "/", "GET /", nil},
		{"root other method, no greedy for /", nil, "POST", "/", "", nil},
		{"root other method with default", withDefault, "POST", "/", "$default", nil},
		{"root double slash", nil, "GET", "//", "GET /", nil},
		{"trailing slash", nil, "GET", "/hello/", "GET /hello", nil},
		{"trailing slash on var", nil, "GET", "/items/7/", "GET /items/{id}", map[string]string{"id": "7"}},
		{"two trailing slashes", nil, "GET", "/hello//", "ANY /{proxy+}", map[string]string{"proxy": "hello/"}},
		{"case-sensitive", nil, "GET", "/HELLO", "ANY /{proxy+}", map[string]string{"proxy": "HELLO"}},
		{"case-sensitive literal", nil, "GET", "/Case", "GET /Case", nil},
		{"empty segment is not a var", nil, "GET", "/items//x", "GET /items/{proxy+}", map[string]string{"proxy": "/x"}},
		{"empty var segment", nil, "GET", "/test//", "ANY /{proxy+}", map[string]string{"proxy": "test/"}},

		{"HEAD matches HEAD route", nil, "HEAD", "/head", "HEAD /head", nil},
		{"HEAD does not fall back to GET", nil, "HEAD", "/hello", "ANY /{proxy+}", map[string]string{"proxy": "hello"}},
		{"HEAD without ANY", []string{"GET /hello"}, "HEAD", "/hello", "", nil},
		{"OPTIONS route", nil, "OPTIONS", "/opts/1", "OPTIONS /opts/{x}", map[string]string{"x": "1"}},
		{"OPTIONS not defined", []string{"GET /x", "$default"}, "OPTIONS", "/x", "$default", nil},
		{"unnamed method only ANY", nil, "TRACE", "/hello", "ANY /{proxy+}", map[string]string{"proxy": "hello"}},
		{"lower-case method only ANY", nil, "get", "/pets/dog/1", "ANY /{proxy+}", map[string]string{"proxy": "pets/dog/1"}},

		{"var is decoded", nil, "GET", "/items/a%20b", "GET /items/{id}", map[string]string{"id": "a b"}},
		{"var plus stays plus", nil, "GET", "/items/a+b", "GET /items/{id}", map[string]string{"id": "a+b"}},
		{"encoded slash stays in var", nil, "GET", "/items/a%2Fb", "GET /items/{id}", map[string]string{"id": "a/b"}},
		{"invalid escape kept raw", nil, "GET", "/items/a%zz", "GET /items/{id}", map[string]string{"id": "a%zz"}},
		{"greedy is decoded", nil, "GET", "/pets/a%20b/c%2Fd", "GET /pets/{proxy+}", map[string]string{"proxy": "a b/c/d"}},
		{"encoded literal", nil, "GET", "/caf%C3%A9", "GET /café", nil},
		{"raw unicode literal", nil, "GET", "/café", "GET /café", nil},
		{"encoded literal char", nil, "GET", "/hell%6F", "GET /hello", nil},

		{"no leading slash", withDefault, "GET", "hello", "$default", nil},
		{"empty path", []string{"GET /"}, "GET", "", "", nil},
		{"empty table", []string{}, "GET", "/", "", nil},
		{"default only", []string{"$default"}, "DELETE", "/x/y", "$default", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			keys := tt.keys
			if keys == nil {
				keys = precedenceKeys
			}
			table, err := NewRouteTable(keys)
			if err != nil {
				t.Fatal(err)
			}
			i, params, ok := table.Match(tt.method, tt.path)
			gotKey := ""
			if ok {
				gotKey = keys[i]
			}
			if gotKey != tt.wantKey {
				t.Fatalf("Match(%q, %q) = %q, want %q", tt.method, tt.path, gotKey, tt.wantKey)
			}
			if !maps.Equal(params, tt.wantParams) || (params == nil) != (tt.wantParams == nil) {
				t.Errorf("params = %#v, want %#v", params, tt.wantParams)
			}
			ri, rparams, rok := referenceMatch(keys, tt.method, tt.path)
			if ri != i || rok != ok || !maps.Equal(rparams, params) {
				t.Errorf("referenceMatch = %d %v %v, table = %d %v %v", ri, rparams, rok, i, params, ok)
			}
		})
	}
}

// TestRouteMatchExhaustive compares Match with referenceMatch over every
// combination of a small alphabet of path segments.
func TestRouteMatchExhaustive(t *testing.T) {
	keys := append([]string{"$default"}, precedenceKeys...)
	keys = append(keys, "GET /{a}/{b}", "POST /{a}/dog/{c+}", "GET /x/{proxy+}")
	table, err := NewRouteTable(keys)
	if err != nil {
		t.Fatal(err)
	}
	segs := []string{"pets", "dog", "1", "a", "c", "", "items", "x", "%31"}
	var paths []string
	var gen func(prefix string, depth int)
	gen = func(prefix string, depth int) {
		paths = append(paths, prefix, prefix+"/")
		if depth == 0 {
			return
		}
		for _, s := range segs {
			gen(prefix+"/"+s, depth-1)
		}
	}
	gen("", 4)
	methods := []string{"GET", "POST", "PUT", "DELETE", "HEAD", "TRACE"}
	for _, m := range methods {
		for _, p := range paths {
			i, params, ok := table.Match(m, p)
			ri, rparams, rok := referenceMatch(keys, m, p)
			if i != ri || ok != rok || !maps.Equal(params, rparams) {
				t.Fatalf("Match(%q, %q) = %d %v %v, reference %d %v %v", m, p, i, params, ok, ri, rparams, rok)
			}
		}
	}
}

func TestRouteMatchAllocations(t *testing.T) {
	table, err := NewRouteTable(append([]string{"$default"}, precedenceKeys...))
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ method, path string }{
		{"GET", "/pets/dog/1"},
		{"GET", "/hello/"},
		{"POST", "/"},
		{"HEAD", "/head"},
		{"PATCH", "/"}, // no route: $default
	} {
		if n := testing.AllocsPerRun(100, func() { table.Match(tt.method, tt.path) }); n != 0 {
			t.Errorf("Match(%q, %q) allocates %.0f times, want 0", tt.method, tt.path, n)
		}
	}
}

func BenchmarkRouteMatch(b *testing.B) {
	table, err := NewRouteTable(append([]string{"$default"}, precedenceKeys...))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		table.Match("GET", "/pets/dog/1")
		table.Match("GET", "/items/7")
		table.Match("POST", "/test/5")
	}
}

func FuzzRouteMatch(f *testing.F) {
	seeds := []struct{ key, method, path string }{
		{"GET /items/{id}", "GET", "/items/7"},
		{"$default", "POST", "/test/5"},
		{"GET /x/{y}/{z+}", "GET", "/x/1/2/3"},
		{"ANY /", "DELETE", "/"},
		{"HEAD /hello", "HEAD", "/hello/"},
		{"GET /{a}", "GET", "//"},
		{"OPTIONS /a/{b}", "OPTIONS", "/a/%20"},
		{"GET /café", "GET", "/caf%C3%A9"},
		{"bad key", "get", "no-slash"},
		{"GET /pets/{proxy+}", "GET", "/pets/a%zz/b//"},
	}
	for _, s := range seeds {
		f.Add(s.key, s.method, s.path)
	}
	f.Fuzz(func(t *testing.T, key, method, path string) {
		keys := append(append([]string(nil), precedenceKeys...), key)
		table, err := NewRouteTable(keys)
		if err != nil {
			if !errors.Is(err, ErrInvalidRouteKey) {
				t.Fatalf("error %v does not wrap ErrInvalidRouteKey", err)
			}
			keys = precedenceKeys
			if table, err = NewRouteTable(keys); err != nil {
				t.Fatal(err)
			}
		}
		i, params, ok := table.Match(method, path)
		if ok && (i < 0 || i >= len(keys)) {
			t.Fatalf("Match(%q, %q) index %d out of range", method, path, i)
		}
		if !ok && params != nil {
			t.Fatalf("no match but params %v", params)
		}
		ri, rparams, rok := referenceMatch(keys, method, path)
		if i != ri || ok != rok || !maps.Equal(params, rparams) {
			t.Fatalf("keys %q: Match(%q, %q) = %d %v %v, reference %d %v %v",
				keys, method, path, i, params, ok, ri, rparams, rok)
		}
		if strings.HasPrefix(path, "/") && !strings.HasSuffix(path, "/") {
			j, _, ok2 := table.Match(method, path+"/")
			if j != i || ok2 != ok {
				t.Fatalf("Match(%q, %q) = %d, but with a trailing slash %d", method, path, i, j)
			}
		}
	})
}

// referenceMatch is a slow, obviously-correct restatement of the precedence rules
// documented on RouteTable: score every route that matches, keep the best.
func referenceMatch(keys []string, method, path string) (int, map[string]string, bool) {
	defaultIndex := -1
	for i, k := range keys {
		if k == "$default" {
			defaultIndex = i
		}
	}
	if !strings.HasPrefix(path, "/") {
		return defaultIndex, nil, defaultIndex >= 0
	}
	p := path
	if len(p) > 1 && strings.HasSuffix(p, "/") {
		p = p[:len(p)-1]
	}
	var segs []string
	if p != "/" {
		segs = strings.Split(p[1:], "/")
	}
	decode := func(s string) string {
		if d, err := url.PathUnescape(s); err == nil {
			return d
		}
		return s
	}

	type rank struct {
		greedy bool
		kinds  []int // 0 literal, 1 var, 2 greedy
		isAny  bool
	}
	less := func(a, b rank) bool {
		if a.greedy != b.greedy {
			return !a.greedy
		}
		for i := 0; i < len(a.kinds) && i < len(b.kinds); i++ {
			if a.kinds[i] != b.kinds[i] {
				return a.kinds[i] < b.kinds[i]
			}
		}
		return !a.isAny && b.isAny
	}

	best, bestParams := -1, map[string]string(nil)
	var bestRank rank
	for i, k := range keys {
		m, pattern, found := strings.Cut(k, " ")
		if !found || (m != method && m != "ANY") {
			continue
		}
		var pats []string
		if pattern != "/" {
			pats = strings.Split(pattern[1:], "/")
		}
		r := rank{isAny: m == "ANY"}
		params := map[string]string{}
		matched := true
		for j, ps := range pats {
			switch {
			case strings.HasSuffix(ps, "+}"):
				rest := strings.Join(segs[min(j, len(segs)):], "/")
				if rest == "" {
					matched = false
				}
				r.greedy = true
				r.kinds = append(r.kinds, 2)
				params[ps[1:len(ps)-2]] = decode(rest)
			case strings.HasPrefix(ps, "{"):
				if j >= len(segs) || segs[j] == "" {
					matched = false
					break
				}
				r.kinds = append(r.kinds, 1)
				params[ps[1:len(ps)-1]] = decode(segs[j])
			default:
				if j >= len(segs) || segs[j] == "" || (segs[j] != ps && decode(segs[j]) != ps) {
					matched = false
				}
				r.kinds = append(r.kinds, 0)
			}
			if !matched {
				break
			}
		}
		if !matched || (!r.greedy && len(pats) != len(segs)) {
			continue
		}
		if best < 0 || less(r, bestRank) {
			best, bestRank, bestParams = i, r, params
		}
	}
	if best < 0 {
		return defaultIndex, nil, defaultIndex >= 0
	}
	if len(bestParams) == 0 {
		bestParams = nil
	}
	return best, bestParams, true
}
