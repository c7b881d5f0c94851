package testfix

import (
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// Ports below the kernel's ephemeral range: a test that names an address for a process it starts
// later (a cluster node's gateway, its routes) needs a port nobody else takes in between. A port
// found with Listen(":0") comes from the ephemeral range, where every outgoing connection and every
// other ":0" listener on the machine draws too, and CI runs test packages side by side with
// thousands of connections open; below the range only explicit binds land.
const lowestPort = 20000

var (
	portMu   sync.Mutex
	portNext int // the next port to try; 0 before the first call
	portTop  int // one past the last usable port
)

// FreeAddr returns a loopback address whose port is free now and outside the ephemeral range, so
// it stays free until the caller's process binds it unless another test names it explicitly. Ports
// are handed out in turn from a point that differs per process, never twice in one process.
func FreeAddr(tb testing.TB) string {
	tb.Helper()
	portMu.Lock()
	defer portMu.Unlock()
	if portNext == 0 {
		portTop = ephemeralLow()
		if portTop-lowestPort < 1000 {
			portTop = 0
		} else {
			portNext = lowestPort + rand.IntN(portTop-lowestPort)
		}
	}
	if portTop == 0 { // no room below the ephemeral range: the kernel's choice
		return listenFree(tb, "127.0.0.1:0")
	}
	for range portTop - lowestPort {
		p := portNext
		if portNext++; portNext >= portTop {
			portNext = lowestPort
		}
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(p))
		if ln, err := net.Listen("tcp", addr); err == nil {
			ln.Close()
			return addr
		}
	}
	tb.Fatalf("no free loopback port in %d–%d", lowestPort, portTop-1)
	return ""
}

func listenFree(tb testing.TB, addr string) string {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// ephemeralLow is the first port of the kernel's ephemeral range (Linux's default where it cannot
// be read).
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 32768
	}
	f := strings.Fields(string(b))
	if len(f) < 1 {
		return 32768
	}
	n, err := strconv.Atoi(f[0])
	if err != nil {
		return 32768
	}
	return n
}
