package outbound

import (
	"errors"
	"net/netip"
	"strconv"
	"strings"
	"testing"

	"gatehouse.dev/gatehouse/internal/spec"
)

// FuzzCheckURL checks the URL check against an allow-list of up to two entries: an accepted URL goes
// to an http or https scheme://host:port an entry matches, the one the transport will connect to; a
// refused one is refused with exactly one of the sentinels, and no message quotes the URL's query,
// fragment or password.
func FuzzCheckURL(f *testing.F) {
	for _, seed := range [][3]string{
		{"http://api.example.test/path?x=1", "http://api.example.test", ""},
		{"https://API.Example.Test:443/", "https://api.example.test", ""},
		{"https://s3.eu-west-1.amazonaws.com/bucket", "https://*.amazonaws.com", ""},
		{"https://amazonaws.com/", "https://*.amazonaws.com", ""},
		{"http://127.0.0.1:9000/x", "http://127.0.0.1:9000", ""},
		{"http://[::1]:8080/", "http://[::1]:8080", ""},
		{"http://[0:0::1]:8080/", "http://[::1]:8080", ""},
		{"http://[::ffff:127.0.0.1]:80/", "http://127.0.0.1", ""},
		{"http://api.example.test@evil.test/", "http://api.example.test", "http://evil.test"},
		{"http://evil.test\\@api.example.test/", "http://api.example.test", ""},
		{"http://evil.test#@api.example.test/", "http://api.example.test", ""},
		{"http://evil.test?@api.example.test/", "http://api.example.test", ""},
		{"http://api.example.test:80:80/", "http://api.example.test", ""},
		{"http://api.example.test:0080/", "http://api.example.test", ""},
		{"http://api.example.test:/", "http://api.example.test", ""},
		{"http://api.example.test./", "http://api.example.test", ""},
		{"http://%61pi.example.test/", "http://api.example.test", ""},
		{"HTTP://api.example.test/", "http://api.example.test", ""},
		{"http:api.example.test", "http://api.example.test", ""},
		{"//api.example.test/", "http://api.example.test", ""},
		{"http://api.example.test\x00.evil/", "http://api.example.test", ""},
		{"http://[fe80::1%25eth0]/", "http://[fe80::1]", ""},
		{"http://x.api.example.test/", "https://*.example.test", "http://*.api.example.test"},
		{"ws://api.example.test/", "http://api.example.test", ""},
	} {
		f.Add(seed[0], seed[1], seed[2])
	}
	f.Fuzz(func(t *testing.T, raw, entry1, entry2 string) {
		var allow []spec.OutboundHost
		for _, e := range []string{entry1, entry2} {
			if h, err := spec.ParseOutboundHost(e); err == nil {
				allow = append(allow, h)
			}
		}
		tg, err := checkURL("fn", allow, raw)
		if err != nil {
			checkRefusal(t, raw, allow, err)
		} else {
			checkAccepted(t, raw, allow, tg)
		}

		// The same URL with a query, a fragment and a password: the messages show none of them.
		if strings.Contains(raw, "zq") {
			return
		}
		secret := strings.Replace(raw, "://", "://u:zqpass@", 1) + "?zqquery#zqfrag"
		if _, err := checkURL("fn", allow, secret); err != nil && strings.Contains(err.Error(), "zq") {
			t.Fatalf("checkURL(%q): the message %q shows a secret", secret, err)
		}
	})
}

func checkRefusal(t *testing.T, raw string, allow []spec.OutboundHost, err error) {
	bad, notAllowed := errors.Is(err, ErrBadRequest), errors.Is(err, ErrNotAllowed)
	if bad == notAllowed {
		t.Fatalf("checkURL(%q): %v wraps ErrBadRequest %v and ErrNotAllowed %v, want exactly one", raw, err, bad, notAllowed)
	}
	if notAllowed {
		// Refused by the list: the URL itself is fine and no entry matches it.
		tg, perr := parseTarget(raw)
		if perr != nil {
			t.Fatalf("checkURL(%q): not allowed, but the URL does not pass: %v", raw, perr)
		}
		for _, e := range allow {
			if e.Matches(tg.scheme, tg.host, tg.port) {
				t.Fatalf("checkURL(%q): not allowed, but %s matches it", raw, e)
			}
		}
		want := "outbound request to " + tg.String() + " is not allowed for function fn; add it to allowedOutboundHosts"
		if err.Error() != want {
			t.Fatalf("checkURL(%q): %q, want %q", raw, err, want)
		}
	}
}

func checkAccepted(t *testing.T, raw string, allow []spec.OutboundHost, tg target) {
	if len(allow) == 0 {
		t.Fatalf("checkURL(%q) accepted with an empty allow-list", raw)
	}
	u := tg.url
	if u.Scheme != "http" && u.Scheme != "https" || u.Scheme != tg.scheme {
		t.Fatalf("checkURL(%q): scheme %q (checked %q)", raw, u.Scheme, tg.scheme)
	}
	if u.User != nil || u.Opaque != "" {
		t.Fatalf("checkURL(%q): accepted with user info or an opaque part", raw)
	}
	if !tg.entry.Matches(tg.scheme, tg.host, tg.port) {
		t.Fatalf("checkURL(%q): %s does not match %s", raw, tg.entry, tg)
	}
	found := false
	for _, e := range allow {
		found = found || e == tg.entry
	}
	if !found {
		t.Fatalf("checkURL(%q): entry %s is not in the list", raw, tg.entry)
	}
	// What the transport connects to (the URL's host and port, the scheme's default port when it
	// has none) is what was checked.
	host := strings.ToLower(u.Hostname())
	if a, err := netip.ParseAddr(host); err == nil {
		if a != tg.addr || !tg.literal {
			t.Fatalf("checkURL(%q): address %s, checked %s", raw, a, tg.addr)
		}
		host = a.String()
	} else if tg.literal {
		t.Fatalf("checkURL(%q): a name taken for an address", raw)
	}
	port := defaultPort(u.Scheme)
	if p := u.Port(); p != "" {
		port, _ = strconv.Atoi(p)
	}
	if host != tg.host || port != tg.port {
		t.Fatalf("checkURL(%q): the transport connects to %s:%d, checked %s", raw, host, port, tg)
	}
	// Written out and read again, the URL goes to the same place.
	again, err := parseTarget(u.String())
	if err != nil || again.String() != tg.String() {
		t.Fatalf("checkURL(%q): %q read again is %v (%v), want %s", raw, u.String(), again, err, tg)
	}
}
