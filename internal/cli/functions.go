package cli

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"gatehouse.dev/gatehouse/internal/adminapi"
)

// newFunctionCommands returns the commands that manage and call the functions of a running node.
func newFunctionCommands(stdout, stderr io.Writer) []*cobra.Command {
	return []*cobra.Command{
		newDeployCommand(stdout, stderr),
		newFunctionsCommand(stdout),
		newVersionsCommand(stdout),
		newAliasCommand(stdout),
		newInvokeCommand(stdout, stderr),
		newLogsCommand(stdout, stderr),
		newRmCommand(stdout),
		newAuditCommand(stdout),
	}
}

func newFunctionsCommand(stdout io.Writer) *cobra.Command {
	var flags adminFlags
	cmd := &cobra.Command{
		Use:   "functions",
		Short: "List the deployed functions",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := flags.client(cmd.Context())
			if err != nil {
				return err
			}
			out, raw, err := c.Functions(cmd.Context())
			if err != nil || flags.json {
				return printJSONOr(stdout, raw, err)
			}
			t := newTable(stdout, "NAME", "LATEST", "UPDATED")
			for _, f := range out.Functions {
				t.row(f.Name, f.LatestVersion, showTime(f.UpdatedAt))
			}
			return t.flush()
		},
	}
	flags.register(cmd)
	return cmd
}

func newVersionsCommand(stdout io.Writer) *cobra.Command {
	var flags adminFlags
	cmd := &cobra.Command{
		Use:   "versions FN",
		Short: "List a function's versions, oldest first",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := flags.client(cmd.Context())
			if err != nil {
				return err
			}
			out, raw, err := c.Versions(cmd.Context(), args[0])
			if err != nil || flags.json {
				return printJSONOr(stdout, raw, err)
			}
			t := newTable(stdout, "VERSION", "MODULE", "SIZE", "MEMORY", "TIMEOUT", "CREATED", "DESCRIPTION")
			for _, v := range out.Versions {
				t.row(v.Version, prefix(v.ModuleSHA256, 12), humanSize(v.ModuleSize), fmt.Sprintf("%d MB", v.MemoryMB),
					v.Timeout, showTime(v.CreatedAt), v.Description)
			}
			return t.flush()
		},
	}
	flags.register(cmd)
	return cmd
}

func newRmCommand(stdout io.Writer) *cobra.Command {
	var flags adminFlags
	cmd := &cobra.Command{
		Use:   "rm FN",
		Short: "Delete a function with all its versions and aliases",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return deleteAndSay(cmd, &flags, stdout, func(ctx context.Context, c *adminapi.Client) error {
				return c.DeleteFunction(ctx, args[0])
			}, "deleted function %s (all versions and aliases)", args[0])
		},
	}
	flags.register(cmd)
	return cmd
}
