package process

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Runtime names of Lambda's managed runtimes that run as processes, and what runs each.
//
// The rule that maps a runtime to an installed interpreter: for pythonX.Y, the first of
// `pythonX.Y` and `python3` on PATH whose version is X.Y or newer (code written for 3.11 runs on
// 3.12); for nodejsN.x, the first of `nodeN`, `node` and `nodejs` whose major version is N or newer.
// A newer interpreter is taken because one of exactly the runtime's version is rarely installed
// beside the machine's own, and the languages keep old code running. provided.al2023 and
// provided.al2 need no interpreter: the package's own `bootstrap` executable is the runtime.
const (
	RuntimeProvidedAL2023 = "provided.al2023"
	RuntimeProvidedAL2    = "provided.al2"
)

// ErrNoInterpreter is a runtime whose interpreter is not installed.
var ErrNoInterpreter = errors.New("no interpreter for the runtime")

// Interpreter is an installed interpreter a runtime runs with.
type Interpreter struct {
	// Path is the interpreter's executable, resolved (not a shim, for pyenv's or the like).
	Path string
	// Version is what it reports, such as "3.12.4" or "22.3.0".
	Version string
}

// Language returns "python", "nodejs" or "provided" for a runtime name, with the version the runtime
// names ("3.12", "22"; "" for provided), or false for a name that is not a process runtime.
func Language(runtime string) (lang, version string, ok bool) {
	switch {
	case runtime == RuntimeProvidedAL2023 || runtime == RuntimeProvidedAL2:
		return "provided", "", true
	case strings.HasPrefix(runtime, "python3."):
		v := strings.TrimPrefix(runtime, "python")
		if _, ok := parseVersion(v); ok {
			return "python", v, true
		}
	case strings.HasPrefix(runtime, "nodejs") && strings.HasSuffix(runtime, ".x"):
		v := strings.TrimSuffix(strings.TrimPrefix(runtime, "nodejs"), ".x")
		if _, err := strconv.Atoi(v); err == nil {
			return "nodejs", v, true
		}
	}
	return "", "", false
}

// FindInterpreter finds the interpreter of runtime by the rule above, looking up names with look
// (exec.LookPath in use) and asking each candidate its version. A provided runtime has none (a zero
// Interpreter, no error). The error for a missing one says what to install or which runtime to set
// instead.
func FindInterpreter(ctx context.Context, runtime string, look func(string) (string, error)) (Interpreter, error) {
	lang, want, ok := Language(runtime)
	if !ok {
		return Interpreter{}, fmt.Errorf("%s is not a process runtime", runtime)
	}
	var names []string
	var probe []string
	switch lang {
	case "provided":
		return Interpreter{}, nil
	case "python":
		names = []string{"python" + want, "python3"}
		probe = []string{"-c", "import sys; print('%d.%d.%d' % sys.version_info[:3]); print(sys.executable)"}
	case "nodejs":
		names = []string{"node" + want, "node", "nodejs"}
		probe = []string{"-e", "console.log(process.versions.node); console.log(process.execPath)"}
	}
	wantV, _ := parseVersion(want)
	var found []string // the versions of the interpreters too old, for the message
	for _, name := range names {
		path, err := look(name)
		if err != nil {
			continue
		}
		pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		out, err := exec.CommandContext(pctx, path, probe...).Output()
		cancel()
		if err != nil {
			continue
		}
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		if len(lines) < 2 {
			continue
		}
		version, exe := strings.TrimSpace(lines[0]), strings.TrimSpace(lines[1])
		got, ok := parseVersion(version)
		if !ok {
			continue
		}
		if !atLeast(got, wantV) {
			found = append(found, name+" "+version)
			continue
		}
		if !filepath.IsAbs(exe) {
			exe = path
		}
		return Interpreter{Path: exe, Version: version}, nil
	}
	return Interpreter{}, missing(runtime, lang, want, names, found)
}

// missing says what is missing for runtime, and what would do instead.
func missing(runtime, lang, want string, names, found []string) error {
	msg := fmt.Sprintf("%s runtime: no %s", runtime, names[0])
	switch lang {
	case "python":
		msg += fmt.Sprintf(" or python3 >= %s on PATH", want)
	case "nodejs":
		msg += fmt.Sprintf(" or node >= %s on PATH", want)
	}
	if len(found) > 0 {
		// An older interpreter is there: the runtime of its version would run.
		v := strings.Fields(found[0])[1]
		if pv, ok := parseVersion(v); ok {
			older := fmt.Sprintf("python%d.%d", pv[0], pv[1])
			if lang == "nodejs" {
				older = fmt.Sprintf("nodejs%d.x", pv[0])
			}
			msg += fmt.Sprintf(" (found %s); install one, or set runtime: %s", strings.Join(found, ", "), older)
		}
	} else {
		msg += "; install one"
	}
	return fmt.Errorf("%w: %s", ErrNoInterpreter, msg)
}

// parseVersion reads "3.12", "3.12.4" or "22.3.0" as numbers.
func parseVersion(s string) ([]int, bool) {
	parts := strings.Split(strings.TrimPrefix(s, "v"), ".")
	out := make([]int, 0, len(parts))
	for _, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil {
			return nil, false
		}
		out = append(out, n)
	}
	return out, len(out) > 0
}

// atLeast reports whether version got is want or newer, comparing as many parts as want has.
func atLeast(got, want []int) bool {
	for i, w := range want {
		g := 0
		if i < len(got) {
			g = got[i]
		}
		if g != w {
			return g > w
		}
	}
	return true
}
