//go:build !linux

package app

import "net"

// listenTCP listens on addr for connections from clients (see listen_linux.go).
func listenTCP(addr string) (net.Listener, error) {
	return net.Listen("tcp", addr)
}
