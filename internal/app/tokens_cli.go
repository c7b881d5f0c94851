package app

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	neturl "net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// adminClient calls a running node's admin API.
type adminClient struct {
	url, token string
	http       *http.Client
}

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

func (f *adminFlags) client() (*adminClient, error) {
	url, token := f.url, f.token
	from := "--admin"
	if url == "" {
		from = filepath.Join(f.dataDir, "run", adminAddressFile)
		b, err := os.ReadFile(filepath.Join(f.dataDir, "run", adminAddressFile))
		if err != nil {
			return nil, fmt.Errorf("no running node found in %s (start one with `gatehouse up`, or pass --admin): %w", f.dataDir, err)
		}
		var addr struct{ URL string }
		if err := json.Unmarshal(b, &addr); err != nil || addr.URL == "" {
			return nil, fmt.Errorf("%s: not an admin address file", filepath.Join(f.dataDir, "run", adminAddressFile))
		}
		url = addr.URL
	}
	if token == "" {
		token = os.Getenv("GATEHOUSE_TOKEN")
	}
	if token == "" {
		b, err := os.ReadFile(filepath.Join(f.dataDir, adminTokenFile))
		if err != nil {
			return nil, errors.New("no admin token: pass --token, set GATEHOUSE_TOKEN, or run where the data directory's admin.token is readable")
		}
		token = strings.TrimSpace(string(b))
	}
	c := &adminClient{url: strings.TrimSuffix(url, "/"), token: token, http: &http.Client{Timeout: time.Minute}}
	// Asked before any work (a deploy builds first): a node that stopped leaves its address file.
	if err := c.reachable(); err != nil {
		return nil, fmt.Errorf("no node answers at %s (the address from %s): is `gatehouse up` running? (%v)", c.url, from, err)
	}
	return c, nil
}

// reachable checks that the node answers /healthz.
func (c *adminClient) reachable() error {
	hc := &http.Client{Timeout: 5 * time.Second}
	resp, err := hc.Get(c.url + "/healthz")
	if err != nil {
		var ue *neturl.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return err
	}
	resp.Body.Close()
	return nil
}

func newTokensCommand(stdout io.Writer) *cobra.Command {
	var flags adminFlags
	cmd := &cobra.Command{Use: "tokens", Short: "Manage the admin API's bearer tokens"}
	create := &cobra.Command{
		Use:   "create NAME",
		Short: "Create a token; it is shown once",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			type created struct {
				Name  string `json:"name"`
				Token string `json:"token"`
			}
			return callAndShow(cmd, &flags, stdout, http.MethodPost, "/admin/v1/tokens", map[string]string{"name": args[0]}, func(out created) error {
				_, err := fmt.Fprintf(stdout, "token %s (shown once; keep it somewhere safe):\n%s\n", out.Name, out.Token)
				return err
			})
		},
	}
	ls := &cobra.Command{
		Use:   "ls",
		Short: "List tokens (names and creation times, never the tokens)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			type list struct {
				Tokens []struct {
					Name      string    `json:"name"`
					CreatedAt time.Time `json:"createdAt"`
				} `json:"tokens"`
			}
			return callAndShow(cmd, &flags, stdout, http.MethodGet, "/admin/v1/tokens", nil, func(out list) error {
				t := newTable(stdout, "NAME", "CREATED")
				for _, tok := range out.Tokens {
					t.row(tok.Name, showTime(tok.CreatedAt))
				}
				return t.flush()
			})
		},
	}
	rm := &cobra.Command{
		Use:   "rm NAME",
		Short: "Delete a token; it stops working at once",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return deleteAndSay(cmd, &flags, stdout, "/admin/v1/tokens/"+url.PathEscape(args[0]), "deleted token %s", args[0])
		},
	}
	for _, c := range []*cobra.Command{create, ls, rm} {
		flags.register(c)
		cmd.AddCommand(c)
	}
	return cmd
}
