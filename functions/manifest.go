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

	"github.com/goccy/go-yaml/ast"

	"gatehouse.dev/gatehouse/internal/spec"
	"gatehouse.dev/gatehouse/internal/yamldecode"
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
	// DefaultPackageFile is the package of a process runtime's function inside a bundle (`module:`).
	DefaultPackageFile = "package.zip"
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
	// (`memory:`, `timeout:`, `environment:`, `maxConcurrency:`, `minWarm:`, `idleTimeout:`,
	// `snapStart:`, …), with
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
	Version int
	Name    string
	// Runtime is "" for spec.RuntimeWasm, so that the JSON of a manifest written before runtimes
	// had names is the JSON of the same manifest now.
	Runtime        string `json:",omitempty"`
	ABI            string
	Module         string
	MemoryMB       int
	Timeout        time.Duration
	Environment    map[string]string
	Secrets        []string
	MaxConcurrency int
	MinWarm        int
	IdleTimeout    time.Duration
	// AllowedOutboundHosts, Handler and Isolation are left out when empty, as they were before
	// functions had them.
	AllowedOutboundHosts []string `json:",omitempty"`
	Handler              string   `json:",omitempty"`
	Isolation            string   `json:",omitempty"`
	// SnapStart, Async and AllowedPublishSubjects are left out when unset, so that a manifest
	// without them keeps the digest it had.
	SnapStart              bool                `json:",omitempty"`
	Async                  *spec.AsyncSettings `json:",omitempty"`
	AllowedPublishSubjects []string            `json:",omitempty"`
}

// MarshalJSON implements json.Marshaler.
func (m Manifest) MarshalJSON() ([]byte, error) {
	return json.Marshal(manifestJSON{
		Version: m.Version, Name: m.Name, Runtime: runtimeOrEmpty(m.Runtime), ABI: m.ABI, Module: m.Module,
		MemoryMB: m.MemoryMB, Timeout: m.Timeout.D(), Environment: m.Environment, Secrets: m.Secrets,
		MaxConcurrency: m.MaxConcurrency, MinWarm: m.MinWarm, IdleTimeout: m.IdleTimeout.D(),
		AllowedOutboundHosts: m.AllowedOutboundHosts, Handler: m.Handler, Isolation: m.Isolation, SnapStart: m.SnapStart,
		Async: m.Async, AllowedPublishSubjects: m.AllowedPublishSubjects,
	})
}

// UnmarshalJSON implements json.Unmarshaler.
func (m *Manifest) UnmarshalJSON(b []byte) error {
	var j manifestJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*m = Manifest{Version: j.Version, Name: j.Name, ABI: j.ABI, Module: j.Module, Secrets: j.Secrets,
		FunctionSettings: spec.FunctionSettings{Runtime: j.Runtime, MemoryMB: j.MemoryMB, Timeout: spec.Duration(j.Timeout), Environment: j.Environment,
			MaxConcurrency: j.MaxConcurrency, MinWarm: j.MinWarm, IdleTimeout: spec.Duration(j.IdleTimeout), AllowedOutboundHosts: j.AllowedOutboundHosts,
			Handler: j.Handler, Isolation: j.Isolation, SnapStart: j.SnapStart, Async: j.Async, AllowedPublishSubjects: j.AllowedPublishSubjects}}
	return nil
}

// runtimeOrEmpty is r, or "" for the default runtime (written or not), which records and digests
// leave out.
func runtimeOrEmpty(r string) string {
	if r == spec.RuntimeWasm {
		return ""
	}
	return r
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
// name, abi, module, memory, timeout, environment, secrets, maxConcurrency, minWarm, idleTimeout,
// snapStart, …).
func (m *Manifest) Validate() error {
	if e := checkManifest(m); e != nil {
		return &ManifestError{Path: yamldecode.FormatPath(e.keys), Msg: e.msg}
	}
	return nil
}

// Shape limits: the YAML parser takes time quadratic in the nesting depth (16 KiB of "[" takes
// seconds). A manifest nests at most two levels.
const (
	maxFlowDepth  = 8
	maxBlockDepth = 8
)

// manifestFormat is a manifest for internal/yamldecode, the stack file's decoder: a plain format,
// without anchors, aliases, tags or merge keys, which a flat file does not need.
var manifestFormat = yamldecode.Format{Noun: "manifest", MaxBytes: MaxManifestBytes, SizeText: "16 KiB",
	MaxFlowDepth: maxFlowDepth, MaxBlockDepth: maxBlockDepth, Plain: true}

// ParseManifest parses and validates a manifest (the contents of function.yaml) and fills the
// defaults. Errors are [*ManifestError]s.
//
// The parser is strict: unknown keys, duplicate keys, values of the wrong type (a number for a
// string, a duration without a unit) and more than one YAML document are errors, as are YAML
// anchors, aliases, tags and merge keys, which a manifest does not need. Problems are found in this
// order: size and encoding, YAML syntax, the schema version, structure in file order, then values
// in the order of the manifest's keys (as [Manifest.Validate]).
func ParseManifest(data []byte) (*Manifest, error) {
	body, err := yamldecode.Parse("", data, manifestFormat)
	if err != nil {
		return nil, manifestError(err)
	}
	d := yamldecode.New("", "", body)
	m, err := decodeManifest(d, body)
	if err != nil {
		return nil, manifestError(err)
	}
	if e := checkManifest(m); e != nil {
		line, col, _ := d.Locate(e.keys, e.atKey)
		return nil, &ManifestError{Line: line, Column: col, Path: yamldecode.FormatPath(e.keys), Msg: e.msg}
	}
	return m, nil
}

// manifestError returns the decoder's error as a *ManifestError.
func manifestError(err error) error {
	var ye *yamldecode.Error
	if !errors.As(err, &ye) {
		return err
	}
	return &ManifestError{Line: ye.Line, Column: ye.Column, Path: ye.Path, Msg: ye.Msg}
}

// manifestTooLarge is the error for a manifest over MaxManifestBytes, as ParseManifest reports it.
func manifestTooLarge() *ManifestError {
	return &ManifestError{Line: 1, Column: 1,
		Msg: fmt.Sprintf("the manifest is larger than the limit of %d bytes (%s)", MaxManifestBytes, manifestFormat.SizeText)}
}

// ---------------------------------------------------------------------------------------------
// Decoding: YAML structure and types → Manifest, with the stack file's decoder (internal/yamldecode).

// manifestKeys are the top-level keys, in the order of Manifest's fields.
var manifestKeys = []string{"version", "name", "runtime", "handler", "isolation", "abi", "module", "memory", "timeout", "environment", "secrets",
	"maxConcurrency", "minWarm", "idleTimeout", "snapStart", "allowedOutboundHosts", "async", "allowedPublishSubjects"}

func decodeManifest(d *yamldecode.Decoder, body ast.Node) (*Manifest, error) {
	if body == nil {
		return nil, &yamldecode.Error{Line: 1, Column: 1,
			Msg: fmt.Sprintf("the manifest is empty; it starts with \"version: %d\" and \"name: NAME\"", ManifestVersion)}
	}
	switch body.(type) {
	case *ast.MappingNode, *ast.MappingValueNode:
	default:
		return nil, d.Errorf(body, nil, "a manifest is a mapping of version, name, memory, …; got %s", yamldecode.Describe(body))
	}
	es, err := d.Entries(nil, body)
	if err != nil {
		return nil, err
	}
	// The schema version comes first: a manifest of another version may have other keys.
	ve, ok := yamldecode.FindEntry(es, "version")
	if !ok {
		return nil, &yamldecode.Error{Line: 1, Column: 1, Path: "version",
			Msg: fmt.Sprintf("required; add \"version: %d\" at the top of the file", ManifestVersion)}
	}
	version, err := d.Integer([]string{"version"}, ve.Val, "")
	if err != nil {
		return nil, err
	}
	if version != ManifestVersion {
		return nil, d.Errorf(ve.Val, []string{"version"}, "version %d is not supported; this Gatehouse reads version %d", version, ManifestVersion)
	}
	m := NewManifest("")
	m.Version = version
	// Keys in file order, so that the first problem in the file is the one reported.
	for _, e := range es {
		path := []string{e.Key}
		var err error
		switch e.Key {
		case "version":
		case "name":
			m.Name, err = d.Str(path, e.Val)
		case "runtime":
			m.Runtime, err = d.Str(path, e.Val)
		case "handler":
			m.Handler, err = d.Str(path, e.Val)
		case "isolation":
			m.Isolation, err = d.Str(path, e.Val)
		case "abi":
			m.ABI, err = d.Str(path, e.Val)
		case "module":
			m.Module, err = d.Str(path, e.Val)
		case "memory":
			m.MemoryMB, err = d.Integer(path, e.Val, " of MB")
		case "timeout":
			m.Timeout, err = duration(d, path, e.Val)
		case "environment":
			err = decodeEnvironment(d, &m, e)
		case "secrets":
			m.Secrets, err = decodeSecrets(d, e)
		case "allowedOutboundHosts":
			m.AllowedOutboundHosts, err = d.StrList(path, e.Val)
		case "maxConcurrency":
			m.MaxConcurrency, err = d.Integer(path, e.Val, "")
		case "minWarm":
			m.MinWarm, err = d.Integer(path, e.Val, "")
		case "idleTimeout":
			m.IdleTimeout, err = duration(d, path, e.Val)
		case "snapStart":
			m.SnapStart, err = d.Bool(path, e.Val)
		case "async":
			m.Async, err = DecodeAsyncSettings(d, path, e.Val)
		case "allowedPublishSubjects":
			m.AllowedPublishSubjects, err = d.StrList(path, e.Val)
		default:
			return nil, d.UnknownKey(nil, e, manifestKeys)
		}
		if err != nil {
			return nil, err
		}
	}
	// A process runtime's module is its package, package.zip unless the manifest names another.
	if _, ok := yamldecode.FindEntry(es, "module"); !ok && spec.IsProcessRuntime(m.Runtime) {
		m.Module = DefaultPackageFile
	}
	if _, ok := yamldecode.FindEntry(es, "name"); !ok {
		return nil, &yamldecode.Error{Line: 1, Column: 1, Path: "name", Msg: "required: the function's name, e.g. \"name: hello\""}
	}
	return &m, nil
}

// DecodeAsyncSettings decodes a function's `async:` mapping at path, as manifests and stack files
// write it; settings it leaves out keep their defaults. Validate checks the values.
func DecodeAsyncSettings(d *yamldecode.Decoder, path []string, n ast.Node) (*spec.AsyncSettings, error) {
	a := spec.DefaultAsyncSettings()
	f, err := d.Fields(path, n, "maximumRetryAttempts", "maximumEventAge", "retryDelay", "onSuccess", "onFailure")
	if err != nil {
		return nil, err
	}
	if e, ok := f["maximumRetryAttempts"]; ok {
		if a.MaximumRetryAttempts, err = d.Integer(yamldecode.Sub(path, "maximumRetryAttempts"), e.Val, ""); err != nil {
			return nil, err
		}
	}
	for _, k := range []struct {
		key string
		to  *spec.Duration
	}{{"maximumEventAge", &a.MaximumEventAge}, {"retryDelay", &a.RetryDelay}} {
		if e, ok := f[k.key]; ok {
			if *k.to, err = duration(d, yamldecode.Sub(path, k.key), e.Val); err != nil {
				return nil, err
			}
		}
	}
	for _, k := range []struct {
		key string
		to  *string
	}{{"onSuccess", &a.OnSuccess}, {"onFailure", &a.OnFailure}} {
		if e, ok := f[k.key]; ok {
			if *k.to, err = d.Str(yamldecode.Sub(path, k.key), e.Val); err != nil {
				return nil, err
			}
		}
	}
	return &a, nil
}

func duration(d *yamldecode.Decoder, path []string, n ast.Node) (spec.Duration, error) {
	dur, err := d.Duration(path, n)
	return spec.Duration(dur), err
}

// decodeEnvironment reads the variables of environment: as text (PORT: 08080 is "08080").
func decodeEnvironment(d *yamldecode.Decoder, m *Manifest, e yamldecode.Entry) error {
	path := []string{"environment"}
	vars, err := d.Entries(path, e.Val)
	if err != nil {
		return err
	}
	for _, v := range vars {
		s, err := d.Text(yamldecode.Sub(path, v.Key), v.Val)
		if err != nil {
			return err
		}
		m.Environment[v.Key] = s
	}
	return nil
}

// decodeSecrets reads the list of secret variable names (nil for none); a name is any scalar's text.
func decodeSecrets(d *yamldecode.Decoder, e yamldecode.Entry) ([]string, error) {
	path := []string{"secrets"}
	items, err := d.ListOf(path, e.Val, "a list of environment variable names")
	if err != nil || items == nil {
		return nil, err
	}
	out := make([]string, 0, len(items))
	for i, n := range items {
		p := yamldecode.Sub(path, yamldecode.Index(i))
		v, _, err := d.Resolve(p, n)
		if err != nil {
			return nil, err
		}
		s, ok := yamlnode.ScalarText(v)
		if !ok || v == nil {
			at := n
			if v == nil {
				at = e.Val // a null item has no place of its own
			}
			return nil, d.TypeError(p, at, v, "an environment variable name")
		}
		out = append(out, s)
	}
	return out, nil
}

// ---------------------------------------------------------------------------------------------
// Checking values: shared by ParseManifest and Validate.

type checkErr struct {
	keys  []string // the key path, a list item as yamldecode.Index writes it
	atKey bool     // report at the key rather than the value
	msg   string
}

func errf(keys []string, atKey bool, format string, args ...any) *checkErr {
	return &checkErr{keys: keys, atKey: atKey, msg: fmt.Sprintf(format, args...)}
}

func checkManifest(m *Manifest) *checkErr {
	if m.Version != ManifestVersion {
		return errf([]string{"version"}, false, "version %d is not supported; this Gatehouse reads version %d", m.Version, ManifestVersion)
	}
	if !validName(m.Name, MaxNameLength) {
		return errf([]string{"name"}, false, "%s is not a valid function name: want 1 to %d letters, digits, - and _", yamlnode.QuoteShort(m.Name), MaxNameLength)
	}
	switch m.ABI {
	case "", ABIReactor, ABICommand:
	default:
		return errf([]string{"abi"}, false, "%s is not an ABI: want %s or %s (or leave abi out to use whichever the module exports)", yamlnode.QuoteShort(m.ABI), ABIReactor, ABICommand)
	}
	if msg := checkModulePath(m.Module, m.Runtime); msg != "" {
		return errf([]string{"module"}, false, "%s", msg)
	}
	// The function settings, with the secrets checked after the environment, as the keys come.
	settings := m.FunctionSettings.Validate()
	if len(settings) > 0 && slices.Contains([]string{"memory", "timeout", "environment"}, settings[0].Keys[0]) {
		return settingErr(settings[0])
	}
	for i, s := range m.Secrets {
		p := []string{"secrets", yamldecode.Index(i)}
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
	return &checkErr{keys: e.Keys, atKey: e.AtKey, msg: e.Message}
}

// checkModulePath checks a `module:` value of a function of runtime; it returns "" when it is fine.
// A process runtime's module is its package, a zip.
func checkModulePath(p, runtime string) string {
	want, ext := "want the module's path inside the bundle, ending in .wasm, e.g. "+DefaultModuleFile, ".wasm"
	if spec.IsProcessRuntime(runtime) {
		want, ext = "want the path of the "+runtime+" package inside the bundle, ending in .zip, e.g. "+DefaultPackageFile, ".zip"
	}
	switch {
	case p == "":
		return "empty; " + want
	case len(p) > MaxModulePathLength:
		return fmt.Sprintf("longer than %d bytes", MaxModulePathLength)
	case !strings.HasSuffix(p, ext):
		return fmt.Sprintf("%s does not end in %s; %s", yamlnode.QuoteShort(p), ext, want)
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
// of Manifest's fields, environment variables sorted by name; `abi:`, `secrets:` and `snapStart:`
// only when set.
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
	if r := runtimeOrEmpty(m.Runtime); r != "" {
		fmt.Fprintf(&b, "runtime: %s\n", yamlString(r))
	}
	if m.Handler != "" {
		fmt.Fprintf(&b, "handler: %s\n", yamlString(m.Handler))
	}
	if m.Isolation != "" {
		fmt.Fprintf(&b, "isolation: %s\n", yamlString(m.Isolation))
	}
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
	if m.SnapStart {
		b.WriteString("snapStart: true\n")
	}
	if len(m.AllowedOutboundHosts) > 0 {
		b.WriteString("allowedOutboundHosts:\n")
		for _, h := range m.AllowedOutboundHosts {
			fmt.Fprintf(&b, "  - %s\n", yamlString(h))
		}
	}
	if len(m.AllowedPublishSubjects) > 0 {
		b.WriteString("allowedPublishSubjects:\n")
		for _, s := range m.AllowedPublishSubjects {
			fmt.Fprintf(&b, "  - %s\n", yamlString(s))
		}
	}
	if a := m.Async; a != nil {
		b.WriteString("async:\n")
		fmt.Fprintf(&b, "  maximumRetryAttempts: %d\n", a.MaximumRetryAttempts)
		fmt.Fprintf(&b, "  maximumEventAge: %s\n", spec.FormatDuration(a.MaximumEventAge.D()))
		fmt.Fprintf(&b, "  retryDelay: %s\n", spec.FormatDuration(a.RetryDelay.D()))
		if a.OnSuccess != "" {
			fmt.Fprintf(&b, "  onSuccess: %s\n", yamlString(a.OnSuccess))
		}
		if a.OnFailure != "" {
			fmt.Fprintf(&b, "  onFailure: %s\n", yamlString(a.OnFailure))
		}
	}
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
