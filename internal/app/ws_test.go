package app

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/fasthttp/websocket"

	"gatehouse.dev/gatehouse/connections"
)

// The access key of testdata/ws-stack.yaml.
const (
	wsKeyID     = "AKIAIOSFODNN7EXAMPLE"
	wsKeySecret = "wJalrXUtnFEMIK7MDENGbPxRfiCYEXAMPLEKEY"
)

// wsTimeout bounds every wait on a socket, so that no test hangs.
const wsTimeout = 15 * time.Second

// wsAnswer is what the wsecho function answers to a message.
type wsAnswer struct {
	RouteKey     string `json:"routeKey"`
	EventType    string `json:"eventType"`
	ConnectionID string `json:"connectionId"`
	Body         string `json:"body"`
	Stage        string `json:"stage"`
}

// wsErrorFrame is the frame the gateway sends when a message matched no route or its function failed.
type wsErrorFrame struct {
	Message      string `json:"message"`
	ConnectionID string `json:"connectionId"`
	RequestID    string `json:"requestId"`
}

var wsDialer = &websocket.Dialer{HandshakeTimeout: wsTimeout}

// wsDial opens a socket to path on n's gateway; the socket is closed when the test ends.
func wsDial(t *testing.T, n *Node, path string, header http.Header) *websocket.Conn {
	t.Helper()
	c, resp, err := wsDialer.Dial("ws://"+n.GatewayAddr()+path, header)
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		t.Fatalf("dialing %s: %v (status %d)", path, err, status)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// wsRead reads the next frame, failing the test when there is none within wsTimeout.
func wsRead(t *testing.T, c *websocket.Conn) (int, []byte) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(wsTimeout))
	typ, data, err := c.ReadMessage()
	if err != nil {
		t.Fatalf("reading a frame: %v", err)
	}
	return typ, data
}

// wsSend writes a text frame.
func wsSend(t *testing.T, c *websocket.Conn, msg string) {
	t.Helper()
	c.SetWriteDeadline(time.Now().Add(wsTimeout))
	if err := c.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
		t.Fatalf("sending %q: %v", msg, err)
	}
}

// wsAsk sends msg and decodes the function's answer, which must be the next frame.
func wsAsk(t *testing.T, c *websocket.Conn, msg string) wsAnswer {
	t.Helper()
	wsSend(t, c, msg)
	_, data := wsRead(t, c)
	var a wsAnswer
	if err := json.Unmarshal(data, &a); err != nil || a.EventType == "" {
		t.Fatalf("sent %.60q: got frame %.200q, want the function's answer (%v)", msg, data, err)
	}
	return a
}

// wsID returns the socket's connection id, as the function sees it.
func wsID(t *testing.T, c *websocket.Conn) string {
	t.Helper()
	a := wsAsk(t, c, `{"action":"echo"}`)
	if len(a.ConnectionID) != connections.IDLen {
		t.Fatalf("connection id %q: want %d characters", a.ConnectionID, connections.IDLen)
	}
	return a.ConnectionID
}

// wsCloseErr reads (and drops) frames until the socket ends, and returns how it ended.
func wsCloseErr(t *testing.T, c *websocket.Conn) error {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(wsTimeout))
	for {
		if _, _, err := c.ReadMessage(); err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Fatalf("the socket did not close within %v", wsTimeout)
			}
			return err
		}
	}
}

// wsWantClose reads until the socket ends, which must be with a close frame of code.
func wsWantClose(t *testing.T, c *websocket.Conn, code int) *websocket.CloseError {
	t.Helper()
	err := wsCloseErr(t, c)
	var ce *websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != code {
		t.Fatalf("the socket ended with %v, want a close frame with code %d", err, code)
	}
	return ce
}

// signed returns a request signed by the AWS SDK's SigV4 signer with the given secret, at time at.
func signed(t *testing.T, method, url string, body []byte, secret string, at time.Time) *http.Request {
	t.Helper()
	req := newRequest(t, method, url, bytes.NewReader(body))
	sum := sha256.Sum256(body)
	creds := aws.Credentials{AccessKeyID: wsKeyID, SecretAccessKey: secret}
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, hex.EncodeToString(sum[:]), "execute-api", "us-east-1", at); err != nil {
		t.Fatal(err)
	}
	return req
}

// manage makes a correctly signed @connections request.
func manage(t *testing.T, method, url string, body []byte) response {
	t.Helper()
	return do(t, signed(t, method, url, body, wsKeySecret, time.Now()))
}

func wantGone(t *testing.T, what string, r response) {
	t.Helper()
	if r.status != http.StatusGone || r.header.Get("x-amzn-ErrorType") != "GoneException" {
		t.Errorf("%s: %d (x-amzn-ErrorType %q) %s, want 410 GoneException", what, r.status, r.header.Get("x-amzn-ErrorType"), r.body)
	}
}

func wantForbidden(t *testing.T, what string, r response) {
	t.Helper()
	var m struct{ Message string }
	json.Unmarshal(r.body, &m)
	if r.status != http.StatusForbidden || m.Message != "Forbidden" {
		t.Errorf("%s: %d %s, want 403 {\"message\":\"Forbidden\"}", what, r.status, r.body)
	}
}

// waitLog waits for a line of the wsecho function's output that starts with prefix, and returns it.
func waitLog(t *testing.T, n *Node, prefix string) string {
	t.Helper()
	deadline := time.Now().Add(wsTimeout)
	var seen []string
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		recs, err := n.logs.Recent(ctx, "wsecho", 500)
		cancel()
		seen = seen[:0]
		for _, r := range recs {
			if strings.HasPrefix(r.Message, prefix) {
				return strings.TrimRight(r.Message, "\n")
			}
			seen = append(seen, r.Message)
		}
		if time.Now().After(deadline) {
			t.Fatalf("no log line %q within %v (err %v); the last lines:\n%s", prefix, wsTimeout, err, strings.Join(lastN(seen, 20), "\n"))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func lastN(s []string, n int) []string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// waitCount waits for the node to hold want connection records.
func waitCount(t *testing.T, n *Node, want int) {
	t.Helper()
	deadline := time.Now().Add(wsTimeout)
	for {
		got, err := n.conns.Count()
		if err != nil {
			t.Fatal(err)
		}
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d connection records, want %d", got, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

var isoMillisRE = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$`)

// TestWebSocket runs WebSocket APIs end to end on one node with the stack in testdata/ws-stack.yaml:
// message routing, $connect and $disconnect, @connections with the AWS SDK's signer, limits, slow
// clients and connection records.
func TestWebSocket(t *testing.T) {
	n := startNode(t, "testdata/ws-stack.yaml", newDataDir(t))
	t.Cleanup(func() { n.Stop(context.Background()) })
	base := "http://" + n.GatewayAddr()

	t.Run("Messages", func(t *testing.T) {
		c := wsDial(t, n, "/chat", nil)
		a := wsAsk(t, c, `{"action":"echo"}`)
		if a.RouteKey != "echo" || a.EventType != "MESSAGE" || len(a.ConnectionID) != connections.IDLen ||
			a.Body != `{"action":"echo"}` || a.Stage != "$default" {
			t.Errorf("echo: %+v", a)
		}
		id := a.ConnectionID
		if a := wsAsk(t, c, "not json"); a.RouteKey != "$default" || a.Body != "not json" || a.ConnectionID != id {
			t.Errorf("not json: %+v, want the $default route on connection %s", a, id)
		}
		if a := wsAsk(t, c, `{"action":"nope"}`); a.RouteKey != "$default" {
			t.Errorf("an unknown action: %+v, want the $default route", a)
		}
		// quiet has no route response: the next frame is the echo that follows it.
		wsSend(t, c, `{"action":"quiet"}`)
		if a := wsAsk(t, c, `{"action":"echo","n":2}`); a.RouteKey != "echo" || a.Body != `{"action":"echo","n":2}` {
			t.Errorf("after quiet: %+v, want the answer to the echo that followed it", a)
		}
		// A function that fails: an error frame, and the socket stays open.
		wsSend(t, c, `{"action":"fail"}`)
		_, data := wsRead(t, c)
		var ef wsErrorFrame
		if err := json.Unmarshal(data, &ef); err != nil || ef.Message != "Internal server error" || ef.ConnectionID != id || ef.RequestID == "" {
			t.Errorf("fail: frame %s, want {\"message\": \"Internal server error\", \"connectionId\":%q, \"requestId\":…}", data, id)
		}
		if a := wsAsk(t, c, `{"action":"echo"}`); a.RouteKey != "echo" || a.ConnectionID != id {
			t.Errorf("echo after a failure: %+v", a)
		}

		// An API without $default: a message that matches no route is Forbidden.
		s := wsDial(t, n, "/strict/prod", nil)
		a = wsAsk(t, s, `{"action":"echo"}`)
		if a.RouteKey != "echo" || a.Stage != "prod" {
			t.Errorf("strict echo: %+v, want route echo on stage prod", a)
		}
		sid := a.ConnectionID
		for _, msg := range []string{`{"action":"nope"}`, "not json"} {
			wsSend(t, s, msg)
			_, data = wsRead(t, s)
			ef = wsErrorFrame{}
			if err := json.Unmarshal(data, &ef); err != nil || ef.Message != "Forbidden" || ef.ConnectionID != sid || ef.RequestID == "" {
				t.Errorf("strict %s: frame %s, want {\"message\": \"Forbidden\", \"connectionId\":%q, \"requestId\":…}", msg, data, sid)
			}
		}
		if a := wsAsk(t, s, `{"action":"echo"}`); a.RouteKey != "echo" {
			t.Errorf("strict echo after Forbidden: %+v", a)
		}
	})

	t.Run("ConnectRefused", func(t *testing.T) {
		before, err := n.conns.Count()
		if err != nil {
			t.Fatal(err)
		}
		for _, status := range []int{403, 401} {
			c, resp, err := wsDialer.Dial(fmt.Sprintf("ws://%s/chat?deny=%d", n.GatewayAddr(), status), nil)
			if err == nil {
				c.Close()
				t.Errorf("deny=%d: the handshake succeeded", status)
				continue
			}
			if !errors.Is(err, websocket.ErrBadHandshake) || resp == nil || resp.StatusCode != status {
				got := 0
				if resp != nil {
					got = resp.StatusCode
				}
				t.Errorf("deny=%d: %v, status %d", status, err, got)
				continue
			}
			body, _ := io.ReadAll(resp.Body)
			if string(body) != "denied" {
				t.Errorf("deny=%d: body %q, want the function's \"denied\"", status, body)
			}
		}
		if after, _ := n.conns.Count(); after > before {
			t.Errorf("refused connections left records: %d, before %d", after, before)
		}
	})

	t.Run("Connections", func(t *testing.T) {
		const ua = "gatehouse-ws-test/1.0"
		c := wsDial(t, n, "/chat", http.Header{"User-Agent": {ua}})
		id := wsID(t, c)
		url := base + "/chat/@connections/" + id

		// POST: the client receives exactly the body.
		for _, body := range [][]byte{[]byte(`hello from the server`), {0xff, 0x00, 0x01, 0xfe}, bytes.Repeat([]byte("m"), 4096)} {
			if r := manage(t, "POST", url, body); r.status != 200 {
				t.Fatalf("POST %d bytes: %d %s", len(body), r.status, r.body)
			}
			_, got := wsRead(t, c)
			if !bytes.Equal(got, body) {
				t.Errorf("posted %.40q, the client received %.40q", body, got)
			}
		}

		// GET describes the connection.
		type view struct {
			ConnectedAt  string `json:"connectedAt"`
			LastActiveAt string `json:"lastActiveAt"`
			Identity     struct {
				SourceIP  string `json:"sourceIp"`
				UserAgent string `json:"userAgent"`
			} `json:"identity"`
		}
		get := func() view {
			t.Helper()
			r := manage(t, "GET", url, nil)
			var v view
			if r.status != 200 || json.Unmarshal(r.body, &v) != nil {
				t.Fatalf("GET: %d %s", r.status, r.body)
			}
			if !isoMillisRE.MatchString(v.ConnectedAt) || !isoMillisRE.MatchString(v.LastActiveAt) {
				t.Errorf("GET: connectedAt %q, lastActiveAt %q: want ISO 8601 with milliseconds", v.ConnectedAt, v.LastActiveAt)
			}
			if v.Identity.SourceIP != "127.0.0.1" || v.Identity.UserAgent != ua {
				t.Errorf("GET: identity %+v, want sourceIp 127.0.0.1 and userAgent %q", v.Identity, ua)
			}
			return v
		}
		// Other requests reuse the HTTP server's buffers: what the connection kept from its own
		// request must not change with them.
		churn := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
		for i := range 50 {
			req, _ := http.NewRequest("GET", base+"/nowhere", nil)
			req.Header.Set("User-Agent", fmt.Sprintf("other-client-%08d", i))
			if resp, err := churn.Do(req); err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		}
		v1 := get()
		if v1.LastActiveAt < v1.ConnectedAt {
			t.Errorf("GET: lastActiveAt %s before connectedAt %s", v1.LastActiveAt, v1.ConnectedAt)
		}
		time.Sleep(20 * time.Millisecond)
		wsAsk(t, c, `{"action":"echo"}`)
		if v2 := get(); v2.LastActiveAt <= v1.LastActiveAt || v2.ConnectedAt != v1.ConnectedAt {
			t.Errorf("GET after a message: %+v, before %+v: want lastActiveAt later, connectedAt the same", v2, v1)
		}

		// Refused: unsigned, signed with the wrong secret, signed too long ago; on every method.
		for _, method := range []string{"POST", "GET", "DELETE"} {
			wantForbidden(t, method+" unsigned", do(t, newRequest(t, method, url, strings.NewReader("x"))))
			wantForbidden(t, method+" with a wrong secret", do(t, signed(t, method, url, []byte("x"), "not-the-secret", time.Now())))
			wantForbidden(t, method+" signed 6 minutes ago", do(t, signed(t, method, url, []byte("x"), wsKeySecret, time.Now().Add(-6*time.Minute))))
		}
		// A signed request whose body was changed after signing.
		req := signed(t, "POST", url, []byte("signed body"), wsKeySecret, time.Now())
		req.Body = io.NopCloser(strings.NewReader("other body!"))
		wantForbidden(t, "POST with another body", do(t, req))

		// Too large for the API's maxMessageBytes.
		if r := manage(t, "POST", url, bytes.Repeat([]byte("x"), 4097)); r.status != http.StatusRequestEntityTooLarge {
			t.Errorf("POST 4097 bytes: %d %s, want 413", r.status, r.body)
		}

		// Connections that do not exist: of a node that is not up, malformed, never opened.
		other := "AAAAAAAA"
		if other == n.nodeID {
			other = "BBBBBBBB"
		}
		mine := connections.NewID(n.nodeID)
		for _, gone := range []string{connections.NewID(other), "nope", mine} {
			for _, method := range []string{"POST", "GET", "DELETE"} {
				wantGone(t, method+" "+gone, manage(t, method, base+"/chat/@connections/"+gone, []byte("x")))
			}
		}

		// None of that reached the client: the next frame is the answer to this echo.
		if a := wsAsk(t, c, `{"action":"echo"}`); a.RouteKey != "echo" {
			t.Errorf("echo: %+v", a)
		}

		// DELETE closes the socket; the connection is gone after.
		if r := manage(t, "DELETE", url, nil); r.status != http.StatusNoContent {
			t.Fatalf("DELETE: %d %s", r.status, r.body)
		}
		// Gone at once, before the client has answered the close frame, and after.
		wantGone(t, "POST right after DELETE", manage(t, "POST", url, []byte("late")))
		wantGone(t, "GET right after DELETE", manage(t, "GET", url, nil))
		wantGone(t, "DELETE right after DELETE", manage(t, "DELETE", url, nil))
		wsWantClose(t, c, websocket.CloseNormalClosure)
		wantGone(t, "POST after the close", manage(t, "POST", url, []byte("late")))
		wantGone(t, "GET after the close", manage(t, "GET", url, nil))
		wantGone(t, "DELETE after the close", manage(t, "DELETE", url, nil))
	})

	// Posts queue up while the client is busy: each must reach it with the bytes it was posted with,
	// whatever the gateway does with its request buffers meanwhile.
	t.Run("PostsQueued", func(t *testing.T) {
		body := func(i int) []byte {
			b := bytes.Repeat([]byte{byte('a' + i%26)}, 4096)
			copy(b, fmt.Sprintf("post %06d ", i))
			return b
		}
		// How many posts a client that does not read takes: the socket buffers and the send queue
		// (256) hold that many, the next is refused.
		probe := wsDial(t, n, "/chat", nil)
		url := base + "/chat/@connections/" + wsID(t, probe)
		capacity := 0
		for ; capacity < 20000; capacity++ {
			r := manage(t, "POST", url, body(capacity))
			if r.status == http.StatusTooManyRequests {
				break
			}
			if r.status != 200 {
				t.Fatalf("post %d: %d %s", capacity, r.status, r.body)
			}
		}
		// As many as leave about half the send queue full, to a client that reads only after the last.
		posts := capacity - 128
		if posts < 1 {
			t.Fatalf("capacity %d", capacity)
		}
		c := wsDial(t, n, "/chat", nil)
		url = base + "/chat/@connections/" + wsID(t, c)
		for i := range posts {
			if r := manage(t, "POST", url, body(i)); r.status != 200 {
				t.Fatalf("post %d of %d (capacity %d): %d %s", i, posts, capacity, r.status, r.body)
			}
		}
		bad := 0
		for i := range posts {
			_, got := wsRead(t, c)
			if want := body(i); !bytes.Equal(got, want) {
				if bad++; bad <= 5 {
					t.Errorf("message %d: received %d bytes starting %.12q, want %d bytes starting %.12q", i, len(got), got, len(want), want)
				}
			}
		}
		if bad > 0 {
			t.Errorf("%d of %d messages (capacity %d) were not the bytes posted", bad, posts, capacity)
		}
	})

	t.Run("ConnectionsWithStage", func(t *testing.T) {
		c := wsDial(t, n, "/strict/prod", nil)
		id := wsID(t, c)
		if r := manage(t, "POST", base+"/strict/prod/@connections/"+id, []byte("to prod")); r.status != 200 {
			t.Fatalf("POST /strict/prod/@connections: %d %s", r.status, r.body)
		}
		if _, got := wsRead(t, c); string(got) != "to prod" {
			t.Errorf("the client received %q", got)
		}
		if r := manage(t, "GET", base+"/strict/prod/@connections/"+id, nil); r.status != 200 {
			t.Errorf("GET /strict/prod/@connections: %d %s", r.status, r.body)
		}
		// Without the stage, the path names no stage of the API.
		for _, method := range []string{"POST", "GET", "DELETE"} {
			if r := manage(t, method, base+"/strict/@connections/"+id, []byte("no stage")); r.status != http.StatusNotFound {
				t.Errorf("%s /strict/@connections/{id}: %d %s, want 404", method, r.status, r.body)
			}
		}
		if a := wsAsk(t, c, `{"action":"echo"}`); a.RouteKey != "echo" {
			t.Errorf("the socket got something else: %+v", a)
		}
	})

	// API Gateway's @connections endpoint is per API: a connection of another API is not one of its.
	t.Run("ConnectionsOfAnotherAPI", func(t *testing.T) {
		s := wsDial(t, n, "/strict/prod", nil)
		sid := wsID(t, s)
		c := wsDial(t, n, "/chat", nil)
		cid := wsID(t, c)
		wantGone(t, "POST a strict connection through chat", manage(t, "POST", base+"/chat/@connections/"+sid, []byte("cross")))
		wantGone(t, "GET a chat connection through strict", manage(t, "GET", base+"/strict/prod/@connections/"+cid, nil))
		wantGone(t, "DELETE a chat connection through strict", manage(t, "DELETE", base+"/strict/prod/@connections/"+cid, nil))
		// Both sockets are untouched: the next frame on each is its echo.
		if a := wsAsk(t, s, `{"action":"echo"}`); a.RouteKey != "echo" {
			t.Errorf("strict: %+v", a)
		}
		if a := wsAsk(t, c, `{"action":"echo"}`); a.RouteKey != "echo" {
			t.Errorf("chat: %+v", a)
		}
	})

	t.Run("MessageTooBig", func(t *testing.T) {
		c := wsDial(t, n, "/chat", nil)
		// 4096 bytes is allowed.
		msg := `{"action":"echo","pad":"` + strings.Repeat("p", 4096-len(`{"action":"echo","pad":""}`)) + `"}`
		if a := wsAsk(t, c, msg); a.RouteKey != "echo" || a.Body != msg {
			t.Errorf("a 4096-byte message: route %q, body of %d bytes", a.RouteKey, len(a.Body))
		}
		id := wsID(t, c)
		wsSend(t, c, strings.Repeat("x", 4097))
		wsWantClose(t, c, websocket.CloseMessageTooBig)
		waitLog(t, n, fmt.Sprintf("disconnect %s 1009 ", id))
	})

	t.Run("InvalidUTF8", func(t *testing.T) {
		c := wsDial(t, n, "/chat", nil)
		id := wsID(t, c)
		// A text message must be UTF-8: the gateway fails the connection with 1007.
		if err := c.WriteMessage(websocket.TextMessage, []byte("{\"action\":\"echo\",\"x\":\"\xff\xfe\"}")); err != nil {
			t.Fatal(err)
		}
		wsWantClose(t, c, websocket.CloseInvalidFramePayloadData)
		waitLog(t, n, fmt.Sprintf("disconnect %s 1007 ", id))
		// The same bytes as a binary message are fine.
		b := wsDial(t, n, "/chat", nil)
		if err := b.WriteMessage(websocket.BinaryMessage, []byte("{\"action\":\"echo\",\"x\":\"\xff\"}")); err != nil {
			t.Fatal(err)
		}
		if _, data := wsRead(t, b); len(data) == 0 {
			t.Fatal("no answer to a binary message")
		}
	})
	t.Run("IdleTimeout", func(t *testing.T) {
		// A client that sends nothing to /sleepy (idle timeout 1s) is closed with 1001, reason
		// "Idle timeout".
		start := time.Now()
		c := wsDial(t, n, "/sleepy", nil)
		ce := wsWantClose(t, c, websocket.CloseGoingAway)
		t.Logf("closed after %v: %d %q", time.Since(start), ce.Code, ce.Text)
		if ce.Text != "Idle timeout" {
			t.Errorf("close reason %q, want %q", ce.Text, "Idle timeout")
		}
	})

	t.Run("IdleTimeoutReset", func(t *testing.T) {
		// Messages keep a /sleepy socket (idle timeout 1s) open well past 1s; a reader goroutine watches
		// for the close, which must come only after the messages stop.
		c := wsDial(t, n, "/sleepy", nil)
		closed := make(chan time.Time, 1)
		go func() {
			c.SetReadDeadline(time.Now().Add(wsTimeout))
			for {
				if _, _, err := c.ReadMessage(); err != nil {
					closed <- time.Now()
					return
				}
			}
		}()
		start := time.Now()
		for time.Since(start) < 3*time.Second {
			select {
			case at := <-closed:
				t.Fatalf("closed %v after connecting while the client sent a message every 200ms", at.Sub(start))
			case <-time.After(200 * time.Millisecond):
			}
			c.SetWriteDeadline(time.Now().Add(wsTimeout))
			if err := c.WriteMessage(websocket.TextMessage, []byte("still here")); err != nil {
				t.Fatalf("writing: %v", err)
			}
		}
		stopped := time.Now()
		select {
		case at := <-closed:
			t.Logf("closed %v after the last message", at.Sub(stopped))
		case <-time.After(wsTimeout + time.Second):
			t.Fatal("not closed after the messages stopped")
		}
	})

	t.Run("Subprotocol", func(t *testing.T) {
		// $connect's response headers go on the handshake's answer: the subprotocol it picks is the
		// socket's.
		d := *wsDialer
		d.Subprotocols = []string{"chat.v2", "chat.v1"}
		c, _, err := d.Dial("ws://"+n.GatewayAddr()+"/chat", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if got := c.Subprotocol(); got != "chat.v2" {
			t.Errorf("subprotocol %q, want chat.v2", got)
		}
		if a := wsAsk(t, c, `{"action":"echo"}`); a.RouteKey != "echo" {
			t.Errorf("echo: %+v", a)
		}
	})

	t.Run("Disconnect", func(t *testing.T) {
		// The client closes with a code and a reason.
		c := wsDial(t, n, "/chat", nil)
		id := wsID(t, c)
		c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, "bye"), time.Now().Add(time.Second))
		wsWantClose(t, c, websocket.CloseNormalClosure) // the gateway's answer
		if got, want := waitLog(t, n, "disconnect "+id), fmt.Sprintf(`disconnect %s 1000 "bye"`, id); got != want {
			t.Errorf("log %q, want %q", got, want)
		}

		// DELETE through @connections.
		c = wsDial(t, n, "/chat", nil)
		id = wsID(t, c)
		if r := manage(t, "DELETE", base+"/chat/@connections/"+id, nil); r.status != http.StatusNoContent {
			t.Fatalf("DELETE: %d %s", r.status, r.body)
		}
		wsWantClose(t, c, websocket.CloseNormalClosure)
		if got := waitLog(t, n, "disconnect "+id); !strings.HasPrefix(got, fmt.Sprintf(`disconnect %s 1000 `, id)) {
			t.Errorf("log %q, want code 1000", got)
		}

		// The client vanishes: no close frame.
		c = wsDial(t, n, "/chat", nil)
		id = wsID(t, c)
		c.UnderlyingConn().Close()
		if got := waitLog(t, n, "disconnect "+id); !strings.HasPrefix(got, fmt.Sprintf(`disconnect %s 1006 `, id)) {
			t.Errorf("log %q, want code 1006", got)
		}
	})

	// A socket the gateway closes (here by DELETE) whose client never answers the close frame: the
	// gateway gives up waiting after a moment, the connection is gone and $disconnect runs.
	t.Run("ServerCloseUnanswered", func(t *testing.T) {
		c := wsDial(t, n, "/chat", nil)
		id := wsID(t, c)
		if r := manage(t, "DELETE", base+"/chat/@connections/"+id, nil); r.status != http.StatusNoContent {
			t.Fatalf("DELETE: %d %s", r.status, r.body)
		}
		// The client reads nothing from now on.
		if got := waitLog(t, n, "disconnect "+id); !strings.HasPrefix(got, fmt.Sprintf(`disconnect %s 1000 `, id)) {
			t.Errorf("log %q, want code 1000", got)
		}
		if _, err := n.conns.Get(id); !errors.Is(err, connections.ErrNotFound) {
			t.Errorf("the record of %s after $disconnect: %v", id, err)
		}
		wantGone(t, "GET after the close", manage(t, "GET", base+"/chat/@connections/"+id, nil))
	})

	t.Run("SlowClient", func(t *testing.T) {
		c := wsDial(t, n, "/chat", nil)
		id := wsID(t, c)
		url := base + "/chat/@connections/" + id
		body := bytes.Repeat([]byte("s"), 4096)
		const maxPosts = 20000
		deadline := time.Now().Add(90 * time.Second)
		ok, limited, gone := 0, 0, 0
		var firstLimited, firstGone int
		for i := 0; i < maxPosts && gone < 5 && time.Now().Before(deadline); i++ {
			r := manage(t, "POST", url, body)
			switch r.status {
			case 200:
				if limited > 0 || gone > 0 {
					t.Fatalf("post %d: 200 after a 429 or 410", i)
				}
				ok++
			case http.StatusTooManyRequests:
				if et := r.header.Get("x-amzn-ErrorType"); et != "LimitExceededException" {
					t.Errorf("post %d: 429 with x-amzn-ErrorType %q", i, et)
				}
				if limited == 0 {
					firstLimited = i
				}
				limited++
			case http.StatusGone:
				if gone == 0 {
					firstGone = i
				}
				gone++
			default:
				t.Fatalf("post %d: %d %s", i, r.status, r.body)
			}
		}
		t.Logf("%d posts accepted, %d answered 429 (first: post %d), %d answered 410 (first: post %d)", ok, limited, firstLimited, gone, firstGone)
		if limited == 0 {
			t.Errorf("no post answered 429")
		}
		if gone == 0 || firstGone < firstLimited {
			t.Errorf("no post answered 410 after the 429")
		}
		// The client reads now: what was queued, then the end of the socket.
		received := 0
		c.SetReadDeadline(time.Now().Add(60 * time.Second))
		var err error
		for {
			if _, _, err = c.ReadMessage(); err != nil {
				break
			}
			received++
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatalf("the slow client was not disconnected (it read %d messages)", received)
		}
		t.Logf("the slow client read %d of %d accepted messages, then: %v", received, ok, err)
		line := waitLog(t, n, "disconnect "+id)
		t.Logf("$disconnect: %s", line)
		if !strings.HasPrefix(line, fmt.Sprintf("disconnect %s 1008 ", id)) {
			t.Errorf("$disconnect log %q, want code 1008 (policy violation: the client is too slow)", line)
		}
	})

	t.Run("Records", func(t *testing.T) {
		waitCount(t, n, 0) // the other subtests' sockets are gone
		cs := make([]*websocket.Conn, 3)
		ids := make([]string, 3)
		for i := range cs {
			cs[i] = wsDial(t, n, "/chat", nil)
			ids[i] = wsID(t, cs[i])
		}
		s := wsDial(t, n, "/strict/prod", nil)
		sid := wsID(t, s)
		if got, err := n.conns.Count(); err != nil || got != 4 {
			t.Fatalf("Count: %d, %v; want 4", got, err)
		}
		rec, err := n.conns.Get(sid)
		if err != nil || rec.API != "strict" || rec.Stage != "prod" || rec.SourceIP != "127.0.0.1" {
			t.Errorf("record of %s: %+v, %v", sid, rec, err)
		}
		// A refused $connect makes no record.
		if c, _, err := wsDialer.Dial("ws://"+n.GatewayAddr()+"/chat?deny=403", nil); err == nil {
			c.Close()
			t.Fatal("deny=403: connected")
		}
		if got, _ := n.conns.Count(); got != 4 {
			t.Errorf("Count after a refused $connect: %d, want 4", got)
		}
		// Closed every way: by the client, by vanishing, by DELETE, by a too-big message.
		cs[0].WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
		cs[1].UnderlyingConn().Close()
		if r := manage(t, "DELETE", base+"/chat/@connections/"+ids[2], nil); r.status != http.StatusNoContent {
			t.Errorf("DELETE: %d", r.status)
		}
		wsWantClose(t, cs[2], websocket.CloseNormalClosure)
		wsSend(t, s, strings.Repeat("x", 200<<10)) // over strict's default limit, 128 KiB
		wsWantClose(t, s, websocket.CloseMessageTooBig)
		waitCount(t, n, 0)
		for _, id := range append(ids, sid) {
			if _, err := n.conns.Get(id); !errors.Is(err, connections.ErrNotFound) {
				t.Errorf("record of %s after it closed: %v", id, err)
			}
		}
	})
}

// TestWebSocketShutdown stops a node with open sockets: each client is closed with 1001 (going away),
// and a client that never reads (so never answers the close frame) does not hold the stop up for
// long.
func TestWebSocketShutdown(t *testing.T) {
	n := startNode(t, "testdata/ws-stack.yaml", newDataDir(t))
	stopErr := make(chan error, 1)
	stopping := false
	t.Cleanup(func() {
		if !stopping {
			n.Stop(context.Background())
		} else {
			<-stopErr
		}
	})
	var cs []*websocket.Conn
	for _, path := range []string{"/chat", "/chat", "/strict/prod", "/sleepy"} {
		c := wsDial(t, n, path, nil)
		if path != "/sleepy" {
			wsID(t, c)
		}
		cs = append(cs, c)
	}
	deaf := wsDial(t, n, "/chat", nil) // answers its echo, then never reads again
	wsID(t, deaf)

	start := time.Now()
	stopping = true
	go func() { stopErr <- n.Stop(context.Background()) }()
	var wg sync.WaitGroup
	for i, c := range cs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.SetReadDeadline(time.Now().Add(wsTimeout))
			for {
				_, _, err := c.ReadMessage()
				if err == nil {
					continue
				}
				var ce *websocket.CloseError
				if !errors.As(err, &ce) || ce.Code != websocket.CloseGoingAway {
					t.Errorf("client %d: the socket ended with %v after %v, want close 1001", i, err, time.Since(start))
				}
				return
			}
		}()
	}
	wg.Wait()
	// The default drain timeout is 30s; a client that does not answer the close handshake should be
	// dropped after a moment (the gateway gives it 2s), not hold Stop up until then.
	select {
	case err := <-stopErr:
		stopErr <- err
		if err != nil {
			t.Errorf("Stop: %v", err)
		}
		t.Logf("Stop took %v", time.Since(start))
	case <-time.After(wsTimeout):
		t.Errorf("Stop did not return within %v of a client that never answers the close frame", wsTimeout)
	}
	// The gateway no longer takes sockets.
	if c, _, err := wsDialer.Dial("ws://"+n.GatewayAddr()+"/chat", nil); err == nil {
		c.Close()
		t.Error("dialed a stopped node")
	}
}
