package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"gatehouse.dev/gatehouse/internal/adminapi"
)

func newConnectionsCommand(stdout io.Writer) *cobra.Command {
	var flags adminFlags
	var api, message string
	cmd := &cobra.Command{
		Use:   "connections",
		Short: "List, inspect, message and close WebSocket connections",
	}
	ls := &cobra.Command{
		Use:   "ls",
		Short: "List the stack's open WebSocket connections, oldest first",
		Long: `List the stack's open WebSocket connections, oldest first: in a cluster, those of every node
heard from lately (a node that does not answer within 5 s is left out). get, post and rm reach a
connection on any node.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := flags.client(cmd.Context())
			if err != nil {
				return err
			}
			out, raw, err := c.Connections(cmd.Context(), api)
			if err != nil || flags.json {
				return connectionCall(printJSONOr(stdout, raw, err), "")
			}
			return connectionTable(stdout, out.Connections...)
		},
	}
	ls.Flags().StringVar(&api, "api", "", "only the connections of this WebSocket API")
	get := &cobra.Command{
		Use:   "get ID",
		Short: "Describe a connection",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := flags.client(cmd.Context())
			if err != nil {
				return err
			}
			out, raw, err := c.Connection(cmd.Context(), args[0])
			if err != nil || flags.json {
				return connectionCall(printJSONOr(stdout, raw, err), args[0])
			}
			return connectionTable(stdout, out)
		},
	}
	post := &cobra.Command{
		Use:   "post ID --payload TEXT|@FILE|-",
		Short: "Send a message to a connection",
		Long: `Send a message to connection ID, as @connections does: the text given, a file's contents (@FILE) or
standard input (-). The client receives a text frame when the message is valid UTF-8, else a binary
frame. A message is at most 128 KiB, and within the connection's API's message limit.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !cmd.Flags().Changed("payload") {
				msg := "no message: give it with --payload TEXT, --payload @FILE or --payload - (standard input)"
				if cmd.Flags().Changed("data") {
					msg += "; --data names the node's data directory, not the message"
				}
				return errors.New(msg)
			}
			data, err := readMessage(message, cmd.InOrStdin())
			if err != nil {
				return err
			}
			if len(data) > adminapi.MaxConnectionMessage {
				return fmt.Errorf("the message is %d bytes, over the limit of %d bytes (128 KiB)", len(data), adminapi.MaxConnectionMessage)
			}
			c, err := flags.client(cmd.Context())
			if err != nil {
				return err
			}
			contentType := "application/octet-stream"
			if utf8.Valid(data) {
				contentType = "text/plain; charset=utf-8"
			}
			if err := connectionCall(c.PostToConnection(cmd.Context(), args[0], data, contentType), args[0]); err != nil {
				return err
			}
			if !flags.json {
				fmt.Fprintf(stdout, "sent %d bytes to connection %s\n", len(data), args[0])
			}
			return nil
		},
	}
	post.Flags().StringVarP(&message, "payload", "p", "", "the message: TEXT, @FILE for a file's contents, or - for standard input")
	rm := &cobra.Command{
		Use:   "rm ID",
		Short: "Close a connection ($disconnect follows)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return connectionCall(deleteAndSay(cmd, &flags, stdout, func(ctx context.Context, c *adminapi.Client) error {
				return c.DeleteConnection(ctx, args[0])
			}, "closed connection %s", args[0]), args[0])
		},
	}
	for _, c := range []*cobra.Command{ls, get, post, rm} {
		flags.register(c)
		cmd.AddCommand(c)
	}
	return cmd
}

// readMessage reads post's --payload: the text as it is, @FILE, or - for stdin.
func readMessage(arg string, stdin io.Reader) ([]byte, error) {
	switch {
	case arg == "-":
		b, err := io.ReadAll(io.LimitReader(stdin, adminapi.MaxConnectionMessage+1))
		if err != nil {
			return nil, fmt.Errorf("reading the message from standard input: %w", err)
		}
		return b, nil
	case len(arg) > 0 && arg[0] == '@':
		b, err := os.ReadFile(arg[1:])
		if err != nil {
			return nil, fmt.Errorf("reading the message: %w", err)
		}
		return b, nil
	}
	return []byte(arg), nil
}

// connectionCall turns the admin API's errors about connection id into plain words.
func connectionCall(err error, id string) error {
	var ae *adminapi.Error
	if !errors.As(err, &ae) {
		return err
	}
	switch {
	case ae.Status == http.StatusGone && id != "":
		return fmt.Errorf("connection %s is gone: it closed, or never opened (see `gatehouse connections ls`)", id)
	case ae.Status == http.StatusNotFound:
		return fmt.Errorf("%w (the node does not serve the connection endpoints: is it older than this gatehouse?)", err)
	}
	return err
}

// connectionTable prints connections as a table.
func connectionTable(w io.Writer, conns ...adminapi.ConnectionView) error {
	t := newTable(w, "ID", "API", "STAGE", "CONNECTED", "LAST ACTIVE", "SOURCE IP", "USER AGENT")
	for _, c := range conns {
		t.row(c.ID, c.API, c.Stage, showTime(c.ConnectedAt), showTime(c.LastActiveAt), orDash(c.SourceIP), orDash(c.UserAgent))
	}
	return t.flush()
}
