package app

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"gatehouse.dev/gatehouse/internal/testfix"
)

// testCA is a certificate authority of the test's own, for client certificates.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newTestCA(t *testing.T, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &testCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// client issues a client certificate with serial and the validity given.
func (ca *testCA) client(t *testing.T, serial int64, cn string, notAfter time.Time) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn, Organization: []string{"Example"}},
		NotBefore: time.Now().Add(-2 * time.Hour), NotAfter: notAfter, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// TestTLSListener serves the stack over HTTPS with `up --tls`: the local CA's certificate for
// 127.0.0.1, a custom domain's own certificate chosen by SNI, its mappings, HSTS and redirect, and a
// domain with mutual TLS whose client certificate reaches the function.
func TestTLSListener(t *testing.T) {
	dir := t.TempDir()
	trusted := newTestCA(t, "Trusted Clients")
	if err := os.WriteFile(filepath.Join(dir, "clients.pem"), trusted.pem, 0o644); err != nil {
		t.Fatal(err)
	}
	echo := filepath.Join(testfix.RepoRoot(), "samples", "echo")
	stack := fmt.Sprintf(`version: 1
name: tlsstack
functions:
  echo: {source: %q}
apis:
  shop:
    type: http
    mount: /shop
    stages: {prod: {}}
    routes: {GET /hello: {function: echo}}
domains:
  shop.localhost:
    mappings: {"": {api: shop, stage: prod}}
    redirectHttp: true
    hsts: {maxAge: 3600s, includeSubdomains: true}
  shop.example.test:
    certificate: acme
    mappings: {"": {api: shop, stage: prod}}
  secure.localhost:
    mappings: {"v1": {api: shop, stage: prod}}
    securityPolicy: TLS_1_3
    mutualTls: {truststore: %q, revokedSerials: ["0A"]}
`, echo, filepath.Join(dir, "clients.pem"))
	data := newDataDir(t)
	// The ACME CA never answers here: the ACME domain is served with the local default certificate
	// meanwhile, and the node starts and stops as usual.
	n := startNode(t, writeStack(t, stack), data, func(o *Options) {
		o.TLSAddr, o.ACMECA, o.AdminTLS = "127.0.0.1:0", "https://127.0.0.1:1/directory", true
		o.AWSAddr, o.AWSTLS = "127.0.0.1:0", true
	})
	t.Cleanup(func() { n.Stop(context.Background()) })
	if n.CAPath() == "" || n.TLSAddr() == "" {
		t.Fatalf("no TLS listener (%q) or local CA (%q)", n.TLSAddr(), n.CAPath())
	}
	caPEM, err := os.ReadFile(n.CAPath())
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(caPEM) {
		t.Fatal("the local CA file holds no certificate")
	}
	_, port, _ := net.SplitHostPort(n.TLSAddr())
	httpsClient := func(cert *tls.Certificate, maxVersion uint16) *http.Client {
		cfg := &tls.Config{RootCAs: roots, MaxVersion: maxVersion}
		if cert != nil {
			cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return cert, nil }
		}
		// Every name resolves to the node's listener, as DNS would for a real domain.
		dialer := &net.Dialer{Timeout: 5 * time.Second}
		return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg,
			DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
				return dialer.DialContext(ctx, network, n.TLSAddr())
			}}, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	get := func(c *http.Client, url string) (*http.Response, string, error) {
		resp, err := c.Get(url)
		if err != nil {
			return nil, "", err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b), nil
	}

	// 127.0.0.1 over TLS, with the local CA's certificate: the API at its mount.
	resp, body, err := get(httpsClient(nil, 0), "https://127.0.0.1:"+port+"/shop/prod/hello")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("https://127.0.0.1: %v %v %s", err, resp, body)
	}
	if resp.TLS.PeerCertificates[0].Issuer.CommonName != "Gatehouse Local CA" {
		t.Errorf("127.0.0.1's certificate is issued by %q", resp.TLS.PeerCertificates[0].Issuer.CommonName)
	}
	// A custom domain: its own certificate by SNI, its mapping, HSTS.
	resp, body, err = get(httpsClient(nil, 0), "https://shop.localhost:"+port+"/hello")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("https://shop.localhost: %v %v %s", err, resp, body)
	}
	if names := resp.TLS.PeerCertificates[0].DNSNames; len(names) != 1 || names[0] != "shop.localhost" {
		t.Errorf("shop.localhost's certificate is for %q", names)
	}
	if got := resp.Header.Get("Strict-Transport-Security"); got != "max-age=3600; includeSubDomains" {
		t.Errorf("HSTS = %q", got)
	}
	var ev events.APIGatewayV2HTTPRequest
	if err := json.Unmarshal([]byte(body), &ev); err != nil || ev.RequestContext.DomainName != "shop.localhost" || ev.RequestContext.DomainPrefix != "shop" || ev.RequestContext.Stage != "prod" {
		t.Errorf("event through the domain: %v %+v", err, ev.RequestContext)
	}
	// An ACME domain whose certificate is not obtained yet gets the local default certificate.
	// (The client sends the domain as SNI and checks the certificate it gets below.)
	resp, _, err = get(&http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true},
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, n.TLSAddr())
		}}}, "https://shop.example.test:"+port+"/hello")
	if err != nil || resp.StatusCode != 200 || resp.TLS.PeerCertificates[0].DNSNames[0] != "localhost" {
		t.Errorf("an ACME domain before its certificate: %v %v", err, resp)
	}
	// Plain HTTP to the domain: redirected to HTTPS on the TLS port.
	req, _ := http.NewRequest("GET", "http://"+n.GatewayAddr()+"/hello?x=1", nil)
	req.Host = "shop.localhost"
	plain, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	plain.Body.Close()
	if want := "https://shop.localhost:" + port + "/hello?x=1"; plain.StatusCode != http.StatusMovedPermanently || plain.Header.Get("Location") != want {
		t.Errorf("redirect: %d %q, want 301 %s", plain.StatusCode, plain.Header.Get("Location"), want)
	}

	// Mutual TLS: a trusted client certificate reaches the function; others end the handshake.
	good := trusted.client(t, 7, "client-7", time.Now().Add(time.Hour))
	resp, body, err = get(httpsClient(&good, 0), "https://secure.localhost:"+port+"/v1/hello")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("mTLS with a trusted certificate: %v %v %s", err, resp, body)
	}
	var mev struct {
		RequestContext struct {
			Authentication struct {
				ClientCert struct {
					ClientCertPem, SubjectDN, IssuerDN, SerialNumber string
					Validity                                         struct{ NotBefore, NotAfter string }
				} `json:"clientCert"`
			} `json:"authentication"`
		} `json:"requestContext"`
	}
	if err := json.Unmarshal([]byte(body), &mev); err != nil {
		t.Fatal(err)
	}
	cc := mev.RequestContext.Authentication.ClientCert
	if cc.SerialNumber != "7" || cc.SubjectDN != "O=Example,CN=client-7" || cc.IssuerDN != "CN=Trusted Clients" ||
		!strings.HasPrefix(cc.ClientCertPem, "-----BEGIN CERTIFICATE-----") || !strings.HasSuffix(cc.Validity.NotAfter, " GMT") {
		t.Errorf("clientCert = %+v", cc)
	}
	other := newTestCA(t, "Someone Else")
	for name, cert := range map[string]*tls.Certificate{
		"no certificate":      nil,
		"another CA":          ptr(other.client(t, 8, "x", time.Now().Add(time.Hour))),
		"expired":             ptr(trusted.client(t, 9, "old", time.Now().Add(-time.Hour))),
		"revoked serial 0x0a": ptr(trusted.client(t, 10, "revoked", time.Now().Add(time.Hour))),
	} {
		_, _, err := get(httpsClient(cert, 0), "https://secure.localhost:"+port+"/v1/hello")
		if err == nil || !strings.Contains(err.Error(), "tls") {
			t.Errorf("%s: %v, want the handshake to fail with a TLS alert", name, err)
		}
	}
	// The domain's TLS_1_3 policy refuses a TLS 1.2 client.
	if _, _, err := get(httpsClient(&good, tls.VersionTLS12), "https://secure.localhost:"+port+"/v1/hello"); err == nil {
		t.Error("a TLS 1.2 client reached a TLS_1_3 domain")
	}

	// The admin API over HTTPS with the same CA: the CLI finds and trusts it from the data
	// directory; plain HTTP to it gets no answer.
	if out := runCLI(t, n, "functions"); !strings.Contains(out, "echo") {
		t.Errorf("gatehouse functions through the admin API's TLS: %q", out)
	}
	if r, err := http.Get("http://" + n.AdminAddr() + "/healthz"); err == nil && r.StatusCode == 200 {
		t.Errorf("the admin API answered plain HTTP with --admin-tls")
	}

	// The AWS API over HTTPS with the same CA: an unsigned call is answered (refused) over TLS.
	awsResp, _, err := get(&http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}}, "https://"+n.AWSAddr()+"/2015-03-31/functions/")
	if err != nil || awsResp.StatusCode != http.StatusForbidden {
		t.Errorf("the AWS API over TLS: %v %v", err, awsResp)
	}

	// gatehouse ca path prints the node's CA.
	var out bytes.Buffer
	cmd := newCACommand(&out)
	cmd.SetArgs([]string{"path", "--data", data})
	if err := cmd.Execute(); err != nil || strings.TrimSpace(out.String()) != n.CAPath() {
		t.Errorf("gatehouse ca path = %q (%v), want %s", out.String(), err, n.CAPath())
	}
}

func ptr[T any](v T) *T { return &v }

// TestACMEDomain runs `up --tls` with a domain whose certificate is acme against Pebble (in the test
// process, challenges taken as valid): until the certificate is issued the domain is served with
// the local default certificate, then with Pebble's, which chains to Pebble's root.
func TestACMEDomain(t *testing.T) {
	var logs syncBuffer
	p := testfix.StartPebble(t, testfix.PebbleOptions{AlwaysValid: true}, &logs)
	dir := t.TempDir()
	rootFile := filepath.Join(dir, "pebble-https.pem")
	if err := os.WriteFile(rootFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: p.ACME.Certificate().Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	stack := fmt.Sprintf(`version: 1
name: acmestack
functions:
  echo: {source: %q}
apis:
  shop: {type: http, routes: {GET /hello: {function: echo}}}
domains:
  shop.example.test:
    certificate: acme
    mappings: {"": {api: shop}}
`, filepath.Join(testfix.RepoRoot(), "samples", "echo"))
	n := startNode(t, writeStack(t, stack), newDataDir(t), func(o *Options) {
		o.TLSAddr, o.ACMECA, o.ACMECARoot = "127.0.0.1:0", p.DirURL, rootFile
	})
	t.Cleanup(func() { n.Stop(context.Background()) })
	pebbleRoots := x509.NewCertPool()
	pebbleRoots.AddCert(p.IssuingRoot(t))
	var last error
	deadline := time.Now().Add(30 * time.Second)
	for ; time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		conn, err := tls.Dial("tcp", n.TLSAddr(), &tls.Config{ServerName: "shop.example.test", RootCAs: pebbleRoots})
		if err != nil {
			last = err // the local default certificate, until Pebble's arrives
			continue
		}
		leaf := conn.ConnectionState().PeerCertificates[0]
		conn.Close()
		if len(leaf.DNSNames) != 1 || leaf.DNSNames[0] != "shop.example.test" {
			t.Fatalf("the ACME certificate is for %q", leaf.DNSNames)
		}
		// The domain serves the API with it.
		c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pebbleRoots},
			DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
				return (&net.Dialer{}).DialContext(ctx, network, n.TLSAddr())
			}}}
		resp, err := c.Get("https://shop.example.test/hello")
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("GET https://shop.example.test/hello: %v %v", err, resp)
		}
		resp.Body.Close()
		return
	}
	t.Fatalf("no certificate from Pebble within 30 s: %v\npebble:\n%s", last, logs.String())
}
