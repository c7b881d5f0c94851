package spec

import (
	"maps"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"gatehouse.dev/gatehouse/internal/didyoumean"
	"gatehouse.dev/gatehouse/internal/yamlnode"
)

// Domain is one entry of the stack's `domains:`: a custom domain name the gateway serves over TLS,
// whose base paths map to APIs and their stages, as API Gateway's custom domain names and API
// mappings.
type Domain struct {
	// Name is the map key: a lower-case host name ("api.example.com"), or a wildcard of one label
	// ("*.example.com").
	Name string `json:"-"`
	// Certificate is where the domain's certificate comes from (`certificate:`, default
	// CertificateLocal).
	Certificate DomainCertificate `json:"certificate"`
	// Mappings map base paths to APIs and stages (`mappings:`, required, at least one): "" is the
	// domain's root, "v2" or "v2/admin" a path prefix. A request's longest matching base path wins;
	// the rest of its path is routed in the API's stage, with no stage segment.
	Mappings map[string]APIMapping `json:"mappings"`
	// MutualTLS asks clients for certificates that chain to a trust store (`mutualTls:`); nil for
	// none.
	MutualTLS *MutualTLS `json:"mutualTls,omitempty"`
	// SecurityPolicy is the lowest TLS version (`securityPolicy:`, default TLSPolicy12):
	// TLSPolicy12 or TLSPolicy13.
	SecurityPolicy string `json:"securityPolicy"`
	// RedirectHTTP answers the domain's plain HTTP requests with a redirect to HTTPS
	// (`redirectHttp:`, default false).
	RedirectHTTP bool `json:"redirectHttp,omitempty"`
	// HSTS adds Strict-Transport-Security to the domain's HTTPS responses (`hsts:`); nil for none.
	HSTS *HSTS `json:"hsts,omitempty"`
}

// DomainCertificate is a domain's `certificate:`: `local`, `acme`, or {certFile, keyFile}.
type DomainCertificate struct {
	// Source is CertificateLocal (issued by the node's own certificate authority, made once under
	// its data directory), CertificateFiles (CertFile and KeyFile) or CertificateACME (from an ACME
	// authority such as Let's Encrypt, for a domain that resolves to the node).
	Source string `json:"source"`
	// CertFile and KeyFile are the absolute paths of the PEM certificate chain and key
	// (`certFile:`, `keyFile:`, relative to the stack file), for CertificateFiles; reloaded when
	// they change.
	CertFile string `json:"certFile,omitempty"`
	KeyFile  string `json:"keyFile,omitempty"`
}

// APIMapping is one entry of a domain's `mappings:`.
type APIMapping struct {
	// API names an API of the stack (`api:`, required).
	API string `json:"api"`
	// Stage names one of its stages (`stage:`, default DefaultStage).
	Stage string `json:"stage"`
}

// MutualTLS is a domain's `mutualTls:`.
type MutualTLS struct {
	// Truststore is the absolute path of a PEM file of the certificate authorities client
	// certificates must chain to (`truststore:`, required, relative to the stack file).
	Truststore string `json:"truststore"`
	// RevokedSerials are serial numbers of client certificates to refuse (`revokedSerials:`),
	// in hexadecimal (colons allowed).
	RevokedSerials []string `json:"revokedSerials,omitempty"`
}

// HSTS is a domain's `hsts:`.
type HSTS struct {
	// MaxAge is how long browsers keep to HTTPS (`maxAge:`, default DefaultHSTSMaxAge).
	MaxAge Duration `json:"maxAge"`
	// IncludeSubdomains and Preload add their directives (`includeSubdomains:`, `preload:`).
	IncludeSubdomains bool `json:"includeSubdomains,omitempty"`
	Preload           bool `json:"preload,omitempty"`
}

// Domain settings.
const (
	CertificateLocal = "local"
	CertificateFiles = "files"
	CertificateACME  = "acme"
	TLSPolicy12      = "TLS_1_2"
	TLSPolicy13      = "TLS_1_3"
	// MaxDomains bounds `domains:`, and MaxMappingsPerDomain a domain's `mappings:`.
	MaxDomains           = 100
	MaxMappingsPerDomain = 200
	// DefaultHSTSMaxAge is a year, as HSTS preload lists ask.
	DefaultHSTSMaxAge = 365 * 24 * time.Hour
)

// checkDomains checks the stack's domains against its APIs.
func (c *checker) checkDomains(s *Stack) {
	if len(s.Domains) > MaxDomains {
		c.add(errf([]string{"domains"}, true, "more than %d domains", MaxDomains))
	}
	apis := slices.Sorted(maps.Keys(s.APIs))
	for _, name := range slices.Sorted(maps.Keys(s.Domains)) {
		d := s.Domains[name]
		path := []string{"domains", name}
		if msg := checkDomainName(name); msg != "" {
			c.add(errf(path, true, "%s", msg))
			continue
		}
		switch d.Certificate.Source {
		case CertificateLocal, CertificateACME:
			if d.Certificate.CertFile != "" || d.Certificate.KeyFile != "" {
				c.add(errf(sub(path, "certificate"), false, "certFile and keyFile are for a certificate of your own; this one is %s", d.Certificate.Source))
			}
			if d.Certificate.Source == CertificateACME && strings.HasPrefix(name, "*.") {
				c.add(errf(sub(path, "certificate"), false, "a wildcard domain needs a DNS challenge, which ACME here does not do: give certFile and keyFile"))
			}
		case CertificateFiles:
			for key, f := range map[string]string{"certFile": d.Certificate.CertFile, "keyFile": d.Certificate.KeyFile} {
				if f == "" || !filepath.IsAbs(f) {
					c.add(errf(sub(path, "certificate", key), false, "required: the path of a PEM file"))
				}
			}
		default:
			c.add(errf(sub(path, "certificate"), false, "want local, acme, or {certFile, keyFile}"))
		}
		if d.SecurityPolicy != TLSPolicy12 && d.SecurityPolicy != TLSPolicy13 {
			c.add(errf(sub(path, "securityPolicy"), false, "unknown security policy %s: want %s or %s", yamlnode.QuoteShort(d.SecurityPolicy), TLSPolicy12, TLSPolicy13))
		}
		if n := len(d.Mappings); n == 0 || n > MaxMappingsPerDomain {
			c.add(errf(sub(path, "mappings"), true, "%d mappings; want 1 to %d, such as {\"\": {api: shop, stage: prod}}", n, MaxMappingsPerDomain))
		}
		for _, base := range slices.Sorted(maps.Keys(d.Mappings)) {
			m := d.Mappings[base]
			mp := sub(path, "mappings", base)
			if msg := checkBasePath(base); msg != "" {
				c.add(errf(mp, true, "%s", msg))
				continue
			}
			api, ok := s.APIs[m.API]
			if !ok {
				c.add(errf(sub(mp, "api"), false, "no API named %s in apis%s", yamlnode.QuoteShort(m.API), didyoumean.Suggest(m.API, apis)))
				continue
			}
			if _, ok := api.Stages[m.Stage]; !ok {
				c.add(errf(sub(mp, "stage"), false, "the API %s has no stage %s%s", m.API, yamlnode.QuoteShort(m.Stage), didyoumean.Suggest(m.Stage, slices.Sorted(maps.Keys(api.Stages)))))
			}
		}
		if t := d.MutualTLS; t != nil {
			if t.Truststore == "" || !filepath.IsAbs(t.Truststore) {
				c.add(errf(sub(path, "mutualTls", "truststore"), false, "required: a PEM file of the certificate authorities client certificates must chain to"))
			}
			for i, sn := range t.RevokedSerials {
				if !validSerial(sn) {
					c.add(errf(sub(path, "mutualTls", "revokedSerials", Index(i)), false, "%s is not a serial number in hexadecimal", yamlnode.QuoteShort(sn)))
				}
			}
		}
		if h := d.HSTS; h != nil && (h.MaxAge.D() < 0 || h.MaxAge.D() > 2*DefaultHSTSMaxAge) {
			c.add(errf(sub(path, "hsts", "maxAge"), false, "%v is out of range: want 0s to two years", h.MaxAge))
		}
	}
}

// checkDomainName checks a domain's name: a lower-case host name of at least two labels, or a
// wildcard of its first label; not an address.
func checkDomainName(name string) string {
	if _, err := netip.ParseAddr(name); err == nil {
		return name + " is an address: a custom domain is a name, such as api.example.com"
	}
	rest := strings.TrimPrefix(name, "*.")
	if name != strings.ToLower(name) || checkHost(rest) != "" || !strings.Contains(rest, ".") && rest != "localhost" && !strings.HasSuffix(rest, ".localhost") {
		return yamlnode.QuoteShort(name) + " is not a domain name: want lower-case labels such as api.example.com, or *.example.com"
	}
	return ""
}

// checkBasePath checks a mapping's base path: "" or segments of letters, digits and - . _ ~.
func checkBasePath(base string) string {
	if base == "" {
		return ""
	}
	for _, seg := range strings.Split(base, "/") {
		if seg == "" || seg == "." || seg == ".." || !allIn(seg, func(r rune) bool {
			return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-._~", r)
		}) {
			return yamlnode.QuoteShort(base) + ` is not a base path: want "" (the root) or segments such as v2 or shop/v2, without leading or trailing /`
		}
	}
	return ""
}

// validSerial reports whether s is a serial number in hexadecimal, colons allowed.
func validSerial(s string) bool {
	s = strings.ReplaceAll(s, ":", "")
	return s != "" && len(s) <= 64 && allIn(s, func(r rune) bool {
		return r >= '0' && r <= '9' || r >= 'a' && r <= 'f' || r >= 'A' && r <= 'F'
	})
}
