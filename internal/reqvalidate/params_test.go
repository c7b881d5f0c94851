package reqvalidate

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestMissingParameters(t *testing.T) {
	// The request: ?limit=10&empty= with the headers X-Id and X-Blank (blank), at /pets/7.
	have := map[string]string{
		"querystring.limit": "10",
		"querystring.empty": "",
		"header.x-id":       "abc",
		"header.x-blank":    "",
		"path.id":           "7",
	}
	lookup := func(location, name string) bool {
		if location == LocationHeader {
			name = strings.ToLower(name)
		}
		return have[location+"."+name] != ""
	}
	tests := []struct {
		name     string
		required map[string]bool
		want     string
	}{
		{"none declared", nil, ""},
		{"all there", map[string]bool{"querystring.limit": true, "header.x-id": true, "path.id": true}, ""},
		{"header case", map[string]bool{"header.X-Id": true}, ""},
		{"not required", map[string]bool{"querystring.page": false, "header.x-trace": false}, ""},
		{"one missing", map[string]bool{"querystring.limit": true, "querystring.page": true}, "Missing required request parameters: [page]"},
		{"blank is missing", map[string]bool{"querystring.empty": true, "header.x-blank": true},
			"Missing required request parameters: [empty, x-blank]"},
		{"sorted across locations", map[string]bool{"header.x-trace": true, "querystring.page": true, "querystring.limit": true,
			"path.owner": true, "header.Authorization": true},
			"Missing required request parameters: [Authorization, owner, page, x-trace]"},
		{"same name twice", map[string]bool{"header.page": true, "querystring.page": true}, "Missing required request parameters: [page, page]"},
		{"bad keys skipped", map[string]bool{"cookie.session": true, "querystring.": true, "limit": true}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := MissingParameters(tc.required, lookup); got != tc.want {
				t.Errorf("MissingParameters = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestMissingParametersLookup(t *testing.T) {
	var asked []string
	MissingParameters(map[string]bool{"querystring.a.b": true, "header.X-Id": true, "path.proxy": true, "querystring.off": false},
		func(location, name string) bool {
			asked = append(asked, location+" "+name)
			return true
		})
	got := strings.Join(slices.Sorted(slices.Values(asked)), ", ")
	if want := "header X-Id, path proxy, querystring a.b"; got != want {
		t.Errorf("lookups: %s, want %s", got, want)
	}
}

func TestCheckParameterKey(t *testing.T) {
	tests := []struct {
		key  string
		want string // "" when valid, else the error text
	}{
		{"querystring.limit", ""},
		{"header.x-id", ""},
		{"header.X_Custom~Header!", ""},
		{"path.id", ""},
		{"path.proxy", ""},
		{"querystring.a.b", ""},
		{"querystring.name[]", ""},
		{"querystring.名前", ""},

		{"", `invalid request parameter key "": want querystring.NAME, header.NAME or path.NAME`},
		{"limit", `invalid request parameter key "limit": want querystring.NAME, header.NAME or path.NAME`},
		{"querystring.", `invalid request parameter key "querystring.": the name is missing: want querystring.NAME, header.NAME or path.NAME`},
		{"query.limit", `invalid request parameter key "query.limit": unknown location "query": want querystring.NAME, header.NAME or path.NAME`},
		{"QueryString.limit", `invalid request parameter key "QueryString.limit": unknown location "QueryString": want querystring.NAME, header.NAME or path.NAME`},
		{"cookie.session", `invalid request parameter key "cookie.session": unknown location "cookie": want querystring.NAME, header.NAME or path.NAME`},
		{"method.request.querystring.limit", `invalid request parameter key "method.request.querystring.limit": write it without method.request., as "querystring.limit"`},
		{"querystring.my limit", `invalid request parameter key "querystring.my limit": the name holds ' ': white space and control characters are not allowed`},
		{"querystring.a\tb", `invalid request parameter key "querystring.a\tb": the name holds '\t': white space and control characters are not allowed`},
		{"path.a\x00", `invalid request parameter key "path.a\x00": the name holds '\x00': white space and control characters are not allowed`},
		{"querystring.a\u00a0b", `invalid request parameter key "querystring.a\u00a0b": the name holds '\u00a0': white space and control characters are not allowed`},
		{"querystring.\xff", `invalid request parameter key "querystring.\xff": the name is not UTF-8`},
		{"header.x:id", `invalid request parameter key "header.x:id": ':' is not allowed in a header name: want letters, digits and !#$%&'*+-.^_` + "`|~"},
		{"header.é", `invalid request parameter key "header.é": 'é' is not allowed in a header name: want letters, digits and !#$%&'*+-.^_` + "`|~"},
	}
	for _, tc := range tests {
		t.Run(tc.key, func(t *testing.T) {
			err := CheckParameterKey(tc.key)
			if tc.want == "" {
				if err != nil {
					t.Errorf("CheckParameterKey(%q) = %v", tc.key, err)
				}
				return
			}
			if err == nil || err.Error() != tc.want {
				t.Errorf("CheckParameterKey(%q)\n got: %v\nwant: %s", tc.key, err, tc.want)
			}
			if !errors.Is(err, ErrParameterKey) {
				t.Errorf("CheckParameterKey(%q) = %v, not ErrParameterKey", tc.key, err)
			}
		})
	}
}
