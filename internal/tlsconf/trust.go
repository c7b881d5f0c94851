package tlsconf

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"
)

// Why a client certificate was refused. VerifyClient's errors, and the handshake errors of a
// [TrustStore.Config], wrap exactly one of them.
var (
	// ErrNoClientCert: the client sent no certificate.
	ErrNoClientCert = errors.New("tlsconf: the client sent no certificate")
	// ErrUntrusted: the certificate does not chain to the trust store, cannot be parsed, or is not
	// valid for client authentication.
	ErrUntrusted = errors.New("tlsconf: the client certificate is not trusted")
	// ErrExpired: the certificate, or one in its chain, is outside its validity period (expired or
	// not yet valid).
	ErrExpired = errors.New("tlsconf: the client certificate is expired or not yet valid")
	// ErrRevoked: the certificate's serial number is in the revoked list.
	ErrRevoked = errors.New("tlsconf: the client certificate is revoked")
)

// TrustStore verifies client certificates for mutual TLS: the trust store of a custom domain, a PEM
// bundle of CA certificates, and an optional list of revoked serial numbers. It is immutable and
// safe for concurrent use; a changed trust store is a new TrustStore.
type TrustStore struct {
	roots   *x509.CertPool
	count   int
	revoked map[string]bool // serial numbers in lower-case hexadecimal, no leading zeros
	now     func() time.Time
}

// LoadTrustStore reads a trust store from a PEM file of CA certificates; see [ParseTrustStore].
func LoadTrustStore(pemFile string, revokedSerials []string) (*TrustStore, error) {
	data, err := os.ReadFile(pemFile)
	if err != nil {
		return nil, fmt.Errorf("tlsconf: reading trust store: %w", err)
	}
	t, err := ParseTrustStore(data, revokedSerials)
	if err != nil {
		return nil, fmt.Errorf("%w (in %s)", err, pemFile)
	}
	return t, nil
}

// ParseTrustStore makes a trust store of PEM text holding one or more certificates. Every
// certificate in it is a trust anchor: a client certificate is trusted when it chains to any of them,
// through intermediates the client sends. So a bundle may hold roots, intermediates (to trust only
// what one intermediate issued) or a client's own certificate (to trust that certificate alone).
//
// revokedSerials lists serial numbers to refuse, in hexadecimal, in any case, with or without
// colons, spaces or a 0x prefix ("0A:1B", "a1b", "0x0a1b" are the same). A serial number is
// matched against the client's own certificate only: serial numbers are unique per issuer, and
// intermediates are better removed from the bundle.
//
// # Errors
//
// An error when the text holds no certificate, a certificate does not parse, or a serial number is
// not hexadecimal.
func ParseTrustStore(pemData []byte, revokedSerials []string) (*TrustStore, error) {
	t := &TrustStore{roots: x509.NewCertPool(), revoked: map[string]bool{}, now: time.Now}
	for rest := pemData; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("tlsconf: trust store certificate %d: %w", t.count+1, err)
		}
		t.roots.AddCert(c)
		t.count++
	}
	if t.count == 0 {
		return nil, errors.New("tlsconf: the trust store holds no PEM CERTIFICATE block")
	}
	for _, s := range revokedSerials {
		n, err := normalizeSerial(s)
		if err != nil {
			return nil, fmt.Errorf("tlsconf: revoked serial number %q: %w", s, err)
		}
		t.revoked[n] = true
	}
	return t, nil
}

// normalizeSerial turns a hexadecimal serial number as people write it into lower case with no
// separators and no leading zeros: the form big.Int.Text(16) gives.
func normalizeSerial(s string) (string, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	t = strings.TrimPrefix(t, "0x")
	t = strings.NewReplacer(":", "", " ", "").Replace(t)
	if t == "" {
		return "", errors.New("empty")
	}
	for i := 0; i < len(t); i++ {
		if c := t[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return "", fmt.Errorf("%q is not a hexadecimal digit", c)
		}
	}
	if t = strings.TrimLeft(t, "0"); t == "" {
		t = "0"
	}
	return t, nil
}

// Len returns the number of certificates in the trust store.
func (t *TrustStore) Len() int { return t.count }

// VerifyClient checks the certificates a client sent, its own first: it must chain to the trust
// store (the others serving as intermediates), every certificate of the chain must be valid now, the
// client's certificate must allow client authentication (an extended key usage of clientAuth or
// anyExtendedKeyUsage, or none at all), and its serial number must not be revoked. It returns the
// client's certificate.
//
// # Errors
//
// An error wrapping exactly one of [ErrNoClientCert], [ErrUntrusted], [ErrExpired] or
// [ErrRevoked], and saying which certificate and why; logging it is the caller's choice.
func (t *TrustStore) VerifyClient(rawCerts [][]byte) (*x509.Certificate, error) {
	certs := make([]*x509.Certificate, 0, len(rawCerts))
	for _, raw := range rawCerts {
		c, err := x509.ParseCertificate(raw)
		if err != nil {
			return nil, fmt.Errorf("%w: the client sent a certificate that does not parse: %w", ErrUntrusted, err)
		}
		certs = append(certs, c)
	}
	return t.verify(certs)
}

func (t *TrustStore) verify(certs []*x509.Certificate) (*x509.Certificate, error) {
	if len(certs) == 0 {
		return nil, ErrNoClientCert
	}
	leaf := certs[0]
	now := t.now()
	switch {
	case now.After(leaf.NotAfter):
		return nil, fmt.Errorf("%w: %s expired at %s", ErrExpired, describe(leaf), leaf.NotAfter.UTC().Format(time.RFC3339))
	case now.Before(leaf.NotBefore):
		return nil, fmt.Errorf("%w: %s is not valid before %s", ErrExpired, describe(leaf), leaf.NotBefore.UTC().Format(time.RFC3339))
	}
	opts := x509.VerifyOptions{
		Roots:       t.roots,
		CurrentTime: now,
		KeyUsages:   []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if len(certs) > 1 {
		opts.Intermediates = x509.NewCertPool()
		for _, c := range certs[1:] {
			opts.Intermediates.AddCert(c)
		}
	}
	if _, err := leaf.Verify(opts); err != nil {
		var invalid x509.CertificateInvalidError
		if errors.As(err, &invalid) && invalid.Reason == x509.Expired {
			return nil, fmt.Errorf("%w: the chain of %s: %w", ErrExpired, describe(leaf), err)
		}
		return nil, fmt.Errorf("%w: %s: %w", ErrUntrusted, describe(leaf), err)
	}
	if t.revoked[leaf.SerialNumber.Text(16)] {
		return nil, fmt.Errorf("%w: %s", ErrRevoked, describe(leaf))
	}
	return leaf, nil
}

// describe names a certificate in an error: its subject's common name and its serial number.
func describe(c *x509.Certificate) string {
	return fmt.Sprintf("certificate %q (serial %s)", c.Subject.CommonName, c.SerialNumber.Text(16))
}

// Config returns a copy of base (an empty config when nil) that asks clients for a certificate
// and verifies it with [TrustStore.VerifyClient] during the handshake. A client whose certificate
// is missing or fails sees the handshake end with a TLS alert (bad_certificate), never an HTTP
// response; the server's Handshake returns the error, which wraps one of the errors VerifyClient
// names. The check runs on every handshake, resumed sessions included, so a certificate revoked
// or expired since its session began is refused as well.
//
// The copy's ClientAuth is tls.RequestClientCert (this package verifies, not crypto/tls), its
// ClientCAs the trust store (sent to clients to help them pick a certificate), and its
// VerifyConnection runs the check before base's own VerifyConnection, if any. base's
// GetConfigForClient is cleared, since a config it returned would replace these settings; base
// itself is not modified.
func (t *TrustStore) Config(base *tls.Config) *tls.Config {
	cfg := &tls.Config{}
	if base != nil {
		cfg = base.Clone()
	}
	cfg.GetConfigForClient = nil
	cfg.ClientAuth = tls.RequestClientCert
	cfg.ClientCAs = t.roots
	next := cfg.VerifyConnection
	cfg.VerifyConnection = func(cs tls.ConnectionState) error {
		if _, err := t.verify(cs.PeerCertificates); err != nil {
			return err
		}
		if next != nil {
			return next(cs)
		}
		return nil
	}
	return cfg
}
