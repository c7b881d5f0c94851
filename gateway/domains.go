package gateway

import (
	"cmp"
	"encoding/pem"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/gofiber/fiber/v2"

	"gatehouse.dev/gatehouse/internal/spec"
	"gatehouse.dev/gatehouse/internal/tlsconf"
)

// Domain is a custom domain name: requests whose Host is it reach the APIs its base paths map,
// as API Gateway's custom domain names and API mappings.
type Domain struct {
	// Name is a lower-case host name, or a wildcard of its first label ("*.example.com").
	Name string
	// Mappings are the domain's API mappings.
	Mappings []APIMapping
	// RedirectHTTP answers the domain's plain HTTP requests with 301 to the same URL over HTTPS,
	// on HTTPSPort.
	RedirectHTTP bool
	// HSTS, when set, is the Strict-Transport-Security header of the domain's HTTPS responses.
	HSTS string
	// HTTPSPort is the port of the node's TLS listener, for redirects; "" or "443" is left out of
	// the URL.
	HTTPSPort string
}

// APIMapping maps a base path of a domain to an API's stage.
type APIMapping struct {
	// Base is "" (the root) or a path such as "v2" or "shop/v2", without slashes around it.
	Base string
	// API is the id of the API (its name in the stack) and Stage one of its stages.
	API, Stage string
}

// DomainsFromSpec returns the gateway's settings for the stack's custom domains; httpsPort is the
// port of the node's TLS listener ("" when it has none).
func DomainsFromSpec(domains map[string]spec.Domain, httpsPort string) []Domain {
	var out []Domain
	for _, name := range slices.Sorted(maps.Keys(domains)) {
		d := domains[name]
		gd := Domain{Name: name, RedirectHTTP: d.RedirectHTTP, HTTPSPort: httpsPort}
		if h := d.HSTS; h != nil {
			gd.HSTS = "max-age=" + strconv.FormatInt(int64(h.MaxAge.D()/time.Second), 10)
			if h.IncludeSubdomains {
				gd.HSTS += "; includeSubDomains"
			}
			if h.Preload {
				gd.HSTS += "; preload"
			}
		}
		for base, m := range d.Mappings {
			gd.Mappings = append(gd.Mappings, APIMapping{Base: base, API: m.API, Stage: m.Stage})
		}
		out = append(out, gd)
	}
	return out
}

// domainSet is the compiled domains: by name, their mappings longest base path first.
type domainSet struct {
	exact    map[string]*Domain
	wildcard map[string]*Domain // by the name without "*."
}

func compileDomains(domains []Domain) *domainSet {
	set := &domainSet{exact: map[string]*Domain{}, wildcard: map[string]*Domain{}}
	for i := range domains {
		d := domains[i]
		d.Mappings = slices.Clone(d.Mappings)
		slices.SortFunc(d.Mappings, func(a, b APIMapping) int { return cmp.Compare(len(b.Base), len(a.Base)) })
		if rest, ok := strings.CutPrefix(d.Name, "*."); ok {
			set.wildcard[rest] = &d
		} else {
			set.exact[d.Name] = &d
		}
	}
	return set
}

// find returns the domain of host: an exact name, else a wildcard for its parent.
func (ds *domainSet) find(host string) *Domain {
	if ds == nil || len(ds.exact)+len(ds.wildcard) == 0 {
		return nil
	}
	host = strings.ToLower(host)
	if d := ds.exact[host]; d != nil {
		return d
	}
	if _, parent, ok := strings.Cut(host, "."); ok {
		return ds.wildcard[parent]
	}
	return nil
}

// match returns the mapping of rawPath on d (the longest base path that is a whole prefix of its
// segments) and the path below it.
func (d *Domain) match(rawPath string) (*APIMapping, string) {
	for i := range d.Mappings {
		m := &d.Mappings[i]
		if m.Base == "" {
			return m, rawPath
		}
		if rest, ok := strings.CutPrefix(rawPath, "/"+m.Base); ok && (rest == "" || rest[0] == '/') {
			if rest == "" {
				rest = "/"
			}
			return m, rest
		}
	}
	return nil, ""
}

// SetDomains replaces the custom domains the gateway serves, at once for every request that starts
// after it.
func (s *Server) SetDomains(domains []Domain) {
	s.domains.Store(compileDomains(domains))
}

// serveDomain finds the API and stage a request to a custom domain is for: nil when host is not a
// custom domain. A domain without a mapping for the path answers 403, as API Gateway does.
func (s *Server) serveDomain(c *fiber.Ctx, host, rawPath string) (*compiledAPI, *Stage, string, *Domain, error) {
	d := s.domains.Load().find(host)
	if d == nil {
		return nil, nil, "", nil, nil
	}
	if d.RedirectHTTP && !c.Context().IsTLS() {
		target := "https://" + host
		if d.HTTPSPort != "" && d.HTTPSPort != "443" {
			target += ":" + d.HTTPSPort
		}
		target += string(c.Request().URI().RequestURI())
		c.Status(fiber.StatusMovedPermanently)
		c.Set(fiber.HeaderLocation, target)
		return nil, nil, "", d, errAnswered
	}
	m, rest := d.match(rawPath)
	if m == nil {
		return nil, nil, "", d, errForbidden
	}
	for _, a := range s.apis.Load().compiled {
		if a.ID == m.API {
			if st, ok := a.stages[m.Stage]; ok {
				return a, st, rest, d, nil
			}
		}
	}
	return nil, nil, "", d, fmt.Errorf("domain %s: base path %q: no API %s with stage %s", d.Name, m.Base, m.API, m.Stage)
}

// errAnswered says the request was answered already (a redirect to HTTPS).
var errAnswered = errors.New("answered")

// errForbidden is API Gateway's answer to a path no mapping of a custom domain covers, and to an
// API's execute-api endpoint when it is disabled.
var errForbidden = fiber.NewError(fiber.StatusForbidden, "Forbidden")

// clientCertOf returns the client certificate of a TLS request, as requestContext.authentication
// carries it; nil without one.
func clientCertOf(c *fiber.Ctx) *events.APIGatewayV2HTTPRequestContextAuthentication {
	if !c.Context().IsTLS() {
		return nil
	}
	st := c.Context().TLSConnectionState()
	if st == nil || len(st.PeerCertificates) == 0 {
		return nil
	}
	cert := st.PeerCertificates[0]
	return &events.APIGatewayV2HTTPRequestContextAuthentication{ClientCert: events.APIGatewayV2HTTPRequestContextAuthenticationClientCert{
		ClientCertPem: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw})),
		SubjectDN:     tlsconf.FormatDN(cert.RawSubject),
		IssuerDN:      tlsconf.FormatDN(cert.RawIssuer),
		SerialNumber:  cert.SerialNumber.String(),
		Validity: events.APIGatewayV2HTTPRequestContextAuthenticationClientCertValidity{
			NotBefore: cert.NotBefore.UTC().Format(tlsconf.ValidityLayout),
			NotAfter:  cert.NotAfter.UTC().Format(tlsconf.ValidityLayout),
		},
	}}
}
