package mapping

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

// values is a Source made of a map.
type values map[Ref]string

func (v values) Lookup(ref Ref) (string, bool) {
	s, ok := v[ref]
	return s, ok
}

// everything is a Source with a value for every reference: its own text.
type everything struct{}

func (everything) Lookup(ref Ref) (string, bool) { return ref.String(), true }

var requestSource = values{
	{RequestHeader, "x-id"}:              "id-1",
	{RequestHeader, "token"}:             "t0k",
	{RequestHeader, "empty"}:             "",
	{RequestQuery, "q"}:                  "a,b",
	{RequestQuery, "Page"}:               "2",
	{RequestBody, "items[0].name"}:       "pen",
	{RequestBody, "user.id"}:             "u7",
	{Kind: RequestPath}:                  "/items/7",
	{RequestPathParam, "id"}:             "7",
	{Context, "requestId"}:               "req-1",
	{Context, "authorizer.claims.sub"}:   "alice",
	{StageVariable, "prefix"}:            "dev",
	{ResponseHeader, "x-backend"}:        "b1",
	{ResponseBody, "status"}:             "ok",
	{Context, "authorizer.claims.a:b-c"}: "colon",
}

func TestParseValue(t *testing.T) {
	tests := []struct {
		name     string
		response bool
		in       string
		refs     []Ref
		want     string // Eval with requestSource
	}{
		{name: "empty", in: "", want: ""},
		{name: "literal", in: "v2", want: "v2"},
		{name: "literal with spaces and tab", in: "a b\tc", want: "a b\tc"},
		{name: "literal braces", in: "{x} }", want: "{x} }"},
		{name: "header", in: "$request.header.x-id", refs: []Ref{{RequestHeader, "x-id"}}, want: "id-1"},
		{name: "header lower-cased", in: "$request.header.X-ID", refs: []Ref{{RequestHeader, "x-id"}}, want: "id-1"},
		{name: "query", in: "$request.querystring.q", refs: []Ref{{RequestQuery, "q"}}, want: "a,b"},
		{name: "query keeps case", in: "$request.querystring.Page", refs: []Ref{{RequestQuery, "Page"}}, want: "2"},
		{name: "body", in: "$request.body.user.id", refs: []Ref{{RequestBody, "user.id"}}, want: "u7"},
		{name: "body index", in: "$request.body.items[0].name", refs: []Ref{{RequestBody, "items[0].name"}}, want: "pen"},
		{name: "body array", in: "$request.body[1].id", refs: []Ref{{RequestBody, "[1].id"}}, want: ""},
		{name: "path", in: "$request.path", refs: []Ref{{Kind: RequestPath}}, want: "/items/7"},
		{name: "path parameter", in: "$request.path.id", refs: []Ref{{RequestPathParam, "id"}}, want: "7"},
		{name: "context", in: "$context.requestId", refs: []Ref{{Context, "requestId"}}, want: "req-1"},
		{name: "context dotted", in: "$context.authorizer.claims.sub", refs: []Ref{{Context, "authorizer.claims.sub"}}, want: "alice"},
		{name: "context claim with colon", in: "${context.authorizer.claims.a:b-c}", refs: []Ref{{Context, "authorizer.claims.a:b-c"}}, want: "colon"},
		{name: "stage variable", in: "$stageVariables.prefix", refs: []Ref{{StageVariable, "prefix"}}, want: "dev"},
		{name: "missing", in: "$request.header.nope", refs: []Ref{{RequestHeader, "nope"}}, want: ""},
		{name: "present but empty", in: "$request.header.empty", refs: []Ref{{RequestHeader, "empty"}}, want: ""},
		{name: "mixed", in: "Bearer ${request.header.token}", refs: []Ref{{RequestHeader, "token"}}, want: "Bearer t0k"},
		{name: "two refs", in: "${stageVariables.prefix}-${context.requestId}", refs: []Ref{{StageVariable, "prefix"}, {Context, "requestId"}}, want: "dev-req-1"},
		{name: "adjacent refs", in: "${request.path.id}${request.path.id}", refs: []Ref{{RequestPathParam, "id"}, {RequestPathParam, "id"}}, want: "77"},
		{name: "braced alone", in: "${request.querystring.q}", refs: []Ref{{RequestQuery, "q"}}, want: "a,b"},
		{name: "braced body", in: "n=${request.body.items[0].name}!", refs: []Ref{{RequestBody, "items[0].name"}}, want: "n=pen!"},
		{name: "mixed with missing", in: "a${request.header.nope}b", refs: []Ref{{RequestHeader, "nope"}}, want: "ab"},
		{name: "response header", response: true, in: "$response.header.X-Backend", refs: []Ref{{ResponseHeader, "x-backend"}}, want: "b1"},
		{name: "response body", response: true, in: "s=${response.body.status}", refs: []Ref{{ResponseBody, "status"}}, want: "s=ok"},
		{name: "response context", response: true, in: "${context.requestId}", refs: []Ref{{Context, "requestId"}}, want: "req-1"},
		{name: "longest", in: strings.Repeat("é", 512), want: strings.Repeat("é", 512)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			parse := ParseRequestValue
			if tt.response {
				parse = ParseResponseValue
			}
			e, err := parse(tt.in)
			if err != nil {
				t.Fatalf("parse %q: %v", tt.in, err)
			}
			if got := e.Refs(); !slices.Equal(got, tt.refs) {
				t.Errorf("Refs() = %v, want %v", got, tt.refs)
			}
			if got := e.Eval(requestSource); got != tt.want {
				t.Errorf("Eval = %q, want %q", got, tt.want)
			}
			if e.String() != tt.in {
				t.Errorf("String() = %q", e.String())
			}
			e.Eval(nil) // no values, no panic
		})
	}
}

func TestParseValueErrors(t *testing.T) {
	tests := []struct {
		name     string
		response bool
		in       string
		wantErrs []string
	}{
		{"stray dollar", false, "a$b", []string{"stray $ at offset 1", "${...}"}},
		{"trailing dollar", false, "price $", []string{"stray $ at offset 6"}},
		{"dollar alone", false, "$", []string{"unknown reference $", "one reference"}},
		{"unknown root", false, "$foo", []string{"unknown reference $foo", "$request.header.<name>", "$stageVariables.<name>"}},
		{"unknown root in braces", false, "x${foo.bar}", []string{"${foo.bar} at offset 1", "unknown reference"}},
		{"unterminated", false, "x${request.header.a", []string{"${ at offset 1 is not closed"}},
		{"dollar inside braces", false, "${$request.header.a}", []string{"without its $", "${request.header.a}"}},
		{"bare with text after", false, "$request.header.x-id suffix", []string{`header name "x-id suffix"`, "to mix text and references"}},
		{"text before bare", false, "id: $request.header.x", []string{"stray $ at offset 4"}},
		{"response in request", false, "$response.header.x", []string{"request mapping cannot read $response.header.x"}},
		{"response in request braces", false, "a${response.body.x}", []string{"request mapping cannot read"}},
		{"request in response", true, "$request.header.x", []string{"response mapping cannot read $request.header.x", "$response.header.<name>"}},
		{"querystring in response", true, "$response.querystring.q", []string{"unknown reference", "$response has header.<name> and body.<path>"}},
		{"unknown request part", false, "$request.cookie.a", []string{"unknown reference $request.cookie.a", "querystring.<name>"}},
		{"request alone", false, "$request", []string{"unknown reference $request"}},
		{"header no name", false, "$request.header", []string{"unknown reference"}},
		{"header empty name", false, "$request.header.", []string{"header name is empty"}},
		{"header bad char", false, "${request.header.a/b}", []string{`has '/'`}},
		{"query bad char", false, "$request.querystring.a=b", []string{"'='"}},
		{"body empty", false, "$request.body.", []string{"not a body reference", "items[0].name"}},
		{"body double dot", false, "$request.body.a..b", []string{"not a body reference"}},
		{"body bad index", false, "$request.body.a[x]", []string{"not a body reference"}},
		{"body unclosed index", false, "$request.body.a[0", []string{"not a body reference"}},
		{"body leading dot", false, "$request.body.[1]", []string{"not a body reference"}},
		{"body whole", false, "$request.body", []string{"unknown reference $request.body"}},
		{"path param slash", false, "$request.path.a/b", []string{"not a path parameter"}},
		{"context empty", false, "$context.", []string{"not a context variable"}},
		{"context no dot", false, "$context", []string{"not a context variable"}},
		{"context double dot", false, "$context.a..b", []string{"not a context variable"}},
		{"stage variable dash", false, "$stageVariables.a-b", []string{"not a stage variable", "letters, digits and _"}},
		{"stage variable long", false, "$stageVariables." + strings.Repeat("s", 65), []string{"not a stage variable"}},
		{"too long", false, strings.Repeat("a", 513), []string{"longer than 512 characters"}},
		{"much too long", false, strings.Repeat("$", 1<<20), []string{"longer than 512 characters"}},
		{"newline", false, "a\nb", []string{"control character", "offset 1"}},
		{"carriage return", false, "a\r", []string{"control character"}},
		{"nul", false, "\x00", []string{"control character"}},
		{"not utf-8", false, "a\xffb", []string{"not valid UTF-8"}},
		{"upper-case root", false, "$Request.header.x", []string{"unknown reference $Request.header.x"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			parse := ParseRequestValue
			if tt.response {
				parse = ParseResponseValue
			}
			_, err := parse(tt.in)
			if err == nil {
				t.Fatalf("parse %q: no error", tt.in)
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

func TestRefString(t *testing.T) {
	for _, in := range []string{
		"$request.header.x", "$request.querystring.Q", "$request.body.a[1].b", "$request.body[2]", "$request.path",
		"$request.path.id", "$context.identity.sourceIp", "$stageVariables.v",
	} {
		e, err := ParseRequestValue(in)
		if err != nil {
			t.Fatal(err)
		}
		if got := e.Refs()[0].String(); got != in {
			t.Errorf("Ref.String() = %q, want %q", got, in)
		}
	}
	for _, in := range []string{"$response.header.x", "$response.body.a"} {
		e, err := ParseResponseValue(in)
		if err != nil {
			t.Fatal(err)
		}
		if got := e.Refs()[0].String(); got != in {
			t.Errorf("Ref.String() = %q, want %q", got, in)
		}
	}
}

func TestEvalAllocations(t *testing.T) {
	lit, _ := ParseRequestValue("literal")
	ref, _ := ParseRequestValue("$request.header.x-id")
	mixed, _ := ParseRequestValue("Bearer ${request.header.token}")
	var src Source = requestSource
	if n := testing.AllocsPerRun(100, func() { lit.Eval(src) }); n != 0 {
		t.Errorf("literal: %v allocations", n)
	}
	if n := testing.AllocsPerRun(100, func() { ref.Eval(src) }); n != 0 {
		t.Errorf("single reference: %v allocations", n)
	}
	if n := testing.AllocsPerRun(100, func() { mixed.Eval(src) }); n > 1 {
		t.Errorf("mixed: %v allocations, want at most 1", n)
	}
}
