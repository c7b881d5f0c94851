//go:build unix

package gateway

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/fasthttp/websocket"
)

// broadcastWait bounds every wait of the broadcast tests; generous, since the machine may be busy.
const broadcastWait = time.Minute

// bcMessage is a message of the broadcast tests: "KIND ROUND " then a filler of one letter up to
// size bytes, so that a client can tell a message that arrived whole from one cut or mixed.
func bcMessage(kind string, round, size int) []byte {
	m := []byte(fmt.Sprintf("%s %d ", kind, round))
	return append(m, bytes.Repeat([]byte{byte('a' + round%26)}, max(size-len(m), 1))...)
}

// parseBCMessage checks a message made by bcMessage and returns its kind and round.
func parseBCMessage(m []byte) (string, int, error) {
	f := strings.SplitN(string(m), " ", 3)
	if len(f) != 3 {
		return "", 0, fmt.Errorf("malformed message %.40q", m)
	}
	round, err := strconv.Atoi(f[1])
	if err != nil {
		return "", 0, fmt.Errorf("malformed message %.40q", m)
	}
	if want := strings.Repeat(string(rune('a'+round%26)), len(f[2])); f[2] != want {
		return "", 0, fmt.Errorf("message %s %d (%d bytes) arrived mixed or damaged", f[0], round, len(m))
	}
	return f[0], round, nil
}

// bcClients dials n clients to ts's stage prod and returns them with their connection ids. The
// sockets of the clients for which small is true have a small receive buffer, so that the gateway's
// side of them fills soon: frames are written partly, and the rest by the socket's writer.
func bcClients(t *testing.T, ts *testServer, inv *fakeInvoker, n int, small func(i int) bool) ([]*websocket.Conn, []string) {
	t.Helper()
	conns := make([]*websocket.Conn, n)
	ids := make([]string, n)
	for i := range n {
		d := &websocket.Dialer{}
		if small != nil && small(i) {
			nd := &net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
				var err error
				if cerr := rc.Control(func(fd uintptr) {
					err = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 8<<10)
				}); cerr != nil {
					return cerr
				}
				return err
			}}
			d.NetDialContext = nd.DialContext
		}
		c, _, err := dial(t, ts, d, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		_, ev := waitInvocation(t, inv, "connect")
		conns[i], ids[i] = c, path(ev, "requestContext.connectionId").(string)
	}
	return conns, ids
}

// TestBroadcastOrderWithPosts sends posts and broadcasts to the same clients, large ones among them,
// some clients with small receive buffers (a socket takes part of a frame, and its writer writes the
// rest), while one client pings the gateway all the while (pongs written between data frames), and
// checks that every client receives every message whole and in
// the order it was sent: first one sender alternating posts and broadcasts, then a poster and a
// broadcaster at once (each one's messages in its order).
func TestBroadcastOrderWithPosts(t *testing.T) {
	inv := newWSInvoker()
	ts := startServer(t, Config{NodeID: "testnode", APIs: []API{wsTestAPI(WebSocketSettings{}, Route{Key: "$connect"})}}, inv)
	const clients, rounds = 6, 40
	conns, ids := bcClients(t, ts, inv, clients, func(i int) bool { return i%2 == 0 })
	size := func(round int) int { // large ones fill the sockets' buffers
		if round%2 == 0 {
			return 100 << 10
		}
		return 10 + round*50
	}

	// Pings from client 1 while it reads: its pongs share the socket with the data frames.
	pinging := make(chan struct{})
	var pinger sync.WaitGroup
	pinger.Go(func() {
		for {
			select {
			case <-pinging:
				return
			default:
			}
			if conns[1].WriteControl(websocket.PingMessage, []byte("p"), time.Now().Add(broadcastWait)) != nil {
				return
			}
			time.Sleep(time.Millisecond)
		}
	})
	defer func() {
		close(pinging)
		pinger.Wait()
	}()

	// read receives n messages on every client and hands each client's list to check.
	read := func(n int, check func(client int, got [][2]any)) {
		var wg sync.WaitGroup
		for i, c := range conns {
			wg.Go(func() {
				var got [][2]any
				for range n {
					c.SetReadDeadline(time.Now().Add(broadcastWait))
					typ, m, err := c.ReadMessage()
					if err != nil {
						t.Errorf("client %d, after %d messages: %v", i, len(got), err)
						return
					}
					if typ != websocket.TextMessage {
						t.Errorf("client %d: a frame of type %d", i, typ)
					}
					kind, round, err := parseBCMessage(m)
					if err != nil {
						t.Errorf("client %d: %v", i, err)
						return
					}
					got = append(got, [2]any{kind, round})
				}
				check(i, got)
			})
		}
		wg.Wait()
	}

	// One sender: post, broadcast, post, broadcast... (4 MB for each client, while the clients do not
	// read: the sockets' buffers fill, frames are written partly and queued). Every client then
	// receives them in that order.
	var want [][2]any
	for r := range rounds {
		want = append(want, [2]any{"post", r}, [2]any{"broadcast", r})
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for r := range rounds {
			for i, id := range ids {
				if err := ts.PostToConnection(context.Background(), id, bcMessage("post", r, size(r))); err != nil {
					t.Errorf("post %d to client %d: %v", r, i, err)
				}
			}
			if gone := ts.BroadcastToConnections(context.Background(), ids, bcMessage("broadcast", r, size(r))); len(gone) > 0 {
				t.Errorf("broadcast %d: gone %v", r, gone)
			}
		}
	}()
	waitDone(t, done, "the posts and broadcasts")
	readAll := make(chan struct{})
	go func() {
		defer close(readAll)
		read(len(want), func(i int, got [][2]any) {
			if !slices.Equal(got, want) {
				t.Errorf("client %d received %v, want %v", i, got, want)
			}
		})
	}()
	waitDone(t, readAll, "the clients' reading")

	// A poster and a broadcaster at once, while the clients read: each client receives each one's
	// messages in order.
	var posts, broadcasts sync.WaitGroup
	posts.Go(func() {
		for r := range rounds {
			for i, id := range ids {
				if err := ts.PostToConnection(context.Background(), id, bcMessage("post", r, size(r+1))); err != nil {
					t.Errorf("post %d to client %d: %v", r, i, err)
				}
			}
		}
	})
	broadcasts.Go(func() {
		for r := range rounds {
			if gone := ts.BroadcastToConnections(context.Background(), ids, bcMessage("broadcast", r, size(r))); len(gone) > 0 {
				t.Errorf("broadcast %d: gone %v", r, gone)
			}
		}
	})
	received := make(chan struct{})
	go func() {
		defer close(received)
		read(2*rounds, func(i int, got [][2]any) {
			next := map[any]int{}
			for _, m := range got {
				if m[1] != next[m[0]] {
					t.Errorf("client %d received %s %d, want %s %d: %v", i, m[0], m[1], m[0], next[m[0]], got)
					return
				}
				next[m[0]]++
			}
		})
	}()
	waitDone(t, received, "the messages of a poster and a broadcaster at once")
	posts.Wait()
	broadcasts.Wait()
}

// TestBroadcastStuckClient broadcasts to clients of which one never reads: the others receive every
// broadcast while it is stuck, and a broadcast never waits for it. What the stuck client receives,
// once it reads, is a run of whole messages in order.
func TestBroadcastStuckClient(t *testing.T) {
	inv := newWSInvoker()
	ts := startServer(t, Config{NodeID: "testnode", APIs: []API{wsTestAPI(WebSocketSettings{}, Route{Key: "$connect"})}}, inv)
	const clients, stuck, rounds, size = 5, 2, 60, 100 << 10
	conns, ids := bcClients(t, ts, inv, clients, func(i int) bool { return i == stuck })

	// Every client but the stuck one reads, and reports each round it received.
	got := make([]chan int, clients)
	var readers sync.WaitGroup
	for i, c := range conns {
		got[i] = make(chan int, rounds)
		if i == stuck {
			continue
		}
		readers.Go(func() {
			defer close(got[i])
			for range rounds {
				c.SetReadDeadline(time.Now().Add(broadcastWait))
				_, m, err := c.ReadMessage()
				if err != nil {
					t.Errorf("client %d: %v", i, err)
					return
				}
				_, round, err := parseBCMessage(m)
				if err != nil {
					t.Errorf("client %d: %v", i, err)
					return
				}
				got[i] <- round
			}
		})
	}

	stuckGone := -1 // the first round whose broadcast found the stuck client gone (its queue filled)
	for r := range rounds {
		sent := make(chan []string, 1)
		go func() { sent <- ts.BroadcastToConnections(context.Background(), ids, bcMessage("broadcast", r, size)) }()
		var gone []string
		select {
		case gone = <-sent:
		case <-time.After(broadcastWait):
			t.Fatalf("broadcast %d did not return within %v", r, broadcastWait)
		}
		for _, id := range gone {
			if id != ids[stuck] {
				t.Fatalf("broadcast %d: %s gone, a client that reads", r, id)
			}
			if stuckGone < 0 {
				stuckGone = r
			}
		}
		// Every reader receives this round while the stuck client is stuck.
		for i := range clients {
			if i == stuck {
				continue
			}
			select {
			case round, ok := <-got[i]:
				if !ok || round != r {
					t.Fatalf("client %d: received round %d (open %v), want %d", i, round, ok, r)
				}
			case <-time.After(broadcastWait):
				t.Fatalf("client %d did not receive round %d within %v", i, r, broadcastWait)
			}
		}
	}
	readers.Wait()
	if c := ts.hub.get(ids[stuck]); c != nil {
		c.mu.Lock()
		t.Logf("the stuck client: first gone at round %d; its writer runs: %v, %d frames queued", stuckGone, c.writing, len(c.out))
		c.mu.Unlock()
	} else {
		t.Logf("the stuck client: first gone at round %d; disconnected", stuckGone)
	}

	// Now the stuck client reads: whole messages in order, from round 0, until the stream ends (its
	// queue may have filled and the gateway closed it) or every round is in.
	c := conns[stuck]
	n := 0
	for n < rounds {
		c.SetReadDeadline(time.Now().Add(broadcastWait))
		_, m, err := c.ReadMessage()
		if err != nil {
			// Its queue filled, or a write to it reached its deadline: the gateway let it go.
			t.Logf("the stuck client's stream ended: %v", err)
			break
		}
		_, round, err := parseBCMessage(m)
		if err != nil {
			t.Fatalf("the stuck client: %v", err)
		}
		if round != n {
			t.Fatalf("the stuck client received round %d, want %d", round, n)
		}
		n++
	}
	if stuckGone >= 0 && n > stuckGone {
		t.Errorf("the stuck client received round %d, reported gone", stuckGone)
	}
	t.Logf("the stuck client read %d rounds once it read", n)
}

// waitDone waits for done to close.
func waitDone(t *testing.T, done chan struct{}, what string) {
	t.Helper()
	select {
	case <-done:
	case <-time.After(2 * broadcastWait):
		t.Fatalf("%s did not end within %v", what, 2*broadcastWait)
	}
}
