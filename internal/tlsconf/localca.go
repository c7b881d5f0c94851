package tlsconf

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"net/netip"
	"os"
	"os/user"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"
)

// Names and lifetimes of the local CA and of the certificates it issues.
const (
	// CACertFile and CAKeyFile are the names of the local CA's certificate and private key in its
	// directory.
	CACertFile = "ca.pem"
	CAKeyFile  = "ca-key.pem"
	// CACommonName is the common name of the local CA's certificate, the name browsers and the
	// system's certificate tools show for it.
	CACommonName = "Gatehouse Local CA"
	// CAValidityYears is how long the local CA is valid.
	CAValidityYears = 10

	// MaxLeafValidity is the longest validity Issue gives a certificate, and the default: 825 days,
	// the most Apple platforms accept for a TLS server certificate.
	MaxLeafValidity = 825 * 24 * time.Hour
	// LeafBackdate is how far before its issuance a certificate becomes valid, so that a machine
	// whose clock is a little behind accepts it.
	LeafBackdate = time.Hour
	// LeafRenewBefore is when a cached certificate is issued again: when it has less than this left.
	LeafRenewBefore = 30 * 24 * time.Hour
)

// ErrInsecureKey is returned (wrapped) when a private key file may be read or written by users
// other than its owner.
var ErrInsecureKey = errors.New("tlsconf: private key file is accessible to other users")

// LocalCA is a certificate authority of this machine, for HTTPS with no setup: made once in a
// directory, then loaded from it, it issues server certificates for local names (localhost,
// 127.0.0.1, a stack's custom domains) that browsers and tools accept once the CA is trusted (see
// [LocalCA.TrustInstructions]).
//
// The CA's private key never leaves its directory, and is refused if others may read it. A LocalCA
// is safe for concurrent use.
type LocalCA struct {
	dir  string
	cert *x509.Certificate
	key  crypto.Signer
	now  func() time.Time

	mu sync.Mutex // serialises Issue, which reads and writes the cached certificates
}

// LoadOrCreateCA loads the local CA kept in dir, or makes it there the first time: an ECDSA P-256
// key in ca-key.pem (mode 0600) and a self-signed certificate named [CACommonName], valid for
// [CAValidityYears] years, in ca.pem (mode 0644). dir is created (mode 0700) when missing.
//
// # Errors
//
//   - [ErrInsecureKey] when ca-key.pem may be read or written by group or others (mode & 0077 ≠ 0;
//     not checked on Windows, whose permissions are not file modes);
//   - an error when only one of the two files exists, when they do not parse or match, or when the
//     CA has expired (each says which file to remove to start again);
//   - an error when dir cannot be created or written.
func LoadOrCreateCA(dir string) (*LocalCA, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("tlsconf: local CA directory: %w", err)
	}
	ca := &LocalCA{dir: dir, now: time.Now}
	certPath, keyPath := ca.CertPath(), filepath.Join(dir, CAKeyFile)
	_, certErr := os.Stat(certPath)
	_, keyErr := os.Stat(keyPath)
	switch {
	case errors.Is(certErr, fs.ErrNotExist) && errors.Is(keyErr, fs.ErrNotExist):
		err := ca.create()
		if err == nil {
			return ca, nil
		}
		if !errors.Is(err, fs.ErrExist) {
			return nil, err
		}
		// Another process made the CA at the same moment: load its CA once its certificate is there.
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			if _, err := os.Stat(certPath); err == nil {
				break
			}
		}
	case certErr == nil && errors.Is(keyErr, fs.ErrNotExist):
		return nil, fmt.Errorf("tlsconf: local CA: %s exists but %s does not; remove %s to make a new CA",
			certPath, keyPath, certPath)
	case keyErr == nil && errors.Is(certErr, fs.ErrNotExist):
		return nil, fmt.Errorf("tlsconf: local CA: %s exists but %s does not; remove %s to make a new CA",
			keyPath, certPath, keyPath)
	}
	if err := ca.load(); err != nil {
		return nil, err
	}
	return ca, nil
}

// create makes a new CA key and certificate and writes them, the key first.
func (ca *LocalCA) create() error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("tlsconf: local CA key: %w", err)
	}
	now := ca.now()
	tmpl := &x509.Certificate{
		SerialNumber:          randomSerial(),
		Subject:               pkix.Name{CommonName: CACommonName, Organization: []string{"Gatehouse"}, OrganizationalUnit: []string{owner()}},
		NotBefore:             now.Add(-LeafBackdate),
		NotAfter:              now.AddDate(CAValidityYears, 0, 0),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true, // it signs leaf certificates only
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return fmt.Errorf("tlsconf: local CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return fmt.Errorf("tlsconf: local CA certificate: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return fmt.Errorf("tlsconf: local CA key: %w", err)
	}
	// Both files are created, never replaced: of two processes making a CA at once, the one whose
	// key lands first wins, and the other loads its CA.
	if err := writeFileNew(filepath.Join(ca.dir, CAKeyFile), pemBytes("PRIVATE KEY", keyDER), 0o600); err != nil {
		return fmt.Errorf("tlsconf: writing the local CA key: %w", err)
	}
	if err := writeFileNew(ca.CertPath(), pemBytes("CERTIFICATE", der), 0o644); err != nil {
		return fmt.Errorf("tlsconf: writing the local CA certificate: %w", err)
	}
	ca.cert, ca.key = cert, key
	return nil
}

// load reads the CA's certificate and key and checks them.
func (ca *LocalCA) load() error {
	certPath, keyPath := ca.CertPath(), filepath.Join(ca.dir, CAKeyFile)
	if err := checkKeyFileMode(keyPath); err != nil {
		return err
	}
	certPEM, err := os.ReadFile(certPath)
	if err != nil {
		return fmt.Errorf("tlsconf: reading the local CA certificate: %w", err)
	}
	keyPEM, err := os.ReadFile(keyPath)
	if err != nil {
		return fmt.Errorf("tlsconf: reading the local CA key: %w", err)
	}
	pair, err := parsePair(certPath, keyPath, certPEM, keyPEM)
	if err != nil {
		return fmt.Errorf("%w (remove %s and %s to make a new local CA)", err, certPath, keyPath)
	}
	cert := pair.Leaf
	if !cert.IsCA || !cert.BasicConstraintsValid {
		return fmt.Errorf("tlsconf: %s is not a CA certificate; remove it and %s to make a new local CA", certPath, keyPath)
	}
	if now := ca.now(); now.After(cert.NotAfter) {
		return fmt.Errorf("tlsconf: the local CA in %s expired on %s; remove %s and %s to make a new one (and trust it again)",
			ca.dir, cert.NotAfter.UTC().Format(time.DateOnly), certPath, keyPath)
	}
	signer, ok := pair.PrivateKey.(crypto.Signer)
	if !ok {
		return fmt.Errorf("tlsconf: %s holds a key that cannot sign", keyPath)
	}
	ca.cert, ca.key = cert, signer
	return nil
}

// checkKeyFileMode refuses a private key file that group or others may access. Windows has no such
// modes, so nothing is checked there.
func checkKeyFileMode(path string) error {
	if runtime.GOOS == "windows" {
		return nil
	}
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("tlsconf: %w", err)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return fmt.Errorf("%w: %s has mode %#o; make it readable by its owner only (chmod 600 %s)",
			ErrInsecureKey, path, perm, path)
	}
	return nil
}

// CertPath returns the path of the CA's certificate (ca.pem), the file to trust.
func (ca *LocalCA) CertPath() string { return filepath.Join(ca.dir, CACertFile) }

// Certificate returns the CA's certificate. The caller must not modify it.
func (ca *LocalCA) Certificate() *x509.Certificate { return ca.cert }

// LeafPaths returns the files in which Issue keeps the certificate it issues for names, and its key:
// the same for any order or case of the same names. A [Store] can serve and watch them.
func (ca *LocalCA) LeafPaths(names []string) (certFile, keyFile string, err error) {
	norm, err := leafNameSet(names)
	if err != nil {
		return "", "", err
	}
	certFile, keyFile = ca.leafPaths(norm)
	return certFile, keyFile, nil
}

func (ca *LocalCA) leafPaths(norm []string) (certFile, keyFile string) {
	sum := sha256.Sum256([]byte(strings.Join(norm, "\n")))
	base := "leaf-" + hex.EncodeToString(sum[:8])
	return filepath.Join(ca.dir, base+".pem"), filepath.Join(ca.dir, base+"-key.pem")
}

// leafNameSet checks and normalises the names of a certificate to issue, sorted and without
// duplicates.
func leafNameSet(names []string) ([]string, error) {
	if len(names) == 0 {
		return nil, errors.New("tlsconf: issuing a certificate: no names given")
	}
	norm := make([]string, 0, len(names))
	for _, n := range names {
		c, err := canonicalName(n)
		if err != nil {
			return nil, fmt.Errorf("tlsconf: issuing a certificate: %w", err)
		}
		norm = append(norm, c)
	}
	slices.Sort(norm)
	return slices.Compact(norm), nil
}

// Issue returns a server certificate for names, signed by the CA: an ECDSA P-256 key; the DNS names
// and IP addresses among names as its subject alternative names (the first name also as its common
// name); the serverAuth extended key usage; valid from [LeafBackdate] ago for validity, which is
// [MaxLeafValidity] when zero and never more than that, nor past the CA's own expiry.
//
// Certificates are kept in the CA's directory (see [LocalCA.LeafPaths]), and Issue returns the kept
// one instead of issuing anew while it is for the same names, was signed by this CA, has more than
// [LeafRenewBefore] left, and does not outlive the validity asked for. The returned certificate's
// chain holds the leaf only: clients that trust the CA have the rest.
//
// # Errors
//
// An error for no names, a name that is neither a DNS name (wildcards allowed) nor an IP address, a
// negative validity, or a failure to write the certificate's files.
func (ca *LocalCA) Issue(names []string, validity time.Duration) (*tls.Certificate, error) {
	norm, err := leafNameSet(names)
	if err != nil {
		return nil, err
	}
	if validity < 0 {
		return nil, fmt.Errorf("tlsconf: issuing a certificate: negative validity %v", validity)
	}
	if validity == 0 || validity > MaxLeafValidity {
		validity = MaxLeafValidity
	}
	ca.mu.Lock()
	defer ca.mu.Unlock()
	now := ca.now()
	notAfter := now.Add(validity)
	if notAfter.After(ca.cert.NotAfter) {
		notAfter = ca.cert.NotAfter
	}
	certFile, keyFile := ca.leafPaths(norm)
	if c := ca.cachedLeaf(certFile, keyFile, norm, now, notAfter); c != nil {
		return c, nil
	}

	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("tlsconf: issuing a certificate: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          randomSerial(),
		Subject:               pkix.Name{Organization: []string{"Gatehouse local certificate"}, OrganizationalUnit: []string{owner()}},
		NotBefore:             now.Add(-LeafBackdate),
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
	}
	if cn := firstName(names, norm); len(cn) <= 64 {
		tmpl.Subject.CommonName = cn
	}
	for _, n := range norm {
		if ip, err := netip.ParseAddr(n); err == nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, net.IP(ip.AsSlice()))
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, key.Public(), ca.key)
	if err != nil {
		return nil, fmt.Errorf("tlsconf: issuing a certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("tlsconf: issuing a certificate: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("tlsconf: issuing a certificate: %w", err)
	}
	// The key first: a Store watching these files then sees, at worst for a moment, a new key with
	// the old certificate, which it refuses and keeps the old pair.
	if err := writeFileAtomic(keyFile, pemBytes("PRIVATE KEY", keyDER), 0o600); err != nil {
		return nil, fmt.Errorf("tlsconf: keeping the issued certificate: %w", err)
	}
	if err := writeFileAtomic(certFile, pemBytes("CERTIFICATE", der), 0o644); err != nil {
		return nil, fmt.Errorf("tlsconf: keeping the issued certificate: %w", err)
	}
	return &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, nil
}

// firstName returns the normalised form of the first name the caller gave, the certificate's
// common name.
func firstName(names, norm []string) string {
	if c, err := canonicalName(names[0]); err == nil {
		return c
	}
	return norm[0]
}

// cachedLeaf returns the kept certificate for a name set when it can be used again, or nil.
func (ca *LocalCA) cachedLeaf(certFile, keyFile string, norm []string, now, notAfter time.Time) *tls.Certificate {
	if checkKeyFileMode(keyFile) != nil {
		return nil
	}
	files, err := readPair(certFile, keyFile)
	if err != nil {
		return nil
	}
	c, err := parsePair(certFile, keyFile, files.certPEM, files.keyPEM)
	if err != nil {
		return nil
	}
	leaf := c.Leaf
	got := leafNames(leaf)
	slices.Sort(got)
	switch {
	case !slices.Equal(got, norm),
		leaf.CheckSignatureFrom(ca.cert) != nil,
		leaf.NotAfter.Sub(now) <= LeafRenewBefore,
		leaf.NotAfter.After(notAfter),
		now.Before(leaf.NotBefore):
		return nil
	}
	c.Certificate = c.Certificate[:1]
	return c
}

// randomSerial returns a random positive 128-bit serial number.
func randomSerial() *big.Int {
	b := make([]byte, 16)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	b[0] &= 0x7f        // positive in DER's two's complement, so the encoding is 16 bytes at most
	b[0] |= 0x01        // and never zero
	return new(big.Int).SetBytes(b)
}

// owner names who made a certificate, user@host, so that CAs made on different machines can be told
// apart in a trust store.
func owner() string {
	name := os.Getenv("USER")
	if u, err := user.Current(); err == nil && u.Username != "" {
		name = u.Username
	}
	host, _ := os.Hostname()
	switch {
	case name == "" && host == "":
		return "gatehouse"
	case host == "":
		return name
	}
	return name + "@" + host
}

func pemBytes(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

// writeFileAtomic writes data to path through a temporary file in the same directory, renamed into
// place, so that a reader sees the old content or the new, never part of it. The file has mode perm
// whatever the umask.
func writeFileAtomic(path string, data []byte, perm fs.FileMode) error {
	tmp, err := writeTemp(path, data, perm)
	if err != nil {
		return err
	}
	defer os.Remove(tmp) // fails harmlessly once renamed
	return os.Rename(tmp, path)
}

// writeFileNew is writeFileAtomic for a file that must not exist yet: it fails with an error
// wrapping fs.ErrExist, and leaves the file alone, when path exists.
func writeFileNew(path string, data []byte, perm fs.FileMode) error {
	tmp, err := writeTemp(path, data, perm)
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	return os.Link(tmp, path)
}

// writeTemp writes data, synced, to a new temporary file beside path with mode perm, and returns
// its name.
func writeTemp(path string, data []byte, perm fs.FileMode) (string, error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return "", err
	}
	tmp := f.Name()
	fail := func(err error) (string, error) {
		f.Close()
		os.Remove(tmp)
		return "", err
	}
	if err := f.Chmod(perm); err != nil && runtime.GOOS != "windows" {
		return fail(err)
	}
	if _, err := f.Write(data); err != nil {
		return fail(err)
	}
	if err := f.Sync(); err != nil {
		return fail(err)
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return "", err
	}
	return tmp, nil
}
