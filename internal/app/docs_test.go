package app

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/goccy/go-yaml"
	"github.com/spf13/pflag"

	"gatehouse.dev/gatehouse/functions"
	"gatehouse.dev/gatehouse/internal/stackfile"
	"gatehouse.dev/gatehouse/internal/testfix"
)

// The examples in docs/*.md are checked against the code:
//
//   - a ```yaml block with a top-level `version:` and `functions:` or `apis:` is a whole stack file: it
//     must parse with stackfile.Parse, after the sources, JWKS files and secretFromEnv variables it
//     names have been made up (an empty file for a .wasm source, a directory with a main.go for any
//     other, `{"keys":[]}` for a jwksFile);
//   - a ```yaml block with a top-level `version:` and `name:` but neither of those is a bundle
//     manifest (function.yaml): it must parse with functions.ParseManifest;
//   - a block right after the line `<!-- error -->` must fail instead. When a ```text block follows it
//     at once, the error (the file named gatehouse.yaml) must equal that block's first line;
//   - every `gatehouse …` command in ```sh, ```bash, ```shell and ```console blocks, and every line
//     `$ gatehouse …` of ```text blocks, names a runnable command with flags that exist, values that
//     parse and as many arguments as the command takes;
//   - every inline `gatehouse …` in the prose names a command and flags that exist (its arguments
//     are often placeholders, such as FN or MB, so only the names are checked).

// docErrorMarker, on the line before a fenced block, says that the example must fail.
const docErrorMarker = "<!-- error -->"

// docBlock is a fenced code block of a Markdown file.
type docBlock struct {
	file string // base name, such as stack-file.md
	line int    // of the opening fence
	lang string
	text string // without the fences and without the fence's indentation
	// wantError is set when the line before the block is docErrorMarker.
	wantError bool
	// next is the block that follows this one with nothing but blank lines between them.
	next *docBlock
}

func (b *docBlock) String() string { return b.file + ":" + strconv.Itoa(b.line) }

// docFiles returns the Markdown files under docs/ with their contents.
func docFiles(t *testing.T) map[string]string {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(testfix.RepoRoot(), "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) < 8 {
		t.Fatalf("found %d docs in docs/, want at least 8", len(paths))
	}
	docs := map[string]string{}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		docs[filepath.Base(p)] = string(b)
	}
	return docs
}

// fencedBlocks returns the fenced code blocks of a Markdown text, indented ones (in list items)
// included, in order.
func fencedBlocks(t *testing.T, file, text string) []*docBlock {
	t.Helper()
	var blocks []*docBlock
	lines := strings.Split(text, "\n")
	prev := ""         // the last non-blank line outside blocks
	var last *docBlock // the last block, while only blank lines follow it
	for i := 0; i < len(lines); i++ {
		trimmed := strings.TrimLeft(lines[i], " ")
		if !strings.HasPrefix(trimmed, "```") {
			if strings.TrimSpace(lines[i]) != "" {
				prev, last = strings.TrimSpace(lines[i]), nil
			}
			continue
		}
		indent := len(lines[i]) - len(trimmed)
		b := &docBlock{file: file, line: i + 1, lang: strings.TrimSpace(trimmed[3:]), wantError: prev == docErrorMarker}
		var body []string
		closed := false
		for i++; i < len(lines); i++ {
			if strings.TrimSpace(lines[i]) == "```" {
				closed = true
				break
			}
			l := lines[i]
			if len(l)-len(strings.TrimLeft(l, " ")) >= indent {
				l = l[indent:]
			}
			body = append(body, l)
		}
		if !closed {
			t.Fatalf("%s: the block has no closing ```", b)
		}
		b.text = strings.Join(body, "\n") + "\n"
		if last != nil {
			last.next = b
		}
		blocks = append(blocks, b)
		prev, last = "```", b
	}
	return blocks
}

// topLevelKeys returns the keys of a YAML text's top-level mapping, as written at column 1.
func topLevelKeys(text string) map[string]bool {
	keys := map[string]bool{}
	for _, l := range strings.Split(text, "\n") {
		if k, _, ok := strings.Cut(l, ":"); ok && k != "" && !strings.ContainsAny(k[:1], " \t#-") {
			keys[k] = true
		}
	}
	return keys
}

// makeStackInputs writes into dir what a stack file example refers to: each function's source (an
// empty file for a .wasm, else a directory with a main.go) and each JWT authorizer's jwksFile, and
// sets each access key's secretFromEnv variable. Unreadable YAML makes nothing: Parse reports it.
func makeStackInputs(t *testing.T, dir, text string) {
	t.Helper()
	var doc struct {
		Functions map[string]struct {
			Source string `yaml:"source"`
		} `yaml:"functions"`
		APIs map[string]struct {
			Authorizers map[string]struct {
				JWKSFile string `yaml:"jwksFile"`
			} `yaml:"authorizers"`
		} `yaml:"apis"`
		IAM struct {
			AccessKeys []struct {
				SecretFromEnv string `yaml:"secretFromEnv"`
			} `yaml:"accessKeys"`
		} `yaml:"iam"`
	}
	if err := yaml.Unmarshal([]byte(text), &doc); err != nil {
		return
	}
	write := func(rel, content string) {
		t.Helper()
		if rel == "" || filepath.IsAbs(rel) {
			return
		}
		p := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range doc.Functions {
		if strings.HasSuffix(f.Source, ".wasm") {
			write(f.Source, "")
		} else if f.Source != "" {
			write(filepath.Join(f.Source, "main.go"), "package main\n\nfunc main() {}\n")
		}
	}
	for _, a := range doc.APIs {
		for _, z := range a.Authorizers {
			write(z.JWKSFile, `{"keys":[]}`)
		}
	}
	for _, k := range doc.IAM.AccessKeys {
		if k.SecretFromEnv != "" {
			t.Setenv(k.SecretFromEnv, "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
		}
	}
}

// checkDocError checks the error of an example marked docErrorMarker: there must be one, equal to
// the first line of the text block that follows the example, if any.
func checkDocError(t *testing.T, b *docBlock, err error) {
	t.Helper()
	if err == nil {
		t.Errorf("%s: the example is marked %s, but it is accepted", b, docErrorMarker)
		return
	}
	if b.next != nil && b.next.lang == "text" {
		want, _, _ := strings.Cut(b.next.text, "\n")
		if err.Error() != want {
			t.Errorf("%s: the example fails with\n\t%s\nbut the doc shows (%s)\n\t%s", b, err, b.next, want)
		}
	}
}

// TestDocsStackFiles parses every whole stack file and bundle manifest shown in docs/*.md.
func TestDocsStackFiles(t *testing.T) {
	docs := docFiles(t)
	stacks, manifests, failing := 0, 0, 0
	for file, text := range docs {
		for _, b := range fencedBlocks(t, file, text) {
			if b.lang != "yaml" {
				continue
			}
			keys := topLevelKeys(b.text)
			if !keys["version"] {
				if b.wantError {
					t.Errorf("%s: marked %s, but it is neither a whole stack file nor a manifest (no top-level version:)", b, docErrorMarker)
				}
				continue
			}
			if b.wantError {
				failing++
			}
			if keys["functions"] || keys["apis"] {
				stacks++
				t.Run(strings.ReplaceAll(b.String(), ":", "_"), func(t *testing.T) {
					dir := t.TempDir()
					makeStackInputs(t, dir, b.text)
					_, err := stackfile.Parse("gatehouse.yaml", []byte(b.text), dir)
					switch {
					case b.wantError:
						checkDocError(t, b, err)
					case err != nil:
						t.Errorf("%s: the stack file does not parse: %v", b, err)
					}
				})
				continue
			}
			manifests++
			_, err := functions.ParseManifest([]byte(b.text))
			switch {
			case b.wantError:
				checkDocError(t, b, err)
			case err != nil:
				t.Errorf("%s: the bundle manifest does not parse: %v", b, err)
			}
		}
	}
	// As many as the docs show today: fewer means the test no longer finds them.
	if stacks < 8 || manifests < 3 || failing < 2 {
		t.Errorf("found %d stack files, %d bundle manifests and %d examples marked %s in docs/; want at least 8, 3 and 2",
			stacks, manifests, failing, docErrorMarker)
	}
	t.Logf("checked %d stack files and %d bundle manifests (%d meant to fail)", stacks, manifests, failing)
}

// docCommand is a gatehouse command line shown in a doc.
type docCommand struct {
	where string
	args  []string // after "gatehouse"
	// strict: a real example, whose flag values and argument count are checked too.
	strict bool
}

// shellWords splits a shell command line into commands, each a list of words: quotes are removed,
// |, ||, &&, ; and & separate commands, a redirection (<, >, 2>, …) drops its target, and # starts
// a comment. Expansions ($VAR, $(…)) are left as written.
func shellWords(line string) [][]string {
	var cmds [][]string
	var cur []string
	var word strings.Builder
	inWord, redirect := false, false
	endWord := func() {
		if !inWord {
			return
		}
		if redirect {
			redirect = false
		} else {
			cur = append(cur, word.String())
		}
		word.Reset()
		inWord = false
	}
	endCmd := func() {
		endWord()
		if len(cur) > 0 {
			cmds = append(cmds, cur)
		}
		cur = nil
	}
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case c == ' ' || c == '\t':
			endWord()
		case c == '\'':
			inWord = true
			j := strings.IndexByte(line[i+1:], '\'')
			if j < 0 {
				j = len(line) - i - 1
			}
			word.WriteString(line[i+1 : i+1+j])
			i += j + 1
		case c == '"':
			inWord = true
			for i++; i < len(line) && line[i] != '"'; i++ {
				if line[i] == '\\' && i+1 < len(line) && strings.IndexByte(`"\$`+"`", line[i+1]) >= 0 {
					i++
				}
				word.WriteByte(line[i])
			}
		case c == '\\' && i+1 < len(line):
			inWord = true
			i++
			word.WriteByte(line[i])
		case c == '#' && !inWord:
			endCmd()
			return cmds
		case c == '|' || c == ';' || c == '&':
			endCmd()
			if i+1 < len(line) && (line[i+1] == c) {
				i++
			}
		case c == '<' || c == '>':
			if inWord && word.String() != "2" && word.String() != "1" && word.String() != "&" {
				endWord()
			} else {
				word.Reset()
				inWord = false
			}
			for i+1 < len(line) && (line[i+1] == '>' || line[i+1] == '<' || line[i+1] == '&') {
				i++
			}
			redirect = true
		default:
			inWord = true
			word.WriteByte(c)
		}
	}
	endCmd()
	return cmds
}

// gatehouseArgs returns the arguments of the gatehouse commands of a shell command line: those
// whose first word, after variable assignments and shell keywords, is gatehouse.
func gatehouseArgs(line string) [][]string {
	var out [][]string
	for _, words := range shellWords(line) {
		for len(words) > 0 {
			w := words[0]
			if w == "do" || w == "then" || w == "else" || w == "time" || w == "exec" ||
				regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*=`).MatchString(w) {
				words = words[1:]
				continue
			}
			break
		}
		if len(words) > 0 && words[0] == "gatehouse" {
			out = append(out, words[1:])
		}
	}
	return out
}

// docCommands collects the gatehouse commands a doc shows.
func docCommands(t *testing.T, file, text string) []docCommand {
	t.Helper()
	var cmds []docCommand
	for _, b := range fencedBlocks(t, file, text) {
		shell := b.lang == "sh" || b.lang == "bash" || b.lang == "shell"
		if !shell && b.lang != "console" && b.lang != "text" {
			continue
		}
		lines := strings.Split(b.text, "\n")
		for i := 0; i < len(lines); i++ {
			start := i
			line := lines[i]
			for strings.HasSuffix(line, "\\") && i+1 < len(lines) { // a continued line
				i++
				line = strings.TrimSuffix(line, "\\") + " " + lines[i]
			}
			if rest, ok := strings.CutPrefix(line, "$ "); ok {
				line = rest
			} else if !shell {
				continue // output, in a console or text block
			}
			for _, args := range gatehouseArgs(line) {
				cmds = append(cmds, docCommand{where: b.file + ":" + strconv.Itoa(b.line+1+start), args: args, strict: true})
			}
		}
	}
	// Inline commands in the prose, outside the blocks.
	var prose strings.Builder
	inBlock := false
	for _, l := range strings.Split(text, "\n") {
		if strings.HasPrefix(strings.TrimSpace(l), "```") {
			inBlock = !inBlock
			prose.WriteString("\n")
			continue
		}
		if inBlock {
			prose.WriteString("\n")
		} else {
			prose.WriteString(l + "\n")
		}
	}
	p := prose.String()
	for _, m := range regexp.MustCompile("`gatehouse[ \n]([^`]+)`").FindAllStringSubmatchIndex(p, -1) {
		line := 1 + strings.Count(p[:m[0]], "\n")
		cmds = append(cmds, docCommand{where: file + ":" + strconv.Itoa(line), args: strings.Fields(p[m[2]:m[3]])})
	}
	return cmds
}

// checkDocCommand finds the command that c names in a fresh command tree and checks its flags and,
// when c is strict, its flag values and arguments.
func checkDocCommand(c docCommand) error {
	root := newRootCommand(io.Discard, io.Discard)
	cmd, rest, err := root.Find(c.args)
	if err != nil {
		return err
	}
	if cmd == root && len(c.args) > 0 && !strings.HasPrefix(c.args[0], "-") {
		return errors.New("unknown command " + strconv.Quote(c.args[0]))
	}
	cmd.InitDefaultHelpFlag()
	cmd.InitDefaultVersionFlag()
	lookup := func(name string, short bool) *pflag.Flag {
		for _, fs := range []*pflag.FlagSet{cmd.Flags(), cmd.InheritedFlags()} {
			if short {
				if f := fs.ShorthandLookup(name); f != nil {
					return f
				}
			} else if f := fs.Lookup(name); f != nil {
				return f
			}
		}
		return nil
	}
	var positional []string
	for i := 0; i < len(rest); i++ {
		w := rest[i]
		if w == "--" {
			positional = append(positional, rest[i+1:]...)
			break
		}
		if len(w) < 2 || w[0] != '-' {
			positional = append(positional, w)
			continue
		}
		var f *pflag.Flag
		val, hasVal := "", false
		if strings.HasPrefix(w, "--") {
			var name string
			name, val, hasVal = strings.Cut(w[2:], "=")
			if f = lookup(name, false); f == nil {
				return errors.New(cmd.CommandPath() + " has no flag --" + name)
			}
		} else {
			if f = lookup(w[1:2], true); f == nil {
				return errors.New(cmd.CommandPath() + " has no flag -" + w[1:2])
			}
			if len(w) > 2 {
				val, hasVal = strings.TrimPrefix(w[2:], "="), true
			}
		}
		if !hasVal {
			if f.NoOptDefVal != "" { // a boolean
				val = f.NoOptDefVal
			} else if i+1 < len(rest) {
				i++
				val = rest[i]
			} else if c.strict {
				return errors.New("flag --" + f.Name + " needs a value")
			} // prose may name a flag without its value: `gatehouse up --worker-memory`
		}
		if c.strict {
			if err := f.Value.Set(val); err != nil {
				return errors.New("--" + f.Name + " " + val + ": " + err.Error())
			}
		}
	}
	if !c.strict {
		return nil
	}
	if !cmd.Runnable() {
		return errors.New(cmd.CommandPath() + " is not a command of its own; name one of its subcommands")
	}
	return cmd.ValidateArgs(positional)
}

// TestDocsCommands checks that the gatehouse commands the docs show exist, with their flags.
func TestDocsCommands(t *testing.T) {
	strict, inline := 0, 0
	for file, text := range docFiles(t) {
		for _, c := range docCommands(t, file, text) {
			if c.strict {
				strict++
			} else {
				inline++
			}
			if err := checkDocCommand(c); err != nil {
				t.Errorf("%s: gatehouse %s: %v", c.where, strings.Join(c.args, " "), err)
			}
		}
	}
	if strict < 25 || inline < 60 {
		t.Errorf("found %d commands in code blocks and %d in the prose of docs/; want at least 25 and 60", strict, inline)
	}
	t.Logf("checked %d commands in code blocks and %d in the prose", strict, inline)
}

// TestDocsCommandChecks makes sure the command check can fail: unknown commands and flags, bad
// values and wrong argument counts are caught, and shell syntax around the commands is understood.
func TestDocsCommandChecks(t *testing.T) {
	for _, tc := range []struct {
		line string
		ok   bool
	}{
		{"gatehouse up -f gatehouse.yaml --workers 4 --standby=false", true},
		{`for i in $(seq 10); do gatehouse invoke hello:live --json | cut -c1-13; done`, true},
		{`GATEHOUSE_CPUPROFILE=/tmp/prof gatehouse up 2> up.log`, true},
		{`gatehouse alias set hello live '$LATEST' --weight 3=0.1`, true},
		{`gatehouse deploy hello.zip --description "a \"new\" greeting"`, true},
		{"gatehouse loadtest http -c 64 -d 10s http://127.0.0.1:8080/hello", true},
		{"gatehouse upp", false},
		{"gatehouse up --worker 3", false},
		{"gatehouse up --workers many", false},
		{"gatehouse keys create --plan basic", false},
		{"gatehouse loadtest --json", false},
		{"gatehouse logs hello -x", false},
	} {
		var errs []error
		for _, args := range gatehouseArgs(tc.line) {
			errs = append(errs, checkDocCommand(docCommand{where: "test", args: args, strict: true}))
		}
		if len(errs) != 1 {
			t.Errorf("%s: found %d gatehouse commands, want 1", tc.line, len(errs))
			continue
		}
		if (errs[0] == nil) != tc.ok {
			t.Errorf("%s: error %v, want ok %v", tc.line, errs[0], tc.ok)
		}
	}
	if err := checkDocCommand(docCommand{args: []string{"up", "--no-such-flag"}}); err == nil {
		t.Error("an inline command with an unknown flag passes")
	}
}
