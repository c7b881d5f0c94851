package mapping

import (
	"errors"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"
)

func TestCompileRequestErrors(t *testing.T) {
	tests := []struct {
		name     string
		in       map[string]string
		wantErrs []string
	}{
		{"bad key", map[string]string{"overwrite:header.host": "x"}, []string{`requestParameters["overwrite:header.host"]: `, "cannot be mapped"}},
		{"bad value", map[string]string{"overwrite:header.x": "a$b"}, []string{`requestParameters["overwrite:header.x"]: `, "stray $"}},
		{"response ref", map[string]string{"append:querystring.q": "$response.header.x"}, []string{`requestParameters["append:querystring.q"]: `, "cannot read $response"}},
		{"remove with a value", map[string]string{"remove:header.x": "1"}, []string{`requestParameters["remove:header.x"]: `, `takes the value ""`}},
		{"same header twice", map[string]string{"append:header.X-A": "1", "append:header.x-a": "2"}, []string{`requestParameters["append:header.x-a"]: `, `same header as "append:header.X-A"`}},
		{"first error by key order", map[string]string{"b:x": "", "a:x": ""}, []string{`requestParameters["a:x"]`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := CompileRequest(tt.in)
			if err == nil {
				t.Fatal("no error")
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

func TestRequestApply(t *testing.T) {
	tests := []struct {
		name    string
		mapping map[string]string
		in      Request
		want    Request
	}{
		{
			name:    "overwrite header from header",
			mapping: map[string]string{"overwrite:header.x-user": "$request.header.x-id"},
			in:      Request{Header: http.Header{"X-User": {"a", "b"}}},
			want:    Request{Header: http.Header{"X-User": {"id-1"}}},
		},
		{
			name:    "append header keeps what is there",
			mapping: map[string]string{"append:header.x-user": "${context.requestId}"},
			in:      Request{Header: http.Header{"X-User": {"a"}}},
			want:    Request{Header: http.Header{"X-User": {"a", "req-1"}}},
		},
		{
			name:    "remove header",
			mapping: map[string]string{"remove:header.X-Secret": ""},
			in:      Request{Header: http.Header{"X-Secret": {"s"}, "Accept": {"*/*"}}},
			want:    Request{Header: http.Header{"Accept": {"*/*"}}},
		},
		{
			name:    "remove header written as AWS's tools write it",
			mapping: map[string]string{"remove:header.X-Secret": "''"},
			in:      Request{Header: http.Header{"X-Secret": {"s"}, "Accept": {"*/*"}}},
			want:    Request{Header: http.Header{"Accept": {"*/*"}}},
		},
		{
			name:    "remove then overwrite then append, whatever the map order",
			mapping: map[string]string{"append:header.x-a": "3", "overwrite:header.x-a": "2", "remove:header.x-a": ""},
			in:      Request{Header: http.Header{"X-A": {"0"}}},
			want:    Request{Header: http.Header{"X-A": {"2", "3"}}},
		},
		{
			name:    "remove then append",
			mapping: map[string]string{"append:querystring.q": "new", "remove:querystring.q": ""},
			in:      Request{Query: url.Values{"q": {"old", "older"}}},
			want:    Request{Query: url.Values{"q": {"new"}}},
		},
		{
			name:    "query overwrite, append and remove",
			mapping: map[string]string{"overwrite:querystring.page": "$request.querystring.Page", "append:querystring.tag": "x", "remove:querystring.debug": ""},
			in:      Request{Query: url.Values{"page": {"1"}, "tag": {"w"}, "debug": {"1"}}},
			want:    Request{Query: url.Values{"page": {"2"}, "tag": {"w", "x"}}},
		},
		{
			name:    "query names are case-sensitive",
			mapping: map[string]string{"remove:querystring.Q": ""},
			in:      Request{Query: url.Values{"q": {"1"}}},
			want:    Request{Query: url.Values{"q": {"1"}}},
		},
		{
			name:    "values come from the source, not the request being changed",
			mapping: map[string]string{"overwrite:header.x-id": "changed", "overwrite:header.x-copy": "$request.header.x-id"},
			in:      Request{Header: http.Header{"X-Id": {"orig"}}},
			want:    Request{Header: http.Header{"X-Id": {"changed"}, "X-Copy": {"id-1"}}},
		},
		{
			name:    "single missing reference leaves the parameter alone",
			mapping: map[string]string{"overwrite:header.x-a": "$request.header.nope", "append:querystring.q": "$request.body.nope", "overwrite:path": "$request.path.nope"},
			in:      Request{Header: http.Header{"X-A": {"keep"}}, Query: url.Values{"q": {"1"}}, Path: "/orig"},
			want:    Request{Header: http.Header{"X-A": {"keep"}}, Query: url.Values{"q": {"1"}}, Path: "/orig"},
		},
		{
			name:    "present but empty reference sets an empty value",
			mapping: map[string]string{"overwrite:header.x-a": "$request.header.empty"},
			in:      Request{Header: http.Header{"X-A": {"old"}}},
			want:    Request{Header: http.Header{"X-A": {""}}},
		},
		{
			name:    "mixed value with a missing reference is still set",
			mapping: map[string]string{"overwrite:header.x-a": "v=${request.header.nope}"},
			in:      Request{},
			want:    Request{Header: http.Header{"X-A": {"v="}}},
		},
		{
			name:    "empty literal overwrite",
			mapping: map[string]string{"overwrite:querystring.q": ""},
			in:      Request{Query: url.Values{"q": {"1"}}},
			want:    Request{Query: url.Values{"q": {""}}},
		},
		{
			name:    "path from literal and references",
			mapping: map[string]string{"overwrite:path": "/v2${request.path}"},
			in:      Request{Path: "/items/7"},
			want:    Request{Path: "/v2/items/7"},
		},
		{
			name:    "path gets a leading slash",
			mapping: map[string]string{"overwrite:path": "items/${request.path.id}"},
			in:      Request{Path: "/x"},
			want:    Request{Path: "/items/7"},
		},
		{
			name:    "body and stage variable",
			mapping: map[string]string{"overwrite:header.x-user": "$request.body.user.id", "append:header.x-env": "$stageVariables.prefix"},
			in:      Request{},
			want:    Request{Header: http.Header{"X-User": {"u7"}, "X-Env": {"dev"}}},
		},
		{
			name:    "control characters in a header value become spaces",
			mapping: map[string]string{"overwrite:header.x-a": "$request.header.crlf"},
			in:      Request{},
			want:    Request{Header: http.Header{"X-A": {"a  Evil: 1\tb"}}},
		},
	}
	src := values{}
	for k, v := range requestSource {
		src[k] = v
	}
	src[Ref{RequestHeader, "crlf"}] = "a\r\nEvil: 1\tb"
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := CompileRequest(tt.mapping)
			if err != nil {
				t.Fatal(err)
			}
			req := tt.in
			m.Apply(&req, src)
			if !reflect.DeepEqual(req, tt.want) {
				t.Fatalf("got %+v\nwant %+v", req, tt.want)
			}
		})
	}
}

func TestRequestMapNeedsBodyAndRefs(t *testing.T) {
	m, err := CompileRequest(map[string]string{
		"overwrite:header.x-a":    "$request.header.x-id",
		"append:querystring.user": "${request.body.user.id}",
		"remove:header.x-b":       "",
	})
	if err != nil {
		t.Fatal(err)
	}
	if !m.NeedsBody() {
		t.Error("NeedsBody() = false")
	}
	want := []Ref{{RequestHeader, "x-id"}, {RequestBody, "user.id"}}
	if got := m.Refs(); !reflect.DeepEqual(got, want) {
		t.Errorf("Refs() = %v, want %v", got, want)
	}
	m, _ = CompileRequest(map[string]string{"overwrite:path": "/x"})
	if m.NeedsBody() {
		t.Error("NeedsBody() = true without a body reference")
	}
	var none *RequestMap
	none.Apply(&Request{}, nil)
	if none.NeedsBody() || none.Refs() != nil {
		t.Error("a nil RequestMap reads something")
	}
	m.Apply(nil, nil)
	empty, err := CompileRequest(nil)
	if err != nil {
		t.Fatal(err)
	}
	req := Request{Path: "/a"}
	empty.Apply(&req, nil)
	if req.Path != "/a" || req.Header != nil {
		t.Errorf("an empty mapping changed the request: %+v", req)
	}
}

func TestRequestApplyAllocations(t *testing.T) {
	m, err := CompileRequest(map[string]string{
		"remove:header.x-b":     "",
		"overwrite:header.x-a":  "$request.header.x-id",
		"overwrite:header.x-c":  "$request.header.missing",
		"remove:querystring.q":  "",
		"overwrite:path":        "/fixed",
		"append:querystring.q2": "$request.header.missing",
	})
	if err != nil {
		t.Fatal(err)
	}
	var src Source = requestSource
	req := Request{Header: http.Header{}, Query: url.Values{}}
	// One []string for the overwritten header, and nothing else.
	if n := testing.AllocsPerRun(100, func() { m.Apply(&req, src) }); n > 1 {
		t.Errorf("%v allocations per Apply, want at most 1", n)
	}
}

func TestCompileResponseErrors(t *testing.T) {
	tests := []struct {
		name     string
		in       map[string]map[string]string
		wantErrs []string
	}{
		{"status too low", map[string]map[string]string{"199": {}}, []string{`responseParameters["199"]: `, "200 to 599"}},
		{"status too high", map[string]map[string]string{"600": {}}, []string{`responseParameters["600"]`}},
		{"status not a number", map[string]map[string]string{"2xx": {}}, []string{`responseParameters["2xx"]`}},
		{"status with sign", map[string]map[string]string{"+200": {}}, []string{`responseParameters["+200"]`}},
		{"status with zeros", map[string]map[string]string{"0200": {}}, []string{`responseParameters["0200"]`}},
		{"bad key", map[string]map[string]string{"404": {"overwrite:querystring.q": "x"}}, []string{`responseParameters["404"]["overwrite:querystring.q"]: `, "cannot set a query string"}},
		{"request ref", map[string]map[string]string{"200": {"overwrite:header.x": "$request.header.x"}}, []string{`responseParameters["200"]["overwrite:header.x"]: `, "cannot read $request"}},
		{"literal status out of range", map[string]map[string]string{"500": {"overwrite:statuscode": "700"}}, []string{`["overwrite:statuscode"]`, `"700" is not a number from 100 to 599`}},
		{"literal status not a number", map[string]map[string]string{"500": {"overwrite:statuscode": "ok"}}, []string{`"ok" is not a number`}},
		{"remove with a value", map[string]map[string]string{"200": {"remove:header.x": "x"}}, []string{`takes the value ""`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := CompileResponse(tt.in)
			if err == nil {
				t.Fatal("no error")
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

func TestResponseApply(t *testing.T) {
	m, err := CompileResponse(map[string]map[string]string{
		"200": {
			"append:header.x-request-id": "$context.requestId",
			"overwrite:header.x-backend": "seen ${response.header.x-backend}",
			"remove:header.x-powered-by": "",
		},
		"404": {
			"overwrite:statuscode":        "200",
			"overwrite:header.x-was":      "404",
			"overwrite:header.x-from-404": "$response.body.status",
		},
		"500": {"overwrite:statuscode": "$response.header.x-status"},
		"502": {"overwrite:statuscode": "${response.header.x-status}"},
		"503": {"overwrite:statuscode": "$response.header.missing"},
		"504": {},
	})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		status string // value of $response.header.x-status
		in     Response
		want   Response
	}{
		{
			name: "mappings of the backend's status",
			in:   Response{Status: 200, Header: http.Header{"X-Powered-By": {"php"}, "X-Request-Id": {"a"}}},
			want: Response{Status: 200, Header: http.Header{"X-Request-Id": {"a", "req-1"}, "X-Backend": {"seen b1"}}},
		},
		{
			name: "status code overwritten",
			in:   Response{Status: 404},
			want: Response{Status: 200, Header: http.Header{"X-Was": {"404"}, "X-From-404": {"ok"}}},
		},
		{
			name: "no mappings for this status",
			in:   Response{Status: 201, Header: http.Header{"X-Powered-By": {"php"}}},
			want: Response{Status: 201, Header: http.Header{"X-Powered-By": {"php"}}},
		},
		{name: "status from a header", status: "418", in: Response{Status: 500}, want: Response{Status: 418}},
		{name: "status with spaces", status: " 201 ", in: Response{Status: 502}, want: Response{Status: 201}},
		{name: "lowest status", status: "100", in: Response{Status: 500}, want: Response{Status: 100}},
		{name: "highest status", status: "599", in: Response{Status: 500}, want: Response{Status: 599}},
		{name: "status too high is ignored", status: "600", in: Response{Status: 500}, want: Response{Status: 500}},
		{name: "status too low is ignored", status: "99", in: Response{Status: 500}, want: Response{Status: 500}},
		{name: "status not a number is ignored", status: "abc", in: Response{Status: 500}, want: Response{Status: 500}},
		{name: "empty status is ignored", status: "", in: Response{Status: 502}, want: Response{Status: 502}},
		{name: "missing status is ignored", in: Response{Status: 503}, want: Response{Status: 503}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := values{}
			for k, v := range requestSource {
				src[k] = v
			}
			src[Ref{ResponseHeader, "x-status"}] = tt.status
			resp := tt.in
			m.Apply(&resp, src)
			if !reflect.DeepEqual(resp, tt.want) {
				t.Fatalf("got %+v\nwant %+v", resp, tt.want)
			}
		})
	}
	for status, want := range map[int]bool{200: true, 404: true, 500: true, 201: false, 504: false, 0: false} {
		if got := m.For(status); got != want {
			t.Errorf("For(%d) = %v, want %v", status, got, want)
		}
	}
	if !m.NeedsBody() {
		t.Error("NeedsBody() = false")
	}
	wantRefs := []Ref{{ResponseHeader, "x-backend"}, {Context, "requestId"}, {ResponseBody, "status"}, {ResponseHeader, "x-status"}, {ResponseHeader, "x-status"}, {ResponseHeader, "missing"}}
	if got := m.Refs(); !reflect.DeepEqual(got, wantRefs) {
		t.Errorf("Refs() = %v, want %v", got, wantRefs)
	}
	var none *ResponseMap
	none.Apply(&Response{}, nil)
	if none.For(200) || none.NeedsBody() || none.Refs() != nil {
		t.Error("a nil ResponseMap maps something")
	}
	m.Apply(nil, nil)
}
