package gateway

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/url"
	"os"
	posixpath "path"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/gofiber/fiber/v2"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"gatehouse.dev/gatehouse/internal/mapping"
	"gatehouse.dev/gatehouse/internal/spec"
	"gatehouse.dev/gatehouse/internal/tracing"
)

// HTTP proxy integrations send the request on to an HTTP backend and its response back, as API
// Gateway's HTTP_PROXY integrations do. The standard library's client is the one that fits here:
// it pools connections per backend, speaks HTTP/2 to TLS backends, and streams bodies; fasthttp's
// client would need its own pooling per host and has no HTTP/2.

// Errors of HTTP proxy integrations, answered with API Gateway's statuses.
var (
	// errBadGateway: the backend could not be reached, or answered something that is not HTTP.
	errBadGateway = fiber.NewError(fiber.StatusBadGateway, "Bad Gateway")
	// errGatewayTimeout: the backend did not answer within the integration's timeout.
	errGatewayTimeout = fiber.NewError(fiber.StatusGatewayTimeout, "Gateway Timeout")
	// errProtectedTarget is why a connection to one of the node's own control ports was refused.
	errProtectedTarget = errors.New("the target is one of this node's own admin, bus or AWS API addresses, which integrations may not reach")
)

// MaxProxyResponseBytes bounds the body of an HTTP proxy integration's response, as API Gateway
// bounds payloads: a longer one is cut off, and its connection closed.
const MaxProxyResponseBytes = 10 << 20

// proxyIntegration is an HTTP proxy integration, compiled.
type proxyIntegration struct {
	// target is the backend URL as written: stage variables and path parameters are replaced for
	// each request.
	target string
	// stageVars says target names stage variables.
	stageVars bool
	// method is the backend request's method; "" for the client's.
	method string
	// greedy holds the names of the route's greedy path parameters, whose "/" stay as they are.
	greedy map[string]bool
	// segment is the index of each path parameter's segment in the route's path: the backend gets
	// the parameter as the client wrote it, not decoded and escaped again.
	segment map[string]int
	// appendPath says the request's path goes after the target's (the $default route).
	appendPath bool
	// tls is the TLS settings' key in the transports; "" for the defaults.
	tls       string
	tlsConfig *tls.Config
}

// compileProxy compiles an http_proxy integration of the route key, reading its CA file.
func compileProxy(key string, in spec.Integration) (*proxyIntegration, error) {
	p := &proxyIntegration{target: in.Target, stageVars: strings.Contains(in.Target, spec.StageVariableRef), appendPath: key == routeKeyDefault}
	if in.Method != spec.MethodAny {
		p.method = in.Method
	}
	if msg := spec.CheckProxyTarget(in.Target, key); msg != "" {
		return nil, errors.New(msg)
	}
	if k, err := spec.ParseRouteKey(key); err == nil {
		p.segment = map[string]int{}
		for i, s := range k.Segments {
			if s.Kind == spec.SegmentGreedy {
				p.greedy = map[string]bool{s.Text: true}
			}
			if s.Kind != spec.SegmentLiteral {
				p.segment[s.Text] = i
			}
		}
	}
	if t := in.TLS; t != nil {
		cfg := &tls.Config{ServerName: t.ServerName, MinVersion: tls.VersionTLS12}
		h := sha256.New()
		fmt.Fprintf(h, "%s\x00", t.ServerName)
		if t.CAFile != "" {
			pem, err := os.ReadFile(t.CAFile)
			if err != nil {
				return nil, fmt.Errorf("tls.caFile: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("tls.caFile %s holds no PEM certificate", t.CAFile)
			}
			cfg.RootCAs = pool
			h.Write(pem)
		}
		p.tls, p.tlsConfig = string(h.Sum(nil)), cfg
	}
	return p, nil
}

// proxyTransports holds the HTTP transports of a server's HTTP proxy integrations: one per TLS
// setting, shared by every route that has it, so that connections to a backend are pooled across
// routes and across reloads of the APIs.
type proxyTransports struct {
	mu sync.Mutex
	m  map[string]*http.Transport
	// protected is the set of the node's own control addresses, which no integration may reach.
	protected *protectedAddrs
}

// get returns the transport for p's TLS settings.
func (t *proxyTransports) get(p *proxyIntegration) *http.Transport {
	t.mu.Lock()
	defer t.mu.Unlock()
	if tr, ok := t.m[p.tls]; ok {
		return tr
	}
	if t.m == nil {
		t.m = map[string]*http.Transport{}
	}
	d := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second, Control: t.protected.control}
	tr := &http.Transport{
		DialContext:           d.DialContext,
		TLSClientConfig:       p.tlsConfig,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          1024,
		MaxIdleConnsPerHost:   256,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
		// The client's Accept-Encoding goes to the backend, and its encoded body back as it is.
		DisableCompression: true,
	}
	t.m[p.tls] = tr
	return tr
}

// close closes the idle connections of every transport.
func (t *proxyTransports) close() {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, tr := range t.m {
		tr.CloseIdleConnections()
	}
}

// protectedAddrs are the node's own control listeners (admin, bus, AWS API): their ports on any
// address of the node.
type protectedAddrs struct {
	ports map[string]bool
	hosts map[string]bool
	once  sync.Once
	local map[string]bool // the node's interface addresses, read once
}

func newProtectedAddrs(addrs []string) *protectedAddrs {
	p := &protectedAddrs{ports: map[string]bool{}, hosts: map[string]bool{}}
	for _, a := range addrs {
		host, port, err := net.SplitHostPort(a)
		if err != nil || port == "0" || port == "" {
			continue
		}
		p.ports[port] = true
		if ip := net.ParseIP(host); ip != nil {
			p.hosts[ip.String()] = true
		}
	}
	return p
}

// control refuses a connection to a protected port of the node: on a loopback or unspecified
// address, one of the node's interface addresses, or a protected listener's own address. It runs
// after name resolution, so a backend name that resolves to the node is refused too.
func (p *protectedAddrs) control(_, address string, _ syscall.RawConn) error {
	host, port, err := net.SplitHostPort(address)
	if err != nil || !p.ports[port] {
		return nil
	}
	ip := net.ParseIP(host)
	if ip == nil || ip.IsLoopback() || ip.IsUnspecified() || p.hosts[ip.String()] {
		return errProtectedTarget
	}
	p.once.Do(func() {
		p.local = map[string]bool{}
		addrs, _ := net.InterfaceAddrs()
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok {
				p.local[n.IP.String()] = true
			}
		}
	})
	if p.local[ip.String()] {
		return errProtectedTarget
	}
	return nil
}

// hopHeaders are the hop-by-hop headers, which a proxy does not pass on (RFC 9110 section 7.6.1),
// and the headers the proxy sets itself.
var hopHeaders = map[string]bool{
	"Connection": true, "Proxy-Connection": true, "Keep-Alive": true, "Proxy-Authenticate": true,
	"Proxy-Authorization": true, "Te": true, "Trailer": true, "Transfer-Encoding": true, "Upgrade": true,
	"Host": true, "Content-Length": true,
}

// backendURL returns the URL of the backend request of rq: the target with stage variables and
// path parameters replaced, the request's path after it for the $default route, and the
// request's query string after the target's.
func (p *proxyIntegration) backendURL(rq *routeRequest) (*url.URL, error) {
	target := p.target
	if p.stageVars {
		var err error
		if target, err = spec.ExpandStageVariables(target, rq.StageVariable); err != nil {
			return nil, fmt.Errorf("target %s in stage %s: %w", p.target, rq.stage.Name, err)
		}
	}
	if strings.IndexByte(target, '{') >= 0 {
		var b strings.Builder
		rest := target
		for {
			i := strings.IndexByte(rest, '{')
			j := strings.IndexByte(rest[max(i, 0):], '}')
			if i < 0 || j < 0 {
				b.WriteString(rest)
				break
			}
			b.WriteString(rest[:i])
			name := rest[i+1 : i+j]
			b.WriteString(p.rawParam(rq, name))
			rest = rest[i+j+1:]
		}
		target = b.String()
	}
	u, err := url.Parse(target)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("target %s is not an http or https URL once its stage variables are replaced (%q)", p.target, target)
	}
	if p.appendPath {
		u.RawPath = ""
		// Joined as text, not resolved as a reference: a request path that starts with "//"
		// would name another host, and the target's query string would be lost.
		raw := strings.TrimSuffix(u.EscapedPath(), "/") + resolveDots(rq.rest)
		path, err := url.PathUnescape(raw)
		if err != nil {
			return nil, fmt.Errorf("request path %q: %w", rq.rest, err)
		}
		u.Path, u.RawPath = path, raw
	}
	if q := rq.c.Request().URI().QueryString(); len(q) > 0 {
		if u.RawQuery != "" {
			u.RawQuery += "&" + string(q)
		} else {
			u.RawQuery = string(q)
		}
	}
	return u, nil
}

// rawParam returns the path parameter name of rq as the client wrote it (a greedy one with its
// dot segments resolved, so that it cannot climb above the target's path), or the decoded value
// escaped again when the raw one cannot be found.
func (p *proxyIntegration) rawParam(rq *routeRequest, name string) string {
	segs := strings.Split(strings.TrimPrefix(rq.rest, "/"), "/")
	i, ok := p.segment[name]
	switch {
	case ok && i < len(segs) && p.greedy[name]:
		return strings.TrimPrefix(resolveDots("/"+strings.Join(segs[i:], "/")), "/")
	case ok && i < len(segs) && segs[i] != "":
		return segs[i]
	}
	v := rq.params[name]
	if p.greedy[name] {
		parts := strings.Split(v, "/")
		for k, s := range parts {
			parts[k] = url.PathEscape(s)
		}
		return strings.Join(parts, "/")
	}
	return url.PathEscape(v)
}

// resolveDots returns the raw request path rest with its "." and ".." segments (also
// percent-encoded ones) resolved, so that a request cannot climb above the target's own path.
func resolveDots(rest string) string {
	decoded, err := url.PathUnescape(rest)
	if err != nil || !strings.Contains(decoded, "/.") {
		return rest
	}
	clean := posixpath.Clean("/" + decoded)
	if strings.HasSuffix(decoded, "/") && clean != "/" {
		clean += "/"
	}
	if clean == decoded {
		return rest
	}
	return (&url.URL{Path: clean}).EscapedPath()
}

// serveProxy sends rq to its HTTP backend and streams the backend's response to the client.
func (s *Server) serveProxy(c *fiber.Ctx, rq *routeRequest) error {
	p := rq.integration.proxy
	u, err := p.backendURL(rq)
	if err != nil {
		return fmt.Errorf("route %s: %w", rq.route.Key, err)
	}
	method := p.method
	if method == "" {
		method = c.Method()
	}
	header := http.Header{}
	var connection []string
	c.Request().Header.VisitAll(func(k, v []byte) {
		name := http.CanonicalHeaderKey(string(k))
		if name == "Connection" {
			connection = append(connection, strings.Split(string(v), ",")...)
		}
		if !hopHeaders[name] {
			header.Add(name, string(v))
		}
	})
	for _, name := range connection {
		header.Del(strings.TrimSpace(name))
	}
	sourceIP := c.IP()
	if prior := header.Values("X-Forwarded-For"); len(prior) > 0 {
		header.Set("X-Forwarded-For", strings.Join(prior, ", ")+", "+sourceIP)
	} else {
		header.Set("X-Forwarded-For", sourceIP)
	}
	header.Set("X-Forwarded-Proto", "http")
	if c.Context().IsTLS() {
		header.Set("X-Forwarded-Proto", "https")
	}
	if addr, ok := c.Context().LocalAddr().(*net.TCPAddr); ok && addr.Port != 0 {
		header.Set("X-Forwarded-Port", strconv.Itoa(addr.Port))
	}
	if m := rq.integration.request; m != nil {
		query := u.Query()
		mr := mapping.Request{Header: header, Query: u.Query(), Path: u.Path}
		m.Apply(&mr, rq)
		if mr.Path != u.Path {
			u.Path, u.RawPath = mr.Path, ""
		}
		// The query string goes as the client wrote it unless a mapping changed it.
		if !maps.EqualFunc(query, mr.Query, slices.Equal) {
			u.RawQuery = mr.Query.Encode()
		}
	}

	var body io.Reader
	if b := c.Body(); len(b) > 0 {
		// The transport may still be sending the body after the handler returns with a streamed
		// response; the request's buffer is reused then.
		body = bytes.NewReader(bytes.Clone(b))
	}
	ctx, cancel := context.WithTimeout(context.Background(), rq.route.Timeout)
	var span trace.Span
	if rq.l.trace != nil {
		ctx, span = s.cfg.Tracer.Start(trace.ContextWithSpan(ctx, trace.SpanFromContext(rq.l.trace)), "integration "+u.Host,
			trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(attribute.String("http.request.method", method), attribute.String("server.address", u.Host)))
		header.Set("Traceparent", tracing.TraceParent(ctx))
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), body)
	if err != nil {
		cancel()
		return fmt.Errorf("route %s: backend request: %w", rq.route.Key, err)
	}
	req.Header = header
	if body != nil {
		req.ContentLength = int64(len(c.Body()))
	}
	called := time.Now()
	resp, err := s.proxies.get(p).RoundTrip(req)
	rq.l.access.integrationLatency = time.Since(called)
	if err != nil {
		cancel()
		if span != nil {
			span.SetStatus(codes.Error, err.Error())
			span.End()
		}
		rq.l.access.integrationError = err.Error()
		switch {
		case errors.Is(err, errProtectedTarget):
			return fmt.Errorf("route %s: %s: %w", rq.route.Key, u.Host, err)
		case errors.Is(err, context.DeadlineExceeded):
			return fmt.Errorf("%w: route %s: backend %s did not answer within %v", errGatewayTimeout, rq.route.Key, u.Host, rq.route.Timeout)
		}
		return fmt.Errorf("%w: route %s: backend %s: %v", errBadGateway, rq.route.Key, u.Host, err)
	}
	rq.l.access.integrationStatus = resp.StatusCode
	// The headers the backend's Connection names are hop-by-hop too (RFC 9110 section 7.6.1).
	for _, v := range resp.Header["Connection"] {
		for name := range strings.SplitSeq(v, ",") {
			resp.Header.Del(strings.TrimSpace(name))
		}
	}
	if span != nil {
		span.SetAttributes(attribute.Int("http.response.status_code", resp.StatusCode))
	}
	status := resp.StatusCode
	respBody := io.Reader(resp.Body)
	if m := rq.integration.response; m != nil && m.For(status) {
		var read []byte
		readBody := func() []byte {
			if read == nil {
				read, _ = io.ReadAll(io.LimitReader(resp.Body, mapping.MaxBodyBytes))
				respBody = io.MultiReader(bytes.NewReader(read), resp.Body)
			}
			return read
		}
		out := mapping.Response{Status: status, Header: resp.Header.Clone()}
		m.Apply(&out, responseSource{rq: rq, header: resp.Header, body: readBody})
		status, resp.Header = out.Status, out.Header
	}
	c.Status(status)
	for name, vs := range resp.Header {
		if hopHeaders[name] || name == "Apigw-Requestid" {
			continue
		}
		for _, v := range vs {
			c.Response().Header.Add(name, v)
		}
	}
	stream := &proxyBody{r: io.LimitReader(respBody, MaxProxyResponseBytes+1), closer: resp.Body, cancel: cancel, span: span}
	if c.Method() == fiber.MethodHead || status == fiber.StatusNoContent || status == fiber.StatusNotModified {
		stream.Close()
		if c.Method() == fiber.MethodHead && resp.ContentLength >= 0 {
			// The length of the body a GET would have had, as the backend said.
			c.Response().Header.SetContentLength(int(resp.ContentLength))
			c.Response().SkipBody = true
		}
		return nil
	}
	size := int(resp.ContentLength)
	if size > MaxProxyResponseBytes || respBody != io.Reader(resp.Body) {
		size = -1
	}
	c.Response().SetBodyStream(stream, size)
	return nil
}

// proxyBody is a backend's response body on its way to the client: it ends the backend request
// (its timeout, its span) when the client has it, and cuts it at MaxProxyResponseBytes.
type proxyBody struct {
	r      io.Reader
	closer io.Closer
	cancel context.CancelFunc
	span   trace.Span
	n      int64
	once   sync.Once
}

func (b *proxyBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	b.n += int64(n)
	if b.n > MaxProxyResponseBytes {
		// The bytes over the limit do not go out.
		return n - int(b.n-MaxProxyResponseBytes), fmt.Errorf("the backend's response is over %d bytes", MaxProxyResponseBytes)
	}
	return n, err
}

func (b *proxyBody) Close() error {
	b.once.Do(func() {
		b.closer.Close()
		b.cancel()
		if b.span != nil {
			b.span.End()
		}
	})
	return nil
}
