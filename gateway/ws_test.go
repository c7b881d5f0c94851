package gateway

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fasthttp/websocket"

	"gatehouse.dev/gatehouse/connections"
	"gatehouse.dev/gatehouse/internal/bus"
	"gatehouse.dev/gatehouse/internal/tlsconf"
)

// wsWait bounds every wait for something the gateway does on its own (an event, a frame); a
// healthy test never comes near it.
const wsWait = 10 * time.Second

// newWSInvoker returns a fake invoker whose invocations can be waited for.
func newWSInvoker() *fakeInvoker { return &fakeInvoker{seen: make(chan bus.Invocation, 1000)} }

// waitInvocation waits for the next invocation of function, skipping others.
func waitInvocation(t *testing.T, inv *fakeInvoker, function string) (bus.Invocation, map[string]any) {
	t.Helper()
	timeout := time.After(wsWait)
	for {
		select {
		case c := <-inv.seen:
			if c.Function == function {
				return c, decodeEvent(t, c)
			}
		case <-timeout:
			t.Fatalf("no invocation of %s", function)
		}
	}
}

// wsTestAPI is a WebSocket API with stage prod; routes without a function get one named after
// their key ("$connect" → "connect").
func wsTestAPI(settings WebSocketSettings, routes ...Route) API {
	for i := range routes {
		if routes[i].Function == "" {
			routes[i].Function = strings.TrimPrefix(routes[i].Key, "$")
		}
	}
	return API{ID: "ws1", WebSocket: &settings, Routes: routes,
		Stages: []Stage{{Name: "prod", Variables: map[string]string{"v": "1"}}}}
}

// dial connects to the stage prod of ts.
func dial(t *testing.T, ts *testServer, d *websocket.Dialer, query string, header http.Header) (*websocket.Conn, *http.Response, error) {
	t.Helper()
	if d == nil {
		d = &websocket.Dialer{}
	}
	d.HandshakeTimeout = wsWait
	c, resp, err := d.Dial("ws"+strings.TrimPrefix(ts.base, "http")+"/prod"+query, header)
	if c != nil {
		t.Cleanup(func() { c.Close() })
	}
	return c, resp, err
}

// readFrame reads the next message of c.
func readFrame(t *testing.T, c *websocket.Conn) (int, string) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(wsWait))
	typ, data, err := c.ReadMessage()
	if err != nil {
		t.Fatalf("reading a frame: %v", err)
	}
	return typ, string(data)
}

// readClose reads until the server closes c, and returns the close code and reason.
func readClose(t *testing.T, c *websocket.Conn) (int, string) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(wsWait))
	for {
		_, _, err := c.ReadMessage()
		if err == nil {
			continue
		}
		var ce *websocket.CloseError
		if !errors.As(err, &ce) {
			t.Fatalf("the connection ended without a close frame: %v", err)
		}
		return ce.Code, ce.Text
	}
}

// connectionsURL is the @connections URL of a connection, its id encoded as the SDKs do.
func (ts *testServer) connectionsURL(id string) string {
	return "/prod/@connections/" + strings.ReplaceAll(id, "=", "%3D")
}

// manage makes a signed @connections request.
func (ts *testServer) manage(t *testing.T, method, id string, body []byte) response {
	t.Helper()
	req := ts.request(t, method, ts.connectionsURL(id), string(body))
	return ts.do(t, sign(t, req, body, testKeySecret))
}

// fakeConnections records the connection records the gateway keeps.
type fakeConnections struct {
	mu      sync.Mutex
	records map[string]connections.Record
	deleted []string
}

func (f *fakeConnections) Put(r connections.Record) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.records == nil {
		f.records = map[string]connections.Record{}
	}
	f.records[r.ID] = r
	return nil
}

func (f *fakeConnections) Delete(id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.records[id]; !ok {
		return connections.ErrNotFound
	}
	delete(f.records, id)
	f.deleted = append(f.deleted, id)
	return nil
}

func (f *fakeConnections) get(id string) (connections.Record, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r, ok := f.records[id]
	return r, ok
}

func TestWebSocketLifecycle(t *testing.T) {
	inv := newWSInvoker()
	var joinFails sync.Mutex
	failJoin := false
	inv.setScript(func(_ context.Context, c bus.Invocation) ([]byte, error) {
		switch c.Function {
		case "connect":
			return []byte(`{"statusCode":200,"headers":{"Sec-WebSocket-Protocol":"chat","X-Hello":"yes"}}`), nil
		case "join":
			joinFails.Lock()
			defer joinFails.Unlock()
			if failJoin {
				return nil, fmt.Errorf("%w: boom", bus.ErrFunctionError)
			}
			return []byte(`{"statusCode":200,"body":"joined"}`), nil
		}
		return []byte(`{"statusCode":200,"body":"not sent: no route response"}`), nil
	})
	store := &fakeConnections{}
	ts := startServer(t, Config{NodeID: "testnode", Connections: store, Verifier: testVerifier(t), APIs: []API{wsTestAPI(WebSocketSettings{},
		Route{Key: "$connect"}, Route{Key: "$disconnect"}, Route{Key: "join", RouteResponse: true}, Route{Key: "$default"})}}, inv)

	c, resp, err := dial(t, ts, &websocket.Dialer{Subprotocols: []string{"chat"}}, "?room=a&room=b", http.Header{"X-Custom": {"c1"},
		"User-Agent": {"ws-test/1.0"}})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	if c.Subprotocol() != "chat" || resp.Header.Get("X-Hello") != "yes" || resp.Header.Get(HeaderRequestID) == "" {
		t.Errorf("handshake: subprotocol %q, headers %v", c.Subprotocol(), resp.Header)
	}
	connect, ev := waitInvocation(t, inv, "connect")
	id, _ := path(ev, "requestContext.connectionId").(string)
	for k, want := range map[string]string{
		"requestContext.eventType": "CONNECT", "requestContext.routeKey": "$connect", "requestContext.stage": "prod",
		"requestContext.apiId": "ws1", "headers.X-Custom": "c1", "multiValueQueryStringParameters.room": "[a b]",
		"queryStringParameters.room": "b", "stageVariables.v": "1", "requestContext.identity.userAgent": "ws-test/1.0",
		"requestContext.identity.sourceIp": "127.0.0.1", "requestContext.requestId": resp.Header.Get(HeaderRequestID),
	} {
		if got := fmt.Sprint(path(ev, k)); got != want {
			t.Errorf("CONNECT %s = %s, want %s", k, got, want)
		}
	}
	if connect.RequestID != resp.Header.Get(HeaderRequestID) {
		t.Errorf("$connect request id %s, handshake's %s", connect.RequestID, resp.Header.Get(HeaderRequestID))
	}
	if rec, ok := store.get(id); !ok || rec.API != "ws1" || rec.Stage != "prod" || rec.UserAgent != "ws-test/1.0" {
		t.Errorf("connection record %+v, %v", rec, ok)
	}

	// Checklist 30: a message's route is its action; not JSON goes to $default.
	if err := c.WriteMessage(websocket.TextMessage, []byte(`{"action":"join","room":"a"}`)); err != nil {
		t.Fatal(err)
	}
	_, ev = waitInvocation(t, inv, "join")
	if got := fmt.Sprint(path(ev, "body"), " ", path(ev, "requestContext.eventType"), " ", path(ev, "requestContext.connectionId")); got != `{"action":"join","room":"a"} MESSAGE `+id {
		t.Errorf("join event: %s", got)
	}
	// Checklist 33: join has a route response, so its body reaches the client.
	if _, got := readFrame(t, c); got != "joined" {
		t.Errorf("route response %q, want joined", got)
	}
	c.WriteMessage(websocket.TextMessage, []byte("hello"))
	if _, ev = waitInvocation(t, inv, "default"); path(ev, "body") != "hello" || path(ev, "requestContext.routeKey") != "$default" {
		t.Errorf("$default event: %v", ev)
	}
	c.WriteMessage(websocket.BinaryMessage, []byte{0, 1, 2})
	if _, ev = waitInvocation(t, inv, "default"); path(ev, "body") != "AAEC" || path(ev, "isBase64Encoded") != true {
		t.Errorf("binary message event: body %v, isBase64Encoded %v", path(ev, "body"), path(ev, "isBase64Encoded"))
	}

	// A failed integration answers the client with API Gateway's error frame; the socket stays open.
	joinFails.Lock()
	failJoin = true
	joinFails.Unlock()
	c.WriteMessage(websocket.TextMessage, []byte(`{"action":"join"}`))
	failed, _ := waitInvocation(t, inv, "join")
	_, got := readFrame(t, c)
	if want := string(WSErrorFrame("Internal server error", id, failed.RequestID)); got != want {
		t.Errorf("error frame %s, want %s", got, want)
	}

	// @connections: checklist 34, 35, 36.
	if r := ts.do(t, ts.request(t, "POST", ts.connectionsURL(id), "x")); r.status != 403 || r.header.Get("x-amzn-ErrorType") != "ForbiddenException" {
		t.Errorf("unsigned POST: %v", r)
	}
	if r := ts.manage(t, "POST", id, []byte("pushed \x00 bytes")); r.status != 200 || r.body != "" {
		t.Errorf("POST: %v", r)
	}
	if typ, got := readFrame(t, c); got != "pushed \x00 bytes" || typ != websocket.TextMessage {
		t.Errorf("client got %d %q", typ, got)
	}
	if r := ts.manage(t, "POST", id, []byte{0xff, 0xfe}); r.status != 200 {
		t.Errorf("POST binary: %v", r)
	}
	if typ, got := readFrame(t, c); got != "\xff\xfe" || typ != websocket.BinaryMessage {
		t.Errorf("client got %d %q, want the binary frame", typ, got)
	}
	if r := ts.manage(t, "POST", id, bytes.Repeat([]byte("x"), DefaultMaxMessageBytes+1)); r.status != 413 ||
		r.header.Get("x-amzn-ErrorType") != "PayloadTooLargeException" {
		t.Errorf("POST 131073 bytes: %d %s", r.status, r.header.Get("x-amzn-ErrorType"))
	}
	if r := ts.manage(t, "POST", "n1-nosuchconnection=", []byte("x")); r.status != 410 || r.body != "" ||
		r.header.Get("x-amzn-ErrorType") != "GoneException" {
		t.Errorf("POST to an unknown id: %v", r)
	}
	r := ts.manage(t, "GET", id, nil)
	var view struct {
		ConnectedAt, LastActiveAt string
		Identity                  struct{ SourceIP, UserAgent string }
	}
	if err := json.Unmarshal([]byte(r.body), &view); r.status != 200 || err != nil || view.Identity.SourceIP != "127.0.0.1" ||
		view.Identity.UserAgent != "ws-test/1.0" {
		t.Errorf("GET: %v (%v)", r, err)
	}
	if _, err := time.Parse(isoMillis, view.ConnectedAt); err != nil {
		t.Errorf("connectedAt %q: %v", view.ConnectedAt, err)
	}
	if r := ts.manage(t, "PUT", id, nil); r.status != 404 {
		t.Errorf("PUT: %v", r)
	}
	if got := ts.ListConnections("ws1"); len(got) != 1 || got[0].ID != id {
		t.Errorf("ListConnections: %v", got)
	}
	if gone := ts.BroadcastToConnections(context.Background(), []string{id, "n1-gone"}, []byte("to all")); fmt.Sprint(gone) != "[n1-gone]" {
		t.Errorf("broadcast: gone %v", gone)
	}
	if _, got := readFrame(t, c); got != "to all" {
		t.Errorf("broadcast frame %q", got)
	}

	// Checklist 37: DELETE closes the socket; $disconnect follows with the close code.
	if r := ts.manage(t, "DELETE", id, nil); r.status != 204 {
		t.Errorf("DELETE: %v", r)
	}
	if code, _ := readClose(t, c); code != websocket.CloseNormalClosure {
		t.Errorf("close code %d, want 1000", code)
	}
	_, ev = waitInvocation(t, inv, "disconnect")
	if got := fmt.Sprint(path(ev, "requestContext.eventType"), " ", path(ev, "requestContext.disconnectStatusCode"), " ", path(ev, "requestContext.connectionId")); got != "DISCONNECT 1000 "+id {
		t.Errorf("DISCONNECT event: %s", got)
	}
	if r := ts.manage(t, "GET", id, nil); r.status != 410 {
		t.Errorf("GET after DELETE: %v", r)
	}
	if r := ts.manage(t, "DELETE", id, nil); r.status != 410 {
		t.Errorf("DELETE after DELETE: %v", r)
	}
	if _, ok := store.get(id); ok {
		t.Error("the connection record outlived the connection")
	}
}

func TestWebSocketNoRoute(t *testing.T) {
	inv := newWSInvoker()
	ts := startServer(t, Config{NodeID: "testnode", APIs: []API{wsTestAPI(WebSocketSettings{}, Route{Key: "join"})}}, inv)
	c, _, err := dial(t, ts, nil, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	c.WriteMessage(websocket.TextMessage, []byte("hello"))
	_, got := readFrame(t, c)
	var frame struct{ Message, ConnectionID, RequestID string }
	if err := json.Unmarshal([]byte(got), &frame); err != nil || frame.Message != "Forbidden" || frame.ConnectionID == "" ||
		!requestIDPattern.MatchString(frame.RequestID) || !strings.HasPrefix(got, `{"message": "Forbidden", "connectionId":`) {
		t.Errorf("checklist 31 frame %s", got)
	}
	if n := len(inv.invocations()); n != 0 {
		t.Errorf("%d invocations, want none", n)
	}
	// Without $connect and a connection store the socket still opens, and @connections without a
	// verifier refuses everyone.
	if r := ts.manage(t, "GET", frame.ConnectionID, nil); r.status != 403 {
		t.Errorf("@connections without a verifier: %v", r)
	}
}

func TestWebSocketHandshakeRefused(t *testing.T) {
	inv := newWSInvoker()
	authz := map[string]Authorizer{"a": {Type: AuthFunction, Function: "auth", IdentitySources: []string{"$request.querystring.token"}}}
	api := wsTestAPI(WebSocketSettings{}, Route{Key: "$connect", Auth: RouteAuth{Type: AuthFunction, Authorizer: "a"}}, Route{Key: "$default"})
	api.Authorizers = authz
	ts := startServer(t, Config{NodeID: "testnode", APIs: []API{api}}, inv)
	inv.setScript(byFunction(map[string]string{"auth": `{"isAuthorized":true,"context":{"user":"u1"}}`,
		"connect": `{"statusCode":403,"body":"go away"}`}))

	_, resp, err := dial(t, ts, nil, "", nil)
	if err == nil || resp == nil || resp.StatusCode != 401 {
		t.Errorf("no identity: %v %v, want 401", resp, err)
	}
	_, resp, err = dial(t, ts, nil, "?token=t", nil)
	if err == nil || resp == nil || resp.StatusCode != 403 {
		t.Fatalf("checklist 32 $connect answering 403: %v %v", resp, err)
	}
	if body, _ := io.ReadAll(resp.Body); string(body) != "go away" {
		t.Errorf("refusal body %q", body)
	}
	_, ev := waitInvocation(t, inv, "connect")
	if got := fmt.Sprint(path(ev, "requestContext.authorizer.user")); got != "u1" {
		t.Errorf("CONNECT authorizer context %v", path(ev, "requestContext.authorizer"))
	}
	// A malformed $connect answer is an integration failure: 500.
	inv.setScript(byFunction(map[string]string{"auth": `{"isAuthorized":true}`, "connect": `{"statusCode":"x"}`}))
	if _, resp, err = dial(t, ts, nil, "?token=t2", nil); err == nil || resp == nil || resp.StatusCode != 500 {
		t.Errorf("malformed $connect answer: %v %v", resp, err)
	}
	// A plain request to the stage root asks for an upgrade; other paths are not found.
	wantGatewayError(t, "plain GET", ts.get(t, "/prod"), 426, "Upgrade Required")
	wantGatewayError(t, "other path", ts.get(t, "/prod/x"), 404, "Not Found")
}

// TestWebSocketTooBig checks the 1009 closes: a message over maxMessageBytes (checklist 38), and a
// frame over maxFrameBytes while a message of the same size in smaller frames goes through.
func TestWebSocketTooBig(t *testing.T) {
	inv := newWSInvoker()
	ts := startServer(t, Config{NodeID: "testnode", APIs: []API{
		wsTestAPI(WebSocketSettings{MaxMessageBytes: 4096, MaxFrameBytes: 1024}, Route{Key: "$default"}, Route{Key: "$disconnect"}),
	}}, inv)

	t.Run("small frames", func(t *testing.T) {
		// The client's write buffer makes frames of at most 512 bytes.
		c, _, err := dial(t, ts, &websocket.Dialer{WriteBufferSize: 512}, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		msg := strings.Repeat("a", 3000)
		if err := c.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
			t.Fatal(err)
		}
		if _, ev := waitInvocation(t, inv, "default"); path(ev, "body") != msg {
			t.Errorf("a 3000-byte message in frames under the limit did not arrive whole")
		}
		c.WriteMessage(websocket.TextMessage, []byte("after"))
		if _, ev := waitInvocation(t, inv, "default"); path(ev, "body") != "after" {
			t.Errorf("next message: %v", path(ev, "body"))
		}
		c.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseGoingAway, "bye"))
		if _, ev := waitInvocation(t, inv, "disconnect"); fmt.Sprint(path(ev, "requestContext.disconnectStatusCode"), path(ev, "requestContext.disconnectReason")) != "1001bye" {
			t.Errorf("client close: %v", path(ev, "requestContext"))
		}
	})
	t.Run("frame too big", func(t *testing.T) {
		c, _, err := dial(t, ts, &websocket.Dialer{WriteBufferSize: 8192}, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		c.WriteMessage(websocket.TextMessage, []byte("first"))
		c.WriteMessage(websocket.TextMessage, []byte(strings.Repeat("b", 2000))) // one frame
		if code, reason := readClose(t, c); code != websocket.CloseMessageTooBig || reason != "Frame too big" {
			t.Errorf("closed with %d %q, want 1009 Frame too big", code, reason)
		}
		c.Close() // the gateway drains the client's bytes until it closes
		if _, ev := waitInvocation(t, inv, "default"); path(ev, "body") != "first" {
			t.Errorf("the message before the big frame: %v", path(ev, "body"))
		}
		if _, ev := waitInvocation(t, inv, "disconnect"); fmt.Sprint(path(ev, "requestContext.disconnectStatusCode")) != "1009" {
			t.Errorf("DISCONNECT %v", path(ev, "requestContext"))
		}
	})
	t.Run("message too big", func(t *testing.T) {
		c, _, err := dial(t, ts, &websocket.Dialer{WriteBufferSize: 512}, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		c.WriteMessage(websocket.TextMessage, []byte(strings.Repeat("c", 5000)))
		// The WebSocket library sends its own 1009 close frame, without a reason, before the gateway's.
		if code, _ := readClose(t, c); code != websocket.CloseMessageTooBig {
			t.Errorf("closed with %d, want 1009", code)
		}
		c.Close()
		if _, ev := waitInvocation(t, inv, "disconnect"); fmt.Sprint(path(ev, "requestContext.disconnectStatusCode")) != "1009" {
			t.Errorf("DISCONNECT %v", path(ev, "requestContext"))
		}
	})
	t.Run("invalid UTF-8", func(t *testing.T) {
		c, _, err := dial(t, ts, nil, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		c.WriteMessage(websocket.TextMessage, []byte("a\xffb"))
		if code, _ := readClose(t, c); code != websocket.CloseInvalidFramePayloadData {
			t.Errorf("closed with %d, want 1007", code)
		}
		c.Close()
		waitInvocation(t, inv, "disconnect")
	})
}

// TestWebSocketNoFrameLimit checks that MaxFrameBytes 0 leaves one big frame to the message limit.
func TestWebSocketNoFrameLimit(t *testing.T) {
	inv := newWSInvoker()
	ts := startServer(t, Config{NodeID: "testnode", APIs: []API{wsTestAPI(WebSocketSettings{MaxMessageBytes: 4096}, Route{Key: "$default"})}}, inv)
	c, _, err := dial(t, ts, &websocket.Dialer{WriteBufferSize: 8192}, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	msg := strings.Repeat("d", 4000)
	c.WriteMessage(websocket.TextMessage, []byte(msg))
	if _, ev := waitInvocation(t, inv, "default"); path(ev, "body") != msg {
		t.Error("a 4000-byte frame did not arrive")
	}
}

// TestShutdownClosesSockets checks that Shutdown closes open sockets with 1001 and waits for their
// $disconnect.
func TestShutdownClosesSockets(t *testing.T) {
	inv := newWSInvoker()
	s, err := New(Config{NodeID: "testnode", APIs: []API{wsTestAPI(WebSocketSettings{}, Route{Key: "$default"}, Route{Key: "$disconnect"})}}, inv)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve(ln) }()
	ts := &testServer{Server: s, base: "http://" + ln.Addr().String()}
	c, _, err := dial(t, ts, nil, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	// The client reads, and so answers the close frame, while Shutdown waits.
	closed := make(chan error, 1)
	go func() {
		c.SetReadDeadline(time.Now().Add(wsWait))
		for {
			if _, _, err := c.ReadMessage(); err != nil {
				closed <- err
				return
			}
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), wsWait)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-served; err != nil {
		t.Errorf("Serve: %v", err)
	}
	// Shutdown returned after $disconnect ran: it is already recorded.
	if n := len(inv.of("disconnect")); n != 1 {
		t.Errorf("%d $disconnect invocations when Shutdown returned, want 1", n)
	}
	if err := <-closed; !websocket.IsCloseError(err, websocket.CloseGoingAway) {
		t.Errorf("the client's read ended with %v, want a 1001 close", err)
	}
	if err := s.PostToConnection(ctx, "testnodeAAAAAAAAAAAAAAAA", []byte("x")); !errors.Is(err, ErrConnectionGone) {
		t.Errorf("post after Shutdown: %v", err)
	}
}

// TestShutdownClosesSilentConnections checks that connections on which a client sent nothing (a
// browser's preconnect, an HTTP client's spare connection), over plain TCP and after a TLS
// handshake, do not hold Shutdown up: it closes them, still waits for a WebSocket's $disconnect,
// and returns without its context's error. A request in flight meanwhile is answered.
func TestShutdownClosesSilentConnections(t *testing.T) {
	inv := newWSInvoker()
	inv.script = func(ctx context.Context, c bus.Invocation) ([]byte, error) {
		if c.Function == "slow" {
			time.Sleep(300 * time.Millisecond)
		}
		return []byte(`{"statusCode":200}`), nil
	}
	s, err := New(Config{NodeID: "testnode", APIs: []API{
		wsTestAPI(WebSocketSettings{}, Route{Key: "$default"}, Route{Key: "$disconnect"}),
		{ID: "web", Mount: "/web", Routes: []Route{{Key: "GET /slow", Function: "slow"}}},
	}}, inv)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := tlsconf.LoadOrCreateCA(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	cert, err := ca.Issue([]string{"localhost"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 2)
	go func() { served <- s.Serve(ln) }()
	go func() { served <- s.Serve(tls.NewListener(tln, &tls.Config{Certificates: []tls.Certificate{*cert}})) }()
	ts := &testServer{Server: s, base: "http://" + ln.Addr().String()}

	silent, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	pool := x509.NewCertPool()
	pool.AddCert(ca.Certificate())
	silentTLS, err := tls.Dial("tcp", tln.Addr().String(), &tls.Config{ServerName: "localhost", RootCAs: pool})
	if err != nil {
		t.Fatal(err)
	}
	defer silentTLS.Close()
	c, _, err := dial(t, ts, nil, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		c.SetReadDeadline(time.Now().Add(wsWait))
		for {
			if _, _, err := c.ReadMessage(); err != nil {
				return
			}
		}
	}()
	// A request begun before Shutdown is answered though Shutdown closes the silent ones.
	slow := make(chan error, 1)
	go func() {
		resp, err := http.Get(ts.base + "/web/slow")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				err = fmt.Errorf("status %d", resp.StatusCode)
			}
		}
		slow <- err
	}()
	waitInvocation(t, inv, "slow")

	ctx, cancel := context.WithTimeout(context.Background(), wsWait)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v (a silent connection held it up)", err)
	}
	for range 2 {
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	}
	if err := <-slow; err != nil {
		t.Errorf("the request in flight at Shutdown: %v", err)
	}
	if n := len(inv.of("disconnect")); n != 1 {
		t.Errorf("%d $disconnect invocations when Shutdown returned, want 1", n)
	}
	for name, conn := range map[string]net.Conn{"TCP": silent, "TLS": silentTLS} {
		conn.SetReadDeadline(time.Now().Add(wsWait))
		if n, err := conn.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("the silent %s connection after Shutdown: read %d bytes, %v; want it closed", name, n, err)
		}
	}
}

// chunkConn is a net.Conn whose reads return at most n bytes of data at a time.
type chunkConn struct {
	net.Conn
	data []byte
	n    int
}

func (c *chunkConn) Read(p []byte) (int, error) {
	if len(c.data) == 0 {
		return 0, io.EOF
	}
	k := min(len(p), c.n, len(c.data))
	copy(p, c.data[:k])
	c.data = c.data[k:]
	return k, nil
}

// clientFrame encodes a masked client frame with a payload of n bytes, with the shortest length
// encoding unless long forces the 8-byte one.
func clientFrame(n int, long bool) []byte {
	b := []byte{0x82} // FIN, binary
	switch {
	case long:
		b = append(b, 0x80|127, 0, 0, 0, 0, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	case n < 126:
		b = append(b, 0x80|byte(n))
	default:
		b = append(b, 0x80|126, byte(n>>8), byte(n))
	}
	b = append(b, 1, 2, 3, 4) // mask key
	return append(b, bytes.Repeat([]byte{'p'}, n)...)
}

// TestFrameLimitConn feeds frames to the frame limit in reads of every size: the bytes before the
// oversized frame come through, then the read fails, then reads pass through.
func TestFrameLimitConn(t *testing.T) {
	var stream []byte
	for _, f := range [][]byte{clientFrame(0, false), clientFrame(125, false), clientFrame(300, false), clientFrame(300, true)} {
		stream = append(stream, f...)
	}
	good := len(stream)
	stream = append(stream, clientFrame(301, false)...)
	stream = append(stream, "tail"...)
	for _, chunk := range []int{1, 2, 3, 7, 64, 1 << 12} {
		fc := limitFrames(&chunkConn{data: bytes.Clone(stream), n: chunk}, 300)
		var got []byte
		buf := make([]byte, 100)
		var err error
		for err == nil {
			var n int
			n, err = fc.Read(buf)
			got = append(got, buf[:n]...)
		}
		// What came through is the frames before the big one, and at most the part of its header
		// (8 bytes here) that came in earlier reads.
		if !errors.Is(err, errFrameTooBig) || len(got) < good || len(got) >= good+8 || !bytes.Equal(got, stream[:len(got)]) {
			t.Errorf("reads of %d: %d bytes then %v; want the %d bytes before the big frame, then errFrameTooBig", chunk, len(got), err, good)
			continue
		}
		rest, _ := io.ReadAll(fc)
		if !bytes.HasSuffix(rest, []byte("tail")) {
			t.Errorf("reads of %d: after the failure %q, want the rest of the stream", chunk, rest)
		}
	}
	if c := (&chunkConn{}); limitFrames(c, 0) != net.Conn(c) {
		t.Error("limit 0 wraps the connection")
	}
}

// TestWebSocketSlowClient checks that a client whose send queue fills up is disconnected and its
// posts answered 429.
func TestWebSocketSlowClient(t *testing.T) {
	inv := newWSInvoker()
	ts := startServer(t, Config{NodeID: "testnode", Verifier: testVerifier(t), APIs: []API{wsTestAPI(WebSocketSettings{SendQueue: 1}, Route{Key: "$connect"}, Route{Key: "$disconnect"})}}, inv)
	c, _, err := dial(t, ts, nil, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	_, ev := waitInvocation(t, inv, "connect")
	id := path(ev, "requestContext.connectionId").(string)
	// The client reads nothing: big posts fill the socket's buffers, then its queue of one.
	big := bytes.Repeat([]byte("z"), DefaultMaxMessageBytes)
	statuses := map[int]int{}
	for range 200 {
		r := ts.manage(t, "POST", id, big)
		statuses[r.status]++
		if r.status == 429 {
			if r.header.Get("x-amzn-ErrorType") != "LimitExceededException" {
				t.Errorf("429 without LimitExceededException: %v", r.header)
			}
			break
		}
		if r.status != 200 {
			t.Fatalf("POST: %d %s", r.status, r.body)
		}
	}
	if statuses[429] != 1 {
		// 25 MB went out without filling the socket's buffers: the queue never had to hold a post.
		t.Skipf("the socket buffers took all 200 posts: %v", statuses)
	}
	go func() { // now the client reads, and answers the close frame
		for {
			if _, _, err := c.ReadMessage(); err != nil {
				return
			}
		}
	}()
	if r := ts.manage(t, "POST", id, []byte("x")); r.status != 410 {
		t.Errorf("POST after the disconnect: %d, want 410", r.status)
	}
	_, ev = waitInvocation(t, inv, "disconnect")
	if code := fmt.Sprint(path(ev, "requestContext.disconnectStatusCode")); code != "1008" && code != "1006" {
		t.Errorf("disconnect code %s, want 1008 (or 1006 if the close frame could not be written)", code)
	}
	c.Close()
}
