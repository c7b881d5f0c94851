package stackfile

import (
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"gatehouse.dev/gatehouse/internal/spec"
)

// A setting added to a spec type is read from stack files by its type, with no decoder code.
func TestDecodeRest(t *testing.T) {
	type settings struct {
		Name    string            `json:"name"`
		On      bool              `json:"on,omitempty"`
		Count   int               `json:"count"`
		Ratio   float64           `json:"ratio"`
		Wait    spec.Duration     `json:"wait"`
		Tags    []string          `json:"tags"`
		Labels  map[string]string `json:"labels"`
		Skipped string            `json:"-"`
		Own     string            `json:"own"`
	}
	if got := keysOf(settings{}, "extra"); !slices.Equal(got, []string{"extra", "name", "on", "count", "ratio", "wait", "tags", "labels", "own"}) {
		t.Errorf("keysOf = %q", got)
	}
	doc := "name: x\non: true\ncount: 3\nratio: 1.5\nwait: 2s\ntags: [a, b]\nlabels: {k: v}\nown: mine\n"
	d, root, err := newDecoder("s.yaml", []byte(doc), "", definitionFormat)
	if err != nil {
		t.Fatal(err)
	}
	f, err := d.Fields(nil, root, keysOf(settings{})...)
	if err != nil {
		t.Fatal(err)
	}
	var s settings
	if err := d.decodeRest(nil, f, &s, "own"); err != nil {
		t.Fatal(err)
	}
	want := settings{Name: "x", On: true, Count: 3, Ratio: 1.5, Wait: spec.Duration(2 * time.Second), Tags: []string{"a", "b"}, Labels: map[string]string{"k": "v"}}
	if !reflect.DeepEqual(s, want) {
		t.Errorf("decoded %+v, want %+v", s, want)
	}
	// Errors are the decoder's, placed.
	d, root, _ = newDecoder("s.yaml", []byte("count: many\n"), "", definitionFormat)
	f, _ = d.Fields(nil, root, keysOf(settings{})...)
	if err := d.decodeRest(nil, f, &s); err == nil || err.Error() != `s.yaml:1:8: count: want a whole number, got the string "many"` {
		t.Errorf("got %v", err)
	}
}

// Every field of the spec types the decoder reads generically has a type it can read.
func TestDecodeRestCoversSpec(t *testing.T) {
	supported := func(ft reflect.Type) bool {
		switch {
		case ft == reflect.TypeFor[spec.Duration]():
			return true
		case ft.Kind() == reflect.Slice:
			return ft.Elem().Kind() == reflect.String
		case ft.Kind() == reflect.Map:
			return ft.Key().Kind() == reflect.String && ft.Elem().Kind() == reflect.String
		}
		switch ft.Kind() {
		case reflect.String, reflect.Bool, reflect.Int, reflect.Float64:
			return true
		}
		return false
	}
	for _, c := range []struct {
		v       any
		handled []string
	}{
		{spec.Route{}, []string{"integration", "authorization", "request", "cache"}},
		{spec.Stage{}, []string{"throttle", "routeThrottles", "accessLog", "cache"}},
		{spec.API{}, []string{"stages", "routes", "limits", "cors", "authorizers", "minimumCompressionSize", "models", "gatewayResponses", "resourcePolicy"}},
	} {
		rt := reflect.TypeOf(c.v)
		for i := range rt.NumField() {
			f := rt.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name == "" || name == "-" || slices.Contains(c.handled, name) {
				continue
			}
			if !supported(f.Type) {
				t.Errorf("%s.%s (%s) has no generic decoder: handle it in the decoder", rt.Name(), f.Name, f.Type)
			}
		}
	}
}
