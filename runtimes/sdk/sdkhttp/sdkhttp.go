// Package sdkhttp gives Go functions outbound HTTP: net/http requests made through Gatehouse, which
// sends them from the worker to the hosts the function's allowedOutboundHosts allow.
//
// Importing it is all a function needs: in a sandbox, its init makes [Transport] net/http's
// DefaultTransport, so
// http.Get, http.Post and http.DefaultClient work unchanged, and so does the AWS SDK for Go v2
// (config.WithHTTPClient(sdkhttp.Client()), or its default client).
//
//	import _ "gatehouse.dev/gatehouse/runtimes/sdk/sdkhttp"
//
// It is a package of its own because net/http is large: a Go function that imports it is about
// 5 MB bigger (3.1 MB → 8.3 MB for a small one), which costs compile time and memory, so only the
// functions that call out pay for it.
//
// A request that is not allowed fails with an error that says which host to add; the response body
// is what the host read, up to its limit (6 MB by default); an invocation makes at most 100 requests;
// every request ends at the invocation's deadline. Redirects are followed by Gatehouse, to allowed
// hosts only. See docs/abi.md.
package sdkhttp

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"

	"gatehouse.dev/gatehouse/runtimes/sdk"
)

// opHTTP is the host operation of outbound requests (docs/abi.md).
const opHTTP = 20

// Host statuses an outbound request can answer with (docs/abi.md).
const (
	statusOK          = 0
	statusTooLarge    = 2
	statusLimit       = 3
	statusInvalid     = 4
	statusUnavailable = 7
	statusNotAllowed  = 8
	statusTimeout     = 9
)

var (
	// ErrNotAllowed is a request to a host the function's allowedOutboundHosts does not list; the
	// error's message says what to add.
	ErrNotAllowed = errors.New("outbound request not allowed")
	// ErrTooLarge is a response over the limit of the function's worker.
	ErrTooLarge = errors.New("outbound response too large")
	// ErrLimit is a request over the invocation's limit on outbound requests.
	ErrLimit = errors.New("too many outbound requests in one invocation")
	// ErrUnavailable means outbound requests are not available: the function runs outside Gatehouse.
	ErrUnavailable = errors.New("outbound requests are not available here")
)

// Transport is an http.RoundTripper that sends requests through Gatehouse. Outside a Gatehouse
// sandbox (a function run natively, with go run or go test), it sends them itself, with net/http's
// own transport.
type Transport struct{}

// Client returns an http.Client that sends its requests through Gatehouse.
func Client() *http.Client { return &http.Client{Transport: Transport{}} }

// RoundTrip implements http.RoundTripper.
func (Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if native != nil {
		return native.RoundTrip(req)
	}
	if req.Body != nil {
		defer req.Body.Close()
	}
	if err := req.Context().Err(); err != nil {
		return nil, err
	}
	method := req.Method
	if method == "" {
		method = http.MethodGet
	}
	url := req.URL.String()
	size := 2 + len(method) + 2 + len(url) + 4
	fields := 0
	for k, vs := range req.Header {
		for _, v := range vs {
			size += 4 + len(k) + len(v)
			fields++
		}
	}
	if req.Host != "" && req.Host != req.URL.Host {
		size += 4 + len("Host") + len(req.Host)
		fields++
	}
	// The body is read once, straight after the head: one copy of it, into the request.
	if req.ContentLength > 0 {
		size += int(req.ContentLength)
	}
	b := make([]byte, 0, size)
	b = appendStr(b, method)
	b = appendStr(b, url)
	b = binary.LittleEndian.AppendUint32(b, uint32(fields))
	for k, vs := range req.Header {
		for _, v := range vs {
			b = appendStr(b, k)
			b = appendStr(b, v)
		}
	}
	if req.Host != "" && req.Host != req.URL.Host {
		b = appendStr(b, "Host")
		b = appendStr(b, req.Host)
	}
	if req.Body != nil && req.Body != http.NoBody {
		buf := bytes.NewBuffer(b)
		if _, err := buf.ReadFrom(req.Body); err != nil {
			return nil, fmt.Errorf("reading the request body: %w", err)
		}
		b = buf.Bytes()
	}
	status, out := sdk.HostCall(opHTTP, b)
	if status != statusOK {
		return nil, statusError(status, out)
	}
	return decodeResponse(req, out)
}

// statusError turns a failed request's status and message into an error.
func statusError(status uint32, msg []byte) error {
	text := string(msg)
	switch status {
	case statusNotAllowed:
		return fmt.Errorf("%w: %s", ErrNotAllowed, text)
	case statusTooLarge:
		return fmt.Errorf("%w: %s", ErrTooLarge, text)
	case statusLimit:
		return fmt.Errorf("%w: %s", ErrLimit, text)
	case statusTimeout:
		return fmt.Errorf("%w: %s", context.DeadlineExceeded, text)
	case statusUnavailable:
		return ErrUnavailable
	case statusInvalid:
		return fmt.Errorf("invalid outbound request: %s", text)
	}
	if text == "" {
		text = "status " + strconv.Itoa(int(status))
	}
	return fmt.Errorf("outbound request failed: %s", text)
}

// decodeResponse reads the host's answer: the body is the answer's own tail, not a copy.
func decodeResponse(req *http.Request, out []byte) (*http.Response, error) {
	bad := errors.New("outbound request: a malformed answer from the host")
	if len(out) < 8 {
		return nil, bad
	}
	code := int(binary.LittleEndian.Uint32(out))
	n := int(binary.LittleEndian.Uint32(out[4:]))
	out = out[8:]
	if n > len(out)/4 {
		return nil, bad
	}
	header := make(http.Header, n)
	str := func() (string, bool) {
		if len(out) < 2 {
			return "", false
		}
		l := int(binary.LittleEndian.Uint16(out))
		if len(out) < 2+l {
			return "", false
		}
		s := string(out[2 : 2+l])
		out = out[2+l:]
		return s, true
	}
	for range n {
		k, ok1 := str()
		v, ok2 := str()
		if !ok1 || !ok2 {
			return nil, bad
		}
		header[k] = append(header[k], v)
	}
	return &http.Response{
		Status:        strconv.Itoa(code) + " " + http.StatusText(code),
		StatusCode:    code,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        header,
		Body:          io.NopCloser(bytes.NewReader(out)),
		ContentLength: int64(len(out)),
		Request:       req,
	}, nil
}

func appendStr(b []byte, s string) []byte {
	if len(s) > 0xffff {
		s = s[:0xffff]
	}
	b = binary.LittleEndian.AppendUint16(b, uint16(len(s)))
	return append(b, s...)
}
