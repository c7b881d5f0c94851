package cli

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"gatehouse.dev/gatehouse/internal/adminapi"
)

func newKeysCommand(stdout io.Writer) *cobra.Command {
	var flags adminFlags
	var plan string
	cmd := &cobra.Command{Use: "keys", Short: "Manage API keys (x-api-key) of the stack's usage plans"}
	create := &cobra.Command{
		Use:   "create NAME --plan PLAN",
		Short: "Create an API key in a usage plan; it is shown once",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if plan == "" {
				return fmt.Errorf("name the key's usage plan with --plan (the stack file's usagePlans)")
			}
			c, err := flags.client(cmd.Context())
			if err != nil {
				return err
			}
			out, raw, err := c.CreateKey(cmd.Context(), args[0], plan)
			if err != nil || flags.json {
				return printJSONOr(stdout, raw, err)
			}
			_, err = fmt.Fprintf(stdout, "API key %s (plan %s; shown once, keep it somewhere safe):\n%s\n", out.Name, out.Plan, out.Key)
			return err
		},
	}
	create.Flags().StringVar(&plan, "plan", "", "the usage plan (rate, burst and quota) the key belongs to")
	ls := &cobra.Command{
		Use:   "ls",
		Short: "List API keys (names and plans, never the keys)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := flags.client(cmd.Context())
			if err != nil {
				return err
			}
			out, raw, err := c.Keys(cmd.Context())
			if err != nil || flags.json {
				return printJSONOr(stdout, raw, err)
			}
			t := newTable(stdout, "NAME", "PLAN", "CREATED")
			for _, k := range out.Keys {
				t.row(k.Name, k.Plan, showTime(k.CreatedAt))
			}
			return t.flush()
		},
	}
	rm := &cobra.Command{
		Use:   "rm NAME",
		Short: "Delete an API key; it stops working at once",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return deleteAndSay(cmd, &flags, stdout, func(ctx context.Context, c *adminapi.Client) error {
				return c.DeleteKey(ctx, args[0])
			}, "deleted API key %s", args[0])
		},
	}
	for _, c := range []*cobra.Command{create, ls, rm} {
		flags.register(c)
		cmd.AddCommand(c)
	}
	return cmd
}
