package outbound

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
)

// BenchmarkDo compares a call through the client (URL check, allow-list, address check, dial from the
// context, whole-body read) with the same call through a plain http.Client, both on a kept-alive
// loopback connection with a 1 KiB response.
func BenchmarkDo(b *testing.B) {
	payload := make([]byte, 1024)
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write(payload) }))
	defer s.Close()
	c, err := New(Config{})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	allow := allowList(b, s.URL)
	b.Run("outbound", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			resp, err := c.Do(context.Background(), "fn", allow, Request{URL: s.URL + "/x"})
			if err != nil || len(resp.Body) != len(payload) {
				b.Fatal(err)
			}
		}
	})
	b.Run("native", func(b *testing.B) {
		b.ReportAllocs()
		hc := &http.Client{Transport: &http.Transport{}}
		defer hc.CloseIdleConnections()
		for b.Loop() {
			resp, err := hc.Get(s.URL + "/x")
			if err != nil {
				b.Fatal(err)
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil || len(body) != len(payload) {
				b.Fatal(err)
			}
		}
	})
}
