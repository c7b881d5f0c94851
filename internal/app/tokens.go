package app

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"

	"github.com/nats-io/nats.go/jetstream"

	"gatehouse.dev/gatehouse/internal/admin"
	"gatehouse.dev/gatehouse/internal/adminapi"
)

// openTokens opens the stack's token store and, on a stack's very first start, creates the `admin`
// token: written to the data directory (mode 0600) and shown once on the terminal, never logged.
func (n *Node) openTokens(ctx context.Context, dataDir string) error {
	js, err := jetstream.New(n.control.Conn())
	if err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	if n.tokens, err = admin.OpenTokens(ctx, js, n.stack.Name); err != nil {
		return err
	}
	empty, err := n.tokens.Empty(ctx)
	if err != nil || !empty {
		return err
	}
	token, err := n.tokens.Create(ctx, "admin")
	if err != nil {
		return err
	}
	path := adminapi.TokenPath(dataDir)
	if err := os.WriteFile(path, []byte(token+"\n"), 0o600); err != nil {
		return fmt.Errorf("writing the admin token: %w", err)
	}
	fmt.Fprintf(n.opts.Stdout, "\nadmin token (shown once; also in %s, mode 0600):\n  %s\n\n", path, token)
	return nil
}

// health answers /healthz.
func (n *Node) health() (int, any) {
	ready := n.readyWorkers()
	body := map[string]any{"status": "ok", "stack": n.stack.Name, "workers": ready}
	if ready == 0 {
		body["status"] = "no workers"
		return http.StatusServiceUnavailable, body
	}
	return http.StatusOK, body
}

// writeAdminAddress tells commands run against dataDir where the node's admin API listens
// (adminapi.AddressFile).
func writeAdminAddress(dataDir, url string) error {
	b, _ := json.Marshal(adminapi.Address{URL: url})
	return os.WriteFile(adminapi.AddressPath(dataDir), b, 0o600)
}
