package app

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/spf13/cobra"
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
			type created struct {
				Name string `json:"name"`
				Plan string `json:"plan"`
				Key  string `json:"key"`
			}
			return callAndShow(cmd, &flags, stdout, http.MethodPost, "/admin/v1/keys", map[string]string{"name": args[0], "plan": plan}, func(out created) error {
				_, err := fmt.Fprintf(stdout, "API key %s (plan %s; shown once, keep it somewhere safe):\n%s\n", out.Name, out.Plan, out.Key)
				return err
			})
		},
	}
	create.Flags().StringVar(&plan, "plan", "", "the usage plan (rate, burst and quota) the key belongs to")
	ls := &cobra.Command{
		Use:   "ls",
		Short: "List API keys (names and plans, never the keys)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			type list struct {
				Keys []struct {
					Name      string    `json:"name"`
					Plan      string    `json:"plan"`
					CreatedAt time.Time `json:"createdAt"`
				} `json:"keys"`
			}
			return callAndShow(cmd, &flags, stdout, http.MethodGet, "/admin/v1/keys", nil, func(out list) error {
				t := newTable(stdout, "NAME", "PLAN", "CREATED")
				for _, k := range out.Keys {
					t.row(k.Name, k.Plan, showTime(k.CreatedAt))
				}
				return t.flush()
			})
		},
	}
	rm := &cobra.Command{
		Use:   "rm NAME",
		Short: "Delete an API key; it stops working at once",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return deleteAndSay(cmd, &flags, stdout, "/admin/v1/keys/"+url.PathEscape(args[0]), "deleted API key %s", args[0])
		},
	}
	for _, c := range []*cobra.Command{create, ls, rm} {
		flags.register(c)
		cmd.AddCommand(c)
	}
	return cmd
}
