//go:build !unix

package gateway

import "net"

// tryWrite writes nothing here: every frame goes through the socket's writer, with a write deadline.
func tryWrite(net.Conn, []byte) (int, error) { return 0, errWouldBlock }
