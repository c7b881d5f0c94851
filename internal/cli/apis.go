package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/goccy/go-yaml"
	"github.com/spf13/cobra"

	"gatehouse.dev/gatehouse/internal/adminapi"
	"gatehouse.dev/gatehouse/internal/spec"
	"gatehouse.dev/gatehouse/internal/stackfile"
)

func newAPIsCommand(stdout io.Writer) *cobra.Command {
	var flags adminFlags
	cmd := &cobra.Command{
		Use:   "apis",
		Short: "Show and change the stack's API definitions while the node runs",
		Long: `Show and change the stack's APIs (routes, stages, authorizers, CORS…) while the node runs: a
change is served by every gateway of the stack within a second, without a restart.
Definitions are written as in a stack file's apis: section.`,
	}
	ls := &cobra.Command{
		Use:   "ls",
		Short: "List the APIs: who manages each, its mount and routes",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := flags.client(cmd.Context())
			if err != nil {
				return err
			}
			out, raw, err := c.APIs(cmd.Context())
			if err != nil || flags.json {
				return printJSONOr(stdout, raw, err)
			}
			t := newTable(stdout, "NAME", "ID", "TYPE", "HOST", "MOUNT", "ROUTES", "MANAGED BY", "REVISION", "UPDATED")
			for _, a := range out.APIs {
				t.row(a.Name, a.ID, a.API.Type, orDash(a.API.Host), a.API.Mount, len(a.API.Routes), a.ManagedBy, a.Revision, showTime(a.UpdatedAt))
			}
			return t.flush()
		},
	}
	get := &cobra.Command{
		Use:   "get NAME",
		Short: "Print an API's definition as a stack file's apis: section (apply takes it back as it is)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := flags.client(cmd.Context())
			if err != nil {
				return err
			}
			out, raw, err := c.API(cmd.Context(), args[0])
			if err != nil || flags.json {
				return printJSONOr(stdout, raw, err)
			}
			doc, err := json.Marshal(map[string]map[string]spec.API{"apis": {out.Name: out.API}})
			if err != nil {
				return err
			}
			y, err := yaml.JSONToYAML(doc)
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(stdout, "# %s: id %s, revision %d, managed by %s\n%s", out.Name, out.ID, out.Revision, out.ManagedBy, y)
			return err
		},
	}
	var file string
	apply := &cobra.Command{
		Use:   "apply [NAME] -f FILE",
		Short: "Create or replace APIs from a file: its apis: section, or with NAME one API's definition",
		Long: `Create or replace APIs from FILE, YAML or JSON. Without NAME, FILE has an apis: section, as a stack
file has (a whole stack file works: only its apis are applied). With NAME, FILE is one API's
definition, as written under apis.NAME. Each API is checked here first (problems are shown with
their line and column), then by the node, which refuses a definition with problems whole.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if file == "" {
				return errors.New("name the definition's file with -f FILE")
			}
			data, err := os.ReadFile(file)
			if err != nil {
				return err
			}
			c, err := flags.client(cmd.Context())
			if err != nil {
				return err
			}
			env, err := functionsEnv(cmd.Context(), c)
			if err != nil {
				return err
			}
			dir := filepath.Dir(file)
			var apis []spec.API
			if len(args) == 1 {
				api, err := stackfile.ParseAPI(file, data, dir, args[0], env)
				if err != nil {
					return err
				}
				apis = append(apis, api)
			} else if apis, err = stackfile.ParseAPIs(file, data, dir, env); err != nil {
				return err
			}
			for _, api := range apis {
				out, raw, err := putAPI(cmd.Context(), c, file, api)
				if err != nil {
					return err
				}
				if flags.json {
					if err := printJSON(stdout, raw); err != nil {
						return err
					}
					continue
				}
				fmt.Fprintf(stdout, "applied API %s: revision %d, served\n", out.Name, out.Revision)
			}
			return nil
		},
	}
	apply.Flags().StringVarP(&file, "file", "f", "", "file with the definitions (YAML or JSON)")
	rm := &cobra.Command{
		Use:   "rm NAME",
		Short: "Delete an API; its WebSocket connections are closed",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return deleteAndSay(cmd, &flags, stdout, func(ctx context.Context, c *adminapi.Client) error {
				return c.DeleteAPI(ctx, args[0])
			}, "deleted API %s", args[0])
		},
	}
	for _, c := range []*cobra.Command{ls, get, apply, rm, newAPIsImportCommand(stdout, &flags), newAPIsExportCommand(stdout, &flags)} {
		flags.register(c)
		cmd.AddCommand(c)
	}
	return cmd
}

// functionsEnv is what a definition may refer to on the node: its functions. Usage plans are
// checked by the node.
func functionsEnv(ctx context.Context, c *adminapi.Client) (spec.Env, error) {
	list, _, err := c.Functions(ctx)
	if err != nil {
		return spec.Env{}, err
	}
	names := make([]string, 0, len(list.Functions))
	for _, f := range list.Functions {
		names = append(names, f.Name)
	}
	return spec.FunctionsEnv(names, true), nil
}

// refused turns the node's refusal of API name from file into an error that lists its problems.
func refused(file, name string, err error) error {
	var e *adminapi.Error
	if !errors.As(err, &e) || len(e.Problems) == 0 {
		return fmt.Errorf("API %s: %w", name, err)
	}
	lines := []string{fmt.Sprintf("the node refused API %s: %s", name, e.Message)}
	for _, p := range e.Problems {
		lines = append(lines, fmt.Sprintf("  %s: apis.%s.%s: %s", file, name, p.Path, p.Message))
	}
	return errors.New(strings.Join(lines, "\n"))
}

func newReloadCommand(stdout io.Writer) *cobra.Command {
	var flags adminFlags
	cmd := &cobra.Command{
		Use:   "reload",
		Short: "Have the running node re-read its stack file and apply what changed",
		Long: `Have the running node re-read its stack file (as SIGHUP does) and apply what changed: functions
whose source or settings changed are built and deployed; APIs the file defines are created,
updated where the file changed them, and deleted where it no longer has them. An API changed
with gatehouse apis since the file set it keeps that change until the file changes it. A file
with a problem changes nothing.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := flags.client(cmd.Context())
			if err != nil {
				return err
			}
			out, raw, err := c.Reload(cmd.Context())
			if err != nil || flags.json {
				return printJSONOr(stdout, raw, err)
			}
			_, err = fmt.Fprint(stdout, out.Summary())
			return err
		},
	}
	flags.register(cmd)
	return cmd
}

// putAPI applies api, read from file, on the node: the node's refusal lists its problems.
func putAPI(ctx context.Context, c *adminapi.Client, file string, api spec.API) (adminapi.APIView, []byte, error) {
	def, err := json.Marshal(api)
	if err != nil {
		return adminapi.APIView{}, nil, err
	}
	out, raw, err := c.PutAPI(ctx, api.Name, def, "application/json", 0)
	if err != nil {
		return out, raw, refused(file, api.Name, err)
	}
	return out, raw, nil
}
