package gateway

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
)

// wsTestTime is the time of every test event; wsTestConnectedAt the connection's
// start.
var (
	wsTestTime        = time.Date(2026, time.November, 25, 11, 5, 0, 453_000_000, time.FixedZone("CET", 3600))
	wsTestConnectedAt = time.Date(2026, time.November, 25, 10, 4, 57, 419_000_000, time.UTC)
)

// wsTestContext returns the context common to the test events.
func wsTestContext(eventType, routeKey string) WSEventContext {
	return WSEventContext{
		EventType:      eventType,
		RouteKey:       routeKey,
		APIID:          "dl7ptocha9",
		Stage:          "prod",
		DomainName:     "dl7ptocha9.execute-api.local",
		ConnectionID:   "R1kmxc2VNjMCFIA=",
		RequestID:      "R1knPH17NjMFftw=",
		ConnectedAt:    wsTestConnectedAt,
		Time:           wsTestTime,
		SourceIP:       "203.0.113.7",
		UserAgent:      "Mozilla/5.0 <test> & co",
		StageVariables: map[string]string{"env": "prod"},
	}
}

// wsDecode decodes a WebSocket event into the aws-lambda-go type and into raw
// top-level and requestContext maps.
func wsDecode(t *testing.T, ev []byte) (events.APIGatewayWebsocketProxyRequest, map[string]json.RawMessage, map[string]json.RawMessage) {
	t.Helper()
	var req events.APIGatewayWebsocketProxyRequest
	dec := json.NewDecoder(bytes.NewReader(ev))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		t.Fatalf("decode %s: %v", ev, err)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(ev, &raw); err != nil {
		t.Fatal(err)
	}
	return req, raw, rc2raw(t, raw)
}

// wsCheckCommon checks the requestContext fields every event has.
func wsCheckCommon(t *testing.T, c WSEventContext, req events.APIGatewayWebsocketProxyRequest) {
	t.Helper()
	rc := req.RequestContext
	wantString(t, "routeKey", rc.RouteKey, c.RouteKey)
	wantString(t, "eventType", rc.EventType, c.EventType)
	wantString(t, "requestId", rc.RequestID, "R1knPH17NjMFftw=")
	wantString(t, "extendedRequestId", rc.ExtendedRequestID, "R1knPH17NjMFftw=")
	wantString(t, "requestTime", rc.RequestTime, "25/Nov/2026:10:05:00 +0000")
	if rc.RequestTimeEpoch != wsTestTime.UnixMilli() || rc.RequestTimeEpoch != 1795601100453 {
		t.Errorf("requestTimeEpoch = %d, want %d", rc.RequestTimeEpoch, wsTestTime.UnixMilli())
	}
	if rc.ConnectedAt != 1795601097419 {
		t.Errorf("connectedAt = %d, want %d", rc.ConnectedAt, int64(1795601097419))
	}
	wantString(t, "messageDirection", rc.MessageDirection, "IN")
	wantString(t, "stage", rc.Stage, "prod")
	wantString(t, "identity.sourceIp", rc.Identity.SourceIP, "203.0.113.7")
	wantString(t, "identity.userAgent", rc.Identity.UserAgent, "Mozilla/5.0 <test> & co")
	wantString(t, "domainName", rc.DomainName, "dl7ptocha9.execute-api.local")
	wantString(t, "connectionId", rc.ConnectionID, "R1kmxc2VNjMCFIA=")
	wantString(t, "apiId", rc.APIID, "dl7ptocha9")
	wantMap(t, "stageVariables", req.StageVariables, map[string]string{"env": "prod"})
	for _, unset := range []string{rc.AccountID, rc.ResourceID, rc.ResourcePath, rc.HTTPMethod, rc.Error, rc.IntegrationLatency, rc.Status, req.Resource, req.Path, req.HTTPMethod} {
		wantString(t, "unset field", unset, "")
	}
	if req.PathParameters != nil {
		t.Errorf("pathParameters = %v, want none", req.PathParameters)
	}
}

// wsWantKeys checks that raw has exactly the keys want.
func wsWantKeys(t *testing.T, what string, raw map[string]json.RawMessage, want ...string) {
	t.Helper()
	got := slices.Sorted(maps.Keys(raw))
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("%s keys = %q, want %q", what, got, want)
	}
}

// wsCommonKeys are the requestContext keys of every event.
var wsCommonKeys = []string{"routeKey", "eventType", "extendedRequestId", "requestTime", "messageDirection", "stage",
	"connectedAt", "requestTimeEpoch", "identity", "requestId", "domainName", "connectionId", "apiId"}

func TestBuildWSEventConnect(t *testing.T) {
	c := wsTestContext(WSEventConnect, "$connect")
	c.Headers = map[string][]string{
		"Host":                  {"dl7ptocha9.execute-api.local"},
		"Sec-WebSocket-Key":     {"dGhlIHNhbXBsZSBub25jZQ=="},
		"Sec-WebSocket-Version": {"13"},
		"X-Forwarded-For":       {"203.0.113.7"},
		"x-custom":              {"a", "b"},
		"X-Empty":               {""},
		"X-None":                {},
	}
	c.Query = map[string][]string{"token": {"abc"}, "tag": {"x", "y"}, "q": {"a b&c"}}
	c.Authorizer = map[string]any{"principalId": "user-1", "role": "admin", "n": 3}
	ev, err := BuildWSEvent(c)
	if err != nil {
		t.Fatal(err)
	}
	req, raw, rc := wsDecode(t, ev)
	wsCheckCommon(t, c, req)
	wantMap(t, "headers", req.Headers, map[string]string{
		"Host":                  "dl7ptocha9.execute-api.local",
		"Sec-WebSocket-Key":     "dGhlIHNhbXBsZSBub25jZQ==",
		"Sec-WebSocket-Version": "13",
		"X-Forwarded-For":       "203.0.113.7",
		"x-custom":              "b",
		"X-Empty":               "",
	})
	wantSlice(t, "multiValueHeaders[x-custom]", req.MultiValueHeaders["x-custom"], []string{"a", "b"})
	wantSlice(t, "multiValueHeaders[Host]", req.MultiValueHeaders["Host"], []string{"dl7ptocha9.execute-api.local"})
	if len(req.MultiValueHeaders) != 6 {
		t.Errorf("multiValueHeaders = %v, want 6 names", req.MultiValueHeaders)
	}
	wantMap(t, "queryStringParameters", req.QueryStringParameters, map[string]string{"token": "abc", "tag": "y", "q": "a b&c"})
	wantSlice(t, "multiValueQueryStringParameters[tag]", req.MultiValueQueryStringParameters["tag"], []string{"x", "y"})
	wantSlice(t, "multiValueQueryStringParameters[token]", req.MultiValueQueryStringParameters["token"], []string{"abc"})
	auth, ok := req.RequestContext.Authorizer.(map[string]any)
	if !ok || auth["principalId"] != "user-1" || auth["role"] != "admin" || auth["n"] != 3.0 {
		t.Errorf("authorizer = %#v", req.RequestContext.Authorizer)
	}
	if req.RequestContext.MessageID != nil || req.RequestContext.DisconnectStatusCode != 0 || req.RequestContext.DisconnectReason != nil {
		t.Errorf("message/disconnect fields set: %+v", req.RequestContext)
	}
	wantString(t, "body", req.Body, "")
	wantBool(t, "isBase64Encoded", req.IsBase64Encoded, false)

	wsWantKeys(t, "event", raw, "headers", "multiValueHeaders", "queryStringParameters",
		"multiValueQueryStringParameters", "stageVariables", "requestContext", "isBase64Encoded")
	wsWantKeys(t, "requestContext", rc, append(slices.Clone(wsCommonKeys), "authorizer")...)
	if !bytes.Contains(ev, []byte(`"userAgent":"Mozilla/5.0 <test> & co"`)) {
		t.Errorf("HTML escaped: %s", ev)
	}
	if !bytes.Contains(ev, []byte(`"requestTime":"25/Nov/2026:10:05:00 +0000"`)) {
		t.Errorf("requestTime not in CLF: %s", ev)
	}

	// Without headers, query, stage variables or authorizer, those are omitted.
	c = wsTestContext(WSEventConnect, "$connect")
	c.StageVariables = nil
	ev, err = BuildWSEvent(c)
	if err != nil {
		t.Fatal(err)
	}
	_, raw, rc = wsDecode(t, ev)
	wsWantKeys(t, "bare event", raw, "requestContext", "isBase64Encoded")
	wsWantKeys(t, "bare requestContext", rc, wsCommonKeys...)
}

func TestBuildWSEventMessage(t *testing.T) {
	for _, tc := range []struct {
		name       string
		body       []byte
		binary     bool
		wantBody   string
		wantBase64 bool
	}{
		{name: "text", body: []byte("{\r\n\t\"action\": \"send\", \"html\": \"<b>&</b>\"\r\n}"), wantBody: "{\r\n\t\"action\": \"send\", \"html\": \"<b>&</b>\"\r\n}"},
		{name: "unicode text", body: []byte("héllo 😀"), wantBody: "héllo 😀"},
		{name: "empty", body: nil, wantBody: ""},
		{name: "binary", body: []byte{0, 1, 2, 0xff, 'a'}, binary: true, wantBody: "AAEC/2E=", wantBase64: true},
		{name: "binary that is text", body: []byte("hi"), binary: true, wantBody: "aGk=", wantBase64: true},
		{name: "empty binary", body: []byte{}, binary: true, wantBody: ""},
		{name: "text not UTF-8", body: []byte{'a', 0xff}, wantBody: "Yf8=", wantBase64: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := wsTestContext(WSEventMessage, "send")
			c.MessageID = "R1knPc2ntjMCFIA="
			c.Body = tc.body
			c.Binary = tc.binary
			c.Headers = map[string][]string{"Host": {"ignored"}}
			c.Query = map[string][]string{"ignored": {"1"}}
			ev, err := BuildWSEvent(c)
			if err != nil {
				t.Fatal(err)
			}
			req, raw, rc := wsDecode(t, ev)
			wsCheckCommon(t, c, req)
			if id, _ := req.RequestContext.MessageID.(string); id != "R1knPc2ntjMCFIA=" {
				t.Errorf("messageId = %#v", req.RequestContext.MessageID)
			}
			wantString(t, "body", req.Body, tc.wantBody)
			wantBool(t, "isBase64Encoded", req.IsBase64Encoded, tc.wantBase64)
			if tc.wantBase64 {
				got, err := base64.StdEncoding.DecodeString(req.Body)
				if err != nil || !bytes.Equal(got, tc.body) {
					t.Errorf("body decodes to %q, %v; want %q", got, err, tc.body)
				}
			}
			if req.RequestContext.Authorizer != nil {
				t.Errorf("authorizer = %#v, want none", req.RequestContext.Authorizer)
			}
			wsWantKeys(t, "event", raw, "stageVariables", "requestContext", "body", "isBase64Encoded")
			wsWantKeys(t, "requestContext", rc, append(slices.Clone(wsCommonKeys), "messageId")...)
		})
	}
}

func TestBuildWSEventDisconnect(t *testing.T) {
	for _, tc := range []struct {
		name   string
		code   int
		reason string
	}{
		{name: "going away", code: 1001, reason: ""},
		{name: "normal with reason", code: 1000, reason: "bye \"now\""},
		{name: "no code", code: 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := wsTestContext(WSEventDisconnect, "$disconnect")
			c.StatusCode = tc.code
			c.Reason = tc.reason
			c.Headers = map[string][]string{"Host": {"dl7ptocha9.execute-api.local"}, "x-api-key": {""}, "X-Forwarded-For": {""}}
			c.Query = map[string][]string{"ignored": {"1"}}
			c.Body = []byte("ignored")
			c.Authorizer = map[string]any{"principalId": "user-1"}
			ev, err := BuildWSEvent(c)
			if err != nil {
				t.Fatal(err)
			}
			req, raw, rc := wsDecode(t, ev)
			wsCheckCommon(t, c, req)
			if req.RequestContext.DisconnectStatusCode != int64(tc.code) {
				t.Errorf("disconnectStatusCode = %d, want %d", req.RequestContext.DisconnectStatusCode, tc.code)
			}
			if r := req.RequestContext.DisconnectReason; r == nil || *r != tc.reason {
				t.Errorf("disconnectReason = %v, want %q", r, tc.reason)
			}
			wantMap(t, "headers", req.Headers, map[string]string{"Host": "dl7ptocha9.execute-api.local", "x-api-key": "", "X-Forwarded-For": ""})
			wantSlice(t, "multiValueHeaders[x-api-key]", req.MultiValueHeaders["x-api-key"], []string{""})
			wantString(t, "body", req.Body, "")
			wantBool(t, "isBase64Encoded", req.IsBase64Encoded, false)
			wsWantKeys(t, "event", raw, "headers", "multiValueHeaders", "stageVariables", "requestContext", "isBase64Encoded")
			wsWantKeys(t, "requestContext", rc, append(slices.Clone(wsCommonKeys), "disconnectStatusCode", "disconnectReason", "authorizer")...)
			if got := string(rc["disconnectStatusCode"]); got != itoaTest(tc.code) {
				t.Errorf("raw disconnectStatusCode = %s", got)
			}
		})
	}
}

func itoaTest(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}

// TestBuildWSEventGolden compares a whole MESSAGE event with the bytes API Gateway
// sends (field order included; only the values differ from a captured event).
func TestBuildWSEventGolden(t *testing.T) {
	c := wsTestContext(WSEventMessage, "$default")
	c.StageVariables = nil
	c.UserAgent = "Mozilla/5.0"
	c.MessageID = "R1knPc2ntjMCFIA="
	c.Body = []byte("{\r\n\t\"a\": 1\r\n}")
	ev, err := BuildWSEvent(c)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"requestContext":{"routeKey":"$default","messageId":"R1knPc2ntjMCFIA=","eventType":"MESSAGE",` +
		`"extendedRequestId":"R1knPH17NjMFftw=","requestTime":"25/Nov/2026:10:05:00 +0000","messageDirection":"IN",` +
		`"stage":"prod","connectedAt":1795601097419,"requestTimeEpoch":1795601100453,` +
		`"identity":{"userAgent":"Mozilla/5.0","sourceIp":"203.0.113.7"},"requestId":"R1knPH17NjMFftw=",` +
		`"domainName":"dl7ptocha9.execute-api.local","connectionId":"R1kmxc2VNjMCFIA=","apiId":"dl7ptocha9"},` +
		`"body":"{\r\n\t\"a\": 1\r\n}","isBase64Encoded":false}`
	if string(ev) != want {
		t.Errorf("event\n got %s\nwant %s", ev, want)
	}
}

func TestBuildWSEventDefaults(t *testing.T) {
	c := wsTestContext(WSEventConnect, "$connect")
	c.Time = time.Time{}
	c.ConnectedAt = time.Time{}
	before := time.Now().UnixMilli()
	ev, err := BuildWSEvent(c)
	if err != nil {
		t.Fatal(err)
	}
	req, _, _ := wsDecode(t, ev)
	rc := req.RequestContext
	if rc.RequestTimeEpoch < before || rc.RequestTimeEpoch > time.Now().UnixMilli() || rc.ConnectedAt != rc.RequestTimeEpoch {
		t.Errorf("requestTimeEpoch %d, connectedAt %d, want now (%d)", rc.RequestTimeEpoch, rc.ConnectedAt, before)
	}
	if _, err := time.Parse(eventTimeLayout, rc.RequestTime); err != nil {
		t.Errorf("requestTime %q: %v", rc.RequestTime, err)
	}

	for _, bad := range []string{"", "connect", "OPEN"} {
		if _, err := BuildWSEvent(wsTestContext(bad, "$default")); err == nil {
			t.Errorf("event type %q: no error", bad)
		}
	}
	c = wsTestContext(WSEventConnect, "$connect")
	c.Authorizer = map[string]any{"f": func() {}}
	if _, err := BuildWSEvent(c); err == nil {
		t.Error("unencodable authorizer: no error")
	}
}

func TestWSErrorFrame(t *testing.T) {
	for _, tc := range []struct {
		msg, conn, req, want string
	}{
		{"Forbidden", "R1kmxc2VNjMCFIA=", "R1knPH17NjMFftw=",
			`{"message": "Forbidden", "connectionId":"R1kmxc2VNjMCFIA=", "requestId":"R1knPH17NjMFftw="}`},
		{"Internal server error", "R1kmxc2VNjMCFIA=", "R1knPH17NjMFftw=",
			`{"message": "Internal server error", "connectionId":"R1kmxc2VNjMCFIA=", "requestId":"R1knPH17NjMFftw="}`},
		{"a \"q\" <&>\n é", "", "x",
			`{"message": "a \"q\" <&>\n é", "connectionId":"", "requestId":"x"}`},
	} {
		got := WSErrorFrame(tc.msg, tc.conn, tc.req)
		if string(got) != tc.want {
			t.Errorf("WSErrorFrame(%q) = %s, want %s", tc.msg, got, tc.want)
		}
		var v struct{ Message, ConnectionID, RequestID string }
		if err := json.Unmarshal(got, &v); err != nil || v.Message != tc.msg || v.ConnectionID != tc.conn || v.RequestID != tc.req {
			t.Errorf("WSErrorFrame(%q) decodes to %+v, %v", tc.msg, v, err)
		}
	}
}

func TestParseWSResponse(t *testing.T) {
	for _, tc := range []struct {
		name    string
		out     string
		status  int
		headers map[string]string
		body    string
		bad     bool
	}{
		{name: "status only", out: `{"statusCode":200}`, status: 200},
		{name: "refused", out: `{"statusCode":403,"body":"no"}`, status: 403, body: "no"},
		{name: "subprotocol", out: `{"statusCode":200,"headers":{"Sec-WebSocket-Protocol":"chat","X-N":1}}`, status: 200,
			headers: map[string]string{"Sec-WebSocket-Protocol": "chat", "X-N": "1"}},
		{name: "handshake headers dropped",
			out:    `{"statusCode":200,"headers":{"Sec-WebSocket-Accept":"x","sec-websocket-extensions":"permessage-deflate","Upgrade":"h2","Connection":"close","Content-Length":"9"}}`,
			status: 200},
		{name: "case duplicates, last sorted wins", out: `{"statusCode":200,"headers":{"x-a":"2","X-A":"1"}}`, status: 200,
			headers: map[string]string{"x-a": "2"}},
		{name: "base64 body", out: `{"statusCode":200,"body":"aGk=","isBase64Encoded":true}`, status: 200, body: "hi"},
		{name: "cookies ignored", out: `{"statusCode":200,"cookies":["a=1"]}`, status: 200},
		{name: "spaces around", out: " \n{\"statusCode\": 201, \"body\": \"x\"}\n", status: 201, body: "x"},
		{name: "escaped statusCode key", out: `{"status\u0043ode":204}`, status: 204},
		{name: "object without statusCode", out: `{"ok":true,"nested":{"statusCode":500}}`, status: 200, body: `{"ok":true,"nested":{"statusCode":500}}`},
		{name: "JSON string", out: `"hello"`, status: 200, body: "hello"},
		{name: "JSON number", out: ` 42 `, status: 200, body: "42"},
		{name: "null", out: `null`, status: 200, body: "null"},
		{name: "array", out: `[{"statusCode":500}]`, status: 200, body: `[{"statusCode":500}]`},
		{name: "not JSON", out: "hello\n", status: 200, body: "hello\n"},
		{name: "invalid JSON object", out: `{"statusCode":500`, status: 200, body: `{"statusCode":500`},
		{name: "empty", out: ``, status: 200},
		{name: "bad statusCode", out: `{"statusCode":"403"}`, bad: true},
		{name: "null statusCode", out: `{"statusCode":null}`, bad: true},
		{name: "statusCode out of range", out: `{"statusCode":101}`, bad: true},
		{name: "bad header", out: `{"statusCode":200,"headers":{"X":"a\nb"}}`, bad: true},
		{name: "bad base64", out: `{"statusCode":200,"body":"***","isBase64Encoded":true}`, bad: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, headers, body, err := ParseWSResponse([]byte(tc.out))
			if tc.bad {
				if !errors.Is(err, ErrMalformedResponse) {
					t.Errorf("err = %v, want ErrMalformedResponse", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if status != tc.status {
				t.Errorf("status = %d, want %d", status, tc.status)
			}
			if !maps.Equal(headers, tc.headers) || (headers != nil && len(headers) == 0) {
				t.Errorf("headers = %#v, want %#v", headers, tc.headers)
			}
			if string(body) != tc.body {
				t.Errorf("body = %q, want %q", body, tc.body)
			}
		})
	}
}

func BenchmarkBuildWSEvent(b *testing.B) {
	c := wsTestContext(WSEventMessage, "send")
	c.MessageID = "R1knPc2ntjMCFIA="
	c.Body = []byte(`{"action":"send","data":{"text":"hello, world","to":["ann","bob"]}}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := BuildWSEvent(c); err != nil {
			b.Fatal(err)
		}
	}
}
