package mapping

import (
	"errors"
	"strings"
	"testing"
)

func TestParseRequestKey(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want Key
	}{
		{"append header", "append:header.x-a", Key{Append, Header, "x-a"}},
		{"header lower-cased", "overwrite:header.X-Tenant-ID", Key{Overwrite, Header, "x-tenant-id"}},
		{"remove header", "remove:header.x", Key{Remove, Header, "x"}},
		{"token characters", "append:header.a!#$%&'*+-.^_`|~9", Key{Append, Header, "a!#$%&'*+-.^_`|~9"}},
		{"www-authenticate allowed", "overwrite:header.WWW-Authenticate", Key{Overwrite, Header, "www-authenticate"}},
		{"x-amzfoo is not x-amz-", "overwrite:header.x-amzfoo", Key{Overwrite, Header, "x-amzfoo"}},
		{"longest header", "append:header." + strings.Repeat("h", 128), Key{Append, Header, strings.Repeat("h", 128)}},
		{"append query", "append:querystring.q", Key{Append, QueryString, "q"}},
		{"query keeps case", "overwrite:querystring.Page", Key{Overwrite, QueryString, "Page"}},
		{"query with dots and spaces", "remove:querystring.a.b c", Key{Remove, QueryString, "a.b c"}},
		{"query unicode", "overwrite:querystring.größe", Key{Overwrite, QueryString, "größe"}},
		{"longest query", "overwrite:querystring." + strings.Repeat("é", 128), Key{Overwrite, QueryString, strings.Repeat("é", 128)}},
		{"path", "overwrite:path", Key{Overwrite, Path, ""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseRequestKey(tt.in)
			if err != nil {
				t.Fatalf("ParseRequestKey(%q): %v", tt.in, err)
			}
			if got != tt.want {
				t.Fatalf("ParseRequestKey(%q) = %+v, want %+v", tt.in, got, tt.want)
			}
			again, err := ParseRequestKey(got.String())
			if err != nil || again != got {
				t.Fatalf("String() = %q parses to %+v, %v", got.String(), again, err)
			}
		})
	}
}

func TestParseResponseKey(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want Key
	}{
		{"append header", "append:header.X-Request-Id", Key{Append, Header, "x-request-id"}},
		{"overwrite header", "overwrite:header.cache-control", Key{Overwrite, Header, "cache-control"}},
		{"remove header", "remove:header.x-powered-by", Key{Remove, Header, "x-powered-by"}},
		{"status code", "overwrite:statuscode", Key{Overwrite, StatusCode, ""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseResponseKey(tt.in)
			if err != nil {
				t.Fatalf("ParseResponseKey(%q): %v", tt.in, err)
			}
			if got != tt.want {
				t.Fatalf("ParseResponseKey(%q) = %+v, want %+v", tt.in, got, tt.want)
			}
			if got.String() != strings.ToLower(tt.in) {
				t.Fatalf("String() = %q", got.String())
			}
		})
	}
}

type keyErrorCase struct {
	name     string
	request  bool
	in       string
	wantErrs []string // each must be in the message
}

func TestParseKeyErrors(t *testing.T) {
	tests := []keyErrorCase{
		{"empty", true, "", []string{"not a mapping key", "append:, overwrite: or remove:"}},
		{"no colon", true, "header.x", []string{"not a mapping key", "querystring.<name>"}},
		{"upper-case action", true, "Overwrite:header.x", []string{`unknown action "Overwrite"`, "lower case"}},
		{"unknown action", false, "set:header.x", []string{`unknown action "set"`, "append, overwrite or remove"}},
		{"upper-case location", true, "overwrite:Header.x", []string{`unknown location "Header.x"`, "header.<name>"}},
		{"unknown location", true, "append:cookie.x", []string{"unknown location", "querystring.<name>", "overwrite:path"}},
		{"unknown response location", false, "append:body.x", []string{"unknown location", "overwrite:statuscode"}},
		{"no name", true, "append:header", []string{"needs a name", "append:header.<name>"}},
		{"empty name", true, "append:querystring.", []string{"needs a name"}},
		{"bad header char", true, "append:header.x a", []string{`header name "x a"`, "offset 1", "letters, digits"}},
		{"header colon", false, "append:header.x:y", []string{`has ':'`}},
		{"long header", true, "append:header." + strings.Repeat("h", 129), []string{"longer than 128 characters"}},
		{"long query", true, "append:querystring." + strings.Repeat("q", 129), []string{"longer than 128 characters"}},
		{"query ampersand", true, "append:querystring.a&b", []string{"'&'", "&, = or #"}},
		{"query equals", true, "append:querystring.a=b", []string{"'='"}},
		{"query hash", true, "append:querystring.a#", []string{"'#'"}},
		{"query control", true, "append:querystring.a\x01", []string{"control characters"}},
		{"query not utf-8", true, "append:querystring.a\xff", []string{"not valid UTF-8"}},
		{"append path", true, "append:path", []string{"append:path is not allowed", "overwrite:path"}},
		{"remove path", true, "remove:path", []string{"remove:path is not allowed"}},
		{"path with name", true, "overwrite:path.id", []string{"takes no name", `"id"`}},
		{"statuscode in request", true, "overwrite:statuscode", []string{"only a response mapping", "status code"}},
		{"querystring in response", false, "overwrite:querystring.q", []string{"response mapping cannot set a query string", "header.<name>"}},
		{"path in response", false, "overwrite:path", []string{"response mapping cannot set the path"}},
		{"append statuscode", false, "append:statuscode", []string{"append:statuscode is not allowed", "overwrite:statuscode"}},
		{"remove statuscode", false, "remove:statuscode", []string{"remove:statuscode is not allowed"}},
		{"statuscode with name", false, "overwrite:statuscode.x", []string{"takes no name"}},
	}
	reserved := []string{
		"access-control-allow-origin", "Access-Control-Max-Age", "apigw-requestid", "X-Amz-Date",
		"x-amzn-trace-id", "Authorization", "origin", "VIA", "x-forwarded-for", "X-Forwarded-Proto",
		"forwarded", "connection", "content-length", "host", "keep-alive", "proxy-authenticate",
		"proxy-authorization", "te", "trailer", "transfer-encoding", "upgrade", "expect",
		"max-forwards", "proxy-connection", "server",
	}
	for _, h := range reserved {
		lower := strings.ToLower(h)
		tests = append(tests,
			keyErrorCase{"reserved request " + h, true, "overwrite:header." + h, []string{`header "` + lower + `" cannot be mapped`, "access-control-*", "x-amzn-*", "via"}},
			keyErrorCase{"reserved response " + h, false, "remove:header." + h, []string{`header "` + lower + `" cannot be mapped`}},
		)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var err error
			if tt.request {
				_, err = ParseRequestKey(tt.in)
			} else {
				_, err = ParseResponseKey(tt.in)
			}
			if err == nil {
				t.Fatalf("parsing %q: no error", tt.in)
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
