package mapping_test

import (
	"bytes"
	"fmt"
	"net/http"
	"net/url"

	"gatehouse.dev/gatehouse/internal/mapping"
)

// clientRequest answers references from the client's request, as the gateway does.
type clientRequest struct {
	header http.Header
	body   []byte
	stage  map[string]string
}

func (c clientRequest) Lookup(ref mapping.Ref) (string, bool) {
	switch ref.Kind {
	case mapping.RequestHeader:
		v, ok := c.header[http.CanonicalHeaderKey(ref.Name)]
		if !ok {
			return "", false
		}
		return v[0], true
	case mapping.RequestBody:
		return mapping.BodyValue(c.body, ref.Name)
	case mapping.StageVariable:
		v, ok := c.stage[ref.Name]
		return v, ok
	}
	return "", false
}

func ExampleRequestMap_Apply() {
	m, err := mapping.CompileRequest(map[string]string{
		"overwrite:header.authorization-token": "Bearer ${request.header.x-token}",
		"append:querystring.user":              "$request.body.user.id",
		"remove:header.x-token":                "",
		"overwrite:path":                       "/${stageVariables.version}/orders",
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	src := clientRequest{
		header: http.Header{"X-Token": {"t0k"}},
		body:   []byte(`{"user": {"id": "u7"}}`),
		stage:  map[string]string{"version": "v2"},
	}
	req := mapping.Request{Header: src.header.Clone(), Query: url.Values{"page": {"1"}}, Path: "/orders"}
	m.Apply(&req, src)
	fmt.Println(req.Header)
	fmt.Println(req.Query.Encode())
	fmt.Println(req.Path, m.NeedsBody())
	// Output:
	// map[Authorization-Token:[Bearer t0k]]
	// page=1&user=u7
	// /v2/orders true
}

func ExampleCompileRequest_error() {
	_, err := mapping.CompileRequest(map[string]string{"overwrite:header.host": "example.com"})
	fmt.Println(err)
	// Output:
	// requestParameters["overwrite:header.host"]: header "host" cannot be mapped: API Gateway, and so Gatehouse, keeps access-control-*, apigw-*, x-amz-*, x-amzn-*, x-forwarded-*, authorization, connection, content-length, expect, forwarded, host, keep-alive, max-forwards, origin, proxy-authenticate, proxy-authorization, proxy-connection, server, te, trailer, transfer-encoding, upgrade and via to itself
}

// mockRequest answers a mock body template's references.
type mockRequest struct{ body string }

func (mockRequest) Context(name string) (string, bool) {
	if name == "requestId" {
		return "c6af9ac6-7b61-11e6-9a41-93e8deadbeef", true
	}
	return "", false
}
func (mockRequest) StageVariable(string) (string, bool) { return "", false }
func (mockRequest) Param(name string) (string, bool) {
	if name == "id" {
		return "7", true
	}
	return "", false
}
func (m mockRequest) Body() []byte { return []byte(m.body) }

func ExampleTemplate_Execute() {
	t, err := mapping.ParseTemplate(`{"id": "$input.params('id')", "request": "$context.requestId", "name": $input.json('$.name'), "missing": "$!{context.nothing}"}`)
	if err != nil {
		fmt.Println(err)
		return
	}
	var b bytes.Buffer
	t.Execute(&b, mockRequest{body: `{"name": "pen"}`})
	fmt.Println(b.String())
	// Output:
	// {"id": "7", "request": "c6af9ac6-7b61-11e6-9a41-93e8deadbeef", "name": "pen", "missing": ""}
}
