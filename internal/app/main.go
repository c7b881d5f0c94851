// Package app is Gatehouse's wiring: it turns the command line and the stack file into the configuration
// of each package, starts them in order (bus, workers, gateway, admin), supervises worker processes and
// stops everything in reverse order.
package app

import (
	"context"
	"errors"
	"fmt"
	"gatehouse.dev/gatehouse/internal/acme"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	commands "gatehouse.dev/gatehouse/internal/cli"
	"gatehouse.dev/gatehouse/internal/project"
)

// Main runs the gatehouse command line with args (without the program name) and returns the exit code.
func Main(args []string, stdout, stderr io.Writer) int {
	if dir := os.Getenv(envCPUProfile); dir != "" {
		stopProfile, err := startCPUProfile(dir, args)
		if err != nil {
			fmt.Fprintln(stderr, "gatehouse:", err)
			return 1
		}
		defer stopProfile()
	}
	return commands.Run(newRootCommand(stdout, stderr), args, stderr)
}

// newRootCommand is the gatehouse command: the user-facing commands of internal/cli (imported as
// commands: the tests' subprocess helper is called cli), and the node's own, up and the hidden
// worker.
func newRootCommand(stdout, stderr io.Writer) *cobra.Command {
	return commands.NewRoot(stdout, stderr, newUpCommand(stdout, stderr), newWorkerCommand(stderr), newCACommand(stdout), newClusterCommand(stdout))
}

func newUpCommand(stdout, stderr io.Writer) *cobra.Command {
	opts := Options{}
	var overrides []string
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Run the stack: gateway, workers and an embedded NATS bus",
		Long: `Run the stack described by a stack file, an AWS SAM or CloudFormation template, or a
serverless.yml (default: the first of ./gatehouse.yaml, ./template.yaml, ./template.json and
./serverless.yml; in the Gatehouse repository without one, samples/gatehouse.yaml). Go functions are built to WebAssembly first.
SIGHUP re-reads the stack file and applies what changed (as gatehouse reload does).
SIGINT or SIGTERM drains requests in flight, stops the workers and exits 0.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !cmd.Flags().Changed("file") {
				opts.StackFile = defaultStackFile()
			}
			params, err := parseParameterOverrides(overrides)
			if err != nil {
				return err
			}
			opts.Parameters = params
			opts.Stdout, opts.Stderr = stdout, stderr
			ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			// SIGHUP re-reads the stack file, as `gatehouse reload` does. It is caught from before the
			// start, so that one sent while the node starts is not fatal: it reloads once started.
			hup := make(chan os.Signal, 1)
			signal.Notify(hup, syscall.SIGHUP)
			defer signal.Stop(hup)
			node, err := Start(ctx, opts)
			if err != nil {
				return err
			}
			go func() {
				for {
					select {
					case <-hup:
						if rep, err := node.Reload(ctx); err != nil {
							fmt.Fprintf(stderr, "reload: %v\n", err)
						} else {
							fmt.Fprint(stdout, rep.Summary())
						}
					case <-ctx.Done():
						return
					}
				}
			}()
			<-ctx.Done()
			stop()
			fmt.Fprintln(stdout, "\ndraining …")
			if err := node.Stop(context.Background()); err != nil {
				return err
			}
			fmt.Fprintln(stdout, "stopped")
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVarP(&opts.StackFile, "file", "f", DefaultStackFile, "stack file, or SAM / CloudFormation template")
	f.StringVar(&opts.TraceEndpoint, "otlp-endpoint", "", "send OpenTelemetry spans of requests and invocations to this OTLP collector: http://HOST:PORT (OTLP/HTTP) or grpc://HOST:PORT (OTLP/gRPC); off by default")
	f.Float64Var(&opts.TraceRatio, "trace-ratio", 1, "share of the traces that start at the gateway which are sampled, 0 to 1 (a request with a traceparent follows its sampled flag)")
	f.BoolVar(&opts.Watch, "watch", false, "reload when the stack file or a function's source changes: only what changed is deployed, and a broken edit keeps the last good version serving")
	f.StringVar(&opts.Stage, "stage", "", "a serverless.yml's stage (${opt:stage})")
	f.StringArrayVar(&overrides, "parameter-overrides", nil, "a SAM template's parameters: KEY=VALUE (repeat, or several separated by spaces), as sam deploy takes them")
	f.StringVar(&opts.Addr, "addr", DefaultAddr, "gateway listen address")
	f.StringVar(&opts.AdminAddr, "admin-addr", DefaultAdminAddr, "admin listen address (loopback unless --admin-public)")
	f.BoolVar(&opts.AdminPublic, "admin-public", false, "allow an --admin-addr beyond loopback (without --admin-tls the admin API has no TLS: put a TLS proxy in front)")
	f.BoolVar(&opts.AdminTLS, "admin-tls", false, "serve the admin API over HTTPS with the local certificate authority's certificate (the CLI trusts it from the data directory)")
	f.StringVar(&opts.AWSAddr, "aws-addr", DefaultAWSAddr, "AWS API listen address, for the AWS CLI and SDKs with --endpoint-url (loopback unless --aws-public; empty: none)")
	f.BoolVar(&opts.AWSPublic, "aws-public", false, "allow an --aws-addr beyond loopback (without --aws-tls the AWS API has no TLS: put a TLS proxy in front)")
	f.BoolVar(&opts.AWSTLS, "aws-tls", false, "serve the AWS API over HTTPS with the local certificate authority's certificate (the AWS CLI takes --ca-bundle with its file)")
	f.BoolVar(&opts.TLS, "tls", false, "serve the gateway over HTTPS too, on --tls-addr (default "+DefaultTLSAddr+"), with certificates from the stack's domains and a local certificate authority made once under the data directory")
	f.StringVar(&opts.TLSAddr, "tls-addr", "", "HTTPS listen address of the gateway (turns TLS on)")
	f.StringVar(&opts.ACMECA, "acme-ca", "", "ACME directory URL for the domains with certificate: acme (default Let's Encrypt; its staging CA is "+acme.LetsEncryptStaging+")")
	f.StringVar(&opts.ACMEEmail, "acme-email", "", "contact e-mail of the ACME account")
	f.StringVar(&opts.ACMECARoot, "acme-ca-root", "", "PEM file of the root certificates the ACME directory's HTTPS is checked with (a private ACME CA); default the system's")
	f.StringVar(&opts.DataDir, "data", DefaultDataDir, "data directory")
	f.IntVar(&opts.Workers, "workers", DefaultWorkers, "number of worker processes")
	f.IntVar(&opts.WorkerMemoryMB, "worker-memory", 0, "MB of guest memory each worker may commit, over all its sandboxes (default: half the machine's memory shared among the workers)")
	f.DurationVar(&opts.QuarantineFor, "quarantine-for", 5*time.Minute, "how long a function that overran its timeout twice within a minute runs one invocation at a time per worker")
	f.BoolVar(&opts.Standby, "standby", true, "keep a spare worker loaded to replace one that exits at once")
	f.StringVar(&opts.WorkerMode, "worker-mode", WorkerModeProcess, "where guests run: process (--workers worker processes) or inline (one worker inside this process: lower latency and CPU per request; a worker stalled outside guest code cannot be replaced; docs/performance.md)")
	f.IntVar(&opts.OutboundMaxResponseMB, "outbound-max-response-mb", 0, "MB the body of a response to a function's outbound request may have (default 6)")
	f.StringVar(&opts.OutboundCAFile, "outbound-ca-file", "", "PEM file of extra root certificates functions' outbound HTTPS requests trust (for local test servers), besides the system's")
	f.StringVar(&opts.Cluster, "cluster", "", "join the cluster of this name: the embedded NATS servers of its nodes form one NATS cluster with clustered JetStream (docs/cluster.md)")
	f.StringVar(&opts.ClusterListen, "cluster-listen", "", "HOST:PORT of this node's route listener, which the other nodes connect to (with --cluster)")
	f.StringSliceVar(&opts.Join, "join", nil, "HOST:PORT of the nodes' route listeners, comma-separated (with --cluster; this node's own may be in the list)")
	f.StringVar(&opts.ClusterTokenFile, "cluster-token-file", "", "file holding the cluster's join token, made by `gatehouse cluster token` (or $"+envClusterToken+"; needed on a node's first start)")
	f.StringVar(&opts.Role, "role", RoleAll, "what this node does: all, gateway (serves HTTP and WebSockets, runs no workers) or worker (runs workers, serves no gateway)")
	f.StringVar(&opts.NATSURL, "nats", "", "use this external NATS (with JetStream) instead of an embedded server: nats://HOST:PORT[,…]")
	f.StringVar(&opts.NATSCreds, "nats-creds", "", "credentials file for --nats (the node's processes; its workers too unless --nats-worker-creds)")
	f.StringVar(&opts.NATSWorkerCreds, "nats-worker-creds", "", "credentials file of the node's workers for --nats: a user with only the worker permissions (gatehouse cluster nats-permissions)")
	f.BoolVar(&opts.MigrateStore, "migrate-store", false, "with --cluster: move a store written by a single node into the cluster (set aside, copied in once the cluster has a quorum)")
	f.DurationVar(&opts.AsyncAckWait, "async-ack-wait", 30*time.Second, "how long an asynchronous invocation taken by a node that stopped answering waits before another node (or this one, restarted) runs it again")
	f.IntVar(&opts.AsyncConcurrency, "async-concurrency", 0, "how many asynchronous invocations this node runs at once (0: 4 per CPU); the rest of the workers' capacity stays for requests")
	f.DurationVar(&opts.CutOff, "cutoff", 5*time.Second, "in a cluster, how long a node may go without a quorum of the stored state's servers before it stops serving (503)")
	return cmd
}

// newClusterCommand is `gatehouse cluster`: token (made from a data directory, no node needed) and
// status (asked of a running node).
func newClusterCommand(stdout io.Writer) *cobra.Command {
	cmd := &cobra.Command{Use: "cluster", Short: "Make a cluster's join token, and see the cluster's status"}
	var dataDir, name string
	token := &cobra.Command{
		Use:   "token",
		Short: "Print the cluster's join token (made once, from the data directory's secrets)",
		Long: `Print the join token every node of a cluster starts with (--cluster-token-file): the route
credentials, the secret key that seals secret environment values, the admin token and the AWS API's
access key. It is made once, in the data directory given (mode 0600), from the secrets it already has;
run it on one machine and copy the output to the others by a secure channel. The token is a secret:
keep it out of URLs, logs and version control.`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			if name == "" {
				return errors.New("--cluster NAME is required")
			}
			s, err := makeClusterSecrets(dataDir, name)
			if err != nil {
				return err
			}
			fmt.Fprintln(stdout, encodeClusterToken(s))
			return nil
		},
	}
	token.Flags().StringVar(&dataDir, "data", DefaultDataDir, "data directory whose secrets the token carries")
	token.Flags().StringVar(&name, "cluster", "", "the cluster's name (as --cluster of gatehouse up)")
	var stack string
	perms := &cobra.Command{
		Use:   "nats-permissions",
		Short: "Print the permissions a stack's node and worker users need on an external NATS (nats-server configuration)",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			return printNATSPermissions(stdout, stack)
		},
	}
	perms.Flags().StringVar(&stack, "stack", "", "the stack's name (as in its stack file)")
	perms.MarkFlagRequired("stack")
	cmd.AddCommand(token, commands.NewClusterStatusCommand(stdout), perms)
	return cmd
}

// defaultStackFile is the project's definition in the working directory (project.Find), or the
// samples' stack file when run from the root of the Gatehouse repository without one.
func defaultStackFile() string {
	if p, ok := project.Find("."); ok {
		return p
	}
	samples := filepath.Join("samples", "gatehouse.yaml")
	if mod, err := os.ReadFile("go.mod"); err == nil && strings.HasPrefix(string(mod), "module gatehouse.dev/gatehouse\n") {
		if _, err := os.Stat(samples); err == nil {
			return samples
		}
	}
	return DefaultStackFile
}

func newWorkerCommand(stderr io.Writer) *cobra.Command {
	var opts workerOptions
	cmd := &cobra.Command{
		Use:    "worker",
		Short:  "Run a scheduler worker (started and supervised by `gatehouse up`)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if os.Getenv(envBusURL) == "" {
				return errors.New("worker: started without a bus; `gatehouse up` starts workers")
			}
			log := slog.New(slog.NewTextHandler(stderr, nil))
			return runWorker(opts, log)
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.id, "id", "w1", "worker id")
	f.StringVar(&opts.stack, "stack", "default", "stack name")
	f.StringVar(&opts.node, "node", "", "the id of the node running the worker")
	f.StringVar(&opts.dataDir, "data", DefaultDataDir, "data directory")
	f.StringVar(&opts.slots, "slots", "", "slot table shared with the supervising process")
	f.BoolVar(&opts.standby, "standby", false, "load, then wait for the id of the worker to replace on standard input")
	f.IntVar(&opts.memoryMB, "memory", 0, "MB of guest memory the worker may commit (0: no bound)")
	f.DurationVar(&opts.quarantineFor, "quarantine-for", 0, "how long a function that overran its timeout repeatedly stays in quarantine (0: the default)")
	f.StringVar(&opts.outboundCAFile, "outbound-ca-file", "", "PEM file of extra root certificates for functions' outbound HTTPS requests")
	f.StringVar(&opts.gateway, "gateway", "", "the node's gateway address, which sandboxed process runtimes reach on their own loopback")
	f.StringVar(&opts.traceEndpoint, "otlp-endpoint", "", "where spans go (up's --otlp-endpoint)")
	f.Float64Var(&opts.traceRatio, "trace-ratio", 1, "share of new traces sampled")
	f.StringVar(&opts.accountID, "account-id", "", "the stack's account id (in process runtimes' function ARNs)")
	f.StringVar(&opts.region, "region", "", "the stack's region (AWS_REGION of process runtimes, and what their credentials sign for)")
	f.IntVar(&opts.outboundMaxResponseMB, "outbound-max-response-mb", 0, "MB a response to a function's outbound request may have (0: 6)")
	opts.stdin, opts.stdout = os.Stdin, os.Stdout
	return cmd
}

// parseParameterOverrides reads --parameter-overrides as sam takes them: KEY=VALUE, several in one
// value separated by spaces, or ParameterKey=KEY,ParameterValue=VALUE.
func parseParameterOverrides(values []string) (map[string]string, error) {
	out := map[string]string{}
	for _, v := range values {
		for _, f := range strings.Fields(v) {
			if rest, ok := strings.CutPrefix(f, "ParameterKey="); ok {
				key, val, ok := strings.Cut(rest, ",ParameterValue=")
				if !ok {
					return nil, fmt.Errorf("--parameter-overrides %q: want ParameterKey=KEY,ParameterValue=VALUE", f)
				}
				out[key] = val
				continue
			}
			key, val, ok := strings.Cut(f, "=")
			if !ok || key == "" {
				return nil, fmt.Errorf("--parameter-overrides %q: want KEY=VALUE", f)
			}
			out[key] = val
		}
	}
	return out, nil
}
