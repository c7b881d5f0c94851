package cli

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"gatehouse.dev/gatehouse/functions"
	"gatehouse.dev/gatehouse/internal/adminapi"
	"gatehouse.dev/gatehouse/internal/stackfile"
)

func newDeployCommand(stdout, stderr io.Writer) *cobra.Command {
	var flags adminFlags
	var alias, description, stackFile string
	cmd := &cobra.Command{
		Use:   "deploy DIR|BUNDLE.zip",
		Short: "Deploy a function: build DIR into a bundle and upload it, or upload BUNDLE.zip",
		Long: `Deploy a function to a running node. A directory is built first, as gatehouse build does; a .zip
bundle is uploaded as it is. Deploying the same module and manifest as the newest version changes
nothing. With --alias, the alias is pointed at the deployed version.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			src := args[0]
			info, err := os.Stat(src)
			if err != nil {
				return err
			}
			if !info.IsDir() && (!info.Mode().IsRegular() || !strings.EqualFold(filepath.Ext(src), ".zip")) {
				return fmt.Errorf("%s is neither a function directory nor a bundle: deploy a directory, or a .zip made by `gatehouse build`", src)
			}
			c, err := flags.client(cmd.Context())
			if err != nil {
				return err
			}
			bundle := src
			if info.IsDir() {
				tmp, err := os.MkdirTemp("", "gatehouse-deploy-")
				if err != nil {
					return err
				}
				defer os.RemoveAll(tmp)
				// With --json, stdout is for the answer only.
				progress := stdout
				if flags.json {
					progress = stderr
				}
				name := filepath.Base(filepath.Clean(src))
				if abs, err := filepath.Abs(src); err == nil {
					name = filepath.Base(abs)
				}
				seed, err := stackSettings(src, stackFile, cmd.Flags().Changed("file"), progress)
				if err != nil {
					return err
				}
				if seed != nil {
					name = seed.Name
				}
				if bundle, err = buildBundle(cmd.Context(), src, filepath.Join(tmp, name+".zip"), flags.dataDir, progress, seed); err != nil {
					return err
				}
			}
			return deploy(cmd.Context(), c, bundle, adminapi.DeployOptions{Alias: alias, Description: description}, flags.json, stdout)
		},
	}
	flags.register(cmd)
	cmd.Flags().StringVar(&alias, "alias", "", "point this alias at the deployed version")
	cmd.Flags().StringVarP(&stackFile, "file", "f", DefaultStackFile, "the stack file whose settings a function directory it defines is deployed with")
	cmd.Flags().StringVar(&description, "description", "", "the new version's description")
	return cmd
}

// stackSettings returns the manifest the stack file gives the function whose source is dir, or nil
// when the stack file defines none (or there is no stack file, unless it was asked for by name). It
// says on progress which settings the version gets.
func stackSettings(dir, stackFile string, named bool, progress io.Writer) (*functions.Manifest, error) {
	if _, err := os.Stat(filepath.Join(dir, functions.ManifestFile)); err == nil {
		return nil, nil // the directory's own manifest decides
	}
	if _, err := os.Stat(stackFile); errors.Is(err, os.ErrNotExist) && !named {
		return nil, nil
	}
	stack, err := stackfile.Load(stackFile)
	if err != nil {
		return nil, err
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	for name, fn := range stack.Functions {
		if fn.Source != filepath.Clean(abs) {
			continue
		}
		m := functions.SpecManifest(name, fn)
		if err := m.Validate(); err != nil {
			return nil, fmt.Errorf("%s: function %s: %w", stackFile, name, err)
		}
		env := slices.Sorted(maps.Keys(m.Environment))
		fmt.Fprintf(progress, "  %-16s settings from %s: timeout %s, memory %d MB, environment %s\n", name, stackFile,
			m.Timeout, m.MemoryMB, cmp.Or(strings.Join(env, ", "), "(none)"))
		return &m, nil
	}
	return nil, nil
}

// deploy uploads the bundle at path and prints the answer.
func deploy(ctx context.Context, c *adminapi.Client, path string, opts adminapi.DeployOptions, asJSON bool, stdout io.Writer) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return err
	}
	start := time.Now()
	out, raw, err := c.Deploy(ctx, f, info.Size(), opts)
	if err != nil {
		return err
	}
	elapsed := time.Since(start)
	if asJSON {
		return printJSON(stdout, raw)
	}
	if out.Created {
		fmt.Fprintf(stdout, "deployed %s version %d (module %s, %s) in %.1fs\n", out.Function, out.Version.Version,
			abbrev(out.Version.ModuleSHA256, 12), humanSize(out.Version.ModuleSize), elapsed.Seconds())
	} else {
		fmt.Fprintf(stdout, "%s is unchanged: version %d (same module and manifest)\n", out.Function, out.Version.Version)
	}
	if out.Alias != nil {
		fmt.Fprintf(stdout, "alias %s → %s\n", out.Alias.Name, aliasRoute(*out.Alias))
	}
	return nil
}
