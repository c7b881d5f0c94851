package adminapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// serve answers every request with handler, after checking the token.
func serve(t *testing.T, handler http.HandlerFunc) *Client {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer gh.admin.t" {
			w.WriteHeader(http.StatusUnauthorized)
			json.NewEncoder(w).Encode(ErrorBody{Message: "Unauthorized"})
			return
		}
		handler(w, r)
	}))
	t.Cleanup(srv.Close)
	return New(srv.URL+"/", "gh.admin.t")
}

func TestErrors(t *testing.T) {
	for _, tt := range []struct {
		name, body string
		status     int
		want       string
	}{
		{"message", `{"message":"no function \"x\""}`, 404, `no function "x"`},
		{"not JSON", "plain words\n", 409, "plain words"},
		{"empty", "", 400, "Bad Request"},
		{"server", `{"message":"boom"}`, 500, "the node failed: boom (HTTP 500)"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := serve(t, func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(tt.status)
				io.WriteString(w, tt.body)
			})
			_, raw, err := c.Functions(context.Background())
			var e *Error
			if !errors.As(err, &e) || e.Status != tt.status || err.Error() != tt.want || raw != nil {
				t.Fatalf("error %v (%#v), raw %q", err, e, raw)
			}
			if e.Method != "GET" || e.Path != "/admin/v1/functions" || StatusOf(err) != tt.status {
				t.Fatalf("error %#v", e)
			}
		})
	}
	c := serve(t, nil)
	c.Token = "gh.admin.wrong"
	if err := c.DeleteToken(context.Background(), "x"); StatusOf(err) != 401 || err.Error() != "the node refused the admin token" {
		t.Fatalf("wrong token: %v", err)
	}
	if StatusOf(errors.New("other")) != 0 {
		t.Fatal("StatusOf of a transport error")
	}
}

// TestRetryUnavailable: a GET answered 503 with Retry-After (a token store between leaders) is sent
// again until it is answered; a DELETE, which changes something, is not; a 503 without Retry-After
// is not either, and neither is one past RetryUnavailable tries.
func TestRetryUnavailable(t *testing.T) {
	var mu sync.Mutex
	unavailable, retryAfter, calls := 0, "0", 0
	c := serve(t, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		calls++
		if unavailable > 0 {
			unavailable--
			if retryAfter != "" {
				w.Header().Set("Retry-After", retryAfter)
			}
			w.WriteHeader(http.StatusServiceUnavailable)
			io.WriteString(w, `{"message":"the token store is not available; try again"}`)
			return
		}
		io.WriteString(w, `{}`)
	})
	set := func(n int, after string) {
		mu.Lock()
		defer mu.Unlock()
		unavailable, retryAfter, calls = n, after, 0
	}
	ctx := context.Background()
	set(2, "0")
	if _, _, err := c.Functions(ctx); err != nil || calls != 3 {
		t.Fatalf("a GET after two 503s with Retry-After: %v after %d calls; want it answered on the third", err, calls)
	}
	set(RetryUnavailable+1, "0")
	if _, _, err := c.Functions(ctx); StatusOf(err) != 503 || calls != RetryUnavailable+1 {
		t.Fatalf("a GET past the retries: %v after %d calls; want 503 after %d", err, calls, RetryUnavailable+1)
	}
	set(1, "")
	if _, _, err := c.Functions(ctx); StatusOf(err) != 503 || calls != 1 {
		t.Fatalf("a GET after a 503 without Retry-After: %v after %d calls; want 503 after 1", err, calls)
	}
	set(1, "0")
	if err := c.DeleteToken(ctx, "x"); StatusOf(err) != 503 || calls != 1 {
		t.Fatalf("a DELETE after a 503 with Retry-After: %v after %d calls; want 503 after 1", err, calls)
	}
}

func TestDeployAndTypedAnswers(t *testing.T) {
	bundle := []byte("PK\x03\x04 a bundle")
	c := serve(t, func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if r.Method != "POST" || r.URL.Path != "/admin/v1/functions" || r.ContentLength != int64(len(bundle)) ||
			!bytes.Equal(body, bundle) || r.Header.Get("Content-Type") != "application/zip" ||
			r.URL.Query().Get("alias") != "prod" || r.URL.Query().Get("description") != "a & b" {
			t.Errorf("request %s %s %d %q", r.Method, r.URL, r.ContentLength, body)
		}
		w.WriteHeader(http.StatusCreated)
		io.WriteString(w, `{"function":"hello","created":true,"version":{"version":4},"alias":{"name":"prod","version":4,"target":"4"}}`)
	})
	out, raw, err := c.Deploy(context.Background(), bytes.NewReader(bundle), int64(len(bundle)), DeployOptions{Alias: "prod", Description: "a & b"})
	if err != nil || !out.Created || out.Version.Version != 4 || out.Alias == nil || out.Alias.Target != "4" || !strings.HasPrefix(string(raw), `{"function":"hello"`) {
		t.Fatalf("%+v %s %v", out, raw, err)
	}
}

func TestInvoke(t *testing.T) {
	for _, tt := range []struct {
		name, header, body string
		want               *FunctionError
	}{
		{"ok", "", `{"hi":1}`, nil},
		{"described", "Unhandled", `{"errorType":"E","errorMessage":"m","stackTrace":["f"]}`, &FunctionError{ErrorType: "E", ErrorMessage: "m", StackTrace: []string{"f"}}},
		{"undescribed", "Unhandled", "crashed\n", &FunctionError{ErrorType: "Unhandled", ErrorMessage: "crashed"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := serve(t, func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path != "/admin/v1/functions/a%2Fb/invocations" && r.URL.RawPath != "/admin/v1/functions/a%2Fb/invocations" {
					t.Errorf("path %s", r.URL.EscapedPath())
				}
				if r.URL.Query().Get("qualifier") != "prod" || r.Header.Get("Content-Type") != "application/json" {
					t.Errorf("query %s, content type %s", r.URL.RawQuery, r.Header.Get("Content-Type"))
				}
				w.Header().Set(HeaderExecutedVersion, "3")
				if tt.header != "" {
					w.Header().Set(HeaderFunctionError, tt.header)
				}
				io.WriteString(w, tt.body)
			})
			inv, err := c.Invoke(context.Background(), "a/b", "prod", []byte(`{}`))
			if err != nil || inv.Version != 3 || string(inv.Output) != tt.body {
				t.Fatalf("%+v %v", inv, err)
			}
			if got, _ := json.Marshal(inv.Error); tt.want == nil && inv.Error != nil || tt.want != nil && (inv.Error == nil || string(got) != mustJSON(tt.want)) {
				t.Fatalf("function error %s, want %+v", got, tt.want)
			}
		})
	}
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func TestReachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	if err := New("http://"+addr, "t").Reachable(context.Background()); err == nil || strings.Contains(err.Error(), "Get ") {
		t.Fatalf("a closed port: %v (want the dial error alone)", err)
	}
	c := serve(t, func(w http.ResponseWriter, r *http.Request) {})
	if err := c.Reachable(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestReadAddress(t *testing.T) {
	dir := t.TempDir()
	if _, err := ReadAddress(dir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("no file: %v", err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "run"), 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(AddressPath(dir), []byte(`{"url":""}`), 0o600)
	if _, err := ReadAddress(dir); err == nil || !strings.Contains(err.Error(), "not an admin address file") {
		t.Fatalf("empty url: %v", err)
	}
	b, _ := json.Marshal(Address{URL: "http://127.0.0.1:8081"})
	os.WriteFile(AddressPath(dir), b, 0o600)
	if url, err := ReadAddress(dir); err != nil || url != "http://127.0.0.1:8081" {
		t.Fatalf("%q %v", url, err)
	}
}
