package tlsconf

import (
	"crypto/tls"
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestPolicyApply(t *testing.T) {
	tests := []struct {
		name       string
		policy     Policy
		wantMin    uint16
		wantSuites []uint16
	}{
		{"zero value is TLS_1_2", "", tls.VersionTLS12, tls12Suites},
		{"TLS_1_2", PolicyTLS12, tls.VersionTLS12, tls12Suites},
		{"TLS_1_3", PolicyTLS13, tls.VersionTLS13, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := &tls.Config{CipherSuites: []uint16{tls.TLS_RSA_WITH_AES_128_CBC_SHA}, ServerName: "kept"}
			if err := tt.policy.Apply(cfg); err != nil {
				t.Fatal(err)
			}
			if cfg.MinVersion != tt.wantMin || !slices.Equal(cfg.CipherSuites, tt.wantSuites) || cfg.ServerName != "kept" {
				t.Fatalf("got min %x suites %v server name %q", cfg.MinVersion, cfg.CipherSuites, cfg.ServerName)
			}
		})
	}

	t.Run("TLS_1_2 suites are ECDHE with AEAD only", func(t *testing.T) {
		for _, id := range tls12Suites {
			name := tls.CipherSuiteName(id)
			if !strings.HasPrefix(name, "TLS_ECDHE_") || !(strings.Contains(name, "_GCM_") || strings.Contains(name, "CHACHA20")) {
				t.Errorf("suite %s is not ECDHE with an AEAD cipher", name)
			}
		}
	})

	t.Run("the suite list is a copy", func(t *testing.T) {
		cfg := &tls.Config{}
		if err := PolicyTLS12.Apply(cfg); err != nil {
			t.Fatal(err)
		}
		cfg.CipherSuites[0] = 0
		if tls12Suites[0] == 0 {
			t.Fatal("Apply shared the package's suite list")
		}
	})

	t.Run("unknown policy", func(t *testing.T) {
		cfg := &tls.Config{}
		err := Policy("TLS_1_0").Apply(cfg)
		if !errors.Is(err, ErrUnknownPolicy) {
			t.Fatalf("got %v, want ErrUnknownPolicy", err)
		}
		for _, want := range []string{`"TLS_1_0"`, "TLS_1_2", "TLS_1_3"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not mention %s", err, want)
			}
		}
		if cfg.MinVersion != 0 {
			t.Error("Apply changed the config of an unknown policy")
		}
	})

	t.Run("nil config", func(t *testing.T) {
		if err := PolicyTLS13.Apply(nil); err == nil {
			t.Fatal("no error for a nil config")
		}
	})
}

// TestPolicyHandshakes runs real handshakes against servers with each policy.
func TestPolicyHandshakes(t *testing.T) {
	ca := newTestCA(t, "Policy CA")
	leaf := ca.issue(t, leafOpts{dns: []string{"policy.test"}})
	roots := ca.pool()

	server := func(p Policy) *tlsServer {
		cfg := &tls.Config{Certificates: []tls.Certificate{*leaf.tls}}
		if err := p.Apply(cfg); err != nil {
			t.Fatal(err)
		}
		return startTLSServer(t, cfg)
	}
	tls12, tls13 := server(PolicyTLS12), server(PolicyTLS13)

	tests := []struct {
		name        string
		server      *tlsServer
		client      *tls.Config
		wantVersion uint16 // 0: the handshake must fail
	}{
		{"TLS_1_3 refuses a TLS 1.2-only client", tls13, &tls.Config{MaxVersion: tls.VersionTLS12}, 0},
		{"TLS_1_3 accepts TLS 1.3", tls13, &tls.Config{}, tls.VersionTLS13},
		{"TLS_1_2 accepts TLS 1.3", tls12, &tls.Config{}, tls.VersionTLS13},
		{"TLS_1_2 accepts TLS 1.2 with an AEAD suite", tls12, &tls.Config{MaxVersion: tls.VersionTLS12}, tls.VersionTLS12},
		{"TLS_1_2 refuses TLS 1.1", tls12, &tls.Config{MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11}, 0},
		{"TLS_1_2 refuses a CBC-only client", tls12, &tls.Config{MaxVersion: tls.VersionTLS12,
			CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA, tls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA}}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := tt.client.Clone()
			cfg.RootCAs, cfg.ServerName = roots, "policy.test"
			cs, err := dial(tt.server.addr, cfg)
			srvErr := tt.server.lastHandshake(t)
			if tt.wantVersion == 0 {
				if err == nil {
					t.Fatalf("handshake succeeded with %s", tls.VersionName(cs.Version))
				}
				if !isRemoteAlert(err) {
					t.Fatalf("client error %v is not a TLS alert from the server", err)
				}
				if srvErr == nil {
					t.Fatal("the server reports a successful handshake")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if cs.Version != tt.wantVersion {
				t.Fatalf("version %s, want %s", tls.VersionName(cs.Version), tls.VersionName(tt.wantVersion))
			}
			if cs.Version == tls.VersionTLS12 && !slices.Contains(tls12Suites, cs.CipherSuite) {
				t.Fatalf("negotiated %s", tls.CipherSuiteName(cs.CipherSuite))
			}
		})
	}
}
