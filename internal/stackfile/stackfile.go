// Package stackfile parses and validates Gatehouse stack files (gatehouse.yaml): the functions of a
// stack, their sources and limits, the HTTP and WebSocket APIs, stages and routes that reach them,
// the gateway controls on those (CORS, authorizers, authorization, API keys with usage plans and
// throttles), and the access keys that sign calls to the stack's management endpoints.
//
// It decodes the file into the one model of a stack, [spec.Stack], and validates it with
// [spec.Stack.ValidateInOrder], turning each problem's key path into a line and column of the
// file. The format is documented for users in docs/stack-file.md.
//
// # Errors
//
// [Parse] and [Load] return the first problem they find as an [*Error] whose message starts with
// "FILE:LINE:COLUMN: " and names the key path, for example
//
//	gatehouse.yaml:7:14: functions.hello.timeout: "3x" is not a duration (want e.g. 3s or 500ms)
//
// Problems are found in this order: YAML syntax; the schema version; structure (unknown keys, wrong
// types, missing required keys, sources and JWKS files that do not exist, environment variables
// named by secretFromEnv that are not set), in file order; then values (ranges, names, references
// from routes to functions and authorizers): the stack name, iam, usage plans, functions, then
// APIs. Fix the reported problem and run again to see the next one.
//
// No message quotes an access key's secret.
package stackfile

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"

	"gatehouse.dev/gatehouse/internal/spec"
	"gatehouse.dev/gatehouse/internal/yamldecode"
)

// Where formats a position of path in file as the parser's errors do: "FILE:LINE:COL: PATH".
func Where(file string, line, col int, path string) string {
	if line <= 0 {
		return file + ": " + path
	}
	return fmt.Sprintf("%s:%d:%d: %s", file, line, col, path)
}

// Error is a problem in a stack file: yamldecode's error, which the manifest's parser gives too.
//
// Error() formats it as "FILE:LINE:COLUMN: PATH: MSG". Line is 0 when the problem has no place in
// the file (the file cannot be read, or Validate checked a Stack built in code); then the format
// is "FILE: PATH: MSG". Path is omitted when empty (YAML syntax errors). File is the stack file as
// given to Load, or the name given to Parse; Err is the underlying error, if any (reading the
// file), which Unwrap returns.
type Error = yamldecode.Error

// Load reads the stack file at path and parses it with Parse, resolving relative paths against
// the file's directory. Errors are [*Error]; one that comes from reading the file wraps the
// underlying error (errors.Is(err, fs.ErrNotExist) works) and has Line 0.
func Load(path string) (*spec.Stack, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, readError(path, "cannot open stack file", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, spec.MaxFileSize+1))
	if err != nil {
		return nil, readError(path, "cannot read stack file", err)
	}
	return Parse(path, data, filepath.Dir(path))
}

func readError(path, doing string, err error) *Error {
	msg := err.Error()
	if pe := (*fs.PathError)(nil); errors.As(err, &pe) {
		msg = pe.Err.Error()
	}
	return &Error{File: path, Msg: doing + ": " + msg, Err: err}
}

// Parse parses and validates a stack file held in data. name is used in error messages and as
// Stack.File; dir is the directory relative paths are resolved against (made absolute; "" is the
// working directory). Parse stats every function source to decide its Kind, and reads the
// environment variables that access keys name in secretFromEnv. Errors are [*Error].
func Parse(name string, data []byte, dir string) (*spec.Stack, error) {
	if name == "" {
		name = "<stack>"
	}
	absDir, err := filepath.Abs(dir)
	if err != nil {
		return nil, &Error{File: name, Msg: "cannot resolve directory " + strconv.Quote(dir) + ": " + err.Error(), Err: err}
	}
	d, root, err := newDecoder(name, data, absDir, stackFormat)
	if err != nil {
		return nil, err
	}
	s, ord, err := d.stack(root)
	if err != nil {
		return nil, err
	}
	s.File = name
	s.Dir = absDir
	errs := s.ValidateInOrder(spec.Order{Functions: ord.funcs, APIs: ord.apis, UsagePlans: ord.plans})
	if len(errs) > 0 {
		return nil, d.placeOne(errs[0])
	}
	return s, nil
}
