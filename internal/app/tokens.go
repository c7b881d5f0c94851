package app

import (
	"context"
	"encoding/json"
	"fmt"
	"os"

	"gatehouse.dev/gatehouse/internal/admin"
	"gatehouse.dev/gatehouse/internal/adminapi"
)

// openTokens opens the stack's token store and, on a stack's very first start, creates the `admin`
// token: written to the data directory (mode 0600) and shown once on the terminal, never logged.
func (n *Node) openTokens(ctx context.Context, dataDir string) error {
	js, err := n.jetStream()
	if err != nil {
		return err
	}
	if n.tokens, err = admin.OpenTokens(ctx, js, n.stack.Name); err != nil {
		return err
	}
	if cs := n.clusterSecrets; cs != nil {
		// Every node of a cluster imports the cluster's admin token (the data directory holds it
		// since the token was installed); whichever comes first stores it.
		ok, err := n.tokens.Import(ctx, cs.AdminToken)
		if err != nil {
			return err
		}
		if !ok {
			n.log.Warn("the cluster's admin token differs from the stored one of the same name; the stored one stays valid")
		}
		return nil
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

// writeAdminAddress tells commands run against dataDir where the node's admin API listens
// (adminapi.AddressFile).
func writeAdminAddress(dataDir, url string) error {
	b, _ := json.Marshal(adminapi.Address{URL: url})
	return os.WriteFile(adminapi.AddressPath(dataDir), b, 0o600)
}
