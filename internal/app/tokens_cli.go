package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
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
	if url == "" {
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
	return &adminClient{url: strings.TrimSuffix(url, "/"), token: token, http: &http.Client{Timeout: time.Minute}}, nil
}

// do sends a request and decodes a JSON answer into out (when not nil). A non-2xx answer becomes an
// error with the API's message.
func (c *adminClient) do(method, path string, body, out any) error {
	_, err := c.doJSON(context.Background(), method, path, body, out)
	return err
}

func newTokensCommand(stdout io.Writer) *cobra.Command {
	var flags adminFlags
	cmd := &cobra.Command{Use: "tokens", Short: "Manage the admin API's bearer tokens"}
	create := &cobra.Command{
		Use:   "create NAME",
		Short: "Create a token; it is shown once",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := flags.client()
			if err != nil {
				return err
			}
			var out struct {
				Name  string `json:"name"`
				Token string `json:"token"`
			}
			if err := c.do("POST", "/admin/v1/tokens", map[string]string{"name": args[0]}, &out); err != nil {
				return err
			}
			if flags.json {
				return json.NewEncoder(stdout).Encode(out)
			}
			fmt.Fprintf(stdout, "token %s (shown once; keep it somewhere safe):\n%s\n", out.Name, out.Token)
			return nil
		},
	}
	ls := &cobra.Command{
		Use:   "ls",
		Short: "List tokens (names and creation times, never the tokens)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := flags.client()
			if err != nil {
				return err
			}
			var out struct {
				Tokens []struct {
					Name      string    `json:"name"`
					CreatedAt time.Time `json:"createdAt"`
				} `json:"tokens"`
			}
			if err := c.do("GET", "/admin/v1/tokens", nil, &out); err != nil {
				return err
			}
			if flags.json {
				return json.NewEncoder(stdout).Encode(out)
			}
			fmt.Fprintf(stdout, "%-24s %s\n", "NAME", "CREATED")
			for _, t := range out.Tokens {
				fmt.Fprintf(stdout, "%-24s %s\n", t.Name, t.CreatedAt.Local().Format(time.RFC3339))
			}
			return nil
		},
	}
	rm := &cobra.Command{
		Use:   "rm NAME",
		Short: "Delete a token; it stops working at once",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := flags.client()
			if err != nil {
				return err
			}
			if err := c.do("DELETE", "/admin/v1/tokens/"+args[0], nil, nil); err != nil {
				return err
			}
			if !flags.json {
				fmt.Fprintf(stdout, "deleted token %s\n", args[0])
			}
			return nil
		},
	}
	for _, c := range []*cobra.Command{create, ls, rm} {
		flags.register(c)
		cmd.AddCommand(c)
	}
	return cmd
}
