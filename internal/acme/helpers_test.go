package acme

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"gatehouse.dev/gatehouse/internal/testfix"
)

// The tests run Pebble, Let's Encrypt's ACME test server, in the test process from its Go packages,
// wired as its command (cmd/pebble) wires them: an in-memory database, the CA, the validation
// authority and the web front end, served over HTTPS by httptest on a random loopback port. No
// public CA is ever contacted.

// The tests run Pebble in the test process (testfix.StartPebble).
type pebbleOptions = testfix.PebbleOptions

// pebble is a running Pebble, with the names these tests use.
type pebble struct{ *testfix.Pebble }

func (p pebble) issuingRoot(t *testing.T) *x509.Certificate { return p.IssuingRoot(t) }
func (p pebble) stop()                                      { p.Stop() }

func startPebble(t *testing.T, opts pebbleOptions, out io.Writer) pebble {
	t.Helper()
	return pebble{testfix.StartPebble(t, opts, out)}
}

// startDNS starts a DNS server over TCP on a loopback port, as Pebble's validation authority asks
// it, that answers every A question with 127.0.0.1 and every other with no record. It returns its
// address.
func startDNS(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &dns.Server{Listener: ln, Net: "tcp", Handler: dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) {
		reply := new(dns.Msg)
		reply.SetReply(q)
		for _, question := range q.Question {
			if question.Qtype == dns.TypeA {
				reply.Answer = append(reply.Answer, &dns.A{
					Hdr: dns.RR_Header{Name: question.Name, Rrtype: dns.TypeA, Class: dns.ClassINET},
					A:   net.IPv4(127, 0, 0, 1),
				})
			}
		}
		_ = w.WriteMsg(reply)
	})}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.ActivateAndServe()
	}()
	t.Cleanup(func() {
		_ = srv.Shutdown()
		<-done
	})
	return ln.Addr().String()
}

// node stands for a Gatehouse node's two listeners on loopback: plain HTTP, whose handler is the
// Manager's HTTPChallengeHandler around a 404, and TLS, whose certificates come from the Manager's
// GetCertificate. The Manager can be swapped while they run.
type node struct {
	httpPort, tlsPort int
	tlsAddr           string
	mgr               atomic.Pointer[Manager]

	challengeGets atomic.Int64 // requests under /.well-known/acme-challenge/
	fellThrough   atomic.Int64 // of those, the ones the challenge handler passed on
	alpnHellos    atomic.Int64 // TLS-ALPN-01 handshakes
}

func startNode(t *testing.T) *node {
	t.Helper()
	n := &node{}
	notFound := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/.well-known/acme-challenge/") {
			n.fellThrough.Add(1)
		}
		http.NotFound(w, r)
	})
	plain := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if strings.HasPrefix(r.URL.Path, "/.well-known/acme-challenge/") {
				n.challengeGets.Add(1)
			}
			if m := n.mgr.Load(); m != nil {
				m.HTTPChallengeHandler(notFound).ServeHTTP(w, r)
				return
			}
			notFound.ServeHTTP(w, r)
		}),
		ErrorLog: log.New(io.Discard, "", 0),
	}
	secure := &http.Server{
		Handler: notFound,
		TLSConfig: &tls.Config{
			NextProtos: []string{"http/1.1", TLSALPNProtocol},
			GetCertificate: func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
				if len(hello.SupportedProtos) == 1 && hello.SupportedProtos[0] == TLSALPNProtocol {
					n.alpnHellos.Add(1)
				}
				m := n.mgr.Load()
				if m == nil {
					return nil, ErrNotManaged
				}
				return m.GetCertificate(hello)
			},
		},
		ErrorLog: log.New(io.Discard, "", 0),
	}
	plainLn := listen(t)
	tlsLn := listen(t)
	n.httpPort, n.tlsPort = port(plainLn), port(tlsLn)
	n.tlsAddr = tlsLn.Addr().String()
	var wg sync.WaitGroup
	wg.Go(func() { _ = plain.Serve(plainLn) })
	wg.Go(func() { _ = secure.ServeTLS(tlsLn, "", "") })
	t.Cleanup(func() {
		_ = plain.Close()
		_ = secure.Close()
		wg.Wait()
	})
	return n
}

func listen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

func port(ln net.Listener) int {
	_, p, _ := net.SplitHostPort(ln.Addr().String())
	n, _ := strconv.Atoi(p)
	return n
}

// handshake connects to addr with TLS as a browser would, asking for name and trusting only roots,
// and returns the verified chains' leaf.
func handshake(t *testing.T, addr, name string, roots *x509.CertPool) (*x509.Certificate, error) {
	t.Helper()
	d := &tls.Dialer{NetDialer: &net.Dialer{Timeout: 5 * time.Second}, Config: &tls.Config{
		ServerName: name,
		RootCAs:    roots,
		NextProtos: []string{"http/1.1"},
	}}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	state := conn.(*tls.Conn).ConnectionState()
	if len(state.VerifiedChains) == 0 {
		return nil, errors.New("no verified chain")
	}
	return state.VerifiedChains[0][0], nil
}

// servedLeaf returns the certificate the server at addr serves for name, without verifying it.
func servedLeaf(addr, name string) (*x509.Certificate, error) {
	d := &tls.Dialer{NetDialer: &net.Dialer{Timeout: 5 * time.Second}, Config: &tls.Config{
		ServerName:         name,
		InsecureSkipVerify: true, // only to read the certificate; the tests verify with handshake
	}}
	conn, err := d.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	return conn.(*tls.Conn).ConnectionState().PeerCertificates[0], nil
}

// logBuffer collects the log output of a test (its Managers' and Pebble's) and prints it when the
// test fails. It is safe for concurrent use, and writes after the test ended are kept, not
// reported, since CertMagic may log from its own goroutines a moment after a Manager closed.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func newLogBuffer(t *testing.T) *logBuffer {
	b := &logBuffer{}
	t.Cleanup(func() {
		if t.Failed() {
			b.mu.Lock()
			defer b.mu.Unlock()
			t.Logf("log:\n%s", b.buf.String())
		}
	})
	return b
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func (b *logBuffer) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug}))
}
