package tlsconf

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// testCA is a certificate authority made for one test.
type testCA struct {
	cert *x509.Certificate
	key  crypto.Signer
	pem  []byte
}

// newTestCA makes a self-signed ECDSA P-256 CA named cn.
func newTestCA(t testing.TB, cn string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &testCA{cert: cert, key: key, pem: pemBytes("CERTIFICATE", der)}
}

// leafOpts describes a certificate a testCA issues. Zero times mean "valid from an hour ago for a
// day"; a nil usage means serverAuth and clientAuth.
type leafOpts struct {
	serial    int64
	cn        string
	dns       []string
	ips       []net.IP
	notBefore time.Time
	notAfter  time.Time
	usage     []x509.ExtKeyUsage
	isCA      bool
}

// issued is a certificate a testCA made, with its PEM text.
type issued struct {
	tls     *tls.Certificate
	certPEM []byte // the leaf, then the issuing chain below the root, if any
	keyPEM  []byte
}

// issue makes a certificate signed by the CA.
func (ca *testCA) issue(t testing.TB, o leafOpts) issued {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if o.notBefore.IsZero() {
		o.notBefore = time.Now().Add(-time.Hour)
	}
	if o.notAfter.IsZero() {
		o.notAfter = time.Now().Add(24 * time.Hour)
	}
	if o.usage == nil {
		o.usage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
	}
	if o.serial == 0 {
		o.serial = time.Now().UnixNano()
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(o.serial),
		Subject:               pkix.Name{CommonName: o.cn},
		DNSNames:              o.dns,
		IPAddresses:           o.ips,
		NotBefore:             o.notBefore,
		NotAfter:              o.notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           o.usage,
		BasicConstraintsValid: true,
	}
	if o.isCA {
		tmpl.IsCA = true
		tmpl.KeyUsage |= x509.KeyUsageCertSign
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, key.Public(), ca.key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return issued{
		tls:     &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf},
		certPEM: pemBytes("CERTIFICATE", der),
		keyPEM:  pemBytes("PRIVATE KEY", keyDER),
	}
}

// asCA turns an issued CA certificate into a testCA that can issue in turn.
func (c issued) asCA() *testCA {
	return &testCA{cert: c.tls.Leaf, key: c.tls.PrivateKey.(crypto.Signer), pem: c.certPEM}
}

// writePair writes a certificate and its key as name.pem and name-key.pem in dir.
func writePair(t testing.TB, dir, name string, c issued) (certFile, keyFile string) {
	t.Helper()
	certFile, keyFile = filepath.Join(dir, name+".pem"), filepath.Join(dir, name+"-key.pem")
	if err := os.WriteFile(keyFile, c.keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(certFile, c.certPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

// logBuffer collects log output safely across goroutines.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func newTestLogger() (*slog.Logger, *logBuffer) {
	buf := &logBuffer{}
	return slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug})), buf
}

// tlsServer is a TLS server on 127.0.0.1 for one test. It completes the handshake of each
// connection, reports the result on handshakes, and, when the handshake succeeds, writes "ok\n".
type tlsServer struct {
	addr       string
	handshakes chan error
}

func startTLSServer(t testing.TB, cfg *tls.Config) *tlsServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &tlsServer{addr: ln.Addr().String(), handshakes: make(chan error, 64)}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				tc := tls.Server(c, cfg)
				_ = tc.SetDeadline(time.Now().Add(5 * time.Second))
				err := tc.Handshake()
				select {
				case s.handshakes <- err:
				default:
				}
				if err == nil {
					_, _ = io.WriteString(tc, "ok\n")
				}
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
	})
	return s
}

// lastHandshake returns the result of the server's next handshake.
func (s *tlsServer) lastHandshake(t testing.TB) error {
	t.Helper()
	select {
	case err := <-s.handshakes:
		return err
	case <-time.After(5 * time.Second):
		t.Fatal("the server saw no handshake")
		return nil
	}
}

// dial connects to addr with cfg, completes the handshake and reads the server's "ok": with TLS 1.3
// a client finishes its side of the handshake before the server has checked its certificate, so
// the server's verdict (an alert) arrives with the first read.
func dial(addr string, cfg *tls.Config) (tls.ConnectionState, error) {
	d := &net.Dialer{Timeout: 5 * time.Second}
	conn, err := tls.DialWithDialer(d, "tcp", addr, cfg)
	if err != nil {
		return tls.ConnectionState{}, err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	line := make([]byte, 3)
	if _, err := io.ReadFull(conn, line); err != nil {
		return conn.ConnectionState(), err
	}
	if string(line) != "ok\n" {
		return conn.ConnectionState(), errors.New("unexpected server reply " + string(line))
	}
	return conn.ConnectionState(), nil
}

// isRemoteAlert reports whether a client's error is a TLS alert sent by the server: the handshake
// ended at the TLS layer.
func isRemoteAlert(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "remote error" && strings.Contains(err.Error(), "tls:")
}

// serial returns the serial number of the certificate a connection got, in hexadecimal.
func serial(cs tls.ConnectionState) string {
	if len(cs.PeerCertificates) == 0 {
		return "(none)"
	}
	return cs.PeerCertificates[0].SerialNumber.Text(16)
}

// waitFor polls cond every 20 ms until it holds or 5 s pass.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

// pool returns a certificate pool holding the CA.
func (ca *testCA) pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.cert)
	return p
}
