package cli

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"
)

// versionText is what `gatehouse version` and `gatehouse --version` print: this build's module version
// (with its commit when the build recorded one), the Go toolchain, and the versions of the parts a
// bug report needs.
func versionText() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "gatehouse (unknown build) " + runtime.Version()
	}
	version := info.Main.Version
	if version == "" {
		version = "(devel)"
	}
	var revision, modified string
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			revision = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				modified = "+dirty"
			}
		}
	}
	if len(revision) > 12 {
		revision = revision[:12]
	}
	if revision != "" {
		version += " " + revision + modified
	}
	parts := []string{}
	for _, dep := range info.Deps {
		if label, ok := versionedDeps[dep.Path]; ok {
			parts = append(parts, label+" "+dep.Version)
		}
	}
	text := fmt.Sprintf("gatehouse %s (%s, %s/%s", version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	if len(parts) > 0 {
		text += "; " + strings.Join(parts, ", ")
	}
	return text + ")"
}

// versionedDeps are the modules whose versions `gatehouse version` shows, by label.
var versionedDeps = map[string]string{
	"github.com/tetratelabs/wazero":     "wazero",
	"github.com/nats-io/nats-server/v2": "nats-server",
	"github.com/gofiber/fiber/v2":       "fiber",
	"github.com/dgraph-io/badger/v4":    "badger",
}

func newVersionCommand(stdout io.Writer) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version of gatehouse and of the parts it is built with",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			_, err := fmt.Fprintln(stdout, versionText())
			return err
		},
	}
}
