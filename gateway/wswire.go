package gateway

import (
	"encoding/binary"
	"errors"
	"math"
	"net"
	"slices"
	"time"

	"github.com/fasthttp/websocket"
)

// Writing to a socket.
//
// A data frame is built once, header and payload together (wsFrame): a broadcast builds one frame and
// every recipient's socket gets the same bytes. The gateway writes data frames to the connection
// beneath the WebSocket library itself; the library writes its handshake's answer and control frames
// (pings, pongs, close frames) through wsWire. Every frame goes out whole, never interleaved with
// another, and a socket's data frames go out in the order they were sent. Two flags under the
// socket's mutex keep it so:
//
//   - writing: the socket's data frames have an owner, usually its writer goroutine. A sender that
//     finds the socket idle (no writer, nothing queued) owns it for one frame and writes it at once,
//     without waiting (tryWrite): delivering to an idle socket starts no goroutine and sets no write
//     deadline. When the socket does not take the whole frame (its buffer is full), the rest goes
//     first in the queue and the sender starts the writer, which writes it with a deadline; so a
//     sender is never held by a slow client, and a stuck client costs a writer goroutine of its own
//     until its write deadline, as before.
//   - wireBusy: bytes are being written, or a frame is partly written and its rest waits first in
//     the queue. A control frame the library writes (a pong or a close frame from the reader) waits
//     until the wire is free, so it never lands inside a data frame.
//
// Once the library has written a close frame (closeSent), no data frame is written: the reader may
// answer a client's close, or fail a protocol error, before the socket is marked closing.

// errWouldBlock is tryWrite's answer when the socket cannot take the whole frame now.
var errWouldBlock = errors.New("websocket: the socket would block")

// wsFrame returns data as one final, unmasked (server) WebSocket frame: text, or binary when bin
// (RFC 6455 §5.2).
func wsFrame(data []byte, bin bool) []byte {
	op := byte(websocket.TextMessage)
	if bin {
		op = websocket.BinaryMessage
	}
	n := len(data)
	var f []byte
	switch {
	case n <= 125:
		f = make([]byte, 2, 2+n)
		f[1] = byte(n)
	case n <= math.MaxUint16:
		f = make([]byte, 4, 4+n)
		f[1] = 126
		binary.BigEndian.PutUint16(f[2:], uint16(n))
	default:
		f = make([]byte, 10, 10+n)
		f[1] = 127
		binary.BigEndian.PutUint64(f[2:], uint64(n))
	}
	f[0] = 0x80 | op // FIN
	return append(f, data...)
}

// send sends a frame (from wsFrame, which it does not modify; it may be shared) to the client:
// written at once when the socket is idle and takes it whole, queued for the writer otherwise. It
// fails with ErrConnectionGone when the socket is closing or its write failed, and with
// connections.ErrLimitExceeded when the client's queue is full (the client is disconnected).
func (c *wsConn) send(frame []byte) error {
	c.mu.Lock()
	if c.writing || c.wireBusy || c.conn == nil || len(c.out) > 0 || c.closing.Load() || c.closeSent {
		err := c.queueLocked(frame)
		c.mu.Unlock()
		return err
	}
	c.writing, c.wireBusy = true, true
	c.mu.Unlock()
	n, err := tryWrite(c.sock, frame)
	c.mu.Lock()
	switch {
	case n == len(frame):
		c.writing, c.wireBusy = false, false
		c.cond.Broadcast()
		// What came while the frame was written (a message, a ping, closing) is the writer's.
		if c.closing.Load() || len(c.out) > 0 || c.pingDue {
			c.startWriter()
		}
		c.mu.Unlock()
		return nil
	case err != nil && !errors.Is(err, errWouldBlock):
		c.wireBusy = false
		c.failLocked()
		return ErrConnectionGone
	default:
		// The writer writes the rest (or all) of the frame, with a deadline, before what was queued
		// meanwhile; a partly written frame keeps the wire until then. The writer takes over the
		// ownership of the socket.
		c.wireBusy = n > 0
		c.out = slices.Insert(c.out, 0, outbound{data: frame[n:], partial: n > 0})
		c.cond.Broadcast()
		go c.writeLoop()
		c.mu.Unlock()
		return nil
	}
}

// writeWire writes p for the writer, which holds the wire: at once when the socket takes it whole,
// else the rest with a write deadline.
func (c *wsConn) writeWire(p []byte) error {
	n, err := tryWrite(c.sock, p)
	if n == len(p) {
		return nil
	}
	if err != nil && !errors.Is(err, errWouldBlock) {
		return err
	}
	if err := c.sock.SetWriteDeadline(time.Now().Add(writeTimeout)); err != nil {
		return err
	}
	_, err = c.sock.Write(p[n:])
	return err
}

// wsWire is the connection the WebSocket library is given: reads go straight to the socket; a write
// (the handshake's answer, a control frame) waits until the wire is free, and holds it while it
// writes, with the write deadline the library last set.
type wsWire struct{ c *wsConn }

func (w wsWire) Read(p []byte) (int, error) { return w.c.sock.Read(p) }

func (w wsWire) Write(p []byte) (int, error) {
	c := w.c
	c.mu.Lock()
	for c.wireBusy {
		c.cond.Wait()
	}
	c.wireBusy = true
	if len(p) > 0 && p[0] == 0x80|websocket.CloseMessage {
		c.closeSent = true // each control frame is one write, from its header on
	}
	deadline := c.wireDeadline
	c.mu.Unlock()
	var t time.Time
	if deadline != 0 {
		t = time.Unix(0, deadline)
	}
	n, err := 0, c.sock.SetWriteDeadline(t)
	if err == nil {
		n, err = c.sock.Write(p)
	}
	c.mu.Lock()
	c.wireBusy = false
	c.cond.Broadcast()
	c.mu.Unlock()
	return n, err
}

func (w wsWire) Close() error                       { return w.c.sock.Close() }
func (w wsWire) LocalAddr() net.Addr                { return w.c.sock.LocalAddr() }
func (w wsWire) RemoteAddr() net.Addr               { return w.c.sock.RemoteAddr() }
func (w wsWire) SetReadDeadline(t time.Time) error  { return w.c.sock.SetReadDeadline(t) }
func (w wsWire) SetWriteDeadline(t time.Time) error { w.setWriteDeadline(t); return nil }

func (w wsWire) SetDeadline(t time.Time) error {
	w.setWriteDeadline(t)
	return w.c.sock.SetReadDeadline(t)
}

// setWriteDeadline records the library's write deadline, for its next write.
func (w wsWire) setWriteDeadline(t time.Time) {
	var d int64
	if !t.IsZero() {
		d = t.UnixNano()
	}
	w.c.mu.Lock()
	w.c.wireDeadline = d
	w.c.mu.Unlock()
}
