package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"

	"gatehouse.dev/gatehouse/functions"
	"gatehouse.dev/gatehouse/internal/adminapi"
	runtimeprocess "gatehouse.dev/gatehouse/runtimes/process"
)

// Watch mode (up --watch): the node follows its definition file and every function's source, and
// reloads when one changes, as gatehouse reload does. Only what changed is deployed: a function
// whose package is the same is not, and an API whose definition is the same is left alone. A
// broken edit is reported and changes nothing, so the last good version keeps serving. Each reload
// prints one line with its time.

const (
	// watchSettle is how long the watcher waits after a change for more (an editor's save is
	// often several writes, a checkout many).
	watchSettle = 30 * time.Millisecond
	// watchKeepVersions is how many of a function's newest versions watch mode keeps; older ones
	// (not named by an alias or a route) are pruned, and their modules collected after
	// functions.MinCollectAge.
	watchKeepVersions = 3
	// watchCollectEvery is how often watch mode collects modules no version uses.
	watchCollectEvery = 10 * time.Minute
)

// watchSkip reports whether a directory is not watched: version control, dependencies, build
// output and caches change often and are not a function's own code.
func watchSkip(name string) bool {
	switch name {
	case ".git", ".hg", ".svn", "node_modules", "__pycache__", ".venv", "venv", ".aws-sam", ".serverless", ".gatehouse", ".idea", ".vscode":
		return true
	}
	return false
}

// watchDirs are the directories to watch: the definition file's, and each function's source
// directory with everything under it, except the data directory and what watchSkip names.
func (n *Node) watchDirs() []string {
	stack := n.latest.Load()
	dirs := map[string]bool{filepath.Dir(stack.File): true}
	for _, fn := range stack.Functions {
		src := fn.Source
		if st, err := os.Stat(src); err == nil && !st.IsDir() {
			dirs[filepath.Dir(src)] = true
			continue
		}
		_ = filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
			if err != nil || !d.IsDir() {
				return nil
			}
			if p != src && watchSkip(d.Name()) || n.inDataDir(p) {
				return filepath.SkipDir
			}
			dirs[p] = true
			return nil
		})
	}
	out := make([]string, 0, len(dirs))
	for d := range dirs {
		if abs, err := filepath.Abs(d); err == nil && !n.inDataDir(abs) {
			out = append(out, abs)
		}
	}
	slices.Sort(out)
	return out
}

func (n *Node) inDataDir(p string) bool {
	abs, err := filepath.Abs(p)
	return err == nil && (abs == n.dataDir || strings.HasPrefix(abs, n.dataDir+string(filepath.Separator)))
}

// watch runs until ctx ends, reloading the node on every settled change and reporting each reload
// to out.
func (n *Node) watch(ctx context.Context, out io.Writer) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("watch mode: %w", err)
	}
	defer w.Close()
	watched := map[string]bool{}
	rewatch := func() {
		want := n.watchDirs()
		for _, d := range want {
			if !watched[d] {
				if err := w.Add(d); err != nil {
					n.log.Warn("watch mode: cannot watch a directory", "dir", d, "err", err)
					continue
				}
				watched[d] = true
			}
		}
		for d := range watched {
			if !slices.Contains(want, d) {
				_ = w.Remove(d)
				delete(watched, d)
			}
		}
	}
	rewatch()
	fmt.Fprintf(out, "watching %d directories for changes\n", len(watched))

	settle := time.NewTimer(time.Hour)
	settle.Stop()
	collect := time.NewTicker(watchCollectEvery)
	defer collect.Stop()
	var changed []string
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-w.Errors:
			n.log.Warn("watch mode", "err", err)
		case ev := <-w.Events:
			if n.inDataDir(ev.Name) || ev.Op == fsnotify.Chmod || watchSkip(filepath.Base(ev.Name)) {
				continue
			}
			if !slices.Contains(changed, ev.Name) {
				changed = append(changed, ev.Name)
			}
			settle.Reset(watchSettle)
		case <-settle.C:
			// Name the last file that still exists: editors and sed write a temporary file and rename it.
			shown := changed[len(changed)-1]
			for _, f := range slices.Backward(changed) {
				if _, err := os.Stat(f); err == nil {
					shown = f
					break
				}
			}
			n.watchReload(ctx, out, shown, slices.Clone(changed))
			changed = changed[:0]
			rewatch()
		case <-collect.C:
			if st, err := n.registry.Collect(ctx, 0); err != nil {
				n.log.Warn("watch mode: collecting unused modules", "err", err)
			} else if st.Modules > 0 {
				n.log.Info("watch mode: collected unused modules", "modules", st.Modules, "versions", st.Versions)
			}
		}
	}
}

// watchReload reloads after a change to file and prints one line: what was deployed and how long
// the save took to serve, or why nothing changed.
func (n *Node) watchReload(ctx context.Context, out io.Writer, file string, changed []string) {
	start := time.Now()
	err := n.checkSyntax(ctx, changed)
	var rep adminapi.ReloadView
	if err == nil {
		rep, err = n.reload(ctx, io.Discard)
	}
	took := time.Since(start).Round(time.Millisecond)
	rel := file
	if dir, err := filepath.Abs(filepath.Dir(n.stack.File)); err == nil {
		if r, err := filepath.Rel(dir, file); err == nil && !strings.HasPrefix(r, "..") {
			rel = r
		}
	}
	if err != nil {
		fmt.Fprintf(out, "%s changed: not reloaded, the last good version keeps serving (%s):\n  %s\n", rel, took,
			strings.ReplaceAll(strings.TrimPrefix(err.Error(), "reload refused: "), "\n", "\n  "))
		return
	}
	var what []string
	for _, name := range rep.Functions {
		f, err := n.registry.Get(ctx, name)
		if err != nil {
			continue
		}
		what = append(what, name+" version "+strconv.Itoa(f.LatestVersion))
		n.pruneVersions(ctx, name)
	}
	for _, kind := range []struct {
		verb  string
		names []string
	}{{"created", rep.APIs.Created}, {"updated", rep.APIs.Updated}, {"deleted", rep.APIs.Deleted}} {
		for _, a := range kind.names {
			what = append(what, "API "+a+" "+kind.verb)
		}
	}
	if len(what) == 0 {
		what = []string{"nothing to deploy"}
	}
	fmt.Fprintf(out, "%s changed: %s, serving in %s\n", rel, strings.Join(what, ", "), took)
}

// pruneVersions keeps a function's newest versions and those its routes pin.
func (n *Node) pruneVersions(ctx context.Context, name string) {
	var pinned []int
	for _, api := range n.latest.Load().APIs {
		for _, rt := range api.Routes {
			fn, q, ok := strings.Cut(rt.Integration.Target, ":")
			if v, err := strconv.Atoi(q); ok && fn == name && err == nil {
				pinned = append(pinned, v)
			}
		}
	}
	if _, err := n.registry.PruneVersions(ctx, name, watchKeepVersions, pinned); err != nil && !errors.Is(err, functions.ErrNotFound) {
		n.log.Warn("watch mode: pruning old versions", "function", name, "err", err)
	}
}

// checkSyntax parses the changed Python and JavaScript files of the functions whose source holds
// them, with the function's interpreter, so that a save with a syntax error is reported at once and
// the version that works keeps serving, rather than being replaced by one that fails when it starts.
func (n *Node) checkSyntax(ctx context.Context, changed []string) error {
	stack := n.latest.Load()
	for _, file := range changed {
		ext := filepath.Ext(file)
		if ext != ".py" && ext != ".js" && ext != ".mjs" && ext != ".cjs" {
			continue
		}
		if _, err := os.Stat(file); err != nil {
			continue // removed
		}
		for _, fn := range stack.Functions {
			lang, _, ok := runtimeprocess.Language(fn.Runtime)
			if !ok || !strings.HasPrefix(file, fn.Source+string(filepath.Separator)) || (lang == "python") != (ext == ".py") || lang == "provided" {
				continue
			}
			in, err := n.interpreter(ctx, fn.Runtime)
			if err != nil {
				return err
			}
			// Run in the stack's directory with the file's path from there, which messages show.
			dir := filepath.Dir(stack.File)
			if abs, err := filepath.Abs(dir); err == nil {
				dir = abs
			}
			rel := file
			if r, err := filepath.Rel(dir, file); err == nil && !strings.HasPrefix(r, "..") {
				rel = r
			}
			args := []string{"--check", rel}
			if lang == "python" {
				args = []string{"-c", pythonParse, rel}
			}
			cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			cmd := exec.CommandContext(cctx, in.Path, args...)
			cmd.Dir = dir
			msg, err := cmd.CombinedOutput()
			cancel()
			if err != nil {
				if text := lastLines(string(msg), 6); text != "" {
					return errors.New(text)
				}
				return fmt.Errorf("%s does not parse: %w", rel, err)
			}
			break
		}
	}
	return nil
}

// pythonParse parses a file as Python, without writing bytecode next to it, and says where it
// does not parse as compilers do.
const pythonParse = `import ast, sys
try:
    ast.parse(open(sys.argv[1], "rb").read(), sys.argv[1])
except SyntaxError as e:
    print("%s:%s:%s: %s" % (e.filename, e.lineno, e.offset, e.msg))
    if e.text:
        print("    " + e.text.rstrip())
    sys.exit(1)`

// lastLines is the last n lines of s, where interpreters put the error.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
