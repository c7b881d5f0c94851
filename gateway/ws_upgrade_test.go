package gateway

import (
	"encoding/base64"
	"reflect"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"
)

func TestCollectValues(t *testing.T) {
	tests := []struct {
		name  string
		query string
		want  map[string][]string
	}{
		{"none", "", nil},
		{"one", "a=1", map[string][]string{"a": {"1"}}},
		{"repeated", "a=1&b=&a=2&c=3&a=", map[string][]string{"a": {"1", "2", ""}, "b": {""}, "c": {"3"}}},
		{"escaped", "x%20y=%3D&x%20y=z", map[string][]string{"x y": {"=", "z"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var args fasthttp.Args
			args.Parse(tc.query)
			got := collectValues(args.VisitAll)
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("collectValues(%q) = %q, want %q", tc.query, got, tc.want)
			}
			// Appending to one name's values must not change another's.
			for name := range got {
				got[name] = append(got[name], "appended")
			}
			for name, vs := range tc.want {
				if !reflect.DeepEqual(got[name][:len(vs)], vs) {
					t.Errorf("after appending: %s = %q, want %q first", name, got[name], vs)
				}
			}
		})
	}

	var h fasthttp.RequestHeader
	h.Set("Host", "example.com")
	h.Add("X-Tag", "a")
	h.Add("X-Tag", "b")
	h.Set("User-Agent", "ua")
	got := collectValues(h.VisitAll)
	want := map[string][]string{"Host": {"example.com"}, "X-Tag": {"a", "b"}, "User-Agent": {"ua"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("headers: %q, want %q", got, want)
	}
}

func TestWSValidKey(t *testing.T) {
	key := base64.StdEncoding.EncodeToString(make([]byte, 16))
	for _, k := range []string{
		key, " " + key + " ", "dGhlIHNhbXBsZSBub25jZQ==", "", "abc", "dGhlIHNhbXBsZSBub25jZQ", "dGhlIHNhbXBsZSBub25jZQ=",
		base64.StdEncoding.EncodeToString(make([]byte, 15)), base64.StdEncoding.EncodeToString(make([]byte, 17)),
		"dGhlIHNhbXBs\nZSBub25jZQ==", "dGhlIHNhbXBsZSBub25jZQ==" + strings.Repeat("\n", 40), "!!!!!!!!!!!!!!!!!!!!!!==",
	} {
		b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(k))
		want := err == nil && len(b) == 16
		if got := wsValidKey([]byte(k)); got != want {
			t.Errorf("wsValidKey(%q) = %v, want %v", k, got, want)
		}
	}
}
