package tlsconf

import (
	"bytes"
	"crypto/ed25519"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/json"
	"flag"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/ from what the package does")

var (
	oidC  = asn1.ObjectIdentifier{2, 5, 4, 6}
	oidST = asn1.ObjectIdentifier{2, 5, 4, 8}
	oidL  = asn1.ObjectIdentifier{2, 5, 4, 7}
	oidO  = asn1.ObjectIdentifier{2, 5, 4, 10}
	oidOU = asn1.ObjectIdentifier{2, 5, 4, 11}
	oidCN = asn1.ObjectIdentifier{2, 5, 4, 3}
)

// fixedClientCert makes the same certificate on every run: Ed25519 keys from fixed seeds (Ed25519
// signatures are deterministic), a fixed serial number and fixed dates. Its subject lists its
// attributes in the order an OpenSSL -subj "/C=US/ST=Washington/…/CN=client-1" gives them.
func fixedClientCert(t *testing.T) *x509.Certificate {
	t.Helper()
	caKey := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{1}, ed25519.SeedSize))
	clientKey := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{2}, ed25519.SeedSize))
	names := func(pairs ...any) pkix.Name {
		var n pkix.Name
		for i := 0; i < len(pairs); i += 2 {
			n.ExtraNames = append(n.ExtraNames, pkix.AttributeTypeAndValue{Type: pairs[i].(asn1.ObjectIdentifier), Value: pairs[i+1]})
		}
		return n
	}
	ca := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               names(oidC, "US", oidO, "Example Corp", oidCN, "Example Client Root"),
		NotBefore:             time.Date(2019, 1, 1, 0, 0, 0, 0, time.UTC),
		NotAfter:              time.Date(2039, 1, 1, 0, 0, 0, 0, time.UTC),
		KeyUsage:              x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		SubjectKeyId:          []byte{1, 2, 3, 4},
	}
	serial, _ := new(big.Int).SetString("a1b2c3d4e5f60718293a4b5c6d7e8f90", 16)
	leaf := &x509.Certificate{
		SerialNumber: serial,
		Subject: names(oidC, "US", oidST, "Washington", oidL, "Seattle", oidO, "Example, Inc.",
			oidOU, "Security", oidCN, "client-1"),
		NotBefore:   time.Date(2019, 5, 28, 12, 30, 2, 0, time.UTC),
		NotAfter:    time.Date(2021, 8, 5, 9, 36, 4, 0, time.UTC),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(nil, leaf, ca, clientKey.Public(), caKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

// TestClientCertInfoGolden compares the clientCert fields of a fixed certificate with
// testdata/clientcert.golden.json (go test -run ClientCertInfoGolden -update rewrites it).
func TestClientCertInfoGolden(t *testing.T) {
	info := ClientCertInfo(fixedClientCert(t))
	got, err := json.MarshalIndent(info, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, '\n')
	golden := filepath.Join("testdata", "clientcert.golden.json")
	if *update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("clientCert differs from %s:\n got: %s\nwant: %s", golden, got, want)
	}

	// The fields that matter, spelled out, so that the golden file cannot drift unnoticed.
	for key, want := range map[string]string{
		"subjectDN":    `C=US,ST=Washington,L=Seattle,O=Example\, Inc.,OU=Security,CN=client-1`,
		"issuerDN":     "C=US,O=Example Corp,CN=Example Client Root",
		"serialNumber": "214933908099603316458134831733103562640", // 0xa1b2c3d4e5f60718293a4b5c6d7e8f90
	} {
		if info[key] != want {
			t.Errorf("%s = %q, want %q", key, info[key], want)
		}
	}
	validity := info["validity"].(map[string]any)
	if validity["notBefore"] != "May 28 12:30:02 2019 GMT" || validity["notAfter"] != "Aug  5 09:36:04 2021 GMT" {
		t.Errorf("validity %v", validity)
	}
	if pem := info["clientCertPem"].(string); !strings.HasPrefix(pem, "-----BEGIN CERTIFICATE-----\n") ||
		!strings.HasSuffix(pem, "-----END CERTIFICATE-----\n") {
		t.Errorf("clientCertPem %q", pem)
	}
	if ClientCertInfo(nil) != nil {
		t.Error("ClientCertInfo(nil) is not nil")
	}
}

// TestClientCertInfoSmallSerial: a serial number of 1 reads "1", as in the event API Gateway sent
// for a certificate made with openssl -set_serial 01.
func TestClientCertInfoSmallSerial(t *testing.T) {
	ca := newTestCA(t, "CA")
	c := ca.issue(t, leafOpts{serial: 1, cn: "My Client"})
	info := ClientCertInfo(c.tls.Leaf)
	if info["serialNumber"] != "1" || info["subjectDN"] != "CN=My Client" || info["issuerDN"] != "CN=CA" {
		t.Fatalf("got %v", info)
	}
}

func TestFormatDN(t *testing.T) {
	ia5 := asn1.RawValue{Class: asn1.ClassUniversal, Tag: asn1.TagIA5String, Bytes: []byte("a@example.com")}
	bmp := asn1.RawValue{Class: asn1.ClassUniversal, Tag: asn1.TagBMPString, Bytes: []byte{0, 'Z', 0x00, 0xfc, 0, 'r'}}
	integer := asn1.RawValue{Class: asn1.ClassUniversal, Tag: asn1.TagInteger, Bytes: []byte{5}}
	tests := []struct {
		name string
		dn   rdnSequence
		want string
	}{
		{"escaping", rdnSequence{{{oidCN, utf8Value(` #lead, "quoted" +plus; <x> back\slash trail `)}}},
			`CN=\ #lead\, \"quoted\" \+plus\; \<x\> back\\slash trail\ `},
		{"leading hash", rdnSequence{{{oidO, utf8Value("#1")}}}, `O=\#1`},
		{"multi-valued RDN", rdnSequence{{{oidCN, utf8Value("a")}, {oidOU, utf8Value("b")}}, {{oidC, utf8Value("DE")}}},
			"CN=a+OU=b,C=DE"},
		{"email and unknown OID", rdnSequence{{{asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 1}, ia5}},
			{{asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 99999, 1}, utf8Value("x")}}},
			"E=a@example.com,1.3.6.1.4.1.99999.1=x"},
		{"BMPString", rdnSequence{{{oidL, bmp}}}, "L=Zür"},
		{"not a string", rdnSequence{{{oidCN, integer}}}, "CN=#020105"},
		{"empty", rdnSequence{}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			der, err := asn1.Marshal(tt.dn)
			if err != nil {
				t.Fatal(err)
			}
			if got := formatDN(der); got != tt.want {
				t.Fatalf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
	if got := formatDN([]byte{0x30, 0x03, 0x01}); got != "#300301" {
		t.Errorf("a broken name: %q", got)
	}
}

func utf8Value(s string) asn1.RawValue {
	return asn1.RawValue{Class: asn1.ClassUniversal, Tag: asn1.TagUTF8String, Bytes: []byte(s)}
}

// FuzzFormatDN: any bytes as a distinguished name give text, never a panic.
func FuzzFormatDN(f *testing.F) {
	for _, dn := range []rdnSequence{
		{{{oidCN, utf8Value("client")}}, {{oidO, utf8Value("Example, Inc.")}}},
		{{{oidCN, asn1.RawValue{Class: asn1.ClassUniversal, Tag: 28, Bytes: []byte{0, 0, 0, 'x'}}}}},
	} {
		der, err := asn1.Marshal(dn)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(der)
	}
	f.Fuzz(func(t *testing.T, der []byte) {
		_ = formatDN(der)
	})
}

// FuzzNormalizeSerial: an accepted serial number is lower-case hexadecimal with no leading zero.
func FuzzNormalizeSerial(f *testing.F) {
	for _, s := range []string{"0B:AD", "0x00ff", "a1:a1", "", "zz"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := normalizeSerial(s)
		if err != nil {
			return
		}
		if n == "" || (len(n) > 1 && n[0] == '0') || strings.Trim(n, "0123456789abcdef") != "" {
			t.Fatalf("normalizeSerial(%q) = %q", s, n)
		}
		if v, ok := new(big.Int).SetString(n, 16); !ok || v.Text(16) != n {
			t.Fatalf("normalizeSerial(%q) = %q, not big.Int's form", s, n)
		}
	})
}

// FuzzCanonicalName: a name accepted for a certificate is stable and matches itself.
func FuzzCanonicalName(f *testing.F) {
	for _, s := range []string{"API.Example.com.", "*.example.com", "127.0.0.1", "::1", "a..b", "*.com"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := canonicalName(s)
		if err != nil {
			return
		}
		if again, err := canonicalName(n); err != nil || again != n {
			t.Fatalf("canonicalName(%q) = %q, then %q, %v", s, n, again, err)
		}
		if !isWildcard(n) && !wildcardMatches(n, n) {
			t.Fatalf("%q does not match itself", n)
		}
	})
}
