package tlsconf

import (
	"crypto/tls"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Policy is a TLS security policy, named as API Gateway names them on a custom domain. The zero
// value means [DefaultPolicy].
type Policy string

const (
	// PolicyTLS12 accepts TLS 1.2 and 1.3. Under TLS 1.2 it allows only ECDHE key exchange with
	// AEAD ciphers (AES-GCM and ChaCha20-Poly1305): no CBC suites, no RSA key exchange, no 3DES or
	// RC4. This is narrower than API Gateway's policy of the same name, which also admits CBC suites
	// and RSA key exchange (ECDHE-RSA-AES128-SHA256, AES128-GCM-SHA256, AES256-SHA256 and others);
	// TLS 1.2 clients of the last decade offer at least one of the suites kept here.
	PolicyTLS12 Policy = "TLS_1_2"
	// PolicyTLS13 accepts TLS 1.3 only. A client limited to TLS 1.2 fails the handshake with a
	// protocol_version alert.
	PolicyTLS13 Policy = "TLS_1_3"

	// DefaultPolicy is the policy of a domain that names none.
	DefaultPolicy = PolicyTLS12
)

// ErrUnknownPolicy is returned (wrapped) for a policy name that is not one of [Policies].
var ErrUnknownPolicy = errors.New("tlsconf: unknown TLS security policy")

// tls12Suites are the TLS 1.2 cipher suites of PolicyTLS12. TLS 1.3 suites are not configurable in
// crypto/tls, and all of them are AEAD.
var tls12Suites = []uint16{
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
	tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
}

// Policies returns the valid policies, the default first.
func Policies() []Policy { return []Policy{PolicyTLS12, PolicyTLS13} }

// Validate reports whether p names a known policy. The empty policy is valid: it means
// [DefaultPolicy].
//
// # Errors
//
// An error wrapping [ErrUnknownPolicy] that lists the valid names.
func (p Policy) Validate() error {
	switch p {
	case "", PolicyTLS12, PolicyTLS13:
		return nil
	}
	names := make([]string, 0, 2)
	for _, v := range Policies() {
		names = append(names, string(v))
	}
	return fmt.Errorf("%w %q: valid policies are %s (the default is %s)", ErrUnknownPolicy, string(p),
		strings.Join(names, ", "), DefaultPolicy)
}

// Apply sets cfg's MinVersion and CipherSuites to those of the policy. It leaves every other field
// alone, MaxVersion included (its zero value, the newest version crypto/tls knows, is the one to
// keep), and copies the suite list so cfg shares nothing with the package.
//
// # Errors
//
// An error wrapping [ErrUnknownPolicy] when p is not valid (cfg is then unchanged), or an error when
// cfg is nil.
func (p Policy) Apply(cfg *tls.Config) error {
	if err := p.Validate(); err != nil {
		return err
	}
	if cfg == nil {
		return errors.New("tlsconf: applying a TLS policy to a nil tls.Config")
	}
	switch p {
	case PolicyTLS13:
		cfg.MinVersion = tls.VersionTLS13
		cfg.CipherSuites = nil
	default:
		cfg.MinVersion = tls.VersionTLS12
		cfg.CipherSuites = slices.Clone(tls12Suites)
	}
	return nil
}
