package process

import (
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"
)

// Forward is a TCP address a sandboxed process reaches inside its sandbox that leads to one outside
// it: the node's gateway, so that a function can post to @connections with any client, proxy or
// not. Inside is a loopback address of the sandbox ("127.0.0.1:8080"); Target is the address the
// worker dials.
type Forward struct {
	Inside, Target string
}

// GatewayForward is the Forward that gives a sandbox the node's gateway at the same port on its own
// loopback, from the gateway's listen address ("127.0.0.1:8080", ":8080", "0.0.0.0:8080",
// "192.0.2.7:8080"); false when addr is not one, or its port is one the sandbox uses itself.
func GatewayForward(addr string) (Forward, bool) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil || port == "" || port == "0" {
		return Forward{}, false
	}
	if inside := "127.0.0.1:" + port; inside != SandboxRuntimeAPI && inside != SandboxProxy {
		target := addr
		if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
			target = "127.0.0.1:" + port
		}
		return Forward{Inside: inside, Target: target}, true
	}
	return Forward{}, false
}

// forwarder serves one Forward's listener: each connection accepted inside is piped to a new
// connection to the target.
type forwarder struct {
	ln     net.Listener
	target string
	log    *slog.Logger

	mu    sync.Mutex
	conns map[net.Conn]struct{}
	done  chan struct{}
	wg    sync.WaitGroup
}

func startForwarder(ln net.Listener, target string, log *slog.Logger) *forwarder {
	f := &forwarder{ln: ln, target: target, log: log, conns: map[net.Conn]struct{}{}, done: make(chan struct{})}
	go f.serve()
	return f
}

func (f *forwarder) serve() {
	defer close(f.done)
	for {
		in, err := f.ln.Accept()
		if err != nil {
			return
		}
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			f.pipe(in)
		}()
	}
}

func (f *forwarder) track(c net.Conn, add bool) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.conns == nil {
		return false // closed
	}
	if add {
		f.conns[c] = struct{}{}
	} else {
		delete(f.conns, c)
	}
	return true
}

func (f *forwarder) pipe(in net.Conn) {
	defer in.Close()
	if !f.track(in, true) {
		return
	}
	defer f.track(in, false)
	out, err := net.DialTimeout("tcp", f.target, 10*time.Second)
	if err != nil {
		f.log.Debug("sandbox forward: dial failed", "target", f.target, "error", err)
		return
	}
	defer out.Close()
	if !f.track(out, true) {
		return
	}
	defer f.track(out, false)
	done := make(chan struct{})
	go func() {
		_, _ = io.Copy(out, in)
		closeWrite(out)
		close(done)
	}()
	_, _ = io.Copy(in, out)
	closeWrite(in)
	<-done
}

// close stops accepting, ends the connections in flight and waits for them.
func (f *forwarder) close() {
	f.ln.Close()
	<-f.done
	f.mu.Lock()
	for c := range f.conns {
		c.Close()
	}
	f.conns = nil
	f.mu.Unlock()
	f.wg.Wait()
}

// noProxy is NO_PROXY for a sandbox: its Runtime API and its forwards, by address and as localhost.
func noProxy(forwards []Forward) string {
	list := []string{SandboxRuntimeAPI, "localhost:9001"}
	for _, fw := range forwards {
		_, port, _ := net.SplitHostPort(fw.Inside)
		list = append(list, fw.Inside, "localhost:"+port)
	}
	return strings.Join(list, ",")
}
