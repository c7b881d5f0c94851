package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
)

func newInvokeCommand(stdout, stderr io.Writer) *cobra.Command {
	var flags adminFlags
	var payload string
	var async bool
	cmd := &cobra.Command{
		Use:   "invoke FN[:QUALIFIER]",
		Short: "Invoke a function and print its output",
		Long: `Invoke function FN (its $LATEST version, or QUALIFIER: a version number, $LATEST or an alias) with
the payload, and print the function's output. A function error is printed to stderr and exits non-zero.
With --json, print {"version":N,"output":…,"error":…}.

With --async, queue the invocation (Lambda's Event invocation type) and print its request id once it is
stored: it runs at least once, retried and sent to destinations by the function's async settings
(gatehouse queues shows the queues).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name, qualifier, hasQualifier := strings.Cut(args[0], ":")
			if hasQualifier && qualifier == "" {
				return fmt.Errorf("%s: the qualifier after : is empty; give a version, $LATEST or an alias, or leave out the colon", args[0])
			}
			event, err := readPayload(payload, cmd.InOrStdin())
			if err != nil {
				return err
			}
			c, err := flags.client(cmd.Context())
			if err != nil {
				return err
			}
			if async {
				id, err := c.InvokeAsync(cmd.Context(), name, qualifier, event)
				if err != nil {
					return err
				}
				if flags.json {
					return json.NewEncoder(stdout).Encode(map[string]string{"requestId": id})
				}
				fmt.Fprintf(stdout, "queued: request id %s\n", id)
				return nil
			}
			inv, err := c.Invoke(cmd.Context(), name, qualifier, event)
			if err != nil {
				return err
			}
			var fnErr error
			if e := inv.Error; e != nil {
				msg := fmt.Sprintf("function error: %s: %s", e.ErrorType, e.ErrorMessage)
				for _, frame := range e.StackTrace {
					msg += "\n\t" + strings.ReplaceAll(strings.TrimSpace(frame), "\n", "\n\t")
				}
				fnErr = errors.New(msg)
			}
			if flags.json {
				res := struct {
					Version int             `json:"version"`
					Output  json.RawMessage `json:"output"`
					Error   json.RawMessage `json:"error"`
				}{Version: inv.Version, Output: json.RawMessage("null"), Error: json.RawMessage("null")}
				if fnErr != nil {
					res.Error = asJSONValue(inv.Output)
				} else {
					res.Output = asJSONValue(inv.Output)
				}
				enc := json.NewEncoder(stdout)
				enc.SetEscapeHTML(false)
				if err := enc.Encode(res); err != nil {
					return err
				}
				return fnErr
			}
			w := stdout
			if fnErr != nil {
				w = stderr
			}
			if len(inv.Output) > 0 {
				if err := printJSON(w, inv.Output); err != nil {
					return err
				}
			}
			return fnErr
		},
	}
	flags.register(cmd)
	cmd.Flags().StringVarP(&payload, "payload", "p", "{}", "the event: JSON, @FILE for a file's contents, or - for standard input")
	cmd.Flags().BoolVar(&async, "async", false, "queue the invocation and return at once with its request id (at most 1 MiB of event)")
	return cmd
}

// readPayload reads invoke's --payload: inline JSON (checked), @FILE, or - for stdin.
func readPayload(payload string, stdin io.Reader) ([]byte, error) {
	switch {
	case payload == "-":
		b, err := io.ReadAll(stdin)
		if err != nil {
			return nil, fmt.Errorf("reading the payload from standard input: %w", err)
		}
		return b, nil
	case strings.HasPrefix(payload, "@"):
		b, err := os.ReadFile(payload[1:])
		if err != nil {
			return nil, fmt.Errorf("reading the payload: %w", err)
		}
		return b, nil
	}
	var v any
	if err := json.Unmarshal([]byte(payload), &v); err != nil {
		return nil, fmt.Errorf("--payload is not valid JSON (%v): quote it for the shell, e.g. --payload '{\"name\":\"world\"}', or pass @FILE or - for standard input", err)
	}
	return []byte(payload), nil
}
