package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
)

func newPublishCommand(stdout io.Writer) *cobra.Command {
	var flags adminFlags
	var payload string
	cmd := &cobra.Command{
		Use:   "publish SUBJECT",
		Short: "Publish a message on a subject of the stack's event bus",
		Long: `Store a message on SUBJECT (dot-separated tokens such as orders.created, no wildcards) in the stack's
event stream: the functions with an event source matching it receive it in their next batch.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var data []byte
			switch {
			case payload == "-":
				b, err := io.ReadAll(cmd.InOrStdin())
				if err != nil {
					return fmt.Errorf("reading the message from standard input: %w", err)
				}
				data = b
			case strings.HasPrefix(payload, "@"):
				b, err := os.ReadFile(payload[1:])
				if err != nil {
					return fmt.Errorf("reading the message: %w", err)
				}
				data = b
			default:
				data = []byte(payload)
			}
			c, err := flags.client(cmd.Context())
			if err != nil {
				return err
			}
			seq, err := c.Publish(cmd.Context(), args[0], data)
			if err != nil {
				return err
			}
			if flags.json {
				return json.NewEncoder(stdout).Encode(map[string]any{"subject": args[0], "sequence": seq})
			}
			fmt.Fprintf(stdout, "published on %s: message %d\n", args[0], seq)
			return nil
		},
	}
	flags.register(cmd)
	cmd.Flags().StringVarP(&payload, "payload", "p", "", "the message: text, @FILE for a file's contents, or - for standard input")
	return cmd
}
