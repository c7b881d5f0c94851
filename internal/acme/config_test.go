package acme

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"go.uber.org/zap"
)

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		wantErr string // "" for none
	}{
		{"directory only", Config{Dir: "/data/acme"}, ""},
		{"everything", Config{Dir: "d", Email: "ops@example.com", CA: "https://acme.example.com/directory",
			HTTPPort: 8080, TLSALPNPort: 8443, DisableHTTPChallenge: true}, ""},
		{"no directory", Config{}, "no storage directory"},
		{"email with a name", Config{Dir: "d", Email: "Ops <ops@example.com>"}, "plain address"},
		{"not an email", Config{Dir: "d", Email: "ops"}, "plain address"},
		{"plain http CA", Config{Dir: "d", CA: "http://acme.example.com/directory"}, "https URL"},
		{"CA without host", Config{Dir: "d", CA: "https:///directory"}, "https URL"},
		{"CA with credentials", Config{Dir: "d", CA: "https://u:p@acme.example.com/directory"}, "https URL"},
		{"negative port", Config{Dir: "d", HTTPPort: -1}, "HTTP challenge port -1"},
		{"port too large", Config{Dir: "d", TLSALPNPort: 70000}, "TLS-ALPN challenge port 70000"},
		{"no challenge left", Config{Dir: "d", DisableHTTPChallenge: true, DisableTLSALPNChallenge: true}, "both challenges"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				if _, err := New(tt.cfg); err != nil {
					t.Fatalf("New() = %v, want nil", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Validate() = %v, want an error containing %q", err, tt.wantErr)
			}
			if _, err := New(tt.cfg); err == nil {
				t.Fatal("New accepted a config Validate refuses")
			}
		})
	}
}

func TestNewDefaultsToLetsEncrypt(t *testing.T) {
	m, err := New(Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if m.cfg.CA != LetsEncrypt {
		t.Errorf("CA = %q, want %q", m.cfg.CA, LetsEncrypt)
	}
}

func TestCanonicalName(t *testing.T) {
	tests := []struct {
		in, want string // want "" for an invalid name
		errHas   string
	}{
		{"shop.example.com", "shop.example.com", ""},
		{"Shop.Example.COM.", "shop.example.com", ""},
		{"  api.example.com ", "api.example.com", ""},
		{"xn--bcher-kva.example", "xn--bcher-kva.example", ""},
		{"a-b.c-d.example", "a-b.c-d.example", ""},
		{"", "", "empty"},
		{"*.example.com", "", "DNS-01"},
		{"a.*.example.com", "", "DNS-01"},
		{"192.0.2.1", "", "IP address"},
		{"[2001:db8::1]", "", "IP address"},
		{"com", "", "single label"},
		{"localhost", "", "single label"},
		{"app.localhost", "", "not a public name"},
		{"printer.local", "", "not a public name"},
		{"db.internal", "", "not a public name"},
		{"nas.home.arpa", "", "not a public name"},
		{"shop..example.com", "", "empty label"},
		{"-shop.example.com", "", "hyphen"},
		{"shop-.example.com", "", "hyphen"},
		{"sh_op.example.com", "", `'_'`},
		{"bücher.example", "", "xn--"},
		{"example.123", "", "all-digit"},
		{strings.Repeat("a", 64) + ".example.com", "", "longer than 63"},
		{strings.Repeat("abcdefghi.", 26) + "com", "", "longer than 253"},
	}
	for _, tt := range tests {
		got, err := canonicalName(tt.in)
		if tt.want != "" {
			if err != nil || got != tt.want {
				t.Errorf("canonicalName(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
			}
			continue
		}
		if !errors.Is(err, ErrInvalidName) || !strings.Contains(err.Error(), tt.errHas) {
			t.Errorf("canonicalName(%q) error = %v; want ErrInvalidName mentioning %q", tt.in, err, tt.errHas)
		}
	}
}

func TestZapLoggerWritesToSlog(t *testing.T) {
	var buf bytes.Buffer
	h := slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo})
	zl := zapLogger(h).Named("obtain").With(zap.String("ca", "pebble"))
	zl.Debug("dropped: below the handler's level")
	zl.Info("certificate obtained", zap.String("identifier", "shop.example.test"), zap.Int("attempt", 2),
		zap.Strings("names", []string{"a", "b"}))
	zl.Warn("renewal soon", zap.Error(errors.New("boom")))
	zl.Error("failed")

	var records []map[string]any
	for line := range strings.SplitSeq(strings.TrimSpace(buf.String()), "\n") {
		var r map[string]any
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("%q: %v", line, err)
		}
		records = append(records, r)
	}
	if len(records) != 3 {
		t.Fatalf("%d records, want 3:\n%s", len(records), buf.String())
	}
	want := []map[string]any{
		{"level": "INFO", "msg": "certificate obtained", "logger": "obtain", "ca": "pebble",
			"identifier": "shop.example.test", "attempt": float64(2), "names": []any{"a", "b"}},
		{"level": "WARN", "msg": "renewal soon", "logger": "obtain", "ca": "pebble", "error": "boom"},
		{"level": "ERROR", "msg": "failed", "logger": "obtain", "ca": "pebble"},
	}
	for i, w := range want {
		for k, v := range w {
			if got, _ := json.Marshal(records[i][k]); string(got) != mustJSON(t, v) {
				t.Errorf("record %d: %s = %s, want %s", i, k, got, mustJSON(t, v))
			}
		}
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
