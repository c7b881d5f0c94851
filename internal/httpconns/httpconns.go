// Package httpconns keeps the connections of a Fiber (fasthttp) listener with whether a client has
// sent any byte of a request on each, so that a graceful shutdown can close those on which none has
// begun.
//
// fasthttp counts a connection as in use from the moment it starts waiting for its first request,
// so a client that opened a connection and sent nothing (a browser's preconnect, an HTTP client's
// spare connection) held a graceful shutdown for its whole drain timeout. A connection counts here
// from its first byte, as Go's own HTTP server counts one. Over TLS that is the first byte after
// the handshake: a preconnect that shook hands and sent nothing is closed too.
package httpconns

import (
	"crypto/tls"
	"net"
	"sync"
	"sync/atomic"
)

// Conns keeps a server's connections until they close or are taken over (a WebSocket). The zero
// value is ready to use.
type Conns struct {
	mu       sync.Mutex
	conns    map[*trackedConn]struct{}
	shutdown bool // no new connection is kept: Accept closes it
}

// Listen wraps ln so that its connections are kept.
func (o *Conns) Listen(ln net.Listener) net.Listener {
	return &trackedListener{Listener: ln, o: o}
}

// CloseUnbegun closes the kept connections on which no byte of a request has arrived, and from now
// on every connection accepted.
func (o *Conns) CloseUnbegun() {
	o.mu.Lock()
	o.shutdown = true
	var idle []*trackedConn
	for c := range o.conns {
		if !c.began.Load() {
			idle = append(idle, c)
		}
	}
	o.mu.Unlock()
	for _, c := range idle {
		c.Close()
	}
}

// forget stops keeping c: it is closed, or a WebSocket that the hub keeps.
func (o *Conns) forget(c *trackedConn) {
	o.mu.Lock()
	delete(o.conns, c)
	o.mu.Unlock()
}

type trackedListener struct {
	net.Listener
	o *Conns
}

func (l *trackedListener) Accept() (net.Conn, error) {
	for {
		nc, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		c := &trackedConn{Conn: nc, o: l.o}
		l.o.mu.Lock()
		if l.o.shutdown {
			// Accepted while the server shuts down, before its listener closed.
			l.o.mu.Unlock()
			nc.Close()
			continue
		}
		if l.o.conns == nil {
			l.o.conns = make(map[*trackedConn]struct{})
		}
		l.o.conns[c] = struct{}{}
		l.o.mu.Unlock()
		if tc, ok := nc.(*tls.Conn); ok {
			// fasthttp tells TLS connections by their ConnectionState: the wrapper must keep it.
			return &trackedTLSConn{trackedConn: c, tls: tc}, nil
		}
		return c, nil
	}
}

// trackedConn is an accepted connection: it marks the first byte read and leaves the set on
// Close.
type trackedConn struct {
	net.Conn
	o     *Conns
	began atomic.Bool
}

func (c *trackedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 && !c.began.Load() {
		c.began.Store(true)
	}
	return n, err
}

func (c *trackedConn) Close() error {
	c.o.forget(c)
	return c.Conn.Close()
}

// trackedTLSConn is a trackedConn over TLS.
type trackedTLSConn struct {
	*trackedConn
	tls *tls.Conn
}

func (c *trackedTLSConn) Handshake() error                     { return c.tls.Handshake() }
func (c *trackedTLSConn) ConnectionState() tls.ConnectionState { return c.tls.ConnectionState() }

// Untrack returns the connection under nc, a connection Listen's listener accepted, and stops
// keeping it: a connection taken over from the HTTP server (a WebSocket) is the taker's to close
// from then on, and may be written to directly.
func (o *Conns) Untrack(nc net.Conn) net.Conn {
	switch c := nc.(type) {
	case *trackedConn:
		o.forget(c)
		return c.Conn
	case *trackedTLSConn:
		o.forget(c.trackedConn)
		return c.tls
	}
	return nc
}
