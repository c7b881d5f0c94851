package process

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"strconv"
	"strings"
	"sync"
	"time"
)

// SandboxProxy is where a sandboxed process finds its HTTP proxy, the one way out of its network
// namespace: HTTP_PROXY and HTTPS_PROXY name it.
const SandboxProxy = "127.0.0.1:9002"

// ErrDenied is what a Config.Dial returns (wrapped) for a destination the function may not reach; the
// proxy answers it with 403 and the error's message.
var ErrDenied = errors.New("destination not allowed")

// DialFunc connects to scheme://host:port for the process (scheme is "http" for a proxied request,
// "https" for a CONNECT tunnel), or says why not.
type DialFunc func(ctx context.Context, scheme, host string, port int) (net.Conn, error)

// proxy is a sandboxed process's HTTP forward proxy: absolute-form http:// requests, and CONNECT
// tunnels for https (the TLS inside is the process's own). Every connection it opens is one Dial
// allowed. Written here rather than taken from a library: the whole of it is httputil.ReverseProxy for
// plain requests and a hijacked copy loop for tunnels.
type proxy struct {
	dial DialFunc
	log  *slog.Logger
	// runtimeAPI serves requests for the sandbox's own Runtime API that a client sent through the
	// proxy (one that honours HTTP_PROXY but not a NO_PROXY with a port, such as curl).
	runtimeAPI http.Handler
	tr         *http.Transport
	rp         *httputil.ReverseProxy

	mu      sync.Mutex
	tunnels map[net.Conn]struct{}
}

func newProxy(dial DialFunc, runtimeAPI http.Handler, log *slog.Logger) *proxy {
	px := &proxy{dial: dial, log: log, runtimeAPI: runtimeAPI, tunnels: map[net.Conn]struct{}{}}
	px.tr = &http.Transport{
		Proxy: nil,
		DialContext: func(ctx context.Context, _, addr string) (net.Conn, error) {
			host, port, err := splitHostPort(addr, 80)
			if err != nil {
				return nil, err
			}
			return dial(ctx, "http", host, port)
		},
		MaxIdleConnsPerHost:   8,
		IdleConnTimeout:       30 * time.Second,
		ResponseHeaderTimeout: 5 * time.Minute,
	}
	px.rp = &httputil.ReverseProxy{
		Rewrite:   func(*httputil.ProxyRequest) {}, // the request goes where its absolute URL says
		Transport: px.tr,
		ErrorLog:  slog.NewLogLogger(log.Handler(), slog.LevelDebug),
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			proxyError(w, err)
		},
	}
	return px
}

func (px *proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.URL.IsAbs() && (r.URL.Host == SandboxRuntimeAPI || r.URL.Host == "localhost:9001"):
		r.RequestURI = r.URL.RequestURI()
		px.runtimeAPI.ServeHTTP(w, r)
	case r.Method == http.MethodConnect:
		px.tunnel(w, r)
	case r.URL.IsAbs() && strings.EqualFold(r.URL.Scheme, "http"):
		px.rp.ServeHTTP(w, r)
	case r.URL.IsAbs():
		http.Error(w, "the proxy takes http:// URLs; for https, CONNECT to the host", http.StatusBadRequest)
	default:
		http.Error(w, "this is a forward proxy: ask it for an absolute http:// URL, or CONNECT", http.StatusBadRequest)
	}
}

// tunnel answers CONNECT host:port with a connection to it.
func (px *proxy) tunnel(w http.ResponseWriter, r *http.Request) {
	host, port, err := splitHostPort(r.Host, 443)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	up, err := px.dial(r.Context(), "https", host, port)
	if err != nil {
		proxyError(w, err)
		return
	}
	rc := http.NewResponseController(w)
	w.WriteHeader(http.StatusOK)
	if err := rc.Flush(); err != nil {
		up.Close()
		return
	}
	down, buf, err := rc.Hijack()
	if err != nil {
		up.Close()
		return
	}
	px.mu.Lock()
	px.tunnels[down], px.tunnels[up] = struct{}{}, struct{}{}
	px.mu.Unlock()
	done := make(chan struct{}, 2)
	go func() {
		if n := buf.Reader.Buffered(); n > 0 { // what the client sent after its CONNECT
			b, _ := buf.Reader.Peek(n)
			_, _ = up.Write(b)
		}
		_, _ = io.Copy(up, down)
		closeWrite(up)
		done <- struct{}{}
	}()
	_, _ = io.Copy(down, up)
	closeWrite(down)
	<-done
	up.Close()
	down.Close()
	px.mu.Lock()
	delete(px.tunnels, down)
	delete(px.tunnels, up)
	px.mu.Unlock()
}

// close ends the proxy's tunnels and idle connections (its server is closed by its owner).
func (px *proxy) close() {
	px.mu.Lock()
	for c := range px.tunnels {
		c.Close()
	}
	px.mu.Unlock()
	px.tr.CloseIdleConnections()
}

func closeWrite(c net.Conn) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
}

// proxyError answers a refused or failed connection: 403 for a destination not allowed, 504 for one
// that did not answer in time, else 502.
func proxyError(w http.ResponseWriter, err error) {
	status := http.StatusBadGateway
	switch {
	case errors.Is(err, ErrDenied):
		status = http.StatusForbidden
	case errors.Is(err, context.DeadlineExceeded):
		status = http.StatusGatewayTimeout
	}
	http.Error(w, err.Error(), status)
}

func splitHostPort(hostport string, defaultPort int) (string, int, error) {
	host, p, err := net.SplitHostPort(hostport)
	if err != nil {
		if strings.Contains(err.Error(), "missing port") {
			return strings.Trim(hostport, "[]"), defaultPort, nil
		}
		return "", 0, err
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 1 || port > 65535 {
		return "", 0, errors.New("bad port in " + hostport)
	}
	return host, port, nil
}
