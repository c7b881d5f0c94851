package spec

import (
	"strings"
	"testing"
)

func TestParseOutboundHost(t *testing.T) {
	for in, want := range map[string]string{
		"https://api.example.com":     "https://api.example.com:443",
		"HTTP://API.Example.com":      "http://api.example.com:80",
		"http://127.0.0.1:9000":       "http://127.0.0.1:9000",
		"https://*.amazonaws.com":     "https://*.amazonaws.com:443",
		"http://[::1]:8080":           "http://[::1]:8080",
		"http://localhost":            "http://localhost:80",
		"ftp://x.example.com":         "error: the scheme must be http or https",
		"api.example.com":             "error: is not an outbound host",
		"https://api.example.com/v1":  "error: without a path",
		"https://x.example.com:0":     `error: "0" is not a port`,
		"https://x.example.com:99999": `error: "99999" is not a port`,
		"https://*.com":               "error: a wildcard needs a domain of at least two labels",
		"https://a.*.example.com":     "error: a wildcard is only the whole first label",
		"http://*.127.0.0.1":          "error: a wildcard goes with a domain name",
		"https://exa mple.com":        "error: is not a host name",
		"https://user@x.example.com":  "error: without a path, query or user",
	} {
		h, err := ParseOutboundHost(in)
		got := h.String()
		if err != nil {
			got = "error: " + err.Error()
		}
		if !strings.HasPrefix(want, "error: ") && got != want || strings.HasPrefix(want, "error: ") && !strings.Contains(got, strings.TrimPrefix(want, "error: ")) {
			t.Errorf("%q: got %q, want %q", in, got, want)
		}
	}
	w, _ := ParseOutboundHost("https://*.amazonaws.com")
	for host, want := range map[string]bool{"s3.amazonaws.com": true, "a.b.amazonaws.com": true, "amazonaws.com": false, "evilamazonaws.com": false} {
		if w.Matches("https", host, 443) != want {
			t.Errorf("*.amazonaws.com matches %s: %v", host, !want)
		}
	}
	if w.Matches("http", "s3.amazonaws.com", 443) || w.Matches("https", "s3.amazonaws.com", 8443) {
		t.Error("a wildcard entry matched another scheme or port")
	}
	ip, _ := ParseOutboundHost("http://127.0.0.1:9000")
	if a, ok := ip.IP(); !ok || !a.IsLoopback() || !ip.Matches("http", "127.0.0.1", 9000) {
		t.Errorf("IP entry %+v", ip)
	}
}
