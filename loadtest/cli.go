package loadtest

import (
	"cmp"
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
	cmd.AddCommand(newHTTPCommand(stdout, stderr), newWSCommand(stdout, stderr), newColdCommand(stdout, stderr))
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
			cfg.Progress, cfg.ProgressInPlace = progressTo(stderr, progress)
			return runAndOutput(stdout, asJSON, report, func(ctx context.Context) (summary, error) { return Run(ctx, cfg) })
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

// progressTo returns where progress lines go: stderr when asked or when it is a terminal, which is
// then rewritten in place.
func progressTo(stderr io.Writer, asked bool) (io.Writer, bool) {
	f, isFile := stderr.(*os.File)
	tty := isFile && IsTerminal(f)
	if asked || tty {
		return stderr, tty
	}
	return nil, false
}

// summary is what every mode's result can write.
type summary interface {
	WriteText(io.Writer) error
	WriteJSON(io.Writer) error
	WriteHTML(io.Writer) error
}

// output writes a result as the flags ask: the HTML report, then JSON or text on stdout.
// runAndOutput runs one mode until it ends or Ctrl-C, then prints (and writes) what it measured.
func runAndOutput(stdout io.Writer, asJSON bool, report string, run func(context.Context) (summary, error)) error {
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt)
	defer cancel()
	res, err := run(ctx)
	if err != nil {
		return err
	}
	return output(stdout, res, asJSON, report)
}

func output(stdout io.Writer, res summary, asJSON bool, report string) error {
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
}

func newWSCommand(stdout, stderr io.Writer) *cobra.Command {
	var (
		cfg      WSConfig
		headers  []string
		progress bool
		asJSON   bool
		report   string
		token    string
		dataDir  string
	)
	cmd := &cobra.Command{
		Use:   "ws URL",
		Short: "Open WebSocket connections, time handshakes, message round trips and @connections fan-out",
		Long: `Load a Gatehouse WebSocket API at URL (ws://HOST:PORT/STAGE-PATH) in phases:

1. Connect: open --connections connections at --connect-rate per second (0: as fast as
   --connect-parallel handshakes at a time allow), spread over --sources source addresses
   127.0.0.1, 127.0.0.2, … (by default one per 10,000 connections, since one source address runs out
   of ephemeral ports). The handshake latency is measured from the start of each dial.
2. Messages: for --duration, send --message-rate messages a second over all connections (round
   robin, on a fixed schedule) and time each one from its due time until a frame carrying its marker
   comes back on the same connection. The --message template's {{seq}} becomes that marker (and
   {{ts}} the send time in Unix ms); a route that answers with the message, or with an event that
   contains it, is matched. --message-rate 0 skips this phase.
3. Fan-out (--post-fanout): learn each connection's id, then for --fanout-rounds rounds POST a
   message to every connection through the stage's @connections API, signed with SigV4, and time
   each round until every connection received it. Ids come from the reply to --id-message (any
   frame with a "connectionId" field), or from the admin API's connection listing
   (--ids-from-admin), matched by the user agent each connection sends.
4. Close: every connection is closed with a close frame (1000).

The run is bounded: the connect phase by the count (and --connect-rate × count ≤ 10m), the message
phase by --duration (at most 10m), replies and each fan-out round by --reply-timeout. SIGINT ends
the current phase early; the connections are closed either way.`,
		Example: `  gatehouse loadtest ws --connections 1000 --connect-rate 500 --message-rate 2000 --duration 30s ws://127.0.0.1:8080/chat
  gatehouse loadtest ws --connections 20000 --message-rate 0 --report connect.html ws://127.0.0.1:8080/chat
  gatehouse loadtest ws --message '{"action":"sendmessage","data":"{{seq}}"}' ws://127.0.0.1:8080/chat
  GATEHOUSE_ACCESS_KEY=AKIA… GATEHOUSE_SECRET_KEY=… gatehouse loadtest ws --post-fanout --ids-from-admin http://127.0.0.1:8081 ws://127.0.0.1:8080/chat`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg.Target = args[0]
			cfg.Header = http.Header{}
			for _, h := range headers {
				name, value, ok := strings.Cut(h, ":")
				if !ok || strings.TrimSpace(name) == "" {
					return fmt.Errorf("header %q: want 'Name: value'", h)
				}
				cfg.Header.Add(strings.TrimSpace(name), strings.TrimSpace(value))
			}
			if cfg.AccessKey == "" {
				cfg.AccessKey = cmp.Or(os.Getenv("GATEHOUSE_ACCESS_KEY"), os.Getenv("GATEHOUSE_ACCESS_KEY_ID"))
			}
			if cfg.SecretKey == "" {
				cfg.SecretKey = cmp.Or(os.Getenv("GATEHOUSE_SECRET_KEY"), os.Getenv("GATEHOUSE_SECRET_ACCESS_KEY"))
			}
			if cfg.Fanout && cfg.IDAdmin != "" {
				t, err := AdminToken(token, dataDir)
				if err != nil {
					return err
				}
				cfg.IDAdminToken = t
			}
			cfg.Progress, cfg.ProgressInPlace = progressTo(stderr, progress)
			return runAndOutput(stdout, asJSON, report, func(ctx context.Context) (summary, error) { return RunWS(ctx, cfg) })
		},
	}
	fl := cmd.Flags()
	fl.IntVar(&cfg.Connections, "connections", DefaultWSConnections, "number of connections to open")
	fl.Float64Var(&cfg.ConnectRate, "connect-rate", 0, "connections opened per second (0: as fast as --connect-parallel allows)")
	fl.IntVar(&cfg.ConnectParallel, "connect-parallel", DefaultConnectParallel, "most handshakes in progress at once")
	fl.IntVar(&cfg.Sources, "sources", 0, "source addresses 127.0.0.1…127.0.0.K to spread connections over (0: one per 10,000 connections)")
	fl.DurationVarP(&cfg.Duration, "duration", "d", DefaultDuration, "length of the message phase (at most 10m)")
	fl.Float64Var(&cfg.MessageRate, "message-rate", DefaultMessageRate, "messages per second over all connections (0: no message phase)")
	fl.StringVar(&cfg.Message, "message", DefaultWSMessage, "message template: {{seq}} becomes the message's marker, {{ts}} the send time (Unix ms)")
	fl.DurationVar(&cfg.Timeout, "timeout", DefaultWSTimeout, "handshake, write and @connections post timeout")
	fl.DurationVar(&cfg.ReplyTimeout, "reply-timeout", DefaultReplyTimeout, "how long replies may take after the last send, and how long a fan-out round waits")
	fl.StringArrayVarP(&headers, "header", "H", nil, "handshake header 'Name: value' (repeatable)")
	fl.BoolVar(&cfg.Fanout, "post-fanout", false, "after the message phase, time fan-out: POST to every connection through @connections")
	fl.IntVar(&cfg.FanoutRounds, "fanout-rounds", DefaultFanoutRounds, "fan-out: rounds of one post to every connection")
	fl.StringVar(&cfg.FanoutMessage, "fanout-message", DefaultFanoutMessage, "fan-out: message template ({{seq}} as in --message)")
	fl.IntVar(&cfg.PostParallel, "post-parallel", DefaultPostParallel, "fan-out: most @connections posts in flight")
	fl.StringVar(&cfg.Region, "region", DefaultRegion, "fan-out: the stack's region, for SigV4")
	fl.StringVar(&cfg.AccessKey, "access-key", "", "fan-out: access key id (default $GATEHOUSE_ACCESS_KEY)")
	fl.StringVar(&cfg.SecretKey, "secret-key", "", "fan-out: secret access key (default $GATEHOUSE_SECRET_KEY)")
	fl.StringVar(&cfg.IDMessage, "id-message", "", "fan-out: message sent once per connection whose reply carries its connectionId")
	fl.StringVar(&cfg.IDAdmin, "ids-from-admin", "", "fan-out: admin API URL whose connection listing gives the ids")
	fl.StringVar(&token, "token", "", "admin token for --ids-from-admin (default: $GATEHOUSE_TOKEN, then --data's admin.token)")
	fl.StringVar(&dataDir, "data", ".gatehouse", "data directory of the running node (finds the admin token)")
	fl.BoolVar(&progress, "progress", false, "print a progress line on stderr every second (default when stderr is a terminal)")
	fl.BoolVar(&asJSON, "json", false, "print the summary as JSON")
	fl.StringVar(&report, "report", "", "also write a self-contained HTML report to this file")
	return cmd
}

func newColdCommand(stdout, stderr io.Writer) *cobra.Command {
	var (
		cfg      ColdConfig
		bundle   string
		payload  string
		token    string
		dataDir  string
		progress bool
		asJSON   bool
		report   string
	)
	cmd := &cobra.Command{
		Use:   "cold [ADMIN-URL] --bundle B.zip",
		Short: "Deploy N copies of a bundle and time each one's first (cold) invocation",
		Long: `Measure cold starts through the admin API at ADMIN-URL (such as http://127.0.0.1:8081; without it,
the address of the node running in --data).

The bundle is copied --functions times, each copy's manifest naming a distinct function
(--prefix, a random run id and a number, such as coldtest-3fa9c1-07) and keeping no instance warm
(minWarm 0). One at a time, each copy is deployed (POST /admin/v1/functions, which answers once the
workers have loaded it) and invoked once (POST /admin/v1/functions/NAME/invocations with --payload):
that first invocation starts the function's first instance. With --warm, it is invoked a second
time for comparison. The summary shows the deploy times and the first (and warm) invocation
percentiles. The functions are deleted at the end unless --keep.

The token comes from --token, $GATEHOUSE_TOKEN or the data directory's admin.token. The run stops
after --functions copies or --duration (at most 10m), whichever comes first; SIGINT stops it early.
The functions deployed so far are deleted either way.`,
		Example: `  gatehouse loadtest cold --bundle hello.zip --functions 20
  gatehouse loadtest cold http://127.0.0.1:8081 --bundle hello.zip --functions 50 --warm --report cold.html`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if bundle == "" {
				return fmt.Errorf("--bundle is required: a function bundle (.zip), as gatehouse build writes")
			}
			b, err := os.ReadFile(bundle)
			if err != nil {
				return fmt.Errorf("--bundle: %v", err)
			}
			cfg.Bundle = b
			if file, ok := strings.CutPrefix(payload, "@"); ok {
				p, err := os.ReadFile(file)
				if err != nil {
					return fmt.Errorf("--payload: %v", err)
				}
				cfg.Payload = p
			} else {
				cfg.Payload = []byte(payload)
			}
			if len(args) == 1 {
				cfg.Admin = args[0]
			} else if cfg.Admin, err = AdminURL(dataDir); err != nil {
				return err
			}
			if cfg.Token, err = AdminToken(token, dataDir); err != nil {
				return err
			}
			cfg.Progress, cfg.ProgressInPlace = progressTo(stderr, progress)
			return runAndOutput(stdout, asJSON, report, func(ctx context.Context) (summary, error) { return RunCold(ctx, cfg) })
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&bundle, "bundle", "", "the function bundle (.zip) to deploy copies of")
	fl.IntVarP(&cfg.Functions, "functions", "n", DefaultColdFunctions, "number of copies to deploy and invoke")
	fl.StringVar(&cfg.Prefix, "prefix", DefaultColdPrefix, "name prefix of the copies")
	fl.StringVarP(&payload, "payload", "p", "{}", "invocation event: JSON text, or @FILE")
	fl.BoolVar(&cfg.Warm, "warm", false, "invoke each function a second time (warm) for comparison")
	fl.BoolVar(&cfg.Keep, "keep", false, "keep the functions instead of deleting them at the end")
	fl.DurationVarP(&cfg.Duration, "duration", "d", DefaultColdDuration, "stop deploying after this long (at most 10m)")
	fl.DurationVar(&cfg.Timeout, "timeout", DefaultColdTimeout, "per admin request (a deploy waits until the workers loaded it)")
	fl.StringVar(&token, "token", "", "admin token (default: $GATEHOUSE_TOKEN, then --data's admin.token)")
	fl.StringVar(&dataDir, "data", ".gatehouse", "data directory of the running node (finds its admin address and token)")
	fl.BoolVar(&progress, "progress", false, "print a progress line on stderr after each function (default when stderr is a terminal)")
	fl.BoolVar(&asJSON, "json", false, "print the summary as JSON")
	fl.StringVar(&report, "report", "", "also write a self-contained HTML report to this file")
	return cmd
}

func writeReport(path string, res summary) error {
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
