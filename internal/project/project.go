// Package project loads a stack from the definition a project already has: a Gatehouse stack file,
// an AWS SAM / CloudFormation template, or a Serverless Framework serverless.yml. Each format is read into the one stack model, spec.Stack,
// through a stack file (see stackfile.ParseDoc), so every format gets the same defaults, checks
// and messages, placed in the file the user wrote.
package project

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"gatehouse.dev/gatehouse/internal/doctree"
	"gatehouse.dev/gatehouse/internal/openapi"
	"gatehouse.dev/gatehouse/internal/sam"
	"gatehouse.dev/gatehouse/internal/serverless"
	"gatehouse.dev/gatehouse/internal/spec"
	"gatehouse.dev/gatehouse/internal/stackfile"
	"gatehouse.dev/gatehouse/internal/yamldecode"
)

// The formats Load reads.
const (
	FormatStackFile  = "stack file"
	FormatSAM        = "SAM template"
	FormatServerless = "serverless.yml"
)

// Files are the names Find looks for, in its order.
func Files() []string {
	return []string{"gatehouse.yaml", "gatehouse.yml", "template.yaml", "template.yml", "template.json", "serverless.yml", "serverless.yaml"}
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
	// Stage is serverless.yml's ${opt:stage} (--stage).
	Stage string
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
		if len(o.Parameters) > 0 || o.Stage != "" {
			return nil, &stackfile.Error{File: path, Msg: "--parameter-overrides are for SAM templates and --stage for serverless.yml; a stack file has neither"}
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
		return loaded(path, FormatSAM, res.Stack, res.Notices)
	case serverless.IsService(doc):
		res, err := serverless.Read(path, doc, serverless.Options{Stage: o.Stage})
		if err != nil {
			return nil, err
		}
		return loaded(path, FormatServerless, res.Stack, res.Notices)
	case openapi.IsDocument(doc):
		return nil, &stackfile.Error{File: path, Line: 1, Column: 1, Msg: "this is an OpenAPI document: it describes an API but not the functions behind it; " +
			"start the node with the stack that has them, then apply the document with gatehouse apis import " + path}
	}
	return nil, &stackfile.Error{File: path, Line: doc.Line, Column: doc.Column,
		Msg: "not a definition Gatehouse reads: want a stack file (version: 1), a SAM or CloudFormation template (Resources:), or a serverless.yml (service: and provider:)"}
}

func readError(path, doing string, err error) error {
	msg := err.Error()
	var pe *fs.PathError
	if errors.As(err, &pe) {
		msg = pe.Err.Error()
	}
	return &stackfile.Error{File: path, Msg: doing + ": " + msg, Err: err}
}

// loaded checks doc, the stack file made from path, and returns it with the notices.
func loaded(path, format string, doc *doctree.Node, notices []*yamldecode.Error) (*Loaded, error) {
	s, err := stackfile.ParseDoc(path, doc, filepath.Dir(path))
	if err != nil {
		return nil, err
	}
	out := &Loaded{Stack: s, Format: format}
	for _, n := range notices {
		out.Notices = append(out.Notices, n.Error())
	}
	return out, nil
}
