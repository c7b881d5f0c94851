// Package app is Gatehouse's wiring: it turns the command line and the stack file into the configuration
// of each package, starts them in order (bus, workers, gateway, admin), supervises worker processes and
// stops everything in reverse order.
package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"gatehouse.dev/gatehouse/functions"
	"gatehouse.dev/gatehouse/runtimes"
)

// Main runs the gatehouse command line with args (without the program name) and returns the exit code.
func Main(args []string, stdout, stderr io.Writer) int {
	root := newRootCommand(stdout, stderr)
	root.SetArgs(args)
	if err := root.Execute(); err != nil {
		fmt.Fprintln(stderr, "gatehouse:", err)
		return 1
	}
	return 0
}

func newRootCommand(stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:           "gatehouse",
		Short:         "A serverless function host with a built-in API gateway",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.AddCommand(newUpCommand(stdout, stderr), newWorkerCommand(stderr), newBuildCommand(stdout))
	return root
}

func newUpCommand(stdout, stderr io.Writer) *cobra.Command {
	opts := Options{}
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Run the stack: gateway, workers and an embedded NATS bus",
		Long: `Run the stack described by a stack file (default ./gatehouse.yaml; in the Gatehouse repository
without one, samples/gatehouse.yaml). Go functions are built to WebAssembly first.
SIGINT or SIGTERM drains requests in flight, stops the workers and exits 0.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !cmd.Flags().Changed("file") {
				opts.StackFile = defaultStackFile()
			}
			opts.Stdout, opts.Stderr = stdout, stderr
			ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			node, err := Start(ctx, opts)
			if err != nil {
				return err
			}
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
	f.StringVarP(&opts.StackFile, "file", "f", DefaultStackFile, "stack file")
	f.StringVar(&opts.Addr, "addr", DefaultAddr, "gateway listen address")
	f.StringVar(&opts.AdminAddr, "admin-addr", DefaultAdminAddr, "admin listen address")
	f.StringVar(&opts.DataDir, "data", DefaultDataDir, "data directory")
	f.IntVar(&opts.Workers, "workers", DefaultWorkers, "number of worker processes")
	return cmd
}

// defaultStackFile is ./gatehouse.yaml, or the samples' stack file when run from the root of the
// Gatehouse repository without one.
func defaultStackFile() string {
	if _, err := os.Stat(DefaultStackFile); err == nil {
		return DefaultStackFile
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
	f.StringVar(&opts.dataDir, "data", DefaultDataDir, "data directory")
	f.StringVar(&opts.functions, "functions", "", "function table written by up")
	f.StringVar(&opts.slots, "slots", "", "slot table shared with the supervising process")
	return cmd
}

func newBuildCommand(stdout io.Writer) *cobra.Command {
	var out, dataDir string
	cmd := &cobra.Command{
		Use:   "build DIR",
		Short: "Build a Go function directory into a WebAssembly module",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			b, err := functions.NewBuilder(functions.BuildConfig{
				CacheDir:      filepath.Join(dataDir, "build"),
				SDK:           runtimes.GoSDKSource(),
				SDKImportPath: runtimes.SDKImportPath,
				SDKRequires:   []string{"github.com/aws/aws-lambda-go " + awsLambdaGoVersion},
				Progress:      stdout,
			})
			if err != nil {
				return err
			}
			name := filepath.Base(filepath.Clean(args[0]))
			path, err := b.Build(cmd.Context(), name, args[0])
			if err != nil {
				return err
			}
			if out == "" {
				out = name + ".wasm"
			}
			data, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			if err := os.WriteFile(out, data, 0o644); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "wrote %s (%d bytes)\n", out, len(data))
			return nil
		},
	}
	cmd.Flags().StringVarP(&out, "output", "o", "", "output file (default DIR's name + .wasm)")
	cmd.Flags().StringVar(&dataDir, "data", DefaultDataDir, "data directory (holds the build cache)")
	return cmd
}
