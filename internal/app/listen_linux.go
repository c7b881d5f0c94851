package app

import (
	"context"
	"errors"
	"net"
	"syscall"
	"time"
)

// TCP keepalive of the connections a listener accepts: what Go's net package sets on each by
// default (probes after 15 s idle, every 15 s, 9 of them).
const (
	keepAliveIdle     = 15 * time.Second
	keepAliveInterval = 15 * time.Second
	keepAliveCount    = 9
)

// listenTCP listens on addr for connections from clients. Go sets TCP keepalive on every
// connection it accepts, four setsockopt calls each; on Linux an accepted connection inherits the
// listening socket's keepalive settings, so they are set once there instead, with the same values.
// Where the listening socket refuses them, it listens as net.Listen does.
func listenTCP(addr string) (net.Listener, error) {
	lc := net.ListenConfig{
		KeepAlive: -1, // set on the listening socket below, and inherited
		Control: func(_, _ string, c syscall.RawConn) error {
			var err error
			cerr := c.Control(func(fd uintptr) {
				for _, o := range [...]struct{ level, opt, value int }{
					{syscall.SOL_SOCKET, syscall.SO_KEEPALIVE, 1},
					{syscall.IPPROTO_TCP, syscall.TCP_KEEPIDLE, int(keepAliveIdle / time.Second)},
					{syscall.IPPROTO_TCP, syscall.TCP_KEEPINTVL, int(keepAliveInterval / time.Second)},
					{syscall.IPPROTO_TCP, syscall.TCP_KEEPCNT, keepAliveCount},
				} {
					if err == nil {
						err = syscall.SetsockoptInt(int(fd), o.level, o.opt, o.value)
					}
				}
			})
			if cerr != nil {
				return cerr
			}
			if err != nil {
				return keepAliveError{err}
			}
			return nil
		},
	}
	ln, err := lc.Listen(context.Background(), "tcp", addr)
	if errors.As(err, new(keepAliveError)) {
		return net.Listen("tcp", addr)
	}
	return ln, err
}

// keepAliveError is a listening socket's refusal of the keepalive settings.
type keepAliveError struct{ err error }

func (e keepAliveError) Error() string { return "setting TCP keepalive: " + e.err.Error() }
func (e keepAliveError) Unwrap() error { return e.err }
