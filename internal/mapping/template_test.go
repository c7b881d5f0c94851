package mapping

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

// templateSource is a TemplateSource made of maps.
type templateSource struct {
	context, stage, params map[string]string
	body                   string
}

func (s templateSource) Context(name string) (string, bool) {
	v, ok := s.context[name]
	return v, ok
}

func (s templateSource) StageVariable(name string) (string, bool) {
	v, ok := s.stage[name]
	return v, ok
}

func (s templateSource) Param(name string) (string, bool) {
	v, ok := s.params[name]
	return v, ok
}

func (s templateSource) Body() []byte { return []byte(s.body) }

var mockSource = templateSource{
	context: map[string]string{"requestId": "req-1", "identity.sourceIp": "10.0.0.1", "authorizer.claims.sub": "alice"},
	stage:   map[string]string{"env": "dev"},
	params:  map[string]string{"id": "7", "q": "term"},
	body:    `{"user": {"id": "u7", "tags": ["a", "b"]}, "n": 3, "none": null}`,
}

func TestTemplate(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string
	}{
		{"plain text", `{"ok": true}`, `{"ok": true}`},
		{"empty", ``, ``},
		{"context", `{"id": "$context.requestId"}`, `{"id": "req-1"}`},
		{"context dotted", `$context.identity.sourceIp`, `10.0.0.1`},
		{"context ends at a dot before text", `$context.requestId.`, `req-1.`},
		{"context ends at other text", `$context.requestId-x`, `req-1-x`},
		{"braced context", `${context.requestId}x`, `req-1x`},
		{"braced dotted context", `${context.authorizer.claims.sub}`, `alice`},
		{"quiet context", `[$!context.requestId]`, `[req-1]`},
		{"quiet braced context", `[$!{context.requestId}]`, `[req-1]`},
		{"stage variable", `$stageVariables.env`, `dev`},
		{"braced stage variable", `${stageVariables.env}_x`, `dev_x`},
		{"body", `body=$input.body;`, `body={"user": {"id": "u7", "tags": ["a", "b"]}, "n": 3, "none": null};`},
		{"braced body", `${input.body}`, mockSource.body},
		{"params single quotes", `$input.params('id')`, `7`},
		{"params double quotes", `$input.params("q")`, `term`},
		{"params spaces", `$input.params( 'id' )`, `7`},
		{"braced params", `${input.params('id')}`, `7`},
		{"quiet braced params", `$!{input.params('id')}`, `7`},
		{"json string", `$input.json('$.user.id')`, `"u7"`},
		{"json object", `$input.json('$.user')`, `{"id":"u7","tags":["a","b"]}`},
		{"json number", `$input.json("$.n")`, `3`},
		{"json index", `$input.json('$.user.tags[1]')`, `"b"`},
		{"json root", `$input.json('$')`, `{"user":{"id":"u7","tags":["a","b"]},"n":3,"none":null}`},
		{"json missing", `$input.json('$.nope')`, `null`},
		{"json null", `$input.json('$.none')`, `null`},
		{"braced json", `${input.json('$.n')}`, `3`},
		{"path string", `$input.path('$.user.id')`, `u7`},
		{"path array", `$input.path('$.user.tags')`, `["a","b"]`},
		{"path missing", `[$input.path('$.nope')]`, `[]`},
		{"braced path", `${input.path('$.user.tags[0]')}`, `a`},
		{"missing context", `[$context.nope]`, `[]`},
		{"missing braced context", `[${context.nope}]`, `[]`},
		{"missing quiet context", `[$!{context.nope}]`, `[]`},
		{"missing stage variable", `[$stageVariables.nope]`, `[]`},
		{"missing param", `[$input.params('nope')]`, `[]`},
		{"unknown reference kept", `$foo and $util.escapeJavaScript($x)`, `$foo and $util.escapeJavaScript($x)`},
		{"unknown braced reference kept", `${foo} ${util.x}`, `${foo} ${util.x}`},
		{"unknown quiet reference kept", `$!foo`, `$!foo`},
		{"dollar amounts kept", `costs $5, or $ 6$`, `costs $5, or $ 6$`},
		{"bare $context kept", `$context and $context.`, `$context and $context.`},
		{"stage variable with more names kept", `$stageVariables.a.b`, `$stageVariables.a.b`},
		{"input without call kept", `$input.params $input.json $input.other('x')`, `$input.params $input.json $input.other('x')`},
		{"method call kept", `$context.requestId.length()`, `$context.requestId.length()`},
		{"input body call kept", `$input.body()`, `$input.body()`},
		{"double dollar", `$$context.requestId`, `$req-1`},
		{"dollar bang alone", `$!`, `$!`},
		{"hash text kept", "a #if text\n# heading\n#ifdef\n##comment", "a #if text\n# heading\n#ifdef\n##comment"},
		{"braced with text before brace kept", `${ context.requestId }`, `${ context.requestId }`},
		{"several", "{\n  \"id\": \"$context.requestId\",\n  \"item\": $input.params('id'),\n  \"user\": $input.json('$.user.id')\n}", "{\n  \"id\": \"req-1\",\n  \"item\": 7,\n  \"user\": \"u7\"\n}"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tpl, err := ParseTemplate(tt.in)
			if err != nil {
				t.Fatalf("ParseTemplate(%q): %v", tt.in, err)
			}
			var b bytes.Buffer
			tpl.Execute(&b, mockSource)
			if b.String() != tt.want {
				t.Fatalf("Execute(%q) = %q, want %q", tt.in, b.String(), tt.want)
			}
		})
	}
}

func TestTemplateBodyNotJSON(t *testing.T) {
	tpl, err := ParseTemplate(`[$input.json('$.a')][$input.path('$.a')][$input.body]`)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	tpl.Execute(&b, templateSource{body: "a=1"})
	if want := "[null][][a=1]"; b.String() != want {
		t.Errorf("got %q, want %q", b.String(), want)
	}
	b.Reset()
	tpl.Execute(&b, nil)
	if want := "[null][][]"; b.String() != want {
		t.Errorf("nil source: got %q, want %q", b.String(), want)
	}
	var none *Template
	none.Execute(&b, mockSource)
	tpl.Execute(nil, mockSource)
}

func TestTemplateErrors(t *testing.T) {
	tests := []struct {
		name     string
		in       string
		wantErrs []string
	}{
		{"unterminated braced", `{"id": "${context.requestId"}`, []string{"${ at offset 8 (line 1, column 9) is not closed", "context.requestId"}},
		{"unterminated unknown braced", "a\n  ${foo\n}", []string{"${ at offset 4 (line 2, column 3) is not closed with } on its line"}},
		{"unterminated at end", `x${`, []string{"${ at offset 1"}},
		{"unterminated quiet", `$!{context.a`, []string{"$!{ at offset 0 (line 1, column 1) is not closed"}},
		{"unterminated unknown quiet", `$!{util.x`, []string{"$!{ at offset 0 (line 1, column 1) is not closed with } on its line"}},
		{"params unterminated", `$input.params('id'`, []string{"$input.params( at offset 0 (line 1, column 1)", "$input.params('name')"}},
		{"params no quotes", `$input.params(id)`, []string{"$input.params( at offset 0", "in quotes"}},
		{"params no argument", `x $input.params()`, []string{"$input.params( at offset 2"}},
		{"params open quote", `$input.params('id)`, []string{"$input.params("}},
		{"params mixed quotes", `$input.params('id")`, []string{"$input.params("}},
		{"params across lines", "$input.params('a\n')", []string{"$input.params("}},
		{"braced params unterminated", `${input.params('id')`, []string{"${ at offset 0", "is not closed"}},
		{"json unterminated", `$input.json('$.a'`, []string{"$input.json( at offset 0", "$input.json('$.a.b')"}},
		{"path unterminated", "\n\n  $input.path(", []string{"$input.path( at offset 4 (line 3, column 3)"}},
		{"json without $", `$input.json('a.b')`, []string{`JSONPath "a.b" is not supported`, "'$.items[0].id'"}},
		{"json wildcard", `$input.json('$.a[*]')`, []string{`JSONPath "$.a[*]" is not supported`}},
		{"json star name", `$input.json('$.*')`, []string{"not supported"}},
		{"json deep scan", `$input.path('$..a')`, []string{"not supported"}},
		{"json bracket name", `$input.path("$['a']")`, []string{"not supported"}},
		{"json trailing dot", `$input.path('$.')`, []string{"not supported"}},
		{"if", "#if($x)\nA\n#end", []string{"#if at offset 0 (line 1, column 1)", "mapping-template directives (#if, #foreach, #set) are not supported in mock bodies"}},
		{"indented foreach", "{\n  \t#foreach($i in $l)", []string{"#foreach at offset 5 (line 2, column 4)", "not supported in mock bodies"}},
		{"set", "#set($a = 1)", []string{"#set at offset 0"}},
		{"else", "a\n#else\n", []string{"#else at offset 2"}},
		{"elseif", "a\n #elseif($b)", []string{"#elseif at offset 3"}},
		{"end", "x\n#end", []string{"#end at offset 2"}},
		{"braced directive", "#{if}($a)", []string{"#if at offset 0"}},
		{"macro", "#macro(m)", []string{"#macro at offset 0", "not supported in mock bodies"}},
		{"stop", "x\n#stop", []string{"#stop at offset 2"}},
		{"too long", strings.Repeat("a", MaxTemplateBytes+1), []string{"65537 bytes", "limit is 65536"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseTemplate(tt.in)
			if err == nil {
				t.Fatalf("ParseTemplate(%q): no error", tt.in)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("error %v does not match ErrInvalid", err)
			}
			for _, want := range tt.wantErrs {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not contain %q", err, want)
				}
			}
		})
	}
}

func TestTemplateLongest(t *testing.T) {
	if _, err := ParseTemplate(strings.Repeat("$", MaxTemplateBytes)); err != nil {
		t.Fatal(err)
	}
}

func TestTemplateOutputLimit(t *testing.T) {
	tpl, err := ParseTemplate(strings.Repeat("$input.body,", 30))
	if err != nil {
		t.Fatal(err)
	}
	body := strings.Repeat("b", 1<<20)
	var out bytes.Buffer
	out.WriteString("before")
	tpl.Execute(&out, templateSource{body: body})
	if out.Len() != len("before")+MaxOutputBytes {
		t.Fatalf("wrote %d bytes, want %d", out.Len()-len("before"), MaxOutputBytes)
	}
	if want := strings.Repeat(body+",", 10)[:MaxOutputBytes]; out.String()[len("before"):] != want {
		t.Fatal("the output is not the first MaxOutputBytes")
	}
}

func BenchmarkTemplateExecute(b *testing.B) {
	tpl, err := ParseTemplate(`{"id": "$context.requestId", "item": "$input.params('id')", "user": $input.json('$.user.id'), "env": "${stageVariables.env}"}`)
	if err != nil {
		b.Fatal(err)
	}
	var buf bytes.Buffer
	b.ReportAllocs()
	for b.Loop() {
		buf.Reset()
		tpl.Execute(&buf, mockSource)
	}
}
