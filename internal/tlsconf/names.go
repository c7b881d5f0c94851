package tlsconf

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net/netip"
	"strings"
)

// normalizeName lower-cases a server name and drops one trailing dot ("API.Example.com." and
// "api.example.com" are the same name). It allocates only when the name changes.
func normalizeName(s string) string {
	return strings.TrimSuffix(strings.ToLower(s), ".")
}

// checkDNSName reports whether name (already normalised) is a DNS name a certificate may be chosen
// for or issued to: at most 253 bytes; labels of 1 to 63 letters, digits, hyphens or underscores,
// not starting or ending with a hyphen; and optionally a first label of exactly "*" followed by at
// least two labels ("*.example.com", never "*.com" or "*").
func checkDNSName(name string) error {
	if name == "" {
		return errors.New("empty name")
	}
	if len(name) > 253 {
		return fmt.Errorf("name %.40q… is longer than 253 bytes", name)
	}
	labels := strings.Split(name, ".")
	for i, l := range labels {
		if l == "*" && i == 0 {
			if len(labels) < 3 {
				return fmt.Errorf("wildcard %q must be followed by at least two labels, as in *.example.com", name)
			}
			continue
		}
		if l == "" || len(l) > 63 {
			return fmt.Errorf("name %q has an empty label or one longer than 63 bytes", name)
		}
		if l[0] == '-' || l[len(l)-1] == '-' {
			return fmt.Errorf("name %q has a label that starts or ends with a hyphen", name)
		}
		for j := 0; j < len(l); j++ {
			c := l[j]
			if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
				return fmt.Errorf("name %q holds %q, which a DNS name cannot", name, c)
			}
		}
	}
	return nil
}

// isWildcard reports whether a normalised name is a wildcard pattern such as "*.example.com".
func isWildcard(name string) bool { return strings.HasPrefix(name, "*.") }

// wildcardMatches reports whether pattern (a normalised DNS name, possibly "*.rest") matches name
// (normalised) as RFC 6125 section 6.4.3 allows: the "*" stands for exactly one whole, non-empty
// label. "*.example.com" matches "api.example.com", not "example.com" nor "a.b.example.com";
// partial-label wildcards such as "f*.example.com" match nothing.
func wildcardMatches(pattern, name string) bool {
	if !isWildcard(pattern) {
		return pattern == name
	}
	i := strings.IndexByte(name, '.')
	return i > 0 && name[i+1:] == pattern[2:]
}

// covers reports whether leaf is valid for name, a normalised DNS name, wildcard pattern or IP
// address. A DNS name is covered by an equal DNS SAN or a wildcard SAN that matches it; a wildcard
// pattern only by the same wildcard SAN; an IP address by an equal IP SAN. The subject's common
// name is not considered, as browsers and crypto/tls no longer consider it.
func covers(leaf *x509.Certificate, name string) bool {
	if ip, err := netip.ParseAddr(name); err == nil {
		for _, a := range leaf.IPAddresses {
			if got, ok := netip.AddrFromSlice(a); ok && got.Unmap() == ip.Unmap() {
				return true
			}
		}
		return false
	}
	for _, san := range leaf.DNSNames {
		san = normalizeName(san)
		if isWildcard(name) {
			if san == name {
				return true
			}
			continue
		}
		if wildcardMatches(san, name) {
			return true
		}
	}
	return false
}

// leafNames lists the names a certificate serves: its DNS SANs, then its IP SANs, normalised.
func leafNames(leaf *x509.Certificate) []string {
	out := make([]string, 0, len(leaf.DNSNames)+len(leaf.IPAddresses))
	for _, n := range leaf.DNSNames {
		out = append(out, normalizeName(n))
	}
	for _, a := range leaf.IPAddresses {
		if ip, ok := netip.AddrFromSlice(a); ok {
			out = append(out, ip.Unmap().String())
		}
	}
	return out
}

// canonicalName normalises one name given to Add or Issue: IP addresses in their canonical text,
// DNS names lower-cased without a trailing dot and checked with checkDNSName.
func canonicalName(s string) (string, error) {
	if ip, err := netip.ParseAddr(strings.TrimSpace(s)); err == nil {
		if ip.Zone() != "" {
			return "", fmt.Errorf("address %q has a zone, which a certificate cannot name", s)
		}
		return ip.Unmap().String(), nil
	}
	n := normalizeName(strings.TrimSpace(s))
	if err := checkDNSName(n); err != nil {
		return "", err
	}
	return n, nil
}
