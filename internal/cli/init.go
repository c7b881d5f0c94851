package cli

import (
	"embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"gatehouse.dev/gatehouse/internal/spec"
)

// templates are the projects `gatehouse init` writes, one directory each. Files ending in .tmpl are
// written without that ending: they are Go files that must not be built as part of Gatehouse.
//
//go:embed all:templates
var templates embed.FS

// Templates lists the names of the project templates.
func Templates() []string {
	entries, _ := templates.ReadDir("templates")
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	slices.Sort(names)
	return names
}

// DefaultTemplate is the template `gatehouse init` writes when none is named.
const DefaultTemplate = "http-python"

func newInitCommand(stdout io.Writer) *cobra.Command {
	var template string
	cmd := &cobra.Command{
		Use:   "init [DIR]",
		Short: "Write a new project that gatehouse up serves at once: " + strings.Join(Templates(), ", "),
		Long: `Write a new project into DIR (default: the current directory): a stack file and a function,
from one of the templates: ` + strings.Join(Templates(), ", ") + `. The stack is named after the
directory. Existing files are never overwritten: init refuses if one of the template's files is
already there.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := "."
			if len(args) == 1 {
				dir = args[0]
			}
			files, err := WriteTemplate(dir, template)
			if err != nil {
				return err
			}
			for _, f := range files {
				fmt.Fprintf(stdout, "wrote %s\n", f)
			}
			_, err = fmt.Fprintf(stdout, "\nrun it: cd %s && gatehouse up\n", dir)
			return err
		},
	}
	cmd.Flags().StringVarP(&template, "template", "t", DefaultTemplate, "the project template: "+strings.Join(Templates(), ", "))
	return cmd
}

// WriteTemplate writes the project template name into dir (made if missing) and returns the files
// written. It writes nothing when one of them exists already.
func WriteTemplate(dir, name string) ([]string, error) {
	if !slices.Contains(Templates(), name) {
		return nil, fmt.Errorf("no template %q: want one of %s", name, strings.Join(Templates(), ", "))
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	root := path.Join("templates", name)
	type file struct {
		dst  string
		data []byte
	}
	var files []file
	err = fs.WalkDir(templates, root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := templates.ReadFile(p)
		if err != nil {
			return err
		}
		rel := strings.TrimSuffix(strings.TrimPrefix(p, root+"/"), ".tmpl")
		data = []byte(strings.ReplaceAll(string(data), "{{name}}", spec.StackNameOf(filepath.Base(abs))))
		files = append(files, file{dst: filepath.Join(dir, filepath.FromSlash(rel)), data: data})
		return nil
	})
	if err != nil {
		return nil, err
	}
	for _, f := range files {
		if _, err := os.Stat(f.dst); err == nil {
			return nil, fmt.Errorf("%s exists already: init writes a new project and never overwrites a file (use an empty directory)", f.dst)
		} else if !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
	}
	var written []string
	for _, f := range files {
		if err := os.MkdirAll(filepath.Dir(f.dst), 0o755); err != nil {
			return written, err
		}
		if err := os.WriteFile(f.dst, f.data, 0o644); err != nil {
			return written, err
		}
		written = append(written, f.dst)
	}
	return written, nil
}
