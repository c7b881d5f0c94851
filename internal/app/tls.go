package app

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"gatehouse.dev/gatehouse/gateway"
	"gatehouse.dev/gatehouse/internal/acme"
	"gatehouse.dev/gatehouse/internal/spec"
	"gatehouse.dev/gatehouse/internal/tlsconf"
)

// DefaultTLSAddr is where `up --tls` serves HTTPS when --tls-addr does not say.
const DefaultTLSAddr = "127.0.0.1:8443"

// caDir is the local certificate authority's directory under the data directory.
const caDir = "ca"

// localNames are the names the local CA's default certificate is for: what a browser or curl on
// this machine uses.
var localNames = []string{"localhost", "127.0.0.1", "::1"}

// nodeTLS is the node's TLS listener: its certificates, chosen by SNI, and each custom domain's
// security policy and trust store.
type nodeTLS struct {
	ln    net.Listener
	store *tlsconf.Store
	ca    *tlsconf.LocalCA
	// acme obtains and renews the certificates of the domains whose certificate is acme; nil when
	// there are none. acmeNames are those domains.
	acme      *acme.Manager
	acmeNames []string
	config    *tls.Config
	// domains are the per-domain configurations (a security policy, mutual TLS), by name ("*."
	// prefix for wildcards); a name without one uses config.
	domains map[string]*tls.Config
}

// tlsAddr is the TLS listener's address: --tls-addr, or DefaultTLSAddr with --tls; "" for none.
func tlsAddr(opts Options) string {
	if opts.TLSAddr != "" {
		return opts.TLSAddr
	}
	if opts.TLS {
		return DefaultTLSAddr
	}
	return ""
}

// listenTLS opens the TLS listener for the stack's domains and the local names, making the local
// certificate authority under the data directory the first time a certificate of its is needed.
func (n *Node) listenTLS(addr string, stack *spec.Stack) (*nodeTLS, error) {
	t := &nodeTLS{store: tlsconf.NewStore(n.log.With("component", "tls")), domains: map[string]*tls.Config{}}
	var err error
	localCA := func() (*tlsconf.LocalCA, error) {
		if t.ca == nil {
			if t.ca, err = tlsconf.LoadOrCreateCA(filepath.Join(n.dataDir, caDir)); err != nil {
				return nil, fmt.Errorf("local certificate authority: %w", err)
			}
		}
		return t.ca, nil
	}
	addLocal := func(names []string) error {
		ca, err := localCA()
		if err != nil {
			return err
		}
		// Issued once and kept (renewed near its expiry), then served from its files.
		if _, err := ca.Issue(names, 0); err != nil {
			return err
		}
		certFile, keyFile, err := ca.LeafPaths(names)
		if err != nil {
			return err
		}
		return t.store.Add(names, certFile, keyFile)
	}
	if err := addLocal(localNames); err != nil {
		return nil, err
	}
	if err := t.store.SetDefault("localhost"); err != nil {
		return nil, err
	}
	protos := []string{"http/1.1"}
	for _, d := range stack.Domains {
		if d.Certificate.Source == spec.CertificateACME {
			// For the CA's TLS-ALPN-01 challenges.
			protos = append(protos, acme.TLSALPNProtocol)
			break
		}
	}
	t.config = &tls.Config{GetCertificate: t.getCertificate, NextProtos: protos}
	if err := tlsconf.DefaultPolicy.Apply(t.config); err != nil {
		return nil, err
	}
	for _, name := range slices.Sorted(maps.Keys(stack.Domains)) {
		d := stack.Domains[name]
		switch d.Certificate.Source {
		case spec.CertificateLocal:
			err = addLocal([]string{name})
		case spec.CertificateFiles:
			err = t.store.Add([]string{name}, d.Certificate.CertFile, d.Certificate.KeyFile)
		case spec.CertificateACME:
			t.acmeNames = append(t.acmeNames, name)
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", stackWhere(stack, "domains", name, "certificate"), err)
		}
		cfg := t.config.Clone()
		if err := tlsconf.Policy(d.SecurityPolicy).Apply(cfg); err != nil {
			return nil, fmt.Errorf("%s: %w", stackWhere(stack, "domains", name, "securityPolicy"), err)
		}
		if m := d.MutualTLS; m != nil {
			trust, err := tlsconf.LoadTrustStore(m.Truststore, m.RevokedSerials)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", stackWhere(stack, "domains", name, "mutualTls"), err)
			}
			cfg = trust.Config(cfg)
		}
		t.domains[name] = cfg
	}
	base := t.config
	t.config = base.Clone()
	t.config.GetConfigForClient = func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
		name := strings.ToLower(hello.ServerName)
		if cfg, ok := t.domains[name]; ok {
			return cfg, nil
		}
		if _, parent, ok := strings.Cut(name, "."); ok {
			if cfg, ok := t.domains["*."+parent]; ok {
				return cfg, nil
			}
		}
		return nil, nil
	}
	ln, err := listenTCP(addr)
	if err != nil {
		return nil, fmt.Errorf("TLS listener: %w (--tls-addr changes it)", err)
	}
	t.ln = tls.NewListener(ln, t.config)
	if len(t.acmeNames) > 0 {
		// The CA checks the TLS-ALPN-01 challenge on this listener and the HTTP-01 challenge on
		// the gateway's plain one (for a public CA they must be the domains' ports 443 and 80).
		port := func(ln net.Listener) int {
			_, p, _ := net.SplitHostPort(ln.Addr().String())
			n, _ := strconv.Atoi(p)
			return n
		}
		var roots *x509.CertPool
		if n.opts.ACMECARoot != "" {
			pem, err := os.ReadFile(n.opts.ACMECARoot)
			if err != nil {
				ln.Close()
				return nil, fmt.Errorf("--acme-ca-root: %w", err)
			}
			if roots = x509.NewCertPool(); !roots.AppendCertsFromPEM(pem) {
				ln.Close()
				return nil, fmt.Errorf("--acme-ca-root: %s holds no PEM certificate", n.opts.ACMECARoot)
			}
		}
		if t.acme, err = acme.New(acme.Config{Dir: filepath.Join(n.dataDir, "acme"), Email: n.opts.ACMEEmail, CA: n.opts.ACMECA, CARoots: roots,
			TLSALPNPort: port(ln), HTTPPort: port(n.gwLn), Logger: n.log.With("component", "acme")}); err != nil {
			ln.Close()
			return nil, fmt.Errorf("ACME: %w", err)
		}
	}
	return t, nil
}

// getCertificate serves a handshake: an ACME challenge or an ACME domain's certificate from the
// ACME manager, every other name from the store (the local CA's default until an ACME domain's
// certificate is obtained).
func (t *nodeTLS) getCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	if t.acme != nil {
		cert, err := t.acme.GetCertificate(hello)
		if !errors.Is(err, acme.ErrNotManaged) {
			return cert, err
		}
	}
	return t.store.GetCertificate(hello)
}

// stackWhere names a place in the stack file for errors.
func stackWhere(stack *spec.Stack, keys ...string) string {
	return stack.File + ": " + spec.FormatPath(keys)
}

// port returns the listener's port.
func (t *nodeTLS) port() string {
	_, port, _ := net.SplitHostPort(t.ln.Addr().String())
	return port
}

// serveTLS serves the gateway on the TLS listener and reloads certificates when their files
// change, until the node stops.
func (n *Node) serveTLS(ctx context.Context) {
	t := n.tls
	n.serve(func() error { return n.gw.Serve(t.ln) }, "gateway TLS")
	n.serve(func() error { return t.store.Watch(ctx) }, "TLS certificates")
	if t.acme != nil {
		// Obtained in the background: until a domain has its certificate, it is served with the
		// local CA's default one; stored certificates load at once.
		n.serve(func() error {
			defer t.acme.Close()
			if err := t.acme.Manage(ctx, t.acmeNames); err != nil && ctx.Err() == nil {
				n.log.Error("ACME certificates", "domains", t.acmeNames, "err", err)
			}
			<-ctx.Done()
			return nil
		}, "ACME certificates")
	}
}

// domainsFor returns the gateway's custom domains of stack.
func (n *Node) domainsFor(stack *spec.Stack) []gateway.Domain {
	port := ""
	if n.tls != nil {
		port = n.tls.port()
	}
	return gateway.DomainsFromSpec(stack.Domains, port)
}

// tlsSettings are what the TLS listener reads of the stack's domains at start.
func tlsSettings(stack *spec.Stack) map[string][3]any {
	out := map[string][3]any{}
	for name, d := range stack.Domains {
		out[name] = [3]any{d.Certificate, d.SecurityPolicy, d.MutualTLS}
	}
	return out
}

// domainMappings lists a domain's mappings as "/base → api/stage" for the start-up summary.
func domainMappings(d spec.Domain) string {
	var parts []string
	for _, base := range slices.Sorted(maps.Keys(d.Mappings)) {
		m := d.Mappings[base]
		parts = append(parts, fmt.Sprintf("/%s → %s/%s", base, m.API, m.Stage))
	}
	return strings.Join(parts, ", ")
}

// newCACommand is `gatehouse ca`: the local certificate authority that `up --tls` issues
// certificates from.
func newCACommand(stdout io.Writer) *cobra.Command {
	var dataDir string
	ca := &cobra.Command{
		Use:   "ca",
		Short: "The local certificate authority of `up --tls` (made once under the data directory)",
	}
	load := func() (*tlsconf.LocalCA, error) {
		return tlsconf.LoadOrCreateCA(filepath.Join(dataDir, caDir))
	}
	path := &cobra.Command{
		Use:   "path",
		Short: "Print the local CA's certificate file (making the CA if it does not exist)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := load()
			if err != nil {
				return err
			}
			abs, err := filepath.Abs(c.CertPath())
			if err != nil {
				return err
			}
			_, err = fmt.Fprintln(stdout, abs)
			return err
		},
	}
	trust := &cobra.Command{
		Use:   "trust",
		Short: "Print how to make this machine's browsers and tools trust the local CA",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := load()
			if err != nil {
				return err
			}
			_, err = fmt.Fprint(stdout, c.TrustInstructions())
			return err
		},
	}
	ca.PersistentFlags().StringVar(&dataDir, "data", DefaultDataDir, "data directory")
	ca.AddCommand(path, trust)
	return ca
}

// localTLSConfig is the TLS configuration of the admin and AWS API listeners with --admin-tls and
// --aws-tls: the local CA's certificate for the local names, from the same certificate code as the
// gateway's listener.
func (n *Node) localTLSConfig() (*tls.Config, error) {
	ca, err := tlsconf.LoadOrCreateCA(filepath.Join(n.dataDir, caDir))
	if err != nil {
		return nil, fmt.Errorf("local certificate authority: %w", err)
	}
	if _, err := ca.Issue(localNames, 0); err != nil {
		return nil, err
	}
	certFile, keyFile, err := ca.LeafPaths(localNames)
	if err != nil {
		return nil, err
	}
	store := tlsconf.NewStore(n.log.With("component", "tls"))
	if err := store.Add(localNames, certFile, keyFile); err != nil {
		return nil, err
	}
	if err := store.SetDefault("localhost"); err != nil {
		return nil, err
	}
	cfg := &tls.Config{GetCertificate: store.GetCertificate, NextProtos: []string{"http/1.1"}}
	return cfg, tlsconf.DefaultPolicy.Apply(cfg)
}

// acmeChallenges is what answers ACME's HTTP-01 challenges on the gateway's plain listener; nil
// when no domain's certificate is ACME's.
func (n *Node) acmeChallenges() http.Handler {
	if n.tls == nil || n.tls.acme == nil {
		return nil
	}
	return n.tls.acme.HTTPChallengeHandler(http.NotFoundHandler())
}
