package gateway

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strconv"
	"strings"
	"testing"
)

// wsTestRoutes are the route keys of the test WebSocket API.
var wsTestRoutes = map[string]bool{
	"$connect":    true,
	"$disconnect": true,
	"$default":    true,
	"send":        true,
	"join":        true,
	"chat.kind":   true,
	"42":          true,
	"1.50":        true,
	"-1e3":        true,
	"true":        true,
	"false":       true,
	"действие":    true,
	"a\"b":        true,
	"日本":          true,
	"\ufffd":      true,
}

func TestNewRouteSelector(t *testing.T) {
	for _, tc := range []struct {
		expr string
		path []string
		bad  bool
	}{
		{expr: "$request.body.action", path: []string{"action"}},
		{expr: "$request.body.meta.kind", path: []string{"meta", "kind"}},
		{expr: "$request.body.a.b.c.d", path: []string{"a", "b", "c", "d"}},
		{expr: "$request.body.действие", path: []string{"действие"}},
		{expr: "$request.body.$x", path: []string{"$x"}},
		{expr: `\$default`},
		{expr: "$default", bad: true},
		{expr: "", bad: true},
		{expr: "$request.body", bad: true},
		{expr: "$request.body.", bad: true},
		{expr: "$request.body.a.", bad: true},
		{expr: "$request.body..a", bad: true},
		{expr: "$request.header.action", bad: true},
		{expr: "${request.body.a}/${request.body.b}", bad: true},
		{expr: "request.body.action", bad: true},
	} {
		r, err := NewRouteSelector(tc.expr)
		if tc.bad {
			if err == nil {
				t.Errorf("NewRouteSelector(%q): no error", tc.expr)
			}
			continue
		}
		if err != nil {
			t.Errorf("NewRouteSelector(%q): %v", tc.expr, err)
			continue
		}
		if strings.Join(r.path, "|") != strings.Join(tc.path, "|") || (r.path == nil) != (tc.path == nil) {
			t.Errorf("NewRouteSelector(%q) path = %q, want %q", tc.expr, r.path, tc.path)
		}
	}
}

func TestRouteSelectorSelect(t *testing.T) {
	noDefault := map[string]bool{"$connect": true, "$disconnect": true, "send": true}
	deep := strings.Repeat(`{"x":`, 9990) + "1" + strings.Repeat("}", 9990)
	tooDeep := strings.Repeat("[", 10001) + strings.Repeat("]", 10001)
	huge := `{"pad":"` + strings.Repeat("x", 1<<20) + `","arr":[` + strings.Repeat(`{"action":"join"},`, 10000) + `1],"action":"send"}`
	for _, tc := range []struct {
		name, expr, msg string
		routes          map[string]bool // nil means wsTestRoutes
		want            string
		ok              bool
	}{
		{name: "exact", expr: "$request.body.action", msg: `{"action":"send","data":"x"}`, want: "send", ok: true},
		{name: "exact, spaces", expr: "$request.body.action", msg: " \r\n\t{ \"data\" : [1,{\"action\":\"join\"}] , \"action\" : \"send\" } \n", want: "send", ok: true},
		{name: "unknown value", expr: "$request.body.action", msg: `{"action":"leave"}`, want: "$default", ok: true},
		{name: "case matters", expr: "$request.body.action", msg: `{"Action":"send"}`, want: "$default", ok: true},
		{name: "value case matters", expr: "$request.body.action", msg: `{"action":"SEND"}`, want: "$default", ok: true},
		{name: "nested", expr: "$request.body.meta.kind", msg: `{"meta":{"id":1,"kind":"join"},"kind":"send"}`, want: "join", ok: true},
		{name: "nested, parent not object", expr: "$request.body.meta.kind", msg: `{"meta":"join"}`, want: "$default", ok: true},
		{name: "nested, parent array", expr: "$request.body.meta.kind", msg: `{"meta":[{"kind":"join"}]}`, want: "$default", ok: true},
		{name: "dotted key is not a path", expr: "$request.body.chat.kind", msg: `{"chat.kind":"send"}`, want: "$default", ok: true},
		{name: "missing path", expr: "$request.body.action", msg: `{"data":"send"}`, want: "$default", ok: true},
		{name: "empty object", expr: "$request.body.action", msg: `{}`, want: "$default", ok: true},
		{name: "not JSON", expr: "$request.body.action", msg: `hello send`, want: "$default", ok: true},
		{name: "empty message", expr: "$request.body.action", msg: ``, want: "$default", ok: true},
		{name: "truncated", expr: "$request.body.action", msg: `{"action":"send"`, want: "$default", ok: true},
		{name: "trailing garbage", expr: "$request.body.action", msg: `{"action":"send"} x`, want: "$default", ok: true},
		{name: "two values", expr: "$request.body.action", msg: `{"action":"send"}{}`, want: "$default", ok: true},
		{name: "array", expr: "$request.body.action", msg: `[{"action":"send"}]`, want: "$default", ok: true},
		{name: "string", expr: "$request.body.action", msg: `"send"`, want: "$default", ok: true},
		{name: "null message", expr: "$request.body.action", msg: `null`, want: "$default", ok: true},
		{name: "null value", expr: "$request.body.action", msg: `{"action":null}`, want: "$default", ok: true},
		{name: "object value", expr: "$request.body.action", msg: `{"action":{"send":1}}`, want: "$default", ok: true},
		{name: "array value", expr: "$request.body.action", msg: `{"action":["send"]}`, want: "$default", ok: true},
		{name: "empty string value", expr: "$request.body.action", msg: `{"action":""}`, want: "$default", ok: true},
		{name: "no $default", expr: "$request.body.action", msg: `{"action":"leave"}`, routes: noDefault, ok: false},
		{name: "no $default, not JSON", expr: "$request.body.action", msg: `x`, routes: noDefault, ok: false},
		{name: "no $default, match", expr: "$request.body.action", msg: `{"action":"send"}`, routes: noDefault, want: "send", ok: true},
		{name: "literal $default", expr: `\$default`, msg: `{"action":"send"}`, want: "$default", ok: true},
		{name: "literal $default, none", expr: `\$default`, msg: `{"action":"send"}`, routes: noDefault, ok: false},
		{name: "$connect never", expr: "$request.body.action", msg: `{"action":"$connect"}`, want: "$default", ok: true},
		{name: "$disconnect never", expr: "$request.body.action", msg: `{"action":"$disconnect"}`, routes: noDefault, ok: false},
		{name: "$default value", expr: "$request.body.action", msg: `{"action":"$default"}`, want: "$default", ok: true},
		{name: "integer", expr: "$request.body.action", msg: `{"action":42}`, want: "42", ok: true},
		{name: "number as written", expr: "$request.body.action", msg: `{"action":1.50}`, want: "1.50", ok: true},
		{name: "exponent as written", expr: "$request.body.action", msg: `{"action":-1e3}`, want: "-1e3", ok: true},
		{name: "number not normalized", expr: "$request.body.action", msg: `{"action":42.0}`, want: "$default", ok: true},
		{name: "true", expr: "$request.body.action", msg: `{"action":true}`, want: "true", ok: true},
		{name: "false", expr: "$request.body.action", msg: `{"action":false}`, want: "false", ok: true},
		{name: "unicode key", expr: "$request.body.действие", msg: `{"действие":"join"}`, want: "join", ok: true},
		{name: "unicode value", expr: "$request.body.action", msg: `{"action":"日本"}`, want: "日本", ok: true},
		{name: "escaped key", expr: "$request.body.action", msg: `{"\u0061ction":"send"}`, want: "send", ok: true},
		{name: "escaped unicode key", expr: "$request.body.действие", msg: `{"\u0434\u0435\u0439\u0441\u0442\u0432\u0438\u0435":"join"}`, want: "join", ok: true},
		{name: "escaped value", expr: "$request.body.action", msg: `{"action":"s\u0065nd"}`, want: "send", ok: true},
		{name: "escaped quote value", expr: "$request.body.action", msg: `{"action":"a\"b"}`, want: "a\"b", ok: true},
		{name: "escaped solidus key", expr: "$request.body.a/b", msg: `{"a\/b":"send"}`, want: "send", ok: true},
		{name: "key with quote", expr: "$request.body.a\"b", msg: `{"a\"b":"send"}`, want: "send", ok: true},
		{name: "escaped surrogate pair", expr: "$request.body.action", msg: `{"action":"\ud83d\ude00"}`, routes: map[string]bool{"😀": true}, want: "😀", ok: true},
		{name: "invalid UTF-8 value", expr: "$request.body.action", msg: "{\"action\":\"\xff\"}", want: "\ufffd", ok: true},
		{name: "invalid UTF-8 key", expr: "$request.body.\ufffd", msg: "{\"\xff\":\"send\"}", want: "send", ok: true},
		{name: "duplicate keys, last wins", expr: "$request.body.action", msg: `{"action":"send","action":"join"}`, want: "join", ok: true},
		{name: "duplicate keys, last missing value", expr: "$request.body.action", msg: `{"action":"send","action":null}`, want: "$default", ok: true},
		{name: "duplicate keys, escaped", expr: "$request.body.action", msg: `{"action":"send","\u0061ction":"join"}`, want: "join", ok: true},
		{name: "duplicate parents, last wins", expr: "$request.body.meta.kind", msg: `{"meta":{"kind":"send"},"meta":{"id":1}}`, want: "$default", ok: true},
		{name: "duplicate parents, last has it", expr: "$request.body.meta.kind", msg: `{"meta":{"id":1},"meta":{"kind":"send"}}`, want: "send", ok: true},
		{name: "duplicate parent then scalar", expr: "$request.body.meta.kind", msg: `{"meta":{"kind":"send"},"meta":1}`, want: "$default", ok: true},
		{name: "key inside string", expr: "$request.body.action", msg: `{"x":"\"action\":\"send\"","y":1}`, want: "$default", ok: true},
		{name: "brackets inside strings", expr: "$request.body.action", msg: `{"x":"}]{[\\","action":"send"}`, want: "send", ok: true},
		{name: "deep, valid", expr: "$request.body.action", msg: `{"d":` + deep + `,"action":"send"}`, want: "send", ok: true},
		{name: "too deep", expr: "$request.body.action", msg: `{"action":"send","d":` + tooDeep + `}`, want: "$default", ok: true},
		{name: "huge", expr: "$request.body.action", msg: huge, want: "send", ok: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := NewRouteSelector(tc.expr)
			if err != nil {
				t.Fatal(err)
			}
			routes := tc.routes
			if routes == nil {
				routes = wsTestRoutes
			}
			got, ok := r.Select([]byte(tc.msg), routes)
			if got != tc.want || ok != tc.ok {
				t.Errorf("Select = %q, %v; want %q, %v", got, ok, tc.want, tc.ok)
			}
			rg, rok := wsReferenceSelect(r.path, []byte(tc.msg), routes)
			if rg != got || rok != ok {
				t.Errorf("reference = %q, %v; Select = %q, %v", rg, rok, got, ok)
			}
		})
	}
}

// wsReferenceSelect is Select written the obvious way: the message decoded by
// encoding/json into map[string]any (numbers kept as written), then the path
// followed through the maps.
func wsReferenceSelect(path []string, message []byte, routes map[string]bool) (string, bool) {
	if path != nil {
		if v, ok := wsReferenceValue(path, message); ok && v != "" && v != "$connect" && v != "$disconnect" && routes[v] {
			return v, true
		}
	}
	if routes["$default"] {
		return "$default", true
	}
	return "", false
}

func wsReferenceValue(path []string, message []byte) (string, bool) {
	dec := json.NewDecoder(bytes.NewReader(message))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return "", false
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return "", false // more than one value
	}
	cur := m
	for i, key := range path {
		v, ok := cur[key]
		if !ok {
			return "", false
		}
		if i < len(path)-1 {
			if cur, ok = v.(map[string]any); !ok {
				return "", false
			}
			continue
		}
		switch v := v.(type) {
		case string:
			return v, true
		case json.Number:
			return string(v), true
		case bool:
			return strconv.FormatBool(v), true
		}
	}
	return "", false
}

func FuzzRouteSelectorSelect(f *testing.F) {
	for _, seed := range []struct {
		msg, path string
	}{
		{`{"action":"send"}`, "action"},
		{`{"meta":{"kind":"join"}}`, "meta.kind"},
		{`{"meta":{"kind":"join"},"meta":{"x":[1,2,{"kind":3}]}}`, "meta.kind"},
		{`{"a\u0063tion":1.5e3, "action" : true}`, "action"},
		{"{\"\xff\":\"\xfe\"}", "\ufffd"},
		{`{"a":{"b":{"c":null}},"a":{"b":{"c":"x"}}}`, "a.b.c"},
		{`[{"action":"send"}]`, "action"},
		{`{"action":"send"} {}`, "action"},
		{`{"x":"}\"{","action":-0.0}`, "action"},
		{` {"action" : "$connect"} `, "action"},
		{`{"action":"\ud800"}`, "action"},
	} {
		f.Add([]byte(seed.msg), seed.path, true, true)
		f.Add([]byte(seed.msg), seed.path, false, false)
	}
	f.Fuzz(func(t *testing.T, msg []byte, path string, withDefault, addValue bool) {
		r, err := NewRouteSelector("$request.body." + path)
		if err != nil {
			return
		}
		routes := map[string]bool{"$connect": true, "$disconnect": true, "send": true, "1": true, "true": true}
		if withDefault {
			routes["$default"] = true
		}
		if addValue {
			if v, ok := wsReferenceValue(r.path, msg); ok {
				routes[v] = true
			}
		}
		got, ok := r.Select(msg, routes)
		want, wok := wsReferenceSelect(r.path, msg, routes)
		if got != want || ok != wok {
			t.Fatalf("Select(%q, path %q) = %q, %v; reference %q, %v", msg, path, got, ok, want, wok)
		}
	})
}

func BenchmarkSelect(b *testing.B) {
	r, err := NewRouteSelector("$request.body.action")
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct{ name, msg string }{
		{"match", `{"action":"send","data":{"text":"hello, world","to":["ann","bob"]}}`},
		{"default", `{"data":{"text":"hello, world","to":["ann","bob"]},"action":"ping"}`},
	} {
		msg := []byte(bc.msg)
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(msg)))
			for b.Loop() {
				if _, ok := r.Select(msg, wsTestRoutes); !ok {
					b.Fatal("no route")
				}
			}
		})
	}
}
