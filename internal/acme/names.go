package acme

import (
	"fmt"
	"net/netip"
	"strings"
)

// canonicalName lower-cases a name and drops one trailing dot, then checks that an ACME CA can
// issue a certificate for it through the HTTP-01 or TLS-ALPN-01 challenge. The name must be a
// public DNS name in ASCII (an internationalised name in its xn-- form): at most 253 bytes, at
// least two labels, each of 1 to 63 letters, digits or hyphens, not starting or ending with a
// hyphen, the last not all digits.
func canonicalName(raw string) (string, error) {
	n := strings.TrimSuffix(strings.ToLower(strings.TrimSpace(raw)), ".")
	switch {
	case n == "":
		return "", fmt.Errorf("%w: empty name", ErrInvalidName)
	case strings.Contains(n, "*"):
		return "", fmt.Errorf("%w: %q: a wildcard certificate needs the DNS-01 challenge, "+
			"which Gatehouse does not solve; list each name", ErrInvalidName, raw)
	case isIP(n):
		return "", fmt.Errorf("%w: %q is an IP address; Gatehouse obtains ACME certificates for DNS names only",
			ErrInvalidName, raw)
	case len(n) > 253:
		return "", fmt.Errorf("%w: %.40q… is longer than 253 bytes", ErrInvalidName, raw)
	}
	labels := strings.Split(n, ".")
	if len(labels) < 2 {
		return "", fmt.Errorf("%w: %q is not a public domain name (it has a single label)", ErrInvalidName, raw)
	}
	for _, l := range labels {
		if l == "" || len(l) > 63 {
			return "", fmt.Errorf("%w: %q has an empty label or one longer than 63 bytes", ErrInvalidName, raw)
		}
		if l[0] == '-' || l[len(l)-1] == '-' {
			return "", fmt.Errorf("%w: %q has a label that starts or ends with a hyphen", ErrInvalidName, raw)
		}
		for i := 0; i < len(l); i++ {
			c := l[i]
			if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
				if c >= 0x80 {
					return "", fmt.Errorf("%w: %q is not ASCII; give an internationalised name in its xn-- form",
						ErrInvalidName, raw)
				}
				return "", fmt.Errorf("%w: %q holds %q, which a certificate's DNS name cannot", ErrInvalidName, raw, c)
			}
		}
	}
	if strings.Trim(labels[len(labels)-1], "0123456789") == "" {
		return "", fmt.Errorf("%w: %q ends in an all-digit label, which no public domain does", ErrInvalidName, raw)
	}
	if internal(n) {
		return "", fmt.Errorf("%w: %q is not a public name, so no public CA will certify it; "+
			"the local CA serves such names", ErrInvalidName, raw)
	}
	return n, nil
}

// isIP reports whether s is an IP address, with or without brackets.
func isIP(s string) bool {
	_, err := netip.ParseAddr(strings.Trim(s, "[]"))
	return err == nil
}

// internal reports whether a normalised DNS name is under one of the names reserved for local
// networks (RFC 6761, RFC 6762, RFC 8375) or the private-use top-level domain .internal.
func internal(n string) bool {
	for _, s := range [...]string{"localhost", "local", "internal", "home.arpa"} {
		if n == s || strings.HasSuffix(n, "."+s) {
			return true
		}
	}
	return false
}
