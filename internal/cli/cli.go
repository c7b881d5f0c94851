// Package cli is Gatehouse's command line apart from the node (layer 3): the commands a user runs
// against a running node (deploy, functions, versions, alias, invoke, logs, rm, audit, tokens, keys,
// connections), which call its admin API through one typed client (internal/adminapi), and the
// commands that need no node (build, loadtest, version). The node's own commands (up and the hidden
// worker) belong to the wiring, internal/app, which assembles the root command from [NewRoot].
package cli

import (
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/spf13/cobra"

	"gatehouse.dev/gatehouse/internal/adminapi"
)

// Defaults the commands share with `gatehouse up`.
const (
	// DefaultDataDir is the data directory of a node, and where the commands look for one.
	DefaultDataDir = ".gatehouse"
	// DefaultStackFile is the stack file of `gatehouse up` and `gatehouse deploy DIR`.
	DefaultStackFile = "gatehouse.yaml"
)

// NewRoot returns the gatehouse command with every command of this package and the node's commands
// (up, worker), printing to stdout and stderr.
func NewRoot(stdout, stderr io.Writer, node ...*cobra.Command) *cobra.Command {
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
	root.AddCommand(node...)
	root.AddCommand(newBuildCommand(stdout), newTokensCommand(stdout), newInitCommand(stdout))
	root.AddCommand(newFunctionCommands(stdout, stderr)...)
	root.AddCommand(newConnectionsCommand(stdout), newQueuesCommand(stdout), newSchedulesCommand(stdout), newPublishCommand(stdout), newKeysCommand(stdout), newAPIsCommand(stdout), newReloadCommand(stdout), newLoadtestCommand(stdout, stderr), newVersionCommand(stdout))
	return root
}

// Run runs root with args (without the program name) and returns the exit code: 0, or 1 after
// printing the error to stderr.
func Run(root *cobra.Command, args []string, stderr io.Writer) int {
	root.SetArgs(args)
	if err := root.Execute(); err != nil {
		fmt.Fprintln(stderr, "gatehouse:", message(err))
		return 1
	}
	return 0
}

// message is what the command line says about err: the admin API's errors in the command line's
// words.
func message(err error) string {
	var ae *adminapi.Error
	if errors.As(err, &ae) && ae.Status == http.StatusUnauthorized {
		return "the node refused the admin token: check --token, $GATEHOUSE_TOKEN or the data directory's admin.token"
	}
	return err.Error()
}
