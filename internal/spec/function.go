package spec

import (
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"gatehouse.dev/gatehouse/internal/didyoumean"
	"gatehouse.dev/gatehouse/internal/yamlnode"
)

// MaxFunctionNameLength bounds a function name: [A-Za-z0-9_-]{1,64}, as a Lambda function name.
const MaxFunctionNameLength = 64

// FunctionSettings are a function's limits, environment and concurrency: what a stack file's
// function (embedded in [Function]) and a bundle's manifest (functions.Manifest) both set, with
// [FunctionSettings.Validate] as the one place their rules and limits live. Encoded as JSON, the keys
// are the stack file's (and the manifest's).
type FunctionSettings struct {
	// Runtime is what runs the function (`runtime:`): RuntimeWasm, a WebAssembly module (Go source
	// is built to one), is the only runtime of this Gatehouse, and "" stands for it; the process
	// runtimes take Lambda's names (nodejs20.x, python3.12, provided.al2023, …). See RuntimeName.
	Runtime string `json:"runtime,omitempty"`
	// Handler names the code a process runtime calls (`handler:`), as in Lambda: "app.lambda_handler"
	// (Python: module.function), "index.handler" (Node.js: file.export); required for them, optional
	// for provided runtimes (the bootstrap reads it), and not for RuntimeWasm.
	Handler string `json:"handler,omitempty"`
	// Isolation is how a process runtime's processes are isolated (`isolation:`): IsolationSandbox
	// (or "", the default: Linux namespaces, a read-only root of system files and the package, no
	// network but the Runtime API and a proxy to its allowedOutboundHosts, an unprivileged user) or
	// IsolationNone (the node's own user, its files and network; for nodes that cannot make
	// sandboxes).
	Isolation string `json:"isolation,omitempty"`
	// MemoryMB is the memory limit in MB (`memory:`), MinMemoryMB..MaxMemoryMB, default
	// DefaultMemoryMB.
	MemoryMB int `json:"memory"`
	// Timeout is the invocation timeout (`timeout:`, a Go duration such as "3s" or "500ms"),
	// MinTimeout..MaxTimeout, default DefaultTimeout.
	Timeout Duration `json:"timeout"`
	// Environment holds the environment variables (`environment:`); a decoder never leaves it nil.
	// Names are [A-Za-z_][A-Za-z0-9_]* and must not start with AWS_ or GATEHOUSE_ (any case:
	// Gatehouse sets those); values are UTF-8 without NUL; names and values together take at most
	// MaxEnvironmentSize bytes.
	Environment map[string]string `json:"environment,omitempty"`
	// MaxConcurrency caps the concurrent invocations (`maxConcurrency:`), 0..MaxMaxConcurrency;
	// 0 (the default) is unlimited.
	MaxConcurrency int `json:"maxConcurrency,omitempty"`
	// MinWarm is the number of instances kept warm (`minWarm:`), 0..MaxMinWarm, default 0, and
	// at most MaxConcurrency when that is set.
	MinWarm int `json:"minWarm,omitempty"`
	// IdleTimeout is how long an instance may sit unused before it is stopped (`idleTimeout:`, a Go
	// duration), MinIdleTimeout..MaxIdleTimeout, default DefaultIdleTimeout. The MinWarm instances
	// are kept regardless.
	IdleTimeout Duration `json:"idleTimeout,omitempty"`
	// SnapStart starts the function's instances from a snapshot (`snapStart:`, default false), as
	// AWS Lambda SnapStart does: the memory and globals of the first instance of a version, taken
	// once it has initialised and before its first invocation, from which every later instance of
	// that version (on the same worker) starts instead of initialising again. Whatever the
	// initialisation computed is then frozen into every instance: clock readings, and values drawn
	// from the Go runtime's random seeds (math/rand's top-level functions, map iteration order)
	// repeat from one instance to the next; crypto/rand still reads fresh random bytes on each
	// call; a Go function re-draws what must differ per instance in sdk.AfterRestore. Only for
	// WebAssembly functions: on a process runtime it is refused. A module that cannot be
	// snapshotted (a command module, or one whose code writes a table) starts as usual.
	SnapStart bool `json:"snapStart,omitempty"`
	// AllowedOutboundHosts are where the function's outbound HTTP requests may go
	// (`allowedOutboundHosts:`): entries such as "https://api.example.com", "http://127.0.0.1:9000"
	// or "https://*.amazonaws.com" (see ParseOutboundHost), at most MaxOutboundHosts. None (the
	// default) allows no outbound request.
	AllowedOutboundHosts []string `json:"allowedOutboundHosts,omitempty"`
	// Async is how asynchronous invocations of the function are retried and where their outcomes
	// go (`async:`); nil for DefaultAsyncSettings.
	Async *AsyncSettings `json:"async,omitempty"`
	// AllowedPublishSubjects are the subjects of the stack's event bus the function may publish on
	// through the SDK (`allowedPublishSubjects:`), wildcards allowed ("orders.*", "audit.>"), at
	// most MaxOutboundHosts. None (the default) allows none.
	AllowedPublishSubjects []string `json:"allowedPublishSubjects,omitempty"`
}

// OutboundHosts returns the parsed AllowedOutboundHosts, leaving out entries that do not parse
// (Validate reports them).
func (s FunctionSettings) OutboundHosts() []OutboundHost {
	var out []OutboundHost
	for _, e := range s.AllowedOutboundHosts {
		if h, err := ParseOutboundHost(e); err == nil {
			out = append(out, h)
		}
	}
	return out
}

// DefaultFunctionSettings returns the settings of a function that sets none: every default, and an
// empty environment.
func DefaultFunctionSettings() FunctionSettings {
	return FunctionSettings{
		MemoryMB:    DefaultMemoryMB,
		Timeout:     Duration(DefaultTimeout),
		Environment: map[string]string{},
		IdleTimeout: Duration(DefaultIdleTimeout),
	}
}

// Validate checks every setting of s: every problem, one per setting (and one per environment
// variable), in the order of the fields, with paths relative to the settings (such as "memory" or
// `environment.NAME`); nil when there are none.
func (s FunctionSettings) Validate() Errors {
	c := &checker{}
	c.checkSettings(nil, s)
	return c.errs
}

func (c *checker) checkFunction(name string, fn Function) {
	path := []string{"functions", name}
	if !validName(name, MaxFunctionNameLength, false) {
		c.add(errf(path, true, "%s is not a valid function name: want 1 to %d letters, digits, - and _", yamlnode.QuoteShort(name), MaxFunctionNameLength))
		return
	}
	if fn.Name != name {
		c.add(errf(path, true, "Name %q differs from the map key", fn.Name))
		return
	}
	switch {
	case fn.Source == "" || !filepath.IsAbs(fn.Source):
		c.add(errf(sub(path, "source"), false, "want an absolute path, got %s", yamlnode.QuoteShort(fn.Source)))
	case fn.Kind != SourceGo && fn.Kind != SourceWasm && fn.Kind != SourceZip:
		c.add(errf(sub(path, "source"), false, "unknown source kind %v", fn.Kind))
	case fn.Kind == SourceZip && !IsProcessRuntime(fn.Runtime):
		c.add(errf(sub(path, "source"), false, "a .zip package is for process runtimes (such as python3.12 or nodejs20.x); a %s function's source is a Go directory or a .wasm file", RuntimeWasm))
	case fn.Kind == SourceWasm && IsProcessRuntime(fn.Runtime):
		c.add(errf(sub(path, "source"), false, "a .wasm module runs with runtime: %s; a %s function's source is its package: a directory or a .zip", RuntimeWasm, fn.Runtime))
	}
	c.checkSettings(path, fn.FunctionSettings)
	c.checkSchedules(sub(path, "schedules"), fn.Schedules)
	c.checkEventSources(sub(path, "events"), fn.Events)
}

// checkSettings checks s, the settings at path.
func (c *checker) checkSettings(path []string, s FunctionSettings) {
	if msg := checkRuntime(s.Runtime); msg != "" {
		c.add(errf(sub(path, "runtime"), false, "%s", msg))
	}
	switch process := IsProcessRuntime(s.Runtime); {
	case !process && s.Handler != "":
		c.add(errf(sub(path, "handler"), true, "only for process runtimes (such as python3.12 or nodejs20.x); a %s function's handler is the one its code registers", RuntimeWasm))
	case !process && s.Isolation != "":
		c.add(errf(sub(path, "isolation"), true, "only for process runtimes: %s functions always run in a WebAssembly sandbox", RuntimeWasm))
	case process && s.Handler == "" && !strings.HasPrefix(s.Runtime, "provided."):
		c.add(errf(sub(path, "handler"), false, "required for the %s runtime: the code to call, as in Lambda, such as %s", s.Runtime, handlerExample(s.Runtime)))
	case process && s.Isolation != "" && s.Isolation != IsolationSandbox && s.Isolation != IsolationNone:
		c.add(errf(sub(path, "isolation"), false, "%s is not an isolation: want %s (the default) or %s", yamlnode.QuoteShort(s.Isolation), IsolationSandbox, IsolationNone))
	}
	if s.Handler != "" && (len(s.Handler) > 128 || strings.ContainsFunc(s.Handler, func(r rune) bool { return r <= ' ' || r == 0x7f })) {
		c.add(errf(sub(path, "handler"), false, "%s is not a handler: at most 128 characters, no spaces", yamlnode.QuoteShort(s.Handler)))
	}
	if s.MemoryMB < MinMemoryMB || s.MemoryMB > MaxMemoryMB {
		c.add(errf(sub(path, "memory"), false, "%d is out of range: want %d to %d (MB)", s.MemoryMB, MinMemoryMB, MaxMemoryMB))
	}
	if s.Timeout.D() < MinTimeout || s.Timeout.D() > MaxTimeout {
		// The maximum in seconds, as Lambda gives it.
		c.add(errf(sub(path, "timeout"), false, "%s is out of range: want %s to %ds", FormatDuration(s.Timeout.D()), FormatDuration(MinTimeout), MaxTimeout/time.Second))
	}
	size := 0
	for _, k := range slices.Sorted(maps.Keys(s.Environment)) {
		v := s.Environment[k]
		kp := sub(path, "environment", k)
		switch {
		case !ValidEnvName(k):
			c.add(errf(kp, true, "not a valid variable name: want letters, digits and _, not starting with a digit"))
		case hasPrefixFold(k, "AWS_") || hasPrefixFold(k, "GATEHOUSE_"):
			c.add(errf(kp, true, "names starting with AWS_ or GATEHOUSE_ are reserved: Gatehouse sets them"))
		case strings.ContainsRune(v, 0):
			c.add(errf(kp, false, "the value contains a NUL byte"))
		case !utf8.ValidString(v):
			c.add(errf(kp, false, "the value is not valid UTF-8"))
		}
		size += len(k) + len(v)
	}
	if size > MaxEnvironmentSize {
		c.add(errf(sub(path, "environment"), true, "%s", EnvSizeMessage(size, false)))
	}
	if s.MaxConcurrency < 0 || s.MaxConcurrency > MaxMaxConcurrency {
		c.add(errf(sub(path, "maxConcurrency"), false, "%d is out of range: want 0 (unlimited) to %d", s.MaxConcurrency, MaxMaxConcurrency))
	}
	switch {
	case s.MinWarm < 0 || s.MinWarm > MaxMinWarm:
		c.add(errf(sub(path, "minWarm"), false, "%d is out of range: want 0 to %d", s.MinWarm, MaxMinWarm))
	case s.MaxConcurrency > 0 && s.MinWarm > s.MaxConcurrency:
		c.add(errf(sub(path, "minWarm"), false, "%d is more than maxConcurrency (%d)", s.MinWarm, s.MaxConcurrency))
	}
	if s.IdleTimeout.D() < MinIdleTimeout || s.IdleTimeout.D() > MaxIdleTimeout {
		c.add(errf(sub(path, "idleTimeout"), false, "%s is out of range: want %s to %s", FormatDuration(s.IdleTimeout.D()), FormatDuration(MinIdleTimeout), FormatDuration(MaxIdleTimeout)))
	}
	if s.SnapStart && IsProcessRuntime(s.Runtime) {
		c.add(errf(sub(path, "snapStart"), true, "applies to WebAssembly functions only (runtime: %s); a %s function cannot start from a snapshot: remove it", RuntimeWasm, s.Runtime))
	}
	if n := len(s.AllowedOutboundHosts); n > MaxOutboundHosts {
		c.add(errf(sub(path, "allowedOutboundHosts"), false, "%d entries; at most %d", n, MaxOutboundHosts))
	}
	seen := map[string]bool{}
	for i, e := range s.AllowedOutboundHosts {
		h, err := ParseOutboundHost(e)
		switch {
		case err != nil:
			c.add(errf(sub(path, "allowedOutboundHosts", Index(i)), false, "%v", err))
		case seen[h.String()]:
			c.add(errf(sub(path, "allowedOutboundHosts", Index(i)), false, "%s is listed twice", h))
		}
		seen[h.String()] = true
	}
	c.checkAsync(sub(path, "async"), s.Async)
	if n := len(s.AllowedPublishSubjects); n > MaxOutboundHosts {
		c.add(errf(sub(path, "allowedPublishSubjects"), false, "%d entries; at most %d", n, MaxOutboundHosts))
	}
	for i, subj := range s.AllowedPublishSubjects {
		if err := CheckSubject(subj, true); err != nil {
			c.add(errf(sub(path, "allowedPublishSubjects", Index(i)), false, "%v", err))
		}
	}
}

// EnvSizeMessage says that environment variables take size bytes, or more than the limit when
// atLeast (a decoder that stopped counting).
func EnvSizeMessage(size int, atLeast bool) string {
	amount := strconv.Itoa(size)
	if atLeast {
		amount = "more than " + strconv.Itoa(MaxEnvironmentSize)
	}
	return fmt.Sprintf("the variables take %s bytes (names and values); the limit is %d (4 KB, as in AWS Lambda)", amount, MaxEnvironmentSize)
}

// FormatDuration writes d in its shortest Go form for whole units ("5m", "3s", "500ms"), else as
// time.Duration.String does. Stored function records write their durations so: keep it as it is.
func FormatDuration(d time.Duration) string {
	switch {
	case d == 0:
		return "0s"
	case d%time.Hour == 0:
		return strconv.FormatInt(int64(d/time.Hour), 10) + "h"
	case d%time.Minute == 0:
		return strconv.FormatInt(int64(d/time.Minute), 10) + "m"
	case d%time.Second == 0:
		return strconv.FormatInt(int64(d/time.Second), 10) + "s"
	case d%time.Millisecond == 0:
		return strconv.FormatInt(int64(d/time.Millisecond), 10) + "ms"
	}
	return d.String()
}

// RuntimeName returns the name of the function's runtime: RuntimeWasm when Runtime is "".
func (s FunctionSettings) RuntimeName() string {
	if s.Runtime == "" {
		return RuntimeWasm
	}
	return s.Runtime
}

// RuntimeWasm is the runtime of WebAssembly functions, Go source built to WebAssembly included.
const RuntimeWasm = "wasm"

// lambdaRuntimes are the names Lambda gives its managed runtimes, which process runtimes take.
var lambdaRuntimes = []string{"nodejs20.x", "nodejs22.x", "python3.11", "python3.12", "python3.13", "provided.al2023", "provided.al2", "java21", "dotnet8", "ruby3.3"}

// processRuntimes are the Lambda runtimes this Gatehouse runs, as processes.
// ProcessRuntimes lists the process runtimes' names.
func ProcessRuntimes() []string { return slices.Clone(processRuntimes) }

var processRuntimes = []string{"nodejs20.x", "nodejs22.x", "python3.11", "python3.12", "python3.13", "provided.al2023", "provided.al2"}

// The isolation settings of a process runtime: IsolationSandbox, the default, runs each process in a
// sandbox of its own; IsolationNone runs it as the node's user, with the node's files and network.
const (
	IsolationSandbox = "sandbox"
	IsolationNone    = "none"
)

// IsProcessRuntime reports whether runtime runs as a process through the Lambda Runtime API.
func IsProcessRuntime(runtime string) bool { return slices.Contains(processRuntimes, runtime) }

func handlerExample(runtime string) string {
	if strings.HasPrefix(runtime, "nodejs") {
		return "index.handler"
	}
	return "app.lambda_handler"
}

// checkRuntime checks a function's runtime, and returns what is wrong with it or "".
func checkRuntime(r string) string {
	switch {
	case r == RuntimeWasm || r == "" || IsProcessRuntime(r):
		return ""
	case slices.Contains(lambdaRuntimes, r):
		return fmt.Sprintf("the %s runtime is not available in this Gatehouse: want %s (a Go directory or a .wasm module) or one of %s", r, RuntimeWasm, strings.Join(processRuntimes, ", "))
	}
	return fmt.Sprintf("unknown runtime %s%s: want %s", yamlnode.QuoteShort(r), didyoumean.Suggest(r, append([]string{RuntimeWasm}, lambdaRuntimes...)), RuntimeWasm)
}
