//go:build unix

package gateway

import (
	"net"
	"syscall"
)

// tryWrite writes as much of p to nc as its socket takes now, without waiting, and returns how much
// it wrote, with errWouldBlock when that is less than all of p (the socket's buffer is full) or nc
// cannot be written to this way (not a TCP connection: TLS, for one).
//
// The write bypasses the runtime's network poller, so it needs no write deadline; the caller must be
// the only one writing to the socket (it holds the wire, see wswire.go).
func tryWrite(nc net.Conn, p []byte) (int, error) {
	if f, ok := nc.(*frameLimitConn); ok {
		nc = f.Conn // only reads are wrapped
	}
	tc, ok := nc.(*net.TCPConn)
	if !ok {
		return 0, errWouldBlock
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return 0, err
	}
	var n int
	var werr error
	if err := rc.Control(func(fd uintptr) {
		for {
			// The runtime keeps network sockets non-blocking: a full buffer answers EAGAIN.
			n, werr = syscall.Write(int(fd), p)
			if werr != syscall.EINTR {
				return
			}
		}
	}); err != nil {
		return 0, err
	}
	switch {
	case werr == syscall.EAGAIN || werr == syscall.EWOULDBLOCK:
		return 0, errWouldBlock
	case werr != nil:
		return 0, werr
	case n < len(p):
		return n, errWouldBlock
	}
	return n, nil
}
