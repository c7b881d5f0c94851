package loadtest

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"strings"

	"github.com/spf13/cobra"
)

// NewCommand returns the `loadtest` command with its modes as subcommands.
func NewCommand(stdout, stderr io.Writer) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "loadtest",
		Short: "Generate load against a local Gatehouse over its public API",
		Long: `Generate load against a Gatehouse on this machine. Targets must resolve to loopback addresses
(127.0.0.0/8 or ::1); every run is bounded in time and stops by itself.`,
	}
	cmd.AddCommand(newHTTPCommand(stdout, stderr))
	return cmd
}

func newHTTPCommand(stdout, stderr io.Writer) *cobra.Command {
	var (
		cfg      Config
		headers  []string
		body     string
		progress bool
		asJSON   bool
		report   string
	)
	cmd := &cobra.Command{
		Use:   "http URL",
		Short: "Send HTTP requests in a closed loop (--concurrency) or an open loop (--rate)",
		Long: `Send HTTP requests to URL and report latency percentiles, throughput and errors.

Closed loop (default): --concurrency workers each send the next request as soon as the last one
answered. Open loop (--rate): requests are due on a fixed schedule and latency is measured from each
request's due time, so a stalled server shows in the latency instead of slowing the generator down
(coordinated omission); at most --max-in-flight requests are outstanding, and requests that had to
wait for a free slot are counted as late.

The run ends after --duration (at most 10m) or --requests requests, whichever comes first. SIGINT
ends it early with a summary of what was sent.`,
		Example: `  gatehouse loadtest http --concurrency 64 --duration 10s http://127.0.0.1:8080/hello
  gatehouse loadtest http --rate 2000 --duration 30s --report run.html http://127.0.0.1:8080/hello
  gatehouse loadtest http --method POST -H 'Content-Type: application/json' --body @req.json --requests 1000 http://127.0.0.1:8080/echo`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if cmd.Flags().Changed("rate") && cmd.Flags().Changed("concurrency") {
				return fmt.Errorf("--rate (open loop) and --concurrency (closed loop) exclude each other")
			}
			cfg.Target = args[0]
			cfg.Method = strings.ToUpper(cfg.Method)
			cfg.Header = http.Header{}
			for _, h := range headers {
				name, value, ok := strings.Cut(h, ":")
				if !ok || strings.TrimSpace(name) == "" {
					return fmt.Errorf("header %q: want 'Name: value'", h)
				}
				cfg.Header.Add(strings.TrimSpace(name), strings.TrimSpace(value))
			}
			if file, ok := strings.CutPrefix(body, "@"); ok {
				b, err := os.ReadFile(file)
				if err != nil {
					return fmt.Errorf("--body: %v", err)
				}
				cfg.Body = b
			} else if body != "" {
				cfg.Body = []byte(body)
			}
			f, isFile := stderr.(*os.File)
			tty := isFile && IsTerminal(f)
			if progress || tty {
				cfg.Progress, cfg.ProgressInPlace = stderr, tty
			}
			ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt)
			defer cancel()
			res, err := Run(ctx, cfg)
			if err != nil {
				return err
			}
			if report != "" {
				if err := writeReport(report, res); err != nil {
					return err
				}
			}
			if asJSON {
				return res.WriteJSON(stdout)
			}
			if err := res.WriteText(stdout); err != nil {
				return err
			}
			if report != "" {
				fmt.Fprintf(stdout, "report     %s\n", report)
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.IntVarP(&cfg.Concurrency, "concurrency", "c", 1, "closed loop: number of workers")
	fl.Float64VarP(&cfg.Rate, "rate", "r", 0, "open loop: requests per second on a fixed schedule")
	fl.IntVar(&cfg.MaxInFlight, "max-in-flight", DefaultMaxInFlight, "open loop: most requests outstanding at once")
	fl.DurationVarP(&cfg.Duration, "duration", "d", DefaultDuration, "how long to run (at most 10m)")
	fl.Int64VarP(&cfg.Requests, "requests", "n", 0, "stop after this many requests (0: only --duration bounds the run)")
	fl.DurationVar(&cfg.Timeout, "timeout", DefaultTimeout, "per-request timeout")
	fl.StringVarP(&cfg.Method, "method", "X", http.MethodGet, "HTTP method")
	fl.StringArrayVarP(&headers, "header", "H", nil, "request header 'Name: value' (repeatable)")
	fl.StringVar(&body, "body", "", "request body TEXT, or @FILE to read it from a file")
	fl.BoolVar(&progress, "progress", false, "print a progress line on stderr every second (default when stderr is a terminal)")
	fl.BoolVar(&asJSON, "json", false, "print the summary as JSON")
	fl.StringVar(&report, "report", "", "also write a self-contained HTML report to this file")
	return cmd
}

func writeReport(path string, res *Result) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := res.WriteHTML(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
