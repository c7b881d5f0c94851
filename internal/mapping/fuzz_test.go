package mapping

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

func FuzzParseRequestValue(f *testing.F) {
	for _, s := range []string{
		"", "v2", "$request.header.x-id", "$request.querystring.q", "$request.body.items[0].name",
		"$request.body[1]", "$request.path", "$request.path.id", "$context.authorizer.claims.sub",
		"$stageVariables.host", "Bearer ${request.header.token}", "${stageVariables.prefix}-${context.requestId}",
		"$response.header.x", "${response.body.a.b}", "a$b", "${", "${}", "${$request.header.a}", "$",
		"x${request.body.a[0", "$request.body.a[99999999999]", "é${context.a}é",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, request := range []bool{true, false} {
			e, err := parseValue(s, request)
			if err != nil {
				if err.Error() == "" {
					t.Fatalf("empty error for %q", s)
				}
				continue
			}
			if e.String() != s {
				t.Fatalf("String() = %q, want %q", e.String(), s)
			}
			for _, ref := range e.Refs() {
				isResponse := ref.Kind == ResponseHeader || ref.Kind == ResponseBody
				isRequest := ref.Kind >= RequestHeader && ref.Kind <= RequestPathParam
				if request && isResponse || !request && isRequest {
					t.Fatalf("%q (request %v) reads %v", s, request, ref)
				}
				if ref.Kind < RequestHeader || ref.Kind > ResponseBody {
					t.Fatalf("%q has a reference of kind %d", s, ref.Kind)
				}
			}
			e.Eval(everything{})
			if e.Eval(nil) != e.Eval(values{}) {
				t.Fatalf("a nil source and an empty one differ for %q", s)
			}
			if len(e.Refs()) == 0 && e.Eval(nil) != s {
				t.Fatalf("literal %q evaluates to %q", s, e.Eval(nil))
			}
		}
	})
}

func FuzzParseKey(f *testing.F) {
	for _, s := range []string{
		"append:header.x-a", "overwrite:querystring.q", "remove:header.x", "overwrite:path",
		"overwrite:statuscode", "overwrite:header.Host", "append:header.X-Amzn-Trace-Id", "remove:path",
		"append:querystring.a=b", ":", "overwrite:", "overwrite:header.", "overwrite:path.x",
		"append:querystring.größe", "append:header.ACCESS-CONTROL-x",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, request := range []bool{true, false} {
			k, err := parseKey(s, request)
			if err != nil {
				if err.Error() == "" {
					t.Fatalf("empty error for %q", s)
				}
				continue
			}
			again, err := parseKey(k.String(), request)
			if err != nil || again != k {
				t.Fatalf("%q parses to %+v, whose String %q parses to %+v, %v", s, k, k.String(), again, err)
			}
			switch k.Location {
			case Header:
				if k.Name != strings.ToLower(k.Name) || reservedHeader(k.Name) || k.Name == "" {
					t.Fatalf("%q gives header %q", s, k.Name)
				}
			case QueryString:
				if !request || k.Name == "" {
					t.Fatalf("%q (request %v) gives %+v", s, request, k)
				}
			case Path, StatusCode:
				if k.Action != Overwrite || k.Name != "" || (k.Location == Path) != request {
					t.Fatalf("%q (request %v) gives %+v", s, request, k)
				}
			default:
				t.Fatalf("%q gives location %d", s, k.Location)
			}
		}
	})
}

// fullSource is a TemplateSource with a value for everything.
type fullSource struct{ body []byte }

func (s fullSource) Context(name string) (string, bool)       { return "c:" + name, true }
func (s fullSource) StageVariable(name string) (string, bool) { return "s:" + name, true }
func (s fullSource) Param(name string) (string, bool)         { return "p:" + name, true }
func (s fullSource) Body() []byte                             { return s.body }

func FuzzParseTemplate(f *testing.F) {
	for _, s := range []string{
		`{"ok": true}`, `{"id": "$context.requestId", "ip": "${context.identity.sourceIp}"}`,
		`$!{context.x} $!context.y $stageVariables.env ${stageVariables.env}`,
		`$input.body ${input.body} $input.params('id') ${input.params("q")} $input.json('$.a[0].b')`,
		`$input.path('$') ${input.json('$[1]')}`, `$util.escapeJavaScript($x) $5 $ $$ $!`,
		"#if($a)\n#end", "  #set($x = 1)", "${context.a", "$input.params(", `$input.json('a')`,
		"${foo}", "${\n}", "#{else}", "$input.params( 'a' )",
	} {
		f.Add(s, `{"a":[{"b":1}],"s":"x"}`)
	}
	f.Add(`$input.json('$.a')`, `not json`)
	f.Fuzz(func(t *testing.T, s, body string) {
		tpl, err := ParseTemplate(s)
		if err != nil {
			if err.Error() == "" {
				t.Fatalf("empty error for %q", s)
			}
			return
		}
		var b bytes.Buffer
		tpl.Execute(&b, fullSource{body: []byte(body)})
		tpl.Execute(&b, nil)
		if !strings.Contains(s, "$") {
			b.Reset()
			tpl.Execute(&b, fullSource{body: []byte(body)})
			if b.String() != s {
				t.Fatalf("template without $ %q gives %q", s, b.String())
			}
		}
	})
}

// FuzzBodyValue checks BodyValue against encoding/json, which decodes the whole document.
func FuzzBodyValue(f *testing.F) {
	for _, tc := range []struct{ body, path string }{
		{`{"a":{"b":[1,2,{"c":"d"}]}}`, "a.b[2].c"},
		{`{"a":1,"a":2}`, "a"},
		{`[[1],[2,[3]]]`, "[1][1][0]"},
		{`{"a\u0062":"\ud83d\ude00"}`, "ab"},
		{`{"a":null}`, "a"},
		{` {"x" : { "y" : [ true , false ] } } `, "x.y"},
		{`{"a":"x\"}"}`, "a"},
		{`{"a":1} x`, "a"},
		{`"s"`, ""},
	} {
		f.Add([]byte(tc.body), tc.path)
	}
	f.Fuzz(func(t *testing.T, body []byte, path string) {
		if len(body) > 1<<10 || len(path) > 128 {
			// Long inputs add nothing the scanner has not met in short ones, and the fuzzer takes
			// a minute to shorten each one it finds interesting; TestBodyValueDocuments covers the
			// 100 KB cut.
			t.Skip()
		}
		got, ok := BodyValue(body, path)
		want, wantOK := referenceValue(body, path)
		if ok != wantOK {
			t.Fatalf("BodyValue(%q, %q) = %q, %v; encoding/json finds %v, %v", body, path, got, ok, want, wantOK)
		}
		if !ok {
			if got != "" {
				t.Fatalf("BodyValue(%q, %q) = %q, false", body, path, got)
			}
			return
		}
		switch want := want.(type) {
		case string:
			if got != want {
				t.Fatalf("BodyValue(%q, %q) = %q, want %q", body, path, got, want)
			}
		case json.Number:
			if got != string(want) {
				t.Fatalf("BodyValue(%q, %q) = %q, want %q", body, path, got, want)
			}
		case bool:
			if got != map[bool]string{true: "true", false: "false"}[want] {
				t.Fatalf("BodyValue(%q, %q) = %q, want %v", body, path, got, want)
			}
		default:
			back, err := decodeNumbers([]byte(got))
			if err != nil || !reflect.DeepEqual(back, want) {
				t.Fatalf("BodyValue(%q, %q) = %q (%v), want %v", body, path, got, err, want)
			}
			var c bytes.Buffer
			if json.Compact(&c, []byte(got)) != nil || c.String() != got {
				t.Fatalf("BodyValue(%q, %q) = %q, which is not compact", body, path, got)
			}
		}
	})
}

// referenceValue finds the value at path by decoding the whole (cut) body with encoding/json.
func referenceValue(body []byte, path string) (any, bool) {
	if len(body) > MaxBodyBytes {
		body = body[:MaxBodyBytes]
	}
	v, err := decodeNumbers(body)
	if err != nil {
		return nil, false
	}
	for i := 0; i < len(path); {
		name, index, isIndex, next, ok := nextStep(path, i)
		if !ok {
			return nil, false
		}
		i = next
		if isIndex {
			a, ok := v.([]any)
			if !ok || index >= len(a) {
				return nil, false
			}
			v = a[index]
		} else {
			o, ok := v.(map[string]any)
			if !ok {
				return nil, false
			}
			if v, ok = o[name]; !ok {
				return nil, false
			}
		}
	}
	return v, v != nil
}

func decodeNumbers(data []byte) (any, error) {
	if !json.Valid(data) {
		return nil, &json.SyntaxError{}
	}
	d := json.NewDecoder(bytes.NewReader(data))
	d.UseNumber()
	var v any
	err := d.Decode(&v)
	return v, err
}
