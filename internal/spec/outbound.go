package spec

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"gatehouse.dev/gatehouse/internal/yamlnode"
)

// OutboundHost is one entry of a function's allowedOutboundHosts: the scheme, host and port its
// outbound HTTP requests may go to.
type OutboundHost struct {
	// Scheme is "http" or "https".
	Scheme string
	// Host is a lower-case host name or an IP address (without brackets); with Wildcard, the
	// domain whose subdomains match ("amazonaws.com" for "*.amazonaws.com").
	Host string
	// Port is the port, the scheme's default (80, 443) when the entry names none.
	Port int
	// Wildcard matches any name with at least one more label before Host (not Host itself).
	Wildcard bool
}

// IP returns the address Host names when it is an IP address.
func (h OutboundHost) IP() (netip.Addr, bool) {
	a, err := netip.ParseAddr(h.Host)
	return a, err == nil && !h.Wildcard
}

// String writes the entry back: scheme://host:port.
func (h OutboundHost) String() string {
	host := h.Host
	if h.Wildcard {
		host = "*." + host
	}
	if a, ok := h.IP(); ok && a.Is6() {
		host = "[" + host + "]"
	}
	return h.Scheme + "://" + host + ":" + strconv.Itoa(h.Port)
}

// Matches reports whether a request to scheme://host:port is one this entry allows. host is
// lower-case, without brackets.
func (h OutboundHost) Matches(scheme, host string, port int) bool {
	if scheme != h.Scheme || port != h.Port {
		return false
	}
	if h.Wildcard {
		return strings.HasSuffix(host, "."+h.Host) && len(host) > len(h.Host)+1
	}
	return host == h.Host
}

// ParseOutboundHost parses an entry of allowedOutboundHosts: "https://api.example.com",
// "http://127.0.0.1:9000", "https://*.amazonaws.com", "http://[::1]:8080". The error says what is
// wrong, for the stack file's and the manifest's messages.
func ParseOutboundHost(s string) (OutboundHost, error) {
	const want = "want scheme://host[:port], such as https://api.example.com, http://127.0.0.1:9000 or https://*.amazonaws.com"
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok || scheme == "" {
		return OutboundHost{}, fmt.Errorf("%s is not an outbound host: %s", yamlnode.QuoteShort(s), want)
	}
	h := OutboundHost{Scheme: strings.ToLower(scheme)}
	switch h.Scheme {
	case "http":
		h.Port = 80
	case "https":
		h.Port = 443
	default:
		return OutboundHost{}, fmt.Errorf("%s: the scheme must be http or https (outbound calls are HTTP only)", yamlnode.QuoteShort(s))
	}
	if strings.ContainsAny(rest, "/?#@") {
		return OutboundHost{}, fmt.Errorf("%s: give the scheme, host and port only, without a path, query or user; %s", yamlnode.QuoteShort(s), want)
	}
	host, port := rest, ""
	if strings.HasPrefix(rest, "[") {
		end := strings.IndexByte(rest, ']')
		if end < 0 {
			return OutboundHost{}, fmt.Errorf("%s is not an outbound host: %s", yamlnode.QuoteShort(s), want)
		}
		host, port = rest[1:end], strings.TrimPrefix(rest[end+1:], ":")
		if a, err := netip.ParseAddr(host); err != nil || !a.Is6() || rest[end+1:] != "" && !strings.HasPrefix(rest[end+1:], ":") {
			return OutboundHost{}, fmt.Errorf("%s: %q is not an IPv6 address", yamlnode.QuoteShort(s), host)
		}
	} else if i := strings.LastIndexByte(rest, ':'); i >= 0 {
		host, port = rest[:i], rest[i+1:]
	}
	if port != "" {
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 || port[0] == '0' {
			return OutboundHost{}, fmt.Errorf("%s: %q is not a port (1 to 65535)", yamlnode.QuoteShort(s), port)
		}
		h.Port = n
	}
	if name, ok := strings.CutPrefix(host, "*."); ok {
		h.Wildcard, host = true, name
	}
	h.Host = strings.ToLower(host)
	if a, err := netip.ParseAddr(h.Host); err == nil {
		if h.Wildcard {
			return OutboundHost{}, fmt.Errorf("%s: a wildcard goes with a domain name, not an address", yamlnode.QuoteShort(s))
		}
		h.Host = a.String()
		return h, nil
	}
	if strings.Contains(h.Host, "*") {
		return OutboundHost{}, fmt.Errorf("%s: a wildcard is only the whole first label, as in https://*.example.com", yamlnode.QuoteShort(s))
	}
	if len(h.Host) > 253 || h.Host == "" {
		return OutboundHost{}, fmt.Errorf("%s: %q is not a host name", yamlnode.QuoteShort(s), host)
	}
	for _, label := range strings.Split(h.Host, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' ||
			!allIn(label, func(r rune) bool { return r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_' }) {
			return OutboundHost{}, fmt.Errorf("%s: %q is not a host name", yamlnode.QuoteShort(s), host)
		}
	}
	if h.Wildcard && !strings.Contains(h.Host, ".") {
		return OutboundHost{}, fmt.Errorf("%s: a wildcard needs a domain of at least two labels, such as *.example.com", yamlnode.QuoteShort(s))
	}
	return h, nil
}
