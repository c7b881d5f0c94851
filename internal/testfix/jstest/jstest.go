// Package jstest starts embedded NATS servers with JetStream for tests, and connects clients to them.
// It imports nothing of Gatehouse, so any package's tests may use it.
package jstest

import (
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Start starts a NATS server with JetStream storing in dir (a temporary directory when ""), on a
// random loopback port. It is shut down when the test ends; shutting it down earlier is fine.
func Start(tb testing.TB, dir string) *server.Server {
	tb.Helper()
	if dir == "" {
		dir = tb.TempDir()
	}
	ns, err := server.NewServer(&server.Options{
		Host:               "127.0.0.1",
		Port:               server.RANDOM_PORT,
		NoLog:              true,
		NoSigs:             true,
		JetStream:          true,
		StoreDir:           dir,
		JetStreamMaxMemory: 64 << 20,
	})
	if err != nil {
		tb.Fatal(err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		ns.Shutdown()
		tb.Fatal("nats server did not become ready")
	}
	tb.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	return ns
}

// Connect connects a client (one "node") to ns; it is closed when the test ends.
func Connect(tb testing.TB, ns *server.Server) (*nats.Conn, jetstream.JetStream) {
	tb.Helper()
	nc, err := nats.Connect(ns.ClientURL(), nats.MaxReconnects(0))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		tb.Fatal(err)
	}
	return nc, js
}
