package outbound

import (
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"

	"gatehouse.dev/gatehouse/internal/spec"
)

// refusal is an error whose message is written for the function's author and whose kind is one of
// the sentinels (ErrNotAllowed, ErrBadRequest, ErrTooLarge). Its message never holds a URL's user
// info, path or query: only the method, scheme://host:port and the function's name.
type refusal struct {
	kind error
	msg  string
}

func (e *refusal) Error() string { return e.msg }
func (e *refusal) Unwrap() error { return e.kind }

func badRequest(format string, args ...any) error {
	return &refusal{kind: ErrBadRequest, msg: "outbound request: " + fmt.Sprintf(format, args...)}
}

// target is a request's destination once it passed the URL check: the URL the transport will use and
// the scheme, host and port the transport will connect to (as Matches compares them), with the
// allow-list entry that let it through.
type target struct {
	url    *url.URL
	scheme string
	host   string // lower case, without brackets; an address in its canonical form
	port   int
	entry  spec.OutboundHost
	// addr is the host's address when the URL names one rather than a name.
	addr    netip.Addr
	literal bool
}

// String is scheme://host:port, the form messages, logs and the allow-list use.
func (t target) String() string {
	return origin(t.scheme, t.host, t.port)
}

func origin(scheme, host string, port int) string {
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	return scheme + "://" + host + ":" + strconv.Itoa(port)
}

// parseTarget parses and checks a URL: absolute http or https, a host, a port in range, no user
// info. It does not look at the allow-list. Its errors wrap ErrBadRequest.
func parseTarget(raw string) (target, error) {
	u, err := url.Parse(raw)
	if err != nil {
		// url.Error quotes the whole URL, query and user info included: give only its reason.
		if ue, ok := err.(*url.Error); ok {
			err = ue.Err
		}
		return target{}, badRequest("the URL does not parse: %v", err)
	}
	scheme := strings.ToLower(u.Scheme)
	if scheme != "http" && scheme != "https" {
		if u.Scheme == "" {
			return target{}, badRequest("the URL must be absolute, as in https://api.example.com/path")
		}
		return target{}, badRequest("the URL's scheme must be http or https, not %q", truncate(u.Scheme))
	}
	if u.Opaque != "" || u.Host == "" {
		return target{}, badRequest("the URL has no host: write it as %s://host/path", scheme)
	}
	if u.User != nil {
		return target{}, badRequest("the URL may not hold user info (user:password@); send credentials in a header")
	}
	host := strings.ToLower(u.Hostname())
	if host == "" {
		return target{}, badRequest("the URL has no host: write it as %s://host/path", scheme)
	}
	for i := 0; i < len(u.Host); i++ {
		if u.Host[i] >= 0x80 {
			return target{}, badRequest("the URL's host must be ASCII: write an internationalized name in its xn-- form")
		}
	}
	t := target{url: u, scheme: scheme}
	if a, err := netip.ParseAddr(host); err == nil {
		if a.Zone() != "" {
			return target{}, badRequest("an IPv6 zone (%%zone) is not supported in outbound URLs")
		}
		t.addr, t.literal = a, true
		host = a.String()
	} else if strings.HasPrefix(u.Host, "[") {
		return target{}, badRequest("the URL's host %q is not an IPv6 address", truncate(host))
	}
	t.host = host
	t.port = defaultPort(scheme)
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 || p[0] == '0' {
			return target{}, badRequest("%q is not a port (1 to 65535)", truncate(p))
		}
		t.port = n
	}
	// The transport takes the scheme from the URL as written; it must be the one checked.
	u.Scheme = scheme
	return t, nil
}

func defaultPort(scheme string) int {
	if scheme == "https" {
		return 443
	}
	return 80
}

// matchEntry returns the entry of allow that lets scheme://host:port through: an exact entry before a
// wildcard one, so that an address named by an entry of its own is allowed as that address.
func matchEntry(allow []spec.OutboundHost, scheme, host string, port int) (spec.OutboundHost, bool) {
	var wild spec.OutboundHost
	found := false
	for _, e := range allow {
		if !e.Matches(scheme, host, port) {
			continue
		}
		if !e.Wildcard {
			return e, true
		}
		if !found {
			wild, found = e, true
		}
	}
	return wild, found
}

// checkURL parses raw and checks it against the function's allow-list. Its errors wrap ErrBadRequest
// or ErrNotAllowed.
// Destination returns the entry of allow that a request to raw matches, as Do checks it, or false
// when none does (or raw is not a URL Do takes): the label a request is counted under.
func Destination(allow []spec.OutboundHost, raw string) (spec.OutboundHost, bool) {
	t, err := checkURL("", allow, raw)
	if err != nil {
		return spec.OutboundHost{}, false
	}
	return t.entry, true
}

func checkURL(function string, allow []spec.OutboundHost, raw string) (target, error) {
	t, err := parseTarget(raw)
	if err != nil {
		return target{}, err
	}
	e, ok := matchEntry(allow, t.scheme, t.host, t.port)
	if !ok {
		return t, notAllowed(t, function)
	}
	t.entry = e
	return t, nil
}

func notAllowed(t target, function string) error {
	return &refusal{kind: ErrNotAllowed, msg: fmt.Sprintf(
		"outbound request to %s is not allowed for function %s; add it to allowedOutboundHosts", t, function)}
}

// restricted says which of the ranges a function may reach only by naming the address in its
// allow-list an address is in: "" when it is in none.
func restricted(a netip.Addr) string {
	a = a.Unmap()
	if a.Is6() && nat64.Contains(a) {
		// The well-known NAT64 prefix reaches the IPv4 address in its last 32 bits.
		b := a.As16()
		a = netip.AddrFrom4([4]byte{b[12], b[13], b[14], b[15]})
	}
	switch {
	case !a.IsValid():
		return "an invalid"
	case a.IsLoopback():
		return "a loopback"
	case a.IsUnspecified() || a.Is4() && thisNetwork.Contains(a):
		return "an unspecified"
	case a.IsPrivate():
		return "a private"
	case a.IsLinkLocalUnicast():
		return "a link-local"
	case a.IsMulticast():
		return "a multicast"
	case cgnat.Contains(a):
		return "a shared (CGNAT)"
	case a.Is4() && reserved4.Contains(a):
		return "a reserved"
	}
	return ""
}

var (
	cgnat       = netip.MustParsePrefix("100.64.0.0/10")
	thisNetwork = netip.MustParsePrefix("0.0.0.0/8")
	reserved4   = netip.MustParsePrefix("240.0.0.0/4") // includes 255.255.255.255
	nat64       = netip.MustParsePrefix("64:ff9b::/96")
)

// checkAddrs keeps the addresses of t's host that t may be dialled at. An address in a restricted
// range is kept only when the URL names it and the matched entry names it too. When none is kept the
// error, wrapping ErrNotAllowed, names the first refused address.
func checkAddrs(t target, function string, addrs []netip.Addr) ([]netip.Addr, error) {
	entryAddr, entryIsAddr := t.entry.IP()
	kept := addrs[:0:0]
	var first netip.Addr
	var why string
	for _, a := range addrs {
		a = a.WithZone("")
		kind := restricted(a)
		if kind != "" && !(t.literal && entryIsAddr && entryAddr == a && a == t.addr) {
			if why == "" {
				first, why = a, kind
			}
			continue
		}
		kept = append(kept, a)
	}
	if len(kept) > 0 {
		return kept, nil
	}
	if why == "" {
		return nil, fmt.Errorf("outbound request to %s: %s resolves to no address", t, t.host)
	}
	shown := first.Unmap()
	msg := fmt.Sprintf("outbound request to %s is not allowed for function %s: ", t, function)
	if t.literal {
		msg += fmt.Sprintf("%s is %s address, allowed only when allowedOutboundHosts names it, as %s",
			shown, why, origin(t.scheme, shown.String(), t.port))
	} else {
		msg += fmt.Sprintf("%s resolves to %s, %s address; allow it by address, as %s, and call it by that address",
			t.host, shown, why, origin(t.scheme, shown.String(), t.port))
	}
	return nil, &refusal{kind: ErrNotAllowed, msg: msg}
}

// checkMethod returns the request's method, GET when it is empty.
func checkMethod(m string) (string, error) {
	if m == "" {
		return http.MethodGet, nil
	}
	if !isToken(m) {
		return "", badRequest("%q is not an HTTP method", truncate(m))
	}
	if m == http.MethodConnect {
		return "", badRequest("CONNECT is not supported: outbound calls are HTTP requests, not tunnels")
	}
	return m, nil
}

// hopByHop are the headers that belong to one connection, not to the request: the transport sets
// them itself, and a function cannot ask it to upgrade the connection.
var hopByHop = map[string]bool{
	"Connection":          true,
	"Keep-Alive":          true,
	"Proxy-Connection":    true,
	"Proxy-Authenticate":  true,
	"Proxy-Authorization": true,
	"Te":                  true,
	"Trailer":             true,
	"Transfer-Encoding":   true,
	"Upgrade":             true,
	"Host":                true, // the URL's host is the one checked and sent
	"Content-Length":      true, // the body's length is sent
}

// checkHeader returns the header to send: h without the hop-by-hop headers, or an error naming the
// first invalid name or value. It copies h only when it has headers to drop.
func checkHeader(h http.Header) (http.Header, error) {
	drop := false
	for name, values := range h {
		if !isToken(name) {
			return nil, badRequest("%q is not a valid header name", truncate(name))
		}
		for _, v := range values {
			if !validHeaderValue(v) {
				return nil, badRequest("the value of header %s holds a control character (CR, LF or NUL are never allowed)", name)
			}
		}
		if hopByHop[http.CanonicalHeaderKey(name)] {
			drop = true
		}
	}
	if !drop {
		return h, nil
	}
	out := make(http.Header, len(h))
	for name, values := range h {
		if !hopByHop[http.CanonicalHeaderKey(name)] {
			out[name] = values
		}
	}
	return out, nil
}

// isToken reports whether s is an RFC 9110 token (a method or a header name).
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' {
			continue
		}
		if !strings.ContainsRune("!#$%&'*+-.^_`|~", rune(c)) {
			return false
		}
	}
	return true
}

// validHeaderValue reports whether v is a field value: visible characters, spaces, tabs and
// obs-text; no CR, LF, NUL or other control characters.
func validHeaderValue(v string) bool {
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

// truncate shortens a guest-given string quoted in a message.
func truncate(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}
