package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/fasthttp/websocket"

	"gatehouse.dev/gatehouse/internal/bus"
	"gatehouse.dev/gatehouse/internal/spec"
)

// lineCatcher is an AccessLogger that keeps the lines.
type lineCatcher struct{ lines chan [2]string }

func (l *lineCatcher) Log(to AccessLogDestination, line []byte) {
	l.lines <- [2]string{to.Target, string(line)}
}

func (l *lineCatcher) next(t *testing.T) (string, string) {
	t.Helper()
	select {
	case got := <-l.lines:
		return got[0], got[1]
	case <-time.After(5 * time.Second):
		t.Fatal("no access log line")
	}
	return "", ""
}

// allVariables is a JSON format naming every variable.
func allVariables(extra ...string) string {
	var parts []string
	for _, v := range append(spec.AccessLogVariables(), extra...) {
		if v != "error.messageString" { // quoted by itself: tested on its own
			parts = append(parts, fmt.Sprintf("%q:\"$context.%s\"", v, v))
		}
	}
	return "{" + strings.Join(parts, ",") + "}"
}

func TestAccessLogHTTP(t *testing.T) {
	logs := &lineCatcher{lines: make(chan [2]string, 100)}
	inv := &fakeInvoker{script: func(_ context.Context, in bus.Invocation) ([]byte, error) {
		switch in.Function {
		case "ok":
			return []byte(`{"statusCode":201,"body":"hello"}`), nil
		case "auth":
			return []byte(`{"isAuthorized":true,"context":{"tenant":"acme","principalId":"user-7"}}`), nil
		}
		return nil, &bus.RemoteError{Code: bus.CodeFunctionError, Detail: `{"errorType":"ValueError","errorMessage":"bad \"input\""}`}
	}}
	api := API{ID: "web", Stages: []Stage{{Name: "prod", AccessLog: CompileAccessLog(spec.AccessLog{Format: allVariables("authorizer.tenant"), Destination: "group:web-logs"})}},
		Authorizers: map[string]Authorizer{"gate": {Type: AuthFunction, Function: "auth", IdentitySources: []string{"$request.header.x-token"}, Timeout: time.Second}},
		Routes: []Route{{Key: "GET /ok/{id}", Function: "ok"}, {Key: "GET /fail", Function: "fail"},
			{Key: "GET /gated", Function: "ok", Auth: RouteAuth{Type: AuthFunction, Authorizer: "gate"}}}}
	ts := startServer(t, Config{APIs: []API{api}, AccessLogs: logs, AccountID: "123456789012"}, inv)

	check := func(what string, r response, want map[string]string) {
		t.Helper()
		dest, line := logs.next(t)
		if dest != "group:web-logs" {
			t.Errorf("%s: destination %q", what, dest)
		}
		var got map[string]string
		if err := json.Unmarshal([]byte(line), &got); err != nil {
			t.Fatalf("%s: the line is not the JSON its format makes: %v\n%s", what, err, line)
		}
		want["requestId"], want["extendedRequestId"] = r.header.Get(HeaderRequestID), r.header.Get(HeaderRequestID)
		for k, w := range want {
			if strings.HasPrefix(w, "~") {
				if !regexp.MustCompile(w[1:]).MatchString(got[k]) {
					t.Errorf("%s: %s = %q, want it to match %s", what, k, got[k], w[1:])
				}
			} else if got[k] != w {
				t.Errorf("%s: %s = %q, want %q", what, k, got[k], w)
			}
		}
	}
	common := map[string]string{"apiId": "web", "accountId": "123456789012", "stage": "prod", "httpMethod": "GET", "protocol": "HTTP/1.1",
		"identity.sourceIp": "127.0.0.1", "identity.userAgent": "access-test/1.0", "domainName": "127.0.0.1", "domainPrefix": "127.0.0.1",
		"requestTime": `~^\d\d/[A-Z][a-z]{2}/\d{4}:\d\d:\d\d:\d\d \+0000$`, "requestTimeEpoch": `~^\d{13}$`, "responseLatency": `~^\d+$`,
		"eventType": "-", "connectionId": "-", "messageId": "-", "connectedAt": "-"}
	with := func(m map[string]string) map[string]string {
		out := map[string]string{}
		for k, v := range common {
			out[k] = v
		}
		for k, v := range m {
			out[k] = v
		}
		return out
	}
	ua := []string{"User-Agent", "access-test/1.0", "traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}

	r := ts.get(t, "/prod/ok/7", ua...)
	check("a function's answer", r, with(map[string]string{"path": "/prod/ok/7", "routeKey": "GET /ok/{id}", "status": "201", "responseLength": "5",
		"integrationStatus": "200", "integration.status": "201", "integrationLatency": `~^\d+$`, "integrationErrorMessage": "-",
		"error.message": "-", "error.responseType": "-", "authorizer.error": "-", "traceId": "4bf92f3577b34da6a3ce929d0e0e4736"}))

	r = ts.get(t, "/prod/fail", ua...)
	check("a failed function", r, with(map[string]string{"path": "/prod/fail", "routeKey": "GET /fail", "status": "500",
		"integrationStatus": "200", "integration.status": "-", "integrationErrorMessage": `bad "input"`,
		"error.message": "Internal Server Error", "error.responseType": "INTEGRATION_FAILURE"}))

	r = ts.get(t, "/prod/nowhere", ua...)
	check("no route", r, with(map[string]string{"path": "/prod/nowhere", "routeKey": "-", "status": "404", "integrationStatus": "-",
		"integrationLatency": "-", "error.message": "Not Found", "error.responseType": "RESOURCE_NOT_FOUND"}))

	r = ts.get(t, "/prod/gated", ua...)
	check("no identity source", r, with(map[string]string{"routeKey": "GET /gated", "status": "401", "error.responseType": "UNAUTHORIZED",
		"authorizer.error": "~Unauthorized", "integrationStatus": "-"}))

	r = ts.get(t, "/prod/gated", append(ua, "x-token", "t")...)
	check("an authorized request", r, with(map[string]string{"routeKey": "GET /gated", "status": "201", "authorizer.error": "-",
		"authorizer.principalId": "user-7", "authorizer.tenant": "acme"}))
}

func TestAccessLogPresets(t *testing.T) {
	logs := &lineCatcher{lines: make(chan [2]string, 10)}
	inv := &fakeInvoker{script: answer(`{"statusCode":200,"body":"hi"}`)}
	var stages []Stage
	for _, p := range []string{spec.AccessLogCLF, spec.AccessLogJSON, spec.AccessLogXML, spec.AccessLogCSV} {
		stages = append(stages, Stage{Name: p, AccessLog: CompileAccessLog(spec.AccessLog{Format: p, Destination: "stdout"})})
	}
	stages = append(stages, Stage{Name: "quoted", AccessLog: CompileAccessLog(spec.AccessLog{Format: `{"id":"$context.requestId","error":$context.error.messageString}`, Destination: "stdout"})})
	ts := startServer(t, Config{APIs: []API{{ID: "web", Stages: stages, Routes: []Route{{Key: "GET /hi", Function: "hi"}}}}, AccessLogs: logs}, inv)
	r := ts.get(t, "/quoted/nowhere")
	if _, line := logs.next(t); line != `{"id":"`+r.header.Get(HeaderRequestID)+`","error":"Not Found"}` {
		t.Errorf("$context.error.messageString: %s", line)
	}
	const when = `\d\d/[A-Z][a-z]{2}/\d{4}:\d\d:\d\d:\d\d \+0000`
	for preset, want := range map[string]string{
		spec.AccessLogCLF:  `^127\.0\.0\.1 - - \[` + when + `\] "GET GET /hi HTTP/1\.1" 200 2 ID$`,
		spec.AccessLogJSON: `^\{"requestId":"ID","ip":"127\.0\.0\.1","requestTime":"` + when + `","httpMethod":"GET","routeKey":"GET /hi","status":"200","protocol":"HTTP/1\.1","responseLength":"2"\}$`,
		spec.AccessLogXML:  `^<request id="ID"><ip>127\.0\.0\.1</ip><requestTime>` + when + `</requestTime><httpMethod>GET</httpMethod><routeKey>GET /hi</routeKey><status>200</status><protocol>HTTP/1\.1</protocol><responseLength>2</responseLength></request>$`,
		spec.AccessLogCSV:  `^127\.0\.0\.1,` + when + `,GET,GET /hi,HTTP/1\.1,200,2,ID$`,
	} {
		r := ts.get(t, "/"+preset+"/hi")
		_, line := logs.next(t)
		re := strings.ReplaceAll(want, "ID", regexp.QuoteMeta(r.header.Get(HeaderRequestID)))
		if !regexp.MustCompile(re).MatchString(line) {
			t.Errorf("preset %s:\n%s\nwant it to match\n%s", preset, line, re)
		}
	}
}

func TestAccessLogWebSocket(t *testing.T) {
	logs := &lineCatcher{lines: make(chan [2]string, 10)}
	inv := newWSInvoker()
	inv.setScript(func(_ context.Context, in bus.Invocation) ([]byte, error) {
		if in.Function == "boom" {
			return nil, errors.Join(bus.ErrFunctionError, errors.New("boom"))
		}
		return []byte(`{"statusCode":200}`), nil
	})
	api := wsTestAPI(WebSocketSettings{}, Route{Key: "$connect"}, Route{Key: "$disconnect"}, Route{Key: "$default", Function: "boom"})
	api.Stages[0].AccessLog = CompileAccessLog(spec.AccessLog{Format: `$context.eventType $context.routeKey $context.status $context.connectionId $context.messageId $context.requestId $context.integrationErrorMessage`,
		Destination: "stdout"})
	ts := startServer(t, Config{APIs: []API{api}, NodeID: "node0001", Connections: &fakeConnections{}, AccessLogs: logs}, inv)
	c, _, err := dial(t, ts, nil, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	_, line := logs.next(t)
	f := strings.Fields(line)
	if len(f) != 7 || f[0] != "CONNECT" || f[1] != "$connect" || f[2] != "200" || len(f[3]) < 8 || f[4] != "-" || f[6] != "-" {
		t.Errorf("$connect: %q", line)
	}
	id := f[3]
	if err := c.WriteMessage(websocket.TextMessage, []byte("hello")); err != nil {
		t.Fatal(err)
	}
	_, line = logs.next(t)
	f = strings.Fields(line)
	if len(f) < 7 || f[0] != "MESSAGE" || f[1] != "$default" || f[2] != "500" || f[3] != id || f[4] == "-" || f[6] == "-" {
		t.Errorf("a message whose function failed: %q", line)
	}
	c.Close()
	_, line = logs.next(t)
	if f = strings.Fields(line); len(f) != 7 || f[0] != "DISCONNECT" || f[3] != id {
		t.Errorf("$disconnect: %q", line)
	}
}

// BenchmarkAccessLine measures what an access log costs a request on its path: rendering the JSON
// preset's line (the writing happens off the path).
func BenchmarkAccessLine(b *testing.B) {
	s, err := New(Config{}, &fakeInvoker{})
	if err != nil {
		b.Fatal(err)
	}
	f := CompileAccessLog(spec.AccessLog{Format: spec.AccessLogJSON, Destination: "stdout"})
	api := &compiledAPI{API: API{ID: "web"}}
	info := accessInfo{api: api, stage: &Stage{Name: "$default"}, routeKey: "GET /hello", requestID: "Mc7UVioPPHcEKPA=", start: time.Now(),
		method: "GET", path: "/hello", protocol: "HTTP/1.1", sourceIP: "127.0.0.1", userAgent: "curl/8.5.0", domain: "127.0.0.1",
		status: 200, responseLength: 35, integrationStatus: 200}
	b.ReportAllocs()
	for b.Loop() {
		_ = s.accessLine(f, &info)
	}
}
