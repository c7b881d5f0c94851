package cli

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"
)

func newAuditCommand(stdout io.Writer) *cobra.Command {
	var flags adminFlags
	var limit int
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "Print the audit log: who deployed, deleted or changed what, oldest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if limit < 1 {
				return fmt.Errorf("--limit %d: want at least 1", limit)
			}
			c, err := flags.client(cmd.Context())
			if err != nil {
				return err
			}
			out, raw, err := c.Audit(cmd.Context(), limit)
			if err != nil || flags.json {
				return printJSONOr(stdout, raw, err)
			}
			t := newTable(stdout, "TIME", "TOKEN", "ADDRESS", "ACTION", "TARGET", "DETAIL")
			for _, e := range out.Entries {
				t.row(showTime(e.Time), e.Token, e.Address, e.Action, e.Target, e.Detail)
			}
			return t.flush()
		},
	}
	flags.register(cmd)
	cmd.Flags().IntVar(&limit, "limit", 100, "how many of the last entries to print (at most 10000)")
	return cmd
}
