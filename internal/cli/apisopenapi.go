package cli

import (
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"gatehouse.dev/gatehouse/internal/doctree"
	"gatehouse.dev/gatehouse/internal/openapi"
	"gatehouse.dev/gatehouse/internal/spec"
	"gatehouse.dev/gatehouse/internal/stackfile"
)

// newAPIsImportCommand is `gatehouse apis import FILE`: an OpenAPI document applied as an API.
func newAPIsImportCommand(stdout io.Writer, flags *adminFlags) *cobra.Command {
	var name, mount, stage, apiType string
	cmd := &cobra.Command{
		Use:   "import FILE",
		Short: "Create or replace an API from an OpenAPI 3 document with API Gateway's extensions",
		Long: `Create or replace an HTTP or REST API from an OpenAPI 3 (or, for REST, Swagger 2.0) document
(JSON or YAML) as API Gateway exports and imports them: each operation's
x-amazon-apigateway-integration (aws_proxy to a function of the node, by name or ARN; http_proxy;
mock), its security with the authorizers of components.securitySchemes
(x-amazon-apigateway-authorizer: jwt or request for HTTP APIs, token or request for REST APIs;
awsSigv4 for IAM; api_key), x-amazon-apigateway-cors, and for REST APIs request validators,
models, gateway responses, binary media types and compression. The document's type is told from
what only one type has (--type forces it). What is not served is listed and skipped. The API is
named after info.title unless --name is given, and mounted at /NAME unless --mount is given.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			file := args[0]
			data, err := os.ReadFile(file)
			if err != nil {
				return err
			}
			doc, err := openapi.Parse(file, data)
			if err != nil {
				return err
			}
			var im *openapi.Imported
			if apiType != "" {
				im, err = openapi.ImportAs(file, doc, apiType)
			} else {
				im, err = openapi.Import(file, doc)
			}
			if err != nil {
				return err
			}
			for _, n := range im.Notices {
				fmt.Fprintf(cmd.ErrOrStderr(), "skipped: %s\n", n)
			}
			if name == "" {
				name = im.Name
			}
			if mount == "" {
				mount = "/" + name
			}
			def := im.Definition
			def.Set("mount", doctree.Str(mount, nil))
			stages := doctree.NewMap(nil)
			stages.Set(stage, doctree.NewMap(nil))
			def.Set("stages", stages)
			c, err := flags.client(cmd.Context())
			if err != nil {
				return err
			}
			env, err := functionsEnv(cmd.Context(), c)
			if err != nil {
				return err
			}
			api, err := stackfile.ParseAPIDoc(file, def, filepath.Dir(file), name, env)
			if err != nil {
				return fmt.Errorf("%w\n(name the API with --name if info.title %q is not a valid API name)", err, im.Name)
			}
			out, raw, err := putAPI(cmd.Context(), c, file, api)
			if err != nil {
				return err
			}
			if flags.json {
				return printJSON(stdout, raw)
			}
			_, err = fmt.Fprintf(stdout, "imported %s API %s (%d routes) at %s: revision %d, served\n", api.Type, out.Name, len(api.Routes), mount, out.Revision)
			return err
		},
	}
	cmd.Flags().StringVar(&name, "name", "", "the API's name (default: the document's info.title)")
	cmd.Flags().StringVar(&mount, "mount", "", "the path the API is served under (default: /NAME)")
	cmd.Flags().StringVar(&stage, "stage", spec.DefaultStage, "the stage to serve the routes on")
	cmd.Flags().StringVar(&apiType, "type", "", "import the document as an http or rest API (default: told from the document)")
	return cmd
}

// newAPIsExportCommand is `gatehouse apis export NAME`: an HTTP API as an OpenAPI document.
func newAPIsExportCommand(stdout io.Writer, flags *adminFlags) *cobra.Command {
	var format, region, account string
	cmd := &cobra.Command{
		Use:   "export NAME",
		Short: "Print an HTTP or REST API as an OpenAPI 3 document with API Gateway's extensions (import reads it back)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if format != "openapi" && format != "openapi-json" {
				return fmt.Errorf("--format %q: want openapi (YAML) or openapi-json", format)
			}
			c, err := flags.client(cmd.Context())
			if err != nil {
				return err
			}
			out, _, err := c.API(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			body, err := openapi.Export(out.API, openapi.ExportOptions{Title: out.Name, Version: out.UpdatedAt.UTC().Format("2006-01-02T15:04:05Z"),
				Region: region, AccountID: account, YAML: format == "openapi"})
			if err != nil {
				return fmt.Errorf("API %s: %w", out.Name, err)
			}
			_, err = stdout.Write(body)
			return err
		},
	}
	cmd.Flags().StringVar(&format, "format", "openapi", "openapi (YAML) or openapi-json")
	cmd.Flags().StringVar(&region, "region", spec.DefaultRegion, "the region of the function ARNs written")
	cmd.Flags().StringVar(&account, "account-id", spec.DefaultAccountID, "the account of the function ARNs written")
	return cmd
}
