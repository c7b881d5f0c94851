package cli

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/spf13/cobra"
)

func newQueuesCommand(stdout io.Writer) *cobra.Command {
	var flags adminFlags
	cmd := &cobra.Command{
		Use:   "queues",
		Short: "Show the asynchronous invocation queues and event sources: queued, in flight, redelivered and dead letters per function",
		Long: `Show each function's queue of asynchronous invocations (gatehouse invoke --async, Lambda's Invoke
with InvocationType Event): events waiting, events taken and not settled (running, waiting for a turn or
for a retry's time), events given out more than once, and the function's records in the stack's
dead-letter stream (invocations that failed their last attempt or grew too old, without an onFailure
destination). Each event source of a function has a row of its own, named by its subject; its dead
letters are counted on the function's async row.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := flags.client(cmd.Context())
			if err != nil {
				return err
			}
			qs, err := c.Queues(cmd.Context())
			if err != nil {
				return err
			}
			if flags.json {
				enc := json.NewEncoder(stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(map[string]any{"queues": qs})
			}
			t := newTable(stdout, "FUNCTION", "SOURCE", "QUEUED", "IN FLIGHT", "REDELIVERED", "DEAD LETTERS")
			for _, q := range qs {
				source, dead := "async", fmt.Sprint(q.DeadLetters)
				if q.Source != "" {
					source, dead = q.Source, "-" // counted on the function's async row
				}
				t.row(q.Function, source, q.Queued, q.InFlight, q.Redelivered, dead)
			}
			return t.flush()
		},
	}
	flags.register(cmd)
	var rflags adminFlags
	redrive := &cobra.Command{
		Use:   "redrive FN",
		Short: "Queue a function's dead letters again",
		Long: `Queue the function's records in the stack's dead-letter stream again as asynchronous invocations
(each under its request id, with its attempts counted afresh), and remove them from the stream.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := rflags.client(cmd.Context())
			if err != nil {
				return err
			}
			n, err := c.Redrive(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if rflags.json {
				return json.NewEncoder(stdout).Encode(map[string]any{"function": args[0], "queued": n})
			}
			fmt.Fprintf(stdout, "%d dead letters of %s queued again\n", n, args[0])
			return nil
		},
	}
	rflags.register(redrive)
	cmd.AddCommand(redrive)
	return cmd
}
