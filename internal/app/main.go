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
	"time"

	"github.com/spf13/cobra"

	"gatehouse.dev/gatehouse/functions"
	"gatehouse.dev/gatehouse/runtimes"
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
		Version:       versionText(),
	}
	root.SetVersionTemplate("{{.Version}}\n")
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.AddCommand(newUpCommand(stdout, stderr), newWorkerCommand(stderr), newBuildCommand(stdout), newTokensCommand(stdout))
	root.AddCommand(newFunctionCommands(stdout, stderr)...)
	root.AddCommand(newConnectionsCommand(stdout), newKeysCommand(stdout), newLoadtestCommand(stdout, stderr), newVersionCommand(stdout))
	return root
}

func newUpCommand(stdout, stderr io.Writer) *cobra.Command {
	opts := Options{}
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Run the stack: gateway, workers and an embedded NATS bus",
		Long: `Run the stack described by a stack file (default ./gatehouse.yaml; in the Gatehouse repository
without one, samples/gatehouse.yaml). Go functions are built to WebAssembly first.
SIGHUP re-reads the stack file and applies what changed (as gatehouse reload does).
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
			// SIGHUP re-reads the stack file, as `gatehouse reload` does.
			hup := make(chan os.Signal, 1)
			signal.Notify(hup, syscall.SIGHUP)
			defer signal.Stop(hup)
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
	f.StringVarP(&opts.StackFile, "file", "f", DefaultStackFile, "stack file")
	f.StringVar(&opts.Addr, "addr", DefaultAddr, "gateway listen address")
	f.StringVar(&opts.AdminAddr, "admin-addr", DefaultAdminAddr, "admin listen address (loopback unless --admin-public)")
	f.BoolVar(&opts.AdminPublic, "admin-public", false, "allow an --admin-addr beyond loopback (the admin API has no TLS: put a TLS proxy in front)")
	f.StringVar(&opts.DataDir, "data", DefaultDataDir, "data directory")
	f.IntVar(&opts.Workers, "workers", DefaultWorkers, "number of worker processes")
	f.IntVar(&opts.WorkerMemoryMB, "worker-memory", 0, "MB of guest memory each worker may commit, over all its sandboxes (default: half the machine's memory shared among the workers)")
	f.DurationVar(&opts.QuarantineFor, "quarantine-for", 5*time.Minute, "how long a function that overran its timeout twice within a minute runs one invocation at a time per worker")
	f.BoolVar(&opts.Standby, "standby", true, "keep a spare worker loaded to replace one that exits at once")
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
	f.StringVar(&opts.slots, "slots", "", "slot table shared with the supervising process")
	f.BoolVar(&opts.standby, "standby", false, "load, then wait for the id of the worker to replace on standard input")
	f.IntVar(&opts.memoryMB, "memory", 0, "MB of guest memory the worker may commit (0: no bound)")
	f.DurationVar(&opts.quarantineFor, "quarantine-for", 0, "how long a function that overran its timeout repeatedly stays in quarantine (0: the default)")
	opts.stdin, opts.stdout = os.Stdin, os.Stdout
	return cmd
}

func newBuildCommand(stdout io.Writer) *cobra.Command {
	var out, dataDir string
	cmd := &cobra.Command{
		Use:   "build DIR",
		Short: "Build a Go function directory into a bundle (NAME.zip) or a WebAssembly module",
		Long: `Build the Go function in DIR to a WebAssembly reactor module and write a bundle, NAME.zip: a zip
of function.yaml (the manifest) and function.wasm (the module), as docs/bundles.md describes. The
manifest is DIR/function.yaml when there is one, else the defaults with DIR's name as the function's
name. With -o FILE.wasm, write the bare module instead.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			_, err := buildBundle(cmd.Context(), args[0], out, dataDir, stdout, nil)
			return err
		},
	}
	cmd.Flags().StringVarP(&out, "output", "o", "", "output file: a bundle (default NAME.zip), or the bare module when it ends in .wasm")
	cmd.Flags().StringVar(&dataDir, "data", DefaultDataDir, "data directory (holds the build cache)")
	return cmd
}

// buildBundle builds the Go function in dir and writes a bundle to out (default NAME.zip, NAME from the
// manifest), or the bare module when out ends in .wasm, printing progress to stdout. It returns the path
// written. Build caches live under dataDir/build.
func buildBundle(ctx context.Context, dir, out, dataDir string, stdout io.Writer, seed *functions.Manifest) (string, error) {
	name := filepath.Base(filepath.Clean(dir))
	if abs, err := filepath.Abs(dir); err == nil {
		name = filepath.Base(abs) // "." names the current directory
	}
	bare := strings.HasSuffix(out, ".wasm")
	// The manifest is checked before the build, which takes seconds.
	m := functions.NewManifest(name)
	if seed != nil {
		m, name = *seed, seed.Name
		m.ABI = functions.ABIReactor
	} else if !bare {
		manifestPath := filepath.Join(dir, functions.ManifestFile)
		data, err := os.ReadFile(manifestPath)
		switch {
		case err == nil:
			pm, err := functions.ParseManifest(data)
			if me := (*functions.ManifestError)(nil); errors.As(err, &me) {
				me.File = manifestPath
				return "", me
			} else if err != nil {
				return "", err
			}
			m = *pm
			switch m.ABI {
			case functions.ABICommand:
				return "", fmt.Errorf("%s says abi: %s, but gatehouse build makes %s modules; remove abi or set it to %s",
					manifestPath, functions.ABICommand, functions.ABIReactor, functions.ABIReactor)
			case "":
				m.ABI = functions.ABIReactor
			}
		case errors.Is(err, os.ErrNotExist):
			m.ABI = functions.ABIReactor
			if err := m.Validate(); err != nil {
				return "", fmt.Errorf("%q cannot be a function's name (want 1 to %d letters, digits, - and _): rename the directory, or give the name in %s (name: NAME)",
					name, functions.MaxNameLength, manifestPath)
			}
		default:
			return "", err
		}
		name = m.Name
	}
	b, err := functions.NewBuilder(functions.BuildConfig{
		CacheDir:      filepath.Join(dataDir, "build"),
		SDK:           runtimes.GoSDKSource(),
		SDKImportPath: runtimes.SDKImportPath,
		SDKRequires:   []string{"github.com/aws/aws-lambda-go " + awsLambdaGoVersion},
		Progress:      stdout,
	})
	if err != nil {
		return "", err
	}
	path, err := b.Build(ctx, name, dir)
	if err != nil {
		return "", err
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	if bare {
		if err := os.WriteFile(out, data, 0o644); err != nil {
			return "", err
		}
		fmt.Fprintf(stdout, "wrote %s (%d bytes)\n", out, len(data))
		return out, nil
	}
	if out == "" {
		out = m.Name + ".zip"
	}
	fmt.Fprintf(stdout, "  %-16s bundling %s …\n", name, out)
	// Written beside out and renamed, so a failed build never leaves half a bundle.
	tmp, err := os.CreateTemp(filepath.Dir(out), ".gatehouse-bundle-*")
	if err != nil {
		return "", err
	}
	defer os.Remove(tmp.Name())
	if err := functions.WriteBundle(tmp, m, data); err != nil {
		tmp.Close()
		return "", err
	}
	info, err := tmp.Stat()
	if err == nil {
		err = tmp.Chmod(0o644)
	}
	var written *functions.Bundle
	if err == nil {
		// Read it back as a deploy will: the same checks, and the module's sha256 to show.
		written, err = functions.ReadBundle(tmp, info.Size(), functions.BundleLimits{})
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", err
	}
	if err := os.Rename(tmp.Name(), out); err != nil {
		return "", err
	}
	fmt.Fprintf(stdout, "wrote %s (%d bytes; module %s, %d bytes, sha256 %s…)\n",
		out, info.Size(), written.Manifest.Module, len(written.Module), written.SHA256[:12])
	return out, nil
}
