package app

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/fasthttp/websocket"
)

// hostCall invokes the hostcalls test function with req and decodes its answer.
func hostCall(t *testing.T, n *Node, req string) map[string]any {
	t.Helper()
	out := runCLI(t, n, "invoke", "hostcalls", "--payload", req)
	var a map[string]any
	if err := json.Unmarshal([]byte(out), &a); err != nil {
		t.Fatalf("%s: %q: %v", req, out, err)
	}
	return a
}

// TestFunctionsReachConnectionsAndKeys calls, from a function, every host call against a running
// stack: posts and broadcasts reach real WebSocket clients, gone connections say so, and keys are
// stored, listed, expired and deleted in the stack's key-value store.
func TestFunctionsReachConnectionsAndKeys(t *testing.T) {
	n := startNode(t, "testdata/ws-stack.yaml", newDataDir(t))
	t.Cleanup(func() { n.Stop(t.Context()) })

	// Three clients, each learning its connection id from the echo route.
	var clients []*websocket.Conn
	var ids []string
	for range 3 {
		c, _, err := websocket.DefaultDialer.Dial("ws://"+n.GatewayAddr()+"/chat", nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		c.SetReadDeadline(time.Now().Add(15 * time.Second))
		if err := c.WriteMessage(websocket.TextMessage, []byte(`{"action":"echo"}`)); err != nil {
			t.Fatal(err)
		}
		_, msg, err := c.ReadMessage()
		if err != nil {
			t.Fatal(err)
		}
		var a struct{ ConnectionID string }
		if err := json.Unmarshal(msg, &a); err != nil || a.ConnectionID == "" {
			t.Fatalf("echo answer %s: %v", msg, err)
		}
		clients, ids = append(clients, c), append(ids, a.ConnectionID)
	}
	read := func(c *websocket.Conn) string {
		t.Helper()
		c.SetReadDeadline(time.Now().Add(15 * time.Second))
		_, msg, err := c.ReadMessage()
		if err != nil {
			t.Fatal(err)
		}
		return string(msg)
	}

	if a := hostCall(t, n, `{"op":"post","id":"`+ids[0]+`","data":"from a function"}`); a["error"] != nil {
		t.Fatalf("post: %v", a)
	}
	if got := read(clients[0]); got != "from a function" {
		t.Fatalf("client 0 got %q", got)
	}
	a := hostCall(t, n, `{"op":"get","id":"`+ids[1]+`"}`)
	if conn, _ := a["connection"].(map[string]any); conn == nil || conn["identity"].(map[string]any)["sourceIp"] != "127.0.0.1" {
		t.Fatalf("get: %v", a)
	}
	gone := ids[0][:8] + strings.Repeat("A", 16) // this node, no such connection
	b, _ := json.Marshal(map[string]any{"op": "broadcast", "ids": append(append([]string{}, ids...), gone, "not-an-id"), "data": "to everyone"})
	a = hostCall(t, n, string(b))
	if bc, _ := a["broadcast"].(map[string]any); bc == nil || bc["sent"] != 3.0 || len(bc["gone"].([]any)) != 2 {
		t.Fatalf("broadcast: %v", a)
	}
	for i, c := range clients {
		if got := read(c); got != "to everyone" {
			t.Fatalf("client %d got %q", i, got)
		}
	}
	if a := hostCall(t, n, `{"op":"post","id":"`+gone+`","data":"x"}`); a["error"] != "gatehouse: connection gone" {
		t.Fatalf("post to a gone connection: %v", a)
	}
	if a := hostCall(t, n, `{"op":"delete","id":"`+ids[2]+`"}`); a["error"] != nil {
		t.Fatalf("delete: %v", a)
	}
	clients[2].SetReadDeadline(time.Now().Add(15 * time.Second))
	if _, _, err := clients[2].ReadMessage(); !websocket.IsCloseError(err, websocket.CloseNormalClosure) {
		t.Fatalf("deleted client: %v, want a normal close", err)
	}

	// The key-value store.
	for _, step := range []struct{ req, key, want string }{
		{`{"op":"kvget","key":"room.lobby.alice"}`, "error", "gatehouse: key not found"},
		{`{"op":"kvput","key":"room.lobby.alice","data":"1"}`, "error", ""},
		{`{"op":"kvput","key":"room.lobby.bob","data":"2"}`, "error", ""},
		{`{"op":"kvput","key":"room.attic.carol","data":"3"}`, "error", ""},
		{`{"op":"kvget","key":"room.lobby.bob"}`, "value", "2"},
		{`{"op":"kvcreate","key":"room.lobby.bob","data":"9"}`, "error", "gatehouse: key exists"},
		{`{"op":"kvlist","prefix":"room.lobby."}`, "keys", `["room.lobby.alice","room.lobby.bob"]`},
		{`{"op":"kvlist","prefix":"room.lo"}`, "keys", `["room.lobby.alice","room.lobby.bob"]`},
		{`{"op":"kvput","key":"bad key","data":"1"}`, "error", "gatehouse: invalid request"},
		{`{"op":"kvdelete","key":"room.lobby.alice"}`, "error", ""},
		{`{"op":"kvlist","prefix":"room."}`, "keys", `["room.attic.carol","room.lobby.bob"]`},
		{`{"op":"kvcreate","key":"session.x","data":"t","ttlMs":1000}`, "error", ""},
		{`{"op":"kvget","key":"session.x"}`, "value", "t"},
	} {
		a := hostCall(t, n, step.req)
		got := ""
		switch v := a[step.key].(type) {
		case string:
			got = v
		case nil:
		default:
			b, _ := json.Marshal(v)
			got = string(b)
		}
		if got != step.want {
			t.Fatalf("%s: %s = %q, want %q (answer %v)", step.req, step.key, got, step.want, a)
		}
	}
	// The key with a ttl expires.
	deadline := time.Now().Add(15 * time.Second)
	for hostCall(t, n, `{"op":"kvget","key":"session.x"}`)["error"] != "gatehouse: key not found" {
		if time.Now().After(deadline) {
			t.Fatal("a key created with a 1 s ttl did not expire")
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestWebSocketConnectAuthorization authorizes $connect with a function authorizer: a client
// without the identity source is refused with 401, a denied one with 403, and an allowed one
// connects, with the authorizer's context in every event of its connection.
func TestWebSocketConnectAuthorization(t *testing.T) {
	n := startNode(t, "testdata/ws-stack.yaml", newDataDir(t))
	t.Cleanup(func() { n.Stop(t.Context()) })
	url := "ws://" + n.GatewayAddr() + "/guarded"
	for _, tc := range []struct {
		query  string
		status int
	}{{"", 401}, {"?token=wrong", 403}} {
		_, resp, err := websocket.DefaultDialer.Dial(url+tc.query, nil)
		if err == nil || resp == nil || resp.StatusCode != tc.status {
			t.Fatalf("%q: %v, status %v; want %d", tc.query, err, resp, tc.status)
		}
	}
	c, _, err := websocket.DefaultDialer.Dial(url+"?token=let-me-in", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(15 * time.Second))
	if err := c.WriteMessage(websocket.TextMessage, []byte("hi")); err != nil {
		t.Fatal(err)
	}
	_, msg, err := c.ReadMessage()
	if err != nil {
		t.Fatal(err)
	}
	var a struct {
		Authorizer map[string]any `json:"authorizer"`
	}
	if err := json.Unmarshal(msg, &a); err != nil || a.Authorizer["user"] != "u1" {
		t.Fatalf("message event %s: %v", msg, err)
	}
}
