package cli

import (
	"encoding/json"
	"io"
	"time"

	"github.com/spf13/cobra"
)

func newSchedulesCommand(stdout io.Writer) *cobra.Command {
	var flags adminFlags
	cmd := &cobra.Command{
		Use:   "schedules",
		Short: "List the stack's schedules: function, expression, when each fires next and last fired",
		Long: `List the schedules the stack file's functions run on (schedules:), as stored in the stack's JetStream:
each one's function, expression, time zone, what it does with missed firings, when it fires next and
when it last fired (- before its first firing).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := flags.client(cmd.Context())
			if err != nil {
				return err
			}
			list, err := c.Schedules(cmd.Context())
			if err != nil {
				return err
			}
			if flags.json {
				enc := json.NewEncoder(stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(map[string]any{"schedules": list})
			}
			t := newTable(stdout, "FUNCTION", "SCHEDULE", "TIME ZONE", "MISSED", "NEXT", "LAST FIRED")
			for _, s := range list {
				t.row(s.Function, s.Expression, orDash(s.TimeZone), s.Missed, when(s.Next), when(s.LastFired))
			}
			return t.flush()
		},
	}
	flags.register(cmd)
	return cmd
}

// when writes t in UTC to the second, or - for the zero time.
func when(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}
