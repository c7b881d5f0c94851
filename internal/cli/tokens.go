package cli

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"gatehouse.dev/gatehouse/internal/adminapi"
)

func newTokensCommand(stdout io.Writer) *cobra.Command {
	var flags adminFlags
	cmd := &cobra.Command{Use: "tokens", Short: "Manage the admin API's bearer tokens"}
	create := &cobra.Command{
		Use:   "create NAME",
		Short: "Create a token; it is shown once",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := flags.client(cmd.Context())
			if err != nil {
				return err
			}
			out, raw, err := c.CreateToken(cmd.Context(), args[0])
			if err != nil || flags.json {
				return printJSONOr(stdout, raw, err)
			}
			_, err = fmt.Fprintf(stdout, "token %s (shown once; keep it somewhere safe):\n%s\n", out.Name, out.Token)
			return err
		},
	}
	ls := &cobra.Command{
		Use:   "ls",
		Short: "List tokens (names and creation times, never the tokens)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := flags.client(cmd.Context())
			if err != nil {
				return err
			}
			out, raw, err := c.Tokens(cmd.Context())
			if err != nil || flags.json {
				return printJSONOr(stdout, raw, err)
			}
			t := newTable(stdout, "NAME", "CREATED")
			for _, tok := range out.Tokens {
				t.row(tok.Name, showTime(tok.CreatedAt))
			}
			return t.flush()
		},
	}
	rm := &cobra.Command{
		Use:   "rm NAME",
		Short: "Delete a token; it stops working at once",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return deleteAndSay(cmd, &flags, stdout, func(ctx context.Context, c *adminapi.Client) error {
				return c.DeleteToken(ctx, args[0])
			}, "deleted token %s", args[0])
		},
	}
	for _, c := range []*cobra.Command{create, ls, rm} {
		flags.register(c)
		cmd.AddCommand(c)
	}
	return cmd
}
