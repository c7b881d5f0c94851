package cli

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"gatehouse.dev/gatehouse/internal/adminapi"
)

// adminFlags are the flags every command that talks to a running node takes.
type adminFlags struct {
	dataDir, url, token string
	json                bool
}

func (f *adminFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.dataDir, "data", DefaultDataDir, "data directory of the running node (finds its admin address and token)")
	cmd.Flags().StringVar(&f.url, "admin", "", "admin API URL (default: from the data directory)")
	cmd.Flags().StringVar(&f.token, "token", "", "admin token (default: $GATEHOUSE_TOKEN, then the data directory's admin.token)")
	cmd.Flags().BoolVar(&f.json, "json", false, "print JSON")
}

// client returns a client of the node the flags name, once the node answers.
func (f *adminFlags) client(ctx context.Context) (*adminapi.Client, error) {
	url, token := f.url, f.token
	from := "--admin"
	if url == "" {
		from = adminapi.AddressPath(f.dataDir)
		var err error
		var pe *fs.PathError
		if url, err = adminapi.ReadAddress(f.dataDir); errors.As(err, &pe) {
			return nil, fmt.Errorf("no running node found in %s (start one with `gatehouse up`, or pass --admin): %w", f.dataDir, err)
		} else if err != nil {
			return nil, err
		}
	}
	if token == "" {
		token = os.Getenv("GATEHOUSE_TOKEN")
	}
	if token == "" {
		b, err := os.ReadFile(adminapi.TokenPath(f.dataDir))
		if err != nil {
			return nil, errors.New("no admin token: pass --token, set GATEHOUSE_TOKEN, or run where the data directory's admin.token is readable")
		}
		token = strings.TrimSpace(string(b))
	}
	c := adminapi.New(url, token)
	if strings.HasPrefix(url, "https://") {
		// A node serving its admin API with --admin-tls uses its local certificate authority, which
		// the data directory holds; the system's roots are trusted too.
		if hc, err := localCAClient(f.dataDir); err == nil {
			c.HTTP = hc
		}
	}
	// Asked before any work (a deploy builds first): a node that stopped leaves its address file.
	if err := c.Reachable(ctx); err != nil {
		return nil, fmt.Errorf("no node answers at %s (the address from %s): is `gatehouse up` running? (%v)", c.BaseURL, from, err)
	}
	return c, nil
}

// deleteAndSay runs del with the flags' client and, without --json, prints format with args and a
// newline.
func deleteAndSay(cmd *cobra.Command, flags *adminFlags, stdout io.Writer, del func(context.Context, *adminapi.Client) error, format string, args ...any) error {
	c, err := flags.client(cmd.Context())
	if err != nil {
		return err
	}
	if err := del(cmd.Context(), c); err != nil {
		return err
	}
	if !flags.json {
		fmt.Fprintf(stdout, format+"\n", args...)
	}
	return nil
}

// localCAClient is an HTTP client that trusts the system's roots and the local certificate
// authority of the node whose data directory is dataDir (`up --tls`, `--admin-tls`).
func localCAClient(dataDir string) (*http.Client, error) {
	pem, err := os.ReadFile(filepath.Join(dataDir, "ca", "ca.pem"))
	if err != nil {
		return nil, err
	}
	roots, err := x509.SystemCertPool()
	if err != nil || roots == nil {
		roots = x509.NewCertPool()
	}
	if !roots.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s holds no certificate", filepath.Join(dataDir, "ca", "ca.pem"))
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
	return &http.Client{Transport: tr}, nil
}
