package app

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"time"
	"unicode/utf8"

	"github.com/spf13/cobra"
)

// maxConnectionMessage is the largest message the admin API posts to a connection (128 KiB).
const maxConnectionMessage = 128 << 10

// connectionView is a WebSocket connection as the admin API shows it.
type connectionView struct {
	ID           string    `json:"id"`
	API          string    `json:"api"`
	Stage        string    `json:"stage"`
	ConnectedAt  time.Time `json:"connectedAt"`
	LastActiveAt time.Time `json:"lastActiveAt"`
	SourceIP     string    `json:"sourceIp"`
	UserAgent    string    `json:"userAgent"`
}

func newConnectionsCommand(stdout io.Writer) *cobra.Command {
	var flags adminFlags
	var api, message string
	cmd := &cobra.Command{
		Use:   "connections",
		Short: "List, inspect, message and close WebSocket connections",
	}
	ls := &cobra.Command{
		Use:   "ls",
		Short: "List the node's open WebSocket connections, oldest first",
		Long: `List the WebSocket connections held by the node the admin API belongs to, oldest first. With
several nodes, each lists its own; get, post and rm reach a connection on any node.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			path := "/admin/v1/connections"
			if api != "" {
				path += "?" + url.Values{"api": {api}}.Encode()
			}
			return connectionCall(callAndShow(cmd, &flags, stdout, http.MethodGet, path, nil, func(out struct {
				Connections []connectionView `json:"connections"`
			}) error {
				return connectionTable(stdout, out.Connections...)
			}), "")
		},
	}
	ls.Flags().StringVar(&api, "api", "", "only the connections of this WebSocket API")
	get := &cobra.Command{
		Use:   "get ID",
		Short: "Describe a connection",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return connectionCall(callAndShow(cmd, &flags, stdout, http.MethodGet, connectionPath(args[0]), nil, func(out connectionView) error {
				return connectionTable(stdout, out)
			}), args[0])
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
			if len(data) > maxConnectionMessage {
				return fmt.Errorf("the message is %d bytes, over the limit of %d bytes (128 KiB)", len(data), maxConnectionMessage)
			}
			c, err := flags.client()
			if err != nil {
				return err
			}
			contentType := "application/octet-stream"
			if utf8.Valid(data) {
				contentType = "text/plain; charset=utf-8"
			}
			if err := connectionCall(postMessage(cmd.Context(), c, args[0], data, contentType), args[0]); err != nil {
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
			return connectionCall(deleteAndSay(cmd, &flags, stdout, connectionPath(args[0]), "closed connection %s", args[0]), args[0])
		},
	}
	for _, c := range []*cobra.Command{ls, get, post, rm} {
		flags.register(c)
		cmd.AddCommand(c)
	}
	return cmd
}

// postMessage posts data to connection id.
func postMessage(ctx context.Context, c *adminClient, id string, data []byte, contentType string) error {
	resp, err := c.doRaw(ctx, http.MethodPost, connectionPath(id), bytes.NewReader(data), contentType)
	if err != nil {
		return err
	}
	return resp.Body.Close()
}

// readMessage reads post's --payload: the text as it is, @FILE, or - for stdin.
func readMessage(arg string, stdin io.Reader) ([]byte, error) {
	switch {
	case arg == "-":
		b, err := io.ReadAll(io.LimitReader(stdin, maxConnectionMessage+1))
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
	var ae *apiError
	if !errors.As(err, &ae) {
		return err
	}
	switch {
	case ae.status == http.StatusGone && id != "":
		return fmt.Errorf("connection %s is gone: it closed, or never opened (see `gatehouse connections ls`)", id)
	case ae.status == http.StatusNotFound:
		return fmt.Errorf("%w (the node does not serve the connection endpoints: is it older than this gatehouse?)", err)
	}
	return err
}

// connectionPath is the admin API path of connection id.
func connectionPath(id string) string {
	return "/admin/v1/connections/" + url.PathEscape(id)
}

// connectionTable prints connections as a table.
func connectionTable(w io.Writer, conns ...connectionView) error {
	t := newTable(w, "ID", "API", "STAGE", "CONNECTED", "LAST ACTIVE", "SOURCE IP", "USER AGENT")
	for _, c := range conns {
		t.row(c.ID, c.API, c.Stage, showTime(c.ConnectedAt), showTime(c.LastActiveAt), orDash(c.SourceIP), orDash(c.UserAgent))
	}
	return t.flush()
}

// orDash is s, or "-" when empty, so that a table's columns stay aligned.
func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
