package cli

import (
	"io"

	"github.com/spf13/cobra"

	"gatehouse.dev/gatehouse/loadtest"
)

// newLoadtestCommand is `gatehouse loadtest`, the load generator (package loadtest), which talks to
// a stack only over its public HTTP API.
func newLoadtestCommand(stdout, stderr io.Writer) *cobra.Command {
	return loadtest.NewCommand(stdout, stderr)
}
