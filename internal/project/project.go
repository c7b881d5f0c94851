// Package project loads a stack from the definition a project already has: a Gatehouse stack file,
// or an AWS SAM / CloudFormation template. Each format is read into the one stack model, spec.Stack,
// through a stack file (see stackfile.ParseDoc), so every format gets the same defaults, checks
// and messages, placed in the file the user wrote.
package project

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"gatehouse.dev/gatehouse/internal/doctree"
	"gatehouse.dev/gatehouse/internal/openapi"
	"gatehouse.dev/gatehouse/internal/sam"
	"gatehouse.dev/gatehouse/internal/spec"
	"gatehouse.dev/gatehouse/internal/stackfile"
)

// The formats Load reads.
const (
	FormatStackFile = "stack file"
	FormatSAM       = "SAM template"
)

// Files are the names Find looks for, in its order.
func Files() []string {
	return []string{"gatehouse.yaml", "gatehouse.yml", "template.yaml", "template.yml", "template.json"}
}

// Find returns the first of Files in dir that exists; ok is false when there is none.
func Find(dir string) (path string, ok bool) {
	for _, name := range Files() {
		p := filepath.Join(dir, name)
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() {
			return p, true
		}
	}
	return "", false
}

// Options are what a definition leaves to the command that loads it.
type Options struct {
	// Parameters override a template's parameter defaults (sam's --parameter-overrides).
	Parameters map[string]string
}

// Loaded is a stack read from a project's definition.
type Loaded struct {
	Stack *spec.Stack
	// Format is what the file was: FormatStackFile or FormatSAM.
	Format string
	// Notices are what the file has that is not served locally, one line each, placed in the file.
	Notices []string
}

// maxFileBytes bounds any definition file.
const maxFileBytes = sam.MaxTemplateBytes

// Load reads the stack at path, whatever its format. Errors are stackfile's *Error, placed in the
// file.
func Load(path string, o Options) (*Loaded, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, readError(path, "cannot open the stack file", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxFileBytes+1))
	if err != nil {
		return nil, readError(path, "cannot read the stack file", err)
	}
	doc, err := doctree.Parse(path, data, "stack file", maxFileBytes, true)
	if err != nil || doc == nil || doc.Get("version") != nil || doc.Kind != doctree.Map {
		// A Gatehouse stack file, or something whose problems the stack file's parser says best.
		if len(o.Parameters) > 0 {
			return nil, &stackfile.Error{File: path, Msg: "--parameter-overrides are for SAM templates; a stack file has no parameters"}
		}
		s, err := stackfile.Load(path)
		if err != nil {
			return nil, err
		}
		return &Loaded{Stack: s, Format: FormatStackFile}, nil
	}
	switch {
	case sam.IsTemplate(doc):
		res, err := sam.Read(path, doc, sam.Options{Parameters: o.Parameters})
		if err != nil {
			return nil, err
		}
		s, err := stackfile.ParseDoc(path, res.Stack, filepath.Dir(path))
		if err != nil {
			return nil, err
		}
		out := &Loaded{Stack: s, Format: FormatSAM}
		for _, n := range res.Notices {
			out.Notices = append(out.Notices, n.Error())
		}
		return out, nil
	case openapi.IsDocument(doc):
		return nil, &stackfile.Error{File: path, Line: 1, Column: 1, Msg: "this is an OpenAPI document: it describes an API but not the functions behind it; " +
			"start the node with the stack that has them, then apply the document with gatehouse apis import " + path}
	}
	return nil, &stackfile.Error{File: path, Line: doc.Line, Column: doc.Column,
		Msg: fmt.Sprintf("not a definition Gatehouse reads: want a stack file (version: 1), or a SAM or CloudFormation template (Resources:); looked for %v", Files())}
}

func readError(path, doing string, err error) error {
	msg := err.Error()
	var pe *fs.PathError
	if errors.As(err, &pe) {
		msg = pe.Err.Error()
	}
	return &stackfile.Error{File: path, Msg: doing + ": " + msg, Err: err}
}
