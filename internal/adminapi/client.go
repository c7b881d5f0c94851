package adminapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Timeouts and limits of a [Client]'s calls.
const (
	// DefaultTimeout bounds a call that neither uploads a bundle, invokes a function nor follows logs.
	DefaultTimeout = time.Minute
	// DefaultUploadTimeout bounds a deploy's upload and answer: a large bundle on a slow link takes a
	// while, and the node answers once its workers have loaded the version.
	DefaultUploadTimeout = 10 * time.Minute
	// DefaultInvokeTimeout bounds an invocation: the longest function timeout (900 s, as in
	// Lambda), plus a margin for the trip.
	DefaultInvokeTimeout = 16 * time.Minute
	// HealthTimeout bounds the /healthz check of [Client.Reachable].
	HealthTimeout = 5 * time.Second
	// MaxAnswerBytes bounds a JSON answer a Client reads.
	MaxAnswerBytes = 8 << 20
	// maxErrorBytes bounds the body of a non-2xx answer read for its message.
	maxErrorBytes = 64 << 10
)

// Where a node tells the commands run against its data directory how to reach its admin API.
const (
	// AddressFile, in the data directory's run/ directory, holds an [Address]: where the node's admin
	// API listens. A node that stopped leaves it behind.
	AddressFile = "admin.json"
	// TokenFile, in the data directory, holds the first admin token (mode 0600).
	TokenFile = "admin.token"
)

// Address is what AddressFile holds.
type Address struct {
	URL string `json:"url"`
}

// AddressPath is the path of dataDir's AddressFile.
func AddressPath(dataDir string) string { return filepath.Join(dataDir, "run", AddressFile) }

// TokenPath is the path of dataDir's TokenFile.
func TokenPath(dataDir string) string { return filepath.Join(dataDir, TokenFile) }

// ReadAddress returns the admin API's URL from dataDir's AddressFile. An error reading the file is
// returned as it is (os.ErrNotExist when no node ever ran there).
func ReadAddress(dataDir string) (string, error) {
	p := AddressPath(dataDir)
	b, err := os.ReadFile(p)
	if err != nil {
		return "", err
	}
	var addr Address
	if err := json.Unmarshal(b, &addr); err != nil || addr.URL == "" {
		return "", fmt.Errorf("%s: not an admin address file", p)
	}
	return addr.URL, nil
}

// Error is an answer of the admin API other than 2xx, with the API's message.
type Error struct {
	Method, Path string
	Status       int
	Message      string
	// Problems are the problems of a definition the API refused, each placed; nil for other errors.
	Problems []Problem
}

func (e *Error) Error() string {
	switch {
	case e.Status == http.StatusUnauthorized:
		return "the node refused the admin token"
	case e.Status >= 500:
		return fmt.Sprintf("the node failed: %s (HTTP %d)", e.Message, e.Status)
	}
	return e.Message
}

// StatusOf is the status of the *Error in err's chain, or 0.
func StatusOf(err error) int {
	var e *Error
	if errors.As(err, &e) {
		return e.Status
	}
	return 0
}

// Client calls a node's admin API with a bearer token. Its fields are set before the first call.
type Client struct {
	// BaseURL is the admin API's URL, such as http://127.0.0.1:8081.
	BaseURL string
	// Token is the admin bearer token.
	Token string
	// HTTP sends the requests; nil: a client of net/http's defaults. Its Timeout is replaced by the
	// call's (Timeout, UploadTimeout, InvokeTimeout, none for log followers).
	HTTP *http.Client
	// Timeout, UploadTimeout and InvokeTimeout bound calls, uploads of bundles and invocations;
	// zero: DefaultTimeout, DefaultUploadTimeout, DefaultInvokeTimeout.
	Timeout, UploadTimeout, InvokeTimeout time.Duration
}

// New returns a client of the admin API at baseURL.
func New(baseURL, token string) *Client {
	return &Client{BaseURL: strings.TrimSuffix(baseURL, "/"), Token: token}
}

// httpClient is c.HTTP with timeout.
func (c *Client) httpClient(timeout time.Duration) *http.Client {
	var hc http.Client
	if c.HTTP != nil {
		hc = *c.HTTP
	}
	hc.Timeout = timeout
	return &hc
}

func orDefault(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

// Reachable checks that the node answers /healthz (with any status), within HealthTimeout.
func (c *Client) Reachable(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.BaseURL+"/healthz", nil)
	if err != nil {
		return err
	}
	resp, err := c.httpClient(HealthTimeout).Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return err
	}
	resp.Body.Close()
	return nil
}

// NewRequest makes a request to the admin API carrying the client's token. path may hold a query.
func (c *Client) NewRequest(ctx context.Context, method, path string, body io.Reader, contentType string) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.BaseURL+path, body)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.Token)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	return req, nil
}

// Send sends req, bounded by timeout (0: none). An answer other than 2xx becomes an *Error with the
// API's message; the caller closes the body of a 2xx answer.
//
// A GET or HEAD answered 503 with Retry-After (a node whose token store is between leaders while a
// cluster forms, for one) is sent again after the time it asks, up to RetryUnavailable times, each
// wait at most 5 s: a request that only reads may be sent twice.
func (c *Client) Send(req *http.Request, timeout time.Duration) (*http.Response, error) {
	hc := c.httpClient(timeout)
	resp, err := hc.Do(req)
	for tries := 0; err == nil && tries < RetryUnavailable && (req.Method == http.MethodGet || req.Method == http.MethodHead); tries++ {
		wait, ok := retryAfter(resp)
		if !ok {
			break
		}
		io.Copy(io.Discard, io.LimitReader(resp.Body, maxErrorBytes))
		resp.Body.Close()
		select {
		case <-req.Context().Done():
			return nil, fmt.Errorf("calling the admin API: %w", req.Context().Err())
		case <-time.After(wait):
		}
		resp, err = hc.Do(req)
	}
	if err != nil {
		return nil, fmt.Errorf("calling the admin API: %w", err)
	}
	if resp.StatusCode/100 == 2 {
		return resp, nil
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBytes))
	var e ProblemsView // an ErrorBody, with the problems of a refused definition when there are any
	if json.Unmarshal(data, &e) != nil || e.Message == "" {
		e.Message = strings.TrimSpace(string(data))
	}
	if e.Message == "" {
		e.Message = http.StatusText(resp.StatusCode)
	}
	return nil, &Error{Method: req.Method, Path: req.URL.Path, Status: resp.StatusCode, Message: e.Message, Problems: e.Problems}
}

// Do sends a request bounded by the client's Timeout; see Send.
func (c *Client) Do(ctx context.Context, method, path string, body io.Reader, contentType string) (*http.Response, error) {
	req, err := c.NewRequest(ctx, method, path, body, contentType)
	if err != nil {
		return nil, err
	}
	return c.Send(req, orDefault(c.Timeout, DefaultTimeout))
}

// DoJSON sends in (when not nil) as JSON, decodes a JSON answer into out (when not nil) and returns
// the answer as it came. An answer other than 2xx is an *Error.
func (c *Client) DoJSON(ctx context.Context, method, path string, in, out any) ([]byte, error) {
	var rd io.Reader
	contentType := ""
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return nil, err
		}
		rd, contentType = bytes.NewReader(b), "application/json"
	}
	resp, err := c.Do(ctx, method, path, rd, contentType)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	return readAnswer(resp, out)
}

// RetryUnavailable is how many times Send sends a GET or HEAD again after a 503 with Retry-After.
const RetryUnavailable = 5

// retryAfter returns how long a 503 answer asks to wait (Retry-After in seconds, at most 5 s), and
// whether it is one.
func retryAfter(resp *http.Response) (time.Duration, bool) {
	if resp.StatusCode != http.StatusServiceUnavailable {
		return 0, false
	}
	secs, err := strconv.Atoi(strings.TrimSpace(resp.Header.Get("Retry-After")))
	if err != nil || secs < 0 {
		return 0, false
	}
	return min(time.Duration(secs)*time.Second, 5*time.Second), true
}

// readAnswer reads a 2xx answer of at most MaxAnswerBytes and decodes it into out (when not nil and
// the answer is not empty).
func readAnswer(resp *http.Response, out any) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(resp.Body, MaxAnswerBytes))
	if err != nil {
		return nil, fmt.Errorf("reading the admin API's answer: %w", err)
	}
	if out != nil && len(data) > 0 {
		if err := json.Unmarshal(data, out); err != nil {
			return nil, fmt.Errorf("%s %s: unexpected answer: %w", resp.Request.Method, resp.Request.URL.Path, err)
		}
	}
	return data, nil
}
