package cli

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"gatehouse.dev/gatehouse/internal/adminapi"
)

func newLogsCommand(stdout, stderr io.Writer) *cobra.Command {
	var flags adminFlags
	var follow bool
	var limit int
	var access string
	cmd := &cobra.Command{
		Use:   "logs FN | --access API/STAGE",
		Short: "Print a function's recent log records, or a stage's access log; with -f, keep printing new ones",
		Long: `Print function FN's last log records, oldest first; with --access API/STAGE, the access log of
the API's stage (one whose accessLog goes to a log group, destination group:NAME). With -f, keep
printing new records as they arrive until Ctrl-C. With --json, print the records as the API sends
them, one JSON object a line.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if access != "" {
				return cobra.NoArgs(cmd, args)
			}
			return cobra.ExactArgs(1)(cmd, args)
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if limit < 1 {
				return fmt.Errorf("--limit %d: want at least 1", limit)
			}
			api, stage, isAccess := strings.Cut(access, "/")
			if access != "" && (!isAccess || api == "" || stage == "") {
				return fmt.Errorf("--access %q: want API/STAGE, such as web/prod (the $default stage is web/$default)", access)
			}
			c, err := flags.client(cmd.Context())
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			// Followed, the stream lasts until Ctrl-C.
			var stream io.ReadCloser
			what := access
			if access != "" {
				stream, err = c.AccessLog(ctx, api, stage, limit, follow)
			} else {
				what = args[0]
				stream, err = c.Logs(ctx, args[0], limit, follow)
			}
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return err
			}
			defer stream.Close()
			n, err := printLogStream(stdout, stream, flags.json)
			if err != nil && ctx.Err() == nil {
				return fmt.Errorf("reading the log stream: %w", err)
			}
			if n == 0 && !follow && !flags.json {
				fmt.Fprintf(stderr, "no log records for %s: it has not written any yet (or they have expired)\n", what)
			}
			return nil
		},
	}
	flags.register(cmd)
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing new records until Ctrl-C")
	cmd.Flags().IntVar(&limit, "limit", 100, "how many of the last records to print (at most 10000)")
	cmd.Flags().StringVar(&access, "access", "", "print the access log of an API's stage, API/STAGE, instead of a function's log")
	return cmd
}

// printLogStream prints the NDJSON log records read from r until it ends, skipping blank keep-alive
// lines: as they are with raw, else one aligned line each. It returns how many it printed.
func printLogStream(w io.Writer, r io.Reader, raw bool) (int, error) {
	br := bufio.NewReader(r)
	n := 0
	for {
		line, err := br.ReadBytes('\n')
		if line = bytes.TrimSpace(line); len(line) > 0 {
			n++
			var rec adminapi.LogRecord
			if raw || json.Unmarshal(line, &rec) != nil {
				_, werr := fmt.Fprintf(w, "%s\n", line)
				if werr != nil {
					return n, werr
				}
			} else if rec.Stream == "access" {
				// An access log line is printed as its format made it.
				if _, werr := fmt.Fprintf(w, "%s\n", rec.Message); werr != nil {
					return n, werr
				}
			} else if _, werr := fmt.Fprintf(w, "%s %-4s %-8s %-6s  %s\n", rec.Time.Local().Format(timeFormat),
				"v"+strconv.Itoa(rec.Version), prefix(rec.RequestID, 8),
				rec.Stream, strings.TrimRight(rec.Message, "\r\n")); werr != nil {
				return n, werr
			}
		}
		if errors.Is(err, io.EOF) {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}
