package tlsconf

import (
	"crypto"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strings"
)

// ErrKeyMismatch is returned (wrapped) when a key file does not hold the private key of the
// certificate it is paired with.
var ErrKeyMismatch = errors.New("tlsconf: the private key does not match the certificate")

// pairFiles holds the raw content of a certificate file and its key file, and the SHA-256 of both,
// by which a reload tells whether anything changed.
type pairFiles struct {
	certPEM, keyPEM []byte
	sum             [sha256.Size]byte
}

// readPair reads a certificate file and its key file (they may be the same file).
func readPair(certFile, keyFile string) (pairFiles, error) {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return pairFiles{}, fmt.Errorf("tlsconf: reading certificate file: %w", err)
	}
	keyPEM := certPEM
	if keyFile != certFile {
		if keyPEM, err = os.ReadFile(keyFile); err != nil {
			return pairFiles{}, fmt.Errorf("tlsconf: reading key file: %w", err)
		}
	}
	h := sha256.New()
	h.Write(certPEM)
	h.Write([]byte{0})
	h.Write(keyPEM)
	var p pairFiles
	p.certPEM, p.keyPEM = certPEM, keyPEM
	h.Sum(p.sum[:0])
	return p, nil
}

// parsePair makes a tls.Certificate of PEM text: every CERTIFICATE block of certPEM, the leaf
// first, and the first private key of keyPEM (PKCS #8, PKCS #1 or SEC 1), which must match the
// leaf's public key. certFile and keyFile only name the files in errors.
func parsePair(certFile, keyFile string, certPEM, keyPEM []byte) (*tls.Certificate, error) {
	var ders [][]byte
	for rest := certPEM; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type == "CERTIFICATE" {
			ders = append(ders, b.Bytes)
		}
	}
	if len(ders) == 0 {
		return nil, fmt.Errorf("tlsconf: %s holds no PEM CERTIFICATE block", certFile)
	}
	leaf, err := x509.ParseCertificate(ders[0])
	if err != nil {
		return nil, fmt.Errorf("tlsconf: parsing the certificate in %s: %w", certFile, err)
	}
	key, err := parseKeyPEM(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("tlsconf: key file %s: %w", keyFile, err)
	}
	if !samePublicKey(leaf.PublicKey, key.Public()) {
		return nil, fmt.Errorf("%w: %s does not hold the private key of the certificate in %s", ErrKeyMismatch,
			keyFile, certFile)
	}
	return &tls.Certificate{Certificate: ders, PrivateKey: key, Leaf: leaf}, nil
}

// parseKeyPEM returns the first private key in PEM text.
func parseKeyPEM(data []byte) (crypto.Signer, error) {
	for rest := data; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			return nil, errors.New("no PEM PRIVATE KEY block")
		}
		if !strings.HasSuffix(b.Type, "PRIVATE KEY") {
			continue
		}
		if b.Type == "ENCRYPTED PRIVATE KEY" || b.Headers["Proc-Type"] != "" {
			return nil, errors.New("the private key is encrypted; give Gatehouse an unencrypted key file readable only by its user")
		}
		return parseKeyDER(b.Bytes)
	}
}

// parseKeyDER parses a private key in PKCS #8, PKCS #1 (RSA) or SEC 1 (EC) form.
func parseKeyDER(der []byte) (crypto.Signer, error) {
	if k, err := x509.ParsePKCS8PrivateKey(der); err == nil {
		s, ok := k.(crypto.Signer)
		if !ok {
			return nil, fmt.Errorf("a %T cannot sign", k)
		}
		return s, nil
	}
	if k, err := x509.ParsePKCS1PrivateKey(der); err == nil {
		return k, nil
	}
	if k, err := x509.ParseECPrivateKey(der); err == nil {
		return k, nil
	}
	return nil, errors.New("the private key is not in PKCS #8, PKCS #1 or SEC 1 form")
}

// samePublicKey reports whether two public keys are equal.
func samePublicKey(a, b crypto.PublicKey) bool {
	k, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && k.Equal(b)
}
