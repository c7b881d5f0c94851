package gateway

import (
	"maps"
	"testing"
)

var corsListed = &CORS{
	AllowOrigins:  []string{"https://app.example.com", "http://localhost:3000"},
	AllowMethods:  []string{"GET", "POST", "DELETE"},
	AllowHeaders:  []string{"content-type", "authorization"},
	ExposeHeaders: []string{"x-request-id", "x-total"},
	MaxAge:        600,
}

var corsListedCredentials = &CORS{
	AllowOrigins:     []string{"https://app.example.com"},
	AllowMethods:     []string{"*"},
	AllowHeaders:     []string{"*"},
	MaxAge:           CORSMaxAgeUnset,
	AllowCredentials: true,
}

var corsAny = &CORS{
	AllowOrigins: []string{"*"},
	AllowMethods: []string{"*"},
	AllowHeaders: []string{"*"},
	MaxAge:       0,
}

func TestCORSValidate(t *testing.T) {
	valid := []*CORS{
		nil,
		{},
		corsListed,
		corsListedCredentials,
		corsAny,
		{AllowOrigins: []string{"null"}, MaxAge: 86400},
		{MaxAge: -1, AllowMethods: []string{"PATCH", "PROPFIND"}, ExposeHeaders: []string{"*"}},
	}
	for _, c := range valid {
		if err := c.Validate(); err != nil {
			t.Errorf("%+v: %v", c, err)
		}
	}
	invalid := []struct {
		c    *CORS
		want string // the whole message, or "" to only want an error
	}{
		{&CORS{AllowOrigins: []string{"https://a.example", "*"}, AllowCredentials: true},
			"allow-credentials is not supported if 'allow-origin' is *"},
		{&CORS{MaxAge: -2}, ""},
		{&CORS{MaxAge: 86401}, ""},
		{&CORS{AllowMethods: []string{"GET POST"}}, ""},
		{&CORS{AllowMethods: []string{""}}, ""},
		{&CORS{AllowMethods: []string{"GET,POST"}}, ""},
		{&CORS{AllowHeaders: []string{"x-a:b"}}, ""},
		{&CORS{ExposeHeaders: []string{"x a"}}, ""},
		{&CORS{AllowOrigins: []string{""}}, ""},
		{&CORS{AllowOrigins: []string{"https://a.example, https://b.example"}}, ""},
		{&CORS{AllowOrigins: []string{"https://a.example\n"}}, ""},
	}
	for _, c := range invalid {
		err := c.c.Validate()
		switch {
		case err == nil:
			t.Errorf("%+v: no error", c.c)
		case c.want != "" && err.Error() != c.want:
			t.Errorf("%+v: error %q, want %q", c.c, err, c.want)
		}
	}
}

func TestCORSPreflight(t *testing.T) {
	cases := []struct {
		name                                  string
		c                                     *CORS
		method, origin, reqMethod, reqHeaders string
		preflight                             bool
		want                                  map[string]string
	}{
		{
			name: "listed origin", c: corsListed,
			method: "OPTIONS", origin: "https://app.example.com", reqMethod: "POST", reqHeaders: "content-type",
			preflight: true,
			want: map[string]string{
				"access-control-allow-origin":  "https://app.example.com",
				"access-control-allow-methods": "GET,POST,DELETE",
				"access-control-allow-headers": "content-type,authorization",
				"access-control-max-age":       "600",
				"vary":                         "Origin",
			},
		},
		{
			name: "origin case differs: echoed as sent", c: corsListed,
			method: "OPTIONS", origin: "HTTPS://App.Example.COM", reqMethod: "GET",
			preflight: true,
			want: map[string]string{
				"access-control-allow-origin":  "HTTPS://App.Example.COM",
				"access-control-allow-methods": "GET,POST,DELETE",
				"access-control-allow-headers": "content-type,authorization",
				"access-control-max-age":       "600",
				"vary":                         "Origin",
			},
		},
		{
			name: "unlisted origin: 204 without CORS headers", c: corsListed,
			method: "OPTIONS", origin: "https://evil.example", reqMethod: "POST",
			preflight: true, want: nil,
		},
		{
			name: "other port is another origin", c: corsListed,
			method: "OPTIONS", origin: "http://localhost:3001", reqMethod: "GET",
			preflight: true, want: nil,
		},
		{
			name: "no Access-Control-Request-Method: not a preflight", c: corsListed,
			method: "OPTIONS", origin: "https://app.example.com",
			preflight: false,
		},
		{
			name: "no Origin: not a preflight", c: corsListed,
			method: "OPTIONS", reqMethod: "GET",
			preflight: false,
		},
		{
			name: "not OPTIONS: not a preflight", c: corsListed,
			method: "GET", origin: "https://app.example.com", reqMethod: "GET",
			preflight: false,
		},
		{
			name: "no CORS configuration: OPTIONS is routed", c: nil,
			method: "OPTIONS", origin: "https://app.example.com", reqMethod: "GET",
			preflight: false,
		},
		{
			name: "any origin, wildcard headers echo the request's", c: corsAny,
			method: "OPTIONS", origin: "https://whoever.example", reqMethod: "PUT", reqHeaders: "X-Custom, Content-Type",
			preflight: true,
			want: map[string]string{
				"access-control-allow-origin":  "*",
				"access-control-allow-methods": "*",
				"access-control-allow-headers": "X-Custom, Content-Type",
				"access-control-max-age":       "0",
			},
		},
		{
			name: "wildcard headers, none requested", c: corsAny,
			method: "OPTIONS", origin: "null", reqMethod: "GET",
			preflight: true,
			want: map[string]string{
				"access-control-allow-origin":  "*",
				"access-control-allow-methods": "*",
				"access-control-max-age":       "0",
			},
		},
		{
			name: "credentials: origin echoed, no max-age", c: corsListedCredentials,
			method: "OPTIONS", origin: "https://app.example.com", reqMethod: "DELETE", reqHeaders: "authorization",
			preflight: true,
			want: map[string]string{
				"access-control-allow-origin":      "https://app.example.com",
				"access-control-allow-methods":     "*",
				"access-control-allow-headers":     "authorization",
				"access-control-allow-credentials": "true",
				"vary":                             "Origin",
			},
		},
		{
			name:   "credentials with * (refused by Validate): origin echoed",
			c:      &CORS{AllowOrigins: []string{"*"}, AllowCredentials: true, MaxAge: -1},
			method: "OPTIONS", origin: "https://x.example", reqMethod: "GET",
			preflight: true,
			want: map[string]string{
				"access-control-allow-origin":      "https://x.example",
				"access-control-allow-credentials": "true",
				"vary":                             "Origin",
			},
		},
		{
			name: "nothing configured but origins", c: &CORS{AllowOrigins: []string{"https://a.example"}, MaxAge: -1},
			method: "OPTIONS", origin: "https://a.example", reqMethod: "GET", reqHeaders: "x-y",
			preflight: true,
			want: map[string]string{
				"access-control-allow-origin": "https://a.example",
				"vary":                        "Origin",
			},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			pre, h := c.c.Preflight(c.method, c.origin, c.reqMethod, c.reqHeaders)
			if pre != c.preflight {
				t.Fatalf("preflight = %v, want %v", pre, c.preflight)
			}
			if !maps.Equal(h, c.want) || (h == nil) != (c.want == nil) {
				t.Errorf("headers\n got %v\nwant %v", h, c.want)
			}
		})
	}
}

func TestCORSHeaders(t *testing.T) {
	cases := []struct {
		name   string
		c      *CORS
		origin string
		want   map[string]string
	}{
		{"listed", corsListed, "http://localhost:3000", map[string]string{
			"access-control-allow-origin":   "http://localhost:3000",
			"access-control-expose-headers": "x-request-id,x-total",
			"vary":                          "Origin",
		}},
		{"listed, other case", corsListed, "HTTP://LOCALHOST:3000", map[string]string{
			"access-control-allow-origin":   "HTTP://LOCALHOST:3000",
			"access-control-expose-headers": "x-request-id,x-total",
			"vary":                          "Origin",
		}},
		{"unlisted", corsListed, "https://evil.example", nil},
		{"listed origin with a path is another string", corsListed, "https://app.example.com/", nil},
		{"no origin", corsListed, "", nil},
		{"no origin, any allowed", corsAny, "", nil},
		{"any", corsAny, "https://whoever.example", map[string]string{
			"access-control-allow-origin": "*",
		}},
		{"credentials", corsListedCredentials, "https://app.example.com", map[string]string{
			"access-control-allow-origin":      "https://app.example.com",
			"access-control-allow-credentials": "true",
			"vary":                             "Origin",
		}},
		{"nil configuration", nil, "https://app.example.com", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := c.c.Headers(c.origin)
			if !maps.Equal(h, c.want) || (h == nil) != (c.want == nil) {
				t.Errorf("headers\n got %v\nwant %v", h, c.want)
			}
		})
	}
}

func TestCORSDependsOnOrigin(t *testing.T) {
	for _, c := range []struct {
		c    *CORS
		want bool
	}{
		{nil, false},
		{corsAny, false},
		{corsListed, true},
		{corsListedCredentials, true},
		{&CORS{}, false}, // no origin allowed: the same answer for every Origin
	} {
		if got := c.c.DependsOnOrigin(); got != c.want {
			t.Errorf("%+v: DependsOnOrigin = %v, want %v", c.c, got, c.want)
		}
	}
}

func TestIsCORSHeader(t *testing.T) {
	for name, want := range map[string]bool{
		"access-control-allow-origin":      true,
		"Access-Control-Allow-Origin":      true,
		"ACCESS-CONTROL-EXPOSE-HEADERS":    true,
		"access-control-allow-credentials": true,
		"access-control-max-age":           true,
		"Access-Control-Allow-Methods":     true,
		"access-control-":                  true,
		"access-control":                   false,
		"vary":                             false,
		"content-type":                     false,
		"x-access-control-allow-origin":    false,
		"":                                 false,
	} {
		if got := IsCORSHeader(name); got != want {
			t.Errorf("IsCORSHeader(%q) = %v, want %v", name, got, want)
		}
	}
}
