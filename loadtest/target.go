package loadtest

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"syscall"
)

// CheckTarget parses a target URL and refuses it unless it is http(s) and its host resolves only to
// loopback addresses (127.0.0.0/8 or ::1): the load generator never sends traffic off the machine.
func CheckTarget(ctx context.Context, raw string) (*url.URL, error) {
	return checkTarget(ctx, raw, "http", "https")
}

// CheckWSTarget is CheckTarget for WebSocket URLs: the scheme must be ws or wss.
func CheckWSTarget(ctx context.Context, raw string) (*url.URL, error) {
	return checkTarget(ctx, raw, "ws", "wss")
}

func checkTarget(ctx context.Context, raw string, schemes ...string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("target %q: %v", raw, err)
	}
	if !slices.Contains(schemes, u.Scheme) {
		return nil, fmt.Errorf("target %q: the scheme must be %s", raw, strings.Join(schemes, " or "))
	}
	host := u.Hostname()
	if host == "" {
		return nil, fmt.Errorf("target %q has no host", raw)
	}
	var addrs []netip.Addr
	if ip, err := netip.ParseAddr(host); err == nil {
		addrs = []netip.Addr{ip}
	} else {
		ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
		if err != nil {
			return nil, fmt.Errorf("target %q: resolving %s: %v", raw, host, err)
		}
		addrs = ips
	}
	for _, a := range addrs {
		if !isLoopback(a) {
			return nil, fmt.Errorf("refusing target %q: %s resolves to %s, which is not a loopback address; gatehouse loadtest only sends to 127.0.0.0/8 or ::1", raw, host, a)
		}
	}
	return u, nil
}

func isLoopback(a netip.Addr) bool {
	a = a.Unmap()
	if a.Is4() {
		return a.As4()[0] == 127
	}
	return a == netip.IPv6Loopback()
}

// loopbackOnly is a net.Dialer Control function refusing every non-loopback connection, so neither a
// changed DNS answer nor a redirect can send load elsewhere.
func loopbackOnly(_, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("loadtest: dialing %s: %v", address, err)
	}
	if !isLoopback(ap.Addr()) {
		return fmt.Errorf("loadtest: refusing to connect to non-loopback address %s", address)
	}
	return nil
}
