package runtimes

import (
	"encoding/binary"
	"net/http"
	"reflect"
	"testing"
)

func encodeRequest(r HTTPRequest) []byte {
	b := appendStr(nil, r.Method)
	b = appendStr(b, r.URL)
	n := 0
	for _, vs := range r.Header {
		n += len(vs)
	}
	b = binary.LittleEndian.AppendUint32(b, uint32(n))
	for k, vs := range r.Header {
		for _, v := range vs {
			b = appendStr(appendStr(b, k), v)
		}
	}
	return append(b, r.Body...)
}

func TestHTTPEncoding(t *testing.T) {
	want := HTTPRequest{Method: "POST", URL: "http://127.0.0.1:9000/x?y=1", Header: http.Header{"A": {"1", "2"}, "B": {""}}, Body: []byte("\x00\xffbody")}
	got, err := decodeHTTPRequest(encodeRequest(want))
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("decoded %+v (%v), want %+v", got, err, want)
	}
	if _, err := decodeHTTPRequest([]byte{5, 0, 'G'}); err == nil {
		t.Error("a truncated request decoded")
	}
	// A response: the head, then the body, which follows it in guest memory.
	head := encodeHTTPHead(HTTPResponse{Status: 201, Header: http.Header{"X-Echo": {"e"}}})
	if status := binary.LittleEndian.Uint32(head); status != 201 {
		t.Errorf("status %d", status)
	}
	if fields := binary.LittleEndian.Uint32(head[4:]); fields != 1 || string(head[8:]) != "\x06\x00X-Echo\x01\x00e" {
		t.Errorf("head %q", head)
	}
}

// FuzzDecodeHTTPRequest: decoding any bytes never panics, and what decodes encodes back to the same
// request.
func FuzzDecodeHTTPRequest(f *testing.F) {
	f.Add(encodeRequest(HTTPRequest{Method: "GET", URL: "http://a/"}))
	f.Add(encodeRequest(HTTPRequest{Method: "PUT", URL: "https://b:1/c", Header: http.Header{"K": {"v"}}, Body: []byte("x")}))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := decodeHTTPRequest(b)
		if err != nil {
			return
		}
		again, err := decodeHTTPRequest(encodeRequest(r))
		if err != nil || again.Method != r.Method || again.URL != r.URL || string(again.Body) != string(r.Body) || len(again.Header) != len(r.Header) {
			t.Fatalf("%+v re-decoded as %+v (%v)", r, again, err)
		}
	})
}
