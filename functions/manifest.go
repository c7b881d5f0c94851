package functions

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/lexer"
	"github.com/goccy/go-yaml/parser"
	"github.com/goccy/go-yaml/token"

	"gatehouse.dev/gatehouse/internal/didyoumean"
	"gatehouse.dev/gatehouse/internal/spec"
	"gatehouse.dev/gatehouse/internal/yamlnode"
)

// ManifestFile is the name of a bundle's manifest, at the top of the archive.
const ManifestFile = "function.yaml"

// ManifestVersion is the only manifest schema version this package reads (`version: 1`).
const ManifestVersion = 1

// ABIs a manifest may name in `abi:`. They are the names runtimes gives its ABIs; runtimes checks
// that the module exports what the named ABI needs.
const (
	ABIReactor = "reactor"
	ABICommand = "command"
)

// Manifest limits and defaults. The limits of the function settings are internal/spec's (the
// stack file's), given here under the names this package has always exported.
const (
	// MaxManifestBytes bounds the size of function.yaml (16 KiB): far more than the largest useful
	// manifest (the environment alone is at most 4 KB), and small enough to parse quickly whatever
	// it holds.
	MaxManifestBytes = 16 << 10

	// DefaultModuleFile is the module's name in the bundle when the manifest has no `module:`.
	DefaultModuleFile = "function.wasm"
	// MaxModulePathLength bounds `module:`, in bytes.
	MaxModulePathLength = 255

	// MaxNameLength bounds a function name; names are [A-Za-z0-9_-]{1,64}, as for AWS Lambda.
	MaxNameLength = spec.MaxFunctionNameLength

	// DefaultMemoryMB, MinMemoryMB and MaxMemoryMB bound `memory:` (MB), as in Lambda.
	DefaultMemoryMB = spec.DefaultMemoryMB
	MinMemoryMB     = spec.MinMemoryMB
	MaxMemoryMB     = spec.MaxMemoryMB

	// DefaultTimeout, MinTimeout and MaxTimeout bound `timeout:`. Lambda's minimum is 1 s;
	// Gatehouse also accepts shorter timeouts, down to 1 ms.
	DefaultTimeout = spec.DefaultTimeout
	MinTimeout     = spec.MinTimeout
	MaxTimeout     = spec.MaxTimeout

	// MaxEnvironmentBytes bounds the sum of len(name)+len(value) over `environment:` (4 KB, as in
	// Lambda).
	MaxEnvironmentBytes = spec.MaxEnvironmentSize

	// MaxMaxConcurrency bounds `maxConcurrency:` (0 means unlimited).
	MaxMaxConcurrency = spec.MaxMaxConcurrency
	// MaxMinWarm bounds `minWarm:`.
	MaxMinWarm = spec.MaxMinWarm

	// DefaultIdleTimeout, MinIdleTimeout and MaxIdleTimeout bound `idleTimeout:`.
	DefaultIdleTimeout = spec.DefaultIdleTimeout
	MinIdleTimeout     = spec.MinIdleTimeout
	MaxIdleTimeout     = spec.MaxIdleTimeout
)

// Manifest describes a function: the contents of a bundle's function.yaml. [ParseManifest] fills
// every default, so no field holds a zero value that stands for "use the default"; [NewManifest]
// does the same for a manifest built in code. Where zero has a meaning it is documented on the
// field. The format is documented for users in docs/bundles.md.
type Manifest struct {
	// Version is the schema version (`version:`, required); always ManifestVersion.
	Version int
	// Name is the function's name (`name:`, required): [A-Za-z0-9_-]{1,MaxNameLength}.
	Name string
	// ABI is the ABI the module must speak (`abi:`): ABIReactor, ABICommand, or "" (the default)
	// to use whichever the module exports. This package checks only the value; runtimes checks the
	// module.
	ABI string
	// Module is the path of the WebAssembly module inside the bundle (`module:`, default
	// DefaultModuleFile): slash-separated, relative, without . or .. elements, ending in ".wasm",
	// at most MaxModulePathLength bytes.
	Module string
	// FunctionSettings are the function's memory, timeout, environment and concurrency
	// (`memory:`, `timeout:`, `environment:`, `maxConcurrency:`, `minWarm:`, `idleTimeout:`), with
	// the stack file's rules and limits ([spec.FunctionSettings.Validate]). ParseManifest never
	// leaves Environment nil.
	spec.FunctionSettings
	// Secrets lists the names of environment variables whose values are secret (`secrets:`), in
	// file order, each once; nil when none. A secret's value is still in the bundle in plain text;
	// the control plane stores it encrypted and never shows it.
	Secrets []string
}

// NewManifest returns a manifest for the function name with every other field at its default.
func NewManifest(name string) Manifest {
	return Manifest{
		Version:          ManifestVersion,
		Name:             name,
		Module:           DefaultModuleFile,
		FunctionSettings: spec.DefaultFunctionSettings(),
	}
}

// manifestJSON is a Manifest in JSON: its Go field names, durations in nanoseconds. `gatehouse up`
// hashes it into the bundle digests it keeps in the data directory (stack-deploys.json), so it stays
// as it was before the settings moved to spec.FunctionSettings.
type manifestJSON struct {
	Version        int
	Name           string
	ABI            string
	Module         string
	MemoryMB       int
	Timeout        time.Duration
	Environment    map[string]string
	Secrets        []string
	MaxConcurrency int
	MinWarm        int
	IdleTimeout    time.Duration
}

// MarshalJSON implements json.Marshaler.
func (m Manifest) MarshalJSON() ([]byte, error) {
	return json.Marshal(manifestJSON{
		Version: m.Version, Name: m.Name, ABI: m.ABI, Module: m.Module,
		MemoryMB: m.MemoryMB, Timeout: m.Timeout.D(), Environment: m.Environment, Secrets: m.Secrets,
		MaxConcurrency: m.MaxConcurrency, MinWarm: m.MinWarm, IdleTimeout: m.IdleTimeout.D(),
	})
}

// UnmarshalJSON implements json.Unmarshaler.
func (m *Manifest) UnmarshalJSON(b []byte) error {
	var j manifestJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*m = Manifest{Version: j.Version, Name: j.Name, ABI: j.ABI, Module: j.Module, Secrets: j.Secrets,
		FunctionSettings: spec.FunctionSettings{MemoryMB: j.MemoryMB, Timeout: spec.Duration(j.Timeout), Environment: j.Environment,
			MaxConcurrency: j.MaxConcurrency, MinWarm: j.MinWarm, IdleTimeout: spec.Duration(j.IdleTimeout)}}
	return nil
}

// ErrBadManifest is wrapped by every [*ManifestError]: errors.Is(err, ErrBadManifest) reports a
// manifest that cannot be used.
var ErrBadManifest = errors.New("invalid manifest")

// ManifestError is a problem in a manifest.
//
// Error() formats it as "FILE:LINE:COLUMN: PATH: MSG", for example
//
//	function.yaml:4:9: memory: 64 is out of range: want 128 to 10240 (MB)
//
// Line is 0 when the problem has no place in a file ([Manifest.Validate] on a manifest built in
// code); then the format is "FILE: PATH: MSG". Path is omitted when empty.
type ManifestError struct {
	// File names the manifest in messages; "" (what this package returns) is ManifestFile. A caller
	// that read the manifest from a file may set its path.
	File string
	// Line and Column are 1-based, of the offending key or value.
	Line, Column int
	// Path is the key path, e.g. "memory", "environment.DB_URL" or "secrets[1]".
	Path string
	// Msg says what is wrong.
	Msg string
}

// Error implements error.
func (e *ManifestError) Error() string {
	var b strings.Builder
	b.WriteString(cmp.Or(e.File, ManifestFile))
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d:%d", e.Line, e.Column)
	}
	b.WriteString(": ")
	if e.Path != "" {
		b.WriteString(e.Path + ": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Unwrap returns ErrBadManifest.
func (e *ManifestError) Unwrap() error { return ErrBadManifest }

// Validate checks m's values as ParseManifest does after decoding, and reports the first problem
// as a [*ManifestError] with Line 0. Keys are checked in the order of a manifest's keys (version,
// name, abi, module, memory, timeout, environment, secrets, maxConcurrency, minWarm, idleTimeout).
func (m *Manifest) Validate() error {
	if e := checkManifest(m); e != nil {
		return &ManifestError{Path: e.path, Msg: e.msg}
	}
	return nil
}

// ParseManifest parses and validates a manifest (the contents of function.yaml) and fills the
// defaults. Errors are [*ManifestError]s.
//
// The parser is strict: unknown keys, duplicate keys, values of the wrong type (a number for a
// string, a duration without a unit) and more than one YAML document are errors, as are YAML
// anchors, aliases, tags and merge keys, which a manifest does not need. Problems are found in this
// order: size and encoding, YAML syntax, the schema version, structure in file order, then values
// in the order of the manifest's keys (as [Manifest.Validate]).
func ParseManifest(data []byte) (*Manifest, error) {
	if len(data) > MaxManifestBytes {
		return nil, &ManifestError{Line: 1, Column: 1,
			Msg: fmt.Sprintf("the manifest is %d bytes; the limit is %d (16 KiB)", len(data), MaxManifestBytes)}
	}
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf")) // a byte order mark, as some editors write
	if !utf8.Valid(data) {
		line, col := invalidUTF8At(data)
		return nil, &ManifestError{Line: line, Column: col, Msg: "the manifest is not UTF-8 text"}
	}
	if i := bytes.IndexByte(data, 0); i >= 0 {
		line, col := offsetPosition(data, i)
		return nil, &ManifestError{Line: line, Column: col, Msg: "the manifest contains a NUL byte"}
	}
	body, err := parseManifestYAML(data)
	if err != nil {
		return nil, err
	}
	d := manifestDecoder{pos: map[string]*token.Token{}, keyPos: map[string]*token.Token{}}
	m, err := d.manifest(body)
	if err != nil {
		return nil, err
	}
	if e := checkManifest(m); e != nil {
		line, col := d.position(e.path, e.atKey)
		return nil, &ManifestError{Line: line, Column: col, Path: e.path, Msg: e.msg}
	}
	return m, nil
}

// Shape limits, checked on the tokens before parsing: the YAML parser takes time quadratic in the
// nesting depth (16 KiB of "[" takes seconds). A manifest nests at most two levels.
const (
	maxFlowDepth  = 8
	maxBlockDepth = 8
)

func parseManifestYAML(data []byte) (body ast.Node, err error) {
	// The YAML parser is third-party code fed with user input: turn a panic in it into an error.
	defer func() {
		if r := recover(); r != nil {
			body, err = nil, &ManifestError{Line: 1, Column: 1, Msg: fmt.Sprintf("invalid YAML (the parser failed: %v)", r)}
		}
	}()
	tokens := lexer.Tokenize(string(data))
	if e := checkTokens(tokens); e != nil {
		return nil, e
	}
	f, perr := parser.Parse(tokens, 0)
	if perr != nil {
		e := &ManifestError{Line: 1, Column: 1, Msg: "invalid YAML: " + perr.Error()}
		var ye yaml.Error
		if errors.As(perr, &ye) {
			e.Msg = "invalid YAML: " + yamlnode.ReadablePositions(ye.GetMessage())
			if tk := ye.GetToken(); tk != nil && tk.Position != nil && tk.Position.Line > 0 {
				e.Line, e.Column = tk.Position.Line, max(tk.Position.Column, 1)
			}
		}
		e.Msg = strings.NewReplacer("\n", `\n`, "\r", `\r`).Replace(e.Msg)
		return nil, e
	}
	for _, doc := range f.Docs {
		if doc == nil || doc.Body == nil {
			continue
		}
		if _, ok := doc.Body.(*ast.DirectiveNode); ok {
			continue // %YAML 1.2 before the document
		}
		if body != nil {
			line, col := yamlnode.Position(doc.Body)
			return nil, &ManifestError{Line: line, Column: col, Msg: "a manifest holds one YAML document; remove this second one"}
		}
		body = doc.Body
	}
	return body, nil
}

// checkTokens refuses YAML features a manifest does not use, and nesting beyond the shape limits.
func checkTokens(tokens token.Tokens) *ManifestError {
	at := func(tk *token.Token, format string, args ...any) *ManifestError {
		line, col := 1, 1
		if tk.Position != nil && tk.Position.Line > 0 {
			line, col = tk.Position.Line, max(tk.Position.Column, 1)
		}
		return &ManifestError{Line: line, Column: col, Msg: fmt.Sprintf(format, args...)}
	}
	flow := 0
	var block []int // columns of the open block levels
	lastLine := 0
	for _, tk := range tokens {
		if tk == nil {
			continue
		}
		switch tk.Type {
		case token.CommentType:
			continue
		case token.AnchorType, token.AliasType:
			return at(tk, "YAML anchors (&) and aliases (*) are not supported in a manifest; write the value out")
		case token.TagType:
			return at(tk, "YAML tags (%s) are not supported in a manifest; quote the value to make it a string", printable(tk.Value))
		case token.MergeKeyType:
			return at(tk, "merge keys (<<) are not supported in a manifest")
		case token.MappingKeyType:
			return at(tk, "explicit keys (?) are not supported in a manifest")
		case token.SequenceStartType, token.MappingStartType:
			if flow++; flow > maxFlowDepth {
				return at(tk, "[ and { nested more than %d deep", maxFlowDepth)
			}
			continue
		case token.SequenceEndType, token.MappingEndType:
			flow = max(flow-1, 0)
			continue
		}
		if flow > 0 || tk.Position == nil {
			continue
		}
		line, col := tk.Position.Line, tk.Position.Column
		if line == lastLine && tk.Type != token.SequenceEntryType {
			continue
		}
		lastLine = line
		for len(block) > 0 && block[len(block)-1] >= col {
			block = block[:len(block)-1]
		}
		if block = append(block, col); len(block) > maxBlockDepth {
			return at(tk, "nested more than %d levels deep", maxBlockDepth)
		}
	}
	return nil
}

// ---------------------------------------------------------------------------------------------
// Decoding: YAML structure and types → Manifest. The decoder walks the AST so that every error knows
// its position and key path, numbers are never silently converted (memory: 128.5, timeout: 3), and
// environment values keep their text as written (PORT: 08080).

type manifestDecoder struct {
	pos    map[string]*token.Token // key path → where its value starts
	keyPos map[string]*token.Token // key path → where its key is written
}

// manifestKeys are the top-level keys, in the order of Manifest's fields.
var manifestKeys = []string{"version", "name", "abi", "module", "memory", "timeout", "environment", "secrets",
	"maxConcurrency", "minWarm", "idleTimeout"}

func (d *manifestDecoder) errAt(n ast.Node, path, format string, args ...any) *ManifestError {
	line, col := yamlnode.Position(n)
	return &ManifestError{Line: line, Column: col, Path: path, Msg: fmt.Sprintf(format, args...)}
}

// position returns where the key path is written: its key when atKey, else its value; the nearest
// enclosing key's place for a path not in the file; 1:1 when nothing is.
func (d *manifestDecoder) position(path string, atKey bool) (line, col int) {
	for p := path; p != ""; p = parentPath(p) {
		tk := d.pos[p]
		if atKey || tk == nil {
			if k := d.keyPos[p]; k != nil {
				tk = k
			}
		}
		if tk != nil && tk.Position != nil && tk.Position.Line > 0 {
			return tk.Position.Line, max(tk.Position.Column, 1)
		}
		atKey = true
	}
	return 1, 1
}

// parentPath returns "environment" for "environment.X" or `environment["a b"]`, "secrets" for
// "secrets[2]", and "" for a top-level key.
func parentPath(p string) string {
	if i := strings.IndexAny(p, ".["); i >= 0 {
		return p[:i]
	}
	return ""
}

type mapEntry struct {
	key   string
	keyAt ast.Node
	val   ast.Node // nil for `key:` with nothing after it
}

// entries returns the pairs of the mapping n (none for null), refusing duplicate keys.
func (d *manifestDecoder) entries(path string, n ast.Node) ([]mapEntry, error) {
	var values []*ast.MappingValueNode
	switch v := n.(type) {
	case nil, *ast.NullNode:
		return nil, nil
	case *ast.MappingNode:
		values = v.Values
	case *ast.MappingValueNode:
		values = []*ast.MappingValueNode{v}
	default:
		return nil, d.errAt(n, path, "want a mapping, got %s", describe(n))
	}
	out := make([]mapEntry, 0, len(values))
	seen := make(map[string]bool, len(values))
	for _, mv := range values {
		if mv == nil || mv.Key == nil {
			continue
		}
		var k ast.Node = mv.Key
		if mk, ok := k.(*ast.MappingKeyNode); ok {
			k = mk.Value
		}
		key, ok := yamlnode.ScalarText(k)
		if !ok {
			return nil, d.errAt(mv.Key, path, "keys must be plain strings, not %s", describe(k))
		}
		if seen[key] {
			return nil, d.errAt(mv.Key, childPath(path, key), "duplicate key")
		}
		seen[key] = true
		val := mv.Value
		if isNull(val) {
			val = nil
		}
		out = append(out, mapEntry{key: key, keyAt: mv.Key, val: val})
	}
	return out, nil
}

func (d *manifestDecoder) note(path string, e mapEntry) {
	d.keyPos[path] = e.keyAt.GetToken()
	if e.val != nil {
		d.pos[path] = e.val.GetToken()
	}
}

func (d *manifestDecoder) manifest(body ast.Node) (*Manifest, error) {
	if body == nil {
		return nil, &ManifestError{Line: 1, Column: 1,
			Msg: fmt.Sprintf("the manifest is empty; it starts with \"version: %d\" and \"name: NAME\"", ManifestVersion)}
	}
	switch body.(type) {
	case *ast.MappingNode, *ast.MappingValueNode:
	default:
		return nil, d.errAt(body, "", "a manifest is a mapping of version, name, memory, …; got %s", describe(body))
	}
	es, err := d.entries("", body)
	if err != nil {
		return nil, err
	}
	// The schema version comes first: a manifest of another version may have other keys.
	i := slices.IndexFunc(es, func(e mapEntry) bool { return e.key == "version" })
	if i < 0 {
		return nil, &ManifestError{Line: 1, Column: 1, Path: "version",
			Msg: fmt.Sprintf("required; add \"version: %d\" at the top of the file", ManifestVersion)}
	}
	version, err := d.integer("version", es[i], "")
	if err != nil {
		return nil, err
	}
	if version != ManifestVersion {
		return nil, d.errAt(es[i].val, "version", "version %d is not supported; this Gatehouse reads version %d", version, ManifestVersion)
	}
	m := NewManifest("")
	m.Version = version
	for _, e := range es {
		d.note(e.key, e)
		var err error
		switch e.key {
		case "version":
		case "name":
			m.Name, err = d.str(e.key, e)
		case "abi":
			m.ABI, err = d.str(e.key, e)
		case "module":
			m.Module, err = d.str(e.key, e)
		case "memory":
			m.MemoryMB, err = d.integer(e.key, e, " of MB")
		case "timeout":
			m.Timeout, err = d.duration(e.key, e)
		case "environment":
			err = d.environment(&m, e)
		case "secrets":
			m.Secrets, err = d.secrets(e)
		case "maxConcurrency":
			m.MaxConcurrency, err = d.integer(e.key, e, "")
		case "minWarm":
			m.MinWarm, err = d.integer(e.key, e, "")
		case "idleTimeout":
			m.IdleTimeout, err = d.duration(e.key, e)
		default:
			return nil, d.errAt(e.keyAt, childPath("", e.key), "unknown key%s; known keys: %s",
				didyoumean.Suggest(e.key, manifestKeys), strings.Join(manifestKeys, ", "))
		}
		if err != nil {
			return nil, err
		}
	}
	if !slices.ContainsFunc(es, func(e mapEntry) bool { return e.key == "name" }) {
		return nil, &ManifestError{Line: 1, Column: 1, Path: "name", Msg: "required: the function's name, e.g. \"name: hello\""}
	}
	return &m, nil
}

func (d *manifestDecoder) environment(m *Manifest, e mapEntry) error {
	vars, err := d.entries("environment", e.val)
	if err != nil {
		return err
	}
	for _, v := range vars {
		p := childPath("environment", v.key)
		d.note(p, v)
		if v.val == nil {
			return d.errAt(v.keyAt, p, `want a string, got nothing (null); write "" for an empty value`)
		}
		s, ok := yamlnode.ScalarText(v.val)
		if !ok {
			return d.errAt(v.val, p, "want a string, got %s", describe(v.val))
		}
		m.Environment[v.key] = s
	}
	return nil
}

func (d *manifestDecoder) secrets(e mapEntry) ([]string, error) {
	if e.val == nil {
		return nil, nil
	}
	seq, ok := e.val.(*ast.SequenceNode)
	if !ok {
		return nil, d.errAt(e.val, "secrets", "want a list of environment variable names, got %s", describe(e.val))
	}
	var out []string
	for i, n := range seq.Values {
		p := fmt.Sprintf("secrets[%d]", i)
		if n != nil {
			d.pos[p] = n.GetToken()
		}
		if isNull(n) {
			return nil, d.errAt(seq, p, "want an environment variable name, got nothing (null)")
		}
		s, ok := yamlnode.ScalarText(n)
		if !ok {
			return nil, d.errAt(n, p, "want an environment variable name, got %s", describe(n))
		}
		out = append(out, s)
	}
	return out, nil
}

// str decodes a string. Numbers and booleans are refused: quote them.
func (d *manifestDecoder) str(path string, e mapEntry) (string, error) {
	switch v := e.val.(type) {
	case *ast.StringNode, *ast.LiteralNode:
		s, _ := yamlnode.ScalarText(v)
		return s, nil
	case nil:
		return "", d.errAt(e.keyAt, path, "want a string, got nothing (null)")
	}
	if s, ok := yamlnode.ScalarText(e.val); ok {
		return "", d.errAt(e.val, path, "want a string, got %s (quote it: %q)", describe(e.val), s)
	}
	return "", d.errAt(e.val, path, "want a string, got %s", describe(e.val))
}

// integer decodes a whole number.
func (d *manifestDecoder) integer(path string, e mapEntry, unit string) (int, error) {
	if e.val == nil {
		return 0, d.errAt(e.keyAt, path, "want a whole number%s, got nothing (null)", unit)
	}
	iv, ok := e.val.(*ast.IntegerNode)
	if !ok {
		if sn, ok := e.val.(*ast.StringNode); ok && sn.Token != nil && sn.Token.Type == token.StringType &&
			len(sn.Value) > 18 && strings.Trim(sn.Value, "0123456789") == "" {
			// The YAML parser reads integers beyond 64 bits as strings.
			return 0, d.errAt(e.val, path, "%s is too large", printable(sn.Value))
		}
		return 0, d.errAt(e.val, path, "want a whole number%s, got %s", unit, describe(e.val))
	}
	switch x := iv.Value.(type) {
	case int64:
		if int64(int(x)) == x {
			return int(x), nil
		}
	case uint64:
		if x <= uint64(int(^uint(0)>>1)) {
			return int(x), nil
		}
	}
	s, _ := yamlnode.ScalarText(iv)
	return 0, d.errAt(e.val, path, "%s is too large", printable(s))
}

// duration decodes a Go duration string such as "3s" or "500ms".
func (d *manifestDecoder) duration(path string, e mapEntry) (spec.Duration, error) {
	switch v := e.val.(type) {
	case nil:
		return 0, d.errAt(e.keyAt, path, "want a duration such as 3s or 500ms, got nothing (null)")
	case *ast.IntegerNode, *ast.FloatNode:
		s, _ := yamlnode.ScalarText(v)
		return 0, d.errAt(v, path, "%s is not a duration: give a unit, e.g. %q or %q", printable(s), s+"s", s+"ms")
	case *ast.StringNode:
		dur, err := time.ParseDuration(strings.TrimSpace(v.Value))
		if err != nil {
			return 0, d.errAt(v, path, "%s is not a duration (want e.g. 3s or 500ms)", yamlnode.QuoteShort(v.Value))
		}
		return spec.Duration(dur), nil
	}
	return 0, d.errAt(e.val, path, "want a duration such as 3s or 500ms, got %s", describe(e.val))
}

func isNull(n ast.Node) bool {
	switch v := n.(type) {
	case nil:
		return true
	case *ast.NullNode:
		return true
	case *ast.MappingNode:
		return v == nil
	case *ast.MappingValueNode:
		return v == nil
	case *ast.StringNode:
		return v == nil
	case *ast.SequenceNode:
		return v == nil
	}
	return false
}

// describe names the kind of a value for type errors.
func describe(n ast.Node) string {
	switch v := n.(type) {
	case nil, *ast.NullNode:
		return "nothing (null)"
	case *ast.StringNode:
		return "the string " + yamlnode.QuoteShort(v.Value)
	case *ast.LiteralNode:
		return "a block string"
	case *ast.IntegerNode, *ast.FloatNode, *ast.InfinityNode, *ast.NanNode:
		s, _ := yamlnode.ScalarText(n)
		return "the number " + printable(s)
	case *ast.BoolNode:
		s, _ := yamlnode.ScalarText(n)
		return "the boolean " + printable(s)
	case *ast.MappingNode, *ast.MappingValueNode:
		return "a mapping"
	case *ast.SequenceNode:
		return "a list"
	}
	return "a " + n.Type().YAMLName()
}

// printable returns s, or s quoted when it holds spaces or characters that are not printable.
func printable(s string) string {
	if s != "" && !strings.ContainsFunc(s, func(r rune) bool { return r <= ' ' || r == 0x7f || !unicode.IsPrint(r) }) && len(s) <= 40 {
		return s
	}
	return yamlnode.QuoteShort(s)
}

// childPath returns the path of key under parent: parent.key, or parent["key"] for keys that are
// not plain names.
func childPath(parent, key string) string {
	if !validName(key, len(key)+1) {
		return parent + "[" + strconv.Quote(key) + "]"
	}
	if parent == "" {
		return key
	}
	return parent + "." + key
}

func invalidUTF8At(data []byte) (line, col int) {
	for i := 0; i < len(data); {
		r, size := utf8.DecodeRune(data[i:])
		if r == utf8.RuneError && size <= 1 {
			return offsetPosition(data, i)
		}
		i += size
	}
	return 1, 1
}

func offsetPosition(data []byte, off int) (line, col int) {
	before := data[:off]
	line = 1 + bytes.Count(before, []byte("\n"))
	col = 1 + utf8.RuneCount(before[bytes.LastIndexByte(before, '\n')+1:])
	return line, col
}

// ---------------------------------------------------------------------------------------------
// Checking values: shared by ParseManifest and Validate.

type checkErr struct {
	path  string
	atKey bool // report at the key rather than the value
	msg   string
}

func errf(path string, atKey bool, format string, args ...any) *checkErr {
	return &checkErr{path: path, atKey: atKey, msg: fmt.Sprintf(format, args...)}
}

func checkManifest(m *Manifest) *checkErr {
	if m.Version != ManifestVersion {
		return errf("version", false, "version %d is not supported; this Gatehouse reads version %d", m.Version, ManifestVersion)
	}
	if !validName(m.Name, MaxNameLength) {
		return errf("name", false, "%s is not a valid function name: want 1 to %d letters, digits, - and _", yamlnode.QuoteShort(m.Name), MaxNameLength)
	}
	switch m.ABI {
	case "", ABIReactor, ABICommand:
	default:
		return errf("abi", false, "%s is not an ABI: want %s or %s (or leave abi out to use whichever the module exports)", yamlnode.QuoteShort(m.ABI), ABIReactor, ABICommand)
	}
	if msg := checkModulePath(m.Module); msg != "" {
		return errf("module", false, "%s", msg)
	}
	// The function settings, with the secrets checked after the environment, as the keys come.
	settings := m.FunctionSettings.Validate()
	if len(settings) > 0 && slices.Contains([]string{"memory", "timeout", "environment"}, settings[0].Keys[0]) {
		return settingErr(settings[0])
	}
	for i, s := range m.Secrets {
		p := fmt.Sprintf("secrets[%d]", i)
		if _, ok := m.Environment[s]; !ok {
			return errf(p, false, "%s is not in environment: list the names of environment variables whose values are secret", yamlnode.QuoteShort(s))
		}
		if slices.Index(m.Secrets, s) < i {
			return errf(p, false, "%s is listed twice", yamlnode.QuoteShort(s))
		}
	}
	if len(settings) > 0 {
		return settingErr(settings[0])
	}
	return nil
}

// settingErr is a problem with a function setting, its path a manifest's key path.
func settingErr(e spec.FieldError) *checkErr {
	return &checkErr{path: e.Path, atKey: e.AtKey, msg: e.Message}
}

// checkModulePath checks a `module:` value; it returns "" when it is fine.
func checkModulePath(p string) string {
	const want = "want the module's path inside the bundle, ending in .wasm, e.g. " + DefaultModuleFile
	switch {
	case p == "":
		return "empty; " + want
	case len(p) > MaxModulePathLength:
		return fmt.Sprintf("longer than %d bytes", MaxModulePathLength)
	case !strings.HasSuffix(p, ".wasm"):
		return fmt.Sprintf("%s does not end in .wasm; %s", yamlnode.QuoteShort(p), want)
	}
	if msg := checkEntryName(p); msg != "" {
		return fmt.Sprintf("%s %s; %s", yamlnode.QuoteShort(p), msg, want)
	}
	return ""
}

// validName reports whether s is 1..maxLen of [A-Za-z0-9_-].
func validName(s string, maxLen int) bool {
	if s == "" || len(s) > maxLen {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-') {
			return false
		}
	}
	return true
}

// ---------------------------------------------------------------------------------------------
// Encoding.

// Marshal validates m and returns it as function.yaml text: every field written out, in the order
// of Manifest's fields, environment variables sorted by name; `abi:` and `secrets:` only when set.
// ParseManifest of the result returns a manifest equal to m (with a nil Environment as empty). The
// same manifest always gives the same bytes.
func (m *Manifest) Marshal() ([]byte, error) {
	if err := m.Validate(); err != nil {
		return nil, err
	}
	var b bytes.Buffer
	b.WriteString("# Gatehouse function manifest: see docs/bundles.md\n")
	fmt.Fprintf(&b, "version: %d\n", m.Version)
	fmt.Fprintf(&b, "name: %s\n", yamlKey(m.Name))
	if m.ABI != "" {
		fmt.Fprintf(&b, "abi: %s\n", m.ABI)
	}
	fmt.Fprintf(&b, "module: %s\n", yamlPath(m.Module))
	fmt.Fprintf(&b, "memory: %d\n", m.MemoryMB)
	fmt.Fprintf(&b, "timeout: %s\n", spec.FormatDuration(m.Timeout.D()))
	if len(m.Environment) > 0 {
		b.WriteString("environment:\n")
		for _, k := range slices.Sorted(maps.Keys(m.Environment)) {
			fmt.Fprintf(&b, "  %s: %s\n", yamlKey(k), yamlString(m.Environment[k]))
		}
	}
	if len(m.Secrets) > 0 {
		b.WriteString("secrets:\n")
		for _, s := range m.Secrets {
			fmt.Fprintf(&b, "  - %s\n", yamlKey(s))
		}
	}
	fmt.Fprintf(&b, "maxConcurrency: %d\n", m.MaxConcurrency)
	fmt.Fprintf(&b, "minWarm: %d\n", m.MinWarm)
	fmt.Fprintf(&b, "idleTimeout: %s\n", spec.FormatDuration(m.IdleTimeout.D()))
	return b.Bytes(), nil
}

// yamlKey writes a name ([A-Za-z0-9_-]) plain when YAML reads it back as the same string, else
// double-quoted.
func yamlKey(s string) string {
	plain := s != "" && (s[0] >= 'a' && s[0] <= 'z' || s[0] >= 'A' && s[0] <= 'Z' || s[0] == '_') && validName(s, len(s))
	switch strings.ToLower(s) {
	case "true", "false", "yes", "no", "on", "off", "y", "n", "null", "nan", "inf":
		plain = false
	}
	if plain {
		return s
	}
	return yamlString(s)
}

// yamlPath writes a module path plain when it is made of letters, digits and _ . / - and starts with a
// letter, digit or _ (it ends in .wasm, so YAML cannot read it as a number), else double-quoted.
func yamlPath(p string) string {
	plain := p != "" && !strings.ContainsFunc(p, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("_./-", r))
	}) && strings.IndexAny(p[:1], "./-") < 0
	if plain {
		return p
	}
	return yamlString(p)
}

// yamlString writes s as a YAML double-quoted string. YAML's escapes are a superset of the ones
// strconv.QuoteToGraphic uses for valid UTF-8 (\x only below 0x80), so the value reads back the same.
func yamlString(s string) string {
	return strconv.QuoteToGraphic(s)
}
