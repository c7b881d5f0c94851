// Package outbound is the worker's HTTP client for functions: the outbound calls a function makes
// through its host call, checked against the function's allow-list (allowedOutboundHosts).
//
// A call goes only to a scheme://host:port an entry of the list matches. Its host is resolved here,
// through Config.Resolver, and every answer is checked: an address that is loopback, private,
// link-local, unspecified, multicast, shared (CGNAT) or reserved is refused unless the URL names that
// address and an entry names it too. The connection is dialled to the checked addresses only, taken
// from the request's context, so no second lookup can point it elsewhere (no DNS rebinding).
// Redirects are followed only to URLs that pass the same checks. The response is read whole, up to a
// size limit, within the context's deadline.
//
// All functions share one transport: connections are kept alive and reused (HTTP/2 where the server
// offers it), TLS is verified against the system roots and, optionally, a CA file of test roots.
package outbound

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"gatehouse.dev/gatehouse/internal/spec"
)

// DefaultMaxResponseBytes is the default limit of a response body: 6 MiB, as Lambda's payload.
const DefaultMaxResponseBytes = 6 << 20

// DefaultMaxRedirects is how many redirects a call follows unless Config says otherwise.
const DefaultMaxRedirects = 10

// Errors a call fails with; the errors returned wrap them. A call that runs out of time fails with an
// error wrapping context.DeadlineExceeded (context.Canceled when its context was cancelled).
var (
	// ErrNotAllowed: the destination, an address it resolves to, or a redirect's target is not in
	// the function's allow-list.
	ErrNotAllowed = errors.New("outbound request not allowed")
	// ErrTooLarge: the response body is over Config.MaxResponseBytes.
	ErrTooLarge = errors.New("outbound response too large")
	// ErrBadRequest: the request is malformed (URL, method or headers).
	ErrBadRequest = errors.New("malformed outbound request")
)

// Resolver looks up a host's addresses. *net.Resolver implements it; tests answer with their own.
type Resolver interface {
	LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error)
}

// Config configures a Client. The zero Config is usable.
type Config struct {
	// Resolver resolves host names; nil means net.DefaultResolver.
	Resolver Resolver
	// CAFile is a PEM file of extra root certificates (for local test servers), trusted besides
	// the system roots.
	CAFile string
	// MaxResponseBytes limits each response body; 0 means DefaultMaxResponseBytes.
	MaxResponseBytes int64
	// MaxRedirects is how many redirects a call follows; 0 means DefaultMaxRedirects, and a
	// negative value follows none (the redirect response is returned as it is).
	MaxRedirects int
	// Metrics registers the client's collectors; nil records none.
	Metrics prometheus.Registerer
	// Logger receives a record per refused call (function, method, scheme://host:port, reason;
	// never headers, paths or query strings); nil logs nothing.
	Logger *slog.Logger
}

// Request is an outbound call: its method (GET when empty), absolute http or https URL, headers and
// body. Host and hop-by-hop headers (Connection, Upgrade, Transfer-Encoding…) are not sent: the
// transport writes its own.
type Request struct {
	Method string
	URL    string
	Header http.Header
	Body   []byte
}

// Response is the answer to a call, after any redirects: its status, headers and whole body.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// Client makes outbound calls for the functions of a worker. It is safe for concurrent use.
type Client struct {
	resolver     Resolver
	transport    *http.Transport
	dialer       *net.Dialer
	maxBody      int64
	maxRedirects int
	metrics      *metrics
	log          *slog.Logger

	// mapDial, in tests, changes the address a checked address is dialled at.
	mapDial func(netip.AddrPort) netip.AddrPort
}

// New returns a Client with its shared transport.
func New(cfg Config) (*Client, error) {
	roots, err := x509.SystemCertPool()
	if err != nil || roots == nil {
		roots = x509.NewCertPool()
	}
	if cfg.CAFile != "" {
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("outbound: reading the CA file: %w", err)
		}
		if !roots.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("outbound: the CA file %s holds no PEM certificate", cfg.CAFile)
		}
	}
	m, err := newMetrics(cfg.Metrics)
	if err != nil {
		return nil, fmt.Errorf("outbound: registering metrics: %w", err)
	}
	c := &Client{
		resolver:     cfg.Resolver,
		dialer:       &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second},
		maxBody:      cfg.MaxResponseBytes,
		maxRedirects: cfg.MaxRedirects,
		metrics:      m,
		log:          cfg.Logger,
	}
	if c.resolver == nil {
		c.resolver = net.DefaultResolver
	}
	if c.maxBody <= 0 {
		c.maxBody = DefaultMaxResponseBytes
	}
	if c.maxRedirects == 0 {
		c.maxRedirects = DefaultMaxRedirects
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	c.transport = &http.Transport{
		Proxy:                  nil, // never a proxy from the environment: the checked addresses are the ones dialled
		DialContext:            c.dial,
		TLSClientConfig:        &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12},
		ForceAttemptHTTP2:      true,
		MaxIdleConns:           256,
		MaxIdleConnsPerHost:    32,
		IdleConnTimeout:        90 * time.Second,
		TLSHandshakeTimeout:    10 * time.Second,
		ExpectContinueTimeout:  time.Second,
		MaxResponseHeaderBytes: 1 << 20,
	}
	return c, nil
}

// Close closes the transport's idle connections.
func (c *Client) Close() {
	c.transport.CloseIdleConnections()
}

// Do makes the call req for function, whose allow-list is allow (nothing is allowed when it is
// empty). ctx's deadline bounds the whole call: lookup, connection, TLS, redirects, headers and body.
func (c *Client) Do(ctx context.Context, function string, allow []spec.OutboundHost, req Request) (Response, error) {
	start := time.Now()
	bodies := &bodyTracker{}
	resp, entry, err := c.do(context.WithValue(ctx, bodiesKey{}, bodies), function, allow, req)
	c.metrics.observe(function, entry, outcome(err), time.Since(start))
	bodies.wait(ctx)
	return resp, err
}

// bodyTracker knows the readers of a call's request body, so that Do returns only once the
// transport is done with them: the caller may then reuse the body's memory (a guest's, which the
// host call passes without copying it).
type bodyTracker struct {
	mu     sync.Mutex
	closed []chan struct{}
}

type bodiesKey struct{}

// reader returns a reader of body whose Close the tracker waits for.
func (t *bodyTracker) reader(body []byte) io.ReadCloser {
	r := &trackedBody{Reader: bytes.NewReader(body), closed: make(chan struct{})}
	t.mu.Lock()
	t.closed = append(t.closed, r.closed)
	t.mu.Unlock()
	return r
}

// wait waits until the transport has closed every reader: it does once it has written or given
// up on the body, which it may finish after the response. It stops waiting when ctx ends (the
// connection is then being torn down) or after bodyWait, so that a reader the transport made and
// never used cannot hold the call.
func (t *bodyTracker) wait(ctx context.Context) {
	t.mu.Lock()
	closed := t.closed
	t.mu.Unlock()
	if len(closed) == 0 {
		return
	}
	timer := time.NewTimer(bodyWait)
	defer timer.Stop()
	for _, c := range closed {
		select {
		case <-c:
		case <-ctx.Done():
			return
		case <-timer.C:
			return
		}
	}
}

// bodyWait bounds how long a call waits for the transport to let go of its request body.
const bodyWait = 5 * time.Second

type trackedBody struct {
	*bytes.Reader
	once   sync.Once
	closed chan struct{}
}

func (b *trackedBody) Close() error {
	b.once.Do(func() { close(b.closed) })
	return nil
}

func outcome(err error) string {
	switch {
	case err == nil:
		return outcomeOK
	case errors.Is(err, ErrNotAllowed), errors.Is(err, ErrBadRequest):
		return outcomeRefused
	case errors.Is(err, ErrTooLarge):
		return outcomeTooLarge
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return outcomeTimeout
	}
	return outcomeError
}

// do makes the call and returns, besides its answer, the label of the entry that matched the URL
// first given ("" when none did).
func (c *Client) do(ctx context.Context, function string, allow []spec.OutboundHost, req Request) (Response, string, error) {
	method, err := checkMethod(req.Method)
	if err != nil {
		return Response{}, "", c.refused(function, req.Method, "", err)
	}
	header, err := checkHeader(req.Header)
	if err != nil {
		return Response{}, "", c.refused(function, method, "", err)
	}
	if header == nil {
		header = make(http.Header)
	}
	t, err := checkURL(function, allow, req.URL)
	if err != nil {
		shown := ""
		if errors.Is(err, ErrNotAllowed) {
			shown = t.String()
		}
		return Response{}, "", c.refused(function, method, shown, err)
	}
	entry := t.entry.String()
	body := req.Body
	ownHeader := false // header is still the caller's: clone it before changing it
	for redirects := 0; ; redirects++ {
		addrs, err := c.resolve(ctx, t, function)
		if err != nil {
			if errors.Is(err, ErrNotAllowed) {
				return Response{}, entry, c.refused(function, method, t.String(), err)
			}
			return Response{}, entry, c.failed(ctx, method, t, err)
		}
		hreq := newRequest(ctx, method, t, header, body, addrs)
		resp, err := c.transport.RoundTrip(hreq)
		if err != nil {
			return Response{}, entry, c.failed(ctx, method, t, err)
		}
		loc := resp.Header.Get("Location")
		if !isRedirect(resp.StatusCode) || loc == "" || c.maxRedirects < 0 {
			out, err := c.read(ctx, method, t, resp)
			return out, entry, err
		}
		discard(resp.Body)
		if redirects >= c.maxRedirects {
			return Response{}, entry, fmt.Errorf("outbound request %s %s: stopped after %d redirects", method, t, c.maxRedirects)
		}
		next, err := t.url.Parse(loc)
		if err != nil {
			return Response{}, entry, c.refused(function, method, "", &refusal{kind: ErrNotAllowed, msg: fmt.Sprintf(
				"outbound request %s %s was redirected to a Location that is not a URL; the redirect is not followed", method, t)})
		}
		nt, err := checkURL(function, allow, next.String())
		if err != nil {
			shown := t.String()
			if nt.url != nil {
				shown = nt.String()
				err = &refusal{kind: ErrNotAllowed, msg: fmt.Sprintf(
					"outbound request to %s (a redirect from %s) is not allowed for function %s; add it to allowedOutboundHosts", nt, t, function)}
			} else {
				err = &refusal{kind: ErrNotAllowed, msg: fmt.Sprintf(
					"outbound request %s %s was redirected to a URL that is not allowed: %s", method, t, strings.TrimPrefix(err.Error(), "outbound request: "))}
			}
			return Response{}, entry, c.refused(function, method, shown, err)
		}
		// As http.Client does: 301, 302 and 303 go on as GET without a body (HEAD stays HEAD),
		// 307 and 308 repeat the method and the body.
		if resp.StatusCode <= http.StatusSeeOther && method != http.MethodGet && method != http.MethodHead {
			method, body = http.MethodGet, nil
			header, ownHeader = cloneOnce(header, ownHeader)
			for _, h := range []string{"Content-Type", "Content-Encoding", "Content-Language"} {
				header.Del(h)
			}
		}
		if !sameSite(t, nt) {
			// Credentials go to the host they were written for (and its subdomains), not further.
			header, ownHeader = cloneOnce(header, ownHeader)
			for _, h := range []string{"Authorization", "Cookie", "Cookie2", "Www-Authenticate"} {
				header.Del(h)
			}
		}
		t = nt
	}
}

func cloneOnce(h http.Header, owned bool) (http.Header, bool) {
	if owned {
		return h, true
	}
	return h.Clone(), true
}

// sameSite reports whether credentials sent to from may go on to to: the same host, or a subdomain
// of it, over a scheme at least as safe.
func sameSite(from, to target) bool {
	if from.scheme == "https" && to.scheme != "https" {
		return false
	}
	return to.host == from.host || !from.literal && strings.HasSuffix(to.host, "."+from.host)
}

func isRedirect(status int) bool {
	switch status {
	case http.StatusMovedPermanently, http.StatusFound, http.StatusSeeOther,
		http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
		return true
	}
	return false
}

// discard reads a little of a body that is not wanted, so that its connection can be reused, and
// closes it.
func discard(body io.ReadCloser) {
	_, _ = io.Copy(io.Discard, io.LimitReader(body, 64<<10))
	_ = body.Close()
}

// refused logs a refused call and returns err.
func (c *Client) refused(function, method, target string, err error) error {
	attrs := []any{slog.String("function", function), slog.String("method", truncate(method))}
	if target != "" {
		attrs = append(attrs, slog.String("target", target))
	}
	attrs = append(attrs, slog.String("reason", err.Error()))
	c.log.Warn("outbound request refused", attrs...)
	return err
}

// failed returns the error of a call that failed on its way: the context's error when it is done.
func (c *Client) failed(ctx context.Context, method string, t target, err error) error {
	switch ctx.Err() {
	case context.DeadlineExceeded:
		return fmt.Errorf("outbound request %s %s did not finish before the deadline: %w", method, t, context.DeadlineExceeded)
	case context.Canceled:
		return fmt.Errorf("outbound request %s %s was cancelled: %w", method, t, context.Canceled)
	}
	return fmt.Errorf("outbound request %s %s: %w", method, t, err)
}

// resolve returns the addresses t may be dialled at.
func (c *Client) resolve(ctx context.Context, t target, function string) ([]netip.Addr, error) {
	if t.literal {
		return checkAddrs(t, function, []netip.Addr{t.addr})
	}
	ips, err := c.resolver.LookupIPAddr(ctx, t.host)
	if err != nil {
		return nil, err
	}
	addrs := make([]netip.Addr, 0, len(ips))
	for _, ip := range ips {
		if a, ok := netip.AddrFromSlice(ip.IP); ok {
			addrs = append(addrs, a.Unmap())
		}
	}
	return checkAddrs(t, function, addrs)
}

// dialKey is the context key of the *dialTarget a request's connection may be dialled to.
type dialKey struct{}

// dialTarget is what the transport may dial for a request: the checked addresses of its host, at its
// port. hostport is the address the transport asks for (the URL's host as written, and the port).
type dialTarget struct {
	hostport string
	port     uint16
	addrs    []netip.Addr
	deadline time.Time
}

func newRequest(ctx context.Context, method string, t target, header http.Header, body []byte, addrs []netip.Addr) *http.Request {
	dt := &dialTarget{
		hostport: net.JoinHostPort(t.url.Hostname(), strconv.Itoa(t.port)),
		port:     uint16(t.port),
		addrs:    addrs,
	}
	dt.deadline, _ = ctx.Deadline()
	r := &http.Request{
		Method:     method,
		URL:        t.url,
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: 1,
		Header:     header,
		Host:       t.url.Host,
	}
	if len(body) > 0 {
		open := func() io.ReadCloser { return io.NopCloser(bytes.NewReader(body)) }
		if bodies, ok := ctx.Value(bodiesKey{}).(*bodyTracker); ok {
			open = func() io.ReadCloser { return bodies.reader(body) }
		}
		r.Body = open()
		r.ContentLength = int64(len(body))
		r.GetBody = func() (io.ReadCloser, error) { return open(), nil }
	}
	return r.WithContext(context.WithValue(ctx, dialKey{}, dt))
}

// dial is the transport's DialContext: it dials the checked addresses of the request whose context
// ctx is (the transport keeps its values), in order, and never resolves a name.
func (c *Client) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	dt, ok := ctx.Value(dialKey{}).(*dialTarget)
	if !ok {
		return nil, fmt.Errorf("outbound: no checked address to dial %s", addr)
	}
	if !strings.EqualFold(addr, dt.hostport) {
		return nil, fmt.Errorf("outbound: asked to dial %s for a request checked for %s", addr, dt.hostport)
	}
	var errs []error
	for i, a := range dt.addrs {
		ap := netip.AddrPortFrom(a, dt.port)
		if c.mapDial != nil {
			ap = c.mapDial(ap)
		}
		dctx, cancel := ctx, context.CancelFunc(func() {})
		if left := len(dt.addrs) - i; left > 1 && !dt.deadline.IsZero() {
			// Leave the addresses after this one their share of the time, as net.Dialer does.
			share := time.Until(dt.deadline) / time.Duration(left)
			dctx, cancel = context.WithTimeout(ctx, max(share, 2*time.Second))
		}
		conn, err := c.dialer.DialContext(dctx, network, ap.String())
		cancel()
		if err == nil {
			return conn, nil
		}
		errs = append(errs, err)
	}
	if len(errs) == 0 {
		return nil, fmt.Errorf("outbound: no address to dial %s", addr)
	}
	return nil, errors.Join(errs...)
}

// read reads resp's body whole, up to the limit, into one buffer, and closes it.
func (c *Client) read(ctx context.Context, method string, t target, resp *http.Response) (Response, error) {
	defer resp.Body.Close()
	tooLarge := func() error {
		return &refusal{kind: ErrTooLarge, msg: fmt.Sprintf(
			"outbound request: the response of %s %s is over the limit of %d bytes", method, t, c.maxBody)}
	}
	if method != http.MethodHead && resp.ContentLength > c.maxBody {
		return Response{}, tooLarge()
	}
	body, err := readBody(resp.Body, resp.ContentLength, c.maxBody)
	if errors.Is(err, ErrTooLarge) {
		return Response{}, tooLarge()
	}
	if err != nil {
		return Response{}, c.failed(ctx, method, t, err)
	}
	return Response{Status: resp.StatusCode, Header: resp.Header, Body: body}, nil
}

// readBody reads r to its end into one buffer: of size contentLength (+1, to see the end without
// growing) when it is known and within limit, else grown as the body comes. More than limit bytes is
// ErrTooLarge.
func readBody(r io.Reader, contentLength, limit int64) ([]byte, error) {
	size := int64(512)
	if contentLength >= 0 {
		size = contentLength + 1
	}
	size = min(size, limit+1)
	buf := make([]byte, 0, size)
	for {
		if len(buf) == cap(buf) {
			grow := min(int64(cap(buf)), limit+1-int64(len(buf)))
			if grow <= 0 {
				return nil, ErrTooLarge
			}
			buf = slices.Grow(buf, int(grow))
		}
		n, err := r.Read(buf[len(buf):int(min(int64(cap(buf)), limit+1))])
		buf = buf[:len(buf)+n]
		if int64(len(buf)) > limit {
			return nil, ErrTooLarge
		}
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return nil, err
		}
	}
}

// Dial opens a TCP connection for the function to scheme://host:port — what a process runtime's
// proxy does for its HTTP requests (http) and CONNECT tunnels (https) — after the checks Do makes:
// the destination is in allow, and a name resolves to an address the function may reach. The
// connection carries whatever the function sends; TLS, if any, is the function's own.
func (c *Client) Dial(ctx context.Context, function string, allow []spec.OutboundHost, scheme, host string, port int) (net.Conn, error) {
	t, err := checkURL(function, allow, origin(scheme, host, port))
	if err != nil {
		shown := ""
		if errors.Is(err, ErrNotAllowed) {
			shown = t.String()
		}
		return nil, c.refused(function, "CONNECT", shown, err)
	}
	addrs, err := c.resolve(ctx, t, function)
	if err != nil {
		if errors.Is(err, ErrNotAllowed) {
			return nil, c.refused(function, "CONNECT", t.String(), err)
		}
		return nil, c.failed(ctx, "CONNECT", t, err)
	}
	dt := &dialTarget{hostport: net.JoinHostPort(t.url.Hostname(), strconv.Itoa(t.port)), port: uint16(t.port), addrs: addrs}
	if d, ok := ctx.Deadline(); ok {
		dt.deadline = d
	}
	conn, err := c.dial(context.WithValue(ctx, dialKey{}, dt), "tcp", dt.hostport)
	if err != nil {
		return nil, c.failed(ctx, "CONNECT", t, err)
	}
	return conn, nil
}
