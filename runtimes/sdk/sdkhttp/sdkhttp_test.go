package sdkhttp

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
)

// Run natively, a function's requests go out through the process's own network.
func TestNativeRoundTrip(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("native")) }))
	defer srv.Close()
	resp, err := Client().Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if b, _ := io.ReadAll(resp.Body); string(b) != "native" {
		t.Errorf("got %q", b)
	}
}

func TestDecodeResponse(t *testing.T) {
	b := binary.LittleEndian.AppendUint32(nil, 202)
	b = binary.LittleEndian.AppendUint32(b, 2)
	b = appendStr(appendStr(b, "X-A"), "1")
	b = appendStr(appendStr(b, "X-A"), "2")
	b = append(b, "\x00body"...)
	req, _ := http.NewRequest("GET", "http://x/", nil)
	resp, err := decodeResponse(req, b)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 202 || resp.Status != "202 Accepted" || len(resp.Header["X-A"]) != 2 || string(body) != "\x00body" || resp.ContentLength != 5 {
		t.Errorf("decoded %+v %q", resp, body)
	}
	for _, bad := range [][]byte{nil, b[:6], b[:12], append(binary.LittleEndian.AppendUint32(nil, 200), 0xff, 0xff, 0xff, 0x7f)} {
		if _, err := decodeResponse(req, bad); err == nil {
			t.Errorf("%q decoded", bad)
		}
	}
}

func TestStatusErrors(t *testing.T) {
	for status, want := range map[uint32]error{
		statusNotAllowed: ErrNotAllowed, statusTooLarge: ErrTooLarge, statusLimit: ErrLimit,
		statusTimeout: context.DeadlineExceeded, statusUnavailable: ErrUnavailable,
	} {
		if err := statusError(status, []byte("why")); !errors.Is(err, want) {
			t.Errorf("status %d: %v, want %v", status, err, want)
		}
	}
	if err := statusError(statusNotAllowed, []byte("add it")); err.Error() != "outbound request not allowed: add it" {
		t.Errorf("message %q", err)
	}
}
