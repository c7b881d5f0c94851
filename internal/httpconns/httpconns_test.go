package httpconns

import (
	"errors"
	"net"
	"os"
	"testing"
	"time"
)

// accepted listens on loopback through c, dials it n times, and returns the client ends and the
// connections the listener accepted.
func accepted(t *testing.T, c *Conns, n int) (clients, servers []net.Conn) {
	t.Helper()
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := c.Listen(raw)
	t.Cleanup(func() { ln.Close() })
	for range n {
		cc, err := net.Dial("tcp", raw.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cc.Close() })
		sc, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		clients, servers = append(clients, cc), append(servers, sc)
	}
	return clients, servers
}

// closed reports whether the peer of c closed the connection (c's read ends with an error other
// than its deadline).
func closed(c net.Conn) bool {
	c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	_, err := c.Read(make([]byte, 1))
	return err != nil && !errors.Is(err, os.ErrDeadlineExceeded)
}

// TestCloseUnbegun: of three connections, the one whose client sent a byte stays open, the one taken
// over (Untrack) stays open and is the socket itself, and the silent one is closed.
func TestCloseUnbegun(t *testing.T) {
	var c Conns
	clients, servers := accepted(t, &c, 3)
	if _, err := clients[0].Write([]byte("G")); err != nil {
		t.Fatal(err)
	}
	if n, err := servers[0].Read(make([]byte, 1)); n != 1 {
		t.Fatalf("reading the first byte: %d, %v", n, err)
	}
	taken := c.Untrack(servers[1])
	if _, ok := taken.(*net.TCPConn); !ok {
		t.Errorf("Untrack gave %T, want the *net.TCPConn under it", taken)
	}
	c.CloseUnbegun()
	if closed(clients[0]) {
		t.Error("the connection with a request begun was closed")
	}
	if closed(clients[1]) {
		t.Error("the connection taken over was closed")
	}
	if !closed(clients[2]) {
		t.Error("the silent connection is still open")
	}
	servers[0].Close()
	taken.Close()
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.conns) != 0 {
		t.Errorf("%d connections still kept after all closed or taken over", len(c.conns))
	}
}
