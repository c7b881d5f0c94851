package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"gatehouse.dev/gatehouse/functions"
	"gatehouse.dev/gatehouse/internal/spec"
	"gatehouse.dev/gatehouse/runtimes"
)

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
	if spec.IsProcessRuntime(m.Runtime) {
		// A process runtime's package is its directory as it is, zipped: nothing is built.
		pkg, err := functions.ZipPackage(dir)
		if err != nil {
			return "", err
		}
		if m.Module == functions.DefaultModuleFile {
			m.Module = functions.DefaultPackageFile
		}
		m.ABI = ""
		if out == "" {
			out = m.Name + ".zip"
		}
		f, err := os.Create(out)
		if err != nil {
			return "", err
		}
		if err := functions.WriteBundle(f, m, pkg); err != nil {
			f.Close()
			return "", err
		}
		if err := f.Close(); err != nil {
			return "", err
		}
		fmt.Fprintf(stdout, "wrote %s (%s package, %d bytes)\n", out, m.Runtime, len(pkg))
		return out, nil
	}
	b, err := functions.NewBuilder(functions.BuildConfig{
		CacheDir:      filepath.Join(dataDir, "build"),
		SDK:           runtimes.GoSDKSource(),
		SDKImportPath: runtimes.SDKImportPath,
		SDKRequires:   runtimes.GoSDKRequires(),
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
