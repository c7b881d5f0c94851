package outbound

import (
	"bytes"
	"context"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gatehouse.dev/gatehouse/internal/testfix"

	"github.com/prometheus/client_golang/prometheus"

	"gatehouse.dev/gatehouse/internal/spec"
)

// publicAddr is the address test names resolve to: a documentation address (TEST-NET-3), which the
// checks treat as any public address. The test client dials it at 127.0.0.1, same port.
var publicAddr = netip.MustParseAddr("203.0.113.7")

// resolver answers names from a map and counts lookups.
type resolver struct {
	mu      sync.Mutex
	answers map[string][]string
	lookups int
}

func (r *resolver) LookupIPAddr(_ context.Context, host string) ([]net.IPAddr, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lookups++
	ips, ok := r.answers[host]
	if !ok {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	var out []net.IPAddr
	for _, s := range ips {
		out = append(out, net.IPAddr{IP: net.ParseIP(s)})
	}
	return out, nil
}

func (r *resolver) set(host string, ips ...string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.answers == nil {
		r.answers = map[string][]string{}
	}
	r.answers[host] = ips
}

// fixture is a client with a test resolver, a log buffer, a metrics registry and a record of the
// addresses it dialled.
type fixture struct {
	*Client
	res    *resolver
	logs   *syncBuffer
	reg    *prometheus.Registry
	mu     sync.Mutex
	dialed []netip.AddrPort
}

// syncBuffer collects output that goroutines write while the test reads it.
type syncBuffer = testfix.SyncBuffer

func newFixture(t *testing.T, cfg Config) *fixture {
	t.Helper()
	f := &fixture{res: &resolver{}, logs: &syncBuffer{}, reg: prometheus.NewRegistry()}
	cfg.Resolver = f.res
	cfg.Logger = slog.New(slog.NewJSONHandler(f.logs, nil))
	cfg.Metrics = f.reg
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c.mapDial = func(ap netip.AddrPort) netip.AddrPort {
		f.mu.Lock()
		f.dialed = append(f.dialed, ap)
		f.mu.Unlock()
		if ap.Addr() == publicAddr {
			return netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), ap.Port())
		}
		return ap
	}
	f.Client = c
	t.Cleanup(c.Close)
	return f
}

func (f *fixture) dialedAddrs() []netip.AddrPort {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]netip.AddrPort(nil), f.dialed...)
}

// counter returns the value of gatehouse_outbound_requests_total with the labels given.
func (f *fixture) counter(t *testing.T, function, host, outcome string) float64 {
	t.Helper()
	mfs, err := f.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "gatehouse_outbound_requests_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["function"] == function && labels["host"] == host && labels["outcome"] == outcome {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

// histogramCount returns how many durations were observed for function and host.
func (f *fixture) histogramCount(t *testing.T, function, host string) uint64 {
	t.Helper()
	mfs, err := f.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "gatehouse_outbound_request_duration_seconds" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["function"] == function && labels["host"] == host {
				return m.GetHistogram().GetSampleCount()
			}
		}
	}
	return 0
}

func allowList(t testing.TB, entries ...string) []spec.OutboundHost {
	t.Helper()
	var out []spec.OutboundHost
	for _, e := range entries {
		h, err := spec.ParseOutboundHost(e)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, h)
	}
	return out
}

func port(t *testing.T, s *httptest.Server) string {
	t.Helper()
	_, p, err := net.SplitHostPort(s.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// countingServer counts the requests it is sent.
func countingServer(t *testing.T, h http.HandlerFunc) (*httptest.Server, *atomic.Int64) {
	var n atomic.Int64
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		if h != nil {
			h(w, r)
		}
	}))
	t.Cleanup(s.Close)
	return s, &n
}

func binary() []byte {
	b := make([]byte, 0, 3*256+4)
	for i := range 256 {
		b = append(b, byte(i))
	}
	b = append(b, 0, 0, '\r', '\n')
	for i := 255; i >= 0; i-- {
		b = append(b, byte(i), byte(i))
	}
	return b
}

func TestRoundTrip(t *testing.T) {
	reqBody, respBody := binary(), append(binary(), 0xff, 0)
	type seen struct {
		method, host, header, path string
		body                       []byte
	}
	got := make(chan seen, 2)
	s, _ := countingServer(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- seen{r.Method, r.Host, r.Header.Get("X-Test"), r.URL.RequestURI(), b}
		w.Header().Set("X-Reply", "yes")
		w.Header().Add("X-Multi", "1")
		w.Header().Add("X-Multi", "2")
		w.WriteHeader(http.StatusCreated)
		_, _ = w.Write(respBody)
	})
	p := port(t, s)
	f := newFixture(t, Config{})
	f.res.set("api.example.test", publicAddr.String())

	for _, tc := range []struct{ name, url, allow, host string }{
		{"by address", "http://127.0.0.1:" + p + "/v1/things?x=1", "http://127.0.0.1:" + p, "127.0.0.1:" + p},
		{"by name", "http://API.example.test:" + p + "/v1/things?x=1", "http://api.example.test:" + p, "API.example.test:" + p},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := f.Do(context.Background(), "fn", allowList(t, tc.allow), Request{
				Method: "PUT", URL: tc.url, Header: http.Header{"X-Test": {"v"}}, Body: reqBody,
			})
			if err != nil {
				t.Fatal(err)
			}
			if resp.Status != http.StatusCreated || resp.Header.Get("X-Reply") != "yes" ||
				strings.Join(resp.Header.Values("X-Multi"), ",") != "1,2" {
				t.Fatalf("status %d, headers %v", resp.Status, resp.Header)
			}
			if !bytes.Equal(resp.Body, respBody) {
				t.Fatalf("response body %x, want %x", resp.Body, respBody)
			}
			sv := <-got
			if sv.method != "PUT" || sv.host != tc.host || sv.header != "v" || sv.path != "/v1/things?x=1" || !bytes.Equal(sv.body, reqBody) {
				t.Fatalf("server saw %s %s %s X-Test=%q body %x", sv.method, sv.host, sv.path, sv.header, sv.body)
			}
		})
	}
	if d := f.dialedAddrs(); len(d) == 0 || d[len(d)-1].Addr() != publicAddr {
		t.Fatalf("the name was dialled at %v, want its checked address %s", d, publicAddr)
	}
}

func TestDefaultMethodAndHopByHopHeaders(t *testing.T) {
	type seen struct {
		method, upgrade, connection, host string
	}
	got := make(chan seen, 1)
	s, _ := countingServer(t, func(w http.ResponseWriter, r *http.Request) {
		got <- seen{r.Method, r.Header.Get("Upgrade"), r.Header.Get("Connection"), r.Host}
	})
	p := port(t, s)
	f := newFixture(t, Config{})
	hdr := http.Header{"Upgrade": {"websocket"}, "Connection": {"Upgrade"}, "Host": {"internal.example"}}
	resp, err := f.Do(context.Background(), "fn", allowList(t, "http://127.0.0.1:"+p), Request{URL: "http://127.0.0.1:" + p, Header: hdr})
	if err != nil || resp.Status != 200 {
		t.Fatal(resp.Status, err)
	}
	if sv := <-got; sv != (seen{"GET", "", "", "127.0.0.1:" + p}) {
		t.Fatalf("server saw %+v", sv)
	}
	if len(hdr) != 3 {
		t.Fatalf("the caller's header was changed: %v", hdr)
	}
}

func TestRefusedHost(t *testing.T) {
	s, n := countingServer(t, nil)
	p := port(t, s)
	f := newFixture(t, Config{})
	f.res.set("api.example.test", publicAddr.String())
	for _, tc := range []struct {
		name, url, shown string
		allow            []string
	}{
		{"empty list", "http://127.0.0.1:" + p + "/x?secret=1", "http://127.0.0.1:" + p, nil},
		{"other host", "http://api.example.test:" + p + "/?secret=1", "http://api.example.test:" + p, []string{"http://other.example.test:" + p}},
		{"other port", "http://127.0.0.1:" + p + "?secret=1", "http://127.0.0.1:" + p, []string{"http://127.0.0.1:1"}},
		{"other scheme", "http://127.0.0.1:" + p + "?secret=1", "http://127.0.0.1:" + p, []string{"https://127.0.0.1:" + p}},
		{"default port", "http://api.example.test/?secret=1", "http://api.example.test:80", []string{"http://api.example.test:" + p}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := f.Do(context.Background(), "fn", allowList(t, tc.allow...), Request{URL: tc.url})
			if !errors.Is(err, ErrNotAllowed) {
				t.Fatalf("err %v, want ErrNotAllowed", err)
			}
			want := "outbound request to " + tc.shown + " is not allowed for function fn; add it to allowedOutboundHosts"
			if err.Error() != want {
				t.Fatalf("err\n%s\nwant\n%s", err, want)
			}
		})
	}
	if n.Load() != 0 {
		t.Fatalf("the server was sent %d requests", n.Load())
	}
	logs := f.logs.String()
	if strings.Count(logs, `"msg":"outbound request refused"`) != 5 || !strings.Contains(logs, `"target":"http://api.example.test:80"`) ||
		!strings.Contains(logs, `"function":"fn"`) || !strings.Contains(logs, `"method":"GET"`) {
		t.Fatalf("log records:\n%s", logs)
	}
	if strings.Contains(logs, "secret") {
		t.Fatalf("a log record holds the query string:\n%s", logs)
	}
	if got := f.counter(t, "fn", "refused", "refused"); got != 5 {
		t.Fatalf("refused calls counted %v, want 5", got)
	}
}

func TestBadRequest(t *testing.T) {
	s, n := countingServer(t, nil)
	p := port(t, s)
	f := newFixture(t, Config{})
	allow := allowList(t, "http://127.0.0.1:"+p)
	ok := "http://127.0.0.1:" + p + "/"
	for _, tc := range []struct {
		name string
		req  Request
		want string
	}{
		{"relative", Request{URL: "/path"}, "absolute"},
		{"scheme", Request{URL: "ftp://127.0.0.1:" + p + "/"}, "http or https"},
		{"no host", Request{URL: "http:///path"}, "no host"},
		{"opaque", Request{URL: "http:127.0.0.1"}, "no host"},
		{"user info", Request{URL: "http://me:hunter2@127.0.0.1:" + p + "/"}, "user info"},
		{"port 0", Request{URL: "http://127.0.0.1:0/"}, "not a port"},
		{"port too big", Request{URL: "http://127.0.0.1:99999/"}, "not a port"},
		{"unparsable", Request{URL: "http://127.0.0.1:" + p + "/\x7f?hunter2"}, "does not parse"},
		{"non-ASCII host", Request{URL: "http://\u212aapi.example/"}, "ASCII"},
		{"IPv6 zone", Request{URL: "http://[fe80::1%25eth0]:80/"}, "zone"},
		{"method", Request{Method: "GE T", URL: ok}, "not an HTTP method"},
		{"CONNECT", Request{Method: "CONNECT", URL: ok}, "tunnels"},
		{"header name", Request{URL: ok, Header: http.Header{"X Bad": {"v"}}}, "not a valid header name"},
		{"header value CRLF", Request{URL: ok, Header: http.Header{"X-Bad": {"v\r\nX-Injected: 1"}}}, "control character"},
		{"header value NUL", Request{URL: ok, Header: http.Header{"X-Bad": {"v\x00"}}}, "control character"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := f.Do(context.Background(), "fn", allow, tc.req)
			if !errors.Is(err, ErrBadRequest) || errors.Is(err, ErrNotAllowed) {
				t.Fatalf("err %v, want ErrBadRequest", err)
			}
			if !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "hunter2") {
				t.Fatalf("err %q, want it to say %q (and no secret)", err, tc.want)
			}
		})
	}
	if n.Load() != 0 {
		t.Fatalf("the server was sent %d requests", n.Load())
	}
	if strings.Contains(f.logs.String(), "hunter2") {
		t.Fatalf("a log record holds a secret:\n%s", f.logs)
	}
}

func TestWildcard(t *testing.T) {
	s, n := countingServer(t, nil)
	p := port(t, s)
	f := newFixture(t, Config{})
	for _, h := range []string{"a.example.test", "x.y.example.test", "example.test", "badexample.test"} {
		f.res.set(h, publicAddr.String())
	}
	allow := allowList(t, "http://*.example.test:"+p)
	for _, host := range []string{"a.example.test", "x.y.example.test"} {
		if _, err := f.Do(context.Background(), "fn", allow, Request{URL: "http://" + host + ":" + p + "/"}); err != nil {
			t.Fatalf("%s: %v", host, err)
		}
	}
	for _, host := range []string{"example.test", "badexample.test"} {
		if _, err := f.Do(context.Background(), "fn", allow, Request{URL: "http://" + host + ":" + p + "/"}); !errors.Is(err, ErrNotAllowed) {
			t.Fatalf("%s: err %v, want ErrNotAllowed", host, err)
		}
	}
	if n.Load() != 2 {
		t.Fatalf("the server was sent %d requests, want 2", n.Load())
	}
	// The metric names the entry, never the host called.
	if got := f.counter(t, "fn", "http://*.example.test:"+p, "ok"); got != 2 {
		t.Fatalf("ok calls under the wildcard entry: %v, want 2", got)
	}
}

func TestDNSAnswers(t *testing.T) {
	s, n := countingServer(t, nil)
	p := port(t, s)
	f := newFixture(t, Config{})
	f.res.set("api.example.test", "127.0.0.1")
	f.res.set("mixed.example.test", "10.1.2.3", publicAddr.String(), "127.0.0.1")
	f.res.set("private.example.test", "192.168.1.10", "fd00::1")

	_, err := f.Do(context.Background(), "fn", allowList(t, "http://api.example.test:"+p), Request{URL: "http://api.example.test:" + p + "/"})
	want := "resolves to 127.0.0.1, a loopback address; allow it by address, as http://127.0.0.1:" + p
	if !errors.Is(err, ErrNotAllowed) || !strings.Contains(err.Error(), want) {
		t.Fatalf("err %v, want ErrNotAllowed saying %q", err, want)
	}
	// Listing the address does not let the name through: the URL must name the address.
	_, err = f.Do(context.Background(), "fn", allowList(t, "http://api.example.test:"+p, "http://127.0.0.1:"+p), Request{URL: "http://api.example.test:" + p + "/"})
	if !errors.Is(err, ErrNotAllowed) {
		t.Fatalf("err %v, want ErrNotAllowed", err)
	}
	_, err = f.Do(context.Background(), "fn", allowList(t, "http://private.example.test:"+p), Request{URL: "http://private.example.test:" + p + "/"})
	if !errors.Is(err, ErrNotAllowed) || !strings.Contains(err.Error(), "192.168.1.10, a private address") {
		t.Fatalf("err %v, want ErrNotAllowed naming 192.168.1.10", err)
	}
	if n.Load() != 0 {
		t.Fatalf("the server was sent %d requests", n.Load())
	}
	if got := f.counter(t, "fn", "refused", "refused"); got != 3 {
		t.Fatalf("refused calls counted %v, want 3", got)
	}

	// Allowed when the URL and the list name the address.
	if _, err := f.Do(context.Background(), "fn", allowList(t, "http://127.0.0.1:"+p), Request{URL: "http://127.0.0.1:" + p + "/"}); err != nil {
		t.Fatal(err)
	}
	// Of several answers, only the allowed ones are dialled.
	before := len(f.dialedAddrs())
	if _, err := f.Do(context.Background(), "fn", allowList(t, "http://mixed.example.test:"+p), Request{URL: "http://mixed.example.test:" + p + "/"}); err != nil {
		t.Fatal(err)
	}
	for _, ap := range f.dialedAddrs()[before:] {
		if ap.Addr() != publicAddr {
			t.Fatalf("dialled %s, which was refused", ap)
		}
	}
	if n.Load() != 2 {
		t.Fatalf("the server was sent %d requests, want 2", n.Load())
	}
}

func TestAddressWildcardIsNotAddressEntry(t *testing.T) {
	// *.0.0.1 is a (strange) name pattern that matches the text 127.0.0.1; it does not name the
	// address, so the loopback address stays refused.
	f := newFixture(t, Config{})
	_, err := f.Do(context.Background(), "fn", allowList(t, "http://*.0.0.1:80"), Request{URL: "http://127.0.0.1/"})
	if !errors.Is(err, ErrNotAllowed) || !strings.Contains(err.Error(), "127.0.0.1 is a loopback address") {
		t.Fatalf("err %v", err)
	}
}

func TestRestricted(t *testing.T) {
	for addr, want := range map[string]string{
		"127.0.0.1":        "a loopback",
		"127.8.9.10":       "a loopback",
		"::1":              "a loopback",
		"::ffff:127.0.0.1": "a loopback",
		"64:ff9b::7f00:1":  "a loopback",
		"10.0.0.1":         "a private",
		"172.16.5.4":       "a private",
		"192.168.0.1":      "a private",
		"fd12::1":          "a private",
		"fc00::1":          "a private",
		"169.254.169.254":  "a link-local",
		"fe80::1":          "a link-local",
		"0.0.0.0":          "an unspecified",
		"0.1.2.3":          "an unspecified",
		"::":               "an unspecified",
		"224.0.0.1":        "a multicast",
		"ff02::1":          "a multicast",
		"100.64.0.1":       "a shared (CGNAT)",
		"100.127.255.254":  "a shared (CGNAT)",
		"255.255.255.255":  "a reserved",
		"8.8.8.8":          "",
		"100.128.0.1":      "",
		"172.32.0.1":       "",
		"203.0.113.7":      "",
		"2001:4860::8888":  "",
		"64:ff9b::808:808": "",
	} {
		if got := restricted(netip.MustParseAddr(addr)); got != want {
			t.Errorf("restricted(%s) = %q, want %q", addr, got, want)
		}
	}
}

func TestNoDNSRebinding(t *testing.T) {
	s, n := countingServer(t, nil)
	p := port(t, s)
	f := newFixture(t, Config{})
	allow := allowList(t, "http://api.example.test:"+p)
	f.res.set("api.example.test", publicAddr.String())
	if _, err := f.Do(context.Background(), "fn", allow, Request{URL: "http://api.example.test:" + p + "/"}); err != nil {
		t.Fatal(err)
	}
	f.Close()
	f.res.set("api.example.test", "127.0.0.1")
	if _, err := f.Do(context.Background(), "fn", allow, Request{URL: "http://api.example.test:" + p + "/"}); !errors.Is(err, ErrNotAllowed) {
		t.Fatalf("err %v, want ErrNotAllowed", err)
	}
	if n.Load() != 1 || f.res.lookups != 2 {
		t.Fatalf("%d requests and %d lookups, want 1 and 2", n.Load(), f.res.lookups)
	}
	for _, ap := range f.dialedAddrs() {
		if ap.Addr() != publicAddr {
			t.Fatalf("dialled %s", ap)
		}
	}
}

func TestDialOnlyCheckedAddresses(t *testing.T) {
	f := newFixture(t, Config{})
	if _, err := f.dial(context.Background(), "tcp", "127.0.0.1:80"); err == nil {
		t.Fatal("dialled without checked addresses")
	}
	dt := &dialTarget{hostport: "api.example.test:80", port: 80, addrs: []netip.Addr{publicAddr}}
	ctx := context.WithValue(context.Background(), dialKey{}, dt)
	if _, err := f.dial(ctx, "tcp", "other.example.test:80"); err == nil || !strings.Contains(err.Error(), "checked for api.example.test:80") {
		t.Fatalf("err %v, want a refusal of another host", err)
	}
	if len(f.dialedAddrs()) != 0 {
		t.Fatalf("dialled %v", f.dialedAddrs())
	}
}

func TestRedirects(t *testing.T) {
	type seen struct {
		method, auth, cookie, body string
	}
	got := make(chan seen, 10)
	b, bn := countingServer(t, func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		got <- seen{r.Method, r.Header.Get("Authorization"), r.Header.Get("Cookie"), string(body)}
		_, _ = io.WriteString(w, "at b")
	})
	bp := port(t, b)
	disallowed, dn := countingServer(t, nil)
	a, _ := countingServer(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/302":
			http.Redirect(w, r, "http://b.example.test:"+bp+"/landed", http.StatusFound)
		case "/307":
			http.Redirect(w, r, "http://b.example.test:"+bp+"/landed", http.StatusTemporaryRedirect)
		case "/away":
			http.Redirect(w, r, disallowed.URL+"/x?secret=1", http.StatusFound)
		case "/ftp":
			http.Redirect(w, r, "ftp://b.example.test/", http.StatusFound)
		case "/loop":
			http.Redirect(w, r, "/loop", http.StatusFound)
		}
	})
	ap := port(t, a)
	f := newFixture(t, Config{MaxRedirects: 3})
	f.res.set("a.example.test", publicAddr.String())
	f.res.set("b.example.test", publicAddr.String())
	allow := allowList(t, "http://a.example.test:"+ap, "http://b.example.test:"+bp)
	hdr := http.Header{"Authorization": {"Bearer t"}, "Cookie": {"c=1"}, "Content-Type": {"text/plain"}}
	url := func(path string) string { return "http://a.example.test:" + ap + path }

	resp, err := f.Do(context.Background(), "fn", allow, Request{Method: "POST", URL: url("/302"), Header: hdr, Body: []byte("payload")})
	if err != nil || string(resp.Body) != "at b" {
		t.Fatalf("%q %v", resp.Body, err)
	}
	if sv := <-got; sv != (seen{"GET", "", "", ""}) {
		t.Fatalf("after a 302 the server saw %+v, want a GET without body or credentials", sv)
	}
	if _, err := f.Do(context.Background(), "fn", allow, Request{Method: "POST", URL: url("/307"), Header: hdr, Body: []byte("payload")}); err != nil {
		t.Fatal(err)
	}
	if sv := <-got; sv != (seen{"POST", "", "", "payload"}) {
		t.Fatalf("after a 307 the server saw %+v, want the POST and its body", sv)
	}
	if hdr.Get("Authorization") == "" {
		t.Fatal("the caller's header was changed")
	}

	_, err = f.Do(context.Background(), "fn", allow, Request{URL: url("/away")})
	want := "outbound request to " + strings.TrimSuffix(disallowed.URL, "/") + " (a redirect from http://a.example.test:" + ap +
		") is not allowed for function fn; add it to allowedOutboundHosts"
	if !errors.Is(err, ErrNotAllowed) || err.Error() != want {
		t.Fatalf("err\n%v\nwant\n%s", err, want)
	}
	if _, err = f.Do(context.Background(), "fn", allow, Request{URL: url("/ftp")}); !errors.Is(err, ErrNotAllowed) || !strings.Contains(err.Error(), "http or https") {
		t.Fatalf("err %v, want ErrNotAllowed about the scheme", err)
	}
	if dn.Load() != 0 {
		t.Fatalf("the disallowed server was sent %d requests", dn.Load())
	}
	if strings.Contains(f.logs.String(), "secret") || !strings.Contains(f.logs.String(), `"target":"`+strings.TrimSuffix(disallowed.URL, "/")) {
		t.Fatalf("log records:\n%s", f.logs)
	}

	_, err = f.Do(context.Background(), "fn", allow, Request{URL: url("/loop")})
	if err == nil || errors.Is(err, ErrNotAllowed) || !strings.Contains(err.Error(), "stopped after 3 redirects") {
		t.Fatalf("err %v, want a stop after 3 redirects", err)
	}
	if bn.Load() != 2 {
		t.Fatalf("b was sent %d requests, want 2", bn.Load())
	}

	// With redirects off, the redirect is the answer.
	f2 := newFixture(t, Config{MaxRedirects: -1})
	f2.res.set("a.example.test", publicAddr.String())
	resp, err = f2.Do(context.Background(), "fn", allow, Request{URL: url("/302")})
	if err != nil || resp.Status != http.StatusFound || resp.Header.Get("Location") == "" {
		t.Fatalf("status %d, err %v", resp.Status, err)
	}
}

func TestDeadline(t *testing.T) {
	release := make(chan struct{})
	s, _ := countingServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow-body" {
			w.Header().Set("Content-Length", "10")
			_, _ = io.WriteString(w, "12345")
			w.(http.Flusher).Flush()
		}
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
	t.Cleanup(func() { close(release) }) // runs before the server closes
	p := port(t, s)
	f := newFixture(t, Config{})
	allow := allowList(t, "http://127.0.0.1:"+p)
	for _, path := range []string{"/slow-headers", "/slow-body"} {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		_, err := f.Do(ctx, "fn", allow, Request{URL: "http://127.0.0.1:" + p + path})
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("%s: err %v, want context.DeadlineExceeded", path, err)
		}
	}
	if got := f.counter(t, "fn", "http://127.0.0.1:"+p, "timeout"); got != 2 {
		t.Fatalf("timeouts counted %v, want 2", got)
	}
}

func TestTooLarge(t *testing.T) {
	const limit = 1000
	s, _ := countingServer(t, func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.URL.Query().Get("n"))
		body := bytes.Repeat([]byte{'x'}, n)
		if r.URL.Query().Get("cl") == "1" {
			w.Header().Set("Content-Length", strconv.Itoa(n))
			_, _ = w.Write(body)
			return
		}
		for len(body) > 0 { // chunked: no Content-Length
			k := min(len(body), 300)
			_, _ = w.Write(body[:k])
			w.(http.Flusher).Flush()
			body = body[k:]
		}
	})
	p := port(t, s)
	f := newFixture(t, Config{MaxResponseBytes: limit})
	allow := allowList(t, "http://127.0.0.1:"+p)
	for _, cl := range []string{"0", "1"} {
		resp, err := f.Do(context.Background(), "fn", allow, Request{URL: fmt.Sprintf("http://127.0.0.1:%s/?n=%d&cl=%s", p, limit, cl)})
		if err != nil || len(resp.Body) != limit {
			t.Fatalf("cl=%s: a body at the limit: %d bytes, %v", cl, len(resp.Body), err)
		}
		_, err = f.Do(context.Background(), "fn", allow, Request{URL: fmt.Sprintf("http://127.0.0.1:%s/?n=%d&cl=%s", p, limit+1, cl)})
		want := "the response of GET http://127.0.0.1:" + p + " is over the limit of 1000 bytes"
		if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), want) {
			t.Fatalf("cl=%s: err %v, want ErrTooLarge saying %q", cl, err, want)
		}
	}
	if got := f.counter(t, "fn", "http://127.0.0.1:"+p, "too_large"); got != 2 {
		t.Fatalf("too_large counted %v, want 2", got)
	}
}

func TestReadBodyBuffer(t *testing.T) {
	body := bytes.Repeat([]byte{7}, 5000)
	b, err := readBody(bytes.NewReader(body), 5000, 6000)
	if err != nil || !bytes.Equal(b, body) {
		t.Fatal(len(b), err)
	}
	if cap(b) != 5001 {
		t.Fatalf("buffer of %d bytes for a Content-Length of 5000, want 5001", cap(b))
	}
	// A Content-Length that lies short is read on, up to the limit.
	if b, err := readBody(bytes.NewReader(body), 10, 6000); err != nil || len(b) != 5000 {
		t.Fatal(len(b), err)
	}
	if _, err := readBody(bytes.NewReader(body), 10, 4999); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("err %v, want ErrTooLarge", err)
	}
	if b, err := readBody(bytes.NewReader(nil), 0, 10); err != nil || len(b) != 0 {
		t.Fatal(len(b), err)
	}
}

func TestTLS(t *testing.T) {
	var proto atomic.Int64
	s := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		proto.Store(int64(r.ProtoMajor))
		_, _ = io.WriteString(w, "secure")
	}))
	s.EnableHTTP2 = true
	s.StartTLS()
	t.Cleanup(s.Close)
	p := port(t, s)
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	allow := allowList(t, "https://127.0.0.1:"+p)
	req := Request{URL: "https://127.0.0.1:" + p + "/"}

	f := newFixture(t, Config{CAFile: ca})
	resp, err := f.Do(context.Background(), "fn", allow, req)
	if err != nil || string(resp.Body) != "secure" {
		t.Fatalf("%q %v", resp.Body, err)
	}
	if proto.Load() != 2 {
		t.Fatalf("HTTP/%d, want HTTP/2 (the server offers it)", proto.Load())
	}

	f2 := newFixture(t, Config{})
	_, err = f2.Do(context.Background(), "fn", allow, req)
	if err == nil || errors.Is(err, ErrNotAllowed) || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("err %v, want a certificate error", err)
	}
	if got := f2.counter(t, "fn", "https://127.0.0.1:"+p, "error"); got != 1 {
		t.Fatalf("errors counted %v, want 1", got)
	}

	bad := filepath.Join(t.TempDir(), "bad.pem")
	if err := os.WriteFile(bad, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := New(Config{CAFile: bad}); err == nil {
		t.Fatal("New accepted a CA file without a certificate")
	}
}

func TestConnectionReuse(t *testing.T) {
	var conns atomic.Int64
	s := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write(bytes.Repeat([]byte{1}, 10000))
	}))
	s.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			conns.Add(1)
		}
	}
	s.Start()
	t.Cleanup(s.Close)
	p := port(t, s)
	f := newFixture(t, Config{})
	f.res.set("api.example.test", publicAddr.String())
	for i := range 6 {
		url := "http://127.0.0.1:" + p + "/"
		allow := allowList(t, "http://127.0.0.1:"+p)
		if i%2 == 1 {
			url, allow = "http://api.example.test:"+p+"/", allowList(t, "http://api.example.test:"+p)
		}
		if _, err := f.Do(context.Background(), fmt.Sprint("fn", i%3), allow, Request{URL: url}); err != nil {
			t.Fatal(err)
		}
	}
	// One connection for the address, one for the name (the transport pools by the URL's host).
	if conns.Load() != 2 {
		t.Fatalf("the server saw %d connections for 6 calls to 2 hosts, want 2", conns.Load())
	}
}

func TestMetrics(t *testing.T) {
	s, _ := countingServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/big" {
			_, _ = w.Write(make([]byte, 200))
		}
	})
	p := port(t, s)
	f := newFixture(t, Config{MaxResponseBytes: 100})
	entry := "http://127.0.0.1:" + p
	allow := allowList(t, entry)
	for _, path := range []string{"/", "/", "/big"} {
		_, _ = f.Do(context.Background(), "fn", allow, Request{URL: entry + path})
	}
	_, _ = f.Do(context.Background(), "fn", nil, Request{URL: entry})
	_, _ = f.Do(context.Background(), "other", allow, Request{URL: entry})
	// A connection refused: nothing listens on the port.
	closed := httptest.NewServer(http.NotFoundHandler())
	closedURL := closed.URL
	closed.Close()
	_, _ = f.Do(context.Background(), "fn", allowList(t, closedURL), Request{URL: closedURL})

	for _, tc := range []struct {
		function, host, outcome string
		want                    float64
	}{
		{"fn", entry, "ok", 2},
		{"fn", entry, "too_large", 1},
		{"fn", "refused", "refused", 1},
		{"other", entry, "ok", 1},
		{"fn", closedURL, "error", 1},
	} {
		if got := f.counter(t, tc.function, tc.host, tc.outcome); got != tc.want {
			t.Errorf("requests{%s,%s,%s} = %v, want %v", tc.function, tc.host, tc.outcome, got, tc.want)
		}
	}
	if got := f.histogramCount(t, "fn", entry); got != 3 {
		t.Errorf("durations observed for fn: %d, want 3", got)
	}
	if got := f.histogramCount(t, "fn", "refused"); got != 0 {
		t.Errorf("durations observed for refused calls: %d, want none", got)
	}

	// A second client on the same registry is refused, not silently uncounted.
	if _, err := New(Config{Metrics: f.reg}); err == nil {
		t.Error("a second client registered the same metrics")
	}
}

// Destination is the entry a request is counted under: the one Do's check matches.
func TestDestination(t *testing.T) {
	var allow []spec.OutboundHost
	for _, e := range []string{"https://*.example.com", "https://api.example.com", "http://127.0.0.1:9000"} {
		h, err := spec.ParseOutboundHost(e)
		if err != nil {
			t.Fatal(err)
		}
		allow = append(allow, h)
	}
	for raw, want := range map[string]string{
		"https://api.example.com/v1?x=1": "https://api.example.com:443", // the exact entry before the wildcard
		"https://s3.example.com/b":       "https://*.example.com:443",
		"http://127.0.0.1:9000/":         "http://127.0.0.1:9000",
		"http://127.0.0.1:9001/":         "",
		"not a url":                      "",
	} {
		h, ok := Destination(allow, raw)
		if got := map[bool]string{true: h.String()}[ok]; got != want {
			t.Errorf("%s: %q, want %q", raw, got, want)
		}
	}
}
